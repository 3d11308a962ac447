"""Coins views (btcd UtxoViewpoint, Core CCoinsViewCache).

`CoinsCache` is a bounded, write-through cache of clean coins over the store: the store is always
current after each commit, so evicting never loses data. `CoinsView` is a scratch overlay used
while checking and applying one activation step; its `changes` become `StoreBatch.coins`, and
after the commit `CoinsCache.apply(changes)` updates the cache.
"""

from __future__ import annotations

import struct
from itertools import islice

from ..primitives.coin import Coin
from ..primitives.tx import OutPoint

__all__ = ["CoinsCache", "CoinsView", "outpoint_key"]

_BE32 = struct.Struct(">I").pack


def outpoint_key(outpoint: OutPoint) -> bytes:
    """Store key of an outpoint: txid + n (4 bytes big-endian) (= storage.base.coin_key)."""
    return outpoint.txid + _BE32(outpoint.n)


class CoinsCache:
    """Bounded cache of coins over a `ChainStore` (entries are never dirty)."""

    __slots__ = ("_store", "_coins", "max_entries", "hits", "misses")

    def __init__(self, store, max_entries: int = 200_000) -> None:
        self._store = store
        self._coins: dict[bytes, Coin] = {}
        self.max_entries = max_entries
        self.hits = 0
        self.misses = 0

    def get(self, key: bytes) -> Coin | None:
        c = self._coins.get(key)
        if c is not None:
            return c
        c = self._store.get_coin(key)
        if c is not None:
            self._coins[key] = c
            if len(self._coins) > self.max_entries:
                self._evict()
        return c

    def apply(self, changes: dict[bytes, Coin | None]) -> None:
        coins = self._coins
        for k, c in changes.items():
            if c is None:
                coins.pop(k, None)
            else:
                coins[k] = c
        if len(coins) > self.max_entries:
            self._evict()

    def _evict(self) -> None:
        coins = self._coins
        n = len(coins) - self.max_entries + self.max_entries // 10
        for k in list(islice(coins, n)):
            del coins[k]

    def clear(self) -> None:
        self._coins.clear()

    def __len__(self) -> int:
        return len(self._coins)


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
