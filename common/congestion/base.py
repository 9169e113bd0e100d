"""The congestion controller's interface: how much may be in flight.

The sender core owns one controller and asks it ``cwnd`` ("how many bytes may
be in flight?", in the RFC 6675 sense of the pipe: sent and neither
cumulatively nor selectively acknowledged) before it sends new data, and
``pacing_rate`` for the pacer.  It tells the controller what happened, each
event with the time ``now`` (the controller never reads a clock):

``on_sent(nbytes, now)``
    new data went out (not resends);
``on_acked(nbytes, rtt, now, pipe, cwnd_limited)``
    the ACKs read together at ``now`` newly acknowledged ``nbytes``,
    cumulatively or selectively; ``rtt`` is the latest RTT sample they gave
    (None if none, Karn); ``pipe`` is the pipe after them; ``cwnd_limited``
    says whether the last send was held back by ``cwnd`` (RFC 7661: grow the
    window only when it was);
``on_lost(nbytes, sent_at, now, pipe)``
    a segment of ``nbytes`` sent at ``sent_at`` was declared lost (duplicate
    ACKs, RFC 6675's rule, RACK); a loss of something sent before recovery
    began belongs to the congestion event already answered;
``on_recovery_start(now, pipe)`` / ``on_recovery_end(now)``
    loss recovery began (the first loss declared outside recovery; PRR,
    RFC 6937, counts from here with ``pipe``) and ended (the cumulative ACK
    passed what was outstanding when it began);
``on_rto(now)``
    the retransmission timer expired (RFC 5681 §3.1: ssthresh, then one MSS).

Attributes: ``cwnd`` and ``ssthresh`` in bytes (ssthresh None until a loss
sets one), ``state`` a short name for traces.  A controller changes only
itself.  To add one: a module here with a subclass, and one line in
``ALGORITHMS`` in ``common/congestion/__init__.py``.
"""

from __future__ import annotations


class CongestionControl:
    """The interface, with do-nothing events; subclasses override what they use."""

    #: The name the registry knows it by.
    name = ""

    def __init__(self, *, mss: int, window: int):
        self.mss = mss
        self.cwnd = window
        self.ssthresh: int | None = None

    @property
    def state(self) -> str:
        """A short name of the algorithm's state, for traces."""
        return self.name

    def pacing_rate(self, srtt: float, gain: float) -> float:
        """Bytes per second the pacer lets new data go at: ``gain`` x cwnd / SRTT."""
        return gain * self.cwnd / srtt

    def on_sent(self, nbytes: int, now: float) -> None:
        pass

    def on_acked(self, nbytes: int, rtt: float | None, now: float, pipe: int,
                 cwnd_limited: bool) -> None:
        pass

    def on_lost(self, nbytes: int, sent_at: float, now: float, pipe: int) -> None:
        pass

    def on_recovery_start(self, now: float, pipe: int) -> None:
        pass

    def on_recovery_end(self, now: float) -> None:
        pass

    def on_rto(self, now: float) -> None:
        pass
