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

The drawing functions live in ``png_sender.py`` and ``png_other.py``;
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


PLOTS = {
    "sender": ("timeseq", "rtt", "inflight", "goodput"),
    "receiver": ("timeseq", "goodput", "queue"),
    "emulator": ("emulator", "emuqueue"),
}


def draw(ctx: Context, kind: str, canvas: Canvas | None = None):
    """The figure of one plot, or a string saying why there is none."""
    from . import png_other, png_sender

    canvas = canvas or Canvas()
    fn = getattr(png_sender, kind, None) or getattr(png_other, kind)
    return fn(canvas, ctx)


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
        try:
            res = draw(ctx, kind, canvas)
            if isinstance(res, str):
                notes.append(f"{kind}: skipped, {res}")
                continue
            path = outdir / f"{stem}-{kind}.png"
            res.tight_layout()
            res.savefig(path)
        except Exception as e:  # a plot must never take the analysis down
            notes.append(f"{kind}: failed ({type(e).__name__}: {e})")
            continue
        written.append(path)
    return written, notes
