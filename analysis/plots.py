"""PNG plots of one trace, drawn with matplotlib's Agg canvas.

matplotlib is imported inside :class:`Canvas` only, and figures are made with
``matplotlib.figure.Figure`` on a ``FigureCanvasAgg``: no pyplot state, so
importing ``analysis`` never loads matplotlib and plotting works without a
display and from any thread.

Every plot is a measurement (docs/MEASURES.md): its x-axis is seconds since
the run's time zero (the sender's first SYN; a trace alone uses its own
zero, and the label says which), its y-axis in units people read (KiB, MiB,
ms, Mbit/s), its ranges contain its data, and it draws the limit its data is
held under.  A plot whose events are missing is skipped with a note, never
an exception.  Big traces are thinned to at most ``MAX_POINTS`` points per
series (retransmissions are never thinned).

The drawing functions live in ``png_sender.py``, ``png_cc.py`` and ``png_other.py``;
:func:`draw` returns the figure (the tests read its axes), :func:`make_plots`
saves them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .derive import Derived, derive
from .load import Trace

MAX_POINTS = 150_000


def thin(*series, limit=MAX_POINTS):
    """Every k-th point of parallel lists, so at most ``limit`` remain."""
    n = len(series[0])
    if n <= limit:
        return series
    k = -(-n // limit)
    return tuple(s[::k] for s in series)


def thin_step(ts, ys, limit=MAX_POINTS):
    """Thin a step series keeping each bucket's last value."""
    n = len(ts)
    if n <= limit:
        return ts, ys
    k = -(-n // limit)
    idx = list(range(k - 1, n, k))
    if idx[-1] != n - 1:
        idx.append(n - 1)
    return [ts[i] for i in idx], [ys[i] for i in idx]


@dataclass
class Context:
    """What a plot needs beside its trace."""

    tr: Trace
    d: Derived
    zero_what: str = ""  # "the sender's first SYN", ...
    bin_s: float | None = None
    link_rate_bps: float | None = None  # the emulator's -s, when set

    def rel(self, ts):
        t0 = self.d.t0
        return [t - t0 for t in ts]

    @property
    def xlabel(self) -> str:
        return f"time since {self.zero_what or 'the trace began'} (s)"


class Canvas:
    """Makes figures on the Agg canvas."""

    def __init__(self):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        self.Figure, self.Agg = Figure, FigureCanvasAgg

    def figure(self, ctx: Context, title: str, ylabel: str, size=(10, 5.5), rows=1):
        fig = self.Figure(figsize=size, dpi=100)
        self.Agg(fig)
        axes = [fig.add_subplot(rows, 1, i + 1) for i in range(rows)]
        for i, ax in enumerate(axes):
            ax.grid(True, alpha=0.3)
            if i == rows - 1:
                ax.set_xlabel(ctx.xlabel)
        axes[0].set_title(f"{title} — {ctx.tr.name}")
        axes[0].set_ylabel(ylabel)
        return fig, (axes[0] if rows == 1 else axes)


def fit_y(ax, values, bottom=0.0, pad=0.08):
    """y-range from ``bottom`` to the largest value plus a margin."""
    top = max([v for v in values if v is not None] or [1.0])
    if top <= bottom:
        top = bottom + 1.0
    ax.set_ylim(bottom, top + (top - bottom) * pad)


def fit_x(ax, lo, hi):
    if hi <= lo:
        hi = lo + 1e-3
    pad = (hi - lo) * 0.02
    ax.set_xlim(lo - pad, hi + pad)


def _values_under(ax, xa: float, xb: float) -> list[float]:
    """The y of everything drawn on ``ax`` in data coordinates between x =
    ``xa`` and ``xb``: line points (and the step reaching in from the left),
    horizontal lines across the axes, scatter marks, segments, bar tops."""
    import numpy as np
    from matplotlib.collections import LineCollection, PathCollection
    from matplotlib.lines import Line2D
    from matplotlib.patches import Rectangle

    ys: list[float] = []
    for a in ax.get_children():
        if isinstance(a, Line2D):
            x = np.asarray(a.get_xdata(), dtype=float)
            y = np.asarray(a.get_ydata(), dtype=float)
            if not len(y):
                continue
            if a.get_transform() != ax.transData:  # axhline: y only, across the axes
                ys.append(float(y[0]))
                continue
            inside = (x >= xa) & (x <= xb)
            ys += y[inside].tolist()
            before = np.nonzero(x < xa)[0]
            if len(before):
                ys.append(float(y[before[-1]]))
        elif isinstance(a, PathCollection):
            off = np.asarray(a.get_offsets(), dtype=float)
            if len(off):
                ys += off[(off[:, 0] >= xa) & (off[:, 0] <= xb), 1].tolist()
        elif isinstance(a, LineCollection):
            for seg in a.get_segments():
                ys += [float(py) for px, py in seg if xa <= px <= xb]
        elif isinstance(a, Rectangle) and a is not ax.patch and \
                a.get_transform() == ax.transData:
            if a.get_x() <= xb and a.get_x() + a.get_width() >= xa:
                ys.append(a.get_y() + a.get_height())
    return [v for v in ys if np.isfinite(v)]


def legend_room(ax, margin: float = 0.03) -> None:
    """Raise the top of ``ax``'s y-axis until its legend, when it sits in
    the upper half, covers nothing drawn (a limit along the top would hide
    under it); the legend stays where it is in the axes."""
    import math

    leg = ax.get_legend()
    if leg is None:
        return
    box = leg.get_window_extent(ax.figure.canvas.get_renderer())
    box = box.transformed(ax.transAxes.inverted())
    want = box.y0 - margin
    if want < 0.5:
        return
    inv = ax.transData.inverted()
    xa = inv.transform(ax.transAxes.transform((box.x0, 0.5)))[0]
    xb = inv.transform(ax.transAxes.transform((box.x1, 0.5)))[0]
    ys = _values_under(ax, min(xa, xb), max(xa, xb))
    y0, y1 = ax.get_ylim()
    log = ax.get_yscale() == "log"
    ys = [v for v in ys if v > 0] if log else ys
    if not ys:
        return
    f = math.log10 if log else float
    lo, hi, top = f(y0), f(y1), f(max(ys))
    if (top - lo) / (hi - lo) <= want:
        return
    new_hi = lo + (top - lo) / want
    ax.set_ylim(y0, 10 ** new_hi if log else new_hi)


PLOTS = {
    "sender": ("timeseq", "rtt", "inflight", "cwnd", "goodput"),
    "receiver": ("timeseq", "goodput", "queue"),
    "emulator": ("emulator", "emuqueue", "sojourn"),
}


def _has_cc(tr: Trace) -> bool:
    return any(s not in (None, "fixed") for s in tr["cwnd"]["state"])


#: Plots drawn only when their trace has what they show (no note otherwise):
#: congestion control's window, a bottleneck's sojourn times.
OPTIONAL = {"cwnd": _has_cc, "sojourn": lambda tr: bool(tr["fwd"].present("sojourn"))}


def draw(ctx: Context, kind: str, canvas: Canvas | None = None):
    """The figure of one plot, or a string saying why there is none."""
    from . import png_cc, png_other, png_sender

    canvas = canvas or Canvas()
    fn = getattr(png_sender, kind, None) or getattr(png_cc, kind, None) or \
        getattr(png_other, kind)
    fig = fn(canvas, ctx)
    if not isinstance(fig, str):
        fig.tight_layout()  # the layout it is saved with, then room for the legends
        for ax in fig.axes:
            legend_room(ax)
    return fig


def make_plots(tr: Trace, outdir: str | Path, stem: str, d: Derived | None = None,
               bin_s: float | None = None, zero_what: str = "",
               link_rate_bps: float | None = None) -> tuple[list[Path], list[str]]:
    """Draw every plot the trace's role has; returns (files written, notes
    about plots skipped)."""
    outdir = Path(outdir)
    d = d or derive(tr)
    if not zero_what:
        zero_what = {"sender": "the sender's first SYN",
                     "receiver": "the receiver's first SYN received"}.get(tr.role, "")
    ctx = Context(tr, d, zero_what, bin_s, link_rate_bps)
    canvas = Canvas()
    written, notes = [], []
    for kind in PLOTS[tr.role]:
        if kind in OPTIONAL and not OPTIONAL[kind](tr):
            continue
        try:
            res = draw(ctx, kind, canvas)
            if isinstance(res, str):
                notes.append(f"{kind}: skipped, {res}")
                continue
            path = outdir / f"{stem}-{kind}.png"
            res.savefig(path)
        except Exception as e:  # a plot must never take the analysis down
            notes.append(f"{kind}: failed ({type(e).__name__}: {e})")
            continue
        written.append(path)
    return written, notes
