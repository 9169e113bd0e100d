"""Two hosts: sender and receiver in two network namespaces joined by a veth
pair, the emulators in between (issue 5).

    namespace A (10.77.0.1)            namespace B (10.77.0.2)
    sender  ---- veth ---->  emu-data (--bind 10.77.0.2) --> receiver
    sender  <--- veth -----  emu-ack  (--bind 10.77.0.2) <-- receiver

The addresses exist only inside the two namespaces this test creates; both
namespaces (and with them the veth pair) are deleted afterwards, whatever
happened.  Needs root and iproute2 (``ip netns add`` must work): otherwise the
test is skipped and says why.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import subprocess

import pytest
from support import PY, ROOT, make_file, wait_json

pytestmark = pytest.mark.timeout(180)

A_ADDR, B_ADDR = "10.77.0.1", "10.77.0.2"


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30,
                          check=check)


@pytest.fixture
def two_hosts():
    if not os.path.exists("/proc/self/ns/net"):
        pytest.skip("network namespaces need Linux")
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    if shutil.which("ip") is None:
        pytest.skip("iproute2 ('ip') is not installed (apt-get install -y iproute2)")
    tag = f"stcp-{os.getpid()}-{secrets.token_hex(3)}-"
    a, b = f"{tag}a", f"{tag}b"
    made: list[str] = []
    try:
        for ns in (a, b):
            res = _ip("netns", "add", ns, check=False)
            if res.returncode != 0:
                pytest.skip(f"'ip netns add' does not work here: {res.stderr.strip()}")
            made.append(ns)
        res = _ip("netns", "exec", a, "true", check=False)
        if res.returncode != 0:
            pytest.skip(f"'ip netns exec' does not work here: {res.stderr.strip()}")
        _ip("link", "add", "va", "netns", a, "type", "veth", "peer", "name", "vb", "netns", b)
        for ns, dev, addr in ((a, "va", A_ADDR), (b, "vb", B_ADDR)):
            _ip("-n", ns, "addr", "add", f"{addr}/24", "dev", dev)
            _ip("-n", ns, "link", "set", dev, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
        yield a, b
    finally:
        for ns in made:
            _ip("netns", "del", ns, check=False)
        left = _ip("netns", "list", check=False).stdout
        assert not any(ns in left for ns in made), f"namespaces left: {left}"


class Procs:
    """Programs started inside a namespace, each in its own session; all
    stopped at the end."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, ns: str, name: str, module: str, *args: str) -> subprocess.Popen:
        env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=str(ROOT))
        with open(self.workdir / f"{name}.out", "wb") as fo, \
                open(self.workdir / f"{name}.err", "wb") as fe:
            p = subprocess.Popen(["ip", "netns", "exec", ns, PY, "-m", module, *args],
                                 stdout=fo, stderr=fe, stdin=subprocess.DEVNULL,
                                 cwd=self.workdir, env=env, start_new_session=True)
        self.procs[name] = p
        return p

    def describe(self) -> str:
        out = []
        for name, p in self.procs.items():
            err = (self.workdir / f"{name}.err").read_text(errors="replace")[-3000:]
            std = (self.workdir / f"{name}.out").read_text(errors="replace")[-2000:]
            out.append(f"--- {name} (exit {p.returncode})\n{std}\n{err}")
        return "\n".join(out)

    def stop(self, names=None, sig=signal.SIGTERM) -> None:
        for name, p in self.procs.items():
            if (names is None or name in names) and p.poll() is None:
                try:
                    os.killpg(p.pid, sig)
                except ProcessLookupError:
                    pass
        for name, p in self.procs.items():
            if names is None or name in names:
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait(10)


def _tx_bytes(ns: str, dev: str) -> int:
    """Bytes sent on a device (bytes, not packets: with UDP GSO one packet
    on the veth can carry many datagrams)."""
    text = _ip("-n", ns, "-s", "link", "show", dev).stdout
    m = re.search(r"TX:.*\n\s*(\d+)\s+(\d+)", text)
    assert m, text
    return int(m.group(1))


@pytest.mark.parametrize("mode", ["sr", "gbn"])
def test_two_namespaces(two_hosts, tmp_path, mode):
    a, b = two_hosts
    seed = 5077
    size = 700_001
    src = make_file(tmp_path / "in.bin", size, seed=seed)
    dst = tmp_path / "out.bin"
    ack_port = 41191  # a fresh namespace: every port is free
    procs = Procs(tmp_path)
    try:
        ea = procs.start(b, "emu-ack", "emulator", "--bind", B_ADDR, "-p", "0:0",
                         "-o", f"{A_ADDR}:{ack_port}", "-L", "5", "--seed", str(seed + 1),
                         "--ready-file", str(tmp_path / "emu-ack.ready"),
                         "--stats", str(tmp_path / "emu-ack.stats.json"))
        eaport = wait_json(tmp_path / "emu-ack.ready", ea)["recv_port"]
        r = procs.start(b, "receiver", "receiver", str(dst), "0", B_ADDR, str(eaport),
                        "--bind", B_ADDR, "--mode", mode, "--no-progress",
                        "--ready-file", str(tmp_path / "receiver.ready"))
        rport = wait_json(tmp_path / "receiver.ready", r)["port"]
        ed = procs.start(b, "emu-data", "emulator", "--bind", B_ADDR, "-p", "0:0",
                         "-o", f"{B_ADDR}:{rport}", "-L", "5", "-d", "0.005",
                         "--seed", str(seed), "--ready-file", str(tmp_path / "emu-data.ready"),
                         "--stats", str(tmp_path / "emu-data.stats.json"))
        eport = wait_json(tmp_path / "emu-data.ready", ed)["recv_port"]
        window = 128 * 1024 if mode == "sr" else 64 * 1024
        s = procs.start(a, "sender", "sender", str(src), B_ADDR, str(eport),
                        str(window), str(ack_port), "--bind", A_ADDR,
                        "--mode", mode, "--no-progress")
        try:
            s.wait(120)
            r.wait(60)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"seed {seed}: still running\n" + procs.describe()) from None
        assert s.returncode == 0, f"seed {seed}\n" + procs.describe()
        assert r.returncode == 0, f"seed {seed}\n" + procs.describe()
        assert dst.read_bytes() == src.read_bytes(), f"seed {seed}: output differs"
        # the datagrams really crossed the veth pair, both ways
        assert _tx_bytes(a, "va") >= size, procs.describe()
        # ACKs: at least one per window of data, each at least 48 bytes on the
        # wire (IPv4, UDP and our header).  Not one per segment or two: the
        # emulator forwards GSO batches, which the receiver reads (GRO) and
        # acknowledges as one burst.
        assert _tx_bytes(b, "vb") >= (size // window + 1) * 48, procs.describe()
        procs.stop(["emu-data", "emu-ack"])
        assert (tmp_path / "emu-data.stats.json").exists(), procs.describe()
    finally:
        procs.stop()
