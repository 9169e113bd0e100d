"""The benchmark's reading of py-spy's raw stacks (``record --threads
--format raw``): only the transfer counts."""

from __future__ import annotations

from bench.profile import parse_raw
from bench.suite import Context, Plan, worst_loss_case

MAIN = "thread (11): MainThread"
RAW = "\n".join([
    ";".join([MAIN, "<module> (sender/__main__.py:5)",
              "_find_and_load (<frozen importlib._bootstrap>:1)", "f (x.py:1) 7"]),
    ";".join([MAIN, "main (sender/__main__.py:90)", "setup (runtime/progutil.py:40)",
              "_extend_dict (sysconfig.py:253) 50"]),
    ";".join([MAIN, "main (sender/__main__.py:90)", "Sender.run (sender/app.py:140)",
              "EndpointBase.wait_finished (runtime/endpoint.py:57) 3"]),
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


def loss_record(window: int, loss: float, goodput: float, ok: bool = True) -> dict:
    return {"section": "loss", "name": "sr", "window": window, "loss": loss, "ok": ok,
            "goodput": goodput, "info": {"rtt_min_ms": 10.0}}


def test_the_lossy_profile_takes_sections_2s_worst_case(tmp_path):
    """The second profile is of the case where sr did worst against its
    model, by median goodput over the model's, not of the biggest loss."""
    ctx = Context(Plan.full(), tmp_path)
    assert worst_loss_case(ctx) is None  # section 2 did not run
    mib = 1 << 20
    # window-limited path (no ceiling measured): model = (1 - p) W / RTT
    ctx.records += [loss_record(mib, 20, 0.8 * mib / 0.01 * 0.80),  # 80% of its model
                    loss_record(mib, 10, 0.9 * mib / 0.01 * 0.70),  # 70%
                    loss_record(mib, 10, 0.9 * mib / 0.01 * 0.72),
                    loss_record(mib, 10, 0.0, ok=False),  # a failed run does not count
                    loss_record(65536, 20, 0.8 * 65536 / 0.01 * 0.95)]
    worst = worst_loss_case(ctx, seconds=1.0)
    assert (worst["window"], worst["loss"]) == (mib, 10)
    assert abs(worst["share"] - 0.71) < 1e-9
    assert worst["flags"] == ["-d", f"{ctx.plan.delay:g}", "-L", "10"]
    assert worst["size"] <= 0.9 * mib / 0.01 * 1.0 < 2 * worst["size"]
