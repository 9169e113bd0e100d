"""The receiver's ACK policy: when an ACK goes and what it says (the
cumulative number, the window, the SACK and D-SACK blocks, the timestamp
echo).

A part of :class:`common.receiver_core.ReceiverCore` (its base class),
split out by what it owns: the ACK held back for the end of a burst, the
count of ACKs held, the duplicate to report (RFC 2883), the point the last
ACK named, and in-order data's clock (:class:`common.ackclock.AckClock`).
It works on the core's stream state (``rcv_nxt``, ``base``), its window
(``rwnd``), its out-of-order store (``reassembly``) and the options the
handshake agreed (``sack_ok``, ``ts_ok``, ``ts_recent``); it appends to the
core's ``outbox`` and never reads a clock.
"""

from __future__ import annotations

from .ackclock import AckClock
from .rcv_state import ReceiverState
from .segment import ACK, Segment
from .seq import wrap
from .timestamps import ts_now

#: The states in which the peer's FIN is in, so an ACK covers it too.
_FIN_TAKEN = (ReceiverState.LAST_ACK, ReceiverState.DONE)
#: With ack_per_burst, at least every this many out-of-order arrivals (or
#: gap fills, or duplicates) get an ACK at once (see _ack_soon).
ACK_EVERY = 8


class AckPolicy:
    """The ACKs of :class:`common.receiver_core.ReceiverCore` (see there)."""

    def _init_acks(self, ack_per_burst: bool, ack_every: int,
                   delayed_ack: float | None) -> None:
        self.ack_per_burst = ack_per_burst  # see _ack_soon
        self._held_acks = 0  # ACKs _ack_soon held back since the last one sent
        self.ack_pending = False  # an ACK _ack_soon held for the burst's end
        self.ack_clock = AckClock(ack_every, delayed_ack)  # in-order data's ACKs
        self._dsack: tuple[int, int] | None = None  # a duplicate to report (RFC 2883)
        self._last_ack_off = 0  # the stream offset our last ACK named (for _take_ts)

    def _ack_no(self) -> int:
        off = self.rcv_nxt + (1 if self.state in _FIN_TAKEN else 0)
        return wrap(off, self.base)

    def make_ack(self, now: float, flags: int = ACK) -> Segment:
        field, closes = self.rwnd.advertise(self.rcv_nxt)
        if closes:
            self.stats.zero_windows += 1
        sack = ()
        if self.sack_ok:
            most = self.sack_room  # (3 beside timestamps: 40 bytes of options)
            sack = self.reassembly.sack_blocks(self.base)[:most] if self.reassembly.pieces \
                else ()
            if self._dsack is not None:
                # RFC 2883: a duplicate is reported once, as the first block.
                left, right = self._dsack
                self._dsack = None
                sack = ((wrap(left, self.base), wrap(right, self.base)),) + sack[:most - 1]
        self.ack_pending = False
        self._held_acks = 0
        self.ack_clock.sent()
        self.reassembly.fresh = 0
        self.stats.acks_sent += 1
        if self.trace:
            self._event(now, "rwnd", win=self.rwnd.last_window, queue=self.rwnd.unwritten,
                        ooo=self.ooo_bytes)
        # Our FIN takes ISN + 1; only what follows it on the wire carries
        # ISN + 2, so sequence numbers never go backwards (PROTOCOL.md §3).
        seq_off = 1 if self._fin_sent else 0
        self._last_ack_off = self.rcv_nxt
        seg = Segment((self.isn + 1 + seq_off) & 0xFFFFFFFF, self._ack_no(), flags, field,
                      b"", self.src_port, self.dst_port)
        if sack:
            seg.sack = sack
        if self.ts_ok:
            seg.ts_val = ts_now(now)
        seg.ts_ecr = self.ts_recent
        return seg

    @property
    def sack_room(self) -> int:
        """SACK blocks an ACK can carry: 4, or 3 beside the timestamps."""
        return 3 if self.ts_ok else 4

    def _ack_now(self, now: float) -> None:
        self.outbox.append(self.make_ack(now))

    def flush_ack(self, now: float) -> None:
        """The end of a burst read: send the ACK left pending (in-order data's,
        unless a delayed-ACK timer lets it wait; the batched SACK news)."""
        if self.ack_pending:
            self._ack_now(now)
        elif self.ack_clock.unacked and not self.ack_clock.may_wait():
            self._ack_now(now)

    def _ack_soon(self, now: float, count: int = 1) -> None:
        """The ACK RFC 5681 §4.2 wants at once for out-of-order data, a gap
        filled or a duplicate.  With ``ack_per_burst`` and SACK on, it goes
        at the end of the burst being read (flush_ack) instead, one for all,
        as a TCP receiver behind GRO sends one ACK per coalesced batch: its
        SACK blocks say what every one of them would have said, newest
        first.  A receiver that keeps up reads one datagram per burst, so
        this changes nothing; one that falls behind sends fewer ACKs and
        spends its time on data.  Still, every ACK_EVERY-th goes at once, so
        that one lost ACK never hides a whole window of SACK news, and so does
        the one that finds as many blocks changed as an ACK can carry (four,
        three beside a D-SACK): one more would leave a block that changed
        unreported, and a sender takes what a SACK never reports as lost
        (found late, by RACK, or resent needlessly).  Without
        SACK, duplicate ACKs are all the sender has to go on: each goes at
        once.  The next in-order segments are acknowledged at once too
        (common.ackclock.QUICK_ACKS)."""
        self.ack_clock.disorder()
        if self.ack_per_burst and self.sack_ok:
            self._held_acks += count
            room = self.sack_room - (self._dsack is not None)
            if self._held_acks < ACK_EVERY and self.reassembly.fresh < room:
                self.ack_pending = True
                return
        self._ack_now(now)
