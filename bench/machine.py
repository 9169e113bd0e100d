"""A description of the machine and the moment a benchmark ran on."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_total_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / (1024 * 1024)
    except OSError:
        pass
    return None


def _sysctl(name: str) -> str | None:
    try:
        return Path("/proc/sys/" + name.replace(".", "/")).read_text().strip()
    except OSError:
        return None


def _git(*args: str) -> str | None:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def describe() -> dict:
    mem = _mem_total_gib()
    dirty = _git("status", "--porcelain", "--untracked-files=no", "--", "sender", "receiver",
                 "common", "emulator")
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory": f"{mem:.1f} GiB" if mem else "unknown",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "kernel": f"{platform.system()} {platform.release()}",
        "virtualisation": _virt(),
        "rmem_max": _sysctl("net.core.rmem_max"),
        "wmem_max": _sysctl("net.core.wmem_max"),
        "commit": (_git("rev-parse", "--short", "HEAD") or "unknown")
        + (" (with uncommitted changes to the programs)" if dirty else ""),
        "loadavg_start": os.getloadavg(),
        "fingerprint_start": programs_fingerprint(),
    }


def programs_fingerprint() -> str:
    """A digest of the programs' source (their trees at HEAD and any uncommitted
    changes): compared at the start and the end of a run, it tells whether the
    code measured changed in between (commits elsewhere in the tree do not count)."""
    import hashlib

    dirs = ("sender", "receiver", "common", "emulator")
    trees = _git("rev-parse", *(f"HEAD:{d}" for d in dirs)) or ""
    diff = _git("diff", "HEAD", "--", *dirs) or ""
    return hashlib.sha1((trees + diff).encode()).hexdigest()[:10]


def _virt() -> str | None:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    return "virtual machine (hypervisor flag set)" if " hypervisor" in flags else None
