"""The sender's half of the three-way handshake (RFC 9293 §3.5): the SYN,
its timer and resends, and what the answer to it settles.

A part of :class:`common.sender_core.SenderCore`, split out by what it
owns: the ISN and what our SYN offers (the MSS, SACK, timestamps, the
file's size and name), the SYN's timer and how many went, and what the
SYN-ACK settled: the peer's ISN, the MSS, SACK and timestamps agreed,
whether the receiver took the name, and the answer to its resume offer
(PROTOCOL.md §9).  It builds the SYN and reads the answer; the core
changes state, sends, and hands what was agreed to the data path.

With a name offered, the SYN takes ISN .. ISN + len(name): a receiver that
knows the option echoes it and acknowledges all of it, and the file starts
after the name; one that ignores the payload acknowledges ISN + 1, and the
file starts there, as without a name.
"""

from __future__ import annotations

from .recovery import Recovery
from .segment import ACK, RST, SYN, Segment
from .sender_state import SENDER_WINDOW
from .sender_stats import Stats
from .timestamps import OPTION_LEN as TS_OPTION_LEN
from .timestamps import echo_rtt, ts_now

#: RFC 9293 §3.7.1: the MSS to assume when the peer sends none.
DEFAULT_PEER_MSS = 536

#: What a segment is to us in SYN_SENT (Handshake.answer; None: not an answer).
RESET = "reset"  # an acceptable RST: the receiver refused
SYN_ACK = "syn-ack"  # the answer: the connection is established
NAME_AS_DATA = "name as data"  # a SYN-ACK that took the offered name as file data
NAME_AS_DATA_ERROR = ("the receiver took the offered file name as file data (it does not "
                      "know the name option); send again with --no-name")


class Handshake:
    """Our SYN and the answer to it (see the module's doc)."""

    def __init__(self, *, isn: int, mss: int, sack: bool, timestamps: bool, retries: int,
                 src_port: int, dst_port: int, recovery: Recovery, stats: Stats, emit,
                 trace: bool):
        self.isn = isn & 0xFFFFFFFF
        #: The wire number of the file's first byte: ISN + 1, then after the
        #: name if the receiver takes it, after what it holds if it resumes.
        self.base = (self.isn + 1) & 0xFFFFFFFF
        self.mss = mss
        self.sack = sack  # SACK-permitted offered (mode sr)
        self.timestamps = timestamps  # RFC 7323 timestamps offered
        self.retries = retries
        self.src_port, self.dst_port = src_port, dst_port
        self.recovery = recovery  # the RTO, its backoff, the RTT samples
        self.stats = stats
        self._emit = emit  # emit(now, ev, **fields): the sender's trace events
        self.trace = trace
        #: The file name offered in the SYN (PROTOCOL.md §9, the name option),
        #: as UTF-8 bytes, or None to offer none.  Set before the core's start().
        self.offered_name: bytes | None = None
        #: Whether the receiver took the name (echoed the option and
        #: acknowledged it); None until the SYN-ACK.
        self.name_taken: bool | None = None
        #: Resume (common/resume.py): ``check(held, tag)`` says whether the
        #: first ``held`` bytes of our file have that tag; None: never resume
        #: (an offer is answered with 0).  Set before start(), with no data
        #: supplied before the SYN-ACK.  resume_at: where the transfer started
        #: (None: no offer came); once resumed, base and file_size count from there.
        self.resume_check = None
        self.resume_at: int | None = None
        self.syns_sent = 0  # SYNs sent so far, resends included
        self.sent_at = 0.0  # when the last one went
        self.deadline: float | None = None  # when its timer fires
        self.irs = 0  # the receiver's ISN
        self.eff_mss = mss  # agreed: the smaller MSS, less the timestamps' bytes
        self.ts_ok = False  # agreed: both SYNs carry timestamps
        self.sack_ok = False  # agreed: both SYNs carry SACK-permitted

    def syn(self, now: float, file_size: int | None) -> Segment:
        """Our SYN, sent (again) at ``now``; its timer starts."""
        name = self.offered_name
        self.syns_sent += 1
        self.sent_at = now
        self.deadline = now + self.recovery.rto()
        return Segment(
            seq=self.isn, ack=0, flags=SYN, window=SENDER_WINDOW, src_port=self.src_port,
            dst_port=self.dst_port, mss=self.mss, wscale=0, sack_permitted=self.sack,
            file_size=file_size, payload=name or b"", name_follows=name is not None,
            ts_val=ts_now(now) if self.timestamps else None,
        )

    def syn_end(self) -> int:
        """The wire number after our SYN (SenderView.syn_end)."""
        if self.name_taken is None and self.offered_name:
            return (self.base + len(self.offered_name)) & 0xFFFFFFFF
        return self.base

    def answer(self, seg: Segment) -> str | None:
        """What ``seg``, come in SYN_SENT, is: RESET, SYN_ACK (then
        ``name_taken`` and ``base`` say where the file starts), NAME_AS_DATA,
        or None (not an answer to our SYN: ignored)."""
        if not seg.flags & ACK:
            return None
        name_end = self.syn_end()
        if seg.flags & RST:
            # RFC 9293 §3.10.7.3: acceptable if it acknowledges our SYN.
            return RESET if seg.ack in (self.base, name_end) else None
        if not seg.flags & SYN:
            return None
        if seg.ack == self.base:
            self.name_taken = False
        elif seg.ack == name_end and seg.name_follows:
            self.name_taken = True
            self.base = name_end
        elif seg.ack == name_end:
            return NAME_AS_DATA
        else:
            return None
        return SYN_ACK

    def take_offer(self, offer: tuple[int, bytes], file_size: int | None, queued: int,
                   now: float) -> int:
        """The receiver's resume offer (held, tag): the bytes it holds that we
        skip (0: the file is sent whole); ``queued`` chunks supplied already."""
        held, tag = offer
        ok = (self.resume_check is not None and file_size is not None
              and 0 < held <= file_size and not queued and self.resume_check(held, tag))
        self.resume_at = held if ok else 0
        if ok:
            self.base = (self.base + held) & 0xFFFFFFFF
        self._emit(now, "resume", at=self.resume_at, held=held)
        return held if ok else 0

    def agree(self, seg: Segment) -> str | None:
        """The SYN-ACK's options: the MSS (RFC 9293 §3.7.1), timestamps and
        SACK (RFC 7323 §2.2, RFC 2018: on only if both SYNs carry them);
        None, or why no data can go."""
        self.irs = seg.seq
        self.eff_mss = min(self.mss, seg.mss if seg.mss else DEFAULT_PEER_MSS)
        # With timestamps every segment carries the option, and its 12 bytes
        # come out of the payload (RFC 6691).
        self.ts_ok = self.timestamps and seg.ts_val is not None
        if self.ts_ok:
            self.eff_mss -= TS_OPTION_LEN
        if self.eff_mss <= 0:
            return f"the receiver announced an MSS of {seg.mss}: no room for data"
        self.sack_ok = self.sack and seg.sack_permitted
        return None

    def established(self, seg: Segment, now: float) -> None:
        """The SYN-ACK is taken: its RTT sample, and the SYN's timer stops."""
        echo = echo_rtt(now, seg.ts_ecr) if self.ts_ok else None
        if echo is not None:
            self.recovery.sample(echo, now)  # the echo times even a resent SYN
        elif self.syns_sent == 1:
            self.recovery.sample(now - self.sent_at, now)
        self.deadline = None

    def timeout(self, now: float, last_heard: float, give_up: float) -> str | None:
        """The SYN's timer fired: None if another SYN may go (the caller sends
        ``syn()``), or why the connection gives up."""
        if self.syns_sent > self.retries:
            n = self.retries + 1
            return f"no answer to {n} SYN{'s' if n > 1 else ''}; is the receiver running?"
        self.recovery.backoff(now)
        self.stats.rexmit_timeout += 1
        self.stats.timeouts += 1
        if self.trace:
            self._emit(now, "timeout", rto=self.recovery.rto(), n=1)
        # always (rare): the program says what it waits for (runtime/waiting.py)
        self._emit(now, "waiting", what="SYN-ACK", silent=now - last_heard,
                   next=self.recovery.rto(), give_up=last_heard + give_up - now,
                   tries=self.retries + 1, **{"try": self.syns_sent + 1})
        return None
