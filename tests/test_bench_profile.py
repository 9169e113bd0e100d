"""The benchmark's reading of py-spy's raw stacks (``record --threads
--format raw``): only the transfer counts."""

from __future__ import annotations

from bench.profile import parse_raw

MAIN = "thread (11): MainThread"
RAW = "\n".join([
    ";".join([MAIN, "<module> (sender/__main__.py:5)",
              "_find_and_load (<frozen importlib._bootstrap>:1)", "f (x.py:1) 7"]),
    ";".join([MAIN, "main (sender/__main__.py:90)", "setup (common/progutil.py:40)",
              "_extend_dict (sysconfig.py:253) 50"]),
    ";".join([MAIN, "main (sender/__main__.py:90)", "Sender.run (sender/app.py:140)",
              "EndpointBase.wait_finished (common/endpoint.py:57) 3"]),
    ";".join(["thread (12): transmitter", "Thread._bootstrap (threading.py:995)",
              "Sender._transmitter (sender/app.py:200)",
              "SenderCore.take (common/sender_core.py:400) 20"]),
    MAIN + " 4",
])


def test_only_the_transfer_counts():
    p = parse_raw(RAW)
    assert p["total"] == 23  # run() in the main thread, and the worker threads
    assert p["imports"] == 7 + 50 + 4  # imports, set-up, no Python frame
    assert p["threads"] == {"MainThread": 3, "transmitter": 20}
    assert p["self"]["SenderCore.take (common/sender_core.py)"] == 20
    assert "_extend_dict (sysconfig.py)" not in p["self"]
