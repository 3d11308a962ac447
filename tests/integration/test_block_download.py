"""Core's block download rules (net_processing.cpp) over real sockets on 127.0.0.1: headers
direct fetch from the announcing peer (HeadersDirectFetchBlocks: 16 in flight per peer, no
direct fetch for a large reorg), no block download from a peer without NODE_NETWORK, stall
detection only when the download window is held by a peer, and the block download timeout."""

from __future__ import annotations

import logging
import time

import pytest

from tests.framework.blockbuilder import BlockBuilder
from tests.framework.netnodes import RawConn, start_nodes, stop_nodes, sync_config
from tests.framework.wait import wait_until
from tinynode.params import REGTEST
from tinynode.wire import messages as m
from tinynode.wire.constants import NODE_NETWORK, NODE_WITNESS

pytestmark = pytest.mark.slow

MAGIC = REGTEST.magic


async def _raw(node, services: int | None = None) -> RawConn:
    raw = await RawConn.connect("127.0.0.1", node.port, MAGIC)
    if services is None:   # Core's P2PInterface default: NODE_NETWORK | NODE_WITNESS
        await raw.handshake(services=NODE_NETWORK | NODE_WITNESS)
    else:   # like Core's tests' add_p2p_connection(services=...)
        await raw.send(m.Version.create(nonce=1234, start_height=0, timestamp=int(time.time()),
                                        services=services))
        await raw.expect("version")
        await raw.expect("verack")
        await raw.send(m.Verack())
    await raw.ping_roundtrip()
    return raw


async def _announce_three(node, name: str) -> tuple[list, RawConn]:
    """Three new blocks on genesis (`name`1..3), their headers sent by a new raw peer, which is
    asked for all three at once (one getdata). Returns the blocks and the peer."""
    b = BlockBuilder(REGTEST, spacing=1)
    blocks = [b.next_block(f"{name}{i}") for i in range(1, 4)]
    raw = await _raw(node)
    await raw.send(m.Headers(tuple(x.header for x in blocks)))
    req = await raw.expect("getdata")
    assert [iv.hash for iv in req.items] == [x.hash for x in blocks]
    return blocks, raw


def _recent_chain(n: int, name: str = "a", builder: BlockBuilder | None = None):
    """`n` blocks on genesis whose last is a few seconds old (our tip is then recent:
    CanDirectFetch)."""
    b = builder or BlockBuilder(REGTEST, spacing=1)
    now = int(time.time())
    return b, [b.next_block(f"{name}{i}", time=now - 200 + i) for i in range(1, n + 1)]


def _getdata_hashes(raw: RawConn) -> list[bytes]:
    return [iv.hash for msg in raw.received if msg.COMMAND == "getdata" for iv in msg.items]


async def _feed(node, raw: RawConn, blocks) -> None:
    await raw.send(m.Headers(tuple(x.header for x in blocks)))
    for x in blocks:
        await raw.send(m.BlockMsg(x))
    await raw.ping_roundtrip()
    await wait_until(lambda: node.height >= len(blocks))


async def test_headers_are_fetched_from_the_announcing_peer_only(caplog):
    """p2p_sendheaders Part 2: headers from a peer without NODE_NETWORK are direct-fetched from
    it; the same blocks announced by a NODE_NETWORK peer (inv and headers) get no second getdata."""
    caplog.set_level(logging.DEBUG, logger="tinynode")
    [node] = await start_nodes(1, REGTEST, config=sync_config(block_stall_timeout=30.0))
    try:
        b, base = _recent_chain(3)
        inv_node = await _raw(node)
        test_node = await _raw(node, services=NODE_WITNESS)
        await _feed(node, inv_node, base)
        new = [b.next_block(f"n{i}", time=int(time.time()) - 3 + i) for i in range(3)]
        inv_node.received.clear()
        test_node.received.clear()
        await test_node.send(m.Headers(tuple(x.header for x in new)))
        for x in new:
            await inv_node.send(m.Inv((m.InvVect(2, x.hash),)))
        await inv_node.send(m.Headers(tuple(x.header for x in new)))
        await test_node.ping_roundtrip()
        await inv_node.ping_roundtrip()
        await test_node.ping_roundtrip()
        assert _getdata_hashes(test_node) == [x.hash for x in new]
        assert _getdata_hashes(inv_node) == []
        assert "via headers direct fetch" in caplog.text
        for x in new:
            await test_node.send(m.BlockMsg(x))
        await wait_until(lambda: node.height == 6)
        assert _getdata_hashes(inv_node) == []
    finally:
        await stop_nodes([node])


async def test_direct_fetch_stops_at_16_in_flight_and_not_for_a_large_reorg(caplog):
    """p2p_sendheaders Part 4: a fork announced with the same work as our tip is fetched at
    once; 16 more headers bring the peer to 16 in flight, one more asks nothing. A fork more
    than 17 headers from our chain is a large reorg: no direct fetch."""
    caplog.set_level(logging.DEBUG, logger="tinynode")
    [node] = await start_nodes(1, REGTEST, config=sync_config(block_stall_timeout=30.0))
    try:
        b, base = _recent_chain(3)
        feeder = await _raw(node)
        await _feed(node, feeder, base)
        peer = await _raw(node, services=NODE_WITNESS)
        b.set_tip("a1")
        now = int(time.time())
        fork = [b.next_block(f"f{i}", time=now - 150 + i) for i in range(20)]
        await peer.send(m.Headers((fork[0].header,)))      # less work than our tip: nothing
        await peer.ping_roundtrip()
        assert _getdata_hashes(peer) == []
        await peer.send(m.Headers((fork[1].header,)))      # same work: both
        await peer.ping_roundtrip()
        assert _getdata_hashes(peer) == [x.hash for x in fork[:2]]
        await peer.send(m.Headers(tuple(x.header for x in fork[2:18])))
        await peer.ping_roundtrip()
        assert _getdata_hashes(peer) == [x.hash for x in fork[:16]]
        await peer.send(m.Headers((fork[18].header,)))
        await peer.ping_roundtrip()
        assert _getdata_hashes(peer) == [x.hash for x in fork[:16]]

        other = await _raw(node, services=NODE_WITNESS)
        b.set_tip("a3")
        far = [b.next_block(f"g{i}", time=now - 100 + i) for i in range(1)]
        b.set_tip("a1")
        long = [b.next_block(f"h{i}", time=now - 120 + i) for i in range(25)]
        await other.send(m.Headers(tuple(x.header for x in long)))
        await other.ping_roundtrip()
        assert _getdata_hashes(other) == []
        assert f"Large reorg, won't direct fetch to {long[-1].hash_hex} (26)" in caplog.text
        assert far   # the chain builder kept its tree
    finally:
        await stop_nodes([node])


async def test_no_block_download_from_a_peer_without_node_network():
    """Core CanServeBlocks: headers from a peer without NODE_NETWORK while our tip is old (no
    direct fetch) make us ask that peer for nothing."""
    [node] = await start_nodes(1, REGTEST, config=sync_config(block_stall_timeout=30.0))
    try:
        b = BlockBuilder(REGTEST, spacing=1)
        blocks = [b.next_block(f"o{i}") for i in range(1, 6)]    # 2011 timestamps: old tip
        peer = await _raw(node, services=NODE_WITNESS)
        await peer.send(m.Headers(tuple(x.header for x in blocks)))
        await peer.ping_roundtrip()
        await node.writer.call(lambda: None)
        await peer.ping_roundtrip()
        assert _getdata_hashes(peer) == []
        full = await _raw(node)     # a NODE_NETWORK peer with the same chain is asked instead
        await full.send(m.Headers(tuple(x.header for x in blocks)))
        await full.ping_roundtrip()
        assert _getdata_hashes(full) == [x.hash for x in blocks]
        assert _getdata_hashes(peer) == []
    finally:
        await stop_nodes([node])


async def test_slow_peer_is_not_a_staller_while_the_window_is_open_but_times_out(caplog):
    """Core: a peer that does not deliver is a staller only when it holds the download window;
    with the window open it is dropped by the block download timeout instead (here one second
    for the target spacing: 1 x (1 + 0.5 x 0 other downloading peers))."""
    caplog.set_level(logging.DEBUG, logger="tinynode")
    [node] = await start_nodes(1, REGTEST, config=sync_config(block_stall_timeout=0.2,
                                                              block_download_timeout=1.0))
    try:
        blocks, raw = await _announce_three(node, "s")
        assert await raw.wait_closed(5)
        assert f"Timeout downloading block {blocks[0].hash_hex}, disconnecting peer=" in caplog.text
        assert "Peer is stalling block download" not in caplog.text
    finally:
        await stop_nodes([node])


async def test_pong_waits_for_a_fork_block_whose_parent_is_stored():
    """Core answers a ping after the peer's earlier messages were processed: a requested fork
    block whose parent is stored but is not our tip (it makes us reorg) is connected, with its
    waiting children, before the pong (p2p_unrequested_blocks.py step 7)."""
    [node] = await start_nodes(1, REGTEST, config=sync_config(block_stall_timeout=30.0))
    try:
        b = BlockBuilder(REGTEST, spacing=1)
        a = [b.next_block(f"a{i}") for i in range(1, 3)]
        raw = await _raw(node)
        await _feed(node, raw, a)
        assert node.height == 2
        b.set_tip("genesis")
        fork = [b.next_block(f"b{i}") for i in range(1, 40)]
        raw.received.clear()
        await raw.send(m.Headers(tuple(x.header for x in fork)))
        await raw.ping_roundtrip()
        assert _getdata_hashes(raw)[:16] == [x.hash for x in fork[:16]]
        for x in fork[1:16]:
            await raw.send(m.BlockMsg(x))     # children first: they wait for their parent
        await raw.ping_roundtrip()
        assert node.height == 2
        await raw.send(m.BlockMsg(fork[0]))
        await raw.ping_roundtrip()
        assert node.height == 16 and node.tip == fork[15].hash
    finally:
        await stop_nodes([node])


async def test_requested_block_answered_mutated_costs_the_sender_and_is_fetched_again(caplog):
    """Core ProcessMessage(BLOCK): IsBlockMutated runs on every block whose parent is known —
    also on the blocks we asked for (checked by the net layer without a trip to the chain
    writer, their height being known from the request): a requested block answered with a
    transaction list that does not match the header's merkle root costs the sender
    (disconnected), is never processed, and its request is forgotten, so another peer is asked
    for it and the genuine block is connected."""
    from tinynode.primitives.block import Block

    caplog.set_level(logging.DEBUG, logger="tinynode")
    [node] = await start_nodes(1, REGTEST, config=sync_config())
    try:
        blocks, bad = await _announce_three(node, "m")
        await bad.send(m.BlockMsg(blocks[0]))
        mutated = Block(blocks[1].header, blocks[1].txs + blocks[1].txs)   # same hash, other txs
        assert mutated.hash == blocks[1].hash
        await bad.send(m.BlockMsg(mutated))
        assert await bad.wait_closed(5)
        assert "Block mutated: bad-txnmrklroot, hashMerkleRoot mismatch" in caplog.text
        assert "Received mutated block from peer=" in caplog.text
        assert "Misbehaving: peer=" in caplog.text and ": mutated block" in caplog.text
        await wait_until(lambda: node.height == 1)
        assert node.writer.snapshot.tip_hash == blocks[0].hash   # the mutated one never processed

        good = await _raw(node)
        await good.send(m.Headers(tuple(x.header for x in blocks)))
        req = await good.expect("getdata")
        assert [iv.hash for iv in req.items] == [x.hash for x in blocks[1:]]
        for x in blocks[1:]:
            await good.send(m.BlockMsg(x))
        await wait_until(lambda: node.height == 3)
        assert node.writer.snapshot.tip_hash == blocks[-1].hash
        await good.close()
    finally:
        await stop_nodes([node])
