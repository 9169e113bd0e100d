"""What the programs add to the thread trace besides their locks: the
protocol's counters and instants, and their sockets' system calls.

``attach(endpoint)`` is called once, when the endpoint (a sender, a
receiver, a server's connection) is built.  With tracing off it does
nothing at all.  With tracing on it:

* turns the core's events on (``core.trace``), and routes them, on their
  way to the log and the JSON-lines trace, into the thread trace as
  counters (``in flight``, ``pipe``, ``rwnd``, ``cwnd``, ``ssthresh``,
  ``window limit``, ``advertised window``, ``unwritten``, ``out of order``)
  and instants (``RTO fired``, ``RTO backoff``, ``zero window``,
  ``window opened``, ``state``);
* wraps its socket (``runtime/threadsock.py``: every send and receive);
* wraps its ``_send_batch`` (the sender's), if it has one, to mark each
  retransmission with its cause (``retransmit``, from the segment's
  ``sent_why``) and each zero-window ``probe``.

Counter values are bytes; times are the core's own (``time.monotonic()``
at the event).
"""

from __future__ import annotations

from . import threadtrace


def attach(endpoint, window: int | None = None) -> None:
    """Hook ``endpoint`` (it has ``core``, ``sock`` and ``emit``) into the
    thread trace; ``window`` is the sender's WINDOW (the cap of its window
    limit).  Nothing happens while tracing is off."""
    rec = threadtrace.active()
    if rec is None:
        return
    endpoint.core.trace = True
    endpoint.sock = threadtrace.socket(endpoint.sock)
    endpoint.emit = _routed(endpoint.emit, rec, window)
    batch = getattr(endpoint, "_send_batch", None)
    if batch is not None:
        endpoint._send_batch = _marked(batch, rec)


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


def _marked(send_batch, rec):
    """The sender's ``_send_batch`` that marks retransmissions and probes."""
    def marked(batch, *args, **kwargs):
        result = send_batch(batch, *args, **kwargs)
        t = threadtrace._now()  # noqa: SLF001 - the trace's own clock
        buf = None
        for _seg, r in batch:
            if r is None:
                continue
            why = getattr(r, "sent_why", "")
            if why or getattr(r, "probe", False):
                buf = buf or rec.buffer()
                name = "probe" if why == "probe" or not why else "retransmit"
                buf.add(("I", name, t, {"cause": why or "probe", "off": getattr(r, "off", None)}))
        return result

    return marked
