"""PNG plots: goodput over time, the receiver's buffers, the emulator.

Each function takes a :class:`plots.Canvas` and a :class:`plots.Context` and
returns a matplotlib Figure, or a string saying why it has nothing to draw.
"""

from __future__ import annotations

from collections import Counter

from . import measures, series
from .plots import fit_x, fit_y, thin_step
from .text import byte_unit, human_bytes, rate, rate_unit

DROP_COLOURS = ("tab:red", "black", "tab:purple", "tab:brown", "tab:pink", "tab:olive")


def goodput(cv, ctx):
    tr, d = ctx.tr, ctx.d
    if tr.role == "receiver" and len(tr["write"]):
        events = tr["write"].present("bytes")
        what = "bytes written to the file"
    elif d.ack_off:
        size = tr.meta.get("file_size")
        events = series.delivered_events(d, size if isinstance(size, int) else d.data_end)
        what = "bytes acknowledged"
    else:
        return "no writes or ACKs to measure goodput from"
    if not events:
        return "no bytes delivered"
    start = min(d.t0, events[0][0])
    end = events[-1][0]
    width = ctx.bin_s or series.nice_bin(end - start)
    left, rates = series.binned_rate(events, start, end, width)
    ref = None
    if tr.role == "sender":
        ref = measures.transfer(tr, d.ack_t, d.ack_off, d.data_end).goodput_bps
    unit, div = rate_unit(max(rates + [ref or 0, ctx.link_rate_bps or 0]))
    fig, ax = cv.figure(ctx, f"Goodput: {what} per {series.bin_label(width)}", unit)
    ax.bar(ctx.rel(left), [r / div for r in rates], width=width, align="edge",
           color="tab:green", alpha=0.8, linewidth=0, label=f"{what}, per bin")
    tops = [r / div for r in rates]
    if ref:
        ax.axhline(ref / div, color="black", linestyle="--", linewidth=1,
                   label=f"goodput {rate(ref)} (file bytes / transfer time)")
        tops.append(ref / div)
    if ctx.link_rate_bps:
        ax.axhline(ctx.link_rate_bps / div, color="tab:red", linewidth=1.2, gid="limit",
                   label=f"link rate {rate(ctx.link_rate_bps)}")
        tops.append(ctx.link_rate_bps / div)
    fit_x(ax, min(0.0, ctx.rel([start])[0]), ctx.rel([left[-1] + width])[0])
    fit_y(ax, tops, pad=0.25)  # room for the legend above the lines
    ax.legend(loc="upper right", fontsize="small")
    return fig


def _steps(ctx, pts, div):
    return thin_step(ctx.rel([p[0] for p in pts]), [p[1] / div for p in pts])


def queue(cv, ctx):
    """Receiver: what its buffer holds (scaled to that) and the window it
    advertises (under its capacity, the limit), one above the other."""
    tr = ctx.tr
    q = sorted(tr["write"].present("queue") + tr["rwnd"].present("queue"))
    ooo = tr["rwnd"].present("ooo")
    win = tr["rwnd"].present("win")
    if not q:
        return "no write or rwnd events with a queue size"
    cap = tr.meta.get("capacity")
    cap = cap if isinstance(cap, (int, float)) and cap > 0 else None
    held = [v for _, v in q] + [v for _, v in ooo]
    unit, div = byte_unit(max(held))
    rows = 2 if win else 1
    fig, axes = cv.figure(ctx, "Receiver buffers", f"held ({unit})", size=(10, 7), rows=rows)
    ax = axes[0] if rows == 2 else axes
    ts, vs = _steps(ctx, q, div)
    ax.step(ts, vs, where="post", color="tab:blue", linewidth=1, label="writer queue")
    tops, xs = list(vs), list(ts)
    if ooo and any(v for _, v in ooo):
        ts, vs = _steps(ctx, ooo, div)
        ax.step(ts, vs, where="post", color="tab:orange", linewidth=1, label="held out of order")
        tops += vs
        xs += ts
    fit_y(ax, tops, pad=0.25)
    if cap is not None:
        top = ax.get_ylim()[1]
        if cap / div <= top:
            ax.axhline(cap / div, color="black", linestyle="--", gid="limit",
                       label=f"buffer ({human_bytes(cap)})")
            fit_y(ax, tops + [cap / div])
        else:
            ax.annotate(f"the limit, the buffer of {human_bytes(cap)}, is above this scale "
                        "(the window below is measured against it)", xy=(0.01, 0.97),
                        xycoords="axes fraction", va="top", fontsize="small")
    ax.legend(loc="upper right", fontsize="small")
    if rows == 2:
        wax = axes[1]
        wunit, wdiv = byte_unit(max([v for _, v in win] + [cap or 0]))
        ts, vs = _steps(ctx, win, wdiv)
        wax.step(ts, vs, where="post", color="goldenrod", linewidth=1.2,
                 label="advertised window")
        xs += ts
        wtops = list(vs)
        if cap is not None:
            wax.axhline(cap / wdiv, color="black", linestyle="--", gid="limit",
                        label=f"buffer ({human_bytes(cap)}): the window's limit")
            wtops.append(cap / wdiv)
        wax.set_ylabel(f"window ({wunit})")
        fit_y(wax, wtops)
        wax.legend(loc="lower right", fontsize="small")
    for a in axes if rows == 2 else [axes]:
        fit_x(a, min(0.0, min(xs)), max(xs))
    return fig


def emulator(cv, ctx):
    tr = ctx.tr
    drops = Counter(w or "?" for w in tr["drop"]["why"])
    bars = [("received", len(tr["recv"])), ("forwarded", len(tr["fwd"]))]
    bars += [(f"dropped: {k}", v) for k, v in sorted(drops.items())]
    bars += [("corrupted", len(tr["corrupt"])), ("duplicated", len(tr["dup"])),
             ("reordered", len(tr["reorder"]))]
    if not any(v for _, v in bars):
        return "no emulator events"
    delays = [v * 1000 for v in tr["fwd"]["delay"] if v is not None]
    fig = cv.Figure(figsize=(11 if delays else 9, 5), dpi=100)
    cv.Agg(fig)
    ax = fig.add_subplot(1, 2 if delays else 1, 1)
    colours = ["tab:blue", "tab:green"] + ["tab:red"] * len(drops) + \
        ["tab:purple", "tab:orange", "tab:brown"]
    rects = ax.bar(range(len(bars)), [b[1] for b in bars], color=colours)
    ax.bar_label(rects, fontsize="small")
    ax.set_xticks(range(len(bars)), [b[0] for b in bars], rotation=30, ha="right")
    ax.set_ylabel("datagrams")
    fit_y(ax, [b[1] for b in bars], pad=0.1)
    ax.set_title(f"What the link did — {tr.name}")
    if delays:
        ax2 = fig.add_subplot(1, 2, 2)
        ax2.hist(delays, bins=min(50, max(5, len(delays) // 20)), color="tab:blue",
                 label="forwarded datagrams")
        imp = tr.meta.get("impairments")
        floor = imp.get("delay") if isinstance(imp, dict) else None
        if isinstance(floor, (int, float)) and floor > 0:
            # no datagram leaves before the link's delay: the data's floor
            ax2.axvline(floor * 1000, color="black", linestyle="--", gid="limit",
                        label=f"the link's delay (-d {floor * 1000:g} ms)")
            fit_x(ax2, min(delays + [floor * 1000]), max(delays + [floor * 1000]))
            ax2.legend(loc="upper right", fontsize="small")
        ax2.set_xlabel("time each datagram was held (ms)")
        ax2.set_ylabel("datagrams")
        ax2.set_title("Delay of forwarded datagrams")
    return fig


def queue_limits(tr) -> dict[str, float]:
    """The emulator's queue limits from its meta line: bytes, packets."""
    imp = tr.meta.get("impairments") if isinstance(tr.meta.get("impairments"), dict) \
        else tr.meta
    out = {}
    for key, name in (("queue", "bytes"), ("queue_packets", "pkts")):
        v = imp.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0:
            out[name] = float(v)
    return out


def queue_series(tr):
    """(what, unit divisor name, [(t, value)]) of the emulator's queue on
    arrival: in packets when traced, else in bytes; None without either."""
    for key in ("qpkts", "qbytes"):
        pts = tr["recv"].present(key)
        if pts:
            return key, pts
    return None


def emuqueue(cv, ctx):
    tr = ctx.tr
    qs = queue_series(tr)
    if qs is None:
        return ("the emulator's trace has no queue length (qp/qb on its recv events: "
                "a link with -s)")
    key, pts = qs
    limits = queue_limits(tr)
    lim = limits.get("pkts" if key == "qpkts" else "bytes")
    if key == "qpkts":
        unit, div = "packets", 1.0
    else:
        unit, div = byte_unit(max([v for _, v in pts] + [lim or 0]))
    fig, ax = cv.figure(ctx, "Emulator queue on each arrival, and drops", f"queue ({unit})")
    ts, vs = _steps(ctx, pts, div)
    ax.step(ts, vs, where="post", color="tab:blue", linewidth=1, label="queue on arrival")
    tops, xs = list(vs), list(ts)
    if lim is not None:
        ax.axhline(lim / div, color="black", linestyle="--", gid="limit",
                   label=f"queue limit ({lim:g} packets)" if key == "qpkts"
                   else f"queue limit ({human_bytes(lim)})")
        tops.append(lim / div)
    drop = tr["drop"]
    by: dict[str, list] = {}
    for t, why, q in zip(drop.t, drop["why"], drop[key], strict=True):
        by.setdefault(why or "?", []).append((t, (q or 0) / div))
    for (why, p), colour in zip(sorted(by.items()), DROP_COLOURS * 4, strict=False):
        ax.scatter(ctx.rel([x[0] for x in p]), [x[1] for x in p], marker="x", s=30,
                   c=colour, zorder=4, label=f"drop: {why} ({len(p)})")
        tops += [x[1] for x in p]
        xs += ctx.rel([x[0] for x in p])
    fit_x(ax, min(0.0, min(xs)), max(xs))
    fit_y(ax, tops)
    ax.legend(loc="upper right", fontsize="small")
    return fig
