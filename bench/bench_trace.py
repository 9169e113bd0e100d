"""What tracing costs: goodput of one file transfer with --trace off and on.

Sender and receiver run directly against each other on 127.0.0.1 (no
emulator), the file is random bytes (12 MiB by default, kept within
8-16 MiB).  Each configuration runs ``--runs`` times, the configurations
alternating within each round (and their order swapping from one round to
the next) so that a drift of the machine's speed falls on both; the median
goodput of each is printed, with the ratio on / off.  The goodput is the
file size over the sender's own transfer time, SYN to verified FIN, as its
summary prints it (process start-up and TIME-WAIT left out).  Results, not
pass/fail: the target (issue 6) is a ratio of at least 0.70.

    python -m bench.bench_trace [--runs 3] [--size-mib 12] [--window 1M] [--pcap]

"tracing on" means ``--trace FILE`` on both programs; ``--pcap`` adds a third
configuration, tracing and ``--pcap`` on both, printed but not part of the ratio.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from harness.procs import HOST
from harness.spec import Options, ReceiverSpec, RunSpec, SenderSpec
from harness.transfer import Transfer

TIME_RE = re.compile(r"^\s+time\s+([0-9.]+) s", re.M)
REXMIT_RE = re.compile(r"^\s+retransmissions\s+(\d+)", re.M)


def transfer(workdir: str, src: str, size: int, window: str, trace: bool, pcap: bool,
             tag: str) -> tuple[float, int]:
    """One transfer, started by the harness; returns its goodput in bytes per
    second and the sender's retransmission count (losses in the loopback's
    socket buffers explain much of the spread between runs)."""
    work = Path(workdir) / f"run-{tag}"
    work.mkdir()
    spec = RunSpec(work, ReceiverSpec(work / "out.bin", force=True),
                   [SenderSpec(Path(src), window)], options=Options(trace=trace, pcap=pcap),
                   timeout=300)
    try:
        with Transfer(spec) as t:
            t.start()
            if not t.wait_senders():
                raise RuntimeError("the sender did not finish within 300 s")
            t.wait_receiver(60)
            sender, receiver = t.senders[0], t.receiver
            out = sender.stdout
            if sender.returncode or receiver.returncode:
                raise RuntimeError(f"transfer failed (sender {sender.returncode}, receiver "
                                   f"{receiver.returncode}):\n{out}\n{sender.stderr}")
    finally:
        shutil.rmtree(work)  # keep the disk clean between runs
    m = TIME_RE.search(out)
    if not m:
        raise RuntimeError(f"no transfer time in the sender's summary:\n{out}")
    seconds = float(m.group(1))
    r = REXMIT_RE.search(out)
    return size / seconds, int(r.group(1)) if r else -1


def _mbit(bps: float) -> str:
    return f"{bps * 8 / 1e6:8.1f} Mbit/s"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3, help="runs per configuration (default 3)")
    ap.add_argument("--size-mib", type=float, default=12.0,
                    help="file size in MiB, 8 to 16 (default 12)")
    ap.add_argument("--window", default="1M", help="the sender's WINDOW_BYTES (default 1M)")
    ap.add_argument("--pcap", action="store_true",
                    help="also measure tracing with --pcap (not part of the ratio)")
    a = ap.parse_args(argv)
    if not 8 <= a.size_mib <= 16:
        ap.error("--size-mib must be within 8..16")
    if a.runs < 1:
        ap.error("--runs must be at least 1")
    size = int(a.size_mib * (1 << 20))
    configs = [("tracing off", False, False), ("tracing on", True, False)]
    if a.pcap:
        configs.append(("tracing + pcap", True, True))
    results: dict[str, list[float]] = {name: [] for name, _, _ in configs}
    with tempfile.TemporaryDirectory(prefix="bench-trace-") as workdir:
        src = os.path.join(workdir, "in.bin")
        with open(src, "wb") as f:
            f.write(os.urandom(size))
        print(f"{a.size_mib:g} MiB file, sender -> receiver on {HOST}, window {a.window}, "
              f"{a.runs} runs per configuration", flush=True)
        width = max(len(name) for name, _, _ in configs)
        for i in range(a.runs):
            order = configs if i % 2 == 0 else configs[::-1]
            for name, trace, pcap in order:
                bps, rexmits = transfer(workdir, src, size, a.window, trace, pcap, f"{i}")
                results[name].append(bps)
                print(f"  run {i + 1} {name:<{width}} {_mbit(bps)}  ({rexmits} retransmissions)",
                      flush=True)
    med = {name: statistics.median(v) for name, v in results.items()}
    print()
    for name, _, _ in configs:
        print(f"{name:<{width}} (median of {a.runs}): {_mbit(med[name])}")
    ratio = med["tracing on"] / med["tracing off"]
    print(f"ratio tracing on / off: {ratio:.2f} (target >= 0.70: "
          f"{'met' if ratio >= 0.70 else 'NOT met'})")
    if a.pcap:
        print(f"ratio tracing + pcap / off: {med['tracing + pcap'] / med['tracing off']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
