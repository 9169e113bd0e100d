"""The receiver's out-of-order store: what arrived past a hole, and which
SACK blocks say so.

It owns the bytes held out of order (pieces by offset, never overlapping:
a byte is stored once however often it comes), the ranges they cover (a
:class:`common.ranges.RangeSet`, whose ranges are the SACK blocks), and the
order in which blocks last changed (RFC 2018 §4 reports the newest first).
It decides nothing about windows or ACKs: :mod:`common.receiver_core` does.
"""

from __future__ import annotations

import bisect

from .ranges import RangeSet
from .seq import wrap

#: RFC 2018: an ACK carries at most four SACK blocks (three beside a D-SACK);
#: the store remembers the blocks of the newest eight arrivals.
RECENT = 8


class Reassembly:
    """Data held past ``rcv_nxt``, for delivery once the holes fill."""

    __slots__ = ("pieces", "_keys", "held", "_recent", "fresh")

    def __init__(self):
        self.pieces: dict[int, bytes] = {}  # by offset
        self._keys: list[int] = []  # the pieces' offsets, sorted
        self.held = RangeSet()  # what the pieces cover: the SACK blocks
        self._recent: list[int] = []  # latest arrival in each block, newest first
        self.fresh = 0  # how many of _recent's blocks changed since the last ACK

    @property
    def bytes(self) -> int:
        """Bytes held."""
        return self.held.covered

    def __bool__(self) -> bool:
        return bool(self.pieces)

    def store(self, off: int, data: bytes) -> bool:
        """Keep ``data`` (at stream offset ``off``): only its bytes not held
        already, so that overlapping segments never count (or take memory)
        twice.  False when every byte of it was held: a duplicate."""
        fresh = self.held.add(off, off + len(data))
        if fresh:
            pieces = self.pieces
            keys = self._keys
            for left, right in fresh:
                pieces[left] = data[left - off:right - off]
                bisect.insort(keys, left)
        self._note_recent(off)
        return bool(fresh)

    def _note_recent(self, off: int) -> None:
        """``off`` arrived (it is held): its block goes first among the
        blocks of recent arrivals.  One entry per block, so that a burst into
        one block (a run, or its pieces one by one: the same) never pushes
        out the other blocks that arrivals just changed, and every block an
        arrival changed is reported while it is among the newest eight
        (RFC 2018 §4: as many distinct blocks as fit, the most recent)."""
        left, right = self.held.span(off) or (off, off + 1)
        old = self._recent
        recent = [r for r in old if not left <= r < right]
        fresh = 1 + sum(1 for r in old[:self.fresh] if not left <= r < right)
        recent.insert(0, off)
        del recent[RECENT:]
        self._recent = recent
        self.fresh = min(fresh, RECENT)

    def pull(self, rcv_nxt: int) -> list:
        """The held data that now follows on from ``rcv_nxt``, in order, each
        piece trimmed to start there; it leaves the store."""
        keys = self._keys
        pieces = self.pieces
        out = []
        while keys and keys[0] <= rcv_nxt:
            k = keys.pop(0)
            data = pieces.pop(k)
            end = k + len(data)
            if end > rcv_nxt:
                out.append(data[rcv_nxt - k:] if k < rcv_nxt else data)
                rcv_nxt = end
        self.held.drop_below(rcv_nxt)
        return out

    def sack_blocks(self, base: int) -> tuple[tuple[int, int], ...]:
        """RFC 2018 §4, as wire numbers (``base`` is the wire number of
        offset 0): the block holding the latest arrival first, then the
        blocks of earlier arrivals, most recent first; at most four."""
        held = self.held
        chosen: list[tuple[int, int]] = []
        for off in self._recent:
            block = held.span(off)
            if block is not None and block not in chosen:
                chosen.append(block)
                if len(chosen) == 4:
                    break
        if len(chosen) < 4:
            for block in reversed(held):
                if block not in chosen:
                    chosen.append(block)
                    if len(chosen) == 4:
                        break
        return tuple((wrap(lo, base), wrap(hi, base)) for lo, hi in chosen)
