"""Series in stream offsets, derived once per trace and shared by the
summary, the PNG plots and the HTML report.

Sequence numbers are 32-bit and wrap; everything here is turned into stream
offsets (offset 0 is the first data byte, the ISN + 1), unwrapped against the
previous value, so a 5 GiB transfer's offsets keep growing.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from .load import Trace

MOD = 1 << 32
HALF = 1 << 31


def unwrap(prev: int | None, value32: int) -> int:
    """The integer congruent to ``value32`` modulo 2**32 nearest ``prev``."""
    if prev is None:
        return value32
    delta = (value32 - prev) % MOD
    if delta >= HALF:
        delta -= MOD
    return prev + delta


@dataclass
class Derived:
    """Series in stream offsets, computed once per trace."""

    t0: float = 0.0  # the time zero of the plots (set_zero() moves it)
    isn_sender: int | None = None  # ISN of the data sender (both roles)
    # Offset 0 of the file is origin + 1: the ISN, or the ISN plus the name's
    # length when the SYN's name took sequence space (PROTOCOL.md §9).
    origin: int | None = None
    ack_t: list[float] = field(default_factory=list)  # cumulative ACK of the data
    ack_off: list[int] = field(default_factory=list)
    data_end: int = 0  # highest off+len of data seen
    # receiver: index into recv columns -> "new" | "ooo" | "dup" | "ooo-dup" (past
    # the next expected byte and already held: both, as the receiver counts it)
    seg_class: dict[int, str] = field(default_factory=dict)


def flags_of(f: str | None) -> str:
    return f or ""


def ack_series(ts, acks, flagss, isn, start=None):
    """Cumulative ACK offsets from raw acknowledgment numbers, for segments
    with the ACK flag; ``isn`` is the data's origin (offset 0 = isn + 1, see
    Derived.origin)."""
    out_t, out_off = [], []
    prev = start
    for t, ack, fl in zip(ts, acks, flagss, strict=True):
        if ack is None or "A" not in flags_of(fl):
            continue
        off = unwrap(prev, (ack - isn - 1) % MOD)
        if prev is None and off >= HALF:  # an ACK below the first byte
            off -= MOD
        prev = off
        out_t.append(t)
        out_off.append(off)
    return out_t, out_off


def first_syn_seq(cols) -> int | None:
    for fl, seq in zip(cols["flags"], cols["seq"], strict=True):
        if "S" in flags_of(fl) and seq is not None:
            return seq
    return None


def data_origin(syn_cols, synack_cols) -> int | None:
    """``origin`` (see Derived) from the first SYN in ``syn_cols`` and the
    first SYN-ACK in ``synack_cols``: the name in the SYN's payload counts
    only if the SYN-ACK acknowledged it."""
    isn = name_len = None
    for fl, seq, ln in zip(syn_cols["flags"], syn_cols["seq"], syn_cols["len"], strict=True):
        if "S" in flags_of(fl) and seq is not None:
            isn, name_len = seq, ln or 0
            break
    if isn is None:
        return None
    for fl, ack in zip(synack_cols["flags"], synack_cols["ack"], strict=True):
        f = flags_of(fl)
        if "S" in f and "A" in f and ack is not None:
            if name_len and ack == (isn + 1 + name_len) % MOD:
                return (isn + name_len) % MOD
            break
    return isn


#: The sender's state when its core issues the first SYN: time zero.
SYN_STATE = "SYN_SENT"


def state_time(tr: Trace, new: str) -> float | None:
    st = tr["state"]
    return next((t for t, n in zip(st.t, st["new"], strict=True) if n == new), None)


def syn_time(tr: Trace) -> float | None:
    """Time zero: the sender's first SYN (see the module docstring)."""
    t = state_time(tr, SYN_STATE)
    if t is not None:
        return t
    send = tr["send"]
    return next((t for t, fl in zip(send.t, send["flags"], strict=True)
                 if "S" in flags_of(fl)), None)


def zero_of(tr: Trace) -> float:
    """A trace's own time zero: the sender's first SYN, the receiver's first
    SYN received, the emulator's first line.  A run's report puts every
    trace on the sender's zero instead (rundir.py)."""
    if tr.role == "sender":
        t = syn_time(tr)
    elif tr.role == "receiver":
        recv = tr["recv"]
        t = next((t for t, fl in zip(recv.t, recv["flags"], strict=True)
                  if "S" in flags_of(fl)), None)
    else:
        t = None
    return t if t is not None else (tr.t_first or 0.0)


def derive(tr: Trace) -> Derived:
    d = Derived(t0=zero_of(tr))
    send, recv = tr["send"], tr["recv"]
    if tr.role == "sender":
        d.isn_sender = first_syn_seq(send)
        d.origin = data_origin(send, recv)
        if d.isn_sender is None and isinstance(tr.meta.get("isn"), int):
            d.isn_sender = d.origin = tr.meta["isn"]
        d.origin = _past_resume(tr, d.origin)
        if d.origin is not None:
            d.ack_t, d.ack_off = ack_series(recv.t, recv["ack"], recv["flags"], d.origin)
        if not d.ack_off:  # fall back on the sender's own bookkeeping
            pts = tr["inflight"].present("acked")
            d.ack_t = [t for t, _ in pts]
            d.ack_off = [v for _, v in pts]
        for ln, off in zip(send["len"], send["off"], strict=True):
            if ln and off is not None and off + ln > d.data_end:
                d.data_end = off + ln
    elif tr.role == "receiver":
        d.isn_sender = first_syn_seq(recv)
        d.origin = _past_resume(tr, data_origin(recv, send))
        if d.origin is not None:
            d.ack_t, d.ack_off = ack_series(send.t, send["ack"], send["flags"], d.origin)
        buffering = str(tr.meta.get("mode", "sr")).lower() != "gbn"
        nxt = 0
        held: list[list[int]] = []  # disjoint sorted [a, b) above nxt
        offs = recv["off"]
        if tr.meta.get("resumed_at") and d.origin is not None:
            # (the receiver wrote the first burst's offsets before it knew
            # where the sender starts: worked out again from the numbers)
            offs = [None if off is None else (seq - d.origin - 1) % MOD
                    for seq, off in zip(recv["seq"], offs, strict=True)]
        for i, (ln, off) in enumerate(zip(recv["len"], offs, strict=True)):
            if not ln or off is None:
                continue
            a, b = off, off + ln
            if b > d.data_end:
                d.data_end = b
            if b <= nxt:
                d.seg_class[i] = "dup"
                continue
            if a > nxt:
                j = bisect.bisect_right(held, [a, MOD * MOD]) - 1
                if j >= 0 and held[j][0] <= a and held[j][1] >= b:
                    # the receiver counts it twice: out of order, and a duplicate
                    d.seg_class[i] = "ooo-dup"
                    continue
                d.seg_class[i] = "ooo"
                if buffering:
                    _insert(held, a, b)
                continue
            d.seg_class[i] = "new"
            nxt = b
            while held and held[0][0] <= nxt:
                nxt = max(nxt, held.pop(0)[1])
    return d


def _past_resume(tr: Trace, origin: int | None) -> int | None:
    """A resumed transfer's offsets count from where it resumed (load.py)."""
    at = tr.meta.get("resumed_at")
    return (origin + at) % MOD if at and origin is not None else origin


def _insert(held: list[list[int]], a: int, b: int) -> None:
    """Add [a, b) to a sorted list of disjoint ranges, merging overlaps."""
    i = bisect.bisect_left(held, [a, a])
    if i > 0 and held[i - 1][1] >= a:
        i -= 1
        a = min(a, held[i][0])
    j = i
    while j < len(held) and held[j][0] <= b:
        b = max(b, held[j][1])
        j += 1
    held[i:j] = [[a, b]]
