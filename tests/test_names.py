"""The name option (docs/PROTOCOL.md §9): the pure name check, the option on
the wire, the sender's SYN, and what a receiver that predates it does."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.names import MAX_NAME_BYTES, BadName, check_name, shown
from common.receiver_core import ReceiverCore, ReceiverState
from common.segment import ACK, RST, SYN, Segment, SegmentError, decode, encode
from common.sender_core import SenderCore, SenderState
from tests.sim import Channel, run_transfer

pytestmark = pytest.mark.timeout(60)

# --- the pure check ---------------------------------------------------------------

HOSTILE = {
    "parent path": b"../x",
    "absolute path": b"/etc/passwd",
    "subdirectory": b"a/b",
    "dot dot": b"..",
    "dot": b".",
    "empty": b"",
    "NUL inside": b"a\x00b",
    "NUL alone": b"\x00",
    "300 bytes": b"a" * 300,
    "256 bytes": b"a" * 256,
    "invalid UTF-8": b"\xff\xfe.txt",
    "truncated UTF-8": b"caf\xc3",
    "overlong UTF-8 slash": b"a\xc0\xafb",
    "UTF-16 surrogate in UTF-8": b"\xed\xa0\x80",
    "backslash": b"a\\b",
    "windows parent": b"..\\x",
    "newline": b"a\nb",
    "carriage return": b"report\r",
    "tab": b"a\tb",
    "escape": b"\x1b[31mred",
    "DEL": b"a\x7f",
    "C1 control": "a\u0085b".encode(),
    "line separator": "a\u2028b".encode(),
    "right-to-left override": "exe.\u202etxt".encode(),
    "byte order mark": "\ufeffname".encode(),
    "leading dot": b".bashrc",
    "leading dot dot": b"..hidden",
    "leading space": b" x",
    "trailing space": b"x ",
    "slash only": b"/",
    "trailing slash": b"x/",
}


@pytest.mark.parametrize("raw", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_names_refused(raw):
    with pytest.raises(BadName) as info:
        check_name(raw)
    assert str(info.value)  # a reason to log


@pytest.mark.parametrize("name", ["report.pdf", "a", "x" * MAX_NAME_BYTES, "data.part",
                                  "café.txt", "日本語.txt", "with space.txt", "a..b",
                                  "trailing.", "-dash", "\u00e9" * 127])
def test_plain_names_accepted(name):
    assert check_name(name.encode()) == name


def test_limit_counts_bytes_not_characters():
    with pytest.raises(BadName, match="256 bytes"):
        check_name(("\u00e9" * 128).encode())  # 128 characters, 256 bytes


@settings(max_examples=500)
@given(st.binary(max_size=300))
def test_any_bytes_either_a_plain_name_or_bad_name(raw):
    try:
        name = check_name(raw)
    except BadName:
        return
    assert name.encode() == raw
    assert "/" not in name and "\\" not in name and "\x00" not in name
    assert name not in (".", "..") and not name.startswith(".")
    assert 1 <= len(raw) <= MAX_NAME_BYTES


@settings(max_examples=300)
@given(st.text(max_size=80))
def test_any_text_either_a_plain_name_or_bad_name(text):
    try:
        name = check_name(text.encode("utf-8", "surrogatepass"))
    except BadName:
        return
    assert not any(ord(ch) < 0x20 or ch in "/\\\x7f" for ch in name)


def test_shown_escapes_what_a_log_must_not_print():
    assert shown(b"a\nb\x00\xff") == "a\\x0ab\\x00\\xff"
    assert shown(b"x" * 100).endswith("...")


# --- on the wire ------------------------------------------------------------------

def test_name_option_round_trip_and_bytes():
    seg = Segment(seq=1, flags=SYN, mss=1452, wscale=0, sack_permitted=True,
                  file_size=10, payload=b"report.pdf", name_follows=True)
    data = encode(seg)
    assert struct.pack("!BBH", 253, 4, 0x4E4D) in data[20:data[12] >> 4 << 2]
    back = decode(data)
    assert back.name_follows and back.payload == b"report.pdf" and back.file_size == 10


def test_name_option_fits_beside_everything_else_a_syn_carries():
    # MSS 4 + window scale 3 + SACK permitted 2 + file size 12 + name 4 = 25;
    # timestamps (10) would make 35, padded to 36: still within 40.
    seg = Segment(flags=SYN, mss=1452, wscale=0, sack_permitted=True, file_size=1 << 40,
                  name_follows=True)
    assert len(encode(seg)) - 20 <= 40 - 10


def test_name_option_with_a_value_is_malformed_and_other_exids_ignored():
    def raw(opt: bytes) -> bytes:
        pad = opt + bytes(-len(opt) % 4)
        seg = bytearray(struct.pack("!HHIIBBHHH", 1, 2, 3, 0, (20 + len(pad)) // 4 << 4,
                                    SYN, 100, 0, 0) + pad)
        from common.checksum import internet_checksum
        struct.pack_into("!H", seg, 16, internet_checksum(bytes(seg)))
        return bytes(seg)

    with pytest.raises(SegmentError):
        decode(raw(struct.pack("!BBHH", 253, 6, 0x4E4D, 7)))
    other = decode(raw(struct.pack("!BBHH", 253, 6, 0x1234, 7)))
    assert not other.name_follows


# --- the sender -------------------------------------------------------------------

def _sender(name: bytes | None) -> SenderCore:
    s = SenderCore(isn=1000, file_size=10, mss=100, window=1000)
    s.handshake.offered_name = name
    s.start(0.0)
    return s


def test_sender_syn_name_takes_sequence_space_a_receiver_acknowledges():
    s = _sender(b"notes.txt")
    (syn,) = [decode(encode(seg)) for seg in s.outbox]
    assert syn.flags == SYN and syn.seq == 1000
    assert syn.name_follows and syn.payload == b"notes.txt"
    s.outbox.clear()
    s.on_timer(5.0)  # the SYN resent carries it again
    assert [(x.seq, x.payload, x.name_follows) for x in s.outbox] == \
        [(1000, b"notes.txt", True)]
    s.outbox.clear()
    # The SYN took 1000 (SYN) and 1001..1009 (the name): the echo acknowledges 1010.
    s.on_segment(Segment(seq=77, ack=1010, flags=SYN | ACK, window=5000, mss=100,
                         name_follows=True), 5.1)
    assert s.state == SenderState.ESTABLISHED and s.handshake.name_taken is True
    assert s.base == 1010  # file byte 0 follows the name
    (ack,) = s.outbox
    assert ack.flags == ACK and ack.seq == 1010 and ack.ack == 78


def test_sender_goes_on_without_the_name_when_the_peer_ignores_it():
    """A peer following only the original rules skips the option and the
    SYN's payload: it acknowledges ISN + 1, and the file starts there."""
    s = _sender(b"notes.txt")
    s.outbox.clear()
    s.on_segment(Segment(seq=77, ack=1001, flags=SYN | ACK, window=5000, mss=100), 0.1)
    assert s.state == SenderState.ESTABLISHED and s.handshake.name_taken is False
    assert s.base == 1001


def test_sender_without_name_sends_a_bare_syn():
    (syn,) = _sender(None).outbox
    assert not syn.name_follows and syn.payload == b""


def test_sender_stops_when_the_peer_took_the_name_as_data():
    s = _sender(b"abc")
    s.outbox.clear()
    # All of the name acknowledged, but no echo: the name went into the file.
    s.on_segment(Segment(seq=77, ack=1004, flags=SYN | ACK, window=5000, mss=100), 0.1)
    assert s.state == SenderState.ABORTED
    assert "--no-name" in s.error


@pytest.mark.parametrize("ack, taken", [(1001, True), (1004, True), (1002, False),
                                        (1005, False)])
def test_sender_in_syn_sent_takes_an_rst_only_if_it_acknowledges_the_syn(ack, taken):
    s = _sender(b"abc")
    s.on_segment(Segment(seq=0, ack=ack, flags=RST | ACK, payload=b"name in use"), 0.1)
    assert (s.state == SenderState.ABORTED) is taken
    if taken:
        assert "name in use" in s.error


def test_sender_ignores_a_syn_ack_for_neither_end_of_the_syn():
    s = _sender(b"abc")
    s.on_segment(Segment(seq=77, ack=1002, flags=SYN | ACK, window=5000, mss=100,
                         name_follows=True), 0.1)
    assert s.state == SenderState.SYN_SENT


# --- our receiver ---------------------------------------------------------------

def test_receiver_takes_the_name_and_the_file_starts_after_it():
    r = ReceiverCore(isn=9000, mss=100, capacity=1000)
    syn = decode(encode(Segment(seq=1000, flags=SYN, mss=100, file_size=3,
                                payload=b"name.bin", name_follows=True)))
    r.on_segment(syn, 0.0)
    (synack,) = [decode(encode(x)) for x in r.outbox]
    assert synack.ack == 1009 and synack.name_follows and not synack.payload
    assert r.offered_name == b"name.bin" and r.base == 1009
    r.outbox.clear()
    r.on_segment(syn, 0.05)  # the SYN again: the same answer
    assert [x.ack for x in r.outbox] == [1009]
    r.outbox.clear()
    r.on_segment(Segment(seq=1009, ack=9001, flags=ACK, payload=b"xyz"), 0.1)
    assert r.state == ReceiverState.ESTABLISHED and r.deliver == [b"xyz"]


def test_receiver_ignores_a_payload_without_the_option():
    r = ReceiverCore(isn=9000, mss=100, capacity=1000)
    r.on_segment(Segment(seq=1000, flags=SYN, mss=100, file_size=3, payload=b"junk"), 0.0)
    (synack,) = r.outbox
    assert synack.ack == 1001 and not synack.name_follows and r.offered_name is None


@pytest.mark.parametrize("mode", ["sr", "gbn"])
def test_a_named_file_crosses_a_lossy_path_whole(mode):
    """The SYN (with its name) lost, reordered and duplicated like any
    segment: the file still starts after the name, byte for byte."""
    data = bytes(range(256)) * 40
    res = run_transfer(data, mode=mode, mss=500, name=b"a.txt", seed=3,
                       forward=Channel(loss=0.2, dup=0.05, jitter=0.02,
                                       drop_list=frozenset({1})),
                       backward=Channel(loss=0.2))
    assert res.receiver.offered_name == b"a.txt" and res.sender.handshake.name_taken
    assert res.sender.base == 12345 + 1 + 5 and res.output == data


# --- the sender's command line ----------------------------------------------------

@pytest.mark.parametrize("bad", ["../x", "a/b", ".hidden", "x" * 300, ""])
def test_sender_refuses_a_bad_name_in_one_line(tmp_path, capsys, bad):
    from sender.__main__ import main

    f = tmp_path / "f.bin"
    f.write_bytes(b"abc")
    code = main([str(f), "127.0.0.1", "9", "10000", "0", "--name", bad, "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("stcp-send: error: --name")
