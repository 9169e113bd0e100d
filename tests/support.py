"""Spawning the real programs for integration tests.

A :class:`Link` runs receiver, sender and, where asked, one emulator on the
data path and one on the ACK path, all on 127.0.0.1 with ports the OS picks
(the programs bind port 0 and report the port through a ready file).  Only
the sender's ACK port must be known before the receiver starts; it is a free
port below the kernel's ephemeral range (harness/ports.py), so that none of
the programs binding port 0 meanwhile can take it first.

Every process started is killed at the end, whatever happened (use it as a
context manager or through the ``link`` fixture in conftest.py).
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


def free_udp_port() -> int:
    """A UDP port for a program to bind later: one no bind to port 0 takes
    meanwhile (harness/ports.py)."""
    return spare_udp_port(HOST)


def wait_json(path: Path, proc: subprocess.Popen, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            return json.loads(path.read_text())
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[2]} exited with {proc.returncode} before it was "
                               f"ready")
        time.sleep(0.02)
    raise TimeoutError(f"no ready file {path} after {timeout} s")


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    out: Path
    err: Path

    def wait(self, timeout: float) -> int:
        return self.popen.wait(timeout)

    @property
    def stdout(self) -> str:
        return self.out.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.err.read_text(errors="replace")

    def describe(self) -> str:
        return (f"--- {self.name} (exit {self.popen.returncode}) stdout:\n{self.stdout[-3000:]}\n"
                f"--- {self.name} stderr:\n{self.stderr[-6000:]}")


@dataclass
class Link:
    """One transfer's processes, in ``workdir``."""

    workdir: Path
    procs: list[Proc] = field(default_factory=list)

    def spawn(self, name: str, module: str, args: list[str], env: dict | None = None) -> Proc:
        out = self.workdir / f"{name}.out"
        err = self.workdir / f"{name}.err"
        full_env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
        full_env["PYTHONPATH"] = str(ROOT) + os.pathsep + full_env.get("PYTHONPATH", "")
        with open(out, "wb") as fo, open(err, "wb") as fe:
            popen = subprocess.Popen([PY, "-m", module, *args], stdout=fo, stderr=fe,
                                     stdin=subprocess.DEVNULL, cwd=self.workdir, env=full_env,
                                     start_new_session=True)
        proc = Proc(name, popen, out, err)
        self.procs.append(proc)
        return proc

    def emulator(self, name: str, forward_to: int, args: list[str]) -> tuple[Proc, int]:
        ready = self.workdir / f"{name}.ready"
        proc = self.spawn(name, "emulator", [
            "-p", "0:0", "-o", f"{HOST}:{forward_to}", "--ready-file", str(ready),
            "--stats", str(self.workdir / f"{name}.stats.json"), *args])
        info = wait_json(ready, proc.popen)
        return proc, info["recv_port"]

    def receiver(self, out_file: Path, ack_port: int, args: list[str] = ()) -> tuple[Proc, int]:
        ready = self.workdir / "receiver.ready"
        proc = self.spawn("receiver", "receiver", [
            str(out_file), "0", HOST, str(ack_port), "--ready-file", str(ready),
            "--no-progress", *args])
        info = wait_json(ready, proc.popen)
        return proc, info["port"]

    def sender(self, in_file: Path, link_port: int, window: str, ack_port: int,
               args: list[str] = ()) -> Proc:
        return self.spawn("sender", "sender", [
            str(in_file), HOST, str(link_port), window, str(ack_port), "--no-progress", *args])

    def transfer(
        self,
        in_file: Path,
        out_file: Path,
        *,
        window: str = "256K",
        data_link: list[str] | None = None,
        ack_link: list[str] | None = None,
        sender_args: list[str] = (),
        receiver_args: list[str] = (),
        timeout: float = 120.0,
    ) -> tuple[Proc, Proc]:
        """Run one transfer to the end; returns (sender, receiver), both exited."""
        ack_port = free_udp_port()
        ack_target = ack_port
        if ack_link is not None:
            _, ack_target = self.emulator("emu-ack", ack_port, ack_link)
        receiver, rport = self.receiver(out_file, ack_target, list(receiver_args))
        link_port = rport
        if data_link is not None:
            _, link_port = self.emulator("emu-data", rport, data_link)
        sender = self.sender(in_file, link_port, window, ack_port, list(sender_args))
        deadline = time.monotonic() + timeout
        for p in (sender, receiver):
            try:
                p.wait(max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                raise AssertionError(f"{p.name} still running after {timeout} s\n"
                                     + self.describe()) from None
        self.stop_emulators()
        return sender, receiver

    def stop_emulators(self) -> None:
        """SIGTERM the emulators and wait, so their --stats files are written."""
        for p in self.procs:
            if p.name.startswith("emu") and p.popen.poll() is None:
                p.popen.send_signal(signal.SIGTERM)
        for p in self.procs:
            if p.name.startswith("emu"):
                p.popen.wait(15)

    def describe(self) -> str:
        return "\n".join(p.describe() for p in self.procs)

    def stop_all(self) -> None:
        for p in self.procs:
            if p.popen.poll() is None:
                try:
                    os.killpg(p.popen.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for p in self.procs:
            try:
                p.popen.wait(10)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.popen.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.popen.wait(10)

    def __enter__(self) -> Link:
        return self

    def __exit__(self, *exc) -> None:
        self.stop_all()


def make_file(path: Path, size: int, seed: int = 0) -> Path:
    import random

    rng = random.Random(seed)
    path.write_bytes(rng.randbytes(size))
    return path
