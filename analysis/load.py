"""Stream-parse one trace file into columns (plain lists, one per key).

A trace is JSON lines (see ``runtime/trace.py``).  Big traces hold hundreds of
thousands of events, so nothing here keeps the per-line dicts: each event
kind the analysis uses gets a :class:`Columns` of parallel lists, filled as
the file streams past.  Keys an event lacks become ``None`` (the plot or
number that needs them is skipped later); a key of the wrong type, a line that
is not JSON, or a first line that is not the ``meta`` event is a garbled trace
and raises :class:`TraceError` naming the line.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROLES = ("sender", "receiver", "emulator")


class TraceError(Exception):
    """A trace file that is missing, unreadable or garbled."""

    def __init__(self, path: str | Path, message: str, line: int | None = None):
        self.path = str(path)
        self.line = line
        self.message = message
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


# --- value converters: return the value, or raise ValueError ------------

def _num(v: Any) -> float | int:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"expected a number, got {v!r}")
    return v


def _int(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        if isinstance(v, float) and v.is_integer():
            return int(v)
        raise ValueError(f"expected an integer, got {v!r}")
    return v


def _str(v: Any) -> str:
    if not isinstance(v, str):
        raise ValueError(f"expected a string, got {v!r}")
    return v


def _sack(v: Any) -> list[tuple[int, int]]:
    if not isinstance(v, list):
        raise ValueError(f"expected a list of [left, right) blocks, got {v!r}")
    blocks = []
    for b in v:
        if not isinstance(b, (list, tuple)) or len(b) != 2:
            raise ValueError(f"bad SACK block {b!r}")
        blocks.append((_int(b[0]), _int(b[1])))
    return blocks


#: The keys kept per event kind, with their converter.  Everything else in a
#: line is ignored, so new keys never break the analysis.  A key may be
#: written under a shorter name than the analysis uses (``ALIASES``): the
#: emulator writes its queue on arrival as ``qp`` and ``qb`` (runtime/trace.py).
SCHEMA: dict[str, dict[str, Any]] = {
    "send": {"seq": _int, "ack": _int, "flags": _str, "len": _int, "win": _num,
             "off": _int, "rexmit": _str},
    "recv": {"seq": _int, "ack": _int, "flags": _str, "len": _int, "win": _num,
             "off": _int, "sack": _sack, "n": _int, "qpkts": _num, "qbytes": _num},
    # (qpkts, qbytes: the emulator's queue when the dropped datagram arrived,
    # from the recv event of the same n; see _store)
    "drop": {"why": _str, "len": _int, "n": _int, "sojourn": _num, "qpkts": _num,
             "qbytes": _num},
    "timeout": {"rto": _num, "n": _int},
    "fast_rexmit": {"off": _int, "len": _int, "why": _str},
    "rtt": {"sample": _num, "srtt": _num, "rttvar": _num, "rto": _num},
    "rto": {"rto": _num, "backoff": _num},
    "inflight": {"bytes": _num, "rwnd": _num, "acked": _int, "pipe": _num, "cwnd": _num,
                 "ssthresh": _num},
    "cwnd": {"cwnd": _num, "ssthresh": _num, "pipe": _num, "state": _str},
    "rwnd": {"win": _num, "queue": _num, "ooo": _num},
    "write": {"bytes": _num, "queue": _num},
    "state": {"old": _str, "new": _str},
    "resume": {"at": _int, "held": _int},
    "fwd": {"n": _int, "len": _int, "delay": _num, "sojourn": _num},
    "corrupt": {"n": _int},
    "dup": {"n": _int},
    "reorder": {"n": _int},
}

#: Other names a key may have in a line (the first one present wins).
ALIASES: dict[str, tuple[str, ...]] = {
    "qpkts": ("qp",),
    "qbytes": ("qb",),
}

#: Event names read as another kind: congestion-control changes may come as
#: ``cc`` or ``congestion`` events rather than ``cwnd``.
EVENT_ALIASES = {"cc": "cwnd", "congestion": "cwnd", "cc_state": "cwnd", "ssthresh": "cwnd"}


def _readers(ev: str) -> list[tuple[str, tuple[str, ...], Any]]:
    return [(key, ALIASES.get(key, (key,)), conv) for key, conv in SCHEMA[ev].items()]


READERS = {ev: _readers(ev) for ev in SCHEMA}


class Columns:
    """Parallel lists: ``t`` plus one list per schema key."""

    __slots__ = ("t", "cols")

    def __init__(self, keys):
        self.t: list[float] = []
        self.cols: dict[str, list] = {k: [] for k in keys}

    def __len__(self) -> int:
        return len(self.t)

    def __getitem__(self, key: str) -> list:
        return self.t if key == "t" else self.cols[key]

    def present(self, key: str) -> list[tuple[float, Any]]:
        """(t, value) for the events that carry ``key``."""
        return [(t, v) for t, v in zip(self.t, self.cols[key], strict=True) if v is not None]


@dataclass
class Trace:
    path: str
    role: str
    meta: dict[str, Any]
    events: dict[str, Columns]
    t_first: float | None = None
    t_last: float | None = None
    n_lines: int = 0
    counters: dict[str, Any] = field(default_factory=dict)
    other: Counter = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)
    #: the emulator's queue (datagrams, bytes) on each datagram's arrival, by
    #: its number n, for the drop events that follow
    queue_at: dict[int, tuple] = field(default_factory=dict)

    def __getitem__(self, ev: str) -> Columns:
        return self.events[ev]

    @property
    def name(self) -> str:
        return Path(self.path).name


def _open(path: Path):
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def _store(tr: Trace, obj: dict, ev: str, t: float, path, lineno: int) -> None:
    """File one event's keys into its columns (or the counters)."""
    ev = EVENT_ALIASES.get(ev, ev)
    cols = tr.events.get(ev)
    if cols is None:
        if ev == "summary":
            c = obj.get("counters")
            if not isinstance(c, dict):  # counters at top level
                c = {k: v for k, v in obj.items()
                     if k not in ("t", "th", "ev") and isinstance(v, (int, float, str))}
            tr.counters = c
        else:
            tr.other[ev] += 1
        return
    if ev == "recv" and "qp" in obj:
        tr.queue_at[obj.get("n")] = (obj["qp"], obj.get("qb"))
    elif ev == "drop" and tr.queue_at:
        q = tr.queue_at.pop(obj.get("n"), None)
        if q is not None:
            obj = {**obj, "qp": q[0], "qb": q[1]}
    cols.t.append(t)
    for key, names, conv in READERS[ev]:
        v = obj.get(names[0])
        if v is None and len(names) > 1:
            v = next((obj[k] for k in names[1:] if obj.get(k) is not None), None)
        if v is not None:
            try:
                v = conv(v)
            except ValueError as e:
                raise TraceError(path, f"event {ev!r} key {key!r}: {e}", lineno) from None
        cols.cols[key].append(v)


def load_trace(path: str | Path) -> Trace:
    """Read a trace file; raises :class:`TraceError` if it cannot be used.

    A last line cut short without its newline (a process killed mid-write) is
    skipped with a warning rather than refused.
    """
    path = Path(path)
    try:
        fh = _open(path)
    except OSError as e:
        raise TraceError(path, f"cannot open: {e.strerror or e}") from None
    events = {ev: Columns(keys) for ev, keys in SCHEMA.items()}
    tr: Trace | None = None
    lineno = 0
    pending_error: TraceError | None = None
    loads = json.loads
    try:
        with fh:
            for raw in fh:
                lineno += 1
                if pending_error is not None:  # a bad line that was not the last
                    raise pending_error
                if not raw.strip():
                    continue
                try:
                    obj = loads(raw)
                except ValueError as e:
                    err = TraceError(path, f"not JSON ({e.msg})", lineno)
                    if not raw.endswith("\n") and tr is not None:
                        pending_error = err
                        continue
                    raise err from None
                if not isinstance(obj, dict):
                    raise TraceError(path, "not a JSON object", lineno)
                ev = obj.get("ev")
                if not isinstance(ev, str):
                    raise TraceError(path, "no event name (\"ev\")", lineno)
                t = obj.get("t")
                if isinstance(t, bool) or not isinstance(t, (int, float)):
                    raise TraceError(path, f"event {ev!r} has no numeric time \"t\"", lineno)
                if tr is None:
                    if ev != "meta":
                        raise TraceError(path, f"first event is {ev!r}, expected \"meta\"",
                                         lineno)
                    role = obj.get("role")
                    if role not in ROLES:
                        raise TraceError(path, f"meta role {role!r} is not one of "
                                         f"{', '.join(ROLES)}", lineno)
                    meta = {k: v for k, v in obj.items() if k not in ("ev", "th")}
                    tr = Trace(str(path), role, meta, events, t_first=t, t_last=t)
                    continue
                if t < tr.t_first:
                    tr.t_first = t
                if t > tr.t_last:
                    tr.t_last = t
                _store(tr, obj, ev, t, path, lineno)
    except UnicodeDecodeError as e:
        raise TraceError(path, f"not UTF-8 text ({e.reason})", lineno + 1) from None
    except (OSError, EOFError) as e:
        raise TraceError(path, f"cannot read: {e}", lineno or None) from None
    if tr is None:
        raise TraceError(path, "empty trace (no meta line)")
    if pending_error is not None:
        tr.warnings.append(f"line {pending_error.line}: truncated last line ignored")
    tr.n_lines = lineno
    _resumed(tr)
    return tr


def _resumed(tr: Trace) -> None:
    """A resumed transfer (docs/PROTOCOL.md §9, "Resume") carried the file
    from byte ``at`` on: ``meta`` gets ``resumed_at``, and its file size
    becomes what this run carried, which is what every measure here is of
    (offsets count from the resume point, as the programs' own do)."""
    at = next((v for v in tr["resume"]["at"] if v), 0)
    if not at:
        return
    tr.meta["resumed_at"] = at
    if isinstance(tr.meta.get("file_size"), int):
        tr.meta["file_size"] -= at
