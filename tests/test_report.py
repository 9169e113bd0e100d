"""The HTML report (issue 23) and the analysis's command line (issue 24,
items 4 and 14), on a short lossy transfer run once for the module.

The report is opened in a real browser, headless chromium: the page must
load with no JavaScript error, show every expected panel, and draw
something (the screenshot's plot area is not blank).  The test skips, and
says why, only when no chromium is installed (.ci/run installs Debian's).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from analysis_support import sender_events, write_trace
from support import ROOT, Link, make_file

from analysis.report import decimate as dm

PY = sys.executable
EXPECTED_PANELS = ("panel-timeseq", "panel-inflight", "panel-rtt", "panel-emulator",
                   "panel-receiver", "panel-goodput")
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
BROWSER_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--hide-scrollbars",
                 "--virtual-time-budget=15000"]

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("report-run")
    src = make_file(d / "in.bin", 400 * 1452, seed=3)
    dst = d / "out.bin"
    with Link(d) as link:
        s, r = link.transfer(
            src, dst, window="64K",
            data_link=["-L", "5", "-d", "0.005", "--seed", "11",
                       "--trace", str(d / "emu-data.trace.jsonl")],
            sender_args=["--trace", str(d / "sender.trace.jsonl")],
            receiver_args=["--trace", str(d / "receiver.trace.jsonl")])
        assert s.popen.returncode == 0 and r.popen.returncode == 0, link.describe()
    (d / "sender.out").write_text(s.stdout)
    return d


def analyze(*args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([PY, "-m", "analysis", *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT, timeout=180, **kw)


@pytest.fixture(scope="module")
def report(run_dir) -> Path:
    p = analyze(run_dir, "--html")
    assert p.returncode == 0, p.stdout + p.stderr
    out = run_dir / "report.html"
    assert out.is_file() and f"report: {out}" in p.stdout
    return out


def summary_value(stdout: str, label: str) -> str:
    m = re.search(rf"^\s+{re.escape(label)}\s+(.+)$", stdout, re.M)
    assert m, f"no {label!r} in:\n{stdout}"
    return m.group(1).strip()


def table_value(page: str, label: str, section: str) -> str:
    sec = page[page.index(f"{section}.trace.jsonl</th>"):]
    m = re.search(rf"<td>{re.escape(label)}</td><td class=\"num\">([^<]*)</td>", sec)
    assert m, label
    return m.group(1)


def test_report_is_self_contained(report):
    page = report.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    # nothing is fetched: no external script, stylesheet, image or font
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", page)
    assert "https://" not in page.split("<script>")[0]
    assert "Bokeh" in page and 1_000_000 < len(page.encode()) < 5_000_000
    for pid in EXPECTED_PANELS:
        assert f'id="{pid}"' in page, pid


def test_report_numbers_agree_with_the_programs(report, run_dir):
    page = report.read_text(encoding="utf-8")
    out = (run_dir / "sender.out").read_text()
    time_s = summary_value(out, "time").split()[0]
    assert table_value(page, "transfer time", "sender") == f"{time_s} s"
    assert table_value(page, "goodput", "sender") == summary_value(out, "goodput")
    total = summary_value(out, "retransmissions").split()[0]
    assert table_value(page, "retransmissions", "sender").split()[0] == total
    assert table_value(page, "duplicate ACKs", "sender") == summary_value(out, "duplicate ACKs")
    assert "DISAGREES" not in page
    assert "goodput</b>: file bytes / transfer time" in page


def find_browser() -> str:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no chromium on this machine (.ci/run installs Debian's chromium with "
                "apt-get; without it the report cannot be checked in a browser)")


def browser(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile-{len(list(tmp_path.iterdir()))}"
    profile.mkdir()
    return subprocess.run([find_browser(), *BROWSER_FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, HOME=str(tmp_path)))


def test_report_in_a_real_browser(report, tmp_path):
    p = browser(["--enable-logging=stderr", "--v=0", "--dump-dom", report.as_uri()], tmp_path)
    dom = p.stdout
    assert "</html>" in dom, p.stderr[-2000:]
    m = re.search(r'id="js-errors">([^<]*)<', dom)
    assert m is not None and m.group(1).strip() == "", f"JavaScript errors: {m and m.group(1)}"
    console = [ln for ln in p.stderr.splitlines() if ":CONSOLE" in ln]
    bad = [ln for ln in console if re.search(r"Uncaught|rror", ln)]
    assert not bad, "\n".join(bad)
    n = len(EXPECTED_PANELS)
    assert f"rendered {n} of {n} panels" in dom, re.search(r'render-status"[^<]*<', dom)
    for pid in EXPECTED_PANELS:
        assert re.search(rf'<section class="panel" id="{pid}"[^>]*>\s*<div[^>]*data-root-id',
                         dom), pid


def test_report_screenshot_is_not_blank(report, tmp_path):
    from PIL import Image

    shot = tmp_path / "shot.png"
    p = browser(["--window-size=1400,4200", f"--screenshot={shot}", report.as_uri()], tmp_path)
    assert shot.is_file(), p.stderr[-2000:]
    import numpy as np

    img = np.asarray(Image.open(shot).convert("RGB")).astype(np.int32)
    h = img.shape[0]
    plots = img[int(h * 0.35):]  # the panels, below the header and table
    coloured = int(((plots.max(axis=2) - plots.min(axis=2)) > 80).sum())
    assert coloured > 2000, f"only {coloured} coloured pixels in the plot area"
    packed = (plots[..., 0] << 16) | (plots[..., 1] << 8) | plots[..., 2]
    assert len(np.unique(packed)) > 100, "the plot area has almost no distinct colours"
    assert plots.mean(axis=2).var() > 50, "the plot area is flat"


def test_big_trace_report_stays_small(tmp_path):
    events, _ = sender_events(n=40_000, rto=0.5)
    write_trace(tmp_path / "sender.trace.jsonl", events)
    p = analyze(tmp_path, "--html", "--out", tmp_path / "big.html")
    assert p.returncode == 0, p.stdout + p.stderr
    page = (tmp_path / "big.html").read_text()
    assert len(page.encode()) < 5_000_000
    assert "no receiver trace" in page and "no emulator trace" in page


def test_decimation_bounds_and_keeps_marks():
    n = 100_000
    ts = [i * 1e-4 for i in range(n)]
    ys = [(i * 7919) % 1000 for i in range(n)]
    t2, y2 = dm.steps(ts, ys, 4000)
    assert len(t2) <= 4000 + 4 and max(y2) == max(ys) and min(y2) == min(ys)
    t3, lo, hi, cnt = dm.bars(ts, ys, [y + 1 for y in ys], 5000)
    assert len(t3) <= 5000 and sum(cnt) == n and max(hi) == max(ys) + 1
    keep, counts = dm.marks(ts, ys, (0, ts[-1], 0, 1000), keep=1000)
    assert sum(counts) == n
    cells = {(int(t / ts[-1] * dm.GRID[0]), int(y / 1000 * dm.GRID[1])) for t, y in
             zip(ts, ys, strict=True)}
    assert len(keep) == len(cells)  # one mark in every cell that had one
    assert dm.marks(ts[:50], ys[:50], (0, 1, 0, 1))[0] == list(range(50))


def test_output_into_a_closed_pipe_is_quiet(run_dir):
    """stcp-analyze ... | head: the reader is gone, no traceback."""
    r, w = os.pipe()
    os.close(r)
    try:
        p = subprocess.run([PY, "-m", "analysis", str(run_dir / "sender.trace.jsonl"),
                            "--no-plots"], stdout=w, stderr=subprocess.PIPE, text=True,
                           cwd=ROOT, timeout=60)
    finally:
        os.close(w)
    assert "Traceback" not in p.stderr and "BrokenPipe" not in p.stderr, p.stderr
    assert p.returncode == 141


def test_trace_to_pcap(run_dir, tmp_path):
    import dpkt

    from analysis.load import load_trace

    tr = load_trace(run_dir / "sender.trace.jsonl")
    out = tmp_path / "s.pcap"
    p = analyze(run_dir / "sender.trace.jsonl", "--pcap", out)
    assert p.returncode == 0, p.stderr
    n_events = len(tr["send"]) + len(tr["recv"])
    with open(out, "rb") as f:
        pkts = [dpkt.ip.IP(buf) for _, buf in dpkt.pcap.Reader(f)]
    assert len(pkts) == n_events
    sent_len = sum(len(ip.data.data) for ip in pkts if ip.src == bytes([10, 0, 0, 1]))
    assert sent_len == sum(ln or 0 for ln in tr["send"]["len"])
    assert sum(1 for ip in pkts if ip.data.flags & dpkt.tcp.TH_SYN) >= 2
    tshark = shutil.which("tshark")
    if tshark is None:
        return  # dpkt read it; Wireshark's own reading is checked where it is installed
    q = subprocess.run([tshark, "-n", "-r", str(out), "-T", "fields", "-e", "tcp.len",
                        "-e", "tcp.options.sack_perm", "-e", "tcp.options.sack_le"],
                       capture_output=True, text=True, timeout=120)
    assert q.returncode == 0, q.stderr
    rows = [ln.split("\t") for ln in q.stdout.splitlines()]
    assert len(rows) == n_events
    assert sum(int(r[0] or 0) for r in rows) == sum(ln or 0 for ln in tr["send"]["len"]) + \
        sum(ln or 0 for ln in tr["recv"]["len"])
    assert rows[0][1], "the SYN carries SACK-permitted"
    assert any(r[2] for r in rows) == any(tr["recv"]["sack"]), "SACK blocks are written"


def test_pcap_of_an_emulator_trace_is_refused(run_dir, tmp_path):
    p = analyze(run_dir / "emu-data.trace.jsonl", "--pcap", tmp_path / "x.pcap")
    assert p.returncode == 2 and "sender's or a receiver's" in p.stderr
    assert "Traceback" not in p.stderr and not (tmp_path / "x.pcap").exists()


def test_inflight_panel_names_a_window_far_above_the_pipe(tmp_path):
    """As the PNG: WINDOW 1 GiB over a cwnd of 20 segments is named in the
    legend, not drawn (the panel's range would be 1 GiB high, the pipe a
    line along its floor)."""
    from analysis_support import MSS

    events, _ = sender_events(n=200)
    events[0].update(cc="newreno", window=1 << 30)
    for e in events:
        if e["ev"] == "inflight":
            e["cwnd"] = 20 * MSS
    write_trace(tmp_path / "sender.trace.jsonl", events)
    p = analyze(tmp_path, "--html")
    assert p.returncode == 0, p.stdout + p.stderr
    page = (tmp_path / "report.html").read_text()
    assert "WINDOW, 1024.00 MiB, is above this scale" in page
    assert "WINDOW (1024.00 MiB)" not in page
    events[0]["window"] = 30 * MSS  # within reach: drawn
    write_trace(tmp_path / "sender.trace.jsonl", events)
    assert analyze(tmp_path, "--html").returncode == 0
    page = (tmp_path / "report.html").read_text()
    assert f"WINDOW ({30 * MSS / 1024:.2f} KiB)" in page and "above this scale" not in page


def test_several_flows_and_run_json(tmp_path):
    """Two sender traces: a panel set per flow and one goodput panel with
    both; run.json's command and verdict head the page."""
    import json

    a, _ = sender_events(n=200)
    b, _ = sender_events(n=100, isn=5)
    for e in b:
        e["t"] = round(e["t"] + 0.3, 6)
    write_trace(tmp_path / "sender-1.trace.jsonl", a)
    write_trace(tmp_path / "sender-2.trace.jsonl", b)
    (tmp_path / "run.json").write_text(json.dumps(
        {"command": ["./run_pair.sh", "--flows", "2"], "verdict": "OK: 2 files", "ok": True}))
    p = analyze(tmp_path, "--html")
    assert p.returncode == 0, p.stderr
    page = (tmp_path / "report.html").read_text()
    for pid in ("panel-timeseq-1", "panel-timeseq-2", "panel-inflight-2", "panel-rtt-1",
                "panel-goodput"):
        assert f'id="{pid}"' in page, pid
    assert 'data-title="Goodput per flow' in page
    assert '<pre id="command">./run_pair.sh --flows 2</pre>' in page
    assert 'class="verdict ok" id="verdict">OK: 2 files<' in page
    # one time zero: the earlier sender's first SYN
    assert "seconds since the first SYN of the earliest sender" in page


def test_report_without_run_json_says_where_things_come_from(report):
    import html

    page = html.unescape(report.read_text())
    assert "each program's settings, from the first (meta) line of its trace" in page
    assert 'class="verdict ok" id="verdict">OK: the file was delivered and verified' in page
    assert "no queue panel, its trace has no queue length" in page
