"""Many flows through one bottleneck (issue 21's bench).

    python -m bench.bench_flows [--flows 1,2,4,8] [--cc newreno,cubic] [--seconds 6] [--results]

N senders at once (``run_pair.sh --flows N``: one stcp-serve, one data-path
emulator, one ACK-path emulator forwarding by port) through one 20 Mbit/s
link, 10 ms each way (the ACKs delayed by the ACK-path emulator), a
tail-drop queue of one BDP (50,000 bytes), no random loss; WINDOW 8 MiB, so
congestion control alone sets the pace (RESULTS.md's 16-flow rows: ``--flows
16``, kept beside the others).  Each flow sends its own file of
``--seconds`` x 20 Mbit/s / N bytes, all started at once.

Figures over the time every flow is active, from the last flow's first SYN
to the first flow's last acknowledgment (each sender's trace; one machine,
one monotonic clock):

- aggregate utilisation: the bytes all flows' cumulative ACKs newly covered
  in it x 8 / (its length x 20 Mbit/s).  A full-sized datagram carries 1440
  file bytes in 1472 (the MSS, 1452, less the RFC 7323 timestamps' 12), so
  97.8 % is the ceiling.
- Jain's fairness index of the flows' throughputs in it:
  (sum x)^2 / (N sum x^2), 1 for equal shares, 1/N when one flow has all.

Every file is verified (SHA-256) by run_pair.  One run per case; the
machine is shared, so compare within a run.  ``--results`` writes the table
into bench/results/RESULTS.md between markers that ``python -m bench`` keeps.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import models, results_blocks
from harness.flows import jain
from harness.flows_plot import read_flow
from harness.procs import ROOT

BEGIN, END = results_blocks.FLOWS.begin, results_blocks.FLOWS.end
write_results = results_blocks.FLOWS.write
kept_block = results_blocks.FLOWS.kept
RATE = 20e6
RTT = 0.020
BDP = int(RATE * RTT / 8)
CEILING = models.FILE_SHARE  # file bytes per datagram, timestamps on (PROTOCOL.md §9)


def common_window(flows: list[dict]) -> tuple[float, float]:
    """(from, to): the last flow's start to the first flow's last ACK."""
    start = max(f["t0"] for f in flows)
    end = min(f["acked"][-1][0] for f in flows)
    return start, end


def window_figures(flows: list[dict], rate_bps: float = RATE) -> dict:
    """Utilisation and Jain's index over the time all ``flows`` (read_flow's
    dicts) are active."""
    start, end = common_window(flows)
    if end <= start:
        return {"seconds": 0.0, "util": None, "jain": None}
    per = [sum(b for t, b in f["acked"] if start < t <= end) * 8 / (end - start)
           for f in flows]
    return {"seconds": end - start, "util": sum(per) / rate_bps, "jain": jain(per),
            "per_flow_bps": per}


def run_case(tmp: Path, n: int, cc: str, seconds: float, seed: int) -> dict:
    d = tmp / f"{cc}-{n}"
    size = int(seconds * RATE / 8 / n)
    argv = [str(ROOT / "run_pair.sh"), "--flows", str(n), "--clean", "--rate",
            f"{RATE / 1e3:g}", "--queue", str(BDP), "--delay", f"{RTT / 2:g}", "--ack-delay",
            f"{RTT / 2:g}", "--cc", cc, "--window", "8M", "--size", str(size), "--seed",
            str(seed), "--dir", str(d)]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=600,
                         stdin=subprocess.DEVNULL)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{res.stdout[-3000:]}\n{res.stderr}")
    flows = [read_flow(d / f"sender-{i}.trace.jsonl") for i in range(1, n + 1)]
    info = json.loads((d / "run.json").read_text())
    out = {"cc": cc, "flows": n, "size": size, **window_figures(flows),
           "retransmissions": sum(r["retransmissions"] or 0 for r in info["flows"]),
           "seed": seed}
    shutil.rmtree(d, ignore_errors=True)
    return out


def median_case(runs: list[dict]) -> dict:
    """One row from the runs of a case: the median of each figure, every
    run's utilisation and Jain's index kept."""
    def med(key):
        xs = [r[key] for r in runs if r[key] is not None]
        return statistics.median(xs) if xs else None

    out = dict(runs[0], runs=len(runs), seeds=[r["seed"] for r in runs])
    for key in ("seconds", "util", "jain", "retransmissions"):
        out[key] = med(key)
    out["util_all"] = [r["util"] for r in runs]
    out["jain_all"] = [r["jain"] for r in runs]
    out.pop("per_flow_bps", None)
    return out


def merged(rows: list[dict], saved: Path) -> list[dict]:
    """``rows`` with the (cc, flows) cases they lack taken from an earlier
    run's ``saved`` figures, ordered by cc then flows."""
    try:
        old = json.loads(saved.read_text())
    except (OSError, ValueError):
        old = []
    have = {(r["cc"], r["flows"]) for r in rows}
    out = rows + [r for r in old if (r["cc"], r["flows"]) not in have]
    order = {"newreno": 0, "cubic": 1}
    return sorted(out, key=lambda r: (order.get(r["cc"], 2), r["cc"], r["flows"]))


def table(rows: list[dict], invocation: str) -> str:
    shortest = min((r["seconds"] for r in rows if r.get("seconds")), default=0.0)
    early = (f"{2 * BDP * 8 / (shortest * RATE) * 100:.1f} % of the shortest window here, "
             f"{shortest:.2f} s" if shortest else "")
    lines = ["Through one 20 Mbit/s link, 10 ms each way, a tail-drop queue of one BDP "
             "(50,000 bytes), no random loss, WINDOW 8 MiB; all flows started at once. "
             "Utilisation and Jain's index over the time every flow is active (the last "
             "flow's first SYN to the first flow's last ACK); the ceiling is "
             f"{CEILING * 100:.1f} % (file bytes per datagram), which the figure may pass "
             "by the bytes already on their way when the window opened and acknowledged in "
             f"it (at most the queue and one BDP on the path, {2 * BDP:,} bytes: {early}). "
             "With one flow the "
             "window is the whole transfer, slow start and its first losses included. "
             "With several runs (seeds SEED, SEED+1, ...), the median of each figure, "
             "and the lowest Jain's index.", "",
             "| cc | flows | file per flow | runs | all active | utilisation | Jain's index "
             "(lowest) | retransmissions (all flows) |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        util = "-" if r["util"] is None else f"{r['util'] * 100:.1f} %"
        fair = "-" if r["jain"] is None else f"{r['jain']:.3f}"
        low = r.get("jain_all") or [r["jain"]]
        if len(low) > 1 and None not in low:
            fair += f" ({min(low):.3f})"
        lines.append(f"| {r['cc']} | {r['flows']} | {r['size'] / 2**20:.2f} MiB | "
                     f"{r.get('runs', 1)} | {r['seconds']:.2f} s | {util} | {fair} | "
                     f"{r['retransmissions']} |")
    lines += ["", f"Made by `{invocation}`; each run is `./run_pair.sh --flows N --clean "
              f"--rate 20000 --queue {BDP} --delay 0.01 --ack-delay 0.01 --cc CC --window 8M "
              f"--size S --seed SEED` with S = its total seconds x 20 Mbit/s / N."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.bench_flows",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--flows", default="1,2,4,8", help="flow counts (default 1,2,4,8)")
    ap.add_argument("--cc", default="newreno,cubic", help="controllers (default newreno,cubic)")
    ap.add_argument("--seconds", type=float, default=6.0,
                    help="the files' total size, in seconds of the link (default 6)")
    ap.add_argument("--seed", type=int, default=21, help="the first run's seed (default 21)")
    ap.add_argument("--runs", type=int, default=1,
                    help="runs per case, seeds SEED, SEED+1, ...; medians (default 1)")
    ap.add_argument("--results", action="store_true",
                    help="also write the table into bench/results/RESULTS.md")
    a = ap.parse_args(argv)
    counts = [int(x) for x in a.flows.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-flows-") as tmp:
        for cc in a.cc.split(","):
            for n in counts:
                r = median_case([run_case(Path(tmp), n, cc, a.seconds, a.seed + i)
                                 for i in range(a.runs)])
                r["run_by"] = " ".join(["python -m bench.bench_flows", *(argv or sys.argv[1:])])
                rows.append(r)
                print(f"  {cc} x {n}: all active {r['seconds']:.2f} s, utilisation "
                      f"{(r['util'] or 0) * 100:.1f} %, Jain {r['jain'] or 0:.3f}", flush=True)
    out = Path(__file__).resolve().parent / "results"
    invocation = " ".join(["python -m bench.bench_flows", *(argv or sys.argv[1:])])
    if a.results:
        rows = merged(rows, out / "flows.json")
        runs = [r.get("run_by", "python -m bench.bench_flows --results") for r in rows]
        invocation = " and ".join(dict.fromkeys(runs))
    text = table(rows, invocation)
    print(text)
    if a.results:
        write_results(text, out / "RESULTS.md")
        (out / "flows.json").write_text(json.dumps(rows, indent=1) + "\n")
        print("written into bench/results/RESULTS.md (raw figures: flows.json)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
