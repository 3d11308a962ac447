"""The miner: an asyncio task that keeps worker processes grinding nonce chunks.

Pipeline (btcd `cpuminer`, Core `GenerateBlock()`):

    template (on the chain writer thread, via writer.call)
      → nonce chunks of ~0.25 s each → ProcessPoolExecutor(grind)   [never the event loop]
      → a nonce → block → await writer.submit_block(block)

Between chunks the miner compares the template's parent with the writer's snapshot tip; a tip
change (pushed by `subscribe_async` events, or seen in the snapshot) drops the stale template:
no new chunk is handed out for it and a result that arrives for it is thrown away, so workers
move to the new tip within one chunk. When the 32-bit nonce space of a template is used up the
miner rolls the coinbase extranonce and rebuilds the template (new time, new mempool txs). The
pool is made with an explicit spawn/forkserver context (never fork a process holding a loop,
threads and an SQLite connection) and is shut down with `cancel_futures=True` on `stop()`.
`solve(template)` runs the same chunk loop on a given template (one whose transactions the
caller chose: RPC `generateblock`), returning the block instead of submitting it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import multiprocessing
import os
import time
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, AsyncIterator, Awaitable, Callable, Protocol

from ..primitives.block import Block
from ..primitives.hashes import hash_to_hex
from .template import BlockTemplate, build_template
from .worker import MAX_NONCE, grind, init_worker

log = logging.getLogger(__name__)

__all__ = ["Miner", "ChainWriterLike", "MinerStats", "MiningError"]

#: Seconds of hashing per chunk: how quickly stale work is dropped.
DEFAULT_CHUNK_SECONDS = 0.25
_MIN_CHUNK = 256
_MAX_CHUNK = 1 << 24


class MiningError(Exception):
    """A mined block was refused by the chain writer (or could not be built)."""


class ChainWriterLike(Protocol):
    """What the miner needs from `chain.writer.ChainWriter`."""

    @property
    def snapshot(self) -> Any: ...  # has .tip_hash and .height

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any: ...

    async def submit_block(self, block: Block) -> Any: ...

    def subscribe_async(self, callback: Callable[[Any], Any]) -> Any: ...


@dataclass(frozen=True, slots=True)
class MinerStats:
    blocks_found: int
    hashes: int
    hashrate: float          # hashes per second while mining (recent window)
    workers: int
    chunk: int               # current nonces per chunk
    stale_dropped: int       # templates abandoned because the tip moved


@dataclass(frozen=True, slots=True)
class _Job:
    template: BlockTemplate
    start: int
    count: int
    sent: float
    round: int          # which _mine_one call handed it out (others' results are not ours)


def _consume(fut: asyncio.Future) -> None:
    if not fut.cancelled():
        fut.exception()


def _default_context() -> multiprocessing.context.BaseContext:
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


class Miner:
    """Mines on the writer's tip with `workers` processes.

    `start()` prepares the worker pool and, when `payout_script` is given, starts continuous
    mining; `generate(n, payout_script)` mines n blocks on demand (pausing continuous mining);
    `solve(template)` grinds a template someone else built (RPC `generateblock`) and returns it;
    `stop()` ends the task and shuts the pool down, leaving no child process.

    `template_fn(payout_script, now, extranonce) -> BlockTemplate` runs on the writer thread; by
    default it is `build_template(writer.chainstate, mempool, ...)`.
    """

    def __init__(self, writer: ChainWriterLike, params: Any, payout_script: bytes | None = None,
                 workers: int = 1, mempool: Any = None, *,
                 chunk_seconds: float = DEFAULT_CHUNK_SECONDS,
                 initial_chunk: int = 20_000,
                 mp_context: multiprocessing.context.BaseContext | None = None,
                 nonce_space: int = MAX_NONCE + 1,
                 template_fn: Callable[[bytes, int, int], BlockTemplate] | None = None,
                 template_refresh: float = 5.0,
                 grind_fn: Callable[[bytes, int, int, int], int | None] = grind,
                 nice: int = 10,
                 sync_pause_limit: float = 30.0,
                 clock: Callable[[], float] = time.time) -> None:
        if workers < 1:
            raise ValueError("workers must be ≥ 1")
        self.writer = writer
        self.params = params
        self.payout_script = payout_script
        self.workers = workers
        self.mempool = mempool
        self.chunk_seconds = chunk_seconds
        self.nonce_space = min(nonce_space, MAX_NONCE + 1)
        self.template_refresh = template_refresh
        self._clock = clock
        self._ctx = mp_context or _default_context()
        self._template_fn = template_fn or self._default_template
        self._grind = grind_fn
        self._nice = nice
        self._chunk = max(_MIN_CHUNK, initial_chunk)
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._inflight: dict[asyncio.Future, _Job] = {}
        self._wakeup: asyncio.Future | None = None
        self._task: asyncio.Task | None = None
        self._lock = asyncio.Lock()
        self._waiting = 0          # generate() calls waiting for the lock
        self._round = 0            # bumps per _mine_one call
        self._sync_wait: tuple[float, int] | None = None   # (since, tip height) while syncing
        self.sync_pause_limit = sync_pause_limit
        self._stopping = False
        self._unsubscribe: Any = None
        self.blocks_found = 0
        self.hashes = 0
        self.stale_dropped = 0
        self.chunks_sent = 0
        self._rate_window: list[tuple[float, int]] = []   # (monotonic time, cumulative hashes)
        self.submitted: list[bytes] = []                   # hashes of blocks we submitted (newest last, capped)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start the worker pool, listen for tip changes, and mine if a payout script is set."""
        self._stopping = False
        self._ensure_pool()
        if self._unsubscribe is None and hasattr(self.writer, "subscribe_async"):
            unsub = self.writer.subscribe_async(self._on_chain_event)
            if not callable(unsub):
                remove = getattr(self.writer, "unsubscribe_async", None)
                unsub = (lambda: remove(self._on_chain_event)) if remove else True
            self._unsubscribe = unsub
        if self.payout_script is not None and self._task is None:
            self._task = asyncio.create_task(self._run(), name="miner")

    async def stop(self) -> None:
        """Stop mining and shut the pool down (`cancel_futures=True`); no child is left."""
        try:
            await self._end_mining_task()
        except asyncio.CancelledError:
            # stop() itself was cancelled: still leave no task and no process behind.
            await asyncio.shield(self._shutdown_pool())
            raise
        unsub, self._unsubscribe = self._unsubscribe, None
        if callable(unsub):
            unsub()
        await self._shutdown_pool()

    async def _end_mining_task(self) -> None:
        """Let the mining loop notice `_stopping` (a submit in progress completes and is
        counted); cancel it only if it does not finish promptly."""
        self._stopping = True
        self._wake()
        task, self._task = self._task, None
        if task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), 2.0)
        except asyncio.TimeoutError:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        except asyncio.CancelledError:
            task.cancel()
            raise
        except Exception:
            log.exception("miner task failed")

    async def resume(self, payout_script: bytes) -> None:
        """Start continuous mining to `payout_script` while the node runs (RPC setgenerate)."""
        self.payout_script = payout_script
        self._ensure_pool()
        if self._task is None or self._task.done():
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name="miner")

    async def pause(self) -> None:
        """Stop continuous mining, keep the pool for `generate` (RPC setgenerate false)."""
        if self._task is None:
            return
        await self._end_mining_task()
        self._stopping = False
        log.info("miner stopped")

    async def set_workers(self, workers: int) -> None:
        """A new number of mining processes (the pool restarts between two templates)."""
        if workers < 1:
            raise ValueError("workers must be >= 1")
        if workers == self.workers:
            return
        mining = self.running
        if mining:
            await self.pause()
        await self._shutdown_pool()
        self.workers = workers
        self._ensure_pool()
        if mining and self.payout_script is not None:
            await self.resume(self.payout_script)

    async def __aenter__(self) -> "Miner":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def worker_pids(self) -> list[int]:
        """PIDs of the live worker processes (for tests and logs)."""
        pool = self._pool
        procs = getattr(pool, "_processes", None) or {}
        return [p.pid for p in list(procs.values()) if p.pid is not None]

    @property
    def stats(self) -> MinerStats:
        return MinerStats(self.blocks_found, self.hashes, self.hashrate, self.workers, self._chunk,
                          self.stale_dropped)

    @property
    def hashrate(self) -> float:
        w = self._rate_window
        if len(w) < 2 or w[-1][0] <= w[0][0] or time.monotonic() - w[-1][0] > 30.0:
            return 0.0  # not mining (recently)
        return (w[-1][1] - w[0][1]) / (w[-1][0] - w[0][0])

    # ------------------------------------------------------------------ mining

    async def generate(self, n: int, payout_script: bytes) -> list[bytes]:
        """Mine `n` blocks paying `payout_script` (Core's `generatetoaddress`); their hashes."""
        if n < 0:
            raise ValueError("n must be ≥ 0")
        self._ensure_pool()
        hashes: list[bytes] = []
        async with self._exclusive():
            for _ in range(n):
                block = None
                while block is None:
                    if self._stopping:
                        raise MiningError("miner stopped")
                    block = await self._mine_one(payout_script, preemptible=False)
                hashes.append(block.hash)
        return hashes

    async def solve(self, template: BlockTemplate) -> Block:
        """Grind `template` in the worker pool until its proof of work is met; the solved block,
        not submitted (the hashing half of Core's `GenerateBlock()`, as `generateblock` uses it).

        The template's transactions are kept as they are and it is not dropped when the tip
        moves (the caller chose its parent and transactions); when its nonce space is used up
        the coinbase extranonce rolls and the time moves up to the clock. Continuous mining
        pauses meanwhile, as for `generate`. Raises MiningError if the miner stops first.
        """
        self._ensure_pool()
        async with self._exclusive():
            if self._stopping:
                raise MiningError("miner stopped")
            block = await self._mine_one(template.payout_script, preemptible=False, fixed=template)
            if block is None:
                raise MiningError("miner stopped")
        return block

    @contextlib.asynccontextmanager
    async def _exclusive(self) -> AsyncIterator[None]:
        """Hold the mining lock; continuous mining yields it within a chunk (`_waiting`)."""
        self._waiting += 1
        self._wake()
        counted = True
        try:
            async with self._lock:
                self._waiting -= 1
                counted = False
                yield
        finally:
            if counted:
                self._waiting -= 1

    async def _run(self) -> None:
        """Continuous mining until stopped."""
        assert self.payout_script is not None
        log.info("miner started with %d worker(s)", self.workers)
        while not self._stopping:
            if self._syncing():
                # Mining on an old tip while blocks we already have headers for are still
                # coming would only make forks (Core does not mine in IBD either).
                await asyncio.sleep(0.25)
                continue
            try:
                async with self._lock:
                    await self._mine_one(self.payout_script, preemptible=True)
            except asyncio.CancelledError:
                raise
            except MiningError as e:
                log.warning("mined block refused: %s", e)
                await asyncio.sleep(1.0)
            except Exception:
                log.exception("miner error; retrying in 1 s")
                await asyncio.sleep(1.0)
            await asyncio.sleep(0)  # let a waiting generate() take the lock

    def _syncing(self) -> bool:
        """True while the writer's best header is ahead of its tip and the tip keeps moving.

        A peer that announces headers but withholds blocks cannot stop us for long: after
        `sync_pause_limit` seconds without tip progress we mine anyway."""
        snap = getattr(self.writer, "snapshot", None)
        best = getattr(snap, "best_header_height", None)
        height = getattr(snap, "height", None)
        if best is None or height is None or best <= height:
            self._sync_wait = None
            return False
        now = time.monotonic()
        if self._sync_wait is None or self._sync_wait[1] != height:
            if self._sync_wait is None:
                log.info("miner waiting for sync (height %d, best header %d)", height, best)
            self._sync_wait = (now, height)
        return now - self._sync_wait[0] < self.sync_pause_limit

    def _default_template(self, payout_script: bytes, now: int, extranonce: int) -> BlockTemplate:
        chainstate = getattr(self.writer, "chainstate")
        return build_template(chainstate, self.mempool, payout_script, now, extranonce,
                              params=self.params)

    async def _build(self, payout_script: bytes, extranonce: int) -> BlockTemplate:
        return await self.writer.call(self._template_fn, payout_script, int(self._clock()), extranonce)

    def _tip_hash(self) -> bytes | None:
        snap = getattr(self.writer, "snapshot", None)
        return getattr(snap, "tip_hash", None) if snap is not None else None

    def _is_stale(self, template: BlockTemplate) -> bool:
        tip = self._tip_hash()
        return tip is not None and tip != template.prev_hash

    async def _rebuild(self, fixed: BlockTemplate, extranonce: int) -> BlockTemplate:
        """`fixed` with another extranonce (a fresh nonce space) and the time moved up to now."""
        if extranonce == fixed.extranonce:
            return fixed
        return fixed.with_extranonce(extranonce, max(fixed.header.time, int(self._clock())))

    async def _mine_one(self, payout_script: bytes, preemptible: bool,
                        fixed: BlockTemplate | None = None) -> Block | None:
        """Grind templates on the current tip until one is solved; None if preempted/stopped.

        With `fixed`, grind that template (rolling only its extranonce) whatever the tip does,
        and return the solved block without submitting it."""
        self._round += 1
        my_round = self._round
        follow_tip = fixed is None
        if fixed is None:
            def build(extranonce: int) -> Awaitable[BlockTemplate]:
                return self._build(payout_script, extranonce)
        else:
            def build(extranonce: int) -> Awaitable[BlockTemplate]:
                return self._rebuild(fixed, extranonce)
        extranonce = 0 if fixed is None else fixed.extranonce
        template = await build(extranonce)
        built_at = time.monotonic()
        next_nonce = 0
        loop = asyncio.get_running_loop()
        while True:
            if self._stopping or (preemptible and (self._waiting or self._syncing())):
                return None
            if follow_tip and self._is_stale(template):
                self.stale_dropped += 1
                log.debug("tip changed: dropping template at height %d", template.height)
                template = await build(0)
                extranonce, next_nonce = 0, 0
                built_at = time.monotonic()
                if self._is_stale(template):
                    # The snapshot lags the chainstate for a moment: wait for the next event.
                    try:
                        await asyncio.wait_for(asyncio.shield(self._new_wakeup(loop)), 0.05)
                    except asyncio.TimeoutError:
                        pass
                continue
            if follow_tip and self.template_refresh and time.monotonic() - built_at > self.template_refresh:
                # Fresh time and mempool txs (as pools refresh getblocktemplate work).
                extranonce += 1
                template = await build(extranonce)
                next_nonce, built_at = 0, time.monotonic()
            # Keep every worker busy with a chunk of the current template.
            while len(self._inflight) < self.workers:
                if next_nonce >= self.nonce_space:
                    extranonce += 1
                    template = await build(extranonce)
                    next_nonce, built_at = 0, time.monotonic()
                    if follow_tip and self._is_stale(template):
                        break
                count = min(self._chunk, self.nonce_space - next_nonce)
                job = _Job(template, next_nonce, count, time.monotonic(), my_round)
                fut = loop.run_in_executor(self._ensure_pool(), self._grind, template.header76,
                                           template.target, next_nonce, count)
                self._inflight[fut] = job
                self.chunks_sent += 1
                next_nonce += count
            wakeup = self._new_wakeup(loop)
            done, _ = await asyncio.wait([*self._inflight, wakeup], return_when=asyncio.FIRST_COMPLETED)
            for fut in done:
                if fut is wakeup:
                    continue
                job = self._inflight.pop(fut, None)
                if job is None:  # the pool was restarted under it
                    continue
                try:
                    nonce = fut.result()
                except BrokenProcessPool:
                    log.error("mining worker died; restarting the pool")
                    await self._shutdown_pool()
                    continue
                except concurrent.futures.CancelledError:
                    continue
                hashed = job.count if nonce is None else nonce - job.start + 1
                self._account(hashed, time.monotonic() - job.sent, job.count, nonce is None)
                if nonce is None:
                    continue
                if job.round != my_round:
                    # Left over from an earlier round (e.g. continuous mining that a generate()
                    # preempted): another payout script, so never submitted here.
                    self.stale_dropped += 1
                    continue
                if (follow_tip and self._is_stale(job.template)) or self._stopping:
                    self.stale_dropped += 1
                    log.debug("solved a stale template at height %d: dropped", job.template.height)
                    continue
                block = job.template.solved(nonce)
                if not block.header.check_pow(self.params.pow_limit):
                    log.error("grind returned nonce %d that fails the PoW check", nonce)
                    continue
                if fixed is None:
                    await self._submit(block, job.template)
                return block

    async def _submit(self, block: Block, template: BlockTemplate) -> None:
        try:
            result = await self.writer.submit_block(block)
        except Exception as e:
            raise MiningError(f"block {block.hash_hex} at height {template.height}: {e}") from e
        error = getattr(result, "error", None)
        if error is not None:
            raise MiningError(f"block {block.hash_hex} at height {template.height}: {error}")
        status = getattr(result, "status", "connected")
        if status not in ("connected", "duplicate"):
            log.warning("mined block %s at height %d was %s, not connected", block.hash_hex,
                        template.height, status)
        self.blocks_found += 1
        self.submitted.append(block.hash)
        del self.submitted[:-1000]
        log.info("mined block %s height=%d txs=%d fees=%d hashrate=%.1f kH/s",
                 hash_to_hex(block.hash), template.height, len(block.txs), template.fees,
                 self.hashrate / 1000)

    def _account(self, hashed: int, elapsed: float, count: int, full: bool) -> None:
        self.hashes += hashed
        now = time.monotonic()
        w = self._rate_window
        w.append((now, self.hashes))
        while len(w) > 2 and now - w[0][0] > 30.0:
            w.pop(0)
        if full and elapsed > 0:
            # Aim each chunk at `chunk_seconds` of hashing; grow at most ×2 per step.
            per_worker_rate = count / elapsed
            wanted = int(per_worker_rate * self.chunk_seconds)
            self._chunk = max(_MIN_CHUNK, min(_MAX_CHUNK, wanted, self._chunk * 2))

    # ------------------------------------------------------------------ plumbing

    def _new_wakeup(self, loop: asyncio.AbstractEventLoop) -> asyncio.Future:
        w = self._wakeup
        if w is None or w.done():
            w = self._wakeup = loop.create_future()
        return w

    def _wake(self) -> None:
        w = self._wakeup
        if w is not None and not w.done():
            w.set_result(None)

    def _on_chain_event(self, event: Any) -> None:
        """Chain events (delivered on the loop): any tip change wakes the mining loop."""
        self._wake()

    def _ensure_pool(self) -> concurrent.futures.ProcessPoolExecutor:
        if self._pool is None:
            self._pool = concurrent.futures.ProcessPoolExecutor(
                self.workers, mp_context=self._ctx,
                initializer=init_worker, initargs=(self._nice, os.getpid()))
        return self._pool

    async def _shutdown_pool(self) -> None:
        pool, self._pool = self._pool, None
        for fut in self._inflight:
            # Nobody awaits these any more: retrieve their outcome so asyncio does not log
            # "Future exception was never retrieved" (a killed worker, a cancelled chunk).
            fut.add_done_callback(_consume)
        self._inflight.clear()
        if pool is not None:
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)
