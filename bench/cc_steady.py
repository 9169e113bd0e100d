"""Row 2b of bench_cc: row 2's models on the fake clock, with files long
enough for the steady state they describe.

Row 2 runs the real programs through the emulator; a 16 MiB file at
p = 0.1 % meets only about a dozen losses, and with no rate limit the first
slow start overshoots far above the model's window (no queue, no rising RTT
for HyStart++ to see).  From there every loss multiplies cwnd by 0.5
(NewReno) or 0.7 (CUBIC): it takes ln(peak / W) / ln(1 / beta) reductions
to come down to the model's window W, so the mean taken "from the first
reduction on" still holds the descent.  Here the same path (10 ms each way,
random loss p on the data path only, no rate limit, MSS 1452) runs on
tests/sim.py's fake clock, the two cores and nothing else, in a few seconds
for hundreds of MiB: the mean cwnd from the first reduction on (as row 2
takes it), and over the second half of the run only, against the model's
average window: sqrt(3 / (2p)) segments for NewReno (Mathis), RFC 9438's
max(cubic, Reno-friendly) for CUBIC (bench_cc.cubic_avg_segments).
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

#: (p, file MiB): row 2's 16 MiB at 0.1 %, then long enough for ~80 and
#: ~300 losses.
CASES = ((0.001, 16), (0.001, 128), (0.01, 32))
RTT = 0.02
MSS = 1452


def time_mean(cw: list[tuple[float, int]], start: float, end: float) -> float | None:
    """cwnd averaged over [start, end]: each value holds from its event to the next."""
    if end <= start:
        return None
    area = 0.0
    for (t0, v), (t1, _) in zip(cw, cw[1:] + [(end, 0)], strict=True):
        lo, hi = max(t0, start), min(t1, end)
        if hi > lo:
            area += v * (hi - lo)
    return area / (end - start)


def model_segments(cc: str, p: float) -> float:
    from bench.bench_cc import cubic_avg_segments
    return math.sqrt(3 / (2 * p)) if cc == "newreno" else cubic_avg_segments(p, RTT)


def _sim():
    """tests/sim.py, from the source tree this file is in."""
    root = str(Path(__file__).resolve().parents[1])
    if root not in sys.path:
        sys.path.insert(0, root)
    from tests import sim
    return sim


def one(cc: str, p: float, mib: int, seed: int) -> dict:
    sim = _sim()
    Channel, run_transfer = sim.Channel, sim.run_transfer
    data = os.urandom(mib << 20)
    r = run_transfer(data, mode="sr", cc=cc, window=8 << 20, mss=MSS,
                     forward=Channel(delay=RTT / 2, loss=p), backward=Channel(delay=RTT / 2),
                     capacity=16 << 20, min_rto=0.2, seed=seed, max_steps=50_000_000,
                     time_limit=1e5)
    if r.output != data:
        raise RuntimeError(f"{cc} p={p}: the file did not arrive")
    ev = [(t, f["cwnd"], f["state"]) for t, ev, f in r.sender.events if ev == "cwnd"]
    first = next(t for t, _, st in ev if st != "slow_start")
    cw = [(t, v) for t, v, _ in ev]
    end = r.now
    return {"cc": cc, "p": p, "mib": mib, "seed": seed,
            "reductions": sum(r.sender.cc.reductions.values()),
            # (in segments of the payload the sender used: the MSS less
            # the RFC 7323 timestamps' 12 bytes)
            "max_seg": max(v for _, v in cw) / r.sender.eff_mss,
            "mean_seg": time_mean(cw, first, end) / r.sender.eff_mss,
            "half_seg": time_mean(cw, end / 2, end) / r.sender.eff_mss,
            "model_seg": model_segments(cc, p)}


def rows(runs: int = 1) -> list[dict]:
    out = []
    for p, mib in CASES:
        for cc in ("newreno", "cubic"):
            for seed in range(1, runs + 1):
                rec = one(cc, p, mib, seed)
                out.append(rec)
                print(f"  row 2b {cc} p={p * 100:g}% {mib} MiB: {rec['reductions']} reductions, "
                      f"mean cwnd {rec['mean_seg']:.1f} seg, second half "
                      f"{rec['half_seg']:.1f}, model {rec['model_seg']:.1f}", flush=True)
    return out


def table(recs: list[dict]) -> list[str]:
    if not recs:
        return []
    lines = ["### Row 2b: row 2's models on the fake clock (tests/sim.py), long files", "",
             "| --cc | p (%) | file (MiB) | reductions (count) | largest cwnd (segments) | "
             "mean cwnd from the first reduction (segments) | mean cwnd, second half "
             "(segments) | model (segments) | second half / model (ratio) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in recs:
        lines.append(f"| {r['cc']} | {r['p'] * 100:g} | {r['mib']} | {r['reductions']} | "
                     f"{r['max_seg']:.0f} | {r['mean_seg']:.1f} | {r['half_seg']:.1f} | "
                     f"{r['model_seg']:.1f} | {r['half_seg'] / r['model_seg']:.2f} |")
    lines += ["", "The same path as row 2 without the programs: the two cores on a fake "
              "clock, 20 ms RTT, no rate limit, so the first slow start climbs until the "
              "first loss (the largest cwnd). Coming down from there takes "
              "ln(peak / W) / ln(1 / beta) reductions; a 16 MiB file at p = 0.1 % has "
              "hardly more, so its mean from the first reduction on is the descent, not "
              "the steady state. Models: sqrt(3 / (2p)) for NewReno (Mathis), RFC 9438's "
              "average for CUBIC (its Reno-friendly region at 20 ms).", ""]
    return lines
