"""getblocktemplate and getdeploymentinfo against a real Bitcoin Core v31 (TINYNODE_BITCOIND, else
skipped): the same chain and mempool on both nodes (tinynode syncs from Core, Core's tx is
relayed to tinynode), the answers compared field by field with `differences()`; each difference
that remains is listed in EXPECTED below with its reason, and an explanation whose difference no
longer occurs fails the test as stale."""

from __future__ import annotations


import pytest

from tests.framework.nodes import TestNode, start_node
from tests.framework.wait import wait_until
from tests.integration.test_interop_core import (  # noqa: F401  (bitcoind_path is a fixture)
    bitcoind_path, core_chain_with_a_spend, differences, start_bitcoind,
)
from tinynode.primitives.keys import PrivateKey

pytestmark = pytest.mark.slow

#: Where tinynode answers differently from Core, and why:
EXPECTED = {
    # <tip><Core's nTransactionsUpdated>: the counter is each node's own (tinynode: its pool's
    # change sequence); both name the same tip, checked below
    "getblocktemplate": {".longpollid"},
}


async def test_getblocktemplate_and_getdeploymentinfo_equal_cores(bitcoind_path: str) -> None:  # noqa: F811
    """150 Core blocks (into regtest's second 144-block period, so the BIP9 testdummy deployment
    is STARTED: Core's blocks from 144 on signal bit 28, the templates' version is 0x30000000,
    getdeploymentinfo counts the period's signals) plus a block with a spend;
    a second spend waits in both mempools; both templates then hold it, with the same fee,
    sigop cost, weight, coinbase value and witness commitment."""
    key = PrivateKey(bytes(31) + b"\x0e")
    core = await start_bitcoind(bitcoind_path)
    t: TestNode | None = None
    try:
        t = await start_node(peers=(("127.0.0.1", core.p2p_port),))
        c = await core_chain_with_a_spend(core, t, key, 150, pending_fee=7_000)
        tip, pending = c.with_tx, c.pending
        await core.rpc("sendrawtransaction", pending.raw.hex())

        async def relayed() -> bool:
            return pending.txid_hex in await t.rpc.call("getrawmempool")

        await wait_until(relayed, 60, message="Core's tx never reached tinynode's mempool")
        seen: dict[str, set[str]] = {}
        unexpected = {}

        def compare(name: str, ours, theirs) -> None:
            found = differences(ours, theirs)
            seen[name] = found
            if found - EXPECTED.get(name, set()):
                unexpected[name] = sorted(found - EXPECTED.get(name, set()))

        req = {"rules": ["segwit"]}
        ours, theirs = await t.rpc.call("getblocktemplate", req), await core.rpc("getblocktemplate", req)
        # curtime is each node's clock read at its call: equal up to the seconds between them
        assert 0 <= ours.pop("curtime") - theirs.pop("curtime") <= 5
        assert list(ours) == [k for k in theirs] and ours["transactions"][0]["txid"] == pending.txid_hex
        assert ours["longpollid"][:64] == theirs["longpollid"][:64] == tip
        assert ours["version"] == 0x30000000 and ours["vbavailable"] == {"testdummy": 28}
        compare("getblocktemplate", ours, theirs)
        # a block assembled from Core's template: both judge the proposal the same way
        for mode_req in ({"mode": "proposal", "data": (await core.rpc("getblock", tip, 0))},):
            assert await t.rpc.call("getblocktemplate", mode_req) == await core.rpc("getblocktemplate", mode_req) \
                == "duplicate"
        compare("getdeploymentinfo", await t.rpc.call("getdeploymentinfo"), await core.rpc("getdeploymentinfo"))
        genesis = await core.rpc("getblockhash", 0)
        compare("getdeploymentinfo@genesis", await t.rpc.call("getdeploymentinfo", genesis),
                await core.rpc("getdeploymentinfo", genesis))
        ours_ci, theirs_ci = await t.rpc.call("getblockchaininfo"), await core.rpc("getblockchaininfo")
        assert set(ours_ci) == set(theirs_ci) and "softforks" not in theirs_ci
        assert not unexpected, unexpected
        # longpollid's counter is each node's own and may happen to be equal
        may_agree = {"getblocktemplate": {".longpollid"}}
        stale = {n: sorted(p - seen.get(n, set()) - may_agree.get(n, set())) for n, p in EXPECTED.items()
                 if p - seen.get(n, set()) - may_agree.get(n, set())}
        assert not stale, stale
    finally:
        if t is not None:
            await t.stop()
        core.stop()
