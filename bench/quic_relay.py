"""A two-way UDP relay that puts stcp-link on both directions of a QUIC
connection (bench/bench_cc.py's row 3).

    python -m bench.quic_relay --ready-file F --peers-file P

stcp-link forwards one way, from one socket to one address; a QUIC client
drops packets from any address but the one it sends to (RFC 9000 §9), and
a server answers the address its packets came from.  So the relay owns the
client's view of the path and the server's:

* ``C``: the client sends here; the relay passes each datagram to the data
  emulator (which forwards to ``S``), and sends the ACK path's datagrams back
  to the client from here;
* ``S``: the data emulator's datagrams arrive here and go on to the server
  from here; the server's answers arrive here and go to the ACK emulator
  (which forwards to ``K``);
* ``K``: the ACK emulator's datagrams arrive here, for the client.

It writes ``{"port": C, "s_port": S, "k_port": K}`` to the ready file, then
waits for the peers file ``{"server": port, "data": port, "ack": port}``
(the emulators need S and K to start), then relays until SIGTERM.  One
select loop; 127.0.0.1 only."""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import socket
import sys
import time
from pathlib import Path

HOST = "127.0.0.1"


def _sock() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind((HOST, 0))
    return s


def relay(ready: str, peers_file: str) -> None:
    c, s, k = _sock(), _sock(), _sock()
    tmp = f"{ready}.tmp"
    with open(tmp, "w") as f:
        json.dump({"port": c.getsockname()[1], "s_port": s.getsockname()[1],
                   "k_port": k.getsockname()[1], "pid": os.getpid()}, f)
    os.replace(tmp, ready)
    deadline = time.monotonic() + 60
    while not Path(peers_file).is_file():
        if time.monotonic() > deadline:
            raise SystemExit("quic_relay: no peers file within 60 s")
        time.sleep(0.01)
    peers = json.loads(Path(peers_file).read_text())
    server = (HOST, peers["server"])
    data, ack = (HOST, peers["data"]), (HOST, peers["ack"])
    client = None
    while True:
        for r in select.select([c, s, k], [], [])[0]:
            payload, addr = r.recvfrom(65536)
            if r is c:
                client = addr
                c.sendto(payload, data)
            elif r is s:
                s.sendto(payload, ack if addr == server else server)
            elif client is not None:
                c.sendto(payload, client)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.quic_relay",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--ready-file", required=True)
    ap.add_argument("--peers-file", required=True)
    a = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    relay(a.ready_file, a.peers_file)
    return 0


if __name__ == "__main__":
    sys.exit(main())
