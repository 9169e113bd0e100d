"""Helpers of the tests of run_pair.sh: running it, and making sure a run
left no process and no port behind."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
from pathlib import Path

from harness.ports import LOWEST, ephemeral_low, spare_udp_port

RUN_PAIR = Path(__file__).resolve().parents[1] / "run_pair.sh"


def pids_with(text: str) -> list[str]:
    """Processes whose command line contains ``text`` (e.g. a run directory)."""
    res = subprocess.run(["pgrep", "-af", "--", text], capture_output=True, text=True)
    return [ln for ln in res.stdout.splitlines() if ln.strip()]


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def port_holders(port: int) -> list[str]:
    """'pid command line' of every process with a UDP socket on ``port``
    (from /proc; empty where that cannot be read)."""
    inodes = set()
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if len(f) > 9 and int(f[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{f[9]}]")
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            if any(os.readlink(fd) in inodes for fd in (d / "fd").iterdir()):
                cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                out.append(f"{d.name} {cmd}")
        except OSError:
            continue
    return out


def assert_port_released(port: int, ours: str) -> None:
    """No process of ours holds ``port`` any more: it binds, or whoever holds it
    now is someone else (an ephemeral port the OS has since given to another
    program), and not a process whose command line contains ``ours``."""
    for _ in range(3):
        if port_is_free(port):
            return
        holders = port_holders(port)
        mine = [h for h in holders if ours in h]
        assert not mine, f"port {port} still bound by a process of this run: {mine}"
        if holders:
            return  # taken since by another program: not a leak of ours
        time.sleep(0.5)
    raise AssertionError(f"port {port} is still bound and its holder is unknown")


def quiet_port() -> int:
    """A free UDP port below the OS's ephemeral range, so no other program's
    bind(port 0) takes it while a test watches it (harness/ports.py)."""
    if not (ephemeral_low() or 0) > LOWEST:
        raise RuntimeError("no free port below the ephemeral range")
    return spare_udp_port("127.0.0.1")


def ports_line(stdout: str) -> dict[str, int]:
    """run_pair.sh's 'ports: link N, receiver N, sender ACK N[, ACK link N]'."""
    m = re.search(r"ports: (.*)", stdout)
    assert m, f"no ports line in:\n{stdout}"
    return {k.strip(): int(v) for k, v in re.findall(r"([a-zA-Z ]+) (\d+)", m.group(1))}


def run_pair(*args, timeout: float = 150) -> subprocess.CompletedProcess:
    return subprocess.run([str(RUN_PAIR), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def no_leftovers(rundir: Path, ports=()) -> None:
    """No process of this run is left (each has the run directory in its
    command line), and its ports bind again (or, for an ephemeral port, are
    held by some other program by now, never by one of ours)."""
    left = pids_with(str(rundir))
    assert not left, "processes left behind:\n" + "\n".join(left)
    for p in ports:
        assert_port_released(p, str(rundir))


def show(res: subprocess.CompletedProcess) -> str:
    return (f"exit {res.returncode}\n--- stdout:\n{res.stdout[-5000:]}\n"
            f"--- stderr:\n{res.stderr[-5000:]}")
