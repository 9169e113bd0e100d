"""No congestion control: the assignment's fixed window (WINDOW bytes).

cwnd is the window the user gave, whatever happens: losses, timeouts and
ACKs change nothing.  Registered as ``none``."""

from __future__ import annotations

from .base import CongestionControl


class FixedWindow(CongestionControl):
    name = "none"

    @property
    def state(self) -> str:
        return "fixed"
