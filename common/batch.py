"""Many equal-sized segments at once: the bulk path of both programs.

Both ends move most of their segments in batches of one size: the sender
reads the file in blocks of whole MSS-sized chunks, and the receiver gets up
to 64 datagrams of one size from a single ``recvmsg`` (UDP GRO).  Summing
and parsing those one at a time in Python costs more than everything else a
segment needs, so here numpy does it for the whole batch in one pass:

* :func:`chunk_residues`: the ones' complement residue of every chunk of a
  block (the sender keeps each chunk's residue for its first send and every
  resend);
* :func:`decode_burst`: checks the checksums of every datagram of a GRO
  buffer, reads their headers, and coalesces runs of consecutive data
  segments into one :class:`Run`, as Linux's GRO coalesces TCP segments;
  header-only segments (the receiver's ACKs, which the sender reads in GRO
  batches too) each stay a segment of their own.

Anything out of the ordinary (options other than the timestamps our sender
puts first, flags other than ACK or ACK+PSH, a bad checksum, a short tail)
goes through :func:`common.segment.decode`, so there is one set of rules
for what a valid segment is.  The results are those of
:func:`common.checksum.ones_residue` and :func:`common.segment.decode`,
segment by segment: tests/test_batch.py compares them on random input.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from .checksum import ones_residue
from .segment import (
    ACK,
    HEADER_LEN,
    PSH,
    TS_HEADER_LEN,
    TS_LEAD,
    Segment,
    SegmentError,
    decode,
)

_FOLD = 0xFFFF
#: data offset 5 (no options) in the high nibble, then the flags byte
_PLAIN_DATA = (0x5000 | ACK, 0x5000 | ACK | PSH)
#: data offset 8 (TS_HEADER_LEN): 12 option bytes, taken in bulk when they
#: are NOP, NOP and the RFC 7323 timestamps (what our sender puts on every
#: data segment)
_TS_DATA = (0x8000 | ACK, 0x8000 | ACK | PSH)
_TS_LEAD = np.frombuffer(TS_LEAD, dtype=np.uint8)


def residues(block, size: int, count: int) -> list[int]:
    """``ones_residue`` of each of the first ``count`` ``size``-byte pieces of
    ``block``.  ``size`` must be even (an odd piece would need padding)."""
    if size & 1:
        raise ValueError(f"pieces of {size} bytes: the size must be even")
    if count <= 0:
        return []
    sums = _word_sums(np.frombuffer(block, dtype=np.uint8, count=count * size), count)
    # The sums are of little-endian words; times 256 modulo 0xFFFF swaps the
    # residue's two bytes back (256 * x = x << 8, and 2**16 is 1 mod 0xFFFF).
    return (sums % _FOLD * 256 % _FOLD).tolist()


def chunk_residues(block, size: int) -> list[int]:
    """``ones_residue`` of each ``size``-byte chunk of ``block``, the last one
    possibly shorter: the whole chunks at once (when ``size`` is even), the
    rest one by one."""
    whole = len(block) // size if not size & 1 else 0
    out = residues(block, size, whole) if whole else []
    view = memoryview(block)
    out.extend(ones_residue(view[i:i + size]) for i in range(whole * size, len(block), size))
    return out


def _word_sums(data: np.ndarray, rows: int) -> np.ndarray:
    """Sum of each row's 16-bit words, read little-endian.

    The ones' complement sum does not care about byte order (RFC 1071 §2(B):
    summing swapped words gives the swapped sum), and native words sum about
    twice as fast as big-endian ones on the machines this runs on.  A row is
    at most one datagram, 32767 words, so 32 bits hold the sum."""
    words = data.view("<u2").reshape(rows, -1)
    return np.add.reduce(words, axis=1, dtype=np.uint32)


@dataclass(slots=True)
class Run:
    """``count`` in-sequence data segments of one datagram burst, as one.

    ``segment`` carries the first one's sequence number (and timestamps)
    and all their payloads joined; ``size`` is each one's payload length
    (the last may be shorter); ``ts``, with RFC 7323 timestamps, each one's
    (TSval, TSecr).  :meth:`split` gives the segments back one by one, for
    when they cannot be taken as a whole (see ReceiverCore.accepts_run).
    """

    segment: Segment
    count: int
    size: int
    ts: list | None = None

    def split(self) -> list[Segment]:
        seg = self.segment
        view = memoryview(seg.payload)
        out = []
        for i in range(self.count):
            part = view[i * self.size:(i + 1) * self.size]
            piece = Segment((seg.seq + i * self.size) & 0xFFFFFFFF, seg.ack,
                            seg.flags if i == self.count - 1 else ACK, seg.window, part,
                            seg.src_port, seg.dst_port)
            if self.ts is not None:
                piece.ts_val, piece.ts_ecr = self.ts[i]
            out.append(piece)
        return out


def _header_lens(rows, offflags: list[int], size: int) -> list[int]:
    """Each row's header length if it is plain data the bulk path takes (20
    bytes; 32 with NOP, NOP and the timestamps option first), else 0."""
    lens = [HEADER_LEN if o in _PLAIN_DATA else 0 for o in offflags]
    if size >= TS_HEADER_LEN and any(o in _TS_DATA for o in offflags):
        lead = (rows[:, HEADER_LEN:HEADER_LEN + 4] == _TS_LEAD).all(axis=1).tolist()
        for i, o in enumerate(offflags):
            if o in _TS_DATA and lead[i]:
                lens[i] = TS_HEADER_LEN
    return lens


def decode_burst(buf, n: int, size: int) -> tuple[list, list[tuple[str, int]]]:
    """The segments of the first ``n`` bytes of ``buf``: datagrams of ``size``
    bytes each, the last possibly shorter (a UDP GRO buffer).

    Returns ``(items, drops)``: ``items`` in arrival order, each a
    :class:`~common.segment.Segment` or a :class:`Run` of two or more; ``drops``
    a (reason, length) pair per datagram that is not a valid segment.
    """
    items: list = []
    drops: list[tuple[str, int]] = []
    view = memoryview(buf)[:n]
    full = n // size if size > HEADER_LEN and not size & 1 else 0
    if full >= 2:
        flat = np.frombuffer(buf, dtype=np.uint8, count=full * size)
        rows = flat.reshape(full, size)
        # Valid: the sum is ones' complement -0, whatever the byte order.
        sums = _word_sums(flat, full)
        good = ((sums % _FOLD == 0) & (sums != 0)).tolist()
        head = rows[:, :16].view(">u2").astype(np.uint32)
        seqs = ((head[:, 2] << 16) | head[:, 3]).tolist()
        acks = ((head[:, 4] << 16) | head[:, 5]).tolist()
        offflags = head[:, 6].tolist()
        wins = head[:, 7].tolist()
        hlens = _header_lens(rows, offflags, size)
        ts = None
        if TS_HEADER_LEN in hlens:
            words = rows[:, HEADER_LEN + 4:TS_HEADER_LEN].view(">u4")
            ts = list(zip(words[:, 0].tolist(), words[:, 1].tolist(), strict=True))
        plain_ack = ACK
        i = 0
        while i < full:
            h = hlens[i]
            if not (good[i] and h):
                _decode_one(view[i * size:(i + 1) * size], items, drops)
                i += 1
                continue
            step = size - h
            # A PSH ends a run, as it ends a GRO batch in Linux: so only the
            # last piece of a run may carry it, and split() gives it back.
            j = i + 1
            while (step and j < full and offflags[j - 1] & 0xFF == plain_ack and good[j]
                   and hlens[j] == h and acks[j] == acks[i]
                   and wins[j] == wins[i] and seqs[j] == (seqs[j - 1] + step) & 0xFFFFFFFF):
                j += 1
            flags = offflags[j - 1] & 0xFF
            ports = head[i, 0:2].tolist()
            seg = Segment(seqs[i], acks[i], flags, wins[i], rows[i:j, h:].tobytes(),
                          ports[0], ports[1])
            if h == TS_HEADER_LEN:
                seg.ts_val, seg.ts_ecr = ts[i]
            if j - i == 1:
                items.append(seg)
            else:
                items.append(Run(seg, j - i, step, ts[i:j] if h == TS_HEADER_LEN else None))
            i = j
        start = full * size
    else:
        start = 0
    step = size if size > 0 else max(n, 1)
    while start < n:
        _decode_one(view[start:start + step], items, drops)
        start += step
    if n == 0:
        _decode_one(view, items, drops)
    return items, drops


#: A header-only segment with the timestamps option after two NOPs (what a
#: receiver's ACKs are): ports, seq, ack, offset, flags, window, checksum,
#: urgent pointer, the option's lead bytes, TSval, TSecr.
_TS_ACK = struct.Struct("!HHIIBBHHH4sII")


def decode_acks(buf, n: int) -> tuple[list, list[tuple[str, int]]]:
    """The segments of the first ``n`` bytes of ``buf``: 32-byte datagrams
    (the last possibly shorter), a UDP GRO batch of a receiver's ACKs.
    Those that are header-only with the timestamps alone, and sum right, are
    read by one ``iter_unpack``; any other goes through decode().  Returns
    ``(items, drops)`` as :func:`decode_burst` does (never a Run)."""
    items: list = []
    drops: list[tuple[str, int]] = []
    view = memoryview(buf)[:n]
    full = n // TS_HEADER_LEN
    at = 0
    for (src, dst, seq, ack, off, flags, window, _c, _u, lead, ts_val, ts_ecr) in \
            _TS_ACK.iter_unpack(view[:full * TS_HEADER_LEN]):
        value = int.from_bytes(view[at:at + TS_HEADER_LEN], "big")
        if off == 0x80 and lead == TS_LEAD and value % _FOLD == 0 and value:
            seg = Segment(seq, ack, flags, window, b"", src, dst)
            seg.ts_val = ts_val
            seg.ts_ecr = ts_ecr
            items.append(seg)
        else:
            _decode_one(view[at:at + TS_HEADER_LEN], items, drops)
        at += TS_HEADER_LEN
    if at < n or n == 0:
        _decode_one(view[at:], items, drops)
    return items, drops


def _decode_one(data: memoryview, items: list, drops: list) -> None:
    try:
        items.append(decode(data))
    except SegmentError as exc:
        drops.append((exc.reason, len(data)))
