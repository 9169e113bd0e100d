"""A run's directory: what a run writes there, whether one already did
(refused: see :func:`earlier_run`), how big it got, and removing it again."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

#: The processes whose files a run leaves (NAME.EXT for each).
NAMES = ("sender", "receiver", "emu-data", "emu-ack")
EXTENSIONS = ("out", "err", "log", "ready", "ready.tmp", "trace.jsonl", "pcap", "stats.json",
              "threads.json", "threads.json.part")
ANALYSIS = "analysis.txt"
REPORT = "report.html"  # stcp-analyze RUN_DIR --html: the run on one page
REPORT_LOG = "report.log"  # what making it printed
RUN_JSON = "run.json"  # the command and the verdict (analysis/rundir.py reads it)
PLOTS = "plots"
SAMPLE = "sample.bin"
RECEIVED = "received.bin"
#: Captures bigger than this get a word about --snaplen.
BIG_CAPTURES = 16 << 20
COMPACT_SNAPLEN = 100  # an IPv6 header (40) and the longest TCP header (60)


def artifacts(rundir: Path, names=NAMES) -> list[Path]:
    """The files of each process, the analysis's, the report and run.json (not the
    plots, the sample or the received file)."""
    return ([rundir / f"{n}.{ext}" for n in names for ext in EXTENSIONS]
            + [rundir / ANALYSIS, rundir / REPORT, rundir / REPORT_LOG,
               rundir / RUN_JSON])


def earlier_run(rundir: Path) -> list[str]:
    """The names in ``rundir`` that a run wrote: a run there now would
    replace them.  Empty for a new directory or one with other files only."""
    if not rundir.is_dir():
        return []
    ours = [p for p in artifacts(rundir) if p.exists()]
    ours += [rundir / n for n in (PLOTS, SAMPLE, RECEIVED) if (rundir / n).exists()]
    return [p.name for p in ours]


def default_dir(root: Path, pid: int | None = None, now: float | None = None) -> Path:
    """runs/run-YYYYmmdd-HHMMSS-PID under ``root``; numbered (-2, -3, ...) in
    the unlikely case that it exists."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    base = root / "runs" / f"run-{stamp}-{os.getpid() if pid is None else pid}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def remove(rundir: Path, extra: list[Path]) -> None:
    """What a run wrote in ``rundir`` and the ``extra`` files; the directory
    too if nothing else is left in it."""
    for p in [*artifacts(rundir), *extra]:
        p.unlink(missing_ok=True)
    shutil.rmtree(rundir / PLOTS, ignore_errors=True)
    try:
        rundir.rmdir()
    except OSError:
        pass  # something else is in it: kept


def human(n: float) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f} bytes"


def sizes(rundir: Path) -> dict[str, int]:
    """Bytes in ``rundir`` (recursively), by kind: pcaps, traces, the rest."""
    out = {"pcaps": 0, "traces": 0, "rest": 0}
    for path in rundir.rglob("*"):
        try:
            if not path.is_file():
                continue
            n = path.stat().st_size
        except OSError:
            continue
        kind = ("pcaps" if path.name.endswith(".pcap")
                else "traces" if path.name.endswith((".trace.jsonl", ".threads.json"))
                else "rest")
        out[kind] += n
    return out


def size_report(rundir: Path, snaplen: int | None) -> str:
    """'DIR (12.0 MiB: pcaps 8.0 MiB, ...)', and how to keep big captures small."""
    by = sizes(rundir)
    total = sum(by.values())
    parts = ", ".join(f"{k} {human(v)}" for k, v in by.items() if v and k != "rest")
    text = f"{rundir} ({human(total)}" + (f": {parts}" if parts else "") + ")"
    if by["pcaps"] >= BIG_CAPTURES and snaplen is None:
        text += (f"; --snaplen {COMPACT_SNAPLEN} keeps only the headers of each packet "
                 "in the pcaps")
    return text
