"""Flow control, the receiver's side: the buffer, and the window advertised.

The receive buffer holds ``capacity`` bytes, counting both the bytes handed
to the writer and not yet written (``unwritten``) and the out-of-order store
(:mod:`common.reassembly`, which never holds anything outside the window).
The advertised window is what is free of it, measured from ``rcv_nxt``; its
right edge never moves left (RFC 9293 §3.8.6.2.2), and moves right only by
a useful step (receiver SWS avoidance).  A slow disk shrinks the window to
zero; once the writer frees room again a window update is due.
"""

from __future__ import annotations

MAX_WINDOW_FIELD = 0xFFFF


def window_shift(capacity: int) -> int:
    """The smallest window-scale shift that lets ``capacity`` be advertised."""
    shift = 0
    while (capacity >> shift) > MAX_WINDOW_FIELD and shift < 14:
        shift += 1
    return shift


class ReceiveWindow:
    """The receive buffer's accounting and the window it lets us offer."""

    __slots__ = ("capacity", "mss", "unwritten", "right_edge", "wscale", "last_window",
                 "_sws_step")

    def __init__(self, capacity: int, mss: int):
        self.capacity = capacity  # bytes
        self.mss = mss
        self.unwritten = 0  # delivered to the writer, not yet written
        self.right_edge = 0  # stream offset the window offered ends at
        self.wscale = 0  # the shift we apply to what we advertise
        self.last_window = 0  # bytes, as last advertised
        self._sws_step = min(mss, capacity // 2)

    def on_syn(self, scaled: bool) -> int:
        """The peer's SYN: scaling on (``scaled``: it offered the option) or
        off, in which case the buffer shrinks to what a window field can say.
        Returns the window for the SYN-ACK (never scaled)."""
        if scaled:
            self.wscale = window_shift(self.capacity)
        else:
            self.wscale = 0
            self.capacity = min(self.capacity, MAX_WINDOW_FIELD)
        self.right_edge = self.capacity
        self._sws_step = min(self.mss, self.capacity // 2)
        self.last_window = window = min(self.capacity, MAX_WINDOW_FIELD)
        return window

    def size(self, rcv_nxt: int) -> int:
        """The window from ``rcv_nxt``.  Receiver SWS avoidance (RFC 1122
        §4.2.3.3): the right edge moves only by at least min(MSS, buffer / 2),
        so the sender is never offered a sliver it could fill with a tiny
        segment; the window then reads 0."""
        edge = rcv_nxt + self.capacity - self.unwritten
        if edge - self.right_edge >= self._sws_step:
            self.right_edge = edge
        return self.right_edge - rcv_nxt

    def advertise(self, rcv_nxt: int) -> tuple[int, bool]:
        """The window field for an ACK now, and whether it closes the window
        (zero after a window that was not)."""
        field = min(self.size(rcv_nxt) >> self.wscale, MAX_WINDOW_FIELD)
        closes = field == 0 and self.last_window != 0
        self.last_window = field << self.wscale
        return field, closes

    def written(self, n: int, rcv_nxt: int, open_: bool) -> bool:
        """The writer wrote ``n`` bytes; ``open_`` while data may still come.
        Returns whether a window update is due (RFC 9293 §3.8.6.2.2: the
        window has opened by a full segment or half the buffer, from less
        than a segment)."""
        before = self.last_window
        self.unwritten -= n
        if not open_:
            return False
        win = self.size(rcv_nxt)
        return before < self.mss and win - before >= min(self.mss, self.capacity // 2)
