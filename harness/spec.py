"""What a run is, as data: which emulators, which receiver, which senders,
and the options every program of the run shares.  ``run_pair.sh``, the
benchmarks and the tests each describe their runs so, and
:class:`harness.transfer.Transfer` starts them the one way there is.

Made to grow: a run has a list of senders (several flows to one server will
add entries, each with its own start delay), a link is a set of named
impairments (bottleneck rate, queue and AQM are more names), and options
such as a thread trace are one more field of :class:`Options`.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

HOST = "127.0.0.1"

_SIZE = re.compile(r"^([0-9]+\.?[0-9]*|\.[0-9]+)([kKmMgG])?([iI]?[bB])?$")
_UNIT = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def host_port(host: str, port: int | str) -> str:
    """HOST:PORT as the emulator's -o takes it: an IPv6 address in brackets
    ([::1]:41194).  (run_pair.sh answers --dry-run before .venv exists, with
    harness/ alone: runtime.addr.show says the same.)"""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_size(text: str) -> int | None:
    """Bytes from '300K', '4M', '1.5KiB', '0' (K, M, G are powers of 1024);
    None if ``text`` is no size."""
    m = _SIZE.match(text)
    if not m:
        return None
    return int(float(m.group(1)) * _UNIT[(m.group(2) or "").lower()])


def _burst(value: str) -> list[str]:
    """P:R[:L[:G]] (percentages) as the emulator's Gilbert-Elliott flags."""
    parts = value.split(":")
    out = ["--ge-p", parts[0], "--ge-r", parts[1]]
    for flag, part in zip(("--ge-loss", "--ge-good-loss"), parts[2:], strict=False):
        if part:
            out += [flag, part]
    return out


#: Each impairment's emulator flags, from the value as the user gave it.
IMPAIRMENTS = {
    "loss": lambda v: ["-L", v],
    "corrupt": lambda v: ["-C", v],       # percent of datagrams with one flipped bit
    "ber": lambda v: ["-B", v],           # flipped bits per 100000, as newudpl
    "reorder": lambda v: ["-O", v],
    "reorder-hold": lambda v: ["--reorder-hold", v],
    "dup": lambda v: ["-D", v],
    "delay": lambda v: ["-d", v],
    "jitter": lambda v: ["--jitter", v],
    "rate": lambda v: ["-s", v],
    "queue": lambda v: ["-q", str(parse_size(v))],
    "queue-packets": lambda v: ["--queue-packets", v],
    "aqm": lambda v: ["--aqm", v],
    "burst": _burst,
    "drop": lambda v: ["--drop", v],
    "blackhole": lambda v: ["--blackhole", v],
}


@dataclass
class LinkSpec:
    """One emulator: one direction of the link.  ``impair`` holds named
    impairments (the keys of IMPAIRMENTS, values as given), ``flags`` the
    emulator's own flags, passed as they are after them."""

    impair: dict[str, str] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)
    seed: int | None = None
    port: int = 0  # where it listens; 0: a port the OS picks

    def emulator_flags(self) -> list[str]:
        out: list[str] = []
        for key in sorted(self.impair):
            out += IMPAIRMENTS[key](self.impair[key])
        return out + list(self.flags)


@dataclass
class ReceiverSpec:
    """The receiving program.  None leaves a setting to the program's default;
    ``args`` are more of its flags, ``prefix`` a wrapper's argv (a profiler)."""

    output: Path
    port: int = 0  # 0: a port the OS picks
    mode: str | None = None
    mss: int | None = None
    buffer: int | str | None = None
    listen_timeout: float | str | None = None
    force: bool = False
    args: list[str] = field(default_factory=list)
    prefix: list[str] = field(default_factory=list)
    name: str = "receiver"


@dataclass
class SenderSpec:
    """One sending program (one flow)."""

    input: Path
    window: int | str
    ack_port: int = 0  # 0: a spare port picked at the start (harness.ports)
    mode: str | None = None
    mss: int | None = None
    pacing: float | str | None = None
    cc: str | None = None  # congestion control (None: the sender's default)
    args: list[str] = field(default_factory=list)
    prefix: list[str] = field(default_factory=list)
    name: str = "sender"


@dataclass
class Options:
    """What every program of a run shares.  Files named after each program
    (``NAME.log``, ``NAME.trace.jsonl``, ...) go to the run's directory."""

    host: str = HOST                 # where everything listens and sends
    bind: bool = False               # --bind HOST to every program (theirs: the loopback)
    give_up: float | str | None = None
    log_level: str | None = None     # sender's and receiver's --log-level
    log_files: bool = False          # NAME.log for every program
    emulator_verbose: int = 0        # the emulators' -v count
    emulator_stats: bool = True      # NAME.stats.json from each emulator
    trace: bool = False              # NAME.trace.jsonl from every program
    pcap: bool = False               # NAME.pcap from sender and receiver
    snaplen: int | None = None       # bytes kept of each captured packet
    thread_trace: bool = False       # NAME.threads.json from sender and receiver
    python: str = sys.executable     # the interpreter the programs run under
    ready_timeout: float = 30.0      # for a program's ready file


@dataclass
class RunSpec:
    """One run: emulators (None: no emulator on that path), a receiver and
    its senders, in ``workdir``.  ``timeout`` bounds the senders; ``cpus``
    (harness.procs.end_cpus) pins the sending and the receiving end;
    ``cwd`` is the programs' working directory (default ``workdir``)."""

    workdir: Path
    receiver: ReceiverSpec
    senders: list[SenderSpec]
    data_link: LinkSpec | None = None
    ack_link: LinkSpec | None = None
    options: Options = field(default_factory=Options)
    timeout: float = 600.0
    cpus: tuple[int, int] | None = None
    cwd: Path | None = None

    def __post_init__(self) -> None:
        if len(self.senders) != 1:
            # The receiver takes one connection and sends its ACKs to one
            # port; several flows need the server (and an ACK port each).
            raise ValueError(f"a run has one sender for now, not {len(self.senders)}")
