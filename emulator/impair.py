"""What the link does to each datagram: pure decisions, no sockets, no threads, no clock.

:class:`Impairer` takes one datagram at a time (its arrival time and its length,
both given by the caller) and returns a :class:`Verdict`: dropped and why, or
forwarded, with the bits to flip, whether to duplicate it, whether to hold it
back for reordering, and the delay it gets after the bottleneck.

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
       the bit's position when the datagram is hit;
    8. RED (``aqm == "red"``): one draw, the ``u`` RED compares with its
       drop probability if the datagram reaches the queue.

    The draws are made even for a datagram the drop list, the outage or the
    queue then drops, so the same seed and the same sequence of datagram
    lengths give the same decisions even though the time-dependent causes
    (outage, queue) may fall differently from one run to the next.

Precedence of the drop causes decided here, first match wins:
``noport`` (with forwarding by port: no TCP destination port to forward to),
``list`` (the drop list), ``blackhole`` (the outage), ``burst`` (a
Gilbert-Elliott loss, in either state), ``loss`` (random loss).  Only a
datagram dropped by none of them reaches the bottleneck
(:mod:`emulator.queue`), which may drop it too (``queue``, ``red``,
``codel``).  Corruption is no drop: a corrupted datagram is forwarded.

Timing of a forwarded datagram arriving at ``now``:
``release = departure + delay + jitter * U``, where ``departure`` is ``now``
without a link speed, else the end of its serialisation at the bottleneck
(:class:`~emulator.queue.Bottleneck`).  Jitter can therefore reorder
datagrams by itself.  The verdict's ``after`` is ``delay + jitter * U``.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from emulator.aqm import (
    CODEL_INTERVAL,
    CODEL_TARGET,
    RED_AVPKT,
    RED_MAX_P,
    RED_MAX_TH,
    RED_MIN_TH,
    RED_W_Q,
    CoDel,
    Red,
)
from emulator.queue import CODEL, QUEUE, RED, Bottleneck

NOPORT = "noport"
LIST = "list"
BLACKHOLE = "blackhole"
BURST = "burst"
LOSS = "loss"
#: Drop causes the impairer decides, in order of precedence.
IMPAIR_CAUSES: tuple[str, ...] = (NOPORT, LIST, BLACKHOLE, BURST, LOSS)
#: Every drop cause, in order: the impairer's, then the bottleneck's.
DROP_CAUSES: tuple[str, ...] = (*IMPAIR_CAUSES, QUEUE, RED, CODEL)
#: The active queue managements by name.
AQMS: tuple[str, ...] = ("none", RED, CODEL)

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
    queue: int | None = 65536  #: queue limit in bytes (with ``rate``); None = none
    queue_packets: int | None = None  #: queue limit in datagrams (with ``rate``); None = none
    aqm: str = "none"  #: active queue management at the queue: none, red, codel
    red_min: float = RED_MIN_TH  #: RED min_th, packets
    red_max: float = RED_MAX_TH  #: RED max_th, packets
    red_max_p: float = RED_MAX_P  #: RED max_p, drop probability at max_th
    red_wq: float = RED_W_Q  #: RED w_q, weight of the average
    red_avpkt: int = RED_AVPKT  #: RED: typical datagram, bytes (idle decay)
    codel_target: float = CODEL_TARGET  #: CoDel target sojourn time, seconds
    codel_interval: float = CODEL_INTERVAL  #: CoDel interval, seconds
    ge_p: float = 0.0  #: Gilbert-Elliott P(good -> bad) per datagram
    ge_r: float = 0.0  #: Gilbert-Elliott P(bad -> good) per datagram
    ge_loss: float = 1.0  #: loss probability in the bad state
    ge_good_loss: float = 0.0  #: loss probability in the good state
    drop_list: frozenset[int] = field(default_factory=frozenset)  #: 1-based indices
    blackhole: tuple[float, float] | None = None  #: (start, duration) after 1st datagram
    reorder_hold: float | None = None  #: hold timeout; None = max(2 * delay, 50 ms)
    by_port: bool = False  #: forward to the TCP destination port each datagram names

    def __post_init__(self) -> None:
        for name in ("loss", "ber", "corrupt", "reorder", "dup", "ge_p", "ge_r", "ge_loss",
                     "ge_good_loss"):
            _check_prob(name, getattr(self, name))
        for name in ("delay", "jitter", "rate"):
            value = getattr(self, name)
            if not (value >= 0.0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if self.queue is not None and self.queue < 1:
            raise ValueError(f"queue must be at least 1 byte, got {self.queue!r}")
        if self.queue_packets is not None and self.queue_packets < 1:
            raise ValueError(f"queue must hold at least 1 datagram, got {self.queue_packets!r}")
        if self.aqm not in AQMS:
            raise ValueError(f"aqm must be one of {', '.join(AQMS)}, got {self.aqm!r}")
        if self.red_avpkt < 1:
            raise ValueError(f"RED avpkt must be at least 1 byte, got {self.red_avpkt!r}")
        self.make_aqm()  # raises ValueError for settings RED or CoDel refuse
        if any(n < 1 for n in self.drop_list):
            raise ValueError("drop list indices are 1-based (>= 1)")
        if self.blackhole is not None:
            start, duration = self.blackhole
            if not (start >= 0.0 and duration >= 0.0):
                raise ValueError("blackhole start and duration must be >= 0")
        if self.reorder_hold is not None and not self.reorder_hold >= 0.0:
            raise ValueError("reorder hold must be >= 0")

    def make_aqm(self) -> Red | CoDel | None:
        """A new RED or CoDel with these settings, or None."""
        if self.aqm == RED:
            idle_tx = self.red_avpkt * 8.0 / self.rate if self.rate > 0 else 0.0
            return Red(self.red_min, self.red_max, self.red_max_p, self.red_wq, idle_tx)
        if self.aqm == CODEL:
            return CoDel(self.codel_target, self.codel_interval)
        return None

    def make_bottleneck(self) -> Bottleneck | None:
        """A new bottleneck with these settings, or None without a link speed."""
        if self.rate <= 0:
            return None
        return Bottleneck(self.rate, self.queue, self.queue_packets, self.make_aqm())

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
            or self.by_port
        )


class Verdict:
    """The decision about one datagram."""

    __slots__ = ("n", "drop", "flips", "dup", "reorder", "release", "after", "u", "nbytes")

    def __init__(self, n, drop, flips, dup, reorder, release, after=0.0, u=1.0, nbytes=0):
        self.n: int = n  #: 1-based index of the datagram among those received
        self.nbytes: int = nbytes  #: its length
        self.drop: str | None = drop  #: drop cause, None when forwarded
        self.flips: list[int] = flips  #: bit positions to flip (0 = MSB of byte 0)
        self.dup: bool = dup  #: send a second identical copy right after it
        self.reorder: bool = reorder  #: hold it back until the next datagram leaves
        self.release: float = release  #: earliest time it may leave, without a bottleneck
        self.after: float = after  #: delay + jitter, added after the bottleneck
        self.u: float = u  #: RED's uniform draw (1.0 without RED: never below p_a)

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
        self._red = imp.aqm == RED
        self._bad = False  # Gilbert-Elliott state
        self._log1mp = math.log1p(-imp.ber) if 0.0 < imp.ber < 1.0 else 0.0
        self._drop_list = imp.drop_list
        self._t0: float | None = None
        # Counters of the decisions made.
        self.received = 0
        self.bytes_received = 0
        self.dropped: dict[str, int] = dict.fromkeys(IMPAIR_CAUSES, 0)
        self.corrupted = 0
        self.bits_flipped = 0
        self.duplicated = 0
        self.reordered = 0
        self.bad_state_datagrams = 0

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

    def decide(self, now: float, nbytes: int, routable: bool = True) -> Verdict:
        """The verdict for the next datagram, ``nbytes`` long, arriving at ``now``;
        one not ``routable`` (no port to forward it to) is dropped as ``noport``."""
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
        u = rnd() if self._red else 1.0

        # Drop causes, in order of precedence.
        if self._t0 is None:
            self._t0 = now
        cause = None
        if not routable:
            cause = NOPORT
        elif n in self._drop_list:
            cause = LIST
        elif imp.blackhole is not None and (
            imp.blackhole[0] <= now - self._t0 < imp.blackhole[0] + imp.blackhole[1]
        ):
            cause = BLACKHOLE
        elif burst:
            cause = BURST
        elif lost:
            cause = LOSS
        if cause is not None:
            self.dropped[cause] += 1
            return Verdict(n, cause, [], False, False, now, nbytes=nbytes)

        if flips:
            self.corrupted += 1
            self.bits_flipped += len(flips)
        if dup:
            self.duplicated += 1
        if reorder:
            self.reordered += 1
        after = imp.delay + extra
        return Verdict(n, None, flips, dup, reorder, now + after, after, u, nbytes)

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
