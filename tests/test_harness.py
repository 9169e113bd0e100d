"""The harness itself (harness/procs.py, harness/signals.py, the tests'
fixtures): what it promises about the processes it starts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.procs import ENDS, ExitedEarly, Group, end_cpus

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


# ------------------------------------------------------------ harness/procs.py
SHOW = "import os; print(sorted(os.sched_getaffinity(0)))"


@pytest.mark.timeout(60)
@pytest.mark.skipif(end_cpus() is None, reason="needs CPU affinity and two CPUs")
def test_each_end_runs_on_its_own_cpu(tmp_path):
    """A child started as one end of a loopback transfer runs on that end's
    CPU only, and the launcher keeps its own."""
    cpus = end_cpus()
    assert cpus[0] != cpus[1]
    mine = os.sched_getaffinity(0)
    with Group(tmp_path, cpus) as g:
        children = {end: g.start(f"child-{end}", [sys.executable, "-c", SHOW], end=end)
                    for end in ENDS}
        free = g.start("free", [sys.executable, "-c", SHOW])
        for child in (*children.values(), free):
            assert child.wait(30) == 0, child.describe()
    for end, child in children.items():
        assert child.stdout.strip() == str([cpus[ENDS.index(end)]])
    assert free.stdout.strip() == str(sorted(mine))
    assert os.sched_getaffinity(0) == mine


@pytest.mark.timeout(60)
def test_without_cpus_nothing_is_pinned(tmp_path):
    if not hasattr(os, "sched_getaffinity"):
        pytest.skip("no CPU affinity here")
    with Group(tmp_path) as g:
        child = g.start("child", [sys.executable, "-c", SHOW], end="send")
        assert child.wait(30) == 0, child.describe()
    assert child.stdout.strip() == str(sorted(os.sched_getaffinity(0)))


@pytest.mark.timeout(60)
def test_a_child_that_never_gets_ready_says_what_it_printed(tmp_path):
    """A program that never writes its ready file: the error carries what it
    printed, the only clue there is (a profiled run once failed this way)."""
    with Group(tmp_path) as g:
        child = g.start("stuck", [sys.executable, "-c",
                                  "import sys, time; print('stuck at start', file=sys.stderr, "
                                  "flush=True); time.sleep(30)"])
        with pytest.raises(TimeoutError) as err:
            g.wait_ready(child, g.ready_path("stuck"), timeout=2.0)
    assert "no ready file" in str(err.value) and "stuck at start" in str(err.value)
    assert child.returncode is not None  # and it was stopped on the way out


@pytest.mark.timeout(60)
def test_a_child_that_dies_before_it_is_ready_is_reported_at_once(tmp_path):
    with Group(tmp_path) as g:
        child = g.start("dies", [sys.executable, "-c",
                                 "import sys; print('cannot bind', file=sys.stderr); "
                                 "sys.exit(2)"])
        t0 = time.monotonic()
        with pytest.raises(ExitedEarly) as err:
            g.wait_ready(child, g.ready_path("dies"), timeout=30.0, label="the thing")
    assert time.monotonic() - t0 < 20  # not the whole timeout: its end wakes the wait
    assert err.value.returncode == 2 and err.value.label == "the thing"
    assert "cannot bind" in str(err.value)


@pytest.mark.timeout(60)
def test_wait4_reports_each_childs_own_cpu_and_rss(tmp_path):
    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass"
    with Group(tmp_path) as g:
        busy = g.start("busy", [sys.executable, "-c", burn])
        idle = g.start("idle", [sys.executable, "-c", "pass"])
        assert busy.wait(30) == 0 and idle.wait(30) == 0
    assert busy.usage.cpu >= 0.3 > idle.usage.cpu
    assert busy.usage.maxrss_kib > 0


@pytest.mark.timeout(60)
def test_stop_kills_what_ignores_sigterm_and_the_whole_process_group(tmp_path):
    """A child that ignores SIGTERM is killed after the grace time; a child's
    own child (same process group) goes with it; every one is reaped."""
    grandchild = tmp_path / "grandchild.pid"
    stubborn = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                "print('ready', flush=True); time.sleep(60)")
    parent = ("import subprocess, sys, time; "
              "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
              f"open({str(grandchild)!r}, 'w').write(str(p.pid)); time.sleep(60)")
    with Group(tmp_path) as g:
        a = g.start("stubborn", [sys.executable, "-c", stubborn])
        b = g.start("parent", [sys.executable, "-c", parent])
        deadline = time.monotonic() + 20
        while not (grandchild.exists() and grandchild.read_text() and "ready" in a.stdout):
            assert time.monotonic() < deadline, g.describe()
            time.sleep(0.02)
        gpid = int(grandchild.read_text())
        killed = g.stop(grace=1.0)
    assert killed == [a]
    assert a.returncode == -signal.SIGKILL and b.returncode == -signal.SIGTERM
    for pid in (a.pid, b.pid):
        assert not Path(f"/proc/{pid}").exists()  # reaped, not a zombie
    gone = time.monotonic() + 10
    while _alive(gpid) and time.monotonic() < gone:
        time.sleep(0.05)
    assert not _alive(gpid)


DRIVER = '''
import signal, sys, time
from pathlib import Path
from harness import signals
from harness.procs import Group

work = Path(sys.argv[1])
trap = ("import signal, sys, time\\n"
        "def on(s, f):\\n"
        "    print(signal.Signals(s).name, flush=True); sys.exit(0)\\n"
        "signal.signal(signal.SIGINT, on); signal.signal(signal.SIGTERM, on)\\n"
        "print('up', flush=True); time.sleep(60)\\n")
deaf = "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); " \\
       "signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"
with signals.installed():
    g = Group(work)
    try:
        kids = [g.start("trap", [sys.executable, "-c", trap]),
                g.start("deaf", [sys.executable, "-c", deaf])]
        while not all("up" in k.stdout for k in kids):
            time.sleep(0.01)
        print(" ".join(str(k.pid) for k in kids), flush=True)
        time.sleep(60)
    except signals.Interrupted as exc:
        g.stop(sig=exc.signum, grace=1.0)
        for k in g.procs:
            print(k.name, k.returncode, Path(f"/proc/{k.pid}").exists(), flush=True)
        sys.exit(exc.exit_code)
'''


@pytest.mark.timeout(60)
@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_is_passed_on_and_every_child_is_killed_and_reaped(tmp_path, sig, code):
    """The launcher's way with a signal (harness.signals, Group.stop): the
    same signal goes on to each child, one that ignores it is killed, all are
    reaped before the launcher exits 130 or 143."""
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    env = {**os.environ, "PYTHONPATH": str(TESTS.parent)}
    run = subprocess.Popen([sys.executable, str(script), str(tmp_path)], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           start_new_session=True)
    pids: list[int] = []
    try:
        pids = [int(p) for p in run.stdout.readline().split()]
        assert len(pids) == 2
        run.send_signal(sig)
        out = run.stdout.read()
        assert run.wait(30) == code, out
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
        for p in pids:
            if _alive(p):
                os.killpg(p, signal.SIGKILL)
    lines = dict(line.split(" ", 1) for line in out.splitlines())
    assert lines == {"trap": "0 False", "deaf": f"{-signal.SIGKILL} False"}, out
    assert signal.Signals(sig).name in (tmp_path / "trap.out").read_text()
    assert not any(_alive(p) for p in pids)
