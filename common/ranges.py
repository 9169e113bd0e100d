"""A set of stream offsets kept as sorted, disjoint half-open ranges.

Both ends keep one: the receiver, of the bytes it holds out of order (and so
of the SACK blocks it reports); the sender, of the bytes the peer's SACK
blocks reported (its scoreboard, RFC 6675).  Ranges that touch are merged:
[0, 5) and [5, 9) are held as [0, 9), so a range is also a SACK block.

Offsets are plain integers (stream offsets, never wrapped 32-bit numbers).
The ranges sit in one Python list of ``[left, right]`` pairs, searched with
``bisect``: a transfer holds a handful of ranges at a time, and a list is
the cheapest thing to walk and cut at the left.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator

_INF = float("inf")


class RangeSet:
    """Sorted disjoint ``[left, right)`` ranges; ``covered`` is their total size."""

    __slots__ = ("_ranges", "covered")

    def __init__(self):
        self._ranges: list[list[int]] = []
        self.covered = 0

    def __len__(self) -> int:
        return len(self._ranges)

    def __bool__(self) -> bool:
        return bool(self._ranges)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        """The ranges in ascending order, as (left, right)."""
        return ((left, right) for left, right in self._ranges)

    def __reversed__(self) -> Iterator[tuple[int, int]]:
        """The ranges, highest first."""
        return ((left, right) for left, right in reversed(self._ranges))

    def __contains__(self, x: int) -> bool:
        return self.span(x) is not None

    def __repr__(self) -> str:
        return f"RangeSet({[tuple(r) for r in self._ranges]})"

    @property
    def end(self) -> int | None:
        """The right edge of the highest range, or None when empty."""
        return self._ranges[-1][1] if self._ranges else None

    def span(self, x: int) -> tuple[int, int] | None:
        """The range that holds offset ``x``, or None."""
        ranges = self._ranges
        i = bisect.bisect_right(ranges, [x, _INF]) - 1
        if i >= 0 and ranges[i][1] > x:
            left, right = ranges[i]
            return left, right
        return None

    def overlaps(self, left: int, right: int) -> bool:
        """Whether any offset of ``[left, right)`` is in the set."""
        if right <= left:
            return False
        ranges = self._ranges
        i = bisect.bisect_right(ranges, [left, _INF])
        if i and ranges[i - 1][1] > left:
            return True
        return i < len(ranges) and ranges[i][0] < right

    def add(self, left: int, right: int) -> list[tuple[int, int]]:
        """Add ``[left, right)``; returns the pieces of it that were not in the
        set before, in ascending order (empty if it held them all already)."""
        if right <= left:
            return []
        ranges = self._ranges
        i = bisect.bisect_left(ranges, [left, left])
        if i and ranges[i - 1][1] >= left:
            i -= 1
        j = i
        n = len(ranges)
        new_left, new_right = left, right
        pos = left
        fresh = []
        while j < n and ranges[j][0] <= right:
            lo, hi = ranges[j]
            if lo > pos:
                fresh.append((pos, lo))
            if hi > pos:
                pos = hi
            if lo < new_left:
                new_left = lo
            if hi > new_right:
                new_right = hi
            j += 1
        if pos < right:
            fresh.append((pos, right))
        if fresh:  # (else [left, right) lies inside one range: nothing changes)
            ranges[i:j] = [[new_left, new_right]]
            for lo, hi in fresh:
                self.covered += hi - lo
        return fresh

    def drop_below(self, off: int) -> int:
        """Forget every offset below ``off``; returns how many were held."""
        ranges = self._ranges
        dropped = 0
        k = 0
        n = len(ranges)
        while k < n and ranges[k][1] <= off:
            dropped += ranges[k][1] - ranges[k][0]
            k += 1
        if k:
            del ranges[:k]
        if ranges and ranges[0][0] < off:
            dropped += off - ranges[0][0]
            ranges[0][0] = off
        self.covered -= dropped
        return dropped
