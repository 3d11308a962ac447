"""RPC getblocktemplate (BIP22/23/9/145, as Core v31's rpc/mining.cpp) on one in-process regtest
node: the template is the validation service's (the block the node then mines has the same
transactions, coinbase value and witness commitment); a block a miner assembles from the JSON
alone (BIP34 coinbase, default_witness_commitment output, the witness reserved value) passes as a
proposal and is accepted by submitblock; proposals are judged as Core's TestBlockValidity with
nothing stored; errors carry Core's codes and sentences."""

from dataclasses import replace

import pytest

from tests.framework.nodes import running_nodes
from tinynode.mining.template import coinbase_script_sig
from tinynode.mining.worker import grind
from tinynode.primitives.block import Block, BlockHeader, merkle_root
from tinynode.primitives.hashes import hex_to_hash
from tinynode.primitives.tx import NULL_OUTPOINT, SEQUENCE_FINAL, Tx, TxIn, TxOut
from tinynode.rpc.protocol import RPCError

pytestmark = pytest.mark.slow

SEGWIT = {"rules": ["segwit"]}


async def rpc_error(coro) -> tuple[int, str]:
    with pytest.raises(RPCError) as e:
        await coro
    return e.value.code, e.value.message


def block_from_template(t: dict, payout_spk: bytes, extranonce: int = 7, coinbase_value: int | None = None) -> Block:
    """What a pool's software does with a template: a BIP34 coinbase paying coinbasevalue, the
    default_witness_commitment output and the 32-byte zero witness reserved value, the template's
    transactions in order, a header at curtime, then a nonce ground to the target."""
    value = t["coinbasevalue"] if coinbase_value is None else coinbase_value
    outs = (TxOut(value, payout_spk), TxOut(0, bytes.fromhex(t["default_witness_commitment"])))
    cb = Tx(1, (TxIn(NULL_OUTPOINT, coinbase_script_sig(t["height"], extranonce), SEQUENCE_FINAL,
                     witness=(bytes(32),)),), outs, 0)
    txs = (cb,) + tuple(Tx.from_hex(x["data"]) for x in t["transactions"])
    root, _ = merkle_root([tx.txid for tx in txs])
    header = BlockHeader(t["version"], hex_to_hash(t["previousblockhash"]), root, t["curtime"],
                         int(t["bits"], 16), 0)
    nonce = grind(header.serialize()[:76], int(t["target"], 16), 0, 1 << 20)
    assert nonce is not None
    return Block(replace(header, nonce=nonce), txs)


def sigop_cost(raw: dict) -> int:
    """BIP141 sigop cost of a wallet tx from its decoded JSON: legacy CHECKSIGs (P2PKH/P2PK
    outputs, P2PKH scriptSigs carry none) × 4, plus one per P2WPKH input (its witness has 2 items)."""
    legacy = sum(1 for o in raw["vout"] if o["scriptPubKey"]["type"] in ("pubkeyhash", "pubkey"))
    witness = sum(1 for i in raw["vin"] if len(i.get("txinwitness", [])) == 2)
    return legacy * 4 + witness


async def fund_and_spend(c) -> tuple[str, list[str]]:
    addr = await c.call("getnewaddress")
    await c.call("generatetoaddress", 101, addr)
    t1 = await c.call("sendtoaddress", addr, 1)
    t2 = await c.call("sendtoaddress", addr, 2)   # spends t1's change: depends on it
    return addr, [t1, t2]


async def test_template_fields_and_the_block_the_node_mines_agree():
    async with running_nodes(1, txindex=True) as (a,):
        c = a.rpc
        addr, sent = await fund_and_spend(c)
        t = await c.call("getblocktemplate", SEGWIT)
        assert list(t) == ["capabilities", "version", "rules", "vbavailable", "vbrequired",
                           "previousblockhash", "transactions", "coinbaseaux", "coinbasevalue",
                           "longpollid", "target", "mintime", "mutable", "noncerange", "sigoplimit",
                           "sizelimit", "weightlimit", "curtime", "bits", "height",
                           "default_witness_commitment"]
        tip = await c.call("getbestblockhash")
        info = await c.call("getblockchaininfo")
        assert t["capabilities"] == ["proposal"] and t["version"] == 0x20000000
        assert t["rules"] == ["csv", "!segwit", "taproot"]
        assert t["vbavailable"] == {} and t["vbrequired"] == 0 and t["coinbaseaux"] == {}
        assert t["previousblockhash"] == tip and t["height"] == 102
        assert t["bits"] == "207fffff" and t["target"] == "7fffff" + "0" * 58
        assert t["mintime"] == info["mediantime"] + 1 and t["curtime"] >= t["mintime"]
        assert t["mutable"] == ["time", "transactions", "prevblock"] and t["noncerange"] == "00000000ffffffff"
        assert (t["sigoplimit"], t["sizelimit"], t["weightlimit"]) == (80000, 4000000, 4000000)
        assert t["longpollid"].startswith(tip) and t["longpollid"][64:].isdigit()
        assert [x["txid"] for x in t["transactions"]] == sent
        fees = 0
        for i, x in enumerate(t["transactions"]):
            entry = await c.call("getmempoolentry", x["txid"])
            raw = await c.call("getrawtransaction", x["txid"], True)
            assert x["hash"] == raw["hash"] == entry["wtxid"] and x["data"] == raw["hex"]
            assert x["weight"] == raw["weight"] == entry["weight"]
            assert x["fee"] == round(entry["fees"]["base"] * 1e8) > 0
            assert x["sigops"] == sigop_cost(raw) > 0
            fees += x["fee"]
        assert t["transactions"][0]["depends"] == [] and t["transactions"][1]["depends"] == [1]
        assert t["coinbasevalue"] == 50 * 10**8 + fees
        mined = (await c.call("generatetoaddress", 1, addr))[0]
        block = await c.call("getblock", mined, 2)
        assert [tx["txid"] for tx in block["tx"][1:]] == sent
        cb = block["tx"][0]
        assert cb["vout"][0]["value"] * 10**8 == pytest.approx(t["coinbasevalue"])
        assert cb["vout"][1]["scriptPubKey"]["hex"] == t["default_witness_commitment"]
        assert cb["vin"][0]["txinwitness"] == ["00" * 32]


async def test_a_block_assembled_from_the_template_passes_as_proposal_and_submitblock_accepts_it():
    async with running_nodes(1, txindex=True) as (a,):
        c = a.rpc
        addr, sent = await fund_and_spend(c)
        spk = bytes.fromhex((await c.call("validateaddress", addr))["scriptPubKey"])
        t = await c.call("getblocktemplate", SEGWIT)
        block = block_from_template(t, spk)
        hexdata = block.serialize().hex()
        tip = await c.call("getbestblockhash")
        assert await c.call("getblocktemplate", {"mode": "proposal", "data": hexdata}) is None
        assert await c.call("getbestblockhash") == tip      # nothing stored by a proposal
        assert await c.call("getblockcount") == 101
        with pytest.raises(RPCError):
            await c.call("getblockheader", block.hash_hex)
        # a coinbase claiming one satoshi more than coinbasevalue: Core's reject reason
        greedy = block_from_template(t, spk, coinbase_value=t["coinbasevalue"] + 1)
        assert await c.call("getblocktemplate", {"mode": "proposal", "data": greedy.serialize().hex()}) == "bad-cb-amount"
        # the proof of work is not checked in a proposal (check_pow=false), the merkle root is
        unground = Block(replace(block.header, nonce=block.header.nonce + 1), block.txs)
        assert await c.call("getblocktemplate", {"mode": "proposal", "data": unground.serialize().hex()}) in (None,)
        bad_root = Block(replace(block.header, merkle_root=bytes(32)), block.txs)
        assert await c.call("getblocktemplate", {"mode": "proposal", "data": bad_root.serialize().hex()}) == "bad-txnmrklroot"
        assert await c.call("submitblock", hexdata) is None
        assert await c.call("getbestblockhash") == block.hash_hex
        assert await c.call("getrawmempool") == []
        got = await c.call("getblock", block.hash_hex, 2)
        assert [tx["txid"] for tx in got["tx"][1:]] == sent
        # the block is now known and valid; the old template's block no longer builds on the tip
        assert await c.call("getblocktemplate", {"mode": "proposal", "data": hexdata}) == "duplicate"
        assert await c.call("getblocktemplate", {"mode": "proposal", "data": greedy.serialize().hex()}) == \
            "inconclusive-not-best-prevblk"


async def test_errors_as_core():
    async with running_nodes(1, txindex=True) as (a,):
        c = a.rpc
        need = (-8, 'getblocktemplate must be called with the segwit rule set (call with {"rules": ["segwit"]})')
        assert await rpc_error(c.call("getblocktemplate")) == need
        assert await rpc_error(c.call("getblocktemplate", {})) == need
        assert await rpc_error(c.call("getblocktemplate", {"rules": ["csv"]})) == need
        assert await rpc_error(c.call("getblocktemplate", {"mode": "x", "rules": ["segwit"]})) == (-8, "Invalid mode")
        assert await rpc_error(c.call("getblocktemplate", {"mode": 1})) == (-8, "Invalid mode")
        assert await rpc_error(c.call("getblocktemplate", {"mode": "proposal"})) == \
            (-3, "Missing data String key for proposal")
        assert await rpc_error(c.call("getblocktemplate", {"mode": "proposal", "data": "00zz"})) == \
            (-22, "Block decode failed")
        # on regtest (Core's isTestChain) no peers are needed; the genesis tip gives height 1
        t = await c.call("getblocktemplate", SEGWIT)
        assert t["height"] == 1 and t["transactions"] == []
        # a longpollid naming another tip answers at once
        t2 = await c.call("getblocktemplate", {"rules": ["segwit"], "longpollid": "00" * 32 + "0"})
        assert t2["previousblockhash"] == t["previousblockhash"]


async def test_getdeploymentinfo_states_tinynodes_buried_heights_and_script_flags():
    async with running_nodes(1, txindex=True) as (a,):
        c = a.rpc
        genesis = await c.call("getblockhash", 0)
        g = await c.call("getdeploymentinfo")
        assert g["hash"] == genesis and g["height"] == 0
        assert g["script_flags"] == ["NULLDUMMY", "P2SH", "TAPROOT", "WITNESS"]   # from genesis, as Core
        assert g["deployments"] == {
            "bip34": {"type": "buried", "active": True, "height": 1},
            "bip66": {"type": "buried", "active": True, "height": 1},
            "bip65": {"type": "buried", "active": True, "height": 1},
            "csv": {"type": "buried", "active": True, "height": 1},
            "segwit": {"type": "buried", "active": True, "height": 0},
            # Core regtest's BIP9 "testdummy": DEFINED through the first 144-block period
            "testdummy": {"type": "bip9", "active": False,
                          "bip9": {"start_time": 0, "timeout": 2**63 - 1, "min_activation_height": 0,
                                   "status": "defined", "since": 0, "status_next": "defined"}},
        }
        addr = await c.call("getnewaddress")
        h1 = (await c.call("generatetoaddress", 1, addr))[0]
        d = await c.call("getdeploymentinfo", h1)
        assert d["hash"] == h1 and d["height"] == 1
        assert d["script_flags"] == ["CHECKLOCKTIMEVERIFY", "CHECKSEQUENCEVERIFY", "DERSIG", "NULLDUMMY",
                                     "P2SH", "TAPROOT", "WITNESS"]
        assert await c.call("getdeploymentinfo", genesis) == g
        assert await rpc_error(c.call("getdeploymentinfo", "00" * 32)) == (-5, "Block not found")
        info = await c.call("getblockchaininfo")
        assert "softforks" not in info        # Core v31 moved them to getdeploymentinfo


async def test_bip9_testdummy_signals_from_the_second_period_as_core():
    """Core regtest: testdummy (bit 28) is STARTED from block 144, so templates (and the blocks
    mined from them) carry version 0x30000000 and show it in vbavailable; getdeploymentinfo
    counts the signalling blocks of the period."""
    async with running_nodes(1) as (a,):
        c = a.rpc
        addr = await c.call("getnewaddress")
        await c.call("generatetoaddress", 142, addr)
        t = await c.call("getblocktemplate", SEGWIT)
        assert (t["version"], t["vbavailable"], t["vbrequired"]) == (0x20000000, {}, 0)
        await c.call("generatetoaddress", 1, addr)                   # block 143 closes the period
        d = (await c.call("getdeploymentinfo"))["deployments"]["testdummy"]
        assert d["bip9"]["status"] == "defined" and d["bip9"]["status_next"] == "started"
        assert (await c.call("getblocktemplate", SEGWIT))["version"] == 0x30000000
        hashes = await c.call("generatetoaddress", 3, addr)          # blocks 144..146
        assert [(await c.call("getblockheader", h))["version"] for h in hashes] == [0x30000000] * 3
        t = await c.call("getblocktemplate", SEGWIT)
        assert (t["version"], t["vbavailable"], t["rules"]) == (0x30000000, {"testdummy": 28},
                                                                 ["csv", "!segwit", "taproot"])
        d = (await c.call("getdeploymentinfo"))["deployments"]["testdummy"]
        assert d == {"type": "bip9", "active": False,
                     "bip9": {"bit": 28, "start_time": 0, "timeout": 2**63 - 1, "min_activation_height": 0,
                              "status": "started", "since": 144, "status_next": "started",
                              "statistics": {"period": 144, "elapsed": 3, "count": 3, "threshold": 108,
                                             "possible": True},
                              "signalling": "###"}}
