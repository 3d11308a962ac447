"""Script parsing, pushes, numbers, templates, sigop counts, Core's short notation."""

from __future__ import annotations

import pytest

from tinynode.script.opcodes import Op
from tinynode.script.script import (
    ScriptParseError, ScriptType, check_minimal_push, classify, core_push, decode_num,
    encode_num, find_and_delete, get_op, is_p2sh, is_push_only, iter_ops, legacy_sigop_count,
    multisig_info, multisig_script, nulldata_script, p2pk_script, p2pkh_script, p2sh_script,
    p2sh_sigop_count, parse_core_script, push_data, push_int,
)

KEY33 = b"\x02" + bytes(range(32))
KEY65 = b"\x04" + bytes(range(64))


@pytest.mark.parametrize("n,enc", [
    (0, ""), (1, "01"), (-1, "81"), (127, "7f"), (128, "8000"), (-128, "8080"), (255, "ff00"),
    (256, "0001"), (-256, "0081"), (0x7FFFFFFF, "ffffff7f"), (-0x7FFFFFFF, "ffffffff"),
    (0x80000000, "0000008000"),
])
def test_script_num_round_trip(n, enc):
    assert encode_num(n).hex() == enc
    assert decode_num(bytes.fromhex(enc), True, 5) == n


def test_script_num_limits_and_minimality():
    with pytest.raises(ValueError):
        decode_num(b"\x00\x00\x00\x00\x01")
    assert decode_num(b"\x00\x00\x00\x00\x01", False, 5) == 1 << 32
    assert decode_num(b"\x00") == 0  # not minimal, but accepted without the flag
    with pytest.raises(ValueError):
        decode_num(b"\x00", True)
    with pytest.raises(ValueError):
        decode_num(b"\x01\x00", True)
    assert decode_num(b"\xff\x00", True) == 255
    assert decode_num(b"\x80") == 0  # negative zero


def test_pushes():
    assert push_int(0) == b"\x00"
    assert push_int(-1) == b"\x4f"
    assert push_int(16) == b"\x60"
    assert push_int(17) == b"\x01\x11"
    assert push_int(-2) == b"\x01\x82"
    assert push_data(b"") == b"\x00"
    assert push_data(b"\x05") == b"\x55"
    assert push_data(b"\x81") == b"\x4f"
    assert core_push(b"\x05") == b"\x01\x05"
    assert push_data(b"a" * 75)[:1] == b"\x4b"
    assert push_data(b"a" * 76)[:2] == b"\x4c\x4c"
    assert push_data(b"a" * 256)[:3] == b"\x4d\x00\x01"
    assert core_push(b"a" * 65536)[:5] == b"\x4e\x00\x00\x01\x00"
    for n in (0, 2, 5, 75, 76, 255, 256, 520):
        data = bytes([7]) * n
        op, got, _ = get_op(push_data(data), 0)
        assert got == data and check_minimal_push(data, op)


def test_get_op_never_crashes_on_truncated_pushes():
    for bad in (b"\x01", b"\x4c", b"\x4c\x02\x00", b"\x4d\x01", b"\x4e\x01\x00\x00"):
        assert get_op(bad, 0) is None
        with pytest.raises(ScriptParseError):
            list(iter_ops(bad))
        assert not is_push_only(bad)
    assert list(iter_ops(b"\x00\x51\xac")) == [(0, b""), (0x51, None), (0xAC, None)]


def test_templates_and_classify():
    h = bytes(range(20))
    assert p2pkh_script(h).hex() == "76a914" + h.hex() + "88ac"
    assert p2sh_script(h).hex() == "a914" + h.hex() + "87"
    assert classify(p2pkh_script(h)) is ScriptType.PUBKEYHASH
    assert classify(p2sh_script(h)) is ScriptType.SCRIPTHASH
    assert is_p2sh(p2sh_script(h))
    assert classify(p2pk_script(KEY33)) is ScriptType.PUBKEY
    assert classify(p2pk_script(KEY65)) is ScriptType.PUBKEY
    assert classify(p2pk_script(b"\x05" + bytes(32))) is ScriptType.NONSTANDARD
    ms = multisig_script(2, [KEY33, KEY65, KEY33])
    assert classify(ms) is ScriptType.MULTISIG
    assert multisig_info(ms) == (2, [KEY33, KEY65, KEY33])
    assert classify(nulldata_script(b"hello")) is ScriptType.NULLDATA
    assert classify(b"\x6a") is ScriptType.NULLDATA
    assert classify(b"\x6a\xac") is ScriptType.NONSTANDARD
    assert classify(b"\x00\x14" + h) is ScriptType.NONSTANDARD  # witness v0: not for us
    assert classify(b"") is ScriptType.NONSTANDARD
    # m > n, wrong count, trailing bytes
    assert classify(b"\x53" + core_push(KEY33) + b"\x51\xae") is ScriptType.NONSTANDARD
    assert classify(b"\x51" + core_push(KEY33) + b"\x52\xae") is ScriptType.NONSTANDARD
    assert classify(ms + b"\xae") is ScriptType.NONSTANDARD


def test_sigop_counts():
    ms = multisig_script(2, [KEY33, KEY33, KEY33])
    assert legacy_sigop_count(ms) == 20
    assert legacy_sigop_count(ms, accurate=True) == 3
    assert legacy_sigop_count(p2pkh_script(bytes(20))) == 1
    assert legacy_sigop_count(b"\xac\xad\xae\x01") == 22  # stops at the truncated push
    redeem = ms
    spk = p2sh_script(bytes(20))
    assert p2sh_sigop_count(b"\x00" + core_push(redeem), spk) == 3
    assert p2sh_sigop_count(b"\x00\xac" + core_push(redeem), spk) == 0  # not push-only
    assert p2sh_sigop_count(core_push(redeem), p2pkh_script(bytes(20))) == 0


def test_find_and_delete():
    sig = core_push(b"\x30\x01")
    assert find_and_delete(sig + b"\xac" + sig, sig) == (b"\xac", 2)
    # inside another push the pattern is not on an opcode boundary
    inner = core_push(b"\x02\x30\x01")
    assert find_and_delete(inner, sig) == (inner, 0)
    assert find_and_delete(b"\x00\x51\x00", b"\x00") == (b"\x51", 2)


def test_parse_core_script():
    assert parse_core_script("0 1 16 -1 17 NOP CHECKSIG OP_DUP") == bytes.fromhex("0051604f011161ac76")
    assert parse_core_script("0x4c 0x01 0x07") == b"\x4c\x01\x07"
    assert parse_core_script("'abc' ''") == b"\x03abc\x00"
    assert parse_core_script("CHECKLOCKTIMEVERIFY CHECKSEQUENCEVERIFY NOP10") == b"\xb1\xb2\xb9"
    for bad in ("TRUE", "FALSE", "OP_0", "NOP2", "NOP3", "0xabc", "bogus"):
        with pytest.raises(ValueError):
            parse_core_script(bad)
    assert Op.OP_NOP2 == Op.OP_CHECKLOCKTIMEVERIFY
