"""Numbers from one trace: what a student checks first after a run.

:func:`derive` turns the raw columns into series in stream offsets (the
cumulative ACK, each data segment's class), shared by the summary and the
plots; :func:`summarize` reduces them to an ordered dict; :func:`format_summary`
prints it as a two-column table.

Units: trace times, RTTs and RTOs are seconds; the table shows milliseconds.
"""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .load import Trace

MOD = 1 << 32
HALF = 1 << 31


def unwrap(prev: int | None, value32: int) -> int:
    """The integer congruent to ``value32`` modulo 2**32 nearest ``prev``."""
    if prev is None:
        return value32
    delta = (value32 - prev) % MOD
    if delta >= HALF:
        delta -= MOD
    return prev + delta


@dataclass
class Derived:
    """Series in stream offsets, computed once per trace."""

    t0: float = 0.0
    isn_sender: int | None = None  # ISN of the data sender (both roles)
    ack_t: list[float] = field(default_factory=list)  # cumulative ACK of the data
    ack_off: list[int] = field(default_factory=list)
    data_end: int = 0  # highest off+len of data seen
    # receiver: index into recv columns -> "new" | "ooo" | "dup"
    seg_class: dict[int, str] = field(default_factory=dict)
    dupacks: int = 0


def _flags(f: str | None) -> str:
    return f or ""


def _ack_series(ts, acks, flagss, isn, start=None):
    """Cumulative ACK offsets from raw acknowledgment numbers, for segments
    with the ACK flag; ``isn`` is the data sender's ISN (offset 0 = isn + 1)."""
    out_t, out_off = [], []
    prev = start
    for t, ack, fl in zip(ts, acks, flagss, strict=True):
        if ack is None or "A" not in _flags(fl):
            continue
        off = unwrap(prev, (ack - isn - 1) % MOD)
        if prev is None and off >= HALF:  # an ACK below the first byte
            off -= MOD
        prev = off
        out_t.append(t)
        out_off.append(off)
    return out_t, out_off


def _first_syn_seq(cols) -> int | None:
    for fl, seq in zip(cols["flags"], cols["seq"], strict=True):
        if "S" in _flags(fl) and seq is not None:
            return seq
    return None


def derive(tr: Trace) -> Derived:
    d = Derived(t0=tr.t_first or 0.0)
    send, recv = tr["send"], tr["recv"]
    if tr.role == "sender":
        d.isn_sender = _first_syn_seq(send)
        if d.isn_sender is None and isinstance(tr.meta.get("isn"), int):
            d.isn_sender = tr.meta["isn"]
        if d.isn_sender is not None:
            d.ack_t, d.ack_off = _ack_series(recv.t, recv["ack"], recv["flags"], d.isn_sender)
        if not d.ack_off:  # fall back on the sender's own bookkeeping
            pts = tr["inflight"].present("acked")
            d.ack_t = [t for t, _ in pts]
            d.ack_off = [v for _, v in pts]
        for ln, off in zip(send["len"], send["off"], strict=True):
            if ln and off is not None and off + ln > d.data_end:
                d.data_end = off + ln
        # duplicate ACKs: a pure ACK (no data, SYN, FIN, RST) repeating the
        # previous acknowledgment number, i.e. not advancing "acked"
        prev = None
        for ack, fl, ln in zip(recv["ack"], recv["flags"], recv["len"], strict=True):
            fl = _flags(fl)
            if ack is None or "A" not in fl:
                continue
            if ack == prev and not ln and not any(c in fl for c in "SFR"):
                d.dupacks += 1
            prev = ack
    elif tr.role == "receiver":
        d.isn_sender = _first_syn_seq(recv)
        if d.isn_sender is not None:
            d.ack_t, d.ack_off = _ack_series(send.t, send["ack"], send["flags"], d.isn_sender)
        buffering = str(tr.meta.get("mode", "sr")).lower() != "gbn"
        nxt = 0
        held: list[list[int]] = []  # disjoint sorted [a, b) above nxt
        for i, (ln, off) in enumerate(zip(recv["len"], recv["off"], strict=True)):
            if not ln or off is None:
                continue
            a, b = off, off + ln
            if b > d.data_end:
                d.data_end = b
            if b <= nxt:
                d.seg_class[i] = "dup"
                continue
            if a > nxt:
                j = bisect.bisect_right(held, [a, MOD * MOD]) - 1
                if j >= 0 and held[j][0] <= a and held[j][1] >= b:
                    d.seg_class[i] = "dup"
                    continue
                d.seg_class[i] = "ooo"
                if buffering:
                    _insert(held, a, b)
                continue
            d.seg_class[i] = "new"
            nxt = b
            while held and held[0][0] <= nxt:
                nxt = max(nxt, held.pop(0)[1])
    return d


def _insert(held: list[list[int]], a: int, b: int) -> None:
    """Add [a, b) to a sorted list of disjoint ranges, merging overlaps."""
    i = bisect.bisect_left(held, [a, a])
    if i > 0 and held[i - 1][1] >= a:
        i -= 1
        a = min(a, held[i][0])
    j = i
    while j < len(held) and held[j][0] <= b:
        b = max(b, held[j][1])
        j += 1
    held[i:j] = [[a, b]]


def _stats(values) -> tuple[float, float, float, int] | None:
    vals = [v for v in values if v is not None]
    if not vals:
        return None
    return min(vals), sum(vals) / len(vals), max(vals), len(vals)


def _last_rto(tr: Trace) -> float | None:
    best_t, best = None, None
    for ev in ("rto", "rtt"):
        for t, v in tr[ev].present("rto"):
            if best_t is None or t >= best_t:
                best_t, best = t, v
    return best


def summarize(tr: Trace, d: Derived | None = None) -> dict[str, Any]:
    """The trace's numbers as an ordered dict (JSON-serialisable)."""
    d = d or derive(tr)
    s: dict[str, Any] = {"trace": tr.path, "role": tr.role}
    for k in ("mode", "mss"):
        if k in tr.meta:
            s[k] = tr.meta[k]
    s["events"] = tr.n_lines
    s["duration_s"] = (tr.t_last - tr.t_first) if tr.t_first is not None else 0.0
    send, recv = tr["send"], tr["recv"]
    drops = Counter(w or "?" for w in tr["drop"]["why"])

    if tr.role == "emulator":
        s["datagrams_in"] = len(recv)
        s["forwarded"] = len(tr["fwd"])
        s["dropped"] = sum(drops.values())
        s["drops_by_cause"] = dict(sorted(drops.items()))
        s["corrupted"] = len(tr["corrupt"])
        s["duplicated"] = len(tr["dup"])
        s["reordered"] = len(tr["reorder"])
        s["loss_rate"] = s["dropped"] / len(recv) if len(recv) else None
        s["delay_ms"] = _ms_stats(tr["fwd"]["delay"])
        s["bytes_forwarded"] = sum(v for v in tr["fwd"]["len"] if v)
        if tr.counters:
            s["counters"] = tr.counters
        return s

    if tr.role == "sender":
        data_bytes = min(max(d.ack_off), d.data_end) if d.ack_off else 0
        data_bytes = max(data_bytes, 0)
        start = send.t[0] if len(send) else tr.t_first
        end = next((t for t, o in zip(d.ack_t, d.ack_off, strict=True) if o >= data_bytes), None) \
            if data_bytes else None
    else:
        writes = [b for b in tr["write"]["bytes"] if b]
        if writes:
            data_bytes = int(sum(writes))
            end = tr["write"].t[-1]
        else:
            data_bytes = max(d.ack_off, default=0)
            data_bytes = max(0, min(data_bytes, d.data_end))
            acks = zip(d.ack_t, d.ack_off, strict=True)
            end = next((t for t, o in acks if o >= data_bytes), None) if data_bytes else None
        start = recv.t[0] if len(recv) else tr.t_first
    s["bytes"] = data_bytes
    xfer = (end - start) if (end is not None and start is not None) else None
    s["transfer_s"] = xfer
    s["goodput_Bps"] = data_bytes / xfer if xfer and xfer > 0 else None

    s["segments_sent"] = len(send)
    s["data_segments_sent"] = sum(1 for ln in send["len"] if ln)
    s["segments_received"] = len(recv)
    s["data_segments_received"] = sum(1 for ln in recv["len"] if ln)

    if tr.role == "sender":
        rex = Counter(r for r in send["rexmit"] if r)
        s["retransmissions"] = sum(rex.values())
        s["retransmissions_by_cause"] = dict(sorted(rex.items()))
        s["retransmitted_bytes"] = sum(ln or 0 for ln, r in
                                       zip(send["len"], send["rexmit"], strict=True) if r)
        s["timeouts"] = len(tr["timeout"])
        s["fast_retransmits"] = len(tr["fast_rexmit"])
        s["duplicate_acks"] = d.dupacks
        s["sack_acks"] = sum(1 for b in recv["sack"] if b)
        s["zero_window_acks"] = sum(1 for w, fl in zip(recv["win"], recv["flags"], strict=True)
                                    if w == 0 and "A" in _flags(fl))
        s["rtt_ms"] = _ms_stats(tr["rtt"]["sample"])
        rto = _last_rto(tr)
        s["final_rto_ms"] = rto * 1000 if rto is not None else None
        backoffs = [b for b in tr["rto"]["backoff"] if b is not None]
        s["max_backoff"] = max(backoffs) if backoffs else None
        inflight = [b for b in tr["inflight"]["bytes"] if b is not None]
        s["max_inflight"] = max(inflight) if inflight else None
    else:
        classes = Counter(d.seg_class.values())
        s["out_of_order"] = classes.get("ooo", 0)
        s["duplicates"] = classes.get("dup", 0)
        s["checksum_drops"] = drops.get("checksum", 0)
        queues = [q for q in tr["write"]["queue"] + tr["rwnd"]["queue"] if q is not None]
        s["max_writer_queue"] = max(queues) if queues else None
        wins = [w for w in tr["rwnd"]["win"] if w is not None]
        s["min_window"] = min(wins) if wins else None
        s["zero_windows"] = sum(1 for w in wins if w == 0)
    s["drops"] = sum(drops.values())
    s["drops_by_cause"] = dict(sorted(drops.items()))
    states = [n for n in tr["state"]["new"] if n]
    s["final_state"] = states[-1] if states else None
    if tr.counters:
        s["counters"] = tr.counters
    return s


def _ms_stats(values):
    st = _stats(values)
    if st is None:
        return None
    lo, avg, hi, n = st
    return {"min": lo * 1000, "avg": avg * 1000, "max": hi * 1000, "n": n}


# --- text --------------------------------------------------------------------

def _rate(bps: float) -> str:
    bits = bps * 8
    if bits >= 1e6:
        return f"{bps / 1e6:.3f} MB/s ({bits / 1e6:.2f} Mbit/s)"
    return f"{bps / 1e3:.3f} kB/s ({bits / 1e3:.2f} kbit/s)"


def _by_cause(total: int, causes: dict[str, int]) -> str:
    if not causes:
        return str(total)
    return f"{total} (" + ", ".join(f"{k} {v}" for k, v in causes.items()) + ")"


def _num(v, fmt="{}") -> str:
    return "-" if v is None else fmt.format(v)


def _mstats(st) -> str:
    if st is None:
        return "-"
    return f"{st['min']:.3f} / {st['avg']:.3f} / {st['max']:.3f} ms ({st['n']} samples)"


def format_summary(s: dict[str, Any]) -> str:
    """A two-column table: label, value."""
    rows: list[tuple[str, str]] = []
    add = rows.append
    head = f"== {s['trace']} ({s['role']}"
    if "mode" in s:
        head += f", mode {s['mode']}"
    if "mss" in s:
        head += f", mss {s['mss']}"
    head += ") =="
    add(("duration", f"{s['duration_s']:.3f} s ({s['events']} lines)"))
    if s["role"] == "emulator":
        add(("datagrams in", str(s["datagrams_in"])))
        add(("forwarded", f"{s['forwarded']} ({s['bytes_forwarded']} bytes)"))
        add(("dropped", _by_cause(s["dropped"], s["drops_by_cause"])))
        add(("loss rate", _num(s["loss_rate"], "{:.2%}")))
        add(("corrupted", str(s["corrupted"])))
        add(("duplicated", str(s["duplicated"])))
        add(("reordered", str(s["reordered"])))
        add(("delay min/avg/max", _mstats(s["delay_ms"]).replace(" samples", " datagrams")))
    else:
        add(("bytes", str(s["bytes"])))
        add(("transfer time", _num(s["transfer_s"], "{:.3f} s")))
        add(("goodput", "-" if s["goodput_Bps"] is None else _rate(s["goodput_Bps"])))
        add(("segments sent", f"{s['segments_sent']} ({s['data_segments_sent']} with data)"))
        add(("segments received",
             f"{s['segments_received']} ({s['data_segments_received']} with data)"))
        if s["role"] == "sender":
            add(("retransmissions", _by_cause(s["retransmissions"],
                                              s["retransmissions_by_cause"])))
            add(("retransmitted bytes", str(s["retransmitted_bytes"])))
            add(("timeouts", str(s["timeouts"])))
            add(("fast retransmits", str(s["fast_retransmits"])))
            add(("duplicate ACKs", str(s["duplicate_acks"])))
            add(("ACKs with SACK", str(s["sack_acks"])))
            add(("zero-window ACKs", str(s["zero_window_acks"])))
            add(("RTT min/avg/max", _mstats(s["rtt_ms"])))
            add(("final RTO", _num(s["final_rto_ms"], "{:.3f} ms")))
            add(("max RTO backoff", _num(s["max_backoff"], "{:g}")))
            add(("max bytes in flight", _num(s["max_inflight"], "{:g}")))
        else:
            add(("out-of-order segments", str(s["out_of_order"])))
            add(("duplicate segments", str(s["duplicates"])))
            add(("checksum drops", str(s["checksum_drops"])))
            add(("max writer queue", _num(s["max_writer_queue"], "{:g} bytes")))
            add(("min advertised window", _num(s["min_window"], "{:g} bytes")))
            add(("zero windows advertised", str(s["zero_windows"])))
        add(("drops", _by_cause(s["drops"], s["drops_by_cause"])))
        add(("final state", _num(s["final_state"])))
    if s.get("counters"):
        add(("process counters", ", ".join(f"{k}={v}" for k, v in s["counters"].items())))
    width = max(len(label) for label, _ in rows)
    return "\n".join([head] + [f"  {label:<{width}}  {value}" for label, value in rows])
