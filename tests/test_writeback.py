"""The receiver's early write-back: ranges asked for in order, and the Linux
call behind it accepted by the kernel on a real file."""

from __future__ import annotations

import os
import sys

import pytest

from receiver.app import WRITEBACK_BYTES, Writeback, _writeback_starter


def test_writeback_asks_for_each_range_once_in_order():
    calls = []
    wb = Writeback(lambda fd, off, n: calls.append((fd, off, n)), every=100)
    for total in (40, 99, 100, 150, 260, 261, 400):
        wb.written(7, total)
    assert calls == [(7, 0, 100), (7, 100, 160), (7, 260, 140)]
    assert wb.started_to == 400


def test_writeback_without_a_starter_does_nothing():
    wb = Writeback(None, every=1)
    wb.written(3, 10**9)
    assert wb.started_to == 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sync_file_range is Linux's")
def test_sync_file_range_is_accepted_on_a_real_file(tmp_path):
    start = _writeback_starter()
    assert start is not None
    path = tmp_path / "f.bin"
    data = os.urandom(WRITEBACK_BYTES + 12345)
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        assert start(f.fileno(), 0, len(data)) == 0
        assert start(-1, 0, 1) == -1  # a bad descriptor is refused, not ignored
    assert path.read_bytes() == data
