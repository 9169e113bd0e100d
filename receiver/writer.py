"""The receiver's writer thread: in-order bytes to ``FILE.part``, then the check.

It owns the output file, the running SHA-256 and the count of bytes
written.  It takes lists of in-order chunks from the receiver's bounded
queue, writes them (one write and one hash update per list: fewer system
calls, and hashlib lets go of the GIL for large buffers), tells the core
what it wrote under the receiver's lock (the buffer's free room is the
advertised window, so a slow disk throttles the sender by flow control),
starts the disk's write-back of every ``WRITEBACK_BYTES`` written, and at
the FIN flushes, fsyncs, checks the SHA-256 and renames ``FILE.part`` to
``FILE`` only if it matches.
"""

from __future__ import annotations

import errno
import hashlib
import os
import queue
import time

from loguru import logger

from receiver.disk import WRITEBACK_BYTES, Writeback, writeback_starter
from receiver.resume import settle
from runtime import threadtrace

#: The writer's cue: the FIN is in, finish and verify.
FINISH = object()


class Writer:
    """The writer thread's state; ``rx`` is the receiver (its lock, core and sends)."""

    def __init__(self, rx, out):
        self.rx = rx
        self.out = out  # FILE.part, open for writing
        self.hasher = hashlib.sha256()
        self.written = 0  # by this run (receiver/resume.py: after a kept prefix)
        self.kept = 0  # bytes of FILE.part kept from before (--resume)
        self._settled = False
        self.renamed = False  # FILE.part became FILE: complete and verified

    def run(self) -> None:
        rx = self.rx
        out = self.out
        hasher = self.hasher
        delay = rx.cfg.write_delay
        fail_after = rx.cfg.fail_after
        # Each a plain call unless --thread-trace records it (runtime/threadtrace.py).
        writeback = Writeback(threadtrace.syscall(writeback_starter(), "sync_file_range"),
                              WRITEBACK_BYTES)
        write = threadtrace.syscall(out.write, "write", _written)
        flush = threadtrace.syscall(out.flush, "flush")
        slow_disk = threadtrace.syscall(rx.stopping.wait, "write delay")
        watched = rx.tracer is not None or rx.progress is not None
        while True:
            item = rx.queue.get()
            if item is None:
                return
            if not self._settled:
                if not self._settle():
                    return
                hasher = self.hasher
            if item is FINISH:
                self._finish()
                continue
            # One write and one hash update per burst: fewer system calls, and
            # hashlib lets go of the GIL for large buffers.
            data = item[0] if len(item) == 1 else b"".join(item)
            n = len(data)
            try:
                if fail_after is not None and self.written + n > fail_after:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                if delay and slow_disk(delay * len(item)):  # --write-delay: a slow disk
                    return
                write(data)
                hasher.update(data)
                flush()
            except OSError as exc:
                self._write_failed(exc)
                return
            self.written += n
            writeback.written(out.fileno(), self.kept + self.written)
            now = time.monotonic()
            with rx.lock:
                rx.core.on_written(n, now)
                queued = rx.core.unwritten
                outbox = rx.take_outbox()
                # (read by the trace and the progress bar only)
                view = rx.core.view() if watched else None
                events = rx.take_events()
            if rx.tracer is not None:
                rx.tracer.emit(now, "write", bytes=n, queue=queued)
            rx.emit(events)
            rx.send_control(outbox, view)
            if rx.progress is not None:
                rx.progress.update(self.written, total=view.file_size)

    def _settle(self) -> bool:
        """Before the first write: the sender's answer to a resume offer
        says whether FILE.part's prefix stays (receiver/resume.py)."""
        with self.rx.lock:
            at = self.rx.core.resume_at
        self._settled = True
        try:
            self.hasher, self.kept = settle(self.out, getattr(self.rx, "prefix", None), at)
        except OSError as exc:
            self._write_failed(exc)
            return False
        if self.kept:
            logger.info("resumed: {} bytes of {} kept", self.kept, self.rx.part_path)
        return True

    def _write_failed(self, exc: OSError) -> None:
        rx = self.rx
        reason = f"cannot write {rx.part_path}: {exc.strerror or exc}"
        logger.error(reason)
        with rx.lock:
            rx.core.abort(time.monotonic(), reason)
            outbox = rx.take_outbox()
            view = rx.core.view()
            rx.done.notify_all()
        rx.send_control(outbox, view)

    def _finish(self) -> None:
        """The FIN is in: sync, check the SHA-256, rename, tell the core."""
        rx = self.rx
        out = self.out
        try:
            out.flush()
            threadtrace.syscall(os.fsync, "fsync")(out.fileno())
            out.close()
        except OSError as exc:
            self._write_failed(exc)
            return
        with rx.lock:
            expected = rx.core.digest
        ok = self.hasher.digest() == expected
        reason = ""
        replaced = None
        if ok:
            try:
                replaced = rx.commit()
                self.renamed = True
                logger.info("{} complete: {} bytes, SHA-256 {}", rx.cfg.path,
                            self.kept + self.written, expected.hex())
            except OSError as exc:
                ok = False
                reason = f"cannot rename {rx.part_path}: {exc.strerror or exc}"
        else:
            reason = "SHA-256 mismatch: the file arrived damaged"
        if not ok:
            logger.error(reason)
        with rx.lock:
            rx.core.on_verified(ok, time.monotonic(), reason)
            outbox = rx.take_outbox()
            events = rx.take_events()
            view = rx.core.view()
            rx.done.notify_all()
        rx.emit(events)
        rx.send_control(outbox, view)
        rx.wake()  # the FIN timer started: the network thread must know
        if replaced is not None:
            os.close(replaced)  # now the kernel frees the file it replaced


def cue_stop(q: queue.Queue) -> None:
    """Put the writer's stop cue (None) on its bounded queue ``q``, dropping
    what the queue held to make room: the transfer is being abandoned, so
    nothing queued will be written."""
    while True:
        try:
            q.put_nowait(None)
            return
        except queue.Full:
            try:
                q.get_nowait()
            except queue.Empty:
                pass


def queued_size(item) -> tuple[int, int]:
    """The thread trace's depth of one writer-queue item: (segments, bytes)."""
    if isinstance(item, list):
        return len(item), sum(len(chunk) for chunk in item)
    return 0, 0


def _written(args, result) -> dict:
    return {"bytes": len(args[0])}
