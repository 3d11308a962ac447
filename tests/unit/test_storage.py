"""ChainStore implementations: round trips, atomic batches, script index, reopen, schema."""

from __future__ import annotations

import sqlite3

import pytest

from tinynode.params import REGTEST
from tinynode.primitives.coin import Coin
from tinynode.primitives.tx import OutPoint
from tinynode.storage.base import (
    ChainStore, IndexRecord, StoreBatch, coin_key, key_outpoint, parse_undo, serialize_undo,
)
from tinynode.storage.memory import MemoryChainStore
from tinynode.storage.sqlite import SCHEMA_VERSION, SQLiteChainStore, StoreError

#: regtest's message start: the block files of a store written directly (no ChainState) need one
REGTEST_MAGIC = bytes.fromhex("fabfb5da")

SPK_A = b"\x51"
SPK_B = b"\x76\xa9\x14" + bytes(20) + b"\x88\xac"


@pytest.fixture(params=["memory", "sqlite"])
def store(request, tmp_path):
    s = MemoryChainStore() if request.param == "memory" else SQLiteChainStore(tmp_path / "chain.sqlite", magic=REGTEST_MAGIC)
    yield s
    s.close()


def key(i: int, n: int = 0) -> bytes:
    return coin_key(OutPoint(bytes([i]) * 32, n))


def test_key_roundtrip_and_order():
    op = OutPoint(bytes(range(32)), 258)
    assert key_outpoint(coin_key(op)) == op
    assert coin_key(OutPoint(bytes(32), 1)) < coin_key(OutPoint(bytes(32), 256))


def test_undo_roundtrip():
    coins = [Coin(5, SPK_A, 3, True), Coin(7, SPK_B, 9, False)]
    assert parse_undo(serialize_undo(coins)) == coins
    assert parse_undo(serialize_undo([])) == []


def test_protocol(store):
    assert isinstance(store, ChainStore)


def test_round_trip(store):
    body = REGTEST.genesis.serialize()   # a real block: a block file read checks its header's hash
    rec = IndexRecord(REGTEST.genesis.hash, body[:80], 3, 2**200 + 5, 7, 4)
    b = StoreBatch(index={rec.hash: rec}, blocks={rec.hash: body},
                   coins={key(1): Coin(10, SPK_A, 3, False), key(2, 1): Coin(20, SPK_B, 3, True),
                          key(3): Coin(30, SPK_A, 2, False)},
                   undo={rec.hash: b"undo"}, txindex={b"t" * 32: rec.hash}, tip=rec.hash)
    store.write(b)
    assert store.load_index() == [rec]
    assert store.get_tip() == rec.hash
    assert bytes(store.get_block(rec.hash)) == body and store.has_block(rec.hash)
    assert store.get_block(b"n" * 32) is None and not store.has_block(b"n" * 32)
    assert bytes(store.get_undo(rec.hash)) == b"undo"
    assert store.get_coin(key(2, 1)) == Coin(20, SPK_B, 3, True)
    assert store.get_coin(key(9)) is None
    assert bytes(store.get_tx_block(b"t" * 32)) == rec.hash
    assert [(bytes(k), c.value) for k, c in store.coins_for_script(SPK_A)] == [(key(1), 10), (key(3), 30)]
    assert [bytes(k) for k, _ in store.iter_coins()] == sorted([key(1), key(2, 1), key(3)])
    assert store.coin_count() == 3
    # deletes
    store.write(StoreBatch(coins={key(1): None}, undo={rec.hash: None}, txindex={b"t" * 32: None}))
    assert store.get_coin(key(1)) is None and store.get_undo(rec.hash) is None
    assert store.get_tx_block(b"t" * 32) is None
    assert [(bytes(k), c.value) for k, c in store.coins_for_script(SPK_A)] == [(key(3), 30)]
    # replace keeps the script index right
    store.write(StoreBatch(coins={key(3): Coin(31, SPK_B, 5, False)}))
    assert store.coins_for_script(SPK_A) == []
    assert [c.value for _, c in store.coins_for_script(SPK_B)] == [20, 31]


def test_sqlite_batch_is_atomic(tmp_path):
    s = SQLiteChainStore(tmp_path / "c.sqlite", magic=REGTEST_MAGIC)
    s.write(StoreBatch(coins={key(1): Coin(1, SPK_A, 1, False)}, tip=b"a" * 32))

    batch = StoreBatch(coins={key(1): None, key(2): Coin(2, SPK_A, 1, False)}, tip=b"b" * 32)
    batch.txindex = {b"t" * 32: object()}  # not bindable → sqlite error after coins were written
    with pytest.raises(Exception):
        s.write(batch)
    assert s.get_coin(key(1)) is not None and s.get_coin(key(2)) is None
    assert s.get_tip() == b"a" * 32
    s.close()


def test_sqlite_reopen_and_schema(tmp_path):
    p = tmp_path / "c.sqlite"
    s = SQLiteChainStore(p, magic=REGTEST_MAGIC)
    assert s.schema_version() == SCHEMA_VERSION
    s.write(StoreBatch(coins={key(4): Coin(4, SPK_A, 1, False)}, tip=b"z" * 32))
    s.close()
    s = SQLiteChainStore(p, magic=REGTEST_MAGIC)
    assert s.get_coin(key(4)).value == 4 and s.get_tip() == b"z" * 32
    s.close()
    conn = sqlite3.connect(p)
    conn.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError):
        SQLiteChainStore(p, magic=REGTEST_MAGIC)


def test_sqlite_wal_mode(tmp_path):
    s = SQLiteChainStore(tmp_path / "c.sqlite", magic=REGTEST_MAGIC)
    assert s._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    s.close()


def test_sqlite_migrates_schema_1(tmp_path):
    """A v1 file (coin blobs + script hashes, txindex by full txid) opens as the current schema;
    its tx index is rebuilt from the active chain's blocks (none here: the stray row goes; the
    rebuild itself is tested in test_storage_txindex.py)."""
    p = tmp_path / "v1.sqlite"
    conn = sqlite3.connect(p)
    conn.executescript("""
        CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
        CREATE TABLE block_index (hash BLOB PRIMARY KEY, height INTEGER NOT NULL, chainwork BLOB NOT NULL,
            status INTEGER NOT NULL, seq INTEGER NOT NULL, header BLOB NOT NULL) WITHOUT ROWID;
        CREATE TABLE blocks (hash BLOB PRIMARY KEY, data BLOB NOT NULL);
        CREATE TABLE undo (hash BLOB PRIMARY KEY, data BLOB NOT NULL);
        CREATE TABLE coins (key BLOB PRIMARY KEY, script_hash BLOB NOT NULL, coin BLOB NOT NULL) WITHOUT ROWID;
        CREATE INDEX coins_by_script ON coins(script_hash);
        CREATE TABLE txindex (txid BLOB PRIMARY KEY, block_hash BLOB NOT NULL) WITHOUT ROWID;
        INSERT INTO meta VALUES ('schema_version', '1');
    """)
    coin = Coin(7, SPK_B, 3, True)
    conn.execute("INSERT INTO coins VALUES (?,?,?)", (key(5), b"12345678", coin.serialize()))
    conn.execute("INSERT INTO txindex VALUES (?,?)", (b"t" * 32, b"b" * 32))
    conn.commit()
    conn.close()
    s = SQLiteChainStore(p, magic=REGTEST_MAGIC)
    assert s.schema_version() == SCHEMA_VERSION
    assert s.get_coin(key(5)) == coin
    assert [bytes(k) for k, _ in s.coins_for_script(SPK_B)] == [key(5)]
    assert s.get_tx_block(b"t" * 32) is None
    s.close()


def test_sqlite_script_index_is_built_by_the_first_lookup_and_kept(tmp_path):
    """A new store has no coins_by_script index (coin writes stay cheaper); the first
    `coins_for_script` builds it, SQLite maintains it with later writes, and a reopen keeps it."""
    path = tmp_path / "c.sqlite"

    def has_index() -> bool:
        conn = sqlite3.connect(path)
        try:
            return conn.execute("SELECT 1 FROM sqlite_master WHERE type='index' "
                                "AND name='coins_by_script'").fetchone() is not None
        finally:
            conn.close()
    s = SQLiteChainStore(path)
    s.write(StoreBatch(coins={key(1): Coin(10, SPK_A, 3, False), key(2): Coin(20, SPK_B, 3, False)}))
    assert not has_index()
    assert [(bytes(k), c.value) for k, c in s.coins_for_script(SPK_A)] == [(key(1), 10)]
    assert has_index()
    s.write(StoreBatch(coins={key(1): None, key(4): Coin(40, SPK_A, 4, True)}))
    assert [(bytes(k), c.value) for k, c in s.coins_for_script(SPK_A)] == [(key(4), 40)]
    s.close()
    s = SQLiteChainStore(path)
    assert s._script_index
    assert [c.value for _, c in s.coins_for_script(SPK_B)] == [20]
    s.close()
