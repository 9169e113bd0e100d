"""The congestion controller's interface: how much may be in flight.

The sender core owns one controller and asks it ``cwnd`` ("how many bytes may
be in flight?", in the RFC 6675 sense of the pipe: sent and neither
cumulatively nor selectively acknowledged) before it sends new data, and
``pacing_rate`` for the pacer.  It tells the controller what happened, each
event with the time ``now`` (the controller never reads a clock):

``on_path(mss, sack)``
    the handshake agreed the MSS in use and whether SACK is on;
``on_sent(nbytes, now)`` / ``on_resent(nbytes, now)``
    new data went out / segments went out again;
``on_acked(nbytes, rtt, now, pipe, cwnd_limited, acks=1)``
    the ``acks`` ACKs read together at ``now`` newly acknowledged ``nbytes``,
    cumulatively or selectively; ``rtt`` is the latest RTT sample they gave
    (None if none, Karn); ``pipe`` is RFC 6675's pipe after them;
    ``cwnd_limited`` says whether sending was held back by ``cwnd`` since
    the last call (RFC 7661: grow the window only when it was);
``on_lost(nbytes, sent_at, now, pipe)``
    a segment of ``nbytes`` sent at ``sent_at`` was declared lost (duplicate
    ACKs, RFC 6675's rule, RACK); a loss of something sent before recovery
    began belongs to the congestion event already answered;
``on_recovery_start(now, pipe, flight)`` / ``on_recovery_end(now)``
    loss recovery began (the first loss declared outside recovery; PRR,
    RFC 6937, counts from here; ``flight`` is snd_nxt - snd_una) and ended
    (the cumulative ACK passed what was outstanding when it began);
``on_rto(now, flight)``
    the retransmission timer expired (RFC 5681 §3.1: ssthresh, then one MSS).

It answers ``resend_budget(pipe)``: how many bytes of the resends the loss
rules asked for may go now (None: all of them).

Attributes: ``cwnd`` and ``ssthresh`` in bytes (ssthresh None until a loss
sets one), ``state`` a short name for traces, ``reductions`` the window
reductions so far by cause.  A controller changes only itself.  To add one:
a module here with a subclass, and one line in ``ALGORITHMS`` in
``common/congestion/__init__.py``.
"""

from __future__ import annotations

from ..pacing import PACE_GAIN


class CongestionControl:
    """The interface, with do-nothing events; subclasses override what they use."""

    #: The name the registry knows it by.
    name = ""

    def __init__(self, *, mss: int, window: int):
        self.mss = mss
        self.cap = window  # the user's WINDOW: cwnd never exceeds it
        self.cwnd = window
        self.ssthresh: int | None = None
        self.sack = False
        self.reductions: dict[str, int] = {}

    @property
    def state(self) -> str:
        """A short name of the algorithm's state, for traces."""
        return self.name

    @property
    def in_slow_start(self) -> bool:
        return False

    @property
    def pacing_gain(self) -> float:
        """The gain to pace at when the user named none (Linux's: 2 in slow
        start, 1.2 after; pacing.PACE_GAIN, between the two, without slow
        start)."""
        return PACE_GAIN

    def pacing_rate(self, srtt: float, gain: float) -> float:
        """Bytes per second the pacer lets new data go at: ``gain`` x cwnd / SRTT."""
        return gain * self.cwnd / srtt

    def resend_budget(self, pipe: int) -> int | None:
        """Bytes of resends that may go now with ``pipe`` bytes in the
        network, or None for no limit (RFC 6675 §5 counts retransmissions
        against cwnd - pipe as it counts new data)."""
        return None

    def on_path(self, mss: int, sack: bool) -> None:
        self.mss = mss
        self.sack = sack

    def on_sent(self, nbytes: int, now: float) -> None:
        pass

    def on_resent(self, nbytes: int, now: float) -> None:
        pass

    def on_acked(self, nbytes: int, rtt: float | None, now: float, pipe: int,
                 cwnd_limited: bool, acks: int = 1) -> None:
        pass

    def on_lost(self, nbytes: int, sent_at: float, now: float, pipe: int) -> None:
        pass

    def on_recovery_start(self, now: float, pipe: int, flight: int | None = None) -> None:
        pass

    def on_recovery_end(self, now: float) -> None:
        pass

    def on_rto(self, now: float, flight: int | None = None) -> None:
        pass
