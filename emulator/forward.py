"""The sending side of the link: entries out of the sending socket, counted and traced.

A batch entry (several datagrams of one size back to back) leaves by one GSO
send (:mod:`runtime.udpgso`), or one datagram at a time where the kernel
refuses GSO; every other entry by one ``send`` (``sendto`` when it names its
own address: forwarding by port), twice for a duplicated one.
"""

from __future__ import annotations

import socket

from loguru import logger

from emulator.schedule import Entry
from runtime.udpgso import GSO_REFUSED, gso_cmsg


class SendCounters:
    """What a sending thread actually did; each thread has its own, merged at the end."""

    __slots__ = (
        "forwarded",
        "bytes_forwarded",
        "duplicated",
        "send_errors",
        "dup_send_errors",
        "delayed",
        "delay_sum",
        "delay_max",
        "batched_out",
        "last_error",
    )

    def __init__(self) -> None:
        self.forwarded = 0  # originals sent
        self.bytes_forwarded = 0  # bytes sent, duplicates included
        self.duplicated = 0  # second copies sent
        self.send_errors = 0  # originals that could not be sent
        self.dup_send_errors = 0  # second copies that could not be sent
        self.delayed = 0  # originals that left later than they arrived (scheduled ones)
        self.delay_sum = 0.0  # total time originals were held
        self.delay_max = 0.0
        self.batched_out = 0  # originals that left several to a system call (GSO)
        self.last_error: str | None = None


class Forwarder:
    """Sends entries from one socket; shared by the threads that send (each
    with its own :class:`SendCounters`)."""

    def __init__(self, ssock: socket.socket, tracer=None, debug: bool = False):
        self.ssock = ssock
        self.tracer = tracer
        self.debug = debug
        self.gso = True  # batches leave by one GSO send (until the kernel refuses)

    def batch(self, data, size: int, count: int, c: SendCounters) -> int:
        """Send ``count`` datagrams of ``size`` bytes (the last may be shorter),
        back to back in ``data``: by one GSO send, or one by one where that is
        refused.  Returns how many were sent; counts the bytes and errors."""
        if self.gso:
            try:
                c.bytes_forwarded += self.ssock.sendmsg([data], gso_cmsg(size))
                c.batched_out += count
                return count
            except OSError as exc:
                if exc.errno not in GSO_REFUSED:
                    c.last_error = str(exc)
                    return 0
                self.gso = False
                logger.info("UDP GSO refused ({}); forwarding datagrams one by one", exc)
        send = self.ssock.send
        sent = 0
        for at in range(0, len(data), size):
            try:
                c.bytes_forwarded += send(data[at:at + size])
                sent += 1
            except OSError as exc:
                c.last_error = str(exc)
        return sent

    def _send_batch(self, e: Entry, now: float, c: SendCounters) -> None:
        held_for = now - e.arrival
        count = e.count
        sent = self.batch(e.data, e.size, count, c)
        c.send_errors += count - sent
        c.forwarded += sent
        if e.due > e.arrival:
            c.delayed += sent
        c.delay_sum += held_for * sent
        if sent and held_for > c.delay_max:
            c.delay_max = held_for

    def send(self, e: Entry, now: float, c: SendCounters) -> None:
        """Send one entry at ``now`` (and its copy), counting and tracing it."""
        if e.size:
            self._send_batch(e, now, c)
            return
        tracer = self.tracer
        held_for = now - e.arrival
        data, addr = e.data, e.addr
        try:
            c.bytes_forwarded += self.ssock.send(data) if addr is None else \
                self.ssock.sendto(data, addr)
        except OSError as exc:
            c.send_errors += 1
            c.last_error = str(exc)
            if self.debug:
                logger.debug("#{} not sent: {}", e.n, exc)
            if tracer is not None:
                tracer.emit(now, "drop", n=e.n, why="send_error", len=len(e.data))
            return
        c.forwarded += 1
        if e.due > e.arrival:
            c.delayed += 1
        c.delay_sum += held_for
        if held_for > c.delay_max:
            c.delay_max = held_for
        if tracer is not None:
            self._trace(now, "fwd", e, held_for)
        if e.copies > 1:
            try:
                c.bytes_forwarded += self.ssock.send(data) if addr is None else \
                    self.ssock.sendto(data, addr)
            except OSError as exc:
                c.dup_send_errors += 1
                c.last_error = str(exc)
                return
            c.duplicated += 1
            if tracer is not None:  # the second copy, when it has actually been sent
                self._trace(now, "dup", e, held_for)

    def _trace(self, now: float, ev: str, e: Entry, held_for: float) -> None:
        fields = {"n": e.n, "len": len(e.data), "delay": round(held_for, 6)}
        if e.sojourn is not None:
            fields["sojourn"] = round(e.sojourn, 6)
        if e.addr is not None:
            fields["port"] = e.addr[1]
        self.tracer.emit(now, ev, **fields)
