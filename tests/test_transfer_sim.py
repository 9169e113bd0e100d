"""End to end through tests/sim.py: both cores, a lossy channel, a fake clock.

Every run must hand over the file byte for byte and leave both ends in DONE
(or, where a failure is provoked, both in ABORTED).  Runs are seeded, so a
failure reproduces exactly.
"""

from __future__ import annotations

import random

import pytest
from sim import Channel, run_transfer

from common.receiver_core import ReceiverState
from common.segment import ACK, FIN, RST, SYN, decode
from common.sender_core import SenderState

MSS = 1000  # the sim's default
SIZES = {"empty": 0, "one": 1, "odd": 12_345, "mss_multiple": 5 * MSS, "200k": 204_801}
TIME_LIMIT = 5000.0


def payload(n: int, seed: int = 0) -> bytes:
    return random.Random(n * 1_000_003 + seed).randbytes(n)


def forward_indices(data: bytes, mode: str) -> dict[str, int]:
    """1-based indices of landmark datagrams on the forward path of a clean run
    (the drop_list numbering): the third ACK, the last data segment, the first
    FIN and the final ACK."""
    res = run_transfer(data, mode=mode, time_limit=TIME_LIMIT)
    assert res.output == data
    fwd = [decode(raw) for to, raw in res.sent_wire if to == "r"]
    idx = {}
    for i, seg in enumerate(fwd, 1):
        if seg.flags == ACK and not seg.payload and "third_ack" not in idx:
            idx["third_ack"] = i
        if seg.payload:
            idx["last_data"] = i
        if seg.flags & FIN and "fin" not in idx:
            idx["fin"] = i
    idx["final_ack"] = len(fwd)
    assert fwd[0].flags == SYN
    assert fwd[-1].flags == ACK and not fwd[-1].payload
    idx.setdefault("last_data", idx["fin"])  # an empty file: the FIN is the last
    return idx


IMPAIRMENTS = [
    "clean", "loss10", "loss30_one_way", "corrupt5", "reorder", "dup10", "lossy_acks",
    "syn_lost", "synack_lost", "third_ack_lost", "last_data_lost", "fin_lost", "final_ack_lost",
]


def channels(name: str, data: bytes, mode: str) -> tuple[Channel, Channel]:
    if name == "clean":
        return Channel(), Channel()
    if name == "loss10":
        return Channel(loss=0.10), Channel(loss=0.10)
    if name == "loss30_one_way":
        return Channel(loss=0.30), Channel()
    if name == "corrupt5":
        return Channel(corrupt=0.05), Channel(corrupt=0.05)
    if name == "reorder":
        return Channel(jitter=0.05), Channel(jitter=0.05)
    if name == "dup10":
        return Channel(dup=0.10), Channel(dup=0.10)
    if name == "lossy_acks":
        return Channel(), Channel(loss=0.30)
    if name == "syn_lost":
        return Channel(drop_list=frozenset({1})), Channel()
    if name == "synack_lost":
        return Channel(), Channel(drop_list=frozenset({1}))
    idx = forward_indices(data, mode)
    which = {"third_ack_lost": "third_ack", "last_data_lost": "last_data", "fin_lost": "fin",
             "final_ack_lost": "final_ack"}[name]
    return Channel(drop_list=frozenset({idx[which]})), Channel()


def check_delivered(res, data: bytes, what: str = "") -> None:
    assert res.output == data, f"{what}: {len(res.output)} of {len(data)} bytes, " \
        f"sender {res.sender.state} ({res.sender.error}), receiver {res.receiver.state}"
    assert res.sender.state == SenderState.DONE, (what, res.sender.state, res.sender.error)
    assert res.receiver.state == ReceiverState.DONE, (what, res.receiver.state, res.receiver.error)
    assert res.renamed, what
    assert res.sender.delivered, what
    assert res.sender.error is None and res.receiver.error is None, what


@pytest.mark.timeout(60)
@pytest.mark.parametrize("size", list(SIZES), ids=list(SIZES))
@pytest.mark.parametrize("impairment", IMPAIRMENTS)
@pytest.mark.parametrize("mode", ["gbn", "sr"])
def test_matrix(mode, impairment, size):
    data = payload(SIZES[size])
    fwd, bwd = channels(impairment, data, mode)
    heavy = impairment in ("loss10", "loss30_one_way", "lossy_acks", "reorder")
    window = 16_000 if mode == "gbn" and heavy else 64 * 1024
    res = run_transfer(data, mode=mode, forward=fwd, backward=bwd, window=window,
                       seed=SIZES[size] + 17, time_limit=TIME_LIMIT)
    check_delivered(res, data, f"{mode}/{impairment}/{size}")
    if impairment in ("syn_lost", "synack_lost"):
        assert res.sender.stats.rexmit_timeout >= 1  # the SYN went again
    if impairment == "corrupt5" and SIZES[size] > 10 * MSS:
        assert res.corrupt_dropped > 0
    if impairment == "fin_lost":
        fins = [raw for to, raw in res.sent_wire if to == "r" and decode(raw).flags & FIN]
        assert len(fins) >= 2
    if impairment == "final_ack_lost":
        assert res.receiver.stats.fin_rexmits >= 1


@pytest.mark.timeout(60)
@pytest.mark.parametrize("loss", [0.0, 0.1])
def test_sr_sender_with_gbn_receiver(loss):
    data = payload(54_321)
    res = run_transfer(data, mode="sr", rmode="gbn", forward=Channel(loss=loss, jitter=0.01),
                       backward=Channel(loss=loss), window=16_000, seed=3,
                       time_limit=TIME_LIMIT)
    check_delivered(res, data, f"sr->gbn loss {loss}")
    assert not res.sender.sack_ok and res.sender.gbn  # fell back to cumulative ACKs
    assert not res.receiver.sack_ok
    assert not any(decode(raw).sack for to, raw in res.sent_wire if to == "s")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", ["gbn", "sr"])
def test_wraparound_isns_through_loss(mode):
    data = payload(100_001)
    res = run_transfer(data, mode=mode, isn_s=2**32 - 3, isn_r=2**32 - 3,
                       forward=Channel(loss=0.05, jitter=0.005), backward=Channel(loss=0.05),
                       window=16_000, seed=11, time_limit=TIME_LIMIT)
    check_delivered(res, data, f"wrap {mode}")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", ["gbn", "sr"])
def test_digest_mismatch_aborts_both(mode):
    data = payload(10_000)
    res = run_transfer(data, mode=mode, tamper_digest=True, time_limit=TIME_LIMIT)
    assert res.receiver.state == ReceiverState.ABORTED
    assert not res.renamed
    assert res.output == data  # the bytes were right; the digest said otherwise
    assert res.sender.state == SenderState.ABORTED
    assert res.sender.error and "reset" in res.sender.error
    rsts = [raw for to, raw in res.sent_wire if to == "s" and decode(raw).flags & RST]
    assert rsts
    assert not res.sender.delivered


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", ["gbn", "sr"])
def test_slow_writer_forces_zero_windows(mode):
    data = payload(60_000)
    # room for four segments exactly (each carries MSS - 12 bytes beside
    # the RFC 7323 timestamps), so that the window does close
    res = run_transfer(data, mode=mode, capacity=4 * (MSS - 12), window=64 * 1024,
                       write_rate=50_000.0, seed=5, time_limit=TIME_LIMIT)
    check_delivered(res, data, f"slow writer {mode}")
    assert res.receiver.stats.zero_windows >= 1
    assert res.sender.stats.probes > 0 or res.receiver.stats.window_updates > 0
    # the writer, not loss, set the pace: about size / rate seconds
    assert res.now >= len(data) / 50_000.0


@pytest.mark.timeout(60)
@pytest.mark.parametrize("loss", [0.05, 0.2])
@pytest.mark.parametrize("impairment", ["loss", "jitter", "dup"])
def test_sr_ack_bursts(impairment, loss):
    """The sender takes the ACKs that reach it together as one burst, as the
    program takes one read of its socket (SenderCore.on_segments): the file
    still gets through whole, and bursts did happen."""
    data = payload(300_000, 3)
    fwd = Channel(loss=loss, jitter=0.004 if impairment == "jitter" else 0.0,
                  dup=0.1 if impairment == "dup" else 0.0)
    bursts = []
    res = run_transfer(data, mode="sr", forward=fwd, backward=Channel(loss=loss / 2),
                       window=64 * 1024, seed=11, time_limit=TIME_LIMIT, ack_bursts=True,
                       on_burst=bursts.append)
    check_delivered(res, data, f"{impairment}/{loss}")
    assert max(bursts) > 1
    st = res.sender.stats
    assert st.rexmit_sack + st.rexmit_fast + st.rexmit_rack > 0


def random_profile(rng: random.Random) -> dict:
    def chan():
        return Channel(loss=rng.choice([0, 0, 0.02, 0.1, 0.2]),
                       dup=rng.choice([0, 0, 0.05, 0.15]),
                       corrupt=rng.choice([0, 0, 0.02, 0.1]),
                       delay=rng.choice([0.001, 0.01, 0.05]),
                       jitter=rng.choice([0, 0, 0.005, 0.03]))
    mode = rng.choice(["gbn", "sr"])
    return dict(
        mode=mode,
        rmode=rng.choice([None, None, None, "gbn"]),
        forward=chan(),
        backward=chan(),
        window=rng.choice([8_000, 16_000]) if mode == "gbn" else rng.choice([8_000, 64_000]),
        capacity=rng.choice([16_000, 256 * 1024]),
        isn_s=rng.choice([rng.randrange(2**32), 2**32 - rng.randrange(1, 4000)]),
        isn_r=rng.choice([rng.randrange(2**32), 2**32 - rng.randrange(1, 4)]),
        seed=rng.randrange(2**31),
        ack_bursts=rng.random() < 0.5,
    )


@pytest.mark.timeout(120)
def test_random_profiles():
    failures = []
    for i in range(50):
        seed = 1000 + i
        rng = random.Random(seed)
        profile = random_profile(rng)
        data = payload(rng.choice([0, 1, 999, 1000, 1001, 33_333, 80_000]), seed)
        res = run_transfer(data, time_limit=TIME_LIMIT, **profile)
        ok = (res.output == data and res.sender.state == SenderState.DONE
              and res.receiver.state == ReceiverState.DONE and res.renamed)
        if not ok:
            failures.append(f"seed {seed}: {len(res.output)}/{len(data)} bytes, "
                            f"{res.sender.state.value}/{res.receiver.state.value}, "
                            f"error {res.sender.error or res.receiver.error!r}, {profile}")
    assert not failures, "\n".join(failures)
