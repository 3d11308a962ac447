"""ChainState: the synchronous heart of the node (Core `Chainstate` + `ChainstateManager`).

Pipeline (btcd blockchain/doc.go):

    process_headers(headers)        check_block_header + contextual_check_block_header, add index entries
    process_block(block)            duplicate / known-invalid fast path → parent unknown? keep in the
                                    bounded unconnected-blocks store → header checks → check_block +
                                    contextual_check_block → store body (HAVE_DATA) → activate_best_chain
    activate_best_chain()           pick the most-work candidate (first seen wins ties), find the fork
                                    with the active chain, disconnect to it and connect the new branch on
                                    a scratch coins view; each block gets the ConnectBlock checks; the
                                    whole step is ONE store transaction, then events are emitted.
                                    A failing block is marked FAILED (descendants FAILED_PARENT) and the
                                    choice is made again, so the node settles on the best valid chain.

Everything here runs on one thread (the chain writer's); nothing is async.
"""

from __future__ import annotations

import logging
import time as _time
from dataclasses import dataclass
from typing import Callable, Iterable

from ..consensus.errors import RejectReason, ValidationError
from ..params import ChainParams
from ..primitives.block import Block, BlockHeader
from ..primitives.coin import Coin
from ..primitives.tx import OutPoint, Tx
from .events import ChainEvent
from .index import BlockIndexEntry, BlockStatus

log = logging.getLogger(__name__)

__all__ = ["ChainState", "BlockResult"]


@dataclass(frozen=True, slots=True)
class BlockResult:
    """Outcome of `process_block`.

    status: "connected" (the block is now on the active chain), "accepted" (valid so far, stored on
    a side branch), "orphan" (parent unknown; kept in the unconnected-blocks store), "duplicate"
    (already known), "invalid" (`error` says why; `error.mutated` = the hash was not marked).
    """

    hash: bytes
    status: str
    error: ValidationError | None = None
    entry: BlockIndexEntry | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def reason(self) -> RejectReason | None:
        return self.error.reason if self.error else None


class ChainState:
    """Owns the block index, the active chain and the coins view over a `ChainStore`.

    `now` is the clock used for the 2-hour future-time rule (injectable for tests).
    """

    def __init__(self, params: ChainParams, store, now: Callable[[], float] = _time.time) -> None:
        raise NotImplementedError

    # --- read API --------------------------------------------------------------------------
    @property
    def tip(self) -> BlockIndexEntry: ...
    @property
    def height(self) -> int: ...
    @property
    def best_header(self) -> BlockIndexEntry: ...
    def get_entry(self, block_hash: bytes) -> BlockIndexEntry | None: ...
    def get_block(self, block_hash: bytes) -> Block | None: ...
    def get_block_hash(self, height: int) -> bytes | None: ...
    def block_locator(self, entry: BlockIndexEntry | None = None) -> list[bytes]: ...
    def find_fork(self, locator: Iterable[bytes]) -> BlockIndexEntry: ...
    def headers_after(self, locator: Iterable[bytes], stop_hash: bytes | None = None,
                      limit: int = 2000) -> list[BlockHeader]: ...
    def get_coin(self, outpoint: OutPoint) -> Coin | None: ...
    def get_tx(self, txid: bytes) -> tuple[Tx, bytes, int] | None: ...
    def coins_for_script(self, script_pubkey: bytes) -> list[tuple[OutPoint, Coin]]: ...
    def next_bits(self, prev_entry: BlockIndexEntry, time: int) -> int: ...
    def median_time_past(self, entry: BlockIndexEntry | None = None) -> int: ...
    def chain_tips(self) -> list[tuple[BlockIndexEntry, str]]: ...
    def utxo_set_hash(self) -> bytes: ...

    # --- write API -------------------------------------------------------------------------
    def process_headers(self, headers: list[BlockHeader]) -> list[BlockIndexEntry]: ...
    def process_block(self, block: Block) -> BlockResult: ...
    def activate_best_chain(self) -> None: ...
    def invalidate_block(self, block_hash: bytes) -> None: ...
    def reconsider_block(self, block_hash: bytes) -> None: ...
    def subscribe(self, callback: Callable[[ChainEvent], None]) -> None: ...
    def close(self) -> None: ...
