"""Issue 20: `tinynode lab view`, the live picture of a lab network — its /lab.json against the
nodes' own RPC answers (links, tips, a fork and its healing), and the page in headless Chromium
(tests/framework/browser.py) with a screenshot."""
from __future__ import annotations

import json
import os
import tempfile
import urllib.request
from pathlib import Path

import pytest

from tests.framework.wait import wait_until_sync
from tests.integration.test_explorer import chromium  # noqa: F401  (fixture)
from tests.integration.test_lab import assert_synced, lab  # noqa: F401  (fixture)
from tinynode.lab import Lab
from tinynode.labview import serve

pytestmark = pytest.mark.slow


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as r:
        assert r.headers["Content-Type"] == "application/json"
        return json.loads(r.read())


def test_lab_json_follows_links_tips_and_a_fork(lab: Lab) -> None:
    lab.up(3, topology="line")
    lab.mine(0, 2)
    assert_synced(lab)
    server = serve(lab)
    url = f"http://127.0.0.1:{server.server_address[1]}/lab.json"
    try:
        d = _get(url)
        assert [n["node"] for n in d["nodes"]] == ["n0", "n1", "n2"]
        assert all(n["alive"] for n in d["nodes"])
        assert d["links"] == [[0, 1], [1, 2]]                   # the line, from getpeerinfo
        tip = lab.rpc(0, "getbestblockhash")
        assert {n["tip"] for n in d["nodes"]} == {tip} and {n["height"] for n in d["nodes"]} == {2}
        assert "n0" in d["tree"] and "n2" in d["tree"]
        lab.partition([[0], [1, 2]])
        a = lab.mine(0, 1)[-1]
        b = lab.mine(2, 2)[-1]
        wait_until_sync(lambda: lab.rpc(1, "getbestblockhash") == b, 20)
        d = _get(url)
        assert {n["node"]: n["tip"] for n in d["nodes"]} == {"n0": a, "n1": b, "n2": b}
        lab.heal()
        assert_synced(lab)
        d = _get(url)
        assert {n["tip"] for n in d["nodes"]} == {b}             # the fork healed onto more work
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(url.replace("lab.json", "nope"), timeout=10)
    finally:
        server.shutdown()


async def test_lab_view_page_in_chromium(lab: Lab, chromium: str) -> None:
    from tests.framework.browser import Browser
    lab.up(3, topology="line")
    lab.mine(1, 1)
    assert_synced(lab)
    server = serve(lab)
    shots = Path(os.environ.get("TINYNODE_SCREENSHOTS") or tempfile.mkdtemp(prefix="tn-shots-"))
    shots.mkdir(parents=True, exist_ok=True)
    try:
        async with Browser.launch(chromium) as browser:
            page = await browser.new_page(f"http://127.0.0.1:{server.server_address[1]}/")
            await page.wait_for("document.title === 'tinynode lab'", 30)
            await page.wait_for("document.querySelectorAll('g.node').length === 3 && "
                                "document.querySelectorAll('line.link').length === 2", 30)
            status = await page.eval("document.getElementById('status').textContent")
            assert "3 nodes, 2 links, one tip" in status
            tips = await page.eval("Array.from(document.querySelectorAll('g.node'))"
                                   ".map(g => g.dataset.tip)")
            assert set(tips) == {lab.rpc(0, "getbestblockhash")}
            await page.screenshot(shots / "lab-view.png")
    finally:
        server.shutdown()
    assert (shots / "lab-view.png").stat().st_size > 5_000
