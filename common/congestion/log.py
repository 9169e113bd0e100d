"""What the congestion controller did, for the trace and the summary: the
largest cwnd, and the time spent in each state.  The sender's data path
calls :meth:`CwndLog.observe` after every event it tells the controller;
a change of cwnd, ssthresh or state is what the trace records."""

from __future__ import annotations


class CwndLog:
    __slots__ = ("last", "max_cwnd", "_times", "_state", "_since")

    def __init__(self):
        self.last: tuple | None = None  # (cwnd, ssthresh, state) as last seen
        self.max_cwnd = 0
        self._times: dict[str, float] = {}
        self._state: str | None = None
        self._since: float | None = None

    @property
    def started(self) -> bool:
        return self._since is not None

    def observe(self, cc, now: float) -> bool:
        """Look at ``cc`` at ``now``; True if cwnd, ssthresh or state changed."""
        key = (cc.cwnd, cc.ssthresh, cc.state)
        if key == self.last:
            return False
        self.last = key
        if cc.cwnd > self.max_cwnd:
            self.max_cwnd = cc.cwnd
        state = key[2]
        if state != self._state:
            if self._state is not None:
                self._times[self._state] = self._times.get(self._state, 0.0) + now - self._since
            self._state, self._since = state, now
        return True

    def times(self, now: float) -> dict[str, float]:
        """Seconds spent in each state, the current one counted up to ``now``."""
        out = dict(self._times)
        if self._state is not None:
            out[self._state] = out.get(self._state, 0.0) + max(0.0, now - self._since)
        return out
