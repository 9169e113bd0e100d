"""The sender's end of the connection: our FIN and its acknowledgment, the
receiver's FIN and TIME-WAIT, and giving up (an RST).

A part of :class:`common.sender_core.SenderCore` (its base class, as
:mod:`common.timers` is Recovery's), split out by what it owns: the FIN's
record and the file's digest it carries, whether the receiver has the file
verified and since when, and TIME-WAIT's length and deadline.  A base class
rather than a part the core holds, because the data path reads the FIN's
record on every ACK: it stays an attribute of the core.  It works on the
core's state, sequence numbers and outbox; it never sends and never reads
a clock.
"""

from __future__ import annotations

from .scoreboard import Outstanding
from .segment import ACK, RST, Segment
from .sender_state import FINAL_STATES, SenderState


class Teardown:
    """The teardown of :class:`common.sender_core.SenderCore` (see the module's doc)."""

    def _init_teardown(self, time_wait: float | None) -> None:
        self.time_wait = time_wait  # TIME-WAIT's length; None: twice the RTO
        self.digest: bytes | None = None  # the file's SHA-256, in the FIN
        self.delivered = False  # the peer acknowledged our FIN: file verified
        self.delivered_at: float | None = None
        self._fin_record: Outstanding | None = None  # our FIN, while unacknowledged
        self._tw_deadline: float | None = None

    def abort(self, now: float, reason: str) -> None:
        """Give up the connection: an RST to the peer, and ``error`` says why."""
        if self.state in FINAL_STATES:
            return
        send_rst = self.state != SenderState.CLOSED
        self.error = reason
        self._set_state(SenderState.ABORTED, now)
        self.transfer.recovery.rexmit.clear()
        if send_rst:
            # RFC 5961: the peer takes an RST only inside its window, which
            # starts somewhere in [snd_una, snd_nxt] (ACKs may have been lost):
            # one at each end covers it.
            text = reason.encode()[:200]
            self.outbox.append(self._control(RST | ACK, seq_off=self.snd_una, payload=text))
            if self.snd_nxt != self.snd_una:
                self.outbox.append(self._control(RST | ACK, payload=text))

    def _peer_reset(self, seg: Segment, now: float) -> None:
        why = bytes(seg.payload[:200]).decode("ascii", "replace").strip()
        self.abort(now, "the receiver reset the connection" + (f": {why}" if why else ""))
        self.outbox.clear()  # never answer an RST with an RST

    def _send_fin(self, off: int, digest: bytes | None, now: float) -> Outstanding:
        """Our FIN after the last byte, at ``off``, with the file's digest."""
        self.digest = digest
        rec = Outstanding(off, b"", 0, True, now, False)
        self._fin_record = rec
        self.transfer.register([rec])
        self._set_state(SenderState.FIN_WAIT_1, now)
        return rec

    def _fin_acked(self, now: float) -> None:
        """The peer acknowledged our FIN: it has the file, verified."""
        self.delivered = True
        self.delivered_at = now
        self._fin_record = None
        self._set_state(SenderState.FIN_WAIT_2, now)

    def _on_peer_fin(self, seg: Segment, now: float) -> None:
        fin_seq = (seg.seq + len(seg.payload)) & 0xFFFFFFFF
        if self.state == SenderState.FIN_WAIT_2 and fin_seq == self.rcv_nxt:
            self.rcv_nxt = (self.rcv_nxt + 1) & 0xFFFFFFFF
            self.outbox.append(self._control(ACK))
            self._set_state(SenderState.TIME_WAIT, now)
            self._tw_deadline = now + self._time_wait()
        elif self.state == SenderState.TIME_WAIT and (fin_seq + 1) & 0xFFFFFFFF == self.rcv_nxt:
            # Our last ACK was lost: acknowledge again and wait anew (RFC 9293 §3.10.7.4).
            self.outbox.append(self._control(ACK))
            self._tw_deadline = now + self._time_wait()

    def _time_wait(self) -> float:
        # 2 x RTO (PROTOCOL.md), of the estimate itself: the backoff of a lossy
        # tail says nothing about how soon the peer resends its FIN.
        if self.time_wait is not None:
            return self.time_wait
        return 2 * min(self.rtt.base_rto, self.recovery.rto_ceiling)
