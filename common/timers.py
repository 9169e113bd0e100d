"""The sender's retransmission timers (RFC 6298: one per segment with SACK,
one for Go-Back-N), the RTO's backoff, and the tail loss probe (RFC 8985
§7): when each fires and what it declares lost.

A part of :class:`common.recovery.Recovery` (its base class), split out by
what it owns: the deadlines and the timer state.  It works on Recovery's
scoreboard, RTT estimator, statistics and retransmission queue
(``_mark_lost``); it never sends and never reads a clock.
"""

from __future__ import annotations

#: RFC 8985 §7.2's WCDelAckT: the longest a receiver may hold an ACK for a
#: lone segment (the programs' receivers hold it 40 ms, common.ackclock).
WC_DEL_ACK = 0.2


class Timers:
    """The timers of :class:`common.recovery.Recovery` (see there)."""

    def _init_timers(self, min_rto: float, give_up: float) -> None:
        #: The RTO the timers use is capped, so that the peer, hearing nothing,
        #: never gives up on a transfer that is still alive.
        self.rto_ceiling = max(min_rto, give_up / 8)
        self.rto_fired = False  # a retransmission timer expired (for the controller)
        self.gbn_deadline: float | None = None
        self._last_backoff = -1e18
        self._tlp_deadline: float | None = None
        self._tlp_allowed = True
        self.in_recovery = False  # a loss episode is on (set_recovery): no probes

    def rto(self) -> float:
        """The timeout the timers use: the RTO, capped (rto_ceiling)."""
        return min(self.rtt.rto, self.rto_ceiling)

    def backoff(self, now: float) -> None:
        """RFC 6298 §5.5: double the RTO; once per expiry, even when several
        segments' timers expire together."""
        if now - self._last_backoff >= self.rto() / 2:
            self.rtt.on_timeout()
            self._last_backoff = now
            if self.trace:
                self._emit(now, "rto", rto=self.rto(), backoff=self.rtt.backoff)

    @property
    def backed_off_at(self) -> float:
        """When the last expiry backed the RTO off (even one at its maximum)."""
        return self._last_backoff

    def on_sent_new(self, first_sent_at: float) -> None:
        """New data went (Go-Back-N's one timer starts if it is not running)."""
        if self.gbn and self.gbn_deadline is None:
            self.gbn_deadline = first_sent_at + self.rto()

    def arm_tlp(self, now: float) -> None:
        """Tail loss probe (RFC 8985 §7): if nothing is heard for two smoothed
        RTTs, resend the newest segment, so that a loss at the tail of a burst
        (or a lost retransmission with nothing sent after it) is found by
        RACK from the probe's ACK instead of by the much longer RTO."""
        srtt = self.rtt.srtt
        if srtt is None or not self._tlp_allowed or self.in_recovery:
            self._tlp_deadline = None
            return
        pto = max(2 * srtt, 0.01)
        if len(self.board.timed) == 1:
            # One segment in flight: its ACK may be a delayed one (RFC 8985
            # §7.2 adds WCDelAckT).  A probe no sooner than the RTO is none:
            # the segment's own timer resends it then.
            pto += WC_DEL_ACK
            if pto >= self.rto():
                self._tlp_deadline = None
                return
        self._tlp_deadline = now + min(pto, self.rto())

    def set_recovery(self, on: bool, now: float) -> None:
        """A loss episode began (``on``) or ended.  RFC 8985 §7.2 schedules a
        probe only outside loss recovery (Linux: only in the Open or CWR
        state): during one, RACK, the SACK rule and the RTO find the losses,
        and a probe would resend a segment the episode's ACKs account for
        anyway.  The probe is armed again from its end."""
        self.in_recovery = on
        if on:
            self._tlp_deadline = None
        elif not self.gbn and self.board.timed:
            self.arm_tlp(now)

    def next_deadline(self) -> float | None:
        """The earliest of the retransmission, reordering and probe timers."""
        if self.gbn:
            return self.gbn_deadline
        timed = self.board.timed
        if not timed:
            return None
        first = self.board.timed[next(iter(timed))].sent_at + self.rto()
        if self._tlp_deadline is not None and self._tlp_deadline < first:
            first = self._tlp_deadline
        rack_due = self.rack.deadline
        if rack_due is not None and rack_due < first:
            first = rack_due
        return first

    def on_timer(self, now: float, snd_una: int, snd_nxt: int, answered) -> None:
        """Fire what is due at ``now``.  ``answered(rec)``: whether ``rec`` is
        a zero-window probe the peer answered (no backoff for it)."""
        if self.gbn:
            if self.gbn_deadline is not None and now >= self.gbn_deadline:
                self._gbn_timeout(snd_nxt, now, answered)
        elif self.board.timed:
            if self.rack.deadline is not None and now >= self.rack.deadline:
                self._rack_detect(now)  # RFC 8985 §6.3: the reordering timer
            if self._tlp_deadline is not None and now >= self._tlp_deadline:
                self._tail_loss_probe(snd_una)
            if self.gave_up is None:
                self._sr_timeout(now, snd_una, answered)

    def _tail_loss_probe(self, snd_una: int) -> None:
        self._tlp_deadline = None
        self._tlp_allowed = False  # one probe until the peer reports progress
        for rec in reversed(self.board.timed.values()):
            if rec.fin and rec.off > snd_una:
                continue  # held back by the peer until the data is in; see _sr_timeout
            if not rec.sacked:
                if not rec.queued:
                    self._mark_lost(rec, "tlp")
                return

    def _gbn_timeout(self, snd_nxt: int, now: float, answered) -> None:
        order = self.board.order
        if not order:
            self.gbn_deadline = None
            return
        if not answered(order[0]):
            self.backoff(now)
        n = 0
        for rec in order:
            if not self._mark_lost(rec, "timeout", count=n == 0):
                return
            n += 1
        self.stats.timeouts += 1
        self.rto_fired = True
        self._recover = snd_nxt
        self._gone_back(0)  # a timeout: the old window's duplicates are long in
        self.gbn_deadline = now + self.rto()
        if self.trace:
            self._emit(now, "timeout", rto=self.rto(), n=n)

    def _sr_timeout(self, now: float, snd_una: int, answered) -> None:
        rto = self.rto()
        timed = self.board.timed
        expired = []
        for rec in timed.values():
            if rec.sent_at + rto > now:
                break
            expired.append(rec)
        if not expired:
            return
        n = 0
        backoff = False
        for rec in expired:
            if rec.fin and rec.off > snd_una:
                # The peer holds a FIN back until every byte before it is in:
                # resending it then proves nothing (and must not use up the
                # retries).  Its timer starts again when it is the oldest.
                timed.move_to_end(rec.off)
                rec.sent_at = now
                continue
            # A SACKed segment waits only for the cumulative ACK, except the one
            # at the left edge: SACK is advisory, a timeout resends it anyway
            # (RFC 2018 §8), so a peer that reneges (or lies) cannot stall us.
            if rec.off > snd_una and rec.sacked:
                del timed[rec.off]
                continue
            if not answered(rec):
                backoff = True
            timed.move_to_end(rec.off)
            rec.sent_at = now  # rearmed; the resend itself sets it again
            if not self._mark_lost(rec, "timeout"):
                return
            n += 1
        if n:
            if backoff:
                self.backoff(now)
            self.stats.timeouts += 1
            self.rto_fired = True
            if self.trace:
                self._emit(now, "timeout", rto=self.rto(), n=n)
