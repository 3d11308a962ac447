"""Signing inputs: scriptSigs for P2PKH, P2PK and (P2SH-)multisig; witnesses for P2WPKH,
P2SH-P2WPKH and P2TR key path spends (BIP86 outputs: no script tree); and `sign_transaction`,
Core's `SignTransaction` over a signing provider (the two `signrawtransactionwith*` RPCs)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Protocol, Sequence

from ..primitives.hashes import hash160
from ..primitives.keys import PrivateKey
from ..primitives.tx import MAX_MONEY, Tx, TxIn, TxOut
from .flags import STANDARD_FLAGS
from .script import core_push, multisig_info
from .sighash import (
    SIGHASH_ALL, SIGHASH_ANYONECANPAY, SIGHASH_DEFAULT, SIGHASH_SINGLE, PrecomputedTxData, legacy_sighash, taproot_sighash,
    witness_v0_sighash,
)

__all__ = ["sign_digest", "sign_p2pkh", "sign_p2pk", "sign_multisig", "sign_p2wpkh", "sign_p2tr_keypath",
           "SigningProvider", "FlatSigningProvider", "SignResult", "sign_transaction",
           "MISSING_AMOUNT", "INPUT_NOT_FOUND"]


#: Bound on Core's low-R grinding (each try succeeds with probability 1/2).
_MAX_GRIND = 256


def ecdsa_sign_low_r(privkey: PrivateKey, digest: bytes) -> bytes:
    """Core `CKey::Sign` with `grind = true`: the RFC 6979 signature, re-made with the counter
    1, 2, ... (little-endian, 32 bytes) as extra entropy until R's first byte is below 0x80, so
    the DER signature is at most 70 bytes (Core's `SigHasLowR`). Same key and digest, same bytes
    as Core."""
    sig = privkey.sign(digest)
    for counter in range(1, _MAX_GRIND):
        if sig[3] <= 32:          # 30 len 02 rlen r...: a 33-byte R is 00-padded (top bit set)
            return sig
        sig = privkey.sign(digest, counter.to_bytes(4, "little") + bytes(28))
    return sig  # pragma: no cover - 2**-255


def sign_digest(tx: Tx, input_index: int, privkey: PrivateKey, script_code: bytes,
                hash_type: int = SIGHASH_ALL) -> bytes:
    """A low-S, low-R DER signature with its hashtype byte over the legacy sighash of `script_code`."""
    digest = legacy_sighash(tx, input_index, script_code, hash_type)
    return ecdsa_sign_low_r(privkey, digest) + bytes((hash_type & 0xFF,))


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
    return (ecdsa_sign_low_r(privkey, digest) + bytes((hash_type & 0xFF,)), pub)


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


# --- Core SignTransaction ------------------------------------------------------------------------

#: Core's per-input error texts (script/sign.cpp `SignTransaction`).
INPUT_NOT_FOUND = "Input not found or already spent"
MISSING_AMOUNT = "Missing amount"
_STACK_SIZE = "Unable to sign input, invalid stack size (possibly missing key)"
_NULLFAIL = "CHECK(MULTI)SIG failing with non-zero signature (possibly need more signatures)"
#: Core `uint256{}` as BIP340 aux randomness in `MutableTransactionSignatureCreator::CreateSchnorrSig`
#: ("Use uint256{} as aux_rnd for now"): the same key, tx and hash type give Core's exact bytes.
ZERO_AUX = bytes(32)


class SigningProvider(Protocol):
    """The keys and scripts a signer may use (Core `SigningProvider`), asked per script."""

    def key_for(self, keyid: bytes, script_pubkey: bytes) -> PrivateKey | None:
        """The key whose hash160(pubkey) is `keyid`, to sign `script_pubkey` (P2PKH, P2PK, P2WPKH
        or the P2WPKH inside a P2SH)."""

    def redeem_script(self, scriptid: bytes) -> bytes | None:
        """The script whose hash160 is `scriptid` (Core `GetCScript`)."""

    def taproot_key(self, output_key: bytes) -> tuple[PrivateKey, bool] | None:
        """(key, tweak) to sign a key path spend of the x-only `output_key`: tweak True for an
        internal key with no script tree (BIP86, Core's spend data merkle root 0), False for the
        output key's own secret (Core `GetKeyByXOnly(output)`, signed untweaked)."""


@dataclass
class FlatSigningProvider:
    """Core `FlatSigningProvider` as `signrawtransactionwithkey` fills it: the given keys by key
    id, and the prevtxs' redeem/witness scripts by script id. A taproot output is signed only
    with a key whose x-only public key IS the output key (Core looks the output key up with
    `GetKeyByXOnly`: a BIP86 internal key alone is not enough without its descriptor)."""

    keys: dict = field(default_factory=dict)        # hash160(pubkey) -> PrivateKey
    scripts: dict = field(default_factory=dict)     # hash160(script) -> script

    def add_key(self, key: PrivateKey) -> None:
        self.keys[hash160(key.public_key.sec)] = key

    def key_for(self, keyid: bytes, script_pubkey: bytes) -> PrivateKey | None:
        return self.keys.get(keyid)

    def redeem_script(self, scriptid: bytes) -> bytes | None:
        return self.scripts.get(scriptid)

    def taproot_key(self, output_key: bytes) -> tuple[PrivateKey, bool] | None:
        for prefix in (b"\x02", b"\x03"):                # Core GetKeyByXOnly: both parities
            key = self.keys.get(hash160(prefix + output_key))
            if key is not None:
                return key, False
        return None


@dataclass(frozen=True, slots=True)
class SignResult:
    """`tx` with every input signed that could be; `errors` maps an input index to Core's text
    (verification failures as Core's `ScriptErrorString`), in input order."""

    tx: Tx
    errors: dict
    complete: bool


def _is_p2wpkh(spk: bytes) -> bool:
    return len(spk) == 22 and spk[0] == 0 and spk[1] == 20


def _is_p2tr(spk: bytes) -> bool:
    return len(spk) == 34 and spk[0] == 0x51 and spk[1] == 32


def _produce(provider: SigningProvider, tx: Tx, i: int, spk: bytes, amount: int, hash_type: int,
             txdata) -> tuple[bool, bytes, tuple]:
    """Core `ProduceSignature` for the script types tinynode signs: (solved, scriptSig, witness).
    Unsolved inputs get what Core leaves in them: nothing, or for a P2SH whose redeem script is
    known, the push of that script."""
    from .script import ScriptType, classify, iter_ops
    ecdsa_type = SIGHASH_ALL if hash_type == SIGHASH_DEFAULT else hash_type
    if _is_p2tr(spk):
        found = provider.taproot_key(spk[2:])
        if found is None or txdata is None or not txdata.taproot_ready:
            return False, b"", ()
        key, tweak = found
        digest = taproot_sighash(tx, i, hash_type, txdata)
        if digest is None:
            return False, b"", ()
        signer = key.taproot_tweaked(None) if tweak else key
        sig = signer.sign_schnorr(digest, ZERO_AUX)
        return True, b"", (sig + (bytes((hash_type,)) if hash_type != SIGHASH_DEFAULT else b""),)
    if _is_p2wpkh(spk):
        key = provider.key_for(spk[2:], spk)
        if key is None or not key.compressed:
            return False, b"", ()
        return True, b"", sign_p2wpkh(tx, i, key, amount, ecdsa_type, txdata)
    kind = classify(spk)
    if kind is ScriptType.SCRIPTHASH:
        redeem = provider.redeem_script(spk[2:22])
        if redeem is None:
            return False, b"", ()
        push = core_push(redeem)
        if not _is_p2wpkh(redeem):
            return False, b"", ()
        key = provider.key_for(redeem[2:], redeem)
        if key is None or not key.compressed:
            return False, push, ()
        return True, push, sign_p2wpkh(tx, i, key, amount, ecdsa_type, txdata)
    if kind is ScriptType.PUBKEYHASH:
        key = provider.key_for(spk[3:23], spk)
        if key is None or hash160(key.public_key.sec) != spk[3:23]:
            return False, b"", ()
        return True, sign_p2pkh(tx, i, key, spk, ecdsa_type), ()
    if kind is ScriptType.PUBKEY:
        pub = next(d for op, d in iter_ops(spk) if d is not None)
        key = provider.key_for(hash160(pub), spk)
        if key is None or key.public_key.sec != pub:
            return False, b"", ()
        return True, sign_p2pk(tx, i, key, spk, ecdsa_type), ()
    return False, b"", ()


def _verify_error(tx: Tx, i: int, spk: bytes, amount: int, txdata) -> str | None:
    """Core's check after signing: VerifyScript with the standard flags; None if it passes,
    else the error as `SignTransaction` words it."""
    from .interpreter import SCRIPT_ERROR_STRINGS, ScriptError, verify_script
    txin = tx.vin[i]
    try:
        verify_script(txin.script_sig, spk, tx, i, STANDARD_FLAGS, amount, txin.witness, txdata)
        return None
    except ScriptError as e:
        if e.code == "INVALID_STACK_OPERATION":
            return _STACK_SIZE
        if e.code == "SIG_NULLFAIL":
            return _NULLFAIL
        if e.code == "UNKNOWN_ERROR" and _is_p2tr(spk) and (txdata is None or not txdata.taproot_ready):
            # a taproot signature while some spent output is unknown: Core's checker cannot
            # hash it (MissingDataBehavior::FAIL) and reports SCHNORR_SIG_HASHTYPE
            return SCRIPT_ERROR_STRINGS["SCHNORR_SIG_HASHTYPE"]
        return SCRIPT_ERROR_STRINGS.get(e.code, "unknown error")


def sign_transaction(tx: Tx, spent: Sequence[TxOut | None], provider: SigningProvider,
                     hash_type: int = SIGHASH_DEFAULT) -> SignResult:
    """Core `SignTransaction` (script/sign.cpp) for P2PKH, P2PK, P2WPKH, P2SH-P2WPKH and P2TR key
    path inputs. `spent[i]` is the output input i spends (None: unknown, "Input not found or
    already spent"); an amount of MAX_MONEY stands for "not given", as Core's `ParsePrevouts`.

    - the per-tx hashes carry every spent output only when all are known; otherwise a P2TR
      input cannot be signed (BIP341 commits to all of them) and fails verification;
    - ECDSA inputs sign SIGHASH_ALL for SIGHASH_DEFAULT; P2TR signatures are 64 bytes for
      SIGHASH_DEFAULT, 65 with any other hash type; with SIGHASH_SINGLE an input without a
      matching output is left as it is;
    - an input that already verifies is kept; a witness input whose amount is MAX_MONEY is
      "Missing amount" (the RPC turns that into an exception); every other input that does not
      verify afterwards reports the verification error."""
    known = all(o is not None for o in spent)
    txdata = PrecomputedTxData.for_tx(tx, list(spent) if known else None)
    single = (hash_type & ~SIGHASH_ANYONECANPAY) == SIGHASH_SINGLE
    vin = list(tx.vin)
    errors: dict = {}
    cur = tx
    for i, txin in enumerate(tx.vin):
        out = spent[i]
        if out is None:
            errors[i] = INPUT_NOT_FOUND
            continue
        spk, amount = out.script_pubkey, out.value
        if (txin.script_sig or txin.witness) and _verify_error(cur, i, spk, amount, txdata) is None:
            continue                   # already complete (Core DataFromTransaction)
        if not single or i < len(tx.vout):
            solved, script_sig, witness = _produce(provider, cur, i, spk, amount, hash_type, txdata)
            if not solved and _is_p2tr(spk):
                witness = txin.witness     # Core keeps a taproot input's witness it cannot redo
            vin[i] = TxIn(txin.prevout, script_sig, txin.sequence, witness)
            cur = replace(cur, vin=tuple(vin))
        if amount == MAX_MONEY and vin[i].witness:
            errors[i] = MISSING_AMOUNT
            continue
        err = _verify_error(cur, i, spk, amount, txdata)
        if err is not None:
            errors[i] = err
    return SignResult(cur, dict(sorted(errors.items())), not errors)
