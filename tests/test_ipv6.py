"""IPv6 everywhere (issue 24, item 11): ``::1``, ``[::1]:PORT`` and names
that resolve to IPv6 only work in stcp-send, stcp-recv and stcp-link, a
whole transfer runs on ::1 through both emulators, its captures are IPv6
frames whose TCP checksums (over the IPv6 pseudo-header) tshark finds right,
and a bad address is one line and exit 2.  Traffic goes to ::1 only; the
tests that need it are skipped where ::1 cannot be bound."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import socket
import subprocess

import pytest
from pair_support import RUN_PAIR, show
from support import PY, ROOT, make_file

from common.segment import ACK, Segment, encode
from harness.ports import spare_udp_port
from harness.spec import LinkSpec, Options, ReceiverSpec, RunSpec, SenderSpec
from harness.transfer import Transfer
from runtime import addr
from runtime.pcap import PcapWriter, internet_checksum

pytestmark = pytest.mark.timeout(240)

ENV = dict(os.environ, PYTHONPATH=str(ROOT))

TSHARK = shutil.which("tshark")


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


needs_ipv6 = pytest.mark.skipif(not _has_ipv6_loopback(),
                                reason="no IPv6 loopback here (::1 cannot be bound)")
needs_tshark = pytest.mark.skipif(TSHARK is None, reason="tshark is not installed")


# ------------------------------------------------------------------ addresses

@pytest.mark.parametrize("text, want", [
    ("[::1]:41194", ("::1", "41194")),
    ("localhost:41194", ("localhost", "41194")),
    ("127.0.0.1:*", ("127.0.0.1", "*")),
    ("[fe80::1%lo]:7", ("fe80::1%lo", "7")),
])
def test_host_and_port_split(text, want):
    assert addr.split_host_port(text, "-o") == want


@pytest.mark.parametrize("text, why", [
    ("::1:41194", "an IPv6 address takes brackets before its port, [::1]:41194"),
    ("[::1]41194", "expected [ipv6]:port"),
    ("[::1]:", "expected [ipv6]:port"),
    ("localhost", "expected host:port"),
])
def test_a_bad_host_and_port_says_why(text, why):
    with pytest.raises(addr.AddressError) as info:
        addr.split_host_port(text, "-o")
    assert why in str(info.value)


def _fake_getaddrinfo(table):
    """getaddrinfo over ``table`` (name -> addresses), as the C library
    answers: the addresses of the family asked, or an error."""
    def getaddrinfo(host, port, family=0, type_=0, *rest):
        found = [a for a in table.get(host, ()) if family in (socket.AF_UNSPEC,
                                                              addr_family(a))]
        if not found:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(addr_family(a), socket.SOCK_DGRAM, 17, "",
                 (a, 0, 0, 0) if ":" in a else (a, 0)) for a in found]
    return getaddrinfo


def addr_family(a: str) -> int:
    return socket.AF_INET6 if ":" in a else socket.AF_INET


def test_a_name_with_only_an_ipv6_address_is_ipv6_and_localhost_stays_ipv4(monkeypatch):
    monkeypatch.setattr(addr.socket, "getaddrinfo", _fake_getaddrinfo(
        {"six.test": ["::1"], "both.test": ["::1", "127.0.0.1"], "::1": ["::1"]}))
    assert addr.resolve("six.test", "the link address") == (socket.AF_INET6, "::1")
    assert addr.resolve("[::1]", "the link address") == (socket.AF_INET6, "::1")
    # a name of both families keeps its IPv4 address, as it always had here
    assert addr.resolve("both.test", "the link address") == (socket.AF_INET, "127.0.0.1")


def test_a_name_under_invalid_is_refused_without_asking_the_resolver(monkeypatch):
    """RFC 6761 §6.4: no lookup (no DNS query leaves the machine) for a name
    under .invalid, in any case, with or without the final dot."""
    asked = []
    monkeypatch.setattr(addr.socket, "getaddrinfo", lambda *a, **k: asked.append(a))
    for name in ("nosuch.invalid", "No.Such.INVALID.", "[x.invalid]"):
        with pytest.raises(addr.AddressError, match="never resolves"):
            addr.resolve(name, "the link address")
    assert asked == []


def test_the_bind_address_follows_the_peers_family():
    v6, v4 = socket.AF_INET6, socket.AF_INET
    assert addr.bind_address(None, v6, "::1", "the link address") == "::1"
    assert addr.bind_address(None, v4, "127.0.0.1", "the link address") == "127.0.0.1"
    assert addr.bind_address("::", v6, "::1", "the link address") == "::"
    with pytest.raises(addr.AddressError, match=r"--bind 0\.0\.0\.0: not an IPv6 address, "
                                                r"as the link address ::1 is"):
        addr.bind_address("0.0.0.0", v6, "::1", "the link address")
    with pytest.raises(addr.AddressError, match="not on this machine's loopback.*:: for every"):
        addr.bind_address(None, v6, "2001:db8::1", "the link address")


# ----------------------------------------------------------------------- pcap

def _ipv6_sum_is_zero(packet: bytes) -> bool:
    """RFC 8200 §8.1: the TCP checksum over the pseudo-header (source,
    destination, 32-bit upper-layer length, 3 zero bytes, next header) and
    the segment, its checksum field included, comes out 0 when it is right."""
    src, dst, tcp = packet[8:24], packet[24:40], packet[40:]
    pseudo = src + dst + len(tcp).to_bytes(4, "big") + b"\x00\x00\x00\x06"
    return internet_checksum(pseudo + tcp) == 0


def test_an_ipv6_capture_record_is_an_ipv6_header_and_a_checked_segment():
    seg = encode(Segment(seq=1, ack=2, flags=ACK, window=100, payload=b"x" * 33))
    w = PcapWriter(io.BytesIO(), local=("::1", 5000), remote=("::2", 6000))
    out, back = w.packet(True, seg, 0), w.packet(False, seg, 1)
    for pkt, src, dst in ((out, "::1", "::2"), (back, "::2", "::1")):
        assert pkt[0] >> 4 == 6 and len(pkt) == 40 + len(seg)
        assert int.from_bytes(pkt[4:6], "big") == len(seg)  # payload length
        assert pkt[6] == 6 and pkt[7] == 64  # next header TCP, hop limit
        assert pkt[8:24] == socket.inet_pton(socket.AF_INET6, src)
        assert pkt[24:40] == socket.inet_pton(socket.AF_INET6, dst)
        assert _ipv6_sum_is_zero(pkt)
    assert out[40:44] == (5000).to_bytes(2, "big") + (6000).to_bytes(2, "big")
    with pytest.raises(ValueError, match="different IP families"):
        PcapWriter(io.BytesIO(), local=("::1", 1), remote=("127.0.0.1", 2))


# ------------------------------------------------------------------ programs

BAD = [
    # an address that is not the loopback ::1 with a port: 0:0:0:0:0:0:1:5000
    (["sender", "{src}", "::1:5000", "5000", "4K", "0"], "::1:5000 is not on this machine's"),
    (["sender", "{src}", "[::1", "5000", "4K", "0"], "cannot resolve the link address"),
    (["sender", "{src}", "::1", "5000", "4K", "0", "--bind", "127.0.0.1"],
     "--bind 127.0.0.1: not an IPv6 address, as the link address ::1 is"),
    (["receiver", "{dst}", "0", "::1", "5000", "--bind", "0.0.0.0"],
     "--bind 0.0.0.0: not an IPv6 address"),
    (["receiver", "serve", "{dir}", "0", "[::1]", "--bind", "127.0.0.1"],
     "--bind 127.0.0.1: not an IPv6 address"),
    (["emulator", "-o", "::1:5000"], "an IPv6 address takes brackets before its port"),
    (["emulator", "-o", "[::1]:5000", "-i", "127.0.0.1:*"],
     "-i 127.0.0.1: not an IPv6 address, as the -o host is"),
    (["emulator", "-o", "[::1]:5000", "--bind", "127.0.0.1"], "--bind 127.0.0.1: not an IPv6"),
    (["emulator", "-o", "[nonsense.invalid]:5000"], "-o: cannot resolve host 'nonsense.invalid'"),
]


@pytest.mark.parametrize("argv, message", BAD, ids=[" ".join(a[:1] + a[2:4]) for a, _ in BAD])
def test_a_bad_address_is_one_line_and_exit_2(tmp_path, argv, message):
    src = make_file(tmp_path / "in.bin", 10)
    argv = [a.format(src=src, dst=tmp_path / "out.bin", dir=tmp_path) for a in argv]
    res = subprocess.run([PY, "-m", *argv], capture_output=True, text=True, timeout=60,
                         cwd=ROOT, env=ENV)
    assert res.returncode == 2, res.stderr
    assert message in res.stderr and "Traceback" not in res.stderr, res.stderr
    # one line (stcp-link adds its "(see stcp-link --help)" under it)
    assert len([x for x in res.stderr.splitlines() if not x.startswith("(see ")]) == 1, \
        res.stderr


def _tshark(pcap, fields: list[str]) -> list[list[str]]:
    cmd = [TSHARK, "-n", "-r", str(pcap), "-o", "tcp.check_checksum:TRUE", "-T", "fields",
           "-E", "separator=|"] + [x for f in fields for x in ("-e", f)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return [line.split("|") for line in p.stdout.splitlines()]


@needs_ipv6
def test_a_transfer_entirely_on_ipv6_through_both_emulators(tmp_path):
    """Sender -> data emulator -> receiver -> ACK emulator -> sender, every
    socket on ::1 (the harness passes [::1]:PORT to the emulators, --bind ::1
    to the programs and picks the sender's ACK port as an IPv6 one)."""
    src = make_file(tmp_path / "in.bin", 200_000, seed=6)
    dst = tmp_path / "out.bin"
    opts = Options(host="::1", bind=True, trace=True, pcap=True)
    spec = RunSpec(tmp_path, ReceiverSpec(dst, listen_timeout=60, args=["--log-level", "DEBUG"]),
                   [SenderSpec(src, "64K", args=["--give-up", "30", "--log-level", "DEBUG"])],
                   data_link=LinkSpec({"loss": "3", "delay": "0.002"}, seed=1),
                   ack_link=LinkSpec({"loss": "3"}, seed=2), options=opts, timeout=90)
    with Transfer(spec) as t:
        t.start()
        assert t.wait_senders(90) and t.wait_receiver(30), t.group.describe()
        sender, receiver = t.senders[0], t.receiver
        assert sender.returncode == 0 and receiver.returncode == 0, t.group.describe()
        t.stop_emulators(grace=15.0)
    assert dst.read_bytes() == src.read_bytes()
    for name in ("emu-data", "emu-ack"):
        emu = (tmp_path / f"{name}.err").read_text() + (tmp_path / f"{name}.out").read_text()
        assert "listening on [::1]:" in emu and "to [::1]:" in emu, emu
    # the DEBUG segment lines write the peer as [::1]:PORT, as --help and
    # the arguments do, never the ambiguous ::1:PORT
    for name in ("sender", "receiver"):
        seg_lines = [x for x in (tmp_path / f"{name}.err").read_text().splitlines()
                     if " seq=" in x and (" recv " in x or " send " in x)]
        assert len(seg_lines) > 150, seg_lines[:3]
        peers = {w for x in seg_lines for w in x.split() if w.endswith(tuple("0123456789"))
                 and (w.startswith("[") or w.startswith("::"))}
        assert peers and all(re.fullmatch(r"\[::1\]:\d+", w) for w in peers), sorted(peers)
    for name in ("sender", "receiver"):
        meta = json.loads((tmp_path / f"{name}.trace.jsonl").read_text().splitlines()[0])
        assert meta["ip"] == 6, meta
    if TSHARK is None:
        pytest.skip("tshark is not installed: the captures were not read back")
    for name in ("sender", "receiver"):
        rows = _tshark(tmp_path / f"{name}.pcap", ["ip.version", "ipv6.src", "ipv6.dst",
                                                   "tcp.checksum.status"])
        assert len(rows) > 150, rows[:3]
        assert {r[0] for r in rows} == {"6"}
        assert {(r[1], r[2]) for r in rows} == {("::1", "::2"), ("::2", "::1")}
        assert {r[3] for r in rows} == {"1"}, "a checksum tshark does not find right"


@needs_tshark
def test_an_ipv6_trace_becomes_an_ipv6_capture(tmp_path):
    """stcp-analyze TRACE --pcap follows the trace's family (meta ``ip``)."""
    trace = tmp_path / "sender.trace.jsonl"
    lines = [{"t": 0.0, "th": "MainThread", "ev": "meta", "role": "sender", "mode": "sr",
              "mss": 1000, "window": 8000, "isn": 100, "file_size": 10, "path": "x",
              "min_rto": 0.2, "max_rto": 60, "cc": "none", "ip": 6},
             {"t": 0.1, "th": "transmitter", "ev": "send", "seq": 100, "ack": 0, "flags": "S",
              "len": 0, "win": 65535},
             {"t": 0.2, "th": "ack-listener", "ev": "recv", "seq": 500, "ack": 101,
              "flags": "SA", "len": 0, "win": 65535}]
    trace.write_text("".join(json.dumps(x) + "\n" for x in lines))
    out = tmp_path / "made.pcap"
    res = subprocess.run([PY, "-m", "analysis", str(trace), "--pcap", str(out)],
                         capture_output=True, text=True, timeout=60, cwd=ROOT,
                         env=ENV)
    assert res.returncode == 0, res.stderr
    rows = _tshark(out, ["ip.version", "ipv6.src", "tcp.flags.syn", "tcp.checksum.status"])
    assert rows == [["6", "fd00::1", "1", "1"], ["6", "fd00::2", "1", "1"]], rows


# ------------------------------------------------------------------ run_pair

def _run_pair(*args, timeout: float = 200) -> subprocess.CompletedProcess:
    return subprocess.run([str(RUN_PAIR), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


@needs_ipv6
def test_the_harness_picks_a_free_port_of_the_hosts_family():
    port = spare_udp_port("::1")
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
        s.bind(("::1", port))


@pytest.mark.parametrize("args, message", [
    (["--host", "10.0.0.1"], "--host 10.0.0.1 is not a loopback address"),
    (["--host", "localhost"], "--host takes a loopback address (127.0.0.1 or ::1), not"),
])
def test_run_pair_takes_only_a_loopback_host(args, message):
    res = _run_pair(*args, "--dry-run", timeout=60)
    assert res.returncode == 2 and message in res.stderr, show(res)


def test_run_pair_ipv6_dry_run_puts_every_program_on_the_ipv6_loopback(tmp_path):
    res = _run_pair("--ipv6", "--ack-loss", "1", "--dry-run", "--dir", tmp_path / "r",
                    timeout=60)
    assert res.returncode == 0, show(res)
    lines = [ln for ln in res.stdout.splitlines() if not ln.startswith("#")]
    assert len(lines) == 4, lines
    assert sum(" -o '[::1]:" in ln for ln in lines) == 2  # both emulators
    for ln in lines:
        if " -m sender " in ln or " -m receiver " in ln:
            assert " ::1 " in ln and "--bind ::1" in ln, ln
    assert "127.0.0.1" not in res.stdout


@needs_ipv6
def test_run_pair_ipv6_one_pair_and_flows(tmp_path):
    d = tmp_path / "pair"
    res = _run_pair("--ipv6", "--size", "200K", "--seed", "5", "--ack-loss", "2",
                    "--dir", d)
    assert res.returncode == 0 and "VERDICT: OK" in res.stdout, show(res)
    assert "connection from [::1]:" in (d / "receiver.log").read_text()
    assert "listening on [::1]:" in (d / "emu-ack.log").read_text()
    if TSHARK is not None:
        for name in ("sender", "receiver"):
            rows = _tshark(d / f"{name}.pcap", ["ip.version"])
            assert rows and {r[0] for r in rows} == {"6"}
    d = tmp_path / "flows"
    res = _run_pair("--ipv6", "--flows", "2", "--size", "100K", "--seed", "5",
                    "--no-analysis", "--dir", d)
    assert res.returncode == 0 and "2 delivered intact" in res.stdout, show(res)
    assert "ACKs go to ::1" in (d / "server.log").read_text()
    for i in (1, 2):
        assert (d / "inbox" / f"flow-{i}.bin").read_bytes() == \
            (d / f"flow-{i}.bin").read_bytes()


#: Installed in the programs below by a sitecustomize.py on their PYTHONPATH:
#: the C library's resolver, but "six.test" is a name whose only address is
#: ::1 (as "ip6-localhost" is on many machines; this one's /etc/hosts need
#: not have such a name, and the tests do not edit it).
SIX_TEST = '''
import socket
_real = socket.getaddrinfo
def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
    if host == "six.test":
        if family not in (socket.AF_UNSPEC, socket.AF_INET6):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET6, socket.SOCK_DGRAM, 17, "", ("::1", port or 0, 0, 0))]
    return _real(host, port, family, type, proto, flags)
socket.getaddrinfo = getaddrinfo
'''


@needs_ipv6
def test_a_host_name_with_only_an_ipv6_address_works_in_every_program(tmp_path):
    """The sender's LINK_ADDRESS, the emulator's -o and the receiver's
    ACK_ADDRESS given as a name that resolves to ::1 only: the transfer runs
    on ::1, and the emulator's -i [::1]:* lets the sender's datagrams in."""
    from support import Link

    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SIX_TEST)
    env = dict(ENV, PYTHONPATH=f"{site}:{ROOT}")
    src = make_file(tmp_path / "in.bin", 100_000, seed=7)
    dst = tmp_path / "out.bin"
    ack_port = spare_udp_port("::1")
    with Link(tmp_path) as g:
        recv = g.spawn("recv", "receiver", [str(dst), "0", "six.test", str(ack_port),
                                            "--ready-file", str(g.ready_path("recv")),
                                            "--no-progress"], env=env)
        rport = g.wait_ready(recv, g.ready_path("recv"), 30.0)["port"]
        # -i: only datagrams from ::1 (an IPv6 source is a 4-tuple: its address compared)
        emu = g.spawn("emu", "emulator", ["-p", "0:0", "-o", f"six.test:{rport}", "-L", "5",
                                          "-i", "[::1]:*",
                                          "--ready-file", str(g.ready_path("emu"))], env=env)
        eport = g.wait_ready(emu, g.ready_path("emu"), 30.0)["recv_port"]
        send = g.spawn("send", "sender", [str(src), "six.test", str(eport), "32K",
                                          str(ack_port), "--no-progress"], env=env)
        assert send.wait(90) == 0, send.describe()
        assert recv.wait(30) == 0, recv.describe()
    assert dst.read_bytes() == src.read_bytes()
    assert f"ACKs go to [::1]:{ack_port}" in recv.stderr
    assert f"listening on [::1]:{eport}" in emu.stderr
    assert "from ::1 port" in send.stderr
