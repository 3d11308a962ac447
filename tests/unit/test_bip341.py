"""BIP341 against Bitcoin Core's bip341_wallet_vectors.json (tests/data, provenance in
tests/data/README.md): script trees (leaf hashes, merkle root, tweak, output key, scriptPubKey,
control blocks, bech32m address) and key path spending (the shared hashes, every input's
sigMsg and sigHash, the tweaked secret, and the signed witness verifying under TAPROOT)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tinynode.primitives.keys import PrivateKey, check_tap_tweak, tap_tweak_hash
from tinynode.primitives.tx import Tx, TxOut
from tinynode.script.flags import MANDATORY_FLAGS, STANDARD_FLAGS, ScriptFlags
from tinynode.script.interpreter import ScriptError, verify_script
from tinynode.script.sighash import PrecomputedTxData, taproot_sighash, taproot_sighash_preimage
from tinynode.script.taproot import taproot_tree

DATA = Path(__file__).resolve().parents[1] / "data"
VECTORS = json.loads((DATA / "bip341_wallet_vectors.json").read_text())
SPK_CASES = VECTORS["scriptPubKey"]
KEYPATH = VECTORS["keyPathSpending"][0]

# --- a tiny BIP350 bech32m encoder, only to check the vectors' address field (the address
# codec itself belongs to primitives/address.py and the wallet's issue)
_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def _polymod(values):
    gen = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
    chk = 1
    for v in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i in range(5):
            chk ^= gen[i] if (top >> i) & 1 else 0
    return chk


def _bech32m(hrp: str, version: int, program: bytes) -> str:
    acc = bits = 0
    data = [version]
    for b in program:
        acc = acc << 8 | b
        bits += 8
        while bits >= 5:
            bits -= 5
            data.append(acc >> bits & 31)
    if bits:
        data.append(acc << (5 - bits) & 31)
    expanded = [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]
    pm = _polymod(expanded + data + [0] * 6) ^ 0x2BC830A3
    checksum = [(pm >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_CHARSET[d] for d in data + checksum)


def _tree(node):
    if node is None:
        return None
    if isinstance(node, dict):
        return (node["leafVersion"], bytes.fromhex(node["script"]))
    return [_tree(node[0]), _tree(node[1])]


def test_flag_sets_are_cores():
    assert MANDATORY_FLAGS & ScriptFlags.TAPROOT
    for f in (ScriptFlags.TAPROOT, ScriptFlags.DISCOURAGE_UPGRADABLE_TAPROOT_VERSION,
              ScriptFlags.DISCOURAGE_OP_SUCCESS, ScriptFlags.DISCOURAGE_UPGRADABLE_PUBKEYTYPE):
        assert STANDARD_FLAGS & f
    assert int(ScriptFlags.TAPROOT) == 1 << 17
    assert int(ScriptFlags.DISCOURAGE_UPGRADABLE_PUBKEYTYPE) == 1 << 20


@pytest.mark.parametrize("case", SPK_CASES, ids=lambda c: f"spk{SPK_CASES.index(c)}")
def test_script_pubkey_vectors(case):
    given, inter, expected = case["given"], case["intermediary"], case["expected"]
    internal = bytes.fromhex(given["internalPubkey"])
    info = taproot_tree(internal, _tree(given["scriptTree"]))
    assert [h.hex() for _v, _s, h in info.leaves] == inter.get("leafHashes", [])
    assert (info.merkle_root.hex() if info.merkle_root else None) == inter["merkleRoot"]
    assert tap_tweak_hash(internal, info.merkle_root).hex() == inter["tweak"]
    assert info.output_key.hex() == inter["tweakedPubkey"]
    assert info.script_pubkey.hex() == expected["scriptPubKey"]
    assert [c.hex() for c in info.control_blocks] == expected.get("scriptPathControlBlocks", [])
    assert check_tap_tweak(internal, info.output_key, info.merkle_root, info.parity)
    assert not check_tap_tweak(internal, info.output_key, info.merkle_root, info.parity ^ 1)
    assert _bech32m("bc", 1, info.output_key) == expected["bip350Address"]


def _keypath_tx():
    given = KEYPATH["given"]
    tx = Tx.from_hex(given["rawUnsignedTx"])
    spent = [TxOut(u["amountSats"], bytes.fromhex(u["scriptPubKey"])) for u in given["utxosSpent"]]
    return tx, spent


def test_keypath_shared_hashes():
    tx, spent = _keypath_tx()
    txdata = PrecomputedTxData.for_tx(tx, spent)
    inter = KEYPATH["intermediary"]
    assert txdata.taproot_ready
    assert txdata.sha_amounts.hex() == inter["hashAmounts"]
    assert txdata.sha_outputs.hex() == inter["hashOutputs"]
    assert txdata.sha_prevouts.hex() == inter["hashPrevouts"]
    assert txdata.sha_scriptpubkeys.hex() == inter["hashScriptPubkeys"]
    assert txdata.sha_sequences.hex() == inter["hashSequences"]
    assert not PrecomputedTxData.for_tx(tx).taproot_ready


@pytest.mark.parametrize("spend", KEYPATH["inputSpending"],
                         ids=lambda s: f"input{s['given']['txinIndex']}-hashtype{s['given']['hashType']:#x}")
def test_keypath_spending_vectors(spend):
    tx, spent = _keypath_tx()
    txdata = PrecomputedTxData.for_tx(tx, spent)
    given, inter = spend["given"], spend["intermediary"]
    i, hash_type = given["txinIndex"], given["hashType"]
    merkle_root = bytes.fromhex(given["merkleRoot"]) if given["merkleRoot"] else None
    key = PrivateKey(bytes.fromhex(given["internalPrivkey"]))
    assert key.xonly_public_key.hex() == inter["internalPubkey"]
    assert tap_tweak_hash(key.xonly_public_key, merkle_root).hex() == inter["tweak"]
    tweaked = key.taproot_tweaked(merkle_root)
    assert tweaked.secret.hex() == inter["tweakedPrivkey"]
    assert taproot_sighash_preimage(tx, i, hash_type, txdata).hex() == inter["sigMsg"]
    digest = taproot_sighash(tx, i, hash_type, txdata)
    assert digest.hex() == inter["sigHash"]
    # the vectors sign with aux randomness 0 (Core's bip341 test); the signature must equal theirs
    sig = tweaked.sign_schnorr(digest, bytes(32)) + (bytes((hash_type,)) if hash_type else b"")
    witness = tuple(bytes.fromhex(w) for w in spend["expected"]["witness"])
    assert witness == (sig,)
    spk = spent[i].script_pubkey
    assert spk[2:] == tweaked.xonly_public_key
    flags = STANDARD_FLAGS
    verify_script(b"", spk, tx, i, flags, amount=spent[i].value, witness=witness, txdata=txdata)
    # one flipped bit of the signature: SCHNORR_SIG; the wrong hash type byte: the sighash changes
    bad = bytearray(witness[0])
    bad[5] ^= 1
    with pytest.raises(ScriptError) as e:
        verify_script(b"", spk, tx, i, flags, amount=spent[i].value, witness=(bytes(bad),),
                      txdata=txdata)
    assert e.value.code == "SCHNORR_SIG"
    if hash_type == 0:   # SIGHASH_DEFAULT spelled out as a 65th byte 0x00 is invalid
        with pytest.raises(ScriptError) as e:
            verify_script(b"", spk, tx, i, flags, amount=spent[i].value,
                          witness=(witness[0] + b"\x00",), txdata=txdata)
        assert e.value.code == "SCHNORR_SIG_HASHTYPE"
    # without every spent output the signature cannot be checked (Core MissingDataBehavior::FAIL)
    with pytest.raises(ScriptError):
        verify_script(b"", spk, tx, i, flags, amount=spent[i].value, witness=witness)
    # without TAPROOT a v1 program is anyone-can-spend
    verify_script(b"", spk, tx, i, ScriptFlags.P2SH | ScriptFlags.WITNESS, witness=(bytes(bad),))


def test_keypath_vector_covers_every_hash_type():
    types = {s["given"]["hashType"] for s in KEYPATH["inputSpending"]}
    assert types == {0x00, 0x01, 0x02, 0x03, 0x81, 0x82, 0x83}
