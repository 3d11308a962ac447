"""Signing helpers produce scriptSigs the interpreter accepts under the standard flags."""

from __future__ import annotations

import dataclasses

import pytest

from tinynode.primitives.keys import PrivateKey
from tinynode.primitives.tx import OutPoint, Tx, TxIn, TxOut
from tinynode.script.flags import MANDATORY_FLAGS, STANDARD_FLAGS
from tinynode.script.interpreter import ScriptError, verify_script
from tinynode.script.script import multisig_script, p2pk_script, p2pkh_script, p2sh_script
from tinynode.script.sighash import SIGHASH_ALL, SIGHASH_ANYONECANPAY, SIGHASH_NONE, SIGHASH_SINGLE
from tinynode.script.sign import sign_multisig, sign_p2pk, sign_p2pkh
from tinynode.primitives.hashes import hash160

KEYS = [PrivateKey(bytes([i + 1]) * 32) for i in range(3)]
UNCOMPRESSED = PrivateKey(bytes([9]) * 32, compressed=False)


def _spend(n_in: int = 2) -> Tx:
    vin = tuple(TxIn(OutPoint(bytes([0x11 * (i + 1)]) * 32, i)) for i in range(n_in))
    return Tx(1, vin, (TxOut(5000, p2pkh_script(bytes(20))), TxOut(6000, b"\x51")), 0)


def _with_sig(tx: Tx, i: int, script_sig: bytes) -> Tx:
    vin = list(tx.vin)
    vin[i] = dataclasses.replace(vin[i], script_sig=script_sig)
    return dataclasses.replace(tx, vin=tuple(vin))


@pytest.mark.parametrize("key", [KEYS[0], UNCOMPRESSED], ids=["compressed", "uncompressed"])
@pytest.mark.parametrize("hash_type", [SIGHASH_ALL, SIGHASH_NONE, SIGHASH_SINGLE,
                                       SIGHASH_ALL | SIGHASH_ANYONECANPAY])
def test_p2pkh(key, hash_type):
    spk = p2pkh_script(key.public_key.hash160())
    tx = _spend()
    ss = sign_p2pkh(tx, 1, key, spk, hash_type)
    signed = _with_sig(tx, 1, ss)
    verify_script(ss, spk, signed, 1, STANDARD_FLAGS)
    # the signature does not cover another input's slot
    with pytest.raises(ScriptError) as e:
        verify_script(ss, spk, signed, 0, STANDARD_FLAGS)
    assert e.value.code == "NULLFAIL"
    with pytest.raises(ScriptError) as e:
        verify_script(ss, spk, signed, 0, MANDATORY_FLAGS)
    assert e.value.code == "EVAL_FALSE"


def test_p2pkh_wrong_key_is_equalverify():
    spk = p2pkh_script(KEYS[1].public_key.hash160())
    tx = _spend()
    ss = sign_p2pkh(tx, 0, KEYS[0], spk)
    with pytest.raises(ScriptError) as e:
        verify_script(ss, spk, _with_sig(tx, 0, ss), 0, STANDARD_FLAGS)
    assert e.value.code == "EQUALVERIFY"


def test_p2pk():
    spk = p2pk_script(KEYS[2].public_key.sec)
    tx = _spend()
    ss = sign_p2pk(tx, 0, KEYS[2], spk)
    verify_script(ss, spk, _with_sig(tx, 0, ss), 0, STANDARD_FLAGS)


@pytest.mark.parametrize("p2sh", [False, True], ids=["bare", "p2sh"])
def test_multisig(p2sh):
    redeem = multisig_script(2, [k.public_key.sec for k in KEYS])
    spk = p2sh_script(hash160(redeem)) if p2sh else redeem
    tx = _spend()
    # keys given out of order: signatures must follow the script's key order
    ss = sign_multisig(tx, 0, [KEYS[2], KEYS[0]], redeem, p2sh)
    verify_script(ss, spk, _with_sig(tx, 0, ss), 0, STANDARD_FLAGS)
    with pytest.raises(ValueError):
        sign_multisig(tx, 0, [KEYS[0]], redeem, p2sh)


def test_changed_output_breaks_signature():
    spk = p2pkh_script(KEYS[0].public_key.hash160())
    tx = _spend()
    ss = sign_p2pkh(tx, 0, KEYS[0], spk)
    signed = _with_sig(tx, 0, ss)
    tampered = dataclasses.replace(signed, vout=(TxOut(5001, b"\x51"),) + signed.vout[1:])
    with pytest.raises(ScriptError) as e:
        verify_script(ss, spk, tampered, 0, MANDATORY_FLAGS)
    assert e.value.code == "EVAL_FALSE"
