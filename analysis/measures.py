"""The figures of a run, each defined once (docs/MEASURES.md says the same).

Every number the summary, the PNG plots and the HTML report print about a
transfer comes from here, so that they cannot disagree:

* **time zero**: the sender's first SYN, i.e. its ``CLOSED -> SYN_SENT``
  state event, written when the core issues the SYN (the trace's ``meta``
  line carries the same time).  The sender's own summary starts its clock
  there too.  Traces without that event fall back on the first SYN ``send``.
* **transfer time**: from time zero to the FIN acknowledged, the sender's
  ``-> FIN_WAIT_2`` state event (or, without it, the first ACK that covers
  the FIN), on the sender's clock.
* **goodput**: file bytes (the ``meta`` line's ``file_size`` once the FIN is
  acknowledged, else the bytes acknowledged so far) / transfer time.
* **duplicate ACK**: the sender's rule (``common/sender_core.py``,
  RFC 5681 section 2): an ACK that acknowledges nothing new, carries no data
  and no FIN, arrives while data is outstanding, advertises the same window
  as the ACK before it, and leaves a non-zero window.
* **retransmissions by cause**: ``send`` events with a ``rexmit`` tag,
  counted per tag as the sender wrote it (fast, sack, rack, tlp, timeout,
  probe: whichever are present); **timer expiries** are ``timeout`` events.

All processes of a run write ``time.monotonic()`` of the same machine, so
the receiver's and the emulators' events are placed on the sender's time
axis by subtracting the same time zero.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from .derive import HALF, MOD, flags_of, state_time, syn_time, unwrap
from .load import Trace

#: The state event that ends the transfer, as the sender names it.
FIN_ACKED_STATE = "FIN_WAIT_2"


@dataclass
class Transfer:
    """The sender's transfer: start and end on its clock, and the bytes."""

    start: float | None
    end: float | None
    bytes: int
    file_size: int | None

    @property
    def seconds(self) -> float | None:
        if self.start is None or self.end is None:
            return None
        return self.end - self.start

    @property
    def goodput_bps(self) -> float | None:
        """Bits per second, or None when the transfer did not finish."""
        s = self.seconds
        return self.bytes * 8 / s if s and s > 0 else None


def _fin_acked_time(tr: Trace, ack_t, ack_off) -> float | None:
    t = state_time(tr, FIN_ACKED_STATE)
    if t is not None:
        return t
    send = tr["send"]
    fin_end = next((off + 1 for off, fl in zip(send["off"], send["flags"], strict=True)
                    if off is not None and "F" in flags_of(fl)), None)
    if fin_end is None:
        return None
    return next((t for t, o in zip(ack_t, ack_off, strict=True) if o >= fin_end), None)


def transfer(tr: Trace, ack_t, ack_off, data_end: int) -> Transfer:
    """The transfer of a sender trace; ``ack_t``/``ack_off`` are its
    cumulative ACK series in stream offsets (derive.Derived)."""
    size = tr.meta.get("file_size")
    size = size if isinstance(size, int) and not isinstance(size, bool) else None
    end = _fin_acked_time(tr, ack_t, ack_off)
    acked = max(ack_off, default=0)
    cap = size if size is not None else data_end
    nbytes = max(0, min(acked, cap))
    if end is not None and size is not None:
        nbytes = size
    return Transfer(syn_time(tr), end, nbytes, size)


def sender_dupacks(tr: Trace, isn: int | None) -> int | None:
    """Duplicate ACKs by the sender's rule, replayed from the trace."""
    if isn is None:
        return None
    send, recv = tr["send"], tr["recv"]
    sends = [(t, 0, off + (ln or 0) + (1 if "F" in flags_of(fl) else 0))
             for t, off, ln, fl in zip(send.t, send["off"], send["len"], send["flags"],
                                       strict=True)
             if off is not None and (ln or "F" in flags_of(fl))]
    acks = [(t, 1, i) for i, t in enumerate(recv.t)]
    nxt = una = 0
    right = 0
    last_win = None
    prev = None
    count = 0
    cols = recv["ack"], recv["flags"], recv["len"], recv["win"]
    for _t, kind, v in sorted(sends + acks):
        if kind == 0:
            nxt = max(nxt, v)
            continue
        ack, fl, ln, win = (c[v] for c in cols)
        fl = flags_of(fl)
        if ack is None or "A" not in fl or "S" in fl or "R" in fl:
            continue
        off = unwrap(prev, (ack - isn - 1) % MOD)
        if prev is None and off >= HALF:
            off -= MOD
        prev = off
        if off > nxt or off < una - (1 << 30) or off < una:
            continue
        win = win or 0
        changed = win != last_win
        last_win = win
        right = max(right, off + win)
        if off > una:
            una = off
        elif not ln and "F" not in fl and nxt > una and not changed and right > una:
            count += 1
    return count


def rexmit_causes(tr: Trace) -> dict[str, int]:
    """Retransmitted segments per cause tag, as the sender tagged them."""
    return dict(sorted(Counter(r for r in tr["send"]["rexmit"] if r).items()))


def counters(tr: Trace) -> dict:
    """The process's own final counters (its trace's ``summary`` line)."""
    return tr.counters or {}
