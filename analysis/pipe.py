"""Bytes in flight as the sender's window counts them: the pipe.

README, "What the window means": WINDOW_BYTES bounds the bytes sent and
neither cumulatively nor selectively acknowledged (RFC 6675's "pipe").  That
is ``snd_nxt - snd_una - SACKed bytes above snd_una``; in ``gbn`` mode, with
no SACK, ``snd_nxt - snd_una``.  The edge new data may not pass is then
``snd_una + WINDOW + SACKed``, and the peer's right edge (its ACK plus its
advertised window) and a congestion window, when there is one, lower it.

A sender whose ``inflight`` events carry ``pipe`` (and ``cwnd``) is read as
it is; older traces get the pipe replayed here from their ``send`` events
(``snd_nxt``) and ``recv`` events (the cumulative ACK and the SACK blocks,
kept on a scoreboard as the sender keeps them).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from .derive import HALF, MOD, flags_of, unwrap
from .load import Trace


@dataclass
class Pipe:
    """Parallel series after each send or ACK, on the sender's clock."""

    t: list[float] = field(default_factory=list)
    pipe: list[int] = field(default_factory=list)
    nxt: list[int] = field(default_factory=list)  # snd_nxt (highest data end sent)
    una: list[int] = field(default_factory=list)  # snd_una (cumulative ACK)
    sacked: list[int] = field(default_factory=list)  # SACKed bytes above snd_una
    source: str = "replayed from the send and recv events"


class Scoreboard:
    """Disjoint sorted [left, right) ranges above the cumulative ACK."""

    def __init__(self):
        self.left: list[int] = []
        self.right: list[int] = []
        self.total = 0

    def add(self, a: int, b: int) -> None:
        if b <= a:
            return
        i = bisect.bisect_left(self.right, a)  # first range that may touch
        j = i
        while j < len(self.left) and self.left[j] <= b:
            a = min(a, self.left[j])
            b = max(b, self.right[j])
            self.total -= self.right[j] - self.left[j]
            j += 1
        self.left[i:j] = [a]
        self.right[i:j] = [b]
        self.total += b - a

    def trim(self, una: int) -> None:
        """Forget what lies below the cumulative ACK."""
        while self.left and self.left[0] < una:
            if self.right[0] <= una:
                self.total -= self.right[0] - self.left[0]
                del self.left[0], self.right[0]
            else:
                self.total -= una - self.left[0]
                self.left[0] = una


def replay(tr: Trace, isn: int | None) -> Pipe:
    """The pipe after every data send and every ACK of a sender trace."""
    p = Pipe()
    if isn is None:
        return p
    send, recv = tr["send"], tr["recv"]
    ev = [(t, 0, off + ln) for t, off, ln in zip(send.t, send["off"], send["len"], strict=True)
          if ln and off is not None]
    ev += [(t, 1, i) for i, t in enumerate(recv.t)]
    ev.sort()
    board = Scoreboard()
    nxt = una = 0
    prev = None
    acks, flagss, sacks = recv["ack"], recv["flags"], recv["sack"]
    for t, kind, v in ev:
        if kind == 0:
            if v > nxt:
                nxt = v
        else:
            ack, fl = acks[v], flags_of(flagss[v])
            if ack is None or "A" not in fl:
                continue
            off = unwrap(prev, (ack - isn - 1) % MOD)
            if prev is None and off >= HALF:
                off -= MOD
            prev = off
            for a, b in sacks[v] or ():
                board.add(max(a, una), b)
            if off > una:
                una = min(off, nxt) if nxt else off
            board.trim(una)
        p.t.append(t)
        p.pipe.append(max(0, nxt - una - board.total))
        p.nxt.append(nxt)
        p.una.append(una)
        p.sacked.append(board.total)
    return p


def pipe_of(tr: Trace, isn: int | None) -> Pipe:
    """The sender's own ``pipe`` when its trace has it, else the replay."""
    inf = tr["inflight"]
    own = inf.present("pipe")
    if own:
        p = Pipe(source="read from the sender's inflight events")
        acked = inf["acked"]
        for (t, v), a in zip(own, (a for a, pv in zip(acked, inf["pipe"], strict=True)
                                   if pv is not None), strict=True):
            p.t.append(t)
            p.pipe.append(int(v))
            p.una.append(a if a is not None else 0)
        return p
    return replay(tr, isn)


@dataclass
class Limit:
    """The window limit the pipe is held under, as a step series."""

    t: list[float] = field(default_factory=list)
    limit: list[float] = field(default_factory=list)
    window: float | None = None  # WINDOW_BYTES, from the meta line
    what: str = ""


def window_limit(tr: Trace) -> Limit:
    """min(WINDOW, the peer's advertised room, cwnd when traced) over time."""
    w = tr.meta.get("window")
    window = float(w) if isinstance(w, (int, float)) and not isinstance(w, bool) else None
    inf = tr["inflight"]
    cw = _cwnd_series(tr)
    parts = ["WINDOW"] if window is not None else []
    if inf.present("rwnd"):
        parts.append("the receiver's advertised window")
    if cw[0]:
        parts.append("cwnd")
    lim = Limit(window=window, what="min(" + ", ".join(parts) + ")" if len(parts) > 1
                else (parts[0] if parts else ""))
    points = sorted([(t, 0, v) for t, v in inf.present("rwnd")]
                    + [(t, 1, v) for t, v in zip(*cw, strict=True)])
    rwnd = cwnd = None
    for t, kind, v in points:
        if kind == 0:
            rwnd = v
        else:
            cwnd = v
        cands = [x for x in (window, rwnd, cwnd) if x is not None]
        if lim.t and lim.t[-1] == t:  # one event's rwnd and cwnd: one limit
            lim.limit[-1] = min(cands)
            continue
        lim.t.append(t)
        lim.limit.append(min(cands))
    if not lim.t and window is not None and len(tr["send"]):
        lim.t = [tr["send"].t[0], tr["send"].t[-1]]
        lim.limit = [window, window]
    return lim


def _cwnd_series(tr: Trace) -> tuple[list[float], list[float]]:
    """cwnd over time; none for a sender without congestion control (--cc
    none), whose traced cwnd is WINDOW itself and would hide the limit."""
    if tr.meta.get("cc") == "none":
        return [], []
    pts = sorted(tr["cwnd"].present("cwnd") + tr["inflight"].present("cwnd"))
    return [p[0] for p in pts], [p[1] for p in pts]


def cc_series(tr: Trace) -> dict[str, tuple[list[float], list[float]]]:
    """cwnd and ssthresh over time, when the sender traces them."""
    out = {}
    ts, vs = _cwnd_series(tr)
    if ts:
        out["cwnd"] = (ts, vs)
    pts = sorted(tr["cwnd"].present("ssthresh") + tr["inflight"].present("ssthresh"))
    if tr.meta.get("cc") == "none":
        pts = []
    # a slow-start threshold still at its initial "infinity" is not drawn
    pts = [p for p in pts if p[1] < 1 << 40]
    if pts:
        out["ssthresh"] = ([p[0] for p in pts], [p[1] for p in pts])
    return out
