"""What a receiver answers a SYN it will not take (docs/PROTOCOL.md §4, §9).

Both receivers use it: ``stcp-serve`` refuses a bad or taken name, or a SYN
past ``--max-conns``; ``stcp-recv``, busy with its one connection, refuses
every other sender's SYN.  The answer is an RST that acknowledges the SYN
(RFC 9293 §3.10.7.1: seq 0, ack = the SYN's sequence number plus its
length), so that the refused sender takes it and reports the reason carried
in its payload, rather than resending its SYN until it gives up.
"""

from __future__ import annotations

from loguru import logger

from common.segment import ACK, RST, Segment, encode

#: What stcp-recv, busy with its one connection, tells another sender.
BUSY = "receiver busy: stcp-recv takes one connection at a time"
#: What a server tells a sender it has no connection for (restarted, say).
NO_CONNECTION = "no such connection (the receiver does not know it: restarted?)"
#: The longest reason an RST carries.
REASON_BYTES = 200


def offered_name(syn: Segment) -> bytes | None:
    """The file name a SYN offers (PROTOCOL.md §9), or None without one
    (for a log line; what a server checks is :func:`accepted_name`)."""
    return bytes(syn.payload) if syn.name_follows else None


def accepted_name(core, syn: Segment) -> bytes | None:
    """The name a server checks and claims: the one the connection's core
    took from ``syn`` (``ReceiverCore.offered_name``), or b"" for a name
    option with an empty payload, which the core takes as no name and a
    server refuses as an empty name; None when the SYN offers none."""
    if core.offered_name is not None:
        return core.offered_name
    return b"" if syn.name_follows else None


def syn_end(syn: Segment) -> int:
    """The sequence number just past the SYN: what a refusal acknowledges.
    The name in a SYN's payload takes sequence space (PROTOCOL.md §9)."""
    name = offered_name(syn)
    return (syn.seq + 1 + len(name or b"")) & 0xFFFFFFFF


def refusal(syn: Segment, src_port: int, reason: str) -> Segment:
    """The RST refusing ``syn``, from ``src_port``, with ``reason`` (ASCII)."""
    text = reason.encode("ascii", "backslashreplace")[:REASON_BYTES]
    return Segment(seq=0, ack=syn_end(syn), flags=RST | ACK, src_port=src_port,
                   dst_port=syn.src_port, payload=text)


def to_itself(sock, to: tuple) -> bool:
    """Whether ``to`` is ``sock``'s own address.  A forged SYN may name our
    own port as its source: the answer would come back to us as a datagram
    from a stranger, so it is not sent.  (A wildcard bind counts as every
    host: the port decides.)"""
    try:
        own = sock.getsockname()
    except OSError:
        return False
    return own[1] == to[1] and own[0] in (to[0], "0.0.0.0", "::")


def send_refusal(sock, syn: Segment, src_port: int, reason: str, to: tuple) -> None:
    """Send the refusal of ``syn`` to ``to`` (unless ``to`` is the socket's
    own address, see :func:`to_itself`); a failed send is only logged."""
    if to_itself(sock, to):
        logger.debug("no refusal sent: its address {} is our own", to)
        return
    try:
        sock.sendto(encode(refusal(syn, src_port, reason)), to)
    except OSError as exc:
        logger.debug("send failed: {}", exc)


def send_reset(sock, seg: Segment, src_port: int, to: tuple) -> None:
    """The RST answering ``seg``, a segment for no connection (RFC 9293
    §3.10.7.1): at its acknowledgment number if it has one (the number our
    peer takes an RST at), else acknowledging it."""
    if seg.flags & ACK:
        rst = Segment(seq=seg.ack, flags=RST, src_port=src_port, dst_port=seg.src_port,
                      payload=NO_CONNECTION.encode())
    else:
        rst = Segment(seq=0, ack=(seg.seq + seg.seg_len) & 0xFFFFFFFF, flags=RST | ACK,
                      src_port=src_port, dst_port=seg.src_port, payload=NO_CONNECTION.encode())
    if to_itself(sock, to):
        logger.debug("no reset sent: its address {} is our own", to)
        return
    try:
        sock.sendto(encode(rst), to)
    except OSError as exc:
        logger.debug("send failed: {}", exc)
