"""A run: its traces on one time axis, its command line and its verdict.

A run directory (``run_pair.sh --dir DIR``) holds ``sender.trace.jsonl``,
``receiver.trace.jsonl`` and ``emu-data.trace.jsonl`` (``emu-ack`` with an
impaired ACK path), and more sender traces when several flows ran.  Every
process stamps its events with ``time.monotonic()`` of the same machine, so
one clock serves them all: time zero is the (earliest) sender's first SYN
(``derive.zero_of``), and each trace is shifted by that same zero.

The command line and the verdict come from ``run.json`` in the directory
when the launcher wrote one::

    {"command": "./run_pair.sh --loss 10", "verdict": "OK: ... in 1.12 s",
     "ok": true}

(``command`` may be a list of arguments).  Without it, the page shows each
program's settings from its trace's ``meta`` line, and a verdict made from
the programs' own final counters (the sender's ``delivered``, the
receiver's ``verified``), and says that it did so.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from .derive import Derived, derive, zero_of
from .load import Trace, TraceError, load_trace

TRACE_PATTERNS = ("*.trace.jsonl", "*.trace.jsonl.gz", "*.trace")
#: The thread traces (--thread-trace) a run directory may hold.
THREAD_PATTERN = "*.threads.json"


def find_traces(run_dir: Path) -> list[Path]:
    """The trace files of a run directory, sorted by name."""
    found: set[Path] = set()
    for pat in TRACE_PATTERNS:
        found.update(p for p in run_dir.glob(pat) if p.is_file())
    return sorted(found)


def find_thread_traces(run_dir: Path) -> list[Path]:
    """The thread traces of a run directory, sorted by name."""
    return sorted(p for p in run_dir.glob(THREAD_PATTERN) if p.is_file())


@dataclass
class Run:
    traces: list[Trace]
    derived: list[Derived]
    dir: Path | None = None
    zero: float = 0.0
    zero_what: str = ""
    errors: list[str] = field(default_factory=list)
    info: dict = field(default_factory=dict)  # run.json, when present
    threads: list = field(default_factory=list)  # thread traces (analysis.threads)

    def of(self, role: str) -> list[tuple[Trace, Derived]]:
        return [(t, d) for t, d in zip(self.traces, self.derived, strict=True)
                if t.role == role]

    def receiver_for(self, sender: Trace) -> tuple[Trace, Derived] | None:
        """The receiver trace of the same connection (the SYN's ISN), or the
        only receiver."""
        recvs = self.of("receiver")
        isn = sender.meta.get("isn")
        for tr, d in recvs:
            if isn is not None and d.isn_sender == isn:
                return tr, d
        return recvs[0] if len(recvs) == 1 else None


def align(traces: list[Trace]) -> tuple[list[Derived], float, str]:
    """Derived series for each trace, all with one time zero."""
    derived = [derive(t) for t in traces]
    senders = [d.t0 for t, d in zip(traces, derived, strict=True) if t.role == "sender"]
    if senders:
        zero = min(senders)
        what = "the sender's first SYN" if len(senders) == 1 else \
            "the first SYN of the earliest sender"
    elif traces:
        first = traces[0]
        zero = zero_of(first)
        what = {"receiver": "the receiver's first SYN received"}.get(
            first.role, f"the first line of {first.name}")
    else:
        zero, what = 0.0, ""
    for d in derived:
        d.t0 = zero
    return derived, zero, what


def load_run(paths: list[Path], run_dir: Path | None = None,
             thread_paths: list[Path] = ()) -> Run:
    """Load traces and thread traces (errors collected, not raised) and
    align them."""
    from .threads import load_thread_trace

    traces, errors, threads = [], [], []
    for p in paths:
        try:
            traces.append(load_trace(p))
        except TraceError as e:
            errors.append(str(e))
    for p in thread_paths:
        try:
            threads.append(load_thread_trace(p))
        except TraceError as e:
            errors.append(str(e))
    order = {"sender": 0, "receiver": 1, "emulator": 2}
    traces.sort(key=lambda t: order.get(t.role, 3))  # stable: names stay in order
    threads.sort(key=lambda t: order.get(t.role, 3))
    derived, zero, what = align(traces)
    run = Run(traces, derived, run_dir, zero, what, errors, threads=threads)
    if not traces and threads:  # thread traces alone: their first event is zero
        run.zero = min(s for tt in threads for s in _starts(tt))
        run.zero_what = "the first event of the thread traces"
    if run_dir is not None:
        run.info = read_info(run_dir, errors)
    return run


def _starts(tt):
    return [r[2] for r in tt.holds + tt.lock_waits + tt.syscalls] + \
        [r[3] for r in tt.cond_waits] or [0.0]


def read_info(run_dir: Path, errors: list[str]) -> dict:
    path = run_dir / "run.json"
    if not path.is_file():
        return {}
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        errors.append(f"{path}: ignored, not readable JSON ({e})")
        return {}
    if not isinstance(info, dict):
        errors.append(f"{path}: ignored, not a JSON object")
        return {}
    return info


def command_lines(run: Run) -> tuple[str, list[str]]:
    """(where they come from, the lines): the launcher's command from
    run.json, else each program's settings from its meta line."""
    cmd = run.info.get("command")
    if isinstance(cmd, list):
        cmd = shlex.join(str(c) for c in cmd)
    if isinstance(cmd, str) and cmd:
        return "the command that made this run (run.json)", [cmd]
    lines = []
    for tr in run.traces:
        meta = {k: v for k, v in tr.meta.items() if k not in ("t", "role")}
        lines.append(f"{tr.name} ({tr.role}): " + json.dumps(meta, separators=(", ", ": ")))
    return ("no run.json in the run directory: each program's settings, from the first "
            "(meta) line of its trace", lines)


def verdict(run: Run) -> tuple[bool | None, str, str]:
    """(ok, the verdict line, where it comes from)."""
    v = run.info.get("verdict")
    if isinstance(v, str) and v:
        ok = run.info.get("ok")
        return (ok if isinstance(ok, bool) else v.startswith("OK")), v, "run.json"
    delivered = [t.counters.get("delivered") for t, _ in run.of("sender")]
    verified = [t.counters.get("verified") for t, _ in run.of("receiver")]
    src = "the programs' own final counters (sender: delivered, receiver: verified)"
    if not delivered or any(x is None for x in delivered + verified):
        return None, "unknown: a trace has no final summary (the process did not finish?)", src
    if all(delivered) and all(verified):
        n = len(delivered)
        what = "the file was" if n == 1 else f"all {n} files were"
        return True, f"OK: {what} delivered and verified (SHA-256)", src
    return False, "FAILED: " + ", ".join(
        f"{t.name}: {'delivered' if t.counters.get('delivered') else 'not delivered'}"
        for t, _ in run.of("sender")) + "; " + ", ".join(
        f"{t.name}: {'verified' if t.counters.get('verified') else 'not verified'}"
        for t, _ in run.of("receiver")), src
