"""A failing chain store is fatal (Core AbortNode / FatalError), at every stage.

Scenario, delivered through a ChainWriter (headers first, so the a-chain is a catching-up sync
with two steps per commit; then a side branch that overtakes it: a reorg of 3 blocks):

    genesis -> a1 -> a2 -> a3 -> a4 -> a5 -> a6          (a4 spends a1's coinbase)
                             \\-> b4 -> b5 -> b6 -> b7 -> b8   (b4 spends it too: a conflict)

The scenario's chainstates write the coins cache at every commit (flush interval 0; by default
the writer's idle commits leave the coins in the cache), so the coin writes happen inside jobs.
Each stage of a store transaction (header row, block body, coins, undo record, the undo deletes
of the reorg's disconnects, the undo reads of those disconnects, the COMMIT) fails in turn on
its 1st, 2nd, .. Nth call with SQLite's "disk I/O error". Each time: the caller of the job whose
work failed gets FatalStorageError with Core's wording and the cause; every later job is
refused (ChainWriterAborted); the events that reached subscribers replay exactly to the chain
that is on disk (none for an uncommitted block); reopening the SQLite store gives that last
committed tip with the UTXO set hash a memory node has there; and delivering everything again
to the reopened store ends at the same final state as an undisturbed run.
"""

from __future__ import annotations

import errno

import dataclasses

import pytest

from tinynode.chain.chainstate import FATAL_ERROR_MESSAGE, ChainState, FatalStorageError
from tinynode.chain.events import BlockConnected, BlockDisconnected, TipChanged
from tinynode.chain.writer import ChainWriter, ChainWriterAborted
from tinynode.primitives.tx import COIN
from tinynode.storage.memory import MemoryChainStore
from tinynode.storage.sqlite import SQLiteChainStore

from tests.framework.faulty_store import FaultyConnection, FaultyStore
from tests.framework.wait import wait_until
from tests.unit.test_chain_unit_helpers import Builder, spend
from tinynode.params import REGTEST

#: regtest with coinbase maturity 2, so a spend needs few blocks (this test is about the store,
#: not consensus, and never goes to Core's kernel)
PARAMS = dataclasses.replace(REGTEST, coinbase_maturity=2)
G = PARAMS.genesis
NEVER = 1e9


def _blocks():
    B = Builder()
    a = B.chain(G, 3)
    t = spend(a[0].txs[0], 49 * COIN)
    a4 = B.next(a[2], (t,), fees=COIN)
    a5 = B.next(a4, cb_extra=b"a5")
    a6 = B.next(a5, cb_extra=b"a6")
    t2 = spend(a[0].txs[0], 48 * COIN)
    b4 = B.next(a[2], (t2,), fees=2 * COIN, cb_extra=b"b4")
    bs = [b4]
    for i in range(5, 9):
        bs.append(B.next(bs[-1], cb_extra=b"b%d" % i))
    return [*a, a4, a5, a6], bs


A_CHAIN, B_CHAIN = _blocks()
ALL = A_CHAIN + B_CHAIN


def _reference() -> tuple[dict[bytes, bytes], bytes]:
    """tip hash -> UTXO set hash of a memory node after each delivery; the final UTXO hash."""
    cs = ChainState(PARAMS, MemoryChainStore())
    ref = {cs.tip.hash: cs.utxo_set_hash()}
    for blk in ALL:
        assert cs.process_block(blk).error is None
        ref[cs.tip.hash] = cs.utxo_set_hash()
    assert cs.tip.hash == B_CHAIN[-1].hash
    final = cs.utxo_set_hash()
    cs.close()
    return ref, final


REF, FINAL_UTXO = _reference()


class _Run:
    """One scenario run through a writer; what each job returned or raised, what subscribers saw."""

    def __init__(self) -> None:
        self.outcomes: list[tuple[str, object]] = []
        self.async_events: list = []
        self.sync_events: list = []
        self.fatal: list = []


async def _scenario(make_chainstate) -> tuple[_Run, ChainWriter]:
    run = _Run()

    def factory():
        cs = make_chainstate()
        cs.subscribe(run.sync_events.append)
        return cs

    writer = ChainWriter(factory, sync_flush_blocks=2, sync_flush_seconds=NEVER,
                         sync_idle_flush_seconds=NEVER, on_fatal=run.fatal.append)
    writer.subscribe_async(run.async_events.append)
    coin = A_CHAIN[3].txs[1].vin[0].prevout
    jobs = [("headers a", lambda: writer.submit_headers([b.header for b in A_CHAIN]))]
    jobs += [(f"block a{i + 1}", lambda b=b: writer.submit_block(b)) for i, b in enumerate(A_CHAIN)]
    jobs += [("tx-lane read", lambda: writer.call_tx(lambda: writer.chainstate.get_coin(coin)))]
    jobs += [(f"block b{i + 4}", lambda b=b: writer.submit_block(b)) for i, b in enumerate(B_CHAIN)]
    jobs += [("read", lambda: writer.call(lambda: writer.chainstate.tip.height))]
    async with writer:
        for label, job in jobs:
            try:
                run.outcomes.append((label, await job()))
            except Exception as e:  # noqa: BLE001 - recorded and checked below
                run.outcomes.append((label, e))
        await wait_until(lambda: len(run.async_events) == len(run.sync_events), timeout=5)
    return run, writer


def _replay(events: list) -> list[bytes]:
    chain = [G.hash]
    for ev in events:
        if isinstance(ev, BlockConnected):
            assert ev.entry.prev.hash == chain[-1]
            chain.append(ev.entry.hash)
        elif isinstance(ev, BlockDisconnected):
            assert chain.pop() == ev.entry.hash
        else:
            assert isinstance(ev, TipChanged) and ev.new_tip.hash == chain[-1]
    return chain


def _root(e: BaseException) -> BaseException:
    for _ in range(10):
        if e.__cause__ is None:
            return e
        e = e.__cause__
    return e


def _check_fatal_run(run: _Run, writer: ChainWriter, reopen, cause: str = "disk I/O error") -> None:
    errors = [i for i, (_, r) in enumerate(run.outcomes) if isinstance(r, BaseException)]
    assert errors, "the injected failure never surfaced"
    first = errors[0]
    label, err = run.outcomes[first]
    # the error reaches the caller whose work failed, with Core's wording and the cause
    assert isinstance(err, FatalStorageError) and not isinstance(err, ChainWriterAborted), (label, err)
    assert FATAL_ERROR_MESSAGE in str(err) and cause in str(err), err
    assert cause in str(_root(err))
    # every later job is refused
    for later_label, later in run.outcomes[first + 1:]:
        assert isinstance(later, ChainWriterAborted), (later_label, later)
        assert str(later).startswith("Error: A fatal internal error occurred"), later
    assert writer.fatal_error is err and run.fatal == [err]
    # subscribers saw only committed blocks: their events replay to the chain on disk
    assert run.async_events == run.sync_events
    seen_chain = _replay(run.async_events)
    cs = reopen()
    try:
        on_disk = [cs.get_block_hash(h) for h in range(cs.height + 1)]
        assert on_disk == seen_chain, (label, len(on_disk), len(seen_chain))
        assert cs.utxo_set_hash() == REF[cs.tip.hash]
        # a restart continues from there to the same final state
        for blk in ALL:
            assert cs.process_block(blk).error is None
        assert cs.tip.hash == B_CHAIN[-1].hash and cs.utxo_set_hash() == FINAL_UTXO
    finally:
        cs.close()


def _sqlite_chainstate(path, stage: str, n: int, proxies: list):
    def make():
        store = SQLiteChainStore(path)
        cs = ChainState(PARAMS, store)
        cs.coins_flush_seconds = 0      # every commit writes the coins: each stage is in a job
        proxies.append(FaultyConnection.install(store, stage, n))
        return cs
    return make


async def _count_sqlite(tmp_path, stage: str) -> int:
    proxies: list = []
    run, writer = await _scenario(_sqlite_chainstate(tmp_path / "count.sqlite", stage, 0, proxies))
    assert not any(isinstance(r, BaseException) for _, r in run.outcomes), run.outcomes
    assert writer.fatal_error is None and _replay(run.async_events)[-1] == B_CHAIN[-1].hash
    return proxies[0].calls


@pytest.mark.parametrize("stage", ["header", "body", "coins", "undo", "disconnect", "undo-read", "commit"])
async def test_sqlite_failure_at_every_stage_is_fatal_and_leaves_the_last_commit(tmp_path, stage):
    calls = await _count_sqlite(tmp_path, stage)
    assert calls >= 1, f"the scenario never reaches stage {stage}"
    for n in range(1, calls + 1):
        path = tmp_path / f"{stage}-{n}.sqlite"
        proxies: list = []
        run, writer = await _scenario(_sqlite_chainstate(path, stage, n, proxies))
        assert proxies[0].failed
        _check_fatal_run(run, writer, lambda: ChainState(PARAMS, SQLiteChainStore(path)))


class _FailingFileWrites:
    """Wraps a store's BlockFiles.write: the `n`th call raises ENOSPC (n=0: only counts)."""

    def __init__(self, store, n: int) -> None:
        self.inner = store._files.write
        self.n = n
        self.calls = 0
        self.failed = False
        store._files.write = self

    def __call__(self, *args):
        self.calls += 1
        if self.calls == self.n:
            self.failed = True
            raise OSError(errno.ENOSPC, "No space left on device")
        return self.inner(*args)


def _file_failing_chainstate(path, n: int, proxies: list):
    def make():
        store = SQLiteChainStore(path)
        cs = ChainState(PARAMS, store)
        proxies.append(_FailingFileWrites(store, n))
        return cs
    return make


async def test_a_block_file_write_failure_is_fatal_and_leaves_the_last_commit(tmp_path):
    """A full disk while appending to blk/rev files (Core: "Disk space is too low!" then
    AbortNode): the store transaction is rolled back, the writer stops, and the reopened store
    is at the last commit, its files cut back to what that commit recorded."""
    proxies: list = []
    run, writer = await _scenario(_file_failing_chainstate(tmp_path / "count.sqlite", 0, proxies))
    assert writer.fatal_error is None
    calls = proxies[0].calls
    assert calls >= 2
    for n in range(1, calls + 1, max(1, calls // 6)):
        path = tmp_path / f"files-{n}.sqlite"
        proxies = []
        run, writer = await _scenario(_file_failing_chainstate(path, n, proxies))
        assert proxies[0].failed
        _check_fatal_run(run, writer, lambda: ChainState(PARAMS, SQLiteChainStore(path)),
                         cause="No space left on device")


@pytest.mark.parametrize("method", ["write", "get_undo"])
async def test_any_store_exception_is_fatal_memory_store(method):
    counter: list = []

    def make(n: int, inner: MemoryChainStore):
        def f():
            ChainState(PARAMS, inner)  # genesis written unwrapped: only the scenario's calls count
            faulty = FaultyStore(inner, method, n)
            counter.append(faulty)
            cs = ChainState(PARAMS, faulty)
            cs.coins_flush_seconds = 0  # every commit writes the coins: each stage is in a job
            return cs
        return f
    await _scenario(make(0, MemoryChainStore()))
    calls = counter[-1].calls
    assert calls >= 1
    for n in range(1, calls + 1):
        inner = MemoryChainStore()
        run, writer = await _scenario(make(n, inner))
        assert counter[-1].failed
        _check_fatal_run(run, writer, lambda: ChainState(PARAMS, inner), cause="Input/output error")


async def test_events_wait_for_the_commit_that_holds_their_block():
    """While a sync batches steps, no subscriber hears of a block before it is on disk; the
    commit then announces its steps' blocks and ONE tip change."""
    store = MemoryChainStore()
    at_delivery: list[tuple] = []

    def record(ev) -> None:
        what = (ev.entry.hash if isinstance(ev, BlockConnected)
                else (ev.old_tip.hash, ev.new_tip.hash, ev.disconnected))
        block = ev.entry.hash if isinstance(ev, BlockConnected) else ev.new_tip.hash
        at_delivery.append((type(ev).__name__, what, store.has_block(block)))

    def factory():
        cs = ChainState(PARAMS, store)
        cs.subscribe(record)
        return cs
    writer = ChainWriter(factory, sync_flush_blocks=NEVER, sync_flush_seconds=NEVER,
                         sync_idle_flush_seconds=NEVER)
    blocks = Builder().chain(G, 5)
    async with writer:
        await writer.submit_headers([b.header for b in blocks])
        for b in blocks[:3]:
            assert (await writer.submit_block(b)).status == "connected"
        assert writer.snapshot.height == 3 and not store.has_block(blocks[0].hash)
        assert at_delivery == []            # connected in memory, not committed: not announced
        for b in blocks[3:]:
            await writer.submit_block(b)
        await wait_until(lambda: len(at_delivery) == 6, timeout=5)
    # all five were announced by the one commit that wrote them, after it, then one tip change
    tip = blocks[-1].hash
    assert at_delivery == [("BlockConnected", b.hash, True) for b in blocks] + [
        ("TipChanged", (G.hash, tip, 0), True)]


async def test_failed_idle_commit_refuses_the_next_job_and_stop_writes_nothing():
    """A commit with no caller waiting (after a sync's idle delay) fails: the next caller is
    refused, stop() closes the store without retrying the staged steps."""
    inner = MemoryChainStore()
    ChainState(PARAMS, inner)
    faulty = FaultyStore(inner, "write", 1)
    fatal: list = []
    writer = ChainWriter(ChainState(PARAMS, faulty), sync_flush_blocks=NEVER,
                         sync_flush_seconds=NEVER, sync_idle_flush_seconds=0.01, on_fatal=fatal.append)
    blocks = Builder().chain(G, 4)
    async with writer:
        await writer.submit_headers([b.header for b in blocks])
        assert (await writer.submit_block(blocks[0])).status == "connected"
        await wait_until(lambda: fatal, timeout=5)
        assert not writer.running
        with pytest.raises(ChainWriterAborted, match="disk I/O error|Input/output error"):
            await writer.submit_block(blocks[1])
    assert faulty.calls == 1 and inner.closed and inner.get_tip() == G.hash
    cs = ChainState(PARAMS, inner)
    assert cs.tip.hash == G.hash


def test_chainstate_refuses_work_after_a_store_failure():
    inner = MemoryChainStore()
    ChainState(PARAMS, inner)
    cs = ChainState(PARAMS, FaultyStore(inner, "write", 1))
    blocks = Builder().chain(G, 2)
    with pytest.raises(FatalStorageError, match="A fatal internal error occurred") as ei:
        cs.process_block(blocks[0])
    assert isinstance(ei.value.__cause__, OSError)
    assert cs.aborted is ei.value
    for call in (lambda: cs.process_block(blocks[1]), cs.flush, lambda: cs.get_block(G.hash),
                 lambda: cs.process_headers([blocks[1].header])):
        with pytest.raises(FatalStorageError) as again:
            call()
        assert again.value is ei.value
    cs.close()                                  # writes nothing, closes the store
    assert inner.closed and inner.get_tip() == G.hash and inner.writes == 1  # genesis only


async def test_failed_last_commit_at_stop_is_fatal_too():
    """stop() commits what a sync left staged; when that commit fails, on_fatal still fires
    (the node's exit status) and the store keeps its last committed tip."""
    inner = MemoryChainStore()
    ChainState(PARAMS, inner)
    fatal: list = []
    writer = ChainWriter(ChainState(PARAMS, FaultyStore(inner, "write", 1)), sync_flush_blocks=NEVER,
                         sync_flush_seconds=NEVER, sync_idle_flush_seconds=NEVER, on_fatal=fatal.append)
    seen: list = []
    writer.subscribe_async(seen.append)
    blocks = Builder().chain(G, 3)
    async with writer:
        await writer.submit_headers([b.header for b in blocks])
        for b in blocks[:2]:
            assert (await writer.submit_block(b)).status == "connected"
    await wait_until(lambda: fatal, timeout=5)
    assert isinstance(fatal[0], FatalStorageError) and writer.fatal_error is fatal[0]
    assert seen == [] and inner.get_tip() == G.hash and inner.closed
