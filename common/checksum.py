"""The Internet checksum (RFC 1071), computed with big-integer arithmetic.

The ones' complement sum of 16-bit words is congruent, modulo 0xFFFF, to the
big-endian integer the words spell: 2**16 is 1 modulo 0xFFFF, so every word
counts once whatever its position.  ``int.from_bytes(data) % 0xFFFF`` is then
the folded sum in C, with one care: a residue of 0 means the ones' complement
sum is 0xFFFF ("negative zero") unless every byte is zero.

Residues of pieces add up, so a header and a payload can be summed apart and
the payload's residue kept for retransmissions, as long as every piece but the
last has an even length (an odd piece would shift the next one's bytes).
"""

from __future__ import annotations

_FOLD = 0xFFFF


def ones_residue(data: bytes | bytearray | memoryview) -> int:
    """The ones' complement sum of ``data`` modulo 0xFFFF, in 0..0xFFFE.

    An odd length is padded with one zero byte, as RFC 1071 says.
    """
    value = int.from_bytes(data, "big")
    if len(data) & 1:
        value <<= 8
    return value % _FOLD


def checksum_from_residue(residue: int, nonzero: bool = True) -> int:
    """The checksum field for data whose summed residue is ``residue``.

    ``nonzero`` says whether any byte summed was non-zero (a TCP header always
    has one: the data offset), which decides between +0 and -0.
    """
    residue %= _FOLD
    if residue:
        return _FOLD - residue
    return 0 if nonzero else 0xFFFF


def internet_checksum(data: bytes | bytearray | memoryview) -> int:
    """RFC 1071 checksum of ``data`` (the checksum field itself zeroed)."""
    value = int.from_bytes(data, "big")
    if len(data) & 1:
        value <<= 8
    return checksum_from_residue(value % _FOLD, value != 0)


def verify(data: bytes | bytearray | memoryview) -> bool:
    """True when ``data``, checksum field included, sums to ones' complement -0."""
    value = int.from_bytes(data, "big")
    if len(data) & 1:
        value <<= 8
    return value != 0 and value % _FOLD == 0
