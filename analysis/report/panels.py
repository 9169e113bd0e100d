"""The report's sender panels, drawn with bokeh: time-sequence graph, the
pipe against the window, RTT.

Each function returns ``(figure, None)`` or ``(None, why it is left out)``.
Every figure shares one x range (seconds since the run's time zero), so
zooming or panning one moves them all.  Hover tools show a segment's or a
sample's fields.
"""

from __future__ import annotations

import numpy as np

from .. import series
from ..pipe import cc_series, pipe_of, window_limit
from ..png_cc import WINDOW_SPAN
from ..png_sender import REXMIT_STYLE
from ..text import byte_unit, human_bytes
from . import decimate as dm

TOOLS = "xpan,xwheel_zoom,box_zoom,reset,save"
HEIGHT = 330


def f32(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float32)


def i64(values) -> np.ndarray:
    return np.asarray(values, dtype=np.int64)


def new_figure(ctx, panel_id: str, title: str, ylabel: str, **kw):
    from bokeh.plotting import figure

    fig = figure(title=title, x_range=ctx.x_range, height=HEIGHT, sizing_mode="stretch_width",
                 tools=TOOLS, active_scroll="xwheel_zoom", name=panel_id,
                 output_backend="canvas", **kw)
    fig.xaxis.axis_label = ctx.xlabel
    fig.yaxis.axis_label = ylabel
    fig.toolbar.logo = None
    return fig


def finish(fig) -> None:
    fig.legend.location = "top_left"
    fig.legend.click_policy = "hide"
    fig.legend.label_text_font_size = "8pt"
    fig.legend.background_fill_alpha = 0.7


def add_hover(fig, renderers, fields):
    from bokeh.models import HoverTool

    fig.add_tools(HoverTool(renderers=renderers, tooltips=fields))


def step(fig, ctx, ts, ys, div, limit, **kw):
    ts, ys = dm.steps(ctx.rel(ts), [y / div for y in ys], limit)
    if ts:
        fig.step(f32(ts), f32(ys), mode="after", **kw)
    return ys


def _sent(fig, ctx, segs, div, limit):
    ts = [s[0] for s in segs]
    lo = [s[1] for s in segs]
    hi = [s[1] + s[2] for s in segs]
    t, a, b, n = dm.bars(ctx.rel(ts), lo, hi, limit)
    if not t:
        return
    src = {"t": f32(t), "y0": f32([v / div for v in a]), "y1": f32([v / div for v in b]),
           "lo": i64(a), "hi": i64(b), "n": i64(n)}
    fig.segment("t", "y0", "t", "y1", source=src, color="#1f77b4", line_width=1.5,
                legend_label="data sent")
    r = fig.scatter("t", "y1", source=src, size=3, color="#1f77b4", alpha=0.5)
    add_hover(fig, [r], [("sent at", "@t{0.000000} s"), ("offsets", "@lo to @hi"),
                         ("segments in this bar", "@n")])


def _resends(fig, ctx, segs, tr, div, extent):
    send = tr["send"]
    by: dict[str, list] = {}
    for s in segs:
        by.setdefault(s[3], []).append(s)
    renderers = []
    for cause in sorted(by):
        rows = by[cause]
        ts = ctx.rel([r[0] for r in rows])
        keep, count = dm.marks(ts, [r[1] / div for r in rows], extent)
        rows = [rows[i] for i in keep]
        colour = REXMIT_STYLE.get(cause, ("tab:brown", "v"))[0].replace("tab:", "")
        idx = [r[4] for r in rows]
        src = {"t": f32([ts[i] for i in keep]),
               "y0": f32([r[1] / div for r in rows]),
               "y1": f32([(r[1] + r[2]) / div for r in rows]),
               "off": i64([r[1] for r in rows]), "len": i64([r[2] for r in rows]),
               "seq": i64([send["seq"][i] or 0 for i in idx]),
               "ack": i64([send["ack"][i] or 0 for i in idx]),
               "win": i64([send["win"][i] or 0 for i in idx]), "n": i64(count)}
        label = f"retransmission ({cause}): {len(by[cause])}"
        fig.segment("t", "y0", "t", "y1", source=src, color=colour, line_width=2,
                    legend_label=label)
        renderers.append(fig.scatter("t", "y0", source=src, size=6, color=colour,
                                     marker="triangle", legend_label=label))
    if renderers:
        add_hover(fig, renderers, [("resent at", "@t{0.000000} s"), ("seq", "@seq"),
                                   ("offset", "@off"), ("len", "@len"), ("ack", "@ack"),
                                   ("win", "@win"), ("merged marks", "@n")])


def timeseq(ctx, tr, d, suffix=""):
    segs = series.data_segments(tr, d)
    if not segs and not d.ack_off:
        return None, f"{tr.name}: no data segments or ACKs with stream offsets"
    edge = series.sender_edge(tr, d)
    peak = max([o + n for _, o, n, _, _ in segs] + d.ack_off + edge.edge + [1])
    unit, div = byte_unit(peak)
    fig = new_figure(ctx, "panel-timeseq" + suffix,
                     f"Time-sequence graph{ctx.flow_label(tr)}", f"stream offset ({unit})")
    lim = dm.budget(4)
    new = [s for s in segs if not s[3]]
    _sent(fig, ctx, new, div, lim)
    ts, lo, hi = series.sack_blocks(tr)
    if ts:
        t, a, b, _ = dm.bars(ctx.rel(ts), lo, hi, lim)
        fig.segment(f32(t), f32([v / div for v in a]), f32(t), f32([v / div for v in b]),
                    color="purple", alpha=0.3, line_width=4, legend_label="SACKed ranges")
    extent = (ctx.x_range.start, ctx.x_range.end, 0.0, peak / div)
    _resends(fig, ctx, [s for s in segs if s[3]], tr, div, extent)
    if d.ack_off:
        step(fig, ctx, d.ack_t, [max(o, 0) for o in d.ack_off], div, lim, color="green",
             line_width=2, legend_label="cumulative ACK")
    if edge.t:
        step(fig, ctx, edge.t, edge.edge, div, lim, color="black", line_width=1.5,
             legend_label="window limit (ACK + window + SACKed, up to the file's end)")
    fig.y_range.start = 0
    finish(fig)
    return fig, None


def inflight(ctx, tr, d, suffix=""):
    p = pipe_of(tr, d.origin)
    if not p.t:
        return None, f"{tr.name}: no data sent or ACKs to count the pipe from"
    lim = window_limit(tr)
    cc = cc_series(tr)
    peak = max(p.pipe + lim.limit + [v for _, vs in cc.values() for v in vs] + [1])
    unit, div = byte_unit(peak)
    fig = new_figure(ctx, "panel-inflight" + suffix,
                     f"Bytes in flight (the pipe) and the window limit{ctx.flow_label(tr)}",
                     f"bytes ({unit})")
    n = dm.budget(2 + len(cc))
    step(fig, ctx, p.t, p.pipe, div, n, color="#1f77b4", line_width=1.2,
         legend_label=f"pipe: sent, neither ACKed nor SACKed ({p.source})")
    end = series.x_end(tr)
    if lim.t:
        step(fig, ctx, lim.t + [end], lim.limit + lim.limit[-1:], div, n, color="black",
             line_width=1.8, legend_label=f"window limit = {lim.what}")
    if lim.window is not None and lim.window <= WINDOW_SPAN * peak:
        from bokeh.models import Span

        fig.add_layout(Span(location=lim.window / div, dimension="width", line_color="gray",
                            line_dash="dashed"))
        fig.line([0], [lim.window / div], color="gray", line_dash="dashed",
                 legend_label=f"WINDOW ({human_bytes(lim.window)})")
    elif lim.window is not None:  # far above the data (a small cwnd): named, not drawn
        fig.line([], [], color="gray", line_dash="dashed",
                 legend_label=f"WINDOW, {human_bytes(lim.window)}, is above this scale")
    for name, colour in (("cwnd", "red"), ("ssthresh", "purple")):
        if name in cc:
            step(fig, ctx, cc[name][0], cc[name][1], div, n, color=colour, line_width=1.3,
                 legend_label=name)
    fig.y_range.start = 0
    finish(fig)
    return fig, None


def rtt(ctx, tr, d, suffix=""):
    from bokeh.models import Span

    samples = tr["rtt"].present("sample")
    srtt = tr["rtt"].present("srtt")
    rto = sorted(tr["rtt"].present("rto") + tr["rto"].present("rto"))
    if not (samples or srtt or rto):
        return None, f"{tr.name}: no rtt or rto events (no RTT was measured)"
    fig = new_figure(ctx, "panel-rtt" + suffix, f"RTT samples, SRTT and RTO{ctx.flow_label(tr)}",
                     "milliseconds (log scale)", y_axis_type="log")
    end = series.x_end(tr)
    n = dm.budget(3)
    if samples:
        ts, vs = dm.steps(ctx.rel([p[0] for p in samples]), [p[1] * 1000 for p in samples], n)
        r = fig.scatter(f32(ts), f32(vs), size=7 if len(samples) < 50 else 3, color="gray",
                        legend_label=f"RTT sample ({len(samples)})")
        add_hover(fig, [r], [("at", "@x{0.000000} s"), ("RTT", "@y{0.000} ms")])
    if srtt:
        step(fig, ctx, [p[0] for p in srtt] + [end], [p[1] for p in srtt] + [srtt[-1][1]],
             1e-3, n, color="#1f77b4", line_width=1.5, legend_label="SRTT")
    if rto:
        step(fig, ctx, [p[0] for p in rto] + [end], [p[1] for p in rto] + [rto[-1][1]],
             1e-3, n, color="red", line_width=1.5, legend_label="RTO (the retransmission timer)")
    floor = tr.meta.get("min_rto")
    if isinstance(floor, (int, float)) and floor > 0:
        fig.add_layout(Span(location=floor * 1000, dimension="width", line_color="red",
                            line_dash="dotted"))
        fig.line([0], [floor * 1000], color="red", line_dash="dotted",
                 legend_label=f"RTO floor ({floor * 1000:g} ms)")
    to = tr["timeout"].present("rto")
    if to:
        fig.scatter(f32(ctx.rel([p[0] for p in to])), f32([p[1] * 1000 for p in to]),
                    marker="x", size=10, color="black", legend_label=f"timer expired ({len(to)})")
    finish(fig)
    fig.legend.location = "top_right"
    return fig, None
