"""Congestion control through the emulator's bottleneck (issue 20's bench).

    python -m bench.bench_cc [--runs 1] [--rows 1,2,4] [--results]

Row 1, one flow at 20 Mbit/s, 20 ms RTT (10 ms each way; the ACKs through
a second emulator), a tail-drop queue of one BDP (50,000 bytes): link
utilisation (goodput over the link rate; a full-sized datagram carries
1440 file bytes in 1472, so 97.8 % is the ceiling: models.FILE_SHARE) and the share of
segments sent that were resends, for ``--cc newreno`` and ``--cc cubic``
(WINDOW 8 MiB, the cap far away) and ``--cc none`` with WINDOW = 4 x BDP.

Row 2, random loss p = 0.1, 1, 2 and 5 % on the data path, no rate limit,
20 ms RTT: NewReno's goodput against Mathis et al.'s model MSS / RTT x
sqrt(3/2) / sqrt(p), with the RTT the sender measured (its mean sample);
CUBIC's time-averaged cwnd (from its trace, from the first reduction on)
against RFC 9438's average window, max(cubic, Reno-friendly) =
max((C (3 + beta) / (4 (1 - beta)))^(1/4) RTT^(3/4) / p^(3/4), sqrt(3/(2p)))
segments.  Models in their own terms, to be read as ratios.

Row 2b, row 2's path and models on tests/sim.py's fake clock (the two cores,
no programs), with files long enough for the steady state (bench/cc_steady.py).

Row 3, aioquic (if installed) with its own Reno and CUBIC on row 1's path:
both directions through stcp-link (the data path rate-limited as in row 1,
the ACK path delayed) by way of bench/quic_relay.py, the same file size;
goodput as the client times it (handshake to the server's reply).

Row 5, what ACK clocking costs: the receiver's ``--ack-every 2`` with its
40 ms delayed-ACK timer (RFC 5681, the default), the same with the timer off
(the pending ACK at each burst's end), and ``--ack-every 0`` (one ACK per
burst read): goodput, ACKs and CPU, rounds interleaved, on loopback (16 MiB,
--cc none, no emulator) and through row 1's link (4 MiB, --cc newreno).

Row 4, bufferbloat: 10 Mbit/s, 4 ms RTT, queues of 5, 20 and 100 packets,
tail drop against CoDel (RFC 8289's 5 ms / 100 ms), ``--cc cubic``:
goodput and the RTT samples' median and 99th percentile from the sender's
trace, against the 4 ms the path has empty.

Every run is one transfer of the real programs through stcp-link, started
by the harness (harness/transfer.py); each is verified (SHA-256).  One run
per case unless --runs; the machine is shared, compare ratios within a run.
``--results`` writes the tables into bench/results/RESULTS.md between
markers that ``python -m bench`` keeps.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench import models, results_blocks
from harness.procs import ROOT, end_cpus
from harness.spec import LinkSpec, Options, ReceiverSpec, RunSpec, SenderSpec
from harness.transfer import Transfer
from harness.verify import verify

from . import cc_steady
from .bench_cc_quic import row3, row3_table
from .runs import parse_sender_summary

BEGIN, END = results_blocks.CC.begin, results_blocks.CC.end
write_results = results_blocks.CC.write
kept_block = results_blocks.CC.kept
MSS, PAYLOAD = models.MSS, models.PAYLOAD  # (file bytes per segment: bench/models.py)
C, BETA = 0.4, 0.7


def run_one(work: Path, src: Path, *, cc: str, window: str, data: dict | None,
            ack: dict | None, trace: bool = False, rargs: list | None = None) -> dict:
    """One verified transfer; the sender's summary figures, CPU seconds of
    both ends, and (with ``trace``) the sender's rtt samples and cwnd events."""
    work.mkdir(parents=True)
    spec = RunSpec(work, ReceiverSpec(work / "out.bin", force=True, args=rargs or []),
                   [SenderSpec(src, window, cc=None if cc == "none" else cc)],
                   data_link=LinkSpec(dict(data), seed=20) if data is not None else None,
                   ack_link=LinkSpec(dict(ack), seed=21) if ack else None,
                   options=Options(log_level="WARNING", trace=trace), timeout=300,
                   cpus=end_cpus() if data is None else None)  # loopback: as section 1
    try:
        with Transfer(spec) as t:
            t.start()
            if not t.wait_senders() or not t.wait_receiver(60):
                raise RuntimeError(f"the transfer did not end\n{t.group.describe()}")
            s, r = t.senders[0], t.receiver
            got = parse_sender_summary(s.stdout)
            if s.returncode or r.returncode or not verify(src, work / "out.bin").ok:
                raise RuntimeError(f"the transfer failed\n{t.group.describe()}")
            got["cpu"] = s.usage.cpu + r.usage.cpu
            got["goodput_bps"] = src.stat().st_size * 8 / got["time"]
            if trace:
                got.update(_trace_figures(work / "sender.trace.jsonl"))
            return got
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _trace_figures(path: Path) -> dict:
    rtts, cw = [], []
    with open(path) as f:
        for line in f:
            if '"ev":"rtt"' in line:
                rtts.append(json.loads(line)["sample"])
            elif '"ev":"cwnd"' in line:
                e = json.loads(line)
                cw.append((e["t"], e["cwnd"], e["state"]))
    end = cw[-1][0] if cw else 0.0
    return {"rtt_samples": rtts, "mean_cwnd": _mean_cwnd(cw, end)}


def _mean_cwnd(cw: list, end: float) -> float | None:
    """cwnd averaged over time from the first reduction (the first state
    other than slow start) to the last event: the steady state."""
    start = next((i for i, (_, _, st) in enumerate(cw) if st not in ("slow_start",)), None)
    if start is None:
        return None
    return cc_steady.time_mean([(t, v) for t, v, _ in cw[start:]], cw[start][0], end)


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, math.ceil(q / 100 * len(xs)) - 1))]


def make_file(path: Path, size: int) -> Path:
    with open(path, "wb") as f, open("/dev/urandom", "rb") as rnd:
        f.write(rnd.read(size))
    return path


def row1(tmp: Path, runs: int) -> list[dict]:
    rate, rtt = 20e6, 0.020
    bdp = int(rate * rtt / 8)
    src = make_file(tmp / "r1.bin", 12 << 20)
    data = {"rate": f"{rate / 1e3:g}", "queue": str(bdp), "delay": "0.010"}
    out = []
    for i in range(runs):
        for cc, window in (("newreno", "8M"), ("cubic", "8M"), ("none", str(4 * bdp))):
            g = run_one(tmp / f"r1-{i}-{cc}", src, cc=cc, window=window, data=data,
                        ack={"delay": "0.010"})
            out.append({"cc": cc, "window": window, "util": g["goodput_bps"] / rate,
                        "resent": g.get("retransmissions", 0) / g["segments_sent"],
                        "goodput_bps": g["goodput_bps"], "cpu": g["cpu"]})
            print(f"  row 1 {cc}: utilisation {out[-1]['util']:.3f}, resent "
                  f"{out[-1]['resent'] * 100:.2f} %", flush=True)
    return out


def mathis_bps(p: float, rtt: float) -> float:
    """Mathis et al.'s rate (bench/models.py), in bits per second."""
    return models.mathis(p, rtt, PAYLOAD) * 8


def cubic_avg_segments(p: float, rtt: float) -> float:
    cubic = (C * (3 + BETA) / (4 * (1 - BETA))) ** 0.25 * rtt ** 0.75 / p ** 0.75
    return max(cubic, math.sqrt(3 / (2 * p)))


def row2(tmp: Path, runs: int) -> list[dict]:
    out = []
    for p in (0.001, 0.01, 0.02, 0.05):
        # about six seconds of the model's goodput, 4 to 16 MiB
        size = int(min(16 << 20, max(4 << 20, mathis_bps(p, 0.02) / 8 * 6)))
        src = make_file(tmp / f"r2-{p}.bin", size)
        for i in range(runs):
            for cc in ("newreno", "cubic"):
                g = run_one(tmp / f"r2-{p}-{i}-{cc}", src, cc=cc, window="8M",
                            data={"loss": f"{p * 100:g}", "delay": "0.010"},
                            ack={"delay": "0.010"}, trace=True)
                rtt = statistics.fmean(g["rtt_samples"])
                rec = {"cc": cc, "p": p, "size": size, "goodput_bps": g["goodput_bps"],
                       "rtt": rtt, "mathis_bps": mathis_bps(p, rtt),
                       "mean_cwnd_seg": (g["mean_cwnd"] or 0) / PAYLOAD,
                       "model_cwnd_seg": cubic_avg_segments(p, rtt)}
                out.append(rec)
                print(f"  row 2 p={p * 100:g}% {cc}: {g['goodput_bps'] / 1e6:.2f} Mbit/s, "
                      f"Mathis {rec['mathis_bps'] / 1e6:.2f}; mean cwnd "
                      f"{rec['mean_cwnd_seg']:.1f} seg, RFC 9438 {rec['model_cwnd_seg']:.1f}",
                      flush=True)
    return out


def row4(tmp: Path, runs: int) -> list[dict]:
    src = make_file(tmp / "r4.bin", 4 << 20)
    out = []
    for i in range(runs):
        for qp in (5, 20, 100):
            for aqm in ("none", "codel"):
                data = {"rate": "10000", "queue-packets": str(qp), "aqm": aqm,
                        "delay": "0.002"}
                g = run_one(tmp / f"r4-{i}-{qp}-{aqm}", src, cc="cubic", window="8M",
                            data=data, ack={"delay": "0.002"}, trace=True)
                s = g["rtt_samples"]
                out.append({"queue": qp, "aqm": aqm, "goodput_bps": g["goodput_bps"],
                            "p50": pct(s, 50), "p99": pct(s, 99),
                            "resent": g.get("retransmissions", 0) / g["segments_sent"]})
                print(f"  row 4 {qp} pkts {aqm}: {g['goodput_bps'] / 1e6:.2f} Mbit/s, RTT "
                      f"p50 {pct(s, 50) * 1e3:.1f} ms p99 {pct(s, 99) * 1e3:.1f} ms",
                      flush=True)
    return out


#: Row 5's receivers: (label, stcp-recv arguments), each on two paths.
ROW5_CASES = (
    ("--ack-every 2, --delayed-ack 0.04 (default)", ["--ack-every", "2"]),
    ("--ack-every 2, --delayed-ack 0 (flush per burst)", ["--ack-every", "2",
                                                          "--delayed-ack", "0"]),
    ("--ack-every 0 (one ACK per burst)", ["--ack-every", "0", "--delayed-ack", "0"]),
)
#: Row 5's paths: loopback (long bursts), and row 1's 20 Mbit/s link with
#: --cc newreno, where the receiver reads about one datagram per burst.
ROW5_PATHS = (
    ("loopback, 16 MiB, --cc none", 16 << 20, "none", None, None),
    ("20 Mbit/s 20 ms, 4 MiB, --cc newreno", 4 << 20, "newreno",
     {"rate": "20000", "queue": "50000", "delay": "0.010"}, {"delay": "0.010"}),
)


def row5(tmp: Path, runs: int) -> list[dict]:
    out = []
    for path, size, cc, data, ack in ROW5_PATHS:
        src = make_file(tmp / f"r5-{size}.bin", size)
        for i in range(max(runs, 3)):
            order = ROW5_CASES if i % 2 == 0 else ROW5_CASES[::-1]
            for what, rargs in order:
                g = run_one(tmp / f"r5-{cc}-{i}-{ROW5_CASES.index((what, rargs))}", src,
                            cc=cc, window="4M", data=data, ack=ack,
                            rargs=rargs + ["--buffer", "8M"])
                out.append({"path": path, "case": what, "goodput_bps": g["goodput_bps"],
                            "cpu": g["cpu"], "acks": g["segments_received"]})
                print(f"  row 5 {path}, {what}: {g['goodput_bps'] / 1e6:.1f} Mbit/s, "
                      f"{g['segments_received']} ACKs, CPU {g['cpu']:.2f} s", flush=True)
    return out


def _row5_table(r5: list[dict]) -> list[str]:
    lines = ["### Row 5: what ACK clocking costs, WINDOW 4 MiB", "",
             "| path | receiver | goodput (Mbit/s) | segments the sender received (ACKs) | "
             "CPU, both ends (s) |", "|---|---|---|---|---|"]
    keys = []
    for r in r5:  # (results saved before the paths: loopback, by --ack-every)
        key = (r.get("path", ROW5_PATHS[0][0]), r.get("case", f"--ack-every {r.get('every')}"))
        if key not in keys:
            keys.append(key)
    for path, what in keys:
        rs = [r for r in r5 if (r.get("path", ROW5_PATHS[0][0]),
                                r.get("case", f"--ack-every {r.get('every')}")) == (path, what)]
        lines.append(f"| {path} | {what} | {_med(rs, 'goodput_bps') / 1e6:.1f} | "
                     f"{_med(rs, 'acks'):.0f} | {_med(rs, 'cpu'):.2f} |")
    lines += ["", "Medians of interleaved rounds (at least 3). On loopback bursts are long "
              "and the ACK every second segment is what the receiver sends either way; "
              "through the slow link it reads about one datagram a burst, and without the "
              "delayed-ACK timer the burst's end acknowledged each one.", ""]
    return lines


def _med(recs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in recs)


def tables(m: dict) -> str:
    r1, r2, r4 = m.get("row1", []), m.get("row2", []), m.get("row4", [])
    dates = sorted({d for d in m.get("dates", {}).values()})
    when = m["when"] if len(dates) <= 1 else "rows run at different times: " + "; ".join(
        f"{d} (rows {', '.join(k[3:] for k, v in sorted(m['dates'].items()) if v == d)})"
        for d in dates)
    lines = [f"{when}, {m['runs']} run(s) per case (the median if more); one machine, "
             "shared: read the ratios.", ""]
    if r1:
        lines += ["### Row 1: one flow, 20 Mbit/s, 20 ms RTT, tail-drop queue of 1 BDP "
                  "(50,000 bytes), 12 MiB", "",
                  "| --cc | WINDOW (bytes) | goodput (Mbit/s) | utilisation (% of 20 Mbit/s) "
                  "| resent (% of segments sent) | CPU, both ends (s) |",
                  "|---|---|---|---|---|---|"]
        for cc in ("newreno", "cubic", "none"):
            rs = [r for r in r1 if r["cc"] == cc]
            lines.append(f"| {cc} | {rs[0]['window']} | {_med(rs, 'goodput_bps') / 1e6:.2f} | "
                         f"{_med(rs, 'util') * 100:.1f} | {_med(rs, 'resent') * 100:.2f} | "
                         f"{_med(rs, 'cpu'):.2f} |")
        lines += ["", "Targets: utilisation >= 95 % and resent <= 1 % for newreno and cubic. "
                  f"The ceiling is {models.FILE_SHARE * 100:.1f} % ({models.PAYLOAD} file bytes "
                  f"per {models.UDP_PAYLOAD}-byte datagram: the MSS less the timestamps' 12 "
                  "bytes).", ""]
    if r2:
        lines += ["### Row 2: random loss, no rate limit, 20 ms RTT (10 ms each way)", "",
                  "| p (%) | file (MiB) | newreno goodput (Mbit/s) | Mathis (Mbit/s) | "
                  "newreno / Mathis (ratio) | RTT measured (ms) | "
                  "cubic mean cwnd (segments) | RFC 9438 average (segments) | "
                  "cubic / RFC 9438 (ratio) | cubic goodput (Mbit/s) |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for p in sorted({r["p"] for r in r2}):
            nr = [r for r in r2 if r["p"] == p and r["cc"] == "newreno"]
            cu = [r for r in r2 if r["p"] == p and r["cc"] == "cubic"]
            lines.append(
                f"| {p * 100:g} | {nr[0]['size'] / (1 << 20):.1f} | "
                f"{_med(nr, 'goodput_bps') / 1e6:.2f} | {_med(nr, 'mathis_bps') / 1e6:.2f} | "
                f"{_med(nr, 'goodput_bps') / _med(nr, 'mathis_bps'):.2f} | "
                f"{_med(nr, 'rtt') * 1e3:.1f} | {_med(cu, 'mean_cwnd_seg'):.1f} | "
                f"{_med(cu, 'model_cwnd_seg'):.1f} | "
                f"{_med(cu, 'mean_cwnd_seg') / _med(cu, 'model_cwnd_seg'):.2f} | "
                f"{_med(cu, 'goodput_bps') / 1e6:.2f} |")
        lines += ["", "Target: newreno within 20 % of Mathis (ratio 0.8 to 1.2). Both "
                  "models describe the steady state; at p = 0.1 % a 16 MiB file meets about "
                  "p x 11,555 = 12 losses, and the mean cwnd, although taken from the first "
                  "reduction on, is mostly the way down from the first slow start's "
                  "overshoot (no rate limit: it climbs until the first loss); row 2b runs "
                  "the same path on the fake clock long enough to see the steady state.", ""]
    lines += cc_steady.table(m.get("row2b", []))
    lines += row3_table(m.get("row3"), r1)
    if r4:
        lines += ["### Row 4: bufferbloat, 10 Mbit/s, 4 ms RTT, --cc cubic, 4 MiB", "",
                  "| queue (packets) | AQM | goodput (Mbit/s) | RTT p50 (ms) | RTT p99 (ms) | "
                  "resent (% of segments sent) |", "|---|---|---|---|---|---|"]
        for qp in (5, 20, 100):
            for aqm in ("none", "codel"):
                rs = [r for r in r4 if r["queue"] == qp and r["aqm"] == aqm]
                lines.append(f"| {qp} | {'tail drop' if aqm == 'none' else 'CoDel'} | "
                             f"{_med(rs, 'goodput_bps') / 1e6:.2f} | {_med(rs, 'p50') * 1e3:.1f} "
                             f"| {_med(rs, 'p99') * 1e3:.1f} | {_med(rs, 'resent') * 100:.2f} |")
        lines += ["", "The path's RTT with empty queues is 4 ms; a full 100-packet queue "
                  "adds 100 x 1472 x 8 / 10 Mbit/s = 118 ms.", ""]
    if m.get("row5"):
        lines += _row5_table(m["row5"])
    return "\n".join(lines)


ROW_NAMES = ("1", "2", "2b", "3", "4", "5")


def _row2b(tmp: Path, runs: int) -> list[dict]:
    return cc_steady.rows(runs)


def merged_with(m: dict, saved: Path) -> dict:
    """``m`` with the rows it lacks taken from an earlier run's ``saved``
    figures (cc.json), each row dated (``dates``), so that running some rows
    again does not drop the others from RESULTS.md."""
    m.setdefault("dates", {})
    for key in m:
        if key.startswith("row"):
            m["dates"][key] = m["when"]
    try:
        old = json.loads(saved.read_text())
    except (OSError, ValueError):
        return m
    for key, val in old.items():
        if key.startswith("row") and key not in m:
            m[key] = val
            m["dates"][key] = old.get("dates", {}).get(key, old.get("when", "?"))
    return m


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.bench_cc",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=1, help="runs per case (default 1)")
    ap.add_argument("--rows", default=",".join(ROW_NAMES),
                    help=f"which rows, of {', '.join(ROW_NAMES)} (default all); with "
                         "--results the others are kept from the last run's cc.json")
    ap.add_argument("--results", action="store_true",
                    help="also write the tables into bench/results/RESULTS.md")
    a = ap.parse_args(argv)
    rows = {x.strip() for x in a.rows.split(",") if x.strip()}
    if not rows <= set(ROW_NAMES) or a.runs < 1:
        ap.error(f"--rows takes {', '.join(ROW_NAMES)}; --runs at least 1")
    m: dict = {"runs": a.runs, "when": time.strftime("%Y-%m-%d %H:%M")}
    with tempfile.TemporaryDirectory(prefix="stcp-bench-cc-") as tmp:
        for name, fn in (("1", row1), ("2", row2), ("2b", _row2b), ("3", row3), ("4", row4),
                         ("5", row5)):
            if name in rows:
                m[f"row{name}"] = fn(Path(tmp), a.runs)
    results = ROOT / "bench" / "results"
    if a.results:
        m = merged_with(m, results / "cc.json")
    text = tables(m)
    print(text)
    if a.results:
        write_results(text, results / "RESULTS.md")
        for r in m.get("row2", []) + m.get("row4", []):
            r.pop("rtt_samples", None)
        (results / "cc.json").write_text(json.dumps(m, indent=1) + "\n")
        print("written into bench/results/RESULTS.md (raw figures: cc.json)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
