"""runtime/udpgso.py: the Batcher that sends the sender's data and the
receivers' ACKs, and the reader that takes GRO batches.  The grouping is
checked on a fake socket (which system calls, with which control message);
what the wire carries is checked on loopback sockets: one datagram per
datagram given, whichever way it was sent."""

from __future__ import annotations

import errno
import socket
import struct

import pytest

from runtime.udpgso import (
    GSO_MAX_SEGMENTS,
    SOL_UDP,
    UDP_SEGMENT,
    Batcher,
    batch_reader,
    enable_gro,
)

DEST = ("127.0.0.1", 9)  # (the fake socket sends nothing)


class FakeSock:
    """Records sendmsg calls; refuses GSO or fails sends when told to."""

    def __init__(self, refuse_gso: int = 0, fail_at: set[int] = frozenset()):
        self.calls: list[tuple[bytes, int | None]] = []  # (bytes, GSO size or None)
        self.refuse_gso = refuse_gso  # errno for a GSO send, 0: accepted
        self.fail_at = set(fail_at)  # indices of calls (counted from 0) that fail
        self.attempts = 0

    def sendmsg(self, buffers, anc=(), flags=0, addr=None):
        assert addr == DEST
        at = self.attempts
        self.attempts += 1
        size = None
        for level, kind, data in anc:
            assert (level, kind) == (SOL_UDP, UDP_SEGMENT)
            size = struct.unpack("=H", data)[0]
        if size is not None and self.refuse_gso:
            raise OSError(self.refuse_gso, "refused")
        if at in self.fail_at:
            raise OSError(errno.ECONNREFUSED, "port unreachable")
        data = b"".join(bytes(b) for b in buffers)
        self.calls.append((data, size))
        return len(data)


def _datagrams(sizes: list[int]) -> list[tuple]:
    return [(bytes([i % 251]) * size,) for i, size in enumerate(sizes)]


def _wire(calls) -> list[bytes]:
    """The datagrams the kernel would put on the wire for ``calls``."""
    out = []
    for data, size in calls:
        if size is None:
            out.append(data)
        else:
            out.extend(data[at:at + size] for at in range(0, len(data), size))
    return out


def test_runs_of_one_size_go_as_one_send_each_in_order():
    sizes = [32, 32, 32, 44, 44, 32, 20]
    grams = _datagrams(sizes)
    sock = FakeSock()
    Batcher(sock, gso=True).send(grams, sizes, DEST)
    # 32x3 (one GSO send), then 44x2 closed by the shorter 32, then the 20 alone
    assert [(len(d), s) for d, s in sock.calls] == [(96, 32), (120, 44), (20, None)]
    assert _wire(sock.calls) == [g[0] for g in grams]


def test_a_group_holds_at_most_gso_max_segments():
    sizes = [20] * (GSO_MAX_SEGMENTS * 2 + 3)
    grams = _datagrams(sizes)
    sock = FakeSock()
    Batcher(sock, gso=True).send(grams, sizes, DEST)
    assert [len(d) // 20 for d, _ in sock.calls] == [GSO_MAX_SEGMENTS, GSO_MAX_SEGMENTS, 3]
    assert _wire(sock.calls) == [g[0] for g in grams]


def test_gso_refused_sends_everything_one_by_one_from_then_on():
    sizes = [32] * 5
    grams = _datagrams(sizes)
    sock = FakeSock(refuse_gso=errno.EIO)
    batcher = Batcher(sock, gso=True)
    batcher.send(grams, sizes, DEST)
    assert batcher.gso is False
    assert [s for _, s in sock.calls] == [None] * 5
    assert _wire(sock.calls) == [g[0] for g in grams]  # nothing lost
    sock.attempts = 0
    sock.calls.clear()
    batcher.send(grams, sizes, DEST)
    assert sock.attempts == 5  # not asked again


def test_a_failed_send_is_skipped_and_the_rest_still_go():
    sizes = [32, 32, 44, 20]
    grams = _datagrams(sizes)
    sock = FakeSock(fail_at={0})  # the first (GSO) send: an ICMP error surfaces
    Batcher(sock, gso=True).send(grams, sizes, DEST)
    # the two 32s are lost (as a datagram the network drops); the 44 and the
    # shorter 20 that closes its group still go, in one send
    assert [(len(d), s) for d, s in sock.calls] == [(64, 44)]
    assert _wire(sock.calls) == [grams[2][0], grams[3][0]]


def test_without_gso_every_datagram_is_its_own_send():
    sizes = [32, 32, 32]
    grams = _datagrams(sizes)
    sock = FakeSock()
    Batcher(sock, gso=False).send(grams, sizes, DEST)
    assert [s for _, s in sock.calls] == [None] * 3


@pytest.fixture
def pair():
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(5)
    yield tx, rx
    tx.close()
    rx.close()


def test_on_loopback_a_plain_socket_gets_each_datagram_alone(pair):
    tx, rx = pair
    sizes = [32] * 6 + [20]
    grams = _datagrams(sizes)
    Batcher(tx).send(grams, sizes, rx.getsockname())
    got = [rx.recv(2048) for _ in sizes]
    assert got == [g[0] for g in grams]


def test_batch_reader_takes_a_gso_send_whole_where_gro_works(pair):
    tx, rx = pair
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        gro = enable_gro(probe)
    finally:
        probe.close()
    if not gro:
        pytest.skip("no UDP GRO on this system")
    buf = bytearray(65536)
    recv = batch_reader(rx, buf)
    sizes = [32] * 6 + [20]
    grams = _datagrams(sizes)
    batcher = Batcher(tx)
    batcher.send(grams, sizes, rx.getsockname())
    seen = []
    reads = 0
    while len(seen) < len(sizes):
        n, size, _addr = recv(0)
        reads += 1
        seen.extend(bytes(buf[at:min(n, at + size)]) for at in range(0, n, size))
    assert seen == [g[0] for g in grams]
    if batcher.gso:  # (a kernel without GSO sent them one by one)
        assert (reads, size) == (1, 32)  # one read, the six and the shorter last
