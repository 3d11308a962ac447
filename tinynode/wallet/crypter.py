"""Wallet encryption: private keys at rest under a master key, the master key under a passphrase.

The shape of Bitcoin Core's `CMasterKey` + `CCrypter` (wallet/crypter.cpp), with today's
primitives instead of Core's SHA-512-iterated key derivation and AES-256-CBC:

    master key   32 random bytes, made once by `encryptwallet`; never written in the clear
    wrapping     scrypt(passphrase, salt, n, r, p) → 32-byte key (hashlib, stored salt and cost),
                 AES-256-GCM (the `cryptography` package) of the master key under it; a wrong
                 passphrase fails the GCM tag, so no separate check value is kept
    each secret  AES-256-GCM under the master key with a fresh 12-byte nonce, the key's SEC
                 public key as associated data (a ciphertext moved to another key's row fails)

Changing the passphrase re-wraps the master key only (Core `ChangeWalletPassphrase`). Locking
forgets the master key and every decrypted key (Core `CWallet::Lock`). The unlock deadline
(Core's `nRelockTime`) is checked on every use against an injectable clock, so a wallet is
locked from the deadline on even if the timer that wipes it has not fired yet.

`cryptography` is imported on first use, so a node with no encrypted wallet never needs it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Callable

__all__ = ["MasterKey", "WalletCrypter", "WalletLocked", "WrongPassphrase", "KDF_N", "META_KEY"]

log = logging.getLogger(__name__)

#: scrypt cost for new passphrases (N=2^15, r=8, p=1: 32 MiB, about 0.1 s): the stored
#: parameters are used when unlocking, so a later change of these does not strand old wallets.
KDF_N, KDF_R, KDF_P = 1 << 15, 8, 1
#: where the wrapped master key lives in the wallet's meta table
META_KEY = "master_key"
_NONCE = 12


class WalletLocked(Exception):
    """A private key is needed while the wallet is locked (Core RPC_WALLET_UNLOCK_NEEDED, -13)."""

    def __init__(self, message: str = "Error: Please enter the wallet passphrase with walletpassphrase first."):
        super().__init__(message)


class WrongPassphrase(Exception):
    """The passphrase does not open the master key (Core RPC_WALLET_PASSPHRASE_INCORRECT, -14)."""


def _aesgcm(key: bytes):
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    return AESGCM(key)


def _kdf(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(passphrase.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=32,
                          maxmem=256 * 1024 * 1024)


def seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """nonce ‖ AES-256-GCM(key, nonce, plaintext, aad) (ciphertext with its 16-byte tag)."""
    nonce = secrets.token_bytes(_NONCE)
    return nonce + _aesgcm(key).encrypt(nonce, plaintext, aad)


def unseal(key: bytes, blob: bytes, aad: bytes) -> bytes:
    """The inverse of `seal`; `cryptography`'s InvalidTag when the key or data do not match."""
    return _aesgcm(key).decrypt(blob[:_NONCE], blob[_NONCE:], aad)


@dataclass(frozen=True, slots=True)
class MasterKey:
    """The master key wrapped under a passphrase (Core `CMasterKey`)."""

    salt: bytes
    n: int
    r: int
    p: int
    wrapped: bytes            # seal(kdf(passphrase), master key, b"tinynode master key")

    _AAD = b"tinynode master key"

    @classmethod
    def wrap(cls, master: bytes, passphrase: str, n: int = KDF_N, r: int = KDF_R,
             p: int = KDF_P) -> "MasterKey":
        salt = secrets.token_bytes(16)
        return cls(salt, n, r, p, seal(_kdf(passphrase, salt, n, r, p), master, cls._AAD))

    def unwrap(self, passphrase: str) -> bytes:
        from cryptography.exceptions import InvalidTag
        try:
            return unseal(_kdf(passphrase, self.salt, self.n, self.r, self.p), self.wrapped, self._AAD)
        except InvalidTag:
            raise WrongPassphrase("Error: The wallet passphrase entered was incorrect.") from None

    def to_bytes(self) -> bytes:
        return json.dumps({"kdf": "scrypt", "salt": self.salt.hex(), "n": self.n, "r": self.r,
                           "p": self.p, "cipher": "aes-256-gcm", "wrapped": self.wrapped.hex()},
                          sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> "MasterKey":
        j = json.loads(data.decode())
        if j.get("kdf") != "scrypt" or j.get("cipher") != "aes-256-gcm":
            raise ValueError(f"unknown wallet encryption {j.get('kdf')}/{j.get('cipher')}")
        return cls(bytes.fromhex(j["salt"]), int(j["n"]), int(j["r"]), int(j["p"]),
                   bytes.fromhex(j["wrapped"]))


class WalletCrypter:
    """The lock state of one wallet: its wrapped master key (None = not encrypted) and, while
    unlocked, the master key and the deadline. Writer thread; `lock()` may also come from the
    event loop's relock timer (it only drops references)."""

    def __init__(self, master_key: MasterKey | None, now: Callable[[], float] = time.time):
        self.master_key = master_key
        self._now = now
        self._master: bytes | None = None
        self._deadline: float | None = None   # when an unlock ends (None: no deadline)
        self.relock_time = 0          # Core nRelockTime: unix time, 0 while locked
        self.on_lock: list[Callable[[], None]] = []   # forget cached keys

    @property
    def encrypted(self) -> bool:
        """Core `HasEncryptionKeys`."""
        return self.master_key is not None

    @property
    def locked(self) -> bool:
        """Core `IsLocked`: encrypted and not unlocked, or the unlock deadline passed."""
        if self.master_key is None:
            return False
        if self._master is not None and self._deadline is not None and self._now() >= self._deadline:
            self.lock()
        return self._master is None

    def lock(self) -> None:
        """Core `CWallet::Lock`: forget the master key and every decrypted key."""
        was = self._master is not None
        self._master = None
        self._deadline = None
        self.relock_time = 0
        for cb in self.on_lock:
            cb()
        if was:
            log.info("wallet locked")

    def unlock(self, passphrase: str, timeout: int) -> int:
        """Core `CWallet::Unlock` + the relock time: returns the unix time it relocks at."""
        assert self.master_key is not None
        self._master = self.master_key.unwrap(passphrase)
        now = self._now()
        self._deadline = now + timeout
        self.relock_time = int(now) + timeout
        if timeout == 0:  # Core schedules the relock 0 s ahead: locked straight away
            self.lock()
        return self.relock_time

    def begin_encryption(self, passphrase: str, *, n: int = KDF_N) -> MasterKey:
        """A new master key wrapped under `passphrase`, held unlocked (no deadline) while the
        caller seals every key with it; the caller stores the MasterKey and then locks."""
        master = secrets.token_bytes(32)
        mk = MasterKey.wrap(master, passphrase, n=n)
        self.master_key = mk
        self._master = master
        self._deadline = None
        self.relock_time = 0
        return mk

    def change_passphrase(self, old: str, new: str) -> MasterKey:
        """Core `ChangeWalletPassphrase`: the same master key under the new passphrase."""
        assert self.master_key is not None
        master = self.master_key.unwrap(old)
        mk = MasterKey.wrap(master, new, n=self.master_key.n, r=self.master_key.r, p=self.master_key.p)
        self.master_key = mk
        return mk

    # --- one key's secret --------------------------------------------------------------------
    def seal_secret(self, secret: bytes, pubkey: bytes) -> bytes:
        """What goes in the keys table for `secret`: itself in a plain wallet, sealed otherwise."""
        if self.master_key is None:
            return secret
        if self.locked:
            raise WalletLocked()
        return seal(self._master, secret, pubkey)  # type: ignore[arg-type]

    def open_secret(self, stored: bytes, pubkey: bytes) -> bytes:
        """The 32-byte secret from the keys table (WalletLocked while locked)."""
        if self.master_key is None:
            return stored
        if self.locked:
            raise WalletLocked()
        return unseal(self._master, stored, pubkey)  # type: ignore[arg-type]
