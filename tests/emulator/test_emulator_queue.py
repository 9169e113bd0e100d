"""The bottleneck on a fake clock: departures, both limits, sojourn times, RED and CoDel in it."""

from __future__ import annotations

import math
import random

import pytest

from emulator.aqm import CoDel, Red
from emulator.impair import Impairer, Impairments
from emulator.queue import CODEL, QUEUE, RED, Bottleneck


def drain(bn: Bottleneck, until: float = math.inf) -> list:
    return bn.serve(until)


def test_departures_and_byte_tail_drop():
    bn = Bottleneck(rate=8000.0, limit_bytes=300)  # 100 bytes take 0.1 s
    assert [bn.arrive(0.0, 100, i)[0] for i in range(3)] == [None, None, None]
    assert bn.arrive(0.0, 1, "x") == (QUEUE, 3, 300)  # 301 > 300: tail drop
    assert bn.occupancy(0.15) == (2, 200)  # the first has left; the second is on the wire
    assert bn.arrive(0.15, 100, 3)[0] is None
    out = drain(bn, 1.0)
    assert [q.item for q in out] == [0, 1, 2, 3]
    assert [q.departure for q in out] == pytest.approx([0.1, 0.2, 0.3, 0.4])
    assert [q.sojourn for q in out] == pytest.approx([0.0, 0.1, 0.2, 0.15])
    assert bn.occupancy(1.0) == (0, 0)
    bn.arrive(1.0, 100, 4)
    assert drain(bn)[0].departure == pytest.approx(1.1)  # an idle link starts at once
    assert bn.dropped == {QUEUE: 1, RED: 0, CODEL: 0}


def test_link_speed_and_queue_with_the_impairer():
    """The old in-impairer queue's numbers: a burst of 20 into 10 kB at 400 kbit/s."""
    imp = Impairments(rate=400_000.0, queue=10_000, delay=0.05)
    im = Impairer(imp, random.Random(0))
    bn = imp.make_bottleneck()
    kept = []
    for _ in range(20):
        v = im.decide(0.0, 1000)
        if bn.arrive(0.0, 1000, v, v.u)[0] is None:
            kept.append(v)
    assert len(kept) == 10 and bn.dropped[QUEUE] == 10
    releases = [q.departure + q.item.after for q in drain(bn)]
    assert releases == pytest.approx([0.02 * (i + 1) + 0.05 for i in range(10)])


def test_packet_limit_counts_the_one_on_the_wire():
    bn = Bottleneck(rate=8000.0, limit_packets=5)  # 100 bytes: 0.1 s each
    results = [bn.arrive(0.0, 100, i) for i in range(20)]
    assert [r[0] for r in results] == [None] * 5 + [QUEUE] * 15
    assert [r[1] for r in results] == [0, 1, 2, 3, 4] + [5] * 15  # packets found on arrival
    assert [r[2] for r in results] == [0, 100, 200, 300, 400] + [500] * 15
    assert bn.arrive(0.05, 100, "late")[0] == QUEUE  # the first is still being serialised
    assert bn.arrive(0.1, 100, "next")[0] is None  # it has left: room for one
    assert [q.item for q in drain(bn)] == [0, 1, 2, 3, 4, "next"]
    assert bn.counters()["queue_peak_packets"] == 5


@pytest.mark.parametrize(
    "size, limit_bytes, limit_packets, fits",
    [
        (1000, 2500, 5, 2),  # the byte limit binds
        (100, 2500, 5, 5),  # the packet limit binds
        (100, None, 7, 7),  # packets only
        (100, 250, None, 2),  # bytes only
        (100, None, None, 1000),  # no limit at all
    ],
)
def test_either_or_both_limits(size, limit_bytes, limit_packets, fits):
    bn = Bottleneck(rate=1000.0, limit_bytes=limit_bytes, limit_packets=limit_packets)
    causes = [bn.arrive(0.0, size, i)[0] for i in range(1000)]
    assert causes.count(None) == fits
    assert causes == [None] * fits + [QUEUE] * (1000 - fits)


def test_sojourn_is_the_wait_before_serialisation():
    bn = Bottleneck(rate=8000.0)  # 1000 bytes: 1 s
    for t in (0.0, 0.0, 0.5, 4.0):
        bn.arrive(t, 1000, t)
    out = drain(bn)
    assert [q.start for q in out] == pytest.approx([0.0, 1.0, 2.0, 4.0])
    assert [q.sojourn for q in out] == pytest.approx([0.0, 1.0, 1.5, 0.0])
    c = bn.counters()
    assert c["sojourn_max"] == pytest.approx(1.5)
    assert c["sojourn_mean"] == pytest.approx(2.5 / 4)


def test_time_never_goes_back():
    bn = Bottleneck(rate=8000.0)
    bn.arrive(1.0, 100, "a")
    assert bn.serve(2.0)[0].departure == pytest.approx(1.1)
    bn.arrive(1.5, 100, "b")  # an arrival stamped before the last serve counts as at 2.0
    q = bn.serve(3.0)[0]
    assert q.arrival == 2.0 and q.start == 2.0


def test_next_start_and_has_output():
    bn = Bottleneck(rate=8000.0)
    assert bn.next_start() is None
    bn.arrive(0.0, 100, "a")  # the link is idle: dequeued at once
    assert bn.has_output() and bn.next_start() is None
    bn.arrive(0.01, 100, "b")
    assert bn.next_start() == pytest.approx(0.1)
    assert [q.item for q in bn.serve(0.05)] == ["a"] and not bn.has_output()
    assert bn.pending() == ["b"]


class SpyRed(Red):
    """RED that records what the bottleneck tells it."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.calls: list[tuple[float, int, float, float]] = []

    def on_arrival(self, now, qlen, idle_since, u):
        self.calls.append((now, qlen, idle_since, u))
        return super().on_arrival(now, qlen, idle_since, u)


def test_red_sees_every_arrival_with_the_queue_it_finds():
    red = SpyRed(min_th=2, max_th=4, max_p=1.0, w_q=1.0)  # w_q = 1: avg = q
    bn = Bottleneck(rate=8000.0, limit_packets=10, aqm=red)
    causes = [bn.arrive(0.0, 100, i, 0.99)[0] for i in range(8)]
    # q = 2: p_b = 0; q = 3: p_b = 0.5, count 1, p_a = 0.5 / (1 - 0.5) = 1: dropped,
    # and so is every later one, which finds the same 3
    assert [c[1] for c in red.calls] == [0, 1, 2, 3, 3, 3, 3, 3]
    assert causes == [None, None, None, RED, RED, RED, RED, RED]
    assert bn.dropped[RED] == 5 and bn.dropped[QUEUE] == 0
    drain(bn, 10.0)
    bn.arrive(10.0, 100, "later", 0.99)
    assert red.calls[-1][1:3] == (0, pytest.approx(0.3))  # idle since the third left


def test_codel_drops_at_dequeue_and_frees_the_link():
    """A source at twice the link rate: CoDel drops only datagrams that
    waited at least ``target``, and only once the sojourn time has been above
    target for an interval; a dropped datagram takes no link time."""
    codel = CoDel(target=0.005, interval=0.1)
    bn = Bottleneck(rate=1_000_000.0, aqm=codel)  # 1250 bytes: 10 ms
    t = 0.0
    out = []
    while t < 3.0:
        bn.arrive(t, 1250, t)
        out += bn.serve(t)
        t += 0.005
    out += bn.serve(3.0)
    drops = [q for q in out if q.cause == CODEL]
    sent = [q for q in out if q.cause is None]
    assert drops and bn.dropped[CODEL] == len(drops)
    assert all(q.sojourn >= 0.005 for q in drops)
    first_above = min(q.start for q in out if q.sojourn >= 0.005)
    assert min(q.start for q in drops) >= first_above + 0.1
    starts = [q.start for q in sent]
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert min(gaps) == pytest.approx(0.01)  # back to back, never closer
    for q in drops:  # the datagram after a drop starts at the drop's moment, or arrives later
        nxt = next(s for s in sent if s.arrival > q.arrival)
        assert nxt.start == pytest.approx(max(q.start, nxt.arrival))
