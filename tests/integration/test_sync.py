"""Headers-first sync, announcement and reorgs across in-process nodes on loopback.

Nodes come from tests/framework/netnodes.py: a chain writer, a SyncManager and a ConnMan each.
They run on the real ChainState when it is available, otherwise on the harness' SimpleChain
(header tree + most-work selection with the real header/block consensus checks).
"""

from __future__ import annotations

import pytest

from tests.framework.netnodes import (RawConn, connect_line, connect_mesh, connect_star, start_nodes,
                                      stop_nodes, sync_blocks, sync_config)
from tests.framework.wait import wait_until
from tinynode.params import REGTEST
from tinynode.wire import messages as m
from tinynode.wire.constants import InvType

pytestmark = pytest.mark.slow


async def test_five_nodes_in_a_line_sync_200_blocks():
    nodes = await start_nodes(5, REGTEST)
    try:
        await nodes[0].mine(200)
        assert nodes[0].height == 200
        await connect_line(nodes)
        await sync_blocks(nodes, timeout=20)
        assert all(nd.height == 200 for nd in nodes)
        # getpeerinfo shows what each peer has given us.
        info = nodes[1].connman.peers()
        assert max(p["synced_headers"] for p in info) == 200
        # New blocks are announced along the line.
        await nodes[4].mine(3)
        await sync_blocks(nodes)
        assert nodes[0].height == 203
    finally:
        await stop_nodes(nodes)


async def test_late_joiner_syncs_headers_first_from_several_peers():
    nodes = await start_nodes(3, REGTEST, config=sync_config(blocks_per_peer=4))
    try:
        await nodes[0].mine(120)
        await connect_line(nodes[:3])
        await sync_blocks(nodes[:3])
        late = (await start_nodes(1, REGTEST, config=sync_config(blocks_per_peer=4)))[0]
        late.name = "late"
        nodes.append(late)
        seen_header_ahead = []

        submit = late.writer.submit_block

        async def watch(block):  # chain events wait for commits: look as each block arrives
            snap = late.writer.snapshot
            if snap.best_header_height > snap.height:
                seen_header_ahead.append(snap.best_header_height)
            return await submit(block)
        late.writer.submit_block = watch
        await late.connect(nodes[0])
        await late.connect(nodes[2])
        await sync_blocks(nodes)
        assert late.height == 120
        # Headers came first: the best header was ahead of the tip while blocks arrived.
        assert seen_header_ahead and max(seen_header_ahead) == 120
        # Blocks were downloaded from both peers (4 in flight per peer forces spreading).
        assert all(p["synced_blocks"] > 0 for p in late.connman.peers())
    finally:
        await stop_nodes(nodes)


async def test_partition_heavier_side_wins_after_heal():
    nodes = await start_nodes(4, REGTEST)
    a, b, c, d = nodes
    try:
        await a.mine(10)
        await connect_line(nodes)
        await sync_blocks(nodes)
        # Partition between b and c.
        b.connman.deny(c.addr)
        c.connman.deny(b.addr)
        await wait_until(lambda: not any(p.listen_addr == ("127.0.0.1", c.port) for p in b.connman.all_peers()))
        await a.mine(3)
        await d.mine(6)
        await sync_blocks([a, b])
        await sync_blocks([c, d])
        assert a.tip != d.tip and a.height == 13 and d.height == 16
        heavy = d.tip
        # Heal.
        b.connman.allow(c.addr)
        c.connman.allow(b.addr)
        await b.connect(c)
        await sync_blocks(nodes)
        assert all(nd.tip == heavy for nd in nodes)
    finally:
        await stop_nodes(nodes)


async def test_serves_getheaders_getblocks_getdata_and_never_pushes_blocks():
    nodes = await start_nodes(1, REGTEST)
    node = nodes[0]
    try:
        hashes = await node.mine(12)
        raw = await RawConn.connect("127.0.0.1", node.port, REGTEST.magic)
        try:
            await raw.handshake()
            # getheaders from genesis
            await raw.send(m.GetHeaders((REGTEST.genesis.hash,)))
            hdrs = await raw.expect("headers")
            assert [h.hash for h in hdrs.headers] == hashes
            # getblocks: inv of the hashes after the fork
            await raw.send(m.GetBlocks((hashes[4],)))
            inv = await raw.expect("inv")
            assert [iv.hash for iv in inv.items] == hashes[5:]
            # getdata: a block and an unknown tx -> block + notfound
            await raw.send(m.GetData((m.InvVect(InvType.BLOCK, hashes[0]), m.InvVect(InvType.TX, b"\x07" * 32))))
            blk = await raw.expect("block")
            assert blk.block.hash == hashes[0]
            nf = await raw.expect("notfound")
            assert [iv.hash for iv in nf.items] == [b"\x07" * 32]
            # A new block is announced by inv (this peer did not send sendheaders), not pushed.
            await node.mine(1)
            ann = await raw.expect("inv")
            assert ann.items[0].type == InvType.BLOCK
            assert not any(x.COMMAND == "block" for x in raw.received[-3:] if x is not blk)
            # With sendheaders, announcements come as headers once they connect to a header the
            # peer has (Core PeerHasHeader): it learns our tip from a getheaders answer first.
            await raw.send(m.SendHeaders())
            await raw.send(m.GetHeaders((hashes[-1],)))
            await raw.expect("headers")
            await raw.ping_roundtrip()
            new = await node.mine(1)
            hmsg = await raw.expect("headers")
            assert [h.hash for h in hmsg.headers] == new
        finally:
            await raw.close()
    finally:
        await stop_nodes(nodes)


async def test_getblocks_continuation_after_500():
    """Core's hashContinue: after the peer fetches the 500th block of a getblocks answer, we
    inv our tip so it asks for the next batch."""
    nodes = await start_nodes(1, REGTEST)
    node = nodes[0]
    try:
        hashes = await node.mine(502)
        raw = await RawConn.connect("127.0.0.1", node.port, REGTEST.magic)
        try:
            await raw.handshake()
            await raw.send(m.GetBlocks((REGTEST.genesis.hash,)))
            inv = await raw.expect("inv")
            assert [iv.hash for iv in inv.items] == hashes[:500]
            await raw.send(m.GetData((m.InvVect(InvType.BLOCK, hashes[499]),)))
            await raw.expect("block")
            cont = await raw.expect("inv")
            assert [iv.hash for iv in cont.items] == [hashes[-1]]
        finally:
            await raw.close()
    finally:
        await stop_nodes(nodes)


@pytest.mark.parametrize("topology", ["star", "mesh"])
async def test_blocks_mined_anywhere_reach_everyone(topology):
    nodes = await start_nodes(4, REGTEST)
    try:
        await (connect_star if topology == "star" else connect_mesh)(nodes)
        for i, nd in enumerate(nodes):
            await nd.mine(2)
            await sync_blocks(nodes)
            assert all(x.height == 2 * (i + 1) for x in nodes)
    finally:
        await stop_nodes(nodes)


async def test_restart_on_sqlite_redials_from_address_book_and_catches_up(tmp_path):
    """B (SQLite store, address book on disk) stops, A mines on; B restarts knowing no seeds,
    dials A from its saved address book and catches up."""
    from tests.framework.netnodes import NetNode
    a = await NetNode(REGTEST, name="a").start()
    bdir = tmp_path / "b"
    bdir.mkdir()
    b = await NetNode(REGTEST, name="b", datadir=bdir, dial=True).start()
    try:
        await a.mine(20)
        await b.connect(a)
        await sync_blocks([a, b])
        await b.stop()
        assert (bdir / "peers.json").exists()
        await a.mine(10)
        b = await NetNode(REGTEST, name="b", datadir=bdir, dial=True).start()
        assert b.height == 20                       # the chain survived the restart
        await sync_blocks([a, b], timeout=15)       # ... and the address book found A again
        assert b.height == 30
    finally:
        await b.stop()
        await a.stop()


async def test_blocks_served_from_stored_bytes_when_the_chain_offers_them():
    """With `get_block_bytes` (the harness' SimpleChain has it) blocks go out as stored bytes."""
    nodes = await start_nodes(2, REGTEST, real_chain=False)
    try:
        hashes = await nodes[0].mine(5)
        raw = await RawConn.connect("127.0.0.1", nodes[0].port, REGTEST.magic)
        try:
            await raw.handshake()
            await raw.send(m.GetData((m.InvVect(InvType.BLOCK, hashes[2]),)))
            blk = await raw.expect("block")
            assert blk.block.hash == hashes[2]
        finally:
            await raw.close()
        await nodes[1].connect(nodes[0])
        await sync_blocks(nodes)
    finally:
        await stop_nodes(nodes)
