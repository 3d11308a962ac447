"""ElectrumX 2.0.0 (PyPI `e-x`, the Electrum server), unmodified, indexing a tinynode regtest
node over Core's RPC, driven through the Electrum protocol as a wallet would (issue 20).

ElectrumX checks at start-up that its daemon reports Core >= 31.0 (getnetworkinfo `version`)
and a synced `txindex` and `txospenderindex` (getindexinfo; tinynode runs with --txindex
and --txospenderindex); it then reads blocks with getblock (raw), the mempool with
getrawmempool/getrawtransaction, fees with estimatesmartfee and outpoint spends with
gettxspendingprevout, and broadcasts with sendrawtransaction and submitpackage. A second session
speaks protocol 1.7 for `blockchain.outpoint.subscribe` / `get_status` (an outpoint funded,
spent in the mempool, spent in a block, moved by a reorg) and 1.6's
`blockchain.transaction.broadcast_package`. Needs TINYNODE_ELECTRUMX
(contrib/interop/install_electrumx.sh prints it); skipped with that reason without it.
"""
from __future__ import annotations

import hashlib
import os
from decimal import Decimal

import pytest

from tests.framework.electrumx import ElectrumClient, ElectrumError, ElectrumXServer
from tests.framework.nodes import short_tmpdir, start_node
from tests.framework.wait import wait_until
from tinynode.lab import free_port
from tinynode.primitives.address import decode_address
from tinynode.primitives.hashes import hash_to_hex

pytestmark = pytest.mark.slow

SERVER = os.environ.get("TINYNODE_ELECTRUMX", "")
if not SERVER:
    pytest.skip("ElectrumX not installed: set TINYNODE_ELECTRUMX (contrib/interop/install_electrumx.sh)",
                allow_module_level=True)


def scripthash(script_pubkey: bytes) -> str:
    """Electrum's script hash: sha256 of the output script, byte-reversed, hex."""
    return hashlib.sha256(script_pubkey).digest()[::-1].hex()


async def test_electrumx_indexes_tinynode_through_a_wallet_flow():
    t = await start_node(rpc_port=0, txindex=True, txospenderindex=True)
    ex = None
    client: ElectrumClient | None = None
    client17: ElectrumClient | None = None
    try:
        rpc = t.rpc
        mine_addr = await rpc.call("getnewaddress")
        await rpc.call("generatetoaddress", 101, mine_addr)
        cookie = t.node.config.rpc_cookie_path.read_text().strip()
        ex = ElectrumXServer(SERVER, short_tmpdir("ex"), f"http://{cookie}@127.0.0.1:{t.node.rpc_port}/",
                             free_port(), free_port())
        client = await ex.wait_serving()

        # the handshake and the chain as ElectrumX sees it, header for header
        assert (await client.call("server.version", "tinynode-test", "1.4"))[1] == "1.4"
        tip = await client.call("blockchain.headers.subscribe")
        assert tip["height"] == 101
        assert tip["hex"] == await rpc.call("getblockheader", await rpc.call("getblockhash", 101), False)
        hdr7 = await client.call("blockchain.block.header", 7)
        assert hdr7 == await rpc.call("getblockheader", await rpc.call("getblockhash", 7), False)

        # receive: a wallet address is paid; the subscription fires in the mempool, then confirmed
        addr = await rpc.call("getnewaddress")
        spk = decode_address(addr, t.node.params).script_pubkey
        sh = scripthash(spk)
        assert await client.call("blockchain.scripthash.subscribe", sh) is None
        txid = await rpc.call("sendtoaddress", addr, 1.5)
        status = await client.next_notification("blockchain.scripthash.subscribe", timeout=30)
        assert status[0] == sh and status[1] is not None
        bal = await client.call("blockchain.scripthash.get_balance", sh)
        assert bal == {"confirmed": 0, "unconfirmed": 150_000_000}
        assert [m["tx_hash"] for m in await client.call("blockchain.scripthash.get_mempool", sh)] == [txid]

        [h102] = await rpc.call("generatetoaddress", 1, mine_addr)
        note = await client.next_notification("blockchain.headers.subscribe", timeout=30)
        assert note[0]["height"] == 102
        await wait_until(lambda: _confirmed(client, sh, 150_000_000), 30)
        hist = await client.call("blockchain.scripthash.get_history", sh)
        assert hist == [{"tx_hash": txid, "height": 102}]
        [utxo] = await client.call("blockchain.scripthash.listunspent", sh)
        assert utxo["tx_hash"] == txid and utxo["value"] == 150_000_000 and utxo["height"] == 102
        raw = await client.call("blockchain.transaction.get", txid)
        assert raw == await rpc.call("getrawtransaction", txid)
        merkle = await client.call("blockchain.transaction.get_merkle", txid, 102)
        assert merkle["block_height"] == 102
        assert await client.call("blockchain.transaction.id_from_pos", 102, merkle["pos"]) == txid

        # protocol 1.7 in a second session: an outpoint's status, funded and unspent in block 102
        # (ElectrumX asks getrawtransaction, then gettxspendingprevout with mempool_only=false)
        client17 = await ElectrumClient.connect(ex.tcp_port)
        assert (await client17.call("server.version", "tinynode-test", "1.7"))[1] == "1.7"
        txo = (txid, utxo["tx_pos"], spk.hex())
        assert await client17.call("blockchain.outpoint.subscribe", *txo) == {"funder_height": 102}

        # send: a tx signed by the wallet, broadcast through ElectrumX, reaches tinynode's mempool
        dest = await rpc.call("getnewaddress")
        rawtx = await rpc.call("createrawtransaction", [{"txid": txid, "vout": utxo["tx_pos"]}],
                               [{dest: 1.4999}])
        signed = await rpc.call("signrawtransactionwithwallet", rawtx)
        assert signed["complete"] is True
        sent = await client.call("blockchain.transaction.broadcast", signed["hex"])
        assert sent in await rpc.call("getrawmempool")
        # the outpoint subscription fires: spent in the mempool (height 0: confirmed parents)
        in_mempool = {"funder_height": 102, "spender_txhash": sent, "spender_height": 0}
        note = await client17.next_notification("blockchain.outpoint.subscribe", timeout=30)
        assert note == [txid, utxo["tx_pos"], in_mempool]
        assert await client17.call("blockchain.outpoint.get_status", *txo) == in_mempool

        # fees: ElectrumX asks estimatesmartfee; the relay fee is tinynode's
        fee = await client.call("blockchain.estimatefee", 2)
        assert isinstance(fee, (int, float))
        relay = await rpc.call("getnetworkinfo")
        assert Decimal(str(await client.call("blockchain.relayfee"))) == Decimal(str(relay["relayfee"]))

        # the spend confirms in block 103: only tinynode's spender index (txospenderindex) can
        # tell ElectrumX where, through gettxspendingprevout's blockhash
        [h103] = await rpc.call("generatetoaddress", 1, mine_addr)
        in_103 = {"funder_height": 102, "spender_txhash": sent, "spender_height": 103}
        assert await client17.next_notification("blockchain.outpoint.subscribe", timeout=30) == \
            [txid, utxo["tx_pos"], in_103]
        assert await client17.call("blockchain.outpoint.get_status", *txo) == in_103
        assert await rpc.call("gettxspendingprevout", [{"txid": txid, "vout": utxo["tx_pos"]}]) == \
            [{"txid": txid, "vout": utxo["tx_pos"], "spendingtxid": sent, "blockhash": h103}]

        # a reorg: tinynode drops blocks 102 and 103 for a longer branch (mined to another
        # address: the same template in the same second would be the invalidated block again);
        # ElectrumX follows it, and both txs, back from the mempool, confirm in the new block 102
        await rpc.call("invalidateblock", h102)
        new = await rpc.call("generatetoaddress", 3, await rpc.call("getnewaddress"))
        await wait_until(lambda: _tip_is(client, 104, new[-1]), 60)
        assert await client.call("blockchain.block.header", 102) != await _header_hex(rpc, h102)
        in_new_102 = {"funder_height": 102, "spender_txhash": sent, "spender_height": 102}
        await wait_until(lambda: _outpoint_status_is(client17, txo, in_new_102), 30)

        # a package: a parent paying no fee and a child paying for both (CPFP), broadcast with
        # protocol 1.6+'s blockchain.transaction.broadcast_package (ElectrumX calls submitpackage)
        coin = next(u for u in await rpc.call("listunspent") if u["amount"] == 50)
        pkg_addr = await rpc.call("getnewaddress")
        p_raw = await rpc.call("createrawtransaction", [{"txid": coin["txid"], "vout": coin["vout"]}],
                               [{pkg_addr: 50}])
        parent = (await rpc.call("signrawtransactionwithwallet", p_raw))["hex"]
        p_dec = await rpc.call("decoderawtransaction", parent)
        c_raw = await rpc.call("createrawtransaction", [{"txid": p_dec["txid"], "vout": 0}],
                               [{pkg_addr: 49.9999}])
        child = (await rpc.call("signrawtransactionwithwallet", c_raw, [
            {"txid": p_dec["txid"], "vout": 0, "scriptPubKey": p_dec["vout"][0]["scriptPubKey"]["hex"],
             "amount": 50}]))["hex"]
        c_txid = (await rpc.call("decoderawtransaction", child))["txid"]
        with pytest.raises(ElectrumError):          # the parent alone is below the min relay fee
            await client17.call("blockchain.transaction.broadcast", parent)
        assert await client17.call("blockchain.transaction.broadcast_package", [parent, child]) == \
            {"success": True}
        assert set(await rpc.call("getrawmempool")) == {p_dec["txid"], c_txid}
    finally:
        for c in (client17, client):
            if c is not None:
                await c.close()
        if ex is not None:
            ex.stop()
        await t.stop()


async def _confirmed(client: ElectrumClient, sh: str, amount: int) -> bool:
    return (await client.call("blockchain.scripthash.get_balance", sh))["confirmed"] == amount


async def _outpoint_status_is(client: ElectrumClient, txo: tuple, want: dict) -> bool:
    return await client.call("blockchain.outpoint.get_status", *txo) == want


async def _tip_is(client: ElectrumClient, height: int, block_hash: str) -> bool:
    tip = await client.call("blockchain.headers.subscribe")
    if tip["height"] != height:
        return False
    header = bytes.fromhex(tip["hex"])
    return hash_to_hex(hashlib.sha256(hashlib.sha256(header).digest()).digest()) == block_hash


async def _header_hex(rpc, block_hash: str) -> str:
    return await rpc.call("getblockheader", block_hash, False)
