"""The thread timeline PNG: what each thread of the run did, from its thread
trace(s) (``--thread-trace``), on the run's time axis.

Three panels, one x-axis each (seconds since the run's time zero):

1. the whole run: for each thread, the share of each time bin it spent in
   each state (analysis/threads.py defines the states), stacked in its row;
2. a close-up, drawn exactly, one bar per state change: around the longest
   wait for a lock (with none, from 10 ms before the first zero window to
   40 ms after it; with none, around the longest condition wait of a worker
   that ended in work), with what it shows named; retransmissions, RTO
   firings, zero windows and probes are marked on the row of the thread
   that saw them;
3. the counters over the close-up: the sender's bytes in flight under its
   window limit, the receiver's writer queue and advertised window.
"""

from __future__ import annotations

from pathlib import Path

from .text import byte_unit
from .threads import COND_WAIT, HELD, LOCK_WAIT, RUNNING, STATES, SYSCALL, timeline

COLOURS = {RUNNING: "#2ca02c", HELD: "#00441b", LOCK_WAIT: "#d62728", COND_WAIT: "#9ecae1",
           SYSCALL: "#ff7f0e"}
MARKS = {"retransmit": ("x", "#d62728"), "RTO fired": ("v", "black"),
         "zero window": ("s", "#7b3294"), "probe": ("^", "#7b3294")}
BINS = 400
#: Counters drawn in panel 3, by the thread trace's role.
COUNTERS = {"sender": (("in flight", "#1f77b4"), ("pipe", "#17becf"),
                       ("window limit", "black"), ("cwnd", "#ff7f0e")),
            "receiver": (("unwritten", "#8c564b"), ("advertised window", "black")),
            "server": (("unwritten", "#8c564b"), ("advertised window", "black"))}


class Rows:
    """Every thread of every thread trace: (label, trace, tid, pieces)."""

    def __init__(self, tts, zero: float):
        self.zero = zero
        self.rows = []
        for tt in tts:
            for tid, name in tt.names.items():
                pieces = timeline(tt, tid)
                if pieces:
                    self.rows.append((f"{tt.role}: {name}", tt, tid, pieces))
        starts = [r[3][0][0] for r in self.rows]
        ends = [r[3][-1][1] for r in self.rows]
        self.lo, self.hi = (min(starts), max(ends)) if self.rows else (0.0, 0.0)

    def rel(self, t: float) -> float:
        return t - self.zero


def _binned(pieces, lo: float, width: float) -> dict[str, list[float]]:
    """Seconds in each state per bin (BINS bins of ``width`` from ``lo``)."""
    acc = {s: [0.0] * BINS for s in STATES}
    for s, e, state, _ in pieces:
        b = min(BINS - 1, max(0, int((s - lo) / width)))
        while s < e and b < BINS:
            edge = lo + (b + 1) * width
            cut = min(e, edge) if b < BINS - 1 else e
            acc[state][b] += cut - s
            s, b = cut, b + 1
    return acc


def _whole(ax, rows: Rows) -> None:
    width = (rows.hi - rows.lo) / BINS or 1e-6
    xs = [rows.rel(rows.lo + i * width) for i in range(BINS + 1)]
    for i, (_label, _tt, _tid, pieces) in enumerate(rows.rows):
        acc = _binned(pieces, rows.lo, width)
        base = [float(i)] * BINS
        for state in STATES:
            top = [b + 0.8 * v / width for b, v in zip(base, acc[state], strict=True)]
            ax.fill_between(xs, base + base[-1:], top + top[-1:], step="post",
                            color=COLOURS[state], linewidth=0,
                            label=state if i == 0 else None)
            base = top
    ax.set_xlim(xs[0], xs[-1])
    ax.set_title(f"Every thread, the whole run: share of each {width * 1000:.3g} ms "
                 "in each state")


def _focus(rows: Rows) -> tuple[float, float, str]:
    """The close-up's window (absolute times) and what it is centred on: the
    longest wait for a lock; with none, the first zero window; with none,
    the longest condition wait of a worker that ended in work (not one that
    spans the run, as the main thread's)."""
    best = None
    for label, tt, tid, _ in rows.rows:
        for lock, t, s, e, holder, _after in tt.lock_waits:
            if t == tid and (best is None or e - s > best[1] - best[0]):
                best = (s, e, f"{label} waited {1000 * (e - s):.3f} ms for {lock}, "
                              f"held by {holder}")
    if best is None:
        zeros = [(t, label) for label, tt, tid, _ in rows.rows for name, th, t, _a
                 in tt.instants if th == tid and name == "zero window"]
        if zeros:
            t, label = min(zeros)
            return (max(rows.lo, t - 0.010), min(rows.hi, t + 0.040),
                    f"no thread waited for a lock; the first zero window ({label})")
    if best is None:
        limit = (rows.hi - rows.lo) / 4
        for label, tt, tid, _ in rows.rows:
            for cond, _lock, t, s, e, outcome, _p in tt.cond_waits:
                if t == tid and outcome == "notified" and e - s < limit and (
                        best is None or e - s > best[1] - best[0]):
                    best = (s, e, f"no thread waited for a lock; {label} waited "
                                  f"{1000 * (e - s):.3f} ms on {cond}, then worked")
    if best is None:
        mid = (rows.lo + rows.hi) / 2
        return mid - 0.005, mid + 0.005, "no waits recorded: the middle of the run"
    s, e, what = best
    half = max(10 * (e - s), 0.002)
    lo, hi = max(rows.lo, (s + e) / 2 - half), min(rows.hi, (s + e) / 2 + half)
    return lo, hi, what


def _close_up(ax, rows: Rows, lo: float, hi: float, what: str) -> None:
    seen_marks = set()
    for i, (_label, tt, tid, pieces) in enumerate(rows.rows):
        by: dict[str, list] = {}
        for s, e, state, _ in pieces:
            if e >= lo and s <= hi:
                by.setdefault(state, []).append((rows.rel(max(s, lo)), max(e, s) - max(s, lo)))
        for state, bars in by.items():
            ax.broken_barh(bars, (i, 0.8), facecolors=COLOURS[state], linewidth=0)
        for name, th, t, _args in tt.instants:
            if th == tid and lo <= t <= hi and name in MARKS:
                marker, colour = MARKS[name]
                ax.scatter([rows.rel(t)], [i + 0.9], marker=marker, color=colour, s=28,
                           zorder=3, label=None if name in seen_marks else name)
                seen_marks.add(name)
    ax.set_xlim(rows.rel(lo), rows.rel(hi))
    ax.set_title(f"Close-up, {_span(hi - lo)}, exact: {what}", fontsize="medium")
    if seen_marks:
        ax.legend(loc="upper right", fontsize="x-small")


def _counters(ax, tts, rows: Rows, lo: float, hi: float) -> bool:
    series = []
    for tt in tts:
        for name, colour in COUNTERS.get(tt.role, ()):
            pts = tt.counters.get(name)
            if not pts:
                continue
            before = [p for p in pts if p[0] < lo][-1:]
            inside = [p for p in pts if lo <= p[0] <= hi]
            series.append((f"{tt.role}: {name}", colour, before + inside))
    series = [s for s in series if s[2]]
    if not series:
        return False
    peak = max(v for _, _, pts in series for _, v in pts)
    unit, div = byte_unit(peak)
    for label, colour, pts in series:
        xs = [rows.rel(max(t, lo)) for t, _ in pts] + [rows.rel(hi)]
        ys = [v / div for _, v in pts]
        ax.step(xs, ys + ys[-1:], where="post", color=colour, linewidth=1.2,
                linestyle="--" if "window" in label else "-", label=label)
    ax.set_ylim(0, peak / div * 1.1 or 1)
    ax.set_xlim(rows.rel(lo), rows.rel(hi))
    ax.set_ylabel(unit)
    ax.set_title("Counters over the close-up (the dashed lines are the limits)",
                 fontsize="medium")
    ax.legend(loc="upper right", fontsize="x-small", ncol=2)
    return True


def thread_timeline(tts, zero: float, zero_what: str):
    """The figure, or a string saying why there is none."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = Rows(tts, zero)
    if not rows.rows:
        return "the thread trace has no thread with events"
    n = len(rows.rows)
    fig = Figure(figsize=(12, 3.2 + 0.9 * n), dpi=100)
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(3, 1, height_ratios=[n, n, 3.5])
    axes = [fig.add_subplot(grid[k]) for k in range(3)]
    _whole(axes[0], rows)
    lo, hi, what = _focus(rows)
    _close_up(axes[1], rows, lo, hi, what)
    if not _counters(axes[2], tts, rows, lo, hi):
        axes[2].set_axis_off()
        axes[2].text(0.5, 0.5, "no counters in the thread trace", ha="center",
                     transform=axes[2].transAxes)
    for ax in axes[:2]:
        ax.set_yticks([i + 0.4 for i in range(n)], [r[0] for r in rows.rows],
                      fontsize="small")
        ax.set_ylim(-0.1, n + 0.1)
        ax.invert_yaxis()
    axes[0].legend(loc="lower center", bbox_to_anchor=(0.5, 1.08), ncol=len(STATES),
                   fontsize="small", frameon=False)
    for ax in axes:
        ax.set_xlabel(f"seconds since {zero_what}")
        ax.grid(True, axis="x", alpha=0.3)
    return fig


def make_thread_plot(tts, outdir: Path, zero: float, zero_what: str,
                     stem: str = "threads") -> tuple[list[Path], list[str]]:
    try:
        res = thread_timeline(tts, zero, zero_what)
        if isinstance(res, str):
            return [], [f"threads: skipped, {res}"]
        path = Path(outdir) / f"{stem}-timeline.png"
        res.tight_layout()
        res.savefig(path)
    except Exception as e:  # a plot must never take the analysis down
        return [], [f"threads: failed ({type(e).__name__}: {e})"]
    return [path], []


def _span(seconds: float) -> str:
    """A length of time as a person reads it: 820 ms, 1.76 s (never 1.76e+03 ms)."""
    return f"{seconds * 1000:.3g} ms" if seconds < 1 else f"{seconds:.3g} s"
