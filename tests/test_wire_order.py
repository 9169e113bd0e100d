"""Sequence numbers never go backwards on a clean link (issue 24, item 2).

Both ends' pcaps of a transfer through an emulator that changes nothing are
read by tshark with its TCP sequence analysis on: not one packet may carry an
analysis flag (retransmission, "previous segment not captured", out of
order...).  A window update is the one flag a clean link may legitimately
show (the writer freed room), so it alone is allowed.  Skipped where tshark
is not installed.

The receiver used to send its last pure ACK numbered ISN + 2 before its FIN
numbered ISN + 1, and tshark flagged both in every run; and each end wrote
a segment it sent into its pcap after sending it, so that the answer to it,
which another thread records, could come first ("ACKed segment that wasn't
captured", then "spurious retransmission" for the late record).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from support import Link, make_file

from common.receiver_core import ReceiverCore, ReceiverState
from common.segment import ACK, FIN, SYN, Segment

pytestmark = pytest.mark.timeout(120)

TSHARK = shutil.which("tshark")
MSS = 1452


def analysis_flags(pcap: Path) -> list[str]:
    """Each packet of ``pcap`` tshark flags (not window updates), one line each."""
    cmd = [TSHARK, "-n", "-r", str(pcap), "-o", "tcp.analyze_sequence_numbers:TRUE",
           "-o", "tcp.relative_sequence_numbers:FALSE",
           "-Y", "tcp.analysis.flags && !tcp.analysis.window_update",
           "-T", "fields", "-e", "frame.number", "-e", "tcp.seq", "-e", "tcp.ack",
           "-e", "tcp.flags.str", "-e", "_ws.expert.message"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return [line for line in p.stdout.splitlines() if line.strip()]


@pytest.mark.skipif(TSHARK is None, reason="tshark is not installed")
@pytest.mark.parametrize("mode", ["sr", "gbn"])
def test_clean_link_has_no_tshark_analysis_flags(tmp_path, mode):
    src = make_file(tmp_path / "in.bin", 200 * MSS + 17, seed=24)
    dst = tmp_path / "out.bin"
    with Link(tmp_path) as link:
        s, r = link.transfer(
            src, dst, window="64K", data_link=[], ack_link=[],
            # (RFC 6298's 1 s minimum RTO: on a busy machine the receiver's
            # fsync and SHA-256 before it acknowledges the FIN can outlast
            # the default 200 ms, and the FIN is then rightly resent)
            sender_args=["--mode", mode, "--min-rto", "1",
                         "--pcap", str(tmp_path / "sender.pcap")],
            receiver_args=["--mode", mode, "--pcap", str(tmp_path / "receiver.pcap")])
        assert (s.popen.returncode, r.popen.returncode) == (0, 0), link.describe()
    assert dst.read_bytes() == src.read_bytes()
    for side in ("sender", "receiver"):
        flagged = analysis_flags(tmp_path / f"{side}.pcap")
        assert not flagged, f"{side}.pcap:\n" + "\n".join(flagged)


def _closing_receiver():
    """A receiver core that took a whole 10-byte file and its FIN."""
    r = ReceiverCore(isn=1000, mss=MSS)
    r.on_segment(Segment(seq=5000, ack=0, flags=SYN, window=65535, mss=MSS, file_size=10), 0.0)
    r.on_segment(Segment(seq=5001, ack=1001, flags=ACK, window=65535), 0.01)
    r.on_segment(Segment(seq=5001, ack=1001, flags=ACK, window=65535, payload=b"x" * 10), 0.02)
    r.on_segment(Segment(seq=5011, ack=1001, flags=FIN | ACK, window=65535, digest=b"d" * 32),
                 0.03)
    return r


def test_ack_before_fin_is_numbered_before_it():
    """The ACK that goes with the FIN carries the FIN's own number (ISN + 1),
    not the one after it; segments after the FIN carry ISN + 2."""
    r = _closing_receiver()
    r.outbox.clear()
    r.on_verified(True, 0.04)
    assert r.state == ReceiverState.LAST_ACK
    ack, fin = r.outbox
    assert fin.flags & FIN and not ack.flags & FIN
    assert (ack.seq, fin.seq) == (1001, 1001)
    assert ack.ack == fin.ack == 5012
    r.outbox.clear()
    r.on_segment(Segment(seq=5011, ack=1001, flags=FIN | ACK, window=65535,
                         digest=b"d" * 32), 0.05)
    # the sender's FIN again: our FIN again (it acknowledges theirs too), and
    # nothing numbered ISN + 2 ahead of it
    assert [(s.seq, s.flags & FIN) for s in r.outbox] == [(1001, FIN)]
    assert r.make_ack(0.06).seq == 1002
