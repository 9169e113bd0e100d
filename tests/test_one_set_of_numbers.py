"""One run, one set of numbers (issue 24, item 4).

A run used to give four transfer times and two goodputs (the sender's
summary, the analysis, the receiver's summary, run_pair's verdict).  Each
figure is now defined once in docs/MEASURES.md; this runs run_pair.sh once
through a lossy link and reads every place that prints a figure: where they
mean the same thing they must print the same number, and the two that
measure something else on purpose (the receiver's own time, run_pair's
wall time) must say so where they appear.
"""

from __future__ import annotations

import html
import re

import pytest
from pair_support import run_pair, show

pytestmark = pytest.mark.timeout(240)

#: the sender summary's names of the retransmission causes -> the trace's tags
CAUSES = {"timeout": "timeout", "fast": "fast", "SACK rule": "sack", "RACK": "rack",
          "TLP": "tlp"}


_ROW = re.compile(r"^\s{2}(\S.*?)\s{2,}(.*)$")


def rows_after(lines: list[str]) -> dict[str, str]:
    """label -> value of the two-column rows that follow, up to the first
    line that is not one."""
    rows = {}
    for line in lines:
        m = _ROW.match(line)
        if not m:
            break
        rows.setdefault(m.group(1), m.group(2))
    return rows


def section(text: str, role: str) -> dict[str, str]:
    """The rows of the analysis.txt block of the trace whose role is ``role``."""
    lines = text.splitlines()
    (i,) = [i for i, ln in enumerate(lines) if re.match(rf"^== .* \({role}, .*\) ==$", ln)]
    return rows_after(lines[i + 1:])


def table(stdout: str, title: str) -> dict[str, str]:
    """The rows of a program's summary table ("sender summary" and dashes)."""
    lines = stdout.splitlines()
    i = lines.index(title)
    assert set(lines[i + 1]) == {"-"}
    return rows_after(lines[i + 2:])


def report_value(page: str, label: str) -> str:
    sec = page[page.index("sender.trace.jsonl</th>"):]
    m = re.search(rf"<td>{re.escape(label)}</td><td class=\"num\">([^<]*)</td>", sec)
    assert m, label
    return html.unescape(m.group(1))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("numbers") / "run"
    res = run_pair("--size", "600K", "--seed", "5", "--loss", "5", "--reorder", "2",
                   "--dir", d)
    assert res.returncode == 0, show(res)
    return res.stdout, (d / "analysis.txt").read_text(), (d / "report.html").read_text()


def test_transfer_time_and_goodput_are_the_same_everywhere(run):
    stdout, analysis, page = run
    sender, ana = table(stdout, "sender summary"), section(analysis, "sender")
    time_s = re.match(r"([0-9.]+) s \(SYN to verified FIN\)$", sender["time"]).group(1)
    goodput = sender["goodput"]
    assert re.match(r"[0-9.]+ Mbit/s$", goodput), goodput
    assert ana["transfer time"].startswith(f"{time_s} s (first SYN to FIN acknowledged")
    assert ana["goodput"].startswith(f"{goodput} (file bytes / transfer time)")
    assert report_value(page, "transfer time") == f"{time_s} s"
    assert report_value(page, "goodput") == goodput
    verdict = next(ln for ln in stdout.splitlines() if ln.startswith("VERDICT: OK"))
    assert f" in {time_s} s (transfer time, SYN to verified FIN, goodput {goodput}; " \
        in verdict, verdict
    # run_pair's own clock measures the processes, and says so
    assert re.search(r"; [0-9.]+ s wall time from the sender's start to both programs' "
                     r"exit\)", verdict), verdict


def test_counts_are_the_same_everywhere(run):
    stdout, analysis, page = run
    sender, ana = table(stdout, "sender summary"), section(analysis, "sender")
    assert ana["duplicate ACKs"] == sender["duplicate ACKs"]
    assert report_value(page, "duplicate ACKs") == sender["duplicate ACKs"]
    m = re.match(r"(\d+) \((.*)\); (\d+) timer expir", sender["retransmissions"])
    total, causes, expiries = m.group(1), m.group(2), m.group(3)
    theirs = {CAUSES[k]: int(v) for k, v in (c.rsplit(" ", 1) for c in causes.split(", "))}
    a = re.match(r"(\d+)(?: \((.*)\))?$", ana["retransmissions"])
    ours = {k: int(v) for k, v in (c.split(" ") for c in (a.group(2) or "").split(", ") if c)}
    assert int(total) > 0, "the run should have resent something"
    assert a.group(1) == total
    assert ours == {k: v for k, v in theirs.items() if v}  # the same causes, same names
    assert ana["timer expiries"] == expiries
    for line in analysis.splitlines():  # the analysis's own check of these figures
        if "DISAGREES" in line:
            assert not re.search(r"transfer_s|duplicate_acks|retransmissions|timer_expiries",
                                 line), line


def test_the_receivers_own_time_is_labelled_as_such(run):
    stdout, analysis, _ = run
    recv = table(stdout, "receiver summary")
    m = re.match(r"([0-9.]+) s \(its own: SYN received to its end, not the transfer time\)$",
                 recv["time"])
    assert m, recv["time"]
    assert recv["goodput"].endswith("(bytes written / its own time)")
    ana = section(analysis, "receiver")
    assert ana["receiver's own time"] == \
        f"{m.group(1)} s (its SYN received to its exit: a process's time)"
    assert "transfer time" not in ana and "goodput" not in ana
