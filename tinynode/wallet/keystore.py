"""Wallet keys: random secp256k1 keys on disk, a keypool of receive and change addresses.

Like Bitcoin Core's legacy (pre-descriptor) wallet: keys come from the OS CSPRNG
(`secrets`), never from a seed phrase; the wallet keeps `keypool_size` unused keys of each
kind ahead of what it has handed out (Core `-keypool`), and watches all of them, so coins sent
to an address from an older backup are still found. Imported WIF keys are kept as they came
(compressed or not).

Address types are Core's `OutputType` names: "bech32" (P2WPKH, `OP_0 <hash160(pubkey)>`, the
default as Core's `-addresstype`/`-changetype`), "bech32m" (P2TR key path only, BIP86:
`OP_1 <output key>` with the output key = the x-only key tweaked with no script tree, Core's
`tr(KEY)` descriptor), "p2sh-segwit" (P2SH-P2WPKH, `OP_HASH160 <hash160(P2WPKH script)>
OP_EQUAL`, Core's `sh(wpkh(KEY))`) and "legacy" (P2PKH). A key pays exactly one
script: the one of the type it was handed out as (stored per key). Keys still in the pool pay
the default type's script, so they are watched as that; when one is handed out as another type
its script is re-typed before anyone has seen it. Keys from a legacy-only wallet (schema 1) and
imported WIF keys stay P2PKH; an uncompressed key can only be legacy (BIP143 policy).

An imported descriptor (`import_descriptor`, Core `importdescriptors` of a fixed-key descriptor
with its private key) adds one record per script it expands to, all with the same key: `combo(KEY)`
gives P2PK ("pk", a script with no address), P2PKH and, for a compressed key, P2WPKH and
P2SH-P2WPKH, as Core's combo descriptor watches them.

Wallet flags (Core `WALLET_FLAG_*`, kept in the store's meta "flags"): "disable_private_keys"
(a watch-only wallet: no keys, no keypool) and "blank" (made with no keys; it gets keys only by
import). In an encrypted wallet (`crypter.py`) secrets are stored sealed; signing, importing and
refilling the keypool need it unlocked (`WalletLocked`); while locked, addresses come from the
keys already in the pool until it runs out (`KeypoolRanOut`, Core's -12).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from typing import Callable

from ..params import ChainParams
from ..primitives.address import (
    AddressError, address_from_script, decode_address, decode_wif, encode_wif,
    p2pkh_script, p2sh_script, witness_script,
)
from ..primitives.hashes import hash160
from ..primitives.keys import PrivateKey, taproot_tweak_pubkey
from ..storage.wallet import KeyRecord, WalletStore
from .crypter import META_KEY, MasterKey, WalletCrypter, WalletLocked

__all__ = ["KeyStore", "RECEIVE", "CHANGE", "IMPORTED", "AddressInfo", "DEFAULT_KEYPOOL",
           "LEGACY", "BECH32", "BECH32M", "P2SH_SEGWIT", "PK", "ADDRESS_TYPES", "DEFAULT_ADDRESS_TYPE", "script_for_key",
           "script_shape", "KeypoolRanOut", "WalletLocked", "FLAG_DISABLE_PRIVATE_KEYS", "FLAG_BLANK"]

RECEIVE, CHANGE, IMPORTED = 0, 1, 2
LEGACY, BECH32, BECH32M, P2SH_SEGWIT = "legacy", "bech32", "bech32m", "p2sh-segwit"
#: a bare P2PK script of an imported key (combo descriptors); never handed out
PK = "pk"
#: The address types this wallet can hand out (Core `OutputType` names).
ADDRESS_TYPES = (LEGACY, P2SH_SEGWIT, BECH32, BECH32M)
#: Core's `-addresstype` and `-changetype` defaults.
DEFAULT_ADDRESS_TYPE = BECH32
CHAIN_NAMES = {RECEIVE: "receive", CHANGE: "change", IMPORTED: "imported"}
DEFAULT_KEYPOOL = 20
#: Core's wallet flag names (getwalletinfo "flags")
FLAG_DISABLE_PRIVATE_KEYS, FLAG_BLANK = "disable_private_keys", "blank"


class KeypoolRanOut(ValueError):
    """No key left to hand out (Core RPC_WALLET_KEYPOOL_RAN_OUT, -12)."""


@dataclass(frozen=True, slots=True)
class AddressInfo:
    address: str
    script_pubkey: bytes
    chain: str        # receive | change | imported
    issued: bool
    used: bool
    label: str
    addr_type: str = LEGACY


def script_for_key(pubkey: bytes, addr_type: str) -> bytes:
    """The script a key (SEC bytes) pays as `addr_type` (Core `GetScriptForDestination` of
    PKHash / WitnessV0KeyHash / WitnessV1Taproot). For bech32m the key is the BIP86 internal
    key: the output key is it tweaked with no script tree (BIP341 `taproot_tweak_pubkey(x, None)`,
    Core `TaprootBuilder` with no leaves)."""
    if addr_type == BECH32M:
        return witness_script(1, taproot_tweak_pubkey(pubkey[1:33], None)[0])
    if addr_type == BECH32:
        return witness_script(0, hash160(pubkey))
    if addr_type == P2SH_SEGWIT:
        return p2sh_script(hash160(witness_script(0, hash160(pubkey))))
    if addr_type == PK:
        return bytes((len(pubkey),)) + pubkey + b"\xac"
    return p2pkh_script(hash160(pubkey))


def script_shape(addr_type: str) -> bytes:
    """A script of the size `addr_type` pays (for fee and dust estimates before a key is taken)."""
    if addr_type == BECH32M:
        return witness_script(1, bytes(32))
    if addr_type == BECH32:
        return witness_script(0, bytes(20))
    if addr_type == P2SH_SEGWIT:
        return p2sh_script(bytes(20))
    return p2pkh_script(bytes(20))


class KeyStore:
    """Keys of one wallet, persisted in its `WalletStore`. Single-threaded."""

    def __init__(self, store: WalletStore, params: ChainParams, keypool_size: int = DEFAULT_KEYPOOL,
                 now: Callable[[], float] = time.time):
        self.store = store
        self.params = params
        self.keypool_size = keypool_size
        self._now = now
        self._by_script: dict[bytes, KeyRecord] = {}
        self._keys: dict[int, PrivateKey] = {}
        raw_flags = store.get_meta("flags")
        self.flags: frozenset[str] = frozenset(json.loads(raw_flags.decode()) if raw_flags else ())
        mk = store.get_meta(META_KEY)
        self.crypter = WalletCrypter(MasterKey.from_bytes(mk) if mk is not None else None, now)
        self.crypter.on_lock.append(self._keys.clear)
        for rec in store.load_keys():
            self._remember(rec)
        self.top_up()

    def _remember(self, rec: KeyRecord) -> None:
        self._by_script[rec.script_pubkey] = rec

    def _add(self, priv: PrivateKey, chain: int, label: str = "", issued: bool = False,
             addr_type: str = DEFAULT_ADDRESS_TYPE) -> KeyRecord:
        pub = priv.public_key.sec
        if not priv.compressed:
            addr_type = LEGACY
        spk = script_for_key(pub, addr_type)
        stored = self.crypter.seal_secret(priv.secret, pub)
        rec = self.store.add_key(stored, priv.compressed, pub, spk, chain, int(self._now()),
                                 label, issued, addr_type)
        self._remember(rec)
        return rec

    def top_up(self) -> None:
        """Keep `keypool_size` unissued keys of each kind (Core `TopUpKeyPool`); nothing in a
        wallet without private keys or a blank one, nor while locked (new secrets need the
        master key)."""
        if not self.private_keys_enabled or FLAG_BLANK in self.flags or self.crypter.locked:
            return
        with self.store.batch():
            for chain in (RECEIVE, CHANGE):
                free = sum(1 for r in self._by_script.values() if r.chain == chain and not r.issued)
                for _ in range(self.keypool_size - free):
                    self._add(PrivateKey.generate(), chain)

    def _take(self, chain: int, label: str = "", addr_type: str = DEFAULT_ADDRESS_TYPE) -> KeyRecord:
        if addr_type not in ADDRESS_TYPES:
            raise ValueError(f"Unknown address type '{addr_type}'")
        with self.store.batch():
            free = [r for r in self._by_script.values() if r.chain == chain and not r.issued
                    and (r.compressed or addr_type == LEGACY)]
            if not free:
                self.top_up()
                free = [r for r in self._by_script.values() if r.chain == chain and not r.issued
                        and (r.compressed or addr_type == LEGACY)]
            if not free:
                if not self.private_keys_enabled or FLAG_BLANK in self.flags:
                    raise KeypoolRanOut("Error: This wallet has no available keys")
                raise KeypoolRanOut("Error: Keypool ran out, please call keypoolrefill first")
            rec = min(free, key=lambda r: r.id)
            if rec.addr_type != addr_type:
                # never handed out, no coins (else it would be issued): safe to re-type
                spk = script_for_key(rec.pubkey, addr_type)
                self.store.update_key(rec.id, script_pubkey=spk, addr_type=addr_type)
                del self._by_script[rec.script_pubkey]
                rec = _replace(rec, script_pubkey=spk, addr_type=addr_type)
            self.store.update_key(rec.id, issued=True, label=label if label else None)
            rec = _replace(rec, issued=True, label=label or rec.label)
            self._remember(rec)
            self.top_up()
        return rec

    # --- addresses ---------------------------------------------------------------------------
    def new_address(self, label: str = "", addr_type: str = DEFAULT_ADDRESS_TYPE) -> str:
        """A fresh receive address of `addr_type` (Core `getnewaddress`); ValueError for a type
        this wallet cannot make."""
        return self.address_of(self._take(RECEIVE, label, addr_type).script_pubkey)

    def new_change_script(self, addr_type: str = DEFAULT_ADDRESS_TYPE) -> bytes:
        """A fresh change script (Core `getrawchangeaddress`, `-changetype` bech32)."""
        return self._take(CHANGE, "", addr_type).script_pubkey

    def address_type(self, script_pubkey: bytes) -> str | None:
        """"legacy" | "bech32" | "bech32m" for one of our scripts, None for others."""
        rec = self._by_script.get(script_pubkey)
        return rec.addr_type if rec else None

    def pubkey(self, script_pubkey: bytes) -> bytes | None:
        """The SEC public key behind one of our scripts."""
        rec = self._by_script.get(script_pubkey)
        return rec.pubkey if rec else None

    def address_of(self, script_pubkey: bytes) -> str:
        addr = address_from_script(script_pubkey, self.params)
        assert addr is not None
        return addr

    def address_or_none(self, script_pubkey: bytes) -> str | None:
        """The address of a script, None for one without (a combo descriptor's P2PK)."""
        return address_from_script(script_pubkey, self.params)

    def redeem_script(self, script_pubkey: bytes) -> bytes | None:
        """The P2WPKH redeem script behind one of our p2sh-segwit scripts."""
        rec = self._by_script.get(script_pubkey)
        if rec is None or rec.addr_type != P2SH_SEGWIT:
            return None
        return witness_script(0, hash160(rec.pubkey))

    def is_mine(self, script_pubkey: bytes) -> bool:
        return script_pubkey in self._by_script

    def is_change(self, script_pubkey: bytes) -> bool:
        rec = self._by_script.get(script_pubkey)
        return rec is not None and rec.chain == CHANGE

    def label_of(self, script_pubkey: bytes) -> str:
        rec = self._by_script.get(script_pubkey)
        return rec.label if rec else ""

    def private_key(self, script_pubkey: bytes) -> PrivateKey | None:
        rec = self._by_script.get(script_pubkey)
        if rec is None:
            return None
        key = self._keys.get(rec.id)
        if key is None:
            secret = self.crypter.open_secret(rec.secret, rec.pubkey)   # WalletLocked if locked
            key = self._keys[rec.id] = PrivateKey(secret, rec.compressed)
        return key

    def mark_used(self, script_pubkey: bytes) -> bool:
        """Record that coins arrived for this script; True if that changed anything."""
        rec = self._by_script.get(script_pubkey)
        if rec is None or (rec.used and rec.issued):
            return False
        self.store.update_key(rec.id, used=True, issued=True)
        self._remember(_replace(rec, used=True, issued=True))
        self.top_up()
        return True

    def addresses(self, include_unissued: bool = False) -> list[AddressInfo]:
        out = []
        for rec in sorted(self._by_script.values(), key=lambda r: r.id):
            if not rec.issued and not include_unissued:
                continue
            if rec.addr_type == PK:      # no address
                continue
            out.append(AddressInfo(self.address_of(rec.script_pubkey), rec.script_pubkey,
                                   CHAIN_NAMES[rec.chain], rec.issued, rec.used, rec.label,
                                   rec.addr_type))
        return out

    # --- flags and encryption --------------------------------------------------------------------
    @property
    def private_keys_enabled(self) -> bool:
        return FLAG_DISABLE_PRIVATE_KEYS not in self.flags

    @property
    def locked(self) -> bool:
        return self.crypter.locked

    def set_flags(self, flags: set[str]) -> None:
        """Set the wallet's flags (at creation, before any key exists)."""
        self.flags = frozenset(flags)
        self.store.set_meta("flags", json.dumps(sorted(self.flags)).encode())

    def keypool_free(self, chain: int) -> int:
        """Keys of `chain` not yet handed out (Core `KeypoolCountExternalKeys` for RECEIVE)."""
        return sum(1 for r in self._by_script.values() if r.chain == chain and not r.issued)

    def encrypt(self, passphrase: str, *, kdf_n: int | None = None) -> None:
        """Core `CWallet::EncryptWallet`: a new master key under `passphrase`, every stored
        secret sealed under it in one transaction, the file rewritten so no clear secret is left,
        then locked. Refills the keypool first (with the clear keys still at hand)."""
        if self.crypter.encrypted:
            raise ValueError("already encrypted")
        keys = {rec.id: self.crypter.open_secret(rec.secret, rec.pubkey) for rec in self._by_script.values()}
        mk = self.crypter.begin_encryption(passphrase, **({"n": kdf_n} if kdf_n else {}))
        try:
            with self.store.batch():
                for rec in list(self._by_script.values()):
                    sealed = self.crypter.seal_secret(keys[rec.id], rec.pubkey)
                    self.store.set_key_secret(rec.id, sealed)
                    self._remember(_replace(rec, secret=sealed))
                self.store.set_meta(META_KEY, mk.to_bytes())
        except BaseException:
            self.crypter.master_key = None
            self.crypter.lock()
            for rec in store_keys(self.store):
                self._remember(rec)
            raise
        self.crypter.lock()
        self.store.rewrite()

    def change_passphrase(self, old: str, new: str) -> None:
        """Core `ChangeWalletPassphrase`: the master key re-wrapped, the keys untouched."""
        mk = self.crypter.change_passphrase(old, new)
        with self.store.batch():
            self.store.set_meta(META_KEY, mk.to_bytes())

    def __len__(self) -> int:
        """Number of keys watched (keypool, handed out and imported)."""
        return len(self._by_script)

    def scripts(self) -> set[bytes]:
        return set(self._by_script)

    # --- WIF -----------------------------------------------------------------------------------
    def import_wif(self, wif: str, label: str = "") -> str:
        """Import a WIF private key (Core `importprivkey`); returns its P2PKH address (imported
        keys are watched as legacy P2PKH, the script their WIF was made for)."""
        secret, compressed = decode_wif(wif, self.params)
        priv = PrivateKey(secret, compressed)
        spk = p2pkh_script(hash160(priv.public_key.sec))
        if spk not in self._by_script:
            with self.store.batch():
                self._add(priv, IMPORTED, label, issued=True, addr_type=LEGACY)
        return self.address_of(spk)

    def import_descriptor(self, secret: bytes, compressed: bool, scripts: list[tuple[bytes, str]],
                          label: str = "") -> int:
        """Watch `scripts` ((script_pubkey, addr_type) as one descriptor expands, Core
        `AddWalletDescriptor`) with the private key (`secret`, `compressed`); scripts already
        watched keep their record, only the label of a receive script is set (Core
        `SetAddressBook` for each of the descriptor's scripts with an address). Returns how many
        records were added."""
        priv = PrivateKey(secret, compressed)
        added = 0
        with self.store.batch():
            for spk, addr_type in scripts:
                rec = self._by_script.get(spk)
                if rec is not None:
                    if label and addr_type != PK and rec.label != label:
                        self.store.update_key(rec.id, issued=True, label=label)
                        self._remember(_replace(rec, issued=True, label=label))
                    continue
                pub = priv.public_key.sec
                stored = self.crypter.seal_secret(priv.secret, pub)
                new = self.store.add_key(stored, priv.compressed, pub, spk, IMPORTED, int(self._now()),
                                         "" if addr_type == PK else label, True, addr_type)
                self._remember(new)
                added += 1
        return added

    def export_wif(self, address: str) -> str:
        """WIF of the key behind `address` (Core `dumpprivkey`); AddressError if not ours."""
        spk = decode_address(address, self.params).script_pubkey
        key = self.private_key(spk)
        if key is None:
            raise AddressError(f"Private key for address {address} is not known")
        return encode_wif(key.secret, key.compressed, self.params)


def _replace(rec: KeyRecord, **kw) -> KeyRecord:
    return replace(rec, **kw)


def store_keys(store: WalletStore) -> list[KeyRecord]:
    return store.load_keys()

