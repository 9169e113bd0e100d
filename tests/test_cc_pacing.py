"""Pacing with congestion control on (issue 20): without --pacing the pacer
runs at cwnd / SRTT times the controller's gain, 2 in slow start and 1.2
after (as Linux); --pacing GAIN overrides it.  On tests/sim.py's fake clock."""

from __future__ import annotations

import os

import pytest

from common.congestion.newreno import CA_PACE_GAIN, SS_PACE_GAIN, NewReno
from tests.sim import Channel, run_transfer

DATA = os.urandom(400_000)


def gains_used(pacing, monkeypatch) -> set[tuple[str, float]]:
    seen: set[tuple[str, float]] = set()
    real = NewReno.pacing_rate

    def spy(self, srtt, gain):
        seen.add((self.state, gain))
        return real(self, srtt, gain)

    monkeypatch.setattr(NewReno, "pacing_rate", spy)
    # one loss in slow start, then avoidance for the rest of the file
    r = run_transfer(DATA, mode="sr", cc="newreno", pacing=pacing, window=1 << 20, mss=1000,
                     forward=Channel(delay=0.01, drop_list=frozenset({60})),
                     backward=Channel(delay=0.01), min_rto=0.2)
    assert r.output == DATA
    return seen


def test_default_gain_is_2_in_slow_start_and_1_2_after(monkeypatch):
    seen = gains_used(None, monkeypatch)
    assert ("slow_start", SS_PACE_GAIN) in seen and ("avoidance", CA_PACE_GAIN) in seen
    assert (SS_PACE_GAIN, CA_PACE_GAIN) == (2.0, 1.2)
    for state, gain in seen:
        assert gain == (SS_PACE_GAIN if state == "slow_start" else CA_PACE_GAIN), (state, gain)


@pytest.mark.parametrize("gain", [1.0, 3.0])
def test_pacing_flag_overrides_the_controllers_gain(monkeypatch, gain):
    seen = gains_used(gain, monkeypatch)
    assert {"slow_start", "avoidance"} <= {s for s, _ in seen}
    assert {g for _, g in seen} == {gain}
