"""The bottleneck: a FIFO queue in front of a link of a given speed.  Sans-I/O.

A datagram *arrives* (:meth:`Bottleneck.arrive`), waits in the queue, is
*dequeued* when the link is free and it is at the head, is serialised for
``bytes * 8 / rate`` seconds (UDP payload bytes; no header counted) and
*departs* at the end of that.  A datagram occupies the queue from its arrival
to its departure: the one being serialised counts, as in netem, where a
datagram stays in the qdisc until its time to send.

Drops, each counted and returned with its cause:

``queue``
    on arrival, the datagram does not fit: with it the queue would hold more
    than ``limit_bytes`` bytes or more than ``limit_packets`` datagrams
    (either limit may be None: no limit of that kind);
``red``
    on arrival, RED (:class:`~emulator.aqm.Red`) chose it; RED sees every
    arrival, before the limits (as Linux's red qdisc does);
``codel``
    at dequeue, CoDel (:class:`~emulator.aqm.CoDel`) chose it; a datagram
    dropped there takes no link time.

The *sojourn time* of a datagram is the time from its arrival to its dequeue
(the start of its serialisation): its wait in the queue, not counting its own
serialisation.

Time is virtual and passed in: the link is served up to ``now`` on every call
(:meth:`serve`, and :meth:`arrive` first), and a dequeue happens at its own
moment ``max(link free, arrival)``, even if the call comes later, so CoDel
sees exact sojourn times and the queue as it was at that moment.  Times
never go back: a ``now`` earlier than one already seen is taken as that one.
"""

from __future__ import annotations

import math
from collections import deque

QUEUE = "queue"
RED = "red"
CODEL = "codel"


class Queued:
    """One datagram in the bottleneck, and then what became of it."""

    __slots__ = ("item", "nbytes", "arrival", "start", "departure", "cause")

    def __init__(self, item, nbytes: int, arrival: float):
        self.item = item  #: the caller's object
        self.nbytes = nbytes
        self.arrival = arrival
        self.start: float | None = None  #: dequeued at (start of serialisation)
        self.departure: float | None = None  #: end of serialisation; None if dropped
        self.cause: str | None = None  #: "codel" when dropped at dequeue

    @property
    def sojourn(self) -> float | None:
        return None if self.start is None else self.start - self.arrival


class Bottleneck:
    """A FIFO of datagrams in front of a link of ``rate`` bits/s.  One caller
    at a time (a lock around it in a threaded program)."""

    def __init__(self, rate: float, limit_bytes: int | None = None,
                 limit_packets: int | None = None, aqm=None):
        if not (rate > 0.0 and math.isfinite(rate)):
            raise ValueError(f"rate must be a finite number > 0, got {rate!r}")
        for name, limit in (("limit_bytes", limit_bytes), ("limit_packets", limit_packets)):
            if limit is not None and limit < 1:
                raise ValueError(f"{name} must be >= 1 or None, got {limit!r}")
        self.rate = float(rate)
        self.limit_bytes = limit_bytes
        self.limit_packets = limit_packets
        self.aqm = aqm
        self._red = aqm if aqm is not None and aqm.name == RED else None
        self._codel = aqm if aqm is not None and aqm.name == CODEL else None
        self._wait: deque[Queued] = deque()
        self._wait_bytes = 0
        self.free_at = -math.inf  #: end of the serialisation in progress, or of the last one
        self._busy_bytes = 0  # the datagram being (or last) serialised
        self.clock = -math.inf  #: served up to this time
        self.maxpacket = 0  #: the largest datagram that arrived, bytes
        self._out: list[Queued] = []  # dequeued or dropped at dequeue, not collected yet
        # Counters.
        self.arrived = 0
        self.dropped: dict[str, int] = {QUEUE: 0, RED: 0, CODEL: 0}
        self.peak_packets = 0
        self.peak_bytes = 0
        self.served = 0
        self.sojourn_sum = 0.0
        self.sojourn_max = 0.0

    # ---------------------------------------------------------------- state

    def occupancy(self, now: float) -> tuple[int, int]:
        """(datagrams, bytes) in the queue at ``now``, the one being serialised included."""
        self._advance(now)
        if self.free_at > self.clock:
            return len(self._wait) + 1, self._wait_bytes + self._busy_bytes
        return len(self._wait), self._wait_bytes

    def waiting(self) -> int:
        """Datagrams waiting for the link (not the one being serialised)."""
        return len(self._wait)

    def next_start(self) -> float | None:
        """When the head of the queue will be dequeued, or None when nothing waits."""
        if not self._wait:
            return None
        head = self._wait[0].arrival
        return head if head > self.free_at else self.free_at

    def has_output(self) -> bool:
        """True when datagrams left the queue (or were dropped at dequeue)
        since the last :meth:`serve`."""
        return bool(self._out)

    def pending(self) -> list:
        """The items of datagrams still waiting, in order."""
        return [q.item for q in self._wait]

    # ------------------------------------------------------------- arrivals

    def arrive(self, now: float, nbytes: int, item, u: float = 1.0) -> tuple[str | None, int, int]:
        """A datagram of ``nbytes`` arrives at ``now``: (drop cause or None,
        datagrams and bytes the queue held as it arrived).  ``u`` is RED's
        uniform draw in [0, 1)."""
        wait = self._wait
        if now < self.clock:
            now = self.clock
        if wait and max(wait[0].arrival, self.free_at) <= now:
            self._advance(now)  # the head's turn has come: serve first
        self.clock = now
        qp, qb = len(wait), self._wait_bytes
        if self.free_at > now:  # one is being serialised
            qp += 1
            qb += self._busy_bytes
        self.arrived += 1
        if nbytes > self.maxpacket:
            self.maxpacket = nbytes
        cause = None
        red = self._red
        if red is not None and red.on_arrival(now, qp, self.free_at, u):
            cause = RED
        elif (self.limit_bytes is not None and qb + nbytes > self.limit_bytes) or (
                self.limit_packets is not None and qp + 1 > self.limit_packets):
            cause = QUEUE
        if cause is not None:
            self.dropped[cause] += 1
            return cause, qp, qb
        wait.append(Queued(item, nbytes, now))
        self._wait_bytes += nbytes
        if qp + 1 > self.peak_packets:
            self.peak_packets = qp + 1
        if qb + nbytes > self.peak_bytes:
            self.peak_bytes = qb + nbytes
        if len(wait) == 1 and self.free_at <= now:
            self._advance(now)  # an idle link takes it at once
        return None, qp, qb

    # --------------------------------------------------------------- serving

    def serve(self, now: float) -> list[Queued]:
        """Serve the link up to ``now``; returns, in order, the datagrams
        dequeued since the last call (``departure`` set) and those CoDel
        dropped (``cause`` set), each with ``start``."""
        self._advance(now)
        out = self._out
        self._out = []
        return out

    def pop(self, now: float) -> Queued | None:
        """Remove the head if it had arrived by ``now`` (CoDel's dequeue)."""
        wait = self._wait
        if not wait or wait[0].arrival > now:
            return None
        q = wait.popleft()
        self._wait_bytes -= q.nbytes
        return q

    def bytes_at(self, now: float) -> int:
        """Bytes waiting at ``now``: those that arrived later are left out."""
        total = self._wait_bytes
        for q in reversed(self._wait):
            if q.arrival <= now:
                break
            total -= q.nbytes
        return total

    def _advance(self, now: float) -> float:
        """Dequeue every datagram whose turn came by ``now``; returns ``now``
        (never earlier than the last one)."""
        if now < self.clock:
            now = self.clock
        self.clock = now
        wait = self._wait
        out = self._out
        codel = self._codel
        while wait:
            head = wait[0]
            t = head.arrival if head.arrival > self.free_at else self.free_at
            if t > now:
                break
            if codel is not None:
                q, drops = codel.dequeue(t, self)
                for d in drops:
                    d.start = t
                    d.cause = CODEL
                    out.append(d)
                self.dropped[CODEL] += len(drops)
                if q is None:
                    continue
            else:
                q = wait.popleft()
                self._wait_bytes -= q.nbytes
            q.start = t
            self.free_at = q.departure = t + q.nbytes * 8.0 / self.rate
            self._busy_bytes = q.nbytes
            sojourn = t - q.arrival
            self.served += 1
            self.sojourn_sum += sojourn
            if sojourn > self.sojourn_max:
                self.sojourn_max = sojourn
            out.append(q)
        return now

    def counters(self) -> dict:
        return {
            "limit_bytes": self.limit_bytes,
            "limit_packets": self.limit_packets,
            "aqm": self.aqm.name if self.aqm is not None else "none",
            "queue_peak_packets": self.peak_packets,
            "queue_peak_bytes": self.peak_bytes,
            "sojourn_mean": round(self.sojourn_sum / self.served, 6) if self.served else 0.0,
            "sojourn_max": round(self.sojourn_max, 6),
        }
