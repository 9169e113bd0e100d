"""ACK clocking in the receiver core (common.ackclock): an ACK at least for
every second in-order segment (RFC 5681 §4.2), also inside a coalesced run,
each saying what that segment's own ACK would; an odd one's ACK at the end
of the burst, or after a short delayed-ACK timer (RFC 9293 §3.8.6.3)."""

from __future__ import annotations

import os

import pytest

from common.ackclock import QUICK_ACKS, AckClock
from common.batch import Run
from common.receiver_core import ReceiverCore
from common.rtt import RttEstimator
from common.segment import ACK, SYN, Segment

PIECE = 100
DATA = os.urandom(50 * PIECE)


def receiver(**kw) -> ReceiverCore:
    r = ReceiverCore(isn=5000, mode="sr", mss=PIECE, capacity=1 << 20,
                     rtt=RttEstimator(min_rto=0.2), **kw)
    r.on_segment(Segment(1000, 0, SYN, 0xFFFF, mss=PIECE, wscale=0, sack_permitted=True,
                         file_size=len(DATA)), 0.0)
    r.on_segment(Segment(1001, 5001, ACK, 0xFFFF), 0.01)
    r.outbox.clear()
    return r


def seg(k: int, n: int = 1) -> Segment:
    return Segment(1001 + k * PIECE, 5001, ACK, 0xFFFF, DATA[k * PIECE:(k + n) * PIECE])


def acked(r: ReceiverCore) -> list[int]:
    """The stream offsets the ACKs in the outbox acknowledge; clears it."""
    out = [(s.ack - 1001) & 0xFFFFFFFF for s in r.outbox]
    r.outbox.clear()
    return out


def test_every_second_segment_of_a_burst_is_acked_at_once():
    """The stretch ACK the issue saw (5 ACKs for 85 segments) is gone: 9
    in-order segments read in one burst get 4 ACKs as they come and one at
    the burst's end."""
    r = receiver()
    for k in range(9):
        r.on_segment(seg(k), 0.1)
    assert acked(r) == [200, 400, 600, 800]
    r.flush_ack(0.1)
    assert acked(r) == [900]
    r.flush_ack(0.1)
    assert acked(r) == []  # nothing pending any more


@pytest.mark.parametrize("count", [2, 5, 8])
def test_a_coalesced_run_is_acked_as_its_segments_would_be(count):
    whole, split = receiver(), receiver()
    for r in (whole, split):  # one full-sized segment first, as a transfer starts
        r.on_segment(seg(0), 0.1)
        r.flush_ack(0.1)
        r.outbox.clear()
        r.deliver.clear()
    end = (count + 1) * PIECE - 30
    run = Run(Segment(1101, 5001, ACK, 0xFFFF, DATA[PIECE:end]), count, PIECE)
    assert whole.accepts_run(run.segment)
    whole.on_segment(run.segment, 0.2, run.count)
    for piece in run.split():
        split.on_segment(piece, 0.2)
    for r in (whole, split):
        r.flush_ack(0.2)
    got = acked(whole)
    assert got == acked(split)
    pairs = [PIECE + 2 * PIECE * i for i in range(1, count // 2 + 1)]
    assert got == (pairs[:-1] + [end] if count % 2 == 0 else pairs + [end])
    assert b"".join(bytes(d) for d in whole.deliver) == DATA[PIECE:end]


def test_out_of_order_is_acked_at_once_then_quick_acks():
    """Out of order and the gap's filling: ACKs at once (RFC 5681 §4.2);
    then QUICK_ACKS in-order segments get one each, and after them every
    second one again."""
    r = receiver(delayed_ack=0.04)
    r.on_segment(seg(0), 0.1)
    r.on_segment(seg(2), 0.1)  # a hole at 1
    assert acked(r) == [100]  # at once, the odd in-order one with it
    r.on_segment(seg(1), 0.1)  # fills the hole: at once
    assert acked(r) == [300]
    for k in range(3, 3 + QUICK_ACKS):
        r.on_segment(seg(k), 0.1)
    assert acked(r) == [(k + 1) * PIECE for k in range(3, 3 + QUICK_ACKS)]
    k = 3 + QUICK_ACKS
    r.on_segment(seg(k), 0.1)
    assert acked(r) == []  # the delayed-ACK timer's again
    r.on_segment(seg(k + 1), 0.1)
    assert acked(r) == [(k + 2) * PIECE]


def test_quick_acks_do_not_apply_to_one_ack_per_burst():
    """--ack-every 0 asked for one ACK per burst: out-of-order data is
    still acknowledged at once, in-order data after it is not."""
    r = receiver(ack_every=0)
    r.on_segment(seg(1), 0.1)  # out of order
    assert acked(r) == [0]
    r.on_segment(seg(0), 0.1)  # fills the gap
    assert acked(r) == [200]
    r.on_segment(seg(2), 0.1)
    r.on_segment(seg(3), 0.1)
    assert acked(r) == []
    r.flush_ack(0.1)
    assert acked(r) == [400]


def test_delayed_ack_timer():
    r = receiver(delayed_ack=0.04)
    r.on_segment(seg(0), 1.0)
    r.flush_ack(1.0)
    assert acked(r) == []  # may wait for a second segment
    assert r.next_deadline() == pytest.approx(1.04)
    r.on_timer(1.039)
    assert acked(r) == []
    r.on_timer(1.04)
    assert acked(r) == [100]
    assert r.next_deadline() == pytest.approx(r.last_heard + r.give_up)
    r.ack_clock.quick = 0  # (the quick ACKs that follow a fired timer: tested below)
    r.on_segment(seg(1), 2.0)
    r.on_segment(seg(2), 2.01)  # the second: at once, and the timer is off
    assert acked(r) == [300]
    assert r.ack_clock.deadline is None


def test_a_timer_that_fires_gives_quick_acks():
    """Nothing followed a lone segment for the whole delay: the sender waits
    for its ACK (a window of one segment, say).  The timer's ACK goes, and
    the next QUICK_ACKS segments get theirs at once, not 40 ms each."""
    r = receiver(delayed_ack=0.04)
    r.on_segment(seg(0), 1.0)
    assert acked(r) == []
    r.on_timer(1.04)
    assert acked(r) == [PIECE]
    for k in range(1, 1 + QUICK_ACKS):
        r.on_segment(seg(k), 1.05 + k * 0.01)
        assert acked(r) == [(k + 1) * PIECE]
    r.on_segment(seg(1 + QUICK_ACKS), 1.3)
    assert acked(r) == []  # held again


@pytest.mark.parametrize("kw", [{"every": -1}, {"delay": 0.0}, {"delay": 0.5}])
def test_ackclock_bad_settings_raise(kw):
    with pytest.raises(ValueError):
        AckClock(**kw)


def test_ack_every_zero_is_one_ack_per_burst():
    """--ack-every 0: the old behaviour, one ACK at the burst's end."""
    r = receiver(ack_every=0)
    for k in range(9):
        r.on_segment(seg(k), 0.1)
    assert acked(r) == []
    r.flush_ack(0.1)
    assert acked(r) == [900]
