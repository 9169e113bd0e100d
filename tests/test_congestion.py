"""Congestion control on a fake clock: NewReno (RFC 5681, 6582, 3465, 6928,
PRR per RFC 6937) and CUBIC (RFC 9438, HyStart++ per RFC 9406), driven by
scripted ACK streams; then whole transfers through a simulated bottleneck."""

from __future__ import annotations

import math
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common import congestion
from common.congestion.cubic import ALPHA, BETA, C, Cubic
from common.congestion.hystart import CSS_GROWTH_DIVISOR, CSS_ROUNDS
from common.congestion.newreno import NewReno, initial_window
from common.congestion.prr import Prr
from common.sender_core import SenderCore
from tests import sim
from tests.sim import Bottleneck, Channel, run_transfer

MSS = 1000
BIG = 1 << 30


def one_round(cc, now: float, rtt: float, per_ack: int = MSS, limited: bool = True) -> float:
    """One round trip of ACKs on a fake clock: what is in flight (cwnd, the
    first time) acknowledged ``per_ack`` bytes an ACK, spread over ``rtt``;
    after each ACK the sender sends what cwnd then allows (a window-limited
    sender: what it sends in round n is acknowledged in round n + 1)."""
    flight = getattr(cc, "_test_flight", None)
    if flight is None:
        flight = cc.cwnd
        cc.on_sent(flight, now)
    n = max(1, flight // per_ack)
    for i in range(n):
        t = now + rtt * (i + 1) / n
        flight -= per_ack
        cc.on_acked(per_ack, rtt, t, flight, limited)
        if limited and cc.cwnd > flight:
            cc.on_sent(cc.cwnd - flight, t)
            flight = cc.cwnd
    cc._test_flight = flight if limited else None
    return now + rtt


def test_registry_knows_all_three():
    assert congestion.names() == ["cubic", "newreno", "none"]
    assert isinstance(congestion.create("newreno", mss=MSS, window=BIG), NewReno)
    assert isinstance(congestion.create("cubic", mss=MSS, window=BIG), Cubic)


@pytest.mark.parametrize("mss,iw", [(1000, 10_000), (1452, 14_520), (4000, 14_600),
                                    (8000, 16_000)])
def test_initial_window_rfc6928(mss, iw):
    assert initial_window(mss) == iw
    assert NewReno(mss=mss, window=BIG).cwnd == iw
    assert NewReno(mss=mss, window=mss + 1).cwnd == mss + 1  # never above WINDOW


@pytest.mark.parametrize("per_ack", [MSS, 2 * MSS])
def test_slow_start_doubles_per_rtt(per_ack):
    """With ACKs for one or two segments each (ABC, L = 2), every round
    trip doubles cwnd."""
    cc = NewReno(mss=MSS, window=BIG)
    now = 0.0
    for _ in range(5):
        before = cc.cwnd
        now = one_round(cc, now, 0.1, per_ack)
        assert cc.cwnd == 2 * before
        assert cc.state == "slow_start"


def test_abc_limits_a_stretch_ack_to_two_segments():
    cc = NewReno(mss=MSS, window=BIG)
    cc.on_acked(8 * MSS, 0.1, 0.1, 0, True, acks=1)
    assert cc.cwnd == 10 * MSS + 2 * MSS


def test_avoidance_grows_one_mss_per_rtt():
    cc = NewReno(mss=MSS, window=BIG)
    cc.cwnd = cc.ssthresh = 20 * MSS
    now = 0.0
    for i in range(1, 6):
        now = one_round(cc, now, 0.1)
        assert cc.cwnd == (20 + i) * MSS
        assert cc.state == "avoidance"


def test_no_growth_when_not_cwnd_limited():
    """RFC 7661: a window the sender does not fill does not grow."""
    for cc in (NewReno(mss=MSS, window=BIG), Cubic(mss=MSS, window=BIG)):
        start = cc.cwnd
        now = 0.0
        for _ in range(4):
            now = one_round(cc, now, 0.1, limited=False)
        assert cc.cwnd == start


def test_three_dupacks_halve_newreno_gbn_partial_acks():
    """Without SACK: RFC 6582.  ssthresh = FlightSize / 2, cwnd = ssthresh +
    3 MSS; a partial ACK deflates by what it acknowledged less one MSS; the
    full ACK leaves ssthresh."""
    cc = NewReno(mss=MSS, window=BIG)
    cc.on_path(MSS, False)
    cc.on_recovery_start(1.0, 19 * MSS, 20 * MSS)
    assert cc.ssthresh == 10 * MSS and cc.cwnd == 13 * MSS and cc.state == "recovery"
    cc.on_acked(4 * MSS, None, 1.1, 15 * MSS, True)
    assert cc.cwnd == 13 * MSS - 4 * MSS + MSS
    cc.on_acked(MSS // 2, None, 1.15, 15 * MSS, True)  # less than one MSS: none back
    assert cc.cwnd == 10 * MSS - MSS // 2
    cc.on_recovery_end(1.2)
    assert cc.cwnd == 10 * MSS and cc.state == "avoidance"
    assert cc.reductions["recovery"] == 1


def test_cubic_multiplies_by_beta():
    cc = Cubic(mss=MSS, window=BIG)
    cc.on_path(MSS, False)
    cc.cwnd = 100 * MSS
    cc.on_recovery_start(1.0, 99 * MSS, 100 * MSS)
    assert cc.ssthresh == int(100 * MSS * BETA)
    cc.on_recovery_end(1.2)
    assert cc.cwnd == 70 * MSS and cc.w_max == 100 * MSS


def test_rto_gives_one_mss_and_keeps_ssthresh_on_repeat():
    for cc in (NewReno(mss=MSS, window=BIG), Cubic(mss=MSS, window=BIG)):
        cc.cwnd = 40 * MSS
        cc.on_rto(1.0, 30 * MSS)
        assert cc.cwnd == MSS and cc.state == "loss"
        first = cc.ssthresh
        assert first == (15 * MSS if cc.name == "newreno" else 28 * MSS)
        cc.on_rto(2.0, 30 * MSS)  # expires again before any progress
        assert cc.cwnd == MSS and cc.ssthresh == first
        assert cc.reductions["timeout"] == 1
        cc.on_acked(MSS, None, 2.5, 0, True)  # slow start again from one MSS
        assert cc.cwnd == 2 * MSS
        cc.on_recovery_end(3.0)  # everything outstanding at the RTO is in
        assert cc.state == "slow_start"


def test_rto_ssthresh_at_least_two_mss():
    cc = NewReno(mss=MSS, window=BIG)
    cc.on_rto(1.0, MSS)
    assert cc.ssthresh == 2 * MSS


def test_prr_never_sends_more_than_rfc6937_allows():
    """sr mode: a loss in a window of 20 segments; each ACK delivers one
    segment and the sender sends what cwnd - pipe allows.  While the pipe is
    above ssthresh, everything sent in recovery (the resend included) stays
    within CEIL(prr_delivered x ssthresh / RecoverFS); the pipe then settles
    at ssthresh, never below it by more than SSRB allows."""
    cc = NewReno(mss=MSS, window=BIG)
    cc.on_path(MSS, True)
    cc.cwnd = 20 * MSS
    flight, pipe = 20 * MSS, 19 * MSS  # one segment declared lost
    cc.on_recovery_start(0.0, pipe, flight)
    ssthresh = cc.ssthresh
    assert ssthresh == 10 * MSS
    cc.on_resent(MSS, 0.0)
    pipe += MSS
    sent, delivered = MSS, 0
    for i in range(1, 40):
        delivered += MSS
        pipe -= MSS
        cc.on_acked(MSS, None, i * 0.01, pipe, True)
        allowed = max(0, cc.cwnd - pipe)
        if pipe > ssthresh:  # (the fast retransmit itself goes first, in any case)
            assert not allowed or sent + allowed <= math.ceil(delivered * ssthresh / flight)
        else:
            assert pipe + allowed <= ssthresh
        if allowed:
            cc.on_sent(allowed, i * 0.01)
            sent += allowed
            pipe += allowed
    assert pipe == ssthresh
    cc.on_recovery_end(1.0)
    assert cc.cwnd == ssthresh


def test_prr_ssrb_when_pipe_fell_below_ssthresh():
    prr = Prr(ssthresh=10 * MSS, recover_fs=20 * MSS, mss=MSS)
    # Heavy loss: the pipe is far below ssthresh; SSRB allows at most what
    # was delivered (or what this ACK delivered) plus one MSS.
    assert prr.sndcnt(2 * MSS, 3 * MSS) == 3 * MSS


def test_lost_retransmission_is_a_new_congestion_event():
    cc = NewReno(mss=MSS, window=BIG)
    cc.on_path(MSS, True)
    cc.cwnd = 40 * MSS
    cc.on_recovery_start(1.0, 39 * MSS, 40 * MSS)
    cc.on_lost(MSS, 0.9, 1.0, 39 * MSS)  # sent before: the same event
    assert cc.ssthresh == 20 * MSS and cc.reductions["recovery_again"] == 0
    cc.on_lost(MSS, 1.05, 1.2, 24 * MSS)  # sent in recovery, lost again
    assert cc.ssthresh == 12 * MSS and cc.reductions["recovery_again"] == 1


# --------------------------------------------------------------------- CUBIC


def cubic_after_loss(w_max_segments: int, now: float = 0.0) -> Cubic:
    cc = Cubic(mss=MSS, window=BIG)
    cc.on_path(MSS, True)
    cc.cwnd = w_max_segments * MSS
    cc.on_recovery_start(now, cc.cwnd, cc.cwnd)
    cc.on_recovery_end(now)
    return cc


def test_cubic_window_follows_w_of_t():
    """RFC 9438 §4.2: W(t) = C (t - K)^3 + W_max, t from the epoch's start,
    K = cbrt(W_max (1 - beta) / C); on a 100 ms ACK clock cwnd stays within
    1% of it, before and after the plateau, as long as the curve is above
    Reno's estimate W_est (past that, the Reno-friendly region rules)."""
    rtt = 0.1
    cc = cubic_after_loss(100)
    k = (100 * (1 - BETA) / C) ** (1 / 3)
    now = 0.0
    checks = {}
    for _ in range(int(5.5 / rtt)):
        now = one_round(cc, now, rtt)
        t = now - cc.epoch
        for want in (0.5, 1.0, 2.0, 3.0, 4.0, k, 5.0):
            if want not in checks and t >= want:
                checks[want] = (cc.cwnd, (C * (t - k) ** 3 + 100) * MSS, cc.w_est)
    assert cc.k == pytest.approx(k)
    assert len(checks) == 7
    for want, (cwnd, model, w_est) in checks.items():
        assert model > w_est
        assert cwnd == pytest.approx(model, rel=0.01), (want, cwnd, model)


def test_cubic_fast_convergence():
    """A second loss before the window regained W_max lowers W_max to
    cwnd (1 + beta) / 2 (RFC 9438 §4.7)."""
    cc = cubic_after_loss(100)
    now = one_round(cc, 0.0, 0.1)
    cwnd = cc.cwnd
    assert cwnd < 100 * MSS
    cc.on_recovery_start(now, cwnd, cwnd)
    assert cc.w_max == pytest.approx(cwnd * (1 + BETA) / 2)
    off = Cubic(mss=MSS, window=BIG, fast_convergence=False)
    off.on_path(MSS, True)
    off.cwnd = 100 * MSS
    off.on_recovery_start(0.0, off.cwnd, off.cwnd)
    off.on_recovery_end(0.0)
    one_round(off, 0.0, 0.1)
    cwnd = off.cwnd
    off.on_recovery_start(1.0, cwnd, cwnd)
    assert off.w_max == cwnd


def test_cubic_reno_friendly_region():
    """On a short RTT, Reno's window (W_est, growing alpha = 3(1-beta)/(1+beta)
    segments per round) outgrows the cubic curve, and cwnd follows W_est
    (RFC 9438 §4.3)."""
    cc = cubic_after_loss(100)
    now = 0.0
    rounds = 50
    for _ in range(rounds):
        now = one_round(cc, now, 0.01)
    t = now - cc.epoch
    assert (C * (t - cc.k) ** 3 + 100) * MSS < cc.w_est
    assert cc.cwnd == pytest.approx((70 + ALPHA * rounds) * MSS, rel=0.01)


def test_cubic_curve_waits_while_the_window_is_not_used():
    """RFC 9438 §5.8: while the sender does not fill cwnd it does not grow,
    and the time does not count on W(t) either (the epoch moves on, as
    Linux): 10 rounds, 20 rounds not cwnd-limited, 5 more rounds give the
    window of 15 rounds without the pause, not a jump toward W_max."""
    rtt = 0.1
    paused, steady = cubic_after_loss(100), cubic_after_loss(100)
    now = 0.0
    for _ in range(10):
        now = one_round(paused, now, rtt)
    held, epoch = paused.cwnd, paused.epoch
    for _ in range(20):
        now = one_round(paused, now, rtt, limited=False)
    assert paused.cwnd == held
    assert paused.epoch == pytest.approx(epoch + 20 * rtt, abs=rtt)
    for _ in range(5):
        now = one_round(paused, now, rtt)
    t = 0.0
    for _ in range(15):
        t = one_round(steady, t, rtt)
    assert paused.cwnd == pytest.approx(steady.cwnd, rel=0.01)
    assert paused.cwnd < 0.97 * (C * (now - epoch - paused.k) ** 3 + 100) * MSS


def test_cubic_after_rto_starts_from_k_zero():
    cc = Cubic(mss=MSS, window=BIG)
    cc.cwnd = 50 * MSS
    cc.on_rto(0.0, 50 * MSS)
    assert cc.cwnd == MSS and cc.ssthresh == 35 * MSS
    cc.on_recovery_end(0.5)
    now = 0.5
    while cc.state != "avoidance":
        now = one_round(cc, now, 0.1)
    now = one_round(cc, now, 0.1)
    assert cc.k == 0.0 and cc.w_max == cc.cwnd_epoch


def test_hystart_leaves_slow_start_when_rtt_rises():
    """RFC 9406: RTTs 10 ms above the last round's minimum (more than
    clamp(RTT / 8, 4 ms, 16 ms)) end slow start for Conservative Slow Start,
    which grows a quarter as fast and, after CSS_ROUNDS rounds, gives way
    to congestion avoidance with ssthresh = cwnd."""
    cc = Cubic(mss=MSS, window=BIG)
    now = 0.0
    for _ in range(3):
        now = one_round(cc, now, 0.05)
    assert cc.hystart.phase == "ss" and cc.in_slow_start
    now = one_round(cc, now, 0.06)
    assert cc.hystart.phase == "css"
    rounds = 0
    while cc.in_slow_start:
        before = cc.cwnd
        now = one_round(cc, now, 0.06)
        rounds += 1
        if cc.in_slow_start:  # a quarter of slow start's growth
            assert cc.cwnd <= before * 1.25 + 2 * MSS
    assert rounds <= CSS_ROUNDS
    assert cc.state == "avoidance" and cc.hystart.phase == "done"
    assert cc.ssthresh is not None and cc.ssthresh <= cc.cwnd


def test_css_divides_the_abc_limited_growth():
    """RFC 9406 §4.2: in Conservative Slow Start cwnd grows by
    min(N, L x SMSS) / CSS_GROWTH_DIVISOR: a stretch ACK for 8 segments
    adds 2 MSS / 4, not min(8 MSS / 4, 2 MSS)."""
    cc = Cubic(mss=MSS, window=BIG)
    cc.hystart.phase = "css"
    before = cc.cwnd
    cc.on_acked(8 * MSS, None, 0.1, 0, True, acks=1)
    assert cc.cwnd - before == 2 * MSS // CSS_GROWTH_DIVISOR
    cc.hystart.phase = "ss"
    before = cc.cwnd
    cc.on_acked(8 * MSS, None, 0.2, 0, True, acks=1)
    assert cc.cwnd - before == 2 * MSS


# ------------------------------------------------------------ invariants

EVENTS = st.lists(st.tuples(
    st.sampled_from(["ack", "ack", "ack", "recovery", "end", "lost", "rto", "sent", "resent"]),
    st.integers(1, 40), st.booleans()), max_size=120)


@settings(max_examples=150, deadline=None)
@given(algo=st.sampled_from(["newreno", "cubic"]), sack=st.booleans(),
       cap=st.integers(MSS, 200 * MSS), events=EVENTS)
def test_invariants_on_random_event_sequences(algo, sack, cap, events):
    """Whatever the ACKs and losses: MSS <= cwnd <= WINDOW, ssthresh at
    least 2 MSS once set, one MSS right after an RTO."""
    cc = congestion.create(algo, mss=MSS, window=cap)
    cc.on_path(MSS, sack)
    now = 0.0
    for kind, n, flag in events:
        now += 0.01 * n
        nbytes = n * MSS
        if kind == "ack":
            cc.on_acked(nbytes, 0.02 + 0.001 * n if flag else None, now, nbytes, True, 1 + n % 3)
        elif kind == "recovery":
            cc.on_recovery_start(now, nbytes, nbytes + MSS)
        elif kind == "end":
            cc.on_recovery_end(now)
        elif kind == "lost":
            cc.on_lost(MSS, now - (0.005 if flag else 1.0), now, nbytes)
        elif kind == "rto":
            cc.on_rto(now, nbytes)
            assert cc.cwnd == MSS and cc.state == "loss"
        elif kind == "sent":
            cc.on_sent(nbytes, now)
        else:
            cc.on_resent(nbytes, now)
        assert MSS <= cc.cwnd <= cap
        assert cc.ssthresh is None or cc.ssthresh >= 2 * MSS
        assert cc.state in ("slow_start", "avoidance", "recovery", "loss")


# ----------------------------------------------------- through a bottleneck

DATA = os.urandom(3_000_000)


@pytest.mark.parametrize("algo", ["newreno", "cubic"])
@pytest.mark.parametrize("mode", ["sr", "gbn"])
def test_transfer_through_a_bottleneck(algo, mode):
    """8 Mbit/s with a 64 KiB tail-drop queue, 20 ms RTT, WINDOW 1 MiB: the
    file arrives; in sr mode at most 5% of its bytes are resent, and the
    fixed window, for contrast, floods the queue."""
    mss = 1452

    def run(cc):
        fw = Bottleneck(rate=1e6, queue=64 * 1024, delay=0.01)
        r = run_transfer(DATA, mode=mode, cc=cc, window=1 << 20, mss=mss, forward=fw,
                         backward=Channel(delay=0.01), capacity=4 << 20, min_rto=0.2)
        return r, fw

    r, fw = run(algo)
    assert r.output == DATA and r.sender.delivered
    resent = r.sender.stats.retransmissions * mss
    if mode == "sr":
        assert resent <= 0.05 * len(DATA)
        flood, _ = run("none")
        assert flood.sender.stats.retransmissions > 5 * r.sender.stats.retransmissions
    events = [f for _, ev, f in r.sender.events if ev == "cwnd"]
    assert {e["state"] for e in events} >= {"slow_start", "recovery", "avoidance"}
    assert sum(r.sender.cc.reductions.values()) >= 1
    # one reduction per window: not one per segment the queue dropped
    assert r.sender.cc.reductions["recovery"] < fw.drops


@pytest.mark.parametrize("algo", ["newreno", "cubic"])
def test_in_flight_never_exceeds_window(algo):
    window = 24 * 1024
    r = run_transfer(DATA[:400_000], cc=algo, window=window, mss=1000,
                     forward=Channel(delay=0.01), backward=Channel(delay=0.01))
    assert r.output == DATA[:400_000]
    assert r.sender.transfer.cc_log.max_cwnd <= window
    flights = [f["pipe"] for _, ev, f in r.sender.events if ev == "inflight"]
    assert flights and max(flights) <= window


class WatchedSender(SenderCore):
    """The sender core, noting the largest pipe right after each take()."""

    max_pipe = 0

    def take(self, now, *a, **kw):
        out = super().take(now, *a, **kw)
        if self.in_flight > self.max_pipe:
            self.max_pipe = self.in_flight
        return out


@settings(max_examples=40, deadline=None)
@given(algo=st.sampled_from(["newreno", "cubic"]), mode=st.sampled_from(["sr", "gbn"]),
       loss=st.sampled_from([0.0, 0.01, 0.05, 0.1]), ack_loss=st.sampled_from([0.0, 0.05]),
       seed=st.integers(0, 10_000), window=st.sampled_from([8 * 1024, 64 * 1024, 1 << 20]))
def test_random_losses_deliver_within_the_window(algo, mode, loss, ack_loss, seed, window):
    """Whole transfers on the fake clock through random data and ACK loss and a
    bottleneck: the file arrives intact, the pipe (in flight: sent, neither
    cumulatively nor selectively acknowledged, RFC 6675) never exceeds
    WINDOW, and cwnd stays within [1 MSS, WINDOW]."""
    data = DATA[:150_000]
    fw = Bottleneck(rate=2e6, queue=32 * 1024, delay=0.005, loss=loss)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sim, "SenderCore", WatchedSender)
        r = run_transfer(data, mode=mode, cc=algo, window=window, mss=1000, forward=fw,
                         backward=Channel(delay=0.005, loss=ack_loss), seed=seed, min_rto=0.2)
    assert r.output == data and r.sender.delivered
    assert 0 < r.sender.max_pipe <= window  # after every send, not only after ACKs
    cwnds = [f["cwnd"] for _, ev, f in r.sender.events if ev == "cwnd"]
    # (one MSS: 1000 bytes less the 12 the RFC 7323 timestamps take of each segment)
    assert cwnds and min(cwnds) >= r.sender.eff_mss and max(cwnds) <= window
