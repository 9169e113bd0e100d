"""Linux UDP segmentation offload, both ways (udp(7)): the sender, the
receiver and the link emulator share these.

- GSO: one ``sendmsg`` with a ``UDP_SEGMENT`` control message carries several
  datagrams of one size back to back (the last may be shorter); the kernel
  cuts them apart, so each still travels, and is lost, on its own.
  :class:`Batcher` sends a list of datagrams so, grouping those of one size.
- GRO: a socket with ``UDP_GRO`` set may hand such a batch to one
  ``recvmsg``, with the datagrams' size in a control message.  Over loopback
  a batch sent with GSO arrives whole on a GRO socket, and cut into datagrams
  on any other.

Elsewhere (or on a kernel that refuses) the options fail with an ``OSError``
and the callers fall back to one datagram per system call.
"""

from __future__ import annotations

import errno
import socket
import struct
import sys

from loguru import logger

SOL_UDP = 17
UDP_SEGMENT = 103
UDP_GRO = 104
#: At most this many datagrams in one GSO send (the kernel's UDP_MAX_SEGMENTS
#: is 64 on older kernels), and the whole send must fit one IP datagram.
GSO_MAX_SEGMENTS = 64
GSO_MAX_BYTES = 65000
#: Room for the UDP_GRO control message of a ``recvmsg``.
GRO_CMSG_SPACE = socket.CMSG_SPACE(4)
#: A GSO send failing with one of these means "not here": send one at a time.
GSO_REFUSED = frozenset((errno.EINVAL, errno.EIO, errno.ENOPROTOOPT, errno.EOPNOTSUPP))


def gso_cmsg(size: int) -> list[tuple[int, int, bytes]]:
    """The control message that makes one ``sendmsg`` datagrams of ``size`` bytes."""
    return [(SOL_UDP, UDP_SEGMENT, struct.pack("=H", size))]


def enable_gro(sock: socket.socket) -> bool:
    """Ask for GRO batches on ``sock``; False where the system has no UDP GRO."""
    try:
        sock.setsockopt(SOL_UDP, UDP_GRO, 1)
    except OSError:
        return False
    return True


def gro_size(anc, default: int) -> int:
    """The datagram size a GRO ``recvmsg`` reported in ``anc``, else ``default``
    (a lone datagram comes without one)."""
    for level, kind, data in anc:
        if level == SOL_UDP and kind == UDP_GRO:
            if len(data) >= 4:
                return struct.unpack("=i", data[:4])[0]
            return struct.unpack("=H", data[:2])[0]
    return default


def batch_reader(sock: socket.socket, buf: bytearray):
    """A reader of ``sock`` into ``buf``: ``recv(flags)`` returns (bytes
    read, datagram size, address); with UDP GRO (asked for here, where the
    system has it) one read may hold several datagrams of that size, back to
    back, the last possibly shorter.  An empty datagram reads as size 1."""
    if enable_gro(sock):
        def recv(flags: int) -> tuple:
            n, anc, _flags, addr = sock.recvmsg_into([buf], GRO_CMSG_SPACE, flags)
            return n, gro_size(anc, n) or 1, addr
    else:
        def recv(flags: int) -> tuple:
            n, addr = sock.recvfrom_into(buf, 0, flags)
            return n, n or 1, addr
    return recv


class Batcher:
    """Sends datagrams in order with as few system calls as the kernel allows:
    each run of consecutive datagrams of one size (the last may be shorter)
    goes by one GSO ``sendmsg``, up to GSO_MAX_SEGMENTS and GSO_MAX_BYTES;
    where GSO is refused it says so once and sends one at a time from then
    on.  The sender's data and the receivers' ACKs leave through it."""

    def __init__(self, sock: socket.socket, gso: bool = sys.platform.startswith("linux")):
        self.sock = sock
        self.gso = gso

    def send_each(self, datagrams: list[bytes], dest) -> None:
        """:meth:`send` for datagrams of one buffer each (the receivers' ACKs)."""
        self.send([(d,) for d in datagrams], [len(d) for d in datagrams], dest)

    def send(self, datagrams: list[tuple], sizes: list[int], dest) -> None:
        """Send ``datagrams`` (each a tuple of buffers, ``sizes`` bytes long)
        to ``dest``.  A failed send is logged at DEBUG and skipped: ICMP errors
        (port unreachable) surface on a later call, and the peer's timers and
        give-up time decide what a lost datagram means."""
        sock = self.sock
        i, n = 0, len(datagrams)
        while i < n:
            size = sizes[i]
            j = i + 1
            if self.gso:
                limit = min(n, i + min(GSO_MAX_SEGMENTS, GSO_MAX_BYTES // max(size, 1)))
                while j < limit and sizes[j] == size:
                    j += 1
                if j < limit and sizes[j] < size:
                    j += 1  # a shorter one may close the group
            try:
                if j - i > 1:
                    buffers = [buf for parts in datagrams[i:j] for buf in parts]
                    try:
                        sock.sendmsg(buffers, gso_cmsg(size), 0, dest)
                    except OSError as exc:
                        if exc.errno not in GSO_REFUSED:
                            raise
                        logger.info("UDP GSO refused ({}); sending datagrams one by one", exc)
                        self.gso = False
                        continue
                else:
                    sock.sendmsg(datagrams[i], [], 0, dest)
            except OSError as exc:
                logger.debug("send failed: {}", exc)
            i = j
