"""Signing inputs: scriptSigs for P2PKH, P2PK and (P2SH-)multisig; witnesses for P2WPKH and
P2TR key path spends (BIP86 outputs: no script tree)."""

from __future__ import annotations

from ..primitives.hashes import hash160
from ..primitives.keys import PrivateKey
from ..primitives.tx import Tx
from .script import core_push, multisig_info
from .sighash import (
    SIGHASH_ALL, SIGHASH_DEFAULT, PrecomputedTxData, legacy_sighash, taproot_sighash,
    witness_v0_sighash,
)

__all__ = ["sign_digest", "sign_p2pkh", "sign_p2pk", "sign_multisig", "sign_p2wpkh", "sign_p2tr_keypath"]


def sign_digest(tx: Tx, input_index: int, privkey: PrivateKey, script_code: bytes,
                hash_type: int = SIGHASH_ALL) -> bytes:
    """A low-S DER signature with its hashtype byte over the legacy sighash of `script_code`."""
    digest = legacy_sighash(tx, input_index, script_code, hash_type)
    return privkey.sign(digest) + bytes((hash_type & 0xFF,))


def sign_p2pkh(tx: Tx, input_index: int, privkey: PrivateKey, script_pubkey: bytes,
               hash_type: int = SIGHASH_ALL) -> bytes:
    """scriptSig `<sig> <pubkey>` spending the P2PKH `script_pubkey`."""
    sig = sign_digest(tx, input_index, privkey, script_pubkey, hash_type)
    return core_push(sig) + core_push(privkey.public_key.sec)


def sign_p2pk(tx: Tx, input_index: int, privkey: PrivateKey, script_pubkey: bytes,
              hash_type: int = SIGHASH_ALL) -> bytes:
    """scriptSig `<sig>` spending the P2PK `script_pubkey`."""
    return core_push(sign_digest(tx, input_index, privkey, script_pubkey, hash_type))


def sign_multisig(tx: Tx, input_index: int, privkeys: list[PrivateKey], redeem_or_spk: bytes,
                  p2sh: bool, hash_type: int = SIGHASH_ALL) -> bytes:
    """scriptSig `OP_0 <sig>...` (plus `<redeem script>` when `p2sh`) for an m-of-n multisig.

    Signs with the first m of `privkeys` in the script's key order; raises ValueError when the
    script is not a standard multisig or fewer than m keys belong to it."""
    info = multisig_info(redeem_or_spk)
    if info is None:
        raise ValueError("not a standard multisig script")
    m, pubkeys = info
    by_sec = {k.public_key.sec: k for k in privkeys}
    chosen = [by_sec[pk] for pk in pubkeys if pk in by_sec][:m]
    if len(chosen) < m:
        raise ValueError(f"need {m} keys of this multisig, have {len(chosen)}")
    sigs = [sign_digest(tx, input_index, k, redeem_or_spk, hash_type) for k in chosen]
    script_sig = b"\x00" + b"".join(core_push(s) for s in sigs)
    if p2sh:
        script_sig += core_push(redeem_or_spk)
    return script_sig


def sign_p2wpkh(tx: Tx, input_index: int, privkey: PrivateKey, amount: int,
                hash_type: int = SIGHASH_ALL, txdata: PrecomputedTxData | None = None) -> tuple[bytes, bytes]:
    """Witness `[<sig>, <pubkey>]` spending a P2WPKH output of `amount` satoshis to this key
    (BIP143: the scriptCode is the key hash's P2PKH script; the scriptSig stays empty).
    `txdata` shares the per-transaction hashes between a tx's inputs (Core
    `PrecomputedTransactionData`). The key must be compressed (policy `WITNESS_PUBKEYTYPE`)."""
    pub = privkey.public_key.sec
    script_code = b"\x76\xa9\x14" + hash160(pub) + b"\x88\xac"
    digest = witness_v0_sighash(tx, input_index, script_code, amount, hash_type, txdata)
    return (privkey.sign(digest) + bytes((hash_type & 0xFF,)), pub)


def sign_p2tr_keypath(tx: Tx, input_index: int, privkey: PrivateKey, txdata: PrecomputedTxData,
                      hash_type: int = SIGHASH_DEFAULT, merkle_root: bytes | None = None,
                      aux: bytes | None = None) -> tuple[bytes]:
    """Witness `[<sig>]` spending a P2TR output by the key path (Core `MutableTransactionSignatureCreator::
    CreateSchnorrSig` with no leaf hash): a BIP340 signature by `privkey` tweaked with
    `merkle_root` (None: the BIP86 output key, no script tree) over the BIP341 sighash.
    `txdata` must carry every spent output of the tx (`PrecomputedTxData.for_tx(tx, spent)`):
    taproot signatures commit to all of them. 64 bytes for SIGHASH_DEFAULT, else 65 with the
    hash type byte. `aux` is BIP340's auxiliary randomness (fresh random bytes when None)."""
    digest = taproot_sighash(tx, input_index, hash_type, txdata)
    if digest is None:
        raise ValueError("no taproot signature hash for this hash type and input")
    sig = privkey.taproot_tweaked(merkle_root).sign_schnorr(digest, aux)
    return (sig + (bytes((hash_type,)) if hash_type != SIGHASH_DEFAULT else b""),)
