"""RESULTS.md and the plots again, from a results.json that ``python -m
bench`` wrote, with no run: after a change to the report, or to check that
one changed nothing.

    python -m bench.report bench/results/results.json [--out DIR] [--no-plots]

The profile is not run again: its paragraph under the targets is the one
results.json keeps, or else the one of the RESULTS.md being replaced.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bench.report import markdown, plots, summarise
from bench.suite import Plan

#: How the paragraph under the targets starts (bench/__main__.py writes it).
NOTE_STARTS = ("Targets marked **NO** are missed.", "Where the time goes", "No profile:")


def old_note(results_md: Path) -> str | None:
    """The profile's paragraph of an existing RESULTS.md, if any."""
    try:
        lines = results_md.read_text().splitlines()
    except OSError:
        return None
    return next((ln for ln in lines if ln.startswith(NOTE_STARTS)), None)


def regenerate(results: Path, out: Path, with_plots: bool = True) -> Path:
    d = json.loads(results.read_text())
    plan = Plan(**d["plan"])
    s = summarise(d["records"], d["facts"], plan)
    note = d["note"] if "note" in d else old_note(out / "RESULTS.md")
    md = markdown(s, d["facts"], d["machine"], plan, d["sections"],
                  d.get("command", "python -m bench"), note)
    out.mkdir(parents=True, exist_ok=True)
    from bench.results_blocks import kept_blocks

    (out / "RESULTS.md").write_text(md + kept_blocks(out / "RESULTS.md"))
    if with_plots:
        plots(s, d["facts"], plan, out)
    return out / "RESULTS.md"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.report",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("results", type=Path, help="a results.json")
    ap.add_argument("--out", type=Path, help="where RESULTS.md and the plots go "
                                             "(default: the directory of results.json)")
    ap.add_argument("--no-plots", action="store_true", help="RESULTS.md only")
    a = ap.parse_args(argv)
    try:
        path = regenerate(a.results, a.out or a.results.parent, not a.no_plots)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"python -m bench.report: error: cannot use {a.results}: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
