"""bench/bench_threads.py's block in RESULTS.md: written between its
markers, replaced on the next run, and kept when the benchmark writes the
rest of the file again; its table's ratios are taken round by round."""

from __future__ import annotations

from bench import bench_threads as bt


def test_the_block_is_written_replaced_and_kept(tmp_path):
    md = tmp_path / "RESULTS.md"
    md.write_text("# Benchmark results\n\nsection 1\n")
    bt.write_results("first table", md)
    bt.write_results("second table", md)
    text = md.read_text()
    assert text.count(bt.BEGIN) == 1 and "second table" in text and "first table" not in text
    assert text.startswith("# Benchmark results\n\nsection 1\n")
    kept = bt.kept_block(md)
    assert "second table" in kept and kept.strip().endswith(bt.END)
    md.write_text("# Benchmark results, written again\n" + kept)  # what bench/__main__ does
    assert bt.kept_block(md) == kept
    assert bt.kept_block(tmp_path / "missing.md") == ""


def test_the_ratios_are_taken_round_by_round():
    rounds = [{"before": {"goodput": 100.0, "cpu": 1.0}, "off": {"goodput": 99.0, "cpu": 1.0},
               "on": {"goodput": 90.0, "cpu": 1.2}},
              {"before": {"goodput": 50.0, "cpu": 2.0}, "off": {"goodput": 51.0, "cpu": 2.0},
               "on": {"goodput": 45.0, "cpu": 2.2}}]
    text = bt.table({"rev": "abc", "runs": 2, "size_mib": 64, "window": "4M",
                     "rounds": rounds, "when": "now"})
    off = next(ln for ln in text.splitlines() if ln.startswith("| off"))
    on = next(ln for ln in text.splitlines() if ln.startswith("| on"))
    # off/before: 0.99 and 1.02, median 1.005; on/before: 0.90 and 0.90
    assert "1.005 (0.990-1.020)" in off
    assert "0.900 (0.900-0.900)" in on
