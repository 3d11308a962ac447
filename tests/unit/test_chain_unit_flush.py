"""Staged chain state: steps are staged whole and written in one transaction by flush();
the store is always at a consistent tip; coins views merge correctly; the coins cache keeps
its memory budget and writes its coins only when over it, periodically or at a flush.

The chains are Bitcoin regtest blocks on `base_chain()` (test_chain_unit_helpers), and each
node that processes them is checked by Core's kernel (tests/framework/oracle.py): same verdict,
same tip after every block, whatever the flush policy."""

from __future__ import annotations

from tinynode.chain.chainstate import ChainState
from tinynode.chain.coins import ENTRY_BYTES, CoinsCache, CoinsView, outpoint_key
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


class CountingStore(MemoryChainStore):
    """A memory store that counts coin reads."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def get_coin(self, key):
        self.reads += 1
        return super().get_coin(key)


def test_cache_budget_evicts_only_clean_coins():
    store = CountingStore()
    store.write(StoreBatch(coins={bytes([i]) * 36: c(i + 1) for i in range(200)}))
    budget = 50 * (ENTRY_BYTES + 1)
    cache = CoinsCache(store, budget)
    for i in range(200):
        assert cache.get(bytes([i]) * 36) == c(i + 1)
        assert cache.usage() <= budget
    assert 0 < len(cache) <= 50 and cache.evicted >= 150
    # dirty entries stay whatever the budget, until a flush hands them to the store
    cache.apply({bytes([i]) * 36: c(7) for i in range(100)})
    assert cache.dirty_count == 100 and cache.over_budget()
    changes = cache.flush_changes()
    assert changes == {bytes([i]) * 36: c(7) for i in range(100)}
    store.write(StoreBatch(coins=changes))
    cache.mark_flushed()
    assert cache.dirty_count == 0 and cache.usage() <= budget
    assert all(cache.get(bytes([i]) * 36) == c(7) for i in range(100))


def test_cache_flush_writes_only_what_survives():
    """Core's FRESH/DIRTY: a coin created and spent between flushes never reaches the store; a
    spent store coin is deleted at the flush and is not read back before it."""
    store = CountingStore()
    store.write(StoreBatch(coins={b"old": c(1)}))
    cache = CoinsCache(store)
    assert cache.get(b"old") == c(1) and store.reads == 1
    cache.apply({b"new": c(2), b"tmp": c(3)})
    cache.apply({b"old": None, b"tmp": None})
    assert cache.get(b"old") is None and cache.get(b"tmp") is None
    assert store.reads == 2            # "tmp" is unknown to the cache again: one store read
    assert cache.flush_changes() == {b"old": None, b"new": c(2)}
    store.write(StoreBatch(coins=cache.flush_changes()))
    cache.mark_flushed()
    assert store.get_coin(b"old") is None and store.get_coin(b"new") == c(2)
    assert len(cache) == 1 and cache.get(b"new") == c(2)          # warm after the flush
    # re-adding a coin whose spend is still pending is not fresh: the flush must write it
    cache.apply({b"new": None})
    cache.apply({b"new": c(4)})
    assert cache.flush_changes() == {b"new": c(4)}
    # ... and the flush keeps it cached (only spends still pending leave the cache)
    cache.apply({b"gone": c(5)})
    assert list(cache.flush_changes()) == [b"gone", b"new"]      # in key order
    store.write(StoreBatch(coins=cache.flush_changes()))
    cache.mark_flushed()
    cache.apply({b"gone": None})
    assert cache.flush_changes() == {b"gone": None}
    store.write(StoreBatch(coins=cache.flush_changes()))
    cache.mark_flushed()
    assert len(cache) == 1 and cache.get(b"new") == c(4) and store.get_coin(b"gone") is None


def _spend_chain(n: int):
    """`n` blocks on BASE, each spending one mature BASE coinbase (coins created and spent)."""
    B = Builder(base=BASE)
    out, prev = [], BASE[-1]
    for i in range(n):
        t = spend(BASE[i].txs[0], 49 * COIN)
        prev = B.next(prev, (t,), fees=COIN)
        out.append(prev)
    return out


def test_over_budget_flushes_and_stays_consistent(tmp_path):
    """A cache over its budget writes the coins with the tip after the step (the store tip then
    equals the chain tip), evicts down to the budget, and the store matches a node that kept
    everything in memory; a restart reads the same state."""
    p = tmp_path / "chain.sqlite"
    budget = 2 * (ENTRY_BYTES + 8)       # two coins: every step goes over it
    cs = on_base(ChainState(PARAMS, SQLiteChainStore(p), dbcache=budget))
    ref = on_base(ChainState(PARAMS, MemoryChainStore()))
    flushes = cs.coins.flushes
    for blk in _spend_chain(8):
        assert cs.process_block(blk).status == "connected"
        assert ref.process_block(blk).status == "connected"
        assert cs.store.get_tip() == blk.hash        # over budget: every step wrote its coins
        assert cs.coins.usage() <= budget and cs.coins.dirty_count == 0
    assert cs.coins.flushes >= flushes + 8
    assert cs.utxo_set_hash() == ref.utxo_set_hash()
    cs.close()
    again = ChainState(PARAMS, SQLiteChainStore(p), dbcache=budget)
    assert again.tip.hash == ref.tip.hash and again.utxo_set_hash() == ref.utxo_set_hash()
    again.close()
    ref.close()


def test_under_budget_defers_coins_and_a_kill_loses_nothing(tmp_path):
    """Under budget each commit writes the blocks (bodies, index, undo) but not the coins: the
    store's tip stays at the last chainstate flush. A second opener (as after kill -9 now)
    connects the committed blocks above that tip again and reaches the same state; after a
    flush (or close) the store's tip is the chain's."""
    p = tmp_path / "chain.sqlite"
    cs = on_base(ChainState(PARAMS, SQLiteChainStore(p)))   # commits every step (flush_blocks=1)
    blocks = _spend_chain(6)
    for blk in blocks:
        assert cs.process_block(blk).status == "connected"
        assert cs.staged_steps == 0 and cs.store.has_block(blk.hash)
    assert cs.store.get_tip() == BASE[-1].hash               # coins not written yet
    assert cs.coins.dirty_count > 0
    t0 = BASE[0].txs[0].txid
    assert cs.get_coin(OutPoint(t0, 0)) is None
    assert cs.get_tx(blocks[0].txs[1].txid)[1] == blocks[0].hash   # tx index from the pending part
    killed = ChainState(PARAMS, SQLiteChainStore(p))          # replays the 6 committed blocks
    assert killed.tip.hash == blocks[-1].hash
    assert killed.utxo_set_hash() == cs.utxo_set_hash()       # (this flushes `killed`)
    killed.close()
    cs.flush()
    assert cs.store.get_tip() == blocks[-1].hash and cs.coins.dirty_count == 0
    assert cs.store.get_coin(outpoint_key(OutPoint(t0, 0))) is None
    after = ChainState(PARAMS, SQLiteChainStore(p))
    assert after.tip.hash == blocks[-1].hash and after.utxo_set_hash() == cs.utxo_set_hash()
    assert after.get_tx(blocks[0].txs[1].txid)[1] == blocks[0].hash
    after.close()
    cs.close()


def test_periodic_chainstate_flush():
    store = MemoryChainStore()
    cs = on_base(ChainState(PARAMS, store))
    cs.coins_flush_seconds = 0.0          # the interval has always passed: every commit is full
    for blk in _spend_chain(2):
        cs.process_block(blk)
        assert store.get_tip() == blk.hash and cs.coins.dirty_count == 0
    cs.close()


def test_reorg_across_an_unflushed_tip_keeps_undo(tmp_path):
    """A block disconnected while the store's tip is still at or above it has its undo record
    in the store (a restart may have to disconnect it), and keeps it after the coins are
    written too (Core keeps a disconnected block's rev data and BLOCK_HAVE_UNDO)."""
    p = tmp_path / "chain.sqlite"
    cs = on_base(ChainState(PARAMS, SQLiteChainStore(p)))
    a = _spend_chain(2)
    for blk in a:
        assert cs.process_block(blk).status == "connected"
    cs.flush()                                           # store tip: a[1]
    B = Builder(base=BASE)
    fork = B.chain(BASE[-1], 3)                          # more work: the node reorgs onto it
    for blk in fork:
        cs.process_block(blk)
    assert cs.tip.hash == fork[-1].hash
    undo_a1 = cs.store.get_undo(a[-1].hash)
    assert cs.store.get_tip() == a[-1].hash and undo_a1 is not None
    # as after kill -9 now: the restart disconnects a[1], a[0] with that undo and connects fork
    killed = ChainState(PARAMS, SQLiteChainStore(p))
    assert killed.tip.hash == fork[-1].hash and killed.utxo_set_hash() == cs.utxo_set_hash()
    killed.close()
    cs.close()
    after = ChainState(PARAMS, SQLiteChainStore(p))
    assert after.store.get_tip() == fork[-1].hash
    assert bytes(after.store.get_undo(a[-1].hash)) == bytes(undo_a1)
    after.close()
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

    def on_event(ev):
        if type(ev).__name__ == "TipChanged":   # the block is committed when its event is seen
            seen.append((ev.new_tip.hash, store.has_block(ev.new_tip.hash), cs.staged_steps))
    cs.subscribe(on_event)
    B = Builder(base=BASE)
    blocks = B.chain(BASE[-1], 2)
    for b in blocks:
        cs.process_block(b)
    assert seen == [(blocks[0].hash, True, 0), (blocks[1].hash, True, 0)]
    cs.close()


def test_staged_bytes_are_bounded():
    store = MemoryChainStore()
    cs = on_base(ChainState(PARAMS, store, flush_blocks=1000, flush_seconds=1e9))
    cs.flush_bytes = 1  # every accepted body exceeds it: each step is written at once
    B = Builder(base=BASE)
    blocks = B.chain(BASE[-1], 3)
    for b in blocks:
        cs.process_block(b)
        assert store.has_block(b.hash) and cs.staged_steps == 0   # committed (coins: cache)
    cs.close()


def test_sqlite_writes_the_caches_key_ordered_flush_mapping(tmp_path):
    """The coins cache's flush mapping iterates in key order (`key_ordered`): the SQLite store
    writes it as it is, inserts and deletes alike; a plain dict is sorted by the store."""
    store = SQLiteChainStore(tmp_path / "chain.sqlite")
    try:
        store.write(StoreBatch(coins={b"b-old": c(1), b"d-old": c(2)}))   # a plain dict
        cache = CoinsCache(store)
        assert cache.get(b"b-old") == c(1) and cache.get(b"d-old") == c(2)
        cache.apply({b"c-new": c(3), b"a-new": c(4), b"b-old": None, b"e-tmp": c(5)})
        cache.apply({b"e-tmp": None, b"d-old": c(6)})
        changes = cache.flush_changes()
        assert changes.key_ordered and list(changes) == [b"a-new", b"b-old", b"c-new", b"d-old"]
        store.write(StoreBatch(coins=changes))
        cache.mark_flushed()
        assert [(k, coin.value) for k, coin in store.iter_coins()] == [
            (b"a-new", 4), (b"c-new", 3), (b"d-old", 6)]
        assert store.get_coin(b"b-old") is None and store.get_coin(b"e-tmp") is None
    finally:
        store.close()
