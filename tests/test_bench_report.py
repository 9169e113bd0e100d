"""bench.report on made-up records: section 3b's windows at a loss rate."""

from __future__ import annotations

import pytest

from bench import models
from bench.report import markdown, summarise
from bench.runs import MIB
from bench.suite import KIB, Plan

RTT = 0.010  # seconds
CEILING = 300e6  # bytes per second of payload


def _usage(send: float, recv: float, emu: float | None) -> dict:
    u = {"sender": {"user": send, "sys": 0.0, "maxrss_kib": 40000},
         "receiver": {"user": recv, "sys": 0.0, "maxrss_kib": 40000}}
    if emu is not None:
        u["emu-data"] = {"user": emu, "sys": 0.0, "maxrss_kib": 28000}
    return u


def _run(window: int, loss: float, goodput: float, rtt_avg: float, cpu: float,
         rep: int = 0) -> dict:
    return {"section": "windows", "name": "sr", "rep": rep, "window": window, "loss": loss,
            "size": 8 * MIB, "ok": True, "bytes": 8 * MIB, "seconds": 2.0,
            "goodput": goodput, "usage": _usage(0.2 + cpu, 0.2 + cpu, cpu),
            "info": {"rtt_avg_ms": rtt_avg, "retransmissions": 10 if loss else 0,
                     "timer_expiries": 0, "segments_received": 100, "segments_sent": 1000},
            "note": ""}


def _fixed() -> dict:
    return {"section": "fixed", "name": "sr", "rep": 0, "size": 1024, "ok": True,
            "bytes": 1024, "seconds": 0.002, "goodput": 1.0, "usage": _usage(0.2, 0.2, None),
            "info": {}, "note": ""}


def _plan() -> Plan:
    return Plan(False, 1, 64 * MIB, 4 * MIB, "8M", RTT, 0.0, [0, 20], [64 * KIB], 2.5,
                10.0, [4 * MIB], [64 * KIB, 1 * MIB], 2.5, window_loss=20)


FACTS = {"path_rtt": RTT, "path_payload_ceiling": CEILING}


def test_lossy_runs_stay_out_of_the_lossless_window_table_and_get_their_own():
    records = [_fixed(),
               _run(64 * KIB, 0, 6.0e6, 10.4, 0.5), _run(1 * MIB, 0, 90e6, 10.8, 1.0),
               _run(64 * KIB, 20, 5.0e6, 10.5, 0.6), _run(1 * MIB, 20, 60e6, 12.0, 1.4)]
    s = summarise(records, FACTS, _plan())

    lossless = {x["window"]: x for x in s["windows"]}
    assert lossless[64 * KIB]["goodput"] == pytest.approx(6.0e6)
    assert lossless[1 * MIB]["goodput"] == pytest.approx(90e6)

    lossy = {x["window"]: x for x in s["windows_loss"]}
    assert set(lossy) == {64 * KIB, 1 * MIB}
    big = lossy[1 * MIB]
    model = models.model("sr", 0.2, 1 * MIB, RTT, CEILING)
    assert big["model"] == pytest.approx(model)
    assert big["ratio"] == pytest.approx(60e6 / model)
    assert (big["rtt_avg0"], big["rtt_avg"]) == (10.8, 12.0)
    # ours net of the 0.2 s fixed cost, the emulator whole: (1.4 * 3) / 2 s
    assert big["cores"] == pytest.approx(2.1)
    assert big["cores0"] == pytest.approx(1.5)


def test_the_lossy_window_table_is_in_the_markdown():
    records = [_fixed(),
               _run(64 * KIB, 0, 6.0e6, 10.4, 0.5), _run(1 * MIB, 0, 90e6, 10.8, 1.0),
               _run(64 * KIB, 20, 5.0e6, 10.5, 0.6), _run(1 * MIB, 20, 60e6, 12.0, 1.4)]
    plan = _plan()
    s = summarise(records, FACTS, plan)
    text = markdown(s, FACTS, {"date": "now", "cores": 2}, plan, ["windows"], "bench", None)
    assert "### Window size at 20% loss" in text
    ratio = 60e6 / models.model("sr", 0.2, 1 * MIB, RTT, CEILING)
    row = next(line for line in text.splitlines() if line.startswith("| 1 MiB | 480.0 |"))
    assert f"{ratio * 100:.0f}%" in row
    assert "10.8 -> 12.0" in row and "1.50 -> 2.10" in row
    assert "out of the machine's 2" in text


def test_without_lossy_runs_there_is_no_lossy_window_table():
    records = [_fixed(), _run(64 * KIB, 0, 6.0e6, 10.4, 0.5)]
    plan = _plan()
    s = summarise(records, FACTS, plan)
    assert s["windows_loss"] == []
    text = markdown(s, FACTS, {"date": "now", "cores": 2}, plan, ["windows"], "bench", None)
    assert "loss (sr, the same path)" not in text


def _results_json(tmp_path, **extra):
    import dataclasses
    import json

    sizes = [{**_run(0, 0, 90e6, 1.0, 0.3), "section": "sizes", "size": size,
              "bytes": size, "seconds": size / 90e6} for size in (4 * MIB, 16 * MIB)]
    records = [_fixed(), _run(64 * KIB, 0, 6.0e6, 10.4, 0.5), _run(1 * MIB, 20, 60e6, 12.0, 1.4),
               *sizes]
    d = {"machine": {"date": "then", "cores": 2}, "plan": dataclasses.asdict(_plan()),
         "sections": ["sizes", "windows"], "facts": FACTS, "records": records, **extra}
    path = tmp_path / "results.json"
    path.write_text(json.dumps(d))
    return path, records


def test_results_md_is_written_again_from_results_json(tmp_path):
    """python -m bench.report: the same RESULTS.md as the run wrote, from
    results.json alone (the command and the profile's note kept there)."""
    from bench.report.__main__ import main

    path, records = _results_json(tmp_path, command="python -m bench --sections 3",
                                  note="Where the time goes: nowhere.")
    assert main([str(path), "--no-plots"]) == 0
    plan = _plan()
    s = summarise(records, FACTS, plan)
    assert s["targets"]  # so that the note has its place, under them
    want = markdown(s, FACTS, {"date": "then", "cores": 2}, plan, ["sizes", "windows"],
                    "python -m bench --sections 3", "Where the time goes: nowhere.")
    assert (tmp_path / "RESULTS.md").read_text() == want
    assert "Where the time goes: nowhere." in want


def test_an_older_results_json_keeps_the_note_of_the_results_md_it_replaces(tmp_path):
    from bench.report.__main__ import main

    path, _ = _results_json(tmp_path)  # no command, no note: written before they were kept
    (tmp_path / "RESULTS.md").write_text("# old\n\nTargets marked **NO** are missed. "
                                         "No profile: py-spy is not installed.\n")
    assert main([str(path), "--no-plots"]) == 0
    text = (tmp_path / "RESULTS.md").read_text()
    assert "Produced by `python -m bench` on then" in text
    assert "No profile: py-spy is not installed." in text
    assert main([str(tmp_path / "missing.json")]) == 2


def _loopback(name: str, goodput: float, cpu: float, acks: int) -> dict:
    return {"section": "loopback", "name": name, "rep": 0, "size": 64 * MIB, "ok": True,
            "bytes": 64 * MIB, "seconds": 64 * MIB / goodput, "goodput": goodput,
            "usage": _usage(0.2 + cpu, 0.2 + cpu, None),
            "info": {"segments_sent": 46_000, "segments_received": acks}, "note": ""}


def test_the_burst_acks_contender_has_its_row_its_definition_and_its_costs():
    """Section 1: ``sr-burst`` is a row of the table (its label says what it
    is), its flags are written out once, and its cost per segment is given
    beside sr's, net of the fixed cost, from its own runs."""
    from bench.report.fmt import LABEL
    from bench.suite import BURST_ACKS

    records = [_fixed(), _loopback("udp", 370e6, 0.1, 0),
               _loopback("sr", 120e6, 1.0, 23_000), _loopback("sr-burst", 220e6, 0.5, 600)]
    plan = _plan()
    s = summarise(records, FACTS, plan)
    text = markdown(s, FACTS, {"date": "then", "cores": 2}, plan, ["loopback"],
                    "python -m bench", "")
    label = LABEL["sr-burst"]
    assert f"| {label} | 1,760.0 |" in text
    assert text.count(f"`{' '.join(BURST_ACKS)}`") == 1
    # (1.0 + 0.2 CPU s less the fixed run's 0.2) / 46,000 segments = 21.7 µs;
    # (0.5 + 0.2 - 0.2) / 46,000 = 10.9 µs
    assert "Ours (sr) per segment, the fixed cost of a run taken out: 46000 segments sent, " \
           "23000 ACKs received; CPU per segment: sender 21.7 µs" in text
    assert "Ours (sr-burst) per segment, the fixed cost of a run taken out: 46000 segments " \
           "sent, 600 ACKs received; CPU per segment: sender 10.9 µs" in text


def _targets(s: dict) -> dict:
    return {what: (got, ok) for _row, what, got, ok in s["targets"]}


def test_issue_19s_loopback_targets_are_rows_with_their_figures():
    """Row 1 as issue 19 restates it: sr against the same run's UDP ceiling
    (80%), and the sender's CPU per segment net of the fixed cost (4 µs)."""
    records = [_fixed(), _loopback("udp", 370e6, 0.1, 0), _loopback("sr", 300e6, 0.15, 23_000)]
    t = _targets(summarise(records, FACTS, _plan()))
    assert t["sr goodput >= 80% of the UDP ceiling"] == ("81%", True)
    # (0.15 + 0.2 CPU s less the fixed run's 0.2) / 46,000 segments = 3.3 µs
    assert t["sr sender CPU per segment <= 4 µs (fixed cost taken out)"] == ("3.3 µs", True)
    records[2] = _loopback("sr", 290e6, 0.2, 23_000)  # 78%; 0.2 / 46,000 = 4.3 µs
    t = _targets(summarise(records, FACTS, _plan()))
    assert t["sr goodput >= 80% of the UDP ceiling"] == ("78%", False)
    assert t["sr sender CPU per segment <= 4 µs (fixed cost taken out)"] == ("4.3 µs", False)


def _size_run(size: int, seconds: float) -> dict:
    return {**_run(0, 0, 90e6, 1.0, 0.3), "section": "sizes", "size": size, "bytes": size,
            "seconds": seconds}


def test_issue_19s_size_target_takes_the_1_kib_runs_time_out():
    """Row 3 restated: time per MiB over 4-64 MiB, each run less the 1 KiB
    run's median time (2 ms here), within 10%; 256 MiB stays out of it."""
    records = [_fixed(), _size_run(4 * MIB, 0.030), _size_run(16 * MIB, 0.114),
               _size_run(64 * MIB, 0.450), _size_run(256 * MIB, 1.2)]
    s = summarise(records, FACTS, _plan())
    net = {x["size"]: x["ms_per_mib_net"] for x in s["sizes"]}
    assert net[4 * MIB] == pytest.approx(7.0)  # (30 - 2) / 4
    assert net[16 * MIB] == pytest.approx(7.0)  # (114 - 2) / 16
    assert net[64 * MIB] == pytest.approx(7.0)  # (450 - 2) / 64
    got, ok = _targets(s)["time per MiB within 10% over 4-64 MiB, a 1 KiB run's time taken out"]
    assert (got, ok) == ("7.00-7.00 ms/MiB (spread 0%)", True)
    # the raw row still sees the fixed cost: 7.5 against 4.69 ms/MiB
    assert _targets(s)["time per MiB within 10% across file sizes"][1] is False
    records[1] = _size_run(4 * MIB, 0.034)  # (34 - 2) / 4 = 8.0: 14% over 7.0
    got, ok = _targets(summarise(records, FACTS, _plan()))[
        "time per MiB within 10% over 4-64 MiB, a 1 KiB run's time taken out"]
    assert (got, ok) == ("7.00-8.00 ms/MiB (spread 14%)", False)


def _loss_run(mode: str, loss: float, goodput: float) -> dict:
    return {**_run(64 * KIB, loss, goodput, 10.5, 0.5), "section": "loss", "name": mode}


def test_issue_19s_loss_target_is_against_the_runs_own_lossless_goodput():
    """Row 2 restated: at every loss rate p, sr >= 90% of (1 - p) times its
    own 0%-loss goodput at that window in the same run."""
    records = [_fixed(), _loss_run("sr", 0, 6.0e6), _loss_run("gbn", 0, 6.0e6),
               _loss_run("sr", 20, 4.4e6), _loss_run("gbn", 20, 1.0e6)]
    what = "sr >= 90% of (1-p) x its own 0%-loss goodput, window 64 KiB"
    # 4.4 / (0.8 x 6.0) = 91.7%
    assert _targets(summarise(records, FACTS, _plan()))[what] == ("20%: 92%", True)
    records[3] = _loss_run("sr", 20, 4.2e6)  # 4.2 / 4.8 = 87.5%
    assert _targets(summarise(records, FACTS, _plan()))[what] == ("20%: 88%", False)
