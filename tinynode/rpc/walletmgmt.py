"""Wallet management RPCs (Core's wallet/rpc/wallet.cpp and encrypt.cpp): createwallet,
loadwallet, unloadwallet, listwallets, listwalletdir, getwalletinfo, encryptwallet,
walletpassphrase, walletlock, walletpassphrasechange; and which wallet a request means.

A request reaches a wallet as in Core (`GetWalletForJSONRPCRequest`): `/wallet/<name>` names
it (-18 when it is not loaded); `/` means the only loaded wallet, and with none loaded or
several the answer is -18 or -19 with Core's sentences. The wallets themselves live in
`wallet/manager.py`; every change to them runs on the chain writer thread.

An unlock (`walletpassphrase`) ends at its deadline twice over: the wallet checks the deadline
on every use of a key, and a timer on the event loop (one per wallet, replaced by the next
unlock, cancelled by `walletlock` and `unloadwallet`) wipes the master key from memory then, as
Core's scheduler does.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from ..primitives.hashes import hash_to_hex
from .protocol import RPC_INVALID_PARAMETER, RPC_METHOD_NOT_FOUND, RPC_WALLET_ERROR, RPCError
from .util import RPCArea, _bool, _int, _str

if TYPE_CHECKING:  # pragma: no cover
    from ..node import Node

log = logging.getLogger(__name__)

RPC_WALLET_KEYPOOL_RAN_OUT = -12
RPC_WALLET_UNLOCK_NEEDED = -13
RPC_WALLET_PASSPHRASE_INCORRECT = -14
RPC_WALLET_WRONG_ENC_STATE = -15
RPC_WALLET_ENCRYPTION_FAILED = -16
RPC_WALLET_NOT_FOUND = -18
RPC_WALLET_NOT_SPECIFIED = -19
RPC_WALLET_ALREADY_LOADED = -35
RPC_WALLET_ALREADY_EXISTS = -36

UNLOCK_NEEDED = "Error: Please enter the wallet passphrase with walletpassphrase first."
#: Core's walletpassphrase clamp (MAX_SLEEP_TIME)
MAX_SLEEP_TIME = 100_000_000
#: Core getwalletinfo "walletversion" (latest legacy version, kept for old clients)
WALLET_VERSION = 169900


def ensure_unlocked(w) -> None:
    """Core `EnsureWalletIsUnlocked`: -13 while an encrypted wallet is locked."""
    if w.keys.locked:
        raise RPCError(RPC_WALLET_UNLOCK_NEEDED, UNLOCK_NEEDED)


class WalletManagementRPC(RPCArea):
    """Which wallet a request means, and the methods that make, load and lock wallets."""

    def __init__(self, node: "Node"):
        super().__init__(node)
        self._relock_timers: dict[int, asyncio.TimerHandle] = {}

    # --- which wallet ----------------------------------------------------------------------------
    def _wallets(self):
        m = self.node.wallets
        if m is None:
            raise RPCError(RPC_METHOD_NOT_FOUND, "Method not found (wallet is disabled)")
        return m

    def _wallet(self):
        """Core `GetWalletForJSONRPCRequest`."""
        from .server import NOT_IN_REQUEST, REQUEST_WALLET
        m = self._wallets()
        name = REQUEST_WALLET.get()
        if name is not None and name is not NOT_IN_REQUEST:
            w = m.get(name)
            if w is None:
                raise RPCError(RPC_WALLET_NOT_FOUND, "Requested wallet does not exist or is not loaded")
            return w
        if name is NOT_IN_REQUEST:
            w = m.default()
            if w is not None:
                return w
        loaded = m.loaded()
        if len(loaded) == 1:
            return loaded[0]
        if not loaded:
            raise RPCError(RPC_WALLET_NOT_FOUND,
                           "No wallet is loaded. Load a wallet using loadwallet or create a new one with "
                           "createwallet. (Note: A default wallet is no longer automatically created)")
        raise RPCError(RPC_WALLET_NOT_SPECIFIED,
                       "Multiple wallets are loaded. Please select which wallet to use by requesting the "
                       "RPC through the /wallet/<walletname> URI path.")

    def _wallet_name(self, w) -> str:
        m = self._wallets()
        return next((n for n in m.names() if m.get(n) is w), "")

    @staticmethod
    def _manager_error(e) -> RPCError:
        return RPCError(e.code, e.message)

    # --- create / load / unload / list -----------------------------------------------------------
    async def m_createwallet(self, wallet_name, disable_private_keys=False, blank=False, passphrase=None,
                             avoid_reuse=False, descriptors=True, load_on_startup=None,
                             external_signer=False) -> dict:
        """createwallet "wallet_name" ( disable_private_keys blank "passphrase" avoid_reuse descriptors load_on_startup external_signer )
Creates and loads a new wallet (DIR/NET/wallets/<wallet_name>/wallet.sqlite). With a passphrase
it is encrypted before any key is written. avoid_reuse and external_signer are not supported."""
        from ..wallet.manager import WalletManagerError
        name = _str(wallet_name, "wallet_name")
        no_keys = _bool(disable_private_keys, "disable_private_keys")
        is_blank = _bool(blank, "blank")
        warnings = []
        pw = ""
        if passphrase is not None:
            pw = _str(passphrase, "passphrase")
            if not pw:
                warnings.append("Empty string given as passphrase, wallet will not be encrypted.")
        if _bool(avoid_reuse, "avoid_reuse"):
            raise RPCError(RPC_WALLET_ERROR, "avoid_reuse is not supported by this wallet")
        if not _bool(descriptors, "descriptors"):
            raise RPCError(RPC_WALLET_ERROR, 'descriptors argument must be set to "true"; it is no longer '
                                             'possible to create a legacy wallet.')
        if _bool(external_signer, "external_signer"):
            raise RPCError(RPC_WALLET_ERROR, "Compiled without external signing support (required for "
                                             "external signing)")
        on_start = None if load_on_startup is None else _bool(load_on_startup, "load_on_startup")
        m = self._wallets()

        def work():
            try:
                m.create(name, disable_private_keys=no_keys, blank=is_blank, passphrase=pw)
            except WalletManagerError as e:
                raise self._manager_error(e) from None
            m.set_load_on_startup(name, on_start)
        await self._w(work)
        out: dict[str, Any] = {"name": name}
        if warnings:
            out["warnings"] = warnings
        return out

    async def m_loadwallet(self, filename, load_on_startup=None) -> dict:
        """loadwallet "filename" ( load_on_startup )
Loads a wallet from the wallets directory (DIR/NET/wallets/<filename>/wallet.sqlite)."""
        from ..wallet.manager import WalletManagerError
        name = _str(filename, "filename")
        on_start = None if load_on_startup is None else _bool(load_on_startup, "load_on_startup")
        m = self._wallets()

        def work():
            try:
                m.load(name)
            except WalletManagerError as e:
                raise self._manager_error(e) from None
            m.set_load_on_startup(name, on_start)
        await self._w(work)
        return {"name": name}

    async def m_unloadwallet(self, wallet_name=None, load_on_startup=None) -> dict:
        """unloadwallet ( "wallet_name" load_on_startup )
Unloads the wallet referenced by the request endpoint or the wallet_name argument.
If both are specified, they must be identical."""
        from ..wallet.manager import WalletManagerError
        from .server import REQUEST_WALLET
        endpoint = REQUEST_WALLET.get()
        given = None if wallet_name is None else _str(wallet_name, "wallet_name")
        if isinstance(endpoint, str):       # Core EnsureUniqueWalletName
            if given is not None and given != endpoint:
                raise RPCError(RPC_INVALID_PARAMETER, "The RPC endpoint wallet and the wallet name "
                                                      "parameter specify different wallets")
            name = endpoint
        elif given is None:
            raise RPCError(RPC_INVALID_PARAMETER, "Either the RPC endpoint wallet or the wallet name "
                                                  "parameter must be provided")
        else:
            name = given
        on_start = None if load_on_startup is None else _bool(load_on_startup, "load_on_startup")
        m = self._wallets()
        w = m.get(name)
        if w is None:
            raise RPCError(RPC_WALLET_NOT_FOUND, "Requested wallet does not exist or is not loaded")
        self._cancel_relock(w)

        def work():
            try:
                m.unload(name)
            except WalletManagerError as e:
                raise self._manager_error(e) from None
            m.set_load_on_startup(name, on_start)
        await self._w(work)
        return {}

    async def m_listwallets(self) -> list:
        """listwallets
Returns a list of currently loaded wallets.
For full information on the wallet, use "getwalletinfo"."""
        return self._wallets().names()

    async def m_listwalletdir(self) -> dict:
        """listwalletdir
Returns a list of wallets in the wallet directory (DIR/NET/wallets)."""
        m = self._wallets()
        names = await self._w(m.list_dir)
        return {"wallets": [{"name": n, "warnings": []} for n in names]}

    async def m_getwalletinfo(self) -> dict:
        """getwalletinfo
Returns an object containing various wallet state info. This wallet keeps random keys, not
descriptors: "descriptors" is false."""
        from ..wallet.manager import keypool_sizes, wallet_birthtime
        w = self._wallet()
        name = self._wallet_name(w)

        def work():
            ext, internal = keypool_sizes(w)
            j: dict[str, Any] = {"walletname": name, "walletversion": WALLET_VERSION, "format": "sqlite",
                                 "txcount": w.tx_count, "keypoolsize": ext,
                                 "keypoolsize_hd_internal": internal}
            crypter = w.keys.crypter
            if crypter.encrypted:
                j["unlocked_until"] = 0 if crypter.locked else crypter.relock_time
            j["private_keys_enabled"] = w.keys.private_keys_enabled
            j["avoid_reuse"] = False
            j["scanning"] = False
            j["descriptors"] = False
            j["external_signer"] = False
            j["blank"] = "blank" in w.keys.flags
            bt = wallet_birthtime(w)
            if bt is not None:
                j["birthtime"] = bt
            j["flags"] = sorted(w.keys.flags)
            j["lastprocessedblock"] = {"hash": hash_to_hex(w.tip_hash) if w.tip_hash else None,
                                       "height": w.tip_height}
            return j
        return await self._w(work)

    # --- encryption ------------------------------------------------------------------------------
    async def m_encryptwallet(self, passphrase) -> str:
        """encryptwallet "passphrase"
Encrypts the wallet's private keys with passphrase (scrypt + AES-256-GCM). After this, any
call that signs or reveals a key needs walletpassphrase first; the wallet starts locked."""
        pw = _str(passphrase, "passphrase")
        w = self._wallet()
        if not w.keys.private_keys_enabled:
            raise RPCError(RPC_WALLET_ENCRYPTION_FAILED,
                           "Error: wallet does not contain private keys, nothing to encrypt.")
        if w.keys.crypter.encrypted:
            raise RPCError(RPC_WALLET_WRONG_ENC_STATE,
                           "Error: running with an encrypted wallet, but encryptwallet was called.")
        if not pw:
            raise RPCError(RPC_INVALID_PARAMETER, "passphrase cannot be empty")

        def work():
            try:
                w.keys.encrypt(pw)
            except Exception as e:
                log.exception("encrypting the wallet failed")
                raise RPCError(RPC_WALLET_ENCRYPTION_FAILED, "Error: Failed to encrypt the wallet.") from e
        await self._w(work)
        log.info("wallet \"%s\" encrypted", self._wallet_name(w))
        return "wallet encrypted; You need to make a new backup with the backupwallet RPC."

    async def m_walletpassphrase(self, passphrase, timeout) -> None:
        """walletpassphrase "passphrase" timeout
Stores the wallet decryption key in memory for 'timeout' seconds (capped at 100000000).
This is needed prior to performing transactions related to private keys such as sending coins."""
        from ..wallet.crypter import WrongPassphrase
        w = self._wallet()
        pw = _str(passphrase, "passphrase")
        secs = _int(timeout, "timeout")
        if not w.keys.crypter.encrypted:
            raise RPCError(RPC_WALLET_WRONG_ENC_STATE,
                           "Error: running with an unencrypted wallet, but walletpassphrase was called.")
        if secs < 0:
            raise RPCError(RPC_INVALID_PARAMETER, "Timeout cannot be negative.")
        secs = min(secs, MAX_SLEEP_TIME)
        if not pw:
            raise RPCError(RPC_INVALID_PARAMETER, "passphrase cannot be empty")

        def work():
            try:
                relock = w.keys.crypter.unlock(pw, secs)
            except WrongPassphrase:
                raise RPCError(RPC_WALLET_PASSPHRASE_INCORRECT, _wrong_passphrase(pw)) from None
            if not w.keys.locked:
                w.keys.top_up()          # Core tops the keypool up on unlock
            return relock
        relock = await self._w(work)
        self._schedule_relock(w, secs, relock)

    async def m_walletlock(self) -> None:
        """walletlock
Removes the wallet encryption key from memory, locking the wallet. After calling this method,
you will need to call walletpassphrase again before being able to call any methods which
require the wallet to be unlocked."""
        w = self._wallet()
        if not w.keys.crypter.encrypted:
            raise RPCError(RPC_WALLET_WRONG_ENC_STATE,
                           "Error: running with an unencrypted wallet, but walletlock was called.")
        self._cancel_relock(w)
        await self._w(w.keys.crypter.lock)

    async def m_walletpassphrasechange(self, oldpassphrase, newpassphrase) -> None:
        """walletpassphrasechange "oldpassphrase" "newpassphrase"
Changes the wallet passphrase from 'oldpassphrase' to 'newpassphrase'."""
        from ..wallet.crypter import WrongPassphrase
        w = self._wallet()
        if not w.keys.crypter.encrypted:
            raise RPCError(RPC_WALLET_WRONG_ENC_STATE,
                           "Error: running with an unencrypted wallet, but walletpassphrasechange was called.")
        old, new = _str(oldpassphrase, "oldpassphrase"), _str(newpassphrase, "newpassphrase")
        if not old or not new:
            raise RPCError(RPC_INVALID_PARAMETER, "passphrase cannot be empty")

        def work():
            try:
                w.keys.change_passphrase(old, new)
            except WrongPassphrase:
                raise RPCError(RPC_WALLET_PASSPHRASE_INCORRECT, _wrong_passphrase(old)) from None
        await self._w(work)

    # --- the relock timer ------------------------------------------------------------------------
    def _schedule_relock(self, w, secs: int, relock_time: int) -> None:
        """Core's scheduled relock: at the deadline, lock unless a later unlock replaced it."""
        self._cancel_relock(w)
        if w.keys.locked:
            return
        crypter = w.keys.crypter

        def fire() -> None:
            self._relock_timers.pop(id(w), None)
            if crypter.relock_time == relock_time:   # not replaced by a later walletpassphrase
                crypter.lock()                       # drops references only: safe off the writer
        self._relock_timers[id(w)] = asyncio.get_running_loop().call_later(secs, fire)

    def _cancel_relock(self, w) -> None:
        h = self._relock_timers.pop(id(w), None)
        if h is not None:
            h.cancel()


def _wrong_passphrase(pw: str) -> str:
    if "\x00" not in pw:
        return "Error: The wallet passphrase entered was incorrect."
    return ("Error: The wallet passphrase entered is incorrect. It contains a null character (ie - a zero "
            "byte). If the passphrase was set with a version of this software prior to 25.0, please try "
            "again with only the characters up to — but not including — the first null character. If "
            "this is successful, please set a new passphrase to avoid this issue in the future.")
