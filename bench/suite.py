"""The four sections of the benchmark.  Each appends one record per run to
``ctx.records``; repetitions are interleaved (every contender once, then again)
so that a noisy moment on the shared machine hurts all of them alike.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench import models
from bench.runs import MIB, BenchError, Result, run_ours, run_quic, run_tcp, run_tftp, run_udp
from harness.procs import end_cpus
from runtime.udpgso import GSO_MAX_BYTES

KIB = 1024
#: Datagrams per system call of the path-ceiling blast: as many 1472-byte
#: datagrams as one GSO send of our sender carries (runtime.udpgso).
PATH_GSO = GSO_MAX_BYTES // 1472
#: Section 1's contender ``sr-burst``: sr with the receiver acknowledging
#: in-order data once at the end of each burst of datagrams it reads (as a
#: receiver behind GRO does) rather than for every second segment, the
#: programs' default (common/ackclock.py).  Its difference from ``sr`` is
#: the cost of those ACKs.
BURST_ACKS = ("--ack-every", "0", "--delayed-ack", "0")
#: Our contenders in section 1.
OURS = ("sr", "gbn", "sr-burst")


@dataclass
class Plan:
    """What to run; ``full()`` and ``quick()`` are the two presets."""

    quick: bool
    runs: int
    loopback_size: int
    loopback_window: int
    buffer: str
    delay: float                 # one-way delay on the data path, seconds
    ack_delay: float             # on the ACK path (0: no emulator there)
    losses: list[float]          # percent
    loss_windows: list[int]
    loss_target_s: float         # a file size that the model says takes this long
    loss_budget_s: float         # runs still going after this are cut
    sizes: list[int]
    windows: list[int]
    window_target_s: float
    #: Section 3b runs every window again at this loss (percent; 0: not at
    #: all): the share of the model that sr keeps as the rate grows.
    window_loss: float = 0.0
    max_file: int = 64 * MIB
    min_file: int = 256 * KIB
    #: Loopback runs (sections 1 and 3a, the fixed cost) put each end of a
    #: transfer, ours and the baselines' alike, on a CPU of its own.
    pin: bool = True

    @classmethod
    def full(cls) -> Plan:
        # Files up to 256 MiB through the emulator: at a 1 MiB window 64 MiB
        # take about 1 s, not the 2.5 s aimed at, and the first round trip
        # and the last (resends of the last window's losses, the FIN) are
        # then several % of a run that the steady-state models leave out.
        return cls(False, 3, 64 * MIB, 4 * MIB, "8M", 0.010, 0.0,
                   [0, 1, 2, 5, 10, 20], [64 * KIB, 1 * MIB], 2.5, 10.0,
                   [4 * MIB, 16 * MIB, 64 * MIB, 256 * MIB],
                   [16 * KIB, 64 * KIB, 256 * KIB, 1 * MIB, 4 * MIB], 2.5,
                   window_loss=20, max_file=256 * MIB)

    @classmethod
    def quick_plan(cls) -> Plan:
        return cls(True, 1, 16 * MIB, 4 * MIB, "8M", 0.010, 0.0,
                   [0, 2, 10], [64 * KIB, 1 * MIB], 1.0, 4.0,
                   [4 * MIB, 16 * MIB, 64 * MIB],
                   [16 * KIB, 256 * KIB, 4 * MIB], 1.0, window_loss=10)


@dataclass
class Context:
    plan: Plan
    tmp: Path
    records: list[dict] = field(default_factory=list)
    facts: dict = field(default_factory=dict)     # measured constants (ceilings, RTT)
    _files: dict[int, Path] = field(default_factory=dict)

    def file(self, size: int) -> Path:
        """A file of ``size`` random bytes in the temporary directory (made once)."""
        if size not in self._files:
            path = self.tmp / f"random-{size}.bin"
            with open(path, "wb") as f:
                left = size
                while left:
                    n = min(left, 4 * MIB)
                    f.write(os.urandom(n))
                    left -= n
            self._files[size] = path
        return self._files[size]

    @property
    def cpus(self) -> tuple[int, int] | None:
        """(sending end's, receiving end's) CPU for loopback runs, or None."""
        return end_cpus() if self.plan.pin else None

    def workdir(self) -> Path:
        w = self.tmp / "work"
        w.mkdir(exist_ok=True)
        return w

    def drop_files(self) -> None:
        for p in self._files.values():
            p.unlink(missing_ok=True)
        self._files.clear()


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _record(ctx: Context, section: str, name: str, rep: int, result: Result | None,
            error: str = "", **params) -> dict:
    rec = {"section": section, "name": name, "rep": rep, **params}
    if result is None:
        rec.update(ok=False, bytes=0, seconds=0.0, goodput=0.0, usage={}, info={},
                   note=error)
    else:
        rec.update(ok=result.ok, bytes=result.bytes, seconds=result.seconds,
                   goodput=result.goodput,
                   usage={k: asdict(u) for k, u in result.usage.items() if u is not None},
                   info=result.info, note=result.note)
    ctx.records.append(rec)
    rate = f"{rec['goodput'] * 8 / 1e6:9.1f} Mbit/s" if rec["goodput"] else "   failed"
    extra = " ".join(f"{k}={v}" for k, v in params.items())
    say(f"  [{section}] run {rep + 1} {name:<8} {extra:<28} {rate}  {rec['note']}")
    return rec


def _attempt(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs), ""
    except (BenchError, TimeoutError, RuntimeError, OSError) as exc:
        say(f"    ! {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
        say("      " + str(exc)[-1500:].replace("\n", "\n      "))
        return None, str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _rotate(items: list, k: int) -> list:
    k %= len(items)
    return items[k:] + items[:k]


def _emu_flags(delay: float, loss: float = 0.0) -> list[str]:
    flags = ["-d", f"{delay:g}"]
    if loss:
        flags += ["-L", f"{loss:g}"]
    return flags


def _ack_link(plan: Plan) -> list[str] | None:
    return _emu_flags(plan.ack_delay) if plan.ack_delay > 0 else None


def median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def pick_size(plan: Plan, rate: float, seconds: float) -> int:
    """The largest power-of-two file size (clamped) that ``rate`` moves in ``seconds``."""
    want = rate * seconds
    size = plan.min_file
    while size * 2 <= min(want, plan.max_file):
        size *= 2
    return size


# ------------------------------------------------------------- fixed costs


def section_fixed(ctx: Context) -> None:
    """A 1 KiB transfer: what a run costs whatever its size (start-up, imports,
    handshake, teardown), to take out of the per-MiB, per-segment and per-ACK figures."""
    plan = ctx.plan
    f = ctx.file(KIB)
    say(f"[0] fixed costs: a 1 KiB file, loopback sr, {plan.runs} run(s)")
    for rep in range(plan.runs):
        res, err = _attempt(run_ours, ctx.workdir(), f, "sr", plan.loopback_window,
                            buffer=plan.buffer, cpus=ctx.cpus)
        _record(ctx, "fixed", "sr", rep, res, err, size=KIB)


# ------------------------------------------------------------- section 1


def section_loopback(ctx: Context, only: list[str] | None = None) -> None:
    plan = ctx.plan
    f = ctx.file(plan.loopback_size)
    w = ctx.workdir()
    cpus = ctx.cpus
    contenders = [
        ("udp", lambda: run_udp(w, f, cpus=cpus)),
        ("tcp", lambda: run_tcp(w, f, cpus=cpus)),
        ("sr", lambda: run_ours(w, f, "sr", plan.loopback_window, buffer=plan.buffer,
                                cpus=cpus)),
        ("gbn", lambda: run_ours(w, f, "gbn", plan.loopback_window, buffer=plan.buffer,
                                 cpus=cpus)),
        ("sr-burst", lambda: run_ours(w, f, "sr", plan.loopback_window, buffer=plan.buffer,
                                      cpus=cpus, receiver_args=BURST_ACKS,
                                      name="ours-sr-burst")),
        ("tftpy", lambda: run_tftp(w, f, cpus=cpus)),
        ("aioquic", lambda: run_quic(w, f, cpus=cpus)),
    ]
    if only:
        contenders = [c for c in contenders if c[0] in only]
    say(f"[1] loopback, {plan.loopback_size // MIB} MiB file, {plan.runs} run(s) each")
    for rep in range(plan.runs):
        for name, fn in _rotate(contenders, rep):
            res, err = _attempt(fn)
            _record(ctx, "loopback", name, rep, res, err, size=plan.loopback_size)


# ------------------------------------------------------------- section 2


def _path_ceiling(ctx: Context, rep: int) -> None:
    """The UDP blast through the emulator with the same delay and no loss, in
    GSO batches as our sender sends (the emulator forwards them whole)."""
    plan = ctx.plan
    f = ctx.file(min(plan.loopback_size, 64 * MIB))
    res, err = _attempt(run_udp, ctx.workdir(), f, data_link=_emu_flags(plan.delay),
                        seed=1000 + rep, gso=PATH_GSO)
    _record(ctx, "path", "udp-emu", rep, res, err, size=f.stat().st_size)


def _path_facts(ctx: Context) -> tuple[float, float]:
    """(RTT s, payload ceiling bytes/s) of the emulated path, from what was measured."""
    ceil = median([r["goodput"] for r in ctx.records
                   if r["section"] == "path" and r["ok"]])
    rtts = [r["info"].get("rtt_min_ms") for r in ctx.records
            if r["section"] in ("loss", "windows") and r["info"].get("rtt_min_ms")]
    rtt = min(rtts) / 1000.0 if rtts else (ctx.plan.delay + ctx.plan.ack_delay + 0.0005)
    ceiling = models.payload_ceiling(ceil) if ceil else float("inf")
    ctx.facts.update(path_rtt=rtt, path_udp_ceiling=ceil, path_payload_ceiling=ceiling)
    return rtt, ceiling


def worst_loss_case(ctx: Context, seconds: float = 1.0) -> dict | None:
    """Section 2's case where sr came out worst against its model (median
    goodput over the model's), for a profile of the lossy path: its window,
    loss rate, emulator flags and a file the model moves in about
    ``seconds``.  None when section 2 did not run."""
    plan = ctx.plan
    runs: dict[tuple[int, float], list[float]] = {}
    for r in ctx.records:
        if r["section"] == "loss" and r["name"] == "sr" and r["ok"]:
            runs.setdefault((r["window"], r["loss"]), []).append(r["goodput"])
    if not runs:
        return None
    rtt, ceiling = _path_facts(ctx)

    def share(case):
        win, loss = case
        return median(runs[case]) / models.model("sr", loss / 100, win, rtt, ceiling)

    win, loss = min(runs, key=share)
    expect = models.model("sr", loss / 100, win, rtt, ceiling)
    return dict(window=win, loss=loss, share=share((win, loss)),
                size=pick_size(plan, expect, seconds), flags=_emu_flags(plan.delay, loss))


def section_loss(ctx: Context) -> None:
    plan = ctx.plan
    w = ctx.workdir()
    say(f"[2] {plan.delay * 1000:g} ms delay, loss {plan.losses} %, windows "
        f"{[x // KIB for x in plan.loss_windows]} KiB, {plan.runs} run(s) each")
    if not any(r["section"] == "path" for r in ctx.records):
        for rep in range(plan.runs):
            _path_ceiling(ctx, rep)
    rtt0, ceiling = _path_facts(ctx)
    configs = [(win, loss, mode) for win in plan.loss_windows for loss in plan.losses
               for mode in ("sr", "gbn")]
    for rep in range(plan.runs):
        for win, loss, mode in configs:
            expect = models.model(mode, loss / 100, win, rtt0, ceiling)
            f = ctx.file(pick_size(plan, expect, plan.loss_target_s))
            res, err = _attempt(run_ours, w, f, mode, win,
                                data_link=_emu_flags(plan.delay, loss),
                                ack_link=_ack_link(plan), buffer=plan.buffer, seed=1000 + rep,
                                timeout=plan.loss_budget_s, after_handshake=True)
            _record(ctx, "loss", mode, rep, res, err, window=win, loss=loss,
                    size=f.stat().st_size, seed=1000 + rep)
    _path_facts(ctx)


# ------------------------------------------------------------- section 3


def section_sizes(ctx: Context) -> None:
    plan = ctx.plan
    w = ctx.workdir()
    say(f"[3a] loopback sr, files {[s // MIB for s in plan.sizes]} MiB, {plan.runs} run(s)")
    for rep in range(plan.runs):
        for size in _rotate(plan.sizes, rep):
            f = ctx.file(size)
            res, err = _attempt(run_ours, w, f, "sr", plan.loopback_window,
                                buffer=plan.buffer, timeout=300, cpus=ctx.cpus)
            _record(ctx, "sizes", "sr", rep, res, err, size=size)
    # the biggest files are not needed again
    for size in plan.sizes:
        if size > plan.loopback_size:
            p = ctx._files.pop(size, None)
            if p:
                p.unlink(missing_ok=True)


def section_windows(ctx: Context) -> None:
    plan = ctx.plan
    w = ctx.workdir()
    losses = [0.0] + ([plan.window_loss] if plan.window_loss else [])
    say(f"[3b] sr at {plan.delay * 1000:g} ms delay, windows "
        f"{[x // KIB for x in plan.windows]} KiB, loss {losses} %, {plan.runs} run(s)")
    if not any(r["section"] == "path" for r in ctx.records):
        for rep in range(plan.runs):
            _path_ceiling(ctx, rep)
    rtt0, ceiling = _path_facts(ctx)
    for rep in range(plan.runs):
        for loss in losses:
            for win in plan.windows:
                expect = models.model("sr", loss / 100, win, rtt0, ceiling)
                f = ctx.file(pick_size(plan, expect, plan.window_target_s))
                res, err = _attempt(run_ours, w, f, "sr", win,
                                    data_link=_emu_flags(plan.delay, loss),
                                    ack_link=_ack_link(plan), buffer=plan.buffer,
                                    seed=1000 + rep, timeout=60, after_handshake=True)
                _record(ctx, "windows", "sr", rep, res, err, window=win, loss=loss,
                        size=f.stat().st_size)
    _path_facts(ctx)


SECTIONS = {
    "loopback": section_loopback,
    "loss": section_loss,
    "sizes": section_sizes,
    "windows": section_windows,
}


def run_plan(ctx: Context, sections: list[str]) -> None:
    t0 = time.monotonic()
    ctx.facts["loopback_cpus"] = ctx.cpus
    if {"loopback", "sizes", "windows", "cpu"} & set(sections):
        section_fixed(ctx)
    for name in ("loopback", "loss", "sizes", "windows"):
        if name in sections:
            SECTIONS[name](ctx)
    if "cpu" in sections and "loopback" not in sections and "sizes" not in sections:
        section_loopback(ctx, only=list(OURS))
    ctx.facts["elapsed_s"] = time.monotonic() - t0
