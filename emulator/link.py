"""The link emulator's sockets and threads around its pure parts.

One direction: datagrams arrive on the receiving socket, are judged in
arrival order by the receiving thread (every random decision is made there:
:mod:`emulator.impair`, :mod:`emulator.judge`), and leave from the sending
socket (:mod:`emulator.forward`), which is connected to the output address,
or, forwarding by port, sends each to the port its TCP header names.

- With nothing that makes a datagram wait (no delay, jitter, link speed or
  reordering), the receiving thread sends each datagram itself, right away.
- Otherwise it pushes the datagram into a :class:`~emulator.schedule.ReleaseQueue`
  and a sending thread sleeps on a condition until the earliest release time.
- With a link speed, the receiving thread hands each datagram to the
  :class:`~emulator.queue.Bottleneck` instead (tail drop, RED); the sending
  thread also wakes when the head of that queue is due on the link, serves it
  (CoDel decides there) and pushes what leaves the queue into the release
  queue, ``delay + jitter`` after the end of its serialisation.  Both share
  one lock; no socket call, trace line or log line is made while holding it.

Batches (Linux, :mod:`runtime.udpgso`): the receiving socket takes GRO batches,
so datagrams a sender sent with one GSO call arrive in one ``recvmsg``.  The
link still judges them one by one, in order, with the same random draws as
if they had come apart; untouched runs leave again by one GSO send
(:mod:`emulator.judge` says when).  Without this the emulator, one Python
process, took a system call and a heap entry per datagram and was the
slowest part of a fast transfer.

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

from emulator.departures import Departures
from emulator.events import trace_arrival
from emulator.forward import Forwarder, SendCounters
from emulator.impair import DROP_CAUSES, Impairer, Impairments
from emulator.judge import judge_batch, judge_one
from runtime.addr import show
from runtime.udpgso import GRO_CMSG_SPACE, enable_gro, gro_size

BUFSIZE = 65536
SOCKET_BUFFER = 4 * 1024 * 1024


class LinkError(Exception):
    """The link could not be set up (address, port in use...)."""


def _monotonic() -> float:
    return time.monotonic()


def _datagrams(n: int, size: int) -> int:
    """How many datagrams a read of ``n`` bytes cut at ``size`` held (an empty one: 1)."""
    return -(-n // size) if n > size else 1


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
        out_addr: tuple[str, int | None] = ("127.0.0.1", 41194),
        accept_host: str | None = None,
        accept_port: int | None = None,
        tracer=None,
        debug: bool = False,
        on_fatal: Callable[[BaseException], None] | None = None,
    ):
        self.imp = imp
        self.impairer = Impairer(imp, rng)
        self.departures = Departures(imp, tracer, debug)
        self.bind_host = bind_host
        self.recv_port = recv_port
        self.send_port = send_port
        self.out_addr = out_addr  # port None: forwarding by port
        self.accept_host = accept_host
        self.accept_port = accept_port
        self.tracer = tracer
        self.debug = debug
        self.on_fatal = on_fatal
        self.rsock: socket.socket | None = None
        self.ssock: socket.socket | None = None
        self.fwd: Forwarder | None = None
        self.gro = False  # the receiving socket takes GRO batches
        self.foreign = 0
        self.batched_in = 0  # datagrams that arrived several to a read (GRO)
        self._stopping = False
        self._recv_counters = SendCounters()  # the receiving thread's
        self._threads: list[threading.Thread] = []
        self._started_at: float | None = None
        self._stopped_at: float | None = None
        self.unsent_at_exit = 0
        self.fatal: BaseException | None = None

    # ----------------------------------------------------------------- setup

    def open(self) -> tuple[int, int]:
        """Bind both sockets and connect the sending one; returns (recv_port, send_port)."""
        # One family for both sockets: the bind address's (options.py makes
        # it the -o host's), an IPv6 address having a colon.
        family = socket.AF_INET6 if ":" in self.bind_host else socket.AF_INET
        rsock = socket.socket(family, socket.SOCK_DGRAM)
        ssock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            for s, opt in ((rsock, socket.SO_RCVBUF), (ssock, socket.SO_SNDBUF)):
                try:
                    s.setsockopt(socket.SOL_SOCKET, opt, SOCKET_BUFFER)
                except OSError:  # pragma: no cover - capped by the kernel, never fatal
                    pass
            for s, port, what in ((rsock, self.recv_port, "receive"),
                                  (ssock, self.send_port, "send")):
                try:
                    s.bind((self.bind_host, port))
                except OSError as exc:
                    raise LinkError(
                        f"cannot bind {what} port {show(self.bind_host, port)}: {exc.strerror}"
                    ) from exc
            if self.out_addr[1] is not None:
                try:
                    ssock.connect(self.out_addr)
                except OSError as exc:
                    raise LinkError(
                        f"cannot send to {show(*self.out_addr)}: {exc.strerror}"
                    ) from exc
        except BaseException:
            rsock.close()
            ssock.close()
            raise
        self.rsock, self.ssock = rsock, ssock
        self.fwd = self.departures.fwd = Forwarder(ssock, self.tracer, self.debug)
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
                target=self._guard, args=(self.departures.run,), name="link-send"
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

    # --------------------------------------------------------------- reading

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
        forward = self.fwd.batch
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
        """The general receiving loop: judge every datagram, then send it,
        schedule it, or hand it to the bottleneck."""
        buf = bytearray(BUFSIZE)
        mv = memoryview(buf)
        decide = self.impairer.decide
        tracer, debug = self.tracer, self.debug
        looking = tracer is not None or debug
        filtering = self.accept_host is not None or self.accept_port is not None
        accepts = self._accepts
        imp = self.imp
        departures = self.departures
        bn = departures.bottleneck
        host = self.out_addr[0] if imp.by_port else None
        # Where each datagram goes: now, to the release queue, or to the bottleneck.
        scheduled = imp.needs_scheduler
        if bn is not None:
            enqueue = departures.enqueue
        elif scheduled:
            schedule = departures.schedule
        else:
            send, c = self.fwd.send, self._recv_counters
        monotonic = _monotonic
        # Runs leave as batches only where that changes nothing but the cost:
        # not when every datagram is traced or logged, not with reordering,
        # where a held datagram must leave right after the one datagram that
        # follows it, not through a bottleneck, where each waits on its own,
        # and not to ports each datagram names.
        batching = not looking and imp.reorder == 0 and bn is None and host is None
        read = self._reader(filtering or debug)
        while True:
            n, size, addr = read(buf)
            if self._stopping:
                break
            now = monotonic()
            if filtering and not accepts(addr):
                self.foreign += _datagrams(n, size)
                if debug:
                    logger.debug("ignored {} bytes from foreign {}", n, show(addr[0], addr[1]))
                continue
            if n <= size:  # one datagram (the common case, kept short)
                v, e = judge_one(decide, mv[:n], now, host)
                if bn is not None:
                    enqueue(((v, e),), addr)
                    continue
                if looking:
                    trace_arrival(tracer, debug, v, now, addr)
                if e is None:
                    continue
                if scheduled:
                    schedule((e,))
                else:
                    send(e, now, c)
                continue
            self.batched_in += _datagrams(n, size)
            judged = judge_batch(decide, mv, n, size, now, batching, host)
            if bn is not None:
                enqueue(judged, addr)
                continue
            if looking:
                for v, _ in judged:
                    trace_arrival(tracer, debug, v, now, addr)
            entries = [e for _, e in judged if e is not None]
            if not entries:
                continue
            if scheduled:
                schedule(entries)
            else:
                for e in entries:
                    send(e, now, c)

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
        self.departures.stop()
        for t in self._threads:
            t.join()
        self._threads.clear()
        self.unsent_at_exit = self.departures.unsent()
        for s in (self.rsock, self.ssock):
            if s is not None:
                s.close()

    # ---------------------------------------------------------------- report

    def report(self) -> dict:
        """What the link did, counted where it was done."""
        dec = self.impairer.counters()
        a, b = self._recv_counters, self.departures.counters
        wa, wb = self.departures.withdrawn
        bn = self.departures.bottleneck
        dropped = dict.fromkeys(DROP_CAUSES, 0)
        dropped.update(dec["dropped"])
        if bn is not None:
            dropped.update(bn.dropped)
        forwarded = a.forwarded + b.forwarded
        delay_sum = a.delay_sum + b.delay_sum
        end = self._stopped_at if self._stopped_at is not None else _monotonic()
        out = {
            "received": dec["received"],
            "bytes_received": dec["bytes_received"],
            "forwarded": forwarded,
            "bytes_forwarded": a.bytes_forwarded + b.bytes_forwarded,
            "dropped": dropped,
            "dropped_total": sum(dropped.values()),
            "queue_drops": dropped["queue"],
            "corrupted": dec["corrupted"] - wa.corrupted - wb.corrupted,
            "bits_flipped": dec["bits_flipped"] - wa.bits - wb.bits,
            "duplicated": a.duplicated + b.duplicated,
            "reordered": dec["reordered"] - wa.reordered - wb.reordered,
            "reorder_timeouts": self.departures.rq.timeouts,
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
        if bn is not None:
            out["queue"] = bn.counters()
        return out
