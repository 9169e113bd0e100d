"""The benchmark's UDP ceiling roles as processes on 127.0.0.1: a GSO blast
still puts 1472-byte datagrams on the wire, each counted by the sink."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DGRAM = 1472


def _role(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "bench.baselines", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("gso", [1, 44])
def test_blast_reaches_the_sink_as_mtu_sized_datagrams(gso, tmp_path):
    data = os.urandom(300 * DGRAM + 100)  # the last datagram is short
    f = tmp_path / "in.bin"
    f.write_bytes(data)
    ready = tmp_path / "ready.json"
    sink = _role("udp-sink", "--ready-file", str(ready), "--idle", "2")
    blast = None
    try:
        deadline = time.monotonic() + 20
        while not ready.exists():
            assert sink.poll() is None, sink.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.02)
        port = json.loads(ready.read_text())["port"]
        blast = _role("udp-blast", "--file", str(f), "--port", str(port), "--gso", str(gso))
        out, err = blast.communicate(timeout=30)
        assert blast.returncode == 0, err
        sent = json.loads(out.strip().splitlines()[-1])
        got, err = sink.communicate(timeout=30)
        assert sink.returncode == 0, err
        got = json.loads(got.strip().splitlines()[-1])
    finally:
        for p in (sink, blast):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
    datagrams = -(-len(data) // DGRAM)
    assert sent["sent"] == datagrams and sent["passes"] == 1
    # Loopback with 8 MiB buffers loses nothing here; the sink does not count
    # the first datagram's bytes (it starts the clock).
    assert got["datagrams"] == datagrams
    assert got["bytes"] == len(data) - DGRAM


@pytest.mark.timeout(30)
@pytest.mark.parametrize("gso", ["0", "45"])
def test_blast_refuses_a_batch_gso_cannot_send(gso, tmp_path):
    p = _role("udp-blast", "--file", str(tmp_path / "x"), "--port", "9", "--gso", gso)
    _, err = p.communicate(timeout=20)
    assert p.returncode == 2 and "--gso must be 1 to 44" in err
