"""How the report writes its figures, and reads one run's record: the
contenders' order and names, Mbit/s, percentages, sizes, and a role's CPU
seconds and peak RSS from the record's ``wait4`` usage."""

from __future__ import annotations

from bench.runs import MIB
from bench.suite import KIB

ORDER = ["udp", "tcp", "sr", "gbn", "sr-burst", "tftpy", "aioquic"]
LABEL = {
    "udp": "UDP blast (ceiling)",
    "tcp": "Linux TCP (sendfile)",
    "sr": "ours, sr",
    "gbn": "ours, gbn",
    "sr-burst": "ours, sr, one ACK per burst read",
    "tftpy": "tftpy (TFTP, blksize 1428)",
    "aioquic": "aioquic (QUIC, one stream)",
}


def mbit(bps: float | None) -> str:
    return "-" if bps is None else f"{bps * 8 / 1e6:,.1f}"


def pct(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:.0f}%"


def kib(n: int) -> str:
    return f"{n // MIB} MiB" if n >= MIB and n % MIB == 0 else f"{n // KIB} KiB"


def fmt(x: float | None, spec: str = ".2f") -> str:
    return "-" if x is None else format(x, spec)


def cpu(rec: dict, role: str) -> float | None:
    u = rec["usage"].get(role)
    return None if not u else u["user"] + u["sys"]


def part(rec: dict, role: str, key: str) -> float | None:
    u = rec["usage"].get(role)
    return None if not u else u[key]


def rss(rec: dict, role: str) -> float | None:
    u = rec["usage"].get(role)
    return None if not u else u["maxrss_kib"] / 1024.0


def per_mib(rec: dict, role: str) -> float | None:
    c = cpu(rec, role)
    return None if c is None or rec["bytes"] <= 0 else c / (rec["bytes"] / MIB)


def net(cpu_s: float | None, fixed: float | None) -> float | None:
    """CPU seconds less the fixed cost of a run (never below zero)."""
    if cpu_s is None:
        return None
    return max(0.0, cpu_s - (fixed or 0.0))
