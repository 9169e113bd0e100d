"""The report's other panels: the emulator's queue and drops, the
receiver's buffers and advertised window, goodput per flow.

Each function returns ``(figure, None)`` or ``(None, why it is left out)``.
"""

from __future__ import annotations

from collections import Counter

from .. import measures, series
from ..png_other import queue_limits, queue_series
from ..text import byte_unit, human_bytes, rate, rate_unit
from . import decimate as dm
from .panels import add_hover, f32, finish, new_figure, step

DROP_COLOURS = ("red", "black", "purple", "brown", "magenta", "olive", "orange")


def _limit_line(fig, value, label, colour="black", dash="dashed", y_range_name="default"):
    from bokeh.models import Span

    fig.add_layout(Span(location=value, dimension="width", line_color=colour, line_dash=dash,
                        y_range_name=y_range_name))
    fig.line([0], [value], color=colour, line_dash=dash, legend_label=label,
             y_range_name=y_range_name)


def emulator_drops(ctx, tr, suffix=""):
    """Drops by cause over time, counted up; the queue too when traced."""
    drop = tr["drop"]
    if not len(drop):
        return None, f"{tr.name}: the emulator dropped nothing"
    qs = queue_series(tr)
    by: dict[str, list[float]] = {}
    for t, why in zip(drop.t, drop["why"], strict=True):
        by.setdefault(why or "?", []).append(t)
    title = f"What the link ({tr.name}) dropped, by cause"
    if qs is not None:
        return _emulator_queue(ctx, tr, qs, by, suffix)
    fig = new_figure(ctx, "panel-emulator" + suffix, title, "datagrams dropped so far")
    n = dm.budget(len(by))
    rs = []
    for (why, ts), colour in zip(sorted(by.items()), DROP_COLOURS * 4, strict=False):
        ts_rel = ctx.rel(ts)
        keep, count = dm.marks(ts_rel, list(range(1, len(ts) + 1)),
                               (ctx.x_range.start, ctx.x_range.end, 0, len(ts)))
        step(fig, ctx, ts, list(range(1, len(ts) + 1)), 1.0, n, color=colour, line_width=1.2,
             legend_label=f"{why}: {len(ts)}")
        rs.append(fig.scatter(f32([ts_rel[i] for i in keep]), f32([i + 1 for i in keep]),
                              size=4, color=colour))
    add_hover(fig, rs, [("dropped at", "@x{0.000000} s"), ("drops so far", "@y")])
    fig.y_range.start = 0
    finish(fig)
    return fig, None


def _emulator_queue(ctx, tr, qs, by, suffix):
    key, pts = qs
    lim = queue_limits(tr).get("pkts" if key == "qpkts" else "bytes")
    unit, div = ("packets", 1.0) if key == "qpkts" else \
        byte_unit(max([v for _, v in pts] + [lim or 0]))
    fig = new_figure(ctx, "panel-emulator" + suffix,
                     f"The link's queue ({tr.name}) on each arrival, and its drops by cause",
                     f"queue ({unit})")
    step(fig, ctx, [p[0] for p in pts], [p[1] for p in pts], div, dm.budget(1),
         color="#1f77b4", line_width=1.2, legend_label="queue on arrival")
    if lim is not None:
        _limit_line(fig, lim / div, f"queue limit ({lim:g} packets)" if key == "qpkts"
                    else f"queue limit ({human_bytes(lim)})")
    drop = tr["drop"]
    q_at = {}
    for why, q in zip(drop["why"], drop[key], strict=True):
        q_at.setdefault(why or "?", []).append((q or 0) / div)
    rs = []
    for (why, ts), colour in zip(sorted(by.items()), DROP_COLOURS * 4, strict=False):
        ts_rel = ctx.rel(ts)
        ys = q_at[why]
        keep, count = dm.marks(ts_rel, ys, (ctx.x_range.start, ctx.x_range.end, 0,
                                            max(ys + [1])))
        rs.append(fig.scatter(f32([ts_rel[i] for i in keep]), f32([ys[i] for i in keep]),
                              marker="x", size=8, color=colour,
                              legend_label=f"drop: {why} ({len(ts)})"))
    add_hover(fig, rs, [("dropped at", "@x{0.000000} s"), ("queue", "@y")])
    fig.y_range.start = 0
    finish(fig)
    return fig, None


def receiver_buffers(ctx, tr, suffix=""):
    from bokeh.models import LinearAxis, Range1d

    q = sorted(tr["write"].present("queue") + tr["rwnd"].present("queue"))
    ooo = tr["rwnd"].present("ooo")
    win = tr["rwnd"].present("win")
    if not q and not win:
        return None, f"{tr.name}: no write or rwnd events (writer queue, advertised window)"
    held = [v for _, v in q] + [v for _, v in ooo] + [1]
    unit, div = byte_unit(max(held))
    fig = new_figure(ctx, "panel-receiver" + suffix,
                     f"Receiver: writer queue, data held out of order (left axis), "
                     f"advertised window (right axis){ctx.flow_label(tr)}", f"held ({unit})")
    n = dm.budget(3)
    step(fig, ctx, [p[0] for p in q], [p[1] for p in q], div, n, color="#1f77b4",
         line_width=1.2, legend_label="writer queue")
    if any(v for _, v in ooo):
        step(fig, ctx, [p[0] for p in ooo], [p[1] for p in ooo], div, n, color="orange",
             line_width=1.2, legend_label="held out of order")
    fig.y_range.start = 0
    cap = tr.meta.get("capacity")
    cap = cap if isinstance(cap, (int, float)) and cap > 0 else None
    if win:
        wunit, wdiv = byte_unit(max([v for _, v in win] + [cap or 0]))
        top = max([v for _, v in win] + [cap or 0]) / wdiv * 1.05
        fig.extra_y_ranges = {"win": Range1d(0, top)}
        fig.add_layout(LinearAxis(y_range_name="win", axis_label=f"window ({wunit})"), "right")
        ts, ys = dm.steps(ctx.rel([p[0] for p in win]), [p[1] / wdiv for p in win], n)
        fig.step(f32(ts), f32(ys), mode="after", color="goldenrod", line_width=1.5,
                 y_range_name="win", legend_label="advertised window (right axis)")
        if cap is not None:
            _limit_line(fig, cap / wdiv, f"buffer {human_bytes(cap)}: the window's limit "
                        "(right axis)", y_range_name="win")
    finish(fig)
    return fig, None


def goodput(ctx, flows, link_rate_bps=None):
    """Bytes acknowledged per bin, one line per sender, and each one's goodput."""
    lines = []
    for tr, d in flows:
        size = tr.meta.get("file_size")
        ev = series.delivered_events(d, size if isinstance(size, int) else d.data_end)
        if ev:
            lines.append((tr, d, ev))
    if not lines:
        return None, "no bytes were acknowledged: no goodput to draw"
    start = ctx.zero
    end = max(ev[-1][0] for _, _, ev in lines)
    width = ctx.bin_s or series.nice_bin(end - start)
    rates, refs = [], []
    for tr, d, ev in lines:
        left, r = series.binned_rate(ev, start, end, width)
        ref = measures.transfer(tr, d.ack_t, d.ack_off, d.data_end).goodput_bps
        rates.append((tr, left, r))
        refs.append(ref)
    peak = max([max(r) for _, _, r in rates] + [link_rate_bps or 0])
    unit, div = rate_unit(peak)
    many = len(lines) > 1
    fig = new_figure(ctx, "panel-goodput", ("Goodput per flow" if many else "Goodput")
                     + f": bytes acknowledged per {series.bin_label(width)}", unit)
    palette = ("green", "#1f77b4", "orange", "purple", "red", "brown", "olive", "teal")
    for (tr, left, r), ref, colour in zip(rates, refs, palette * 8, strict=False):
        name = tr.name if many else "bytes acknowledged"
        xs = ctx.rel(left + [left[-1] + width])
        fig.step(f32(xs), f32([v / div for v in r] + [r[-1] / div]), mode="after",
                 color=colour, line_width=1.6, legend_label=f"{name}, per bin")
        if ref:
            _limit_line(fig, ref / div, f"{tr.name}: goodput {rate(ref)} (file bytes / "
                        "transfer time)", colour=colour, dash="dotted")
    if link_rate_bps:
        _limit_line(fig, link_rate_bps / div, f"link rate {rate(link_rate_bps)}", colour="red")
    fig.y_range.start = 0
    finish(fig)
    fig.legend.location = "top_right"
    return fig, None


def drop_causes(tr) -> dict[str, int]:
    return dict(sorted(Counter(w or "?" for w in tr["drop"]["why"]).items()))
