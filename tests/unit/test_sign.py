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


# --- issue 16: Core SignTransaction (sign_transaction) ---------------------------------------

def test_ecdsa_signatures_are_ground_to_low_r_as_core():
    """Core `CKey::Sign(grind=true)`: R below 0x80, so the DER signature is at most 70 bytes;
    the first RFC 6979 signature is kept when its R is already low."""
    from tinynode.primitives.keys import verify_der
    from tinynode.script.sign import ecdsa_sign_low_r
    key = PrivateKey(bytes([7]) * 32)
    ground = 0
    for n in range(64):
        digest = hash160(bytes([n])) + bytes(12)
        sig = ecdsa_sign_low_r(key, digest)
        assert sig[3] <= 32 and len(sig) <= 70
        assert verify_der(key.public_key.sec, sig, digest)
        first = key.sign(digest)
        ground += first != sig
        assert (first == sig) == (first[3] <= 32)
    assert 10 < ground < 54          # about half of RFC 6979's signatures have a high R


@pytest.mark.parametrize("hash_name", ["DEFAULT", "ALL", "NONE", "SINGLE", "ALL|ANYONECANPAY",
                                       "NONE|ANYONECANPAY", "SINGLE|ANYONECANPAY"])
def test_sign_transaction_p2tr_p2wpkh_p2sh_p2wpkh_valid_for_both_engines(hash_name):
    """One tx spending P2TR (BIP86, a wallet-style provider tweaks the internal key), P2WPKH,
    P2SH-P2WPKH and P2PKH: every input verifies under the standard flags in tinynode's
    interpreter and in Core's kernel, for every hash type (SINGLE: input 3 has no output and
    stays unsigned, as Core leaves it)."""
    from tests.framework.oracle import require_kernel, same_verdict
    from tinynode.primitives.address import witness_script
    from tinynode.primitives.keys import taproot_tweak_pubkey
    from tinynode.script.sighash import SIGHASH_DEFAULT, PrecomputedTxData
    from tinynode.script.sign import FlatSigningProvider, sign_transaction
    require_kernel()
    hash_type = {"DEFAULT": SIGHASH_DEFAULT, "ALL": 1, "NONE": 2, "SINGLE": 3}.get(
        hash_name.split("|")[0]) | (SIGHASH_ANYONECANPAY if "ANYONECANPAY" in hash_name else 0)
    k_tr, k_w, k_sh, k_pkh = (PrivateKey(bytes([b]) * 32) for b in (0x11, 0x22, 0x33, 0x44))
    redeem = witness_script(0, hash160(k_sh.public_key.sec))
    spent = [TxOut(50_000, witness_script(1, taproot_tweak_pubkey(k_tr.xonly_public_key, None)[0])),
             TxOut(60_000, witness_script(0, hash160(k_w.public_key.sec))),
             TxOut(70_000, p2sh_script(hash160(redeem))),
             TxOut(80_000, p2pkh_script(hash160(k_pkh.public_key.sec)))]

    class Provider(FlatSigningProvider):
        def taproot_key(self, output_key):               # the wallet's BIP86 rule
            return (k_tr, True) if output_key == spent[0].script_pubkey[2:] else None
    prov = Provider()
    for k in (k_w, k_sh, k_pkh):
        prov.add_key(k)
    prov.scripts[hash160(redeem)] = redeem
    tx = Tx(2, tuple(TxIn(OutPoint(bytes([i + 1]) * 32, i), b"", 0xFFFFFFFD) for i in range(4)),
            tuple(TxOut(10_000 * (i + 1), p2pkh_script(bytes(20))) for i in range(3)), 0)
    res = sign_transaction(tx, spent, prov, hash_type)
    signed = res.tx
    unsigned = {3} if hash_type & 3 == SIGHASH_SINGLE else set()
    assert set(res.errors) == unsigned and res.complete == (not unsigned)
    if unsigned:
        assert res.errors[3] == "Unable to sign input, invalid stack size (possibly missing key)"
    assert len(signed.vin[0].witness[0]) == (64 if hash_type == SIGHASH_DEFAULT else 65)
    assert signed.vin[2].script_sig == bytes([22]) + redeem and len(signed.vin[2].witness) == 2
    txdata = PrecomputedTxData.for_tx(signed, spent)
    outs = [(o.script_pubkey, o.value) for o in spent]
    for i, out in enumerate(spent):
        if i in unsigned:
            continue
        verify_script(signed.vin[i].script_sig, out.script_pubkey, signed, i, STANDARD_FLAGS,
                      out.value, txdata=txdata)
        assert same_verdict(verify_script, out.script_pubkey, signed, i, STANDARD_FLAGS, out.value,
                            f"input {i}", outs) is True
    # a tampered amount breaks the P2TR and segwit signatures (they commit to it)
    bad = [TxOut(o.value + 1, o.script_pubkey) for o in spent]
    for i in (0, 1, 2):
        assert same_verdict(verify_script, bad[i].script_pubkey, signed, i, STANDARD_FLAGS, bad[i].value,
                            f"input {i}", [(o.script_pubkey, o.value) for o in bad]) is False
