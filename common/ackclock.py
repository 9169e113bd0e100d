"""When the receiver acknowledges in-order data (RFC 5681 §4.2, RFC 9293
§3.8.6.3): an ACK at least for every second segment, and none held longer
than a short delayed-ACK timer.

Out-of-order data, a gap filled and duplicates are acknowledged at once by
the receiver core itself (with SACK, batched to the end of the burst being
read, where that batching changes nothing the sender learns).  This is the
in-order half: the core asks :meth:`AckClock.on_segment` for each in-order
segment whether an ACK is due now, and calls :meth:`sent` whenever any ACK
goes.  ``every`` 0: no ACK before the burst's end (one ACK per burst read,
as a receiver behind GRO sends; cheaper, but stretch ACKs).  ``delay``
None: a pending ACK goes at the end of the burst being read (the program's
flush; ``--delayed-ack 0``); a number (the programs' default, DELAYED_ACK):
it may wait that long for a second segment (the timer is ``deadline``).
Through a rate-limited link the receiver reads one datagram per burst, so
the end-of-burst flush would acknowledge every segment: the timer is what
makes it every second one there."""

from __future__ import annotations

#: RFC 5681: an ACK for at least every second full-sized segment.
ACK_EVERY_SEGMENTS = 2
#: After data out of order, a gap filled or a duplicate, this many in-order
#: segments are each acknowledged at once: Linux's quick-ACK mode (its
#: TCP_MAX_QUICKACKS), which it enters at a connection's start and when a
#: retransmission arrives.  The sender recovering from a loss, and its slow
#: start after an RTO, get their ACK clock back without delayed ACKs.  On
#: tests/sim.py's clock (20 Mbit/s, 20 ms, 2 % loss, 2 MB, medians of 8
#: seeds) the 40 ms timer without it made transfers 7-15 % slower than an
#: ACK per segment, with it -5 to +3 %.
QUICK_ACKS = 16
#: The programs' delayed-ACK timer, seconds: Linux's smallest (TCP_DELACK_MIN,
#: 40 ms), well under RFC 9293's 0.5 s and the sender's 0.2 s minimum RTO.
DELAYED_ACK = 0.04


class AckClock:
    __slots__ = ("every", "delay", "unacked", "deadline", "quick")

    def __init__(self, every: int = ACK_EVERY_SEGMENTS, delay: float | None = None):
        if every < 0:
            raise ValueError(f"an ACK for every {every} segments makes no sense")
        if delay is not None and not 0 < delay < 0.5:
            raise ValueError(f"the delayed-ACK timer must be in (0, 0.5) s (RFC 9293), "
                             f"not {delay}")
        self.every = every
        self.delay = delay
        self.unacked = 0  # in-order segments not acknowledged yet
        self.deadline: float | None = None  # the delayed-ACK timer, when armed
        self.quick = 0  # in-order segments still to acknowledge at once (QUICK_ACKS)

    def on_segment(self, now: float) -> bool:
        """An in-order segment arrived at ``now``: True if its ACK must go now."""
        self.unacked += 1
        if self.quick and self.every:
            self.quick -= 1
            return True
        if self.unacked >= self.every > 0:
            return True
        if self.delay is not None and self.deadline is None:
            self.deadline = now + self.delay
        return False

    def disorder(self) -> None:
        """Data came out of order, filled a gap or was a duplicate: the next
        QUICK_ACKS in-order segments are acknowledged at once."""
        self.quick = QUICK_ACKS

    def fired(self) -> None:
        """The timer is sending the ACK: no second segment came within the
        delay, so the sender is likely waiting for this ACK (its window, one
        segment, or its application holds it back).  The next QUICK_ACKS
        segments are acknowledged at once, so that such a sender is held up
        once per QUICK_ACKS + 1 segments, not at every one."""
        self.quick = QUICK_ACKS

    def due(self, now: float) -> bool:
        """Whether the delayed-ACK timer has expired with an ACK pending."""
        return self.unacked > 0 and self.deadline is not None and now >= self.deadline

    def may_wait(self) -> bool:
        """Whether the pending in-order ACK may wait past the burst's end."""
        return self.delay is not None

    def sent(self) -> None:
        """An ACK went (whatever made it go): it covers everything so far."""
        self.unacked = 0
        self.deadline = None
