"""The sender and the receiver bind the loopback by default, as stcp-link
does (issue 24, item 10): they used to bind 0.0.0.0, open to every
machine that can reach this one.  A peer off the loopback needs --bind."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time

import pytest
from support import HOST, PY, ROOT, make_file

pytestmark = pytest.mark.timeout(60)

ENV = dict(os.environ, PYTHONPATH=str(ROOT))


def _wait_ready(path, proc) -> int:
    for _ in range(200):
        if path.exists():
            return json.loads(path.read_text())["port"]
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError("the receiver never got ready")


def test_the_receiver_binds_127_0_0_1(tmp_path):
    ready = tmp_path / "ready.json"
    proc = subprocess.Popen([PY, "-m", "receiver", str(tmp_path / "out.bin"), "0", HOST, "9",
                             "--ready-file", str(ready), "--listen-timeout", "20"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        port = _wait_ready(ready, proc)
        # 127.0.0.2 is this machine too: its port is free only if the
        # receiver is not bound to every address
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.2", port))
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    assert f"listening on 127.0.0.1 UDP port {port}" in err, err
    assert proc.returncode == 143, err  # SIGTERM: 128 + 15


def test_the_sender_sends_from_127_0_0_1(tmp_path):
    src = make_file(tmp_path / "in.bin", 100)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind((HOST, 0))
        res = subprocess.run([PY, "-m", "sender", str(src), HOST, str(sink.getsockname()[1]),
                              "4K", "0", "--retries", "0", "--give-up", "1"],
                             capture_output=True, text=True, env=ENV, timeout=30)
        _, addr = sink.recvfrom(2048)  # its SYN
    assert addr[0] == "127.0.0.1"
    assert "from 127.0.0.1 port" in res.stderr, res.stderr
    assert res.returncode == 1, res.stderr


@pytest.mark.parametrize("argv", [
    ["sender", "{src}", "192.0.2.1", "5000", "4K", "0"],
    ["receiver", "{dst}", "0", "192.0.2.1", "5000"],
])
def test_a_peer_off_the_loopback_needs_bind(tmp_path, argv):
    src = make_file(tmp_path / "in.bin", 10)
    argv = [a.format(src=src, dst=tmp_path / "out.bin") for a in argv]
    res = subprocess.run([PY, "-m", *argv], capture_output=True, text=True, env=ENV,
                         timeout=30)
    assert res.returncode == 2, res.stderr
    assert "is not on this machine's loopback: give --bind ADDRESS" in res.stderr
    assert "Traceback" not in res.stderr
