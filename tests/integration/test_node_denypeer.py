"""RPC denypeer / allowpeer / listdeniedpeers (tinynode; the lab's partitions): a denied peer is
dropped and not redialled; allowpeer lets a persistent target (addnode add) reconnect."""
import pytest

from tests.framework.nodes import running_nodes
from tests.framework.wait import wait_until
from tests.framework.rpcassert import rpc_code as err

pytestmark = pytest.mark.slow


async def test_denypeer_partitions_and_allowpeer_heals():
    async with running_nodes(2) as (a, b):
        await b.rpc.call("addnode", a.p2p_addr, "add")
        await wait_until(lambda: len(a.node.connman.connected_peers()) == 1
                         and len(b.node.connman.connected_peers()) == 1, 15, message="b did not dial a")
        assert await b.rpc.call("listdeniedpeers") == []

        assert await b.rpc.call("denypeer", a.p2p_addr) is None
        assert await b.rpc.call("listdeniedpeers") == [a.p2p_addr]
        await wait_until(lambda: not a.node.connman.connected_peers()
                         and not b.node.connman.connected_peers(), 15, message="deny did not disconnect")
        # a block mined on a does not reach b while denied
        await a.rpc.call("generatetoaddress", 1, await a.rpc.call("getnewaddress"))
        assert await b.rpc.call("getconnectioncount") == 0
        assert await b.rpc.call("getblockcount") == 0

        assert await b.rpc.call("allowpeer", a.p2p_addr) is None
        assert await b.rpc.call("listdeniedpeers") == []
        await wait_until(lambda: b.node.writer.snapshot.height == 1, 20, message="b did not reconnect and sync")

        # argument errors: Core's -8 for a malformed host:port, -1 usage for a missing argument
        assert await err(b.rpc.call("denypeer", "127.0.0.1")) == -8
        assert await err(b.rpc.call("denypeer", "127.0.0.1:notaport")) == -8
        assert await err(b.rpc.call("allowpeer")) == -1
        help_text = await b.rpc.call("help", "denypeer")
        assert help_text.startswith('denypeer "host:port"') and "allowpeer" in help_text
