"""The sender and receiver programs, spawned for real on 127.0.0.1 (issue 4)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import threading
import time

import pytest
from support import HOST, PY, ROOT, free_udp_port, make_file

pytestmark = pytest.mark.timeout(180)


def _ok(link, sender, receiver, src, dst):
    assert sender.popen.returncode == 0, link.describe()
    assert receiver.popen.returncode == 0, link.describe()
    assert dst.read_bytes() == src.read_bytes()
    assert not dst.with_name(dst.name + ".part").exists()


@pytest.mark.parametrize("size", [0, 1, 1452 * 3, 1452 * 3 + 7, 300_001])
@pytest.mark.parametrize("mode", ["sr", "gbn"])
def test_direct_transfer_sizes(link, tmp_path, size, mode):
    src = make_file(tmp_path / "in.bin", size, seed=size)
    dst = tmp_path / "out.bin"
    s, r = link.transfer(src, dst, sender_args=["--mode", mode],
                         receiver_args=["--mode", mode])
    _ok(link, s, r, src, dst)
    assert "delivered and verified" in s.stdout
    assert "complete and verified" in r.stdout


@pytest.mark.parametrize("smode,rmode", [("sr", "gbn"), ("gbn", "sr")])
def test_modes_interoperate(link, tmp_path, smode, rmode):
    src = make_file(tmp_path / "in.bin", 400_000)
    dst = tmp_path / "out.bin"
    s, r = link.transfer(src, dst, data_link=["-L", "5", "--seed", "3"],
                         sender_args=["--mode", smode], receiver_args=["--mode", rmode])
    _ok(link, s, r, src, dst)


@pytest.mark.parametrize("mode", ["sr", "gbn"])
def test_impaired_both_paths(link, tmp_path, mode):
    """Every impairment on both paths.  Go-Back-N gets a 16 KiB window: with
    64 KiB nearly every window holds a loss or a reordering, every segment is
    then resent, Karn's rule leaves no RTT sample and the RTO stays backed
    off, which makes the run slow (though it still delivers)."""
    src = make_file(tmp_path / "in.bin", 600_000)
    dst = tmp_path / "out.bin"
    s, r = link.transfer(
        src, dst, window="64K" if mode == "sr" else "16K",
        data_link=["-L", "5", "-C", "10", "-O", "3", "-D", "3", "-d", "0.005", "--seed", "7"],
        ack_link=["-L", "5", "-C", "10", "-O", "3", "-D", "3", "-d", "0.005", "--seed", "8"],
        sender_args=["--mode", mode], receiver_args=["--mode", mode])
    _ok(link, s, r, src, dst)
    stats_text = (tmp_path / "emu-data.stats.json").read_text()
    assert '"corrupted": 0' not in stats_text  # the link really did damage datagrams


# Each of the handshake's and teardown's segments lost once, by the emulator's
# drop list: data path datagrams are SYN, ACK, data..., FIN, last ACK;
# ACK path datagrams are SYN-ACK, ACKs..., FIN.
@pytest.mark.parametrize("where,drop", [
    ("data", "1"),   # the first SYN
    ("ack", "1"),    # the SYN-ACK
    ("data", "2"),   # the third ACK of the handshake
])
def test_handshake_segment_lost(link, tmp_path, where, drop):
    src = make_file(tmp_path / "in.bin", 50_000)
    dst = tmp_path / "out.bin"
    kw = {"data_link": [], "ack_link": []}
    kw[f"{where}_link"] = ["--drop", drop]
    s, r = link.transfer(src, dst, sender_args=["--min-rto", "0.2"], **kw)
    _ok(link, s, r, src, dst)
    assert "timeout 1" in s.stdout or where == "data" and drop == "2", s.stdout
    # a SYN or SYN-ACK lost: the SYN went twice, after the initial RTO (1 s)
    resent = drop == "1"
    assert ("(2 SYNs: 1 resent)" if resent else "(1 SYN)") in s.stdout, s.stdout
    took = float(re.search(r"^\s+handshake\s+([0-9.]+) ms", s.stdout, re.M).group(1))
    assert (took >= 1000) == resent, s.stdout


def _count_data_datagrams(size, mss=1452):
    return -(-size // mss)


def test_last_data_segment_lost(link, tmp_path):
    size = 1452 * 5 + 100
    src = make_file(tmp_path / "in.bin", size)
    dst = tmp_path / "out.bin"
    last = 2 + _count_data_datagrams(size)  # SYN, ACK, then the data segments
    s, r = link.transfer(src, dst, data_link=["--drop", str(last)], ack_link=[])
    _ok(link, s, r, src, dst)
    resent = [ln for ln in s.stdout.splitlines() if ln.strip().startswith("retransmissions")]
    assert resent and int(resent[0].split()[1]) >= 1, s.stdout  # the lost one went again


def test_fin_lost(link, tmp_path):
    size = 1452 * 2
    src = make_file(tmp_path / "in.bin", size)
    dst = tmp_path / "out.bin"
    fin = 2 + _count_data_datagrams(size) + 1
    s, r = link.transfer(src, dst, data_link=["--drop", str(fin)], ack_link=[])
    _ok(link, s, r, src, dst)


def test_final_ack_lost(link, tmp_path):
    """The sender's ACK of the receiver's FIN is lost: the receiver resends its
    FIN, the sender (in TIME-WAIT) acknowledges it again."""
    size = 1452 * 2
    src = make_file(tmp_path / "in.bin", size)
    dst = tmp_path / "out.bin"
    final = 2 + _count_data_datagrams(size) + 2
    s, r = link.transfer(src, dst, data_link=["--drop", str(final)], ack_link=[],
                         sender_args=["--time-wait", "3"])
    _ok(link, s, r, src, dst)


@pytest.mark.parametrize("isn", [2**32 - 1, 2**32 - 700])
def test_isn_just_below_wrap(link, tmp_path, isn):
    src = make_file(tmp_path / "in.bin", 200_000)
    dst = tmp_path / "out.bin"
    s, r = link.transfer(src, dst, data_link=["-L", "5", "--seed", "1"],
                         sender_args=["--test-isn", str(isn)],
                         receiver_args=["--test-isn", str(isn - 5)])
    _ok(link, s, r, src, dst)


def test_zero_window_with_slow_writer(link, tmp_path):
    src = make_file(tmp_path / "in.bin", 120_000)
    dst = tmp_path / "out.bin"
    # room for eight segments exactly: 1000 - 12 bytes each beside the RFC
    # 7323 timestamps, so that the window does close
    s, r = link.transfer(src, dst, window="64K",
                         receiver_args=["--buffer", "7904", "--test-write-delay", "0.01",
                                        "--mss", "1000"])
    _ok(link, s, r, src, dst)
    zero = [ln for ln in r.stdout.splitlines() if "zero windows advertised" in ln]
    assert zero and int(zero[0].split()[-1]) > 0, r.stdout


def test_a_smaller_peer_mss_cuts_what_was_read_during_the_handshake(link, tmp_path):
    """The sender reads ahead in its own MSS while the handshake is under way;
    the receiver's SYN-ACK announces a smaller one, and no segment may be
    larger than that, the first read's included."""
    src = make_file(tmp_path / "in.bin", 600_000)  # the first read ahead and more
    dst = tmp_path / "out.bin"
    trace = tmp_path / "sender.trace"
    s, r = link.transfer(src, dst, sender_args=["--trace", str(trace)],
                         receiver_args=["--mss", "600"])
    _ok(link, s, r, src, dst)
    sizes = [e["len"] for e in map(json.loads, trace.read_text().splitlines())
             if e["ev"] == "send" and e.get("len")]
    # (600 less the 12 bytes of the RFC 7323 timestamps each segment carries)
    assert max(sizes) == 600 - 12 and sum(sizes) >= 600_000


def test_a_pipe_of_unknown_size_is_sent_whole(link, tmp_path):
    """A FIFO has no size to announce: the sender reads it to its end (and,
    unlike a file, only once the handshake is over), and the receiver
    verifies what came against the digest in the FIN."""
    data = make_file(tmp_path / "data.bin", 400_000, seed=7).read_bytes()
    fifo = tmp_path / "in.fifo"
    os.mkfifo(fifo)

    def feed():
        with open(fifo, "wb") as f:  # waits for the sender to open it
            for i in range(0, len(data), 50_000):
                f.write(data[i:i + 50_000])

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    dst = tmp_path / "out.bin"
    s, r = link.transfer(fifo, dst)
    writer.join(10)
    assert s.popen.returncode == 0 and r.popen.returncode == 0, link.describe()
    assert dst.read_bytes() == data


def test_summaries_and_log_file(link, tmp_path):
    src = make_file(tmp_path / "in.bin", 100_000)
    dst = tmp_path / "out.bin"
    log = tmp_path / "sender.log"
    s, r = link.transfer(src, dst, data_link=["-L", "10", "--seed", "2"],
                         sender_args=["--log-level", "DEBUG", "--log-file", str(log)])
    _ok(link, s, r, src, dst)
    for key in ("goodput", "retransmissions", "duplicate ACKs", "RTT min/avg/max",
                "final RTO", "segments sent", "segments received"):
        assert key in s.stdout
    for key in ("out of order", "duplicates", "checksum failures", "bytes written"):
        assert key in r.stdout
    text = log.read_text()
    assert "seq=" in text and "srtt=" in text and "rto=" in text
    assert "ESTABLISHED" in text


# ------------------------------------------------------------------ failures
def _run(args, timeout=30, **kw):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([PY, "-m", *args], capture_output=True, text=True, timeout=timeout,
                          env=env, **kw)


@pytest.mark.parametrize("argv,needle", [
    (["sender", "/nonexistent/file", HOST, "5000", "64K", "0"], "cannot read"),
    (["sender", "{src}", HOST, "99999", "64K", "0"], "outside 0..65535"),
    (["sender", "{src}", HOST, "5000", "100", "0"], "at least one MSS"),
    (["sender", "{src}", "no.such.host.invalid", "5000", "64K", "0"], "cannot resolve"),
    (["sender", "{src}", HOST, "5000", "64K"], "required"),
    (["sender", "{src}", HOST, "5000", "64K", "0", "--pacing", "-1"], "must be 0 or a positive"),
    (["receiver", "{src}", "0", HOST, "5000"], "exists; use --force"),
    (["receiver", "/nonexistent/dir/out", "0", HOST, "5000"], "does not exist"),
    (["receiver", "{dst}", "0", HOST, "0"], "ACK_PORT"),
    (["sender", "{src}", HOST, "5000", "64K", "0", "--cpu", "-1"], "must not be negative"),
    (["receiver", "{dst}", "0", HOST, "5000", "--cpu", "100000"], "may run on CPU"),
])
def test_bad_usage_exits_2(tmp_path, argv, needle):
    src = make_file(tmp_path / "in.bin", 10)
    argv = [a.format(src=src, dst=tmp_path / "out.bin") for a in argv]
    res = _run(argv)
    assert res.returncode == 2, res.stderr
    assert needle in res.stderr
    assert "Traceback" not in res.stderr


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="no CPU affinity here")
def test_cpu_keeps_every_thread_on_one_cpu(link, tmp_path):
    cpus = sorted(os.sched_getaffinity(0))
    rcpu, scpu = cpus[0], cpus[-1]
    src = make_file(tmp_path / "in.bin", 2_000_000)
    dst = tmp_path / "out.bin"
    ack_port = free_udp_port()
    receiver, port = link.receiver(dst, ack_port, ["--cpu", str(rcpu)])
    sender = link.sender(src, port, "256K", ack_port, ["--cpu", str(scpu)])
    seen: dict[str, set] = {}  # each thread's CPUs when last seen (the pin comes after imports)
    deadline = time.monotonic() + 60
    while sender.popen.poll() is None and time.monotonic() < deadline:
        for proc in (receiver, sender):
            try:
                for tid in os.listdir(f"/proc/{proc.popen.pid}/task"):
                    seen[f"{proc.name}/{tid}"] = os.sched_getaffinity(int(tid))
            except (FileNotFoundError, ProcessLookupError):
                pass  # a thread (or the process) ended meanwhile
        time.sleep(0.005)
    sender.wait(60)
    receiver.wait(60)
    _ok(link, sender, receiver, src, dst)
    # the main thread and the worker threads of both (3 + 4 when all were seen)
    assert sum(name.startswith("receiver/") for name in seen) >= 2
    assert sum(name.startswith("sender/") for name in seen) >= 2
    for name, mask in seen.items():
        assert mask == ({rcpu} if name.startswith("receiver/") else {scpu}), name


def test_port_in_use_exits_2(tmp_path):
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("0.0.0.0", 0))
        port = s.getsockname()[1]
        res = _run(["receiver", str(tmp_path / "out.bin"), str(port), HOST, "5000"])
    assert res.returncode == 2
    assert "cannot bind" in res.stderr


@pytest.mark.parametrize("gain", ["0", "4"])
def test_pacing_gain(link, tmp_path, gain):
    """--pacing 0 (each window at once) and another gain: both deliver
    through a lossy, delaying link."""
    src = make_file(tmp_path / "in.bin", 400_000)
    dst = tmp_path / "out.bin"
    s, r = link.transfer(src, dst, sender_args=["--pacing", gain],
                         data_link=["-d", "0.005", "-L", "5", "--seed", "3"])
    _ok(link, s, r, src, dst)


def test_force_overwrites(link, tmp_path):
    src = make_file(tmp_path / "in.bin", 5000)
    dst = tmp_path / "out.bin"
    dst.write_bytes(b"old")
    s, r = link.transfer(src, dst, receiver_args=["--force"])
    _ok(link, s, r, src, dst)


def test_no_receiver_sender_gives_up(tmp_path):
    src = make_file(tmp_path / "in.bin", 5000)
    port = free_udp_port()
    res = _run(["sender", str(src), HOST, str(port), "64K", "0", "--retries", "2",
                "--min-rto", "0.05", "--no-progress"], timeout=60)
    assert res.returncode == 1
    assert "no answer to 3 SYNs" in res.stderr


def test_sender_killed_receiver_times_out(link, tmp_path):
    src = make_file(tmp_path / "in.bin", 3_000_000)
    dst = tmp_path / "out.bin"
    ack_port = free_udp_port()
    r, rport = link.receiver(dst, ack_port, ["--give-up", "2"])
    _, eport = link.emulator("emu-data", rport, ["-s", "2000"])  # slow: 250 kB/s
    s = link.sender(src, eport, "64K", ack_port)
    time.sleep(1.0)
    os.killpg(s.popen.pid, signal.SIGKILL)
    s.popen.wait(10)
    assert r.wait(30) == 1, link.describe()
    assert "nothing heard from the sender" in r.stderr
    assert not dst.exists()
    assert not (tmp_path / "out.bin.part").exists()


def test_receiver_killed_sender_exits_1(link, tmp_path):
    src = make_file(tmp_path / "in.bin", 3_000_000)
    dst = tmp_path / "out.bin"
    ack_port = free_udp_port()
    r, rport = link.receiver(dst, ack_port)
    _, eport = link.emulator("emu-data", rport, ["-s", "2000"])
    s = link.sender(src, eport, "64K", ack_port, ["--give-up", "3"])
    time.sleep(1.0)
    os.killpg(r.popen.pid, signal.SIGKILL)
    r.popen.wait(10)
    assert s.wait(60) == 1, link.describe()
    assert "transfer failed" in s.stderr


@pytest.mark.parametrize("victim", ["sender", "receiver"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_resets_peer(link, tmp_path, victim, sig):
    src = make_file(tmp_path / "in.bin", 3_000_000)
    dst = tmp_path / "out.bin"
    ack_port = free_udp_port()
    r, rport = link.receiver(dst, ack_port)
    _, eport = link.emulator("emu-data", rport, ["-s", "2000"])
    s = link.sender(src, eport, "64K", ack_port)
    time.sleep(1.0)
    target, other = (s, r) if victim == "sender" else (r, s)
    target.popen.send_signal(sig)
    assert target.wait(20) == 128 + sig, link.describe()  # 130 SIGINT, 143 SIGTERM
    assert other.wait(40) == 1, link.describe()
    assert "reset the connection" in other.stderr, link.describe()
    assert not dst.exists()
    assert not (tmp_path / "out.bin.part").exists()


def test_digest_checked_end_to_end(link, tmp_path):
    """The receiver hashes what it wrote: the summary's digest is the file's."""
    src = make_file(tmp_path / "in.bin", 77_777)
    dst = tmp_path / "out.bin"
    s, r = link.transfer(src, dst)
    _ok(link, s, r, src, dst)
    assert hashlib.sha256(src.read_bytes()).hexdigest() in r.stderr
