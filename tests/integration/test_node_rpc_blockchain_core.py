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
