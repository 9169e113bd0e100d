"""The emulator as a process between real sockets on 127.0.0.1: what it reports is what it did."""

from __future__ import annotations

import random
import signal
import statistics
import struct
import time
from collections import Counter, defaultdict

import pytest
from emu_support import assert_rate

SIZE = 200


def payload(i: int, size: int = SIZE) -> bytes:
    """Datagram number i: its number, then bytes only it has."""
    return struct.pack("!I", i) + random.Random(i).randbytes(size - 4)


def identify(data: bytes, originals: dict[int, bytes]) -> tuple[int, int]:
    """(index, Hamming distance) of the original closest to ``data``."""
    x = int.from_bytes(data, "big")
    guess = struct.unpack("!I", data[:4])[0]
    if guess in originals and len(originals[guess]) == len(data):
        d = (x ^ int.from_bytes(originals[guess], "big")).bit_count()
        if d <= 32:
            return guess, d
    return min(
        ((x ^ int.from_bytes(o, "big")).bit_count(), i)
        for i, o in originals.items()
        if len(o) == len(data)
    )[::-1]


def send_all(src, datagrams, burst: int = 50, pause: float = 0.002) -> None:
    for k, d in enumerate(datagrams):
        src.send(d)
        if k % burst == burst - 1:
            time.sleep(pause)


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "flags",
    [
        ["-L", "20", "-D", "10", "-B", "50", "--seed", "3"],  # forwarded by the receiving thread
        ["-L", "20", "-D", "10", "-B", "50", "-O", "10", "-d", "0.01", "--seed", "4"],  # scheduled
    ],
    ids=["direct", "scheduled"],
)
def test_report_and_trace_match_what_the_sink_saw(flags, start_emulator, sink, sources):
    n = 600
    emu = start_emulator(sink.port, *flags, trace=True)
    src = sources(emu.recv_port)
    originals = {i: payload(i) for i in range(1, n + 1)}
    send_all(src, originals.values())
    got = sink.collect(idle=0.7)
    rc, st = emu.stop()
    assert rc == 0, emu.stderr

    arrivals = [identify(data, originals) + (data,) for _, data in got]
    copies: dict[int, list[bytes]] = defaultdict(list)
    for i, _, data in arrivals:
        copies[i].append(data)
    distance = {i: d for i, d, _ in arrivals}
    assert st["received"] == n
    assert st["unsent_at_exit"] == 0 and st["send_errors"] == 0
    assert len(got) == st["forwarded"] + st["duplicated"]
    assert len(copies) == st["forwarded"]
    assert n - len(copies) == st["dropped_total"] == st["dropped"]["loss"]
    assert max(len(c) for c in copies.values()) <= 2
    assert sum(len(c) == 2 for c in copies.values()) == st["duplicated"]
    assert all(c[0] == c[-1] for c in copies.values()), "a duplicate differs from its original"
    assert sum(d > 0 for d in distance.values()) == st["corrupted"] > 0
    assert sum(distance.values()) == st["bits_flipped"]
    assert sum(len(data) for _, data in got) == st["bytes_forwarded"]
    assert_rate(st["dropped_total"], n, 0.20, "loss through sockets")

    trace = emu.trace()
    assert trace[0]["ev"] == "meta" and trace[0]["role"] == "emulator"
    ev = Counter(e["ev"] for e in trace)
    assert ev["recv"] == n
    assert ev["drop"] == st["dropped_total"]
    assert ev["corrupt"] == st["corrupted"]
    assert ev["dup"] == st["duplicated"]
    assert ev["fwd"] == st["forwarded"]  # one "fwd" per original, one "dup" per extra copy
    assert ev["fwd"] + ev["dup"] == len(got)
    assert {e["n"] for e in trace if e["ev"] == "drop"} == set(originals) - set(copies)
    assert {e["n"] for e in trace if e["ev"] == "corrupt"} == {
        i for i, d in distance.items() if d > 0
    }

    if "-O" in flags:
        # Each held datagram that did not time out arrives after a later-numbered one.
        first_seen: list[int] = []
        for i, _, _ in arrivals:
            if i not in first_seen:
                first_seen.append(i)
        late, highest = 0, 0
        for i in first_seen:
            if i < highest:
                late += 1
            highest = max(highest, i)
        assert st["reordered"] > 0
        assert late == st["reordered"] - st["reorder_timeouts"]
        assert ev["reorder"] == st["reordered"]


@pytest.mark.timeout(60)
def test_delay_is_within_10_percent(start_emulator, sink, sources):
    emu = start_emulator(sink.port, "-d", "0.2")
    src = sources(emu.recv_port)
    for _ in range(20):
        src.send(struct.pack("!d", time.monotonic()))
        time.sleep(0.02)
    got = sink.collect(idle=0.6, expect=20)
    rc, st = emu.stop()
    assert rc == 0
    assert len(got) == 20
    delays = [t - struct.unpack("!d", data)[0] for t, data in got]
    assert min(delays) >= 0.2  # never early
    assert 0.9 <= statistics.median(delays) / 0.2 <= 1.1, delays
    assert 0.9 <= st["mean_delay"] / 0.2 <= 1.1
    assert st["delayed"] == 20


@pytest.mark.timeout(60)
def test_link_speed_is_within_10_percent(start_emulator, sink, sources):
    # 400 kbit/s and 1000-byte datagrams: 20 ms each, 50 take one second.
    emu = start_emulator(sink.port, "-s", "400", "-q", "100000")
    src = sources(emu.recv_port)
    t_sent = time.monotonic()
    for i in range(50):
        src.send(payload(i, 1000))
    got = sink.collect(idle=0.6, expect=50)
    rc, st = emu.stop()
    assert rc == 0
    assert len(got) == 50 and st["queue_drops"] == 0
    assert [struct.unpack("!I", d[:4])[0] for _, d in got] == list(range(50))
    measured = 49 * 1000 * 8 / (got[-1][0] - got[0][0])
    assert 0.9 <= measured / 400_000 <= 1.1, measured
    assert 0.9 <= (got[-1][0] - t_sent) / 1.0 <= 1.1


@pytest.mark.timeout(60)
def test_queue_tail_drop_is_counted_and_real(start_emulator, sink, sources):
    # 5000 bytes of queue hold five 1000-byte datagrams; a burst of 20 overflows it.
    emu = start_emulator(sink.port, "-s", "400", "-q", "5000", trace=True)
    src = sources(emu.recv_port)
    for i in range(20):
        src.send(payload(i, 1000))
    got = sink.collect(idle=0.6)
    rc, st = emu.stop()
    assert rc == 0
    arrived = [struct.unpack("!I", d[:4])[0] for _, d in got]
    assert st["queue_drops"] >= 10
    assert len(arrived) == st["forwarded"] == 20 - st["queue_drops"]
    assert arrived[:5] == [0, 1, 2, 3, 4]
    dropped = {e["n"] - 1 for e in emu.trace() if e["ev"] == "drop"}
    assert all(e["why"] == "queue" for e in emu.trace() if e["ev"] == "drop")
    assert dropped == set(range(20)) - set(arrived)


@pytest.mark.timeout(60)
def test_drop_list_drops_exactly_those(start_emulator, sink, sources):
    emu = start_emulator(sink.port, "--drop", "1,5,9,30")
    src = sources(emu.recv_port)
    for i in range(1, 41):
        src.send(payload(i))
    got = sink.collect(idle=0.5, expect=36)
    rc, st = emu.stop()
    assert rc == 0
    arrived = [struct.unpack("!I", d[:4])[0] for _, d in got]
    assert arrived == [i for i in range(1, 41) if i not in (1, 5, 9, 30)]
    assert st["dropped"]["list"] == 4 and st["dropped_total"] == 4


@pytest.mark.timeout(60)
def test_outage_drops_everything_inside_and_nothing_outside(start_emulator, sink, sources):
    emu = start_emulator(sink.port, "--blackhole", "0.5:0.5", trace=True)
    src = sources(emu.recv_port)
    n = 75
    for i in range(1, n + 1):
        src.send(payload(i))
        time.sleep(0.02)
    got = sink.collect(idle=0.5)
    rc, st = emu.stop()
    assert rc == 0
    trace = emu.trace()
    recv_t = {e["n"]: e["t"] for e in trace if e["ev"] == "recv"}
    t0 = recv_t[1]
    inside = {k for k, t in recv_t.items() if 0.5 <= t - t0 < 1.0}
    dropped = {e["n"] for e in trace if e["ev"] == "drop" and e["why"] == "blackhole"}
    arrived = {struct.unpack("!I", d[:4])[0] for _, d in got}
    assert dropped == inside
    assert arrived == set(range(1, n + 1)) - inside
    assert 15 <= len(inside) <= 30  # about 25 datagrams are sent in half a second
    assert max(inside) - min(inside) + 1 == len(inside)  # one contiguous stretch
    assert st["dropped"]["blackhole"] == len(inside)


@pytest.mark.timeout(60)
def test_same_seed_same_datagrams_through_sockets(start_emulator, sink, sources):
    flags = ["-L", "30", "-D", "10", "-B", "20"]
    n = 300
    originals = [payload(i) for i in range(1, n + 1)]
    runs = []
    for seed in ("7", "7", "8"):
        emu = start_emulator(sink.port, *flags, "--seed", seed)
        src = sources(emu.recv_port)
        send_all(src, originals)
        sink.got = []
        got = [d for _, d in sink.collect(idle=0.5)]
        rc, st = emu.stop()
        assert rc == 0 and st["received"] == n and len(got) == st["forwarded"] + st["duplicated"]
        runs.append(got)
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


@pytest.mark.timeout(60)
def test_only_the_accepted_source_is_forwarded(start_emulator, sink, sources):
    good, other = sources(), sources()
    emu = start_emulator(sink.port, "-i", f"127.0.0.1:{good.port}")
    good.connect(emu.recv_port)
    other.connect(emu.recv_port)
    for i in range(10):
        good.send(b"good %d" % i)
        other.send(b"other %d" % i)
    got = sink.collect(idle=0.5, expect=10)
    rc, st = emu.stop()
    assert rc == 0
    assert [d for _, d in got] == [b"good %d" % i for i in range(10)]
    assert st["received"] == 10 and st["ignored_foreign"] == 10


@pytest.mark.timeout(60)
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_gives_exit_0_report_and_stats(sig, start_emulator, sink, sources):
    emu = start_emulator(sink.port)
    assert emu.pid == emu.proc.pid
    src = sources(emu.recv_port)
    for i in range(10):
        src.send(b"x%d" % i)
    got = sink.collect(idle=0.5, expect=10)
    rc, st = emu.stop(sig)
    assert rc == 0
    assert len(got) == 10
    assert st["received"] == 10 and st["forwarded"] == 10 and st["bytes_forwarded"] == 20
    assert st["signal"] == signal.Signals(sig).name
    assert "report" in emu.out_path.read_text()
    assert f"listening on 127.0.0.1:{emu.recv_port}" in emu.stderr


@pytest.mark.timeout(60)
def test_sigterm_with_datagrams_in_flight_is_prompt_and_honest(start_emulator, sink, sources):
    emu = start_emulator(sink.port, "-d", "30")
    src = sources(emu.recv_port)
    for i in range(3):
        src.send(b"late %d" % i)
    time.sleep(0.3)
    t = time.monotonic()
    rc, st = emu.stop()
    assert time.monotonic() - t < 5
    assert rc == 0
    assert st["received"] == 3 and st["forwarded"] == 0 and st["unsent_at_exit"] == 3
    assert sink.collect(idle=0.2) == []


def send_batches(src, datagrams: list[bytes], batch: int, pause: float = 0.002) -> int:
    """Send ``datagrams`` (one size, the last of each batch may be shorter) in
    GSO batches of ``batch``; returns how many sends went as one batch."""
    from runtime.udpgso import gso_cmsg

    batches = 0
    for k in range(0, len(datagrams), batch):
        group = datagrams[k:k + batch]
        src.sock.sendmsg([b"".join(group)], gso_cmsg(len(group[0])))
        batches += len(group) > 1
        time.sleep(pause)
    return batches


def batched_datagrams(n: int, batch: int) -> list[bytes]:
    """n datagrams of SIZE bytes; the last of every batch is shorter (GSO allows it)."""
    return [payload(i, SIZE - 60 if i % batch == 0 else SIZE) for i in range(1, n + 1)]


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "flags",
    [
        [],  # transparent: batches go straight through
        ["-L", "20", "-D", "10", "-B", "50", "--seed", "5"],  # judged, sent by the reader
        ["-L", "30", "-d", "0.02", "--seed", "9"],  # loss alone: drops leave batches whole
        ["-L", "20", "-D", "10", "-B", "50", "-d", "0.02", "--seed", "6"],  # judged, scheduled
        ["-d", "0.02", "--jitter", "0.005", "--seed", "7"],  # every datagram on its own
        ["-O", "20", "-d", "0.02", "--seed", "8"],  # reordering: every datagram on its own
    ],
    ids=["transparent", "direct", "loss", "scheduled", "jitter", "reorder"],
)
def test_gso_batches_leave_as_the_same_datagrams_one_at_a_time_would(
        flags, start_emulator, sink, sources):
    """A sender's GSO batch reaches the emulator whole (UDP GRO).  What comes
    out must be what the same datagrams sent one at a time give with the same
    seed: the same verdict for each, the same bytes, in the same order."""
    n, batch = 400, 20
    datagrams = batched_datagrams(n, batch)
    outcomes = []
    for batched in (False, True):
        emu = start_emulator(sink.port, *flags)
        src = sources(emu.recv_port)
        if batched:
            assert send_batches(src, datagrams, batch) == n // batch
        else:
            send_all(src, datagrams, burst=batch)
        sink.got = []
        got = [d for _, d in sink.collect(idle=0.5)]
        rc, st = emu.stop()
        assert rc == 0, emu.stderr
        assert st["received"] == n and st["unsent_at_exit"] == 0 and st["send_errors"] == 0
        assert len(got) == st["forwarded"] + st["duplicated"]
        assert sum(len(d) for d in got) == st["bytes_forwarded"]
        outcomes.append((got, st))
        src.close()
    (one_by_one, st1), (in_batches, st2) = outcomes
    assert st1["batched_in"] == 0 and st1["batched_out"] == 0
    assert st2["batched_in"] == n  # every batch was read whole...
    if "--jitter" in flags:
        assert st2["batched_out"] == 0  # ...no two datagrams share a release time
        assert sorted(in_batches) == sorted(one_by_one)  # jitter reorders, differently
    elif "-O" in flags:
        assert st2["batched_out"] == 0 and st2["reordered"] == st1["reordered"] > 0
        assert in_batches == one_by_one
    elif "-D" not in flags:
        # ...and, with nothing but drops, every datagram left in a batch: a
        # drop does not split one (at 30% of 20, two at least are left of each)
        assert st2["batched_out"] == st2["forwarded"] == st1["forwarded"]
        assert in_batches == one_by_one
        if "-L" in flags:
            assert 0 < st2["forwarded"] < n
    else:
        # ...and the runs that nothing touched left as batches
        assert 0 < st2["batched_out"] < n
        assert in_batches == one_by_one
    for key in ("forwarded", "dropped_total", "corrupted", "bits_flipped", "duplicated",
                "bytes_forwarded"):
        assert st1[key] == st2[key], key
    if "-D" in flags:
        assert st2["dropped_total"] > 0 and st2["corrupted"] > 0 and st2["duplicated"] > 0


class _NoGso:
    """The emulator's sending socket on a system whose kernel refuses UDP GSO."""

    def __init__(self, sock):
        self.sock = sock
        self.refused = 0

    def sendmsg(self, buffers, ancdata=(), *args):
        if ancdata:
            self.refused += 1
            raise OSError(22, "Invalid argument")  # EINVAL, as a kernel without GSO says
        return self.sock.sendmsg(buffers, ancdata, *args)

    def send(self, data):
        return self.sock.send(data)


@pytest.mark.timeout(30)
def test_batches_go_one_by_one_where_gso_is_refused(sink):
    """Where a GSO send is refused, the batch and every later one go out as
    separate datagrams, all of them, and the counters say so."""
    import socket

    from emulator.forward import Forwarder, SendCounters
    from emulator.schedule import Entry

    real = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    real.connect(("127.0.0.1", sink.port))
    fwd = Forwarder(fake := _NoGso(real))
    c = SendCounters()
    try:
        datagrams = batched_datagrams(12, 6)
        for k in (0, 6):
            fwd.send(Entry(k + 1, b"".join(datagrams[k:k + 6]), 1, 0.0, 0.0, False, SIZE), 0.0, c)
        got = [d for _, d in sink.collect(idle=0.5, expect=12)]
    finally:
        real.close()
    assert got == datagrams
    assert fake.refused == 1 and fwd.gso is False  # asked once, then not again
    assert c.forwarded == 12 and c.send_errors == 0 and c.batched_out == 0
    assert c.bytes_forwarded == sum(len(d) for d in datagrams)
