"""Helpers for the hostile-network and fault tests (issue 8).

* garbage: datagrams that are short, have a wrong data offset, broken
  options, a bad checksum, or a *valid* checksum over nonsense fields (every
  flag combination, absurd SACK blocks, absurd metadata);
* a flooder thread that sends such datagrams from its own socket on
  127.0.0.1, bounded in count and time;
* a sans-I/O driver of the two cores (like tests/sim.py, with an injection
  hook so garbage can arrive "from the peer" mid-transfer);
* process helpers: a ``hlink`` fixture whose children run with
  PYTHONFAULTHANDLER=1 and get SIGABRT (a dump of every thread's stack into
  their .err file) before being killed when they hang; VmRSS; lingering
  process checks.
"""

from __future__ import annotations

import contextlib
import hashlib
import heapq
import os
import random
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path

import pytest
from support import HOST, Link

from common.checksum import internet_checksum
from common.receiver_core import ReceiverCore, ReceiverState
from common.rtt import RttEstimator
from common.segment import ACK, FIN, RST, SYN, SegmentError, decode, encode
from common.sender_core import SenderCore

MASK = 0xFFFFFFFF
_HDR = struct.Struct("!HHIIBBHHH")

# ----------------------------------------------------------------- garbage


@contextlib.contextmanager
def mounted_tmpfs(tmp_path, size: str):
    """A real tmpfs of ``size`` (e.g. "4m"; root only) under ``tmp_path``,
    unmounted at the end; the test is skipped where it cannot be mounted."""
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)],
                         capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.strip() or res.returncode}")
    try:
        yield mnt
    finally:
        if subprocess.run(["umount", str(mnt)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def seal(datagram: bytearray) -> bytes:
    """Fill in a valid checksum (datagrams of at least 18 bytes)."""
    datagram[16:18] = b"\0\0"
    datagram[16:18] = internet_checksum(datagram).to_bytes(2, "big")
    return bytes(datagram)


def raw_segment(seq: int, ack: int, flags: int, window: int = 0, payload: bytes = b"",
                options: bytes = b"", *, words: int | None = None, src: int = 0,
                dst: int = 0, urg: int = 0, checksum_ok: bool = True) -> bytes:
    """A datagram laid out as a TCP header, built by hand so it can break any
    rule (the data offset is ``words`` when given, else the true length)."""
    if len(options) % 4:
        options += bytes(4 - len(options) % 4)
    if words is None:
        words = (20 + len(options)) // 4
    buf = bytearray(_HDR.pack(src & 0xFFFF, dst & 0xFFFF, seq & MASK, ack & MASK,
                              (words & 0xF) << 4, flags & 0xFF, window & 0xFFFF, 0,
                              urg & 0xFFFF))
    buf += options + payload
    out = bytearray(seal(buf))
    if not checksum_ok:
        out[16] ^= 0x5A
    return bytes(out)


def sack_option(blocks) -> bytes:
    body = b"".join(struct.pack("!II", left & MASK, right & MASK) for left, right in blocks)
    return bytes((1, 1, 5, 2 + len(body))) + body


BROKEN_OPTIONS = [
    bytes((2, 0)),                         # length 0
    bytes((2, 1)),                         # length 1
    bytes((2, 3, 5)),                      # MSS of length 3
    bytes((2, 40)),                        # runs past the end
    bytes((3, 4, 9, 9)),                   # window scale of length 4
    bytes((4, 3, 0)),                      # SACK-permitted of length 3
    bytes((5, 3, 0)),                      # SACK of length 3
    bytes((5, 2)),                         # SACK with no block
    bytes((5, 11)) + bytes(9),             # SACK, not a multiple of 8
    bytes((254, 3, 0x53)),                 # experimental, too short
    bytes((254, 9, 0x53, 0x54)) + bytes(5),  # metadata of a wrong length
    bytes((1, 1, 1, 77)),                  # an unknown kind with no length byte
    bytes((200, 255)),                     # an unknown kind running far past the end
]


class GarbageMaker:
    """Hostile datagrams, every category in turn.

    ``seq`` and ``ack`` are callables taking the generator's ``random.Random``
    and returning the sequence and acknowledgment numbers for datagrams that
    pass the codec: by default anything, for garbage "from the peer" numbers
    a blind attacker could pick without hitting the window.  ``max_payload``
    bounds payload sizes.
    """

    def __init__(self, rng: random.Random, seq=None, ack=None, max_payload: int = 1400):
        self.rng = rng
        self.seq = seq or (lambda r: r.getrandbits(32))
        self.ack = ack or (lambda r: r.getrandbits(32))
        self.max_payload = max_payload
        self.flag_counter = 0
        self.kinds = [self.random_bytes, self.short, self.bad_offset, self.bad_checksum,
                      self.broken_options, self.nonsense_fields, self.absurd_sack,
                      self.every_flag, self.absurd_metadata]
        self.made = {k.__name__: 0 for k in self.kinds}
        self.n = 0

    def __iter__(self):
        return self

    def __next__(self) -> bytes:
        kind = self.kinds[self.n % len(self.kinds)]
        self.n += 1
        self.made[kind.__name__] += 1
        return kind()

    def take(self, count: int) -> list[bytes]:
        return [next(self) for _ in range(count)]

    def _payload(self) -> bytes:
        r = self.rng
        return r.randbytes(r.choice((0, 0, 1, r.randrange(self.max_payload + 1))))

    def _hdr_fields(self):
        r = self.rng
        return self.seq(r), self.ack(r), r.getrandbits(16), r.getrandbits(16)

    def random_bytes(self) -> bytes:
        r = self.rng
        return r.randbytes(r.randrange(20, self.max_payload + 60))

    def short(self) -> bytes:
        return self.rng.randbytes(self.rng.randrange(20))

    def bad_offset(self) -> bytes:
        r = self.rng
        seq, ack, win, _ = self._hdr_fields()
        body = r.randbytes(r.randrange(0, 40))
        total = 20 + len(body)
        words = r.choice([w for w in range(16) if w < 5 or w * 4 > total] or [0])
        return raw_segment(seq, ack, r.getrandbits(8), win, body, words=words)

    def bad_checksum(self) -> bytes:
        seq, ack, win, _ = self._hdr_fields()
        return raw_segment(seq, ack, ACK, win, self._payload(), checksum_ok=False)

    def broken_options(self) -> bytes:
        r = self.rng
        seq, ack, win, _ = self._hdr_fields()
        opts = r.choice(BROKEN_OPTIONS)
        if r.random() < 0.5:
            opts = bytes((1,)) * r.randrange(4) + opts  # NOPs first
        opts = opts[:40]
        return raw_segment(seq, ack, r.choice((ACK, SYN, SYN | ACK, FIN | ACK)), win,
                           self._payload(), opts)

    def nonsense_fields(self) -> bytes:
        r = self.rng
        seq, ack, win, port = self._hdr_fields()
        opts = b""
        if r.random() < 0.5:
            opts = bytes((2, 4, 0, 0, 3, 3, 255, 4, 2)) + bytes(3)  # MSS 0, wscale 255
        return raw_segment(seq, ack, r.getrandbits(8), win, self._payload(), opts,
                           src=port, dst=r.getrandbits(16), urg=r.getrandbits(16))

    def absurd_sack(self) -> bytes:
        r = self.rng
        seq, ack, win, _ = self._hdr_fields()
        blocks = []
        for _ in range(r.randrange(1, 5)):
            kind = r.randrange(4)
            if kind == 0:  # left after right
                left = r.getrandbits(32)
                blocks.append((left, left - r.randrange(1, 1 << 20)))
            elif kind == 1:  # empty
                left = r.getrandbits(32)
                blocks.append((left, left))
            elif kind == 2:  # wrapping the sequence space
                blocks.append((MASK - r.randrange(1000), r.randrange(1000)))
            else:  # anything
                blocks.append((r.getrandbits(32), r.getrandbits(32)))
        return raw_segment(seq, ack, ACK | r.choice((0, 0, FIN, PSH_BIT)), win, b"",
                           sack_option(blocks))

    def every_flag(self) -> bytes:
        seq, ack, win, _ = self._hdr_fields()
        flags = self.flag_counter % 256
        self.flag_counter += 1
        return raw_segment(seq, ack, flags, win, self._payload())

    def absurd_metadata(self) -> bytes:
        r = self.rng
        seq, ack, win, _ = self._hdr_fields()
        if r.random() < 0.5:  # a file size, from nothing to 2**64 - 1
            size = struct.pack("!Q", r.choice((0, 1, (1 << 64) - 1, r.getrandbits(64))))
            opts = bytes((254, 12, 0x53, 0x54)) + size
        else:  # a digest of nothing in particular
            opts = bytes((254, 36, 0x53, 0x54)) + r.randbytes(32)
        flags = r.choice((SYN, SYN | ACK, FIN | ACK, ACK, RST | ACK))
        return raw_segment(seq, ack, flags, win, self._payload(), opts)


PSH_BIT = 0x08


def outside(center: int, half_width: int):
    """A number picker: uniform over the 32-bit space except ``center`` ±
    ``half_width`` (modulo 2**32), i.e. what a blind attacker guesses that
    misses a window of that size."""
    span = (1 << 32) - 2 * half_width - 1

    def pick(r: random.Random) -> int:
        return (center + half_width + 1 + r.randrange(span)) & MASK

    return pick


# ----------------------------------------------------------------- flooder


class Flooder(threading.Thread):
    """Sends datagrams from its own socket on 127.0.0.1 to ``targets`` (round
    robin), at most ``count`` of them and for at most ``duration`` seconds."""

    def __init__(self, targets: list[int], datagrams, count: int, duration: float,
                 pace: float = 0.0):
        super().__init__(name="flooder", daemon=True)
        self.targets = [(HOST, p) for p in targets]
        self.datagrams = iter(datagrams)
        self.count = count
        self.duration = duration
        self.pace = pace  # seconds to sleep after every 100 datagrams
        self.sent = 0
        self.errors = 0
        self.halt = threading.Event()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, 0))
        self.address = self.sock.getsockname()

    def run(self) -> None:
        deadline = time.monotonic() + self.duration
        targets = self.targets
        try:
            for i in range(self.count):
                if self.halt.is_set() or (i % 256 == 0 and time.monotonic() > deadline):
                    break
                try:
                    self.sock.sendto(next(self.datagrams), targets[i % len(targets)])
                    self.sent += 1
                except (BlockingIOError, ConnectionRefusedError, OSError):
                    self.errors += 1
                if self.pace and i % 100 == 99:
                    time.sleep(self.pace)
        finally:
            self.sock.close()

    def stop(self) -> None:
        self.halt.set()
        self.join(30)


def send_from(sock_addr_port: int | None, datagrams, target_port: int) -> tuple[str, int]:
    """Send ``datagrams`` to 127.0.0.1:``target_port`` from a fresh socket
    (bound to ``sock_addr_port`` when given); returns the source address."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((HOST, sock_addr_port or 0))
        for d in datagrams:
            s.sendto(d, (HOST, target_port))
        return s.getsockname()


# ---------------------------------------------------------- the cores alone


class CorePair:
    """Both cores through a lossy, delaying channel with a fake clock, with a
    hook that injects raw datagrams at either end mid-transfer.

    ``inject(pair, now)`` is called every ``inject_every`` seconds of fake
    time while both ends are established; it returns (to, raw) pairs, ``to``
    being "r" (the receiver) or "s" (the sender).  Injected datagrams arrive
    as if from the peer: they are decoded, and fed to the core if they parse.
    """

    def __init__(self, data: bytes, *, mode: str = "sr", mss: int = 1000,
                 window: int = 64 * 1024, capacity: int = 128 * 1024, loss: float = 0.0,
                 delay: float = 0.01, seed: int = 1, isn_s: int = 1000, isn_r: int = 5000,
                 write_rate: float | None = None, give_up: float = 30.0):
        self.data = data
        self.rng = random.Random(seed)
        self.loss = loss
        self.delay = delay
        self.write_rate = write_rate
        self.snd = SenderCore(isn=isn_s, file_size=len(data), mode=mode, mss=mss,
                              window=window, rtt=RttEstimator(min_rto=0.05), give_up=give_up)
        self.rcv = ReceiverCore(isn=isn_r, mode=mode, mss=mss, capacity=capacity,
                                rtt=RttEstimator(min_rto=0.05), give_up=give_up)
        self.out = bytearray()
        self.rejected = 0  # injected datagrams the codec refused
        self.accepted = 0  # injected datagrams fed to a core
        self.injected = 0
        self.now = 0.0
        self.checks = []  # callables(pair) run after every step

    def run(self, inject=None, inject_every: float = 0.005, inject_limit: int = 10_000,
            time_limit: float = 3000.0, max_steps: int = 3_000_000) -> CorePair:
        snd, rcv, rng = self.snd, self.rcv, self.rng
        wire: list = []
        tie = 0
        unwritten: deque = deque()
        busy_until = 0.0
        chunked = False
        verified = False
        digest = hashlib.sha256(self.data).digest()
        next_inject = None
        now = 0.0

        def push(to, raw, lossy=True):
            nonlocal tie
            if lossy and rng.random() < self.loss:
                return
            tie += 1
            heapq.heappush(wire, (now + self.delay * (1 + rng.random()), tie, to, raw))

        snd.start(now)
        for _ in range(max_steps):
            self.now = now
            if snd.established and not chunked:
                m = snd.eff_mss
                snd.supply(memoryview(self.data)[i:i + m] for i in range(0, len(self.data), m))
                snd.end_of_stream(digest)
                chunked = True
            for seg, _rec in snd.take(now, max_new=10_000):
                push("r", encode(seg))
            while unwritten and (self.write_rate is None or busy_until <= now):
                chunk = unwritten.popleft()
                self.out += chunk
                rcv.on_written(len(chunk), now)
                if self.write_rate is not None:
                    busy_until = now + len(chunk) / self.write_rate
                    break
            if rcv.state == ReceiverState.CLOSE_WAIT and not unwritten and not verified:
                verified = True
                rcv.on_verified(hashlib.sha256(self.out).digest() == rcv.digest, now)
            for seg in rcv.outbox:
                push("s", encode(seg))
            rcv.outbox.clear()
            for check in self.checks:
                check(self)
            live = (rcv.state == ReceiverState.ESTABLISHED and snd.established)
            if inject is not None and live and self.injected < inject_limit:
                if next_inject is None or now >= next_inject:
                    for to, raw in inject(self, now):
                        push(to, raw, lossy=False)
                        self.injected += 1
                    next_inject = now + inject_every
            if snd.finished and rcv.finished and not wire:
                break
            cands = [t for t in (snd.next_deadline(), rcv.next_deadline(), snd.pace_deadline)
                     if t is not None]
            if wire:
                cands.append(wire[0][0])
            if unwritten and self.write_rate is not None:
                cands.append(busy_until)
            if inject is not None and live and next_inject is not None \
                    and self.injected < inject_limit:
                cands.append(next_inject)
            if not cands:
                break
            now = max(now, min(cands))
            if now > time_limit:
                break
            while wire and wire[0][0] <= now:
                _, _, to, raw = heapq.heappop(wire)
                try:
                    seg = decode(raw)
                except SegmentError:
                    self.rejected += 1
                    continue
                if to == "r":
                    rcv.on_segment(seg, now)
                    unwritten.extend(bytes(c) for c in rcv.deliver)
                    rcv.deliver.clear()
                else:
                    snd.on_segment(seg, now)
            rcv.flush_ack(now)
            for core in (snd, rcv):
                dl = core.next_deadline()
                if dl is not None and dl <= now:
                    core.on_timer(now)
        self.now = now
        return self


# ----------------------------------------------------------------- processes


def rss_kib(pid: int) -> int | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    m = re.search(r"^VmRSS:\s+(\d+)\s+kB", text, re.M)
    return int(m.group(1)) if m else None


def lingering(pid: int) -> list[str]:
    """Processes still alive whose parent is ``pid`` or whose process group
    is ``pid`` (the programs run in a session of their own)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...
        rest = stat[stat.rfind(")") + 2:].split()
        state, ppid, pgrp = rest[0], int(rest[1]), int(rest[2])
        if state != "Z" and (ppid == pid or pgrp == pid):
            found.append(f"{entry} {stat[:80]}")
    return found


def abort_for_stacks(proc, wait: float = 5.0) -> str:
    """SIGABRT a hung child started with PYTHONFAULTHANDLER=1 so faulthandler
    writes every thread's stack to its stderr file; returns that stderr."""
    if proc.popen.poll() is None:
        try:
            os.kill(proc.popen.pid, signal.SIGABRT)
            proc.popen.wait(wait)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    return proc.stderr[-8000:]


def wait_exit(proc, timeout: float, link: Link | None = None) -> int:
    """``proc``'s exit status; if it is still running after ``timeout``
    seconds, its thread stacks are dumped and the test fails with them."""
    try:
        return proc.popen.wait(timeout)
    except subprocess.TimeoutExpired:
        stacks = abort_for_stacks(proc)
        others = link.describe() if link is not None else ""
        raise AssertionError(f"{proc.name} still running after {timeout} s (hung?); its "
                             f"stderr with the thread stacks:\n{stacks}\n{others}") from None


def watched_link(tmp_path, monkeypatch):
    """The body of the ``hlink`` fixtures: a ``Link`` whose programs run with
    faulthandler on; at the end any program still running (a hang) gets
    SIGABRT first, so its every thread's stack lands in its .err file and in
    the test's report."""
    monkeypatch.setenv("PYTHONFAULTHANDLER", "1")
    lk = Link(tmp_path)
    try:
        yield lk
    finally:
        report = []
        for p in lk.procs:
            if p.popen.poll() is None and not p.name.startswith("emu"):
                report.append(f"--- {p.name} was still running; stacks:\n"
                              + abort_for_stacks(p, wait=3.0))
        lk.stop_all()
        if report:
            print("\n".join(report), file=sys.stderr)


def wait_for_text(proc, needle: str, timeout: float) -> bool:
    """Poll ``proc``'s stderr until ``needle`` appears (True) or it exits or
    ``timeout`` passes (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if needle in proc.stderr:
            return True
        if proc.popen.poll() is not None:
            return needle in proc.stderr
        time.sleep(0.02)
    return False


def summary_value(stdout: str, key: str) -> str:
    for line in stdout.splitlines():
        if line.strip().startswith(key):
            return line.strip()[len(key):].strip()
    raise AssertionError(f"no {key!r} row in:\n{stdout}")


def drop_counts(text: str) -> dict[str, int]:
    """'foreign 12, no-connection 3' -> {'foreign': 12, 'no-connection': 3}."""
    if text == "none":
        return {}
    out = {}
    for part in text.split(","):
        name, _, n = part.strip().rpartition(" ")
        out[name] = int(n)
    return out
