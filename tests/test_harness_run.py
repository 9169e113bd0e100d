"""The harness's runs (harness/transfer.py, spec.py, programs.py), its
verification of the output (verify.py) and its run directories (rundir.py)."""

from __future__ import annotations

import hashlib
import stat

import pytest
from support import make_file

from harness import rundir
from harness.procs import NotReady
from harness.programs import emulator_argv, receiver_argv, sender_argv
from harness.spec import LinkSpec, Options, ReceiverSpec, RunSpec, SenderSpec, parse_size
from harness.transfer import Transfer
from harness.verify import verify

# ------------------------------------------------------------------ verify.py


def test_an_identical_file_passes_with_its_sha256(tmp_path):
    src = make_file(tmp_path / "a.bin", 3 << 20, seed=1)
    dst = tmp_path / "b.bin"
    dst.write_bytes(src.read_bytes())
    v = verify(src, dst)
    assert v.ok and not v.reasons
    assert v.sha256 == hashlib.sha256(src.read_bytes()).hexdigest()
    (tmp_path / "e1").write_bytes(b"")
    (tmp_path / "e2").write_bytes(b"")
    assert verify(tmp_path / "e1", tmp_path / "e2").ok


@pytest.mark.parametrize("damage", ["flip", "short", "long"])
def test_a_differing_file_is_caught(tmp_path, damage):
    src = make_file(tmp_path / "a.bin", (2 << 20) + 5, seed=2)
    data = bytearray(src.read_bytes())
    if damage == "flip":
        data[(1 << 20) + 17] ^= 0x01  # one bit, past the first chunk
    elif damage == "short":
        del data[-1]
    else:
        data += b"\0"
    dst = tmp_path / "b.bin"
    dst.write_bytes(bytes(data))
    v = verify(src, dst)
    assert not v.ok and v.sha256 is None
    assert v.reasons == [f"{dst} differs from {src}"]


def test_a_missing_file_is_caught(tmp_path):
    src = make_file(tmp_path / "a.bin", 10)
    v = verify(src, tmp_path / "nothing.bin")
    assert not v.ok and v.reasons == [f"{tmp_path / 'nothing.bin'} is missing"]


# ------------------------------------------------------------------ rundir.py


def test_an_earlier_run_is_seen_and_other_files_are_not(tmp_path):
    d = tmp_path / "run"
    assert rundir.earlier_run(d) == []            # not there yet
    d.mkdir()
    (d / "notes.txt").write_text("mine")
    assert rundir.earlier_run(d) == []            # the user's own files only
    (d / "sender.log").write_text("x")
    (d / "plots").mkdir()
    assert rundir.earlier_run(d) == ["sender.log", "plots"]


def test_the_default_directory_is_never_one_that_exists(tmp_path):
    first = rundir.default_dir(tmp_path, pid=42, now=0)
    assert first.parent == tmp_path / "runs" and first.name.endswith("-42")
    first.mkdir(parents=True)
    second = rundir.default_dir(tmp_path, pid=42, now=0)
    assert second == first.with_name(first.name + "-2")


def test_the_size_says_where_it_went_and_how_to_keep_captures_small(tmp_path):
    d = tmp_path / "run"
    (d / "plots").mkdir(parents=True)
    (d / "plots" / "x.png").write_bytes(b"p" * 1000)
    (d / "sender.trace.jsonl").write_bytes(b"t" * 3000)
    with open(d / "sender.pcap", "wb") as f:  # sparse: big, yet no disk used
        f.truncate(rundir.BIG_CAPTURES + 1)
    text = rundir.size_report(d, snaplen=None)
    total = rundir.BIG_CAPTURES + 1 + 4000
    assert text.startswith(f"{d} ({rundir.human(total)}: pcaps 16.0 MiB, traces 2.9 KiB)")
    assert "--snaplen 100" in text
    assert "--snaplen" not in rundir.size_report(d, snaplen=100)
    (d / "sender.pcap").unlink()
    assert rundir.size_report(d, None) == f"{d} (3.9 KiB: traces 2.9 KiB)"


def test_remove_keeps_what_a_run_did_not_write(tmp_path):
    d = tmp_path / "run"
    (d / "plots").mkdir(parents=True)
    for name in ("sender.log", "emu-ack.stats.json", "analysis.txt", "sample.bin"):
        (d / name).write_text("x")
    rundir.remove(d, [d / "sample.bin"])
    assert not d.exists()
    d.mkdir()
    (d / "receiver.out").write_text("x")
    (d / "mine.txt").write_text("x")
    rundir.remove(d, [])
    assert [p.name for p in d.iterdir()] == ["mine.txt"]


# -------------------------------------------------------- spec.py, programs.py


def test_sizes_and_impairments_become_emulator_flags():
    assert [parse_size(x) for x in ("0", "300K", "4M", "1.5KiB", "2g", "12Q", "")] == \
        [0, 300 << 10, 4 << 20, 1536, 2 << 30, None, None]
    link = LinkSpec({"queue": "32K", "burst": "1:30::2", "loss": "7"}, flags=["--x", "1"])
    assert link.emulator_flags() == ["--ge-p", "1", "--ge-r", "30", "--ge-good-loss", "2",
                                     "-L", "7", "-q", "32768", "--x", "1"]


def test_a_run_has_one_sender_until_the_server_takes_several(tmp_path):
    r = ReceiverSpec(tmp_path / "out")
    s = SenderSpec(tmp_path / "in", 65536)
    with pytest.raises(ValueError, match="one sender"):
        RunSpec(tmp_path, r, [s, SenderSpec(tmp_path / "in2", 65536, name="sender-2")])
    assert RunSpec(tmp_path, r, [s]).senders == [s]


def test_the_command_lines_carry_the_shared_options(tmp_path):
    opts = Options(python="PY", bind=True, give_up=7, log_level="DEBUG", log_files=True,
                   emulator_verbose=2, trace=True, pcap=True, snaplen=100)
    emu = emulator_argv(opts, tmp_path, "emu-data", LinkSpec({"loss": "3"}, seed=9), 5000)
    assert emu[:7] == ["PY", "-m", "emulator", "-p", "0:0", "-o", "127.0.0.1:5000"]
    for flag in ("--seed", "--ready-file", "--stats", "--log", "-vv", "--trace", "-L"):
        assert flag in emu
    assert "--pcap" not in emu and "--snaplen" not in emu  # the emulator writes none
    rcv = receiver_argv(opts, tmp_path, ReceiverSpec(tmp_path / "o", mode="gbn"), "ACK")
    snd = sender_argv(opts, tmp_path, SenderSpec(tmp_path / "i", 1000, pacing=0), 41, 42)
    assert rcv[2:7] == ["receiver", str(tmp_path / "o"), "0", "127.0.0.1", "ACK"]
    assert snd[2:8] == ["sender", str(tmp_path / "i"), "127.0.0.1", "41", "1000", "42"]
    for argv, name in ((rcv, "receiver"), (snd, "sender")):
        text = " ".join(argv)
        for part in ("--no-progress", "--bind 127.0.0.1", "--give-up 7", "--log-level DEBUG",
                     f"--log-file {tmp_path}/{name}.log", f"--pcap {tmp_path}/{name}.pcap",
                     "--snaplen 100", f"--trace {tmp_path}/{name}.trace.jsonl"):
            assert part in text, (part, text)
    assert "--pacing 0" in " ".join(snd) and "--mode gbn" in " ".join(rcv)
    plain = receiver_argv(Options(python="PY"), tmp_path, ReceiverSpec(tmp_path / "o"), 1)
    assert plain == ["PY", "-m", "receiver", str(tmp_path / "o"), "0", "127.0.0.1", "1",
                     "--ready-file", str(tmp_path / "receiver.ready"), "--no-progress"]


# ---------------------------------------------------------------- transfer.py


@pytest.mark.timeout(120)
def test_a_run_through_both_emulators(tmp_path):
    src = make_file(tmp_path / "in.bin", 200_000, seed=3)
    dst = tmp_path / "out.bin"
    spec = RunSpec(tmp_path, ReceiverSpec(dst, mode="sr"), [SenderSpec(src, "64K", mode="sr")],
                   data_link=LinkSpec({"loss": "5"}, seed=4),
                   ack_link=LinkSpec({"delay": "0.002"}, seed=5), timeout=90)
    seen = []
    with Transfer(spec) as t:
        ports = t.start(before_senders=seen.append)
        assert seen == [ports] and len(t.senders) == 1
        assert t.wait_senders() and t.wait_receiver(30)
        assert t.stop_emulators() == []
        procs = [*t.senders, t.receiver, *t.emulators]
    assert [p.name for p in t.group.procs] == ["emu-ack", "receiver", "emu-data", "sender"]
    assert all(p.returncode == 0 for p in procs), t.group.describe()
    assert len({ports.link, ports.receiver, ports.ack, ports.ack_link}) == 4
    assert verify(src, dst).ok
    assert (tmp_path / "emu-data.stats.json").exists()  # written on SIGTERM


@pytest.mark.timeout(60)
def test_a_program_that_never_gets_ready_is_named_with_what_it_printed(tmp_path):
    """The first program a run starts (here the receiver, under a 'python'
    that prints a line and hangs) never writes its ready file."""
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho 'stuck before binding' >&2\nexec sleep 30\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    spec = RunSpec(tmp_path, ReceiverSpec(tmp_path / "out"), [SenderSpec(tmp_path / "in", 1)],
                   options=Options(python=str(fake), ready_timeout=1.0))
    with Transfer(spec) as t, pytest.raises(NotReady) as err:
        t.start()
    assert err.value.label == "receiver" and "stuck before binding" in str(err.value)
    assert t.receiver is None and not t.senders  # nothing after it was started
    assert all(p.returncode is not None for p in t.group.procs)  # stopped


@pytest.mark.timeout(60)
def test_a_sender_that_outlives_the_timeout_is_reported_not_killed(tmp_path):
    src = make_file(tmp_path / "in.bin", 2 << 20)
    spec = RunSpec(tmp_path, ReceiverSpec(tmp_path / "out.bin"), [SenderSpec(src, "64K")],
                   data_link=LinkSpec({"rate": "500"}), timeout=0.5)
    with Transfer(spec) as t:
        t.start()
        assert not t.wait_senders()
        assert t.senders[0].poll() is None  # the caller decides what to do
    assert t.senders[0].returncode is not None  # stopped on the way out
