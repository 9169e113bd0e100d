"""The processes of a run, and nothing else: each one started in a session of
its own, its output in ``NAME.out`` and ``NAME.err``, reaped with
``os.wait4`` so that its own CPU time and peak RSS are known, and stopped at
the end whatever happened (use a :class:`Group` as a context manager).

A session of its own means that Ctrl-C in the launcher's terminal reaches the
launcher only, which then stops its children itself, and that a signal to a
child's process group reaches whatever that child started too (a profiler's
target, for one).

Waits are on the children themselves: a pidfd per child (Linux), so that a
launcher learns at once that a process ended.  Only a program's ready file,
which nothing announces, is looked for at intervals.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness import signals

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
PY = sys.executable
#: The two ends of a transfer, in the order of end_cpus().
ENDS = ("send", "recv")
#: Seconds a child gets to end after SIGTERM before it is killed.
STOP_GRACE = 10.0
#: Longest pause between two looks for a ready file.
READY_POLL = 0.01


class HarnessError(RuntimeError):
    """A run could not be started or carried out as asked."""


class ExitedEarly(HarnessError):
    """A program ended before it wrote its ready file."""

    def __init__(self, proc: Proc, label: str | None = None):
        self.proc, self.label = proc, label or proc.name
        self.returncode = proc.returncode
        super().__init__(f"{self.label} exited with {proc.returncode} before it was ready\n"
                         f"{proc.describe()}")


class NotReady(HarnessError, TimeoutError):
    """A program wrote no ready file in time (what it printed says why)."""

    def __init__(self, proc: Proc, path: Path, timeout: float, label: str | None = None):
        self.proc, self.label, self.timeout = proc, label or proc.name, timeout
        self.returncode = None
        super().__init__(f"{proc.name}: no ready file {path} after {timeout:g} s\n"
                         f"{proc.describe()}")


@dataclass
class Usage:
    """What ``wait4`` reports for one child."""

    user: float = 0.0
    sys: float = 0.0
    maxrss_kib: int = 0

    @property
    def cpu(self) -> float:
        return self.user + self.sys

    @property
    def maxrss_mib(self) -> float:
        return self.maxrss_kib / 1024.0


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):  # not Linux, or older than 5.3
        return None


class Proc:
    """One child process: ``popen`` is its ``subprocess.Popen``."""

    def __init__(self, name: str, popen: subprocess.Popen, out: Path, err: Path):
        self.name, self.popen, self.out, self.err = name, popen, out, err
        self.usage: Usage | None = None
        self.returncode: int | None = None
        self._fd = _pidfd(popen.pid)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def poll(self) -> int | None:
        """Its exit status once it has ended (reaping it), else None."""
        if self.returncode is not None:
            return self.returncode
        if self.popen.returncode is not None:  # reaped through Popen by someone else
            return self._ended(self.popen.returncode, Usage())
        try:
            pid, status, ru = os.wait4(self.popen.pid, os.WNOHANG)
        except ChildProcessError:
            rc = self.popen.returncode
            return self._ended(-1 if rc is None else rc, Usage())
        if pid == 0:
            return None
        # ru_maxrss is in KiB on Linux
        return self._ended(os.waitstatus_to_exitcode(status),
                           Usage(ru.ru_utime, ru.ru_stime, ru.ru_maxrss))

    def _ended(self, rc: int, usage: Usage) -> int:
        self.returncode = self.popen.returncode = rc  # so Popen never waits for it again
        self.usage = self.usage or usage
        self.close()
        return rc

    def wait(self, timeout: float | None = None) -> int:
        """Its exit status; raises ``subprocess.TimeoutExpired`` after ``timeout`` s."""
        if not wait_any([self], timeout):
            raise subprocess.TimeoutExpired(self.popen.args, timeout)
        return self.returncode

    def signal(self, sig: int) -> None:
        """``sig`` to its process group, unless it has ended."""
        if self.poll() is None:
            try:
                os.killpg(self.popen.pid, sig)
            except ProcessLookupError:
                pass

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    @property
    def stdout(self) -> str:
        return self.out.read_text(errors="replace") if self.out.exists() else ""

    @property
    def stderr(self) -> str:
        return self.err.read_text(errors="replace") if self.err.exists() else ""

    def describe(self) -> str:
        return (f"--- {self.name} (exit {self.returncode}) stdout:\n{self.stdout[-3000:]}\n"
                f"--- {self.name} stderr:\n{self.stderr[-6000:]}")


def wait_any(procs: list[Proc], timeout: float | None) -> list[Proc]:
    """Wait until one of ``procs`` has ended, or ``timeout`` seconds (None:
    no limit); returns those that have ended (reaped), [] on a timeout."""
    deadline = None if timeout is None else time.monotonic() + timeout
    pause = 0.001
    while True:
        done = [p for p in procs if p.poll() is not None]
        if done or not procs:
            return done
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            return []
        fds = [p._fd for p in procs if p._fd is not None]
        if len(fds) == len(procs):
            poller = select.poll()
            for fd in fds:
                poller.register(fd, select.POLLIN)
            poller.poll(None if left is None else max(1, int(left * 1000 + 0.999)))
        else:  # no pidfds here: look again and again, less often each time
            time.sleep(pause if left is None else min(pause, left))
            pause = min(pause * 2, 0.01)


def wait_all(procs: list[Proc], timeout: float | None) -> bool:
    """Wait until every one of ``procs`` has ended; False if ``timeout`` ran out first."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        left = [p for p in procs if p.poll() is None]
        if not left:
            return True
        rest = None if deadline is None else deadline - time.monotonic()
        if rest is not None and rest <= 0:
            return False
        wait_any(left, rest)


def end_cpus() -> tuple[int, int] | None:
    """CPUs for the two ends of a loopback run, (sending, receiving): the
    last and the first this process may use.  None with fewer than two, or
    where CPU affinity does not exist (not Linux)."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    return (cpus[-1], cpus[0]) if len(cpus) >= 2 else None


def read_ready(path: Path) -> dict | None:
    """The JSON a program writes to its --ready-file once bound, or None while
    there is none (or it is not complete yet)."""
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


@dataclass
class Group:
    """The processes of one run, with their output in ``workdir``; all
    stopped on exit.  With ``cpus`` (see end_cpus), a child started as one
    ``end`` of the transfer runs on that end's CPU only, as the programs'
    ``--cpu`` does.  ``cwd``: the children's working directory (default
    ``workdir``); ``env``: added to every child's environment."""

    workdir: Path
    cpus: tuple[int, int] | None = None
    cwd: Path | None = None
    env: dict[str, str] | None = None
    procs: list[Proc] = field(default_factory=list)

    def start(self, name: str, argv: list[str], *, end: str | None = None,
              env: dict[str, str] | None = None, out: Path | None = None,
              err: Path | None = None) -> Proc:
        """Start ``argv`` as ``name``; its output goes to ``out`` and ``err``
        (default NAME.out and NAME.err in ``workdir``; the same path twice:
        both into one file)."""
        out = out or self.workdir / f"{name}.out"
        err = err or self.workdir / f"{name}.err"
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(self.env or {}), **(env or {})}
        full_env["PYTHONPATH"] = str(ROOT) + os.pathsep + full_env.get("PYTHONPATH", "")
        cpu = None if self.cpus is None or end is None else self.cpus[ENDS.index(end)]
        mask = os.sched_getaffinity(0) if cpu is not None else None
        with signals.deferred():  # a Ctrl-C now must not lose track of the child
            try:
                if cpu is not None:  # the child inherits it from its first instruction
                    os.sched_setaffinity(0, {cpu})
                with open(out, "wb") as fo:
                    fe = subprocess.STDOUT if err == out else open(err, "wb")
                    try:
                        popen = subprocess.Popen(argv, stdout=fo, stderr=fe,
                                                 stdin=subprocess.DEVNULL,
                                                 cwd=self.cwd or self.workdir, env=full_env,
                                                 start_new_session=True)
                    finally:
                        if fe is not subprocess.STDOUT:
                            fe.close()
            finally:
                if mask is not None:
                    os.sched_setaffinity(0, mask)
            proc = Proc(name, popen, out, err)
            self.procs.append(proc)
        return proc

    def python(self, name: str, module: str, args: list[str], *, end: str | None = None,
               env: dict[str, str] | None = None, python: str = PY,
               prefix: list[str] = ()) -> Proc:
        """``python -m module args``, after ``prefix`` (a wrapper such as a profiler)."""
        return self.start(name, [*prefix, python, "-m", module, *args], end=end, env=env)

    def ready_path(self, name: str) -> Path:
        """A --ready-file path for ``name``, with any stale file of an earlier run removed."""
        path = self.workdir / f"{name}.ready"
        path.unlink(missing_ok=True)
        Path(f"{path}.tmp").unlink(missing_ok=True)
        return path

    def wait_ready(self, proc: Proc, path: Path, timeout: float = 30.0,
                   label: str | None = None) -> dict:
        """The JSON ``proc`` writes to its ready file ``path`` once bound;
        :class:`ExitedEarly` if it ends first, :class:`NotReady` after
        ``timeout`` s (both with what it printed, the only clue there is)."""
        deadline = time.monotonic() + timeout
        pause = 0.001
        while True:
            info = read_ready(path)
            if info is not None:
                return info
            if proc.poll() is not None:
                raise ExitedEarly(proc, label)
            left = deadline - time.monotonic()
            if left <= 0:
                raise NotReady(proc, path, timeout, label)
            wait_any([proc], min(pause, left))
            pause = min(pause * 2, READY_POLL)

    def running(self) -> list[Proc]:
        return [p for p in self.procs if p.poll() is None]

    def stop(self, procs: list[Proc] | None = None, *, sig: int = signal.SIGTERM,
             grace: float = STOP_GRACE) -> list[Proc]:
        """``sig`` to each of ``procs`` (default: all) still running, SIGKILL
        to those still running ``grace`` s later; returns those killed so."""
        procs = [p for p in (self.procs if procs is None else procs) if p.poll() is None]
        for p in procs:
            p.signal(sig)
        if wait_all(procs, grace):
            return []
        killed = [p for p in procs if p.poll() is None]
        for p in killed:
            p.signal(signal.SIGKILL)
        wait_all(killed, 10.0)
        return killed

    def stop_all(self) -> None:
        self.stop()

    def describe(self) -> str:
        return "\n".join(p.describe() for p in self.procs)

    def __enter__(self) -> Group:
        return self

    def __exit__(self, *exc) -> None:
        self.stop_all()
        for p in self.procs:
            p.close()
