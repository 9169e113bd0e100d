"""Structured trace: one JSON object per line, one line per event.

The trace is what the analysis program, the plots and the summaries are made
from, so its shape is a contract.  Every line has:

``t``
    seconds, from ``time.monotonic()`` of the writing process (the caller
    passes it in; nothing here reads a clock);
``th``
    the name of the thread that produced the event;
``ev``
    the event name; the other keys depend on it (see ``EVENTS``).

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

#: Event names and the keys they carry (besides ``t``, ``th`` and ``ev``).
EVENTS: dict[str, str] = {
    "meta": "role, and the run's settings (mode, mss, isn, window, file size...)",
    "send": "seq, ack, flags, len, win, off (stream offset of the payload), "
    "rexmit (absent, or why: timeout|fast|sack|probe)",
    "recv": "seq, ack, flags, len, win, off, sack (list of [left, right) offsets)"
    "; emulator: n, len, and with -s qp, qb (datagrams, bytes in its queue on arrival)",
    "drop": "why (checksum|malformed|foreign|window|old|...), len; "
    "emulator: n (datagram index), why (noport|list|blackhole|burst|loss|queue|red|codel|"
    "send_error), sojourn (codel: seconds it waited in the queue)",
    "timeout": "rto (the RTO that expired), n (segments resent)",
    "fast_rexmit": "off, len, why (dupack|sack)",
    "rtt": "sample, srtt, rttvar, rto",
    "rto": "rto, backoff",
    "inflight": "bytes (outstanding), rwnd (peer's window in bytes), acked (stream offset)",
    "rwnd": "win (advertised bytes), queue (bytes waiting for the writer), ooo (bytes held "
    "out of order)",
    "write": "bytes, queue (bytes still waiting for the writer after this write)",
    "state": "old, new",
    "summary": "the final counters of the process",
    # emulator
    "fwd": "n, len, delay (seconds the datagram was held), sojourn (with -s: seconds it "
    "waited in the queue before the link), port (with --forward-by-port)",
    "corrupt": "n, bits (flipped; the datagram is forwarded, not dropped)",
    "dup": "n",
    "reorder": "n",
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


def read_trace(lines) -> list[dict[str, Any]]:
    """Parse an iterable of trace lines; blank lines are skipped."""
    return [json.loads(line) for line in lines if line.strip()]
