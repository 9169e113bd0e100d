"""The receiver's state machine: handshake, reassembly, flow control, teardown.

Sans-I/O like the sender's core: methods take the segment and ``now``, and
leave what to do in two lists the network thread drains: ``outbox``
(segments to send) and ``deliver`` (in-order bytes for the writer).  The
writer reports what it wrote with ``on_written`` and the end-to-end check with
``on_verified``.

This module holds the stream and its data path (what is delivered, what
is held, what is refused); the parts that own data of their own are split
out, by what they own: the ACK policy is :mod:`common.rcv_acks`'s, the
opening and closing handshakes (the SYN's options, the resume, the
timestamp to echo, the FINs) :mod:`common.rcv_handshake`'s, both base
classes of :class:`ReceiverCore`, so the per-segment path calls them
directly.  What arrived past a hole is :mod:`common.reassembly`'s; the
buffer and the window advertised are :mod:`common.rcv_window`'s (a slow
disk shrinks the window to zero; once the writer frees room again a window
update goes out); the states and statistics are :mod:`common.rcv_state`'s.
"""

from __future__ import annotations

from .ackclock import ACK_EVERY_SEGMENTS
from .rcv_acks import AckPolicy
from .rcv_handshake import Handshake
from .rcv_state import FINAL_STATES, ReceiverState, ReceiverView, Stats
from .rcv_window import ReceiveWindow
from .reassembly import Reassembly
from .rtt import RttEstimator
from .segment import ACK, FIN, RST, SYN, Segment
from .seq import unwrap

__all__ = ["DEFAULT_CAPACITY", "FINAL_STATES", "ReceiverCore", "ReceiverState",
           "ReceiverView", "Stats"]

DEFAULT_CAPACITY = 4 << 20


class ReceiverCore(AckPolicy, Handshake):
    """The receiving end of one connection."""

    def __init__(
        self,
        *,
        isn: int,
        mode: str = "sr",
        mss: int = 1452,
        capacity: int = DEFAULT_CAPACITY,
        size_limit: int | None = None,
        rtt: RttEstimator | None = None,
        retries: int = 10,
        give_up: float = 30.0,
        src_port: int = 0,
        dst_port: int = 0,
        trace: bool = False,
        ack_per_burst: bool = False,
        delayed_ack: float | None = None,
        ack_every: int = ACK_EVERY_SEGMENTS,
        timestamps: bool = True,
        resume_offer: tuple[int, bytes] | None = None,
    ):
        if mode not in ("gbn", "sr"):
            raise ValueError(f"mode must be gbn or sr, not {mode!r}")
        if capacity < mss:
            raise ValueError(f"the buffer ({capacity} bytes) must hold one MSS ({mss})")
        self.isn = isn & 0xFFFFFFFF
        self.mode = mode
        self.mss = mss
        self.rwnd = ReceiveWindow(capacity, mss)  # the buffer and the window advertised
        self.size_limit = size_limit
        self.rtt = rtt or RttEstimator()
        self.retries = retries
        self.give_up = give_up
        self.src_port = src_port
        self.dst_port = dst_port
        self.trace = trace
        self._init_acks(ack_per_burst, ack_every, delayed_ack)
        self._init_handshake(timestamps, resume_offer)
        self._seg_size = 0  # the longest in-order segment seen (for runs' ACKs)
        self.events: list[tuple] = []

        self.state = ReceiverState.LISTEN
        self.error: str | None = None
        self.base = 0  # the peer's wire number of stream offset 0
        self.file_size: int | None = None
        self.rcv_nxt = 0  # stream offset
        self.reassembly = Reassembly()  # what arrived past a hole: pieces, SACK blocks
        self.last_heard = 0.0
        self.outbox: list[Segment] = []
        self.deliver: list[bytes] = []
        self.stats = Stats()

    # ---------------------------------------------------------------- helpers
    def _event(self, now: float, ev: str, **fields) -> None:
        self.events.append((now, ev, fields))

    def _set_state(self, new: ReceiverState, now: float) -> None:
        self._event(now, "state", old=self.state.value, new=new.value)  # always: rare
        self.state = new

    @property
    def finished(self) -> bool:
        return self.state in FINAL_STATES

    def view(self) -> ReceiverView:
        """A copy of what the threads read outside the lock (call it under the lock)."""
        return ReceiverView(self.state, self.base, self.rcv_nxt, self.file_size)

    @property
    def capacity(self) -> int:
        return self.rwnd.capacity

    @property
    def unwritten(self) -> int:
        """Bytes delivered to the writer and not yet written."""
        return self.rwnd.unwritten

    @property
    def right_edge(self) -> int:
        return self.rwnd.right_edge

    @property
    def last_window(self) -> int:
        return self.rwnd.last_window

    @property
    def rcv_wscale(self) -> int:
        return self.rwnd.wscale

    @property
    def ooo(self) -> dict[int, bytes]:
        """The pieces held out of order, by offset (read them, never change them)."""
        return self.reassembly.pieces

    @property
    def ooo_bytes(self) -> int:
        """Bytes held out of order."""
        return self.reassembly.held.covered

    def abort(self, now: float, reason: str, send_rst: bool = True) -> None:
        if self.state in FINAL_STATES:
            return
        self.error = reason
        if send_rst and self.state != ReceiverState.LISTEN:
            self.outbox.append(Segment(
                seq=(self.isn + 1) & 0xFFFFFFFF, ack=self._ack_no(), flags=RST | ACK,
                src_port=self.src_port, dst_port=self.dst_port,
                payload=reason.encode()[:200],
            ))
        self._set_state(ReceiverState.ABORTED, now)
        self.deliver.clear()

    # -------------------------------------------------------------- segments
    def accepts_run(self, seg: Segment) -> bool:
        """Whether ``seg``, several in-sequence data segments coalesced into
        one (common.batch.Run), may be taken as one rather than one by one.

        Two cases qualify, both wholly inside the window and the file:

        - the next data expected, with nothing held out of order: each piece
          would only have been delivered in order, the ACK left pending;
        - with SACK and ``ack_per_burst``, data wholly out of order that
          overlaps nothing held: each piece would only have been stored and
          counted toward the ACK held to the end of the burst.  Taken as one
          it is stored as one piece, and the ACK it draws says what the
          pieces' last ACK would have said; only the earlier ACKs the pieces
          would have drawn inside the same burst (every ACK_EVERY-th), which
          the program sends together at the burst's end anyway, are left
          out.

        Anything else (a FIN past a hole, a run that fills a gap or repeats
        held data) the caller splits."""
        if self.state != ReceiverState.ESTABLISHED or self._early_fin:
            return False
        rcv_nxt = self.rcv_nxt
        off = unwrap(seg.seq, self.base, rcv_nxt)
        end = off + len(seg.payload)
        if self.file_size is not None and end > self.file_size:
            return False
        if end > rcv_nxt + self.rwnd.size(rcv_nxt):
            return False
        if off == rcv_nxt:
            return not self.reassembly.pieces
        if off < rcv_nxt or not (self.sack_ok and self.ack_per_burst):
            return False
        return not self.reassembly.held.overlaps(off, end)

    def on_segment(self, seg: Segment, now: float, count: int = 1) -> None:
        """A segment from the peer (the caller checked its source address).

        ``count`` > 1: ``seg`` is that many data segments coalesced, which
        the caller checked with :meth:`accepts_run`; they count as that many
        in the statistics."""
        self.stats.segments_received += count
        st = self.state
        if st in FINAL_STATES:
            return
        if st == ReceiverState.LISTEN:
            if seg.flags & SYN and not seg.flags & (ACK | RST | FIN):
                self._on_syn(seg, now)
            return
        if seg.flags & RST:
            self._on_rst(seg, now)
            return
        if seg.flags & SYN:
            if seg.seq == self.irs and self._synack is not None and not seg.flags & ACK:
                self._on_syn_again(seg, now)
            return
        if not seg.flags & ACK:
            return
        if st == ReceiverState.SYN_RECEIVED and not self._on_handshake_ack(seg, now):
            return
        self.last_heard = now
        off = unwrap(seg.seq, self.base, self.rcv_nxt)  # (the segment's stream offset)
        if self.ts_ok and seg.ts_val is not None:
            self._take_ts(seg, off)
        if st == ReceiverState.LAST_ACK and seg.ack == (self.isn + 2) & 0xFFFFFFFF:
            self._set_state(ReceiverState.DONE, now)
            return
        if seg.payload:
            self._on_data(seg, off, now, count)
            early = self._early_fin
            if early is not None and early[0] == self.rcv_nxt and \
                    self.state == ReceiverState.ESTABLISHED:
                self._early_fin = None
                self._accept_fin(early[0], early[1], now)
        if seg.flags & FIN:
            self._on_fin(seg, now)

    def _on_rst(self, seg: Segment, now: float) -> None:
        # RFC 5961 §3: only an RST inside the receive window is taken.
        off = unwrap(seg.seq, self.base, self.rcv_nxt)
        win = self.rwnd.right_edge - self.rcv_nxt  # as advertised: not moved on here
        if off == self.rcv_nxt or self.rcv_nxt <= off < self.rcv_nxt + win:
            why = bytes(seg.payload[:200]).decode("ascii", "replace").strip()
            self.abort(now, "the sender reset the connection" + (f": {why}" if why else ""),
                       send_rst=False)

    def _on_data(self, seg: Segment, off: int, now: float, count: int = 1) -> None:
        if self.state != ReceiverState.ESTABLISHED:
            # Data after the FIN: a duplicate; acknowledge what we have.
            self.stats.duplicates += 1
            self._ack_now(now)
            return
        payload = seg.payload
        n = len(payload)
        end = off + n
        self.stats.data_segments += count
        self.stats.bytes_received += n
        rcv_nxt = self.rcv_nxt
        if end <= rcv_nxt:
            self.stats.duplicates += 1
            self._dsack = (off, end)
            self._ack_soon(now)
            return
        edge = rcv_nxt + self.rwnd.size(rcv_nxt)
        if self.file_size is not None and end > self.file_size:
            edge = min(edge, self.file_size)
        if off >= edge:
            self.stats.out_of_window += 1
            self._ack_now(now)  # also the answer to a zero-window probe
            return
        if end > edge:
            payload = payload[: edge - off]
            end = edge
        if off <= rcv_nxt:
            if off < rcv_nxt:
                payload = payload[rcv_nxt - off:]
            self.stats.in_order += count
            if self.reassembly.pieces:
                self._deliver(payload)
                for data in self.reassembly.pull(self.rcv_nxt):
                    self._deliver(data)
                self._ack_soon(now)  # RFC 5681 §4.2: a segment that fills a gap
            else:
                self._in_order(payload, count, now)
            return
        # Out of order.
        self.stats.out_of_order += count
        if self.mode == "sr":
            if not self.reassembly.store(off, bytes(payload)):
                self.stats.duplicates += 1
                self._dsack = (off, end)
        self._ack_soon(now, count)

    def _in_order(self, payload, count: int, now: float) -> None:
        """In-order data, ``count`` segments back to back (a coalesced run):
        delivered, with an ACK after every second segment (common.ackclock),
        each saying what that segment's own ACK would; the rest is pending."""
        clock = self.ack_clock
        n = len(payload)
        if count == 1:
            if n > self._seg_size:
                self._seg_size = n
            size = n
        else:
            # The run's segments are as long as the longest seen (the
            # sender's MSS), but the last may be shorter.
            size = max(-(-n // count), self._seg_size)
            payload = memoryview(payload)  # its pieces delivered without a copy each
        start = 0
        for i in range(1, count + 1):
            if clock.on_segment(now):
                end = min(i * size, n)
                self._deliver(payload[start:end])
                start = end
                self._ack_now(now)
        if start < n:
            self._deliver(payload[start:])

    def _deliver(self, data) -> None:
        n = len(data)
        self.deliver.append(data)
        self.rcv_nxt += n
        self.rwnd.unwritten += n
        self.stats.bytes_delivered += n

    # ----------------------------------------------------------- writer side
    def on_written(self, n: int, now: float) -> None:
        """The writer wrote ``n`` bytes; room opens in the buffer."""
        if self.rwnd.written(n, self.rcv_nxt, self.state == ReceiverState.ESTABLISHED):
            self.stats.window_updates += 1
            self._ack_now(now)

    # ---------------------------------------------------------------- timers
    def next_deadline(self) -> float | None:
        st = self.state
        if st in FINAL_STATES or st == ReceiverState.LISTEN:
            return None
        if st == ReceiverState.LAST_ACK:
            return min(self._fin_deadline, self.last_heard + self.give_up)
        if st == ReceiverState.CLOSE_WAIT:
            return None  # the writer decides; the sender keeps resending its FIN
        first = self.last_heard + self.give_up
        clock = self.ack_clock
        if clock.unacked and clock.deadline is not None and clock.deadline < first:
            return clock.deadline  # the delayed-ACK timer
        return first

    def on_timer(self, now: float) -> None:
        st = self.state
        if st == ReceiverState.LAST_ACK:
            self._last_ack_timer(now)
            return
        if st in (ReceiverState.SYN_RECEIVED, ReceiverState.ESTABLISHED):
            if self.ack_clock.due(now):
                self.ack_clock.fired()
                self._ack_now(now)
            if now >= self.last_heard + self.give_up:
                self.abort(now, f"nothing heard from the sender for {self.give_up:g} s")
