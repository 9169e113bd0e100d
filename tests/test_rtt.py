"""common.rtt: RFC 6298 arithmetic, clamping and backoff, checked against numbers worked by hand."""

from __future__ import annotations

import pytest

from common.rtt import RttEstimator

G = 0.001


def approx(x):
    return pytest.approx(x, rel=1e-12, abs=1e-12)


def test_initial_rto_is_one_second():
    e = RttEstimator()
    assert e.rto == 1.0
    assert e.srtt is None and e.rttvar is None
    assert e.samples == 0 and e.backoff == 0


def test_initial_rto_clamped_by_bounds():
    assert RttEstimator(min_rto=2.0, max_rto=60.0).rto == 2.0
    assert RttEstimator(min_rto=0.1, max_rto=0.5).rto == 0.5


def test_bad_bounds_rejected():
    with pytest.raises(ValueError):
        RttEstimator(min_rto=0.0)
    with pytest.raises(ValueError):
        RttEstimator(min_rto=2.0, max_rto=1.0)


def test_first_sample():
    # R = 0.3: SRTT = 0.3, RTTVAR = 0.15, RTO = 0.3 + max(0.001, 0.6) = 0.9
    e = RttEstimator(min_rto=0.2, max_rto=60.0)
    e.on_sample(0.3)
    assert e.srtt == approx(0.3)
    assert e.rttvar == approx(0.15)
    assert e.rto == approx(0.9)
    assert e.samples == 1


def test_first_sample_granularity_dominates():
    # R = 0.0002 s, 4*RTTVAR = 0.0004 < G: RTO = R + G, then clamped to the minimum
    e = RttEstimator(min_rto=0.0001, max_rto=60.0, granularity=G)
    e.on_sample(0.0002)
    assert e.rto == approx(0.0002 + 0.001)


def test_second_sample_by_hand():
    e = RttEstimator(min_rto=0.2, max_rto=60.0)
    e.on_sample(0.4)  # SRTT 0.4, RTTVAR 0.2
    e.on_sample(0.2)
    # RTTVAR = 3/4 * 0.2 + 1/4 * |0.4 - 0.2| = 0.15 + 0.05 = 0.2
    # SRTT   = 7/8 * 0.4 + 1/8 * 0.2        = 0.35 + 0.025 = 0.375
    # RTO    = 0.375 + 4 * 0.2              = 1.175
    assert e.rttvar == approx(0.2)
    assert e.srtt == approx(0.375)
    assert e.rto == approx(1.175)


def test_third_sample_uses_old_srtt_for_rttvar():
    """RFC 6298 §2.3: RTTVAR is updated with the SRTT from before this sample."""
    e = RttEstimator(min_rto=0.01, max_rto=60.0)
    for r in (0.1, 0.1, 0.5):
        e.on_sample(r)
    # after 0.1: S=0.1, V=0.05; after 0.1: V=0.75*0.05+0=0.0375, S=0.1
    # after 0.5: V=0.75*0.0375+0.25*0.4=0.028125+0.1=0.128125; S=0.875*0.1+0.0625=0.15
    assert e.rttvar == approx(0.128125)
    assert e.srtt == approx(0.15)
    assert e.rto == approx(0.15 + 4 * 0.128125)


def test_clamped_at_minimum():
    e = RttEstimator(min_rto=0.2, max_rto=60.0)
    e.on_sample(0.01)  # 0.01 + 0.02 = 0.03 < 0.2
    assert e.rto == 0.2
    e2 = RttEstimator(min_rto=1.0, max_rto=60.0)  # RFC 6298's own minimum
    e2.on_sample(0.1)
    assert e2.rto == 1.0


def test_clamped_at_maximum():
    e = RttEstimator(min_rto=0.2, max_rto=5.0)
    e.on_sample(4.0)  # 4 + 8 = 12 > 5
    assert e.rto == 5.0
    assert e.srtt == approx(4.0)


def test_backoff_doubles_up_to_max_and_holds():
    e = RttEstimator(min_rto=0.2, max_rto=10.0)
    e.on_sample(0.3)  # RTO 0.9
    expected = [1.8, 3.6, 7.2, 10.0, 10.0, 10.0]
    for exp in expected:
        e.on_timeout()
        assert e.rto == approx(exp)
    assert e.backoff >= 4


def test_backoff_from_initial_rto():
    e = RttEstimator()
    e.on_timeout()
    assert e.rto == approx(2.0)
    e.on_timeout()
    assert e.rto == approx(4.0)
    assert e.backoff == 2


def test_backoff_stays_until_new_sample():
    e = RttEstimator(min_rto=0.2, max_rto=60.0)
    e.on_sample(0.3)
    e.on_timeout()
    e.on_timeout()
    assert e.rto == approx(3.6)
    # nothing but time passes: the RTO stays backed off
    assert e.rto == approx(3.6)
    e.on_sample(0.3)  # S: 0.3, V: 0.75*0.15 + 0 = 0.1125
    assert e.backoff == 0
    assert e.rto == approx(0.3 + 4 * 0.1125)


def test_negative_sample_ignored():
    e = RttEstimator()
    e.on_sample(-0.5)
    assert e.samples == 0 and e.srtt is None and e.rto == 1.0


def test_sample_statistics():
    e = RttEstimator()
    for r in (0.2, 0.1, 0.3):
        e.on_sample(r)
    assert e.samples == 3
    assert e.sample_min == approx(0.1)
    assert e.sample_max == approx(0.3)
    assert e.sample_avg == approx(0.2)
