"""In-memory `ChainStore` for unit tests (same semantics as SQLite, nothing on disk)."""

from __future__ import annotations

from typing import Iterator

from ..primitives.coin import Coin
from .base import IndexRecord, StoreBatch, TxoSpend, next_txindex_stack

__all__ = ["MemoryChainStore"]


class MemoryChainStore:
    def __init__(self, *, txospenderindex: bool = False) -> None:
        self.txospenderindex = txospenderindex
        self._txospender: dict[bytes, TxoSpend] = {}   # coin key → the active-chain spend
        self._index: dict[bytes, IndexRecord] = {}
        self._blocks: dict[bytes, bytes] = {}
        self._coins: dict[bytes, Coin] = {}
        self._by_script: dict[bytes, set[bytes]] = {}
        self._undo: dict[bytes, bytes] = {}
        self._txindex: dict[bytes, tuple[bytes, ...]] = {}  # txid → blocks, latest last
        self._tip: bytes | None = None
        self._reindexing = False
        self.closed = False
        self.writes = 0

    def bind_network(self, magic: bytes) -> None:
        """Nothing to record: no file holds this store's blocks."""

    def load_index(self) -> list[IndexRecord]:
        return sorted(self._index.values(), key=lambda r: (r.height, r.sequence_id))

    def get_tip(self) -> bytes | None:
        return self._tip

    def get_block(self, block_hash: bytes) -> bytes | None:
        return self._blocks.get(block_hash)

    def has_block(self, block_hash: bytes) -> bool:
        return block_hash in self._blocks

    def get_undo(self, block_hash: bytes) -> bytes | None:
        return self._undo.get(block_hash)

    def get_coin(self, key: bytes) -> Coin | None:
        return self._coins.get(key)

    def coins_for_script(self, script_pubkey: bytes) -> list[tuple[bytes, Coin]]:
        keys = self._by_script.get(script_pubkey, ())
        return [(k, self._coins[k]) for k in sorted(keys)]

    def iter_coins(self) -> Iterator[tuple[bytes, Coin]]:
        for k in sorted(self._coins):
            yield k, self._coins[k]

    def coins_disk_size(self) -> int:
        """As SQLiteChainStore: the coins' serialized bytes (nothing is on disk here)."""
        return sum(36 + 13 + len(c.script_pubkey) for c in self._coins.values())

    def coin_count(self) -> int:
        return len(self._coins)

    def get_tx_block(self, txid: bytes) -> bytes | None:
        stack = self._txindex.get(txid)
        return stack[-1] if stack else None

    def get_spender(self, key: bytes) -> TxoSpend | None:
        return self._txospender.get(key) if self.txospenderindex else None

    def write(self, batch: StoreBatch) -> None:
        self._index.update(batch.index)
        self._blocks.update(batch.blocks)
        coins, by_script = self._coins, self._by_script
        for k, c in batch.coins.items():
            old = coins.pop(k, None)
            if old is not None:
                s = by_script.get(old.script_pubkey)
                if s is not None:
                    s.discard(k)
                    if not s:
                        del by_script[old.script_pubkey]
            if c is not None:
                coins[k] = c
                by_script.setdefault(c.script_pubkey, set()).add(k)
        for h, u in batch.undo.items():
            if u is None:
                self._undo.pop(h, None)
            else:
                self._undo[h] = u
        if batch.txindex:
            disconnected = batch.disconnected()
            txindex = self._txindex
            for t, b in batch.txindex.items():
                stack = next_txindex_stack(txindex.get(t, ()), b, disconnected)
                if stack:
                    txindex[t] = stack
                else:
                    txindex.pop(t, None)
        if batch.txospender and self.txospenderindex:
            spends = self._txospender
            for k, sp in batch.txospender.items():
                if sp is None:
                    spends.pop(k, None)
                else:
                    spends[k] = sp
        if batch.tip is not None:
            self._tip = batch.tip
        self.writes += 1

    def prune_blocks(self, records: list[IndexRecord]) -> None:
        for r in records:
            self._index[r.hash] = r
            self._blocks.pop(r.hash, None)
            self._undo.pop(r.hash, None)
        self.writes += 1

    def block_bytes(self) -> int:
        return sum(map(len, self._blocks.values())) + sum(map(len, self._undo.values()))

    def begin_reindex(self, full: bool) -> None:
        """As SQLiteChainStore.begin_reindex."""
        self._coins.clear()
        self._by_script.clear()
        self._undo.clear()
        self._txindex.clear()
        self._txospender.clear()
        if full:
            self._index.clear()
            self._tip = None
            self._reindexing = True
        else:
            self._tip = next((h for h, r in self._index.items() if r.height == 0), None)

    def reindexing(self) -> bool:
        return self._reindexing

    def end_reindex(self) -> None:
        self._reindexing = False

    def stored_block_hashes(self) -> list[bytes]:
        return list(self._blocks)

    def close(self) -> None:
        self.closed = True
