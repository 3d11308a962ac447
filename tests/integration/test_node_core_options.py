"""Core's node options of issue 18 on in-process regtest nodes: -txindex (what RPC/REST expose),
-prune (manual pruneblockchain, pruned getblock, submitblock storing a pruned block again, the
getblockchaininfo fields), the BlockAssembler options and getmininginfo's fields."""
import pytest

from tests.framework.nodes import start_node
from tinynode.config import PRUNE_TARGET_MANUAL
from tinynode.rpc.protocol import RPCError

pytestmark = pytest.mark.slow

ADDR = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"


async def rpc_error(coro) -> tuple[int, str]:
    with pytest.raises(RPCError) as e:
        await coro
    return e.value.code, e.value.message


async def test_txindex_off_needs_a_block_hash_and_on_finds_the_tx():
    a = await start_node()          # Core's default: -txindex=0
    b = await start_node(txindex=True)
    try:
        for n in (a, b):
            addr = await n.rpc.call("getnewaddress")
            await n.rpc.call("generatetoaddress", 101, addr)
        for n in (a, b):
            best = await n.rpc.call("getblockhash", 1)
            coinbase = (await n.rpc.call("getblock", best))["tx"][0]
            if n is a:
                code, msg = await rpc_error(n.rpc.call("getrawtransaction", coinbase))
                assert code == -5
                assert msg == ("No such mempool transaction. Use -txindex or provide a block hash to "
                               "enable blockchain transaction queries. Use gettransaction for wallet "
                               "transactions.")
                assert await n.rpc.call("getindexinfo") == {}
            else:
                assert len(await n.rpc.call("getrawtransaction", coinbase)) > 0
                info = await n.rpc.call("getindexinfo")
                assert info["txindex"]["best_block_height"] == 101
            got = await n.rpc.call("getrawtransaction", coinbase, True, best)
            assert got["txid"] == coinbase and got["in_active_chain"] is True
            # a mempool tx is found without the index
            txid = await n.rpc.call("sendtoaddress", await n.rpc.call("getnewaddress"), 1)
            assert (await n.rpc.call("getrawtransaction", txid, True))["txid"] == txid
    finally:
        await a.stop()
        await b.stop()


async def test_manual_prune_getblock_and_submitblock_restores():
    n = await start_node(prune=1, fastprune=True, wallet=False)
    try:
        info = await n.rpc.call("getblockchaininfo")
        assert info["pruned"] is True and info["automatic_pruning"] is False
        assert info["pruneheight"] == 0 and "prune_target_size" not in info
        code, msg = await rpc_error(n.rpc.call("pruneblockchain", 10))
        assert (code, msg) == (-1, "Blockchain is too short for pruning.")
        hashes = await n.rpc.call("generatetoaddress", 400, ADDR)
        raw2 = await n.rpc.call("getblock", hashes[1], 0)
        assert await rpc_error(n.rpc.call("pruneblockchain", -1)) == (-8, "Negative block height.")
        assert (await rpc_error(n.rpc.call("pruneblockchain", 401)))[0] == -8
        assert await n.rpc.call("pruneblockchain", 400) == 400 - 288   # the last 288 kept
        info = await n.rpc.call("getblockchaininfo")
        assert info["pruneheight"] == 113
        assert await rpc_error(n.rpc.call("getblock", hashes[1])) == (-1, "Block not available (pruned data)")
        assert (await n.rpc.call("getblock", hashes[112]))["height"] == 113
        assert (await n.rpc.call("getblockheader", hashes[1]))["height"] == 2   # headers stay
        # Core: submitblock stores a pruned block again and answers "inconclusive"
        assert await n.rpc.call("submitblock", raw2) == "inconclusive"
        assert await n.rpc.call("getblock", hashes[1], 0) == raw2
        assert await n.rpc.call("submitblock", raw2) == "duplicate"
        # a restart keeps the pruned chain usable: the tip and new blocks connect
        await n.restart()
        assert (await n.rpc.call("getblockchaininfo"))["blocks"] == 400
        await n.rpc.call("generatetoaddress", 1, ADDR)
        assert (await n.rpc.call("getblockchaininfo"))["blocks"] == 401
        assert await rpc_error(n.rpc.call("getblock", hashes[5])) == (-1, "Block not available (pruned data)")
    finally:
        await n.stop()


async def test_not_pruning_and_automatic_fields():
    n = await start_node(wallet=False)
    try:
        info = await n.rpc.call("getblockchaininfo")
        assert info["pruned"] is False and "pruneheight" not in info
        assert await rpc_error(n.rpc.call("pruneblockchain", 1)) == (
            -1, "Cannot prune blocks because node is not in prune mode.")
    finally:
        await n.stop()
    n = await start_node(prune=550, wallet=False)
    try:
        info = await n.rpc.call("getblockchaininfo")
        assert info["automatic_pruning"] is True and info["pruneheight"] == 0
        assert info["prune_target_size"] == 576716800
        assert n.node.writer.chainstate.prune_target != PRUNE_TARGET_MANUAL
    finally:
        await n.stop()


async def test_block_assembler_options_and_getmininginfo():
    n = await start_node(block_version=1337, block_min_tx_fee=0, wallet=False)
    try:
        tmpl = await n.rpc.call("getblocktemplate", {"rules": ["segwit"]})
        assert tmpl["version"] == 1337
        await n.rpc.call("generatetoaddress", 1, ADDR)
        info = await n.rpc.call("getmininginfo")
        assert info["blockmintxfee"] == 0
        assert info["currentblockweight"] == 8000 and info["currentblocktx"] == 0
    finally:
        await n.stop()
    n = await start_node(block_reserved_weight=4000, wallet=False)
    try:
        await n.rpc.call("generatetoaddress", 1, ADDR)
        info = await n.rpc.call("getmininginfo")
        assert info["currentblockweight"] == 4000 and info["blockmintxfee"] == 0.00000001
    finally:
        await n.stop()


async def test_pruned_node_advertises_network_limited():
    """Core: a pruning node's services are NODE_NETWORK_LIMITED (BIP159), not NODE_NETWORK."""
    from tinynode.wire.constants import NODE_NETWORK, NODE_NETWORK_LIMITED
    n = await start_node(prune=1, wallet=False)
    try:
        services = n.node.connman.config.local_services if hasattr(n.node.connman, "config") else None
        info = await n.rpc.call("getnetworkinfo")
        got = int(info["localservices"], 16)
        assert got & NODE_NETWORK_LIMITED and not got & NODE_NETWORK
        assert services is None or services == got
    finally:
        await n.stop()
