"""A trace turned into a pcap after the fact (``stcp-analyze TRACE --pcap``).

A sender's or a receiver's trace holds every segment's seq, ack, flags,
payload length, window field, stream offset and (received by the sender)
its SACK blocks, but not its payload bytes nor most options.  Each ``send``
and ``recv`` event becomes one TCP segment of one connection between
10.0.0.1 (the sender) and 10.0.0.2 (the receiver), or fd00::1 and fd00::2
when the trace's meta says the connection ran over IPv6 (``ip`` 6), written
with ``runtime.pcap.PcapWriter``:

* payloads are zero bytes of the segment's real length (so lengths, sequence
  analysis and Wireshark's retransmission flags are right; checksums are
  those of the zeros, and correct for them);
* SYNs carry the MSS from the meta line and SACK-permitted in ``sr`` mode;
  ACKs received by the sender carry their SACK blocks; nothing else (window
  scale, the file-size and digest options) is in the trace, so the window
  field is the raw, unscaled value;
* timestamps are the trace's monotonic times shifted so that the last line
  falls at the trace file's modification time (when it was last written).
"""

from __future__ import annotations

import os
from pathlib import Path

from common.segment import ACK, FIN, PSH, RST, SYN, Segment, encode

from .derive import MOD, derive
from .load import Trace

SENDER = ("10.0.0.1", 40001)
RECEIVER = ("10.0.0.2", 40002)
#: The same two ends for a trace of an IPv6 connection (unique local addresses).
SENDER6 = ("fd00::1", 40001)
RECEIVER6 = ("fd00::2", 40002)
_FLAG_BITS = {"S": SYN, "A": ACK, "F": FIN, "R": RST, "P": PSH}


class TraceToPcapError(Exception):
    """A trace that cannot be made into a pcap (an emulator's, say)."""


def _flags(letters: str | None) -> int:
    bits = 0
    for ch in letters or "":
        bits |= _FLAG_BITS.get(ch, 0)
    return bits


def _segment(tr: Trace, ev: str, i: int, isn: int | None) -> Segment:
    c = tr[ev]
    flags = _flags(c["flags"][i])
    seg = Segment(seq=(c["seq"][i] or 0) % MOD, ack=(c["ack"][i] or 0) % MOD, flags=flags,
                  window=int(c["win"][i] or 0) & 0xFFFF, payload=bytes(c["len"][i] or 0))
    if flags & SYN:
        mss = tr.meta.get("mss")
        if isinstance(mss, int) and 0 < mss < 0x10000:
            seg.mss = mss
        seg.sack_permitted = str(tr.meta.get("mode", "sr")).lower() != "gbn"
        # A SYN's payload is the name option's name (its bytes are not traced).
        seg.name_follows = bool(c["len"][i]) and not flags & ACK
    if ev == "recv" and isn is not None:
        blocks = c["sack"][i] or ()
        seg.sack = tuple(((isn + 1 + a) % MOD, (isn + 1 + b) % MOD) for a, b in blocks[:4])
    return seg


def trace_to_pcap(tr: Trace, out: str | Path) -> int:
    """Write ``tr`` as a pcap to ``out``; returns the number of segments."""
    from runtime.pcap import PcapWriter

    if tr.role not in ("sender", "receiver"):
        raise TraceToPcapError(f"{tr.path}: a {tr.role} trace has no TCP segments to write; "
                               "give a sender's or a receiver's trace")
    ends = (SENDER6, RECEIVER6) if tr.meta.get("ip") == 6 else (SENDER, RECEIVER)
    local, remote = ends if tr.role == "sender" else ends[::-1]
    # SACK blocks are traced as offsets: back to wire numbers from the origin.
    isn = derive(tr).origin if tr.role == "sender" else None
    rows = sorted([(t, 0, i) for i, t in enumerate(tr["send"].t)]
                  + [(t, 1, i) for i, t in enumerate(tr["recv"].t)])
    try:
        mtime = os.stat(tr.path).st_mtime
    except OSError:
        mtime = None
    shift = (mtime - tr.t_last) if (mtime is not None and tr.t_last is not None) else 0.0
    out = Path(out)
    part = out.with_name(out.name + ".part")
    with open(part, "wb") as f, PcapWriter(f, local=local, remote=remote) as w:
        for t, kind, i in rows:
            ev = "send" if kind == 0 else "recv"
            w.write(t + shift, kind == 0, encode(_segment(tr, ev, i, isn)))
        n = w.packets
    part.replace(out)
    return n
