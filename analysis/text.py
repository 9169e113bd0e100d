"""Units people read, and the summary as a two-column table.

Sizes in bytes, KiB or MiB (binary, as the programs print file sizes);
rates in bit/s, kbit/s, Mbit/s (decimal, as the programs print goodput);
times in ms below a second, else s.
"""

from __future__ import annotations

from typing import Any

KIB = 1024
MIB = 1024 * 1024


def byte_unit(peak: float) -> tuple[str, float]:
    """(unit, divisor) for an axis whose values reach ``peak`` bytes."""
    if peak >= 2 * MIB:
        return "MiB", float(MIB)
    if peak >= 2 * KIB:
        return "KiB", float(KIB)
    return "bytes", 1.0


def human_bytes(n: float | None) -> str:
    if n is None:
        return "-"
    if abs(n) >= MIB:
        return f"{n / MIB:.2f} MiB"
    if abs(n) >= KIB:
        return f"{n / KIB:.2f} KiB"
    return f"{n:g} bytes"


def rate(bps: float | None) -> str:
    """Bits per second as the programs print them (2 decimals)."""
    if bps is None or bps < 0:
        return "-"
    for unit in ("bit/s", "kbit/s", "Mbit/s"):
        if bps < 1000:
            return f"{bps:.2f} {unit}"
        bps /= 1000
    return f"{bps:.2f} Gbit/s"


def rate_unit(peak_bps: float) -> tuple[str, float]:
    if peak_bps >= 1e6:
        return "Mbit/s", 1e6
    if peak_bps >= 1e3:
        return "kbit/s", 1e3
    return "bit/s", 1.0


def seconds(v: float | None) -> str:
    return "-" if v is None else f"{v:.4f} s"


def by_cause(total: int, causes: dict[str, int]) -> str:
    if not causes:
        return str(total)
    return f"{total} (" + ", ".join(f"{k} {v}" for k, v in causes.items()) + ")"


def _num(v, fmt="{}") -> str:
    return "-" if v is None else fmt.format(v)


def mstats(st, what="samples") -> str:
    if st is None:
        return "-"
    return f"{st['min']:.3f} / {st['avg']:.3f} / {st['max']:.3f} ms ({st['n']} {what})"


def sender_rows(s: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        ("bytes", str(s["bytes"])),
        ("transfer time", seconds(s["transfer_s"])
         + (" (first SYN to FIN acknowledged, sender's clock)" if s["transfer_s"] else "")),
        ("goodput", rate(s["goodput_bps"])
         + (" (file bytes / transfer time)" if s["goodput_bps"] else "")),
        ("segments sent", f"{s['segments_sent']} ({s['new_data_segments']} new data)"),
        ("segments received",
         f"{s['segments_received']} ({s['data_segments_received']} with data)"),
        ("retransmissions", by_cause(s["retransmissions"], s["retransmissions_by_cause"])),
        ("retransmitted bytes", str(s["retransmitted_bytes"])),
        ("timer expiries", str(s["timer_expiries"])),
        ("duplicate ACKs", _num(s["duplicate_acks"])),
        ("ACKs with SACK", str(s["sack_acks"])),
        ("zero-window ACKs", str(s["zero_window_acks"])),
        ("RTT min/avg/max", mstats(s["rtt_ms"])),
        ("final SRTT", _num(s["final_srtt_ms"], "{:.3f} ms")),
        ("final RTO", _num(s["final_rto_ms"], "{:.3f} ms")),
        ("max RTO backoff", _num(s["max_backoff"], "{:g}")),
        ("max bytes in flight", "-" if s["max_pipe"] is None else
         f"{human_bytes(s['max_pipe'])} (the pipe: sent, not yet ACKed or SACKed)"),
    ]


def receiver_rows(s: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        ("bytes", str(s["bytes"])),
        ("receiver's own time", "-" if s["own_time_s"] is None else
         seconds(s["own_time_s"]) + " (its SYN received to its exit: a process's time)"),
        ("segments sent", f"{s['segments_sent']} ({s['data_segments_sent']} with data)"),
        ("segments received",
         f"{s['segments_received']} ({s['data_segments_received']} with data)"),
        ("out-of-order segments", str(s["out_of_order"])),
        ("duplicate segments", str(s["duplicates"])),
        ("checksum drops", str(s["checksum_drops"])),
        ("max writer queue", _num(s["max_writer_queue"], "{:g} bytes")),
        ("min advertised window", "-" if s["min_window"] is None
         else human_bytes(s["min_window"])),
        ("zero windows advertised", str(s["zero_windows"])),
    ]


def emulator_rows(s: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        ("datagrams in", str(s["datagrams_in"])),
        ("forwarded", f"{s['forwarded']} ({s['bytes_forwarded']} bytes)"),
        ("dropped", by_cause(s["drops"], s["drops_by_cause"])),
        ("loss rate", _num(s["loss_rate"], "{:.2%}")),
        ("corrupted", str(s["corrupted"])),
        ("duplicated", str(s["duplicated"])),
        ("reordered", str(s["reordered"])),
        ("delay min/avg/max", mstats(s["delay_ms"], "datagrams")),
    ]


def format_summary(s: dict[str, Any]) -> str:
    """A two-column table: label, value."""
    head = f"== {s['trace']} ({s['role']}"
    if "mode" in s:
        head += f", mode {s['mode']}"
    if "mss" in s:
        head += f", mss {s['mss']}"
    head += ") =="
    rows = [("trace span", f"{s['trace_span_s']:.3f} s from its first line to its last "
                           f"({s['events']} lines)")]
    rows += {"sender": sender_rows, "receiver": receiver_rows,
             "emulator": emulator_rows}[s["role"]](s)
    if s["role"] != "emulator":
        rows.append(("drops", by_cause(s["drops"], s["drops_by_cause"])))
        rows.append(("final state", _num(s["final_state"])))
    if s.get("counters"):
        rows.append(("process counters", ", ".join(f"{k}={v}" for k, v in
                                                   s["counters"].items())))
    for x in s.get("disagreements", ()):
        rows.append(("DISAGREES", f"{x['figure']}: analysis {x['analysis']}, "
                                  f"the program's own summary {x['program']}"))
    width = max(len(label) for label, _ in rows)
    return "\n".join([head] + [f"  {label:<{width}}  {value}" for label, value in rows])
