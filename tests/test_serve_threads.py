"""stcp-serve --thread-trace: the network thread and one writer per
connection, each connection's core lock and writer queue under its own name,
in one Chrome trace-event file that the analysis reads."""

from __future__ import annotations

import json
import subprocess

import pytest
from serve_support import parts, start_emulator, start_sender, start_server
from support import PY, ROOT, make_file

from analysis.contention import contention
from analysis.threads import load_thread_trace
from harness.procs import Group

pytestmark = pytest.mark.timeout(180)


def _names(doc: dict) -> set[str]:
    return {e["args"]["name"] for e in doc["traceEvents"]
            if e.get("ph") == "M" and e["name"] == "thread_name"}


@pytest.fixture(scope="module")
def traced(tmp_path_factory):
    d = tmp_path_factory.mktemp("serve-threads")
    out = d / "out"
    out.mkdir()
    files = [make_file(d / name, 400 * 1452 + i, seed=20 + i)
             for i, name in enumerate(("a.bin", "b.bin"))]
    trace = d / "server.threads.json"
    with Group(d) as group:
        server, port = start_server(group, out, ["--count", "2", "--thread-trace", str(trace),
                                                 "--write-delay", "0.0005"])
        emu = start_emulator(group, "emu-data", port, ["-L", "3", "--seed", "4"])
        senders = [start_sender(group, f"send-{f.stem}", f, emu, ["--min-rto", "0.05"])
                   for f in files]
        for s in senders:
            assert s.wait(120) == 0, s.describe() + "\n" + server.describe()
        assert server.wait(30) == 0, server.describe()
    for f in files:
        assert (out / f.name).read_bytes() == f.read_bytes()
    assert parts(out) == []
    with open(trace, encoding="utf-8") as fh:
        return trace, json.load(fh)


def test_one_track_per_thread_and_per_connection_names(traced):
    _path, doc = traced
    assert doc["otherData"]["role"] == "server"
    assert {"network", "writer a.bin", "writer b.bin", "MainThread"} <= _names(doc)
    ev = doc["traceEvents"]
    held = {e["args"].get("lock") for e in ev if e.get("cat") == "lock.hold"}
    assert {"core lock a.bin", "core lock b.bin"} <= held
    waits = {e["args"]["cond"] for e in ev if e.get("cat") == "cond.wait"}
    assert any("writer queue a.bin" in w for w in waits), waits
    assert any("writer queue b.bin" in w for w in waits), waits
    calls = {e["name"] for e in ev if e.get("cat") == "syscall"}
    assert {"poll", "sendmsg", "write", "fsync", "write delay"} <= calls  # (ACKs: GSO)
    written = sum(e["args"]["bytes"] for e in ev if e.get("name") == "write")
    assert written == 2 * 400 * 1452 + 1


def test_the_analysis_reads_it(traced):
    path, _doc = traced
    c = contention(load_thread_trace(path))
    locks = {r["lock"]: r for r in c["locks"]}
    for name in ("core lock a.bin", "core lock b.bin"):
        assert locks[name]["acquisitions"] > 0 and 0 <= locks[name]["contended_share"] <= 1
    plots = path.parent / "plots"
    res = subprocess.run([PY, "-m", "analysis", str(path), "--out", str(plots)],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "core lock a.bin" in res.stdout and "writer b.bin" in res.stdout
    assert (plots / "threads-timeline.png").stat().st_size > 10_000


def test_a_bad_path_is_one_line(tmp_path):
    res = subprocess.run([PY, "-m", "receiver", "serve", str(tmp_path), "0", "127.0.0.1",
                          "--thread-trace", str(tmp_path / "no" / "t.json")],
                         capture_output=True, text=True, cwd=ROOT, timeout=30)
    assert res.returncode == 2 and "cannot write" in res.stderr
    assert res.stderr.count("\n") == 1, res.stderr
