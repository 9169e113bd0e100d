"""What the sending and the receiving program share around their cores.

Both programs hold one core under one lock, with a ``done`` condition the
main thread waits on, worker threads that must end the run loudly if they
crash, and core events (state changes, timers, RTT) that are logged and
traced after the lock is released.  This class holds that much; the
programs start their own threads and do their own I/O.
"""

from __future__ import annotations

import threading
import time
from collections import deque

from loguru import logger

from . import threadtrace
from .waiting import waiting_line


class EndpointBase:
    """Subclasses set ``core`` and ``tracer`` and implement ``put_on_wire``.

    Threads read the core only under ``lock``, or through a copy its
    ``view()`` returns (taken under the lock)."""

    core: object
    tracer: object | None

    def __init__(self, lock_name: str = "core lock"):
        # Through the thread-trace factory: plain threading objects unless
        # --thread-trace asked for recording ones (runtime/threadtrace.py);
        # a program with several cores (a server) names each one's lock.
        self.lock = threadtrace.lock(lock_name)
        self.done = threadtrace.condition(self.lock, "done")
        self.failure: BaseException | None = None
        # Batches take_outbox took, in the core's order; several threads
        # send them, and the wire (and the pcap) must see them in that order.
        self._wire: deque[list] = deque()
        self._wire_lock = threadtrace.lock("wire lock")

    def send_control(self, segments: list, view=None) -> None:
        """Outside the lock: send what take_outbox took (``segments``) and
        every batch taken before it, in the order the core queued them.
        Another thread's call may already have sent ``segments``: the
        batches go out in one order whichever thread sends them, so that
        sequence numbers never go backwards on the wire (a FIN after the
        ACK before it).  ``view`` is the core's ``view()``, for the trace."""
        wire = self._wire
        with self._wire_lock:
            while wire:
                self.put_on_wire(wire.popleft(), view)

    def put_on_wire(self, segments: list, view=None) -> None:
        """Send ``segments`` now, and record them (pcap, trace, log)."""
        raise NotImplementedError

    def wake_all(self) -> None:
        """Under the lock: wake every thread that waits on a condition."""
        self.done.notify_all()

    def guard(self, target):
        """Wrap a worker so that a crash ends the run with an RST and the error."""
        def run():
            try:
                target()
            except BaseException as exc:
                logger.exception("{} thread failed", threading.current_thread().name)
                with self.lock:
                    if self.failure is None:
                        self.failure = exc
                    self.core.abort(time.monotonic(), f"internal error: {exc!r}")
                    out = self.take_outbox()
                    view = self.core.view()
                    self.wake_all()
                self.send_control(out, view)
        return run

    def wait_finished(self) -> None:
        """Main thread: until the core is done or a worker failed."""
        with self.lock:
            while not self.core.finished and self.failure is None:
                self.done.wait()

    def interrupt(self, why: str) -> None:
        """Abort from the main thread (a signal): RST to the peer, now."""
        with self.lock:
            self.core.abort(time.monotonic(), why)
            out = self.take_outbox()
            view = self.core.view()
            self.wake_all()
        self.send_control(out, view)

    def take_outbox(self) -> list:
        """Under the lock: the segments the core queued."""
        out = self.core.outbox
        if out:
            self.core.outbox = []
            self._wire.append(out)  # (under the lock: the core's order)
        return out

    def take_events(self) -> list:
        """Under the lock: the core's events, written once it is released."""
        events = self.core.events
        if events:
            self.core.events = []
        return events

    def emit(self, events) -> None:
        for t, ev, fields in events:
            if ev == "state":
                logger.info("state {} -> {}", fields["old"], fields["new"])
            elif ev == "waiting":
                logger.info(waiting_line(fields))
            elif ev == "timeout":
                logger.debug("timeout: {} segments resent, RTO now {:.3f} s", fields["n"],
                             fields["rto"])
            if self.tracer is not None:
                self.tracer.emit(t, ev, **fields)
