"""The receiver's opening and closing handshakes: the SYN's options (the
name, the file size, window scaling, SACK, timestamps, a resume), the
SYN-ACK and its resends, the resume's answer, the timestamp to echo, and
the FIN both ways with its resends in LAST_ACK.

A part of :class:`common.receiver_core.ReceiverCore` (its base class),
split out by what it owns: the peer's ISN, the SYN-ACK and when it went,
what was agreed (``sack_ok``, ``ts_ok``) and offered (``offered_name``,
``resume_offer``, ``resume_at``), the TSval to echo (``ts_recent``), the
sender's FIN (``fin_off``, ``digest``, a FIN that came past a hole) and our
own FIN's timer.  It works on the core's stream state (``base``,
``rcv_nxt``, ``file_size``), window (``rwnd``) and ACKs
(:class:`common.rcv_acks.AckPolicy`); it appends to the core's ``outbox``
and never reads a clock.
"""

from __future__ import annotations

from dataclasses import replace

from . import resume
from .rcv_state import ReceiverState
from .segment import ACK, FIN, SYN, Segment
from .seq import unwrap
from .timestamps import OPTION_LEN as TS_OPTION_LEN
from .timestamps import echo_rtt, newer, ts_now

#: FIN resends in LAST_ACK before the receiver stops waiting for the final ACK.
LAST_ACK_RETRIES = 3


class Handshake:
    """The handshakes of :class:`common.receiver_core.ReceiverCore` (see there)."""

    def _init_handshake(self, timestamps: bool,
                        resume_offer: tuple[int, bytes] | None) -> None:
        self.irs = 0
        #: The file name the SYN offered and this end took (PROTOCOL.md §9),
        #: as the bytes received, or None.
        self.offered_name: bytes | None = None
        # Resume (common/resume.py): what this end may offer, (bytes held,
        # tag); then the offset the transfer starts at (None: not known yet).
        # Once resumed, base and file_size count from there.
        self.resume_offer = resume_offer
        self.resume_at: int | None = None
        self._nudged: float | None = None  # the SYN-ACK last sent again to learn it
        self.digest: bytes | None = None  # the sender's SHA-256, from its FIN
        self.fin_off: int | None = None
        self._early_fin: tuple[int, bytes | None] | None = None  # a FIN past a hole
        self.sack_ok = False
        # RFC 7323 timestamps: accepted if the SYN offers them and
        # ``timestamps``; ts_recent is the TSval we echo (§4.3), taken from a
        # segment at or before _last_ack_off, the point our last ACK named.
        self.timestamps = timestamps
        self.ts_ok = False
        self.ts_recent = 0
        self._synack: Segment | None = None
        self._synack_at = 0.0
        self._fin_deadline: float | None = None
        self._fin_rexmits = 0
        self._fin_sent = False  # our FIN took ISN + 1: later segments carry ISN + 2

    # ------------------------------------------------------------ opening
    def _on_syn(self, seg: Segment, now: float) -> None:
        self.irs = seg.seq
        # The name option (PROTOCOL.md §9): the name is the SYN's payload and
        # takes ISN + 1 .. ISN + len(name); the file starts after it.  What the
        # name may be is the shell's business (common/names.py).
        name = bytes(seg.payload) if seg.name_follows and seg.payload else None
        self.offered_name = name
        self.base = (seg.seq + 1 + len(name or b"")) & 0xFFFFFFFF
        self.file_size = seg.file_size
        self.last_heard = now
        self.src_port, self.dst_port = self.src_port or seg.dst_port, self.dst_port or seg.src_port
        self.ts_ok = self.timestamps and seg.ts_val is not None
        if self.ts_ok:
            self.ts_recent = seg.ts_val
            # a full segment now carries 12 bytes of timestamps less (RFC 6691)
            self.rwnd.mss = self.mss - TS_OPTION_LEN
        window = self.rwnd.on_syn(seg.wscale is not None)
        self.sack_ok = self.mode == "sr" and seg.sack_permitted
        self._set_state(ReceiverState.SYN_RECEIVED, now)
        if (self.size_limit is not None and seg.file_size is not None
                and seg.file_size > self.size_limit):
            self.abort(now, f"the file ({seg.file_size} bytes) is larger than this receiver "
                            f"accepts ({self.size_limit} bytes free or allowed)")
            return
        offer = self.resume_offer
        if offer is not None and (offer[0] <= 0 or seg.file_size is not None
                                  and offer[0] > seg.file_size):
            offer = None  # (nothing held, or more than the file: not a prefix of it)
        if offer is None:
            self.resume_at = 0
        self._synack = Segment(
            seq=self.isn, ack=self.base, flags=SYN | ACK, window=window, resume_offer=offer,
            src_port=self.src_port, dst_port=self.dst_port, mss=self.mss,
            wscale=self.rwnd.wscale if seg.wscale is not None else None,
            sack_permitted=self.sack_ok, name_follows=name is not None,
            ts_val=ts_now(now) if self.ts_ok else None, ts_ecr=self.ts_recent,
        )
        self._synack_at = now
        self.outbox.append(self._synack)

    def _on_syn_again(self, seg: Segment, now: float) -> None:
        """A retransmitted SYN: the same SYN-ACK again (echoing this SYN's
        timestamp, so that the sender times this round)."""
        self.last_heard = now
        if self.ts_ok and seg.ts_val is not None:
            self.ts_recent = seg.ts_val
            self._synack = replace(self._synack, ts_val=ts_now(now), ts_ecr=seg.ts_val)
        self.outbox.append(self._synack)

    def _on_handshake_ack(self, seg: Segment, now: float) -> bool:
        """In SYN_RECEIVED, an ACK: if it acknowledges our SYN-ACK (and,
        after a resume offer, says where the sender starts), the first RTT
        sample and ESTABLISHED; False: ``seg`` is dropped."""
        if seg.ack != (self.isn + 1) & 0xFFFFFFFF:
            return False
        if self.resume_at is None and not self._resume_decided(seg, now):
            return False
        echo = echo_rtt(now, seg.ts_ecr) if self.ts_ok and seg.ts_val is not None else None
        if echo is not None:
            self.rtt.on_sample(echo)
        elif self._synack is not None:
            self.rtt.on_sample(now - self._synack_at)
        self._set_state(ReceiverState.ESTABLISHED, now)
        return True

    def _resume_decided(self, seg: Segment, now: float) -> bool:
        """The first segment that acknowledges our SYN-ACK, which offered a
        resume: where the sender starts (common/resume.py).  If ``seg``
        cannot tell, it is dropped and the SYN-ACK goes again; False then."""
        held = self.resume_offer[0]
        at = resume.decide(seg, self.base, held)
        if at is None:
            # (once a round trip: a window of data would draw a SYN-ACK each)
            self.last_heard = now
            if self._nudged is None or now >= self._nudged + self.rtt.rto:
                self._nudged = now
                self.outbox.append(self._synack)
            return False
        self.resume_at = at
        if at:
            self.base = (self.base + at) & 0xFFFFFFFF
            if self.file_size is not None:
                self.file_size -= at
        self._event(now, "resume", at=at, held=held)
        return True

    def _take_ts(self, seg: Segment, off: int) -> None:
        """RFC 7323 §4.3: TS.Recent follows a segment that reaches back to
        the point our last ACK named (so that a delayed ACK echoes the
        earliest segment it acknowledges, and the ACK of a hole filled
        echoes the resend that filled it), never back in time (§5.3 R3)."""
        if off <= self._last_ack_off and \
                not newer(self.ts_recent, seg.ts_val):
            self.ts_recent = seg.ts_val

    # ------------------------------------------------------------ closing
    def _on_fin(self, seg: Segment, now: float) -> None:
        fin_off = unwrap(seg.seq, self.base, self.rcv_nxt) + len(seg.payload)
        if self.state == ReceiverState.ESTABLISHED:
            if fin_off != self.rcv_nxt:
                # Data is missing before it: keep it (like out-of-order data) so
                # that the hole's repair ends the transfer without waiting for
                # the FIN to come again; say what we have.
                if self.rcv_nxt < fin_off <= self.rwnd.right_edge:
                    self._early_fin = (fin_off, seg.digest)
                self._ack_now(now)
                return
            self._accept_fin(fin_off, seg.digest, now)
        elif self.state == ReceiverState.CLOSE_WAIT:
            self._ack_now(now)
        elif self.state == ReceiverState.LAST_ACK:
            # Our ACK of the FIN, or our FIN, was lost: the FIN again, which
            # acknowledges the sender's FIN too (an ACK first would carry
            # ISN + 2 ahead of the FIN's ISN + 1).
            self.outbox.append(self._fin_segment(now))

    def _accept_fin(self, fin_off: int, digest: bytes | None, now: float) -> None:
        self.fin_off = fin_off
        self.digest = digest
        self._set_state(ReceiverState.CLOSE_WAIT, now)
        if self.file_size is not None and fin_off != self.file_size:
            self.abort(now, f"the sender announced {self.file_size} bytes and sent "
                            f"{fin_off}")
            return
        if digest is None:
            self.abort(now, "the FIN carries no SHA-256 digest")
            return
        # The FIN waits for the writer.  An ACK now only if data's own ACK
        # was held back: one repeating the last ACK would be a duplicate ACK
        # on a clean link, and say nothing new.
        if self.ack_pending or self.ack_clock.unacked:
            self._ack_now(now)

    def on_verified(self, ok: bool, now: float, reason: str = "") -> None:
        """The writer finished: the file is on disk and its digest matched (or not)."""
        if self.state != ReceiverState.CLOSE_WAIT:
            return
        if not ok:
            self.abort(now, reason or "SHA-256 mismatch")
            return
        self._set_state(ReceiverState.LAST_ACK, now)
        self.outbox.append(self.make_ack(now))
        self.outbox.append(self._fin_segment(now))
        self._fin_deadline = now + self.rtt.rto

    def _fin_segment(self, now: float) -> Segment:
        self._fin_sent = True
        return Segment(
            seq=(self.isn + 1) & 0xFFFFFFFF, ack=self._ack_no(), flags=FIN | ACK,
            window=self.rwnd.last_window >> self.rwnd.wscale, src_port=self.src_port,
            dst_port=self.dst_port, ts_val=ts_now(now) if self.ts_ok else None,
            ts_ecr=self.ts_recent,
        )

    def _last_ack_timer(self, now: float) -> None:
        """LAST_ACK's timer: our FIN again, or DONE (given up, or resent enough)."""
        if now >= self.last_heard + self.give_up:
            self._set_state(ReceiverState.DONE, now)  # the file is complete anyway
        elif now >= self._fin_deadline:
            self._fin_rexmits += 1
            # The file is complete and renamed: only the sender's last ACK
            # is missing, and it may have left already (TIME-WAIT is short).
            if self._fin_rexmits > min(self.retries, LAST_ACK_RETRIES):
                self._set_state(ReceiverState.DONE, now)
                return
            self.stats.fin_rexmits += 1
            self.rtt.on_timeout()
            self.outbox.append(self._fin_segment(now))
            self._fin_deadline = now + self.rtt.rto
