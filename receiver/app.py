"""The receiving program's threads around :class:`common.receiver_core.ReceiverCore`.

* ``network``: reads every datagram the socket holds, parses it (each one's
  parsing, records and drop count: receiver/wire.py) and feeds the core
  under the lock (once per burst), then hands the in-order bytes to the
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
import socket
import threading
import time
from dataclasses import dataclass

from loguru import logger

from common.ackclock import DELAYED_ACK
from common.batch import Run
from common.receiver_core import ReceiverCore, ReceiverState
from common.rtt import RttEstimator
from common.segment import SYN
from receiver.disk import free_space, fsync_dir, hold_replaced, size_limit
from receiver.resume import open_part, read_prefix, sync_kept
from receiver.wire import Wire
from receiver.writer import FINISH, Writer, cue_stop, queued_size
from runtime import threadhooks, threadtrace
from runtime.endpoint import EndpointBase
from runtime.pcap import PcapWriter, ip_version
from runtime.progutil import UsageError, debug_enabled
from runtime.trace import Tracer
from runtime.udpgso import GRO_CMSG_SPACE, enable_gro, gro_size
from runtime.waiting import Silence, receiver_wait
from runtime.wakeup import Wakeup

#: Datagrams the network thread reads before it feeds the core and ACKs
#: (a GRO buffer counts as the datagrams it holds).
RECV_BURST = 64
RECV_BUFFER = 65536
#: Room for packing single datagrams back to back (see _network).
PACK_BYTES = 256 * 1024
#: The states in which the receiver waits for the sender, and says so now
#: and then when nothing comes (runtime/waiting.py).
WAITS = (ReceiverState.LISTEN, ReceiverState.SYN_RECEIVED, ReceiverState.ESTABLISHED)


@dataclass
class ReceiverConfig:
    path: str
    listen_port: int
    ack_to: tuple[str, int]
    bind: str = "127.0.0.1"
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
    ack_every: int = 2  # --ack-every: an in-order ACK at least every N segments (0: per burst)
    delayed_ack: float | None = DELAYED_ACK  # --delayed-ack (None: flush at the burst's end)
    fail_after: int | None = None  # test hook: the disk is full after this many bytes
    timestamps: bool = True  # take up RFC 7323 timestamps a sender offers
    resume: bool = False  # --resume: offer what FILE.part holds (receiver/resume.py)


class Receiver(EndpointBase):
    def __init__(self, cfg: ReceiverConfig, sock: socket.socket, isn: int,
                 tracer: Tracer | None = None, pcap: PcapWriter | None = None):
        self.cfg = cfg
        self.isn = isn & 0xFFFFFFFF
        self.sock = sock
        self.tracer = tracer
        self.part_path = cfg.path + ".part"
        self.prefix = None
        if cfg.resume:
            try:
                self.prefix = read_prefix(self.part_path)
            except OSError as exc:
                raise UsageError(f"cannot read {self.part_path}: {exc.strerror or exc}") \
                    from None
        limit = free_space(cfg.path)
        if limit is not None and self.prefix is not None:
            # FILE.part's bytes are kept or freed again: the file needs no more
            limit += self.prefix.held
        limit = size_limit(limit, cfg.max_size)
        self.core = ReceiverCore(
            isn=isn, mode=cfg.mode, mss=cfg.mss, capacity=cfg.capacity, size_limit=limit,
            rtt=RttEstimator(min_rto=cfg.min_rto, max_rto=cfg.max_rto), retries=cfg.retries,
            give_up=cfg.give_up, src_port=sock.getsockname()[1], dst_port=cfg.ack_to[1],
            trace=threadhooks.core_trace(tracer), ack_per_burst=True,
            ack_every=cfg.ack_every, delayed_ack=cfg.delayed_ack, timestamps=cfg.timestamps,
            resume_offer=self.prefix.offer if self.prefix is not None else None,
        )
        super().__init__()
        self.stop = False
        self.queue: queue.Queue = threadtrace.queue(4096, "writer queue", queued_size)
        self.started = 0.0
        self.finished_at = 0.0
        self.progress = None
        self.max_queue = 0
        self._threads: list[threading.Thread] = []
        self._out = None
        self._write: Writer | None = None
        self.stopping = threading.Event()
        # Wakes the network thread from poll() when its deadline changed (FIN
        # sent) or it must stop.
        self._wakeup = Wakeup()
        threadhooks.attach(self)  # --thread-trace: counters, sockets
        # Every datagram in and out (receiver/wire.py), on the socket as
        # attach() left it; its send is put_on_wire itself (no call between).
        self.wire = Wire(self.sock, cfg.ack_to, self.core.src_port, tracer, pcap)
        self.put_on_wire = self.wire.send

    # ---------------------------------------------------------------- running
    def run(self) -> None:
        self.wire.log_segments = debug_enabled()
        self.started = time.monotonic()
        if self.tracer:
            self.tracer.emit(self.started, "meta", role="receiver", mode=self.cfg.mode,
                             mss=self.cfg.mss, capacity=self.cfg.capacity, isn=self.isn,
                             path=self.cfg.path, ip=ip_version(self.sock))
        try:
            self._out = open_part(self.part_path, self.prefix)
        except OSError as exc:
            raise UsageError(f"cannot write {self.part_path}: {exc.strerror or exc}") from None
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
        cue_stop(self.queue)
        for t in self._threads:
            if t.ident is not None:  # started (a signal may have come first)
                t.join()
        self._wakeup.close()

    @property
    def dropped(self) -> dict[str, int]:
        """Datagrams dropped, by reason (read it after the threads are joined)."""
        return self.wire.dropped

    @property
    def segments_sent(self) -> int:
        return self.wire.sent

    @property
    def connected_at(self) -> float | None:
        """When the SYN came (None if none did)."""
        return self.wire.connected_at

    @property
    def written(self) -> int:
        """Bytes written to FILE.part (read it after the threads are joined)."""
        return self._write.written if self._write is not None else 0

    @property
    def renamed(self) -> bool:
        """Whether FILE.part became FILE, complete and verified."""
        return self._write is not None and self._write.renamed

    def commit(self) -> int | None:
        """Writer thread, the SHA-256 matched: FILE.part becomes FILE.  Returns
        a descriptor of the file --force replaced, for the caller to close."""
        replaced = hold_replaced(self.cfg.path)
        os.replace(self.part_path, self.cfg.path)
        fsync_dir(self.cfg.path)
        return replaced

    def wake(self) -> None:
        self._wakeup.wake()

    def _cleanup(self) -> None:
        if self._out is not None and not self._out.closed:
            if self.cfg.resume and not self.renamed:
                sync_kept(self._out)
            try:
                self._out.close()  # after ENOSPC this flushes (and fails) again
            except OSError:
                pass
        if not self.renamed and not (self.cfg.keep_partial or self.cfg.resume):
            try:
                os.unlink(self.part_path)
            except FileNotFoundError:
                pass
            except OSError as exc:
                logger.warning("could not remove {}: {}", self.part_path, exc)

    # ---------------------------------------------------------------- network
    def _network(self) -> None:
        buf = bytearray(PACK_BYTES + RECV_BUFFER)
        sleep = self._wakeup.sleeper(self.sock)
        gro = enable_gro(self.sock)
        listen_deadline = (self.started + self.cfg.listen_timeout
                           if self.cfg.listen_timeout else None)
        # Traces, pcaps and debug logs describe every datagram: they take the
        # per-segment path.  Otherwise, once the peer is known, the bulk path.
        wire = self.wire
        observed = wire.pcap is not None or self.tracer is not None or wire.log_segments
        bulk = False
        self._silence = Silence(self.started)
        with self.lock:
            wire.view = self.core.view()
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
            if wire.busy:
                wire.refuse_busy()
            if segs:
                continue  # more may be waiting
            if finished:
                return
            sleep(deadline)

    def _read_burst(self, buf: bytearray, gro: bool, bulk: bool, observed: bool,
                    segs: list) -> bool | None:
        """Read what the socket holds, up to RECV_BURST datagrams, into
        ``segs``; returns whether the bulk path is on now, or None if the
        thread must stop.  The pack: datagrams of one size from the peer,
        read back to back into ``buf``, so that one decode_burst takes them
        all (a GRO buffer of our own making, for datagrams that come one at
        a time)."""
        sock = self.sock
        wire = self.wire
        parse, take_bulk = wire.parse, wire.take_bulk
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
            if bulk and addr == wire.peer and n and not n % size and (
                    not fill or size == pack_size):
                fill += n
                pack_size = size
                if fill + RECV_BUFFER > len(buf):
                    take_bulk(view[:fill], pack_size, segs)
                    fill = 0
                continue
            if fill:  # what came before this one goes first
                take_bulk(view[:fill], pack_size, segs)
                fill = 0
            if bulk and addr == wire.peer:
                take_bulk(view[at:at + n], size, segs)
                continue
            for start in range(at, at + max(n, 1), size):  # UDP GRO: several at once
                seg = parse(view[start:min(at + n, start + size)], addr)
                if seg is not None:
                    segs.append(seg)
            bulk = wire.peer is not None and not observed
        if fill:
            take_bulk(view[:fill], pack_size, segs)
        return bulk

    def _feed(self, segs: list, listen_deadline: float | None) -> tuple:
        """Under the lock: the burst to the core, its timers, and what to do
        after the lock: (deadline, finished, chunks to deliver, whether the
        FIN is in, segments to send, events, the core's view)."""
        now = time.monotonic()
        core = self.core
        wire = self.wire
        with self.lock:
            for seg in segs:
                if type(seg) is Run:
                    if core.accepts_run(seg.segment):
                        core.on_segment(seg.segment, now, seg.count)
                    else:
                        for piece in seg.split():
                            core.on_segment(piece, now)
                elif seg.flags & SYN and wire.other_syn(seg):
                    wire.busy.append(seg)
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
            if core.state in WAITS:  # a line now and then while nothing comes
                listening = core.state == ReceiverState.LISTEN
                wait = receiver_wait(
                    self._silence, now, listening,
                    self.started if listening else core.last_heard,
                    listen_deadline if listening else core.last_heard + core.give_up)
                if wait is not None:
                    core.events.append(wait)  # (taken with the core's own, just below)
                if deadline is None or self._silence.next_at < deadline:
                    deadline = self._silence.next_at
            out = self.take_outbox()
            events = self.take_events()
            finished = core.finished
            if finished:
                self.done.notify_all()
            if self.tracer is not None:  # (only the trace reads it)
                wire.view = view = core.view()
            else:
                view = None
        return deadline, finished, deliver, fin_in, out, events, view

    _fin_queued = False
    _silence = Silence(0.0)  # (the network thread's own, made in _network)
