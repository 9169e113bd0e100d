"""stcp-analyze on thread traces (analysis/threads.py, contention.py,
png_threads.py, report/panel_threads.py), from synthetic traces whose every
figure is known: the contention table, the thread states, the timeline PNG,
the HTML panel, and a garbled file's one-line error."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from support import ROOT

from analysis.contention import contention, format_contention, percentile
from analysis.threads import (
    COND_WAIT,
    HELD,
    LOCK_WAIT,
    RUNNING,
    SYSCALL,
    load_thread_trace,
    timeline,
)

PY = sys.executable
T0 = 5_000_000_000.0  # microseconds: the trace's clock, far from zero


def _x(cat, name, tid, start_ms, end_ms, **args):
    return {"name": name, "cat": cat, "ph": "X", "ts": T0 + start_ms * 1000,
            "dur": (end_ms - start_ms) * 1000, "pid": 1, "tid": tid, "args": args}


def synthetic() -> dict:
    """Two threads, times in ms from T0.

    tx (tid 1): holds core 0-10, waits on tx_ready 10-20 (notified, then
    takes the lock back at once and holds it 20-21), sendmsg 21-23.
    ack (tid 2): recvfrom 0-2, blocked on core 2-10 (holder tx), holds it
    10-14, then recvfrom 14-23.
    """
    ev = [{"name": "process_name", "ph": "M", "pid": 1, "tid": 0, "args": {"name": "sender"}},
          {"name": "thread_name", "ph": "M", "pid": 1, "tid": 1, "args": {"name": "tx"}},
          {"name": "thread_name", "ph": "M", "pid": 1, "tid": 2, "args": {"name": "ack"}},
          _x("lock.hold", "core held", 1, 0, 10, lock="core"),
          _x("cond.wait", "wait tx_ready", 1, 10, 20, cond="tx_ready", lock="core",
             outcome="notified", predicate=True, timeout_ms=None),
          _x("lock.hold", "core held", 1, 20, 21, lock="core"),
          _x("syscall", "sendmsg", 1, 21, 23, datagrams=44, bytes=64768),
          _x("syscall", "recvfrom", 2, 0, 2, datagrams=1, bytes=20),
          _x("lock.wait", "wait for core", 2, 2, 10, lock="core", holder="tx",
             after_wait=False),
          _x("lock.hold", "core held", 2, 10, 14, lock="core"),
          _x("syscall", "recvfrom", 2, 14, 23, datagrams=1, bytes=20),
          {"name": "pipe", "ph": "C", "ts": T0 + 11000, "pid": 1, "tid": 2,
           "args": {"bytes": 65536}},
          {"name": "retransmit", "cat": "proto", "ph": "i", "s": "t", "ts": T0 + 22000,
           "pid": 1, "tid": 1, "args": {"cause": "fast", "off": 0}}]
    return {"traceEvents": ev, "displayTimeUnit": "ms",
            "otherData": {"format": "simplex-tcp thread trace 1", "role": "sender",
                          "threads": [{"name": "tx", "recorded": 5, "kept": 5, "dropped": 0},
                                      {"name": "ack", "recorded": 9, "kept": 5,
                                       "dropped": 4}]}}


@pytest.fixture
def trace_file(tmp_path) -> Path:
    p = tmp_path / "sender.threads.json"
    p.write_text(json.dumps(synthetic()))
    return p


def test_nearest_rank_percentiles():
    xs = [float(v) for v in range(1, 101)]
    assert percentile(xs, 50) == 50 and percentile(xs, 99) == 99 and percentile(xs, 100) == 100
    assert percentile([3.0], 99) == 3.0 and percentile([], 50) is None
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.0


def test_the_contention_figures(trace_file):
    c = contention(load_thread_trace(trace_file))
    (core,) = c["locks"]
    assert core["acquisitions"] == 3 and core["contended"] == 1
    assert core["contended_share"] == pytest.approx(1 / 3, abs=1e-6)
    assert core["wait_ms"] == {"p50": pytest.approx(8), "p99": pytest.approx(8),
                               "max": pytest.approx(8)}
    assert core["hold_ms"]["p50"] == pytest.approx(4) and core["hold_ms"]["max"] == \
        pytest.approx(10)
    assert core["waiters"] == {"ack": 1} and core["holders_seen"] == {"tx": 1}
    (cond,) = c["conditions"]
    assert cond["condition"] == "tx_ready" and cond["outcomes"] == {"notified": 1}
    assert c["wakeups"] == {"notified": 1}
    shares = {t["thread"]: t["shares"] for t in c["threads"]}
    # tx: span 0-23 ms: held 11, condition 10, syscall 2
    assert shares["tx"][HELD] == pytest.approx(11 / 23, abs=1e-6)
    assert shares["tx"][COND_WAIT] == pytest.approx(10 / 23, abs=1e-6)
    assert shares["tx"][SYSCALL] == pytest.approx(2 / 23, abs=1e-6)
    assert shares["tx"][RUNNING] == pytest.approx(0, abs=1e-6)
    # ack: span 0-23: syscall 2 + 9, lock wait 8, held 4
    assert shares["ack"][LOCK_WAIT] == pytest.approx(8 / 23, abs=1e-6)
    assert shares["ack"][SYSCALL] == pytest.approx(11 / 23, abs=1e-6)
    calls = {(r["thread"], r["call"]): r for r in c["system_calls"]}
    assert calls[("ack", "recvfrom")]["calls"] == 2 and calls[("ack", "recvfrom")]["bytes"] == 40
    assert calls[("tx", "sendmsg")]["datagrams"] == 44
    assert c["dropped_events"] == {"ack": 4} and c["instants"] == {"retransmit": 1}
    text = format_contention(c)
    assert "core" in text and "1 (33.3%)" in text and "8.000 / 8.000 / 8.000" in text
    assert "ack (4 older dropped)" in text


def test_overlapping_spans_take_the_first_state_that_applies(tmp_path):
    doc = {"traceEvents": [
        {"name": "thread_name", "ph": "M", "pid": 1, "tid": 7, "args": {"name": "w"}},
        _x("lock.hold", "q held", 7, 0, 10, lock="q"),
        _x("syscall", "write", 7, 2, 4, bytes=10),
        _x("lock.wait", "wait for core", 7, 3, 6, lock="core", holder="x", after_wait=True)],
        "otherData": {"role": "receiver"}}
    p = tmp_path / "w.threads.json"
    p.write_text(json.dumps(doc))
    pieces = [(round((s - T0 / 1e6) * 1000, 6), round((e - T0 / 1e6) * 1000, 6), st)
              for s, e, st, _ in timeline(load_thread_trace(p), 7)]
    assert pieces == [(0, 2, HELD), (2, 3, SYSCALL), (3, 6, LOCK_WAIT), (6, 10, HELD)]


def analyze(*args) -> subprocess.CompletedProcess:
    return subprocess.run([PY, "-m", "analysis", *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)


def test_the_command_prints_the_table_draws_the_timeline_and_says_it_in_json(trace_file):
    d = trace_file.parent
    p = analyze(d)
    assert p.returncode == 0, p.stderr
    assert "thread trace:" in p.stdout and "wakeups by outcome: notified 1" in p.stdout
    png = d / "plots" / "threads-timeline.png"
    assert png.is_file() and png.stat().st_size > 10_000
    q = analyze(trace_file, "--json", "--no-plots")
    assert q.returncode == 0, q.stderr
    (c,) = json.loads(q.stdout)
    assert c["kind"] == "thread trace" and c["locks"][0]["contended"] == 1


def test_the_timeline_figure_centres_on_the_longest_lock_wait(trace_file):
    from analysis.png_threads import thread_timeline

    tt = load_thread_trace(trace_file)
    fig = thread_timeline([tt], T0 / 1e6, "the first event")
    whole, close, counters = fig.axes[:3]
    assert "ack waited 8.000 ms for core, held by tx" in close.get_title()
    lo, hi = close.get_xlim()
    assert lo <= 0.002 and hi >= 0.010  # the wait, 2-10 ms, is inside
    w_lo, w_hi = whole.get_xlim()
    assert w_lo <= 0 and w_hi >= 0.023  # the whole span
    assert [t.get_text() for t in close.get_yticklabels()] == ["sender: tx", "sender: ack"]
    assert counters.get_ylim()[1] >= 64  # the pipe's 64 KiB fits


def test_the_html_report_has_the_thread_panel(trace_file):
    pytest.importorskip("bokeh")
    d = trace_file.parent
    p = analyze(d, "--html")
    assert p.returncode == 0, p.stderr
    page = (d / "report.html").read_text()
    assert 'id="panel-threads"' in page and '<pre id="contention">' in page


def test_cells_bound_a_dense_row_and_keep_its_span():
    from analysis.report.panel_threads import cells

    pieces = []
    t = 0.0
    for i in range(10_000):
        state = (RUNNING, SYSCALL)[i % 2]
        pieces.append((t, t + 0.001 * (1 + i % 2), state, ""))
        t += 0.001 * (1 + i % 2)
    out = cells(pieces, 300)
    assert len(out) <= 300
    assert out[0][0] == 0.0 and out[-1][1] == pytest.approx(t)
    assert {o[2] for o in out} == {SYSCALL}  # two thirds of every cell


@pytest.mark.parametrize("content", ['{"traceEvents": 3}', "not json", '{"traceEvents": [{"ph":'
                                     ' "X", "ts": "x", "dur": 1, "cat": "lock.hold"}]}'])
def test_a_garbled_thread_trace_is_one_line_and_exit_2(tmp_path, content):
    p = tmp_path / "bad.threads.json"
    p.write_text(content)
    r = analyze(p, "--no-plots")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.count("\n") == 1 and "bad.threads.json" in r.stderr


def test_the_thread_panel_renders_in_a_browser(trace_file, tmp_path):
    """The page with only a thread trace, in headless chromium: the panel is
    drawn and no script fails (skipped where no chromium is installed)."""
    import os
    import re
    import shutil

    pytest.importorskip("bokeh")
    browser = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")
                    if shutil.which(b)), None)
    if browser is None:
        pytest.skip("no chromium on this machine")
    d = trace_file.parent
    assert analyze(d, "--html").returncode == 0
    profile = tmp_path / "profile"
    profile.mkdir()
    res = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                          "--no-first-run", "--virtual-time-budget=15000",
                          f"--user-data-dir={profile}", "--dump-dom",
                          (d / "report.html").as_uri()], capture_output=True, text=True,
                         timeout=120, env=dict(os.environ, HOME=str(tmp_path)))
    dom = res.stdout
    m = re.search(r'id="js-errors">([^<]*)<', dom)
    assert m is not None and m.group(1).strip() == "", m and m.group(1)
    assert "rendered 1 of 1 panels" in dom, re.search(r'render-status"[^<]*<', dom)
