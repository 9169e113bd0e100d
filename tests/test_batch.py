"""The bulk path (common/batch.py) against the one-segment-at-a-time path.

Whatever the programs do in bulk must come out exactly as the plain codec and
core would have it: the same residues, the same segments (a Run split back
into its pieces), the same drops, the same receiver state and ACKs, the same
bytes on the wire from the sender.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from support import ROOT

from common.batch import Run, chunk_residues, decode_acks, decode_burst, residues
from common.checksum import ones_residue
from common.receiver_core import ReceiverCore
from common.rtt import RttEstimator
from common.segment import (
    ACK,
    FIN,
    PSH,
    RST,
    SYN,
    Segment,
    SegmentError,
    data_header,
    decode,
    encode,
)
from common.sender_core import SenderCore

pytestmark = pytest.mark.timeout(120)
M32 = 0xFFFFFFFF


# --- residues -----------------------------------------------------------------


@given(st.integers(1, 40), st.sampled_from([2, 20, 100, 1452, 1460]), st.data())
@settings(max_examples=150, deadline=None)
def test_residues_match_ones_residue(count, size, data):
    block = data.draw(st.binary(min_size=count * size, max_size=count * size + 50))
    got = residues(block, size, count)
    assert got == [ones_residue(block[i * size:(i + 1) * size]) for i in range(count)]


@given(st.binary(max_size=5000), st.sampled_from([1, 2, 7, 100, 1452, 1453]))
@settings(max_examples=150, deadline=None)
def test_chunk_residues_match_ones_residue(block, size):
    assert chunk_residues(block, size) == [ones_residue(block[i:i + size])
                                           for i in range(0, len(block), size)]


def test_residues_extremes():
    size = 1452
    block = bytes(size) + b"\xff" * size + bytes(size - 2) + b"\x00\x01"
    assert residues(block, size, 3) == [0, 0, 1]
    assert residues(memoryview(block), size, 0) == []
    with pytest.raises(ValueError):
        residues(block, 1451, 2)


# --- decode_burst ---------------------------------------------------------------


def _expand(items) -> list[Segment]:
    out = []
    for item in items:
        out.extend(item.split() if isinstance(item, Run) else [item])
    return out


def _same(a: Segment, b: Segment) -> bool:
    return (a.seq, a.ack, a.flags, a.window, bytes(a.payload), a.src_port, a.dst_port, a.mss,
            a.wscale, a.sack_permitted, a.sack, a.file_size, a.digest, a.ts_val, a.ts_ecr) == (
        b.seq, b.ack, b.flags, b.window, bytes(b.payload), b.src_port, b.dst_port, b.mss,
        b.wscale, b.sack_permitted, b.sack, b.file_size, b.digest, b.ts_val, b.ts_ecr)


def _reference(datagrams: list[bytes]):
    segs, drops = [], []
    for d in datagrams:
        try:
            segs.append(decode(d))
        except SegmentError as exc:
            drops.append((exc.reason, len(d)))
    return segs, drops


#: what one datagram of a burst may be: plain data next in sequence, data out
#: of sequence, data with PSH, a segment with options, a control segment, a
#: corrupted one, garbage
KINDS = ["next", "next", "next", "next", "jump", "psh", "options", "fin", "corrupt", "garbage",
         "other-ack"]


@given(st.lists(st.sampled_from(KINDS), min_size=1, max_size=64),
       st.sampled_from([1, 7, 100, 1452]), st.integers(0, M32), st.booleans(), st.data())
@settings(max_examples=300, deadline=None)
def test_decode_burst_equals_decode(kinds, payload_len, seq0, short_tail, data):
    """Any burst of equal-size datagrams (the last may be shorter), decoded in
    bulk, gives the segments and drops that decoding each one gives."""
    size = 20 + payload_len
    seq = seq0
    datagrams = []
    for i, kind in enumerate(kinds):
        last = i == len(kinds) - 1
        n = payload_len
        if last and short_tail and payload_len > 1:
            n = data.draw(st.integers(1, payload_len - 1))
        payload = os.urandom(n)
        if kind == "jump":
            seq = (seq + 7 * payload_len) & M32
        flags = ACK | PSH if kind == "psh" else ACK
        ack = 777 if kind != "other-ack" else 778
        if kind == "options":
            # 12 option bytes: keep the datagram's size by shortening the payload
            seg = Segment(seq, ack, ACK, 60, b"", 1, 2, sack=((1, 2),))
            raw = encode(seg)
            raw = raw + os.urandom(max(0, 20 + n - len(raw)))
        elif kind == "fin":
            raw = encode(Segment(seq, ack, FIN | ACK, 60, payload, 1, 2))
        elif kind == "garbage":
            raw = os.urandom(20 + n)
        else:
            raw = encode(Segment(seq, ack, flags, 60, payload, 1, 2))
            if kind == "corrupt":
                raw = bytearray(raw)
                raw[data.draw(st.integers(0, len(raw) - 1))] ^= 1 << data.draw(
                    st.integers(0, 7))
                raw = bytes(raw)
        datagrams.append(raw[:20 + n] if len(raw) > 20 + n else raw)
        seq = (seq + n) & M32
    buf = bytearray(b"".join(datagrams)) + os.urandom(30)  # stale bytes past n
    n = sum(map(len, datagrams))
    # the GRO size is the first datagram's; a burst is one size (last shorter)
    datagrams = [bytes(buf[i:min(n, i + size)]) for i in range(0, n, size)]
    items, drops = decode_burst(buf, n, size)
    want_segs, want_drops = _reference(datagrams)
    got = _expand(items)
    assert drops == want_drops
    assert len(got) == len(want_segs)
    assert all(_same(a, b) for a, b in zip(got, want_segs, strict=True))
    for item in items:
        if isinstance(item, Run):
            assert item.count >= 2
            assert len(item.segment.payload) <= item.count * item.size


TS_KINDS = ["next", "next", "next", "psh", "jump", "plain", "corrupt", "other-ts-lead"]


@given(st.lists(st.sampled_from(TS_KINDS), min_size=1, max_size=40),
       st.sampled_from([0, 2, 100, 1440]), st.integers(0, M32), st.data())
@settings(max_examples=200, deadline=None)
def test_decode_burst_with_timestamps_equals_decode(kinds, payload_len, seq0, data):
    """Data segments with RFC 7323 timestamps (32-byte headers) go the bulk
    path too, each piece of a run with its own TSval and TSecr; anything
    else in the burst is decoded one by one, as decode() would."""
    size = 32 + payload_len
    seq = seq0
    datagrams = []
    for kind in kinds:
        if kind == "jump":
            seq = (seq + 3 * payload_len) & M32
        ts = (data.draw(st.integers(0, M32)), data.draw(st.integers(0, M32)))
        if kind == "plain":  # no options: the 12 bytes more of payload
            raw = encode(Segment(seq, 777, ACK, 60, os.urandom(payload_len + 12), 1, 2))
        else:
            raw = encode(Segment(seq, 777, ACK | PSH if kind == "psh" else ACK, 60,
                                 os.urandom(payload_len), 1, 2, ts_val=ts[0], ts_ecr=ts[1]))
        if kind == "other-ts-lead":  # the option behind no NOPs: not ours, one by one
            raw = bytearray(raw)
            raw[20:32] = bytes((8, 10)) + ts[0].to_bytes(4, "big") + ts[1].to_bytes(4, "big") \
                + bytes((1, 1))
            raw[16:18] = b"\0\0"
            raw = bytearray(encode_checksummed(bytes(raw)))
        if kind == "corrupt":
            raw = bytearray(raw)
            raw[data.draw(st.integers(0, len(raw) - 1))] ^= 1
        assert len(raw) == size
        datagrams.append(bytes(raw))
        seq = (seq + payload_len) & M32
    buf = bytearray(b"".join(datagrams))
    items, drops = decode_burst(buf, len(buf), size)
    want_segs, want_drops = _reference(datagrams)
    got = _expand(items)
    assert drops == want_drops
    assert len(got) == len(want_segs)
    assert all(_same(a, b) for a, b in zip(got, want_segs, strict=True))


def encode_checksummed(raw: bytes) -> bytes:
    """``raw`` (checksum field zero) with its Internet checksum filled in."""
    from common.checksum import checksum_from_residue, ones_residue
    csum = checksum_from_residue(ones_residue(raw))
    return raw[:16] + csum.to_bytes(2, "big") + raw[18:]


def test_decode_burst_takes_a_batch_of_acks_one_segment_each():
    """The sender reads the receiver's ACKs in GRO batches (32 bytes each,
    timestamps): each comes out as the segment decode() makes of it, never
    as a Run, duplicates (same numbers, same window) included."""
    acks = [1000, 3880, 3880, 3880, 6760, 9640]
    datagrams = [encode(Segment(77, ack, ACK, 4096, b"", 5, 6, ts_val=500 + i, ts_ecr=42))
                 for i, ack in enumerate(acks)]
    datagrams[2] = encode(Segment(77, 3880, ACK, 4096, b"", 5, 6, ts_val=501, ts_ecr=42))
    buf = bytearray(b"".join(datagrams))
    items, drops = decode_burst(buf, len(buf), 32)
    assert drops == [] and not any(isinstance(x, Run) for x in items)
    assert [x.ack for x in items] == acks
    assert all(_same(a, decode(d)) for a, d in zip(items, datagrams, strict=True))


ACK_KINDS = ["ack", "ack", "ack", "dup", "fin", "rst", "plain", "corrupt", "other-ts-lead",
             "garbage"]


@given(st.lists(st.sampled_from(ACK_KINDS), min_size=1, max_size=64), st.integers(0, M32),
       st.sampled_from([0, 1, 20, 31]), st.data())
@settings(max_examples=300, deadline=None)
def test_decode_acks_equals_decode(kinds, ack0, tail, data):
    """decode_acks (the sender's read of a GRO batch of 32-byte ACKs) gives
    what decode() gives datagram by datagram: the same segments, the same
    drops, in order; a shorter last datagram (``tail`` bytes) included."""
    datagrams = []
    ack = ack0
    for kind in kinds:
        ts = (data.draw(st.integers(0, M32)), data.draw(st.integers(0, M32)))
        ack = ack if kind == "dup" else (ack + 2880) & M32
        flags = {"fin": ACK | FIN, "rst": ACK | RST}.get(kind, ACK)
        if kind == "plain":  # no options: 12 bytes of payload make it 32
            raw = encode(Segment(5, ack, flags, 900, os.urandom(12), 1, 2))
        else:
            raw = encode(Segment(5, ack, flags, 900, b"", 1, 2, ts_val=ts[0], ts_ecr=ts[1]))
        if kind == "other-ts-lead":
            raw = bytearray(raw)
            raw[20:32] = bytes((8, 10)) + ts[0].to_bytes(4, "big") + ts[1].to_bytes(4, "big") \
                + bytes((1, 1))
            raw[16:18] = b"\0\0"
            raw = encode_checksummed(bytes(raw))
        if kind == "corrupt":
            raw = bytearray(raw)
            raw[data.draw(st.integers(0, len(raw) - 1))] ^= 1 << data.draw(st.integers(0, 7))
        if kind == "garbage":
            raw = os.urandom(32)
        assert len(raw) == 32
        datagrams.append(bytes(raw))
    if tail:
        datagrams.append(os.urandom(tail))
    buf = bytearray(b"".join(datagrams) + os.urandom(7))  # (room past n is not read)
    n = len(buf) - 7
    items, drops = decode_acks(buf, n)
    want_segs, want_drops = _reference(datagrams)
    assert drops == want_drops
    assert len(items) == len(want_segs)
    assert all(_same(a, b) for a, b in zip(items, want_segs, strict=True))


def test_decode_burst_coalesces_a_run_with_timestamps():
    payload_len, count = 1440, 10
    data = os.urandom(payload_len * count)
    raw = b"".join(encode(Segment(1000 + i * payload_len, 9, ACK, 512,
                                  data[i * payload_len:(i + 1) * payload_len], 5, 6,
                                  ts_val=100 + i, ts_ecr=7))
                   for i in range(count))
    items, drops = decode_burst(bytearray(raw), len(raw), 32 + payload_len)
    assert drops == [] and len(items) == 1 and isinstance(items[0], Run)
    run = items[0]
    assert run.count == count and run.size == payload_len and run.segment.payload == data
    assert (run.segment.ts_val, run.segment.ts_ecr) == (100, 7)  # the first's
    assert [(p.ts_val, p.ts_ecr) for p in run.split()] == [(100 + i, 7) for i in range(count)]


def test_decode_burst_coalesces_a_plain_run():
    payload_len, count = 1452, 44
    seq0 = M32 - 3000  # the run wraps around 2**32
    data = os.urandom(payload_len * count)
    raw = b"".join(encode(Segment((seq0 + i * payload_len) & M32, 9, ACK, 512,
                                  data[i * payload_len:(i + 1) * payload_len], 5, 6))
                   for i in range(count))
    items, drops = decode_burst(bytearray(raw), len(raw), 20 + payload_len)
    assert drops == []
    assert len(items) == 1 and isinstance(items[0], Run)
    run = items[0]
    assert run.count == count and run.size == payload_len
    assert run.segment.seq == seq0 and run.segment.payload == data
    assert (run.segment.ack, run.segment.window, run.segment.flags) == (9, 512, ACK)


def test_decode_burst_single_and_empty():
    seg = Segment(5, 6, SYN, 100, b"", 1, 2, mss=1452)
    raw = encode(seg)
    items, drops = decode_burst(bytearray(raw), len(raw), len(raw))
    assert drops == [] and len(items) == 1 and _same(items[0], decode(raw))
    items, drops = decode_burst(bytearray(10), 0, 1)
    assert items == [] and drops == [("short", 0)]


# --- the receiver core: a Run taken as one ---------------------------------------


def _receiver(capacity=1 << 20, ack_per_burst=False, mode="sr"):
    r = ReceiverCore(isn=5000, mode=mode, mss=100, capacity=capacity,
                     rtt=RttEstimator(min_rto=0.2), ack_per_burst=ack_per_burst)
    r.on_segment(Segment(1000, 0, SYN, 0xFFFF, mss=100, wscale=0, sack_permitted=True,
                         file_size=5000), 0.0)
    r.on_segment(Segment(1001, 5001, ACK, 0xFFFF), 0.01)
    r.outbox.clear()
    return r


def _state(r: ReceiverCore):
    r.flush_ack(1.0)
    acks = [encode(s) for s in r.outbox]
    delivered = b"".join(bytes(d) for d in r.deliver)
    return (r.rcv_nxt, r.unwritten, r.right_edge, r.ack_pending, acks, delivered,
            r.stats.as_dict(), r.state)


@pytest.mark.parametrize("before", ["nothing", "hole", "partial"])
def test_run_taken_whole_equals_pieces(before):
    """Where accepts_run says yes, one call with the Run leaves the core as
    its pieces would; where it says no, the caller splits (and so must we)."""
    data = os.urandom(1000)
    piece = 100
    run = Run(Segment(1001, 5001, ACK, 0xFFFF, data[:800], 0, 0), 8, piece)
    whole, split = _receiver(), _receiver()
    for r in (whole, split):
        if before == "hole":
            r.on_segment(Segment(1001 + 900, 5001, ACK, 0xFFFF, data[900:]), 0.5)
        elif before == "partial":
            r.on_segment(Segment(1001, 5001, ACK, 0xFFFF, data[:50]), 0.5)
    accepted = whole.accepts_run(run.segment)
    assert accepted == (before == "nothing")
    if accepted:
        whole.on_segment(run.segment, 0.6, run.count)
    else:
        for p in run.split():
            whole.on_segment(p, 0.6)
    for p in run.split():
        split.on_segment(p, 0.6)
    assert _state(whole) == _state(split)


@settings(max_examples=300, deadline=None)
@given(held=st.lists(st.tuples(st.integers(1, 45), st.integers(1, 4)), max_size=6),
       start=st.integers(1, 45), count=st.integers(2, 12), held_acks=st.integers(0, 7),
       data=st.data())
def test_out_of_order_run_taken_whole_equals_pieces(held, start, count, held_acks, data):
    """Out-of-order data held in blocks (``held``: first piece, pieces), then
    a run past the next byte expected.  Where accepts_run says yes, the core
    ends as the pieces would leave it: the same bytes held, the same
    statistics, and one ACK that says what the pieces' last ACK would say
    (the pieces' earlier ACKs, sent with it at the burst's end, are left
    out).  It says yes exactly when the run overlaps nothing held."""
    piece = 100
    stream = os.urandom(50 * piece)
    whole, split = _receiver(ack_per_burst=True), _receiver(ack_per_burst=True)
    taken = set()
    for first, n in held:
        for k in range(first, min(first + n, 50)):
            taken.add(k)
            seg = Segment(1001 + k * piece, 5001, ACK, 0xFFFF,
                          stream[k * piece:(k + 1) * piece])
            for r in (whole, split):
                r.on_segment(seg, 0.5)
    last = min(start + count, 50)
    count = last - start
    assume(count >= 2)
    tail = data.draw(st.integers(1, piece)) if last == 50 else piece
    payload = stream[start * piece:(last - 1) * piece + tail]
    run = Run(Segment(1001 + start * piece, 5001, ACK, 0xFFFF, payload, 0, 0), count, piece)
    for r in (whole, split):
        r.flush_ack(0.55)
        r.outbox.clear()
        r._held_acks = held_acks
    accepted = whole.accepts_run(run.segment)
    assert accepted == taken.isdisjoint(range(start, last))
    if not accepted:
        return
    whole.on_segment(run.segment, 0.6, run.count)
    for p in run.split():
        split.on_segment(p, 0.6)
    a, b = _state(whole), _state(split)
    assert len(a[4]) == 1 and b[4][-1:] == a[4]
    a[6].pop("acks_sent"), b[6].pop("acks_sent")
    assert a[:4] + a[5:] == b[:4] + b[5:]
    assert whole.ooo_bytes == split.ooo_bytes
    assert list(whole.reassembly.held) == list(split.reassembly.held)
    for r in (whole, split):  # the hole filled: all of it comes out, in order
        r.on_segment(Segment(1001, 5001, ACK, 0xFFFF, stream[:start * piece]), 0.7)
    got = _state(whole)[5]
    assert got == _state(split)[5]
    assert len(got) >= last * piece - piece and stream.startswith(got)


@pytest.mark.parametrize("mode, ack_per_burst", [("gbn", True), ("sr", False)])
def test_out_of_order_run_split_without_sack_or_held_acks(mode, ack_per_burst):
    """Without SACK, or with every out-of-order arrival acknowledged at once,
    each piece draws its own ACK: the run is split."""
    r = _receiver(ack_per_burst=ack_per_burst, mode=mode)
    assert not r.accepts_run(Segment(1001 + 200, 5001, ACK, 0xFFFF, os.urandom(300)))
    assert r.accepts_run(Segment(1001, 5001, ACK, 0xFFFF, os.urandom(300)))


def test_accepts_run_refuses_past_the_window():
    r = _receiver(capacity=500)
    seg = Segment(1001, 5001, ACK, 0xFFFF, os.urandom(600))
    assert not r.accepts_run(seg)
    assert r.accepts_run(Segment(1001, 5001, ACK, 0xFFFF, os.urandom(500)))


# --- the sender: headers from the record ------------------------------------------


@pytest.mark.parametrize("ts", [False, True])  # RFC 7323 timestamps on: 32-byte headers
@pytest.mark.parametrize("size", [1000, 1452 * 3 + 17])
def test_sender_headers_from_records_equal_encoded_segments(size, ts):
    """take(segments=False) on chunks supplied with their residues, and
    data_header() from the record, give the bytes that encode(take()'s
    segment) gives."""
    data = os.urandom(size)
    mss = 1452 if size > 1000 else 100
    cores = []
    for _ in range(2):
        c = SenderCore(isn=M32 - 50, file_size=size, mss=mss, window=1 << 20)
        c.start(0.0)
        c.take(0.0)
        c.on_segment(Segment(77, (M32 - 49) & M32, SYN | ACK, 0xFFFF, mss=mss, wscale=0,
                             sack_permitted=True, ts_val=4242 if ts else None), 0.01)
        c.take(0.01)
        cores.append(c)
    chunks = [memoryview(data)[i:i + mss] for i in range(0, size, mss)]
    cores[0].supply(chunks)
    cores[1].supply(chunks, chunk_residues(data, mss))
    for c in cores:
        c.end_of_stream(b"d" * 32)
    plain = cores[0].take(0.02)
    bulk = cores[1].take(0.02, segments=False)
    assert not cores[1].queue
    src, dst, base, ack, window, end, ts = cores[1].data_header_fields()
    assert len(plain) == len(bulk)
    for (seg, rec), (none, brec) in zip(plain, bulk, strict=True):
        if rec.fin:
            assert none is not None and encode(none) == encode(seg)
            continue
        assert none is None
        header = data_header(src, dst, (base + brec.off) & M32, ack,
                             ACK | PSH if brec.end == end else ACK, window, brec.residue, ts)
        assert header + bytes(brec.payload) == encode(seg)
    assert any(seg.flags & PSH for seg, _ in plain)
    assert (ts is not None) == (plain[0][0].ts_val is not None) == cores[1].ts_ok


def _blocks(ack: Segment) -> list[tuple[int, int]]:
    """An ACK's SACK blocks as byte offsets of the stream (the ISN is 1000)."""
    return [(left - 1001, right - 1001) for left, right in ack.sack]


def _piece(stream: bytes, k: int) -> Segment:
    return Segment(1001 + k * 100, 5001, ACK, 0xFFFF, stream[k * 100:(k + 1) * 100])


def test_every_block_a_burst_changes_is_reported():
    """RFC 2018 says the newest blocks; one ACK holds four.  With ACKs held
    to the burst's end, the fifth block changed in a burst must not push an
    earlier one out unreported: the ACK goes when the fourth has changed."""
    stream = os.urandom(5000)
    r = _receiver(ack_per_burst=True)
    for k in (2, 4, 6, 8):
        r.on_segment(_piece(stream, k), 0.1)
    assert len(r.outbox) == 1  # four blocks changed, fewer than ACK_EVERY arrivals
    assert sorted(_blocks(r.outbox[0])) == [(200, 300), (400, 500), (600, 700), (800, 900)]
    r.on_segment(_piece(stream, 10), 0.1)
    r.flush_ack(0.1)
    assert len(r.outbox) == 2 and _blocks(r.outbox[1])[0] == (1000, 1100)


@pytest.mark.parametrize("as_run", [True, False], ids=["run", "pieces"])
def test_a_run_into_one_block_does_not_hide_the_block_changed_before_it(as_run):
    """Arrivals into one block count once among the recent ones, whether they
    come as a run or one by one: the older block that changed in the same
    burst is still in the ACK, not pushed out by the run's pieces."""
    stream = os.urandom(5000)
    r = _receiver(ack_per_burst=True)
    for k in (2, 10, 20, 30, 40):  # five blocks, reported over time
        r.on_segment(_piece(stream, k), 0.1)
    r.flush_ack(0.1)
    r.outbox.clear()
    r.on_segment(_piece(stream, 3), 0.2)  # the lowest block grows
    run = Segment(1001 + 4100, 5001, ACK, 0xFFFF, stream[4100:4900])  # the highest one too
    if as_run:
        assert r.accepts_run(run)
        r.on_segment(run, 0.2, 8)
    else:
        for seg in Run(run, 8, 100).split():
            r.on_segment(seg, 0.2)
    r.flush_ack(0.2)
    assert _blocks(r.outbox[-1])[:2] == [(4000, 4900), (200, 400)]


# --- start-up -------------------------------------------------------------------

@pytest.mark.skipif(not os.path.isdir("/proc/self/task") or (os.cpu_count() or 1) < 2,
                    reason="needs Linux's /proc and at least two CPUs")
def test_importing_the_bulk_path_starts_no_blas_workers():
    # numpy's OpenBLAS starts a spinning worker per CPU at import unless
    # OPENBLAS_NUM_THREADS says 1 (common/__init__.py); a user's own setting
    # must not bring them back.
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(os.cpu_count()))
    code = "import os, common.batch; print(len(os.listdir('/proc/self/task')))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, timeout=60,
                         capture_output=True, text=True, check=True).stdout
    assert int(out) == 1
