"""Interpreter details: lax DER and high S (consensus vs policy), hybrid keys, limits, P2SH."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinynode.primitives.hashes import hash160
from tinynode.primitives.keys import SECP256K1_ORDER, PrivateKey, der_decode_signature
from tinynode.primitives.tx import OutPoint, Tx, TxIn, TxOut
from tinynode.script.flags import MANDATORY_FLAGS, STANDARD_FLAGS, ScriptFlags
from tinynode.script.interpreter import ScriptError, cast_to_bool, eval_script, verify_script
from tinynode.script.script import core_push, p2pk_script, p2pkh_script, p2sh_script, push_int
from tinynode.script.sigcheck import (
    is_low_der_signature, is_valid_signature_encoding, parse_der_lax, verify_lax,
)
from tinynode.script.sighash import SIGHASH_ALL, legacy_sighash
from tests.framework.oracle import verify_script_checked_by_core

KEY = PrivateKey(bytes([7]) * 32)
PRE_BIP66 = ScriptFlags.P2SH  # consensus flags before BIP66 activated


@pytest.fixture(autouse=True, scope="module")
def _core_checks_every_verify():
    """Every verify_script call of this module also goes to Core's kernel (tests/framework/oracle)."""
    with verify_script_checked_by_core(globals()) as checked:
        yield checked


def _spend_tx(script_sig: bytes = b"") -> Tx:
    return Tx(1, (TxIn(OutPoint(b"\x42" * 32, 0), script_sig),), (TxOut(1000, b"\x51"),), 0)


def _code(flags: int, script_sig: bytes, spk: bytes) -> str:
    try:
        verify_script(script_sig, spk, _spend_tx(script_sig), 0, flags)
    except ScriptError as e:
        return e.code
    return "OK"


def _rs_for(spk: bytes) -> tuple[int, int]:
    digest = legacy_sighash(_spend_tx(), 0, spk, SIGHASH_ALL)
    return der_decode_signature(KEY.sign(digest))


def _der_int(v: int, pad: int = 0) -> bytes:
    b = v.to_bytes((v.bit_length() + 7) // 8, "big")
    if b[0] & 0x80:
        b = b"\x00" + b
    return b"\x00" * pad + b


def _der(r: bytes, s: bytes, long_len: bool = False) -> bytes:
    body = b"\x02" + bytes((len(r),)) + r + b"\x02" + bytes((len(s),)) + s
    if long_len:
        return b"\x30\x81" + bytes((len(body),)) + body
    return b"\x30" + bytes((len(body),)) + body


SPK = p2pk_script(KEY.public_key.sec)


def test_high_s_consensus_accepts_policy_rejects():
    r, s = _rs_for(SPK)
    high = _der(_der_int(r), _der_int(SECP256K1_ORDER - s)) + b"\x01"
    assert is_valid_signature_encoding(high)
    assert not is_low_der_signature(high[:-1])
    ss = core_push(high)
    assert _code(MANDATORY_FLAGS, ss, SPK) == "OK"
    assert _code(STANDARD_FLAGS, ss, SPK) == "SIG_HIGH_S"


@pytest.mark.parametrize("kind", ["padded-r", "long-form-length"])
def test_lax_der_valid_before_bip66_only(kind):
    r, s = _rs_for(SPK)
    if kind == "padded-r":
        sig = _der(_der_int(r, pad=2), _der_int(s)) + b"\x01"
    else:
        sig = _der(_der_int(r), _der_int(s), long_len=True) + b"\x01"
    assert not is_valid_signature_encoding(sig)
    assert parse_der_lax(sig[:-1]) == (r, s)
    ss = core_push(sig)
    assert _code(PRE_BIP66, ss, SPK) == "OK"
    assert _code(ScriptFlags.NONE, ss, SPK) == "OK"
    assert _code(MANDATORY_FLAGS, ss, SPK) == "SIG_DER"
    assert _code(STANDARD_FLAGS, ss, SPK) == "SIG_DER"


def test_lax_der_and_high_s_together_before_bip66():
    r, s = _rs_for(SPK)
    sig = _der(_der_int(r, pad=1), _der_int(SECP256K1_ORDER - s)) + b"\x01"
    assert _code(PRE_BIP66, core_push(sig), SPK) == "OK"
    assert _code(MANDATORY_FLAGS, core_push(sig), SPK) == "SIG_DER"


def test_parse_der_lax_edge_cases():
    assert parse_der_lax(b"") is None
    assert parse_der_lax(b"\x31\x00") is None
    assert parse_der_lax(b"\x30\x06\x02\x01\x01\x02\x01") is None  # S runs past the end
    # trailing garbage and a wrong sequence length are tolerated
    assert parse_der_lax(b"\x30\x00\x02\x01\x01\x02\x01\x02\xff\xff") == (1, 2)
    # 33 significant bytes overflow: Core substitutes the all-zero signature
    assert parse_der_lax(b"\x30\x00\x02\x21" + b"\x01" * 33 + b"\x02\x01\x01") == (0, 0)
    # R = n (not < n) is an overflow too
    n = SECP256K1_ORDER.to_bytes(32, "big")
    assert parse_der_lax(b"\x30\x00\x02\x21\x00" + n + b"\x02\x01\x01") == (0, 0)
    assert not verify_lax(b"\x30\x00\x02\x21\x00" + n + b"\x02\x01\x01", KEY.public_key.sec, bytes(32))
    # long-form integer length with leading zero length bytes
    assert parse_der_lax(b"\x30\x00\x02\x82\x00\x01\x05\x02\x01\x07") == (5, 7)
    assert parse_der_lax(b"\x30\x00\x02\x84\x01\x00\x00\x00\x05\x02\x01\x07") is None


def _hybrid(sec65: bytes, good_parity: bool = True) -> bytes:
    y_odd = sec65[-1] & 1
    prefix = 0x06 + (y_odd if good_parity else 1 - y_odd)
    return bytes((prefix,)) + sec65[1:]


def test_hybrid_pubkey_without_strictenc():
    key = PrivateKey(bytes([7]) * 32, compressed=False)
    hybrid = _hybrid(key.public_key.sec)
    spk = p2pk_script(hybrid)
    digest = legacy_sighash(_spend_tx(), 0, spk, SIGHASH_ALL)
    ss = core_push(key.sign(digest) + b"\x01")
    assert _code(MANDATORY_FLAGS, ss, spk) == "OK"
    assert _code(MANDATORY_FLAGS | ScriptFlags.STRICTENC, ss, spk) == "PUBKEYTYPE"
    bad = _hybrid(key.public_key.sec, good_parity=False)
    spk_bad = p2pk_script(bad)
    digest = legacy_sighash(_spend_tx(), 0, spk_bad, SIGHASH_ALL)
    ss = core_push(key.sign(digest) + b"\x01")
    assert _code(MANDATORY_FLAGS, ss, spk_bad) == "EVAL_FALSE"


def test_cast_to_bool():
    assert not cast_to_bool(b"")
    assert not cast_to_bool(b"\x00\x00")
    assert not cast_to_bool(b"\x00\x80")
    assert cast_to_bool(b"\x80\x00")
    assert cast_to_bool(b"\x00\x01")


def _eval(script: bytes, flags: int = 0) -> list[bytes]:
    stack: list[bytes] = []
    eval_script(stack, script, flags, None)
    return stack


def _eval_code(script: bytes, flags: int = 0) -> str:
    try:
        _eval(script, flags)
    except ScriptError as e:
        return e.code
    return "OK"


def test_limits():
    assert _eval_code(b"\x61" * 201) == "OK"
    assert _eval_code(b"\x61" * 202) == "OP_COUNT"
    assert _eval_code(b"\x51" * 1000) == "OK"
    assert _eval_code(b"\x51" * 1001) == "STACK_SIZE"
    assert _eval_code(b"\x51" * 1000 + b"\x6b" * 100 + b"\x51") == "STACK_SIZE"  # altstack counts
    assert _eval_code(core_push(b"x" * 520)) == "OK"
    assert _eval_code(core_push(b"x" * 521)) == "PUSH_SIZE"
    assert _eval_code(b"\x61" * 10_001) == "SCRIPT_SIZE"


def test_disabled_opcode_fails_in_unexecuted_branch():
    assert _eval_code(b"\x00\x63\x7e\x68") == "DISABLED_OPCODE"  # 0 IF CAT ENDIF
    assert _eval_code(b"\x00\x63\x65\x68") == "BAD_OPCODE"  # VERIF, even unexecuted
    assert _eval_code(b"\x00\x63\x50\x68") == "OK"  # RESERVED only fails when executed
    assert _eval_code(b"\x00\x63\xab\x68", ScriptFlags.CONST_SCRIPTCODE) == "OP_CODESEPARATOR"


def test_script_numbers_are_four_bytes_and_minimal_under_minimaldata():
    assert _eval(core_push(b"\xff\xff\xff\x7f") + b"\x8b") == [b"\x00\x00\x00\x80\x00"]
    assert _eval_code(core_push(b"\x00\x00\x00\x80\x00") + b"\x8b") == "SCRIPTNUM"
    assert _eval_code(core_push(b"\x01\x00") + b"\x8b") == "OK"
    assert _eval_code(core_push(b"\x01\x00") + b"\x8b", ScriptFlags.MINIMALDATA) == "SCRIPTNUM"
    assert _eval_code(b"\x01\x05", ScriptFlags.MINIMALDATA) == "MINIMALDATA"


def _cltv_tx(locktime: int, sequence: int, version: int = 1) -> Tx:
    return Tx(version, (TxIn(OutPoint(b"\x01" * 32, 0), b"", sequence),), (TxOut(0, b""),), locktime)


@pytest.mark.parametrize("arg,locktime,sequence,expected", [
    (100, 100, 0, "OK"),
    (101, 100, 0, "UNSATISFIED_LOCKTIME"),
    (100, 100, 0xFFFFFFFF, "UNSATISFIED_LOCKTIME"),  # final input
    (500_000_000, 100, 0, "UNSATISFIED_LOCKTIME"),  # height vs time
    (-1, 100, 0, "NEGATIVE_LOCKTIME"),
    (0xFFFFFFFF, 0xFFFFFFFF, 0, "OK"),  # 5-byte operand
])
def test_checklocktimeverify(arg, locktime, sequence, expected):
    spk = push_int(arg) + b"\xb1\x75\x51"  # <n> CLTV DROP 1
    tx = _cltv_tx(locktime, sequence)
    try:
        verify_script(b"", spk, tx, 0, MANDATORY_FLAGS)
        got = "OK"
    except ScriptError as e:
        got = e.code
    assert got == expected
    # without the flag CLTV is NOP2
    verify_script(b"", spk, tx, 0, ScriptFlags.P2SH | ScriptFlags.DISCOURAGE_UPGRADABLE_NOPS)


@pytest.mark.parametrize("arg,sequence,version,expected", [
    (10, 10, 2, "OK"),
    (11, 10, 2, "UNSATISFIED_LOCKTIME"),
    (10, 10, 1, "UNSATISFIED_LOCKTIME"),  # BIP68 needs version 2
    (10, 10 | (1 << 31), 2, "UNSATISFIED_LOCKTIME"),  # input's relative lock disabled
    (1 << 31, 0, 1, "OK"),  # argument's disable flag: a NOP
    (10 | (1 << 22), 10, 2, "UNSATISFIED_LOCKTIME"),  # time vs blocks
    (10 | (1 << 22), 20 | (1 << 22), 2, "OK"),
    (-1, 0, 2, "NEGATIVE_LOCKTIME"),
])
def test_checksequenceverify(arg, sequence, version, expected):
    spk = push_int(arg) + b"\xb2\x75\x51"
    tx = _cltv_tx(0, sequence, version)
    try:
        verify_script(b"", spk, tx, 0, MANDATORY_FLAGS)
        got = "OK"
    except ScriptError as e:
        got = e.code
    assert got == expected


def test_p2sh_redeem_script_runs_only_with_flag():
    redeem = b"\x00"  # leaves false
    spk = p2sh_script(hash160(redeem))
    ss = core_push(redeem)
    assert _code(ScriptFlags.NONE, ss, spk) == "OK"
    assert _code(ScriptFlags.P2SH, ss, spk) == "EVAL_FALSE"
    # non-push scriptSig under P2SH
    redeem = b"\x51"
    spk = p2sh_script(hash160(redeem))
    assert _code(ScriptFlags.P2SH, b"\x61" + core_push(redeem), spk) == "SIG_PUSHONLY"


def test_p2pkh_fast_path_agrees_with_interpreter():
    spk = p2pkh_script(KEY.public_key.hash160())
    digest = legacy_sighash(_spend_tx(), 0, spk, SIGHASH_ALL)
    sig = KEY.sign(digest) + b"\x01"
    good = core_push(sig) + core_push(KEY.public_key.sec)
    assert _code(STANDARD_FLAGS, good, spk) == "OK"
    # tamper: wrong hashtype byte (undefined) → STRICTENC error from the full interpreter
    assert _code(STANDARD_FLAGS, core_push(sig[:-1] + b"\x05") + core_push(KEY.public_key.sec), spk) == "SIG_HASHTYPE"
    # wrong digest
    bad = bytearray(sig)
    bad[10] ^= 1
    assert _code(STANDARD_FLAGS, core_push(bytes(bad)) + core_push(KEY.public_key.sec), spk) in ("NULLFAIL", "SIG_DER")
    assert _code(MANDATORY_FLAGS, core_push(KEY.sign(bytes(32)) + b"\x01") + core_push(KEY.public_key.sec), spk) == "EVAL_FALSE"
    # extra item: CLEANSTACK
    assert _code(STANDARD_FLAGS, b"\x51" + good, spk) == "CLEANSTACK"
    assert _code(MANDATORY_FLAGS, b"\x51" + good, spk) == "OK"


def test_multisig_nulldummy_and_nullfail():
    k2 = PrivateKey(bytes([8]) * 32)
    spk = push_int(1) + core_push(KEY.public_key.sec) + core_push(k2.public_key.sec) + push_int(2) + b"\xae"
    digest = legacy_sighash(_spend_tx(), 0, spk, SIGHASH_ALL)
    sig = core_push(k2.sign(digest) + b"\x01")
    assert _code(MANDATORY_FLAGS, b"\x00" + sig, spk) == "OK"
    assert _code(MANDATORY_FLAGS, b"\x51" + sig, spk) == "SIG_NULLDUMMY"
    assert _code(ScriptFlags.P2SH, b"\x51" + sig, spk) == "OK"
    wrong = core_push(k2.sign(bytes(32)) + b"\x01")
    assert _code(MANDATORY_FLAGS, b"\x00" + wrong, spk) == "EVAL_FALSE"
    assert _code(MANDATORY_FLAGS | ScriptFlags.NULLFAIL, b"\x00" + wrong, spk) == "NULLFAIL"


def test_findanddelete_of_signature_in_script_code():
    # <sig> <pubkey> with scriptPubKey "<sig> DROP CHECKSIG": the sighash is computed over the
    # scriptCode with the signature push removed (what Core signs for such scripts).
    pub = KEY.public_key.sec
    digest = legacy_sighash(_spend_tx(), 0, b"\x75\xac", SIGHASH_ALL)
    sig = KEY.sign(digest) + b"\x01"
    spk = core_push(sig) + b"\x75\xac"
    ss = core_push(sig) + core_push(pub)
    # stack: sig pub → spk pushes sig, DROP removes it, CHECKSIG(sig, pub)
    assert _code(MANDATORY_FLAGS, ss, spk) == "OK"
    assert _code(MANDATORY_FLAGS | ScriptFlags.CONST_SCRIPTCODE, ss, spk) == "SIG_FINDANDDELETE"


def _variants(key: PrivateKey, spk: bytes) -> list[bytes]:
    """P2PKH scriptSigs in many encodings: good, high S, lax DER, odd hashtypes, wrong keys."""
    tx = _spend_tx()
    out = []
    for ht in (1, 2, 3, 0x81, 0, 4, 0x41):
        digest = legacy_sighash(tx, 0, spk, ht)
        r, s = der_decode_signature(key.sign(digest))
        for sig in (_der(_der_int(r), _der_int(s)), _der(_der_int(r), _der_int(SECP256K1_ORDER - s)),
                    _der(_der_int(r, pad=1), _der_int(s)), _der(_der_int(r), _der_int(s), long_len=True)):
            full = sig + bytes((ht,))
            out.append(core_push(full) + core_push(key.public_key.sec))
            out.append(core_push(full) + core_push(PrivateKey(bytes([3]) * 32).public_key.sec))
            bad = bytearray(full)
            bad[8] ^= 0x40
            out.append(core_push(bytes(bad)) + core_push(key.public_key.sec))
    return out


@pytest.mark.parametrize("compressed", [True, False])
def test_p2pkh_fast_path_matches_general_interpreter(compressed):
    from tinynode.script.interpreter import SignatureChecker

    key = PrivateKey(bytes([7]) * 32, compressed=compressed)
    spk = p2pkh_script(key.public_key.hash160())
    flag_sets = [ScriptFlags.NONE, PRE_BIP66, MANDATORY_FLAGS, STANDARD_FLAGS,
                 ScriptFlags.STRICTENC, ScriptFlags.LOW_S, ScriptFlags.NULLFAIL | ScriptFlags.DERSIG]
    seen = set()
    for ss in _variants(key, spk):
        tx = _spend_tx(ss)
        for flags in flag_sets:
            general = _general_verdict(ss, spk, flags, SignatureChecker(tx, 0))
            assert _code(flags, ss, spk) == general
            seen.add(general)
    assert {"OK", "SIG_DER", "SIG_HIGH_S", "SIG_HASHTYPE", "EVAL_FALSE", "EQUALVERIFY", "NULLFAIL"} <= seen


@pytest.mark.parametrize("compressed", [True, False])
def test_p2wpkh_fast_path_matches_general_interpreter(compressed):
    """Every P2WPKH witness variant (encodings, hash types, wrong keys, a wrong amount, extra or
    missing items) gets the same verdict and error from `verify_script` (which takes the P2WPKH
    fast path when it can) and from the general interpreter alone."""
    from tinynode.primitives.tx import OutPoint, Tx, TxIn, TxOut
    from tinynode.script.interpreter import SignatureChecker, _verify_general
    from tinynode.script.sighash import PrecomputedTxData, witness_v0_sighash

    key = PrivateKey(bytes([9]) * 32, compressed=compressed)
    spk = b"\x00\x14" + key.public_key.hash160()
    code = p2pkh_script(key.public_key.hash160())
    amount = 123_456
    base = Tx(2, (TxIn(OutPoint(bytes(range(32)), 1), b"", 0xFFFFFFFD),),
              (TxOut(100_000, p2pkh_script(bytes(20))),), 0)
    txdata = PrecomputedTxData.for_tx(base, [TxOut(amount, spk)], force=False)
    other = PrivateKey(bytes([3]) * 32).public_key.sec
    witnesses = []
    for ht in (1, 2, 3, 0x81, 0, 4):
        digest = witness_v0_sighash(base, 0, code, amount, ht, txdata)
        r, s_ = der_decode_signature(key.sign(digest))
        for sig in (_der(_der_int(r), _der_int(s_)), _der(_der_int(r), _der_int(SECP256K1_ORDER - s_)),
                    _der(_der_int(r, pad=1), _der_int(s_))):
            full = sig + bytes((ht,))
            bad = bytearray(full)
            bad[8] ^= 0x40
            witnesses += [(full, key.public_key.sec), (full, other), (bytes(bad), key.public_key.sec),
                          (full,), (b"", key.public_key.sec), (full, key.public_key.sec, b"\x01")]
    flag_sets = [MANDATORY_FLAGS, STANDARD_FLAGS, MANDATORY_FLAGS | ScriptFlags.LOW_S,
                 MANDATORY_FLAGS | ScriptFlags.WITNESS_PUBKEYTYPE, MANDATORY_FLAGS | ScriptFlags.NULLFAIL]
    seen = set()
    for w in witnesses:
        for value in (amount, amount + 1):
            for flags in flag_sets:
                def run(fn):
                    try:
                        fn()
                        return "OK"
                    except ScriptError as e:
                        return e.code
                fast = run(lambda: verify_script(b"", spk, base, 0, flags, amount=value, witness=w,
                                                 txdata=txdata))
                general = run(lambda: _verify_general(b"", spk, int(flags),
                                                      SignatureChecker(base, 0, value, txdata), w))
                assert fast == general, (w, value, flags)
                seen.add(general)
    expect = {"OK", "EVAL_FALSE", "SIG_HIGH_S", "SIG_DER", "SIG_HASHTYPE", "NULLFAIL",
              "WITNESS_PROGRAM_MISMATCH", "EQUALVERIFY"}
    if not compressed:
        expect = (expect - {"OK"}) | {"WITNESS_PUBKEYTYPE"}
    assert expect <= seen, seen


_OPS = st.sampled_from(list(range(0x00, 0x100)))


@settings(max_examples=300, deadline=None)
@given(sig=st.binary(max_size=40), spk=st.lists(_OPS, max_size=40).map(bytes),
       flags=st.integers(0, int(STANDARD_FLAGS)))
def test_random_scripts_raise_only_script_error(sig, spk, flags):
    flags &= int(STANDARD_FLAGS)
    if flags & ScriptFlags.CLEANSTACK and not flags & ScriptFlags.P2SH:
        flags &= ~ScriptFlags.CLEANSTACK
    try:
        verify_script(sig, spk, _spend_tx(sig), 0, flags)
    except ScriptError as e:
        assert e.code.isupper()


def _general_verdict(script_sig: bytes, spk: bytes, flags, checker, *witness) -> str:
    """The general interpreter's verdict ("OK" or the ScriptError code), to compare with a
    fast path's."""
    from tinynode.script.interpreter import _verify_general
    try:
        _verify_general(script_sig, spk, int(flags), checker, *witness)
        return "OK"
    except ScriptError as e:
        return e.code


def _der_encodings(r: int, s: int) -> list[bytes]:
    """Encodings of (r, s) (no hash type): strict DER, the lax forms Core's lax parser reads
    as the same values (long-form lengths, zero padding, garbage after S), and broken ones
    (negative integers, lengths off by one, high S, integers longer than 32 bytes)."""
    rb, sb = _der_int(r), _der_int(s)
    raw_r = r.to_bytes((r.bit_length() + 7) // 8, "big")  # negative when its top bit is set
    out = [_der(rb, sb), _der(rb, sb, long_len=True), _der(_der_int(r, pad=1), sb),
           _der(rb, _der_int(s, pad=1)), _der(rb, _der_int(SECP256K1_ORDER - s)),
           _der(raw_r, sb), _der(b"\x00" * 40 + rb, sb), _der(rb, b"\x01" + bytes(32) + sb)]
    body = b"\x02\x81" + bytes((len(rb),)) + rb + b"\x02" + bytes((len(sb),)) + sb
    out.append(b"\x30" + bytes((len(body),)) + body)          # long-form length of R
    body = b"\x02" + bytes((len(rb),)) + rb + b"\x02\x82\x00" + bytes((len(sb),)) + sb
    out.append(b"\x30" + bytes((len(body),)) + body)          # non-minimal long form of S
    strict = _der(rb, sb)
    out += [strict + b"\x00", strict[:1] + bytes((strict[1] + 1,)) + strict[2:] + b"\x00",
            strict[:1] + bytes((strict[1] - 1,)) + strict[2:], strict[:-1]]
    for i in range(len(strict)):  # every byte changed, one at a time, and dropped
        for delta in (1, 0x40, 0x80, 0xFF):
            b = bytearray(strict)
            b[i] = (b[i] + delta) & 0xFF
            out.append(bytes(b))
        out.append(strict[:i] + strict[i + 1:])
    return out


def test_verify_der_hashtyped_accepts_only_bip66_signatures():
    """libsecp256k1's strict DER parser behind `verify_der_hashtyped` (used by the P2WPKH fast
    path instead of `is_valid_signature_encoding`): whatever it verifies is BIP66 valid, and
    with `low_s` also low S; every lax encoding of a good signature fails there, and the
    strict one verifies."""
    from tinynode.primitives.keys import verify_der_hashtyped

    pub = KEY.public_key.sec
    verified = 0
    for i in range(8):
        digest = bytes([i + 1]) * 32
        r, s = der_decode_signature(KEY.sign(digest))
        for der in _der_encodings(r, s):
            sig = der + b"\x01"
            for low_s in (False, True):
                ok = verify_der_hashtyped(pub, sig, digest, low_s)
                if ok:
                    verified += 1
                    assert is_valid_signature_encoding(sig), der.hex()
                    assert not low_s or is_low_der_signature(der), der.hex()
        strict = _der(_der_int(r), _der_int(s))
        assert verify_der_hashtyped(pub, strict + b"\x01", digest, True)
        high = _der(_der_int(r), _der_int(SECP256K1_ORDER - s))
        assert not verify_der_hashtyped(pub, high + b"\x01", digest, True)
        assert verify_der_hashtyped(pub, high + b"\x01", digest, False)
        assert not verify_der_hashtyped(pub, strict + b"\x01", bytes(32), False)
    assert verify_der_hashtyped(pub, b"\x01", bytes(32), False) is False
    assert verify_der_hashtyped(pub, b"", bytes(32), False) is False
    assert verified >= 8 * 3  # strict (both modes) and high S (normalized) at least


@pytest.mark.parametrize("hash_type", [SIGHASH_ALL, 0x81, 0x41])
def test_p2wpkh_fast_path_lax_encodings_match_general_interpreter(hash_type):
    """The P2WPKH fast path on every encoding of `_der_encodings` (lax DER the interpreter
    accepts without DERSIG, broken DER, high S), under flags with and without DERSIG, LOW_S and
    STRICTENC: the same verdict and error as the general interpreter (and, with
    TINYNODE_ORACLE=1, as Core's kernel)."""
    from tinynode.script.interpreter import SignatureChecker
    from tinynode.script.sighash import PrecomputedTxData, witness_v0_sighash

    pub = KEY.public_key.sec
    spk = b"\x00\x14" + KEY.public_key.hash160()
    amount = 77_000
    tx = Tx(2, (TxIn(OutPoint(bytes(range(32)), 0), b"", 0xFFFFFFFE),),
            (TxOut(70_000, p2pkh_script(bytes(20))),), 0)
    digest = witness_v0_sighash(tx, 0, p2pkh_script(KEY.public_key.hash160()), amount, hash_type,
                                PrecomputedTxData.for_tx(tx, [TxOut(amount, spk)]))
    r, s = der_decode_signature(KEY.sign(digest))
    witness_flags = ScriptFlags.P2SH | ScriptFlags.WITNESS
    flag_sets = [witness_flags, witness_flags | ScriptFlags.DERSIG, witness_flags | ScriptFlags.LOW_S,
                 witness_flags | ScriptFlags.STRICTENC, MANDATORY_FLAGS, STANDARD_FLAGS]
    seen = set()
    for der in _der_encodings(r, s):
        w = (der + bytes((hash_type,)), pub)
        # the witness in the tx, so the oracle compares each call with Core
        spend = Tx(tx.version, (TxIn(tx.vin[0].prevout, b"", tx.vin[0].sequence, w),), tx.vout,
                   tx.locktime)
        txdata = PrecomputedTxData.for_tx(spend, [TxOut(amount, spk)], force=False)
        for flags in flag_sets:
            try:
                verify_script(b"", spk, spend, 0, flags, amount=amount, txdata=txdata)
                fast = "OK"
            except ScriptError as e:
                fast = e.code
            general = _general_verdict(b"", spk, flags, SignatureChecker(spend, 0, amount, txdata), w)
            assert fast == general, (der.hex(), flags)
            seen.add(general)
    assert {"OK", "SIG_DER", "EVAL_FALSE"} <= seen, seen
    if hash_type == SIGHASH_ALL:
        assert "SIG_HIGH_S" in seen, seen
    else:
        assert hash_type != 0x41 or "SIG_HASHTYPE" in seen, seen


@pytest.mark.parametrize("hash_type", [SIGHASH_ALL, 0x81, 0x41])
@pytest.mark.parametrize("compressed", [True, False])
def test_p2pkh_fast_path_lax_encodings_match_general_interpreter(hash_type, compressed):
    """The P2PKH fast path (which hands the DER to libsecp256k1's strict parser under DERSIG)
    on every encoding of `_der_encodings`, with compressed and uncompressed keys, under flags
    with and without DERSIG, LOW_S and STRICTENC: the same verdict and error as the general
    interpreter (and, with TINYNODE_ORACLE=1, as Core's kernel)."""
    from tinynode.script.interpreter import SignatureChecker

    key = PrivateKey(bytes([7]) * 32, compressed=compressed)
    pub = key.public_key.sec
    spk = p2pkh_script(key.public_key.hash160())
    r, s = der_decode_signature(key.sign(legacy_sighash(_spend_tx(), 0, spk, hash_type)))
    flag_sets = [ScriptFlags.NONE, PRE_BIP66, ScriptFlags.DERSIG, ScriptFlags.DERSIG | ScriptFlags.LOW_S,
                 ScriptFlags.DERSIG | ScriptFlags.STRICTENC, MANDATORY_FLAGS, STANDARD_FLAGS]
    seen = set()
    for der in _der_encodings(r, s):
        sig = der + bytes((hash_type,))
        if not 9 <= len(sig) <= 73:
            continue   # (the fast path takes only these lengths)
        ss = core_push(sig) + core_push(pub)
        tx = _spend_tx(ss)
        for flags in flag_sets:
            fast = _code(flags, ss, spk)
            general = _general_verdict(ss, spk, flags, SignatureChecker(tx, 0))
            assert fast == general, (der.hex(), flags)
            seen.add(general)
    assert {"OK", "SIG_DER", "EVAL_FALSE"} <= seen, seen
    if hash_type == SIGHASH_ALL:
        assert "SIG_HIGH_S" in seen, seen
    elif hash_type == 0x41:
        assert "SIG_HASHTYPE" in seen, seen
