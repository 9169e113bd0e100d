"""PNG plots of one trace, drawn with matplotlib's Agg canvas.

matplotlib is imported inside :func:`make_plots` only, and figures are made
with ``matplotlib.figure.Figure`` on a ``FigureCanvasAgg``: the Agg backend
without touching pyplot's global state, so importing ``analysis`` never loads
matplotlib and plotting works without a display and from any thread.

Every plot needs some events; when they are missing the plot is skipped with
a note, never an exception.  Big traces are drawn with one collection or
scatter call per series and thinned to at most ``MAX_POINTS`` points.
"""

from __future__ import annotations

import bisect
from pathlib import Path

from .load import Trace
from .summary import Derived, derive

MAX_POINTS = 150_000

REXMIT_STYLE = {  # cause -> (colour, marker)
    "timeout": ("tab:red", "x"),
    "fast": ("tab:orange", "D"),
    "sack": ("tab:purple", "^"),
    "probe": ("tab:gray", "s"),
}


def _thin(*series, limit=MAX_POINTS):
    """Every k-th point of parallel lists, so at most ``limit`` remain."""
    n = len(series[0])
    if n <= limit:
        return series
    k = -(-n // limit)
    return tuple(s[::k] for s in series)


def _thin_step(ts, ys, limit=MAX_POINTS):
    """Thin a monotone step series keeping each bucket's last value."""
    n = len(ts)
    if n <= limit:
        return ts, ys
    k = -(-n // limit)
    idx = list(range(k - 1, n, k))
    if idx[-1] != n - 1:
        idx.append(n - 1)
    return [ts[i] for i in idx], [ys[i] for i in idx]


class _Plotter:
    def __init__(self, tr: Trace, d: Derived, outdir: Path, stem: str, bin_s: float | None):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        self.Figure, self.Canvas = Figure, FigureCanvasAgg
        self.tr, self.d, self.outdir, self.stem, self.bin_s = tr, d, outdir, stem, bin_s
        self.t0 = d.t0

    def rel(self, ts):
        t0 = self.t0
        return [t - t0 for t in ts]

    def figure(self, title, ylabel, size=(10, 5.5)):
        fig = self.Figure(figsize=size, dpi=100)
        self.Canvas(fig)
        ax = fig.add_subplot(1, 1, 1)
        ax.set_title(f"{title} — {self.tr.name}")
        ax.set_xlabel("time (s)")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        return fig, ax

    def save(self, fig, kind) -> Path:
        path = self.outdir / f"{self.stem}-{kind}.png"
        fig.tight_layout()
        fig.savefig(path)
        return path

    # --- time-sequence graph -------------------------------------------------

    def timeseq(self):
        tr, d = self.tr, self.d
        if tr.role == "sender":
            cols = tr["send"]
            segs = [(t, off, ln, r) for t, off, ln, r in
                    zip(cols.t, cols["off"], cols["len"], cols["rexmit"], strict=True)
                    if ln and off is not None]
            cls = None
        else:
            cols = tr["recv"]
            rows = zip(cols.t, cols["off"], cols["len"], strict=True)
            segs = [(t, off, ln, d.seg_class.get(i)) for i, (t, off, ln) in enumerate(rows)
                    if ln and off is not None]
            cls = True
        if not segs and not d.ack_off:
            return "no data segments or ACKs with stream offsets"
        fig, ax = self.figure("Time-sequence graph", "stream offset (bytes)")
        groups: dict[str, list] = {}
        for t, off, ln, r in segs:
            groups.setdefault(r or "new", []).append((t, off, ln))
        if cls:
            styles = {"new": ("tab:blue", None, "data received in order"),
                      "ooo": ("tab:orange", "o", "data received out of order"),
                      "dup": ("tab:red", "x", "duplicate data")}
        else:
            styles = {"new": ("tab:blue", None, "data sent")}
            for cause, (colour, marker) in REXMIT_STYLE.items():
                styles[cause] = (colour, marker, f"retransmission ({cause})")
        for key in ["new"] + sorted(k for k in groups if k != "new"):
            pts = groups.get(key)
            if not pts:
                continue
            colour, marker, label = styles.get(key, ("tab:brown", "v", f"retransmission ({key})"))
            ts, offs, lens = zip(*pts, strict=True)
            ts, offs, lens = _thin(self.rel(ts), list(offs), list(lens))
            ax.vlines(ts, offs, [o + n for o, n in zip(offs, lens, strict=True)], colors=colour,
                      linewidth=1.5, label=label, zorder=2.5, rasterized=True)
            if marker:
                ax.scatter(ts, offs, s=14, c=colour, marker=marker, linewidths=1,
                           zorder=3, rasterized=True)
        if d.ack_off:
            at, ao = _thin_step(self.rel(d.ack_t), d.ack_off)
            ax.step(at, ao, where="post", color="tab:green", linewidth=1.2,
                    label="cumulative ACK")
            self._window_line(ax)
        self._sack(ax)
        # keep the data readable: the window edge may run off the top
        top = max([o + n for _, o, n, _ in segs] + d.ack_off)
        if top > 0:
            lo, hi = ax.get_ylim()
            ax.set_ylim(min(0, lo), min(hi, top * 1.15))
        ax.legend(loc="upper left", fontsize="small")
        return self.save(fig, "timeseq")

    def _window_line(self, ax):
        """ACK + advertised window: the edge the sender may not pass.  Drawn
        at each ACK from the latest window known then (the sender's rwnd from
        its inflight events, the receiver's own rwnd events)."""
        tr, d = self.tr, self.d
        src = tr["inflight"].present("rwnd") if tr.role == "sender" \
            else tr["rwnd"].present("win")
        if not src:
            return
        wt = [p[0] for p in src]
        pts_t, pts_y = [], []
        for t, a in zip(d.ack_t, d.ack_off, strict=True):
            i = bisect.bisect_right(wt, t) - 1
            if i >= 0:
                pts_t.append(t)
                pts_y.append(a + src[i][1])
        if pts_t:
            ts, ys = _thin_step(self.rel(pts_t), pts_y)
            ax.step(ts, ys, where="post", color="goldenrod", linewidth=1,
                    label="ACK + advertised window")

    def _sack(self, ax):
        recv = self.tr["recv"] if self.tr.role == "sender" else None
        if recv is None:
            return
        ts, lo, hi = [], [], []
        for t, blocks in zip(recv.t, recv["sack"], strict=True):
            for left, right in blocks or ():
                ts.append(t)
                lo.append(left)
                hi.append(right)
        if ts:
            ts, lo, hi = _thin(self.rel(ts), lo, hi)
            ax.vlines(ts, lo, hi, colors="tab:purple", alpha=0.35, linewidth=3,
                      label="SACKed ranges", rasterized=True)

    # --- SRTT / RTO ------------------------------------------------------------

    def rtt(self):
        tr = self.tr
        rtt = tr["rtt"]
        samples = rtt.present("sample")
        srtt = rtt.present("srtt")
        rto = sorted(rtt.present("rto") + tr["rto"].present("rto"))
        if not (samples or srtt or rto):
            return "no rtt or rto events"
        fig, ax = self.figure("RTT samples, SRTT and RTO", "milliseconds")
        if samples:
            ts, vs = _thin(self.rel([p[0] for p in samples]), [p[1] * 1000 for p in samples])
            ax.scatter(ts, vs, s=4, c="tab:gray", alpha=0.6, label="RTT sample",
                       rasterized=True)
        if srtt:
            ts, vs = _thin_step(self.rel([p[0] for p in srtt]), [p[1] * 1000 for p in srtt])
            ax.plot(ts, vs, color="tab:blue", linewidth=1.2, label="SRTT")
        if rto:
            ts, vs = _thin_step(self.rel([p[0] for p in rto]), [p[1] * 1000 for p in rto])
            ax.step(ts, vs, where="post", color="tab:red", linewidth=1.2, label="RTO")
        to = tr["timeout"].present("rto")
        if to:
            ax.scatter(self.rel([p[0] for p in to]), [p[1] * 1000 for p in to], s=30,
                       c="black", marker="x", zorder=3, label="timeout (RTO expired)")
        ax.set_ylim(bottom=0)
        ax.legend(loc="upper right", fontsize="small")
        return self.save(fig, "rtt")

    # --- bytes in flight vs window --------------------------------------------------

    def inflight(self):
        inf = self.tr["inflight"]
        flight = inf.present("bytes")
        rwnd = inf.present("rwnd")
        if not flight:
            return "no inflight events"
        fig, ax = self.figure("Bytes in flight and the peer's advertised window", "bytes")
        ts, vs = _thin_step(self.rel([p[0] for p in flight]), [p[1] for p in flight])
        ax.step(ts, vs, where="post", color="tab:blue", linewidth=1, label="bytes in flight")
        if rwnd:
            ts, vs = _thin_step(self.rel([p[0] for p in rwnd]), [p[1] for p in rwnd])
            ax.step(ts, vs, where="post", color="goldenrod", linewidth=1.2,
                    label="advertised window (rwnd)")
        ax.set_ylim(bottom=0)
        ax.legend(loc="upper right", fontsize="small")
        return self.save(fig, "inflight")

    # --- goodput -----------------------------------------------------------------

    def goodput(self):
        tr, d = self.tr, self.d
        # (time, bytes newly delivered) events
        if tr.role == "receiver" and len(tr["write"]):
            events = [(t, b) for t, b in tr["write"].present("bytes")]
            what = "bytes written"
        elif d.ack_off:
            events, prev = [], 0
            cap = d.data_end if d.data_end else None
            for t, off in zip(d.ack_t, d.ack_off, strict=True):
                off = min(off, cap) if cap is not None else off
                if off > prev:
                    events.append((t, off - prev))
                    prev = off
            what = "bytes acknowledged"
        else:
            return "no writes or ACKs to measure goodput from"
        if not events:
            return "no bytes delivered"
        t_start = min(tr["send"].t[:1] + tr["recv"].t[:1] + [events[0][0]])
        span = max(events[-1][0] - t_start, 1e-6)
        bin_s = self.bin_s or _auto_bin(span)
        nbins = int(span / bin_s) + 1
        acc = [0.0] * nbins
        for t, b in events:
            acc[min(int((t - t_start) / bin_s), nbins - 1)] += b
        rates = [b * 8 / bin_s for b in acc]
        peak = max(rates)
        unit, div = ("Mbit/s", 1e6) if peak >= 1e6 else ("kbit/s", 1e3)
        fig, ax = self.figure(f"Goodput ({what}, {bin_s * 1000:g} ms bins)", unit)
        left = [t_start - self.t0 + i * bin_s for i in range(nbins)]
        ax.bar(left, [r / div for r in rates], width=bin_s, align="edge",
               color="tab:green", alpha=0.8, linewidth=0)
        total = sum(b for _, b in events)
        avg = total * 8 / span / div
        ax.axhline(avg, color="black", linestyle="--", linewidth=1,
                   label=f"average {avg:.3g} {unit}")
        ax.legend(loc="upper right", fontsize="small")
        return self.save(fig, "goodput")

    # --- receiver: writer queue ------------------------------------------------------

    def queue(self):
        tr = self.tr
        wq = tr["write"].present("queue")
        rq = tr["rwnd"].present("queue")
        ooo = tr["rwnd"].present("ooo")
        win = tr["rwnd"].present("win")
        if not (wq or rq):
            return "no write or rwnd events with a queue size"
        fig, ax = self.figure("Receiver buffers", "bytes")
        q = sorted(wq + rq)
        ts, vs = _thin_step(self.rel([p[0] for p in q]), [p[1] for p in q])
        ax.step(ts, vs, where="post", color="tab:blue", linewidth=1, label="writer queue")
        if ooo and any(v for _, v in ooo):
            ts, vs = _thin_step(self.rel([p[0] for p in ooo]), [p[1] for p in ooo])
            ax.step(ts, vs, where="post", color="tab:orange", linewidth=1,
                    label="held out of order")
        if win:
            ts, vs = _thin_step(self.rel([p[0] for p in win]), [p[1] for p in win])
            ax.step(ts, vs, where="post", color="goldenrod", linewidth=1,
                    label="advertised window")
        ax.set_ylim(bottom=0)
        ax.legend(loc="upper right", fontsize="small")
        return self.save(fig, "queue")

    # --- emulator ------------------------------------------------------------------

    def emulator(self):
        tr = self.tr
        bars = [("received", len(tr["recv"])), ("forwarded", len(tr["fwd"]))]
        drops: dict[str, int] = {}
        for w in tr["drop"]["why"]:
            drops[w or "?"] = drops.get(w or "?", 0) + 1
        bars += [(f"dropped: {k}", v) for k, v in sorted(drops.items())]
        bars += [("corrupted", len(tr["corrupt"])), ("duplicated", len(tr["dup"])),
                 ("reordered", len(tr["reorder"]))]
        if not any(v for _, v in bars):
            return "no emulator events"
        delays = [v * 1000 for v in tr["fwd"]["delay"] if v is not None]
        fig = self.Figure(figsize=(11 if delays else 9, 5), dpi=100)
        self.Canvas(fig)
        ax = fig.add_subplot(1, 2 if delays else 1, 1)
        colours = ["tab:blue", "tab:green"] + ["tab:red"] * len(drops) + \
            ["tab:purple", "tab:orange", "tab:brown"]
        labels = [b[0] for b in bars]
        values = [b[1] for b in bars]
        rects = ax.bar(range(len(bars)), values, color=colours)
        ax.bar_label(rects, fontsize="small")
        ax.set_xticks(range(len(bars)), labels, rotation=30, ha="right")
        ax.set_ylabel("datagrams")
        ax.set_title(f"What the link did — {tr.name}")
        if delays:
            ax2 = fig.add_subplot(1, 2, 2)
            ax2.hist(delays, bins=min(50, max(5, len(delays) // 20)), color="tab:blue")
            ax2.set_xlabel("delay (ms)")
            ax2.set_ylabel("datagrams")
            ax2.set_title("Delay of forwarded datagrams")
        return self.save(fig, "emulator")


def _auto_bin(span: float) -> float:
    """100 ms bins, widened to keep at most 500 bins, narrowed to keep 20."""
    bin_s = 0.1
    if span / bin_s > 500:
        bin_s = span / 500
    elif span / bin_s < 20:
        bin_s = max(span / 20, 1e-4)
    return bin_s


PLOTS = {
    "sender": ("timeseq", "rtt", "inflight", "goodput"),
    "receiver": ("timeseq", "goodput", "queue"),
    "emulator": ("emulator",),
}


def make_plots(tr: Trace, outdir: str | Path, stem: str, d: Derived | None = None,
               bin_s: float | None = None) -> tuple[list[Path], list[str]]:
    """Draw every plot the trace's role has; returns (files written, notes
    about plots skipped)."""
    outdir = Path(outdir)
    p = _Plotter(tr, d or derive(tr), outdir, stem, bin_s)
    written, notes = [], []
    for kind in PLOTS[tr.role]:
        try:
            res = getattr(p, kind)()
        except Exception as e:  # a plot must never take the analysis down
            notes.append(f"{kind}: failed ({type(e).__name__}: {e})")
            continue
        if isinstance(res, Path):
            written.append(res)
        else:
            notes.append(f"{kind}: skipped, {res}")
    return written, notes
