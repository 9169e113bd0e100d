"""The sweep's plot: goodput against loss, each group of cells (mode, window,
congestion control, varied options) a colour; its runs as dots, their
median as a line, their spread (min to max) as a band, and the textbook
model (bench/models.py) dashed:

* ``sr`` without congestion control: (1 - p) B;
* ``gbn`` without it: (1 - p) / (1 + (N - 1) p) B, N = window / MSS;
* with congestion control (newreno, cubic, ...): Mathis,
  MSS / RTT x sqrt(3/2) / sqrt(p), at most B.

B, the loss-free rate, is the group's measured median at loss 0 when the
grid has loss 0 (drawn dotted: the limit the group is held under), else
window / RTT, the RTT being the data path's delay plus the ACK path's
(``--delay``, ``--ack-delay``).  When the loss does not vary,
goodput is plotted against the axis that does (no model then).
"""

from __future__ import annotations

import csv
import statistics
from pathlib import Path

from bench import models
from harness.sweep_grid import Grid, _canon

COLOURS = ("tab:blue", "tab:red", "tab:green", "tab:orange", "tab:purple", "tab:brown",
           "tab:pink", "tab:olive", "tab:cyan", "tab:gray")


def _rows(csv_path: Path, grid: Grid) -> list[dict]:
    keys = {c.key() for c in grid.cells()}
    with open(csv_path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    from harness.sweep import KEY

    return [r for r in rows if tuple(r[k] for k in KEY) in keys and r["ok"] == "1"
            and r["goodput_bps"]]


def _option(grid: Grid, vary_text: str, opt: str, default: float) -> float:
    """The value of run_pair option ``opt`` in this group: varied, given after
    --, or the sweep's default."""
    for o, v in [tuple(x.split("=", 1)) for x in vary_text.split(";") if "=" in x]:
        if o == opt:
            return float(v)
    extra = grid.extra
    for i, o in enumerate(extra[:-1]):
        if o == opt:
            return float(extra[i + 1])
    return default


def _rtt(grid: Grid, vary_text: str) -> float:
    """The path's round trip: the data path's delay and the ACK path's (only an
    impaired ACK path has an emulator, and a delay)."""
    return _option(grid, vary_text, "--delay", 0.010) + \
        _option(grid, vary_text, "--ack-delay", 0.0)


def _group(r: dict) -> tuple:
    return (r["mode"], r["window"], r["cc"], r["vary"])


def _label(g: tuple, grid: Grid) -> str:
    mode, window, cc, vary = g
    parts = [mode, f"window {int(window) / 1024:g} KiB"]
    if cc:
        parts.append(cc)
    if vary:
        parts.append(vary.replace(";", ", ").replace("--", ""))
    return ", ".join(parts)


def _model(g: tuple, p: float, b0: float, rtt: float, mss: int) -> float | None:
    mode, window, cc, _ = g
    w = int(window)
    if cc and cc != "none":
        return models.mathis(p, rtt, mss, ceiling=b0 / 8) * 8
    return models.model(mode, p, w, w / (b0 / 8), b0 / 8) * 8


def plot(csv_path: Path, out: Path, grid: Grid) -> str:
    """Draw ``out``; returns a line saying what it drew (or why not)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = _rows(csv_path, grid)
    if not rows:
        return "no run delivered its file: no plot"
    by_loss = len(grid.losses) > 1
    fig = Figure(figsize=(10, 6), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    if by_loss:
        _against_loss(ax, rows, grid)
    else:
        _against_axis(ax, rows, grid)
    ax.grid(True, alpha=0.3)
    ax.set_ylabel("goodput (Mbit/s): file bytes / transfer time")
    ax.legend(fontsize="x-small", loc="best")
    fig.tight_layout()
    fig.savefig(out)
    return f"plot: {out}"


def _against_loss(ax, rows: list[dict], grid: Grid) -> None:
    groups: dict[tuple, dict[float, list[float]]] = {}
    for r in rows:
        groups.setdefault(_group(r), {}).setdefault(float(r["loss"]), []).append(
            float(r["goodput_bps"]) / 1e6)
    top = 0.0
    for colour, (g, pts) in zip(COLOURS * 4, sorted(groups.items()), strict=False):
        xs = sorted(pts)
        med = [statistics.median(pts[x]) for x in xs]
        for x in xs:
            ax.scatter([x] * len(pts[x]), pts[x], s=10, color=colour, alpha=0.5)
        ax.fill_between(xs, [min(pts[x]) for x in xs], [max(pts[x]) for x in xs],
                        color=colour, alpha=0.15, linewidth=0)
        ax.plot(xs, med, "o-", color=colour, label=f"{_label(g, grid)}: median")
        top = max(top, *(max(v) for v in pts.values()))
        rtt = _rtt(grid, g[3])
        if 0.0 in pts:
            b0, what = statistics.median(pts[0.0]) * 1e6, "measured loss-free"
        else:
            b0, what = int(g[1]) * 8 / rtt, f"window / RTT ({rtt * 1000:g} ms)"
        ax.axhline(b0 / 1e6, color=colour, linestyle=":", linewidth=1)
        fine = [x / 10 for x in range(0, int(max(xs) * 10) + 1)] or [0.0]
        model = [_model(g, x / 100, b0, rtt, grid.mss) for x in fine]
        kind = "Mathis" if g[2] and g[2] != "none" else g[0].upper()
        ax.plot(fine, [m / 1e6 for m in model], "--", color=colour, linewidth=1,
                label=f"model ({kind}; B = {what}, {b0 / 1e6:.1f} Mbit/s, dotted)")
        top = max(top, b0 / 1e6)
    ax.set_xlabel("loss on the data path (%)")
    ax.set_xlim(-0.02 * max(float(x) for x in grid.losses) - 0.05,
                max(float(x) for x in grid.losses) * 1.03 + 0.05)
    ax.set_ylim(0, top * 1.1 or 1)
    ax.set_title(f"Goodput against loss: {grid.reps} run(s) per cell; dots every run, "
                 "band min to max, line the median, dashed the model", fontsize="medium")


def _against_axis(ax, rows: list[dict], grid: Grid) -> None:
    varying = grid.varying()
    axis = varying[0] if varying else "mode"
    values = _axis_values(grid, axis)

    def value_of(r: dict) -> str:
        if axis in ("mode", "cc"):
            return r[axis]
        if axis == "window":
            return r["window"]
        return dict(x.split("=", 1) for x in r["vary"].split(";"))[axis]

    groups: dict[tuple, dict[str, list[float]]] = {}
    for r in rows:
        rest = tuple((k, r[k]) for k in ("mode", "window", "cc", "vary") if k != axis)
        groups.setdefault(rest, {}).setdefault(value_of(r), []).append(
            float(r["goodput_bps"]) / 1e6)
    top = 0.0
    for i, (colour, (g, pts)) in enumerate(zip(COLOURS * 4, sorted(groups.items()),
                                               strict=False)):
        xs = [j for j, v in enumerate(values) if v in pts]
        for j in xs:
            ys = pts[values[j]]
            ax.scatter([j + 0.05 * i] * len(ys), ys, s=10, color=colour, alpha=0.5)
            ax.vlines(j + 0.05 * i, min(ys), max(ys), color=colour, alpha=0.4)
            top = max(top, max(ys))
        label = ", ".join(f"{k} {v}" for k, v in g if v) or "all"
        ax.plot([j + 0.05 * i for j in xs], [statistics.median(pts[values[j]]) for j in xs],
                "o-", color=colour, label=f"{label}: median")
    ticks = [f"{int(v) / 1024:g} KiB" for v in values] if axis == "window" else values
    ax.set_xticks(range(len(values)), ticks)
    ax.set_xlabel("sender window (WINDOW)" if axis == "window" else axis.lstrip("-"))
    ax.set_xlim(-0.5, len(values) - 0.5)
    ax.set_ylim(0, top * 1.1 or 1)
    ax.set_title(f"Goodput against {axis}: {grid.reps} run(s) per cell; dots every run, "
                 "bar min to max, line the median", fontsize="medium")


def _axis_values(grid: Grid, axis: str) -> list[str]:
    from harness.spec import parse_size

    if axis == "mode":
        return list(grid.modes)
    if axis == "cc":
        return list(grid.ccs)
    if axis == "window":
        return [str(parse_size(w)) for w in grid.windows]
    if axis == "loss":
        return [_canon(x) for x in grid.losses]
    return dict(grid.vary)[axis]


def table(csv_path: Path, grid: Grid) -> str:
    """One line per cell of the grid: its runs' medians (delivered runs only)."""
    from harness.sweep import KEY

    keys = {c.key() for c in grid.cells()}
    with open(csv_path, newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if tuple(r[k] for k in KEY) in keys]
    cells: dict[tuple, list[dict]] = {}
    for r in rows:
        cells.setdefault((r["mode"], r["loss"], r["window"], r["cc"], r["vary"]), []).append(r)

    def med(rs, col, scale=1.0):
        vals = [float(r[col]) * scale for r in rs if r["ok"] == "1" and r[col] != ""]
        return f"{statistics.median(vals):.3g}" if vals else "-"

    head = (f"{'mode':<5}{'loss %':>7}{'window':>9}  {'cc':<8}{'varied':<24}{'runs ok':>8}"
            f"{'goodput Mbit/s':>15}{'rexmits':>9}{'timer exp.':>11}{'RTT avg ms':>11}")
    lines = ["medians per cell:", head]
    for (mode, loss, window, cc, vary), rs in sorted(
            cells.items(), key=lambda kv: (kv[0][0], float(kv[0][1]), int(kv[0][2]),
                                           kv[0][3], kv[0][4])):
        ok = sum(r["ok"] == "1" for r in rs)
        lines.append(f"{mode:<5}{loss:>7}{int(window) / 1024:>8g}K  {cc or '-':<8}"
                     f"{vary.replace('--', '') or '-':<24}{f'{ok}/{len(rs)}':>8}"
                     f"{med(rs, 'goodput_bps', 1e-6):>15}{med(rs, 'retransmissions'):>9}"
                     f"{med(rs, 'timer_expiries'):>11}{med(rs, 'rtt_avg_ms'):>11}")
    return "\n".join(lines)
