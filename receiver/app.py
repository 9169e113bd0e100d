"""The receiving program's threads around :class:`common.receiver_core.ReceiverCore`.

* ``network``: reads every datagram the socket holds, parses it and feeds the
  core under the lock (once per burst), then hands the in-order bytes to the
  writer's queue and sends the ACKs, outside the lock.  When the socket is
  empty it waits in ``poll`` until the next datagram or the core's deadline
  (give-up time, FIN retransmission).
* ``writer`` (receiver/writer.py): takes lists of in-order chunks from a
  bounded ``queue.Queue``, writes them to ``FILE.part`` and hashes them,
  tells the core what it wrote (the buffer's free room is the advertised
  window, so a slow disk throttles the sender by flow control), starts the
  disk's write-back of every ``WRITEBACK_BYTES`` written (receiver/disk.py:
  so the FIN's fsync waits for the tail, not the whole file), and at the FIN
  flushes, fsyncs, checks the SHA-256 and renames ``FILE.part`` to ``FILE``
  only if it matches.
* the main thread: start, wait on ``done``, join, clean up.

Shared state and its guard (``lock``): the core, ``stop``, ``outcome``.
Owned by one thread: the receive buffer (network), the output file and the
hash (writer).  No socket call, file write or log line under ``lock``.
"""

from __future__ import annotations

import os
import queue
import select
import socket
import threading
import time
from dataclasses import dataclass

from loguru import logger

from common.batch import Run, decode_burst
from common.receiver_core import ReceiverCore, ReceiverState
from common.rtt import RttEstimator
from common.segment import SYN, SegmentError, decode, encode, flag_str
from common.seq import unwrap
from receiver.disk import (
    free_space,
)
from receiver.writer import FINISH, Writer, queued_size
from runtime import threadhooks, threadtrace
from runtime.endpoint import EndpointBase
from runtime.pcap import PcapWriter
from runtime.progutil import debug_enabled
from runtime.trace import Tracer
from runtime.udpgso import GRO_CMSG_SPACE, enable_gro, gro_size

#: Datagrams the network thread reads before it feeds the core and ACKs
#: (a GRO buffer counts as the datagrams it holds).
RECV_BURST = 64
RECV_BUFFER = 65536
#: Room for packing single datagrams back to back (see _network).
PACK_BYTES = 256 * 1024


@dataclass
class ReceiverConfig:
    path: str
    listen_port: int
    ack_to: tuple[str, int]
    bind: str = "0.0.0.0"
    mode: str = "sr"
    mss: int = 1452
    capacity: int = 4 << 20
    min_rto: float = 0.2
    max_rto: float = 60.0
    retries: int = 10
    give_up: float = 30.0
    listen_timeout: float | None = None
    max_size: int | None = None
    keep_partial: bool = False
    write_delay: float = 0.0  # --write-delay: a deliberately slow disk, per segment
    fail_after: int | None = None  # test hook: the disk is full after this many bytes


class Receiver(EndpointBase):
    def __init__(self, cfg: ReceiverConfig, sock: socket.socket, isn: int,
                 tracer: Tracer | None = None, pcap: PcapWriter | None = None):
        self.cfg = cfg
        self.isn = isn & 0xFFFFFFFF
        self.sock = sock
        self.tracer = tracer
        self.pcap = pcap
        self.part_path = cfg.path + ".part"
        limit = free_space(cfg.path)
        if cfg.max_size is not None:
            limit = cfg.max_size if limit is None else min(limit, cfg.max_size)
        self.core = ReceiverCore(
            isn=isn, mode=cfg.mode, mss=cfg.mss, capacity=cfg.capacity, size_limit=limit,
            rtt=RttEstimator(min_rto=cfg.min_rto, max_rto=cfg.max_rto), retries=cfg.retries,
            give_up=cfg.give_up, src_port=sock.getsockname()[1], dst_port=cfg.ack_to[1],
            trace=threadhooks.core_trace(tracer), ack_per_burst=True,
        )
        super().__init__()
        self.stop = False
        self.peer: tuple[str, int] | None = None
        self.queue: queue.Queue = threadtrace.queue(4096, "writer queue", queued_size)
        self.dropped: dict[str, int] = {}
        self.segments_sent = 0
        self.started = 0.0
        self.connected_at: float | None = None
        self.finished_at = 0.0
        self.log_segments = False
        self.progress = None
        self.max_queue = 0
        self._threads: list[threading.Thread] = []
        self._out = None
        self._write: Writer | None = None
        self.stopping = threading.Event()
        # A pipe the other threads write to, to wake the network thread from
        # poll() when its deadline changed (FIN sent) or it must stop.
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        threadhooks.attach(self)  # --thread-trace: counters, sockets

    # ---------------------------------------------------------------- running
    def run(self) -> None:
        self.log_segments = debug_enabled()
        self.started = time.monotonic()
        if self.tracer:
            self.tracer.emit(self.started, "meta", role="receiver", mode=self.cfg.mode,
                             mss=self.cfg.mss, capacity=self.cfg.capacity, isn=self.isn,
                             path=self.cfg.path)
        self._out = open(self.part_path, "wb")  # noqa: SIM115 - closed by the writer
        self._write = Writer(self, self._out)
        try:  # a signal may come at any point from here: shutdown() must run
            for name, target in (("network", self._network), ("writer", self._write.run)):
                t = threading.Thread(target=self.guard(target), name=name)
                self._threads.append(t)
                t.start()
            self.wait_finished()
        except BaseException:
            self.interrupt("interrupted")
            raise
        finally:
            self.shutdown()
            self.finished_at = time.monotonic()
            self._cleanup()

    def shutdown(self) -> None:
        with self.lock:
            self.stop = True
            self.done.notify_all()
        self.stopping.set()
        self.wake()
        while True:  # make room for the writer's stop cue, whatever it held
            try:
                self.queue.put_nowait(None)
                break
            except queue.Full:
                try:
                    self.queue.get_nowait()
                except queue.Empty:
                    pass
        for t in self._threads:
            if t.ident is not None:  # started (a signal may have come first)
                t.join()
        os.close(self._wake_r)
        os.close(self._wake_w)

    @property
    def written(self) -> int:
        """Bytes written to FILE.part (read it after the threads are joined)."""
        return self._write.written if self._write is not None else 0

    @property
    def renamed(self) -> bool:
        """Whether FILE.part became FILE, complete and verified."""
        return self._write is not None and self._write.renamed

    def wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except (BlockingIOError, OSError):
            pass

    def _cleanup(self) -> None:
        if self._out is not None and not self._out.closed:
            try:
                self._out.close()  # after ENOSPC this flushes (and fails) again
            except OSError:
                pass
        if not self.renamed and not self.cfg.keep_partial:
            try:
                os.unlink(self.part_path)
            except FileNotFoundError:
                pass
            except OSError as exc:
                logger.warning("could not remove {}: {}", self.part_path, exc)

    # ---------------------------------------------------------------- network
    def _network(self) -> None:
        buf = bytearray(PACK_BYTES + RECV_BUFFER)
        poller = select.poll()
        poller.register(self.sock, select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        poll = threadtrace.syscall(poller.poll, "poll")
        gro = enable_gro(self.sock)
        listen_deadline = (self.started + self.cfg.listen_timeout
                           if self.cfg.listen_timeout else None)
        # Traces, pcaps and debug logs describe every datagram: they take the
        # per-segment path.  Otherwise, once the peer is known, the bulk path.
        observed = self.pcap is not None or self.tracer is not None or self.log_segments
        bulk = False
        with self.lock:
            self._view = self.core.view()
        while not self.stop:
            segs: list = []
            bulk = self._read_burst(buf, gro, bulk, observed, segs)
            if bulk is None:
                return
            deadline, finished, deliver, fin_in, out, events, view = \
                self._feed(segs, listen_deadline)
            if deliver:
                self.queue.put(deliver)
            if fin_in and not self._fin_queued:
                self._fin_queued = True
                self.queue.put(FINISH)
            self.emit(events)  # they happened under the lock, before these sends
            self.send_control(out, view)
            if segs:
                continue  # more may be waiting
            if finished:
                return
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            poll(None if timeout is None else int(timeout * 1000) + 1)
            try:
                os.read(self._wake_r, 512)
            except BlockingIOError:
                pass

    def _read_burst(self, buf: bytearray, gro: bool, bulk: bool, observed: bool,
                    segs: list) -> bool | None:
        """Read what the socket holds, up to RECV_BURST datagrams, into
        ``segs``; returns whether the bulk path is on now, or None if the
        thread must stop.  The pack: datagrams of one size from the peer,
        read back to back into ``buf``, so that one decode_burst takes them
        all (a GRO buffer of our own making, for datagrams that come one at
        a time)."""
        sock = self.sock
        view = memoryview(buf)
        taken = 0  # datagrams read in this burst
        fill = pack_size = 0
        while taken < RECV_BURST:
            try:
                room = view[fill:fill + RECV_BUFFER]
                if gro:
                    n, anc, _flags, addr = sock.recvmsg_into([room], GRO_CMSG_SPACE,
                                                             socket.MSG_DONTWAIT)
                else:
                    n, addr = sock.recvfrom_into(room, 0, socket.MSG_DONTWAIT)
                    anc = None
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                if self.stop:
                    return None
                logger.debug("recv failed: {}", exc)
                break
            if addr is None:
                continue
            size = gro_size(anc, n) or 1  # an empty datagram: one, short
            taken += -(-n // size) or 1
            at = fill
            if bulk and addr == self.peer and n and not n % size and (
                    not fill or size == pack_size):
                fill += n
                pack_size = size
                if fill + RECV_BUFFER > len(buf):
                    self._take_bulk(view[:fill], pack_size, segs)
                    fill = 0
                continue
            if fill:  # what came before this one goes first
                self._take_bulk(view[:fill], pack_size, segs)
                fill = 0
            if bulk and addr == self.peer:
                self._take_bulk(view[at:at + n], size, segs)
                continue
            for start in range(at, at + max(n, 1), size):  # UDP GRO: several at once
                seg = self._parse(view[start:min(at + n, start + size)], addr)
                if seg is not None:
                    segs.append(seg)
            bulk = self.peer is not None and not observed
        if fill:
            self._take_bulk(view[:fill], pack_size, segs)
        return bulk

    def _feed(self, segs: list, listen_deadline: float | None) -> tuple:
        """Under the lock: the burst to the core, its timers, and what to do
        after the lock: (deadline, finished, chunks to deliver, whether the
        FIN is in, segments to send, events, the core's view)."""
        now = time.monotonic()
        core = self.core
        with self.lock:
            for seg in segs:
                if type(seg) is Run:
                    if core.accepts_run(seg.segment):
                        core.on_segment(seg.segment, now, seg.count)
                    else:
                        for piece in seg.split():
                            core.on_segment(piece, now)
                else:
                    core.on_segment(seg, now)
            core.flush_ack(now)
            deadline = core.next_deadline()
            if deadline is not None and now >= deadline:
                core.on_timer(now)
                deadline = core.next_deadline()
            if core.state == ReceiverState.LISTEN and listen_deadline is not None:
                if now >= listen_deadline:
                    core.abort(now, f"no sender connected within "
                                    f"{self.cfg.listen_timeout:g} s", send_rst=False)
                deadline = listen_deadline
            deliver = core.deliver
            if deliver:
                core.deliver = []
                self.max_queue = max(self.max_queue, core.unwritten)
            fin_in = core.state == ReceiverState.CLOSE_WAIT and core.digest is not None
            out = self.take_outbox()
            events = self.take_events()
            finished = core.finished
            if finished:
                self.done.notify_all()
            if self.tracer is not None:  # (only the trace reads it)
                self._view = view = core.view()
            else:
                view = None
        return deadline, finished, deliver, fin_in, out, events, view

    _fin_queued = False
    _view = None  # the network thread's copy of core.view(), renewed under the lock

    def _take_bulk(self, data: memoryview, size: int, segs: list) -> None:
        """The bulk path (common.batch): datagrams of ``size`` bytes (the last
        may be shorter), back to back in ``data``, all at once."""
        items, drops = decode_burst(data, len(data), size)
        segs.extend(items)
        for why, length in drops:
            self._drop(why, length)

    def _parse(self, data: memoryview, addr):
        if self.pcap is not None:
            self.pcap.write(time.time(), False, bytes(data))
        if self.peer is not None and addr != self.peer:
            self._drop("foreign", len(data))
            return None
        try:
            seg = decode(data)
        except SegmentError as exc:
            self._drop(exc.reason, len(data))
            return None
        if self.peer is None:
            if not seg.flags & SYN:
                self._drop("no-connection", len(data))
                return None
            self.peer = addr  # PROTOCOL.md: the peer is whoever sent the SYN
            self.connected_at = time.monotonic()
            logger.info("connection from {}:{}", *addr)
        if self.tracer is not None:
            fields = dict(seq=seg.seq, ack=seg.ack, flags=flag_str(seg.flags),
                          len=len(seg.payload), win=seg.window)
            view = self._view
            if seg.payload and view.state != ReceiverState.LISTEN:
                fields["off"] = unwrap(seg.seq, view.base, view.rcv_nxt)
            self.tracer.emit(time.monotonic(), "recv", **fields)
        if self.log_segments:
            logger.debug("recv {}:{} -> local:{} seq={} ack={} flags={} len={}",
                         addr[0], addr[1], seg.dst_port, seg.seq, seg.ack,
                         flag_str(seg.flags), len(seg.payload))
        return seg

    def _drop(self, why: str, length: int) -> None:
        self.dropped[why] = self.dropped.get(why, 0) + 1
        if self.tracer is not None:
            self.tracer.emit(time.monotonic(), "drop", why=why, len=length)

    def send_control(self, segs, view=None) -> None:
        for seg in segs:
            data = encode(seg)
            try:
                self.sock.sendto(data, self.cfg.ack_to)
            except OSError as exc:
                logger.debug("send failed: {}", exc)
            self.segments_sent += 1
            if self.pcap is not None:
                self.pcap.write(time.time(), True, data)
            if self.tracer is not None:
                fields = dict(seq=seg.seq, ack=seg.ack, flags=flag_str(seg.flags),
                              len=len(seg.payload), win=seg.window)
                if seg.sack and view is not None:
                    base, nxt = view.base, view.rcv_nxt
                    fields["sack"] = [[unwrap(left, base, nxt), unwrap(right, base, nxt)]
                                      for left, right in seg.sack]
                self.tracer.emit(time.monotonic(), "send", **fields)
            if self.log_segments:
                logger.debug("send local:{} -> {}:{} seq={} ack={} flags={} win={} sack={}",
                             seg.src_port, *self.cfg.ack_to, seg.seq, seg.ack,
                             flag_str(seg.flags), seg.window, list(seg.sack))

