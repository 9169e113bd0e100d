"""A run's directory: what a run writes there, and removing it again."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

#: The processes whose files a run leaves (NAME.EXT for each).
NAMES = ("sender", "receiver", "emu-data", "emu-ack")
EXTENSIONS = ("out", "err", "log", "ready", "ready.tmp", "trace.jsonl", "pcap", "stats.json")
ANALYSIS = "analysis.txt"
PLOTS = "plots"
SAMPLE = "sample.bin"
RECEIVED = "received.bin"


def artifacts(rundir: Path, names=NAMES) -> list[Path]:
    """The files of each process and of the analysis (not the plots, the
    sample or the received file)."""
    return [rundir / f"{n}.{ext}" for n in names for ext in EXTENSIONS] + [rundir / ANALYSIS]


def default_dir(root: Path, pid: int | None = None, now: float | None = None) -> Path:
    """runs/run-YYYYmmdd-HHMMSS-PID under ``root``."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    return root / "runs" / f"run-{stamp}-{os.getpid() if pid is None else pid}"


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
