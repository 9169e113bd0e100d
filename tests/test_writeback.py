"""The receiver's disk handling: the early write-back (ranges asked for in
order, and the Linux call behind it accepted by the kernel on a real file),
and the file a verified one replaces (--force), held open across the rename
so that freeing it waits until after the FIN-ACK."""

from __future__ import annotations

import os
import sys

import pytest

from receiver.disk import WRITEBACK_BYTES, Writeback
from receiver.disk import hold_replaced as _hold_replaced
from receiver.disk import writeback_starter as _writeback_starter


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


def test_the_replaced_file_outlives_the_rename_while_held(tmp_path):
    dest = tmp_path / "out.bin"
    dest.write_bytes(b"old" * 1000)
    part = tmp_path / "out.bin.part"
    part.write_bytes(b"new")
    fd = _hold_replaced(str(dest))
    assert fd is not None
    try:
        os.replace(part, dest)
        assert dest.read_bytes() == b"new"
        assert os.fstat(fd).st_nlink == 0  # unlinked, not yet freed
        assert os.pread(fd, 3, 0) == b"old"
    finally:
        os.close(fd)


def test_only_a_regular_file_is_held(tmp_path):
    assert _hold_replaced(str(tmp_path / "missing")) is None
    assert _hold_replaced(str(tmp_path)) is None  # a directory
    target = tmp_path / "target.bin"
    target.write_bytes(b"x")
    link = tmp_path / "link.bin"
    link.symlink_to(target)
    assert _hold_replaced(str(link)) is None  # the rename replaces the link itself
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert _hold_replaced(str(fifo)) is None  # and opening it would wait for a writer


def test_the_writers_stop_cue_goes_on_a_full_queue_in_place_of_what_it_held():
    import queue

    from receiver.writer import cue_stop

    q = queue.Queue(maxsize=3)
    for k in range(3):
        q.put(k)
    cue_stop(q)
    items = [q.get_nowait() for _ in range(q.qsize())]
    assert items[-1] is None and items[:-1] == [1, 2]
    empty = queue.Queue(maxsize=2)
    cue_stop(empty)
    assert empty.get_nowait() is None and empty.empty()
