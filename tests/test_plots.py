"""The PNG plots are measurements (issue 24, items 3 and 6): every plot's
axes contain its data, its y-axis is in units people read, and it draws the
limit its data is held under.  Each plot is drawn from a synthetic trace and
its matplotlib axes are read back."""

from __future__ import annotations

import math
import re

import pytest
from analysis_support import (
    MSS,
    emulator_events,
    receiver_events,
    sender_events,
    write_trace,
)

from analysis.derive import derive
from analysis.load import load_trace
from analysis.pipe import Scoreboard, replay
from analysis.plots import Context, draw
from analysis.rundir import align
from analysis.series import nice_bin

pytestmark = pytest.mark.timeout(120)


def artists_data(ax):
    """(x, y) of every point the axes draws: lines, bars' and segments' ends,
    scatter offsets (axis-wide lines like axhline are in axes coordinates
    along x, so only their y counts)."""
    from matplotlib.collections import LineCollection, PathCollection
    from matplotlib.lines import Line2D
    from matplotlib.patches import Rectangle

    pts = []
    for a in ax.get_children():
        if isinstance(a, Line2D):
            xs, ys = a.get_xdata(), a.get_ydata()
            axis_wide = a.get_transform() != ax.transData
            pts += [(None if axis_wide else x, y) for x, y in zip(xs, ys, strict=True)]
        elif isinstance(a, LineCollection):
            for seg in a.get_segments():
                pts += [tuple(p) for p in seg]
        elif isinstance(a, PathCollection):
            pts += [tuple(p) for p in a.get_offsets()]
        elif isinstance(a, Rectangle) and a is not ax.patch:
            pts += [(a.get_x(), a.get_y() + a.get_height())]
    return pts


def assert_contains(ax, what=""):
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    pts = artists_data(ax)
    assert pts, f"{what}: nothing drawn"
    for x, y in pts:
        if x is not None and not (isinstance(x, float) and math.isnan(x)):
            assert x0 <= x <= x1, f"{what}: x={x} outside {x0, x1}"
        assert y0 <= y <= y1 * (1 + 1e-9), f"{what}: y={y} outside {y0, y1}"


def limit_drawn(fig) -> list:
    return [a for ax in fig.axes for a in ax.get_children() if a.get_gid() == "limit"]


def ctx_of(tmp_path, name, events, **kw):
    tr = load_trace(write_trace(tmp_path / name, events))
    d = derive(tr)
    zero = {"sender": "the sender's first SYN"}.get(tr.role, "")
    return Context(tr, d, zero, **kw)


def test_time_sequence_graph(tmp_path):
    events, exp = sender_events(n=400)
    fig = draw(ctx_of(tmp_path, "s.jsonl", events), "timeseq")
    ax = fig.axes[0]
    assert_contains(ax, "timeseq")
    assert_legend_hides_no_line(fig, ax)
    assert re.search(r"\((KiB|MiB)\)", ax.get_ylabel()), ax.get_ylabel()
    assert ax.get_yaxis().get_offset_text().get_text() == ""  # no "1e6" multiplier
    # the window limit is drawn and stays within the file: it never runs off the top
    (lim,) = limit_drawn(fig)
    assert max(lim.get_ydata()) <= exp["bytes"] / 1024 + 1e-9
    assert ax.get_ylim()[1] < exp["bytes"] / 1024 * 1.1


def test_gbn_resends_stay_under_the_ack_and_limit_lines(tmp_path):
    events, _ = sender_events(n=300)
    # every data segment resent 8 times: a band of resends
    events = events + [dict(e, t=e["t"] + 1e-4, rexmit="fast") for e in events
                       if e["ev"] == "send" and e.get("len")] * 8
    fig = draw(ctx_of(tmp_path, "gbn.jsonl", events), "timeseq")
    ax = fig.axes[0]
    assert_contains(ax, "gbn timeseq")
    resends = [c for c in ax.collections if "retransmission" in str(c.get_label())]
    lines = [ln for ln in ax.get_lines() if ln.get_label() in ("cumulative ACK",)]
    lines += limit_drawn(fig)
    assert resends and len(lines) == 2
    assert all(ln.get_zorder() > c.get_zorder() for ln in lines for c in resends)
    assert all(c.get_alpha() is not None and c.get_alpha() < 1 for c in resends)
    # and new data, the band's frontier, is drawn over it, not hidden under it
    new = [c for c in ax.collections if c.get_label() == "data sent"]
    assert len(new) == 1 and all(new[0].get_zorder() > c.get_zorder() for c in resends)


def test_a_few_resends_are_drawn_over_new_data(tmp_path):
    events, _ = sender_events(n=300)  # sr: a handful of resends
    fig = draw(ctx_of(tmp_path, "sr.jsonl", events), "timeseq")
    ax = fig.axes[0]
    resends = [c for c in ax.collections if "retransmission" in str(c.get_label())]
    (new,) = [c for c in ax.collections if c.get_label() == "data sent"]
    assert resends and all(c.get_zorder() > new.get_zorder() for c in resends)


def test_rtt_plot_shows_samples_and_the_rto_floor(tmp_path):
    events, exp = sender_events(n=200)
    fig = draw(ctx_of(tmp_path, "s.jsonl", events), "rtt")
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    assert_contains(ax, "rtt")
    lo, hi = ax.get_ylim()
    # samples of ~20 ms and the 200 ms floor in the same view, neither squashed:
    # on the log axis each sits well inside, not on an edge
    assert lo < min(exp["samples"]) * 1000 / 1.2 and hi > 400 * 1.2
    assert math.log10(hi / lo) < 3
    assert limit_drawn(fig)
    assert_legend_hides_no_line(fig, ax)


def assert_legend_hides_no_line(fig, ax):
    """No point of a line (RTO, SRTT, the floor) lies under the legend's box."""
    fig.canvas.draw()
    box = ax.get_legend().get_window_extent()
    x0, x1 = ax.get_xlim()
    for ln in ax.get_lines():
        if ln.get_transform() != ax.transData:  # axhline: across the whole width
            xs, ys = [x0, x1], [ln.get_ydata()[0]] * 2
        else:
            xs, ys = list(ln.get_xdata()), list(ln.get_ydata())
        # along the drawn path (steps are horizontal, then vertical), 50 points a piece
        pts = [(xs[0], ys[0])]
        for i in range(1, len(xs)):
            pts += [(xs[i - 1] + (xs[i] - xs[i - 1]) * k / 50, ys[i - 1]) for k in range(51)]
            pts.append((xs[i], ys[i]))
        shown = ax.transData.transform(pts)
        inside = [(x, y) for x, y in shown if box.contains(x, y)]
        assert not inside, f"the legend hides {ln.get_label()!r} at {inside[:3]}"


def test_rtt_plot_with_few_samples_spans_the_transfer(tmp_path):
    events, _ = sender_events(n=200)
    kept = 0
    few = []
    for e in events:
        if e["ev"] == "rtt":
            kept += 1
            if kept > 3:
                continue
        few.append(e)
    ctx = ctx_of(tmp_path, "few.jsonl", few)
    fig = draw(ctx, "rtt")
    ax = fig.axes[0]
    assert_contains(ax, "few rtt")
    assert_legend_hides_no_line(fig, ax)
    last_send = max(ctx.tr["send"].t) - ctx.d.t0
    assert ax.get_xlim()[1] >= last_send, "the x-axis must show the whole transfer"
    scat = [c for c in ax.collections if "RTT sample" in str(c.get_label())]
    assert scat and scat[0].get_sizes()[0] >= 20  # visible markers


def test_inflight_is_the_pipe_held_under_the_window(tmp_path):
    events, _ = sender_events(n=400)
    fig = draw(ctx_of(tmp_path, "s.jsonl", events), "inflight")
    ax = fig.axes[0]
    assert_contains(ax, "inflight")
    assert_legend_hides_no_line(fig, ax)
    (lim,) = limit_drawn(fig)
    pipe = [ln for ln in ax.get_lines() if str(ln.get_label()).startswith("pipe")]
    assert pipe and max(pipe[0].get_ydata()) <= max(lim.get_ydata()) + 1e-9
    assert re.search(r"\((KiB|MiB|bytes)\)", ax.get_ylabel())


def test_inflight_without_cc_draws_the_limit_not_a_cwnd_over_it(tmp_path):
    """--cc none traces cwnd = WINDOW on every inflight event: drawn, that
    line covered the window limit and named a cwnd the sender does not have
    (issue 24, item 3).  With --cc newreno the cwnd is drawn, under the limit."""
    events, _ = sender_events(n=400)
    for cc in ("none", "newreno"):
        evs = [dict(e) for e in events]
        evs[0]["cc"] = cc
        for e in evs:
            if e["ev"] == "inflight":
                e["cwnd"] = evs[0]["window"]
        fig = draw(ctx_of(tmp_path, f"{cc}.jsonl", evs), "inflight")
        ax = fig.axes[0]
        assert_contains(ax, cc)
        (lim,) = limit_drawn(fig)
        labels = [str(ln.get_label()) for ln in ax.get_lines()]
        cwnd = [ln for ln in ax.get_lines() if ln.get_label() == "cwnd"]
        if cc == "none":
            assert not cwnd and "cwnd" not in str(lim.get_label()), labels
        else:
            assert len(cwnd) == 1 and "cwnd" in str(lim.get_label()), labels
            assert lim.get_zorder() > cwnd[0].get_zorder()


def test_inflight_names_a_window_far_above_the_data_instead_of_drawing_it(tmp_path):
    """A congestion window far below WINDOW (5% loss, WINDOW 256 KiB, cwnd
    about 10 KiB): a WINDOW line flattened the pipe to the bottom of the
    plot.  Beyond 2.5 times the data's peak the legend names it; the limit
    the pipe is held under, min(WINDOW, rwnd, cwnd), is still drawn."""
    events, _ = sender_events(n=400)
    big = 1 << 30
    events = [dict(e) for e in events]
    events[0].update(cc="newreno", window=big)
    for e in events:
        if e["ev"] == "inflight":
            e["cwnd"] = 20 * MSS
    fig = draw(ctx_of(tmp_path, "s.jsonl", events), "inflight")
    ax = fig.axes[0]
    assert_contains(ax, "inflight")
    (lim,) = limit_drawn(fig)
    unit = {"KiB": 1024, "MiB": 1 << 20, "bytes": 1}[re.search(r"\((\w+)\)",
                                                             ax.get_ylabel()).group(1)]
    assert max(lim.get_ydata()) * unit <= 20 * MSS
    assert ax.get_ylim()[1] * unit < 4 * 20 * MSS, "scaled to the data, not to WINDOW"
    assert not any(str(ln.get_label()).startswith("WINDOW") for ln in ax.get_lines())
    assert "WINDOW, 1024.00 MiB, is above this scale" in ax.get_legend().get_title().get_text()


def test_pipe_replay_counts_sacked_bytes_out():
    """Hand-made: 5 segments sent, the first lost, 2-5 SACKed: the pipe is
    one segment, while snd_nxt - snd_una is five."""
    from analysis.load import Columns, Trace

    isn = 1000
    ev = {k: Columns(keys) for k, keys in
          (("send", ["seq", "ack", "flags", "len", "win", "off", "rexmit"]),
           ("recv", ["seq", "ack", "flags", "len", "win", "off", "sack"]))}
    for i in range(5):
        ev["send"].t.append(1.0 + i * 0.001)
        for k, v in zip(ev["send"].cols, [isn + 1 + i * MSS, 1, "A", MSS, 100, i * MSS, None],
                        strict=True):
            ev["send"].cols[k].append(v)
    ev["recv"].t.append(1.1)
    for k, v in zip(ev["recv"].cols, [1, isn + 1, "A", 0, 100, 0, [[MSS, 5 * MSS]]],
                    strict=True):
        ev["recv"].cols[k].append(v)
    tr = Trace("x", "sender", {"isn": isn}, ev)
    p = replay(tr, isn)
    assert p.pipe[4] == 5 * MSS and p.pipe[-1] == MSS
    assert p.nxt[-1] - p.una[-1] == 5 * MSS and p.sacked[-1] == 4 * MSS


def test_scoreboard_merges_and_trims():
    b = Scoreboard()
    for a, c in [(10, 20), (30, 40), (20, 30), (50, 60), (5, 12)]:
        b.add(a, c)
    assert list(zip(b.left, b.right, strict=True)) == [(5, 40), (50, 60)] and b.total == 45
    b.trim(55)
    assert list(zip(b.left, b.right, strict=True)) == [(55, 60)] and b.total == 5


def test_goodput_bins_are_round_and_the_goodput_is_drawn(tmp_path):
    events, exp = sender_events(n=300)
    fig = draw(ctx_of(tmp_path, "s.jsonl", events, link_rate_bps=2e6), "goodput")
    ax = fig.axes[0]
    assert_contains(ax, "goodput")
    assert_legend_hides_no_line(fig, ax)
    m = re.search(r"per ([\d.]+) (ms|s)\b", ax.get_title())
    assert m, ax.get_title()
    width = float(m.group(1)) * (1e-3 if m.group(2) == "ms" else 1)
    mant = width / 10 ** math.floor(math.log10(width) + 1e-9)
    assert round(mant, 6) in (1.0, 2.0, 5.0), ax.get_title()
    labels = [str(ln.get_label()) for ln in ax.get_lines()]
    goodput = exp["bytes"] * 8 / exp["transfer"] / 1e6
    assert any(f"{goodput:.2f} Mbit/s" in s and "file bytes / transfer time" in s
               for s in labels), labels
    assert limit_drawn(fig)  # the link rate


@pytest.mark.parametrize("span, width", [(0.435, 0.01), (4.87, 0.1), (60, 2.0), (0.002, 5e-5)])
def test_nice_bin(span, width):
    assert nice_bin(span) == pytest.approx(max(width, 1e-4))


def test_receiver_plots_align_with_the_sender(tmp_path):
    s_ev, _ = sender_events(n=100)
    r_ev, _ = receiver_events()
    s = load_trace(write_trace(tmp_path / "s.jsonl", s_ev))
    r = load_trace(write_trace(tmp_path / "r.jsonl", r_ev))
    derived, zero, what = align([s, r])
    assert zero == 10.0 and all(d.t0 == zero for d in derived)
    assert what == "the sender's first SYN"
    fig = draw(Context(r, derived[1], what), "timeseq")
    assert fig.axes[0].get_xlabel() == "time since the sender's first SYN (s)"


def test_receiver_timeseq_draws_the_window_it_advertised(tmp_path):
    """The receiver's graph has its limit too: the right edge it advertised
    (its ACK + the window of each rwnd event), up to the FIN's offset."""
    events, exp = receiver_events()
    for e in events:  # a window smaller than the file, so that the edge moves
        if e["ev"] == "rwnd":
            e["win"] = 6 * MSS
    fig = draw(ctx_of(tmp_path, "r.jsonl", events), "timeseq")
    ax = fig.axes[0]
    assert_contains(ax, "receiver timeseq")
    assert_legend_hides_no_line(fig, ax)
    (lim,) = limit_drawn(fig)
    unit = {"KiB": 1024, "MiB": 1 << 20, "bytes": 1}[re.search(r"\((\w+)\)",
                                                             ax.get_ylabel()).group(1)]
    acks = [(e["t"], (e["ack"] - 5001) % (1 << 32)) for e in events
            if e["ev"] == "send" and "S" not in e["flags"]]
    want = [min(max(a for t, a in acks if t <= e["t"]) + 6 * MSS, exp["bytes"])
            for e in events if e["ev"] == "rwnd"]
    got = [round(v * unit) for v in lim.get_ydata()]
    assert got[:len(want)] == want and got[-1] == want[-1], (got, want)
    assert min(want) < exp["bytes"] == max(want)  # it moved, then the FIN capped it


def test_receiver_goodput_and_emulator_charts_contain_their_data(tmp_path):
    r_ev, _ = receiver_events()
    fig = draw(ctx_of(tmp_path, "r.jsonl", r_ev), "goodput")
    assert_contains(fig.axes[0], "receiver goodput")
    assert "Mbit/s" in fig.axes[0].get_ylabel() or "kbit/s" in fig.axes[0].get_ylabel()
    e_ev, exp = emulator_events()
    fig = draw(ctx_of(tmp_path, "e.jsonl", e_ev), "emulator")
    for ax in fig.axes:
        assert_contains(ax, ax.get_title())
    heights = [int(r.get_height()) for r in fig.axes[0].patches]
    assert exp["fwd"] in heights and 200 in heights
    # the delay histogram draws the link's delay, its floor, once the meta says it
    assert not limit_drawn(fig)
    e_ev[0]["impairments"] = {"delay": 0.005}
    fig = draw(ctx_of(tmp_path, "e2.jsonl", e_ev), "emulator")
    (lim,) = limit_drawn(fig)
    assert lim.get_xdata()[0] == pytest.approx(5.0)  # ms
    x0, x1 = fig.axes[1].get_xlim()
    assert x0 <= 5.0 <= x1


def test_receiver_buffers_scaled_to_their_data_with_the_limit(tmp_path):
    events, exp = receiver_events()
    events[0]["capacity"] = 4 << 20
    fig = draw(ctx_of(tmp_path, "r.jsonl", events), "queue")
    held, window = fig.axes
    assert_contains(held, "held")
    assert_contains(window, "window")
    assert_legend_hides_no_line(fig, held)
    assert_legend_hides_no_line(fig, window)
    top = held.get_ylim()[1]
    unit = 1024 if "KiB" in held.get_ylabel() else 1
    assert top <= exp["max_queue"] / unit * 2, "scaled to the data, not to the 4 MiB buffer"
    assert any("above this scale" in t.get_text() for t in held.texts)
    lims = [a for a in window.get_children() if a.get_gid() == "limit"]
    assert lims and lims[0].get_ydata()[0] == pytest.approx(4.0)  # 4 MiB, in MiB


def test_emulator_queue_plot_with_its_limit(tmp_path):
    events, _ = emulator_events()
    events[0]["impairments"] = {"queue_packets": 20, "rate": 1e6}
    q, at_loss = 0, []
    for e in events:
        if e["ev"] == "recv":
            q = (q + 3) % 25
            e["qp"] = min(q, 20)  # as stcp-link -s writes it: datagrams queued on arrival
        elif e["ev"] == "drop" and e["why"] == "loss":
            at_loss.append(min(q, 20))  # the drop carries no queue: its arrival's is meant
    fig = draw(ctx_of(tmp_path, "emu.jsonl", events), "emuqueue")
    ax = fig.axes[0]
    assert_contains(ax, "emuqueue")
    assert_legend_hides_no_line(fig, ax)
    assert ax.get_ylim()[1] < 30  # packets, scaled to the limit, not to bytes
    assert limit_drawn(fig)
    loss = [c for c in ax.collections if "drop: loss" in str(c.get_label())]
    assert loss and list(loss[0].get_offsets()[:, 1]) == at_loss


def test_emulator_queue_plot_absent_says_why(tmp_path):
    events, _ = emulator_events()
    res = draw(ctx_of(tmp_path, "emu.jsonl", events), "emuqueue")
    assert isinstance(res, str) and "no queue length" in res
