"""CUBIC (RFC 9438), registered as ``cubic``: NewReno's slow start,
recovery and RTO (:mod:`.newreno`, with HyStart++ from :mod:`.hystart` to
leave the first slow start) and CUBIC's own window in congestion avoidance:

    W_cubic(t) = C (t - K)^3 + W_max            (segments, t in seconds)
    K = cbrt((W_max - cwnd_epoch) / C)

with C = 0.4 and beta = 0.7: a loss multiplies cwnd by beta (ssthresh =
cwnd x 0.7); fast convergence (§4.7) lowers W_max to cwnd (1 + beta) / 2
when the window did not regain the last W_max; each ACK moves cwnd by
(target - cwnd) / cwnd toward target = W_cubic(t + RTT), clamped to
[cwnd, 1.5 cwnd]; in the Reno-friendly region (§4.3) the window follows
W_est, which grows by alpha = 3 (1 - beta) / (1 + beta) segments per window
(1 once it passes the window before the loss).  After an RTO (§4.8) the
first avoidance epoch uses K = 0 and W_max = the window at its start.
Time during which the sender did not use its window (RFC 7661, RFC 9438
§5.8) moves the epoch on: the curve is shifted, not climbed meanwhile.
"""

from __future__ import annotations

from .hystart import HyStart
from .newreno import NewReno

C = 0.4
BETA = 0.7
ALPHA = 3 * (1 - BETA) / (1 + BETA)
#: RTT smoothing for W_cubic(t + RTT), as RFC 6298's SRTT.
RTT_GAIN = 0.125


class Cubic(NewReno):
    name = "cubic"

    def __init__(self, *, mss: int, window: int, fast_convergence: bool = True):
        super().__init__(mss=mss, window=window)
        self.fast_convergence = fast_convergence
        self.hystart = HyStart()
        self.w_max: float | None = None  # bytes
        self.k = 0.0  # seconds
        self.epoch: float | None = None  # when the avoidance epoch began
        self.cwnd_epoch = 0
        self.cwnd_prior = 0
        self.w_est = 0.0
        self.srtt: float | None = None
        self._after_rto = False
        self._cwnd_f = float(self.cwnd)
        self._sent_total = 0
        self._acked_total = 0
        self._last_ack: float | None = None

    # -------------------------------------------------------------- the curve
    def w_cubic(self, t: float) -> float:
        """W_cubic(t) in bytes, t seconds into the epoch."""
        return (C * (t - self.k) ** 3) * self.mss + self.w_max

    def _start_epoch(self, now: float) -> None:
        self.epoch = now
        self.cwnd_epoch = cwnd = self.cwnd
        self.w_est = float(cwnd)
        self._cwnd_f = float(cwnd)
        if self._after_rto or self.w_max is None or self.w_max < cwnd:
            self.w_max = float(cwnd)
            self.k = 0.0
            self._after_rto = False
        else:
            self.k = ((self.w_max - cwnd) / self.mss / C) ** (1 / 3)

    # ------------------------------------------------------------------ events
    def on_sent(self, nbytes: int, now: float) -> None:
        self._sent_total += nbytes
        super().on_sent(nbytes, now)

    def on_acked(self, nbytes: int, rtt: float | None, now: float, pipe: int,
                 cwnd_limited: bool, acks: int = 1) -> None:
        self._acked_total += nbytes
        if not cwnd_limited and self.epoch is not None and self._last_ack is not None:
            # RFC 9438 §5.8: no growth while the window is not in use, and
            # (as Linux) that time does not count on the curve either: the
            # epoch moves on by it, so W(t) resumes where it stood.
            self.epoch += now - self._last_ack
        self._last_ack = now
        super().on_acked(nbytes, rtt, now, pipe, cwnd_limited, acks)

    def _rtt_sample(self, rtt: float, now: float) -> None:
        self.srtt = rtt if self.srtt is None else self.srtt + RTT_GAIN * (rtt - self.srtt)
        if self.in_slow_start and self.hystart.on_ack(rtt, self._acked_total,
                                                      self._sent_total):
            self.ssthresh = self.cwnd  # HyStart++: on to congestion avoidance

    def _ss_divisor(self) -> int:
        # RFC 9406 §4.2: in CSS, cwnd += min(N, L x SMSS) / CSS_GROWTH_DIVISOR
        return self.hystart.divisor

    def _slow_start(self, nbytes: int, acks: int, now: float) -> None:
        super()._slow_start(nbytes, acks, now)
        if not self.in_slow_start:
            self.epoch = None

    def _avoidance(self, nbytes: int, now: float) -> None:
        if self.epoch is None:
            self._start_epoch(now)
        elif int(self._cwnd_f) != self.cwnd:
            self._cwnd_f = float(self.cwnd)  # NewReno's rules moved it meanwhile
        cwnd = self._cwnd_f
        t = now - self.epoch
        alpha = 1.0 if self.w_est >= self.cwnd_prior else ALPHA
        self.w_est += alpha * self.mss * nbytes / cwnd
        w_now = self.w_cubic(t)
        if w_now < self.w_est:  # the Reno-friendly region
            cwnd = max(cwnd, self.w_est)
        else:
            target = min(max(self.w_cubic(t + (self.srtt or 0.0)), cwnd), 1.5 * cwnd)
            cwnd += (target - cwnd) * nbytes / cwnd
        self._cwnd_f = min(cwnd, float(self.cap))
        self.cwnd = self._clamp(self._cwnd_f)

    def _reduced_ssthresh(self, flight: int) -> int:
        return max(int(self.cwnd * BETA), 2 * self.mss)

    def _reduce(self, now: float, pipe: int, flight: int) -> None:
        self._on_congestion()
        super()._reduce(now, pipe, flight)

    def _on_congestion(self) -> None:
        """RFC 9438 §4.6-4.7: W_max (fast convergence), cwnd_prior, a new epoch."""
        cwnd = self.cwnd
        self.hystart.stop()
        if self.fast_convergence and self.w_max is not None and cwnd < self.w_max:
            self.w_max = cwnd * (1 + BETA) / 2
        else:
            self.w_max = float(cwnd)
        self.cwnd_prior = cwnd
        self.epoch = None

    def _on_timeout_reduction(self, now: float) -> None:
        self._on_congestion()
        self._after_rto = True
