"""runtime/threadtrace.py: the factory hands out plain threading objects
while tracing is off and recording ones while it is on; what they record
(holds, blocked acquires with their holder, condition waits with their
outcome, queue depths, system calls) and the Chrome trace-event file.

Threads are sequenced with events, never with sleeps that a slow machine
could outrun: each scenario forces the order it checks."""

from __future__ import annotations

import json
import queue
import socket
import threading

import pytest

from runtime import threadhooks, threadtrace


@pytest.fixture
def rec(tmp_path):
    r = threadtrace.enable(str(tmp_path / "t.threads.json"), "test")
    yield r
    threadtrace.disable()
    r.close()


def _load(rec) -> dict:
    rec.write()
    with open(rec.path, encoding="utf-8") as f:
        return json.load(f)


def _events(doc: dict, cat: str) -> list[dict]:
    return [e for e in doc["traceEvents"] if e.get("cat") == cat]


def _run(name: str, target) -> threading.Thread:
    t = threading.Thread(target=target, name=name)
    t.start()
    return t


def test_off_the_factory_gives_the_plain_objects():
    threadtrace.disable()
    lk = threadtrace.lock("core")
    assert type(lk) is type(threading.Lock())
    assert type(threadtrace.condition(lk, "c")) is threading.Condition
    assert type(threadtrace.queue(4, "q")) is queue.Queue
    fn = len
    assert threadtrace.syscall(fn, "len") is fn
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        assert threadtrace.socket(s) is s

    class Endpoint:
        core = type("Core", (), {"trace": False})()
        sock = object()

        def emit(self, events):
            pass

    ep = Endpoint()
    emit = ep.emit
    threadhooks.attach(ep)
    assert ep.emit == emit and ep.sock is Endpoint.sock
    assert threadhooks.core_trace(None) is False and threadhooks.core_trace(object()) is True


def test_a_blocked_acquire_names_its_holder_and_ends_after_the_hold(rec):
    lk = threadtrace.lock("core")
    held, tried = threading.Event(), threading.Event()

    def holder():
        with lk:
            held.set()
            tried.wait(10)
            while not _waiting(rec, "taker"):  # release only once the taker blocks
                threading.Event().wait(0.001)

    def taker():
        held.wait(10)
        tried.set()
        with lk:
            pass

    threads = [_run("holder", holder), _run("taker", taker)]
    for t in threads:
        t.join(10)
    doc = _load(rec)
    waits = _events(doc, "lock.wait")
    assert len(waits) == 1
    w = waits[0]
    assert w["args"] == {"lock": "core", "holder": "holder", "after_wait": False}
    names = _thread_names(doc)
    assert names[w["tid"]] == "taker"
    hold = [e for e in _events(doc, "lock.hold") if names[e["tid"]] == "holder"][0]
    assert w["ts"] + w["dur"] >= hold["ts"] + hold["dur"] - 0.001
    assert w["ts"] >= hold["ts"]


def _waiting(rec, name: str) -> bool:
    """True once thread ``name`` is blocked in the lock (its frame says so)."""
    import sys

    for t in threading.enumerate():
        if t.name == name:
            frame = sys._current_frames().get(t.ident)
            while frame is not None:
                if frame.f_code.co_name == "_blocked":
                    return True
                frame = frame.f_back
    return False


def _thread_names(doc: dict) -> dict[int, str]:
    return {e["tid"]: e["args"]["name"] for e in doc["traceEvents"]
            if e.get("ph") == "M" and e["name"] == "thread_name"}


def test_wait_outcomes_notified_spurious_and_timeout(rec):
    lk = threadtrace.lock("core")
    cv = threadtrace.condition(lk, "ready")
    state = {"items": 0, "stop": False}
    step = threading.Semaphore(0)

    def consumer():
        with lk:  # a timed wait nobody notifies, then the lock is left: timeout
            cv.wait(0.001)
        with lk:
            while state["items"] == 0:  # the textbook wait loop
                step.release()
                cv.wait()
            state["items"] -= 1

    t = _run("consumer", consumer)
    step.acquire(timeout=10)  # consumer waits
    with lk:
        cv.notify()  # nothing to take: spurious
    step.acquire(timeout=10)  # consumer waits again
    with lk:
        state["items"] = 1
        cv.notify()  # now it takes the item: notified
    t.join(10)
    doc = _load(rec)
    outcomes = [(e["args"]["outcome"], e["args"]["predicate"])
                for e in _events(doc, "cond.wait")]
    assert outcomes == [("timeout", True), ("spurious", False), ("notified", True)]
    assert all(e["args"]["cond"] == "ready" and e["args"]["lock"] == "core"
               for e in _events(doc, "cond.wait"))


def test_a_hold_ends_where_a_wait_begins(rec):
    lk = threadtrace.lock("core")
    cv = threadtrace.condition(lk, "ready")
    with lk:
        cv.wait(0.001)
    doc = _load(rec)
    holds = sorted(_events(doc, "lock.hold"), key=lambda e: e["ts"])
    wait = _events(doc, "cond.wait")[0]
    assert len(holds) == 2
    assert holds[0]["ts"] + holds[0]["dur"] == pytest.approx(wait["ts"], abs=1e-3)
    assert holds[1]["ts"] >= wait["ts"] + wait["dur"] - 1e-3
    assert wait["args"]["outcome"] == "timeout"
    assert wait["args"]["predicate"] is True  # it left the lock: its loop was over


def test_the_ring_keeps_the_newest_events_and_counts_the_rest(tmp_path):
    rec = threadtrace.enable(str(tmp_path / "r.json"), "test", limit=10)
    try:
        lk = threadtrace.lock("core")
        for _ in range(100):
            with lk:
                pass
        doc = _load(rec)
    finally:
        threadtrace.disable()
    (info,) = doc["otherData"]["threads"]
    assert info == {"name": "MainThread", "tid": info["tid"], "recorded": 100, "kept": 10,
                    "dropped": 90}
    assert len(_events(doc, "lock.hold")) == 10


def test_a_traced_queue_records_its_depth(rec):
    q = threadtrace.queue(8, "writer queue",
                          lambda it: (len(it), sum(map(len, it))) if it else (0, 0))
    q.put([b"ab", b"c"])
    q.put([b"defg"])
    assert q.get() == [b"ab", b"c"]
    doc = _load(rec)
    seg = [e["args"]["segments"] for e in doc["traceEvents"] if e["name"] == "writer queue"]
    size = [e["args"]["bytes"] for e in doc["traceEvents"]
            if e["name"] == "writer queue bytes"]
    assert seg == [2, 3, 1] and size == [3, 7, 4]
    assert {e["args"]["lock"] for e in _events(doc, "lock.hold")} == {"writer queue lock"}


def test_the_socket_records_sends_and_receives(rec):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as b:
        a.bind(("127.0.0.1", 0))
        b.bind(("127.0.0.1", 0))
        ta, tb = threadtrace.socket(a), threadtrace.socket(b)
        assert ta.getsockname() == a.getsockname()
        ta.sendto(b"hello", b.getsockname())
        buf = bytearray(64)
        assert tb.recvfrom_into(buf)[0] == 5
        with pytest.raises(BlockingIOError):
            tb.recvfrom_into(buf, 0, socket.MSG_DONTWAIT)
    doc = _load(rec)
    calls = [(e["name"], e["args"]) for e in _events(doc, "syscall")]
    assert calls == [("sendto", {"datagrams": 1, "bytes": 5}),
                     ("recvfrom", {"datagrams": 1, "bytes": 5}),
                     ("recvfrom", {"datagrams": 0, "bytes": 0})]


def test_a_syscall_wrapper_records_its_span_and_failure(rec):
    def write(data):
        if not data:
            raise OSError("disk full")
        return len(data)

    traced = threadtrace.syscall(write, "write", lambda args, n: {"bytes": n})
    assert traced(b"abc") == 3
    with pytest.raises(OSError):
        traced(b"")
    doc = _load(rec)
    assert [e["args"] for e in _events(doc, "syscall")] == [{"bytes": 3}, {"error": "OSError"}]


def test_the_file_is_chrome_trace_json_with_named_tracks(rec):
    lk = threadtrace.lock("core")
    t = _run("transmitter", lambda: lk.acquire() and lk.release())
    t.join(10)
    rec.counter("pipe", 1_000_000, bytes=4096)
    rec.instant("RTO fired", 2_000_000, rto_ms=200.0)
    doc = _load(rec)
    assert doc["otherData"]["format"] == "simplex-tcp thread trace 1"
    assert doc["otherData"]["clock"] == "time.monotonic"
    assert set(_thread_names(doc).values()) == {"transmitter", "MainThread"}
    proc = [e for e in doc["traceEvents"] if e["name"] == "process_name"]
    assert proc[0]["args"]["name"] == "test"
    counter = [e for e in doc["traceEvents"] if e["ph"] == "C"][0]
    assert counter["ts"] == 1000.0 and counter["args"] == {"bytes": 4096}
    for e in doc["traceEvents"]:
        assert e["ph"] in ("M", "X", "C", "i")
        if e["ph"] == "X":
            assert e["dur"] >= 0


def test_an_unwritable_path_is_refused_at_start(tmp_path):
    with pytest.raises(OSError):
        threadtrace.enable(str(tmp_path / "missing" / "t.json"), "test")
    threadtrace.disable()


def test_the_core_events_become_counters_and_instants(rec):
    class Core:
        trace = False

    class Endpoint:
        def __init__(self):
            self.core = Core()
            self.sock = None
            self.seen = []

        def emit(self, events):
            self.seen.extend(events)

    ep = Endpoint()
    threadhooks.attach(ep, window=65536)
    assert threadhooks.core_trace(None) is True  # the cores report their events
    events = [(1.0, "inflight", {"bytes": 3000, "pipe": 1500, "rwnd": 20000, "acked": 0}),
              (1.1, "inflight", {"bytes": 0, "pipe": 0, "rwnd": 0, "acked": 3000}),
              (1.2, "timeout", {"rto": 0.4, "n": 2}),
              (1.3, "rwnd", {"win": 0, "queue": 4096, "ooo": 0})]
    ep.emit(events)
    assert ep.seen == events  # the log and the JSON-lines trace still get them
    doc = _load(rec)
    counters = [(e["name"], e["args"]) for e in doc["traceEvents"] if e["ph"] == "C"]
    assert ("pipe", {"bytes": 1500}) in counters
    assert ("window limit", {"bytes": 20000}) in counters
    assert ("window limit", {"bytes": 0}) in counters
    assert ("advertised window", {"bytes": 0}) in counters
    instants = [(e["name"], e["args"]) for e in _events(doc, "proto")]
    assert ("RTO fired", {"rto_ms": 400.0, "segments": 2}) in instants
    assert [a["seen_by"] for n, a in instants if n == "zero window"] == ["sender", "receiver"]
