"""The programs say what they wait for and how long (issue 24, item 7).

A sender with no receiver, or whose receiver died mid-run, used to wait
its whole give-up time (30 s) without a word, and so did a receiver
waiting for a SYN.  Now: a line at each resent SYN; one at each
retransmission timeout once the receiver has been silent for a second; and
the receiver's "still waiting" after 5 s of silence, then each time the
silence doubles.  Cores on a fake clock, then the programs themselves.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys

import pytest
from support import free_udp_port
from test_sender_core import Harness

from common.sender_core import QUIET_REPORT, SenderState
from runtime.waiting import FIRST_REPORT, Silence, receiver_wait, waiting_line

pytestmark = pytest.mark.timeout(60)


def waits(h: Harness) -> list[dict]:
    out = [f for _, ev, f in h.s.events if ev == "waiting"]
    h.s.events.clear()
    return out


def test_every_resent_syn_says_so_with_its_next_wait():
    h = Harness(give_up=30.0, retries=5)
    h.s.start(h.now)
    h.s.take(h.now)
    seen = []
    while h.s.state == SenderState.SYN_SENT:
        h.fire()
        h.s.take(h.now)
        seen += waits(h)
    assert "no answer to 6 SYNs" in h.s.error
    # five resent SYNs, each said; the sixth timeout gives up
    assert [w["try"] for w in seen] == [2, 3, 4, 5, 6]
    assert {w["tries"] for w in seen} == {6}
    # RFC 6298 backoff from the initial 1 s, the timers capped at 30/8 s
    assert [round(w["next"], 6) for w in seen] == [2.0, 3.75, 3.75, 3.75, 3.75]
    assert [round(w["silent"], 6) for w in seen] == [1.0, 3.0, 6.75, 10.5, 14.25]
    for w in seen:
        assert w["give_up"] == pytest.approx(30.0 - w["silent"])
    assert waiting_line(seen[0]) == (
        "no answer to the SYN after 1.0 s: sent it again (SYN 2 of at most 6), next "
        "in 2.0 s; giving up 29.0 s from now; is the receiver running?")


def test_a_receiver_gone_mid_transfer_is_reported_at_each_timeout():
    h = Harness(size=5000, give_up=30.0, retries=50)
    h.open()
    h.take(eof=True)
    waits(h)
    said = []
    while h.s.state not in (SenderState.ABORTED, SenderState.DONE):
        h.fire()
        h.take()
        said += [(round(h.now - 0.05, 6), w) for w in waits(h)]
    assert "nothing heard" in h.s.error
    # nothing said before a second of silence; then at every expiry
    assert said and all(w["silent"] >= QUIET_REPORT for _, w in said)
    assert said[0][1]["silent"] < 2 * QUIET_REPORT + 3.75
    nexts = [w["next"] for _, w in said]
    assert nexts == sorted(nexts) and nexts[-1] == pytest.approx(3.75)
    line = waiting_line(said[0][1])
    assert line.startswith("nothing heard from the receiver for ")
    assert ": resending, next timeout in " in line and "giving up" in line


def test_an_answering_receiver_is_never_reported():
    """Timeouts while ACKs still come (the first segment lost again and
    again, duplicate ACKs every 100 ms): nothing to say."""
    h = Harness(size=3000, give_up=30.0)
    h.open()
    h.take(eof=True)
    waits(h)
    start = h.s.stats.timeouts
    for _ in range(100):
        h.advance(0.1)
        h.feed(h.rx.ack(0))
        h.s.on_timer(h.now)
        h.take()
        assert waits(h) == []
    assert h.s.stats.timeouts - start >= 3  # the timer did fire, backed off


def test_silence_reports_double():
    s = Silence(10.0)
    at = [t for t in range(10, 60) if s.due(float(t))]
    assert at == [10 + FIRST_REPORT * k for k in (1, 2, 4, 8)]
    s.restart(50.0)  # heard something
    assert not s.due(54.0) and s.due(55.0)


def test_receiver_wait_lines():
    s = Silence(0.0)
    assert receiver_wait(s, 4.9, True, 0.0, None) is None
    (_, ev, f) = receiver_wait(s, 5.0, True, 0.0, None)
    assert ev == "waiting" and waiting_line(f) == (
        "still waiting for a sender's SYN after 5.0 s (no time limit; --listen-timeout "
        "sets one)")
    s = Silence(0.0)
    (_, _, f) = receiver_wait(s, 7.0, False, 2.0, 32.0)
    assert waiting_line(f) == "nothing heard from the sender for 5.0 s; giving up 25.0 s from now"


def test_programs_say_it(tmp_path):
    """stcp-send with nobody listening, stcp-recv with nobody sending."""
    src = tmp_path / "in.bin"
    src.write_bytes(b"x" * 1000)
    port = free_udp_port()  # (below the ephemeral range: no bind to port 0 takes it)
    send = subprocess.run(
        [sys.executable, "-m", "sender", str(src), "127.0.0.1", str(port), "4K", "0",
         "--give-up", "4"], capture_output=True, text=True, timeout=30)
    assert send.returncode == 1, send.stderr
    # --give-up 4 caps the timers at 0.5 s (an eighth); a busy machine may
    # wake the timer a little late
    assert re.search(r"no answer to the SYN after 0\.\d s: sent it again \(SYN 2 of at "
                     r"most 11\), next in 0\.5 s; giving up 3\.\d s from now", send.stderr)
    recv = subprocess.run(
        [sys.executable, "-m", "receiver", str(tmp_path / "out.bin"), "0", "127.0.0.1",
         str(port), "--listen-timeout", "6"], capture_output=True, text=True, timeout=30)
    assert recv.returncode == 1, recv.stderr
    assert "waiting for a sender's SYN (for up to 6 s)" in recv.stderr
    assert re.search(r"still waiting for a sender's SYN after 5\.\d s; giving up \d\.\d s "
                     r"from now", recv.stderr)


def test_stcp_recv_says_each_waiting_line_once(tmp_path):
    """The receiver's network thread, driven by hand in LISTEN: its first
    turn after five silent seconds reports the wait; the next turn, no new
    silence threshold passed, reports nothing (the line once went into the
    core's own event list as well, and came out again a turn later)."""
    import time

    from receiver.app import Receiver, ReceiverConfig

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    r = Receiver(ReceiverConfig(path=str(tmp_path / "out.bin"), listen_port=0,
                                ack_to=("127.0.0.1", 9)), sock, isn=1)
    try:
        r.started = time.monotonic() - FIRST_REPORT - 0.5
        r._silence = Silence(r.started)  # (what _network sets before its loop)
        events = r._feed([], None)[5]
        assert [ev for _t, ev, _f in events] == ["waiting"]
        assert r._feed([], None)[5] == []
    finally:
        r._wakeup.close()
        sock.close()
