"""Flow control, the sender's side: the receiver's advertised window and the
persist timer (RFC 9293 §3.8.6).

It owns the right edge of the window the peer offered (a stream offset; it
never moves left), the window as last advertised, the peer's window-scale
shift, and the persist timer that sends a zero-window probe when the window
is closed and nothing is in flight.  The congestion window is another
matter: :mod:`common.congestion`.
"""

from __future__ import annotations

from .scoreboard import Outstanding


class PeerWindow:
    """What the receiver lets us send."""

    __slots__ = ("right_edge", "window", "wscale", "_last_field_window", "probe_deadline",
                 "probe_due")

    def __init__(self):
        self.right_edge = 0  # stream offset the peer's window ends at
        self.window = 0  # bytes, as last advertised
        self.wscale = 0  # the shift to apply to the window field (RFC 7323)
        self._last_field_window = -1  # the window of the last ACK, for duplicate ACKs
        self.probe_deadline: float | None = None  # the persist timer
        self.probe_due = False  # it fired: the next take() sends a probe

    def on_syn_ack(self, window: int, wscale: int | None) -> None:
        # RFC 7323: scaling is on only when both SYNs carry the option.
        self.wscale = wscale if wscale is not None else 0
        self.window = window  # never scaled in a SYN-ACK
        self.right_edge = window
        self._last_field_window = window

    def on_ack(self, ack_off: int, field: int) -> bool:
        """An ACK for ``ack_off`` with window field ``field``; returns whether
        the window differs from the last ACK's (then it is no duplicate ACK,
        RFC 5681 §2)."""
        window = field << self.wscale
        changed = window != self._last_field_window
        self._last_field_window = self.window = window
        if ack_off + window > self.right_edge:
            self.right_edge = ack_off + window
        return changed

    def arm_probe(self, deadline: float) -> None:
        """Persist timer (RFC 9293 §3.8.6.1): the window is closed (no room
        for a full segment) and nothing is in flight, so only a window update
        could restart us; if that update is lost, the probe at ``deadline``
        asks again."""
        self.probe_deadline = deadline

    def disarm_probe(self) -> None:
        """The window opened, or something is in flight: no probe."""
        self.probe_deadline = None
        self.probe_due = False

    def next_deadline(self) -> float | None:
        return None if self.probe_due else self.probe_deadline

    def on_timer(self, now: float) -> None:
        if self.probe_deadline is not None and now >= self.probe_deadline and \
                not self.probe_due:
            self.probe_due = True
            self.probe_deadline = None

    def answered(self, rec: Outstanding, last_heard: float) -> bool:
        """Whether ``rec`` is a zero-window probe the peer answered, with a
        zero window: the peer is alive, so its timer is no loss."""
        return rec.probe and last_heard >= rec.sent_at and self.window == 0
