"""``python -m sender`` / ``stcp-send``: send one file over the simplex TCP."""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import sys
import time
from contextlib import ExitStack

from loguru import logger

from common import congestion
from common.names import BadName, check_name, shown
from common.pacing import PACE_BURST
from runtime import progutil as pu
from runtime.pcap import PCAP_ENDS
from runtime.progress import Progress, wanted
from runtime.progutil import ArgumentParser, Interrupted, UsageError

from .app import Sender, SenderConfig
from .reading import open_input
from .rtt_words import rtt_rows

DESCRIPTION = """\
Send FILE, byte for byte, to a receiver over UDP with a reliable one-way TCP
(three-way handshake, sliding window, RFC 6298 retransmission timer, fast
retransmit, SACK in sr mode, FIN teardown with TIME-WAIT).  Segments go to
LINK_ADDRESS:LINK_PORT (the link emulator, or the receiver itself) from UDP
port ACK_PORT, where the acknowledgments come back.

exit status: 0 delivered and verified by the receiver (SHA-256); 1 the
transfer failed (receiver gone, reset, digest mismatch); 2 bad usage or
input; 130 interrupted (SIGINT), 143 terminated (SIGTERM).
"""


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog="stcp-send", description=DESCRIPTION,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", metavar="FILE", help="the file to send")
    p.add_argument("link_address", metavar="LINK_ADDRESS",
                   help="where segments go: the emulator's (or receiver's) host name or "
                        "address, IPv4 or IPv6 (::1); the sockets take its family")
    p.add_argument("link_port", metavar="LINK_PORT", type=pu.port,
                   help="the UDP port segments go to")
    p.add_argument("window", metavar="WINDOW_BYTES", type=pu.byte_size,
                   help="the most bytes in flight (at least one MSS); K/M suffixes allowed")
    p.add_argument("ack_port", metavar="ACK_PORT", type=pu.port,
                   help="the local UDP port to send from and receive ACKs on (0: any free)")
    p.add_argument("--mode", choices=("gbn", "sr"), default="sr",
                   help="gbn: Go-Back-N; sr: selective repeat with SACK (default)")
    p.add_argument("--mss", type=pu.mss_bytes, default=1452,
                   help="largest payload per segment, in bytes (default 1452: a 1500-byte MTU)")
    p.add_argument("--retries", type=pu.nonneg_int, default=10,
                   help="give up after resending one segment this many times (default 10)")
    p.add_argument("--time-wait", type=pu.seconds0, default=None,
                   help="seconds to stay in TIME-WAIT (default: 2 x RTO)")
    p.add_argument("--cc", choices=congestion.names(), default="none",
                   help="congestion control: none (default) keeps WINDOW_BYTES in flight "
                        "whatever happens; newreno (RFC 5681/6582, PRR in sr mode) and "
                        "cubic (RFC 9438, HyStart++) grow and cut a congestion window, "
                        "and WINDOW_BYTES is then its cap: in flight <= min(cwnd, the "
                        "receiver's window, WINDOW_BYTES)")
    p.add_argument("--no-timestamps", action="store_true",
                   help="do not offer TCP timestamps (RFC 7323; on by default: an RTT "
                        "sample from every ACK, resends included, at 12 bytes of each "
                        "segment)")
    p.add_argument("--pacing", type=pu.nonneg_float, default=None, metavar="GAIN",
                   help="send new data at GAIN x window / SRTT, in bursts of at most "
                        f"{PACE_BURST * 1000:g} ms' worth, rather than a whole window at "
                        "once; 0 turns pacing off (default: 1.5 with --cc none; with "
                        "congestion control 2 in slow start and 1.2 after, as Linux)")
    names = p.add_mutually_exclusive_group()
    names.add_argument("--name", metavar="NAME",
                       help="the file name offered to the receiver in the SYN, which a "
                            "server (stcp-serve) writes the file under: a plain base name "
                            "(default: FILE's base name, if it is one)")
    names.add_argument("--no-name", action="store_true",
                       help="offer no name (a server then makes one up); for a receiver "
                            "that predates the name option and takes it as data")
    p.add_argument("--resume", action="store_true",
                   help="if the receiver offers the start of the file from an interrupted "
                        "transfer (stcp-recv --resume) and FILE starts with those bytes, "
                        "send only the rest (the SHA-256 still covers the whole file); "
                        "otherwise send it whole")
    pu.add_common_options(p, "receiver", "ACK_PORT")
    return p


def offered_name(args) -> bytes | None:
    """The name the SYN offers: --name (checked: a usage error if it is not a
    plain base name), else FILE's base name when it is one, else none."""
    if args.no_name:
        return None
    if args.name is not None:
        raw = os.fsencode(args.name)
        try:
            check_name(raw)
        except BadName as exc:
            raise UsageError(f"--name {shown(raw)!s}: {exc}") from None
        return raw
    raw = os.fsencode(os.path.basename(args.file))
    try:
        check_name(raw)
    except BadName as exc:
        logger.warning("offering no name: {} ({})", shown(raw), exc)
        return None
    return raw


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except UsageError as exc:
        print(f"stcp-send: error: {exc}", file=sys.stderr)
        return pu.EXIT_USAGE
    except OSError as exc:  # (each expected one says more where it happens)
        print(f"stcp-send: error: {pu.os_error(exc)}", file=sys.stderr)
        return pu.EXIT_FAILED


def _main(argv) -> int:
    args = build_parser().parse_args(argv)
    if args.window < args.mss:
        raise UsageError(f"the window ({args.window} bytes) must hold at least one MSS "
                         f"({args.mss} bytes)")
    pu.check_rto_bounds(args)
    if args.link_port == 0:
        raise UsageError("LINK_PORT must not be 0")
    pu.pin_cpu(args.cpu)
    pu.setup_logging("sender", args.log_level, args.log_file, args.quiet)
    family, link_host, args.bind = pu.peer_address(args.link_address, args.bind,
                                                   "the link address")
    link = (link_host, args.link_port)
    try:
        file, size = open_input(args.file)
    except OSError as exc:
        raise UsageError(f"cannot read {args.file}: {exc.strerror or exc}") from None
    if args.resume and size is None:
        file.close()
        raise UsageError("--resume needs a regular file (its start is read again)")
    isn = (args.test_isn if args.test_isn is not None else secrets.randbits(32)) & 0xFFFFFFFF
    cfg = SenderConfig(
        path=args.file, link=link, window=args.window, ack_port=args.ack_port, bind=args.bind,
        mode=args.mode, mss=args.mss, min_rto=args.min_rto, max_rto=args.max_rto,
        retries=args.retries, give_up=args.give_up, time_wait=args.time_wait,
        pacing=args.pacing, cc=args.cc, isn=isn, name=offered_name(args),
        timestamps=not args.no_timestamps, resume=args.resume,
        trace_path=args.trace, pcap_path=args.pcap,
    )
    with file:
        sock = _open_socket(family, args.bind, args.ack_port)
        with sock:
            return _run(cfg, args, sock, file, size, isn)


def _open_socket(family: int, bind: str, port: int) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        sock.bind((bind, port))
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot bind UDP port {port} on {bind}: {exc.strerror or exc}") \
            from None
    return sock


def _run(cfg: SenderConfig, args, sock, file, size, isn) -> int:
    with ExitStack() as stack:
        ends = PCAP_ENDS[sock.family]
        tracer, pcap = pu.open_outputs(stack, args, local=(ends[0], sock.getsockname()[1]),
                                       remote=(ends[1], cfg.link[1]))
        pu.open_thread_trace(stack, args, "sender")
        sender = Sender(cfg, sock, file, size, isn, tracer, pcap)
        pu.install_signal_handlers(stack)
        progress = None
        if wanted(args.quiet, args.no_progress):
            progress = sender.progress = Progress(size, "sending")
            stack.callback(progress.close)
        try:
            sender.run()
        except (Interrupted, KeyboardInterrupt) as exc:
            name = pu.signal_name(exc)
            if progress:
                progress.close()
            logger.error("interrupted by {}: connection reset", name)
            _summary(sender, args, tracer)
            return pu.interrupted_exit(name)
        if progress:
            progress.close()
        core = sender.core
        ok = core.delivered and sender.failure is None
        _summary(sender, args, tracer)
        if ok:
            if not args.quiet:
                logger.info("delivered and verified by the receiver")
            return pu.EXIT_OK
        logger.error("transfer failed: {}", core.error or repr(sender.failure))
        return pu.EXIT_FAILED


def _cc_rows(core, end: float) -> list[tuple[str, str]]:
    """The congestion controller's lines of the summary (none for --cc none)."""
    cc = core.cc
    if cc.name == "none":
        return []
    log = core.transfer.cc_log
    times = log.times(end)
    return [
        ("congestion control", f"{cc.name}: final cwnd {pu.human_bytes(cc.cwnd)}, largest "
                               f"{pu.human_bytes(log.max_cwnd)}, ssthresh "
                               + ("none" if cc.ssthresh is None
                                  else pu.human_bytes(cc.ssthresh))),
        ("cwnd reductions", ", ".join(f"{k} {v}" for k, v in cc.reductions.items())),
        ("time per cc state", ", ".join(f"{k} {pu.ms(v)}" for k, v in times.items())
         or "n/a"),
    ]


def _ts_words(core) -> str:
    """Whether RFC 7323 timestamps were used, and if not why (PROTOCOL.md §9)."""
    if core.ts_ok:
        return "on (RFC 7323: a resent segment's ACK gives an RTT sample too)"
    if not core.handshake.timestamps:
        return "off (--no-timestamps): RTT samples by Karn's rule only"
    if not core.handshake_done:
        return "offered; no answer to the SYN"
    return "off: the receiver did not take them up; RTT samples by Karn's rule only"


def _summary(sender: Sender, args, tracer) -> None:
    core = sender.core
    st = core.stats
    rtt = core.rtt
    end = core.delivered_at or sender.finished_at or time.monotonic()
    elapsed = end - sender.started
    acked = max(0, min(core.snd_una, core.file_size or core.snd_una))
    syns = core.handshake.syns_sent
    rows = [
        ("result", "delivered and verified" if core.delivered else
         f"FAILED: {core.error}"),
        ("file", f"{args.file} ({pu.human_bytes(sender.file_size or core.file_size or 0)})"),
        ("mode", f"{core.mode}" + ("" if core.mode == "gbn" or core.sack_ok
                                   or not core.handshake_done else
                                   " (peer without SACK: cumulative ACKs only)")),
        ("timestamps", _ts_words(core)),
        *([("resume", _resume_words(core))] if args.resume else []),
        ("bytes acknowledged", f"{acked}"),
        ("time", f"{elapsed:.4f} s (SYN to verified FIN)" if core.delivered
         else f"{elapsed:.4f} s"),
        ("goodput", pu.human_rate(acked, elapsed)),
        ("handshake", "not completed" if core.established_at is None else
         f"{pu.ms(core.established_at - sender.started)} ({syns} SYN"
         + (f"s: {syns - 1} resent)" if syns > 1 else ")")),
        ("segments sent", f"{sender.segments_sent} ({st.data_segments} new data)"),
        ("segments received", f"{st.segments_received}"),
        ("retransmissions", f"{st.retransmissions} (timeout {st.rexmit_timeout}, "
                            f"fast {st.rexmit_fast}, SACK rule {st.rexmit_sack}, "
                            f"RACK {st.rexmit_rack}, TLP {st.rexmit_tlp}); "
                            f"{st.timeouts} timer expiries"),
        ("duplicate ACKs", f"{st.dupacks}"),
        ("zero-window probes", f"{st.probes}"),
        ("RTT min/avg/max", "n/a" if not rtt.samples else
         f"{pu.ms(rtt.sample_min)} / {pu.ms(rtt.sample_avg)} / {pu.ms(rtt.sample_max)} "
         f"({rtt.samples} samples)"),
        *rtt_rows(rtt, core.timer_rto),
        *_cc_rows(core, end),
        ("dropped on arrival", ", ".join(f"{k} {v}" for k, v in sorted(sender.dropped.items()))
         or "none"),
    ]
    if tracer is not None:
        tracer.emit(time.monotonic(), "summary",
                    counters={**st.as_dict(), "segments_sent": sender.segments_sent,
                              "elapsed": elapsed, "bytes_acked": acked,
                              "dropped": sender.dropped, "delivered": core.delivered})
    if not args.quiet:
        print(pu.format_summary("sender summary", rows), flush=True)


def _resume_words(core) -> str:
    if core.handshake.resume_at is None:
        return "no offer from the receiver: sent whole"
    if core.handshake.resume_at:
        return f"resumed at {core.handshake.resume_at} bytes"
    return "prefix differs: sent whole"


if __name__ == "__main__":
    sys.exit(main())
