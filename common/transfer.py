"""The sender's data path: bytes queued, in flight, acknowledged, lost, and
how much may go next.

It owns the stream's send variables (``snd_una``, ``snd_nxt``) and composes
the parts that own the rest: the send queue (:mod:`common.sendqueue`), the
scoreboard (:mod:`common.scoreboard`), loss recovery and its timers
(:mod:`common.recovery`), the congestion controller (:mod:`common.congestion`),
the pacer (:mod:`common.pacing`) and the peer's window (:mod:`common.flow`).
It hands out records, never segments, and knows nothing of the handshake
or the teardown: :mod:`common.sender_core` does, and builds the segments.
"""

from __future__ import annotations

from . import congestion
from .congestion.log import CwndLog
from .flow import PeerWindow
from .pacing import PACE_GAIN, Pacer
from .rack import NO_DELIVERY
from .recovery import Recovery
from .rtt import RttEstimator
from .scoreboard import Outstanding, Scoreboard
from .segment import ACK, FIN, Segment
from .sender_stats import Stats
from .sendqueue import SendQueue


class Transfer:
    """One direction's sliding window, from the first data byte to the FIN."""

    def __init__(self, *, mss: int, window: int, rtt: RttEstimator, stats: Stats,
                 retries: int, give_up: float, emit, trace: bool,
                 pacing: float | None = None, congestion_control: str = "none"):
        self.rtt = rtt
        self.stats = stats
        self.retries = retries
        self._emit = emit  # emit(now, ev, **fields): the sender's trace events
        self.trace = trace
        self.queue = SendQueue()
        self.board = Scoreboard()
        self.recovery = Recovery(self.board, rtt, stats, retries=retries, give_up=give_up,
                                 emit=emit, trace=trace)
        self.cc = congestion.create(congestion_control, mss=mss, window=window)
        # No gain given: the controller's (PACE_GAIN for the fixed window;
        # 2 in slow start and 1.2 after with congestion control).
        self.auto_pace = pacing is None
        self.pacer = Pacer(PACE_GAIN if pacing is None else pacing)
        self.cc_log = CwndLog()
        self.flow = PeerWindow()
        self.snd_una = 0  # the oldest byte not acknowledged (stream offset)
        self.snd_nxt = 0  # the next byte to send for the first time
        self.mss = mss  # the MSS in use: the smaller of ours and the peer's
        self.gbn = True  # Go-Back-N until the handshake says SACK is on
        self.sack_ok = False
        self.ts_ok = False  # RFC 7323 timestamps on (the handshake says)
        self.cwnd_limited = False  # the last send stopped at cwnd (RFC 7661)
        self.recovery_point: int | None = None  # snd_nxt when loss recovery began
        self._acked_news = 0  # bytes newly acknowledged by the ACKs not yet told to cc
        self._acks_news = 0  # how many ACKs brought them
        self._limited = False  # cwnd held sending back since cc last heard of ACKs
        self._pipe_high = 0  # the largest pipe after a send since then

    def on_path(self, mss: int, sack_ok: bool, window: int, wscale: int | None) -> None:
        """What the handshake agreed: the MSS, SACK, the peer's first window."""
        self.mss = self.recovery.mss = mss
        self.sack_ok = sack_ok
        self.gbn = self.recovery.gbn = not sack_ok
        self.queue.fit(mss)  # read ahead in our MSS: the peer's may be smaller
        self.flow.on_syn_ack(window, wscale)
        self.cc.on_path(mss, sack_ok)

    @property
    def in_flight(self) -> int:
        """Bytes sent and neither cumulatively nor selectively acknowledged (the pipe)."""
        return self.snd_nxt - self.snd_una - self.board.sacked.covered

    @property
    def pipe(self) -> int:
        """RFC 6675's pipe: in flight, less what is declared lost and not yet
        sent again (those still count in ``in_flight`` until they go)."""
        lost = 0
        for rec in self.recovery.rexmit:
            if rec.queued and not rec.sacked:
                lost += rec.end - rec.off
        return max(0, self.in_flight - lost)

    def cc_check(self, now: float) -> None:
        """After the controller heard something: a change of cwnd, ssthresh
        or state is a ``cwnd`` trace event (with the pipe)."""
        cc = self.cc
        if self.cc_log.observe(cc, now) and self.trace:
            self._emit(now, "cwnd", cwnd=cc.cwnd, ssthresh=cc.ssthresh, pipe=self.pipe,
                       state=cc.state)

    def room(self) -> int:
        """New bytes the windows let us send now: the congestion window bounds
        the pipe (RFC 6675), so in sr mode sending goes on while a hole is
        repaired, as far as the receiver's advertised window lets it; in gbn
        mode, without SACK, the pipe is simply everything past snd_una."""
        limit = min(self.snd_una + self.cc.cwnd + self.board.sacked.covered,
                    self.flow.right_edge)
        return max(0, limit - self.snd_nxt)

    # -------------------------------------------------------------- sending
    def take_resends(self, now: float) -> list[Outstanding]:
        """The resends due now, as many as the congestion controller lets go
        (in sr mode; Go-Back-N resends its window as it always did)."""
        budget = None if self.gbn else self.cc.resend_budget(self.pipe)
        out = self.recovery.take_resends(now, self.snd_una, budget)
        resent = sum(rec.end - rec.off for rec in out)
        if resent:
            self.cc.on_resent(resent, now)  # (PRR counts what recovery sends)
        return out

    def take_new(self, now: float, max_new: int) -> list[Outstanding]:
        """New data from the queue, each chunk one record, as far as the
        windows and the pacer allow (at most ``max_new``); or a zero-window
        probe when the persist timer fired.  (The caller clears the pacer's
        deadline first: it is set again if pacing holds data back.)"""
        chunks = self.queue.chunks
        if not chunks or max_new <= 0:
            return []
        if not self.cc_log.started:
            self.cc_check(now)
        right_edge = self.flow.right_edge
        cwnd_edge = self.snd_una + self.cc.cwnd + self.board.sacked.covered
        limit = min(cwnd_edge, right_edge)
        if self.snd_nxt + len(chunks[0]) <= limit:
            fresh = self._take_paced(now, limit, max_new)
            self.cwnd_limited = bool(chunks) and \
                self.snd_nxt + len(chunks[0]) > cwnd_edge <= right_edge
            self._limited |= self.cwnd_limited
            return fresh
        self.cwnd_limited = cwnd_edge <= right_edge
        self._limited |= self.cwnd_limited
        if self.flow.probe_due and self.snd_nxt == self.snd_una:
            # Zero-window probe: one byte past the window (RFC 9293 §3.8.6.1).
            self.flow.probe_due = False
            self.stats.probes += 1
            payload, residue = self.queue.take_byte()
            rec = Outstanding(self.snd_nxt, payload, residue, False, now, True)
            self.register([rec])
            self.stats.data_segments += 1
            return [rec]
        return []

    def _take_paced(self, now: float, limit: int, max_new: int) -> list[Outstanding]:
        """New data at the pacer's pace (common.pacing): off with a gain of
        0, and until the first RTT sample."""
        srtt = self.rtt.srtt
        pacer = self.pacer
        if not pacer.gain or not srtt:
            return self._take_run(now, limit, max_new)
        gain = self.cc.pacing_gain if self.auto_pace else pacer.gain
        rate = self.cc.pacing_rate(srtt, gain)  # bytes per second
        chunks = self.queue.chunks
        allowed = pacer.allowance(now, len(chunks[0]), rate)
        if not allowed:
            return []
        before = self.snd_nxt
        fresh = self._take_run(now, min(limit, before + allowed), max_new)
        nxt = self.snd_nxt
        pacer.spent(nxt - before, rate,
                    len(chunks[0]) if chunks and nxt + len(chunks[0]) <= limit else 0)
        return fresh

    def _take_run(self, now: float, limit: int, max_new: int) -> list[Outstanding]:
        """New data, one record after another from snd_nxt up to ``limit``:
        taken and registered a batch at a time, since this is most of the
        sender's work per segment."""
        fresh = self.queue.take_run(self.snd_nxt, limit, max_new, now)
        if fresh:
            nbytes = fresh[-1].end - self.snd_nxt
            self.register(fresh)
            self.stats.data_segments += len(fresh)
            self.cc.on_sent(nbytes, now)
            pipe = self.snd_nxt - self.snd_una - self.board.sacked.covered
            if pipe > self._pipe_high:
                self._pipe_high = pipe
        return fresh

    def register(self, recs: list[Outstanding]) -> None:
        """Book new records that follow one another from snd_nxt: outstanding,
        in order, and timed (one timer in gbn mode, one each in sr mode)."""
        self.board.register(recs, not self.gbn)
        self.snd_nxt = recs[-1].end
        self.recovery.on_sent_new(recs[0].sent_at)

    def after_take(self, now: float, sent: bool, open_: bool) -> None:
        """After a take: the tail loss probe runs from the last send (sr), and
        the persist timer from a closed window (``open_``: data may still go)."""
        if sent and not self.gbn:
            self.recovery.arm_tlp(now)
        self.update_probe_timer(now, open_)

    def update_probe_timer(self, now: float, open_: bool) -> None:
        flow = self.flow
        if (self.snd_nxt == self.snd_una and flow.right_edge - self.snd_nxt < self.mss
                and open_):
            if flow.probe_deadline is None:
                flow.arm_probe(now + self.recovery.rto())
        elif flow.probe_deadline is not None or flow.probe_due:
            flow.disarm_probe()

    # -------------------------------------------------------------- ACKs
    def on_ack(self, seg: Segment, ack_off: int, base: int, now: float, open_: bool) -> None:
        """An acceptable ACK for ``ack_off`` (>= snd_una); ``base`` is the
        wire number of offset 0.  Loss detection waits for acks_done."""
        flow = self.flow
        window_changed = flow.on_ack(ack_off, seg.window)
        advanced = ack_off > self.snd_una
        recovery = self.recovery
        board = self.board
        acked_before = self.snd_una + board.sacked.covered
        # The newest delivery this ACK reports: (send time, end), RACK's
        # (xmit_ts, end_seq); (0, 0) for none.
        delivered_at = NO_DELIVERY
        if self.sack_ok and seg.sack:
            dsack, blocks = board.read_sack(seg.sack, base, ack_off, self.snd_nxt)
            if dsack is not None:
                recovery.on_dsack(dsack, ack_off, self.snd_nxt)
            for left, right in blocks:
                delivered_at = recovery.on_sack_block(left, right, ack_off, now, delivered_at)
        if advanced:
            # RFC 7323 §4.1: with timestamps, the echo times this ACK's
            # round trip, a retransmission's included (no Karn's rule).
            ecr = seg.ts_ecr if self.ts_ok and seg.ts_val is not None else None
            delivered_at = recovery.on_new_ack(ack_off, self.snd_nxt, now, delivered_at, ecr)
            self.snd_una = ack_off
            if self.recovery_point is not None and ack_off >= self.recovery_point:
                self.recovery_point = None
                recovery.set_recovery(False, now)
                self.cc.on_recovery_end(now)
                self.cc_check(now)
        elif (not seg.payload and not seg.flags & FIN and self.snd_nxt > self.snd_una
              and not window_changed and flow.right_edge > self.snd_una):
            recovery.on_dupack(self.snd_una, self.snd_nxt, now)
        self._acked_news += self.snd_una + board.sacked.covered - acked_before
        self._acks_news += 1
        if flow.window == 0:
            # The peer is alive and says it has no room: probes are not losses.
            for rec in board.order:
                if rec.probe:
                    rec.rexmits = 0
        if self.sack_ok:
            recovery.on_delivery(delivered_at, now)
        if self.trace:
            self._emit(now, "inflight", bytes=self.snd_nxt - self.snd_una,
                       pipe=self.in_flight, cwnd=self.cc.cwnd,
                       rwnd=flow.right_edge - self.snd_una, acked=self.snd_una)
        self.update_probe_timer(now, open_)

    def absorb_superseded(self, seg: Segment, nxt: Segment, base: int) -> bool:
        """If ``seg``, an ACK read in one burst with ``nxt`` just after it,
        tells nothing ``nxt`` does not, count it and return True (the caller
        then skips it); else return False and count nothing.  Superseded:
        both plain cumulative ACKs (no SACK, data or other flag, timestamps
        alike), ``seg`` moving snd_una and ``nxt`` moving it further (so
        ``seg`` is no duplicate).  It is counted for the congestion
        controller (RFC 3465's limit is per ACK); ``nxt`` frees the same
        segments, names the newer window and echoes the newer timestamp;
        only ``seg``'s RTT sample goes, and RFC 6298 asks for one per round
        trip.  This keeps
        the receiver's ACK every second segment from costing the sender a
        full pass per ACK when a GRO read hands it a burst of them."""
        if seg.flags != ACK or nxt.flags != ACK or seg.sack or nxt.sack or \
                seg.payload or nxt.payload or (seg.ts_val is None) != (nxt.ts_val is None):
            return False
        # Both numbers as distances above snd_una's wire number: everything
        # in flight lies within 2**31 of it, so no unwrap is needed.
        una = self.snd_una
        ref = base + una
        if not 0 < (seg.ack - ref) & 0xFFFFFFFF < (nxt.ack - ref) & 0xFFFFFFFF \
                <= self.snd_nxt - una:
            return False
        self._acks_news += 1
        return True

    def acks_done(self, now: float) -> str | None:
        """The end of the ACKs read together: loss detection, then what the
        congestion controller must hear.  Returns why the connection must
        end (a segment past its retry limit), or None."""
        recovery = self.recovery
        if recovery.losses_due or recovery.gave_up is not None or recovery.lost_bytes:
            if recovery.losses_due:
                recovery.detect_losses(now)
            reason = self._recovery_news(now)
            if reason:
                return reason
        if self._acked_news:
            cc = self.cc
            # RFC 7661: grow only a window in use; in slow start, as Linux
            # judges it, when at least half of it was in flight.
            limited = self._limited or (cc.in_slow_start and 2 * self._pipe_high >= cc.cwnd)
            cc.on_acked(self._acked_news, recovery.take_sample(), now, self.pipe, limited,
                        self._acks_news)
            self._acked_news = self._acks_news = 0
            self._limited = self.cwnd_limited
            self._pipe_high = self.in_flight
            self.cc_check(now)
        return None

    def _recovery_news(self, now: float) -> str | None:
        """After recovery ran: a segment past its retry limit ends the
        connection (the reason is returned); losses and timer expiries go to
        the congestion controller."""
        recovery = self.recovery
        rec = recovery.gave_up
        if rec is not None:
            what = "FIN" if rec.fin else f"the segment at byte {rec.off}"
            return (f"{what} was retransmitted {self.retries} times without an "
                    "acknowledgment; the receiver is gone")
        if recovery.lost_bytes:
            pipe = self.pipe
            if self.recovery_point is None:
                self.recovery_point = self.snd_nxt
                recovery.set_recovery(True, now)
                self.cc.on_recovery_start(now, pipe, self.snd_nxt - self.snd_una)
            self.cc.on_lost(recovery.lost_bytes, recovery.lost_sent_at, now, pipe)
            recovery.lost_bytes = 0
            recovery.lost_sent_at = 0.0
            self.cc_check(now)
        if recovery.rto_fired:
            recovery.rto_fired = False
            # Loss recovery after a timeout lasts until what was outstanding
            # then is acknowledged: one reduction for that window.
            self.recovery_point = self.snd_nxt
            recovery.set_recovery(True, now)
            self.cc.on_rto(now, self.snd_nxt - self.snd_una)
            self.cc_check(now)
        return None

    # -------------------------------------------------------------- timers
    def next_deadline(self) -> float | None:
        """The earliest of the retransmission, RACK, TLP and persist timers."""
        first = self.recovery.next_deadline()
        flow = self.flow
        due = None if flow.probe_due else flow.probe_deadline  # (flow.next_deadline)
        if due is not None and (first is None or due < first):
            return due
        return first

    def on_timer(self, now: float, last_heard: float) -> str | None:
        """Fire what is due; returns why the connection must end, or None."""
        flow = self.flow
        self.recovery.on_timer(now, self.snd_una, self.snd_nxt,
                               lambda rec: flow.answered(rec, last_heard))
        reason = self._recovery_news(now)
        if reason:
            return reason
        flow.on_timer(now)
        return None
