"""The receivers' ``--delayed-ack`` option (stcp-recv and stcp-serve)."""

from __future__ import annotations

import argparse

from common.ackclock import DELAYED_ACK
from runtime import progutil as pu


def _delayed_ack(text: str) -> float | None:
    """--delayed-ack: 0 (None: off) or a time under RFC 9293's 0.5 s."""
    value = pu.nonneg_float(text)
    if value >= 0.5:
        raise argparse.ArgumentTypeError(f"{text} s is too long (RFC 9293: under 0.5 s)")
    return value or None


def add_delayed_ack_option(p: argparse.ArgumentParser) -> None:
    """The delayed-ACK timer, stcp-recv's and stcp-serve's."""
    p.add_argument("--delayed-ack", type=_delayed_ack, default=DELAYED_ACK, metavar="SECONDS",
                   help=f"how long the ACK of a lone in-order segment may wait for a second "
                        f"segment (default {DELAYED_ACK:g}, RFC 5681 section 4.2; out-of-order "
                        f"data is acknowledged at once); 0: at the end of each burst read "
                        f"from the socket, which through a slow link means every segment")

