"""Block rules (Core validation.cpp).

    check_block_header(header, params)                       Core CheckBlockHeader (proof of work)
    check_block(block, params)                               Core CheckBlock (context-free)
    contextual_check_block_header(header, prev, params, now) Core ContextualCheckBlockHeader
    contextual_check_block(block, prev, params)              Core ContextualCheckBlock
    script_flags_for_height(height, params)                  Core GetBlockScriptFlags

The ConnectBlock rules (inputs, fees, BIP30, sigops with P2SH, scripts) need the coins view and
live in `chain/chainstate.py`, built from `tx_checks`. `prev` is the parent index entry (anything
with `.height .time .bits .prev`); no clock is read here — `now` is passed in.
"""

from __future__ import annotations

from typing import Any, Callable

from ..params import ChainParams
from ..primitives.block import Block, BlockHeader
from ..script.script import push_int
from .errors import RejectReason, ValidationError
from .pow import median_time_past, next_work_required
from .tx_checks import check_transaction, is_final_tx, legacy_sigops

__all__ = [
    "check_block_header", "check_block", "contextual_check_block_header", "contextual_check_block",
    "script_flags_for_height", "bip34_height_script", "BIP34_HEIGHT", "BIP65_HEIGHT", "BIP66_HEIGHT",
    "CSV_HEIGHT", "SEGWIT_HEIGHT",
]

R = RejectReason

# Soft-fork activation heights: all from height 1 on both networks, as Core's regtest (DESIGN §2).
BIP34_HEIGHT = 1
BIP65_HEIGHT = 1
BIP66_HEIGHT = 1
CSV_HEIGHT = 1
SEGWIT_HEIGHT = 1   # only NULLDUMMY (BIP147) rides on it here


def check_block_header(header: BlockHeader, params: ChainParams) -> None:
    """Core `CheckBlockHeader`: bits in range and hash ≤ target, else `high-hash`."""
    if not header.check_pow(params.pow_limit):
        raise ValidationError(R.HIGH_HASH, "proof of work failed")


def check_block(block: Block, params: ChainParams, check_pow: bool = True,
                check_merkle: bool = True) -> list[int]:
    """Core `CheckBlock`. Merkle failures are `mutated=True` (the header may still be genuine).

    Returns each tx's legacy sigop count (ConnectBlock reuses them)."""
    header = block.header
    if check_pow:
        check_block_header(header, params)
    txs = block.txs
    if check_merkle:
        root, mutated = block.compute_merkle_root()
        if root != header.merkle_root:
            raise ValidationError(R.BAD_TXNMRKLROOT, "hashMerkleRoot mismatch", mutated=True)
        if mutated:
            raise ValidationError(R.BAD_TXNS_DUPLICATE, "duplicate transaction", mutated=True)
    if not txs or block.size > params.max_block_size:
        raise ValidationError(R.BAD_BLK_LENGTH, "size limits failed")
    if not txs[0].is_coinbase():
        raise ValidationError(R.BAD_CB_MISSING, "first tx is not coinbase")
    for tx in txs[1:]:
        if tx.is_coinbase():
            raise ValidationError(R.BAD_CB_MULTIPLE, "more than one coinbase")
    for tx in txs:
        try:
            check_transaction(tx)
        except ValidationError as e:
            raise ValidationError(e.reason, f"tx {tx.txid_hex}: {e.detail}".rstrip(": ")) from None
    counts = [legacy_sigops(tx) for tx in txs]
    sigops = sum(counts)
    if sigops > params.max_block_sigops:
        raise ValidationError(R.BAD_BLK_SIGOPS, f"out-of-bounds SigOpCount {sigops}")
    return counts


def contextual_check_block_header(header: BlockHeader, prev: Any, params: ChainParams, now: int,
                                  get_ancestor: Callable[[Any, int], Any] | None = None) -> None:
    """Core `ContextualCheckBlockHeader`: difficulty, MTP, future limit, version after BIP34/65/66."""
    height = prev.height + 1
    expected = next_work_required(prev, params, get_ancestor, header.time)
    if header.bits != expected:
        raise ValidationError(R.BAD_DIFFBITS, f"incorrect proof of work: bits {header.bits:#010x}, "
                                              f"expected {expected:#010x}")
    mtp = median_time_past(prev)
    if header.time <= mtp:
        raise ValidationError(R.TIME_TOO_OLD, f"block's timestamp {header.time} is not after MTP {mtp}")
    if header.time > now + params.max_future_block_time:
        raise ValidationError(R.TIME_TOO_NEW, "block timestamp too far in the future")
    v = header.version
    if ((v < 2 and height >= BIP34_HEIGHT) or (v < 3 and height >= BIP66_HEIGHT)
            or (v < 4 and height >= BIP65_HEIGHT)):
        raise ValidationError(R.BAD_VERSION, f"0x{v & 0xFFFFFFFF:08x}")


def bip34_height_script(height: int) -> bytes:
    """`CScript() << height`: the prefix BIP34 requires of the coinbase scriptSig."""
    return push_int(height)


def contextual_check_block(block: Block, prev: Any, params: ChainParams) -> None:
    """Core `ContextualCheckBlock`: every tx final at the parent's MTP (BIP113); BIP34 height."""
    height = prev.height + 1
    cutoff = median_time_past(prev) if height >= CSV_HEIGHT else block.header.time
    for tx in block.txs:
        if not is_final_tx(tx, height, cutoff):
            raise ValidationError(R.BAD_TXNS_NONFINAL, f"non-final transaction {tx.txid_hex}")
    if height >= BIP34_HEIGHT:
        expect = bip34_height_script(height)
        if not block.txs[0].vin[0].script_sig.startswith(expect):
            raise ValidationError(R.BAD_CB_HEIGHT, "block height mismatch in coinbase")


def script_flags_for_height(height: int, params: ChainParams) -> int:
    """Core `GetBlockScriptFlags`: consensus flags for a block at `height` (DESIGN.md §2)."""
    from ..script.flags import ScriptFlags as F
    flags = F.P2SH
    if height >= BIP66_HEIGHT:
        flags |= F.DERSIG
    if height >= BIP65_HEIGHT:
        flags |= F.CHECKLOCKTIMEVERIFY
    if height >= CSV_HEIGHT:
        flags |= F.CHECKSEQUENCEVERIFY
    if height >= SEGWIT_HEIGHT:
        flags |= F.NULLDUMMY
    return flags
