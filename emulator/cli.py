"""Command line of the link emulator (``stcp-link``, ``python -m emulator``)."""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import secrets
import signal
import socket
import sys
import time
from dataclasses import asdict, dataclass

from loguru import logger

from emulator.impair import MIN_REORDER_HOLD, Impairments
from emulator.link import LinkEmulator, LinkError
from runtime.trace import Tracer

PROG = "stcp-link"

DESCRIPTION = """\
A one-direction lossy link between two UDP sockets, in the spirit of newudpl.
Datagrams received on RECV_PORT (from the -i source only) are forwarded from
SEND_PORT to the -o address, after loss, corruption, duplication, reordering,
delay and a link-speed bottleneck as asked.  Run a second instance for the
other direction."""

EPILOG = """\
exact meanings:
  -L, -D, -O    each datagram independently, with the given probability.
  -B            each bit independently flipped with probability B/100000; the
                number of flipped bits in an n-bit datagram is binomial.  Two
                flips in one datagram can cancel out in the 16-bit Internet
                checksum (the same bit of two words, one 0->1, one 1->0): such
                a datagram is taken as good, and the receiver's end-to-end
                SHA-256 then refuses the file.  That is the checksum's real
                weakness; to study loss recovery rather than it, use -C.
  -C            a datagram hit (with probability C/100) gets exactly one bit
                flipped, uniformly placed: the checksum always catches it.
  -O            a datagram selected for reordering is held back and leaves
                right after the next forwarded datagram that is not itself held
                (never before its own release time); if none has left
                --reorder-hold seconds after its own release time, it leaves
                then (default max(2*delay, 0.05)).
  -D            the copy leaves right after the original; it takes no link time.
  -s, -q        a datagram's departure = max(now, link free) + bytes*8/rate
                (UDP payload bytes); a datagram that would make the queued
                bytes (including the one being serialised) exceed -q is dropped.
                -d and --jitter are added after the bottleneck.
  --jitter J    extra delay uniform in [0, J); jitter CAN reorder datagrams
                by itself (with -O 0), as on a real path with varying delay.
  --ge-*        Gilbert-Elliott burst loss: each datagram is first lost with the
                current state's loss probability, then the state changes (good
                -> bad with --ge-p, bad -> good with --ge-r).  The model starts
                in the good state; it is on when --ge-p or --ge-good-loss > 0.
  drop causes   counted by cause, first match wins: list, blackhole, burst
                (Gilbert-Elliott), loss (-L), queue (tail drop).
  --seed        one random generator; per datagram the draws are made in a fixed
                order (GE loss, GE transition, -L, -D, -O, jitter, bit errors,
                -C),
                also for datagrams dropped by --drop, --blackhole or the queue,
                so the same seed and the same datagram lengths give the same
                decisions.  Without --seed a seed is drawn and reported.

exit status: 0 after SIGINT or SIGTERM (with the report), 2 for a bad flag,
address or port in use, 1 if the link failed while running."""


class UsageError(Exception):
    """A bad flag or value; exit status 2."""


class _HelpExit(Exception):
    def __init__(self, status: int):
        super().__init__(status)
        self.status = status


class _Parser(argparse.ArgumentParser):
    """argparse without sys.exit: errors and --help become exceptions main() turns into codes."""

    def error(self, message: str):  # type: ignore[override]
        raise UsageError(message)

    def exit(self, status: int = 0, message: str | None = None):  # type: ignore[override]
        if message:
            sys.stderr.write(message)
        raise _HelpExit(status)


# ------------------------------------------------------------------ value types


def _number(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what}: not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{what}: must be finite: {text!r}")
    return value


def percent(text: str) -> float:
    value = _number(text, "percentage")
    if not 0.0 <= value <= 100.0:
        raise argparse.ArgumentTypeError(f"percentage must be within 0..100, got {text}")
    return value


def ber_value(text: str) -> float:
    value = _number(text, "bit error rate")
    if not 0.0 <= value <= 100000.0:
        raise argparse.ArgumentTypeError(
            f"bit error rate is per 100000 bits, must be within 0..100000, got {text}"
        )
    return value


def seconds(text: str) -> float:
    value = _number(text, "seconds")
    if value < 0.0:
        raise argparse.ArgumentTypeError(f"seconds must be >= 0, got {text}")
    return value


def positive(text: str) -> float:
    value = _number(text, "value")
    if value <= 0.0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def queue_bytes(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"queue size: not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"queue size must be >= 1 byte, got {text}")
    return value


def _port(text: str, what: str, wildcard: bool = False, zero: bool = True) -> int | None:
    if wildcard and text == "*":
        return None
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what}: bad port {text!r}") from None
    if not (0 if zero else 1) <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{what}: port out of range: {text}")
    return port


def _split_host_port(text: str, what: str) -> tuple[str, str]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port:
        raise argparse.ArgumentTypeError(f"{what}: expected host:port, got {text!r}")
    return host, port


def accept_spec(text: str) -> tuple[str | None, int | None]:
    host, port = _split_host_port(text, "-i")
    return (None if host == "*" else host), _port(port, "-i", wildcard=True)


def out_spec(text: str) -> tuple[str, int]:
    host, port = _split_host_port(text, "-o")
    if host == "*":
        raise argparse.ArgumentTypeError("-o: the output host cannot be a wildcard")
    return host, _port(port, "-o", zero=False)  # type: ignore[return-value]


def ports_spec(text: str) -> tuple[int, int]:
    recv, sep, send = text.partition(":")
    if not sep:
        raise argparse.ArgumentTypeError(f"-p: expected recv_port:send_port, got {text!r}")
    r = _port(recv, "-p recv_port")
    s = _port(send, "-p send_port")
    assert r is not None and s is not None
    if r == s and r != 0:
        raise argparse.ArgumentTypeError("-p: recv_port and send_port must differ")
    return r, s


def drop_list(text: str) -> frozenset[int]:
    out = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            n = int(part)
        except ValueError:
            raise argparse.ArgumentTypeError(f"--drop: not an integer: {part!r}") from None
        if n < 1:
            raise argparse.ArgumentTypeError(f"--drop: datagram numbers start at 1, got {n}")
        out.add(n)
    if not out:
        raise argparse.ArgumentTypeError("--drop: empty list")
    return frozenset(out)


def blackhole_spec(text: str) -> tuple[float, float]:
    start, sep, duration = text.partition(":")
    if not sep:
        raise argparse.ArgumentTypeError(f"--blackhole: expected START:DURATION, got {text!r}")
    return seconds(start), seconds(duration)


# ---------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog=PROG,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("-i", dest="accept", type=accept_spec, default=(None, None),
                   metavar="HOST:PORT",
                   help="accept datagrams only from this source; '*' for any host or port "
                        "(default *:*); others are ignored and counted")
    p.add_argument("-o", dest="out", type=out_spec, default=("localhost", 41194),
                   metavar="HOST:PORT", help="forward to this address (default localhost:41194)")
    p.add_argument("-p", dest="ports", type=ports_spec, default=(41192, 41193),
                   metavar="RECV:SEND",
                   help="receive on RECV, send from SEND (default 41192:41193; 0 = any free port)")
    p.add_argument("--bind", default="127.0.0.1", metavar="ADDR",
                   help="local address both sockets bind to (default 127.0.0.1; "
                        "0.0.0.0 to serve other hosts)")
    p.add_argument("-L", dest="loss", type=percent, default=0.0, metavar="PCT",
                   help="random loss, percent of datagrams")
    p.add_argument("-B", dest="ber", type=ber_value, default=0.0, metavar="N",
                   help="bit error rate: flipped bits per 100000 bits, as newudpl")
    p.add_argument("-C", dest="corrupt", type=percent, default=0.0, metavar="PCT",
                   help="corruption: percent of datagrams with exactly one flipped bit")
    p.add_argument("-O", dest="reorder", type=percent, default=0.0, metavar="PCT",
                   help="out of order: percent of datagrams held back past the next one")
    p.add_argument("-D", dest="dup", type=percent, default=0.0, metavar="PCT",
                   help="duplication, percent of datagrams sent twice")
    p.add_argument("-d", dest="delay", type=seconds, default=0.0, metavar="SECONDS",
                   help="one-way delay in seconds")
    p.add_argument("--jitter", type=seconds, default=0.0, metavar="SECONDS",
                   help="random extra delay, uniform in [0, SECONDS); may reorder datagrams")
    p.add_argument("-s", dest="speed", type=positive, default=None, metavar="KBITS",
                   help="link speed in kbit/s (1 kbit = 1000 bits); default unlimited")
    p.add_argument("-q", dest="queue", type=queue_bytes, default=65536, metavar="BYTES",
                   help="queue in front of the -s link, in bytes, tail drop (default 65536)")
    p.add_argument("--ge-p", type=percent, default=0.0, metavar="PCT",
                   help="Gilbert-Elliott: percent chance per datagram good -> bad")
    p.add_argument("--ge-r", type=percent, default=0.0, metavar="PCT",
                   help="Gilbert-Elliott: percent chance per datagram bad -> good")
    p.add_argument("--ge-loss", type=percent, default=100.0, metavar="PCT",
                   help="Gilbert-Elliott: loss percent in the bad state (default 100)")
    p.add_argument("--ge-good-loss", type=percent, default=0.0, metavar="PCT",
                   help="Gilbert-Elliott: loss percent in the good state (default 0)")
    p.add_argument("--drop", type=drop_list, default=frozenset(), metavar="N,N,...",
                   help="drop exactly these datagrams (1-based, in order received)")
    p.add_argument("--blackhole", type=blackhole_spec, default=None, metavar="START:DURATION",
                   help="outage: drop every datagram arriving from START for DURATION seconds "
                        "(times from the first datagram)")
    p.add_argument("--reorder-hold", type=seconds, default=None, metavar="SECONDS",
                   help=f"longest wait of a held datagram for a successor "
                        f"(default max(2*delay, {MIN_REORDER_HOLD}))")
    p.add_argument("--seed", type=int, default=None, metavar="N",
                   help="seed of the one random generator: reproducible decisions")
    p.add_argument("--stats", default=None, metavar="FILE",
                   help="write the report as JSON to FILE on exit")
    p.add_argument("--trace", default=None, metavar="FILE",
                   help="write a JSON-lines trace (runtime.trace) to FILE")
    p.add_argument("--ready-file", default=None, metavar="FILE",
                   help='once bound, write {"recv_port":..,"send_port":..,"pid":..} to FILE '
                        "(atomically)")
    p.add_argument("--log", default=None, metavar="FILE", help="also log to FILE")
    p.add_argument("-v", dest="verbose", action="count", default=0,
                   help="-v: INFO, -vv: DEBUG, one line per datagram (default: warnings)")
    return p


@dataclass
class Options:
    imp: Impairments
    accept_host: str | None
    accept_port: int | None
    out_host: str
    out_port: int
    recv_port: int
    send_port: int
    bind: str
    seed: int
    seeded: bool
    stats: str | None
    trace: str | None
    ready_file: str | None
    log: str | None
    verbose: int


def _resolve(host: str, what: str) -> str:
    try:
        infos = socket.getaddrinfo(host, None, socket.AF_INET, socket.SOCK_DGRAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UsageError(f"{what}: cannot resolve host {host!r}: {exc}") from None
    return infos[0][4][0]


def parse_options(argv: list[str]) -> Options:
    """Parse and check the command line; raises UsageError."""
    a = build_parser().parse_args(argv)
    try:
        imp = Impairments(
            loss=a.loss / 100.0,
            ber=a.ber / 100000.0,
            corrupt=a.corrupt / 100.0,
            reorder=a.reorder / 100.0,
            dup=a.dup / 100.0,
            delay=a.delay,
            jitter=a.jitter,
            rate=a.speed * 1000.0 if a.speed else 0.0,
            queue=a.queue,
            ge_p=a.ge_p / 100.0,
            ge_r=a.ge_r / 100.0,
            ge_loss=a.ge_loss / 100.0,
            ge_good_loss=a.ge_good_loss / 100.0,
            drop_list=a.drop,
            blackhole=a.blackhole,
            reorder_hold=a.reorder_hold,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    accept_host, accept_port = a.accept
    if accept_host is not None:
        accept_host = _resolve(accept_host, "-i")
    out_host = _resolve(a.out[0], "-o")
    bind = _resolve(a.bind, "--bind")
    for flag, path in (("--stats", a.stats), ("--trace", a.trace), ("--ready-file", a.ready_file),
                       ("--log", a.log)):
        if path is not None and not os.path.isdir(os.path.dirname(os.path.abspath(path))):
            raise UsageError(f"{flag}: no such directory for {path!r}")
    seeded = a.seed is not None
    seed = a.seed if seeded else secrets.randbits(63)
    return Options(
        imp=imp,
        accept_host=accept_host,
        accept_port=accept_port,
        out_host=out_host,
        out_port=a.out[1],
        recv_port=a.ports[0],
        send_port=a.ports[1],
        bind=bind,
        seed=seed,
        seeded=seeded,
        stats=a.stats,
        trace=a.trace,
        ready_file=a.ready_file,
        log=a.log,
        verbose=a.verbose,
    )


# ------------------------------------------------------------------------ run


def write_json_atomic(path: str, obj) -> None:
    """Write JSON to a temporary name beside ``path``, then rename: readers never see half."""
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


def _configure_logging(verbose: int, log_file: str | None) -> None:
    logger.remove()
    fmt = "{time:HH:mm:ss.SSS} {level: <7} " + PROG + ": {message}"
    level = "WARNING" if verbose == 0 else "INFO" if verbose == 1 else "DEBUG"

    def console_filter(record) -> bool:
        # The line with the ports is INFO but always shown: a parent may read it.
        return record["level"].no >= logger.level(level).no or record["extra"].get("always")

    logger.add(sys.stderr, level=0, format=fmt, filter=console_filter)
    if log_file:
        logger.add(log_file, level="DEBUG" if verbose >= 2 else "INFO", format=fmt)


def settings_dict(o: Options) -> dict:
    imp = asdict(o.imp)
    imp["drop_list"] = sorted(o.imp.drop_list)
    imp["blackhole"] = list(o.imp.blackhole) if o.imp.blackhole else None
    imp["reorder_hold"] = o.imp.hold
    return {
        "impairments": imp,
        "accept": f"{o.accept_host or '*'}:{o.accept_port if o.accept_port is not None else '*'}",
        "out": f"{o.out_host}:{o.out_port}",
        "bind": o.bind,
        "seed": o.seed,
        "seeded": o.seeded,
    }


def format_report(r: dict) -> str:
    d = r["dropped"]
    lines = [
        f"{PROG} report ({r['duration']:.3f} s):",
        f"  received    {r['received']:>10} datagrams {r['bytes_received']:>12} bytes",
        f"  forwarded   {r['forwarded']:>10} datagrams {r['bytes_forwarded']:>12} bytes"
        " (duplicates included)",
        f"  dropped     {r['dropped_total']:>10}  "
        + ", ".join(f"{k} {v}" for k, v in d.items()),
        f"  corrupted   {r['corrupted']:>10}  ({r['bits_flipped']} bits flipped)",
        f"  duplicated  {r['duplicated']:>10}",
        f"  reordered   {r['reordered']:>10}  ({r['reorder_timeouts']} released by timeout)",
        f"  delayed     {r['delayed']:>10}  (mean {r['mean_delay'] * 1000:.3f} ms, "
        f"max {r['max_delay'] * 1000:.3f} ms)",
        f"  queue drops {r['queue_drops']:>10}",
        f"  batched     {r['batched_in']:>10} in, {r['batched_out']} out"
        " (datagrams that shared a system call: UDP GRO, GSO)",
    ]
    extra = [
        f"send errors {r['send_errors']} (+{r['dup_send_errors']} copies)"
        if r["send_errors"] or r["dup_send_errors"] else "",
        f"unsent at exit {r['unsent_at_exit']}" if r["unsent_at_exit"] else "",
        f"ignored from foreign sources {r['ignored_foreign']}" if r["ignored_foreign"] else "",
    ]
    extra = [e for e in extra if e]
    if extra:
        lines.append("  " + "; ".join(extra))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the emulator until SIGINT or SIGTERM; returns the exit status."""
    if argv is None:
        argv = sys.argv[1:]
    try:
        opts = parse_options(argv)
    except _HelpExit as exc:
        return exc.status
    except UsageError as exc:
        sys.stderr.write(f"{PROG}: error: {exc}\n(see {PROG} --help)\n")
        return 2
    _configure_logging(opts.verbose, opts.log)
    try:
        return _run(opts)
    finally:
        logger.complete()


def _run(o: Options) -> int:
    wake_r, wake_w = socket.socketpair()
    wake_w.setblocking(False)
    signals_seen: list[int] = []
    old_handlers: dict[int, object] = {}
    old_wakeup = None
    trace_file = None
    link = None
    status = 0

    def on_signal(signum, _frame):
        signals_seen.append(signum)  # the wakeup fd has already woken the main thread

    def on_fatal(_exc):
        try:
            wake_w.send(b"\0")
        except OSError:
            pass

    try:
        old_wakeup = signal.set_wakeup_fd(wake_w.fileno(), warn_on_full_buffer=False)
        for sig in (signal.SIGINT, signal.SIGTERM):
            old_handlers[sig] = signal.signal(sig, on_signal)

        tracer = None
        if o.trace:
            try:
                trace_file = open(o.trace, "w", encoding="utf-8")
            except OSError as exc:
                sys.stderr.write(f"{PROG}: error: cannot open trace file: {exc}\n")
                return 2
            tracer = Tracer(trace_file)
            tracer.emit(time.monotonic(), "meta", role="emulator", **settings_dict(o))

        link = LinkEmulator(
            o.imp,
            random.Random(o.seed),
            bind_host=o.bind,
            recv_port=o.recv_port,
            send_port=o.send_port,
            out_addr=(o.out_host, o.out_port),
            accept_host=o.accept_host,
            accept_port=o.accept_port,
            tracer=tracer,
            debug=o.verbose >= 2,
            on_fatal=on_fatal,
        )
        try:
            recv_port, send_port = link.open()
        except LinkError as exc:
            sys.stderr.write(f"{PROG}: error: {exc}\n")
            return 2
        link.start()
        if o.ready_file:
            write_json_atomic(
                o.ready_file, {"recv_port": recv_port, "send_port": send_port, "pid": os.getpid()}
            )
        logger.bind(always=True).info(
            "listening on {}:{}, sending from {}:{} to {}:{} (seed {})",
            o.bind, recv_port, o.bind, send_port, o.out_host, o.out_port, o.seed,
        )
        logger.info("settings: {}", json.dumps(settings_dict(o)))
        if o.imp.ge_p > 0 and o.imp.ge_r == 0:
            logger.warning("--ge-r is 0: once in the bad state the link never recovers")

        wake_r.recv(1)  # a signal or a failed thread
        if link.fatal is not None:
            status = 1
        else:
            logger.info("stopping on {}", ", ".join(signal.Signals(s).name for s in signals_seen))
        link.stop()
        report = link.report()
        report["seed"] = o.seed
        if signals_seen:
            report["signal"] = signal.Signals(signals_seen[0]).name
        print(format_report(report), flush=True)
        if tracer is not None:
            tracer.emit(time.monotonic(), "summary", **report)
        if o.stats:
            try:
                write_json_atomic(o.stats, {**report, "settings": settings_dict(o)})
            except OSError as exc:
                logger.error("cannot write stats file {}: {}", o.stats, exc)
                status = status or 1
        return status
    finally:
        if link is not None:
            link.stop()
        if trace_file is not None:
            trace_file.close()
        for sig, handler in old_handlers.items():
            signal.signal(sig, handler)
        if old_wakeup is not None:
            signal.set_wakeup_fd(old_wakeup)
        wake_r.close()
        wake_w.close()
