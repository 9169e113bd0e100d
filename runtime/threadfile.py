"""The thread trace's file: Chrome's trace-event JSON (the "JSON Object
Format" that Perfetto UI, chrome://tracing and speedscope open).

One process (the program, named by its role), one track per thread (named
as the thread is: ``transmitter``, ``ack-listener``, ``rto-timer``,
``network``, ``writer``, ``MainThread``...).  Event categories, which
``stcp-analyze`` reads back (docs/MEASURES.md defines each figure):

=============  =====  ==========================================================
``cat``        ``ph``  args
=============  =====  ==========================================================
``lock.hold``  X      ``lock``
``lock.wait``  X      ``lock``, ``holder`` (who had it when the wait began),
                      ``after_wait`` (the lock taken back after a condition wait)
``cond.wait``  X      ``cond``, ``lock``, ``outcome`` (notified, spurious,
                      timeout, interrupted, unknown), ``predicate`` (true,
                      false, null: unknown), ``timeout_ms`` (null: none)
``syscall``    X      ``datagrams`` and ``bytes`` (sockets), ``bytes`` (disk
                      writes), ``error`` when the call failed
``proto``      i      a protocol instant (retransmit with ``cause``, RTO fired,
                      zero window, probe, state change)
(none)         C      one counter value, in the unit its key names
=============  =====  ==========================================================

``ts`` and ``dur`` are microseconds of ``time.monotonic()``, the clock of
the JSON-lines trace (``otherData.clock``).  ``otherData.threads`` says,
per thread, how many events it recorded and how many its ring let go (the
oldest ones).
"""

from __future__ import annotations

import functools
import json
import os

FORMAT = "simplex-tcp thread trace 1"


def _us(ns: int) -> str:
    return f"{ns // 1000}.{ns % 1000:03d}"


@functools.lru_cache(maxsize=4096)
def _q(text: str) -> str:
    return json.dumps(text)  # names repeat: lock, condition, call and thread names


def _args(args) -> str:
    """A small dict as JSON; plain ints and floats by hand (about four times
    cheaper than json.dumps: a trace holds tens of thousands of them)."""
    if not args:
        return "{}"
    parts = []
    for key, value in args.items():
        kind = type(value)
        if kind is int or kind is float and value == value and abs(value) != float("inf"):
            parts.append(f'"{key}":{value!r}')
        else:
            parts.append(f"{json.dumps(key)}:{json.dumps(value)}")
    return "{" + ",".join(parts) + "}"


def _line(ev: tuple, head: str) -> str:
    kind = ev[0]
    if kind == "H":
        _, lock, start, end = ev
        return (f'{{"name":{_q(lock + " held")},"cat":"lock.hold","ph":"X",'
                f'"ts":{_us(start)},"dur":{_us(max(0, end - start))},{head},'
                f'"args":{{"lock":{_q(lock)}}}}}')
    if kind == "L":
        _, lock, start, end, holder, after = ev
        return (f'{{"name":{_q("wait for " + lock)},"cat":"lock.wait","ph":"X",'
                f'"ts":{_us(start)},"dur":{_us(max(0, end - start))},{head},'
                f'"args":{{"lock":{_q(lock)},"holder":{_q(holder)},'
                f'"after_wait":{"true" if after else "false"}}}}}')
    if kind == "W":
        _, cond, lock, start, end, outcome, predicate, timeout = ev
        pred = "null" if predicate is None else ("true" if predicate else "false")
        tmo = "null" if timeout is None else f"{timeout * 1000:.3f}"
        return (f'{{"name":{_q("wait " + cond)},"cat":"cond.wait","ph":"X",'
                f'"ts":{_us(start)},"dur":{_us(max(0, end - start))},{head},'
                f'"args":{{"cond":{_q(cond)},"lock":{_q(lock)},"outcome":"{outcome}",'
                f'"predicate":{pred},"timeout_ms":{tmo}}}}}')
    if kind == "S":
        _, name, start, end, args = ev
        return (f'{{"name":{_q(name)},"cat":"syscall","ph":"X","ts":{_us(start)},'
                f'"dur":{_us(max(0, end - start))},{head},"args":{_args(args)}}}')
    if kind == "C":
        _, name, t, values = ev
        return f'{{"name":{_q(name)},"ph":"C","ts":{_us(t)},{head},"args":{_args(values)}}}'
    if kind == "I":
        _, name, t, args = ev
        return (f'{{"name":{_q(name)},"cat":"proto","ph":"i","s":"t","ts":{_us(t)},'
                f'{head},"args":{_args(args)}}}')
    raise ValueError(f"unknown thread-trace event {kind!r}")


def _copy(events) -> list:
    """The ring's events; a thread still running (one that was never joined,
    after a failure) may append meanwhile: try again, then take what is safe."""
    for _ in range(5):
        try:
            return list(events)
        except RuntimeError:  # deque mutated during iteration
            continue
    return [events[i] for i in range(len(events) - 1)]


def write_chrome(f, rec) -> int:
    """Write ``rec``'s buffers to the open text file ``f``; the event count."""
    pid = os.getpid()
    out = [f'{{"name":"process_name","ph":"M","pid":{pid},"tid":0,'
           f'"args":{{"name":{_q(rec.role)}}}}}']
    threads = []
    count = 0
    for order, buf in enumerate(list(rec.buffers)):
        if buf.pending is not None:
            buf.settle(None)  # the program ended inside a wait loop
        events = _copy(buf.events)
        head = f'"pid":{pid},"tid":{buf.tid}'
        out.append(f'{{"name":"thread_name","ph":"M",{head},"args":{{"name":{_q(buf.name)}}}}}')
        out.append(f'{{"name":"thread_sort_index","ph":"M",{head},'
                   f'"args":{{"sort_index":{order}}}}}')
        out.extend(_line(ev, head) for ev in events)
        count += len(events)
        threads.append({"name": buf.name, "tid": buf.tid, "recorded": buf.n,
                        "kept": len(events), "dropped": buf.n - len(events)})
    other = {"format": FORMAT, "role": rec.role, "pid": pid, "clock": "time.monotonic",
             "ring": rec.limit, "threads": threads}
    f.write('{"traceEvents":[\n')
    f.write(",\n".join(out))
    f.write('\n],\n"displayTimeUnit":"ms",\n"otherData":')
    f.write(json.dumps(other))
    f.write("}\n")
    return count
