"""analysis: summaries and plots from synthetic traces with known contents.

The traces are made up here, event by event, as a sender, a receiver and an
emulator would write them; the generator counts what it put in (duplicate
ACKs, retransmissions, RTT samples, ...) and the printed summary must say
exactly that.
"""

from __future__ import annotations

import json
import statistics

import pytest
from analysis_support import (
    assert_png,
    data_arrivals,
    emulator_events,
    receiver_events,
    row,
    sender_events,
    write_trace,
)

from analysis.__main__ import main


@pytest.mark.timeout(120)
def test_sender_summary_and_plots(tmp_path, capsys):
    events, exp = sender_events()
    trace = write_trace(tmp_path / "sender.jsonl", events)
    out_dir = tmp_path / "plots"
    assert main([str(trace), "--out", str(out_dir)]) == 0
    out = capsys.readouterr().out
    assert "(sender, mode sr, mss 1000)" in out
    assert row(out, "bytes") == str(exp["bytes"])
    assert row(out, "trace span").startswith(f"{exp['duration']:.3f} s")
    assert row(out, "transfer time").startswith(f"{exp['transfer']:.4f} s (first SYN to FIN")
    assert row(out, "segments sent") == f"{exp['n_send']} (100 new data)"
    assert row(out, "segments received").startswith(f"{exp['n_recv']} ")
    assert row(out, "retransmissions") == "2 (fast 1, timeout 1)"
    assert row(out, "retransmitted bytes") == "2000"
    assert row(out, "timer expiries") == "1"
    assert exp["dupacks"] >= 3
    assert row(out, "duplicate ACKs") == str(exp["dupacks"])
    s = exp["samples"]
    ms = [x * 1000 for x in s]
    assert row(out, "RTT min/avg/max") == (
        f"{min(ms):.3f} / {statistics.fmean(ms):.3f} / {max(ms):.3f} ms ({len(s)} samples)")
    assert row(out, "final RTO") == f"{exp['final_rto_ms']:.3f} ms"
    assert row(out, "final state") == "CLOSED"
    goodput = exp["bytes"] * 8 / exp["transfer"]
    assert row(out, "goodput").startswith(f"{goodput / 1e3:.2f} kbit/s (file bytes / transfer")
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
    assert row(out, "transfer time") == "-"
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
                   (tmp_path, "no *.trace.jsonl files")]:
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
