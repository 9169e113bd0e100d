"""Textbook throughput models for a fixed window W over a path with round-trip
time RTT, a ceiling C (the most the machine moves through that path) and
independent segment loss p.  All rates in payload bytes per second.

- window-limited rate:  B = min(W / RTT, C)
- selective repeat:     (1 - p) * B        every loss costs just its own resend
- Go-Back-N:            (1 - p) / (1 + (N - 1) p) * B, N = W / MSS segments in
                        the window: every loss also resends the N - 1 behind it
- congestion control:   MSS / RTT * sqrt(3/2) / sqrt(p) (Mathis et al., 1997):
                        an AIMD window halved once per loss settles there
"""

from __future__ import annotations

MSS = 1452
UDP_PAYLOAD = MSS + 20   # our TCP header rides in the same 1472-byte datagram
#: File bytes per full segment: the MSS less the 12 bytes of the RFC 7323
#: timestamps every segment carries (on by default; PROTOCOL.md §9).
PAYLOAD = MSS - 12
#: The share of a full datagram that is file bytes: the most of a link's
#: rate goodput can be (1440 / 1472, 97.8 %).
FILE_SHARE = PAYLOAD / UDP_PAYLOAD


def payload_ceiling(udp_ceiling: float) -> float:
    """A UDP ceiling counted in 1472-byte datagrams, as payload bytes/s (less
    our header and its timestamps)."""
    return udp_ceiling * PAYLOAD / UDP_PAYLOAD


def window_limited(window: int, rtt: float, ceiling: float) -> float:
    return min(window / rtt, ceiling)


def segments(window: int, mss: int = PAYLOAD) -> int:
    return max(1, window // mss)


def selective_repeat(p: float, window: int, rtt: float, ceiling: float) -> float:
    return (1.0 - p) * window_limited(window, rtt, ceiling)


def go_back_n(p: float, window: int, rtt: float, ceiling: float, mss: int = PAYLOAD) -> float:
    n = segments(window, mss)
    return (1.0 - p) / (1.0 + (n - 1) * p) * window_limited(window, rtt, ceiling)


def model(mode: str, p: float, window: int, rtt: float, ceiling: float) -> float:
    if mode == "sr":
        return selective_repeat(p, window, rtt, ceiling)
    return go_back_n(p, window, rtt, ceiling)


def mathis(p: float, rtt: float, mss: int = PAYLOAD, ceiling: float | None = None) -> float:
    """Congestion-controlled (Reno-style AIMD) throughput under random loss p
    (Mathis et al., 1997): MSS / RTT * sqrt(3/2) / sqrt(p), at most ``ceiling``."""
    if p <= 0:
        return float("inf") if ceiling is None else ceiling
    rate = mss / rtt * (1.5 ** 0.5) / p ** 0.5
    return rate if ceiling is None else min(rate, ceiling)
