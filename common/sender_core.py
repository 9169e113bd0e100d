"""The sender's state machine: handshake, sending, ACKs, teardown.

Sans-I/O: every method takes the current time ``now`` and the segments the
peer sent; it leaves what must go on the wire in ``outbox`` (control
segments) and hands data segments out through :meth:`SenderCore.take`; the
threads around it send them.  No socket, thread, file or clock in here.

Offsets are absolute stream offsets: byte 0 is the first byte of the file,
the SYN sits at -1 and the FIN at the file size.  Only ``Segment`` objects
carry wrapped 32-bit sequence numbers.

This module is the connection (docs/ARCHITECTURE.md): its states, the
give-up timer, and the segments on the wire.  The parts that own the rest:
the handshake (:class:`common.sender_handshake.Handshake`), the teardown
(:class:`common.sender_teardown.Teardown`, the core's base class) and the
data path, from the first byte queued to the FIN acknowledged
(:class:`common.transfer.Transfer`: the send queue, the scoreboard,
recovery and the timers, the congestion controller, the pacer and the
peer's window).

Modes (PROTOCOL.md): ``gbn``, one timer and every outstanding segment
resent; ``sr``, SACK, a timer per segment and only the holes resent.
Without the peer's SACK-permitted ``sr`` behaves as ``gbn``, since the peer
then drops what arrives out of order.
"""

from __future__ import annotations

from .rtt import RttEstimator
from .scoreboard import Outstanding
from .segment import ACK, FIN, PSH, RST, SYN, Segment, ts_fields
from .sender_handshake import NAME_AS_DATA, NAME_AS_DATA_ERROR, RESET, Handshake
from .sender_state import FINAL_STATES, OPEN_STATES, SENDER_WINDOW, SenderReadings, SenderState
from .sender_stats import Stats
from .sender_teardown import Teardown
from .seq import unwrap, wrap
from .timestamps import newer, ts_now
from .transfer import Transfer

DEFAULT_MSS = 1452

__all__ = ["FINAL_STATES", "Outstanding", "SenderCore", "SenderState", "Stats"]


#: A retransmission timeout after this many seconds of silence from the
#: receiver is reported (a ``waiting`` event), at each backoff step.
QUIET_REPORT = 1.0


class SenderCore(Teardown, SenderReadings):
    """The sending end of one connection."""

    def __init__(self, *, isn: int, file_size: int | None, mode: str = "sr",
                 mss: int = DEFAULT_MSS, window: int = 1 << 20,
                 rtt: RttEstimator | None = None, retries: int = 10, give_up: float = 30.0,
                 time_wait: float | None = None, src_port: int = 0, dst_port: int = 0,
                 trace: bool = False, pacing: float | None = None,
                 congestion_control: str = "none", timestamps: bool = True):
        if mode not in ("gbn", "sr"):
            raise ValueError(f"mode must be gbn or sr, not {mode!r}")
        if window < mss:
            raise ValueError(f"the window ({window} bytes) must hold one MSS ({mss} bytes)")
        self.base = (isn + 1) & 0xFFFFFFFF  # wire number of stream offset 0
        self.file_size = file_size
        self.mode = mode
        self.mss = mss
        self.rtt = rtt or RttEstimator()
        self.retries = retries
        self.give_up = give_up
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
        self.handshake = Handshake(isn=isn, mss=mss, sack=mode == "sr", timestamps=timestamps,
                                   retries=retries, src_port=src_port, dst_port=dst_port,
                                   recovery=t.recovery, stats=self.stats, emit=self._event,
                                   trace=trace)
        self._init_teardown(time_wait)

        self.state = SenderState.CLOSED
        self.error: str | None = None
        # What the handshake agreed (Handshake.agree), for the data path.
        self.eff_mss = mss
        # RFC 7323 timestamps: on if both SYNs carry them; ts_recent is the
        # peer's last TSval, echoed; _clock the latest ``now`` we were handed
        # (for our TSval).
        self.ts_ok = False
        self.ts_recent = 0
        self._clock = 0.0
        self.sack_ok = False
        self.gbn = True  # until the handshake says SACK is on
        self.handshake_done = False
        self.established_at: float | None = None  # when the SYN-ACK came
        self.rcv_nxt = 0  # wire number we expect from the peer (its FIN)
        self._in_burst = False  # on_segments: loss detection waits for the burst's end
        self._open = False  # wants_data(): established, no FIN sent yet
        self.last_heard = 0.0

    # ------------------------------------------------------------------ helpers
    def _event(self, now: float, ev: str, **fields) -> None:
        self.events.append((now, ev, fields))

    def _set_state(self, new: SenderState, now: float) -> None:
        self._event(now, "state", old=self.state.value, new=new.value)  # always: rare
        self.state = new
        # (every change of _fin_record comes with a change of state)
        self._open = new in OPEN_STATES and self._fin_record is None

    def _control(self, flags: int, seq_off: int | None = None, payload: bytes = b"") -> Segment:
        off = self.snd_nxt if seq_off is None else seq_off
        seg = Segment(seq=wrap(off, self.base), ack=self.rcv_nxt, flags=flags,
                      window=SENDER_WINDOW, payload=payload, src_port=self.src_port,
                      dst_port=self.dst_port)
        if self.ts_ok and not flags & RST:  # (RFC 7323 §3.2: an RST may go without)
            seg.ts_val, seg.ts_ecr = ts_now(self._clock), self.ts_recent
        return seg

    def _ts(self) -> tuple[int, int] | None:
        """(TSval, TSecr) for what goes now, or None without timestamps."""
        return (ts_now(self._clock), self.ts_recent) if self.ts_ok else None

    def segment_for(self, rec: Outstanding) -> Segment:
        """The segment that carries ``rec`` on the wire (new or again)."""
        if rec.fin:
            # No timestamps: the digest takes 36 of the 40 option bytes
            # (PROTOCOL.md §9); the FIN's ACK waits for the disk anyway.
            return Segment(seq=wrap(rec.off, self.base), ack=self.rcv_nxt, flags=FIN | ACK,
                           window=SENDER_WINDOW, src_port=self.src_port,
                           dst_port=self.dst_port, digest=self.digest)
        ts_val, ts_ecr = self._ts() or (None, 0)
        # PSH on the segment that ends the file, as a TCP stack would set it.
        flags = ACK | PSH if rec.end == self.file_size else ACK
        return Segment(seq=wrap(rec.off, self.base), ack=self.rcv_nxt, flags=flags,
                       window=SENDER_WINDOW, payload=rec.payload, src_port=self.src_port,
                       dst_port=self.dst_port, ts_val=ts_val, ts_ecr=ts_ecr)

    def data_header_fields(self) -> tuple:
        """What the header of every data segment shares, for a caller that
        builds it from the record alone (``take(segments=False)``): source and
        destination port, ``base`` (the wire number of offset 0), the
        acknowledgment number, the window field, the offset where the file
        ends (the segment ending there carries PSH; -1 if unknown), and the
        timestamps option (common.segment.ts_fields) or None without them."""
        end = self.file_size if self.file_size is not None else -1
        ts = self._ts()
        return (self.src_port, self.dst_port, self.base, self.rcv_nxt, SENDER_WINDOW, end,
                None if ts is None else ts_fields(*ts))

    # ---------------------------------------------------------------- handshake
    def start(self, now: float) -> None:
        """Open the connection: queue the SYN."""
        if self.state != SenderState.CLOSED:
            raise RuntimeError("start() called twice")
        self.last_heard = now
        self._set_state(SenderState.SYN_SENT, now)
        self.outbox.append(self.handshake.syn(now, self.file_size))

    def _third_ack(self) -> Segment:
        """The ACK of the SYN-ACK, with the answer to a resume offer."""
        seg = self._control(ACK)
        seg.resume_at = self.handshake.resume_at
        return seg

    def _in_syn_sent(self, seg: Segment, now: float) -> None:
        """A segment in SYN_SENT: perhaps the answer to our SYN (Handshake.answer)."""
        answer = self.handshake.answer(seg)
        if answer is None:
            return
        self.last_heard = now
        if answer == RESET:
            self._peer_reset(seg, now)
        elif answer == NAME_AS_DATA:
            self.abort(now, NAME_AS_DATA_ERROR)
        else:
            self._on_syn_ack(seg, now)

    def _on_syn_ack(self, seg: Segment, now: float) -> None:
        hs = self.handshake
        self.rcv_nxt = (seg.seq + 1) & 0xFFFFFFFF
        if seg.resume_offer is not None:
            held = hs.take_offer(seg.resume_offer, self.file_size, len(self.queue), now)
            if held:
                self.file_size -= held
        self.base = hs.base  # after the name if taken, after what a resume skips
        reason = hs.agree(seg)
        self.eff_mss, self.ts_ok = hs.eff_mss, hs.ts_ok
        if self.ts_ok:
            self.ts_recent = seg.ts_val
        if reason:
            self.abort(now, reason)
            return
        self.sack_ok = hs.sack_ok
        self.gbn = not self.sack_ok
        self.transfer.on_path(self.eff_mss, self.sack_ok, seg.window, seg.wscale)
        self.transfer.ts_ok = self.ts_ok
        hs.established(seg, now)
        self.handshake_done = True
        self.established_at = now
        self._set_state(SenderState.ESTABLISHED, now)
        self.outbox.append(self._third_ack())

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
        self._clock = now
        t = self.transfer
        t.pacer.deadline = None  # set again if pacing holds new data back
        if self.outbox:
            out.extend((seg, None) for seg in self.outbox)
            self.outbox.clear()
        if self.state in FINAL_STATES:
            return out
        if t.recovery.rexmit:
            for rec in t.take_resends(now):
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
            rec = self._send_fin(t.snd_nxt, queue.digest, now)
            out.append((self.segment_for(rec), rec))
        t.after_take(now, bool(out), self._open)
        return out

    # ------------------------------------------------------------ receiving ACKs
    def on_segment(self, seg: Segment, now: float) -> None:
        """A segment from the peer (the caller checked its source address)."""
        self.stats.segments_received += 1
        self._clock = now
        st = self.state
        if st in FINAL_STATES or st == SenderState.CLOSED:
            return
        if st == SenderState.SYN_SENT:
            self._in_syn_sent(seg, now)
            return
        if seg.flags & RST:
            # RFC 5961 §3.2: only an exact match resets (our receive window is 0).
            if seg.seq == self.rcv_nxt:
                self.last_heard = now
                self._peer_reset(seg, now)
            return
        if seg.flags & SYN:
            if seg.seq == self.handshake.irs and seg.flags & ACK:
                # Our third ACK was lost and the peer resent its SYN-ACK.
                self.last_heard = now
                self.outbox.append(self._third_ack())
            return
        if not seg.flags & ACK:
            return
        t = self.transfer
        ack_off = unwrap(seg.ack, self.base, t.snd_una)
        if ack_off > t.snd_nxt or ack_off < t.snd_una - (1 << 30):
            return  # acknowledges what we never sent, or hopelessly old
        self.last_heard = now
        self.stats.acks_received += 1
        if self.ts_ok and seg.ts_val is not None and newer(seg.ts_val, self.ts_recent):
            # (the receiver's sequence number never moves: RFC 7323 §4.3's
            # rule takes the newest of its TSvals)
            self.ts_recent = seg.ts_val
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
        rule here, by ACK there.  A plain cumulative ACK that the next one
        of the burst supersedes is counted, not taken
        (Transfer.absorb_superseded)."""
        self._in_burst = True
        t, stats, last = self.transfer, self.stats, len(segs) - 1
        try:
            for i, seg in enumerate(segs):
                if i < last and self.state in OPEN_STATES and \
                        t.absorb_superseded(seg, segs[i + 1], self.base):
                    stats.segments_received += 1
                    stats.acks_received += 1
                    continue
                self.on_segment(seg, now)
        finally:
            self._in_burst = False
        if self.state not in FINAL_STATES:
            self._acks_done(now)

    def _acks_done(self, now: float) -> None:
        """The end of the ACKs read together (Transfer.acks_done)."""
        if self.state in FINAL_STATES:
            return
        reason = self.transfer.acks_done(now)
        if reason:
            self.abort(now, reason)

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
            return min(first, self.handshake.deadline)
        if st != SenderState.FIN_WAIT_2:
            due = self.transfer.next_deadline()
            if due is not None and due < first:
                first = due
        return first

    def on_timer(self, now: float) -> None:
        """Fire every timer that is due at ``now``."""
        self._clock = now
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
            hs = self.handshake
            if now >= hs.deadline:
                reason = hs.timeout(now, self.last_heard, self.give_up)
                if reason:
                    self.abort(now, reason)
                else:
                    self.outbox.append(hs.syn(now, self.file_size))
            return
        if st == SenderState.FIN_WAIT_2:
            return
        backed_off = self.recovery.backed_off_at
        reason = self.transfer.on_timer(now, self.last_heard)
        if reason:
            self.abort(now, reason)
        elif (self.recovery.backed_off_at != backed_off
              and now - self.last_heard >= QUIET_REPORT):
            # A timeout backed off, and the receiver has said nothing for a
            # while: the program says so, at each step (runtime/waiting.py).
            self._event(now, "waiting", what="ACK", silent=now - self.last_heard,
                        next=self.recovery.rto(),
                        give_up=self.last_heard + self.give_up - now)
