"""The file the sender reads: opened, then read ahead in MSS-sized chunks."""

from __future__ import annotations

import hashlib
import os
import stat

from common.batch import chunk_residues


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
