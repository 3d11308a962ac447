"""RPC generateblock on one in-process regtest node: the block of exactly the given transactions
is built by mining/template.py, ground in the miner's worker pool (never in the daemon's
process), accepted by the chain; submit=false hands back hex that submitblock accepts; the
output may be an address or an addr()/raw() descriptor; errors carry Core's codes and sentences."""

import pytest

from tests.framework.nodes import running_nodes
from tinynode.mining.worker import grind
from tinynode.script.descriptor import add_checksum
from tinynode.rpc.protocol import RPCError

pytestmark = pytest.mark.slow


async def rpc_error(coro) -> tuple[int, str]:
    with pytest.raises(RPCError) as e:
        await coro
    return e.value.code, e.value.message


def record_pool_jobs(miner) -> list[tuple]:
    """Every job the miner's process pool is given, as (function, *args)."""
    pool = miner._ensure_pool()
    jobs: list[tuple] = []
    submit = pool.submit

    def recording_submit(fn, *args):
        jobs.append((fn, *args))
        return submit(fn, *args)
    pool.submit = recording_submit
    return jobs


async def test_generateblock_grinds_in_the_miner_pool_and_the_chain_accepts_it():
    async with running_nodes(1) as (a,):
        c, miner = a.rpc, a.node.miner
        addr = await c.call("getnewaddress")
        chunks = miner.chunks_sent
        await c.call("generatetoaddress", 101, addr)
        assert miner.chunks_sent >= chunks + 101        # generatetoaddress: the pool too
        t1 = await c.call("sendtoaddress", addr, 1)
        jobs = record_pool_jobs(miner)
        res = await c.call("generateblock", addr, [t1])
        assert set(res) == {"hash"}
        assert await c.call("getbestblockhash") == res["hash"]
        block = await c.call("getblock", res["hash"], 2)
        assert [tx["txid"] for tx in block["tx"][1:]] == [t1]
        assert block["height"] == 102 and block["confirmations"] == 1
        assert block["tx"][0]["vout"][0]["value"] == 50      # fees unclaimed, as Core's generateblock
        assert block["tx"][0]["vout"][0]["scriptPubKey"]["address"] == addr
        header = bytes.fromhex(await c.call("getblockheader", res["hash"], False))
        assert jobs and all(job[0] is grind for job in jobs)
        assert header[:76] in [job[1] for job in jobs]   # this block's header went to the pool
        assert await c.call("getrawmempool") == []
        assert (await c.call("gettransaction", t1))["confirmations"] == 1


async def test_generateblock_without_submit_returns_hex_that_submitblock_accepts():
    async with running_nodes(1) as (a,):
        c = a.rpc
        addr = await c.call("getnewaddress")
        await c.call("generatetoaddress", 101, addr)
        t1 = await c.call("sendtoaddress", addr, 2)
        raw = (await c.call("gettransaction", t1))["hex"]
        tip = await c.call("getbestblockhash")
        res = await c.call("generateblock", addr, [raw], False)
        assert set(res) == {"hash", "hex"}
        assert await c.call("getbestblockhash") == tip and await c.call("getrawmempool") == [t1]
        assert await c.call("submitblock", res["hex"]) is None
        assert await c.call("getbestblockhash") == res["hash"]
        assert await c.call("getrawmempool") == []
        assert await c.call("submitblock", res["hex"]) == "duplicate"
        # Core's ProcessNewBlock runs CheckBlock before looking the block or its parent up: an
        # empty block (null header, no txs) fails its proof of work; a known block with a
        # broken merkle root fails that, not "duplicate"
        assert await c.call("submitblock", "00" * 81) == "high-hash"
        blk = bytearray.fromhex(res["hex"])
        blk[80 + 1 + 10] ^= 1           # a byte of the coinbase: the merkle root no longer matches
        assert await c.call("submitblock", blk.hex()) == "bad-txnmrklroot"


async def test_generateblock_output_descriptors_and_empty_blocks():
    async with running_nodes(1) as (a,):
        c = a.rpc
        addr = await c.call("getnewaddress")
        spk = (await c.call("validateaddress", addr))["scriptPubKey"]
        for output, want in ((f"addr({addr})", spk), (add_checksum(f"addr({addr})"), spk),
                             ("raw(51)", "51"), (add_checksum("raw(6a02cafe)"), "6a02cafe")):
            res = await c.call("generateblock", output, [])
            block = await c.call("getblock", res["hash"], 2)
            assert len(block["tx"]) == 1
            assert block["tx"][0]["vout"][0]["scriptPubKey"]["hex"] == want, output
        assert await c.call("getblockcount") == 4
        bad = "Error: Invalid address or descriptor"
        for output in ("nope", "raw(zz)", f"addr({addr})#aaaaaaaa", "pkh(00)", f"addr(x{addr})"):
            assert await rpc_error(c.call("generateblock", output, [])) == (-5, bad), output
        assert await c.call("getblockcount") == 4


async def test_generateblock_errors_are_cores():
    async with running_nodes(1) as (a,):
        c = a.rpc
        addr = await c.call("getnewaddress")
        await c.call("generatetoaddress", 1, addr)
        tip = await c.call("getbestblockhash")
        assert await rpc_error(c.call("generateblock", addr, ["11" * 32])) == (
            -5, f"Transaction {'11' * 32} not in mempool.")
        assert await rpc_error(c.call("generateblock", addr, ["zz"])) == (
            -22, "Transaction decode failed for zz. Make sure the tx has at least one input.")
        assert (await rpc_error(c.call("generateblock", 5, [])))[0] == -3
        assert (await rpc_error(c.call("generateblock", addr, "00")))[0] == -3
        # a transaction spending a coin nobody has: refused before grinding, with Core's
        # BlockValidationState::ToString ("reason, debug message")
        raw = await c.call("createrawtransaction", [{"txid": "22" * 32, "vout": 0}], {addr: 1})
        txid = (await c.call("decoderawtransaction", raw))["txid"]
        assert await rpc_error(c.call("generateblock", addr, [raw])) == (
            -25, "TestBlockValidity failed: bad-txns-inputs-missingorspent, "
                 f"CheckTxInputs: inputs missing/spent in transaction {txid}")
        assert await c.call("getbestblockhash") == tip
        assert [t["status"] for t in await c.call("getchaintips")] == ["active"]   # nothing stored


async def test_submitblock_fills_in_the_default_witness_nonce():
    """Core UpdateUncommittedBlockStructures: a block whose coinbase commits to the witnesses
    but carries no reserved value gets the default (32 zero bytes) before it is checked."""
    from dataclasses import replace as dc_replace

    from tinynode.primitives.block import Block
    from tinynode.primitives.tx import Tx
    async with running_nodes(1) as (a,):
        c = a.rpc
        addr = await c.call("getnewaddress")
        res = await c.call("generateblock", addr, [], False)
        block = Block.from_bytes(bytes.fromhex(res["hex"]))
        cb = block.txs[0]
        assert cb.vin[0].witness == (bytes(32),)
        bare = Tx(cb.version, (dc_replace(cb.vin[0], witness=()),), cb.vout, cb.locktime)
        stripped = Block(block.header, (bare,))
        assert stripped.hash == block.hash and stripped.serialize() != block.serialize()
        assert await c.call("submitblock", stripped.serialize().hex()) is None
        assert await c.call("getbestblockhash") == res["hash"]
