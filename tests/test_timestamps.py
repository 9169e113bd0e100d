"""TCP timestamps, RFC 7323 (issue 24, item 13).

With ``gbn`` and loss on both paths almost every segment is resent, Karn's
rule leaves almost no RTT samples, and the RTO sits at its ceiling: the lab
"GBN vs SR as loss grows" showed the timer, not the protocol.  With
timestamps an ACK's echo times a resend too.  Fake clock (tests/sim.py)
and the cores; a peer that offers no timestamps gets none.
"""

from __future__ import annotations

import random

import pytest
from sim import Channel, run_transfer

from common.receiver_core import ReceiverCore
from common.segment import ACK, SYN, Segment, decode, encode
from common.sender_core import SenderCore
from common.timestamps import OPTION_LEN, ts_now

pytestmark = pytest.mark.timeout(120)

DATA = random.Random(13).randbytes(200_000)
#: 50 ms each way and up to 10 ms of jitter: the path's RTT is 100-120 ms
DELAY, JITTER = 0.05, 0.01


def gbn_lossy(seed: int, timestamps: tuple[bool, bool]):
    return run_transfer(DATA, mode="gbn", window=32 * 1024, mss=1000, seed=seed,
                        forward=Channel(loss=0.2, delay=DELAY, jitter=JITTER),
                        backward=Channel(loss=0.2, delay=DELAY, jitter=JITTER),
                        timestamps=timestamps, min_rto=0.2, give_up=60.0, retries=30,
                        time_limit=3000.0)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_gbn_at_20_percent_loss_both_ways_keeps_srtt_near_the_path_rtt(seed):
    on = gbn_lossy(seed, (True, True))
    assert on.output == DATA and on.sender.delivered and on.sender.ts_ok
    srtts = [f["srtt"] for _, ev, f in on.sender.events if ev == "rtt"]
    # every SRTT after the first few samples within 2x of the path's RTT
    # (never below its fixed part: no sample can be shorter)
    assert all(2 * DELAY <= s <= 2 * (2 * DELAY + JITTER) for s in srtts[5:]), srtts
    # an RTT sample from (nearly) every ACK that moved the window on
    assert on.sender.rtt.samples >= 100
    # without them (the receiver does not take them up): Karn's rule leaves
    # a handful of samples, the RTO backs off to its ceiling, and the
    # transfer takes several times as long
    off = gbn_lossy(seed, (True, False))
    assert off.output == DATA and not off.sender.ts_ok
    assert off.sender.rtt.samples * 10 < on.sender.rtt.samples
    assert off.now > 3 * on.now


@pytest.mark.parametrize("timestamps", [(True, False), (False, True)])
def test_a_peer_without_timestamps_gets_none(timestamps):
    """Interop with a peer following only the original rules: no timestamps
    offered (or not taken up): none used, whole-MSS payloads."""
    r = run_transfer(DATA[:50_000], mss=1000, timestamps=timestamps,
                     forward=Channel(loss=0.05), backward=Channel(loss=0.05), seed=4)
    assert r.output == DATA[:50_000]
    assert not r.sender.ts_ok and not r.receiver.ts_ok
    segs = [decode(raw) for _, raw in r.sent_wire]
    # at most the sender's SYN offers them; nothing after it carries them
    assert all(s.ts_val is None for s in segs if not s.flags & SYN or s.flags & ACK)
    assert r.sender.eff_mss == 1000


def test_on_both_ends_every_segment_but_the_fin_carries_them():
    r = run_transfer(DATA[:50_000], mss=1000, forward=Channel(loss=0.05),
                     backward=Channel(loss=0.05), seed=5)
    assert r.output == DATA[:50_000] and r.sender.ts_ok and r.receiver.ts_ok
    # a segment's payload gives the option its 12 bytes (RFC 6691)
    assert r.sender.eff_mss == 1000 - OPTION_LEN
    segs = [decode(raw) for _, raw in r.sent_wire]
    lacking = [s for s in segs if s.ts_val is None]
    # the sender's FIN (its digest takes 36 of the 40 option bytes) and RSTs
    assert all(s.digest is not None for s in lacking), lacking
    assert max(len(s.payload) for s in segs) == 1000 - OPTION_LEN


def test_option_budget():
    """The SYN with every option fits in 40 bytes; beside the timestamps an
    ACK has room for 3 SACK blocks, not 4."""
    syn = Segment(seq=1, flags=SYN, mss=1452, wscale=0, sack_permitted=True,
                  file_size=1 << 40, name_follows=True, ts_val=1, payload=b"name")
    assert len(encode(syn)) - 4 <= 20 + 40
    r = ReceiverCore(isn=500, mss=1000)
    r.on_segment(Segment(seq=99, flags=SYN, window=65535, mss=1000, sack_permitted=True,
                         ts_val=7), 0.0)
    assert r.ts_ok and r.sack_room == 3
    r.on_segment(Segment(seq=100, ack=501, flags=ACK, window=65535, ts_val=8), 0.01)
    for k in (1, 3, 5, 7, 9):  # five holes' worth of out-of-order pieces
        r.on_segment(Segment(seq=100 + k * 100, ack=501, flags=ACK, window=65535,
                             payload=b"x" * 100, ts_val=9), 0.02)
    ack = r.make_ack(0.03)
    assert len(ack.sack) == 3 and len(encode(ack)) <= 60


def _open_receiver():
    r = ReceiverCore(isn=500, mss=1000)
    r.on_segment(Segment(seq=99, flags=SYN, window=65535, mss=1000, ts_val=1000), 0.0)
    (synack,) = r.outbox
    assert (synack.ts_ecr, synack.ts_val) == (1000, ts_now(0.0))
    r.on_segment(Segment(seq=100, ack=501, flags=ACK, window=65535, ts_val=1001), 0.01)
    r.outbox.clear()
    return r


def _data(off: int, ts: int) -> Segment:
    return Segment(seq=100 + off, ack=501, flags=ACK, window=65535, payload=b"d" * 100,
                   ts_val=ts)


def test_the_receiver_echoes_as_rfc_7323_4_3_says():
    r = _open_receiver()
    # two in-order segments, one ACK: it echoes the earlier's TSval
    r.on_segment(_data(0, 2000), 0.1)
    r.on_segment(_data(100, 2001), 0.1)
    assert [a.ts_ecr for a in r.outbox] == [2000]
    r.outbox.clear()
    # out of order (a hole at 200): the duplicate ACK still echoes the
    # segment that last moved the left edge on when the last ACK went
    r.on_segment(_data(300, 2003), 0.2)
    assert [a.ts_ecr for a in r.outbox] == [2000]
    r.outbox.clear()
    # the resend that fills the hole: its own TSval comes back, so the
    # sender times the resend
    r.on_segment(_data(200, 2010), 0.3)
    assert [(a.ack, a.ts_ecr) for a in r.outbox] == [(100 + 400, 2010)]
    r.outbox.clear()
    # an old duplicate never moves TS.Recent back
    r.on_segment(_data(0, 1500), 0.4)
    assert [a.ts_ecr for a in r.outbox] == [2010]


def test_the_sender_times_a_resend_by_its_echo():
    """Karn's rule takes no sample from a resent segment; the echo does."""
    s = SenderCore(isn=99, file_size=300, mss=112, window=1 << 16)
    s.start(0.0)
    (syn,) = [seg for seg, _ in s.take(0.0)]
    assert syn.ts_val == ts_now(0.0)
    # the SYN-ACK echoes the SYN: the handshake's sample comes from it
    s.on_segment(Segment(seq=500, ack=100, flags=SYN | ACK, window=65535, mss=112,
                         sack_permitted=True, ts_val=77, ts_ecr=syn.ts_val), 0.05)
    assert s.ts_ok and s.eff_mss == 100 and s.rtt.samples == 1
    assert s.rtt.srtt == pytest.approx(0.05)
    s.take(0.05)
    s.supply([b"a" * 100, b"b" * 100, b"c" * 100])
    sent = [seg for seg, rec in s.take(0.06) if rec is not None]
    assert [seg.ts_ecr for seg in sent] == [77] * 3
    # the first is lost, the other two SACKed (an RTT sample of 0.14 s)
    s.on_segment(Segment(seq=501, ack=100, flags=ACK, window=65535, sack=((200, 400),),
                         ts_val=78, ts_ecr=sent[0].ts_val), 0.2)
    assert s.rtt.sample_max == pytest.approx(0.14)
    # its timer fires and it goes again
    while True:
        dl = s.next_deadline()
        s.on_timer(dl)
        resent = [seg for seg, rec in s.take(dl) if rec is not None]
        if resent:
            break
    assert [seg.seq for seg in resent] == [100]
    samples = s.rtt.samples
    # the ACK of everything echoes the resend's TSval: a sample of 0.3 s,
    # which Karn's rule would not have taken
    s.on_segment(Segment(seq=501, ack=400, flags=ACK, window=65535, ts_val=79,
                         ts_ecr=resent[0].ts_val), dl + 0.3)
    assert s.rtt.samples == samples + 1
    assert s.rtt.sample_max == pytest.approx(0.3, abs=1e-5)


@pytest.mark.parametrize("args,taken", [([], True), (["--no-timestamps"], False)])
def test_stcp_serve_takes_them_up_unless_told_not_to(tmp_path, args, taken):
    from serve_support import RawPeer, start_server

    from harness.procs import Group

    out = tmp_path / "inbox"
    out.mkdir()
    with Group(tmp_path) as group:
        _, port = start_server(group, out, args)
        with RawPeer(port) as peer:
            peer.send(Segment(seq=peer.isn, flags=SYN, window=65535, mss=1452, wscale=0,
                              sack_permitted=True, file_size=10, ts_val=4242))
            synack = peer.recv()
    assert synack is not None and synack.flags & (SYN | ACK) == SYN | ACK
    assert (synack.ts_val is not None) == taken
    assert synack.ts_ecr == (4242 if taken else 0)


@pytest.mark.parametrize("receiver_args,row", [
    ([], "on (RFC 7323"),
    (["--no-timestamps"], "off: the receiver did not take them up"),
])
def test_the_sender_summary_says_whether_they_were_used(link, tmp_path, receiver_args, row):
    from support import make_file

    src = make_file(tmp_path / "in.bin", 50_000)
    dst = tmp_path / "out.bin"
    s, r = link.transfer(src, dst, receiver_args=receiver_args)
    assert (s.popen.returncode, r.popen.returncode) == (0, 0), link.describe()
    line = next(ln for ln in s.stdout.splitlines() if ln.strip().startswith("timestamps"))
    assert row in line, s.stdout
