"""The emulator's command line: values parsed right, bad ones refused with exit status 2."""

from __future__ import annotations

import socket

import pytest
from emu_support import HOST, run_cli

from emulator.cli import main, parse_options


@pytest.mark.parametrize(
    "flags, message",
    [
        (["-L", "-5"], "percentage must be within 0..100"),
        (["-L", "101"], "percentage must be within 0..100"),
        (["-D", "abc"], "not a number"),
        (["-O", "100.5"], "percentage must be within 0..100"),
        (["-B", "100001"], "per 100000 bits"),
        (["-d", "-0.1"], "seconds must be >= 0"),
        (["--jitter", "inf"], "must be finite"),
        (["-s", "0"], "must be > 0"),
        # a hold or a datagram's time on the link too long for the clocks (issue 24, item 9)
        (["-d", "1e300"], "seconds must be <= 1e+06"),
        (["--reorder-hold", "2e6"], "seconds must be <= 1e+06"),
        (["-s", "1e-9"], "at least 0.001"),
        (["-q", "0"], "queue size must be >= 1"),
        (["-o", "localhost"], "expected host:port"),
        (["-o", "127.0.0.1:0"], "port out of range"),
        (["-o", "127.0.0.1:70000"], "port out of range"),
        (["-i", "127.0.0.1:x"], "bad port"),
        (["-p", "41192"], "expected recv_port:send_port"),
        (["-p", "5000:5000"], "must differ"),
        (["--drop", "0,3"], "start at 1"),
        (["--drop", "1,x"], "not an integer"),
        (["--blackhole", "3"], "START:DURATION"),
        (["--ge-p", "200"], "percentage must be within 0..100"),
        (["--no-such-flag"], "unrecognized arguments"),
        (["--stats", "/no/such/dir/stats.json"], "no such directory"),
        (["--queue-packets", "5"], "--queue-packets needs a link speed (-s)"),
        (["-s", "100", "--queue-packets", "0"], "queue size must be >= 1 datagram"),
        (["-s", "100", "--queue-packets", "2.5"], "not an integer"),
        (["--aqm", "codel"], "--aqm codel needs a link speed (-s)"),
        (["-s", "100", "--aqm", "pie"], "invalid choice"),
        (["-s", "100", "--red-min", "3"], "--red-min is a setting of --aqm red"),
        (["-s", "100", "--aqm", "codel", "--red-wq", "0.1"], "--red-wq is a setting of --aqm red"),
        (["-s", "100", "--aqm", "red", "--codel-target", "0.01"],
         "--codel-target is a setting of --aqm codel"),
        (["-s", "100", "--aqm", "red", "--red-min", "20"],
         "--red-min (20) must be below --red-max"),
        (["-s", "100", "--aqm", "red", "--red-min", "-1"], "must be >= 0"),
        (["-s", "100", "--aqm", "red", "--red-max-p", "0"], "must be within (0, 1]"),
        (["-s", "100", "--aqm", "red", "--red-max-p", "1.5"], "must be within (0, 1]"),
        (["-s", "100", "--aqm", "red", "--red-wq", "0"], "must be within (0, 1]"),
        (["-s", "100", "--aqm", "red", "--red-avpkt", "0"], "within 1..65507 bytes"),
        (["-s", "100", "--aqm", "codel", "--codel-target", "0"], "seconds must be > 0"),
        (["-s", "100", "--aqm", "codel", "--codel-interval", "nan"], "must be finite"),
        (["-s", "100", "--aqm", "codel", "--codel-target", "0.2"],
         "--codel-target (0.2 s) must be below --codel-interval (0.1 s)"),
        (["-o", "127.0.0.1:*"], "-o HOST:* (no port) needs --forward-by-port"),
        (["--forward-by-port", "-o", "127.0.0.1:9"], "give -o HOST:*"),
    ],
)
def test_bad_flag_exits_2_with_a_clear_message(flags, message, capsys):
    assert main(flags) == 2
    err = capsys.readouterr().err
    assert "stcp-link: error:" in err
    assert message in err


def test_help_exits_0(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for flag in ("-i", "-o", "-p", "-L", "-B", "-O", "-D", "-d", "-s", "-q", "--jitter",
                 "--ge-p", "--ge-r", "--ge-loss", "--ge-good-loss", "--drop", "--blackhole",
                 "--seed", "--stats", "--trace", "--ready-file", "--queue-packets", "--aqm",
                 "--red-min", "--red-max", "--red-max-p", "--red-wq", "--red-avpkt",
                 "--codel-target", "--codel-interval", "--forward-by-port"):
        assert flag in out
    assert "jitter CAN reorder" in out
    # What the console shows by default is what happens (the 'listening on' line is INFO).
    words = " ".join(out.split())
    assert "default: warnings, and the one line saying where the link listens" in words
    for cause in ("noport", "list", "blackhole", "burst", "loss", "queue", "red", "codel"):
        assert cause in out
    assert "a corrupted datagram is forwarded" in words
    assert "qp, qb" in words and "sojourn" in words


def test_values_are_converted_to_natural_units():
    o = parse_options(["-L", "10", "-B", "5", "-O", "2", "-D", "1", "-d", "0.25", "-s", "800",
                       "-q", "3000", "--ge-p", "1", "--ge-r", "30", "--ge-loss", "80",
                       "--drop", "1,5,9", "--blackhole", "2:1.5", "-i", "localhost:*",
                       "-o", "localhost:9000", "-p", "0:0", "--seed", "7"])
    imp = o.imp
    assert imp.loss == pytest.approx(0.10) and imp.ber == pytest.approx(5e-5)
    assert imp.reorder == pytest.approx(0.02) and imp.dup == pytest.approx(0.01)
    assert imp.delay == 0.25 and imp.rate == 800_000 and imp.queue == 3000
    assert (imp.ge_p, imp.ge_r, imp.ge_loss) == pytest.approx((0.01, 0.30, 0.80))
    assert imp.drop_list == {1, 5, 9} and imp.blackhole == (2.0, 1.5)
    assert (o.accept_host, o.accept_port) == ("127.0.0.1", None)
    assert (o.out_host, o.out_port) == ("127.0.0.1", 9000)
    assert (o.recv_port, o.send_port, o.seed, o.seeded) == (0, 0, 7, True)


def test_queue_limits_either_or_both():
    assert parse_options(["-s", "100"]).imp.queue == 65536  # as before: bytes
    imp = parse_options(["-s", "100", "--queue-packets", "20"]).imp
    assert (imp.queue, imp.queue_packets) == (None, 20)
    imp = parse_options(["-s", "100", "--queue-packets", "20", "-q", "30000"]).imp
    assert (imp.queue, imp.queue_packets) == (30000, 20)
    assert imp.make_bottleneck().limit_packets == 20


def test_aqm_settings_are_parsed_and_defaulted():
    imp = parse_options(["-s", "1000", "--aqm", "red", "--red-min", "3", "--red-max", "9",
                         "--red-max-p", "0.2", "--red-wq", "0.01", "--red-avpkt", "1500"]).imp
    red = imp.make_aqm()
    assert (red.min_th, red.max_th, red.max_p, red.w_q) == (3, 9, 0.2, 0.01)
    assert red.idle_tx == pytest.approx(1500 * 8 / 1_000_000)
    codel = parse_options(["-s", "1000", "--aqm", "codel"]).imp.make_aqm()
    assert (codel.target, codel.interval) == (0.005, 0.1)  # RFC 8289
    codel = parse_options(["-s", "1000", "--aqm", "codel", "--codel-target", "0.01",
                           "--codel-interval", "0.2"]).imp.make_aqm()
    assert (codel.target, codel.interval) == (0.01, 0.2)
    assert parse_options(["-s", "1000"]).imp.make_aqm() is None


def test_forward_by_port_options():
    o = parse_options(["--forward-by-port", "-o", "localhost:*"])
    assert (o.out_host, o.out_port, o.imp.by_port) == ("127.0.0.1", None, True)
    assert not o.imp.transparent  # every datagram is looked at
    o = parse_options(["--forward-by-port"])  # -o defaults to localhost:*
    assert (o.out_host, o.out_port) == ("127.0.0.1", None)


def test_defaults_are_newudpls():
    o = parse_options([])
    assert (o.recv_port, o.send_port) == (41192, 41193)
    assert (o.out_host, o.out_port) == ("127.0.0.1", 41194)
    assert (o.accept_host, o.accept_port) == (None, None)
    assert o.imp.transparent and not o.seeded


@pytest.mark.timeout(60)
def test_subprocess_bad_value_exits_2():
    r = run_cli("-p", "0:0", "-o", f"{HOST}:9", "-L", "150")
    assert r.returncode == 2
    assert "percentage must be within 0..100" in r.stderr


@pytest.mark.timeout(60)
def test_an_unresolvable_i_or_bind_host_is_said_so_not_blamed_on_the_family():
    """With -o on IPv6, an -i or --bind name that resolves nowhere is 'cannot
    resolve' (it was 'not an IPv6 address'); one of the other family still
    hears about the family."""
    for flag in ("-i", "--bind"):
        value = "nosuch.invalid:*" if flag == "-i" else "nosuch.invalid"
        r = run_cli("-p", "0:0", "-o", "[::1]:9", flag, value)
        assert r.returncode == 2 and "cannot resolve host 'nosuch.invalid'" in r.stderr, r.stderr
    r = run_cli("-p", "0:0", "-o", "[::1]:9", "--bind", "127.0.0.1")
    assert r.returncode == 2 and "not an IPv6 address" in r.stderr, r.stderr


@pytest.mark.timeout(60)
def test_subprocess_unresolvable_host_exits_2():
    r = run_cli("-p", "0:0", "-o", "no-such-host.invalid:9")
    assert r.returncode == 2
    assert "cannot resolve host 'no-such-host.invalid'" in r.stderr


@pytest.mark.timeout(60)
def test_subprocess_port_in_use_exits_2():
    busy = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        busy.bind((HOST, 0))
        port = busy.getsockname()[1]
        r = run_cli("-p", f"{port}:0", "-o", f"{HOST}:9")
        assert r.returncode == 2
        assert f"cannot bind receive port 127.0.0.1:{port}" in r.stderr
        r = run_cli("-p", f"0:{port}", "-o", f"{HOST}:9")
        assert r.returncode == 2
        assert f"cannot bind send port 127.0.0.1:{port}" in r.stderr
    finally:
        busy.close()
