"""``python -m receiver`` / ``stcp-recv``: receive one file over the simplex TCP."""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import sys
import time
from contextlib import ExitStack

from loguru import logger

from runtime import progutil as pu
from runtime.addr import show
from runtime.pcap import PCAP_ENDS
from runtime.progress import Progress, wanted
from runtime.progutil import ArgumentParser, Interrupted, UsageError

from .ackopt import add_delayed_ack_option
from .app import Receiver, ReceiverConfig

DESCRIPTION = """\
Receive one file from a sender over UDP with a reliable one-way TCP and write
it to FILE.  Segments arrive on LISTEN_PORT; acknowledgments go to
ACK_ADDRESS:ACK_PORT (the sender's ACK_PORT, or a second emulator in front of
it).  The data is written to FILE.part and renamed to FILE only once every
byte is on disk and its SHA-256 matches the sender's: a file named FILE is
always complete.

exit status: 0 received and verified; 1 the transfer failed (sender gone,
reset, digest mismatch, disk full); 2 bad usage or input; 130 interrupted
(SIGINT), 143 terminated (SIGTERM).
"""


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog="stcp-recv", description=DESCRIPTION,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", metavar="FILE", help="where to write the received file")
    p.add_argument("listen_port", metavar="LISTEN_PORT", type=pu.port,
                   help="the UDP port to receive segments on (0: any free port, printed)")
    p.add_argument("ack_address", metavar="ACK_ADDRESS",
                   help="host name or address acknowledgments go to, IPv4 or IPv6 (::1); "
                        "the sockets take its family")
    p.add_argument("ack_port", metavar="ACK_PORT", type=pu.port,
                   help="the UDP port acknowledgments go to")
    p.add_argument("--mode", choices=("gbn", "sr"), default="sr",
                   help="gbn: discard out-of-order data; sr: buffer it and send SACK "
                        "blocks (default)")
    p.add_argument("--mss", type=pu.mss_bytes, default=1452,
                   help="largest payload accepted per segment (default 1452)")
    p.add_argument("--buffer", type=pu.buffer_size, default=4 << 20,
                   help="receive buffer, the most bytes advertised as the window "
                        "(default 4M)")
    p.add_argument("--retries", type=pu.nonneg_int, default=10,
                   help="resend the FIN at most this many times (default 10)")
    p.add_argument("--listen-timeout", type=pu.seconds, default=None,
                   help="give up if no sender connects within this many seconds "
                        "(default: wait forever)")
    p.add_argument("--max-size", type=pu.byte_size, default=None,
                   help="refuse (RST) a file announced larger than this")
    p.add_argument("--force", action="store_true", help="overwrite an existing FILE")
    p.add_argument("--keep-partial", action="store_true",
                   help="keep FILE.part when the transfer fails (default: remove it)")
    p.add_argument("--resume", action="store_true",
                   help="offer the sender what FILE.part holds from an interrupted "
                        "transfer (stcp-send --resume sends only the rest if its file "
                        "starts with those bytes), and keep FILE.part if this one fails")
    p.add_argument("--ready-file", metavar="FILE",
                   help="once bound, write the actual port there as JSON (for scripts)")
    pu.add_common_options(p, "sender", "LISTEN_PORT")
    p.add_argument("--write-delay", "--test-write-delay", dest="write_delay",
                   type=pu.seconds0, default=0.0, metavar="SECONDS",
                   help="a slow disk, for flow-control experiments: the writer waits this "
                        "long per segment before each write (default 0)")
    p.add_argument("--no-timestamps", action="store_true",
                   help="do not take up TCP timestamps a sender offers (RFC 7323; on by "
                        "default: the sender's RTT samples from every ACK, resends "
                        "included, at 12 bytes of each segment)")
    p.add_argument("--ack-every", type=pu.nonneg_int, default=2, metavar="N",
                   help="acknowledge in-order data at least every N segments, at once "
                        "(default 2, RFC 5681 section 4.2: the ACK clock congestion control "
                        "runs on); 0: one ACK per burst read from the socket (fewer ACKs, "
                        "less CPU on a fast path, but stretch ACKs)")
    add_delayed_ack_option(p)
    p.add_argument("--test-fail-write-after", type=int, default=None, help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["serve"]:  # python -m receiver serve ...: the server (stcp-serve)
        from .serve_cli import main as serve

        return serve(args[1:])
    try:
        return _main(argv)
    except UsageError as exc:
        print(f"stcp-recv: error: {exc}", file=sys.stderr)
        return pu.EXIT_USAGE
    except OSError as exc:  # (each expected one says more where it happens)
        print(f"stcp-recv: error: {pu.os_error(exc)}", file=sys.stderr)
        return pu.EXIT_FAILED


def _main(argv) -> int:
    args = build_parser().parse_args(argv)
    if args.buffer < args.mss:
        raise UsageError(f"--buffer ({args.buffer}) must hold at least one MSS ({args.mss})")
    if args.ack_port == 0:
        raise UsageError("ACK_PORT must not be 0")
    pu.check_rto_bounds(args)
    path = args.file
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise UsageError(f"the directory of {path} does not exist")
    if os.path.isdir(path):
        raise UsageError(f"{path} is a directory")
    if os.path.exists(path) and not args.force:
        raise UsageError(f"{path} exists; use --force to overwrite it")
    if not os.access(directory, os.W_OK):
        raise UsageError(f"cannot write in {directory}")
    pu.pin_cpu(args.cpu)
    pu.setup_logging("receiver", args.log_level, args.log_file, args.quiet)
    family, ack_host, args.bind = pu.peer_address(args.ack_address, args.bind,
                                                  "the ACK address")
    ack_to = (ack_host, args.ack_port)
    cfg = ReceiverConfig(
        path=path, listen_port=args.listen_port, ack_to=ack_to, bind=args.bind,
        mode=args.mode, mss=args.mss, capacity=args.buffer, min_rto=args.min_rto,
        max_rto=args.max_rto, retries=args.retries, give_up=args.give_up,
        listen_timeout=args.listen_timeout, max_size=args.max_size,
        keep_partial=args.keep_partial, write_delay=args.write_delay,
        ack_every=args.ack_every, delayed_ack=args.delayed_ack,
        fail_after=args.test_fail_write_after, timestamps=not args.no_timestamps,
        resume=args.resume,
    )
    sock = socket.socket(family, socket.SOCK_DGRAM)
    with sock:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            sock.bind((args.bind, args.listen_port))
        except OSError as exc:
            raise UsageError(f"cannot bind UDP port {args.listen_port} on {args.bind}: "
                             f"{exc.strerror or exc}") from None
        port = sock.getsockname()[1]
        logger.info("listening on {} UDP port {}, waiting for a sender's SYN ({}); ACKs "
                    "go to {}", args.bind, port, f"for up to {args.listen_timeout:g} s"
                    if args.listen_timeout else "no time limit", show(*ack_to))
        if args.ready_file:
            pu.write_ready_file(args.ready_file, port)
        isn = (args.test_isn if args.test_isn is not None else secrets.randbits(32)) \
            & 0xFFFFFFFF
        return _run(cfg, args, sock, isn)


def _run(cfg: ReceiverConfig, args, sock, isn: int) -> int:
    with ExitStack() as stack:
        sender_end, receiver_end = PCAP_ENDS[sock.family]
        tracer, pcap = pu.open_outputs(stack, args, local=(receiver_end, sock.getsockname()[1]),
                                       remote=(sender_end, cfg.ack_to[1]))
        pu.open_thread_trace(stack, args, "receiver")
        receiver = Receiver(cfg, sock, isn, tracer, pcap)
        pu.install_signal_handlers(stack)
        progress = None
        if wanted(args.quiet, args.no_progress):
            progress = receiver.progress = Progress(None, "receiving")
            stack.callback(progress.close)
        try:
            receiver.run()
        except (Interrupted, KeyboardInterrupt) as exc:
            name = pu.signal_name(exc)
            if progress:
                progress.close()
            logger.error("interrupted by {}: connection reset, {} {}", name,
                         cfg.path + ".part",
                         "kept" if cfg.resume or cfg.keep_partial else "removed")
            _summary(receiver, args, tracer)
            return pu.interrupted_exit(name)
        if progress:
            progress.close()
        _summary(receiver, args, tracer)
        if receiver.renamed and receiver.failure is None:
            return pu.EXIT_OK
        core = receiver.core
        logger.error("transfer failed: {}", core.error or repr(receiver.failure))
        return pu.EXIT_FAILED


def _summary(receiver: Receiver, args, tracer) -> None:
    core = receiver.core
    st = core.stats
    start = receiver.connected_at or receiver.started
    elapsed = (receiver.finished_at or time.monotonic()) - start
    rows = [
        ("result", f"{args.file} complete and verified (SHA-256)" if receiver.renamed
         else f"FAILED: {core.error or receiver.failure}"),
        ("bytes written", f"{receiver.written} ({pu.human_bytes(receiver.written)})"),
        # The receiver's own time (docs/MEASURES.md), not the transfer time
        # the sender's summary gives: labelled so.
        ("time", f"{elapsed:.4f} s (its own: SYN received to its end, not the transfer time)"),
        ("goodput", f"{pu.human_rate(receiver.written, elapsed)} (bytes written / its own time)"),
        ("segments received", f"{st.segments_received} ({st.data_segments} with data)"),
        ("segments sent", f"{receiver.segments_sent} ({st.window_updates} window updates)"),
        ("out of order", f"{st.out_of_order}" + (" (discarded: gbn)" if core.mode == "gbn"
                                                 else " (buffered)")),
        ("duplicates", f"{st.duplicates}"),
        ("outside the window", f"{st.out_of_window}"),
        ("zero windows advertised", f"{st.zero_windows}"),
        ("checksum failures", f"{receiver.dropped.get('checksum', 0)}"),
        ("other drops", ", ".join(f"{k} {v}" for k, v in sorted(receiver.dropped.items())
                                  if k != "checksum") or "none"),
        ("largest writer backlog", pu.human_bytes(receiver.max_queue)),
    ]
    if receiver.prefix is not None:
        rows.insert(2, ("resume", _resume_words(receiver)))
    if tracer is not None:
        tracer.emit(time.monotonic(), "summary",
                    counters={**st.as_dict(), "segments_sent": receiver.segments_sent,
                              "elapsed": elapsed, "bytes_written": receiver.written,
                              "dropped": receiver.dropped, "verified": receiver.renamed})
    if not args.quiet:
        print(pu.format_summary("receiver summary", rows), flush=True)


def _resume_words(receiver: Receiver) -> str:
    held = receiver.prefix.held
    at = receiver.core.resume_at
    if not held:
        return "nothing held in FILE.part: written from byte 0"
    if at is None:
        return f"{held} bytes held, offered; the sender never answered"
    if at:
        return f"resumed at {at} bytes (kept from FILE.part)"
    return f"{held} bytes held, not taken: written from byte 0"


if __name__ == "__main__":
    sys.exit(main())
