"""What the checksum and the codec cost per segment, against a plain word loop.

Each figure is the median over several ``timeit`` repeats of the time per
call, in microseconds.  Results, not pass/fail.

    python -m bench.bench_checksum [--repeats 7] [--seconds 0.2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import timeit

if __package__ in (None, ""):  # run as a file: make ``common`` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from common.checksum import internet_checksum, ones_residue  # noqa: E402
from common.segment import ACK, Segment, decode, encode  # noqa: E402


def plain_checksum(data: bytes) -> int:
    """RFC 1071 the schoolbook way: 16-bit words, end-around carry, complement."""
    if len(data) % 2:
        data = bytes(data) + b"\x00"
    total = 0
    for i in range(0, len(data), 2):
        total += (data[i] << 8) | data[i + 1]
        if total > 0xFFFF:
            total = (total & 0xFFFF) + 1
    return ~total & 0xFFFF


def plain_residue(data: bytes) -> int:
    """The folded sum alone, the same loop without the complement."""
    return ~plain_checksum(data) & 0xFFFF


def per_call_us(fn, repeats: int, seconds: float) -> float:
    """Median time of one call, in microseconds."""
    timer = timeit.Timer(fn)
    number, _ = timer.autorange()
    number = max(1, int(number * seconds / 0.2))
    runs = timer.repeat(repeat=repeats, number=number)
    return statistics.median(runs) / number * 1e6


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7, help="timeit repeats (median taken)")
    ap.add_argument("--seconds", type=float, default=0.2, help="rough time per repeat")
    args = ap.parse_args(argv)

    buffers = {n: os.urandom(n) for n in (20, 1452, 1472)}
    for n, buf in buffers.items():
        assert internet_checksum(buf) == plain_checksum(buf), n

    seg = Segment(seq=123456789, ack=987654321, flags=ACK, window=4096,
                  payload=buffers[1452], src_port=40000, dst_port=50000)
    raw = encode(seg)
    assert decode(raw).payload == seg.payload

    rows: list[tuple[str, float, float | None]] = []
    for n, buf in buffers.items():
        ours = per_call_us(lambda b=buf: internet_checksum(b), args.repeats, args.seconds)
        plain = per_call_us(lambda b=buf: plain_checksum(b), args.repeats, args.seconds)
        rows.append((f"internet_checksum, {n} bytes", ours, plain))
    buf = buffers[1452]
    rows.append(("ones_residue, 1452 bytes",
                 per_call_us(lambda: ones_residue(buf), args.repeats, args.seconds),
                 per_call_us(lambda: plain_residue(buf), args.repeats, args.seconds)))
    rows.append((f"encode, {len(raw)}-byte data segment",
                 per_call_us(lambda: encode(seg), args.repeats, args.seconds), None))
    rows.append((f"decode, {len(raw)}-byte data segment",
                 per_call_us(lambda: decode(raw), args.repeats, args.seconds), None))
    rows.append((f"decode without checksum, {len(raw)} bytes",
                 per_call_us(lambda: decode(raw, verify_checksum=False), args.repeats,
                             args.seconds), None))

    print(f"Python {sys.version.split()[0]}, median of {args.repeats} repeats, "
          "microseconds per call")
    print(f"{'what':44} {'ours':>9} {'plain loop':>11} {'plain/ours':>11}")
    for name, ours, plain in rows:
        if plain is None:
            print(f"{name:44} {ours:9.2f} {'':>11} {'':>11}")
        else:
            print(f"{name:44} {ours:9.2f} {plain:11.2f} {plain / ours:10.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
