"""bench/bench_flows.py's figures and its RESULTS.md block, and bench_serve.py's block,
without running transfers (the benchmarks: python -m bench.bench_flows | bench_serve --results)."""

from __future__ import annotations

import pytest

from bench import bench_flows as b


def _flow(t0: float, step: float, end: float, nbytes: int) -> dict:
    n = round((end - t0) / step)
    return {"t0": t0, "acked": [(t0 + step * (i + 1), nbytes) for i in range(n)], "cwnd": []}


def test_window_is_from_the_last_start_to_the_first_end():
    a = _flow(0.0, 0.1, 2.0, 1000)   # 10 kB/s from 0 to 2 s
    c = _flow(0.5, 0.1, 1.5, 500)    # 5 kB/s from 0.5 to 1.5 s
    assert b.common_window([a, c]) == (0.5, pytest.approx(1.5))
    got = b.window_figures([a, c], rate_bps=1e6)
    assert got["seconds"] == pytest.approx(1.0)
    # in (0.5, 1.5]: a's ACKs at 0.6 .. 1.5 (10 of 1000 B), c's at 0.6 .. 1.5 (10 of 500 B)
    assert got["per_flow_bps"] == [pytest.approx(80_000), pytest.approx(40_000)]
    assert got["util"] == pytest.approx(120_000 / 1e6)
    assert got["jain"] == pytest.approx(120_000 ** 2 / (2 * (80_000 ** 2 + 40_000 ** 2)))


def test_no_overlap_gives_no_figures():
    got = b.window_figures([_flow(0.0, 0.1, 1.0, 10), _flow(2.0, 0.1, 3.0, 10)])
    assert got["util"] is None and got["jain"] is None


def test_results_block_replaced_in_place_and_kept(tmp_path):
    results = tmp_path / "RESULTS.md"
    results.write_text("# top\n\nother text\n")
    b.write_results("first", results)
    b.write_results("second", results)
    text = results.read_text()
    assert text.count(b.BEGIN) == 1 and "second" in text and "first" not in text
    assert text.startswith("# top")
    kept = b.kept_block(results)
    assert kept.strip().startswith(b.BEGIN) and kept.strip().endswith(b.END)


def test_serve_bench_block_kept_beside_the_flows_one(tmp_path):
    from bench import bench_serve

    results = tmp_path / "RESULTS.md"
    b.write_results("flows table", results)
    bench_serve.write_results("serve table", results)
    bench_serve.write_results("serve table again", results)
    text = results.read_text()
    assert "flows table" in text and "serve table again" in text
    assert text.count(bench_serve.BEGIN) == 1
    assert "serve table again" in bench_serve.kept_block(results)
    assert "serve table" not in b.kept_block(results)


def test_rows_run_again_replace_the_saved_ones_and_the_rest_are_kept(tmp_path):
    import json

    saved = tmp_path / "flows.json"
    saved.write_text(json.dumps([{"cc": "cubic", "flows": 2, "util": 0.5},
                                 {"cc": "newreno", "flows": 2, "util": 0.6},
                                 {"cc": "newreno", "flows": 1, "util": 0.7}]))
    got = b.merged([{"cc": "newreno", "flows": 2, "util": 0.9}], saved)
    assert [(r["cc"], r["flows"], r["util"]) for r in got] == [
        ("newreno", 1, 0.7), ("newreno", 2, 0.9), ("cubic", 2, 0.5)]


def test_a_case_of_several_runs_is_their_medians_and_keeps_each():
    runs = [{"cc": "cubic", "flows": 2, "size": 1, "seed": s, "seconds": sec, "util": u,
             "jain": j, "retransmissions": x, "per_flow_bps": [1.0, 2.0]}
            for s, sec, u, j, x in ((21, 5.0, 0.97, 0.88, 90), (22, 4.0, 0.94, 0.99, 110),
                                    (23, 6.0, 0.98, 0.995, 100))]
    got = b.median_case(runs)
    assert (got["runs"], got["seeds"]) == (3, [21, 22, 23])
    assert (got["seconds"], got["util"], got["jain"], got["retransmissions"]) == \
        (5.0, 0.97, 0.99, 100)
    assert got["jain_all"] == [0.88, 0.99, 0.995] and "per_flow_bps" not in got
    assert "0.990 (0.880)" in b.table([got], "x")
