"""The mempool survives a restart (Core's mempool.dat): txs the wallet knows nothing about come
back from the file, re-validated; one that became invalid while the node was down does not."""
from tests.framework.miniwallet import MiniWallet
from tests.framework.nodes import start_node


async def test_mempool_is_saved_on_stop_and_reloaded_on_start():
    t = await start_node()
    try:
        mw = MiniWallet(7)
        await t.rpc.call("generatetoaddress", 2, mw.address(t.node.params))
        await t.rpc.call("generatetoaddress", 100, await t.rpc.call("getnewaddress"))
        cs = t.node.writer.chainstate
        await t.node.writer.call(mw.rescan, cs)          # SQLite lives on the writer thread
        parent = mw.create_spend(await t.node.writer.call(mw.get_utxo, cs), fee=2000)
        child = mw.create_spend(mw.outputs_of(parent)[0], fee=2000)
        for tx in (parent, child):
            assert await t.rpc.call("sendrawtransaction", tx.raw.hex()) == tx.txid_hex
        before = sorted(await t.rpc.call("getrawmempool"))
        assert before == sorted([parent.txid_hex, child.txid_hex])

        await t.restart()
        assert (t.datadir / "regtest" / "mempool.dat").exists()
        assert sorted(await t.rpc.call("getrawmempool")) == before
        entry = await t.rpc.call("getmempoolentry", child.txid_hex)
        assert entry["depends"] == [parent.txid_hex]
    finally:
        await t.stop()


async def test_persistmempool_0_neither_writes_nor_loads_mempool_dat():
    """Core -persistmempool=0: an existing mempool.dat is not read at start (mining_basic
    restarts with it to begin with an empty pool), and none is written at shutdown."""
    from dataclasses import replace

    from tinynode.node import Node
    from tinynode.rpc.client import AsyncRPCClient
    t = await start_node()
    try:
        mw = MiniWallet(7)
        await t.rpc.call("generatetoaddress", 101, mw.address(t.node.params))
        cs = t.node.writer.chainstate
        await t.node.writer.call(mw.rescan, cs)
        tx = mw.create_spend(await t.node.writer.call(mw.get_utxo, cs), fee=2000)
        assert await t.rpc.call("sendrawtransaction", tx.raw.hex()) == tx.txid_hex
        await t.rpc.close()
        await t.node.stop()                                # default: written
        dat = t.datadir / "regtest" / "mempool.dat"
        assert dat.exists()
        written = dat.stat().st_mtime_ns
        t.node = Node(replace(t.node.config, persist_mempool=False), net_config=t.node.net_config)
        await t.node.start()
        t.rpc = AsyncRPCClient(t.node.rpc_socket)
        assert await t.rpc.call("getrawmempool") == []     # the file was not read
        assert await t.rpc.call("sendrawtransaction", tx.raw.hex()) == tx.txid_hex
        await t.rpc.close()
        await t.node.stop()
        assert dat.stat().st_mtime_ns == written           # nor written at this stop
    finally:
        await t.stop()
