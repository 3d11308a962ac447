"""Coins views (btcd UtxoViewpoint, Core CCoinsViewCache).

`CoinsCache` is Core's CCoinsViewCache over the store with a memory budget (`-dbcache`): it
holds clean coins read from the store and the dirty changes of committed blocks that are not yet
written (a coin added, or None for a coin spent whose row is still in the store). `flush_changes`
hands the dirty entries to the store batch of a chainstate flush (Core `FlushStateToDisk` →
`CCoinsViewCache::Sync`): spent coins created since the last flush (FRESH) never reach the store,
the cost is proportional to the dirty entries only, and every live coin stays cached (warm).
Clean entries are evicted, oldest first, only when the cache is over its budget.

`CoinsView` is a scratch overlay used while checking and applying one activation step; once the
step checks out, its `changes` go into the cache with `apply` (dirty until the next flush); a
step that fails is dropped with its view.

Each entry is two bytes objects — the 36-byte key and the coin packed as value, height, a flags
byte (coinbase; FRESH while the key is dirty) and script (`_ENTRY`) — or None: no object the
cyclic GC tracks, so the dicts holding millions of them stay untracked and Python's full
collections never walk them (with `Coin` objects, or tuples, in them they did: 23 % of the CPU at
100,000 blocks). A `Coin` is made on each read.

The entries are held in `SHARDS` (16) dicts by the key's first byte (a txid byte: uniform), and
the dirty keys in one set per shard: a dict or set that grows allocates its new table (2-4x)
while the old one is still live, and `trim` copies a dict to give back the table share of the
entries it evicted. With one dict, and one set each of dirty, fresh and spent keys (~630,000 of
them between two flushes at the default dbcache), every such step held a whole table twice: the
peak RSS of a 100,000-block sync rose by 32 MiB at one block as the dirty set grew past 629,145
keys. A shard's dict or set grows, or is copied, alone: 1/16 of that. FRESH is a bit of the
packed coin and a spent entry is a None value, so no set of either is kept.

Memory is estimated (Core `DynamicMemoryUsage`, O(1)) as `ENTRY_BYTES` + the packed coin's
length an entry, plus the shards' dicts and dirty sets' own tables as `sys.getsizeof` reports
them beyond an empty cache's (a dict does not shrink when entries leave it, so after an
eviction the table still holds the size it reached until `trim` copies it).
1,000,000 entries with 25-byte scripts, CPython 3.11: 203 bytes an entry by RSS, estimated 202.
"""

from __future__ import annotations

import struct
import sys
from bisect import bisect_left
from itertools import chain
from collections.abc import Iterator, Mapping

from ..primitives.coin import Coin
from ..primitives.tx import OutPoint

__all__ = ["CoinsCache", "CoinsView", "outpoint_key", "ENTRY_BYTES", "SET_SLOT_BYTES",
           "DEFAULT_DBCACHE_MIB", "SHARDS"]

_BE32 = struct.Struct(">I").pack

_MISSING = object()
#: a cache entry: value (int64), height (uint32), flags (one byte: coinbase, fresh), then the script
_ENTRY = struct.Struct("<qIB")
_HDR_SIZE = _ENTRY.size
_pack = _ENTRY.pack
_unpack = _ENTRY.unpack_from


#: the flag byte's bits: the coin is a coinbase's; the (dirty) coin has no store row (FRESH)
_COINBASE = 1
_FRESH = 2
_FLAGS_AT = _HDR_SIZE - 1


def _coin(b: bytes) -> Coin:
    v, h, f = _unpack(b)
    return Coin(v, b[_HDR_SIZE:], h, f & _COINBASE == _COINBASE)

#: Core's -dbcache default (MiB)
DEFAULT_DBCACHE_MIB = 300
#: bytes of one entry's objects besides the packed coin's own bytes and the dict's table: the
#: 36-byte key (69, 80 as pymalloc allocates it in 16-byte steps), the packed coin's bytes header
#: (33) and its rounding to 16 (~8 on average); CPython 3.11
ENTRY_BYTES = 122
#: dicts the entries are spread over, by `key[0] & _SHARD_MASK` (a power of two)
SHARDS = 16
_SHARD_MASK = SHARDS - 1
#: the tables of an empty cache (not counted: a budget of a few coins means those coins)
_EMPTY_DICT = sys.getsizeof({})
_EMPTY_TABLES = SHARDS * (_EMPTY_DICT + sys.getsizeof(set()))
#: kept for callers sizing a set of keys (the sets are counted with `sys.getsizeof`)
SET_SLOT_BYTES = 48
#: over budget, clean coins are evicted (after the flush) down to this share of the budget: a
#: wide margin, so a full cache does not flush again a few blocks later (90% flushed every ~80
#: blocks in `connect.py --dbcache 50`, 50% every ~290)
TRIM_TO = 0.5


def outpoint_key(outpoint: OutPoint) -> bytes:
    """Store key of an outpoint: txid + n (4 bytes big-endian) (= storage.base.coin_key)."""
    return outpoint.txid + _BE32(outpoint.n)


class CoinsCache:
    """Write-back cache of coins over a `ChainStore`, bounded by `budget` bytes (Core dbcache).

    `_shards[key[0] & _SHARD_MASK][key]` is a coin, or None for a coin spent since the last
    flush whose store row still exists (a cache miss would otherwise read it back from the
    store). `_dirty[i]`: the keys of shard i to write at the next flush. A dirty coin the store
    has no row for (spending it just forgets it, Core's FRESH flag) has `_FRESH` set in its flag
    byte; the bit means nothing once the key is clean (a flush leaves it there)."""

    __slots__ = ("_store", "_shards", "_dirty", "_entry_bytes", "budget",
                 "hits", "misses", "flushes", "evicted")

    def __init__(self, store, budget: int = DEFAULT_DBCACHE_MIB << 20) -> None:
        self._store = store
        #: key → packed coin (`_ENTRY` + script) or None, in `SHARDS` dicts by the key's first
        #: byte; bytes only, so the GC does not track them
        self._shards: list[dict[bytes, bytes | None]] = [{} for _ in range(SHARDS)]
        #: per shard, its keys to write at the next flush (None entries: store rows to delete)
        self._dirty: list[set[bytes]] = [set() for _ in range(SHARDS)]
        self._entry_bytes = 0
        self.budget = int(budget)
        self.hits = 0
        self.misses = 0
        self.flushes = 0
        self.evicted = 0

    # --- reads --------------------------------------------------------------------------------
    def get(self, key: bytes) -> Coin | None:
        """The coin at `key` (a new `Coin` each call), or None if it is missing or spent."""
        coins = self._shards[key[0] & _SHARD_MASK]
        if key in coins:
            b = coins[key]
            if b is None:
                return None
            v, h, f = _unpack(b)
            return Coin(v, b[_HDR_SIZE:], h, f & _COINBASE == _COINBASE)
        c = self._store.get_coin(key)
        if c is not None:
            b = coins[key] = _pack(c.value, c.height, c.is_coinbase) + c.script_pubkey
            self._entry_bytes += len(b)
            # reads alone (the mempool's) keep the budget when nothing is dirty; otherwise the
            # chainstate's flush check after each step does (trimming past dirty keys per read
            # would cost a scan)
            if not self.dirty_count and self.usage() > self.budget:
                self.trim(self.budget * TRIM_TO)
        return c

    # --- memory -------------------------------------------------------------------------------
    def usage(self) -> int:
        """Estimated bytes held (Core `DynamicMemoryUsage`): O(1)."""
        sizeof = sys.getsizeof
        shards = self._shards
        return (sum(map(len, shards)) * ENTRY_BYTES + self._entry_bytes + sum(map(sizeof, shards))
                + sum(map(sizeof, self._dirty)) - _EMPTY_TABLES)

    def over_budget(self, extra: int = 0) -> bool:
        return self.usage() + extra > self.budget

    def trim(self, target: float) -> int:
        """Evict clean coins, oldest inserted first, until usage <= target (or only dirty
        entries are left). Dirty entries are never evicted; they leave with a flush.

        Each shard gives its share of the excess (by its share of the entries: the keys are
        uniform, so the shards' oldest entries are the cache's), then, should that fall short
        (shards holding dirty entries), the shards in turn give what is still missing. A shard
        that lost entries is copied at once (a dict keeps its table when entries leave it; the
        copy, in the same order, is sized for what is left), before the next one is trimmed.
        Still over `target` then, the other shards are copied too (their tables may hold the
        room of entries that left them at a flush)."""
        excess = self.usage() - target
        if excess <= 0:
            return 0
        shards = self._shards
        total = sum(map(len, shards)) or 1
        copied = [False] * SHARDS
        evicted = 0
        freed = 0
        # bounded: two passes over the shards, each a pass over at most every entry of one
        for last_pass in (False, True):
            for i, coins in enumerate(shards):
                want = excess - freed if last_pass else excess * len(coins) / total
                if want <= 0 or not coins:
                    continue
                n, got = self._evict(i, want)
                evicted += n
                freed += got
                copied[i] = copied[i] or n > 0
                if freed >= excess:
                    break
            if freed >= excess:
                break
        if self.usage() > target:
            for i, done in enumerate(copied):
                if not done and sys.getsizeof(shards[i]) > _EMPTY_DICT:
                    shards[i] = dict(shards[i])
        self.evicted += evicted
        return evicted

    def _evict(self, i: int, want: float) -> tuple[int, int]:
        """Evict the oldest clean entries of shard `i` until `want` bytes are freed (or none is
        left); copy the shard if any left. Returns (entries, bytes) evicted."""
        coins, dirty = self._shards[i], self._dirty[i]
        victims = []
        freed = 0
        for k in coins:
            if k in dirty:
                continue
            victims.append(k)
            c = coins[k]
            freed += ENTRY_BYTES + (len(c) if c is not None else 0)
            if freed >= want:
                break
        if not victims:
            return 0, 0
        pop = coins.pop
        sb = 0
        for k in victims:
            c = pop(k)
            if c is not None:
                sb += len(c)
        self._entry_bytes -= sb
        n = len(victims)
        del victims
        self._shards[i] = dict(coins)
        return n, freed

    # --- writes -------------------------------------------------------------------------------
    def apply(self, changes: dict[bytes, Coin | None]) -> None:
        """Take a committed step's coin changes as dirty entries (Core `BatchWrite` into the
        cache): a spent coin created since the last flush (fresh) is forgotten; a coin added
        where the store has no row (not cached as a pending spend, nor as a clean coin) is
        fresh, and a fresh coin replaced stays fresh."""
        shards, dirties = self._shards, self._dirty
        sb = 0
        for k, c in changes.items():
            i = k[0] & _SHARD_MASK
            coins = shards[i]
            dirty = dirties[i]
            old = coins.get(k, _MISSING)
            if c is None:
                if old is None or old is _MISSING:
                    coins[k] = None
                    dirty.add(k)
                    continue
                sb -= len(old)
                if old[_FLAGS_AT] & _FRESH and k in dirty:
                    del coins[k]
                    dirty.discard(k)
                else:
                    coins[k] = None
                    dirty.add(k)
            else:
                if old is _MISSING:
                    flags = _FRESH
                elif old is None:       # a pending spend undone (a disconnect restores it)
                    flags = 0
                else:
                    sb -= len(old)
                    flags = old[_FLAGS_AT] & _FRESH if k in dirty else 0
                b = coins[k] = _pack(c.value, c.height, flags | c.is_coinbase) + c.script_pubkey
                sb += len(b)
                dirty.add(k)
        self._entry_bytes += sb

    def flush_changes(self) -> "Mapping[bytes, Coin | None]":
        """The dirty entries as store changes (None = delete the row), in key order (the store
        writes them in that order): a
        read-only mapping over the cache that makes each `Coin` when the store reads it (a
        flush of a million coins does not hold a million `Coin`s at once; `key_ordered` tells
        the store not to sort a copy of the keys). Write it before the
        cache changes again, then call `mark_flushed` once the store write holding it committed."""
        return _FlushChanges(self._shards, sorted(chain.from_iterable(self._dirty)))

    def mark_flushed(self) -> None:
        """The store now holds every dirty entry: spent entries leave the cache, live ones stay
        (clean, warm); then clean coins are evicted if the cache is still over budget."""
        shards, dirties = self._shards, self._dirty
        for i in range(SHARDS):
            coins = shards[i]
            for k in [k for k in dirties[i] if coins[k] is None]:
                del coins[k]
            dirties[i] = set()      # each shard's set freed before the next one is read
        self.flushes += 1
        if self.usage() > self.budget:
            self.trim(self.budget * TRIM_TO)

    @property
    def dirty_count(self) -> int:
        return sum(map(len, self._dirty))

    def clear(self) -> None:
        """Drop every entry, dirty ones included (only after a failed store: nothing is kept)."""
        for i in range(SHARDS):
            self._shards[i] = {}
            self._dirty[i] = set()
        self._entry_bytes = 0

    def __len__(self) -> int:
        return sum(map(len, self._shards))


class _FlushChanges(Mapping):
    """The dirty entries of a `CoinsCache` as a read-only key → `Coin | None` mapping, in key
    order (see `CoinsCache.flush_changes`)."""

    __slots__ = ("_shards", "_keys")

    #: iteration is in key order already: the store writes it without sorting a copy of the keys
    key_ordered = True

    def __init__(self, shards: list[dict[bytes, bytes | None]], keys: list[bytes]) -> None:
        self._shards = shards
        self._keys = keys

    def __getitem__(self, key: bytes) -> Coin | None:
        b = self._shards[key[0] & _SHARD_MASK][key]
        return None if b is None else _coin(b)

    def __contains__(self, key: object) -> bool:
        keys = self._keys
        i = bisect_left(keys, key)  # type: ignore[arg-type]
        return i < len(keys) and keys[i] == key

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)


class CoinsView:
    """Scratch overlay: `changes[key]` is the new coin, or None = delete from the store.

    `fresh` keys were created in this view and are absent from the store, so spending them
    again inside the view just forgets them (Core's FRESH flag).
    """

    __slots__ = ("base", "changes", "fresh")

    def __init__(self, base: "CoinsCache | CoinsView") -> None:
        self.base = base
        self.changes: dict[bytes, Coin | None] = {}
        self.fresh: set[bytes] = set()

    def get(self, key: bytes) -> Coin | None:
        changes = self.changes
        if key in changes:
            return changes[key]
        return self.base.get(key)

    def spend(self, key: bytes) -> Coin | None:
        """Remove and return the coin (None if missing or already spent)."""
        changes = self.changes
        if key in changes:
            c = changes[key]
            if c is None:
                return None
            if key in self.fresh:
                del changes[key]
                self.fresh.discard(key)
            else:
                changes[key] = None
            return c
        c = self.base.get(key)
        if c is not None:
            changes[key] = None
        return c

    def spend_found(self, key: bytes, coin: Coin) -> Coin | None:
        """`spend(key)` for a key whose coin `get(key)` returned earlier; None if spent since."""
        changes = self.changes
        if key in changes:
            if changes[key] is None:
                return None
            if key in self.fresh:
                del changes[key]
                self.fresh.discard(key)
                return coin
        changes[key] = None
        return coin

    def add(self, key: bytes, coin: Coin) -> None:
        """Add a coin known to be absent from this view (the caller checked, e.g. BIP30)."""
        changes = self.changes
        if key not in changes:
            self.fresh.add(key)
        changes[key] = coin

    def merge_into(self, parent: "CoinsView") -> None:
        """Apply this view's changes to `parent` (this view must sit directly on `parent`)."""
        pchanges, pfresh, fresh = parent.changes, parent.fresh, self.fresh
        for k, c in self.changes.items():
            if c is None:
                if k in pfresh:
                    del pchanges[k]
                    pfresh.discard(k)
                else:
                    pchanges[k] = None
            else:
                if k in fresh and k not in pchanges:
                    pfresh.add(k)
                pchanges[k] = c
