"""common.seq: sequence arithmetic modulo 2**32 and the offset <-> wire number mapping."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from common.seq import HALF, MASK, MOD, seq_diff, unwrap, wrap

u32 = st.integers(0, MASK)
#: ISNs spread over the space, with the wrap's neighbourhood drawn often.
isns = st.one_of(u32, st.integers(MOD - 5000, MASK), st.integers(0, 5000))
#: Signed distances strictly inside the half-space (the one where ordering is defined).
dists = st.integers(-(HALF - 1), HALF - 1)


def seq_add(a: int, n: int) -> int:
    """``a + n`` modulo 2**32 (the programs never need it: they work on offsets)."""
    return (a + n) & MASK


def test_constants():
    assert MOD == 2**32 and MASK == 2**32 - 1 and HALF == 2**31


def test_concrete_wrap_cases():
    assert seq_add(MASK, 1) == 0
    assert seq_add(MASK - 2, 5) == 2
    assert seq_add(3, -5) == MASK - 1
    assert seq_diff(2, MASK - 2) == 5
    assert seq_diff(MASK - 2, 2) == -5
    assert seq_diff(0, MASK) == 1 and seq_diff(5, 5) == 0
    # Exactly half apart: the distance is -2**31 both ways (the one ambiguous point).
    assert seq_diff(HALF, 0) == -HALF
    assert seq_diff(0, HALF) == -HALF


@given(u32, u32)
def test_diff_range(a, b):
    assert -HALF <= seq_diff(a, b) < HALF


@given(u32, u32)
@example(0, MASK)
@example(MASK, 0)
def test_diff_antisymmetric(a, b):
    d = seq_diff(a, b)
    if d != -HALF:
        assert seq_diff(b, a) == -d
    else:
        assert seq_diff(b, a) == -HALF


@given(u32, dists)
@example(MASK - 2, 5)
@example(2, -5)
def test_add_and_diff_are_inverse(a, n):
    b = seq_add(a, n)
    assert 0 <= b <= MASK
    assert seq_diff(b, a) == n
    assert seq_add(b, -n) == a


@given(isns, st.integers(0, 2**40))
def test_wrap_is_mod_2_32(isn, off):
    base = seq_add(isn, 1)
    assert wrap(off, base) == (isn + 1 + off) % MOD


@given(isns, st.integers(0, 2**40), st.integers(-(HALF - 1), HALF - 1))
@example(MASK - 2, 0, 0)  # ISN just below 2**32: the wire wraps within the first bytes
@example(MASK - 2, 5, -5)
@example(MASK, 0, 10)
def test_unwrap_of_wrap_near_checkpoint(isn, checkpoint, delta):
    base = seq_add(isn, 1)
    off = checkpoint + delta
    if off < -1:  # offsets are >= -1 (the SYN sits at -1)
        off = -1
    assert unwrap(wrap(off, base), base, checkpoint) == off


@pytest.mark.parametrize("isn", [MASK - 2, MASK - 1, MASK, 0, HALF - 1, HALF])
def test_offsets_through_the_wrap(isn):
    """Consecutive offsets from a checkpoint that trails them, as a receiver sees them."""
    base = seq_add(isn, 1)
    for off in list(range(-1, 20)) + [2**32 - 3, 2**32, 2**32 + 7, 5 * 2**32 + 1]:
        checkpoint = max(0, off - 1000)
        w = wrap(off, base)
        assert 0 <= w <= MASK
        assert unwrap(w, base, checkpoint) == off
        assert unwrap(w, base, off) == off


def test_unwrap_picks_the_closest():
    base = 100
    # wire 100 is offset 0, 2**32, 2*2**32, ...: the checkpoint chooses
    assert unwrap(100, base, 0) == 0
    assert unwrap(100, base, MOD - 10) == MOD
    assert unwrap(100, base, 2 * MOD + 5) == 2 * MOD
    # wire 99 is offset -1 (the SYN) near the start
    assert unwrap(99, base, 0) == -1
