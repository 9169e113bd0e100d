"""Synthetic traces with known contents, for the analysis tests.

The traces are made up here, event by event, as a sender, a receiver and an
emulator would write them; each generator counts what it put in (duplicate
ACKs, retransmissions, RTT samples, ...) so that the tests can hold the
analysis to it.
"""

from __future__ import annotations

import json
import re

MOD = 1 << 32
MSS = 1000
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def write_trace(path, events, *, sort=True):
    """events: dicts with t and ev; the meta event first."""
    meta, rest = events[0], events[1:]
    if sort:
        rest = sorted(rest, key=lambda e: e["t"])
    with open(path, "w") as f:
        for e in [meta] + rest:
            e = dict(e)
            e.setdefault("th", "main")
            f.write(json.dumps(e) + "\n")
    return path


def sender_events(n=100, isn=0xFFFFF000, lost_fast=3, rto=0.2):
    """A sender moving n*MSS bytes with sequence numbers wrapping past 2**32.
    Segment ``lost_fast`` is lost and recovered by fast retransmit after
    three duplicate ACKs; the last segment is lost and recovered by a timeout.
    Returns (events, expected numbers)."""
    ev = []
    isn_r = 777

    def e(t, name, **kw):
        ev.append({"t": round(t, 6), "ev": name, **kw})

    def seq(off):
        return (isn + 1 + off) % MOD

    e(10.0, "meta", role="sender", mode="sr", mss=MSS, isn=isn, file_size=n * MSS,
      window=64000, min_rto=0.2)
    e(10.0, "state", old="CLOSED", new="SYN_SENT")
    e(10.0, "send", seq=isn, ack=0, flags="S", len=0, win=65535, off=0)
    e(10.010, "recv", seq=isn_r, ack=seq(0), flags="SA", len=0, win=65535, off=0, sack=[])
    samples = [0.010]
    e(10.010, "rtt", sample=0.010, srtt=0.010, rttvar=0.005, rto=rto)
    e(10.010, "send", seq=seq(0), ack=isn_r + 1, flags="A", len=0, win=65535, off=0)
    e(10.010, "state", old="SYN-SENT", new="ESTABLISHED")

    spacing = 0.005
    t_send = {i: 10.1 + i * spacing for i in range(n)}
    rtt_of = {i: 0.020 + 0.001 * (i % 5) for i in range(n)}
    last = n - 1
    for i in range(n):
        e(t_send[i], "send", seq=seq(i * MSS), ack=isn_r + 1, flags="A", len=MSS, win=65535,
          off=i * MSS)

    # ACKs, in the order they arrive
    received = set()
    acked = 0
    dupacks = 0
    prev_ack = None
    retransmitted = set()
    arrivals = []  # (time the ACK reaches the sender, segment that caused it)
    for i in range(n):
        if i not in (lost_fast, last):
            arrivals.append((t_send[i] + rtt_of[i], i))
    arrivals.sort()
    k = 0
    cum = highest = 0
    fast_at = None
    n_dup_for_fast = 0
    while k < len(arrivals):
        t, i = arrivals[k]
        k += 1
        received.add(i)
        highest = max(highest, i)
        while cum in received:
            cum += 1
        sack = []
        if cum < highest + 1:
            sack = [[(cum + 1) * MSS, (highest + 1) * MSS]]
        ack_off = cum * MSS
        e(t, "recv", seq=isn_r + 1, ack=seq(ack_off), flags="A", len=0, win=64000, off=0,
          sack=sack)
        if ack_off == prev_ack:
            dupacks += 1
            n_dup_for_fast += 1
            if n_dup_for_fast == 3 and fast_at is None:
                fast_at = t
                e(t, "fast_rexmit", off=lost_fast * MSS, len=MSS, why="dupack")
                e(t, "send", seq=seq(lost_fast * MSS), ack=isn_r + 1, flags="A", len=MSS,
                  win=65535, off=lost_fast * MSS, rexmit="fast")
                retransmitted.add(lost_fast)
                arrivals.append((t + rtt_of[lost_fast], lost_fast))
                arrivals.sort()
        elif ack_off > acked:
            newly = set(range(acked // MSS, cum))
            if not (newly & retransmitted):
                s = rtt_of[i]
                samples.append(s)
                e(t, "rtt", sample=s, srtt=0.022, rttvar=0.003, rto=rto)
        if ack_off > acked:
            acked = ack_off
        prev_ack = ack_off

    # tail loss: the last segment times out
    t_to = max(t_send[last] + rto, arrivals[-1][0] + 0.001)
    e(t_to, "timeout", rto=rto, n=1)
    e(t_to, "rto", rto=2 * rto, backoff=2)
    e(t_to, "send", seq=seq(last * MSS), ack=isn_r + 1, flags="A", len=MSS, win=65535,
      off=last * MSS, rexmit="timeout")
    t_done = t_to + 0.021
    e(t_done, "recv", seq=isn_r + 1, ack=seq(n * MSS), flags="A", len=0, win=64000, off=0,
      sack=[])
    # FIN exchange, then TIME-WAIT
    e(t_done + 0.001, "send", seq=seq(n * MSS), ack=isn_r + 1, flags="FA", len=0, win=65535,
      off=n * MSS)
    e(t_done + 0.022, "recv", seq=isn_r + 1, ack=seq(n * MSS + 1), flags="A", len=0,
      win=64000, off=0, sack=[])
    e(t_done + 0.023, "recv", seq=isn_r + 1, ack=seq(n * MSS + 1), flags="FA", len=0,
      win=64000, off=0, sack=[])
    e(t_done + 0.023, "send", seq=seq(n * MSS + 1), ack=isn_r + 2, flags="A", len=0,
      win=65535, off=n * MSS + 1)
    e(t_done + 0.023, "state", old="FIN-WAIT-2", new="TIME-WAIT")
    e(t_done + 0.823, "state", old="TIME-WAIT", new="CLOSED")
    e(t_done + 0.823, "summary", counters={"sent": 1, "rexmit": 2})
    # the sender's bookkeeping after every data send and every ACK
    acked = top = 0
    for x in sorted(ev, key=lambda x: x["t"]):
        if x["ev"] == "send" and x["len"]:
            top = max(top, x["off"] + x["len"])
        elif x["ev"] == "recv" and x["flags"] == "A":
            acked = max(acked, min((x["ack"] - isn - 1) % MOD, n * MSS))
        else:
            continue
        ev.append({"t": x["t"], "ev": "inflight", "bytes": top - acked, "rwnd": 64000,
                   "acked": acked})
    expected = {
        "bytes": n * MSS,
        "dupacks": dupacks,
        "samples": samples,
        "transfer": t_done + 0.022 - 10.0,  # first SYN to the FIN acknowledged
        "duration": t_done + 0.823 - 10.0,
        "n_send": sum(1 for x in ev if x["ev"] == "send"),
        "n_recv": sum(1 for x in ev if x["ev"] == "recv"),
        "final_rto_ms": 2 * rto * 1000,
    }
    return ev, expected


def receiver_events():
    """A receiver (sr) getting 20 segments: segment 4 arrives after 5 and 6
    (2 out of order), segment 9 arrives twice and segment 2 once more after
    the fact (2 duplicates), one datagram fails its checksum."""
    isn = 5000
    ev = []

    def e(t, name, **kw):
        ev.append({"t": round(t, 6), "ev": name, **kw})

    e(1.0, "meta", role="receiver", mode="sr", mss=MSS, window=64000)
    e(1.0, "recv", seq=isn, ack=0, flags="S", len=0, win=65535, off=0, sack=[])
    e(1.0, "send", seq=99, ack=isn + 1, flags="SA", len=0, win=65535, off=0)
    order = [0, 1, 2, 3, 5, 6, 4, 7, 8, 9, 9, 2, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19]
    t = 1.01
    nxt = 0
    held = set()
    queue = 0
    max_queue = 0
    for k, i in enumerate(order):
        t += 0.002
        e(t, "recv", seq=isn + 1 + i * MSS, ack=100, flags="A", len=MSS, win=65535,
          off=i * MSS, sack=[])
        if k == 8:
            e(t, "drop", why="checksum", len=1020)
        held.add(i)
        while nxt in held:
            nxt += 1
            queue += MSS
        max_queue = max(max_queue, queue)
        e(t, "send", seq=100, ack=isn + 1 + nxt * MSS, flags="A", len=0, win=64000 - queue,
          off=0)
        e(t, "rwnd", win=64000 - queue, queue=queue, ooo=len(held) * MSS - nxt * MSS)
        if k % 3 == 2:  # the writer catches up every third segment
            e(t + 0.001, "write", bytes=queue, queue=0)
            queue = 0
    e(t + 0.001, "write", bytes=queue, queue=0)
    e(t + 0.01, "recv", seq=isn + 1 + 20 * MSS, ack=100, flags="FA", len=0, win=65535,
      off=20 * MSS, sack=[])
    e(t + 0.01, "send", seq=100, ack=isn + 2 + 20 * MSS, flags="FA", len=0, win=64000, off=0)
    e(t + 0.02, "state", old="LAST-ACK", new="CLOSED")
    return ev, {"max_queue": max_queue, "bytes": 20 * MSS, "n_recv": len(order) + 2}


def emulator_events():
    ev = [{"t": 0.0, "ev": "meta", "role": "emulator", "loss": 0.1}]
    fwd = drops = 0
    for n in range(200):
        t = 0.001 * n
        ev.append({"t": t, "ev": "recv", "n": n, "len": 1020})
        if n % 10 == 3:
            ev.append({"t": t, "ev": "drop", "n": n, "why": "loss"})
            drops += 1
            continue
        if n % 50 == 7:
            ev.append({"t": t, "ev": "corrupt", "n": n, "bits": 1})
        if n % 40 == 11:
            ev.append({"t": t, "ev": "dup", "n": n})
        ev.append({"t": t + 0.005, "ev": "fwd", "n": n, "len": 1020, "delay": 0.005})
        fwd += 1
    ev.append({"t": 0.3, "ev": "drop", "n": 999, "why": "queue"})
    # the emulator puts its counters at the top level of its summary
    ev.append({"t": 0.4, "ev": "summary", "received": 200, "seed": 7, "nested": {"x": 1}})
    return ev, {"fwd": fwd, "loss": drops}


def row(out: str, label: str) -> str:
    m = re.search(rf"^  {re.escape(label)}\s{{2,}}(.*)$", out, re.M)
    assert m, f"no row {label!r} in:\n{out}"
    return m.group(1)


def assert_png(path):
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, path
    assert len(data) > 5000, (path, len(data))


def data_arrivals(order, mode):
    """A receiver trace of data segments arriving in ``order`` (segment indexes)."""
    ev = [{"t": 0.0, "ev": "meta", "role": "receiver", "mode": mode},
          {"t": 0.0, "ev": "recv", "seq": 41, "ack": 0, "flags": "S", "len": 0, "win": 9,
           "off": 0, "sack": []}]
    for k, i in enumerate(order):
        ev.append({"t": 0.01 * (k + 1), "ev": "recv", "seq": 42 + i * MSS, "ack": 1,
                   "flags": "A", "len": MSS, "win": 9, "off": i * MSS, "sack": []})
    return ev
