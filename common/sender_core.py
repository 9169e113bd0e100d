"""The sender's state machine: handshake, sending, ACKs, teardown.

Sans-I/O: every method takes the current time ``now`` and the segments the
peer sent; it leaves what must go on the wire in ``outbox`` (control
segments) and hands data segments out through :meth:`SenderCore.take`; the
threads around it send them.  No socket, thread, file or clock in here.

Offsets are absolute stream offsets: byte 0 is the first byte of the file,
the SYN sits at -1 and the FIN at the file size.  Only ``Segment`` objects
carry wrapped 32-bit sequence numbers.

This module is the connection (docs/ARCHITECTURE.md): its states, the
handshake, the teardown, the give-up timer, and the segments on the wire.
The data path, from the first byte queued to the FIN acknowledged, is
:class:`common.transfer.Transfer`, which composes the parts that own that
data: the send queue, the scoreboard, recovery (which segments are lost,
the timers), the congestion controller and the pacer (how much may be in
flight, how fast) and the peer's window.

Modes (PROTOCOL.md): ``gbn``, one timer and every outstanding segment
resent; ``sr``, SACK, a timer per segment and only the holes resent.
Without the peer's SACK-permitted ``sr`` behaves as ``gbn``, since the peer
then drops what arrives out of order.
"""

from __future__ import annotations

from enum import Enum
from typing import NamedTuple

from .pacing import PACE_GAIN
from .rtt import RttEstimator
from .scoreboard import Outstanding
from .segment import ACK, FIN, PSH, RST, SYN, Segment
from .sender_stats import Stats
from .seq import unwrap, wrap
from .transfer import Transfer

#: The window we advertise: the sender receives nothing but control segments.
SENDER_WINDOW = 0xFFFF
DEFAULT_MSS = 1452
#: RFC 9293 §3.7.1: the MSS to assume when the peer sends none.
DEFAULT_PEER_MSS = 536

__all__ = ["FINAL_STATES", "Outstanding", "SenderCore", "SenderState", "SenderView", "Stats"]


class SenderState(Enum):
    CLOSED = "CLOSED"
    SYN_SENT = "SYN_SENT"
    ESTABLISHED = "ESTABLISHED"
    FIN_WAIT_1 = "FIN_WAIT_1"
    FIN_WAIT_2 = "FIN_WAIT_2"
    TIME_WAIT = "TIME_WAIT"
    DONE = "DONE"
    ABORTED = "ABORTED"


#: States in which the connection is over, one way or the other.
FINAL_STATES = (SenderState.DONE, SenderState.ABORTED)
#: States in which the connection is established (data, then the FIN, may go).
OPEN_STATES = (SenderState.ESTABLISHED, SenderState.FIN_WAIT_1)


class SenderView(NamedTuple):
    """What a thread may read of the core outside the lock: a copy, taken under it."""

    state: SenderState
    base: int  # the wire number of stream offset 0
    snd_una: int
    snd_nxt: int
    srtt: float | None
    rto: float  # the timeout the timers use


class SenderCore:
    """The sending end of one connection."""

    def __init__(self, *, isn: int, file_size: int | None, mode: str = "sr",
                 mss: int = DEFAULT_MSS, window: int = 1 << 20,
                 rtt: RttEstimator | None = None, retries: int = 10, give_up: float = 30.0,
                 time_wait: float | None = None, src_port: int = 0, dst_port: int = 0,
                 trace: bool = False, pacing: float = PACE_GAIN,
                 congestion_control: str = "none"):
        if mode not in ("gbn", "sr"):
            raise ValueError(f"mode must be gbn or sr, not {mode!r}")
        if window < mss:
            raise ValueError(f"the window ({window} bytes) must hold one MSS ({mss} bytes)")
        self.isn = isn & 0xFFFFFFFF
        self.base = (self.isn + 1) & 0xFFFFFFFF  # wire number of stream offset 0
        self.file_size = file_size
        self.mode = mode
        self.mss = mss
        self.rtt = rtt or RttEstimator()
        self.retries = retries
        self.give_up = give_up
        self.time_wait = time_wait
        self.src_port = src_port
        self.dst_port = dst_port
        self.trace = trace
        self.events: list[tuple] = []  # (t, ev, fields): state changes always, the rest if trace
        self.stats = Stats()
        self.outbox: list[Segment] = []

        self.transfer = t = Transfer(mss=mss, window=window, rtt=self.rtt, stats=self.stats,
                                     retries=retries, give_up=give_up, emit=self._event,
                                     trace=trace, pacing=pacing,
                                     congestion_control=congestion_control)
        # (the data path's parts, for the programs' and the tests' reading)
        self.queue, self.board, self.recovery, self.cc = t.queue, t.board, t.recovery, t.cc
        self.pacer, self.flow = t.pacer, t.flow

        self.state = SenderState.CLOSED
        self.error: str | None = None
        self.delivered = False  # the peer acknowledged our FIN: file verified
        self.delivered_at: float | None = None
        self.eff_mss = mss
        self.sack_ok = False
        self.gbn = True  # until the handshake says SACK is on
        self.irs = 0
        self.handshake_done = False
        self.established_at: float | None = None  # when the SYN-ACK came
        self.rcv_nxt = 0  # wire number we expect from the peer (its FIN)
        self._in_burst = False  # on_segments: loss detection waits for the burst's end
        self._syn_sent_at = 0.0
        self._syn_deadline: float | None = None
        self._syn_rexmits = 0
        self._tw_deadline: float | None = None
        self._fin_record: Outstanding | None = None
        self._open = False  # wants_data(): established, no FIN sent yet
        self.digest: bytes | None = None
        self.last_heard = 0.0

    # ------------------------------------------------------------------ helpers
    def _event(self, now: float, ev: str, **fields) -> None:
        self.events.append((now, ev, fields))

    def _set_state(self, new: SenderState, now: float) -> None:
        self._event(now, "state", old=self.state.value, new=new.value)  # always: rare
        self.state = new
        # (every change of _fin_record comes with a change of state)
        self._open = new in OPEN_STATES and self._fin_record is None

    def abort(self, now: float, reason: str) -> None:
        """Give up the connection: an RST to the peer, and ``error`` says why."""
        if self.state in FINAL_STATES:
            return
        send_rst = self.state != SenderState.CLOSED
        self.error = reason
        self._set_state(SenderState.ABORTED, now)
        self.transfer.recovery.rexmit.clear()
        if send_rst:
            # RFC 5961: the peer takes an RST only inside its window, which
            # starts somewhere in [snd_una, snd_nxt] (ACKs may have been lost):
            # one at each end covers it.
            text = reason.encode()[:200]
            self.outbox.append(self._control(RST | ACK, seq_off=self.snd_una, payload=text))
            if self.snd_nxt != self.snd_una:
                self.outbox.append(self._control(RST | ACK, payload=text))

    def _control(self, flags: int, seq_off: int | None = None, payload: bytes = b"") -> Segment:
        off = self.snd_nxt if seq_off is None else seq_off
        return Segment(seq=wrap(off, self.base), ack=self.rcv_nxt, flags=flags,
                       window=SENDER_WINDOW, payload=payload, src_port=self.src_port,
                       dst_port=self.dst_port)

    def segment_for(self, rec: Outstanding) -> Segment:
        """The segment that carries ``rec`` on the wire (new or again)."""
        if rec.fin:
            return Segment(seq=wrap(rec.off, self.base), ack=self.rcv_nxt, flags=FIN | ACK,
                           window=SENDER_WINDOW, src_port=self.src_port,
                           dst_port=self.dst_port, digest=self.digest)
        # PSH on the segment that ends the file, as a TCP stack would set it.
        flags = ACK | PSH if rec.end == self.file_size else ACK
        return Segment(seq=wrap(rec.off, self.base), ack=self.rcv_nxt, flags=flags,
                       window=SENDER_WINDOW, payload=rec.payload, src_port=self.src_port,
                       dst_port=self.dst_port)

    def data_header_fields(self) -> tuple[int, int, int, int, int, int]:
        """What the header of every data segment shares, for a caller that
        builds it from the record alone (``take(segments=False)``): source and
        destination port, ``base`` (the wire number of offset 0), the
        acknowledgment number, the window field, and the offset where the file
        ends (the segment ending there carries PSH; -1 if unknown)."""
        end = self.file_size if self.file_size is not None else -1
        return (self.src_port, self.dst_port, self.base, self.rcv_nxt, SENDER_WINDOW, end)

    def view(self) -> SenderView:
        """A copy of what the threads read outside the lock (call it under the lock)."""
        return SenderView(self.state, self.base, self.snd_una, self.snd_nxt, self.rtt.srtt,
                          self.recovery.rto())

    @property
    def timer_rto(self) -> float:
        """The timeout the timers actually use (the RTO, capped; common.recovery)."""
        return self.recovery.rto()

    @property
    def window(self) -> int:
        """How many bytes may be in flight: the congestion controller's window."""
        return self.cc.cwnd

    @property
    def right_edge(self) -> int:
        """The stream offset the peer's advertised window ends at."""
        return self.flow.right_edge

    @property
    def peer_window(self) -> int:
        """The peer's window as last advertised, in bytes."""
        return self.flow.window

    @property
    def snd_wscale(self) -> int:
        return self.flow.wscale

    @property
    def snd_una(self) -> int:
        """The oldest byte not yet acknowledged (stream offset)."""
        return self.transfer.snd_una

    @property
    def snd_nxt(self) -> int:
        """The next byte to send for the first time (stream offset)."""
        return self.transfer.snd_nxt

    @property
    def outstanding(self) -> int:
        """Bytes sent and not cumulatively acknowledged."""
        return self.snd_nxt - self.snd_una

    @property
    def in_flight(self) -> int:
        """Bytes sent and neither cumulatively nor selectively acknowledged (the pipe)."""
        return self.transfer.in_flight

    @property
    def finished(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def established(self) -> bool:
        return self.state in OPEN_STATES

    @property
    def syns_sent(self) -> int:
        """SYNs sent so far, resends included."""
        if self.state == SenderState.CLOSED:
            return 0
        return min(self._syn_rexmits, self.retries) + 1  # (the last count may be the abort)

    # ---------------------------------------------------------------- handshake
    def start(self, now: float) -> None:
        """Open the connection: queue the SYN."""
        if self.state != SenderState.CLOSED:
            raise RuntimeError("start() called twice")
        self.last_heard = now
        self._set_state(SenderState.SYN_SENT, now)
        self._send_syn(now)

    def _send_syn(self, now: float) -> None:
        self.outbox.append(Segment(
            seq=self.isn, ack=0, flags=SYN, window=SENDER_WINDOW, src_port=self.src_port,
            dst_port=self.dst_port, mss=self.mss, wscale=0, sack_permitted=self.mode == "sr",
            file_size=self.file_size,
        ))
        self._syn_sent_at = now
        self._syn_deadline = now + self.recovery.rto()

    def _on_syn_ack(self, seg: Segment, now: float) -> None:
        self.irs = seg.seq
        self.rcv_nxt = (seg.seq + 1) & 0xFFFFFFFF
        self.eff_mss = min(self.mss, seg.mss if seg.mss else DEFAULT_PEER_MSS)
        if self.eff_mss <= 0:
            self.abort(now, "the receiver announced an MSS of 0")
            return
        self.sack_ok = self.mode == "sr" and seg.sack_permitted
        self.gbn = not self.sack_ok
        self.transfer.on_path(self.eff_mss, self.sack_ok, seg.window, seg.wscale)
        if self._syn_rexmits == 0:
            self.recovery.sample(now - self._syn_sent_at, now)
        self._syn_deadline = None
        self.handshake_done = True
        self.established_at = now
        self._set_state(SenderState.ESTABLISHED, now)
        self.outbox.append(self._control(ACK))

    # -------------------------------------------------------------- sending data
    def supply(self, chunks, residues=None) -> None:
        """Hand over file data: MSS-sized ``chunks`` (and their ones'
        complement residues, or None), the core's from now on."""
        self.queue.push(chunks, residues, self.eff_mss if self.handshake_done else None)

    def end_of_stream(self, digest: bytes | None) -> None:
        """No data follows what was supplied; ``digest`` is the file's SHA-256."""
        self.queue.finish(digest)

    def wants_data(self) -> bool:
        """Whether data may still go: established, and no FIN sent yet."""
        return self._open

    def room(self) -> int:
        """New bytes the windows let us send now (Transfer.room)."""
        return self.transfer.room() if self._open else 0

    def take(self, now: float, max_new: int = 64,
             segments: bool = True) -> list[tuple[Segment | None, Outstanding | None]]:
        """Everything due on the wire now, in order: control segments,
        retransmissions, then new data from the queue (supply), each chunk
        one segment, as far as the windows and the pacer allow (at most
        ``max_new``); then the FIN once the stream has ended and every byte
        is sent.  Returns (segment, record) pairs; the record is None for
        control segments.  ``segments=False`` leaves the segment of a data
        record out (None): a caller that builds the header from the record
        itself (:meth:`data_header_fields`) saves making one object per
        segment."""
        out: list[tuple[Segment | None, Outstanding | None]] = []
        t = self.transfer
        t.pacer.deadline = None  # set again if pacing holds new data back
        if self.outbox:
            out.extend((seg, None) for seg in self.outbox)
            self.outbox.clear()
        if self.state in FINAL_STATES:
            return out
        if t.recovery.rexmit:
            for rec in t.recovery.take_resends(now, t.snd_una):
                out.append((self.segment_for(rec) if segments or rec.fin else None, rec))
        if not self._open:
            return out
        fresh = t.take_new(now, max_new)
        if fresh:
            if segments:
                out.extend((self.segment_for(rec), rec) for rec in fresh)
            else:
                out.extend((None, rec) for rec in fresh)
        queue = t.queue
        if (queue.eof and not queue.chunks and self._fin_record is None
                and (self.file_size is None or t.snd_nxt == self.file_size)):
            if self.file_size is None:
                self.file_size = t.snd_nxt
            self.digest = queue.digest
            rec = Outstanding(t.snd_nxt, b"", 0, True, now, False)
            self._fin_record = rec
            t.register([rec])
            self._set_state(SenderState.FIN_WAIT_1, now)
            out.append((self.segment_for(rec), rec))
        t.after_take(now, bool(out), self._open)
        return out

    @property
    def pace_deadline(self) -> float | None:
        """When new data held back by pacing (only) may go; None if none is."""
        return self.pacer.deadline

    # ------------------------------------------------------------ receiving ACKs
    def on_segment(self, seg: Segment, now: float) -> None:
        """A segment from the peer (the caller checked its source address)."""
        self.stats.segments_received += 1
        st = self.state
        if st in FINAL_STATES or st == SenderState.CLOSED:
            return
        if st == SenderState.SYN_SENT:
            acks_syn = bool(seg.flags & ACK) and seg.ack == self.base
            if seg.flags & RST:
                if acks_syn:
                    self.last_heard = now
                    self._peer_reset(seg, now)
                return
            if seg.flags & SYN and acks_syn:
                self.last_heard = now
                self._on_syn_ack(seg, now)
            return
        if seg.flags & RST:
            # RFC 5961 §3.2: only an exact match resets (our receive window is 0).
            if seg.seq == self.rcv_nxt:
                self.last_heard = now
                self._peer_reset(seg, now)
            return
        if seg.flags & SYN:
            if seg.seq == self.irs and seg.flags & ACK:
                # Our third ACK was lost and the peer resent its SYN-ACK.
                self.last_heard = now
                self.outbox.append(self._control(ACK))
            return
        if not seg.flags & ACK:
            return
        t = self.transfer
        ack_off = unwrap(seg.ack, self.base, t.snd_una)
        if ack_off > t.snd_nxt or ack_off < t.snd_una - (1 << 30):
            return  # acknowledges what we never sent, or hopelessly old
        self.last_heard = now
        self.stats.acks_received += 1
        if ack_off >= t.snd_una:
            t.on_ack(seg, ack_off, self.base, now, self._open)
            fin = self._fin_record
            if fin is not None and ack_off >= fin.end:
                self._fin_acked(now)
            if not self._in_burst or t.recovery.gave_up is not None:
                self._acks_done(now)
        if seg.flags & FIN:
            self._on_peer_fin(seg, now)

    def on_segments(self, segs, now: float) -> None:
        """Segments from the peer read together at ``now``, in order: each is
        taken as :meth:`on_segment` takes it, but loss detection (the SACK
        rule, then RACK's pass over the timers) runs once, after the last,
        and so does the congestion controller's news.  Nothing is lost by
        that: with one ``now``, the last pass sees the newest delivery and
        the fullest scoreboard of the burst, so it marks every segment an
        earlier pass would have, except those a later ACK of the burst
        reported delivered (which an earlier pass would have queued, for
        take() to skip).  The resends may be queued in another order: by
        rule here, by ACK there."""
        self._in_burst = True
        try:
            for seg in segs:
                self.on_segment(seg, now)
        finally:
            self._in_burst = False
        if self.state not in FINAL_STATES:
            self._acks_done(now)

    def _peer_reset(self, seg: Segment, now: float) -> None:
        why = bytes(seg.payload[:200]).decode("ascii", "replace").strip()
        self.abort(now, "the receiver reset the connection" + (f": {why}" if why else ""))
        self.outbox.clear()  # never answer an RST with an RST

    def _fin_acked(self, now: float) -> None:
        """The peer acknowledged our FIN: it has the file, verified."""
        self.delivered = True
        self.delivered_at = now
        self._fin_record = None
        self._set_state(SenderState.FIN_WAIT_2, now)

    def _acks_done(self, now: float) -> None:
        """The end of the ACKs read together (Transfer.acks_done)."""
        if self.state in FINAL_STATES:
            return
        reason = self.transfer.acks_done(now)
        if reason:
            self.abort(now, reason)

    def _on_peer_fin(self, seg: Segment, now: float) -> None:
        fin_seq = (seg.seq + len(seg.payload)) & 0xFFFFFFFF
        if self.state == SenderState.FIN_WAIT_2 and fin_seq == self.rcv_nxt:
            self.rcv_nxt = (self.rcv_nxt + 1) & 0xFFFFFFFF
            self.outbox.append(self._control(ACK))
            self._set_state(SenderState.TIME_WAIT, now)
            self._tw_deadline = now + self._time_wait()
        elif self.state == SenderState.TIME_WAIT and (fin_seq + 1) & 0xFFFFFFFF == self.rcv_nxt:
            # Our last ACK was lost: acknowledge again and wait anew (RFC 9293 §3.10.7.4).
            self.outbox.append(self._control(ACK))
            self._tw_deadline = now + self._time_wait()

    def _time_wait(self) -> float:
        # 2 x RTO (PROTOCOL.md), of the estimate itself: the backoff of a lossy
        # tail says nothing about how soon the peer resends its FIN.
        if self.time_wait is not None:
            return self.time_wait
        return 2 * min(self.rtt.base_rto, self.recovery.rto_ceiling)

    # ---------------------------------------------------------------- timers
    def next_deadline(self) -> float | None:
        """When ``on_timer`` must next run, or None when no timer is pending."""
        st = self.state
        if st in FINAL_STATES or st == SenderState.CLOSED:
            return None
        if st == SenderState.TIME_WAIT:
            return self._tw_deadline
        first = self.last_heard + self.give_up
        if st == SenderState.SYN_SENT:
            return min(first, self._syn_deadline)
        if st != SenderState.FIN_WAIT_2:
            due = self.transfer.next_deadline()
            if due is not None and due < first:
                first = due
        return first

    def on_timer(self, now: float) -> None:
        """Fire every timer that is due at ``now``."""
        st = self.state
        if st in FINAL_STATES or st == SenderState.CLOSED:
            return
        if st == SenderState.TIME_WAIT:
            if now >= self._tw_deadline:
                self._set_state(SenderState.DONE, now)
            return
        if now >= self.last_heard + self.give_up:
            if st == SenderState.FIN_WAIT_2:
                # The file is verified; only the receiver's FIN is missing.
                self.error = None
                self._set_state(SenderState.DONE, now)
            else:
                self.abort(now, f"nothing heard from the receiver for {self.give_up:g} s")
            return
        if st == SenderState.SYN_SENT:
            if now >= self._syn_deadline:
                self._syn_timeout(now)
            return
        if st == SenderState.FIN_WAIT_2:
            return
        reason = self.transfer.on_timer(now, self.last_heard)
        if reason:
            self.abort(now, reason)

    def _syn_timeout(self, now: float) -> None:
        self._syn_rexmits += 1
        if self._syn_rexmits > self.retries:
            self.abort(now, f"no answer to {self.retries + 1} SYNs; is the receiver running?")
            return
        self.recovery.backoff(now)
        self.stats.rexmit_timeout += 1
        self.stats.timeouts += 1
        if self.trace:
            self._event(now, "timeout", rto=self.recovery.rto(), n=1)
        self._send_syn(now)
