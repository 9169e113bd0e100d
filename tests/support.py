"""Spawning the real programs for integration tests, through the harness
(harness/), which run_pair.sh and the benchmarks use too.

A :class:`Link` is a harness process group with the tests' shorthand: one
receiver, one sender and, where asked, one emulator on the data path and one
on the ACK path, all on 127.0.0.1 with ports the OS picks (the programs bind
port 0 and report the port through a ready file).  Only the sender's ACK
port must be known before the receiver starts; it is a free port below the
kernel's ephemeral range (harness/ports.py), so that none of the programs
binding port 0 meanwhile can take it first.

Every process started is killed at the end, whatever happened (use it as a
context manager or through the ``link`` fixture in conftest.py).
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from harness.ports import spare_udp_port
from harness.procs import HOST, PY, ROOT, Group, Proc, read_ready
from harness.programs import Launcher
from harness.spec import LinkSpec, Options, ReceiverSpec, RunSpec, SenderSpec
from harness.transfer import Transfer

__all__ = ["HOST", "PY", "ROOT", "Link", "Proc", "free_udp_port", "make_file", "wait_json"]

#: What the tests' programs share: the programs' own defaults, no progress
#: bar, and each emulator's --stats file.
OPTIONS = Options()


def free_udp_port() -> int:
    """A UDP port for a program to bind later: one no bind to port 0 takes
    meanwhile (harness/ports.py)."""
    return spare_udp_port(HOST)


def wait_json(path: Path, proc: subprocess.Popen, timeout: float = 20.0) -> dict:
    """The ready file of a program started by hand (a plain Popen)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = read_ready(path)
        if info is not None:
            return info
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[2]} exited with {proc.returncode} before it was "
                               f"ready")
        time.sleep(0.02)
    raise TimeoutError(f"no ready file {path} after {timeout} s")


def _link(flags: list[str] | None) -> LinkSpec | None:
    return None if flags is None else LinkSpec(flags=list(flags))


@dataclass
class Link(Group):
    """One transfer's processes, in ``workdir`` (a harness Group)."""

    @property
    def launcher(self) -> Launcher:
        return Launcher(self, OPTIONS)

    def spawn(self, name: str, module: str, args: list[str], env: dict | None = None) -> Proc:
        """``python -m module args`` as ``name``."""
        return self.python(name, module, list(args), env=env)

    def emulator(self, name: str, forward_to: int, args: list[str]) -> tuple[Proc, int]:
        return self.launcher.emulator(name, LinkSpec(flags=list(args)), forward_to)

    def receiver(self, out_file: Path, ack_port: int, args: list[str] = ()) -> tuple[Proc, int]:
        return self.launcher.receiver(ReceiverSpec(out_file, args=list(args)), ack_port)

    def sender(self, in_file: Path, link_port: int, window: str, ack_port: int,
               args: list[str] = ()) -> Proc:
        return self.launcher.sender(SenderSpec(in_file, window, args=list(args)), link_port,
                                    ack_port)

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
        spec = RunSpec(self.workdir, ReceiverSpec(out_file, args=list(receiver_args)),
                       [SenderSpec(in_file, window, args=list(sender_args))],
                       data_link=_link(data_link), ack_link=_link(ack_link), options=OPTIONS,
                       timeout=timeout)
        t = Transfer(spec, self)
        t.start()
        deadline = time.monotonic() + timeout
        if not t.wait_senders(timeout):
            raise AssertionError(f"sender still running after {timeout} s\n" + self.describe())
        if not t.wait_receiver(max(1.0, deadline - time.monotonic())):
            raise AssertionError(f"receiver still running after {timeout} s\n"
                                 + self.describe())
        self.stop_emulators()
        return t.senders[0], t.receiver

    def stop_emulators(self) -> None:
        """SIGTERM the emulators and wait, so their --stats files are written."""
        self.stop([p for p in self.procs if p.name.startswith("emu")], grace=15.0)


def make_file(path: Path, size: int, seed: int = 0) -> Path:
    import random

    rng = random.Random(seed)
    path.write_bytes(rng.randbytes(size))
    return path
