"""Build and sign taproot spends for tests: P2TR outputs from an internal key and a script
tree, transactions spending several of them, key path and script path witnesses signed with
tinynode's BIP341/342 sighash (every hash type, annex, codeseparator position).

`TaprootCase` carries what a verifier needs: the tx, the input index, every spent output (taproot
signatures commit to all of them) and the flags; `verify(case)` runs tinynode's `verify_script`
and returns "OK" or Core's error name.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from tinynode.primitives.keys import PrivateKey
from tinynode.primitives.tx import OutPoint, Tx, TxIn, TxOut
from tinynode.script.flags import ScriptFlags
from tinynode.script.interpreter import ScriptError, verify_script
from tinynode.script.sighash import PrecomputedTxData, taproot_sighash
from tinynode.script.taproot import taproot_tree

__all__ = ["TaprootCase", "key", "spending_tx", "with_witness", "keypath_sig", "script_sig",
           "verify", "TAPROOT_CONSENSUS"]

TAPROOT_CONSENSUS = (ScriptFlags.P2SH | ScriptFlags.DERSIG | ScriptFlags.NULLDUMMY
                     | ScriptFlags.CHECKLOCKTIMEVERIFY | ScriptFlags.CHECKSEQUENCEVERIFY
                     | ScriptFlags.WITNESS | ScriptFlags.TAPROOT)


@dataclass(frozen=True)
class TaprootCase:
    tx: Tx
    index: int
    spent: tuple[TxOut, ...]
    flags: int = int(TAPROOT_CONSENSUS)
    what: str = ""

    @property
    def script_pubkey(self) -> bytes:
        return self.spent[self.index].script_pubkey


def key(n: int) -> PrivateKey:
    """A deterministic test key (secret n+1)."""
    return PrivateKey((n + 1).to_bytes(32, "big"))


def spending_tx(spks: list[bytes], rng: random.Random, n_outputs: int = 2,
                version: int = 2, locktime: int = 0) -> tuple[Tx, tuple[TxOut, ...]]:
    """An unsigned tx spending one output per script in `spks` (random prevouts, amounts,
    sequences) to `n_outputs` outputs."""
    spent = tuple(TxOut(rng.randrange(1, 5_000_000_000), s) for s in spks)
    vin = tuple(TxIn(OutPoint(rng.randbytes(32), rng.randrange(4)), b"",
                     rng.choice((0xFFFFFFFF, 0xFFFFFFFE, 0, rng.randrange(1 << 32))))
                for _ in spks)
    vout = tuple(TxOut(rng.randrange(0, 1_000_000), b"\x00\x14" + rng.randbytes(20))
                 for _ in range(n_outputs))
    return Tx(version, vin, vout, locktime), spent


def with_witness(tx: Tx, index: int, witness: tuple[bytes, ...]) -> Tx:
    vin = list(tx.vin)
    old = vin[index]
    vin[index] = TxIn(old.prevout, old.script_sig, old.sequence, tuple(witness))
    return Tx(tx.version, tuple(vin), tx.vout, tx.locktime)


def keypath_sig(k: PrivateKey, tx: Tx, index: int, spent, hash_type: int = 0,
                merkle_root: bytes | None = None, annex: bytes | None = None,
                aux: bytes = bytes(32)) -> bytes:
    """A key path signature by the tweaked `k` (65 bytes unless SIGHASH_DEFAULT)."""
    txdata = PrecomputedTxData.for_tx(tx, spent)
    digest = taproot_sighash(tx, index, hash_type, txdata, annex)
    if digest is None:                      # undefined type / SINGLE without output: sign zeros
        digest = bytes(32)
    sig = k.taproot_tweaked(merkle_root).sign_schnorr(digest, aux)
    return sig + (bytes((hash_type,)) if hash_type else b"")


def script_sig(k: PrivateKey, tx: Tx, index: int, spent, leaf_hash: bytes, hash_type: int = 0,
               annex: bytes | None = None, codesep_pos: int = 0xFFFFFFFF,
               aux: bytes = bytes(32)) -> bytes:
    """A tapscript signature by `k` (untweaked) for the leaf `leaf_hash`."""
    txdata = PrecomputedTxData.for_tx(tx, spent)
    digest = taproot_sighash(tx, index, hash_type, txdata, annex, leaf_hash, codesep_pos)
    if digest is None:
        digest = bytes(32)
    return k.sign_schnorr(digest, aux) + (bytes((hash_type,)) if hash_type else b"")


def verify(case: TaprootCase, verifier=None) -> str:
    """tinynode's verdict: "OK" or the ScriptError code."""
    fn = verifier or verify_script
    txdata = PrecomputedTxData.for_tx(case.tx, case.spent)
    out = case.spent[case.index]
    try:
        fn(case.tx.vin[case.index].script_sig, out.script_pubkey, case.tx, case.index, case.flags,
           amount=out.value, txdata=txdata)
    except ScriptError as e:
        return e.code
    return "OK"


# re-exported for tests that build trees
taproot_tree = taproot_tree
