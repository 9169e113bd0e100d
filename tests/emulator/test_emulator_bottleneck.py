"""The emulator process with a bottleneck and by-port forwarding: what the
trace and --stats say is what the sinks saw.

Assertions are about what the emulator reports against what it did, never
about how fast the machine was: a burst may be sent faster or slower, so the
checks hold for any timing (e.g. every datagram dropped as "queue" found the
queue full, whichever datagrams those were)."""

from __future__ import annotations

import struct
import time
from collections import Counter, defaultdict

import pytest

from emulator.impair import DROP_CAUSES

SIZE = 200
TARGET, INTERVAL = 0.005, 0.1


def segment(port: int, i: int, size: int = SIZE) -> bytes:
    """A datagram that starts like a TCP header: source port, destination
    port, then its number; padded to ``size``."""
    head = struct.pack("!HHI", 4242, port, i)
    return head + bytes(size - len(head))


def number(data: bytes) -> int:
    return struct.unpack("!I", data[4:8])[0]


def by_event(trace: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = defaultdict(list)
    for e in trace:
        out[e["ev"]].append(e)
    return out


def check_trace_against_stats(trace: list[dict], st: dict) -> dict[str, list[dict]]:
    """The counts every trace must share with its --stats; returns the events by kind."""
    ev = by_event(trace)
    drops = Counter(e["why"] for e in ev["drop"])
    assert drops.pop("send_error", 0) == st["send_errors"] == 0
    assert set(st["dropped"]) == set(DROP_CAUSES)
    assert dict(drops) == {k: v for k, v in st["dropped"].items() if v}
    assert sum(drops.values()) == st["dropped_total"]
    assert len(ev["recv"]) == st["received"]
    assert len(ev["fwd"]) == st["forwarded"]
    assert len(ev["corrupt"]) == st["corrupted"]
    assert sum(e["bits"] for e in ev["corrupt"]) == st["bits_flipped"]
    fwd = {e["n"] for e in ev["fwd"]}
    dropped = {e["n"] for e in ev["drop"]}
    assert not fwd & dropped and fwd | dropped == {e["n"] for e in ev["recv"]}
    return ev


def send_paced(src, datagrams, every: int = 10, pause: float = 0.002) -> None:
    for k, d in enumerate(datagrams):
        src.send(d)
        if k % every == every - 1:
            time.sleep(pause)


@pytest.mark.timeout(60)
def test_packet_limit_drops_only_when_full(start_emulator, sink, sources):
    # 1000-byte datagrams at 400 kbit/s: 20 ms each; a burst of 30 overflows 5 datagrams.
    emu = start_emulator(sink.port, "-s", "400", "--queue-packets", "5", trace=True)
    src = sources(emu.recv_port)
    for i in range(30):
        src.send(segment(sink.port, i, 1000))
    got = sink.collect(idle=0.6)
    rc, st = emu.stop()
    assert rc == 0, emu.stderr
    arrived = [number(d) for _, d in got]
    assert arrived[:5] == [0, 1, 2, 3, 4]  # an empty queue takes five at least
    assert arrived == sorted(arrived)
    ev = check_trace_against_stats(emu.trace(), st)
    assert st["dropped"]["queue"] == 30 - len(arrived) >= 10
    assert {e["n"] - 1 for e in ev["fwd"]} == set(arrived)
    queue_drops = {e["n"] for e in ev["drop"] if e["why"] == "queue"}
    for e in ev["recv"]:  # the queue as each found it: full for exactly those dropped
        assert ("qp" in e) and (e["qp"] == 5) == (e["n"] in queue_drops), e
        assert e["qb"] == 1000 * e["qp"]
    assert st["queue"]["queue_peak_packets"] == 5 and st["queue"]["limit_packets"] == 5
    assert st["queue"]["limit_bytes"] is None  # --queue-packets alone: no byte limit
    for e in ev["fwd"]:
        assert 0 <= e["sojourn"] <= e["delay"]


@pytest.mark.timeout(60)
def test_byte_and_packet_limits_together(start_emulator, sink, sources):
    emu = start_emulator(sink.port, "-s", "400", "-q", "2500", "--queue-packets", "5",
                         trace=True)
    src = sources(emu.recv_port)
    for i in range(20):  # big ones: the byte limit binds (two fit)
        src.send(segment(sink.port, i, 1000))
    sink.collect(idle=0.6)
    for i in range(20, 40):  # small ones: the packet limit binds (five fit)
        src.send(segment(sink.port, i, 100))
    sink.collect(idle=0.6)
    rc, st = emu.stop()
    assert rc == 0, emu.stderr
    ev = check_trace_against_stats(emu.trace(), st)
    queue_drops = {e["n"] for e in ev["drop"] if e["why"] == "queue"}
    for e in ev["recv"]:
        full = e["qb"] + e["len"] > 2500 or e["qp"] + 1 > 5
        assert full == (e["n"] in queue_drops), e
    big = [e for e in ev["recv"] if e["len"] == 1000 and e["n"] in queue_drops]
    small = [e for e in ev["recv"] if e["len"] == 100 and e["n"] in queue_drops]
    assert big and all(e["qp"] < 5 for e in big)  # dropped for their bytes
    assert small and all(e["qp"] == 5 for e in small)  # dropped for their number


@pytest.mark.timeout(60)
def test_every_drop_cause_in_trace_and_stats(start_emulator, sink, sources):
    """One run that drops for each cause decided before the queue, and at the
    queue; corruption is forwarded and counted as such."""
    # The outage is the first 50 ms (datagram 5 and on, sent back to back
    # from the first, fall in it), and sending takes 40 pauses of 8 ms.
    emu = start_emulator("*", "--forward-by-port", "--drop", "3,4", "--blackhole", "0:0.05",
                         "--ge-p", "3", "--ge-r", "50", "-L", "10", "-C", "10", "-s", "400",
                         "--queue-packets", "4", "--seed", "5", trace=True)
    src = sources(emu.recv_port)
    datagrams = [segment(sink.port, i) for i in range(400)]
    for k in range(0, 400, 40):  # no port to forward to: too short, or port 0
        datagrams[k] = b"\x01\x02\x03"
        datagrams[k + 1] = segment(0, k + 1)
    send_paced(src, datagrams, pause=0.008)
    got = sink.collect(idle=0.6)
    rc, st = emu.stop()
    assert rc == 0, emu.stderr
    ev = check_trace_against_stats(emu.trace(), st)
    for cause in ("noport", "list", "blackhole", "burst", "loss", "queue"):
        assert st["dropped"][cause] > 0, (cause, st["dropped"])
    assert st["dropped"]["noport"] == 20 and st["dropped"]["list"] == 2
    assert st["dropped"]["red"] == st["dropped"]["codel"] == 0
    assert st["corrupted"] > 0
    noport = {e["n"] for e in ev["drop"] if e["why"] == "noport"}
    assert noport == {k + 1 for k in range(0, 400, 40)} | {k + 2 for k in range(0, 400, 40)}
    assert len(got) == st["forwarded"]
    assert sorted(number(d) + 1 for _, d in got) == sorted(e["n"] for e in ev["fwd"])
    assert all(e["port"] == sink.port for e in ev["fwd"])
    corrupted = {e["n"] for e in ev["corrupt"]}
    assert corrupted <= {e["n"] for e in ev["fwd"]}  # a corrupted datagram is forwarded
    report = emu.out_path.read_text()
    assert "corrupted" in report and "forwarded with" in report
    assert f"noport {st['dropped']['noport']}" in report


@pytest.mark.timeout(60)
def test_red_drops_early_and_is_counted(start_emulator, sink, sources):
    emu = start_emulator(sink.port, "-s", "400", "--aqm", "red", "--red-min", "2",
                         "--red-max", "6", "--red-wq", "0.5", "--queue-packets", "50",
                         "--seed", "6", trace=True)
    src = sources(emu.recv_port)
    send_paced(src, [segment(sink.port, i) for i in range(300)])
    got = sink.collect(idle=0.6)
    rc, st = emu.stop()
    assert rc == 0, emu.stderr
    ev = check_trace_against_stats(emu.trace(), st)
    assert st["dropped"]["red"] > 0 and st["dropped"]["queue"] == 0
    assert len(got) == st["forwarded"] == 300 - st["dropped"]["red"]
    red = [e for e in ev["recv"] if e["n"] in {d["n"] for d in ev["drop"]}]
    assert all(e["qp"] >= 1 for e in red)  # an empty queue gives RED nothing to average
    assert st["settings"]["impairments"]["aqm"] == "red"


@pytest.mark.timeout(60)
def test_codel_drops_only_after_an_interval_above_target(start_emulator, sink, sources):
    """A source at about twice the link rate for a second: CoDel drops, every
    drop waited at least target, and the first came only after every dequeue
    for a whole interval had waited at least target.  A dequeue's time is
    its arrival (the trace's recv time) plus its sojourn, both in the trace
    (rounded to 1 us there: hence the 2 us of slack)."""
    emu = start_emulator(sink.port, "-s", "400", "--aqm", "codel", "--queue-packets", "1000",
                         trace=True)
    src = sources(emu.recv_port)
    send_paced(src, [segment(sink.port, i) for i in range(500)], every=1, pause=0.002)
    got = sink.collect(idle=1.0)
    rc, st = emu.stop()
    assert rc == 0, emu.stderr
    ev = check_trace_against_stats(emu.trace(), st)
    assert st["dropped"]["codel"] > 0 and st["dropped"]["queue"] == 0
    assert len(got) == st["forwarded"]
    codel = [e for e in ev["drop"] if e["why"] == "codel"]
    assert all(e["sojourn"] >= TARGET for e in codel)
    arrival = {e["n"]: e["t"] for e in ev["recv"]}
    dequeues = sorted((arrival[e["n"]] + e["sojourn"], e["sojourn"], e["ev"])
                      for e in ev["fwd"] + codel)
    first_drop = min(t for t, _, kind in dequeues if kind == "drop")
    below = [t for t, s, _ in dequeues if t < first_drop and s < TARGET]
    since = min(t for t, _, _ in dequeues if not below or t > max(below))
    assert first_drop >= since + INTERVAL - 2e-6


@pytest.mark.timeout(60)
def test_forward_by_port_reaches_each_flow(start_emulator, sink, sources):
    """Datagrams for three sinks through one emulator port, one at a time and
    in GSO batches mixing ports: each sink gets exactly its own, in order."""
    from emu_support import Sink

    from runtime.udpgso import gso_cmsg

    others = [Sink(), Sink()]
    try:
        sinks = [sink, *others]
        emu = start_emulator("*", "--forward-by-port", trace=True)
        src = sources(emu.recv_port)
        expected: dict[int, list[int]] = {s.port: [] for s in sinks}
        for i in range(60):
            port = sinks[i % 3].port
            src.send(segment(port, i))
            expected[port].append(i)
        batch = [segment(sinks[i % 3].port, i) for i in range(60, 90)]
        for k in range(0, 30, 10):  # one sendmsg of ten datagrams for three flows
            src.sock.sendmsg([b"".join(batch[k:k + 10])], gso_cmsg(SIZE))
        for i in range(60, 90):
            expected[sinks[i % 3].port].append(i)
        src.send(b"\x00\x01")  # too short for a destination port
        got = {s.port: [number(d) for _, d in s.collect(idle=0.6, expect=30)] for s in sinks}
        rc, st = emu.stop()
    finally:
        for s in others:
            s.close()
    assert rc == 0, emu.stderr
    assert got == expected
    assert st["forwarded"] == 90 and st["dropped"]["noport"] == 1 and st["dropped_total"] == 1
    ev = check_trace_against_stats(emu.trace(), st)
    assert Counter(e["port"] for e in ev["fwd"]) == {s.port: 30 for s in sinks}
    assert "at each datagram's TCP destination port" in emu.stderr


@pytest.mark.timeout(60)
def test_console_shows_what_the_help_says(start_emulator, sink):
    """Default: warnings, and the one 'listening on' line; -v adds the other INFO lines."""
    quiet = start_emulator(sink.port, "-s", "100", "-q", "5000")
    loud = start_emulator(sink.port, "-v")
    for emu in (quiet, loud):
        rc, _ = emu.stop()
        assert rc == 0
    assert "listening on" in quiet.stderr and "settings:" not in quiet.stderr
    assert "listening on" in loud.stderr and "settings:" in loud.stderr


@pytest.mark.timeout(60)
def test_a_queue_flag_without_a_rate_is_refused_or_warned(start_emulator, sink):
    from emu_support import run_cli

    r = run_cli("-p", "0:0", "-o", f"127.0.0.1:{sink.port}", "--aqm", "red")
    assert r.returncode == 2 and "--aqm red needs a link speed (-s)" in r.stderr
    emu = start_emulator(sink.port, "-q", "5000")  # accepted as before, with a warning
    rc, _ = emu.stop()
    assert rc == 0 and "-q has no effect without a link speed" in emu.stderr


@pytest.mark.timeout(60)
def test_sigterm_with_datagrams_in_the_queue_is_prompt_and_honest(start_emulator, sink, sources):
    # 1 kbit/s: a 200-byte datagram takes 1.6 s on the link; none leaves in 0.3 s.
    emu = start_emulator(sink.port, "-s", "1", "--queue-packets", "100", "--aqm", "codel")
    src = sources(emu.recv_port)
    for i in range(5):
        src.send(segment(sink.port, i))
    time.sleep(0.3)
    t = time.monotonic()
    rc, st = emu.stop()
    assert time.monotonic() - t < 5
    assert rc == 0
    assert st["received"] == 5 and st["forwarded"] == 0 and st["unsent_at_exit"] == 5
    assert sink.collect(idle=0.2) == []
