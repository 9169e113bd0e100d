"""Proportional Rate Reduction (RFC 6937): how much may go per ACK in recovery.

Recovery starts with ``RecoverFS`` bytes in flight and must bring the pipe
down to ``ssthresh``.  While the pipe is above ssthresh, PRR lets out
``ssthresh / RecoverFS`` of what the ACKs report delivered; once it is at or
below, the slow-start reduction bound (PRR-SSRB) lets the pipe grow back to
ssthresh by at most what was delivered plus one MSS per ACK.  ``prr_out``
counts everything sent in recovery, resends included."""

from __future__ import annotations


class Prr:
    __slots__ = ("ssthresh", "recover_fs", "delivered", "out", "mss")

    def __init__(self, ssthresh: int, recover_fs: int, mss: int):
        self.ssthresh = ssthresh
        self.recover_fs = max(recover_fs, 1)
        self.mss = mss
        self.delivered = 0  # prr_delivered
        self.out = 0  # prr_out

    def on_sent(self, nbytes: int) -> None:
        self.out += nbytes

    def sndcnt(self, delivered: int, pipe: int) -> int:
        """RFC 6937 §3.1 for one ACK (or the ACKs read together) that
        delivered ``delivered`` bytes and left ``pipe``: bytes that may go."""
        self.delivered += delivered
        if pipe > self.ssthresh:
            # CEIL(prr_delivered * ssthresh / RecoverFS) - prr_out
            allowed = -(-self.delivered * self.ssthresh // self.recover_fs) - self.out
        else:
            limit = max(self.delivered - self.out, delivered) + self.mss
            allowed = min(self.ssthresh - pipe, limit)
        return max(allowed, 0)
