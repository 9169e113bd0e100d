"""stcp-serve under trouble: one sender dies mid-transfer, or a flood of
forged SYNs arrives during a transfer; the other transfers do not notice."""

from __future__ import annotations

import os
import random
import re
import signal
import socket
import time

import pytest
from serve_support import HOST, parts, start_emulator, start_sender, start_server
from support import make_file

from common.segment import SYN, Segment, encode
from harness.ports import spare_udp_port
from harness.procs import Group

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def group(tmp_path):
    with Group(tmp_path) as g:
        yield g


def _wait_part(out, server, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not parts(out):
        assert time.monotonic() < deadline, "no .part appeared\n" + server.describe()
        time.sleep(0.02)


def test_a_killed_sender_leaves_the_others_alone(tmp_path, group):
    """The victim (8 KiB window over 20 ms: about 20 s for its 8 MB) is
    SIGKILLed while three others run; they complete, and the victim's .part
    goes once the server has heard nothing of it for --give-up."""
    out = tmp_path / "out"
    out.mkdir()
    server, port = start_server(group, out, ["--count", "4", "--give-up", "2"])
    emu = start_emulator(group, "emu-data", port, ["-d", "0.02"])
    victim_file = make_file(tmp_path / "victim.bin", 8_000_000)
    victim = start_sender(group, "send-victim", victim_file, emu, window="8K")
    _wait_part(out, server)
    files = [make_file(tmp_path / f"ok{i}.bin", 300_000, seed=i) for i in range(3)]
    others = [start_sender(group, f"send-{i}", f, emu, window="256K")
              for i, f in enumerate(files)]
    assert victim.poll() is None, victim.describe()
    victim.signal(signal.SIGKILL)
    for s in others:
        assert s.wait(60) == 0, s.describe() + "\n" + server.describe()
    assert server.wait(60) == 1, server.describe()  # one of four failed
    for f in files:
        assert (out / f.name).read_bytes() == f.read_bytes()
    assert sorted(os.listdir(out)) == sorted(f.name for f in files)  # no victim, no .part
    (line,) = [ln for ln in server.stderr.splitlines() if "done victim.bin" in ln]
    assert "FAILED: nothing heard from the sender for 2 s" in line
    assert "3 transfers" not in server.stdout and "4 transfers, 3 verified" in server.stdout


def test_a_slow_disk_slows_only_its_own_connection(tmp_path, group):
    """slow.bin's writer waits 20 ms per segment (the hidden test hook: about
    15 s for its 700 segments, its window throttling its sender); fast.bin,
    started after it, completes while slow.bin is still being written."""
    out = tmp_path / "out"
    out.mkdir()
    server, port = start_server(group, out, ["--buffer", "64K",
                                             "--test-slow-name", "slow.bin=0.02"])
    slow = start_sender(group, "send-slow", make_file(tmp_path / "slow.bin", 1_000_000),
                        port)
    _wait_part(out, server)
    fast_file = make_file(tmp_path / "fast.bin", 1_000_000, seed=1)
    fast = start_sender(group, "send-fast", fast_file, port)
    assert fast.wait(60) == 0, fast.describe()
    assert slow.poll() is None and parts(out), "the slow transfer ended first: no test"
    assert (out / "fast.bin").read_bytes() == fast_file.read_bytes()
    server.signal(signal.SIGTERM)
    assert server.wait(30) == 143
    assert sorted(os.listdir(out)) == ["fast.bin"]


def test_a_restarted_server_resets_the_sender_it_no_longer_knows(tmp_path, group):
    """SIGKILL the server mid-transfer (its disk slowed: the transfer lasts),
    start another on the same port: the sender's next segment draws an RST
    ("no such connection") and it stops at once, not after --give-up."""
    out = tmp_path / "out"
    out.mkdir()
    first, port = start_server(group, out, ["--write-delay", "0.005", "--buffer", "64K"],
                               port=spare_udp_port(HOST))  # (free again when it is restarted)
    s = start_sender(group, "send", make_file(tmp_path / "long.bin", 2_000_000), port,
                     ["--give-up", "120"])
    _wait_part(out, first)
    first.signal(signal.SIGKILL)
    first.wait(30)
    assert len(parts(out)) == 1  # the killed server's
    second, again = start_server(group, out, name="serve-again", port=port)
    assert again == port
    assert parts(out) == [] and "removed 1 temporary file of" in second.stderr
    assert s.wait(60) == 1, s.describe()
    assert "no such connection" in s.stderr
    second.signal(signal.SIGTERM)
    assert second.wait(30) == 143
    assert "no-connection" in second.stdout


def _flood(port: int, count: int, avoid: set[int]) -> None:
    """``count`` SYNs, each as from a new connection (a new TCP source port
    and ISN), half with a name, in bursts of 100."""
    rng = random.Random(7)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for i in range(count):
            src = rng.randrange(20000, 60000)
            while src in avoid:
                src = rng.randrange(20000, 60000)
            name = f"forged-{i}".encode() if i % 2 else b""
            syn = Segment(seq=rng.getrandbits(32), flags=SYN, window=65535, mss=1452,
                          wscale=0, sack_permitted=True, file_size=1 << 20, payload=name,
                          name_follows=bool(name), src_port=src, dst_port=port)
            sock.sendto(encode(syn), (HOST, port))
            if i % 100 == 99:
                time.sleep(0.002)
    finally:
        sock.close()


def test_forged_syn_flood_during_a_transfer(tmp_path, group):
    out = tmp_path / "out"
    out.mkdir()
    server, port = start_server(group, out, ["--count", "1", "--max-half-open", "64",
                                             "--syn-timeout", "1"])
    emu = start_emulator(group, "emu-data", port, ["-d", "0.02"])
    f = make_file(tmp_path / "real.bin", 3_000_000)
    ack_port = spare_udp_port(HOST)  # known, so the flood can spare it (harness/ports.py)
    s = start_sender(group, "send", f, emu, window="16K", ack_port=ack_port)
    _wait_part(out, server)
    _flood(port, 5000, {ack_port})
    assert s.poll() is None, "the transfer ended before the flood did: no test"
    assert s.wait(90) == 0, s.describe() + "\n" + server.describe()
    assert server.wait(30) == 0, server.describe()
    assert (out / "real.bin").read_bytes() == f.read_bytes()
    assert os.listdir(out) == ["real.bin"]  # nothing for a forged SYN, ever
    m = re.search(r"half-open: at most (\d+) at once, (\d+) forgotten", server.stdout)
    assert m, server.stdout
    peak, forgotten = int(m.group(1)), int(m.group(2))
    assert peak <= 64
    assert forgotten >= 1000, server.stdout  # the limit and the timeout did the work
