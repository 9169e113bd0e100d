"""The benchmark's process groups: a child spawned as one end of a loopback
transfer runs on that end's CPU only, and the bench itself keeps its own."""

from __future__ import annotations

import os
import sys

import pytest

from bench.procs import ENDS, Group, end_cpus

pytestmark = pytest.mark.timeout(60)

SHOW = "import os; print(sorted(os.sched_getaffinity(0)))"


@pytest.mark.skipif(end_cpus() is None, reason="needs CPU affinity and two CPUs")
def test_each_end_runs_on_its_own_cpu(tmp_path):
    cpus = end_cpus()
    assert cpus[0] != cpus[1]
    mine = os.sched_getaffinity(0)
    with Group(tmp_path, cpus) as g:
        children = {end: g.spawn(f"child-{end}", [sys.executable, "-c", SHOW], end)
                    for end in ENDS}
        free = g.spawn("free", [sys.executable, "-c", SHOW])
        for child in (*children.values(), free):
            assert child.wait(30) == 0, child.describe()
    for end, child in children.items():
        assert child.stdout.strip() == str([cpus[ENDS.index(end)]])
    assert free.stdout.strip() == str(sorted(mine))
    assert os.sched_getaffinity(0) == mine


def test_without_cpus_nothing_is_pinned(tmp_path):
    if not hasattr(os, "sched_getaffinity"):
        pytest.skip("no CPU affinity here")
    with Group(tmp_path) as g:
        child = g.spawn("child", [sys.executable, "-c", SHOW], "send")
        assert child.wait(30) == 0, child.describe()
    assert child.stdout.strip() == str(sorted(os.sched_getaffinity(0)))


def test_a_child_that_never_gets_ready_says_what_it_printed(tmp_path):
    """A program that never writes its ready file: the error carries what it
    printed, the only clue there is (a profiled run once failed this way)."""
    with Group(tmp_path) as g:
        child = g.spawn("stuck", [sys.executable, "-c",
                                  "import sys, time; print('stuck at start', file=sys.stderr, "
                                  "flush=True); time.sleep(30)"])
        with pytest.raises(TimeoutError) as err:
            g.wait_ready(child, g.ready_path("stuck"), timeout=2.0)
    assert "no ready file" in str(err.value) and "stuck at start" in str(err.value)
