"""Helpers for the server's tests (tests/test_serve*.py): starting ``stcp-serve``
and the emulators in a harness Group, and a hand-made peer that speaks just
enough of the protocol to open (or forge) connections.

Everything runs on 127.0.0.1 with ports the OS picks; every process is
started in the test's Group and killed at its end.
"""

from __future__ import annotations

import socket
from pathlib import Path

from common.segment import ACK, RST, SYN, Segment, SegmentError, decode, encode
from harness.procs import Group, Proc
from harness.programs import Launcher
from harness.spec import LinkSpec, Options

HOST = "127.0.0.1"
OPTIONS = Options()


def start_server(group: Group, directory: Path, args: list[str] = (),
                 ack_port: int | None = None, name: str = "serve",
                 host: str = HOST, port: int = 0) -> tuple[Proc, int]:
    """``python -m receiver serve DIR PORT HOST [ACK_PORT] args``, ready; (proc, port)."""
    ready = group.ready_path(name)
    argv = ["serve", str(directory), str(port), host] + ([] if ack_port is None
                                                         else [str(ack_port)])
    proc = group.python(name, "receiver", argv + ["--ready-file", str(ready), *args])
    return proc, group.wait_ready(proc, ready, 30.0, name)["port"]


def start_oneshot(group: Group, out: Path, ack_port: int, args: list[str] = ()) -> tuple[Proc,
                                                                                         int]:
    """The one-shot ``stcp-recv`` into ``out``, ACKing to ``ack_port``; (proc, port)."""
    ready = group.ready_path("recv")
    proc = group.python("recv", "receiver", [str(out), "0", HOST, str(ack_port),
                                             "--ready-file", str(ready), "--no-progress",
                                             *args])
    return proc, group.wait_ready(proc, ready, 30.0, "recv")["port"]


def start_emulator(group: Group, name: str, forward_to: int | str, flags: list[str]) -> int:
    """An emulator forwarding to ``forward_to`` ("*": by TCP port); its listening port."""
    launcher = Launcher(group, OPTIONS)
    _proc, port = launcher.emulator(name, LinkSpec(flags=list(flags)), forward_to)
    return port


def start_sender(group: Group, name: str, path: Path, link_port: int, args: list[str] = (),
                 ack_port: int = 0, window: str = "128K") -> Proc:
    return group.python(name, "sender", [str(path), HOST, str(link_port), window,
                                         str(ack_port), "--no-progress", *args])


class RawPeer:
    """A sender made by hand: one UDP socket on 127.0.0.1, segments built here.

    Its TCP source port is its socket's port, so a server without ACK_PORT
    answers it there."""

    def __init__(self, server_port: int, isn: int = 1000, host: str = HOST):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.port = self.sock.getsockname()[1]
        self.server = (host, server_port)
        self.isn = isn
        self.irs: int | None = None
        self.base = (isn + 1) & 0xFFFFFFFF  # the wire number of file offset 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawPeer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def send(self, seg: Segment) -> None:
        seg.src_port, seg.dst_port = self.port, self.server[1]
        self.sock.sendto(encode(seg), self.server)

    def syn(self, name: bytes | None, size: int | None = 1000) -> None:
        # The name takes sequence space after the SYN (PROTOCOL.md §9).
        self.syn_end = (self.isn + 1 + len(name or b"")) & 0xFFFFFFFF
        self.send(Segment(seq=self.isn, flags=SYN, window=65535, mss=1452, wscale=0,
                          sack_permitted=True, file_size=size, payload=name or b"",
                          name_follows=name is not None))

    def recv(self, timeout: float = 10.0) -> Segment | None:
        """The next valid segment within ``timeout`` s, or None."""
        self.sock.settimeout(timeout)
        while True:
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                return None
            try:
                return decode(data)
            except SegmentError:
                continue

    def refused(self, name: bytes | None, size: int | None = 1000) -> Segment:
        """SYN, and the RST that must answer it (AssertionError otherwise)."""
        self.syn(name, size)
        seg = self.recv()
        assert seg is not None, "no answer to the SYN"
        assert seg.flags & RST and seg.flags & ACK, f"not an RST: {seg.describe()}"
        assert seg.ack == self.syn_end
        return seg

    def connect(self, name: bytes | None, size: int | None = 1000) -> Segment:
        """The three-way handshake; the SYN-ACK."""
        self.syn(name, size)
        synack = self.recv()
        assert synack is not None and synack.flags & (SYN | ACK) == SYN | ACK, \
            f"no SYN-ACK: {synack and synack.describe()}"
        self.irs = synack.seq
        assert synack.ack == self.syn_end and synack.name_follows == (self.syn_end != self.base)
        self.base = synack.ack
        self.send(Segment(seq=self.base, ack=(synack.seq + 1) & 0xFFFFFFFF, flags=ACK,
                          window=65535))
        return synack

    def data(self, offset: int, payload: bytes) -> None:
        assert self.irs is not None
        self.send(Segment(seq=(self.base + offset) & 0xFFFFFFFF,
                          ack=(self.irs + 1) & 0xFFFFFFFF, flags=ACK, window=65535,
                          payload=payload))


def parts(directory: Path) -> list[str]:
    """The server's temporary files left in ``directory``."""
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".part"))
