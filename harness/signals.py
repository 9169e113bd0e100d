"""Signals to a launcher: SIGINT, SIGTERM and SIGHUP become an exception in
the main thread, so that its ``finally`` stops every child; never in the
middle of starting one (:func:`deferred`), where a child would run without
the launcher knowing it.

Once: a second signal must not break off the clean-up the first one started.
"""

from __future__ import annotations

import signal
from contextlib import contextmanager

#: What a launcher exits with after each signal (128 + its number).
EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGHUP: 129}
HANDLED = tuple(EXIT_CODES)


class Interrupted(BaseException):
    """A signal asked the launcher to stop (a BaseException, as KeyboardInterrupt)."""

    def __init__(self, signum: int):
        self.signum = signum
        self.name = signal.Signals(signum).name
        self.exit_code = EXIT_CODES.get(signum, 128 + signum)
        super().__init__(self.name)


class _State:
    make = Interrupted      # what the handler raises, given the signal number
    got: int | None = None  # the first signal, once it came
    raised = False
    deferring = 0


_state = _State()


def _handler(signum, frame) -> None:
    if _state.got is not None:
        return
    _state.got = signum
    if not _state.deferring:
        _state.raised = True
        raise _state.make(signum)


class deferred:  # lower case: it reads as `with deferred():`
    """A section a signal must not cut in two: it is raised at the end instead."""

    def __enter__(self) -> None:
        _state.deferring += 1

    def __exit__(self, *exc) -> None:
        _state.deferring -= 1
        if not _state.deferring and _state.got is not None and not _state.raised:
            _state.raised = True
            raise _state.make(_state.got)


@contextmanager
def installed(signums=HANDLED, make=Interrupted):
    """``make(signum)`` is raised in the main thread on the first of
    ``signums``; the former handlers come back on the way out."""
    _state.make, _state.got, _state.raised = make, None, False
    old = {s: signal.signal(s, _handler) for s in signums}
    try:
        yield
    finally:
        _state.raised, _state.got = True, _state.got or -1  # no more raising from here
        for s, h in old.items():
            signal.signal(s, h)


def install(signums, make) -> None:
    """As :func:`installed`, for the whole life of the process (pytest's conftest)."""
    _state.make, _state.got, _state.raised = make, None, False
    for s in signums:
        signal.signal(s, _handler)
