"""--thread-trace on the real programs: a lossy transfer's traces name every
thread and hold what the issue asks (lock holds, condition waits with
outcomes, socket batches, disk writes and the fsync, the counters and the
marks), stcp-analyze reads them; the file is written after SIGINT too; a
bad path is one line and exit 2; the ring bounds what a thread keeps."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest
from support import HOST, PY, ROOT, Link, free_udp_port, make_file

from analysis.contention import contention
from analysis.threads import load_thread_trace

pytestmark = pytest.mark.timeout(120)


def _names(doc: dict) -> set[str]:
    return {e["args"]["name"] for e in doc["traceEvents"]
            if e.get("ph") == "M" and e["name"] == "thread_name"}


def _load(path) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(scope="module")
def traced(tmp_path_factory):
    d = tmp_path_factory.mktemp("threads")
    src = make_file(d / "in.bin", 600 * 1452, seed=5)
    with Link(d) as link:
        s, r = link.transfer(
            src, d / "out.bin", window="64K",
            data_link=["-L", "5", "-d", "0.003", "--seed", "7"],
            sender_args=["--thread-trace", str(d / "sender.threads.json")],
            receiver_args=["--thread-trace", str(d / "receiver.threads.json"),
                           "--buffer", "32K", "--write-delay", "0.0005"])
        assert s.returncode == 0 and r.returncode == 0, link.describe()
    assert (d / "out.bin").read_bytes() == src.read_bytes()
    return d


def test_the_sender_trace_has_its_threads_locks_and_marks(traced):
    doc = _load(traced / "sender.threads.json")
    assert {"transmitter", "ack-listener", "rto-timer", "MainThread"} <= _names(doc)
    ev = doc["traceEvents"]
    cats = {e.get("cat") for e in ev}
    assert {"lock.hold", "cond.wait", "syscall", "proto"} <= cats
    assert {e["args"]["cond"] for e in ev if e.get("cat") == "cond.wait"} >= {"tx_ready",
                                                                               "done"}
    sends = [e for e in ev if e.get("name") == "sendmsg"]
    assert sends and sum(e["args"]["datagrams"] for e in sends) >= 600
    assert sum(e["args"]["bytes"] for e in sends) >= 600 * 1452
    counters = {e["name"] for e in ev if e["ph"] == "C"}
    assert {"in flight", "rwnd", "window limit"} <= counters
    marks = {e["name"] for e in ev if e.get("cat") == "proto"}
    assert "retransmit" in marks  # 5% loss
    assert doc["otherData"]["role"] == "sender"


def test_the_receiver_trace_has_its_writer_and_disk(traced):
    doc = _load(traced / "receiver.threads.json")
    assert {"network", "writer", "MainThread"} <= _names(doc)
    ev = doc["traceEvents"]
    calls = {e["name"] for e in ev if e.get("cat") == "syscall"}
    assert {"write", "fsync", "poll", "sendmsg", "write delay"} <= calls  # (ACKs: GSO)
    assert sum(e["args"]["bytes"] for e in ev if e.get("name") == "write") == 600 * 1452
    counters = {e["name"] for e in ev if e["ph"] == "C"}
    assert {"advertised window", "writer queue", "writer queue bytes", "unwritten"} <= counters
    waits = [e for e in ev if e.get("cat") == "cond.wait"]
    assert any(e["args"]["cond"] == "writer queue not empty" for e in waits)
    assert {e["args"]["outcome"] for e in waits} <= {"notified", "spurious", "timeout",
                                                      "interrupted", "unknown"}


def test_the_analysis_reads_both(traced):
    for end in ("sender", "receiver"):
        c = contention(load_thread_trace(traced / f"{end}.threads.json"))
        core = [r for r in c["locks"] if r["lock"] == "core lock"][0]
        assert core["acquisitions"] > 0 and 0 <= core["contended_share"] <= 1
        for t in c["threads"]:
            # five shares, each rounded to 6 decimals
            assert sum(t["shares"].values()) == pytest.approx(1.0, abs=3e-6)


def test_sigint_still_writes_the_trace(tmp_path):
    src = make_file(tmp_path / "in.bin", 2000 * 1452, seed=1)
    out = tmp_path / "s.threads.json"
    with Link(tmp_path) as link:
        ack_port = free_udp_port()
        _r, recv_port = link.receiver(tmp_path / "out.bin", ack_port)
        # a 2 Mbit/s link keeps the transfer going (about 12 s) until the signal
        _emu, emu_port = link.emulator("emu-data", recv_port, ["-s", "2000"])
        s = link.sender(src, emu_port, "64K", ack_port, ["--thread-trace", str(out)])
        time.sleep(1.0)
        assert s.poll() is None, s.describe()
        s.signal(signal.SIGINT)
        assert s.wait(30) == 130, s.describe()
    doc = _load(out)
    assert "transmitter" in _names(doc)
    assert any(e.get("cat") == "syscall" for e in doc["traceEvents"])
    assert not (tmp_path / "s.threads.json.part").exists()


def test_a_bad_path_is_one_line(tmp_path):
    res = subprocess.run([PY, "-m", "sender", str(make_file(tmp_path / "x", 10)), HOST,
                          "9", "64K", "0", "--thread-trace", str(tmp_path / "no" / "t.json")],
                         capture_output=True, text=True, cwd=ROOT, timeout=30)
    assert res.returncode == 2 and "cannot write" in res.stderr
    assert res.stderr.count("\n") == 1, res.stderr


def test_the_ring_bounds_each_thread(tmp_path):
    src = make_file(tmp_path / "in.bin", 300 * 1452, seed=2)
    with Link(tmp_path) as link:
        s, r = link.transfer(src, tmp_path / "out.bin", window="32K",
                             sender_args=["--thread-trace", str(tmp_path / "s.json"),
                                          "--thread-trace-events", "50"])
        assert s.returncode == 0, link.describe()
    doc = _load(tmp_path / "s.json")
    threads = doc["otherData"]["threads"]
    assert all(t["kept"] <= 50 for t in threads)
    assert any(t["dropped"] > 0 for t in threads)
    assert all(t["recorded"] == t["kept"] + t["dropped"] for t in threads)
