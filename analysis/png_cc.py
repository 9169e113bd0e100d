"""PNG plots of congestion control and the bottleneck it meets: the sender's
cwnd, ssthresh and pipe over time with its states shaded and WINDOW drawn;
the emulator's sojourn times with its drops by cause and the delay its
queue (or CoDel's target) bounds.  On the sender trace's time axis, as
every plot (:mod:`analysis.plots`)."""

from __future__ import annotations

from typing import NamedTuple

from . import series
from .plots import fit_x, fit_y, thin, thin_step
from .text import byte_unit, human_bytes

#: Shading of the controller's states (slow start, recovery, loss after an RTO).
STATE_SHADE = {"slow_start": ("tab:green", 0.08, "slow start"),
               "recovery": ("tab:orange", 0.18, "loss recovery"),
               "loss": ("tab:red", 0.18, "after an RTO")}
#: WINDOW is drawn as a line when it is within this multiple of the data's
#: peak; far above it would flatten the sawtooth, and the legend names it.
WINDOW_SPAN = 2.5
DROP_STYLE = {"queue": ("black", "x"), "codel": ("tab:red", "v"), "red": ("tab:purple", "v"),
              "loss": ("tab:gray", "."), "burst": ("tab:brown", ".")}


def _states(ctx, ev, end: float) -> list[tuple[str, float, float]]:
    """(state, start, end) intervals from the cwnd events, relative times."""
    out: list[tuple[str, float, float]] = []
    for t, st in zip(ev.t, ev["state"], strict=True):
        if st is None:
            continue
        if out and out[-1][0] == st:
            continue
        if out:
            out[-1] = (out[-1][0], out[-1][1], t)
        out.append((st, t, end))
    return [(s, *ctx.rel([a, b])) for s, a, b in out]


class CwndSeries(NamedTuple):
    """What both cwnd plots (this PNG and the report's panel) draw: (time,
    bytes) points of cwnd, the pipe and ssthresh; WINDOW, the cap, and whether
    it is within the scale; the byte unit that fits and its divisor."""

    cwnd: list
    pipe: list
    ssthresh: list
    window: float | None
    show_window: bool
    unit: str
    div: float


def cwnd_series(tr) -> CwndSeries | None:
    """The sender trace's cwnd series, or None without cwnd events.  The
    pipe is the ``inflight`` events' where the trace has them; an ssthresh
    of 2^40 or more is the controller's "not yet set", left out."""
    ev = tr["cwnd"]
    pts = ev.present("cwnd")
    if not pts:
        return None
    pipe = tr["inflight"].present("pipe") or ev.present("pipe")
    ssth = [p for p in ev.present("ssthresh") if p[1] < 1 << 40]
    w = tr.meta.get("window")
    window = float(w) if isinstance(w, (int, float)) and not isinstance(w, bool) else None
    peak = max(v for _, v in pts + pipe + ssth)
    show_window = window is not None and window <= WINDOW_SPAN * peak
    unit, div = byte_unit(max(peak, window if show_window else 0))
    return CwndSeries(pts, pipe, ssth, window, show_window, unit, div)


def controlled(ev) -> bool:
    """Whether the cwnd events show a controller at work (not --cc none's
    fixed window)."""
    return not {s for s in ev["state"] if s} <= {"fixed"}


def cwnd(cv, ctx):
    tr = ctx.tr
    ev = tr["cwnd"]
    s = cwnd_series(tr)
    if s is None:
        return "no cwnd events (a sender with --cc newreno or cubic traces them)"
    if not controlled(ev):
        return "no congestion control (--cc none): the window is WINDOW throughout"
    pts, pipe, ssth, window, show_window, unit, div = s
    name = tr.meta.get("cc") or "congestion control"
    fig, ax = cv.figure(ctx, f"Congestion window ({name}): cwnd, ssthresh and the pipe",
                        f"bytes ({unit})")
    end = series.x_end(tr)
    tops, xs = [], []
    shaded = set()
    for st, a, b in _states(ctx, ev, end):
        if st in STATE_SHADE:
            colour, alpha, label = STATE_SHADE[st]
            ax.axvspan(a, b, color=colour, alpha=alpha, linewidth=0,
                       label=None if st in shaded else label)
            shaded.add(st)
    for what, data, colour, width in (("pipe (bytes in flight)", pipe, "tab:blue", 0.8),
                                      ("cwnd", pts, "tab:red", 1.4),
                                      ("ssthresh", ssth, "tab:purple", 1.1)):
        if not data:
            continue
        ts = ctx.rel([p[0] for p in data] + [end])
        vs = [p[1] / div for p in data]
        ts, vs = thin_step(ts, vs + vs[-1:])
        ax.step(ts, vs, where="post", color=colour, linewidth=width, label=what,
                linestyle="--" if what == "ssthresh" else "-")
        tops += vs
        xs += ts
    title = None
    if show_window:
        ax.axhline(window / div, color="black", linewidth=1.2, gid="limit",
                   label=f"WINDOW, the cap ({human_bytes(window)})")
        tops.append(window / div)
    elif window is not None:
        title = f"WINDOW, the cap: {human_bytes(window)} (above this scale)"
    fit_x(ax, min(0.0, min(xs)), max(xs))
    fit_y(ax, tops, pad=0.35)
    ax.legend(loc="upper right", fontsize="small", ncol=2, title=title,
              title_fontsize="x-small")
    return fig


def _full_queue_delay(tr, fwd_lens) -> tuple[float | None, str]:
    """The longest a datagram can wait in a full tail-drop queue, in seconds:
    the queue's limit over the link rate (a packet limit counts datagrams of
    the largest size forwarded)."""
    imp = tr.meta.get("impairments")
    imp = imp if isinstance(imp, dict) else {}
    rate = imp.get("rate")
    if not isinstance(rate, (int, float)) or not rate:
        return None, ""
    qb, qp = imp.get("queue"), imp.get("queue_packets")
    limits = []
    if isinstance(qb, (int, float)) and qb > 0:
        limits.append((qb * 8 / rate, f"{human_bytes(qb)}"))
    if isinstance(qp, (int, float)) and qp > 0 and fwd_lens:
        limits.append((qp * max(fwd_lens) * 8 / rate, f"{qp:g} packets"))
    if not limits:
        return None, ""
    return min(limits)


def sojourn(cv, ctx):
    tr = ctx.tr
    fwd = tr["fwd"]
    pts = fwd.present("sojourn")
    if not pts or not any(v for _, v in pts):
        return "no sojourn times (the emulator's fwd events carry them with -s)"
    fig, ax = cv.figure(ctx, "Emulator queue: each datagram's sojourn time, and drops",
                        "sojourn time (ms)")
    ts, vs = thin(ctx.rel([p[0] for p in pts]), [p[1] * 1000 for p in pts])
    ax.scatter(ts, vs, s=3, c="tab:blue", linewidths=0, rasterized=True,
               label="forwarded: time from arrival to the link")
    tops, xs = list(vs), list(ts)
    drop = tr["drop"]
    by: dict[str, list] = {}
    for t, why, s in zip(drop.t, drop["why"], drop["sojourn"], strict=True):
        by.setdefault(why or "?", []).append((t, (s or 0.0) * 1000))
    for why, p in sorted(by.items()):
        colour, marker = DROP_STYLE.get(why, ("tab:olive", "x"))
        dx = ctx.rel([x[0] for x in p])
        ax.scatter(dx, [x[1] for x in p], marker=marker, s=28, c=colour, zorder=4,
                   label=f"drop: {why} ({len(p)})" + ("" if why in ("codel",) else
                                                        ", at arrival"))
        tops += [x[1] for x in p]
        xs += dx
    imp = tr.meta.get("impairments")
    imp = imp if isinstance(imp, dict) else {}
    if imp.get("aqm") == "codel" and isinstance(imp.get("codel_target"), (int, float)):
        target = imp["codel_target"] * 1000
        ax.axhline(target, color="tab:red", linestyle="--", linewidth=1.1, gid="limit",
                   label=f"CoDel target ({target:g} ms)")
        tops.append(target)
    full, what = _full_queue_delay(tr, [v for v in fwd["len"] if v])
    if full is not None:
        ax.axhline(full * 1000, color="black", linewidth=1.1, gid="limit",
                   label=f"a full queue ({what}) at the link rate: {full * 1000:.1f} ms")
        tops.append(full * 1000)
    fit_x(ax, min(0.0, min(xs)), max(xs))
    fit_y(ax, tops, pad=0.3)
    ax.legend(loc="upper right", fontsize="small")
    return fig
