"""One connection of the server (receiver/server.py): its core, lock, queue, writer.

Each connection is a small one-shot receiver: a :class:`ReceiverCore` under
its own lock, a bounded queue of in-order chunks, and its own writer thread
(receiver/writer.py, the same one ``stcp-recv`` runs) that writes to a
temporary file in the server's directory and renames it to the connection's
name once the SHA-256 matches.  The server's network thread feeds the core
and never waits for the disk: it hands chunks over with ``put_nowait`` (the
advertised window bounds what is queued, so the queue fills only if the
sender overruns the window; the connection is then reset).  Nothing here is
shared between connections but the socket (sends) and the directory.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from types import SimpleNamespace

from loguru import logger

from common.receiver_core import ReceiverCore
from common.segment import encode
from receiver.writer import Writer, cue_stop
from runtime import threadtrace
from runtime.endpoint import EndpointBase

#: Items (lists of chunks) a connection's queue holds at most.
QUEUE_ITEMS = 4096


@dataclass
class ConnStats:
    """What the server reports of one finished connection."""

    name: str
    peer: str
    bytes: int
    seconds: float
    duplicates: int
    verified: bool
    reason: str


class Connection(EndpointBase):
    """Created by the network thread on an accepted SYN; ``start_writer`` once
    the handshake completes (a forged SYN costs a core, never a file or a thread)."""

    def __init__(self, server, key, name: str, core: ReceiverCore,
                 ack_to: tuple, now: float):
        super().__init__(lock_name=f"core lock {name}")
        self.server = server
        self.key = key
        self.name = name
        self.core = core
        self.ack_to = ack_to
        self.born = now
        self.tracer = None
        self.progress = None
        delay = server.cfg.slow_names.get(name, server.cfg.write_delay)
        self.cfg = SimpleNamespace(path=name, write_delay=delay,
                                   fail_after=None)
        self.queue: queue.Queue = threadtrace.queue(QUEUE_ITEMS, f"writer queue {name}")
        self.stopping = threading.Event()
        self.part_path = ""  # the temporary file's name inside DIR, once opened
        self.thread: threading.Thread | None = None
        self._write: Writer | None = None
        self.fin_queued = False
        self.closed = False  # the network thread let go of it

    # ------------------------------------------------------------ the writer
    def start_writer(self) -> None:
        """Network thread, the handshake is complete: the file and the thread."""
        self.part_path, out = self.server.outdir.open_part()
        self._write = Writer(self, out)
        self.thread = threading.Thread(target=self.guard(self._write.run),
                                       name=f"writer {self.name}"[:40], daemon=True)
        self.thread.start()

    def commit(self) -> None:
        """Writer thread, the SHA-256 matched: the temporary file becomes NAME."""
        self.server.outdir.commit(self.part_path, self.name)

    def hand_over(self, item) -> bool:
        """Network thread: chunks (or the FIN cue) to the writer, never waiting."""
        try:
            self.queue.put_nowait(item)
            return True
        except queue.Full:
            return False

    def close_queue(self) -> None:
        """Network or main thread: the writer's stop cue, whatever the queue held."""
        self.stopping.set()
        cue_stop(self.queue)

    @property
    def renamed(self) -> bool:
        return self._write is not None and self._write.renamed

    @property
    def written(self) -> int:
        return self._write.written if self._write is not None else 0

    def finish(self) -> ConnStats:
        """Main thread, after the network thread let go: join the writer,
        remove the temporary file unless it became NAME, release the name."""
        self.close_queue()
        if self.thread is not None:
            self.thread.join()
        outdir = self.server.outdir
        if self.part_path and not self.renamed:
            outdir.remove(self.part_path)
        outdir.release(self.name)
        core = self.core
        ok = self.renamed  # verified (SHA-256) and renamed: the sender's last ACK may be lost
        reason = "" if ok else (core.error or repr(self.failure))
        return ConnStats(self.name, self.server.peer_text(self.key), self.written,
                         time.monotonic() - self.born, core.stats.duplicates, ok, reason)

    # -------------------------------------------------------- EndpointBase
    def put_on_wire(self, segments: list, view=None) -> None:
        """Send one batch the core queued (EndpointBase.send_control sends
        the batches in the core's order, whichever thread calls it)."""
        self.server.batcher.send_each([encode(seg) for seg in segments], self.ack_to)

    def wake(self) -> None:
        self.server.wake()

    def emit(self, events) -> None:
        for _t, ev, fields in events:
            if ev == "state":
                logger.debug("{}: state {} -> {}", self.name, fields["old"], fields["new"])
