"""HyStart++ (RFC 9406): leave slow start when the RTT starts to rise.

Per round (a window of data, from the bytes sent when the round began until
the ACKs reach them) it keeps the smallest RTT of the round.  Once a round
has N_RTT_SAMPLE samples and its minimum is above the last round's by
RttThresh = clamp(lastRoundMinRTT / 8, 4 ms, 16 ms), slow start gives way to
Conservative Slow Start (growth divided by CSS_GROWTH_DIVISOR); if the RTT
falls back below the CSS baseline, slow start resumes; after CSS_ROUNDS
rounds of CSS, congestion avoidance begins (ssthresh = cwnd).  Only the
first slow start uses it (RFC 9406 §4.3: after a loss, RFC 5681's)."""

from __future__ import annotations

INF = float("inf")
MIN_RTT_THRESH = 0.004
MAX_RTT_THRESH = 0.016
MIN_RTT_DIVISOR = 8
N_RTT_SAMPLE = 8
CSS_GROWTH_DIVISOR = 4
CSS_ROUNDS = 5


class HyStart:
    """The phase of the first slow start: ``ss``, ``css`` or ``done``."""

    __slots__ = ("phase", "window_end", "last_min", "cur_min", "samples", "css_baseline",
                 "css_rounds")

    def __init__(self):
        self.phase = "ss"
        self.window_end = 0  # the bytes-sent count whose acknowledgment ends the round
        self.last_min = INF
        self.cur_min = INF
        self.samples = 0
        self.css_baseline = INF
        self.css_rounds = 0

    @property
    def divisor(self) -> int:
        """What slow start's growth is divided by now."""
        return CSS_GROWTH_DIVISOR if self.phase == "css" else 1

    def stop(self) -> None:
        """A loss ended slow start: HyStart++ is done for this connection."""
        self.phase = "done"

    def on_ack(self, rtt: float | None, acked_total: int, sent_total: int) -> bool:
        """ACKs with RTT sample ``rtt`` (or None) brought the bytes acknowledged
        so far to ``acked_total`` (``sent_total`` sent so far).  Returns True
        when slow start must end now (enter congestion avoidance)."""
        if self.phase == "done":
            return False
        if acked_total >= self.window_end:  # a round ended: the next begins
            self.last_min, self.cur_min, self.samples = self.cur_min, INF, 0
            self.window_end = sent_total
            if self.phase == "css":
                self.css_rounds += 1
                if self.css_rounds >= CSS_ROUNDS:
                    self.phase = "done"
                    return True
        if rtt is None:
            return False
        self.cur_min = min(self.cur_min, rtt)
        self.samples += 1
        if self.samples < N_RTT_SAMPLE:
            return False
        if self.phase == "ss" and self.last_min < INF:
            thresh = min(max(self.last_min / MIN_RTT_DIVISOR, MIN_RTT_THRESH), MAX_RTT_THRESH)
            if self.cur_min >= self.last_min + thresh:
                self.css_baseline = self.cur_min
                self.css_rounds = 0
                self.phase = "css"
        elif self.phase == "css" and self.cur_min < self.css_baseline:
            self.css_baseline = INF
            self.phase = "ss"
        return False
