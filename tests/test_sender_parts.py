"""The sender core's parts alone, on a fake clock: the scoreboard, recovery
(duplicate ACKs, RFC 6675's rule, RACK, the timers), the pacer, the send
queue, the congestion registry and the fixed window."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common import congestion
from common.congestion.base import CongestionControl
from common.congestion.fixed import FixedWindow
from common.pacing import PACE_BURST, Pacer
from common.rack import Rack
from common.recovery import DUP_THRESH, Recovery
from common.rtt import RttEstimator
from common.scoreboard import Outstanding, Scoreboard
from common.sender_stats import Stats
from common.sendqueue import SendQueue

pytestmark = pytest.mark.timeout(60)
MSS = 100


def records(n: int, now: float = 0.0, start: int = 0) -> list[Outstanding]:
    return [Outstanding(start + i * MSS, b"x" * MSS, 0, False, now, False) for i in range(n)]


def recovery(sack: bool = True, n: int = 10, rtt: RttEstimator | None = None,
             retries: int = 10):
    board = Scoreboard()
    events = []
    rec = Recovery(board, rtt or RttEstimator(min_rto=0.2), Stats(), retries=retries,
                   give_up=30.0, emit=lambda t, ev, **f: events.append((t, ev, f)),
                   trace=True)
    rec.gbn = not sack
    rec.mss = MSS
    recs = records(n)
    board.register(recs, sack)
    rec.on_sent_new(0.0)
    return rec, board, recs, events


# --- scoreboard -------------------------------------------------------------------


def test_scoreboard_pipe_and_acks():
    board = Scoreboard()
    board.register(records(10), True)
    assert board.pipe(0, 1000) == 1000
    nbytes, newly = board.add_sack(300, 500, 0)
    assert nbytes == 200 and [r.off for r in newly] == [300, 400]
    assert all(r.sacked for r in newly) and 300 not in board.timed  # off the timer queue
    assert board.pipe(0, 1000) == 800 and board.high_sacked == 500
    assert board.add_sack(300, 400, 0) == (0, [])  # nothing new
    gone = board.pop_acked(400, True)
    assert [r.off for r in gone] == [0, 100, 200, 300]
    assert board.sacked_bytes == 100  # [400, 500) is left above the cumulative ACK
    assert board.pipe(400, 1000) == 500
    assert 400 in board.timed  # the left edge is timed again (RFC 2018 §8)


def test_scoreboard_block_cutting_segments_flags_only_whole_ones():
    board = Scoreboard()
    board.register(records(5), True)
    _, newly = board.add_sack(150, 320, 0)
    assert [r.off for r in newly] == [200]
    _, newly = board.add_sack(100, 150, 0)  # now [100, 320) holds the segment at 100
    assert [r.off for r in newly] == [100]


def test_scoreboard_reads_wire_blocks():
    board = Scoreboard()
    board.register(records(10), True)
    base = 0xFFFFFF00  # the wire numbers wrap inside the stream

    def w(off):
        return (base + off) & 0xFFFFFFFF

    dsack, news = board.read_sack(((w(0), w(100)), (w(300), w(400))), base, 200, 1000)
    assert dsack == 0 and news == [(300, 400)]  # below the cumulative ACK: a D-SACK
    dsack, news = board.read_sack(((w(300), w(400)), (w(600), w(700))), base, 200, 1000)
    assert dsack is None and news == [(600, 700)]  # (300, 400) came in the last ACK
    _, news = board.read_sack(((w(900), w(1100)),), base, 200, 1000)
    assert news == []  # past what was sent: ignored


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 19), st.integers(1, 5)), max_size=15),
       st.integers(0, 20))
def test_scoreboard_flags_match_a_model(blocks, ack_segs):
    """A segment is flagged SACKed exactly when the union of the blocks
    holds it whole; the pipe is what is neither acknowledged nor SACKed."""
    board = Scoreboard()
    recs = records(20)
    board.register(recs, True)
    held = set()
    for first, n in blocks:
        left, right = first * MSS + 30 * (first % 2), min(20, first + n) * MSS
        if right <= left:
            continue
        board.add_sack(left, right, 0)
        held |= set(range(left, right))
    for r in recs:
        assert r.sacked == (set(range(r.off, r.end)) <= held)
    una = ack_segs * MSS
    board.pop_acked(una, True)
    assert board.pipe(una, 2000) == 2000 - una - len({x for x in held if x >= una})


# --- recovery --------------------------------------------------------------------


def test_third_dupack_marks_the_first_hole_lost():
    rec, board, recs, _ = recovery()
    for _ in range(DUP_THRESH - 1):
        rec.on_dupack(0, 1000, 0.1)
    assert not rec.rexmit
    rec.on_dupack(0, 1000, 0.1)
    assert list(rec.rexmit) == [recs[0]] and recs[0].why == "fast"
    assert rec.lost_bytes == MSS  # told to the congestion controller by the core


def test_gbn_third_dupack_goes_back_over_everything():
    rec, board, recs, _ = recovery(sack=False)
    for _ in range(DUP_THRESH):
        rec.on_dupack(0, 1000, 0.1)
    assert list(rec.rexmit) == recs
    assert all(r.rexmits == 0 for r in recs)  # the peer is alive: no retry counted


def test_sack_rule_marks_holes_with_three_segments_sacked_above():
    """RFC 6675 IsLost: DUP_THRESH segments' worth SACKed above a hole."""
    rec, board, recs, _ = recovery()
    rec.on_sack_block(100, 300, 0, 0.1, (0.0, 0))
    rec.on_delivery((0.0, 0), 0.1)
    rec.detect_losses(0.1)
    assert not rec.rexmit  # two segments above the hole at 0: not yet
    rec.on_sack_block(400, 500, 0, 0.1, (0.0, 0))
    rec.detect_losses(0.1)
    assert [r.off for r in rec.rexmit] == [0]
    assert recs[0].why == "sack"
    rec.on_sack_block(600, 800, 0, 0.1, (0.0, 0))
    rec.detect_losses(0.1)
    assert [r.off for r in rec.rexmit] == [0, 300]  # 300 now has 400..800 above it


def test_rack_declares_lost_what_was_sent_before_a_delivery_once_its_rtt_passed():
    rtt = RttEstimator(min_rto=0.2)
    rtt.on_sample(0.05)
    rec, board, recs, _ = recovery(rtt=rtt, n=2)
    later = records(1, now=0.01, start=200)
    board.register(later, True)
    # the segment sent at 0.01 is delivered at 0.06: RTT 0.05
    delivered = rec.on_sack_block(200, 300, 0, 0.06, (0.0, 0))
    assert delivered == (0.01, 300)
    rec.on_delivery(delivered, 0.06)
    rec.detect_losses(0.06)
    # sent at 0: lost once 0.05 + the reordering window (min RTT / 4) passed
    assert not rec.rexmit
    due = rec.rack.deadline
    assert due == pytest.approx(0.0 + 0.05 + 0.05 / 4)
    rec.on_timer(due, 0, 300, lambda r: False)
    assert [r.off for r in rec.rexmit] == [0, 100] and recs[0].why == "rack"


def test_rack_spurious_resend_widens_the_reordering_window_once_per_round():
    rack = Rack(RttEstimator())
    rack.on_spurious(0, 1000)
    rack.on_spurious(500, 2000)  # the same round trip
    assert rack.reo_mult == 2
    rack.on_spurious(1000, 3000)
    assert rack.reo_mult == 3
    for i in range(16):
        rack.on_new_ack(3000 + i * 1000, 4000 + i * 1000)
    assert rack.reo_mult == 1


def test_sr_timeout_resends_the_expired_and_backs_off_once():
    rec, board, recs, events = recovery()
    rto = rec.rto()
    assert rec.next_deadline() == pytest.approx(rto)
    rec.on_timer(rto, 0, 1000, lambda r: False)
    assert list(rec.rexmit) == recs and all(r.why == "timeout" for r in recs)
    assert rec.rtt.backoff == 1 and rec.rto_fired
    assert [e[1] for e in events].count("timeout") == 1
    assert rec.rto() == pytest.approx(2 * rto)  # RFC 6298 §5.5


def test_retry_limit_sets_gave_up():
    rec, board, recs, _ = recovery(sack=False, retries=2)
    now = 0.0
    for _ in range(3):
        now = rec.next_deadline()
        rec.on_timer(now, 0, 1000, lambda r: False)
        rec.take_resends(now, 0)
    assert rec.gave_up is recs[0]


def test_take_resends_counts_by_cause_and_skips_what_was_acknowledged():
    rec, board, recs, events = recovery()
    rec._mark_lost(recs[0], "rack", count=False)
    rec._mark_lost(recs[1], "tlp")
    rec._mark_lost(recs[2], "sack", count=False)
    board.add_sack(200, 300, 0)  # SACKed while queued: not resent
    out = rec.take_resends(0.3, 0)
    assert out == recs[:2]
    st = rec.stats
    assert (st.rexmit_rack, st.rexmit_tlp, st.rexmit_sack) == (1, 1, 0)
    assert [r.sent_why for r in out] == ["rack", "tlp"]
    assert [f["why"] for _, ev, f in events if ev == "fast_rexmit"] == ["rack", "tlp"]


def test_karn_no_sample_from_a_resent_segment():
    rec, board, recs, _ = recovery()
    rec._mark_lost(recs[0], "timeout")
    rec.take_resends(0.3, 0)
    rec.on_new_ack(100, 1000, 0.4, (0.0, 0))
    assert rec.rtt.samples == 0
    rec.on_new_ack(200, 1000, 0.45, (0.0, 0))
    assert rec.rtt.samples == 1 and rec.take_sample() == pytest.approx(0.45)


# --- pacing ----------------------------------------------------------------------


def test_pacer_token_bucket():
    p = Pacer(1.0)
    rate = 100_000.0  # bytes per second
    # a full bucket: PACE_BURST's worth (100 bytes here), but never less than two segments
    assert PACE_BURST * rate < 2000
    assert p.allowance(1.0, 1000, rate) == 2000
    p.spent(2000, rate, 1000)
    assert p.deadline == pytest.approx(1.01)  # the next 1000 bytes at the rate
    assert p.allowance(1.005, 1000, rate) == 0 and p.deadline == pytest.approx(1.01)
    assert p.allowance(1.01, 1000, rate) == 1000


def test_pacer_rejects_a_negative_gain():
    with pytest.raises(ValueError):
        Pacer(-1.0)


# --- the send queue --------------------------------------------------------------


def test_send_queue_cuts_to_the_peer_mss_and_makes_records():
    q = SendQueue()
    data = bytes(range(250))
    q.push([data[:200], data[200:]])
    q.fit(100)
    assert [bytes(c) for c in q.chunks] == [data[:100], data[100:200], data[200:]]
    recs = q.take_run(0, 200, 10, 0.5)
    assert [(r.off, r.end, r.sent_at) for r in recs] == [(0, 100, 0.5), (100, 200, 0.5)]
    payload, _ = q.take_byte()
    assert bytes(payload) == data[200:201] and len(q) == 1
    q.finish(b"d" * 32)
    with pytest.raises(ValueError):
        q.push([b"late"])


# --- congestion control ----------------------------------------------------------


def test_registry_knows_the_fixed_window_as_none():
    assert "none" in congestion.names()
    cc = congestion.create("none", mss=MSS, window=4000)
    assert isinstance(cc, FixedWindow) and isinstance(cc, CongestionControl)
    with pytest.raises(ValueError, match="unknown congestion control"):
        congestion.create("no-such", mss=MSS, window=4000)


def test_fixed_window_never_moves():
    cc = FixedWindow(mss=MSS, window=4000)
    cc.on_sent(1000, 0.0)
    cc.on_acked(1000, 0.05, 0.05, 3000, True)
    cc.on_recovery_start(0.1, 3000)
    cc.on_lost(100, 0.0, 0.1, 3000)
    cc.on_rto(0.5)
    cc.on_recovery_end(0.6)
    assert cc.cwnd == 4000 and cc.ssthresh is None and cc.state == "fixed"
    assert cc.pacing_rate(0.1, 1.5) == pytest.approx(1.5 * 4000 / 0.1)
