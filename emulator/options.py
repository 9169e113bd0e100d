"""The link emulator's flags: the parser, and the checked :class:`Options` of a run.

Every value is checked here, before anything is bound or started: a bad one
is a :class:`UsageError` with a one-line message (exit status 2).
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import sys
from dataclasses import dataclass

from emulator import argtypes as t
from emulator.aqm import (
    CODEL_INTERVAL,
    CODEL_TARGET,
    RED_AVPKT,
    RED_MAX_P,
    RED_MAX_TH,
    RED_MIN_TH,
    RED_W_Q,
)
from emulator.helptext import DESCRIPTION, EPILOG
from emulator.impair import AQMS, MIN_REORDER_HOLD, Impairments
from runtime import addr

PROG = "stcp-link"
#: The byte limit of the queue when neither -q nor --queue-packets is given.
DEFAULT_QUEUE_BYTES = 65536

RED_FLAGS = {"red_min": "--red-min", "red_max": "--red-max", "red_max_p": "--red-max-p",
             "red_wq": "--red-wq", "red_avpkt": "--red-avpkt"}
CODEL_FLAGS = {"codel_target": "--codel-target", "codel_interval": "--codel-interval"}


class UsageError(Exception):
    """A bad flag or value; exit status 2."""


class HelpExit(Exception):
    """--help was given (or argparse wanted to exit): the exit status."""

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
        raise HelpExit(status)


# ---------------------------------------------------------------------- parser


def _add_path_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-i", dest="accept", type=t.accept_spec, default=(None, None),
                   metavar="HOST:PORT",
                   help="accept datagrams only from this source; '*' for any host or port "
                        "(default *:*); others are ignored and counted")
    p.add_argument("-o", dest="out", type=t.out_spec, default=None, metavar="HOST:PORT",
                   help="forward to this address (default localhost:41194; "
                        "HOST:* with --forward-by-port); an IPv6 address in brackets, "
                        "[::1]:41194, and the link then runs over IPv6")
    p.add_argument("-p", dest="ports", type=t.ports_spec, default=(41192, 41193),
                   metavar="RECV:SEND",
                   help="receive on RECV, send from SEND (default 41192:41193; 0 = any free port)")
    p.add_argument("--bind", default=None, metavar="ADDR",
                   help="local address both sockets bind to (default: the loopback of "
                        "the -o host's family, 127.0.0.1 or ::1; 0.0.0.0 or :: to serve "
                        "other hosts)")
    p.add_argument("--forward-by-port", action="store_true",
                   help="send each datagram to the -o host at the TCP destination port it "
                        "carries (bytes 2-3 of its payload); see below")


def _add_impairment_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-L", dest="loss", type=t.percent, default=0.0, metavar="PCT",
                   help="random loss, percent of datagrams")
    p.add_argument("-B", dest="ber", type=t.ber_value, default=0.0, metavar="N",
                   help="bit error rate: flipped bits per 100000 bits, as newudpl")
    p.add_argument("-C", dest="corrupt", type=t.percent, default=0.0, metavar="PCT",
                   help="corruption: percent of datagrams with exactly one flipped bit")
    p.add_argument("-O", dest="reorder", type=t.percent, default=0.0, metavar="PCT",
                   help="out of order: percent of datagrams held back past the next one")
    p.add_argument("-D", dest="dup", type=t.percent, default=0.0, metavar="PCT",
                   help="duplication, percent of datagrams sent twice")
    p.add_argument("-d", dest="delay", type=t.seconds, default=0.0, metavar="SECONDS",
                   help="one-way delay in seconds")
    p.add_argument("--jitter", type=t.seconds, default=0.0, metavar="SECONDS",
                   help="random extra delay, uniform in [0, SECONDS); may reorder datagrams")
    p.add_argument("--ge-p", type=t.percent, default=0.0, metavar="PCT",
                   help="Gilbert-Elliott: percent chance per datagram good -> bad")
    p.add_argument("--ge-r", type=t.percent, default=0.0, metavar="PCT",
                   help="Gilbert-Elliott: percent chance per datagram bad -> good")
    p.add_argument("--ge-loss", type=t.percent, default=100.0, metavar="PCT",
                   help="Gilbert-Elliott: loss percent in the bad state (default 100)")
    p.add_argument("--ge-good-loss", type=t.percent, default=0.0, metavar="PCT",
                   help="Gilbert-Elliott: loss percent in the good state (default 0)")
    p.add_argument("--drop", type=t.drop_list, default=frozenset(), metavar="N,N,...",
                   help="drop exactly these datagrams (1-based, in order received)")
    p.add_argument("--blackhole", type=t.blackhole_spec, default=None, metavar="START:DURATION",
                   help="outage: drop every datagram arriving from START for DURATION seconds "
                        "(times from the first datagram)")
    p.add_argument("--reorder-hold", type=t.seconds, default=None, metavar="SECONDS",
                   help=f"longest wait of a held datagram for a successor "
                        f"(default max(2*delay, {MIN_REORDER_HOLD}))")


def _add_bottleneck_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("bottleneck (with -s): its queue and active queue management")
    g.add_argument("-s", dest="speed", type=t.speed, default=None, metavar="KBITS",
                   help="link speed in kbit/s (1 kbit = 1000 bits); default unlimited")
    g.add_argument("-q", dest="queue", type=t.queue_bytes, default=None, metavar="BYTES",
                   help=f"queue limit in bytes, tail drop (default {DEFAULT_QUEUE_BYTES}, "
                        "or none when only --queue-packets is given)")
    g.add_argument("--queue-packets", type=t.queue_packets, default=None, metavar="N",
                   help="queue limit in datagrams, tail drop (netem and Mahimahi count "
                        "packets; default none)")
    g.add_argument("--aqm", choices=AQMS, default="none",
                   help="active queue management (default none: tail drop only)")
    g.add_argument("--red-min", type=t.packets, default=None, metavar="N",
                   help=f"RED min_th, average datagrams queued (default {RED_MIN_TH:g})")
    g.add_argument("--red-max", type=t.packets, default=None, metavar="N",
                   help=f"RED max_th, average datagrams queued (default {RED_MAX_TH:g})")
    g.add_argument("--red-max-p", type=t.fraction, default=None, metavar="P",
                   help=f"RED max_p, drop probability at max_th (default {RED_MAX_P:g})")
    g.add_argument("--red-wq", type=t.fraction, default=None, metavar="W",
                   help=f"RED w_q, weight of each arrival in the average (default {RED_W_Q:g})")
    g.add_argument("--red-avpkt", type=t.packet_bytes, default=None, metavar="BYTES",
                   help=f"RED: a typical datagram, timing the average's decay while the queue "
                        f"is empty (default {RED_AVPKT})")
    g.add_argument("--codel-target", type=t.positive_seconds, default=None, metavar="SECONDS",
                   help=f"CoDel target sojourn time (default {CODEL_TARGET:g})")
    g.add_argument("--codel-interval", type=t.positive_seconds, default=None, metavar="SECONDS",
                   help=f"CoDel interval (default {CODEL_INTERVAL:g})")


def _add_run_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=None, metavar="N",
                   help="seed of the one random generator: reproducible decisions")
    p.add_argument("--stats", default=None, metavar="FILE",
                   help="write the report as JSON to FILE on exit")
    p.add_argument("--trace", default=None, metavar="FILE",
                   help="write a JSON-lines trace (runtime.trace) to FILE; events below")
    p.add_argument("--ready-file", default=None, metavar="FILE",
                   help='once bound, write {"recv_port":..,"send_port":..,"pid":..} to FILE '
                        "(atomically)")
    p.add_argument("--log", default=None, metavar="FILE", help="also log to FILE")
    p.add_argument("-v", dest="verbose", action="count", default=0,
                   help="-v: INFO, -vv: DEBUG, one line per datagram (default: warnings, and "
                        "the one line saying where the link listens)")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog=PROG,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_path_flags(p)
    _add_impairment_flags(p)
    _add_bottleneck_flags(p)
    _add_run_flags(p)
    return p


# --------------------------------------------------------------------- options


@dataclass
class Options:
    imp: Impairments
    accept_host: str | None
    accept_port: int | None
    out_host: str
    out_port: int | None  # None: forwarding by port
    family: int  # socket.AF_INET or AF_INET6: the -o host's, which every address shares
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
    queue_without_rate: bool = False  # -q given without -s: accepted, but it does nothing


def _resolve(host: str, what: str, family: int = socket.AF_UNSPEC) -> tuple[int, str]:
    """(family, address) of ``host``, in ``family`` if one is given."""
    try:
        return addr.resolve(host, "host", family)
    except addr.AddressError as exc:
        if family == socket.AF_UNSPEC:
            raise UsageError(f"{what}: {exc}") from None
    try:  # (an error path only: is it the family, or no address at all?)
        addr.resolve(host, "host")
    except addr.AddressError as exc:
        raise UsageError(f"{what}: {exc}") from None
    raise UsageError(f"{what} {host}: not an {addr.family_name(family)} address, as "
                     f"the -o host is (one link runs over one family)")


def _bottleneck_settings(a: argparse.Namespace) -> dict:
    """The queue and AQM settings, checked against each other."""
    if a.speed is None:
        if a.queue_packets is not None:
            raise UsageError("--queue-packets needs a link speed (-s): without one nothing queues")
        if a.aqm != "none":
            raise UsageError(f"--aqm {a.aqm} needs a link speed (-s): without one nothing queues")
    for owner, flags in (("red", RED_FLAGS), ("codel", CODEL_FLAGS)):
        for dest, flag in flags.items():
            if getattr(a, dest) is not None and a.aqm != owner:
                raise UsageError(f"{flag} is a setting of --aqm {owner}, not of --aqm {a.aqm}")
    out = {"queue": a.queue, "queue_packets": a.queue_packets, "aqm": a.aqm}
    if a.queue is None:
        out["queue"] = None if a.queue_packets is not None else DEFAULT_QUEUE_BYTES
    for dest in (*RED_FLAGS, *CODEL_FLAGS):
        if getattr(a, dest) is not None:
            out[dest] = getattr(a, dest)
    red_min, red_max = out.get("red_min", RED_MIN_TH), out.get("red_max", RED_MAX_TH)
    if not red_min < red_max:
        raise UsageError(f"--red-min ({red_min:g}) must be below --red-max ({red_max:g})")
    target = out.get("codel_target", CODEL_TARGET)
    interval = out.get("codel_interval", CODEL_INTERVAL)
    if not target < interval:
        raise UsageError(
            f"--codel-target ({target:g} s) must be below --codel-interval ({interval:g} s)")
    return out


def _out_address(a: argparse.Namespace) -> tuple[int, str, int | None]:
    host, port = a.out if a.out is not None else ("localhost", None if a.forward_by_port else 41194)
    if a.forward_by_port and port is not None:
        raise UsageError("--forward-by-port: the port comes from each datagram; give -o HOST:*")
    if not a.forward_by_port and port is None:
        raise UsageError("-o HOST:* (no port) needs --forward-by-port")
    return *_resolve(host, "-o"), port


def parse_options(argv: list[str]) -> Options:
    """Parse and check the command line; raises UsageError (or HelpExit)."""
    a = build_parser().parse_args(argv)
    family, out_host, out_port = _out_address(a)
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
            **_bottleneck_settings(a),
            ge_p=a.ge_p / 100.0,
            ge_r=a.ge_r / 100.0,
            ge_loss=a.ge_loss / 100.0,
            ge_good_loss=a.ge_good_loss / 100.0,
            drop_list=a.drop,
            blackhole=a.blackhole,
            reorder_hold=a.reorder_hold,
            by_port=a.forward_by_port,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    accept_host, accept_port = a.accept
    if accept_host is not None:
        accept_host = _resolve(accept_host, "-i", family)[1]
    bind = addr.loopback(family) if a.bind is None else _resolve(a.bind, "--bind", family)[1]
    for flag, path in (("--stats", a.stats), ("--trace", a.trace), ("--ready-file", a.ready_file),
                       ("--log", a.log)):
        if path is not None and not os.path.isdir(os.path.dirname(os.path.abspath(path))):
            raise UsageError(f"{flag}: no such directory for {path!r}")
    seeded = a.seed is not None
    return Options(
        imp=imp,
        accept_host=accept_host,
        accept_port=accept_port,
        out_host=out_host,
        out_port=out_port,
        family=family,
        recv_port=a.ports[0],
        send_port=a.ports[1],
        bind=bind,
        seed=a.seed if seeded else secrets.randbits(63),
        seeded=seeded,
        stats=a.stats,
        trace=a.trace,
        ready_file=a.ready_file,
        log=a.log,
        verbose=a.verbose,
        queue_without_rate=a.queue is not None and a.speed is None,
    )
