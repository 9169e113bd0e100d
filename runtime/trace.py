"""Structured trace: one JSON object per line, one line per event.

The trace is what the analysis program, the plots and the summaries are made
from, so its shape is a contract.  Every line has:

``t``
    seconds, from ``time.monotonic()`` of the writing process (the caller
    passes it in; nothing here reads a clock);
``th``
    the name of the thread that produced the event;
``ev``
    the event name; the other keys depend on it and on the writer (see
    ``EVENTS``, and docs/TRACE.md for what each means).

The first line of every trace is a ``meta`` event naming the role
(``sender``, ``receiver`` or ``emulator``) and the settings of the run.

This module formats and writes lines to a file object the caller opened; it
opens nothing itself.  Writing is serialised by a lock of its own, which is
never held while the protocol's lock is held by the same call path.
"""

from __future__ import annotations

import json
import threading
from typing import IO, Any

from common.segment import flag_str
from common.seq import unwrap

#: Every event, who writes it (``role``) and the keys it carries besides
#: ``t``, ``th`` and ``ev``; what each means is in docs/TRACE.md.  A key may
#: be absent where the page says so (``off``, ``sack``, ``rexmit``).
EVENTS: dict[str, dict[str, tuple[str, ...]]] = {
    "meta": {
        "sender": ("role", "mode", "mss", "window", "isn", "file_size", "path", "min_rto",
                   "max_rto", "cc", "ip"),
        "receiver": ("role", "mode", "mss", "capacity", "isn", "path", "ip"),
        "emulator": ("role", "impairments", "accept", "out", "bind", "seed", "seeded"),
    },
    "send": {
        "sender": ("seq", "ack", "flags", "len", "win", "off", "rexmit"),
        "receiver": ("seq", "ack", "flags", "len", "win", "sack"),
    },
    "recv": {
        "sender": ("seq", "ack", "flags", "len", "win", "sack"),
        "receiver": ("seq", "ack", "flags", "len", "win", "off"),
        "emulator": ("n", "len", "qp", "qb"),
    },
    "drop": {
        "sender": ("why", "len"),
        "receiver": ("why", "len"),
        "emulator": ("n", "why", "len", "sojourn"),
    },
    "state": {"sender": ("old", "new"), "receiver": ("old", "new")},
    "timeout": {"sender": ("rto", "n")},
    "fast_rexmit": {"sender": ("off", "len", "why")},
    "rtt": {"sender": ("sample", "srtt", "rttvar", "rto")},
    "rto": {"sender": ("rto", "backoff")},
    "inflight": {"sender": ("bytes", "pipe", "cwnd", "rwnd", "acked")},
    "cwnd": {"sender": ("cwnd", "ssthresh", "pipe", "state")},
    "waiting": {"sender": ("what", "silent", "next", "give_up", "try", "tries"),
                "receiver": ("what", "silent", "give_up")},
    "rwnd": {"receiver": ("win", "queue", "ooo")},
    "write": {"receiver": ("bytes", "queue")},
    "summary": {
        "sender": ("counters",),
        "receiver": ("counters",),
        "emulator": ("received", "bytes_received", "forwarded", "bytes_forwarded", "dropped",
                     "dropped_total", "queue_drops", "corrupted", "bits_flipped",
                     "duplicated", "reordered", "reorder_timeouts", "delayed", "mean_delay",
                     "max_delay", "send_errors", "dup_send_errors", "unsent_at_exit",
                     "ignored_foreign", "batched_in", "batched_out", "duration", "queue",
                     "seed", "signal"),
    },
    "fwd": {"emulator": ("n", "len", "delay", "sojourn", "port")},
    "corrupt": {"emulator": ("n", "bits")},
    "dup": {"emulator": ("n", "len", "delay", "sojourn", "port")},
    "reorder": {"emulator": ("n",)},
}


class Tracer:
    """Writes trace events as JSON lines to an open text file.

    Lines are formatted by hand for the common value types (an f-string per
    field is about four times cheaper than the json module's encoder, and a
    traced run writes one line per segment on each side); anything else goes
    through ``json.dumps``.  The output is plain JSON either way.
    """

    __slots__ = ("_file", "_lock", "_names")

    def __init__(self, file: IO[str]):
        self._file = file
        self._lock = threading.Lock()
        self._names: dict[str, str] = {}

    def emit(self, t: float, ev: str, **fields: Any) -> None:
        name = threading.current_thread().name
        quoted = self._names.get(name)
        if quoted is None:
            quoted = self._names[name] = json.dumps(name)
        parts = [f'{{"t":{t:.6f},"th":{quoted},"ev":"{ev}"']
        for key, value in fields.items():
            kind = type(value)
            if kind is int:
                parts.append(f',"{key}":{value}')
            elif kind is str and value.isalnum():
                parts.append(f',"{key}":"{value}"')
            else:
                parts.append(f',"{key}":{json.dumps(value)}')
        parts.append("}\n")
        line = "".join(parts)
        with self._lock:
            self._file.write(line)

    def flush(self) -> None:
        with self._lock:
            self._file.flush()


def segment_fields(seg) -> dict[str, Any]:
    """The fields every ``send`` and ``recv`` event of a segment carries
    (docs/TRACE.md); the caller adds its own (``off``, ``rexmit``, ``sack``)."""
    return {"seq": seg.seq, "ack": seg.ack, "flags": flag_str(seg.flags),
            "len": len(seg.payload), "win": seg.window}


def sack_offsets(blocks, base: int, edge: int) -> list[list[int]]:
    """SACK blocks as the trace writes them: [left, right) stream offsets,
    unwrapped from the wire's sequence numbers near ``edge``."""
    return [[unwrap(left, base, edge), unwrap(right, base, edge)] for left, right in blocks]


def read_trace(lines) -> list[dict[str, Any]]:
    """Parse an iterable of trace lines; blank lines are skipped."""
    return [json.loads(line) for line in lines if line.strip()]
