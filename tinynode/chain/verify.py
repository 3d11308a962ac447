"""Core's `CVerifyDB::VerifyDB`: check the last blocks of the active chain against the stored
bodies, undo records and coins (at start-up with -checkblocks / -checklevel, and the
`verifychain` RPC).

    level 0  every block's body can be read
    level 1  ... and passes CheckBlock
    level 2  ... and its undo record can be read
    level 3  ... and disconnecting the blocks, tip first, on a scratch coins view finds every
             output the block created and restores every coin it spent to an empty slot
             (Core's DISCONNECT_UNCLEAN otherwise); nothing is written
    level 4  ... and the disconnected blocks connect again (ConnectBlock) on that view

A pruning node stops at the first block without data (SKIPPED_MISSING_BLOCKS, which start-up
accepts and `verifychain` reports as false).
"""

from __future__ import annotations

import enum
import logging

from ..consensus.block_checks import check_block
from ..consensus.errors import ValidationError
from ..primitives.block import Block
from ..storage.base import StoreBatch, parse_undo
from .chainstate import ChainState, _spendable
from .coins import CoinsView, outpoint_key

log = logging.getLogger(__name__)

__all__ = ["VerifyDBResult", "verify_db", "DEFAULT_CHECKBLOCKS", "DEFAULT_CHECKLEVEL"]

#: Core DEFAULT_CHECKBLOCKS / DEFAULT_CHECKLEVEL
DEFAULT_CHECKBLOCKS = 6
DEFAULT_CHECKLEVEL = 3


class VerifyDBResult(enum.Enum):
    """Core `VerifyDBResult` (no SKIPPED_L3_CHECKS: the scratch view is not bounded by -dbcache)."""

    SUCCESS = "success"
    CORRUPTED_BLOCK_DB = "corrupted"
    INTERRUPTED = "interrupted"
    SKIPPED_MISSING_BLOCKS = "skipped_missing_blocks"


class _Corrupt(Exception):
    pass


def _undo_bytes(cs: ChainState, block_hash: bytes) -> bytes | None:
    """The undo record as disconnecting would read it: staged, else stored."""
    raw = cs.get_undo(block_hash)
    return bytes(raw) if raw is not None else None


def _disconnect_clean(block: Block, height: int, undo_raw: bytes | None, view: CoinsView) -> bool:
    """Core `DisconnectBlock` on `view`: False when unclean (an output missing or different, a
    restored coin overwriting one). Raises _Corrupt when the undo record does not fit the block
    (Core DISCONNECT_FAILED)."""
    try:
        undo = parse_undo(undo_raw) if undo_raw else []
    except Exception as e:
        raise _Corrupt(f"undo record unreadable: {e}") from None
    if len(undo) != sum(len(tx.vin) for tx in block.txs[1:]):
        raise _Corrupt("block and undo data inconsistent")
    clean = True
    i = len(undo)
    for tx in reversed(block.txs):
        txid = tx.txid
        cb = tx.is_coinbase()
        for n, out in enumerate(tx.vout):
            if not _spendable(out.script_pubkey):
                continue
            c = view.spend(txid + n.to_bytes(4, "big"))
            if (c is None or c.value != out.value or c.script_pubkey != out.script_pubkey
                    or c.height != height or c.is_coinbase != cb):
                clean = False
        if not cb:
            for txin in reversed(tx.vin):
                i -= 1
                k = outpoint_key(txin.prevout)
                if view.get(k) is not None:
                    clean = False
                    view.spend(k)
                view.add(k, undo[i])
    return clean


def verify_db(cs: ChainState, check_level: int = DEFAULT_CHECKLEVEL,
              check_depth: int = DEFAULT_CHECKBLOCKS, should_stop=lambda: False) -> VerifyDBResult:
    """Core `CVerifyDB::VerifyDB` on the active chain of `cs` (writer thread)."""
    tip = cs.tip
    if tip.prev is None:
        return VerifyDBResult.SUCCESS
    height = tip.height
    if check_depth <= 0 or check_depth > height:
        check_depth = height
    check_level = max(0, min(4, check_level))
    log.info("Verifying last %i blocks at level %i", check_depth, check_level)
    log.info("Verification progress: 0%%")
    view = CoinsView(cs._dirty_view)   # noqa: SLF001 — a scratch view over the chainstate's coins
    failure = None
    good_txs = 0
    report_done = 0
    skipped_no_data = False
    e = tip
    disconnected: list[tuple] = []
    while e is not None and e.prev is not None:
        done = max(1, min(99, int((height - e.height) / check_depth * (50 if check_level >= 4 else 100))))
        if report_done < done // 10:
            log.info("Verification progress: %d%%", done)
            report_done = done // 10
        if e.height <= height - check_depth:
            break
        if cs.prune_mode and not e.have_data:
            log.info("Block verification stopping at height %d (no data). This could be due to "
                     "pruning or use of an assumeutxo snapshot.", e.height)
            skipped_no_data = True
            break
        block = cs.get_block(e.hash)
        if block is None:
            log.error("Verification error: ReadBlock failed at %d, hash=%s", e.height, e.hash_hex)
            return VerifyDBResult.CORRUPTED_BLOCK_DB
        if check_level >= 1:
            try:
                check_block(block, cs.params)
            except ValidationError as err:
                log.error("Verification error: found bad block at %d, hash=%s (%s)",
                          e.height, e.hash_hex, err.state_string)
                return VerifyDBResult.CORRUPTED_BLOCK_DB
        undo_raw = None
        if check_level >= 2:
            undo_raw = _undo_bytes(cs, e.hash)
            if undo_raw is None and len(block.txs) > 1:
                log.error("Verification error: found bad undo data at %d, hash=%s", e.height, e.hash_hex)
                return VerifyDBResult.CORRUPTED_BLOCK_DB
        if check_level >= 3:
            try:
                clean = _disconnect_clean(block, e.height, undo_raw, view)
            except _Corrupt:
                log.error("Verification error: irrecoverable inconsistency in block data at %d, hash=%s",
                          e.height, e.hash_hex)
                return VerifyDBResult.CORRUPTED_BLOCK_DB
            if clean:
                good_txs += len(block.txs)
            else:
                good_txs = 0
                failure = e
            disconnected.append((e, block))
        if should_stop():
            return VerifyDBResult.INTERRUPTED
        e = e.prev
    if failure is not None:
        log.error("Verification error: coin database inconsistencies found (last %i blocks, %i good "
                  "transactions before that)", height - failure.height + 1, good_txs)
        return VerifyDBResult.CORRUPTED_BLOCK_DB
    block_count = height - e.height
    if check_level >= 4:
        for x, block in reversed(disconnected):
            done = max(1, min(99, 100 - int((height - x.height) / check_depth * 50)))
            if report_done < done // 10:
                log.info("Verification progress: %d%%", done)
                report_done = done // 10
            try:
                cs._connect_block(block, x, view, StoreBatch())   # noqa: SLF001
            except ValidationError as err:
                log.error("Verification error: found unconnectable block at %d, hash=%s (%s)",
                          x.height, x.hash_hex, err.state_string)
                return VerifyDBResult.CORRUPTED_BLOCK_DB
            if should_stop():
                return VerifyDBResult.INTERRUPTED
    log.info("Verification: No coin database inconsistencies in last %i blocks (%i transactions)",
             block_count, good_txs)
    if skipped_no_data:
        return VerifyDBResult.SKIPPED_MISSING_BLOCKS
    return VerifyDBResult.SUCCESS
