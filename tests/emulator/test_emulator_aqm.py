"""RED (Floyd and Jacobson 1993) and CoDel (RFC 8289) alone, on a fake clock.

The expected values are the paper's and the RFC's formulas, computed here
independently of the code under test."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest
from emu_support import assert_rate

from emulator.aqm import CoDel, Red

# ------------------------------------------------------------------------ RED


def test_red_average_is_the_ewma_of_the_queue():
    w = 0.1
    red = Red(min_th=50, max_th=60, w_q=w)
    expected = 0.0
    for k, q in enumerate([3, 7, 7, 1, 12, 5] * 5):
        red.on_arrival(k * 0.001, q, 0.0, 0.5)
        expected = (1 - w) * expected + w * q
        assert red.avg == pytest.approx(expected, rel=1e-12)


def test_red_average_decays_over_an_idle_queue():
    """An empty queue since ``idle_since``: avg *= (1 - w_q) ** m, m = idle / s."""
    w, s = 0.02, 0.001  # s: a typical datagram's transmission time
    red = Red(min_th=50, max_th=60, w_q=w, idle_tx=s)
    red.avg = 8.0
    red.on_arrival(10.250, 0, 10.0, 0.5)  # idle for 250 ms: m = 250
    assert red.avg == pytest.approx(8.0 * (1 - w) ** 250, rel=1e-12)
    red.avg = 8.0
    red.on_arrival(20.0, 0, 20.0, 0.5)  # empty this very moment: one step with q = 0
    assert red.avg == pytest.approx(8.0 * (1 - w), rel=1e-12)


def test_red_below_min_never_drops_at_max_always_drops():
    red = Red(min_th=5, max_th=15, max_p=0.1, w_q=1.0)  # w_q = 1: avg is q
    assert not any(red.on_arrival(0.0, q, 0.0, 0.0) for q in [0, 1, 4, 4.99])
    assert red.count == -1
    assert all(red.on_arrival(0.0, q, 0.0, 0.999) for q in [15, 16, 100])
    assert red.count == 0


def _gaps(red: Red, q: float, draws) -> list[int]:
    """Packets from one drop to the next at a constant queue ``q``."""
    gaps, since = [], 0
    for u in draws:
        since += 1
        if red.on_arrival(0.0, q, 0.0, u):
            gaps.append(since)
            since = 0
    return gaps


def test_red_count_spreads_drops_evenly():
    """p_a = p_b / (1 - count p_b): the gap X between drops has
    P(X = n) = p_b / (1 - p_b) for n = 1 .. 1/p_b - 1 (uniform), where
    independent drops with probability p_b would give a geometric gap."""
    red = Red(min_th=5, max_th=15, max_p=0.1, w_q=1.0)
    p_b = 0.1 * (10 - 5) / (15 - 5)  # 0.05 at avg = 10
    rng = random.Random(4)
    red.on_arrival(0.0, 10, 0.0, 0.999)  # enter the region: count 0
    gaps = _gaps(red, 10, (rng.random() for _ in range(200_000)))
    top = round(1 / p_b) - 1  # 19
    assert max(gaps) == top and min(gaps) == 1
    counts = Counter(gaps)
    for n in range(1, top + 1):
        assert_rate(counts[n], len(gaps), p_b / (1 - p_b), f"gap of {n} packets")
    # With u just under 1 the drop comes only when p_a reaches 1: every 19th packet.
    red.count = 0
    assert set(_gaps(red, 10, [0.999999] * 1000)) == {top}


@pytest.mark.parametrize(
    "kwargs",
    [dict(min_th=5, max_th=5), dict(min_th=-1), dict(max_p=0.0), dict(max_p=1.5),
     dict(w_q=0.0), dict(w_q=2.0), dict(idle_tx=-1.0)],
)
def test_red_bad_settings_raise(kwargs):
    with pytest.raises(ValueError):
        Red(**kwargs)


# ---------------------------------------------------------------------- CoDel

TARGET, INTERVAL = 0.005, 0.100
TICK = 1 / 1024  # dequeue every ~1 ms; a power of two keeps the fake clock exact


class Pkt:
    def __init__(self, arrival: float):
        self.arrival = arrival


class ScriptedQueue:
    """Every pop at ``now`` gives a packet that waited ``sojourn(now)``; the
    backlog behind it is ``backlog`` bytes (more than MAXPACKET by default)."""

    maxpacket = 1500

    def __init__(self, sojourn, backlog: int = 100 * 1500):
        self.sojourn = sojourn
        self.backlog = backlog
        self.popped = 0

    def pop(self, now):
        self.popped += 1
        return Pkt(now - self.sojourn(now))

    def bytes_at(self, now):
        return self.backlog


def run(codel: CoDel, queue, start: float, end: float):
    """Dequeue once per tick from ``start`` to ``end``; (drop times, dequeue times)."""
    drops, ticks = [], []
    k = 0
    while True:
        now = start + k * TICK
        if now > end:
            return drops, ticks
        ticks.append(now)
        _, dropped = codel.dequeue(now, queue)
        drops += [now] * len(dropped)
        assert len(drops) < 10_000, "a runaway drop rate"
        k += 1


def first_tick_at_or_after(t: float, start: float) -> float:
    return start + math.ceil((t - start) / TICK) * TICK


def test_codel_never_drops_below_target():
    codel = CoDel(TARGET, INTERVAL)
    drops, _ = run(codel, ScriptedQueue(lambda now: TARGET - 1e-6), 0.0, 10.0)
    assert drops == [] and not codel.dropping


def test_codel_does_not_drop_when_above_target_for_less_than_an_interval():
    # Above target for 90 ms, then one dequeue below it, over and over.
    def sojourn(now):
        return TARGET * 4 if (now % 0.091) < 0.090 else 0.0

    drops, _ = run(CoDel(TARGET, INTERVAL), ScriptedQueue(sojourn), 0.0, 10.0)
    assert drops == []


def test_codel_does_not_drop_with_one_packet_or_less_queued():
    queue = ScriptedQueue(lambda now: 1.0, backlog=1500)  # sojourn huge, backlog <= MAXPACKET
    drops, _ = run(CoDel(TARGET, INTERVAL), queue, 0.0, 5.0)
    assert drops == []


def test_codel_first_drop_after_a_whole_interval_above_then_the_control_law():
    """Sojourn goes above target at 1 s and stays there.  The first dequeue at
    or after that sets first_above_time = t1 + interval; the first drop is at
    the first dequeue at or after it.  Then drop k + 1 is due interval /
    sqrt(k + 1) after drop k was due (RFC 8289: drop_next = control_law(drop_next))."""
    start, above_from = 0.0, 1.0
    codel = CoDel(TARGET, INTERVAL)
    queue = ScriptedQueue(lambda now: 0.020 if now >= above_from else 0.001)
    drops, _ = run(codel, queue, start, 4.0)

    t1 = first_tick_at_or_after(above_from, start)
    first = first_tick_at_or_after(t1 + INTERVAL, start)
    assert drops[0] == first
    expected = [first]
    due = first + INTERVAL / math.sqrt(1)  # entering: count = 1, drop_next = now + interval
    count = 1
    while len(expected) < len(drops):
        count += 1
        expected.append(first_tick_at_or_after(due, start))
        due += INTERVAL / math.sqrt(count)
    assert drops == expected
    assert len(drops) > 30 and codel.count == len(drops) and codel.dropping


def test_codel_leaves_the_dropping_state_when_sojourn_falls_below_target():
    below_from = 2.0
    codel = CoDel(TARGET, INTERVAL)
    queue = ScriptedQueue(lambda now: 0.050 if now < below_from else 0.001)
    drops, _ = run(codel, queue, 0.0, 3.0)
    assert drops and max(drops) < below_from
    assert not codel.dropping
    # A packet below target once is enough: the next dequeue after 2 s is not a drop.
    assert not [d for d in drops if d >= first_tick_at_or_after(below_from, 0.0)]


def _episode(codel: CoDel, start: float, above: float, below: float) -> list[float]:
    """Sojourn above target for ``above`` seconds from ``start``, then below for ``below``."""
    def sojourn(now):
        return 0.050 if now < start + above else 0.001

    drops, _ = run(codel, ScriptedQueue(sojourn), start, start + above + below)
    return drops


def test_codel_reentry_resumes_from_the_last_drop_rate():
    """Re-entering soon (now - drop_next < 16 intervals) with more than one
    drop in the last episode: count = count - lastcount, and the next drop is
    due interval / sqrt(count) later; re-entering late: count = 1."""
    codel = CoDel(TARGET, INTERVAL)
    first = _episode(codel, 0.0, 1.0, 0.2)
    n = len(first)  # lastcount was 1 when the episode began
    assert n > 2 and codel.count == n and not codel.dropping
    second = _episode(codel, 1.2, 1.0, 0.2)
    assert codel.lastcount == n - 1  # count on re-entry: delta = n - 1
    assert second[1] == first_tick_at_or_after(second[0] + INTERVAL / math.sqrt(n - 1), 1.2)

    late = CoDel(TARGET, INTERVAL)
    _episode(late, 0.0, 1.0, 0.2)
    second = _episode(late, 1.0 + 0.2 + 16 * INTERVAL, 1.0, 0.2)  # long after
    assert late.lastcount == 1
    assert second[1] == first_tick_at_or_after(second[0] + INTERVAL, 1.0 + 0.2 + 16 * INTERVAL)


def test_codel_empty_queue_resets_the_above_target_clock():
    codel = CoDel(TARGET, INTERVAL)

    class Emptying(ScriptedQueue):
        def pop(self, now):
            if 0.5 <= now < 0.5 + TICK:  # empty once, in the middle of the interval
                return None
            return super().pop(now)

    drops, _ = run(codel, Emptying(lambda now: 0.050 if now >= 0.45 else 0.0), 0.0, 1.0)
    # Above target from 0.45 s (first drop due at 0.55 s), but the queue is
    # empty at 0.5 s: the interval starts again at the next dequeue.
    assert drops[0] == first_tick_at_or_after(0.5 + TICK + INTERVAL, 0.0)


@pytest.mark.parametrize("target, interval", [(0.0, 0.1), (0.1, 0.1), (0.2, 0.1), (0.005, -1.0)])
def test_codel_bad_settings_raise(target, interval):
    with pytest.raises(ValueError):
        CoDel(target, interval)
