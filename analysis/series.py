"""Series the PNG plots and the HTML report both draw, computed once.

Each function takes a trace and its derived series and returns plain lists
on the trace's own clock; the caller subtracts the run's time zero.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

from .derive import MOD, Derived, unwrap
from .load import Trace
from .pipe import Pipe, replay

#: Bin widths the goodput plots choose from: 1, 2, 5 x 10^k seconds.
NICE = (1.0, 2.0, 5.0)


def nice_bin(span: float, target_bins: int = 25) -> float:
    """The largest 1-2-5 width giving at least ``target_bins`` bins."""
    if span <= 0:
        return 0.001
    raw = span / target_bins
    k = math.floor(math.log10(raw))
    best = 10.0 ** k
    for m in NICE:
        if m * 10.0 ** k <= raw:
            best = m * 10.0 ** k
    return max(best, 1e-4)


def bin_label(width: float) -> str:
    """A bin width in words: "20 ms", "0.5 ms", "2 s"."""
    if width >= 1:
        return f"{width:g} s"
    return f"{width * 1000:.4g} ms"


def delivered_events(d: Derived, cap: int | None) -> list[tuple[float, int]]:
    """(time, bytes newly acknowledged) from the cumulative ACK series."""
    out, prev = [], 0
    for t, off in zip(d.ack_t, d.ack_off, strict=True):
        if cap is not None:
            off = min(off, cap)
        if off > prev:
            out.append((t, off - prev))
            prev = off
    return out


def binned_rate(events, start: float, end: float, width: float):
    """(left edges, bits per second) of ``events`` in bins of ``width``."""
    n = max(1, math.ceil((end - start) / width - 1e-9))
    acc = [0.0] * n
    for t, b in events:
        i = min(max(int((t - start) / width), 0), n - 1)
        acc[i] += b
    return [start + i * width for i in range(n)], [b * 8 / width for b in acc]


@dataclass
class Edge:
    """The time-sequence graph's window limit: the highest offset new data
    may reach, una + min(min(WINDOW, cwnd) + SACKed, the peer's room),
    capped at the file's end."""

    t: list[float]
    edge: list[float]


def window_edge(tr: Trace, p: Pipe, cap: int | None) -> Edge:
    w = tr.meta.get("window")
    window = float(w) if isinstance(w, (int, float)) and not isinstance(w, bool) else None
    rw = tr["inflight"].present("rwnd")
    cw = sorted(tr["cwnd"].present("cwnd") + tr["inflight"].present("cwnd"))
    rw_t = [x[0] for x in rw]
    cw_t = [x[0] for x in cw]
    out = Edge([], [])
    if not p.nxt:  # the sender's own pipe: replay for snd_una and SACKed
        return out
    for t, una, sacked in zip(p.t, p.una, p.sacked, strict=True):
        i = bisect.bisect_right(rw_t, t) - 1
        j = bisect.bisect_right(cw_t, t) - 1
        room = [x for x in (window, cw[j][1] if j >= 0 else None) if x is not None]
        lims = [min(room) + sacked] if room else []
        if i >= 0:
            lims.append(rw[i][1])
        if not lims:
            continue
        e = una + min(lims)
        if cap is not None:
            e = min(e, cap)
        out.t.append(t)
        out.edge.append(e)
    return out


def sender_edge(tr: Trace, d: Derived) -> Edge:
    size = tr.meta.get("file_size")
    cap = size if isinstance(size, int) else (d.data_end or None)
    return window_edge(tr, replay(tr, d.origin), cap)


def receiver_edge(tr: Trace, d: Derived) -> Edge:
    """The receiver's window limit: the right edge it advertises, its
    cumulative ACK + the window of each ``rwnd`` event (bytes), capped at
    the stream's end once a FIN has shown where that is.  No data it
    accepts lies past it."""
    out = Edge([], [])
    recv = tr["recv"]
    cap = None
    if d.origin is not None:
        fin = [(sq + (ln or 0) - d.origin - 1) % MOD
               for sq, ln, fl in zip(recv["seq"], recv["len"], recv["flags"], strict=True)
               if sq is not None and "F" in (fl or "")]
        cap = unwrap(d.data_end, fin[0]) if fin else None
    for t, win in tr["rwnd"].present("win"):
        i = bisect.bisect_right(d.ack_t, t) - 1
        if i < 0:
            continue
        e = max(d.ack_off[i], 0) + win
        out.t.append(t)
        out.edge.append(min(e, cap) if cap is not None else e)
    return out


def sack_blocks(tr: Trace) -> tuple[list[float], list[int], list[int]]:
    ts, lo, hi = [], [], []
    recv = tr["recv"]
    for t, blocks in zip(recv.t, recv["sack"], strict=True):
        for left, right in blocks or ():
            ts.append(t)
            lo.append(left)
            hi.append(right)
    return ts, lo, hi


def data_segments(tr: Trace, d: Derived):
    """Sender: (t, off, len, cause or "", index into send); receiver: the
    class ("new", "ooo", "dup") instead of the cause."""
    if tr.role == "sender":
        c = tr["send"]
        return [(t, off, ln, r or "", i) for i, (t, off, ln, r) in
                enumerate(zip(c.t, c["off"], c["len"], c["rexmit"], strict=True))
                if ln and off is not None]
    c = tr["recv"]
    cls = {"ooo-dup": "dup"}  # held already: drawn as the duplicate it is
    return [(t, off, ln, cls.get(c, c), i) for i, (t, off, ln, c) in
            enumerate(zip(c.t, c["off"], c["len"],
                          (d.seg_class.get(i, "new") for i in range(len(c))), strict=True))
            if ln and off is not None]


def x_end(tr: Trace) -> float:
    """The last time worth showing: the last send or recv (not TIME-WAIT's
    silence), else the last line."""
    ends = [c.t[-1] for c in (tr["send"], tr["recv"]) if len(c)]
    return max(ends) if ends else (tr.t_last or 0.0)
