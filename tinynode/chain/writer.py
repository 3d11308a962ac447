"""ChainWriter: the single writer of chain state (DESIGN.md §3, btcd netsync `blockHandler`).

Jobs go into two thread-safe lanes that a dedicated thread consumes by itself (no event-loop
round trip between two jobs: a busy loop never leaves the writer idle), so every `ChainState` /
store / mempool access happens on one thread (the SQLite connection is created on it: pass a
factory) and the event loop stays free. The block lane (`call`: blocks, headers, reads,
everything chain-related) has priority: a job of the tx lane (`call_tx`: transaction
validation) starts only when no block-lane job is waiting (Core validates blocks before
transactions; a tx flood cannot delay a block by more than the one tx job running). Each lane
is FIFO and bounded (`max_queue`, `max_tx_queue`: callers beyond that wait their turn)::

    writer = ChainWriter(lambda: ChainState(params, SQLiteChainStore(path)))
    async with writer:
        result = await writer.submit_block(block)
        coin = await writer.call(writer.chainstate.get_coin, outpoint)
        writer.snapshot.height

Readers on the loop use the immutable `snapshot` (replaced after each job that moved the chain).
Chain events are forwarded to async subscribers on the loop, in order, by one delivery task.
`stop()` drains queued jobs of both lanes, then closes the chainstate (and its store) on the
writer thread.

A store failure is fatal (Core `AbortNode`): the job that hit it gets the `FatalStorageError`,
every queued and later job gets `ChainWriterAborted`, nothing is committed or emitted any more,
and `on_fatal(error)` is called on the loop (the node shuts down with a non-zero exit status).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from ..primitives.block import Block, BlockHeader
from .chainstate import FATAL_ERROR_MESSAGE, BlockResult, ChainState, FatalStorageError
from .events import ChainEvent
from .index import BlockIndexEntry

log = logging.getLogger(__name__)

__all__ = ["ChainWriter", "ChainSnapshot", "ChainWriterAborted", "FatalStorageError"]

_STOP = object()


class ChainWriterAborted(FatalStorageError):
    """The writer stopped on a fatal storage error; this job was not run (Core's
    "Error: A fatal internal error occurred")."""

    def __init__(self, cause: BaseException) -> None:
        self.what = "chain writer aborted"
        root = cause.__cause__ or cause
        RuntimeError.__init__(self, f"Error: {FATAL_ERROR_MESSAGE} (the chain writer stopped after "
                                    f"a storage failure: {type(root).__name__}: {root})")
        self.__cause__ = cause


def _set_result(fut: asyncio.Future, value: Any) -> None:  # event loop
    if not fut.done():
        fut.set_result(value)


def _set_exception(fut: asyncio.Future, exc: BaseException) -> None:  # event loop
    if not fut.done():
        fut.set_exception(exc)


@dataclass(frozen=True, slots=True)
class ChainSnapshot:
    """Immutable view of the chain for readers on the event loop."""

    tip_hash: bytes
    height: int
    chainwork: int
    best_header_hash: bytes
    best_header_height: int
    median_time_past: int
    tip_time: int = 0
    tip_bits: int = 0
    locator: tuple[bytes, ...] = ()
    best_header_time: int = 0


class ChainWriter:
    """Serializes all chain work onto one thread. Accepts a `ChainState` or a zero-arg factory
    returning one (use the factory with SQLite so the connection is made on the writer thread).

    Commit policy: the writer flushes the chainstate whenever both lanes run empty, so a node
    that keeps up commits every block on its own (before handing the job's result back, so a
    failing commit is that job's error). While jobs are queued (initial sync, a burst of
    blocks) up to `SYNC_FLUSH_BLOCKS` steps / `SYNC_FLUSH_BYTES` of block bodies /
    `SYNC_FLUSH_SECONDS` share one commit, which
    is what makes sync fast (dirty B-tree pages are written once per commit, not per block).
    While the chain is catching up (a known header is ahead of the tip: more blocks are on
    their way), an empty queue is not yet idleness: the commit waits until no job has come for
    `SYNC_IDLE_FLUSH_SECONDS` (Core flushes during IBD only when its cache fills or a while has
    passed, not between blocks). A crash then costs at most those blocks, fetched again.
    Outside catching up, staged blocks are also committed before a tx-lane job starts, so
    transaction work sees the mempool updated for every block it validates against.
    Chain events are emitted only after the commit that contains their block.
    A commit writes the blocks, not the coins cache (see `_flush`): the coins go to the store
    when the cache is over `--dbcache`, every `COINS_FLUSH_SECONDS`, and at `stop()`.
    """

    SYNC_FLUSH_BLOCKS = 1000
    #: ... or once the staged block bodies reach this many bytes: each staged step also holds its
    #: parsed `Block` in the `BlockConnected` event that waits for the commit (~5x the
    #: serialized size), so 1 MiB of bodies is ~6 MiB of memory held until the commit (Core
    #: writes each block to disk as it comes; the 1,000-step bound alone let big blocks hold
    #: hundreds of MiB). connect.py at 20,000 blocks of 4.7 kB: peak RSS 223 MiB with 4 MiB,
    #: 206 MiB with 1 MiB (~220 blocks a commit), the same inputs/s.
    SYNC_FLUSH_BYTES = 1 << 20
    SYNC_FLUSH_SECONDS = 5.0
    SYNC_IDLE_FLUSH_SECONDS = 1.0

    def __init__(self, chainstate: ChainState | Callable[[], ChainState], *, max_queue: int = 1024,
                 max_tx_queue: int = 1024, sync_flush_blocks: int | None = None,
                 sync_flush_bytes: int | None = None,
                 sync_flush_seconds: float | None = None,
                 sync_idle_flush_seconds: float | None = None,
                 on_fatal: Callable[[FatalStorageError], Any] | None = None) -> None:
        if isinstance(chainstate, ChainState) or not callable(chainstate):
            self._cs: ChainState | None = chainstate  # type: ignore[assignment]
            self._factory = None
        else:
            self._cs = None
            self._factory = chainstate
        self._max_queue = max_queue
        self._max_tx_queue = max_tx_queue
        self._flush_blocks = self.SYNC_FLUSH_BLOCKS if sync_flush_blocks is None else sync_flush_blocks
        self._flush_seconds = self.SYNC_FLUSH_SECONDS if sync_flush_seconds is None else sync_flush_seconds
        self._flush_bytes = self.SYNC_FLUSH_BYTES if sync_flush_bytes is None else sync_flush_bytes
        self._idle_flush_seconds = (self.SYNC_IDLE_FLUSH_SECONDS if sync_idle_flush_seconds is None
                                    else sync_idle_flush_seconds)
        #: called on the event loop with the error when a storage failure stopped the writer
        self.on_fatal = on_fatal
        self._executor: ThreadPoolExecutor | None = None
        # the two lanes (block, tx) and the writer thread's wake-up, guarded by `_cond`
        self._cond = threading.Condition()
        self._block_lane: deque = deque()
        self._tx_lane: deque = deque()
        self._stop_requested = False   # no job enters a lane any more; drain, then end
        self._slots: asyncio.Semaphore | None = None         # bounds the block lane (max_queue)
        self._tx_slots: asyncio.Semaphore | None = None      # bounds the tx lane (max_tx_queue)
        self._events: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None
        self._event_task: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subscribers: list[Callable[[ChainEvent], Any]] = []
        #: events from the writer thread not yet moved to `_events` (guarded by the lock)
        self._pending: list[ChainEvent] = []
        self._pending_lock = threading.Lock()
        self._snapshot: ChainSnapshot | None = None
        self._snap_key: tuple | None = None
        self._stopping = False
        self._closed = False
        #: the storage failure that stopped the writer (Core AbortNode), or None
        self._fatal: FatalStorageError | None = None

    # --- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        if self._task is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chain-writer")
        with self._cond:
            self._block_lane.clear()
            self._tx_lane.clear()
            self._stop_requested = False
        self._slots = asyncio.Semaphore(self._max_queue)
        self._tx_slots = asyncio.Semaphore(self._max_tx_queue)
        self._events = asyncio.Queue()
        self._stopping = False
        await self._loop.run_in_executor(self._executor, self._setup)
        self._task = asyncio.create_task(self._run(), name="chain-writer")
        self._event_task = asyncio.create_task(self._deliver_events(), name="chain-writer-events")

    def _setup(self) -> None:
        if self._cs is None:
            self._cs = self._factory()  # type: ignore[misc]
        self._cs.subscribe(self._on_event)
        self._cs.flush_blocks = self._flush_blocks
        self._cs.flush_seconds = self._flush_seconds
        # a bound the chainstate already has (its own hard limit) is only ever lowered
        self._cs.flush_bytes = min(getattr(self._cs, "flush_bytes", self._flush_bytes), self._flush_bytes)
        self._refresh_snapshot()

    async def stop(self) -> None:
        """Drain queued jobs (both lanes), close the chainstate on the writer thread (after a
        fatal error: without writing anything), stop the executor."""
        if self._task is None or self._stopping:
            return
        self._stopping = True
        with self._cond:
            self._stop_requested = True
            self._cond.notify()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("chain writer task failed")
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._executor, self._close_cs)
        except FatalStorageError:
            pass  # logged where it happened; the store stays at its last committed tip
        finally:
            self._executor.shutdown(wait=True)  # type: ignore[union-attr]
        # deliver remaining events, then end the delivery task
        self._drain_pending()
        self._events.put_nowait(_STOP)  # type: ignore[union-attr]
        try:
            await self._event_task  # type: ignore[misc]
        except asyncio.CancelledError:
            pass
        self._task = None
        self._event_task = None

    def _close_cs(self) -> None:
        if self._cs is not None and not self._closed:
            self._closed = True
            try:
                self._cs.close()
            except FatalStorageError as e:  # the last commit failed: the same fatal error
                self._abort(e)
                raise

    async def __aenter__(self) -> "ChainWriter":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def running(self) -> bool:
        """True between `start()` and the beginning of `stop()` (or a fatal error): `call` accepts jobs."""
        return self._task is not None and not self._stopping and self._fatal is None

    @property
    def fatal_error(self) -> FatalStorageError | None:
        """The storage failure that stopped the writer (Core AbortNode), or None."""
        return self._fatal

    @property
    def queued(self) -> tuple[int, int]:
        """(block-lane, tx-lane) jobs waiting to start."""
        with self._cond:
            return len(self._block_lane), len(self._tx_lane)

    # --- jobs ----------------------------------------------------------------------------------
    @property
    def chainstate(self) -> ChainState:
        """The chainstate. Touch it only inside `call(...)` (it lives on the writer thread)."""
        assert self._cs is not None, "writer not started"
        return self._cs

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Block lane: run `fn(*args)` on the writer thread after the block-lane jobs queued
        before it (and before any waiting tx-lane job); return its result."""
        return await self._submit(self._block_lane, self._slots, fn, args)

    async def call_tx(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Tx lane (transaction validation): run `fn(*args)` on the writer thread after the
        tx-lane jobs queued before it, once no block-lane job is waiting; return its result."""
        return await self._submit(self._tx_lane, self._tx_slots, fn, args)

    async def _submit(self, lane: deque, slots: asyncio.Semaphore | None, fn: Callable[..., Any],
                      args: tuple) -> Any:
        self._check_running()
        fut = asyncio.get_running_loop().create_future()
        await slots.acquire()  # type: ignore[union-attr]
        with self._cond:
            if self._fatal is not None or self._stop_requested or self._task is None:
                slots.release()  # type: ignore[union-attr]
                refused = True
            else:
                refused = False
                fut.add_done_callback(lambda _f: slots.release())  # type: ignore[union-attr]
                lane.append((fn, args, fut, lane is self._tx_lane))
                self._cond.notify()
        if refused:  # stop or a fatal error came while this caller waited for room
            self._check_running()
            raise RuntimeError("chain writer stopped")
        return await fut

    def _check_running(self) -> None:
        if self._fatal is not None:
            raise ChainWriterAborted(self._fatal)
        if not self.running:
            raise RuntimeError("chain writer is not running")

    async def submit_block(self, block: Block) -> BlockResult:
        return await self.call(self._submit_block, block)

    def _submit_block(self, block: Block) -> BlockResult:
        return self._cs.process_block(block)  # type: ignore[union-attr]

    async def submit_headers(self, headers: list[BlockHeader]) -> list[BlockIndexEntry]:
        """Raises ValidationError like `ChainState.process_headers`."""
        return await self.call(self._submit_headers, headers)

    def _submit_headers(self, headers: list[BlockHeader]) -> list[BlockIndexEntry]:
        return self._cs.process_headers(headers)  # type: ignore[union-attr]

    def _flush(self) -> None:  # writer thread; a failure is fatal (ChainState raises it)
        """Commit the staged steps: block bodies, index rows and undo records, then their events
        (`ChainState.commit`). The coins cache is written by that commit only when it is over
        its budget or its flush interval has passed, and always at `stop()` (Core writes block
        data as it comes but flushes the coins only when the cache is full, periodically
        — DATABASE_WRITE_INTERVAL — or at shutdown: `FlushStateToDisk` IF_NEEDED / PERIODIC /
        ALWAYS). After a kill the store's tip is the last coins flush, and the start connects
        the committed blocks above it again (`ChainState._load`)."""
        cs = self._cs
        if cs is None or self._closed:
            return
        commit = getattr(cs, "commit", None) or getattr(cs, "flush", None)  # a stand-in chain
        if commit is not None:                                              # may keep nothing
            commit()

    def _job(self, fn: Callable[..., Any], args: tuple) -> Any:
        try:
            return fn(*args)
        finally:
            if self._aborted_by() is None:
                self._refresh_snapshot()

    async def _run(self) -> None:
        """Runs the writer thread's job loop (`_work`) on the executor until stopped."""
        loop = asyncio.get_running_loop()
        await asyncio.shield(loop.run_in_executor(self._executor, self._work, loop))

    def _take(self, timeout: float | None = None) -> Any:  # writer thread
        """The next job: the block lane first, the tx lane only when the block lane is empty.
        `_STOP` once stop was requested and both lanes are empty; None after `timeout`."""
        cond = self._cond
        with cond:
            for _ in range(2):  # wait at most once
                if self._block_lane:
                    return self._block_lane.popleft()
                if self._tx_lane:
                    return self._tx_lane.popleft()
                if self._stop_requested:
                    return _STOP
                if timeout is not None and timeout <= 0:
                    return None
                # bounded: a notify or the timeout ends the wait (a spurious wake-up just
                # ends it early: the caller loops again)
                cond.wait(timeout if timeout is not None else 60.0)
            return None

    def _lanes_empty(self) -> bool:
        with self._cond:
            return not self._block_lane and not self._tx_lane

    def _work(self, loop: asyncio.AbstractEventLoop) -> None:  # writer thread
        """Take jobs by priority; commit whenever both lanes run empty (bursts share one commit,
        DESIGN.md §5) — while catching up, once they stayed empty for the idle delay — and
        then hand the job's result to the loop. A store failure (FatalStorageError from a job
        or a commit) ends the loop: see `_abort`."""
        item = None
        while True:
            if item is None:
                item = self._take()
            if item is None:
                continue
            if item is _STOP:
                return
            fn, args, fut, tx_lane = item
            item = None
            if fut.done():  # caller gave up (cancelled) before we started
                continue
            if tx_lane and self._staged_outside_sync():
                # tx work runs on committed blocks (their events have reached the mempool)
                if not self._commit(loop, None):
                    self._resolve(loop, fut, _set_exception, ChainWriterAborted(self._fatal))  # type: ignore[arg-type]
                    return
            try:
                result = self._job(fn, args)
                outcome: tuple = (_set_result, result)
            except BaseException as e:  # noqa: BLE001 - handed to the caller
                outcome = (_set_exception, e)
            aborted = self._aborted_by()
            if aborted is not None:
                self._abort(aborted)
                self._resolve(loop, fut, _set_exception,
                              outcome[1] if isinstance(outcome[1], FatalStorageError) else aborted)
                return
            if self._lanes_empty():
                if self._catching_up():
                    self._resolve(loop, fut, *outcome)
                    fut = None
                    item = self._take(self._idle_flush_seconds)
                    if item is not None:
                        continue
                if not self._commit(loop, fut):
                    return
            if fut is not None:
                self._resolve(loop, fut, *outcome)

    def _aborted_by(self) -> FatalStorageError | None:  # writer thread
        """The chainstate's store failure (a stand-in chain without one never aborts)."""
        return getattr(self._cs, "aborted", None)

    def _staged_outside_sync(self) -> bool:  # writer thread
        cs = self._cs
        return (cs is not None and not self._closed and getattr(cs, "staged_steps", 0) > 0
                and not self._catching_up())

    def _commit(self, loop: asyncio.AbstractEventLoop, fut: asyncio.Future | None) -> bool:  # writer thread
        """Flush the chainstate. On failure: abort, hand the error to `fut` (the job whose
        result this commit was to make durable), return False."""
        try:
            self._flush()
            return True
        except FatalStorageError as e:
            self._abort(e)
            if fut is not None:
                self._resolve(loop, fut, _set_exception, e)
            return False

    def _abort(self, error: FatalStorageError) -> None:  # writer thread
        """Core `AbortNode`: stop taking jobs, fail every queued one, tell the node."""
        loop = self._loop
        with self._cond:
            if self._fatal is not None:
                return
            self._fatal = error
            queued = list(self._block_lane) + list(self._tx_lane)
            self._block_lane.clear()
            self._tx_lane.clear()
        log.critical("chain writer stopped after a fatal storage error (%s); %d queued job%s refused",
                     type(error.__cause__ or error).__name__, len(queued), "" if len(queued) == 1 else "s")
        if loop is None:
            return
        for _fn, _args, fut, _tx in queued:
            self._resolve(loop, fut, _set_exception, ChainWriterAborted(error))
        try:
            loop.call_soon_threadsafe(self._fire_fatal, error)
        except RuntimeError:  # loop closed
            pass

    def _fire_fatal(self, error: FatalStorageError) -> None:  # event loop
        cb = self.on_fatal
        if cb is None:
            return
        try:
            cb(error)
        except Exception:
            log.exception("on_fatal callback failed")

    def _catching_up(self) -> bool:  # writer thread
        """A header better than the tip is known: blocks are still being fetched (initial sync)."""
        cs = self._cs
        return cs is not None and not self._closed and cs.best_header.height > cs.tip.height

    @staticmethod
    def _resolve(loop: asyncio.AbstractEventLoop, fut: asyncio.Future, setter: Callable, value: Any) -> None:
        try:
            loop.call_soon_threadsafe(setter, fut, value)
        except RuntimeError:  # loop closed: nobody is waiting any more
            pass

    # --- snapshot ------------------------------------------------------------------------------
    @property
    def snapshot(self) -> ChainSnapshot:
        assert self._snapshot is not None, "writer not started"
        return self._snapshot

    def _refresh_snapshot(self) -> None:
        cs = self._cs
        if cs is None or self._closed:
            return
        tip, best = cs.tip, cs.best_header
        key = (tip.hash, best.hash)
        if key == self._snap_key:
            return
        self._snap_key = key
        self._snapshot = ChainSnapshot(
            tip_hash=tip.hash, height=tip.height, chainwork=tip.chainwork,
            best_header_hash=best.hash, best_header_height=best.height,
            median_time_past=cs.median_time_past(tip), tip_time=tip.time,
            tip_bits=tip.bits, locator=tuple(cs.block_locator()),
            best_header_time=best.time)

    # --- events ----------------------------------------------------------------------------------
    def subscribe_async(self, callback: Callable[[ChainEvent], Awaitable[None] | None]) -> None:
        """`callback(event)` runs on the event loop, in event order; it may be a coroutine function."""
        self._subscribers.append(callback)

    def unsubscribe_async(self, callback: Callable[[ChainEvent], Any]) -> None:
        try:
            self._subscribers.remove(callback)
        except ValueError:
            pass

    def _on_event(self, event: ChainEvent) -> None:  # writer thread
        """Queue `event` for the loop. Events wait in `_pending`; only the first one of a burst
        wakes the loop (one `call_soon_threadsafe` per burst, not per event: during sync that
        wake-up was a measurable share of the writer's time). Every event of a job is handed over
        before the job's result, as the wake-up is scheduled before the result is."""
        loop, events = self._loop, self._events
        if loop is None or events is None or loop.is_closed():
            return
        with self._pending_lock:
            wake = not self._pending
            self._pending.append(event)
        if wake:
            try:
                loop.call_soon_threadsafe(self._drain_pending)
            except RuntimeError:  # loop closed meanwhile
                pass

    def _drain_pending(self) -> None:  # event loop
        with self._pending_lock:
            pending, self._pending = self._pending, []
        events = self._events
        if events is not None:
            for ev in pending:
                events.put_nowait(ev)

    async def sync_events(self) -> None:
        """Core `SyncWithValidationInterfaceQueue`: return once every event of the jobs done
        so far was delivered to every subscriber. A no-op job first makes the writer hand over
        what earlier jobs emitted; then a marker goes through the event queue behind them."""
        await self.call(lambda: None)
        self._drain_pending()
        events = self._events
        if events is None or self._event_task is None or self._event_task.done():
            return
        done = asyncio.get_running_loop().create_future()
        events.put_nowait(done)
        # the delivery task ends at stop without reaching a marker queued behind _STOP
        await asyncio.wait({done, self._event_task}, return_when=asyncio.FIRST_COMPLETED)

    async def _deliver_events(self) -> None:
        events = self._events
        assert events is not None
        while True:
            ev = await events.get()
            if ev is _STOP:
                return
            if isinstance(ev, asyncio.Future):   # a sync_events marker
                if not ev.done():
                    ev.set_result(None)
                continue
            for cb in list(self._subscribers):
                try:
                    r = cb(ev)
                    if inspect.isawaitable(r):
                        await r
                except Exception:  # a subscriber bug must not stop delivery to the others
                    log.exception("chain event subscriber %r failed on %r", cb, ev)
