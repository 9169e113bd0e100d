"""Numbers from one trace: what a student checks first after a run.

:func:`summarize` reduces a trace (and its derived series, ``derive.py``) to
an ordered, JSON-serialisable dict; ``text.py`` prints it.  The transfer's
time, goodput, duplicate ACKs and retransmissions follow ``measures.py``
(docs/MEASURES.md), the definitions the programs' own summaries use, and
where the trace carries the process's own counters (its ``summary`` line)
every figure that has a counterpart is checked against it: a difference is
listed under ``disagreements``, never hidden.

Units in the dict: bytes, seconds, bits per second; RTTs in milliseconds.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from . import measures
from .derive import Derived, derive, flags_of
from .load import Trace
from .pipe import pipe_of


def _stats_ms(values) -> dict | None:
    vals = [v for v in values if v is not None]
    if not vals:
        return None
    return {"min": min(vals) * 1000, "avg": sum(vals) / len(vals) * 1000,
            "max": max(vals) * 1000, "n": len(vals)}


def _last(tr: Trace, pairs) -> float | None:
    best_t, best = None, None
    for ev, key in pairs:
        for t, v in tr[ev].present(key):
            if best_t is None or t >= best_t:
                best_t, best = t, v
    return best


def summarize(tr: Trace, d: Derived | None = None) -> dict[str, Any]:
    """The trace's numbers as an ordered dict (JSON-serialisable)."""
    d = d or derive(tr)
    s: dict[str, Any] = {"trace": tr.path, "role": tr.role}
    for k in ("mode", "mss", "window", "file_size"):
        if k in tr.meta:
            s[k] = tr.meta[k]
    s["events"] = tr.n_lines
    s["trace_span_s"] = (tr.t_last - tr.t_first) if tr.t_first is not None else 0.0
    if tr.role == "emulator":
        _emulator(tr, s)
    elif tr.role == "sender":
        _sender(tr, d, s)
    else:
        _receiver(tr, d, s)
    drops = Counter(w or "?" for w in tr["drop"]["why"])
    s.setdefault("drops", sum(drops.values()))
    s.setdefault("drops_by_cause", dict(sorted(drops.items())))
    states = [n for n in tr["state"]["new"] if n]
    if tr.role != "emulator":
        s["final_state"] = states[-1] if states else None
    if tr.counters:
        s["counters"] = tr.counters
        s["disagreements"] = _disagreements(tr.role, s, tr.counters)
    return s


def _segments(tr: Trace, s: dict) -> None:
    send, recv = tr["send"], tr["recv"]
    s["segments_sent"] = len(send)
    s["data_segments_sent"] = sum(1 for ln in _data_lens(send) if ln)
    s["segments_received"] = len(recv)
    s["data_segments_received"] = sum(1 for ln in _data_lens(recv) if ln)


def _data_lens(cols) -> list[int]:
    """Each segment's file bytes: its payload, except a SYN's (the name
    option's name, PROTOCOL.md §9, is not file data)."""
    return [0 if "S" in flags_of(fl) else (ln or 0)
            for ln, fl in zip(cols["len"], cols["flags"], strict=True)]


def _sender(tr: Trace, d: Derived, s: dict) -> None:
    x = measures.transfer(tr, d.ack_t, d.ack_off, d.data_end)
    s["bytes"] = x.bytes
    s["transfer_s"] = x.seconds
    s["goodput_bps"] = x.goodput_bps
    _segments(tr, s)
    send, recv = tr["send"], tr["recv"]
    lens = _data_lens(send)
    s["new_data_segments"] = sum(1 for r, ln in zip(send["rexmit"], lens, strict=True)
                                 if ln and not r)
    causes = measures.rexmit_causes(tr)
    s["retransmissions"] = sum(causes.values())
    s["retransmissions_by_cause"] = causes
    s["retransmitted_bytes"] = sum(ln for ln, r in zip(lens, send["rexmit"], strict=True) if r)
    s["timer_expiries"] = len(tr["timeout"])
    s["duplicate_acks"] = measures.sender_dupacks(tr, d.origin)
    s["sack_acks"] = sum(1 for b in recv["sack"] if b)
    s["zero_window_acks"] = sum(1 for w, fl in zip(recv["win"], recv["flags"], strict=True)
                                if w == 0 and "A" in flags_of(fl))
    s["rtt_ms"] = _stats_ms(tr["rtt"]["sample"])
    srtt = _last(tr, [("rtt", "srtt")])
    s["final_srtt_ms"] = srtt * 1000 if srtt is not None else None
    rto = _last(tr, [("rto", "rto"), ("rtt", "rto")])
    s["final_rto_ms"] = rto * 1000 if rto is not None else None
    backoffs = [b for b in tr["rto"]["backoff"] if b is not None]
    s["max_backoff"] = max(backoffs) if backoffs else None
    p = pipe_of(tr, d.origin)
    s["max_pipe"] = max(p.pipe) if p.pipe else None


def _receiver(tr: Trace, d: Derived, s: dict) -> None:
    writes = [b for b in tr["write"]["bytes"] if b]
    if writes:
        s["bytes"] = int(sum(writes))
    else:  # no writer events: what it acknowledged
        s["bytes"] = max(0, min(max(d.ack_off, default=0), d.data_end))
    c = tr.counters or {}
    el = c.get("elapsed")
    s["own_time_s"] = el if isinstance(el, (int, float)) and not isinstance(el, bool) else None
    _segments(tr, s)
    classes = Counter(d.seg_class.values())
    # the receiver's rule: past the next expected byte is out of order, and
    # one already held is a duplicate as well (common/receiver_core.py)
    s["out_of_order"] = classes.get("ooo", 0) + classes.get("ooo-dup", 0)
    s["duplicates"] = classes.get("dup", 0) + classes.get("ooo-dup", 0)
    drops = Counter(w or "?" for w in tr["drop"]["why"])
    s["checksum_drops"] = drops.get("checksum", 0)
    queues = [q for q in tr["write"]["queue"] + tr["rwnd"]["queue"] if q is not None]
    s["max_writer_queue"] = max(queues) if queues else None
    wins = [w for w in tr["rwnd"]["win"] if w is not None]
    s["min_window"] = min(wins) if wins else None
    s["zero_windows"] = sum(1 for w in wins if w == 0)


def _emulator(tr: Trace, s: dict) -> None:
    recv = tr["recv"]
    drops = Counter(w or "?" for w in tr["drop"]["why"])
    s["datagrams_in"] = len(recv)
    s["forwarded"] = len(tr["fwd"])
    s["drops"] = sum(drops.values())
    s["drops_by_cause"] = dict(sorted(drops.items()))
    s["corrupted"] = len(tr["corrupt"])
    s["duplicated"] = len(tr["dup"])
    s["reordered"] = len(tr["reorder"])
    s["loss_rate"] = s["drops"] / len(recv) if len(recv) else None
    s["delay_ms"] = _stats_ms(tr["fwd"]["delay"])
    s["bytes_forwarded"] = sum(v for v in tr["fwd"]["len"] if v)


#: summary key -> (counter key(s) in the process's own summary, tolerance)
_CHECKS = {
    "sender": {"transfer_s": (("elapsed",), 1e-5), "duplicate_acks": (("dupacks",), 0),
               "retransmissions": (("rexmit_timeout", "rexmit_fast", "rexmit_sack",
                                    "rexmit_rack", "rexmit_tlp"), 0),
               "timer_expiries": (("timeouts",), 0),
               "segments_sent": (("segments_sent",), 0),
               "new_data_segments": (("data_segments",), 0)},
    "receiver": {"bytes": (("bytes_written",), 0),
                 "out_of_order": (("out_of_order",), 0),
                 "duplicates": (("duplicates",), 0)},
    "emulator": {"datagrams_in": (("received",), 0), "forwarded": (("forwarded",), 0),
                 "drops": (("dropped_total",), 0), "corrupted": (("corrupted",), 0),
                 "reordered": (("reordered",), 0)},
}


def _disagreements(role: str, s: dict, counters: dict) -> list[dict]:
    out = []
    for key, (names, tol) in _CHECKS.get(role, {}).items():
        if s.get(key) is None or not all(isinstance(counters.get(n), (int, float))
                                         for n in names):
            continue
        theirs = sum(counters[n] for n in names)
        if abs(s[key] - theirs) > tol:
            out.append({"figure": key, "analysis": s[key], "program": theirs})
    return out
