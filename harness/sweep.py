"""stcp-experiment: run a grid of transfers and plot goodput against loss.

    stcp-experiment [--modes gbn,sr] [--loss 0,1,2,5] [--windows 64K] [--cc A,B]
                    [--vary OPTION=V1,V2]... [--reps 3] [--seed 1] [--size 1M]
                    [--dir DIR] [--keep-runs] [--thread-trace] [--lab NAME]
                    [-- RUN_PAIR_OPTIONS...]

Each cell of the grid (harness/sweep_grid.py) is one run_pair.sh run,
through the harness, on a clean emulated link (``--clean``: no impairment
but the cell's loss and a 10 ms one-way delay, unless the options after
``--`` add some).  Results are appended to DIR/results.csv, one row per run
as it ends; a rerun with the same DIR skips the cells that already have a
row, so an interrupted sweep goes on where it stopped.  At the end,
DIR/goodput.png plots goodput against loss (or against the axis that
varies) with the textbook models (bench/models.py) and the spread of the
repetitions.  Exit status: 0 every run delivered its file; 1 some did not
(their run directories are kept under DIR/runs); 2 a bad grid or option;
130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import shutil
import sys
import time
from pathlib import Path

from harness import sweep_result
from harness.labs import LabError
from harness.sweep_grid import Cell, Grid, GridError, check, parse_vary, split_list

BASE = ["--clean", "--delay", "0.010"]
COLUMNS = ["mode", "loss", "window", "cc", "vary", "rep", "seed", "size", "extra",
           "ok", "exit", *sweep_result.COLUMNS, "run_dir", "finished"]
KEY = COLUMNS[:9]


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one GridError line (exit 2), not usage and error."""

    def error(self, message: str):
        raise GridError(f"{message} (see --help)")


def parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="stcp-experiment", formatter_class=argparse.RawDescriptionHelpFormatter,
        description=__doc__.split("\n\n", 2)[2])
    p.add_argument("--modes", default="sr", help="modes, comma-separated (default sr)")
    p.add_argument("--loss", default="0,1,2,5",
                   help="loss percentages on the data path (default 0,1,2,5)")
    p.add_argument("--windows", default="256K", help="sender windows (default 256K)")
    p.add_argument("--cc", default=None,
                   help="congestion control algorithms, comma-separated (passed as the "
                        "sender's --cc; default: not passed)")
    p.add_argument("--vary", action="append", default=[], metavar="OPTION=V1,V2",
                   help="another run_pair.sh option to vary, e.g. --vary buffer=64K,4M "
                        "(repeatable)")
    p.add_argument("--reps", type=int, default=3, help="runs per cell (default 3)")
    p.add_argument("--seed", type=int, default=1,
                   help="the first run's seed; repetition k uses SEED+k (default 1)")
    p.add_argument("--size", default="1M", help="file size of each run (default 1M)")
    p.add_argument("--mss", type=int, default=1452, help="MSS (default 1452)")
    p.add_argument("--dir", default="runs/sweep", type=Path,
                   help="where results.csv, goodput.png and the runs go (default runs/sweep)")
    p.add_argument("--keep-runs", action="store_true",
                   help="keep every run's directory, with traces and plots (default: only "
                        "failed runs are kept, and runs go without traces)")
    p.add_argument("--thread-trace", action="store_true",
                   help="record each run's thread traces; the CSV gets the lock and "
                        "wakeup figures")
    p.add_argument("--lab", metavar="NAME", help="the sweep of lab NAME in docs/LABS.md")
    p.add_argument("--dry-run", action="store_true", help="print the runs, start none")
    p.add_argument("--no-plot", action="store_true", help="no goodput.png")
    p.add_argument("extra", nargs="*", metavar="RUN_PAIR_OPTIONS",
                   help="after --: more run_pair.sh options for every run")
    return p


def grid_of(args) -> Grid:
    g = Grid(modes=split_list("--modes", args.modes), losses=split_list("--loss", args.loss),
             windows=split_list("--windows", args.windows),
             ccs=split_list("--cc", args.cc) if args.cc is not None else [],
             vary=[parse_vary(v) for v in args.vary], reps=args.reps, seed=args.seed,
             size=args.size, mss=args.mss, extra=list(args.extra))
    return check(g)


def measured(csv_path: Path) -> set[tuple]:
    """The keys of the cells results.csv already holds."""
    if not csv_path.is_file():
        return set()
    with open(csv_path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return {tuple(r.get(k, "") for k in KEY) for r in rows}


def append_row(csv_path: Path, row: dict) -> None:
    new = not csv_path.is_file() or csv_path.stat().st_size == 0
    with open(csv_path, "a", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        if new:
            w.writeheader()
        w.writerow(row)


def run_cell(cell: Cell, run_dir: Path, keep: bool, threads: bool) -> dict:
    """One run_pair.sh run of ``cell`` in ``run_dir``; its CSV row."""
    from harness import run_pair

    if run_dir.exists():  # a run this sweep began and never recorded
        shutil.rmtree(run_dir)
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    argv = [*BASE, *cell.argv(), "--dir", str(run_dir)]
    if not keep:
        argv.append("--no-analysis")
    if threads:
        argv.append("--thread-trace")
    run_dir.mkdir(parents=True)
    # What run_pair.sh prints goes to the run's own file, not the terminal.
    with open(run_dir / "run_pair.txt", "w", encoding="utf-8") as out, \
            contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = run_pair.main(argv)
    row = dict(zip(KEY, cell.key(), strict=True))
    row.update(ok=int(code == 0), exit=code, **sweep_result.read(run_dir),
               run_dir=str(run_dir), finished=time.strftime("%Y-%m-%d %H:%M:%S"))
    if code == 0 and not keep:
        shutil.rmtree(run_dir, ignore_errors=True)
        row["run_dir"] = ""
    return row


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = parser().parse_args(argv)
        if args.lab:
            from harness import labs

            args = parser().parse_args(labs.merged(labs.sweep_argv(args.lab), argv))
        grid = grid_of(args)
        grid.extra = _checked_extra(grid)
    except (GridError, LabError) as exc:
        print(f"stcp-experiment: error: {exc}", file=sys.stderr)
        return 2
    except SystemExit as e:  # --help
        return e.code if isinstance(e.code, int) else 2
    return _sweep(args, grid)


def _checked_extra(grid: Grid) -> list[str]:
    """The run_pair.sh options after --, checked by run_pair's own parser
    on the grid's first cell (so that a bad one fails here, once)."""
    from harness.pair_args import UsageError, parse

    cell = grid.cells()[0]
    try:
        parse([*BASE, *cell.argv()])
    except UsageError as exc:
        raise GridError(f"run_pair.sh refuses this grid: {exc}") from None
    return grid.extra


def _sweep(args, grid: Grid) -> int:
    cells = grid.cells()
    csv_path = args.dir / "results.csv"
    done = measured(csv_path)
    todo = [c for c in cells if c.key() not in done]
    axes = ", ".join(grid.varying()) or "nothing"
    print(f"stcp-experiment: {len(cells)} runs in the grid ({axes} varying), "
          f"{len(cells) - len(todo)} already in {csv_path}, {len(todo)} to run")
    if args.dry_run:
        for c in todo:
            print("./run_pair.sh " + " ".join([*BASE, *c.argv(), "--dir",
                                               str(args.dir / "runs" / c.name())]))
        return 0
    args.dir.mkdir(parents=True, exist_ok=True)
    failed = 0
    from tqdm import tqdm

    with tqdm(todo, unit="run", file=sys.stderr, disable=None) as bar:
        for cell in bar:
            bar.set_description(cell.name())
            row = run_cell(cell, args.dir / "runs" / cell.name(), args.keep_runs,
                           args.thread_trace)
            if row["exit"] in (130, 143, 129):
                print(f"stcp-experiment: interrupted; {csv_path} holds the runs so far",
                      file=sys.stderr)
                return row["exit"]
            append_row(csv_path, row)
            if not row["ok"]:
                failed += 1
                bar.write(f"stcp-experiment: {cell.name()} FAILED (exit {row['exit']}); "
                          f"see {row['run_dir']}/run_pair.txt")
    from harness.sweep_plot import plot, table

    if csv_path.is_file():
        print(table(csv_path, grid))
        if not args.no_plot:
            print(f"stcp-experiment: {plot(csv_path, args.dir / 'goodput.png', grid)}")
    print(f"stcp-experiment: results in {csv_path}" + (f"; {failed} runs FAILED" if failed
                                                        else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
