"""From the run records to figures: medians, models, targets, the Markdown
(RESULTS.md) and the plots, one module per part of the benchmark:

    loopback.py  section 1 (ours against the baselines), section 4 (CPU),
                 the fixed cost of a run
    loss.py      section 2 (through the emulator with loss, against the models)
    scaling.py   section 3 (file sizes, windows)
    fmt.py       how figures are written, and a run record's CPU and RSS

``python -m bench.report RESULTS_JSON`` writes RESULTS.md and the plots again
from a results.json (see __main__.py).
"""

from __future__ import annotations

from pathlib import Path

from bench.report import loopback, loss, scaling
from bench.report.loopback import segment_costs
from bench.suite import Plan

__all__ = ["cpu_layout", "markdown", "plots", "segment_costs", "summarise"]


def summarise(records: list[dict], facts: dict, plan: Plan) -> dict:
    """Every section's medians, and the targets with whether each is met."""
    s: dict = {"targets": []}
    fixed = loopback.fixed_costs(records)
    s["fixed"] = fixed
    s["loopback"] = loopback.summarise(records, fixed, s["targets"])
    loss.summarise(records, facts, plan, s)
    scaling.summarise(records, facts, fixed, s)
    return s


# ------------------------------------------------------------- Markdown


def cpu_layout(cpus) -> str:
    """One sentence on where the loopback runs' processes ran."""
    if not cpus:
        return ("CPUs: every process ran wherever the kernel put it (`--no-pin`, or fewer "
                "than two CPUs).")
    send, recv = cpus
    return (f"CPUs: in the loopback runs (sections 1 and 3a, and the 1 KiB run) the sending "
            f"process of every contender ran on CPU {send} only and the receiving one on CPU "
            f"{recv} only, as our programs' `--cpu` does; runs through the emulator (a third "
            "process) were left to the kernel. `--no-pin` leaves them all to the kernel.")


def _head(facts: dict, machine: dict, plan: Plan, sections: list[str], argv: str) -> list[str]:
    """The title, how the figures were made, and the machine."""
    L = ["# Benchmark results", ""]
    if plan.quick:
        L += ["**QUICK RUN** (`--quick`): smaller files, fewer cases, **1 repetition**, so no "
              "medians; figures are indicative only. The committed figures come from the full "
              "`python -m bench`.", ""]
    L += [f"Produced by `{argv}` on {machine['date']}, in "
          f"{facts.get('elapsed_s', 0) / 60:.1f} min; sections: {', '.join(sections)}. Every "
          f"figure is the **median of {plan.runs} run(s)**; all contenders of a table ran "
          "interleaved in the same invocation, so compare them as ratios. Raw per-run data: "
          "`results.json`.", "",
          "## Machine", "", "| | |", "|---|---|"]
    for k in ("cpu", "cores", "memory", "python", "kernel", "virtualisation", "commit",
              "rmem_max", "wmem_max"):
        if machine.get(k) is not None:
            L.append(f"| {k} | {machine[k]} |")
    for when in ("start", "end"):
        la = machine.get(f"loadavg_{when}")
        if la:
            L.append(f"| load average at {when} | {la[0]:.2f} {la[1]:.2f} {la[2]:.2f} |")
    L.append("")
    a, b = machine.get("fingerprint_start"), machine.get("fingerprint_end")
    if a and b and a != b:
        L += [f"**The programs changed while this ran** (source digest {a} at the start, {b} "
              "at the end: others work in the same tree), so the figures may mix versions.", ""]
    return L + ["The machine is shared and noisy: absolute figures move from run to run; ratios "
                "measured in one invocation are what to compare.", "",
                cpu_layout(facts.get("loopback_cpus")), ""]


def _targets(s: dict, profile_note: str | None) -> list[str]:
    if not s["targets"]:
        return []
    L = ["## Targets", "", "| row | target | measured | met |", "|---|---|---|---|"]
    for row, what, got, ok in s["targets"]:
        L.append(f"| {row} | {what} | {got} | {'yes' if ok else '**NO**'} |")
    L.append("")
    if profile_note:
        L += [profile_note, ""]
    return L


METHOD = [
    "## Method",
    "",
    "- Every process is started by the harness (`harness/procs.py`, which run_pair.sh "
    "and the tests use too) in its own session on 127.0.0.1, with ports from the OS "
    "(`--ready-file`), reaped with `os.wait4` for its CPU time and peak RSS, and killed at "
    "the end whatever happens.",
    "- Ours run with `--no-progress --log-level WARNING`; times come from the sender's "
    "summary (`time ... (SYN to verified FIN)`, less its `handshake` row in sections 2 "
    "and 3b), so TIME-WAIT is not counted.",
    "- UDP ceiling: one Python process sends the file as 1472-byte datagrams as fast as "
    "a `send` loop goes; the sink counts what arrives between the first and last "
    "datagram. Ratios to it use the raw datagram bytes (our 20-byte header and the "
    "12 bytes of RFC 7323 timestamps make our best possible ratio 1440/1472 = 97.8%).",
    "- aioquic: `max_datagram_size` 1472 and 8 MiB of flow-control credit (like our "
    "`--buffer 8M`), Reno congestion control (its default), TLS 1.3 with a throw-away "
    "self-signed P-256 certificate.",
    "- The emulator gets `--seed 1000+run`: the same loss pattern for sr and gbn within "
    "a repetition, a different one across repetitions.",
    "",
]


def markdown(s: dict, facts: dict, machine: dict, plan: Plan, sections: list[str],
             argv: str, profile_note: str | None) -> str:
    """RESULTS.md."""
    L = _head(facts, machine, plan, sections, argv) + _targets(s, profile_note)
    L += loopback.markdown(s, plan)
    L += loss.markdown(s, facts, plan)
    L += scaling.sizes_markdown(s, plan)
    L += scaling.windows_markdown(s, machine, plan)
    L += loopback.cpu_markdown(s, plan)
    return "\n".join(L + METHOD)


# ------------------------------------------------------------- plots


def plots(s: dict, facts: dict, plan: Plan, out: Path) -> list[Path]:
    """The PNGs RESULTS.md shows, into ``out``; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []

    def save(fig, name):
        path = out / name
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        made.append(path)

    loopback.plot(plt, s, plan, save)
    loss.plot(plt, s, plan, save)
    scaling.sizes_plot(plt, s, save)
    scaling.windows_plot(plt, s, plan, save)
    loopback.cpu_plot(plt, s, plan, save)
    return made
