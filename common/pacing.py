"""Pacing: new data spread over the round trip instead of sent in one burst.

Sent all at once, a window crosses the link as one burst, each segment
queued behind those before it, so its ACKs come back as a burst and the next
window goes as one again: every segment's RTT is the path's plus a burst's
queueing, and window / RTT falls with it.  Spread over the round trip, the
window keeps the path's RTT (RFC 9002 §7.7 and Linux's pacing say the
same).  The pacer is a token bucket: it holds at most PACE_BURST seconds'
worth of the rate (or two segments, if that is more), and says how many
bytes may go now, or when the next may.  The rate comes from the congestion
controller (:meth:`common.congestion.base.CongestionControl.pacing_rate`);
only new data waits: resends and control segments go at once.
"""

from __future__ import annotations

#: New data goes out at this multiple of cwnd / SRTT.  Linux paces at 1.2x
#: in congestion avoidance and 2x in slow start; the fixed window has no
#: slow start, so one gain between the two.
PACE_GAIN = 1.5
#: The largest burst, in seconds' worth of the rate.
PACE_BURST = 0.001
#: The most bytes an allowance ever names.
NO_LIMIT = 1 << 62


class Pacer:
    """A token bucket over the bytes of new data sent."""

    __slots__ = ("gain", "_empty_at", "_start", "deadline")

    def __init__(self, gain: float = PACE_GAIN):
        if gain < 0:
            raise ValueError(f"the pacing gain must be 0 (off) or positive, not {gain}")
        self.gain = gain
        self._empty_at = 0.0  # when the bucket was last empty
        self._start = 0.0  # the bucket's start for the bytes being sent now
        #: When new data held back by pacing (only) may go; None if none is.
        self.deadline: float | None = None

    def allowance(self, now: float, need: int, rate: float) -> int:
        """Bytes that may go at ``now`` at ``rate`` bytes per second: at least
        ``need`` (the next segment), or 0 with ``deadline`` set to when it may.
        The bucket holds PACE_BURST's worth, and never less than two segments
        (as Linux's smallest burst): a small window goes at once."""
        start = max(self._empty_at, now - max(PACE_BURST, 2 * need / rate))
        due = start + need / rate
        if now < due:  # (one expression decides and waits: no float gap between)
            self.deadline = due
            return 0
        self._start = start
        room = (now - start) * rate
        if room <= need:
            return need
        # (A tiny SRTT makes the rate, and so the room, infinite: no limit.)
        return int(room) if room < NO_LIMIT else NO_LIMIT

    def spent(self, nbytes: int, rate: float, next_need: int = 0) -> None:
        """``nbytes`` of what :meth:`allowance` allowed went; ``next_need``,
        if not 0, is the next segment, held back by the pacer alone."""
        self._empty_at = at = self._start + nbytes / rate
        if next_need:
            self.deadline = at + next_need / rate
