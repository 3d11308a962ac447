"""Issue 20: --txospenderindex (Core's -txospenderindex) through the RPC: getindexinfo lists it,
gettxspendingprevout answers confirmed spends with the spending block (mempool_only now
defaults to false), through a reorg, a restart, and an existing datadir that turns it on."""
from __future__ import annotations

import dataclasses

import pytest

from tests.framework.nodes import start_node
from tests.framework.rpcassert import rpc_error as err
from tinynode.config import ConfigError, from_args
from tinynode.node import Node
from tinynode.rpc.client import AsyncRPCClient

pytestmark = pytest.mark.slow


def test_the_daemon_flag():
    assert from_args(["--network", "regtest", "--txospenderindex"], {}).txospenderindex is True
    assert from_args(["--network", "regtest"], {}).txospenderindex is False
    with pytest.raises(ConfigError, match="^Prune mode is incompatible with -txospenderindex.$"):
        from_args(["--network", "regtest", "--txospenderindex", "--prune", "550"], {})


async def test_confirmed_spends_reorg_and_restart():
    t = await start_node(txindex=True, txospenderindex=True)
    try:
        call = t.rpc.call
        addr = await call("getnewaddress")
        await call("generatetoaddress", 101, addr)
        info = await call("getindexinfo")
        assert info == {"txindex": {"synced": True, "best_block_height": 101},
                        "txospenderindex": {"synced": True, "best_block_height": 101}}
        assert await call("getindexinfo", "txospenderindex") == \
            {"txospenderindex": {"synced": True, "best_block_height": 101}}

        txid = await call("sendtoaddress", await call("getnewaddress"), 1)
        spent = {k: v for k, v in (await call("getrawtransaction", txid, True))["vin"][0].items()
                 if k in ("txid", "vout")}
        fresh = {"txid": txid, "vout": 0}
        # in the mempool: a mempool spend has no blockhash; an unspent output comes after it
        # (Core answers the mempool's outputs first, then the index's)
        assert await call("gettxspendingprevout", [fresh, spent]) == \
            [{**spent, "spendingtxid": txid}, fresh]

        [b102] = await call("generatetoaddress", 1, addr)
        confirmed = {**spent, "spendingtxid": txid, "blockhash": b102}
        assert await call("gettxspendingprevout", [fresh, spent]) == [fresh, confirmed]
        assert await call("gettxspendingprevout", [spent], {"mempool_only": True}) == [spent]
        assert await call("gettxspendingprevout", [spent], {"mempool_only": False}) == [confirmed]
        raw = await call("getrawtransaction", txid)
        assert await call("gettxspendingprevout", [spent], {"return_spending_tx": True}) == \
            [{**spent, "spendingtxid": txid, "spendingtx": raw, "blockhash": b102}]
        # a coinbase spent in block 102 by the wallet is found too; an unknown txid is unspent
        unknown = {"txid": "11" * 32, "vout": 3}
        assert await call("gettxspendingprevout", [unknown]) == [unknown]

        # reorg: block 102 leaves the chain, the spend goes back to the mempool, then is mined in
        # the other branch's block (paid to another address: the same template within the same
        # second would be the invalidated block again, which Core refuses as well)
        await call("invalidateblock", b102)
        assert await call("gettxspendingprevout", [spent]) == [{**spent, "spendingtxid": txid}]
        [b102b] = await call("generatetoaddress", 1, await call("getnewaddress"))
        assert b102b != b102
        assert await call("gettxspendingprevout", [spent]) == \
            [{**spent, "spendingtxid": txid, "blockhash": b102b}]

        await t.restart()
        call = t.rpc.call
        assert await call("gettxspendingprevout", [spent]) == \
            [{**spent, "spendingtxid": txid, "blockhash": b102b}]
        assert (await call("getindexinfo"))["txospenderindex"]["best_block_height"] == 102
    finally:
        await t.stop()


async def test_an_existing_datadir_turns_the_index_on():
    t = await start_node()
    try:
        call = t.rpc.call
        addr = await call("getnewaddress")
        await call("generatetoaddress", 101, addr)
        txid = await call("sendtoaddress", await call("getnewaddress"), 1)
        spent = {k: v for k, v in (await call("getrawtransaction", txid, True))["vin"][0].items()
                 if k in ("txid", "vout")}
        [b102] = await call("generatetoaddress", 1, addr)
        assert await call("getindexinfo") == {}               # neither --txindex nor the spender index
        assert await call("gettxspendingprevout", [spent]) == [spent]      # mempool_only by default
        assert await err(call("gettxspendingprevout", [spent], {"mempool_only": False})) == \
            (-1, "Mempool lacks a relevant spend, and txospenderindex is unavailable.")

        # restart with --txospenderindex: built from the stored blocks at start
        cfg = dataclasses.replace(t.node.config, txospenderindex=True)
        await t.rpc.close()
        await t.node.stop()
        t.node = Node(cfg, net_config=t.node.net_config)
        await t.node.start()
        t.rpc = AsyncRPCClient(t.node.rpc_socket)
        call = t.rpc.call
        assert await call("getindexinfo") == {"txospenderindex": {"synced": True, "best_block_height": 102}}
        assert await call("gettxspendingprevout", [spent]) == \
            [{**spent, "spendingtxid": txid, "blockhash": b102}]
    finally:
        await t.stop()
