"""The contention table of a thread trace: per lock, per condition, per
thread and per system call; the same numbers as JSON (``stcp-analyze
--json``).  docs/MEASURES.md ("Threads") defines each figure:

* **acquisitions** of a lock: its holds (an acquire, or the lock taken back
  after a condition wait); **contended**: those that found the lock taken
  and blocked (``lock.wait`` events), as a share of the acquisitions;
* **wait**: how long a contended acquisition blocked, from its attempt to
  getting the lock; **hold**: from getting the lock to letting it go (a
  release, or the start of a condition wait);
* a condition's **waits**, by **outcome** (notified, spurious, timeout),
  and how long each waited, from its start to its wake;
* per thread, the **share** of its traced span in each state
  (``analysis/threads.py``);
* per system call and thread: calls, time inside, datagrams and bytes.

Percentiles are nearest-rank: p50 is the smallest value with at least half
of the values at or below it, p99 likewise for 99%.  Times in milliseconds.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict

from .threads import OUTCOMES, STATES, ThreadTrace, shares, thread_span, timeline


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (``p`` in 0..100); None for no values."""
    if not values:
        return None
    xs = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(xs)))
    return xs[rank - 1]


def _ms_stats(seconds: list[float]) -> dict:
    def ms(v):
        return None if v is None else round(v * 1000, 4)

    return {"p50": ms(percentile(seconds, 50)), "p99": ms(percentile(seconds, 99)),
            "max": ms(max(seconds) if seconds else None)}


def contention(tt: ThreadTrace) -> dict:
    """Everything the table prints, as plain data."""
    return {"trace": tt.path, "kind": "thread trace", "role": tt.role,
            "locks": _locks(tt), "conditions": _conditions(tt), "threads": _threads(tt),
            "wakeups": dict(Counter(w[5] for w in tt.cond_waits)),
            "system_calls": _syscalls(tt), "dropped_events": tt.dropped(),
            "instants": dict(Counter(i[0] for i in tt.instants))}


def _locks(tt: ThreadTrace) -> list[dict]:
    holds: dict[str, list[float]] = defaultdict(list)
    for lock, _tid, s, e in tt.holds:
        holds[lock].append(e - s)
    waits: dict[str, list] = defaultdict(list)
    for w in tt.lock_waits:
        waits[w[0]].append(w)
    out = []
    for lock in sorted(set(holds) | set(waits), key=lambda k: -len(holds.get(k, []))):
        ws = waits.get(lock, [])
        n = len(holds.get(lock, []))
        out.append({
            "lock": lock, "acquisitions": n, "contended": len(ws),
            "contended_share": round(len(ws) / n, 6) if n else None,
            "after_condition_wait": sum(1 for w in ws if w[5]),
            "wait_ms": _ms_stats([w[3] - w[2] for w in ws]),
            "hold_ms": _ms_stats(holds.get(lock, [])),
            "waiters": dict(Counter(tt.label(w[1]) for w in ws)),
            "holders_seen": dict(Counter(w[4] for w in ws)),
        })
    return out


def _conditions(tt: ThreadTrace) -> list[dict]:
    by: dict[str, list] = defaultdict(list)
    for w in tt.cond_waits:
        by[w[0]].append(w)
    out = []
    for cond in sorted(by, key=lambda k: -len(by[k])):
        ws = by[cond]
        outcomes = Counter(w[5] for w in ws)
        out.append({
            "condition": cond, "lock": ws[0][1], "waits": len(ws),
            "outcomes": {o: outcomes.get(o, 0) for o in OUTCOMES if outcomes.get(o)},
            "timeouts_with_work": sum(1 for w in ws if w[5] == "timeout" and w[6] is True),
            "wait_ms": _ms_stats([w[4] - w[3] for w in ws]),
            "threads": sorted({tt.label(w[2]) for w in ws}),
        })
    return out


def _threads(tt: ThreadTrace) -> list[dict]:
    out = []
    for tid, name in tt.names.items():
        span = thread_span(tt, tid)
        if span is None:
            continue
        secs = shares(timeline(tt, tid))
        length = span[1] - span[0]
        out.append({"thread": name, "span_s": round(length, 6),
                    "shares": {s: round(secs[s] / length, 6) if length > 0 else 0.0
                               for s in STATES}})
    return out


def _syscalls(tt: ThreadTrace) -> list[dict]:
    acc: dict[tuple[str, str], dict] = {}
    for name, tid, s, e, args in tt.syscalls:
        row = acc.setdefault((tt.label(tid), name), {"thread": tt.label(tid), "call": name,
                                                     "calls": 0, "time_ms": 0.0,
                                                     "datagrams": 0, "bytes": 0,
                                                     "errors": 0})
        row["calls"] += 1
        row["time_ms"] += (e - s) * 1000
        for key in ("datagrams", "bytes"):
            v = args.get(key)
            if isinstance(v, (int, float)):
                row[key] += int(v)
        if "error" in args:
            row["errors"] += 1
    rows = sorted(acc.values(), key=lambda r: (r["thread"], -r["time_ms"]))
    for r in rows:
        r["time_ms"] = round(r["time_ms"], 3)
    return rows


# ------------------------------------------------------------ the table
def _f(v) -> str:
    return "-" if v is None else f"{v:.3f}"


def _trio(d: dict) -> str:
    return f"{_f(d['p50'])} / {_f(d['p99'])} / {_f(d['max'])}"


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def format_contention(c: dict) -> str:
    lines = [f"thread trace: {c['trace']} ({c['role']})"]
    # The first column fits the longest name (a server names each
    # connection's lock, condition and writer after its file).
    names = ([r["lock"] for r in c["locks"]] + [r["condition"] for r in c["conditions"]]
             + [r["thread"] for r in c["threads"]] + [r["call"] for r in c["system_calls"]])
    n = max([22] + [len(x) + 2 for x in names])
    tn = max([14] + [len(r["thread"]) + 2 for r in c["system_calls"]])
    if c["dropped_events"]:
        lines.append("  the ring kept only the newest events of: " + ", ".join(
            f"{k} ({v:,} older dropped)" for k, v in c["dropped_events"].items()))
    lines.append(f"  {'lock':<{n}}{'acquired':>10}{'contended':>16}"
                 f"   wait p50 / p99 / max (ms)     hold p50 / p99 / max (ms)")
    for r in c["locks"]:
        cont = f"{r['contended']:,} ({_pct(r['contended_share'])})"
        lines.append(f"  {r['lock']:<{n}}{r['acquisitions']:>10,}{cont:>16}   "
                     f"{_trio(r['wait_ms']):<30}{_trio(r['hold_ms'])}")
    lines.append(f"  {'condition':<{n}}{'waits':>10}{'notified':>10}{'spurious':>10}"
                 f"{'timeout':>9}   wait p50 / p99 / max (ms)")
    for r in c["conditions"]:
        o = r["outcomes"]
        lines.append(f"  {r['condition']:<{n}}{r['waits']:>10,}{o.get('notified', 0):>10,}"
                     f"{o.get('spurious', 0):>10,}{o.get('timeout', 0):>9,}   "
                     f"{_trio(r['wait_ms'])}")
    w = c["wakeups"]
    lines.append("  wakeups by outcome: " + (", ".join(
        f"{o} {w[o]:,}" for o in OUTCOMES if w.get(o)) or "none"))
    heads = ("running", "lock held", "lock wait", "cond wait", "syscall")
    lines.append(f"  {'thread (share of span)':<{n}}" + "".join(f"{h:>11}" for h in heads)
                 + f"{'span (s)':>11}")
    order = ("running", "running, lock held", "waiting for a lock", "waiting on a condition",
             "in a system call")
    for r in c["threads"]:
        lines.append(f"  {r['thread']:<{n}}" + "".join(
            f"{_pct(r['shares'][s]):>11}" for s in order) + f"{r['span_s']:>11.3f}")
    lines.append(f"  {'system call':<{n}}{'thread':>{tn}}{'calls':>9}{'time (ms)':>11}"
                 f"{'datagrams':>11}{'bytes':>14}")
    for r in c["system_calls"]:
        lines.append(f"  {r['call']:<{n}}{r['thread']:>{tn}}{r['calls']:>9,}"
                     f"{r['time_ms']:>11.3f}{r['datagrams']:>11,}{r['bytes']:>14,}")
    if c["instants"]:
        lines.append("  marks: " + ", ".join(f"{k} {v:,}" for k, v in
                                             sorted(c["instants"].items())))
    return "\n".join(lines)
