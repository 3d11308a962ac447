"""Issue 9: a standard Bitcoin RPC client, python-bitcoinrpc's `AuthServiceProxy`, works unchanged
against `--rpc-port` with Core's cookie auth: the raw-transaction workflow end to end,
Core's error objects, and HTTP 401 for wrong or missing credentials.

AuthServiceProxy is synchronous (http.client), so each client session runs in a worker thread
(`asyncio.to_thread`) while the in-process node serves on the event loop."""
import asyncio
import http.client
import json
from decimal import Decimal

import pytest
from bitcoinrpc.authproxy import AuthServiceProxy, JSONRPCException

from tests.framework.nodes import running_nodes

pytestmark = pytest.mark.slow


def _url(node, cookie: str | None = None) -> str:
    cookie = cookie if cookie is not None else (node.node.network_dir / ".cookie").read_text()
    return f"http://{cookie}@127.0.0.1:{node.node.rpc_port}/"


def _raw_tx_workflow(url: str) -> dict:
    rpc = AuthServiceProxy(url, timeout=60)
    addr = rpc.getnewaddress()
    assert len(rpc.generatetoaddress(101, addr)) == 101
    assert rpc.getbalance() == Decimal("50.00000000")            # amounts arrive as Decimal
    utxo = rpc.listunspent()[0]
    assert utxo["amount"] == Decimal(50) and utxo["confirmations"] == 101
    dest = rpc.getnewaddress()
    raw = rpc.createrawtransaction([{"txid": utxo["txid"], "vout": utxo["vout"]}],
                                   [{dest: Decimal("12.5")}, {addr: Decimal("37.4999")},
                                    {"data": "74696e796e6f6465"}])
    signed = rpc.signrawtransactionwithwallet(raw)
    assert signed["complete"] is True and "errors" not in signed
    test = rpc.testmempoolaccept([signed["hex"]])
    assert len(test) == 1
    t = test[0]
    assert t["allowed"] is True and t["fees"]["base"] == Decimal("0.00010000")
    # the coin is P2WPKH (bech32 is the default address type): vsize is the BIP141 one, wtxid differs
    dec = rpc.decoderawtransaction(signed["hex"])
    assert t["vsize"] == dec["vsize"] < len(signed["hex"]) // 2 and t["txid"] != t["wtxid"] == dec["hash"]
    assert rpc.getrawmempool() == []                              # testmempoolaccept only tests
    txid = rpc.sendrawtransaction(signed["hex"])
    assert txid == t["txid"] and rpc.getrawmempool() == [txid]
    # Core's error object reaches the client: a conflicting spend paying less fee is no
    # replacement (BIP125 rule 3) → -26 with the reject reason
    try:
        rpc.sendrawtransaction(rpc.signrawtransactionwithwallet(
            rpc.createrawtransaction([{"txid": utxo["txid"], "vout": utxo["vout"]}],
                                     {dest: Decimal("49.99995")}))["hex"])
    except JSONRPCException as e:
        assert e.code == -26 and "insufficient fee" in e.message
    else:  # pragma: no cover
        raise AssertionError("double spend accepted")
    block_hash = rpc.generatetoaddress(1, addr)[0]
    wtx = rpc.gettransaction(txid)
    assert wtx["confirmations"] == 1 and wtx["blockhash"] == block_hash and wtx["blockheight"] == 102
    assert wtx["fee"] == Decimal("-0.00010000")
    out = rpc.gettxout(txid, 0)
    assert out["value"] == Decimal("12.5") and out["confirmations"] == 1 and out["coinbase"] is False
    assert out["scriptPubKey"]["address"] == dest and out["bestblock"] == block_hash
    assert rpc.gettxout(txid, 2) is None          # OP_RETURN: never in the UTXO set, as in Core
    assert rpc.getrawtransaction(txid, True)["vout"][2]["scriptPubKey"]["type"] == "nulldata"
    assert rpc.getblockcount() == 102 and rpc.getbestblockhash() == block_hash
    # (AuthServiceProxy.batch_ sends JSON-RPC 2.0 and expects an "error": null member in each
    # success; Core ≥ 28, like tinynode, omits it in 2.0 replies, so batch_ fails on both)
    try:
        rpc.getblockhash(1000)
    except JSONRPCException as e:
        assert (e.code, e.message) == (-8, "Block height out of range")
    else:  # pragma: no cover
        raise AssertionError("no error")
    try:
        rpc.nosuchmethod()
    except JSONRPCException as e:
        assert e.code == -32601
    else:  # pragma: no cover
        raise AssertionError("no error")
    return {"txid": txid}


def _status_without_auth(port: int, headers: dict) -> tuple[int, str | None]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        body = json.dumps({"method": "getblockcount", "params": [], "id": 1})
        conn.request("POST", "/", body, {"Content-Type": "application/json", **headers})
        r = conn.getresponse()
        r.read()
        return r.status, r.getheader("WWW-Authenticate")
    finally:
        conn.close()


async def test_authserviceproxy_raw_tx_workflow_over_tcp_cookie_auth():
    async with running_nodes(1, txindex=True, rpc_port=0) as (a,):
        cookie = (a.node.network_dir / ".cookie").read_text()
        assert cookie.startswith("__cookie__:") and len(cookie.split(":")[1]) == 64
        await asyncio.to_thread(_raw_tx_workflow, _url(a))


async def test_wrong_or_missing_credentials_get_http_401():
    async with running_nodes(1, txindex=True, rpc_port=0) as (a,):
        wrong = "__cookie__:" + "00" * 32

        def wrong_cookie() -> str:
            try:
                AuthServiceProxy(_url(a, wrong), timeout=30).getblockcount()
            except JSONRPCException as e:
                return e.message
            raise AssertionError("wrong cookie accepted")

        msg = await asyncio.to_thread(wrong_cookie)
        assert "401" in msg
        port = a.node.rpc_port
        assert await asyncio.to_thread(_status_without_auth, port, {}) == (401, 'Basic realm="jsonrpc"')
        import base64
        bad_user = "Basic " + base64.b64encode(b"alice:" + (a.node.network_dir / ".cookie").read_text()
                                               .split(":")[1].encode()).decode()
        status, _ = await asyncio.to_thread(_status_without_auth, port, {"Authorization": bad_user})
        assert status == 401
        # the right cookie still works on the same server
        assert await asyncio.to_thread(lambda: AuthServiceProxy(_url(a), timeout=30).getblockcount()) == 0
