"""run_pair.sh, the README's main command (issue 5): its options, a verified
run, an impaired ACK path, failures that name the side and its log, no
process or port left behind (on success, failure, SIGINT, SIGTERM, --timeout,
a program that cannot start), and exit 2 on bad options.

Every run gets its own --dir under tmp_path; "no process left" means no
process whose command line contains that directory (every program run_pair.sh
starts has it in its arguments).
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from pair_support import RUN_PAIR, no_leftovers, ports_line, quiet_port, run_pair, show
from support import make_file

pytestmark = pytest.mark.timeout(180)


# -------------------------------------------------------------------- --help
OPTIONS = [
    "--input", "--size", "--output", "--window", "--mode", "--mss", "--pacing", "--buffer",
    "--no-timestamps",
    "--give-up",
    "--timeout", "--loss", "--corrupt", "--ber", "--reorder", "--reorder-hold", "--dup",
    "--delay", "--jitter", "--rate", "--queue", "--burst", "--drop", "--blackhole", "--clean",
    "--ack-loss", "--ack-corrupt", "--ack-ber", "--ack-reorder", "--ack-reorder-hold",
    "--ack-dup", "--ack-delay", "--ack-jitter", "--ack-rate", "--ack-queue", "--ack-burst",
    "--ack-drop", "--ack-blackhole", "--seed", "--link-port", "--recv-port", "--ack-port",
    "--dir", "--no-analysis", "--snaplen", "--keep-logs", "--rm-logs", "--verbose", "--dry-run",
    "--help",
]


def test_help_lists_every_option():
    res = run_pair("--help", timeout=30)
    assert res.returncode == 0, show(res)
    for opt in OPTIONS:
        assert opt in res.stdout, f"{opt} missing from --help"
    assert "Exit status" in res.stdout


# ------------------------------------------------- every option reaches its program
def dry(tmp_path, *args) -> dict[str, list[str]]:
    res = run_pair("--dry-run", "--dir", tmp_path / "d", *args, timeout=30)
    assert res.returncode == 0, show(res)
    assert not (tmp_path / "d").exists(), "--dry-run created the run directory"
    cmds = {}
    for line in res.stdout.splitlines():
        if line.startswith("#"):
            continue
        argv = shlex.split(line)
        mod = argv[argv.index("-m") + 1]
        if mod == "emulator":
            mod = "emu-ack" if any("emu-ack.ready" in a for a in argv) else "emu-data"
        cmds[mod] = argv
    return cmds


def has(argv: list[str], *seq: str) -> bool:
    n = len(seq)
    return any(tuple(argv[i:i + n]) == seq for i in range(len(argv) - n + 1))


@pytest.mark.parametrize("args,prog,expect", [
    (["--mode", "gbn"], "sender", ["--mode", "gbn"]),
    (["--mode", "gbn"], "receiver", ["--mode", "gbn"]),
    (["-w", "64K"], "sender", ["65536"]),
    (["--mss", "1000", "-w", "8K"], "receiver", ["--mss", "1000"]),
    (["--mss", "1000", "-w", "8K"], "sender", ["--mss", "1000"]),
    (["--buffer", "1M"], "receiver", ["--buffer", "1048576"]),
    (["--pacing", "0"], "sender", ["--pacing", "0"]),
    (["--pacing", "2.5"], "sender", ["--pacing", "2.5"]),
    (["--no-timestamps"], "sender", ["--no-timestamps"]),
    (["--give-up", "7"], "sender", ["--give-up", "7"]),
    (["--give-up", "7"], "receiver", ["--give-up", "7"]),
    (["--loss", "7"], "emu-data", ["-L", "7"]),
    (["--corrupt", "5"], "emu-data", ["-C", "5"]),  # 5% of datagrams, one bit each
    (["--ber", "3"], "emu-data", ["-B", "3"]),
    (["--reorder", "4"], "emu-data", ["-O", "4"]),
    (["--reorder-hold", "0.2"], "emu-data", ["--reorder-hold", "0.2"]),
    (["--dup", "3"], "emu-data", ["-D", "3"]),
    (["--delay", "0.05"], "emu-data", ["-d", "0.05"]),
    (["--jitter", "0.01"], "emu-data", ["--jitter", "0.01"]),
    (["--rate", "1000"], "emu-data", ["-s", "1000"]),
    (["--queue", "32K"], "emu-data", ["-q", "32768"]),
    (["--burst", "1:30:80:2"], "emu-data",
     ["--ge-p", "1", "--ge-r", "30", "--ge-loss", "80", "--ge-good-loss", "2"]),
    (["--drop", "1,5"], "emu-data", ["--drop", "1,5"]),
    (["--blackhole", "1:2.5"], "emu-data", ["--blackhole", "1:2.5"]),
    (["--ack-loss", "9"], "emu-ack", ["-L", "9"]),
    (["--ack-corrupt", "5"], "emu-ack", ["-C", "5"]),
    (["--ack-ber", "2"], "emu-ack", ["-B", "2"]),
    (["--ack-reorder", "4"], "emu-ack", ["-O", "4"]),
    (["--ack-reorder-hold", "0.3"], "emu-ack", ["--reorder-hold", "0.3"]),
    (["--ack-dup", "3"], "emu-ack", ["-D", "3"]),
    (["--ack-delay", "0.02"], "emu-ack", ["-d", "0.02"]),
    (["--ack-jitter", "0.01"], "emu-ack", ["--jitter", "0.01"]),
    (["--ack-rate", "500"], "emu-ack", ["-s", "500"]),
    (["--ack-queue", "8K"], "emu-ack", ["-q", "8192"]),
    (["--ack-burst", "2:40"], "emu-ack", ["--ge-p", "2", "--ge-r", "40"]),
    (["--ack-drop", "2"], "emu-ack", ["--drop", "2"]),
    (["--ack-blackhole", "0:1"], "emu-ack", ["--blackhole", "0:1"]),
    (["--seed", "42"], "emu-data", ["--seed", "42"]),
    (["--seed", "42", "--ack-loss", "1"], "emu-ack", ["--seed", "43"]),
    (["--link-port", "40001"], "emu-data", ["-p", "40001:0"]),
    (["--link-port", "40001"], "sender", ["127.0.0.1", "40001"]),
    (["--recv-port", "40002", "--ack-port", "40003"], "receiver",
     ["40002", "127.0.0.1", "40003"]),
    (["--ack-port", "40003"], "sender", ["40003"]),
    (["--verbose"], "sender", ["--log-level", "DEBUG"]),
    (["--verbose"], "emu-data", ["-vv"]),
    (["--snaplen", "100"], "sender", ["--snaplen", "100"]),
    (["--snaplen", "100"], "receiver", ["--snaplen", "100"]),
])
def test_option_reaches_program(tmp_path, args, prog, expect):
    cmds = dry(tmp_path, *args)
    assert has(cmds[prog], *expect), f"{args}: {prog} runs {shlex.join(cmds[prog])}"


def test_option_defaults_and_switches(tmp_path):
    cmds = dry(tmp_path)
    assert set(cmds) == {"sender", "receiver", "emu-data"}  # no ACK emulator by default
    for flags in (["-L", "5"], ["-O", "2"], ["-d", "0.010"], ["-C", "1"]):
        assert has(cmds["emu-data"], *flags), flags       # the README's moderate default
    assert has(cmds["sender"], "--trace") and has(cmds["sender"], "--pcap")
    assert "--pacing" not in cmds["sender"]  # the sender's own default
    for prog in ("sender", "receiver"):  # everything stays on 127.0.0.1
        assert has(cmds[prog], "--bind", "127.0.0.1")
    clean = dry(tmp_path, "--clean")["emu-data"]
    assert not {"-L", "-B", "-C", "-O", "-d"} & set(clean), clean
    assert has(dry(tmp_path, "--clean", "--loss", "3")["emu-data"], "-L", "3")
    late = dry(tmp_path, "--rate", "5", "--clean")["emu-data"]  # --clean drops defaults only
    assert has(late, "-s", "5") and "-L" not in late, late
    ber = dry(tmp_path, "--ber", "2")["emu-data"]  # --ber replaces the default --corrupt
    assert has(ber, "-B", "2") and "-C" not in ber, ber
    quiet = dry(tmp_path, "--no-analysis")
    assert not any("--trace" in c or "--pcap" in c for c in quiet.values())
    src = make_file(tmp_path / "mine.bin", 10)
    io = dry(tmp_path, "-i", src, "-o", tmp_path / "got.bin")
    assert str(src) in io["sender"] and str(tmp_path / "got.bin") in io["receiver"]
    d = dry(tmp_path)
    assert all(str(tmp_path / "d") in " ".join(c) for c in d.values())  # --dir


# ----------------------------------------------------------------- real runs
def test_default_run_verifies_and_cleans_up(tmp_path):
    rundir = tmp_path / "run"
    res = run_pair("--size", "300K", "--seed", "11", "--dir", rundir)
    assert res.returncode == 0, show(res)
    out = res.stdout
    assert "VERDICT: OK: 307200 bytes delivered intact" in out, show(res)
    assert "seed 11" in out
    assert "sender summary" in out and "receiver summary" in out
    assert "emu-data: received" in out
    assert (rundir / "received.bin").read_bytes() == (rundir / "sample.bin").read_bytes()
    for f in ("sender.log", "receiver.log", "emu-data.log", "sender.trace.jsonl",
              "sender.pcap", "emu-data.stats.json", "analysis.txt"):
        assert (rundir / f).exists(), f
    assert list((rundir / "plots").glob("*.png")), "no plots"
    page = (rundir / "report.html").read_text()  # the run on one page, by default
    assert "OK: 307200 bytes delivered" in page and f"the run on one page: {rundir}" in out
    assert f"run directory: {rundir} (" in out  # and how big it got
    info = json.loads((rundir / "run.json").read_text())  # for stcp-analyze --html
    assert info["ok"] is True and info["verdict"].startswith("OK: 307200 bytes delivered")
    assert info["command"] == ["./run_pair.sh", "--size", "300K", "--seed", "11", "--dir",
                               str(rundir)]
    ports = ports_line(out)
    no_leftovers(rundir, ports.values())


def test_ack_path_impaired(tmp_path):
    rundir = tmp_path / "run"
    res = run_pair("--size", "200K", "--seed", "12", "--dir", rundir, "--no-analysis",
                   "--ack-loss", "20", "--ack-dup", "5", "--ack-delay", "0.005", "--mode", "gbn",
                   "-w", "64K")
    assert res.returncode == 0, show(res)
    assert "VERDICT: OK" in res.stdout and "ACK path:" in res.stdout
    stats = json.loads((rundir / "emu-ack.stats.json").read_text())
    assert stats["dropped"]["loss"] > 0 and stats["duplicated"] > 0, stats
    assert stats["seed"] == 13  # --seed + 1
    assert "emu-ack: received" in res.stdout
    assert not list(rundir.glob("*.trace.jsonl"))  # --no-analysis
    no_leftovers(rundir, ports_line(res.stdout).values())


def test_another_loopback_host_is_where_every_program_listens(tmp_path):
    """--host 127.0.0.2: the emulators bind it as the sender and the receiver
    do (they listened on 127.0.0.1 and the sender's data never arrived), and
    a run with an ACK-path emulator delivers the file."""
    cmds = dry(tmp_path, "--host", "127.0.0.2", "--ack-loss", "1")
    for prog in ("sender", "receiver", "emu-data", "emu-ack"):
        assert has(cmds[prog], "--bind", "127.0.0.2"), shlex.join(cmds[prog])
    rundir = tmp_path / "run"
    res = run_pair("--host", "127.0.0.2", "--size", "100K", "--seed", "14", "--dir", rundir,
                   "--no-analysis", "--ack-loss", "1")
    assert res.returncode == 0 and "VERDICT: OK" in res.stdout, show(res)
    no_leftovers(rundir, ports_line(res.stdout).values())


def test_impairment_options_take_effect(tmp_path):
    rundir = tmp_path / "run"
    res = run_pair("--size", "400K", "--seed", "13", "--dir", rundir, "--no-analysis",
                   "--loss", "5", "--dup", "5", "--reorder", "5", "--corrupt", "5",
                   "--delay", "0.002", "--jitter", "0.001", "--burst", "3:50", "--drop", "3",
                   "--rate", "50000", "--queue", "256K")
    assert res.returncode == 0, show(res)
    s = json.loads((rundir / "emu-data.stats.json").read_text())
    assert s["seed"] == 13
    for key in ("loss", "burst", "list"):
        assert s["dropped"][key] > 0, (key, s)
    for key in ("duplicated", "reordered", "corrupted"):
        assert s[key] > 0, (key, s)
    assert s["settings"]["impairments"]["rate"] > 0
    no_leftovers(rundir)


def test_input_output_and_rm_logs(tmp_path):
    src = make_file(tmp_path / "data.bin", 150_001, seed=5)
    dst = tmp_path / "copy.bin"
    dst.write_bytes(b"stale")  # replaced
    rundir = tmp_path / "run"
    res = run_pair("-i", src, "-o", dst, "--mode", "gbn", "-w", "32K", "--mss", "1000",
                   "--seed", "14", "--dir", rundir, "--rm-logs", "--loss", "3")
    assert res.returncode == 0, show(res)
    assert "VERDICT: OK: 150001 bytes" in res.stdout
    assert "discarded: gbn" in res.stdout  # the receiver ran in gbn mode
    assert dst.read_bytes() == src.read_bytes()
    assert not rundir.exists(), list(rundir.iterdir())  # --rm-logs, after a success
    assert src.exists()


def test_empty_sample(tmp_path):
    rundir = tmp_path / "run"
    res = run_pair("--size", "0", "--seed", "19", "--dir", rundir, "--no-analysis")
    assert res.returncode == 0, show(res)
    assert "VERDICT: OK: 0 bytes delivered intact" in res.stdout
    assert (rundir / "received.bin").read_bytes() == b""


def test_rm_logs_spares_other_files(tmp_path):
    rundir = tmp_path / "run"
    rundir.mkdir()
    (rundir / "notes.txt").write_text("mine")
    res = run_pair("--size", "20K", "--seed", "15", "--dir", rundir, "--rm-logs", "--clean",
                   "--no-analysis")
    assert res.returncode == 0, show(res)
    assert [p.name for p in rundir.iterdir()] == ["notes.txt"]


# ------------------------------------------------------------------ failures
def test_failure_names_side_and_log(tmp_path):
    """100% loss on the data path: nobody hears anything; with --give-up 2 both
    programs give up quickly and run_pair.sh says so, naming the logs."""
    rundir = tmp_path / "run"
    ports = []
    while len(ports) < 3:  # explicit ports, outside the range the OS hands out
        p = quiet_port()
        if p not in ports:
            ports.append(p)
    res = run_pair("--size", "10K", "--seed", "16", "--dir", rundir, "--no-analysis",
                   "--loss", "100", "--give-up", "2", "--link-port", ports[0],
                   "--recv-port", ports[1], "--ack-port", ports[2])
    assert res.returncode == 1, show(res)
    assert "VERDICT: FAILED" in res.stdout, show(res)
    assert json.loads((rundir / "run.json").read_text())["ok"] is False
    assert "the sender FAILED (exit 1)" in res.stderr, show(res)
    assert "nothing heard from the receiver" in res.stderr, show(res)
    assert f"its log: {rundir}/sender.log" in res.stderr, show(res)
    assert (rundir / "sender.log").exists()
    assert "the receiver FAILED (exit 1)" in res.stderr, show(res)
    assert not (rundir / "received.bin").exists()
    no_leftovers(rundir, ports)


def test_program_that_cannot_start(tmp_path):
    """The receiver cannot bind its port: run_pair.sh says so, names its log,
    exits 2 and stops the ACK emulator it had already started."""
    rundir = tmp_path / "run"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        port = busy.getsockname()[1]
        res = run_pair("--size", "10K", "--dir", rundir, "--no-analysis", "--ack-loss", "5",
                       "--recv-port", port, timeout=60)
    assert res.returncode == 2, show(res)
    assert "the receiver FAILED to start (exit 2)" in res.stderr, show(res)
    assert "cannot bind" in res.stderr
    assert f"{rundir}/receiver.log" in res.stderr
    assert (rundir / "emu-ack.ready").exists()  # it had started
    no_leftovers(rundir, [port])


def test_timeout_stops_everything(tmp_path):
    rundir = tmp_path / "run"
    res = run_pair("--size", "2M", "--rate", "1000", "--dir", rundir, "--no-analysis",
                   "--timeout", "2", "--clean", "--seed", "17")
    assert res.returncode == 1, show(res)
    assert "did not finish within --timeout 2 s" in res.stderr, show(res)
    assert f"{rundir}/sender.log" in res.stderr
    no_leftovers(rundir, ports_line(res.stdout).values())


def _start_slow(rundir: Path) -> tuple[subprocess.Popen, Path]:
    out = rundir.parent / "rp.out"
    with open(out, "w") as fo:
        proc = subprocess.Popen(
            [str(RUN_PAIR), "--size", "4M", "--rate", "2000", "--clean", "--seed", "18",
             "--dir", str(rundir), "--no-analysis"],
            stdout=fo, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
    deadline = time.monotonic() + 60
    while "ports:" not in out.read_text():
        assert proc.poll() is None, out.read_text()
        assert time.monotonic() < deadline, "run_pair.sh did not start the transfer"
        time.sleep(0.1)
    deadline = time.monotonic() + 30  # the sender has started and is sending
    while not (rundir / "sender.log").exists() or "ESTABLISHED" not in \
            (rundir / "sender.log").read_text():
        assert proc.poll() is None, out.read_text()
        assert time.monotonic() < deadline, "the sender never connected"
        time.sleep(0.1)
    return proc, out


@pytest.mark.parametrize("sig,to,code", [
    (signal.SIGINT, "group", 130),   # Ctrl-C in a terminal: the whole process group
    (signal.SIGINT, "script", 130),  # kill -INT to run_pair.sh alone
    (signal.SIGTERM, "script", 143),
])
def test_interrupt_mid_transfer(tmp_path, sig, to, code):
    rundir = tmp_path / "run"
    proc, out = _start_slow(rundir)
    try:
        ports = ports_line(out.read_text())
        time.sleep(0.5)
        if to == "group":
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)
        rc = proc.wait(60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    text = out.read_text()
    assert rc == code, text
    assert "interrupted" in text
    assert "VERDICT: OK" not in text
    no_leftovers(rundir, ports.values())


# -------------------------------------------------------------- bad options
@pytest.mark.parametrize("args", [
    ["--bogus"],
    ["--mode", "xyz"],
    ["--window", "abc"],
    ["--window", "100"],           # smaller than one MSS
    ["--loss"],                    # no value
    ["--loss", "150"],
    ["--corrupt", "100"],
    ["--burst", "1"],
    ["--drop", "0,3"],
    ["--blackhole", "3"],
    ["--seed", "x"],
    ["--link-port", "70000"],
    ["--link-port", "40000", "--recv-port", "40000"],
    ["--timeout", "-1"],
    ["--give-up", "0"],
    ["--size", "12Q"],
    ["--mss", "0"],
    ["--pacing", "-1"],
    ["--pacing", "fast"],
    ["--input", "/nonexistent/file"],
    ["--output", "/nonexistent/dir/out.bin"],
    ["--ack-rate", "fast"],
    ["--snaplen", "0"],
    ["--snaplen", "all"],
])
def test_bad_options_exit_2(tmp_path, args):
    rundir = tmp_path / "never"
    res = run_pair("--dir", rundir, *args, timeout=30)
    assert res.returncode == 2, show(res)
    assert "run_pair.sh: error:" in res.stderr
    assert "Traceback" not in res.stderr
    assert not rundir.exists()  # nothing was started


def test_output_same_as_input_exits_2(tmp_path):
    src = make_file(tmp_path / "x.bin", 100)
    res = run_pair("--dir", tmp_path / "never", "-i", src, "-o", src, timeout=30)
    assert res.returncode == 2, show(res)
    assert src.read_bytes() == make_file(tmp_path / "y.bin", 100).read_bytes()
