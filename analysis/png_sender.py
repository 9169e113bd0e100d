"""PNG plots of the sending side: time-sequence graph, RTT, bytes in flight.

Each function takes a :class:`plots.Canvas` and a :class:`plots.Context` and
returns a matplotlib Figure, or a string saying why it has nothing to draw.
"""

from __future__ import annotations

from . import series
from .pipe import cc_series, pipe_of, window_limit
from .plots import fit_x, fit_y, thin, thin_step
from .png_cc import WINDOW_SPAN
from .text import byte_unit, human_bytes

REXMIT_STYLE = {  # cause -> (colour, marker); causes not listed get brown
    "timeout": ("tab:red", "x"),
    "fast": ("tab:orange", "D"),
    "sack": ("tab:purple", "^"),
    "rack": ("tab:pink", "v"),
    "tlp": ("tab:cyan", "s"),
    "probe": ("tab:gray", "s"),
}
RECV_STYLE = {"new": ("tab:blue", None, "data received in order"),
              "ooo": ("tab:orange", "o", "data received out of order"),
              "dup": ("tab:red", "x", "duplicate data")}
#: On top of everything else, so that a band of resends never hides them.
TOP = 6


def _outline():
    from matplotlib import patheffects

    return [patheffects.withStroke(linewidth=3.2, foreground="white")]


def _segments(ax, ctx, segs, div, sender: bool) -> list[float]:
    groups: dict[str, list] = {}
    for t, off, ln, key, _ in segs:
        groups.setdefault(key or "new", []).append((t, off, ln))
    many = sum(len(v) for k, v in groups.items() if k != "new") > 2000
    tops = []
    for key in ["new"] + sorted(k for k in groups if k != "new"):
        pts = groups.get(key)
        if not pts:
            continue
        if sender:
            colour, marker = ("tab:blue", None) if key == "new" else \
                REXMIT_STYLE.get(key, ("tab:brown", "v"))
            label = "data sent" if key == "new" else f"retransmission ({key})"
        else:
            colour, marker, label = RECV_STYLE.get(key, ("tab:brown", "v", key))
            if key == "ooo" and str(ctx.tr.meta.get("mode")).lower() == "gbn":
                label += " (discarded: gbn)"
        ts, offs, lens = (list(x) for x in zip(*pts, strict=True))
        if key == "new" or not sender:  # resends are never thinned
            ts, offs, lens = thin(ts, offs, lens)
        lo = [o / div for o in offs]
        hi = [(o + n) / div for o, n in zip(offs, lens, strict=True)]
        tops.extend(hi)
        resend = sender and key != "new"
        ax.vlines(ctx.rel(ts), lo, hi, colors=colour, label=label, rasterized=True,
                  linewidth=0.7 if resend and many else 1.5,
                  alpha=0.45 if resend and many else 1.0,
                  # a few resends go over new data; a band of them (GBN) under
                  # it, so that new data's frontier still shows above the band
                  zorder=(1.5 if many else 3) if resend else 2)
        if marker and not many:
            ax.scatter(ctx.rel(ts), lo, s=14, c=colour, marker=marker, linewidths=1,
                       zorder=3, rasterized=True)
    return tops


def timeseq(cv, ctx):
    tr, d = ctx.tr, ctx.d
    segs = series.data_segments(tr, d)
    if not segs and not d.ack_off:
        return "no data segments or ACKs with stream offsets"
    sender = tr.role == "sender"
    edge = series.sender_edge(tr, d) if sender else series.receiver_edge(tr, d)
    peak = max([o + n for _, o, n, _, _ in segs] + d.ack_off + edge.edge)
    unit, div = byte_unit(peak)
    fig, ax = cv.figure(ctx, "Time-sequence graph", f"stream offset ({unit})")
    tops = _segments(ax, ctx, segs, div, sender)
    if sender:
        ts, lo, hi = series.sack_blocks(tr)
        if ts:
            ts, lo, hi = thin(ts, lo, hi)
            ax.vlines(ctx.rel(ts), [v / div for v in lo], [v / div for v in hi],
                      colors="tab:purple", alpha=0.3, linewidth=3, label="SACKed ranges",
                      rasterized=True, zorder=1)
    if d.ack_off:
        at, ao = thin_step(ctx.rel(d.ack_t), [max(o, 0) / div for o in d.ack_off])
        ax.step(at, ao, where="post", color="tab:green", linewidth=1.6, zorder=TOP,
                label="cumulative ACK", path_effects=_outline())
        tops.extend(ao)
    if edge.t:
        et, ev = thin_step(ctx.rel(edge.t), [e / div for e in edge.edge])
        ax.step(et, ev, where="post", color="black", linewidth=1.2, zorder=TOP,
                label="window limit (ACK + window + SACKed, up to the file's end)" if sender
                else "window limit (ACK + advertised window, up to the FIN)",
                path_effects=_outline(), gid="limit")
        tops.extend(ev)
    xs = [t for t, *_ in segs] + d.ack_t
    fit_x(ax, min(0.0, min(ctx.rel(xs))), max(ctx.rel(xs)))
    fit_y(ax, tops, bottom=0.0, pad=0.04)
    # the receiver's limit runs along the top from the start: its legend goes below
    ax.legend(loc="upper left" if sender else "lower right", fontsize="small")
    return fig


def rtt(cv, ctx):
    tr = ctx.tr
    samples = tr["rtt"].present("sample")
    srtt = tr["rtt"].present("srtt")
    rto = sorted(tr["rtt"].present("rto") + tr["rto"].present("rto"))
    if not (samples or srtt or rto):
        return "no rtt or rto events"
    fig, ax = cv.figure(ctx, "RTT samples, SRTT and RTO", "milliseconds (log scale)")
    ax.set_yscale("log")
    end = series.x_end(tr)
    values = []
    if samples:
        ts, vs = thin([p[0] for p in samples], [p[1] * 1000 for p in samples])
        few = len(samples) < 50
        ax.scatter(ctx.rel(ts), vs, s=36 if few else 5, c="tab:gray", alpha=0.9 if few else 0.6,
                   label=f"RTT sample ({len(samples)})", rasterized=True, zorder=3)
        values += vs
    if srtt:
        ts, vs = thin_step([p[0] for p in srtt] + [end], [p[1] * 1000 for p in srtt]
                           + [srtt[-1][1] * 1000])
        ax.step(ctx.rel(ts), vs, where="post", color="tab:blue", linewidth=1.3, label="SRTT")
        values += vs
    if rto:
        ts, vs = thin_step([p[0] for p in rto] + [end], [p[1] * 1000 for p in rto]
                           + [rto[-1][1] * 1000])
        ax.step(ctx.rel(ts), vs, where="post", color="tab:red", linewidth=1.3,
                label="RTO (the retransmission timer)", gid="limit")
        values += vs
    floor = tr.meta.get("min_rto")
    if isinstance(floor, (int, float)) and floor > 0:
        ax.axhline(floor * 1000, color="tab:red", linestyle=":", linewidth=1,
                   label=f"RTO floor ({floor * 1000:g} ms)")
        values.append(floor * 1000)
    to = tr["timeout"].present("rto")
    if to:
        ax.scatter(ctx.rel([p[0] for p in to]), [p[1] * 1000 for p in to], s=40, c="black",
                   marker="x", zorder=4, label="timer expired")
        values += [p[1] * 1000 for p in to]
    positive = [v for v in values if v and v > 0] or [1.0]
    # room above the highest line for the legend, which would hide the RTO
    ax.set_ylim(min(positive) / 1.6, max(positive) * 4)
    xs = [p[0] for p in samples + srtt + rto] + [end]
    fit_x(ax, min(0.0, min(ctx.rel(xs))), max(ctx.rel(xs)))
    ax.legend(loc="upper right", fontsize="small")
    return fig


def inflight(cv, ctx):
    tr, d = ctx.tr, ctx.d
    p = pipe_of(tr, d.origin)
    if not p.t:
        return "no data sent or ACKs to count the pipe from"
    lim = window_limit(tr)
    cc = cc_series(tr)
    peak = max(p.pipe + lim.limit + [v for _, vs in cc.values() for v in vs])
    unit, div = byte_unit(peak)
    fig, ax = cv.figure(ctx, "Bytes in flight (the pipe) and the window limit",
                        f"bytes in flight ({unit})")
    ts, vs = thin_step(ctx.rel(p.t), [v / div for v in p.pipe])
    ax.step(ts, vs, where="post", color="tab:blue", linewidth=1,
            label="pipe: sent, neither ACKed nor SACKed")
    tops = list(vs)
    end = series.x_end(tr)
    if lim.t:
        lt, lv = thin_step(ctx.rel(lim.t + [end]), [v / div for v in lim.limit + lim.limit[-1:]])
        ax.step(lt, lv, where="post", color="black", linewidth=1.4, gid="limit", zorder=3,
                label=f"window limit = {lim.what}")
        tops += lv
    title = f"the pipe, {p.source}"
    # WINDOW far above what was in flight (a congestion window far below
    # it) would flatten the plot: then the legend names it instead
    if lim.window is not None and lim.window <= WINDOW_SPAN * peak:
        ax.axhline(lim.window / div, color="tab:gray", linestyle="--", linewidth=0.9,
                   label=f"WINDOW ({human_bytes(lim.window)})")
        tops.append(lim.window / div)
    elif lim.window is not None:
        title += f"; WINDOW, {human_bytes(lim.window)}, is above this scale"
    for name, colour in (("cwnd", "tab:red"), ("ssthresh", "tab:purple")):
        if name in cc:
            ct, cvs = thin_step(ctx.rel(cc[name][0]), [v / div for v in cc[name][1]])
            ax.step(ct, cvs, where="post", color=colour, linewidth=1.1, label=name)
            tops += cvs
    fit_x(ax, min(0.0, min(ts)), max(ctx.rel([end]) + ts))
    fit_y(ax, tops, pad=0.45)  # room for the legend above the data
    ax.legend(loc="upper right", fontsize="small", title=title, title_fontsize="x-small")
    return fig
