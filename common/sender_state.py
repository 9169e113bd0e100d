"""The sender's connection states, and what the programs and the tests
read of the core: the copy the threads take under the lock (SenderView),
and the readings of the data path's parts (SenderReadings).

Shared by :mod:`common.sender_core` and the parts it is built of
(:mod:`common.sender_handshake`, :mod:`common.sender_teardown`);
:mod:`common.sender_core` re-exports SenderState and FINAL_STATES.
"""

from __future__ import annotations

from enum import Enum
from typing import NamedTuple

#: The window we advertise: the sender receives nothing but control segments.
SENDER_WINDOW = 0xFFFF


class SenderState(Enum):
    CLOSED = "CLOSED"
    SYN_SENT = "SYN_SENT"
    ESTABLISHED = "ESTABLISHED"
    FIN_WAIT_1 = "FIN_WAIT_1"
    FIN_WAIT_2 = "FIN_WAIT_2"
    TIME_WAIT = "TIME_WAIT"
    DONE = "DONE"
    ABORTED = "ABORTED"


#: States in which the connection is over, one way or the other.
FINAL_STATES = (SenderState.DONE, SenderState.ABORTED)
#: States in which the connection is established (data, then the FIN, may go).
OPEN_STATES = (SenderState.ESTABLISHED, SenderState.FIN_WAIT_1)


class SenderView(NamedTuple):
    """What a thread may read of the core outside the lock: a copy, taken under it."""

    state: SenderState
    base: int  # the wire number of stream offset 0
    snd_una: int
    snd_nxt: int
    srtt: float | None
    rto: float  # the timeout the timers use
    # The wire number after our SYN: base + the name's length while a name
    # offered in the SYN is unanswered (PROTOCOL.md §9), else base.  An
    # answer to the SYN acknowledges base or syn_end.
    syn_end: int


class SenderReadings:
    """What the programs and the tests read of
    :class:`common.sender_core.SenderCore` (its base class): each reading
    comes from the part that owns it; nothing is owned here."""

    def view(self) -> SenderView:
        """A copy of what the threads read outside the lock (call it under the lock)."""
        return SenderView(self.state, self.base, self.snd_una, self.snd_nxt, self.rtt.srtt,
                          self.recovery.rto(), self.handshake.syn_end())

    @property
    def timer_rto(self) -> float:
        """The timeout the timers actually use (the RTO, capped; common.recovery)."""
        return self.recovery.rto()

    @property
    def window(self) -> int:
        """How many bytes may be in flight: the congestion controller's window."""
        return self.cc.cwnd

    @property
    def right_edge(self) -> int:
        """The stream offset the peer's advertised window ends at."""
        return self.flow.right_edge

    @property
    def peer_window(self) -> int:
        """The peer's window as last advertised, in bytes."""
        return self.flow.window

    @property
    def snd_wscale(self) -> int:
        return self.flow.wscale

    @property
    def snd_una(self) -> int:
        """The oldest byte not yet acknowledged (stream offset)."""
        return self.transfer.snd_una

    @property
    def snd_nxt(self) -> int:
        """The next byte to send for the first time (stream offset)."""
        return self.transfer.snd_nxt

    @property
    def outstanding(self) -> int:
        """Bytes sent and not cumulatively acknowledged."""
        return self.snd_nxt - self.snd_una

    @property
    def in_flight(self) -> int:
        """Bytes sent and neither cumulatively nor selectively acknowledged (the pipe)."""
        return self.transfer.in_flight

    @property
    def finished(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def established(self) -> bool:
        return self.state in OPEN_STATES

    @property
    def pace_deadline(self) -> float | None:
        """When new data held back by pacing (only) may go; None if none is."""
        return self.pacer.deadline
