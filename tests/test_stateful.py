"""Hypothesis state machines (issue 8): random event sequences against the
codec and the two protocol cores, checking invariants after every step.

* ``CodecMachine``: segments built from random fields round-trip through
  encode/decode; damaged or cut datagrams are refused with SegmentError only,
  and whatever decodes re-encodes to the same fields.
* ``ReceiverMachine``: ReceiverCore fed true data at random offsets, old and
  far garbage, RSTs outside the window, repeated SYNs, FINs, writer progress
  and timer firings.
* ``SenderMachine``: SenderCore with a model peer that receives or loses
  what was sent, acknowledges honestly (or not, in the dishonest variant),
  and random timer firings.
* ``PairMachine``: both cores through a channel where every datagram is
  delivered, dropped, duplicated or damaged at hypothesis' choice; at the
  end a clean channel must finish the transfer (or both ends abort).

Invariants: nothing acknowledged that was not sent (snd_una <= snd_nxt) or
received (ack <= bytes received); no byte delivered twice or out of order
(delivered bytes are a prefix of the file); windows never negative and right
edges never moving left; the out-of-order store inside [rcv_nxt, right edge)
and, with the writer's backlog, within the buffer.
"""

from __future__ import annotations

import hashlib
import random
from collections import deque

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from common.receiver_core import FINAL_STATES as R_FINAL
from common.receiver_core import ReceiverCore, ReceiverState
from common.rtt import RttEstimator
from common.segment import (
    ACK,
    FIN,
    MAX_SACK_BLOCKS,
    RST,
    SYN,
    Segment,
    SegmentError,
    decode,
    encode,
)
from common.sender_core import FINAL_STATES as S_FINAL
from common.sender_core import SenderCore, SenderState
from common.seq import unwrap, wrap

pytestmark = pytest.mark.timeout(300)

M32 = 0xFFFFFFFF
u32 = st.integers(0, M32)
FIELDS = ("seq", "ack", "flags", "window", "src_port", "dst_port", "mss", "wscale",
          "sack_permitted", "sack", "file_size", "digest")


def _fields(seg: Segment) -> dict:
    out = {k: getattr(seg, k) for k in FIELDS}
    out["payload"] = bytes(seg.payload)
    return out


def _wire(seg: Segment) -> Segment:
    return decode(encode(seg))


def _covered(ranges, lo: int, hi: int) -> bool:
    at = lo
    for left, right in sorted(ranges):
        if left > at:
            break
        at = max(at, right)
    return at >= hi


SETTINGS = settings(max_examples=150, stateful_step_count=80, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.filter_too_much])


# ====================================================================== codec


class CodecMachine(RuleBasedStateMachine):
    datagrams = Bundle("datagrams")

    @rule(target=datagrams, seq=u32, ack=u32, flags=st.integers(0, 0xFF),
          window=st.integers(0, 0xFFFF), ports=st.tuples(st.integers(0, 0xFFFF),
                                                           st.integers(0, 0xFFFF)),
          payload=st.binary(max_size=300), mss=st.none() | st.integers(0, 0xFFFF),
          wscale=st.none() | st.integers(0, 14), sack_permitted=st.booleans(),
          sack=st.lists(st.tuples(u32, u32), max_size=MAX_SACK_BLOCKS).map(tuple),
          file_size=st.none() | st.integers(0, (1 << 64) - 1),
          digest=st.none() | st.binary(min_size=32, max_size=32))
    def build(self, seq, ack, flags, window, ports, payload, mss, wscale, sack_permitted,
              sack, file_size, digest):
        seg = Segment(seq=seq, ack=ack, flags=flags, window=window, payload=payload,
                      src_port=ports[0], dst_port=ports[1], mss=mss, wscale=wscale,
                      sack_permitted=sack_permitted, sack=sack, file_size=file_size,
                      digest=digest)
        try:
            raw = encode(seg)
        except SegmentError as exc:
            # the only reason a well-typed segment cannot be encoded: > 40 bytes of options
            assert "at most 40" in str(exc), exc
            return b"\x00" * 3
        assert (raw[12] >> 4) * 4 <= len(raw) and len(raw) == (raw[12] >> 4) * 4 + len(payload)
        back = decode(raw)
        assert _fields(back) == _fields(seg)
        assert back.seg_len == len(payload) + bool(flags & SYN) + bool(flags & FIN)
        return raw

    @rule(raw=datagrams, pos=st.integers(0, 400), bits=st.integers(1, 255))
    def damaged(self, raw, pos, bits):
        if not raw:
            return
        d = bytearray(raw)
        d[pos % len(d)] ^= bits
        self._decode_or_refuse(bytes(d))

    @rule(raw=datagrams, cut=st.integers(0, 400))
    def cut(self, raw, cut):
        self._decode_or_refuse(raw[:cut])

    @rule(raw=datagrams, tail=st.binary(min_size=1, max_size=40))
    def extended(self, raw, tail):
        self._decode_or_refuse(raw + tail)

    @rule(junk=st.binary(max_size=120))
    def junk(self, junk):
        self._decode_or_refuse(junk)

    @staticmethod
    def _decode_or_refuse(data: bytes) -> None:
        try:
            seg = decode(data)
        except SegmentError as exc:
            assert exc.reason != "malformed", f"decode hit an internal error: {exc}"
            return
        assert len(seg.sack) <= MAX_SACK_BLOCKS
        assert seg.wscale is None or 0 <= seg.wscale <= 14
        try:
            raw = encode(seg)
        except SegmentError:
            return  # e.g. SACK blocks and metadata together exceed 40 bytes
        assert _fields(decode(raw)) == _fields(seg)


TestCodecMachine = CodecMachine.TestCase
TestCodecMachine.settings = SETTINGS


# =================================================================== receiver


class ReceiverMachine(RuleBasedStateMachine):
    """ReceiverCore and a pretend sender that sends true data at random
    offsets, plus garbage the core must neither store nor deliver."""

    @initialize(isn_s=u32, isn_r=u32, capacity=st.sampled_from([1000, 2500, 8000, 70_000]),
                mss=st.sampled_from([100, 536, 1000]), mode=st.sampled_from(["sr", "gbn"]),
                scaled=st.booleans(), size=st.integers(0, 25_000), seed=st.integers(0, 999))
    def setup(self, isn_s, isn_r, capacity, mss, mode, scaled, size, seed):
        capacity = max(capacity, mss)
        self.data = random.Random(seed).randbytes(size)
        self.size = size
        self.digest = hashlib.sha256(self.data).digest()
        self.isn_s, self.isn_r = isn_s, isn_r
        self.base = (isn_s + 1) & M32
        self.core = ReceiverCore(isn=isn_r, mode=mode, mss=mss, capacity=capacity,
                                 rtt=RttEstimator(min_rto=0.2), give_up=30.0)
        self.now = 0.0
        self.got = bytearray()
        self.edge = 0
        self.core.on_segment(_wire(Segment(seq=isn_s, flags=SYN, window=0xFFFF, mss=1452,
                                           wscale=0 if scaled else None, sack_permitted=True,
                                           file_size=size)), 0.0)
        assert self.core.state == ReceiverState.SYN_RECEIVED
        self._drain()
        self._send(0, b"")  # the third ACK
        assert self.core.state == ReceiverState.ESTABLISHED

    # -- helpers
    @property
    def ack_no(self) -> int:
        return (self.isn_r + 1) & M32

    def _send(self, off: int, payload: bytes, flags: int = ACK, **kw) -> None:
        seg = Segment(seq=wrap(off, self.base), ack=self.ack_no, flags=flags, window=0xFFFF,
                      payload=payload, **kw)
        self.core.on_segment(_wire(seg), self.now)
        self._drain()

    def _drain(self) -> None:
        core = self.core
        for chunk in core.deliver:
            self.got += chunk
        core.deliver.clear()
        core.flush_ack(self.now)
        fin_acked = core.state in (ReceiverState.LAST_ACK, ReceiverState.DONE)
        held = [(k, k + len(v)) for k, v in core.ooo.items()]
        for seg in core.outbox:
            raw = encode(seg)  # everything the core sends must encode
            assert decode(raw).flags == seg.flags
            if seg.flags & SYN:
                assert seg.seq == self.isn_r and seg.ack == self.base
                continue
            if seg.flags & ACK:
                ack_off = unwrap(seg.ack, self.base, core.rcv_nxt)
                # never acknowledges a byte it did not receive
                assert 0 <= ack_off <= len(self.got) + (1 if fin_acked else 0), ack_off
                if ack_off == len(self.got) + 1:
                    assert fin_acked and len(self.got) == self.size
            assert (seg.window << core.rcv_wscale) <= core.capacity
            for i, (left, right) in enumerate(seg.sack):
                lo = unwrap(left, self.base, core.rcv_nxt)
                hi = unwrap(right, self.base, core.rcv_nxt)
                assert lo < hi, (lo, hi)
                if i == 0 and hi <= core.rcv_nxt:
                    continue  # D-SACK: bytes it got twice, already delivered
                assert core.rcv_nxt < lo and hi <= core.right_edge, (lo, hi)
                assert _covered(held, lo, hi) or i == 0, (lo, hi, held)
        core.outbox.clear()

    # -- rules
    @rule(rel=st.integers(-3000, 12_000), n=st.integers(0, 3000), psh=st.booleans())
    def true_data(self, rel, n, psh):
        off = max(0, min(self.size, self.core.rcv_nxt + rel))
        self._send(off, self.data[off:off + n], ACK | (0x08 if psh else 0))

    @rule(dist=st.integers(0, 1 << 29), n=st.integers(1, 1500), seed=st.integers(0, 99),
          old=st.booleans())
    def garbage_outside(self, dist, n, seed, old):
        """Wrong bytes entirely before rcv_nxt, or entirely beyond any window."""
        core = self.core
        if old:
            off = core.rcv_nxt - n - dist
        else:
            off = core.rcv_nxt + core.capacity + 1 + dist
        before = (core.rcv_nxt, core.ooo_bytes)
        self._send(off, random.Random(seed).randbytes(n))
        assert (core.rcv_nxt, core.ooo_bytes) == before or core.finished

    @rule(dist=st.integers(0, 1 << 29), before=st.booleans())
    def rst_outside_window(self, dist, before):
        core = self.core
        state = core.state
        win = core.right_edge - core.rcv_nxt
        off = core.rcv_nxt - 1 - dist if before else core.rcv_nxt + max(win, 1) + dist
        self._send(off, b"", RST | ACK)
        assert core.state == state, "an RST outside the window was taken"

    @rule(same=st.booleans())
    def syn_again(self, same):
        state = self.core.state
        seq = self.isn_s if same else (self.isn_s + 12345) & M32
        self.core.on_segment(_wire(Segment(seq=seq, flags=SYN, window=0xFFFF, mss=1452,
                                           sack_permitted=True)), self.now)
        self._drain()
        assert self.core.state == state

    @rule(k=st.integers(0, 30_000))
    def writer(self, k):
        n = min(k, self.core.unwritten)
        self.core.on_written(n, self.now)
        self._drain()

    @rule(dt=st.floats(0.0, 8.0))
    def tick(self, dt):
        self.now += dt
        dl = self.core.next_deadline()
        if dl is not None and dl <= self.now:
            self.core.on_timer(self.now)
        self._drain()

    @rule(right=st.booleans())
    def fin(self, right):
        self._send(self.size, b"", FIN | ACK, digest=self.digest if right else bytes(32))

    @precondition(lambda self: self.core.state == ReceiverState.CLOSE_WAIT)
    @rule()
    def verify(self):
        core = self.core
        core.on_written(core.unwritten, self.now)  # the writer catches up first
        ok = hashlib.sha256(self.got).digest() == core.digest
        core.on_verified(ok, self.now, "" if ok else "SHA-256 mismatch")
        self._drain()
        assert core.state == (ReceiverState.LAST_ACK if ok else ReceiverState.ABORTED)

    @precondition(lambda self: self.core.state == ReceiverState.LAST_ACK)
    @rule()
    def last_ack(self):
        self.core.on_segment(_wire(Segment(seq=wrap(self.size + 1, self.base),
                                           ack=(self.isn_r + 2) & M32, flags=ACK)), self.now)
        self._drain()
        assert self.core.state == ReceiverState.DONE

    # -- invariants
    def teardown(self):
        if hasattr(self, "core"):
            event(f"receiver ended in {self.core.state.value}")

    @invariant()
    def delivered_in_order_once(self):
        assert len(self.got) == self.core.rcv_nxt
        assert bytes(self.got) == self.data[:len(self.got)]
        if self.core.state in (ReceiverState.LAST_ACK, ReceiverState.DONE):
            assert bytes(self.got) == self.data

    @invariant()
    def window_and_store(self):
        core = self.core
        assert core.right_edge >= core.rcv_nxt, "negative window"
        assert core.right_edge >= self.edge, "the right edge moved left"
        self.edge = core.right_edge
        assert core.unwritten >= 0 and core.last_window >= 0
        assert core.ooo_bytes == sum(len(v) for v in core.ooo.values())
        assert core.ooo_bytes + core.unwritten <= core.capacity
        for off, chunk in core.ooo.items():
            assert core.rcv_nxt < off and off + len(chunk) <= core.right_edge, off
            assert chunk == self.data[off:off + len(chunk)]
        if core.mode == "gbn":
            assert not core.ooo


TestReceiverMachine = ReceiverMachine.TestCase
TestReceiverMachine.settings = SETTINGS


# ===================================================================== sender


class SenderMachine(RuleBasedStateMachine):
    """SenderCore and a model peer: what the sender puts on the wire is kept
    in flight until the peer receives or loses it; the peer acknowledges what
    it holds (cumulative ACK, SACK blocks when permitted) with any window.
    The honest peer's extra ACKs are stale or absurd, never lies inside the
    window; the dishonest one sends anything."""

    @initialize(isn_s=u32, isn_r=u32, mode=st.sampled_from(["sr", "gbn"]),
                mss=st.sampled_from([100, 500, 1000]),
                window=st.sampled_from([1000, 3000, 10_000, 65_535]),
                size=st.integers(0, 25_000), peer_mss=st.sampled_from([0, 200, 536, 1460]),
                peer_wscale=st.none() | st.integers(0, 3), sack_permitted=st.booleans(),
                peer_win=st.integers(0, 0xFFFF), honest=st.booleans(),
                seed=st.integers(0, 999))
    def setup(self, isn_s, isn_r, mode, mss, window, size, peer_mss, peer_wscale,
              sack_permitted, peer_win, honest, seed):
        window = max(window, mss)
        self.data = random.Random(seed).randbytes(size)
        self.size = size
        self.digest = hashlib.sha256(self.data).digest()
        self.honest = honest
        self.isn_s, self.isn_r = isn_s, isn_r
        self.base = (isn_s + 1) & M32
        self.core = SenderCore(isn=isn_s, file_size=size, mode=mode, mss=mss, window=window,
                               rtt=RttEstimator(min_rto=0.05), give_up=30.0, retries=10)
        self.now = 0.0
        self.got = bytearray(size + 1)  # the peer's bitmap; the last slot is the FIN
        self.flight: list[tuple[int, bytes, bool]] = []
        self.una = 0
        self.core.start(0.0)
        syn = self._take()
        assert syn and syn[0].flags == SYN and syn[0].seq == isn_s
        assert syn[0].file_size == size
        self.core.on_segment(_wire(Segment(
            seq=isn_r, ack=self.base, flags=SYN | ACK, window=peer_win, mss=peer_mss,
            wscale=peer_wscale, sack_permitted=sack_permitted)), self.now)
        if self.core.state == SenderState.ABORTED:  # an MSS of 0
            assert peer_mss == 0
        if self.core.established:
            m = self.core.eff_mss
            self.core.supply(memoryview(self.data)[i:i + m] for i in range(0, size, m))
        self.core.end_of_stream(self.digest)
        self._take()

    # -- helpers
    def _take(self) -> list[Segment]:
        core = self.core
        sent = []
        for seg, _rec in core.take(self.now):
            seg = _wire(seg)
            sent.append(seg)
            if seg.flags & (SYN | RST):
                continue
            off = unwrap(seg.seq, self.base, core.snd_una)
            n = len(seg.payload)
            if n:
                assert bytes(seg.payload) == self.data[off:off + n], "wrong bytes on the wire"
                assert off + n <= self.size
                assert off + n <= core.right_edge or n == 1, "beyond the peer's window"
                self.flight.append((off, bytes(seg.payload), False))
            if seg.flags & FIN:
                assert off + n == self.size and seg.digest == self.digest
                assert not core.queue
                self.flight.append((self.size, b"", True))
        return sent

    def _cum(self) -> int:
        """What the peer holds contiguously from byte 0 (the FIN counts one)."""
        i = self.got.find(0)
        return len(self.got) if i < 0 else i

    def _peer_sack(self) -> list[tuple[int, int]]:
        blocks, i, n = [], self._cum(), self.size
        while i < n and len(blocks) < MAX_SACK_BLOCKS:
            while i < n and not self.got[i]:
                i += 1
            j = i
            while j < n and self.got[j]:
                j += 1
            if j > i:
                blocks.append((i, j))
            i = j
        return blocks

    def _from_peer(self, ack_off_wire: int, window: int, sack=(), flags=ACK, seq=None) -> None:
        seg = Segment(seq=(self.isn_r + 1) & M32 if seq is None else seq, ack=ack_off_wire,
                      flags=flags, window=window, sack=tuple(sack))
        self.core.on_segment(_wire(seg), self.now)
        self._take()

    # -- rules
    @rule()
    def transmit(self):
        self._take()

    @precondition(lambda self: self.flight)
    @rule(i=st.integers(0, 10_000), arrive=st.booleans())
    def wire(self, i, arrive):
        off, payload, fin = self.flight.pop(i % len(self.flight))
        if arrive:
            if fin:
                self.got[self.size] = 1
            else:
                self.got[off:off + len(payload)] = b"\x01" * len(payload)

    @rule(window=st.integers(0, 0xFFFF), with_sack=st.booleans())
    def honest_ack(self, window, with_sack):
        cum = self._cum()
        sack = [(wrap(left, self.base), wrap(right, self.base)) for left, right in
                self._peer_sack()] if with_sack and self.core.sack_ok else []
        self._from_peer(wrap(cum, self.base), window, sack)

    @precondition(lambda self: self.flight)
    @rule(steps=st.lists(st.tuples(st.integers(0, 10_000), st.booleans()), min_size=1,
                         max_size=6), window=st.integers(0, 0xFFFF))
    def ack_burst(self, steps, window):
        """Segments arrive (or are lost) one after another, each drawing an
        honest ACK; the sender reads the ACKs together (on_segments)."""
        acks = []
        for i, arrive in steps:
            if self.flight:
                self.wire(i, arrive)
            sack = [(wrap(left, self.base), wrap(right, self.base)) for left, right in
                    self._peer_sack()] if self.core.sack_ok else []
            acks.append(_wire(Segment(seq=(self.isn_r + 1) & M32,
                                      ack=wrap(self._cum(), self.base), flags=ACK,
                                      window=window, sack=tuple(sack))))
        self.core.on_segments(acks, self.now)
        self._take()

    @precondition(lambda self: not self.honest and self.core.sack_ok
                  and self.core.snd_nxt > self.core.snd_una)
    @rule(edges=st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 1 << 20)),
                         min_size=1, max_size=4))
    def odd_sack(self, edges):
        """A lying peer's SACK blocks inside what is outstanding, with edges
        anywhere, segment boundaries or not."""
        core = self.core
        blocks = []
        for a, b in edges:
            left = core.snd_una + a % (core.snd_nxt - core.snd_una)
            right = left + 1 + b % (core.snd_nxt - left)
            blocks.append((wrap(left, self.base), wrap(right, self.base)))
        self._from_peer(wrap(core.snd_una, self.base), 0xFFFF, blocks)

    @rule(ack=u32, window=st.integers(0, 0xFFFF),
          sack=st.lists(st.tuples(u32, u32), max_size=4), flags=st.integers(0, 0xFF))
    def other_segment(self, ack, window, sack, flags):
        flags &= ~(SYN | RST)  # RSTs and SYNs have their own rules
        flags |= ACK
        core = self.core
        if self.honest:
            # no lie the peer could tell: an ACK older than snd_una by a lot, or
            # beyond what was sent; SACK blocks only from an honest ACK
            off = unwrap(ack, self.base, core.snd_una)
            if core.snd_una - (1 << 20) <= off <= core.snd_nxt:
                ack = wrap(core.snd_nxt + 1 + (ack & 0xFFFF), self.base)
            sack = []
        self._from_peer(ack, window, sack, flags=flags)

    @rule(dist=st.integers(1, 1 << 30))
    def rst_wrong_seq(self, dist):
        state = self.core.state
        seg = Segment(seq=(self.core.rcv_nxt + dist) & M32, ack=wrap(self._cum(), self.base),
                      flags=RST | ACK, window=0)
        self.core.on_segment(_wire(seg), self.now)
        # (before the next take, which may send the FIN and so change the state)
        assert self.core.state == state, "an RST with the wrong sequence number was taken"
        self._take()

    @precondition(lambda self: self.core.state == SenderState.FIN_WAIT_2)
    @rule()
    def peer_fin(self):
        self._from_peer(wrap(self.size + 1, self.base), 1000, flags=FIN | ACK)
        assert self.core.state == SenderState.TIME_WAIT

    @rule(dt=st.floats(0.0, 5.0))
    def tick(self, dt):
        self.now += dt
        dl = self.core.next_deadline()
        if dl is not None and dl <= self.now:
            self.core.on_timer(self.now)
        self._take()

    # -- invariants
    def teardown(self):
        if hasattr(self, "core"):
            event(f"sender ended in {self.core.state.value}")

    @invariant()
    def acknowledged_only_what_was_sent(self):
        core = self.core
        assert 0 <= core.snd_una <= core.snd_nxt <= self.size + 1
        assert core.snd_una >= self.una, "snd_una moved back"
        self.una = core.snd_una
        if self.honest:
            assert core.snd_una <= self._cum(), "acknowledged what the peer does not hold"
        if core.delivered:
            assert core.snd_una == self.size + 1

    @invariant()
    def sacked_flags_match_the_scoreboard(self):
        """A segment past snd_una is flagged SACKed exactly when one block of
        the scoreboard wholly holds it (Scoreboard.add_sack keeps the flags
        as blocks come in, even blocks that cut segments)."""
        board = self.core.board
        for rec in board.order:
            if rec.off >= self.core.snd_una:
                held = any(left <= rec.off and rec.end <= right for left, right in board.sacked)
                assert rec.sacked == held, (rec.off, rec.end, board.sacked)

    @invariant()
    def windows(self):
        core = self.core
        assert core.peer_window >= 0
        if core.state not in (SenderState.CLOSED, SenderState.SYN_SENT):
            assert core.right_edge >= core.snd_una
        # WINDOW_BYTES bounds what is in flight (not SACKed); the peer's
        # window bounds how far past snd_una the sender goes.
        assert core.in_flight <= core.window + 2  # plus a FIN and a probe byte
        if core.state not in (SenderState.CLOSED, SenderState.SYN_SENT):
            assert core.snd_nxt <= core.right_edge + 2
        assert core.room() >= 0


TestSenderMachine = SenderMachine.TestCase
TestSenderMachine.settings = SETTINGS


# ===================================================================== pair


class PairMachine(RuleBasedStateMachine):
    """Both cores; every datagram waits in the channel until a rule delivers,
    drops, duplicates or damages it.  At the end, a clean channel must take
    the transfer to its end: the file delivered and verified, or both ends
    aborted, never a hang or a wrong byte."""

    @initialize(size=st.integers(0, 20_000), mode=st.sampled_from(["sr", "gbn"]),
                isn_s=u32, isn_r=u32, mss=st.sampled_from([200, 1000]),
                capacity=st.sampled_from([2000, 6000, 50_000]),
                window=st.sampled_from([2000, 8000, 64_000]), seed=st.integers(0, 999))
    def setup(self, size, mode, isn_s, isn_r, mss, capacity, window, seed):
        self.data = random.Random(seed).randbytes(size)
        self.digest = hashlib.sha256(self.data).digest()
        self.snd = SenderCore(isn=isn_s, file_size=size, mode=mode, mss=mss,
                              window=max(window, mss), rtt=RttEstimator(min_rto=0.05),
                              give_up=30.0)
        self.rcv = ReceiverCore(isn=isn_r, mode=mode, mss=mss, capacity=max(capacity, mss),
                                rtt=RttEstimator(min_rto=0.05), give_up=30.0)
        self.now = 0.0
        self.fwd: list[bytes] = []
        self.back: list[bytes] = []
        self.chunked = False
        self.queue: deque = deque()  # delivered, not yet written
        self.got = bytearray()
        self.verified = False
        self.una = 0
        self.snd.start(0.0)
        self._pump()

    def _pump(self) -> None:
        snd, rcv = self.snd, self.rcv
        if snd.established and not self.chunked:
            m = snd.eff_mss
            snd.supply(memoryview(self.data)[i:i + m] for i in range(0, len(self.data), m))
            snd.end_of_stream(self.digest)
            self.chunked = True
        for seg, _rec in snd.take(self.now):
            self.fwd.append(encode(seg))
        for chunk in rcv.deliver:
            self.queue.append(bytes(chunk))
        rcv.deliver.clear()
        rcv.flush_ack(self.now)
        if rcv.state == ReceiverState.CLOSE_WAIT and not self.queue and not self.verified:
            self.verified = True
            ok = hashlib.sha256(self.got).digest() == rcv.digest
            rcv.on_verified(ok, self.now, "" if ok else "SHA-256 mismatch")
        self.back.extend(encode(seg) for seg in rcv.outbox)
        rcv.outbox.clear()

    def _arrive(self, raw: bytes, to_receiver: bool) -> None:
        try:
            seg = decode(raw)
        except SegmentError:
            return
        (self.rcv if to_receiver else self.snd).on_segment(seg, self.now)
        self._pump()

    # -- rules
    @precondition(lambda self: self.fwd)
    @rule(i=st.integers(0, 1000), fate=st.sampled_from(["deliver", "deliver", "drop", "dup",
                                                        "damage"]), bit=st.integers(0, 1 << 14))
    def forward(self, i, fate, bit):
        self._channel(self.fwd, i, fate, bit, True)

    @precondition(lambda self: self.back)
    @rule(i=st.integers(0, 1000), fate=st.sampled_from(["deliver", "deliver", "drop", "dup",
                                                        "damage"]), bit=st.integers(0, 1 << 14))
    def backward(self, i, fate, bit):
        self._channel(self.back, i, fate, bit, False)

    def _channel(self, q, i, fate, bit, to_receiver):
        raw = q.pop(i % len(q))
        if fate == "drop":
            return
        if fate == "dup":
            q.append(raw)
        if fate == "damage":
            d = bytearray(raw)
            d[(bit // 8) % len(d)] ^= 1 << (bit % 8)
            raw = bytes(d)
        self._arrive(raw, to_receiver)

    @rule(k=st.integers(0, 20_000))
    def writer(self, k):
        n = 0
        while self.queue and n + len(self.queue[0]) <= max(k, 1):
            chunk = self.queue.popleft()
            self.got += chunk
            n += len(chunk)
        if n:
            self.rcv.on_written(n, self.now)
        self._pump()

    @rule(dt=st.floats(0.0, 3.0))
    def tick(self, dt):
        self.now += dt
        for core in (self.snd, self.rcv):
            dl = core.next_deadline()
            if dl is not None and dl <= self.now:
                core.on_timer(self.now)
        self._pump()

    # -- invariants
    @invariant()
    def nothing_acknowledged_beyond_what_arrived(self):
        snd, rcv = self.snd, self.rcv
        assert 0 <= snd.snd_una <= snd.snd_nxt
        assert snd.snd_una >= self.una
        self.una = snd.snd_una
        fin_in = 1 if rcv.state in (ReceiverState.LAST_ACK, ReceiverState.DONE) else 0
        if snd.state not in (SenderState.CLOSED, SenderState.SYN_SENT):
            assert snd.snd_una <= rcv.rcv_nxt + fin_in, (snd.snd_una, rcv.rcv_nxt)
        written = bytes(self.got) + b"".join(self.queue)
        assert written == self.data[:len(written)] and len(written) == rcv.rcv_nxt

    @invariant()
    def receiver_store(self):
        rcv = self.rcv
        assert rcv.right_edge >= rcv.rcv_nxt
        assert rcv.ooo_bytes + rcv.unwritten <= rcv.capacity
        for off, chunk in rcv.ooo.items():
            assert rcv.rcv_nxt < off and off + len(chunk) <= rcv.right_edge
            assert chunk == self.data[off:off + len(chunk)]

    def teardown(self):
        if not hasattr(self, "snd"):
            return
        # A clean channel from here on: the transfer must end, one way or the other.
        for _ in range(200_000):
            if self.snd.finished and self.rcv.finished and not self.fwd and not self.back:
                break
            moved = False
            while self.fwd or self.back:
                moved = True
                if self.fwd:
                    self._arrive(self.fwd.pop(0), True)
                if self.back:
                    self._arrive(self.back.pop(0), False)
            if self.queue:
                self.writer(1 << 30)
                moved = True
            if not moved:
                dls = [d for d in (self.snd.next_deadline(), self.rcv.next_deadline())
                       if d is not None]
                if not dls:
                    break
                self.now = max(self.now, min(dls))
                self.tick(0.0)
        snd, rcv = self.snd, self.rcv
        event(f"pair ended: sender {snd.state.value}, receiver {rcv.state.value}")
        assert snd.state in S_FINAL and rcv.state in R_FINAL, (snd.state, rcv.state)
        if snd.delivered:
            assert rcv.state == ReceiverState.DONE, rcv.error
        if rcv.state == ReceiverState.DONE:
            assert bytes(self.got) == self.data


TestPairMachine = PairMachine.TestCase
TestPairMachine.settings = settings(SETTINGS, max_examples=100, stateful_step_count=100)
