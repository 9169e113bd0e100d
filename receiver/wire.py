"""``stcp-recv``'s side of the socket, datagram by datagram (receiver/app.py
reads the bursts and runs the core; this is what it does with each datagram).

* in: parse (common/segment.py, or common/batch.py's bulk decode of a pack),
  record in the pcap before parsing, trace and debug-log what parsed, count
  every drop by reason; learn the peer from its SYN (PROTOCOL.md: the peer
  is whoever sent the SYN) and set aside other senders' SYNs;
* out: the core's segments to ACK_ADDRESS:ACK_PORT (pcap before the wire,
  trace and log after), and an RST "receiver busy" to each other sender.

The network thread is its only user while it runs (``send`` is called by
whichever thread holds EndpointBase's wire lock); the main thread reads
the counters after the threads are joined.
"""

from __future__ import annotations

import time

from loguru import logger

from common.batch import decode_burst
from common.receiver_core import ReceiverState
from common.segment import ACK, SYN, SegmentError, decode, encode, flag_str
from common.seq import unwrap
from receiver.refusal import BUSY, send_refusal
from runtime.addr import show
from runtime.trace import sack_offsets, segment_fields
from runtime.udpgso import Batcher


class Wire:
    """Parse, record and count what comes in; send and record what goes out."""

    def __init__(self, sock, ack_to: tuple[str, int], src_port: int, tracer=None, pcap=None):
        self.sock = sock  # (the thread trace's wrapper when it is on)
        self.batcher = Batcher(sock)  # UDP GSO where the kernel has it
        self.ack_to = ack_to
        self.src_port = src_port  # the TCP port our segments carry
        self.tracer = tracer
        self.pcap = pcap
        self.log_segments = False
        self.peer: tuple[str, int] | None = None
        self.syn_key: tuple[int, int] | None = None  # the connection's SYN: (TCP port, seq)
        self.connected_at: float | None = None
        self.busy: list = []  # other senders' SYNs, to refuse
        self.dropped: dict[str, int] = {}
        self.sent = 0  # datagrams
        # The core's view() as of the last burst (the network thread renews
        # it under the lock while tracing): the trace's stream offsets.
        self.view = None

    # ------------------------------------------------------------------- in
    def take_bulk(self, data: memoryview, size: int, segs: list) -> None:
        """The bulk path (common.batch): datagrams of ``size`` bytes (the last
        may be shorter), back to back in ``data``, all at once."""
        items, drops = decode_burst(data, len(data), size)
        segs.extend(items)
        for why, length in drops:
            self.drop(why, length)

    def parse(self, data: memoryview, addr):
        """One datagram from ``addr``: its segment, or None (dropped, or set
        aside as another sender's SYN)."""
        if self.pcap is not None:
            self.pcap.write(time.time(), False, bytes(data))
        try:
            seg = decode(data)
        except SegmentError as exc:
            self.drop("foreign" if self.peer not in (None, addr) else exc.reason, len(data))
            return None
        if self.peer is not None and addr != self.peer:
            if self.other_syn(seg):
                self.busy.append(seg)
            else:
                self.drop("foreign", len(data))
            return None
        if self.peer is None:
            if not seg.flags & SYN:
                self.drop("no-connection", len(data))
                return None
            self.peer = addr  # PROTOCOL.md: the peer is whoever sent the SYN
            self.syn_key = (seg.src_port, seg.seq)
            self.connected_at = time.monotonic()
            logger.info("connection from {}", show(addr[0], addr[1]))
        if self.tracer is not None:
            fields = segment_fields(seg)
            view = self.view
            if seg.payload and view.state != ReceiverState.LISTEN:
                fields["off"] = unwrap(seg.seq, view.base, view.rcv_nxt)
            self.tracer.emit(time.monotonic(), "recv", **fields)
        if self.log_segments:
            logger.debug("recv {} -> local:{} seq={} ack={} flags={} len={}",
                         show(*addr[:2]), seg.dst_port, seg.seq, seg.ack,
                         flag_str(seg.flags), len(seg.payload))
        return seg

    def other_syn(self, seg) -> bool:
        """A SYN of another connection than ours (another sender, or ours
        started again): through an emulator it comes from our peer's address."""
        return bool(seg.flags & SYN) and not seg.flags & ACK and \
            (seg.src_port, seg.seq) != self.syn_key

    def drop(self, why: str, length: int) -> None:
        self.dropped[why] = self.dropped.get(why, 0) + 1
        if self.tracer is not None:
            self.tracer.emit(time.monotonic(), "drop", why=why, len=length)

    # ------------------------------------------------------------------ out
    def refuse_busy(self) -> None:
        """Outside the lock: an RST to each other sender, at ACK_ADDRESS and
        the port its SYN came from (PROTOCOL.md §7), so that it reports
        "receiver busy" at once instead of resending its SYN."""
        for syn in self.busy:
            if not self.dropped.get("busy"):  # (a flood of SYNs: counted, logged once)
                logger.warning("refused a sender (TCP port {}): receiver busy", syn.src_port)
            self.drop("busy", len(syn.payload) + 20)
            send_refusal(self.sock, syn, self.src_port, BUSY, (self.ack_to[0], syn.src_port))
        self.busy.clear()

    def send(self, segs, view=None) -> None:
        """EndpointBase.put_on_wire: the core's segments, recorded; ``view``
        (the core's, or None) gives the trace's SACK blocks as offsets.  A
        burst's ACKs are alike in size and leave by one GSO send (the wire
        still carries one datagram per ACK, at the rate the policy set)."""
        datagrams = [encode(seg) for seg in segs]
        if self.pcap is not None:
            # before the wire: what answers it never precedes it in the pcap
            ts = time.time()
            for data in datagrams:
                self.pcap.write(ts, True, data)
        self.batcher.send_each(datagrams, self.ack_to)
        self.sent += len(datagrams)
        if self.tracer is None and not self.log_segments:
            return
        for seg in segs:
            if self.tracer is not None:
                fields = segment_fields(seg)
                if seg.sack and view is not None:
                    fields["sack"] = sack_offsets(seg.sack, view.base, view.rcv_nxt)
                self.tracer.emit(time.monotonic(), "send", **fields)
            if self.log_segments:
                logger.debug("send local:{} -> {} seq={} ack={} flags={} win={} sack={}",
                             seg.src_port, show(*self.ack_to[:2]), seg.seq, seg.ack,
                             flag_str(seg.flags), seg.window, list(seg.sack))
