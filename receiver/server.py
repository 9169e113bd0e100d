"""``stcp-serve``'s engine: one UDP socket, many connections (receiver/conn.py).

The network thread reads every datagram, parses it, and finds its
connection by (peer address, TCP source port): through an emulator every
datagram comes from the emulator's address, so the port in the TCP header
(the sender's ACK port) is what tells flows apart (docs/PROTOCOL.md §7).  It
runs that connection's core under that connection's lock, hands in-order
chunks to that connection's writer without waiting, and sends the ACKs.  A
new SYN is admitted here: its name checked and claimed (receiver/outdir.py),
refused with an RST and a logged reason when the name is bad or taken or the
server is full.  Half-open connections (SYN-RECEIVED) are bounded in number
(the oldest is dropped, silently, to make room) and in time, so a flood of
forged SYNs costs bounded memory, never a file or a thread.

Finished connections go to the main thread through ``finished`` (a queue):
it joins their writer, cleans up and reports.  The connection table is the
network thread's alone while it runs.
"""

from __future__ import annotations

import os
import queue
import secrets
import socket
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from loguru import logger

from common.ackclock import DELAYED_ACK
from common.batch import Run, decode_burst
from common.names import shown
from common.receiver_core import ReceiverCore, ReceiverState
from common.rtt import RttEstimator
from common.segment import ACK, FIN, RST, SYN, Segment, SegmentError, decode, encode
from receiver.conn import Connection
from receiver.disk import free_space, size_limit
from receiver.outdir import OutDir, Refused
from receiver.refusal import accepted_name, offered_name, send_refusal, send_reset, to_itself
from receiver.writer import FINISH
from runtime import threadtrace
from runtime.udpgso import GRO_CMSG_SPACE, Batcher, enable_gro, gro_size
from runtime.wakeup import Wakeup

RECV_BURST = 64
RECV_BUFFER = 65536


@dataclass
class ServerConfig:
    directory: str
    ack_host: str
    ack_port: int | None = None  # None: each connection's ACKs to its TCP source port
    mode: str = "sr"
    mss: int = 1452
    capacity: int = 4 << 20
    min_rto: float = 0.2
    max_rto: float = 60.0
    retries: int = 10
    give_up: float = 30.0
    max_conns: int = 64
    max_half_open: int = 256
    syn_timeout: float = 10.0
    max_size: int | None = None
    force: bool = False
    write_delay: float = 0.0
    delayed_ack: float | None = DELAYED_ACK  # --delayed-ack (common/ackclock.py)
    timestamps: bool = True  # take up RFC 7323 timestamps a sender offers
    slow_names: dict = field(default_factory=dict)  # test hook: name -> write delay


class Server:
    def __init__(self, cfg: ServerConfig, sock: socket.socket):
        self.cfg = cfg
        # --thread-trace: the network thread's receives and sends as spans
        # (the socket itself while tracing is off, runtime/threadtrace.py).
        self.sock = threadtrace.socket(sock)
        self.batcher = Batcher(self.sock)  # the connections' ACKs: UDP GSO where it works
        self.port = sock.getsockname()[1]
        self.outdir = OutDir(cfg.directory, cfg.force)
        self.conns: dict = {}  # (addr, TCP source port) -> Connection (network thread)
        self.half_open: OrderedDict = OrderedDict()  # key -> Connection, oldest first
        self.established = 0  # connections past the handshake, still live
        self.finished: queue.Queue = threadtrace.queue(0, "finished connections")
        self.stop = False
        self.dropped: dict[str, int] = {}
        self.refused: dict[str, int] = {}
        self.syn_expired = 0  # half-open connections forgotten (limit or timeout)
        self.half_open_peak = 0  # the most half-open connections at once
        # Connections that ended, until give-up s later (key -> then): their
        # late duplicates are dropped, not answered with an RST.
        self.ended: OrderedDict = OrderedDict()
        self._wakeup = Wakeup()  # wakes the network thread from poll()
        self.gro = enable_gro(sock)  # several datagrams per read (Linux)
        self.thread = threading.Thread(target=self._network_guarded, name="network")

    # ---------------------------------------------------------------- control
    def start(self) -> None:
        self.thread.start()

    def wake(self) -> None:
        self._wakeup.wake()

    def shutdown(self, why: str) -> list[Connection]:
        """Main thread: stop the network thread, reset every live connection;
        returns them (the caller finishes each)."""
        self.stop = True
        self.wake()
        self.thread.join()
        live = list(self.conns.values())
        for conn in live:
            conn.interrupt(why)
            conn.closed = True
        self.conns.clear()
        self.half_open.clear()
        self._wakeup.close()
        return live

    def peer_text(self, key) -> str:
        addr, port = key
        return f"{addr[0]} port {port}"

    def _count(self, table: dict, why: str) -> None:
        table[why] = table.get(why, 0) + 1

    # ---------------------------------------------------------------- network
    def _network_guarded(self) -> None:
        try:
            self._network()
        except BaseException:
            logger.exception("network thread failed")
            self.finished.put(None)  # the main thread must not wait forever
            raise

    def _network(self) -> None:
        buf = bytearray(RECV_BUFFER)
        sleep = self._wakeup.sleeper(self.sock)
        while not self.stop:
            batches = self._read_burst(buf)
            now = time.monotonic()
            for conn, segs in batches.items():
                self._feed(conn, segs, now)
            deadline = self._timers(now)
            if batches:
                continue
            sleep(deadline)

    def _read_burst(self, buf: bytearray) -> dict:
        """What the socket holds (up to RECV_BURST datagrams), by connection.
        With UDP GRO one read may return several datagrams of one size from
        one address (through an emulator, of several connections):
        common.batch decodes them at once, in-sequence data coalesced into
        runs, and each item goes to its own connection."""
        batches: dict[Connection, list] = {}
        view = memoryview(buf)
        taken = 0
        while taken < RECV_BURST:
            try:
                if self.gro:
                    n, anc, _flags, addr = self.sock.recvmsg_into([buf], GRO_CMSG_SPACE,
                                                                  socket.MSG_DONTWAIT)
                    size = gro_size(anc, n)
                else:
                    n, addr = self.sock.recvfrom_into(buf, 0, socket.MSG_DONTWAIT)
                    size = n
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                logger.debug("recv failed: {}", exc)
                break
            if 0 < size < n:  # a GRO batch
                items, drops = decode_burst(buf, n, size)
                for why, _length in drops:
                    self._count(self.dropped, why)
                taken += -(-n // size)
            else:
                taken += 1
                try:
                    items = [decode(view[:n])]
                except SegmentError as exc:
                    self._count(self.dropped, exc.reason)
                    continue
            for item in items:
                self._take(item, addr, batches)
        return batches

    def _take(self, item, addr, batches: dict) -> None:
        """A segment or a Run: to its connection's batch, a new connection, or dropped."""
        seg = item.segment if type(item) is Run else item
        key = (addr, seg.src_port)
        conn = self.conns.get(key)
        if conn is None:
            if seg.flags & (SYN | ACK | RST | FIN) != SYN or type(item) is Run:
                self._no_connection(key, seg)
                return
            conn = self._admit(key, seg, time.monotonic())
            if conn is not None:  # its core took the SYN: the SYN-ACK to send
                batches.setdefault(conn, [])
            return
        batches.setdefault(conn, []).append(item)

    def _ack_to(self, key) -> tuple:
        """PROTOCOL.md §7: to ACK_ADDRESS at ACK_PORT, or at the TCP source port."""
        return (self.cfg.ack_host, self.cfg.ack_port or key[1])

    def _admit(self, key, syn: Segment, now: float) -> Connection | None:
        """A SYN for no connection: a new one, its SYN taken by its core (its
        SYN-ACK in the core's outbox), or an RST that says why not.  A SYN
        whose answers would come back to this socket (a forged source port,
        our own) is dropped: nothing is sent to ourselves."""
        if to_itself(self.sock, self._ack_to(key)):
            self._count(self.dropped, "own-address")
            return None
        if self.established >= self.cfg.max_conns:
            self._refuse(key, syn, offered_name(syn), f"receiver busy: {self.established} "
                         f"connections, at most {self.cfg.max_conns}")
            return None
        core = ReceiverCore(
            isn=secrets.randbits(32), mode=self.cfg.mode, mss=self.cfg.mss,
            capacity=self.cfg.capacity, size_limit=self._size_limit(),
            rtt=RttEstimator(min_rto=self.cfg.min_rto, max_rto=self.cfg.max_rto),
            retries=self.cfg.retries, give_up=self.cfg.give_up, src_port=self.port,
            dst_port=0, ack_per_burst=True, delayed_ack=self.cfg.delayed_ack,
            timestamps=self.cfg.timestamps,
        )
        core.on_segment(syn, now)  # (no other thread knows it yet: no lock)
        raw = accepted_name(core, syn)  # the name the core took (PROTOCOL.md §9)
        if core.finished:  # refused by the core (too big): its RST says why
            self._refuse(key, syn, raw, core.error or "refused", core.outbox)
            return None
        try:
            name = self.outdir.claim(raw)
        except Refused as exc:
            self._refuse(key, syn, raw, str(exc))
            return None
        if len(self.half_open) >= self.cfg.max_half_open:
            _, oldest = self.half_open.popitem(last=False)
            self._drop_half_open(oldest, "half-open limit")
        conn = Connection(self, key, name, core, self._ack_to(key), now)
        self.conns[key] = conn
        self.half_open[key] = conn
        self.half_open_peak = max(self.half_open_peak, len(self.half_open))
        return conn

    def _size_limit(self) -> int | None:
        # (free_space takes a file's path: the room in the directory it is in)
        return size_limit(free_space(os.path.join(self.outdir.path, "-")), self.cfg.max_size)

    def _refuse(self, key, syn: Segment, raw: bytes | None, reason: str,
                segments: list | None = None) -> None:
        """Log and count a refusal; send ``segments`` (a core's RST), or our own RST."""
        self._count(self.refused, reason.split(":")[0])
        logger.warning("refused {} (name {}): {}", self.peer_text(key),
                       "none" if raw is None else shown(raw), reason)
        if segments:
            for seg in segments:
                try:
                    self.sock.sendto(encode(seg), self._ack_to(key))
                except OSError as exc:
                    logger.debug("send failed: {}", exc)
            return
        send_refusal(self.sock, syn, self.port, reason, self._ack_to(key))

    def _drop_half_open(self, conn: Connection, why: str) -> None:
        """A connection that never completed its handshake: gone, without an RST
        (its SYN may well be forged: the RST would go to someone else)."""
        self.syn_expired += 1
        logger.debug("dropped half-open {} ({}): {}", self.peer_text(conn.key), conn.name, why)
        self.conns.pop(conn.key, None)
        self.outdir.release(conn.name)
        conn.closed = True

    # ------------------------------------------------------------- per connection
    def _feed(self, conn: Connection, segs: list, now: float) -> None:
        if conn.closed:  # forgotten (half-open limit) later in the burst that fed it
            self._count(self.dropped, "no-connection")
            return
        core = conn.core
        was_half_open = core.state in (ReceiverState.LISTEN, ReceiverState.SYN_RECEIVED)
        with conn.lock:
            for seg in segs:
                if type(seg) is not Run:
                    core.on_segment(seg, now)
                elif core.accepts_run(seg.segment):
                    core.on_segment(seg.segment, now, seg.count)
                else:
                    for piece in seg.split():
                        core.on_segment(piece, now)
            core.flush_ack(now)
            deliver = core.deliver
            if deliver:
                core.deliver = []
            fin_in = core.state == ReceiverState.CLOSE_WAIT and core.digest is not None
            out = conn.take_outbox()
        conn.send_control(out)
        if was_half_open and core.state not in (ReceiverState.LISTEN,
                                                ReceiverState.SYN_RECEIVED):
            self.half_open.pop(conn.key, None)
            if not core.finished and not self._establish(conn, now):
                return
        if deliver and not conn.hand_over(deliver):
            self._abort(conn, now, "the writer queue overflowed (the sender overran the window)")
        if fin_in and not conn.fin_queued:
            conn.fin_queued = conn.hand_over(FINISH)

    def _establish(self, conn: Connection, now: float) -> bool:
        """The handshake completed: a file and a writer thread, if there is room."""
        if self.established >= self.cfg.max_conns:
            self._abort(conn, now, f"receiver busy: at most {self.cfg.max_conns} connections")
            return False
        try:
            conn.start_writer()
        except OSError as exc:
            self._abort(conn, now, f"cannot create a file in {self.outdir.path}: "
                                   f"{exc.strerror or exc}")
            return False
        self.established += 1
        logger.info("connection from {}: writing {}", self.peer_text(conn.key), conn.name)
        return True

    def _abort(self, conn: Connection, now: float, why: str) -> None:
        with conn.lock:
            conn.core.abort(now, why)
            out = conn.take_outbox()
        conn.send_control(out)

    def _timers(self, now: float) -> float | None:
        """Run due timers, retire finished connections and stale half-open
        ones; the earliest deadline left."""
        earliest = None
        syn_timeout = self.cfg.syn_timeout
        for key, conn in list(self.conns.items()):
            core = conn.core
            if key in self.half_open and now - conn.born >= syn_timeout:
                del self.half_open[key]
                self._drop_half_open(conn, "SYN-RECEIVED timeout")
                continue
            with conn.lock:
                deadline = core.next_deadline()
                if deadline is not None and now >= deadline:
                    core.on_timer(now)
                    deadline = core.next_deadline()
                out = conn.take_outbox()
                finished = core.finished
            conn.send_control(out)
            if finished:
                self._retire(conn)
                continue
            if key in self.half_open:
                deadline = min(deadline or conn.born + syn_timeout, conn.born + syn_timeout)
            if deadline is not None and (earliest is None or deadline < earliest):
                earliest = deadline
        return earliest

    def _no_connection(self, key, seg: Segment) -> None:
        """A segment (not a new SYN) for no connection: a late one of a
        connection that ended is dropped; any other is answered with an RST
        (RFC 9293 §3.10.7.1), so that a sender this server does not know
        (it was restarted, or forgot the half-open connection) stops at once
        instead of resending until it gives up.  Never an RST for an RST."""
        now = time.monotonic()
        while self.ended and next(iter(self.ended.values())) <= now:
            self.ended.popitem(last=False)
        if key in self.ended:
            self._count(self.dropped, "late")
            return
        self._count(self.dropped, "no-connection")
        if not seg.flags & RST:
            send_reset(self.sock, seg, self.port, self._ack_to(key))

    def _retire(self, conn: Connection) -> None:
        self.ended[conn.key] = time.monotonic() + self.cfg.give_up
        self.ended.move_to_end(conn.key)
        del self.conns[conn.key]
        self.half_open.pop(conn.key, None)
        if conn.thread is not None:
            self.established -= 1
        conn.closed = True
        conn.close_queue()
        if conn.thread is not None:
            self.finished.put(conn)
        else:
            self.outdir.release(conn.name)  # refused at the SYN (too big): nothing written
