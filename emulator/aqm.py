"""Active queue management for the bottleneck: RED and CoDel.  Sans-I/O.

Both disciplines are told the time by their caller (``now``, seconds, on
whatever clock the caller keeps: the link's monotonic clock, or a test's
fake one); neither reads a clock, sleeps, or draws a random number of its own.

:class:`Red` decides as a datagram arrives, from an average of the queue
length in packets; :class:`CoDel` decides as a datagram leaves the queue for
the link, from the time it waited there.  :class:`~emulator.queue.Bottleneck`
calls them.
"""

from __future__ import annotations

import math
from typing import Protocol

#: RED defaults: thresholds in packets, max_p as Floyd's later advice (0.1),
#: max_th = 3 * min_th, the averaging weight of the 1993 paper (0.002), and
#: the average packet size that times an idle queue's decay (as tc-red's avpkt).
RED_MIN_TH = 5.0
RED_MAX_TH = 15.0
RED_MAX_P = 0.1
RED_W_Q = 0.002
RED_AVPKT = 1000

#: CoDel defaults, RFC 8289 section 4.
CODEL_TARGET = 0.005
CODEL_INTERVAL = 0.100


class Red:
    """Random Early Detection (Floyd and Jacobson, 1993), counting packets.

    On every arrival the average queue length is updated:
    ``avg = (1 - w_q) * avg + w_q * q`` when the queue holds ``q > 0``
    packets, and ``avg = (1 - w_q) ** m * avg`` when it is empty, ``m`` being
    the number of typical packets (``idle_tx`` seconds each) the link could
    have sent since the queue went empty, as if that many had arrived to an
    empty queue.  Then, with ``count`` the packets since the last drop:

    - ``avg < min_th``: keep, ``count = -1``;
    - ``avg >= max_th``: drop, ``count = 0``;
    - otherwise ``count += 1``, ``p_b = max_p (avg - min_th) / (max_th - min_th)``,
      ``p_a = p_b / (1 - count p_b)``; drop when the uniform draw ``u < p_a``
      (``count = 0``).  This spreads the drops: the packets between two drops
      are uniform on ``1 .. 1/p_b`` rather than geometric.
    """

    name = "red"
    __slots__ = ("min_th", "max_th", "max_p", "w_q", "idle_tx", "avg", "count")

    def __init__(self, min_th: float = RED_MIN_TH, max_th: float = RED_MAX_TH,
                 max_p: float = RED_MAX_P, w_q: float = RED_W_Q, idle_tx: float = 0.0):
        if not 0.0 <= min_th < max_th or not math.isfinite(max_th):
            raise ValueError(f"RED needs 0 <= min_th < max_th, got {min_th!r}, {max_th!r}")
        if not 0.0 < max_p <= 1.0:
            raise ValueError(f"RED max_p must be in (0, 1], got {max_p!r}")
        if not 0.0 < w_q <= 1.0:
            raise ValueError(f"RED w_q must be in (0, 1], got {w_q!r}")
        if not (idle_tx >= 0.0 and math.isfinite(idle_tx)):
            raise ValueError(f"RED idle_tx must be a finite number >= 0, got {idle_tx!r}")
        self.min_th = float(min_th)
        self.max_th = float(max_th)
        self.max_p = float(max_p)
        self.w_q = float(w_q)
        self.idle_tx = float(idle_tx)  #: seconds the link takes for a typical packet
        self.avg = 0.0  #: the average queue length, packets
        self.count = -1  #: packets since the last drop (-1: below min_th)

    def update_average(self, now: float, qlen: int, idle_since: float) -> float:
        """The new average for an arrival that finds ``qlen`` packets; the
        queue has been empty since ``idle_since`` when ``qlen`` is 0."""
        w = self.w_q
        if qlen > 0:
            self.avg = (1.0 - w) * self.avg + w * qlen
        elif self.avg:
            idle = now - idle_since
            if idle > 0.0:
                m = idle / self.idle_tx if self.idle_tx > 0.0 else math.inf
                self.avg *= (1.0 - w) ** m
            else:
                self.avg *= 1.0 - w
        return self.avg

    def on_arrival(self, now: float, qlen: int, idle_since: float, u: float) -> bool:
        """True when the arriving packet is to be dropped; ``u`` is uniform in [0, 1)."""
        avg = self.update_average(now, qlen, idle_since)
        if avg < self.min_th:
            self.count = -1
            return False
        if avg >= self.max_th:
            self.count = 0
            return True
        self.count += 1
        p_b = self.max_p * (avg - self.min_th) / (self.max_th - self.min_th)
        room = 1.0 - self.count * p_b
        if room <= 0.0 or u * room < p_b:  # u < p_b / room, and p_a >= 1 when room <= 0
            self.count = 0
            return True
        return False


class CoDelQueue(Protocol):
    """What CoDel needs of the queue it manages."""

    maxpacket: int  #: the largest packet seen, bytes (RFC 8289's MAXPACKET)

    def pop(self, now: float):
        """Remove and return the head if it had arrived by ``now``, else None.
        The returned object has ``arrival`` (seconds)."""

    def bytes_at(self, now: float) -> int:
        """Bytes still waiting at ``now`` (after a pop)."""


class CoDel:
    """CoDel, Controlled Delay (RFC 8289 section 5), deciding at dequeue.

    :meth:`dequeue` is the RFC's ``dequeue()``: it pops packets from the queue
    at ``now`` and returns the one to send (or None) and those it dropped.  A
    packet's sojourn time is ``now - arrival``.  ``ok_to_drop`` (the RFC's
    ``dodequeue``) holds once the sojourn time has been at or above ``target``
    for ``interval``, with more than one MAXPACKET still queued.  In the
    dropping state the next drop is due at ``drop_next``, advanced by the
    control law ``interval / sqrt(count)``; the state is left as soon as a
    dequeued packet is not ``ok_to_drop``.  On re-entry ``count`` starts from
    the drops of the last episode (``count - lastcount``) if that was more
    than one and the last drop was due less than 16 intervals ago, else 1.
    """

    name = "codel"
    __slots__ = ("target", "interval", "first_above_time", "drop_next", "count", "lastcount",
                 "dropping")

    def __init__(self, target: float = CODEL_TARGET, interval: float = CODEL_INTERVAL):
        if not (0.0 < target < interval and math.isfinite(interval)):
            raise ValueError(f"CoDel needs 0 < target < interval, got {target!r}, {interval!r}")
        self.target = float(target)
        self.interval = float(interval)
        self.first_above_time: float | None = None  # the RFC's 0: not above target
        self.drop_next = 0.0
        self.count = 0
        self.lastcount = 0
        self.dropping = False

    def control_law(self, t: float) -> float:
        return t + self.interval / math.sqrt(self.count)

    def _dodequeue(self, now: float, queue: CoDelQueue):
        """Pop the head; (packet or None, ok_to_drop)."""
        p = queue.pop(now)
        if p is None:  # an empty queue cannot be above target
            self.first_above_time = None
            return None, False
        sojourn = now - p.arrival
        if sojourn < self.target or queue.bytes_at(now) <= queue.maxpacket:
            self.first_above_time = None  # went below: stay below for an interval at least
            return p, False
        if self.first_above_time is None:
            self.first_above_time = now + self.interval
            return p, False
        return p, now >= self.first_above_time

    def dequeue(self, now: float, queue: CoDelQueue) -> tuple[object | None, list]:
        """The packet to send at ``now`` (None: the queue emptied) and the packets dropped."""
        dropped: list = []
        p, ok_to_drop = self._dodequeue(now, queue)
        if self.dropping:
            if not ok_to_drop:
                self.dropping = False  # sojourn time below target: leave the dropping state
            while self.dropping and now >= self.drop_next:
                dropped.append(p)
                self.count += 1
                p, ok_to_drop = self._dodequeue(now, queue)
                if not ok_to_drop:
                    self.dropping = False
                else:
                    self.drop_next = self.control_law(self.drop_next)
        elif ok_to_drop:
            dropped.append(p)
            p, _ = self._dodequeue(now, queue)
            self.dropping = True
            delta = self.count - self.lastcount
            self.count = 1
            if delta > 1 and now - self.drop_next < 16 * self.interval:
                self.count = delta
            self.drop_next = self.control_law(now)
            self.lastcount = self.count
        return p, dropped
