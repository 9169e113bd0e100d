"""Row 3 of bench/bench_cc.py: aioquic's own Reno and CUBIC on row 1's path
(20 Mbit/s, 20 ms RTT, a one-BDP tail-drop queue), both directions of the
connection through stcp-link by way of bench/quic_relay.py."""

from __future__ import annotations

import json
import shutil
import statistics
from pathlib import Path


def _med(recs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in recs)


def make_file(path: Path, size: int) -> Path:
    with open(path, "wb") as f, open("/dev/urandom", "rb") as rnd:
        f.write(rnd.read(size))
    return path


def quic_run(tmp: Path, src: Path, cc: str, rate: float, bdp: int) -> dict:
    """aioquic's client sending ``src`` with its ``cc`` through both emulators."""
    from harness.procs import Group

    from .runs import _baseline, _last_json, emulator

    work = tmp / f"r3-{cc}"
    work.mkdir()
    with Group(work) as g:
        ready = g.ready_path("quic-server")
        server = _baseline(g, "quic-server", "quic-server",
                           ["--ready-file", str(ready), "--window", str(8 << 20)], "recv")
        sport = g.wait_ready(server, ready)["port"]
        rready, peers = g.ready_path("quic-relay"), work / "peers.json"
        relay = g.python("quic-relay", "bench.quic_relay",
                         ["--ready-file", str(rready), "--peers-file", str(peers)])
        rp = g.wait_ready(relay, rready)
        _, dport = emulator(g, "emu-data", rp["s_port"],
                            ["-s", f"{rate / 1e3:g}", "-q", str(bdp), "-d", "0.010"], 20)
        _, aport = emulator(g, "emu-ack", rp["k_port"], ["-d", "0.010"], 21)
        peers.write_text(json.dumps({"server": sport, "data": dport, "ack": aport}))
        client = _baseline(g, "quic-client", "quic-client",
                           ["--file", str(src), "--port", str(rp["port"]),
                            "--window", str(8 << 20), "--cc", cc], "send")
        client.wait(300)
        if client.returncode:
            raise RuntimeError("aioquic run failed\n" + "\n".join(c.describe()
                                                                  for c in g.procs))
        got = _last_json(client)
        g.stop_all()
    shutil.rmtree(work, ignore_errors=True)
    if got["bytes"] != src.stat().st_size:
        raise RuntimeError(f"aioquic delivered {got['bytes']} of {src.stat().st_size} bytes")
    return {"goodput_bps": got["bytes"] * 8 / got["seconds"], "cpu": client.usage.cpu
            + server.usage.cpu}


def row3(tmp: Path, runs: int) -> list[dict]:
    try:
        import aioquic  # noqa: F401
    except ImportError:
        print("  row 3: aioquic is not installed (pip install -e '.[bench]'): skipped")
        return []
    rate, bdp = 20e6, 50_000
    src = make_file(tmp / "r3.bin", 12 << 20)
    out = []
    for i in range(runs):
        for cc in ("reno", "cubic"):
            (tmp / f"r3-{i}").mkdir(exist_ok=True)
            g = quic_run(tmp / f"r3-{i}", src, cc, rate, bdp)
            out.append({"cc": cc, "goodput_bps": g["goodput_bps"],
                        "util": g["goodput_bps"] / rate, "cpu": g["cpu"]})
            print(f"  row 3 aioquic {cc}: {g['goodput_bps'] / 1e6:.2f} Mbit/s", flush=True)
    return out


def row3_table(r3: list | None, r1: list) -> list[str]:
    lines = ["### Row 3: aioquic's Reno and CUBIC on row 1's path", ""]
    if not r3:
        return lines + ["Not run (aioquic not installed, or --rows left it out).", ""]
    lines += ["| sender | goodput (Mbit/s) | utilisation (% of 20 Mbit/s) | CPU, both ends (s) |",
              "|---|---|---|---|"]
    for cc in ("reno", "cubic"):
        rs = [r for r in r3 if r["cc"] == cc]
        lines.append(f"| aioquic {cc} | {_med(rs, 'goodput_bps') / 1e6:.2f} | "
                     f"{_med(rs, 'util') * 100:.1f} | {_med(rs, 'cpu'):.2f} |")
    for cc in ("newreno", "cubic"):
        rs = [r for r in r1 if r["cc"] == cc]
        if rs:
            lines.append(f"| ours, --cc {cc} | {_med(rs, 'goodput_bps') / 1e6:.2f} | "
                         f"{_med(rs, 'util') * 100:.1f} | {_med(rs, 'cpu'):.2f} |")
    lines += ["", "Both directions of aioquic's connection go through stcp-link by way of "
              "bench/quic_relay.py (QUIC needs its answers from the address it sends to): "
              "the data path as row 1's, the ACK path 10 ms. aioquic's goodput is timed by "
              "its client, from the handshake to the server's reply that it holds every "
              "byte; ours by the sender's summary, SYN to verified FIN. QUIC's packets carry "
              "less payload per 1472-byte datagram than ours. aioquic's retransmissions are "
              "not counted here.", ""]
    return lines


