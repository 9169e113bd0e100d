"""The sender's state machine: handshake, sending, ACKs, teardown.

Sans-I/O: every method takes the current time ``now`` and the segments the
peer sent; it leaves what must go on the wire in ``outbox`` (control
segments) and hands data segments out through :meth:`SenderCore.take`; the
threads around it send them.  No socket, thread, file or clock in here.

Offsets are absolute stream offsets: byte 0 is the first byte of the file,
the SYN sits at -1 and the FIN at the file size.  Only ``Segment`` objects
carry wrapped 32-bit sequence numbers.

The core composes the parts that own the data (docs/ARCHITECTURE.md):
:mod:`common.sendqueue` (bytes not yet sent), :mod:`common.scoreboard`
(bytes sent and not yet acknowledged, SACK), :mod:`common.recovery` (which
are lost, the timers), :mod:`common.pacing` and :mod:`common.congestion`
(how much may be in flight).

Modes (PROTOCOL.md): ``gbn``, one timer and every outstanding segment
resent; ``sr``, SACK, a timer per segment and only the holes resent.
Without the peer's SACK-permitted ``sr`` behaves as ``gbn``, since the peer
then drops what arrives out of order.
"""

from __future__ import annotations

from enum import Enum
from typing import NamedTuple

from . import congestion
from .flow import PeerWindow
from .pacing import PACE_GAIN, Pacer
from .rack import NO_DELIVERY
from .recovery import Recovery
from .rtt import RttEstimator
from .scoreboard import Outstanding, Scoreboard
from .segment import ACK, FIN, PSH, RST, SYN, Segment
from .sender_stats import Stats
from .sendqueue import SendQueue
from .seq import unwrap, wrap

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

        self.queue = SendQueue()
        self.board = Scoreboard()
        self.recovery = Recovery(self.board, self.rtt, self.stats, retries=retries,
                                 give_up=give_up, emit=self._event, trace=trace)
        self.cc = congestion.create(congestion_control, mss=mss, window=window)
        self.pacer = Pacer(pacing)
        self.flow = PeerWindow()
        self.cwnd_limited = False  # the last send stopped at cwnd (RFC 7661)
        self.recovery_point: int | None = None  # snd_nxt when loss recovery began
        self._acked_news = 0  # bytes newly acknowledged by the ACKs not yet told to cc

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
        self.snd_una = 0
        self.snd_nxt = 0
        self._in_burst = False  # on_segments: loss detection waits for the burst's end
        self._syn_sent_at = 0.0
        self._syn_deadline: float | None = None
        self._syn_rexmits = 0
        self._tw_deadline: float | None = None
        self._fin_record: Outstanding | None = None
        self.digest: bytes | None = None
        self.last_heard = 0.0

    # ------------------------------------------------------------------ helpers
    def _event(self, now: float, ev: str, **fields) -> None:
        self.events.append((now, ev, fields))

    def _set_state(self, new: SenderState, now: float) -> None:
        self._event(now, "state", old=self.state.value, new=new.value)  # always: rare
        self.state = new

    def abort(self, now: float, reason: str) -> None:
        """Give up the connection: an RST to the peer, and ``error`` says why."""
        if self.state in FINAL_STATES:
            return
        send_rst = self.state != SenderState.CLOSED
        self.error = reason
        self._set_state(SenderState.ABORTED, now)
        self.recovery.rexmit.clear()
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
    def outstanding(self) -> int:
        """Bytes sent and not cumulatively acknowledged."""
        return self.snd_nxt - self.snd_una

    @property
    def in_flight(self) -> int:
        """Bytes sent and neither cumulatively nor selectively acknowledged (the pipe)."""
        return self.snd_nxt - self.snd_una - self.board.sacked.covered

    @property
    def finished(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def established(self) -> bool:
        return self.state in (SenderState.ESTABLISHED, SenderState.FIN_WAIT_1)

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
        self.gbn = self.recovery.gbn = not self.sack_ok
        self.recovery.mss = self.eff_mss
        self.queue.fit(self.eff_mss)  # read ahead in our MSS: the peer's may be smaller
        self.flow.on_syn_ack(seg.window, seg.wscale)
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
        return self.established and self._fin_record is None

    def room(self) -> int:
        """New bytes the windows let us send now: the congestion window bounds
        the pipe (bytes neither cumulatively nor selectively acknowledged,
        RFC 6675), so in sr mode sending goes on while a hole is repaired, as
        far as the receiver's advertised window lets it; in gbn mode, without
        SACK, the pipe is simply everything past snd_una."""
        if not self.wants_data():
            return 0
        limit = min(self.snd_una + self.cc.cwnd + self.board.sacked.covered,
                    self.flow.right_edge)
        return max(0, limit - self.snd_nxt)

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
        self.pacer.deadline = None  # set again below if pacing holds data back
        if self.outbox:
            out.extend((seg, None) for seg in self.outbox)
            self.outbox.clear()
        if self.state in FINAL_STATES:
            return out
        if self.recovery.rexmit:
            for rec in self.recovery.take_resends(now, self.snd_una):
                out.append((self.segment_for(rec) if segments or rec.fin else None, rec))
        if not self.wants_data():
            return out
        queue = self.queue
        chunks = queue.chunks
        if chunks and max_new > 0:
            right_edge = self.flow.right_edge
            cwnd_edge = self.snd_una + self.cc.cwnd + self.board.sacked.covered
            limit = min(cwnd_edge, right_edge)
            if self.snd_nxt + len(chunks[0]) <= limit:
                self._take_paced(now, limit, max_new, segments, out)
                self.cwnd_limited = bool(chunks) and \
                    self.snd_nxt + len(chunks[0]) > cwnd_edge <= right_edge
            elif self.flow.probe_due and self.snd_nxt == self.snd_una:
                # Zero-window probe: one byte past the window (RFC 9293 §3.8.6.1).
                self.flow.probe_due = False
                self.stats.probes += 1
                payload, residue = queue.take_byte()
                rec = Outstanding(self.snd_nxt, payload, residue, False, now, True)
                self._register([rec])
                self.stats.data_segments += 1
                out.append((self.segment_for(rec) if segments else None, rec))
            else:
                self.cwnd_limited = cwnd_edge <= right_edge
        if (queue.eof and not chunks and self._fin_record is None
                and (self.file_size is None or self.snd_nxt == self.file_size)):
            if self.file_size is None:
                self.file_size = self.snd_nxt
            self.digest = queue.digest
            rec = Outstanding(self.snd_nxt, b"", 0, True, now, False)
            self._fin_record = rec
            self._register([rec])
            self._set_state(SenderState.FIN_WAIT_1, now)
            out.append((self.segment_for(rec), rec))
        if out and not self.gbn:
            self.recovery.arm_tlp(now)
        self._update_probe_timer(now)
        return out

    @property
    def pace_deadline(self) -> float | None:
        """When new data held back by pacing (only) may go; None if none is."""
        return self.pacer.deadline

    def _take_paced(self, now: float, limit: int, max_new: int, segments: bool,
                    out: list) -> None:
        """New data as _take_new takes it, at the pacer's pace (common.pacing):
        off with a gain of 0, and until the first RTT sample."""
        srtt = self.rtt.srtt
        pacer = self.pacer
        if not pacer.gain or not srtt:
            self._take_new(now, limit, max_new, segments, out)
            return
        rate = self.cc.pacing_rate(srtt, pacer.gain)  # bytes per second
        chunks = self.queue.chunks
        allowed = pacer.allowance(now, len(chunks[0]), rate)
        if not allowed:
            return
        before = self.snd_nxt
        self._take_new(now, min(limit, before + allowed), max_new, segments, out)
        nxt = self.snd_nxt
        pacer.spent(nxt - before, rate,
                    len(chunks[0]) if chunks and nxt + len(chunks[0]) <= limit else 0)

    def _take_new(self, now: float, limit: int, max_new: int, segments: bool,
                  out: list) -> None:
        """New data, one segment after another from snd_nxt up to ``limit``:
        taken and registered a batch at a time, since this is most of the
        sender's work per segment."""
        fresh = self.queue.take_run(self.snd_nxt, limit, max_new, now)
        if not fresh:
            return
        nbytes = fresh[-1].end - self.snd_nxt
        self._register(fresh)
        self.stats.data_segments += len(fresh)
        self.cc.on_sent(nbytes, now)
        if segments:
            out.extend((self.segment_for(rec), rec) for rec in fresh)
        else:
            out.extend((None, rec) for rec in fresh)

    def _register(self, recs: list[Outstanding]) -> None:
        """Book new records that follow one another from snd_nxt: outstanding,
        in order, and timed (one timer in gbn mode, one each in sr mode)."""
        self.board.register(recs, not self.gbn)
        self.snd_nxt = recs[-1].end
        self.recovery.on_sent_new(recs[0].sent_at)

    def _update_probe_timer(self, now: float) -> None:
        flow = self.flow
        if (self.snd_nxt == self.snd_una and flow.right_edge - self.snd_nxt < self.eff_mss
                and self.wants_data()):
            if flow.probe_deadline is None:
                flow.arm_probe(now + self.recovery.rto())
        elif flow.probe_deadline is not None or flow.probe_due:
            flow.disarm_probe()

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
        ack_off = unwrap(seg.ack, self.base, self.snd_una)
        if ack_off > self.snd_nxt or ack_off < self.snd_una - (1 << 30):
            return  # acknowledges what we never sent, or hopelessly old
        self.last_heard = now
        self.stats.acks_received += 1
        if ack_off >= self.snd_una:
            self._on_ack(seg, ack_off, now)
            if not self._in_burst:
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

    def _on_ack(self, seg: Segment, ack_off: int, now: float) -> None:
        flow = self.flow
        window_changed = flow.on_ack(ack_off, seg.window)
        advanced = ack_off > self.snd_una
        recovery = self.recovery
        acked_before = self.snd_una + self.board.sacked.covered
        # The newest delivery this ACK reports: (send time, end), RACK's
        # (xmit_ts, end_seq); (0, 0) for none.
        delivered_at = NO_DELIVERY
        if self.sack_ok and seg.sack:
            dsack, blocks = self.board.read_sack(seg.sack, self.base, ack_off, self.snd_nxt)
            if dsack is not None:
                recovery.on_dsack(dsack, ack_off, self.snd_nxt)
            for left, right in blocks:
                delivered_at = recovery.on_sack_block(left, right, ack_off, now, delivered_at)
        if advanced:
            delivered_at = recovery.on_new_ack(ack_off, self.snd_nxt, now, delivered_at)
            self.snd_una = ack_off
            if self.recovery_point is not None or self._fin_record is not None:
                self._on_new_ack(ack_off, now)
        elif (not seg.payload and not seg.flags & FIN and self.snd_nxt > self.snd_una
              and not window_changed and flow.right_edge > self.snd_una):
            recovery.on_dupack(self.snd_una, self.snd_nxt, now)
            self._recovery_news(now)
        self._acked_news += self.snd_una + self.board.sacked.covered - acked_before
        if flow.window == 0:
            # The peer is alive and says it has no room: probes are not losses.
            for rec in self.board.order:
                if rec.probe:
                    rec.rexmits = 0
        if self.sack_ok:
            recovery.on_delivery(delivered_at, now)
        if self.trace:
            self._event(now, "inflight", bytes=self.snd_nxt - self.snd_una,
                        pipe=self.in_flight, cwnd=self.cc.cwnd,
                        rwnd=flow.right_edge - self.snd_una, acked=self.snd_una)
        self._update_probe_timer(now)

    def _on_new_ack(self, ack_off: int, now: float) -> None:
        """The cumulative ACK moved (recovery has updated the books): the end
        of loss recovery, of the FIN's wait."""
        if self.recovery_point is not None and ack_off >= self.recovery_point:
            self.recovery_point = None
            self.cc.on_recovery_end(now)
        fin = self._fin_record
        if fin is not None and ack_off >= fin.end and not self.delivered:
            self.delivered = True
            self.delivered_at = now
            self._fin_record = None
            self._set_state(SenderState.FIN_WAIT_2, now)

    def _acks_done(self, now: float) -> None:
        """The end of the ACKs read together: loss detection (sr), then what
        the congestion controller must hear."""
        recovery = self.recovery
        if recovery.losses_due:
            recovery.detect_losses(now)
            self._recovery_news(now)
        if self._acked_news and self.state not in FINAL_STATES:
            self.cc.on_acked(self._acked_news, recovery.take_sample(), now, self.in_flight,
                             self.cwnd_limited)
            self._acked_news = 0

    def _recovery_news(self, now: float) -> None:
        """After recovery ran: a segment past its retry limit ends the
        connection; losses and timer expiries go to the controller."""
        recovery = self.recovery
        rec = recovery.gave_up
        if rec is not None:
            if self.state not in FINAL_STATES:
                what = "FIN" if rec.fin else f"the segment at byte {rec.off}"
                self.abort(now, f"{what} was retransmitted {self.retries} times without an "
                                "acknowledgment; the receiver is gone")
            return
        if recovery.lost_bytes:
            pipe = self.in_flight
            if self.recovery_point is None:
                self.recovery_point = self.snd_nxt
                self.cc.on_recovery_start(now, pipe)
            self.cc.on_lost(recovery.lost_bytes, recovery.lost_sent_at, now, pipe)
            recovery.lost_bytes = 0
            recovery.lost_sent_at = 0.0
        if recovery.rto_fired:
            recovery.rto_fired = False
            self.recovery_point = None
            self.cc.on_rto(now)

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
            due = self.recovery.next_deadline()
            if due is not None and due < first:
                first = due
            due = self.flow.next_deadline()
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
        self.recovery.on_timer(now, self.snd_una, self.snd_nxt, self._answered_probe)
        self._recovery_news(now)
        if self.state in FINAL_STATES:
            return
        self.flow.on_timer(now)

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

    def _answered_probe(self, rec: Outstanding) -> bool:
        return self.flow.answered(rec, self.last_heard)
