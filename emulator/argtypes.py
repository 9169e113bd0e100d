"""Values of the link emulator's flags: each parses one string or says why not.

Each raises ``argparse.ArgumentTypeError`` with a one-line message that names
the flag's kind of value; argparse puts the flag's name in front of it.
"""

from __future__ import annotations

import argparse
import math

from runtime.addr import AddressError, split_host_port


def _number(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what}: not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{what}: must be finite: {text!r}")
    return value


def percent(text: str) -> float:
    value = _number(text, "percentage")
    if not 0.0 <= value <= 100.0:
        raise argparse.ArgumentTypeError(f"percentage must be within 0..100, got {text}")
    return value


def ber_value(text: str) -> float:
    value = _number(text, "bit error rate")
    if not 0.0 <= value <= 100000.0:
        raise argparse.ArgumentTypeError(
            f"bit error rate is per 100000 bits, must be within 0..100000, got {text}"
        )
    return value


#: The longest time a flag may give (11.6 days): a datagram's hold and the
#: waits on it must stay within what the platform's clocks take.
MAX_SECONDS = 1e6


def seconds(text: str) -> float:
    value = _number(text, "seconds")
    if value < 0.0:
        raise argparse.ArgumentTypeError(f"seconds must be >= 0, got {text}")
    if value > MAX_SECONDS:
        raise argparse.ArgumentTypeError(f"seconds must be <= {MAX_SECONDS:g}, got {text}")
    return value


def speed(text: str) -> float:
    """-s, kbit/s: at least 1 bit/s, so that one datagram's time on the
    link (at most 65507 bytes: 6 days) stays within MAX_SECONDS."""
    value = _number(text, "speed")
    if not value >= 0.001:
        raise argparse.ArgumentTypeError(f"must be > 0, at least 0.001 (kbit/s: 1 bit/s), "
                                         f"got {text}")
    return value


def _integer(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what}: not an integer: {text!r}") from None


def queue_bytes(text: str) -> int:
    value = _integer(text, "queue size")
    if value < 1:
        raise argparse.ArgumentTypeError(f"queue size must be >= 1 byte, got {text}")
    return value


def queue_packets(text: str) -> int:
    value = _integer(text, "queue size")
    if value < 1:
        raise argparse.ArgumentTypeError(f"queue size must be >= 1 datagram, got {text}")
    return value


def packet_bytes(text: str) -> int:
    value = _integer(text, "datagram size")
    if not 1 <= value <= 65507:
        raise argparse.ArgumentTypeError(f"datagram size must be within 1..65507 bytes, got {text}")
    return value


def packets(text: str) -> float:
    value = _number(text, "packets")
    if value < 0.0:
        raise argparse.ArgumentTypeError(f"a number of packets must be >= 0, got {text}")
    return value


def fraction(text: str) -> float:
    """A probability or weight in (0, 1]."""
    value = _number(text, "fraction")
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be within (0, 1] (0.1 = 10%), got {text}")
    return value


def positive_seconds(text: str) -> float:
    value = _number(text, "seconds")
    if value <= 0.0:
        raise argparse.ArgumentTypeError(f"seconds must be > 0, got {text}")
    if value > MAX_SECONDS:
        raise argparse.ArgumentTypeError(f"seconds must be <= {MAX_SECONDS:g}, got {text}")
    return value


def _port(text: str, what: str, wildcard: bool = False, zero: bool = True) -> int | None:
    if wildcard and text == "*":
        return None
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what}: bad port {text!r}") from None
    if not (0 if zero else 1) <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{what}: port out of range: {text}")
    return port


def _split_host_port(text: str, what: str) -> tuple[str, str]:
    """HOST:PORT, an IPv6 address in brackets ([::1]:41194)."""
    try:
        return split_host_port(text, what)
    except AddressError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def accept_spec(text: str) -> tuple[str | None, int | None]:
    host, port = _split_host_port(text, "-i")
    return (None if host == "*" else host), _port(port, "-i", wildcard=True)


def out_spec(text: str) -> tuple[str, int | None]:
    """HOST:PORT, or HOST:* (forwarding by port: each datagram names its port)."""
    host, port = _split_host_port(text, "-o")
    if host == "*":
        raise argparse.ArgumentTypeError("-o: the output host cannot be a wildcard")
    return host, _port(port, "-o", wildcard=True, zero=False)


def ports_spec(text: str) -> tuple[int, int]:
    recv, sep, send = text.partition(":")
    if not sep:
        raise argparse.ArgumentTypeError(f"-p: expected recv_port:send_port, got {text!r}")
    r = _port(recv, "-p recv_port")
    s = _port(send, "-p send_port")
    assert r is not None and s is not None
    if r == s and r != 0:
        raise argparse.ArgumentTypeError("-p: recv_port and send_port must differ")
    return r, s


def drop_list(text: str) -> frozenset[int]:
    out = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            n = int(part)
        except ValueError:
            raise argparse.ArgumentTypeError(f"--drop: not an integer: {part!r}") from None
        if n < 1:
            raise argparse.ArgumentTypeError(f"--drop: datagram numbers start at 1, got {n}")
        out.add(n)
    if not out:
        raise argparse.ArgumentTypeError("--drop: empty list")
    return frozenset(out)


def blackhole_spec(text: str) -> tuple[float, float]:
    start, sep, duration = text.partition(":")
    if not sep:
        raise argparse.ArgumentTypeError(f"--blackhole: expected START:DURATION, got {text!r}")
    return seconds(start), seconds(duration)
