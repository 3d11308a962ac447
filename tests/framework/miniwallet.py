"""MiniWallet: deterministic keys and signed spends for chain, mempool, P2P and benchmark tests.

Like Bitcoin Core's `test_framework/wallet.py` MiniWallet, but legacy-only: every key is
derived from its index (`secret = sha256(b"miniwallet" + index)`), so two runs (or two nodes in
one process) build byte-identical transactions. The wallet can:

- pay to P2PKH (`key(i).script_pubkey`), to P2SH m-of-n multisig (`MultisigKey`), to P2WPKH
  (`P2WPKHKey`) and to P2WSH (`P2WSHScript`: a witness script with a fixed witness stack, or
  `<pubkey> OP_CHECKSIG` signed with BIP143);
- build and sign spends: 1-in/N-out (`create_spend`), chains of spends (`create_chain`),
  spends of many coins (`spend_many`), always with explicit fees;
- track "spendable outputs" (`CoinTracker`): add the outputs of blocks/txs that pay its keys,
  drop the ones spent, and hand out mature coins.

Signatures use `tinynode.script.sighash.legacy_sighash` when the script package exists, and a
local legacy `SignatureHash` (Core's `SignatureHash` for non-segwit inputs, `CTransactionSignatureSerializer`)
otherwise; both give identical digests, which `test_miniwallet_*` checks when both are present.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field, replace
from typing import Iterable, Sequence

from tinynode.primitives.hashes import hash160, sha256d
from tinynode.primitives.keys import PrivateKey
from tinynode.primitives.tx import OutPoint, Tx, TxIn, TxOut

__all__ = [
    "SIGHASH_ALL",
    "SIGHASH_NONE",
    "SIGHASH_SINGLE",
    "SIGHASH_ANYONECANPAY",
    "MiniKey",
    "MultisigKey",
    "Utxo",
    "CoinTracker",
    "MiniWallet",
    "key",
    "push_data",
    "push_int",
    "legacy_sighash_local",
    "legacy_sighash",
    "sign_p2pkh_input",
    "sign_p2sh_multisig_input",
    "P2WPKHKey",
    "P2WSHScript",
    "sign_p2wpkh_input",
    "sign_p2wsh_input",
    "p2wpkh_script",
    "p2wsh_script",
]

SIGHASH_ALL = 1
SIGHASH_NONE = 2
SIGHASH_SINGLE = 3
SIGHASH_ANYONECANPAY = 0x80

OP_0 = 0x00
OP_PUSHDATA1 = 0x4C
OP_PUSHDATA2 = 0x4D
OP_1NEGATE = 0x4F
OP_1 = 0x51
OP_CHECKMULTISIG = 0xAE
OP_CODESEPARATOR = 0xAB

#: The value `legacy_sighash` returns for SIGHASH_SINGLE with no matching output (Core's "one" bug).
_SIGHASH_ONE = (1).to_bytes(32, "little")


# --------------------------------------------------------------------------- script bits
def push_data(data: bytes) -> bytes:
    """Minimal push of `data` (Core's `CScript() << data` for byte vectors)."""
    n = len(data)
    if n < OP_PUSHDATA1:
        return bytes((n,)) + data
    if n <= 0xFF:
        return bytes((OP_PUSHDATA1, n)) + data
    if n <= 0xFFFF:
        return bytes((OP_PUSHDATA2,)) + struct.pack("<H", n) + data
    return bytes((0x4E,)) + struct.pack("<I", n) + data


def _script_num(n: int) -> bytes:
    """CScriptNum serialization (little-endian sign-magnitude, minimal)."""
    if n == 0:
        return b""
    neg = n < 0
    v = -n if neg else n
    out = bytearray()
    while v:
        out.append(v & 0xFF)
        v >>= 8
    if out[-1] & 0x80:
        out.append(0x80 if neg else 0x00)
    elif neg:
        out[-1] |= 0x80
    return bytes(out)


def push_int(n: int) -> bytes:
    """Core's `CScript() << n`: OP_0, OP_1NEGATE, OP_1..OP_16, else a minimal CScriptNum push."""
    if n == 0:
        return bytes((OP_0,))
    if n == -1:
        return bytes((OP_1NEGATE,))
    if 1 <= n <= 16:
        return bytes((OP_1 + n - 1,))
    return push_data(_script_num(n))


def _p2pkh_script(h160: bytes) -> bytes:
    return b"\x76\xa9\x14" + h160 + b"\x88\xac"


def _p2sh_script(h160: bytes) -> bytes:
    return b"\xa9\x14" + h160 + b"\x87"


def _multisig_script(m: int, pubkeys: Sequence[bytes]) -> bytes:
    return push_int(m) + b"".join(push_data(p) for p in pubkeys) + push_int(len(pubkeys)) + bytes((OP_CHECKMULTISIG,))


# --------------------------------------------------------------------------- sighash
def _strip_codeseparators(script: bytes) -> bytes:
    """Remove OP_CODESEPARATOR opcodes (not pushed bytes), as Core's serializer does."""
    out = bytearray()
    i, n = 0, len(script)
    while i < n:
        op = script[i]
        start = i
        i += 1
        if op < OP_PUSHDATA1:
            i += op
        elif op == OP_PUSHDATA1:
            i += 1 + (script[i] if i < n else 0)
        elif op == OP_PUSHDATA2:
            i += 2 + (int.from_bytes(script[i:i + 2], "little") if i + 2 <= n else 0)
        elif op == 0x4E:
            i += 4 + (int.from_bytes(script[i:i + 4], "little") if i + 4 <= n else 0)
        if op != OP_CODESEPARATOR:
            out += script[start:min(i, n)]
    return bytes(out)


def legacy_sighash_local(tx: Tx, input_index: int, script_code: bytes, hash_type: int) -> bytes:
    """Core's legacy `SignatureHash` (CTransactionSignatureSerializer), written for the tests.

    Returns the 32-byte digest in internal order (the ECDSA message as-is).
    """
    if input_index >= len(tx.vin):
        return _SIGHASH_ONE
    base = hash_type & 0x1F
    anyone = bool(hash_type & SIGHASH_ANYONECANPAY)
    if base == SIGHASH_SINGLE and input_index >= len(tx.vout):
        return _SIGHASH_ONE
    code = _strip_codeseparators(script_code)
    vin = []
    for i, txin in enumerate(tx.vin):
        if anyone and i != input_index:
            continue
        seq = txin.sequence
        if i != input_index and base in (SIGHASH_NONE, SIGHASH_SINGLE):
            seq = 0
        vin.append(TxIn(txin.prevout, code if i == input_index else b"", seq))
    if base == SIGHASH_NONE:
        vout: tuple[TxOut, ...] = ()
    elif base == SIGHASH_SINGLE:
        vout = tuple(TxOut(-1, b"") for _ in range(input_index)) + (tx.vout[input_index],)
    else:
        vout = tx.vout
    stripped = Tx(tx.version, tuple(vin), vout, tx.locktime)
    return sha256d(stripped.raw + struct.pack("<I", hash_type & 0xFFFFFFFF))


def legacy_sighash(tx: Tx, input_index: int, script_code: bytes, hash_type: int) -> bytes:
    """The project's `tinynode.script.sighash.legacy_sighash` if it exists, else the local one."""
    try:
        from tinynode.script.sighash import legacy_sighash as project_sighash
    except ImportError:
        return legacy_sighash_local(tx, input_index, script_code, hash_type)
    return project_sighash(tx, input_index, script_code, hash_type)


# --------------------------------------------------------------------------- keys
@dataclass(frozen=True, slots=True)
class MiniKey:
    """A deterministic key: `secret = sha256(seed + index)`, compressed pubkey, P2PKH script."""

    index: int
    privkey: PrivateKey = field(repr=False)
    pubkey: bytes = field(repr=False)
    h160: bytes = field(repr=False)
    script_pubkey: bytes = field(repr=False)

    def address(self, params) -> str:
        from tinynode.primitives.address import encode_address

        return encode_address("p2pkh", self.h160, params)


def key(index: int, seed: bytes = b"miniwallet", compressed: bool = True) -> MiniKey:
    """Deterministic key number `index` (sha256(seed || index as 4-byte LE))."""
    secret = hashlib.sha256(seed + index.to_bytes(4, "little")).digest()
    priv = PrivateKey(secret, compressed)
    pub = priv.public_key.sec
    h = hash160(pub)
    return MiniKey(index, priv, pub, h, _p2pkh_script(h))


@dataclass(frozen=True, slots=True)
class MultisigKey:
    """An m-of-n multisig over deterministic keys, paid to by P2SH (BIP16)."""

    m: int
    keys: tuple[MiniKey, ...] = field(repr=False)
    redeem_script: bytes = field(repr=False)
    script_pubkey: bytes = field(repr=False)

    @classmethod
    def make(cls, m: int, indices: Iterable[int], seed: bytes = b"miniwallet") -> "MultisigKey":
        keys = tuple(key(i, seed) for i in indices)
        if not 1 <= m <= len(keys) <= 16:
            raise ValueError("need 1 <= m <= n <= 16")
        redeem = _multisig_script(m, [k.pubkey for k in keys])
        return cls(m, keys, redeem, _p2sh_script(hash160(redeem)))

    def address(self, params) -> str:
        from tinynode.primitives.address import encode_address

        return encode_address("p2sh", hash160(self.redeem_script), params)


def p2wpkh_script(h160: bytes) -> bytes:
    """BIP141 P2WPKH output: OP_0 <20-byte key hash>."""
    return b"\x00\x14" + h160


def p2wsh_script(witness_script: bytes) -> bytes:
    """BIP141 P2WSH output: OP_0 <sha256(witness script)>."""
    return b"\x00\x20" + hashlib.sha256(witness_script).digest()


@dataclass(frozen=True, slots=True)
class P2WPKHKey:
    """A deterministic key paid to by P2WPKH; spent with witness [sig, pubkey], empty scriptSig."""

    key: MiniKey = field(repr=False)
    script_pubkey: bytes = field(repr=False)

    @classmethod
    def make(cls, index: int, seed: bytes = b"miniwallet") -> "P2WPKHKey":
        k = key(index, seed)
        return cls(k, p2wpkh_script(k.h160))


@dataclass(frozen=True, slots=True)
class P2WSHScript:
    """A P2WSH output. With `key`, the witness script is `<pubkey> OP_CHECKSIG` and a spend's
    witness is [BIP143 sig, script]; otherwise the witness is `stack` + [script]."""

    witness_script: bytes = field(repr=False)
    script_pubkey: bytes = field(repr=False)
    key: MiniKey | None = field(default=None, repr=False)
    stack: tuple[bytes, ...] = ()

    @classmethod
    def make(cls, witness_script: bytes, stack: Sequence[bytes] = ()) -> "P2WSHScript":
        return cls(witness_script, p2wsh_script(witness_script), None, tuple(stack))

    @classmethod
    def checksig(cls, index: int, seed: bytes = b"miniwallet") -> "P2WSHScript":
        k = key(index, seed)
        ws = push_data(k.pubkey) + b"\xac"
        return cls(ws, p2wsh_script(ws), k)


# --------------------------------------------------------------------------- signing
def sign_p2wpkh_input(tx: Tx, input_index: int, wk: P2WPKHKey, amount: int,
                      hash_type: int = SIGHASH_ALL) -> tuple[bytes, ...]:
    """The witness [sig||hashtype, pubkey] for a P2WPKH input worth `amount` (BIP143: the
    scriptCode is the P2PKH script of the key hash)."""
    from tinynode.script.sighash import witness_v0_sighash

    digest = witness_v0_sighash(tx, input_index, _p2pkh_script(wk.key.h160), amount, hash_type)
    return (wk.key.privkey.sign(digest) + bytes((hash_type & 0xFF,)), wk.key.pubkey)


def sign_p2wsh_input(tx: Tx, input_index: int, ws: P2WSHScript, amount: int,
                     hash_type: int = SIGHASH_ALL) -> tuple[bytes, ...]:
    """The witness for a P2WSH input: [sig, script] with a key, else `ws.stack` + [script]."""
    if ws.key is None:
        return ws.stack + (ws.witness_script,)
    from tinynode.script.sighash import witness_v0_sighash

    digest = witness_v0_sighash(tx, input_index, ws.witness_script, amount, hash_type)
    return (ws.key.privkey.sign(digest) + bytes((hash_type & 0xFF,)), ws.witness_script)


def sign_p2pkh_input(tx: Tx, input_index: int, k: MiniKey, hash_type: int = SIGHASH_ALL) -> bytes:
    """scriptSig `<sig||hashtype> <pubkey>` spending `k.script_pubkey` from input `input_index`."""
    digest = legacy_sighash(tx, input_index, k.script_pubkey, hash_type)
    sig = k.privkey.sign(digest) + bytes((hash_type & 0xFF,))
    return push_data(sig) + push_data(k.pubkey)


def sign_p2sh_multisig_input(tx: Tx, input_index: int, ms: MultisigKey,
                             signers: Sequence[int] | None = None, hash_type: int = SIGHASH_ALL) -> bytes:
    """scriptSig `OP_0 <sig>... <redeem_script>` for a P2SH multisig input.

    `signers` are positions in `ms.keys` (default: the first m); signatures go in key order,
    as OP_CHECKMULTISIG requires.
    """
    positions = sorted(signers if signers is not None else range(ms.m))
    digest = legacy_sighash(tx, input_index, ms.redeem_script, hash_type)
    sigs = [ms.keys[p].privkey.sign(digest) + bytes((hash_type & 0xFF,)) for p in positions]
    return bytes((OP_0,)) + b"".join(push_data(s) for s in sigs) + push_data(ms.redeem_script)


# --------------------------------------------------------------------------- coins
@dataclass(frozen=True, slots=True)
class Utxo:
    """A spendable output and what it takes to sign for it.

    `owner` is a `MiniKey` (P2PKH), a `MultisigKey` (P2SH), a `P2WPKHKey` or a `P2WSHScript`.
    `height` is the block height it was confirmed at (None while unconfirmed).
    """

    outpoint: OutPoint
    value: int
    owner: "MiniKey | MultisigKey | P2WPKHKey | P2WSHScript" = field(repr=False)
    height: int | None = None
    is_coinbase: bool = False

    @property
    def script_pubkey(self) -> bytes:
        return self.owner.script_pubkey


def _sign_input(tx: Tx, i: int, utxo: Utxo, hash_type: int = SIGHASH_ALL) -> bytes:
    if isinstance(utxo.owner, MultisigKey):
        return sign_p2sh_multisig_input(tx, i, utxo.owner, hash_type=hash_type)
    return sign_p2pkh_input(tx, i, utxo.owner, hash_type)


def sign_tx(tx: Tx, utxos: Sequence[Utxo], hash_type: int = SIGHASH_ALL) -> Tx:
    """Return `tx` with every input i signed for `utxos[i]` (legacy signatures in the scriptSig,
    BIP143 ones in the witness for P2WPKH/P2WSH coins, signing `utxos[i].value`)."""
    vin = list(tx.vin)
    for i, u in enumerate(utxos):
        if isinstance(u.owner, P2WPKHKey):
            vin[i] = replace(vin[i], script_sig=b"", witness=sign_p2wpkh_input(tx, i, u.owner, u.value, hash_type))
        elif isinstance(u.owner, P2WSHScript):
            vin[i] = replace(vin[i], script_sig=b"", witness=sign_p2wsh_input(tx, i, u.owner, u.value, hash_type))
        else:
            vin[i] = replace(vin[i], script_sig=_sign_input(tx, i, u, hash_type))
    return replace(tx, vin=tuple(vin))


class CoinTracker:
    """Spendable outputs paying a set of scripts, updated from blocks and txs (test helper).

    Not thread-safe and not a wallet: it believes what it is told (call `connect_block` for
    blocks that did connect, `disconnect_block` on reorg).
    """

    def __init__(self, owners: Iterable[MiniKey | MultisigKey] = ()) -> None:
        self._owners: dict[bytes, MiniKey | MultisigKey] = {}
        self._utxos: dict[OutPoint, Utxo] = {}
        for o in owners:
            self.watch(o)

    def watch(self, owner: MiniKey | MultisigKey) -> None:
        self._owners[owner.script_pubkey] = owner

    def add(self, utxo: Utxo) -> None:
        self._utxos[utxo.outpoint] = utxo

    def add_tx(self, tx: Tx, height: int | None = None) -> list[Utxo]:
        """Remove the coins `tx` spends; add its outputs that pay a watched script."""
        for txin in tx.vin:
            self._utxos.pop(txin.prevout, None)
        added = []
        cb = tx.is_coinbase()
        for n, out in enumerate(tx.vout):
            owner = self._owners.get(out.script_pubkey)
            if owner is not None:
                u = Utxo(OutPoint(tx.txid, n), out.value, owner, height, cb)
                self._utxos[u.outpoint] = u
                added.append(u)
        return added

    def connect_block(self, block, height: int) -> list[Utxo]:
        added: list[Utxo] = []
        for tx in block.txs:
            added.extend(self.add_tx(tx, height))
        return added

    def remove(self, outpoint: OutPoint) -> Utxo | None:
        return self._utxos.pop(outpoint, None)

    def spendable(self, tip_height: int | None = None, maturity: int = 100) -> list[Utxo]:
        """Coins spendable in a block at `tip_height + 1`, oldest first (deterministic order)."""
        out = []
        for u in self._utxos.values():
            if u.is_coinbase and tip_height is not None and u.height is not None:
                if tip_height + 1 - u.height < maturity:
                    continue
            out.append(u)
        out.sort(key=lambda u: (u.height if u.height is not None else 1 << 62, u.outpoint.txid, u.outpoint.n))
        return out

    def pop(self, tip_height: int | None = None, maturity: int = 100) -> Utxo:
        coins = self.spendable(tip_height, maturity)
        if not coins:
            raise LookupError("no spendable coin")
        return self._utxos.pop(coins[0].outpoint)

    def __len__(self) -> int:
        return len(self._utxos)

    def __contains__(self, outpoint: OutPoint) -> bool:
        return outpoint in self._utxos

    def balance(self) -> int:
        return sum(u.value for u in self._utxos.values())


class MiniWallet:
    """Deterministic spends from key `key_index` (and any other watched owner).

    Build-only: nothing is broadcast. Every method returns signed `Tx` values and, where it
    helps, the `Utxo`s they create (so tests can chain spends without a chain).
    """

    def __init__(self, key_index: int = 0, seed: bytes = b"miniwallet") -> None:
        self.seed = seed
        self.key = key(key_index, seed)
        self.coins = CoinTracker([self.key])

    @property
    def script_pubkey(self) -> bytes:
        return self.key.script_pubkey

    def address(self, params) -> str:
        return self.key.address(params)

    def rescan(self, chainstate, owners: Iterable[MiniKey | MultisigKey] = ()) -> int:
        """Load this wallet's confirmed coins (and those of `owners`) from a ChainState's script
        index (`coins_for_script`), replacing what the tracker held. Returns the coin count."""
        self.coins = CoinTracker([self.key, *owners])
        for owner in [self.key, *owners]:
            for outpoint, coin in chainstate.coins_for_script(owner.script_pubkey):
                self.coins.add(Utxo(outpoint, coin.value, owner, coin.height, coin.is_coinbase))
        return len(self.coins)

    def get_utxo(self, chainstate) -> Utxo:
        """Pop the oldest coin spendable in the block after `chainstate`'s tip (maturity aware)."""
        return self.coins.pop(chainstate.height, chainstate.params.coinbase_maturity)

    # ---------------------------------------------------------------- builders
    def create_spend(self, utxo: Utxo, outputs: Sequence[tuple[bytes, int]] | None = None, *,
                     fee: int = 1000, n_outputs: int = 2, locktime: int = 0, sequence: int = 0xFFFFFFFF,
                     version: int = 1, hash_type: int = SIGHASH_ALL) -> Tx:
        """Spend one coin. With `outputs` None: `n_outputs` equal outputs back to this wallet
        (remainder to the first), value = utxo.value - fee. Default: 1-in/2-out."""
        return self.spend_many([utxo], outputs, fee=fee, n_outputs=n_outputs, locktime=locktime,
                               sequence=sequence, version=version, hash_type=hash_type)

    def spend_many(self, utxos: Sequence[Utxo], outputs: Sequence[tuple[bytes, int]] | None = None, *,
                   fee: int = 1000, n_outputs: int = 1, locktime: int = 0, sequence: int = 0xFFFFFFFF,
                   version: int = 1, hash_type: int = SIGHASH_ALL) -> Tx:
        """Spend several coins into `outputs` (or `n_outputs` equal outputs to self)."""
        if not utxos:
            raise ValueError("nothing to spend")
        total = sum(u.value for u in utxos)
        if outputs is None:
            avail = total - fee
            if avail <= 0:
                raise ValueError("fee exceeds input value")
            share = avail // n_outputs
            outputs = [(self.script_pubkey, share)] * n_outputs
            outputs[0] = (self.script_pubkey, avail - share * (n_outputs - 1))
        vin = tuple(TxIn(u.outpoint, b"", sequence) for u in utxos)
        vout = tuple(TxOut(v, spk) for spk, v in outputs)
        return sign_tx(Tx(version, vin, vout, locktime), utxos, hash_type)

    def outputs_of(self, tx: Tx, height: int | None = None) -> list[Utxo]:
        """The outputs of `tx` this wallet can sign for (not added to the tracker)."""
        owners = {self.key.script_pubkey: self.key}
        owners.update(self.coins._owners)
        return [Utxo(OutPoint(tx.txid, n), o.value, owners[o.script_pubkey], height, tx.is_coinbase())
                for n, o in enumerate(tx.vout) if o.script_pubkey in owners]

    def create_chain(self, utxo: Utxo, length: int, *, fee: int = 1000) -> list[Tx]:
        """`length` txs, each spending output 0 of the previous one (1-in/1-out)."""
        txs: list[Tx] = []
        cur = utxo
        for _ in range(length):
            tx = self.create_spend(cur, fee=fee, n_outputs=1)
            txs.append(tx)
            cur = Utxo(OutPoint(tx.txid, 0), tx.vout[0].value, self.key)
        return txs

    def fan_out(self, utxo: Utxo, n: int, *, fee: int = 1000, to: MiniKey | MultisigKey | None = None) -> tuple[Tx, list[Utxo]]:
        """Split one coin into `n` equal outputs paying `to` (default: self)."""
        owner = to or self.key
        avail = utxo.value - fee
        share = avail // n
        outs = [(owner.script_pubkey, share)] * n
        tx = self.spend_many([utxo], outs, fee=fee)
        return tx, [Utxo(OutPoint(tx.txid, i), share, owner) for i in range(n)]

    def pay_to_multisig(self, utxo: Utxo, ms: MultisigKey, value: int | None = None, *,
                        fee: int = 1000) -> tuple[Tx, Utxo]:
        """Pay (all or `value` of) a coin to a P2SH multisig; change (if any) back to self."""
        v = utxo.value - fee if value is None else value
        outs = [(ms.script_pubkey, v)]
        change = utxo.value - fee - v
        if change > 0:
            outs.append((self.script_pubkey, change))
        tx = self.spend_many([utxo], outs, fee=fee)
        return tx, Utxo(OutPoint(tx.txid, 0), v, ms)
