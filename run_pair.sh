#!/usr/bin/env bash
# run_pair.sh: one verified transfer over a lossy emulated link.
#
# Starts the link emulator (and, if asked, a second one on the ACK path), the
# receiver and the sender, all on 127.0.0.1; waits; checks the output byte for
# byte and by SHA-256; prints both summaries and a one-line verdict; exits 0
# only when the file arrived intact.  Sets up .venv on first use.  Every
# process it starts is stopped when it exits, whatever the reason.
set -u -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
ME=run_pair.sh

usage() {
    cat <<'USAGE'
usage: ./run_pair.sh [options]

With no options: makes a 4 MiB random sample file, sends it through an
emulated link with 5% loss, 1% corrupted datagrams, 2% reordering and 10 ms
delay, and verifies what arrived.  Logs, traces, emulator reports, pcaps and
plots go to a run directory (printed at the end).

Transfer:
  -i, --input FILE       file to send (default: a random sample, see --size)
      --size BYTES       size of the sample file (default 4M; K/M/G suffixes; 0 allowed)
  -o, --output FILE      where the receiver writes (default: RUNDIR/received.bin;
                         an existing file is replaced)
  -w, --window BYTES     sender window (default 256K)
  -m, --mode gbn|sr      Go-Back-N or selective repeat with SACK (default sr)
      --mss BYTES        maximum segment size (default 1452)
      --pacing GAIN      the sender paces new data at GAIN x window / SRTT (default
                         1.5); 0 sends each window at once, as the textbook does
      --buffer BYTES     receiver buffer / largest advertised window (default 4M)
      --give-up SECONDS  both programs give up after hearing nothing from the peer
                         this long, and the receiver if no sender connects within
                         it (default 30)
      --timeout SECONDS  stop everything if the transfer takes longer (default 600)

Data path impairments (the emulator between sender and receiver):
      --loss PCT         random loss (default 5)
      --corrupt PCT      percent of datagrams with one flipped bit (default 1); the
                         checksum always catches a single flipped bit
      --ber N            bit error rate per 100000 bits, as newudpl (overrides --corrupt);
                         two flips in one datagram can slip past the 16-bit checksum,
                         and the SHA-256 check then fails the transfer
      --reorder PCT      out-of-order datagrams (default 2)
      --reorder-hold S   longest a held datagram waits for a successor (emulator default)
      --dup PCT          duplicated datagrams (default 0)
      --delay SECONDS    one-way delay (default 0.010)
      --jitter SECONDS   extra random delay, uniform in [0, J) (default 0)
      --rate KBITS       link speed in kbit/s (default unlimited)
      --queue BYTES      queue in front of --rate, tail drop (default 65536)
      --burst P:R[:L[:G]] Gilbert-Elliott burst loss, percents: good->bad, bad->good,
                         loss in the bad state (default 100), in the good state (default 0)
      --drop N,N,...     drop exactly these datagrams (1-based)
      --blackhole S:D    outage of D seconds starting S seconds after the first datagram
      --clean            none of the default impairments: only those given here
ACK path impairments (a second emulator between receiver and sender; off unless
one of these is given):
      --ack-loss PCT, --ack-corrupt PCT, --ack-ber N, --ack-reorder PCT,
      --ack-reorder-hold S, --ack-dup PCT, --ack-delay SECONDS, --ack-jitter SECONDS,
      --ack-rate KBITS, --ack-queue BYTES, --ack-burst P:R[:L[:G]], --ack-drop N,N,...,
      --ack-blackhole S:D
Other:
      --seed N           seed of every random decision of the emulators and of the
                         sample file (default: random, printed); the ACK emulator
                         gets N+1
      --link-port PORT   emulator receive port (default: a free one)
      --recv-port PORT   receiver listen port (default: a free one)
      --ack-port PORT    sender's ACK port (default: a free one)
      --dir DIR          run directory for logs, traces, pcaps and plots
                         (default: runs/run-YYYYmmdd-HHMMSS-PID)
      --no-analysis      no traces, pcaps or plots (fastest)
      --keep-logs        keep the run directory (the default)
      --rm-logs          on success, delete what this run wrote in the run directory
                         (and the directory, if then empty); kept on failure
      --verbose          per-segment DEBUG lines in the log files
      --dry-run          print the commands that would run, start nothing
  -h, --help             this help

Exit status: 0 the file arrived intact; 1 the transfer failed (the side that
failed and its log are named); 2 bad usage; 130 interrupted (143 on SIGTERM).
USAGE
}

die() { echo "$ME: error: $*" >&2; exit 2; }

# ------------------------------------------------------------- validation
NUM_RE='^([0-9]+\.?[0-9]*|\.[0-9]+)$'
SIZE_RE='^([0-9]+\.?[0-9]*|\.[0-9]+)([kKmMgG])?([iI]?[bB])?$'
is_num() { [[ "$1" =~ $NUM_RE ]]; }
is_int() { [[ "$1" =~ ^[0-9]+$ ]]; }
num_le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 <= b + 0) }'; }
num_pos() { awk -v a="$1" 'BEGIN { exit !(a + 0 > 0) }'; }
to_bytes() {  # SIZE -> bytes on stdout, or fail
    [[ "$1" =~ $SIZE_RE ]] || return 1
    local n=${BASH_REMATCH[1]} u=${BASH_REMATCH[2],,}
    awk -v n="$n" -v u="$u" 'BEGIN { m = 1; if (u == "k") m = 1024; if (u == "m") m = 1048576;
        if (u == "g") m = 1073741824; printf "%d\n", n * m }'
}
check_value() {  # option name, key, value: dies unless the value fits the key
    local opt=$1 k=$2 v=$3
    case "$k" in
        loss|reorder|dup)
            is_num "$v" && num_le "$v" 100 || die "$opt takes a percentage 0..100, not '$v'" ;;
        corrupt)
            is_num "$v" && num_le "$v" 99.999 || die "$opt takes a percentage in [0, 100), not '$v'" ;;
        ber)
            is_num "$v" && num_le "$v" 100000 || die "$opt takes bits per 100000, 0..100000, not '$v'" ;;
        delay|jitter|reorder-hold)
            is_num "$v" || die "$opt takes seconds, not '$v'" ;;
        rate)
            is_num "$v" && num_pos "$v" || die "$opt takes a positive kbit/s, not '$v'" ;;
        queue)
            to_bytes "$v" >/dev/null && num_pos "$(to_bytes "$v")" || die "$opt takes a size in bytes, not '$v'" ;;
        burst)
            local p
            [[ "$v" =~ ^[0-9.]+:[0-9.]+(:[0-9.]+(:[0-9.]+)?)?$ ]] || die "$opt takes P:R[:L[:G]] percentages, not '$v'"
            IFS=: read -ra p <<<"$v"
            for x in "${p[@]}"; do is_num "$x" && num_le "$x" 100 || die "$opt: '$x' is not a percentage"; done ;;
        drop)
            [[ "$v" =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || die "$opt takes datagram numbers N,N,... (from 1), not '$v'" ;;
        blackhole)
            [[ "$v" =~ ^[0-9.]+:[0-9.]+$ ]] && is_num "${v%%:*}" && is_num "${v#*:}" \
                || die "$opt takes START:DURATION in seconds, not '$v'" ;;
    esac
}
check_port() { is_int "$2" && [ "$2" -le 65535 ] || die "$1 takes a port 0..65535, not '$2'"; }

# ---------------------------------------------------------------- arguments
INPUT="" SIZE="4M" OUTPUT="" WINDOW="256K" MODE="sr" MSS="1452" BUFFER="4M" PACING=""
TIMEOUT=600 GIVE_UP=30 SEED="" RUNDIR="" ANALYSIS=1 RMLOGS=0 VERBOSE=0 DRY=0
LINK_PORT=0 RECV_PORT=0 ACK_PORT=0
declare -A DEFAULTS=([loss]=5 [corrupt]=1 [reorder]=2 [delay]=0.010)
declare -A DATA=() ACKP=()   # what the options ask for
ACK_ON=0 CLEAN=0

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
        --pacing) need "$@"; PACING=$2; shift ;;
        --buffer) need "$@"; BUFFER=$2; shift ;;
        --give-up) need "$@"; GIVE_UP=$2; shift ;;
        --timeout) need "$@"; TIMEOUT=$2; shift ;;
        --seed) need "$@"; SEED=$2; shift ;;
        --dir) need "$@"; RUNDIR=$2; shift ;;
        --link-port) need "$@"; check_port "$1" "$2"; LINK_PORT=$2; shift ;;
        --recv-port) need "$@"; check_port "$1" "$2"; RECV_PORT=$2; shift ;;
        --ack-port) need "$@"; check_port "$1" "$2"; ACK_PORT=$2; shift ;;
        --no-analysis) ANALYSIS=0 ;;
        --rm-logs) RMLOGS=1 ;;
        --keep-logs) RMLOGS=0 ;;
        --verbose) VERBOSE=1 ;;
        --dry-run) DRY=1 ;;
        --clean) CLEAN=1 ;;
        --loss|--corrupt|--ber|--reorder|--reorder-hold|--dup|--delay|--jitter|--rate|--queue|--burst|--drop|--blackhole)
            need "$@"; k=${1#--}; check_value "$1" "$k" "$2"; DATA[$k]=$2
            [ "$k" = ber ] && unset 'DATA[corrupt]'
            [ "$k" = corrupt ] && unset 'DATA[ber]'
            shift ;;
        --ack-loss|--ack-corrupt|--ack-ber|--ack-reorder|--ack-reorder-hold|--ack-dup|--ack-delay|--ack-jitter|--ack-rate|--ack-queue|--ack-burst|--ack-drop|--ack-blackhole)
            need "$@"; k=${1#--ack-}; check_value "$1" "$k" "$2"; ACKP[$k]=$2; ACK_ON=1
            [ "$k" = ber ] && unset 'ACKP[corrupt]'
            [ "$k" = corrupt ] && unset 'ACKP[ber]'
            shift ;;
        *) die "unknown option '$1' (see --help)" ;;
    esac
    shift
done
case "$MODE" in gbn|sr) ;; *) die "--mode must be gbn or sr, not '$MODE'" ;; esac
is_int "$TIMEOUT" && [ "$TIMEOUT" -gt 0 ] || die "--timeout takes whole seconds > 0, not '$TIMEOUT'"
is_num "$GIVE_UP" && num_pos "$GIVE_UP" || die "--give-up takes seconds > 0, not '$GIVE_UP'"
[ -z "$SEED" ] || { is_int "$SEED" && [ "${#SEED}" -le 10 ]; } || die "--seed takes a whole number, not '$SEED'"
is_int "$MSS" && [ "$MSS" -ge 1 ] && [ "$MSS" -le 65495 ] || die "--mss takes 1..65495 bytes, not '$MSS'"
[ -z "$PACING" ] || is_num "$PACING" || die "--pacing takes a gain >= 0 (0: off), not '$PACING'"
SIZE_B=$(to_bytes "$SIZE") || die "--size takes a size like 300K or 4M, not '$SIZE'"
WINDOW_B=$(to_bytes "$WINDOW") || die "--window takes a size like 64K, not '$WINDOW'"
BUFFER_B=$(to_bytes "$BUFFER") || die "--buffer takes a size like 4M, not '$BUFFER'"
[ "$WINDOW_B" -ge "$MSS" ] || die "--window ($WINDOW_B bytes) must hold at least one MSS ($MSS)"
[ "$BUFFER_B" -ge "$MSS" ] || die "--buffer ($BUFFER_B bytes) must hold at least one MSS ($MSS)"
if [ -n "$INPUT" ]; then
    [ -f "$INPUT" ] && [ -r "$INPUT" ] || die "cannot read $INPUT"
fi
if [ -n "$OUTPUT" ]; then
    [ -d "$(dirname -- "$OUTPUT")" ] || die "the directory of $OUTPUT does not exist"
    [ ! -d "$OUTPUT" ] || die "$OUTPUT is a directory"
    if [ -n "$INPUT" ] && [ -e "$OUTPUT" ] && [ "$INPUT" -ef "$OUTPUT" ]; then
        die "--output is the input file itself"
    fi
fi
if [ $CLEAN = 0 ]; then  # the defaults, for what the options left out
    for k in loss reorder delay; do [ -n "${DATA[$k]+set}" ] || DATA[$k]=${DEFAULTS[$k]}; done
    [ -n "${DATA[corrupt]+set}${DATA[ber]+set}" ] || DATA[corrupt]=${DEFAULTS[corrupt]}
fi
for p in LINK_PORT RECV_PORT ACK_PORT; do
    for q in LINK_PORT RECV_PORT ACK_PORT; do
        if [ "$p" \< "$q" ] && [ "${!p}" != 0 ] && [ "${!p}" = "${!q}" ]; then
            die "--${p%_PORT} and --${q%_PORT} ports must differ"
        fi
    done
done

# The emulator's flags for one set of impairments (validated above).
emu_flags() {  # name of an associative array -> one flag or value per line
    local -n imp=$1
    local k v gp gr gl gg
    for k in $(printf '%s\n' "${!imp[@]}" | sort); do
        v=${imp[$k]}
        case "$k" in
            loss) printf '%s\n' -L "$v" ;;
            reorder) printf '%s\n' -O "$v" ;;
            reorder-hold) printf '%s\n' --reorder-hold "$v" ;;
            dup) printf '%s\n' -D "$v" ;;
            delay) printf '%s\n' -d "$v" ;;
            jitter) printf '%s\n' --jitter "$v" ;;
            rate) printf '%s\n' -s "$v" ;;
            queue) printf '%s\n' -q "$(to_bytes "$v")" ;;
            ber) printf '%s\n' -B "$v" ;;
            corrupt)  # percent of datagrams with exactly one flipped bit (emulator -C)
                printf '%s\n' -C "$v" ;;
            burst) IFS=: read -r gp gr gl gg <<<"$v"
                printf '%s\n' --ge-p "$gp" --ge-r "$gr"
                [ -n "${gl:-}" ] && printf '%s\n' --ge-loss "$gl"
                [ -n "${gg:-}" ] && printf '%s\n' --ge-good-loss "$gg" ;;
            drop) printf '%s\n' --drop "$v" ;;
            blackhole) printf '%s\n' --blackhole "$v" ;;
        esac
    done
    true
}
mapfile -t DF < <(emu_flags DATA)
mapfile -t AF < <(emu_flags ACKP)

# -------------------------------------------------------------- environment
if [ $DRY = 0 ] && ! "$PY" -c "import loguru, common, sender, receiver, emulator, analysis" 2>/dev/null; then
    echo "$ME: setting up $VENV (first run)..." >&2
    command -v python3 >/dev/null || die "python3 is needed"
    python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
        || die "python 3.11 or newer is needed (python3 is $(python3 -V 2>&1))"
    python3 -m venv "$VENV" || die "cannot create $VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check -e "$ROOT[extras]" >&2 \
        || die "pip install failed"
fi
[ -n "$SEED" ] || SEED=$(( (RANDOM << 16 | RANDOM) & 0x7FFFFFFF ))

[ -n "$RUNDIR" ] || RUNDIR="$ROOT/runs/run-$(date +%Y%m%d-%H%M%S)-$$"
if [ $DRY = 0 ]; then
    mkdir -p "$RUNDIR" || die "cannot create $RUNDIR"
    RUNDIR=$(cd "$RUNDIR" && pwd)
fi
[ -n "$OUTPUT" ] || OUTPUT="$RUNDIR/received.bin"
SAMPLE=0
if [ -z "$INPUT" ]; then INPUT="$RUNDIR/sample.bin"; SAMPLE=1; fi
# What this run writes in RUNDIR (removed first, so nothing stale is read,
# and by --rm-logs after a success).
ARTIFACTS=()
for n in sender receiver emu-data emu-ack; do
    for ext in out err log ready ready.tmp trace.jsonl pcap stats.json; do
        ARTIFACTS+=("$RUNDIR/$n.$ext")
    done
done
ARTIFACTS+=("$RUNDIR/analysis.txt")

# ------------------------------------------------------------ the commands
COMMON=(--log-level "$([ $VERBOSE = 1 ] && echo DEBUG || echo INFO)" --no-progress --bind 127.0.0.1
        --give-up "$GIVE_UP")
EMU_V=(-v); [ $VERBOSE = 1 ] && EMU_V=(-vv)
# The receiver starts a moment before the sender, which gives up GIVE_UP s
# after its start if nobody answers: so does a receiver nobody connects to.
LISTEN_TIMEOUT=$(awk -v g="$GIVE_UP" 'BEGIN { print g + 5 }')
tr_args() {  # name -> --trace/--pcap flags, one per line
    [ $ANALYSIS = 1 ] || return 0
    printf '%s\n' --trace "$RUNDIR/$1.trace.jsonl"
    case "$1" in emu-*) ;; *) printf '%s\n' --pcap "$RUNDIR/$1.pcap" ;; esac
}
emu_cmd() {  # name, receive port, forward-to port, seed, flags...
    local name=$1 rport=$2 to=$3 seed=$4; shift 4
    local -a ta; mapfile -t ta < <(tr_args "$name")
    CMD=("$PY" -m emulator -p "$rport:0" -o "127.0.0.1:$to" --seed "$seed"
         --ready-file "$RUNDIR/$name.ready" --stats "$RUNDIR/$name.stats.json"
         --log "$RUNDIR/$name.log" "${EMU_V[@]}" "${ta[@]}" "$@")
}
receiver_cmd() {  # ACK target port
    local -a ta; mapfile -t ta < <(tr_args receiver)
    CMD=("$PY" -m receiver "$OUTPUT" "$RECV_PORT" 127.0.0.1 "$1" --force --mode "$MODE"
         --mss "$MSS" --buffer "$BUFFER_B" --listen-timeout "$LISTEN_TIMEOUT"
         --ready-file "$RUNDIR/receiver.ready" --log-file "$RUNDIR/receiver.log"
         "${COMMON[@]}" "${ta[@]}")
}
sender_cmd() {  # link port
    local -a ta; mapfile -t ta < <(tr_args sender)
    CMD=("$PY" -m sender "$INPUT" 127.0.0.1 "$1" "$WINDOW_B" "$ACK_PORT" --mode "$MODE"
         --mss "$MSS" --log-file "$RUNDIR/sender.log" "${COMMON[@]}" "${ta[@]}")
    [ -z "$PACING" ] || CMD+=(--pacing "$PACING")
}

if [ $DRY = 1 ]; then
    [ "$ACK_PORT" != 0 ] || ACK_PORT=ACK_PORT
    echo "# seed $SEED; ports the programs pick are shown in capitals"
    [ $SAMPLE = 1 ] && echo "# sample: $SIZE_B random bytes (seed $SEED) in $INPUT"
    ACK_TARGET=$ACK_PORT
    if [ $ACK_ON = 1 ]; then
        emu_cmd emu-ack 0 "$ACK_PORT" $((SEED + 1)) "${AF[@]}"; echo "${CMD[*]}"
        ACK_TARGET=ACK_EMULATOR_PORT
    fi
    receiver_cmd "$ACK_TARGET"; echo "${CMD[*]}"
    emu_cmd emu-data "$LINK_PORT" RECEIVER_PORT "$SEED" "${DF[@]}"; echo "${CMD[*]}"
    [ "$LINK_PORT" != 0 ] || LINK_PORT=LINK_PORT
    sender_cmd "$LINK_PORT"; echo "${CMD[*]}"
    exit 0
fi

# --------------------------------------------------------------- processes
PIDS=()     # started and not yet reaped by us
declare -A NAME_OF=() RC_OF=()
proc_state() { local s; s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1; s=${s##*) }; echo "$s"; }
ours() {  # pid: still our child?  (a reaped pid may already belong to someone else)
    local s
    if [ -d /proc/self ]; then
        s=$(proc_state "$1") || return 1
        set -- $s   # state ppid ...
        [ "$2" = $$ ]
    else
        kill -0 "$1" 2>/dev/null
    fi
}
reap() {  # pid: collect its exit status (it has ended) and forget the pid
    local pid=$1 rc=0 keep=() p
    [ -z "${RC_OF[$pid]:-}" ] || return 0
    wait "$pid" 2>/dev/null || rc=$?
    RC_OF[$pid]=$rc
    for p in "${PIDS[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
    PIDS=("${keep[@]}")
}
running() {  # pid: true while it runs; reaps it once it has ended
    [ -z "${RC_OF[$1]:-}" ] || return 1
    if ours "$1"; then
        [ -d /proc/self ] || return 0
        [ "$(proc_state "$1" | cut -d' ' -f1)" = Z ] || return 0
    fi
    reap "$1"
    return 1
}
cleanup() {  # stop everything still running: SIGTERM, then SIGKILL after 5 s
    local pid deadline
    [ ${#PIDS[@]} -gt 0 ] || return 0
    for pid in "${PIDS[@]}"; do ours "$pid" && kill -TERM "$pid" 2>/dev/null; done
    now_ms; deadline=$((NOW_MS + 5000))
    for pid in "${PIDS[@]}"; do
        while ours "$pid" && running "$pid" && now_ms && [ $NOW_MS -lt $deadline ]; do sleep 0.05; done
        if ours "$pid" && running "$pid"; then
            echo "$ME: ${NAME_OF[$pid]} did not stop on SIGTERM; killing it" >&2
            kill -KILL "$pid" 2>/dev/null
            reap "$pid"
        fi
    done
    PIDS=()
}
on_signal() {  # signal name, exit status
    trap '' INT TERM HUP
    echo "$ME: interrupted by SIG$1; stopping every process of this run" >&2
    cleanup
    echo "$ME: logs in $RUNDIR" >&2
    exit "$2"
}
trap cleanup EXIT
trap 'on_signal INT 130' INT
trap 'on_signal TERM 143' TERM
trap 'on_signal HUP 129' HUP

now_ms() {  # -> NOW_MS, a clock in milliseconds (bash 5: no fork)
    if [ -n "${EPOCHREALTIME:-}" ]; then local t=${EPOCHREALTIME/[.,]/}; NOW_MS=$((10#$t / 1000))
    else NOW_MS=$((SECONDS * 1000)); fi
}
start() {  # name, then the command; output to RUNDIR/name.{out,err}
    local name=$1; shift
    "$@" >"$RUNDIR/$name.out" 2>"$RUNDIR/$name.err" </dev/null &
    PIDS+=($!)
    NAME_OF[$!]=$name
    LAST=$!
}
log_of() { echo "$RUNDIR/$1.log (console: $RUNDIR/$1.err)"; }  # name -> its logs
why_line() {  # name -> the program's last error line, if any, without time and level
    grep -E "ERROR|error:" "$RUNDIR/$1.err" 2>/dev/null | tail -1 \
        | sed -E 's/^[0-9:.]+ +ERROR +[a-z-]+ +(\[[^]]*\] +)?//'
}
wait_ready() {  # label, name, pid, ready file, JSON key -> READY_PORT
    local label=$1 name=$2 pid=$3 f=$4 key=$5 deadline rc
    now_ms; deadline=$((NOW_MS + 30000))
    while now_ms; [ $NOW_MS -lt $deadline ]; do
        if [ -s "$f" ]; then
            READY_PORT=$(sed -n "s/.*\"$key\": *\([0-9][0-9]*\).*/\1/p" "$f" | head -1)
            [ -n "$READY_PORT" ] && return 0
        fi
        if ! running "$pid"; then
            rc=${RC_OF[$pid]}
            echo "$ME: the $label FAILED to start (exit $rc): $(why_line "$name")" >&2
            echo "$ME: its log: $(log_of "$name")" >&2
            tail -n 5 "$RUNDIR/$name.err" | sed "s/^/    $name: /" >&2
            [ "$rc" = 2 ] && exit 2
            exit 1
        fi
        sleep 0.05
    done
    echo "$ME: the $label did not start within 30 s; see $(log_of "$name")" >&2
    exit 1
}

# --------------------------------------------------------------------- input
rm -f "${ARTIFACTS[@]}"
rm -rf "$RUNDIR/plots"
if [ $SAMPLE = 1 ]; then
    "$PY" - "$INPUT" "$SIZE_B" "$SEED" <<'PYEOF' || die "cannot write the sample $INPUT"
import random, sys
size, rng = int(sys.argv[2]), random.Random(int(sys.argv[3]))
with open(sys.argv[1], "wb") as f:
    while size:
        n = min(size, 1 << 20)
        f.write(rng.randbytes(n))
        size -= n
PYEOF
fi
rm -f "$OUTPUT" "$OUTPUT.part"
if [ "$ACK_PORT" = 0 ]; then
    # The sender binds it last; the ACK emulator or the receiver must know it
    # first.  Picked below the ephemeral range, where their port-0 binds never land.
    ACK_PORT=$("$PY" -c "from harness.ports import spare_udp_port; print(spare_udp_port())")
fi

# -------------------------------------------------------------------- launch
ACK_TARGET=$ACK_PORT
EMU_ACK_PORT=""
if [ $ACK_ON = 1 ]; then
    emu_cmd emu-ack 0 "$ACK_PORT" $((SEED + 1)) "${AF[@]}"
    start emu-ack "${CMD[@]}"; EAPID=$LAST
    wait_ready "ACK-path emulator" emu-ack "$EAPID" "$RUNDIR/emu-ack.ready" recv_port
    ACK_TARGET=$READY_PORT EMU_ACK_PORT=$READY_PORT
fi

receiver_cmd "$ACK_TARGET"
start receiver "${CMD[@]}"; RPID=$LAST
wait_ready receiver receiver "$RPID" "$RUNDIR/receiver.ready" port
RPORT=$READY_PORT

emu_cmd emu-data "$LINK_PORT" "$RPORT" "$SEED" "${DF[@]}"
start emu-data "${CMD[@]}"; EDPID=$LAST
wait_ready "data-path emulator" emu-data "$EDPID" "$RUNDIR/emu-data.ready" recv_port
EPORT=$READY_PORT

echo "$ME: $(basename "$INPUT") -> $OUTPUT, $MODE, window $WINDOW, seed $SEED"
echo "$ME: data path: ${DF[*]:-(clean)}"
[ $ACK_ON = 1 ] && echo "$ME: ACK path:  ${AF[*]}"
echo "$ME: ports: link $EPORT, receiver $RPORT, sender ACK $ACK_PORT${EMU_ACK_PORT:+, ACK link $EMU_ACK_PORT}"
START_NS=$(date +%s%N)
sender_cmd "$EPORT"
start sender "${CMD[@]}"; SPID=$LAST

# --------------------------------------------------------------------- wait
# Until the sender ends (or the time is up); an emulator that dies on the way
# is reported at once.  Then the receiver gets the give-up time to finish.
TIMED_OUT=""
EMU_DIED=""
now_ms; deadline=$((NOW_MS + TIMEOUT * 1000))
while running "$SPID"; do
    now_ms; if [ $NOW_MS -ge $deadline ]; then TIMED_OUT=sender; break; fi
    for p in ${EAPID:-} $EDPID; do
        if [ -z "$EMU_DIED" ] && [ -z "${RC_OF[$p]:-}" ] && ! running "$p"; then
            EMU_DIED=${NAME_OF[$p]}
            echo "$ME: the ${NAME_OF[$p]} emulator died (exit ${RC_OF[$p]}) during the transfer; see $(log_of "${NAME_OF[$p]}")" >&2
        fi
    done
    sleep 0.1
done
grace=$(awk -v g="$GIVE_UP" 'BEGIN { printf "%d", g + 10.999 }')  # > LISTEN_TIMEOUT
if [ -z "$TIMED_OUT" ]; then
    now_ms; rdeadline=$((NOW_MS + grace * 1000))
    while running "$RPID"; do
        now_ms; if [ $NOW_MS -ge $rdeadline ]; then TIMED_OUT=receiver; break; fi
        sleep 0.1
    done
fi
ELAPSED_NS=$(( $(date +%s%N) - START_NS ))
cleanup   # stops the emulators (which then write their reports) and anything left

SRC=${RC_OF[$SPID]:-}
RRC=${RC_OF[$RPID]:-}
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
side_failed() {  # name, exit status or "", timed-out side
    local name=$1 rc=$2
    if [ "$TIMED_OUT" = "$name" ]; then
        if [ "$name" = sender ]; then
            why+=("the sender did not finish within --timeout $TIMEOUT s; stopped it. Its log: $(log_of sender)")
        else
            why+=("the receiver had not finished $grace s after the sender ended; stopped it. Its log: $(log_of receiver)")
        fi
    elif [ "$rc" != 0 ]; then
        why+=("the $name FAILED (exit $rc): $(why_line "$name")")
        why+=("  its log: $(log_of "$name")")
    fi
}
[ "$SRC" = 0 ] || { VERDICT=1; side_failed sender "$SRC"; }
[ "$RRC" = 0 ] || { VERDICT=1; side_failed receiver "$RRC"; }
[ -z "$EMU_DIED" ] || { VERDICT=1; why+=("the $EMU_DIED emulator died; its log: $(log_of "$EMU_DIED")"); }
SUM_OUT=""
if [ -f "$OUTPUT" ] && cmp -s "$INPUT" "$OUTPUT"; then
    SUM_IN=$(sha256sum "$INPUT" | cut -d' ' -f1); SUM_OUT=$(sha256sum "$OUTPUT" | cut -d' ' -f1)
    [ "$SUM_IN" = "$SUM_OUT" ] || { VERDICT=1; why+=("SHA-256 differs"); }
elif [ -f "$OUTPUT" ]; then
    VERDICT=1; why+=("$OUTPUT differs from $INPUT")
else
    VERDICT=1; why+=("$OUTPUT is missing")
fi
for s in "${why[@]}"; do echo "$ME: $s" >&2; done

if [ $ANALYSIS = 1 ]; then
    traces=()
    for t in sender receiver emu-data emu-ack; do
        [ -s "$RUNDIR/$t.trace.jsonl" ] && traces+=("$RUNDIR/$t.trace.jsonl")
    done
    if [ ${#traces[@]} -gt 0 ]; then
        "$PY" -m analysis "${traces[@]}" --out "$RUNDIR/plots" >"$RUNDIR/analysis.txt" 2>&1 \
            && echo "$ME: plots and analysis in $RUNDIR/plots ($RUNDIR/analysis.txt)" \
            || echo "$ME: the analysis failed; see $RUNDIR/analysis.txt" >&2
    fi
fi

SIZE_IN=$(stat -c %s "$INPUT")
SECS=$(awk -v n="$ELAPSED_NS" 'BEGIN { printf "%.2f", n / 1e9 }')
echo
if [ $VERDICT = 0 ]; then
    echo "VERDICT: OK: $SIZE_IN bytes delivered intact (SHA-256 $SUM_OUT) in $SECS s, $MODE mode, seed $SEED"
    if [ $RMLOGS = 1 ]; then
        rm -f "${ARTIFACTS[@]}"
        rm -rf "$RUNDIR/plots"
        [ $SAMPLE = 1 ] && rm -f "$INPUT"
        [ "$OUTPUT" = "$RUNDIR/received.bin" ] && rm -f "$OUTPUT"
        rmdir "$RUNDIR" 2>/dev/null
    else
        echo "run directory: $RUNDIR"
    fi
    exit 0
fi
echo "VERDICT: FAILED: $MODE mode, seed $SEED; logs in $RUNDIR"
exit 1
