"""The receiver's state machine: handshake, reassembly, flow control, teardown.

Sans-I/O like the sender's core: methods take the segment and ``now``, and
leave what to do in two lists the network thread drains: ``outbox``
(segments to send) and ``deliver`` (in-order bytes for the writer).  The
writer reports what it wrote with ``on_written`` and the end-to-end check with
``on_verified``.

What arrived past a hole is :mod:`common.reassembly`'s; the buffer and the
window advertised are :mod:`common.rcv_window`'s (a slow disk shrinks the
window to zero; once the writer frees room again a window update goes out).
"""

from __future__ import annotations

from enum import Enum
from typing import NamedTuple

from .rcv_window import ReceiveWindow
from .reassembly import Reassembly
from .rtt import RttEstimator
from .segment import ACK, FIN, RST, SYN, Segment
from .seq import unwrap, wrap

DEFAULT_CAPACITY = 4 << 20
#: With ack_per_burst, at least every this many out-of-order arrivals (or
#: gap fills, or duplicates) get an ACK at once (see _ack_soon).
ACK_EVERY = 8
#: FIN resends in LAST_ACK before the receiver stops waiting for the final ACK.
LAST_ACK_RETRIES = 3


class ReceiverState(Enum):
    LISTEN = "LISTEN"
    SYN_RECEIVED = "SYN_RECEIVED"
    ESTABLISHED = "ESTABLISHED"
    CLOSE_WAIT = "CLOSE_WAIT"  # the FIN is in: the writer is finishing and verifying
    LAST_ACK = "LAST_ACK"
    DONE = "DONE"
    ABORTED = "ABORTED"


FINAL_STATES = (ReceiverState.DONE, ReceiverState.ABORTED)


class ReceiverView(NamedTuple):
    """What a thread may read of the core outside the lock: a copy, taken under it."""

    state: ReceiverState
    base: int  # the peer's wire number of stream offset 0
    rcv_nxt: int
    file_size: int | None


class Stats:
    __slots__ = ("segments_received", "bytes_received", "data_segments", "in_order",
                 "out_of_order", "duplicates", "out_of_window", "acks_sent",
                 "window_updates", "zero_windows", "fin_rexmits", "bytes_delivered")

    def __init__(self):
        for name in self.__slots__:
            setattr(self, name, 0)

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


class ReceiverCore:
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
        self.ack_per_burst = ack_per_burst  # see _ack_soon
        self._held_acks = 0  # ACKs _ack_soon held back since the last one sent
        self.events: list[tuple] = []

        self.state = ReceiverState.LISTEN
        self.error: str | None = None
        self.irs = 0
        self.base = 0  # the peer's wire number of stream offset 0
        self.file_size: int | None = None
        self.digest: bytes | None = None  # the sender's SHA-256, from its FIN
        self.fin_off: int | None = None
        self._early_fin: tuple[int, bytes | None] | None = None  # a FIN past a hole
        self.sack_ok = False
        self.rcv_nxt = 0  # stream offset
        self.reassembly = Reassembly()  # what arrived past a hole: pieces, SACK blocks
        self.ack_pending = False
        self._dsack: tuple[int, int] | None = None  # a duplicate to report (RFC 2883)
        self.last_heard = 0.0
        self._synack: Segment | None = None
        self._synack_at = 0.0
        self._fin_deadline: float | None = None
        self._fin_rexmits = 0
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

    def _ack_no(self) -> int:
        off = self.rcv_nxt + (1 if self.state in (ReceiverState.LAST_ACK, ReceiverState.DONE)
                              else 0)
        return wrap(off, self.base)

    def make_ack(self, now: float, flags: int = ACK) -> Segment:
        field, closes = self.rwnd.advertise(self.rcv_nxt)
        if closes:
            self.stats.zero_windows += 1
        sack = ()
        if self.sack_ok:
            sack = self.reassembly.sack_blocks(self.base) if self.reassembly.pieces else ()
            if self._dsack is not None:
                # RFC 2883: a duplicate is reported once, as the first block.
                left, right = self._dsack
                self._dsack = None
                sack = ((wrap(left, self.base), wrap(right, self.base)),) + sack[:3]
        self.ack_pending = False
        self._held_acks = 0
        self.reassembly.fresh = 0
        self.stats.acks_sent += 1
        if self.trace:
            self._event(now, "rwnd", win=self.rwnd.last_window, queue=self.rwnd.unwritten,
                        ooo=self.ooo_bytes)
        seq_off = 1 if self.state in (ReceiverState.LAST_ACK, ReceiverState.DONE) else 0
        return Segment(
            seq=(self.isn + 1 + seq_off) & 0xFFFFFFFF, ack=self._ack_no(), flags=flags,
            window=field, src_port=self.src_port, dst_port=self.dst_port, sack=sack,
        )

    def _ack_now(self, now: float) -> None:
        self.outbox.append(self.make_ack(now))

    def flush_ack(self, now: float) -> None:
        """Send the cumulative ACK that in-order arrivals left pending."""
        if self.ack_pending:
            self._ack_now(now)

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
                # A retransmitted SYN: the same SYN-ACK again.
                self.last_heard = now
                self.outbox.append(self._synack)
            return
        if not seg.flags & ACK:
            return
        if st == ReceiverState.SYN_RECEIVED:
            if seg.ack != (self.isn + 1) & 0xFFFFFFFF:
                return
            if self._synack is not None:
                self.rtt.on_sample(now - self._synack_at)
            self._set_state(ReceiverState.ESTABLISHED, now)
        self.last_heard = now
        if st == ReceiverState.LAST_ACK and seg.ack == (self.isn + 2) & 0xFFFFFFFF:
            self._set_state(ReceiverState.DONE, now)
            return
        if seg.payload:
            self._on_data(seg, now, count)
            early = self._early_fin
            if early is not None and early[0] == self.rcv_nxt and \
                    self.state == ReceiverState.ESTABLISHED:
                self._early_fin = None
                self._accept_fin(early[0], early[1], now)
        if seg.flags & FIN:
            self._on_fin(seg, now)

    def _on_syn(self, seg: Segment, now: float) -> None:
        self.irs = seg.seq
        self.base = (seg.seq + 1) & 0xFFFFFFFF
        self.file_size = seg.file_size
        self.last_heard = now
        self.src_port, self.dst_port = self.src_port or seg.dst_port, self.dst_port or seg.src_port
        window = self.rwnd.on_syn(seg.wscale is not None)
        self.sack_ok = self.mode == "sr" and seg.sack_permitted
        self._set_state(ReceiverState.SYN_RECEIVED, now)
        if (self.size_limit is not None and seg.file_size is not None
                and seg.file_size > self.size_limit):
            self.abort(now, f"the file ({seg.file_size} bytes) is larger than this receiver "
                            f"accepts ({self.size_limit} bytes free or allowed)")
            return
        self._synack = Segment(
            seq=self.isn, ack=self.base, flags=SYN | ACK, window=window,
            src_port=self.src_port, dst_port=self.dst_port, mss=self.mss,
            wscale=self.rwnd.wscale if seg.wscale is not None else None,
            sack_permitted=self.sack_ok,
        )
        self._synack_at = now
        self.outbox.append(self._synack)

    def _on_rst(self, seg: Segment, now: float) -> None:
        # RFC 5961 §3: only an RST inside the receive window is taken.
        off = unwrap(seg.seq, self.base, self.rcv_nxt)
        win = self.rwnd.right_edge - self.rcv_nxt  # as advertised: not moved on here
        if off == self.rcv_nxt or self.rcv_nxt <= off < self.rcv_nxt + win:
            why = bytes(seg.payload[:200]).decode("ascii", "replace").strip()
            self.abort(now, "the sender reset the connection" + (f": {why}" if why else ""),
                       send_rst=False)

    def _on_data(self, seg: Segment, now: float, count: int = 1) -> None:
        if self.state != ReceiverState.ESTABLISHED:
            # Data after the FIN: a duplicate; acknowledge what we have.
            self.stats.duplicates += 1
            self._ack_now(now)
            return
        payload = seg.payload
        n = len(payload)
        off = unwrap(seg.seq, self.base, self.rcv_nxt)
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
            self._deliver(payload)
            if self.reassembly.pieces:
                for data in self.reassembly.pull(self.rcv_nxt):
                    self._deliver(data)
                self._ack_soon(now)  # RFC 5681 §4.2: a segment that fills a gap
            else:
                self.ack_pending = True
            return
        # Out of order.
        self.stats.out_of_order += count
        if self.mode == "sr":
            if not self.reassembly.store(off, bytes(payload)):
                self.stats.duplicates += 1
                self._dsack = (off, end)
        self._ack_soon(now, count)

    def _ack_soon(self, now: float, count: int = 1) -> None:
        """The ACK RFC 5681 §4.2 wants at once for out-of-order data, a gap
        filled or a duplicate.  With ``ack_per_burst`` and SACK on, it goes
        at the end of the burst being read (flush_ack) instead, one for all,
        as a TCP receiver behind GRO sends one ACK per coalesced batch: its
        SACK blocks say what every one of them would have said, newest
        first.  A receiver that keeps up reads one datagram per burst, so
        this changes nothing; one that falls behind sends fewer ACKs and
        spends its time on data.  Still, every ACK_EVERY-th goes at once, so
        that one lost ACK never hides a whole window of SACK news, and so does
        the one that finds as many blocks changed as an ACK can carry (four,
        three beside a D-SACK): one more would leave a block that changed
        unreported, and a sender takes what a SACK never reports as lost
        (found late, by RACK, or resent needlessly).  Without
        SACK, duplicate ACKs are all the sender has to go on: each goes at
        once."""
        if self.ack_per_burst and self.sack_ok:
            self._held_acks += count
            room = 4 if self._dsack is None else 3
            if self._held_acks < ACK_EVERY and self.reassembly.fresh < room:
                self.ack_pending = True
                return
        self._ack_now(now)

    def _deliver(self, data) -> None:
        n = len(data)
        self.deliver.append(data)
        self.rcv_nxt += n
        self.rwnd.unwritten += n
        self.stats.bytes_delivered += n

    def _on_fin(self, seg: Segment, now: float) -> None:
        fin_off = unwrap(seg.seq, self.base, self.rcv_nxt) + len(seg.payload)
        if self.state == ReceiverState.ESTABLISHED:
            if fin_off != self.rcv_nxt:
                # Data is missing before it: keep it (like out-of-order data) so
                # that the hole's repair ends the transfer without waiting for
                # the FIN to come again; say what we have.
                if self.rcv_nxt < fin_off <= self.rwnd.right_edge:
                    self._early_fin = (fin_off, seg.digest)
                self._ack_now(now)
                return
            self._accept_fin(fin_off, seg.digest, now)
        elif self.state == ReceiverState.CLOSE_WAIT:
            self._ack_now(now)
        elif self.state == ReceiverState.LAST_ACK:
            # Our ACK of the FIN was lost: both again.
            self.outbox.append(self.make_ack(now))
            self.outbox.append(self._fin_segment(now))

    def _accept_fin(self, fin_off: int, digest: bytes | None, now: float) -> None:
        self.fin_off = fin_off
        self.digest = digest
        self._set_state(ReceiverState.CLOSE_WAIT, now)
        if self.file_size is not None and fin_off != self.file_size:
            self.abort(now, f"the sender announced {self.file_size} bytes and sent "
                            f"{fin_off}")
            return
        if digest is None:
            self.abort(now, "the FIN carries no SHA-256 digest")
            return
        self._ack_now(now)  # data acknowledged; the FIN waits for the writer

    # ----------------------------------------------------------- writer side
    def on_written(self, n: int, now: float) -> None:
        """The writer wrote ``n`` bytes; room opens in the buffer."""
        if self.rwnd.written(n, self.rcv_nxt, self.state == ReceiverState.ESTABLISHED):
            self.stats.window_updates += 1
            self._ack_now(now)

    def on_verified(self, ok: bool, now: float, reason: str = "") -> None:
        """The writer finished: the file is on disk and its digest matched (or not)."""
        if self.state != ReceiverState.CLOSE_WAIT:
            return
        if not ok:
            self.abort(now, reason or "SHA-256 mismatch")
            return
        self._set_state(ReceiverState.LAST_ACK, now)
        self.outbox.append(self.make_ack(now))
        self.outbox.append(self._fin_segment(now))
        self._fin_deadline = now + self.rtt.rto

    def _fin_segment(self, now: float) -> Segment:
        return Segment(
            seq=(self.isn + 1) & 0xFFFFFFFF, ack=self._ack_no(), flags=FIN | ACK,
            window=self.rwnd.last_window >> self.rwnd.wscale, src_port=self.src_port,
            dst_port=self.dst_port,
        )

    # ---------------------------------------------------------------- timers
    def next_deadline(self) -> float | None:
        st = self.state
        if st in FINAL_STATES or st == ReceiverState.LISTEN:
            return None
        if st == ReceiverState.LAST_ACK:
            return min(self._fin_deadline, self.last_heard + self.give_up)
        if st == ReceiverState.CLOSE_WAIT:
            return None  # the writer decides; the sender keeps resending its FIN
        return self.last_heard + self.give_up

    def on_timer(self, now: float) -> None:
        st = self.state
        if st == ReceiverState.LAST_ACK:
            if now >= self.last_heard + self.give_up:
                self._set_state(ReceiverState.DONE, now)  # the file is complete anyway
            elif now >= self._fin_deadline:
                self._fin_rexmits += 1
                # The file is complete and renamed: only the sender's last ACK
                # is missing, and it may have left already (TIME-WAIT is short).
                if self._fin_rexmits > min(self.retries, LAST_ACK_RETRIES):
                    self._set_state(ReceiverState.DONE, now)
                    return
                self.stats.fin_rexmits += 1
                self.rtt.on_timeout()
                self.outbox.append(self._fin_segment(now))
                self._fin_deadline = now + self.rtt.rto
            return
        if st in (ReceiverState.SYN_RECEIVED, ReceiverState.ESTABLISHED):
            if now >= self.last_heard + self.give_up:
                self.abort(now, f"nothing heard from the sender for {self.give_up:g} s")
