"""Shared fixtures: a ``link`` that kills every process it started, and a
deadlock watchdog that dumps every thread's stack if a test hangs.

SIGTERM (a CI time limit, ``kill``) ends the run as Ctrl-C does: pytest then
runs every fixture's teardown, so the senders, receivers and emulators the
tests started are killed too.  Left to its default, SIGTERM ends pytest at
once and leaves them running.  The harness's handler (harness/signals.py)
holds the KeyboardInterrupt back while a process is being started, so that
none starts unknown to its Link."""

from __future__ import annotations

import faulthandler
import signal
import sys

import pytest
from support import Link

from harness import signals

faulthandler.enable(file=sys.stderr)

signals.install([signal.SIGTERM], lambda signum: KeyboardInterrupt(f"signal {signum}"))


@pytest.fixture
def link(tmp_path):
    with Link(tmp_path) as lk:
        yield lk
