"""stcp-serve (receiver/server.py): many senders into one directory, names
checked and claimed, refusals with an RST that says why, atomic output,
limits, signals; and the one-shot stcp-recv refusing a second sender."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import pytest
from serve_support import (
    RawPeer,
    parts,
    start_emulator,
    start_oneshot,
    start_sender,
    start_server,
)
from support import make_file

from common.segment import RST
from harness.procs import Group

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def group(tmp_path):
    with Group(tmp_path) as g:
        yield g


def _outdir(tmp_path: Path) -> Path:
    d = tmp_path / "out"
    d.mkdir()
    return d


def test_one_named_and_one_unnamed_sender(tmp_path, group):
    out = _outdir(tmp_path)
    a = make_file(tmp_path / "a.bin", 300_000, seed=1)
    b = make_file(tmp_path / "b.bin", 123_457, seed=2)
    server, port = start_server(group, out, ["--count", "2"])
    s1 = start_sender(group, "send-a", a, port)
    assert s1.wait(60) == 0, s1.describe()
    s2 = start_sender(group, "send-b", b, port, ["--no-name"])
    assert s2.wait(60) == 0, s2.describe()
    assert server.wait(30) == 0, server.describe()
    assert (out / "a.bin").read_bytes() == a.read_bytes()
    (made,) = [p for p in out.iterdir() if p.name != "a.bin"]
    assert made.name.startswith("received-") and made.read_bytes() == b.read_bytes()
    assert parts(out) == []
    table = server.stdout
    assert "server summary" in table and "2 transfers, 2 verified" in table
    assert "a.bin: 300000 bytes" in server.stderr and "verified" in server.stderr


def test_eight_senders_through_lossy_paths_both_ways(tmp_path, group):
    """8 concurrent senders, 5% loss on the data path and on the ACK path:
    one ACK-path emulator carries every flow's ACKs (--forward-by-port)."""
    out = _outdir(tmp_path)
    ack_emu = start_emulator(group, "emu-ack", "*", ["-L", "5", "--seed", "2",
                                                      "--forward-by-port"])
    server, port = start_server(group, out, ["--count", "8", "--buffer", "256K"],
                                ack_port=ack_emu)
    data_emu = start_emulator(group, "emu-data", port, ["-L", "5", "--seed", "1"])
    files = [make_file(tmp_path / f"f{i}.bin", 150_000 + 7919 * i, seed=10 + i)
             for i in range(8)]
    senders = [start_sender(group, f"send-{i}", f, data_emu, ["--min-rto", "0.05"])
               for i, f in enumerate(files)]
    for s in senders:
        assert s.wait(150) == 0, s.describe() + "\n" + server.describe()
    assert server.wait(30) == 0, server.describe()
    for f in files:
        assert (out / f.name).read_bytes() == f.read_bytes(), f.name
    assert parts(out) == []
    assert "8 transfers, 8 verified" in server.stdout


HOSTILE = {
    "parent": b"../x",
    "absolute": b"/etc/passwd",
    "subdirectory": b"a/b",
    "dotdot": b"..",
    "dot": b".",
    "empty": b"",
    "NUL": b"a\x00b",
    "300 bytes": b"a" * 300,
    "invalid UTF-8": b"\xff\xfe.txt",
    "symlink to a file outside": b"evil",
    "symlink to a directory outside": b"evil-dir",
}


@pytest.mark.parametrize("force", [False, True], ids=["plain", "force"])
def test_hostile_names_refused_and_nothing_written_outside(tmp_path, group, force):
    tree = tmp_path / "tree"  # (the programs' own files are in tmp_path)
    tree.mkdir()
    out = _outdir(tree)
    outside = tree / "outside"
    outside.mkdir()
    (out / "evil").symlink_to(outside / "target")
    (out / "evil-dir").symlink_to(outside)
    before = sorted(os.listdir(tree))
    server, port = start_server(group, out, ["--force"] if force else [])
    for i, (what, raw) in enumerate(HOSTILE.items()):
        with RawPeer(port, isn=5000 + i) as peer:
            rst = peer.refused(raw)
            assert b"name refused" in bytes(rst.payload), (what, bytes(rst.payload))
    server.signal(signal.SIGTERM)
    assert server.wait(30) == 143, server.describe()
    assert sorted(os.listdir(out)) == ["evil", "evil-dir"]
    assert os.listdir(outside) == []
    assert sorted(os.listdir(tree)) == before
    assert server.stderr.count("refused 127.0.0.1 port") == len(HOSTILE)


def test_ipv6_handshake_and_refusal(tmp_path, group):
    """ACK_ADDRESS ::1: the server listens on IPv6; a connection opens, and a
    bad name is refused, both answered at the peer's TCP source port."""
    try:
        probe = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        probe.bind(("::1", 0))
        probe.close()
    except OSError:
        pytest.skip("no IPv6 loopback here")
    out = _outdir(tmp_path)
    server, port = start_server(group, out, host="::1")
    with RawPeer(port, host="::1") as ok, RawPeer(port, isn=9, host="::1") as bad:
        ok.connect(b"six.bin")
        assert b"name refused" in bytes(bad.refused(b"../six").payload)
    server.signal(signal.SIGTERM)
    assert server.wait(30) == 143, server.describe()
    assert "refused ::1 port" in server.stderr and os.listdir(out) == []


def test_existing_and_in_use_names_refused_unless_force(tmp_path, group):
    out = _outdir(tmp_path)
    (out / "exists.txt").write_bytes(b"old")
    server, port = start_server(group, out)
    with RawPeer(port) as p1, RawPeer(port, isn=77) as p2, RawPeer(port, isn=99) as p3:
        assert b"exists" in bytes(p1.refused(b"exists.txt").payload)
        p2.connect(b"taken.txt")  # live: its name is claimed
        assert b"another connection" in bytes(p3.refused(b"taken.txt").payload)
    server.signal(signal.SIGTERM)
    assert server.wait(30) == 143
    assert (out / "exists.txt").read_bytes() == b"old"
    assert sorted(os.listdir(out)) == ["exists.txt"]  # no taken.txt, no .part

    new = make_file(tmp_path / "exists.txt", 50_000, seed=3)
    forced, port = start_server(group, out, ["--force", "--count", "1"], name="serve-force")
    s = start_sender(group, "send", new, port)
    assert s.wait(60) == 0, s.describe()
    assert forced.wait(30) == 0, forced.describe()
    assert (out / "exists.txt").read_bytes() == new.read_bytes()


def test_a_file_over_max_size_refused_at_the_syn(tmp_path, group):
    out = _outdir(tmp_path)
    f = make_file(tmp_path / "big.bin", 5000)
    server, port = start_server(group, out, ["--max-size", "1000"])
    s = start_sender(group, "send", f, port)
    assert s.wait(30) == 1, s.describe()
    assert "larger than this receiver accepts" in s.stderr
    server.signal(signal.SIGTERM)
    assert server.wait(30) == 143
    assert os.listdir(out) == []
    assert "refused 127.0.0.1 port" in server.stderr


def test_max_conns_exceeded_sender_says_receiver_busy(tmp_path, group):
    out = _outdir(tmp_path)
    f = make_file(tmp_path / "late.bin", 10_000)
    server, port = start_server(group, out, ["--max-conns", "1"])
    with RawPeer(port) as holder:
        holder.connect(b"first.bin")
        holder.data(0, b"x" * 100)
        s = start_sender(group, "send", f, port)
        assert s.wait(30) == 1, s.describe()
        lines = [ln for ln in s.stderr.splitlines() if "receiver busy" in ln]
        assert len(lines) == 1, s.stderr
        assert "Traceback" not in s.stderr
        server.signal(signal.SIGTERM)
        assert server.wait(30) == 143, server.describe()
        # the live connection was reset
        seg = holder.recv(5.0)
        while seg is not None and not seg.flags & RST:
            seg = holder.recv(5.0)
        assert seg is not None, "the live connection got no RST"
    assert os.listdir(out) == []  # first.bin's .part removed, late.bin never created
    assert "receiver busy" in server.stderr


def test_oneshot_receiver_refuses_a_second_sender(tmp_path, group):
    f = make_file(tmp_path / "second.bin", 10_000)
    with RawPeer(0) as holder:
        recv, port = start_oneshot(group, tmp_path / "first.out", holder.port)
        holder.server = ("127.0.0.1", port)
        holder.connect(None)
        s = start_sender(group, "send", f, port)
        assert s.wait(30) == 1, s.describe()
        assert len([ln for ln in s.stderr.splitlines() if "receiver busy" in ln]) == 1
    recv.signal(signal.SIGTERM)
    recv.wait(30)
    assert not (tmp_path / "first.out").exists()


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)],
                         ids=["SIGTERM", "SIGINT"])
def test_signal_resets_live_connections_and_removes_parts(tmp_path, group, sig, code):
    out = _outdir(tmp_path)
    f = make_file(tmp_path / "slow.bin", 2_000_000)
    server, port = start_server(group, out, ["--write-delay", "0.005", "--buffer", "64K"])
    s = start_sender(group, "send", f, port)
    deadline = time.monotonic() + 30
    while not parts(out) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert parts(out), server.describe()
    server.signal(sig)
    assert server.wait(30) == code, server.describe()
    assert os.listdir(out) == []
    assert s.wait(60) == 1, s.describe()
    assert "reset" in s.stderr
    assert "FAILED" in server.stdout  # the table lists the interrupted transfer
