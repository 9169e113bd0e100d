"""Fixtures of the link emulator's tests: an emulator process, a sink, sources."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from emu_support import HOST, ROOT, Emulator, Sink, Source


@pytest.fixture
def sink():
    s = Sink()
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def sources():
    made: list[Source] = []

    def make(port: int | None = None) -> Source:
        s = Source(port)
        made.append(s)
        return s

    try:
        yield make
    finally:
        for s in made:
            s.close()


@pytest.fixture
def start_emulator(tmp_path):
    """start_emulator(out_port, *flags, trace=False) -> Emulator; every process is killed after."""
    procs: list[subprocess.Popen] = []

    def start(out_port: int, *flags: str, trace: bool = False) -> Emulator:
        i = len(procs)
        ready = tmp_path / f"ready{i}.json"
        stats = tmp_path / f"stats{i}.json"
        out = tmp_path / f"out{i}.txt"
        err = tmp_path / f"err{i}.txt"
        trace_path = tmp_path / f"trace{i}.jsonl" if trace else None
        args = [sys.executable, "-m", "emulator", "-p", "0:0", "-o", f"{HOST}:{out_port}",
                "--ready-file", str(ready), "--stats", str(stats), *flags]
        if trace_path is not None:
            args += ["--trace", str(trace_path)]
        with open(out, "w") as fo, open(err, "w") as fe:
            proc = subprocess.Popen(args, cwd=ROOT, stdout=fo, stderr=fe)
        procs.append(proc)
        deadline = time.monotonic() + 20
        while not ready.exists():
            if proc.poll() is not None:
                pytest.fail(f"emulator exited with {proc.returncode}: {err.read_text()}")
            if time.monotonic() > deadline:
                pytest.fail("emulator did not write its ready file in 20 s")
            time.sleep(0.01)
        info = json.loads(ready.read_text())
        return Emulator(proc, info["recv_port"], info["send_port"], info["pid"], stats, out, err,
                        trace_path)

    try:
        yield start
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
