"""stcp-analyze: summary tables and plots from sender/receiver/emulator traces.

    python -m analysis TRACE... [--out DIR] [--no-plots] [--bin SECONDS] [--json]

Exit status: 0 when every trace was read, 2 when a trace is missing,
unreadable or garbled (the others are still analysed) or the arguments are
wrong, 1 when the output directory cannot be made.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .load import TraceError, load_trace
from .summary import derive, format_summary, summarize

_SUFFIXES = (".gz", ".jsonl", ".json", ".ndjson", ".trace", ".log", ".txt")


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
        description="Summarise and plot traces written by stcp-send, stcp-recv and stcp-link.",
    )
    p.add_argument("traces", nargs="+", metavar="TRACE", type=Path,
                   help="trace files (JSON lines, optionally .gz); the role comes from "
                        "each file's meta line")
    p.add_argument("--out", "-o", type=Path, default=Path("."), metavar="DIR",
                   help="directory for the PNG plots (default: current directory)")
    p.add_argument("--no-plots", action="store_true", help="only print the summaries")
    p.add_argument("--bin", type=float, default=None, metavar="SECONDS",
                   help="goodput bin width (default: 100 ms, adapted to the duration)")
    p.add_argument("--json", action="store_true",
                   help="print the summaries as JSON (one object per trace) instead of tables")
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as e:  # argparse: --help (0) or a usage error (2)
        return e.code if isinstance(e.code, int) else 2
    if args.bin is not None and not args.bin > 0:
        print("stcp-analyze: --bin must be positive", file=sys.stderr)
        return 2
    if not args.no_plots:
        try:
            args.out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            print(f"stcp-analyze: cannot create {args.out}: {e.strerror or e}", file=sys.stderr)
            return 1
    status = 0
    stems: set[str] = set()
    summaries = []
    for i, path in enumerate(args.traces):
        try:
            tr = load_trace(path)
        except TraceError as e:
            print(f"stcp-analyze: {e}", file=sys.stderr)
            status = 2
            continue
        for w in tr.warnings:
            print(f"stcp-analyze: {tr.path}: {w}", file=sys.stderr)
        d = derive(tr)
        s = summarize(tr, d)
        if args.json:
            summaries.append(s)
        else:
            if i:
                print()
            print(format_summary(s))
        if not args.no_plots:
            from .plots import make_plots

            written, notes = make_plots(tr, args.out, _stem(path, stems), d, args.bin)
            stream = sys.stderr if args.json else sys.stdout
            for f in written:
                print(f"  plot: {f}", file=stream)
            for n in notes:
                print(f"  plot {n}", file=stream)
    if args.json:
        print(json.dumps(summaries, indent=2))
    return status


if __name__ == "__main__":
    sys.exit(main())
