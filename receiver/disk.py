"""The receiver's disk: free space, the early write-back, the rename.

What the writer thread (receiver/app.py) calls around its writes: how much
room the disk has, asking Linux to start writing back what was written
(``sync_file_range``), and the rename of ``FILE.part`` over a file that
``--force`` replaces.
"""

from __future__ import annotations

import ctypes
import os
import stat
import sys

#: The writer asks the kernel to start writing to disk whenever this much
#: more has been written (Linux ``sync_file_range``, which does not wait).
#: Left to itself the kernel starts only after 30 s or when much memory is
#: dirty, so the FIN's fsync would wait for the whole file (0.5 ms per MiB
#: here), after the last byte arrived.  Each call costs about 0.1 ms plus
#: the pages it hands over: 1 MiB steps cost the writer no more than 2 MiB
#: ones did (7-8 ms of calls per 64 MiB either way) and halve what the last
#: fsync waits for (a 4 MiB file: 1.8-2.0 ms -> 0.7-1.0 ms); 512 KiB steps
#: added calls that sometimes blocked for ms.
WRITEBACK_BYTES = 1024 * 1024


def free_space(path: str) -> int | None:
    try:
        st = os.statvfs(os.path.dirname(os.path.abspath(path)))
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def size_limit(free: int | None, max_size: int | None) -> int | None:
    """The largest file a receiver takes (ReceiverCore's ``size_limit``):
    the free space, capped by --max-size; None when neither is known."""
    if max_size is None:
        return free
    return max_size if free is None else min(free, max_size)


SYNC_FILE_RANGE_WRITE = 2  # <linux/fs.h>: start write-out, do not wait


class Writeback:
    """Asks for the write-back of each further ``every`` bytes written, in order."""

    __slots__ = ("start", "every", "started_to")

    def __init__(self, start, every: int):
        self.start = start  # start(fd, offset, nbytes), or None: leave it to the kernel
        self.every = every
        self.started_to = 0  # write-back asked for up to here

    def written(self, fd: int, total: int) -> None:
        """``total`` bytes of the file are written."""
        if self.start is not None and total - self.started_to >= self.every:
            self.start(fd, self.started_to, total - self.started_to)
            self.started_to = total


def writeback_starter():
    """``start(fd, offset, nbytes)``: begin writing that range to disk and
    return at once (sync_file_range(2), Linux); None elsewhere.  Errors are
    not reported here: the fsync at the end reports them."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    fn.restype = ctypes.c_int

    def start(fd: int, offset: int, nbytes: int) -> int:
        return fn(fd, offset, nbytes, SYNC_FILE_RANGE_WRITE)

    return start


def hold_replaced(path: str) -> int | None:
    """A descriptor of the regular file at ``path`` (--force: the file the
    verified one replaces), or None.  Renaming over a file frees it within
    the rename while nothing else holds it: the kernel drops its cached
    pages and its blocks, 1.2-1.4 ms for a 4 MiB file here, more for a
    larger one, and the FIN-ACK would wait for that.  Held open across the
    rename, it is freed when this descriptor is closed, after the FIN-ACK
    has gone.  Only a regular file, and not through a symbolic link (the
    rename replaces the link, not what it points to): opening a FIFO or a
    device can block or act."""
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return None
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None  # nothing there, or not ours to read: rename as it is
    if not stat.S_ISREG(os.fstat(fd).st_mode):  # (swapped since the lstat)
        os.close(fd)
        return None
    return fd


def fsync_dir(path: str) -> None:
    fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
