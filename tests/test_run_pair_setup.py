"""What run_pair.sh sets up and leaves on disk: the .venv it makes on first
use, only once the options are known to be good."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from pair_support import RUN_PAIR, show

pytestmark = pytest.mark.timeout(180)


def test_first_use_checks_the_options_before_setting_up(tmp_path):
    """A fresh tree (no .venv): bad options and --dry-run are answered with
    python3 alone, and nothing is installed; a run would set .venv up first."""
    tree = tmp_path / "fresh"
    tree.mkdir()
    shutil.copy2(RUN_PAIR, tree / "run_pair.sh")
    shutil.copytree(RUN_PAIR.parent / "harness", tree / "harness",
                    ignore=shutil.ignore_patterns("__pycache__"))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}

    def fresh(*args):
        return subprocess.run([str(tree / "run_pair.sh"), *args], capture_output=True,
                              text=True, timeout=60, env=env, cwd=tmp_path,
                              stdin=subprocess.DEVNULL)

    res = fresh("--loss", "150")
    assert res.returncode == 2, show(res)
    assert "run_pair.sh: error: --loss takes a percentage 0..100, not '150'" in res.stderr
    res = fresh("--dry-run", "--dir", str(tmp_path / "d"))
    assert res.returncode == 0, show(res)
    assert f"{tree}/.venv/bin/python -m sender" in res.stdout
    assert fresh("--help").returncode == 0
    assert not (tree / ".venv").exists() and not (tmp_path / "d").exists()
