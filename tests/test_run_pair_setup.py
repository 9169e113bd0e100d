"""What run_pair.sh sets up and leaves on disk: the .venv it makes on first
use, only once the options are known to be good; its run directory (issue
24: one that holds an earlier run is refused, never overwritten; compact
captures with --snaplen)."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess

import pytest
from pair_support import RUN_PAIR, run_pair, show

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


def test_a_directory_with_an_earlier_run_is_refused(tmp_path):
    """Issue 24: --dir with an earlier run in it used to delete that run.  It
    is refused now (exit 2, one line), and nothing in it is touched; a
    directory with other files only is used as it is."""
    rundir = tmp_path / "run"
    rundir.mkdir()
    earlier = {"sender.log": "the earlier run", "received.bin": "its file",
               "notes.txt": "mine"}
    for name, text in earlier.items():
        (rundir / name).write_text(text)
    for extra in ([], ["--dry-run"]):
        res = run_pair("--size", "1K", "--clean", "--no-analysis", "--dir", rundir, *extra,
                       timeout=30)
        assert res.returncode == 2, show(res)
        line = f"run_pair.sh: error: --dir {rundir} holds an earlier run (sender.log, " \
               "received.bin); it is kept: remove it or give another --dir"
        assert res.stderr.strip() == line, show(res)
    assert {p.name: p.read_text() for p in rundir.iterdir()} == earlier


def test_snaplen_keeps_the_captures_to_their_headers(tmp_path):
    rundir = tmp_path / "run"
    res = run_pair("--size", "200K", "--seed", "21", "--dir", rundir, "--clean",
                   "--snaplen", "100")
    assert res.returncode == 0, show(res)
    for name in ("sender.pcap", "receiver.pcap"):
        data = (rundir / name).read_bytes()
        magic, _, _, _, _, snaplen, _ = struct.unpack_from("=IHHiIII", data)
        assert magic == 0xA1B2C3D4 and snaplen == 100
        records, longest, off = 0, 0, 24
        while off < len(data):
            _, _, caplen, origlen = struct.unpack_from("=IIII", data, off)
            assert caplen == min(origlen, 100)
            longest = max(longest, origlen)
            records, off = records + 1, off + 16 + caplen
        assert records > 100 and longest > 1000  # full segments, cut to 100 bytes
    assert "--snaplen" not in res.stdout  # the captures are small: no advice
