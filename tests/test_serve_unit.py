"""receiver/server.py driven by hand, in this process: its network thread's
steps called one at a time, with datagrams from RawPeer sockets."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import time

import pytest
from serve_support import RawPeer

from common.segment import ACK, Segment, encode
from harness.procs import ROOT
from receiver.server import Server, ServerConfig

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def server(tmp_path):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    srv = Server(ServerConfig(directory=str(tmp_path), ack_host="127.0.0.1", max_half_open=1),
                 sock)
    yield srv
    srv.outdir.close()
    sock.close()


def _step(srv: Server) -> dict:
    """One burst read and fed, as the network thread does it."""
    time.sleep(0.05)  # (the datagrams are on loopback: there by now)
    batches = srv._read_burst(bytearray(65536))
    for conn, segs in batches.items():
        srv._feed(conn, segs, time.monotonic())
    return batches


def test_a_connection_forgotten_in_the_burst_that_completes_it_gets_no_file(server, tmp_path):
    """max-half-open 1: A's handshake-completing ACK and B's SYN in one burst.
    B's admission forgets A (the oldest half-open); A's ACK, read before,
    must not bring it to life outside the table: no writer, no .part."""
    port = server.port
    with RawPeer(port, isn=100) as a, RawPeer(port, isn=200) as b:
        a.syn(b"a.bin")
        _step(server)
        synack = a.recv(5.0)
        assert synack is not None
        a.send(Segment(seq=synack.ack, ack=(synack.seq + 1) & 0xFFFFFFFF, flags=ACK,
                       window=65535))
        b.syn(b"b.bin")
        batches = _step(server)
        (conn_a,) = [c for c in batches if c.name == "a.bin"]
        assert conn_a.closed and conn_a.thread is None
        assert server.established == 0
        assert [k[1] for k in server.conns] == [b.port]
        assert os.listdir(tmp_path) == []
        assert server.dropped.get("no-connection") == 1



@pytest.mark.parametrize(("argv", "message"), [
    (["{d}/nodir", "0", "127.0.0.1"], "is not a directory"),
    (["{d}/file", "0", "127.0.0.1"], "is not a directory"),
    (["{d}", "70000", "127.0.0.1"], "outside 0..65535"),
    (["{d}", "0", "127.0.0.1", "0"], "ACK_PORT must not be 0"),
    (["{d}", "0", "127.0.0.1", "--buffer", "100"], "must hold at least one MSS"),
    (["{d}", "0", "nosuch.invalid"], "cannot resolve the ACK address"),
    (["{d}", "0", "127.0.0.1", "--max-conns", "0"], "must be positive"),
    (["{d}", "0", "127.0.0.1", "--syn-timeout", "nan"], "must be a positive number"),
])
def test_bad_usage_is_one_line_and_exit_2(tmp_path, argv, message):
    (tmp_path / "file").write_bytes(b"x")
    res = subprocess.run([sys.executable, "-m", "receiver", "serve",
                          *(a.format(d=tmp_path) for a in argv)],
                         capture_output=True, text=True, timeout=30, cwd=ROOT)
    err = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(err) == 1 and message in err[0], res.stderr


def test_one_gro_batch_of_two_connections_goes_to_each(server, tmp_path, monkeypatch):
    """Through an emulator the datagrams of several connections come from one
    UDP source and may arrive as one GRO batch: interleaved data of A and B
    in one GSO send, taken apart by TCP source port, A's in-order pair as a run."""
    from common.segment import SYN
    from receiver import server as server_mod
    from runtime.udpgso import SOL_UDP, UDP_SEGMENT

    calls = []
    real = server_mod.decode_burst
    monkeypatch.setattr(server_mod, "decode_burst",
                        lambda *a: calls.append(a[1]) or real(*a))
    server.cfg.max_half_open = 8  # (the fixture's 1 would forget A for B)
    with RawPeer(server.port) as peer:
        ports = {"a": peer.port, "b": peer.port + 1}  # B: a TCP port only, same UDP source
        for tcp in ports.values():
            peer.sock.sendto(encode(Segment(seq=1000, flags=SYN, window=65535, mss=1452,
                                            src_port=tcp, dst_port=server.port)),
                             ("127.0.0.1", server.port))
        _step(server)
        conns = {name: server.conns[(("127.0.0.1", peer.port), tcp)]
                 for name, tcp in ports.items()}
        for name, tcp in ports.items():
            peer.sock.sendto(encode(Segment(seq=1001, ack=conns[name].core.isn + 1, flags=ACK,
                                            window=65535, src_port=tcp,
                                            dst_port=server.port)),
                             ("127.0.0.1", server.port))
        _step(server)

        def data(name, k):
            return encode(Segment(seq=1001 + 1000 * k, ack=conns[name].core.isn + 1,
                                  flags=ACK, window=65535, payload=bytes([k]) * 1000,
                                  src_port=ports[name], dst_port=server.port))

        batch = [data("a", 0), data("b", 0), data("a", 1), data("b", 1), data("a", 2),
                 data("a", 3)]
        try:
            peer.sock.sendmsg([b"".join(batch)],
                              [(SOL_UDP, UDP_SEGMENT, struct.pack("=H", len(batch[0])))],
                              0, ("127.0.0.1", server.port))
        except OSError:
            pytest.skip("no UDP GSO here")
        _step(server)
    try:
        assert conns["a"].core.rcv_nxt == 4000 and conns["b"].core.rcv_nxt == 2000
        if server.gro:
            assert calls, "the batch came apart before the server read it"
    finally:
        for conn in conns.values():
            conn.interrupt("end of test")
            conn.finish()
    assert os.listdir(tmp_path) == []


def test_a_segment_for_no_connection_gets_an_rst_at_its_ack_and_a_late_one_none(server):
    from common.segment import RST

    with RawPeer(server.port) as peer:
        peer.send(Segment(seq=5000, ack=777, flags=ACK, window=65535, payload=b"x" * 10))
        _step(server)
        rst = peer.recv(5.0)
        assert rst is not None and rst.flags == RST and rst.seq == 777
        assert b"no such connection" in bytes(rst.payload)
        peer.send(Segment(seq=1, ack=2, flags=RST))  # never an RST for an RST
        key = (("127.0.0.1", peer.port), peer.port + 1)
        server.ended[key] = time.monotonic() + 30  # a connection of that pair just ended
        peer.sock.sendto(encode(Segment(seq=5000, ack=778, flags=ACK, window=65535,
                                        src_port=peer.port + 1, dst_port=server.port)),
                         ("127.0.0.1", server.port))
        _step(server)
        assert peer.recv(0.2) is None  # (sent within the step, if at all: none came)
    assert server.dropped == {"no-connection": 2, "late": 1}


def test_stale_temporary_files_of_a_dead_server_removed_a_live_ones_kept(tmp_path):
    from receiver.outdir import OutDir

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead, alive = int(gone.stdout), os.getppid()
    for pid in (dead, alive, os.getpid()):
        (tmp_path / f".stcp-{pid}-1.part").write_bytes(b"x")
    (tmp_path / ".stcp-notapid-1.part").write_bytes(b"x")
    od = OutDir(str(tmp_path))
    od.close()
    assert od.stale_removed == 1
    assert sorted(os.listdir(tmp_path)) == sorted(
        [f".stcp-{alive}-1.part", f".stcp-{os.getpid()}-1.part", ".stcp-notapid-1.part"])


def _nothing_waiting(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        sock.recv(65536)
    except BlockingIOError:
        return True
    finally:
        sock.setblocking(True)
    return False


def test_refusals_are_never_sent_to_the_receivers_own_port():
    """A forged SYN may name the receiver's own port as its TCP source port:
    its "receiver busy" RST (stcp-recv sends it to ACK_ADDRESS at that port)
    would come back as a datagram from a stranger.  None is sent; the same
    refusal to another port arrives."""
    from common.segment import RST, SYN
    from receiver.refusal import BUSY, send_refusal

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as own, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other:
        own.bind(("127.0.0.1", 0))
        other.bind(("127.0.0.1", 0))
        own.settimeout(0.2)
        other.settimeout(5.0)
        port = own.getsockname()[1]
        forged = Segment(seq=9, flags=SYN, src_port=port, dst_port=port, window=100)
        send_refusal(own, forged, port, BUSY, ("127.0.0.1", port))
        with pytest.raises(TimeoutError):
            own.recv(65536)
        forged.src_port = other.getsockname()[1]
        send_refusal(own, forged, port, BUSY, ("127.0.0.1", forged.src_port))
        from common.segment import decode
        rst = decode(other.recv(65536))
        assert rst.flags & RST and rst.ack == 10


def test_server_opens_nothing_for_a_syn_from_its_own_port_and_resets_nothing_to_it(server):
    """A SYN or a stray segment whose TCP source port is the server's own
    (with ACK_ADDRESS its host): no connection, no SYN-ACK and no RST sent to
    itself; the SYN counted as own-address, the segment as no-connection."""
    from common.segment import SYN

    port = server.port
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as forger:
        forger.bind(("127.0.0.1", 0))
        for seg in (Segment(seq=7, flags=SYN, window=65535, file_size=10),
                    Segment(seq=5000, ack=777, flags=ACK, window=65535, payload=b"x")):
            seg.src_port, seg.dst_port = port, port
            forger.sendto(encode(seg), ("127.0.0.1", port))
        _step(server)
        time.sleep(0.1)
        assert _nothing_waiting(server.sock)
    assert server.conns == {} and server.half_open == {}
    assert server.dropped == {"own-address": 1, "no-connection": 1}


def test_a_servers_size_limit_is_its_directorys_free_space_capped_by_max_size(
        server, tmp_path, monkeypatch):
    """The room asked of the file system is the output directory's (both
    receivers share receiver/disk.py's free_space and size_limit)."""
    asked = []

    def statvfs(path):
        asked.append(path)
        return os.statvfs_result((4096, 4096, 1000, 50, 30, 0, 0, 0, 0, 255))

    monkeypatch.setattr(os, "statvfs", statvfs)
    assert server._size_limit() == 30 * 4096  # f_bavail * f_frsize
    assert asked == [os.path.realpath(tmp_path)]
    server.cfg.max_size = 1000
    assert server._size_limit() == 1000
    server.cfg.max_size = 10**9
    assert server._size_limit() == 30 * 4096
    monkeypatch.setattr(os, "statvfs", lambda path: (_ for _ in ()).throw(OSError("no")))
    assert server._size_limit() == 10**9  # room unknown: --max-size alone
    server.cfg.max_size = None
    assert server._size_limit() is None


def test_a_connection_sends_its_segments_in_order_and_keeps_none(server):
    """Each connection's segments go through EndpointBase.send_control, which
    sends the batches take_outbox queued in the core's order: none is left
    queued once sent (a connection overriding send_control kept every batch
    it ever sent, and lost that order between its network and writer threads)."""
    with RawPeer(server.port, isn=300) as a:
        a.syn(b"kept.bin")
        (conn,) = _step(server)
        assert a.recv(5.0) is not None  # the SYN-ACK went out
        assert len(conn._wire) == 0


def test_an_os_error_at_the_servers_start_is_one_line_and_exit_1(tmp_path, monkeypatch, capsys):
    """A directory the server may write but not list (root passes any mode
    bits, so the failure is made here): one line, exit 1, no traceback."""
    from receiver import serve_cli

    def unreadable(*_a, **_k):
        raise PermissionError(13, "Permission denied", str(tmp_path))

    monkeypatch.setattr(serve_cli, "Server", unreadable)
    assert serve_cli.main([str(tmp_path), "0", "127.0.0.1", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if "error" in line]
    assert len(lines) == 1 and "Permission denied" in lines[0], err
