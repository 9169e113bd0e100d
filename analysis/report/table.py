"""The report's one summary table and its definitions.

Every number comes from ``summary.summarize`` (which follows
``measures.py``, the definitions of docs/MEASURES.md) and is checked there
against the process's own final counters: a figure the program counted
differently is shown in red with both values.
"""

from __future__ import annotations

import html

from ..rundir import Run
from ..summary import summarize
from ..text import by_cause, human_bytes, mstats, rate, seconds

DEFINITIONS = [
    ("time zero", "the sender's first SYN (its CLOSED → SYN_SENT state event); every panel's "
     "time axis counts from it. All programs stamp events with the same machine's monotonic "
     "clock, so the receiver's and the emulators' events sit on the same axis."),
    ("transfer time", "from the first SYN sent to the FIN acknowledged (the sender's "
     "FIN_WAIT_2), on the sender's clock: the sender's own summary's \"time\"."),
    ("goodput", "file bytes / transfer time, in Mbit/s (10^6 bit/s)."),
    ("a process's own time", "labelled so: the receiver's time runs from the SYN it received "
     "to its exit; run_pair's verdict times the sender process from its start (wall time)."),
    ("bytes in flight (the pipe)", "sent and neither cumulatively nor selectively "
     "acknowledged; WINDOW bounds it."),
    ("duplicate ACK", "the sender's rule: acknowledges nothing new, no data, no FIN, data "
     "outstanding, same window as the ACK before, window not zero."),
    ("retransmissions by cause", "resent segments counted by the tag the sender gave each "
     "(fast: third duplicate ACK; sack: the SACK loss rule; rack; tlp: tail loss probe; "
     "timeout: the retransmission timer; probe: zero-window probe), named as found; "
     "timer expiries are the timer's firings."),
]


def definitions_html() -> str:
    items = "".join(f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>"
                    for k, v in DEFINITIONS)
    return ('<h2>Definitions</h2><p class="src">Each figure is defined once, here and in '
            'docs/MEASURES.md, and used the same way everywhere.</p>'
            f'<ul class="defs" id="definitions">{items}</ul>')


def _sender_rows(s: dict) -> list[tuple[str, str]]:
    rows = [("file", human_bytes(s.get("file_size")) if s.get("file_size") is not None
             else "-"),
            ("transfer time", seconds(s["transfer_s"])),
            ("goodput", rate(s["goodput_bps"])),
            ("segments sent", f"{s['segments_sent']} ({s['new_data_segments']} new data)"),
            ("retransmissions", by_cause(s["retransmissions"], s["retransmissions_by_cause"])),
            ("retransmitted bytes", human_bytes(s["retransmitted_bytes"])),
            ("timer expiries", str(s["timer_expiries"])),
            ("duplicate ACKs", "-" if s["duplicate_acks"] is None else str(s["duplicate_acks"])),
            ("RTT min / avg / max", mstats(s["rtt_ms"])),
            ("final SRTT, RTO", f"{_ms(s['final_srtt_ms'])}, {_ms(s['final_rto_ms'])}"),
            ("largest pipe", human_bytes(s["max_pipe"]) + (
                f" (WINDOW {human_bytes(s['window'])})" if s.get("window") else ""))]
    return rows


def _ms(v) -> str:
    return "-" if v is None else f"{v:.1f} ms"


def _receiver_rows(s: dict) -> list[tuple[str, str]]:
    return [("bytes written", f"{s['bytes']} ({human_bytes(s['bytes'])})"),
            ("receiver's own time", "-" if s["own_time_s"] is None else
             seconds(s["own_time_s"]) + " (a process's time: SYN received to exit)"),
            ("segments received", f"{s['segments_received']} "
                                  f"({s['data_segments_received']} with data)"),
            ("out of order", str(s["out_of_order"])),
            ("duplicates", str(s["duplicates"])),
            ("checksum failures", str(s["checksum_drops"])),
            ("largest writer queue", human_bytes(s["max_writer_queue"]))]


def _emulator_rows(s: dict) -> list[tuple[str, str]]:
    return [("datagrams in", str(s["datagrams_in"])),
            ("forwarded", str(s["forwarded"])),
            ("dropped", by_cause(s["drops"], s["drops_by_cause"])),
            ("corrupted", str(s["corrupted"])),
            ("reordered", str(s["reordered"])),
            ("duplicated", str(s["duplicated"])),
            ("delay min / avg / max", mstats(s["delay_ms"], "datagrams"))]


def summary_table(run: Run) -> str:
    out = ['<table class="sum" id="summary">']
    rows_of = {"sender": _sender_rows, "receiver": _receiver_rows, "emulator": _emulator_rows}
    for tr, d in zip(run.traces, run.derived, strict=True):
        s = summarize(tr, d)
        out.append(f'<tr><th class="sec" colspan="2">{html.escape(tr.role)}: '
                   f"{html.escape(tr.name)}</th></tr>")
        for label, value in rows_of[tr.role](s):
            out.append(f"<tr><td>{html.escape(label)}</td>"
                       f'<td class="num">{html.escape(value)}</td></tr>')
        for x in s.get("disagreements", ()):
            out.append('<tr class="disagree"><td>DISAGREES</td><td>'
                       + html.escape(f"{x['figure']}: analysis {x['analysis']}, the program's "
                                     f"own summary {x['program']}") + "</td></tr>")
    wall = run.info.get("elapsed_s")
    if isinstance(wall, (int, float)):
        out.append('<tr><th class="sec" colspan="2">the launcher</th></tr>'
                   f"<tr><td>wall time</td><td class=\"num\">{wall:.2f} s (run.json: "
                   "the sender process from its start to its exit)</td></tr>")
    out.append("</table>")
    return "\n".join(out)
