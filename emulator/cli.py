"""Command line of the link emulator (``stcp-link``, ``python -m emulator``): run it, report.

The flags and their checks are :mod:`emulator.options`; their help text
:mod:`emulator.helptext`.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import sys
import time
from dataclasses import asdict

from loguru import logger

from emulator.link import LinkEmulator, LinkError
from emulator.options import PROG, HelpExit, Options, UsageError, build_parser, parse_options
from runtime.addr import show
from runtime.trace import Tracer

__all__ = ["PROG", "Options", "UsageError", "build_parser", "format_report", "main",
           "parse_options"]

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
        "accept": show(o.accept_host or "*", "*" if o.accept_port is None else o.accept_port),
        "out": show(o.out_host, "*" if o.out_port is None else o.out_port),
        "bind": o.bind,
        "seed": o.seed,
        "seeded": o.seeded,
    }


def _queue_line(q: dict) -> str:
    limits = [f"{q['limit_bytes']} bytes" if q["limit_bytes"] else "",
              f"{q['limit_packets']} datagrams" if q["limit_packets"] else ""]
    limits = " and ".join(x for x in limits if x) or "none"
    return (f"  queue       peak {q['queue_peak_packets']} datagrams, "
            f"{q['queue_peak_bytes']} bytes;"
            f" sojourn mean {q['sojourn_mean'] * 1000:.3f} ms, max {q['sojourn_max'] * 1000:.3f} ms"
            f" (limit {limits}, aqm {q['aqm']})")


def format_report(r: dict) -> str:
    """The report for people: the same figures as the JSON of --stats."""
    causes = ", ".join(f"{k} {v}" for k, v in r["dropped"].items() if v)
    lines = [
        f"{PROG} report ({r['duration']:.3f} s):",
        f"  received    {r['received']:>10} datagrams {r['bytes_received']:>12} bytes",
        f"  forwarded   {r['forwarded']:>10} datagrams {r['bytes_forwarded']:>12} bytes"
        " (duplicates included)",
        f"  dropped     {r['dropped_total']:>10}  ({causes or 'none'})",
        f"  corrupted   {r['corrupted']:>10}  (forwarded with {r['bits_flipped']} bits flipped)",
        f"  duplicated  {r['duplicated']:>10}",
        f"  reordered   {r['reordered']:>10}  ({r['reorder_timeouts']} released by timeout)",
        f"  delayed     {r['delayed']:>10}  (mean {r['mean_delay'] * 1000:.3f} ms, "
        f"max {r['max_delay'] * 1000:.3f} ms)",
        f"  batched     {r['batched_in']:>10} in, {r['batched_out']} out"
        " (datagrams that shared a system call: UDP GRO, GSO)",
    ]
    if "queue" in r:
        lines.append(_queue_line(r["queue"]))
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
    except HelpExit as exc:
        return exc.status
    except UsageError as exc:
        sys.stderr.write(f"{PROG}: error: {exc}\n(see {PROG} --help)\n")
        return 2
    _configure_logging(opts.verbose, opts.log)
    try:
        return _run(opts)
    finally:
        logger.complete()


def _announce(o: Options, recv_port: int, send_port: int) -> None:
    """The line with the ports (always shown: a parent may read it), the settings, warnings."""
    to = show(o.out_host, o.out_port) if o.out_port is not None else \
        f"{o.out_host} at each datagram's TCP destination port"
    logger.bind(always=True).info(
        "listening on {}, sending from {} to {} (seed {})",
        show(o.bind, recv_port), show(o.bind, send_port), to, o.seed,
    )
    logger.info("settings: {}", json.dumps(settings_dict(o)))
    imp = o.imp
    if imp.ge_p > 0 and imp.ge_r == 0:
        logger.warning("--ge-r is 0: once in the bad state the link never recovers")
    if o.queue_without_rate:
        logger.warning("-q has no effect without a link speed (-s): nothing queues")
    if imp.aqm == "red" and imp.queue_packets is not None and imp.red_max > imp.queue_packets:
        logger.warning("--red-max {:g} is above --queue-packets {}: the queue fills first",
                       imp.red_max, imp.queue_packets)


def _finish(o: Options, link: LinkEmulator, tracer, signals_seen: list[int]) -> int:
    """Stop the link; print the report, trace it, write --stats; the exit status."""
    status = 0
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


def _run(o: Options) -> int:
    wake_r, wake_w = socket.socketpair()
    wake_w.setblocking(False)
    signals_seen: list[int] = []
    old_handlers: dict[int, object] = {}
    old_wakeup = None
    trace_file = None
    link = None

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
        _announce(o, recv_port, send_port)
        wake_r.recv(1)  # a signal or a failed thread
        return _finish(o, link, tracer, signals_seen)
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
