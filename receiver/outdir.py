"""The server's output directory: where a connection's file may go, and only there.

``common.names.check_name`` decides on the bytes whether an offered name is
a plain base name.  This module does what a string test cannot: it works
through a descriptor of the directory (every open, rename and unlink is
relative to it, with a name that has no ``/``), refuses a name whose path
resolves anywhere but directly inside the directory (a symbolic link
already there, pointing outside, say), and keeps the names live
connections are writing, so two connections never write one file.

Temporary files are ``.stcp-N.part``: a leading dot, which no offered name
may have, so they never collide with a name, and a failed connection leaves
nothing that looks complete.  Used by the network thread (claims) and the
writer threads (commits); ``lock`` guards the set of names in use.
"""

from __future__ import annotations

import itertools
import os
import re
import threading
import time

from common.names import BadName, check_name

#: A server's temporary file: .stcp-PID-N.part (see open_part).
_PART = re.compile(r"\.stcp-([0-9]+)-[0-9]+\.part")


class Refused(OSError):
    """A name this directory will not take; ``str()`` is the reason for the RST."""


class OutDir:
    def __init__(self, path: str, force: bool = False):
        self.path = os.path.realpath(path)
        self.force = force
        self.fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self.lock = threading.Lock()
        self.in_use: set[str] = set()
        self._ids = itertools.count(1)
        self.stale_removed = self._remove_stale()

    def _remove_stale(self) -> int:
        """Remove the temporary files of servers that are gone (killed, say):
        ``.stcp-PID-N.part`` whose PID runs no process.  A live PID's are
        left alone, whoever it is now.  How many were removed."""
        n = 0
        for entry in os.scandir(self.fd):
            m = _PART.fullmatch(entry.name)
            if not m or int(m.group(1)) == os.getpid():
                continue
            try:
                os.kill(int(m.group(1)), 0)
                continue  # alive (a server, or a process that took its PID)
            except ProcessLookupError:
                pass
            except OSError:
                continue  # someone else's process: alive
            self.remove(entry.name)
            n += 1
        return n

    def close(self) -> None:
        os.close(self.fd)

    # ------------------------------------------------------------------ names
    def claim(self, raw: bytes | None) -> str:
        """The name a new connection writes under: ``raw`` checked and free,
        or a made-up one when ``raw`` is None; Refused otherwise."""
        if raw is None:
            return self._generated()
        try:
            name = check_name(raw)
        except BadName as exc:
            raise Refused(f"name refused: {exc}") from None
        with self.lock:
            if name in self.in_use:
                raise Refused(f"name refused: another connection is writing {name}")
            self._check_place(name)
            self.in_use.add(name)
        return name

    def release(self, name: str) -> None:
        with self.lock:
            self.in_use.discard(name)

    def _check_place(self, name: str) -> None:
        """Resolve DIR/name: it must land directly inside DIR and, unless
        --force, hold nothing yet; never a symbolic link, even with --force."""
        full = os.path.join(self.path, name)
        if os.path.islink(full):
            raise Refused(f"name refused: {name} is a symbolic link in the directory")
        if os.path.dirname(os.path.realpath(full)) != self.path:
            raise Refused(f"name refused: {name} resolves outside the directory")
        try:
            os.lstat(name, dir_fd=self.fd)
        except FileNotFoundError:
            return
        if not self.force:
            raise Refused(f"name refused: {name} exists (the server runs without --force)")
        if not os.path.isfile(full):
            raise Refused(f"name refused: {name} exists and is not a regular file")

    def _generated(self) -> str:
        with self.lock:
            while True:
                name = time.strftime("received-%Y%m%d-%H%M%S-") + f"{next(self._ids)}"
                if name not in self.in_use and not os.path.lexists(
                        os.path.join(self.path, name)):
                    self.in_use.add(name)
                    return name

    # ------------------------------------------------------------------ files
    def open_part(self):
        """A new temporary file inside DIR: (its name, the file open for writing)."""
        while True:
            part = f".stcp-{os.getpid()}-{next(self._ids)}.part"
            try:
                fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                             | os.O_CLOEXEC, 0o644, dir_fd=self.fd)
            except FileExistsError:
                continue
            return part, os.fdopen(fd, "wb")

    def commit(self, part: str, name: str) -> None:
        """Rename the verified ``part`` to ``name``, both inside DIR; the
        place is checked again (a link may have appeared since the SYN)."""
        with self.lock:
            self._check_place(name)
            os.rename(part, name, src_dir_fd=self.fd, dst_dir_fd=self.fd)
        os.fsync(self.fd)

    def remove(self, part: str) -> None:
        try:
            os.unlink(part, dir_fd=self.fd)
        except FileNotFoundError:
            pass
