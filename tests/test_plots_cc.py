"""The congestion-control plots (analysis/png_cc.py): cwnd, ssthresh and
the pipe with WINDOW; the emulator's sojourn times with drops by cause and
the delay limits.  Each is drawn from a synthetic trace and its axes are
read back: they contain the data and draw the limit."""

from __future__ import annotations

import pytest
from analysis_support import MSS, emulator_events, sender_events
from test_plots import assert_contains, assert_legend_hides_no_line, ctx_of, limit_drawn

from analysis.plots import draw

pytestmark = pytest.mark.timeout(120)


def with_cwnd(window: int, states=("slow_start", "recovery", "avoidance", "loss",
                                   "slow_start")):
    """A sender trace with a cwnd event every 10 ms: a sawtooth through the
    given states, the largest cwnd 40 MSS."""
    events, _ = sender_events(n=200)
    events[0]["window"] = window
    events[0]["cc"] = "newreno"
    t, cwnd = 10.1, 10 * MSS
    for st in states:
        for _ in range(10):
            if st == "slow_start":
                cwnd = min(cwnd * 2, 40 * MSS)
            elif st == "avoidance":
                cwnd += MSS
            elif st == "recovery":
                cwnd = max(cwnd // 2, 2 * MSS)
            else:
                cwnd = MSS
            events.append({"t": round(t, 6), "ev": "cwnd", "cwnd": cwnd,
                           "ssthresh": None if t < 10.2 else 20 * MSS,
                           "pipe": cwnd - MSS, "state": st})
            t += 0.01
    return events


def test_cwnd_plot_contains_its_data_and_draws_window(tmp_path):
    fig = draw(ctx_of(tmp_path, "s.jsonl", with_cwnd(window=60 * MSS)), "cwnd")
    ax = fig.axes[0]
    assert_contains(ax, "cwnd")
    assert_legend_hides_no_line(fig, ax)
    (lim,) = limit_drawn(fig)
    assert lim.get_ydata()[0] == pytest.approx(60 * MSS / 1024)  # WINDOW, in KiB
    assert "(KiB)" in ax.get_ylabel()
    labels = {str(h.get_label()) for h in ax.get_legend().legend_handles}
    assert {"cwnd", "ssthresh", "pipe (bytes in flight)", "slow start", "loss recovery",
            "after an RTO"} <= labels
    cwnd = next(ln for ln in ax.get_lines() if ln.get_label() == "cwnd")
    assert max(cwnd.get_ydata()) == pytest.approx(40 * MSS / 1024)
    assert max(cwnd.get_ydata()) <= lim.get_ydata()[0]


def test_cwnd_plot_names_a_window_far_above_its_scale(tmp_path):
    fig = draw(ctx_of(tmp_path, "s.jsonl", with_cwnd(window=1 << 30)), "cwnd")
    ax = fig.axes[0]
    assert_contains(ax, "cwnd")
    assert not limit_drawn(fig)
    assert ax.get_ylim()[1] < 100  # scaled to the sawtooth (KiB), not to 1 GiB
    assert "above this scale" in ax.get_legend().get_title().get_text()


def test_cwnd_plot_skipped_without_congestion_control(tmp_path):
    events, _ = sender_events(n=50)
    assert "no cwnd events" in draw(ctx_of(tmp_path, "a.jsonl", events), "cwnd")
    events.append({"t": 10.2, "ev": "cwnd", "cwnd": 64000, "ssthresh": None, "pipe": 0,
                   "state": "fixed"})
    assert "--cc none" in draw(ctx_of(tmp_path, "b.jsonl", events), "cwnd")


def test_sojourn_plot_with_drops_by_cause_and_limits(tmp_path):
    events, _ = emulator_events()
    events[0]["impairments"] = {"rate": 8e6, "queue": 65536, "queue_packets": None,
                                "aqm": "codel", "codel_target": 0.005}
    for i, e in enumerate(events):
        if e["ev"] == "fwd":
            e["sojourn"] = 0.0004 * (i % 90)  # up to 36 ms
    events.append({"t": 0.25, "ev": "drop", "n": 1001, "why": "codel", "len": 1020,
                   "sojourn": 0.021})
    fig = draw(ctx_of(tmp_path, "emu.jsonl", events), "sojourn")
    ax = fig.axes[0]
    assert_contains(ax, "sojourn")
    assert_legend_hides_no_line(fig, ax)
    assert ax.get_ylabel() == "sojourn time (ms)"
    limits = sorted(a.get_ydata()[0] for a in limit_drawn(fig))
    assert limits == [pytest.approx(5.0), pytest.approx(65536 * 8 / 8e6 * 1000)]
    labels = [str(c.get_label()) for c in ax.collections]
    assert any(lb.startswith("drop: codel (1)") for lb in labels)
    assert any(lb.startswith("drop: loss (") and "at arrival" in lb for lb in labels)
    codel = next(c for c in ax.collections if str(c.get_label()).startswith("drop: codel"))
    assert list(codel.get_offsets()[:, 1]) == [pytest.approx(21.0)]


def test_sojourn_plot_absent_says_why(tmp_path):
    events, _ = emulator_events()
    res = draw(ctx_of(tmp_path, "emu.jsonl", events), "sojourn")
    assert isinstance(res, str) and "no sojourn times" in res


def test_report_has_the_cwnd_and_sojourn_panels(tmp_path):
    """The HTML report: a cwnd panel for a sender with congestion control,
    a sojourn panel for a link with a rate; neither for --cc none."""
    import subprocess
    import sys

    from analysis_support import write_trace

    write_trace(tmp_path / "sender.trace.jsonl", with_cwnd(window=60 * MSS))
    events, _ = emulator_events()
    events[0]["impairments"] = {"rate": 8e6, "queue": 65536, "aqm": "none"}
    for i, e in enumerate(events):
        if e["ev"] == "fwd":
            e["sojourn"] = 0.0001 * (i % 50)
    write_trace(tmp_path / "emu-data.trace.jsonl", events)
    p = subprocess.run([sys.executable, "-m", "analysis", str(tmp_path), "--html"],
                       capture_output=True, text=True, timeout=100)
    assert p.returncode == 0, p.stderr
    page = (tmp_path / "report.html").read_text()
    assert 'id="panel-cwnd"' in page and 'id="panel-sojourn"' in page
    plain, _ = sender_events(n=50)
    write_trace(tmp_path / "sender.trace.jsonl", plain)
    p = subprocess.run([sys.executable, "-m", "analysis", str(tmp_path), "--html"],
                       capture_output=True, text=True, timeout=100)
    assert p.returncode == 0, p.stderr
    assert 'id="panel-cwnd"' not in (tmp_path / "report.html").read_text()
