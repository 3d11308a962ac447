"""The transaction memory pool (Core `CTxMemPool` + `MemPoolAccept`, btcd `mempool.TxPool`).

Accepting a tx (Core `PreChecks` → `ReplacementChecks` → `PolicyScriptChecks` → `Finalize`):

    check_transaction (consensus) → not a coinbase → standard (policy.check_standard_tx)
    → final at the next block → not already in the pool → conflicts (spends what a pool tx spends)
    → inputs from the UTXO set or pool parents (missing: an orphan) → BIP68 sequence locks
    → amounts / maturity (consensus) → standard inputs, sigops → fee ≥ pool min fee and
    min relay fee → ancestor/descendant limits → full RBF rules 2–6 → scripts with the
    standard flags → evict the replaced txs, add, trim the pool to its size limit.

The pool is synchronous and lives on the chain writer thread (asyncio code goes through
`writer.call`). It reads coins with `chainstate.get_coin` and follows the chain through
`chainstate.subscribe`: a connected block removes its txs and their conflicts; disconnected
blocks return their txs (Core `MaybeUpdateMempoolForReorg`) once the new tip is known.

Errors: `ValidationError` for consensus-invalid txs (the sender's fault), `MissingInputsError`
(a `ValidationError` with reason `bad-txns-inputs-missingorspent`) when parents are unknown,
`PolicyError` for everything a valid tx can be refused for (Core's strings).
"""

from __future__ import annotations

import heapq
import logging
import math
import os
import struct
import time as _time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Hashable, Iterable

from ..consensus.block_checks import script_flags_for_height
from ..consensus.errors import PolicyError, RejectReason, ValidationError
from ..consensus.block_checks import script_flags_for_height
from ..consensus.sigops import inputs_witness_sigops
from ..consensus.tx_checks import (
    check_transaction, check_tx_input_coins, enforces_bip68, is_final_tx, legacy_sigops,
    p2sh_sigops as p2sh_sigops_of, precomputed_tx_data, sequence_locks, sequence_locks_satisfied,
)
from ..primitives.block import Block
from ..primitives.coin import Coin
from ..primitives.hashes import hash_to_hex
from ..primitives.serialize import ByteReader, DecodeError, ser_compact_size
from ..primitives.tx import OutPoint, Tx
from ..script.flags import MANDATORY_FLAGS, STANDARD_FLAGS, ScriptFlags
from ..script.interpreter import ScriptError, script_error_string, verify_script
from .fees import BlockPolicyEstimator
from .orphans import OrphanPool
from .policy import (
    MAX_STANDARD_TX_SIGOPS_COST, MIN_STANDARD_TX_SIZE, TRUC_ANCESTOR_LIMIT, TRUC_CHILD_MAX_VSIZE,
    TRUC_DESCENDANT_LIMIT, TRUC_MAX_VSIZE, TRUC_VERSION, FeeRate, PolicyConfig, check_inputs_standard, check_standard_tx,
    check_witness_standard, virtual_size,
)

log = logging.getLogger(__name__)

__all__ = ["Mempool", "MempoolEntry", "MempoolInfo", "MissingInputsError", "PackageResult",
           "PackageTxResult", "ProcessResult", "ScriptCheckError", "is_consensus_invalid"]

R = RejectReason
_ROLLING_FEE_HALFLIFE = 12 * 3600      # Core CTxMemPool::ROLLING_FEE_HALFLIFE
_MEMPOOL_FILE_MAGIC = b"TNMEMPL1"
_MEMPOOL_FILE_VERSION = 1
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_BIP125_MAX_SEQUENCE = 0xFFFFFFFD
MAX_PACKAGE_COUNT = 25              # Core policy/packages.h
MAX_PACKAGE_WEIGHT = 404_000
_RECONSIDERABLE = ("min relay fee not met", "mempool min fee not met")   # Core TX_RECONSIDERABLE


class MissingInputsError(ValidationError):
    """Some inputs are neither in the UTXO set nor in the pool (Core TX_MISSING_INPUTS)."""

    def __init__(self, missing: list[OutPoint], detail: str = "") -> None:
        super().__init__(R.BAD_TXNS_INPUTS_MISSINGORSPENT, detail)
        self.missing = missing

    @property
    def missing_parents(self) -> list[bytes]:
        return list(dict.fromkeys(p.txid for p in self.missing))


class ScriptCheckError(PolicyError):
    """An input script failed with the standard flags (Core's reject reason
    "mempool-script-verify-flag-failed (...)", TX_NOT_STANDARD in Core v31, which never bans for
    a tx). `consensus` says whether it also fails with only the consensus flags, i.e. whether the
    tx could never be valid in a block (Core before v30 re-checked with the mandatory flags in
    `CheckInputScripts` for the same question; tinynode asks it to price the sender's work).
    `witness_stripped` is Core's TX_WITNESS_STRIPPED: a tx without any witness whose scripts pass
    with the standard flags minus WITNESS and CLEANSTACK but fail with only CLEANSTACK removed —
    just the witness is missing, so the tx itself may be fine (the net layer does not remember
    it as rejected)."""

    def __init__(self, reason: str, detail: str, consensus: bool, witness_stripped: bool = False) -> None:
        super().__init__(reason, detail)
        self.consensus = consensus
        self.witness_stripped = witness_stripped


def _passes(tx: Any, coins: list, txdata: Any, flags: int) -> bool:
    for i, (txin, coin) in enumerate(zip(tx.vin, coins)):
        try:
            verify_script(txin.script_sig, coin.script_pubkey, tx, i, flags, coin.value, None, txdata)
        except ScriptError:
            return False
    return True


def _only_witness_missing(tx: Any, coins: list, txdata: Any) -> bool:
    """Core PolicyScriptChecks' TX_WITNESS_STRIPPED test for a tx without witness: every input
    passes with the standard flags minus WITNESS and CLEANSTACK (CLEANSTACK needs WITNESS), and
    some input fails with only CLEANSTACK removed (the failure is witness validation's)."""
    no_cleanstack = STANDARD_FLAGS & ~ScriptFlags.CLEANSTACK
    return (_passes(tx, coins, txdata, no_cleanstack & ~ScriptFlags.WITNESS)
            and not _passes(tx, coins, txdata, no_cleanstack))


def is_consensus_invalid(err: BaseException | None) -> bool:
    """True for a tx no block could ever contain: a consensus `ValidationError` (not missing
    inputs, which may arrive later) or a script that fails with the consensus flags alone."""
    if isinstance(err, ScriptCheckError):
        return err.consensus
    if not isinstance(err, ValidationError) or isinstance(err, MissingInputsError):
        return False
    # Core TX_PREMATURE_SPEND: valid once the coinbase matures, not the sender's fault
    return err.reason not in (R.BAD_TXNS_PREMATURE_SPEND_OF_COINBASE, R.MISSING_INPUTS,
                              R.TXN_ALREADY_KNOWN, R.TXN_ALREADY_IN_MEMPOOL)


class _Entry:
    """Mutable bookkeeping for one pool tx (Core `CTxMemPoolEntry`)."""

    __slots__ = ("tx", "txid", "fee", "mfee", "size", "weight", "sigops", "time", "height", "parents",
                 "children", "anc_count", "anc_size", "anc_fees", "anc_sigops", "desc_count",
                 "desc_size", "desc_fees", "ver")

    def __init__(self, tx: Tx, fee: int, size: int, sigops: int, time: float, height: int,
                 delta: int = 0) -> None:
        """`size` is the virtual size (Core `GetTxSize`), `sigops` the sigop cost; `fee` the
        base fee, `mfee` the modified fee (plus the `prioritisetransaction` delta, Core
        `GetModifiedFee`), which the ancestor / descendant totals, eviction and mining use."""
        self.tx = tx
        self.txid = tx.txid
        self.weight = tx.weight
        self.fee = fee
        self.mfee = fee = fee + delta
        self.size = size
        self.sigops = sigops
        self.time = time
        self.height = height
        self.parents: set[bytes] = set()
        self.children: set[bytes] = set()
        self.anc_count = 1
        self.anc_size = size
        self.anc_fees = fee
        self.anc_sigops = sigops
        self.desc_count = 1
        self.desc_size = size
        self.desc_fees = fee
        self.ver = 0

    def add_ancestor(self, a: "_Entry") -> None:
        """Count pool ancestor `a` in this entry's ancestor totals."""
        self.anc_count += 1
        self.anc_size += a.size
        self.anc_fees += a.mfee
        self.anc_sigops += a.sigops

    def descendant_score(self) -> float:
        """Core's descendant_score: the higher of the tx's own and its package-with-descendants rate."""
        return max(self.mfee / self.size, self.desc_fees / self.desc_size)


@dataclass(frozen=True, slots=True)
class MempoolEntry:
    """What RPC and relay see of a pool tx (Core `getmempoolentry` fields)."""

    txid: bytes
    tx: Tx
    fee: int
    size: int
    time: int
    height: int
    sigops: int
    ancestor_count: int
    ancestor_size: int
    ancestor_fees: int
    descendant_count: int
    descendant_size: int
    descendant_fees: int
    depends: tuple[bytes, ...]
    spent_by: tuple[bytes, ...]
    modified_fee: int | None = None        # the fee with its prioritisetransaction delta

    @property
    def modified(self) -> int:
        return self.fee if self.modified_fee is None else self.modified_fee

    @property
    def fee_rate(self) -> FeeRate:
        return FeeRate.from_fee(self.fee, self.size)


@dataclass(frozen=True, slots=True)
class MempoolInfo:
    """Core `getmempoolinfo`."""

    size: int
    bytes: int
    total_fee: int
    max_mempool: int
    mempool_min_fee: FeeRate
    min_relay_fee: FeeRate
    incremental_relay_fee: FeeRate
    full_rbf: bool
    orphans: int


@dataclass(frozen=True, slots=True)
class ProcessResult:
    """Outcome of `process_tx`: what entered the pool (the tx and resolved orphans, in order),
    whether the tx was kept as an orphan (and which parents it waits for), and the error."""

    accepted: tuple[MempoolEntry, ...]
    orphan: bool = False
    missing_parents: tuple[bytes, ...] = ()
    error: Exception | None = None
    #: orphans this tx unblocked that were then refused, with why (Core ProcessOrphanTx hands
    #: each to TxDownloadManager::MempoolRejectedTx, which remembers it as rejected)
    orphans_rejected: tuple[tuple[Tx, Exception], ...] = ()


@dataclass(frozen=True, slots=True)
class PackageTxResult:
    """One tx's outcome in `accept_package` (Core `MempoolAcceptResult`). kind: "valid" (entered
    now), "mempool" (was already there), "different-witness" (same txid, other witness in the
    pool: `other_wtxid`), "invalid" (`error`). For "valid": the feerate it was judged by in
    sat/kvB (the package's when it needed its children's fees) and the wtxids counted in it,
    and the txids it replaced."""

    txid: bytes
    wtxid: bytes
    kind: str
    vsize: int | None = None
    fee: int | None = None
    effective_feerate: int | None = None
    effective_includes: tuple[bytes, ...] = ()
    other_wtxid: bytes | None = None
    error: Exception | None = None
    replaced: tuple[bytes, ...] = ()


@dataclass(frozen=True, slots=True)
class PackageResult:
    """Core `PackageMempoolAcceptResult`: `error` is the package-wide state (None = success,
    e.g. "transaction failed", "package-not-sorted"); `results` one per tx in package order, or
    empty when the package was refused before any tx was looked at; `accepted` the entries
    that entered the pool, in order."""

    error: str | None
    results: tuple[PackageTxResult, ...]
    accepted: tuple[MempoolEntry, ...] = ()


def is_child_with_parents(txs: list[Tx]) -> bool:
    """Core `IsChildWithParents`: every tx but the last is a parent of the last."""
    if len(txs) < 2:
        return False
    spent = {i.prevout.txid for i in txs[-1].vin}
    return all(t.txid in spent for t in txs[:-1])


def is_child_with_parents_tree(txs: list[Tx]) -> bool:
    """Core `IsChildWithParentsTree`: child-with-parents, and no parent spends another."""
    if not is_child_with_parents(txs):
        return False
    parents = {t.txid for t in txs[:-1]}
    return all(i.prevout.txid not in parents for t in txs[:-1] for i in t.vin)


def _well_formed_package(txs: list[Tx]) -> str | None:
    """Core `IsWellFormedPackage`: the package-wide reject reason, or None."""
    if len(txs) > MAX_PACKAGE_COUNT:
        return "package-too-many-transactions"
    if len(txs) > 1 and sum(t.weight for t in txs) > MAX_PACKAGE_WEIGHT:
        return "package-too-large"
    txids = [t.txid for t in txs]
    if len(set(txids)) != len(txids):
        return "package-contains-duplicates"
    later = set(txids)
    for t in txs:           # sorted: no tx spends one that comes after it
        later.discard(t.txid)
        if any(i.prevout.txid in later for i in t.vin):
            return "package-not-sorted"
    seen = set()
    for t in txs:
        for i in t.vin:
            if i.prevout in seen:
                return "conflict-in-package"
            seen.add(i.prevout)
    return None


def _btc(sats: int) -> str:
    """Core `FormatMoney`: coins with at least 2 decimals, trailing zeros dropped."""
    sign = "-" if sats < 0 else ""
    whole, frac = divmod(abs(sats), 100_000_000)
    frac_s = f"{frac:08d}".rstrip("0")
    return f"{sign}{whole}.{frac_s.ljust(2, '0')}"


def _entry_view(e: _Entry) -> MempoolEntry:
    return MempoolEntry(e.txid, e.tx, e.fee, e.size, int(e.time), e.height, e.sigops,
                        e.anc_count, e.anc_size, e.anc_fees, e.desc_count, e.desc_size, e.desc_fees,
                        tuple(sorted(e.parents)), tuple(sorted(e.children)), e.mfee)


class Mempool:
    """The pool. Synchronous; call it only from the chain writer thread."""

    def __init__(self, params: Any, chainstate: Any, config: PolicyConfig | None = None, *,
                 clock: Callable[[], float] = _time.time, subscribe: bool = True,
                 fee_estimator: BlockPolicyEstimator | None = None) -> None:
        """`fee_estimator`: Core's CBlockPolicyEstimator fed by this pool (a fresh one if None)."""
        self.params = params
        self.chainstate = chainstate
        self.config = config or PolicyConfig()
        self._clock = clock
        self._entries: dict[bytes, _Entry] = {}
        self._spenders: dict[OutPoint, bytes] = {}
        self.total_size = 0
        self.total_fees = 0
        self._deltas: dict[bytes, int] = {}    # Core mapDeltas: prioritisetransaction by txid
        self.sequence = 0                      # bumps on every change (the miner watches it)
        self.orphans = OrphanPool(self.config.max_orphans, self.config.orphan_weight_per_peer,
                                  self.config.orphan_expiry)
        self._rolling_min_fee = 0.0            # sat/kvB (Core rollingMinimumFeeRate)
        self._last_rolling_update = 0.0
        self._block_since_bump = False
        self._evict_heap: list[tuple[float, float, bytes, int]] = []
        self._disconnected: list[Tx] = []
        self._min_time: float | None = None    # a lower bound of entry times (for expiry)
        self.fee_estimator = fee_estimator if fee_estimator is not None else BlockPolicyEstimator()
        self.last_replaced: tuple[bytes, ...] = ()
        if subscribe and hasattr(chainstate, "subscribe"):
            chainstate.subscribe(self._on_chain_event)

    # ------------------------------------------------------------------ views

    def __contains__(self, txid: object) -> bool:
        return txid in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, txid: bytes) -> MempoolEntry | None:
        e = self._entries.get(txid)
        return _entry_view(e) if e is not None else None

    def get_tx(self, txid: bytes) -> Tx | None:
        e = self._entries.get(txid)
        return e.tx if e is not None else None

    def txids(self) -> list[bytes]:
        return list(self._entries)

    def entries(self) -> list[MempoolEntry]:
        """Every entry, parents before children (then by arrival)."""
        return [_entry_view(e) for e in self._topo_order()]

    def spender_of(self, outpoint: OutPoint) -> bytes | None:
        """The pool tx spending `outpoint`, if any."""
        return self._spenders.get(outpoint)

    def ancestors(self, txid: bytes) -> set[bytes]:
        return self._ancestors(txid)

    def descendants(self, txid: bytes) -> set[bytes]:
        return self._descendants(txid)

    def get_coin(self, outpoint: OutPoint) -> Coin | None:
        """A coin as seen with the pool applied: pool outputs exist, pool-spent coins do not."""
        if outpoint in self._spenders:
            return None
        e = self._entries.get(outpoint.txid)
        if e is not None:
            if outpoint.n < len(e.tx.vout):
                out = e.tx.vout[outpoint.n]
                return Coin(out.value, out.script_pubkey, self.chainstate.tip.height + 1, False)
            return None
        return self.chainstate.get_coin(outpoint)

    def info(self, now: float | None = None) -> MempoolInfo:
        now = self._clock() if now is None else now
        cfg = self.config
        return MempoolInfo(len(self._entries), self.total_size, self.total_fees, cfg.max_size,
                           max(self.min_fee_rate(now), cfg.min_relay_fee), cfg.min_relay_fee,
                           cfg.incremental_relay_fee, cfg.full_rbf, len(self.orphans))

    def prioritise(self, txid: bytes, delta: int) -> int:
        """Core `CTxMemPool::PrioritiseTransaction`: add `delta` satoshis to the txid's fee delta
        (kept for a tx not in the pool yet, applied when it enters; a total of zero is
        forgotten). A pool entry's modified fee and its ancestors' descendant totals and
        descendants' ancestor totals change with it: mining order and eviction follow, its
        base fee (what the block's coinbase collects) does not. Returns the new total delta."""
        total = self._deltas.get(txid, 0) + delta
        e = self._entries.get(txid)
        if e is not None and delta:
            e.mfee += delta
            e.anc_fees += delta
            e.desc_fees += delta
            for a in self._ancestors(txid):
                ae = self._entries[a]
                ae.desc_fees += delta
                self._push_evict(ae)
            for d in self._descendants(txid):
                self._entries[d].anc_fees += delta
            self._push_evict(e)
            self.sequence += 1
        if total:
            self._deltas[txid] = total
        else:
            self._deltas.pop(txid, None)
        log.info("PrioritiseTransaction: %s fee += %s", hash_to_hex(txid), _btc(delta))
        return total

    def prioritised(self) -> list[tuple[bytes, int, int | None]]:
        """Core `GetPrioritisedTransactions`: (txid, delta, modified fee if in the pool)."""
        out = []
        for txid, delta in self._deltas.items():
            e = self._entries.get(txid)
            out.append((txid, delta, e.mfee if e is not None else None))
        return out

    def mining_candidates(self, height: int | None = None, mtp: int | None = None) -> dict[bytes, _Entry]:
        """Entries for the block assembler: objects with txid, tx, fee, size, sigops, parents,
        children. Read-only; valid until the pool changes (same thread)."""
        return self._entries

    # ------------------------------------------------------------------ fees

    def min_fee_rate(self, now: float | None = None) -> FeeRate:
        """Core `CTxMemPool::GetMinFee`: the rolling minimum after evictions, decaying with a
        12-hour half-life (faster while the pool is small) once a block has arrived."""
        now = self._clock() if now is None else now
        if not self._block_since_bump or self._rolling_min_fee == 0:
            return FeeRate(int(round(self._rolling_min_fee)))
        if now > self._last_rolling_update + 10:
            halflife = _ROLLING_FEE_HALFLIFE
            if self.total_size < self.config.max_size / 4:
                halflife /= 4
            elif self.total_size < self.config.max_size / 2:
                halflife /= 2
            self._rolling_min_fee /= math.pow(2.0, (now - self._last_rolling_update) / halflife)
            self._last_rolling_update = now
            if self._rolling_min_fee < self.config.incremental_relay_fee.sat_per_kvb / 2:
                self._rolling_min_fee = 0.0
                return FeeRate(0)
        return max(FeeRate(int(round(self._rolling_min_fee))), self.config.incremental_relay_fee)

    def _track_package_removed(self, rate: FeeRate, now: float) -> None:
        if rate.sat_per_kvb > self._rolling_min_fee:
            self._rolling_min_fee = float(rate.sat_per_kvb)
            self._block_since_bump = False
            self._last_rolling_update = now

    # ------------------------------------------------------------------ accept

    def accept(self, tx: Tx, now: float | None = None, *, bypass_limits: bool = False) -> MempoolEntry:
        """Core `AcceptToMemoryPool` for one tx. Returns the new entry; raises ValidationError
        (MissingInputsError when parents are unknown) or PolicyError."""
        now = self._clock() if now is None else now
        e = self._accept(tx, now, bypass_limits=bypass_limits)
        return _entry_view(e)

    def process_tx(self, tx: Tx, now: float | None = None, peer: Hashable | None = None) -> ProcessResult:
        """Accept `tx`; on success retry the orphans it unblocks; on missing parents keep it as
        an orphan (Core `PeerManagerImpl::ProcessMessage` "tx" + `ProcessOrphanTx`)."""
        now = self._clock() if now is None else now
        try:
            first = self._accept(tx, now)
        except MissingInputsError as err:
            kept = tx.txid in self.orphans or self.orphans.add(tx, peer, now)
            return ProcessResult((), kept, tuple(err.missing_parents), err)
        except (ValidationError, PolicyError) as err:
            return ProcessResult((), False, (), err)
        accepted = [_entry_view(first)]
        rejected: list[tuple[Tx, Exception]] = []
        self.orphans.remove(tx.txid)
        queue = [tx]
        while queue:
            parent = queue.pop(0)
            for orphan in self.orphans.children_of(parent):
                if orphan.tx.txid not in self.orphans:
                    continue
                try:
                    e = self._accept(orphan.tx, now)
                except MissingInputsError:
                    continue  # still waiting for another parent
                except (ValidationError, PolicyError) as err:
                    log.debug("orphan %s rejected: %s", orphan.tx.txid_hex, err)
                    self.orphans.remove(orphan.tx.txid)
                    rejected.append((orphan.tx, err))
                    continue
                self.orphans.remove(orphan.tx.txid)
                accepted.append(_entry_view(e))
                queue.append(orphan.tx)
        return ProcessResult(tuple(accepted), orphans_rejected=tuple(rejected))

    def test_accept(self, tx: Tx, now: float | None = None) -> MempoolEntry:
        """Core `testmempoolaccept`: every check `accept` makes (RBF included), but nothing is
        added or evicted. Returns the entry the tx would get; raises like `accept`."""
        now = self._clock() if now is None else now
        return _entry_view(self._accept(tx, now, test_only=True))

    def accept_package(self, txs: list[Tx], now: float | None = None, *,
                       max_rate_kvb: int = 0) -> PackageResult:
        """Core `ProcessNewPackage` → `AcceptPackage` for a single tx or a child with its
        unconfirmed parents (topologically sorted, child last):

        1. the package must be well formed (count, weight, no duplicates, sorted, no two
           inputs spending one coin) and child-with-parents, else a package-wide error and no
           per-tx results;
        2. each tx already in the pool is reported as such; every other tx is tried on its own
           (RBF allowed); one that fails only for its feerate (Core TX_RECONSIDERABLE) or
           missing inputs (a parent that failed for its feerate) is kept for step 3; any other
           failure ends the package ("transaction failed") after the rest were tried alone;
        3. the kept txs are evaluated together: every check per tx except its own feerate,
           then the package feerate (total fees / total vsize) against the mempool minimum and
           the min relay fee (CPFP: a parent below the min relay fee with a child paying for
           both enters). A failure puts back the pool as it was. tinynode does not replace pool
           txs from step 3 (Core's package RBF): such a package fails with
           "package RBF failed: ...".
        Then the pool is trimmed to its size ("mempool full" for a package tx evicted).
        Package txs are not used for fee estimation (Core `m_submitted_in_package`)."""
        now = self._clock() if now is None else now
        bad = _well_formed_package(txs)
        if bad is None and len(txs) > 1 and not is_child_with_parents(txs):
            bad = "package-not-child-with-parents"
        if bad is not None:
            return PackageResult(bad, ())
        final: dict[bytes, PackageTxResult] = {}
        nonfinal: dict[bytes, PackageTxResult] = {}
        accepted: list[_Entry] = []
        quit_early = False
        to_eval: list[Tx] = []
        for tx in txs:
            wtxid = tx.wtxid
            e = self._entries.get(tx.txid)
            if e is not None:
                if e.tx.wtxid == wtxid:
                    final[wtxid] = PackageTxResult(tx.txid, wtxid, "mempool", e.size, e.fee)
                else:
                    final[wtxid] = PackageTxResult(tx.txid, wtxid, "different-witness",
                                                   other_wtxid=e.tx.wtxid)
                continue
            try:
                e = self._accept(tx, now, estimate=False, max_rate_kvb=max_rate_kvb)
            except (ValidationError, PolicyError) as err:
                nonfinal[wtxid] = PackageTxResult(tx.txid, wtxid, "invalid", error=err)
                retry = isinstance(err, MissingInputsError) or (
                    isinstance(err, PolicyError) and err.reason in _RECONSIDERABLE)
                if len(txs) == 1 or not retry:
                    quit_early = True
                else:
                    to_eval.append(tx)
                continue
            accepted.append(e)
            final[wtxid] = PackageTxResult(tx.txid, wtxid, "valid", e.size, e.fee,
                                           e.mfee * 1000 // e.size, (wtxid,), replaced=self.last_replaced)
        error: str | None = "transaction failed" if quit_early else None
        multi: dict[bytes, PackageTxResult] = {}
        if not quit_early and to_eval:
            error, multi, added = self._accept_subpackage(to_eval, now, max_rate_kvb)
            accepted.extend(added)
        self.trim_to_size(now)          # Core LimitMempoolSize
        results = []
        for tx in txs:
            wtxid = tx.wtxid
            r = multi.get(wtxid) or final.get(wtxid)
            if r is not None and r.kind != "invalid" and tx.txid not in self._entries:
                error = "transaction failed"
                r = PackageTxResult(tx.txid, wtxid, "invalid", error=PolicyError("mempool full"))
            if r is None:
                r = nonfinal[wtxid]
            results.append(r)
        kept = tuple(_entry_view(e) for e in accepted if self._entries.get(e.txid) is e)
        return PackageResult(error, tuple(results), kept)

    def _accept_subpackage(self, txs: list[Tx], now: float, max_rate_kvb: int
                           ) -> tuple[str | None, dict[bytes, PackageTxResult], list[_Entry]]:
        """Core `AcceptMultipleTransactionsInternal` (step 3 of `accept_package`): all or none."""
        for tx in txs:
            if any(i.prevout in self._spenders for i in tx.vin):
                return ("package RBF failed: tinynode does not replace mempool transactions "
                        "from a package", {}, [])
        added: list[_Entry] = []

        def undo() -> None:
            for e in reversed(added):
                if e.txid in self._entries:
                    self._remove_set({e.txid} | self._descendants(e.txid))
        for tx in txs:
            try:
                added.append(self._accept(tx, now, in_package=True, estimate=False,
                                          max_rate_kvb=max_rate_kvb))
            except (ValidationError, PolicyError) as err:
                undo()
                return "transaction failed", {tx.wtxid: PackageTxResult(tx.txid, tx.wtxid, "invalid", error=err)}, []
        fee = sum(e.mfee for e in added)      # Core: the package's modified fees
        size = sum(e.size for e in added)
        # Core CheckFeeRate on the package totals
        reject_fee = self.min_fee_rate(now).fee(size)
        err: PolicyError | None = None
        if reject_fee > 0 and fee < reject_fee:
            err = PolicyError("mempool min fee not met", f"{fee} < {reject_fee}")
        elif fee < self.config.min_relay_fee.fee(size):
            err = PolicyError("min relay fee not met", f"{fee} < {self.config.min_relay_fee.fee(size)}")
        if err is not None:
            undo()
            last = txs[-1]
            return "transaction failed", {last.wtxid: PackageTxResult(last.txid, last.wtxid, "invalid", error=err)}, []
        rate = fee * 1000 // size
        wtxids = tuple(t.wtxid for t in txs)
        return None, {e.tx.wtxid: PackageTxResult(e.txid, e.tx.wtxid, "valid", e.size, e.fee, rate, wtxids)
                      for e in added}, added

    def _accept(self, tx: Tx, now: float, *, bypass_limits: bool = False,
                skip_scripts: bool = False, test_only: bool = False,
                in_package: bool = False, estimate: bool = True, max_rate_kvb: int = 0) -> _Entry:
        """One tx through every check (see the module docstring). `in_package`: Core's
        package evaluation (`m_package_feerates`): the tx's own feerate is not checked (the
        package's is, by `accept_package`), and the pool is neither expired nor trimmed here.
        `estimate`: the fee estimator may track it (not for package submissions, as Core);
        `max_rate_kvb` (sat/kvB, 0 = none): Core's client maxfeerate, "max feerate exceeded".
        The txs a replacement evicted are left in `self.last_replaced`."""
        self.last_replaced: tuple[bytes, ...] = ()
        cfg = self.config
        cs = self.chainstate
        entries = self._entries
        txid = tx.txid

        check_transaction(tx)
        if tx.is_coinbase():
            raise ValidationError(R.COINBASE)
        require_standard = getattr(self.params, "require_standard", True)   # Core -acceptnonstdtxn
        if require_standard:
            check_standard_tx(tx, cfg)
        if tx.base_size < MIN_STANDARD_TX_SIZE:
            # Core PreChecks (CVE-2017-12842): the size without witness, even with -acceptnonstdtxn
            raise PolicyError("tx-size-small")
        tip = cs.tip
        height = tip.height + 1
        mtp = cs.median_time_past(tip)
        if not is_final_tx(tx, height, mtp):
            raise PolicyError(R.NON_FINAL)
        if txid in entries:
            raise PolicyError(R.TXN_ALREADY_IN_MEMPOOL)

        # Conflicts: pool txs spending the same outpoints (Core PreChecks, m_conflicts).
        spenders = self._spenders
        conflicts: set[bytes] = set()
        for txin in tx.vin:
            s = spenders.get(txin.prevout)
            if s is not None:
                conflicts.add(s)
        if conflicts and not cfg.full_rbf and not self._signals_replaceable(conflicts):
            raise PolicyError(R.TXN_MEMPOOL_CONFLICT)

        # Inputs: pool parents first, then the UTXO set.
        coins: list[Coin] = []
        parents: set[bytes] = set()
        prev_heights: list[int] = []
        missing: list[OutPoint] = []
        get_coin = cs.get_coin
        for txin in tx.vin:
            prevout = txin.prevout
            parent = entries.get(prevout.txid)
            if parent is not None:
                vout = parent.tx.vout
                if prevout.n < len(vout):
                    out = vout[prevout.n]
                    coins.append(Coin(out.value, out.script_pubkey, height, False))
                    parents.add(prevout.txid)
                    prev_heights.append(height)
                    continue
                missing.append(prevout)
                continue
            coin = get_coin(prevout)
            if coin is None:
                missing.append(prevout)
                continue
            coins.append(coin)
            prev_heights.append(coin.height)
        if missing:
            for n in range(len(tx.vout)):
                if get_coin(OutPoint(txid, n)) is not None:
                    raise PolicyError(R.TXN_ALREADY_KNOWN)
            raise MissingInputsError(missing, f"{tx.txid_hex}: {len(missing)} input(s) missing or spent")

        if enforces_bip68(tx):
            lock = sequence_locks(tx, prev_heights, self._mtp_at_height)
            if not sequence_locks_satisfied(lock, height, mtp):
                raise PolicyError(R.NON_BIP68_FINAL)

        fee = check_tx_input_coins(tx, coins, height, self.params.coinbase_maturity)
        if require_standard:
            p2sh_sigops = check_inputs_standard(tx, coins)
            if tx.has_witness():
                check_witness_standard(tx, coins)
        else:
            p2sh_sigops = p2sh_sigops_of(tx, coins)   # Core GetP2SHSigOpCount, always counted
        # Core GetTransactionSigOpCost with the standard flags (P2SH and WITNESS)
        sigops = ((legacy_sigops(tx) + p2sh_sigops) * 4
                  + inputs_witness_sigops(tx, coins, STANDARD_FLAGS))
        if sigops > MAX_STANDARD_TX_SIGOPS_COST:
            raise PolicyError(R.BAD_TXNS_TOO_MANY_SIGOPS, f"{sigops}")

        size = virtual_size(tx.weight, sigops)
        delta = self._deltas.get(txid, 0)
        mfee = fee + delta      # Core ws.m_modified_fees: what the fee checks below judge
        if max_rate_kvb and mfee * 1000 > max_rate_kvb * size:
            raise PolicyError("max feerate exceeded")
        if not bypass_limits and not in_package:
            reject_fee = self.min_fee_rate(now).fee(size)
            if reject_fee > 0 and mfee < reject_fee:
                raise PolicyError("mempool min fee not met", f"{mfee} < {reject_fee}")
            relay_fee = cfg.min_relay_fee.fee(size)
            if mfee < relay_fee:
                raise PolicyError("min relay fee not met", f"{mfee} < {relay_fee}")

        # TRUC (version 3) topology and size rules, with sibling eviction (Core SingleTRUCChecks)
        if tx.version == TRUC_VERSION or any(entries[p].tx.version == TRUC_VERSION for p in parents):
            sibling = self._truc_checks(tx, parents, size, conflicts)
            if sibling is not None:
                conflicts = conflicts | {sibling}

        # Ancestor / descendant limits (Core CalculateMemPoolAncestors).
        ancestors = self._ancestors_of(parents)
        self._check_chain_limits(ancestors, size)
        if conflicts:
            # Core EntriesAndTxidsDisjoint: never spend what this tx replaces.
            if ancestors & conflicts:
                raise PolicyError(R.BAD_TXNS_SPENDS_CONFLICTING_TX)
            to_evict = self._replacement_checks(tx, mfee, size, conflicts, ancestors)
        else:
            to_evict = set()

        if not skip_scripts:
            # Core PolicyScriptChecks: each input with its spent amount, one PrecomputedTxData
            txdata = precomputed_tx_data(tx, coins)
            for i, (txin, coin) in enumerate(zip(tx.vin, coins)):
                try:
                    verify_script(txin.script_sig, coin.script_pubkey, tx, i, STANDARD_FLAGS,
                                  coin.value, None, txdata)
                except ScriptError as err:
                    try:
                        # the next block's consensus flags (Core GetBlockScriptFlags: they
                        # follow the params' activation heights)
                        verify_script(txin.script_sig, coin.script_pubkey, tx, i,
                                      script_flags_for_height(height, self.params),
                                      coin.value, None, txdata)
                        consensus = False
                    except ScriptError:
                        consensus = True
                    raise ScriptCheckError(
                        f"mempool-script-verify-flag-failed ({script_error_string(err.code)})",
                        # Core CScriptCheck's debug string
                        f"input {i} of {tx.txid_hex} (wtxid {tx.wtxid_hex}), spending "
                        f"{hash_to_hex(txin.prevout.txid)}:{txin.prevout.n}", consensus,
                        not tx.has_witness() and _only_witness_missing(tx, coins, txdata)) from err
            # Core ConsensusScriptChecks stores the result for the next block's flags (see
            # script/cache.py for why the standard-flags pass is enough here)
            self.chainstate.script_cache.add(tx.wtxid, STANDARD_FLAGS,
                                             script_flags_for_height(height, self.params))

        if test_only:
            entry = _Entry(tx, fee, size, sigops, now, height - 1, delta)
            entry.parents = set(parents)
            for a in ancestors:
                entry.add_ancestor(entries[a])
            return entry

        # Finalize: evict replaced txs, add, trim.
        if to_evict:
            log.debug("%s replaces %d tx(s)", tx.txid_hex, len(to_evict))
            self.last_replaced = tuple(sorted(to_evict))
            self._remove_set(to_evict)
        entry = _Entry(tx, fee, size, sigops, now, height - 1, delta)
        self._add(entry, parents, ancestors)
        # Core CBlockPolicyEstimator::processTransaction (validForFeeEstimation)
        self.fee_estimator.process_transaction(
            txid, fee, size, height - 1,
            valid_for_estimation=estimate and not bypass_limits and not parents and not in_package)
        if not bypass_limits and not in_package:
            self.expire(now)
            self.trim_to_size(now)
            if txid not in entries:
                raise PolicyError("mempool full")
        return entry

    def _mtp_at_height(self, h: int) -> int:
        cs = self.chainstate
        tip = cs.tip
        if h >= tip.height:
            return cs.median_time_past(tip)
        entry = cs.get_entry(cs.get_block_hash(max(h, 0)))
        return cs.median_time_past(entry)

    def _truc_checks(self, tx: Tx, parents: set[bytes], vsize: int, conflicts: set[bytes]) -> bytes | None:
        """Core `SingleTRUCChecks` (policy/truc_policy.cpp): a version-3 tx spends only version-3
        pool parents and the reverse; it is at most 10,000 vB, has at most one unconfirmed
        ancestor, is at most 1,000 vB when it has one, and is its parent's only child. When the
        parent already has another child (with no other ancestor), that sibling is returned for
        eviction under the replacement rules (Core's sibling eviction); PolicyError otherwise."""
        entries = self._entries
        me = f"{tx.txid_hex} (wtxid={tx.wtxid_hex})"
        for p in sorted(parents):
            pe = entries[p]
            them = f"{pe.tx.txid_hex} (wtxid={pe.tx.wtxid_hex})"
            if tx.version != TRUC_VERSION and pe.tx.version == TRUC_VERSION:
                raise PolicyError("TRUC-violation", f"non-version=3 tx {me} cannot spend from version=3 tx {them}")
            if tx.version == TRUC_VERSION and pe.tx.version != TRUC_VERSION:
                raise PolicyError("TRUC-violation", f"version=3 tx {me} cannot spend from non-version=3 tx {them}")
        if tx.version != TRUC_VERSION:
            return None
        if vsize > TRUC_MAX_VSIZE:
            raise PolicyError("TRUC-violation",
                              f"version=3 tx {me} is too big: {vsize} > {TRUC_MAX_VSIZE} virtual bytes")
        if len(parents) + 1 > TRUC_ANCESTOR_LIMIT:
            raise PolicyError("TRUC-violation", f"tx {me} would have too many ancestors")
        if not parents:
            return None
        pe = entries[next(iter(parents))]
        if pe.anc_count + 1 > TRUC_ANCESTOR_LIMIT:
            raise PolicyError("TRUC-violation", f"tx {me} would have too many ancestors")
        if vsize > TRUC_CHILD_MAX_VSIZE:
            raise PolicyError("TRUC-violation", f"version=3 child tx {me} is too big: {vsize} > "
                                                f"{TRUC_CHILD_MAX_VSIZE} virtual bytes")
        children = pe.children
        if pe.desc_count + 1 > TRUC_DESCENDANT_LIMIT and not (children & conflicts):
            if pe.desc_count == 2 and len(children) == 1 and entries[next(iter(children))].anc_count == 2:
                return next(iter(children))
            raise PolicyError("TRUC-violation", f"tx {pe.tx.txid_hex} (wtxid={pe.tx.wtxid_hex}) would "
                                                f"exceed descendant count limit")
        return None

    def _signals_replaceable(self, conflicts: set[bytes]) -> bool:
        """BIP125 opt-in (only consulted when full RBF is off): a conflict or one of its pool
        ancestors has an input with nSequence ≤ 0xfffffffd."""
        for c in conflicts:
            for t in {c} | self._ancestors(c):
                if any(i.sequence <= _BIP125_MAX_SEQUENCE for i in self._entries[t].tx.vin):
                    return True
        return False

    def _check_chain_limits(self, ancestors: set[bytes], size: int) -> None:
        cfg = self.config
        entries = self._entries
        if len(ancestors) + 1 > cfg.ancestor_limit:
            raise PolicyError("too-long-mempool-chain",
                              f"too many unconfirmed ancestors [limit: {cfg.ancestor_limit}]")
        anc_size = size + sum(entries[a].size for a in ancestors)
        if anc_size > cfg.ancestor_size_limit:
            raise PolicyError("too-long-mempool-chain",
                              f"exceeds ancestor size limit [limit: {cfg.ancestor_size_limit}]")
        for a in ancestors:
            e = entries[a]
            if e.desc_count + 1 > cfg.descendant_limit:
                raise PolicyError("too-long-mempool-chain",
                                  f"too many descendants for tx {e.tx.txid_hex} [limit: {cfg.descendant_limit}]")
            if e.desc_size + size > cfg.descendant_size_limit:
                raise PolicyError("too-long-mempool-chain",
                                  f"exceeds descendant size limit for tx {e.tx.txid_hex} "
                                  f"[limit: {cfg.descendant_size_limit}]")

    def _replacement_checks(self, tx: Tx, fee: int, size: int, conflicts: set[bytes],
                            ancestors: set[bytes]) -> set[bytes]:
        """Core `ReplacementChecks` (full RBF, rules 2–6). Returns every tx to evict."""
        cfg = self.config
        entries = self._entries
        # Rule 6: a higher fee rate than each directly conflicting tx.
        for c in sorted(conflicts):
            e = entries[c]
            if fee * e.size <= e.mfee * size:
                raise PolicyError("insufficient fee",
                                  f"rejecting replacement {tx.txid_hex}; new feerate "
                                  f"{FeeRate.from_fee(fee, size)} <= old feerate {FeeRate.from_fee(e.mfee, e.size)}")
        # Rule 5: at most `max_replacements` txs evicted (conflicts with their descendants).
        if sum(entries[c].desc_count for c in conflicts) > cfg.max_replacements:
            raise PolicyError("too many potential replacements",
                              f"rejecting replacement {tx.txid_hex}; too many potential replacements")
        all_conflicts: set[bytes] = set()
        for c in conflicts:
            all_conflicts.add(c)
            all_conflicts |= self._descendants(c)
        if len(all_conflicts) > cfg.max_replacements:
            raise PolicyError("too many potential replacements",
                              f"rejecting replacement {tx.txid_hex}; too many potential replacements")
        # Rule 2: no new unconfirmed inputs (only pool parents a replaced tx already spent).
        conflict_parents = {i.prevout.txid for c in conflicts for i in entries[c].tx.vin}
        for txin in tx.vin:
            p = txin.prevout.txid
            if p not in conflict_parents and p in entries:
                raise PolicyError("replacement-adds-unconfirmed",
                                  f"replacement {tx.txid_hex} adds unconfirmed input, idx {tx.vin.index(txin)}")
        # Rules 3 and 4: pay for everything replaced, plus relay of the new tx.
        conflict_fees = sum(entries[c].mfee for c in all_conflicts)
        if fee < conflict_fees:
            raise PolicyError("insufficient fee",
                              f"rejecting replacement {tx.txid_hex}, less fees than conflicting txs; "
                              f"{fee} < {conflict_fees}")
        additional = fee - conflict_fees
        needed = cfg.incremental_relay_fee.fee(size)
        if additional < needed:
            raise PolicyError("insufficient fee",
                              f"rejecting replacement {tx.txid_hex}, not enough additional fees to relay; "
                              f"{additional} < {needed}")
        return all_conflicts

    # ------------------------------------------------------------------ graph bookkeeping

    def _closure(self, start: Iterable[bytes], edges: str) -> set[bytes]:
        """Every txid reachable from `start` along `edges` ("parents" or "children")."""
        entries = self._entries
        result: set[bytes] = set()
        stack = list(start)
        while stack:
            t = stack.pop()
            if t in result:
                continue
            result.add(t)
            stack.extend(getattr(entries[t], edges))
        return result

    def _ancestors_of(self, parents: Iterable[bytes]) -> set[bytes]:
        return self._closure(parents, "parents")

    def _ancestors(self, txid: bytes) -> set[bytes]:
        return self._closure(self._entries[txid].parents, "parents")

    def _descendants(self, txid: bytes) -> set[bytes]:
        return self._closure(self._entries[txid].children, "children")

    def _push_evict(self, e: _Entry) -> None:
        e.ver += 1
        heapq.heappush(self._evict_heap, (e.descendant_score(), e.time, e.txid, e.ver))

    def _add(self, e: _Entry, parents: set[bytes], ancestors: set[bytes]) -> None:
        entries = self._entries
        txid = e.txid
        e.parents = set(parents)
        for p in parents:
            entries[p].children.add(txid)
        for a in ancestors:
            ae = entries[a]
            e.add_ancestor(ae)
            ae.desc_count += 1
            ae.desc_size += e.size
            ae.desc_fees += e.mfee
            self._push_evict(ae)
        entries[txid] = e
        for txin in e.tx.vin:
            self._spenders[txin.prevout] = txid
        self.total_size += e.size
        self.total_fees += e.fee
        if self._min_time is None or e.time < self._min_time:
            self._min_time = e.time
        self._push_evict(e)
        self.sequence += 1
        if len(self._evict_heap) > 4 * len(entries) + 64:
            self._rebuild_evict_heap()

    def _rebuild_evict_heap(self) -> None:
        self._evict_heap = [(e.descendant_score(), e.time, e.txid, e.ver) for e in self._entries.values()]
        heapq.heapify(self._evict_heap)

    def _remove_set(self, txids: set[bytes], *, confirmed: bool = False) -> None:
        """Remove `txids` (callers pass closed sets when descendants must go too), fixing the
        ancestor/descendant totals of the txs that stay (Core `RemoveStaged`). Unless they left
        in a block (`confirmed`), the fee estimator stops tracking them (Core
        TransactionRemovedFromMempool -> `removeTx`)."""
        entries = self._entries
        if not confirmed:
            for t in txids:
                self.fee_estimator.remove_tx(t)
        for t in txids:
            e = entries[t]
            for a in self._ancestors(t):
                if a not in txids:
                    ae = entries[a]
                    ae.desc_count -= 1
                    ae.desc_size -= e.size
                    ae.desc_fees -= e.mfee
                    self._push_evict(ae)
            for d in self._descendants(t):
                if d not in txids:
                    de = entries[d]
                    de.anc_count -= 1
                    de.anc_size -= e.size
                    de.anc_fees -= e.mfee
                    de.anc_sigops -= e.sigops
        for t in txids:
            e = entries.pop(t)
            for p in e.parents:
                pe = entries.get(p)
                if pe is not None:
                    pe.children.discard(t)
            for c in e.children:
                ce = entries.get(c)
                if ce is not None:
                    ce.parents.discard(t)
            for txin in e.tx.vin:
                if self._spenders.get(txin.prevout) == t:
                    del self._spenders[txin.prevout]
            self.total_size -= e.size
            self.total_fees -= e.fee
            e.ver += 1  # invalidates heap items
        if txids:
            self.sequence += 1

    def remove(self, txid: bytes) -> set[bytes]:
        """Remove a tx and its descendants (Core `removeRecursive`). Returns the removed txids."""
        if txid not in self._entries:
            return set()
        gone = {txid} | self._descendants(txid)
        self._remove_set(gone)
        return gone

    def clear(self) -> None:
        self._entries.clear()
        self._spenders.clear()
        self._evict_heap.clear()
        self.total_size = 0
        self.total_fees = 0
        self.sequence += 1

    def _topo_order(self) -> list[_Entry]:
        return sorted(self._entries.values(), key=lambda e: (e.anc_count, e.time))

    # ------------------------------------------------------------------ limits

    def trim_to_size(self, now: float | None = None, max_size: int | None = None) -> int:
        """Core `TrimToSize`: evict lowest descendant-score packages until under the limit and
        raise the rolling minimum fee to the evicted rate plus the incremental relay fee."""
        now = self._clock() if now is None else now
        limit = self.config.max_size if max_size is None else max_size
        removed = 0
        heap = self._evict_heap
        entries = self._entries
        while self.total_size > limit and heap:
            _, _, txid, ver = heapq.heappop(heap)
            e = entries.get(txid)
            if e is None or e.ver != ver:
                continue
            rate = FeeRate(e.desc_fees * 1000 // e.desc_size)
            self._track_package_removed(
                FeeRate(rate.sat_per_kvb + self.config.incremental_relay_fee.sat_per_kvb), now)
            gone = self.remove(txid)
            removed += len(gone)
            log.debug("mempool full: evicted %d tx(s) at %s", len(gone), rate)
        return removed

    def expire(self, now: float | None = None) -> int:
        """Core `CTxMemPool::Expire`: drop txs (and descendants) older than the expiry."""
        now = self._clock() if now is None else now
        cutoff = now - self.config.expiry
        if self._min_time is None or self._min_time >= cutoff:
            return 0  # nothing can be old enough (the lower bound is exact after each scan)
        old = [t for t, e in self._entries.items() if e.time < cutoff]
        removed = 0
        for t in old:
            if t in self._entries:
                removed += len(self.remove(t))
        self._min_time = min((e.time for e in self._entries.values()), default=None)
        return removed

    # ------------------------------------------------------------------ chain events

    def _on_chain_event(self, event: Any) -> None:
        """`ChainState` subscriber (writer thread)."""
        name = type(event).__name__
        if name == "BlockConnected":
            self.remove_for_block(event.block, event.entry.height)
        elif name == "BlockDisconnected":
            self.on_disconnect(event.block)
        elif name == "TipChanged":
            if self._disconnected:
                self.update_for_reorg()

    def remove_for_block(self, block: Block, height: int | None = None) -> None:
        """Core `removeForBlock`: drop the block's txs (their pool children stay) and every pool
        tx that conflicts with it (with descendants); forget matching orphans; then hand the
        confirmed txs to the fee estimator (Core `processBlock`, at the block's `height`)."""
        entries = self._entries
        if height is None:
            height = self.chainstate.tip.height
        mined: list[tuple[bytes, int, int]] = []
        # During initial sync the pool is empty: nothing can be confirmed or conflicted.
        busy = entries or self._disconnected or len(self.orphans)
        for tx in block.txs if busy else ():
            if tx.is_coinbase():
                continue
            txid = tx.txid
            self._deltas.pop(txid, None)     # Core removeForBlock: ClearPrioritisation
            e = entries.get(txid)
            if e is not None:
                mined.append((txid, e.fee, e.size))
                self._remove_set({txid}, confirmed=True)
            for txin in tx.vin:
                s = self._spenders.get(txin.prevout)
                if s is not None and s != txid:
                    self.remove(s)
        if self._disconnected:
            confirmed = {tx.txid for tx in block.txs}
            self._disconnected = [t for t in self._disconnected if t.txid not in confirmed]
        if busy:
            self.orphans.remove_for_block(block.txs)
        self.fee_estimator.process_block(height, mined)
        self._block_since_bump = True
        self.sequence += 1

    def on_disconnect(self, block: Block) -> None:
        """A block left the active chain: keep its txs (not the coinbase) to return them to the
        pool once the reorg settles (`update_for_reorg`, run on TipChanged)."""
        # Blocks arrive tip first; keep the oldest block's txs first, each block in order.
        self._disconnected[0:0] = [tx for tx in block.txs if not tx.is_coinbase()]

    def update_for_reorg(self, now: float | None = None) -> None:
        """Core `MaybeUpdateMempoolForReorg`: re-add disconnected txs in chain order, then the
        pool's own txs (limits bypassed), dropping whatever no longer fits the new chain
        (spent, conflicting, immature coinbase, non-final), then trim to size."""
        now = self._clock() if now is None else now
        returned, self._disconnected = self._disconnected, []
        old = self._topo_order()
        self.clear()
        back = 0
        for tx in returned:
            try:
                self._accept(tx, now, bypass_limits=True)
                back += 1
            except (ValidationError, PolicyError) as err:
                log.debug("disconnected tx %s not returned: %s", tx.txid_hex, err)
        dropped = 0
        for e in old:
            try:
                self._accept(e.tx, e.time, bypass_limits=True, skip_scripts=True)
            except (ValidationError, PolicyError) as err:
                dropped += 1
                self.fee_estimator.remove_tx(e.txid)
                log.debug("pool tx %s dropped after reorg: %s", e.tx.txid_hex, err)
        self.trim_to_size(now)
        log.info("reorg: %d of %d disconnected tx(s) back in the mempool, %d pool tx(s) dropped",
                 back, len(returned), dropped)

    # ------------------------------------------------------------------ persistence

    def save(self, path: str | os.PathLike) -> int:
        """Write the pool (raw txs + entry times, parents first) to `path` atomically
        (Core `DumpMempool`). Returns the number of txs written."""
        path = Path(path)
        order = self._topo_order()
        parts = [_MEMPOOL_FILE_MAGIC, _U32.pack(_MEMPOOL_FILE_VERSION), ser_compact_size(len(order))]
        for e in order:
            raw = e.tx.raw
            parts.append(_U64.pack(int(e.time)))
            parts.append(ser_compact_size(len(raw)))
            parts.append(raw)
        tmp = path.with_name(path.name + ".new")
        with open(tmp, "wb") as f:
            f.write(b"".join(parts))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return len(order)

    def load(self, path: str | os.PathLike, now: float | None = None) -> tuple[int, int]:
        """Read a file written by `save` and re-validate every tx (Core `LoadMempool`): txs
        older than the expiry are skipped. Returns (accepted, failed)."""
        now = self._clock() if now is None else now
        try:
            data = Path(path).read_bytes()
        except FileNotFoundError:
            return 0, 0
        r = ByteReader(data)
        try:
            if r.read(8) != _MEMPOOL_FILE_MAGIC or r.u32() != _MEMPOOL_FILE_VERSION:
                raise DecodeError("not a tinynode mempool file")
            count = r.compact_size(r.remaining() // 12)
            items = []
            for _ in range(count):
                t = _U64.unpack(r.read(8))[0]
                raw = r.var_bytes(r.remaining())
                items.append((t, Tx.from_bytes(raw)))
            r.expect_end()
        except DecodeError as err:
            log.warning("mempool file %s unreadable: %s", path, err)
            return 0, 0
        ok = failed = 0
        for t, tx in items:
            if t < now - self.config.expiry:
                failed += 1
                continue
            try:
                self._accept(tx, t)
                ok += 1
            except (ValidationError, PolicyError) as err:
                failed += 1
                log.debug("mempool file tx %s not loaded: %s", tx.txid_hex, err)
        log.info("loaded %d mempool tx(s) from %s (%d failed or expired)", ok, path, failed)
        return ok, failed
