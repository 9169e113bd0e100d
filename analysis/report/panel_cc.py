"""The report's congestion-control panels: cwnd, ssthresh and the pipe with
the controller's states shaded (a sender with --cc newreno or cubic); each
forwarded datagram's sojourn time in the emulator's queue, its drops and
the delay limits (a link with -s).  The same measures as analysis/png_cc.py.

Each function returns ``(figure, None)`` or ``(None, why it is left out)``.
"""

from __future__ import annotations

from .. import series
from ..png_cc import STATE_SHADE, _full_queue_delay, _states, controlled, cwnd_series
from ..text import human_bytes
from . import decimate as dm
from .panels import add_hover, f32, finish, new_figure, step
from .panels_more import _limit_line

DROP_COLOURS = {"queue": "black", "codel": "red", "red": "purple"}


def has_cc(tr) -> bool:
    """Whether the sender ran congestion control (its trace says which)."""
    return tr.meta.get("cc") not in (None, "none") and len(tr["cwnd"]) > 0


def cwnd(ctx, tr, suffix=""):
    from bokeh.models import BoxAnnotation

    ev = tr["cwnd"]
    s = cwnd_series(tr)
    if s is None or not controlled(ev):
        return None, f"{tr.name}: no congestion control (--cc none)"
    pts, pipe, ssth, window, show_window, unit, div = s
    title = f"Congestion window ({tr.meta.get('cc')}): cwnd, ssthresh, pipe{ctx.flow_label(tr)}"
    if window is not None and not show_window:
        title += f"; WINDOW {human_bytes(window)} is above this scale"
    fig = new_figure(ctx, "panel-cwnd" + suffix, title, f"bytes ({unit})")
    end = series.x_end(tr)
    for st, a, b in _states(ctx, ev, end):
        if st in STATE_SHADE:
            colour, alpha, _ = STATE_SHADE[st]
            fig.add_layout(BoxAnnotation(left=a, right=b, fill_color=colour.replace("tab:", ""),
                                         fill_alpha=alpha, line_alpha=0))
    n = dm.budget(3)
    for what, data, colour in (("pipe (bytes in flight)", pipe, "#1f77b4"),
                               ("cwnd", pts, "red"), ("ssthresh", ssth, "purple")):
        if data:
            step(fig, ctx, [p[0] for p in data] + [end], [p[1] for p in data] + [data[-1][1]],
                 div, n, color=colour, line_width=1.5, legend_label=what)
    if show_window:
        _limit_line(fig, window / div, f"WINDOW, the cap ({human_bytes(window)})", dash="solid")
    fig.line([0], [0], color="orange", alpha=0.4, line_width=8,
             legend_label="shaded: slow start (green), recovery (orange), after an RTO (red)")
    fig.y_range.start = 0
    finish(fig)
    return fig, None


def sojourn(ctx, tr, suffix=""):
    fwd = tr["fwd"]
    pts = fwd.present("sojourn")
    if not pts or not any(v for _, v in pts):
        return None, f"{tr.name}: no sojourn times (a link without -s)"
    fig = new_figure(ctx, "panel-sojourn" + suffix,
                     f"Sojourn time in the queue of {tr.name}, and its drops", "milliseconds")
    ts, vs = dm.steps(ctx.rel([p[0] for p in pts]), [p[1] * 1000 for p in pts], dm.budget(2))
    r = fig.scatter(f32(ts), f32(vs), size=2, color="#1f77b4",
                    legend_label="forwarded: arrival to the link")
    rs = [r]
    drop = tr["drop"]
    by: dict[str, list] = {}
    for t, why, s in zip(drop.t, drop["why"], drop["sojourn"], strict=True):
        by.setdefault(why or "?", []).append((t, (s or 0.0) * 1000))
    for why, p in sorted(by.items()):
        rs.append(fig.scatter(f32(ctx.rel([x[0] for x in p])), f32([x[1] for x in p]),
                              marker="x", size=8, color=DROP_COLOURS.get(why, "olive"),
                              legend_label=f"drop: {why} ({len(p)})"))
    imp = tr.meta.get("impairments")
    imp = imp if isinstance(imp, dict) else {}
    if imp.get("aqm") == "codel" and isinstance(imp.get("codel_target"), (int, float)):
        _limit_line(fig, imp["codel_target"] * 1000,
                    f"CoDel target ({imp['codel_target'] * 1000:g} ms)", colour="red")
    full, what = _full_queue_delay(tr, [v for v in fwd["len"] if v])
    if full is not None:
        _limit_line(fig, full * 1000, f"a full queue ({what}): {full * 1000:.1f} ms")
    add_hover(fig, rs, [("at", "@x{0.000000} s"), ("sojourn", "@y{0.000} ms")])
    fig.y_range.start = 0
    finish(fig)
    return fig, None
