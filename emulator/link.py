"""The link emulator's sockets and threads around the pure decisions of :mod:`emulator.impair`.

One direction: datagrams arrive on the receiving socket, are judged in
arrival order by the receiving thread (every random decision is made there),
and leave from the sending socket, which is connected to the output address.

- With nothing that makes a datagram wait (no delay, jitter, link speed or
  reordering), the receiving thread sends each datagram itself, right away.
- Otherwise it pushes the datagram into a :class:`~emulator.schedule.ReleaseQueue`
  and a sending thread sleeps on a condition until the earliest release time.

Shutdown: :meth:`LinkEmulator.stop` sets the stop flag, shuts the receiving
socket down (which wakes a blocked ``recv``), notifies the condition, joins
both threads and closes the sockets.  Nothing here calls ``sys.exit`` or
configures logging.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from collections.abc import Callable

from loguru import logger

from emulator.impair import Impairer, Impairments, flip_bits
from emulator.schedule import Entry, ReleaseQueue

BUFSIZE = 65536
SOCKET_BUFFER = 4 * 1024 * 1024


class LinkError(Exception):
    """The link could not be set up (address, port in use...)."""


def _monotonic() -> float:
    return time.monotonic()


class _SendCounters:
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
        self.last_error: str | None = None


class LinkEmulator:
    """One direction of an impaired link between two UDP sockets."""

    def __init__(
        self,
        imp: Impairments,
        rng: random.Random,
        *,
        bind_host: str = "127.0.0.1",
        recv_port: int = 0,
        send_port: int = 0,
        out_addr: tuple[str, int] = ("127.0.0.1", 41194),
        accept_host: str | None = None,
        accept_port: int | None = None,
        tracer=None,
        debug: bool = False,
        on_fatal: Callable[[BaseException], None] | None = None,
    ):
        self.imp = imp
        self.impairer = Impairer(imp, rng)
        self.bind_host = bind_host
        self.recv_port = recv_port
        self.send_port = send_port
        self.out_addr = out_addr
        self.accept_host = accept_host
        self.accept_port = accept_port
        self.tracer = tracer
        self.debug = debug
        self.on_fatal = on_fatal
        self.rsock: socket.socket | None = None
        self.ssock: socket.socket | None = None
        self.foreign = 0
        self._stopping = False
        self._cond = threading.Condition(threading.Lock())
        self._rq = ReleaseQueue()
        self._recv_counters = _SendCounters()
        self._send_counters = _SendCounters()
        self._threads: list[threading.Thread] = []
        self._started_at: float | None = None
        self._stopped_at: float | None = None
        self.unsent_at_exit = 0
        self.fatal: BaseException | None = None

    # ----------------------------------------------------------------- setup

    def open(self) -> tuple[int, int]:
        """Bind both sockets and connect the sending one; returns (recv_port, send_port)."""
        rsock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        ssock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            for s, opt in ((rsock, socket.SO_RCVBUF), (ssock, socket.SO_SNDBUF)):
                try:
                    s.setsockopt(socket.SOL_SOCKET, opt, SOCKET_BUFFER)
                except OSError:  # pragma: no cover - capped by the kernel, never fatal
                    pass
            try:
                rsock.bind((self.bind_host, self.recv_port))
            except OSError as exc:
                raise LinkError(
                    f"cannot bind receive port {self.bind_host}:{self.recv_port}: {exc.strerror}"
                ) from exc
            try:
                ssock.bind((self.bind_host, self.send_port))
            except OSError as exc:
                raise LinkError(
                    f"cannot bind send port {self.bind_host}:{self.send_port}: {exc.strerror}"
                ) from exc
            try:
                ssock.connect(self.out_addr)
            except OSError as exc:
                raise LinkError(
                    f"cannot send to {self.out_addr[0]}:{self.out_addr[1]}: {exc.strerror}"
                ) from exc
        except BaseException:
            rsock.close()
            ssock.close()
            raise
        self.rsock, self.ssock = rsock, ssock
        self.recv_port = rsock.getsockname()[1]
        self.send_port = ssock.getsockname()[1]
        return self.recv_port, self.send_port

    def start(self) -> None:
        if self.rsock is None:
            self.open()
        self._started_at = _monotonic()
        imp = self.imp
        plain = imp.transparent and self.tracer is None and not self.debug
        target = self._loop_plain if plain else self._loop
        reader = threading.Thread(target=self._guard, args=(target,), name="link-recv")
        self._threads.append(reader)
        if imp.needs_scheduler:
            sender = threading.Thread(
                target=self._guard, args=(self._sender_loop,), name="link-send"
            )
            self._threads.append(sender)
        for t in self._threads:
            t.start()

    def _guard(self, target) -> None:
        try:
            target()
        except BaseException as exc:  # a broken thread must bring the process down cleanly
            if self._stopping:
                return
            self.fatal = exc
            logger.exception("link thread {} failed: {}", threading.current_thread().name, exc)
            if self.on_fatal is not None:
                self.on_fatal(exc)

    # --------------------------------------------------------------- running

    def _accepts(self, addr) -> bool:
        host, port = self.accept_host, self.accept_port
        return (host is None or addr[0] == host) and (port is None or addr[1] == port)

    def _loop_plain(self) -> None:
        """No impairment, no trace, no debug: receive, send, count.  Kept tight on purpose."""
        rsock, ssock = self.rsock, self.ssock
        buf = bytearray(BUFSIZE)
        mv = memoryview(buf)
        send = ssock.send
        imp = self.impairer
        c = self._recv_counters
        filtering = self.accept_host is not None or self.accept_port is not None
        received = nbytes = sent_bytes = errors = 0
        try:
            if not filtering:
                recv_into = rsock.recv_into
                while True:
                    n = recv_into(buf)
                    if self._stopping:
                        break
                    received += 1
                    nbytes += n
                    try:
                        sent_bytes += send(mv[:n])
                    except OSError as exc:
                        errors += 1
                        c.last_error = str(exc)
            else:
                recvfrom_into = rsock.recvfrom_into
                accepts = self._accepts
                while True:
                    n, addr = recvfrom_into(buf)
                    if self._stopping:
                        break
                    if not accepts(addr):
                        self.foreign += 1
                        continue
                    received += 1
                    nbytes += n
                    try:
                        sent_bytes += send(mv[:n])
                    except OSError as exc:
                        errors += 1
                        c.last_error = str(exc)
        finally:
            imp.received += received
            imp.bytes_received += nbytes
            c.forwarded += received - errors
            c.send_errors += errors
            c.bytes_forwarded += sent_bytes

    def _loop(self) -> None:
        """The general receiving loop: judge every datagram, then send it or schedule it."""
        rsock = self.rsock
        buf = bytearray(BUFSIZE)
        mv = memoryview(buf)
        decide = self.impairer.decide
        tracer = self.tracer
        debug = self.debug
        filtering = self.accept_host is not None or self.accept_port is not None
        accepts = self._accepts
        imp = self.imp
        scheduled = imp.needs_scheduler
        hold = imp.hold
        cond = self._cond
        rq = self._rq
        monotonic = _monotonic
        recvfrom_into = rsock.recvfrom_into
        addr = None
        while True:
            if filtering or debug:
                n, addr = recvfrom_into(buf)
            else:
                n = rsock.recv_into(buf)
            if self._stopping:
                break
            now = monotonic()
            if filtering and not accepts(addr):
                self.foreign += 1
                if debug:
                    logger.debug("ignored {} bytes from foreign {}:{}", n, addr[0], addr[1])
                continue
            v = decide(now, n)
            if tracer is not None:
                tracer.emit(now, "recv", n=v.n, len=n)
            if v.drop is not None:
                if tracer is not None:
                    tracer.emit(now, "drop", n=v.n, why=v.drop, len=n)
                if debug:
                    logger.debug("#{} {} bytes from {}: dropped ({})", v.n, n, addr, v.drop)
                continue
            if v.flips:
                data = bytearray(mv[:n])
                flip_bits(data, v.flips)
                data = bytes(data)
                if tracer is not None:
                    tracer.emit(now, "corrupt", n=v.n, bits=len(v.flips))
            else:
                data = bytes(mv[:n])
            if v.reorder and tracer is not None:
                tracer.emit(now, "reorder", n=v.n)
            if debug:
                logger.debug(
                    "#{} {} bytes from {}: release in {:.6f}s{}{}{}",
                    v.n,
                    n,
                    addr,
                    v.release - now,
                    f", {len(v.flips)} bits flipped" if v.flips else "",
                    ", duplicated" if v.dup else "",
                    ", held for reordering" if v.reorder else "",
                )
            entry = Entry(v.n, data, 2 if v.dup else 1, now, v.release, v.reorder)
            if scheduled:
                with cond:
                    if rq.push(entry, hold):
                        cond.notify()
            else:
                self._send(entry, now, self._recv_counters)

    def _send(self, e: Entry, now: float, c: _SendCounters) -> None:
        send = self.ssock.send
        tracer = self.tracer
        held_for = now - e.arrival
        try:
            c.bytes_forwarded += send(e.data)
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
            tracer.emit(now, "fwd", n=e.n, len=len(e.data), delay=round(held_for, 6))
        if e.copies > 1:
            try:
                c.bytes_forwarded += send(e.data)
            except OSError as exc:
                c.dup_send_errors += 1
                c.last_error = str(exc)
                return
            c.duplicated += 1
            if tracer is not None:  # the second copy, when it has actually been sent
                tracer.emit(now, "dup", n=e.n, len=len(e.data), delay=round(held_for, 6))

    def _sender_loop(self) -> None:
        """Sleep until the earliest release time, send what is due, repeat."""
        cond = self._cond
        rq = self._rq
        c = self._send_counters
        monotonic = _monotonic
        send_one = self._send
        while True:
            with cond:
                while True:
                    if self._stopping:
                        return
                    due = rq.next_due()
                    now = monotonic()
                    if due is None:
                        cond.wait()
                    elif due > now:
                        cond.wait(due - now)
                    else:
                        batch = rq.pop_due(now)
                        break
            for e in batch:
                send_one(e, now, c)

    # -------------------------------------------------------------- shutdown

    def stop(self) -> None:
        """Stop both threads, join them and close the sockets.  Idempotent."""
        if self._stopped_at is None:
            self._stopped_at = _monotonic()
        self._stopping = True
        if self.rsock is not None:
            try:
                self.rsock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # ENOTCONN for an unconnected UDP socket, yet the reader is woken
        with self._cond:
            self._cond.notify_all()
        for t in self._threads:
            t.join()
        self._threads.clear()
        with self._cond:
            self.unsent_at_exit = len(self._rq.pending())
        for s in (self.rsock, self.ssock):
            if s is not None:
                s.close()

    # ---------------------------------------------------------------- report

    def report(self) -> dict:
        """What the link did, counted where it was done."""
        dec = self.impairer.counters()
        a, b = self._recv_counters, self._send_counters
        forwarded = a.forwarded + b.forwarded
        delay_sum = a.delay_sum + b.delay_sum
        end = self._stopped_at if self._stopped_at is not None else _monotonic()
        return {
            "received": dec["received"],
            "bytes_received": dec["bytes_received"],
            "forwarded": forwarded,
            "bytes_forwarded": a.bytes_forwarded + b.bytes_forwarded,
            "dropped": dec["dropped"],
            "dropped_total": dec["dropped_total"],
            "queue_drops": dec["dropped"]["queue"],
            "corrupted": dec["corrupted"],
            "bits_flipped": dec["bits_flipped"],
            "duplicated": a.duplicated + b.duplicated,
            "reordered": dec["reordered"],
            "reorder_timeouts": self._rq.timeouts,
            "delayed": a.delayed + b.delayed,
            "mean_delay": round(delay_sum / forwarded, 6) if forwarded else 0.0,
            "max_delay": round(max(a.delay_max, b.delay_max), 6),
            "send_errors": a.send_errors + b.send_errors,
            "dup_send_errors": a.dup_send_errors + b.dup_send_errors,
            "unsent_at_exit": self.unsent_at_exit,
            "ignored_foreign": self.foreign,
            "duration": round(end - self._started_at, 6) if self._started_at else 0.0,
        }
