"""Benchmarks of the simplex TCP against its baselines, in one command.

    python -m bench                       # everything, about 15-25 minutes
    python -m bench --quick               # a short version, under 3 minutes
    python -m bench --sections loss,sizes # only some sections

Sections: 1 ``loopback`` (ours against a UDP blast, Linux TCP, tftpy and
aioquic), 2 ``loss`` (through the emulator with delay and loss, against the
textbook models), 3 ``sizes`` and ``windows`` (scaling), 4 ``cpu`` (CPU per
MiB, from the runs of 1 and 3).  Writes RESULTS.md, results.json, PNG plots
and, where a target is missed, PROFILE.md to the output directory.
Results, not pass/fail: the exit status is 0 whether or not targets are met.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

from bench import machine, report
from bench.suite import KIB, Context, Plan, run_plan, say

HERE = Path(__file__).resolve().parent
ALIASES = {"1": ["loopback"], "2": ["loss"], "3": ["sizes", "windows"], "4": ["cpu"],
           "all": ["loopback", "loss", "sizes", "windows", "cpu"]}
NAMES = ["loopback", "loss", "sizes", "windows", "cpu"]
MANAGED = ["RESULTS.md", "PROFILE.md", "results.json", "loopback.png", "loss.png",
           "scaling.png", "windows.png", "cpu.png"]


def _sections(text: str) -> list[str]:
    out: list[str] = []
    for part in text.split(","):
        part = part.strip().lower()
        if not part:
            continue
        names = ALIASES.get(part, [part])
        for n in names:
            if n not in NAMES:
                raise argparse.ArgumentTypeError(
                    f"unknown section {part!r} (choose from {', '.join(NAMES)}, 1-4, all)")
            if n not in out:
                out.append(n)
    return out


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0],
                                 epilog=__doc__.split("\n\n", 2)[2],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="smaller files, fewer cases, 1 repetition (written to "
                         "bench/results-quick unless --out)")
    ap.add_argument("--sections", type=_sections, default=_sections("all"),
                    help="comma-separated: loopback, loss, sizes, windows, cpu, or 1-4 "
                         "(default: all)")
    ap.add_argument("--runs", type=int, help="repetitions of every case (default 3; "
                                             "--quick: 1)")
    ap.add_argument("--out", type=Path, help="output directory (default bench/results)")
    ap.add_argument("--ack-delay", type=float, default=None, metavar="SECONDS",
                    help="also delay the ACK path by this much through a second emulator "
                         "(default: ACKs go straight back)")
    ap.add_argument("--profile", choices=["auto", "always", "never"], default="auto",
                    help="profile our programs with py-spy: when a target is missed (auto, "
                         "the default), always, or never")
    ap.add_argument("--no-pin", action="store_true",
                    help="leave the CPUs of loopback runs to the kernel (default: each end "
                         "of a transfer, ours and the baselines', on a CPU of its own)")
    ap.add_argument("--tmp", type=Path, default=None,
                    help="where the temporary files go (default: the system's temp dir)")
    return ap


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    plan = Plan.quick_plan() if a.quick else Plan.full()
    if a.runs:
        plan.runs = a.runs
    if a.ack_delay is not None:
        plan.ack_delay = a.ack_delay
    if a.no_pin:
        plan.pin = False
    out = a.out or (HERE / ("results-quick" if a.quick else "results"))
    out.mkdir(parents=True, exist_ok=True)
    command = "python -m bench" + (" " + " ".join(argv if argv is not None else sys.argv[1:])
                                   if (argv if argv is not None else sys.argv[1:]) else "")
    if a.quick:
        say("QUICK RUN: smaller files, fewer cases, 1 repetition: indicative figures only, "
            f"not medians; written to {out}")
    # SIGTERM unwinds like Ctrl-C, so every child process is killed on the way out
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    info = machine.describe()
    say(f"{info['cpu']}, {info['cores']} cores, {info['python']}, {info['kernel']}")
    t0 = time.monotonic()
    missed: list = []
    prof = None
    with tempfile.TemporaryDirectory(prefix="stcp-bench-", dir=a.tmp) as tmp:
        ctx = Context(plan, Path(tmp))
        try:
            run_plan(ctx, a.sections)
            s = report.summarise(ctx.records, ctx.facts, plan)
            missed = [t for t in s["targets"] if not t[3]]
            if a.profile == "always" or (a.profile == "auto" and missed):
                prof = _profile(ctx, plan, a.profile == "always"
                                or any(str(t[0]) == "2" for t in missed))
        finally:
            ctx.drop_files()
    from bench.results_blocks import kept_blocks

    # the blocks the benchmarks run on their own wrote stay
    kept = kept_blocks(out / "RESULTS.md")
    for name in MANAGED:
        (out / name).unlink(missing_ok=True)
    note = None
    if prof is not None and not isinstance(prof, str):
        from bench import profile

        cost = report.segment_costs(s)
        (out / "PROFILE.md").write_text(profile.markdown(prof, cost, command))
        note = ("Where the time goes (py-spy, self samples, see [PROFILE.md](PROFILE.md)): "
                + "; ".join(f"{what}: {profile.headline(p)}" for what, p, *_ in prof) + ".")
    elif isinstance(prof, str):
        note = f"No profile: {prof}."
    if missed:
        note = "Targets marked **NO** are missed. " + (note or "")
    ctx.facts["elapsed_s"] = time.monotonic() - t0
    info["loadavg_end"] = os.getloadavg()
    info["fingerprint_end"] = machine.programs_fingerprint()
    (out / "results.json").write_text(json.dumps(
        {"machine": info, "plan": vars(plan), "sections": a.sections, "facts": _jsonable(
            ctx.facts), "records": ctx.records, "command": command, "note": note},
        indent=1, default=str))
    report.plots(s, ctx.facts, plan, out)
    md = report.markdown(s, ctx.facts, info, plan, a.sections, command, note)
    (out / "RESULTS.md").write_text(md + kept)
    print(f"wrote {out / 'RESULTS.md'} in {ctx.facts['elapsed_s'] / 60:.1f} min")
    for row, what, got, ok in s["targets"]:
        print(f"  row {row}: {what}: {got} -> {'met' if ok else 'MISSED'}")
    if a.quick:
        print("(quick run: 1 repetition, smaller files; not the committed figures)")
    return 0


def _profile(ctx: Context, plan: Plan, lossy: bool):
    """The profiles for PROFILE.md, as (what, profile, file size, window): a
    loopback transfer, and with ``lossy`` the case of section 2 where sr did
    worst against its model (a profile of loopback says little about a
    transfer through loss).  A string says why there is none."""
    from bench import profile
    from bench.runs import BenchError
    from bench.suite import worst_loss_case

    cases = [("loopback", plan.loopback_size, plan.loopback_window, None, profile.REPEATS)]
    worst = worst_loss_case(ctx) if lossy else None
    if worst is not None:
        win = worst["window"]
        win_label = f"{win // KIB // 1024} MiB" if win % (1024 * KIB) == 0 else f"{win // KIB} KiB"
        cases.append((f"through the emulator, {win_label} window, "
                      f"{worst['loss']:g}% loss (section 2's worst case for sr, "
                      f"{worst['share'] * 100:.0f}% of its model)",
                      worst["size"], worst["window"], worst["flags"], 4))
    out = []
    for what, size, window, flags, repeats in cases:
        say(f"[profile] sr, {what.split(' (')[0]}, {size // KIB // 1024} MiB, under py-spy")
        for attempt in (1, 2):  # once more after a passing failure
            try:
                prof = profile.run_profile(ctx.workdir(), ctx.file(size), window, plan.buffer,
                                           data_link=flags, repeats=repeats)
                out.append((what, prof, size, window))
                break
            except (BenchError, RuntimeError, OSError) as exc:
                say(f"    ! profile failed (attempt {attempt} of 2): {exc}")
                failure = str(exc).splitlines()[0]
        else:
            return failure
    return out


def _jsonable(d: dict) -> dict:
    return {k: (None if isinstance(v, float) and v == float("inf") else v) for k, v in d.items()}


if __name__ == "__main__":
    sys.exit(main())
