"""The tx index keyed by the full txid (tinynode issue 14): prefix-sharing txids, duplicate txids
(latest block wins, earlier ones restored on disconnect), reorgs through ChainState, and the
upgrade of a schema-2 file (txindex keyed by an 8-byte prefix) by a rebuild from its blocks."""

from __future__ import annotations

import dataclasses
import logging
import sqlite3
import struct

import pytest

from tinynode.chain.chainstate import ChainState
from tinynode.primitives.block import Block
from tinynode.primitives.tx import COIN
from tinynode.storage import sqlite as sqlite_store
from tinynode.storage.base import IndexRecord, StoreBatch, next_txindex_stack
from tinynode.storage.memory import MemoryChainStore
from tinynode.storage.sqlite import SCHEMA_VERSION, SQLiteChainStore, StoreError

#: regtest's message start: the block files of a store written directly (no ChainState) need one
REGTEST_MAGIC = bytes.fromhex("fabfb5da")

from tests.framework.legacy_store import downgrade_to_v4
from tests.unit.test_chain_unit_helpers import Builder, spend
from tinynode.params import REGTEST

#: regtest with coinbase maturity 2, so spends need few blocks (a storage test, not consensus)
PARAMS = dataclasses.replace(REGTEST, coinbase_maturity=2)

G = PARAMS.genesis
X, Y, Z, W = (bytes([c]) * 32 for c in b"XYZW")


@pytest.fixture(params=["memory", "sqlite"])
def store(request, tmp_path):
    s = MemoryChainStore() if request.param == "memory" else SQLiteChainStore(tmp_path / "chain.sqlite", magic=REGTEST_MAGIC)
    yield s
    s.close()


def tx_block(store, txid: bytes) -> bytes | None:
    b = store.get_tx_block(txid)
    return None if b is None else bytes(b)


def connect(txids, block_hash: bytes) -> StoreBatch:
    """The tx-index part of connecting `block_hash` (as ChainState._connect_block writes it)."""
    return StoreBatch(undo={block_hash: b"undo"}, txindex={t: block_hash for t in txids})


def disconnect(txids, block_hash: bytes) -> StoreBatch:
    """The tx-index part of disconnecting `block_hash` (as ChainState._disconnect_block)."""
    return StoreBatch(undo={block_hash: None}, txindex={t: None for t in txids})


# --- the rule ------------------------------------------------------------------------------

@pytest.mark.parametrize("stack, entry, disconnected, want", [
    ((), X, (), (X,)),                      # first block holding the tx
    ((X,), X, (), (X,)),                    # the same block again: unchanged
    ((X,), Y, (), (X, Y)),                  # duplicate txid: latest wins, X kept underneath
    ((X, Y), None, (Y,), (X,)),             # disconnect Y: X restored
    ((X,), None, (Y,), (X,)),               # Y connected and disconnected inside one batch
    ((X, Y), Z, (X, Y), (Z,)),              # deep reorg: both gone, re-mined in Z
    ((X, Y), None, (), (X,)),               # direct caller, no disconnected block: latest goes
    ((X,), None, (), ()),
    ((), None, (Y,), ()),
])
def test_next_txindex_stack(stack, entry, disconnected, want):
    assert next_txindex_stack(stack, entry, frozenset(disconnected)) == want


# --- both stores ---------------------------------------------------------------------------

def test_prefix_sharing_txids_do_not_collide(store):
    """Two txids with the same first 8 bytes (the v2 key) are two entries, each with its block."""
    a = b"\xaa" * 8 + b"\x01" * 24
    b = b"\xaa" * 8 + b"\x02" * 24
    store.write(connect([a], X))
    store.write(connect([b], Y))
    assert tx_block(store, a) == X and tx_block(store, b) == Y
    assert tx_block(store, b"\xaa" * 8 + b"\x03" * 24) is None
    store.write(disconnect([b], Y))
    assert tx_block(store, a) == X and tx_block(store, b) is None
    store.write(disconnect([a], X))
    assert tx_block(store, a) is None


def test_duplicate_txid_latest_block_wins_and_disconnect_restores(store):
    """BIP30-era duplicate (a txid in two active-chain blocks): the index returns the latest
    block, as Core's txindex; disconnecting it gives the earlier block back."""
    t, other = b"t" * 32, b"o" * 32
    store.write(connect([t, other], X))
    store.write(connect([t], Y))
    assert tx_block(store, t) == Y and tx_block(store, other) == X
    store.write(disconnect([t], Y))
    assert tx_block(store, t) == X
    # connected and disconnected again within one batch (ChainState merges steps): X stays
    merged = connect([t], Z)
    merged.undo[Z] = None
    merged.txindex[t] = None
    store.write(merged)
    assert tx_block(store, t) == X
    # a reorg removing X and Y in one batch and re-mining t in W
    store.write(connect([t], Y))
    store.write(StoreBatch(undo={X: None, Y: None, W: b"u"}, txindex={t: W, other: None}))
    assert tx_block(store, t) == W and tx_block(store, other) is None
    store.write(disconnect([t], W))
    assert tx_block(store, t) is None


def test_sqlite_duplicate_survives_reopen(tmp_path):
    p = tmp_path / "c.sqlite"
    s = SQLiteChainStore(p, magic=REGTEST_MAGIC)
    t = b"t" * 32
    s.write(connect([t], X))
    s.write(connect([t], Y))
    s.close()
    s = SQLiteChainStore(p, magic=REGTEST_MAGIC)
    assert tx_block(s, t) == Y
    assert s._conn.execute("SELECT COUNT(*) FROM txindex_shadowed").fetchone()[0] == 1
    s.write(disconnect([t], Y))
    assert tx_block(s, t) == X
    assert s._conn.execute("SELECT COUNT(*) FROM txindex_shadowed").fetchone()[0] == 0
    s.close()


# --- ChainState reorgs ---------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["memory", "sqlite"])
@pytest.mark.parametrize("flush_blocks", [1, 1000])
def test_reorg_removes_and_moves_entries(tmp_path, kind, flush_blocks):
    r"""
        genesis -> b1 -> b2 -> b3 -> b4(ta, tm)          tm re-mined in f4, ta only on the old side
                            \-> f3 -> f4(tm) -> f5
    """
    def new_cs():
        store = MemoryChainStore() if kind == "memory" else SQLiteChainStore(tmp_path / "c.sqlite", magic=REGTEST_MAGIC)
        return ChainState(PARAMS, store, flush_blocks=flush_blocks, flush_seconds=3600)

    cs = new_cs()
    B = Builder()
    b1, b2, b3 = B.chain(G, 3)
    ta = spend(b1.txs[0], 50 * COIN)
    tm = spend(b2.txs[0], 50 * COIN)
    b4 = B.next(b3, (ta, tm))
    for b in (b1, b2, b3, b4):
        assert cs.process_block(b).status == "connected"
    assert cs.get_tx(ta.txid) == (ta, b4.hash, 4) and cs.get_tx(tm.txid) == (tm, b4.hash, 4)
    f3 = B.next(b2, cb_extra=b"f")
    f4 = B.next(f3, (tm,), cb_extra=b"f")
    f5 = B.next(f4, cb_extra=b"f")
    for b in (f3, f4, f5):
        cs.process_block(b)
    assert cs.tip.hash == f5.hash
    assert cs.get_tx(ta.txid) is None                       # only in disconnected b4
    assert cs.get_tx(b3.txs[0].txid) is None                # coinbase of disconnected b3
    assert cs.get_tx(tm.txid) == (tm, f4.hash, 4)           # moved to the new branch
    assert cs.get_tx(f5.txs[0].txid) == (f5.txs[0], f5.hash, 5)
    assert cs.get_tx(b1.txs[0].txid) == (b1.txs[0], b1.hash, 1)
    assert cs.get_tx(G.txs[0].txid) is None                 # genesis coinbase: not indexed (Core)
    if kind == "sqlite":
        cs.close()
        cs = new_cs()
        assert cs.get_tx(ta.txid) is None and cs.get_tx(tm.txid) == (tm, f4.hash, 4)
        assert cs.store._conn.execute("SELECT COUNT(*) FROM txindex").fetchone()[0] == 6  # 5 coinbases + tm
    cs.close()


# --- the schema-2 upgrade ------------------------------------------------------------------

def _prefix_key(txid: bytes) -> int:
    return struct.unpack_from("<q", txid)[0]


def downgrade_to_v2(path, extra_rows=()) -> None:
    """Turn a current file into what the v2 code wrote: txindex keyed by the 8-byte txid prefix,
    INSERT OR REPLACE (so `extra_rows`, written after, overwrite entries sharing their prefix)."""
    downgrade_to_v4(path)
    conn = sqlite3.connect(path)
    rows = [(bytes(t), bytes(b)) for t, b in conn.execute("SELECT txid, block_hash FROM txindex")]
    conn.executescript("""
        DROP TABLE txindex; DROP TABLE txindex_shadowed;
        CREATE TABLE txindex (k INTEGER PRIMARY KEY, block_hash BLOB NOT NULL);
        UPDATE meta SET value='2' WHERE key='schema_version';
    """)
    conn.executemany("INSERT OR REPLACE INTO txindex(k, block_hash) VALUES (?,?)",
                     [(_prefix_key(t), b) for t, b in [*rows, *extra_rows]])
    conn.commit()
    conn.close()


def build_chain(path) -> tuple[list[Block], list[Block]]:
    """A chain with spends and a reorg, made by ChainState on SQLite: (active blocks after
    genesis, blocks only on the losing side)."""
    cs = ChainState(PARAMS, SQLiteChainStore(path))
    B = Builder()
    blocks = B.chain(G, 4)
    t1 = spend(blocks[0].txs[0], 50 * COIN, outputs=3)
    t2 = spend(t1, 10 * COIN, n=1)
    t3 = spend(blocks[1].txs[0], 49 * COIN)
    side = B.next(blocks[-1], (t3,), cb_extra=b"s", fees=COIN)
    blocks.append(B.next(blocks[-1], (t1, t2), cb_extra=b"m"))
    blocks.append(B.next(blocks[-1], (t3,), fees=COIN))
    blocks.append(B.next(blocks[-1]))
    for b in (*blocks[:4], side, *blocks[4:]):
        cs.process_block(b)
    assert cs.tip.hash == blocks[-1].hash
    cs.close()
    return blocks, [side]


def test_v2_file_upgrades_and_answers_every_confirmed_tx(tmp_path, caplog):
    p = tmp_path / "v2.sqlite"
    active, losing = build_chain(p)
    t1 = active[4].txs[1]
    # the v2 damage: a later txid sharing t1's 8-byte prefix moved t1's entry to another block
    crafted = t1.txid[:8] + bytes(24)
    downgrade_to_v2(p, extra_rows=[(crafted, losing[0].hash)])
    conn = sqlite3.connect(p)
    assert bytes(conn.execute("SELECT block_hash FROM txindex WHERE k=?",
                              (_prefix_key(t1.txid),)).fetchone()[0]) == losing[0].hash
    conn.close()

    with caplog.at_level(logging.INFO, logger="tinynode.storage.sqlite"):
        cs = ChainState(PARAMS, SQLiteChainStore(p))
    assert cs.store.schema_version() == SCHEMA_VERSION
    assert "rebuilt the tx index: 10 txs in 7 blocks (0 duplicate txids)" in caplog.messages
    n = 0
    for height, b in enumerate(active, 1):
        for tx in b.txs:
            assert cs.get_tx(tx.txid) == (tx, b.hash, height)
            n += 1
    assert n == 10
    assert cs.get_tx(losing[0].txs[0].txid) is None     # only in a block off the active chain
    assert cs.get_tx(G.txs[0].txid) is None
    assert cs.get_tx(crafted) is None
    # the crafted prefix-mate now gets its own entry next to t1 (as connecting its block would)
    cs.store.write(connect([crafted], losing[0].hash))
    assert tx_block(cs.store, crafted) == losing[0].hash
    assert tx_block(cs.store, t1.txid) == active[4].hash and cs.get_tx(t1.txid)[1] == active[4].hash
    cs.close()


def test_v2_upgrade_of_duplicate_txids_logs_progress(tmp_path, caplog, monkeypatch):
    """Blocks written straight to the store (no validation) where b3 repeats a tx of b2 and b5
    the coinbase of b1: the rebuild keeps the latest block on top, the earlier underneath."""
    p = tmp_path / "dup.sqlite"
    B = Builder()
    b1, b2 = B.chain(G, 2)
    t = spend(b1.txs[0], 50 * COIN)
    b2 = B.next(b1, (t,), cb_extra=b"2")
    b3 = B.next(b2, (t,))
    b4 = B.next(b3)
    b5 = B.next(b4, (b1.txs[0],))
    chain = [G, b1, b2, b3, b4, b5]
    s = SQLiteChainStore(p, magic=REGTEST_MAGIC)
    s.write(StoreBatch(index={b.hash: IndexRecord(b.hash, b.header.serialize(), h, h + 1, 0)
                              for h, b in enumerate(chain)},
                       blocks={b.hash: b.serialize() for b in chain}, tip=b5.hash))
    s.close()
    downgrade_to_v2(p)
    monkeypatch.setattr(sqlite_store, "REBUILD_LOG_EVERY", 2)
    with caplog.at_level(logging.INFO, logger="tinynode.storage.sqlite"):
        s = SQLiteChainStore(p, magic=REGTEST_MAGIC)
    assert [m for m in caplog.messages if m.startswith(("rebuil", "tx index rebuild"))] == [
        "rebuilding the tx index from the 5 blocks of the active chain",
        "tx index rebuild: 2/5 blocks (40%), 3 txs",
        "tx index rebuild: 4/5 blocks (80%), 6 txs",
        "rebuilt the tx index: 8 txs in 5 blocks (2 duplicate txids)"]
    assert tx_block(s, t.txid) == b3.hash and tx_block(s, b1.txs[0].txid) == b5.hash
    s.write(disconnect([tx.txid for tx in b5.txs], b5.hash))
    s.write(disconnect([tx.txid for tx in b4.txs], b4.hash))
    s.write(disconnect([tx.txid for tx in b3.txs], b3.hash))
    assert tx_block(s, b1.txs[0].txid) == b1.hash and tx_block(s, t.txid) == b2.hash
    s.close()


def test_v2_upgrade_without_a_stored_active_block_fails_and_changes_nothing(tmp_path):
    p = tmp_path / "broken.sqlite"
    active, _ = build_chain(p)
    downgrade_to_v2(p)
    conn = sqlite3.connect(p)
    conn.execute("DELETE FROM blocks WHERE hash=?", (active[2].hash,))
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="of the active chain is not stored"):
        SQLiteChainStore(p, magic=REGTEST_MAGIC)
    conn = sqlite3.connect(p)   # the failed upgrade rolled back: still a v2 file
    assert conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == "2"
    assert [r[1] for r in conn.execute("PRAGMA table_info(txindex)")] == ["k", "block_hash"]
    conn.close()


def test_v2_upgrade_of_an_empty_file(tmp_path):
    p = tmp_path / "empty.sqlite"
    SQLiteChainStore(p).close()
    downgrade_to_v2(p)
    s = SQLiteChainStore(p, magic=REGTEST_MAGIC)
    assert s.schema_version() == SCHEMA_VERSION and s.get_tx_block(b"t" * 32) is None
    s.close()
