"""``stcp-serve`` / ``python -m receiver serve``: receive files from many senders."""

from __future__ import annotations

import argparse
import os
import queue
import socket
import sys
from contextlib import ExitStack

from loguru import logger

from runtime import progutil as pu
from runtime.progutil import ArgumentParser, Interrupted, UsageError

from .ackopt import add_delayed_ack_option
from .conn import ConnStats
from .server import Server, ServerConfig

DESCRIPTION = """\
Receive files from any number of senders at once over one UDP port, each
written into DIR under the name its sender offers (stcp-send --name, by
default the file's base name), or a made-up one when it offers none.  A
connection is told apart from the others by its peer's address and its TCP
source port (the sender's ACK port).  Acknowledgments go to
ACK_ADDRESS:ACK_PORT, or without ACK_PORT to ACK_ADDRESS at each
connection's TCP source port.  Each file is written to a hidden temporary
file in DIR and renamed only once its SHA-256 matches.  A name that is not
a plain base name, exists already (without --force) or is being written by
another connection is refused with an RST that says why.  A segment of a
connection the server does not know (it was started again) gets an RST, so
its sender stops at once; the temporary files of servers that are gone are
removed at the start.

exit status: 0 every transfer verified; 1 one or more failed; 2 bad usage;
130 SIGINT, 143 SIGTERM (live connections reset, their temporary files removed).
"""


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog="stcp-serve", description=DESCRIPTION,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("directory", metavar="DIR", help="where received files are written")
    p.add_argument("listen_port", metavar="LISTEN_PORT", type=pu.port,
                   help="the UDP port to receive segments on (0: any free port)")
    p.add_argument("ack_address", metavar="ACK_ADDRESS",
                   help="where acknowledgments go: a host name or address, IPv4 or IPv6 "
                        "(::1); the server listens in its family")
    p.add_argument("ack_port", metavar="ACK_PORT", type=pu.port, nargs="?", default=None,
                   help="one port for every connection's ACKs (an ACK-path emulator run "
                        "with --forward-by-port); default: each connection's TCP source port")
    p.add_argument("--mode", choices=("gbn", "sr"), default="sr",
                   help="gbn or sr (default), as stcp-recv")
    p.add_argument("--mss", type=pu.mss_bytes, default=1452,
                   help="largest payload accepted per segment (default 1452)")
    p.add_argument("--buffer", type=pu.buffer_size, default=1 << 20,
                   help="receive buffer per connection; memory is bounded by "
                        "max-conns x buffer (default 1M)")
    p.add_argument("--max-conns", type=pu.positive_int, default=64,
                   help="connections served at once; more are refused with an RST and "
                        "the sender reports 'receiver busy' (default 64)")
    p.add_argument("--max-half-open", type=pu.positive_int, default=256,
                   help="SYNs waiting for their handshake to complete; past this the "
                        "oldest is forgotten (default 256)")
    p.add_argument("--syn-timeout", type=pu.seconds, default=10.0,
                   help="forget a SYN whose handshake is not complete after this many "
                        "seconds (default 10)")
    p.add_argument("--count", type=pu.positive_int, default=None, metavar="N",
                   help="exit after N transfers (default: serve until SIGINT/SIGTERM)")
    p.add_argument("--force", action="store_true",
                   help="let a transfer replace an existing regular file of its name")
    p.add_argument("--max-size", type=pu.byte_size, default=None,
                   help="refuse (RST) a file announced larger than this")
    p.add_argument("--retries", type=pu.nonneg_int, default=10,
                   help="resend a FIN at most this many times (default 10)")
    p.add_argument("--min-rto", type=pu.seconds, default=0.2,
                   help="lower bound of the retransmission timeout, s (default 0.2)")
    p.add_argument("--max-rto", type=pu.seconds, default=60.0,
                   help="upper bound of the retransmission timeout, s (default 60)")
    p.add_argument("--give-up", type=pu.seconds, default=30.0,
                   help="reset a connection whose sender is silent this long, s (default 30)")
    p.add_argument("--bind", default=None, metavar="ADDRESS",
                   help="local address to bind LISTEN_PORT on (default: the loopback of "
                        "the ACK address's family, 127.0.0.1 or ::1; for senders on other "
                        "machines give this machine's address, or 0.0.0.0 (IPv4) / :: "
                        "(IPv6) for every address)")
    p.add_argument("--ready-file", metavar="FILE",
                   help="once bound, write the actual port there as JSON (for scripts)")
    p.add_argument("--write-delay", type=pu.seconds0, default=0.0, metavar="SECONDS",
                   help="a slow disk: each writer waits this long per segment (default 0)")
    add_delayed_ack_option(p)
    p.add_argument("--no-timestamps", action="store_true",
                   help="do not take up TCP timestamps a sender offers (RFC 7323; on by "
                        "default)")
    p.add_argument("--log-level", default="INFO",
                   choices=("TRACE", "DEBUG", "INFO", "WARNING", "ERROR"))
    p.add_argument("--log-file", metavar="FILE", help="also write the log to FILE")
    p.add_argument("--thread-trace", metavar="FILE",
                   help="write what every thread did (the network thread, each "
                        "connection's writer: lock holds and waits, condition waits and "
                        "how they ended, socket and disk calls, queue depths) as Chrome "
                        "trace-event JSON for Perfetto UI or chrome://tracing, or "
                        "stcp-analyze")
    p.add_argument("--thread-trace-events", type=pu.positive_int, default=None, metavar="N",
                   help="keep the newest N events of each thread (default 100000)")
    p.add_argument("--quiet", action="store_true", help="print errors only, no table")
    # A test hook: one connection's slow disk (NAME=SECONDS per segment).
    p.add_argument("--test-slow-name", action="append", type=_slow_name, help=argparse.SUPPRESS)
    return p


def _slow_name(text: str) -> tuple[str, float]:
    name, _, delay = text.rpartition("=")
    try:
        return name, pu.seconds0(delay)
    except (argparse.ArgumentTypeError, ValueError):
        raise argparse.ArgumentTypeError(f"NAME=SECONDS, not {text!r}") from None


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except UsageError as exc:
        print(f"stcp-serve: error: {exc}", file=sys.stderr)
        return pu.EXIT_USAGE
    except OSError as exc:  # (each expected one says more where it happens)
        print(f"stcp-serve: error: {pu.os_error(exc)}", file=sys.stderr)
        return pu.EXIT_FAILED


def _open_socket(args) -> tuple[socket.socket, tuple]:
    """The listening socket, in the family of ACK_ADDRESS: IPv4 when it has
    an IPv4 address (as the sender, a name such as localhost means
    127.0.0.1), else IPv6."""
    family, ack_host, bind = pu.peer_address(args.ack_address, args.bind, "the ACK address")
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        sock.bind((bind, args.listen_port))
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot bind UDP port {args.listen_port} on {bind}: "
                         f"{exc.strerror or exc}") from None
    return sock, ack_host


def _main(argv) -> int:
    args = build_parser().parse_args(argv)
    if args.buffer < args.mss:
        raise UsageError(f"--buffer ({args.buffer}) must hold at least one MSS ({args.mss})")
    if args.ack_port == 0:
        raise UsageError("ACK_PORT must not be 0")
    pu.check_rto_bounds(args)
    if not os.path.isdir(args.directory):
        raise UsageError(f"{args.directory} is not a directory")
    if not os.access(args.directory, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write in {args.directory}")
    pu.setup_logging("server", args.log_level, args.log_file, args.quiet)
    sock, ack_host = _open_socket(args)
    cfg = ServerConfig(
        directory=args.directory, ack_host=ack_host, ack_port=args.ack_port,
        mode=args.mode, mss=args.mss, capacity=args.buffer, min_rto=args.min_rto,
        max_rto=args.max_rto, retries=args.retries, give_up=args.give_up,
        max_conns=args.max_conns, max_half_open=args.max_half_open,
        syn_timeout=args.syn_timeout, max_size=args.max_size, force=args.force,
        write_delay=args.write_delay, delayed_ack=args.delayed_ack,
        timestamps=not args.no_timestamps, slow_names=dict(args.test_slow_name or ()),
    )
    with sock, ExitStack() as stack:
        pu.open_thread_trace(stack, args, "server")  # before any lock is made
        server = Server(cfg, sock)
        stack.callback(server.outdir.close)
        port = sock.getsockname()[1]
        logger.info("serving {} on UDP port {}; ACKs go to {} port {}", server.outdir.path,
                    port, ack_host, args.ack_port or "(each sender's)")
        if server.outdir.stale_removed:
            n = server.outdir.stale_removed
            logger.warning("removed {} temporary file{} of a server that is gone", n,
                           "" if n == 1 else "s")
        if args.ready_file:
            pu.write_ready_file(args.ready_file, port)
        return _serve(server, args, stack)


def _serve(server: Server, args, stack) -> int:
    done: list[ConnStats] = []
    pu.install_signal_handlers(stack)
    try:
        server.start()
        while args.count is None or len(done) < args.count:
            try:
                conn = server.finished.get(timeout=1.0)
            except queue.Empty:
                continue
            if conn is None:  # the network thread failed
                break
            done.append(_report(conn.finish(), args))
    except (Interrupted, KeyboardInterrupt) as exc:
        name = pu.signal_name(exc)
        live = _stop(server, done, args, f"interrupted by {name}")
        logger.error("interrupted by {}: {} live connections reset", name, live)
        _table(server, done, args)
        return pu.interrupted_exit(name)
    _stop(server, done, args, "the server is stopping")
    _table(server, done, args)
    return pu.EXIT_OK if done and all(s.verified for s in done) else pu.EXIT_FAILED


def _stop(server: Server, done: list, args, why: str) -> int:
    """Reset what is live, finish what finished meanwhile; how many were live."""
    live = server.shutdown(why)
    for conn in live:
        stats = conn.finish()
        if conn.thread is not None:
            done.append(_report(stats, args))
    while True:
        try:
            conn = server.finished.get_nowait()
        except queue.Empty:
            return len(live)
        if conn is not None:
            done.append(_report(conn.finish(), args))


def _report(s: ConnStats, args) -> ConnStats:
    verdict = "verified" if s.verified else f"FAILED: {s.reason}"
    line = (f"{s.name}: {s.bytes} bytes in {s.seconds:.3f} s, "
            f"{pu.human_rate(s.bytes, s.seconds)}, {s.duplicates} retransmissions seen, "
            f"{verdict} (from {s.peer})")
    if s.verified:
        logger.info("done {}", line)
    else:
        logger.error("done {}", line)
    return s


def _table(server: Server, done: list[ConnStats], args) -> None:
    if args.quiet:
        return
    width = max([len(s.name) for s in done] + [4])
    lines = ["server summary", "--------------",
             f"  {'name':<{width}}  {'bytes':>12}  {'time s':>8}  {'goodput':>14}  "
             f"{'dup':>5}  verdict"]
    for s in done:
        lines.append(f"  {s.name:<{width}}  {s.bytes:>12}  {s.seconds:>8.3f}  "
                     f"{pu.human_rate(s.bytes, s.seconds):>14}  {s.duplicates:>5}  "
                     f"{'verified' if s.verified else 'FAILED: ' + s.reason}")
    ok = sum(s.verified for s in done)
    lines.append(f"  {len(done)} transfers, {ok} verified; refused: "
                 + (", ".join(f"{k} {v}" for k, v in sorted(server.refused.items()))
                    or "none")
                 + f"; half-open: at most {server.half_open_peak} at once, "
                   f"{server.syn_expired} forgotten; dropped: "
                 + (", ".join(f"{k} {v}" for k, v in sorted(server.dropped.items()))
                    or "none"))
    print("\n".join(lines), flush=True)
