"""Headers sync with one peer at a time while our best header is old (Bitcoin Core SendMessages
`fSyncStarted` / `nSyncStarted`, `HEADERS_DOWNLOAD_TIMEOUT_BASE`), every peer once it is recent.

Serving nodes come from tests/framework/netnodes.py; each getheaders a server handles is
recorded with the syncing node's best header height at that moment. Chains built with the
BlockBuilder start at regtest's 2011 genesis and space blocks 10 minutes apart, so their
timestamps are years old: the syncing node's best header never becomes "recent".
"""

from __future__ import annotations

import time

import pytest

from tests.framework.blockbuilder import BlockBuilder
from tests.framework.netnodes import NetNode, start_nodes, stop_nodes, sync_blocks
from tests.framework.rawpeer import RawPeer
from tests.framework.wait import wait_until
from tinynode.params import REGTEST
from tinynode.wire import messages as m

pytestmark = pytest.mark.slow

MAGIC = REGTEST.magic
OLD_CHAIN = 2100          # > 2,000: the sync peer streams two headers batches


def old_chain(n: int) -> list:
    b = BlockBuilder(REGTEST)
    return [b.next_block(f"b{i}") for i in range(1, n + 1)]


async def feed(node: NetNode, blocks: list) -> None:
    """Give `node` the blocks directly (no P2P), in one writer job."""
    def job() -> None:
        cs = node.writer.chainstate
        for blk in blocks:
            res = cs.process_block(blk)
            assert res.ok, res
    await node.writer.call(job)
    assert node.height == len(blocks)


def record_getheaders(server: NetNode, syncing: NetNode, times: list[float] | None = None) -> list[int]:
    """Every getheaders `server` handles, as the syncing node's best header height at that time
    (and, into `times`, the monotonic time)."""
    seen: list[int] = []
    serve = server.sync.on_getheaders

    async def recording(peer, msg):
        seen.append(syncing.writer.snapshot.best_header_height)
        if times is not None:
            times.append(time.monotonic())
        await serve(peer, msg)
    server.sync.on_getheaders = recording   # the peer looks handlers up per message
    return seen


def peer_of(node: NetNode, raw: RawPeer):
    port = raw.writer.get_extra_info("sockname")[1]
    [p] = [p for p in node.connman.all_peers() if p.addr[1] == port]
    return p


async def test_initial_headers_sync_streams_from_one_peer_of_three():
    servers = await start_nodes(3, REGTEST)
    [node] = await start_nodes(1, REGTEST)
    try:
        blocks = old_chain(OLD_CHAIN)
        for s in servers:
            await feed(s, blocks)
        seen = [record_getheaders(s, node) for s in servers]
        for s in servers:
            await node.connect(s)
        await sync_blocks([node, *servers], timeout=60)
        assert node.height == OLD_CHAIN and node.tip == blocks[-1].hash
        # One server streamed the headers: asked at best header 0, then again after 2,000.
        [sync] = [i for i in range(3) if seen[i] and seen[i][0] < OLD_CHAIN]
        assert seen[sync] == [0, 2000]
        # The others were asked once, only when that stream had run out (caught up), so the
        # block download could use them too.
        for i in range(3):
            if i != sync:
                assert seen[i] == [OLD_CHAIN]
        assert all(p["synced_blocks"] > 0 for p in node.connman.peers())
        # A new block (recent) is announced and fetched as today.
        [h] = await servers[1].mine(1)
        await wait_until(lambda: node.tip == h, timeout=15)
    finally:
        await stop_nodes([node, *servers])


async def test_sync_peer_that_stops_answering_is_replaced_after_the_timeout():
    servers = await start_nodes(2, REGTEST)
    [node] = await start_nodes(1, REGTEST)
    node.sync.headers_timeout_base = 1.0          # test-small HEADERS_DOWNLOAD_TIMEOUT_BASE
    node.sync.headers_timeout_per_header = 0.0
    raw = await RawPeer.connect("127.0.0.1", node.port, MAGIC)
    try:
        blocks = old_chain(OLD_CHAIN)
        for s in servers:
            await feed(s, blocks)
        times: list[float] = []
        seen = [record_getheaders(s, node, times) for s in servers]
        t_before = time.monotonic()
        await raw.handshake(start_height=OLD_CHAIN)
        await raw.wait_for("getheaders")              # the silent raw peer is the sync peer
        silent = peer_of(node, raw)
        assert node.sync.headers_sync_peers() == [silent.id]
        for s in servers:
            await node.connect(s)
        assert node.sync.headers_sync_peers() == [silent.id]
        assert await raw.wait_closed(timeout=15)      # it never answers: dropped
        await wait_until(lambda: silent.closed.is_set())
        assert silent.disconnect_reason == "headers sync timed out"
        await sync_blocks([node, *servers], timeout=60)
        assert node.height == OLD_CHAIN
        # No server was asked before the sync peer's time ran out; then one streamed and the
        # other was asked once at the end.
        assert min(times) - t_before >= 1.0
        assert sorted(seen) == [[0, 2000], [OLD_CHAIN]]
    finally:
        await raw.close()
        await stop_nodes([node, *servers])


async def test_sync_peer_out_of_headers_hands_over_to_a_peer_claiming_more():
    """s0 has 2,100 old blocks, s1 the same chain to 2,300: s0 (the sync peer) runs out, s1's
    version start_height claims more, so headers sync continues with s1."""
    s0, s1 = await start_nodes(2, REGTEST)
    [node] = await start_nodes(1, REGTEST)
    try:
        blocks = old_chain(OLD_CHAIN + 200)
        await feed(s0, blocks[:OLD_CHAIN])
        await feed(s1, blocks)
        seen0, seen1 = record_getheaders(s0, node), record_getheaders(s1, node)
        await node.connect(s0)
        await wait_until(lambda: seen0)             # s0 is the sync peer ...
        await node.connect(s1)
        await sync_blocks([node, s1], timeout=60)
        assert node.tip == blocks[-1].hash
        assert seen0[:2] == [0, 2000]
        assert seen1 == [OLD_CHAIN]                 # ... and s1 took over where s0 ran out
    finally:
        await stop_nodes([node, s0, s1])


async def test_recent_best_header_new_peers_get_getheaders_on_connect():
    [node] = await start_nodes(1, REGTEST)
    await node.mine(3)                                # timestamps of now: recent
    raws = [await RawPeer.connect("127.0.0.1", node.port, MAGIC) for _ in range(3)]
    try:
        for raw in raws:                              # none of them ever answers
            await raw.handshake(start_height=3)
            gh = await raw.wait_for("getheaders")
            assert gh.locator and gh.locator[0] == (await node.writer.call(
                lambda: node.writer.chainstate.get_block_hash(2)))
        assert node.sync.headers_sync_peers() == sorted(peer_of(node, r).id for r in raws)
    finally:
        for raw in raws:
            await raw.close()
        await stop_nodes([node])


async def test_old_best_header_second_peer_waits_until_the_first_runs_out():
    [node] = await start_nodes(1, REGTEST)
    first = await RawPeer.connect("127.0.0.1", node.port, MAGIC)
    second = await RawPeer.connect("127.0.0.1", node.port, MAGIC)
    try:
        blocks = old_chain(20)
        await first.handshake(start_height=20)
        await first.wait_for("getheaders")
        await second.handshake(start_height=30)     # claims more than `first` will give
        await second.sync_with_ping()
        await second.expect_nothing(0.3, "getheaders")
        assert node.sync.headers_sync_peers() == [peer_of(node, first).id]
        await first.send(m.Headers(tuple(b.header for b in blocks)))   # fewer than 2,000: done
        gh = await second.wait_for("getheaders")
        assert gh.locator[0] == blocks[-2].hash
        assert node.sync.headers_sync_peers() == [peer_of(node, second).id]
        assert node.writer.snapshot.best_header_height == 20
    finally:
        await first.close()
        await second.close()
        await stop_nodes([node])


async def test_an_unanswered_getheaders_is_waited_on_when_caught_up():
    """Core SendMessages: the headers timeout disconnects only while the best header is more
    than a day old and another peer could serve headers. A lone peer that never answers a
    getheaders, with our chain current (Core's p2p_segwit peers do this), stays connected."""
    from tests.framework.nodes import start_node
    t = await start_node()
    try:
        await t.rpc.call("generatetoaddress", 1, await t.rpc.call("getnewaddress"))   # a current tip
        async with await RawPeer.connect("127.0.0.1", t.node.p2p_port, REGTEST.magic) as r:
            await r.handshake(start_height=5)
            await r.wait_for("getheaders", timeout=10)
            # 5 s, past the test config's 3 s headers_timeout, reading (and so answering pings)
            await r.expect_nothing(timeout=5.0, command="nothing-comes-with-this-name")
            assert not r.is_closed() and len(t.node.connman.connected_peers()) == 1
    finally:
        await t.stop()
