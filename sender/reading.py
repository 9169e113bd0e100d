"""The file the sender reads: opened, then read ahead in MSS-sized chunks."""

from __future__ import annotations

import hashlib
import os
import stat

from common.batch import chunk_residues
from common.resume import tag_of

PREFIX_BLOCK = 1 << 20


class FileReader:
    """The transmitter's file, read in MSS-sized chunks and hashed as read."""

    __slots__ = ("file", "path", "remaining", "hasher", "eof", "digest")

    def __init__(self, file, path: str, size: int | None):
        self.file = file
        self.path = path
        self.remaining = size  # None: read to EOF
        self.hasher = hashlib.sha256()
        self.eof = False
        self.digest: bytes | None = None  # once eof is set

    def skip_prefix(self, held: int, hasher) -> None:
        """A resumed transfer (common/resume.py): the first ``held`` bytes,
        whose SHA-256 so far is ``hasher``'s, are not sent; reading goes on
        after them, and the digest still covers the whole file."""
        self.file.seek(held)
        self.hasher = hasher
        if self.remaining is not None:
            self.remaining -= held

    def read(self, chunks: int, mss: int) -> tuple[list, list] | None:
        """Up to ``chunks`` chunks of ``mss`` bytes and their checksum
        residues (common.batch), or None at the end of the file."""
        want = chunks * mss
        if self.remaining is not None:
            want = min(want, self.remaining)
        block = self.file.read(want) if want else b""
        out = None
        if block:
            self.hasher.update(block)
            out = (list(_slices(memoryview(block), mss)), chunk_residues(block, mss))
            if self.remaining is not None:
                self.remaining -= len(block)
        if not block or self.remaining == 0:
            if self.remaining:
                raise OSError(f"{self.path} shrank while being sent: "
                              f"{self.remaining} bytes short")
            self.eof = True
            self.digest = self.hasher.digest()
        return out


def prefix_hasher(file, held: int, tag: bytes):
    """The SHA-256 (running) of the first ``held`` bytes of ``file`` if
    their tag (common/resume.py) is ``tag``, else None.  Read with pread:
    the file's position is the reader's."""
    hasher = hashlib.sha256()
    fd = file.fileno()
    pos = 0
    while pos < held:
        block = os.pread(fd, min(PREFIX_BLOCK, held - pos), pos)
        if not block:
            return None  # (shorter than its size said)
        hasher.update(block)
        pos += len(block)
    return hasher if tag_of(hasher.copy().digest()) == tag else None


def _slices(view: memoryview, mss: int):
    return (view[i:i + mss] for i in range(0, len(view), mss))


def open_input(path: str):
    """Open the file to send; its size, or None when it cannot be known (a pipe)."""
    f = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by the caller
    st = os.fstat(f.fileno())
    if stat.S_ISDIR(st.st_mode):
        f.close()
        raise IsADirectoryError(f"{path} is a directory")
    size = st.st_size if stat.S_ISREG(st.st_mode) else None
    return f, size
