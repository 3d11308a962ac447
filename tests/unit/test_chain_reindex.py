"""Core's -reindex / -reindex-chainstate (chain/reindex.py): a datadir rebuilt from its stored
block bodies has the same tip, UTXO-set hash (gettxoutsetinfo's hash_serialized_3), tx index,
spender index and block tree as before; blocks stored child-first wait for their parent; an
invalid stored block stops the chain at its parent; a reindex cut short (a stop request, or a
kill that loses what was not committed) is finished by the next start."""

from __future__ import annotations

import dataclasses
import logging

import pytest

from tinynode.chain.chainstate import ChainState
from tinynode.chain.reindex import REINDEX, REINDEX_CHAINSTATE, prepare_reindex, run_reindex
from tinynode.params import REGTEST
from tinynode.primitives.tx import COIN, OutPoint
from tinynode.storage.base import StoreBatch, coin_key
from tinynode.storage.memory import MemoryChainStore
from tinynode.storage.sqlite import SQLiteChainStore

from tests.unit.test_chain_unit_helpers import Builder, spend

#: regtest with coinbase maturity 2, so spends need few blocks
PARAMS = dataclasses.replace(REGTEST, coinbase_maturity=2)
G = PARAMS.genesis


def scenario():
    r"""
        genesis -> b1 -> b2 -> b3 -> b4(ta, tm) -> b5 -> b6      the best chain (height 6)
                            \-> f3 -> f4(tm)                     a stale fork
    ta spends b1's coinbase, tm spends b2's; b6 spends ta's output.
    """
    B = Builder()
    b1, b2, b3 = B.chain(G, 3)
    ta = spend(b1.txs[0], 50 * COIN - 1000)
    tm = spend(b2.txs[0], 50 * COIN - 1000)
    b4 = B.next(b3, (ta, tm), fees=2000)
    f3 = B.next(b2, cb_extra=b"f")
    f4 = B.next(f3, (tm,), cb_extra=b"f", fees=1000)
    b5 = B.next(b4)
    tb = spend(ta, 50 * COIN - 3000)
    b6 = B.next(b5, (tb,), fees=2000)
    return [b1, b2, b3, b4, b5, b6], [f3, f4], [ta, tm, tb]


def snapshot(cs: ChainState, blocks, txs) -> dict:
    """What a reindex must give back: tip, UTXO-set hash and count, tx index, spender index,
    the block tree's tips."""
    cs.flush()
    outs = [OutPoint(b.txs[0].txid, 0) for b in blocks] + [OutPoint(t.txid, 0) for t in txs]
    return {
        "tip": (cs.tip.hash, cs.height),
        "utxo_hash": cs.utxo_set_hash(),
        "coins": cs.coin_count(),
        "txindex": {t.txid: cs.store.get_tx_block(t.txid) for b in blocks for t in b.txs},
        "spenders": {o: cs.get_spender(o) for o in outs},
        "tips": sorted(e.hash for e, _ in cs.chain_tips()),
        "active": [cs.get_block_hash(h) for h in range(cs.height + 1)],
    }


def build(store, out_of_order: bool = False):
    """The scenario connected on `store`; with `out_of_order` the best chain's bodies are
    stored child first (headers-first sync: b3 before b2 before b1)."""
    cs = ChainState(PARAMS, store)
    best, fork, txs = scenario()
    if out_of_order:
        cs.process_headers([b.header for b in best])
        for b in (best[2], best[1], best[0], *best[3:]):
            cs.process_block(b)
    else:
        for b in best:
            assert cs.process_block(b).status == "connected"
    for b in fork:
        assert cs.process_block(b).status == "accepted"
    before = snapshot(cs, best + fork, txs)
    assert before["tip"] == (best[-1].hash, 6)
    return cs, before, best, fork, txs


def open_store(kind, tmp_path, store=None):
    if kind == "memory":
        return store
    return SQLiteChainStore(tmp_path / "chain.sqlite", txospenderindex=True)


def rebuild(store, *, reindex=False, reindex_chainstate=False, should_stop=lambda: False):
    mode = prepare_reindex(store, reindex=reindex, reindex_chainstate=reindex_chainstate)
    cs = ChainState(PARAMS, store, activate=mode is None)
    result = run_reindex(cs, mode, should_stop) if mode is not None else None
    return cs, result


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
@pytest.mark.parametrize("mode", [REINDEX, REINDEX_CHAINSTATE])
@pytest.mark.parametrize("out_of_order", [False, True])
def test_rebuilt_datadir_matches(tmp_path, kind, mode, out_of_order, caplog):
    store = MemoryChainStore(txospenderindex=True) if kind == "memory" else open_store(kind, tmp_path)
    cs, before, best, fork, txs = build(store, out_of_order)
    if kind == "sqlite":
        cs.close()
        store = open_store(kind, tmp_path)
    caplog.set_level(logging.INFO, logger="tinynode.chain.reindex")
    cs, result = rebuild(store, reindex=mode == REINDEX, reindex_chainstate=mode == REINDEX_CHAINSTATE)
    assert result.mode == mode and not result.interrupted and result.height == 6
    after = snapshot(cs, best + fork, txs)
    assert after == before
    assert store.get_undo(best[3].hash) is not None     # undo data rebuilt: b4 can be disconnected
    if mode == REINDEX:
        assert result.blocks_loaded == len(best) + len(fork)   # every stored body but genesis
        assert "Reindexing block file chain.sqlite (0% complete)..." in caplog.text
        assert f"Loaded {len(best) + len(fork)} blocks from external file in " in caplog.text
        assert "Reindexing finished" in caplog.text
        assert store.reindexing() is False
    else:
        assert "Connected the stored blocks: height 6" in caplog.text
    # the rebuilt state works on: a reorg to the fork (made longer) disconnects with the new undo data
    f5 = Builder(base=tuple(best[:2] + fork)).next(fork[1], cb_extra=b"g")
    f6 = Builder(base=tuple(best[:2] + fork + [f5])).next(f5, cb_extra=b"g")
    f7 = Builder(base=tuple(best[:2] + fork + [f5, f6])).next(f6, cb_extra=b"g")
    for b in (f5, f6, f7):
        cs.process_block(b)
    assert cs.tip.hash == f7.hash
    assert cs.get_coin(OutPoint(txs[0].txid, 0)) is None        # ta left with b4
    assert cs.get_coin(OutPoint(best[0].txs[0].txid, 0)) is not None   # b1's coinbase unspent again
    cs.close()


def test_reindex_of_a_fresh_store_is_genesis(tmp_path):
    store = SQLiteChainStore(tmp_path / "chain.sqlite")
    cs, result = rebuild(store, reindex=True)
    assert result.height == 0 and result.blocks_loaded == 0 and cs.tip.hash == G.hash
    cs.close()


def test_reindex_wins_over_reindex_chainstate():
    store = MemoryChainStore()
    cs, _, _, _, _ = build(store)
    assert prepare_reindex(store, reindex=True, reindex_chainstate=True) == REINDEX
    assert store.load_index() == [] and store.reindexing() is True


def test_an_invalid_stored_block_stops_the_chain_at_its_parent(tmp_path, caplog):
    """A stored block that fails ConnectBlock (its coinbase claims more than subsidy + fees)
    is marked failed, its stored child is refused (bad-prevblk), and the chain stays at its parent, as
    Core's reindex (AcceptBlock, then ConnectTip fails: InvalidBlockFound)."""
    store = SQLiteChainStore(tmp_path / "chain.sqlite", txospenderindex=True)
    cs, before, best, fork, txs = build(store)
    B = Builder(base=tuple(best))
    bad = B.next(best[-1], cb_value=50 * COIN + 1)               # bad-cb-amount at height 7
    above = B.next(bad)
    store.write(StoreBatch(blocks={bad.hash: bad.serialize(), above.hash: above.serialize()}))
    cs.close()
    store = SQLiteChainStore(tmp_path / "chain.sqlite", txospenderindex=True)
    caplog.set_level(logging.INFO)
    cs, result = rebuild(store, reindex=True)
    assert cs.tip.hash == best[-1].hash and result.height == 6
    assert cs.get_entry(bad.hash).failed
    assert cs.get_entry(above.hash) is None          # bad-prevblk: its header is not indexed
    assert result.blocks_loaded == len(best) + len(fork) + 1   # Core's nLoaded: `bad` was accepted
    assert "bad-cb-amount" in caplog.text and "bad-prevblk" in caplog.text
    assert snapshot(cs, best + fork, txs)["utxo_hash"] == before["utxo_hash"]
    cs.close()


def test_a_damaged_stored_body_leaves_its_descendants_out(tmp_path, caplog):
    """b3's stored body with a tx that no longer matches its header's merkle root: CheckBlock
    refuses it (not marked: a mutated copy), so b3 is not indexed and the blocks above wait for a
    parent that never comes; the chain is rebuilt up to b2 (Core: the chain ends where the block
    files stop having a valid block)."""
    store = SQLiteChainStore(tmp_path / "chain.sqlite", txospenderindex=True)
    cs, _, best, fork, txs = build(store)
    cs.close()
    b3 = best[2]
    store = SQLiteChainStore(tmp_path / "chain.sqlite", txospenderindex=True)
    # one byte of b3's last tx flipped in its block file: the header (and hash) is unchanged
    file, pos, size = store._conn.execute("SELECT file, pos, size FROM block_pos WHERE hash=?",
                                          (b3.hash,)).fetchone()
    with open(store.blocks_dir / f"blk{file:05d}.dat", "r+b") as f:
        f.seek(pos + size - 5)
        byte = f.read(1)
        f.seek(pos + size - 5)
        f.write(bytes([byte[0] ^ 0xFF]))
    caplog.set_level(logging.INFO)
    cs, result = rebuild(store, reindex=True)
    assert cs.get_entry(b3.hash) is None
    assert cs.tip.hash in (best[1].hash, fork[1].hash) and cs.get_entry(fork[1].hash) is not None
    assert cs.tip.hash == fork[1].hash           # the fork on b2 is the best valid chain left
    assert "have no known parent and were left out" in caplog.text
    cs.close()


class _Killed(BaseException):
    """Stands for kill -9: nothing after it runs, nothing uncommitted reaches the store."""


@pytest.mark.parametrize("again", ["--reindex", "plain start"])
def test_a_killed_reindex_is_finished_by_the_next_start(tmp_path, again):
    store = SQLiteChainStore(tmp_path / "chain.sqlite", txospenderindex=True)
    cs, before, best, fork, txs = build(store)
    cs.close()
    store = SQLiteChainStore(tmp_path / "chain.sqlite", txospenderindex=True)
    calls = iter(range(1_000))

    def kill_after_four() -> bool:
        if next(calls) >= 4:
            raise _Killed
        return False
    with pytest.raises(_Killed):
        rebuild(store, reindex=True, should_stop=kill_after_four)
    store._conn.close()            # no flush, no close: the process is gone
    store = SQLiteChainStore(tmp_path / "chain.sqlite", txospenderindex=True)
    assert store.reindexing() is True
    cs, result = rebuild(store, reindex=again == "--reindex")
    assert result.mode == REINDEX and not result.interrupted
    assert snapshot(cs, best + fork, txs) == before
    assert store.reindexing() is False
    cs.close()


def test_a_stop_request_interrupts_and_the_next_start_continues(tmp_path, caplog):
    store = SQLiteChainStore(tmp_path / "chain.sqlite", txospenderindex=True)
    cs, before, best, fork, txs = build(store)
    cs.close()
    store = SQLiteChainStore(tmp_path / "chain.sqlite", txospenderindex=True)
    polls = iter(range(1_000))
    caplog.set_level(logging.INFO)
    cs, result = rebuild(store, reindex=True, should_stop=lambda: next(polls) >= 3)
    assert result.interrupted and "Interrupt requested. Exit reindexing." in caplog.text
    assert store.reindexing() is True
    cs.close()
    store = SQLiteChainStore(tmp_path / "chain.sqlite", txospenderindex=True)
    cs, result = rebuild(store)
    assert result is not None and result.mode == REINDEX and not result.interrupted
    assert snapshot(cs, best + fork, txs) == before
    cs.close()


def test_a_killed_reindex_chainstate_resumes_at_its_flushed_height(tmp_path):
    """-reindex-chainstate leaves no mark: the store is at a consistent lower tip, and an
    ordinary start connects the rest (Core: the coins database's best block)."""
    store = SQLiteChainStore(tmp_path / "chain.sqlite", txospenderindex=True)
    cs, before, best, fork, txs = build(store)
    cs.close()
    store = SQLiteChainStore(tmp_path / "chain.sqlite", txospenderindex=True)
    mode = prepare_reindex(store, reindex=False, reindex_chainstate=True)
    assert mode == REINDEX_CHAINSTATE and store.get_tip() == G.hash
    assert store.coin_count() == 0 and store.get_tx_block(txs[0].txid) is None
    assert store.get_spender(coin_key(OutPoint(best[0].txs[0].txid, 0))) is None
    store._conn.close()            # killed right after the wipe
    store = SQLiteChainStore(tmp_path / "chain.sqlite", txospenderindex=True)
    cs = ChainState(PARAMS, store)  # an ordinary start
    assert snapshot(cs, best + fork, txs) == before
    cs.close()
