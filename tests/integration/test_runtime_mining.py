"""Switching continuous mining while the node runs (RPC setgenerate, `tinynode-cli mining`):
blocks come while it is on, stop when it is off, and on-demand mining still works after."""
import pytest

from tests.framework.nodes import start_node
from tests.framework.wait import wait_until
from tinynode.rpc.protocol import RPCError

pytestmark = pytest.mark.slow


async def test_setgenerate_on_and_off_at_run_time():
    t = await start_node(mine_workers=1)
    try:
        c = t.rpc
        assert (await c.call("getmininginfo"))["mining"] is False
        await c.call("setgenerate", True)
        assert (await c.call("getmininginfo"))["mining"] is True
        await wait_until(lambda: t.node.writer.snapshot.height >= 3, 30)
        # the blocks pay the wallet's one stored mining address
        payout = await t.node.mining_payout()
        cb = (await c.call("getblock", await c.call("getblockhash", 1), 2))["tx"][0]
        assert bytes.fromhex(cb["vout"][0]["scriptPubKey"]["hex"]) == payout
        await c.call("setgenerate", False)
        info = await c.call("getmininginfo")
        assert info["mining"] is False
        h = t.node.writer.snapshot.height
        with pytest.raises(AssertionError):      # no block while off
            await wait_until(lambda: t.node.writer.snapshot.height > h, 1.5)
        addr = await c.call("getnewaddress")
        assert len(await c.call("generatetoaddress", 1, addr)) == 1   # the pool is still there
        await c.call("setgenerate", True, 0)      # genproclimit 0: off, as Core's
        assert (await c.call("getmininginfo"))["mining"] is False
    finally:
        await t.stop()


async def test_setgenerate_without_a_wallet_says_what_to_do():
    t = await start_node(wallet=False)
    try:
        with pytest.raises(RPCError) as e:
            await t.rpc.call("setgenerate", True)
        assert e.value.code == -1 and "start tinynode with --mine-to ADDRESS" in e.value.message
    finally:
        await t.stop()
