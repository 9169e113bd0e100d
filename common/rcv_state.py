"""The receiver's connection states, the copy of them other threads read,
and its statistics (shared by :mod:`common.receiver_core` and its parts,
:mod:`common.rcv_acks` and :mod:`common.rcv_handshake`)."""

from __future__ import annotations

from enum import Enum
from typing import NamedTuple


class ReceiverState(Enum):
    LISTEN = "LISTEN"
    SYN_RECEIVED = "SYN_RECEIVED"
    ESTABLISHED = "ESTABLISHED"
    CLOSE_WAIT = "CLOSE_WAIT"  # the FIN is in: the writer is finishing and verifying
    LAST_ACK = "LAST_ACK"
    DONE = "DONE"
    ABORTED = "ABORTED"


FINAL_STATES = (ReceiverState.DONE, ReceiverState.ABORTED)


class ReceiverView(NamedTuple):
    """What a thread may read of the core outside the lock: a copy, taken under it."""

    state: ReceiverState
    base: int  # the peer's wire number of stream offset 0
    rcv_nxt: int
    file_size: int | None


class Stats:
    __slots__ = ("segments_received", "bytes_received", "data_segments", "in_order",
                 "out_of_order", "duplicates", "out_of_window", "acks_sent",
                 "window_updates", "zero_windows", "fin_rexmits", "bytes_delivered")

    def __init__(self):
        for name in self.__slots__:
            setattr(self, name, 0)

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}
