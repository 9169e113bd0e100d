"""Loss detection and the retransmission timers: which segments are lost,
and when each timer fires.  Every "this segment is lost" is decided here;
the timers themselves (deadlines, the RTO's backoff, the tail loss probe)
are in :mod:`common.timers`, Recovery's base class.

Causes (``Outstanding.why``; REXMIT_KIND names their counter and trace tag):

``fast``
    the third duplicate ACK (RFC 5681 §3.2): with SACK the first hole
    (once per window, RFC 6582); Go-Back-N goes back over everything;
``sack``
    RFC 6675's IsLost: DUP_THRESH segments' worth SACKed above a hole
    (the threshold grows with observed reordering);
``rack``
    RACK (RFC 8985 §6.2): something sent later was delivered, and the
    delivery's RTT plus a reordering window has passed since this went;
``tlp``
    the tail loss probe (RFC 8985 §7): nothing heard for two SRTTs;
``timeout``
    its retransmission timer (RFC 6298: one timer in Go-Back-N, one per
    segment with SACK), with exponential backoff and Karn's rule;
``probe``
    a zero-window probe's timer.

It reads the scoreboard (:mod:`common.scoreboard`), takes RTT samples
into the estimator and queues the lost segments in ``rexmit``; it never
sends and never reads a clock (every method takes ``now``).  The sender
core asks it and tells the congestion controller what it found.
"""

from __future__ import annotations

from collections import OrderedDict, deque

from .rack import Rack
from .rtt import RttEstimator
from .scoreboard import Outstanding, Scoreboard
from .sender_stats import Stats
from .timers import Timers
from .timestamps import echo_rtt

#: RFC 5681 §3.2: duplicate ACKs that trigger a fast retransmit.
DUP_THRESH = 3
#: The causes that are losses to the congestion controller (not timer expiries).
LOSS_CAUSES = ("fast", "sack", "rack")

#: Why a segment is resent -> (the Stats counter, the trace's ``rexmit`` tag).
REXMIT_KIND = {
    "fast": ("rexmit_fast", "fast"),
    "sack": ("rexmit_sack", "sack"),
    "rack": ("rexmit_rack", "rack"),
    "tlp": ("rexmit_tlp", "tlp"),
    "timeout": ("rexmit_timeout", "timeout"),
    "probe": ("rexmit_timeout", "probe"),
}


class Recovery(Timers):
    """Loss detection and timers (:class:`common.timers.Timers`) of one
    connection's sender."""

    def __init__(self, board: Scoreboard, rtt: RttEstimator, stats: Stats, *, retries: int,
                 give_up: float, emit, trace: bool):
        self.board = board
        self.rtt = rtt
        self.stats = stats
        self.retries = retries
        self._init_timers(rtt.min_rto, give_up)
        self._emit = emit  # emit(now, ev, **fields): the sender's trace events
        self.trace = trace
        self.gbn = True  # Go-Back-N until the handshake says SACK is on
        self.mss = 1
        self.rexmit: deque[Outstanding] = deque()  # declared lost, to send again
        self.gave_up: Outstanding | None = None  # resent past the retry limit
        self.lost_bytes = 0  # declared lost by LOSS_CAUSES since the core last looked
        self.lost_sent_at = 0.0  # the newest send time among them
        self.dupacks = 0
        self._dup_ignore = 0  # gbn: duplicate ACKs the old window may still draw
        self._recover = -1  # snd_nxt when fast recovery began (RFC 6582)
        self._loss_scan = 0  # offset below which the SACK loss rule has looked
        self._recent_rexmits: OrderedDict[int, str] = OrderedDict()  # off -> why, for DSACK
        self.rack = Rack(rtt)
        self.losses_due = False  # the SACK rule or RACK has news to look at
        self._last_sample: float | None = None  # for take_sample
        self._rack_news = False  # an ACK reported a delivery RACK can use

    # ------------------------------------------------------------ RTT

    def sample(self, r: float, now: float) -> None:
        """An RTT sample (Karn: the caller takes none from a resent segment)."""
        self.rtt.on_sample(r)
        self._last_sample = r
        if self.trace:
            rtt = self.rtt
            self._emit(now, "rtt", sample=round(r, 6), srtt=rtt.srtt, rttvar=rtt.rttvar,
                       rto=rtt.rto)

    def take_sample(self) -> float | None:
        """The latest RTT sample since the last call, or None."""
        r = self._last_sample
        self._last_sample = None
        return r

    def take_resends(self, now: float, snd_una: int,
                     budget: int | None = None) -> list[Outstanding]:
        """The segments declared lost that still need a resend, now going:
        each counted by cause here, when it really goes (a queued segment
        may be acknowledged first), and timed anew.  ``budget``: at most
        that many bytes of those found lost by the loss rules (LOSS_CAUSES;
        the congestion window's share, RFC 6675 §5) or by the timers; the
        rest stay queued, in order.  Never held: the timeout's resend of
        the left edge (after an RTO cwnd is one MSS, and that is the segment
        it lets out, RFC 5681 §3.1), and probes (zero-window, tail loss)."""
        out = []
        rexmit = self.rexmit
        held = []
        stats = self.stats
        board = self.board
        gbn = self.gbn
        while rexmit:
            rec = rexmit.popleft()
            if rec.end <= snd_una or rec.off not in board.records:
                rec.queued = False
                continue
            if not gbn and rec.off > snd_una and rec.sacked:
                rec.queued = False
                continue
            if budget is not None and (rec.why in LOSS_CAUSES or rec.why == "timeout"):
                # (A timeout's resend of the left edge goes whatever cwnd says.)
                if rec.end - rec.off > budget and (rec.why != "timeout"
                                                   or rec.off > snd_una):
                    held.append(rec)
                    budget = -1  # and everything after it: lowest first (RFC 6675 NextSeg)
                    continue
                budget -= rec.end - rec.off
            rec.queued = False
            rec.sent_at = now
            if not gbn:
                board.retime(rec)
            counter, tag = REXMIT_KIND[rec.why]
            setattr(stats, counter, getattr(stats, counter) + 1)
            rec.sent_why = tag
            if self.trace and rec.why not in ("timeout", "probe"):
                self._emit(now, "fast_rexmit", off=rec.off, len=rec.end - rec.off,
                           why="dupack" if rec.why == "fast" else rec.why)
            out.append(rec)
        rexmit.extend(held)
        return out

    # ---------------------------------------------------------------- ACKs
    def on_dsack(self, off: int, ack_off: int, snd_nxt: int) -> None:
        """RFC 2883: the peer got [off, ...) twice.  If it was a segment we
        resent, the resend was spurious (reordering, not loss): widen RACK's
        reordering window.  Duplicates the link made say nothing."""
        self.stats.dsacks += 1
        why = self._recent_rexmits.get(off)
        # RFC 8985 §6.2 step 4: once per round trip, and only for resends
        # the reordering window decided (a needless tail probe or RTO says
        # nothing about reordering, §7.4).
        if why in ("fast", "sack", "rack"):
            self.rack.on_spurious(ack_off, snd_nxt)

    def on_sack_block(self, left: int, right: int, ack_off: int, now: float,
                      newest: tuple[float, int]) -> tuple[float, int]:
        """A SACK block [left, right) of stream offsets, valid (inside what
        is outstanding): the scoreboard takes it; returns the newest usable
        delivery it reports, (send time, end), or ``newest`` if later.  Every
        newly SACKed segment counts (RFC 8985 §6.2 step 2), not only the one
        ending the block: a resend that fills a hole inside a block (a tail
        loss probe, typically) is the newest delivery there is."""
        board = self.board
        may_use = self.rack.may_use
        end_rec = board.by_end.get(right)
        if (end_rec is not None and (end_rec.sent_at, end_rec.end) > newest
                and may_use(end_rec, now)):
            newest = (end_rec.sent_at, end_rec.end)
        high = board.high_sacked
        nbytes, recs = board.add_sack(left, right, ack_off)
        for rec in recs:
            if (rec.sent_at, rec.end) > newest and may_use(rec, now):
                newest = (rec.sent_at, rec.end)
        self.stats.sacked_bytes += nbytes
        if board.high_sacked > high:
            # The newest arrival the peer reports: an RTT sample if it went
            # only once (Karn), as a timestamp-less TCP takes it.
            if end_rec is not None and not end_rec.lost:
                self.sample(now - end_rec.sent_at, now)
        return newest

    def on_new_ack(self, ack_off: int, snd_nxt: int, now: float,
                   newest: tuple[float, int], ecr: int | None = None) -> tuple[float, int]:
        """The cumulative ACK moved to ``ack_off``: the scoreboard drops what
        it covers.  Returns the newest usable delivery (may_use) among the
        segments it acknowledges, as (send time, end), or ``newest`` if
        later: for RACK every newly acknowledged segment counts, cumulatively
        as selectively (RFC 8985 §6.2 step 2), and a resend that fills the
        hole at the left edge is often the newest delivery there is.
        ``ecr``: the ACK's timestamp echo (RFC 7323; None without): the
        round trip it measures is the sample when Karn's rule allows none
        (a resend)."""
        gone = self.board.pop_acked(ack_off, not self.gbn)
        sample_rec = None
        if not self.gbn:  # (RACK runs with SACK only)
            may_use = self.rack.may_use
            n_at, n_end = newest
            for rec in gone:
                at = rec.sent_at
                if (at > n_at or at == n_at and rec.end > n_end) and may_use(rec, now):
                    n_at, n_end = at, rec.end
            newest = (n_at, n_end)
        if gone:
            rec = gone[-1]
            if rec.end == ack_off and not rec.lost and not rec.fin:
                # (Not the FIN: the peer acknowledges it only once the file is
                # written, synced and checked, PROTOCOL.md §5; that wait says
                # nothing about the path, and one such sample of tens of ms
                # would be the summary's RTT maximum and final SRTT.)
                sample_rec = rec
        if sample_rec is not None and not sample_rec.sacked:
            self.sample(now - sample_rec.sent_at, now)
        elif ecr is not None and gone and not gone[-1].fin:  # (the FIN's waits for the disk)
            # What Karn's rule leaves unmeasured (a resend, or a segment
            # SACKed before), the echo measures.  Our own timing goes first,
            # as Linux prefers it (tcp_ack_update_rtt): an echo is of the
            # earliest segment a delayed ACK covers, so it adds that delay.
            echo = echo_rtt(now, ecr)
            if echo is not None:
                self.sample(echo, now)
        if self.rack.reo_mult > 1:
            self.rack.on_new_ack(ack_off, snd_nxt)
        self.dupacks = 0
        self._dup_ignore = 0  # gbn: a new hole's duplicates all count (_gone_back)
        if self._loss_scan < ack_off:
            self._loss_scan = ack_off
        if self.gbn:
            self.gbn_deadline = now + self.rto() if self.board.order else None
        return newest

    def on_dupack(self, snd_una: int, snd_nxt: int, now: float) -> None:
        """A duplicate ACK (RFC 5681 §2's definition, checked by the caller).
        Go-Back-N goes back again at every new hole; with SACK one fast
        retransmit per window (RFC 6582), later holes come from the
        scoreboard.  After going back, Go-Back-N lets the duplicates the old
        window still draws go by; three more after those say the hole's
        resend was lost too, and it goes back again without a timeout."""
        self.stats.dupacks += 1
        if self.gbn and self._dup_ignore:
            self._dup_ignore -= 1
            return
        self.dupacks += 1
        if self.dupacks == DUP_THRESH and (self.gbn or snd_una > self._recover):
            self._fast_retransmit(snd_nxt, now)

    def on_delivery(self, delivered_at: tuple[float, int], now: float) -> None:
        """An ACK (sr, with SACK) was taken; ``delivered_at`` is the newest
        delivery it reported (NO_DELIVERY if none)."""
        if delivered_at[0]:
            self.rack.on_delivery(delivered_at, now)
            self._rack_news = True
        self.losses_due = True

    # ------------------------------------------------------------ loss rules
    def detect_losses(self, now: float) -> None:
        """What the ACKs since the last call say is lost (sr): the SACK rule,
        then RACK; then the tail loss probe is armed anew."""
        self.losses_due = False
        if self.board.high_sacked > self._loss_scan:
            self._sack_loss_scan(now)
        if self._rack_news and self.gave_up is None:
            self._rack_news = False
            self._rack_detect(now)
            self._tlp_allowed = True
            self.arm_tlp(now)

    def _sack_loss_scan(self, now: float) -> None:
        """RFC 6675 IsLost: a hole with DUP_THRESH segments' worth SACKed above."""
        # The threshold grows with observed reordering, as RACK's window does
        # (Linux's "reordering" metric works alike).
        board = self.board
        records = board.records
        threshold = board.high_sacked - DUP_THRESH * self.rack.reo_mult * self.mss
        rec = records.get(self._loss_scan)
        while rec is not None and rec.end <= threshold:
            if not rec.lost and not rec.fin and not rec.sacked:
                self._mark_lost(rec, "sack", count=False)
            self._loss_scan = rec.end
            rec = records.get(rec.end)

    def _rack_detect(self, now: float) -> None:
        """RACK (RFC 8985 §6.2) over the per-segment timer queue, which is in
        order of last transmission, against the newest delivery reported so
        far (the reordering timer calls it with no news): what common.rack
        finds overdue is lost.  This also catches a lost retransmission,
        which the duplicate-ACK rules never see again."""
        for rec in self.rack.overdue(self.board.timed.values(), now):
            # The peer just showed it is alive: not a retry toward giving up.
            if not self._mark_lost(rec, "rack", count=False):
                return

    def _fast_retransmit(self, snd_nxt: int, now: float) -> None:
        self._recover = snd_nxt
        order = self.board.order
        if self.gbn:
            # the segments past the hole, less those whose duplicates came already
            self._gone_back(len(order) - 1 - self.dupacks)
            # Three duplicate ACKs: the peer is alive; only a timeout counts
            # toward the retry limit (as for RACK's resends).
            for rec in order:
                if not self._mark_lost(rec, "fast", count=False):
                    return
            self.gbn_deadline = now + self.rto()
        else:
            for rec in order:
                if not rec.sacked:
                    # Resent already (the SACK rule, RACK): that resend is on
                    # its way, and if it is lost, RACK finds it; a second one
                    # now is needless, and its D-SACK widens RACK's window.
                    if not rec.lost:
                        self._mark_lost(rec, "fast")
                    break

    def _gone_back(self, old_dupacks: int) -> None:
        """Go-Back-N resent everything outstanding.  Duplicate ACKs of the same
        hole count anew once those the old window can still draw are through:
        the peer sends one for each segment past the hole that reaches it,
        ``old_dupacks`` of them, at most.  (A new ACK moves on to another
        hole, whose duplicates all count.)"""
        self.dupacks = 0
        self._dup_ignore = max(0, old_dupacks)

    def _mark_lost(self, rec: Outstanding, why: str, count: bool = True) -> bool:
        """Queue ``rec`` for resending, for cause ``why``; False (and
        ``gave_up`` set) past the retry limit.

        ``count`` is False where the peer is known to be alive (it keeps
        acknowledging: the segments Go-Back-N resends behind the oldest one,
        RACK's and the SACK rule's): only a silent peer's timeouts count
        against the retry limit."""
        if rec.queued:
            if why == "timeout" and rec.why in LOSS_CAUSES:
                # Held back by the congestion window past its own timer: a
                # timeout's resend now (take_resends lets the left edge go).
                rec.why = "probe" if rec.probe else "timeout"
            return True
        rec.lost = True  # Karn: no RTT sample from it any more
        recent = self._recent_rexmits
        recent[rec.off] = why
        if len(recent) > 4096:
            recent.popitem(last=False)
        rec.why = "probe" if rec.probe and why == "timeout" else why
        if count:
            rec.rexmits += 1
            if rec.rexmits > self.retries:
                self.gave_up = rec
                return False
        if why in LOSS_CAUSES:
            self.lost_bytes += rec.end - rec.off
            if rec.sent_at > self.lost_sent_at:
                self.lost_sent_at = rec.sent_at
        rec.queued = True
        self.rexmit.append(rec)
        return True
