"""common.checksum against a schoolbook RFC 1071 loop, and single-bit error detection.

The reference below adds 16-bit big-endian words one at a time with an
end-around carry, the way RFC 1071 §4.1's C fragment does, so it shares no
trick (big integers, modulo 0xFFFF) with the code under test.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.checksum import checksum_from_residue, internet_checksum, ones_residue, verify
from common.segment import ACK, FIN, PSH, SYN, Segment, SegmentError, decode, encode

# --- the reference -----------------------------------------------------------

def ref_sum(data: bytes) -> int:
    """Ones' complement sum of 16-bit words with end-around carry, 0..0xFFFF."""
    if len(data) % 2:
        data = bytes(data) + b"\x00"
    total = 0
    for i in range(0, len(data), 2):
        total += (data[i] << 8) | data[i + 1]
        if total > 0xFFFF:
            total = (total & 0xFFFF) + 1
    return total


def ref_checksum(data: bytes) -> int:
    return ~ref_sum(data) & 0xFFFF


def same_sum(residue: int, folded: int) -> bool:
    """A residue (0..0xFFFE) names the same ones' complement value as a folded sum,
    where 0xFFFF (negative zero) and 0 are both zero modulo 0xFFFF."""
    return residue % 0xFFFF == folded % 0xFFFF


def lengths():
    return [0, 1, 2, 3, 4, 5, 19, 20, 21, 39, 40, 63, 64, 255, 256, 1452, 1453, 1472, 1500, 4097]


# --- RFC 1071 §3 -------------------------------------------------------------

def test_rfc1071_worked_example():
    data = bytes.fromhex("0001f203f4f5f6f7")
    assert ref_sum(data) == 0xDDF2  # the reference agrees with the RFC first
    assert ones_residue(data) == 0xDDF2
    assert internet_checksum(data) == 0x220D
    assert checksum_from_residue(0xDDF2) == 0x220D
    # Appending the checksum makes the whole thing verify.
    assert verify(data + (0x220D).to_bytes(2, "big"))
    assert not verify(data + (0x220E).to_bytes(2, "big"))


def test_rfc1071_example_any_word_order():
    """The sum is independent of byte-pair order (RFC 1071 §2 (B), commutativity)."""
    words = [bytes.fromhex(w) for w in ("0001", "f203", "f4f5", "f6f7")]
    rng = random.Random(7)
    for _ in range(10):
        rng.shuffle(words)
        assert internet_checksum(b"".join(words)) == 0x220D


# --- against the reference ---------------------------------------------------

@pytest.mark.parametrize("n", lengths())
def test_random_data_matches_reference(n):
    rng = random.Random(n * 7919 + 1)
    for _ in range(20):
        data = bytes(rng.randrange(256) for _ in range(n))
        assert internet_checksum(data) == ref_checksum(data), (n, data.hex())
        assert same_sum(ones_residue(data), ref_sum(data))
        assert 0 <= ones_residue(data) <= 0xFFFE


@pytest.mark.parametrize("n", lengths())
def test_all_zero(n):
    data = bytes(n)
    assert ref_checksum(data) == 0xFFFF
    assert internet_checksum(data) == 0xFFFF
    assert ones_residue(data) == 0
    # A zero checksum field on all-zero data does not make it "verify": the sum is +0.
    assert not verify(data)


@pytest.mark.parametrize("n", lengths())
def test_all_ff(n):
    data = b"\xff" * n
    if n == 0:
        assert internet_checksum(data) == 0xFFFF
        return
    # Sum is 0xFFFF (negative zero) for any whole word of ones; an odd tail
    # 0xFF00 added to -0 gives 0xFF00.
    assert internet_checksum(data) == ref_checksum(data), n
    assert same_sum(ones_residue(data), ref_sum(data))
    if n % 2 == 0:
        assert internet_checksum(data) == 0
        assert verify(data)


def test_empty():
    assert ones_residue(b"") == 0
    assert internet_checksum(b"") == 0xFFFF
    assert not verify(b"")


@given(st.binary(max_size=3000))
@settings(max_examples=400)
def test_property_matches_reference(data):
    assert internet_checksum(data) == ref_checksum(data)
    assert same_sum(ones_residue(data), ref_sum(data))


@given(st.binary(max_size=600))
@settings(max_examples=300)
def test_property_inserting_checksum_verifies(data):
    """Data with an even length followed by its checksum sums to -0."""
    if len(data) % 2:
        data += b"\x00"
    c = internet_checksum(data)
    assert verify(data + c.to_bytes(2, "big"))
    assert ref_sum(data + c.to_bytes(2, "big")) == 0xFFFF


@given(st.binary(max_size=400), st.sampled_from([bytes, bytearray, memoryview]))
def test_accepts_buffer_types(data, kind):
    assert internet_checksum(kind(data)) == ref_checksum(data)
    assert ones_residue(kind(data)) == ones_residue(data)


# --- residues of pieces add up ------------------------------------------------

@given(st.lists(st.binary(max_size=200), min_size=1, max_size=6), st.binary(max_size=300))
@settings(max_examples=300)
def test_property_residues_of_even_pieces_add_up(pieces, last):
    pieces = [p if len(p) % 2 == 0 else p + b"\x5a" for p in pieces]
    whole = b"".join(pieces) + last
    total = sum(ones_residue(p) for p in pieces) + ones_residue(last)
    assert total % 0xFFFF == ones_residue(whole)
    assert checksum_from_residue(total, any(whole)) == internet_checksum(whole)


@given(st.binary(min_size=20, max_size=60), st.binary(max_size=1500))
def test_property_header_plus_payload(header, payload):
    header = header[: len(header) - len(header) % 2]
    whole = header + payload
    total = ones_residue(header) + ones_residue(payload)
    assert checksum_from_residue(total, any(whole)) == ref_checksum(whole)


def test_odd_piece_does_not_add_up():
    """Why only the last piece may be odd: an odd piece shifts the next one's bytes."""
    a, b = b"\x01", b"\x02\x03"
    assert (ones_residue(a) + ones_residue(b)) % 0xFFFF != ones_residue(a + b)


def test_checksum_from_residue_zero_cases():
    assert checksum_from_residue(0, nonzero=True) == 0
    assert checksum_from_residue(0, nonzero=False) == 0xFFFF
    assert checksum_from_residue(0xFFFF) == 0  # reduced modulo 0xFFFF first
    assert checksum_from_residue(1) == 0xFFFE


# --- every single-bit error is caught -------------------------------------------

def sample_segments() -> list[Segment]:
    return [
        Segment(seq=1, ack=0, flags=SYN, window=0xFFFF, src_port=4000, dst_port=5000,
                mss=1452, wscale=0, sack_permitted=True, file_size=123456),
        Segment(seq=0xFFFFFFFE, ack=12345, flags=ACK | PSH, window=512,
                payload=bytes(range(37)), src_port=1, dst_port=65535),
        Segment(seq=99, ack=0xDEADBEEF, flags=ACK, window=0, sack=((1, 2), (3000, 4000))),
        Segment(seq=7, ack=8, flags=FIN | ACK, window=10, digest=bytes(range(32))),
        Segment(),  # all-zero fields: the data offset is the only non-zero header byte
    ]


def flip(raw: bytes, bit: int) -> bytes:
    b = bytearray(raw)
    b[bit // 8] ^= 0x80 >> (bit % 8)
    return bytes(b)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("seg", sample_segments(), ids=lambda s: s.describe())
def test_every_single_bit_flip_is_caught(seg):
    raw = encode(seg)
    decode(raw)  # the original is good
    reasons = set()
    for bit in range(len(raw) * 8):
        with pytest.raises(SegmentError) as info:
            decode(flip(raw, bit))
        reasons.add(info.value.reason)
        # and the plain reference agrees the sum is broken
        assert ref_sum(flip(raw, bit)) != 0xFFFF
    assert "checksum" in reasons


@st.composite
def segments(draw):
    return Segment(
        seq=draw(st.integers(0, 2**32 - 1)),
        ack=draw(st.integers(0, 2**32 - 1)),
        flags=draw(st.integers(0, 0x1F)),
        window=draw(st.integers(0, 0xFFFF)),
        payload=draw(st.binary(max_size=300)),
        src_port=draw(st.integers(0, 0xFFFF)),
        dst_port=draw(st.integers(0, 0xFFFF)),
        mss=draw(st.none() | st.integers(0, 0xFFFF)),
        wscale=draw(st.none() | st.integers(0, 14)),
        sack_permitted=draw(st.booleans()),
        sack=tuple(draw(st.lists(st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)),
                                 max_size=2))),
    )


@given(segments(), st.data())
@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
def test_property_single_bit_error_caught(seg, data):
    raw = encode(seg)
    assert decode(raw).seq == seg.seq
    bit = data.draw(st.integers(0, len(raw) * 8 - 1), label="bit")
    with pytest.raises(SegmentError) as info:
        decode(flip(raw, bit))
    assert info.value.reason in ("checksum", "offset", "options", "short")
