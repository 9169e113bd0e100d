"""Classic libpcap capture files of our TCP segments, readable by Wireshark.

On the wire a segment is a real TCP header plus payload carried in a UDP
datagram, with a checksum that leaves out the IP pseudo-header (PROTOCOL.md).
A capture is far more useful when Wireshark dissects it as one ordinary TCP
connection, so each segment is written as a raw IP packet (``LINKTYPE_RAW``,
101): a synthesised IPv4 header (20 bytes), or IPv6 header (40 bytes, next
header 6) when the connection ran over IPv6, then the segment with

* its ports rewritten to ``local -> remote`` (outgoing) or ``remote -> local``
  (incoming): the real UDP ports differ per direction because a link
  emulator sits in between, and Wireshark follows a connection by its ports;
* its checksum recomputed the standard way, over the IPv4 pseudo-header
  (RFC 9293 §3.1) or the IPv6 one (RFC 8200 §8.1), so Wireshark validates
  it.  A segment whose wire checksum was wrong (the emulator corrupted it)
  keeps a wrong checksum in the capture, so the corruption stays visible.

Everything except :class:`PcapWriter` is a pure function.  The writer writes
to a binary file object the caller opened and opens nothing itself; it has a
lock of its own so several threads may share one writer.

File format: https://wiki.wireshark.org/Development/LibpcapFileFormat
(magic 0xa1b2c3d4, version 2.4, microsecond timestamps, native byte order).
"""

from __future__ import annotations

import ipaddress
import socket
import struct
import threading
from typing import BinaryIO

__all__ = [
    "LINKTYPE_RAW",
    "PCAP_ENDS",
    "PCAP_MAGIC",
    "SNAPLEN",
    "PcapWriter",
    "internet_checksum",
    "ip_version",
    "ip_bytes",
    "ipv4_header",
    "ipv6_header",
    "pcap_global_header",
    "pcap_record_header",
    "rewrite_segment",
    "tcp_checksum",
    "tcp_checksum_ipv4",
    "wire_checksum_ok",
]

PCAP_MAGIC = 0xA1B2C3D4
PCAP_VERSION = (2, 4)
SNAPLEN = 65535
#: Raw IP: the packet starts with the IP header (its version nibble says
#: which), no link-layer header.
LINKTYPE_RAW = 101
#: The addresses the sender and the receiver appear under in their captures,
#: by the family the connection used: whatever the real UDP addresses were
#: (an emulator between them), two addresses keep the ends apart.  IPv6 has
#: one loopback address only; ::2 stands for the receiver.
PCAP_ENDS = {socket.AF_INET: ("127.0.0.1", "127.0.0.2"), socket.AF_INET6: ("::1", "::2")}


def ip_version(sock) -> int:
    """6 for an IPv6 socket, else 4 (the trace's ``ip``)."""
    return 6 if sock.family == socket.AF_INET6 else 4

IPPROTO_TCP = 6
IP_TTL = 64
IP_FLAG_DF = 0x4000
TCP_HEADER_LEN = 20
#: Largest TCP segment that fits in one IPv4 packet (total length is 16 bits).
MAX_SEGMENT = 0xFFFF - 20
#: ... and in one IPv6 packet (its payload length is 16 bits; no jumbograms).
MAX_SEGMENT6 = 0xFFFF
IP6_HOP_LIMIT = 64

_GLOBAL = struct.Struct("=IHHiIII")
_RECORD = struct.Struct("=IIII")
_IPV4 = struct.Struct("!BBHHHBBH4s4s")
_IPV6 = struct.Struct("!IHBB16s16s")
_PORTS = struct.Struct("!HH")
_U16 = struct.Struct("!H")


def internet_checksum(data: bytes | bytearray | memoryview) -> int:
    """RFC 1071 checksum: ones' complement of the ones' complement sum of
    the 16-bit big-endian words of ``data`` (odd length padded with a zero
    byte).  Checksumming data that already holds a correct checksum gives 0.
    """
    data = bytes(data)
    if len(data) % 2:
        data += b"\x00"
    # 2**16 == 1 (mod 0xFFFF), so the integer mod 0xFFFF is the folded word
    # sum mod 0xFFFF; a non-zero multiple of 0xFFFF folds to 0xFFFF ("-0").
    n = int.from_bytes(data, "big")
    folded = n % 0xFFFF
    if folded == 0 and n != 0:
        folded = 0xFFFF
    return ~folded & 0xFFFF


def ip_bytes(addr: str | bytes | ipaddress.IPv4Address | ipaddress.IPv6Address) -> bytes:
    """An IPv4 address as its 4 network-order bytes, an IPv6 one as its 16."""
    if isinstance(addr, (bytes, bytearray)):
        if len(addr) not in (4, 16):
            raise ValueError(f"an IP address is 4 (IPv4) or 16 (IPv6) bytes, got {len(addr)}")
        return bytes(addr)
    return ipaddress.ip_address(addr).packed


def tcp_checksum(src_ip, dst_ip, segment: bytes | bytearray | memoryview) -> int:
    """The standard TCP checksum of ``segment`` sent from ``src_ip`` to
    ``dst_ip`` (both IPv4 or both IPv6): over the pseudo-header and the
    segment, whose checksum field (bytes 16-17) counts as zero whatever it
    holds.  IPv4's pseudo-header is source, destination, zero, protocol 6,
    16-bit TCP length (RFC 9293 §3.1); IPv6's is source, destination, 32-bit
    TCP length, three zero bytes, next header 6 (RFC 8200 §8.1).  Pure.
    """
    seg = bytes(segment)
    if len(seg) >= 18:
        seg = seg[:16] + b"\x00\x00" + seg[18:]
    src, dst = ip_bytes(src_ip), ip_bytes(dst_ip)
    if len(src) != len(dst):
        raise ValueError("the source and destination addresses are of different families")
    if len(src) == 4:
        pseudo = src + dst + bytes((0, IPPROTO_TCP)) + _U16.pack(len(seg))
    else:
        pseudo = src + dst + len(seg).to_bytes(4, "big") + bytes((0, 0, 0, IPPROTO_TCP))
    return internet_checksum(pseudo + seg)


#: The IPv4 name this function always had; it takes IPv6 addresses too.
tcp_checksum_ipv4 = tcp_checksum


def wire_checksum_ok(segment: bytes | bytearray | memoryview) -> bool:
    """Whether the checksum a segment carries on our wire (no pseudo-header,
    PROTOCOL.md) is right."""
    return len(segment) >= TCP_HEADER_LEN and internet_checksum(segment) == 0


def rewrite_segment(segment, src_port: int, dst_port: int, src_ip, dst_ip,
                    keep_bad: bool = True) -> bytes:
    """A copy of ``segment`` with its ports set to (src_port, dst_port) and
    its checksum recomputed over the pseudo-header of (src_ip, dst_ip).

    When ``keep_bad`` is true and the wire checksum was wrong, the written
    checksum is deliberately wrong too (the right value with its low bit
    flipped, which is never equivalent in ones' complement), so a corrupted
    datagram shows as a checksum error in Wireshark.  A segment too short to
    hold a TCP header is returned with at most its ports rewritten.
    """
    seg = bytearray(segment)
    if len(seg) >= 4:
        _PORTS.pack_into(seg, 0, src_port, dst_port)
    if len(seg) < TCP_HEADER_LEN:
        return bytes(seg)
    bad = keep_bad and not wire_checksum_ok(segment)
    csum = tcp_checksum(src_ip, dst_ip, seg)
    if bad:
        csum ^= 0x0001
    _U16.pack_into(seg, 16, csum)
    return bytes(seg)


def ipv4_header(src_ip, dst_ip, payload_len: int, ident: int, ttl: int = IP_TTL,
                proto: int = IPPROTO_TCP) -> bytes:
    """A 20-byte IPv4 header (version 4, IHL 5, DF, no options) with a
    correct header checksum."""
    total = 20 + payload_len
    if total > 0xFFFF:
        raise ValueError(f"IPv4 packet too long: {total} bytes")
    fields = [0x45, 0, total, ident & 0xFFFF, IP_FLAG_DF, ttl, proto, 0,
              ip_bytes(src_ip), ip_bytes(dst_ip)]
    fields[7] = internet_checksum(_IPV4.pack(*fields))
    return _IPV4.pack(*fields)


def ipv6_header(src_ip, dst_ip, payload_len: int, hop_limit: int = IP6_HOP_LIMIT,
                next_header: int = IPPROTO_TCP) -> bytes:
    """A 40-byte IPv6 header (version 6, traffic class and flow label 0, no
    extension headers); IPv6 has no header checksum."""
    if payload_len > 0xFFFF:
        raise ValueError(f"IPv6 payload too long: {payload_len} bytes")
    return _IPV6.pack(6 << 28, payload_len, next_header, hop_limit,
                      ip_bytes(src_ip), ip_bytes(dst_ip))


def pcap_global_header(snaplen: int = SNAPLEN, linktype: int = LINKTYPE_RAW) -> bytes:
    """The 24-byte libpcap file header (microsecond timestamps)."""
    return _GLOBAL.pack(PCAP_MAGIC, PCAP_VERSION[0], PCAP_VERSION[1], 0, 0, snaplen, linktype)


def pcap_record_header(ts: float, caplen: int, origlen: int | None = None) -> bytes:
    """The 16-byte header of one packet record; ``ts`` in seconds (wall
    clock), rounded to the microsecond."""
    usec_total = round(ts * 1_000_000)
    sec, usec = divmod(usec_total, 1_000_000)
    return _RECORD.pack(sec & 0xFFFFFFFF, usec, caplen, caplen if origlen is None else origlen)


class PcapWriter:
    """Writes our segments as one TCP connection to a pcap file, over IPv4
    or IPv6 as the addresses are.

    ``fileobj`` is a binary file object opened by the caller; the global
    header is written at construction.  ``local`` and ``remote`` are
    ``(address, port)`` pairs, both IPv4 or both IPv6 (PCAP_ENDS): the
    addresses this end and its peer appear under in the capture, whatever
    the real UDP addresses were.

    ``close()`` flushes and stops the writer; it closes ``fileobj`` only if
    ``close_file=True`` was given.  Usable as a context manager.
    """

    def __init__(self, fileobj: BinaryIO, local: tuple[str, int], remote: tuple[str, int],
                 *, snaplen: int = SNAPLEN, keep_bad_checksums: bool = True,
                 close_file: bool = False):
        self._file = fileobj
        self._local_ip = ip_bytes(local[0])
        self._remote_ip = ip_bytes(remote[0])
        if len(self._local_ip) != len(self._remote_ip):
            raise ValueError(f"{local[0]} and {remote[0]} are of different IP families")
        self.ipv6 = len(self._local_ip) == 16
        self._local_port = int(local[1])
        self._remote_port = int(remote[1])
        for port in (self._local_port, self._remote_port):
            if not 0 <= port <= 0xFFFF:
                raise ValueError(f"port out of range: {port}")
        self._snaplen = snaplen
        self._keep_bad = keep_bad_checksums
        self._close_file = close_file
        self._lock = threading.Lock()
        self._ident = 0
        self._closed = False
        self.packets = 0
        with self._lock:
            self._file.write(pcap_global_header(snaplen, LINKTYPE_RAW))

    def packet(self, outgoing: bool, segment: bytes, ident: int) -> bytes:
        """The IP packet ``segment`` becomes (pure; no state changed)."""
        if len(segment) > (MAX_SEGMENT6 if self.ipv6 else MAX_SEGMENT):
            raise ValueError(f"segment too long for IPv{6 if self.ipv6 else 4}: "
                             f"{len(segment)} bytes")
        if outgoing:
            sip, dip, sport, dport = (self._local_ip, self._remote_ip,
                                      self._local_port, self._remote_port)
        else:
            sip, dip, sport, dport = (self._remote_ip, self._local_ip,
                                      self._remote_port, self._local_port)
        tcp = rewrite_segment(segment, sport, dport, sip, dip, self._keep_bad)
        if self.ipv6:
            return ipv6_header(sip, dip, len(tcp)) + tcp
        return ipv4_header(sip, dip, len(tcp), ident) + tcp

    def write(self, ts: float, outgoing: bool, segment: bytes) -> None:
        """Record one segment as sent (``outgoing``) or received, at wall-clock
        time ``ts`` seconds."""
        segment = bytes(segment)
        with self._lock:  # the writer's own lock: ids and records stay in order
            if self._closed:
                raise ValueError("write to a closed PcapWriter")
            pkt = self.packet(outgoing, segment, self._ident)
            caplen = min(len(pkt), self._snaplen)
            self._file.write(pcap_record_header(ts, caplen, len(pkt)) + pkt[:caplen])
            self._ident = (self._ident + 1) & 0xFFFF
            self.packets += 1

    def flush(self) -> None:
        with self._lock:
            if not self._closed:
                self._file.flush()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._file.flush()
            if self._close_file:
                self._file.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> PcapWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
