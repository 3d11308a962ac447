"""The rest of the Core surface tinynode serves so far, on one in-process regtest node:
headers, UTXO lookups, mempool entries, decoding, address info, WIF import/export, history,
invalidate/reconsider, network info and bans."""
import pytest

from tests.framework.nodes import running_nodes
from tests.framework.rpcassert import rpc_code as err
from tinynode.params import REGTEST
from tinynode.primitives.address import encode_wif
from tinynode.primitives.keys import PrivateKey
from tinynode.rpc.protocol import RPCError

pytestmark = pytest.mark.slow


async def test_core_methods_on_one_node():
    async with running_nodes(1, txindex=True) as (a,):
        c = a.rpc
        addr = await c.call("getnewaddress", "me")
        hashes = await c.call("generatetoaddress", 101, addr)
        hdr = await c.call("getblockheader", hashes[-1])
        assert hdr["height"] == 101 and hdr["confirmations"] == 1 and hdr["previousblockhash"] == hashes[-2]
        assert len(await c.call("getblockheader", hashes[0], False)) == 160
        assert await err(c.call("getblockheader", "00" * 32)) == -5
        assert await c.call("getdifficulty") > 0
        u1 = await c.call("gettxoutsetinfo")
        assert u1["height"] == 101 and u1["txouts"] == 101 and u1["total_amount"] == 5050
        assert len(u1["hash_serialized_3"]) == 64

        other = await c.call("getnewaddress")
        txid = await c.call("sendtoaddress", other, 3)
        entry = await c.call("getmempoolentry", txid)
        assert entry["vsize"] > 0 and entry["fees"]["base"] > 0 and entry["depends"] == []
        assert await err(c.call("getmempoolentry", "11" * 32)) == -5
        info = await c.call("getmempoolinfo")
        assert info["size"] == 1 and info["loaded"] is True
        dec = await c.call("decoderawtransaction", (await c.call("gettransaction", txid))["hex"])
        assert dec["txid"] == txid and any(v["value"] == 3 for v in dec["vout"])
        assert await err(c.call("decoderawtransaction", "00")) == -22
        n = next(v["n"] for v in dec["vout"] if v["scriptPubKey"].get("address") == other)
        out = await c.call("gettxout", txid, n)
        assert out["value"] == 3 and out["confirmations"] == 0 and out["scriptPubKey"]["address"] == other
        assert await c.call("gettxout", txid, n, False) is None
        spent = dec["vin"][0]
        assert await c.call("gettxout", spent["txid"], spent["vout"]) is None          # spent in the mempool

        spk_hex = (await c.call("validateaddress", addr))["scriptPubKey"]
        ds = await c.call("decodescript", spk_hex)
        # getnewaddress is bech32 (P2WPKH) by default, as Core's -addresstype
        assert ds["type"] == "witness_v0_keyhash" and ds["address"] == addr and ds["asm"].startswith("0 ")
        assert ds["p2sh"][0] == "2"
        assert (await c.call("decodescript", "6a02cafe"))["asm"] == "OP_RETURN -32458"
        assert await err(c.call("decodescript", "zz")) == -8          # Core ParseHexV
        tips = await c.call("getchaintips")
        assert tips == [{"height": 101, "hash": hashes[-1], "branchlen": 0, "status": "active"}]
        mi = await c.call("getmininginfo")
        assert mi["blocks"] == 101 and mi["chain"] == "regtest" and mi["pooledtx"] == 1
        assert await c.call("getconnectioncount") == 0 and await c.call("uptime") >= 0
        assert (await c.call("validateaddress", addr))["isvalid"] is True
        assert (await c.call("validateaddress", "nope"))["isvalid"] is False
        ai = await c.call("getaddressinfo", addr)
        assert ai["ismine"] is True and ai["labels"] == ["me"] and len(ai["pubkey"]) == 66

        wif = await c.call("dumpprivkey", addr)
        assert wif[0] == "c"
        key = PrivateKey(bytes(31) + b"\x09")
        assert await err(c.call("importprivkey", "notakey")) == -5
        await c.call("importprivkey", encode_wif(key.secret, True, REGTEST), "imported")

        await c.call("generatetoaddress", 1, addr)
        hist = await c.call("listtransactions", "*", 500)
        assert any(r["txid"] == txid and r["category"] == "send" for r in hist)
        assert len(await c.call("listtransactions", "*", 3)) == 3

        tip = await c.call("getbestblockhash")
        await c.call("invalidateblock", tip)
        assert await c.call("getblockcount") == 101
        assert txid in await c.call("getrawmempool")       # back to the mempool
        await c.call("reconsiderblock", tip)
        assert await c.call("getbestblockhash") == tip

        net = await c.call("getnetworkinfo")
        assert net["protocolversion"] == 70016 and net["connections"] == 0   # BIP339 wtxidrelay
        await c.call("setban", "10.1.2.3", "add")
        assert await err(c.call("setban", "10.1.2.3", "add")) == -23
        assert [b["address"] for b in await c.call("listbanned")] == ["10.1.2.3"]
        await c.call("clearbanned")
        assert await c.call("listbanned") == []
        assert await err(c.call("disconnectnode", "127.0.0.1:1")) == -29
        assert await c.call("setnetworkactive", False) is False
        assert (await c.call("getnetworkinfo"))["networkactive"] is False
        await c.call("setnetworkactive", True)


async def tcp_call(node, method, *params):
    import base64

    import aiohttp
    cookie = (node.node.network_dir / ".cookie").read_text()
    auth = {"Authorization": "Basic " + base64.b64encode(cookie.encode()).decode()}
    body = {"jsonrpc": "1.0", "id": 1, "method": method, "params": list(params)}
    async with aiohttp.ClientSession() as s:
        async with s.post(f"http://127.0.0.1:{node.node.rpc_port}/", json=body, headers=auth) as r:
            reply = await r.json()
    if reply["error"]:
        raise RPCError(reply["error"]["code"], reply["error"]["message"])
    return reply["result"]


async def test_raw_transaction_workflow_over_tcp_cookie_auth():
    async with running_nodes(1, txindex=True, rpc_port=0) as (a,):
        addr = await tcp_call(a, "getnewaddress")
        await tcp_call(a, "generatetoaddress", 101, addr)
        utxo = (await tcp_call(a, "listunspent"))[0]
        dest = await tcp_call(a, "getnewaddress")
        raw = await tcp_call(a, "createrawtransaction", [{"txid": utxo["txid"], "vout": utxo["vout"]}],
                             [{dest: 10}, {addr: 39.999}, {"data": "74696e796e6f6465"}])
        dec = await tcp_call(a, "decoderawtransaction", raw)
        assert dec["vout"][2]["scriptPubKey"]["type"] == "nulldata" and dec["vout"][2]["value"] == 0
        unsigned = await tcp_call(a, "signrawtransactionwithkey", raw, [])
        assert unsigned["complete"] is False and len(unsigned["errors"]) == 1
        signed = await tcp_call(a, "signrawtransactionwithwallet", raw)
        assert signed["complete"] is True
        test = await tcp_call(a, "testmempoolaccept", [signed["hex"]])
        assert test[0]["allowed"] is True and test[0]["fees"]["base"] == 0.001
        assert await tcp_call(a, "getrawmempool") == []          # only a test
        bad = await tcp_call(a, "testmempoolaccept", [raw])
        assert bad[0]["allowed"] is False and bad[0]["reject-reason"]
        wif = await tcp_call(a, "dumpprivkey", addr)
        assert (await tcp_call(a, "signrawtransactionwithkey", raw, [wif]))["hex"] == signed["hex"]
        txid = await tcp_call(a, "sendrawtransaction", signed["hex"])
        await tcp_call(a, "generatetoaddress", 1, addr)
        wtx = await tcp_call(a, "gettransaction", txid)
        assert wtx["confirmations"] == 1
        # a send with a data output through the wallet
        txid2 = await a.rpc.call("sendtoaddress", named={"address": dest, "amount": 1, "data": "cafe"})
        d2 = await a.rpc.call("getrawtransaction", txid2, True)
        assert any(v["scriptPubKey"]["hex"] == "6a02cafe" for v in d2["vout"])


async def test_generateblock_mines_chosen_txs():
    async with running_nodes(1, txindex=True) as (a,):
        addr = await a.rpc.call("getnewaddress")
        await a.rpc.call("generatetoaddress", 101, addr)
        t1 = await a.rpc.call("sendtoaddress", addr, 1)
        t2 = await a.rpc.call("sendtoaddress", addr, 2)
        raw2 = (await a.rpc.call("gettransaction", t2))["hex"]
        res = await a.rpc.call("generateblock", addr, [t1])
        block = await a.rpc.call("getblock", res["hash"])
        assert block["tx"][1:] == [t1] and await a.rpc.call("getrawmempool") == [t2]
        res = await a.rpc.call("generateblock", addr, [raw2], False)
        assert "hex" in res and await a.rpc.call("getblockcount") == 102
        assert await err(a.rpc.call("generateblock", addr, ["11" * 32])) == -5


async def test_generateblock_double_spend_race_then_reorg_marks_loser_conflicted():
    from tests.framework.nodes import connect_nodes, disconnect_nodes, reconnect_nodes, sync_blocks
    async with running_nodes(2, txindex=True) as (a, b):
        await connect_nodes(a, b)
        addr = await a.rpc.call("getnewaddress")
        await a.rpc.call("generatetoaddress", 101, addr)
        await sync_blocks([a, b])
        await disconnect_nodes(a, b)
        dest_a, dest_b = await a.rpc.call("getnewaddress"), await b.rpc.call("getnewaddress")
        t1 = await a.rpc.call("sendtoaddress", dest_a, 5)
        spent = (await a.rpc.call("decoderawtransaction", (await a.rpc.call("gettransaction", t1))["hex"]))["vin"][0]
        raw = await a.rpc.call("createrawtransaction", [{"txid": spent["txid"], "vout": spent["vout"]}],
                               {dest_b: 49.99})
        t2 = await a.rpc.call("signrawtransactionwithwallet", raw)
        assert t2["complete"]
        await a.rpc.call("generateblock", addr, [t1])
        await b.rpc.call("generateblock", dest_b, [t2["hex"]])
        await b.rpc.call("generatetoaddress", 1, dest_b)
        assert (await a.rpc.call("gettransaction", t1))["confirmations"] == 1
        await reconnect_nodes(a, b)
        await sync_blocks([a, b])
        w = await a.rpc.call("gettransaction", t1)
        assert w["confirmations"] == -1 and w["status"] == "conflicted"
        assert await b.rpc.call("getbalance") == 49.99          # the winner paid b
        # b's two coinbases: generateblock leaves t2's fee unclaimed (as Core), so exactly 2 x 50
        assert (await b.rpc.call("getbalances"))["mine"]["immature"] == 100


async def test_any_address_balance_from_the_script_index():
    async with running_nodes(1, txindex=True) as (a,):
        mine = await a.rpc.call("getnewaddress")
        await a.rpc.call("generatetoaddress", 101, mine)
        r = await a.rpc.call("getaddressbalance", mine)
        assert (r["confirmed"], r["immature"]) == (50, 5000)
        stranger = "mipcBbFg9gMiCh81Kj8tqqdgoZub1ZJRfn"
        await a.rpc.call("sendtoaddress", stranger, 2)
        r0 = await a.rpc.call("getaddressbalance", stranger, 0)
        r1 = await a.rpc.call("getaddressbalance", stranger)
        assert (r0["balance"], r0["pending_in"], r1["balance"]) == (2, 2, 0)
        r = await a.rpc.call("getaddressbalance", mine, 0)
        assert r["pending_out"] == 50 and r["balance"] == 0 and r["confirmed"] == 50
        await a.rpc.call("generatetoaddress", 1, mine)
        assert (await a.rpc.call("getaddressbalance", stranger))["balance"] == 2
        assert (await a.rpc.call("gettxstatus", "11" * 32))["status"] == "not found"
        assert await err(a.rpc.call("getaddressbalance", "bad")) == -5


async def test_busy_port_fails_run_cleanly(caplog):
    """`Node.run()` (what the daemon runs) on a P2P port already taken: raises NodeError naming
    the port and the fix, logs no error on the way down (parts stopped by the failed start are
    not stopped again), frees the lock and the RPC socket, and the datadir starts on another port."""
    import logging
    import shutil
    import socket

    from tests.framework.nodes import net_config, short_tmpdir, start_node
    from tinynode.config import NodeConfig
    from tinynode.node import Node, NodeError

    d = short_tmpdir()
    try:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen()
            port = s.getsockname()[1]
            node = Node(NodeConfig(datadir=d, network="regtest", port=port, bind="127.0.0.1"),
                        net_config=net_config())
            with caplog.at_level(logging.INFO, logger="tinynode"):
                with pytest.raises(NodeError) as e:
                    await node.run()
        assert f"cannot listen on 127.0.0.1:{port}" in str(e.value) and "--port" in str(e.value)
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
        t = await start_node(d)
        assert await t.rpc.call("getblockcount") == 0
        await t.stop(remove=False)
    finally:
        shutil.rmtree(d, ignore_errors=True)


async def test_stop_takes_cores_hidden_wait_argument():
    """Core's functional framework stops nodes with `stop(wait=0)`: the answer comes after
    `wait` milliseconds, and the node then shuts down; a wrong type is Core's -3."""
    import time
    async with running_nodes(1) as (a,):
        assert await err(a.rpc.call("stop", "soon")) == -3
        t0 = time.monotonic()
        assert await a.rpc.call("stop", named={"wait": 200}) == "tinynode stopping"
        assert time.monotonic() - t0 >= 0.2


async def test_getrawtransaction_of_the_genesis_coinbase_is_cores_error():
    """Core's rpc_rawtransaction checks this exact -5 message (the genesis coinbase is in no
    index and not spendable)."""
    async with running_nodes(1, txindex=True) as (a,):
        root = (await a.rpc.call("getblock", await a.rpc.call("getblockhash", 0)))["merkleroot"]
        with pytest.raises(RPCError) as e:
            await a.rpc.call("getrawtransaction", root)
        assert e.value.code == -5 and e.value.message == (
            "The genesis block coinbase is not considered an ordinary transaction and cannot be retrieved")
