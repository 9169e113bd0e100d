"""What one sweep run measured, for its row of results.csv.

From the sender's own summary (``sender.out``, its "sender summary" table):
the bytes acknowledged, the transfer time (the first SYN to the FIN
acknowledged, docs/MEASURES.md) and so goodput, the retransmissions, the
timer expiries, the RTT samples' mean and largest.  From the thread traces,
when the run has them: per end, the core lock's share of contended
acquisitions and its wait and hold p99, and the wakeups (all, spurious).
A figure the run did not produce is left empty.
"""

from __future__ import annotations

import re
from pathlib import Path

COLUMNS = ["goodput_bps", "transfer_s", "bytes", "retransmissions", "timer_expiries",
           "rtt_avg_ms", "rtt_max_ms",
           *(f"{end}_{what}" for end in ("sender", "receiver")
             for what in ("lock_contended", "lock_wait_p99_ms", "lock_hold_p99_ms",
                          "wakeups", "spurious_wakeups"))]
_ROW = re.compile(r"^\s{2}(\S.*?)\s{2,}(.*)$")
_MS = re.compile(r"([0-9.]+) ms")


def summary_rows(text: str) -> dict[str, str]:
    """The rows of the 'sender summary' table in ``text``: label -> value."""
    rows, inside = {}, False
    for line in text.splitlines():
        if line.startswith("sender summary"):
            inside = True
            continue
        if inside:
            m = _ROW.match(line)
            if m:
                rows[m.group(1).strip()] = m.group(2).strip()
            elif line.strip() and not line.startswith("-"):
                break
    return rows


def from_summary(text: str) -> dict:
    rows = summary_rows(text)
    out: dict = {}
    acked = rows.get("bytes acknowledged", "")
    time_s = re.match(r"([0-9.]+) s", rows.get("time", ""))
    if acked.isdigit():
        out["bytes"] = int(acked)
    if time_s:
        out["transfer_s"] = float(time_s.group(1))
        if "bytes" in out and out["transfer_s"] > 0 and "verified" in rows.get("result", ""):
            out["goodput_bps"] = round(out["bytes"] * 8 / out["transfer_s"], 1)
    rex = re.match(r"(\d+)", rows.get("retransmissions", ""))
    if rex:
        out["retransmissions"] = int(rex.group(1))
    exp = re.search(r"(\d+) timer expir", rows.get("retransmissions", ""))
    if exp:
        out["timer_expiries"] = int(exp.group(1))
    rtt = _MS.findall(rows.get("RTT min/avg/max", ""))
    if len(rtt) == 3:
        out["rtt_avg_ms"], out["rtt_max_ms"] = float(rtt[1]), float(rtt[2])
    return out


def from_threads(path: Path, end: str) -> dict:
    from analysis.contention import contention
    from analysis.load import TraceError
    from analysis.threads import load_thread_trace

    try:
        c = contention(load_thread_trace(path))
    except TraceError:
        return {}
    out: dict = {}
    core = [r for r in c["locks"] if r["lock"] == "core lock"]
    if core:
        out[f"{end}_lock_contended"] = core[0]["contended_share"]
        out[f"{end}_lock_wait_p99_ms"] = core[0]["wait_ms"]["p99"]
        out[f"{end}_lock_hold_p99_ms"] = core[0]["hold_ms"]["p99"]
    out[f"{end}_wakeups"] = sum(c["wakeups"].values())
    out[f"{end}_spurious_wakeups"] = c["wakeups"].get("spurious", 0)
    return out


def read(run_dir: Path) -> dict:
    """The row's measured columns (missing ones empty)."""
    row = dict.fromkeys(COLUMNS, "")
    try:
        row.update(from_summary((run_dir / "sender.out").read_text(errors="replace")))
    except OSError:
        pass
    for end in ("sender", "receiver"):
        path = run_dir / f"{end}.threads.json"
        if path.is_file():
            row.update(from_threads(path, end))
    return row
