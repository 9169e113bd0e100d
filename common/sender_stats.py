"""The sender's counters, for its summary and the trace's ``summary`` event."""

from __future__ import annotations


class Stats:
    """The sender's counters for the summary; plain attributes, read after the run."""

    __slots__ = ("data_segments", "rexmit_timeout", "rexmit_fast", "rexmit_sack",
                 "rexmit_rack", "rexmit_tlp", "timeouts", "dupacks", "acks_received",
                 "segments_received", "probes", "sacked_bytes", "dsacks")

    def __init__(self):
        for name in self.__slots__:
            setattr(self, name, 0)

    @property
    def retransmissions(self) -> int:
        """Segments resent, whatever the cause."""
        return (self.rexmit_timeout + self.rexmit_fast + self.rexmit_sack + self.rexmit_rack
                + self.rexmit_tlp)

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}
