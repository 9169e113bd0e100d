"""The segment codec: a real TCP header (RFC 9293 §3.1) and its options.

One segment travels in one UDP datagram.  ``encode`` builds the bytes,
``decode`` parses and checks them; whatever the input, ``decode`` either
returns a :class:`Segment` or raises :class:`SegmentError`, never anything
else.  The checksum is the Internet checksum over header and payload, with no
IP pseudo-header (PROTOCOL.md).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .checksum import checksum_from_residue, ones_residue

FIN = 0x01
SYN = 0x02
RST = 0x04
PSH = 0x08
ACK = 0x10
#: Flag bits the protocol never sets: URG, ECE, CWR (and the reserved nibble).
UNUSED_FLAGS = 0x20 | 0x40 | 0x80

HEADER_LEN = 20
MAX_OPTIONS_LEN = 40
#: ports, seq, ack, data offset byte, flags, window, checksum, urgent pointer
HEADER = struct.Struct("!HHIIBBHHH")
CHECKSUM_AT = 16

OPT_EOL = 0
OPT_NOP = 1
OPT_MSS = 2
OPT_WSCALE = 3
OPT_SACK_PERMITTED = 4
OPT_SACK = 5
OPT_TIMESTAMPS = 8  # RFC 7323: kind 8, length 10, TSval and TSecr
#: RFC 6994 shared experimental option, with our ExID ("ST").
OPT_EXPERIMENT = 254
EXID = 0x5354
#: RFC 6994's other experimental kind, with the name option's ExID ("NM"):
#: in a SYN, "the payload is the file name offered" (docs/PROTOCOL.md §9).
OPT_EXPERIMENT_2 = 253
NAME_EXID = 0x4E4D
#: Under kind 253 too, the resume options' ExID ("RS", docs/PROTOCOL.md §9):
#: length 15 is the receiver's offer (SYN-ACK: 5-byte prefix length, 6
#: bytes of the prefix's SHA-256), length 9 the sender's answer (the offset
#: it starts at, 5 bytes: the offer's length, or 0).
RESUME_EXID = 0x5253
RESUME_OFFER_LEN = 15
RESUME_ANSWER_LEN = 9
RESUME_TAG_LEN = 6
MAX_RESUME = (1 << 40) - 1
MAX_WSCALE = 14
MAX_SACK_BLOCKS = 4
DIGEST_LEN = 32

_FLAG_LETTERS = ((FIN, "F"), (SYN, "S"), (RST, "R"), (PSH, "P"), (ACK, "A"))
_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
_U64 = struct.Struct("!Q")
_SACK_BLOCK = struct.Struct("!II")
_TS = struct.Struct("!II")
#: The timestamps option's first four bytes as we lay it out (NOP, NOP, kind
#: 8, length 10; RFC 7323 Appendix A).
TS_LEAD = bytes((OPT_NOP, OPT_NOP, OPT_TIMESTAMPS, 10))
#: A header whose options are the timestamps alone (NOP, NOP, TS): 20 + 12 bytes.
TS_HEADER_LEN = HEADER_LEN + 12
#: A data header with the timestamps option (data_header), packed in one call.
_HEADER_TS = struct.Struct("!HHIIBBHHH12s")


class SegmentError(ValueError):
    """A datagram that is not a valid segment.  ``reason`` names the rule broken."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


def flag_str(flags: int) -> str:
    """Flags as letters, e.g. ``"SA"`` for SYN+ACK, ``"."`` for none."""
    return "".join(ch for bit, ch in _FLAG_LETTERS if flags & bit) or "."


@dataclass(slots=True)
class Segment:
    """One segment's fields.  ``sack`` holds wire sequence numbers [left, right)."""

    seq: int = 0
    ack: int = 0
    flags: int = 0
    window: int = 0
    payload: bytes | memoryview = b""
    src_port: int = 0
    dst_port: int = 0
    mss: int | None = None
    wscale: int | None = None
    sack_permitted: bool = False
    sack: tuple[tuple[int, int], ...] = ()
    file_size: int | None = None
    digest: bytes | None = None
    #: The name option: this SYN's payload is the file name, not file data.
    name_follows: bool = False
    #: RFC 7323 timestamps: TSval (None: no option) and TSecr.
    ts_val: int | None = None
    ts_ecr: int = 0
    #: The receiver's resume offer (SYN-ACK): (bytes held, first 6 bytes of their SHA-256).
    resume_offer: tuple[int, bytes] | None = None
    #: The sender's answer to it (its ACK of the SYN-ACK): the offset it starts at.
    resume_at: int | None = None

    @property
    def seg_len(self) -> int:
        """Sequence space the segment occupies: payload, plus one each for SYN and FIN."""
        n = len(self.payload)
        if self.flags & SYN:
            n += 1
        if self.flags & FIN:
            n += 1
        return n

    def describe(self) -> str:
        return (
            f"seq={self.seq} ack={self.ack} flags={flag_str(self.flags)} "
            f"win={self.window} len={len(self.payload)}"
        )


def encode_options(seg: Segment) -> bytes:
    """The option bytes of ``seg``, padded with EOL to a multiple of 4."""
    out = bytearray()
    if seg.ts_val is not None:
        # first, behind two NOPs, as RFC 7323 Appendix A lays it out
        out += TS_LEAD + _TS.pack(seg.ts_val & 0xFFFFFFFF, seg.ts_ecr & 0xFFFFFFFF)
    if seg.mss is not None:
        if not 0 <= seg.mss <= 0xFFFF:
            raise SegmentError("options", f"MSS {seg.mss} out of range")
        out += bytes((OPT_MSS, 4)) + _U16.pack(seg.mss)
    if seg.wscale is not None:
        if not 0 <= seg.wscale <= MAX_WSCALE:
            raise SegmentError("options", f"window scale {seg.wscale} out of range")
        out += bytes((OPT_WSCALE, 3, seg.wscale))
    if seg.sack_permitted:
        out += bytes((OPT_SACK_PERMITTED, 2))
    if seg.sack:
        if len(seg.sack) > MAX_SACK_BLOCKS:
            raise SegmentError("options", f"{len(seg.sack)} SACK blocks, at most 4 fit")
        out += bytes((OPT_SACK, 2 + 8 * len(seg.sack)))
        for left, right in seg.sack:
            out += _SACK_BLOCK.pack(left & 0xFFFFFFFF, right & 0xFFFFFFFF)
    if seg.file_size is not None:
        if not 0 <= seg.file_size < 1 << 64:
            raise SegmentError("options", f"file size {seg.file_size} out of range")
        out += bytes((OPT_EXPERIMENT, 12)) + _U16.pack(EXID) + _U64.pack(seg.file_size)
    if seg.name_follows:
        out += bytes((OPT_EXPERIMENT_2, 4)) + _U16.pack(NAME_EXID)
    if seg.resume_offer is not None or seg.resume_at is not None:
        out += _encode_resume(seg)
    if seg.digest is not None:
        if len(seg.digest) != DIGEST_LEN:
            raise SegmentError("options", "the digest must be 32 bytes (SHA-256)")
        out += bytes((OPT_EXPERIMENT, 4 + DIGEST_LEN)) + _U16.pack(EXID) + seg.digest
    if len(out) % 4:
        out += bytes(4 - len(out) % 4)
    if len(out) > MAX_OPTIONS_LEN:
        raise SegmentError("options", f"{len(out)} bytes of options, at most 40 fit")
    return bytes(out)


def _encode_resume(seg: Segment) -> bytes:
    out = bytearray()
    if seg.resume_offer is not None:
        held, tag = seg.resume_offer
        if not 0 <= held <= MAX_RESUME or len(tag) != RESUME_TAG_LEN:
            raise SegmentError("options", f"resume offer ({held}, {len(tag)}-byte tag)")
        out += bytes((OPT_EXPERIMENT_2, RESUME_OFFER_LEN)) + _U16.pack(RESUME_EXID)
        out += held.to_bytes(5, "big") + bytes(tag)
    if seg.resume_at is not None:
        if not 0 <= seg.resume_at <= MAX_RESUME:
            raise SegmentError("options", f"resume answer {seg.resume_at} out of range")
        out += bytes((OPT_EXPERIMENT_2, RESUME_ANSWER_LEN)) + _U16.pack(RESUME_EXID)
        out += seg.resume_at.to_bytes(5, "big")
    return bytes(out)


def encode_header(seg: Segment, payload_residue: int | None = None) -> bytes:
    """The header (options included) of ``seg``, checksum filled in.

    ``payload_residue`` is ``ones_residue(seg.payload)`` when the caller has it
    already (a retransmission), so the payload is not summed again.
    """
    options = encode_options(seg) if _has_options(seg) else b""
    hlen = HEADER_LEN + len(options)
    header = bytearray(hlen)
    HEADER.pack_into(
        header,
        0,
        seg.src_port,
        seg.dst_port,
        seg.seq & 0xFFFFFFFF,
        seg.ack & 0xFFFFFFFF,
        (hlen // 4) << 4,
        seg.flags,
        seg.window,
        0,
        0,
    )
    if options:
        header[HEADER_LEN:] = options
    if payload_residue is None:
        payload_residue = ones_residue(seg.payload) if seg.payload else 0
    total = ones_residue(header) + payload_residue
    _U16.pack_into(header, CHECKSUM_AT, checksum_from_residue(total))
    return bytes(header)


def ts_fields(val: int, ecr: int) -> tuple[int, bytes]:
    """The timestamps option (NOP, NOP, kind 8, length 10, TSval, TSecr) as
    :func:`data_header` takes it: its 16-bit words' sum and its 12 bytes,
    made once for every data segment of a batch."""
    option = TS_LEAD + _TS.pack(val, ecr)
    return ((option[0] << 8 | option[1]) + (option[2] << 8 | option[3])
            + (val >> 16) + (val & 0xFFFF) + (ecr >> 16) + (ecr & 0xFFFF)), option


def data_header(src_port: int, dst_port: int, seq: int, ack: int, flags: int, window: int,
                payload_residue: int, ts: tuple[int, bytes] | None = None) -> bytes:
    """The header of a data segment from the payload's residue: the
    per-segment fast path of the sender.  20 bytes, or 32 with ``ts``
    (:func:`ts_fields`: the timestamps option after two NOPs).  The header's
    own sum is worked out from the field values instead of from its bytes."""
    if ts is None:
        total = (src_port + dst_port + (seq >> 16) + (seq & 0xFFFF) + (ack >> 16)
                 + (ack & 0xFFFF) + (0x5000 | flags) + window + payload_residue) % 0xFFFF
        return HEADER.pack(src_port, dst_port, seq, ack, 0x50, flags, window,
                           0xFFFF - total if total else 0, 0)
    option_sum, option = ts
    total = (src_port + dst_port + (seq >> 16) + (seq & 0xFFFF) + (ack >> 16) + (ack & 0xFFFF)
             + (0x8000 | flags) + window + payload_residue + option_sum) % 0xFFFF
    return _HEADER_TS.pack(src_port, dst_port, seq, ack, 0x80, flags, window,
                           0xFFFF - total if total else 0, 0, option)


#: The last timestamps option encode() made, ((TSval, TSecr), ts_fields):
#: the ACKs of one burst share both (one clock reading, one echo).  Replaced
#: as a whole, so threads that encode at once never see half of one.
_last_ts: tuple = ((None, None), None)


def encode(seg: Segment) -> bytes:
    """The whole datagram of ``seg``."""
    global _last_ts
    if seg.ts_val is not None and not seg.payload and not _has_other_options(seg):
        # a pure ACK with the timestamps alone (every in-order ACK a receiver
        # sends): packed in one call, as the sender's data headers are
        key = (seg.ts_val & 0xFFFFFFFF, seg.ts_ecr & 0xFFFFFFFF)
        last_key, ts = _last_ts
        if key != last_key:
            ts = ts_fields(*key)
            _last_ts = (key, ts)
        return data_header(seg.src_port, seg.dst_port, seg.seq & 0xFFFFFFFF,
                           seg.ack & 0xFFFFFFFF, seg.flags, seg.window, 0, ts)
    header = encode_header(seg)
    return header + bytes(seg.payload) if seg.payload else header


def _has_options(seg: Segment) -> bool:
    return seg.ts_val is not None or _has_other_options(seg)


def _has_other_options(seg: Segment) -> bool:
    """Options besides the timestamps."""
    return (
        seg.mss is not None
        or seg.wscale is not None
        or seg.sack_permitted
        or bool(seg.sack)
        or seg.file_size is not None
        or seg.digest is not None
        or seg.name_follows
        or seg.resume_offer is not None
        or seg.resume_at is not None
    )


def decode(data: bytes | bytearray | memoryview, verify_checksum: bool = True) -> Segment:
    """Parse one datagram.  Raises :class:`SegmentError` and nothing else."""
    try:
        return _decode(memoryview(data).cast("B"), verify_checksum)
    except SegmentError:
        raise
    except Exception as exc:  # a bug here must still not escape as anything else
        raise SegmentError("malformed", repr(exc)) from exc


def _decode(mv: memoryview, verify_checksum: bool) -> Segment:
    n = len(mv)
    if n < HEADER_LEN:
        raise SegmentError("short", f"{n} bytes, a header needs 20")
    src, dst, seq, ack, off_byte, flags, window, _csum, _urg = HEADER.unpack_from(mv, 0)
    hlen = (off_byte >> 4) * 4
    if hlen < HEADER_LEN or hlen > n:
        raise SegmentError("offset", f"data offset {off_byte >> 4} in a {n}-byte datagram")
    if verify_checksum:
        value = int.from_bytes(mv, "big")
        if n & 1:
            value <<= 8
        if value % 0xFFFF or not value:
            raise SegmentError("checksum", "bad checksum")
    seg = Segment(seq, ack, flags, window, b"", src, dst)
    if hlen == TS_HEADER_LEN and mv[HEADER_LEN:HEADER_LEN + 4] == TS_LEAD:
        # the usual options of every segment after the SYNs: timestamps alone
        seg.ts_val, seg.ts_ecr = _TS.unpack_from(mv, HEADER_LEN + 4)
    elif hlen > HEADER_LEN:
        _decode_options(mv[HEADER_LEN:hlen], seg)
    if hlen < n:
        seg.payload = bytes(mv[hlen:])
    return seg


def _decode_options(opts: memoryview, seg: Segment) -> None:
    i, end = 0, len(opts)
    while i < end:
        kind = opts[i]
        if kind == OPT_EOL:
            return
        if kind == OPT_NOP:
            i += 1
            continue
        if i + 1 >= end:
            raise SegmentError("options", f"option {kind} has no length byte")
        length = opts[i + 1]
        if length < 2 or i + length > end:
            raise SegmentError("options", f"option {kind} has a bad length {length}")
        body = opts[i + 2 : i + length]
        if kind == OPT_MSS:
            if length != 4:
                raise SegmentError("options", f"MSS option of length {length}")
            seg.mss = _U16.unpack(body)[0]
        elif kind == OPT_WSCALE:
            if length != 3:
                raise SegmentError("options", f"window scale option of length {length}")
            # RFC 7323 §2.3: a shift above 14 is used as 14.
            seg.wscale = min(body[0], MAX_WSCALE)
        elif kind == OPT_SACK_PERMITTED:
            if length != 2:
                raise SegmentError("options", f"SACK-permitted option of length {length}")
            seg.sack_permitted = True
        elif kind == OPT_SACK:
            count, rest = divmod(length - 2, 8)
            if rest or not 1 <= count <= MAX_SACK_BLOCKS:
                raise SegmentError("options", f"SACK option of length {length}")
            seg.sack = tuple(_SACK_BLOCK.iter_unpack(body))
        elif kind == OPT_TIMESTAMPS:
            if length != 10:
                raise SegmentError("options", f"timestamps option of length {length}")
            seg.ts_val, seg.ts_ecr = _TS.unpack(body)
        elif kind == OPT_EXPERIMENT:
            if length < 4:
                raise SegmentError("options", f"experimental option of length {length}")
            if _U16.unpack(body[:2])[0] == EXID:
                value = body[2:]
                if len(value) == 8:
                    seg.file_size = _U64.unpack(value)[0]
                elif len(value) == DIGEST_LEN:
                    seg.digest = bytes(value)
                else:
                    raise SegmentError("options", f"metadata option of length {length}")
            # RFC 6994: an ExID we do not know is ignored.
        elif kind == OPT_EXPERIMENT_2:
            if length < 4:
                raise SegmentError("options", f"experimental option of length {length}")
            if _U16.unpack(body[:2])[0] == NAME_EXID:
                if length != 4:
                    raise SegmentError("options", f"name option of length {length}")
                seg.name_follows = True
            elif _U16.unpack(body[:2])[0] == RESUME_EXID:
                _decode_resume(body[2:], seg)
        # RFC 9293 §3.2: options we do not know are skipped by their length.
        i += length


def _decode_resume(value: memoryview, seg: Segment) -> None:
    """The resume offer (5 + 6 bytes) or answer (5 bytes), PROTOCOL.md §9."""
    if len(value) == RESUME_OFFER_LEN - 4:
        seg.resume_offer = (int.from_bytes(value[:5], "big"), bytes(value[5:]))
    elif len(value) == RESUME_ANSWER_LEN - 4:
        seg.resume_at = int.from_bytes(value, "big")
    else:
        raise SegmentError("options", f"resume option of length {len(value) + 4}")
