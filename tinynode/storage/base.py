"""The `ChainStore` protocol: what chain state needs from persistent storage.

All writes go through `write(batch)`: one `StoreBatch` is applied atomically (one SQLite
transaction), so a crash leaves either the state before or after it — never a mix. A batch
carries everything one activation step changes: index entries, block bodies, coin additions and
removals, undo records, tx-index changes and the new tip.

Coins are keyed by `coin_key(outpoint)` = txid (internal order) + n (4 bytes big-endian), so
byte order of keys is (txid, n) order, which `iter_coins` follows (used by `utxo_set_hash`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Iterator, Protocol, runtime_checkable

from ..primitives.coin import Coin
from ..primitives.serialize import ByteReader, ser_compact_size
from ..primitives.tx import OutPoint

__all__ = ["ChainStore", "StoreBatch", "IndexRecord", "coin_key", "key_outpoint",
           "serialize_undo", "parse_undo"]


def coin_key(outpoint: OutPoint) -> bytes:
    return outpoint.txid + outpoint.n.to_bytes(4, "big")


def key_outpoint(key: bytes) -> OutPoint:
    return OutPoint(key[:32], int.from_bytes(key[32:36], "big"))


_COIN_HDR = struct.Struct("<qIB").pack


def serialize_undo(coins: list[Coin]) -> bytes:
    """Undo record of a block: the coins its txs spent, in spending order (Core `CBlockUndo`);
    each coin as `Coin.serialize()` (written out here: this runs for every spent coin)."""
    parts = [ser_compact_size(len(coins))]
    append = parts.append
    for c in coins:
        s = c.script_pubkey
        n = len(s)
        append(_COIN_HDR(c.value, c.height, 1 if c.is_coinbase else 0))
        append(bytes((n,)) if n < 0xFD else ser_compact_size(n))
        append(s)
    return b"".join(parts)


def parse_undo(data: bytes) -> list[Coin]:
    r = ByteReader(data)
    n = r.compact_size(len(data))
    out = [Coin.parse(r) for _ in range(n)]
    r.expect_end()
    return out


@dataclass(frozen=True, slots=True)
class IndexRecord:
    """One stored block-index row: 80-byte header, height, chainwork, status bits, sequence id."""

    hash: bytes
    header: bytes
    height: int
    chainwork: int
    status: int
    sequence_id: int = 0


@dataclass(slots=True)
class StoreBatch:
    """Changes applied atomically by `ChainStore.write`.

    coins:   key → Coin (insert or replace) or None (delete)
    undo:    block hash → undo bytes or None (delete)
    txindex: txid → block hash or None (delete)
    """

    index: dict[bytes, IndexRecord] = field(default_factory=dict)
    blocks: dict[bytes, bytes] = field(default_factory=dict)
    coins: dict[bytes, Coin | None] = field(default_factory=dict)
    undo: dict[bytes, bytes | None] = field(default_factory=dict)
    txindex: dict[bytes, bytes | None] = field(default_factory=dict)
    tip: bytes | None = None

    def is_empty(self) -> bool:
        return not (self.index or self.blocks or self.coins or self.undo or self.txindex
                    or self.tip is not None)


@runtime_checkable
class ChainStore(Protocol):
    """Persistent chain storage. Used from one thread only (the chain writer's)."""

    def load_index(self) -> list[IndexRecord]:
        """Every index row, ordered by height (parents before children)."""
        ...

    def get_tip(self) -> bytes | None: ...

    def get_block(self, block_hash: bytes) -> bytes | None: ...

    def has_block(self, block_hash: bytes) -> bool: ...

    def get_undo(self, block_hash: bytes) -> bytes | None: ...

    def get_coin(self, key: bytes) -> Coin | None: ...

    def coins_for_script(self, script_pubkey: bytes) -> list[tuple[bytes, Coin]]:
        """(key, coin) of every unspent coin paying `script_pubkey`, without a scan."""
        ...

    def iter_coins(self) -> Iterator[tuple[bytes, Coin]]:
        """All coins in key order."""
        ...

    def coin_count(self) -> int: ...

    def get_tx_block(self, txid: bytes) -> bytes | None: ...

    def write(self, batch: StoreBatch) -> None:
        """Apply `batch` atomically."""
        ...

    def close(self) -> None: ...
