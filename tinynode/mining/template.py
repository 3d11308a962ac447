"""Block templates: a coinbase plus mempool transactions chosen by ancestor fee rate.

Mirrors Bitcoin Core's `BlockAssembler::CreateNewBlock()` / `addPackageTxs()`: packages (a tx
with its not-yet-included in-pool ancestors) are taken best ancestor fee rate (per vbyte) first,
parents before children, while the block stays under the BIP141 limits: weight below
MAX_BLOCK_WEIGHT with DEFAULT_BLOCK_RESERVED_WEIGHT (8,000) kept for the header and coinbase,
sigop cost below MAX_BLOCK_SIGOPS_COST with 400 kept for the coinbase (Core's
`TestChunkBlockLimits`: a package fails when the total would reach the limit). The coinbase
scriptSig is `<height> <extranonce>` (BIP34, Core's `CScript() << nHeight << CScriptNum(extranonce)`)
and pays subsidy + fees to `payout_script`; as Core's `GenerateCoinbaseCommitment` with segwit
active, it always carries the BIP141 witness commitment (OP_RETURN 0xaa21a9ed ||
sha256d(witness merkle root || 32 zero bytes)) and the coinbase witness is that one 32-byte
zero reserved value.

The template's block has nonce 0; the miner grinds `header76` (the first 76 header bytes).
"""

from __future__ import annotations

import heapq
import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Sequence

from ..consensus.block_checks import MAX_TIMEWARP, WITNESS_COMMITMENT_HEADER, witness_commitment_index
from ..consensus.versionbits import VersionBitsCache, deployments_for
from ..primitives.block import Block, BlockHeader, bits_to_target, merkle_root, witness_merkle_root
from ..primitives.hashes import sha256d
from ..primitives.tx import NULL_OUTPOINT, SEQUENCE_FINAL, WITNESS_SCALE_FACTOR, Tx, TxIn, TxOut
from ..script.script import push_int

if TYPE_CHECKING:  # pragma: no cover
    from ..mempool.pool import Mempool

log = logging.getLogger(__name__)

__all__ = [
    "BlockTemplate",
    "build_template",
    "template_with_txs",
    "coinbase_script_sig",
    "select_package_txs",
    "BLOCK_VERSION",
    "COINBASE_WEIGHT_RESERVE",
    "COINBASE_SIGOPS_RESERVE",
    "add_witness_commitment",
    "AssemblerOptions",
]

#: BIP9 top bits with no deployment signalled (Core's `VERSIONBITS_TOP_BITS`).
BLOCK_VERSION = 0x20000000
#: Weight kept free for the header, tx count and coinbase (Core DEFAULT_BLOCK_RESERVED_WEIGHT).
COINBASE_WEIGHT_RESERVE = 8000
#: Sigop cost kept free for the coinbase (Core DEFAULT_COINBASE_OUTPUT_MAX_ADDITIONAL_SIGOPS).
COINBASE_SIGOPS_RESERVE = 400
#: Core DEFAULT_BLOCK_MIN_TX_FEE: 1 sat/kvB
DEFAULT_BLOCK_MIN_TX_FEE = 1
_RESERVED_VALUE = bytes(32)
_NO_HEADER = BlockHeader(0, bytes(32), bytes(32), 0, 0, 0)
#: Core's `MAX_CONSECUTIVE_FAILURES` once the block is nearly full (within
#: BLOCK_FULL_ENOUGH_WEIGHT_DELTA of the limit).
_MAX_CONSECUTIVE_FAILURES = 1000
_FULL_ENOUGH_WEIGHT = 4000


@dataclass(frozen=True, slots=True)
class AssemblerOptions:
    """Core's `BlockAssembler::Options` from -blockmaxweight, -blockreservedweight,
    -blockmintxfee and (regtest) -blockversion. `clamped()` is Core's `ClampOptions`."""

    block_max_weight: int = 4_000_000
    block_reserved_weight: int = COINBASE_WEIGHT_RESERVE
    block_min_fee_rate: int = DEFAULT_BLOCK_MIN_TX_FEE    # sat/kvB
    block_version: int | None = None

    def clamped(self, consensus_max_weight: int) -> "AssemblerOptions":
        """Core `ClampOptions`: reserved weight within [2000, MAX_BLOCK_WEIGHT], max weight within
        [reserved weight, MAX_BLOCK_WEIGHT] (a reserve above -blockmaxweight leaves the template
        empty but valid)."""
        reserved = min(max(self.block_reserved_weight, 2000), consensus_max_weight)
        max_weight = min(max(self.block_max_weight, reserved), consensus_max_weight)
        return replace(self, block_max_weight=max_weight, block_reserved_weight=reserved)


def coinbase_script_sig(height: int, extranonce: int, tag: bytes = b"") -> bytes:
    """`<height> <extranonce> [tag]` as Core's `IncrementExtraNonce()` (2–100 bytes)."""
    script = push_int(height) + push_int(extranonce)
    if tag:
        tag = tag[:75]
        script += bytes((len(tag),)) + tag
    if not 2 <= len(script) <= 100:
        raise ValueError(f"coinbase scriptSig of {len(script)} bytes")
    return script


@dataclass(frozen=True, slots=True)
class BlockTemplate:
    """A block ready to grind: `block` has nonce 0; `header76` is what `grind` hashes."""

    block: Block
    height: int
    fees: int
    target: int
    sigops: int          # sigop cost (BIP141)
    extranonce: int
    payout_script: bytes

    @property
    def header(self) -> BlockHeader:
        return self.block.header

    @property
    def prev_hash(self) -> bytes:
        return self.block.header.prev_hash

    @property
    def header76(self) -> bytes:
        return self.block.header.serialize()[:76]

    @property
    def coinbase(self) -> Tx:
        return self.block.txs[0]

    @property
    def tx_count(self) -> int:
        return len(self.block.txs)

    def solved(self, nonce: int) -> Block:
        """The block with `nonce` filled in."""
        return Block(replace(self.block.header, nonce=nonce), self.block.txs)

    def with_extranonce(self, extranonce: int, time: int | None = None) -> "BlockTemplate":
        """Same transactions, a new coinbase extranonce (and optionally time): a fresh nonce space.
        (The witness commitment does not change: the coinbase's wtxid counts as zero.)"""
        cb = self.coinbase
        new_in = replace(cb.vin[0], script_sig=coinbase_script_sig(self.height, extranonce))
        new_cb = replace(cb, vin=(new_in,))
        txs = (new_cb,) + self.block.txs[1:]
        root, _ = merkle_root([t.txid for t in txs])
        header = replace(self.block.header, merkle_root=root, nonce=0,
                         time=self.block.header.time if time is None else time)
        return replace(self, block=Block(header, txs), extranonce=extranonce)


def _legacy_sigops(script: bytes) -> int:
    """Core's inaccurate `GetSigOpCount(false)` for a script (CHECKMULTISIG counts 20)."""
    n = 0
    i = 0
    end = len(script)
    while i < end:
        op = script[i]
        i += 1
        if op <= 0x4E:
            if op < 0x4C:
                i += op
            elif op == 0x4C:
                if i >= end:
                    break
                i += 1 + script[i]
            elif op == 0x4D:
                if i + 2 > end:
                    break
                i += 2 + int.from_bytes(script[i:i + 2], "little")
            else:
                if i + 4 > end:
                    break
                i += 4 + int.from_bytes(script[i:i + 4], "little")
        elif op in (0xAC, 0xAD):
            n += 1
        elif op in (0xAE, 0xAF):
            n += 20
    return n


#: Core CTxIn::MAX_SEQUENCE_NONFINAL: the coinbase input's sequence, so its locktime counts
COINBASE_SEQUENCE = SEQUENCE_FINAL - 1


def make_coinbase(height: int, value: int, payout_script: bytes, extranonce: int = 0) -> Tx:
    """The coinbase transaction (Core's `CreateNewBlock` coinbase part): version 2 (Core's
    CURRENT_VERSION), the input's sequence MAX_SEQUENCE_NONFINAL and the locktime height - 1,
    so the coinbase is timelocked to its height."""
    return Tx(2, (TxIn(NULL_OUTPOINT, coinbase_script_sig(height, extranonce), COINBASE_SEQUENCE),),
              (TxOut(value, payout_script),), height - 1)


def add_witness_commitment(txs: Sequence[Tx]) -> tuple[Tx, ...]:
    """Core `GenerateCoinbaseCommitment`: unless the coinbase already has a commitment output,
    append one (value 0, OP_RETURN push36 0xaa21a9ed || sha256d(witness root || reserved value),
    the reserved value being 32 zero bytes); then, as `UpdateUncommittedBlockStructures`, give a
    coinbase without witness the one-item witness [reserved value]. Returns the new tx list."""
    txs = tuple(txs)
    cb = txs[0]
    if witness_commitment_index(Block(_NO_HEADER, txs)) is None:
        root, _ = witness_merkle_root(txs)
        spk = WITNESS_COMMITMENT_HEADER + sha256d(root + _RESERVED_VALUE)
        cb = replace(cb, vout=cb.vout + (TxOut(0, spk),))
    if not cb.has_witness():
        cb = replace(cb, vin=(replace(cb.vin[0], witness=(_RESERVED_VALUE,)),) + cb.vin[1:])
    return (cb,) + txs[1:]


def _tx_weight(c: Any) -> int:
    w = getattr(c, "weight", None)
    return w if w is not None else c.size * WITNESS_SCALE_FACTOR


def _modified_fee(c: Any) -> int:
    """The fee mining order judges: the pool's modified fee (prioritisetransaction), else the fee."""
    m = getattr(c, "mfee", None)
    return c.fee if m is None else m


def select_package_txs(candidates: dict[bytes, Any], max_weight: int, max_sigops: int,
                       min_fee_rate: int = 0) -> tuple[list[Any], int, int, int]:
    """Core's `addPackageTxs()` with modified-entry updates.

    `candidates` maps txid → an object with `txid, tx, fee, size, sigops, parents, children`
    (size: virtual size, Core's `GetTxSize`; sigops: sigop cost; parents/children: txids inside
    the pool), optionally `weight` (the tx's BIP141 weight; size × 4 when absent) and
    `anc_fees, anc_size` (the package totals with all in-pool ancestors, as the mempool keeps
    them). A package is taken while the totals stay ≤ `max_weight` and ≤ `max_sigops`.
    Returns (txs in block order, total weight, total sigop cost, total fees). Order: by package
    (ancestor) fee rate, ancestors first, judged by modified fees (`mfee` when present: Core's
    prioritisetransaction deltas), while the total fees are the base fees the coinbase claims. Selection stops at the first package whose fee rate is
    below `min_fee_rate` sat/kvB (Core's -blockmintxfee check: everything after it pays less).
    """
    included: set[bytes] = set()
    failed: set[bytes] = set()
    anc_cache: dict[bytes, frozenset[bytes]] = {}

    def ancestors(txid: bytes) -> frozenset[bytes]:
        got = anc_cache.get(txid)
        if got is not None:
            return got
        # Iterative closure over parents (chains are ≤ 25 deep by policy, but stay iterative).
        result: set[bytes] = set()
        stack = list(candidates[txid].parents)
        while stack:
            p = stack.pop()
            if p in result or p not in candidates:
                continue
            result.add(p)
            cached = anc_cache.get(p)
            if cached is not None:
                result |= cached
            else:
                stack.extend(candidates[p].parents)
        got = frozenset(result)
        anc_cache[txid] = got
        return got

    def package(txid: bytes) -> tuple[int, int, int, int, list[bytes]]:
        members = [a for a in ancestors(txid) if a not in included]
        members.append(txid)
        fee = size = weight = sigops = 0
        for m in members:
            c = candidates[m]
            fee += _modified_fee(c)
            size += c.size
            weight += _tx_weight(c)
            sigops += c.sigops
        return fee, size, weight, sigops, members

    # Heap of (-feerate, -fee... tiebreak, txid); entries may be stale and are re-checked when popped.
    heap: list[tuple[float, int, bytes]] = []
    for txid, c in candidates.items():
        anc_fees = getattr(c, "anc_fees", None)
        if anc_fees is not None:
            # The pool keeps ancestor totals (Core's ancestor score): no closure needed yet.
            fee, size = anc_fees, c.anc_size
        else:
            fee, size, _, _, _ = package(txid)
        heap.append((-fee / size, size, txid))
    heapq.heapify(heap)

    out: list[Any] = []
    total_weight = total_sigops = total_fees = 0
    failures = 0
    while heap:
        neg_rate, _, txid = heapq.heappop(heap)
        if txid in included or txid in failed:
            continue
        fee, size, weight, sigops, members = package(txid)
        rate = fee / size
        if rate < -neg_rate - 1e-12:
            # Stale (some ancestors already in): retry with the current score.
            heapq.heappush(heap, (-rate, size, txid))
            continue
        if fee * 1000 < min_fee_rate * size:   # Core: chunk feerate << blockMinFeeRate (0 too)
            break
        if total_weight + weight > max_weight or total_sigops + sigops > max_sigops:
            failed.add(txid)
            failures += 1
            if failures > _MAX_CONSECUTIVE_FAILURES and total_weight > max_weight - _FULL_ENOUGH_WEIGHT:
                break
            continue
        failures = 0
        # Ancestors first: in-pool ancestor count orders a package topologically.
        members.sort(key=lambda m: len(ancestors(m)))
        for m in members:
            included.add(m)
            c = candidates[m]
            out.append(c)
            total_weight += _tx_weight(c)
            total_sigops += c.sigops
            total_fees += c.fee
        # Descendants of what was just included may now score higher: re-queue them.
        touched: set[bytes] = set()
        stack = [ch for m in members for ch in candidates[m].children]
        while stack:
            d = stack.pop()
            if d in touched or d in included or d not in candidates:
                continue
            touched.add(d)
            stack.extend(candidates[d].children)
        for d in touched:
            if d in failed:
                failed.discard(d)  # its package shrank; it may fit now
            dfee, dsize, _, _, _ = package(d)
            heapq.heappush(heap, (-dfee / dsize, dsize, d))
    return out, total_weight, total_sigops, total_fees


def build_template(chainstate: Any, mempool: "Mempool | None", payout_script: bytes, now: int,
                   extranonce: int = 0, params: Any = None,
                   options: AssemblerOptions | None = None,
                   versionbits: VersionBitsCache | None = None) -> BlockTemplate:
    """Core's `BlockAssembler::CreateNewBlock()` on top of `chainstate.tip`, with Core's
    `BlockAssembler::Options` (`options`; None = Core's defaults). The version is Core's
    `ComputeBlockVersion` (BIP9 bits of started / locked-in deployments, states kept in
    `versionbits`), unless -blockversion set one.

    Runs on the chain writer thread (it reads the chainstate and the mempool).
    """
    params = params if params is not None else chainstate.params
    opts = (options or AssemblerOptions()).clamped(params.max_block_weight)
    tip = chainstate.tip
    height = tip.height + 1
    mtp = chainstate.median_time_past(tip)

    # Core TestChunkBlockLimits: reserve + total >= limit fails, so the totals stay one below
    max_weight = opts.block_max_weight - opts.block_reserved_weight - 1
    max_sigops = params.max_block_sigops_cost - COINBASE_SIGOPS_RESERVE - 1
    selected: list[Any] = []
    fees = 0
    sigops = 0
    if mempool is not None and max_weight > 0:
        candidates = mempool.mining_candidates(height, mtp)
        selected, _, sigops, fees = select_package_txs(candidates, max_weight, max_sigops,
                                                       opts.block_min_fee_rate)
    return _assemble(chainstate, params, mtp, [c.tx for c in selected], fees, sigops, payout_script,
                     now, extranonce, opts.block_version, versionbits)


def template_with_txs(chainstate: Any, txs: Sequence[Tx], payout_script: bytes, now: int,
                      extranonce: int = 0, params: Any = None, version: int | None = None,
                      versionbits: VersionBitsCache | None = None) -> BlockTemplate:
    """A block of exactly `txs`, in that order, on top of `chainstate.tip`: what Core's
    `generateblock` builds (`CreateNewBlock()` without the mempool, the caller's transactions
    appended, the merkle root regenerated).

    Nothing here checks the transactions; the chain does when the block is submitted. As in
    Core, the coinbase claims only the subsidy: the transactions' fees are left unclaimed.
    Runs on the chain writer thread.
    """
    params = params if params is not None else chainstate.params
    tip = chainstate.tip
    mtp = chainstate.median_time_past(tip)
    sigops = 0   # legacy sigop cost only (the spent coins are not looked up here)
    for tx in txs:
        for txin in tx.vin:
            sigops += _legacy_sigops(txin.script_sig) * WITNESS_SCALE_FACTOR
        for out in tx.vout:
            sigops += _legacy_sigops(out.script_pubkey) * WITNESS_SCALE_FACTOR
    fees = 0
    return _assemble(chainstate, params, mtp, list(txs), fees, sigops, payout_script, now, extranonce,
                     version, versionbits)


def _assemble(chainstate: Any, params: Any, mtp: int, txs: list[Tx], fees: int, sigops: int,
              payout_script: bytes, now: int, extranonce: int,
              version: int | None = None, versionbits: VersionBitsCache | None = None) -> BlockTemplate:
    """Coinbase + `txs` under a header on the tip (the tail of Core's `CreateNewBlock()`)."""
    tip = chainstate.tip
    if version is None:   # Core ComputeBlockVersion
        version = (versionbits or VersionBitsCache()).compute_block_version(tip, deployments_for(params))
    height = tip.height + 1
    time = max(int(now), mtp + 1)
    window = getattr(params, "retarget_window", 0)
    if window and height % window == 0:
        # Core GetMinimumTime (BIP94, on every network): the first block of a difficulty period
        # is at most MAX_TIMEWARP seconds before its parent
        time = max(time, tip.time - MAX_TIMEWARP)
    bits = chainstate.next_bits(tip, time)
    target = bits_to_target(bits)[0]
    coinbase = make_coinbase(height, params.block_subsidy(height) + fees, payout_script, extranonce)
    all_txs = (coinbase,) + tuple(txs)
    if height >= params.segwit_height:
        all_txs = add_witness_commitment(all_txs)
    # header (80) + tx count (≤ 5) + coinbase, all stripped bytes × 4 plus the coinbase witness
    if (80 + 5) * WITNESS_SCALE_FACTOR + all_txs[0].weight > COINBASE_WEIGHT_RESERVE:
        raise ValueError("payout script too large for the coinbase reserve")
    root, _ = merkle_root([t.txid for t in all_txs])
    header = BlockHeader(version, tip.hash, root, time, bits, 0)
    block = Block(header, all_txs)
    sigops += _legacy_sigops(payout_script) * WITNESS_SCALE_FACTOR
    log.debug("template height=%d txs=%d fees=%d weight=%d sigops=%d", height, len(all_txs), fees,
              block.weight, sigops)
    return BlockTemplate(block, height, fees, target, sigops, extranonce, payout_script)
