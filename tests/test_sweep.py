"""stcp-experiment (harness/sweep*.py): bad grids are one line and exit 2,
the grid's cells and seeds, results appended and a rerun skipping what is
measured, the sender summary read back, the plot's models (bench/models.py
on the grid's own numbers), and one real, tiny sweep through the harness."""

from __future__ import annotations

import csv
import subprocess
import sys

import pytest
from support import ROOT

from bench import models
from harness import sweep, sweep_result
from harness.sweep_grid import Grid, GridError, check

PY = sys.executable
pytestmark = pytest.mark.timeout(180)


def experiment(*args, timeout=150) -> subprocess.CompletedProcess:
    return subprocess.run([PY, "-m", "harness.sweep", *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT, timeout=timeout)


@pytest.mark.parametrize("args, says", [
    (["--loss", ""], "--loss: the list is empty"),
    (["--loss", "1,,2"], "empty entry"),
    (["--loss=-1"], "'-1' is not a loss percentage"),
    (["--loss", "101"], "'101' is not a loss percentage"),
    (["--loss", "1,1.0"], "names a value twice"),
    (["--windows", "1K"], "below one MSS (1452 bytes)"),
    (["--windows", "4K", "--mss", "8000"], "below one MSS (8000 bytes)"),
    (["--modes", "tcp"], "'tcp' is not a mode"),
    (["--modes", ""], "--modes: the list is empty"),
    (["--reps", "0"], "--reps must be at least 1"),
    (["--vary", "delay"], "--vary takes OPTION=V1,V2"),
    (["--vary", "window=1M"], "sets --window itself"),
    (["--bogus"], "unrecognized arguments"),
    (["--", "--bogus", "1"], "run_pair.sh refuses this grid"),
])
def test_a_bad_grid_is_one_line_and_exit_2(args, says, tmp_path):
    res = experiment("--dir", tmp_path / "s", *args, timeout=60)
    assert res.returncode == 2, res.stdout + res.stderr
    assert res.stderr.count("\n") == 1 and says in res.stderr, res.stderr
    assert not (tmp_path / "s").exists()


def test_the_cells_and_their_seeds():
    g = check(Grid(modes=["gbn", "sr"], losses=["0", "5"], windows=["64K"], reps=3, seed=10,
                   vary=[("--delay", ["0.01", "0.02"])]))
    cells = g.cells()
    assert len(cells) == 2 * 2 * 2 * 3
    assert {c.seed for c in cells} == {10, 11, 12}
    assert len({c.key() for c in cells}) == len(cells)
    c = cells[0]
    assert c.argv()[:10] == ["--mode", "gbn", "--loss", "0", "--window", "64K", "--seed", "10",
                             "--size", "1M"]
    assert ["--delay", "0.01"] == c.argv()[10:12]
    assert g.varying() == ["loss", "--delay", "mode"]
    with pytest.raises(GridError):
        check(Grid(modes=["sr"], losses=["0"], windows=["64K"], extra=["--seed", "3"]))


def test_a_rerun_skips_what_the_csv_holds(tmp_path):
    d = tmp_path / "s"
    g = check(Grid(modes=["sr"], losses=["0", "5"], windows=["64K"], reps=1))
    done = g.cells()[1]
    d.mkdir()
    sweep.append_row(d / "results.csv", {**dict(zip(sweep.KEY, done.key(), strict=True)),
                                         "ok": 1, "exit": 0})
    assert sweep.measured(d / "results.csv") == {done.key()}
    res = experiment("--modes", "sr", "--loss", "0,5", "--windows", "64K", "--reps", "1",
                     "--dir", d, "--dry-run")
    assert res.returncode == 0, res.stderr
    assert "1 already in" in res.stdout and "1 to run" in res.stdout
    runs = [ln for ln in res.stdout.splitlines() if ln.startswith("./run_pair.sh")]
    assert len(runs) == 1 and "--loss 0 " in runs[0] and "--clean" in runs[0]


SUMMARY = """\
sender summary
--------------
  result              delivered and verified
  file                x.bin (1.00 MiB)
  bytes acknowledged  1048576
  time                0.5000 s (SYN to verified FIN)
  goodput             16.78 Mbit/s
  retransmissions     12 (timeout 2, fast 4, SACK 6); 3 timer expiries
  RTT min/avg/max     10.1 ms / 11.5 ms / 30.2 ms (200 samples)
"""


def test_the_sender_summary_read_back():
    r = sweep_result.from_summary("noise\n" + SUMMARY + "\nreceiver summary\n")
    assert r == {"bytes": 1048576, "transfer_s": 0.5, "goodput_bps": 16777216.0,
                 "retransmissions": 12, "timer_expiries": 3, "rtt_avg_ms": 11.5,
                 "rtt_max_ms": 30.2}
    failed = SUMMARY.replace("delivered and verified", "FAILED: peer gone")
    assert "goodput_bps" not in sweep_result.from_summary(failed)


def test_the_plot_draws_the_textbook_models(tmp_path):
    from matplotlib.figure import Figure

    g = check(Grid(modes=["gbn", "sr"], losses=["0", "5"], windows=["64K"], reps=1))
    path = tmp_path / "results.csv"
    rates = {("gbn", "0"): 40e6, ("gbn", "5"): 13e6, ("sr", "0"): 40e6, ("sr", "5"): 37e6}
    for c in g.cells():
        sweep.append_row(path, {**dict(zip(sweep.KEY, c.key(), strict=True)), "ok": 1,
                                "exit": 0, "goodput_bps": rates[(c.mode, c.loss)]})
    from harness import sweep_plot

    captured = {}
    real = Figure.savefig

    def keep(fig, *a, **k):
        captured["fig"] = fig
        return real(fig, *a, **k)

    Figure.savefig = keep
    try:
        assert "plot:" in sweep_plot.plot(path, tmp_path / "g.png", g)
    finally:
        Figure.savefig = real
    ax = captured["fig"].axes[0]
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    n = 65536 // 1452
    for mode, factor in (("gbn", 0.95 / (1 + (n - 1) * 0.05)), ("sr", 0.95)):
        (label,) = [k for k in lines if k.startswith(f"model ({mode.upper()}")]
        xs, ys = lines[label].get_data()
        at5 = list(xs).index(5.0)
        assert ys[at5] == pytest.approx(40 * factor, rel=1e-6)
        assert models.model(mode, 0.05, 65536, 65536 / 5e6, 5e6) == pytest.approx(5e6 * factor)
    assert ax.get_ylim()[1] >= 40 and ax.get_xlim()[1] >= 5


def test_a_tiny_sweep_through_the_harness(tmp_path):
    d = tmp_path / "s"
    args = ["--modes", "sr", "--loss", "0,5", "--windows", "32K", "--reps", "1", "--size",
            "64K", "--dir", d]
    res = experiment(*args)
    assert res.returncode == 0, res.stdout + res.stderr
    with open(d / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["loss"] for r in rows] == ["0", "5"]
    assert all(r["ok"] == "1" and float(r["goodput_bps"]) > 0 for r in rows)
    assert all(r["bytes"] == "65536" for r in rows)
    assert (d / "goodput.png").is_file() and "medians per cell" in res.stdout
    assert not (d / "runs").exists() or not any((d / "runs").iterdir())  # ok runs go
    again = experiment(*args)
    assert again.returncode == 0 and "2 already in" in again.stdout and "0 to run" in again.stdout
