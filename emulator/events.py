"""What the link tells about each datagram: trace events and debug lines.

The trace (:mod:`runtime.trace`) gets, per datagram: ``recv`` as it arrives
(with ``qp`` and ``qb``, the datagrams and bytes in the bottleneck's queue as
it got there, when there is a bottleneck); ``drop`` with the cause if it is
dropped; ``corrupt`` and ``reorder`` when its bits are flipped or it is held
back; ``fwd`` when it leaves (:mod:`emulator.forward`).  A datagram that
waits in the bottleneck's queue gets its ``corrupt`` and ``reorder`` events as
it leaves the queue, since the queue may still drop it (CoDel), and a CoDel
drop carries the datagram's ``sojourn`` time.
"""

from __future__ import annotations

from loguru import logger

from emulator.impair import Verdict
from emulator.schedule import Entry


class Withdrawn:
    """Datagrams judged forwarded that the bottleneck then dropped: their
    corruption and reordering never happened (one per thread, merged at the end)."""

    __slots__ = ("corrupted", "bits", "reordered")

    def __init__(self) -> None:
        self.corrupted = self.bits = self.reordered = 0

    def add(self, e: Entry) -> None:
        if e.bits:
            self.corrupted += 1
            self.bits += e.bits
        if e.held:
            self.reordered += 1


def trace_arrival(tracer, debug: bool, v: Verdict | None, now: float, addr, q=None,
                  cause: str | None = None) -> None:
    """One datagram's arrival and verdict; ``q`` is (datagrams, bytes) in the
    bottleneck as it arrived there, ``cause`` its drop there."""
    if v is None:  # a batched run: nothing is traced or logged then
        return
    why = v.drop or cause
    if tracer is not None:
        if q is None:
            tracer.emit(now, "recv", n=v.n, len=v.nbytes)
        else:
            tracer.emit(now, "recv", n=v.n, len=v.nbytes, qp=q[0], qb=q[1])
        if why is not None:
            tracer.emit(now, "drop", n=v.n, why=why, len=v.nbytes)
        elif q is None:
            if v.flips:
                tracer.emit(now, "corrupt", n=v.n, bits=len(v.flips))
            if v.reorder:
                tracer.emit(now, "reorder", n=v.n)
    if debug:
        if why is not None:
            logger.debug("#{} {} bytes from {}: dropped ({})", v.n, v.nbytes, addr, why)
            return
        logger.debug(
            "#{} {} bytes from {}: {}{}{}{}", v.n, v.nbytes, addr,
            f"queued behind {q[0]} datagrams ({q[1]} bytes)" if q is not None
            else f"release in {v.release - now:.6f}s",
            f", {len(v.flips)} bits flipped" if v.flips else "",
            ", duplicated" if v.dup else "",
            ", held for reordering" if v.reorder else "",
        )


def trace_dequeued(tracer, debug: bool, served: list, now: float, withdrawn: Withdrawn) -> None:
    """What left the bottleneck's queue (:class:`~emulator.queue.Queued`, each
    holding its entry): CoDel's drops, counted in ``withdrawn`` and traced with
    their sojourn time, and the corruption and reordering of the others."""
    for q in served:
        e = q.item
        if q.cause is not None:
            withdrawn.add(e)
            if tracer is not None:
                tracer.emit(now, "drop", n=e.n, why=q.cause, len=len(e.data),
                            sojourn=round(q.sojourn, 6))
            if debug:
                logger.debug("#{} dropped by {} after {:.6f}s in the queue", e.n, q.cause,
                             q.sojourn)
        elif tracer is not None:
            if e.bits:
                tracer.emit(now, "corrupt", n=e.n, bits=e.bits)
            if e.held:
                tracer.emit(now, "reorder", n=e.n)
