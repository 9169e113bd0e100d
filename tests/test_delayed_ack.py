"""The delayed-ACK timer (common/ackclock.py) in the two receiver programs:
stcp-recv's network thread (receiver/app.py) and stcp-serve's per-connection
cores (receiver/server.py), each driven here step by step as its network
thread does it.  A lone in-order segment's ACK waits for the timer (or a
second segment), where the end-of-burst flush would have sent it at once:
through a rate-limited link, one datagram per burst, that was an ACK for
every segment instead of every second one (RFC 5681 section 4.2)."""

from __future__ import annotations

import os
import socket
import time

import pytest
from serve_support import RawPeer

from common.ackclock import DELAYED_ACK
from common.segment import ACK, SYN, Segment
from receiver.app import Receiver, ReceiverConfig
from receiver.server import Server, ServerConfig
from runtime.waiting import Silence

pytestmark = pytest.mark.timeout(60)

PIECE = 1000
DATA = os.urandom(4 * PIECE)


def _wait_until(deadline: float) -> None:
    """Sleep until the monotonic clock reaches ``deadline`` (as poll would)."""
    while time.monotonic() < deadline:
        time.sleep(deadline - time.monotonic() + 0.001)


def _receiver(tmp_path, **kw) -> Receiver:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    cfg = ReceiverConfig(path=str(tmp_path / "out.bin"), listen_port=0,
                         ack_to=("127.0.0.1", 9), **kw)
    r = Receiver(cfg, sock, isn=5000)
    r.started = time.monotonic()
    r._silence = Silence(r.started)  # (what _network sets before its loop)
    syn = Segment(1000, 0, SYN, 0xFFFF, mss=PIECE, wscale=0, sack_permitted=True,
                  file_size=len(DATA), src_port=7000)
    r.wire.syn_key = (syn.src_port, syn.seq)  # (what Wire.parse sets on the SYN)
    r._feed([syn], None)
    r._feed([Segment(1001, 5001, ACK, 0xFFFF)], None)
    return r


@pytest.fixture
def receivers():
    made = []
    yield made
    for r in made:
        r._wakeup.close()
        r.sock.close()


def _data(k: int) -> Segment:
    return Segment(1001 + k * PIECE, 5001, ACK, 0xFFFF, DATA[k * PIECE:(k + 1) * PIECE])


def _acks(out: list) -> list[int]:
    return [s.ack for s in out if s.flags & ACK and not s.flags & SYN]


def test_stcp_recv_holds_a_lone_segments_ack_for_the_timer(tmp_path, receivers):
    r = _receiver(tmp_path)
    receivers.append(r)
    assert r.core.ack_clock.delay == DELAYED_ACK
    before = time.monotonic()
    deadline, _fin, _deliver, _fin_in, out, _ev, _view = r._feed([_data(0)], None)
    assert _acks(out) == []  # the burst's end no longer sends it
    assert before + DELAYED_ACK <= deadline <= time.monotonic() + DELAYED_ACK
    _wait_until(deadline)
    deadline, *_, out, _ev, _view = r._feed([], None)  # poll's timeout, then the timer
    assert _acks(out) == [1001 + PIECE]
    assert deadline > time.monotonic() + 1  # the give-up timer, nothing pending
    assert r.core.ack_clock.quick  # (a fired timer's quick ACKs: tests/test_ackclock.py)
    r.core.ack_clock.quick = 0

    *_, out, _ev, _view = r._feed([_data(1), _data(2)], None)
    assert _acks(out) == [1001 + 3 * PIECE]  # the second segment's ACK at once
    *_, out, _ev, _view = r._feed([_data(3)], None)
    assert _acks(out) == []
    *_, out, _ev, _view = r._feed([_data(0)], None)  # a duplicate: at once, not held
    assert _acks(out) == [1001 + 4 * PIECE]


def test_stcp_recv_delayed_ack_off_flushes_at_the_bursts_end(tmp_path, receivers):
    """--delayed-ack 0: one datagram per burst gets one ACK each (as before)."""
    r = _receiver(tmp_path, delayed_ack=None)
    receivers.append(r)
    for k in range(3):
        *_, out, _ev, _view = r._feed([_data(k)], None)
        assert _acks(out) == [1001 + (k + 1) * PIECE]


@pytest.fixture
def server(tmp_path):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    srv = Server(ServerConfig(directory=str(tmp_path), ack_host="127.0.0.1"), sock)
    yield srv
    for conn in list(srv.conns.values()):
        conn.close_queue()
        if conn.thread is not None:
            conn.thread.join(10)
    srv.outdir.close()
    sock.close()


def _step(srv: Server) -> float | None:
    """One burst read, fed and its timers run, as the network thread does it."""
    time.sleep(0.02)  # (the datagrams are on loopback: there by now)
    now = time.monotonic()
    for conn, segs in srv._read_burst(bytearray(65536)).items():
        srv._feed(conn, segs, now)
    return srv._timers(now)


def test_stcp_serve_holds_a_lone_segments_ack_for_the_timer(server):
    with RawPeer(server.port, isn=100) as peer:
        peer.syn(b"a.bin", size=len(DATA))
        _step(server)
        synack = peer.recv(5.0)
        assert synack is not None and synack.flags & SYN
        peer.irs = synack.seq
        peer.base = synack.ack
        peer.send(Segment(seq=peer.base, ack=(synack.seq + 1) & 0xFFFFFFFF, flags=ACK,
                          window=65535))
        _step(server)
        (conn,) = server.conns.values()
        assert conn.core.ack_clock.delay == DELAYED_ACK

        peer.data(0, DATA[:PIECE])
        deadline = _step(server)
        assert peer.recv(0.05) is None  # held, not sent at the burst's end
        assert deadline == conn.core.ack_clock.deadline
        server._timers(deadline)  # the network thread, woken by poll at the deadline
        ack = peer.recv(5.0)
        assert ack is not None and ack.ack == (peer.base + PIECE) & 0xFFFFFFFF
        conn.core.ack_clock.quick = 0  # (a fired timer's quick ACKs: test_ackclock.py)

        peer.data(PIECE, DATA[PIECE:2 * PIECE])
        peer.data(2 * PIECE, DATA[2 * PIECE:3 * PIECE])
        _step(server)
        ack = peer.recv(5.0)
        assert ack is not None and ack.ack == (peer.base + 3 * PIECE) & 0xFFFFFFFF
        assert peer.recv(0.05) is None  # one ACK for the pair
