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


# --------------------------------------------------------------------- seeded random spends
_HASH_TYPES = (0x00, 0x01, 0x02, 0x03, 0x81, 0x82, 0x83)
_BAD_HASH_TYPES = (0x04, 0x80, 0x84, 0xFF, 0x00)
_SUCCESS_OPS = (0x50, 0x62, 0x7E, 0x7F, 0x80, 0x81, 0x83, 0x84, 0x85, 0x86, 0x89, 0x8A, 0x8D,
                0x8E, 0x95, 0x96, 0x97, 0x98, 0x99, 0xBB, 0xC0, 0xFE)
_FILLER_OPS = (b"\x61", b"\x51", b"\x75\x51", b"\x00\x75", b"\x76\x75", b"\x01\x07\x75")
KINDS = ("keypath", "multisig_add", "checksig_chain", "op_success", "unknown_leaf",
         "bad_control", "weight", "codesep")


def _flip(b: bytes, rng: random.Random) -> bytes:
    x = bytearray(b)
    x[rng.randrange(len(x))] ^= 1 << rng.randrange(8)
    return bytes(x)


def _push(data: bytes) -> bytes:
    from tinynode.script.script import push_data
    return push_data(data)


def _random_tree(rng: random.Random, leaf, depth: int = 0):
    """A random tree holding `leaf` somewhere, other leaves filler scripts."""
    if depth >= 3 or rng.random() < 0.4:
        return leaf
    other = (0xC0, rng.choice(_FILLER_OPS) + bytes((rng.randrange(256),)))
    if rng.random() < 0.5:
        return [_random_tree(rng, leaf, depth + 1), other]
    return [other, _random_tree(rng, leaf, depth + 1)]


def _flags(rng: random.Random) -> int:
    f = int(TAPROOT_CONSENSUS)
    if rng.random() < 0.1:
        f &= ~int(ScriptFlags.TAPROOT)
    for bit in (ScriptFlags.DERSIG, ScriptFlags.NULLDUMMY, ScriptFlags.CHECKLOCKTIMEVERIFY,
                ScriptFlags.CHECKSEQUENCEVERIFY):
        if rng.random() < 0.3:
            f &= ~int(bit)
    return f


def random_case(rng: random.Random, kind: str | None = None) -> TaprootCase:
    """One seeded taproot spend of `kind` (random when None): valid or broken in one way."""
    kind = kind or rng.choice(KINDS)
    n_in = rng.randint(1, 3)
    index = rng.randrange(n_in)
    n_out = rng.randint(1, 3)
    annex = None
    if rng.random() < 0.2:
        annex = b"\x50" + rng.randbytes(rng.randrange(4))
    internal = key(rng.randrange(50))
    others = [key(50 + rng.randrange(50)) for _ in range(n_in)]
    spks = [taproot_tree(k.xonly_public_key).script_pubkey if rng.random() < 0.7
            else b"\x00\x14" + rng.randbytes(20) for k in others]
    flags = _flags(rng)

    def hash_type():
        return rng.choice(_BAD_HASH_TYPES) if rng.random() < 0.08 else rng.choice(_HASH_TYPES)

    if kind == "keypath":
        tree = None if rng.random() < 0.5 else _random_tree(rng, (0xC0, b"\x51"))
        info = taproot_tree(internal.xonly_public_key, tree)
        spks[index] = info.script_pubkey
        tx, spent = spending_tx(spks, rng, n_out)
        ht = hash_type()
        sig = keypath_sig(internal, tx, index, spent, ht, info.merkle_root,
                          annex if rng.random() < 0.9 else None, rng.randbytes(32))
        if ht == 0 and rng.random() < 0.2:
            sig += b"\x00"                              # SIGHASH_DEFAULT spelled out: invalid
        if rng.random() < 0.3:
            sig = _flip(sig, rng)
        elif rng.random() < 0.05:
            sig = sig[:rng.choice((0, 63, 66))] + bytes(max(0, 63 - len(sig)))
        wit = (sig,) + ((annex,) if annex is not None else ())
        return TaprootCase(with_witness(tx, index, wit), index, spent, flags, kind)

    controls = None
    if kind in ("multisig_add", "checksig_chain", "weight", "codesep"):
        n = rng.randint(1, 5)
        keys = [key(200 + rng.randrange(100)) for _ in range(n)]
        if kind == "multisig_add":
            m = rng.randint(1, n)
            script = _push(keys[0].xonly_public_key) + b"\xac"
            for k in keys[1:]:
                script += _push(k.xonly_public_key) + b"\xba"
            script += _push_int(m) + rng.choice((b"\x9c", b"\x9d\x51", b"\x87"))
        elif kind == "checksig_chain":
            script = b"".join(_push(k.xonly_public_key) + b"\xad" for k in keys[:-1])
            script += _push(keys[-1].xonly_public_key) + b"\xac"
        elif kind == "weight":
            n = 1
            reps = rng.randint(1, 60)
            keys = keys[:1]
            script = (b"\x76" + _push(keys[0].xonly_public_key) + b"\xad") * reps
        else:  # codesep: <pk> CODESEPARATOR CHECKSIG with the separator at a random position
            pre = b"\x61" * rng.randrange(4)
            script = pre + _push(keys[0].xonly_public_key) + b"\xab\xac"
            keys = keys[:1]
            n = 1
        leaf = (0xC0, script)
        info = taproot_tree(internal.xonly_public_key, _random_tree(rng, leaf))
        pos = [s for _v, s, _h in info.leaves].index(script)
        leaf_hash = info.leaves[pos][2]
        spks[index] = info.script_pubkey
        tx, spent = spending_tx(spks, rng, n_out)
        codesep = 0xFFFFFFFF
        if kind == "codesep":
            codesep = len(pre) + 1 if rng.random() < 0.8 else rng.randrange(6)
        stack = []
        signers = [rng.random() < 0.7 for _ in keys]
        for k, signs in zip(keys, signers):
            if signs or kind in ("checksig_chain", "weight", "codesep"):
                sig = script_sig(k, tx, index, spent, leaf_hash, hash_type(),
                                 annex if rng.random() < 0.95 else None, codesep, rng.randbytes(32))
                if rng.random() < 0.1:
                    sig = _flip(sig, rng)
            else:
                sig = b""
            stack.insert(0, sig)                    # the first key's signature on top
        if kind == "weight" and rng.random() < 0.5:
            stack = [bytes(rng.randrange(520))] + stack
            script = b"\x7c\x75" + script          # SWAP DROP the padding
            leaf = (0xC0, script)
            info = taproot_tree(internal.xonly_public_key, leaf)
            spks[index] = info.script_pubkey
            tx, spent = spending_tx(spks, rng, n_out)
            leaf_hash = info.leaves[0][2]
            sig = script_sig(keys[0], tx, index, spent, leaf_hash, 0, annex)
            stack = [stack[0], sig]
            pos = 0
        controls = info.control_blocks[pos]
    elif kind == "op_success":
        op = bytes((rng.choice(_SUCCESS_OPS),))
        parts = [rng.choice(_FILLER_OPS) for _ in range(rng.randrange(4))]
        parts.insert(rng.randrange(len(parts) + 1), op)
        if rng.random() < 0.3:
            parts.insert(rng.randrange(len(parts) + 1), b"\x4c\x7f")   # an undecodable push
        if rng.random() < 0.3:
            parts.insert(0, b"\x6a")                                  # OP_RETURN first
        script = b"".join(parts)
        info = taproot_tree(internal.xonly_public_key, _random_tree(rng, (0xC0, script)))
        pos = [s for _v, s, _h in info.leaves].index(script)
        spks[index] = info.script_pubkey
        tx, spent = spending_tx(spks, rng, n_out)
        stack = [rng.randbytes(rng.choice((0, 1, 32, 521)))] * rng.choice((0, 1, 2, 1001))
        controls = info.control_blocks[pos]
    else:  # unknown_leaf / bad_control
        version = rng.choice((0xC0, 0xC2, 0x50, 0x66, 0x7E, 0xFA, 0xFE, 0x02))
        if kind == "bad_control" and rng.random() < 0.5:
            version = 0xC0
        script = rng.choice(_FILLER_OPS) + rng.choice((b"", b"\x6a", b"\xae"))
        info = taproot_tree(internal.xonly_public_key, _random_tree(rng, (version, script)))
        pos = [s for _v, s, _h in info.leaves].index(script)
        spks[index] = info.script_pubkey
        tx, spent = spending_tx(spks, rng, n_out)
        stack = [b"\x01"] * rng.randrange(3)
        controls = info.control_blocks[pos]
        if kind == "bad_control":
            r = rng.random()
            if r < 0.25:
                controls = controls[:rng.randrange(len(controls))]
            elif r < 0.45:
                controls = controls + rng.randbytes(rng.choice((1, 31, 32, 33)))
            elif r < 0.65:
                controls = bytes((controls[0] ^ 1,)) + controls[1:]
            elif r < 0.8:
                controls = _flip(controls, rng)
            elif r < 0.9:
                controls = controls[:33] + b"".join(rng.randbytes(32) for _ in range(rng.choice((128, 129))))
            else:
                controls = bytes((controls[0],)) + key(rng.randrange(300, 400)).xonly_public_key + controls[33:]
    wit = tuple(stack) + (script, controls) + ((annex,) if annex is not None else ())
    if rng.random() < 0.05:
        wit = wit[:-1]                                  # an item missing
    return TaprootCase(with_witness(tx, index, wit), index, spent, flags, kind)


def _push_int(n: int) -> bytes:
    from tinynode.script.script import push_int
    return push_int(n)
