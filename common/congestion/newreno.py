"""NewReno: RFC 5681's slow start and congestion avoidance, RFC 6582's
recovery, registered as ``newreno``; CUBIC (:mod:`.cubic`) reuses all but
the window's growth and its reduction.

- Initial window (RFC 6928): min(10 MSS, max(2 MSS, 14600 bytes)).
- Slow start with appropriate byte counting (RFC 3465, L = 2): each ACK
  adds what it acknowledged, at most 2 MSS.
- Congestion avoidance: one MSS per cwnd bytes acknowledged (RFC 3465 §2.1),
  about one MSS per RTT.
- The window grows only while the sender uses it (RFC 7661's idea): in
  congestion avoidance when sending was held back by cwnd; in slow start
  when at least half of cwnd was in flight (as Linux judges it).
- A loss outside recovery: one reduction per window of data (the sender
  calls ``on_recovery_start`` once until the ACK passes the recovery point);
  a loss of something sent after that reduction (a lost retransmission, or
  new data sent in recovery) is a new congestion event and reduces again
  (RFC 5681 §4.3's view of a lost retransmission).
  ssthresh = max(FlightSize / 2, 2 MSS).  With SACK (sr mode), RFC 6675's
  pipe with PRR (RFC 6937, :mod:`.prr`) sets cwnd on every ACK, and
  resends count against it as new data does (``resend_budget``); without
  (gbn), RFC 6582: cwnd = ssthresh + 3 MSS, each partial ACK deflates it by
  what it acknowledged less one MSS, the full ACK sets it to ssthresh.
- RTO: ssthresh = max(FlightSize / 2, 2 MSS) (kept, not halved again, when
  the timer expires again before progress), cwnd = 1 MSS (RFC 5681 §3.1);
  then slow start, resends counted against cwnd - pipe, and no further
  reduction for losses until the ACK passes what was outstanding at the
  timeout (RFC 6582 §3.2 step 4; Linux's Loss state).
- Never above the user's WINDOW (``cap``) and never below one MSS.

States, for traces: ``slow_start``, ``avoidance``, ``recovery``, ``loss``
(after an RTO, until the ACK passes what was outstanding then).
"""

from __future__ import annotations

from .base import CongestionControl
from .prr import Prr

#: RFC 3465: at most L x MSS per ACK in slow start.
ABC_L = 2
#: Linux's pacing gains: 2 in slow start, 1.2 after.
SS_PACE_GAIN = 2.0
CA_PACE_GAIN = 1.2


def initial_window(mss: int) -> int:
    """RFC 6928: min(10 MSS, max(2 MSS, 14600 bytes))."""
    return min(10 * mss, max(2 * mss, 14600))


class NewReno(CongestionControl):
    name = "newreno"

    def __init__(self, *, mss: int, window: int):
        super().__init__(mss=mss, window=window)
        self.cwnd = self._clamp(initial_window(mss))
        self.reductions = {"recovery": 0, "recovery_again": 0, "timeout": 0}
        self._reduced_at = float("inf")  # when the last reduction was
        self._phase = ""  # "" (growing), "recovery" or "loss"
        self._acc = 0  # bytes acknowledged toward the next MSS in avoidance
        self.prr: Prr | None = None

    # ----------------------------------------------------------------- state
    def _clamp(self, cwnd: float) -> int:
        return int(max(self.mss, min(cwnd, self.cap)))

    @property
    def in_slow_start(self) -> bool:
        return self._phase != "recovery" and (self.ssthresh is None
                                              or self.cwnd < self.ssthresh)

    @property
    def state(self) -> str:
        if self._phase:
            return self._phase
        return "slow_start" if self.in_slow_start else "avoidance"

    @property
    def pacing_gain(self) -> float:
        return SS_PACE_GAIN if self.in_slow_start else CA_PACE_GAIN

    def resend_budget(self, pipe: int) -> int | None:
        """In recovery with PRR (sr mode): what PRR's cwnd leaves above the
        pipe, and the fast retransmit at once even if that is nothing (RFC
        9937 §4, as Linux).  After an RTO (sr mode): cwnd - pipe, the slow
        start the RTO began (RFC 5681 §3.1: a sender MUST NOT send more than
        cwnd), resends RACK finds included, as Linux sends in its Loss
        state.  Otherwise no limit: Go-Back-N goes back over its window.
        (The timer's own resends are never held, common.recovery.)"""
        prr = self.prr
        if prr is None:
            if self._phase == "loss" and self.sack:
                return max(self.cwnd - pipe, 0)
            return None
        budget = self.cwnd - pipe
        return max(budget, self.mss) if prr.out == 0 else budget

    def on_path(self, mss: int, sack: bool) -> None:
        super().on_path(mss, sack)
        if not self._phase and self.ssthresh is None:
            self.cwnd = self._clamp(initial_window(mss))

    # ------------------------------------------------------------------ events
    def on_sent(self, nbytes: int, now: float) -> None:
        if self.prr is not None:
            self.prr.on_sent(nbytes)

    def on_resent(self, nbytes: int, now: float) -> None:
        if self.prr is not None:
            self.prr.on_sent(nbytes)

    def on_acked(self, nbytes: int, rtt: float | None, now: float, pipe: int,
                 cwnd_limited: bool, acks: int = 1) -> None:
        if self._phase == "recovery":
            self._recovery_ack(nbytes, pipe)
            return
        if rtt is not None:
            self._rtt_sample(rtt, now)
        if not cwnd_limited:
            return
        if self.in_slow_start:
            self._slow_start(nbytes, acks, now)
        else:
            self._avoidance(nbytes, now)

    def _recovery_ack(self, nbytes: int, pipe: int) -> None:
        if self.prr is not None:
            self.cwnd = self._clamp(pipe + self.prr.sndcnt(nbytes, pipe))
        else:  # RFC 6582 §3.2 step 5, partial ACK: deflate by what it
            # acknowledged, add back one MSS if that was at least one MSS
            self.cwnd = self._clamp(self.cwnd - nbytes + (self.mss if nbytes >= self.mss else 0))

    def _slow_start(self, nbytes: int, acks: int, now: float) -> None:
        grow = min(nbytes, ABC_L * self.mss * max(acks, 1)) // self._ss_divisor()
        new = self.cwnd + grow
        if self.ssthresh is not None and new > self.ssthresh:
            new = max(self.ssthresh, self.cwnd)  # the rest counts in avoidance
        self.cwnd = self._clamp(new)

    def _avoidance(self, nbytes: int, now: float) -> None:
        self._acc += nbytes
        if self._acc >= self.cwnd:
            self._acc -= self.cwnd
            self.cwnd = self._clamp(self.cwnd + self.mss)

    def _rtt_sample(self, rtt: float, now: float) -> None:
        """A hook for HyStart++ (CUBIC)."""

    def _ss_divisor(self) -> int:
        """What slow start's growth is divided by (HyStart++'s CSS, CUBIC)."""
        return 1

    def _reduced_ssthresh(self, flight: int) -> int:
        """RFC 5681 (4): max(FlightSize / 2, 2 MSS)."""
        return max(flight // 2, 2 * self.mss)

    def on_recovery_start(self, now: float, pipe: int, flight: int | None = None) -> None:
        if self._phase == "loss":
            return  # the RTO's reduction answered this window already
        self.reductions["recovery"] += 1
        self._reduce(now, pipe, pipe if flight is None else flight)

    def on_lost(self, nbytes: int, sent_at: float, now: float, pipe: int) -> None:
        # Not after an RTO: RFC 6582 §3.2 step 4 (no new recovery until the
        # ACK passes what was outstanding at the timeout) and Linux (no
        # reduction in its Loss state).  A resend of the timeout's lost
        # again would otherwise cut ssthresh from the tiny window slow
        # start has reached (CUBIC: 0.7 x that window).
        if self._phase == "recovery" and sent_at >= self._reduced_at:
            self.reductions["recovery_again"] += 1
            self._reduce(now, pipe, pipe)

    def _reduce(self, now: float, pipe: int, flight: int) -> None:
        """A congestion event: ssthresh, and the way down to it."""
        self._reduced_at = now
        self.ssthresh = ssthresh = self._reduced_ssthresh(flight)
        self._acc = 0
        self._phase = "recovery"
        if self.sack:
            self.prr = Prr(ssthresh, flight, self.mss)
            self.cwnd = self._clamp(min(self.cwnd, pipe))  # PRR sets it per ACK
        else:
            self.prr = None
            self.cwnd = self._clamp(ssthresh + 3 * self.mss)

    def on_recovery_end(self, now: float) -> None:
        if self._phase == "recovery":
            self.cwnd = self._clamp(self.ssthresh)
        self._phase = ""
        self.prr = None
        self._acc = 0
        self._after_recovery(now)

    def _after_recovery(self, now: float) -> None:
        """A hook: CUBIC starts its epoch here."""

    def on_rto(self, now: float, flight: int | None = None) -> None:
        flight = self.cwnd if flight is None else flight
        if self._phase != "loss":
            self.reductions["timeout"] += 1
            self._reduced_at = now
            self.ssthresh = self._reduced_ssthresh(flight)
            self._on_timeout_reduction(now)
        self._phase = "loss"
        self.prr = None
        self._acc = 0
        self.cwnd = self._clamp(self.mss)

    def _on_timeout_reduction(self, now: float) -> None:
        """A hook: CUBIC's own bookkeeping after an RTO."""
