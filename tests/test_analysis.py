"""analysis: summaries and plots from synthetic traces with known contents.

The traces are made up here, event by event, as a sender, a receiver and an
emulator would write them; the generator counts what it put in (duplicate
ACKs, retransmissions, RTT samples, ...) and the printed summary must say
exactly that.
"""

from __future__ import annotations

import json
import re
import statistics

import pytest

from analysis.__main__ import main

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

    e(10.0, "meta", role="sender", mode="sr", mss=MSS, isn=isn, size=n * MSS)
    e(10.0, "state", old="CLOSED", new="SYN-SENT")
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
        "transfer": t_done - 10.0,
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


@pytest.mark.timeout(120)
def test_sender_summary_and_plots(tmp_path, capsys):
    events, exp = sender_events()
    trace = write_trace(tmp_path / "sender.jsonl", events)
    out_dir = tmp_path / "plots"
    assert main([str(trace), "--out", str(out_dir)]) == 0
    out = capsys.readouterr().out
    assert "(sender, mode sr, mss 1000)" in out
    assert row(out, "bytes") == str(exp["bytes"])
    assert row(out, "duration").startswith(f"{exp['duration']:.3f} s")
    assert row(out, "transfer time") == f"{exp['transfer']:.3f} s"
    assert row(out, "segments sent") == f"{exp['n_send']} (102 with data)"
    assert row(out, "segments received").startswith(f"{exp['n_recv']} ")
    assert row(out, "retransmissions") == "2 (fast 1, timeout 1)"
    assert row(out, "retransmitted bytes") == "2000"
    assert row(out, "timeouts") == "1"
    assert row(out, "fast retransmits") == "1"
    assert exp["dupacks"] >= 3
    assert row(out, "duplicate ACKs") == str(exp["dupacks"])
    s = exp["samples"]
    ms = [x * 1000 for x in s]
    assert row(out, "RTT min/avg/max") == (
        f"{min(ms):.3f} / {statistics.fmean(ms):.3f} / {max(ms):.3f} ms ({len(s)} samples)")
    assert row(out, "final RTO") == f"{exp['final_rto_ms']:.3f} ms"
    assert row(out, "final state") == "CLOSED"
    goodput = exp["bytes"] / exp["transfer"]
    assert row(out, "goodput").startswith(f"{goodput / 1e3:.3f} kB/s")
    for kind in ("timeseq", "rtt", "inflight", "goodput"):
        assert_png(out_dir / f"sender-{kind}.png")
    assert "skipped" not in out and "failed" not in out


@pytest.mark.timeout(120)
def test_receiver_summary_and_plots(tmp_path, capsys):
    events, exp = receiver_events()
    trace = write_trace(tmp_path / "recv.trace.jsonl", events)
    assert main([str(trace), "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert row(out, "bytes") == str(exp["bytes"])
    assert row(out, "segments received").startswith(f"{exp['n_recv']} (22 with data)")
    assert row(out, "out-of-order segments") == "2"
    assert row(out, "duplicate segments") == "2"
    assert row(out, "checksum drops") == "1"
    assert row(out, "drops") == "1 (checksum 1)"
    assert row(out, "max writer queue") == f"{exp['max_queue']} bytes"
    for kind in ("timeseq", "goodput", "queue"):
        assert_png(tmp_path / f"recv-{kind}.png")
    # a receiver has no RTT estimator: nothing to skip, nothing attempted
    assert "failed" not in out


def data_arrivals(order, mode):
    """A receiver trace of data segments arriving in ``order`` (segment indexes)."""
    ev = [{"t": 0.0, "ev": "meta", "role": "receiver", "mode": mode},
          {"t": 0.0, "ev": "recv", "seq": 41, "ack": 0, "flags": "S", "len": 0, "win": 9,
           "off": 0, "sack": []}]
    for k, i in enumerate(order):
        ev.append({"t": 0.01 * (k + 1), "ev": "recv", "seq": 42 + i * MSS, "ack": 1,
                   "flags": "A", "len": MSS, "win": 9, "off": i * MSS, "sack": []})
    return ev


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode, ooo, dup", [("sr", 2, 2), ("gbn", 2, 0)])
def test_out_of_order_and_duplicates_follow_the_mode(tmp_path, capsys, mode, ooo, dup):
    # 3 is late.  sr buffers 4 and 5, so their second copies are duplicates;
    # gbn discarded them, so their second copies are new data.
    trace = write_trace(tmp_path / "r.jsonl", data_arrivals([0, 1, 2, 4, 5, 3, 4, 5, 6], mode))
    assert main([str(trace), "--no-plots"]) == 0
    out = capsys.readouterr().out
    assert row(out, "out-of-order segments") == str(ooo)
    assert row(out, "duplicate segments") == str(dup)
    assert row(out, "bytes") == "0"  # no ACKs or writes: nothing delivered yet


@pytest.mark.timeout(120)
def test_emulator_summary_and_bar_chart(tmp_path, capsys):
    events, exp = emulator_events()
    trace = write_trace(tmp_path / "link.jsonl", events)
    assert main([str(trace), "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert row(out, "datagrams in") == "200"
    assert row(out, "forwarded") == f"{exp['fwd']} ({exp['fwd'] * 1020} bytes)"
    assert row(out, "dropped") == f"{exp['loss'] + 1} (loss {exp['loss']}, queue 1)"
    assert row(out, "corrupted") == "4"
    assert row(out, "duplicated") == "5"
    assert row(out, "process counters") == "received=200, seed=7"
    assert_png(tmp_path / "link-emulator.png")


@pytest.mark.timeout(120)
def test_several_traces_json_and_no_plots(tmp_path, capsys):
    s_events, s_exp = sender_events(n=30)
    r_events, _ = receiver_events()
    a = write_trace(tmp_path / "a.jsonl", s_events)
    b = write_trace(tmp_path / "b.jsonl", r_events)
    assert main([str(a), str(b), "--no-plots", "--json", "--out", str(tmp_path / "x")]) == 0
    summaries = json.loads(capsys.readouterr().out)
    assert [s["role"] for s in summaries] == ["sender", "receiver"]
    assert summaries[0]["retransmissions_by_cause"] == {"fast": 1, "timeout": 1}
    assert summaries[0]["duplicate_acks"] == s_exp["dupacks"]
    assert summaries[1]["out_of_order"] == 2
    assert not (tmp_path / "x").exists()
    assert not list(tmp_path.glob("*.png"))


@pytest.mark.timeout(60)
def test_missing_data_skips_plots_with_a_note(tmp_path, capsys):
    events = [
        {"t": 0.0, "ev": "meta", "role": "sender"},
        {"t": 0.1, "ev": "state", "old": "CLOSED", "new": "SYN-SENT"},
        {"t": 0.2, "ev": "mystery", "x": 1},  # unknown events are ignored
    ]
    trace = write_trace(tmp_path / "empty.jsonl", events)
    assert main([str(trace), "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert row(out, "bytes") == "0"
    assert row(out, "RTT min/avg/max") == "-"
    for kind in ("timeseq", "rtt", "inflight", "goodput"):
        assert f"plot {kind}: skipped" in out
    assert not list(tmp_path.glob("*.png"))


@pytest.mark.timeout(60)
@pytest.mark.parametrize("bad_line, message", [
    ('{"t": 1.0, "ev": "send", "seq": 1\n', "not JSON"),
    ('[1, 2, 3]\n', "not a JSON object"),
    ('{"t": "soon", "ev": "send"}\n', "numeric time"),
    ('{"t": 1.0, "ev": "send", "seq": "one", "flags": "A"}\n', "'seq'"),
    ('{"t": 1.0, "ev": "recv", "sack": [[1]]}\n', "SACK"),
])
def test_garbled_trace_exits_2_naming_the_line(tmp_path, capsys, bad_line, message):
    path = tmp_path / "bad.jsonl"
    lines = ['{"t": 0.0, "ev": "meta", "role": "sender"}\n',
             '{"t": 0.5, "ev": "state", "old": "A", "new": "B"}\n',
             "\n",
             bad_line,
             '{"t": 2.0, "ev": "state", "old": "B", "new": "C"}\n']
    path.write_text("".join(lines))
    assert main([str(path), "--no-plots"]) == 2
    err = capsys.readouterr().err
    assert f"{path}:4:" in err and message in err


@pytest.mark.timeout(60)
def test_unusable_files_exit_2(tmp_path, capsys):
    good = write_trace(tmp_path / "good.jsonl", emulator_events()[0])
    no_meta = tmp_path / "nometa.jsonl"
    no_meta.write_text('{"t": 0.0, "ev": "send", "seq": 1}\n')
    bad_role = tmp_path / "role.jsonl"
    bad_role.write_text('{"t": 0.0, "ev": "meta", "role": "router"}\n')
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    binary = tmp_path / "bin.jsonl"
    binary.write_bytes(b"\xff\xfe\x00garbage\n")
    missing = tmp_path / "nope.jsonl"
    for p, msg in [(missing, "cannot open"), (no_meta, "expected \"meta\""),
                   (bad_role, "role"), (empty, "empty"), (binary, "UTF-8"),
                   (tmp_path, "cannot open")]:
        assert main([str(p), "--no-plots"]) == 2, p
        err = capsys.readouterr().err
        assert str(p) in err and msg in err, err
    # the good trace is still summarised when a bad one sits beside it
    assert main([str(missing), str(good), "--no-plots"]) == 2
    captured = capsys.readouterr()
    assert "datagrams in" in captured.out and "nope.jsonl" in captured.err
    # a usage error is a 2 as well, without raising SystemExit
    assert main(["--no-such-option"]) == 2
    capsys.readouterr()


@pytest.mark.timeout(60)
def test_truncated_last_line_is_a_warning(tmp_path, capsys):
    events, _ = emulator_events()
    path = write_trace(tmp_path / "cut.jsonl", events)
    with open(path, "a") as f:
        f.write('{"t": 9.0, "ev": "fw')  # killed mid-write
    assert main([str(path), "--no-plots"]) == 0
    captured = capsys.readouterr()
    assert "truncated last line ignored" in captured.err
    assert row(captured.out, "datagrams in") == "200"


@pytest.mark.timeout(120)
def test_big_trace_is_handled(tmp_path, capsys):
    """~120k lines: streamed, summarised and plotted within the timeout."""
    events, exp = sender_events(n=30_000, rto=0.5)
    trace = write_trace(tmp_path / "big.jsonl", events)
    assert sum(1 for _ in open(trace)) > 100_000
    assert main([str(trace), "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert row(out, "duplicate ACKs") == str(exp["dupacks"])
    assert row(out, "retransmissions") == "2 (fast 1, timeout 1)"
    for kind in ("timeseq", "rtt", "inflight", "goodput"):
        assert_png(tmp_path / f"big-{kind}.png")


@pytest.mark.timeout(60)
def test_importing_analysis_does_not_load_matplotlib():
    import subprocess
    import sys

    code = ("import sys, analysis, analysis.__main__, analysis.load, analysis.summary, "
            "analysis.plots; print('matplotlib' in sys.modules)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert res.stdout.strip() == "False", res.stderr
