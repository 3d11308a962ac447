"""ChainWriter: jobs on one thread, snapshots, async events, errors, clean stop."""

from __future__ import annotations

import threading

import pytest

from tinynode.chain.chainstate import ChainState
from tinynode.chain.events import BlockConnected, TipChanged
from tinynode.chain.writer import ChainSnapshot, ChainWriter
from tinynode.consensus.errors import RejectReason as R, ValidationError
from tinynode.storage.memory import MemoryChainStore
from tinynode.storage.sqlite import SQLiteChainStore

from tests.framework.wait import wait_until
from tests.unit.test_chain_unit_helpers import PARAMS, Builder, make_block

G = PARAMS.genesis


async def test_round_trip_with_sqlite_on_writer_thread(tmp_path):
    path = tmp_path / "chain.sqlite"
    threads = set()

    def factory():
        threads.add(threading.get_ident())
        return ChainState(PARAMS, SQLiteChainStore(path))

    writer = ChainWriter(factory)
    got = []

    async def on_event(ev):
        got.append(ev)

    writer.subscribe_async(on_event)
    B = Builder()
    blocks = B.chain(G, 5)
    async with writer:
        assert isinstance(writer.snapshot, ChainSnapshot) and writer.snapshot.height == 0
        for b in blocks:
            r = await writer.submit_block(b)
            assert r.status == "connected"
        snap = writer.snapshot
        assert snap.height == 5 and snap.tip_hash == blocks[-1].hash
        assert snap.best_header_hash == blocks[-1].hash and snap.locator[0] == blocks[-1].hash
        # every job runs on the thread that made the SQLite connection
        tid = await writer.call(threading.get_ident)
        assert threads == {tid} and tid != threading.get_ident()
        assert await writer.call(lambda: writer.chainstate.get_block_hash(3)) == blocks[2].hash
        await wait_until(lambda: len(got) == 10, timeout=5)
        assert [type(e) for e in got[:2]] == [BlockConnected, TipChanged]
        assert got[-1].new_tip.hash == blocks[-1].hash
    # store closed on stop; reopening sees the tip
    cs = ChainState(PARAMS, SQLiteChainStore(path))
    assert cs.tip.hash == blocks[-1].hash
    cs.close()


async def test_errors_propagate_and_writer_keeps_going():
    writer = ChainWriter(ChainState(PARAMS, MemoryChainStore()))
    await writer.start()
    try:
        with pytest.raises(ValidationError) as ei:
            await writer.submit_headers([make_block(b"\x01" * 32, 1, G.header.time + 1).header])
        assert ei.value.reason == R.PREV_BLK_NOT_FOUND

        def boom():
            raise RuntimeError("bug")
        with pytest.raises(RuntimeError):
            await writer.call(boom)
        entries = await writer.submit_headers([make_block(G.hash, 1, G.header.time + 1).header])
        assert entries[0].height == 1 and writer.snapshot.best_header_height == 1
        assert writer.snapshot.height == 0
    finally:
        await writer.stop()
    with pytest.raises(RuntimeError):
        await writer.call(int)


async def test_stop_drains_queued_jobs():
    store = MemoryChainStore()
    writer = ChainWriter(ChainState(PARAMS, store))
    await writer.start()
    B = Builder()
    blocks = B.chain(G, 8)
    import asyncio
    futs = [asyncio.ensure_future(writer.submit_block(b)) for b in blocks]
    await wait_until(lambda: writer.queued[0] >= 7 or any(f.done() for f in futs), timeout=5)
    await writer.stop()
    results = await asyncio.gather(*futs)
    assert [r.status for r in results] == ["connected"] * 8
    assert store.closed


async def test_sync_subscriber_and_subscriber_failure_isolated():
    writer = ChainWriter(ChainState(PARAMS, MemoryChainStore()))
    seen = []

    def bad(ev):
        raise ValueError("subscriber bug")

    writer.subscribe_async(bad)
    writer.subscribe_async(seen.append)
    async with writer:
        B = Builder()
        await writer.submit_block(B.next(G))
        await wait_until(lambda: len(seen) == 2, timeout=5)


async def test_idle_writer_commits_blocks_and_writes_coins_at_stop():
    """At idle the writer commits block bodies and undo (Core writes block data as it comes);
    the coins cache and the store's tip (the coins' best block) wait for the cache budget, the
    flush interval or the stop (Core FlushStateToDisk PERIODIC / ALWAYS)."""
    store = MemoryChainStore()
    cs = ChainState(PARAMS, store, flush_blocks=1000, flush_seconds=1e9)
    writer = ChainWriter(cs)
    async with writer:
        B = Builder()
        blocks = B.chain(G, 3)
        for b in blocks:
            await writer.submit_block(b)
        await wait_until(lambda: all(store.has_block(b.hash) and store.get_undo(b.hash) is not None
                                     for b in blocks), timeout=5)
        assert store.get_tip() == G.hash          # the coins are still only in the cache
        assert store.coin_count() == 0
        assert cs.coins.dirty_count == 3          # one coinbase output a block
    assert store.get_tip() == blocks[-1].hash     # stop flushed the coins with the tip
    assert store.coin_count() == 3
