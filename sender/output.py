"""What the sender puts on the wire: datagrams from the core's (segment,
record) pairs, sent with as few system calls as the kernel allows (UDP GSO);
recorded in the pcap just before they go, in the trace and the debug log just
after (with the time they went).  Called outside the lock; it reads nothing of the core but what the
caller copied under it.
"""

from __future__ import annotations

import time

from loguru import logger

from common.segment import ACK, PSH, SYN, data_header, encode, flag_str, ts_fields
from runtime.addr import show
from runtime.trace import segment_fields
from runtime.udpgso import Batcher


class Output:
    """The sending side of the socket: ``send`` a batch; ``sent`` counts datagrams."""

    def __init__(self, sock, dest: tuple[str, int], tracer=None, pcap=None):
        self.dest = dest
        self.tracer = tracer
        self.pcap = pcap
        self.log_segments = False
        self.batcher = Batcher(sock)  # UDP GSO where the kernel has it
        self.sent = 0  # datagrams
        self._syn_sent = False  # trace: a second SYN is a retransmission

    def send(self, batch, fields=None, view=None, tags=None) -> None:
        """Send (segment, record) pairs in order, outside the lock: as few
        system calls as possible (UDP GSO), then the per-segment records.
        Header and payload go to the kernel as separate buffers: no copy.
        A data record without its segment (take(segments=False)) gets its
        header from the record and ``fields`` (core.data_header_fields()).
        ``view`` is the core's state (core.view()) for the debug log, ``tags``
        each record's ``sent_why`` for the trace, both read under the lock
        (the records' off, end, payload, residue and fin never change)."""
        datagrams = []
        sizes = []
        if fields is not None:
            src, dst, base, ack, window, end, ts = fields
        for seg, rec in batch:
            if seg is None:
                payload = rec.payload
                header = data_header(src, dst, (base + rec.off) & 0xFFFFFFFF, ack,
                                     ACK | PSH if rec.end == end else ACK, window,
                                     rec.residue, ts)
                datagrams.append((header, payload))
                sizes.append(len(header) + len(payload))
            elif rec is not None and seg.payload:
                header = data_header(seg.src_port, seg.dst_port, seg.seq, seg.ack, seg.flags,
                                     seg.window, rec.residue,
                                     None if seg.ts_val is None
                                     else ts_fields(seg.ts_val, seg.ts_ecr))
                datagrams.append((header, seg.payload))
                sizes.append(len(header) + len(seg.payload))
            else:
                datagram = encode(seg)
                datagrams.append((datagram,))
                sizes.append(len(datagram))
        if self.pcap is not None:
            # Into the capture before the wire: an ACK of these (another
            # thread writes it) must never come before them in the pcap.
            ts = time.time()
            for parts in datagrams:
                self.pcap.write(ts, True, b"".join(parts))
        # The trace's time is taken before the wire too: stamped after the
        # system call, a segment could be traced after the ACK that covers
        # it (the ACK listener runs meanwhile), and a capture made from the
        # trace (stcp-analyze --pcap) would show it as a retransmission.
        t = time.monotonic()
        self.batcher.send(datagrams, sizes, self.dest)
        self.sent += len(datagrams)
        if self.tracer is not None or self.log_segments:
            for i, (seg, rec) in enumerate(batch):
                self._record(seg, rec, view, tags[i] if tags else "", t)

    def _record(self, seg, rec, view, tag: str, t: float) -> None:
        payload_len = len(seg.payload)
        if self.tracer is not None:
            fields = segment_fields(seg)
            if rec is not None:
                fields["off"] = rec.off
                if tag:
                    fields["rexmit"] = tag
            elif seg.flags & SYN:
                if self._syn_sent:
                    fields["rexmit"] = "timeout"
                self._syn_sent = True
            self.tracer.emit(t, "send", **fields)
        if self.log_segments:
            srtt = None if view is None else view.srtt
            logger.debug("send {}:{} -> {} seq={} ack={} flags={} len={} srtt={} rto={}",
                         "local", seg.src_port, show(*self.dest[:2]), seg.seq, seg.ack,
                         flag_str(seg.flags), payload_len,
                         "n/a" if srtt is None else f"{srtt:.4f}",
                         "n/a" if view is None else f"{view.rto:.3f}")
