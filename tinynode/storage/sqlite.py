"""SQLiteChainStore: the chain store on disk (stdlib sqlite3, WAL, synchronous=NORMAL).

One connection, made by the thread that constructs the store and used only by it (the chain
writer thread; sqlite3's default `check_same_thread=True` enforces that). Every `write(batch)` is
one transaction, so `kill -9` at any instant leaves the previous or the next consistent state:
index, coins, undo, tx index and tip always agree.

Tables:
    meta(key, value)                    schema_version, tip
    block_index(hash, height, chainwork, status, seq, header)
    blocks(hash, data)                  full block bytes
    undo(hash, data)                    spent coins of a connected block
    coins(key, script, value, height, coinbase)   key = txid + n (big-endian); index on script
                                        (the script index: a script's coins without a scan)
    txindex(k, block_hash)              k = first 8 bytes of the txid as a signed integer (a rowid
                                        table: much cheaper to write than 32-byte keys); readers
                                        confirm the txid in the block (ChainState.get_tx)
"""

from __future__ import annotations

import logging
import os
import sqlite3
import struct
from typing import Callable, Iterator

from ..primitives.coin import Coin
from .base import IndexRecord, StoreBatch

log = logging.getLogger(__name__)

__all__ = ["SQLiteChainStore", "SCHEMA_VERSION", "StoreError"]

SCHEMA_VERSION = 2


class StoreError(Exception):
    """The database is unusable (newer schema, corrupt)."""


_SCHEMA_COINS = """CREATE TABLE IF NOT EXISTS coins (
    key BLOB PRIMARY KEY, script BLOB NOT NULL, value INTEGER NOT NULL, height INTEGER NOT NULL,
    coinbase INTEGER NOT NULL) WITHOUT ROWID"""
_SCHEMA_COINS_INDEX = "CREATE INDEX IF NOT EXISTS coins_by_script ON coins(script)"

_SCHEMA = _SCHEMA_COINS + ";" + _SCHEMA_COINS_INDEX + """;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS block_index (
    hash BLOB PRIMARY KEY, height INTEGER NOT NULL, chainwork BLOB NOT NULL,
    status INTEGER NOT NULL, seq INTEGER NOT NULL, header BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS blocks (hash BLOB PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS undo (hash BLOB PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS txindex (k INTEGER PRIMARY KEY, block_hash BLOB NOT NULL);
"""

_I64 = struct.Struct("<q").unpack_from


def _txkey(txid: bytes) -> int:
    """First 8 bytes of the txid as a signed little-endian integer."""
    return _I64(txid)[0]


def _migrate_1_to_2(conn: sqlite3.Connection) -> None:
    """v1 kept coins as one blob beside a script hash, and txindex keyed by the full txid."""
    cols = [r[1] for r in conn.execute("PRAGMA table_info(coins)")]
    if "coin" in cols:
        conn.execute("ALTER TABLE coins RENAME TO coins_v1")
        conn.execute("DROP INDEX IF EXISTS coins_by_script")
        conn.execute(_SCHEMA_COINS)
        conn.execute(_SCHEMA_COINS_INDEX)
        rows = []
        for key, data in conn.execute("SELECT key, coin FROM coins_v1"):
            c = Coin.from_bytes(data)
            rows.append((key, c.script_pubkey, c.value, c.height, c.is_coinbase))
        conn.executemany("INSERT INTO coins(key, script, value, height, coinbase) VALUES (?,?,?,?,?)", rows)
        conn.execute("DROP TABLE coins_v1")
    cols = [r[1] for r in conn.execute("PRAGMA table_info(txindex)")]
    if "txid" in cols:
        rows = [(_txkey(t), b) for t, b in conn.execute("SELECT txid, block_hash FROM txindex")]
        conn.execute("DROP TABLE txindex")
        conn.execute("CREATE TABLE txindex (k INTEGER PRIMARY KEY, block_hash BLOB NOT NULL)")
        conn.executemany("INSERT OR REPLACE INTO txindex(k, block_hash) VALUES (?,?)", rows)


#: version → function upgrading the schema from version-1 to version (run inside a transaction).
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {2: _migrate_1_to_2}


class SQLiteChainStore:
    """`ChainStore` on one SQLite file."""

    def __init__(self, path: str | os.PathLike[str], *, cache_mb: int = 64) -> None:
        self.path = str(path)
        conn = sqlite3.connect(self.path, isolation_level=None)
        self._conn = conn
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(f"PRAGMA cache_size=-{int(cache_mb) * 1024}")
        conn.execute("PRAGMA temp_store=MEMORY")
        # Checkpoint (the only fsync in WAL+NORMAL) every ~40 MB of WAL instead of every 4 MB.
        conn.execute("PRAGMA wal_autocheckpoint=10000")
        self._migrate()

    # --- schema ----------------------------------------------------------------------------
    def _migrate(self) -> None:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            has_meta = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'").fetchone()
            version = 0
            if has_meta:
                row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
                version = int(row[0]) if row else 0
            if version > SCHEMA_VERSION:
                raise StoreError(f"{self.path}: schema version {version} is newer than {SCHEMA_VERSION}")
            if version == 0:
                for stmt in _SCHEMA.split(";"):
                    if stmt.strip():
                        conn.execute(stmt)
                version = SCHEMA_VERSION
            while version < SCHEMA_VERSION:
                version += 1
                MIGRATIONS[version](conn)
            conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES('schema_version', ?)",
                         (str(version),))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def schema_version(self) -> int:
        row = self._conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        return int(row[0])

    # --- reads ------------------------------------------------------------------------------
    def load_index(self) -> list[IndexRecord]:
        rows = self._conn.execute(
            "SELECT hash, header, height, chainwork, status, seq FROM block_index ORDER BY height, seq")
        return [IndexRecord(h, hdr, height, int.from_bytes(cw, "big"), status, seq)
                for h, hdr, height, cw, status, seq in rows]

    def get_tip(self) -> bytes | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key='tip'").fetchone()
        return bytes(row[0]) if row else None

    def get_block(self, block_hash: bytes) -> bytes | None:
        row = self._conn.execute("SELECT data FROM blocks WHERE hash=?", (block_hash,)).fetchone()
        return row[0] if row else None

    def has_block(self, block_hash: bytes) -> bool:
        return self._conn.execute("SELECT 1 FROM blocks WHERE hash=?", (block_hash,)).fetchone() is not None

    def get_undo(self, block_hash: bytes) -> bytes | None:
        row = self._conn.execute("SELECT data FROM undo WHERE hash=?", (block_hash,)).fetchone()
        return row[0] if row else None

    def get_coin(self, key: bytes) -> Coin | None:
        row = self._conn.execute("SELECT value, script, height, coinbase FROM coins WHERE key=?",
                                 (key,)).fetchone()
        return Coin(row[0], row[1], row[2], bool(row[3])) if row else None

    def coins_for_script(self, script_pubkey: bytes) -> list[tuple[bytes, Coin]]:
        return [(key, Coin(value, script_pubkey, height, bool(cb))) for key, value, height, cb in
                self._conn.execute("SELECT key, value, height, coinbase FROM coins WHERE script=? "
                                   "ORDER BY key", (script_pubkey,))]

    def iter_coins(self) -> Iterator[tuple[bytes, Coin]]:
        cur = self._conn.execute("SELECT key, value, script, height, coinbase FROM coins ORDER BY key")
        while True:
            rows = cur.fetchmany(1000)
            if not rows:
                return
            for key, value, script, height, cb in rows:
                yield key, Coin(value, script, height, bool(cb))

    def coin_count(self) -> int:
        return self._conn.execute("SELECT COUNT(*) FROM coins").fetchone()[0]

    def get_tx_block(self, txid: bytes) -> bytes | None:
        row = self._conn.execute("SELECT block_hash FROM txindex WHERE k=?", (_txkey(txid),)).fetchone()
        return row[0] if row else None

    # --- writes -----------------------------------------------------------------------------
    def write(self, batch: StoreBatch) -> None:
        """Apply `batch` in one transaction."""
        conn = self._conn
        conn.execute("BEGIN")
        try:
            if batch.index:
                conn.executemany(
                    "INSERT OR REPLACE INTO block_index(hash, height, chainwork, status, seq, header) "
                    "VALUES (?,?,?,?,?,?)",
                    [(r.hash, r.height, r.chainwork.to_bytes(32, "big"), int(r.status), r.sequence_id,
                      r.header) for r in batch.index.values()])
            if batch.blocks:
                conn.executemany("INSERT OR REPLACE INTO blocks(hash, data) VALUES (?,?)",
                                 list(batch.blocks.items()))
            # Rows come from generators, not lists: each row tuple is freed as soon as SQLite has
            # bound it, so a large flush does not pile up GC-tracked tuples (which would trigger
            # full garbage collections over the whole heap in the middle of the write).
            if batch.coins:
                coins = batch.coins
                conn.executemany("DELETE FROM coins WHERE key=?",
                                 ((k,) for k, c in coins.items() if c is None))
                conn.executemany("INSERT OR REPLACE INTO coins(key, script, value, height, coinbase) "
                                 "VALUES (?,?,?,?,?)",
                                 ((k, c.script_pubkey, c.value, c.height, c.is_coinbase)
                                  for k, c in coins.items() if c is not None))
            if batch.undo:
                undo = batch.undo
                conn.executemany("DELETE FROM undo WHERE hash=?",
                                 ((h,) for h, u in undo.items() if u is None))
                conn.executemany("INSERT OR REPLACE INTO undo(hash, data) VALUES (?,?)",
                                 ((h, u) for h, u in undo.items() if u is not None))
            if batch.txindex:
                txindex = batch.txindex
                conn.executemany("DELETE FROM txindex WHERE k=?",
                                 ((_txkey(t),) for t, b in txindex.items() if b is None))
                conn.executemany("INSERT OR REPLACE INTO txindex(k, block_hash) VALUES (?,?)",
                                 ((_txkey(t), b) for t, b in txindex.items() if b is not None))
            if batch.tip is not None:
                conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('tip', ?)", (batch.tip,))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def close(self) -> None:
        conn = self._conn
        if conn is None:
            return
        self._conn = None  # type: ignore[assignment]
        try:
            conn.execute("PRAGMA optimize")
        except sqlite3.Error:
            pass
        conn.close()
