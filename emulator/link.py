"""The link emulator's sockets and threads around the pure decisions of :mod:`emulator.impair`.

One direction: datagrams arrive on the receiving socket, are judged in
arrival order by the receiving thread (every random decision is made there),
and leave from the sending socket, which is connected to the output address.

- With nothing that makes a datagram wait (no delay, jitter, link speed or
  reordering), the receiving thread sends each datagram itself, right away.
- Otherwise it pushes the datagram into a :class:`~emulator.schedule.ReleaseQueue`
  and a sending thread sleeps on a condition until the earliest release time.

Batches (Linux, :mod:`runtime.udpgso`): the receiving socket takes GRO batches,
so datagrams a sender sent with one GSO call arrive in one ``recvmsg``.  The
link still judges them one by one, in order, with the same random draws as
if they had come apart.  Consecutive datagrams of a batch that are forwarded
untouched (not corrupted, duplicated or held for reordering) at the same
release time leave again as one batch, by one GSO send, and reach the next
hop as separate datagrams; a dropped one between them is left out and does
not split the batch (they would have left back to back anyway).  Without
this the emulator, one Python process, took a system call and a heap entry
per datagram and was the slowest part of a fast transfer; and at 20% loss,
splitting at every drop left it a system call per four datagrams, and the
receiver a read per four.

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
from runtime.udpgso import (
    GRO_CMSG_SPACE,
    GSO_MAX_SEGMENTS,
    GSO_REFUSED,
    enable_gro,
    gro_size,
    gso_cmsg,
)

BUFSIZE = 65536
SOCKET_BUFFER = 4 * 1024 * 1024


class LinkError(Exception):
    """The link could not be set up (address, port in use...)."""


def _monotonic() -> float:
    return time.monotonic()


def _datagrams(n: int, size: int) -> int:
    """How many datagrams a read of ``n`` bytes cut at ``size`` held (an empty one: 1)."""
    return -(-n // size) if n > size else 1


def _run_entry(pieces: list, size: int, now: float, due: float, n: int) -> Entry:
    """The entry of untouched datagrams, the first numbered ``n``: the
    memoryviews ``pieces`` (stretches of whole datagrams, in order), one
    batch of ``size``-byte datagrams, or one datagram on its own."""
    data = bytes(pieces[0]) if len(pieces) == 1 else b"".join(pieces)
    return Entry(n, data, 1, now, due, False, size if len(data) > size else 0)


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
        self.gro = False  # the receiving socket takes GRO batches
        self.gso = True  # batches leave by one GSO send (until the kernel refuses)
        self.foreign = 0
        self.batched_in = 0  # datagrams that arrived several to a read (GRO)
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
        self.gro = enable_gro(rsock)
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

    def _reader(self, with_addr: bool):
        """``read(buf) -> (n, size, addr)``: the next datagram, or GRO batch of
        datagrams of ``size`` bytes (the last may be shorter), into ``buf``;
        ``addr`` is None unless the socket call gives it anyway or
        ``with_addr`` asks for it (it costs a tuple)."""
        rsock = self.rsock
        if self.gro:
            recvmsg_into = rsock.recvmsg_into

            def read(buf):
                n, anc, _flags, addr = recvmsg_into([buf], GRO_CMSG_SPACE)
                return n, gro_size(anc, n) if anc else n, addr
        elif with_addr:
            recvfrom_into = rsock.recvfrom_into

            def read(buf):
                n, addr = recvfrom_into(buf)
                return n, n, addr
        else:
            recv_into = rsock.recv_into

            def read(buf):
                n = recv_into(buf)
                return n, n, None
        return read

    def _loop_plain(self) -> None:
        """No impairment, no trace, no debug: receive, send, count.  Kept tight on purpose.

        A GRO batch leaves as it came, by one GSO send."""
        buf = bytearray(BUFSIZE)
        mv = memoryview(buf)
        imp = self.impairer
        c = self._recv_counters
        filtering = self.accept_host is not None or self.accept_port is not None
        accepts = self._accepts
        read = self._reader(filtering)
        send = self.ssock.send
        forward = self._forward
        received = nbytes = batched = 0
        try:
            while True:
                n, size, addr = read(buf)
                if self._stopping:
                    break
                if filtering and not accepts(addr):
                    self.foreign += _datagrams(n, size)
                    continue
                if n <= size:
                    received += 1
                    nbytes += n
                    try:
                        c.bytes_forwarded += send(mv[:n])
                        c.forwarded += 1
                    except OSError as exc:
                        c.send_errors += 1
                        c.last_error = str(exc)
                    continue
                count = _datagrams(n, size)
                received += count
                batched += count
                nbytes += n
                sent = forward(mv[:n], size, count, c)
                c.forwarded += sent
                c.send_errors += count - sent
        finally:
            imp.received += received
            imp.bytes_received += nbytes
            self.batched_in += batched

    def _loop(self) -> None:
        """The general receiving loop: judge every datagram, then send it or schedule it."""
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
        # Runs leave as batches only where that changes nothing but the cost:
        # not when every datagram is traced or logged, and not with reordering,
        # where a held datagram must leave right after the one datagram that
        # follows it (with jitter or a link speed, release times never match).
        batching = tracer is None and not debug and imp.reorder == 0
        read = self._reader(filtering or debug)
        while True:
            n, size, addr = read(buf)
            if self._stopping:
                break
            now = monotonic()
            if filtering and not accepts(addr):
                self.foreign += _datagrams(n, size)
                if debug:
                    logger.debug("ignored {} bytes from foreign {}:{}", n, addr[0], addr[1])
                continue
            entries: list[Entry] = []
            if n <= size:  # one datagram
                entry = self._judge(decide(now, n), now, mv[:n], addr)
                if entry is None:
                    continue
                entries.append(entry)
            else:
                # A GRO batch: judge each datagram in order; runs of untouched
                # ones due together leave together, the dropped ones left out.
                self.batched_in += _datagrams(n, size)
                pieces: list[memoryview] = []  # the open run: stretches of buf
                run_at = run_end = 0  # its last stretch, not in pieces yet
                run_count = 0  # datagrams in it
                run_due = 0.0
                run_n = 0
                for at in range(0, n, size):
                    end = min(at + size, n)
                    v = decide(now, end - at)
                    if batching and v.drop is not None:
                        continue  # (nothing to trace or log: _judge would only drop it)
                    untouched = batching and not v.flips and not v.dup
                    if untouched and run_count and v.release == run_due and (
                            run_count < GSO_MAX_SEGMENTS):
                        if run_end != at:  # past a dropped one: a new stretch
                            pieces.append(mv[run_at:run_end])
                            run_at = at
                        run_end = end
                        run_count += 1
                        continue
                    if run_count:  # the open run ends here
                        pieces.append(mv[run_at:run_end])
                        entries.append(_run_entry(pieces, size, now, run_due, run_n))
                        pieces = []
                        run_count = 0
                    if untouched:
                        run_at, run_end, run_due, run_n = at, end, v.release, v.n
                        run_count = 1
                        continue
                    entry = self._judge(v, now, mv[at:end], addr)
                    if entry is not None:
                        entries.append(entry)
                if run_count:
                    pieces.append(mv[run_at:run_end])
                    entries.append(_run_entry(pieces, size, now, run_due, run_n))
                if not entries:
                    continue
            if scheduled:
                with cond:
                    wake = False
                    for entry in entries:
                        if rq.push(entry, hold):
                            wake = True
                    if wake:
                        cond.notify()
            else:
                for entry in entries:
                    self._send(entry, now, self._recv_counters)

    def _judge(self, v, now: float, data: memoryview, addr) -> Entry | None:
        """One datagram's verdict carried out up to its entry (None: dropped)."""
        tracer = self.tracer
        debug = self.debug
        n = len(data)
        if tracer is not None:
            tracer.emit(now, "recv", n=v.n, len=n)
        if v.drop is not None:
            if tracer is not None:
                tracer.emit(now, "drop", n=v.n, why=v.drop, len=n)
            if debug:
                logger.debug("#{} {} bytes from {}: dropped ({})", v.n, n, addr, v.drop)
            return None
        if v.flips:
            out = bytearray(data)
            flip_bits(out, v.flips)
            out = bytes(out)
            if tracer is not None:
                tracer.emit(now, "corrupt", n=v.n, bits=len(v.flips))
        else:
            out = bytes(data)
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
        return Entry(v.n, out, 2 if v.dup else 1, now, v.release, v.reorder)

    def _forward(self, data, size: int, count: int, c: _SendCounters) -> int:
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

    def _send(self, e: Entry, now: float, c: _SendCounters) -> None:
        tracer = self.tracer
        held_for = now - e.arrival
        if e.size:
            count = e.count
            sent = self._forward(e.data, e.size, count, c)
            c.send_errors += count - sent
            c.forwarded += sent
            if e.due > e.arrival:
                c.delayed += sent
            c.delay_sum += held_for * sent
            if sent and held_for > c.delay_max:
                c.delay_max = held_for
            return
        try:
            c.bytes_forwarded += self.ssock.send(e.data)
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
                c.bytes_forwarded += self.ssock.send(e.data)
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
            self.unsent_at_exit = sum(e.count for e in self._rq.pending())
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
            "batched_in": self.batched_in,
            "batched_out": a.batched_out + b.batched_out,
            "duration": round(end - self._started_at, 6) if self._started_at else 0.0,
        }
