"""The sender summary's SRTT and RTO lines, said in words.

Numbers alone mislead here: "SRTT n/a, final RTO 60000.0 ms (timers capped
at 3750 ms)" after a transfer that went well enough is three facts a
student cannot put together (Karn's rule left no valid sample, timeouts
doubled the RTO to its maximum, and the timers never waited that long).
Each row says what happened.
"""

from __future__ import annotations

from common.rtt import RttEstimator


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def _times(n: int) -> str:
    return "once" if n == 1 else "twice" if n == 2 else f"{n} times"


def rtt_rows(rtt: RttEstimator, timer_rto: float) -> list[tuple[str, str]]:
    """("SRTT", ...) and ("final RTO", ...) for ``rtt`` at the end of a run;
    ``timer_rto`` is what the timers actually waited (the RTO, capped at an
    eighth of the give-up time: SenderCore.timer_rto)."""
    if rtt.srtt is None:
        srtt = ("none: not one valid RTT sample (Karn's rule takes none from a "
                "segment sent more than once, SYN included)")
    else:
        n = rtt.samples
        srtt = f"{_ms(rtt.srtt)} (smoothed over {n} sample{'' if n == 1 else 's'}, RFC 6298)"
    rto = _ms(rtt.rto)
    if rtt.backoff:
        start = (f"the initial {_ms(rtt.base_rto)}" if rtt.srtt is None
                 else f"{_ms(rtt.base_rto)}")
        rto += (f": {start} doubled {_times(rtt.backoff)} by timeouts with no valid "
                f"RTT sample since")
        if rtt.rto >= rtt.max_rto:
            rto += f", up to the maximum (--max-rto {rtt.max_rto:g} s)"
    elif rtt.srtt is None:
        rto += " (the initial RTO: no sample ever set it)"
    else:
        rto += " (SRTT + 4 x RTTVAR"
        if rtt.rto <= rtt.min_rto:
            rto += f", raised to the minimum, --min-rto {rtt.min_rto:g} s"
        rto += ")"
    if timer_rto < rtt.rto:
        rto += (f"; the timers never waited more than {_ms(timer_rto)} (an eighth "
                f"of the give-up time, never below --min-rto)")
    return [("SRTT", srtt), ("final RTO", rto)]
