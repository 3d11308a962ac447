"""ChainWriter: the single writer of chain state (DESIGN.md §3, btcd netsync `blockHandler`).

Jobs go, in order, into one thread-safe queue that a dedicated thread consumes by itself (no
event-loop round trip between two jobs: a busy loop never leaves the writer idle), so every
`ChainState` / store / mempool access happens on one thread (the SQLite connection is created on
it: pass a factory) and the event loop stays free. At most `max_queue` jobs wait at once
(callers beyond that wait their turn)::

    writer = ChainWriter(lambda: ChainState(params, SQLiteChainStore(path)))
    async with writer:
        result = await writer.submit_block(block)
        coin = await writer.call(writer.chainstate.get_coin, outpoint)
        writer.snapshot.height

Readers on the loop use the immutable `snapshot` (replaced after each job that moved the chain).
Chain events are forwarded to async subscribers on the loop, in order, by one delivery task.
`stop()` drains queued jobs, then closes the chainstate (and its store) on the writer thread.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import queue as _queue_mod
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from ..primitives.block import Block, BlockHeader
from .chainstate import BlockResult, ChainState
from .events import ChainEvent
from .index import BlockIndexEntry

log = logging.getLogger(__name__)

__all__ = ["ChainWriter", "ChainSnapshot"]

_STOP = object()


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


class ChainWriter:
    """Serializes all chain work onto one thread. Accepts a `ChainState` or a zero-arg factory
    returning one (use the factory with SQLite so the connection is made on the writer thread).

    Commit policy: the writer flushes the chainstate whenever its queue runs empty, so a node
    that keeps up commits every block on its own. While jobs are queued (initial sync, a burst
    of blocks) up to `SYNC_FLUSH_BLOCKS` steps / `SYNC_FLUSH_SECONDS` share one commit, which
    is what makes sync fast (dirty B-tree pages are written once per commit, not per block).
    While the chain is catching up (a known header is ahead of the tip: more blocks are on
    their way), an empty queue is not yet idleness: the commit waits until no job has come for
    `SYNC_IDLE_FLUSH_SECONDS` (Core flushes during IBD only when its cache fills or a while has
    passed, not between blocks). A crash then costs at most those blocks, fetched again.
    """

    SYNC_FLUSH_BLOCKS = 1000
    SYNC_FLUSH_SECONDS = 5.0
    SYNC_IDLE_FLUSH_SECONDS = 1.0

    def __init__(self, chainstate: ChainState | Callable[[], ChainState], *, max_queue: int = 1024,
                 sync_flush_blocks: int | None = None, sync_flush_seconds: float | None = None,
                 sync_idle_flush_seconds: float | None = None) -> None:
        if isinstance(chainstate, ChainState) or not callable(chainstate):
            self._cs: ChainState | None = chainstate  # type: ignore[assignment]
            self._factory = None
        else:
            self._cs = None
            self._factory = chainstate
        self._max_queue = max_queue
        self._flush_blocks = self.SYNC_FLUSH_BLOCKS if sync_flush_blocks is None else sync_flush_blocks
        self._flush_seconds = self.SYNC_FLUSH_SECONDS if sync_flush_seconds is None else sync_flush_seconds
        self._idle_flush_seconds = (self.SYNC_IDLE_FLUSH_SECONDS if sync_idle_flush_seconds is None
                                    else sync_idle_flush_seconds)
        self._executor: ThreadPoolExecutor | None = None
        self._queue: _queue_mod.SimpleQueue | None = None   # jobs for the writer thread
        self._slots: asyncio.Semaphore | None = None         # bounds the queue (max_queue)
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

    # --- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        if self._task is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chain-writer")
        self._queue = _queue_mod.SimpleQueue()
        self._slots = asyncio.Semaphore(self._max_queue)
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
        self._refresh_snapshot()

    async def stop(self) -> None:
        """Drain queued jobs, close the chainstate on the writer thread, stop the executor."""
        if self._task is None or self._stopping:
            return
        self._stopping = True
        self._queue.put(_STOP)  # type: ignore[union-attr]
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("chain writer task failed")
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._executor, self._close_cs)
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
            self._cs.close()

    async def __aenter__(self) -> "ChainWriter":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def running(self) -> bool:
        """True between `start()` and the beginning of `stop()`: `call` accepts jobs."""
        return self._task is not None and not self._stopping

    # --- jobs ----------------------------------------------------------------------------------
    @property
    def chainstate(self) -> ChainState:
        """The chainstate. Touch it only inside `call(...)` (it lives on the writer thread)."""
        assert self._cs is not None, "writer not started"
        return self._cs

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run `fn(*args)` on the writer thread after the jobs queued before it; return its result."""
        if not self.running:
            raise RuntimeError("chain writer is not running")
        fut = asyncio.get_running_loop().create_future()
        slots = self._slots
        await slots.acquire()  # type: ignore[union-attr]
        fut.add_done_callback(lambda _f: slots.release())  # type: ignore[union-attr]
        self._queue.put((fn, args, fut))  # type: ignore[union-attr]
        return await fut

    async def submit_block(self, block: Block) -> BlockResult:
        return await self.call(self._submit_block, block)

    def _submit_block(self, block: Block) -> BlockResult:
        return self._cs.process_block(block)  # type: ignore[union-attr]

    async def submit_headers(self, headers: list[BlockHeader]) -> list[BlockIndexEntry]:
        """Raises ValidationError like `ChainState.process_headers`."""
        return await self.call(self._submit_headers, headers)

    def _submit_headers(self, headers: list[BlockHeader]) -> list[BlockIndexEntry]:
        return self._cs.process_headers(headers)  # type: ignore[union-attr]

    def _flush(self) -> None:
        cs = self._cs
        if cs is not None and not self._closed:
            try:
                cs.flush()
            except Exception:
                log.exception("chain flush failed")
                raise

    def _job(self, fn: Callable[..., Any], args: tuple) -> Any:
        try:
            return fn(*args)
        finally:
            self._refresh_snapshot()

    async def _run(self) -> None:
        """Runs the writer thread's job loop (`_work`) on the executor until `_STOP`."""
        loop = asyncio.get_running_loop()
        await asyncio.shield(loop.run_in_executor(self._executor, self._work, loop))

    def _work(self, loop: asyncio.AbstractEventLoop) -> None:  # writer thread
        """Take jobs in order; hand each result to the loop; commit whenever the queue runs
        empty (bursts share one commit, DESIGN.md §5) — while catching up, once it has stayed
        empty for the idle delay. Jobs still queued behind `_STOP` (callers
        that were waiting for room when stop began) fail with RuntimeError."""
        q = self._queue
        assert q is not None
        item = None
        while True:
            if item is None:
                item = q.get()
            if item is _STOP:
                break
            fn, args, fut = item
            item = None
            if fut.done():  # caller gave up (cancelled) before we started
                continue
            try:
                result = self._job(fn, args)
            except BaseException as e:  # noqa: BLE001 - handed to the caller
                self._resolve(loop, fut, _set_exception, e)
            else:
                self._resolve(loop, fut, _set_result, result)
            if q.empty():
                if self._catching_up():
                    try:
                        item = q.get(timeout=self._idle_flush_seconds)
                        continue
                    except _queue_mod.Empty:
                        pass
                try:
                    self._flush()
                except Exception:  # logged in _flush; staged state is kept and retried
                    pass
        while True:
            try:
                item = q.get_nowait()
            except _queue_mod.Empty:
                return
            if item is not _STOP:
                self._resolve(loop, item[2], _set_exception, RuntimeError("chain writer stopped"))

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
            median_time_past=cs.median_time_past(tip), tip_time=tip.header.time,
            tip_bits=tip.header.bits, locator=tuple(cs.block_locator()))

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

    async def _deliver_events(self) -> None:
        events = self._events
        assert events is not None
        while True:
            ev = await events.get()
            if ev is _STOP:
                return
            for cb in list(self._subscribers):
                try:
                    r = cb(ev)
                    if inspect.isawaitable(r):
                        await r
                except Exception:  # a subscriber bug must not stop delivery to the others
                    log.exception("chain event subscriber %r failed on %r", cb, ev)
