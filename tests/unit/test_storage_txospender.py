"""The spender index (Core's -txospenderindex, issue 20): outpoint → the active-chain tx spending
it and its block, written by ChainState in the same store commit as the block; reorgs, restarts,
staged (unflushed) steps, turning the option off and on, and building it for an existing
schema-3 file from its stored blocks."""

from __future__ import annotations

import dataclasses
import logging
import sqlite3

import pytest

from tinynode.chain.chainstate import ChainState
from tinynode.primitives.tx import COIN, OutPoint
from tinynode.storage import sqlite as sqlite_store
from tinynode.storage.base import StoreBatch, TxoSpend, coin_key
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
X, Y = b"X" * 32, b"Y" * 32


def op(tx, n: int = 0) -> OutPoint:
    return OutPoint(tx.txid, n)


@pytest.fixture(params=["memory", "sqlite"])
def store(request, tmp_path):
    s = (MemoryChainStore(txospenderindex=True) if request.param == "memory"
         else SQLiteChainStore(tmp_path / "chain.sqlite", txospenderindex=True, magic=REGTEST_MAGIC))
    yield s
    s.close()


# --- the store -----------------------------------------------------------------------------

def test_store_writes_and_deletes_spends(store):
    k1, k2 = coin_key(OutPoint(b"a" * 32, 0)), coin_key(OutPoint(b"a" * 32, 1))
    store.write(StoreBatch(txospender={k1: TxoSpend(b"s" * 32, X)}))
    assert store.get_spender(k1) == TxoSpend(b"s" * 32, X) and store.get_spender(k2) is None
    store.write(StoreBatch(txospender={k1: None, k2: TxoSpend(b"t" * 32, Y)}))
    assert store.get_spender(k1) is None and store.get_spender(k2) == TxoSpend(b"t" * 32, Y)


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_store_without_the_option_ignores_spends(tmp_path, kind):
    s = MemoryChainStore() if kind == "memory" else SQLiteChainStore(tmp_path / "c.sqlite", magic=REGTEST_MAGIC)
    k = coin_key(OutPoint(b"a" * 32, 0))
    s.write(StoreBatch(txospender={k: TxoSpend(b"s" * 32, X)}))
    assert s.txospenderindex is False and s.get_spender(k) is None
    if kind == "sqlite":
        assert s._conn.execute("SELECT COUNT(*) FROM txospender").fetchone()[0] == 0
    s.close()


# --- ChainState: connect, reorg, restart ---------------------------------------------------

def fork_scenario():
    r"""
        genesis -> b1 -> b2 -> b3 -> b4(ta, tm)      ta spends b1's coinbase on the old side only;
                            \-> f3 -> f4(tm) -> f5   tm (spends b2's coinbase) is re-mined in f4
    """
    B = Builder()
    b1, b2, b3 = B.chain(G, 3)
    ta = spend(b1.txs[0], 50 * COIN)
    tm = spend(b2.txs[0], 50 * COIN)
    b4 = B.next(b3, (ta, tm))
    f3 = B.next(b2, cb_extra=b"f")
    f4 = B.next(f3, (tm,), cb_extra=b"f")
    f5 = B.next(f4, cb_extra=b"f")
    return (b1, b2, b3, b4), (f3, f4, f5), ta, tm


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
@pytest.mark.parametrize("flush_blocks", [1, 1000])
def test_connect_reorg_and_restart(tmp_path, kind, flush_blocks):
    """flush_blocks=1000: every step stays staged in memory (never committed), so get_spender
    must answer from the staged batch as from the store."""
    def new_cs():
        store = (MemoryChainStore(txospenderindex=True) if kind == "memory"
                 else SQLiteChainStore(tmp_path / "c.sqlite", txospenderindex=True, magic=REGTEST_MAGIC))
        return ChainState(PARAMS, store, flush_blocks=flush_blocks, flush_seconds=3600)

    cs = new_cs()
    old, fork, ta, tm = fork_scenario()
    b1, b2, b3, b4 = old
    for b in old:
        assert cs.process_block(b).status == "connected"
    assert cs.get_spender(op(b1.txs[0])) == TxoSpend(ta.txid, b4.hash)
    assert cs.get_spender(op(b2.txs[0])) == TxoSpend(tm.txid, b4.hash)
    assert cs.get_spender(op(b3.txs[0])) is None            # unspent
    assert cs.get_spender(op(ta)) is None                   # created, unspent
    for b in fork:
        cs.process_block(b)
    f3, f4, f5 = fork
    assert cs.tip.hash == f5.hash
    assert cs.get_spender(op(b1.txs[0])) is None            # its spend left with b4
    assert cs.get_spender(op(b2.txs[0])) == TxoSpend(tm.txid, f4.hash)   # moved to f4
    cs.flush()
    if kind == "sqlite":
        cs.close()
        cs = new_cs()
        assert cs.get_spender(op(b1.txs[0])) is None
        assert cs.get_spender(op(b2.txs[0])) == TxoSpend(tm.txid, f4.hash)
        assert cs.store._conn.execute("SELECT COUNT(*) FROM txospender").fetchone()[0] == 1
    # back to the old branch: invalidate f3, b4's spends return
    cs.invalidate_block(f3.hash)
    cs.reconsider_block(b4.hash)
    assert cs.tip.hash == b4.hash
    assert cs.get_spender(op(b1.txs[0])) == TxoSpend(ta.txid, b4.hash)
    assert cs.get_spender(op(b2.txs[0])) == TxoSpend(tm.txid, b4.hash)
    cs.close()


def test_without_the_option_chainstate_writes_no_spends():
    store = MemoryChainStore()
    cs = ChainState(PARAMS, store)
    old, _, ta, _ = fork_scenario()
    for b in old:
        cs.process_block(b)
    assert cs.txospenderindex is False
    assert cs.get_spender(op(old[0].txs[0])) is None and store._txospender == {}
    cs.close()


# --- the option turned on for an existing datadir, off, and on again ------------------------

def build_chain(path, **kw) -> tuple[tuple, tuple, object, object]:
    cs = ChainState(PARAMS, SQLiteChainStore(path, **kw))
    old, fork, ta, tm = fork_scenario()
    for b in (*old, *fork):
        cs.process_block(b)
    cs.close()
    return old, fork, ta, tm


def downgrade_to_v3(path) -> None:
    """What the v3 code left: no txospender table, schema_version 3."""
    downgrade_to_v4(path)
    conn = sqlite3.connect(path)
    conn.executescript("""DROP TABLE txospender; DELETE FROM meta WHERE key='txospenderindex';
                          UPDATE meta SET value='3' WHERE key='schema_version';""")
    conn.commit()
    conn.close()


def test_v3_file_upgrades_and_builds_the_index_from_its_blocks(tmp_path, caplog, monkeypatch):
    p = tmp_path / "v3.sqlite"
    old, fork, ta, tm = build_chain(p)
    downgrade_to_v3(p)
    s = SQLiteChainStore(p)                 # upgraded, the option off: the table is there, empty
    assert s.schema_version() == SCHEMA_VERSION == 5
    assert s._conn.execute("SELECT COUNT(*) FROM txospender").fetchone()[0] == 0
    s.close()
    monkeypatch.setattr(sqlite_store, "REBUILD_LOG_EVERY", 2)
    with caplog.at_level(logging.INFO, logger="tinynode.storage.sqlite"):
        cs = ChainState(PARAMS, SQLiteChainStore(p, txospenderindex=True))
    assert [m for m in caplog.messages if "spender index" in m] == [
        "building the spender index (txospenderindex) from the 5 blocks of the active chain",
        "spender index build: 2/5 blocks (40%), 0 spends",
        "spender index build: 4/5 blocks (80%), 1 spends",
        "built the spender index: 1 spends in 5 blocks"]
    f4 = fork[1]
    assert cs.get_spender(op(old[1].txs[0])) == TxoSpend(tm.txid, f4.hash)
    assert cs.get_spender(op(old[0].txs[0])) is None        # spent only on the losing side
    cs.close()
    # a second open finds it maintained: no rebuild
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="tinynode.storage.sqlite"):
        SQLiteChainStore(p, txospenderindex=True).close()
    assert not [m for m in caplog.messages if "spender index" in m]


def test_a_run_without_the_option_drops_it_and_the_next_rebuilds(tmp_path):
    p = tmp_path / "c.sqlite"
    old, fork, ta, tm = build_chain(p, txospenderindex=True)
    cs = ChainState(PARAMS, SQLiteChainStore(p))       # off: emptied, so it cannot go stale
    assert cs.store._conn.execute("SELECT COUNT(*) FROM txospender").fetchone()[0] == 0
    # blocks connected while off (f3 invalidated: b4 comes back with ta and tm)
    cs.invalidate_block(fork[0].hash)
    cs.reconsider_block(old[3].hash)
    assert cs.tip.hash == old[3].hash
    cs.close()
    cs = ChainState(PARAMS, SQLiteChainStore(p, txospenderindex=True))
    assert cs.get_spender(op(old[0].txs[0])) == TxoSpend(ta.txid, old[3].hash)
    assert cs.get_spender(op(old[1].txs[0])) == TxoSpend(tm.txid, old[3].hash)
    cs.close()


def test_build_without_a_stored_active_block_fails_and_changes_nothing(tmp_path):
    p = tmp_path / "broken.sqlite"
    old, fork, _, _ = build_chain(p)
    conn = sqlite3.connect(p)
    conn.execute("DELETE FROM block_pos WHERE hash=?", (fork[1].hash,))
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="the spender index cannot be built"):
        SQLiteChainStore(p, txospenderindex=True)
    conn = sqlite3.connect(p)
    assert conn.execute("SELECT value FROM meta WHERE key='txospenderindex'").fetchone() is None
    conn.close()
