"""bench/bench_cc.py's models and tables, without running transfers (the
benchmark itself is run by hand: python -m bench.bench_cc --results)."""

from __future__ import annotations

import json
import math

import pytest

from bench import bench_cc as b
from bench import cc_steady


def test_mathis_model():
    # MSS / RTT x sqrt(3/2) / sqrt(p): 1440 bytes (1452 less the timestamps'
    # 12), 20 ms, 1 %
    assert b.mathis_bps(0.01, 0.02) == pytest.approx(1440 * 8 / 0.02 * 1.2247449 / 0.1)


def test_cubic_average_window_rfc9438():
    # short RTT, high p: the Reno-friendly average sqrt(3 / (2p)) rules
    assert b.cubic_avg_segments(0.01, 0.02) == pytest.approx(math.sqrt(150))
    # long RTT, low p: the cubic curve's (C (3 + beta) / (4 (1 - beta)))^(1/4) RTT^(3/4) / p^(3/4)
    cubic = (0.4 * 3.7 / 1.2) ** 0.25 * 0.2 ** 0.75 / 1e-5 ** 0.75
    assert b.cubic_avg_segments(1e-5, 0.2) == pytest.approx(cubic)
    assert cubic > math.sqrt(3 / 2e-5)


def test_mean_cwnd_is_time_weighted_from_the_first_reduction():
    cw = [(0.0, 10, "slow_start"), (1.0, 40, "slow_start"), (2.0, 20, "recovery"),
          (3.0, 30, "avoidance")]
    assert b._mean_cwnd(cw, 5.0) == pytest.approx((20 * 1 + 30 * 2) / 3)
    assert b._mean_cwnd(cw[:2], 5.0) is None  # never left slow start


def test_percentile():
    xs = list(range(1, 101))
    assert b.pct(xs, 50) == 50 and b.pct(xs, 99) == 99 and b.pct([7], 99) == 7


def test_tables_have_units_and_the_block_round_trips(tmp_path):
    m = {"runs": 1, "when": "now",
         "row1": [{"cc": c, "window": "8M", "util": 0.97, "resent": 0.01, "goodput_bps": 19e6,
                   "cpu": 2.0} for c in ("newreno", "cubic", "none")],
         "row2": [{"cc": c, "p": 0.01, "size": 4 << 20, "goodput_bps": 7e6, "rtt": 0.02,
                   "mathis_bps": 7e6, "mean_cwnd_seg": 12.0, "model_cwnd_seg": 12.2}
                  for c in ("newreno", "cubic")],
         "row4": [{"queue": q, "aqm": a, "goodput_bps": 9.8e6, "p50": 0.01, "p99": 0.02,
                   "resent": 0.0} for q in (5, 20, 100) for a in ("none", "codel")]}
    text = b.tables(m)
    for line in text.splitlines():
        if line.startswith("| ") and "---" not in line and not line[2].isdigit() \
                and not line.startswith(("| newreno", "| cubic", "| none")):
            for head in line.strip("| ").split(" | "):
                assert "(" in head or head in ("--cc", "AQM"), head
    results = tmp_path / "RESULTS.md"
    results.write_text("# Results\n\nother text\n")
    b.write_results(text, results)
    b.write_results(text, results)  # replaced, not appended twice
    page = results.read_text()
    assert page.count(b.BEGIN) == 1 and page.startswith("# Results")
    assert b.kept_block(results).strip().startswith(b.BEGIN)


def test_steady_time_mean_counts_the_value_in_force():
    cw = [(0.0, 10), (1.0, 20), (3.0, 5)]
    # [0.5, 4]: 10 for 0.5 s, 20 for 2 s, 5 for 1 s
    assert cc_steady.time_mean(cw, 0.5, 4.0) == pytest.approx((5 + 40 + 5) / 3.5)
    assert cc_steady.time_mean(cw, 2.0, 2.0) is None


def test_steady_models():
    assert cc_steady.model_segments("newreno", 0.001) == pytest.approx(math.sqrt(1500))
    assert cc_steady.model_segments("cubic", 0.01) == b.cubic_avg_segments(0.01, 0.02)


@pytest.mark.timeout(60)
def test_steady_one_run_on_the_fake_clock():
    """A short row 2b case: the file arrives, cwnd events give the means."""
    r = cc_steady.one("newreno", 0.01, 1, seed=1)
    assert r["reductions"] >= 3 and r["max_seg"] >= r["mean_seg"] > 0
    assert r["half_seg"] > 0 and r["model_seg"] == pytest.approx(math.sqrt(150))


def test_rows_not_run_again_are_kept_with_their_dates(tmp_path):
    saved = tmp_path / "cc.json"
    saved.write_text(json.dumps({"runs": 1, "when": "2026-01-01 00:00",
                                 "row2b": [{"cc": "cubic", "p": 0.001, "mib": 16, "seed": 1,
                                            "reductions": 12, "max_seg": 795.0,
                                            "mean_seg": 71.7, "half_seg": 45.8,
                                            "model_seg": 38.7}],
                                 "row5": []}))
    m = b.merged_with({"runs": 1, "when": "2026-02-02 00:00", "row5": [{"x": 1}]}, saved)
    assert m["row5"] == [{"x": 1}] and m["row2b"][0]["mean_seg"] == 71.7
    assert m["dates"] == {"row5": "2026-02-02 00:00", "row2b": "2026-01-01 00:00"}
    text = b.tables({k: v for k, v in m.items() if k != "row5"})
    assert "2026-01-01 00:00 (rows 2b)" in text and "2026-02-02 00:00 (rows 5)" in text
    assert "| cubic | 0.1 | 16 | 12 | 795 | 71.7 | 45.8 | 38.7 | 1.18 |" in text
    assert b.merged_with({"runs": 1, "when": "w", "row1": []}, tmp_path / "none.json")[
        "dates"] == {"row1": "w"}
