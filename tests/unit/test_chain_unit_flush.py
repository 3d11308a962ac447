"""Staged chain state: steps are staged whole and written in one transaction by flush();
the store is always at a consistent tip; coins views merge correctly; the cache is bounded.

The chains are Bitcoin regtest blocks on `base_chain()` (test_chain_unit_helpers), and each
node that processes them is checked by Core's kernel (tests/framework/oracle.py): same verdict,
same tip after every block, whatever the flush policy."""

from __future__ import annotations

from tinynode.chain.chainstate import ChainState
from tinynode.chain.coins import CoinsCache, CoinsView
from tinynode.primitives.coin import Coin
from tinynode.primitives.tx import COIN, OutPoint
from tinynode.storage.base import StoreBatch
from tinynode.storage.memory import MemoryChainStore
from tinynode.storage.sqlite import SQLiteChainStore

from tests.framework.oracle import with_oracle
from tests.unit.test_chain_unit_helpers import BASE_HEIGHT as H0, PARAMS, Builder, base_chain, spend

BASE = base_chain()


def on_base(cs):
    """`cs` checked by the kernel, with `BASE` connected (and flushed)."""
    cs = with_oracle(cs)
    for blk in BASE:
        assert cs.process_block(blk).status == "connected"
    cs.flush()
    return cs


def c(v: int) -> Coin:
    return Coin(v, b"\x51", 1, False)


def test_view_merge_semantics():
    store = MemoryChainStore()
    store.write(StoreBatch(coins={b"old": c(1), b"old2": c(2)}))
    parent = CoinsView(CoinsCache(store))
    parent.add(b"p", c(3))                      # fresh in parent
    child = CoinsView(parent)
    assert child.spend(b"p") == c(3)            # spend a parent-fresh coin
    assert child.spend(b"old") == c(1)          # spend a store coin
    child.add(b"new", c(4))
    assert child.spend(b"missing") is None
    child.merge_into(parent)
    assert parent.changes == {b"old": None, b"new": c(4)}
    assert parent.fresh == {b"new"}
    # re-adding a coin the parent deleted is not fresh (the store still has a row to replace)
    child = CoinsView(parent)
    child.add(b"old", c(5))
    child.merge_into(parent)
    assert parent.changes[b"old"] == c(5) and b"old" not in parent.fresh
    # spending a fresh coin in the parent forgets it
    child = CoinsView(parent)
    child.spend(b"new")
    child.merge_into(parent)
    assert b"new" not in parent.changes and not parent.fresh


def test_cache_is_bounded():
    store = MemoryChainStore()
    store.write(StoreBatch(coins={bytes([i]) * 36: c(i + 1) for i in range(200)}))
    cache = CoinsCache(store, max_entries=50)
    for i in range(200):
        assert cache.get(bytes([i]) * 36) == c(i + 1)
        assert len(cache) <= 50
    cache.apply({bytes([i]) * 36: c(7) for i in range(100)})
    assert len(cache) <= 50


def test_store_lags_by_unflushed_steps_and_stays_consistent(tmp_path):
    p = tmp_path / "chain.sqlite"
    cs = on_base(ChainState(PARAMS, SQLiteChainStore(p), flush_blocks=1000, flush_seconds=1e9))
    B = Builder(base=BASE)
    blocks = B.chain(BASE[-1], 6)
    for b in blocks[:3]:
        assert cs.process_block(b).status == "connected"
    cs.flush()
    t = spend(BASE[0].txs[0], 49 * COIN)
    b7 = B.next(blocks[-1], (t,), fees=COIN)
    for b in (*blocks[3:], b7):
        assert cs.process_block(b).status == "connected"
    # reads through the chainstate see the staged state
    assert cs.get_coin(OutPoint(BASE[0].txs[0].txid, 0)) is None
    assert cs.get_tx(t.txid)[1] == b7.hash
    assert cs.get_block(b7.hash) == b7
    # a second opener (as after kill -9 now) sees the last flushed, consistent tip
    other = ChainState(PARAMS, SQLiteChainStore(p))
    assert other.tip.hash == blocks[2].hash
    assert other.get_coin(OutPoint(BASE[0].txs[0].txid, 0)) is not None
    other.store.close()
    cs.flush()
    other = ChainState(PARAMS, SQLiteChainStore(p))
    assert other.tip.hash == b7.hash and other.utxo_set_hash() == cs.utxo_set_hash()
    other.close()
    cs.close()


def test_store_wide_reads_flush_first():
    store = MemoryChainStore()
    cs = on_base(ChainState(PARAMS, store, flush_blocks=1000, flush_seconds=1e9))
    B = Builder(base=BASE)
    for b in B.chain(BASE[-1], 3):
        cs.process_block(b)
    assert store.get_tip() == BASE[-1].hash
    assert len(cs.coins_for_script(b"\x51")) == H0 + 3
    assert store.get_tip() == cs.tip.hash
    cs.close()


def test_default_policy_commits_before_events():
    store = MemoryChainStore()
    cs = on_base(ChainState(PARAMS, store))
    seen = []
    cs.subscribe(lambda ev: seen.append((type(ev).__name__, store.get_tip())))
    B = Builder(base=BASE)
    blocks = B.chain(BASE[-1], 2)
    for b in blocks:
        cs.process_block(b)
    assert [t for _, t in seen if _ == "TipChanged"] == [blocks[0].hash, blocks[1].hash]
    cs.close()


def test_staged_bytes_are_bounded():
    store = MemoryChainStore()
    cs = on_base(ChainState(PARAMS, store, flush_blocks=1000, flush_seconds=1e9))
    cs.flush_bytes = 1  # every accepted body exceeds it: each step is written at once
    B = Builder(base=BASE)
    blocks = B.chain(BASE[-1], 3)
    for b in blocks:
        cs.process_block(b)
        assert store.get_tip() == b.hash
    cs.close()
