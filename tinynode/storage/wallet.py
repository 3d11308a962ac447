"""A wallet's SQLite file (`<datadir>/<network>/wallets/[<name>/]wallet.sqlite`, mode 0600): the only wallet SQL.

Three tables, written through and read back whole at start (a wallet is small):

    keys   one row per private key: secret, SEC pubkey, the script it pays (script_pubkey) and
           that script's address type (addr_type: "legacy" P2PKH, "bech32" P2WPKH or "bech32m"
           P2TR key path with the key as BIP86 internal key), chain
           (0 receive, 1 change, 2 imported), whether it was handed out and whether coins arrived
    txs    one row per transaction that touches the wallet: raw bytes, state
           ("confirmed" / "pending" / "conflicted"), block hash/height/time, first-seen time,
           whether the wallet made it, its fee when known
    meta   key → value: schema version, the last block the wallet processed (hash, height),
           the wallet's flags and birth time, the miner's payout script, and in an encrypted
           wallet the wrapped master key (`wallet/crypter.py`; then `keys.secret` holds each
           secret sealed under it, never in the clear)

Schema 2 added `keys.addr_type`; a schema-1 file (legacy-only wallet) is migrated in place on
open: its keys keep their P2PKH scripts as "legacy". "bech32m" needed no schema change (the
column is free text); a schema-2 file from before it opens as it is.

Like the chain store, it runs on one thread (the chain writer's), WAL with synchronous=NORMAL;
`batch()` groups writes into one transaction (one per block event).
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

__all__ = ["WalletStore", "KeyRecord", "TxRecord", "SCHEMA_VERSION"]

SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB);
CREATE TABLE IF NOT EXISTS keys (
    id INTEGER PRIMARY KEY,
    secret BLOB NOT NULL,
    compressed INTEGER NOT NULL,
    pubkey BLOB NOT NULL,
    script_pubkey BLOB NOT NULL UNIQUE,
    chain INTEGER NOT NULL,
    issued INTEGER NOT NULL DEFAULT 0,
    used INTEGER NOT NULL DEFAULT 0,
    label TEXT NOT NULL DEFAULT '',
    created INTEGER NOT NULL,
    addr_type TEXT NOT NULL DEFAULT 'legacy'
);
CREATE TABLE IF NOT EXISTS txs (
    txid BLOB PRIMARY KEY,
    raw BLOB NOT NULL,
    state TEXT NOT NULL,
    block_hash BLOB,
    height INTEGER,
    block_time INTEGER,
    time_received INTEGER NOT NULL,
    from_me INTEGER NOT NULL,
    fee INTEGER,
    seq INTEGER NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class KeyRecord:
    id: int
    secret: bytes
    compressed: bool
    pubkey: bytes
    script_pubkey: bytes
    chain: int
    issued: bool
    used: bool
    label: str
    created: int
    addr_type: str = "legacy"     # "legacy" (P2PKH) | "bech32" (P2WPKH) | "bech32m" (P2TR)


@dataclass(frozen=True, slots=True)
class TxRecord:
    txid: bytes
    raw: bytes
    state: str
    block_hash: bytes | None
    height: int | None
    block_time: int | None
    time_received: int
    from_me: bool
    fee: int | None
    seq: int


def _create_private_file(path: Path) -> None:
    """Create `path` with mode 0600 before SQLite opens it (no window where it is readable)."""
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)


class WalletStore:
    """SQLite persistence for one wallet. Use from a single thread."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _create_private_file(self.path)
        self._db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        # freed pages are zeroed: a secret overwritten by its ciphertext leaves no copy behind
        self._db.execute("PRAGMA secure_delete=ON")
        self._depth = 0
        with self.batch():
            for stmt in _SCHEMA.strip().split(";"):
                if stmt.strip():
                    self._db.execute(stmt)
            self._migrate()
            if self.get_meta("schema_version") is None:
                self.set_meta("schema_version", str(SCHEMA_VERSION).encode())
        for suffix in ("-wal", "-shm"):
            p = Path(str(self.path) + suffix)
            if p.exists():
                os.chmod(p, 0o600)

    def _migrate(self) -> None:
        """Bring an older file to SCHEMA_VERSION (inside the opening batch)."""
        cols = {r[1] for r in self._db.execute("PRAGMA table_info(keys)").fetchall()}
        if "addr_type" not in cols:  # schema 1: every key paid its P2PKH script
            self._db.execute("ALTER TABLE keys ADD COLUMN addr_type TEXT NOT NULL DEFAULT 'legacy'")
        v = self.get_meta("schema_version")
        if v is not None and int(v.decode()) < SCHEMA_VERSION:
            self.set_meta("schema_version", str(SCHEMA_VERSION).encode())

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None  # type: ignore[assignment]

    def backup(self, dest: Path | str) -> Path:
        """A consistent copy of the wallet in one file at `dest` (mode 0600), made with SQLite's
        online backup while the wallet stays open (Core `BackupWallet`). A directory gets
        `wallet.sqlite` inside it; an existing file is replaced; the wallet's own file is refused."""
        target = Path(dest).expanduser()
        if target.is_dir():
            target = target / self.path.name
        if target.resolve() == self.path.resolve():
            raise ValueError("the backup cannot be the wallet file itself")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.unlink(missing_ok=True)
        _create_private_file(tmp)
        out = sqlite3.connect(str(tmp))
        try:
            self._db.backup(out)
            out.execute("PRAGMA journal_mode=DELETE")   # one self-contained file, no -wal beside it
        finally:
            out.close()
        os.replace(tmp, target)
        return target

    @contextmanager
    def batch(self) -> Iterator[None]:
        """One SQLite transaction around the block (nested batches join the outer one)."""
        if self._depth == 0:
            self._db.execute("BEGIN")
        self._depth += 1
        try:
            yield
        except BaseException:
            self._depth -= 1
            if self._depth == 0:
                self._db.execute("ROLLBACK")
            raise
        else:
            self._depth -= 1
            if self._depth == 0:
                self._db.execute("COMMIT")

    # --- meta ----------------------------------------------------------------------------------
    def get_meta(self, key: str) -> bytes | None:
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else bytes(row[0])

    def set_meta(self, key: str, value: bytes) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    # --- keys ----------------------------------------------------------------------------------
    def add_key(self, secret: bytes, compressed: bool, pubkey: bytes, script_pubkey: bytes,
                chain: int, created: int, label: str = "", issued: bool = False,
                addr_type: str = "legacy") -> KeyRecord:
        cur = self._db.execute(
            "INSERT INTO keys(secret, compressed, pubkey, script_pubkey, chain, issued, used, label, created,"
            " addr_type) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?)",
            (secret, int(compressed), pubkey, script_pubkey, chain, int(issued), label, created, addr_type))
        return KeyRecord(int(cur.lastrowid), secret, compressed, pubkey, script_pubkey, chain,
                         issued, False, label, created, addr_type)

    def load_keys(self) -> list[KeyRecord]:
        rows = self._db.execute(
            "SELECT id, secret, compressed, pubkey, script_pubkey, chain, issued, used, label, created,"
            " addr_type FROM keys ORDER BY id").fetchall()
        return [KeyRecord(r[0], bytes(r[1]), bool(r[2]), bytes(r[3]), bytes(r[4]), r[5], bool(r[6]),
                          bool(r[7]), r[8], r[9], r[10]) for r in rows]

    def update_key(self, key_id: int, *, issued: bool | None = None, used: bool | None = None,
                   label: str | None = None, script_pubkey: bytes | None = None,
                   addr_type: str | None = None) -> None:
        """Change a key's flags; `script_pubkey` + `addr_type` re-type a key not yet handed out."""
        if script_pubkey is not None:
            self._db.execute("UPDATE keys SET script_pubkey=?, addr_type=? WHERE id=?",
                             (script_pubkey, addr_type, key_id))
        if issued is not None:
            self._db.execute("UPDATE keys SET issued=? WHERE id=?", (int(issued), key_id))
        if used is not None:
            self._db.execute("UPDATE keys SET used=? WHERE id=?", (int(used), key_id))
        if label is not None:
            self._db.execute("UPDATE keys SET label=? WHERE id=?", (label, key_id))

    def set_key_secret(self, key_id: int, secret: bytes) -> None:
        """Replace a key's stored secret (encrypting a wallet seals every one)."""
        self._db.execute("UPDATE keys SET secret=? WHERE id=?", (secret, key_id))

    def rewrite(self) -> None:
        """Rebuild the file and empty the WAL, so no page of the old content survives on disk
        (Core rewrites the database after `EncryptWallet`). Outside any batch."""
        assert self._depth == 0
        self._db.execute("VACUUM")
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    # --- transactions ----------------------------------------------------------------------------
    def put_tx(self, rec: TxRecord) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO txs(txid, raw, state, block_hash, height, block_time,"
            " time_received, from_me, fee, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (rec.txid, rec.raw, rec.state, rec.block_hash, rec.height, rec.block_time,
             rec.time_received, int(rec.from_me), rec.fee, rec.seq))

    def delete_tx(self, txid: bytes) -> None:
        self._db.execute("DELETE FROM txs WHERE txid=?", (txid,))

    def load_txs(self) -> list[TxRecord]:
        rows = self._db.execute(
            "SELECT txid, raw, state, block_hash, height, block_time, time_received, from_me, fee, seq"
            " FROM txs ORDER BY seq").fetchall()
        return [TxRecord(bytes(r[0]), bytes(r[1]), r[2], None if r[3] is None else bytes(r[3]), r[4],
                         r[5], r[6], bool(r[7]), r[8], r[9]) for r in rows]
