"""Sections 1 (loopback, ours against the baselines) and 4 (CPU per MiB) of
the report, and the fixed cost of one of our runs (a 1 KiB file) that the
others take out: medians, targets, Markdown and plots."""

from __future__ import annotations

from collections import defaultdict

from bench.report.fmt import LABEL, ORDER, cpu, fmt, kib, mbit, net, part, pct, per_mib, rss
from bench.runs import MIB
from bench.suite import BURST_ACKS, OURS, Plan, median


def fixed_costs(records: list[dict]) -> dict:
    """Medians of the 1 KiB runs: CPU, time and peak RSS of each end."""
    fx = [r for r in records if r["section"] == "fixed" and r["ok"]]
    return {"send": median([cpu(r, "sender") for r in fx]),
            "recv": median([cpu(r, "receiver") for r in fx]),
            "seconds": median([r["seconds"] for r in fx]),
            "rss_send": median([rss(r, "sender") for r in fx]),
            "rss_recv": median([rss(r, "receiver") for r in fx]),
            "runs": len(fx)} if fx else {}


def _row(name: str, recs: list[dict], fs: float | None, fr: float | None) -> dict:
    ok = [r for r in recs if r["ok"]]
    g = [r["goodput"] for r in ok]
    return {
        "runs": len(recs), "ok": len(ok),
        "goodput": median(g), "min": min(g) if g else None, "max": max(g) if g else None,
        "cpu_send": median([per_mib(r, "sender") for r in ok]),
        "cpu_recv": median([per_mib(r, "receiver") for r in ok]),
        "rss_send": median([rss(r, "sender") for r in ok]),
        "rss_recv": median([rss(r, "receiver") for r in ok]),
        "segments": median([r["info"].get("segments_sent") for r in ok]),
        "acks": median([r["info"].get("segments_received") for r in ok]),
        "cpu_send_s": median([cpu(r, "sender") for r in ok]),
        "cpu_recv_s": median([cpu(r, "receiver") for r in ok]),
        "net_send_s": median([net(cpu(r, "sender"), fs) for r in ok])
        if name in OURS else None,
        "net_recv_s": median([net(cpu(r, "receiver"), fr) for r in ok])
        if name in OURS else None,
        "sys_send": median([part(r, "sender", "sys") for r in ok]),
        "sys_recv": median([part(r, "receiver", "sys") for r in ok]),
        "notes": sorted({r["note"] for r in recs if r["note"]}),
    }


def summarise(records: list[dict], fixed: dict, targets: list) -> dict:
    """Section 1's row per contender; its targets are appended to ``targets``."""
    loop = defaultdict(list)
    for r in records:
        if r["section"] == "loopback":
            loop[r["name"]].append(r)
    rows = {name: _row(name, loop[name], fixed.get("send"), fixed.get("recv"))
            for name in ORDER if loop.get(name)}
    udp = rows.get("udp", {}).get("goodput")
    sr = rows.get("sr", {}).get("goodput")
    if sr and udp:  # wave 1's row 1, then issue 19's restatement of it
        for share in (0.5, 0.8):
            targets.append(("1", f"sr goodput >= {share:.0%} of the UDP ceiling",
                            pct(sr / udp), sr / udp >= share))
    r = rows.get("sr")
    if r and r["segments"] and r["net_send_s"] is not None:
        us = r["net_send_s"] * 1e6 / r["segments"]
        targets.append(("1", "sr sender CPU per segment <= 4 µs (fixed cost taken out)",
                        f"{us:.1f} µs", us <= 4.0))
    for other, factor in (("aioquic", 5), ("tftpy", 10)):
        o = rows.get(other, {}).get("goodput")
        if sr and o:
            targets.append(("1", f"sr >= {factor}x {other}", f"{sr / o:.1f}x",
                            sr / o >= factor))
    return rows


def segment_costs(s: dict, mode: str = "sr") -> dict[str, str]:
    """Our CPU per segment in section 1, net of the fixed cost, with its user/system split."""
    r = s["loopback"].get(mode)
    if not r or not r["segments"] or r["net_send_s"] is None:
        return {}
    out = {}
    for role, short in (("sender", "send"), ("receiver", "recv")):
        tot = r[f"net_{short}_s"] * 1e6 / r["segments"]
        share = r[f"sys_{short}"] / r[f"cpu_{short}_s"] if r[f"cpu_{short}_s"] else None
        out[role] = f"{tot:.1f} µs" + (f" (system time {pct(share)} of the process's CPU)"
                                       if share is not None else "")
    return out


# ------------------------------------------------------------- Markdown


def _table(rows: dict) -> list[str]:
    udp = rows.get("udp", {}).get("goodput")
    sr = rows.get("sr", {}).get("goodput")
    L = ["| contender | goodput Mbit/s (median) | min-max | of UDP ceiling | sr is x times"
         " | CPU s/MiB send | CPU s/MiB recv | peak RSS send/recv MiB | ok runs |",
         "|---|---|---|---|---|---|---|---|---|"]
    for name in ORDER:
        r = rows.get(name)
        if not r:
            continue
        g = r["goodput"]
        L.append(f"| {LABEL[name]} | {mbit(g)} | {mbit(r['min'])}-{mbit(r['max'])} | "
                 f"{pct(g / udp) if g and udp else '-'} | "
                 f"{f'{sr / g:.2f}x' if g and sr else '-'} | {fmt(r['cpu_send'], '.4f')} | "
                 f"{fmt(r['cpu_recv'], '.4f')} | {fmt(r['rss_send'], '.0f')}/"
                 f"{fmt(r['rss_recv'], '.0f')} | {r['ok']}/{r['runs']}"
                 + (f" ({'; '.join(r['notes'])})" if r["notes"] else "") + " |")
    L.append("")
    return L


def markdown(s: dict, plan: Plan) -> list[str]:
    """Section 1: the table, the cost per segment, the fixed cost of a run."""
    if not s["loopback"]:
        return []
    rows = s["loopback"]
    L = [f"## 1. Loopback, no emulator: {plan.loopback_size // MIB} MiB random file", "",
         f"127.0.0.1, MSS 1452 (one segment per 1472-byte datagram, a 1500-byte MTU); ours "
         f"with window {kib(plan.loopback_window)} and receiver `--buffer {plan.buffer}`, "
         "timed by the sender's summary (SYN to verified FIN: the receiver has written, "
         "fsynced and SHA-256-checked the file). The others: see `bench/baselines.py` "
         "(their sinks count bytes and write nothing). "
         f"`{LABEL['sr-burst']}` (sr-burst below): sr with the receiver at "
         f"`{' '.join(BURST_ACKS)}`, "
         "an ACK for in-order data at the end of each burst of datagrams it reads (as a "
         "receiver behind GRO sends them) rather than for every second segment, the "
         "default (RFC 5681 §4.2).", "",
         "![loopback goodput](loopback.png)", ""]
    L += _table(rows)
    for mode in OURS:
        r = rows.get(mode)
        cost = segment_costs(s, mode)
        if cost:
            L += [f"Ours ({mode}) per segment, the fixed cost of a run taken out: "
                  f"{r['segments']:.0f} segments sent, {r['acks']:.0f} ACKs received; CPU per "
                  f"segment: sender {cost['sender']}, receiver {cost['receiver']}.", ""]
    fixed = s.get("fixed") or {}
    if fixed:
        L += [f"Fixed cost of one of our runs (a 1 KiB file, median of {fixed['runs']}): "
              f"sender {fixed['send']:.2f} s CPU, receiver {fixed['recv']:.2f} s CPU "
              f"(interpreter start-up and imports, mostly), {fixed['seconds'] * 1000:.1f} ms "
              f"SYN to verified FIN, peak RSS {fixed['rss_send']:.1f} / "
              f"{fixed['rss_recv']:.1f} MiB.", ""]
    return L


def _cpu_rows(s: dict, plan: Plan) -> list[tuple]:
    out = []
    for name in ORDER:
        r = s["loopback"].get(name)
        if r and r["cpu_send"] is not None:
            out.append((f"{LABEL[name]}, {plan.loopback_size // MIB} MiB",
                        r["cpu_send"], r["cpu_recv"], r["net_send_s"], r["net_recv_s"], r))
    for x in s["sizes"]:
        out.append((f"ours, sr, {kib(x['size'])}", x["cpu_send"], x["cpu_recv"],
                    x["net_send"], x["net_recv"], None))
    return out


def cpu_markdown(s: dict, plan: Plan) -> list[str]:
    """Section 4: CPU per MiB of each end, from the runs of sections 1 and 3a."""
    rows = _cpu_rows(s, plan)
    if not rows:
        return []
    L = ["## 4. CPU", "",
         "User + system CPU seconds per MiB delivered, each end on its own (`wait4` of "
         "each child process, so interpreter start-up and imports are included; the "
         "\"net\" columns take our fixed cost of a run out, see section 1).", "",
         "![cpu](cpu.png)", "",
         "| run | sender s/MiB | receiver s/MiB | sender net s/MiB | receiver net s/MiB |",
         "|---|---|---|---|---|"]
    for label, a, b, na, nb, r in rows:
        if r is not None and na is not None:
            mib = plan.loopback_size / MIB
            na, nb = na / mib, nb / mib
        L.append(f"| {label} | {fmt(a, '.4f')} | {fmt(b, '.4f')} | {fmt(na, '.4f')} | "
                 f"{fmt(nb, '.4f')} |")
    L.append("")
    return L


# ------------------------------------------------------------- plots


def plot(plt, s: dict, plan: Plan, save) -> None:
    rows = s["loopback"]
    if not rows:
        return
    names = [n for n in ORDER if n in rows and rows[n]["goodput"]]
    fig, ax = plt.subplots(figsize=(8, 3.6))
    g = [rows[n]["goodput"] * 8 / 1e6 for n in names]
    lo = [gg - rows[n]["min"] * 8 / 1e6 for gg, n in zip(g, names, strict=True)]
    hi = [rows[n]["max"] * 8 / 1e6 - gg for gg, n in zip(g, names, strict=True)]
    colors = ["#888" if n in ("udp", "tcp") else "#1f77b4" if n in OURS
              else "#ff7f0e" for n in names]
    ax.barh([LABEL[n] for n in names], g, xerr=[lo, hi], color=colors, capsize=3)
    ax.set_xscale("log")
    ax.invert_yaxis()
    ax.set_xlabel("goodput, Mbit/s (log scale; median, bars min-max)")
    ax.set_title(f"Loopback, {plan.loopback_size // MIB} MiB file")
    for i, v in enumerate(g):
        ax.text(v, i, f" {v:,.0f}", va="center", fontsize=8)
    save(fig, "loopback.png")


def cpu_plot(plt, s: dict, plan: Plan, save) -> None:
    rows = s["loopback"]
    cpu_rows = [(n, rows[n]) for n in ORDER if n in rows and rows[n]["cpu_send"] is not None]
    if not cpu_rows:
        return
    fig, ax = plt.subplots(figsize=(8, 3.6))
    ys = list(range(len(cpu_rows)))
    ax.barh([y - 0.2 for y in ys], [r["cpu_send"] for _, r in cpu_rows], height=0.4,
            label="sending end")
    ax.barh([y + 0.2 for y in ys], [r["cpu_recv"] for _, r in cpu_rows], height=0.4,
            label="receiving end")
    ax.set_yticks(ys, [LABEL[n] for n, _ in cpu_rows])
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("CPU seconds (user+sys) per MiB, log scale")
    ax.set_title(f"CPU per MiB, loopback, {plan.loopback_size // MIB} MiB")
    ax.legend()
    save(fig, "cpu.png")
