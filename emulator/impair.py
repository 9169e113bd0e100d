"""What the link does to each datagram: pure decisions, no sockets, no threads, no clock.

:class:`Impairer` takes one datagram at a time (its arrival time and its length,
both given by the caller) and returns a :class:`Verdict`: dropped and why, or
forwarded, with the bits to flip, whether to duplicate it, whether to hold it
back for reordering, and when it may leave.

Determinism
    Every random number comes from the one ``random.Random`` passed in, and
    for every datagram the draws are made in this fixed order, whatever
    happens to the datagram afterwards:

    1. Gilbert-Elliott, when enabled: one draw for the loss in the current
       state, then one for the state transition;
    2. random loss (``loss > 0``): one draw;
    3. duplication (``dup > 0``): one draw;
    4. reordering (``reorder > 0``): one draw;
    5. jitter (``jitter > 0``): one draw;
    6. bit errors (``ber > 0``): one draw per flipped bit plus one;
    7. single-bit corruption (``corrupt > 0``): one draw, and one more for
       the bit's position when the datagram is hit.

    The draws are made even for a datagram the drop list, the outage or the
    queue then drops, so the same seed and the same sequence of datagram
    lengths give the same decisions even though the time-dependent causes
    (outage, queue) may fall differently from one run to the next.

Precedence of the drop causes, first match wins:
``list`` (the drop list), ``blackhole`` (the outage), ``burst`` (a
Gilbert-Elliott loss, in either state), ``loss`` (random loss), ``queue``
(tail drop at the serialisation queue).  Only a datagram dropped by none of
them enters the queue.

Timing of a forwarded datagram arriving at ``now``:
``release = departure + delay + jitter * U``, where ``departure`` is ``now``
without a link speed, else ``max(now, link free) + bytes * 8 / rate``
(UDP payload bytes; no IP or UDP header counted).  Jitter can therefore
reorder datagrams by itself.
"""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass, field

LIST = "list"
BLACKHOLE = "blackhole"
BURST = "burst"
LOSS = "loss"
QUEUE = "queue"
#: Drop causes in order of precedence.
DROP_CAUSES: tuple[str, ...] = (LIST, BLACKHOLE, BURST, LOSS, QUEUE)

#: Minimum hold of a datagram selected for reordering (seconds).
MIN_REORDER_HOLD = 0.05


def _check_prob(name: str, value: float) -> None:
    if not (0.0 <= value <= 1.0):
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")


@dataclass(frozen=True)
class Impairments:
    """The link's settings in natural units (probabilities, seconds, bits/s)."""

    loss: float = 0.0  #: probability a datagram is lost
    ber: float = 0.0  #: probability a bit is flipped
    corrupt: float = 0.0  #: probability a datagram gets exactly one flipped bit
    reorder: float = 0.0  #: probability a datagram is held back (reordered)
    dup: float = 0.0  #: probability a datagram is sent twice
    delay: float = 0.0  #: one-way delay, seconds
    jitter: float = 0.0  #: extra delay, uniform in [0, jitter), seconds
    rate: float = 0.0  #: link speed in bits per second; 0 = unlimited
    queue: int = 65536  #: serialisation queue size in bytes (with ``rate``)
    ge_p: float = 0.0  #: Gilbert-Elliott P(good -> bad) per datagram
    ge_r: float = 0.0  #: Gilbert-Elliott P(bad -> good) per datagram
    ge_loss: float = 1.0  #: loss probability in the bad state
    ge_good_loss: float = 0.0  #: loss probability in the good state
    drop_list: frozenset[int] = field(default_factory=frozenset)  #: 1-based indices
    blackhole: tuple[float, float] | None = None  #: (start, duration) after 1st datagram
    reorder_hold: float | None = None  #: hold timeout; None = max(2 * delay, 50 ms)

    def __post_init__(self) -> None:
        for name in ("loss", "ber", "corrupt", "reorder", "dup", "ge_p", "ge_r", "ge_loss",
                     "ge_good_loss"):
            _check_prob(name, getattr(self, name))
        for name in ("delay", "jitter", "rate"):
            value = getattr(self, name)
            if not (value >= 0.0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if self.queue < 1:
            raise ValueError(f"queue must be at least 1 byte, got {self.queue!r}")
        if any(n < 1 for n in self.drop_list):
            raise ValueError("drop list indices are 1-based (>= 1)")
        if self.blackhole is not None:
            start, duration = self.blackhole
            if not (start >= 0.0 and duration >= 0.0):
                raise ValueError("blackhole start and duration must be >= 0")
        if self.reorder_hold is not None and not self.reorder_hold >= 0.0:
            raise ValueError("reorder hold must be >= 0")

    @property
    def ge_enabled(self) -> bool:
        return self.ge_p > 0.0 or self.ge_good_loss > 0.0

    @property
    def hold(self) -> float:
        """How long a datagram selected for reordering waits at most for a successor."""
        if self.reorder_hold is not None:
            return self.reorder_hold
        return max(2.0 * self.delay, MIN_REORDER_HOLD)

    @property
    def needs_scheduler(self) -> bool:
        """True when datagrams must wait (delay, jitter, link speed or reordering)."""
        return self.delay > 0 or self.jitter > 0 or self.rate > 0 or self.reorder > 0

    @property
    def transparent(self) -> bool:
        """True when the link does nothing at all to the datagrams."""
        return not (
            self.needs_scheduler
            or self.loss > 0
            or self.ber > 0
            or self.corrupt > 0
            or self.dup > 0
            or self.ge_enabled
            or self.drop_list
            or self.blackhole is not None
        )


class SerialLink:
    """A link of ``rate`` bits/s behind a FIFO of ``limit`` bytes with tail drop.

    A datagram is in the queue from its arrival until the end of its
    serialisation (the one being serialised counts too).
    """

    __slots__ = ("rate", "limit", "free_at", "queued", "_fifo")

    def __init__(self, rate: float, limit: int):
        if rate <= 0:
            raise ValueError("rate must be > 0")
        self.rate = float(rate)
        self.limit = int(limit)
        self.free_at = -math.inf
        self.queued = 0
        self._fifo: deque[tuple[float, int]] = deque()

    def backlog(self, now: float) -> int:
        """Bytes still queued or being serialised at ``now``."""
        fifo = self._fifo
        while fifo and fifo[0][0] <= now:
            self.queued -= fifo.popleft()[1]
        return self.queued

    def admit(self, now: float, nbytes: int) -> float | None:
        """Departure time (end of serialisation) of a datagram, or None if tail-dropped."""
        if self.backlog(now) + nbytes > self.limit:
            return None
        departure = max(now, self.free_at) + nbytes * 8.0 / self.rate
        self.free_at = departure
        self._fifo.append((departure, nbytes))
        self.queued += nbytes
        return departure


class Verdict:
    """The decision about one datagram."""

    __slots__ = ("n", "drop", "flips", "dup", "reorder", "release")

    def __init__(self, n, drop, flips, dup, reorder, release):
        self.n: int = n  #: 1-based index of the datagram among those received
        self.drop: str | None = drop  #: drop cause, None when forwarded
        self.flips: list[int] = flips  #: bit positions to flip (0 = MSB of byte 0)
        self.dup: bool = dup  #: send a second identical copy right after it
        self.reorder: bool = reorder  #: hold it back until the next datagram leaves
        self.release: float = release  #: earliest time it may leave

    def __repr__(self) -> str:
        return (
            f"Verdict(n={self.n}, drop={self.drop!r}, flips={self.flips!r}, dup={self.dup}, "
            f"reorder={self.reorder}, release={self.release!r})"
        )

    def key(self) -> tuple:
        """Everything decided, for comparing two runs."""
        return (self.n, self.drop, tuple(self.flips), self.dup, self.reorder, self.release)


def flip_bits(data: bytearray, positions) -> None:
    """Flip the given bit positions of ``data`` in place (bit 0 is the MSB of byte 0)."""
    for pos in positions:
        data[pos >> 3] ^= 0x80 >> (pos & 7)


class Impairer:
    """Decides, datagram by datagram, what the link does.  Not thread-safe: one caller."""

    def __init__(self, imp: Impairments, rng: random.Random):
        self.imp = imp
        self._random = rng.random
        self._link = SerialLink(imp.rate, imp.queue) if imp.rate > 0 else None
        self._bad = False  # Gilbert-Elliott state
        self._log1mp = math.log1p(-imp.ber) if 0.0 < imp.ber < 1.0 else 0.0
        self._drop_list = imp.drop_list
        self._t0: float | None = None
        # Counters of the decisions made.
        self.received = 0
        self.bytes_received = 0
        self.dropped: dict[str, int] = dict.fromkeys(DROP_CAUSES, 0)
        self.corrupted = 0
        self.bits_flipped = 0
        self.duplicated = 0
        self.reordered = 0
        self.bad_state_datagrams = 0

    @property
    def in_bad_state(self) -> bool:
        return self._bad

    def bit_errors(self, nbits: int) -> list[int]:
        """Positions of flipped bits among ``nbits``, each flipped with probability ``ber``.

        The gap between two errors is geometric, so the cost is one draw per
        error (plus one), not one per bit; the count is binomial(nbits, ber).
        """
        ber = self.imp.ber
        if ber <= 0.0 or nbits <= 0:
            return []
        if ber >= 1.0:
            return list(range(nbits))
        rnd = self._random
        log1mp = self._log1mp
        log = math.log
        out: list[int] = []
        pos = -1
        while True:
            # 1 - U is in (0, 1]; floor(log(1-U) / log(1-p)) ~ Geometric(p) failures.
            pos += 1 + int(log(1.0 - rnd()) / log1mp)
            if pos >= nbits:
                return out
            out.append(pos)

    def decide(self, now: float, nbytes: int) -> Verdict:
        """The verdict for the next datagram, ``nbytes`` long, arriving at ``now``."""
        imp = self.imp
        rnd = self._random
        self.received += 1
        self.bytes_received += nbytes
        n = self.received

        # Random draws, always all of them, always in this order.
        burst = False
        if imp.ge_p > 0.0 or imp.ge_good_loss > 0.0:
            u = rnd()
            v = rnd()
            if self._bad:
                self.bad_state_datagrams += 1
                burst = u < imp.ge_loss
                if v < imp.ge_r:
                    self._bad = False
            else:
                burst = u < imp.ge_good_loss
                if v < imp.ge_p:
                    self._bad = True
        lost = imp.loss > 0.0 and rnd() < imp.loss
        dup = imp.dup > 0.0 and rnd() < imp.dup
        reorder = imp.reorder > 0.0 and rnd() < imp.reorder
        extra = imp.jitter * rnd() if imp.jitter > 0.0 else 0.0
        flips = self.bit_errors(nbytes * 8) if imp.ber > 0.0 else []
        if imp.corrupt > 0.0 and rnd() < imp.corrupt and nbytes:
            bit = min(int(rnd() * nbytes * 8), nbytes * 8 - 1)
            if bit not in flips:
                flips = sorted([*flips, bit])

        # Drop causes, in order of precedence.
        if self._t0 is None:
            self._t0 = now
        cause = None
        departure = now
        if n in self._drop_list:
            cause = LIST
        elif imp.blackhole is not None and (
            imp.blackhole[0] <= now - self._t0 < imp.blackhole[0] + imp.blackhole[1]
        ):
            cause = BLACKHOLE
        elif burst:
            cause = BURST
        elif lost:
            cause = LOSS
        elif self._link is not None:
            admitted = self._link.admit(now, nbytes)
            if admitted is None:
                cause = QUEUE
            else:
                departure = admitted
        if cause is not None:
            self.dropped[cause] += 1
            return Verdict(n, cause, [], False, False, now)

        if flips:
            self.corrupted += 1
            self.bits_flipped += len(flips)
        if dup:
            self.duplicated += 1
        if reorder:
            self.reordered += 1
        return Verdict(n, None, flips, dup, reorder, departure + imp.delay + extra)

    def counters(self) -> dict:
        return {
            "received": self.received,
            "bytes_received": self.bytes_received,
            "dropped": dict(self.dropped),
            "dropped_total": sum(self.dropped.values()),
            "corrupted": self.corrupted,
            "bits_flipped": self.bits_flipped,
            "duplicated": self.duplicated,
            "reordered": self.reordered,
        }
