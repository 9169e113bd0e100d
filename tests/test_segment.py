"""common.segment: round trips, malformed input, and a cross-check with dpkt.

Raw segments for the malformed cases are packed by hand with struct here, so
that what is tested does not depend on the encoder being right.
"""

from __future__ import annotations

import struct

import dpkt
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from common.checksum import internet_checksum
from common.segment import (
    ACK,
    EXID,
    FIN,
    PSH,
    RST,
    SYN,
    Segment,
    SegmentError,
    decode,
    encode,
    encode_header,
    flag_str,
)

U32 = st.integers(0, 2**32 - 1)
U16 = st.integers(0, 0xFFFF)
SETTINGS = settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])


# --- helpers -----------------------------------------------------------------

def raw_segment(options: bytes = b"", payload: bytes = b"", *, seq=1000, ack=2000,
                flags=ACK, window=512, sport=1111, dport=2222, off_words=None,
                checksum=True) -> bytes:
    """A segment packed by hand; ``options`` must already be a multiple of 4
    unless ``off_words`` is given."""
    if off_words is None:
        assert len(options) % 4 == 0
        off_words = 5 + len(options) // 4
    hdr = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, off_words << 4, flags, window, 0, 0)
    raw = bytearray(hdr + options + payload)
    if checksum:
        struct.pack_into("!H", raw, 16, internet_checksum(raw))
    return bytes(raw)


def options_len(seg: Segment) -> int:
    """Option bytes ``seg`` needs before padding, by the sizes in PROTOCOL.md."""
    n = 0
    if seg.mss is not None:
        n += 4
    if seg.wscale is not None:
        n += 3
    if seg.sack_permitted:
        n += 2
    if seg.sack:
        n += 2 + 8 * len(seg.sack)
    if seg.file_size is not None:
        n += 12
    if seg.digest is not None:
        n += 36
    return n


def padded(n: int) -> int:
    return (n + 3) // 4 * 4


def assert_same(a: Segment, b: Segment) -> None:
    assert a.seq == b.seq
    assert a.ack == b.ack
    assert a.flags == b.flags
    assert a.window == b.window
    assert bytes(a.payload) == bytes(b.payload)
    assert a.src_port == b.src_port
    assert a.dst_port == b.dst_port
    assert a.mss == b.mss
    assert a.wscale == b.wscale
    assert a.sack_permitted == b.sack_permitted
    assert tuple(map(tuple, a.sack)) == tuple(map(tuple, b.sack))
    assert a.file_size == b.file_size
    assert a.digest == b.digest


# --- strategies --------------------------------------------------------------

sack_blocks = st.lists(st.tuples(U32, U32), max_size=4).map(tuple)


@st.composite
def any_segments(draw):
    """Every field drawn freely: the options may or may not fit in 40 bytes."""
    return Segment(
        seq=draw(U32),
        ack=draw(U32),
        flags=draw(st.integers(0, 0xFF)),
        window=draw(U16),
        payload=draw(st.binary(max_size=1500)),
        src_port=draw(U16),
        dst_port=draw(U16),
        mss=draw(st.none() | U16),
        wscale=draw(st.none() | st.integers(0, 14)),
        sack_permitted=draw(st.booleans()),
        sack=draw(sack_blocks),
        file_size=draw(st.none() | st.integers(0, 2**64 - 1)),
        digest=draw(st.none() | st.binary(min_size=32, max_size=32)),
    )


@st.composite
def fitting_segments(draw):
    """Segments whose options fit: metadata drawn first, then what room is left."""
    kind = draw(st.sampled_from(["syn", "ack", "fin", "plain"]))
    seg = Segment(seq=draw(U32), ack=draw(U32), flags=draw(st.integers(0, 0x1F)),
                  window=draw(U16), payload=draw(st.binary(max_size=1500)),
                  src_port=draw(U16), dst_port=draw(U16))
    if kind == "syn":
        seg.mss = draw(st.none() | U16)
        seg.wscale = draw(st.none() | st.integers(0, 14))
        seg.sack_permitted = draw(st.booleans())
        seg.file_size = draw(st.none() | st.integers(0, 2**64 - 1))
        room = 40 - options_len(seg)
        # what is left may take SACK blocks too, as long as they fit
        n = draw(st.integers(0, max(0, (room - 2) // 8)))
        if n and padded(options_len(seg) + 2 + 8 * n) <= 40:
            seg.sack = draw(st.lists(st.tuples(U32, U32), min_size=n, max_size=n).map(tuple))
    elif kind == "ack":
        seg.sack = draw(st.lists(st.tuples(U32, U32), max_size=4).map(tuple))
    elif kind == "fin":
        seg.digest = draw(st.binary(min_size=32, max_size=32))
    assert padded(options_len(seg)) <= 40
    return seg


# --- round trips -------------------------------------------------------------

@given(fitting_segments())
@SETTINGS
def test_round_trip_fitting(seg):
    raw = encode(seg)
    hlen = 20 + padded(options_len(seg))
    assert len(raw) == hlen + len(seg.payload)
    assert raw[12] >> 4 == hlen // 4 and raw[12] & 0x0F == 0
    assert_same(decode(raw), seg)


@given(any_segments())
@SETTINGS
def test_round_trip_or_error_on_overflow(seg):
    if padded(options_len(seg)) > 40:
        with pytest.raises(SegmentError) as info:
            encode(seg)
        assert info.value.reason == "options"
    else:
        assert_same(decode(encode(seg)), seg)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4])
def test_sack_blocks_alone(n):
    blocks = tuple((i * 1000, i * 1000 + 500) for i in range(n))
    seg = Segment(seq=1, ack=2, flags=ACK, window=3, sack=blocks)
    raw = encode(seg)
    assert len(raw) == 20 + padded(2 + 8 * n if n else 0)
    assert decode(raw).sack == blocks


def test_three_sack_blocks_with_other_options():
    seg = Segment(flags=ACK, mss=1000, wscale=7, sack=((1, 2), (3, 4), (5, 6)))
    # 4 + 3 + 26 = 33 -> 36 bytes
    assert len(encode(seg)) == 56
    assert_same(decode(encode(seg)), seg)


def test_five_sack_blocks_rejected():
    with pytest.raises(SegmentError):
        encode(Segment(sack=tuple((i, i + 1) for i in range(5))))


def test_four_sack_blocks_and_mss_overflow():
    # 4 + 34 = 38 -> 40 fits; add wscale: 41 -> 44 does not
    encode(Segment(mss=1, sack=tuple((i, i + 1) for i in range(4))))
    with pytest.raises(SegmentError) as info:
        encode(Segment(mss=1, wscale=1, sack=tuple((i, i + 1) for i in range(4))))
    assert info.value.reason == "options"


@pytest.mark.parametrize("field,value", [
    ("mss", -1), ("mss", 0x10000), ("wscale", 15), ("wscale", -1),
    ("file_size", -1), ("file_size", 2**64), ("digest", b"\x00" * 31), ("digest", b"\x00" * 33),
])
def test_encode_rejects_out_of_range_option(field, value):
    seg = Segment()
    setattr(seg, field, value)
    with pytest.raises(SegmentError) as info:
        encode(seg)
    assert info.value.reason == "options"


def test_every_wscale_round_trips():
    for w in range(15):
        assert decode(encode(Segment(flags=SYN, wscale=w))).wscale == w


def test_metadata_option_layout():
    raw = encode(Segment(flags=SYN, file_size=0x0102030405060708))
    assert raw[20:32] == bytes([254, 12, 0x53, 0x54, 1, 2, 3, 4, 5, 6, 7, 8])
    raw = encode(Segment(flags=FIN | ACK, digest=bytes(range(32))))
    assert raw[20:24] == bytes([254, 36, 0x53, 0x54]) and raw[24:56] == bytes(range(32))


def test_syn_option_layout():
    raw = encode(Segment(flags=SYN, mss=1452, wscale=3, sack_permitted=True))
    opts = raw[20:]
    assert opts[:4] == bytes([2, 4]) + (1452).to_bytes(2, "big")
    assert opts[4:7] == bytes([3, 3, 3])
    assert opts[7:9] == bytes([4, 2])
    assert len(opts) % 4 == 0 and set(opts[9:]) <= {0, 1}


def test_payload_types_and_header_only():
    data = bytes(range(200))
    for p in (data, bytearray(data), memoryview(data)):
        seg = Segment(seq=5, flags=ACK, payload=p)
        raw = encode(seg)
        assert decode(raw).payload == data
        assert raw[: len(encode_header(seg))] == encode_header(seg)


def test_encode_header_with_precomputed_residue():
    from common.checksum import ones_residue
    seg = Segment(seq=5, ack=6, flags=ACK | PSH, payload=b"hello world!" * 50)
    hdr = encode_header(seg, ones_residue(seg.payload))
    assert hdr + seg.payload == encode(seg)
    decode(hdr + seg.payload)


def test_seq_and_ack_are_masked():
    seg = decode(encode(Segment(seq=2**32 + 5, ack=-1)))
    assert seg.seq == 5 and seg.ack == 2**32 - 1


def test_seg_len_and_flag_str():
    assert Segment(flags=SYN).seg_len == 1
    assert Segment(flags=FIN | ACK, payload=b"abc").seg_len == 4
    assert Segment(flags=ACK, payload=b"abc").seg_len == 3
    assert flag_str(SYN | ACK) == "SA"
    assert flag_str(0) == "."
    assert flag_str(FIN | SYN | RST | PSH | ACK) == "FSRPA"


# --- arbitrary bytes ------------------------------------------------------------

@given(st.binary(max_size=120))
@settings(max_examples=2000)
def test_decode_arbitrary_bytes(data):
    for verify in (True, False):
        try:
            seg = decode(data, verify_checksum=verify)
        except SegmentError as exc:
            assert exc.reason
        else:
            assert isinstance(seg, Segment)


@given(st.binary(min_size=0, max_size=40), st.binary(max_size=40))
@settings(max_examples=2000)
def test_decode_arbitrary_options_with_good_checksum(opts, payload):
    """Random option bytes under a valid checksum reach the option parser."""
    opts = opts + bytes(-len(opts) % 4)
    raw = raw_segment(opts, payload)
    try:
        seg = decode(raw)
    except SegmentError as exc:
        assert exc.reason == "options"
    else:
        assert seg.payload == payload
        assert seg.wscale is None or 0 <= seg.wscale <= 14


# --- malformed datagrams ------------------------------------------------------------

def reason_of(raw: bytes) -> str:
    with pytest.raises(SegmentError) as info:
        decode(raw)
    return info.value.reason


@pytest.mark.parametrize("n", [0, 1, 10, 19])
def test_short(n):
    assert reason_of(raw_segment()[:n]) == "short"


@pytest.mark.parametrize("off", [0, 1, 4])
def test_data_offset_below_five(off):
    assert reason_of(raw_segment(off_words=off)) == "offset"


def test_data_offset_past_the_end():
    assert reason_of(raw_segment(off_words=6)) == "offset"
    assert reason_of(raw_segment(b"\x01" * 4, off_words=15)) == "offset"
    # exactly at the end is fine
    assert decode(raw_segment(b"\x01" * 4)).payload == b""


def test_bad_checksum():
    raw = bytearray(raw_segment(payload=b"abc"))
    raw[16] ^= 0x01
    assert reason_of(bytes(raw)) == "checksum"
    assert reason_of(raw_segment(payload=b"abc", checksum=False)) == "checksum"
    # with verification off it parses
    assert decode(bytes(raw), verify_checksum=False).payload == b"abc"


@pytest.mark.parametrize("opts", [
    bytes([2, 0, 0, 0]),          # length 0
    bytes([2, 1, 0, 0]),          # length 1
    bytes([99, 0, 0, 0]),         # unknown kind, length 0
    bytes([99, 1, 0, 0]),         # unknown kind, length 1
])
def test_option_length_0_or_1(opts):
    assert reason_of(raw_segment(opts)) == "options"


@pytest.mark.parametrize("opts", [
    bytes([1, 1, 1, 2]),                     # MSS kind in the last byte: no length
    bytes([2, 8, 0, 0]),                     # MSS running past the header
    bytes([99, 9, 0, 0, 0, 0, 0, 0]),        # unknown option running past the header
    bytes([5, 10, 0, 0, 0, 0, 0, 0]),        # SACK running past the header
])
def test_option_running_past_header(opts):
    assert reason_of(raw_segment(opts, payload=b"0123456789")) == "options"


@pytest.mark.parametrize("length", [2, 3, 5, 6])
def test_mss_wrong_length(length):
    opts = bytes([2, length]) + bytes(length - 2)
    opts += bytes(-len(opts) % 4)
    assert reason_of(raw_segment(opts)) == "options"


@pytest.mark.parametrize("length", [2, 3, 9, 11, 17, 25, 33, 34 + 2])
def test_sack_bad_length(length):
    opts = bytes([5, length]) + bytes(length - 2)
    opts += bytes(-len(opts) % 4)
    if len(opts) > 40:
        pytest.skip("does not fit a header")
    assert reason_of(raw_segment(opts)) == "options"


@pytest.mark.parametrize("length", [2, 4])
def test_wscale_and_sack_permitted_wrong_length(length):
    opts = bytes([3, length]) + bytes(length - 2)
    assert reason_of(raw_segment(opts + bytes(-len(opts) % 4))) == "options"
    opts = bytes([4, length + 1]) + bytes(length - 1)
    assert reason_of(raw_segment(opts + bytes(-len(opts) % 4))) == "options"


def test_metadata_wrong_length_with_our_exid():
    opts = bytes([254, 8, 0x53, 0x54, 1, 2, 3, 4])
    assert reason_of(raw_segment(opts)) == "options"
    opts = bytes([254, 3, 0x53, 0])
    assert reason_of(raw_segment(opts)) == "options"


def test_unknown_option_kinds_are_skipped():
    opts = bytes([99, 6, 1, 2, 3, 4]) + bytes([2, 4, 0x05, 0xB4]) + bytes([8, 10]) + bytes(8)
    opts += bytes([3, 3, 5]) + bytes([1])
    seg = decode(raw_segment(opts, payload=b"data"))
    assert seg.mss == 1460 and seg.wscale == 5 and seg.payload == b"data"


def test_unknown_exid_is_ignored():
    other = bytes([254, 12, 0x12, 0x34]) + (77).to_bytes(8, "big")
    seg = decode(raw_segment(other + bytes([2, 4, 0x01, 0x00])))
    assert seg.file_size is None and seg.digest is None and seg.mss == 256
    # an unknown ExID with any length (even one our ExID would refuse) is ignored
    seg = decode(raw_segment(bytes([254, 7, 0xAB, 0xCD, 1, 2, 3, 1])))
    assert seg.file_size is None and seg.digest is None


def test_our_exid_read():
    ours = bytes([254, 12]) + EXID.to_bytes(2, "big") + (77).to_bytes(8, "big")
    assert decode(raw_segment(ours)).file_size == 77


def test_eol_ends_options():
    opts = bytes([0]) + bytes([2, 1, 0xFF])  # garbage after EOL is not parsed
    seg = decode(raw_segment(opts))
    assert seg.mss is None


def test_nops_skipped():
    seg = decode(raw_segment(bytes([1, 1, 1, 1, 1, 1, 4, 2])))
    assert seg.sack_permitted


def test_wscale_above_14_read_as_14():
    seg = decode(raw_segment(bytes([3, 3, 200, 1])))
    assert seg.wscale == 14


# --- dpkt cross-check -------------------------------------------------------------

def our_options(seg: Segment) -> list[tuple[int, bytes]]:
    """The (kind, value) pairs PROTOCOL.md says ``seg`` carries, in encoder order."""
    out = []
    if seg.mss is not None:
        out.append((2, seg.mss.to_bytes(2, "big")))
    if seg.wscale is not None:
        out.append((3, bytes([seg.wscale])))
    if seg.sack_permitted:
        out.append((4, b""))
    if seg.sack:
        out.append((5, b"".join(lo.to_bytes(4, "big") + hi.to_bytes(4, "big")
                                for lo, hi in seg.sack)))
    if seg.file_size is not None:
        out.append((254, EXID.to_bytes(2, "big") + seg.file_size.to_bytes(8, "big")))
    if seg.digest is not None:
        out.append((254, EXID.to_bytes(2, "big") + seg.digest))
    return out


@given(fitting_segments())
@SETTINGS
def test_dpkt_parses_what_we_encode(seg):
    raw = encode(seg)
    t = dpkt.tcp.TCP(raw)
    assert t.sport == seg.src_port and t.dport == seg.dst_port
    assert t.seq == seg.seq and t.ack == seg.ack
    assert t.flags == seg.flags
    assert t.win == seg.window
    assert t.off == 5 + padded(options_len(seg)) // 4
    assert t.data == bytes(seg.payload)
    assert t.urp == 0
    parsed = [o for o in dpkt.tcp.parse_opts(t.opts) if o[0] not in (0, 1)]
    assert parsed == our_options(seg)
    # the checksum dpkt reads is the one that makes the segment sum to -0
    assert internet_checksum(raw[:16] + b"\0\0" + raw[18:]) == t.sum


@st.composite
def dpkt_segments(draw):
    opts = b""
    mss = draw(st.none() | U16)
    wscale = draw(st.none() | st.integers(0, 14))
    sack_ok = draw(st.booleans())
    sack = draw(st.lists(st.tuples(U32, U32), max_size=3).map(tuple))
    if mss is not None:
        opts += b"\x01" + bytes([2, 4]) + mss.to_bytes(2, "big")  # with a NOP before it
    if wscale is not None:
        opts += bytes([3, 3, wscale])
    if sack_ok:
        opts += bytes([4, 2])
    if sack:
        opts += b"\x01\x01" + bytes([5, 2 + 8 * len(sack)]) + b"".join(
            lo.to_bytes(4, "big") + hi.to_bytes(4, "big") for lo, hi in sack)
    assume(len(opts) <= 40)
    opts += b"\x00" * (-len(opts) % 4)
    t = dpkt.tcp.TCP(
        sport=draw(U16), dport=draw(U16), seq=draw(U32), ack=draw(U32),
        flags=draw(st.integers(0, 0x1F)), win=draw(U16), sum=0, urp=0,
        opts=opts, data=draw(st.binary(max_size=1500)),
    )
    t.off = 5 + len(opts) // 4
    t.sum = internet_checksum(bytes(t))
    return t, mss, wscale, sack_ok, sack


@given(dpkt_segments())
@SETTINGS
def test_we_decode_what_dpkt_builds(case):
    t, mss, wscale, sack_ok, sack = case
    seg = decode(bytes(t))
    assert seg.src_port == t.sport and seg.dst_port == t.dport
    assert seg.seq == t.seq and seg.ack == t.ack
    assert seg.flags == t.flags and seg.window == t.win
    assert seg.payload == t.data
    assert seg.mss == mss and seg.wscale == wscale
    assert seg.sack_permitted == sack_ok
    assert seg.sack == sack
    assert seg.file_size is None and seg.digest is None


@given(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF),
       st.integers(0, 0xFFFFFFFF), st.sampled_from([ACK, ACK | PSH]), st.integers(0, 0xFFFF),
       st.binary(min_size=1, max_size=64), st.integers(0, 0xFFFFFFFF),
       st.integers(0, 0xFFFFFFFF))
def test_data_header_with_timestamps_is_encodes_header(src, dst, seq, ack, flags, window,
                                                       payload, val, ecr):
    """The sender's fast path (data_header with ts_fields made once per
    batch) writes the bytes encode() writes for the same segment."""
    from common.checksum import ones_residue
    from common.segment import data_header, ts_fields

    seg = Segment(seq=seq, ack=ack, flags=flags, window=window, payload=payload,
                  src_port=src, dst_port=dst, ts_val=val, ts_ecr=ecr)
    assert data_header(src, dst, seq, ack, flags, window, ones_residue(payload),
                       ts_fields(val, ecr)) == encode_header(seg)


@given(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), st.integers(0, 2**32 - 1),
       st.integers(0, 2**32 - 1), st.sampled_from([ACK, ACK | FIN, ACK | RST, ACK | PSH]),
       st.integers(0, 0xFFFF), st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1))
def test_a_pure_ack_with_timestamps_encodes_as_the_general_path_does(
        src, dst, seq, ack, flags, window, ts_val, ts_ecr):
    """encode() packs a header-only segment whose only option is the
    timestamps in one call (every in-order ACK): the bytes are those of
    the general path, checksum included, and decode() gives the segment back."""
    seg = Segment(seq, ack, flags, window, b"", src, dst, ts_val=ts_val, ts_ecr=ts_ecr)
    assert encode(seg) == encode_header(seg)
    assert decode(encode(seg)) == seg
    # the next ACK of a burst: the same timestamps (encode reuses their option)
    nxt = Segment(seq, (ack + 2880) & 0xFFFFFFFF, ACK, window ^ 1, b"", src, dst,
                  ts_val=ts_val, ts_ecr=ts_ecr)
    assert encode(nxt) == encode_header(nxt)
    other = Segment(seq, ack, ACK, window, b"", src, dst, ts_val=ts_val ^ 1, ts_ecr=ts_ecr)
    assert encode(other) == encode_header(other)
