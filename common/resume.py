"""Resuming an interrupted transfer (docs/PROTOCOL.md §9, "Resume").

A receiver that holds the first N bytes of the file from an earlier,
interrupted transfer offers them in its SYN-ACK: N and the first 6 bytes of
their SHA-256 (the *tag*).  The sender compares that with the first N bytes
of its own file and answers in its ACK of the SYN-ACK with the offset it
starts at: N (resumed) or 0 (sent whole).  File byte k keeps its sequence
number (ISN + 1 + L + k) either way; a resumed transfer simply never sends
bytes 0 .. N-1.  The cores count stream offsets from the point the transfer
starts at, so both move their ``base`` on by N and take N off the size.

What the receiver does when the answer never reaches it (the ACK lost, or a
sender that does not know the option) is :func:`decide`'s.
"""

from __future__ import annotations

import hashlib

from .segment import MAX_RESUME, RESUME_TAG_LEN, Segment

__all__ = ["MAX_RESUME", "prefix_tag", "tag_of", "decide"]


def tag_of(sha256_digest: bytes) -> bytes:
    """The tag of a prefix whose whole SHA-256 is ``sha256_digest``."""
    return bytes(sha256_digest[:RESUME_TAG_LEN])


def prefix_tag(data: bytes) -> bytes:
    """The tag of the bytes ``data`` (the held prefix)."""
    return tag_of(hashlib.sha256(data).digest())


def decide(seg: Segment, base: int, held: int) -> int | None:
    """The offset the sender starts at, as the receiver that offered
    ``held`` bytes learns it from ``seg``, the first segment that
    acknowledges its SYN (``base``: the wire number of file byte 0);
    None when ``seg`` cannot tell (the receiver drops it and sends its
    SYN-ACK again, which a sender that knows the option answers again).

    - the answer option says it: N or 0 (anything else is taken as 0:
      the receiver then starts over, which is always safe);
    - no answer, and the segment starts before N (at byte 0: a third ACK
      or the first data of a sender that does not know the option): a
      sender that resumed never sends anything there, so it did not: 0;
    - no answer, at N or beyond: a resuming sender whose ACK was lost, or
      one sending the whole file whose first segments were lost: unknown.
    """
    if seg.resume_at is not None:
        return held if seg.resume_at == held else 0
    off = (seg.seq - base) & 0xFFFFFFFF
    if off < held:
        return 0
    return None
