"""Read a thread trace (``--thread-trace FILE``: Chrome trace-event JSON,
written by ``runtime/threadfile.py``) and cut each thread's time into states.

A thread is, at every moment of its traced span (its first event to its
last), in exactly one state (docs/MEASURES.md, "Threads"); where recorded
spans overlap, the first in this order wins:

1. ``waiting for a lock``: a blocked acquire (``lock.wait``);
2. ``waiting on a condition``: a condition wait, start to wake (``cond.wait``);
3. ``in a system call``: a socket send or receive, poll, disk write, flush,
   fsync (``syscall``);
4. ``running, lock held``: inside a hold of a lock (``lock.hold``);
5. ``running``: none of these.  Python runs one thread at a time: "running"
   includes the time a thread waits for the interpreter's GIL, which no
   event shows.

Times here are seconds of ``time.monotonic()``, the clock of the JSON-lines
traces, so a thread trace lines up with the run's time zero.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .load import TraceError

LOCK_WAIT = "waiting for a lock"
COND_WAIT = "waiting on a condition"
SYSCALL = "in a system call"
HELD = "running, lock held"
RUNNING = "running"
#: The states, in the order they win where spans overlap (then running).
STATES = (LOCK_WAIT, COND_WAIT, SYSCALL, HELD, RUNNING)
OUTCOMES = ("notified", "spurious", "timeout", "interrupted", "unknown")


@dataclass
class ThreadTrace:
    path: str
    role: str
    names: dict[int, str]  # tid -> thread name, in the file's order
    holds: list = field(default_factory=list)  # (lock, tid, start, end)
    lock_waits: list = field(default_factory=list)  # (lock, tid, start, end, holder, after)
    cond_waits: list = field(default_factory=list)  # (cond, lock, tid, start, end, outcome, pred)
    syscalls: list = field(default_factory=list)  # (name, tid, start, end, args)
    counters: dict = field(default_factory=dict)  # name -> [(t, value)]
    instants: list = field(default_factory=list)  # (name, tid, t, args)
    info: dict = field(default_factory=dict)  # otherData

    @property
    def name(self) -> str:
        return Path(self.path).name

    def label(self, tid: int) -> str:
        return self.names.get(tid, str(tid))

    def dropped(self) -> dict[str, int]:
        return {t.get("name", "?"): t.get("dropped", 0) for t in self.info.get("threads", [])
                if t.get("dropped")}


def is_thread_trace(path: Path) -> bool:
    """Whether ``path`` is a thread trace (by name, else by its first bytes)."""
    if path.name.endswith(".threads.json"):
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError:
        return False
    return head.lstrip().startswith(b'{"traceEvents"')


def _num(e: dict, key: str, path: str, i: int) -> float:
    v = e.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise TraceError(path, f"event {i}: {key} is not a number ({v!r})")
    return float(v)


def load_thread_trace(path: str | Path) -> ThreadTrace:
    """Parse one thread trace; a missing, unreadable or garbled file raises
    TraceError."""
    path = str(path)
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except OSError as e:
        raise TraceError(path, f"cannot read: {e.strerror or e}") from None
    except ValueError as e:
        raise TraceError(path, f"not a thread trace (not JSON: {e})") from None
    events = doc.get("traceEvents") if isinstance(doc, dict) else None
    if not isinstance(events, list):
        raise TraceError(path, "not a thread trace (no traceEvents list)")
    info = doc.get("otherData") if isinstance(doc.get("otherData"), dict) else {}
    tt = ThreadTrace(path, str(info.get("role", "?")), {}, info=info)
    for i, e in enumerate(events):
        if not isinstance(e, dict):
            raise TraceError(path, f"event {i} is not an object")
        _take(tt, e, path, i)
    for seq in (tt.holds, tt.lock_waits, tt.syscalls, tt.instants):
        seq.sort(key=lambda r: r[2])
    tt.cond_waits.sort(key=lambda r: r[3])
    for pts in tt.counters.values():
        pts.sort()
    return tt


def _take(tt: ThreadTrace, e: dict, path: str, i: int) -> None:
    ph = e.get("ph")
    args = e.get("args") if isinstance(e.get("args"), dict) else {}
    tid = e.get("tid", 0)
    if ph == "M":
        if e.get("name") == "thread_name":
            tt.names[tid] = str(args.get("name", tid))
        elif e.get("name") == "process_name" and tt.role == "?":
            tt.role = str(args.get("name", "?"))
        return
    if ph not in ("X", "C", "i", "I"):
        return
    t = _num(e, "ts", path, i) / 1e6
    if ph == "C":
        for v in args.values():  # one value per counter event (runtime/threadfile.py)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                tt.counters.setdefault(str(e.get("name", "?")), []).append((t, float(v)))
                break
        return
    if ph in ("i", "I"):
        tt.instants.append((str(e.get("name", "?")), tid, t, args))
        return
    end = t + max(0.0, _num(e, "dur", path, i) / 1e6)
    cat = e.get("cat")
    if cat == "lock.hold":
        tt.holds.append((str(args.get("lock", "?")), tid, t, end))
    elif cat == "lock.wait":
        tt.lock_waits.append((str(args.get("lock", "?")), tid, t, end,
                              str(args.get("holder") or "?"), bool(args.get("after_wait"))))
    elif cat == "cond.wait":
        outcome = args.get("outcome")
        tt.cond_waits.append((str(args.get("cond", "?")), str(args.get("lock", "?")), tid, t,
                              end, outcome if outcome in OUTCOMES else "unknown",
                              args.get("predicate")))
    elif cat == "syscall":
        tt.syscalls.append((str(e.get("name", "?")), tid, t, end, args))


# ------------------------------------------------------------ states
def _spans(tt: ThreadTrace, tid: int) -> list[tuple[float, float, int, str]]:
    """Every recorded span of thread ``tid``: (start, end, state index, label)."""
    out = []
    for lock, t, s, e, holder, after in tt.lock_waits:
        if t == tid:
            why = " (taking it back after a condition wait)" if after else ""
            out.append((s, e, 0, f"wait for {lock}, held by {holder}{why}"))
    for cond, _lock, t, s, e, outcome, _p in tt.cond_waits:
        if t == tid:
            out.append((s, e, 1, f"wait on {cond}: {outcome}"))
    for name, t, s, e, args in tt.syscalls:
        if t == tid:
            what = ", ".join(f"{k} {v}" for k, v in args.items()) if args else ""
            out.append((s, e, 2, f"{name}" + (f" ({what})" if what else "")))
    for lock, t, s, e in tt.holds:
        if t == tid:
            out.append((s, e, 3, f"{lock} held"))
    return out


def thread_span(tt: ThreadTrace, tid: int) -> tuple[float, float] | None:
    """The thread's traced span: its first event's start to its last's end."""
    pts = [p for s, e, _, _ in _spans(tt, tid) for p in (s, e)]
    pts += [t for _n, th, t, _a in tt.instants if th == tid]
    return (min(pts), max(pts)) if pts else None


def trace_span(tt: ThreadTrace) -> tuple[float, float] | None:
    """The span of every event of the thread trace."""
    spans = [thread_span(tt, tid) for tid in tt.names]
    spans = [s for s in spans if s is not None]
    return (min(s[0] for s in spans), max(s[1] for s in spans)) if spans else None


def timeline(tt: ThreadTrace, tid: int) -> list[tuple[float, float, str, str]]:
    """The thread's span cut into (start, end, state, label), in time order,
    adjacent pieces of one state and label merged."""
    spans = _spans(tt, tid)
    bounds = thread_span(tt, tid)
    if bounds is None:
        return []
    points = []
    for k, (s, e, _prio, _label) in enumerate(spans):
        if e > s:
            points.append((s, 0, k))  # opens (sorts before a close at the same time)
            points.append((e, 1, k))
    points.sort()
    active: list[set[int]] = [set() for _ in range(4)]
    out: list[list] = []
    prev = bounds[0]
    for t, kind, k in points:
        if t > prev:
            _piece(out, prev, t, active, spans)
            prev = t
        prio = spans[k][2]
        (active[prio].add if kind == 0 else active[prio].discard)(k)
    if bounds[1] > prev:
        _piece(out, prev, bounds[1], active, spans)
    return [tuple(p) for p in out]


def _piece(out: list, start: float, end: float, active, spans) -> None:
    for prio in range(4):
        if active[prio]:
            k = min(active[prio])
            state, label = STATES[prio], spans[k][3]
            break
    else:
        state, label = RUNNING, ""
    if out and out[-1][2] == state and out[-1][3] == label and out[-1][1] == start:
        out[-1][1] = end
    else:
        out.append([start, end, state, label])


def shares(pieces) -> dict[str, float]:
    """Seconds in each state."""
    total = dict.fromkeys(STATES, 0.0)
    for s, e, state, _ in pieces:
        total[state] += e - s
    return total
