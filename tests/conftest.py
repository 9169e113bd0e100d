"""Shared fixtures: a ``link`` that kills every process it started, and a
deadlock watchdog that dumps every thread's stack if a test hangs."""

from __future__ import annotations

import faulthandler
import sys

import pytest

from support import Link

faulthandler.enable(file=sys.stderr)


@pytest.fixture
def link(tmp_path):
    with Link(tmp_path) as lk:
        yield lk
