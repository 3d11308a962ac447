"""ElectrumX 2.0.0 (PyPI `e-x`, the Electrum server), unmodified, indexing a tinynode regtest
node over Core's RPC, driven through the Electrum protocol as a wallet would (issue 20).

ElectrumX checks at start-up that its daemon reports Core >= 31.0 (getnetworkinfo `version`)
and a synced `txindex` and `txospenderindex` (getindexinfo); it then reads blocks with getblock
(raw), the mempool with getrawmempool/getrawtransaction, fees with estimatesmartfee and
outpoint spends with gettxspendingprevout, and broadcasts with sendrawtransaction and
submitpackage. Needs TINYNODE_ELECTRUMX (contrib/interop/install_electrumx.sh prints it);
skipped with that reason without it.
"""
from __future__ import annotations

import hashlib
import os
from decimal import Decimal

import pytest

from tests.framework.electrumx import ElectrumClient, ElectrumXServer
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
    t = await start_node(rpc_port=0)
    ex = None
    client: ElectrumClient | None = None
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

        # send: a tx signed by the wallet, broadcast through ElectrumX, reaches tinynode's mempool
        dest = await rpc.call("getnewaddress")
        rawtx = await rpc.call("createrawtransaction", [{"txid": txid, "vout": utxo["tx_pos"]}],
                               [{dest: 1.4999}])
        signed = await rpc.call("signrawtransactionwithwallet", rawtx)
        assert signed["complete"] is True
        sent = await client.call("blockchain.transaction.broadcast", signed["hex"])
        assert sent in await rpc.call("getrawmempool")

        # fees: ElectrumX asks estimatesmartfee; the relay fee is tinynode's
        fee = await client.call("blockchain.estimatefee", 2)
        assert isinstance(fee, (int, float))
        relay = await rpc.call("getnetworkinfo")
        assert Decimal(str(await client.call("blockchain.relayfee"))) == Decimal(str(relay["relayfee"]))

        # a reorg: tinynode drops block 102 for a longer branch; ElectrumX follows it
        await rpc.call("invalidateblock", h102)
        new = await rpc.call("generatetoaddress", 2, mine_addr)
        await wait_until(lambda: _tip_is(client, 103, new[-1]), 60)
        assert await client.call("blockchain.block.header", 102) != await _header_hex(rpc, h102)
    finally:
        if client is not None:
            await client.close()
        if ex is not None:
            ex.stop()
        await t.stop()


async def _confirmed(client: ElectrumClient, sh: str, amount: int) -> bool:
    return (await client.call("blockchain.scripthash.get_balance", sh))["confirmed"] == amount


async def _tip_is(client: ElectrumClient, height: int, block_hash: str) -> bool:
    tip = await client.call("blockchain.headers.subscribe")
    if tip["height"] != height:
        return False
    header = bytes.fromhex(tip["hex"])
    return hash_to_hex(hashlib.sha256(hashlib.sha256(header).digest()).digest()) == block_hash


async def _header_hex(rpc, block_hash: str) -> str:
    return await rpc.call("getblockheader", block_hash, False)
