"""Issue 20: tinynode's REST interface answers as Bitcoin Core's `-rest` does, on the same chain.

Core (TINYNODE_BITCOIND, see test_interop_core.py; skipped with the reason when absent) mines a
chain with a P2PKH spend signed by tinynode's code; tinynode syncs it from Core, and a second
spend waits in both mempools. Then the same REST requests go to both HTTP servers: headers,
block hashes, txs, UTXO lookups (bin and json) and spent outputs must be byte for byte Core's;
block and chain JSON field by field except the differences test_interop_core.py explains
(blocks arrive without witness data); and a catalogue of bad requests must get Core's status,
Content-Type and sentence. On the same chain getblockstats, getchaintxstats, getindexinfo
(Core runs with -txindex) and getnetworkinfo's version (Core v31's) equal Core's.
"""
from __future__ import annotations


import aiohttp
import pytest

from tests.framework.nodes import TestNode, start_node
from tests.framework.wait import wait_until
from tests.integration.test_interop_core import (  # noqa: F401  (bitcoind_path is a fixture)
    EXPECTED_DIFFERENCES, bitcoind_path, core_chain_with_a_spend, differences, start_bitcoind,
)
from tinynode.primitives.keys import PrivateKey
from tinynode.rpc.protocol import loads

pytestmark = pytest.mark.slow


async def _get(s: aiohttp.ClientSession, port: int, path: str,
               body: bytes | None = None) -> tuple[int, str | None, bytes]:
    async with s.request("GET" if body is None else "POST", f"http://127.0.0.1:{port}{path}",
                         data=body) as r:
        return r.status, r.headers.get("Content-Type"), await r.read()


async def test_rest_answers_equal_cores(bitcoind_path: str) -> None:
    key = PrivateKey(bytes(31) + b"\x0e")
    core = await start_bitcoind(bitcoind_path, ("-rest", "-txindex"))
    t: TestNode | None = None
    try:
        t = await start_node(txindex=True, peers=(("127.0.0.1", core.p2p_port),), rpc_port=0, rest=True)
        c = await core_chain_with_a_spend(core, t, key, 105, pending_fee=5_000)
        hashes, cb, spend, with_tx, cb2, pending = c.hashes, c.cb, c.spend, c.with_tx, c.cb2, c.pending
        await core.rpc("sendrawtransaction", pending.raw.hex())

        async def relayed() -> bool:
            return pending.txid_hex in await t.rpc.call("getrawmempool")

        await wait_until(relayed, 60, message="Core's tx never reached tinynode's mempool")
        await wait_until(lambda: core.rpc("getindexinfo"), 30)   # Core's txindex answers
        h100 = hashes[99]
        utxos = f"{cb['txid']}-0/{spend.txid_hex}-0/{cb2['txid']}-0/{pending.txid_hex}-0"

        # byte for byte the same (legacy txs and headers carry no witness data)
        same_bytes = [
            f"/rest/headers/{h100}.bin?count=4", f"/rest/headers/{h100}.hex?count=4",
            f"/rest/headers/3/{h100}.hex", f"/rest/headers/{h100}.json?count=7",
            "/rest/blockhashbyheight/106.bin", "/rest/blockhashbyheight/106.hex",
            "/rest/blockhashbyheight/50.json",
            f"/rest/tx/{spend.txid_hex}.bin", f"/rest/tx/{spend.txid_hex}.hex",
            f"/rest/tx/{spend.txid_hex}.json", f"/rest/tx/{pending.txid_hex}.json",
            f"/rest/getutxos/{utxos}.json", f"/rest/getutxos/{utxos}.bin",
            f"/rest/getutxos/checkmempool/{utxos}.json", f"/rest/getutxos/checkmempool/{utxos}.hex",
            f"/rest/spenttxouts/{with_tx}.json", f"/rest/spenttxouts/{with_tx}.bin",
            "/rest/mempool/contents.json?verbose=false",
        ]
        # field by field, with the differences test_interop_core.py explains
        by_field = [
            (f"/rest/block/notxdetails/{with_tx}.json", "getblock"),
            (f"/rest/block/{with_tx}.json", "getblock3"),
            ("/rest/chaininfo.json", "getblockchaininfo"),
        ]
        # Core's error answers: status, Content-Type and sentence
        ff = "ff" * 32
        errors = [
            f"/rest/block/{ff}.json", "/rest/block/abc.json", f"/rest/block/{with_tx}",
            f"/rest/blockpart/{with_tx}.json?offset=0&size=1", f"/rest/blockpart/{with_tx}.bin?offset=0",
            f"/rest/blockpart/{with_tx}.bin?offset=999999&size=1",
            f"/rest/tx/{ff}.hex", "/rest/tx/zz.json", f"/rest/headers/{h100}.json?count=0",
            f"/rest/headers/{h100}.json?count=2001", f"/rest/headers/x/{h100}.json",
            f"/rest/headers/1/2/{h100}.json", f"/rest/headers/{h100}?count=1",
            "/rest/blockhashbyheight/999.json", "/rest/blockhashbyheight/-1.json",
            "/rest/blockhashbyheight/1a.json", "/rest/blockhashbyheight/1",
            "/rest/chaininfo.bin", "/rest/mempool/info.hex", "/rest/mempool/other.json",
            "/rest/mempool/contents.json?verbose=yes", "/rest/mempool/contents.json?mempool_sequence=1",
            "/rest/mempool/contents.json?mempool_sequence=true",
            "/rest/getutxos.json", "/rest/getutxos/checkmempool.json", f"/rest/getutxos/{ff}.json",
            f"/rest/getutxos/{ff}-x.json", "/rest/getutxos/" + "/".join([f"{ff}-0"] * 16) + ".json",
            f"/rest/getutxos/{ff}-0", f"/rest/spenttxouts/{ff}.json",
            f"/rest/blockfilter/extended/{with_tx}.json", "/rest/nothing",
        ]
        port_t, port_c = t.node.rpc_port, core.rpc_port
        mismatched: dict[str, object] = {}
        async with aiohttp.ClientSession() as s:
            for path in same_bytes + errors:
                ours, theirs = await _get(s, port_t, path), await _get(s, port_c, path)
                if path in errors and theirs[0] == 200:   # pragma: no cover - the list is wrong
                    mismatched[path] = ("Core answered 200", theirs)
                elif ours != theirs:
                    mismatched[path] = (ours, theirs)
            for path, name in by_field:
                ours, theirs = await _get(s, port_t, path), await _get(s, port_c, path)
                assert ours[:2] == theirs[:2] == (200, "application/json"), (path, ours[:2], theirs[:2])
                diff = differences(loads(ours[2]), loads(theirs[2])) - EXPECTED_DIFFERENCES.get(name, set())
                if diff:
                    mismatched[path] = sorted(diff)
            # outpoints POSTed in the body, read as Core reads them (its length byte first)
            ops = b"".join(bytes.fromhex(x)[::-1] + b"\0\0\0\0" for x in (cb["txid"], pending.txid_hex))
            for path, body in (("/rest/getutxos.bin", b"\x02" + ops), ("/rest/getutxos.hex", (b"\x02" + ops).hex().encode()),
                               ("/rest/getutxos.bin", b"\x05\x01"), ("/rest/getutxos.hex", b"zz"),
                               (f"/rest/getutxos/{ff}-0.bin", b"\x02" + ops)):
                ours, theirs = await _get(s, port_t, path, body), await _get(s, port_c, path, body)
                if ours != theirs:
                    mismatched[f"POST {path} {body[:8]!r}"] = (ours, theirs)
            # the mempool: the same one tx, the same totals (the relay fee floors are mempool
            # policy, not REST: Core v31's default is 100 sat/kvB, tinynode's 1,000)
            ours = loads((await _get(s, port_t, "/rest/mempool/info.json"))[2])
            theirs = loads((await _get(s, port_c, "/rest/mempool/info.json"))[2])
            for k in ("loaded", "size", "bytes", "total_fee"):
                if ours[k] != theirs[k]:
                    mismatched[f"mempool/info.{k}"] = (ours[k], theirs[k])
        # the RPCs of issue 20 on the same chain: equal to Core's answers
        for method, args in (("getblockstats", (with_tx,)), ("getblockstats", (106,)),
                             ("getblockstats", (50,)), ("getblockstats", (0,)),
                             ("getblockstats", (with_tx, ["feerate_percentiles", "utxo_size_inc"])),
                             ("getchaintxstats", ()), ("getchaintxstats", (10, hashes[50])),
                             ("getchaintxstats", (0,)), ("getindexinfo", ()),
                             ("getindexinfo", ("txindex",))):
            ours, theirs = await t.rpc.call(method, *args), await core.rpc(method, *args)
            if ours != theirs or list(ours) != list(theirs):
                mismatched[f"{method}{args}"] = (ours, theirs)
        assert not mismatched, mismatched
        # tinynode answers as Core v31.0 (310000); the Core built here may be a later dev version
        assert (await t.rpc.call("getnetworkinfo"))["version"] == 310000
        assert (await core.rpc("getnetworkinfo"))["version"] >= 310000
    finally:
        if t is not None:
            await t.stop()
        core.stop()
