"""One read of the receiving socket judged datagram by datagram.  Pure: no sockets, no clock.

A read holds one datagram, or a GRO batch of datagrams of one size (the last
may be shorter).  Each gets its verdict from the impairer, in order, with the
same random draws as if they had come apart, and becomes an
:class:`~emulator.schedule.Entry`, the bytes to send (bits flipped as the
verdict says), or nothing when dropped.

Batches: when ``batching`` is on, consecutive datagrams of a batch that are
forwarded untouched (not corrupted, duplicated or held for reordering) with
the same release time become one entry, sent by one GSO call; a dropped one
between them is left out and does not split the run (they would have left
back to back anyway).  Batching is for the cost only: the caller turns it off
whenever each datagram must be seen on its own (a trace, debug lines,
reordering, a bottleneck, forwarding by port).

Forwarding by port (``host`` given): each datagram goes to ``host`` at the
port in bytes 2-3 of the TCP header it carries (the destination port); one
shorter than 4 bytes, or naming port 0, has no port and is dropped
(``noport``, decided by the impairer so the random draws stay in step).
"""

from __future__ import annotations

from collections.abc import Callable

from emulator.impair import Verdict, flip_bits
from emulator.schedule import Entry
from runtime.udpgso import GSO_MAX_SEGMENTS

Decide = Callable[..., Verdict]


def tcp_dst_port(data) -> int | None:
    """The TCP destination port in the first bytes of ``data``, or None (too short, or 0)."""
    if len(data) < 4:
        return None
    port = data[2] << 8 | data[3]
    return port or None


def make_entry(v: Verdict, now: float, data: memoryview, addr=None) -> Entry | None:
    """One datagram's verdict carried out up to its entry (None: dropped)."""
    if v.drop is not None:
        return None
    if v.flips:
        out = bytearray(data)
        flip_bits(out, v.flips)
        out = bytes(out)
    else:
        out = bytes(data)
    return Entry(v.n, out, 2 if v.dup else 1, now, v.release, v.reorder, 0, v.after, addr,
                 len(v.flips))


def run_entry(pieces: list, size: int, now: float, due: float, n: int) -> Entry:
    """The entry of untouched datagrams, the first numbered ``n``: the
    memoryviews ``pieces`` (stretches of whole datagrams, in order), one
    batch of ``size``-byte datagrams, or one datagram on its own."""
    data = bytes(pieces[0]) if len(pieces) == 1 else b"".join(pieces)
    return Entry(n, data, 1, now, due, False, size if len(data) > size else 0)


def judge_one(decide: Decide, data: memoryview, now: float,
              host: str | None = None) -> tuple[Verdict, Entry | None]:
    """One datagram: its verdict and its entry (None when dropped)."""
    if host is None:
        v = decide(now, len(data))
        return v, make_entry(v, now, data)
    port = tcp_dst_port(data)
    v = decide(now, len(data), port is not None)
    return v, make_entry(v, now, data, (host, port))


def judge_batch(decide: Decide, mv: memoryview, n: int, size: int, now: float,
                batching: bool,
                host: str | None = None) -> list[tuple[Verdict | None, Entry | None]]:
    """The datagrams of a GRO batch of ``n`` bytes cut at ``size``, in order:
    (verdict, entry) for each judged alone; (None, entry) for a run of
    untouched ones that leave together (``batching`` only; nothing to trace
    or log in that case, and dropped datagrams are left out)."""
    out: list[tuple[Verdict | None, Entry | None]] = []
    pieces: list[memoryview] = []  # the open run: stretches of mv
    run_at = run_end = 0  # its last stretch, not in pieces yet
    run_count = 0  # datagrams in it
    run_due = 0.0
    run_n = 0
    for at in range(0, n, size):
        end = min(at + size, n)
        if not batching:
            out.append(judge_one(decide, mv[at:end], now, host))
            continue
        v = decide(now, end - at)
        if v.drop is not None:
            continue
        untouched = not v.flips and not v.dup
        if untouched and run_count and v.release == run_due and run_count < GSO_MAX_SEGMENTS:
            if run_end != at:  # past a dropped one: a new stretch
                pieces.append(mv[run_at:run_end])
                run_at = at
            run_end = end
            run_count += 1
            continue
        if run_count:  # the open run ends here
            pieces.append(mv[run_at:run_end])
            out.append((None, run_entry(pieces, size, now, run_due, run_n)))
            pieces = []
            run_count = 0
        if untouched:
            run_at, run_end, run_due, run_n = at, end, v.release, v.n
            run_count = 1
            continue
        out.append((v, make_entry(v, now, mv[at:end])))
    if run_count:
        pieces.append(mv[run_at:run_end])
        out.append((None, run_entry(pieces, size, now, run_due, run_n)))
    return out
