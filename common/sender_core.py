"""The sender's state machine: handshake, sliding window, recovery, teardown.

Sans-I/O: every method takes the current time ``now`` and the segments the
peer sent; it returns nothing but leaves what must go on the wire in
``outbox`` (control segments) and ``rexmit`` (records to resend), and the
threads around it send them.  No socket, thread, file or clock in here.

Offsets are absolute stream offsets: byte 0 is the first byte of the file,
the SYN sits at -1 and the FIN at the file size.  Only ``Segment`` objects
carry wrapped 32-bit sequence numbers.

Modes (PROTOCOL.md):

``gbn``
    one retransmission timer for the oldest outstanding segment (RFC 6298
    §5); on expiry, and on the third duplicate ACK, every outstanding segment
    is sent again.
``sr``
    a timer per outstanding segment; SACK blocks fill a scoreboard, and only
    segments neither cumulatively nor selectively acknowledged are resent: on
    their own timer's expiry, on the third duplicate ACK (the first hole), or
    as soon as ``DUP_THRESH`` segments' worth of data above them is SACKed
    (RFC 6675's loss rule).  Without the peer's SACK-permitted it behaves as
    ``gbn``, since the peer then drops what arrives out of order.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict, deque
from enum import Enum

from .checksum import ones_residue
from .rtt import RttEstimator
from .segment import ACK, FIN, PSH, RST, SYN, Segment
from .seq import unwrap, wrap

#: RFC 5681 §3.2: duplicate ACKs that trigger a fast retransmit.
DUP_THRESH = 3
#: A resent segment reported within this share of the smallest RTT sample
#: after the resend is taken as a report of its earlier copy (_rack_may_use).
EARLY_REPORT = 0.75
#: Round trips the widened reordering window lasts (RFC 8985's reo_wnd_persist).
REO_PERSIST = 16
#: Pacing (SenderCore._take_paced): new data goes out at this multiple of
#: window / SRTT, in bursts of at most PACE_BURST seconds' worth (or two
#: segments, if that is more).  Linux paces at 1.2x in congestion avoidance
#: and 2x in slow start; the window here is fixed, so one gain between the two.
PACE_GAIN = 1.5
PACE_BURST = 0.001
INF = float("inf")
#: RACK's "nothing delivered": (send time, end) of the newest delivery.
NO_DELIVERY = (0.0, 0)
#: The window we advertise: the sender receives nothing but control segments.
SENDER_WINDOW = 0xFFFF
DEFAULT_MSS = 1452
#: RFC 9293 §3.7.1: the MSS to assume when the peer sends none.
DEFAULT_PEER_MSS = 536


#: Why a segment is resent -> (the summary's counter, the trace's ``rexmit`` tag).
#: fast: third duplicate ACK; sack: DUP_THRESH segments SACKed above it; rack:
#: something sent later arrived (RFC 8985); tlp: tail loss probe; timeout: its
#: retransmission timer; probe: a zero-window probe's timer.
REXMIT_KIND = {
    "fast": ("rexmit_fast", "fast"),
    "sack": ("rexmit_sack", "sack"),
    "rack": ("rexmit_sack", "sack"),
    "tlp": ("rexmit_sack", "sack"),
    "timeout": ("rexmit_timeout", "timeout"),
    "probe": ("rexmit_timeout", "probe"),
}


class SenderState(Enum):
    CLOSED = "CLOSED"
    SYN_SENT = "SYN_SENT"
    ESTABLISHED = "ESTABLISHED"
    FIN_WAIT_1 = "FIN_WAIT_1"
    FIN_WAIT_2 = "FIN_WAIT_2"
    TIME_WAIT = "TIME_WAIT"
    DONE = "DONE"
    ABORTED = "ABORTED"


#: States in which the connection is over, one way or the other.
FINAL_STATES = (SenderState.DONE, SenderState.ABORTED)


class Outstanding:
    """One segment sent and not yet cumulatively acknowledged."""

    __slots__ = ("off", "end", "payload", "residue", "fin", "sent_at", "rexmits", "probe",
                 "queued", "lost", "sacked", "why", "sent_why")

    def __init__(self, off: int, payload, residue: int, fin: bool, now: float, probe: bool):
        self.off = off
        self.end = off + (1 if fin else len(payload))
        self.payload = payload
        self.residue = residue
        self.fin = fin
        self.sent_at = now
        self.rexmits = 0
        self.probe = probe
        self.queued = False  # waiting in the retransmission queue
        self.lost = False  # resent at least once (Karn: no RTT sample from it)
        self.sacked = False  # wholly inside a block of the SACK scoreboard (sr)
        self.why = ""  # why it is queued for resending (see REXMIT_KIND)
        self.sent_why = ""  # why its latest transmission went: "" for the first


class Stats:
    """Counters for the summary; plain attributes, read after the run."""

    __slots__ = ("data_segments", "rexmit_timeout",
                 "rexmit_fast", "rexmit_sack", "timeouts", "dupacks", "acks_received",
                 "segments_received", "probes", "sacked_bytes", "dsacks", "tail_probes")

    def __init__(self):
        for name in self.__slots__:
            setattr(self, name, 0)

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


class SenderCore:
    """The sending end of one connection."""

    def __init__(
        self,
        *,
        isn: int,
        file_size: int | None,
        mode: str = "sr",
        mss: int = DEFAULT_MSS,
        window: int = 1 << 20,
        rtt: RttEstimator | None = None,
        retries: int = 10,
        give_up: float = 30.0,
        time_wait: float | None = None,
        src_port: int = 0,
        dst_port: int = 0,
        trace: bool = False,
        pacing: float = PACE_GAIN,
    ):
        if mode not in ("gbn", "sr"):
            raise ValueError(f"mode must be gbn or sr, not {mode!r}")
        if window < mss:
            raise ValueError(f"the window ({window} bytes) must hold one MSS ({mss} bytes)")
        if pacing < 0:
            raise ValueError(f"the pacing gain must be 0 (off) or positive, not {pacing}")
        self.isn = isn & 0xFFFFFFFF
        self.base = (self.isn + 1) & 0xFFFFFFFF  # wire number of stream offset 0
        self.file_size = file_size
        self.mode = mode
        self.mss = mss
        self.window = window
        self.rtt = rtt or RttEstimator()
        self.retries = retries
        self.give_up = give_up
        self.time_wait = time_wait
        self._rto_ceiling = max(self.rtt.min_rto, give_up / 8)
        self.pacing = pacing
        self._pace_at = 0.0  # when the pacing bucket was last empty
        #: When new data held back by pacing (only) may go; None if none is.
        self.pace_deadline: float | None = None
        self.src_port = src_port
        self.dst_port = dst_port

        self.state = SenderState.CLOSED
        self.error: str | None = None
        self.delivered = False  # the peer acknowledged our FIN: file verified
        self.delivered_at: float | None = None
        self.eff_mss = mss
        self.sack_ok = False
        self.gbn = True  # until the handshake says SACK is on
        self.snd_wscale = 0
        self.irs = 0
        self.handshake_done = False
        self.established_at: float | None = None  # when the SYN-ACK came
        self.rcv_nxt = 0  # wire number we expect from the peer (its FIN)
        self.snd_una = 0
        self.snd_nxt = 0
        self.right_edge = 0  # stream offset the peer's window ends at
        self.peer_window = 0  # bytes, as last advertised

        self._records: dict[int, Outstanding] = {}  # by offset
        self._by_end: dict[int, Outstanding] = {}  # by end offset
        self._order: deque[Outstanding] = deque()  # by offset
        self._timers: OrderedDict[int, Outstanding] = OrderedDict()  # sr: by last send
        self._gbn_deadline: float | None = None
        self._last_backoff = -1e18
        self._sacked: list[list[int]] = []  # sr scoreboard: sorted disjoint [l, r)
        self._sacked_bytes = 0  # how much of [snd_una, snd_nxt) the scoreboard holds
        self._last_sack: tuple = ()  # the wire SACK blocks the last ACK merged
        self._high_sacked = 0
        self._loss_scan = 0  # offset below which the SACK loss rule has looked
        self.dupacks = 0
        self._reo_mult = 1
        self._tlp_deadline: float | None = None
        self._tlp_allowed = True
        # RACK (RFC 8985 §6.2): the newest delivery (send time, end), the RTT
        # it took, and when the segments sent just before it may be lost.
        self._rack_xmit = NO_DELIVERY
        self._rack_rtt = 0.0
        self._rack_deadline: float | None = None
        # on_segments: a burst of ACKs read together; loss detection waits
        # for its end (_detect_losses), so that it runs once per burst.
        self._in_burst = False
        self._losses_due = False  # the SACK rule or RACK has news to look at
        self._rack_news = False  # an ACK reported a delivery RACK can use
        self._recent_rexmits: OrderedDict[int, str] = OrderedDict()  # off -> why, for DSACK
        self._reo_round_end = 0  # snd_nxt when _reo_mult last grew: once per round trip
        self._reo_rounds_left = 0  # round trips until _reo_mult goes back to 1
        self._recover = -1  # snd_nxt when fast recovery began
        self._dup_ignore = 0  # gbn: duplicate ACKs the old window may still draw
        self._last_ack_window = -1

        self._syn_sent_at = 0.0
        self._syn_deadline: float | None = None
        self._syn_rexmits = 0
        self._probe_deadline: float | None = None
        self._probe_due = False
        self._tw_deadline: float | None = None
        self._fin_record: Outstanding | None = None
        self.digest: bytes | None = None
        self.last_heard = 0.0

        self.outbox: list[Segment] = []
        self.rexmit: deque[Outstanding] = deque()
        self.stats = Stats()
        self.trace = trace
        self.events: list[tuple] = []  # (t, ev, fields) when tracing

    # ------------------------------------------------------------------ helpers
    def _event(self, now: float, ev: str, **fields) -> None:
        self.events.append((now, ev, fields))

    def _set_state(self, new: SenderState, now: float) -> None:
        self._event(now, "state", old=self.state.value, new=new.value)  # always: rare
        self.state = new

    def abort(self, now: float, reason: str) -> None:
        """Give up the connection: an RST to the peer, and ``error`` says why."""
        if self.state in FINAL_STATES:
            return
        send_rst = self.state != SenderState.CLOSED
        self.error = reason
        self._set_state(SenderState.ABORTED, now)
        self.rexmit.clear()
        if send_rst:
            # RFC 5961: the peer takes an RST only inside its window, which
            # starts somewhere in [snd_una, snd_nxt] (ACKs may have been lost):
            # one at each end covers it.
            text = reason.encode()[:200]
            self.outbox.append(self._control(RST | ACK, seq_off=self.snd_una, payload=text))
            if self.snd_nxt != self.snd_una:
                self.outbox.append(self._control(RST | ACK, payload=text))

    def _control(self, flags: int, seq_off: int | None = None, payload: bytes = b"") -> Segment:
        off = self.snd_nxt if seq_off is None else seq_off
        return Segment(
            seq=wrap(off, self.base),
            ack=self.rcv_nxt,
            flags=flags,
            window=SENDER_WINDOW,
            payload=payload,
            src_port=self.src_port,
            dst_port=self.dst_port,
        )

    def segment_for(self, rec: Outstanding) -> Segment:
        """The segment that carries ``rec`` on the wire (new or again)."""
        if rec.fin:
            return Segment(
                seq=wrap(rec.off, self.base), ack=self.rcv_nxt, flags=FIN | ACK,
                window=SENDER_WINDOW, src_port=self.src_port, dst_port=self.dst_port,
                digest=self.digest,
            )
        return Segment(
            seq=wrap(rec.off, self.base), ack=self.rcv_nxt, flags=ACK | self._psh(rec),
            window=SENDER_WINDOW, payload=rec.payload, src_port=self.src_port,
            dst_port=self.dst_port,
        )

    def data_header_fields(self) -> tuple[int, int, int, int, int, int]:
        """What the header of every data segment shares, for a caller that
        builds it from the record alone (``take(segments=False)``): source and
        destination port, ``base`` (the wire number of offset 0), the
        acknowledgment number, the window field, and the offset where the file
        ends (the segment ending there carries PSH, see _psh; -1 if unknown)."""
        end = self.file_size if self.file_size is not None else -1
        return (self.src_port, self.dst_port, self.base, self.rcv_nxt, SENDER_WINDOW, end)

    @property
    def timer_rto(self) -> float:
        """The timeout the timers actually use (the RTO, capped; see _rto)."""
        return self._rto()

    def _rto(self) -> float:
        """The timeout the timers use: the RTO, but never so long that the peer,
        hearing nothing, would give up on a transfer that is still alive."""
        return min(self.rtt.rto, self._rto_ceiling)

    def _psh(self, rec: Outstanding) -> int:
        """PSH on the segment that ends the file, as a TCP stack would set it."""
        return PSH if rec.end == self.file_size else 0

    @property
    def outstanding(self) -> int:
        """Bytes sent and not cumulatively acknowledged."""
        return self.snd_nxt - self.snd_una

    @property
    def in_flight(self) -> int:
        """Bytes sent and neither cumulatively nor selectively acknowledged."""
        return self.snd_nxt - self.snd_una - self._sacked_bytes

    @property
    def finished(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def established(self) -> bool:
        return self.state in (SenderState.ESTABLISHED, SenderState.FIN_WAIT_1)

    # ---------------------------------------------------------------- handshake
    def start(self, now: float) -> None:
        """Open the connection: queue the SYN."""
        if self.state != SenderState.CLOSED:
            raise RuntimeError("start() called twice")
        self.last_heard = now
        self._set_state(SenderState.SYN_SENT, now)
        self._send_syn(now)

    def _send_syn(self, now: float) -> None:
        syn = Segment(
            seq=self.isn, ack=0, flags=SYN, window=SENDER_WINDOW,
            src_port=self.src_port, dst_port=self.dst_port,
            mss=self.mss, wscale=0, sack_permitted=self.mode == "sr",
            file_size=self.file_size,
        )
        self.outbox.append(syn)
        self._syn_sent_at = now
        self._syn_deadline = now + self._rto()

    def _on_syn_ack(self, seg: Segment, now: float) -> None:
        self.irs = seg.seq
        self.rcv_nxt = (seg.seq + 1) & 0xFFFFFFFF
        self.eff_mss = min(self.mss, seg.mss if seg.mss else DEFAULT_PEER_MSS)
        if self.eff_mss <= 0:
            self.abort(now, "the receiver announced an MSS of 0")
            return
        # RFC 7323: scaling is on only when both SYNs carry the option.
        self.snd_wscale = seg.wscale if seg.wscale is not None else 0
        self.sack_ok = self.mode == "sr" and seg.sack_permitted
        self.gbn = not self.sack_ok
        self.peer_window = seg.window  # never scaled in a SYN-ACK
        self.right_edge = seg.window
        self._last_ack_window = seg.window
        if self._syn_rexmits == 0:
            self._sample(now - self._syn_sent_at, now)
        self._syn_deadline = None
        self.handshake_done = True
        self.established_at = now
        self._set_state(SenderState.ESTABLISHED, now)
        self.outbox.append(self._control(ACK))

    # -------------------------------------------------------------- sending data
    def room(self) -> int:
        """New bytes the windows let us send now (ours and the peer's).

        WINDOW_BYTES bounds the bytes in flight: sent and neither cumulatively
        nor selectively acknowledged (RFC 6675's "pipe", as TCP's congestion
        window does).  So in sr mode the sender keeps sending while a hole is
        repaired, as far as the receiver's advertised window lets it; in gbn
        mode, without SACK, that is simply everything past snd_una.
        """
        if not self.established or self._fin_record is not None:
            return 0
        limit = min(self.snd_una + self.window + self._sacked_bytes, self.right_edge)
        return max(0, limit - self.snd_nxt)

    @property
    def syns_sent(self) -> int:
        """SYNs sent so far, resends included."""
        if self.state == SenderState.CLOSED:
            return 0
        return min(self._syn_rexmits, self.retries) + 1  # (the last count may be the abort)

    def wants_data(self) -> bool:
        return self.established and self._fin_record is None

    def take(self, now: float, chunks: deque, eof: bool, digest: bytes | None = None,
             max_new: int = 64, residues: deque | None = None,
             segments: bool = True) -> list[tuple[Segment | None, Outstanding | None]]:
        """Everything due on the wire now, in order: control segments,
        retransmissions, then new data taken from the left of ``chunks``
        (each at most one MSS), as far as the windows allow; then the FIN once
        ``eof`` is set and every chunk is sent.  Returns (segment, record)
        pairs; the record is None for control segments.

        ``residues``, when given, runs beside ``chunks``: each chunk's
        ``ones_residue``, worked out in bulk by the caller (common.batch).
        ``segments=False`` leaves the segment of a data record out (None): a
        caller that builds the header from the record itself
        (:meth:`data_header_fields`) saves making one object per segment."""
        out: list[tuple[Segment, Outstanding | None]] = []
        self.pace_deadline = None  # set again below if pacing holds data back
        if self.outbox:
            out.extend((seg, None) for seg in self.outbox)
            self.outbox.clear()
        if self.state in FINAL_STATES:
            return out
        while self.rexmit:
            rec = self.rexmit.popleft()
            rec.queued = False
            if rec.end <= self.snd_una or rec.off not in self._records:
                continue
            if not self.gbn and rec.off > self.snd_una and self._is_sacked(rec):
                continue
            rec.sent_at = now
            if not self.gbn:
                self._timers[rec.off] = rec
                self._timers.move_to_end(rec.off)
            # Counted here, when it really goes, not when it was queued: a
            # queued segment may be acknowledged before its turn comes.
            counter, tag = REXMIT_KIND[rec.why]
            setattr(self.stats, counter, getattr(self.stats, counter) + 1)
            rec.sent_why = tag
            if self.trace and rec.why not in ("timeout", "probe"):
                self._event(now, "fast_rexmit", off=rec.off, len=rec.end - rec.off,
                            why="dupack" if rec.why == "fast" else rec.why)
            out.append((self.segment_for(rec) if segments or rec.fin else None, rec))
        if not self.wants_data():
            return out
        limit = min(self.snd_una + self.window + self._sacked_bytes, self.right_edge)
        if chunks and max_new > 0:
            chunk = chunks[0]
            if self.snd_nxt + len(chunk) <= limit:
                self._take_paced(now, chunks, residues, limit, max_new, segments, out)
            elif self._probe_due and self.snd_nxt == self.snd_una:
                # Zero-window probe: one byte past the window (RFC 9293 §3.8.6.1).
                self._probe_due = False
                self.stats.probes += 1
                chunks[0] = chunk[1:]
                if not len(chunks[0]):
                    chunks.popleft()
                    if residues is not None:
                        residues.popleft()
                elif residues is not None:
                    residues[0] = ones_residue(chunks[0])
                out.append(self._new_record(chunk[:1], ones_residue(chunk[:1]), now, True,
                                            segments))
        if (
            eof
            and not chunks
            and self._fin_record is None
            and (self.file_size is None or self.snd_nxt == self.file_size)
        ):
            if self.file_size is None:
                self.file_size = self.snd_nxt
            self.digest = digest
            rec = Outstanding(self.snd_nxt, b"", 0, True, now, False)
            self._fin_record = rec
            self._register_run([rec])
            self._set_state(SenderState.FIN_WAIT_1, now)
            out.append((self.segment_for(rec), rec))
        if out and not self.gbn:
            self._arm_tlp(now)
        self._update_probe_timer(now)
        return out

    def _arm_tlp(self, now: float) -> None:
        """Tail loss probe (RFC 8985 §7): if nothing is heard for two smoothed
        RTTs, resend the newest segment, so that a loss at the tail of a burst
        (or a lost retransmission with nothing sent after it) is found by
        RACK from the probe's ACK instead of by the much longer RTO."""
        srtt = self.rtt.srtt
        if srtt is None or not self._tlp_allowed:
            self._tlp_deadline = None
            return
        self._tlp_deadline = now + min(max(2 * srtt, 0.01), self._rto())

    def _take_paced(self, now: float, chunks: deque, residues: deque | None, limit: int,
                    max_new: int, segments: bool, out: list) -> None:
        """New data as _take_new takes it, but no faster than ``pacing`` x
        window / SRTT, in bursts of at most PACE_BURST seconds' worth or two
        segments (a token bucket).  Sent all at once, a window crosses the
        link as one burst, each segment queued behind those before it, so
        its ACKs come back as a burst and the next window goes as one again:
        every segment's RTT is the path's plus a burst's queueing, and W/RTT
        falls with it.  Spread over the round trip, the window keeps the
        path's RTT (RFC 9002 §7.7 and Linux's pacing say the same).  Only
        new data waits: resends and control segments go at once.  Off with
        a gain of 0, and until the first RTT sample."""
        srtt = self.rtt.srtt
        if not self.pacing or not srtt:
            self._take_new(now, chunks, residues, limit, max_new, segments, out)
            return
        rate = self.pacing * self.window / srtt  # bytes per second
        need = len(chunks[0])
        # The bucket holds PACE_BURST's worth, and never less than two
        # segments (as Linux's smallest burst): a small window goes at once.
        start = max(self._pace_at, now - max(PACE_BURST, 2 * need / rate))
        due = start + need / rate
        if now < due:  # (one expression decides and waits: no float gap between)
            self.pace_deadline = due
            return
        allowed = max(need, int((now - start) * rate))
        before = self.snd_nxt
        self._take_new(now, chunks, residues, min(limit, before + allowed), max_new,
                       segments, out)
        self._pace_at = start + (self.snd_nxt - before) / rate
        if chunks and self.snd_nxt + len(chunks[0]) <= limit:
            self.pace_deadline = self._pace_at + len(chunks[0]) / rate  # the next one

    def _take_new(self, now: float, chunks: deque, residues: deque | None, limit: int,
                  max_new: int, segments: bool, out: list) -> None:
        """New data, one segment after another from snd_nxt up to ``limit``:
        taken and registered a batch at a time (_register_run), since this
        is most of the sender's work per segment."""
        fresh = []
        off = self.snd_nxt
        while chunks and len(fresh) < max_new:
            chunk = chunks[0]
            if off + len(chunk) > limit:
                break
            chunks.popleft()
            residue = residues.popleft() if residues is not None else ones_residue(chunk)
            rec = Outstanding(off, chunk, residue, False, now, False)
            fresh.append(rec)
            off = rec.end
        self._register_run(fresh)
        self.stats.data_segments += len(fresh)
        if segments:
            out.extend((self.segment_for(rec), rec) for rec in fresh)
        else:
            out.extend((None, rec) for rec in fresh)

    def _new_record(self, payload, residue: int, now: float, probe: bool,
                    segment: bool) -> tuple[Segment | None, Outstanding]:
        rec = Outstanding(self.snd_nxt, payload, residue, False, now, probe)
        self._register_run([rec])
        self.stats.data_segments += 1
        return (self.segment_for(rec) if segment else None), rec

    def _register_run(self, recs: list[Outstanding]) -> None:
        """Book new records that follow one another from snd_nxt: outstanding,
        in order, and timed (one timer in gbn mode, one each in sr mode)."""
        if not recs:
            return
        records = self._records
        by_end = self._by_end
        for rec in recs:
            records[rec.off] = rec
            by_end[rec.end] = rec
        self._order.extend(recs)
        self.snd_nxt = recs[-1].end
        if self.gbn:
            if self._gbn_deadline is None:
                self._gbn_deadline = recs[0].sent_at + self._rto()
        else:
            self._timers.update((rec.off, rec) for rec in recs)

    def _update_probe_timer(self, now: float) -> None:
        # Persist timer (RFC 9293 §3.8.6.1): nothing in flight and no room for
        # a full segment, so only a window update could restart us; if that
        # update is lost, the probe asks again.
        closed = self.snd_nxt == self.snd_una and self.right_edge - self.snd_nxt < self.eff_mss
        if closed and self.wants_data():
            if self._probe_deadline is None:
                self._probe_deadline = now + self._rto()
        else:
            self._probe_deadline = None
            self._probe_due = False

    # ------------------------------------------------------------ receiving ACKs
    def on_segment(self, seg: Segment, now: float) -> None:
        """A segment from the peer (the caller checked its source address)."""
        self.stats.segments_received += 1
        st = self.state
        if st in FINAL_STATES or st == SenderState.CLOSED:
            return
        if st == SenderState.SYN_SENT:
            acks_syn = bool(seg.flags & ACK) and seg.ack == self.base
            if seg.flags & RST:
                if acks_syn:
                    self.last_heard = now
                    self._peer_reset(seg, now)
                return
            if seg.flags & SYN and acks_syn:
                self.last_heard = now
                self._on_syn_ack(seg, now)
            return
        if seg.flags & RST:
            # RFC 5961 §3.2: only an exact match resets (our receive window is 0).
            if seg.seq == self.rcv_nxt:
                self.last_heard = now
                self._peer_reset(seg, now)
            return
        if seg.flags & SYN:
            if seg.seq == self.irs and seg.flags & ACK:
                # Our third ACK was lost and the peer resent its SYN-ACK.
                self.last_heard = now
                self.outbox.append(self._control(ACK))
            return
        if not seg.flags & ACK:
            return
        ack_off = unwrap(seg.ack, self.base, self.snd_una)
        if ack_off > self.snd_nxt or ack_off < self.snd_una - (1 << 30):
            return  # acknowledges what we never sent, or hopelessly old
        self.last_heard = now
        self.stats.acks_received += 1
        if ack_off >= self.snd_una:
            self._on_ack(seg, ack_off, now)
        if seg.flags & FIN:
            self._on_peer_fin(seg, now)

    def on_segments(self, segs, now: float) -> None:
        """Segments from the peer read together at ``now``, in order: each is
        taken as :meth:`on_segment` takes it, but loss detection (the SACK
        rule, then RACK's pass over the timers) runs once, after the last.
        Nothing is lost by that: with one ``now``, the last pass sees the
        newest delivery and the fullest scoreboard of the burst, so it marks
        every segment an earlier pass would have, except those a later ACK
        of the burst reported delivered (which an earlier pass would have
        queued, for take() to skip).  The resends may be queued in another
        order: by rule here, by ACK there."""
        self._in_burst = True
        try:
            for seg in segs:
                self.on_segment(seg, now)
        finally:
            self._in_burst = False
        if self._losses_due and self.state not in FINAL_STATES:
            self._detect_losses(now)

    def _peer_reset(self, seg: Segment, now: float) -> None:
        why = bytes(seg.payload[:200]).decode("ascii", "replace").strip()
        self.abort(now, "the receiver reset the connection" + (f": {why}" if why else ""))
        self.outbox.clear()  # never answer an RST with an RST

    def _on_ack(self, seg: Segment, ack_off: int, now: float) -> None:
        window = seg.window << self.snd_wscale
        advanced = ack_off > self.snd_una
        window_changed = window != self._last_ack_window
        self._last_ack_window = window
        self.peer_window = window
        if ack_off + window > self.right_edge:
            self.right_edge = ack_off + window
        # The newest delivery this ACK reports: (send time, end), RACK's
        # (xmit_ts, end_seq); (0, 0) for none.
        delivered_at = NO_DELIVERY
        if self.sack_ok and seg.sack:
            delivered_at = self._on_sack(seg.sack, ack_off, now)
        if advanced:
            delivered_at = self._on_new_ack(ack_off, now, delivered_at)
        elif (
            not seg.payload
            and not seg.flags & FIN
            and self.snd_nxt > self.snd_una
            and not window_changed
            and self.right_edge > self.snd_una
        ):
            self.stats.dupacks += 1
            # Go-Back-N goes back again at every new hole; with SACK one fast
            # retransmit per window (RFC 6582), later holes come from the scoreboard.
            # After going back, Go-Back-N lets the duplicates the old window
            # still draws go by; three more after those say the hole's resend
            # was lost too, and it goes back again without a timeout.
            if self.gbn and self._dup_ignore:
                self._dup_ignore -= 1
            else:
                self.dupacks += 1
                if self.dupacks == DUP_THRESH and (self.gbn or self.snd_una > self._recover):
                    self._fast_retransmit(now)
        if window == 0:
            # The peer is alive and says it has no room: probes are not losses.
            for rec in self._order:
                if rec.probe:
                    rec.rexmits = 0
        if self.sack_ok:
            if delivered_at[0]:
                self._rack_update(now, delivered_at)
                self._rack_news = True
            self._losses_due = True
            if not self._in_burst:
                self._detect_losses(now)
        if self.trace:
            self._event(now, "inflight", bytes=self.snd_nxt - self.snd_una,
                        rwnd=self.right_edge - self.snd_una, acked=self.snd_una)
        self._update_probe_timer(now)

    def _on_new_ack(self, ack_off: int, now: float,
                    newest: tuple[float, int] = NO_DELIVERY) -> tuple[float, int]:
        """Take everything below ``ack_off`` off the books.  Returns the
        newest usable delivery (_rack_may_use) among the segments it
        acknowledges, as (send time, end), or ``newest`` if later: for RACK,
        every newly acknowledged segment counts, cumulatively as selectively
        (RFC 8985 §6.2 step 2), and a resend that fills the hole at the left
        edge is often the newest delivery there is."""
        sample_rec = None
        records = self._records
        order = self._order
        while order and order[0].end <= ack_off:
            rec = order.popleft()
            del records[rec.off]
            del self._by_end[rec.end]
            self._timers.pop(rec.off, None)
            if (rec.sent_at, rec.end) > newest and self._rack_may_use(rec, now):
                newest = (rec.sent_at, rec.end)
            if rec.end == ack_off and not rec.lost and not rec.fin:
                # (Not the FIN: the peer acknowledges it only once the file is
                # written, synced and checked, PROTOCOL.md §5; that wait says
                # nothing about the path, and one such sample of tens of ms
                # would be the summary's RTT maximum and final SRTT.)
                sample_rec = rec
        if sample_rec is not None and not self._is_sacked(sample_rec):
            self._sample(now - sample_rec.sent_at, now)
        if self._reo_mult > 1 and ack_off >= self._reo_round_end:
            # RFC 8985 §6.2 step 4: after 16 round trips without a spurious
            # resend, the reordering window goes back to its smallest.
            self._reo_round_end = self.snd_nxt
            self._reo_rounds_left -= 1
            if self._reo_rounds_left <= 0:
                self._reo_mult = 1
        self.snd_una = ack_off
        self.dupacks = 0
        self._dup_ignore = 0  # gbn: a new hole's duplicates all count (_gone_back)
        board = self._sacked
        if board:
            while board and board[0][1] <= ack_off:
                left, right = board.pop(0)
                self._sacked_bytes -= right - left
            if board and board[0][0] < ack_off:
                self._sacked_bytes -= ack_off - board[0][0]
                board[0][0] = ack_off
        if self._loss_scan < ack_off:
            self._loss_scan = ack_off
        if order and not self.gbn and order[0].off not in self._timers:
            # RFC 6298 §5.1 and RFC 2018 §8: the segment at the left edge is
            # always timed, whatever the SACK blocks claimed about it.
            self._timers[order[0].off] = order[0]
        if self.gbn:
            self._gbn_deadline = now + self._rto() if order else None
        fin = self._fin_record
        if fin is not None and ack_off >= fin.end and not self.delivered:
            self.delivered = True
            self.delivered_at = now
            self._fin_record = None
            self._set_state(SenderState.FIN_WAIT_2, now)
        return newest

    def _sample(self, r: float, now: float) -> None:
        self.rtt.on_sample(r)
        if self.trace:
            self._event(now, "rtt", sample=round(r, 6), srtt=self.rtt.srtt,
                        rttvar=self.rtt.rttvar, rto=self.rtt.rto)

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
        return 2 * min(self.rtt.base_rto, self._rto_ceiling)

    # ---------------------------------------------------------------- SACK
    def _on_sack(self, blocks, ack_off: int, now: float) -> tuple[float, int]:
        """Fold SACK blocks into the scoreboard; returns the newest delivery
        they report, (send time, end) (NO_DELIVERY if none is known)."""
        board = self._sacked
        delivered_at = NO_DELIVERY
        if self._is_dsack(blocks, ack_off):
            # RFC 2883: the peer got something twice.  If it was a segment we
            # resent, the resend was spurious (reordering, not loss): widen
            # RACK's reordering window.  Duplicates the link made say nothing.
            self.stats.dsacks += 1
            why = self._recent_rexmits.get(unwrap(blocks[0][0], self.base, ack_off))
            # RFC 8985 §6.2 step 4: once per round trip, and only for resends
            # the reordering window decided (a needless tail probe or RTO
            # says nothing about reordering, §7.4).
            if why in ("fast", "sack", "rack") and ack_off >= self._reo_round_end:
                self._reo_mult = min(self._reo_mult + 1, 16)
                self._reo_round_end = self.snd_nxt
                self._reo_rounds_left = REO_PERSIST
            blocks = blocks[1:]
        seen = self._last_sack
        merged = []
        for block in blocks:
            if block in seen:
                # In the last ACK too (as three of four blocks usually are):
                # on the board already, and no news for RACK.
                merged.append(block)
                continue
            left_w, right_w = block
            left = unwrap(left_w, self.base, ack_off)
            right = unwrap(right_w, self.base, ack_off)
            # Blocks outside what is outstanding make no sense: ignore them
            # (as Linux's tcp_is_sackblock_valid does), never trim them to fit.
            if left < ack_off or right > self.snd_nxt or right <= left:
                continue
            merged.append(block)
            end_rec = self._by_end.get(right)
            if (end_rec is not None and (end_rec.sent_at, end_rec.end) > delivered_at
                    and self._rack_may_use(end_rec, now)):
                delivered_at = (end_rec.sent_at, end_rec.end)
            i = bisect.bisect_left(board, [left, left])
            if i and board[i - 1][1] >= left:
                i -= 1
            j = i
            new_left, new_right = left, right
            pos = left
            gaps = []  # what this block adds to the board
            while j < len(board) and board[j][0] <= right:
                if board[j][0] > pos:
                    gaps.append((pos, board[j][0]))
                pos = max(pos, board[j][1])
                new_left = min(new_left, board[j][0])
                new_right = max(new_right, board[j][1])
                j += 1
            if pos < right:
                gaps.append((pos, right))
            if gaps:
                delivered_at = self._newly_sacked(gaps, new_left, new_right, ack_off,
                                                  delivered_at, now)
            covered = sum(hi - lo for lo, hi in board[i:j])
            board[i:j] = [[new_left, new_right]]
            self.stats.sacked_bytes += (new_right - new_left) - covered
            self._sacked_bytes += (new_right - new_left) - covered
            if new_right > self._high_sacked:
                self._high_sacked = new_right
                # The newest arrival the peer reports: an RTT sample if it
                # went only once (Karn), as a timestamp-less TCP takes it.
                rec = self._by_end.get(right)
                if rec is not None and not rec.lost:
                    self._sample(now - rec.sent_at, now)
        self._last_sack = tuple(merged)
        return delivered_at

    def _newly_sacked(self, gaps, left: int, right: int, ack_off: int,
                      newest: tuple[float, int], now: float) -> tuple[float, int]:
        """The scoreboard's block [left, right) has just grown by ``gaps``
        (ranges, in order): flag the segments it now wholly holds (the
        ``sacked`` that every later check reads), take them off the timer
        queue, whose RACK pass then never walks them again (the left edge
        stays timed, RFC 2018 §8), and return the newest usable delivery
        (_rack_may_use) among them, as (send time, end), or ``newest`` if
        later.  Every newly SACKed segment counts (RFC 8985 §6.2 step 2),
        not only the one ending a block: a resend that fills a hole inside a
        block (a tail loss probe, typically) is the newest delivery there is.
        The scoreboard only grows, except below the cumulative ACK, where
        the segments are gone: a flag once set stays true."""
        records = self._records
        timers = self._timers
        for lo, hi in gaps:
            rec = records.get(lo)
            if rec is None:  # a block edge inside a segment (a peer's odd blocks)
                rec = next((r for r in self._order if r.end > lo), None)
            while rec is not None and rec.off < hi:
                if left <= rec.off and rec.end <= right and not rec.sacked:
                    rec.sacked = True
                    if rec.off > ack_off:
                        timers.pop(rec.off, None)
                    if (rec.sent_at, rec.end) > newest and self._rack_may_use(rec, now):
                        newest = (rec.sent_at, rec.end)
                rec = records.get(rec.end)
        return newest

    def _rack_may_use(self, rec: Outstanding, now: float) -> bool:
        """Whether ``rec``'s latest send time may stand for when what the peer
        just reported was sent (RACK.xmit_ts).  Not for a resent segment
        reported sooner than the smallest RTT after the resend: that report
        is of an earlier copy (RFC 8985 §6.2 step 2).  Our RTT samples run
        from when a segment was taken to when its ACK was read, a little
        longer than the path's, so "sooner" is EARLY_REPORT of the smallest:
        a resend that is the only thing in flight (a tail loss probe) comes
        back in about the path's RTT, and must count, or the holes behind it
        wait for the RTO.  Taking the resend's
        time there makes everything sent before it look lost, segments still
        on their way included, and each such spurious resend widens the
        reordering window (DSACK) until loss detection is slow."""
        if not rec.lost:
            return True
        rtt = self.rtt
        return not rtt.samples or now - rec.sent_at >= EARLY_REPORT * rtt.sample_min

    def _is_dsack(self, blocks, ack_off: int) -> bool:
        left = unwrap(blocks[0][0], self.base, ack_off)
        right = unwrap(blocks[0][1], self.base, ack_off)
        if right <= ack_off:
            return True
        if len(blocks) > 1:
            l2 = unwrap(blocks[1][0], self.base, ack_off)
            r2 = unwrap(blocks[1][1], self.base, ack_off)
            return l2 <= left and right <= r2
        return False

    def _is_sacked(self, rec: Outstanding) -> bool:
        """Whether the scoreboard wholly holds ``rec`` (see _newly_sacked)."""
        return rec.sacked

    def _sack_loss_scan(self, now: float) -> None:
        """RFC 6675 IsLost: a hole with DUP_THRESH segments' worth SACKed above."""
        # The threshold grows with observed reordering, as RACK's window does
        # (Linux's "reordering" metric works alike).
        threshold = self._high_sacked - DUP_THRESH * self._reo_mult * self.eff_mss
        rec = self._records.get(self._loss_scan)
        while rec is not None and rec.end <= threshold:
            if not rec.lost and not rec.fin and not self._is_sacked(rec):
                self._mark_lost(rec, now, "sack", count=False)
            self._loss_scan = rec.end
            rec = self._records.get(rec.end)

    def _detect_losses(self, now: float) -> None:
        """What the ACKs since the last call say is lost (sr): the SACK rule,
        then RACK; then the tail loss probe is armed anew."""
        self._losses_due = False
        if self._high_sacked > self._loss_scan:
            self._sack_loss_scan(now)
        if self._rack_news and self.state not in FINAL_STATES:
            self._rack_news = False
            self._rack_detect(now)
            self._tlp_allowed = True
            self._arm_tlp(now)

    def _rack_update(self, now: float, delivered_at: tuple[float, int]) -> None:
        """RACK's newest delivery (RACK.xmit_ts, end_seq) and its RTT."""
        if delivered_at > self._rack_xmit:
            self._rack_xmit = delivered_at
            self._rack_rtt = now - delivered_at[0]

    def _rack_detect(self, now: float) -> None:
        """RACK (RFC 8985 §6.2), on the per-segment timer queue, which is in
        order of last transmission, against the newest delivery reported so
        far (_rack_update; the reordering timer calls it with no news).  A
        segment sent before the newest delivery (at the same
        time: with a lower end, as RACK_sent_after breaks ties) is lost once
        the RTT of that delivery and a reordering window have passed since it
        went; the first one not yet that old sets the reordering timer, so
        that a resend lost again at the tail, with nothing sent after it to
        report, is found then and not by the tail loss probe or the RTO.
        This also catches a lost retransmission, which the duplicate-ACK
        rules never see again."""
        xmit, xmit_end = self._rack_xmit
        rtt = self.rtt
        reo_wnd = max(0.001, rtt.sample_min / 4 if rtt.samples else 0.0)
        if rtt.srtt is not None:
            # The window grows while RACK's losses turn out spurious (RFC 8985
            # §6.2 step 4, with "the segment had already arrived" as the sign).
            reo_wnd = min(reo_wnd * self._reo_mult, rtt.srtt)
        wait = self._rack_rtt + reo_wnd
        next_due = None
        lost = []
        for rec in self._timers.values():
            if rec.sent_at >= xmit:
                if rec.sent_at > xmit:
                    break
                if rec.end >= xmit_end:
                    continue  # sent with it, after it
            if rec.sacked:
                # Only the left edge stays on the queue once SACKed (RFC 2018
                # §8): _newly_sacked takes every other SACKed segment off.
                continue
            if not rec.queued and not rec.fin:
                # (The peer holds a FIN back until every byte is in, so a FIN
                # waiting behind a hole is not lost.)
                due = rec.sent_at + wait
                if due > now:
                    # What comes after went no earlier: none of it is lost yet.
                    next_due = due
                    break
                lost.append(rec)
        self._rack_deadline = next_due
        for rec in lost:
            # The peer just showed it is alive: not a retry toward giving up.
            self._mark_lost(rec, now, "rack", count=False)
            if self.state in FINAL_STATES:
                return

    # ------------------------------------------------------------ recovery
    def _queue(self, rec: Outstanding, count: bool = True, why: str = "timeout") -> bool:
        """Queue ``rec`` for resending; False past the retry limit.

        ``count`` is False for the segments Go-Back-N resends behind the
        oldest one: they go again because the peer dropped them as out of
        order, not because the peer is silent, so only the oldest counts
        against the retry limit.
        """
        if rec.queued:
            return True
        rec.lost = True  # Karn: no RTT sample from it any more
        recent = self._recent_rexmits
        recent[rec.off] = why
        if len(recent) > 4096:
            recent.popitem(last=False)
        rec.why = "probe" if rec.probe and why == "timeout" else why
        if count:
            rec.rexmits += 1
            if rec.rexmits > self.retries:
                return False
        rec.queued = True
        self.rexmit.append(rec)
        return True

    def _give_up_retries(self, rec: Outstanding, now: float) -> None:
        what = "FIN" if rec.fin else f"the segment at byte {rec.off}"
        self.abort(now, f"{what} was retransmitted {self.retries} times without an "
                        "acknowledgment; the receiver is gone")

    def _mark_lost(self, rec: Outstanding, now: float, why: str, count: bool = True) -> None:
        if not self._queue(rec, count, why):
            self._give_up_retries(rec, now)

    def _fast_retransmit(self, now: float) -> None:
        self._recover = self.snd_nxt
        if self.gbn:
            # the segments past the hole, less those whose duplicates came already
            self._gone_back(len(self._order) - 1 - self.dupacks)
            # Three duplicate ACKs: the peer is alive; only a timeout counts
            # toward the retry limit (as for RACK's resends).
            for rec in self._order:
                self._mark_lost(rec, now, "fast", count=False)
                if self.state in FINAL_STATES:
                    return
            self._gbn_deadline = now + self._rto()
        else:
            for rec in self._order:
                if not self._is_sacked(rec):
                    # Resent already (the SACK rule, RACK): that resend is on
                    # its way, and if it is lost, RACK finds it; a second one
                    # now is needless, and its D-SACK widens RACK's window.
                    if not rec.lost:
                        self._mark_lost(rec, now, "fast")
                    break

    # ---------------------------------------------------------------- timers
    def next_deadline(self) -> float | None:
        """When ``on_timer`` must next run, or None when no timer is pending."""
        st = self.state
        if st in FINAL_STATES or st == SenderState.CLOSED:
            return None
        if st == SenderState.TIME_WAIT:
            return self._tw_deadline
        deadlines = [self.last_heard + self.give_up]
        if st == SenderState.SYN_SENT:
            deadlines.append(self._syn_deadline)
        elif st != SenderState.FIN_WAIT_2:
            if self.gbn:
                if self._gbn_deadline is not None:
                    deadlines.append(self._gbn_deadline)
            elif self._timers:
                first = next(iter(self._timers.values()))
                deadlines.append(first.sent_at + self._rto())
                if self._tlp_deadline is not None:
                    deadlines.append(self._tlp_deadline)
                if self._rack_deadline is not None:
                    deadlines.append(self._rack_deadline)
            if self._probe_deadline is not None and not self._probe_due:
                deadlines.append(self._probe_deadline)
        return min(d for d in deadlines if d is not None)

    def on_timer(self, now: float) -> None:
        """Fire every timer that is due at ``now``."""
        st = self.state
        if st in FINAL_STATES or st == SenderState.CLOSED:
            return
        if st == SenderState.TIME_WAIT:
            if now >= self._tw_deadline:
                self._set_state(SenderState.DONE, now)
            return
        if now >= self.last_heard + self.give_up:
            if st == SenderState.FIN_WAIT_2:
                # The file is verified; only the receiver's FIN is missing.
                self.error = None
                self._set_state(SenderState.DONE, now)
            else:
                self.abort(now, f"nothing heard from the receiver for {self.give_up:g} s")
            return
        if st == SenderState.SYN_SENT:
            if now >= self._syn_deadline:
                self._syn_rexmits += 1
                if self._syn_rexmits > self.retries:
                    self.abort(now, f"no answer to {self.retries + 1} SYNs; is the receiver "
                                    "running?")
                    return
                self._backoff(now)
                self.stats.rexmit_timeout += 1
                self.stats.timeouts += 1
                if self.trace:
                    self._event(now, "timeout", rto=self._rto(), n=1)
                self._send_syn(now)
            return
        if st == SenderState.FIN_WAIT_2:
            return
        if self.gbn:
            if self._gbn_deadline is not None and now >= self._gbn_deadline:
                self._gbn_timeout(now)
        elif self._timers:
            if self._rack_deadline is not None and now >= self._rack_deadline:
                self._rack_detect(now)  # RFC 8985 §6.3: the reordering timer
            if self._tlp_deadline is not None and now >= self._tlp_deadline:
                self._tail_loss_probe(now)
            self._sr_timeout(now)
        if (self._probe_deadline is not None and now >= self._probe_deadline
                and not self._probe_due):
            self._probe_due = True
            self._probe_deadline = None

    def _tail_loss_probe(self, now: float) -> None:
        self._tlp_deadline = None
        self._tlp_allowed = False  # one probe until the peer reports progress
        for rec in reversed(self._timers.values()):
            if rec.fin and rec.off > self.snd_una:
                continue  # held back by the peer until the data is in; see _sr_timeout
            if not self._is_sacked(rec):
                if not rec.queued:
                    self.stats.tail_probes += 1
                    self._mark_lost(rec, now, "tlp")
                return

    def _backoff(self, now: float) -> None:
        # One doubling per expiry, even when several segments' timers expire.
        if now - self._last_backoff >= self._rto() / 2:
            self.rtt.on_timeout()
            self._last_backoff = now
            if self.trace:
                self._event(now, "rto", rto=self._rto(), backoff=self.rtt.backoff)

    def _peer_answered_probe(self, rec: Outstanding) -> bool:
        return rec.probe and self.last_heard >= rec.sent_at and self.peer_window == 0

    def _gone_back(self, old_dupacks: int) -> None:
        """Go-Back-N resent everything outstanding.  Duplicate ACKs of the same
        hole count anew once those the old window can still draw are through:
        the peer sends one for each segment past the hole that reaches it,
        ``old_dupacks`` of them, at most.  (A new ACK moves on to another
        hole, whose duplicates all count.)"""
        self.dupacks = 0
        self._dup_ignore = max(0, old_dupacks)

    def _gbn_timeout(self, now: float) -> None:
        first = self._order[0] if self._order else None
        if first is None:
            self._gbn_deadline = None
            return
        if not self._peer_answered_probe(first):
            self._backoff(now)
        n = 0
        for rec in self._order:
            if not self._queue(rec, count=n == 0):
                self._give_up_retries(rec, now)
                return
            n += 1
        self.stats.timeouts += 1
        self._recover = self.snd_nxt
        self._gone_back(0)  # a timeout: the old window's duplicates are long in
        self._gbn_deadline = now + self._rto()
        if self.trace:
            self._event(now, "timeout", rto=self._rto(), n=n)

    def _sr_timeout(self, now: float) -> None:
        rto = self._rto()
        timers = self._timers
        expired = []
        for rec in timers.values():
            if rec.sent_at + rto > now:
                break
            expired.append(rec)
        if not expired:
            return
        n = 0
        backoff = False
        for rec in expired:
            if rec.fin and rec.off > self.snd_una:
                # The peer holds a FIN back until every byte before it is in:
                # resending it then proves nothing (and must not use up the
                # retries).  Its timer starts again when it is the oldest.
                timers.move_to_end(rec.off)
                rec.sent_at = now
                continue
            # A SACKed segment waits only for the cumulative ACK, except the one
            # at the left edge: SACK is advisory, a timeout resends it anyway
            # (RFC 2018 §8), so a peer that reneges (or lies) cannot stall us.
            if rec.off > self.snd_una and self._is_sacked(rec):
                del timers[rec.off]
                continue
            if not self._peer_answered_probe(rec):
                backoff = True
            timers.move_to_end(rec.off)
            rec.sent_at = now  # rearmed; the resend itself sets it again
            if not self._queue(rec):
                self._give_up_retries(rec, now)
                return
            n += 1
        if n:
            if backoff:
                self._backoff(now)
            self.stats.timeouts += 1
            if self.trace:
                self._event(now, "timeout", rto=self._rto(), n=n)

