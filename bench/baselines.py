"""The other ways to move the same file over 127.0.0.1, each as a pair of roles
run in two separate processes by the benchmark.

    python -m bench.baselines ROLE [options]

Roles (the side that measures prints one JSON line ``{"bytes", "seconds"}``):

udp-sink / udp-blast
    The ceiling: the blaster sends the file as 1472-byte datagrams (the largest
    that fits a 1500-byte MTU) as fast as one Python loop can, over and over
    until ``--min-seconds`` have passed; the sink counts the bytes that arrive,
    from the first datagram to the last one.  Goodput
    = bytes received / that time.  Losses at the sink are not resent.
    ``--gso N`` hands the kernel N datagrams per system call (UDP GSO, as our
    sender does), still 1472-byte datagrams on the wire: the ceiling of a path
    through the link emulator, which forwards such batches whole.
tcp-sink / tcp-send
    Linux TCP: ``socket.sendfile`` of the file; the sink counts bytes from
    ``accept`` to end of stream.
tftp-server / tftp-client
    tftpy: the client downloads the file with blksize 1428 (one 1472-byte
    datagram per block); timed around ``download``.
quic-server / quic-client
    aioquic: the client sends the file on one stream, timed from the start of
    the handshake to the server's reply that it holds every byte.  The server's
    certificate is self-signed, made at start-up with ``cryptography``.

Servers and sinks bind port 0 on 127.0.0.1 and write ``{"port": N}`` to
``--ready-file``.  None of the sinks writes to disk (our receiver does: it
writes, fsyncs and hashes); tftpy's client writes to a counter in memory.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import socket
import sys
import time
from pathlib import Path

from runtime.udpgso import GSO_MAX_BYTES, GSO_REFUSED, gso_cmsg

HOST = "127.0.0.1"
DGRAM = 1472          # UDP payload of a 1500-byte IPv4 packet
TFTP_BLKSIZE = 1428   # tftp + UDP headers make the same 1472-byte datagram
QUIC_ALPN = ["stcp-bench"]
SOCKBUF = 8 * 1024 * 1024  # asked for; the kernel caps it at net.core.[rw]mem_max


def _ready(path: str, **info) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump({**info, "pid": os.getpid()}, f)
    os.replace(tmp, path)


def _report(**info) -> None:
    print(json.dumps(info), flush=True)


def _exit_on_term() -> None:
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))


# ------------------------------------------------------------------ UDP


def udp_sink(ready: str, idle: float) -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKBUF)
    s.bind((HOST, 0))
    _ready(ready, port=s.getsockname()[1])
    buf = bytearray(65536)
    recv_into = s.recv_into
    mono = time.monotonic
    s.settimeout(120.0)
    recv_into(buf)                  # the first datagram starts the clock; not counted
    t0 = t_last = mono()
    s.settimeout(idle)
    total = count = 0
    try:
        while True:
            n = recv_into(buf)
            if n == 0:              # the blaster's end marker
                break
            total += n
            count += 1
            t_last = mono()
    except TimeoutError:
        pass
    _report(bytes=total, datagrams=count + 1, seconds=t_last - t0)


def udp_blast(path: str, port: int, min_seconds: float, gso: int = 1) -> None:
    """Send the file once, and again until ``min_seconds`` have passed;
    ``gso`` datagrams per system call."""
    data = memoryview(Path(path).read_bytes())
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKBUF)
    s.connect((HOST, port))
    send = s.send
    t0 = time.monotonic()
    sent = passes = 0
    step = DGRAM * gso
    cmsg = gso_cmsg(DGRAM)
    while True:
        start = 0  # GSO batches first, then one datagram per call for the rest
        while step > DGRAM and start < len(data):
            chunk = data[start:start + step]
            try:
                s.sendmsg([chunk], cmsg)
                sent += -(-len(chunk) // DGRAM)
            except OSError as exc:  # ENOBUFS and the like: lost datagrams, as on a wire
                if exc.errno in GSO_REFUSED:
                    step = DGRAM    # no GSO here: the rest one datagram per call
                    continue
            start += step
        for off in range(start, len(data), DGRAM):
            try:
                send(data[off:off + DGRAM])
                sent += 1
            except OSError:         # ENOBUFS and the like: a lost datagram, as on a wire
                pass
        passes += 1
        if time.monotonic() - t0 >= min_seconds:
            break
    t1 = time.monotonic()
    for _ in range(20):             # end markers, spaced so one gets through a full queue
        time.sleep(0.01)
        try:
            send(b"")
        except OSError:
            pass
    _report(sent=sent, passes=passes, seconds=t1 - t0)


# ------------------------------------------------------------------ TCP


def tcp_sink(ready: str) -> None:
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.bind((HOST, 0))
    ls.listen(1)
    _ready(ready, port=ls.getsockname()[1])
    ls.settimeout(120.0)
    conn, _ = ls.accept()
    t0 = time.monotonic()
    buf = bytearray(1 << 20)
    recv_into = conn.recv_into
    total = 0
    while True:
        n = recv_into(buf)
        if n == 0:
            break
        total += n
    t1 = time.monotonic()
    conn.close()
    _report(bytes=total, seconds=t1 - t0)


def tcp_send(path: str, port: int) -> None:
    with socket.create_connection((HOST, port)) as s, open(path, "rb") as f:
        s.sendfile(f)
        s.shutdown(socket.SHUT_WR)
        s.recv(1)                   # the sink closes once it has counted everything


# ------------------------------------------------------------------ TFTP


class _Counter(io.RawIOBase):
    """A write-only file that only counts (the client's download target)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        n = len(b)
        self.count += n
        return n


def _quiet_logging() -> None:
    import logging

    logging.basicConfig(level=logging.WARNING)


def tftp_server(ready: str, root: str) -> None:
    import threading

    import tftpy

    _quiet_logging()
    _exit_on_term()
    server = tftpy.TftpServer(root)
    t = threading.Thread(target=server.listen, args=(HOST, 0), name="tftp", daemon=True)
    t.start()
    if not server.is_running.wait(30):
        raise SystemExit("tftp server did not start")
    _ready(ready, port=server.listenport)
    t.join()


def tftp_client(port: int, name: str) -> None:
    import tftpy

    _quiet_logging()
    client = tftpy.TftpClient(HOST, port, options={"blksize": TFTP_BLKSIZE}, flock=False)
    out = _Counter()
    t0 = time.monotonic()
    client.download(name, out)
    t1 = time.monotonic()
    _report(bytes=out.count, seconds=t1 - t0)


# ------------------------------------------------------------------ QUIC


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A throw-away P-256 key and a self-signed certificate for localhost."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_path = directory / "quic-cert.pem"
    key_path = directory / "quic-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def _quic_config(is_client: bool, window: int, cc: str | None = None):
    from aioquic.quic.configuration import QuicConfiguration

    # same datagram size as the others; flow-control credit like our receiver's --buffer
    extra = {"congestion_control_algorithm": cc} if cc else {}
    return QuicConfiguration(is_client=is_client, alpn_protocols=QUIC_ALPN,
                             max_datagram_size=DGRAM, max_data=window,
                             max_stream_data=window, **extra)


def quic_server(ready: str, window: int) -> None:
    import asyncio

    from aioquic.asyncio import QuicConnectionProtocol, serve
    from aioquic.quic.events import StreamDataReceived

    class Sink(QuicConnectionProtocol):
        count = 0

        def quic_event_received(self, event) -> None:
            if isinstance(event, StreamDataReceived):
                self.count += len(event.data)
                if event.end_stream:
                    self._quic.send_stream_data(event.stream_id, str(self.count).encode(),
                                                end_stream=True)
                    self.transmit()

    async def run() -> None:
        cfg = _quic_config(False, window)
        cert, key = _self_signed(Path(ready).resolve().parent)
        cfg.load_cert_chain(str(cert), str(key))
        server = await serve(HOST, 0, configuration=cfg, create_protocol=Sink)
        port = server._transport.get_extra_info("sockname")[1]
        _ready(ready, port=port)
        await asyncio.Future()      # until SIGTERM

    _exit_on_term()
    asyncio.run(run())


def quic_client(path: str, port: int, window: int, cc: str | None = None) -> None:
    import asyncio
    import ssl

    from aioquic.asyncio import QuicConnectionProtocol, connect
    from aioquic.quic.events import StreamDataReceived

    data = Path(path).read_bytes()

    class Source(QuicConnectionProtocol):
        def __init__(self, *a, **kw) -> None:
            super().__init__(*a, **kw)
            self.reply = b""
            self.done = asyncio.get_running_loop().create_future()

        def quic_event_received(self, event) -> None:
            if isinstance(event, StreamDataReceived):
                self.reply += event.data
                if event.end_stream and not self.done.done():
                    self.done.set_result(self.reply)

    async def run() -> tuple[int, float]:
        cfg = _quic_config(True, window, cc)
        cfg.verify_mode = ssl.CERT_NONE
        t0 = time.monotonic()
        async with connect(HOST, port, configuration=cfg, create_protocol=Source) as proto:
            sid = proto._quic.get_next_available_stream_id()
            proto._quic.send_stream_data(sid, data, end_stream=True)
            proto.transmit()
            reply = await proto.done
            t1 = time.monotonic()
        return int(reply), t1 - t0

    got, seconds = asyncio.run(run())
    _report(bytes=got, seconds=seconds)


# ------------------------------------------------------------------ CLI


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.baselines",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("role", choices=["udp-sink", "udp-blast", "tcp-sink", "tcp-send",
                                     "tftp-server", "tftp-client", "quic-server",
                                     "quic-client"])
    ap.add_argument("--file", help="the file to send (blast, send, quic-client)")
    ap.add_argument("--port", type=int, help="the peer's port")
    ap.add_argument("--ready-file", help="where a server or sink writes its port")
    ap.add_argument("--root", help="tftp-server: the directory served")
    ap.add_argument("--name", help="tftp-client: the file name to fetch")
    ap.add_argument("--idle", type=float, default=1.0,
                    help="udp-sink: stop after this long without a datagram")
    ap.add_argument("--min-seconds", type=float, default=0.0,
                    help="udp-blast: send the file again until this long has passed")
    ap.add_argument("--gso", type=int, default=1,
                    help="udp-blast: datagrams per system call (UDP GSO), 1 to 44")
    ap.add_argument("--window", type=int, default=8 << 20,
                    help="quic: flow-control credit, bytes")
    ap.add_argument("--cc", choices=["reno", "cubic"], default=None,
                    help="quic-client: aioquic's congestion control (default: aioquic's)")
    a = ap.parse_args(argv)
    if a.role == "udp-sink":
        udp_sink(a.ready_file, a.idle)
    elif a.role == "udp-blast":
        if not 1 <= a.gso <= GSO_MAX_BYTES // DGRAM:
            ap.error(f"--gso must be 1 to {GSO_MAX_BYTES // DGRAM}")
        udp_blast(a.file, a.port, a.min_seconds, a.gso)
    elif a.role == "tcp-sink":
        tcp_sink(a.ready_file)
    elif a.role == "tcp-send":
        tcp_send(a.file, a.port)
    elif a.role == "tftp-server":
        tftp_server(a.ready_file, a.root)
    elif a.role == "tftp-client":
        tftp_client(a.port, a.name)
    elif a.role == "quic-server":
        quic_server(a.ready_file, a.window)
    else:
        quic_client(a.file, a.port, a.window, a.cc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
