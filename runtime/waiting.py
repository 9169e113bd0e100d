"""Saying what a program waits for, and for how long (issue 24, item 7).

A sender with no receiver, or one whose receiver died, used to wait its
whole give-up time without a word.  The cores now report a ``waiting``
event when a wait becomes worth a line (the sender's: each resent SYN, and
each retransmission timeout after a second of silence; the receiver's:
:class:`Silence` below), and :func:`waiting_line` words it for the log.
The same event goes into the trace (docs/TRACE.md).
"""

from __future__ import annotations

#: A receiver says it is still waiting after this much silence, then each
#: time the silence doubles (5, 10, 20, 40 s...).
FIRST_REPORT = 5.0


class Silence:
    """When a wait that began at ``since`` is next worth a line: after
    ``first`` seconds, then each time the wait has doubled.  Times are the
    caller's clock; nothing here reads one."""

    __slots__ = ("first", "since", "next_at")

    def __init__(self, since: float, first: float = FIRST_REPORT):
        self.first = first
        self.since = since
        self.next_at = since + first

    def restart(self, since: float) -> None:
        """The wait began again at ``since`` (something was heard)."""
        if since != self.since:
            self.since = since
            self.next_at = since + self.first

    def due(self, now: float) -> bool:
        """True once per report: ``now`` reached the next one (which moves on)."""
        if now < self.next_at:
            return False
        while self.next_at <= now:
            self.next_at = self.since + 2 * (self.next_at - self.since)
        return True


def _s(seconds: float) -> str:
    return f"{seconds:.1f} s"


def _give_up(fields: dict) -> str:
    left = fields.get("give_up")
    if left is None:
        return ""
    return f"; giving up {_s(max(0.0, left))} from now"


def waiting_line(fields: dict) -> str:
    """The log line of a ``waiting`` event's ``fields``."""
    what = fields.get("what")
    silent = _s(fields["silent"])
    if what == "SYN-ACK":
        return (f"no answer to the SYN after {silent}: sent it again (SYN {fields['try']} "
                f"of at most {fields['tries']}), next in {_s(fields['next'])}"
                + _give_up(fields) + "; is the receiver running?")
    if what == "ACK":
        return (f"nothing heard from the receiver for {silent}: resending, next "
                f"timeout in {_s(fields['next'])}" + _give_up(fields))
    if what == "SYN":
        left = fields.get("give_up")
        return (f"still waiting for a sender's SYN after {silent}"
                + (f"; giving up {_s(max(0.0, left))} from now" if left is not None
                   else " (no time limit; --listen-timeout sets one)"))
    return f"nothing heard from the sender for {silent}" + _give_up(fields)


def receiver_wait(silence: Silence, now: float, listening: bool, since: float,
                  give_up_at: float | None) -> tuple | None:
    """Under the receiver's lock: a ``waiting`` event (t, ev, fields) if one
    is due now, else None.  ``listening``: waiting for a SYN since ``since``
    (the start); otherwise for the sender, last heard at ``since``.
    ``give_up_at``: when the wait ends (None: never)."""
    silence.restart(since)
    if not silence.due(now):
        return None
    return (now, "waiting", {"what": "SYN" if listening else "data", "silent": now - since,
                             "give_up": None if give_up_at is None else give_up_at - now})
