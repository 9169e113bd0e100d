"""The link's pure decisions: rates within 99.9% intervals, determinism, exact drops.

The queue in front of a link speed is :mod:`emulator.queue` (test_emulator_queue.py)."""

from __future__ import annotations

import math
import random

import pytest
from emu_support import Z999, assert_rate

from emulator.impair import (
    BLACKHOLE,
    BURST,
    LIST,
    LOSS,
    Impairer,
    Impairments,
    flip_bits,
)

N = 20_000
SIZE = 1000  # bytes per datagram


def run(imp: Impairments, seed: int, n: int = N, size: int = SIZE, dt: float = 0.001):
    im = Impairer(imp, random.Random(seed))
    return im, [im.decide(i * dt, size) for i in range(n)]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_rates_fall_inside_999_intervals(seed):
    imp = Impairments(loss=0.10, dup=0.05, reorder=0.07, ber=10 / 100000)
    im, vs = run(imp, seed)
    lost = sum(v.drop == LOSS for v in vs)
    fwd = [v for v in vs if v.drop is None]
    assert lost + len(fwd) == N
    assert_rate(lost, N, 0.10, "loss")
    assert_rate(sum(v.dup for v in fwd), len(fwd), 0.05, "duplication")
    assert_rate(sum(v.reorder for v in fwd), len(fwd), 0.07, "reordering")
    # A 8000-bit datagram is corrupted with probability 1 - (1 - p)^8000.
    p_bit = 10 / 100000
    p_dgram = 1 - (1 - p_bit) ** (SIZE * 8)
    assert_rate(sum(bool(v.flips) for v in fwd), len(fwd), p_dgram, "corrupted datagrams")
    flipped = sum(len(v.flips) for v in fwd)
    assert_rate(flipped, len(fwd) * SIZE * 8, p_bit, "flipped bits")
    # The counters say what the verdicts say.
    assert im.dropped[LOSS] == lost
    assert im.corrupted == sum(bool(v.flips) for v in fwd)
    assert im.bits_flipped == flipped
    assert im.duplicated == sum(v.dup for v in fwd)
    assert im.reordered == sum(v.reorder for v in fwd)


def test_bit_error_positions_are_uniform_distinct_and_in_range():
    imp = Impairments(ber=50 / 100000)
    _, vs = run(imp, 11, n=5000, size=200)
    nbits = 200 * 8
    positions = [p for v in vs for p in v.flips]
    for v in vs:
        assert v.flips == sorted(set(v.flips))
        assert all(0 <= p < nbits for p in v.flips)
    # Uniform: the first half of the datagram gets half the errors, and each byte's
    # most significant bit as often as any other bit.
    assert_rate(sum(p < nbits // 2 for p in positions), len(positions), 0.5, "first half")
    assert_rate(sum(p % 8 == 0 for p in positions), len(positions), 1 / 8, "MSB of a byte")


def test_bit_error_count_is_binomial_in_mean_and_variance():
    p = 200 / 100000
    nbits = 500 * 8
    im = Impairer(Impairments(ber=p), random.Random(5))
    counts = [len(im.bit_errors(nbits)) for _ in range(N)]
    mean = sum(counts) / N
    var = sum((c - mean) ** 2 for c in counts) / (N - 1)
    exp_mean, exp_var = nbits * p, nbits * p * (1 - p)
    assert abs(mean - exp_mean) <= Z999 * math.sqrt(exp_var / N)
    # The variance of a sample variance is about 2 sigma^4 / N for a near-normal count.
    assert abs(var - exp_var) <= Z999 * math.sqrt(2 * exp_var**2 / N) * 1.2


def test_ber_extremes():
    im = Impairer(Impairments(ber=1.0), random.Random(0))
    assert im.bit_errors(24) == list(range(24))
    im = Impairer(Impairments(ber=0.0), random.Random(0))
    assert im.decide(0.0, 1500).flips == []


def test_flip_bits_flips_exactly_those_bits():
    data = bytearray(b"\x00\xff\x0f")
    flip_bits(data, [0, 8, 23])
    assert data == bytearray(b"\x80\x7f\x0e")
    flip_bits(data, [0, 8, 23])
    assert data == bytearray(b"\x00\xff\x0f")


def test_same_seed_same_decisions_other_seed_other_decisions():
    imp = Impairments(loss=0.2, dup=0.1, reorder=0.1, ber=5 / 100000, jitter=0.01,
                      ge_p=0.01, ge_r=0.3, ge_good_loss=0.01)
    sizes = [random.Random(99).randrange(20, 1500) for _ in range(3000)]
    a = Impairer(imp, random.Random(42))
    b = Impairer(imp, random.Random(42))
    c = Impairer(imp, random.Random(43))
    ka = [a.decide(i * 0.001, s).key() for i, s in enumerate(sizes)]
    kb = [b.decide(i * 0.001, s).key() for i, s in enumerate(sizes)]
    kc = [c.decide(i * 0.001, s).key() for i, s in enumerate(sizes)]
    assert ka == kb
    assert ka != kc


def test_time_dependent_drops_do_not_shift_the_random_decisions():
    """An outage and a drop list change nothing for the datagrams they do not drop."""
    base = dict(loss=0.2, dup=0.1, reorder=0.1, ber=5 / 100000, jitter=0.01)
    _, plain = run(Impairments(**base), 8, n=2000)
    _, holed = run(Impairments(**base, blackhole=(0.5, 0.3), drop_list=frozenset({3, 1500})),
                   8, n=2000)
    changed = 0
    for p, h in zip(plain, holed, strict=True):
        if h.drop in (BLACKHOLE, LIST):
            changed += 1
            continue
        assert p.key() == h.key()
    assert changed == 300 + 2  # datagrams 501..800 arrive inside the outage; 3 and 1500 listed


def test_drop_list_drops_exactly_those():
    im, vs = run(Impairments(drop_list=frozenset({1, 5, 9, 1000})), 0, n=50)
    assert [v.n for v in vs if v.drop is not None] == [1, 5, 9]
    assert all(v.drop == LIST for v in vs if v.drop is not None)
    assert im.dropped[LIST] == 3


def test_blackhole_drops_inside_and_nothing_outside():
    # first datagram at t=10: the outage is [12, 13.5) in absolute time
    im = Impairer(Impairments(blackhole=(2.0, 1.5)), random.Random(0))
    times = [10 + i * 0.01 for i in range(500)]
    vs = [im.decide(t, 100) for t in times]
    for t, v in zip(times, vs, strict=True):
        inside = 2.0 <= t - 10 < 3.5
        assert (v.drop == BLACKHOLE) == inside, (t, v)
    assert im.dropped[BLACKHOLE] == sum(2.0 <= t - 10 < 3.5 for t in times)


def test_drop_cause_precedence():
    imp = Impairments(loss=1.0, drop_list=frozenset({1}), blackhole=(1.0, 1.0))
    im = Impairer(imp, random.Random(0))
    assert im.decide(0.0, 10).drop == LIST
    assert im.decide(0.5, 10).drop == LOSS
    assert im.decide(1.5, 10).drop == BLACKHOLE
    im = Impairer(Impairments(loss=1.0, ge_good_loss=1.0), random.Random(0))
    assert im.decide(0.0, 10).drop == BURST


def test_gilbert_elliott_loss_rate_and_burst_length():
    p, r = 0.02, 0.25
    n = 200_000
    im, vs = run(Impairments(ge_p=p, ge_r=r), 17, n=n, size=100)
    lost = [v.drop == BURST for v in vs]
    pi_bad = p / (p + r)
    lam = 1 - p - r  # autocorrelation of the state chain
    # The losses are correlated: the variance of their mean is inflated by (1+lam)/(1-lam).
    sd = math.sqrt(pi_bad * (1 - pi_bad) * (1 + lam) / (1 - lam) / n)
    assert abs(sum(lost) / n - pi_bad) <= Z999 * sd
    # Loss runs are geometric with mean 1/r.
    runs, cur = [], 0
    for x in lost:
        if x:
            cur += 1
        elif cur:
            runs.append(cur)
            cur = 0
    mean = sum(runs) / len(runs)
    assert abs(mean - 1 / r) <= Z999 * math.sqrt(1 - r) / r / math.sqrt(len(runs))
    assert im.dropped[BURST] == sum(lost)


def test_gilbert_elliott_partial_losses_in_each_state():
    imp = Impairments(ge_p=0.05, ge_r=0.2, ge_loss=0.5, ge_good_loss=0.02)
    im, vs = run(imp, 23, n=100_000, size=100)
    bad = im.bad_state_datagrams
    lost = im.dropped[BURST]
    # Conditioned on the state sequence the losses are independent Bernoulli draws.
    expected = bad * 0.5 + (len(vs) - bad) * 0.02
    var = bad * 0.25 + (len(vs) - bad) * 0.02 * 0.98
    assert abs(lost - expected) <= Z999 * math.sqrt(var)


def test_delay_and_jitter_bounds():
    im, vs = run(Impairments(delay=0.1, jitter=0.05), 3, n=5000)
    extra = [v.release - (v.n - 1) * 0.001 - 0.1 for v in vs]
    assert min(extra) >= 0.0 and max(extra) < 0.05
    # uniform: mean J/2, sd J/sqrt(12)
    assert abs(sum(extra) / len(extra) - 0.025) <= Z999 * 0.05 / math.sqrt(12 * len(extra))


@pytest.mark.parametrize(
    "kwargs",
    [dict(loss=-0.1), dict(loss=1.5), dict(dup=2.0), dict(delay=-1.0), dict(queue=0),
     dict(drop_list=frozenset({0})), dict(blackhole=(-1.0, 1.0)), dict(jitter=float("nan"))],
)
def test_bad_settings_raise(kwargs):
    with pytest.raises(ValueError):
        Impairments(**kwargs)


def test_scheduler_and_transparency_flags():
    assert Impairments().transparent
    assert not Impairments().needs_scheduler
    assert not Impairments(loss=0.1).transparent and not Impairments(loss=0.1).needs_scheduler
    assert Impairments(reorder=0.1).needs_scheduler
    assert Impairments(rate=1000.0).needs_scheduler
    assert Impairments(delay=0.3).hold == pytest.approx(0.6)
    assert Impairments().hold == pytest.approx(0.05)
    assert Impairments(reorder_hold=0.2).hold == pytest.approx(0.2)


def test_single_bit_corruption_rate_and_one_flip_each():
    """-C: the requested share of datagrams, each with exactly one flipped bit,
    anywhere in it (so the Internet checksum always catches it)."""
    _, vs = run(Impairments(corrupt=0.05), 21, n=N, size=1472)
    hit = [v for v in vs if v.flips]
    assert_rate(len(hit), N, 0.05, "single-bit corruption")
    assert all(len(v.flips) == 1 and 0 <= v.flips[0] < 1472 * 8 for v in hit)
    positions = [v.flips[0] for v in hit]
    assert_rate(sum(p < 1472 * 4 for p in positions), len(positions), 0.5, "first half")


def test_single_bit_flip_always_fails_the_internet_checksum():
    """Why -C exists: one flipped bit anywhere in a segment is always caught."""
    from common.segment import Segment, SegmentError, decode, encode

    rng = random.Random(3)
    raw = encode(Segment(seq=7, ack=9, flags=0x10, window=100, payload=rng.randbytes(1452)))
    im = Impairer(Impairments(corrupt=1.0), random.Random(4))
    for _ in range(500):
        data = bytearray(raw)
        flip_bits(data, im.decide(0.0, len(data)).flips)
        with pytest.raises(SegmentError):
            decode(data)
