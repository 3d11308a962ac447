"""Core's -reindex and -reindex-chainstate: rebuild the chain state from the stored block bodies.

    --reindex             wipe the block index, coins, undo records, tx index and spender index,
                          then read every stored block body again, oldest written first, and
                          give each to `ChainState.process_block` as if it had just arrived
                          (header checks, CheckBlock, ContextualCheckBlock, then ConnectBlock
                          when its chain is the best): Core `ImportBlocks` →
                          `LoadExternalBlockFile` → `AcceptBlock`, then `ActivateBestChains`.
                          A block whose parent is not known yet waits for it (Core's
                          `blocks_with_unknown_parent`). An invalid stored block is marked
                          failed and the chain stays at its parent, as Core.
    --reindex-chainstate  keep the block index; wipe the coins, undo records and indexes, set
                          the tip back to genesis and connect every block of the best chain
                          again from its stored body (Core wipes the chainstate database and
                          ActivateBestChain reconnects from genesis).

Crash safety: the wipe is one store transaction, and the rebuild writes through the chainstate's
ordinary commits, so the store is consistent at any instant. A full reindex sets the store's
reindexing mark (Core `WriteReindexing(true)`) and clears it only after the last stored block
was read and the state flushed: a node killed in between reindexes again at its next start,
with or without --reindex (Core `ReadReindexing`). A killed -reindex-chainstate restarts at the
height it had flushed and connects the rest as any start does.

Everything here runs on the chain writer's thread, before the node serves anything.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable

from ..primitives.block import Block
from ..primitives.hashes import hash_to_hex
from .chainstate import ChainState

log = logging.getLogger(__name__)

__all__ = ["REINDEX", "REINDEX_CHAINSTATE", "ReindexResult", "prepare_reindex", "run_reindex"]

REINDEX = "reindex"
REINDEX_CHAINSTATE = "reindex-chainstate"

#: a progress line at least this often (seconds) while rebuilding
PROGRESS_SECONDS = 10.0
#: and every this many blocks
PROGRESS_BLOCKS = 10_000
#: activation steps (each at most MAX_BLOCKS_PER_COMMIT blocks) of one rebuild; bounds the loop
MAX_ACTIVATION_STEPS = 10_000_000
#: blocks staged per store commit while reindexing (the writer sets its own policy afterwards)
REINDEX_FLUSH_BLOCKS = 100


@dataclass(frozen=True, slots=True)
class ReindexResult:
    """What a rebuild did: the mode, stored blocks read and accepted into the index (full
    reindex), the height reached, and whether a stop request cut it short."""

    mode: str
    blocks_read: int
    blocks_loaded: int
    height: int
    interrupted: bool


def prepare_reindex(store, *, reindex: bool, reindex_chainstate: bool) -> str | None:
    """Before the ChainState is built on `store`: wipe what the requested rebuild rebuilds and
    return its mode (REINDEX, REINDEX_CHAINSTATE), or None for an ordinary start. -reindex wins
    over -reindex-chainstate (Core: wipe_chainstate_db = reindex || reindex_chainstate). A full
    reindex a killed node left unfinished is continued without wiping again (Core
    `LoadBlockIndexDB`: the reindexing flag turns `m_blockfiles_indexed` off)."""
    if reindex:
        log.info("Wiping the block index, chain state and indexes for -reindex")
        store.begin_reindex(full=True)
        return REINDEX
    if store.reindexing():
        log.info("A reindex was interrupted: continuing it")
        return REINDEX
    if reindex_chainstate:
        log.info("Wiping the chain state and indexes for -reindex-chainstate")
        store.begin_reindex(full=False)
        return REINDEX_CHAINSTATE
    return None


def run_reindex(cs: ChainState, mode: str, should_stop: Callable[[], bool] = lambda: False,
                *, file_name: str = "chain.sqlite") -> ReindexResult:
    """Rebuild `cs` (built with `activate=False` on a store `prepare_reindex` prepared) from
    its store's block bodies; flush at the end. `should_stop` is polled between blocks (Core's
    interrupt: "Interrupt requested. Exit reindexing.")."""
    flush_blocks = cs.flush_blocks
    cs.flush_blocks = max(flush_blocks, REINDEX_FLUSH_BLOCKS)
    try:
        read = loaded = 0
        if mode == REINDEX:
            cs.importing_stored_blocks = True
            try:
                read, loaded, stopped = _load_stored_blocks(cs, should_stop, file_name)
            finally:
                cs.importing_stored_blocks = False
            if stopped:
                cs.flush()
                return ReindexResult(mode, read, loaded, cs.height, True)
        stopped = _connect_best_chain(cs, should_stop)
        cs.flush()
        if stopped:
            return ReindexResult(mode, read, loaded, cs.height, True)
        if mode == REINDEX:
            cs.store.end_reindex()   # Core WriteReindexing(false)
            log.info("Reindexing finished")
        else:
            log.info("Chain state rebuilt: height %d, tip %s", cs.height, cs.tip.hash_hex)
        return ReindexResult(mode, read, loaded, cs.height, False)
    finally:
        cs.flush_blocks = flush_blocks


def _load_stored_blocks(cs: ChainState, should_stop: Callable[[], bool],
                        file_name: str) -> tuple[int, int, bool]:
    """Core `LoadExternalBlockFile` over the store's block bodies: each block whose parent is
    indexed goes through `process_block`; one whose parent is not waits (by hash only, its body
    is read again when the parent comes) and follows its parent. Returns (read, loaded,
    interrupted)."""
    store = cs.store
    hashes = store.stored_block_hashes()
    total = len(hashes)
    start = time.monotonic()
    last_log = start
    log.info("Reindexing block file %s (0%% complete)...", file_name)
    unknown_parent: dict[bytes, list[bytes]] = {}   # prev hash → waiting children (Core multimap)
    read = loaded = 0

    def accept(h: bytes) -> bool:
        """Core `AcceptBlock` (and the activation tinynode's process_block does with it); True
        when the block went into the index with its data (Core's nLoaded), even if connecting
        it then failed."""
        raw = store.get_block(h)
        if raw is None:
            return False
        try:
            block = Block.from_bytes(bytes(raw))
        except Exception as e:   # a damaged row: Core logs the deserialize error and goes on
            log.warning("LoadExternalBlockFile: Deserialize or I/O error - %s (block %s)", e, hash_to_hex(h))
            return False
        res = cs.process_block(block)
        if res.status == "invalid":
            log.info("LoadExternalBlockFile: block %s is invalid: %s", block.hash_hex,
                     res.error.state_string if res.error is not None else "")
        e = cs.get_entry(h)
        return e is not None and e.have_data

    for i, h in enumerate(hashes, 1):
        if should_stop():
            log.info("Interrupt requested. Exit reindexing.")
            return read, loaded, True
        read += 1
        e = cs.get_entry(h)
        if e is not None and (e.have_data or e.failed):
            continue   # the genesis block, or already indexed by an interrupted reindex
        raw = store.get_block(h)
        if raw is None or len(raw) < 80:
            continue
        prev_hash = bytes(raw[4:36])
        if cs.get_entry(prev_hash) is None:
            unknown_parent.setdefault(prev_hash, []).append(h)
            continue
        if accept(h):
            loaded += 1
        # children that waited for this block, then theirs (bounded: each hash waits once)
        queue = [h]
        while queue:
            parent = queue.pop()
            for child in unknown_parent.pop(parent, ()):
                log.debug("LoadExternalBlockFile: Processing out of order child %s of %s",
                          hash_to_hex(child), hash_to_hex(parent))
                if accept(child):
                    loaded += 1
                    queue.append(child)
        now = time.monotonic()
        if i % PROGRESS_BLOCKS == 0 or now - last_log >= PROGRESS_SECONDS:
            last_log = now
            log.info("Reindexing block file %s (%d%% complete)... height %d", file_name,
                     i * 100 // total, cs.height)
    orphans = sum(map(len, unknown_parent.values()))
    if orphans:
        log.info("Reindex: %d stored blocks have no known parent and were left out", orphans)
    log.info("Loaded %i blocks from external file in %dms", loaded, int((time.monotonic() - start) * 1000))
    return read, loaded, False


def _connect_best_chain(cs: ChainState, should_stop: Callable[[], bool]) -> bool:
    """Core `ActivateBestChain` after the import: connect the stored blocks of the most-work
    chain, one step at a time, with a progress line. Returns True when interrupted."""
    if not cs.needs_activation():
        return False
    target = cs.best_header.height
    log.info("Connecting the stored blocks: height %d of %d", cs.height, target)
    last_log = time.monotonic()
    last_height = cs.height
    for _ in range(MAX_ACTIVATION_STEPS):
        if not cs.needs_activation():
            break
        if should_stop():
            log.info("Interrupt requested. Exit reindexing.")
            return True
        cs.activate_best_chain(max_steps=1)
        now = time.monotonic()
        if cs.height - last_height >= PROGRESS_BLOCKS or now - last_log >= PROGRESS_SECONDS:
            last_log, last_height = now, cs.height
            log.info("Connecting the stored blocks: height %d of %d (%d%%)", cs.height, target,
                     100 * cs.height // max(target, 1))
    log.info("Connected the stored blocks: height %d, tip %s", cs.height, cs.tip.hash_hex)
    return False
