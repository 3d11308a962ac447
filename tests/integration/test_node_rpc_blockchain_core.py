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
