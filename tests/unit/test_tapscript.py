"""BIP341 script path and BIP342 tapscript rules, one constructed spend per rule, asserting
Core's error names. Every spend is also judged by Core's kernel on the consensus part of its
flags (the DISCOURAGE_* bits are policy, not in the kernel's API), and the verdicts must be equal
(tests/unit/test_taproot_oracle.py does the same for seeded random spends)."""

from __future__ import annotations

import dataclasses
import random

import pytest

from tests.framework.oracle import KERNEL_ERROR, consensus_part, kernel_verify, require_kernel_if_ci
from tests.framework.taproot_spends import (
    TaprootCase, key, keypath_sig, script_sig, spending_tx, verify, with_witness,
)
from tinynode.script.flags import STANDARD_FLAGS, ScriptFlags
from tinynode.script.interpreter import (
    SCRIPT_ERROR_STRINGS, ScriptError, eval_script, is_op_success, script_error_string,
)
from tinynode.script.script import push_data, push_int
from tinynode.script.taproot import TAPROOT_LEAF_TAPSCRIPT, taproot_tree

TR = ScriptFlags.P2SH | ScriptFlags.WITNESS | ScriptFlags.TAPROOT
INTERNAL = key(100)
KEYS = [key(i) for i in range(5)]


def _leaf_case(script: bytes, stack: list[bytes], *, flags=TR, leaf_version=TAPROOT_LEAF_TAPSCRIPT,
               control=None, annex=None, sign=None, other_leaf=b"\x51", seed=1):
    """Spend the leaf `script` (in a two-leaf tree with `other_leaf`) with `stack` below it.
    `sign(tx, spent, leaf_hash)` may return the stack instead (signatures need the tx)."""
    rng = random.Random(seed)
    info = taproot_tree(INTERNAL.xonly_public_key, [(leaf_version, script),
                                                      (TAPROOT_LEAF_TAPSCRIPT, other_leaf)])
    tx, spent = spending_tx([info.script_pubkey], rng)
    leaf_hash = info.leaves[0][2]
    if sign is not None:
        stack = sign(tx, spent, leaf_hash)
    wit = list(stack) + [script, control if control is not None else info.control_blocks[0]]
    if annex is not None:
        wit.append(annex)
    return TaprootCase(with_witness(tx, 0, tuple(wit)), 0, spent, int(flags))


def _code(case) -> str:
    got = verify(case)
    if KERNEL_ERROR is None:
        cflags = consensus_part(case.flags)
        mine = verify(dataclasses.replace(case, flags=cflags))
        spent = [(o.script_pubkey, o.value) for o in case.spent]
        core = kernel_verify(case.tx.serialize(), case.index, case.script_pubkey,
                             case.spent[case.index].value, cflags, spent)
        assert (mine == "OK") == core, (mine, core)
    else:
        require_kernel_if_ci()
    return got



def _checksig_script(k) -> bytes:
    return push_data(k.xonly_public_key) + b"\xac"


def test_checksig_valid_flipped_and_empty():
    k = KEYS[0]
    good = _leaf_case(_checksig_script(k), [], sign=lambda tx, sp, lh: [script_sig(k, tx, 0, sp, lh)])
    assert _code(good) == "OK"
    for ht in (0x01, 0x02, 0x03, 0x81, 0x82, 0x83):
        c = _leaf_case(_checksig_script(k), [], sign=lambda tx, sp, lh: [script_sig(k, tx, 0, sp, lh, ht)])
        assert _code(c) == "OK", ht

    def flipped(tx, sp, lh):
        s = bytearray(script_sig(k, tx, 0, sp, lh))
        s[10] ^= 1
        return [bytes(s)]
    assert _code(_leaf_case(_checksig_script(k), [], sign=flipped)) == "SCHNORR_SIG"
    # an empty signature is a failed check, not an error: CHECKSIG pushes false
    assert _code(_leaf_case(_checksig_script(k), [b""])) == "EVAL_FALSE"
    assert _code(_leaf_case(_checksig_script(k) + b"\x91", [b""])) == "OK"      # NOT
    assert _code(_leaf_case(push_data(k.xonly_public_key) + b"\xad\x51", [b""])) == "CHECKSIGVERIFY"
    # a signature of the wrong size / hash type
    assert _code(_leaf_case(_checksig_script(k), [bytes(63)])) == "SCHNORR_SIG_SIZE"
    assert _code(_leaf_case(_checksig_script(k), [bytes(64) + b"\x00"])) == "SCHNORR_SIG_HASHTYPE"
    assert _code(_leaf_case(_checksig_script(k), [bytes(64) + b"\x04"])) == "SCHNORR_SIG_HASHTYPE"


def test_sighash_single_without_output_is_a_hashtype_error():
    k = KEYS[0]
    rng = random.Random(5)
    info = taproot_tree(INTERNAL.xonly_public_key, (TAPROOT_LEAF_TAPSCRIPT, _checksig_script(k)))
    tx, spent = spending_tx([info.script_pubkey] * 3, rng, n_outputs=1)
    lh = info.leaves[0][2]
    sig = script_sig(k, tx, 2, spent, lh, 0x03)
    case = TaprootCase(with_witness(tx, 2, (sig, info.leaves[0][1], info.control_blocks[0])), 2, spent)
    assert _code(case) == "SCHNORR_SIG_HASHTYPE"
    sig = script_sig(k, tx, 0, spent, lh, 0x03)
    case = TaprootCase(with_witness(tx, 0, (sig, info.leaves[0][1], info.control_blocks[0])), 0, spent)
    assert _code(case) == "OK"


def test_checksigadd_k_of_n():
    ks = KEYS[:3]
    script = (push_data(ks[0].xonly_public_key) + b"\xac" + push_data(ks[1].xonly_public_key) + b"\xba"
              + push_data(ks[2].xonly_public_key) + b"\xba" + push_int(2) + b"\x9c")   # NUMEQUAL

    def sigs(which):
        def sign(tx, sp, lh):
            # stack order: the first key's signature is on top
            return [script_sig(ks[i], tx, 0, sp, lh) if i in which else b"" for i in (2, 1, 0)]
        return sign
    assert _code(_leaf_case(script, [], sign=sigs({0, 2}))) == "OK"
    assert _code(_leaf_case(script, [], sign=sigs({1, 2}))) == "OK"
    assert _code(_leaf_case(script, [], sign=sigs({1}))) == "EVAL_FALSE"
    assert _code(_leaf_case(script, [], sign=sigs({0, 1, 2}))) == "EVAL_FALSE"
    # CHECKSIGADD's number is a 4-byte script number; MINIMALDATA makes it minimal
    add = push_data(ks[0].xonly_public_key) + b"\xba"
    assert _code(_leaf_case(add, [b"", b"\x01\x00"])) == "OK"
    assert _code(_leaf_case(add, [b"", b"\x01\x00"], flags=TR | ScriptFlags.MINIMALDATA)) == "SCRIPTNUM"
    assert _code(_leaf_case(add, [b"", b"\x01\x00\x00\x00\x00"])) == "SCRIPTNUM"
    assert _code(_leaf_case(add, [b""])) == "INVALID_STACK_OPERATION"


def test_checksigadd_is_a_bad_opcode_outside_tapscript():
    with pytest.raises(ScriptError) as e:
        eval_script([b"", b"", b"\x01" * 32], b"\xba", 0, None)
    assert e.value.code == "BAD_OPCODE"


def test_pubkey_types():
    # empty key: error even with an empty signature
    assert _code(_leaf_case(b"\x00\xac", [b""])) == "TAPSCRIPT_EMPTY_PUBKEY"
    # an unknown key type (not 32 bytes) with a non-empty signature succeeds...
    unknown = push_data(b"\x02" * 33) + b"\xac"
    assert _code(_leaf_case(unknown, [b"\x01"])) == "OK"
    assert _code(_leaf_case(unknown, [b""])) == "EVAL_FALSE"
    # ...unless DISCOURAGE_UPGRADABLE_PUBKEYTYPE, with or without a signature
    d = TR | ScriptFlags.DISCOURAGE_UPGRADABLE_PUBKEYTYPE
    assert _code(_leaf_case(unknown, [b"\x01"], flags=d)) == "DISCOURAGE_UPGRADABLE_PUBKEYTYPE"
    assert _code(_leaf_case(unknown, [b""], flags=d)) == "DISCOURAGE_UPGRADABLE_PUBKEYTYPE"


def test_checkmultisig_is_disabled():
    ms = b"\x00" + b"\x51" + push_data(KEYS[0].xonly_public_key) + b"\x51\xae"
    assert _code(_leaf_case(ms, [])) == "TAPSCRIPT_CHECKMULTISIG"
    assert _code(_leaf_case(b"\x51\x63\x68" + b"\xaf", [])) == "TAPSCRIPT_CHECKMULTISIG"
    # an unexecuted CHECKMULTISIG is harmless
    assert _code(_leaf_case(b"\x00\x63\xae\x68\x51", [])) == "OK"


@pytest.mark.parametrize("op", [0x50, 0x62, 0x7E, 0x89, 0x8D, 0x95, 0xBB, 0xFE])
def test_op_success(op):
    assert is_op_success(op)
    script = b"\x6a" + bytes((op,))             # OP_RETURN first: never reached
    assert _code(_leaf_case(script, [])) == "OK"
    assert _code(_leaf_case(script, [], flags=TR | ScriptFlags.DISCOURAGE_OP_SUCCESS)) == "DISCOURAGE_OP_SUCCESS"
    # before a truncated push it wins; after one, the script is undecodable
    assert _code(_leaf_case(bytes((op,)) + b"\x4c", [])) == "OK"
    assert _code(_leaf_case(b"\x4c\x05" + bytes((op,)), [])) == "BAD_OPCODE"
    # OP_SUCCESS even overrides the stack item size and count limits
    assert _code(_leaf_case(bytes((op,)), [bytes(521)] * 1001)) == "OK"


def test_not_op_success():
    for op in (0x00, 0x51, 0x61, 0x63, 0xAC, 0xAE, 0xBA, 0xB1, 0xFF):
        assert not is_op_success(op)


def test_minimalif_is_consensus_in_tapscript():
    script = b"\x63\x51\x67\x51\x68"
    assert _code(_leaf_case(script, [b"\x01"])) == "OK"
    assert _code(_leaf_case(script, [b""])) == "OK"
    assert _code(_leaf_case(script, [b"\x02"])) == "TAPSCRIPT_MINIMALIF"
    assert _code(_leaf_case(b"\x64\x51\x67\x51\x68", [b"\x01\x00"])) == "TAPSCRIPT_MINIMALIF"


def test_validation_weight_budget():
    k = KEYS[0]
    # n DUP <pk> CHECKSIGVERIFY of one signature (left as the true result): the budget is the
    # witness size + 50, each non-empty signature costs 50
    for n, expect in ((1, "OK"), (4, "OK"), (40, "TAPSCRIPT_VALIDATION_WEIGHT")):
        script = (b"\x76" + push_data(k.xonly_public_key) + b"\xad") * n

        def sign(tx, sp, lh):
            return [script_sig(k, tx, 0, sp, lh)]
        got = _code(_leaf_case(script, [], sign=sign))
        assert got == expect, (n, got)
    # unknown key types spend weight too (40 checks: 2000 units, a ~1.6 kB witness)
    script = (b"\x76" + push_data(b"\x02" * 33) + b"\xad") * 40
    assert _code(_leaf_case(script, [b"\x01"])) == "TAPSCRIPT_VALIDATION_WEIGHT"
    # ...and padding the witness (a bigger budget) makes room again
    padded = b"\x75" * 5 + script
    assert _code(_leaf_case(padded, [b"\x01"] + [bytes(520)] * 5)) == "OK"
    # empty signatures cost nothing
    assert _code(_leaf_case((b"\x76" + push_data(b"\x02" * 33) + b"\xac\x75") * 100 + b"\x75\x51",
                            [b""])) == "OK"


def test_no_size_or_opcode_limits_but_the_stack_limit():
    assert _code(_leaf_case(b"\x61" * 10_001 + b"\x51", [])) == "OK"        # > 10,000 bytes
    assert _code(_leaf_case(b"\x61" * 300 + b"\x51", [])) == "OK"           # > 201 opcodes
    assert _code(_leaf_case(b"\x75" * 999, [b"\x01"] * 1000)) == "OK"
    assert _code(_leaf_case(b"\x75" * 1000, [b"\x01"] * 1001)) == "STACK_SIZE"
    assert _code(_leaf_case(b"\x51", [bytes(521)])) == "PUSH_SIZE"
    assert _code(_leaf_case(b"\x51" * 1001, [])) == "STACK_SIZE"


def test_leaf_versions():
    assert _code(_leaf_case(b"\x6a", [], leaf_version=0xC2)) == "OK"
    assert _code(_leaf_case(b"\x6a", [], leaf_version=0xC2,
                            flags=TR | ScriptFlags.DISCOURAGE_UPGRADABLE_TAPROOT_VERSION)
                 ) == "DISCOURAGE_UPGRADABLE_TAPROOT_VERSION"
    assert _code(_leaf_case(b"\x6a", [])) == "OP_RETURN"


def test_control_blocks():
    info = taproot_tree(INTERNAL.xonly_public_key, [(TAPROOT_LEAF_TAPSCRIPT, b"\x51"),
                                                      (TAPROOT_LEAF_TAPSCRIPT, b"\x52")])
    cb = info.control_blocks[0]
    for bad in (cb[:32], cb + b"\x00", cb[:33] + bytes(32) * 129):
        assert _code(_leaf_case(b"\x51", [], control=bad, other_leaf=b"\x52")) == "TAPROOT_WRONG_CONTROL_SIZE"
    wrong_parity = bytes((cb[0] ^ 1,)) + cb[1:]
    assert _code(_leaf_case(b"\x51", [], control=wrong_parity, other_leaf=b"\x52")) == "WITNESS_PROGRAM_MISMATCH"
    wrong_path = cb[:33] + bytes(32)
    assert _code(_leaf_case(b"\x51", [], control=wrong_path, other_leaf=b"\x52")) == "WITNESS_PROGRAM_MISMATCH"
    assert _code(_leaf_case(b"\x51", [], control=cb, other_leaf=b"\x52")) == "OK"


def test_annex():
    k = KEYS[1]
    annex = b"\x50\x01\x02"
    good = _leaf_case(_checksig_script(k), [], annex=annex,
                      sign=lambda tx, sp, lh: [script_sig(k, tx, 0, sp, lh, annex=annex)])
    assert _code(good) == "OK"
    no_annex_sig = _leaf_case(_checksig_script(k), [], annex=annex,
                              sign=lambda tx, sp, lh: [script_sig(k, tx, 0, sp, lh)])
    assert _code(no_annex_sig) == "SCHNORR_SIG"
    # key path with an annex
    rng = random.Random(9)
    info = taproot_tree(k.xonly_public_key)
    tx, spent = spending_tx([info.script_pubkey], rng)
    sig = keypath_sig(k, tx, 0, spent, annex=b"\x50")
    assert _code(TaprootCase(with_witness(tx, 0, (sig, b"\x50")), 0, spent)) == "OK"
    assert _code(TaprootCase(with_witness(tx, 0, (sig,)), 0, spent)) == "SCHNORR_SIG"
    # a lone item starting 0x50 is the signature, not an annex
    assert _code(TaprootCase(with_witness(tx, 0, (b"\x50",)), 0, spent)) == "SCHNORR_SIG_SIZE"
    assert _code(TaprootCase(with_witness(tx, 0, ()), 0, spent)) == "WITNESS_PROGRAM_WITNESS_EMPTY"


def test_codeseparator_position_is_signed():
    k = KEYS[2]
    # <pk> CODESEPARATOR CHECKSIG: the separator is opcode 1
    script = push_data(k.xonly_public_key) + b"\xab\xac"
    good = _leaf_case(script, [], sign=lambda tx, sp, lh: [script_sig(k, tx, 0, sp, lh, codesep_pos=1)])
    assert _code(good) == "OK"
    bad = _leaf_case(script, [], sign=lambda tx, sp, lh: [script_sig(k, tx, 0, sp, lh)])
    assert _code(bad) == "SCHNORR_SIG"


def test_p2sh_wrapped_v1_is_not_taproot_and_anchor_is_not_discouraged():
    from tinynode.primitives.hashes import hash160
    from tinynode.primitives.tx import OutPoint, Tx, TxIn, TxOut
    from tinynode.script.interpreter import verify_script
    redeem = b"\x51\x20" + b"\x01" * 32
    spk = b"\xa9\x14" + hash160(redeem) + b"\x87"
    tx = Tx(2, (TxIn(OutPoint(bytes(32), 0), push_data(redeem), 0, (b"\x01",)),), (TxOut(0, b""),))
    verify_script(push_data(redeem), spk, tx, 0, TR)
    with pytest.raises(ScriptError) as e:
        verify_script(push_data(redeem), spk, tx, 0, TR | ScriptFlags.DISCOURAGE_UPGRADABLE_WITNESS_PROGRAM)
    assert e.value.code == "DISCOURAGE_UPGRADABLE_WITNESS_PROGRAM"
    anchor = b"\x51\x02\x4e\x73"
    tx = Tx(2, (TxIn(OutPoint(bytes(32), 0), b"", 0, ()),), (TxOut(0, b""),))
    verify_script(b"", anchor, tx, 0, STANDARD_FLAGS)


def test_error_sentences_are_cores():
    assert script_error_string("SCHNORR_SIG") == "Invalid Schnorr signature"
    assert script_error_string("TAPSCRIPT_VALIDATION_WEIGHT") == \
        "Too much signature validation relative to witness weight"
    assert script_error_string("TAPROOT_WRONG_CONTROL_SIZE") == "Invalid Taproot control block size"
    for code in ("SCHNORR_SIG_SIZE", "SCHNORR_SIG_HASHTYPE", "TAPSCRIPT_CHECKMULTISIG",
                 "TAPSCRIPT_MINIMALIF", "TAPSCRIPT_EMPTY_PUBKEY", "DISCOURAGE_OP_SUCCESS",
                 "DISCOURAGE_UPGRADABLE_PUBKEYTYPE", "DISCOURAGE_UPGRADABLE_TAPROOT_VERSION"):
        assert code in SCRIPT_ERROR_STRINGS


def test_tapscript_signature_checks_are_no_sigops():
    """Core `WitnessSigOps`: witness v1 counts 0 (tapscript is limited by validation weight)."""
    from tinynode.consensus.sigops import count_witness_sigops
    script = (push_data(KEYS[0].xonly_public_key) + b"\xac") * 20
    info = taproot_tree(INTERNAL.xonly_public_key, (TAPROOT_LEAF_TAPSCRIPT, script))
    witness = (b"\x01" * 64,) * 20 + (script, info.control_blocks[0])
    assert count_witness_sigops(b"", info.script_pubkey, witness, TR) == 0
