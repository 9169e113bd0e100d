"""When each datagram leaves: a release queue with reordering holds.  Pure, no threads.

Entries are kept in a heap keyed by ``(release_time, sequence_number)``; the
sequence number is the order of :meth:`ReleaseQueue.push`, so datagrams due at
the same time leave in arrival order.

Reordering, exactly: a datagram selected for reordering (``held``) does not
leave at its own release time.  It leaves right after the next datagram
pushed after it that is not itself held (its *successor*) has left, but never
before its own release time; if that has not happened ``hold`` seconds after
its own release time, it leaves then anyway (a *timeout*: nothing overtook
it).  Several consecutive held datagrams all follow the same successor, in
their own order.  Dropped datagrams are never pushed, so they are never
successors.
"""

from __future__ import annotations

import heapq


class Entry:
    """One datagram waiting to leave, or a batch of them that leave together.

    A batch (``size`` > 0) is ``count`` datagrams of ``size`` bytes back to
    back in ``data`` (the last may be shorter), the first numbered ``n``:
    datagrams of one read, in order, forwarded untouched at the same release
    time (those dropped between them left out), sent by one GSO call.  A
    batch is never duplicated or held.
    """

    __slots__ = ("n", "data", "copies", "arrival", "due", "held", "sent", "followers", "freed",
                 "size", "count", "after", "addr", "sojourn", "bits")

    def __init__(self, n: int, data, copies: int, arrival: float, due: float, held: bool,
                 size: int = 0, after: float = 0.0, addr: tuple[str, int] | None = None,
                 bits: int = 0):
        self.n = n  #: index of the (first) datagram among those received
        self.data = data  #: the bytes to send
        self.size = size  #: 0: data is one datagram; else the size of each in the batch
        self.count = -(-len(data) // size) if size else 1  #: datagrams in it
        self.copies = copies  #: 1, or 2 for a duplicated datagram
        self.arrival = arrival  #: when it was received
        self.due = due  #: its own release time (before any reordering hold)
        self.held = held  #: selected for reordering
        self.sent = False
        self.followers: list[Entry] | None = None  #: held entries that leave right after this
        self.freed = False  #: held, and its successor has left (not a timeout)
        self.after = after  #: delay + jitter after the bottleneck (``due`` is set there)
        self.addr = addr  #: where to send it; None: the sending socket's peer
        self.sojourn: float | None = None  #: its wait in the bottleneck's queue, seconds
        self.bits = bits  #: bits flipped in it (corrupted when > 0)

    def __repr__(self) -> str:
        return f"Entry(n={self.n}, due={self.due!r}, held={self.held}, sent={self.sent})"


class ReleaseQueue:
    """Release times of the datagrams in flight; one owner, or a lock around it."""

    __slots__ = ("_heap", "_seq", "_waiting", "timeouts")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Entry]] = []
        self._seq = 0
        self._waiting: list[Entry] = []  # held entries that have no successor yet
        self.timeouts = 0  #: held entries that left by their timeout

    def pending(self) -> list[Entry]:
        """Entries not sent yet, each once, in no particular order (a batch is one)."""
        seen: dict[int, Entry] = {}
        for _, _, e in self._heap:
            if not e.sent:
                seen[id(e)] = e
        return list(seen.values())

    def _put(self, t: float, e: Entry) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (t, self._seq, e))

    def push(self, e: Entry, hold: float = 0.0) -> bool:
        """Add a datagram; True when it became the earliest one (a waiting sender must wake)."""
        if e.held:
            self._put(e.due + hold, e)
            waiting = self._waiting
            if len(waiting) >= 64 and waiting[0].sent:
                self._waiting = waiting = [w for w in waiting if not w.sent]
            waiting.append(e)
        else:
            if self._waiting:
                e.followers = self._waiting
                self._waiting = []
            self._put(e.due, e)
        return self._heap[0][2] is e

    def next_due(self) -> float | None:
        """Time the earliest unsent entry is due, or None when there is none."""
        heap = self._heap
        while heap and heap[0][2].sent:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def pop_due(self, now: float) -> list[Entry]:
        """Entries to send at ``now``, in the order to send them; marks them sent."""
        heap = self._heap
        out: list[Entry] = []
        while heap and heap[0][0] <= now:
            e = heapq.heappop(heap)[2]
            if e.sent:
                continue
            e.sent = True
            if e.held and not e.freed:
                self.timeouts += 1
            out.append(e)
            if e.followers:
                for f in e.followers:
                    if f.sent:
                        continue
                    f.freed = True
                    if f.due <= now:
                        f.sent = True
                        out.append(f)
                    else:
                        # Overtaken already; it still may not leave before its own time.
                        self._put(f.due, f)
                e.followers = None
        return out
