"""A simulated link between the two protocol cores, with a fake clock.

No sockets and no threads: segments are encoded, pass through a channel that
loses, duplicates, corrupts, reorders and delays them (a seeded random.Random),
and are decoded on the other side, as the programs do.  A transfer of a few
hundred kilobytes through heavy loss runs in well under a second of real time.
"""

from __future__ import annotations

import hashlib
import heapq
import random
from collections import deque
from dataclasses import dataclass, field

from common.receiver_core import ReceiverCore, ReceiverState
from common.resume import prefix_tag
from common.rtt import RttEstimator
from common.segment import SegmentError, decode, encode
from common.sender_core import SenderCore, SenderState


@dataclass
class Channel:
    loss: float = 0.0
    dup: float = 0.0
    corrupt: float = 0.0
    delay: float = 0.01
    jitter: float = 0.0
    drop_list: frozenset = frozenset()  # 1-based datagram indices always dropped
    count: int = 0

    def schedule(self, rng: random.Random, now: float, data: bytes) -> list[tuple[float, bytes]]:
        self.count += 1
        if self.count in self.drop_list or rng.random() < self.loss:
            return []
        copies = 2 if rng.random() < self.dup else 1
        out = []
        for _ in range(copies):
            d = bytearray(data)
            if rng.random() < self.corrupt:
                bit = rng.randrange(len(d) * 8)
                d[bit // 8] ^= 1 << (bit % 8)
            out.append((now + self.delay + rng.random() * self.jitter, bytes(d)))
        return out


@dataclass
class Bottleneck(Channel):
    """A channel with a rate (bytes per second) and a tail-drop queue of
    ``queue`` bytes in front of it, as the emulator's ``-s`` and ``-q``:
    a datagram waits for those before it, or is dropped if they fill the
    queue.  ``drops`` counts the queue's drops."""

    rate: float = 1e6
    queue: int = 64 * 1024
    drops: int = 0
    busy_until: float = 0.0

    def schedule(self, rng: random.Random, now: float, data: bytes) -> list[tuple[float, bytes]]:
        backlog = max(0.0, self.busy_until - now) * self.rate
        if backlog + len(data) > self.queue:
            self.drops += 1
            return []
        self.busy_until = max(now, self.busy_until) + len(data) / self.rate
        return [(t + self.busy_until - now, d)
                for t, d in super().schedule(rng, now, data)]


@dataclass
class Result:
    sender: SenderCore
    receiver: ReceiverCore
    output: bytes
    now: float
    renamed: bool
    corrupt_dropped: int = 0
    sent_wire: list = field(default_factory=list)


def run_transfer(
    data: bytes,
    *,
    mode: str = "sr",
    rmode: str | None = None,
    window: int = 64 * 1024,
    capacity: int = 256 * 1024,
    mss: int = 1000,
    forward: Channel | None = None,
    backward: Channel | None = None,
    seed: int = 1,
    isn_s: int = 12345,
    isn_r: int = 777,
    write_rate: float | None = None,
    time_limit: float = 600.0,
    retries: int = 10,
    give_up: float = 30.0,
    tamper_digest: bool = False,
    max_steps: int = 2_000_000,
    ack_bursts: bool = False,
    on_burst=None,
    cc: str = "none",
    pacing: float | None = None,
    min_rto: float = 0.05,
    name: bytes | None = None,
    timestamps: tuple[bool, bool] = (True, True),
    delayed_ack: float | None = None,
    held: bytes | None = None,
    resume: bool = False,
) -> Result:
    """``ack_bursts``: the sender takes the segments that reach it at one
    instant together (SenderCore.on_segments), as the program takes what one
    read of its socket returns, and ``on_burst`` (if given) is called with
    each burst's length; otherwise one by one.  ``timestamps``: whether the
    sender and the receiver offer RFC 7323 timestamps.  ``delayed_ack``: the
    receiver's delayed-ACK timer (None: the pending ACK at each instant's end).
    ``held``: the prefix the receiver holds and offers to resume from
    (common/resume.py); ``resume``: whether the sender checks such an offer
    (else it answers 0).  The output then starts with what the receiver
    kept of ``held``."""
    rng = random.Random(seed)
    forward = forward or Channel()
    backward = backward or Channel()
    snd = SenderCore(isn=isn_s, file_size=len(data), mode=mode, mss=mss, window=window,
                     rtt=RttEstimator(min_rto=min_rto), retries=retries, give_up=give_up,
                     trace=True, congestion_control=cc, pacing=pacing,
                     timestamps=timestamps[0])
    snd.handshake.offered_name = name  # the name option: the SYN's payload, in sequence space
    rcv = ReceiverCore(isn=isn_r, mode=rmode or mode, mss=mss, capacity=capacity,
                       rtt=RttEstimator(min_rto=0.05), retries=retries, give_up=give_up,
                       timestamps=timestamps[1], delayed_ack=delayed_ack,
                       resume_offer=None if held is None else (len(held), prefix_tag(held)))
    if resume:
        snd.handshake.resume_check = lambda n, tag: prefix_tag(data[:n]) == tag
    now = 0.0
    wire: list[tuple[float, int, str, bytes]] = []  # (time, tiebreak, to, bytes)
    tie = 0
    out = bytearray()
    unwritten: deque[bytes] = deque()
    writer_busy_until = 0.0
    chunked = False
    renamed = False
    kept = False
    corrupt_dropped = 0
    sent_wire = []
    snd.start(now)
    digest = bytes(32) if tamper_digest else hashlib.sha256(data).digest()

    def push(to: str, seg, chan: Channel):
        nonlocal tie
        raw = encode(seg)
        sent_wire.append((to, raw))
        for t, d in chan.schedule(rng, now, raw):
            tie += 1
            heapq.heappush(wire, (t, tie, to, d))

    for _ in range(max_steps):
        # The sender side: what is due now.
        if snd.established and not chunked:
            m = snd.eff_mss
            first = snd.handshake.resume_at or 0
            snd.supply(memoryview(data)[i:i + m] for i in range(first, len(data), m))
            snd.end_of_stream(digest)
            chunked = True
        for seg, _rec in snd.take(now, max_new=10_000):
            push("r", seg, forward)
        # The writer.
        while unwritten and (write_rate is None or writer_busy_until <= now):
            chunk = unwritten.popleft()
            out += chunk
            rcv.on_written(len(chunk), now)
            if write_rate is not None:
                writer_busy_until = now + len(chunk) / write_rate
                break
        if rcv.state == ReceiverState.CLOSE_WAIT and not unwritten:
            ok = hashlib.sha256(out).digest() == rcv.digest
            renamed = ok
            rcv.on_verified(ok, now)
        for seg in rcv.outbox:
            push("s", seg, backward)
        rcv.outbox.clear()
        if snd.finished and rcv.finished and not wire:
            break
        if snd.state in (SenderState.DONE, SenderState.ABORTED) and rcv.finished:
            break
        # Next event.
        candidates = [t for t in (snd.next_deadline(), rcv.next_deadline(), snd.pace_deadline)
                      if t is not None]
        if wire:
            candidates.append(wire[0][0])
        if unwritten and write_rate is not None:
            candidates.append(writer_busy_until)
        if not candidates:
            break
        nxt = max(now, min(candidates))
        if nxt > time_limit:
            break
        now = nxt
        to_sender = []
        while wire and wire[0][0] <= now:
            _, _, to, raw = heapq.heappop(wire)
            try:
                seg = decode(raw)
            except SegmentError:
                corrupt_dropped += 1
                continue
            if to == "r":
                rcv.on_segment(seg, now)
                if held is not None and rcv.resume_at is not None and not kept:
                    out += held[:rcv.resume_at]  # what the receiver keeps of its prefix
                    kept = True
                unwritten.extend(bytes(c) for c in rcv.deliver)
                rcv.deliver.clear()
            elif ack_bursts:
                to_sender.append(seg)
            else:
                snd.on_segment(seg, now)
        if to_sender:
            snd.on_segments(to_sender, now)
            if on_burst is not None:
                on_burst(len(to_sender))
        rcv.flush_ack(now)
        dl = snd.next_deadline()
        if dl is not None and dl <= now:
            snd.on_timer(now)
        dl = rcv.next_deadline()
        if dl is not None and dl <= now:
            rcv.on_timer(now)
    return Result(snd, rcv, bytes(out), now, renamed, corrupt_dropped, sent_wire)
