"""docs/LABS.md never rots: every lab's command, read from the page itself
(harness/labs.py), runs in a short version (its ``quick`` options: small
files, short outages) and succeeds; a lab marked as needing options this
version lacks must be refused as bad usage naming one of them, so that the
mark comes off when they land.  Also: --lab NAME runs the page's command."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pair_support import RUN_PAIR, no_leftovers
from support import ROOT

from harness import labs

LABS = labs.read()
PY = sys.executable

pytestmark = pytest.mark.timeout(300)


def _argv(lab: labs.Lab, out) -> list[str]:
    if lab.program == "run_pair":
        return [str(RUN_PAIR), *lab.argv, *lab.quick, "--dir", str(out)]
    return [PY, "-m", "harness.sweep", *labs.merged(lab.argv, [*lab.quick, "--dir", str(out)])]


def test_the_page_has_the_labs_the_course_needs():
    assert len(LABS) >= 8
    for name in ("gbn-vs-sr", "outage", "fast-vs-timeout", "flow-control", "lock-contention",
                 "sawtooth", "bufferbloat", "fairness"):
        assert name in LABS, name
    page = labs.PAGE.read_text()
    for lab in LABS.values():
        if lab.needs:
            section = page.split(lab.command)[0].rsplit("## ", 1)[1]
            assert "not yet in this version" in " ".join(section.split()), lab.name


@pytest.mark.parametrize("name", sorted(LABS))
def test_every_lab_runs_in_its_short_version(name, tmp_path):
    lab = LABS[name]
    out = tmp_path / "lab"
    res = subprocess.run(_argv(lab, out), capture_output=True, text=True, cwd=ROOT,
                         timeout=240)
    text = res.stdout + res.stderr
    if lab.needs:
        assert res.returncode == 2, f"lab {name} ran: take its 'needs' mark off\n{text[-3000:]}"
        assert any(opt in res.stderr for opt in lab.needs), text[-2000:]
        return
    assert res.returncode == 0, text[-4000:]
    if lab.program == "run_pair":
        assert "VERDICT: OK" in res.stdout
        no_leftovers(str(out))
    else:
        assert (out / "results.csv").is_file() and "medians per cell" in res.stdout


def test_lab_names_a_page_command_and_later_options_win(tmp_path):
    res = subprocess.run([str(RUN_PAIR), "--lab", "outage", "--size", "64K", "--dry-run",
                          "--dir", str(tmp_path / "d")], capture_output=True, text=True,
                         cwd=ROOT, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "--blackhole 0.3:4" in res.stdout and "65536" in res.stdout


def test_an_unknown_lab_is_one_line(tmp_path):
    for argv in ([str(RUN_PAIR), "--lab", "nope"], [PY, "-m", "harness.sweep", "--lab", "nope"],
                 [str(RUN_PAIR), "--lab", "gbn-vs-sr"]):
        res = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=60)
        assert res.returncode == 2 and res.stderr.count("\n") == 1, res.stderr
        assert "lab" in res.stderr
