"""--reindex / --reindex-chainstate on a real node (Core's -reindex, -reindex-chainstate): after
the restart the node has the same tip, the same gettxoutsetinfo hash_serialized_3, the same
tx index and spender index answers, logs Core's reindex lines, and goes on mining. A tip from
the future stops the start with Core's exact chainstate-load question text."""

import logging

import pytest

from tests.framework.nodes import start_node
from tinynode.node import FUTURE_TIP_ERROR, ChainstateLoadError, NodeError

pytestmark = pytest.mark.slow


async def _state(t) -> dict:
    rpc = t.rpc
    best = await rpc.call("getbestblockhash")
    info = await rpc.call("gettxoutsetinfo")
    block = await rpc.call("getblock", best, 2)
    spent = block["tx"][1]["vin"][0]
    return {
        "best": best,
        "height": await rpc.call("getblockcount"),
        "hash_serialized_3": info["hash_serialized_3"],
        "txouts": info["txouts"],
        "total_amount": info["total_amount"],
        "tx": (await rpc.call("getrawtransaction", block["tx"][1]["txid"], 1))["blockhash"],
        "spender": await rpc.call("gettxspendingprevout",
                                  [{"txid": spent["txid"], "vout": spent["vout"]}]),
    }


@pytest.mark.parametrize("option", ["reindex", "reindex_chainstate"])
async def test_reindex_rebuilds_the_same_state(tmp_path, option, caplog):
    d = tmp_path / "n"
    t = await start_node(d, txindex=True, txospenderindex=True)
    addr = await t.rpc.call("getnewaddress")
    await t.rpc.call("generatetoaddress", 101, addr)
    other = await t.rpc.call("getnewaddress")
    await t.rpc.call("sendtoaddress", other, 1.5)
    await t.rpc.call("generatetoaddress", 1, addr)
    before = await _state(t)
    assert before["spender"][0]["blockhash"] == before["best"]
    await t.stop(remove=False)

    caplog.set_level(logging.INFO)
    t = await start_node(d, txindex=True, txospenderindex=True, **{option: True})
    try:
        assert await _state(t) == before
        assert t.node.reindex_result.height == 102 and not t.node.reindex_result.interrupted
        if option == "reindex":
            assert "Reindexing block file chain.sqlite (0% complete)..." in caplog.text
            assert "Reindexing finished" in caplog.text
        else:
            assert "Wiping the chain state and indexes for -reindex-chainstate" in caplog.text
        # and the node goes on normally
        await t.rpc.call("generatetoaddress", 1, addr)
        assert await t.rpc.call("getblockcount") == 103
    finally:
        await t.stop(remove=False)
    # the next ordinary start does not reindex again
    t = await start_node(d, txindex=True, txospenderindex=True)
    assert t.node.reindex_result is None and await t.rpc.call("getblockcount") == 103
    await t.stop()


async def test_a_tip_from_the_future_gives_cores_text_and_reindex_recovers(tmp_path):
    """Core VerifyLoadedChainstate + init.cpp: the sentence, a newline, the -reindex advice; no
    "Error: " caption on stderr (noui_ThreadSafeQuestion). With -reindex-chainstate the check is
    skipped (Core: the coins view was wiped) and the chain is rebuilt."""
    t = await start_node(tmp_path / "n")
    addr = await t.rpc.call("getnewaddress")
    await t.rpc.call("generatetoaddress", 1, addr)
    tip_time = (await t.rpc.call("getblockheader", await t.rpc.call("getbestblockhash")))["time"]
    await t.stop(remove=False)
    with pytest.raises(ChainstateLoadError) as e:
        await start_node(tmp_path / "n", mocktime=tip_time - 2 * 60 * 60 - 1)
    assert str(e.value) == (
        "The block database contains a block which appears to be from the future. This may be "
        "due to your computer's date and time being set incorrectly. Only rebuild the block "
        "database if you are sure that your computer's date and time are correct.\n"
        "Please restart with -reindex or -reindex-chainstate to recover.")
    assert str(e.value).startswith(FUTURE_TIP_ERROR) and e.value.caption == ""
    assert isinstance(e.value, NodeError)
    t = await start_node(tmp_path / "n", mocktime=tip_time - 2 * 60 * 60 - 1, reindex_chainstate=True)
    assert t.node.reindex_result.height == 1 and await t.rpc.call("getblockcount") == 1
    await t.stop(remove=False)
    t = await start_node(tmp_path / "n", mocktime=tip_time - 2 * 60 * 60)
    assert await t.rpc.call("getblockcount") == 1
    await t.stop()
