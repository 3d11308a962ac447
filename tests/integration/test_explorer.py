"""Issue 20: the explorer page (`--explorer`) in a real browser — Debian's headless Chromium over
the DevTools protocol (tests/framework/browser.py). Each page is checked against the RPC's
answers for the same objects, and a screenshot of each is written (TINYNODE_SCREENSHOTS names
the directory; by default a temporary one).

Chromium comes from TINYNODE_CHROMIUM (or `chromium` on PATH); without it the browser test is
skipped with the reason, and when TINYNODE_CHROMIUM names something that does not run it fails.
The JSON endpoints the page adds to REST are tested without a browser."""
import os
import shutil
import tempfile
from pathlib import Path

import aiohttp
import pytest

from tests.framework.nodes import start_node
from tinynode.config import ConfigError, NodeConfig

pytestmark = pytest.mark.slow

NAMED = os.environ.get("TINYNODE_CHROMIUM", "")


@pytest.fixture
def chromium() -> str:
    path = NAMED or shutil.which("chromium") or shutil.which("chromium-browser")
    if path and os.access(path, os.X_OK):
        return path
    reason = (f"TINYNODE_CHROMIUM={NAMED} is not an executable" if NAMED else
              "chromium is not installed (apt-get install chromium, or set TINYNODE_CHROMIUM)")
    if NAMED:
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


@pytest.fixture
async def explorer_node():
    t = await start_node(txindex=True, rpc_port=0, rest=True, explorer=True)
    try:
        call = t.rpc.call
        addr = await call("getnewaddress")
        await call("generatetoaddress", 101, addr)
        dest = await call("getnewaddress")
        confirmed = await call("sendtoaddress", dest, 10)
        [bh] = await call("generatetoaddress", 1, addr)
        pending = await call("sendtoaddress", dest, 2)
        yield t, {"addr": addr, "dest": dest, "confirmed": confirmed, "bh": bh, "pending": pending}
    finally:
        await t.stop()


async def test_explorer_api(explorer_node):
    t, o = explorer_node
    base = f"http://127.0.0.1:{t.node.rpc_port}"
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{base}/explorer/") as r:
            assert r.status == 200 and r.headers["Content-Type"] == "text/html; charset=utf-8"
            assert "<title>tinynode explorer</title>" in await r.text()
        for n in (0, 1):
            async with s.get(f"{base}/explorer/api/address/{o['dest']}.json?confirmations={n}") as r:
                j = await r.json(content_type=None)
            bal = await t.rpc.call("getaddressbalance", o["dest"], n)
            assert {k: j[k] for k in bal} == bal and j["confirmations"] == n and j["height"] == 102
            assert j["mempool"] == [o["pending"]]
        assert [u["txid"] for u in j["utxos"]] == [o["confirmed"]] and j["utxos"][0]["confirmations"] == 1
        async with s.get(f"{base}/explorer/api/address/nonsense.json") as r:
            assert r.status == 400 and "Invalid address: nonsense" in await r.text()
        async with s.get(f"{base}/explorer/api/peers.json") as r:
            assert r.status == 200 and await r.json() == []
        async with s.get(f"{base}/explorer/api/nothing") as r:
            assert r.status == 404
    with pytest.raises(ConfigError, match="--explorer is served on the TCP RPC port"):
        NodeConfig(datadir=t.datadir, explorer=True).validate()


async def test_explorer_pages_in_chromium(explorer_node, chromium):
    from tests.framework.browser import Browser

    t, o = explorer_node
    call = t.rpc.call
    shots = Path(os.environ.get("TINYNODE_SCREENSHOTS") or tempfile.mkdtemp(prefix="tn-shots-"))
    url = f"http://127.0.0.1:{t.node.rpc_port}/explorer/"
    text = "(document.querySelector({!r}) || {{}}).textContent"

    async with Browser.launch(chromium) as browser:
        page = await browser.new_page(url)
        # home: the tip, ten recent blocks newest first, the mempool, no peers
        await page.wait_for(f"{text.format('#height')} === '102'")
        assert await page.eval("document.title") == "tinynode explorer"
        heights = await page.eval("[...document.querySelectorAll('#blocks td[data-height]')].map(e => e.textContent)")
        assert heights == [str(h) for h in range(102, 92, -1)]
        assert await page.eval(text.format("#tip")) == o["bh"]
        assert (await page.eval(text.format("#mempool-size"))).startswith("1 txs")
        assert "no peers" in await page.eval(text.format("#peers"))
        await page.screenshot(shots / "home.png")

        # a block: by clicking its row on the home page
        await page.eval(f"document.querySelector('#blocks a[href=\"#/block/{o['bh']}\"]').click()")
        await page.wait_for(f"{text.format('#block-hash')} === '{o['bh']}'")
        blk = await call("getblock", o["bh"])
        assert await page.eval(text.format("#confirmations")) == str(blk["confirmations"]) == "1"
        assert await page.eval(text.format("#ntx")) == str(blk["nTx"]) == "2"
        assert await page.eval("[...document.querySelectorAll('#txs a')].map(a => a.textContent)") == blk["tx"]
        await page.screenshot(shots / "block.png")

        # transactions: confirmed (1 confirmation) and in the mempool (0)
        for txid, conf in ((o["confirmed"], "1"), (o["pending"], "0")):
            await page.eval(f"location.hash = '#/tx/{txid}'")
            await page.wait_for(f"{text.format('#txid')} === '{txid}'")
            assert await page.eval(text.format("#confirmations")) == conf
            raw = await call("getrawtransaction", txid, True)
            values = await page.eval("[...document.querySelectorAll('#vout .value')].map(e => e.textContent)")
            assert [float(v) for v in values] == [float(v["value"]) for v in raw["vout"]]
        await page.screenshot(shots / "tx.png")

        # an address: balance at >= 1 confirmation, then 0 (with the mempool) through its form
        await page.eval(f"location.hash = '#/address/{o['dest']}?confirmations=1'")
        await page.wait_for(f"{text.format('#address')} === '{o['dest']}'")
        want1 = (await call("getaddressbalance", o["dest"], 1))["balance"]
        assert float(await page.eval(text.format("#balance"))) == float(want1) == 10
        await page.eval("document.querySelector('#conf').value = '0';"
                        "document.querySelector('#conf-form').requestSubmit()")
        want0 = (await call("getaddressbalance", o["dest"], 0))["balance"]
        await page.wait_for(f"Number({text.format('#balance')}) === {float(want0)}")
        assert float(want0) != float(want1)    # the pending send moved coins of this address
        assert await page.eval("[...document.querySelectorAll('#addr-mempool a')].map(a => a.textContent)") == [o["pending"]]
        await page.screenshot(shots / "address.png")

        # the mempool page
        await page.eval("location.hash = '#/mempool'")
        await page.wait_for(f"{text.format('#pool-count')} === '1'")
        assert await page.eval("[...document.querySelectorAll('#pool a')].map(a => a.textContent)") == \
            await call("getrawmempool")
        await page.screenshot(shots / "mempool.png")

        # search by height, and an unknown block shows REST's error sentence
        h5 = await call("getblockhash", 5)
        await page.eval("document.querySelector('#q').value = '5';"
                        "document.querySelector('#search').requestSubmit()")
        await page.wait_for(f"{text.format('#block-hash')} === '{h5}'")
        ff = "ff" * 32
        await page.eval(f"location.hash = '#/block/{ff}'")
        await page.wait_for("document.querySelector('#page').dataset.state === 'error'")
        assert f"404 {ff} not found" in await page.eval(text.format("#error"))
    for name in ("home", "block", "tx", "address", "mempool"):
        assert (shots / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
