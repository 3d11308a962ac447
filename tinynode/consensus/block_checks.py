"""Block rules (Core validation.cpp).

    check_block_header(header, params)                       Core CheckBlockHeader (proof of work)
    check_block(block, params)                               Core CheckBlock (context-free)
    contextual_check_block_header(header, prev, params, now) Core ContextualCheckBlockHeader
    contextual_check_block(block, prev, params)              Core ContextualCheckBlock
    check_witness_malleation(block, expect_commitment)       Core CheckWitnessMalleation
    is_block_mutated(block, check_witness_root)              Core IsBlockMutated (net layer)
    witness_commitment_index(block)                          Core GetWitnessCommitmentIndex
    script_flags_for_height(height, params)                  Core GetBlockScriptFlags

The ConnectBlock rules (inputs, fees, BIP30, sigops with P2SH, scripts) need the coins view and
live in `chain/chainstate.py`, built from `tx_checks`. `prev` is the parent index entry (anything
with `.height .time .bits .prev`); no clock is read here — `now` is passed in.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from ..params import ChainParams
from ..primitives.block import Block, BlockHeader
from ..primitives.hashes import ZERO_HASH, sha256d
from ..primitives.tx import WITNESS_SCALE_FACTOR
from ..script.flags import ScriptFlags
from ..script.script import push_int
from .errors import RejectReason, ValidationError
from .pow import median_time_past, next_work_required
from .tx_checks import check_transaction, is_final_tx, legacy_sigops

log = logging.getLogger(__name__)

__all__ = [
    "check_block_header", "check_block", "is_block_mutated", "contextual_check_block_header", "contextual_check_block",
    "script_flags_for_height", "bip34_height_script", "BIP34_HEIGHT", "BIP65_HEIGHT", "BIP66_HEIGHT",
    "CSV_HEIGHT", "SEGWIT_HEIGHT", "check_witness_malleation", "witness_commitment_index",
    "WITNESS_COMMITMENT_HEADER", "MINIMUM_WITNESS_COMMITMENT",
]

R = RejectReason

# Soft-fork activation heights by default: all from height 1 on both networks, as Core's regtest
# (DESIGN §2). The rules read the heights from `ChainParams` (bip34_height, ...), which
# `--testactivationheight` may move; these constants are the defaults.
BIP34_HEIGHT = 1
BIP65_HEIGHT = 1
BIP66_HEIGHT = 1
CSV_HEIGHT = 1
SEGWIT_HEIGHT = 0   # BIP141/143/147 (NULLDUMMY flag, witness commitment): buried at genesis, as Core's regtest

#: OP_RETURN, push 36 bytes, then BIP141's commitment header 0xaa21a9ed
WITNESS_COMMITMENT_HEADER = b"\x6a\x24\xaa\x21\xa9\xed"
#: Core MINIMUM_WITNESS_COMMITMENT: the header and the 32-byte commitment
MINIMUM_WITNESS_COMMITMENT = 38
#: Core MAX_TIMEWARP (BIP94): how far before its parent the first block of a period may be
MAX_TIMEWARP = 600


def check_block_header(header: BlockHeader, params: ChainParams) -> None:
    """Core `CheckBlockHeader`: bits in range and hash ≤ target, else `high-hash`."""
    if not header.check_pow(params.pow_limit):
        raise ValidationError(R.HIGH_HASH, "proof of work failed")


def check_block(block: Block, params: ChainParams, check_pow: bool = True,
                check_merkle: bool = True) -> list[int]:
    """Core `CheckBlock`. Merkle failures are `mutated=True` (the header may still be genuine).

    Sizes are BIP141's: the tx count and the stripped (witness-free) size, each × 4, must not
    exceed the block weight limit (`bad-blk-length`), and the legacy sigops × 4 not the sigop
    cost limit (`bad-blk-sigops`). Nothing here reads witness data (Core: witness malleability
    is checked in ContextualCheckBlock). Returns each tx's legacy sigop count (ConnectBlock
    reuses them)."""
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
    max_weight = params.max_block_weight
    if (not txs or len(txs) * WITNESS_SCALE_FACTOR > max_weight
            or block.base_size * WITNESS_SCALE_FACTOR > max_weight):
        raise ValidationError(R.BAD_BLK_LENGTH, "size limits failed")
    if not txs[0].is_coinbase():
        raise ValidationError(R.BAD_CB_MISSING, "first tx is not coinbase")
    for tx in txs[1:]:
        vin = tx.vin
        if len(vin) == 1:   # Tx.is_coinbase inlined
            po = vin[0].prevout
            if po.n == 0xFFFFFFFF and po.txid == ZERO_HASH:
                raise ValidationError(R.BAD_CB_MULTIPLE, "more than one coinbase")
    tx = None
    try:
        for tx in txs:
            check_transaction(tx)
    except ValidationError as e:
        raise ValidationError(e.reason, f"Transaction check failed (tx hash {tx.txid_hex}) {e.detail}") from None
    counts = [legacy_sigops(tx) for tx in txs]
    sigops = sum(counts)
    if sigops * WITNESS_SCALE_FACTOR > params.max_block_sigops_cost:
        raise ValidationError(R.BAD_BLK_SIGOPS, "out-of-bounds SigOpCount")
    return counts


def contextual_check_block_header(header: BlockHeader, prev: Any, params: ChainParams, now: int,
                                  get_ancestor: Callable[[Any, int], Any] | None = None) -> None:
    """Core `ContextualCheckBlockHeader`: difficulty, MTP, the BIP94 timewarp rule (when the
    params enforce it), future limit, version after BIP34/65/66."""
    height = prev.height + 1
    expected = next_work_required(prev, params, get_ancestor, header.time)
    if header.bits != expected:
        raise ValidationError(R.BAD_DIFFBITS, "incorrect proof of work")
    mtp = median_time_past(prev)
    if header.time <= mtp:
        raise ValidationError(R.TIME_TOO_OLD, "block's timestamp is too early")
    if params.enforce_bip94 and height % params.retarget_window == 0:
        # BIP94: the first block of a difficulty period may not be more than MAX_TIMEWARP
        # seconds before its parent (Core: testnet4, and regtest with -test=bip94)
        if header.time < prev.time - MAX_TIMEWARP:
            raise ValidationError(R.TIME_TIMEWARP_ATTACK,
                                  "block's timestamp is too early on diff adjustment block")
    if header.time > now + params.max_future_block_time:
        raise ValidationError(R.TIME_TOO_NEW, "block timestamp too far in the future")
    v = header.version
    if ((v < 2 and height >= params.bip34_height) or (v < 3 and height >= params.bip66_height)
            or (v < 4 and height >= params.bip65_height)):
        raise ValidationError(R.BAD_VERSION, f"0x{v & 0xFFFFFFFF:08x}")


def bip34_height_script(height: int) -> bytes:
    """`CScript() << height`: the prefix BIP34 requires of the coinbase scriptSig."""
    return push_int(height)


def witness_commitment_index(block: Block) -> int | None:
    """Core `GetWitnessCommitmentIndex`: the index of the coinbase's *last* output whose script
    is at least 38 bytes and starts OP_RETURN, push 36, 0xaa21a9ed; None when there is none."""
    pos = None
    if block.txs:
        for i, out in enumerate(block.txs[0].vout):
            spk = out.script_pubkey
            if len(spk) >= MINIMUM_WITNESS_COMMITMENT and spk[:6] == WITNESS_COMMITMENT_HEADER:
                pos = i
    return pos


def check_witness_malleation(block: Block, expect_commitment: bool) -> None:
    """Core `CheckWitnessMalleation` (BIP141). With segwit active and a commitment output: the
    coinbase witness must be exactly one 32-byte item, the reserved value
    (`bad-witness-nonce-size`), and the commitment must be sha256d(witness merkle root ||
    reserved value) (`bad-witness-merkle-match`). Otherwise no tx may carry witness data
    (`unexpected-witness`). All three are `mutated=True` (Core BLOCK_MUTATED): the witness is
    not covered by the header's merkle root, so the same block with the right witnesses may
    still arrive and must not find its hash marked invalid."""
    if expect_commitment:
        pos = witness_commitment_index(block)
        if pos is not None:
            stack = block.txs[0].vin[0].witness
            if len(stack) != 1 or len(stack[0]) != 32:
                raise ValidationError(R.BAD_WITNESS_NONCE_SIZE, "CheckWitnessMalleation : invalid witness reserved value size",
                                      mutated=True)
            root, _ = block.compute_witness_merkle_root()   # malleation impossible here (Core)
            if sha256d(root + stack[0]) != block.txs[0].vout[pos].script_pubkey[6:38]:
                raise ValidationError(R.BAD_WITNESS_MERKLE_MATCH, "CheckWitnessMalleation : witness merkle commitment mismatch",
                                      mutated=True)
            return
    for tx in block.txs:
        if tx.has_witness():
            raise ValidationError(R.UNEXPECTED_WITNESS, "CheckWitnessMalleation : unexpected witness data found",
                                  mutated=True)


def is_block_mutated(block: Block, check_witness_root: bool) -> bool:
    """Core `IsBlockMutated`, run by the net layer on a received block whose parent is known,
    before it is processed: the merkle root (and CVE-2012-2459 duplicate) check; a block without
    a coinbase holding a 64-byte (witness-stripped) transaction, which could pose as an inner
    merkle node; then `check_witness_malleation` (`check_witness_root`: segwit active for this
    block). A failure is logged as Core's "Block mutated: <state>" debug line."""
    root, duplicate = block.compute_merkle_root()
    if root != block.header.merkle_root or duplicate:
        err = (ValidationError(R.BAD_TXNMRKLROOT, "hashMerkleRoot mismatch") if root != block.header.merkle_root
               else ValidationError(R.BAD_TXNS_DUPLICATE, "duplicate transaction"))
        log.debug("Block mutated: %s", err.state_string)
        return True
    if not block.txs or not block.txs[0].is_coinbase():
        return any(tx.base_size == 64 for tx in block.txs)
    try:
        check_witness_malleation(block, check_witness_root)
    except ValidationError as e:
        log.debug("Block mutated: %s", e.state_string)
        return True
    return False


def contextual_check_block(block: Block, prev: Any, params: ChainParams) -> None:
    """Core `ContextualCheckBlock`: every tx final at the parent's MTP (BIP113); BIP34 height;
    the witness commitment (`check_witness_malleation`); then, once the witnesses are known to
    be the committed ones, the block weight (`bad-blk-weight`, not mutated: a block too heavy
    with its committed witnesses is invalid)."""
    height = prev.height + 1
    cutoff = median_time_past(prev) if height >= params.csv_height else block.header.time
    for tx in block.txs:
        if not is_final_tx(tx, height, cutoff):
            raise ValidationError(R.BAD_TXNS_NONFINAL, "non-final transaction")
    if height >= params.bip34_height:
        expect = bip34_height_script(height)
        if not block.txs[0].vin[0].script_sig.startswith(expect):
            raise ValidationError(R.BAD_CB_HEIGHT, "block height mismatch in coinbase")
    check_witness_malleation(block, height >= params.segwit_height)
    weight = block.weight
    if weight > params.max_block_weight:
        raise ValidationError(R.BAD_BLK_WEIGHT, "ContextualCheckBlock : weight limit failed")


def script_flags_for_height(height: int, params: ChainParams) -> int:
    """Core `GetBlockScriptFlags`: consensus flags for a block at `height` (DESIGN.md §2).
    P2SH, WITNESS and TAPROOT are always on (Core leaves them on for every block but two
    historical mainnet exceptions; on regtest and tinynet segwit and taproot are buried at
    genesis); DERSIG, CHECKLOCKTIMEVERIFY, CHECKSEQUENCEVERIFY and NULLDUMMY from the params'
    BIP66, BIP65, CSV and segwit heights (Core DeploymentActiveAt)."""
    # (the bits as plain ints, one ScriptFlags made at the end: IntFlag's `|` is a Python call)
    flags = _ALWAYS_FLAGS
    if height >= params.bip66_height:
        flags |= _DERSIG
    if height >= params.bip65_height:
        flags |= _CLTV
    if height >= params.csv_height:
        flags |= _CSV
    if height >= params.segwit_height:
        flags |= _NULLDUMMY
    return ScriptFlags(flags)


_ALWAYS_FLAGS = int(ScriptFlags.P2SH | ScriptFlags.WITNESS | ScriptFlags.TAPROOT)
_DERSIG = int(ScriptFlags.DERSIG)
_CLTV = int(ScriptFlags.CHECKLOCKTIMEVERIFY)
_CSV = int(ScriptFlags.CHECKSEQUENCEVERIFY)
_NULLDUMMY = int(ScriptFlags.NULLDUMMY)
