"""From the run records to figures: medians, models, targets, the Markdown
table (RESULTS.md) and the plots."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from bench import models
from bench.runs import MIB
from bench.suite import KIB, PATH_GSO, Plan, median

ORDER = ["udp", "tcp", "sr", "gbn", "tftpy", "aioquic"]
LABEL = {
    "udp": "UDP blast (ceiling)",
    "tcp": "Linux TCP (sendfile)",
    "sr": "ours, sr",
    "gbn": "ours, gbn",
    "tftpy": "tftpy (TFTP, blksize 1428)",
    "aioquic": "aioquic (QUIC, one stream)",
}


def mbit(bps: float | None) -> str:
    return "-" if bps is None else f"{bps * 8 / 1e6:,.1f}"


def pct(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:.0f}%"


def kib(n: int) -> str:
    return f"{n // MIB} MiB" if n >= MIB and n % MIB == 0 else f"{n // KIB} KiB"


def _cpu(rec: dict, role: str) -> float | None:
    u = rec["usage"].get(role)
    return None if not u else u["user"] + u["sys"]


def _part(rec: dict, role: str, key: str) -> float | None:
    u = rec["usage"].get(role)
    return None if not u else u[key]


def _rss(rec: dict, role: str) -> float | None:
    u = rec["usage"].get(role)
    return None if not u else u["maxrss_kib"] / 1024.0


def _per_mib(rec: dict, role: str) -> float | None:
    c = _cpu(rec, role)
    return None if c is None or rec["bytes"] <= 0 else c / (rec["bytes"] / MIB)


def _fmt(x: float | None, spec: str = ".2f") -> str:
    return "-" if x is None else format(x, spec)


# ------------------------------------------------------------- aggregation


def _net(cpu: float | None, fixed: float | None) -> float | None:
    """CPU seconds less the fixed cost of a run (never below zero)."""
    if cpu is None:
        return None
    return max(0.0, cpu - (fixed or 0.0))


def summarise(records: list[dict], facts: dict, plan: Plan) -> dict:
    s: dict = {"targets": []}
    fx = [r for r in records if r["section"] == "fixed" and r["ok"]]
    fixed = {"send": median([_cpu(r, "sender") for r in fx]),
             "recv": median([_cpu(r, "receiver") for r in fx]),
             "seconds": median([r["seconds"] for r in fx]),
             "rss_send": median([_rss(r, "sender") for r in fx]),
             "rss_recv": median([_rss(r, "receiver") for r in fx]),
             "runs": len(fx)} if fx else {}
    s["fixed"] = fixed
    fs, fr = fixed.get("send"), fixed.get("recv")
    # section 1
    loop = defaultdict(list)
    for r in records:
        if r["section"] == "loopback":
            loop[r["name"]].append(r)
    rows = {}
    for name in ORDER:
        recs = loop.get(name)
        if not recs:
            continue
        ok = [r for r in recs if r["ok"]]
        g = [r["goodput"] for r in ok]
        rows[name] = {
            "runs": len(recs), "ok": len(ok),
            "goodput": median(g), "min": min(g) if g else None, "max": max(g) if g else None,
            "cpu_send": median([_per_mib(r, "sender") for r in ok]),
            "cpu_recv": median([_per_mib(r, "receiver") for r in ok]),
            "rss_send": median([_rss(r, "sender") for r in ok]),
            "rss_recv": median([_rss(r, "receiver") for r in ok]),
            "segments": median([r["info"].get("segments_sent") for r in ok]),
            "acks": median([r["info"].get("segments_received") for r in ok]),
            "cpu_send_s": median([_cpu(r, "sender") for r in ok]),
            "cpu_recv_s": median([_cpu(r, "receiver") for r in ok]),
            "net_send_s": median([_net(_cpu(r, "sender"), fs) for r in ok])
            if name in ("sr", "gbn") else None,
            "net_recv_s": median([_net(_cpu(r, "receiver"), fr) for r in ok])
            if name in ("sr", "gbn") else None,
            "sys_send": median([_part(r, "sender", "sys") for r in ok]),
            "sys_recv": median([_part(r, "receiver", "sys") for r in ok]),
            "notes": sorted({r["note"] for r in recs if r["note"]}),
        }
    s["loopback"] = rows
    udp = rows.get("udp", {}).get("goodput")
    sr = rows.get("sr", {}).get("goodput")
    if sr and udp:
        s["targets"].append(("1", "sr goodput >= 50% of the UDP ceiling", pct(sr / udp),
                             sr / udp >= 0.5))
    for other, factor in (("aioquic", 5), ("tftpy", 10)):
        o = rows.get(other, {}).get("goodput")
        if sr and o:
            s["targets"].append(("1", f"sr >= {factor}x {other}", f"{sr / o:.1f}x",
                                 sr / o >= factor))

    # section 2
    rtt = facts.get("path_rtt")
    ceiling = facts.get("path_payload_ceiling")
    cells = defaultdict(list)
    for r in records:
        if r["section"] == "loss":
            cells[(r["window"], r["loss"], r["name"])].append(r)
    loss_rows = []
    for win in plan.loss_windows:
        for loss in plan.losses:
            row = {"window": win, "loss": loss}
            for mode in ("sr", "gbn"):
                row[mode] = _lossy_cell(cells.get((win, loss, mode), []), mode, loss, win,
                                        rtt, ceiling)
            loss_rows.append(row)
    # the loss response alone: the same models scaled from our own goodput at 0 % loss
    for row in loss_rows:
        for mode in ("sr", "gbn"):
            base = next((x[mode]["goodput"] for x in loss_rows
                         if x["window"] == row["window"] and x["loss"] == 0), None)
            if base:
                p = row["loss"] / 100
                f = (1 - p) if mode == "sr" else \
                    (1 - p) / (1 + (models.segments(row["window"]) - 1) * p)
                row[mode]["own_model"] = base * f
                g = row[mode]["goodput"]
                row[mode]["own_ratio"] = g / (base * f) if g else None
    s["loss"] = loss_rows
    lossy = [r for r in records if r["section"] == "loss" and r["ok"] and r["loss"]]
    s["syn_resent"] = (sum(1 for r in lossy if (r["info"].get("syns") or 1) > 1), len(lossy))
    for win in plan.loss_windows:
        rs = [x for x in loss_rows if x["window"] == win]
        if rs and all(x["sr"]["ratio"] is not None for x in rs):
            worst = min(rs, key=lambda x: -abs(x["sr"]["ratio"] - 1))
            ok = all(abs(x["sr"]["ratio"] - 1) <= 0.15 for x in rs)
            s["targets"].append((
                "2", f"sr within 15% of its model at every loss rate, window {kib(win)}",
                ", ".join(f"{x['loss']:g}%: {pct(x['sr']['ratio'])}" for x in rs)
                + f" (worst {worst['loss']:g}%)", ok))

    # section 3a
    by_size = defaultdict(list)
    for r in records:
        if r["section"] == "sizes" and r["ok"]:
            by_size[r["size"]].append(r)
    size_rows = []
    for size in sorted(by_size):
        recs = by_size[size]
        size_rows.append({
            "size": size, "runs": len(recs),
            "ms_per_mib": median([r["seconds"] * 1000 / (size / MIB) for r in recs]),
            "ms_min": min(r["seconds"] * 1000 / (size / MIB) for r in recs),
            "ms_max": max(r["seconds"] * 1000 / (size / MIB) for r in recs),
            "goodput": median([r["goodput"] for r in recs]),
            "rss_send": median([_rss(r, "sender") for r in recs]),
            "rss_recv": median([_rss(r, "receiver") for r in recs]),
            "rss_send_max": max(_rss(r, "sender") or 0 for r in recs),
            "rss_recv_max": max(_rss(r, "receiver") or 0 for r in recs),
            "cpu_send": median([_per_mib(r, "sender") for r in recs]),
            "cpu_recv": median([_per_mib(r, "receiver") for r in recs]),
            "rexmit": [r["info"].get("retransmissions", 0) for r in recs],
            "net_send": median([_net(_cpu(r, "sender"), fs) / (size / MIB) for r in recs]),
            "net_recv": median([_net(_cpu(r, "receiver"), fr) / (size / MIB) for r in recs]),
        })
    s["sizes"] = size_rows
    # through the per-size medians: one slow run (a retransmission timeout) must not tilt it
    pts = [(size / MIB, median([r["seconds"] * 1000 for r in by_size[size]]))
           for size in by_size]
    if len({x for x, _ in pts}) >= 2:
        mx = sum(x for x, _ in pts) / len(pts)
        my = sum(y for _, y in pts) / len(pts)
        slope = (sum((x - mx) * (y - my) for x, y in pts)
                 / sum((x - mx) ** 2 for x, _ in pts))
        s["size_fit"] = {"ms_fixed": my - slope * mx, "ms_per_mib": slope}
    if len(size_rows) >= 2:
        t = [x["ms_per_mib"] for x in size_rows]
        spread = max(t) / min(t) - 1
        s["targets"].append(("3", "time per MiB within 10% across file sizes",
                             f"{min(t):.1f}-{max(t):.1f} ms/MiB (spread {pct(spread)})",
                             spread <= 0.10))
        for role, key in (("sender", "rss_send"), ("receiver", "rss_recv")):
            base = size_rows[0][key]
            grow = max(x[key] for x in size_rows) - base
            s["targets"].append(("3", f"{role} peak RSS within 20 MiB of the smallest run's",
                                 f"{base:.1f} -> {max(x[key] for x in size_rows):.1f} MiB "
                                 f"(+{grow:.1f})", grow <= 20))

    # section 3b
    by_win = defaultdict(list)
    for r in records:
        if r["section"] == "windows" and r["goodput"] > 0 and not r.get("loss"):
            by_win[r["window"]].append(r)
    win_rows = []
    for win in sorted(by_win):
        recs = by_win[win]
        bound = models.window_limited(win, rtt, ceiling) if rtt else None
        g = median([r["goodput"] for r in recs])
        acks = median([r["info"].get("segments_received") for r in recs])
        segs = median([r["info"].get("segments_sent") for r in recs])
        cpu = median([_cpu(r, "sender") for r in recs])
        win_rows.append({
            "window": win, "goodput": g, "bound": bound,
            "ratio": g / bound if g and bound else None,
            "wrtt": win / rtt if rtt else None,
            "acks": acks, "segments": segs, "cpu_send": cpu,
            "cpu_recv": median([_cpu(r, "receiver") for r in recs]),
            "us_per_ack": median([_net(_cpu(r, "sender"), fs) * 1e6
                                  / r["info"]["segments_received"]
                                  for r in recs if r["info"].get("segments_received")]),
            "us_per_seg": median([_net(_cpu(r, "sender"), fs) * 1e6 / r["info"]["segments_sent"]
                                  for r in recs if r["info"].get("segments_sent")]),
            "segs_per_ack": segs / acks if segs and acks else None,
            "size": recs[0]["size"],
        })
    s["windows"] = win_rows
    s["windows_loss"] = _windows_at_loss(records, by_win, rtt, ceiling, fs, fr)
    return s


def _lossy_cell(recs: list[dict], mode: str, loss: float, win: int, rtt: float | None,
                ceiling: float | None) -> dict:
    """The medians of one (window, loss, mode) cell's runs, against the model."""
    good = [r for r in recs if r["goodput"] > 0]
    g = median([r["goodput"] for r in good])
    m = models.model(mode, loss / 100, win, rtt, ceiling) if rtt else None
    return {
        "goodput": g, "model": m, "ratio": g / m if g and m else None,
        "runs": len(recs), "cut": sum(1 for r in recs if r["note"].startswith("cut")),
        "failed": len(recs) - len(good),
        "rexmit": median([r["info"].get("retransmissions") for r in good]),
        "timeouts": median([r["info"].get("timer_expiries") for r in good]),
        "rtt_avg": median([r["info"].get("rtt_avg_ms") for r in good]),
        "size": recs[0]["size"] if recs else None,
    }


def _busy_cores(rec: dict, fs: float | None, fr: float | None) -> float | None:
    """CPU seconds of the run's three processes (ours less the fixed cost of
    a run, the emulator with its start-up) over the run's seconds."""
    parts = [_net(_cpu(rec, "sender"), fs), _net(_cpu(rec, "receiver"), fr),
             _cpu(rec, "emu-data")]
    if any(x is None for x in parts) or rec["seconds"] <= 0:
        return None
    return sum(parts) / rec["seconds"]


def _windows_at_loss(records: list[dict], lossless: dict, rtt: float | None,
                     ceiling: float | None, fs: float | None, fr: float | None) -> list[dict]:
    """Section 3b's windows again at a loss rate: sr against its model as
    the rate grows, beside the RTT its segments saw and how busy the
    machine was, at that loss and with none."""
    cells = defaultdict(list)
    for r in records:
        if r["section"] == "windows" and r.get("loss"):
            cells[(r["window"], r["loss"])].append(r)
    rows = []
    for (win, loss), recs in sorted(cells.items()):
        row = _lossy_cell(recs, "sr", loss, win, rtt, ceiling)
        good = [r for r in recs if r["goodput"] > 0]
        zero = lossless.get(win, [])
        row.update(window=win, loss=loss,
                   rtt_avg0=median([r["info"].get("rtt_avg_ms") for r in zero]),
                   cores=median([_busy_cores(r, fs, fr) for r in good]),
                   cores0=median([_busy_cores(r, fs, fr) for r in zero]))
        rows.append(row)
    return rows


def _windows_loss_table(rows: list[dict], cores) -> list[str]:
    """Section 3b at a loss rate: the table and what it says."""
    loss = rows[0]["loss"]
    out = [f"### Window size at {loss:g}% loss (sr, the same path)", "",
           f"The windows above again, with {loss:g}% random loss on the data path. Model = "
           "(1-p) min(W/RTT, C), as in section 2. Busy cores = CPU seconds of the three "
           "processes (sender and receiver less the fixed cost of a run, the emulator with its "
           "start-up) over the seconds of the run"
           + (f", out of the machine's {cores}" if cores else "") + "; 'no loss' is the "
           "table above's run of the same window.", "",
           "| window | goodput Mbit/s | model Mbit/s | of model | RTT avg ms, no loss -> "
           f"{loss:g}% | rexmit, timeouts | busy cores, no loss -> {loss:g}% | file | "
           "failed runs |",
           "|---|---|---|---|---|---|---|---|---|"]
    for x in rows:
        out.append(f"| {kib(x['window'])} | {mbit(x['goodput'])} | {mbit(x['model'])} | "
                   f"{pct(x['ratio'])} | {_fmt(x['rtt_avg0'], '.1f')} -> "
                   f"{_fmt(x['rtt_avg'], '.1f')} | {_fmt(x['rexmit'], '.0f')}, "
                   f"{_fmt(x['timeouts'], '.0f')} | {_fmt(x['cores0'], '.2f')} -> "
                   f"{_fmt(x['cores'], '.2f')} | {kib(x['size'])} | {x['failed']}/{x['runs']} |")
    out.append("")
    known = [x for x in rows if x["ratio"] is not None and x["rtt_avg"] is not None]
    if len(known) >= 2:
        out.append(
            f"Read across: at {loss:g}% loss, sr's share of its model by window is "
            + ", ".join(f"{kib(x['window'])} {pct(x['ratio'])}" for x in known)
            + f"; the RTT its segments saw goes from {known[0]['rtt_avg']:.1f} to "
            f"{known[-1]['rtt_avg']:.1f} ms (the model takes the smallest sample)"
            + (f", and the busy cores from {_fmt(known[0]['cores'], '.2f')} to "
               f"{_fmt(known[-1]['cores'], '.2f')}" if known[0]["cores"] is not None
               and known[-1]["cores"] is not None else "")
            + ".")
        out.append("")
    return out


def loss_reading(s: dict, facts: dict, plan: Plan) -> list[str]:
    """What the loss tables say, in words, from this run's figures."""
    rtt, ceiling = facts.get("path_rtt"), facts.get("path_payload_ceiling")
    if not rtt:
        return []
    out = ["### Reading section 2", ""]
    for win in plan.loss_windows:
        rows = [x for x in s["loss"] if x["window"] == win]
        zero = next((x for x in rows if x["loss"] == 0), None)
        parts = []
        if zero and zero["sr"]["goodput"]:
            a = zero["sr"]
            if win / rtt < ceiling:
                why = (f"its RTT samples averaged {_fmt(a['rtt_avg'], '.1f')} ms against the "
                       f"{rtt * 1000:.1f} ms minimum (time in the three processes: "
                       f"datagrams waiting to be read, ACKs held to a burst's end, thread "
                       f"hand-offs), and W/RTT_avg = {mbit(win / (a['rtt_avg'] / 1000))} Mbit/s"
                       if a["rtt_avg"] else "")
                parts.append(f"at 0% loss sr reaches {pct(a['ratio'])} of W/RTT; {why}")
            else:
                parts.append(f"at 0% loss sr reaches {pct(a['ratio'])} of the ceiling C (W/RTT "
                             "is higher): three Python processes (sender, emulator, receiver) and "
                             "the kernel's work for them share two cores")
        lossy = [x for x in rows if x["loss"] > 0 and x["sr"].get("own_ratio")]
        if lossy:
            parts.append("the response to loss alone (sr/own) is " + ", ".join(
                f"{x['loss']:g}%: {pct(x['sr']['own_ratio'])}" for x in lossy)
                + "; median timer expiries per run " + ", ".join(
                f"{x['loss']:g}%: {_fmt(x['sr']['timeouts'], '.0f')}" for x in lossy))
        close = [x["loss"] for x in rows if x["loss"] > 0 and x["gbn"]["ratio"]
                 and x["gbn"]["ratio"] >= 0.8]
        if close:
            parts.append("gbn reaches at least 80% of its model at "
                         + ", ".join(f"{c:g}%" for c in close) + " loss")
        if parts:
            out.append(f"- Window {kib(win)}: " + "; ".join(parts) + ".")
    out += ["",
            "The textbook (1-p) B supposes that every transmission holds the window for "
            "exactly the minimum RTT and that a lost segment is replaced at once. Our sender "
            "bounds the bytes in flight (RFC 6675's pipe: SACKed bytes do not count), so a "
            "hole does not hold the window's left edge, and it paces new data (README, "
            "\"What the window means\"), so a window does not cross the link as one burst. "
            "What the model leaves out is in the "
            "columns: the RTT segments really see (\"RTT avg\", against the minimum the "
            "model uses: time in the emulator, the receiver and the sender, which grows with "
            "the loss rate as each ACK carries more SACK news); the time a loss takes "
            "to be found (three segments' worth SACKed above it, or RACK's reordering window, "
            "at least a quarter of the minimum RTT, after a later segment arrives), during "
            "which the lost segment still counts in flight; and resends lost again, found by "
            "RACK (its reordering timer, when nothing sent later is left to arrive) or, "
            "failing that, by the RTO of at least 200 ms, some 20 RTTs of this path "
            "(\"timeouts\" counts the expiries per run). Go-Back-N's model already charges "
            "a whole window per loss."]
    return out


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


def markdown(s: dict, facts: dict, machine: dict, plan: Plan, sections: list[str],
             argv: str, profile_note: str | None) -> str:
    L: list[str] = []
    add = L.append
    add("# Benchmark results")
    add("")
    if plan.quick:
        add("**QUICK RUN** (`--quick`): smaller files, fewer cases, **1 repetition**, so no "
            "medians; figures are indicative only. The committed figures come from the full "
            "`python -m bench`.")
        add("")
    add(f"Produced by `{argv}` on {machine['date']}, in {facts.get('elapsed_s', 0) / 60:.1f} "
        f"min; sections: {', '.join(sections)}. Every figure is the **median of "
        f"{plan.runs} run(s)**; all contenders of a table ran interleaved in the same "
        "invocation, so compare them as ratios. Raw per-run data: `results.json`.")
    add("")
    add("## Machine")
    add("")
    add("| | |")
    add("|---|---|")
    for k in ("cpu", "cores", "memory", "python", "kernel", "virtualisation", "commit",
              "rmem_max", "wmem_max"):
        if machine.get(k) is not None:
            add(f"| {k} | {machine[k]} |")
    for when in ("start", "end"):
        la = machine.get(f"loadavg_{when}")
        if la:
            add(f"| load average at {when} | {la[0]:.2f} {la[1]:.2f} {la[2]:.2f} |")
    add("")
    a, b = machine.get("fingerprint_start"), machine.get("fingerprint_end")
    if a and b and a != b:
        add(f"**The programs changed while this ran** (source digest {a} at the start, {b} at "
            "the end: others work in the same tree), so the figures may mix versions.")
        add("")
    add("The machine is shared and noisy: absolute figures move from run to run; ratios "
        "measured in one invocation are what to compare.")
    add("")
    add(cpu_layout(facts.get("loopback_cpus")))
    add("")
    if s["targets"]:
        add("## Targets")
        add("")
        add("| row | target | measured | met |")
        add("|---|---|---|---|")
        for row, what, got, ok in s["targets"]:
            add(f"| {row} | {what} | {got} | {'yes' if ok else '**NO**'} |")
        add("")
        if profile_note:
            add(profile_note)
            add("")

    if s["loopback"]:
        rows = s["loopback"]
        udp = rows.get("udp", {}).get("goodput")
        sr = rows.get("sr", {}).get("goodput")
        size = plan.loopback_size
        add(f"## 1. Loopback, no emulator: {size // MIB} MiB random file")
        add("")
        add(f"127.0.0.1, MSS 1452 (one segment per 1472-byte datagram, a 1500-byte MTU); ours "
            f"with window {kib(plan.loopback_window)} and receiver `--buffer {plan.buffer}`, "
            "timed by the sender's summary (SYN to verified FIN: the receiver has written, "
            "fsynced and SHA-256-checked the file). The others: see `bench/baselines.py` "
            "(their sinks count bytes and write nothing).")
        add("")
        add("![loopback goodput](loopback.png)")
        add("")
        add("| contender | goodput Mbit/s (median) | min-max | of UDP ceiling | sr is x times"
            " | CPU s/MiB send | CPU s/MiB recv | peak RSS send/recv MiB | ok runs |")
        add("|---|---|---|---|---|---|---|---|---|")
        for name in ORDER:
            r = rows.get(name)
            if not r:
                continue
            g = r["goodput"]
            add(f"| {LABEL[name]} | {mbit(g)} | {mbit(r['min'])}-{mbit(r['max'])} | "
                f"{pct(g / udp) if g and udp else '-'} | "
                f"{f'{sr / g:.2f}x' if g and sr else '-'} | {_fmt(r['cpu_send'], '.4f')} | "
                f"{_fmt(r['cpu_recv'], '.4f')} | {_fmt(r['rss_send'], '.0f')}/"
                f"{_fmt(r['rss_recv'], '.0f')} | {r['ok']}/{r['runs']}"
                + (f" ({'; '.join(r['notes'])})" if r["notes"] else "") + " |")
        add("")
        for mode in ("sr", "gbn"):
            r = rows.get(mode)
            cost = segment_costs(s, mode)
            if cost:
                add(f"Ours ({mode}) per segment, the fixed cost of a run taken out: "
                    f"{r['segments']:.0f} segments sent, {r['acks']:.0f} ACKs received; CPU per "
                    f"segment: sender {cost['sender']}, receiver {cost['receiver']}.")
                add("")
        fixed = s.get("fixed") or {}
        if fixed:
            add(f"Fixed cost of one of our runs (a 1 KiB file, median of {fixed['runs']}): "
                f"sender {fixed['send']:.2f} s CPU, receiver {fixed['recv']:.2f} s CPU "
                f"(interpreter start-up and imports, mostly), {fixed['seconds'] * 1000:.1f} ms "
                f"SYN to verified FIN, peak RSS {fixed['rss_send']:.1f} / "
                f"{fixed['rss_recv']:.1f} MiB.")
            add("")

    if s["loss"]:
        add(f"## 2. Through the emulator: {plan.delay * 1000:g} ms one-way delay on the data "
            "path, random loss")
        add("")
        rtt = facts.get("path_rtt")
        cu = facts.get("path_udp_ceiling")
        cp = facts.get("path_payload_ceiling")
        resent, lossy = s.get("syn_resent", (0, 0))
        add("sender -> `stcp-link -d {:g} -L p --seed S` -> receiver; ACKs {}. Loss applies to "
            "every datagram on the data path, the SYN included. Each run sends a file sized so "
            "that the model predicts about {:g} s (powers of two, {} to {}); a run still going "
            "after {:g} s is cut (SIGTERM) and its goodput is the bytes acknowledged by then "
            "over the time elapsed. Goodput here is timed from the end of the handshake (the "
            "sender's summary row `handshake`) to the verified FIN: a lost SYN costs the "
            "initial RTO of 1 s (RFC 6298 §2.1), which is no part of a window model; {} of the "
            "{} lossy runs had their SYN resent."
            .format(plan.delay,
                    f"through a second emulator with {plan.ack_delay * 1000:g} ms delay"
                    if plan.ack_delay else "straight back (no delay, no loss)",
                    plan.loss_target_s, kib(plan.min_file), kib(plan.max_file),
                    plan.loss_budget_s, resent, lossy))
        add("")
        if rtt:
            add(f"Model inputs, measured in this run: RTT = {rtt * 1000:.2f} ms (the smallest RTT "
                f"sample any sender reported on this path); ceiling C = UDP blast through the "
                f"same emulator (no loss), {PATH_GSO} datagrams per system call (UDP GSO, as our "
                f"sender sends them; the emulator forwards such a batch whole) = {mbit(cu)} "
                f"Mbit/s of datagrams = {mbit(cp)} Mbit/s of payload. Models: B = min(W/RTT, "
                "C); sr = (1-p) B; gbn = (1-p)/(1+(N-1)p) B, N = W/1452. The \"own\" columns "
                "use our own 0%-loss goodput at that window as B, which isolates the response "
                "to loss from the CPU limit.")
            add("")
        add("![goodput against loss](loss.png)")
        add("")
        for win in plan.loss_windows:
            n = models.segments(win)
            add(f"### Window {kib(win)} (N = {n} segments"
                + (f", W/RTT = {mbit(win / rtt)} Mbit/s" if rtt else "") + ")")
            add("")
            add("| loss | sr Mbit/s | sr model | sr/model | sr/own | sr rexmit, timeouts "
                "| sr RTT avg ms | gbn Mbit/s | gbn model | gbn/model | gbn/own "
                "| gbn rexmit, timeouts | file sr/gbn | cut runs sr/gbn |")
            add("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
            for row in (x for x in s["loss"] if x["window"] == win):
                a, b = row["sr"], row["gbn"]
                add(f"| {row['loss']:g}% | {mbit(a['goodput'])} | {mbit(a['model'])} | "
                    f"{pct(a['ratio'])} | {pct(a.get('own_ratio'))} | "
                    f"{_fmt(a['rexmit'], '.0f')}, {_fmt(a['timeouts'], '.0f')} | "
                    f"{_fmt(a['rtt_avg'], '.1f')} | {mbit(b['goodput'])} | {mbit(b['model'])} | "
                    f"{pct(b['ratio'])} | "
                    f"{pct(b.get('own_ratio'))} | {_fmt(b['rexmit'], '.0f')}, "
                    f"{_fmt(b['timeouts'], '.0f')} | {kib(a['size']) if a['size'] else '-'}/"
                    f"{kib(b['size']) if b['size'] else '-'} | "
                    f"{a['cut']}/{b['cut']} |")
            add("")

    if s["loss"]:
        for line in loss_reading(s, facts, plan):
            add(line)
        add("")

    if s["sizes"]:
        add("## 3. Scaling")
        add("")
        add(f"### File size (loopback, sr, window {kib(plan.loopback_window)})")
        add("")
        add("Time per MiB from the sender's SYN-to-verified-FIN time; peak RSS is each "
            "process's own `ru_maxrss` (from `wait4`).")
        add("")
        add("![scaling](scaling.png)")
        add("")
        add("| file | ms per MiB (median) | min-max of the runs | goodput Mbit/s "
            "| peak RSS sender MiB (median/max) | peak RSS receiver MiB (median/max) "
            "| CPU s/MiB send (net of fixed) | CPU s/MiB recv (net of fixed) "
            "| retransmissions per run |")
        add("|---|---|---|---|---|---|---|---|---|")
        for x in s["sizes"]:
            add(f"| {kib(x['size'])} | {x['ms_per_mib']:.2f} | {x['ms_min']:.1f}-{x['ms_max']:.1f} "
                f"| {mbit(x['goodput'])} | "
                f"{x['rss_send']:.1f} / {x['rss_send_max']:.1f} | {x['rss_recv']:.1f} / "
                f"{x['rss_recv_max']:.1f} | {_fmt(x['cpu_send'], '.4f')} "
                f"({_fmt(x['net_send'], '.4f')}) | {_fmt(x['cpu_recv'], '.4f')} "
                f"({_fmt(x['net_recv'], '.4f')}) | {', '.join(str(n) for n in x['rexmit'])} |")
        add("")
    fit = s.get("size_fit")
    if fit:
        small = s["sizes"][0]
        resid = (small["ms_per_mib"] * small["size"] / MIB
                 - (fit["ms_fixed"] + fit["ms_per_mib"] * small["size"] / MIB))
        line = (f"A least-squares line through the per-size medians, time = a + b x size, "
                f"gives a = {fit['ms_fixed']:.1f} ms and b = {fit['ms_per_mib']:.2f} ms/MiB; "
                f"the {kib(small['size'])} median lies {resid:+.1f} ms from that line (the whole "
                f"1 KiB run takes {(s.get('fixed') or {}).get('seconds', 0) * 1000:.1f} ms).")
        fixed_ms = (s.get("fixed") or {}).get("seconds", 0) * 1000
        big = s["sizes"][-1]
        if fixed_ms and big["size"] > small["size"]:
            # What the 10% target leaves for a run's fixed cost, at the smallest file,
            # if the biggest file's rate held for every byte.
            best = fixed_ms / (small["size"] / MIB) + big["ms_per_mib"]
            room = 0.1 * big["ms_per_mib"] * small["size"] / MIB
            line += (f" Even with nothing but the 1 KiB run's fixed cost on top of the "
                     f"{kib(big['size'])} rate, {kib(small['size'])} would take "
                     f"{best:.2f} ms/MiB, {best / big['ms_per_mib'] - 1:.0%} over: the 10% "
                     f"target leaves a run {room:.1f} ms of fixed cost at {kib(small['size'])}, "
                     "less than the handshake, the receiver's two fsyncs (the file, then its "
                     "directory after the rename) and the FIN exchange take here.")
        add(line)
        add("")
    if s["windows"]:
        add(f"### Window size (sr through the emulator, {plan.delay * 1000:g} ms delay, no loss)")
        add("")
        add("Bound = min(W/RTT, C) with the RTT and C of section 2; goodput timed from the end "
            "of the handshake, as in section 2. Cost per ACK = sender CPU "
            "seconds (user+sys, less the fixed cost of a run) / ACKs it received; it includes "
            "everything the sender does, sending data too, so read it beside the segments per "
            "ACK and the cost per segment sent.")
        add("")
        add("![windows](windows.png)")
        add("")
        add("| window | goodput Mbit/s | bound Mbit/s | of bound | file | segments sent | ACKs "
            "received | segments per ACK | sender CPU s | µs CPU per ACK | µs CPU per "
            "segment |")
        add("|---|---|---|---|---|---|---|---|---|---|---|")
        for x in s["windows"]:
            add(f"| {kib(x['window'])} | {mbit(x['goodput'])} | {mbit(x['bound'])} | "
                f"{pct(x['ratio'])} | {kib(x['size'])} | {_fmt(x['segments'], '.0f')} | "
                f"{_fmt(x['acks'], '.0f')} | {_fmt(x['segs_per_ack'], '.1f')} | "
                f"{_fmt(x['cpu_send'], '.2f')} | {_fmt(x['us_per_ack'], '.0f')} | "
                f"{_fmt(x['us_per_seg'], '.1f')} |")
        add("")
    if s["windows_loss"]:
        for line in _windows_loss_table(s["windows_loss"], machine.get("cores")):
            add(line)

    cpu_rows = []
    for name in ORDER:
        r = s["loopback"].get(name)
        if r and r["cpu_send"] is not None:
            cpu_rows.append((f"{LABEL[name]}, {plan.loopback_size // MIB} MiB",
                             r["cpu_send"], r["cpu_recv"], r["net_send_s"], r["net_recv_s"],
                             r))
    for x in s["sizes"]:
        cpu_rows.append((f"ours, sr, {kib(x['size'])}", x["cpu_send"], x["cpu_recv"],
                         x["net_send"], x["net_recv"], None))
    if cpu_rows:
        add("## 4. CPU")
        add("")
        add("User + system CPU seconds per MiB delivered, each end on its own (`wait4` of "
            "each child process, so interpreter start-up and imports are included; the "
            "\"net\" columns take our fixed cost of a run out, see section 1).")
        add("")
        add("![cpu](cpu.png)")
        add("")
        add("| run | sender s/MiB | receiver s/MiB | sender net s/MiB | receiver net s/MiB |")
        add("|---|---|---|---|---|")
        for label, a, b, na, nb, r in cpu_rows:
            if r is not None and na is not None:
                mib = plan.loopback_size / MIB
                na, nb = na / mib, nb / mib
            add(f"| {label} | {_fmt(a, '.4f')} | {_fmt(b, '.4f')} | {_fmt(na, '.4f')} | "
                f"{_fmt(nb, '.4f')} |")
        add("")
    add("## Method")
    add("")
    add("- Every process is started by the harness (`harness/procs.py`, which run_pair.sh "
        "and the tests use too) in its own session on 127.0.0.1, with ports from the OS "
        "(`--ready-file`), reaped with `os.wait4` for its CPU time and peak RSS, and killed at "
        "the end whatever happens.")
    add("- Ours run with `--no-progress --log-level WARNING`; times come from the sender's "
        "summary (`time ... (SYN to verified FIN)`, less its `handshake` row in sections 2 "
        "and 3b), so TIME-WAIT is not counted.")
    add("- UDP ceiling: one Python process sends the file as 1472-byte datagrams as fast as "
        "a `send` loop goes; the sink counts what arrives between the first and last "
        "datagram. Ratios to it use the raw datagram bytes (our 20-byte header makes our "
        "best possible ratio 1452/1472 = 98.6%).")
    add("- aioquic: `max_datagram_size` 1472 and 8 MiB of flow-control credit (like our "
        "`--buffer 8M`), Reno congestion control (its default), TLS 1.3 with a throw-away "
        "self-signed P-256 certificate.")
    add("- The emulator gets `--seed 1000+run`: the same loss pattern for sr and gbn within "
        "a repetition, a different one across repetitions.")
    add("")
    return "\n".join(L)


# ------------------------------------------------------------- plots


def plots(s: dict, facts: dict, plan: Plan, out: Path) -> list[Path]:
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

    rows = s["loopback"]
    if rows:
        names = [n for n in ORDER if n in rows and rows[n]["goodput"]]
        fig, ax = plt.subplots(figsize=(8, 3.6))
        g = [rows[n]["goodput"] * 8 / 1e6 for n in names]
        lo = [gg - rows[n]["min"] * 8 / 1e6 for gg, n in zip(g, names, strict=True)]
        hi = [rows[n]["max"] * 8 / 1e6 - gg for gg, n in zip(g, names, strict=True)]
        colors = ["#888" if n in ("udp", "tcp") else "#1f77b4" if n in ("sr", "gbn")
                  else "#ff7f0e" for n in names]
        ax.barh([LABEL[n] for n in names], g, xerr=[lo, hi], color=colors, capsize=3)
        ax.set_xscale("log")
        ax.invert_yaxis()
        ax.set_xlabel("goodput, Mbit/s (log scale; median, bars min-max)")
        ax.set_title(f"Loopback, {plan.loopback_size // MIB} MiB file")
        for i, v in enumerate(g):
            ax.text(v, i, f" {v:,.0f}", va="center", fontsize=8)
        save(fig, "loopback.png")

    if s["loss"]:
        wins = plan.loss_windows
        fig, axes = plt.subplots(1, len(wins), figsize=(5.2 * len(wins), 4), squeeze=False)
        for ax, win in zip(axes[0], wins, strict=True):
            rs = [x for x in s["loss"] if x["window"] == win]
            xs = [x["loss"] for x in rs]
            for mode, color in (("sr", "#1f77b4"), ("gbn", "#d62728")):
                meas = [x[mode]["goodput"] * 8 / 1e6 if x[mode]["goodput"] else None
                        for x in rs]
                mod = [x[mode]["model"] * 8 / 1e6 if x[mode]["model"] else None for x in rs]
                own = [x[mode].get("own_model") for x in rs]
                ax.plot(xs, meas, "o-", color=color, label=f"{mode} measured")
                ax.plot(xs, mod, "--", color=color, alpha=0.8, label=f"{mode} model")
                if any(own):
                    ax.plot(xs, [o * 8 / 1e6 if o else None for o in own], ":", color=color,
                            alpha=0.6, label=f"{mode} model from own 0% goodput")
            ax.set_yscale("log")
            ax.set_xlabel("loss on the data path, %")
            ax.set_ylabel("goodput, Mbit/s (log)")
            ax.set_title(f"window {kib(win)}, {plan.delay * 1000:g} ms delay")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=7)
        save(fig, "loss.png")

    if s["sizes"]:
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
        xs = [x["size"] / MIB for x in s["sizes"]]
        a1.plot(xs, [x["ms_per_mib"] for x in s["sizes"]], "o-")
        a1.set_xscale("log", base=2)
        a1.set_ylim(bottom=0)
        a1.set_xlabel("file size, MiB")
        a1.set_ylabel("ms per MiB")
        a1.set_title("time per MiB (sr, loopback)")
        a1.grid(True, alpha=0.3)
        a2.plot(xs, [x["rss_send"] for x in s["sizes"]], "o-", label="sender")
        a2.plot(xs, [x["rss_recv"] for x in s["sizes"]], "s-", label="receiver")
        a2.set_xscale("log", base=2)
        a2.set_ylim(bottom=0)
        a2.set_xlabel("file size, MiB")
        a2.set_ylabel("peak RSS, MiB")
        a2.set_title("peak RSS")
        a2.legend()
        a2.grid(True, alpha=0.3)
        save(fig, "scaling.png")

    if s["windows"]:
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
        xs = [x["window"] / KIB for x in s["windows"]]
        a1.plot(xs, [x["goodput"] * 8 / 1e6 for x in s["windows"]], "o-", label="sr measured")
        if all(x["bound"] for x in s["windows"]):
            a1.plot(xs, [x["bound"] * 8 / 1e6 for x in s["windows"]], "--",
                    label="min(W/RTT, C)")
        lossy = [x for x in s["windows_loss"] if x["goodput"]]
        if lossy:
            p = lossy[0]["loss"]
            lx = [x["window"] / KIB for x in lossy]
            a1.plot(lx, [x["goodput"] * 8 / 1e6 for x in lossy], "^-",
                    label=f"sr measured, {p:g}% loss")
            if all(x["model"] for x in lossy):
                a1.plot(lx, [x["model"] * 8 / 1e6 for x in lossy], ":",
                        label=f"(1-p) min(W/RTT, C), {p:g}% loss")
        a1.set_xscale("log", base=2)
        a1.set_yscale("log")
        a1.set_xlabel("window, KiB")
        a1.set_ylabel("goodput, Mbit/s")
        a1.set_title(f"{plan.delay * 1000:g} ms delay"
                     + ("" if s["windows_loss"] else ", no loss"))
        a1.legend()
        a1.grid(True, which="both", alpha=0.3)
        a2.plot(xs, [x["us_per_ack"] for x in s["windows"]], "o-", label="per ACK received")
        a2.plot(xs, [x["us_per_seg"] for x in s["windows"]], "s-", label="per segment sent")
        a2.set_xscale("log", base=2)
        a2.set_yscale("log")
        a2.set_xlabel("window, KiB")
        a2.set_ylabel("sender CPU, µs")
        a2.set_title("sender CPU cost")
        a2.legend()
        a2.grid(True, which="both", alpha=0.3)
        save(fig, "windows.png")

    cpu = [(n, rows[n]) for n in ORDER if n in rows and rows[n]["cpu_send"] is not None]
    if cpu:
        fig, ax = plt.subplots(figsize=(8, 3.6))
        ys = list(range(len(cpu)))
        ax.barh([y - 0.2 for y in ys], [r["cpu_send"] for _, r in cpu], height=0.4,
                label="sending end")
        ax.barh([y + 0.2 for y in ys], [r["cpu_recv"] for _, r in cpu], height=0.4,
                label="receiving end")
        ax.set_yticks(ys, [LABEL[n] for n, _ in cpu])
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.set_xlabel("CPU seconds (user+sys) per MiB, log scale")
        ax.set_title(f"CPU per MiB, loopback, {plan.loopback_size // MIB} MiB")
        ax.legend()
        save(fig, "cpu.png")
    return made

