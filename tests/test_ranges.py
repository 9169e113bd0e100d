"""RangeSet and the receiver's Reassembly alone, against plain models: a
Python set of the offsets held, and a bytearray of what arrived."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.ranges import RangeSet
from common.reassembly import Reassembly
from common.seq import wrap

pytestmark = pytest.mark.timeout(120)

ops = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(0, 200), st.integers(0, 40)),
        st.tuples(st.just("drop"), st.integers(0, 240), st.just(0)),
    ),
    max_size=60,
)


def _ranges_of(model: set[int]) -> list[tuple[int, int]]:
    """The maximal runs of consecutive integers in ``model``."""
    out: list[list[int]] = []
    for x in sorted(model):
        if out and out[-1][1] == x:
            out[-1][1] = x + 1
        else:
            out.append([x, x + 1])
    return [tuple(r) for r in out]


@settings(max_examples=300, deadline=None)
@given(ops, st.integers(0, 250))
def test_rangeset_is_a_set_of_offsets(steps, probe):
    rs, model = RangeSet(), set()
    for op, a, n in steps:
        if op == "add":
            new = set(range(a, a + n)) - model
            fresh = rs.add(a, a + n)
            got = {x for lo, hi in fresh for x in range(lo, hi)}
            assert got == new
            assert all(lo < hi for lo, hi in fresh)
            assert fresh == sorted(fresh)
            assert fresh == _ranges_of(new)  # each piece maximal, none touching
            model |= new
        else:
            below = {x for x in model if x < a}
            assert rs.drop_below(a) == len(below)
            model -= below
        assert list(rs) == _ranges_of(model)  # sorted, disjoint, touching ones merged
        assert list(reversed(rs)) == _ranges_of(model)[::-1]
        assert rs.covered == len(model)
        assert len(rs) == len(_ranges_of(model))
        assert bool(rs) == bool(model)
        assert rs.end == (max(model) + 1 if model else None)
    assert (probe in rs) == (probe in model)
    span = rs.span(probe)
    if probe in model:
        lo, hi = span
        assert lo <= probe < hi and set(range(lo, hi)) <= model
        assert lo - 1 not in model and hi not in model
    else:
        assert span is None


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 100), st.integers(1, 30)), max_size=12),
       st.integers(0, 120), st.integers(0, 30))
def test_rangeset_overlaps(adds, left, n):
    rs, model = RangeSet(), set()
    for a, k in adds:
        rs.add(a, a + k)
        model |= set(range(a, a + k))
    assert rs.overlaps(left, left + n) == bool(model & set(range(left, left + n)))


def test_rangeset_examples():
    rs = RangeSet()
    assert rs.add(10, 20) == [(10, 20)]
    assert rs.add(30, 40) == [(30, 40)]
    assert rs.add(20, 30) == [(20, 30)]  # touching both: one range
    assert list(rs) == [(10, 40)]
    assert rs.add(12, 18) == []  # held already
    assert rs.add(5, 45) == [(5, 10), (40, 45)]
    assert rs.add(7, 7) == [] and rs.covered == 40
    assert rs.drop_below(20) == 15 and list(rs) == [(20, 45)]
    assert rs.drop_below(100) == 25 and not rs and rs.covered == 0


# --- Reassembly ----------------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 60), st.integers(1, 20)), max_size=25))
def test_reassembly_delivers_the_stream_once(arrivals):
    """Out-of-order pieces of one stream, delivered from offset 0 on: each
    byte is stored once (duplicates say so), and what comes out is the
    stream itself, without a gap or a repeat."""
    stream = bytes(range(256)) * 1
    re_, rcv_nxt, got, model = Reassembly(), 0, bytearray(), set()
    for off, n in arrivals:
        off += 1  # offset 0 is the hole until the end
        new = set(range(off, off + n)) - model
        assert re_.store(off, stream[off:off + n]) == bool(new)
        model |= new
        assert re_.bytes == len(model) == sum(len(v) for v in re_.pieces.values())
        for k, v in re_.pieces.items():
            assert v == stream[k:k + len(v)]
    got += stream[:1]
    rcv_nxt = 1
    for data in re_.pull(rcv_nxt):
        got += data
        rcv_nxt += len(data)
    run = 1
    while run in model:
        run += 1
    assert bytes(got) == stream[:run]
    assert re_.bytes == len({x for x in model if x >= run})
    assert all(k > run for k in re_.pieces)


def test_reassembly_sack_blocks_newest_first():
    re_ = Reassembly()
    base = 0xFFFFFF00  # the wire numbers wrap within the blocks
    for off in (100, 300, 500, 700, 900):
        re_.store(off, b"x" * 50)
    blocks = re_.sack_blocks(base)
    assert blocks == tuple((wrap(o, base), wrap(o + 50, base)) for o in (900, 700, 500, 300))
    re_.store(320, b"y" * 200)  # joins 300 and 500: that block first
    assert re_.sack_blocks(base)[0] == (wrap(300, base), wrap(550, base))
    assert re_.fresh == 4  # the blocks that changed since fresh was last cleared
