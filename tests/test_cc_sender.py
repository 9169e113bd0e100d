"""The congestion controller inside the whole sender, on tests/sim.py's fake
clock.  PRR (sr mode): what goes on the wire in loss recovery, resends
included, stays within what RFC 6937 lets out (cwnd = pipe + sndcnt per
ACK, RFC 6675 counting a retransmission as it counts new data), with the
fast retransmit itself always let through (RFC 9937 §4).  One reduction
per window of losses; no growth of a window the receiver's window keeps
the sender from using (RFC 7661)."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common import congestion
from common.recovery import Recovery
from common.rtt import RttEstimator
from common.scoreboard import Outstanding, Scoreboard
from common.sender_core import SenderCore
from common.sender_stats import Stats
from tests import sim
from tests.sim import Bottleneck, Channel, run_transfer

DATA = os.urandom(1_000_000)
MSS = 1000
BIG = 1 << 30


class RecoveryWatch(SenderCore):
    """Each take() in loss recovery (PRR): how many bytes it put in the
    pipe beyond what cwnd left above the pipe (RFC 6675's cwnd - pipe, or
    one MSS for the fast retransmit while PRR has counted nothing out), how
    much PRR had counted out, and the bytes of resends still held.  Not
    counted as sent: the FIN (one sequence number, no room) and the resends
    no congestion window holds, a tail loss probe (RFC 8985 §7) or a
    timeout's."""

    def take(self, now, *a, **kw):
        t = self.transfer
        prr = getattr(t.cc, "prr", None)
        pipe, out_before = t.pipe, prr.out if prr is not None else None
        out = super().take(now, *a, **kw)
        if prr is None:
            return out
        free = sum(r.end - r.off for _, r in out if r is not None
                   and (r.fin or r.sent_why in ("tlp", "timeout", "probe")))
        allowed = max(t.cc.cwnd - pipe, 0)
        if out_before == 0:
            allowed = max(allowed, MSS)
        self.seen.append((t.pipe - pipe - free - allowed, prr.out,
                          sum(r.end - r.off for r in t.recovery.rexmit)))
        return out


def watched_run(algo: str, forward: Channel, **kw):
    seen: list = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sim, "SenderCore", RecoveryWatch)
        mp.setattr(RecoveryWatch, "seen", seen, raising=False)
        r = run_transfer(DATA, mode="sr", cc=algo, window=1 << 20, mss=MSS, forward=forward,
                         backward=Channel(delay=0.01), capacity=4 << 20, min_rto=0.2, **kw)
    assert r.output == DATA and r.sender.delivered
    return r, seen


@pytest.mark.parametrize("algo", ["newreno", "cubic"])
def test_a_burst_of_losses_is_resent_at_prrs_pace(algo):
    """Thirty datagrams in a row dropped in slow start: the thirty resends
    do not go in one burst as soon as they are found lost; no send puts
    more in the pipe than PRR's cwnd leaves room for (or one MSS, the fast
    retransmit), and resends wait their turn in the queue."""
    r, seen = watched_run(algo, Channel(delay=0.01, drop_list=frozenset(range(300, 330))))
    assert r.sender.stats.retransmissions == 30
    assert r.sender.cc.reductions["recovery"] == 1 and r.sender.stats.timeouts == 0
    assert seen
    for excess, out, _held in seen:
        assert excess <= 0, (excess, out)
    assert max(held for _, _, held in seen) >= 10 * MSS  # they did wait


@pytest.mark.parametrize("algo", ["newreno", "cubic"])
def test_a_queue_that_overflows_gets_prrs_pace_too(algo):
    """Through a tail-drop bottleneck: the same bound at every send, and the
    file arrives without a timeout."""
    r, seen = watched_run(algo, Bottleneck(rate=1e6, queue=32 * 1024, delay=0.01))
    assert seen and r.sender.stats.timeouts == 0
    for excess, out, _held in seen:
        assert excess <= 0, (excess, out)


def test_resend_budget_of_each_controller():
    """The fixed window and a controller outside recovery hold nothing back;
    in recovery with SACK the budget is cwnd - pipe, at least one MSS until
    the first resend went (the fast retransmit), and after an RTO cwnd -
    pipe (never below 0); without SACK (gbn), none."""
    assert congestion.create("none", mss=MSS, window=BIG).resend_budget(BIG) is None
    for algo in ("newreno", "cubic"):
        cc = congestion.create(algo, mss=MSS, window=BIG)
        cc.on_path(MSS, True)
        assert cc.resend_budget(0) is None
        cc.cwnd = 20 * MSS
        cc.on_recovery_start(0.0, 19 * MSS, 20 * MSS)
        assert cc.cwnd == 19 * MSS
        assert cc.resend_budget(19 * MSS) == MSS  # the fast retransmit goes
        cc.on_resent(MSS, 0.0)
        assert cc.resend_budget(20 * MSS) == -MSS  # nothing more until ACKs
        cc.on_acked(2 * MSS, None, 0.1, 18 * MSS, True)
        assert cc.resend_budget(18 * MSS) == cc.cwnd - 18 * MSS
        cc.on_rto(1.0, 20 * MSS)
        # RFC 5681's slow start from one MSS: resends within cwnd - pipe
        assert cc.resend_budget(BIG) == 0 and cc.resend_budget(0) == MSS
        gbn = congestion.create(algo, mss=MSS, window=BIG)
        gbn.on_path(MSS, False)
        gbn.on_recovery_start(0.0, 19 * MSS, 20 * MSS)
        assert gbn.resend_budget(BIG) is None


def queue_of_lost(whys):
    rec = Recovery(Scoreboard(), RttEstimator(min_rto=0.2), Stats(), retries=10,
                   give_up=30.0, emit=lambda *a, **k: None, trace=False)
    rec.gbn = False
    rec.mss = MSS
    recs = [Outstanding(i * MSS, b"x" * MSS, 0, False, 0.0, False) for i in range(len(whys))]
    rec.board.register(recs, True)
    for r, why in zip(recs, whys, strict=True):
        rec._mark_lost(r, why, count=False)
    return rec, recs


def test_take_resends_holds_what_the_budget_does_not_cover_in_order():
    rec, recs = queue_of_lost(["rack", "sack", "timeout", "rack"])
    out = rec.take_resends(1.0, 0, budget=MSS + MSS // 2)
    # the first fits; the second does not, nor anything after it, a
    # timeout's resend included (it is not the left edge)
    assert [r.off for r in out] == [0]
    assert [r.off for r in rec.rexmit] == [MSS, 2 * MSS, 3 * MSS]
    assert all(r.queued for r in rec.rexmit) and not recs[0].queued
    assert rec.stats.rexmit_rack == 1 and rec.stats.rexmit_timeout == 0
    out = rec.take_resends(1.1, 0, budget=None)
    assert [r.off for r in out] == [MSS, 2 * MSS, 3 * MSS] and not rec.rexmit


def test_the_timeouts_resend_of_the_left_edge_is_never_held():
    """After an RTO cwnd is one MSS, and the left edge is what it lets out
    (RFC 5681 §3.1): it goes with no room left; the next one waits."""
    rec, _recs = queue_of_lost(["timeout", "timeout"])
    assert [r.off for r in rec.take_resends(1.0, 0, budget=0)] == [0]
    assert [r.off for r in rec.rexmit] == [MSS]


def test_a_held_resend_whose_timer_expires_goes_as_a_timeout():
    """Held by the window past its timer: a timeout's resend now, the left
    edge at once, the next one as the window lets it."""
    rec, recs = queue_of_lost(["rack", "rack"])
    assert rec.take_resends(0.5, 0, budget=0) == []
    rec.on_timer(rec.rto() + 0.01, 0, 2 * MSS, lambda r: False)
    assert rec.rto_fired and [r.why for r in recs] == ["timeout", "timeout"]
    assert [r.off for r in rec.take_resends(1.0, 0, budget=0)] == [0]
    assert [r.off for r in rec.take_resends(1.1, 0, budget=MSS)] == [MSS]


@pytest.mark.parametrize("mode", ["sr", "gbn"])
@pytest.mark.parametrize("algo", ["newreno", "cubic"])
def test_a_window_of_losses_is_one_reduction(algo, mode, monkeypatch):
    """Thirty losses in one window: one congestion event, ssthresh from the
    flight then (NewReno: FlightSize / 2, RFC 5681 (4)) or the window then
    (CUBIC: x 0.7, RFC 9438 §4.6), whatever the mode."""
    cls = type(congestion.create(algo, mss=MSS, window=BIG))
    starts = []
    real = cls.on_recovery_start

    def spy(self, now, pipe, flight=None):
        starts.append((self.cwnd, flight))
        real(self, now, pipe, flight)
        starts[-1] += (self.ssthresh,)

    monkeypatch.setattr(cls, "on_recovery_start", spy)
    r = run_transfer(DATA, mode=mode, cc=algo, window=1 << 20, mss=MSS,
                     forward=Channel(delay=0.01, drop_list=frozenset(range(300, 330))),
                     backward=Channel(delay=0.01), capacity=4 << 20, min_rto=0.2)
    assert r.output == DATA
    assert r.sender.cc.reductions == {"recovery": 1, "recovery_again": 0, "timeout": 0}
    assert len(starts) == 1
    cwnd, flight, ssthresh = starts[0]
    assert flight > 100 * MSS  # slow start had opened the window well past the burst
    assert ssthresh == (flight // 2 if algo == "newreno" else int(cwnd * 0.7))


@pytest.mark.parametrize("algo", ["newreno", "cubic"])
@pytest.mark.parametrize("capacity", [32 * 1024, 128 * 1024])
def test_receiver_window_limited_cwnd_stops_growing(algo, capacity):
    """The receiver's buffer (its window) holds the pipe at ``capacity``;
    cwnd grows in slow start only while at least half of it is in flight
    (RFC 7661's idea, Linux's test), so it ends at most 2 x capacity (plus
    one ACK's growth, 2 MSS), WINDOW (4 MiB) far above."""
    r = run_transfer(DATA, mode="sr", cc=algo, window=4 << 20, mss=MSS, capacity=capacity,
                     forward=Channel(delay=0.01), backward=Channel(delay=0.01), min_rto=0.2)
    assert r.output == DATA
    top = r.sender.transfer.cc_log.max_cwnd
    assert capacity < top <= 2 * capacity + 2 * MSS


@settings(max_examples=30, deadline=None)
@given(algo=st.sampled_from(["newreno", "cubic"]), loss=st.sampled_from([0.01, 0.05, 0.15]),
       ack_loss=st.sampled_from([0.0, 0.05]), seed=st.integers(0, 10_000),
       queue=st.sampled_from([8 * 1024, 32 * 1024]))
def test_prr_bound_holds_through_random_losses(algo, loss, ack_loss, seed, queue):
    """Random data and ACK loss and a tail-drop queue: no send in PRR
    recovery puts more in the pipe than cwnd leaves room for (or the fast
    retransmit's one MSS)."""
    seen: list = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sim, "SenderCore", RecoveryWatch)
        mp.setattr(RecoveryWatch, "seen", seen, raising=False)
        r = run_transfer(DATA[:200_000], mode="sr", cc=algo, window=1 << 20, mss=MSS,
                         forward=Bottleneck(rate=2e6, queue=queue, delay=0.005, loss=loss),
                         backward=Channel(delay=0.005, loss=ack_loss), seed=seed, min_rto=0.2)
    assert r.output == DATA[:200_000]
    for excess, out, _held in seen:
        assert excess <= 0, (excess, out)
