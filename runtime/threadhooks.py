"""What the programs add to the thread trace besides their locks: the
protocol's counters and instants, and their sockets' system calls.

``attach(endpoint)`` is called once, when the endpoint (a sender, a
receiver, a server's connection) is built, whose core was made with
``trace=core_trace(tracer)`` (its events on for either trace).  With
tracing off it does nothing at all.  With tracing on it:

* routes the core's events, on their way to the log and the JSON-lines
  trace, into the thread trace as
  counters (``in flight``, ``pipe``, ``rwnd``, ``cwnd``, ``ssthresh``,
  ``window limit``, ``advertised window``, ``unwritten``, ``out of order``)
  and instants (``RTO fired``, ``RTO backoff``, ``zero window``,
  ``window opened``, ``state``);
* wraps its socket (``runtime/threadsock.py``: every send and receive);
* wraps the sender's ``output.send``, to mark each resend with its cause
  (``retransmit``; ``probe`` for a zero-window probe sent again by its
  timer), from the tags the transmitter read under the lock.

Counter values are bytes; times are the core's own (``time.monotonic()``
at the event).
"""

from __future__ import annotations

from . import threadtrace


def attach(endpoint, window: int | None = None) -> None:
    """Hook ``endpoint`` (it has ``core``, ``sock`` and ``emit``; a sender
    also an ``output`` with a ``batcher`` and ``send``) into the thread trace;
    ``window`` is the sender's WINDOW (the cap of its window limit).
    Nothing happens while tracing is off."""
    rec = threadtrace.active()
    if rec is None:
        return
    endpoint.sock = threadtrace.socket(endpoint.sock)
    endpoint.emit = _routed(endpoint.emit, rec, window)
    output = getattr(endpoint, "output", None)
    if output is not None:
        output.batcher.sock = endpoint.sock  # (runtime.udpgso.Batcher)
        output.send = _marked(output.send, rec)


def core_trace(tracer) -> bool:
    """Whether a core is to report its events: for the JSON-lines trace
    (``tracer``), or for the thread trace's counters and marks."""
    return tracer is not None or threadtrace.active() is not None


def _ns(t: float) -> int:
    return int(t * 1e9)


def _routed(emit, rec, window):
    """``emit`` that first records the core's events in the thread trace."""
    last = {"rwnd": None, "adv": None}

    def sender_window(t: int, f: dict, buf) -> None:
        limit = [v for v in (window, f.get("rwnd"), f.get("cwnd")) if isinstance(v, int)]
        if limit:
            buf.add(("C", "window limit", t, {"bytes": max(0, min(limit))}))
        rwnd = f.get("rwnd")
        if isinstance(rwnd, int):
            was = last["rwnd"]
            if rwnd <= 0 < (was if was is not None else 1):
                buf.add(("I", "zero window", t, {"seen_by": "sender"}))
            elif was is not None and was <= 0 < rwnd:
                buf.add(("I", "window opened", t, {"bytes": rwnd}))
            last["rwnd"] = rwnd

    def routed(events) -> None:
        if events:
            buf = rec.buffer()
            for t_s, ev, f in events:
                t = _ns(t_s)
                if ev == "inflight":
                    for key, name in (("bytes", "in flight"), ("pipe", "pipe"),
                                      ("rwnd", "rwnd"), ("cwnd", "cwnd"),
                                      ("ssthresh", "ssthresh")):
                        v = f.get(key)
                        if isinstance(v, (int, float)):
                            buf.add(("C", name, t, {"bytes": v}))
                    sender_window(t, f, buf)
                elif ev == "rwnd":
                    win = f.get("win")
                    buf.add(("C", "advertised window", t, {"bytes": win}))
                    buf.add(("C", "unwritten", t, {"bytes": f.get("queue")}))
                    buf.add(("C", "out of order", t, {"bytes": f.get("ooo")}))
                    was = last["adv"]
                    if win == 0 and was != 0:
                        buf.add(("I", "zero window", t, {"seen_by": "receiver"}))
                    elif was == 0 and win:
                        buf.add(("I", "window opened", t, {"bytes": win}))
                    last["adv"] = win
                elif ev == "timeout":
                    buf.add(("I", "RTO fired", t, {"rto_ms": _ms(f.get("rto")),
                                                   "segments": f.get("n")}))
                elif ev == "rto":
                    buf.add(("I", "RTO backoff", t, {"rto_ms": _ms(f.get("rto")),
                                                     "backoff": f.get("backoff")}))
                elif ev == "state":
                    buf.add(("I", "state", t, {"old": f.get("old"), "new": f.get("new")}))
                elif ev != "rtt":
                    for key in ("cwnd", "ssthresh"):  # congestion control's own events
                        v = f.get(key)
                        if isinstance(v, (int, float)):
                            buf.add(("C", key, t, {"bytes": v}))
        emit(events)

    return routed


def _ms(v) -> float | None:
    return round(v * 1000, 3) if isinstance(v, (int, float)) else None


def _marked(send, rec):
    """The sender's ``output.send`` that marks each resend with its cause,
    from the tags the transmitter read under the lock (a tag is the core's
    ``sent_why``: timeout, fast, sack, rack, tlp, probe)."""
    def marked(batch, fields=None, view=None, tags=None):
        send(batch, fields, view, tags)
        if tags:
            t = threadtrace._now()  # noqa: SLF001 - the trace's own clock
            buf = None
            for tag in tags:
                if tag:
                    buf = buf or rec.buffer()
                    buf.add(("I", "probe" if tag == "probe" else "retransmit", t,
                             {"cause": tag}))

    return marked
