"""Links and processes that fail (issue 8).

The emulator dies mid-transfer, a program is killed or interrupted, the
disk fills up (the receiver's test hook, and a real tmpfs when we are root);
and a stress run of many lossy transfers with a slow writer.  Every program
runs with faulthandler on (the ``hlink`` fixture): one that hangs gets
SIGABRT and its thread stacks land in the failure report.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import time

import pytest
from hostile_support import (
    abort_for_stacks,
    lingering,
    mounted_tmpfs,
    wait_exit,
    wait_for_text,
    watched_link,
)
from support import free_udp_port, make_file

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def hlink(tmp_path, monkeypatch):
    """support.Link, watched for hangs (hostile_support.watched_link)."""
    yield from watched_link(tmp_path, monkeypatch)


ESTABLISHED = "-> ESTABLISHED"


def _slow_transfer(link, tmp_path, size=3_000_000, rate="2000", sargs=(), rargs=(),
                   dst=None):
    """Receiver, a rate-limited data-path emulator and a sender, established."""
    src = make_file(tmp_path / "in.bin", size, seed=size)
    dst = dst or tmp_path / "out.bin"
    ack_port = free_udp_port()
    r, rport = link.receiver(dst, ack_port, list(rargs))
    emu, eport = link.emulator("emu-data", rport, ["-s", rate])
    s = link.sender(src, eport, "64K", ack_port, list(sargs))
    assert wait_for_text(r, ESTABLISHED, 30), link.describe()
    assert wait_for_text(s, ESTABLISHED, 30), link.describe()
    return src, dst, s, r, emu


def _no_output(dst):
    assert not dst.exists(), "a complete-looking FILE was left"
    assert not dst.with_name(dst.name + ".part").exists(), "FILE.part was left"


def _gone(proc):
    """The process exited, was reaped, and left nothing of its own behind."""
    assert proc.popen.returncode is not None
    assert not os.path.exists(f"/proc/{proc.popen.pid}/status") or \
        "State:\tZ" in open(f"/proc/{proc.popen.pid}/status").read()
    assert lingering(proc.popen.pid) == [], f"{proc.name} left processes behind"


# =================================================================== the link


def test_emulator_killed_mid_transfer(hlink, tmp_path):
    """The data-path emulator dies: the sender hears nothing more and gives
    up (exit 1, one clear line); the receiver times out (exit 1) and removes
    FILE.part; no FILE."""
    src, dst, s, r, emu = _slow_transfer(
        hlink, tmp_path, sargs=["--give-up", "3"], rargs=["--give-up", "3"])
    time.sleep(0.5)
    os.killpg(emu.popen.pid, signal.SIGKILL)
    emu.popen.wait(10)
    assert wait_exit(s, 60, hlink) == 1, hlink.describe()
    assert wait_exit(r, 60, hlink) == 1, hlink.describe()
    assert re.search(r"transfer failed: (nothing heard from the receiver for 3 s|.*"
                     r"retransmitted \d+ times without an acknowledgment)", s.stderr), s.stderr
    assert "transfer failed: nothing heard from the sender for 3 s" in r.stderr, r.stderr
    assert "Traceback" not in s.stderr + r.stderr
    _no_output(dst)


def test_receiver_killed_while_the_window_is_shut(hlink, tmp_path):
    """Extends test_programs' receiver-killed case: here the receiver dies
    while its slow disk keeps the window shut, so the sender is probing a
    zero window (persist timer) rather than retransmitting; it must still
    give up, exit 1, and say why."""
    src, dst, s, r, emu = _slow_transfer(
        hlink, tmp_path, size=2_000_000, rate="20000", sargs=["--give-up", "3"],
        rargs=["--buffer", "8000", "--mss", "1000", "--test-write-delay", "0.05"])
    time.sleep(1.5)
    os.killpg(r.popen.pid, signal.SIGKILL)
    r.popen.wait(10)
    assert wait_exit(s, 60, hlink) == 1, hlink.describe()
    assert re.search(r"transfer failed: (nothing heard from the receiver|.*retransmitted)",
                     s.stderr), s.stderr
    assert not dst.exists()


def test_sender_killed_keep_partial(hlink, tmp_path):
    """Extends test_programs' sender-killed case: with --keep-partial the
    receiver times out and keeps FILE.part, which holds a prefix of the file
    (nothing corrupt), and no FILE."""
    src, dst, s, r, emu = _slow_transfer(
        hlink, tmp_path, rargs=["--give-up", "2", "--keep-partial"])
    time.sleep(1.0)
    os.killpg(s.popen.pid, signal.SIGKILL)
    s.popen.wait(10)
    assert wait_exit(r, 60, hlink) == 1, hlink.describe()
    assert "nothing heard from the sender" in r.stderr
    assert not dst.exists()
    part = dst.with_name(dst.name + ".part")
    assert part.exists(), "--keep-partial did not keep FILE.part"
    got = part.read_bytes()
    assert 0 < len(got) < len(src.read_bytes())
    assert got == src.read_bytes()[:len(got)], "FILE.part is not a prefix of the file"


# =================================================================== disk full


def _disk_full_outcome(link, s, r, dst):
    assert wait_exit(r, 60, link) == 1, link.describe()
    assert wait_exit(s, 60, link) == 1, link.describe()
    assert re.search(r"cannot write .*out\.bin\.part: No space left on device", r.stderr), \
        link.describe()
    # the receiver's RST carries the reason to the sender
    assert "the receiver reset the connection: cannot write" in s.stderr, link.describe()
    _no_output(dst)
    assert "Traceback" not in r.stderr + s.stderr, link.describe()


def test_disk_full_hook(hlink, tmp_path):
    src, dst, s, r, emu = _slow_transfer(
        hlink, tmp_path, size=1_000_000, rate="8000",
        rargs=["--test-fail-write-after", "300000"])
    _disk_full_outcome(hlink, s, r, dst)


@pytest.fixture
def tmpfs_4m(tmp_path):
    """A real 4 MiB tmpfs (root only), unmounted at the end."""
    with mounted_tmpfs(tmp_path, "4m") as mnt:
        yield mnt


def test_disk_full_real_tmpfs(hlink, tmp_path, tmpfs_4m):
    """A 3 MB file into a 4 MiB tmpfs: accepted at the SYN (it fits), then
    another writer takes 2.5 MiB of the space, and the receiver's writes
    fail with ENOSPC: RST, both exit 1, nothing left."""
    dst = tmpfs_4m / "out.bin"
    src, dst, s, r, emu = _slow_transfer(hlink, tmp_path, size=3_000_000, rate="4000",
                                         dst=dst)
    with open(tmpfs_4m / "filler", "wb") as f:
        f.write(bytes(5 << 19))
    _disk_full_outcome(hlink, s, r, dst)


# ==================================================================== signals


@pytest.mark.parametrize("victim,sig,slow_disk", [
    ("sender", signal.SIGTERM, False),
    ("receiver", signal.SIGINT, False),
    ("sender", signal.SIGINT, True),
    ("sender", signal.SIGTERM, True),
    ("receiver", signal.SIGINT, True),
    ("receiver", signal.SIGTERM, True),
])
def test_interrupted_program_resets_peer_and_really_exits(hlink, tmp_path, victim, sig,
                                                          slow_disk):
    """SIGINT/SIGTERM mid-transfer (also while a slow disk holds the writer
    and shuts the window): exit 130 (SIGINT) or 143 (SIGTERM), an RST to the
    peer (which exits 1),
    and the process is gone with nothing of it left running."""
    rargs = ["--buffer", "16000", "--mss", "1000", "--test-write-delay", "0.05"] \
        if slow_disk else []
    src, dst, s, r, emu = _slow_transfer(hlink, tmp_path, rargs=rargs)
    time.sleep(1.0)
    target, other = (s, r) if victim == "sender" else (r, s)
    target.popen.send_signal(sig)
    assert wait_exit(target, 20, hlink) == 128 + sig, hlink.describe()
    assert wait_exit(other, 40, hlink) == 1, hlink.describe()
    assert "reset the connection" in other.stderr, hlink.describe()
    assert f"interrupted by {sig.name}" in target.stderr, target.stderr
    _gone(target)
    _gone(other)
    _no_output(dst)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_before_any_peer(hlink, tmp_path, sig):
    """A receiver still listening and a sender still sending SYNs into the
    void: interrupted, each exits 128 + the signal's number at once and
    leaves nothing behind."""
    dst = tmp_path / "out.bin"
    r, _ = hlink.receiver(dst, free_udp_port())
    src = make_file(tmp_path / "in.bin", 1000)
    s = hlink.sender(src, free_udp_port(), "64K", free_udp_port())
    assert wait_for_text(r, "listening on", 20)
    assert wait_for_text(s, "SYN_SENT", 20)
    for p in (r, s):
        p.popen.send_signal(sig)
    for p in (r, s):
        assert wait_exit(p, 20, hlink) == 128 + sig, hlink.describe()
        _gone(p)
    _no_output(dst)


# =================================================================== watchdog

HANG = '''
import threading
lock = threading.Lock()
def stuck_worker():
    with lock:
        threading.Event().wait()
t = threading.Thread(target=stuck_worker, name="stuck")
t.start()
print("started", flush=True)
t.join()
'''


def test_watchdog_dumps_a_hung_child_s_threads(hlink, tmp_path):
    """The watchdog itself: a child that never exits is reported with every
    thread's stack (faulthandler on SIGABRT), not just killed."""
    (tmp_path / "hang_demo.py").write_text(HANG)
    p = hlink.spawn("hang", "hang_demo", [])
    deadline = time.monotonic() + 20
    while "started" not in p.stdout and time.monotonic() < deadline:
        time.sleep(0.05)
    with pytest.raises(AssertionError) as info:
        wait_exit(p, 0.5)
    text = str(info.value)
    assert "still running" in text
    assert "stuck_worker" in text and "Thread 0x" in text, text


# ===================================================================== stress


def _stress(link_factory, tmp_path, count: int):
    """``count`` transfers of 30 kB: 30% loss on the data path, 10% on the
    ACK path, a slow writer behind an 8000-byte buffer (zero windows); the
    two modes in turn, seeds fixed so a failure reproduces."""
    for i in range(count):
        d = tmp_path / f"t{i}"
        d.mkdir()
        src = make_file(d / "in.bin", 30_000, seed=i)
        dst = d / "out.bin"
        mode = ("sr", "gbn")[i % 2]
        with link_factory(d) as lk:
            s, r = lk.transfer(
                src, dst, window="16K", timeout=120,
                data_link=["-L", "30", "--seed", str(i)],
                ack_link=["-L", "10", "--seed", str(10_000 + i)],
                # TIME-WAIT outlasts the receiver's first FIN resends: 2 x RTO (the
                # default) can end before the receiver's first FIN timer fires, and a
                # lost last ACK then holds the receiver for its whole give-up time
                sender_args=["--mode", mode, "--mss", "1000", "--min-rto", "0.05",
                             "--max-rto", "1", "--time-wait", "0.5"],
                receiver_args=["--mode", mode, "--mss", "1000", "--buffer", "8000",
                               "--test-write-delay", "0.002", "--min-rto", "0.05"])
            assert s.popen.returncode == 0 and r.popen.returncode == 0, \
                f"transfer {i} ({mode}):\n" + lk.describe()
            assert dst.read_bytes() == src.read_bytes(), f"transfer {i} ({mode})"


class _FaultLink:
    """support.Link with faulthandler on in the children, and SIGABRT (thread
    stacks into .err) for any child still running at the end."""

    def __init__(self, workdir):
        from support import Link

        self.link = Link(workdir)

    def __enter__(self):
        return self.link  # the test sets PYTHONFAULTHANDLER=1 (monkeypatch)

    def __exit__(self, *exc):
        for p in self.link.procs:
            if p.popen.poll() is None and not p.name.startswith("emu"):
                print(f"--- {p.name} hung:\n{abort_for_stacks(p, 3.0)}", file=sys.stderr)
        self.link.stop_all()


@pytest.mark.timeout(240)
def test_stress_sample(tmp_path, monkeypatch):
    """The default suite's sample of the soak run below: 5 transfers."""
    monkeypatch.setenv("PYTHONFAULTHANDLER", "1")
    _stress(_FaultLink, tmp_path, 5)


@pytest.mark.soak
@pytest.mark.timeout(3600)
@pytest.mark.skipif(os.environ.get("STRESS") != "1", reason="set STRESS=1 for the soak run")
def test_stress_soak(tmp_path, monkeypatch):
    """100 transfers, as test_stress_sample (STRESS=1 to run)."""
    monkeypatch.setenv("PYTHONFAULTHANDLER", "1")
    _stress(_FaultLink, tmp_path, 100)
