#!/usr/bin/env bash
# run_pair.sh: one verified transfer over a lossy emulated link.
#
# Starts the link emulator (and, if asked, a second one on the ACK path), the
# receiver and the sender, all on 127.0.0.1; waits; checks the output byte for
# byte and by SHA-256; prints both summaries and a one-line verdict; exits 0
# only when the file arrived intact.  Sets up .venv on first use.
set -u -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VENV="$ROOT/.venv"
PY="$VENV/bin/python"

usage() {
    cat <<'USAGE'
usage: ./run_pair.sh [options]

With no options: makes a 4 MiB random sample file, sends it through an
emulated link with 5% loss, 1% corrupted datagrams, 2% reordering and 10 ms
delay, and verifies what arrived.  Logs, traces, emulator reports, pcaps and
plots go to a run directory (printed at the end).

Transfer:
  -i, --input FILE       file to send (default: a random sample, see --size)
      --size BYTES       size of the sample file (default 4M; K/M/G suffixes)
  -o, --output FILE      where the receiver writes (default: RUNDIR/received.bin)
  -w, --window BYTES     sender window (default 256K)
  -m, --mode gbn|sr      Go-Back-N or selective repeat with SACK (default sr)
      --mss BYTES        maximum segment size (default 1452)
      --buffer BYTES     receiver buffer / largest advertised window (default 4M)
      --timeout SECONDS  give up waiting for the pair after this long (default 600)

Data path impairments (the emulator between sender and receiver):
      --loss PCT         random loss (default 5)
      --corrupt PCT      percent of full-size datagrams with a flipped bit (default 1)
      --ber N            bit error rate per 100000 bits, as newudpl (overrides --corrupt)
      --reorder PCT      out-of-order datagrams (default 2)
      --dup PCT          duplicated datagrams (default 0)
      --delay SECONDS    one-way delay (default 0.010)
      --jitter SECONDS   extra random delay, uniform in [0, J) (default 0)
      --rate KBITS       link speed in kbit/s (default unlimited)
      --queue BYTES      queue in front of --rate, tail drop (default 65536)
      --burst P:R[:L]    Gilbert-Elliott burst loss, percents: good->bad, bad->good,
                         loss in the bad state (default L 100)
      --drop N,N,...     drop exactly these datagrams (1-based)
      --blackhole S:D    outage of D seconds starting S seconds after the first datagram
      --clean            no impairment at all on the data path
ACK path impairments (a second emulator between receiver and sender; off unless
one of these is given):
      --ack-loss PCT, --ack-corrupt PCT, --ack-ber N, --ack-reorder PCT,
      --ack-dup PCT, --ack-delay SECONDS, --ack-jitter SECONDS, --ack-burst P:R[:L],
      --ack-drop N,N,..., --ack-blackhole S:D
Other:
      --seed N           seed of every random decision of the emulators (default:
                         random, printed)
      --link-port PORT   emulator receive port (default: a free one)
      --recv-port PORT   receiver listen port (default: a free one)
      --ack-port PORT    sender's ACK port (default: a free one)
      --dir DIR          run directory for logs, traces, pcaps and plots
                         (default: runs/run-YYYYmmdd-HHMMSS)
      --no-analysis      no traces, pcaps or plots (fastest)
      --rm-logs          remove the run directory when the transfer succeeds
      --verbose          per-segment DEBUG lines in the log files
  -h, --help             this help
USAGE
}

die() { echo "run_pair.sh: error: $*" >&2; exit 2; }

# ---------------------------------------------------------------- arguments
INPUT="" SIZE="4M" OUTPUT="" WINDOW="256K" MODE="sr" MSS="1452" BUFFER="4M"
TIMEOUT=600 SEED="" RUNDIR="" ANALYSIS=1 RMLOGS=0 VERBOSE=0
LINK_PORT=0 RECV_PORT=0 ACK_PORT=""
declare -A DATA=([loss]=5 [corrupt]=1 [reorder]=2 [delay]=0.010)
declare -A ACKP=()
ACK_ON=0

need() { [ $# -ge 2 ] && [ -n "$2" ] || die "$1 needs a value"; }
while [ $# -gt 0 ]; do
    case "$1" in
        -h|--help) usage; exit 0 ;;
        -i|--input) need "$@"; INPUT=$2; shift ;;
        --size) need "$@"; SIZE=$2; shift ;;
        -o|--output) need "$@"; OUTPUT=$2; shift ;;
        -w|--window) need "$@"; WINDOW=$2; shift ;;
        -m|--mode) need "$@"; MODE=$2; shift ;;
        --mss) need "$@"; MSS=$2; shift ;;
        --buffer) need "$@"; BUFFER=$2; shift ;;
        --timeout) need "$@"; TIMEOUT=$2; shift ;;
        --seed) need "$@"; SEED=$2; shift ;;
        --dir) need "$@"; RUNDIR=$2; shift ;;
        --link-port) need "$@"; LINK_PORT=$2; shift ;;
        --recv-port) need "$@"; RECV_PORT=$2; shift ;;
        --ack-port) need "$@"; ACK_PORT=$2; shift ;;
        --no-analysis) ANALYSIS=0 ;;
        --rm-logs) RMLOGS=1 ;;
        --verbose) VERBOSE=1 ;;
        --clean) DATA=() ;;
        --loss|--corrupt|--ber|--reorder|--dup|--delay|--jitter|--rate|--queue|--burst|--drop|--blackhole)
            need "$@"; k=${1#--}; DATA[$k]=$2
            [ "$k" = ber ] && unset 'DATA[corrupt]'
            [ "$k" = corrupt ] && unset 'DATA[ber]'
            shift ;;
        --ack-loss|--ack-corrupt|--ack-ber|--ack-reorder|--ack-dup|--ack-delay|--ack-jitter|--ack-burst|--ack-drop|--ack-blackhole)
            need "$@"; k=${1#--ack-}; ACKP[$k]=$2; ACK_ON=1; shift ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
    shift
done
case "$MODE" in gbn|sr) ;; *) die "--mode must be gbn or sr" ;; esac
[[ "$TIMEOUT" =~ ^[0-9]+$ ]] || die "--timeout takes whole seconds"
[ -z "$INPUT" ] || [ -r "$INPUT" ] || die "cannot read $INPUT"

# -------------------------------------------------------------- environment
if ! "$PY" -c "import loguru, common, sender, receiver, emulator, analysis" 2>/dev/null; then
    echo "run_pair.sh: setting up $VENV (first run)..." >&2
    command -v python3 >/dev/null || die "python3 is needed"
    python3 -m venv "$VENV" || die "cannot create $VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check -e "$ROOT[extras]" >&2 \
        || die "pip install failed"
fi
if [ -z "$SEED" ]; then SEED=$("$PY" -c "import secrets; print(secrets.randbelow(2**31))"); fi

[ -n "$RUNDIR" ] || RUNDIR="$ROOT/runs/run-$(date +%Y%m%d-%H%M%S)-$$"
mkdir -p "$RUNDIR" || die "cannot create $RUNDIR"
RUNDIR=$(cd "$RUNDIR" && pwd)

# The emulator's flags for one set of impairments.
emu_flags() {  # name of an associative array
    local -n imp=$1
    local out=() v
    for k in "${!imp[@]}"; do
        v=${imp[$k]}
        case "$k" in
            loss) out+=(-L "$v") ;;
            reorder) out+=(-O "$v") ;;
            dup) out+=(-D "$v") ;;
            delay) out+=(-d "$v") ;;
            jitter) out+=(--jitter "$v") ;;
            rate) out+=(-s "$v") ;;
            queue) out+=(-q "$v") ;;
            ber) out+=(-B "$v") ;;
            corrupt)  # percent of MSS-sized datagrams with at least one bit flipped
                out+=(-B "$("$PY" -c "import sys; p=float(sys.argv[1])/100; bits=(int(sys.argv[2])+20)*8
if not 0<=p<1: sys.exit('--corrupt must be in [0, 100)')
print(f'{(1-(1-p)**(1/bits))*100000:.6g}')" "$v" "$MSS")") || die "bad --corrupt" ;;
            burst) IFS=: read -r gp gr gl <<<"$v"
                out+=(--ge-p "$gp" --ge-r "$gr"); [ -n "${gl:-}" ] && out+=(--ge-loss "$gl") ;;
            drop) out+=(--drop "$v") ;;
            blackhole) out+=(--blackhole "$v") ;;
        esac
    done
    printf '%s\n' "${out[@]}"
}

PIDS=()
NAMES=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    PIDS=()
}
trap cleanup EXIT
trap 'echo "run_pair.sh: interrupted" >&2; cleanup; exit 130' INT TERM

start() {  # name, then the command; output to RUNDIR/name.{out,err}
    local name=$1; shift
    "$@" >"$RUNDIR/$name.out" 2>"$RUNDIR/$name.err" </dev/null &
    PIDS+=($!)
    NAMES+=("$name")
}

wait_ready() {  # file, pid, name -> prints the JSON
    local f=$1 pid=$2 name=$3
    for _ in $(seq 300); do
        [ -s "$f" ] && { cat "$f"; return 0; }
        kill -0 "$pid" 2>/dev/null || { echo "run_pair.sh: $name failed to start; see $RUNDIR/$name.err:" >&2; tail -5 "$RUNDIR/$name.err" >&2; exit 1; }
        sleep 0.05
    done
    echo "run_pair.sh: $name did not start within 15 s" >&2; exit 1
}
json_field() { "$PY" -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }

# --------------------------------------------------------------------- input
if [ -z "$INPUT" ]; then
    INPUT="$RUNDIR/sample.bin"
    "$PY" - "$INPUT" "$SIZE" "$SEED" <<'PYEOF' || die "bad --size $SIZE"
import random, sys
from common.progutil import byte_size
size = byte_size(sys.argv[2])
rng = random.Random(int(sys.argv[3]))
with open(sys.argv[1], "wb") as f:
    left = size
    while left:
        n = min(left, 1 << 20)
        f.write(rng.randbytes(n))
        left -= n
PYEOF
fi
[ -n "$OUTPUT" ] || OUTPUT="$RUNDIR/received.bin"
rm -f "$OUTPUT"
if [ -z "$ACK_PORT" ]; then
    ACK_PORT=$("$PY" -c "import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
fi

COMMON=(--log-level "$([ $VERBOSE = 1 ] && echo DEBUG || echo INFO)" --no-progress)
trace_args() { [ $ANALYSIS = 1 ] && printf '%s\n' --trace "$RUNDIR/$1.trace.jsonl"; [ $ANALYSIS = 1 ] && [ "$1" != emu-data ] && [ "$1" != emu-ack ] && printf '%s\n' --pcap "$RUNDIR/$1.pcap"; true; }

# -------------------------------------------------------------------- launch
ACK_TARGET=$ACK_PORT
if [ $ACK_ON = 1 ]; then
    mapfile -t AF < <(emu_flags ACKP)
    mapfile -t TA < <(trace_args emu-ack)
    start emu-ack "$PY" -m emulator -p 0:0 -o "127.0.0.1:$ACK_PORT" --seed $((SEED + 1)) \
        --ready-file "$RUNDIR/emu-ack.ready" --stats "$RUNDIR/emu-ack.stats.json" "${TA[@]}" "${AF[@]}"
    ACK_TARGET=$(json_field "$(wait_ready "$RUNDIR/emu-ack.ready" "${PIDS[-1]}" emu-ack)" recv_port)
fi

mapfile -t TA < <(trace_args receiver)
start receiver "$PY" -m receiver "$OUTPUT" "$RECV_PORT" 127.0.0.1 "$ACK_TARGET" --force \
    --mode "$MODE" --mss "$MSS" --buffer "$BUFFER" --ready-file "$RUNDIR/receiver.ready" \
    --log-file "$RUNDIR/receiver.log" "${COMMON[@]}" "${TA[@]}"
RPID=${PIDS[-1]}
RPORT=$(json_field "$(wait_ready "$RUNDIR/receiver.ready" "$RPID" receiver)" port)

mapfile -t DF < <(emu_flags DATA)
mapfile -t TA < <(trace_args emu-data)
start emu-data "$PY" -m emulator -p "$LINK_PORT:0" -o "127.0.0.1:$RPORT" --seed "$SEED" \
    --ready-file "$RUNDIR/emu-data.ready" --stats "$RUNDIR/emu-data.stats.json" "${TA[@]}" "${DF[@]}"
EPORT=$(json_field "$(wait_ready "$RUNDIR/emu-data.ready" "${PIDS[-1]}" emu-data)" recv_port)

echo "run_pair.sh: $(basename "$INPUT") -> $OUTPUT, $MODE, window $WINDOW, seed $SEED"
echo "run_pair.sh: data path: ${DF[*]:-(clean)}"
[ $ACK_ON = 1 ] && echo "run_pair.sh: ACK path:  ${AF[*]}"
mapfile -t TA < <(trace_args sender)
START_NS=$(date +%s%N)
start sender "$PY" -m sender "$INPUT" 127.0.0.1 "$EPORT" "$WINDOW" "$ACK_PORT" \
    --mode "$MODE" --mss "$MSS" --log-file "$RUNDIR/sender.log" "${COMMON[@]}" "${TA[@]}"
SPID=${PIDS[-1]}

# --------------------------------------------------------------------- wait
wait_for() {  # pid, seconds left -> exit status (124 on timeout)
    local pid=$1 left=$2
    while kill -0 "$pid" 2>/dev/null; do
        [ "$left" -le 0 ] && return 124
        sleep 0.1; left=$((left - 1))
    done
    wait "$pid"
}
TENTHS=$((TIMEOUT * 10))
wait_for "$SPID" "$TENTHS"; SRC=$?
wait_for "$RPID" 300; RRC=$?   # the receiver ends a moment after the sender
ELAPSED_NS=$(( $(date +%s%N) - START_NS ))
cleanup   # stops the emulators, which write their reports

echo
cat "$RUNDIR/sender.out" 2>/dev/null
echo
cat "$RUNDIR/receiver.out" 2>/dev/null
for e in emu-data emu-ack; do
    [ -f "$RUNDIR/$e.stats.json" ] && "$PY" - "$RUNDIR/$e.stats.json" "$e" <<'PYEOF'
import json, sys
s = json.load(open(sys.argv[1]))
d = s.get("dropped", {})
print(f"{sys.argv[2]}: received {s.get('received')}, forwarded {s.get('forwarded')}, "
      f"dropped {s.get('dropped_total')} ({', '.join(f'{k} {v}' for k, v in d.items() if v) or 'none'}), "
      f"corrupted {s.get('corrupted')}, reordered {s.get('reordered')}, duplicated {s.get('duplicated')}")
PYEOF
done

# -------------------------------------------------------------------- verify
VERDICT=0
why=()
[ $SRC = 0 ] || { VERDICT=1; why+=("sender exited $SRC (log: $RUNDIR/sender.log, $RUNDIR/sender.err)"); }
[ $RRC = 0 ] || { VERDICT=1; why+=("receiver exited $RRC (log: $RUNDIR/receiver.log, $RUNDIR/receiver.err)"); }
if [ -f "$OUTPUT" ] && cmp -s "$INPUT" "$OUTPUT"; then
    SUM_IN=$(sha256sum "$INPUT" | cut -d' ' -f1); SUM_OUT=$(sha256sum "$OUTPUT" | cut -d' ' -f1)
    [ "$SUM_IN" = "$SUM_OUT" ] || { VERDICT=1; why+=("SHA-256 differs"); }
else
    VERDICT=1; why+=("$OUTPUT is missing or differs from $INPUT")
fi
for s in "${why[@]}"; do echo "run_pair.sh: $s" >&2; done
for n in sender receiver; do
    if grep -q "ERROR" "$RUNDIR/$n.err" 2>/dev/null; then
        echo "run_pair.sh: $n said: $(grep ERROR "$RUNDIR/$n.err" | tail -1)" >&2
    fi
done

if [ $ANALYSIS = 1 ]; then
    traces=()
    for t in sender receiver emu-data emu-ack; do
        [ -s "$RUNDIR/$t.trace.jsonl" ] && traces+=("$RUNDIR/$t.trace.jsonl")
    done
    if [ ${#traces[@]} -gt 0 ]; then
        "$PY" -m analysis "${traces[@]}" --out "$RUNDIR/plots" >"$RUNDIR/analysis.txt" 2>&1 \
            && echo "run_pair.sh: plots and analysis in $RUNDIR/plots ($RUNDIR/analysis.txt)" \
            || echo "run_pair.sh: the analysis failed; see $RUNDIR/analysis.txt" >&2
    fi
fi

SIZE_B=$(stat -c %s "$INPUT")
SECS=$("$PY" -c "print(f'{$ELAPSED_NS/1e9:.2f}')")
echo
if [ $VERDICT = 0 ]; then
    echo "VERDICT: OK: $SIZE_B bytes delivered intact (SHA-256 $SUM_OUT) in $SECS s, $MODE mode, seed $SEED"
    if [ $RMLOGS = 1 ]; then rm -rf "$RUNDIR"; else echo "run directory: $RUNDIR"; fi
    exit 0
fi
echo "VERDICT: FAILED: $MODE mode, seed $SEED; logs in $RUNDIR"
exit 1
