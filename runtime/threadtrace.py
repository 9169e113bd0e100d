"""Thread traces: what each thread of a program did, and when, for
``--thread-trace FILE`` (the Chrome trace-event JSON that Perfetto UI and
chrome://tracing open).

One factory makes the program's locks, conditions and queues.  Which kind it
makes is decided once, at start (:func:`enable` before the program builds its
objects): while tracing is off, :func:`lock` returns a plain
``threading.Lock``, :func:`condition` a plain ``threading.Condition`` and
:func:`queue` a plain ``queue.Queue``, and :func:`syscall` and :func:`socket`
return what they are given, so the hot path runs exactly the code it ran
before.  While it is on they return recording wrappers.

What a wrapper records, into the buffer of the thread that does it (no
lock is shared for tracing: each thread appends to its own ``deque``):

* a **hold** of a lock: from the moment a thread has it (an acquire, or its
  return from a condition wait) to the moment it lets it go (a release, or
  the start of a condition wait);
* a **blocked acquire**: a thread that found the lock taken, from its
  attempt until it got the lock, with the name of the thread that held it
  when the attempt began;
* a **condition wait**: from the wait's start (the lock let go) to its wake
  (notified, or its timeout ran out), with its outcome.  The outcome needs
  the predicate, which the program's wait loop evaluates after the wait.  A
  wait loop (``while not ready: cond.wait()``) either leaves the lock after
  a wake (its predicate held) or waits again before leaving it (it did not);
  the wrapper watches which happens first, so the loops stay as they are:

  - ``notified``: woken by a notify, and the thread left the lock next;
  - ``spurious``: woken by a notify, but it waited again without leaving
    the lock: the predicate was false again (nothing to do);
  - ``timeout``: the wait's timeout ran out (``predicate`` says whether the
    deadline brought work);
  - ``interrupted``: a signal's exception broke the wait (main thread);
* a **system call** (socket send or receive, poll, disk write, fsync): its
  span, with counts and bytes where they apply;
* **counters** (pipe, windows, queue depths) and **instants** (a
  retransmission and its cause, the RTO firing, a zero window, a probe),
  from the program's hooks (``runtime/threadhooks.py``).

Memory is bounded: each thread's buffer is a ring of the newest
``limit`` events (default :data:`DEFAULT_EVENTS`); the file says, per
thread, how many older events the ring let go.  The buffers are merged and
written when the program ends (:meth:`Recorder.write`, called from the
program's exit path, so also after SIGINT or a failure).

Times are ``time.monotonic_ns()``, the clock of the programs' JSON-lines
traces, so the two line up; in the file, ``ts`` and ``dur`` are
microseconds of that clock.

How a program uses it (``sender/``, ``receiver/``; a server the same way):
``__main__`` calls ``runtime.progutil.open_thread_trace`` before it builds
anything (that enables recording and writes the file when the program
ends); every lock, condition and queue comes from :func:`lock`,
:func:`condition` and :func:`queue`, named as a reader should see it (a
server names each connection's: ``EndpointBase(lock_name=...)``); a
system call a thread makes outside a socket goes through :func:`syscall`;
and ``runtime.threadhooks.attach(endpoint)`` adds the socket, the core's
counters and the retransmission marks.  Threads are named
(``threading.Thread(name=...)``): the name is the track's.
"""

from __future__ import annotations

import os
import queue as _queue
import threading
import time
from collections import deque

#: Events kept per thread (a ring: the newest are kept).
DEFAULT_EVENTS = 100_000

_now = time.monotonic_ns
_active: Recorder | None = None


def enable(path: str, role: str, limit: int = DEFAULT_EVENTS) -> Recorder:
    """Start recording, before the program makes its locks; opens ``path``
    for writing now (an OSError says it cannot be written)."""
    global _active
    _active = Recorder(path, role, limit)
    return _active


def disable() -> None:
    """Stop handing out recording wrappers (tests; a program never turns
    tracing off once its objects exist)."""
    global _active
    _active = None


def active() -> Recorder | None:
    return _active


# ------------------------------------------------------------ the factory
def lock(name: str):
    """The lock called ``name``: plain when tracing is off."""
    if _active is None:
        return threading.Lock()
    return TracedLock(name, _active)


def condition(lk, name: str):
    """A condition on ``lk`` (made by :func:`lock`), called ``name``."""
    if isinstance(lk, TracedLock):
        return TracedCondition(lk, name)
    return threading.Condition(lk)


def queue(maxsize: int, name: str, measure=None):
    """A ``queue.Queue``; traced, its lock and conditions are named after
    ``name``, and each put and get records the depth as counters: items
    (or ``measure(item)`` -> (segments, bytes), when given)."""
    if _active is None:
        return _queue.Queue(maxsize)
    return TracedQueue(maxsize, name, _active, measure)


def syscall(fn, name: str, describe=None):
    """``fn`` (a function that enters the kernel), recorded as ``name`` when
    tracing is on; ``describe(args, result)`` gives the event's args.  None
    stays None."""
    if _active is None or fn is None:
        return fn
    return _traced_call(fn, name, describe, _active)


def socket(sock):
    """``sock`` itself, or a proxy that records each send and receive."""
    if _active is None:
        return sock
    from .threadsock import TracedSocket

    return TracedSocket(sock, _active)


# ------------------------------------------------------------ the buffers
class Buffer:
    """One thread's events: a ring, appended to by that thread alone."""

    __slots__ = ("name", "tid", "events", "n", "pending", "wait_cond", "wait_start")

    def __init__(self, limit: int):
        th = threading.current_thread()
        self.name = th.name
        self.tid = threading.get_native_id()
        self.events: deque = deque(maxlen=limit)
        self.n = 0  # events ever recorded (the ring keeps the newest)
        # A condition wait whose outcome waits for what the thread does next:
        # [condition, lock, start, wake, how it woke, timeout].
        self.pending: list | None = None
        self.wait_cond: str | None = None  # set by TracedCondition.wait
        self.wait_start = 0

    def add(self, event: tuple) -> None:
        self.events.append(event)
        self.n += 1

    def settle(self, predicate: bool | None) -> None:
        """The pending wait's outcome, now that its predicate is known."""
        cond, lk, start, wake, woke, timeout = self.pending
        self.pending = None
        if woke == "notified" and predicate is False:
            woke = "spurious"
        self.add(("W", cond, lk.name, start, wake, woke or "unknown", predicate, timeout))


class _Local(threading.local):
    buf: Buffer | None = None


class Recorder:
    """The buffers of one process and the file they go to."""

    def __init__(self, path: str, role: str, limit: int = DEFAULT_EVENTS):
        if limit < 1:
            raise ValueError("the thread trace must keep at least one event per thread")
        self.path = path
        self.role = role
        self.limit = limit
        self.buffers: list[Buffer] = []
        self.local = _Local()
        self.written = False
        # Written as FILE.part and renamed when whole; opened now, so that a
        # path that cannot be written is said at start, not after the run.
        self._part = path + ".part"
        self._file = open(self._part, "w", encoding="utf-8")  # noqa: SIM115 - see write()

    def buffer(self) -> Buffer:
        buf = self.local.buf
        if buf is None:
            buf = self.local.buf = Buffer(self.limit)
            self.buffers.append(buf)  # list.append: atomic, no lock needed
        return buf

    # Recording from hooks (any thread, its own buffer).
    def counter(self, name: str, t_ns: int, **values) -> None:
        self.buffer().add(("C", name, t_ns, values))

    def instant(self, name: str, t_ns: int, **args) -> None:
        self.buffer().add(("I", name, t_ns, args))

    def span(self, name: str, start_ns: int, end_ns: int, **args) -> None:
        self.buffer().add(("S", name, start_ns, end_ns, args or None))

    def write(self) -> int:
        """Merge every thread's events and write the file (once); returns
        the number of events written.  Call it when the threads are joined."""
        if self.written:
            return 0
        self.written = True
        from .threadfile import write_chrome

        with self._file as f:
            count = write_chrome(f, self)
        os.replace(self._part, self.path)
        return count

    def close(self) -> None:
        """Give up the file without writing (a start-up that failed)."""
        if not self.written:
            self.written = True
            self._file.close()
            try:
                os.unlink(self._part)
            except OSError:
                pass


# ------------------------------------------------------------ the wrappers
class TracedLock:
    """A ``threading.Lock`` that records its holds and blocked acquires.

    It also provides the three hooks ``threading.Condition`` looks for on its
    lock (``_release_save``, ``_acquire_restore``, ``_is_owned``), so that a
    condition on it records its waits (TracedCondition adds the wait's name
    and how it woke)."""

    __slots__ = ("name", "_lock", "_local", "_rec", "_owner", "_since")

    def __init__(self, name: str, rec: Recorder):
        self.name = name
        self._lock = threading.Lock()
        self._rec = rec
        self._local = rec.local
        self._owner: Buffer | None = None
        self._since = 0

    def _buf(self) -> Buffer:
        return self._local.buf or self._rec.buffer()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if self._lock.acquire(False):
            self._since = _now()
            self._owner = self._local.buf or self._rec.buffer()
            return True
        if not blocking:
            return False
        return self._blocked(timeout, False)

    def _blocked(self, timeout: float, after_wait: bool) -> bool:
        buf = self._buf()
        holder = self._owner
        start = _now()
        got = self._lock.acquire(True, timeout)
        end = _now()
        buf.add(("L", self.name, start, end, holder.name if holder is not None else "",
                 after_wait))
        if got:
            self._since = end
            self._owner = buf
        return got

    def release(self) -> None:
        buf = self._owner or self._buf()
        since = self._since
        self._owner = None
        self._lock.release()
        end = _now()
        buf.events.append(("H", self.name, since, end))
        buf.n += 1
        pending = buf.pending
        if pending is not None and pending[1] is self:
            buf.settle(True)  # it left the lock: its wait loop is over

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    def locked(self) -> bool:
        return self._lock.locked()

    # ---- threading.Condition's hooks
    def _is_owned(self) -> bool:
        return self._owner is not None and self._owner is self._local.buf

    def _release_save(self):
        buf = self._owner or self._buf()
        if buf.pending is not None and buf.pending[1] is self:
            buf.settle(False)  # waiting again, the lock kept: predicate false
        since = self._since
        self._owner = None
        start = _now()
        self._lock.release()
        buf.add(("H", self.name, since, start))
        buf.wait_start = start
        return None

    def _acquire_restore(self, _state) -> None:
        buf = self._buf()
        wake = _now()
        if self._lock.acquire(False):
            self._since = wake
            self._owner = buf
        else:
            self._blocked(-1, True)
        buf.pending = [buf.wait_cond or f"{self.name} (condition)", self, buf.wait_start,
                       wake, None, None]
        buf.wait_cond = None


class TracedCondition(threading.Condition):
    """A condition on a TracedLock whose waits are recorded by name."""

    def __init__(self, lk: TracedLock, name: str):
        super().__init__(lk)
        self.name = name
        self._local = lk._local  # noqa: SLF001 - the lock's own recorder
        self._rec = lk._rec  # noqa: SLF001

    def wait(self, timeout: float | None = None) -> bool:
        buf = self._local.buf or self._rec.buffer()
        buf.wait_cond = self.name
        try:
            got = super().wait(timeout)
        except BaseException:
            if buf.pending is not None:
                buf.pending[4] = "interrupted"
            raise
        if buf.pending is not None:
            buf.pending[4] = "notified" if got else "timeout"
            buf.pending[5] = timeout
        return got


class TracedQueue(_queue.Queue):
    """A queue.Queue on a TracedLock and TracedConditions, which also records
    its depth after every put and get (counters ``NAME`` and ``NAME bytes``)."""

    def __init__(self, maxsize: int, name: str, rec: Recorder, measure=None):
        super().__init__(maxsize)
        self.name = name
        self._rec = rec
        self._measure = measure
        self.mutex = TracedLock(f"{name} lock", rec)
        self.not_empty = TracedCondition(self.mutex, f"{name} not empty")
        self.not_full = TracedCondition(self.mutex, f"{name} not full")
        self.all_tasks_done = TracedCondition(self.mutex, f"{name} tasks done")
        self._segments = 0
        self._bytes = 0

    def _count(self, item, sign: int) -> None:
        if self._measure is not None:
            segs, size = self._measure(item)
            self._segments += sign * segs
            self._bytes += sign * size
        else:
            self._segments += sign
        buf = self._rec.buffer()
        t = _now()
        buf.add(("C", self.name, t, {"segments": self._segments}))
        if self._measure is not None:
            buf.add(("C", f"{self.name} bytes", t, {"bytes": self._bytes}))

    def _put(self, item) -> None:
        super()._put(item)
        self._count(item, 1)

    def _get(self):
        item = super()._get()
        self._count(item, -1)
        return item


def _traced_call(fn, name: str, describe, rec: Recorder):
    def traced(*args, **kwargs):
        start = _now()
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            rec.buffer().add(("S", name, start, _now(), {"error": type(exc).__name__}))
            raise
        end = _now()
        rec.buffer().add(("S", name, start, end,
                          describe(args, result) if describe is not None else None))
        return result

    traced.__name__ = getattr(fn, "__name__", name)
    traced.__wrapped__ = fn
    return traced
