"""A socket that records its system calls in the thread trace
(``runtime/threadtrace.py``): each send and receive is a span of the thread
that made it, with the datagrams and bytes it moved.  A GSO send counts the
datagrams the kernel cuts it into, a GRO receive the datagrams it holds; a
non-blocking receive that found nothing is recorded with ``datagrams`` 0
(the reads that end a burst).  Everything else goes to the socket as is."""

from __future__ import annotations

import struct
import time

from .udpgso import SOL_UDP, UDP_SEGMENT, gro_size

_now = time.monotonic_ns


def _gso_size(ancdata) -> int | None:
    for level, kind, data in ancdata or ():
        if level == SOL_UDP and kind == UDP_SEGMENT:
            return struct.unpack("=H", data[:2])[0]  # as gso_cmsg packs it
    return None


class TracedSocket:
    __slots__ = ("_sock", "_rec")

    def __init__(self, sock, rec):
        self._sock = sock
        self._rec = rec

    def __getattr__(self, name):
        return getattr(self._sock, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._sock.close()

    def _record(self, name: str, start: int, args: dict) -> None:
        self._rec.buffer().add(("S", name, start, _now(), args))

    def _failed(self, name: str, start: int, exc: BaseException) -> None:
        if isinstance(exc, BlockingIOError):
            self._record(name, start, {"datagrams": 0, "bytes": 0})
        else:
            self._record(name, start, {"error": type(exc).__name__})

    def sendmsg(self, buffers, *rest):
        start = _now()
        try:
            n = self._sock.sendmsg(buffers, *rest)
        except BaseException as exc:
            self._failed("sendmsg", start, exc)
            raise
        size = _gso_size(rest[0]) if rest else None
        self._record("sendmsg", start, {"datagrams": -(-n // size) if size else 1, "bytes": n})
        return n

    def sendto(self, data, *rest):
        start = _now()
        try:
            n = self._sock.sendto(data, *rest)
        except BaseException as exc:
            self._failed("sendto", start, exc)
            raise
        self._record("sendto", start, {"datagrams": 1, "bytes": n})
        return n

    def recvfrom_into(self, buf, *rest):
        start = _now()
        try:
            n, addr = self._sock.recvfrom_into(buf, *rest)
        except BaseException as exc:
            self._failed("recvfrom", start, exc)
            raise
        self._record("recvfrom", start, {"datagrams": 1, "bytes": n})
        return n, addr

    def recvmsg_into(self, buffers, *rest):
        start = _now()
        try:
            n, anc, flags, addr = self._sock.recvmsg_into(buffers, *rest)
        except BaseException as exc:
            self._failed("recvmsg", start, exc)
            raise
        size = gro_size(anc, n) or 1
        self._record("recvmsg", start, {"datagrams": -(-n // size) or 1, "bytes": n})
        return n, anc, flags, addr
