"""What the two programs share around the core: argument checking, logging
set-up, address resolution and the summary table.  No sockets or threads
here; the programs call these from ``main`` only."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys

from loguru import logger

from runtime import addr

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # SIGINT: 128 + 2, as a shell reports it
EXIT_TERMINATED = 143  # SIGTERM: 128 + 15


class UsageError(Exception):
    """Bad usage or input: exit 2 with this message."""


class Interrupted(BaseException):
    """SIGINT or SIGTERM: exit 130 or 143 (interrupted_exit).  A
    BaseException like KeyboardInterrupt; its argument is the signal's name."""


def signal_name(exc: BaseException) -> str:
    """The signal an Interrupted (or a KeyboardInterrupt: SIGINT) stands for."""
    return exc.args[0] if isinstance(exc, Interrupted) and exc.args else "SIGINT"


def write_ready_file(path: str, port: int) -> None:
    """--ready-file: ``{"port": ..., "pid": ...}`` written whole (a temporary
    file renamed), for a launcher that waits for the program to listen."""
    tmp = path + ".tmp"
    try:
        with open(tmp, "w") as f:
            json.dump({"port": port, "pid": os.getpid()}, f)
        os.replace(tmp, path)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None


def interrupted_exit(name: str) -> int:
    """The exit status after the signal ``name``: 128 + its number, as a
    shell and run_pair.sh report it (130 SIGINT, 143 SIGTERM)."""
    return EXIT_TERMINATED if name == "SIGTERM" else EXIT_INTERRUPTED


def port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port {value} is outside 0..65535")
    return value


def _whole(text: str, minimum: int, rule: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"{value} {rule}")
    return value


def positive_int(text: str) -> int:
    return _whole(text, 1, "must be positive")


def nonneg_int(text: str) -> int:
    return _whole(text, 0, "must not be negative")


def _finite(text: str, zero: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (value >= 0 if zero else value > 0) or value == float("inf"):  # NaN fails both
        rule = "must be 0 or a positive number" if zero else "must be a positive number"
        raise argparse.ArgumentTypeError(f"{text} {rule}")
    return value


def nonneg_float(text: str) -> float:
    return _finite(text, zero=True)


#: The longest time an option may give, in seconds (11.6 days): timers and
#: waits must stay within what the platform's clocks and polls take.
MAX_SECONDS = 1e6


def _bounded(value: float, text: str) -> float:
    if value > MAX_SECONDS:
        raise argparse.ArgumentTypeError(f"{text} s is too long (at most {MAX_SECONDS:g} s)")
    return value


def seconds(text: str) -> float:
    """A positive number of seconds, at most MAX_SECONDS."""
    return _bounded(_finite(text, zero=False), text)


def seconds0(text: str) -> float:
    """Zero or a positive number of seconds, at most MAX_SECONDS."""
    return _bounded(_finite(text, zero=True), text)


#: The largest payload a segment may carry: its 20-byte TCP header and
#: payload (options of a data segment come out of the MSS) fit in one UDP
#: datagram over IPv4, 65535 - 20 (IP) - 8 (UDP) = 65507 bytes.
MAX_MSS = 65507 - 20
#: The largest receive window TCP can advertise: 65535 << 14 (RFC 7323 §2.3).
MAX_BUFFER = 0xFFFF << 14


def mss_bytes(text: str) -> int:
    """--mss: 1 to MAX_MSS bytes."""
    value = _whole(text, 1, "must be positive")
    if value > MAX_MSS:
        raise argparse.ArgumentTypeError(
            f"{value} does not fit in a UDP datagram with its TCP header (at most {MAX_MSS})")
    return value


def buffer_size(text: str) -> int:
    """--buffer: a byte_size up to the largest window TCP can advertise."""
    value = byte_size(text)
    if value > MAX_BUFFER:
        raise argparse.ArgumentTypeError(
            f"{text} is more than the largest window TCP can advertise (65535 << 14 = "
            f"{MAX_BUFFER} bytes, RFC 7323)")
    return value


def os_error(exc: OSError) -> str:
    """One line for an OSError: what failed, on which file."""
    text = exc.strerror or str(exc)
    if exc.filename is not None:
        text += f": {exc.filename}"
    return text


def byte_size(text: str) -> int:
    """A size in bytes, with an optional K, M or G suffix (powers of 1024)."""
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    t = text.strip().lower().removesuffix("ib").removesuffix("b")
    mult = 1
    if t and t[-1] in units:
        mult = units[t[-1]]
        t = t[:-1]
    try:
        value = int(float(t) * mult)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size (e.g. 65536, 64K, 4M)") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be a positive size")
    return value


class ArgumentParser(argparse.ArgumentParser):
    """argparse that raises UsageError instead of exiting, so main decides."""

    def error(self, message: str):  # noqa: D401
        raise UsageError(f"{message} (see --help)")

    def exit(self, status: int = 0, message: str | None = None):
        if message:
            sys.stderr.write(message)
        raise SystemExit(status)  # only --help and --version come here


def check_rto_bounds(args) -> None:
    """--min-rto and --max-rto, which every program takes, in order (the RTT
    estimator refuses them otherwise, common/rtt.py)."""
    if args.min_rto > args.max_rto:
        raise UsageError("--min-rto must not exceed --max-rto")


def add_common_options(p: argparse.ArgumentParser, peer: str, port_name: str) -> None:
    """The options both programs take, with the same meaning and defaults."""
    p.add_argument("--min-rto", type=seconds, default=0.2,
                   help="lower bound of the retransmission timeout, seconds (default 0.2; "
                        "RFC 6298 says 1)")
    p.add_argument("--max-rto", type=seconds, default=60.0,
                   help="upper bound of the retransmission timeout, seconds (default 60)")
    p.add_argument("--give-up", type=seconds, default=30.0,
                   help=f"abort when the {peer} is silent this long, seconds (default 30)")
    p.add_argument("--bind", default=None, metavar="ADDRESS",
                   help=f"local address to bind {port_name} on (default: the loopback, "
                        f"127.0.0.1 or ::1 as the {peer}'s address is, which is all a {peer} on "
                        f"this machine needs; for one on another machine give this machine's "
                        f"address, or 0.0.0.0 (IPv4) or :: (IPv6) for every address)")
    p.add_argument("--trace", metavar="FILE", help="write a JSON-lines event trace")
    p.add_argument("--pcap", metavar="FILE",
                   help="write every segment sent and received as a pcap for Wireshark")
    p.add_argument("--snaplen", type=positive_int, default=None, metavar="BYTES",
                   help="keep only the first BYTES of each packet in the --pcap file "
                        "(default: whole packets; 100 keeps the IP and TCP headers)")
    p.add_argument("--log-level", default="INFO",
                   choices=("TRACE", "DEBUG", "INFO", "WARNING", "ERROR"),
                   help="console and log file level; DEBUG logs every segment (default INFO)")
    p.add_argument("--log-file", metavar="FILE", help="also write the log to FILE")
    p.add_argument("--quiet", action="store_true",
                   help="print errors only: no progress bar and no summary")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--cpu", type=nonneg_int, default=None, metavar="N",
                   help="run all of this program's threads on CPU N only (Linux); give the "
                        "sender and the receiver different ones (default: wherever the "
                        "kernel puts them)")
    p.add_argument("--thread-trace", metavar="FILE",
                   help="write what every thread did (lock holds and waits, condition "
                        "waits and how they ended, system calls, the window and queue "
                        "counters) as Chrome trace-event JSON: open it in Perfetto UI "
                        "(ui.perfetto.dev) or chrome://tracing, or read it with "
                        "stcp-analyze")
    p.add_argument("--thread-trace-events", type=positive_int, default=None, metavar="N",
                   help="keep the newest N events of each thread in the thread trace "
                        "(default 100000; memory stays bounded in long runs)")
    p.add_argument("--test-isn", type=int, default=None, help=argparse.SUPPRESS)


def pin_cpu(cpu: int | None) -> None:
    """Keep this process on CPU ``cpu`` (None: leave it to the kernel).

    Call it before any thread starts: a thread inherits the CPU mask of the
    one that starts it.  Python runs one thread at a time anyway (the GIL);
    on one core the threads pass it on without waking each other across
    cores, and the peer program keeps the other core to itself.
    """
    if cpu is None:
        return
    if not hasattr(os, "sched_setaffinity"):
        raise UsageError("--cpu needs sched_setaffinity, which this system lacks")
    allowed = os.sched_getaffinity(0)
    if cpu not in allowed:
        raise UsageError(f"--cpu {cpu}: this process may run on CPU "
                         f"{', '.join(map(str, sorted(allowed)))} only")
    os.sched_setaffinity(0, {cpu})


def install_signal_handlers(stack) -> None:
    """SIGINT and SIGTERM raise Interrupted in the main thread until ``stack`` closes."""
    raised = []

    def on_signal(signum, frame):
        # Once: a second signal must not break off the clean-up (joining the
        # threads, the RST, removing FILE.part) that the first one started.
        if not raised:
            raised.append(signum)
            raise Interrupted(signal.Signals(signum).name)

    for sig in (signal.SIGINT, signal.SIGTERM):
        stack.callback(signal.signal, sig, signal.signal(sig, on_signal))


def open_outputs(stack, args, local: tuple[str, int], remote: tuple[str, int]):
    """The --trace and --pcap files of a program, closed by ``stack``.

    The pcap shows the connection as one TCP flow between ``local`` and
    ``remote`` (the wire ports differ when an emulator sits between).
    """
    from runtime.pcap import SNAPLEN, PcapWriter
    from runtime.trace import Tracer

    tracer = pcap = None
    try:
        if args.trace:
            tracer = Tracer(stack.enter_context(open(args.trace, "w", buffering=1 << 16)))
        if args.pcap:
            pcap = PcapWriter(stack.enter_context(open(args.pcap, "wb")), local=local,
                              remote=remote, snaplen=min(args.snaplen or SNAPLEN, SNAPLEN))
            stack.callback(pcap.close)
    except OSError as exc:
        raise UsageError(f"cannot write {exc.filename}: {exc.strerror}") from None
    return tracer, pcap


def open_thread_trace(stack, args, role: str):
    """Start the --thread-trace recorder, before the program makes its locks;
    ``stack`` writes the file when it closes (a normal end, a failure or a
    signal).  None without the option."""
    from runtime import threadtrace

    if not args.thread_trace:
        if args.thread_trace_events is not None:
            raise UsageError("--thread-trace-events needs --thread-trace")
        return None
    try:
        rec = threadtrace.enable(args.thread_trace, role,
                                 args.thread_trace_events or threadtrace.DEFAULT_EVENTS)
    except OSError as exc:
        raise UsageError(f"cannot write {args.thread_trace}: {exc.strerror or exc}") from None

    def write() -> None:
        threadtrace.disable()
        try:
            rec.write()
        except OSError as exc:
            logger.error("cannot write the thread trace {}: {}", args.thread_trace,
                         exc.strerror or exc)

    stack.callback(write)
    return rec


def peer_address(host: str, bind: str | None, what: str) -> tuple[int, str, str]:
    """(family, address, local address to bind) for the peer ``host`` (a name,
    an IPv4 or an IPv6 address, [::1] too): the socket takes the peer's
    family; ``bind`` (--bind) must be of it, and by default is its loopback
    (runtime/addr.py).  A bad one is a UsageError."""
    try:
        family, address = addr.resolve(host, what)
        return family, address, addr.bind_address(bind, family, address, what, host)
    except addr.AddressError as exc:
        raise UsageError(str(exc)) from None


#: The console sink: its loguru id, level and format (console_to moves it).
_CONSOLE: dict = {}


def setup_logging(name: str, level: str, log_file: str | None, quiet: bool) -> None:
    """Console and optional file sinks for loguru; called from main only."""
    logger.remove()
    console_level = "ERROR" if quiet else level
    fmt = "<green>{time:HH:mm:ss.SSS}</green> <level>{level: <7}</level> " + name + \
        " [{thread.name}] {message}"
    _CONSOLE.update(id=logger.add(sys.stderr, level=console_level, format=fmt, colorize=None),
                    level=console_level, format=fmt)
    if log_file:
        try:
            logger.add(log_file, level=level, format="{time:YYYY-MM-DD HH:mm:ss.SSSSSS} "
                       "{level: <7} [{thread.name}] {message}", enqueue=False, mode="w")
        except OSError as exc:
            raise UsageError(f"cannot write the log file {log_file}: {exc}") from None


def format_summary(title: str, rows: list[tuple[str, object]]) -> str:
    width = max(len(k) for k, _ in rows)
    lines = [title, "-" * len(title)]
    lines += [f"  {k:<{width}}  {v}" for k, v in rows]
    return "\n".join(lines)


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    return f"{n:.2f} GiB"


def human_rate(bytes_: int, seconds: float) -> str:
    if seconds <= 0:
        return "n/a"
    bps = bytes_ * 8 / seconds
    for unit in ("bit/s", "kbit/s", "Mbit/s", "Gbit/s"):
        if bps < 1000 or unit == "Gbit/s":
            return f"{bps:.2f} {unit}"
        bps /= 1000
    return f"{bps:.2f} Gbit/s"


def ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 1000:.1f} ms"


def console_to(write) -> None:
    """Console log lines go to ``write(text)`` from now on (a progress bar's:
    it clears the bar, prints the line and draws the bar again, so that no
    line lands in the middle of it), or to stderr again with None."""
    if not _CONSOLE:
        return  # (logging not set up: a test calling a program's parts)
    logger.remove(_CONSOLE["id"])
    sink = sys.stderr if write is None else write
    _CONSOLE["id"] = logger.add(sink, level=_CONSOLE["level"], format=_CONSOLE["format"],
                                colorize=None if write is None else sys.stderr.isatty())


def debug_enabled() -> bool:
    """True when some loguru sink takes DEBUG lines, so per-segment lines are
    worth building; checked once at start, so the check costs nothing later."""
    try:
        return logger._core.min_level <= 10  # noqa: SLF001 - loguru has no public probe
    except AttributeError:
        return True
