"""The report's thread panel: every thread of the run, one row each, its
state over time (analysis/threads.py), on the run's shared time axis, and
the contention table beneath.

Bounded like the other panels: up to ``BARS`` bars in all, each a state
change drawn exactly; beyond that, each thread's row is cut into ``CELLS``
equal cells and each cell shows the state the thread spent most of it in
(hover gives that share), and the page says so.
"""

from __future__ import annotations

import html

from ..contention import contention, format_contention
from ..png_threads import COLOURS
from ..threads import STATES, timeline
from .panels import add_hover, f32, new_figure

BARS = 30_000
CELLS = 3_000


def _rows(tts) -> list[tuple[str, object, int, list]]:
    rows = []
    for tt in tts:
        for tid, name in tt.names.items():
            pieces = timeline(tt, tid)
            if pieces:
                rows.append((f"{tt.role}: {name}", tt, tid, pieces))
    return rows


def cells(pieces, n: int) -> list[tuple[float, float, str, str]]:
    """``pieces`` as ``n`` equal cells over their span, each with the state
    that filled most of it; runs of one state merged."""
    lo, hi = pieces[0][0], pieces[-1][1]
    width = (hi - lo) / n or 1e-9
    acc = [dict.fromkeys(STATES, 0.0) for _ in range(n)]
    for s, e, state, _ in pieces:
        b = min(n - 1, int((s - lo) / width))
        while s < e and b < n:
            cut = min(e, lo + (b + 1) * width) if b < n - 1 else e
            acc[b][state] += cut - s
            s, b = cut, b + 1
    out: list[list] = []
    for b, secs in enumerate(acc):
        state = max(STATES, key=lambda k: secs[k])
        share = secs[state] / width
        start = lo + b * width
        if out and out[-1][2] == state:
            out[-1][1] = start + width
            out[-1][4].append(share)
        else:
            out.append([start, start + width, state, "", [share]])
    return [(s, e, st, f"mostly this state ({100 * min(sh):.0f}% to {100 * max(sh):.0f}% "
             "of each cell)") for s, e, st, _, sh in out]


def threads_panel(ctx, tts):
    """(figure, None) or (None, why it is left out)."""
    from bokeh.models import FactorRange

    if not tts:
        return None, ("no thread trace (*.threads.json): run with --thread-trace to see what "
                      "each thread did")
    rows = _rows(tts)
    if not rows:
        return None, "the thread traces hold no events"
    total = sum(len(r[3]) for r in rows)
    exact = total <= BARS
    labels = [r[0] for r in rows]
    fig = new_figure(ctx, "panel-threads", "What each thread did: " + (
        "every state change" if exact else
        f"the state that filled most of each 1/{CELLS} of a thread's span (zoom in the PNG "
        "for exact bars)"), "thread", y_range=FactorRange(*reversed(labels)))
    fig.height = 110 + 34 * len(rows)
    src = {k: [] for k in ("y", "left", "right", "state", "what", "colour", "ms")}
    for label, _tt, _tid, pieces in rows:
        for s, e, state, what in (pieces if exact else cells(pieces, CELLS)):
            src["y"].append(label)
            src["left"].append(s - ctx.zero)
            src["right"].append(e - ctx.zero)
            src["state"].append(state)
            src["what"].append(what)
            src["colour"].append(COLOURS[state])
            src["ms"].append((e - s) * 1000)
    src["left"], src["right"], src["ms"] = f32(src["left"]), f32(src["right"]), f32(src["ms"])
    r = fig.hbar(y="y", left="left", right="right", height=0.8, color="colour", source=src,
                 line_width=0)
    for state in STATES:  # a legend entry per state
        fig.hbar(y=[labels[0]], left=[0], right=[0], height=0, color=COLOURS[state],
                 legend_label=state)
    add_hover(fig, [r], [("thread", "@y"), ("state", "@state"), ("from", "@left{0.000000} s"),
                         ("for", "@ms{0.000} ms"), ("what", "@what")])
    fig.add_layout(fig.legend[0], "above")  # not over the rows
    fig.legend.orientation = "horizontal"
    fig.legend.label_text_font_size = "8pt"
    fig.legend.background_fill_alpha = 0.7
    return fig, None


def contention_html(tts) -> str:
    """The contention tables as preformatted text (the same as stcp-analyze prints)."""
    if not tts:
        return ""
    body = "\n\n".join(format_contention(contention(tt)) for tt in tts)
    return ('<h2>Threads: locks, conditions, states</h2><p class="src">From the thread '
            "traces (--thread-trace); every figure is defined in docs/MEASURES.md, "
            '"Threads".</p><pre id="contention">' + html.escape(body) + "</pre>")
