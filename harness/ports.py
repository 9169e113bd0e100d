"""A free UDP port to hand to a program that binds it later.

The sender's ACK port must be known before the sender starts (the receiver,
or the ACK-path emulator, sends there), so launchers pick it first and start
the receiver and the emulators meanwhile.  Those bind port 0, and the kernel
gives them a port from its ephemeral range: the very one just picked, now
and then, if it came from there too (one run of the benchmark lost a run so).
Picked below that range, the port is one no bind to port 0 will take.
"""

from __future__ import annotations

import random
import socket

EPHEMERAL_RANGE = "/proc/sys/net/ipv4/ip_local_port_range"
#: The lowest port picked; below it sit many services' well-known ports.
LOWEST = 10000
TRIES = 64


def ephemeral_low(path: str = EPHEMERAL_RANGE) -> int | None:
    """The first port of the kernel's ephemeral range, or None if unknown."""
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def spare_udp_port(host: str = "127.0.0.1", low: int | None = None) -> int:
    """A UDP port on ``host`` (an IPv4 or an IPv6 address: its socket's
    family) that is free now and, where the ephemeral range is known and
    leaves room below it, outside that range; otherwise one the kernel gives
    (released before returning, as any such pick is).  Linux has one
    ephemeral range for both families (it is under net.ipv4)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    if low is None:
        low = ephemeral_low()
    if low is not None and low > LOWEST:
        for _ in range(TRIES):
            port = random.randrange(LOWEST, low)
            with socket.socket(family, socket.SOCK_DGRAM) as s:
                try:
                    s.bind((host, port))
                except OSError:
                    continue  # someone has it: another
                return port
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]
