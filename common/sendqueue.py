"""The bytes handed to the sender core and not yet sent.

The sending program reads the file outside the lock, cuts it into
MSS-sized chunks (each with its ones' complement residue, worked out in bulk
by :func:`common.batch.chunk_residues`) and hands them over under the lock;
from then on they belong to the core, which takes them from the left as the
windows allow.  The program never touches them again.
"""

from __future__ import annotations

from collections import deque

from .batch import chunk_residues
from .checksum import ones_residue
from .scoreboard import Outstanding


class SendQueue:
    """MSS-sized chunks waiting for their first send, and the end of the stream."""

    __slots__ = ("chunks", "residues", "eof", "digest")

    def __init__(self):
        self.chunks: deque = deque()
        self.residues: deque[int] = deque()  # each chunk's ones_residue
        self.eof = False  # no chunk will follow those queued
        self.digest: bytes | None = None  # the stream's SHA-256, once eof is set

    def __len__(self) -> int:
        return len(self.chunks)

    def push(self, chunks, residues=None, mss: int | None = None) -> None:
        """Queue ``chunks`` (with their residues, or None to work them out);
        cut again to ``mss`` if they are longer."""
        if self.eof:
            raise ValueError("data after the end of the stream")
        chunks = list(chunks)
        if residues is None:
            residues = [ones_residue(c) for c in chunks]
        self.chunks.extend(chunks)
        self.residues.extend(residues)
        if mss is not None and chunks and len(chunks[0]) > mss:
            self.fit(mss)

    def finish(self, digest: bytes | None) -> None:
        """The stream ends after the chunks queued; ``digest`` is its SHA-256."""
        self.eof = True
        self.digest = digest

    def fit(self, mss: int) -> None:
        """Cut the queued chunks (and their residues) anew, ``mss`` bytes each:
        they were read before the peer's smaller MSS was known."""
        if not self.chunks or all(len(c) <= mss for c in self.chunks):
            return
        held = b"".join(self.chunks)
        view = memoryview(held)
        self.chunks = deque(view[i:i + mss] for i in range(0, len(held), mss))
        self.residues = deque(chunk_residues(held, mss))

    def take_run(self, off: int, limit: int, max_new: int, now: float) -> list[Outstanding]:
        """Records for the chunks that fit, one after another from offset
        ``off`` up to ``limit``, at most ``max_new`` of them, sent at ``now``."""
        fresh = []
        chunks = self.chunks
        residues = self.residues
        while chunks and len(fresh) < max_new:
            chunk = chunks[0]
            if off + len(chunk) > limit:
                break
            chunks.popleft()
            rec = Outstanding(off, chunk, residues.popleft(), False, now, False)
            fresh.append(rec)
            off = rec.end
        return fresh

    def take_byte(self) -> tuple[memoryview | bytes, int]:
        """The first byte alone (a zero-window probe), with its residue."""
        chunk = self.chunks[0]
        rest = chunk[1:]
        if len(rest):
            self.chunks[0] = rest
            self.residues[0] = ones_residue(rest)
        else:
            self.chunks.popleft()
            self.residues.popleft()
        return chunk[:1], ones_residue(chunk[:1])
