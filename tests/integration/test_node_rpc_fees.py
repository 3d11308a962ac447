"""Issue 20: estimatesmartfee / estimaterawfee from what the node saw confirm, kept across a
restart; gettxspendingprevout (mempool spenders, as Core v31 without -txospenderindex);
submitpackage with a parent below the min relay fee and a child paying for both (CPFP)."""
from decimal import Decimal

import pytest

from tests.framework.nodes import running_nodes
from tests.framework.rpcassert import rpc_error as err, sats

pytestmark = pytest.mark.slow

SAT = Decimal(100_000_000)


async def test_estimatesmartfee_from_confirmed_blocks_and_after_restart():
    async with running_nodes(1) as (a,):
        call = a.rpc.call
        addr = await call("getnewaddress")
        await call("generatetoaddress", 101, addr)
        assert await call("estimatesmartfee", 6) == {"errors": ["Insufficient data or no feerate found"],
                                                     "blocks": 0}
        assert await err(call("estimatesmartfee", 0)) == (-8, "Invalid conf_target, must be between 1 and 1008")
        assert await err(call("estimatesmartfee", 1009)) == (-8, "Invalid conf_target, must be between 1 and 1008")
        assert await err(call("estimatesmartfee", 2, "fast")) == \
            (-8, 'Invalid estimate_mode parameter, must be one of: "unset", "economical", "conservative"')
        # 20 blocks, each confirming one wallet send at 20 sat/vB that entered at the tip
        rates = []
        for _ in range(20):
            txid = await call("sendtoaddress", await call("getnewaddress"), 1, "", "", False, True,
                              None, "unset", None, 20)
            e = await call("getmempoolentry", txid)
            fee, vsize = sats(e["fees"]["base"]), e["vsize"]
            # 20 sat/vB of the wallet's size estimate, which may be one vbyte over the signed
            # size (wallet/coinselect.py: 72-byte signatures, as Core's DUMMY_SIGNATURE_CREATOR;
            # a real one is 71 or 72 bytes)
            assert 20 * vsize <= fee <= 20 * (vsize + 1), (fee, vsize)
            rates.append(fee * 1000 // vsize)
            await call("generatetoaddress", 1, addr)
        # sat/kvB; the estimate is the decayed average of the bucket's txs
        lo, hi = min(rates), max(rates)
        want = await call("estimatesmartfee", 2)
        assert want["blocks"] == 2 and lo <= sats(want["feerate"]) <= hi
        assert await call("estimatesmartfee", 1) == want          # 1 is answered as 2, as Core
        assert await call("estimatesmartfee", 2, "conservative") == want
        assert (await call("estimatesmartfee", 50))["blocks"] == 9    # (120 - 102) // 2
        raw = await call("estimaterawfee", 1)
        assert list(raw) == ["short", "medium", "long"]
        assert raw["short"]["feerate"] == want["feerate"] and raw["short"]["decay"] == 0.962
        assert raw["short"]["scale"] == 1 and raw["short"]["pass"]["startrange"] < lo <= hi <= raw["short"]["pass"]["endrange"]
        assert raw["long"]["scale"] == 24
        assert list(await call("estimaterawfee", 13)) == ["medium", "long"]
        assert await err(call("estimaterawfee", 2, 1.5)) == (-8, "Invalid threshold")

        await a.restart()
        call = a.rpc.call
        assert (a.datadir / "regtest" / "fee_estimates.json").exists()
        # as Core: the saved history counts again once the next block is seen
        await call("generatetoaddress", 1, addr)
        assert await call("estimatesmartfee", 2) == want


async def test_gettxspendingprevout_reports_mempool_spenders():
    async with running_nodes(1) as (a,):
        call = a.rpc.call
        addr = await call("getnewaddress")
        await call("generatetoaddress", 101, addr)
        txid = await call("sendtoaddress", await call("getnewaddress"), 1)
        tx = await call("getrawtransaction", txid, True)
        spent = tx["vin"][0]
        free = {"txid": txid, "vout": 0}
        got = await call("gettxspendingprevout", [{"txid": spent["txid"], "vout": spent["vout"]}, free])
        assert got == [{"txid": spent["txid"], "vout": spent["vout"], "spendingtxid": txid}, free]
        with_tx = await call("gettxspendingprevout", [{"txid": spent["txid"], "vout": spent["vout"]}],
                             {"return_spending_tx": True})
        assert with_tx[0]["spendingtx"] == await call("getrawtransaction", txid)
        assert await err(call("gettxspendingprevout", [free], {"mempool_only": False})) == \
            (-1, "Mempool lacks a relevant spend, and txospenderindex is unavailable.")
        assert await err(call("gettxspendingprevout", [])) == (-8, "Invalid parameter, outputs are missing")
        assert await err(call("gettxspendingprevout", [{"txid": txid, "vout": -1}])) == \
            (-8, "Invalid parameter, vout cannot be negative")
        assert await err(call("gettxspendingprevout", [{"txid": txid}])) == (-3, "Missing vout")
        assert await err(call("gettxspendingprevout", [{"txid": txid, "vout": 0, "x": 1}])) == \
            (-3, "Unexpected key x")
        # once mined, the mempool no longer knows the spend
        await call("generatetoaddress", 1, addr)
        assert await call("gettxspendingprevout", [{"txid": spent["txid"], "vout": spent["vout"]}]) == \
            [{"txid": spent["txid"], "vout": spent["vout"]}]


async def test_submitpackage_cpfp_as_core():
    async with running_nodes(1) as (a,):
        call = a.rpc.call
        addr = await call("getnewaddress")
        await call("generatetoaddress", 101, addr)
        utxo = next(u for u in await call("listunspent") if u["amount"] == 50)
        value = sats(utxo["amount"])
        mine = await call("getnewaddress")
        # parent pays no fee; child pays 2000 sat for both
        p_raw = await call("createrawtransaction", [{"txid": utxo["txid"], "vout": utxo["vout"]}],
                           [{mine: float(Decimal(value) / SAT)}])
        parent = (await call("signrawtransactionwithwallet", p_raw))["hex"]
        p_dec = await call("decoderawtransaction", parent)
        c_raw = await call("createrawtransaction", [{"txid": p_dec["txid"], "vout": 0}],
                           [{mine: float(Decimal(value - 2000) / SAT)}])
        c_signed = await call("signrawtransactionwithwallet", c_raw, [
            {"txid": p_dec["txid"], "vout": 0, "scriptPubKey": p_dec["vout"][0]["scriptPubKey"]["hex"],
             "amount": p_dec["vout"][0]["value"]}])
        child = c_signed["hex"]
        c_dec = await call("decoderawtransaction", child)
        alone = await call("testmempoolaccept", [parent])
        assert alone[0]["allowed"] is False and alone[0]["reject-reason"] == "min relay fee not met"
        assert await err(call("submitpackage", [child, parent])) == \
            (-25, "package topology disallowed. not child-with-parents or parents depend on each other.")
        res = await call("submitpackage", [parent, child])
        size = p_dec["vsize"] + c_dec["vsize"]
        eff = float(Decimal(2000 * 1000 // size) / SAT)
        includes = [p_dec["hash"], c_dec["hash"]]
        assert res == {
            "package_msg": "success",
            "tx-results": {
                p_dec["hash"]: {"txid": p_dec["txid"], "vsize": p_dec["vsize"],
                                "fees": {"base": 0.0, "effective-feerate": eff, "effective-includes": includes}},
                c_dec["hash"]: {"txid": c_dec["txid"], "vsize": c_dec["vsize"],
                                "fees": {"base": 0.00002, "effective-feerate": eff, "effective-includes": includes}},
            },
            "replaced-transactions": [],
        }
        assert set(await call("getrawmempool")) == {p_dec["txid"], c_dec["txid"]}
        again = await call("submitpackage", [parent, child])
        assert again["tx-results"][c_dec["hash"]] == {"txid": c_dec["txid"], "vsize": c_dec["vsize"],
                                                      "fees": {"base": 0.00002}}
        # a burn above maxburnamount and a too-high maxfeerate are refused before validation
        from dataclasses import replace
        from tinynode.primitives.tx import Tx
        base = Tx.from_hex(await call("createrawtransaction", [{"txid": c_dec["txid"], "vout": 0}], [{mine: 0.001}]))
        burn = replace(base, vout=(replace(base.vout[0], script_pubkey=b"\x6a\x01\x00"),)).raw.hex()
        assert await err(call("submitpackage", [burn])) == \
            (-25, "Unspendable output exceeds maximum configured by user (maxburnamount)")
        res = await call("submitpackage", [burn], 0, 0.001)      # burn allowed: validated (a tiny unsigned tx)
        assert res["package_msg"] == "transaction failed"
        assert res["tx-results"][Tx.from_hex(burn).wtxid_hex] == {"txid": Tx.from_hex(burn).txid_hex, "error": "tx-size-small"}
        assert await err(call("submitpackage", [parent], 1)) == \
            (-8, "Fee rates larger than or equal to 1BTC/kvB are not accepted")
        assert await err(call("submitpackage", [])) == (-8, "Array must contain between 1 and 25 transactions.")
