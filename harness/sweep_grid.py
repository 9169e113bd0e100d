"""The grid of a sweep (``stcp-experiment``): its axes, checked, and its
cells, each one run_pair.sh run.

Axes: mode x loss x window (x congestion control, when given) x any other
run_pair.sh option (``--vary OPTION=V1,V2``), each cell repeated with seeds
SEED, SEED+1, ...  A bad grid (an empty list, a loss that is not a
percentage, a window below one MSS, an option given twice) is one
:class:`GridError` line, before anything runs.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field

from harness.spec import parse_size

MODES = ("gbn", "sr")
_NUM = re.compile(r"^-?([0-9]+\.?[0-9]*|\.[0-9]+)$")
#: Options the grid sets itself: not for --vary or the run_pair options.
OWN = ("--mode", "-m", "--loss", "--window", "-w", "--seed", "--dir", "--size", "--cc")


class GridError(Exception):
    """A bad grid: the sweep says this one line and exits 2."""


def split_list(opt: str, text: str) -> list[str]:
    items = [x.strip() for x in text.split(",")]
    if not text.strip() or not all(items):
        raise GridError(f"{opt}: the list is empty or has an empty entry ('{text}')")
    if len(set(items)) != len(items):
        raise GridError(f"{opt}: '{text}' names a value twice")
    return items


@dataclass
class Grid:
    modes: list[str]
    losses: list[str]  # percentages, as given
    windows: list[str]  # sizes, as given
    ccs: list[str] = field(default_factory=list)  # empty: the sender's default
    vary: list[tuple[str, list[str]]] = field(default_factory=list)
    reps: int = 3
    seed: int = 1
    size: str = "1M"
    mss: int = 1452
    extra: list[str] = field(default_factory=list)  # more run_pair.sh options

    def cells(self) -> list[Cell]:
        axes = [self.modes, self.losses, self.windows, self.ccs or [""],
                *[[(opt, v) for v in vals] for opt, vals in self.vary]]
        out = []
        for combo in itertools.product(*axes):
            mode, loss, window, cc, *varied = combo
            for rep in range(self.reps):
                out.append(Cell(mode, loss, window, cc, tuple(varied), rep, self.seed + rep,
                                self.size, tuple(self.extra)))
        return out

    def varying(self) -> list[str]:
        """The axes with more than one value, by name."""
        names = [("loss", self.losses), ("window", self.windows), *self.vary,
                 ("cc", self.ccs), ("mode", self.modes)]
        return [n for n, vals in names if len(vals) > 1]


@dataclass(frozen=True)
class Cell:
    mode: str
    loss: str
    window: str
    cc: str
    varied: tuple  # ((option, value), ...)
    rep: int
    seed: int
    size: str
    extra: tuple

    def vary_text(self) -> str:
        return ";".join(f"{o}={v}" for o, v in self.varied)

    def key(self) -> tuple:
        """What makes a measurement the same one (the CSV's identity columns)."""
        return (self.mode, _canon(self.loss), str(parse_size(self.window)), self.cc,
                self.vary_text(), str(self.rep), str(self.seed), str(parse_size(self.size)),
                " ".join(self.extra))

    def name(self) -> str:
        parts = [self.mode, f"loss{self.loss}", f"w{self.window}"]
        if self.cc:
            parts.append(self.cc)
        parts += [f"{o.lstrip('-')}{v}" for o, v in self.varied]
        parts.append(f"rep{self.rep}")
        return re.sub(r"[^A-Za-z0-9.=_-]", "_", "-".join(parts))

    def argv(self) -> list[str]:
        """The run_pair.sh options of this cell (after the sweep's own)."""
        out = ["--mode", self.mode, "--loss", self.loss, "--window", self.window,
               "--seed", str(self.seed), "--size", self.size]
        if self.cc:
            out += ["--cc", self.cc]
        for opt, v in self.varied:
            out += [opt, v]
        return out + list(self.extra)


def _canon(loss: str) -> str:
    return f"{float(loss):g}"


def check(g: Grid) -> Grid:
    """``g`` if it is a grid that can run, else GridError."""
    for m in g.modes:
        if m not in MODES:
            raise GridError(f"--modes: '{m}' is not a mode (gbn or sr)")
    for x in g.losses:
        if not _NUM.match(x) or not 0 <= float(x) <= 100:
            raise GridError(f"--loss: '{x}' is not a loss percentage 0..100")
    if len({_canon(x) for x in g.losses}) != len(g.losses):
        raise GridError("--loss names a value twice")
    for w in g.windows:
        n = parse_size(w)
        if n is None:
            raise GridError(f"--windows: '{w}' is not a size (e.g. 64K)")
        if n < g.mss:
            raise GridError(f"--windows: {w} ({n} bytes) is below one MSS ({g.mss} bytes)")
    if parse_size(g.size) is None:
        raise GridError(f"--size: '{g.size}' is not a size (e.g. 1M)")
    if g.reps < 1:
        raise GridError(f"--reps must be at least 1, not {g.reps}")
    seen = set()
    for opt, _vals in g.vary:
        if opt in OWN:
            raise GridError(f"--vary {opt}: the grid sets {opt} itself (use its own option)")
        if opt in seen:
            raise GridError(f"--vary {opt} is given twice")
        seen.add(opt)
    for opt in g.extra:
        if opt in OWN:
            raise GridError(f"{opt} after --: the grid sets it itself (use the sweep's own "
                            "option)")
    return g


def parse_vary(text: str) -> tuple[str, list[str]]:
    """OPTION=V1,V2 (the option with or without its dashes)."""
    if "=" not in text:
        raise GridError(f"--vary takes OPTION=V1,V2,..., not '{text}'")
    opt, vals = text.split("=", 1)
    opt = opt.strip()
    if not opt:
        raise GridError(f"--vary '{text}': no option named")
    opt = opt if opt.startswith("-") else f"--{opt}"
    return opt, split_list(f"--vary {opt}", vals)
