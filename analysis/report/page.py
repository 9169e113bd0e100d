"""One self-contained HTML page per run: verdict, command line, one summary
table, the definitions, and linked, zoomable panels on one time axis.

The plotting library is bokeh.  Both candidates draw linked, zoomable,
hoverable panels from Python; what decides is the size of the JavaScript
every page must inline to work offline: bokeh's core bundle is about
1.3 MB, plotly's about 4.8 MB, which alone would use up the page's budget
(a 64 MiB run's report should stay under about 5 MB).  Only bokeh's core
bundle is inlined (no widgets, tables, WebGL or MathJax bundles: the page's
text is plain HTML written here), and the data goes in as typed arrays
(float32 times and values, base64 in the page), decimated to bounded points
per panel (decimate.py states the bounds).  Nothing is fetched: no CDN, no
fonts, no images.

The page checks itself: a handler installed before any other script
collects JavaScript errors into ``#js-errors``, and once every panel is
drawn ``#render-status`` says so; the browser test reads both.
"""

from __future__ import annotations

import html
from pathlib import Path

from ..rundir import Run, command_lines, verdict
from ..series import x_end
from ..threads import trace_span
from . import panel_cc, panel_threads, panels, panels_more
from .decimate import MARKS_KEPT, PANEL_POINTS, SERIES_POINTS
from .table import definitions_html, summary_table

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:1.2em 2em;
color:#222;max-width:1500px}
h1{font-size:1.4em;margin:.2em 0} h2{font-size:1.1em;margin:1.2em 0 .4em}
.verdict{font-size:1.15em;font-weight:600;padding:.4em .7em;border-radius:4px;display:inline-block}
.ok{background:#e3f5e1;color:#1b5e20}.bad{background:#fde2e1;color:#8e1b16}
.unknown{background:#eee}
.src{color:#666;font-size:.85em;margin:.2em 0}
pre{background:#f6f6f6;padding:.5em;overflow-x:auto;font-size:.85em;white-space:pre-wrap}
table.sum{border-collapse:collapse;font-size:.9em}
table.sum td,table.sum th{border-bottom:1px solid #ddd;padding:.25em .8em;text-align:left;
vertical-align:top}
table.sum th.sec{background:#f0f0f0}
td.num{font-variant-numeric:tabular-nums;white-space:nowrap}
.disagree{color:#b00;font-weight:600}
section.panel{margin:1em 0}
ul.defs li,ul.notes li{margin:.2em 0;font-size:.9em}
#js-errors:empty{display:none}
#js-errors{color:#b00}
"""

ERROR_HOOK = """<script>
window.__stcpErrors = [];
function __stcpError(msg) {
  window.__stcpErrors.push(String(msg));
  var el = document.getElementById("js-errors");
  if (el) { el.textContent = window.__stcpErrors.join("\\n"); }
}
window.addEventListener("error", function (e) { __stcpError("error: " + e.message); });
window.addEventListener("unhandledrejection", function (e) {
  __stcpError("unhandled rejection: " + e.reason); });
</script>"""

STATUS_SCRIPT = """<script>
(function () {
  var want = %d, tries = 0;
  function drawn() {
    var n = 0;
    document.querySelectorAll("section.panel [data-root-id]").forEach(function (el) {
      var host = el.shadowRoot ? el : el.firstElementChild;
      if (host && (host.shadowRoot || el.querySelector("canvas"))) { n += 1; }
    });
    return n;
  }
  function check() {
    var n = drawn(), el = document.getElementById("render-status");
    if (n >= want) {
      el.textContent = "rendered " + n + " of " + want + " panels";
      el.setAttribute("data-rendered", String(n));
      document.body.setAttribute("data-rendered", String(n));
    } else if (++tries < 200) {
      setTimeout(check, 50);
    } else {
      el.textContent = "only " + n + " of " + want + " panels rendered";
    }
  }
  if (document.readyState === "complete") { check(); }
  else { window.addEventListener("load", check); }
})();
</script>"""


class Context:
    """What every panel shares: the time axis and its zero."""

    def __init__(self, run: Run, bin_s: float | None = None):
        from bokeh.models import Range1d

        self.zero = run.zero
        self.bin_s = bin_s
        ends = [x_end(t) - run.zero for t in run.traces]
        firsts = [c.t[0] for t in run.traces for c in (t["send"], t["recv"]) if len(c)]
        starts = [min(0.0, min(firsts) - run.zero)] if firsts else [0.0]
        for span in filter(None, map(trace_span, run.threads)):  # thread traces too
            starts.append(span[0] - run.zero)
            ends.append(span[1] - run.zero)
        ends = ends or [1.0]
        lo, hi = min(starts), max(ends)
        pad = (hi - lo) * 0.02 or 0.01
        self.x_range = Range1d(lo - pad, hi + pad)
        self.xlabel = f"seconds since {run.zero_what or 'the first line'}"
        self.many = len(run.of("sender")) > 1

    def rel(self, ts):
        z = self.zero
        return [t - z for t in ts]

    def flow_label(self, tr) -> str:
        return f" — {tr.name}" if self.many else ""


def build_panels(run: Run, ctx: Context) -> tuple[list, list[str]]:
    """[(panel id, title, figure)], [notes on panels left out]."""
    figs, notes = [], []

    def add(res):
        fig, why = res
        if fig is None:
            notes.append(why)
        else:
            figs.append((fig.name, fig.title.text, fig))

    senders = run.of("sender")
    if not senders:
        notes.append("no sender trace: no time-sequence graph, pipe, RTT or goodput panels")
    for i, (tr, d) in enumerate(senders):
        sfx = f"-{i + 1}" if len(senders) > 1 else ""
        add(panels.timeseq(ctx, tr, d, sfx))
        add(panels.inflight(ctx, tr, d, sfx))
        if panel_cc.has_cc(tr):
            add(panel_cc.cwnd(ctx, tr, sfx))
        add(panels.rtt(ctx, tr, d, sfx))
    emus = run.of("emulator")
    if not emus:
        notes.append("no emulator trace: no queue or drop panel")
    for i, (tr, _) in enumerate(emus):
        sfx = f"-{i + 1}" if len(emus) > 1 else ""
        if panels_more.queue_series(tr) is None:
            notes.append(f"{tr.name}: no queue panel, its trace has no queue length "
                         "(qp/qb on its recv events: stcp-link records them with -s)")
        add(panels_more.emulator_drops(ctx, tr, sfx))
        if tr["fwd"].present("sojourn"):
            add(panel_cc.sojourn(ctx, tr, sfx))
    recvs = run.of("receiver")
    if not recvs:
        notes.append("no receiver trace: no writer-queue or advertised-window panel")
    for i, (tr, _) in enumerate(recvs):
        add(panels_more.receiver_buffers(ctx, tr, f"-{i + 1}" if len(recvs) > 1 else ""))
    if senders:
        add(panels_more.goodput(ctx, senders, _link_rate(run)))
    add(panel_threads.threads_panel(ctx, run.threads))
    return figs, notes


def _link_rate(run: Run) -> float | None:
    for tr, _ in run.of("emulator"):
        imp = tr.meta.get("impairments")
        r = imp.get("rate") if isinstance(imp, dict) else None
        if isinstance(r, (int, float)) and r > 0 and "ack" not in tr.name:
            return float(r)
    return None


def _header(run: Run) -> str:
    ok, line, src = verdict(run)
    cls = {True: "ok", False: "bad", None: "unknown"}[ok]
    where, cmds = command_lines(run)
    title = html.escape(str(run.dir) if run.dir else ", ".join(t.name for t in run.traces))
    parts = [f"<h1>simplex-tcp run: {title}</h1>",
             f'<p class="verdict {cls}" id="verdict">{html.escape(line)}</p>',
             f'<p class="src">verdict from {html.escape(src)}</p>',
             '<h2>Command line</h2>', f'<p class="src">{html.escape(where)}</p>',
             '<pre id="command">' + html.escape("\n".join(cmds)) + "</pre>"]
    return "\n".join(parts)


def _notes(notes: list[str], errors: list[str]) -> str:
    items = [f"<li>{html.escape(n)}</li>" for n in notes + errors]
    bounds = (f"Each panel draws at most {PANEL_POINTS:,} points of its ordinary series "
              f"(at most {SERIES_POINTS:,} per series, keeping each bucket's first, lowest, "
              f"highest and last point); every retransmission, drop and timer expiry is "
              f"drawn, up to {MARKS_KEPT:,} per panel, beyond which those in the same "
              "pixel-sized cell are merged into one mark (hover shows how many).")
    out = ['<h2>Panels</h2>',
           '<p class="src">All panels share one time axis: drag to pan, scroll to zoom '
           "time, box-zoom to look closer; a legend entry hides its series when clicked. "
           + html.escape(bounds) + "</p>"]
    if items:
        out.append('<ul class="notes" id="left-out">' + "".join(items) + "</ul>")
    return "\n".join(out)


def render(run: Run, bin_s: float | None = None) -> str:
    """The page as a string."""
    from bokeh.embed import components
    from bokeh.resources import INLINE

    ctx = Context(run, bin_s)
    figs, notes = build_panels(run, ctx)
    script, divs = components({pid: fig for pid, _, fig in figs}) if figs else ("", {})
    js = INLINE.js_raw[INLINE.components.index("bokeh")]
    sections = [f'<section class="panel" id="{pid}" data-title="{html.escape(title)}">'
                f"{divs[pid]}</section>" for pid, title, _ in figs]
    body = [_header(run), "<h2>Summary</h2>", summary_table(run), definitions_html(),
            _notes(notes, run.errors), "\n".join(sections),
            panel_threads.contention_html(run.threads),
            f'<p class="src" id="render-status">panels not rendered yet ({len(figs)} '
            "expected)</p>", '<pre id="js-errors"></pre>']
    title = html.escape(f"simplex-tcp run {run.dir.name if run.dir else ''}".strip())
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{title}</title>{ERROR_HOOK}<style>{STYLE}</style>"
            f"<script>\n{js}\n</script></head>\n<body>\n" + "\n".join(body)
            + f"\n{script}\n{STATUS_SCRIPT % len(figs)}\n</body></html>\n")


def write_report(run: Run, out: Path, bin_s: float | None = None) -> int:
    """Write the page to ``out`` (via ``out.part``, renamed when whole);
    returns its size in bytes."""
    page = render(run, bin_s).encode("utf-8")
    out = Path(out)
    part = out.with_name(out.name + ".part")
    part.write_bytes(page)
    part.replace(out)
    return len(page)
