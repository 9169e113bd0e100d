"""``stcp-recv --resume``: the prefix ``FILE.part`` holds, offered to the sender.

An interrupted transfer (the sender killed, the link lost beyond the give-up
time) leaves ``FILE.part`` when the receiver ran with ``--resume`` (or
``--keep-partial``): the bytes the writer wrote there, in order, synced on the
way out.  Started again with ``--resume``, the receiver reads them back,
hashes them, and offers their length and tag in its SYN-ACK
(common/resume.py, docs/PROTOCOL.md §9).  Nothing is trusted for having
been written: the tag is of what is on the disk now, and the sender
compares it with its own file.  The sender's answer decides, before any
data is written: keep the prefix (and carry its hash on) or start over.
"""

from __future__ import annotations

import hashlib
import os

from common.resume import MAX_RESUME, tag_of

READ_BLOCK = 1 << 20


class Prefix:
    """The bytes held in ``FILE.part``: their length and running SHA-256."""

    __slots__ = ("held", "hasher")

    def __init__(self, held: int, hasher):
        self.held = held
        self.hasher = hasher

    @property
    def offer(self) -> tuple[int, bytes] | None:
        """What the SYN-ACK offers: (bytes held, tag), or None for nothing."""
        return (self.held, tag_of(self.hasher.copy().digest())) if self.held else None


def read_prefix(part_path: str) -> Prefix:
    """Hash what ``part_path`` holds (nothing if it is missing, empty or
    larger than the option can say)."""
    hasher = hashlib.sha256()
    try:
        f = open(part_path, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return Prefix(0, hasher)
    with f:
        if os.fstat(f.fileno()).st_size > MAX_RESUME:
            return Prefix(0, hashlib.sha256())
        held = 0
        while block := f.read(READ_BLOCK):
            hasher.update(block)
            held += len(block)
    return Prefix(held, hasher)


def open_part(part_path: str, prefix: Prefix | None):
    """``FILE.part`` for the writer: emptied, or (with a prefix held) kept
    and positioned after it until the sender's answer says which."""
    if prefix is None or not prefix.held:
        return open(part_path, "wb")  # noqa: SIM115 - closed by the writer
    f = open(part_path, "r+b")  # noqa: SIM115 - closed by the writer
    f.seek(prefix.held)
    return f


def settle(out, prefix: Prefix | None, resume_at: int | None):
    """The sender answered (``resume_at``, from the core): the hasher the
    writer carries on with, and how many bytes of the file it keeps.  With
    0, ``FILE.part`` is emptied and the file written from byte 0."""
    if prefix is None or not prefix.held:
        return hashlib.sha256(), 0
    if resume_at == prefix.held:
        return prefix.hasher, prefix.held
    out.seek(0)
    out.truncate(0)
    return hashlib.sha256(), 0


def sync_kept(out) -> None:
    """On the way out of a transfer that failed: what was written goes to
    the disk, for a later --resume to offer."""
    try:
        out.flush()
        os.fsync(out.fileno())
    except (OSError, ValueError):
        pass  # (closed, or the disk failed: the tag will tell)
