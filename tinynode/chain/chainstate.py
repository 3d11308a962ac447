"""ChainState: the synchronous heart of the node (Core `Chainstate` + `ChainstateManager`).

Pipeline (btcd blockchain/doc.go):

    process_headers(headers)        check_block_header + contextual_check_block_header, add index entries
    process_block(block)            duplicate / known-invalid fast path → parent unknown? keep in the
                                    bounded unconnected-blocks store → header checks → check_block +
                                    contextual_check_block → store body (HAVE_DATA) → activate_best_chain
    activate_best_chain()           pick the most-work candidate (first seen wins ties), find the fork
                                    with the active chain, disconnect to it and connect the new branch on
                                    a scratch coins view; each block gets the ConnectBlock checks; a step
                                    that checks out is staged whole (else nothing of it is kept) with
                                    its events. `flush()` writes all staged steps in ONE store
                                    transaction (every `flush_blocks` steps / `flush_seconds`, when the
                                    writer is idle, before store-wide reads, at close), then delivers
                                    their events: no subscriber sees a block that is not on disk.
                                    Any store exception is fatal (FatalStorageError, Core AbortNode).
                                    A failing block is marked FAILED (descendants FAILED_PARENT) and the
                                    choice is made again, so the node settles on the best valid chain.

Everything here runs on one thread (the chain writer's); nothing is async.
"""

from __future__ import annotations

import hashlib
import logging
import struct
import time as _time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Iterable

from ..consensus.block_checks import (
    check_block, check_block_header, check_witness_malleation, contextual_check_block,
    contextual_check_block_header, script_flags_for_height,
)
from ..consensus.errors import RejectReason, ValidationError
from ..consensus.pow import block_work, median_time_past, next_work_required
from ..consensus.sigops import inputs_witness_sigops
from ..consensus.tx_checks import (
    check_tx_input_coins, legacy_sigops, p2sh_sigops, precomputed_tx_data,
    sequence_locks, sequence_locks_satisfied,
)
from ..params import ChainParams
from ..primitives.block import HEADER_SIZE, Block, BlockHeader
from ..primitives.hashes import hash_to_hex
from ..primitives.coin import Coin, make_coin
from ..primitives.serialize import DecodeError, ser_compact_size
from ..primitives.tx import OutPoint, Tx
from ..storage.base import IndexRecord, StoreBatch, TxoSpend, key_outpoint, parse_undo, serialize_undo
from .active import ActiveChain
from ..script.cache import ScriptExecutionCache
from .checkqueue import ScriptCheck, ScriptCheckQueue, default_script_check_threads
from .coins import DEFAULT_DBCACHE_MIB, CoinsCache, CoinsView, outpoint_key
from .events import BlockConnected, BlockDisconnected, ChainEvent, TipChanged
from .index import BlockIndex, BlockIndexEntry, BlockStatus

log = logging.getLogger(__name__)

__all__ = ["ChainState", "BlockResult", "FatalStorageError", "FATAL_ERROR_MESSAGE"]

R = RejectReason
S = BlockStatus
_BE32 = struct.Struct(">I").pack
_MAX_SCRIPT_SIZE = 10_000

#: blocks whose parent is unknown, kept until the parent arrives (Core's old orphan-block limit)
MAX_UNCONNECTED_BLOCKS = 750
#: Core MIN_BLOCKS_TO_KEEP: a pruning node keeps the bodies and undo of the last 288 blocks
MIN_BLOCKS_TO_KEEP = 288
#: Core PRUNE_TARGET_MANUAL (-prune=1: prune only on pruneblockchain)
PRUNE_TARGET_MANUAL = (1 << 64) - 1
MAX_UNCONNECTED_BYTES = 64 * 1024 * 1024
#: connect at most this many blocks per store transaction while catching up
MAX_BLOCKS_PER_COMMIT = 100
#: staged (uncommitted) block bodies are written once they reach this many bytes (the staged
#: coins are bounded by the coins cache's budget)
MAX_DIRTY_BLOCK_BYTES = 64 * 1024 * 1024
#: the coins cache and the chainstate's indexes are written at least this often (Core writes
#: its chainstate every 50-70 minutes, DATABASE_WRITE_INTERVAL; shorter here so a crash
#: replays few blocks at the next start)
COINS_FLUSH_SECONDS = 600.0
#: recently seen Block objects kept to avoid re-parsing for events and reorgs
_RECENT_BLOCKS = 64
#: bytes of one tx-index entry waiting for the coins flush (`_pending_index_bytes`): the txid's
#: bytes object (80 allocated) and a dict slot's share (~45); the value is the block's hash,
#: one object per block
_TXINDEX_ENTRY_BYTES = 125
#: a spender-index entry: the outpoint key (80), the TxoSpend (64) and a slot's share (~45)
_TXOSPEND_ENTRY_BYTES = 190


#: Core's user-facing wording for AbortNode / FatalError (node/abort.cpp, validation.cpp)
FATAL_ERROR_MESSAGE = "A fatal internal error occurred, see debug.log for details"


class FatalStorageError(RuntimeError):
    """The chain store failed (a read or write raised): Core's `AbortNode` / `FatalError`.

    The in-memory chain state may be ahead of the store or half-updated, so nothing may use it
    any more: the chainstate refuses further work, the writer stops taking jobs and the node
    shuts down; a restart comes up on the last committed tip. `what` names the store call,
    `__cause__` is the store's own exception."""

    def __init__(self, what: str, cause: BaseException | None = None) -> None:
        self.what = what
        detail = f"{what}: {type(cause).__name__}: {cause}" if cause is not None else what
        super().__init__(f"{FATAL_ERROR_MESSAGE} ({detail})")


class _GuardedStore:
    """The chain store as ChainState sees it: any exception from the store becomes fatal
    (Core's `CCoinsViewErrorCatcher` for reads, `AbortNode` after a failed write/flush). Once
    one store call failed, every later call fails the same way."""

    __slots__ = ("_store", "_on_error", "failure")

    def __init__(self, store, on_error: Callable[[str, BaseException], "FatalStorageError"]) -> None:
        self._store = store
        self._on_error = on_error
        self.failure: FatalStorageError | None = None

    def _fail(self, what: str, e: BaseException) -> FatalStorageError:
        if self.failure is None:
            self.failure = self._on_error(what, e)
        return self.failure

    def _check(self) -> None:
        if self.failure is not None:
            raise self.failure

    def load_index(self):
        self._check()
        try:
            return self._store.load_index()
        except Exception as e:
            raise self._fail("load_index", e) from e

    def get_tip(self):
        self._check()
        try:
            return self._store.get_tip()
        except Exception as e:
            raise self._fail("get_tip", e) from e

    def get_block(self, block_hash: bytes):
        self._check()
        try:
            return self._store.get_block(block_hash)
        except Exception as e:
            raise self._fail("get_block", e) from e

    def has_block(self, block_hash: bytes):
        self._check()
        try:
            return self._store.has_block(block_hash)
        except Exception as e:
            raise self._fail("has_block", e) from e

    def get_undo(self, block_hash: bytes):
        self._check()
        try:
            return self._store.get_undo(block_hash)
        except Exception as e:
            raise self._fail("get_undo", e) from e

    def get_coin(self, key: bytes):
        self._check()
        try:
            return self._store.get_coin(key)
        except Exception as e:
            raise self._fail("get_coin", e) from e

    def coins_for_script(self, script_pubkey: bytes):
        self._check()
        try:
            return self._store.coins_for_script(script_pubkey)
        except Exception as e:
            raise self._fail("coins_for_script", e) from e

    def iter_coins(self):
        self._check()
        try:
            yield from self._store.iter_coins()
        except Exception as e:
            raise self._fail("iter_coins", e) from e

    def coin_count(self):
        self._check()
        try:
            return self._store.coin_count()
        except Exception as e:
            raise self._fail("coin_count", e) from e

    def get_tx_block(self, txid: bytes):
        self._check()
        try:
            return self._store.get_tx_block(txid)
        except Exception as e:
            raise self._fail("get_tx_block", e) from e

    def get_spender(self, key: bytes):
        self._check()
        try:
            return self._store.get_spender(key)
        except Exception as e:
            raise self._fail("get_spender", e) from e

    def write(self, batch: StoreBatch) -> None:
        self._check()
        try:
            self._store.write(batch)
        except Exception as e:
            raise self._fail("write", e) from e

    def prune_blocks(self, records) -> None:
        self._check()
        try:
            self._store.prune_blocks(records)
        except Exception as e:
            raise self._fail("prune_blocks", e) from e

    def block_bytes(self) -> int:
        self._check()
        try:
            return self._store.block_bytes()
        except Exception as e:
            raise self._fail("block_bytes", e) from e


@dataclass(frozen=True, slots=True)
class UTXOStats:
    """What `gettxoutsetinfo` reports (Core `CCoinsStats`)."""

    txouts: int
    transactions: int
    total_amount: int
    bogosize: int
    hash_serialized: bytes | None  # Core hash_serialized_3, internal byte order; None if not asked
    muhash: bytes | None = None    # Core's MuHash3072 of the set (hash_type=muhash), internal order
    disk_size: int = 0             # Core nDiskSize: the coins' estimated size on disk, bytes


@dataclass(frozen=True, slots=True)
class BlockResult:
    """Outcome of `process_block`.

    status: "connected" (the block is on the active chain), "accepted" (valid so far, stored on a
    side branch or waiting for its parent's data), "orphan" (parent unknown; kept in the bounded
    unconnected-blocks store), "duplicate" (already had it), "invalid" (`error` says why;
    `error.mutated` = the hash was not marked invalid).
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


def _one_tip_change(events: list[ChainEvent]) -> list[ChainEvent]:
    """The events of one commit with a single TipChanged at the end (from the first step's old
    tip to the last step's new tip, every disconnect counted), like Core's UpdatedBlockTip once
    per ActivateBestChain call: a sync committing a thousand steps at once announces its new tip
    once, not a thousand times."""
    tips = [ev for ev in events if isinstance(ev, TipChanged)]
    if len(tips) <= 1:
        return events
    out: list[ChainEvent] = [ev for ev in events if not isinstance(ev, TipChanged)]
    out.append(TipChanged(tips[0].old_tip, tips[-1].new_tip, sum(t.disconnected for t in tips)))
    return out


def _spendable(spk: bytes) -> bool:
    """Core `CScript::IsUnspendable` negated: OP_RETURN outputs and oversize scripts never enter the UTXO set."""
    return not ((spk and spk[0] == 0x6A) or len(spk) > _MAX_SCRIPT_SIZE)


class ChainState:
    """Owns the block index, the active chain and the coins view over a `ChainStore`.

    `now` is the clock used for the 2-hour future-time rule (injectable for tests).
    `script_checks=False` skips only the script interpreter (every other rule still runs).
    `script_check_threads`: worker threads that verify a block's input scripts alongside the
    calling thread (Core `-par`; `chain/checkqueue.py`); None = one per extra core, 0 = inline.
    `script_check_mode`: what those workers are (`checkqueue.SCRIPT_CHECK_MODES`).
    """

    def __init__(self, params: ChainParams, store, now: Callable[[], float] = _time.time, *,
                 dbcache: int = DEFAULT_DBCACHE_MIB << 20, script_checks: bool = True,
                 max_unconnected_blocks: int = MAX_UNCONNECTED_BLOCKS,
                 flush_blocks: int = 1, flush_seconds: float = 0.5,
                 script_check_threads: int | None = None, activate: bool = True,
                 script_check_mode: str = "threads") -> None:
        self.params = params
        #: the store itself (for read-only callers outside the writer's jobs); ChainState uses
        #: `_store`, which turns any store exception into a FatalStorageError
        self.store = store
        # the store's block files begin each record with the network's magic; a store of
        # another network is refused here (StoreError), before anything is read from it
        store.bind_network(params.magic)
        self._store = _GuardedStore(store, self._store_failed)
        self._now = now
        self.script_checks = script_checks
        self.script_check_queue = ScriptCheckQueue(
            default_script_check_threads() if script_check_threads is None else script_check_threads,
            mode=script_check_mode)
        #: txs whose scripts the mempool verified (Core's script execution cache)
        self.script_cache = ScriptExecutionCache()
        self.index = BlockIndex()
        self.active = ActiveChain()
        #: blocks come from the store's own block files (-reindex, Core's ImportBlocks): their
        #: bytes are not stored again (set by chain/reindex.py while it loads them)
        self.importing_stored_blocks = False
        #: Core -dbcache is the memory of the coins cache and the databases' caches together
        #: (Core takes its coins-db cache out of it): the coins cache gets -dbcache less the
        #: store's page cache (SQLite's 64 MiB), at least half of it. Its budget also covers the
        #: tx-index entries that wait for the coins flush (`_pending_index_bytes`).
        page_cache = int(getattr(store, "page_cache_bytes", 0))
        self.coins = CoinsCache(self._store, max(dbcache - page_cache, dbcache // 2))
        #: the store keeps the spender index (Core -txospenderindex): connect/disconnect write it
        self.txospenderindex = bool(getattr(store, "txospenderindex", False))
        self._best_header: BlockIndexEntry | None = None
        self._candidates: set[BlockIndexEntry] = set()
        self._subscribers: list[Callable[[ChainEvent], None]] = []
        #: events of staged steps, delivered by `flush()` once the commit holding them succeeded
        self._unflushed_events: list[ChainEvent] = []
        self._seq = 1
        self._unconnected: OrderedDict[bytes, Block] = OrderedDict()
        self._unconnected_by_prev: dict[bytes, set[bytes]] = {}
        self._unconnected_bytes = 0
        self._max_unconnected = max_unconnected_blocks
        self._recent: OrderedDict[bytes, Block] = OrderedDict()
        self._sigop_counts: OrderedDict[bytes, list[int]] = OrderedDict()
        self._block_errors: dict[bytes, ValidationError] = {}
        self._closed = False
        #: Changes not yet written to the store (Core's dbcache): every activation step is staged
        #: here whole, and `flush()` writes all staged steps in ONE store transaction. The store
        #: is therefore always at some consistent tip; a crash loses at most the unflushed steps.
        self._dirty = StoreBatch()
        #: the coins of every connected step: each step's view is applied to the cache as it is
        #: staged (dirty entries, written by the next chainstate flush)
        self._dirty_view = self.coins
        #: What committed blocks changed besides their bodies, index rows and undo records, not
        #: yet in the store (their coins are the dirty entries of `self.coins`): tx index, spender
        #: index, the disconnected blocks (for the tx index) and the tip. A chainstate flush writes them with the coins, so
        #: the store's tip always matches its coins (Core's coins-db best block); blocks
        #: committed above it are connected again at the next start (Core's ActivateBestChain
        #: after a crash).
        self._pending = StoreBatch()
        self._last_coins_flush = _time.monotonic()
        self.coins_flush_seconds = COINS_FLUSH_SECONDS
        self._dirty_steps = 0
        self._dirty_bytes = 0
        self._last_flush = _time.monotonic()
        self.flush_blocks = flush_blocks
        #: hard bounds on staged memory whatever the policy (Core's dbcache idea)
        self.flush_bytes = MAX_DIRTY_BLOCK_BYTES
        self.flush_seconds = flush_seconds
        #: Core -prune: 0 off, PRUNE_TARGET_MANUAL, or a target in bytes (`configure_prune`)
        self.prune_target = 0
        #: Core's nPruneAfterHeight: no pruning below this chain height
        self.prune_after_height = 1000
        #: Core m_have_pruned: some block of the index lost its data to pruning
        self.have_pruned = False
        self._usage: int | None = None   # stored block + undo bytes, known once auto-pruning
        self._load(activate)

    # ==========================================================================================
    # loading
    # ==========================================================================================
    def _load(self, activate: bool = True) -> None:
        """Load the index and tip from the store, then connect any stored blocks of a better
        chain (Core's ActivateBestChain at start); `activate=False` leaves that to the caller
        (chain/reindex.py, which logs its progress)."""
        records = self._store.load_index()
        if not records:
            self._init_genesis()
            return
        index = self.index
        index_get = index.get
        statuses: dict[int, S] = {}    # the few distinct status values, made once each
        from_stored = BlockIndexEntry.from_stored
        for r in records:
            raw = bytes(r.header)
            if len(raw) != HEADER_SIZE:
                raise DecodeError(f"a header is {HEADER_SIZE} bytes, got {len(raw)}")
            prev = index_get(raw[4:36])
            if prev is None and r.height != 0:
                log.warning("index row %s without parent, skipped", hash_to_hex(bytes(r.hash)))
                continue
            st = statuses.get(r.status)
            if st is None:
                st = statuses[r.status] = S(r.status)
            e = from_stored(raw, bytes(r.hash), prev, r.height, r.chainwork, st, r.sequence_id)
            index.add(e)
            if r.sequence_id >= self._seq:
                self._seq = r.sequence_id + 1
            if e.have_data and (prev is None or prev.has_chain_data):
                e.has_chain_data = True
        tip_hash = self._store.get_tip()
        tip = index.get(tip_hash) if tip_hash else None
        if tip is None:
            raise RuntimeError("chain store has an index but no valid tip")
        self.active.set_tip(tip)
        self._restore_pruned_chain_data(records)
        self._recompute_best_header()
        self._rebuild_candidates()
        log.info("chain loaded: %d index entries, tip %s at height %d", len(index), tip.hash_hex, tip.height)
        if activate:
            self.activate_best_chain()

    def _restore_pruned_chain_data(self, records: list[IndexRecord]) -> None:
        """After pruning, blocks of the active chain have no data but were connected (Core keeps
        their nChainTx): they and the stored blocks above them still count as having chain data."""
        tip = self.active.tip
        e = tip
        pruned = False
        while e is not None and not e.has_chain_data:   # bounded: one step per height
            e.has_chain_data = True
            pruned = pruned or not e.have_data
            e = e.prev
        if not pruned:
            return
        self.have_pruned = True
        for r in records:   # parents first: forks built on the restored chain
            x = self.index.get(r.hash)
            if (x is not None and not x.has_chain_data and x.have_data and x.prev is not None
                    and x.prev.has_chain_data):
                x.has_chain_data = True

    def _init_genesis(self) -> None:
        g = self.params.genesis
        e = BlockIndexEntry(g.header, None, 0, block_work(g.header.bits),
                            S.HEADER_VALID | S.HAVE_DATA | S.VALID_SCRIPTS, 0)
        e.has_chain_data = True
        self.index.add(e)
        batch = StoreBatch()
        batch.index[e.hash] = self._record(e)
        if not self._store.has_block(e.hash):   # a -reindex finds it in the block files
            batch.blocks[e.hash] = g.serialize()
        batch.tip = e.hash
        # Core: the genesis coinbase is not spendable; nothing enters the coins set or tx index.
        self._store.write(batch)
        self.active.set_tip(e)
        self._best_header = e

    def _stage(self, batch: StoreBatch, view: CoinsView | None = None) -> None:
        """Stage one step's changes (and its coins view, which must sit on the dirty view)."""
        d = self._dirty
        if batch.index:
            d.index.update(batch.index)
        if batch.blocks:
            d.blocks.update(batch.blocks)
        if batch.undo:
            if d.disconnects:
                d.disconnects.difference_update(batch.undo)   # connected again after its disconnection
            d.undo.update(batch.undo)
        if batch.disconnects:
            d.disconnects.update(batch.disconnects)
        if batch.txindex:
            d.txindex.update(batch.txindex)
        if batch.txospender:
            d.txospender.update(batch.txospender)
        if batch.tip is not None:
            d.tip = batch.tip
        if view is not None:
            self.coins.apply(view.changes)
            self._dirty_steps += 1

    def _maybe_flush(self) -> None:
        """After each step (Core `FlushStateToDisk(IF_NEEDED)`): commit the staged steps by the
        commit policy; write the coins too when the cache with the staged changes is over its
        budget or the chainstate flush interval has passed."""
        if self.coins.over_budget(self._pending_index_bytes()):
            self.flush()
        elif (self._dirty_steps >= self.flush_blocks
                or self._dirty_bytes >= self.flush_bytes
                or _time.monotonic() - self._last_flush >= self.flush_seconds):
            self._commit(False)

    def _pending_index_bytes(self) -> int:
        """Memory of the tx-index and spender-index entries staged or pending until the next
        coins flush (they are written with the coins, so they grow with the dirty coins):
        a txid key (65 bytes, 80 allocated) and its dict slot; a spender entry's outpoint key,
        TxoSpend object and slot."""
        d, p = self._dirty, self._pending
        return ((len(d.txindex) + len(p.txindex)) * _TXINDEX_ENTRY_BYTES
                + (len(d.txospender) + len(p.txospender)) * _TXOSPEND_ENTRY_BYTES)

    def flush(self) -> None:
        """Write everything: the staged steps and the coins cache's dirty entries with the tip,
        in one store transaction (Core `FlushStateToDisk(ALWAYS)`: periodic, at shutdown, before
        store-wide reads); the cache stays warm. Then deliver the events of the staged steps."""
        self._commit(True)

    def commit(self) -> None:
        """Commit the staged steps (block bodies, index rows, undo) and deliver their events;
        the coins are written too only when the cache is over budget or the chainstate flush
        interval has passed (Core `FlushStateToDisk(PERIODIC)`)."""
        self._commit(False)

    def _commit(self, full: bool) -> None:
        """One store transaction (Core `FlushStateToDisk`). A failing write is fatal
        (FatalStorageError, Core's AbortNode): the staged steps and their events are never
        used, and the chainstate refuses any further work.

        Not full: the staged steps' block bodies, index rows and undo records are written; their
        coin changes are already dirty entries of the cache (applied as each step was staged),
        and their tx-index, spender-index, disconnect marks and tip wait in `_pending`. Full: all of that with the cache's dirty entries
        (cost proportional to them, never to the UTXO set or the chain)."""
        self._check_usable()
        d = self._dirty
        p = self._pending
        if d.txindex:
            p.txindex.update(d.txindex)
            d.txindex = {}
        if d.txospender:
            p.txospender.update(d.txospender)
            d.txospender = {}
        if d.undo and p.disconnects:
            p.disconnects.difference_update(d.undo)   # connected again since: not a disconnect
        if d.disconnects:
            # the tx index's marks, written with the tx-index entries they resolve; the undo
            # records of disconnected blocks stay (Core keeps rev data), so nothing here has to
            # wait for the coins to keep a restart able to disconnect the store's tip
            p.disconnects.update(d.disconnects)
            d.disconnects = set()
        if d.tip is not None:
            p.tip = d.tip
            d.tip = None
        now = _time.monotonic()
        full = (full or self.prune_target != 0 or self.coins.over_budget(self._pending_index_bytes())
                or now - self._last_coins_flush >= self.coins_flush_seconds)
        if full:
            d.coins = self.coins.flush_changes()
            d.txindex, d.txospender, d.tip = p.txindex, p.txospender, p.tip
            d.disconnects = p.disconnects
        added = sum(map(len, d.blocks.values())) if self.prune_target else 0
        if not d.is_empty():
            self._store.write(d)
        if full:
            self.coins.mark_flushed()
            self._pending = StoreBatch()
            self._last_coins_flush = now
        self._dirty = StoreBatch()
        self._dirty_steps = 0
        self._dirty_bytes = 0
        self._last_flush = now
        if self._unflushed_events:
            events, self._unflushed_events = self._unflushed_events, []
            self._deliver(_one_tip_change(events))
        if self.prune_target:
            self._auto_prune(added)

    @property
    def aborted(self) -> FatalStorageError | None:
        """The store failure that made this chainstate unusable, or None."""
        return self._store.failure

    @property
    def staged_steps(self) -> int:
        """Activation steps connected in memory but not yet committed to the store."""
        return self._dirty_steps

    def _check_usable(self) -> None:
        failure = self._store.failure
        if failure is not None:
            raise failure

    def _store_failed(self, what: str, cause: BaseException) -> FatalStorageError:
        """Core `AbortNode`: log the store failure once and make it the chainstate's fate."""
        err = FatalStorageError(f"chain store {what} failed", cause)
        log.critical("*** %s", err, exc_info=cause)
        # the staged steps never reached the store: their events must never be seen
        self._unflushed_events = []
        return err

    @staticmethod
    def _record(e: BlockIndexEntry) -> IndexRecord:
        return IndexRecord(e.hash, e.header_bytes, e.height, e.chainwork, int(e.status), e.sequence_id)

    # ==========================================================================================
    # read API
    # ==========================================================================================
    @property
    def tip(self) -> BlockIndexEntry:
        return self.active.tip  # type: ignore[return-value]

    @property
    def height(self) -> int:
        return self.active.height

    @property
    def best_header(self) -> BlockIndexEntry:
        return self._best_header or self.tip

    @property
    def genesis(self) -> BlockIndexEntry:
        return self.active.genesis  # type: ignore[return-value]

    def get_entry(self, block_hash: bytes) -> BlockIndexEntry | None:
        return self.index.get(block_hash)

    def is_active(self, entry: BlockIndexEntry) -> bool:
        return self.active.contains(entry)

    def get_block(self, block_hash: bytes) -> Block | None:
        self._check_usable()
        b = self._recent.get(block_hash)
        if b is not None:
            return b
        raw = self._dirty.blocks.get(block_hash)
        if raw is None:
            raw = self._store.get_block(block_hash)
        if raw is None:
            return None
        b = Block.from_bytes(bytes(raw))
        self._remember(b)
        return b

    def read_block_bytes(self, block_hash: bytes) -> bytes | None:
        """The block's serialized bytes as stored (Core `ReadRawBlock`): staged by a step not yet
        written to the store, else read from the block files, never from the parsed blocks kept
        in memory, so a block whose file has gone reads as missing, as in Core (None)."""
        self._check_usable()
        raw = self._dirty.blocks.get(block_hash)
        if raw is None:
            raw = self._store.get_block(block_hash)
        return bytes(raw) if raw is not None else None

    def get_undo(self, block_hash: bytes) -> bytes | None:
        """The block's undo record: staged by a step not yet written to the store, else stored
        (None without one)."""
        self._check_usable()
        raw = self._dirty.undo.get(block_hash)
        if raw is None:
            raw = self._store.get_undo(block_hash)
        return raw

    def has_block(self, block_hash: bytes) -> bool:
        """We have this block's data (stored or waiting for its parent)."""
        e = self.index.get(block_hash)
        return (e is not None and e.have_data) or block_hash in self._unconnected

    def get_block_hash(self, height: int) -> bytes | None:
        e = self.active[height]
        return e.hash if e is not None else None

    def get_ancestor(self, entry: BlockIndexEntry, height: int) -> BlockIndexEntry | None:
        """Ancestor of `entry` at `height`, O(1) once the walk reaches the active chain."""
        if height < 0 or height > entry.height:
            return None
        active = self.active
        e = entry
        while e.height > height and not active.contains(e):
            e = e.prev  # type: ignore[assignment]
        if e.height == height:
            return e
        return active[height]

    def block_locator(self, entry: BlockIndexEntry | None = None) -> list[bytes]:
        return self.active.locator(entry)

    def find_fork(self, locator: Iterable[bytes]) -> BlockIndexEntry:
        """First locator hash on our active chain (Core `FindForkInGlobalIndex`); genesis if none."""
        active = self.active
        for h in locator:
            e = self.index.get(h)
            if e is None:
                continue
            if active.contains(e):
                return e
            if e.height >= active.height and self.get_ancestor(e, active.height) is active.tip:
                return active.tip  # type: ignore[return-value]
        return self.genesis

    def headers_after(self, locator: Iterable[bytes], stop_hash: bytes | None = None,
                      limit: int = 2000) -> list[BlockHeader]:
        """Headers on the active chain after the locator's fork point, up to `stop_hash` or `limit`
        (Core's getheaders handler). An empty locator means: just `stop_hash`'s header."""
        locator = list(locator)
        if not locator:
            e = self.index.get(stop_hash) if stop_hash else None
            return [e.header] if e is not None else []
        fork = self.find_fork(locator)
        out = []
        e = self.active.next(fork)
        while e is not None and len(out) < limit:
            out.append(e.header)
            if stop_hash is not None and e.hash == stop_hash:
                break
            e = self.active.next(e)
        return out

    def get_coin(self, outpoint: OutPoint) -> Coin | None:
        if self._store.failure is not None:
            raise self._store.failure
        return self._dirty_view.get(outpoint_key(outpoint))

    def get_tx(self, txid: bytes) -> tuple[Tx, bytes, int] | None:
        """(tx, block hash, height) of a tx in an active-chain block (tx index)."""
        self._check_usable()
        d, p = self._dirty.txindex, self._pending.txindex
        bh = d[txid] if txid in d else p[txid] if txid in p else self._store.get_tx_block(txid)
        if bh is None:
            return None
        bh = bytes(bh)
        e = self.index.get(bh)
        block = self.get_block(bh)
        if e is None or block is None:
            return None
        for tx in block.txs:
            if tx.txid == txid:
                return tx, bh, e.height
        return None

    def get_spender(self, outpoint: OutPoint) -> TxoSpend | None:
        """The active-chain tx spending `outpoint` and its block (Core `TxoSpenderIndex::
        FindSpender`); None when unspent in the active chain or without the spender index."""
        self._check_usable()
        if not self.txospenderindex:
            return None
        key = outpoint_key(outpoint)
        d, p = self._dirty.txospender, self._pending.txospender
        return d[key] if key in d else p[key] if key in p else self._store.get_spender(key)

    def coins_for_script(self, script_pubkey: bytes) -> list[tuple[OutPoint, Coin]]:
        self.flush()
        return [(key_outpoint(bytes(k)), c) for k, c in self._store.coins_for_script(script_pubkey)]

    def next_bits(self, prev_entry: BlockIndexEntry | None = None, time: int | None = None) -> int:
        prev_entry = prev_entry or self.tip
        return next_work_required(prev_entry, self.params, self.get_ancestor, time)

    def median_time_past(self, entry: BlockIndexEntry | None = None) -> int:
        return median_time_past(entry or self.tip)

    def chain_tips(self) -> list[tuple[BlockIndexEntry, str]]:
        """(tip entry, status) like Core getchaintips: active, valid-fork, valid-headers,
        headers-only, invalid."""
        out = []
        for e in self.index.tips():
            if self.active.contains(e):
                status = "active"
            elif e.failed:
                status = "invalid"
            elif not e.has_chain_data:
                status = "headers-only"
            elif e.status & S.VALID_SCRIPTS:
                status = "valid-fork"
            else:
                status = "valid-headers"
            out.append((e, status))
        if not any(s == "active" for _, s in out):
            out.append((self.tip, "active"))
        out.sort(key=lambda t: -t[0].height)
        return out

    def utxo_stats(self, with_hash: bool = True, with_muhash: bool = False) -> UTXOStats:
        """Core `ComputeUTXOStats` with `hash_serialized_3` (kernel/coinstats.cpp): counts, the
        total amount, the bogosize and the sha256d over every coin as `TxOutSer` writes it
        (outpoint, height × 2 + coinbase, txout), in (txid, n) order — the same hash Core
        computes for the same UTXO set. `with_muhash`: Core's MuHash3072 over the same
        serializations instead (chain/muhash.py)."""
        self.flush()
        mu = None
        if with_muhash:
            from .muhash import MuHash3072
            mu = MuHash3072()
            with_hash = False
        h = hashlib.sha256()
        n = total = bogosize = 0
        txids: set[bytes] = set()
        for key, coin in self._store.iter_coins():  # ordered by (txid, n): Core's cursor order
            key = bytes(key)
            spk = coin.script_pubkey
            n += 1
            txids.add(key[:32])
            total += coin.value
            bogosize += 50 + len(spk)  # Core GetBogoSize
            if with_hash or mu is not None:
                ser = b"".join((key[:32], key[35:31:-1],  # txid, n as little-endian uint32
                                ((coin.height << 1) | coin.is_coinbase).to_bytes(4, "little"),
                                coin.value.to_bytes(8, "little", signed=True),
                                ser_compact_size(len(spk)), spk))
                if mu is not None:
                    mu.insert(ser)
                else:
                    h.update(ser)
        digest = hashlib.sha256(h.digest()).digest() if with_hash else None
        size_fn = getattr(self.store, "coins_disk_size", None)
        disk_size = int(size_fn()) if size_fn is not None else 0
        return UTXOStats(n, len(txids), total, bogosize, digest,
                         mu.digest() if mu is not None else None, disk_size)

    def utxo_set_hash(self) -> bytes:
        """Core's `hash_serialized_3` of the UTXO set (internal byte order)."""
        return self.utxo_stats().hash_serialized  # type: ignore[return-value]

    def coin_count(self) -> int:
        self.flush()
        return self._store.coin_count()

    # ==========================================================================================
    # events
    # ==========================================================================================
    def subscribe(self, callback: Callable[[ChainEvent], None]) -> None:
        """`callback(event)` runs synchronously on the writer thread after the commit that
        contains the event's block (never for a block whose commit failed)."""
        self._subscribers.append(callback)

    def unsubscribe(self, callback: Callable[[ChainEvent], None]) -> None:
        try:
            self._subscribers.remove(callback)
        except ValueError:
            pass

    def _emit(self, events: list[ChainEvent]) -> None:
        """Queue a step's events; `flush()` delivers them after the commit containing the step
        (with the default policy, at once: every step is committed as it is made)."""
        self._unflushed_events.extend(events)

    def _deliver(self, events: list[ChainEvent]) -> None:
        for ev in events:
            for cb in list(self._subscribers):
                try:
                    cb(ev)
                except Exception:  # a subscriber bug must not corrupt chain state
                    log.exception("chain subscriber %r failed on %r", cb, ev)

    # ==========================================================================================
    # pruning (Core BlockManager: PruneBlockFilesManual, FindFilesToPrune, IsBlockPruned)
    # ==========================================================================================
    def configure_prune(self, target: int, prune_after_height: int) -> None:
        """Core -prune: `target` 0 off, PRUNE_TARGET_MANUAL, or bytes to keep about."""
        self.prune_target = target
        self.prune_after_height = prune_after_height

    @property
    def prune_mode(self) -> bool:
        return self.prune_target != 0

    def is_block_pruned(self, e: BlockIndexEntry) -> bool:
        """Core `IsBlockPruned`: the node pruned, this block has no data but had been received
        and validated once (connected: VALID_SCRIPTS, or counted as chain data)."""
        return (self.have_pruned and not e.have_data
                and (bool(e.status & S.VALID_SCRIPTS) or e.has_chain_data))

    def prune_height(self) -> int | None:
        """Core `GetPruneHeight`: the height of the highest pruned block of the active chain
        (None when nothing is pruned); genesis does not count."""
        tip = self.tip
        if tip.height == 0:
            return None
        if not tip.have_data:
            return tip.height
        e = tip
        while e.prev is not None and e.prev.height >= 1 and e.prev.have_data:   # bounded by height
            e = e.prev
        return e.height - 1 if e.height > 1 else None

    def prune_to(self, height: int) -> int:
        """Core `PruneBlockFilesManual` at block granularity: delete the data of every stored
        block at or below `height`, never within MIN_BLOCKS_TO_KEEP of the tip and never the
        genesis block. Returns how many blocks were pruned."""
        self._check_usable()
        self.flush()
        last = min(height, self.tip.height - MIN_BLOCKS_TO_KEEP)
        if last < 1:
            return 0
        records = []
        for e in self.index:
            if 1 <= e.height <= last and e.have_data:
                records.append(e)
        return self._prune_entries(records)

    def _prune_entries(self, entries: list[BlockIndexEntry]) -> int:
        if not entries:
            return 0
        for e in entries:
            e.status &= ~S.HAVE_DATA
            if not self.active.contains(e):
                # a pruned fork block cannot be connected any more (Core drops it from the
                # candidates, PruneBlockIndexCandidates)
                e.has_chain_data = False
                self._candidates.discard(e)
            self._recent.pop(e.hash, None)
            self._sigop_counts.pop(e.hash, None)
        self._store.prune_blocks([self._record(e) for e in entries])
        self.have_pruned = True
        if self._usage is not None:
            self._usage = self._store.block_bytes()
        log.info("pruned %d blocks (heights %d..%d)", len(entries),
                 min(e.height for e in entries), max(e.height for e in entries))
        return len(entries)

    def _auto_prune(self, added_bytes: int) -> None:
        """Core `FindFilesToPrune` with a size estimate: once the chain is above
        prune_after_height and the stored blocks exceed the target, prune the oldest active-chain
        blocks (never within MIN_BLOCKS_TO_KEEP of the tip) by the average stored block size."""
        target = self.prune_target
        if target in (0, PRUNE_TARGET_MANUAL) or self.tip.height <= self.prune_after_height:
            return
        if self._usage is None:
            self._usage = self._store.block_bytes()
        else:
            self._usage += added_bytes
        if self._usage < target:
            return
        last = self.tip.height - MIN_BLOCKS_TO_KEEP
        stored = [e for e in (self.active[h] for h in range(1, max(last, 0) + 1))
                  if e is not None and e.have_data]
        if not stored:
            return
        n_all = sum(1 for h in range(1, self.tip.height + 1)
                    if (x := self.active[h]) is not None and x.have_data) or 1
        average = max(1, self._usage // n_all)
        want = -(-(self._usage - target) // average)
        self._prune_entries(stored[:want])

    # ==========================================================================================
    # headers
    # ==========================================================================================
    def process_headers(self, headers: list[BlockHeader]) -> list[BlockIndexEntry]:
        """Accept headers in order (Core `ProcessNewBlockHeaders`); raise on the first bad one.
        Headers accepted before the bad one are kept."""
        self._check_usable()
        batch = StoreBatch()
        out = []
        try:
            for h in headers:
                out.append(self._accept_header(h, batch))
        finally:
            if batch.index:
                self._stage(batch)
                self._maybe_flush()
        return out

    def _accept_header(self, header: BlockHeader, batch: StoreBatch) -> BlockIndexEntry:
        """Core `AcceptBlockHeader`."""
        h = header.hash
        e = self.index.get(h)
        if e is not None:
            if e.failed:
                raise ValidationError(R.DUPLICATE_INVALID, "block is marked invalid")
            return e
        try:
            check_block_header(header, self.params)
        except ValidationError as err:
            log.debug("AcceptBlockHeader: Consensus::CheckBlockHeader: %s, %s", header.hash_hex,
                      err.state_string)
            raise
        prev = self.index.get(header.prev_hash)
        if prev is None:
            log.debug("header %s has prev block not found: %s", header.hash_hex,
                      header.prev_hash[::-1].hex())
            raise ValidationError(R.PREV_BLK_NOT_FOUND, "previous block not found")
        if prev.failed:
            log.debug("header %s has prev block invalid: %s", header.hash_hex, prev.hash_hex)
            raise ValidationError(R.BAD_PREVBLK, "previous block invalid")
        try:
            contextual_check_block_header(header, prev, self.params, int(self._now()), self.get_ancestor)
        except ValidationError as err:
            log.debug("AcceptBlockHeader: Consensus::ContextualCheckBlockHeader: %s, %s",
                      header.hash_hex, err.state_string)
            raise
        e = BlockIndexEntry(header, prev, prev.height + 1, prev.chainwork + block_work(header.bits),
                            S.HEADER_VALID)
        self.index.add(e)
        batch.index[h] = self._record(e)
        best = self.best_header
        if e.chainwork > best.chainwork:
            self._best_header = e
        return e

    def _recompute_best_header(self) -> None:
        best = None
        for e in self.index:
            if e.failed:
                continue
            if best is None or e.chainwork > best.chainwork:
                best = e
        self._best_header = best

    # ==========================================================================================
    # blocks
    # ==========================================================================================
    def process_block(self, block: Block) -> BlockResult:
        """Core `ProcessNewBlock`: check, store, and activate the best chain. Never raises
        ValidationError; the result says what happened (a store failure raises
        FatalStorageError)."""
        self._check_usable()
        h = block.hash
        e = self.index.get(h)
        # Core ProcessNewBlock: CheckBlock (context-free) comes first, even for a hash we know
        # (a mutated copy of a stored block is refused, not a duplicate), and a block failing
        # it is not indexed nor marked: nothing is stored for it (only AcceptBlock's failures mark).
        try:
            sigop_counts = check_block(block, self.params)
        except ValidationError as err:
            log.error("ProcessNewBlock: AcceptBlock FAILED (%s)", err.state_string)
            return BlockResult(h, "invalid", err, e)
        if e is not None and e.failed:
            return BlockResult(h, "invalid", ValidationError(R.DUPLICATE_INVALID, "block is marked invalid"), e)
        if e is not None and e.have_data:
            return BlockResult(h, "duplicate", None, e)
        if h in self._unconnected:
            return BlockResult(h, "duplicate")
        prev = self.index.get(block.header.prev_hash)
        if prev is None:
            # Core's net layer refuses a block whose witnesses do not match its commitment
            # (IsBlockMutated, segwit active) before anything else: a stored mutated copy would
            # make the genuine block a "duplicate" here (an orphan's height is unknown: its
            # commitment is checked if it has one).
            try:
                check_witness_malleation(block, True)
            except ValidationError as err:
                return BlockResult(h, "invalid", err, e)
            self._add_unconnected(block)
            return BlockResult(h, "orphan")
        try:
            e = self._accept_block(block, sigop_counts)
        except ValidationError as err:
            log.error("ProcessNewBlock: AcceptBlock FAILED (%s)", err.state_string)
            self._maybe_flush()
            return BlockResult(h, "invalid", err, self.index.get(h))
        # blocks that were waiting for this one (and their descendants)
        pending = [h]
        while pending:
            parent = pending.pop()
            for child_hash in sorted(self._unconnected_by_prev.pop(parent, ())):
                child = self._pop_unconnected(child_hash)
                if child is None:
                    continue
                try:
                    self._accept_block(child)
                    pending.append(child_hash)
                except ValidationError as err:
                    log.info("unconnected block %s invalid: %s", child.hash_hex, err)
        self.activate_best_chain()
        self._maybe_flush()
        err = self._block_errors.pop(h, None)
        if err is not None or e.failed:
            return BlockResult(h, "invalid", err or ValidationError(R.BAD_PREVBLK, "on an invalid branch"), e)
        if self.active.contains(e):
            return BlockResult(h, "connected", None, e)
        return BlockResult(h, "accepted", None, e)

    def _accept_block(self, block: Block, sigop_counts: list[int] | None = None) -> BlockIndexEntry:
        """Core `AcceptBlock`: header, context-free (unless the caller ran them: `sigop_counts`)
        and contextual block checks, then store the body (in the pending batch, written with the
        next store transaction) unless the store has it already (a -reindex)."""
        batch = self._dirty
        e = self._accept_header(block.header, batch)
        if e.have_data:
            return e
        try:
            if sigop_counts is None:
                sigop_counts = check_block(block, self.params, check_pow=False)
            contextual_check_block(block, e.prev, self.params)
        except ValidationError as err:
            log.error("AcceptBlock: %s", err.state_string)
            if not err.mutated:
                self._mark_failed(e, batch)
            raise
        e.status |= S.HAVE_DATA
        e.sequence_id = self._seq
        self._seq += 1
        batch.index[e.hash] = self._record(e)
        # Core AcceptBlock with a known position (dbp: -reindex reads the block from its file):
        # bytes the store already holds are not written again. Asked of the store only then: a
        # store read per block costs the writer a GIL hand-off (~0.4 ms a block in an IBD)
        if not (self.importing_stored_blocks and self._store.has_block(e.hash)):
            raw = block.serialize()
            batch.blocks[e.hash] = raw
            self._dirty_bytes += len(raw)
        self._remember(block)
        sc = self._sigop_counts
        sc[e.hash] = sigop_counts
        while len(sc) > _RECENT_BLOCKS:
            sc.popitem(last=False)
        self._on_data(e)
        return e

    def _on_data(self, e: BlockIndexEntry) -> None:
        """Propagate has_chain_data to `e` and waiting descendants (Core mapBlocksUnlinked)."""
        if e.prev is not None and not e.prev.has_chain_data:
            return
        stack = [e]
        while stack:
            x = stack.pop()
            x.has_chain_data = True
            if not x.failed:
                self._candidates.add(x)
            for c in self.index.children(x):
                if c.have_data and not c.has_chain_data:
                    stack.append(c)

    def _remember(self, block: Block) -> None:
        r = self._recent
        r[block.hash] = block
        r.move_to_end(block.hash)
        while len(r) > _RECENT_BLOCKS:
            r.popitem(last=False)

    def _add_unconnected(self, block: Block) -> None:
        h = block.hash
        self._unconnected[h] = block
        self._unconnected_by_prev.setdefault(block.header.prev_hash, set()).add(h)
        self._unconnected_bytes += block.size
        while self._unconnected and (len(self._unconnected) > self._max_unconnected
                                     or self._unconnected_bytes > MAX_UNCONNECTED_BYTES):
            oldest = next(iter(self._unconnected))
            self._pop_unconnected(oldest)

    def _pop_unconnected(self, h: bytes) -> Block | None:
        b = self._unconnected.pop(h, None)
        if b is None:
            return None
        self._unconnected_bytes -= b.size
        s = self._unconnected_by_prev.get(b.header.prev_hash)
        if s is not None:
            s.discard(h)
            if not s:
                del self._unconnected_by_prev[b.header.prev_hash]
        return b

    @property
    def unconnected_count(self) -> int:
        return len(self._unconnected)

    def _read_block(self, e: BlockIndexEntry) -> Block:
        b = self.get_block(e.hash)
        if b is None:
            raise RuntimeError(f"block data missing for {e.hash_hex}")
        return b

    # ==========================================================================================
    # failure marking
    # ==========================================================================================
    def _mark_failed(self, e: BlockIndexEntry, batch: StoreBatch) -> None:
        """Mark `e` FAILED and its descendants FAILED_PARENT (Core `InvalidBlockFound`)."""
        e.status |= S.FAILED
        batch.index[e.hash] = self._record(e)
        self._candidates.discard(e)
        for d in self.index.descendants(e):
            if not d.status & S.FAILED_PARENT:
                d.status |= S.FAILED_PARENT
                batch.index[d.hash] = self._record(d)
            self._candidates.discard(d)
        best = self._best_header
        if best is not None and best.failed:
            self._recompute_best_header()

    def _rebuild_candidates(self) -> None:
        tipwork = self.tip.chainwork
        self._candidates = {e for e in self.index
                            if e.has_chain_data and not e.failed and e.chainwork >= tipwork}

    # ==========================================================================================
    # activation
    # ==========================================================================================
    def _best_candidate(self) -> BlockIndexEntry | None:
        best = None
        tipwork = self.tip.chainwork
        stale = []
        for e in self._candidates:
            if e.failed or e.chainwork < tipwork:
                stale.append(e)
                continue
            if best is None or e.chainwork > best.chainwork or (
                    e.chainwork == best.chainwork and e.sequence_id < best.sequence_id):
                best = e
        for e in stale:
            self._candidates.discard(e)
        return best

    def needs_activation(self) -> bool:
        """A stored, not-failed block has more work than the tip: `activate_best_chain` would
        move (Core: setBlockIndexCandidates holds a block better than the tip)."""
        cand = self._best_candidate()
        return cand is not None and cand is not self.tip and cand.chainwork > self.tip.chainwork

    def activate_best_chain(self, max_steps: int = 1_000_000) -> None:
        """Core `ActivateBestChain`: move to the most-work valid candidate, one step (at most
        MAX_BLOCKS_PER_COMMIT blocks) at a time, at most `max_steps` steps."""
        self._check_usable()
        for _ in range(max_steps):  # bounded; each step makes progress or marks a block failed
            cand = self._best_candidate()
            tip = self.tip
            if cand is None or cand is tip or cand.chainwork <= tip.chainwork:
                return
            self._activate_step(cand)
            self._maybe_flush()

    def _activate_step(self, target: BlockIndexEntry) -> None:
        old_tip = self.tip
        fork = self.active.find_fork(target)
        assert fork is not None
        path = []
        e = target
        while e is not fork:
            path.append(e)
            e = e.prev  # type: ignore[assignment]
        path.reverse()
        view = CoinsView(self._dirty_view)
        batch = StoreBatch()
        events: list[ChainEvent] = []
        disconnected = 0
        t = old_tip
        while t is not fork:
            block = self._read_block(t)
            self._disconnect_block(block, t, view, batch)
            events.append(BlockDisconnected(block, t))
            disconnected += 1
            t = t.prev  # type: ignore[assignment]
        new_tip = fork
        failed = False
        for e in path:
            if e.failed:  # cannot happen while marks propagate; never retry such a branch
                for x in path[path.index(e):]:
                    x.status |= S.FAILED_PARENT
                    batch.index[x.hash] = self._record(x)
                    self._candidates.discard(x)
                failed = True
                break
            block = self._read_block(e)
            try:
                self._connect_block(block, e, view, batch)
            except ValidationError as err:
                # Core ConnectBlock's and ConnectTip's lines (state.ToString(): "reason, detail")
                log.info("Block validation error: %s", err.state_string)
                log.error("ConnectTip: ConnectBlock %s failed, %s", e.hash_hex, err.state_string)
                self._block_errors[e.hash] = err
                if len(self._block_errors) > 1000:
                    self._block_errors.clear()
                    self._block_errors[e.hash] = err
                self._mark_failed(e, batch)
                failed = True
                break
            new_tip = e
            events.append(BlockConnected(block, e))
            if e.prev is not None and not self.params.no_retargeting and e.height % self.params.retarget_window == 0:
                _log_retarget(e)
            if len(events) - disconnected >= MAX_BLOCKS_PER_COMMIT and new_tip.chainwork > old_tip.chainwork:
                break
        if failed:
            # Nothing of this step becomes visible: the view holds a half-connected block. Persist
            # only the index marks (failure, and VALID_SCRIPTS of the blocks that did check out);
            # activate_best_chain then picks again and reconnects the valid part if it still wins.
            self._stage(StoreBatch(index=batch.index))
            return
        batch.tip = new_tip.hash
        self._stage(batch, view)
        self.active.set_tip(new_tip)
        if disconnected or new_tip is not old_tip:
            if disconnected:
                log.info("reorg: disconnected %d blocks, new tip %s at height %d", disconnected,
                         new_tip.hash_hex, new_tip.height)
            events.append(TipChanged(old_tip, new_tip, disconnected))
            self._emit(events)
        self._maybe_flush()  # the events are delivered by the commit that contains this step

    def _disconnect_block(self, block: Block, e: BlockIndexEntry, view: CoinsView, batch: StoreBatch) -> None:
        """Core `DisconnectBlock`: remove the block's outputs, restore the coins it spent."""
        if e.hash in batch.undo:
            raw = batch.undo[e.hash]
        elif e.hash in self._dirty.undo:
            raw = self._dirty.undo[e.hash]
        else:
            raw = self._store.get_undo(e.hash)
        undo = parse_undo(bytes(raw)) if raw else []
        i = len(undo)
        spends = batch.txospender if self.txospenderindex else None
        for tx in reversed(block.txs):
            txid = tx.txid
            for n, out in enumerate(tx.vout):
                if _spendable(out.script_pubkey):
                    view.spend(txid + _BE32(n))
            batch.txindex[txid] = None
            if not tx.is_coinbase():
                for txin in reversed(tx.vin):
                    i -= 1
                    if i < 0:
                        raise RuntimeError(f"undo data too short for {e.hash_hex}")
                    k = outpoint_key(txin.prevout)
                    view.add(k, undo[i])
                    if spends is not None:   # Core TxoSpenderIndex::CustomRemove
                        spends[k] = None
        # The undo record stays (Core keeps the rev data and BLOCK_HAVE_UNDO of a disconnected
        # block): RPCs still read the block's fees and prevouts, a reconnection writes the same
        # record again, pruning deletes it with the body.
        batch.disconnects.add(e.hash)

    def _connect_block(self, block: Block, e: BlockIndexEntry, view: CoinsView, batch: StoreBatch) -> None:
        """Core `ConnectBlock`: BIP30, inputs, BIP68, sigop cost (BIP141: legacy and P2SH
        sigops × 4 plus witness sigops, `GetTransactionSigOpCost`), fees, coinbase amount, and
        the scripts, each input checked with its spent amount and its tx's PrecomputedTxData."""
        params = self.params
        height = e.height
        maturity = params.coinbase_maturity
        max_sigops = params.max_block_sigops_cost
        flags = script_flags_for_height(height, params)
        prev = e.prev
        assert prev is not None
        prev_mtp = None
        fees = 0
        sigops = 0
        spent: list[Coin] = []
        checks: list[ScriptCheck] = []   # Core CScriptCheck: one per spend input
        checks_append = checks.append
        flags = int(flags)   # (plain int: IntFlag's operators are Python calls)
        view_get = view.get
        view_spend = view.spend
        txindex = batch.txindex
        block_hash = e.hash
        spends = batch.txospender if self.txospenderindex else None
        script_cache_take = self.script_cache.take
        # BIP30 (always enforced): no tx may overwrite an unspent output; checked before any
        # change, as Core. Shortcuts, exact under BIP34 (active from height 1): an unspent
        # duplicate of a non-coinbase tx would have spent the very inputs this tx spends, so a tx
        # whose inputs are all unspent cannot be one; only txs with an input not (yet) in the view
        # need the output lookups. The coinbase is always looked up: a coinbase below the BIP34
        # height may push any height, so a later coinbase can repeat it (Core skips BIP30 after
        # BIP34 only on a chain holding its BIP34Hash, i.e. never on regtest / tinynet).
        txs = block.txs
        found: list[list[Coin] | None] = [None] * len(txs)
        keys: list[list[bytes] | None] = [None] * len(txs)
        changes = view.changes
        base_get = view.base.get
        for i, tx in enumerate(txs):
            if i:
                pre = []
                vin = tx.vin
                if len(vin) == 1:    # (no comprehension's frame for the usual one input)
                    po = vin[0].prevout
                    ks = [po.txid + _BE32(po.n)]
                else:
                    ks = [(po := txin.prevout).txid + _BE32(po.n) for txin in vin]
                keys[i] = ks
                for k in ks:
                    c = changes[k] if k in changes else base_get(k)   # CoinsView.get inlined
                    if c is None:
                        break
                    pre.append(c)
                else:
                    found[i] = pre
                    continue
            txid = tx.txid
            for n, out in enumerate(tx.vout):
                if _spendable(out.script_pubkey) and view_get(txid + _BE32(n)) is not None:
                    raise ValidationError(R.BAD_TXNS_BIP30, "tried to overwrite transaction")
        counts = self._sigop_counts.pop(block_hash, None)
        if counts is None or len(counts) != len(txs):
            counts = [legacy_sigops(tx) for tx in txs]
        fresh = view.fresh
        fresh_add = fresh.add
        # check_block ran on every stored block: txs[0] is the only coinbase
        for i, tx in enumerate(txs):
            txid = tx.txid
            coinbase = i == 0
            if coinbase:
                coins: list[Coin] = []
            else:
                pre = found[i]
                if pre is not None:
                    # every input was found unspent in the pre-pass; spend them (None if a
                    # previous tx of this block spent one since)
                    coins = []
                    for k, c in zip(keys[i], pre):  # type: ignore[arg-type]
                        # CoinsView.spend_found inlined: None if a tx before spent it
                        if k in changes:
                            if changes[k] is None:
                                coins = None  # type: ignore[assignment]
                                break
                            if k in fresh:       # created in this step: just forgotten
                                del changes[k]
                                fresh.discard(k)
                                coins.append(c)
                                continue
                        changes[k] = None
                        coins.append(c)
                else:
                    coins = []
                    for k in keys[i]:  # type: ignore[union-attr]
                        c = view_spend(k)
                        if c is None:
                            coins = None  # type: ignore[assignment]
                            break
                        coins.append(c)
                # Core ConnectBlock: CheckTxInputs' debug message + " in transaction <txid>"
                if coins is None:
                    raise ValidationError(R.BAD_TXNS_INPUTS_MISSINGORSPENT,
                                          f"CheckTxInputs: inputs missing/spent in transaction {tx.txid_hex}")
                try:
                    fees += check_tx_input_coins(tx, coins, height, maturity)
                except ValidationError as err:
                    raise ValidationError(err.reason, f"{err.detail} in transaction {tx.txid_hex}") from None
                # Core: BIP68 with CSV (enforces_bip68 inlined: version >= 2 read as uint32)
                if tx.version & 0xFFFFFFFF >= 2 and height >= params.csv_height:
                    if prev_mtp is None:
                        prev_mtp = median_time_past(prev)
                    lock = sequence_locks(tx, [c.height for c in coins],
                                          lambda h: median_time_past(self.get_ancestor(prev, h)))
                    if not sequence_locks_satisfied(lock, height, prev_mtp):
                        raise ValidationError(R.BAD_TXNS_NONFINAL,
                                              f"contains a non-BIP68-final transaction {tx.txid_hex}")
                spent.extend(coins)
                # Core CheckInputScripts: a tx the mempool verified under these flags is not
                # verified again (the entry is erased: a tx is confirmed once)
                if not script_cache_take(tx.wtxid, flags):
                    # (precomputed_tx_data: BIP143 hashes only for a tx with a witness)
                    txdata = precomputed_tx_data(tx, coins) if tx.base_size != len(tx.raw) else None
                    j = 0
                    for c in coins:
                        checks_append((tx, j, c.script_pubkey, c.value, txdata))
                        j += 1
            sigops += counts[i] * 4   # GetTransactionSigOpCost: legacy × WITNESS_SCALE_FACTOR
            for c in coins:
                # only a P2SH coin (23 bytes from OP_HASH160) or a witness program (OP_0,
                # OP_1..OP_16 first) can add sigops beyond the legacy count
                spk = c.script_pubkey
                if spk and (spk[0] == 0xA9 or spk[0] == 0 or 0x51 <= spk[0] <= 0x60):
                    for c2 in coins:  # P2SH redeem scripts' sigops (GetP2SHSigOpCount)
                        spk = c2.script_pubkey
                        if len(spk) == 23 and spk[0] == 0xA9 and spk[1] == 0x14 and spk[22] == 0x87:
                            sigops += p2sh_sigops(tx, coins) * 4
                            break
                    sigops += inputs_witness_sigops(tx, coins, flags)
                    break
            if sigops > max_sigops:
                raise ValidationError(R.BAD_BLK_SIGOPS, "too many sigops")
            n = 0
            for out in tx.vout:
                spk = out.script_pubkey
                # Core AddCoins skips unspendable outputs (OP_RETURN, oversize scripts);
                # CoinsView.add inlined (BIP30 above: the key is not live in the view)
                if not ((spk and spk[0] == 0x6A) or len(spk) > _MAX_SCRIPT_SIZE):
                    k = txid + _BE32(n)
                    if k not in changes:
                        fresh_add(k)
                    changes[k] = make_coin(out.value, spk, height, coinbase)
                n += 1
            txindex[txid] = block_hash
            if spends is not None and i:     # Core TxoSpenderIndex::CustomAppend
                spend = TxoSpend(txid, block_hash)
                for k in keys[i]:  # type: ignore[union-attr]
                    spends[k] = spend
        cb_out = sum(o.value for o in block.txs[0].vout)
        limit = fees + params.block_subsidy(height)
        if cb_out > limit:
            raise ValidationError(R.BAD_CB_AMOUNT, f"coinbase pays too much (actual={cb_out} vs limit={limit})")
        if self.script_checks and checks:
            # Core CheckInputScripts → control.Add, then control.Wait(): every input, in parallel
            # when threads are configured; the error is the lowest failing input's, as inline.
            self.script_check_queue.check(checks, flags)
        e.status |= S.VALID_SCRIPTS
        batch.index[block_hash] = self._record(e)
        batch.undo[block_hash] = serialize_undo(spent)
        batch.disconnects.discard(block_hash)

    # ==========================================================================================
    # invalidate / reconsider
    # ==========================================================================================
    def invalidate_block(self, block_hash: bytes) -> None:
        """Core `InvalidateBlock`: mark the block failed, disconnect it if active, re-pick the best chain."""
        self._check_usable()
        e = self.index.get(block_hash)
        if e is None:
            raise KeyError("block not found")
        if e.prev is None:
            raise ValueError("cannot invalidate genesis")
        batch = StoreBatch()
        self._mark_failed(e, batch)
        if self.active.contains(e):
            old_tip = self.tip
            view = CoinsView(self._dirty_view)
            events: list[ChainEvent] = []
            t = old_tip
            n = 0
            while t is not e.prev:
                block = self._read_block(t)
                self._disconnect_block(block, t, view, batch)
                events.append(BlockDisconnected(block, t))
                n += 1
                t = t.prev  # type: ignore[assignment]
            batch.tip = e.prev.hash
            self._stage(batch, view)
            self.active.set_tip(e.prev)
            events.append(TipChanged(old_tip, e.prev, n))
            self._emit(events)
            self.flush()
        else:
            self._stage(batch)
        self._rebuild_candidates()
        self.activate_best_chain()
        self.flush()

    def reconsider_block(self, block_hash: bytes) -> None:
        """Core `ReconsiderBlock` (ResetBlockFailureFlags): clear failure marks on the block, its
        descendants and ancestors, then activate the best chain."""
        self._check_usable()
        e = self.index.get(block_hash)
        if e is None:
            raise KeyError("block not found")
        batch = StoreBatch()
        for x in [e, *self.index.descendants(e)]:
            if x.status & S.FAILED_MASK:
                x.status &= ~S.FAILED_MASK
                batch.index[x.hash] = self._record(x)
        a = e.prev
        while a is not None:
            if a.status & S.FAILED_MASK:
                a.status &= ~S.FAILED_MASK
                batch.index[a.hash] = self._record(a)
            a = a.prev
        if batch.index:
            self._stage(batch)
        for x in [e, *self.index.descendants(e)]:
            if x.have_data and x.prev is not None and x.prev.has_chain_data:
                self._on_data(x)
        self._recompute_best_header()
        self._rebuild_candidates()
        self.activate_best_chain()
        self.flush()

    # ==========================================================================================
    def close(self) -> None:
        """Commit what is staged and close the store. After a store failure nothing staged is
        written (it may be half-made): the store is just closed, at its last committed tip."""
        if not self._closed:
            self.script_check_queue.close()
            try:
                if self.aborted is None:
                    self.flush()
            finally:
                self._closed = True
                try:
                    self.store.close()
                except Exception:
                    if self.aborted is None:
                        raise
                    log.exception("closing the chain store after a fatal error failed")


def _log_retarget(e: BlockIndexEntry) -> None:
    """One line when a block on a retarget boundary (Core's `GetNextWorkRequired` period)
    connects: the difficulty before → after, as `getdifficulty` reports it."""
    old, new = _difficulty(e.prev.bits), _difficulty(e.bits)  # type: ignore[union-attr]
    log.info("difficulty retarget at height %d: %.6g -> %.6g (x%.3f), bits %08x -> %08x",
             e.height, old, new, new / old if old else 0.0, e.prev.bits, e.bits)  # type: ignore[union-attr]


def _difficulty(bits: int) -> float:
    """Core `GetDifficulty`: how many times harder than mainnet's 0x1d00ffff."""
    shift, d = (bits >> 24) & 0xFF, float(0xFFFF) / float(max(bits & 0x00FFFFFF, 1))
    return d * 256.0 ** (29 - shift)
