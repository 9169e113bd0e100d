"""ReceiverCore alone: hand-built segments from a pretend sender, and a fake clock.

Segments both ways go through the codec.  Offsets are stream offsets of the
sender's bytes (byte 0 is the first byte of the file); ``Tx`` turns them into
wire numbers.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.rcv_window import window_shift
from common.receiver_core import ReceiverCore, ReceiverState
from common.rtt import RttEstimator
from common.segment import ACK, FIN, RST, SYN, Segment, decode, encode

ISN_S = 1000
ISN_R = 5000
MSS = 100
M32 = 0xFFFFFFFF

#: every test drives loops on a fake clock; none should take more than a moment
pytestmark = pytest.mark.timeout(60)


def wire(seg: Segment) -> Segment:
    return decode(encode(seg))


class Tx:
    """The pretend sender."""

    def __init__(self, isn_s=ISN_S, isn_r=ISN_R, data=b""):
        self.isn_s = isn_s
        self.isn_r = isn_r
        self.data = data
        self.digest = hashlib.sha256(data).digest()

    def w(self, off: int) -> int:
        return (self.isn_s + 1 + off) & M32

    @property
    def ack_no(self) -> int:
        return (self.isn_r + 1) & M32

    def syn(self, mss=MSS, wscale=0, sack_permitted=True, size="data"):
        return Segment(seq=self.isn_s, flags=SYN, window=0xFFFF, mss=mss, wscale=wscale,
                       sack_permitted=sack_permitted,
                       file_size=len(self.data) if size == "data" else size)

    def third_ack(self):
        return Segment(seq=self.w(0), ack=self.ack_no, flags=ACK, window=0xFFFF)

    def seg(self, off: int, n: int = MSS, ack=None, flags=ACK):
        return Segment(seq=self.w(off), ack=self.ack_no if ack is None else ack, flags=flags,
                       window=0xFFFF, payload=self.data[off:off + n])

    def fin(self, digest=None):
        return Segment(seq=self.w(len(self.data)), ack=self.ack_no, flags=FIN | ACK,
                       window=0xFFFF, digest=self.digest if digest is None else digest)

    def rst(self, seq):
        return Segment(seq=seq & M32, ack=0, flags=RST | ACK)


class Harness:
    def __init__(self, size=1000, *, mode="sr", capacity=1 << 20, isn_s=ISN_S, isn_r=ISN_R,
                 give_up=30.0, retries=10, mss=MSS, size_limit=None, ack_per_burst=False):
        data = bytes((i * 13 + 5) % 256 for i in range(size))
        self.tx = Tx(isn_s, isn_r, data)
        self.r = ReceiverCore(isn=isn_r, mode=mode, mss=mss, capacity=capacity,
                              rtt=RttEstimator(min_rto=0.2), give_up=give_up, retries=retries,
                              size_limit=size_limit, ack_per_burst=ack_per_burst)
        self.now = 0.0
        self.got = bytearray()

    def feed(self, seg: Segment):
        self.r.on_segment(wire(seg), self.now)
        for chunk in self.r.deliver:
            self.got += bytes(chunk)
        self.r.deliver.clear()

    def out(self):
        """What the core sends now, pending ACK included."""
        self.r.flush_ack(self.now)
        segs = [wire(s) for s in self.r.outbox]
        self.r.outbox.clear()
        return segs

    def acks(self):
        """(cumulative offset, window bytes, SACK blocks as offsets) of each ACK sent."""
        res = []
        for s in self.out():
            assert s.flags & ACK
            w0 = self.tx.w(0)
            blocks = tuple(((lo - w0) & M32, (hi - w0) & M32) for lo, hi in s.sack)
            res.append(((s.ack - self.tx.w(0)) & M32, s.window << self.r.rcv_wscale, blocks))
        return res

    def open(self, third=True, **syn):
        self.feed(self.tx.syn(**syn))
        synack = self.out()
        if third:
            self.now += 0.05
            self.feed(self.tx.third_ack())
            self.out()
        return synack

    def advance(self, dt):
        self.now += dt


# --- handshake -------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["sr", "gbn"])
@pytest.mark.parametrize("offer_sack", [True, False])
def test_syn_ack(mode, offer_sack):
    h = Harness(777, mode=mode)
    (sa,) = h.open(third=False, sack_permitted=offer_sack)
    assert sa.flags == SYN | ACK
    assert sa.seq == ISN_R
    assert sa.ack == ISN_S + 1
    assert sa.mss == MSS
    assert sa.wscale is not None
    assert sa.sack_permitted == (mode == "sr" and offer_sack)
    assert h.r.file_size == 777
    assert h.r.state == ReceiverState.SYN_RECEIVED
    assert 0 < sa.window <= 0xFFFF


def test_syn_ack_without_wscale_offer():
    h = Harness(10, capacity=1 << 20)
    h.feed(Segment(seq=ISN_S, flags=SYN, window=0xFFFF, mss=MSS))
    (sa,) = h.out()
    assert sa.wscale is None
    assert h.r.rcv_wscale == 0
    assert sa.window == 0xFFFF


def test_window_scale_fits_capacity():
    assert window_shift(0xFFFF) == 0
    assert window_shift(0x10000) == 1
    assert window_shift(4 << 20) == 7
    assert window_shift(1 << 40) == 14
    h = Harness(10, capacity=4 << 20)
    (sa,) = h.open(third=False, wscale=0)
    assert sa.wscale == 7
    assert sa.window == 0xFFFF  # never scaled in a SYN-ACK


def test_retransmitted_syn_gets_the_same_syn_ack():
    h = Harness(10)
    (first,) = h.open(third=False)
    h.advance(1.0)
    h.feed(h.tx.syn())
    (second,) = h.out()
    assert encode(second) == encode(first)
    assert h.r.state == ReceiverState.SYN_RECEIVED


def test_syn_received_takes_data_as_end_of_handshake():
    h = Harness(300)
    h.open(third=False)
    h.advance(0.05)
    h.feed(h.tx.seg(0))  # the third ACK was lost; the first data segment carries ACK too
    assert h.r.state == ReceiverState.ESTABLISHED
    assert bytes(h.got) == h.tx.data[:100]
    ((ack, _, _),) = h.acks()
    assert ack == 100


def test_syn_received_ignores_segment_with_wrong_ack():
    h = Harness(300)
    h.open(third=False)
    h.feed(h.tx.seg(0, ack=ISN_R + 7))
    assert h.r.state == ReceiverState.SYN_RECEIVED
    assert h.got == b""
    h.feed(h.tx.seg(0, flags=0))  # and one without ACK
    assert h.r.state == ReceiverState.SYN_RECEIVED


def test_listen_ignores_non_syn():
    h = Harness(300)
    h.feed(h.tx.seg(0))
    h.feed(Segment(seq=ISN_S, flags=SYN | ACK))
    assert h.r.state == ReceiverState.LISTEN
    assert h.out() == []


def test_size_limit_refuses_big_file():
    h = Harness(5000, size_limit=4000)
    h.feed(h.tx.syn())
    assert h.r.state == ReceiverState.ABORTED
    assert [s.flags & RST for s in h.out()] == [RST]


# --- data ---------------------------------------------------------------------------------

def test_in_order_delivery_and_delayed_cumulative_ack():
    """RFC 5681 §4.2: an ACK for at least every second segment, at once; the
    ACK of an odd one waits for the end of the burst (flush_ack)."""
    h = Harness(500)
    h.open()
    h.feed(h.tx.seg(0))
    assert h.r.outbox == []  # pending, not yet sent
    h.feed(h.tx.seg(100))
    assert [wire(s).ack for s in h.r.outbox] == [(h.tx.w(0) + 200) & M32]  # the second: at once
    h.r.outbox.clear()
    h.feed(h.tx.seg(200))
    assert h.r.outbox == []
    acks = h.acks()
    assert len(acks) == 1 and acks[0][0] == 300
    assert bytes(h.got) == h.tx.data[:300]


def test_duplicate_is_acked_and_not_delivered_again():
    h = Harness(500)
    h.open()
    h.feed(h.tx.seg(0))
    h.out()
    h.feed(h.tx.seg(0))
    assert [a[0] for a in h.acks()] == [100]
    assert bytes(h.got) == h.tx.data[:100]
    assert h.r.stats.duplicates == 1


def test_overlapping_segment_delivers_only_new_bytes():
    h = Harness(500)
    h.open()
    h.feed(h.tx.seg(0, 150))
    h.feed(h.tx.seg(100, 150))
    assert bytes(h.got) == h.tx.data[:250]


def test_out_of_order_sack_blocks_most_recent_first():
    h = Harness(2000)
    h.open()
    h.feed(h.tx.seg(0))
    h.out()
    expected = []
    for off in (200, 400, 600, 800, 1000):
        h.feed(h.tx.seg(off))
        ((ack, _, blocks),) = h.acks()  # out-of-order data is acknowledged at once
        assert ack == 100
        expected.insert(0, (off, off + 100))
        assert blocks == tuple(expected[:4])
    # filling 300..400 merges [200,300) and [400,500): that block comes first
    h.feed(h.tx.seg(300))
    ((ack, _, blocks),) = h.acks()
    assert blocks[0] == (200, 500)
    assert len(blocks) == 4
    assert set(blocks[1:]) == {(1000, 1100), (800, 900), (600, 700)}
    # filling the first hole delivers through 500
    h.feed(h.tx.seg(100))
    ((ack, _, blocks),) = h.acks()
    assert ack == 500
    assert bytes(h.got) == h.tx.data[:500]
    assert all(lo >= 500 for lo, _ in blocks)
    assert (1000, 1100) in blocks


def test_ack_per_burst_one_ack_says_it_all():
    """With ack_per_burst and SACK, the out-of-order segments, the duplicate
    and the gap filler of one burst get one ACK, at flush_ack, that says
    what their separate ACKs would have said."""
    h = Harness(2000, ack_per_burst=True)
    h.open()
    h.feed(h.tx.seg(0))
    h.out()
    for off in (200, 400, 600):
        h.feed(h.tx.seg(off))
    assert h.r.outbox == []  # nothing until the burst ends
    ((ack, _, blocks),) = h.acks()
    assert ack == 100 and blocks == ((600, 700), (400, 500), (200, 300))
    h.feed(h.tx.seg(0))  # a duplicate: reported once, as the first block (RFC 2883)
    h.feed(h.tx.seg(800))
    assert h.r.outbox == []
    ((ack, _, blocks),) = h.acks()
    assert ack == 100 and blocks[0] == (0, 100) and blocks[1] == (800, 900)
    h.feed(h.tx.seg(100))  # fills the first hole
    h.feed(h.tx.seg(300))  # and the next
    ((ack, _, blocks),) = h.acks()
    assert ack == 500 and bytes(h.got) == h.tx.data[:500]
    assert blocks == ((800, 900), (600, 700))


def test_ack_per_burst_still_acks_every_few():
    """However long the burst, every ACK_EVERY-th out-of-order arrival is
    acknowledged at once: one lost ACK never hides a whole window."""
    from common.rcv_acks import ACK_EVERY
    h = Harness(100 * (2 * ACK_EVERY + 5), ack_per_burst=True)
    h.open()
    for i in range(2 * ACK_EVERY + 3):
        h.feed(h.tx.seg(100 * (i + 1)))
    assert len(h.r.outbox) == 2
    assert len(h.acks()) == 3  # the two sent at once, and the one at flush


@pytest.mark.parametrize("mode", ["sr", "gbn"])
def test_ack_per_burst_without_sack_acks_each(mode):
    """Without SACK, duplicate ACKs are the sender's only loss signal: each
    out-of-order segment is still acknowledged at once."""
    h = Harness(1000, mode=mode, ack_per_burst=True)
    h.open(sack_permitted=False)
    h.feed(h.tx.seg(200))
    h.feed(h.tx.seg(300))
    assert len(h.r.outbox) == 2
    assert [a for a, _, _ in h.acks()] == [0, 0]


def test_sack_wire_numbers_across_wrap():
    h = Harness(1000, isn_s=M32 - 150)
    h.open()
    h.feed(h.tx.seg(200))
    (seg,) = h.out()
    assert seg.sack == (((M32 - 150 + 1 + 200) & M32, (M32 - 150 + 1 + 300) & M32),)
    assert seg.ack == (M32 - 150 + 1) & M32


def test_no_sack_when_not_permitted():
    h = Harness(1000)
    h.open(sack_permitted=False)
    h.feed(h.tx.seg(200))
    ((ack, _, blocks),) = h.acks()
    assert ack == 0 and blocks == ()
    h.feed(h.tx.seg(0))
    h.feed(h.tx.seg(100))
    # an sr receiver without SACK still keeps what came out of order
    assert bytes(h.got) == h.tx.data[:300]
    assert [(a, b) for a, _, b in h.acks()][-1] == (300, ())


def test_gbn_receiver_discards_out_of_order():
    h = Harness(1000, mode="gbn")
    h.open()
    h.feed(h.tx.seg(0))
    h.out()
    h.feed(h.tx.seg(200))
    ((ack, _, blocks),) = h.acks()
    assert ack == 100 and blocks == ()
    assert h.r.ooo_bytes == 0
    h.feed(h.tx.seg(100))
    assert [a[0] for a in h.acks()] == [200]  # 200..300 was not kept
    assert bytes(h.got) == h.tx.data[:200]


def test_overlapping_out_of_order_segments_stored_once():
    """Two out-of-order segments that overlap (a resend cut differently, e.g.
    after a one-byte window probe split a chunk) hold each byte once: the store
    is bounded by the window, not by the number of arrivals."""
    h = Harness(1000, capacity=300)
    h.open()
    h.feed(h.tx.seg(1, 99))    # [1, 100)
    h.feed(h.tx.seg(2, 150))   # [2, 152): overlaps the first
    h.feed(h.tx.seg(100, 200))  # [100, 300)
    h.out()
    assert h.r.ooo_bytes <= 299  # at most the bytes in [1, 300)
    h.feed(h.tx.seg(0, 1))
    assert bytes(h.got) == h.tx.data[:300]
    assert h.r.ooo_bytes == 0


def test_data_beyond_window_is_not_stored():
    h = Harness(5000, capacity=300)
    h.open()
    h.feed(h.tx.seg(400))
    ((ack, win, blocks),) = h.acks()
    assert ack == 0 and win == 300 and blocks == ()
    assert h.r.ooo_bytes == 0
    h.feed(h.tx.seg(250))  # straddles the edge: only 250..300 kept
    assert h.r.ooo_bytes == 50


def test_data_past_announced_size_is_not_stored():
    h = Harness(250)
    h.open()
    h.feed(Segment(seq=h.tx.w(200), ack=h.tx.ack_no, flags=ACK, payload=b"x" * 100))
    assert h.r.ooo_bytes == 50


# --- flow control ---------------------------------------------------------------------------

def test_zero_window_and_window_update():
    h = Harness(1000, capacity=200)
    h.open()
    h.feed(h.tx.seg(0))
    h.feed(h.tx.seg(100))
    ((ack, win, _),) = h.acks()
    assert ack == 200 and win == 0
    assert h.r.stats.zero_windows == 1
    # a probe into the closed window is answered, not taken
    h.feed(h.tx.seg(200, 1))
    ((ack, win, _),) = h.acks()
    assert ack == 200 and win == 0
    assert len(h.got) == 200
    # the writer frees room: an unprompted window update goes out
    h.r.on_written(50, h.now)
    assert h.out() == []  # 50 bytes is less than an MSS: no update yet (SWS avoidance)
    h.r.on_written(150, h.now)
    ((ack, win, _),) = h.acks()
    assert ack == 200 and win == 200
    assert h.r.stats.window_updates == 1


def test_window_right_edge_never_moves_left():
    h = Harness(1000, capacity=300)
    h.open()
    edges = []
    for off in (0, 100, 200):
        h.feed(h.tx.seg(off))
        for ack, win, _ in h.acks():
            edges.append(ack + win)
    assert edges == sorted(edges)
    assert edges[-1] == 300


# --- RST ----------------------------------------------------------------------------------

def test_rst_outside_window_ignored_inside_accepted():
    h = Harness(1000, capacity=500)
    h.open()
    h.feed(h.tx.seg(0))
    h.out()
    for bad in (h.tx.w(-50), h.tx.w(5000), h.tx.w(1 << 31), h.tx.w(100 + 500 + 1)):
        h.feed(h.tx.rst(bad))
        assert h.r.state == ReceiverState.ESTABLISHED, bad
    h.feed(h.tx.rst(h.tx.w(300)))
    assert h.r.state == ReceiverState.ABORTED
    assert "reset" in h.r.error
    assert h.out() == []  # no RST in answer to an RST


def test_rst_at_last_byte_of_window_accepted():
    h = Harness(1000, capacity=500)
    h.open()
    h.feed(h.tx.rst(h.tx.w(499)))
    assert h.r.state == ReceiverState.ABORTED


def test_rst_at_right_edge_ignored():
    """The window is [RCV.NXT, RCV.NXT + RCV.WND) (RFC 9293 §3.10.7.4, RFC 5961 §3.2):
    a sequence number equal to the right edge is outside it."""
    h = Harness(1000, capacity=500)
    h.open()
    assert h.r.last_window == 500
    h.feed(h.tx.rst(h.tx.w(500)))
    assert h.r.state == ReceiverState.ESTABLISHED


def test_rst_with_zero_window_only_at_rcv_nxt():
    """With a zero window only SEG.SEQ == RCV.NXT is acceptable (RFC 9293 §3.10.7.4)."""
    h = Harness(1000, capacity=200)
    h.open()
    h.feed(h.tx.seg(0))
    h.feed(h.tx.seg(100))
    ((_, win, _),) = h.acks()
    assert win == 0
    h.feed(h.tx.rst(h.tx.w(201)))
    assert h.r.state == ReceiverState.ESTABLISHED
    h.feed(h.tx.rst(h.tx.w(200)))
    assert h.r.state == ReceiverState.ABORTED


def test_rst_at_rcv_nxt_accepted():
    h = Harness(1000)
    h.open()
    h.feed(h.tx.rst(h.tx.w(0)))
    assert h.r.state == ReceiverState.ABORTED


# --- the end ----------------------------------------------------------------------------------

def deliver_all(h: Harness):
    for off in range(0, len(h.tx.data), MSS):
        h.feed(h.tx.seg(off))
    h.out()


def test_fin_acknowledged_only_after_verification():
    h = Harness(250)
    h.open()
    deliver_all(h)
    h.feed(h.tx.fin())
    assert h.r.state == ReceiverState.CLOSE_WAIT
    assert h.r.digest == h.tx.digest
    # the data's ACK went already: another would be a duplicate ACK on a
    # clean link (tshark flags it), and the FIN is not acknowledged yet
    assert h.acks() == []
    # a retransmitted FIN while the writer is busy: still not acknowledged
    h.feed(h.tx.fin())
    assert [a[0] for a in h.acks()] == [250]
    assert h.r.next_deadline() is None
    h.r.on_verified(True, h.now)
    segs = h.out()
    assert [s.flags for s in segs] == [ACK, FIN | ACK]
    assert all(s.ack == h.tx.w(251) for s in segs)
    assert segs[1].seq == ISN_R + 1
    assert h.r.state == ReceiverState.LAST_ACK
    # the sender's last ACK
    h.feed(Segment(seq=h.tx.w(251), ack=ISN_R + 2, flags=ACK))
    assert h.r.state == ReceiverState.DONE


def test_fin_with_the_data_ack_held_acknowledges_the_data():
    """A FIN read in one burst with the data before it: the data's held ACK
    goes at once (it says something new), still not the FIN."""
    h = Harness(250)
    h.open()
    h.out()
    for off in range(0, len(h.tx.data), MSS):
        h.feed(h.tx.seg(off))
    h.r.outbox.clear()  # the ACK of the second segment; the third's is held
    assert h.r.ack_clock.unacked == 1
    h.feed(h.tx.fin())
    assert h.r.state == ReceiverState.CLOSE_WAIT
    assert [s.ack for s in h.r.outbox] == [h.tx.w(250)]


def test_digest_mismatch_resets():
    h = Harness(250)
    h.open()
    deliver_all(h)
    h.feed(h.tx.fin(digest=bytes(32)))
    h.out()
    h.r.on_verified(False, h.now, "SHA-256 mismatch")
    segs = h.out()
    assert [s.flags & (RST | FIN) for s in segs] == [RST]
    assert h.r.state == ReceiverState.ABORTED
    assert "mismatch" in h.r.error


def test_fin_before_all_data_is_not_taken():
    h = Harness(250)
    h.open()
    h.feed(h.tx.seg(0))
    h.feed(h.tx.fin())
    assert h.r.state == ReceiverState.ESTABLISHED
    assert [a[0] for a in h.acks()] == [100]


def test_fin_without_digest_aborts():
    h = Harness(100)
    h.open()
    deliver_all(h)
    h.feed(Segment(seq=h.tx.w(100), ack=h.tx.ack_no, flags=FIN | ACK))
    assert h.r.state == ReceiverState.ABORTED


def test_fin_at_wrong_size_aborts():
    h = Harness(300)
    h.open()
    h.feed(h.tx.seg(0))
    h.feed(Segment(seq=h.tx.w(100), ack=h.tx.ack_no, flags=FIN | ACK, digest=bytes(32)))
    assert h.r.state == ReceiverState.ABORTED
    assert "300" in h.r.error


def test_last_ack_retransmits_fin_and_answers_fin_again():
    h = Harness(100)
    h.open()
    deliver_all(h)
    h.feed(h.tx.fin())
    h.out()
    h.r.on_verified(True, h.now)
    h.out()
    dl = h.r.next_deadline()
    assert dl is not None
    h.now = dl
    h.r.on_timer(h.now)
    (again,) = h.out()
    assert again.flags == FIN | ACK and again.ack == h.tx.w(101)
    h.feed(h.tx.fin())  # the sender did not see our ACK
    # our FIN again, which acknowledges theirs too: a pure ACK before it
    # would carry ISN + 2 ahead of the FIN's ISN + 1
    assert [(s.flags, s.seq) for s in h.out()] == [(FIN | ACK, ISN_R + 1)]


def test_empty_file():
    h = Harness(0)
    h.open()
    h.feed(h.tx.fin())
    assert h.r.state == ReceiverState.CLOSE_WAIT
    h.r.on_verified(True, h.now)
    segs = h.out()
    assert segs[-1].flags == FIN | ACK and segs[-1].ack == h.tx.w(1)


# --- timers ----------------------------------------------------------------------------------

def test_give_up_after_silence():
    h = Harness(1000, give_up=7.0)
    h.open()
    h.feed(h.tx.seg(0))
    h.out()
    heard = h.now
    assert h.r.next_deadline() == pytest.approx(heard + 7.0)
    h.now = heard + 6.9
    h.r.on_timer(h.now)
    assert h.r.state == ReceiverState.ESTABLISHED
    h.now = heard + 7.0
    h.r.on_timer(h.now)
    assert h.r.state == ReceiverState.ABORTED
    assert "nothing heard" in h.r.error
    assert [s.flags & RST for s in h.out()] == [RST]


def test_segments_from_peer_postpone_give_up():
    h = Harness(1000, give_up=5.0)
    h.open()
    for off in range(0, 500, 100):
        h.advance(4.0)
        h.feed(h.tx.seg(off))
        h.r.on_timer(h.now)
    assert h.r.state == ReceiverState.ESTABLISHED


# --- wraparound ---------------------------------------------------------------------------------

@pytest.mark.parametrize("isn_s,isn_r", [(2**32 - 3, 2**32 - 3), (2**32 - 1, 2**32 - 2),
                                         (2**32 - 250, 2**32 - 1)])
def test_whole_exchange_across_the_wrap(isn_s, isn_r):
    h = Harness(1000, isn_s=isn_s, isn_r=isn_r)
    (sa,) = h.open(third=False)
    assert sa.seq == isn_r and sa.ack == (isn_s + 1) & M32
    order = [0, 300, 100, 200, 500, 400] + list(range(600, 1000, 100))
    for off in order:
        h.feed(h.tx.seg(off))
    assert bytes(h.got) == h.tx.data
    h.out()
    h.feed(h.tx.fin())
    h.out()
    h.r.on_verified(True, h.now)
    segs = h.out()
    assert segs[-1].flags == FIN | ACK
    assert segs[-1].seq == (isn_r + 1) & M32
    assert segs[-1].ack == (isn_s + 1 + 1000 + 1) & M32
    h.feed(Segment(seq=h.tx.w(1001), ack=(isn_r + 2) & M32, flags=ACK))
    assert h.r.state == ReceiverState.DONE


# --- reassembly property ----------------------------------------------------------------------

@st.composite
def arrivals(draw):
    size = draw(st.integers(1, 3000))
    pieces = []
    for _ in range(draw(st.integers(1, 80))):
        off = draw(st.integers(0, size - 1))
        n = draw(st.integers(1, 150))
        pieces.append((off, n))
    # make sure the whole file is there at the end, in some order
    tail = [(o, MSS) for o in range(0, size, MSS)]
    tail = draw(st.permutations(tail))
    return size, pieces + list(tail)


@given(arrivals(), st.sampled_from(["sr", "gbn"]), st.integers(300, 2000),
       st.sampled_from([ISN_S, 2**32 - 3, 2**32 - 1000]), st.data())
@settings(max_examples=300, deadline=None)
def test_property_reassembly(case, mode, capacity, isn_s, data):
    """Arbitrary arrivals (overlaps, duplicates, any order): bytes are handed to
    the writer once each and in order, and the out-of-order store never holds
    anything outside the window last advertised."""
    size, pieces = case
    h = Harness(size, mode=mode, capacity=max(capacity, MSS), isn_s=isn_s)
    h.open()
    edge = h.r.rcv_nxt + h.r.last_window
    for off, n in pieces:
        # the writer keeps up sometimes
        if h.r.unwritten and data.draw(st.booleans(), label="write"):
            h.r.on_written(h.r.unwritten, h.now)
        h.feed(h.tx.seg(off, n))
        assert bytes(h.got) == h.tx.data[: len(h.got)]
        assert h.r.rcv_nxt == len(h.got)
        acks = h.acks()
        if acks:
            # a window update from the writer may come first, then the data's ACK
            assert acks[-1][0] == len(h.got)
        for ack, win, blocks in acks:
            assert ack <= len(h.got)
            edge = max(edge, ack + win)
            for i, (lo, hi) in enumerate(blocks):
                if i == 0 and (hi <= ack or any(a <= lo and hi <= b for a, b in blocks[1:])):
                    # a D-SACK (RFC 2883): something received twice, reported first
                    assert lo < hi
                    continue
                assert ack < lo < hi <= edge
        if mode == "gbn":
            assert h.r.ooo_bytes == 0
        for k, v in h.r.ooo.items():
            assert h.r.rcv_nxt < k and k + len(v) <= edge
            assert bytes(v) == h.tx.data[k:k + len(v)]
        assert h.r.ooo_bytes <= edge - h.r.rcv_nxt
        assert h.r.ooo_bytes == sum(len(v) for v in h.r.ooo.values())
        if h.r.unwritten + (edge - h.r.rcv_nxt) > h.r.capacity:
            h.r.on_written(h.r.unwritten, h.now)  # keep the test from stalling
    # make sure everything can get in: free the buffer and send it all again in order
    h.r.on_written(h.r.unwritten, h.now)
    for off in range(0, size, MSS):
        h.feed(h.tx.seg(off))
        h.r.on_written(h.r.unwritten, h.now)
    assert bytes(h.got) == h.tx.data
    assert h.r.ooo == {} and h.r.ooo_bytes == 0


# --- timers must not spin ---------------------------------------------------------------

#: Times at which the peer was last heard; for some, (t + 30) - t < 30 in floating point.
HEARD_AT = [1.0, 2.3, 6.8, 10.574621855337487]


def run_timers(core, now: float, limit: int = 500) -> float:
    """Run the timers as the network thread would, until none is left; after
    ``on_timer(now)`` the next deadline must lie in the future, or the thread spins."""
    for _ in range(limit):
        dl = core.next_deadline()
        if dl is None:
            return now
        now = max(now, dl)
        core.on_timer(now)
        after = core.next_deadline()
        assert after is None or after > now, (
            f"deadline {after!r} not after now {now!r} in {core.state}: the timer would spin")
    raise AssertionError("timers never ran out")


@pytest.mark.parametrize("heard", HEARD_AT)
def test_give_up_established_does_not_spin(heard):
    h = Harness(1000, give_up=30.0)
    h.open()
    h.now = heard
    h.feed(h.tx.seg(0))
    h.out()
    end = run_timers(h.r, h.now)
    assert h.r.state == ReceiverState.ABORTED
    assert end == pytest.approx(heard + 30.0)


@pytest.mark.parametrize("heard", HEARD_AT)
def test_give_up_in_last_ack_does_not_spin(heard):
    h = Harness(100, give_up=30.0, retries=1000)
    h.open()
    deliver_all(h)
    h.now = heard
    h.feed(h.tx.fin())
    h.r.on_verified(True, h.now)
    h.out()
    assert h.r.state == ReceiverState.LAST_ACK
    run_timers(h.r, h.now)
    assert h.r.state == ReceiverState.DONE
