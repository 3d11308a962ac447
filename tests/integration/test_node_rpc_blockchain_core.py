"""What Core's rpc_blockchain.py needs beyond -reindex: -stopatheight, -checkblocks/-checklevel
and `verifychain`, gettxoutsetinfo's muhash and disk_size, getnetworkhashps's type errors."""

import asyncio

import pytest

from tests.framework.nodes import start_node
from tests.framework.wait import wait_until
from tinynode.rpc.protocol import RPCError

pytestmark = pytest.mark.slow


async def test_stopatheight_stops_the_node_at_that_height(tmp_path):
    t = await start_node(tmp_path / "n", stop_at_height=3)
    addr = await t.rpc.call("getnewaddress")
    run = asyncio.ensure_future(t.node.run())   # run() returns once the node stopped itself
    await t.rpc.call("generatetoaddress", 2, addr)
    assert not run.done()
    try:
        await t.rpc.call("generatetoaddress", 1, addr)
    except (RPCError, OSError):
        pass   # the node may stop before it answers
    await wait_until(lambda: run.done(), timeout=20)
    assert run.result() == 0
    await t.rpc.close()
    t = await start_node(tmp_path / "n")
    assert await t.rpc.call("getblockcount") == 3
    await t.stop()


async def test_verifychain_checkblocks_muhash_and_type_errors(tmp_path):
    t = await start_node(tmp_path / "n", check_blocks=-1, check_level=4)
    rpc = t.rpc
    await rpc.call("generatetoaddress", 10, await rpc.call("getnewaddress"))
    assert await rpc.call("verifychain", 4, 0) is True
    assert await rpc.call("verifychain") is True
    info = await rpc.call("gettxoutsetinfo", "muhash")
    assert len(info["muhash"]) == 64 and "hash_serialized_3" not in info
    assert info["muhash"] != (await rpc.call("gettxoutsetinfo"))["hash_serialized_3"]
    assert 0 < info["disk_size"] < 64000
    with pytest.raises(RPCError) as e:
        await rpc.call("getnetworkhashps", "a", [])
    assert e.value.code == -3 and e.value.message == (
        'Wrong type passed:\n{\n'
        '    "Position 1 (nblocks)": "JSON value of type string is not of expected type number",\n'
        '    "Position 2 (height)": "JSON value of type array is not of expected type number"\n}')
    await t.stop(remove=False)
    t = await start_node(tmp_path / "n", check_blocks=-1, check_level=4)   # VerifyDB of all at start
    assert await t.rpc.call("getblockcount") == 10
    await t.stop()


async def test_waitforblock_waitfornewblock_waitforblockheight(tmp_path):
    t = await start_node(tmp_path / "n")
    rpc = t.rpc
    addr = await rpc.call("getnewaddress")
    h1 = (await rpc.call("generatetoaddress", 1, addr))[0]
    tip = {"hash": h1, "height": 1}
    # timeouts (milliseconds) return the current tip
    assert await rpc.call("waitforblock", "00" * 32, 50) == tip
    assert await rpc.call("waitforblockheight", 5, 50) == tip
    assert await rpc.call("waitfornewblock", 50) == tip
    assert await rpc.call("waitforblock", h1) == tip            # already the tip: at once
    assert await rpc.call("waitfornewblock", 0, "11" * 32) == tip   # not the tip: at once
    for method, args in (("waitforblock", [h1, -1]), ("waitfornewblock", [-1]),
                         ("waitforblockheight", [1, -1])):
        with pytest.raises(RPCError) as e:
            await rpc.call(method, *args)
        assert (e.value.code, e.value.message) == (-1, "Negative timeout")
    waiter = asyncio.ensure_future(rpc.call("waitforblockheight", 3))
    newer = asyncio.ensure_future(rpc.call("waitfornewblock"))
    hashes = await rpc.call("generatetoaddress", 2, addr)
    assert await asyncio.wait_for(waiter, 20) == {"hash": hashes[1], "height": 3}
    assert (await asyncio.wait_for(newer, 20))["height"] in (2, 3)
    with pytest.raises(RPCError) as e:
        await rpc.call("getblock", h1, "2")
    assert (e.value.code, e.value.message) == (-3, "JSON value of type string is not of expected type number")
    assert (await rpc.call("getblock", h1, True))["hash"] == h1
    await t.stop()


async def _submit_chain(rpc, builder, n_blocks: int, spend_at: int) -> list:
    """Submit `n_blocks` builder blocks from height 1; block `spend_at` spends block 1's coinbase."""
    blocks = []
    for i in range(1, n_blocks + 1):
        spend = builder.coinbase_utxo("b1") if i == spend_at else None
        b = builder.next_block(f"b{i}", spend=spend)
        assert await rpc.call("submitblock", b.serialize().hex()) is None
        blocks.append(b)
    return blocks


async def test_verificationprogress_is_cores_guess_at_the_nodes_clock(tmp_path):
    from tests.framework.blockbuilder import BlockBuilder
    t = await start_node(tmp_path / "n")
    rpc = t.rpc
    builder = BlockBuilder()
    blocks = await _submit_chain(rpc, builder, 12, spend_at=0)
    tip_time = blocks[-1].header.time
    chain_txs = 13                                  # genesis + 12 coinbases
    # an old tip (over 2 h): the tip's own time, 0.001 tx/s (Core's regtest ChainTxData) since
    await rpc.call("setmocktime", tip_time + 2 * 3600 + 1)
    assert (await rpc.call("getblockchaininfo"))["verificationprogress"] == chain_txs / (chain_txs + 7.201)
    # a recent tip with no better header: exactly 1
    await rpc.call("setmocktime", tip_time + 2 * 3600)
    assert (await rpc.call("getblockchaininfo"))["verificationprogress"] == 1
    # one more header: the tip counts as one target spacing (600 s) old
    nxt = builder.next_block("h13")
    assert await rpc.call("submitheader", nxt.header.serialize().hex()) is None
    info = await rpc.call("getblockchaininfo")
    assert (info["blocks"], info["headers"]) == (12, 13)
    assert info["verificationprogress"] == chain_txs / (chain_txs + 0.6)
    await t.stop()


async def test_getblock_without_its_undo_record_or_body_gives_cores_errors(tmp_path):
    from tests.framework.blockbuilder import BlockBuilder
    t = await start_node(tmp_path / "n")
    rpc = t.rpc
    builder = BlockBuilder()
    blocks = await _submit_chain(rpc, builder, 102, spend_at=102)
    bh = blocks[-1].hash_hex
    fee = builder.spend_txs["b102"]
    b2 = await rpc.call("getblock", bh, 2)
    assert b2["tx"][1]["txid"] == fee.txid_hex and b2["tx"][1]["fee"] > 0
    assert "prevout" in (await rpc.call("getblock", bh, 3))["tx"][1]["vin"][0]
    assert (await rpc.call("getblockstats", bh, ["totalfee"]))["totalfee"] > 0

    # a header with no body: Core CheckBlockDataAvailability's text for getblock and getblockstats
    c = builder.next_block("c103")
    assert await rpc.call("submitheader", c.header.serialize().hex()) is None
    for call in (rpc.call("getblock", c.hash_hex),
                 rpc.call("getblockstats", c.hash_hex)):
        with pytest.raises(RPCError) as e:
            await call
        assert (e.value.code, e.value.message) == (-1, "Block not available (not fully downloaded)")
    # a body on that header: stored, never connected, so no undo record: no fee, no prevout
    d = builder.next_block("d104", spend=builder.coinbase_utxo("b2"))
    assert await rpc.call("submitblock", d.serialize().hex()) == "inconclusive"
    d_hash = d.hash_hex
    for verbosity in (2, 3):
        tx = (await rpc.call("getblock", d_hash, verbosity))["tx"][1]
        assert "fee" not in tx and all("prevout" not in vin for vin in tx["vin"])
    with pytest.raises(RPCError) as e:
        await rpc.call("getblockstats", d_hash)
    assert (e.value.code, e.value.message) == (-1, "Undo data not available")

    # the undo file is moved away (corruption, a pruning race), as Core's rpc_blockchain does
    blocks_dir = tmp_path / "n" / "regtest" / "blocks"
    (blocks_dir / "rev00000.dat").rename(blocks_dir / "rev_wrong")
    assert (await rpc.call("getblock", bh, 1))["tx"][1] == fee.txid_hex   # verbosity 1 reads no undo
    for verbosity in (2, 3):
        with pytest.raises(RPCError) as e:
            await rpc.call("getblock", bh, verbosity)
        assert (e.value.code, e.value.message) == (
            -32603, "Undo data expected but can't be read. This could be due to disk corruption "
                    "or a conflict with a pruning event.")
    with pytest.raises(RPCError) as e:   # Core getrawtransaction with its block: the same error
        await rpc.call("getrawtransaction", fee.txid_hex, 2, bh)
    assert e.value.code == -32603 and e.value.message.startswith("Undo data expected but can't be read.")
    assert (await rpc.call("getrawtransaction", fee.txid_hex, 1, bh))["txid"] == fee.txid_hex
    with pytest.raises(RPCError) as e:
        await rpc.call("getblockstats", bh)
    assert (e.value.code, e.value.message) == (-1, "Can't read undo data from disk")
    (blocks_dir / "rev_wrong").rename(blocks_dir / "rev00000.dat")
    assert "prevout" in (await rpc.call("getblock", bh, 3))["tx"][1]["vin"][0]
    # an old block (not among the chainstate's 64 recent blocks held in memory) when the block
    # file is gone: Core's text; back when the file is
    (blocks_dir / "blk00000.dat").rename(blocks_dir / "blk00000.dat.bak")
    for verbosity in (0, 1, 2):
        with pytest.raises(RPCError) as e:
            await rpc.call("getblock", blocks[9].hash_hex, verbosity)
        assert (e.value.code, e.value.message) == (-1, "Block not found on disk")
    (blocks_dir / "blk00000.dat.bak").rename(blocks_dir / "blk00000.dat")
    assert (await rpc.call("getblock", blocks[9].hash_hex, 0)) == blocks[9].serialize().hex()
    await t.stop()


async def test_size_on_disk_counts_the_block_files(tmp_path):
    """getblockchaininfo size_on_disk (Core CalculateCurrentUsage) is the block files' bytes plus
    the chain database's, exactly, before and after new blocks."""
    t = await start_node(tmp_path / "n")
    try:
        rpc = t.rpc
        net = tmp_path / "n" / "regtest"

        def on_disk() -> tuple[int, int]:
            files = sum(p.stat().st_size for p in (net / "blocks").iterdir() if p.suffix == ".dat")
            db = sum((net / n).stat().st_size for n in ("chain.sqlite", "chain.sqlite-wal")
                     if (net / n).exists())
            return files, files + db
        files_before, total = on_disk()
        assert files_before > 0 and (await rpc.call("getblockchaininfo"))["size_on_disk"] == total
        addr = await rpc.call("getnewaddress")
        await rpc.call("generatetoaddress", 20, addr)
        files_after, total = on_disk()
        assert files_after > files_before
        assert (await rpc.call("getblockchaininfo"))["size_on_disk"] == total
    finally:
        await t.stop()
