"""run_pair.sh's command line: its help, its options, and every check of
their values, each failing with one line (exit 2) before anything starts."""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from harness import rundir, spec
from harness.spec import parse_size

ME = "run_pair.sh"

USAGE = """\
usage: ./run_pair.sh [options]

With no options: makes a 4 MiB random sample file, sends it through an
emulated link with 5% loss, 1% corrupted datagrams, 2% reordering and 10 ms
delay, and verifies what arrived.  Logs, traces, emulator reports, pcaps and
plots go to a run directory (printed at the end, with its size).

Transfer:
  -i, --input FILE       file to send (default: a random sample, see --size)
      --size BYTES       size of the sample file (default 4M; K/M/G suffixes; 0 allowed)
  -o, --output FILE      where the receiver writes (default: RUNDIR/received.bin;
                         an existing file is replaced)
  -w, --window BYTES     sender window (default 256K)
  -m, --mode gbn|sr      Go-Back-N or selective repeat with SACK (default sr)
      --mss BYTES        maximum segment size (default 1452)
      --cc none|newreno|cubic
                         congestion control (default none: the fixed window); with
                         newreno or cubic the window grows and shrinks with the
                         network, and --window is its cap
      --pacing GAIN      the sender paces new data at GAIN x window / SRTT (default
                         1.5 with --cc none; with congestion control 2 in slow start,
                         1.2 after); 0 sends each window at once, as the textbook does
      --no-timestamps    the sender offers no TCP timestamps (RFC 7323; on by default:
                         an RTT sample from every ACK, resends included; off, Karn's
                         rule alone, as the original protocol)
      --buffer BYTES     receiver buffer / largest advertised window (default 4M)
      --write-delay S    a slow disk: the receiver's writer waits S seconds per segment
                         before writing (default 0), for flow-control experiments
      --delayed-ack S    how long the receiver may hold the ACK of a lone in-order
                         segment (default 0.04; 0: off, an ACK at the end of each read)
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
      --queue-packets N  queue limit in datagrams as well (netem and Mahimahi count
                         packets; alone, it replaces the byte limit)
      --aqm none|red|codel  active queue management at that queue (default none:
                         tail drop); CoDel with RFC 8289's 5 ms target, 100 ms interval
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
Many flows (stcp-serve, one data-path and one ACK-path emulator, N senders):
      --flows N          N senders at once, each its own sample file (--size) or a copy
                         of --input, into one server; a per-flow table (bytes, goodput,
                         retransmissions, final cwnd with --cc), Jain's fairness index,
                         and per-flow goodput (and cwnd) over time in plots/flows.png
      --stagger SECONDS  start the senders this long apart (default 0)
      --flow-delays D,D,...  one more one-way delay per flow (seconds, N values), by an
                         emulator of its own in front of the shared one: flows with
                         different RTTs
Other:
      --seed N           seed of every random decision of the emulators and of the
                         sample file (default: random, printed); the ACK emulator
                         gets N+1
      --ipv6             run everything over IPv6, on ::1 (the same as --host ::1)
      --host ADDRESS     the loopback address every program listens and sends on:
                         127.0.0.1 (default), another 127.x.y.z, or ::1 (IPv6)
      --link-port PORT   emulator receive port (default: a free one)
      --recv-port PORT   receiver listen port (default: a free one)
      --ack-port PORT    sender's ACK port (default: a free one)
      --dir DIR          run directory for logs, traces, pcaps and plots
                         (default: runs/run-YYYYmmdd-HHMMSS-PID); one that holds an
                         earlier run is refused, not overwritten: remove it or name another
      --no-analysis      no traces, pcaps or plots (fastest)
      --thread-trace     sender.threads.json and receiver.threads.json (with --flows:
                         one per sender and server.threads.json): what every thread
                         did (locks, condition waits, system calls, counters), for
                         Perfetto UI / chrome://tracing and stcp-analyze
      --lab NAME         the options of lab NAME in docs/LABS.md, here; options after
                         it change them
      --snaplen BYTES    keep only the first BYTES of each packet in the pcaps (100: the
                         IP and TCP headers, no payload; default: whole packets)
      --keep-logs        keep the run directory (the default)
      --rm-logs          on success, delete what this run wrote in the run directory
                         (and the directory, if then empty); kept on failure
      --verbose          per-segment DEBUG lines in the log files
      --dry-run          print the commands that would run, start nothing
  -h, --help             this help

Exit status: 0 the file arrived intact; 1 the transfer failed (the side that
failed and its log are named); 2 bad usage; 130 interrupted (143 on SIGTERM).
"""

IMPAIRMENTS = tuple(spec.IMPAIRMENTS)  # each --NAME and --ack-NAME flag's emulator flags
#: The sender's --cc names, as common.congestion.ALGORITHMS registers them
#: (a test keeps the two equal); written out because the options are checked
#: with the harness alone, before .venv exists (tests/test_run_pair_setup.py).
CC_NAMES = ("none", "newreno", "cubic")
DEFAULTS = {"loss": "5", "corrupt": "1", "reorder": "2", "delay": "0.010"}
VALUES = {"-i": "input", "--input": "input", "--size": "size", "-o": "output",
          "--output": "output", "-w": "window", "--window": "window", "-m": "mode",
          "--mode": "mode", "--mss": "mss", "--pacing": "pacing", "--buffer": "buffer",
          "--give-up": "give_up", "--timeout": "timeout", "--seed": "seed", "--dir": "dir",
          "--snaplen": "snaplen", "--write-delay": "write_delay", "--cc": "cc",
          "--delayed-ack": "delayed_ack",
          "--flows": "flows", "--stagger": "stagger", "--flow-delays": "flow_delays",
          "--host": "host"}
PORTS = {"--link-port": "link_port", "--recv-port": "recv_port", "--ack-port": "ack_port"}
SWITCHES = {"--no-analysis": ("analysis", False), "--rm-logs": ("rm_logs", True),
            "--keep-logs": ("rm_logs", False), "--verbose": ("verbose", True),
            "--dry-run": ("dry_run", True), "--clean": ("clean", True),
            "--thread-trace": ("thread_trace", True), "--ipv6": ("host", "::1"),
            "--no-timestamps": ("timestamps", False)}

_NUM = re.compile(r"^([0-9]+\.?[0-9]*|\.[0-9]+)$")
_INT = re.compile(r"^[0-9]+$")
_BURST = re.compile(r"^[0-9.]+:[0-9.]+(:[0-9.]+(:[0-9.]+)?)?$")
_DROP = re.compile(r"^[1-9][0-9]*(,[1-9][0-9]*)*$")
_BLACKHOLE = re.compile(r"^[0-9.]+:[0-9.]+$")


class UsageError(Exception):
    """Bad usage: run_pair.sh prints 'run_pair.sh: error: MESSAGE' and exits 2."""


@dataclass
class PairArgs:
    """The options as given (strings), then the values checked from them."""

    input: str = ""
    size: str = "4M"
    output: str = ""
    window: str = "256K"
    mode: str = "sr"
    mss: str = "1452"
    cc: str = "none"
    pacing: str = ""
    buffer: str = "4M"
    give_up: str = "30"
    timeout: str = "600"
    seed: str = ""
    dir: str = ""
    snaplen: str = ""
    write_delay: str = ""
    delayed_ack: str = ""
    flows: str = ""        # --flows N: N senders into one stcp-serve (harness/flows.py)
    stagger: str = ""
    flow_delays: str = ""
    host: str = "127.0.0.1"  # --host, --ipv6: where every program listens and sends
    thread_trace: bool = False
    timestamps: bool = True  # the sender offers RFC 7323 timestamps
    link_port: int = 0
    recv_port: int = 0
    ack_port: int = 0
    analysis: bool = True
    rm_logs: bool = False
    verbose: bool = False
    dry_run: bool = False
    clean: bool = False
    help: bool = False
    data: dict[str, str] = field(default_factory=dict)  # data-path impairments
    ack: dict[str, str] = field(default_factory=dict)   # ACK-path impairments
    ack_on: bool = False
    # checked
    size_b: int = 0
    window_b: int = 0
    buffer_b: int = 0
    mss_b: int = 0
    flows_n: int = 0
    delays: list[float] = field(default_factory=list)  # --flow-delays, one per flow


def is_num(v: str) -> bool:
    return bool(_NUM.match(v))


def _percent(opt: str, v: str, top: float, rule: str) -> None:
    if not (is_num(v) and float(v) <= top):
        raise UsageError(f"{opt} {rule}, not '{v}'")


def check_value(opt: str, key: str, v: str) -> None:
    """The value of an impairment option, or UsageError."""
    if key in ("loss", "reorder", "dup"):
        _percent(opt, v, 100, "takes a percentage 0..100")
    elif key == "corrupt":
        _percent(opt, v, 99.999, "takes a percentage in [0, 100)")
    elif key == "ber":
        _percent(opt, v, 100000, "takes bits per 100000, 0..100000")
    elif key in ("delay", "jitter", "reorder-hold") and not is_num(v):
        raise UsageError(f"{opt} takes seconds, not '{v}'")
    elif key == "rate" and not (is_num(v) and float(v) > 0):
        raise UsageError(f"{opt} takes a positive kbit/s, not '{v}'")
    elif key == "queue" and not (parse_size(v) or 0) > 0:
        raise UsageError(f"{opt} takes a size in bytes, not '{v}'")
    elif key == "queue-packets" and not (_INT.match(v) and int(v) > 0):
        raise UsageError(f"{opt} takes a whole number of datagrams > 0, not '{v}'")
    elif key == "aqm" and v not in ("none", "red", "codel"):
        raise UsageError(f"{opt} must be none, red or codel, not '{v}'")
    elif key == "burst":
        if not _BURST.match(v):
            raise UsageError(f"{opt} takes P:R[:L[:G]] percentages, not '{v}'")
        for x in v.split(":"):
            if not (is_num(x) and float(x) <= 100):
                raise UsageError(f"{opt}: '{x}' is not a percentage")
    elif key == "drop" and not _DROP.match(v):
        raise UsageError(f"{opt} takes datagram numbers N,N,... (from 1), not '{v}'")
    elif key == "blackhole" and not (_BLACKHOLE.match(v)
                                     and all(is_num(x) for x in v.split(":"))):
        raise UsageError(f"{opt} takes START:DURATION in seconds, not '{v}'")


def _impairment(a: PairArgs, opt: str, value: str) -> None:
    ack = opt.startswith("--ack-")
    key = opt[len("--ack-"):] if ack else opt[2:]
    check_value(opt, key, value)
    imp = a.ack if ack else a.data
    imp[key] = value
    if key in ("ber", "corrupt"):  # one replaces the other
        imp.pop("corrupt" if key == "ber" else "ber", None)
    a.ack_on = a.ack_on or ack


def _port(opt: str, v: str) -> int:
    if not (_INT.match(v) and int(v) <= 65535):
        raise UsageError(f"{opt} takes a port 0..65535, not '{v}'")
    return int(v)


def expand_labs(argv: list[str]) -> list[str]:
    """``--lab NAME`` replaced by that lab's options (docs/LABS.md, read by
    harness/labs.py), where it stands: options after it win."""
    from harness import labs

    out, i = [], 0
    while i < len(argv):
        if argv[i] != "--lab":
            out.append(argv[i])
            i += 1
            continue
        if i + 1 >= len(argv) or not argv[i + 1]:
            raise UsageError("--lab needs a value")
        try:
            out += labs.pair_argv(argv[i + 1])
        except labs.LabError as exc:
            raise UsageError(str(exc)) from None
        i += 2
    return out


def parse(argv: list[str]) -> PairArgs:
    """The options, read in order (a bad value fails at once; -h stops the reading)."""
    a = PairArgs()
    argv = expand_labs(argv)
    impairments = {f"--{k}" for k in IMPAIRMENTS} | {f"--ack-{k}" for k in IMPAIRMENTS}
    i = 0
    while i < len(argv):
        opt = argv[i]
        if opt in ("-h", "--help"):
            a.help = True
            return a
        if opt in SWITCHES:
            setattr(a, *SWITCHES[opt])
            i += 1
            continue
        if opt not in VALUES and opt not in PORTS and opt not in impairments:
            raise UsageError(f"unknown option '{opt}' (see --help)")
        if i + 1 >= len(argv) or not argv[i + 1]:
            raise UsageError(f"{opt} needs a value")
        value = argv[i + 1]
        if opt in VALUES:
            setattr(a, VALUES[opt], value)
        elif opt in PORTS:
            setattr(a, PORTS[opt], _port(opt, value))
        else:
            _impairment(a, opt, value)
        i += 2
    check(a)
    return a


def _size(opt: str, text: str, example: str) -> int:
    n = parse_size(text)
    if n is None:
        raise UsageError(f"{opt} takes a size like {example}, not '{text}'")
    return n


def check(a: PairArgs) -> None:
    """The values that depend on each other or on the file system, in the
    order run_pair.sh has always checked them; fills in the defaults."""
    if a.mode not in ("gbn", "sr"):
        raise UsageError(f"--mode must be gbn or sr, not '{a.mode}'")
    if not (_INT.match(a.timeout) and int(a.timeout) > 0):
        raise UsageError(f"--timeout takes whole seconds > 0, not '{a.timeout}'")
    if not (is_num(a.give_up) and float(a.give_up) > 0):
        raise UsageError(f"--give-up takes seconds > 0, not '{a.give_up}'")
    if a.seed and not (_INT.match(a.seed) and len(a.seed) <= 10):
        raise UsageError(f"--seed takes a whole number, not '{a.seed}'")
    if not (_INT.match(a.mss) and 1 <= int(a.mss) <= 65487):  # runtime.progutil.MAX_MSS
        raise UsageError(f"--mss takes 1..65487 bytes, not '{a.mss}'")
    a.mss_b = int(a.mss)
    if a.cc not in CC_NAMES:
        raise UsageError(f"--cc must be {', '.join(CC_NAMES)}, not '{a.cc}'")
    if a.pacing and not is_num(a.pacing):
        raise UsageError(f"--pacing takes a gain >= 0 (0: off), not '{a.pacing}'")
    if a.write_delay and not is_num(a.write_delay):
        raise UsageError(f"--write-delay takes seconds >= 0, not '{a.write_delay}'")
    if a.delayed_ack and not (is_num(a.delayed_ack) and float(a.delayed_ack) < 0.5):
        raise UsageError(f"--delayed-ack takes seconds from 0 to under 0.5, not "
                         f"'{a.delayed_ack}'")
    if a.snaplen and not (_INT.match(a.snaplen) and 1 <= int(a.snaplen) <= 65535):
        raise UsageError(f"--snaplen takes 1..65535 bytes, not '{a.snaplen}'")
    a.size_b = _size("--size", a.size, "300K or 4M")
    a.window_b = _size("--window", a.window, "64K")
    a.buffer_b = _size("--buffer", a.buffer, "4M")
    for opt, n in (("--window", a.window_b), ("--buffer", a.buffer_b)):
        if n < a.mss_b:
            raise UsageError(f"{opt} ({n} bytes) must hold at least one MSS ({a.mss_b})")
    a.host = _host(a.host)
    _check_files(a)
    _check_flows(a)
    if not a.clean:  # the defaults, for what the options left out
        for k in ("loss", "reorder", "delay"):
            a.data.setdefault(k, DEFAULTS[k])
        if "corrupt" not in a.data and "ber" not in a.data:
            a.data["corrupt"] = DEFAULTS["corrupt"]
    ports = [("--ack-port", a.ack_port), ("--link-port", a.link_port),
             ("--recv-port", a.recv_port)]
    for i, (p, x) in enumerate(ports):
        for q, y in ports[i + 1:]:
            if x and x == y:
                raise UsageError(f"{p} and {q} must differ")
    if a.dir and (found := rundir.earlier_run(Path(a.dir))):
        shown = ", ".join(found[:3]) + (f" and {len(found) - 3} more" if len(found) > 3 else "")
        raise UsageError(f"--dir {a.dir} holds an earlier run ({shown}); it is kept: remove "
                         "it or give another --dir")


def _host(text: str) -> str:
    """--host: a loopback address, IPv4 or IPv6 (in brackets or not); the
    whole run is on this machine."""
    bare = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        ip = ipaddress.ip_address(bare)
    except ValueError:
        raise UsageError(f"--host takes a loopback address (127.0.0.1 or ::1), "
                         f"not '{text}'") from None
    if not ip.is_loopback:
        raise UsageError(f"--host {text} is not a loopback address: run_pair.sh runs every "
                         f"program on this machine (127.0.0.1 or ::1)")
    return str(ip)


def _check_flows(a: PairArgs) -> None:
    if not a.flows:
        for opt, v in (("--stagger", a.stagger), ("--flow-delays", a.flow_delays)):
            if v:
                raise UsageError(f"{opt} needs --flows")
        return
    if not (_INT.match(a.flows) and 1 <= int(a.flows) <= 64):
        raise UsageError(f"--flows takes 1..64 senders, not '{a.flows}'")
    a.flows_n = int(a.flows)
    if a.stagger and not is_num(a.stagger):
        raise UsageError(f"--stagger takes seconds >= 0, not '{a.stagger}'")
    if a.flow_delays:
        parts = a.flow_delays.split(",")
        if not all(is_num(x) for x in parts) or len(parts) != a.flows_n:
            raise UsageError(f"--flow-delays takes {a.flows_n} delays in seconds, "
                             f"D,D,..., not '{a.flow_delays}'")
        a.delays = [float(x) for x in parts]
    for opt, v in (("--output", a.output), ("--ack-port", a.ack_port)):
        if v:
            raise UsageError(f"{opt} does not go with --flows (each flow has its own)")


def _check_files(a: PairArgs) -> None:
    if a.input and not (os.path.isfile(a.input) and os.access(a.input, os.R_OK)):
        raise UsageError(f"cannot read {a.input}")
    if a.output:
        if not os.path.isdir(os.path.dirname(a.output) or "."):
            raise UsageError(f"the directory of {a.output} does not exist")
        if os.path.isdir(a.output):
            raise UsageError(f"{a.output} is a directory")
        if a.input and os.path.exists(a.output) and os.path.samefile(a.input, a.output):
            raise UsageError("--output is the input file itself")


def receiver_extra(a: PairArgs) -> list[str]:
    """The receiver's (or the server's) options that run_pair passes on as given."""
    out = ["--write-delay", a.write_delay] if a.write_delay else []
    return out + (["--delayed-ack", a.delayed_ack] if a.delayed_ack else [])
