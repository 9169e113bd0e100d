"""RACK's clock (RFC 8985 §6.2): the newest delivery the peer reported, and
the reordering window.

RACK says a segment is lost once something sent after it was delivered and
that delivery's RTT plus a reordering window has passed since it went.  This
module keeps what that takes (the newest delivery and its RTT, the window
and how observed reordering widens it) and answers which segments are past
due; :mod:`common.recovery` declares them lost.
"""

from __future__ import annotations

from .rtt import RttEstimator
from .scoreboard import Outstanding

#: A resent segment reported within this share of the smallest RTT sample
#: after the resend is taken as a report of its earlier copy (may_use).
EARLY_REPORT = 0.75
#: Round trips the widened reordering window lasts (RFC 8985's reo_wnd_persist).
REO_PERSIST = 16
#: "Nothing delivered": (send time, end) of the newest delivery.
NO_DELIVERY = (0.0, 0)


class Rack:
    """The newest delivery (RACK.xmit_ts, end_seq), its RTT and the reordering window."""

    __slots__ = ("rtt", "xmit", "xmit_rtt", "deadline", "reo_mult", "_round_end",
                 "_rounds_left")

    def __init__(self, rtt: RttEstimator):
        self.rtt = rtt
        self.xmit = NO_DELIVERY  # (send time, end) of the newest delivery
        self.xmit_rtt = 0.0  # the RTT that delivery took
        self.deadline: float | None = None  # the reordering timer (RFC 8985 §6.3)
        self.reo_mult = 1  # the reordering window, in quarters of the min RTT
        self._round_end = 0  # snd_nxt when reo_mult last changed: once per round trip
        self._rounds_left = 0  # round trips until reo_mult goes back to 1

    def may_use(self, rec: Outstanding, now: float) -> bool:
        """Whether ``rec``'s latest send time may stand for when what the peer
        just reported was sent (RACK.xmit_ts).  Not for a resent segment
        reported sooner than the smallest RTT after the resend: that report
        is of an earlier copy (RFC 8985 §6.2 step 2).  Our RTT samples run
        from when a segment was taken to when its ACK was read, a little
        longer than the path's, so "sooner" is EARLY_REPORT of the smallest:
        a resend that is the only thing in flight (a tail loss probe) comes
        back in about the path's RTT, and must count, or the holes behind it
        wait for the RTO.  Taking the resend's time there makes everything
        sent before it look lost, segments still on their way included, and
        each such spurious resend widens the reordering window (DSACK) until
        loss detection is slow."""
        if not rec.lost:
            return True
        rtt = self.rtt
        return not rtt.samples or now - rec.sent_at >= EARLY_REPORT * rtt.sample_min

    def on_delivery(self, delivered_at: tuple[float, int], now: float) -> None:
        """The newest delivery an ACK reported, (send time, end)."""
        if delivered_at > self.xmit:
            self.xmit = delivered_at
            self.xmit_rtt = now - delivered_at[0]

    def on_spurious(self, ack_off: int, snd_nxt: int) -> None:
        """A resend the reordering window decided was needless (a D-SACK of
        it): widen the window, once per round trip (RFC 8985 §6.2 step 4)."""
        if ack_off >= self._round_end:
            self.reo_mult = min(self.reo_mult + 1, 16)
            self._round_end = snd_nxt
            self._rounds_left = REO_PERSIST

    def on_new_ack(self, ack_off: int, snd_nxt: int) -> None:
        """After REO_PERSIST round trips without a spurious resend the
        reordering window goes back to its smallest (RFC 8985 §6.2 step 4)."""
        if self.reo_mult > 1 and ack_off >= self._round_end:
            self._round_end = snd_nxt
            self._rounds_left -= 1
            if self._rounds_left <= 0:
                self.reo_mult = 1

    def overdue(self, timed, now: float) -> list[Outstanding]:
        """The segments of ``timed`` (in order of last transmission) sent
        before the newest delivery (at the same time: with a lower end, as
        RACK_sent_after breaks ties) whose delivery RTT and reordering window
        have passed; the first one not yet that old sets ``deadline``, so
        that a resend lost again at the tail, with nothing sent after it to
        report, is found then and not by the tail loss probe or the RTO."""
        xmit, xmit_end = self.xmit
        rtt = self.rtt
        reo_wnd = max(0.001, rtt.sample_min / 4 if rtt.samples else 0.0)
        if rtt.srtt is not None:
            # The window grows while RACK's losses turn out spurious (RFC 8985
            # §6.2 step 4, with "the segment had already arrived" as the sign).
            reo_wnd = min(reo_wnd * self.reo_mult, rtt.srtt)
        wait = self.xmit_rtt + reo_wnd
        next_due = None
        lost = []
        for rec in timed:
            if rec.sent_at >= xmit:
                if rec.sent_at > xmit:
                    break
                if rec.end >= xmit_end:
                    continue  # sent with it, after it
            if rec.sacked:
                # Only the left edge stays on the queue once SACKed (RFC 2018
                # §8): the scoreboard takes every other SACKed segment off.
                continue
            if not rec.queued and not rec.fin:
                # (The peer holds a FIN back until every byte is in, so a FIN
                # waiting behind a hole is not lost.)
                due = rec.sent_at + wait
                if due > now:
                    # What comes after went no earlier: none of it is lost yet.
                    next_due = due
                    break
                lost.append(rec)
        self.deadline = next_due
        return lost
