"""Bounded points per panel, so that a big run's page stays small and quick.

Bounds (stated on the page): each ordinary series of a panel (data sent, the
ACK line, the pipe, a queue, ...) is cut to at most ``SERIES_POINTS`` points,
and a panel holds at most ``PANEL_POINTS`` such points in all.  Events that
must stay visible one by one (retransmissions, drops, timer expiries) are
all kept up to ``MARKS_KEPT`` per panel; beyond that, those falling in the
same cell of a ``GRID`` grid over the whole panel are merged into one mark
(with a count), so every one still shows where it happened at full view.

Step series keep each bucket's first, lowest, highest and last points (the
M4 idea), so peaks and dips survive; segment bars keep one bar per bucket
from its lowest to its highest offset.
"""

from __future__ import annotations

SERIES_POINTS = 8_000
PANEL_POINTS = 20_000
MARKS_KEPT = 20_000
GRID = (2000, 500)


def budget(n_series: int) -> int:
    """Points each of ``n_series`` ordinary series of one panel may have."""
    return max(100, min(SERIES_POINTS, PANEL_POINTS // max(1, n_series)))


def _buckets(n: int, limit: int, per: int) -> list[tuple[int, int]]:
    k = max(1, limit // per)
    size = -(-n // k)
    return [(i, min(i + size, n)) for i in range(0, n, size)]


def steps(ts: list, ys: list, limit: int) -> tuple[list, list]:
    """A step series in time order cut to about ``limit`` points."""
    n = len(ts)
    if n <= limit:
        return list(ts), list(ys)
    out_t, out_y = [], []
    for a, b in _buckets(n, limit, 4):
        idx = sorted({a, b - 1, min(range(a, b), key=ys.__getitem__),
                      max(range(a, b), key=ys.__getitem__)})
        for i in idx:
            out_t.append(ts[i])
            out_y.append(ys[i])
    return out_t, out_y


def bars(ts: list, lo: list, hi: list, limit: int) -> tuple[list, list, list, list]:
    """Vertical bars [lo, hi] at ts (time order) cut to about ``limit``:
    (t, lo, hi, how many bars each stands for)."""
    n = len(ts)
    if n <= limit:
        return list(ts), list(lo), list(hi), [1] * n
    t_out, lo_out, hi_out, count = [], [], [], []
    for a, b in _buckets(n, limit, 1):
        t_out.append(ts[a])
        lo_out.append(min(lo[a:b]))
        hi_out.append(max(hi[a:b]))
        count.append(b - a)
    return t_out, lo_out, hi_out, count


def marks(ts: list, ys: list, extent: tuple[float, float, float, float],
          keep: int = MARKS_KEPT) -> tuple[list[int], list[int]]:
    """(indexes of the marks to draw, how many marks each stands for): all
    of them up to ``keep``, else the first of each occupied cell of the grid
    over ``extent`` (x0, x1, y0, y1)."""
    n = len(ts)
    if n <= keep:
        return list(range(n)), [1] * n
    x0, x1, y0, y1 = extent
    gx, gy = GRID
    sx = gx / ((x1 - x0) or 1.0)
    sy = gy / ((y1 - y0) or 1.0)
    first: dict[tuple[int, int], int] = {}
    count: dict[tuple[int, int], int] = {}
    for i, (t, y) in enumerate(zip(ts, ys, strict=True)):
        cell = (int((t - x0) * sx), int((y - y0) * sy))
        first.setdefault(cell, i)
        count[cell] = count.get(cell, 0) + 1
    cells = sorted(first, key=first.__getitem__)
    return [first[c] for c in cells], [count[c] for c in cells]
