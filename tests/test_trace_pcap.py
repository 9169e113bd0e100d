"""A capture made from a trace after the fact (stcp-analyze TRACE --pcap)
tells what the wire saw (issue 24, item 14).

The sender stamped each segment in its trace after the system call that
sent it, so an ACK of that segment, which the ACK listener traces
meanwhile, could come first: the capture made from the trace then showed
the segment as a retransmission, after an "ACKed segment that wasn't
captured", on a link that lost nothing.  Here a clean transfer's trace is
turned into a capture: every ACK comes after the data it covers (read with
dpkt), and tshark, where installed, flags nothing but window updates.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from support import ROOT, Link, make_file
from test_wire_order import TSHARK, analysis_flags

pytestmark = pytest.mark.timeout(180)


def test_trace_made_capture_of_a_clean_transfer_is_in_wire_order(tmp_path):
    import dpkt

    src = make_file(tmp_path / "in.bin", 3 << 20, seed=14)
    with Link(tmp_path) as link:
        s, r = link.transfer(src, tmp_path / "out.bin", window="1M", data_link=[],
                             # A 1 s minimum RTO: on a loaded machine a stall of
                             # 0.2 s (the default) resent data that was not lost,
                             # which tshark rightly flags.
                             sender_args=["--trace", str(tmp_path / "s.jsonl"),
                                          "--min-rto", "1"])
        assert s.popen.returncode == 0 and r.popen.returncode == 0, link.describe()
    out = tmp_path / "s.pcap"
    p = subprocess.run([sys.executable, "-m", "analysis", str(tmp_path / "s.jsonl"),
                        "--pcap", str(out)], capture_output=True, text=True, cwd=ROOT,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    sent_end = 0  # the highest sequence number (unwrapped from the first) sent so far
    base = None
    late = []
    with open(out, "rb") as f:
        for n, (_, buf) in enumerate(dpkt.pcap.Reader(f), 1):
            ip = dpkt.ip.IP(buf)
            tcp = ip.data
            if ip.src == bytes([10, 0, 0, 1]):  # the sender's side
                if base is None:
                    base = tcp.seq
                syn_fin = 1 if tcp.flags & (dpkt.tcp.TH_SYN | dpkt.tcp.TH_FIN) else 0
                sent_end = max(sent_end, (tcp.seq - base) % (1 << 32) + len(tcp.data) + syn_fin)
            elif base is not None and tcp.flags & dpkt.tcp.TH_ACK:
                if (tcp.ack - base) % (1 << 32) > sent_end:
                    late.append(n)
    assert base is not None and sent_end > 3 << 20
    assert not late, f"ACKs before the data they cover, frames {late[:10]} ({len(late)})"
    if TSHARK is None:
        pytest.skip("no tshark here: its reading of the capture is checked where installed")
    assert analysis_flags(out) == []
