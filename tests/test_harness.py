"""The test harness itself: what it promises about the processes it starts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent

INNER = '''
import time
from support import free_udp_port

def test_waits(link, tmp_path):
    r, rport = link.receiver(tmp_path / "out.bin", free_udp_port())
    link.emulator("emu-data", rport, [])
    with open({pids!r}, "w") as f:
        f.write(" ".join(str(p.popen.pid) for p in link.procs))
    time.sleep(60)
'''


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is gone for our purpose: it runs nothing
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.timeout(60)
def test_sigterm_to_pytest_kills_what_the_tests_started(tmp_path):
    """SIGTERM to a pytest run (a CI time limit) runs the fixtures' teardown:
    the receiver and emulator a test started do not outlive it (conftest)."""
    pids_file = tmp_path / "pids"
    (tmp_path / "test_inner.py").write_text(INNER.format(pids=str(pids_file)))
    env = {**os.environ, "PYTHONPATH": str(TESTS)}
    run = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "conftest",
         "--rootdir", str(tmp_path), str(tmp_path / "test_inner.py")],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True)
    pids: list[int] = []
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and run.poll() is None:
            if pids_file.exists() and pids_file.read_text().strip():
                pids = [int(p) for p in pids_file.read_text().split()]
                break
            time.sleep(0.05)
        assert len(pids) == 2, run.communicate(timeout=5)[0] if run.poll() is not None else ""
        assert all(_alive(p) for p in pids)
        run.send_signal(signal.SIGTERM)
        out, _ = run.communicate(timeout=30)
        assert "KeyboardInterrupt" in out, out
        gone = time.monotonic() + 10
        while time.monotonic() < gone and any(_alive(p) for p in pids):
            time.sleep(0.05)
        assert not [p for p in pids if _alive(p)], out
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
        for p in pids:
            try:
                os.killpg(p, signal.SIGKILL)
            except OSError:
                pass
