"""Transaction relay between nodes with mempools: inv/getdata/tx, orphans fetching their
parents, and a partition whose losing side's transactions return to every mempool."""

from __future__ import annotations

import pytest

from tests.framework.miniwallet import MiniWallet, Utxo
from tests.framework.netnodes import (RawConn, chainstate_available, connect_line, start_nodes,
                                      stop_nodes, sync_blocks, sync_mempools)
from tests.framework.wait import wait_until
from tinynode.params import REGTEST
from tinynode.primitives.tx import OutPoint
from tinynode.wire import messages as m
from tinynode.wire.constants import InvType

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not chainstate_available(), reason="needs the real ChainState")]

FEE = 10_000


async def mature_coins(node, wallet: MiniWallet, n: int) -> list[Utxo]:
    """Mine `n` blocks paying `wallet`, then 100 more so they mature; return the coinbase coins."""
    hashes = await node.mine(n, payout=wallet.script_pubkey)
    await node.mine(REGTEST.coinbase_maturity)
    coins = []
    for i, h in enumerate(hashes):
        block = await node.writer.call(node.writer.chainstate.get_block, h)
        cb = block.txs[0]
        coins.append(Utxo(OutPoint(cb.txid, 0), cb.vout[0].value, wallet.key, i + 1, True))
    return coins


async def in_pool(node, txid: bytes) -> bool:
    return await node.writer.call(lambda: txid in node.mempool)


async def test_tx_reaches_every_mempool_in_a_line():
    nodes = await start_nodes(4, REGTEST, mempool=True)
    wallet = MiniWallet(1)
    try:
        coins = await mature_coins(nodes[0], wallet, 2)
        await connect_line(nodes)
        await sync_blocks(nodes)
        tx = wallet.create_spend(coins[0], fee=FEE)
        await nodes[3].sync.accept_tx(tx)
        for nd in nodes:
            await wait_until(lambda nd=nd: in_pool(nd, tx.txid), timeout=10,
                             message=f"{nd.name} never got the tx")
        await sync_mempools(nodes)
        # Mined on node0, it leaves every pool.
        await nodes[0].mine(1)
        await sync_blocks(nodes)
        for nd in nodes:
            assert not await in_pool(nd, tx.txid)
    finally:
        await stop_nodes(nodes)


async def test_orphan_fetches_its_parent_from_the_sender():
    nodes = await start_nodes(1, REGTEST, mempool=True)
    node = nodes[0]
    wallet = MiniWallet(2)
    try:
        coins = await mature_coins(node, wallet, 1)
        parent = wallet.create_spend(coins[0], fee=FEE, n_outputs=1)
        child = wallet.create_spend(Utxo(OutPoint(parent.txid, 0), parent.vout[0].value, wallet.key),
                                    fee=FEE, n_outputs=1)
        raw = await RawConn.connect("127.0.0.1", node.port, REGTEST.magic)
        try:
            await raw.handshake()
            await raw.send(m.Inv((m.InvVect(InvType.TX, child.txid),)))
            req = await raw.expect("getdata")
            assert [iv.hash for iv in req.items] == [child.txid]
            await raw.send(m.TxMsg(child))
            req = await raw.expect("getdata")              # the orphan's parent
            assert [iv.hash for iv in req.items] == [parent.txid]
            await raw.send(m.TxMsg(parent))
            await wait_until(lambda: in_pool(node, child.txid))
            assert await in_pool(node, parent.txid)
        finally:
            await raw.close()
    finally:
        await stop_nodes(nodes)


async def test_partition_losing_side_txs_return_to_mempools():
    r"""
        a - b   x   c - d      a mines a block with tx T; d mines two blocks
        after healing b - c: everyone follows d, and T is back in every mempool
    """
    nodes = await start_nodes(4, REGTEST, mempool=True)
    a, b, c, d = nodes
    wallet = MiniWallet(3)
    try:
        coins = await mature_coins(a, wallet, 2)
        await connect_line(nodes)
        await sync_blocks(nodes)
        b.connman.deny(c.addr)
        c.connman.deny(b.addr)
        await wait_until(lambda: not any(p.listen_addr == ("127.0.0.1", c.port) for p in b.connman.all_peers()))
        tx = wallet.create_spend(coins[0], fee=FEE)
        await a.sync.accept_tx(tx)
        await wait_until(lambda: in_pool(b, tx.txid))
        await a.mine(1)
        await sync_blocks([a, b])
        assert not await in_pool(a, tx.txid)
        await d.mine(2)
        await sync_blocks([c, d])
        b.connman.allow(c.addr)
        c.connman.allow(b.addr)
        await b.connect(c)
        await sync_blocks(nodes)
        assert a.tip == d.tip
        for nd in nodes:
            await wait_until(lambda nd=nd: in_pool(nd, tx.txid), timeout=10,
                             message=f"{nd.name} lacks the resurrected tx")
    finally:
        await stop_nodes(nodes)
