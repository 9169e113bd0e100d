"""One of the benchmark's runs of our programs: the ACK port it picks for the
sender can be bound by another process before the sender starts; the run is
then made again with another port, a few times at most (the harness's
run_with_ports, which bench.runs.run_ours goes through)."""

from __future__ import annotations

import os
import socket

import pytest

from bench import runs
from harness import transfer
from harness.procs import HOST

pytestmark = pytest.mark.timeout(120)


def _picks(monkeypatch, taken: int, times: int) -> list[int]:
    """The harness picks ``taken`` as the ACK port ``times`` times, then free ports."""
    given: list[int] = []
    real = transfer.free_udp_port

    def pick(host: str) -> int:
        port = taken if len(given) < times else real(host)
        given.append(port)
        return port

    monkeypatch.setattr(transfer, "free_udp_port", pick)
    return given


def _file(tmp_path, size: int = 100_000):
    f = tmp_path / "in.bin"
    f.write_bytes(os.urandom(size))
    work = tmp_path / "work"
    work.mkdir()
    return f, work


def test_a_taken_ack_port_is_picked_again(tmp_path, monkeypatch):
    f, work = _file(tmp_path)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as held:
        held.bind((HOST, 0))
        taken = held.getsockname()[1]
        given = _picks(monkeypatch, taken, 1)
        res = runs.run_ours(work, f, "sr", 256 * 1024, timeout=60)
    assert given[0] == taken and len(given) == 2 and given[1] != taken
    assert res.ok and res.bytes == f.stat().st_size


def test_a_port_taken_every_time_is_reported(tmp_path, monkeypatch):
    f, work = _file(tmp_path)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as held:
        held.bind((HOST, 0))
        taken = held.getsockname()[1]
        given = _picks(monkeypatch, taken, runs.PORT_ATTEMPTS)
        with pytest.raises(runs.PortTaken, match=str(taken)):
            runs.run_ours(work, f, "sr", 256 * 1024, timeout=60)
    assert given == [taken] * runs.PORT_ATTEMPTS


def test_section_ones_burst_acks_contender_runs_the_receiver_with_its_flags(tmp_path):
    """``sr-burst`` (bench.suite.BURST_ACKS): the same sr transfer with the
    receiver's ACK flags; the run is named for it and the flags reach the
    receiver's command line (a flag it refused would fail the run)."""
    from bench.suite import BURST_ACKS

    f, work = _file(tmp_path)
    spec = runs._spec(work, f, work / "out.bin", "sr", 256 * 1024, data_link=None,
                      ack_link=None, buffer="8M", seed=1, timeout=60, sender_prefix=None,
                      receiver_prefix=None, cpus=None, receiver_args=BURST_ACKS)
    assert spec.receiver.args == ["--ack-every", "0", "--delayed-ack", "0"]
    res = runs.run_ours(work, f, "sr", 256 * 1024, timeout=60, receiver_args=BURST_ACKS,
                        name="ours-sr-burst")
    assert res.ok and res.bytes == f.stat().st_size and res.name == "ours-sr-burst"
