"""TCP timestamps (RFC 7323 §3, §4): the clock and the RTT of an echo.

Both ends run a timestamp clock of their own; a segment carries the
sender's clock (TSval) and the last value it took from its peer (TSecr).
An end measures a round trip as its clock now minus the TSecr of an ACK:
this works for a retransmitted segment too, which Karn's rule otherwise
leaves without a sample (RFC 7323 §4.1, and Appendix G on why).

Our clock ticks in microseconds, finer than RFC 7323 §5.4's "1 ms to 1 s"
(a SHOULD): loopback round trips are tens of microseconds, and a peer only
echoes the value, whatever its unit.  We do no PAWS (§5), which is what
the coarser tick protects; 2**32 us is 71 minutes, and an echo is read
modulo 2**32, so a round trip under half of that is measured right.
Pure: the callers pass the time.
"""

from __future__ import annotations

#: Timestamp clock ticks per second.
TICKS = 1_000_000
#: The option as sent: NOP, NOP, kind 8, length 10, TSval, TSecr (RFC 7323
#: Appendix A's layout): the bytes it takes out of every segment's payload.
OPTION_LEN = 12


def ts_now(now: float) -> int:
    """The timestamp clock at ``now`` (seconds)."""
    return int(now * TICKS) & 0xFFFFFFFF


def echo_rtt(now: float, ecr: int) -> float | None:
    """The round trip, in seconds, that an echo ``ecr`` of our clock
    received at ``now`` measures; None if it is from the future or absurd."""
    ticks = (ts_now(now) - ecr) & 0xFFFFFFFF
    if ticks >= 1 << 31:
        return None
    return ticks / TICKS


def newer(a: int, b: int) -> bool:
    """Whether timestamp ``a`` is later than ``b`` (modulo 2**32, §5.2)."""
    return 0 < (a - b) & 0xFFFFFFFF < 1 << 31
