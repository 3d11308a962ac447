"""-testactivationheight moves what the RPCs report and what the node mines, not only what the
block checks enforce (Core's feature_cltv/feature_dersig read getdeploymentinfo first)."""
import pytest

from tests.framework.nodes import start_node

pytestmark = pytest.mark.slow


async def test_deployment_info_and_templates_follow_the_heights():
    t = await start_node(test_activation_heights=(("cltv", 111), ("segwit", 3)))
    try:
        c = t.rpc
        d = (await c.call("getdeploymentinfo"))["deployments"]
        assert d["bip65"] == {"type": "buried", "active": False, "height": 111}
        assert d["segwit"] == {"type": "buried", "active": False, "height": 3}
        assert d["bip66"] == {"type": "buried", "active": True, "height": 1}
        gbt = await c.call("getblocktemplate", {"rules": ["segwit"]})
        assert gbt["height"] == 1 and "default_witness_commitment" not in gbt
        addr = await c.call("getnewaddress")
        [h1] = await c.call("generatetoaddress", 1, addr)
        cb = (await c.call("getblock", h1, 2))["tx"][0]
        assert not any(o["scriptPubKey"]["hex"].startswith("6a24aa21a9ed") for o in cb["vout"])
        await c.call("generatetoaddress", 2, addr)        # height 3: segwit from here
        gbt = await c.call("getblocktemplate", {"rules": ["segwit"]})
        assert gbt["height"] == 4 and gbt["default_witness_commitment"].startswith("6a24aa21a9ed")
        d = (await c.call("getdeploymentinfo"))["deployments"]
        assert d["segwit"]["active"] is True and d["bip65"]["active"] is False
    finally:
        await t.stop()
