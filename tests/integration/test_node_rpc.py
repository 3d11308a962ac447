"""Two in-process nodes on regtest driven over their RPC sockets: Core's wallet arithmetic
(maturity, fees, change), relay to the other node's mempool, tx status, error codes,
lock file, socket mode, restart, reorg → pending / conflicted."""
import os
import stat

import pytest

from tests.framework.nodes import (connect_nodes, disconnect_nodes, reconnect_nodes, running_nodes, start_node,
                                   sync_blocks)
from tests.framework.wait import wait_until
from tests.framework.rpcassert import sats
from tinynode.config import NodeConfig
from tinynode.node import Node, NodeError
from tinynode.primitives.address import decode_address
from tinynode.primitives.tx import COIN, Tx, TxIn, TxOut
from tinynode.rpc.protocol import RPCError

pytestmark = pytest.mark.slow


async def rpc_error(coro) -> RPCError:
    with pytest.raises(RPCError) as e:
        await coro
    return e.value


async def test_mine_send_relay_confirm_with_exact_balances():
    async with running_nodes(2, txindex=True) as (a, b):
        await connect_nodes(a, b)
        addr_a = await a.rpc.call("getnewaddress")
        await a.rpc.call("generatetoaddress", 101, addr_a)
        assert await a.rpc.call("getbalance") == 50
        bal = await a.rpc.call("getbalances")
        assert bal["mine"] == {"trusted": 50, "untrusted_pending": 0, "immature": 5000}
        await sync_blocks([a, b])
        assert await b.rpc.call("getblockcount") == 101

        addr_b = await b.rpc.call("getnewaddress")
        txid = await a.rpc.call("sendtoaddress", addr_b, 1.5)
        # relayed to node b's mempool; b sees it as untrusted pending
        async def in_b_mempool():
            return txid in await b.rpc.call("getrawmempool")
        await wait_until(in_b_mempool, 10)
        assert (await b.rpc.call("getbalances"))["mine"]["untrusted_pending"] == 1.5
        assert await b.rpc.call("getbalance") == 0
        st = await a.rpc.call("gettxstatus", txid)
        assert st["status"] == "mempool" and st["confirmations"] == 0

        wtx = await a.rpc.call("gettransaction", txid)
        fee = -sats(wtx["fee"])
        assert 0 < fee < 1000 and wtx["amount"] == -1.5 and wtx["confirmations"] == 0
        assert [d["category"] for d in wtx["details"]] == ["send"]

        await a.rpc.call("generatetoaddress", 1, addr_a)
        await sync_blocks([a, b])
        assert sats(await b.rpc.call("getbalance")) == sats(1.5)
        assert sats(await a.rpc.call("getbalance")) == sats(98.5) - fee
        st = await b.rpc.call("gettxstatus", txid)
        assert st["status"] == "confirmed" and st["confirmations"] == 1 and st["height"] == 102
        assert (await a.rpc.call("gettransaction", txid))["confirmations"] == 1
        utxo = await b.rpc.call("listunspent")
        assert [(u["txid"], u["amount"], u["confirmations"], u["address"]) for u in utxo] == [(txid, 1.5, 1, addr_b)]
        raw = await b.rpc.call("getrawtransaction", txid, True)
        assert raw["confirmations"] == 1 and raw["txid"] == txid
        assert any(v["scriptPubKey"].get("address") == addr_b and v["value"] == 1.5 for v in raw["vout"])


async def test_blockchain_rpcs_and_error_codes():
    async with running_nodes(1, txindex=True) as (a,):
        info = await a.rpc.call("getblockchaininfo")
        assert info["chain"] == "regtest" and info["blocks"] == 0
        genesis = "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206"
        assert await a.rpc.call("getbestblockhash") == genesis
        assert await a.rpc.call("getblockhash", 0) == genesis
        addr = await a.rpc.call("getnewaddress")
        hashes = await a.rpc.call("generatetoaddress", 2, addr)
        b1 = await a.rpc.call("getblock", hashes[0])
        assert b1["height"] == 1 and b1["confirmations"] == 2 and b1["previousblockhash"] == genesis
        assert b1["nextblockhash"] == hashes[1] and b1["nTx"] == 1 and len(b1["tx"]) == 1
        raw = await a.rpc.call("getblock", hashes[0], 0)
        assert isinstance(raw, str) and len(raw) == 2 * b1["size"]
        b2 = await a.rpc.call("getblock", hashes[0], 2)
        assert b2["tx"][0]["vout"][0]["scriptPubKey"]["address"] == addr
        assert b2["tx"][0]["vin"][0]["coinbase"]

        assert (await rpc_error(a.rpc.call("getblock", "00" * 32))).code == -5
        e = await rpc_error(a.rpc.call("getblock", "abc"))
        assert e.code == -8 and "length 64" in e.message
        assert (await rpc_error(a.rpc.call("getblockhash", 99))).code == -8
        assert (await rpc_error(a.rpc.call("nosuchmethod"))).code == -32601
        assert (await rpc_error(a.rpc.call("sendtoaddress", "notanaddress", 1))).code == -5
        assert (await rpc_error(a.rpc.call("sendtoaddress", addr, 1))).code == -6     # all immature
        assert (await rpc_error(a.rpc.call("sendtoaddress", addr, -1))).code == -3
        assert (await rpc_error(a.rpc.call("sendrawtransaction", "zz"))).code == -22
        assert (await rpc_error(a.rpc.call("getrawtransaction", "11" * 32))).code == -5
        assert (await rpc_error(a.rpc.call("gettransaction", "11" * 32))).code == -5
        assert (await rpc_error(a.rpc.call("generatetoaddress", 1, "bad"))).code == -5
        cb = b1["tx"][0]
        raw_cb = await a.rpc.call("getrawtransaction", cb)
        assert (await rpc_error(a.rpc.call("sendrawtransaction", raw_cb))).code in (-27, -26)
        assert "getblockchaininfo" in await a.rpc.call("help")
        h = await a.rpc.call("help", "getblock")
        assert h.startswith("getblock") and "Examples:" in h
        # named arguments
        assert await a.rpc.call("getblockhash", named={"height": 1}) == hashes[0]
        # Core's "args": positional arguments first, named ones after (the test framework's
        # node.getblock(hash, verbosity=2))
        b2 = await a.rpc.call("getblock", named={"args": [hashes[0]], "verbosity": 2})
        assert b2["hash"] == hashes[0] and isinstance(b2["tx"][0], dict)
        assert await a.rpc.call("getblock", named={"args": [hashes[0], 0]}) == await a.rpc.call("getblock", hashes[0], 0)
        e = await rpc_error(a.rpc.call("getblock", named={"args": [hashes[0]], "blockhash": hashes[0]}))
        assert (e.code, e.message) == (-8, "Parameter blockhash specified twice both as positional and named argument")


async def test_three_sends_from_one_coin_and_mempool_rejects():
    async with running_nodes(1, txindex=True) as (a,):
        addr = await a.rpc.call("getnewaddress")
        await a.rpc.call("generatetoaddress", 101, addr)
        other = await a.rpc.call("getnewaddress")
        txids = [await a.rpc.call("sendtoaddress", other, 1) for _ in range(3)]
        assert set(await a.rpc.call("getrawmempool")) == set(txids)
        # double spends of the first send's input: a cheaper one loses (no RBF: -26), one over
        # maxfeerate is refused before it can replace anything (Core's BroadcastTransaction:
        # a test accept, then the fee check, -25 "Fee exceeds maximum ...")
        tx1 = Tx.from_hex((await a.rpc.call("gettransaction", txids[0]))["hex"])
        w = a.node.wallet
        out = w.is_mine_output(tx1.vin[0].prevout)
        key = w.keys.private_key(out.script_pubkey)
        assert key is not None and out.script_pubkey[:2] == b"\x00\x14"   # a bech32 (P2WPKH) coin
        for value in (out.value - 100, 49 * COIN):
            unsigned = Tx(2, (TxIn(tx1.vin[0].prevout, b"", 0xFFFFFFFD),), (TxOut(value, out.script_pubkey),))
            ds = w.sign_inputs(unsigned, [out])
            e = await rpc_error(a.rpc.call("sendrawtransaction", ds.raw.hex()))
            if value == 49 * COIN:
                assert (e.code, e.message) == (-25, "Fee exceeds maximum configured by user "
                                                    "(e.g. -maxtxfee, maxfeerate)"), e
            else:
                assert e.code == -26, e
        assert set(await a.rpc.call("getrawmempool")) == set(txids)
        await a.rpc.call("generatetoaddress", 1, addr)
        for t in txids:
            assert (await a.rpc.call("gettransaction", t))["confirmations"] == 1
        e = await rpc_error(a.rpc.call("sendrawtransaction", (await a.rpc.call("gettransaction", txids[0]))["hex"]))
        assert (e.code, e.message) == (-27, "Transaction outputs already in utxo set")


async def test_lock_file_socket_mode_and_restart_restores_wallet():
    t = await start_node(txindex=True)
    try:
        assert stat.S_IMODE(os.stat(t.node.rpc_socket).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(t.datadir / "regtest" / "wallets" / "wallet.sqlite").st_mode) == 0o600
        second = Node(NodeConfig(datadir=t.datadir, network="regtest", port=0))
        with pytest.raises(NodeError, match="already running"):
            await second.start()
        # the first node is untouched
        addr = await t.rpc.call("getnewaddress")
        await t.rpc.call("generatetoaddress", 101, addr)
        other = await t.rpc.call("getnewaddress")
        txid = await t.rpc.call("sendtoaddress", other, 2)
        before = await t.rpc.call("getbalances")
        await t.restart()
        assert await t.rpc.call("getblockcount") == 101
        assert await t.rpc.call("getbalances") == before
        assert txid in await t.rpc.call("getrawmempool")          # re-sent from the wallet
        assert (await t.rpc.call("gettransaction", txid))["confirmations"] == 0
    finally:
        await t.stop()


async def test_reorg_returns_send_to_pending_then_conflicted():
    async with running_nodes(2, txindex=True) as (a, b):
        await connect_nodes(a, b)
        addr_a = await a.rpc.call("getnewaddress")
        await a.rpc.call("generatetoaddress", 101, addr_a)
        await sync_blocks([a, b])
        await disconnect_nodes(a, b)
        dest = await b.rpc.call("getnewaddress")
        txid = await a.rpc.call("sendtoaddress", dest, 5)
        tx1 = Tx.from_hex((await a.rpc.call("gettransaction", txid))["hex"])
        await a.rpc.call("generatetoaddress", 1, addr_a)
        assert (await a.rpc.call("gettransaction", txid))["confirmations"] == 1
        # on b's side of the partition the same coin pays someone else
        w = a.node.wallet
        prevout = tx1.vin[0].prevout
        out = w.is_mine_output(prevout)
        pay = decode_address(dest, a.node.params).script_pubkey
        unsigned = Tx(2, (TxIn(prevout, b"", 0xFFFFFFFD),), (TxOut(49 * COIN, pay),))
        ds = w.sign_inputs(unsigned, [out])
        await b.rpc.call("sendrawtransaction", ds.raw.hex(), 0)   # 0 = no fee-rate cap (Core)
        addr_b = await b.rpc.call("getnewaddress")
        await b.rpc.call("generatetoaddress", 3, addr_b)
        await reconnect_nodes(a, b)
        await sync_blocks([a, b])
        assert await a.rpc.call("getblockcount") == 104
        wtx = await a.rpc.call("gettransaction", txid)
        assert wtx["confirmations"] == -1 and wtx["status"] == "conflicted"
        assert (await a.rpc.call("gettxstatus", txid))["status"] == "conflicted"
        assert txid not in await a.rpc.call("getrawmempool")
