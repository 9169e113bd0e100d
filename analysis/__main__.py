"""stcp-analyze: summaries, plots, an HTML report and pcaps from the traces
stcp-send, stcp-recv and stcp-link write.

    stcp-analyze TRACE_OR_RUN_DIR... [--out DIR] [--no-plots] [--bin S] [--json]
    stcp-analyze RUN_DIR --html [--out FILE]
    stcp-analyze TRACE --pcap OUT.pcap

Thread traces (``--thread-trace``, ``*.threads.json``) given or found in a
run directory add a contention table per trace (in ``--json`` too) and a
timeline PNG of every thread, and a thread panel to the HTML report.

Exit status: 0 when every trace was read; 2 when a trace is missing,
unreadable or garbled (the others are still analysed) or the arguments are
wrong; 1 when an output cannot be written (or bokeh, which draws the
HTML report, is not installed); 141 when the reader of the
output went away (``stcp-analyze ... | head``), quietly, as a Unix tool
killed by SIGPIPE.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .rundir import find_thread_traces, find_traces, load_run
from .summary import summarize
from .text import format_summary

_SUFFIXES = (".gz", ".jsonl", ".json", ".ndjson", ".trace", ".log", ".txt")
EXIT_PIPE = 141

PCAP_HELP = """write TRACE (a sender's or a receiver's) as a pcap Wireshark reads:
every send and recv event becomes a TCP segment with the trace's seq, ack,
flags, window and SACK blocks, between 10.0.0.1 (the sender) and 10.0.0.2
(the receiver).  The trace has no payload bytes: payloads are zero-filled to
their real length, so the TCP checksums are of those zeros; the SYNs carry
MSS and SACK-permitted from the meta line, other options are not in the
trace and are left out (windows are the raw, unscaled field).  Timestamps
are the trace's, placed so that its last line falls at the file's
modification time"""


def _stem(path: Path, taken: set[str]) -> str:
    name = path.name
    changed = True
    while changed:
        changed = False
        for suf in _SUFFIXES:
            if name.endswith(suf) and len(name) > len(suf):
                name = name[: -len(suf)]
                changed = True
    stem, i = name, 2
    while stem in taken:
        stem = f"{name}-{i}"
        i += 1
    taken.add(stem)
    return stem


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="stcp-analyze",
        description="Summarise and plot traces written by stcp-send, stcp-recv and stcp-link; "
                    "an interactive HTML report of a run directory (--html); a pcap made "
                    "from a trace (--pcap).  Every figure is defined in docs/MEASURES.md.")
    p.add_argument("traces", nargs="+", metavar="TRACE", type=Path,
                   help="trace files (JSON lines, optionally .gz), thread traces "
                        "(*.threads.json, from --thread-trace), or run directories (their "
                        "*.trace.jsonl and *.threads.json files); the role comes from each "
                        "file's meta line")
    p.add_argument("--out", "-o", type=Path, default=None, metavar="PATH",
                   help="directory for the PNG plots (default: RUN_DIR/plots for a run "
                        "directory, else the current directory); with --html, the report "
                        "file (default: RUN_DIR/report.html)")
    p.add_argument("--html", action="store_true",
                   help="write one self-contained, offline HTML report of the run instead "
                        "of PNGs")
    p.add_argument("--pcap", type=Path, default=None, metavar="OUT.pcap", help=PCAP_HELP)
    p.add_argument("--no-plots", action="store_true", help="only print the summaries")
    p.add_argument("--bin", type=float, default=None, metavar="SECONDS",
                   help="goodput bin width (default: a round width giving about 25 bins)")
    p.add_argument("--json", action="store_true",
                   help="print the summaries as JSON (one object per trace) instead of tables")
    return p


def _expand(paths: list[Path]) -> tuple[list[Path], list[Path], Path | None, list[str]]:
    """Trace files, thread-trace files, the run directory (the first
    directory given), errors."""
    from .threads import is_thread_trace

    files, threads, run_dir, errors = [], [], None, []
    for p in paths:
        if p.is_dir():
            found, found_threads = find_traces(p), find_thread_traces(p)
            if not found and not found_threads:
                errors.append(f"{p}: no *.trace.jsonl files (nor *.threads.json) in this "
                              "directory")
            run_dir = run_dir or p
            files += found
            threads += found_threads
        elif is_thread_trace(p):
            threads.append(p)
        else:
            files.append(p)
    return files, threads, run_dir, errors


def _err(msg: str) -> None:
    print(f"stcp-analyze: {msg}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:
        # The reader left (| head): no traceback; stdout is pointed at
        # /dev/null so that the interpreter's final flush cannot fail again.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return EXIT_PIPE


def _main(argv) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as e:  # argparse: --help (0) or a usage error (2)
        return e.code if isinstance(e.code, int) else 2
    if args.bin is not None and not args.bin > 0:
        _err("--bin must be positive")
        return 2
    if args.pcap is not None:
        return _to_pcap(args)
    files, thread_files, run_dir, errors = _expand(args.traces)
    run = load_run(files, run_dir, thread_files)
    status = 2 if errors or run.errors else 0
    for e in errors + run.errors:
        _err(e)
    for tr in run.traces:
        for w in tr.warnings:
            _err(f"{tr.path}: {w}")
    if args.html:
        return _html(args, run, run_dir, status)
    if not run.traces and not run.threads:
        return status or 2
    return _summaries(args, run, run_dir, status)


def _summaries(args, run, run_dir, status) -> int:
    out = args.out or (run_dir / "plots" if run_dir else Path("."))
    if not args.no_plots:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            _err(f"cannot create {out}: {e.strerror or e}")
            return 1
    stems: set[str] = set()
    summaries = []
    link_rate = _link_rate(run)
    for i, (tr, d) in enumerate(zip(run.traces, run.derived, strict=True)):
        s = summarize(tr, d)
        if args.json:
            summaries.append(s)
        else:
            print(("\n" if i else "") + format_summary(s))
        if not args.no_plots:
            from .plots import make_plots

            written, notes = make_plots(tr, out, _stem(Path(tr.path), stems), d, args.bin,
                                        run.zero_what, link_rate)
            stream = sys.stderr if args.json else sys.stdout
            for f in written:
                print(f"  plot: {f}", file=stream)
            for n in notes:
                print(f"  plot {n}", file=stream)
    _threads(args, run, out, summaries)
    if args.json:
        print(json.dumps(summaries, indent=2))
    sys.stdout.flush()
    return status


def _threads(args, run, out, summaries) -> None:
    """The thread traces' contention tables and their timeline PNG."""
    if not run.threads:
        return
    from .contention import contention, format_contention

    for tt in run.threads:
        c = contention(tt)
        if args.json:
            summaries.append(c)
        else:
            print("\n" + format_contention(c))
    if not args.no_plots:
        from .png_threads import make_thread_plot

        written, notes = make_thread_plot(run.threads, out, run.zero,
                                          run.zero_what or "the first event")
        stream = sys.stderr if args.json else sys.stdout
        for f in written:
            print(f"  plot: {f}", file=stream)
        for n in notes:
            print(f"  plot {n}", file=stream)


def _link_rate(run) -> float | None:
    """The data path's link rate in bit/s (the emulator's -s), if set."""
    for tr, _ in run.of("emulator"):
        imp = tr.meta.get("impairments")
        r = imp.get("rate") if isinstance(imp, dict) else None
        if isinstance(r, (int, float)) and r > 0 and "ack" not in tr.name:
            return float(r)
    return None


def _html(args, run, run_dir, status) -> int:
    if not run.traces and not run.threads:
        _err("no trace to report on")
        return status or 2
    try:
        import bokeh  # noqa: F401
    except ImportError:
        _err("the HTML report needs bokeh: .venv/bin/pip install -e '.[extras]'")
        return 1
    from .report.page import write_report

    out = args.out or ((run_dir or Path(".")) / "report.html")
    try:
        size = write_report(run, out)
    except OSError as e:
        _err(f"cannot write {out}: {e.strerror or e}")
        return 1
    print(f"report: {out} ({size / 1e6:.2f} MB)")
    return status


def _to_pcap(args) -> int:
    from .load import TraceError, load_trace
    from .topcap import TraceToPcapError, trace_to_pcap

    if len(args.traces) != 1 or args.traces[0].is_dir():
        _err("--pcap takes exactly one trace file")
        return 2
    try:
        tr = load_trace(args.traces[0])
        n = trace_to_pcap(tr, args.pcap)
    except (TraceError, TraceToPcapError) as e:
        _err(str(e))
        return 2
    except OSError as e:
        _err(f"cannot write {args.pcap}: {e.strerror or e}")
        return 1
    print(f"pcap: {args.pcap} ({n} segments)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
