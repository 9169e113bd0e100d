"""Every shell example in README.md runs as written (issue 24, item 1).

The examples are read from README.md itself, so an example edited there is
the example tested here.  Each command runs with only what must change on a
test machine changed: the console scripts of this interpreter for
``.venv/bin/``, ports the OS has free for the README's fixed ones, a
directory under tmp_path for ``runs/NAME``.  A program this file does not
know how to run fails the test, so a new example cannot go untested
unnoticed.  Not run, each for a reason given in ``NOT_RUN``: the whole test
suite (it is this), the long suites, and the sweep's 24 transfers (its grid
is checked with --dry-run).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pair_support import RUN_PAIR, port_is_free, show

from harness.ports import spare_udp_port

pytestmark = pytest.mark.timeout(300)

ROOT = RUN_PAIR.parent
README = ROOT / "README.md"
BIN = Path(sys.executable).parent
#: Examples deliberately not run here, by the text that starts them.
NOT_RUN = {
    "python3 -m venv .venv": "it installs and runs the whole test suite, which holds this test",
    "E2E_FULL=1": "the long suites are off by default on purpose (minutes to hours)",
}


def examples() -> list[list[str]]:
    """The README's ```sh blocks, each as its command lines (comments and
    blank lines left out)."""
    blocks = re.findall(r"^```sh\n(.*?)^```", README.read_text(), re.M | re.S)
    out = []
    for b in blocks:
        lines = [ln.strip() for ln in b.splitlines()]
        out.append([ln for ln in lines if ln and not ln.startswith("#")])
    return out


def block(first: str) -> list[str]:
    """The one example whose first command starts with ``first``."""
    found = [b for b in examples() if b and b[0].startswith(first)]
    assert len(found) == 1, f"README.md has {len(found)} examples starting {first!r}"
    return found[0]


def test_every_example_is_run_or_says_why_not():
    known = ("head -c", "./run_pair.sh", ".venv/bin/stcp-experiment", "mkdir inbox",
             *NOT_RUN)
    for b in examples():
        assert b, "an empty example"
        assert b[0].startswith(known), f"README example this test does not run: {b[0]!r}"


def argv_of(line: str, subst: dict[str, str]) -> list[str]:
    for old, new in subst.items():
        line = line.replace(old, new)
    argv = shlex.split(line.split("#", 1)[0])
    if argv[0].startswith(".venv/bin/"):
        argv[0] = str(BIN / argv[0].removeprefix(".venv/bin/"))
    return argv


def wait_bound(port: int, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 30
    while port_is_free(port):
        assert proc.poll() is None, f"{what} exited {proc.returncode}"
        assert time.monotonic() < deadline, f"{what} never bound port {port}"
        time.sleep(0.05)


def test_hand_run_example_delivers_the_file_every_time(tmp_path):
    """The three programs by hand, twice in the same directory (the second
    run replaces out.bin): each time both exit 0 and out.bin is in.bin.  The
    link corrupts with -C (one bit, which the checksum always catches), so
    no run can end in a SHA-256 refusal."""
    lines = block("head -c")
    assert len(lines) == 4 and "-B" not in shlex.split(lines[1])
    ports = {}
    while len(ports) < 4:
        p = spare_udp_port()
        if p not in ports.values():
            ports[str(41191 + len(ports))] = p
    subst = {old: str(new) for old, new in ports.items()}
    subprocess.run(lines[0], shell=True, cwd=tmp_path, check=True, timeout=30)
    link_argv, recv_argv, send_argv = (argv_of(ln, subst) for ln in lines[1:])
    assert Path(link_argv[0]).name == "stcp-link"
    link = subprocess.Popen(link_argv, cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        wait_bound(ports["41192"], link, "stcp-link")
        for attempt in range(2):
            recv = subprocess.Popen(recv_argv, cwd=tmp_path, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
            try:
                wait_bound(ports["41194"], recv, "stcp-recv")
                send = subprocess.run(send_argv, cwd=tmp_path, capture_output=True, text=True,
                                      timeout=120)
                r_out, r_err = recv.communicate(timeout=60)
            finally:
                if recv.poll() is None:
                    recv.kill()
                    recv.wait()
            assert send.returncode == 0, f"run {attempt}: {show(send)}"
            assert recv.returncode == 0, f"run {attempt}: {r_out}\n{r_err}"
            assert "delivered and verified" in send.stdout
            assert "complete and verified (SHA-256)" in r_out
            assert (tmp_path / "out.bin").read_bytes() == (tmp_path / "in.bin").read_bytes()
    finally:
        link.terminate()
        try:
            link.wait(timeout=10)
        except subprocess.TimeoutExpired:
            link.kill()
            link.wait()


def test_serving_many_senders_example(tmp_path):
    """The server as written, and its two senders at once: both exit 0, the
    server exits 0 after its two transfers, and inbox holds both copies."""
    lines = block("mkdir inbox")
    assert len(lines) == 4
    ports: dict[str, str] = {}
    for old in ("41194", "41191", "41195"):
        p = str(spare_udp_port())
        while p in ports.values():
            p = str(spare_udp_port())
        ports[old] = p
    subprocess.run(lines[0], shell=True, cwd=tmp_path, check=True, timeout=30)
    data = (tmp_path / "in.bin")
    data.write_bytes(bytes(range(256)) * 2000)
    serve_argv, *send_argvs = (argv_of(ln, ports) for ln in lines[1:])
    assert Path(serve_argv[0]).name == "stcp-serve"
    procs = [subprocess.Popen(serve_argv, cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)]
    try:
        wait_bound(int(ports["41194"]), procs[0], "stcp-serve")
        procs += [subprocess.Popen(a, cwd=tmp_path, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True) for a in send_argvs]
        outs = [p.communicate(timeout=120) for p in procs[::-1]][::-1]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, f"{p.args}: {out}\n{err}"
    assert sorted(os.listdir(tmp_path / "inbox")) == ["copy.bin", "in.bin"]
    for name in ("copy.bin", "in.bin"):
        assert (tmp_path / "inbox" / name).read_bytes() == data.read_bytes()


def test_looking_at_a_run_example(tmp_path):
    """run_pair.sh with 10% loss into a directory, the analysis twice (HTML,
    then text and PNGs), and the capture read by tshark (the comment's
    alternative to wireshark, where tshark is installed)."""
    lines = block("./run_pair.sh --loss")
    subst = {"runs/lossy": str(tmp_path / "lossy")}
    run = argv_of(lines[0], subst)
    assert run[0] == "./run_pair.sh"
    res = subprocess.run([str(RUN_PAIR), *run[1:]], capture_output=True, text=True,
                         timeout=200, stdin=subprocess.DEVNULL)
    assert res.returncode == 0, show(res)
    assert "VERDICT: OK" in res.stdout
    html = tmp_path / "lossy" / "report.html"
    html.unlink()  # made by the run; the example makes it again
    for line in lines[1:3]:
        res = subprocess.run(argv_of(line, subst), capture_output=True, text=True, timeout=200)
        assert res.returncode == 0, show(res)
    assert html.is_file() and (tmp_path / "lossy" / "plots" / "sender-timeseq.png").is_file()
    assert lines[3].startswith("wireshark ")
    tshark = re.search(r"# or: (tshark .*)$", lines[3])
    assert tshark, lines[3]
    if shutil.which("tshark") is None:
        pytest.skip("no tshark here: the capture's last step is checked where it is installed")
    res = subprocess.run(argv_of(tshark.group(1), subst), capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0 and len(res.stdout.splitlines()) > 1000, show(res)


def test_sweep_example_grid(tmp_path):
    """The sweep's example as written, with --dry-run: its options are
    accepted and the grid is the 2 modes x 4 losses x 3 repetitions the
    README describes (running its 24 transfers is the sweep tests' job)."""
    (line,) = block(".venv/bin/stcp-experiment")
    argv = argv_of(line, {"runs/sweep": str(tmp_path / "sweep")}) + ["--dry-run"]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, show(res)
    runs = [ln for ln in res.stdout.splitlines() if ln.startswith("./run_pair.sh ")]
    assert len(runs) == 2 * 4 * 3, res.stdout


def test_default_run_example():
    """The first example is run_pair.sh with no option; the run itself is
    test_run_pair.py's test_default_run_verifies_and_cleans_up (with --dir,
    so that no run lands in the tree)."""
    (bare,) = [b for b in examples() if b[0] == "./run_pair.sh"]
    assert bare == ["./run_pair.sh"]
