"""Resume with the real programs (docs/PROTOCOL.md §9, "Resume"): a transfer
through a slow emulated link whose sender is killed (SIGKILL) at about 30,
60 and 99 % of the file leaves FILE.part behind a receiver run with
--resume, which gives up; run again with --resume at both ends, only the
rest is sent and the file is byte-identical.  A changed source is sent
whole, still identical; a sender without --resume is answered 0."""

from __future__ import annotations

import os
import re
import signal
import time

import pytest
from support import free_udp_port, make_file

pytestmark = pytest.mark.timeout(120)

SIZE = 2_000_000


def _interrupted(link, tmp_path, fraction: float, victim: str = "sender"):
    """The first transfer, its sender (or the link: ``victim`` "link") killed
    once the receiver has written ``fraction`` of the file: returns
    (source, destination, bytes held).  (At 99 % the sender, 4 KB ahead at
    most, still has 16 KB to send: the link runs at 250 kB/s then, which
    gives the poll 64 ms to see it, twice what 500 kB/s gives.)"""
    src = make_file(tmp_path / "in.bin", SIZE, seed=7)
    dst = tmp_path / "out.bin"
    part = tmp_path / "out.bin.part"
    ack_port = free_udp_port()
    r, rport = link.receiver(dst, ack_port, ["--give-up", "1", "--resume"])
    rate = "2000" if fraction > 0.9 else "4000"  # kbit/s: 250 or 500 kB/s
    emu, eport = link.emulator("emu-data", rport, ["-s", rate])
    s = link.sender(src, eport, "4K", ack_port, ["--give-up", "2"])
    target = int(SIZE * fraction)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and s.poll() is None:
        if part.exists() and part.stat().st_size >= target:
            break
        time.sleep(0.002)
    assert s.poll() is None, "the sender ended before it could be killed\n" + link.describe()
    if victim == "sender":
        os.killpg(s.popen.pid, signal.SIGKILL)
        s.popen.wait(10)
    else:  # the link is gone: both ends give up
        os.killpg(emu.popen.pid, signal.SIGKILL)
        emu.popen.wait(10)
        assert s.wait(30) == 1, link.describe()
    assert r.wait(30) == 1, link.describe()
    assert "nothing heard from the sender" in r.stderr, link.describe()
    assert not dst.exists()
    held = part.stat().st_size
    assert 0 < held < SIZE
    assert part.read_bytes() == src.read_bytes()[:held]  # written in order
    link.stop_emulators()
    return src, dst, held


def _written(proc) -> int:
    m = re.search(r"bytes written\s*[:|]?\s*(\d+)", proc.stdout)
    assert m, proc.stdout
    return int(m.group(1))


@pytest.mark.parametrize("fraction", [0.3, 0.6, 0.99])
def test_killed_then_resumed(link, tmp_path, fraction):
    src, dst, held = _interrupted(link, tmp_path, fraction)
    assert abs(held - SIZE * fraction) < SIZE * 0.1, held
    s, r = link.transfer(src, dst, sender_args=["--resume"], receiver_args=["--resume"])
    assert s.returncode == 0 and r.returncode == 0, link.describe()
    assert dst.read_bytes() == src.read_bytes()
    assert not (tmp_path / "out.bin.part").exists()
    assert f"resumed at {held} bytes" in s.stdout, s.stdout
    assert f"resumed at {held} bytes" in r.stdout, r.stdout
    assert _written(r) == SIZE - held  # only the rest crossed the link


def test_link_lost_then_resumed(link, tmp_path):
    src, dst, held = _interrupted(link, tmp_path, 0.5, victim="link")
    s, r = link.transfer(src, dst, sender_args=["--resume"], receiver_args=["--resume"])
    assert s.returncode == 0 and r.returncode == 0, link.describe()
    assert dst.read_bytes() == src.read_bytes()
    assert f"resumed at {held} bytes" in s.stdout, s.stdout
    assert _written(r) == SIZE - held


def test_changed_source_sent_whole(link, tmp_path):
    src, dst, held = _interrupted(link, tmp_path, 0.5)
    data = bytearray(src.read_bytes())
    data[held // 2] ^= 0xFF  # the start of the file changed meanwhile
    src.write_bytes(bytes(data))
    s, r = link.transfer(src, dst, sender_args=["--resume"], receiver_args=["--resume"])
    assert s.returncode == 0 and r.returncode == 0, link.describe()
    assert dst.read_bytes() == bytes(data)
    assert "prefix differs: sent whole" in s.stdout, s.stdout
    assert _written(r) == SIZE


def test_sender_without_resume_sends_whole(link, tmp_path):
    src, dst, held = _interrupted(link, tmp_path, 0.4)
    s, r = link.transfer(src, dst, receiver_args=["--resume"])
    assert s.returncode == 0 and r.returncode == 0, link.describe()
    assert dst.read_bytes() == src.read_bytes()
    assert "not taken: written from byte 0" in r.stdout, r.stdout
    assert _written(r) == SIZE


def test_traces_of_a_resumed_run_agree(link, tmp_path):
    """stcp-analyze counts from the resume point, as the programs do: the
    bytes this run carried, and no disagreement with their own counters."""
    src, dst, held = _interrupted(link, tmp_path, 0.5)
    s_trace, r_trace = tmp_path / "s.trace.jsonl", tmp_path / "r.trace.jsonl"
    s, r = link.transfer(src, dst, sender_args=["--resume", "--trace", str(s_trace)],
                         receiver_args=["--resume", "--trace", str(r_trace)])
    assert s.returncode == 0 and r.returncode == 0, link.describe()
    from analysis.derive import derive
    from analysis.load import load_trace
    from analysis.summary import summarize

    for path in (s_trace, r_trace):
        tr = load_trace(path)
        assert tr.meta["resumed_at"] == held
        summary = summarize(tr, derive(tr))
        assert summary["bytes"] == SIZE - held, (path.name, summary)
    assert summarize(load_trace(r_trace))["out_of_order"] == 0


def test_receiver_interrupted_keeps_part_then_resumed(link, tmp_path):
    """SIGTERM to a receiver run with --resume: it resets the sender, exits
    143 and keeps FILE.part (synced); both run again with --resume: only
    the rest is sent."""
    src = make_file(tmp_path / "in.bin", SIZE, seed=3)
    dst = tmp_path / "out.bin"
    part = tmp_path / "out.bin.part"
    ack_port = free_udp_port()
    r, rport = link.receiver(dst, ack_port, ["--resume"])
    _, eport = link.emulator("emu-data", rport, ["-s", "4000"])
    s = link.sender(src, eport, "4K", ack_port)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (part.exists() and part.stat().st_size > SIZE // 3):
        time.sleep(0.01)
    r.popen.send_signal(signal.SIGTERM)
    assert r.wait(20) == 143, link.describe()
    assert s.wait(40) == 1, link.describe()
    assert f"{part} kept" in r.stderr, r.stderr[-2000:]
    held = part.stat().st_size
    assert 0 < held < SIZE and part.read_bytes() == src.read_bytes()[:held]
    link.stop_emulators()
    s, r = link.transfer(src, dst, sender_args=["--resume"], receiver_args=["--resume"])
    assert s.returncode == 0 and r.returncode == 0, link.describe()
    assert dst.read_bytes() == src.read_bytes()
    assert f"resumed at {held} bytes" in s.stdout and _written(r) == SIZE - held


def test_sender_resume_needs_a_regular_file(tmp_path, capsys):
    from sender.__main__ import main

    fifo = tmp_path / "in.fifo"
    os.mkfifo(fifo)
    # (the sender's open for reading would wait for a writer: this is one)
    fd = os.open(fifo, os.O_RDWR)
    try:
        code = main([str(fifo), "127.0.0.1", "9", "10000", "0", "--resume", "--quiet"])
    finally:
        os.close(fd)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and "--resume needs a regular file" in err[0], err


def test_free_space_counts_the_part_held(tmp_path, monkeypatch):
    """The file needs no room for the bytes FILE.part holds already: they
    are kept, or freed when the sender starts over."""
    import socket

    import receiver.app as app

    (tmp_path / "out.bin.part").write_bytes(b"x" * 5000)
    monkeypatch.setattr(app, "free_space", lambda path: 1000)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        for resume, limit in ((True, 6000), (False, 1000)):
            cfg = app.ReceiverConfig(path=str(tmp_path / "out.bin"), listen_port=0,
                                     ack_to=("127.0.0.1", 9), resume=resume)
            rx = app.Receiver(cfg, sock, 1)
            try:
                assert rx.core.size_limit == limit
                assert (rx.core.resume_offer is not None) == resume
            finally:
                rx.shutdown()
