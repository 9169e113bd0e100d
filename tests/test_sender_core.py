"""SenderCore alone: hand-built segments from a pretend receiver, and a fake clock.

Every segment either way goes through the codec (encode then decode), so what
the core emits is what would be on the wire.  Offsets in the tests are stream
offsets (byte 0 is the first byte of the file); ``Rx`` turns them into the wire
numbers the receiver would send.
"""

from __future__ import annotations

import hashlib
import re
from collections import deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.pacing import PACE_BURST
from common.recovery import DUP_THRESH
from common.rtt import RttEstimator
from common.segment import ACK, FIN, PSH, RST, SYN, Segment, decode, encode
from common.sender_core import SenderCore, SenderState

ISN_S = 1000
ISN_R = 5000
MSS = 100
M32 = 0xFFFFFFFF

#: every test drives loops on a fake clock; none should take more than a moment
pytestmark = pytest.mark.timeout(60)


def wire(seg: Segment) -> Segment:
    return decode(encode(seg))


class Rx:
    """The pretend receiver: builds segments for the sender with the right numbers."""

    def __init__(self, isn_s: int = ISN_S, isn_r: int = ISN_R, wscale: int = 0):
        self.isn_s = isn_s
        self.isn_r = isn_r
        self.wscale = wscale

    def w(self, off: int) -> int:
        """Wire number of the sender's stream offset ``off``."""
        return (self.isn_s + 1 + off) & M32

    def syn_ack(self, window=0xFFFF, mss=MSS, wscale=0, sack_permitted=True, ack=None):
        return Segment(seq=self.isn_r, ack=self.w(0) if ack is None else ack, flags=SYN | ACK,
                       window=window, mss=mss, wscale=wscale, sack_permitted=sack_permitted)

    def ack(self, off: int, window: int = 0xFFFF, sack=(), flags=ACK, seq_off=1):
        blocks = tuple((self.w(lo), self.w(hi)) for lo, hi in sack)
        return Segment(seq=(self.isn_r + seq_off) & M32, ack=self.w(off), flags=flags,
                       window=window >> self.wscale, sack=blocks)

    def fin(self, off: int):
        return Segment(seq=(self.isn_r + 1) & M32, ack=self.w(off + 1), flags=FIN | ACK,
                       window=0xFFFF)

    def rst(self, seq: int):
        return Segment(seq=seq & M32, ack=0, flags=RST | ACK)


class Harness:
    """A sender with a fake clock and a file cut into MSS chunks."""

    def __init__(self, size=1000, *, mode="sr", window=1 << 20, isn_s=ISN_S, isn_r=ISN_R,
                 min_rto=0.2, retries=10, give_up=100.0, time_wait=None, mss=MSS,
                 file_size="size", pacing=0.0, cc="none"):
        self.data = bytes((i * 7 + 3) % 256 for i in range(size))
        self.digest = hashlib.sha256(self.data).digest()
        self.now = 0.0
        self.rx = Rx(isn_s, isn_r)
        self.s = SenderCore(isn=isn_s, file_size=size if file_size == "size" else file_size,
                            mode=mode, mss=mss, window=window,
                            rtt=RttEstimator(min_rto=min_rto), retries=retries,
                            give_up=give_up, time_wait=time_wait, pacing=pacing,
                            congestion_control=cc)
        self.chunks = deque(self.data[i:i + mss] for i in range(0, size, mss))
        self.eof = False

    def hand_over(self):
        """What the program's transmitter does: the chunks read so far (and
        the end of the file, once read) go to the core, which owns them."""
        if self.chunks:
            self.s.supply(self.chunks)
            self.chunks = deque()
        if self.eof and not self.s.queue.eof:
            self.s.end_of_stream(self.digest)

    def take(self, eof=None):
        if eof is not None:
            self.eof = eof
        self.hand_over()
        return [(wire(seg), rec) for seg, rec in self.s.take(self.now)]

    def segs(self, eof=None):
        return [seg for seg, _ in self.take(eof)]

    def feed(self, seg: Segment):
        self.s.on_segment(wire(seg), self.now)

    def advance(self, dt: float):
        self.now += dt

    def fire(self):
        """Jump to the core's next deadline and run its timers."""
        dl = self.s.next_deadline()
        assert dl is not None
        self.now = max(self.now, dl)
        self.s.on_timer(self.now)

    def open(self, **synack):
        """Handshake; returns the SYN and the third ACK."""
        self.s.start(self.now)
        syn = [wire(seg) for seg, _ in self.s.take(self.now)]
        self.advance(0.05)
        self.feed(self.rx.syn_ack(**synack))
        # only what the handshake itself sends: no data offered yet
        third = [wire(seg) for seg, _ in self.s.take(self.now)]
        return syn, third

    def offsets(self, segs):
        """Stream offsets of data segments."""
        return [((s.seq - self.rx.w(0)) & M32, len(s.payload)) for s in segs if s.payload]


# --- handshake ----------------------------------------------------------------

@pytest.mark.parametrize("mode", ["sr", "gbn"])
def test_syn_options(mode):
    h = Harness(12345, mode=mode)
    h.s.start(0.0)
    (syn,) = h.segs()
    assert syn.flags == SYN
    assert syn.seq == ISN_S
    assert syn.mss == MSS
    assert syn.wscale is not None
    assert syn.sack_permitted == (mode == "sr")
    assert syn.file_size == 12345
    assert syn.payload == b""
    assert h.s.state == SenderState.SYN_SENT


def test_syn_without_known_size_has_no_size_option():
    h = Harness(10, file_size=None)
    h.s.start(0.0)
    (syn,) = h.segs()
    assert syn.file_size is None


def test_syn_retransmitted_with_backoff():
    h = Harness(100, give_up=1000.0)
    h.s.start(0.0)
    assert len(h.segs()) == 1
    assert h.s.next_deadline() == pytest.approx(1.0)  # initial RTO 1 s
    times = []
    for _ in range(3):
        h.fire()
        (syn,) = h.segs()
        assert syn.flags == SYN and syn.seq == ISN_S and syn.mss == MSS
        times.append(h.now)
    # 1 s, then 2 s, then 4 s after each other
    assert times == pytest.approx([1.0, 3.0, 7.0])
    assert h.s.rtt.rto == pytest.approx(8.0)
    assert h.s.state == SenderState.SYN_SENT


def test_syn_not_resent_before_deadline():
    h = Harness(100)
    h.s.start(0.0)
    h.segs()
    h.now = 0.99
    h.s.on_timer(h.now)
    assert h.segs() == []


def test_syn_retry_limit_aborts():
    h = Harness(100, retries=2, give_up=1000.0)
    h.s.start(0.0)
    h.segs()
    for _ in range(2):
        h.fire()
        assert [s.flags for s in h.segs()] == [SYN]
    h.fire()
    assert h.s.state == SenderState.ABORTED
    assert h.s.error


def test_syn_ack_answered_with_ack_and_applied():
    h = Harness(5000)
    _, third = h.open(window=3000, mss=80, wscale=3, sack_permitted=True)
    assert h.s.state == SenderState.ESTABLISHED
    ack = third[0]
    assert ack.flags == ACK
    assert ack.seq == ISN_S + 1
    assert ack.ack == ISN_R + 1
    assert ack.payload == b""
    assert h.s.eff_mss == 80  # min(ours 100, theirs 80)
    assert h.s.snd_wscale == 3
    assert h.s.sack_ok and not h.s.gbn
    # the SYN-ACK's window is not scaled
    assert h.s.right_edge == 3000
    # Karn: the SYN went once, so the handshake gives an RTT sample
    assert h.s.rtt.samples == 1
    assert h.s.rtt.srtt == pytest.approx(0.05)


def test_syn_ack_scale_applies_to_later_windows():
    h = Harness(100_000, mss=1000, window=1 << 20)
    h.chunks = deque(h.data[i:i + 1000] for i in range(0, 100_000, 1000))
    h.rx.wscale = 4
    h.open(window=2000, mss=1000, wscale=4)
    assert len(h.offsets(h.segs())) == 2  # 2000 bytes of unscaled window
    h.feed(h.rx.ack(1000, window=16000))  # field 1000, scaled by 16
    assert h.s.right_edge == 1000 + 16000
    new = h.offsets(h.segs())
    assert new[-1][0] + new[-1][1] == 17000


def test_syn_ack_without_mss_uses_536():
    h = Harness(100, mss=1000)
    h.open(mss=None)
    assert h.s.eff_mss == 536


def test_syn_ack_without_sack_permitted_falls_back_to_gbn():
    h = Harness(100, mode="sr")
    h.open(sack_permitted=False)
    assert not h.s.sack_ok and h.s.gbn


def test_gbn_sender_ignores_sack_permitted():
    h = Harness(100, mode="gbn")
    h.open(sack_permitted=True)
    assert not h.s.sack_ok and h.s.gbn


def test_syn_ack_for_another_syn_ignored():
    h = Harness(100)
    h.s.start(0.0)
    h.segs()
    h.feed(h.rx.syn_ack(ack=ISN_S + 7))
    assert h.s.state == SenderState.SYN_SENT
    assert h.segs() == []


def test_no_rtt_sample_from_retransmitted_syn():
    h = Harness(100, give_up=1000.0)
    h.s.start(0.0)
    h.segs()
    h.fire()
    h.segs()
    h.advance(0.05)
    h.feed(h.rx.syn_ack())
    assert h.s.state == SenderState.ESTABLISHED
    assert h.s.rtt.samples == 0


def test_retransmitted_syn_ack_gets_the_ack_again():
    h = Harness(1000)
    h.open()
    first = h.segs()
    assert h.offsets(first)  # data is flowing
    h.feed(h.rx.syn_ack())  # our third ACK was lost
    again = [s for s in h.segs() if not s.payload]
    assert len(again) == 1
    assert again[0].flags == ACK and again[0].ack == ISN_R + 1
    assert h.s.state == SenderState.ESTABLISHED


# --- windows ------------------------------------------------------------------------

def test_own_window_limits_outstanding():
    h = Harness(5000, window=350)
    h.open(window=0xFFFF)
    segs = h.segs()
    assert h.offsets(segs) == [(0, 100), (100, 100), (200, 100)]
    assert h.s.outstanding == 300
    h.feed(h.rx.ack(100))
    assert h.offsets(h.segs()) == [(300, 100)]
    assert h.s.outstanding <= 350


def test_peer_window_limits_right_edge():
    h = Harness(5000)
    h.open(window=250)
    assert h.offsets(h.segs()) == [(0, 100), (100, 100)]
    h.feed(h.rx.ack(100, window=250))  # right edge 350
    assert h.offsets(h.segs()) == [(200, 100)]
    h.feed(h.rx.ack(300, window=50))  # right edge still 350: nothing fits
    assert h.offsets(h.segs()) == []
    h.feed(h.rx.ack(300, window=100))  # 400
    assert h.offsets(h.segs()) == [(300, 100)]


@st.composite
def ack_scripts(draw):
    steps = []
    for _ in range(draw(st.integers(1, 30))):
        steps.append((draw(st.floats(0, 1)), draw(st.integers(0, 700)), draw(st.booleans())))
    return steps


@given(st.sampled_from(["sr", "gbn"]), st.integers(100, 600), st.integers(0, 3), ack_scripts())
@settings(max_examples=150, deadline=None)
def test_property_never_beyond_windows(mode, window, wscale, script):
    """Whatever the ACKs say, nothing new goes past our window or the peer's edge."""
    h = Harness(3000, mode=mode, window=max(window, MSS), give_up=1e9)
    h.rx.wscale = wscale
    h.open(window=300, wscale=wscale)
    edge = 300
    for frac, win, timer in script:
        for seg, rec in h.take():
            if rec is None or not seg.payload:
                continue
            off = (seg.seq - h.rx.w(0)) & M32
            end = off + len(seg.payload)
            if rec.rexmits or rec.lost:
                assert end <= h.s.snd_nxt
                continue
            if rec.probe:
                # persist probe: one byte, with nothing else in flight
                assert len(seg.payload) == 1 and off == h.s.snd_una and end <= edge + 1
            else:
                assert end <= edge, (off, end, edge)
            assert h.s.outstanding <= max(window, MSS)
        # the receiver acknowledges some of what was sent
        una, nxt = h.s.snd_una, h.s.snd_nxt
        ack_off = una + int(frac * (nxt - una))
        win = (win >> wscale) << wscale
        h.advance(0.01)
        h.feed(h.rx.ack(ack_off, window=win))
        edge = max(edge, ack_off + win)
        dl = h.s.next_deadline()
        if timer and dl < h.s.last_heard + h.s.give_up:  # a retransmission or probe timer
            h.fire()
        if h.s.state == SenderState.ABORTED:
            # a receiver that never acknowledges wears out the retry limit; fine
            assert "retransmitted" in h.s.error
            break
        assert h.s.state == SenderState.ESTABLISHED
    assert h.s.snd_nxt <= max(edge, h.s.snd_una + 1)


# --- cumulative ACKs ----------------------------------------------------------------

def test_cumulative_ack_processing():
    h = Harness(1000)
    h.open()
    h.segs()
    assert h.s.snd_una == 0 and h.s.snd_nxt == 1000
    h.advance(0.1)
    h.feed(h.rx.ack(250))  # inside a segment: still counts cumulatively
    assert h.s.snd_una == 250
    h.feed(h.rx.ack(700))
    assert h.s.snd_una == 700
    h.feed(h.rx.ack(300))  # old: ignored
    assert h.s.snd_una == 700
    h.feed(h.rx.ack(1500))  # beyond what was sent: ignored
    assert h.s.snd_una == 700
    h.feed(h.rx.ack(1000))
    assert h.s.snd_una == 1000 and h.s.outstanding == 0
    assert h.s.stats.acks_received >= 3


def test_rtt_sample_from_new_ack():
    h = Harness(300)
    h.open()
    samples = h.s.rtt.samples
    h.segs()
    h.advance(0.12)
    h.feed(h.rx.ack(100))
    assert h.s.rtt.samples == samples + 1


# --- fast retransmit -------------------------------------------------------------

@pytest.mark.parametrize("mode", ["sr", "gbn"])
def test_exactly_three_dupacks_trigger_one_fast_retransmit(mode):
    h = Harness(1000, mode=mode)
    h.open(sack_permitted=mode == "sr")
    h.segs()
    h.advance(0.05)
    h.feed(h.rx.ack(100))  # new ACK
    assert h.segs() == []
    resent = []
    for i in range(1, 7):
        h.feed(h.rx.ack(100))
        got = h.offsets(h.segs())
        if i < DUP_THRESH:
            assert got == [], i
        resent.append(got)
    assert resent[DUP_THRESH - 1][0] == (100, 100)
    assert sum(len(r) for r in resent[DUP_THRESH:]) == 0  # no more on dupacks 4..6
    if mode == "gbn":
        # Go-Back-N sends everything outstanding again
        assert resent[DUP_THRESH - 1] == [(o, 100) for o in range(100, 1000, 100)]
    else:
        assert resent[DUP_THRESH - 1] == [(100, 100)]
    assert h.s.stats.rexmit_fast >= 1


def test_gbn_goes_back_again_when_the_resent_hole_is_lost():
    """Go-Back-N: the duplicates the old window still draws after a go-back
    (one per segment past the hole) change nothing; three more (the hole's
    resend was lost too) make it go back again, without waiting for the
    (backed-off) timer."""
    h = Harness(1000, mode="gbn")
    h.open(sack_permitted=False)  # RTT sample 0.05 s
    h.segs()
    h.advance(0.05)
    for _ in range(DUP_THRESH):  # 0..100 lost: the peer says 0 again
        h.feed(h.rx.ack(0))
    assert h.offsets(h.segs()) == [(o, 100) for o in range(0, 1000, 100)]
    h.advance(0.005)
    for _ in range(6):  # the rest of the old window, arriving after the go-back
        h.feed(h.rx.ack(0))
    assert h.segs() == []
    # the resend of 0..100 was lost as well: the resent 100..1000 draw
    # duplicates, and three of them make it go back before the timer would
    h.advance(0.05)
    for i in range(DUP_THRESH):
        assert h.segs() == [], i
        h.feed(h.rx.ack(0))
    assert h.offsets(h.segs()) == [(o, 100) for o in range(0, 1000, 100)]
    assert h.s.stats.timeouts == 0
    assert h.s.stats.rexmit_fast == 20


def test_window_update_is_not_a_dupack():
    h = Harness(1000)
    h.open(window=500)
    h.segs()
    for w in (600, 700, 800):  # same ACK number, window changes: updates, not dupacks
        h.feed(h.rx.ack(0, window=w))
    resent = [o for o in h.offsets(h.segs()) if o[0] < 500]
    assert resent == []
    assert h.s.stats.dupacks == 0


def test_sacked_segments_not_fast_retransmitted():
    h = Harness(1000)
    h.open()
    h.segs()
    h.advance(0.05)
    # 0..100 and 200..300 lost; 100..200 and 300..500 SACKed, three dupacks
    h.feed(h.rx.ack(0, sack=[(100, 200)]))
    h.feed(h.rx.ack(0, sack=[(300, 400), (100, 200)]))
    h.feed(h.rx.ack(0, sack=[(300, 500), (100, 200)]))
    resent = h.offsets(h.segs())
    assert (0, 100) in resent
    assert all(off not in (100, 300, 400) for off, _ in resent)


def test_third_dupack_does_not_resend_a_hole_resent_already():
    """The SACK rule resends the hole before the third duplicate ACK comes;
    the fast retransmit then has nothing to do.  A second copy would only
    come back as a D-SACK and widen RACK's reordering window; if the first
    resend is lost, RACK finds it."""
    h = Harness(1000)
    h.open()
    h.segs()
    h.advance(0.05)
    h.feed(h.rx.ack(0, sack=[(100, 400)]))  # three segments' worth above 0: lost
    assert h.offsets(h.segs()) == [(0, 100)]
    h.feed(h.rx.ack(0, sack=[(100, 500)]))
    h.feed(h.rx.ack(0, sack=[(100, 600)]))  # the third duplicate ACK
    assert h.s.stats.dupacks == 3
    assert h.offsets(h.segs()) == []
    assert h.s.stats.rexmit_fast == 0 and h.s.stats.rexmit_sack == 1


def test_rack_ignores_an_early_report_of_a_resent_segment():
    """RFC 8985 §6.2 step 2: an ACK that covers a resent segment sooner than
    the smallest RTT after the resend is of the first copy (it was only
    late), so the resend's time must not make everything sent before it
    look lost: nothing more is resent."""
    h = Harness(1000)
    h.open()  # RTT sample 0.05 s
    h.segs()  # 0..1000 at t = 0
    h.advance(0.015)
    h.feed(h.rx.ack(0, sack=[(100, 400)]))  # three segments' worth above 0: 0 is lost
    h.advance(0.005)
    assert h.offsets(h.segs()) == [(0, 100)]  # resent at t = 0.02
    h.advance(0.01)
    h.feed(h.rx.ack(100, sack=[(100, 400)]))  # the first copy of 0, late
    assert h.offsets(h.segs()) == []
    h.advance(0.04)  # the rest arrives in time
    h.feed(h.rx.ack(1000))
    assert h.s.snd_una == 1000


def test_rack_counts_a_resend_that_fills_a_hole_inside_a_block():
    """A resend that fills a hole between two SACK blocks is the newest
    delivery (RFC 8985 §6.2 step 2 takes every newly SACKed segment, not
    only the one ending a block): an older lost resend is found then, not
    at the RTO (there is no tail loss probe in recovery, RFC 8985 §7.2)."""
    h = Harness(1000)
    h.open()  # RTT 0.05 s: reordering window 12.5 ms
    h.segs()
    h.advance(0.05)
    h.feed(h.rx.ack(0, sack=[(100, 500)]))  # 0 lost (the SACK rule)
    assert h.offsets(h.segs()) == [(0, 100)]  # resent, and lost again
    h.advance(0.03)
    h.feed(h.rx.ack(0, sack=[(600, 1000), (100, 500)]))  # 500 lost
    assert h.offsets(h.segs()) == [(500, 100)]  # resent 30 ms after 0's resend
    h.advance(0.05)
    h.feed(h.rx.ack(0, sack=[(100, 1000)]))  # 500's resend arrived, inside the block
    assert h.offsets(h.segs()) == [(0, 100)]  # 0's resend went before it: lost
    assert h.s.stats.timeouts == 0 and h.s.stats.rexmit_tlp == 0


def test_no_tail_loss_probe_during_loss_recovery():
    """RFC 8985 §7.2 (and Linux, which probes only in its Open and CWR
    states): no probe is scheduled while a loss episode is on.  Here 0 is
    lost and resent, and the rest was SACKed or is on its way: two SRTTs
    later nothing is probed; what comes next is the oldest segment's own
    retransmission timer.  Once the episode ends the probe is armed again."""
    h = Harness(2000, window=1000)
    h.open()  # RTT 0.05 s
    h.segs()  # 0..1000
    h.advance(0.05)
    h.feed(h.rx.ack(0, sack=[(100, 500)]))  # 0 lost: recovery begins
    assert h.offsets(h.segs())[0] == (0, 100)  # (new data with it, in SACKed room)
    t = h.s.transfer
    oldest = next(iter(t.board.timed.values()))
    assert h.s.next_deadline() == pytest.approx(oldest.sent_at + t.recovery.rto())
    assert h.s.next_deadline() > h.now + 2 * t.rtt.srtt  # no probe at two SRTTs
    h.fire()
    assert h.s.stats.rexmit_tlp == 0 and h.s.stats.timeouts == 1
    h.segs()
    h.advance(0.05)
    h.feed(h.rx.ack(t.recovery_point))  # the episode (the RTO's) ends
    assert t.recovery_point is None
    h.segs()
    assert t.board.timed  # new data still out: probed again
    assert h.s.next_deadline() == pytest.approx(
        h.now + min(max(2 * t.rtt.srtt, 0.01), t.recovery.rto()))


@pytest.mark.parametrize("min_rto", [0.2, 1.0])
def test_one_segment_in_flight_gets_the_delayed_acks_allowance(min_rto):
    """RFC 8985 §7.2: with one segment in flight the probe waits two SRTTs
    plus WCDelAckT (0.2 s), as the receiver may hold a lone segment's ACK
    (ours 40 ms); a probe no sooner than the RTO is left to the RTO."""
    h = Harness(1000, window=MSS, min_rto=min_rto)
    h.open()  # RTT 0.05 s
    assert h.offsets(h.segs()) == [(0, MSS)]
    t = h.s.transfer
    srtt, rto = t.rtt.srtt, t.recovery.rto()
    probe = 2 * srtt + 0.2 < rto
    assert h.s.next_deadline() == pytest.approx(h.now + (2 * srtt + 0.2 if probe else rto))
    h.fire()
    assert h.offsets(h.segs()) == [(0, MSS)]
    assert (h.s.stats.rexmit_tlp, h.s.stats.timeouts) == ((1, 0) if probe else (0, 1))


def test_rack_counts_a_resend_that_fills_the_left_edge():
    """RFC 8985 §6.2 step 2 takes every newly acknowledged segment,
    cumulatively as selectively: a resend at the left edge that arrives is
    the newest delivery, and a later hole's resend sent well before it and
    still missing is lost then, not at the tail loss probe or the RTO."""
    h = Harness(2000, window=1000)
    h.open()  # RTT 0.05 s: reordering window 12.5 ms
    h.segs()  # 0..1000 at t = 0
    h.advance(0.05)
    h.feed(h.rx.ack(0, sack=[(100, 500)]))  # 0 lost
    assert h.offsets(h.segs())[0] == (0, 100)  # resent at 0.05, new data with it
    h.advance(0.03)
    h.feed(h.rx.ack(0, sack=[(600, 1000), (100, 500)]))  # 500 lost
    assert h.offsets(h.segs())[0] == (500, 100)  # resent at 0.08, new data with it
    h.advance(0.05)
    # what went at 0.08 arrives, both resends do not: 0's (at 0.05) is lost
    h.feed(h.rx.ack(0, sack=[(600, 1800), (100, 500)]))
    sent = h.offsets(h.segs())
    assert sent[0] == (0, 100) and (500, 100) not in sent  # 0 again, at 0.13
    h.advance(0.05)
    h.feed(h.rx.ack(500, sack=[(600, 1800)]))  # it arrived; 500's resend did not
    assert h.offsets(h.segs())[:1] == [(500, 100)]
    assert h.s.stats.timeouts == 0 and h.s.stats.rexmit_tlp == 0


def test_rack_reordering_timer_finds_a_lost_resend_at_the_tail():
    """RFC 8985 §6.2-6.3: two resends go together; the later (higher) one
    arrives, the other does not, and nothing is sent after them.  The lost
    one was sent "before" the delivered one (same time, lower end: RACK's
    tie-break); it is not lost yet when the ACK comes (the RTT of the
    delivery plus the reordering window has not passed since it went), so
    the reordering timer fires then and resends it, before the tail loss
    probe (two SRTTs) or the RTO would."""
    h = Harness(1000, window=1000)
    h.open()  # RTT 0.05 s: reordering window 12.5 ms
    h.segs()  # 0..1000 at t = 0
    h.advance(0.05)
    h.feed(h.rx.ack(0, sack=[(100, 300), (400, 1000)]))  # 0 and 300 lost
    assert h.offsets(h.segs()) == [(0, 100), (300, 100)]  # both at once
    resent = h.now
    h.advance(0.05)
    h.feed(h.rx.ack(0, sack=[(100, 1000)]))  # 300's resend arrived, 0's did not
    assert h.segs() == []
    h.fire()
    assert h.now == pytest.approx(resent + 0.05 + 0.0125)  # its RTT and the window
    assert h.offsets(h.segs()) == [(0, 100)]
    assert h.s.stats.rexmit_tlp == 0 and h.s.stats.timeouts == 0


# --- pacing -------------------------------------------------------------------


def test_pacing_spreads_new_data_over_the_round_trip():
    """With pacing, new data leaves at gain x window / SRTT: a burst of
    PACE_BURST's worth, then one segment at each ``pace_deadline``, which
    is exactly when the next may go (a take at that instant sends)."""
    window, gain = 10_000, 1.5
    h = Harness(20_000, window=window, pacing=gain)
    h.open()  # SRTT 0.05 s
    rate = gain * window / h.s.rtt.srtt  # 300,000 bytes/s: 3 segments per ms
    burst = h.offsets(h.segs())
    assert burst == [(o, 100) for o in range(0, int(rate * PACE_BURST), 100)]
    assert h.segs() == [] and h.s.pace_deadline is not None
    t0, sent = h.now, len(burst)
    while h.now - t0 < 0.02:
        h.now = h.s.pace_deadline
        got = h.offsets(h.segs())
        assert got == [(sent * 100, 100)], h.now - t0
        sent += 1
    assert sent * 100 == pytest.approx(rate * (PACE_BURST + 0.02), abs=100)
    assert sent * 100 < window  # the window never held it back


def test_pacing_holds_back_new_data_only():
    """A resend goes at once, however empty the pacing bucket."""
    h = Harness(20_000, window=10_000, pacing=1.5)
    h.open()
    sent = h.offsets(h.segs())
    while len(sent) < 6:
        h.now = h.s.pace_deadline
        sent += h.offsets(h.segs())
    h.feed(h.rx.ack(0, sack=[(100, 500)]))  # 0 is lost; the bucket is empty
    assert h.offsets(h.segs()) == [(0, 100)]
    assert h.s.pace_deadline > h.now


def test_no_pacing_sends_the_window_at_once():
    h = Harness(20_000, window=10_000, pacing=0.0)
    h.open()
    h.hand_over()
    sent = h.s.take(h.now, max_new=1000)
    assert len(sent) == 100  # the window
    assert h.s.pace_deadline is None


def test_pacing_bucket_holds_two_segments_at_least():
    """A window so small that a millisecond's worth is less than a segment
    still goes two segments at a time, not never."""
    h = Harness(1000, window=300, pacing=1.5)
    h.open()
    assert h.offsets(h.segs()) == [(0, 100), (100, 100)]
    h.now = h.s.pace_deadline
    assert h.offsets(h.segs()) == [(200, 100)]


def test_reordering_window_grows_once_per_round_trip():
    """DSACKs of resends the reordering window decided widen it (RFC 8985
    §6.2 step 4), once per round trip however many come in it; a DSACK of a
    tail loss probe does not."""
    h = Harness(2000)
    h.open()
    h.segs()
    h.advance(0.06)
    # 0 and 100 were only late: resent by the SACK rule ...
    h.feed(h.rx.ack(0, sack=[(200, 600)]))
    assert h.offsets(h.segs()) == [(0, 100), (100, 100)]
    # ... and reported twice (DSACK), in one round trip: one step wider
    h.feed(h.rx.ack(600, sack=[(0, 100)]))
    h.feed(h.rx.ack(600, sack=[(100, 200)]))
    assert h.s.recovery.rack.reo_mult == 2
    assert h.s.stats.dsacks == 2


# --- timeouts ----------------------------------------------------------------------

def test_gbn_timeout_resends_everything_outstanding():
    h = Harness(1000, mode="gbn")
    h.open(sack_permitted=False)
    h.segs()
    h.advance(0.05)
    h.feed(h.rx.ack(300))
    h.fire()
    assert h.offsets(h.segs()) == [(o, 100) for o in range(300, 1000, 100)]
    assert h.s.stats.timeouts == 1


def test_sr_timeout_resends_only_unsacked():
    h = Harness(1000)
    h.open()
    h.segs()
    h.advance(0.05)
    h.feed(h.rx.ack(100, sack=[(500, 700)]))
    h.feed(h.rx.ack(100, sack=[(800, 900), (500, 700)]))
    h.fire()
    got = h.offsets(h.segs())
    offs = {o for o, _ in got}
    assert 100 in offs
    assert not offs & {500, 600, 800}, got
    # later timers expire too; SACKed segments never go again
    for _ in range(4):
        h.fire()
        offs |= {o for o, _ in h.offsets(h.segs())}
    assert not offs & {500, 600, 800}
    assert {100, 200, 300, 400, 700, 900} <= offs


def test_sack_blocks_that_cut_segments():
    """Blocks whose edges fall inside segments (a peer that trims data, or
    lies): a segment counts as SACKed once the scoreboard wholly holds it,
    and only then, whichever blocks built that up."""
    h = Harness(1000)
    h.open()
    h.segs()
    h.advance(0.05)
    recs = {rec.off: rec for rec in h.s.board.order}
    h.feed(h.rx.ack(0, sack=[(150, 320)]))  # holds 200..300 whole
    assert [off for off, rec in recs.items() if rec.sacked] == [200]
    h.feed(h.rx.ack(0, sack=[(120, 160), (150, 320)]))  # [120, 320): 100..200 not yet
    assert [off for off, rec in recs.items() if rec.sacked] == [200]
    h.feed(h.rx.ack(0, sack=[(100, 130), (120, 320)]))  # [100, 320)
    assert [off for off, rec in recs.items() if rec.sacked] == [100, 200]
    resent = set()
    for _ in range(4):
        h.fire()
        resent |= {off for off, _ in h.offsets(h.segs())}
    assert not resent & {100, 200} and {0, 300} <= resent


def test_sr_sack_with_wrapped_numbers():
    h = Harness(1000, isn_s=M32 - 150)
    h.open()
    h.segs()
    h.advance(0.05)
    h.feed(h.rx.ack(0, sack=[(100, 1000)]))
    h.fire()
    assert h.offsets(h.segs()) == [(0, 100)]


def test_timeout_backs_off_rto():
    h = Harness(1000, mode="gbn", give_up=1000.0)
    h.open(sack_permitted=False)
    h.segs()
    rto0 = h.s.rtt.rto
    h.fire()
    h.segs()
    assert h.s.rtt.rto == pytest.approx(2 * rto0)
    h.fire()
    h.segs()
    assert h.s.rtt.rto == pytest.approx(4 * rto0)


# --- Karn ----------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["sr", "gbn"])
def test_karn_no_sample_from_retransmitted_segment(mode):
    h = Harness(100, mode=mode)
    h.open(sack_permitted=mode == "sr")
    h.segs()
    h.fire()  # timeout: segment 0 goes again
    assert h.offsets(h.segs()) == [(0, 100)]
    samples = h.s.rtt.samples
    h.advance(0.01)
    h.feed(h.rx.ack(100))
    assert h.s.snd_una == 100
    assert h.s.rtt.samples == samples


def test_karn_no_sample_from_fast_retransmitted_segment():
    h = Harness(500)
    h.open()
    h.segs()
    for _ in range(DUP_THRESH):
        h.feed(h.rx.ack(0))
    assert h.offsets(h.segs()) == [(0, 100)]
    samples = h.s.rtt.samples
    h.advance(0.01)
    h.feed(h.rx.ack(100))
    assert h.s.rtt.samples == samples


# --- zero window ------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["sr", "gbn"])
def test_zero_window_probe_then_resume(mode):
    h = Harness(1000, mode=mode)
    h.open(window=0, sack_permitted=mode == "sr")
    assert h.offsets(h.segs()) == []
    dl = h.s.next_deadline()
    assert dl == pytest.approx(h.now + h.s.rtt.rto)
    h.fire()
    probe = h.offsets(h.segs())
    assert probe == [(0, 1)]
    assert h.s.stats.probes == 1
    # the receiver still has no room; the probe is answered with window 0
    h.advance(0.01)
    h.feed(h.rx.ack(0, window=0))
    assert h.offsets(h.segs()) == []
    h.fire()
    assert h.offsets(h.segs()) == [(0, 1)]  # probed again
    # window opens, and the probe byte is accepted
    h.advance(0.01)
    h.feed(h.rx.ack(1, window=300))
    assert h.offsets(h.segs()) == [(1, 99), (100, 100), (200, 100)]
    h.feed(h.rx.ack(300, window=1000))
    rest = h.offsets(h.segs(eof=True))
    assert rest[-1][0] + rest[-1][1] == 1000
    assert h.s.state == SenderState.FIN_WAIT_1


@pytest.mark.parametrize("mode", ["sr", "gbn"])
def test_answered_probe_does_not_back_off(mode):
    """A probe the peer answers with a zero window is not a loss: the RTO keeps
    its value (the core's own rule, ``_peer_answered_probe``)."""
    h = Harness(1000, mode=mode)
    h.open(window=0, sack_permitted=mode == "sr")
    rto = h.s.rtt.rto
    for _ in range(4):
        h.fire()
        assert h.offsets(h.segs()) == [(0, 1)]
        assert h.s.rtt.rto == pytest.approx(rto), h.now
        h.advance(0.01)
        h.feed(h.rx.ack(0, window=0))


def test_zero_window_probes_never_hit_retry_limit():
    h = Harness(1000, retries=3, give_up=1000.0)
    h.open(window=0)
    for _ in range(10):
        h.fire()
        h.segs()
        h.advance(0.01)
        h.feed(h.rx.ack(0, window=0))
    assert h.s.state == SenderState.ESTABLISHED
    assert h.s.stats.probes >= 1


# --- giving up -----------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["sr", "gbn"])
def test_retry_limit_aborts_with_rst(mode):
    h = Harness(300, mode=mode, retries=3, give_up=1000.0)
    h.open(sack_permitted=mode == "sr")
    sends: dict[int, int] = {}

    def count(segs):
        for off, _ in h.offsets([s for s in segs if not s.flags & RST]):
            sends[off] = sends.get(off, 0) + 1

    count(h.segs())
    for _ in range(50):
        h.fire()
        segs = h.segs()
        if h.s.state == SenderState.ABORTED:
            break
        count(segs)
    assert h.s.state == SenderState.ABORTED
    assert h.s.error and "retransmitted 3 times" in h.s.error
    # the segment named went once and was retransmitted exactly `retries` times;
    # none went more often
    named = int(re.search(r"at byte (\d+)", h.s.error).group(1))
    assert sends[named] == 1 + 3
    assert max(sends.values()) == 1 + 3
    # an RST goes out (RFC 5961: at snd_una, and at snd_nxt when they differ)
    rsts = [s for s in segs if s.flags & RST]
    assert rsts
    assert rsts[0].seq == h.rx.w(h.s.snd_una)
    assert {s.seq for s in rsts} <= {h.rx.w(h.s.snd_una), h.rx.w(h.s.snd_nxt)}
    assert not [s for s in segs if s.payload and not s.flags & RST]  # no data after it
    assert h.s.next_deadline() is None


@pytest.mark.timeout(30)
def test_give_up_after_silence():
    h = Harness(300, retries=1000, give_up=5.0)
    h.open()
    h.segs()
    heard = h.now
    while h.s.state != SenderState.ABORTED:
        h.fire()
        h.segs()
        assert h.now < heard + 5.0 + 1e-9
    assert h.now == pytest.approx(heard + 5.0)
    assert "nothing heard" in h.s.error
    assert h.s.stats.rexmit_timeout > 0


def test_silence_in_syn_sent_gives_up():
    h = Harness(300, retries=1000, give_up=5.0)
    h.s.start(0.0)
    h.segs()
    for _ in range(100):
        if h.s.state == SenderState.ABORTED:
            break
        h.fire()
        h.segs()
    assert h.s.state == SenderState.ABORTED
    assert h.now == pytest.approx(5.0)


# --- RST ----------------------------------------------------------------------------

def test_rst_exact_match_only():
    h = Harness(500)
    h.open()
    h.segs()
    for bad in (ISN_R + 2, ISN_R, ISN_R + 1000, ISN_R + 1 - 2**31):
        h.feed(h.rx.rst(bad))
        assert h.s.state == SenderState.ESTABLISHED, bad
    h.feed(Segment(seq=ISN_R + 1, ack=0, flags=RST, payload=b"disk full"))
    assert h.s.state == SenderState.ABORTED
    assert "reset" in h.s.error and "disk full" in h.s.error
    assert not any(s.flags & RST for s in h.segs())  # never answer an RST with one


def test_rst_in_syn_sent_needs_our_syn_acked():
    h = Harness(500)
    h.s.start(0.0)
    h.segs()
    h.feed(Segment(seq=0, ack=ISN_S + 5, flags=RST | ACK))
    assert h.s.state == SenderState.SYN_SENT
    h.feed(Segment(seq=0, ack=ISN_S + 1, flags=RST | ACK))
    assert h.s.state == SenderState.ABORTED


# --- the end -------------------------------------------------------------------------

def finish_data(h: Harness):
    """Send the whole file and the FIN, acknowledging everything but the FIN."""
    segs = h.segs(eof=True)
    h.advance(0.02)
    h.feed(h.rx.ack(len(h.data)))
    return segs + h.segs()


def test_fin_carries_digest_and_sits_at_size():
    h = Harness(450)
    h.open()
    segs = finish_data(h)
    fins = [s for s in segs if s.flags & FIN]
    assert len(fins) == 1
    assert fins[0].seq == h.rx.w(450)
    assert fins[0].digest == h.digest
    assert fins[0].payload == b""
    # the last data segment carries PSH
    last = [s for s in segs if s.payload][-1]
    assert last.flags & PSH
    assert h.s.state == SenderState.FIN_WAIT_1


def test_fin_not_sent_before_all_data():
    h = Harness(450, window=200)
    h.open()
    segs = h.segs(eof=True)
    assert not any(s.flags & FIN for s in segs)


def test_fin_retransmitted_on_timeout():
    h = Harness(100)
    h.open()
    finish_data(h)
    h.fire()
    again = h.segs()
    assert [s.flags & FIN for s in again] == [FIN]
    assert again[0].digest == h.digest


def test_no_rtt_sample_from_the_fins_ack():
    """The receiver acknowledges the FIN only once the file is on disk and
    verified: however long that takes, it is no round trip of the path."""
    h = Harness(250)
    h.open()
    finish_data(h)
    samples, srtt = h.s.rtt.samples, h.s.rtt.srtt
    h.advance(0.5)  # the receiver syncs and hashes a large file
    h.feed(h.rx.ack(251))
    assert h.s.delivered
    assert h.s.rtt.samples == samples and h.s.rtt.srtt == srtt


def test_teardown_and_time_wait():
    h = Harness(250, time_wait=2.0)
    h.open()
    finish_data(h)
    h.feed(h.rx.ack(251))  # the receiver verified the file: FIN acknowledged
    assert h.s.state == SenderState.FIN_WAIT_2 and h.s.delivered
    h.feed(h.rx.fin(250))
    (ack,) = h.segs()
    assert ack.flags == ACK and ack.ack == ISN_R + 2 and ack.seq == h.rx.w(251)
    assert h.s.state == SenderState.TIME_WAIT
    # the ACK was lost: the FIN comes again and is ACKed again
    h.advance(1.5)
    h.feed(h.rx.fin(250))
    (again,) = h.segs()
    assert again.flags == ACK and again.ack == ISN_R + 2
    assert h.s.state == SenderState.TIME_WAIT
    h.advance(1.9)  # the wait restarted at the second FIN
    h.s.on_timer(h.now)
    assert h.s.state == SenderState.TIME_WAIT
    h.fire()
    assert h.s.state == SenderState.DONE
    assert h.s.error is None


def test_peer_fin_that_also_acks_our_fin():
    """The receiver's ACK of our FIN was lost but its FIN (which acknowledges ours
    too) arrived: straight to TIME_WAIT."""
    h = Harness(250, time_wait=1.0)
    h.open()
    finish_data(h)
    h.feed(h.rx.fin(250))
    (ack,) = h.segs()
    assert ack.ack == ISN_R + 2
    assert h.s.delivered and h.s.state == SenderState.TIME_WAIT
    h.fire()
    assert h.s.state == SenderState.DONE


def test_peer_fin_before_our_fin_is_acked_is_not_taken():
    h = Harness(250)
    h.open()
    finish_data(h)
    # a FIN whose ACK does not cover ours
    h.feed(Segment(seq=ISN_R + 1, ack=h.rx.w(250), flags=FIN | ACK))
    assert h.s.state == SenderState.FIN_WAIT_1


def test_empty_file():
    h = Harness(0)
    h.open()
    segs = h.segs(eof=True)
    assert [s.flags for s in segs if s.flags & FIN] == [FIN | ACK]
    assert segs[-1].seq == ISN_S + 1
    h.feed(h.rx.ack(1))
    h.feed(h.rx.fin(0))
    assert h.s.state == SenderState.TIME_WAIT


# --- wraparound ---------------------------------------------------------------------

@pytest.mark.parametrize("isn_s,isn_r", [(2**32 - 3, 2**32 - 3), (2**32 - 1, 2**32 - 2),
                                         (2**32 - 250, 7)])
def test_whole_exchange_across_the_wrap(isn_s, isn_r):
    h = Harness(1000, isn_s=isn_s, isn_r=isn_r, time_wait=1.0)
    syn, third = h.open()
    assert syn[0].seq == isn_s
    assert third[0].seq == (isn_s + 1) & M32 and third[0].ack == (isn_r + 1) & M32
    segs = h.segs(eof=True)
    offs = h.offsets(segs)
    assert offs == [(o, 100) for o in range(0, 1000, 100)]
    # a hole at 200, the rest SACKed, across the wrap of the wire numbers
    h.advance(0.05)
    for _ in range(DUP_THRESH):
        h.feed(h.rx.ack(200, sack=[(300, 1000)]))
    assert h.offsets(h.segs()) == [(200, 100)]
    h.feed(h.rx.ack(1000))
    h.feed(h.rx.ack(1001))
    assert h.s.state == SenderState.FIN_WAIT_2
    h.feed(h.rx.fin(1000))
    (ack,) = h.segs()
    assert ack.ack == (isn_r + 2) & M32
    h.fire()
    assert h.s.state == SenderState.DONE


# --- SR against a model receiver -------------------------------------------------------

def merged(ranges):
    out = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1]:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return out


def covered(ranges, lo, hi):
    return any(a <= lo and hi <= b for a, b in merged(ranges))


class ModelPeer:
    """A receiver that holds out-of-order data (``sack``) or drops it, and
    acknowledges every arrival: the cumulative point, and SACK blocks with
    the one holding the latest arrival first (RFC 2018 §4), at most four."""

    def __init__(self, sack: bool = True):
        self.sack = sack
        self.held: list[tuple[int, int]] = []  # ranges above the cumulative point
        self.recent: list[int] = []
        self.cum = 0

    def arrive(self, off: int, end: int) -> list:
        """[off, end) arrives; returns the SACK blocks of the ACK it draws."""
        if off <= self.cum:
            self.cum = max(self.cum, end)
        elif self.sack:
            self.held.append((off, end))
            self.recent.insert(0, off)
        blocks = [b for b in merged(self.held) if b[1] > self.cum]
        while blocks and blocks[0][0] <= self.cum:
            self.cum = max(self.cum, blocks.pop(0)[1])
        self.held = [tuple(b) for b in blocks]
        first = [b for b in blocks if self.recent and b[0] <= self.recent[0] < b[1]]
        return (first + [b for b in reversed(blocks) if b not in first])[:4]


@given(st.lists(st.booleans(), max_size=80), st.sampled_from([ISN_S, 2**32 - 3, 2**32 - 700]),
       st.sampled_from(["sr", "gbn"]))
@settings(max_examples=120, deadline=None)
@pytest.mark.timeout(60)
def test_property_sack_never_resends_what_was_sacked(losses, isn_s, mode):
    """A model receiver that holds out-of-order data (sr) or drops it (gbn) and
    acknowledges every arrival; the forward path loses segments by ``losses``.
    In sr nothing the receiver reported in a SACK block is ever sent again, and
    either way the whole file gets through in order."""
    size = 2000
    h = Harness(size, mode=mode, isn_s=isn_s, window=800, give_up=1e9)
    h.open(sack_permitted=mode == "sr")
    loss = iter(losses)
    peer = ModelPeer(sack=mode == "sr")
    told: list[tuple[int, int]] = []
    for _ in range(2000):
        if h.s.state != SenderState.ESTABLISHED and h.s.state != SenderState.FIN_WAIT_1:
            break
        out = h.take(eof=True)
        arrived = False
        for seg, rec in out:
            if seg.flags & FIN:
                if next(loss, False) or peer.cum != size:
                    continue
                h.advance(0.001)
                h.feed(h.rx.ack(size + 1))
                arrived = True
                continue
            if not seg.payload:
                continue
            off = (seg.seq - h.rx.w(0)) & M32
            end = off + len(seg.payload)
            if mode == "sr" and rec is not None and rec.lost:
                assert not covered(told, off, end), (off, end, told)
            if next(loss, False):
                continue
            arrived = True
            sack = peer.arrive(off, end)
            told.extend(tuple(b) for b in sack)
            h.advance(0.001)
            h.feed(h.rx.ack(peer.cum, sack=sack))
        if not arrived:
            h.fire()
    assert peer.cum == size
    assert h.s.state == SenderState.FIN_WAIT_2, h.s.error


@given(st.lists(st.booleans(), max_size=80), st.sampled_from([ISN_S, 2**32 - 700]))
@settings(max_examples=80, deadline=None)
@pytest.mark.timeout(60)
def test_property_ack_bursts_send_what_acks_one_by_one_send(losses, isn_s):
    """The program takes the ACKs one read returns as a burst (on_segments),
    loss detection once at its end.  Fed the same ACKs, one sender that takes
    each burst whole and one that takes it ACK by ACK send the same segments
    each round, resends included, and both deliver the file.  (The order of
    the resends may differ: ACK by ACK, RACK's finds of one ACK go before
    the SACK rule's of the next; in a burst, the SACK rule's go first.)"""
    size = 3000
    one, burst = (Harness(size, isn_s=isn_s, window=900, give_up=1e9) for _ in range(2))
    for h in (one, burst):
        h.open()
    rx = one.rx
    loss = iter(losses)
    peer = ModelPeer()
    bursts = 0
    for _ in range(1000):
        if one.s.state not in (SenderState.ESTABLISHED, SenderState.FIN_WAIT_1):
            break
        out = one.take(eof=True)
        assert sorted((seg.seq, seg.flags, len(seg.payload)) for seg, _ in out) == \
            sorted((seg.seq, seg.flags, len(seg.payload)) for seg, _ in burst.take(eof=True))
        acks = []
        for seg, _rec in out:
            if seg.flags & FIN:
                if not next(loss, False) and peer.cum == size:
                    acks.append(rx.ack(size + 1))
                continue
            if not seg.payload or next(loss, False):
                continue
            off = (seg.seq - rx.w(0)) & M32
            sack = peer.arrive(off, off + len(seg.payload))
            acks.append(rx.ack(peer.cum, sack=sack))
        for h in (one, burst):
            h.advance(0.01)
        if not acks:
            one.fire()
            burst.fire()
            assert one.now == burst.now
            continue
        for ack in acks:
            one.feed(ack)
        burst.s.on_segments([wire(ack) for ack in acks], burst.now)
        bursts += len(acks) > 1
    assert peer.cum == size
    for h in (one, burst):
        assert h.s.state == SenderState.FIN_WAIT_2, h.s.error
    assert bursts > 0

    def counters(h):
        # Which rule a resend is booked to may differ: the third duplicate
        # ACK's fast retransmit, or RACK at one ACK, can come before a
        # burst's SACK rule runs.
        c = h.s.stats.as_dict()
        c["rexmit_sack"] += c.pop("rexmit_fast") + c.pop("rexmit_rack")
        return c
    assert counters(one) == counters(burst)


def test_a_burst_of_cumulative_acks_is_taken_as_its_last_and_counted_as_all():
    """A GRO read hands the sender a burst of the receiver's ACKs, one for
    every second segment.  The plain cumulative ones the next ACK of the
    burst supersedes are counted, not taken (Transfer.absorb_superseded):
    the core takes the last, and ends where one that takes them ACK by ACK
    ends: the same snd_una, the same count of ACKs and the same slow-start
    growth (RFC 3465's L = 2 counts every ACK of the burst)."""
    one, burst = (Harness(40 * MSS, cc="newreno") for _ in range(2))
    for h in (one, burst):
        h.open()
    sent = [seg for seg in one.segs(eof=True) if seg.payload]
    assert len(sent) == len([seg for seg in burst.segs(eof=True) if seg.payload]) >= 6
    rx = one.rx
    acks = [rx.ack(k * MSS) for k in range(2, len(sent) + 1, 2)]
    taken = []
    on_ack = burst.s.transfer.on_ack
    burst.s.transfer.on_ack = lambda seg, *rest: (taken.append(seg.ack), on_ack(seg, *rest))
    for h in (one, burst):
        h.advance(0.05)
    for ack in acks:
        one.feed(ack)
    burst.s.on_segments([wire(ack) for ack in acks], burst.now)
    assert taken == [acks[-1].ack]
    assert burst.s.transfer.snd_una == one.s.transfer.snd_una == acks[-1].ack - rx.w(0)
    assert burst.s.stats.acks_received == one.s.stats.acks_received
    assert burst.s.transfer.cc.cwnd == one.s.transfer.cc.cwnd > len(sent) * MSS


@pytest.mark.parametrize("isn_s", [ISN_S, M32 - 250])
def test_what_is_never_superseded(isn_s):
    """Only a plain cumulative ACK that moves snd_una, followed in its burst
    by one that moves it further, is skipped: a duplicate, a SACK, a FIN,
    data, or a follower that adds nothing are all taken (also where the
    sequence numbers wrap past 2**32).  Only a skipped ACK is counted."""
    h = Harness(20 * MSS, isn_s=isn_s)
    h.open()
    h.segs(eof=True)
    rx, t, base = h.rx, h.s.transfer, h.rx.w(0)
    sup = t.absorb_superseded
    w = wire
    assert t.snd_una == 0 and t.snd_nxt >= 6 * MSS
    counted = t._acks_news
    assert sup(w(rx.ack(2 * MSS)), w(rx.ack(4 * MSS)), base)
    assert t._acks_news == counted + 1
    assert not sup(w(rx.ack(0)), w(rx.ack(4 * MSS)), base)  # a duplicate: taken
    assert not sup(w(rx.ack(4 * MSS)), w(rx.ack(4 * MSS)), base)  # the next adds nothing
    assert not sup(w(rx.ack(4 * MSS)), w(rx.ack(2 * MSS)), base)  # the next is older
    assert not sup(w(rx.ack(2 * MSS)), w(rx.ack(t.snd_nxt + 1)), base)  # beyond snd_nxt
    assert not sup(w(rx.ack(2 * MSS, sack=((5 * MSS, 6 * MSS),))),
                   w(rx.ack(4 * MSS)), base)
    assert not sup(w(rx.ack(2 * MSS)), w(rx.ack(4 * MSS, sack=((5 * MSS, 6 * MSS),))), base)
    assert not sup(w(rx.ack(2 * MSS, flags=ACK | FIN)), w(rx.ack(4 * MSS)), base)
    assert not sup(w(rx.ack(2 * MSS)), w(rx.ack(4 * MSS, flags=ACK | PSH)), base)
    assert t._acks_news == counted + 1  # the refusals counted nothing


# --- timers must not spin ---------------------------------------------------------------

#: Times at which a peer was last heard.  For some of them (t + 30) - t < 30 in
#: floating point, so a deadline computed as ``t + give_up`` and a check written
#: as ``now - t >= give_up`` disagree at exactly that deadline.
HEARD_AT = [1.0, 2.3, 6.8, 10.574621855337487]


def run_timers(core, now: float, limit: int = 500) -> float:
    """Run ``core``'s timers the way the timer thread does, until none is left.
    After ``on_timer(now)`` the next deadline must lie in the future: one at or
    before ``now`` would make the timer thread spin without sleeping."""
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
def test_give_up_in_fin_wait_2_does_not_spin(heard):
    h = Harness(100, give_up=30.0)
    h.open()
    h.segs(eof=True)
    h.now = heard
    h.feed(h.rx.ack(101))  # data and FIN acknowledged; the receiver's FIN never comes
    assert h.s.state == SenderState.FIN_WAIT_2
    end = run_timers(h.s, h.now)
    assert h.s.state == SenderState.DONE
    assert end == pytest.approx(heard + 30.0)


@pytest.mark.parametrize("heard", HEARD_AT)
def test_give_up_while_sending_does_not_spin(heard):
    h = Harness(1000, give_up=30.0, retries=10_000)
    h.open()
    h.segs()
    h.now = heard
    h.feed(h.rx.ack(100))
    end = run_timers(h.s, h.now)
    assert h.s.state == SenderState.ABORTED
    assert end == pytest.approx(heard + 30.0)
