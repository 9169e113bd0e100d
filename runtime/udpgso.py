"""Linux UDP segmentation offload, both ways (udp(7)): the sender, the
receiver and the link emulator share these.

- GSO: one ``sendmsg`` with a ``UDP_SEGMENT`` control message carries several
  datagrams of one size back to back (the last may be shorter); the kernel
  cuts them apart, so each still travels, and is lost, on its own.
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
