"""plots/flows.png of run_pair.sh --flows: per-flow goodput over time on one
axis, and per-flow cwnd under WINDOW when congestion control is on.

From each sender's trace: goodput is the bytes its cumulative ACK newly
covers (the ``inflight`` events' ``acked``, capped at the file size) per
bin, the bins as every goodput plot's (docs/MEASURES.md: a 1-2-5 width
giving about 25 bins); cwnd is its ``cwnd`` events.  Time zero is the
earliest sender's first event (its ``meta`` line, written with its first
SYN): all processes stamp ``time.monotonic()`` of one machine, so the flows
share the axis without correction.
"""

from __future__ import annotations

import json
from pathlib import Path

from analysis.plots import fit_x, fit_y
from analysis.series import bin_label, binned_rate, nice_bin
from analysis.text import byte_unit, rate, rate_unit


def read_flow(path: Path) -> dict:
    """(t0, [(t, bytes newly acknowledged)], [(t, cwnd)]) of one sender's trace."""
    t0, size, acked, prev, cwnd = None, None, [], 0, []
    with open(path) as f:
        for line in f:
            try:
                ev = json.loads(line)
            except ValueError:
                continue  # a line cut short by a kill
            kind = ev.get("ev")
            if kind == "meta":
                t0, size = ev["t"], ev.get("file_size")
            elif kind == "inflight":
                off = ev["acked"] if size is None else min(ev["acked"], size)
                if off > prev:
                    acked.append((ev["t"], off - prev))
                    prev = off
            elif kind == "cwnd":
                cwnd.append((ev["t"], ev["cwnd"]))
    if t0 is None:
        raise ValueError(f"{path} has no meta line")
    return {"t0": t0, "acked": acked, "cwnd": cwnd}


def draw(flows: list[tuple[str, Path]], out: Path, link_bps: float | None = None,
         window: int | None = None) -> Path:
    """The figure for ``flows`` (label, trace path) into ``out``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    data = [(label, read_flow(p)) for label, p in flows]
    if not data:
        raise ValueError("no sender traces")
    zero = min(d["t0"] for _, d in data)
    end = max([t for _, d in data for t, _ in d["acked"]] + [zero + 1e-3])
    width = nice_bin(end - zero)
    with_cwnd = window is not None and any(d["cwnd"] for _, d in data)
    fig = Figure(figsize=(10, 8 if with_cwnd else 5.5), dpi=100)
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(2 if with_cwnd else 1, 1, i + 1)
            for i in range(2 if with_cwnd else 1)]
    rates = {label: binned_rate(d["acked"], zero, end, width) for label, d in data}
    peak = max([max(r) for _, r in rates.values()] + [link_bps or 0, 1.0])
    unit, div = rate_unit(peak)
    ax = axes[0]
    for label, d in data:
        left, r = rates[label]
        lo, hi = _span(left, width, d)  # the flow's own bins: from its SYN to its last ACK
        xs, ys = [x - zero for x in left[lo:hi]], [v / div for v in r[lo:hi]]
        ax.step(xs + [xs[-1] + width], ys + ys[-1:], where="post", label=label,
                linewidth=1.4)
    tops = [peak / div]
    if link_bps:
        ax.axhline(link_bps / div, color="black", linestyle=":", linewidth=1.2,
                   label=f"link rate {rate(link_bps)}")
    ax.set_title(f"Per-flow goodput: bytes acknowledged per {bin_label(width)}")
    ax.set_ylabel(unit)
    fit_x(ax, 0.0, end - zero)
    fit_y(ax, tops)
    ax.legend(loc="upper right", fontsize="small", ncol=2)
    if with_cwnd:
        _cwnd(axes[1], data, zero, end, window)
    axes[-1].set_xlabel("seconds since the first sender's SYN")
    for a in axes:
        a.grid(True, alpha=0.3)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    return out


def _span(left: list[float], width: float, d: dict) -> tuple[int, int]:
    """The bins from the one holding the flow's first event to the one
    holding its last acknowledgment (at least one)."""
    first = int((d["t0"] - left[0]) / width)
    last = int(((d["acked"][-1][0] if d["acked"] else d["t0"]) - left[0]) / width)
    first = min(max(first, 0), len(left) - 1)
    return first, max(first + 1, min(last + 1, len(left)))


def _cwnd(ax, data, zero: float, end: float, window: int) -> None:
    top = max([c for _, d in data for _, c in d["cwnd"]] + [1])
    unit, div = byte_unit(max(top, window if window <= 2.5 * top else 0))
    for label, d in data:
        if d["cwnd"]:
            last = d["acked"][-1][0] if d["acked"] else end
            ts = [t - zero for t, _ in d["cwnd"]] + [max(last, d["cwnd"][-1][0]) - zero]
            cs = [c / div for _, c in d["cwnd"]]
            ax.step(ts, cs + cs[-1:], where="post", label=label, linewidth=1.2)
    tops = [top / div]
    if window <= 2.5 * top:
        ax.axhline(window / div, color="black", linestyle="--", linewidth=1,
                   label=f"WINDOW {window / div:.0f} {unit}")
        tops.append(window / div)
    ax.set_title("Per-flow congestion window (cwnd)"
                 + ("" if window <= 2.5 * top else f"; WINDOW {window / div:.0f} {unit} "
                    "not drawn (off the scale)"))
    ax.set_ylabel(unit)
    fit_x(ax, 0.0, end - zero)
    fit_y(ax, tops)
    ax.legend(loc="upper right", fontsize="small", ncol=2)
