"""Several wallets in one node (Core's `WalletContext`: CreateWallet, LoadWallet, RemoveWallet).

Layout under the network directory, as Core's `-walletdir` (`<datadir>/<net>/wallets`):

    wallets/wallet.sqlite          the default wallet, named "" (Core's unnamed `wallet.dat`)
    wallets/<name>/wallet.sqlite   a named wallet; a name may have '/' (a folder inside wallets/)
    settings.json                  {"wallet": [names]}: the wallets loaded at start (Core's
                                   settings.json "wallet" list, changed by `load_on_startup`)

The default wallet is made and loaded at every start, as tinynode always had one; a file from
before multiwallet (`<net>/wallet.sqlite`) is moved to `wallets/wallet.sqlite` once, with its
WAL folded in first (`migrate_legacy_layout`), so no key is lost.

Everything here runs on the chain writer thread: opening a wallet opens SQLite, catches it up
with the chain and subscribes it to the chain's events; unloading unsubscribes and closes it.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from pathlib import Path, PurePosixPath
from typing import Callable

from ..params import ChainParams
from ..storage.wallet import WalletStore
from .keystore import FLAG_BLANK, FLAG_DISABLE_PRIVATE_KEYS, RECEIVE
from .wallet import Wallet

__all__ = ["WalletManager", "WalletManagerError", "migrate_legacy_layout", "WALLET_FILE",
           "RPC_WALLET_ERROR", "RPC_WALLET_NOT_FOUND", "RPC_INVALID_PARAMETER"]

log = logging.getLogger(__name__)

WALLET_FILE = "wallet.sqlite"
RPC_WALLET_ERROR, RPC_WALLET_NOT_FOUND, RPC_INVALID_PARAMETER = -4, -18, -8
RPC_WALLET_ALREADY_LOADED = -35
#: the meta key of the miner's payout script (one per wallet, reused across restarts)
MINING_META = "mining_script"


class WalletManagerError(Exception):
    """A wallet that cannot be created, loaded or unloaded; `code` is Core's RPC error code."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def migrate_legacy_layout(network_dir: Path) -> bool:
    """Move a single-wallet node's `<net>/wallet.sqlite` to `<net>/wallets/wallet.sqlite`.

    The old file's WAL is checkpointed into it first (a plain rename of the main file alone
    would leave committed pages behind in `-wal`); the rename is atomic, so a crash leaves
    either the old layout, whole, or the new one. Returns True when it moved a file."""
    old = network_dir / WALLET_FILE
    new = network_dir / "wallets" / WALLET_FILE
    if not old.exists() or new.exists():
        return False
    new.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(str(old))
    try:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.execute("PRAGMA journal_mode=DELETE")      # folds and removes -wal/-shm on close
    finally:
        db.close()
    os.replace(old, new)
    for suffix in ("-wal", "-shm"):
        Path(str(old) + suffix).unlink(missing_ok=True)
    log.info("wallet moved to %s (the multiwallet layout); it is the default wallet \"\"", new)
    return True


class WalletManager:
    """The loaded wallets of one node, by name. Writer thread, except `get`/`names`/`loaded`
    (reads of a dict the writer replaces whole)."""

    def __init__(self, params: ChainParams, network_dir: Path, chainstate=None, *,
                 now: Callable[[], float] = time.time, keypool_size: int = 20):
        self.params = params
        self.network_dir = Path(network_dir)
        self.wallets_dir = self.network_dir / "wallets"
        self.settings_path = self.network_dir / "settings.json"
        self.chainstate = chainstate
        self._now = now
        self.keypool_size = keypool_size
        self._wallets: dict[str, Wallet] = {}
        #: called with each wallet after it is loaded / before it is unloaded (the node's hooks)
        self.on_load: list[Callable[[str, Wallet], None]] = []
        self.on_unload: list[Callable[[str, Wallet], None]] = []

    # --- names and paths -------------------------------------------------------------------------
    def path_for(self, name: str) -> Path:
        """Core `GetWalletDir() / name`: the default wallet at the top, a named one in its folder."""
        if name == "":
            return self.wallets_dir / WALLET_FILE
        parts = PurePosixPath(name).parts
        if name.startswith("/") or ".." in parts or "\x00" in name or not parts:
            raise WalletManagerError(RPC_WALLET_ERROR, f"Invalid wallet name '{name}': a wallet "
                                     f"name is a relative path inside {self.wallets_dir}, without '..'")
        return self.wallets_dir.joinpath(*parts) / WALLET_FILE

    def exists(self, name: str) -> bool:
        return self.path_for(name).is_file()

    def get(self, name: str) -> Wallet | None:
        return self._wallets.get(name)

    def names(self) -> list[str]:
        """Loaded wallets' names, in load order (Core `listwallets`)."""
        return list(self._wallets)

    def loaded(self) -> list[Wallet]:
        return list(self._wallets.values())

    def default(self) -> Wallet | None:
        """For the node's own use outside an RPC request: "" when loaded, else the only one."""
        w = self._wallets.get("")
        if w is not None:
            return w
        return next(iter(self._wallets.values())) if len(self._wallets) == 1 else None

    def list_dir(self) -> list[str]:
        """Names of every wallet file under wallets/ (Core `ListDatabases`), "" first."""
        out = []
        if not self.wallets_dir.is_dir():
            return out
        if (self.wallets_dir / WALLET_FILE).is_file():
            out.append("")
        found = []
        for dirpath, dirnames, filenames in os.walk(self.wallets_dir):
            dirnames.sort()
            if Path(dirpath) != self.wallets_dir and WALLET_FILE in filenames:
                found.append(Path(dirpath).relative_to(self.wallets_dir).as_posix())
        return out + sorted(found)

    # --- create / load / unload ------------------------------------------------------------------
    def create(self, name: str, *, disable_private_keys: bool = False, blank: bool = False,
               passphrase: str = "", kdf_n: int | None = None) -> Wallet:
        """Core `CreateWallet`: a new file, keys (unless blank or watch-only), encrypted before
        any key is written when a passphrase is given, loaded and following the chain."""
        if name == "":
            raise WalletManagerError(RPC_INVALID_PARAMETER, "Wallet name cannot be empty")
        if passphrase and disable_private_keys:
            raise WalletManagerError(RPC_WALLET_ERROR, "Passphrase provided but private keys are disabled. "
                                     "A passphrase is only used to encrypt private keys, so cannot be used "
                                     "for wallets with private keys disabled.")
        path = self.path_for(name)
        if path.exists() or name in self._wallets:
            raise WalletManagerError(RPC_WALLET_ERROR, f"Wallet file verification failed. Failed to "
                                     f"create database path '{path.parent}'. Database already exists.")
        flags = set()
        if disable_private_keys:
            flags.add(FLAG_DISABLE_PRIVATE_KEYS)
        if blank:
            flags.add(FLAG_BLANK)
        store = WalletStore(path)
        try:
            with store.batch():
                # born encrypted: flagged blank while the master key is made, so no clear key exists
                store.set_meta("flags", json.dumps(sorted(flags | ({FLAG_BLANK} if passphrase else set()))).encode())
                store.set_meta("birthtime", str(int(self._now())).encode())
            w = Wallet(self.params, store, keypool_size=self.keypool_size, now=self._now)
            if passphrase:
                w.keys.encrypt(passphrase, kdf_n=kdf_n)
                with store.batch():
                    w.keys.set_flags(flags)
                w.keys.crypter.unlock(passphrase, 1 << 30)   # (locked again below)
                w.keys.top_up()
                w.keys.crypter.lock()
        except BaseException:
            store.close()
            raise
        log.info("wallet \"%s\" created at %s%s", name, path, " (encrypted)" if passphrase else "")
        self._attach(name, w)
        return w

    def load(self, name: str) -> Wallet:
        """Core `LoadWallet`: open an existing file, catch up with the chain."""
        if name in self._wallets:
            raise WalletManagerError(RPC_WALLET_ALREADY_LOADED, f'Wallet "{name}" is already loaded.')
        path = self.path_for(name)
        if not path.is_file():
            raise WalletManagerError(RPC_WALLET_NOT_FOUND, f"Wallet file verification failed. Failed to "
                                     f"load database path '{path.parent if name else self.wallets_dir}'. "
                                     f"Path does not exist.")
        store = WalletStore(path)
        try:
            w = Wallet(self.params, store, keypool_size=self.keypool_size, now=self._now)
        except BaseException:
            store.close()
            raise
        self._attach(name, w)
        return w

    def load_or_create_default(self) -> Wallet:
        """The default wallet "" at start: opened, or made on first run (tinynode's newcomer
        gets a wallet without asking)."""
        if "" in self._wallets:
            return self._wallets[""]
        path = self.path_for("")
        if path.is_file():
            return self.load("")
        store = WalletStore(path)
        with store.batch():
            store.set_meta("birthtime", str(int(self._now())).encode())
        w = Wallet(self.params, store, keypool_size=self.keypool_size, now=self._now)
        self._attach("", w)
        return w

    def _attach(self, name: str, w: Wallet) -> None:
        cs = self.chainstate
        if cs is not None:
            scanned = w.sync_with_chain(cs)
            if scanned:
                log.info("wallet \"%s\": scanned %d blocks", name, scanned)
            cs.subscribe(w.on_chain_event)
        self._wallets = {**self._wallets, name: w}
        for cb in self.on_load:
            cb(name, w)

    def unload(self, name: str) -> None:
        """Core `RemoveWallet`: stop following the chain, close the file."""
        w = self._wallets.get(name)
        if w is None:
            raise WalletManagerError(RPC_WALLET_NOT_FOUND, "Requested wallet does not exist or is not loaded")
        for cb in self.on_unload:
            cb(name, w)
        if self.chainstate is not None:
            self.chainstate.unsubscribe(w.on_chain_event)
        self._wallets = {k: v for k, v in self._wallets.items() if k != name}
        w.keys.crypter.lock()
        w.close()
        log.info("wallet \"%s\" unloaded", name)

    def close_all(self) -> None:
        for name in list(self._wallets):
            try:
                self.unload(name)
            except Exception:
                log.exception("closing wallet \"%s\" failed", name)

    # --- load on startup (Core settings.json "wallet") -------------------------------------------
    def startup_names(self) -> list[str]:
        try:
            j = json.loads(self.settings_path.read_text())
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as e:
            log.warning("ignoring %s: %s", self.settings_path, e)
            return []
        names = j.get("wallet", []) if isinstance(j, dict) else []
        return [n for n in names if isinstance(n, str)]

    def set_load_on_startup(self, name: str, load: bool | None) -> None:
        """Core `UpdateWalletSetting`: True adds `name` to the start list, False removes it,
        None leaves it as it is. Written atomically."""
        if load is None:
            return
        try:
            j = json.loads(self.settings_path.read_text())
            if not isinstance(j, dict):
                j = {}
        except (OSError, ValueError):
            j = {}
        names = [n for n in j.get("wallet", []) if isinstance(n, str) and n != name]
        if load:
            names.append(name)
        j["wallet"] = names
        tmp = self.settings_path.with_name(self.settings_path.name + ".tmp")
        tmp.write_text(json.dumps(j, indent=2) + "\n")
        os.replace(tmp, self.settings_path)


def mining_script(w: Wallet) -> bytes:
    """The wallet's payout script for the miner: made once (a receive address labelled
    "mining"), kept in the wallet's meta and reused at every start, so a node that mines for
    days pays one address instead of a new one per restart. Writer thread."""
    spk = w.store.get_meta(MINING_META)
    if spk is not None and w.keys.is_mine(spk):
        return spk
    from ..primitives.address import decode_address
    spk = decode_address(w.keys.new_address("mining"), w.params).script_pubkey
    with w.store.batch():
        w.store.set_meta(MINING_META, spk)
    return spk


def wallet_birthtime(w: Wallet) -> int | None:
    """Core `GetBirthTime`: when the wallet was made, else its oldest key's time."""
    b = w.store.get_meta("birthtime")
    if b is not None:
        return int(b.decode())
    times = [r.created for r in w.store.load_keys()]
    return min(times) if times else None


def keypool_sizes(w: Wallet) -> tuple[int, int]:
    """(receive keys, change keys) not yet handed out."""
    from .keystore import CHANGE
    return w.keys.keypool_free(RECEIVE), w.keys.keypool_free(CHANGE)
