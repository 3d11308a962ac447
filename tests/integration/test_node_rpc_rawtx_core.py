"""Raw-transaction RPCs as Core v31 answers them (rpc_rawtransaction.py, mempool_accept.py):
createrawtransaction's argument checks and `version`, a JSON object repeating a key,
decoderawtransaction's `iswitness`, sendrawtransaction's maxburnamount / maxfeerate and
testmempoolaccept's argument checks."""
import json

import pytest

from tests.framework.nodes import running_nodes
from tinynode.primitives.tx import Tx, TxOut
from tinynode.rpc.protocol import RPCError

TXID = "1d1d4e24ed99057e84c3f80fd8fbec79ed9e1acee37da269356ecea000000000"


async def error(coro) -> tuple[int, str]:
    with pytest.raises(RPCError) as e:
        await coro
    return e.value.code, e.value.message


async def test_createrawtransaction_checks_and_version():
    async with running_nodes(1) as (a,):
        c = a.rpc
        addr = await c.call("getnewaddress")
        for v in (0, 4):
            assert await error(c.call("createrawtransaction", [], {}, 0, False, v)) == \
                (-8, "Invalid parameter, version out of range(1~3)")
        for v in (1, 2, 3):
            raw = await c.call("createrawtransaction", [{"txid": TXID, "vout": 9}], {addr: 1}, 0, False, v)
            assert Tx.from_hex(raw).version == v
        assert Tx.from_hex(await c.call("createrawtransaction", [], {})).version == 2
        assert await error(c.call("createrawtransaction", "foo", {})) == \
            (-3, "JSON value of type string is not of expected type array")
        assert await error(c.call("createrawtransaction", ["foo"], {})) == \
            (-3, "JSON value of type string is not of expected type object")
        assert await error(c.call("createrawtransaction", [{}], {})) == \
            (-3, "JSON value of type null is not of expected type string")
        assert (await error(c.call("createrawtransaction", [{"txid": TXID, "vout": "x"}], {})))[0] == -8
        assert await error(c.call("createrawtransaction", [], "foo")) == \
            (-3, "JSON value of type string is not of expected type array")
        assert await error(c.call("createrawtransaction", [], {"foo": 0})) == (-5, "Invalid Bitcoin address: foo")
        assert await error(c.call("createrawtransaction", [], [["x"]])) == \
            (-8, "Invalid parameter, key-value pair not an object as expected")
        assert await error(c.call("createrawtransaction", [], {}, "foo")) == \
            (-3, "JSON value of type string is not of expected type number")
        assert await error(c.call("createrawtransaction", [], {}, 0, "foo")) == \
            (-3, "JSON value of type string is not of expected type bool")
        assert (await error(c.call("createrawtransaction", [{"txid": TXID, "vout": 0, "sequence": 0xFFFFFFFE}],
                                   {}, 0, True)))[1] == \
            "Invalid parameter combination: Sequence number(s) contradict replaceable option"
        # a JSON object that repeats a key: Core's UniValue keeps both pairs
        body = ('{"jsonrpc": "1.0", "id": 1, "method": "createrawtransaction", "params": '
                f'[[], {{"{addr}": 1, "{addr}": 1}}]}}').encode()
        _, reply = await c.post(None, raw=body)
        assert reply["error"] == {"code": -8, "message": f"Invalid parameter, duplicated address: {addr}"}
        body = (b'{"jsonrpc": "1.0", "id": 1, "method": "createrawtransaction", "params": '
                b'[[], {"data": "aa", "data": "bb"}]}')
        _, reply = await c.post(None, raw=body)
        assert reply["error"] == {"code": -8, "message": "Invalid parameter, duplicate key: data"}
        assert json.loads(body)["params"][1] == {"data": "bb"}     # what a plain dict would see


async def test_decoderawtransaction_iswitness():
    async with running_nodes(1) as (a,):
        c = a.rpc
        witness = ("010000000001010000000000000072c1a6a246ae63f74f931e8365e15a089c68d61900000000000000000000"
                   "ffffffff0100e1f50500000000000102616100000000")
        assert (await c.call("decoderawtransaction", witness, True))["vout"][0]["value"] == 1
        assert await error(c.call("decoderawtransaction", witness, False)) == (-22, "TX decode failed")
        legacy = ("01000000010000000000000072c1a6a246ae63f74f931e8365e15a089c68d61900000000000000000000"
                  "ffffffff0100e1f505000000000000000000")
        assert (await c.call("decoderawtransaction", legacy, False))["vout"][0]["value"] == 1
        # no inputs: legacy only (the extended decoding reads 00 01 as marker and flag)
        empty = Tx(2, (), (TxOut(5, b"\x51"),), 0)
        base = "02000000" + "00" + "01" + "0500000000000000" + "0151" + "00000000"
        assert empty.txid_hex == (await c.call("decoderawtransaction", base))["txid"]


async def test_sendrawtransaction_burn_and_fee_limits_and_testmempoolaccept_args():
    async with running_nodes(1) as (a,):
        c = a.rpc
        addr = await c.call("getnewaddress")
        await c.call("generatetoaddress", 101, addr)
        utxo = next(u for u in await c.call("listunspent") if u["amount"] == 50)
        dest = await c.call("getnewaddress")

        async def signed(outputs) -> str:
            raw = await c.call("createrawtransaction", [{"txid": utxo["txid"], "vout": utxo["vout"]}], outputs)
            return (await c.call("signrawtransactionwithwallet", raw))["hex"]
        burn = await signed([{dest: 49.99}, {"data": "00" * 30}])
        tx = Tx.from_hex(burn)
        # an OP_RETURN output with value: make one by hand
        burn_tx = Tx(tx.version, tx.vin, (tx.vout[0], TxOut(1000, tx.vout[1].script_pubkey)), tx.locktime)
        assert await error(c.call("sendrawtransaction", burn_tx.raw.hex())) == \
            (-25, "Unspendable output exceeds maximum configured by user (maxburnamount)")
        assert await error(c.call("sendrawtransaction", burn, 1)) == \
            (-8, "Fee rates larger than or equal to 1BTC/kvB are not accepted")
        costly = await signed({dest: 49})
        assert await error(c.call("sendrawtransaction", costly)) == \
            (-25, "Fee exceeds maximum configured by user (e.g. -maxtxfee, maxfeerate)")
        assert (await c.call("testmempoolaccept", [costly]))[0]["reject-reason"] == "max-fee-exceeded"
        assert await c.call("sendrawtransaction", costly, 0) == Tx.from_hex(costly).txid_hex
        assert await error(c.call("testmempoolaccept", "ff00baar")) == \
            (-3, "JSON value of type string is not of expected type array")
        assert await error(c.call("testmempoolaccept", [])) == \
            (-8, "Array must contain between 1 and 25 transactions.")
        assert (await error(c.call("testmempoolaccept", ["ff00baar"])))[0] == -22
        assert await c.call("getrawmempool") == [Tx.from_hex(costly).txid_hex]


async def test_prioritisetransaction_and_getprioritisedtransactions():
    async with running_nodes(1) as (a,):
        c = a.rpc
        addr = await c.call("getnewaddress")
        await c.call("generatetoaddress", 101, addr)
        txid = await c.call("sendtoaddress", await c.call("getnewaddress"), 1)
        base = (await c.call("getmempoolentry", txid))["fees"]["base"]
        ghost = "11" * 32
        assert await c.call("prioritisetransaction", ghost, None, 500) is True
        assert await c.call("prioritisetransaction", txid, named={"txid": txid, "fee_delta": 10_000}) is True
        got = await c.call("getprioritisedtransactions")
        assert got[ghost] == {"fee_delta": 500, "in_mempool": False}
        assert got[txid]["fee_delta"] == 10_000 and got[txid]["in_mempool"] is True
        fees = (await c.call("getmempoolentry", txid))["fees"]
        assert round((fees["modified"] - fees["base"]) * 10**8) == 10_000 and fees["base"] == base
        assert await error(c.call("prioritisetransaction", txid, 1, 10)) == \
            (-8, "Priority is no longer supported, dummy argument to prioritisetransaction must be 0.")
        assert (await error(c.call("prioritisetransaction", txid, 0, "x")))[0] == -3
        await c.call("generatetoaddress", 1, addr)
        assert txid not in await c.call("getprioritisedtransactions")
