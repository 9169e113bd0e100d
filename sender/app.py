"""The sending program's threads around :class:`common.sender_core.SenderCore`.

The design card (DESIGN.md): one state object guarded by one lock, with
condition variables on that lock:

* ``transmitter`` waits on ``tx_ready`` until the core has something to send
  (control segments, retransmissions, or new data the windows allow), or
  until the core's ``pace_deadline`` when pacing holds new data back; it
  takes what is due under the lock and sends it outside the lock; it also
  reads the file, outside the lock, into a short read-ahead of MSS-sized
  chunks, the first while the handshake is under way;
* ``ack-listener`` blocks in ``recv``, parses what arrived (a whole burst at
  a time), feeds it to the core under the lock once per burst, and wakes the
  others;
* ``rto-timer`` sleeps on ``timer_ready`` until the core's earliest deadline,
  then fires the core's timers;
* the main thread opens the connection, starts and joins the workers and
  waits on ``done`` for the end.

Shared state and its guard (``lock``): the core (everything in it), the
``stop`` flag.  Owned by one thread alone: the file, the read-ahead and the
hash (transmitter); the receive buffer (ack-listener).  The socket is used
by all (sends are atomic per datagram).  No socket call, file access or log
line happens while ``lock`` is held.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass

from loguru import logger

from common.batch import decode_acks
from common.rtt import RttEstimator
from common.segment import (
    ACK,
    RST,
    SYN,
    TS_HEADER_LEN,
    SegmentError,
    decode,
    flag_str,
)
from common.sender_core import SenderCore, SenderState
from runtime import threadhooks, threadtrace
from runtime.addr import show
from runtime.endpoint import EndpointBase
from runtime.pcap import PcapWriter, ip_version
from runtime.progutil import debug_enabled
from runtime.trace import Tracer, sack_offsets, segment_fields
from runtime.udpgso import batch_reader
from sender.output import Output
from sender.reading import FileReader, prefix_hasher

#: How many MSS-sized chunks the transmitter keeps read ahead of the window.
READAHEAD = 176
#: New segments one turn of the transmitter takes at most: two full GSO
#: sends of 1472-byte datagrams (see GSO_MAX_BYTES).
MAX_NEW = 88
#: Datagrams the ACK listener takes from the socket before it feeds the core.
RECV_BURST = 64
RECV_BUFFER = 65536


@dataclass
class SenderConfig:
    path: str
    link: tuple[str, int]
    window: int
    ack_port: int
    bind: str = "127.0.0.1"
    mode: str = "sr"
    mss: int = 1452
    min_rto: float = 0.2
    max_rto: float = 60.0
    retries: int = 10
    give_up: float = 30.0
    time_wait: float | None = None
    pacing: float | None = None  # None: the congestion controller's gain
    cc: str = "none"
    timestamps: bool = True  # offer RFC 7323 timestamps
    isn: int | None = None
    trace_path: str | None = None
    pcap_path: str | None = None
    progress: bool = False
    name: bytes | None = None  # offered in the SYN (PROTOCOL.md §9), UTF-8
    resume: bool = False  # --resume: take a receiver's offer if our prefix matches


class Sender(EndpointBase):
    """One transfer: ``run()`` returns when it is over (or raises Interrupted)."""

    def __init__(self, cfg: SenderConfig, sock: socket.socket, file, file_size: int | None,
                 isn: int, tracer: Tracer | None = None, pcap: PcapWriter | None = None):
        self.cfg = cfg
        self.isn = isn & 0xFFFFFFFF
        self.sock = sock
        self.file = file
        self.file_size = file_size
        self.dest = cfg.link
        self.tracer = tracer
        self.pcap = pcap
        local_port = sock.getsockname()[1]
        self.core = SenderCore(
            isn=isn, file_size=file_size, mode=cfg.mode, mss=cfg.mss, window=cfg.window,
            rtt=RttEstimator(min_rto=cfg.min_rto, max_rto=cfg.max_rto),
            retries=cfg.retries, give_up=cfg.give_up, time_wait=cfg.time_wait,
            src_port=local_port, dst_port=cfg.link[1], trace=threadhooks.core_trace(tracer),
            pacing=cfg.pacing, congestion_control=cfg.cc, timestamps=cfg.timestamps,
        )
        self.core.handshake.offered_name = cfg.name
        self._prefix = None  # the SHA-256 of the prefix a resume skips
        if cfg.resume:
            self.core.handshake.resume_check = self._prefix_matches
        super().__init__()
        self.tx_ready = threadtrace.condition(self.lock, "tx_ready")
        self.timer_ready = threadtrace.condition(self.lock, "timer_ready")
        self.stop = False
        self.peer: tuple[str, int] | None = None
        self.dropped: dict[str, int] = {}
        self.foreign = 0
        self.output = Output(sock, cfg.link, tracer, pcap)
        self.started = 0.0
        self.finished_at = 0.0
        self.log_segments = False
        self.progress = None
        self._threads: list[threading.Thread] = []
        threadhooks.attach(self, cfg.window)  # --thread-trace: counters, sockets

    # ---------------------------------------------------------------- running
    def run(self) -> None:
        self.log_segments = self.output.log_segments = debug_enabled()
        try:  # a signal may come at any point from here: shutdown() must run
            # The threads first: with the core still CLOSED they have nothing
            # to do and wait.  The transfer's clock starts at the SYN, not at
            # the programs' own start-up (as for the interpreter's).
            for name, target in (("transmitter", self._transmitter),
                                 ("ack-listener", self._ack_listener),
                                 ("rto-timer", self._timer)):
                t = threading.Thread(target=self.guard(target), name=name)
                self._threads.append(t)
                t.start()
            self.started = time.monotonic()
            if self.tracer:
                self.tracer.emit(self.started, "meta", role="sender", mode=self.cfg.mode,
                                 mss=self.cfg.mss, window=self.cfg.window, isn=self.isn,
                                 file_size=self.file_size, path=self.cfg.path,
                                 min_rto=self.cfg.min_rto, max_rto=self.cfg.max_rto,
                                 cc=self.cfg.cc, ip=ip_version(self.sock))
            with self.lock:
                self.core.start(self.started)
                events = self.take_events()
                self.tx_ready.notify()
                self.timer_ready.notify()
            self.emit(events)
            local = self.sock.getsockname()
            logger.info("connecting to {} from {} port {} ({} mode, window {} bytes)",
                        show(*self.dest), local[0], local[1], self.cfg.mode, self.cfg.window)
            self.wait_finished()
        except BaseException:
            self.interrupt("interrupted")
            raise
        finally:
            self.shutdown()
        self.finished_at = time.monotonic()

    @property
    def segments_sent(self) -> int:
        """Datagrams sent (read it after the threads are joined)."""
        return self.output.sent

    def put_on_wire(self, segments: list, view=None) -> None:
        self.output.send([(seg, None) for seg in segments], view=view)

    def wake_all(self) -> None:
        self.done.notify_all()
        self.tx_ready.notify_all()
        self.timer_ready.notify_all()

    def shutdown(self) -> None:
        """Let the transmitter flush what is left, then stop and join everyone."""
        tx = self._threads[0] if self._threads else None
        with self.lock:
            self.tx_ready.notify_all()
        if tx is not None and tx.ident is not None:
            tx.join(timeout=5.0)
        with self.lock:
            self.stop = True
            self.tx_ready.notify_all()
            self.timer_ready.notify_all()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the listener's recv
        except OSError:
            pass
        for t in self._threads:
            if t.ident is not None:  # started (a signal may have come first)
                t.join()

    # ------------------------------------------------------------ transmitter
    def _transmitter(self) -> None:
        core = self.core
        # What was read outside the lock, for the core at the next turn:
        # (chunks, residues), and then the end of the file.
        pending: tuple[list, list] | None = None
        ended = False
        # Traces, pcaps and debug logs describe every segment: they need the
        # Segment objects; otherwise headers are built from the records.
        segments = self.pcap is not None or self.tracer is not None or self.log_segments
        # The trace and the thread trace tag each resend with its cause.
        traced = self.tracer is not None or threadtrace.active() is not None
        reader = FileReader(self.file, self.cfg.path, self.file_size)
        tx_ready = self.tx_ready
        # Only a file of known size is read during the handshake: a read from
        # a pipe may wait for its writer, and the SYN's resends with it.
        # With --resume, nothing before the SYN-ACK says where to start.
        early = self.file_size is not None and not self.cfg.resume
        skip = self.cfg.resume  # the prefix to skip is still to be looked at

        def may_read() -> bool:  # (under the lock)
            return core.established or early and core.state == SenderState.SYN_SENT

        while True:
            with self.lock:
                if pending is not None:
                    core.supply(*pending)  # the core's from now on
                    pending = None
                if reader.eof and not ended:
                    core.end_of_stream(reader.digest)
                    ended = True
                while True:
                    if self.stop:
                        return
                    before = core.next_deadline()
                    batch = core.take(time.monotonic(), MAX_NEW, segments=segments)
                    if batch:
                        break
                    if core.finished:
                        return
                    if may_read() and not reader.eof and len(core.queue) < READAHEAD // 2:
                        break
                    paced = core.pace_deadline
                    if paced is not None:
                        tx_ready.wait(max(0.0, paced - time.monotonic()))
                    else:
                        tx_ready.wait()
                if batch:
                    after = core.next_deadline()
                    # Wake the timer only for an earlier deadline: for a later
                    # one it wakes at the old time, sees the new and sleeps on.
                    if after is not None and (before is None or after < before):
                        self.timer_ready.notify()
                finished = core.finished
                events = self.take_events()
                mss = core.eff_mss
                reading = may_read()
                queued = len(core.queue)
                resume_at = core.handshake.resume_at
                fields = core.data_header_fields()
                view = core.view() if self.log_segments else None
                # (the trace's tag of each resend, read here: the record is the core's)
                tags = [rec.sent_why if rec else "" for _, rec in batch] if traced else None
            self.emit(events)  # they happened under the lock, before these sends
            self.output.send(batch, fields, view, tags)
            if finished:
                with self.lock:
                    self.done.notify_all()
                continue
            if reading and not reader.eof and queued < READAHEAD // 2:
                if skip:
                    skip = False
                    if resume_at:
                        reader.skip_prefix(resume_at, self._prefix)
                # Read ahead, outside the lock: whole segments, MSS-sized.  The
                # first read overlaps the handshake (0.5 ms for the first 255
                # KiB here, as long as a loopback handshake): data is ready
                # when the SYN-ACK comes.
                pending = reader.read(READAHEAD - queued, mss)

    def _prefix_matches(self, held: int, tag: bytes) -> bool:
        """The core's resume check (under the lock, before any data is read:
        the transmitter waits for the SYN-ACK with --resume)."""
        try:
            self._prefix = prefix_hasher(self.file, held, tag)
        except OSError:
            self._prefix = None  # (sent whole; a read error shows again later)
        return self._prefix is not None

    # ----------------------------------------------------------- ack listener
    def _ack_listener(self) -> None:
        sock = self.sock
        buf = bytearray(RECV_BUFFER)
        data = memoryview(buf)
        core = self.core
        traced = self.tracer is not None
        # A GRO batch of ACKs from the peer is checked and parsed at once
        # (common.batch.decode_acks) unless something records each datagram
        # (pcap, trace, debug log).
        bulk = self.pcap is None and not traced and not self.log_segments
        recv = batch_reader(sock, buf)  # UDP GRO where the kernel has it
        with self.lock:
            view = core.view()  # what _parse reads of the core, renewed under the lock
        while True:
            try:
                n, size, addr = recv(0)
            except OSError as exc:
                if self.stop:
                    return
                logger.debug("recv failed: {}", exc)  # e.g. ICMP port unreachable
                continue
            if self.stop:
                return
            segs = []
            taken = 0  # datagrams read in this burst
            while True:
                if addr is not None:
                    if bulk and size == TS_HEADER_LEN < n and addr == self.peer:
                        # UDP GRO: a burst of the receiver's in-order ACKs in one read
                        items, drops = decode_acks(buf, n)
                        segs.extend(items)
                        for why, length in drops:
                            self._drop(why, length)
                    else:
                        for at in range(0, n or 1, size):
                            seg = self._parse(data[at:min(n, at + size)], addr, view)
                            if seg is not None:
                                segs.append(seg)
                    taken += -(-n // size) or 1
                if taken >= RECV_BURST:
                    break
                try:
                    n, size, addr = recv(socket.MSG_DONTWAIT)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    break
            if not segs:
                continue
            now = time.monotonic()
            with self.lock:
                before = core.next_deadline()
                core.on_segments(segs, now)
                self.tx_ready.notify()
                after = core.next_deadline()
                if after is not None and (before is None or after < before):
                    self.timer_ready.notify()
                if core.finished:
                    self.done.notify_all()
                events = self.take_events()
                acked = min(core.snd_una, core.file_size or core.snd_una)  # not the FIN
                rexmits = core.stats.retransmissions
                if traced:  # (the trace's SACK offsets need snd_una)
                    view = core.view()
            self.emit(events)
            if self.progress is not None:
                self.progress.update(acked, rexmits)

    def _parse(self, data: memoryview, addr, view):
        if self.peer is not None and addr != self.peer:
            self.foreign += 1
            self._drop("foreign", len(data))
            return None
        if self.pcap is not None:
            self.pcap.write(time.time(), False, bytes(data))
        try:
            seg = decode(data)
        except SegmentError as exc:
            self._drop(exc.reason, len(data))
            return None
        if self.peer is None:
            # The peer is whoever answers our SYN (PROTOCOL.md, Connection); a
            # refusal (RST acknowledging the SYN) goes to the core as well.
            acks_syn = seg.flags & ACK and seg.ack in (view.base, view.syn_end)
            if acks_syn and seg.flags & SYN:
                self.peer = addr
            elif not (acks_syn and seg.flags & RST):
                self._drop("foreign", len(data))
                return None
        if self.tracer is not None:
            fields = segment_fields(seg)
            if seg.sack:
                fields["sack"] = sack_offsets(seg.sack, view.base, view.snd_una)
            self.tracer.emit(time.monotonic(), "recv", **fields)
        if self.log_segments:
            logger.debug("recv {} -> local:{} seq={} ack={} flags={} win={} sack={}",
                         show(*addr[:2]), seg.dst_port, seg.seq, seg.ack, flag_str(seg.flags),
                         seg.window, list(seg.sack))
        return seg

    def _drop(self, why: str, length: int) -> None:
        self.dropped[why] = self.dropped.get(why, 0) + 1
        if self.tracer is not None:
            self.tracer.emit(time.monotonic(), "drop", why=why, len=length)

    # ------------------------------------------------------------------ timer
    def _timer(self) -> None:
        core = self.core
        while True:
            with self.lock:
                while True:
                    if self.stop:
                        return
                    deadline = core.next_deadline()
                    now = time.monotonic()
                    if deadline is not None and now >= deadline:
                        core.on_timer(now)
                        break
                    if core.finished:
                        self.done.notify_all()
                        self.timer_ready.wait()
                        continue
                    self.timer_ready.wait(None if deadline is None else deadline - now)
                self.tx_ready.notify()
                if core.finished:
                    self.done.notify_all()
                events = self.take_events()
            self.emit(events)


