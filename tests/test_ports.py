"""harness/ports.py: the ACK port launchers pick for the sender is free and
lies below the kernel's ephemeral range, where binds to port 0 never land."""

from __future__ import annotations

import socket

import pytest

from harness import ports

HOST = "127.0.0.1"


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
        return True


def test_the_ephemeral_range_is_read(tmp_path):
    f = tmp_path / "range"
    f.write_text("40000\t60999\n")
    assert ports.ephemeral_low(str(f)) == 40000
    assert ports.ephemeral_low(str(tmp_path / "missing")) is None
    f.write_text("garbage\n")
    assert ports.ephemeral_low(str(f)) is None


@pytest.mark.skipif(not (ports.ephemeral_low() or 0) > ports.LOWEST,
                    reason="no ephemeral range known here, or none above the lowest pick")
def test_the_port_is_free_and_below_the_ephemeral_range():
    low = ports.ephemeral_low()
    for _ in range(20):
        port = ports.spare_udp_port(HOST)
        assert ports.LOWEST <= port < low
        assert _bindable(port)


def test_a_taken_pick_is_passed_over(monkeypatch):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as held:
        held.bind((HOST, 0))
        taken = held.getsockname()[1]
        picks = iter([taken, taken])
        monkeypatch.setattr(ports.random, "randrange", lambda a, b: next(picks, a + 1234))
        port = ports.spare_udp_port(HOST, low=ports.LOWEST + 5000)
    assert port == ports.LOWEST + 1234


def test_without_room_below_the_range_the_kernel_picks():
    port = ports.spare_udp_port(HOST, low=1024)
    assert port > 0 and _bindable(port)
