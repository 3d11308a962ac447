"""ChainWriter lanes: block-lane jobs (`call`) run before waiting tx-lane jobs (`call_tx`);
FIFO within each lane; each lane bounded on its own; stop drains both lanes."""

from __future__ import annotations

import asyncio
import threading

import pytest

from tinynode.chain.chainstate import ChainState
from tinynode.chain.writer import ChainWriter
from tinynode.storage.memory import MemoryChainStore

from tests.framework.wait import wait_until
from tests.unit.test_chain_unit_helpers import PARAMS, Builder

G = PARAMS.genesis


def _blocker():
    """A job that holds the writer thread until released (bounded wait on the thread)."""
    started, release = threading.Event(), threading.Event()

    def job(order: list, name: str) -> str:
        started.set()
        assert release.wait(10), "test never released the writer"
        order.append(name)
        return name
    return job, started, release


async def test_block_job_waits_only_for_the_running_tx_job():
    writer = ChainWriter(ChainState(PARAMS, MemoryChainStore()))
    order: list[str] = []
    slow, started, release = _blocker()
    async with writer:
        running = asyncio.ensure_future(writer.call_tx(slow, order, "slow-tx"))
        await wait_until(started.is_set, timeout=5)
        txs = [asyncio.ensure_future(writer.call_tx(order.append, f"tx{i}")) for i in range(30)]
        await wait_until(lambda: writer.queued == (0, 30), timeout=5)
        block = asyncio.ensure_future(writer.call(order.append, "block"))
        await wait_until(lambda: writer.queued == (1, 30), timeout=5)
        release.set()
        await asyncio.gather(running, block, *txs)
    # the block job ran right after the tx job that was running: none of the 30 queued before it
    assert order.index("block") == 1
    assert order == ["slow-tx", "block"] + [f"tx{i}" for i in range(30)]


async def test_lanes_are_fifo_and_blocks_from_the_network_overtake_tx_work():
    writer = ChainWriter(ChainState(PARAMS, MemoryChainStore()))
    order: list[str] = []
    slow, started, release = _blocker()
    blocks = Builder().chain(G, 3)
    async with writer:
        running = asyncio.ensure_future(writer.call(slow, order, "slow"))
        await wait_until(started.is_set, timeout=5)
        futs = []
        for i in range(3):
            futs.append(asyncio.ensure_future(writer.call_tx(order.append, f"tx{i}")))
            futs.append(asyncio.ensure_future(writer.submit_block(blocks[i])))
            futs.append(asyncio.ensure_future(writer.call(order.append, f"b{i}")))
        await wait_until(lambda: writer.queued == (6, 3), timeout=5)
        release.set()
        results = await asyncio.gather(running, *futs)
        assert [r.status for r in results[2::3]] == ["connected"] * 3
        assert writer.snapshot.height == 3
    assert order == ["slow", "b0", "b1", "b2", "tx0", "tx1", "tx2"]


async def test_tx_lane_is_bounded_on_its_own():
    writer = ChainWriter(ChainState(PARAMS, MemoryChainStore()), max_tx_queue=2)
    order: list[str] = []
    slow, started, release = _blocker()
    async with writer:
        running = asyncio.ensure_future(writer.call_tx(slow, order, "slow"))   # takes a slot while running
        await wait_until(started.is_set, timeout=5)
        txs = [asyncio.ensure_future(writer.call_tx(order.append, f"tx{i}")) for i in range(3)]
        await wait_until(lambda: writer.queued == (0, 1), timeout=5)
        # the tx lane is full (1 running + 1 queued); the block lane still takes jobs
        block = asyncio.ensure_future(writer.call(order.append, "block"))
        await wait_until(lambda: writer.queued == (1, 1), timeout=5)
        assert not any(t.done() for t in txs)
        release.set()
        await asyncio.gather(running, block, *txs)
    assert order == ["slow", "block", "tx0", "tx1", "tx2"]


async def test_stop_drains_both_lanes_then_refuses():
    store = MemoryChainStore()
    writer = ChainWriter(ChainState(PARAMS, store))
    order: list[str] = []
    slow, started, release = _blocker()
    await writer.start()
    running = asyncio.ensure_future(writer.call(slow, order, "slow"))
    await wait_until(started.is_set, timeout=5)
    txs = [asyncio.ensure_future(writer.call_tx(order.append, f"tx{i}")) for i in range(3)]
    blocks = [asyncio.ensure_future(writer.call(order.append, f"b{i}")) for i in range(2)]
    await wait_until(lambda: writer.queued == (2, 3), timeout=5)
    stopping = asyncio.ensure_future(writer.stop())
    await wait_until(lambda: not writer.running, timeout=5)
    with pytest.raises(RuntimeError, match="not running"):
        await writer.call_tx(order.append, "late")
    release.set()
    await stopping
    await asyncio.gather(running, *txs, *blocks)
    assert order == ["slow", "b0", "b1", "tx0", "tx1", "tx2"]
    assert store.closed
