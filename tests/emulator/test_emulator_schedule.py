"""Release order of the scheduler, reordering holds included, with a fake clock."""

from __future__ import annotations

import pytest

from emulator.schedule import Entry, ReleaseQueue


def entry(n: int, due: float, held: bool = False) -> Entry:
    return Entry(n, b"%d" % n, 1, arrival=0.0, due=due, held=held)


def drain(rq: ReleaseQueue, until: float, step: float = 0.001) -> list[tuple[float, int]]:
    """Step a fake clock, as the sending thread would, and log (time, n) of each release."""
    out = []
    t = 0.0
    while t <= until + 1e-12:
        nd = rq.next_due()
        if nd is None:
            break
        t = max(t, nd)
        out += [(round(t, 6), e.n) for e in rq.pop_due(t)]
    return out


def test_due_order_and_ties_in_push_order():
    rq = ReleaseQueue()
    for n, due in [(1, 0.3), (2, 0.1), (3, 0.1), (4, 0.2)]:
        rq.push(entry(n, due))
    assert [n for _, n in drain(rq, 1.0)] == [2, 3, 4, 1]
    assert rq.next_due() is None


def test_push_reports_a_new_earliest():
    rq = ReleaseQueue()
    assert rq.push(entry(1, 0.5))
    assert not rq.push(entry(2, 0.6))
    assert rq.push(entry(3, 0.1))


def test_held_datagram_leaves_right_after_its_successor():
    rq = ReleaseQueue()
    rq.push(entry(1, 0.10, held=True), hold=0.05)
    rq.push(entry(2, 0.12))
    assert drain(rq, 1.0) == [(0.12, 2), (0.12, 1)]
    assert rq.timeouts == 0


def test_consecutive_held_datagrams_follow_the_same_successor_in_order():
    rq = ReleaseQueue()
    rq.push(entry(1, 0.10, held=True), hold=0.5)
    rq.push(entry(2, 0.11, held=True), hold=0.5)
    rq.push(entry(3, 0.12))
    rq.push(entry(4, 0.13))
    assert [n for _, n in drain(rq, 1.0)] == [3, 1, 2, 4]


def test_held_datagram_without_successor_leaves_at_its_timeout():
    rq = ReleaseQueue()
    rq.push(entry(1, 0.10, held=True), hold=0.05)
    assert drain(rq, 1.0) == [(0.15, 1)]
    assert rq.timeouts == 1
    # A successor that comes after the timeout neither waits nor releases it twice.
    rq.push(entry(2, 0.30))
    assert drain(rq, 1.0) == [(0.3, 2)]


def test_held_datagram_never_leaves_before_its_own_release_time():
    # The successor is due earlier (jitter): the held one still waits for its own time.
    rq = ReleaseQueue()
    rq.push(entry(1, 0.20, held=True), hold=0.05)
    rq.push(entry(2, 0.15))
    assert drain(rq, 1.0) == [(0.15, 2), (0.2, 1)]
    assert rq.timeouts == 0


def test_pending_lists_each_unsent_entry_once():
    rq = ReleaseQueue()
    rq.push(entry(1, 0.20, held=True), hold=0.05)
    rq.push(entry(2, 0.15))
    rq.push(entry(3, 0.50))
    rq.pop_due(0.16)  # 2 leaves; 1 is freed and re-queued at its own time
    assert sorted(e.n for e in rq.pending()) == [1, 3]


@pytest.mark.parametrize("count", [1, 200])
def test_all_held_all_leave_by_timeout(count):
    rq = ReleaseQueue()
    for i in range(count):
        rq.push(entry(i + 1, 0.001 * i, held=True), hold=0.05)
    released = drain(rq, 10.0)
    assert [n for _, n in released] == list(range(1, count + 1))
    assert rq.timeouts == count
