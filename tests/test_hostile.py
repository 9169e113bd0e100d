"""A hostile network (issue 8): garbage, spoofing, limits.

The receiver is a UDP server anyone can send to.  These tests throw garbage
at both programs (from a foreign address, and "from the peer" through the
emulator, which forwards anything), spoof RSTs, announce files too large to
accept, and watch the receiver's memory during a flood.  The same garbage is
also fed straight into the two cores mid-transfer, on a fake clock.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections import Counter

import pytest
from hostile_support import (
    CorePair,
    Flooder,
    GarbageMaker,
    drop_counts,
    mounted_tmpfs,
    outside,
    raw_segment,
    rss_kib,
    sack_option,
    send_from,
    summary_value,
    wait_exit,
    wait_for_text,
    watched_link,
)
from support import Link, free_udp_port, make_file

from common.receiver_core import ReceiverCore, ReceiverState
from common.rtt import RttEstimator
from common.segment import ACK, RST, SYN, Segment, SegmentError, decode, encode
from common.seq import wrap

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def hlink(tmp_path, monkeypatch):
    """support.Link, watched for hangs (hostile_support.watched_link)."""
    yield from watched_link(tmp_path, monkeypatch)


MIB = 1 << 20
RSS_BOUND_KIB = 200 * 1024  # generous: the programs sit near 30-60 MiB
FLOOD_COUNT = 100_000
ESTABLISHED = "-> ESTABLISHED"


def _both_established(r, s, timeout=30.0):
    assert wait_for_text(r, ESTABLISHED, timeout), "receiver never established"
    assert wait_for_text(s, ESTABLISHED, timeout), "sender never established"


def _assert_ok(link, s, r, src, dst):
    assert s.popen.returncode == 0, link.describe()
    assert r.popen.returncode == 0, link.describe()
    assert dst.read_bytes() == src.read_bytes()
    assert not dst.with_name(dst.name + ".part").exists()


def _refused(link, s, r, dst):
    """The transfer was refused: both exit 1, and neither FILE nor FILE.part is left."""
    assert wait_exit(s, 60, link) == 1, link.describe()
    assert wait_exit(r, 60, link) == 1, link.describe()
    assert not dst.exists()
    assert not dst.with_name(dst.name + ".part").exists()


# ====================================================================== codec


def test_codec_refuses_garbage_with_its_own_error_only():
    """100,000 hostile datagrams: decode returns a Segment or raises
    SegmentError, nothing else; each category does what it claims."""
    gm = GarbageMaker(random.Random(8))
    reasons = Counter()
    per_kind: dict[str, Counter] = {}
    for i in range(FLOOD_COUNT):
        kind = gm.kinds[i % len(gm.kinds)].__name__
        raw = next(gm)
        try:
            seg = decode(raw)
            outcome = "ok"
            assert isinstance(seg, Segment)
            assert 0 <= seg.seq <= 0xFFFFFFFF and 0 <= seg.ack <= 0xFFFFFFFF
            assert len(seg.sack) <= 4
        except SegmentError as exc:
            outcome = exc.reason
        reasons[outcome] += 1
        per_kind.setdefault(kind, Counter())[outcome] += 1
    assert per_kind["short"] == Counter(short=per_kind["short"].total())
    assert set(per_kind["bad_offset"]) == {"offset"}
    assert set(per_kind["bad_checksum"]) == {"checksum"}
    assert set(per_kind["broken_options"]) == {"options"}
    # valid checksums over nonsense: the codec takes them; the cores must cope
    for kind in ("nonsense_fields", "every_flag", "absurd_sack", "absurd_metadata"):
        assert per_kind[kind]["ok"] > 0.9 * per_kind[kind].total(), per_kind[kind]
    assert reasons["malformed"] == 0, "decode hit an internal error on some input"


# ============================================================= cores, fake clock


def _blind_garbage_injector(seed: int, per_tick: int = 4):
    """Garbage "from the peer" for both ends, with the sequence and
    acknowledgment numbers a blind attacker would pick (anything but the
    live windows, which it cannot know), and duplicate ACKs carrying SACK
    blocks that are absurd as a whole (left >= right, entirely past the
    end of the file, entirely below the cumulative ACK)."""
    rng = random.Random(seed)
    state = {}

    def inject(pair: CorePair, now: float):
        snd, rcv = pair.snd, pair.rcv
        if "to_r" not in state:
            # receiver-bound: miss [rcv base - 64K, base + size + capacity + 64K)
            span = len(pair.data) + rcv.capacity + (1 << 17)
            centre_r = (rcv.base - (1 << 16) + span // 2) & 0xFFFFFFFF
            state["to_r"] = GarbageMaker(random.Random(rng.random()),
                                         seq=outside(centre_r, span // 2))
            # sender-bound: acks miss [snd.base - 64K, base + size + 64K), seqs miss
            # the receiver's ISN +- 64K (RST exact match, SYN-ACK, FIN)
            span_s = len(pair.data) + (1 << 17)
            centre_s = (snd.base - (1 << 16) + span_s // 2) & 0xFFFFFFFF
            state["to_s"] = GarbageMaker(random.Random(rng.random()),
                                         seq=outside(rcv.isn, 1 << 16),
                                         ack=outside(centre_s, span_s // 2))
        out = [("r", next(state["to_r"])) for _ in range(per_tick)]
        out += [("s", next(state["to_s"])) for _ in range(per_tick)]
        # absurd SACK blocks on a duplicate ACK with the live cumulative ACK
        una = snd.snd_una
        w = lambda off: wrap(off, snd.base)  # noqa: E731
        blocks = [
            (w(una + 5000), w(una + 1000)),                  # left after right
            (w(una + 700), w(una + 700)),                    # empty
            (w(una + 16 * MIB), w(una + 17 * MIB)),          # beyond the whole file
            (w(una - 90_000), w(una - 10)),                  # wholly below the ACK
        ]
        rng.shuffle(blocks)
        out.append(("s", raw_segment(rcv.isn + 1, w(una), ACK, rcv.last_window >> rcv.rcv_wscale,
                                     b"", sack_option(blocks[: rng.randrange(1, 5)]))))
        return out

    return inject


@pytest.mark.timeout(120)
@pytest.mark.parametrize("mode", ["sr", "gbn"])
@pytest.mark.parametrize("seed", [1, 2])
def test_cores_survive_blind_garbage_from_the_peer(mode, seed):
    """12,000+ garbage datagrams arrive at each core mid-transfer as if from
    the peer (5% loss besides): every byte arrives once, identical."""
    data = random.Random(seed).randbytes(400_000)
    pair = CorePair(data, mode=mode, loss=0.05, seed=seed, isn_s=0xFFFFFF00 + seed,
                    isn_r=77 * seed, write_rate=200_000)  # a 2 s transfer, fake time
    pair.run(inject=_blind_garbage_injector(seed, per_tick=12), inject_every=0.001,
             inject_limit=45_000)
    assert pair.snd.error is None and pair.rcv.error is None, (pair.snd.error, pair.rcv.error)
    assert bytes(pair.out) == data
    assert pair.snd.delivered and pair.rcv.state == ReceiverState.DONE
    assert pair.injected > 25_000, "the transfer ended before the garbage did"
    assert pair.rejected > 10_000  # refused by the codec; the rest reached the cores:
    assert pair.rcv.stats.segments_received > 5000 and pair.snd.stats.segments_received > 5000


@pytest.mark.timeout(120)
@pytest.mark.parametrize("lie", ["right_edge_beyond_snd_nxt", "inside_what_was_sent"])
@pytest.mark.parametrize("seed", [0, 1, 3])
def test_sender_recovers_from_a_false_sack(lie, seed):
    """A duplicate ACK "from the peer" (the live cumulative ACK) whose SACK
    block claims data the receiver never got.  The first kind is absurd (its
    right edge lies beyond anything sent) and should be ignored whole, as
    RFC 2018/Linux do; either kind is what a reneging receiver may send, and
    RFC 2018 §8 says the sender must then resend after a timeout instead of
    trusting the SACK forever.  With 10% loss, the transfer must complete."""
    data = random.Random(seed).randbytes(300_000)
    pair = CorePair(data, loss=0.10, seed=seed)

    def inject(p: CorePair, now: float):
        s = p.snd
        una, nxt = wrap(s.snd_una, s.base), wrap(s.snd_nxt, s.base)
        if lie == "right_edge_beyond_snd_nxt":
            block = (una + 1, nxt + MIB)
        else:
            block = (una + s.eff_mss, nxt)
        return [("s", raw_segment(s.rcv_nxt, una, ACK, 1000, b"", sack_option([block])))]

    pair.run(inject=inject, inject_every=0.5, inject_limit=3)
    assert pair.injected >= 1
    assert pair.snd.error is None and pair.rcv.error is None, (
        f"sender: {pair.snd.error!r}; receiver: {pair.rcv.error!r}; "
        f"{len(pair.out)} of {len(data)} bytes written")
    assert bytes(pair.out) == data


def _covered(ranges, lo, hi) -> bool:
    """True when the sorted [l, r) ``ranges`` cover [lo, hi) entirely."""
    at = lo
    for left, right in ranges:
        if left > at:
            break
        at = max(at, right)
        if at >= hi:
            return True
    return at >= hi


@pytest.mark.parametrize("wscale", [True, False])
@pytest.mark.parametrize("seed", range(4))
def test_out_of_order_store_never_exceeds_the_window(seed, wscale):
    """ReceiverCore fed random segments (true data at random offsets, some
    far outside, random writer progress): the out-of-order store stays
    inside [rcv_nxt, right_edge), within the buffer, and what is delivered
    is the data, in order, once."""
    rng = random.Random(seed)
    capacity = rng.choice((3000, 20_000, 100_000))
    size = 400_000
    data = rng.randbytes(size)
    isn_s = rng.getrandbits(32)
    base = (isn_s + 1) & 0xFFFFFFFF
    core = ReceiverCore(isn=rng.getrandbits(32), mss=1000, capacity=capacity,
                        rtt=RttEstimator(min_rto=0.2))
    core.on_segment(Segment(seq=isn_s, flags=SYN, window=0xFFFF, mss=1000,
                            wscale=0 if wscale else None, sack_permitted=True,
                            file_size=size), 0.0)
    core.on_segment(Segment(seq=base, ack=(core.isn + 1) & 0xFFFFFFFF, flags=ACK), 0.0)
    assert core.state == ReceiverState.ESTABLISHED
    got = bytearray()
    unwritten = 0
    last_edge = core.right_edge
    now = 0.0
    for step in range(20_000):
        now += 0.001
        r = rng.random()
        if r < 0.75:
            near = core.rcv_nxt + rng.randrange(-3000, 2 * capacity + 3000)
            off = near if rng.random() < 0.9 else rng.randrange(-5000, size + 5000)
            off = max(0, min(off, size))
            n = rng.choice((1, 10, 999, 1000, rng.randrange(1, 3000)))
            seg = Segment(seq=wrap(off, base), ack=(core.isn + 1) & 0xFFFFFFFF, flags=ACK,
                          payload=data[off:off + n])
            core.on_segment(decode(encode(seg)), now)
            for chunk in core.deliver:
                got += chunk
                unwritten += len(chunk)
            core.deliver.clear()
        else:
            n = rng.randrange(0, unwritten + 1)
            unwritten -= n
            core.on_written(n, now)
        core.flush_ack(now)
        held = sorted((k, k + len(v)) for k, v in core.ooo.items())
        for ack in core.outbox:
            for i, (left, right) in enumerate(ack.sack):
                lo = (left - base) & 0xFFFFFFFF
                hi = (right - base) & 0xFFFFFFFF
                assert lo < hi, (step, lo, hi)
                if i == 0 and hi <= core.rcv_nxt:
                    continue  # a D-SACK (RFC 2883): a duplicate of delivered bytes
                assert core.rcv_nxt < lo and hi <= core.right_edge, (step, lo, hi)
                assert _covered(held, lo, hi), (step, lo, hi, held)
        core.outbox.clear()
        # the invariants
        cap = core.capacity
        assert core.ooo_bytes == sum(len(v) for v in core.ooo.values())
        assert core.ooo_bytes <= cap, (step, core.ooo_bytes, cap)
        assert core.ooo_bytes + core.unwritten <= cap, (step, core.ooo_bytes, core.unwritten)
        for off, chunk in core.ooo.items():
            assert core.rcv_nxt < off and off + len(chunk) <= core.right_edge, (step, off)
            assert chunk == data[off:off + len(chunk)]
        assert core.right_edge >= last_edge, "the right edge moved left"
        last_edge = core.right_edge
        assert core.right_edge >= core.rcv_nxt
        assert core.rcv_nxt == len(got) and bytes(got) == data[:len(got)]
        if core.rcv_nxt == size:
            break
    assert core.stats.out_of_order > 0 and core.stats.out_of_window > 0


# ============================================================ floods, for real


def _flood_datagrams(seed: int):
    return GarbageMaker(random.Random(seed))


def _sample_rss(pids, stop: threading.Event, peaks: dict):
    while not stop.is_set():
        for name, pid in pids.items():
            v = rss_kib(pid)
            if v is not None:
                peaks[name] = max(peaks.get(name, 0), v)
        stop.wait(0.05)


def test_foreign_flood_during_transfer(hlink, tmp_path):
    """100,000 garbage datagrams from a foreign socket, split between the
    receiver's port and the sender's ACK port, while a rate-limited transfer
    runs: both exit 0, the file is identical, both count foreign drops, and
    neither one's memory grows past a generous bound."""
    src = make_file(tmp_path / "in.bin", 1_500_000, seed=81)
    dst = tmp_path / "out.bin"
    ack_port = free_udp_port()
    r, rport = hlink.receiver(dst, ack_port)
    _, eport = hlink.emulator("emu-data", rport, ["-s", "3000", "-q", "200000"])
    s = hlink.sender(src, eport, "128K", ack_port)
    _both_established(r, s)
    fl = Flooder([rport, ack_port], _flood_datagrams(81), FLOOD_COUNT, duration=90)
    peaks: dict = {}
    stop = threading.Event()
    sampler = threading.Thread(target=_sample_rss, args=(
        {"receiver": r.popen.pid, "sender": s.popen.pid}, stop, peaks))
    sampler.start()
    fl.start()
    try:
        fl.join(120)
        running_after_flood = s.popen.poll() is None
        wait_exit(s, 120, hlink)
        wait_exit(r, 60, hlink)
    finally:
        stop.set()
        fl.stop()
        sampler.join()
    assert fl.sent > 0.99 * FLOOD_COUNT, (fl.sent, fl.errors)
    _assert_ok(hlink, s, r, src, dst)
    r_drops = drop_counts(summary_value(r.stdout, "other drops"))
    s_drops = drop_counts(summary_value(s.stdout, "dropped on arrival"))
    assert r_drops.get("foreign", 0) > 1000, r.stdout
    assert s_drops.get("foreign", 0) > 1000, s.stdout
    assert peaks.get("receiver", 0) and peaks["receiver"] < RSS_BOUND_KIB, peaks
    assert peaks.get("sender", 0) and peaks["sender"] < RSS_BOUND_KIB, peaks
    print(f"flood: {fl.sent} sent; receiver drops {r_drops}; sender drops {s_drops}; "
          f"peak RSS KiB {peaks}; transfer still running after the flood: "
          f"{running_after_flood}")


ISN_S = 0xFFFF0000  # wraps during the transfer
ISN_R = 123_456_789
CAPACITY = 4 * MIB  # the receiver's default buffer


def test_garbage_from_the_peer_through_the_emulators(hlink, tmp_path):
    """Garbage put on the emulators' inputs reaches each program from its
    peer's address, so it goes through the parser and the core: 30,000 to
    the receiver (through the data-path emulator), 15,000 to the sender
    (through the ACK-path emulator).  Valid-checksum garbage carries the
    numbers a blind attacker picks (not the live windows).  The transfer
    completes, identical; the receiver's drop counters show checksum, short,
    offset and option failures and no foreign datagram; memory stays bounded."""
    size = 2_000_000
    src = make_file(tmp_path / "in.bin", size, seed=82)
    dst = tmp_path / "out.bin"
    ack_port = free_udp_port()
    _, ack_emu = hlink.emulator("emu-ack", ack_port, ["-d", "0.005"])
    r, rport = hlink.receiver(dst, ack_emu, ["--test-isn", str(ISN_R)])
    _, eport = hlink.emulator("emu-data", rport, ["-d", "0.01"])
    s = hlink.sender(src, eport, "48K", ack_port, ["--test-isn", str(ISN_S)])
    _both_established(r, s)
    base = (ISN_S + 1) & 0xFFFFFFFF
    span_r = size + CAPACITY + (1 << 18)
    to_r = GarbageMaker(random.Random(1), max_payload=600,
                        seq=outside((base - (1 << 17) + span_r // 2) & 0xFFFFFFFF, span_r // 2))
    span_s = size + (1 << 18)
    to_s = GarbageMaker(random.Random(2), max_payload=200,
                        seq=outside(ISN_R, 1 << 16),
                        ack=outside((base - (1 << 17) + span_s // 2) & 0xFFFFFFFF,
                                    span_s // 2))
    fr = Flooder([eport], to_r, 30_000, duration=60, pace=0.002)
    fs = Flooder([ack_emu], to_s, 15_000, duration=60, pace=0.004)
    peaks: dict = {}
    stop = threading.Event()
    sampler = threading.Thread(target=_sample_rss, args=({"receiver": r.popen.pid}, stop, peaks))
    sampler.start()
    fr.start()
    fs.start()
    try:
        fr.join(120)
        fs.join(120)
        wait_exit(s, 180, hlink)
        wait_exit(r, 60, hlink)
    finally:
        stop.set()
        fr.stop()
        fs.stop()
        sampler.join()
    _assert_ok(hlink, s, r, src, dst)
    r_drops = drop_counts(summary_value(r.stdout, "other drops"))
    checksum = int(summary_value(r.stdout, "checksum failures"))
    assert "foreign" not in r_drops, r.stdout  # it did come from the peer's address
    assert checksum > 100, r.stdout
    for why in ("short", "offset", "options"):
        assert r_drops.get(why, 0) > 100, r.stdout
    s_drops = drop_counts(summary_value(s.stdout, "dropped on arrival"))
    assert s_drops.get("checksum", 0) > 50 and s_drops.get("short", 0) > 50, s.stdout
    assert peaks["receiver"] < RSS_BOUND_KIB, peaks
    print(f"peer garbage: receiver drops {r_drops}, checksum {checksum}; "
          f"sender drops {s_drops}; peak RSS KiB {peaks}")


def test_empty_datagrams_do_not_kill_either_program(hlink, tmp_path):
    """A zero-length UDP datagram is legal and anyone can send one: to the
    listening receiver, then during the transfer to both programs."""
    src = make_file(tmp_path / "in.bin", 600_000, seed=84)
    dst = tmp_path / "out.bin"
    ack_port = free_udp_port()
    r, rport = hlink.receiver(dst, ack_port)
    send_from(None, [b""] * 3, rport)
    _, eport = hlink.emulator("emu-data", rport, ["-s", "4000"])
    s = hlink.sender(src, eport, "64K", ack_port)
    _both_established(r, s)
    send_from(None, [b""] * 3, rport)
    send_from(None, [b""] * 3, ack_port)
    wait_exit(s, 60, hlink)
    wait_exit(r, 60, hlink)
    _assert_ok(hlink, s, r, src, dst)


# ================================================================== spoofing


def _rst_sweep(lo: int, hi: int, step: int = 1000) -> list[bytes]:
    """RST+ACK segments (valid checksum) with sequence numbers lo, lo+step, ... < hi."""
    return [raw_segment(lo + k, 0, RST | ACK, 0, b"spoofed")
            for k in range(0, hi - lo, step)]


def _slow_pair(link, tmp_path, size=1_500_000, rate="3000", sargs=(), rargs=()):
    src = make_file(tmp_path / "in.bin", size, seed=83)
    dst = tmp_path / "out.bin"
    ack_port = free_udp_port()
    r, rport = link.receiver(dst, ack_port, ["--test-isn", str(ISN_R), *rargs])
    _, eport = link.emulator("emu-data", rport, ["-s", rate, "-q", "300000"])
    s = link.sender(src, eport, "128K", ack_port, ["--test-isn", str(ISN_S), *sargs])
    _both_established(r, s)
    return src, dst, s, r, rport, eport, ack_port


def test_rst_from_a_foreign_address_does_nothing(hlink, tmp_path):
    """RSTs covering the receiver's whole sequence range (so some fall in its
    window), and RSTs with exactly the sequence number the sender expects,
    all sent from a foreign socket: ignored; the transfer completes."""
    src, dst, s, r, rport, eport, ack_port = _slow_pair(hlink, tmp_path)
    base = (ISN_S + 1) & 0xFFFFFFFF
    time.sleep(0.5)
    send_from(None, _rst_sweep(base, base + len(src.read_bytes()) + CAPACITY), rport)
    send_from(None, [raw_segment(ISN_R + 1, base + k * 1000, RST | ACK) for k in range(50)],
              ack_port)
    wait_exit(s, 120, hlink)
    wait_exit(r, 60, hlink)
    _assert_ok(hlink, s, r, src, dst)
    assert drop_counts(summary_value(r.stdout, "other drops")).get("foreign", 0) > 1000
    assert drop_counts(summary_value(s.stdout, "dropped on arrival")).get("foreign", 0) >= 50


def test_rst_from_the_peer_outside_the_window_does_nothing(hlink, tmp_path):
    """RFC 5961: RSTs arriving from the peer's address (through the emulator)
    with sequence numbers before rcv_nxt's past or beyond the window: ignored."""
    src, dst, s, r, rport, eport, ack_port = _slow_pair(hlink, tmp_path)
    base = (ISN_S + 1) & 0xFFFFFFFF
    size = len(src.read_bytes())
    far = base + size + CAPACITY + (1 << 16)
    rsts = _rst_sweep(far, far + 1000 * 1500)  # beyond any window it can advertise
    rsts += _rst_sweep(base - (1 << 20), base - 1, 1000)  # before the first byte
    time.sleep(0.5)
    send_from(None, rsts, eport)
    wait_exit(s, 120, hlink)
    wait_exit(r, 60, hlink)
    _assert_ok(hlink, s, r, src, dst)


def test_rst_from_the_peer_inside_the_window_resets(hlink, tmp_path):
    """The control for the two tests above: the same sweep through the
    emulator does reach the receiver as its peer's, and one in the window
    resets it (exit 1, no FILE); the sender learns nothing (an RST is never
    answered) and gives up."""
    src, dst, s, r, rport, eport, ack_port = _slow_pair(
        hlink, tmp_path, sargs=["--give-up", "3"])
    base = (ISN_S + 1) & 0xFFFFFFFF
    time.sleep(0.5)
    send_from(None, _rst_sweep(base, base + len(src.read_bytes()) + CAPACITY), eport)
    assert wait_exit(r, 60, hlink) == 1, hlink.describe()
    assert "the sender reset the connection: spoofed" in r.stderr
    assert wait_exit(s, 60, hlink) == 1, hlink.describe()
    assert not dst.exists()


def _meta_isn(trace) -> int:
    with open(trace) as f:
        first = json.loads(f.readline())
    assert first["ev"] == "meta"
    return first["isn"]


def test_isns_are_unpredictable(hlink, tmp_path):
    """Two runs without --test-isn: different ISNs on both ends (from
    `secrets`; a collision has odds of 2**-32), and the SYN carries it."""
    src = make_file(tmp_path / "in.bin", 3000)
    isns = {"sender": [], "receiver": []}
    for run in range(2):
        d = tmp_path / f"run{run}"
        d.mkdir()
        with Link(d) as lk:
            s, r = lk.transfer(src, d / "out.bin",
                               sender_args=["--trace", str(d / "s.jsonl")],
                               receiver_args=["--trace", str(d / "r.jsonl")], timeout=60)
            assert s.popen.returncode == 0 and r.popen.returncode == 0, lk.describe()
        isn_s = _meta_isn(d / "s.jsonl")
        isn_r = _meta_isn(d / "r.jsonl")
        with open(d / "s.jsonl") as f:
            syn = next(e for e in map(json.loads, f) if e["ev"] == "send" and e["flags"] == "S")
        assert syn["seq"] == isn_s
        isns["sender"].append(isn_s)
        isns["receiver"].append(isn_r)
    assert isns["sender"][0] != isns["sender"][1], isns
    assert isns["receiver"][0] != isns["receiver"][1], isns
    assert len(set(isns["sender"] + isns["receiver"])) == 4, isns


# ==================================================================== limits


def _refusal(link, tmp_path, src, dst, rargs=()):
    ack_port = free_udp_port()
    r, rport = link.receiver(dst, ack_port, list(rargs))
    # --give-up 5 only keeps a failure short: the refusal should end it at once
    s = link.sender(src, rport, "64K", ack_port, ["--give-up", "5"])
    _refused(link, s, r, dst)
    assert "larger than this receiver accepts" in s.stderr, link.describe()
    assert "transfer failed" in s.stderr and "reset the connection" in s.stderr
    assert "larger than this receiver accepts" in r.stderr, link.describe()
    return s, r


def test_max_size_refused(hlink, tmp_path):
    src = make_file(tmp_path / "in.bin", 5000)
    _refusal(hlink, tmp_path, src, tmp_path / "out.bin", ["--max-size", "4999"])


def test_size_beyond_free_disk_space_refused(hlink, tmp_path):
    """A sparse input file announcing more bytes than the receiver's file
    system has free: refused at the SYN, before a byte is sent."""
    st = os.statvfs(tmp_path)
    free = st.f_bavail * st.f_frsize
    src = tmp_path / "huge.bin"
    with open(src, "wb") as f:
        try:
            f.truncate(free + (1 << 30))
        except OSError as exc:
            pytest.skip(f"cannot make a sparse file of {free + (1 << 30)} bytes: {exc}")
    _refusal(hlink, tmp_path, src, tmp_path / "out.bin")


@pytest.fixture
def small_tmpfs(tmp_path):
    """A real 2 MiB tmpfs (root only), unmounted at the end."""
    with mounted_tmpfs(tmp_path, "2m") as mnt:
        yield mnt


def test_size_beyond_a_small_tmpfs_refused(hlink, tmp_path, small_tmpfs):
    src = make_file(tmp_path / "in.bin", 3_000_000)
    dst = small_tmpfs / "out.bin"
    _refusal(hlink, tmp_path, src, dst)
    assert os.listdir(small_tmpfs) == []


class FakeSender:
    """The test itself as the receiver's peer: a socket on 127.0.0.1 that
    opens a connection with a SYN and then sends whatever it likes."""

    def __init__(self, rport: int, isn: int = 4242, file_size: int = 100 * MIB):
        import socket

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(10)
        self.port = self.sock.getsockname()[1]
        self.rport = rport
        self.isn = isn
        self.base = (isn + 1) & 0xFFFFFFFF
        self.file_size = file_size
        self.isn_r = None

    def connect(self) -> None:
        self.sock.sendto(encode(Segment(seq=self.isn, flags=SYN, window=0xFFFF, mss=1452,
                                        wscale=0, sack_permitted=True,
                                        file_size=self.file_size)), ("127.0.0.1", self.rport))
        while True:
            seg = decode(self.sock.recv(65536))
            if seg.flags & (SYN | ACK) == SYN | ACK:
                break
        self.isn_r = seg.seq
        self.send(0, b"")

    def send(self, off: int, payload: bytes, flags: int = ACK) -> None:
        seg = Segment(seq=wrap(off, self.base), ack=(self.isn_r + 1) & 0xFFFFFFFF, flags=flags,
                      window=0xFFFF, payload=payload)
        self.sock.sendto(encode(seg), ("127.0.0.1", self.rport))

    def drain(self) -> int:
        n = 0
        self.sock.setblocking(False)
        try:
            while True:
                self.sock.recv(65536)
                n += 1
        except BlockingIOError:
            pass
        finally:
            self.sock.settimeout(10)
        return n

    def close(self) -> None:
        self.sock.close()


def test_overlapping_out_of_order_data_keeps_memory_bounded(hlink, tmp_path):
    """A peer (here the test, which anyone can be: the receiver takes the
    first SYN) sends MSS-sized segments that overlap, each starting one byte
    after the last, all inside the advertised 4 MiB window and never the
    first byte.  The out-of-order store must stay within the window, so the
    receiver's memory may grow by the window and some overhead, not by what
    was sent: we allow 16 windows (64 MiB) and stop as soon as it is past."""
    dst = tmp_path / "out.bin"
    peer = FakeSender(0)
    r, rport = hlink.receiver(dst, peer.port, ["--give-up", "20"])
    peer.rport = rport
    peer.connect()
    time.sleep(0.2)
    baseline = rss_kib(r.popen.pid)
    allowed = baseline + 16 * CAPACITY // 1024
    payload = random.Random(5).randbytes(1452)
    peak = baseline
    sent = acks = 0
    try:
        for k in range(1, 150_001):  # offsets 1..150,000, all inside the window
            peer.send(k, payload)
            sent += 1
            if k % 250 == 0:
                acks += peer.drain()
                time.sleep(0.002)  # let the receiver keep up; its socket buffer is finite
                if k % 2500 == 0:
                    peak = max(peak, rss_kib(r.popen.pid) or 0)
                    if peak > allowed or r.popen.poll() is not None:
                        break
        time.sleep(0.3)
        peak = max(peak, rss_kib(r.popen.pid) or 0)
    finally:
        peer.send(0, b"enough", RST | ACK)
        peer.close()
    assert wait_exit(r, 30, hlink) == 1, hlink.describe()
    assert "the sender reset the connection" in r.stderr, hlink.describe()
    assert not dst.exists()
    assert peak < allowed, (
        f"receiver VmRSS grew from {baseline // 1024} to {peak // 1024} MiB after {sent} "
        f"overlapping 1452-byte segments ({acks} ACKs back) inside a 4 MiB window")
