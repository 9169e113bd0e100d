"""Retransmission timeout estimation: RFC 6298 with Karn's algorithm.

The estimator only does arithmetic; callers decide which samples are valid
(Karn: never one taken from a retransmitted segment) and pass them in.
"""

from __future__ import annotations

#: RFC 6298 §2: the gains and the variance multiplier.
ALPHA = 1 / 8
BETA = 1 / 4
K = 4
#: Clock granularity G, in seconds.
GRANULARITY = 0.001
INITIAL_RTO = 1.0
DEFAULT_MIN_RTO = 0.2
DEFAULT_MAX_RTO = 60.0


class RttEstimator:
    """SRTT, RTTVAR and the RTO, with exponential backoff and clamping."""

    __slots__ = (
        "min_rto",
        "max_rto",
        "initial_rto",
        "granularity",
        "srtt",
        "rttvar",
        "backoff",
        "_base",
        "rto",
        "samples",
        "sample_min",
        "sample_max",
        "sample_sum",
    )

    def __init__(
        self,
        min_rto: float = DEFAULT_MIN_RTO,
        max_rto: float = DEFAULT_MAX_RTO,
        initial_rto: float = INITIAL_RTO,
        granularity: float = GRANULARITY,
    ):
        if not 0 < min_rto <= max_rto:
            raise ValueError(f"need 0 < min RTO <= max RTO, got {min_rto} and {max_rto}")
        self.min_rto = min_rto
        self.max_rto = max_rto
        self.initial_rto = initial_rto
        self.granularity = granularity
        self.srtt: float | None = None
        self.rttvar: float | None = None
        self.backoff = 0
        self._base = self._clamp(initial_rto)
        self.rto = self._base
        self.samples = 0
        self.sample_min = float("inf")
        self.sample_max = 0.0
        self.sample_sum = 0.0

    def _clamp(self, rto: float) -> float:
        return min(self.max_rto, max(self.min_rto, rto))

    def on_sample(self, r: float) -> None:
        """Feed one valid RTT measurement (seconds); clears any backoff."""
        if r < 0:
            return
        if self.srtt is None:
            self.srtt = r
            self.rttvar = r / 2
        else:
            self.rttvar = (1 - BETA) * self.rttvar + BETA * abs(self.srtt - r)
            self.srtt = (1 - ALPHA) * self.srtt + ALPHA * r
        self._base = self._clamp(self.srtt + max(self.granularity, K * self.rttvar))
        self.backoff = 0
        self.rto = self._base
        self.samples += 1
        self.sample_sum += r
        if r < self.sample_min:
            self.sample_min = r
        if r > self.sample_max:
            self.sample_max = r

    def on_timeout(self) -> None:
        """The timer expired: double the RTO, up to the maximum (RFC 6298 §5.5)."""
        if self.rto < self.max_rto:
            self.backoff += 1
            self.rto = min(self.max_rto, self._base * (1 << self.backoff))

    @property
    def base_rto(self) -> float:
        """The RTO without the backoff of recent timeouts."""
        return self._base

    @property
    def sample_avg(self) -> float | None:
        return self.sample_sum / self.samples if self.samples else None
