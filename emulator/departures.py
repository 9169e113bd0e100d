"""What waits to leave the link, and the sending thread that lets it go.

Two pure structures under one lock (a ``threading.Condition``):

- the :class:`~emulator.queue.Bottleneck`, with a link speed: datagrams wait
  there for the link (tail drop and RED as they arrive, CoDel as they leave);
- the :class:`~emulator.schedule.ReleaseQueue`: datagrams wait there for
  their release time (delay, jitter, the end of their serialisation) and
  reordering holds.

The receiving thread adds datagrams (:meth:`Departures.enqueue` into the
bottleneck, :meth:`Departures.schedule` straight into the release queue);
the sending thread (:meth:`Departures.run`) sleeps until the earliest
release time or the bottleneck's next dequeue, serves the bottleneck, moves
what left it into the release queue ``delay + jitter`` after the end of its
serialisation, and sends what is due.  No socket call, trace line or log line
is made while holding the lock.
"""

from __future__ import annotations

import threading
import time

from emulator.events import Withdrawn, trace_arrival, trace_dequeued
from emulator.forward import Forwarder, SendCounters
from emulator.impair import Impairments
from emulator.schedule import Entry, ReleaseQueue


class Departures:
    """The bottleneck and the release queue of one link, and its sending loop."""

    def __init__(self, imp: Impairments, tracer=None, debug: bool = False):
        self.cond = threading.Condition(threading.Lock())
        self.rq = ReleaseQueue()
        self.bottleneck = imp.make_bottleneck()
        self.hold = imp.hold
        self.tracer = tracer
        self.debug = debug
        self.fwd: Forwarder | None = None  # set once the sending socket exists
        self.counters = SendCounters()  # the sending thread's
        #: datagrams the bottleneck dropped after they were judged, as the
        #: receiving and the sending thread saw them
        self.withdrawn = (Withdrawn(), Withdrawn())
        self.stopping = False

    def schedule(self, entries: list[Entry]) -> None:
        """Add entries of one read to the release queue."""
        rq = self.rq
        hold = self.hold
        with self.cond:
            wake = False
            for entry in entries:
                if rq.push(entry, hold):
                    wake = True
            if wake:
                self.cond.notify()

    def enqueue(self, judged, addr) -> None:
        """Hand the judged datagrams of one read to the bottleneck (those the
        impairer dropped only to be traced); trace what it did.

        They arrive at the time read under the lock, never earlier than a
        time the sending thread served the queue up to (it reads the clock
        under the lock too), so the queue never sees an arrival in its past."""
        bn = self.bottleneck
        arrive = bn.arrive
        tracer, debug = self.tracer, self.debug
        looking = tracer is not None or debug
        outcome = []  # (verdict, drop cause at the queue, (datagrams, bytes) found there)
        dropped = []
        with self.cond:
            now = time.monotonic()
            idle = not bn.waiting()
            for v, e in judged:
                if e is None:
                    if looking:
                        outcome.append((v, None, None))
                    continue
                cause, qp, qb = arrive(now, len(e.data), e, v.u)
                if cause is not None:
                    dropped.append(e)
                if looking:
                    outcome.append((v, cause, (qp, qb)))
            if (idle and bn.waiting()) or bn.has_output():
                self.cond.notify()  # the head of the queue, or what it let out, is new
        for e in dropped:
            self.withdrawn[0].add(e)
        for v, cause, q in outcome:
            trace_arrival(tracer, debug, v, now, addr, q, cause)

    def _release(self, served: list) -> None:
        """What left the bottleneck's queue goes to the release queue (lock held)."""
        rq = self.rq
        hold = self.hold
        for q in served:
            if q.cause is None:
                e = q.item
                e.due = q.departure + e.after
                e.sojourn = q.start - q.arrival
                rq.push(e, hold)

    def run(self) -> None:
        """The sending thread: sleep until the earliest release time (or the
        bottleneck's next dequeue), serve the bottleneck, send what is due."""
        cond = self.cond
        rq = self.rq
        bn = self.bottleneck
        c = self.counters
        monotonic = time.monotonic
        send_one = self.fwd.send
        # What left the queue needs a look outside the lock when it is traced
        # or logged, or when CoDel may have dropped some (to count them).
        post = self.tracer is not None or self.debug or (
            bn is not None and bn.aqm is not None and bn.aqm.name == "codel")
        while True:
            served = None
            with cond:
                while True:
                    if self.stopping:
                        return
                    now = monotonic()
                    if bn is not None:
                        served = bn.serve(now)
                        if served:
                            self._release(served)
                    due = rq.next_due()
                    if due is not None and due <= now:
                        batch = rq.pop_due(now)
                        break
                    if served and post:
                        batch = []
                        break
                    if bn is not None:
                        start = bn.next_start()
                        if start is not None and (due is None or start < due):
                            due = start
                    cond.wait(None if due is None else due - now)
            if served and post:
                trace_dequeued(self.tracer, self.debug, served, now, self.withdrawn[1])
            for e in batch:
                send_one(e, now, c)

    def stop(self) -> None:
        """Make :meth:`run` return (the caller joins the thread)."""
        with self.cond:
            self.stopping = True
            self.cond.notify_all()

    def unsent(self) -> int:
        """Datagrams still waiting, in either queue."""
        with self.cond:
            unsent = sum(e.count for e in self.rq.pending())
            if self.bottleneck is not None:
                unsent += sum(e.count for e in self.bottleneck.pending())
        return unsent
