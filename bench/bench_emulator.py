"""How fast the link emulator forwards with no impairment, against a plain Python UDP forwarder.

Three processes per run, all on 127.0.0.1: a blaster sending 1472-byte
datagrams as fast as it can, the forwarder under test, and a sink counting
what arrives.  The figure is the sink's datagrams per second over a window
that starts after a warm-up.  Each forwarder is run several times; the median
is printed, with the ratio ours / plain.  Results, not pass/fail.

    python -m bench.bench_emulator [--runs 3] [--seconds 3] [--also "-L 1 -d 0.001"]
    python bench/bench_emulator.py

``--also FLAGS`` adds a third forwarder, the emulator with those flags, to see
what an impairment costs (printed, not part of the ratio).

The same file is also each helper process (``--role blaster|sink|plain``).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness.procs import Group
from harness.programs import Launcher
from harness.spec import LinkSpec, Options

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZE = 1472
HOST = "127.0.0.1"
BUF = 4 * 1024 * 1024


def _udp(bind_port: int = 0, rcvbuf: bool = True) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, BUF)
    s.bind((HOST, bind_port))
    return s


# -------------------------------------------------------------- helper roles


def role_sink(warmup: float, seconds: float) -> None:
    """Count datagrams; print {"count", "elapsed"} for the window after the warm-up."""
    s = _udp()
    print(s.getsockname()[1], flush=True)
    buf = bytearray(65536)
    recv_into = s.recv_into
    s.settimeout(30.0)
    recv_into(buf)  # the first datagram starts the clock
    s.settimeout(2.0)
    mono = time.monotonic
    start = mono() + warmup
    end = start + seconds
    count = 0
    c0 = None
    t0 = t1 = start
    c1 = 0
    try:
        while True:
            recv_into(buf)
            count += 1
            if not count & 255:
                now = mono()
                if c0 is None:
                    if now >= start:
                        c0, t0 = count, now
                elif now >= end:
                    c1, t1 = count, now
                    break
    except TimeoutError:
        c1, t1 = count, mono()
    if c0 is None:
        c0, t0 = 0, start
    print(json.dumps({"count": c1 - c0, "elapsed": t1 - t0}), flush=True)


def role_blaster(port: int, seconds: float) -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect((HOST, port))
    payload = b"\xa5" * SIZE
    send = s.send
    end = time.monotonic() + seconds
    mono = time.monotonic
    sent = 0
    while True:
        for _ in range(256):
            try:
                send(payload)
            except OSError:
                pass
        sent += 256
        if mono() >= end:
            break
    print(json.dumps({"sent": sent}), flush=True)


def role_plain(out_port: int) -> None:
    """The baseline: the forwarding loop anyone would write first."""
    s = _udp()
    out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dest = (HOST, out_port)
    print(s.getsockname()[1], flush=True)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    recvfrom = s.recvfrom
    sendto = out.sendto
    while True:
        data, _addr = recvfrom(65536)
        sendto(data, dest)


# ------------------------------------------------------------- orchestration


def _spawn(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), *args],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def _stop(p: subprocess.Popen) -> None:
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _start_forwarder(kind: str, sink_port: int, group: Group,
                     flags: list[str]) -> tuple[subprocess.Popen | None, int]:
    """The forwarder under test: the plain one (a Popen), or the emulator,
    started by the harness in ``group``."""
    if kind == "plain":
        p = _spawn(["--role", "plain", "--port", str(sink_port)])
        return p, int(p.stdout.readline())
    _, port = Launcher(group, Options()).emulator("emulator", LinkSpec(flags=list(flags)),
                                                  sink_port)
    return None, port


def one_run(kind: str, warmup: float, seconds: float, tmp: str, flags: list[str]) -> float:
    procs: list[subprocess.Popen] = []
    with Group(Path(tmp)) as group:  # the emulator, stopped on the way out
        try:
            sink = _spawn(["--role", "sink", "--warmup", str(warmup),
                           "--seconds", str(seconds)])
            procs.append(sink)
            sink_port = int(sink.stdout.readline())
            fwd, port = _start_forwarder(kind, sink_port, group, flags)
            if fwd is not None:
                procs.append(fwd)
            blaster = _spawn(["--role", "blaster", "--port", str(port),
                              "--seconds", str(warmup + seconds + 0.5)])
            procs.append(blaster)
            out = json.loads(sink.stdout.readline())
            blaster.wait(30)
            return out["count"] / out["elapsed"] if out["elapsed"] > 0 else 0.0
        finally:
            for p in reversed(procs):
                _stop(p)
                if p.stdout:
                    p.stdout.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--role", choices=["blaster", "sink", "plain"])
    ap.add_argument("--port", type=int)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--warmup", type=float, default=0.5)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--also", default=None, metavar="FLAGS",
                    help="also measure the emulator with these flags")
    a = ap.parse_args(argv)
    if a.role == "sink":
        role_sink(a.warmup, a.seconds)
        return 0
    if a.role == "blaster":
        role_blaster(a.port, a.seconds)
        return 0
    if a.role == "plain":
        role_plain(a.port)
        return 0

    print(f"{SIZE}-byte datagrams, blaster -> forwarder -> sink on {HOST}, "
          f"{a.runs} runs of {a.seconds:g} s (+{a.warmup:g} s warm-up), {os.cpu_count()} CPUs")
    results: dict[str, list[float]] = {"plain": [], "emulator": []}
    flags = {"plain": [], "emulator": []}
    if a.also:
        name = f"emulator {a.also}"
        results[name] = []
        flags[name] = shlex.split(a.also)
    width = max(len(k) for k in results)
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(a.runs):
            for kind in results:  # interleaved, so a noisy moment hurts both
                rate = one_run(kind.split()[0], a.warmup, a.seconds, tmp, flags[kind])
                results[kind].append(rate)
                print(f"  run {i + 1} {kind:<{width}} {rate:>10,.0f} datagrams/s", flush=True)
    plain = statistics.median(results["plain"])
    ours = statistics.median(results["emulator"])
    print(f"plain Python forwarder (median): {plain:>10,.0f} datagrams/s")
    print(f"stcp-link, no impairment (median): {ours:>8,.0f} datagrams/s")
    print(f"ratio stcp-link / plain: {ours / plain:.2f} (target >= 0.5)" if plain else "no data")
    if a.also:
        print(f"stcp-link {a.also} (median): "
              f"{statistics.median(results[f'emulator {a.also}']):,.0f} datagrams/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
