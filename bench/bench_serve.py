"""stcp-serve's own costs (issue 21's bench, the rows without a bottleneck).

    python -m bench.bench_serve [--flows 1,2,4,8] [--mib 32] [--flood 20000] [--results]

Row 1, loopback, no emulator: one stcp-serve (ACKs to each sender's port)
and N senders started at once, each with its own file of MIB / N MiB,
WINDOW 4 MiB, ``--cc none``.  Per N: the sum of the senders' goodputs (each
its file bytes over its own transfer time, docs/MEASURES.md), and the
server's CPU (user + system, from wait4) less what an idle server's start
and stop cost, per segment the senders sent and per MiB.  The one-shot
stcp-recv with one sender, the same file and window, for comparison.

Row 2, a SYN flood: 20,000 forged SYNs (each a new TCP source port, half
with a name) sent to an idle server with the default --max-half-open 256
and --syn-timeout 10: the server's peak RSS (VmHWM) against an idle
server's, and how many half-open connections it held at once (its table).

One run per case; the machine is shared, so compare within a run.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path

from bench import results_blocks
from common.segment import SYN, Segment, encode
from harness.ports import spare_udp_port
from harness.procs import Group, Proc
from harness.verify import verify

from .runs import parse_sender_summary

BEGIN, END = results_blocks.SERVE.begin, results_blocks.SERVE.end
write_results = results_blocks.SERVE.write
kept_block = results_blocks.SERVE.kept
HOST = "127.0.0.1"


def _server(g: Group, inbox: Path, args: list[str], name: str = "serve") -> tuple[Proc, int]:
    ready = g.ready_path(name)
    p = g.python(name, "receiver", ["serve", str(inbox), "0", HOST, "--ready-file", str(ready),
                                    "--log-level", "WARNING", *args])
    return p, g.wait_ready(p, ready, 30.0, name)["port"]


def idle_cpu(g: Group, tmp: Path) -> tuple[float, int]:
    """CPU seconds and peak RSS (KiB) of a server started and stopped idle."""
    inbox = tmp / "idle"
    inbox.mkdir()
    p, _ = _server(g, inbox, [], "idle")
    time.sleep(0.5)
    p.signal(signal.SIGTERM)
    p.wait(30)
    return p.usage.cpu, p.usage.maxrss_kib


def loopback(g: Group, tmp: Path, n: int, mib: float, idle: float) -> dict:
    inbox = tmp / f"in-{n}"
    inbox.mkdir()
    size = int(mib * 2**20 / n)
    files = []
    for i in range(n):
        f = tmp / f"lb-{n}-{i}.bin"
        f.write_bytes(random.Random(i).randbytes(size))
        files.append(f)
    server, port = _server(g, inbox, ["--count", str(n)], f"serve-{n}")
    senders = [g.python(f"send-{n}-{i}", "sender", [str(f), HOST, str(port), "4M", "0",
                                                    "--no-progress", "--log-level", "WARNING"])
               for i, f in enumerate(files)]
    for s in senders:
        if s.wait(300) != 0:
            raise RuntimeError(s.describe())
    if server.wait(60) != 0 or not all(verify(f, inbox / f.name).ok for f in files):
        raise RuntimeError(server.describe())
    got = [parse_sender_summary(s.stdout) for s in senders]
    segs = sum(x["segments_sent"] for x in got)
    cpu = max(0.0, server.usage.cpu - idle)
    return {"flows": n, "size": size,
            "goodput_sum_bps": sum(size * 8 / x["time"] for x in got),
            "server_cpu_s": cpu, "segments": segs, "us_per_segment": cpu / segs * 1e6,
            "ms_per_mib": cpu / mib * 1e3}


def oneshot(g: Group, tmp: Path, mib: float, idle: float) -> dict:
    src = tmp / "oneshot.bin"
    src.write_bytes(random.Random(0).randbytes(int(mib * 2**20)))
    out = tmp / "oneshot.out"
    ready = g.ready_path("recv")
    ack = str(spare_udp_port(HOST))
    r = g.python("recv", "receiver", [str(out), "0", HOST, ack, "--ready-file", str(ready),
                                      "--no-progress", "--quiet"])
    port = g.wait_ready(r, ready, 30.0, "recv")["port"]
    s = g.python("send-oneshot", "sender", [str(src), HOST, str(port), "4M", ack,
                                            "--no-progress", "--log-level", "WARNING"])
    if s.wait(300) != 0 or r.wait(60) != 0 or not verify(src, out).ok:
        raise RuntimeError(s.describe() + r.describe())
    x = parse_sender_summary(s.stdout)
    cpu = max(0.0, r.usage.cpu - idle)
    return {"flows": 1, "size": src.stat().st_size,
            "goodput_sum_bps": src.stat().st_size * 8 / x["time"], "server_cpu_s": cpu,
            "segments": x["segments_sent"], "us_per_segment": cpu / x["segments_sent"] * 1e6,
            "ms_per_mib": cpu / mib * 1e3}


def flood(g: Group, tmp: Path, count: int) -> dict:
    inbox = tmp / "flood"
    inbox.mkdir()
    p, port = _server(g, inbox, [], "serve-flood")
    rng = random.Random(5)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for i in range(count):
            name = f"forged-{i}".encode() if i % 2 else b""
            syn = Segment(seq=rng.getrandbits(32), flags=SYN, window=65535, mss=1452, wscale=0,
                          sack_permitted=True, file_size=1 << 20, payload=name,
                          name_follows=bool(name), src_port=rng.randrange(20000, 60000),
                          dst_port=port)
            sock.sendto(encode(syn), (HOST, port))
            if i % 200 == 199:
                time.sleep(0.002)
    time.sleep(0.5)
    hwm = _vm(p.pid, "VmHWM")
    p.signal(signal.SIGTERM)
    p.wait(30)
    m = re.search(r"half-open: at most (\d+) at once, (\d+) forgotten", p.stdout)
    return {"syns": count, "peak_rss_kib": hwm, "half_open_peak": int(m.group(1)) if m else None,
            "files": len(list(inbox.iterdir()))}


def _vm(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def table(m: dict, invocation: str) -> str:
    lines = ["Loopback, no emulator, WINDOW 4 MiB, `--cc none`, the files' total "
             f"{m['mib']:g} MiB split evenly, all senders started at once; the server's CPU "
             "less an idle server's start and stop. One run per case.", "",
             "| receiver | flows | sum of goodputs | server CPU | per segment | per MiB |",
             "|---|---|---|---|---|---|"]
    for r in [dict(m["oneshot"], who="stcp-recv"), *(dict(r, who="stcp-serve")
                                                      for r in m["loopback"])]:
        lines.append(f"| {r['who']} | {r['flows']} | {r['goodput_sum_bps'] / 1e6:.0f} Mbit/s | "
                     f"{r['server_cpu_s']:.2f} s | {r['us_per_segment']:.1f} us | "
                     f"{r['ms_per_mib']:.1f} ms |")
    f = m["flood"]
    lines += ["", f"SYN flood: {f['syns']} forged SYNs to an idle stcp-serve (defaults: "
              f"--max-half-open 256, --syn-timeout 10): peak RSS {f['peak_rss_kib'] / 1024:.1f} "
              f"MiB against {m['idle_rss_kib'] / 1024:.1f} MiB idle; at most "
              f"{f['half_open_peak']} half-open at once; {f['files']} files created.", "",
              f"Made by `{invocation}`."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.bench_serve",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--flows", default="1,2,4,8")
    ap.add_argument("--mib", type=float, default=32.0)
    ap.add_argument("--flood", type=int, default=20000)
    ap.add_argument("--results", action="store_true",
                    help="also write the table into bench/results/RESULTS.md")
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp, Group(Path(tmp)) as g:
        t = Path(tmp)
        idle, idle_rss = idle_cpu(g, t)
        m = {"mib": a.mib, "idle_cpu_s": idle, "idle_rss_kib": idle_rss, "loopback": []}
        for n in [int(x) for x in a.flows.split(",")]:
            m["loopback"].append(loopback(g, t, n, a.mib, idle))
            print(f"  {n} flows: {m['loopback'][-1]}", flush=True)
        m["oneshot"] = oneshot(g, t, a.mib, idle)
        m["flood"] = flood(g, t, a.flood)
    text = table(m, " ".join(["python -m bench.bench_serve", *(argv or sys.argv[1:])]))
    print(text)
    if a.results:
        out = Path(__file__).resolve().parent / "results"
        write_results(text, out / "RESULTS.md")
        (out / "serve.json").write_text(json.dumps(m, indent=1) + "\n")
        print("written into bench/results/RESULTS.md (raw figures: serve.json)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
