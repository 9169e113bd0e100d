"""Where the time goes: loopback transfers with both programs under py-spy
(a sampling profiler that sees every thread), summarised into PROFILE.md.

py-spy runs with ``--gil``: each sample is the stack of the thread holding
the GIL, i.e. where the process's Python work goes (one thread at a time runs
Python in CPython, so this is the budget the threads share).  Time spent in
system calls and C code that release the GIL (``sendmsg``, ``recvmsg_into``,
``write``, ``fsync``, ``hashlib`` on large buffers) is not in it; the
system-time share of the CPU beside it says how much the kernel takes.
``self`` counts the innermost Python frame of a sample (its own code and the
C functions it calls, e.g. ``int.from_bytes``); ``inclusive`` counts a
function whenever it is anywhere on the stack.  py-spy pauses the process for
each sample, so the programs run slower under it; the shares are what matter.
"""

from __future__ import annotations

import re
import shutil
import sys
from collections import Counter
from pathlib import Path

from bench.runs import MIB, BenchError, run_ours

#: Samples per second.  py-spy pauses the process for each one; at 1000 a
#: program under it sometimes took over a minute to start (py-spy "behind in
#: sampling", the run failed), and transfers ran at about a twentieth of
#: their speed.  At 250 both start in 0.2 s, and transfers keep most of it.
RATE = 250
REPEATS = 8   # transfers profiled, their samples added up


def find_py_spy() -> str | None:
    here = Path(sys.executable).parent / "py-spy"
    if here.exists():
        return str(here)
    return shutil.which("py-spy")


_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")


def _norm(frame: str) -> tuple[str, str]:
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip(), "?"
    path = m.group("file")
    for marker in ("site-packages/", "python3.11/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return m.group("func"), path


def _wrapper(func: str, path: str) -> bool:
    """Frames on (nearly) every stack that say nothing: thread start-up, runpy."""
    return (path in ("threading.py", "<frozen runpy>") and func.startswith(("Thread.", "_run"))
            or ".<locals>.run" in func or func in ("<module>", "main", "_main"))


#: The main thread's part of a transfer: inside the program's ``run``.
_RUNS = ("Sender.run", "Receiver.run")


def parse_raw(text: str) -> dict:
    """py-spy's ``--format raw`` (collapsed stacks) into counters."""
    total = imports = 0
    threads: Counter = Counter()
    own: Counter = Counter()
    incl: Counter = Counter()
    files: Counter = Counter()
    lines: Counter = Counter()
    for line in text.splitlines():
        line = line.rstrip()
        if not line or " " not in line:
            continue
        stack, _, count = line.rpartition(" ")
        try:
            n = int(count)
        except ValueError:
            continue
        parts = stack.split(";")
        if any("_find_and_load" in f for f in parts):
            imports += n            # start-up: imports and their byte-code compilation
            continue
        head = parts[0]
        frames = [_norm(f) for f in parts[1:] if f]
        if not frames:             # no Python frame: interpreter start-up or shutdown
            imports += n
            continue
        tname = head.split(":", 1)[1].strip() if ":" in head else "MainThread"
        if tname == "MainThread" and not any(fn in _RUNS for fn, _ in frames):
            imports += n            # set-up (arguments, logging) or the summary: not the transfer
            continue
        total += n
        threads[tname] += n
        func, path = frames[-1]
        own[f"{func} ({path})"] += n
        m = re.search(r":(\d+)\)$", parts[-1])
        lines[f"{func} ({path}:{m.group(1) if m else '?'})"] += n
        files[path] += n
        for key in {f"{fn} ({p})" for fn, p in frames if not _wrapper(fn, p)}:
            incl[key] += n
    return {"total": total, "imports": imports, "threads": threads, "self": own,
            "inclusive": incl, "files": files, "lines": lines}


def _table(counter: Counter, total: int, top: int, head: str) -> list[str]:
    out = [f"| {head} | samples | share |", "|---|---|---|"]
    for key, n in counter.most_common(top):
        out.append(f"| `{key}` | {n} | {n / total * 100:.1f}% |")
    return out


def run_profile(workdir: Path, infile: Path, window: int, buffer: str, *,
                data_link: list[str] | None = None, repeats: int = REPEATS) -> dict:
    """``repeats`` sr transfers with both ends under py-spy, on loopback or
    through the emulator with ``data_link`` (its flags); returns the parsed
    profiles (samples added up) and the results of the transfers."""
    spy = find_py_spy()
    if not spy:
        raise BenchError("py-spy is not installed (pip install py-spy)")
    outs = {role: workdir / f"{role}.pyspy.txt" for role in ("sender", "receiver")}
    texts: dict[str, list[str]] = {"sender": [], "receiver": []}
    results = []

    def prefix(role: str) -> list[str]:
        return [spy, "record", "--rate", str(RATE), "--gil", "--threads",
                "--format", "raw", "--output", str(outs[role]), "--"]

    for rep in range(repeats):
        for p in outs.values():
            p.unlink(missing_ok=True)
        results.append(run_ours(workdir, infile, "sr", window, buffer=buffer, timeout=300,
                                data_link=data_link, seed=2000 + rep,
                                after_handshake=data_link is not None,
                                sender_prefix=prefix("sender"),
                                receiver_prefix=prefix("receiver")))
        for role, path in outs.items():
            if not path.exists():
                raise BenchError(f"py-spy wrote no profile for the {role}")
            texts[role].append(path.read_text(errors="replace"))
    prof: dict = {"results": results}
    for role, parts in texts.items():
        prof[role] = parse_raw("\n".join(parts))
    return prof


def _size(n: int) -> str:
    return f"{n // MIB} MiB" if n >= MIB else f"{n // 1024} KiB"


def markdown(profs: list[tuple[str, dict, int, int]], cost: dict, command: str,
             top: int = 20) -> str:
    """PROFILE.md: one part per profile, each (what it is, the profile, file
    size, window)."""
    L = ["# Profile of our sender and receiver", "",
         f"Produced by `{command}`, in {len(profs)} part(s): " + "; ".join(
             f"{i}. {what}" for i, (what, *_rest) in enumerate(profs, 1)) + ". "
         f"Both programs run under `py-spy record --rate {RATE} --gil --threads --format raw`; "
         "the samples of a part's transfers are added up.", ""]
    L += [line.strip() for line in (__doc__ or "").split("\n\n", 1)[1].split("\n")]
    L.append("")
    if cost:
        L.append("Cost per segment without the profiler (section 1 medians, `wait4` CPU of the "
                 "whole process less the fixed cost of a run, / segments): " + "; ".join(
                     f"{k} {v}" for k, v in cost.items()) + ".")
        L.append("")
    for i, (what, prof, size, window) in enumerate(profs, 1):
        results = prof["results"]
        res = results[0]
        L += [f"# {i}. {what[:1].upper()}{what[1:]}", "",
              f"{len(results)} sr transfers of a {_size(size)} file, window {_size(window)} "
              "(goodput under the profiler: " + ", ".join(
                  f"{r.goodput * 8 / 1e6:.0f}" for r in results) + " Mbit/s; "
              f"{res.info.get('segments_sent', 0)} segments sent and "
              f"{res.info.get('segments_received', 0)} ACKs in the first).", ""]
        L += _part(prof, top)
    return "\n".join(L)


def _part(prof: dict, top: int) -> list[str]:
    L: list[str] = []
    for role in ("sender", "receiver"):
        p = prof[role]
        total = p["total"] or 1
        L += [f"## {role.capitalize()}", "",
              f"{p['total']} samples of the transfer ({p['imports']} more were imports, the "
              "main thread's set-up and summary, or had no Python frame, left out below). "
              "By thread: " + ", ".join(
                  f"{t} {n / total * 100:.0f}%" for t, n in p["threads"].most_common()) + ".", ""]
        L += ["### Top functions by self samples", ""]
        L += _table(p["self"], total, top, "function (file)")
        L += ["", "### Top functions by inclusive samples", ""]
        L += _table(p["inclusive"], total, top, "function (file)")
        L += ["", "### Top lines by self samples", "",
              "Line numbers are those of the source the programs ran (see the commit in "
              "RESULTS.md).", ""]
        L += _table(p["lines"], total, 12, "function (file:line)")
        L += ["", "### Self samples by file", ""]
        L += _table(p["files"], total, 12, "file")
        L.append("")
    return L


def headline(prof: dict, n: int = 4) -> str:
    """One line per end: the biggest self entries and their shares."""
    out = []
    for role in ("sender", "receiver"):
        p = prof[role]
        total = p["total"] or 1
        out.append(f"{role}: " + ", ".join(
            f"`{k.split(' (')[0]}` {v / total * 100:.0f}%" for k, v in p["self"].most_common(n)))
    return "; ".join(out)
