"""The guided labs of docs/LABS.md, read from that page itself, so that the
page, ``--lab NAME`` and the test that runs every lab cannot drift apart.

Each lab's command is the fenced ``sh`` block just before a marker::

    ```sh
    ./run_pair.sh --clean --blackhole 0.3:4 --size 8M --dir runs/lab-outage
    ```
    <!-- lab: outage; quick: --size 1M --blackhole 0.1:1; needs: --cc -->

``lab`` names it; ``quick`` (optional) holds options that make a short run
of it (the test appends them); ``needs`` (optional) names options the lab
depends on that this version may not have yet: while it lacks them, the
command must be refused as bad usage (the test checks), and the page says
so beside the lab.

``./run_pair.sh --lab NAME [OPTIONS]`` runs a ``run_pair.sh`` lab's
options followed by OPTIONS (later options win); ``stcp-experiment --lab
NAME`` likewise for a sweep lab.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

PAGE = Path(__file__).resolve().parents[1] / "docs" / "LABS.md"
_MARK = re.compile(r"<!--\s*lab:\s*([a-z0-9-]+)\s*(;[^>]*)?-->")
PROGRAMS = {"./run_pair.sh": "run_pair", "stcp-experiment": "experiment",
            ".venv/bin/stcp-experiment": "experiment"}


class LabError(Exception):
    """No such lab, or a lab page that cannot be read."""


@dataclass
class Lab:
    name: str
    program: str  # "run_pair" or "experiment"
    argv: list[str]  # the options, after the program
    quick: list[str] = field(default_factory=list)
    needs: list[str] = field(default_factory=list)
    command: str = ""  # as written on the page


def read(page: Path = PAGE) -> dict[str, Lab]:
    try:
        text = page.read_text(encoding="utf-8")
    except OSError as exc:
        raise LabError(f"cannot read {page}: {exc.strerror or exc}") from None
    labs: dict[str, Lab] = {}
    for m in _MARK.finditer(text):
        name = m.group(1)
        before = text[:m.start()].rstrip()
        start = before.rfind("```sh\n")
        if start < 0 or not before.endswith("```") or before.find("```", start + 6) != \
                len(before) - 3:
            raise LabError(f"{page}: lab {name} has no ```sh block just before its marker")
        command = before[start + 6:-3].replace("\\\n", " ").strip()
        try:
            words = shlex.split(command)
        except ValueError as exc:
            raise LabError(f"{page}: lab {name}'s command cannot be read: {exc}") from None
        if not words or words[0] not in PROGRAMS:
            raise LabError(f"{page}: lab {name}'s command starts with "
                           f"{words[0] if words else 'nothing'!r}, not one of "
                           f"{', '.join(PROGRAMS)}")
        lab = Lab(name, PROGRAMS[words[0]], words[1:], command=command)
        for part in (m.group(2) or "").split(";"):
            key, _, value = part.partition(":")
            if key.strip() == "quick":
                lab.quick = shlex.split(value)
            elif key.strip() == "needs":
                lab.needs = value.split()
        if name in labs:
            raise LabError(f"{page}: two labs are called {name}")
        labs[name] = lab
    return labs


def get(name: str, program: str) -> Lab:
    labs = read()
    if name not in labs:
        raise LabError(f"no lab called {name!r} in docs/LABS.md (there are: "
                       f"{', '.join(sorted(labs))})")
    lab = labs[name]
    if lab.program != program:
        other = "./run_pair.sh" if lab.program == "run_pair" else "stcp-experiment"
        raise LabError(f"lab {name} is run with {other} --lab {name}")
    return lab


def pair_argv(name: str) -> list[str]:
    """run_pair.sh's options for lab ``name``."""
    return list(get(name, "run_pair").argv)


def sweep_argv(name: str) -> list[str]:
    """stcp-experiment's options for lab ``name``."""
    return list(get(name, "experiment").argv)


def merged(first: list[str], then: list[str]) -> list[str]:
    """``first`` then ``then`` (later options win), each one's run_pair.sh
    options after ``--`` kept after one ``--``."""
    def cut(argv):
        if "--" in argv:
            i = argv.index("--")
            return argv[:i], argv[i + 1:]
        return argv, []

    a, a_extra = cut(first)
    b, b_extra = cut(then)
    extra = a_extra + b_extra
    return a + b + (["--", *extra] if extra else [])
