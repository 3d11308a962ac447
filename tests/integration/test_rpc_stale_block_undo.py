"""A block a reorg disconnects keeps its undo record (Core keeps BLOCK_HAVE_UNDO): getblock 2/3,
getblockstats and getrawtransaction with its block hash give the same fees and prevouts as while
it was active; reconsiderblock reconnects it."""

import pytest

from tests.framework.blockbuilder import BlockBuilder
from tests.framework.nodes import start_node

pytestmark = pytest.mark.slow


async def _undo_views(rpc, bh: str, txid: str) -> dict:
    """What getblock 2/3, getblockstats and getrawtransaction 2 read from the block's undo."""
    b2 = await rpc.call("getblock", bh, 2)
    b3 = await rpc.call("getblock", bh, 3)
    return {"fees": [tx.get("fee") for tx in b2["tx"]],
            "prevouts": [[vin.get("prevout") for vin in tx["vin"]] for tx in b3["tx"]],
            "stats": await rpc.call("getblockstats", bh),
            "raw": (await rpc.call("getrawtransaction", txid, 2, bh))["vin"]}


async def test_stale_block_keeps_fees_and_prevouts_and_reconnects(tmp_path):
    t = await start_node(tmp_path / "n")
    rpc = t.rpc
    builder = BlockBuilder()
    for i in range(1, 103):
        spend = builder.coinbase_utxo("b1") if i == 102 else None
        b = builder.next_block(f"b{i}", spend=spend)
        assert await rpc.call("submitblock", b.serialize().hex()) is None
    bh = b.hash_hex
    txid = builder.spend_txs["b102"].txid_hex
    active = await _undo_views(rpc, bh, txid)
    assert active["fees"][1] > 0 and active["prevouts"][1][0]["value"] == 50
    assert active["stats"]["totalfee"] > 0 and "prevout" in active["raw"][0]

    # invalidateblock: the block leaves the active chain, its undo stays readable
    await rpc.call("invalidateblock", bh)
    assert await rpc.call("getblockcount") == 101
    assert (await rpc.call("getblock", bh))["confirmations"] == -1
    assert await _undo_views(rpc, bh, txid) == active

    # a heavier fork from 101, then reconsiderblock: the block stays stale (less work), keeps undo
    addr = await rpc.call("getnewaddress")
    await rpc.call("generatetoaddress", 2, addr)
    await rpc.call("reconsiderblock", bh)
    assert await rpc.call("getblockcount") == 103
    assert (await rpc.call("getblock", bh))["confirmations"] == -1
    assert await _undo_views(rpc, bh, txid) == active
    assert (await rpc.call("getchaintips"))[1]["status"] == "valid-fork"

    # a heavier chain on it: reorg back, the block reconnects with the same record
    b103 = builder.next_block("b103")
    b104 = builder.next_block("b104")
    for blk in (b103, b104):
        await rpc.call("submitblock", blk.serialize().hex())
    assert await rpc.call("getbestblockhash") == b104.hash_hex
    assert (await rpc.call("getblock", bh))["confirmations"] == 3
    assert await _undo_views(rpc, bh, txid) == active

    # restart: the records of the blocks now stale (the generated fork) survive too
    fork_tip = (await rpc.call("getchaintips"))[1]["hash"]
    fork_stats = await rpc.call("getblockstats", fork_tip)
    await t.stop(remove=False)
    t = await start_node(tmp_path / "n")
    assert await t.rpc.call("getbestblockhash") == b104.hash_hex
    assert await t.rpc.call("getblockstats", fork_tip) == fork_stats
    assert await _undo_views(t.rpc, bh, txid) == active
    await t.stop()
