"""The coins cache's entries live in `SHARDS` dicts by the key's first byte (so a dict growth or
a trim's copy holds one shard's table twice, not the whole cache's): reads, writes, the flush
mapping and eviction see one cache, the byte estimate stays exact, and a trim evicts the oldest
clean coins of every shard and leaves no table sized for entries that are gone."""

from __future__ import annotations

import sys

from tinynode.chain.coins import ENTRY_BYTES, SHARDS, CoinsCache
from tinynode.primitives.coin import Coin
from tinynode.storage.base import StoreBatch
from tinynode.storage.memory import MemoryChainStore


def c(v: int, script: bytes = b"\x51") -> Coin:
    return Coin(v, script, 1, False)


def key(shard: int, i: int) -> bytes:
    """A 36-byte key whose first byte puts it in `shard`."""
    return bytes([(i * SHARDS + shard) & 0xFF]) + i.to_bytes(4, "big") + bytes(31)


def recount(cache: CoinsCache) -> int:
    """`usage()` recomputed from the shards' contents (what the running count must equal)."""
    shards = cache._shards
    entries = sum(len(s) for s in shards)
    packed = sum(len(b) for s in shards for b in s.values() if b is not None)
    tables = sum(map(sys.getsizeof, shards)) - SHARDS * sys.getsizeof({})
    sets = sum(map(sys.getsizeof, cache._dirty)) - SHARDS * sys.getsizeof(set())
    return entries * ENTRY_BYTES + packed + tables + sets


def test_keys_go_to_the_shard_of_their_first_byte_and_read_back():
    cache = CoinsCache(MemoryChainStore())
    keys = [key(s, i) for i in range(5) for s in range(SHARDS)]
    cache.apply({k: c(n + 1, b"\x51" * (n % 7)) for n, k in enumerate(keys)})
    assert [len(s) for s in cache._shards] == [5] * SHARDS
    assert all(k in cache._shards[k[0] % SHARDS] for k in keys)
    assert len(cache) == 5 * SHARDS and cache.dirty_count == 5 * SHARDS
    assert [cache.get(k).value for k in keys] == list(range(1, 5 * SHARDS + 1))
    changes = cache.flush_changes()
    assert list(changes) == sorted(keys)            # one key order across the shards
    assert changes[keys[17]] == c(18, b"\x51" * (17 % 7))


def test_usage_is_exact_through_apply_spend_flush_and_trim():
    store = MemoryChainStore()
    old = {key(s, 100 + s): c(7, b"\x76\xa9" * s) for s in range(SHARDS)}
    store.write(StoreBatch(coins=old))
    cache = CoinsCache(store, budget=1 << 30)
    assert all(cache.get(k) == coin for k, coin in old.items())          # clean, read from the store
    assert cache.usage() == recount(cache)
    cache.apply({key(s, i): c(i, b"\x00" * i) for s in range(SHARDS) for i in range(1, 40)})
    cache.apply({**{key(s, 3): None for s in range(SHARDS)},           # fresh: forgotten
                 **{k: None for k in list(old)[:4]}})                   # store rows: pending spends
    assert cache.usage() == recount(cache)
    store.write(StoreBatch(coins=cache.flush_changes()))
    cache.mark_flushed()
    assert cache.dirty_count == 0 and len(cache) == SHARDS * 38 + SHARDS - 4
    assert cache.usage() == recount(cache)
    target = cache.usage() // 3
    evicted = cache.trim(target)
    assert evicted > 0 and cache.usage() == recount(cache) and cache.usage() <= target


def test_trim_evicts_the_oldest_of_every_shard_and_copies_the_tables():
    store = MemoryChainStore()
    n = 60
    coins = {key(s, i): c(i + 1, b"\x51" * 25) for i in range(n) for s in range(SHARDS)}
    store.write(StoreBatch(coins=coins))
    cache = CoinsCache(store, budget=1 << 30)
    for i in range(n):                      # read in age order: i = 0 is the oldest everywhere
        for s in range(SHARDS):
            assert cache.get(key(s, i)).value == i + 1
    full = cache.usage()
    target = full // 2
    evicted = cache.trim(target)
    assert cache.usage() <= target and cache.evicted == evicted
    kept = [sorted(int.from_bytes(k[1:5], "big") for k in sh) for sh in cache._shards]
    # each shard gave up its oldest entries, about its share: what is left is its newest
    assert all(k == list(range(n - len(k), n)) for k in kept)
    assert all(abs(len(k) - len(kept[0])) <= 2 for k in kept) and 0 < len(kept[0]) < n
    # every table was copied to the size of what is left
    assert [sys.getsizeof(sh) for sh in cache._shards] == [sys.getsizeof(dict(sh)) for sh in cache._shards]
    assert cache.get(key(5, 0)) == c(1, b"\x51" * 25)        # evicted: read back from the store


def test_trim_takes_what_a_shard_of_dirty_coins_cannot_give_from_the_others():
    store = MemoryChainStore()
    clean = {key(s, i): c(i + 1) for i in range(20) for s in range(1, SHARDS)}
    store.write(StoreBatch(coins=clean))
    cache = CoinsCache(store, budget=1 << 30)
    for k in clean:
        cache.get(k)
    cache.apply({key(0, i): c(500 + i) for i in range(300)})    # shard 0: dirty only
    target = cache.usage() - 40 * (ENTRY_BYTES + 14)
    evicted = cache.trim(target)
    assert cache.usage() <= target and len(cache._shards[0]) == 300 and evicted >= 40
    assert all(cache.get(key(0, i)).value == 500 + i for i in range(300))


def test_a_flush_that_empties_shards_leaves_no_table_behind():
    """Spent coins leave their shards at the flush; a shard emptied so keeps its table until a
    trim, which resets it even when no coin is left to evict (a two-coin budget stays kept)."""
    store = MemoryChainStore()
    budget = 2 * (ENTRY_BYTES + 14)
    cache = CoinsCache(store, budget)
    for round_ in range(SHARDS):
        cache.apply({key(round_, 1): c(1)})
        store.write(StoreBatch(coins=cache.flush_changes()))
        cache.mark_flushed()
        cache.apply({key(round_, 1): None})
        store.write(StoreBatch(coins=cache.flush_changes()))
        cache.mark_flushed()
        assert len(cache) == 0 and cache.usage() == recount(cache) <= budget
        # at most one emptied shard's table is left (160 bytes fit the budget, two do not)
        assert sum(sys.getsizeof(sh) > sys.getsizeof({}) for sh in cache._shards) <= 1
    assert store.coin_count() == 0


def test_fresh_is_a_bit_of_the_dirty_coin_and_means_nothing_once_flushed():
    """Core's FRESH without a set: a coin added and spent between two flushes is forgotten (also
    after being replaced); a coin that went to the store at a flush, spent later, is a row to
    delete, though its packed bytes still carry the bit; a coinbase flag survives the bit."""
    store = MemoryChainStore()
    cache = CoinsCache(store)
    a, b, cb = key(1, 1), key(2, 2), key(3, 3)
    cache.apply({a: c(1), b: c(2), cb: Coin(50, b"\x51", 7, True)})
    assert cache.get(cb) == Coin(50, b"\x51", 7, True)
    cache.apply({a: c(11)})                         # a fresh coin replaced stays fresh
    cache.apply({a: None})
    assert cache.get(a) is None and cache.dirty_count == 2 and len(cache) == 2
    assert dict(cache.flush_changes()) == {b: c(2), cb: Coin(50, b"\x51", 7, True)}
    store.write(StoreBatch(coins=cache.flush_changes()))
    cache.mark_flushed()
    assert store.get_coin(b) == c(2) and store.get_coin(a) is None
    cache.apply({b: None, cb: None})                # flushed: their rows must be deleted
    assert dict(cache.flush_changes()) == {b: None, cb: None}
    store.write(StoreBatch(coins=cache.flush_changes()))
    cache.mark_flushed()
    assert store.get_coin(b) is None and store.get_coin(cb) is None
    assert len(cache) == 0 and cache.dirty_count == 0 and cache.usage() == recount(cache)
