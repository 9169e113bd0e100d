"""The sender summary's SRTT and RTO rows say in words what happened
(issue 24, item 5): "SRTT n/a, final RTO 60000.0 ms (timers capped at
3750 ms)" told a student nothing.  RFC 6298 arithmetic on a fresh estimator."""

from __future__ import annotations

import pytest

from common.rtt import RttEstimator
from sender.rtt_words import rtt_rows

pytestmark = pytest.mark.timeout(10)


def rows(rtt, timer_rto):
    return dict(rtt_rows(rtt, timer_rto))


def test_no_valid_sample_and_backed_off_to_the_maximum():
    """The issue's case: every segment resent, eight timeouts in a row."""
    rtt = RttEstimator(min_rto=0.2, max_rto=60.0)
    for _ in range(8):
        rtt.on_timeout()
    assert rtt.rto == 60.0 and rtt.srtt is None
    r = rows(rtt, 3.75)
    assert "n/a" not in r["SRTT"]
    assert r["SRTT"].startswith("none: not one valid RTT sample")
    assert "Karn" in r["SRTT"]
    rto = r["final RTO"]
    # 1 s doubled: 2, 4, ... 64 s clamps at 60 s on the sixth doubling; the
    # estimator counts only the doublings that raised it
    assert rto.startswith("60000.0 ms: the initial 1000.0 ms doubled 6 times by timeouts")
    assert "up to the maximum (--max-rto 60 s)" in rto
    assert "the timers never waited more than 3750.0 ms" in rto


def test_samples_then_timeouts():
    rtt = RttEstimator(min_rto=0.2, max_rto=60.0)
    rtt.on_sample(0.1)  # SRTT 100 ms, RTTVAR 50 ms: RTO 300 ms
    rtt.on_timeout()
    rtt.on_timeout()
    r = rows(rtt, rtt.rto)
    assert r["SRTT"] == "100.0 ms (smoothed over 1 sample, RFC 6298)"
    assert r["final RTO"] == ("1200.0 ms: 300.0 ms doubled twice by timeouts with no "
                              "valid RTT sample since")


def test_a_quiet_run_says_where_its_rto_comes_from():
    rtt = RttEstimator(min_rto=0.2, max_rto=60.0)
    rtt.on_sample(0.01)  # 10 ms + 4 x 5 ms = 30 ms, raised to 200 ms
    assert rows(rtt, rtt.rto)["final RTO"] == (
        "200.0 ms (SRTT + 4 x RTTVAR, raised to the minimum, --min-rto 0.2 s)")
    rtt = RttEstimator(min_rto=0.2, max_rto=60.0)
    rtt.on_sample(0.1)
    assert rows(rtt, rtt.rto)["final RTO"] == "300.0 ms (SRTT + 4 x RTTVAR)"


def test_no_sample_and_no_timeout():
    rtt = RttEstimator()
    assert rows(rtt, rtt.rto)["final RTO"] == (
        "1000.0 ms (the initial RTO: no sample ever set it)")
