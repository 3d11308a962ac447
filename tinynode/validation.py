"""The validation service: one way in for blocks and transactions (DESIGN.md §3, "One way in").

Bitcoin Core's `ChainstateManager` and `CTxMemPool` behind one object, owned by the chain
writer (every call below runs on its thread, so chain and pool change in one order)::

    await service.submit_block(block)       Core ProcessNewBlock               block lane
    await service.submit_headers(headers)   Core ProcessNewBlockHeaders        block lane
    await service.submit_tx(tx, origin)     Core AcceptToMemoryPool + orphans  tx lane
    await service.test_txs(txs)             Core testmempoolaccept             tx lane
    await service.submit_package(txs)       Core ProcessNewPackage             tx lane
    await service.build_template(spk, ...)  Core BlockAssembler::CreateNewBlock
    await service.test_block_validity(blk)  Core TestBlockValidity (nothing stored)      block lane
    service.subscribe(callback)             Core CValidationInterface: chain events and
                                            TxAccepted (TransactionAddedToMempool)

RPC, wallet, miner and P2P reach chain and pool only through this (and through `read`, a
read-only job on the writer thread, for the views they print). The writer runs block work
before transaction work (`ChainWriter.call_tx` is its low-priority lane), so a stream of
expensive transactions never delays a block.

Punishment: Core v31 never disconnects or bans a peer for an invalid transaction
(`CheckInputScripts`: "Tx failures never trigger disconnections/bans"). Its script checks are
C++ with a signature cache; tinynode's are Python, so a peer can make the writer spend ~0.1 s
per bad 600-input transaction. tinynode therefore keeps, per peer, a budget of writer seconds
that transactions which no block could ever contain (`is_consensus_invalid`) may cost; a
peer that overspends it is disconnected (never discouraged or banned, as Core) and its further
transactions are dropped unvalidated until it is gone. Policy rejections cost nothing: honest
peers relay what our policy refuses.
"""

from __future__ import annotations

import inspect
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Iterable

from .consensus.errors import PolicyError
from .consensus.versionbits import VersionBitsCache
from .mempool.pool import MempoolEntry, PackageResult, is_consensus_invalid
from .mining.template import COINBASE_WEIGHT_RESERVE, BlockTemplate, build_template

if TYPE_CHECKING:  # pragma: no cover
    from .chain.chainstate import BlockResult
    from .chain.writer import ChainSnapshot, ChainWriter
    from .mempool.pool import Mempool
    from .primitives.block import Block, BlockHeader
    from .primitives.tx import Tx

__all__ = ["TxOrigin", "TxAccepted", "TxResult", "TxBudgetConfig", "ValidationService"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TxOrigin:
    """Where a transaction came from: "peer" (with its id), "rpc", "wallet", "mempool.dat"."""

    kind: str
    peer_id: int | None = None

    @classmethod
    def peer(cls, peer_id: int) -> "TxOrigin":
        return cls("peer", peer_id)

    @classmethod
    def rpc(cls) -> "TxOrigin":
        return cls("rpc")

    @classmethod
    def wallet(cls) -> "TxOrigin":
        return cls("wallet")


@dataclass(frozen=True, slots=True)
class TxAccepted:
    """A tx entered the mempool (Core `TransactionAddedToMempool`); relay and wallet follow it."""

    entry: MempoolEntry
    origin: TxOrigin


@dataclass(frozen=True, slots=True)
class TxResult:
    """The outcome of `submit_tx`.

    accepted: the tx and the orphans it resolved, in the order they entered the pool;
    orphan / missing_parents: kept as an orphan waiting for these parents;
    error: why it was refused (ValidationError, PolicyError, MissingInputsError);
    consensus_invalid: no block could ever contain it (`is_consensus_invalid`);
    seconds: writer time it cost; over_budget: its peer has spent its invalid-tx budget (the
    caller disconnects it); skipped: not validated at all, the peer was already over budget.
    """

    txid: bytes
    accepted: tuple[MempoolEntry, ...] = ()
    orphan: bool = False
    missing_parents: tuple[bytes, ...] = ()
    error: Exception | None = None
    consensus_invalid: bool = False
    seconds: float = 0.0
    over_budget: bool = False
    skipped: bool = False
    orphans_rejected: tuple = ()      # (tx, error) of resolved orphans then refused

    @property
    def ok(self) -> bool:
        return bool(self.accepted)


@dataclass(frozen=True, slots=True)
class TxBudgetConfig:
    """Per-peer budget of writer seconds for consensus-invalid txs: a token bucket holding at
    most `seconds`, refilled at `refill_per_second`. The defaults let a peer send a few expensive
    invalid txs a minute (a buggy wallet) but not keep the writer busy."""

    seconds: float = 0.5
    refill_per_second: float = 0.01
    max_peers: int = 4096


class _Budgets:
    """The token buckets, by peer id (writer thread only). Bounded: the oldest entry goes."""

    def __init__(self, config: TxBudgetConfig) -> None:
        self.config = config
        self._left: dict[int, tuple[float, float]] = {}   # peer -> (seconds left, as of)

    def _level(self, peer_id: int, now: float) -> float:
        cfg = self.config
        left, since = self._left.get(peer_id, (cfg.seconds, now))
        return min(cfg.seconds, left + (now - since) * cfg.refill_per_second)

    def exhausted(self, peer_id: int, now: float) -> bool:
        return self._level(peer_id, now) <= 0.0

    def charge(self, peer_id: int, seconds: float, now: float) -> bool:
        """Spend `seconds`; True when the peer is now over its budget."""
        level = self._level(peer_id, now) - seconds
        self._left.pop(peer_id, None)
        self._left[peer_id] = (level, now)
        while len(self._left) > self.config.max_peers:
            del self._left[next(iter(self._left))]
        return level <= 0.0

    def forget(self, peer_id: int) -> None:
        self._left.pop(peer_id, None)


class ValidationService:
    """See the module docstring. `writer` must be started; `mempool` lives on its thread
    (None: a node without a pool, every tx is refused)."""

    def __init__(self, writer: "ChainWriter", params: Any, mempool: "Mempool | None" = None, *,
                 budget: TxBudgetConfig | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.writer = writer
        self.params = params
        self.mempool = mempool
        self._clock = clock
        self._budgets = _Budgets(budget or TxBudgetConfig())
        self._tx_subscribers: list[Callable[[Any], Any]] = []
        #: Core's BlockAssembler::Options (-blockmaxweight, -blockmintxfee, ...); None = defaults
        self.assembler_options: Any = None
        #: (weight incl. the reserved weight, tx count) of the last template: getmininginfo's
        #: currentblockweight / currentblocktx (Core's BlockAssembler::m_last_block_*)
        self.last_block_stats: tuple[int, int] | None = None
        #: Core's ChainstateManager::m_versionbitscache (BIP9 states; writer thread only)
        self.versionbits = VersionBitsCache()

    # --- reads ------------------------------------------------------------------------------------
    @property
    def snapshot(self) -> "ChainSnapshot":
        """The immutable chain view for readers on the event loop."""
        return self.writer.snapshot

    @property
    def chainstate(self) -> Any:
        """The chainstate; touch it only inside `read(...)` (it lives on the writer thread)."""
        return self.writer.chainstate

    async def read(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run a read-only `fn(*args)` on the writer thread (in block-lane order)."""
        return await self.writer.call(fn, *args)

    # Miner and sync code ask for `call`, the writer's name for the same thing.
    call = read

    # --- blocks -----------------------------------------------------------------------------------
    async def submit_block(self, block: "Block") -> "BlockResult":
        """Core `ProcessNewBlock`: check, store, and activate the best chain."""
        return await self.writer.submit_block(block)

    async def submit_headers(self, headers: "list[BlockHeader]") -> list:
        """Core `ProcessNewBlockHeaders`; raises ValidationError for the first bad header."""
        return await self.writer.submit_headers(headers)

    async def build_template(self, payout_script: bytes, now: int | None = None,
                             extranonce: int = 0) -> BlockTemplate:
        """Core `BlockAssembler::CreateNewBlock` on the current tip with the mempool's best txs."""
        when = int(self._clock()) if now is None else int(now)
        return await self.writer.call(self.template_now, payout_script, when, extranonce)

    def template_now(self, payout_script: bytes, now: int, extranonce: int = 0) -> BlockTemplate:
        """`build_template` for code already on the writer thread."""
        t = build_template(self.writer.chainstate, self.mempool, payout_script, now, extranonce,
                           params=self.params, options=self.assembler_options,
                           versionbits=self.versionbits)
        reserved = (self.assembler_options.block_reserved_weight
                    if self.assembler_options is not None else COINBASE_WEIGHT_RESERVE)
        self.last_block_stats = (reserved + sum(tx.weight for tx in t.block.txs[1:]), t.tx_count - 1)
        return t

    async def test_block_validity(self, block: "Block") -> str | None:
        """Core `TestBlockValidity(check_pow=false, check_merkle_root=true)` for getblocktemplate
        proposals: None when `block` would connect on the current tip, else the reject string."""
        return await self.writer.call(self.test_block_validity_now, block)

    def test_block_validity_now(self, block: "Block") -> str | None:
        """`test_block_validity` on the writer thread (the reject string, or None)."""
        err = self.test_block_validity_state_now(block)
        return None if err is None else err.reject_string

    def test_block_validity_state_now(self, block: "Block") -> "ValidationError | None":
        """Core `TestBlockValidity` on the writer thread, the failure as a ValidationError (its
        `state_string` is Core's `BlockValidationState::ToString`). As Core: the block must
        build on the tip ("inconclusive-not-best-prevblk"), then CheckBlock without proof of
        work, ContextualCheckBlockHeader, ContextualCheckBlock, and ConnectBlock against a
        scratch coins view over the tip's, with a dummy index entry and a batch that is thrown
        away: the block index, the coins and the store are left as they were."""
        from .chain.coins import CoinsView
        from .chain.index import BlockIndexEntry
        from .consensus.block_checks import check_block, contextual_check_block, contextual_check_block_header
        from .consensus.errors import RejectReason, ValidationError
        from .consensus.pow import block_work
        from .storage.base import StoreBatch
        cs = self.writer.chainstate
        tip = cs.tip
        if block.header.prev_hash != tip.hash:
            return ValidationError(RejectReason.INCONCLUSIVE_NOT_BEST_PREVBLK)
        try:
            check_block(block, self.params, check_pow=False)
            contextual_check_block_header(block.header, tip, self.params, int(self._clock()), cs.get_ancestor)
            contextual_check_block(block, tip, self.params)
            dummy = BlockIndexEntry(block.header, tip, tip.height + 1, tip.chainwork + block_work(block.header.bits))
            # ChainState has no check-only connect: its ConnectBlock on throwaway view and batch
            cs._connect_block(block, dummy, CoinsView(cs._dirty_view), StoreBatch())
        except ValidationError as err:
            return err
        return None

    # --- transactions -----------------------------------------------------------------------------
    async def submit_tx(self, tx: "Tx", origin: TxOrigin, *, max_fee_rate_kvb: int = 0) -> TxResult:
        """Core `AcceptToMemoryPool` for one tx from any origin, then the orphans it resolves
        (Core ProcessMessage "tx" + `ProcessOrphanTx`). A peer's tx with missing parents is kept
        as an orphan. Subscribers get one `TxAccepted` per tx that entered the pool, in order.
        `max_fee_rate_kvb` (sat/kvB, 0 = none): refuse "max-fee-exceeded" before anything
        changes, as Core's `BroadcastTransaction`."""
        result = await self.writer.call_tx(self.submit_tx_now, tx, origin, max_fee_rate_kvb)
        await self.publish(result, origin)
        return result

    async def publish(self, result: TxResult, origin: TxOrigin) -> None:
        """Tell subscribers (relay, ...) about the txs a `submit_tx_now` result put in the pool."""
        if result.accepted:
            await self._publish([TxAccepted(e, origin) for e in result.accepted])

    def submit_tx_now(self, tx: "Tx", origin: TxOrigin, max_fee_rate_kvb: int = 0) -> TxResult:
        """`submit_tx` for code already on the writer thread (a wallet building, signing and
        recording a send in one job); the caller then hands the result to `publish`."""
        now = self._clock()
        peer = origin.peer_id
        if peer is not None and self._budgets.exhausted(peer, now):
            return TxResult(tx.txid, skipped=True, over_budget=True)
        mp = self.mempool
        if mp is None:
            return TxResult(tx.txid, error=PolicyError("mempool unavailable"))
        if max_fee_rate_kvb and not tx.is_coinbase():
            fee = self._fee_if_known(tx)
            if fee is not None and fee * 1000 > max_fee_rate_kvb * tx.size:
                return TxResult(tx.txid, error=PolicyError("max-fee-exceeded"))
        started = time.perf_counter()
        res = mp.process_tx(tx, now, peer=peer)
        seconds = time.perf_counter() - started
        bad = is_consensus_invalid(res.error)
        over = False
        if bad and peer is not None:
            over = self._budgets.charge(peer, seconds, now)
            if over:
                log.info("peer %d spent its budget for invalid transactions (last: %s, %.3f s)",
                         peer, tx.txid_hex[:16], seconds)
        return TxResult(tx.txid, res.accepted, res.orphan, res.missing_parents, res.error, bad,
                        seconds, over, orphans_rejected=res.orphans_rejected)

    def _fee_if_known(self, tx: "Tx") -> int | None:
        mp, cs = self.mempool, self.writer.chainstate
        total = 0
        for txin in tx.vin:
            coin = cs.get_coin(txin.prevout)
            if coin is not None:
                total += coin.value
                continue
            e = mp.get(txin.prevout.txid) if mp is not None else None
            if e is None or txin.prevout.n >= len(e.tx.vout):
                return None
            total += e.tx.vout[txin.prevout.n].value
        return total - sum(o.value for o in tx.vout)

    async def submit_package(self, txs: "list[Tx]", origin: TxOrigin | None = None, *,
                             max_fee_rate_kvb: int = 0) -> PackageResult:
        """Core `ProcessNewPackage(test_accept=false)`: a tx or a child with its unconfirmed
        parents (`Mempool.accept_package`: package feerate for parents below the minimum).
        Subscribers get one `TxAccepted` per tx that entered the pool, in order.
        `max_fee_rate_kvb` (sat/kvB, 0 = none): Core's client maxfeerate per tx."""
        origin = origin or TxOrigin.rpc()
        result = await self.writer.call_tx(self.submit_package_now, list(txs), max_fee_rate_kvb)
        if result.accepted:
            await self._publish([TxAccepted(e, origin) for e in result.accepted])
        return result

    def submit_package_now(self, txs: "list[Tx]", max_fee_rate_kvb: int = 0) -> PackageResult:
        """`submit_package` on the writer thread (nothing published)."""
        mp = self.mempool
        if mp is None:
            return PackageResult("mempool unavailable", ())
        return mp.accept_package(txs, self._clock(), max_rate_kvb=max_fee_rate_kvb)

    async def test_txs(self, txs: "Iterable[Tx]") -> list[tuple[MempoolEntry | None, Exception | None]]:
        """Core `testmempoolaccept`: every accept check, nothing added. One (entry, error) per tx."""
        return await self.writer.call_tx(self._test_now, list(txs))

    def _test_now(self, txs: "list[Tx]") -> list[tuple[MempoolEntry | None, Exception | None]]:
        mp = self.mempool
        out: list[tuple[MempoolEntry | None, Exception | None]] = []
        for tx in txs:
            if mp is None:
                out.append((None, PolicyError("mempool unavailable")))
                continue
            if tx.txid in mp:
                out.append((None, PolicyError("txn-already-in-mempool")))
                continue
            try:
                out.append((mp.test_accept(tx, self._clock()), None))
            except Exception as e:  # noqa: BLE001 - ValidationError / PolicyError, reported
                out.append((None, e))
        return out

    def peer_gone(self, peer_id: int) -> None:
        """Forget a disconnected peer's budget (on the loop: the dict is only touched by jobs
        and by this, and a job for a gone peer recreates a fresh bucket at worst)."""
        self._budgets.forget(peer_id)

    # --- events -----------------------------------------------------------------------------------
    def subscribe(self, callback: Callable[[Any], Awaitable[None] | None]) -> None:
        """`callback(event)` on the event loop for every chain event (BlockConnected,
        BlockDisconnected, TipChanged, in order) and every `TxAccepted`."""
        self.writer.subscribe_async(callback)
        self._tx_subscribers.append(callback)

    def unsubscribe(self, callback: Callable[[Any], Any]) -> None:
        self.writer.unsubscribe_async(callback)
        try:
            self._tx_subscribers.remove(callback)
        except ValueError:
            pass

    async def sync_events(self) -> None:
        """Core `SyncWithValidationInterfaceQueue`: every chain event queued so far has reached
        every subscriber (`TxAccepted` events are delivered before `submit_tx` returns)."""
        await self.writer.sync_events()

    def subscribe_async(self, callback: Callable[[Any], Awaitable[None] | None]) -> None:
        """Chain events only (the `ChainWriter` interface the miner and the sync manager use)."""
        self.writer.subscribe_async(callback)

    def unsubscribe_async(self, callback: Callable[[Any], Any]) -> None:
        self.writer.unsubscribe_async(callback)

    async def _publish(self, events: list[TxAccepted]) -> None:
        for ev in events:
            for cb in list(self._tx_subscribers):
                try:
                    r = cb(ev)
                    if inspect.isawaitable(r):
                        await r
                except Exception:  # a subscriber bug must not stop delivery to the others
                    log.exception("subscriber %r failed on %r", cb, ev)
