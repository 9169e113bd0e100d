"""Sequence numbers modulo 2**32 (RFC 9293 §3.4) and their unwrapping.

The protocol cores work on absolute stream offsets (plain Python integers:
byte 0 is the first byte of the file, the SYN is at -1 and the FIN at the
file size).  Only the wire carries 32-bit sequence numbers; ``wrap`` and
``unwrap`` convert at that boundary, as CS144's ``Wrap32`` does.
"""

from __future__ import annotations

MOD = 1 << 32
MASK = MOD - 1
HALF = 1 << 31


def seq_diff(a: int, b: int) -> int:
    """The signed distance ``a - b`` in [-2**31, 2**31)."""
    d = (a - b) & MASK
    return d - MOD if d >= HALF else d


def wrap(offset: int, base: int) -> int:
    """The wire sequence number of stream ``offset``; ``base`` is ISN + 1."""
    return (base + offset) & MASK


def unwrap(seqno: int, base: int, checkpoint: int) -> int:
    """The stream offset closest to ``checkpoint`` whose wire number is ``seqno``."""
    return checkpoint + seq_diff(seqno, (base + checkpoint) & MASK)
