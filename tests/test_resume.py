"""Resuming an interrupted transfer (docs/PROTOCOL.md §9, "Resume"): the
options on the wire, the receiver's rule when the answer is missing, and
both cores on tests/sim.py's fake clock, with the handshake's segments lost."""

from __future__ import annotations

import hashlib

import pytest

from common.receiver_core import ReceiverCore, ReceiverState
from common.resume import decide, prefix_tag
from common.segment import ACK, SYN, Segment, SegmentError, decode, encode
from common.sender_core import SenderCore
from tests.sim import Channel, run_transfer

pytestmark = pytest.mark.timeout(60)

DATA = bytes(range(251)) * 400  # 100400 bytes, no period of a segment's length


def test_offer_and_answer_round_trip():
    synack = Segment(seq=9, ack=10, flags=SYN | ACK, mss=1452, wscale=7,
                     sack_permitted=True, name_follows=True, ts_val=1, ts_ecr=2,
                     resume_offer=((1 << 40) - 1, b"abcdef"))
    raw = encode(synack)
    assert len(raw) == 20 + 40  # the offer fills the SYN-ACK's option space exactly
    got = decode(raw)
    assert got.resume_offer == ((1 << 40) - 1, b"abcdef") and got.name_follows
    assert got.ts_val == 1 and got.mss == 1452 and got.resume_at is None
    ack = decode(encode(Segment(seq=1, ack=2, flags=ACK, ts_val=3, resume_at=12345)))
    assert ack.resume_at == 12345 and ack.resume_offer is None


@pytest.mark.parametrize("length", [4, 5, 8, 10, 14, 16])
def test_resume_option_of_another_length_is_malformed(length):
    opt = bytes((253, length, 0x52, 0x53)) + bytes(length - 4)
    opt += bytes(-len(opt) % 4)
    raw = bytearray(encode(Segment(seq=1, flags=ACK)))
    raw[12] = ((20 + len(opt)) // 4) << 4
    raw = bytes(raw) + opt
    # (checksum put right so that only the option is wrong)
    from common.checksum import checksum_from_residue, ones_residue
    raw = bytearray(raw)
    raw[16:18] = b"\0\0"
    raw[16:18] = checksum_from_residue(ones_residue(bytes(raw))).to_bytes(2, "big")
    with pytest.raises(SegmentError, match="resume option"):
        decode(bytes(raw))


def test_offer_out_of_range_refused():
    with pytest.raises(SegmentError):
        encode(Segment(flags=SYN | ACK, resume_offer=(1 << 40, b"abcdef")))
    with pytest.raises(SegmentError):
        encode(Segment(flags=SYN | ACK, resume_offer=(5, b"abc")))


@pytest.mark.parametrize("seg, expected", [
    (Segment(seq=100, resume_at=500), 500),      # the answer: resumed
    (Segment(seq=100, resume_at=0), 0),          # the answer: sent whole
    (Segment(seq=600, resume_at=7), 0),          # a wrong answer: start over
    (Segment(seq=100), 0),                       # byte 0, no answer: an old sender
    (Segment(seq=599), 0),                       # before N: a resumer never sends there
    (Segment(seq=600), None),                    # at N, no answer: cannot tell
    (Segment(seq=5000), None),                   # past N: cannot tell
])
def test_decide(seg, expected):
    assert decide(seg, base=100, held=500) == expected


def _check_whole(res, data):
    assert res.renamed and res.output == data
    assert res.receiver.state == ReceiverState.DONE


@pytest.mark.parametrize("fraction", [0.3, 0.6, 0.99, 1.0])
def test_resumed_from_the_prefix(fraction):
    n = int(len(DATA) * fraction)
    res = run_transfer(DATA, held=DATA[:n], resume=True, mss=1000)
    _check_whole(res, DATA)
    assert res.sender.handshake.resume_at == n and res.receiver.resume_at == n
    sent = sum(len(decode(raw).payload) for to, raw in res.sent_wire if to == "r")
    assert sent == len(DATA) - n  # not one byte of the prefix went again


def test_changed_prefix_sent_whole():
    held = bytearray(DATA[:40000])
    held[12345] ^= 1
    res = run_transfer(DATA, held=bytes(held), resume=True, mss=1000)
    _check_whole(res, DATA)
    assert res.sender.handshake.resume_at == 0 and res.receiver.resume_at == 0


def test_longer_prefix_than_the_file_not_offered():
    res = run_transfer(DATA[:5000], held=DATA[:9000], resume=True, mss=1000)
    _check_whole(res, DATA[:5000])
    assert res.sender.handshake.resume_at is None and res.receiver.resume_at == 0


def test_sender_without_resume_answers_zero():
    res = run_transfer(DATA, held=DATA[:50000], resume=False, mss=1000)
    _check_whole(res, DATA)
    assert res.sender.handshake.resume_at == 0 and res.receiver.resume_at == 0


@pytest.mark.parametrize("resume", [True, False])
@pytest.mark.parametrize("drops", [{2}, {3}, {2, 3}, {1, 2, 3, 4}])
def test_handshake_losses(resume, drops):
    """Datagram 1 to the receiver is the SYN, 2 the ACK with the answer,
    then data; datagram 1 to the sender is the SYN-ACK.  With the answer
    lost, the receiver cannot take data at N or beyond: it sends its SYN-ACK
    again, and the sender answers again."""
    n = 30000
    res = run_transfer(DATA, held=DATA[:n], resume=resume, mss=1000, seed=5,
                       forward=Channel(drop_list=frozenset(drops)),
                       backward=Channel(drop_list=frozenset({1} & drops)))
    _check_whole(res, DATA)
    assert res.receiver.resume_at == res.sender.handshake.resume_at == (n if resume else 0)
    synacks = sum(1 for to, raw in res.sent_wire if to == "s" and decode(raw).flags & SYN)
    assert synacks <= 3  # (sent again once a round trip, not once a segment)


@pytest.mark.parametrize("seed", range(4))
def test_lossy_link(seed):
    n = 61000
    res = run_transfer(DATA, held=DATA[:n], resume=True, mss=1000, seed=seed,
                       forward=Channel(loss=0.15, dup=0.05, jitter=0.02),
                       backward=Channel(loss=0.15))
    _check_whole(res, DATA)
    assert res.receiver.resume_at == n


def test_with_a_name():
    n = 20000
    res = run_transfer(DATA, held=DATA[:n], resume=True, mss=1000, name=b"f.bin")
    _check_whole(res, DATA)
    assert res.sender.base == (12345 + 1 + 5 + n) and res.receiver.resume_at == n


def test_old_sender_data_at_zero_starts_over():
    """A sender that does not know the option (no answer, data from byte 0)."""
    rcv = ReceiverCore(isn=7, mss=1000, resume_offer=(3000, prefix_tag(DATA[:3000])))
    rcv.on_segment(Segment(seq=100, flags=SYN, mss=1000, file_size=len(DATA)), 0.0)
    synack = rcv.outbox.pop()
    assert synack.resume_offer == (3000, prefix_tag(DATA[:3000]))
    # the third ACK lost; the first data segment, at byte 0, no answer
    rcv.on_segment(Segment(seq=101, ack=8, flags=ACK, payload=DATA[:1000]), 0.1)
    assert rcv.resume_at == 0 and rcv.state == ReceiverState.ESTABLISHED
    assert rcv.rcv_nxt == 1000 and b"".join(rcv.deliver) == DATA[:1000]


def test_data_past_the_offer_without_answer_draws_the_synack():
    rcv = ReceiverCore(isn=7, mss=1000, resume_offer=(3000, prefix_tag(DATA[:3000])))
    rcv.on_segment(Segment(seq=100, flags=SYN, mss=1000, file_size=len(DATA)), 0.0)
    synack = rcv.outbox.pop()
    rcv.on_segment(Segment(seq=101 + 3000, ack=8, flags=ACK, payload=DATA[3000:4000]), 0.1)
    assert rcv.resume_at is None and rcv.state == ReceiverState.SYN_RECEIVED
    assert rcv.outbox == [synack] and not rcv.deliver


def test_sender_refuses_when_the_tag_differs():
    snd = SenderCore(isn=100, file_size=len(DATA), mss=1000)
    snd.handshake.resume_check = lambda n, tag: prefix_tag(DATA[:n]) == tag
    snd.start(0.0)
    snd.outbox.clear()
    snd.on_segment(Segment(seq=7, ack=101, flags=SYN | ACK, mss=1000,
                           resume_offer=(3000, hashlib.sha256(b"other").digest()[:6])), 0.1)
    ack = snd.outbox.pop()
    assert ack.resume_at == 0 and ack.seq == 101 and snd.file_size == len(DATA)


def test_sender_resumes_when_the_tag_matches():
    snd = SenderCore(isn=100, file_size=len(DATA), mss=1000)
    snd.handshake.resume_check = lambda n, tag: prefix_tag(DATA[:n]) == tag
    snd.start(0.0)
    snd.outbox.clear()
    snd.on_segment(Segment(seq=7, ack=101, flags=SYN | ACK, mss=1000,
                           resume_offer=(3000, prefix_tag(DATA[:3000]))), 0.1)
    ack = snd.outbox.pop()
    assert ack.resume_at == 3000 and ack.seq == 101 + 3000
    assert snd.file_size == len(DATA) - 3000
