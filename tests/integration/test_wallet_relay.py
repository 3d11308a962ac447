"""Wallet sends across two in-process nodes: a chain of unconfirmed sends (each spending the
last one's change) reaches the other node's mempool, which mines all of them; the receiver's
pending balance turns confirmed; the sender's history and balances are exact."""

import pytest

from tests.framework.nodes import connect_nodes, running_nodes, sync_blocks, sync_mempools
from tests.framework.rpcassert import sats
from tinynode.primitives.tx import COIN

pytestmark = pytest.mark.slow


async def test_chained_unconfirmed_sends_relay_and_confirm_elsewhere():
    async with running_nodes(2) as (a, b):
        await connect_nodes(a, b)
        addr_a = await a.rpc.call("getnewaddress")
        await a.rpc.call("generatetoaddress", 101, addr_a)
        await sync_blocks([a, b])
        dest = await b.rpc.call("getnewaddress")
        txids = [await a.rpc.call("sendtoaddress", dest, amount) for amount in (1, 2, 3)]
        await sync_mempools([a, b])
        pool = await b.rpc.call("getrawmempool", True)
        assert set(pool) == set(txids)
        assert pool[txids[2]]["depends"] == [txids[1]]
        bal = await b.rpc.call("getbalances")
        assert bal["mine"]["untrusted_pending"] == 6 and bal["mine"]["trusted"] == 0
        fees = 0
        for t in txids:
            fees -= sats((await a.rpc.call("gettransaction", t))["fee"])
        assert sats(await a.rpc.call("getbalance")) == 44 * COIN - fees   # own change is trusted

        # b mines them (to b's own address) and a sees them confirmed
        await b.rpc.call("generatetoaddress", 1, dest)
        await sync_blocks([a, b])
        for t in txids:
            assert (await a.rpc.call("gettransaction", t))["confirmations"] == 1
        assert await b.rpc.call("getbalance") == 6
        # and a's second coinbase matured at height 102
        assert sats(await a.rpc.call("getbalance")) == 94 * COIN - fees
        sends = [r for r in await a.rpc.call("listtransactions", "*", 100) if r["category"] == "send"]
        assert sorted(-r["amount"] for r in sends) == [1, 2, 3]
