"""runtime.pcap: captures must read as one valid IPv4 TCP connection.

Segments are built by hand with struct (not with the project's codec) and the
capture is parsed back with dpkt, an independent parser; checksums are
verified with a deliberately plain word-by-word sum.  tshark, when installed,
gets the last word.
"""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
import threading

import dpkt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime import pcap

LOCAL = ("127.0.0.1", 40001)
REMOTE = ("127.0.0.2", 50002)
LOCAL_IP = bytes([127, 0, 0, 1])
REMOTE_IP = bytes([127, 0, 0, 2])
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10


# --- plain reference implementations -------------------------------------

def plain_sum(data: bytes) -> int:
    """Ones' complement sum of 16-bit words, folded, the schoolbook way."""
    if len(data) % 2:
        data += b"\x00"
    total = 0
    for i in range(0, len(data), 2):
        total += (data[i] << 8) | data[i + 1]
        while total > 0xFFFF:
            total = (total & 0xFFFF) + (total >> 16)
    return total


def plain_checksum(data: bytes) -> int:
    return (~plain_sum(data)) & 0xFFFF


def pseudo_header(src: bytes, dst: bytes, tcp_len: int) -> bytes:
    return src + dst + bytes([0, 6]) + struct.pack("!H", tcp_len)


def tcp_checksum_valid(src: bytes, dst: bytes, tcp: bytes) -> bool:
    """A received segment is valid when the sum over pseudo-header + segment
    (checksum included) is all ones."""
    return plain_sum(pseudo_header(src, dst, len(tcp)) + tcp) == 0xFFFF


def ip_checksum_valid(header: bytes) -> bool:
    return plain_sum(header) == 0xFFFF


def make_segment(sport, dport, seq, ack, flags, win, options=b"", payload=b"",
                 good_checksum=True) -> bytes:
    """One of our wire segments: TCP header, options, payload; checksum over
    header and payload only (no pseudo-header), as PROTOCOL.md says."""
    assert len(options) % 4 == 0
    off = (20 + len(options)) // 4
    hdr = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, off << 4, flags, win, 0, 0)
    seg = hdr + options + payload
    csum = plain_checksum(seg)
    if not good_checksum:
        csum ^= 0x0100
    return seg[:16] + struct.pack("!H", csum) + seg[18:]


SYN_OPTS = (bytes([2, 4]) + struct.pack("!H", 1460)      # MSS
            + bytes([1, 3, 3, 7])                          # NOP, WS 7
            + bytes([1, 1, 4, 2])                          # NOP NOP SACK-permitted
            + bytes([254, 12]) + struct.pack("!HQ", 0x5354, 123456789))  # file size
SACK_OPTS = bytes([1, 1, 5, 18]) + struct.pack("!IIII", 5000, 6000, 8000, 9000)
FIN_OPTS = bytes([254, 36]) + struct.pack("!H", 0x5354) + bytes(range(32))

# (outgoing, segment as on the wire, with UDP-ish ports that differ per direction)
SEGMENTS = [
    (True, make_segment(33333, 9000, 0xFFFFFF00, 0, SYN, 65535, SYN_OPTS)),
    (False, make_segment(9001, 44444, 0x12345678, 0xFFFFFF01, SYN | ACK, 65535, SYN_OPTS)),
    (True, make_segment(33333, 9000, 0xFFFFFF01, 0x12345679, ACK, 512)),
    (True, make_segment(33333, 9000, 0xFFFFFF01, 0x12345679, ACK | PSH, 512,
                        payload=bytes(range(256)) * 3 + b"odd")),
    (False, make_segment(9001, 44444, 0x12345679, 0xFFFFFF01, ACK, 300, SACK_OPTS)),
    (True, make_segment(33333, 9000, 0x00000304, 0x12345679, FIN | ACK, 512, FIN_OPTS)),
    (False, make_segment(9001, 44444, 0x12345679, 0x00000305, RST, 0)),
]


def write_capture(segments, t0=1_700_000_000.25, **kw) -> bytes:
    buf = io.BytesIO()
    w = pcap.PcapWriter(buf, local=LOCAL, remote=REMOTE, **kw)
    for i, (out, seg) in enumerate(segments):
        w.write(t0 + i * 0.001001, out, seg)
    w.close()
    return buf.getvalue()


def read_capture(data: bytes):
    reader = dpkt.pcap.Reader(io.BytesIO(data))
    assert reader.datalink() == pcap.LINKTYPE_RAW
    return list(reader)


# --- tests -----------------------------------------------------------------

@pytest.mark.timeout(10)
def test_global_header_is_classic_libpcap():
    hdr = pcap.pcap_global_header()
    magic, major, minor, zone, sigfigs, snaplen, link = struct.unpack("=IHHiIII", hdr)
    assert (magic, major, minor, zone, sigfigs, snaplen, link) == (
        0xA1B2C3D4, 2, 4, 0, 0, 65535, 101)


@pytest.mark.timeout(10)
def test_capture_parses_as_one_valid_tcp_connection():
    data = write_capture(SEGMENTS)
    records = read_capture(data)
    assert len(records) == len(SEGMENTS)
    for i, ((ts, raw), (outgoing, seg)) in enumerate(zip(records, SEGMENTS, strict=True)):
        assert ts == pytest.approx(1_700_000_000.25 + i * 0.001001, abs=1e-6)
        ip = dpkt.ip.IP(raw)
        # IPv4 header
        assert ip.v == 4 and ip.hl == 5
        assert ip.len == 20 + len(seg) == len(raw)
        assert ip.id == i
        assert struct.unpack("!H", raw[6:8])[0] == 0x4000  # DF, offset 0
        assert ip.ttl == 64 and ip.p == 6
        assert ip_checksum_valid(raw[:20])
        src, dst = (LOCAL_IP, REMOTE_IP) if outgoing else (REMOTE_IP, LOCAL_IP)
        assert (ip.src, ip.dst) == (src, dst)
        # TCP: ports rewritten per direction, checksum the real way
        tcp_bytes = raw[20:]
        tcp = ip.data
        assert isinstance(tcp, dpkt.tcp.TCP)
        want_ports = (LOCAL[1], REMOTE[1]) if outgoing else (REMOTE[1], LOCAL[1])
        assert (tcp.sport, tcp.dport) == want_ports
        assert tcp_checksum_valid(src, dst, tcp_bytes)
        assert tcp.sum == pcap.tcp_checksum_ipv4(src, dst, tcp_bytes)
        # everything else byte for byte: seq, ack, offset, flags, window,
        # urgent pointer, options, payload
        assert tcp_bytes[4:16] == seg[4:16]
        assert tcp_bytes[18:] == seg[18:]
        assert tcp.seq == struct.unpack("!I", seg[4:8])[0]
        assert tcp.ack == struct.unpack("!I", seg[8:12])[0]
        assert tcp.flags == seg[13]


@pytest.mark.timeout(10)
def test_corrupted_segment_stays_visibly_corrupt():
    good = make_segment(1, 2, 100, 200, ACK, 1000, payload=b"hello")
    bad = make_segment(1, 2, 100, 200, ACK, 1000, payload=b"hello", good_checksum=False)
    records = read_capture(write_capture([(True, good), (False, bad)]))
    assert tcp_checksum_valid(LOCAL_IP, REMOTE_IP, records[0][1][20:])
    assert not tcp_checksum_valid(REMOTE_IP, LOCAL_IP, records[1][1][20:])
    assert ip_checksum_valid(records[1][1][:20])
    # and the choice can be turned off
    records = read_capture(write_capture([(False, bad)], keep_bad_checksums=False))
    assert tcp_checksum_valid(REMOTE_IP, LOCAL_IP, records[0][1][20:])


@pytest.mark.timeout(10)
def test_runt_segment_is_written_not_fatal():
    records = read_capture(write_capture([(False, b"\x01\x02\x03")]))
    ip = dpkt.ip.IP(records[0][1])
    assert ip.len == 23 and ip_checksum_valid(records[0][1][:20])
    assert records[0][1][20:] == b"\x01\x02\x03"


@given(st.binary(min_size=20, max_size=300), st.integers(0, 0xFFFF), st.integers(0, 0xFFFF))
@settings(max_examples=300, deadline=None)
def test_checksum_helpers_match_plain_implementation(seg, sport, dport):
    assert pcap.internet_checksum(seg) == plain_checksum(seg)
    zeroed = seg[:16] + b"\x00\x00" + seg[18:]
    want = plain_checksum(pseudo_header(LOCAL_IP, REMOTE_IP, len(seg)) + zeroed)
    assert pcap.tcp_checksum_ipv4("127.0.0.1", "127.0.0.2", seg) == want
    out = pcap.rewrite_segment(seg, sport, dport, LOCAL_IP, REMOTE_IP, keep_bad=False)
    assert struct.unpack("!HH", out[:4]) == (sport, dport)
    assert tcp_checksum_valid(LOCAL_IP, REMOTE_IP, out)


@pytest.mark.timeout(10)
def test_internet_checksum_edge_cases():
    assert pcap.internet_checksum(b"") == 0xFFFF
    assert pcap.internet_checksum(b"\x00\x00") == 0xFFFF
    assert pcap.internet_checksum(b"\xff\xff") == 0x0000
    assert pcap.internet_checksum(b"\xff\xff\xff\xff") == 0x0000
    assert pcap.internet_checksum(b"\x01") == plain_checksum(b"\x01") == 0xFEFF
    # RFC 1071 §3 example words
    data = bytes.fromhex("0001f203f4f5f6f7")
    assert pcap.internet_checksum(data) == plain_checksum(data) == (~0xDDF2) & 0xFFFF


@pytest.mark.timeout(30)
def test_writer_is_thread_safe_and_closes_cleanly():
    buf = io.BytesIO()
    w = pcap.PcapWriter(buf, local=LOCAL, remote=REMOTE)
    n_threads, per = 8, 250

    def work(k):
        for i in range(per):
            seg = make_segment(k, k, i, 0, ACK, 100, payload=bytes([k]) * (i % 50))
            w.write(1000.0 + i, k % 2 == 0, seg)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    w.flush()
    w.close()
    w.close()  # idempotent
    assert w.closed and not buf.closed  # the caller's file stays the caller's
    with pytest.raises(ValueError):
        w.write(0.0, True, SEGMENTS[0][1])
    records = read_capture(buf.getvalue())
    assert len(records) == n_threads * per == w.packets
    ids = [dpkt.ip.IP(raw).id for _, raw in records]
    assert ids == list(range(len(records)))
    for _, raw in records:
        assert ip_checksum_valid(raw[:20])
        assert tcp_checksum_valid(raw[12:16], raw[16:20], raw[20:])


@pytest.mark.timeout(10)
def test_close_file_option_and_context_manager():
    buf = io.BytesIO()
    with pcap.PcapWriter(buf, LOCAL, REMOTE, close_file=True) as w:
        w.write(1.0, True, SEGMENTS[0][1])
    assert buf.closed


@pytest.mark.timeout(60)
def test_tshark_dissects_capture(tmp_path):
    if shutil.which("tshark") is None:
        pytest.skip("tshark not installed")
    path = tmp_path / "conn.pcap"
    corrupt = make_segment(9001, 44444, 0x12345679, 0x00000305, ACK, 10, good_checksum=False)
    segments = SEGMENTS + [(False, corrupt)]
    path.write_bytes(write_capture(segments))
    fields = ["ip.src", "tcp.srcport", "tcp.dstport", "tcp.seq_raw", "tcp.ack_raw",
              "tcp.flags", "tcp.checksum.status", "ip.checksum.status", "tcp.stream",
              "tcp.len"]
    cmd = ["tshark", "-n", "-r", str(path), "-o", "tcp.check_checksum:TRUE",
           "-o", "ip.check_checksum:TRUE", "-T", "fields", "-E", "separator=,"]
    for f in fields:
        cmd += ["-e", f]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=50)
    assert res.returncode == 0, res.stderr
    rows = [line.split(",") for line in res.stdout.splitlines() if line.strip()]
    assert len(rows) == len(segments)
    statuses = []
    for row, (outgoing, seg) in zip(rows, segments, strict=True):
        got = dict(zip(fields, row, strict=True))
        src, sport, dport = (("127.0.0.1", LOCAL[1], REMOTE[1]) if outgoing
                             else ("127.0.0.2", REMOTE[1], LOCAL[1]))
        assert got["ip.src"] == src
        assert (int(got["tcp.srcport"]), int(got["tcp.dstport"])) == (sport, dport)
        assert int(got["tcp.seq_raw"]) == struct.unpack("!I", seg[4:8])[0]
        assert int(got["tcp.ack_raw"]) == struct.unpack("!I", seg[8:12])[0]
        assert int(got["tcp.flags"], 16) == seg[13]
        statuses.append(got["tcp.checksum.status"])
        assert got["ip.checksum.status"] == "1", got  # 1 = Good
        assert got["tcp.stream"] == "0"  # the whole capture is one connection
        assert int(got["tcp.len"]) == len(seg) - (seg[12] >> 4) * 4
    # 1 = Good for every real segment, 0 = Bad for the corrupted one
    assert statuses == ["1"] * len(SEGMENTS) + ["0"]
