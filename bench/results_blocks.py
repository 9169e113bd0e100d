"""The benchmarks' own blocks of RESULTS.md.

``python -m bench`` writes RESULTS.md whole; a benchmark run on its own
(bench_threads, bench_cc, bench_flows, bench_serve, each with ``--results``)
owns one block of it between two HTML comments, replaces only that block,
and the writer of the rest of the file copies every block back unchanged.
"""

from __future__ import annotations

from pathlib import Path


class Block:
    """One benchmark's block: its markers, its heading, how it is written and kept."""

    def __init__(self, name: str, heading: str):
        self.begin = f"<!-- {name}: begin (python -m bench.{name} --results) -->"
        self.end = f"<!-- {name}: end -->"
        self.heading = heading

    def write(self, text: str, path: Path) -> None:
        """Put ``text`` into RESULTS.md under the heading, replacing this block
        where it is already there, else appending it."""
        old = path.read_text() if path.is_file() else ""
        block = f"{self.begin}\n## {self.heading}\n\n{text}\n{self.end}\n"
        if self.begin in old and self.end in old:
            head, rest = old.split(self.begin, 1)
            new = head + block + rest.split(self.end, 1)[1].lstrip("\n")
        else:
            new = old.rstrip("\n") + "\n\n" + block
        path.write_text(new)

    def kept(self, results_md: Path) -> str:
        """This block as it stands in RESULTS.md, markers included ('' if none),
        for the writer of the rest of that file to keep."""
        try:
            old = results_md.read_text()
        except OSError:
            return ""
        if self.begin not in old or self.end not in old:
            return ""
        inside = old.split(self.begin, 1)[1].split(self.end, 1)[0]
        return "\n" + self.begin + inside + self.end + "\n"


THREADS = Block("bench_threads", "Thread tracing overhead (bench/bench_threads.py)")
CC = Block("bench_cc", "Congestion control (bench/bench_cc.py)")
FLOWS = Block("bench_flows", "Many flows through one bottleneck (bench/bench_flows.py)")
SERVE = Block("bench_serve", "stcp-serve's costs (bench/bench_serve.py)")

#: In the order they follow the main tables.
ALL = (THREADS, CC, FLOWS, SERVE)


def kept_blocks(results_md: Path) -> str:
    """Every benchmark's block of RESULTS.md, in order, for ``python -m bench``
    and bench/report to write back after their own tables."""
    return "".join(b.kept(results_md) for b in ALL)
