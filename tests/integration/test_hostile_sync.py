"""Hostile peers against a full sync node (chain writer + SyncManager): invalid headers and
blocks (negative / overflowing bits), oversized locators, unconnecting-header spam, huge invs.
The node stays up, disconnects where due (the hostile peers are on 127.0.0.1: disconnected,
never banned, as Core's MaybeDiscourageAndDisconnect treats local peers) and keeps syncing
with an honest neighbour."""

from __future__ import annotations

import contextlib
import struct
import time

import pytest

from tests.framework.netnodes import RawConn, start_nodes, stop_nodes, sync_blocks
from tests.framework.wait import wait_until
from tinynode.params import REGTEST
from tinynode.primitives.block import Block, BlockHeader
from tinynode.primitives.serialize import ser_compact_size
from tinynode.wire import messages as m
from tinynode.wire.constants import InvType, NODE_NETWORK, NODE_WITNESS

pytestmark = pytest.mark.slow

MAGIC = REGTEST.magic
GENESIS = REGTEST.genesis


@contextlib.asynccontextmanager
async def node_with_honest_neighbour():
    node, honest = await start_nodes(2, REGTEST)
    try:
        await honest.mine(5)
        await node.connect(honest)
        await sync_blocks([node, honest])
        yield node, honest
        # The honest neighbour still feeds us new blocks.
        await honest.mine(2)
        await sync_blocks([node, honest])
        assert not node.connman.is_banned("127.0.0.1", honest.port)
    finally:
        await stop_nodes([node, honest])


def bad_header(bits: int) -> BlockHeader:
    return BlockHeader(0x20000000, GENESIS.hash, b"\x00" * 32, int(time.time()), bits, 0)


async def disconnected_not_banned(node, raw: RawConn, port: int) -> None:
    """A loopback misbehaver: closed, not banned, and 127.0.0.1 may connect again."""
    assert await raw.wait_closed(5)
    assert not node.connman.is_banned("127.0.0.1", port)
    assert node.connman.list_banned() == []
    again = await RawConn.connect("127.0.0.1", node.port, MAGIC)
    try:
        await again.handshake()
        await again.ping_roundtrip()
    finally:
        await again.close()


def raw_peer_of(node, raw: RawConn):
    port = raw.writer.get_extra_info("sockname")[1]
    return [p for p in node.connman.all_peers() if p.addr[1] == port]


@pytest.mark.parametrize("bits", [0x04923456, 0xFF123456], ids=["negative", "overflow"])
async def test_header_with_bad_bits_disconnects(bits):
    async with node_with_honest_neighbour() as (node, honest):
        raw = await RawConn.connect("127.0.0.1", node.port, MAGIC)
        port = raw.writer.get_extra_info("sockname")[1]
        await raw.handshake()
        await raw.send(m.Headers((bad_header(bits),)))
        await disconnected_not_banned(node, raw, port)
        await raw.close()


@pytest.mark.parametrize("bits", [0x04923456, 0xFF123456], ids=["negative", "overflow"])
async def test_unsolicited_block_with_bad_bits_disconnects(bits):
    async with node_with_honest_neighbour() as (node, honest):
        raw = await RawConn.connect("127.0.0.1", node.port, MAGIC)
        await raw.handshake()
        coinbase = GENESIS.txs[0]
        block = Block(bad_header(bits), (coinbase,))
        await raw.send(m.BlockMsg(block))
        assert await raw.wait_closed(5)
        await raw.close()


async def test_oversized_locator_disconnects():
    """Core ProcessMessage(GETHEADERS): a locator of more than 101 hashes disconnects the peer
    (no discouragement)."""
    async with node_with_honest_neighbour() as (node, honest):
        raw = await RawConn.connect("127.0.0.1", node.port, MAGIC)
        port = raw.writer.get_extra_info("sockname")[1]
        await raw.handshake()
        loc = b"".join(bytes([i]) * 32 for i in range(102))
        payload = struct.pack("<I", 70015) + b"\x66" + loc + b"\x00" * 32   # 102 hashes > 101
        await raw.send_raw("getheaders", payload)
        await disconnected_not_banned(node, raw, port)
        await raw.close()


async def test_locator_count_lie_is_dropped():
    """A locator count over what the payload holds is a decode error: Core logs the exception
    and drops the message, no penalty."""
    async with node_with_honest_neighbour() as (node, honest):
        raw = await RawConn.connect("127.0.0.1", node.port, MAGIC)
        await raw.handshake()
        payload = struct.pack("<I", 70015) + b"\xfd" + struct.pack("<H", 5000) + b"\x01" * 64
        await raw.send_raw("getheaders", payload)
        await raw.ping_roundtrip()
        [p] = raw_peer_of(node, raw)
        assert p.banscore == 0 and p.is_connected
        await raw.close()


@pytest.mark.parametrize("command,count", [("inv", 50_001), ("getdata", 50_001), ("headers", 2_001)])
async def test_over_count_lists_are_misbehaving(command, count):
    """Core ProcessMessage: more than 50,000 inv / getdata entries or 2,000 headers decode, then
    Misbehaving "<type> message size = N" disconnects the (loopback) peer."""
    async with node_with_honest_neighbour() as (node, honest):
        raw = await RawConn.connect("127.0.0.1", node.port, MAGIC)
        await raw.handshake()
        [p] = raw_peer_of(node, raw)
        entry = bytes(81) if command == "headers" else bytes(36)
        await raw.send_raw(command, ser_compact_size(count) + entry * count)
        assert await raw.wait_closed(10)
        await wait_until(lambda: p.closed.is_set())
        assert p.disconnect_reason == f"misbehaving: {command} message size = {count}"
        await raw.close()


async def test_unconnecting_headers_spam_costs():
    async with node_with_honest_neighbour() as (node, honest):
        raw = await RawConn.connect("127.0.0.1", node.port, MAGIC)
        await raw.handshake()
        for i in range(10):
            h = BlockHeader(0x20000000, bytes([i + 1]) * 32, b"\x00" * 32, int(time.time()), 0x207FFFFF, 0)
            await raw.send(m.Headers((h,)))
        await raw.ping_roundtrip()
        [p] = raw_peer_of(node, raw)
        assert p.banscore == 20 and p.is_connected
        await raw.close()


async def test_huge_invs_stay_bounded():
    async with node_with_honest_neighbour() as (node, honest):
        raw = await RawConn.connect("127.0.0.1", node.port, MAGIC)
        await raw.handshake()
        blocks = tuple(m.InvVect(InvType.BLOCK, i.to_bytes(32, "little")) for i in range(1, 50_001))
        await raw.send(m.Inv(blocks))
        gh = await raw.expect("getheaders")          # one getheaders, not 50,000 requests
        assert gh.locator
        await raw.ping_roundtrip()
        [p] = raw_peer_of(node, raw)
        assert p.banscore == 0
        # Without a mempool the node asks for no transactions at all.
        await raw.send(m.Inv(tuple(m.InvVect(InvType.TX, i.to_bytes(32, "little")) for i in range(1, 50_001))))
        await raw.ping_roundtrip()
        assert not any(x.COMMAND == "getdata" for x in raw.received)
        await raw.close()
        await wait_until(lambda: not raw_peer_of(node, raw))


async def test_withholding_peer_stalls_and_blocks_come_from_another():
    """A peer announces headers but never delivers the blocks: after the stall deadline they
    are requested from an honest peer, and the node reaches the tip."""
    from tests.framework.netnodes import sync_config
    victim, honest = await start_nodes(2, REGTEST, config=sync_config(block_stall_timeout=1.0))
    try:
        hashes = await honest.mine(30)
        headers = await honest.writer.call(honest.writer.chainstate.headers_after,
                                           [REGTEST.genesis.hash], None, 2000)
        assert [h.hash for h in headers] == hashes
        raw = await RawConn.connect("127.0.0.1", victim.port, MAGIC)
        # a NODE_WITNESS peer: Core asks no peer without it for a segwit block
        await raw.handshake(start_height=30, services=NODE_NETWORK | NODE_WITNESS)
        await raw.send(m.Headers(tuple(headers)))
        req = await raw.expect("getdata")            # the victim asks the withholder first ...
        assert req.items and all(iv.type == InvType.WITNESS_BLOCK for iv in req.items)
        await victim.connect(honest)                 # ... then an honest peer shows up
        await sync_blocks([victim, honest], timeout=15)
        assert victim.height == 30
        await raw.close()
    finally:
        await stop_nodes([victim, honest])


async def test_future_header_is_refused_without_punishment():
    """Core does not punish BLOCK_TIME_FUTURE: the peer's clock may simply be off."""
    from tinynode.primitives.block import bits_to_target
    async with node_with_honest_neighbour() as (node, honest):
        raw = await RawConn.connect("127.0.0.1", node.port, MAGIC)
        await raw.handshake()
        target = bits_to_target(0x207FFFFF)[0]
        nonce = 0
        while True:
            h = BlockHeader(0x20000000, GENESIS.hash, b"\x01" * 32, int(time.time()) + 3 * 3600, 0x207FFFFF, nonce)
            if int.from_bytes(h.hash, "little") <= target:
                break
            nonce += 1
        await raw.send(m.Headers((h,)))
        await raw.ping_roundtrip()
        [p] = raw_peer_of(node, raw)
        assert p.banscore == 0 and p.is_connected
        assert await node.writer.call(node.writer.chainstate.get_entry, h.hash) is None
        await raw.close()


async def test_unrequested_stale_block_is_not_processed():
    """Core AcceptBlock: a block nobody asked for that would not beat our tip is dropped after
    its header is checked; the sender is not punished."""
    async with node_with_honest_neighbour() as (node, honest):
        [other] = await start_nodes(1, REGTEST)
        try:
            [h] = await other.mine(1, payout=b"\x52")   # a valid height-1 fork off genesis
            block = await other.writer.call(other.writer.chainstate.get_block, h)
        finally:
            await stop_nodes([other])
        raw = await RawConn.connect("127.0.0.1", node.port, MAGIC)
        await raw.handshake()
        await raw.send(m.BlockMsg(block))
        await raw.ping_roundtrip()
        [p] = raw_peer_of(node, raw)
        assert p.banscore == 0
        entry = await node.writer.call(node.writer.chainstate.get_entry, h)
        assert entry is not None and not entry.have_data   # header kept, block not processed
        assert node.height == 5
        await raw.close()
