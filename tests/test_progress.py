"""The progress bar (issue 6): tqdm on stderr when stderr is a terminal, and
nothing of it when stderr is a pipe or with --quiet.

The programs are spawned by hand here (tests/support.Link always passes
--no-progress): the one under test gets a pseudo-terminal, or a pipe, as its
stderr; its peer is started through the ``link`` fixture, which kills it at
the end whatever happens.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import signal
import struct
import subprocess
import termios
import threading

import pytest
from support import HOST, PY, ROOT, free_udp_port, make_file, wait_json

pytestmark = pytest.mark.timeout(120)

SIZE = 400_000
#: 5% loss, and a 4 Mbit/s bottleneck so that the transfer lasts about a
#: second and tqdm (mininterval 0.2 s) redraws the bar a few times mid-way.
LOSSY = ["-L", "5", "-d", "0.002", "-s", "4000", "-q", "200000", "--seed", "5"]

#: What tqdm draws: a percentage bar, a byte rate, an elapsed<remaining pair.
BAR = re.compile(r"\d+%\|")
RATE = re.compile(r"\d+(?:\.\d+)?\s?[kMG]?B/s")
ETA = re.compile(r"\[\d\d:\d\d<\d\d:\d\d")
REXMIT = re.compile(r"rexmit=(\d+)")
BYTES = re.compile(r"\d+(?:\.\d+)?[kMG]?B?\s*\[\d\d:\d\d")  # "390kB [00:01" (no total)


class Captured:
    """A child's stderr: a pseudo-terminal (``tty=True``) or a pipe, read to
    EOF by a thread so the child never blocks on a full buffer."""

    def __init__(self, tty: bool):
        self.tty = tty
        self.chunks: list[bytes] = []
        if tty:
            self.read_fd, self.child_fd = pty.openpty()
            # a real terminal has a size; tqdm's dynamic_ncols asks for it
            fcntl.ioctl(self.child_fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
        else:
            self.read_fd, self.child_fd = os.pipe()
        self._thread = threading.Thread(target=self._drain, daemon=True)

    def started(self) -> None:
        """The child has its copy: close ours so EOF (EIO on a pty) comes when it exits."""
        os.close(self.child_fd)
        self._thread.start()

    def _drain(self) -> None:
        while True:
            try:
                data = os.read(self.read_fd, 65536)
            except OSError:  # EIO: the pty's last writer is gone
                break
            if not data:
                break
            self.chunks.append(data)

    def text(self, timeout: float = 10.0) -> str:
        self._thread.join(timeout)
        os.close(self.read_fd)
        return b"".join(self.chunks).decode("utf-8", "replace")


def _spawn(args, stderr_fd, cwd, stdout_path):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("TERM", "xterm")
    with open(stdout_path, "wb") as out:
        return subprocess.Popen([PY, *args], stdin=subprocess.DEVNULL, stdout=out,
                                stderr=stderr_fd, cwd=cwd, env=env, start_new_session=True)


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)


def run_sender(link, tmp_path, tty: bool, extra=()) -> tuple[int, str]:
    """A sender whose stderr is a pty or a pipe, through a lossy emulator to
    a receiver the ``link`` fixture started; (exit status, stderr)."""
    src = make_file(tmp_path / "in.bin", SIZE, seed=2)
    ack_port = free_udp_port()
    _, rport = link.receiver(tmp_path / "out.bin", ack_port)
    _, eport = link.emulator("emu-data", rport, LOSSY)
    cap = Captured(tty)
    proc = _spawn(["-m", "sender", str(src), HOST, str(eport), "64K", str(ack_port), *extra],
                  cap.child_fd, tmp_path, tmp_path / "sender.out")
    cap.started()
    try:
        rc = proc.wait(90)
    finally:
        _kill(proc)
    err = cap.text()
    assert (tmp_path / "out.bin").read_bytes() == src.read_bytes() or rc != 0
    return rc, err


def run_receiver(link, tmp_path, tty: bool, extra=()) -> tuple[int, str]:
    """A receiver whose stderr is a pty or a pipe; the ``link`` fixture runs
    the emulator and the sender.  (exit status, stderr)."""
    src = make_file(tmp_path / "in.bin", SIZE, seed=3)
    ack_port = free_udp_port()
    ready = tmp_path / "receiver.ready"
    cap = Captured(tty)
    proc = _spawn(["-m", "receiver", str(tmp_path / "out.bin"), "0", HOST, str(ack_port),
                   "--ready-file", str(ready), *extra],
                  cap.child_fd, tmp_path, tmp_path / "receiver.out")
    cap.started()
    try:
        rport = wait_json(ready, proc)["port"]
        _, eport = link.emulator("emu-data", rport, LOSSY)
        sender = link.sender(src, eport, "64K", ack_port)
        assert sender.wait(90) == 0, link.describe()
        rc = proc.wait(60)
    finally:
        _kill(proc)
    err = cap.text()
    assert rc != 0 or (tmp_path / "out.bin").read_bytes() == src.read_bytes()
    return rc, err


def _no_bar(err: str) -> None:
    for pattern in (BAR, RATE, ETA, REXMIT):
        assert not pattern.search(err), f"progress output ({pattern.pattern}) in:\n{err}"
    assert "\r" not in err, f"carriage returns (a redrawn bar) in:\n{err!r}"


def _bars(err: str) -> list[str]:
    """Every state tqdm drew, in order (each redraw starts with a CR)."""
    return [seg.split("\x1b[")[0].split("\r\n")[0].rstrip()
            for seg in err.split("\r") if seg.strip().startswith(("sending", "receiving"))]


def test_sender_bar_on_a_terminal(link, tmp_path):
    rc, err = run_sender(link, tmp_path, tty=True)
    assert rc == 0, err + link.describe()
    bars = _bars(err)
    assert bars, f"no bar drawn: {err[-2000:]!r}"
    assert BAR.search(err) and RATE.search(err) and ETA.search(err), "\n".join(bars)
    counts = [int(n) for n in REXMIT.findall(err)]
    assert counts, "no rexmit=N in the bar:\n" + "\n".join(bars)
    # 5% loss on 276 data segments: some were resent, and the bar's last
    # count is the one the summary prints
    summary = (tmp_path / "sender.out").read_text()
    m = re.search(r"^\s+retransmissions\s+(\d+)", summary, re.M)
    assert m and counts[-1] == int(m.group(1)) > 0, (counts, summary)
    assert counts == sorted(counts)


def test_sender_final_bar_is_complete(link, tmp_path):
    """The bar left on the screen at the end shows the whole file: 100%,
    size/size and no time remaining (tqdm drops the total, hence the
    percentage and the ETA, from a bar whose count passed its total)."""
    rc, err = run_sender(link, tmp_path, tty=True)
    assert rc == 0, err + link.describe()
    final = _bars(err)[-1]
    total = re.search(r"/(\S+) \[", _bars(err)[0])
    assert total, _bars(err)
    assert re.search(rf"100%\|.*\| {re.escape(total.group(1))}/{re.escape(total.group(1))} "
                     r"\[\d\d:\d\d<00:00", final), (
        f"final bar: {final!r}; first bar: {_bars(err)[0]!r}")


def test_sender_no_bar_on_a_pipe(link, tmp_path):
    rc, err = run_sender(link, tmp_path, tty=False)
    assert rc == 0, err + link.describe()
    assert "ESTABLISHED" in err  # the pipe did carry the log: it was stderr
    _no_bar(err)


def test_sender_no_bar_with_quiet(link, tmp_path):
    rc, err = run_sender(link, tmp_path, tty=True, extra=["--quiet"])
    assert rc == 0, err + link.describe()
    _no_bar(err)
    assert not err.strip(), f"--quiet printed on stderr: {err!r}"


def test_receiver_bar_on_a_terminal(link, tmp_path):
    rc, err = run_receiver(link, tmp_path, tty=True)
    assert rc == 0, err + link.describe()
    assert "receiving" in err and RATE.search(err) and BYTES.search(err), repr(err[-2000:])


def test_receiver_no_bar_on_a_pipe(link, tmp_path):
    rc, err = run_receiver(link, tmp_path, tty=False)
    assert rc == 0, err + link.describe()
    assert "ESTABLISHED" in err
    _no_bar(err)
    assert "receiving" not in err


def test_receiver_no_bar_with_quiet(link, tmp_path):
    rc, err = run_receiver(link, tmp_path, tty=True, extra=["--quiet"])
    assert rc == 0, err + link.describe()
    _no_bar(err)
    assert not err.strip(), f"--quiet printed on stderr: {err!r}"


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
LOG_TIME = re.compile(r"\d\d:\d\d:\d\d\.\d{3}(?:\x1b\[0m)? ")  # (coloured on a tty)


def _lines_start_clean(err: str) -> None:
    """Every log line begins on a line of its own: nothing of the bar (or of
    anything else) before its time stamp since the last line break or CR."""
    found = 0
    for m in LOG_TIME.finditer(err):
        start = max(err.rfind("\n", 0, m.start()), err.rfind("\r", 0, m.start())) + 1
        before = ANSI.sub("", err[start:m.start()])
        assert not before.strip(), f"a log line printed after {before!r}:\n{err!r}"
        found += 1
    assert found >= 2, err


def test_log_lines_never_land_in_the_bar(link, tmp_path):
    """Log lines printed while the bar is on the screen (issue 24, item 10):
    each starts a line of its own, the bar drawn again under it."""
    rc, err = run_sender(link, tmp_path, tty=True)
    assert rc == 0, err + link.describe()
    assert _bars(err), err
    _lines_start_clean(err)


def test_receiver_log_lines_never_land_in_its_bar(link, tmp_path):
    rc, err = run_receiver(link, tmp_path, tty=True)
    assert rc == 0, err + link.describe()
    assert "receiving" in err, err
    _lines_start_clean(err)
