"""runtime/wakeup.py: the receivers' network threads sleep on the socket, a
deadline and a self-pipe (no timing asserted: each wait would otherwise block
until pytest-timeout)."""

import socket
import threading
import time

import pytest

from runtime.wakeup import Wakeup


@pytest.fixture
def sock():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    yield s
    s.close()


@pytest.mark.timeout(10)
def test_a_wake_from_another_thread_ends_a_sleep_without_deadline(sock):
    w = Wakeup()
    sleep = w.sleeper(sock)
    t = threading.Thread(target=w.wake)
    t.start()
    sleep(None)  # returns only because of the wake
    t.join()
    w.close()


@pytest.mark.timeout(10)
def test_the_wake_is_consumed_so_the_next_sleep_waits_for_its_deadline(sock):
    w = Wakeup()
    sleep = w.sleeper(sock)
    w.wake()
    w.wake()
    sleep(None)
    before = time.monotonic()
    sleep(before + 0.05)  # no byte left in the pipe: only the deadline ends it
    assert time.monotonic() >= before + 0.05
    w.close()


@pytest.mark.timeout(10)
def test_a_datagram_ends_a_sleep(sock):
    w = Wakeup()
    sleep = w.sleeper(sock)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        tx.sendto(b"x", sock.getsockname())
    sleep(None)
    assert sock.recv(16) == b"x"
    w.close()


@pytest.mark.timeout(10)
def test_a_full_pipe_never_blocks_a_waker_and_one_sleep_empties_it(sock):
    """100,000 wakes fill the pipe (64 KiB on Linux) without blocking the
    waking thread; the sleep they end takes them all, so the next sleep
    waits for its deadline again."""
    w = Wakeup()
    sleep = w.sleeper(sock)
    for _ in range(100_000):
        w.wake()
    sleep(None)
    before = time.monotonic()
    sleep(before + 0.05)
    assert time.monotonic() >= before + 0.05
    w.close()
