"""Child processes for the benchmarks: spawned in their own session, reaped with
``os.wait4`` so each one's own CPU time and peak RSS are known, and always
killed at the end (use a :class:`Group` as a context manager).

Only 127.0.0.1 is ever used.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.ports import spare_udp_port

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
PY = sys.executable
#: The two ends of a transfer, in the order of end_cpus().
ENDS = ("send", "recv")


def free_udp_port() -> int:
    """A UDP port free right now (released before returning), and one no
    bind to port 0 takes meanwhile (harness/ports.py)."""
    return spare_udp_port(HOST)


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


@dataclass
class Child:
    name: str
    popen: subprocess.Popen
    out: Path
    err: Path
    usage: Usage | None = None
    returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is not None:
            return self.returncode
        try:
            pid, status, ru = os.wait4(self.popen.pid, os.WNOHANG)
        except ChildProcessError:  # somebody else reaped it
            self.returncode = self.popen.returncode if self.popen.returncode is not None else -1
            self.usage = self.usage or Usage()
            return self.returncode
        if pid == 0:
            return None
        self.returncode = os.waitstatus_to_exitcode(status)
        self.popen.returncode = self.returncode  # so Popen never waits for it again
        # ru_maxrss is in KiB on Linux
        self.usage = Usage(ru.ru_utime, ru.ru_stime, ru.ru_maxrss)
        return self.returncode

    def wait(self, timeout: float) -> int:
        """Wait up to ``timeout`` seconds; raises ``subprocess.TimeoutExpired``."""
        deadline = time.monotonic() + timeout
        delay = 0.001
        while True:
            rc = self.poll()
            if rc is not None:
                return rc
            if time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(self.popen.args, timeout)
            time.sleep(delay)
            delay = min(delay * 2, 0.01)

    def signal(self, sig: int) -> None:
        if self.poll() is None:
            try:
                os.killpg(self.popen.pid, sig)
            except ProcessLookupError:
                pass

    @property
    def stdout(self) -> str:
        return self.out.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.err.read_text(errors="replace")

    def describe(self) -> str:
        return (f"--- {self.name} (exit {self.returncode}) stdout:\n{self.stdout[-2000:]}\n"
                f"--- {self.name} stderr:\n{self.stderr[-3000:]}")


def end_cpus() -> tuple[int, int] | None:
    """CPUs for the two ends of a loopback run, (sending, receiving): the
    last and the first this process may use.  None with fewer than two, or
    where CPU affinity does not exist (not Linux)."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    return (cpus[-1], cpus[0]) if len(cpus) >= 2 else None


@dataclass
class Group:
    """The processes of one measurement, in ``workdir``; all killed on exit.
    With ``cpus`` (see end_cpus), a child spawned as one ``end`` of the
    transfer runs on that end's CPU only, as the programs' ``--cpu`` does."""

    workdir: Path
    cpus: tuple[int, int] | None = None
    children: list[Child] = field(default_factory=list)

    def spawn(self, name: str, argv: list[str], end: str | None = None) -> Child:
        out = self.workdir / f"{name}.out"
        err = self.workdir / f"{name}.err"
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        cpu = None if self.cpus is None or end is None else self.cpus[ENDS.index(end)]
        mask = os.sched_getaffinity(0) if cpu is not None else None
        try:
            if cpu is not None:  # the child inherits it from its first instruction
                os.sched_setaffinity(0, {cpu})
            with open(out, "wb") as fo, open(err, "wb") as fe:
                popen = subprocess.Popen(argv, stdout=fo, stderr=fe, stdin=subprocess.DEVNULL,
                                         cwd=self.workdir, env=env, start_new_session=True)
        finally:
            if mask is not None:
                os.sched_setaffinity(0, mask)
        child = Child(name, popen, out, err)
        self.children.append(child)
        return child

    def python(self, name: str, module: str, args: list[str], end: str | None = None) -> Child:
        return self.spawn(name, [PY, "-m", module, *args], end)

    def ready_path(self, name: str) -> Path:
        """A --ready-file path for ``name``, with any stale file of an earlier run removed."""
        path = self.workdir / f"{name}.ready"
        path.unlink(missing_ok=True)
        Path(f"{path}.tmp").unlink(missing_ok=True)
        return path

    def wait_ready(self, child: Child, path: Path, timeout: float = 30.0) -> dict:
        """The JSON a program writes to its --ready-file once bound."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if path.exists():
                try:
                    return json.loads(path.read_text())
                except json.JSONDecodeError:  # written but not complete yet
                    pass
            if child.poll() is not None:
                raise RuntimeError(f"{child.name} exited with {child.returncode} before it "
                                   f"was ready\n{child.describe()}")
            time.sleep(0.01)
        # What the program (or a wrapper such as py-spy) said so far is
        # all there is to go on.
        raise TimeoutError(f"{child.name}: no ready file {path} after {timeout} s\n"
                           f"{child.describe()}")

    def stop_all(self) -> None:
        for c in self.children:
            c.signal(signal.SIGTERM)
        for c in self.children:
            try:
                c.wait(10)
            except subprocess.TimeoutExpired:
                c.signal(signal.SIGKILL)
                try:
                    c.wait(10)
                except subprocess.TimeoutExpired:
                    pass

    def __enter__(self) -> Group:
        return self

    def __exit__(self, *exc) -> None:
        self.stop_all()
