"""After a retransmission timeout, on the sender core's fake clock
(tests/test_sender_core.py's Harness, --cc newreno and cubic): one MSS
resent, then slow start, every resend (the timers' and RACK's) counted
against cwnd - pipe (RFC 5681 §3.1: never more than cwnd), and ssthresh kept through the
episode: neither the timer expiring again (RFC 5681 §3.1) nor a resend
lost again (RFC 6582 §3.2 step 4; Linux's Loss state) recomputes it from
the small window slow start has reached."""

from __future__ import annotations

import pytest

from common.rtt import RttEstimator
from common.sender_core import SenderCore
from tests.test_sender_core import MSS, Harness

pytestmark = pytest.mark.timeout(60)


def timed_out(algo: str) -> Harness:
    """0..1000 sent at 0.05 (RTT 0.05 s), 0..500 acknowledged at 0.10 and
    1000..1700 sent then; nothing more is heard, the tail loss probe goes at
    0.20 and the RTO fires at 0.25 for 500..1000."""
    h = Harness(3000)
    h.s = SenderCore(isn=h.rx.isn_s, file_size=3000, mss=MSS, window=1 << 20,
                     rtt=RttEstimator(min_rto=0.2), give_up=100.0, pacing=0.0,
                     congestion_control=algo)
    h.open()
    h.segs()
    h.advance(0.05)
    h.feed(h.rx.ack(500))
    assert h.offsets(h.segs())[-1] == (1600, 100)
    while h.s.stats.timeouts == 0:
        h.fire()
        h.rto_sent = h.offsets(h.segs())
    assert h.now == pytest.approx(0.25)
    cc = h.s.transfer.cc
    assert cc.cwnd == MSS and cc.state == "loss"
    return h


@pytest.mark.parametrize("algo", ["newreno", "cubic"])
def test_an_rto_resends_one_mss(algo):
    """Five segments' timers expired together (500..1000, sent at 0.05):
    cwnd is one MSS, and the left edge is all that goes (RFC 5681 §3.1);
    each ACK then lets out what slow start allows."""
    h = timed_out(algo)
    t = h.s.transfer
    assert h.rto_sent == [(500, MSS)]
    h.advance(0.05)
    h.feed(h.rx.ack(600))
    assert t.cc.cwnd == 2 * MSS
    assert h.offsets(h.segs()) == [(600, MSS), (700, MSS)]


@pytest.mark.parametrize("algo", ["newreno", "cubic"])
def test_after_an_rto_resends_wait_for_cwnd(algo):
    """500's resend is acknowledged at 0.30: RACK finds 1000..1700 (sent
    before the resend that was delivered) lost, but slow start allows 2
    MSS: 600 and 700 go (the RTO's lost segments first), nothing more."""
    h = timed_out(algo)
    t = h.s.transfer
    h.advance(0.05)
    h.feed(h.rx.ack(600))
    room = max(t.cc.cwnd - t.pipe, 0)
    sent = sum(n for _, n in h.offsets(h.segs()))
    assert t.recovery.rexmit  # found lost, waiting
    assert sent <= room
    assert t.pipe <= t.cc.cwnd


@pytest.mark.parametrize("algo", ["newreno", "cubic"])
def test_a_resend_lost_again_after_an_rto_keeps_ssthresh(algo):
    """600's resend (sent by the timer at 0.25) is lost, 700's arrives: RACK
    declares 600 lost again.  ssthresh stays what the RTO set, no second
    reduction, still the RTO's slow start."""
    h = timed_out(algo)
    cc = h.s.transfer.cc
    ssthresh = cc.ssthresh
    h.advance(0.05)
    h.feed(h.rx.ack(600))
    h.segs()
    h.advance(0.05)
    h.feed(h.rx.ack(600, sack=[(700, 800)]))
    h.segs()
    h.fire()  # RACK's reordering timer for 600's resend
    h.segs()
    assert h.s.stats.rexmit_rack >= 1
    assert cc.ssthresh == ssthresh
    assert cc.reductions == {"recovery": 0, "recovery_again": 0, "timeout": 1}
    assert cc.state == "loss"


@pytest.mark.parametrize("algo", ["newreno", "cubic"])
def test_the_timer_expiring_again_keeps_ssthresh_and_one_mss(algo):
    """Nothing is heard after the RTO: the resends' timers expire again
    (backed off, RFC 6298 §5.5): cwnd 1 MSS again, ssthresh as the first
    RTO set it (RFC 5681 §3.1), not from the FlightSize of then."""
    h = timed_out(algo)
    t = h.s.transfer
    ssthresh, rto = t.cc.ssthresh, t.recovery.rto()
    while h.s.stats.timeouts < 3:
        h.fire()
        h.segs()
    assert t.cc.cwnd == MSS and t.cc.ssthresh == ssthresh
    assert t.recovery.rto() == pytest.approx(4 * rto)
    assert t.cc.reductions["timeout"] == 1
