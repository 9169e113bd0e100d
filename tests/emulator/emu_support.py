"""Helpers of the link emulator's tests: confidence intervals, sockets, the process handle."""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
Z999 = 3.2905  # two-sided 99.9% normal quantile


def wilson(successes: int, n: int, z: float = Z999) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return centre - half, centre + half


def assert_rate(successes: int, n: int, requested: float, what: str) -> None:
    lo, hi = wilson(successes, n)
    assert lo <= requested <= hi, (
        f"{what}: measured {successes}/{n} = {successes / n:.5f}, 99.9% interval "
        f"[{lo:.5f}, {hi:.5f}] does not contain the requested {requested}"
    )


@dataclass
class Emulator:
    proc: subprocess.Popen
    recv_port: int
    send_port: int
    pid: int
    stats_path: Path
    out_path: Path
    err_path: Path
    trace_path: Path | None = None
    result: dict = field(default_factory=dict)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> tuple[int, dict]:
        """Signal the emulator, wait for it; returns (exit status, stats)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        rc = self.proc.wait(timeout)
        stats = json.loads(self.stats_path.read_text()) if self.stats_path.exists() else {}
        return rc, stats

    def trace(self) -> list[dict]:
        assert self.trace_path is not None
        with open(self.trace_path) as f:
            return [json.loads(line) for line in f if line.strip()]

    @property
    def stderr(self) -> str:
        return self.err_path.read_text()


class Sink:
    """A UDP socket the emulator forwards to; collects what arrives with arrival times."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        self.sock.bind((HOST, 0))
        self.port = self.sock.getsockname()[1]
        self.got: list[tuple[float, bytes]] = []

    def collect(self, idle: float = 0.5, limit: float = 20.0, expect: int | None = None):
        """Receive until nothing came for ``idle`` seconds (or ``expect`` datagrams came)."""
        end = time.monotonic() + limit
        self.sock.settimeout(idle)
        while time.monotonic() < end:
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                break
            self.got.append((time.monotonic(), data))
            if expect is not None and len(self.got) >= expect:
                break
        return self.got

    def close(self) -> None:
        self.sock.close()


class Source:
    """A UDP socket sending to the emulator's receiving port."""

    def __init__(self, port: int | None = None) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, 0))
        self.port = self.sock.getsockname()[1]
        if port is not None:
            self.connect(port)

    def connect(self, port: int) -> None:
        self.sock.connect((HOST, port))

    def send(self, data: bytes) -> None:
        self.sock.send(data)

    def close(self) -> None:
        self.sock.close()



def run_cli(*flags: str, timeout: float = 20.0) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    return subprocess.run([sys.executable, "-m", "emulator", *flags], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
