"""The `ChainStore` protocol: what chain state needs from persistent storage.

All writes go through `write(batch)`: one `StoreBatch` is applied atomically (one SQLite
transaction), so a crash leaves either the state before or after it — never a mix. A batch
carries everything one activation step changes: index entries, block bodies, coin additions and
removals, undo records, tx-index changes and the new tip.

Coins are keyed by `coin_key(outpoint)` = txid (internal order) + n (4 bytes big-endian), so
byte order of keys is (txid, n) order, which `iter_coins` follows (used by `utxo_set_hash`).

The tx index maps the full 32-byte txid to the active-chain block holding the tx (Core's
`TxIndex`, a `CDiskTxPos` keyed by the full txid). A txid can be in more than one active-chain
block: before BIP34 a coinbase could repeat an earlier one once that one's outputs were spent
(BIP30 allows it; mainnet blocks 91842 and 91880 repeat coinbases of 91812 and 91722). As Core's
txindex, the latest connected block wins: `get_tx_block` returns it. Unlike Core, the earlier
blocks are kept underneath (a stack per txid), so disconnecting the latest block in a reorg
restores the entry of the earlier block instead of losing it (`next_txindex_stack`).

Pruning (Core's -prune) deletes old block bodies and undo records with `prune_blocks`; the
index rows stay (with HAVE_DATA cleared), as Core keeps the block index of pruned blocks. The tx
index keeps its rows: RPC only uses it with --txindex, which Core (and tinynode) refuse with
pruning.

The spender index (Core's `-txospenderindex`, optional: a store opened with
`txospenderindex=True`) maps `coin_key(outpoint)` to the txid of the active-chain tx spending it
and the block holding that tx (`TxoSpend`). Rows are written with the block that connects the
spend and deleted with the block that disconnects it, in the same store transaction, so the index
is always at the store's tip. An outpoint is spent at most once in an active chain, so one row per
outpoint suffices; the exception is an output of a BIP30-era duplicate txid (mainnet blocks 91842
and 91880), which could be created and spent twice: there the latest spend wins, and
disconnecting it removes the row (Core keeps both spends; no chain since BIP34 has such outputs).
Core refuses -txospenderindex with pruning (the index must read the spending txs' blocks).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Iterator, Protocol, runtime_checkable

from ..primitives.coin import Coin
from ..primitives.serialize import ByteReader, ser_compact_size
from ..primitives.tx import OutPoint

__all__ = ["ChainStore", "StoreBatch", "IndexRecord", "TxoSpend", "coin_key", "key_outpoint",
           "serialize_undo", "parse_undo", "next_txindex_stack"]


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


@dataclass(frozen=True, slots=True)
class TxoSpend:
    """Where an output was spent in the active chain (Core's `TxoSpender`): the spending tx's
    txid and the hash of the block holding it."""

    txid: bytes
    block_hash: bytes


@dataclass(slots=True)
class StoreBatch:
    """Changes applied atomically by `ChainStore.write`.

    coins:   key → Coin (insert or replace) or None (delete)
    undo:    block hash → undo bytes (written when the block is connected, replacing the record a
             former connection left) or None (delete: a direct store caller; a chainstate keeps
             a disconnected block's record, as Core keeps its rev data and BLOCK_HAVE_UNDO, and
             only pruning deletes it)
    disconnects: blocks disconnected from the active chain (Core `DisconnectBlock`) whose last
             step in the batch was that disconnection; the tx index uses them
    txindex: full txid → block hash (the tx is in that newly connected block) or None (the tx's
             block was disconnected); applied per txid by `next_txindex_stack`
    """

    index: dict[bytes, IndexRecord] = field(default_factory=dict)
    blocks: dict[bytes, bytes] = field(default_factory=dict)
    coins: dict[bytes, Coin | None] = field(default_factory=dict)
    undo: dict[bytes, bytes | None] = field(default_factory=dict)
    txindex: dict[bytes, bytes | None] = field(default_factory=dict)
    txospender: dict[bytes, TxoSpend | None] = field(default_factory=dict)
    tip: bytes | None = None
    disconnects: set[bytes] = field(default_factory=set)

    def disconnected(self) -> frozenset[bytes]:
        """Hashes of the blocks this batch disconnects (`disconnects`, and for a direct store
        caller the blocks whose undo it deletes)."""
        return frozenset(self.disconnects).union(h for h, u in self.undo.items() if u is None)

    def is_empty(self) -> bool:
        return not (self.index or self.blocks or self.coins or self.undo or self.txindex
                    or self.txospender or self.disconnects or self.tip is not None)


def next_txindex_stack(stack: tuple[bytes, ...], block_hash: bytes | None,
                       disconnected: frozenset[bytes]) -> tuple[bytes, ...]:
    """The blocks holding one txid after a batch: `stack` lists them oldest first (the last one is
    what `get_tx_block` returns); `block_hash` is the batch's entry for the txid.

    A batch may merge several connect/disconnect steps, and keeps only the last entry per txid,
    so the entry alone cannot say which stored blocks went away; the batch's disconnected blocks
    do. Every block of `disconnected` leaves the stack (its txs are no longer confirmed there), then
    a connected `block_hash` goes on top: latest write wins, as Core's txindex on a duplicate txid.
    A None entry with no disconnected block in the batch (a direct store caller removing an
    entry) removes the latest block only.
    """
    kept = tuple(h for h in stack if h not in disconnected) if disconnected else stack
    if block_hash is None:
        return kept[:-1] if kept and not disconnected else kept
    if kept and kept[-1] == block_hash:
        return kept
    return tuple(h for h in kept if h != block_hash) + (block_hash,)


@runtime_checkable
class ChainStore(Protocol):
    """Persistent chain storage. Used from one thread only (the chain writer's)."""

    def bind_network(self, magic: bytes) -> None:
        """The network's message start, which block files begin each record with; a store
        holding another network's blocks raises."""
        ...

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

    def get_tx_block(self, txid: bytes) -> bytes | None:
        """The latest active-chain block holding the tx with this full txid (None: not indexed)."""
        ...

    def get_spender(self, key: bytes) -> TxoSpend | None:
        """The active-chain spend of the output `key` (spender index; None: unspent in the active
        chain, or the store keeps no spender index: see its `txospenderindex` attribute)."""
        ...

    def write(self, batch: StoreBatch) -> None:
        """Apply `batch` atomically."""
        ...

    def prune_blocks(self, records: list[IndexRecord]) -> None:
        """Core `PruneBlockFilesManual`/`UnlinkPrunedFiles` at block granularity, atomically:
        write the index rows (their HAVE_DATA bit cleared) and delete those blocks' bodies and
        undo records. Headers and index rows stay."""
        ...

    def block_bytes(self) -> int:
        """Bytes of stored block bodies and undo records (Core `CalculateCurrentUsage`)."""
        ...

    def close(self) -> None: ...
