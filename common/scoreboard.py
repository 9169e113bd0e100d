"""The sender's books: every segment sent and not yet cumulatively
acknowledged, and what the peer's SACK blocks say it holds (RFC 6675's
scoreboard).

It owns the records (by offset, by end offset, in offset order and in order
of last transmission), the SACK ranges (a :class:`common.ranges.RangeSet`)
and the highest offset SACKed.  It answers what is acknowledged and how much
is in flight (the pipe); which segments are lost, and when, is decided in
:mod:`common.recovery`.
"""

from __future__ import annotations

from collections import OrderedDict, deque

from .ranges import RangeSet
from .seq import unwrap


class Outstanding:
    """One segment sent and not yet cumulatively acknowledged.

    ``off``, ``end``, ``payload``, ``residue`` and ``fin`` never change once
    it is made: the sending program reads them outside the lock to build the
    datagram.  Everything else is the core's, read and written under it."""

    __slots__ = ("off", "end", "payload", "residue", "fin", "sent_at", "rexmits", "probe",
                 "queued", "lost", "sacked", "why", "sent_why")

    def __init__(self, off: int, payload, residue: int, fin: bool, now: float, probe: bool):
        self.off = off
        self.end = off + (1 if fin else len(payload))
        self.payload = payload
        self.residue = residue  # ones' complement residue of the payload (checksum)
        self.fin = fin
        self.sent_at = now  # its latest transmission
        self.rexmits = 0  # resends counted toward the retry limit
        self.probe = probe  # a zero-window probe
        self.queued = False  # waiting in the retransmission queue
        self.lost = False  # resent at least once (Karn: no RTT sample from it)
        self.sacked = False  # wholly inside a range of the SACK scoreboard
        self.why = ""  # why it is queued for resending (common.recovery.REXMIT_KIND)
        self.sent_why = ""  # the trace's tag for its latest transmission: "" for the first


class Scoreboard:
    """Outstanding segments and SACK state; ``timed`` is the per-segment
    timer queue (sr mode): the segments whose retransmission timer runs, in
    order of last transmission, oldest first."""

    __slots__ = ("records", "by_end", "order", "timed", "sacked", "high_sacked", "last_sack")

    def __init__(self):
        self.records: dict[int, Outstanding] = {}  # by offset
        self.by_end: dict[int, Outstanding] = {}  # by end offset
        self.order: deque[Outstanding] = deque()  # by offset
        self.timed: OrderedDict[int, Outstanding] = OrderedDict()  # by last send
        self.sacked = RangeSet()  # offsets above the cumulative ACK the peer SACKed
        self.high_sacked = 0  # the highest offset SACKed so far
        self.last_sack: tuple = ()  # the wire SACK blocks of the last ACK taken

    @property
    def sacked_bytes(self) -> int:
        """Bytes above the cumulative ACK that SACK blocks reported."""
        return self.sacked.covered

    def pipe(self, snd_una: int, snd_nxt: int) -> int:
        """RFC 6675's pipe: bytes sent and neither cumulatively nor
        selectively acknowledged."""
        return snd_nxt - snd_una - self.sacked.covered

    def register(self, recs: list[Outstanding], timed: bool) -> None:
        """Book new records that follow one another: outstanding, in order,
        and (``timed``) on the per-segment timer queue."""
        records = self.records
        by_end = self.by_end
        for rec in recs:
            records[rec.off] = rec
            by_end[rec.end] = rec
        self.order.extend(recs)
        if timed:
            self.timed.update((rec.off, rec) for rec in recs)

    def retime(self, rec: Outstanding) -> None:
        """``rec`` was sent again: its timer runs from now, last in line."""
        timed = self.timed
        timed[rec.off] = rec
        timed.move_to_end(rec.off)

    def pop_acked(self, ack_off: int, timed: bool) -> list[Outstanding]:
        """Take every record below the cumulative ACK ``ack_off`` off the
        books, SACK ranges included; returns them, in order.  ``timed``: the
        segments have timers of their own (sr mode)."""
        out = []
        records = self.records
        by_end = self.by_end
        queue = self.timed
        order = self.order
        while order and order[0].end <= ack_off:
            rec = order.popleft()
            del records[rec.off]
            del by_end[rec.end]
            queue.pop(rec.off, None)
            out.append(rec)
        if self.sacked:
            self.sacked.drop_below(ack_off)
        if timed and order and order[0].off not in queue:
            # RFC 6298 §5.1 and RFC 2018 §8: the segment at the left edge is
            # always timed, whatever the SACK blocks claimed about it.
            queue[order[0].off] = order[0]
        return out

    def read_sack(self, blocks, base: int, ack_off: int,
                  snd_nxt: int) -> tuple[int | None, list[tuple[int, int]]]:
        """An ACK's wire SACK blocks (``base``: the wire number of offset 0):
        the left edge of its D-SACK block if it has one (RFC 2883: the first
        block, below the cumulative ACK or inside the second block), and
        the other blocks that are news, as stream offsets: not in the last
        ACK too (as three of four blocks usually are: on the board already),
        and inside what is outstanding (others make no sense: ignored, as
        Linux's tcp_is_sackblock_valid does, never trimmed to fit)."""
        left = unwrap(blocks[0][0], base, ack_off)
        right = unwrap(blocks[0][1], base, ack_off)
        dsack = right <= ack_off
        if not dsack and len(blocks) > 1:
            dsack = (unwrap(blocks[1][0], base, ack_off) <= left
                     and right <= unwrap(blocks[1][1], base, ack_off))
        dsack_left = left if dsack else None
        if dsack:
            blocks = blocks[1:]
        seen = self.last_sack
        kept = []
        news = []
        for block in blocks:
            if block in seen:
                kept.append(block)
                continue
            left = unwrap(block[0], base, ack_off)
            right = unwrap(block[1], base, ack_off)
            if left < ack_off or right > snd_nxt or right <= left:
                continue
            kept.append(block)
            news.append((left, right))
        self.last_sack = tuple(kept)
        return dsack_left, news

    def add_sack(self, left: int, right: int, ack_off: int) -> tuple[int, list[Outstanding]]:
        """Take the SACK block ``[left, right)`` (stream offsets inside what
        is outstanding).  Returns the bytes it newly reports and the records
        it newly makes wholly SACKed, which are flagged (``sacked``, which
        every later check reads) and taken off the timer queue (the left
        edge stays timed, RFC 2018 §8).  The scoreboard only grows, except
        below the cumulative ACK, where the segments are gone: a flag once
        set stays true."""
        fresh = self.sacked.add(left, right)
        if not fresh:
            return 0, []
        lo_block, hi_block = self.sacked.span(fresh[0][0])
        records = self.records
        timed = self.timed
        newly = []
        for lo, hi in fresh:
            rec = records.get(lo)
            if rec is None:  # a block edge inside a segment (a peer's odd blocks)
                rec = next((r for r in self.order if r.end > lo), None)
            while rec is not None and rec.off < hi:
                if lo_block <= rec.off and rec.end <= hi_block and not rec.sacked:
                    rec.sacked = True
                    if rec.off > ack_off:
                        timed.pop(rec.off, None)
                    newly.append(rec)
                rec = records.get(rec.end)
        if hi_block > self.high_sacked:
            self.high_sacked = hi_block
        return sum(hi - lo for lo, hi in fresh), newly
