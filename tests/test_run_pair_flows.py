"""run_pair.sh --flows N (harness/flows.py): N senders into one stcp-serve
through one data-path and one ACK-path emulator; every file verified, the
per-flow table, Jain's index, the per-flow plot; and the option checks."""

from __future__ import annotations

import json
import re
import subprocess

import pytest
from pair_support import RUN_PAIR, pids_with, show

from harness.flows import format_table, jain

pytestmark = pytest.mark.timeout(240)


def _run(args: list[str], timeout: float = 200) -> subprocess.CompletedProcess:
    return subprocess.run([str(RUN_PAIR), *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def test_jain_index_is_the_formula():
    assert jain([5.0, 5.0, 5.0]) == pytest.approx(1.0)
    assert jain([1.0, 0.0, 0.0, 0.0]) == pytest.approx(0.25)  # one flow has all: 1/n
    assert jain([1.0, 3.0]) == pytest.approx(16 / (2 * 10))
    assert jain([]) is None


def test_three_flows_with_their_own_delays(tmp_path):
    d = tmp_path / "run"
    res = _run(["--flows", "3", "--size", "200K", "--seed", "3", "--stagger", "0.1",
                "--flow-delays", "0,0.005,0.01", "--cc", "newreno", "--ack-loss", "2",
                "--dir", str(d)])
    assert res.returncode == 0, show(res)
    assert "VERDICT: OK: 3 flows, 3 delivered intact" in res.stdout
    rows = [ln for ln in res.stdout.splitlines() if re.match(r"^\s+[123]\s+flow-", ln)]
    assert len(rows) == 3 and all(ln.endswith("intact") for ln in rows), res.stdout
    assert all(re.search(r"KiB|bytes", ln) for ln in rows)  # the final cwnd column
    m = re.search(r"Jain's fairness index of the goodputs ([0-9.]+)", res.stdout)
    goodputs = [float(re.search(r"([0-9.]+) Mbit/s", ln).group(1)) for ln in rows]
    assert m and float(m.group(1)) == pytest.approx(jain(goodputs), abs=0.002)
    for i in (1, 2, 3):
        assert (d / "inbox" / f"flow-{i}.bin").read_bytes() == \
            (d / f"flow-{i}.bin").read_bytes()
    assert (d / "plots" / "flows.png").stat().st_size > 10_000
    assert "3 flows, 3 delivered intact" in (d / "report.html").read_text()
    info = json.loads((d / "run.json").read_text())
    assert info["ok"] and [r["delay"] for r in info["flows"]] == [0, 0.005, 0.01]
    assert json.loads((d / "emu-ack.stats.json").read_text())["forwarded"] > 0
    assert not pids_with(str(d)), "processes of the run left behind"


def test_dry_run_starts_one_server_and_per_flow_delay_emulators(tmp_path):
    res = _run(["--flows", "2", "--flow-delays", "0,0.02", "--dry-run",
                "--dir", str(tmp_path / "r")], timeout=60)
    assert res.returncode == 0, show(res)
    lines = [ln for ln in res.stdout.splitlines() if not ln.startswith("#")]
    assert sum("-m receiver serve" in ln for ln in lines) == 1
    assert sum("-m sender" in ln for ln in lines) == 2
    assert sum("--forward-by-port" in ln for ln in lines) == 1
    assert sum(" -d 0.02" in ln for ln in lines) == 1  # flow 2's own emulator


def test_every_program_of_a_flows_run_binds_the_host_given(tmp_path):
    """--host 127.0.0.2: the server and the emulators too (they bound
    127.0.0.1, where the senders' data never went)."""
    res = _run(["--flows", "2", "--host", "127.0.0.2", "--dry-run",
                "--dir", str(tmp_path / "r")], timeout=60)
    assert res.returncode == 0, show(res)
    lines = [ln for ln in res.stdout.splitlines() if not ln.startswith("#") and " -m " in ln]
    assert len(lines) == 5 and all("--bind 127.0.0.2" in ln for ln in lines), res.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["--stagger", "1"], "--stagger needs --flows"),
    (["--flows", "0"], "--flows takes 1..64"),
    (["--flows", "2", "--flow-delays", "0.1"], "--flow-delays takes 2 delays"),
    (["--flows", "2", "--output", "x.bin"], "--output does not go with --flows"),
])
def test_bad_flow_options_one_line_exit_2(args, message):
    res = _run([*args, "--dry-run"], timeout=60)
    assert res.returncode == 2
    assert message in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_table_says_na_when_a_flow_failed():
    rows = [{"flow": 1, "name": "a", "bytes": 10, "transfer_s": 1.0, "goodput_bps": 80.0,
             "retransmissions": 0, "final_cwnd": None, "ok": True},
            {"flow": 2, "name": "b", "bytes": 5, "transfer_s": 1.0, "goodput_bps": None,
             "retransmissions": 3, "final_cwnd": None, "ok": False}]
    text = format_table(rows, cc=False)
    assert "n/a (a flow failed)" in text and "FAILED" in text


def test_thread_trace_of_the_server_and_every_sender(tmp_path):
    d = tmp_path / "run"
    res = _run(["--flows", "2", "--size", "100K", "--seed", "5", "--clean", "--thread-trace",
                "--dir", str(d)])
    assert res.returncode == 0, show(res)
    for name in ("server", "sender-1", "sender-2"):
        doc = json.loads((d / f"{name}.threads.json").read_text())
        assert doc["traceEvents"], name
    doc = json.loads((d / "server.threads.json").read_text())
    tracks = {e["args"]["name"] for e in doc["traceEvents"]
              if e.get("ph") == "M" and e["name"] == "thread_name"}
    assert {"network", "writer flow-1.bin", "writer flow-2.bin"} <= tracks
    assert "core lock flow-2.bin" in (d / "report.html").read_text()  # its thread panel
