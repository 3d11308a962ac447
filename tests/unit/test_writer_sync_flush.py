"""ChainWriter commit policy while catching up: an empty queue between two blocks of a sync is
not idleness (no commit per gap); the commit comes once the tip reaches the best header, or
after the idle delay with no job, or at stop. A commit writes the block bodies and undo (the
coins and the store's tip wait for the cache budget, the flush interval or the stop), so
"committed" is seen here as the block's body being in the store.

    headers:  genesis -> b1 -> b2 -> b3 -> b4 -> b5      (best header b5)
    blocks:   b1 b2 b3 delivered one at a time, then b4 b5
"""

from __future__ import annotations

from tinynode.chain.chainstate import ChainState
from tinynode.chain.writer import ChainWriter
from tinynode.storage.memory import MemoryChainStore

from tests.framework.wait import wait_until
from tests.unit.test_chain_unit_helpers import PARAMS, Builder

G = PARAMS.genesis
NEVER = 1e9


async def test_no_commit_between_blocks_while_catching_up_then_commit_at_the_best_header():
    store = MemoryChainStore()
    # only the catching-up rule can decide here: no size/time commits, no idle timeout
    writer = ChainWriter(ChainState(PARAMS, store), sync_flush_seconds=NEVER, sync_idle_flush_seconds=NEVER)
    blocks = Builder().chain(G, 5)
    async with writer:
        await writer.submit_headers([b.header for b in blocks])
        for b in blocks[:3]:
            assert (await writer.submit_block(b)).status == "connected"
        await writer.call(lambda: None)            # the queue ran empty after each of these jobs
        assert writer.snapshot.height == 3
        assert not any(store.has_block(b.hash) for b in blocks)  # nothing committed: more are coming
        for b in blocks[3:]:
            await writer.submit_block(b)
        await wait_until(lambda: all(store.has_block(b.hash) for b in blocks), timeout=10)
        assert store.get_tip() == G.hash            # the coins wait for the flush interval / stop
    assert store.get_tip() == blocks[-1].hash


async def test_commit_after_the_idle_delay_while_catching_up():
    store = MemoryChainStore()
    writer = ChainWriter(ChainState(PARAMS, store), sync_flush_seconds=NEVER, sync_idle_flush_seconds=0.05)
    blocks = Builder().chain(G, 5)
    async with writer:
        await writer.submit_headers([b.header for b in blocks])
        for b in blocks[:2]:
            await writer.submit_block(b)
        await wait_until(lambda: store.has_block(blocks[1].hash), timeout=10)
        assert not store.has_block(blocks[2].hash)


async def test_stop_commits_what_a_sync_left_staged():
    store = MemoryChainStore()
    writer = ChainWriter(ChainState(PARAMS, store), sync_flush_seconds=NEVER, sync_idle_flush_seconds=NEVER)
    blocks = Builder().chain(G, 5)
    async with writer:
        await writer.submit_headers([b.header for b in blocks])
        await writer.submit_block(blocks[0])
    assert store.get_tip() == blocks[0].hash


async def test_commit_once_the_staged_block_bodies_reach_the_byte_bound():
    """Besides the step count, the staged block bodies' bytes end a sync's shared commit
    (`sync_flush_bytes`): b1 + b2 reach the bound, so both are committed; b3 stays staged."""
    store = MemoryChainStore()
    blocks = Builder().chain(G, 5)
    bound = len(blocks[0].serialize()) + len(blocks[1].serialize())
    writer = ChainWriter(ChainState(PARAMS, store), sync_flush_seconds=NEVER,
                         sync_idle_flush_seconds=NEVER, sync_flush_bytes=bound)
    async with writer:
        assert writer.chainstate.flush_bytes == bound
        await writer.submit_headers([b.header for b in blocks])
        for b in blocks[:3]:
            assert (await writer.submit_block(b)).status == "connected"
        await writer.call(lambda: None)
        assert [store.has_block(b.hash) for b in blocks[:3]] == [True, True, False]
        assert writer.chainstate.staged_steps == 1
    assert store.get_tip() == blocks[2].hash


async def test_the_writer_never_raises_the_chainstates_own_byte_bound():
    cs = ChainState(PARAMS, MemoryChainStore())
    cs.flush_bytes = 1
    async with ChainWriter(cs) as writer:
        assert writer.chainstate.flush_bytes == 1
    cs2 = ChainState(PARAMS, MemoryChainStore())
    async with ChainWriter(cs2):
        assert cs2.flush_bytes == ChainWriter.SYNC_FLUSH_BYTES
