"""Every option's range is checked at start, and an OS error is one line
and an exit code (issue 24, item 9): ``stcp-recv --mss 100000`` used to be
accepted and crash with a traceback on connect, an output path it cannot
create (``/proc/x``) printed a traceback, ``--give-up 1e300`` killed a
thread (a timer wait beyond the platform's clock), ``--time-wait -1`` and
``nan`` were taken."""

from __future__ import annotations

import os
import subprocess

import pytest
from support import HOST, PY, ROOT, make_file

from runtime import progutil as pu

pytestmark = pytest.mark.timeout(120)

S = ["sender", "{src}", HOST, "5000", "64K", "0"]
S_BIG = ["sender", "{src}", HOST, "5000", "1M", "0"]
R = ["receiver", "{dst}", "0", HOST, "5000"]


@pytest.mark.parametrize("argv,needle", [
    (R + ["--mss", "100000"], "does not fit in a UDP datagram"),
    (S_BIG + ["--mss", "65488"], "(at most 65487)"),
    (R + ["--mss", "0"], "must be positive"),
    (R + ["--buffer", "2G"], "largest window TCP can advertise"),
    (S + ["--give-up", "1e300"], "too long (at most 1e+06 s)"),
    (R + ["--listen-timeout", "2e6"], "too long"),
    (S + ["--min-rto", "1e7"], "too long"),
    (S + ["--max-rto", "inf"], "must be a positive number"),
    (S + ["--time-wait", "-1"], "must be 0 or a positive number"),
    (S + ["--time-wait", "nan"], "must be 0 or a positive number"),
    (R + ["--write-delay", "1e9"], "too long"),
    (S + ["--min-rto", "2", "--max-rto", "1"], "--min-rto must not exceed --max-rto"),
    (R + ["--min-rto", "2", "--max-rto", "1"], "--min-rto must not exceed --max-rto"),
    (["receiver", "serve", "{tmp}", "0", HOST, "--min-rto", "2", "--max-rto", "1"],
     "--min-rto must not exceed --max-rto"),
    (R + ["--delayed-ack", "0.5"], "under 0.5 s"),
    (R + ["--delayed-ack", "-0.01"], "must be 0 or a positive number"),
    (["receiver", "serve", "{tmp}", "0", HOST, "--delayed-ack", "nan"],
     "must be 0 or a positive number"),
    (["receiver", "serve", "{tmp}", "0", HOST, "5000", "--mss", "70000"],
     "does not fit in a UDP datagram"),
    (["receiver", "/proc/x", "0", HOST, "5000", "--listen-timeout", "1"], "/proc"),
])
def test_bad_value_is_one_line_and_exit_2(tmp_path, argv, needle):
    src = make_file(tmp_path / "in.bin", 10)
    argv = [a.format(src=src, dst=tmp_path / "out.bin", tmp=tmp_path) for a in argv]
    res = subprocess.run([PY, "-m", *argv], capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr
    errors = [line for line in res.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and needle in errors[0], res.stderr


def test_the_largest_mss_fits_a_datagram():
    """MAX_MSS + the 20-byte header is the largest UDP payload over IPv4."""
    assert pu.MAX_MSS + 20 == 65535 - 20 - 8
    assert pu.mss_bytes(str(pu.MAX_MSS)) == pu.MAX_MSS
    assert pu.buffer_size("1073725440") == 0xFFFF << 14


def test_an_os_error_is_one_line():
    exc = FileNotFoundError(2, "No such file or directory", "/proc/x.part")
    assert pu.os_error(exc) == "No such file or directory: /proc/x.part"


@pytest.mark.parametrize("module,prog", [("sender", "stcp-send"), ("receiver", "stcp-recv")])
def test_usage_and_errors_name_the_installed_command(module, prog):
    """issue 24, item 10: the usage line said `sender`/`receiver`."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    res = subprocess.run([PY, "-m", module, "--help"], capture_output=True, text=True,
                         env=env, timeout=30)
    assert res.returncode == 0 and res.stdout.startswith(f"usage: {prog} "), res.stdout[:200]
    res = subprocess.run([PY, "-m", module, "--mss", "0"], capture_output=True, text=True,
                         env=env, timeout=30)
    assert res.returncode == 2 and res.stderr.startswith(f"{prog}: error: "), res.stderr
