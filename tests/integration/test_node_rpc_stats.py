"""Issue 20: the RPCs real clients check — getindexinfo, getnetworkinfo's version,
getblockstats and getchaintxstats — against Core's formulas (rpc/node.cpp, rpc/blockchain.cpp),
recomputed here independently from getblock's verbosity-3 JSON (each tx's prevouts)."""

import pytest

from tests.framework.nodes import running_nodes
from tests.framework.rpcassert import rpc_error as err, sats

pytestmark = pytest.mark.slow


def expected_stats(block: dict, mediantime: int, subsidy: int) -> dict:
    """Core getblockstats, written out from its definition over getblock 3's JSON."""
    txs = block["tx"]
    fees, sizes, rates, sw = [], [], [], []
    ins = outs = total_out = utxos = 0
    utxo_inc = utxo_inc_actual = 0

    def out_size(spk_hex: str) -> int:
        n = len(spk_hex) // 2
        return 8 + (1 if n < 253 else 3) + n + 40

    for i, tx in enumerate(txs):
        outs += len(tx["vout"])
        for o in tx["vout"]:
            utxo_inc += out_size(o["scriptPubKey"]["hex"])
            if o["scriptPubKey"]["hex"].startswith("6a"):
                continue
            utxos += 1
            utxo_inc_actual += out_size(o["scriptPubKey"]["hex"])
        if i == 0:
            continue
        ins += len(tx["vin"])
        total_out += sum(sats(o["value"]) for o in tx["vout"])
        for v in tx["vin"]:
            utxo_inc -= out_size(v["prevout"]["scriptPubKey"]["hex"])
            utxo_inc_actual -= out_size(v["prevout"]["scriptPubKey"]["hex"])
        fee = sum(sats(v["prevout"]["value"]) for v in tx["vin"]) - sum(sats(o["value"]) for o in tx["vout"])
        assert fee == sats(tx["fee"])
        fees.append(fee)
        sizes.append(tx["size"])
        rates.append((fee * 4 // tx["weight"], tx["weight"]))
        if any(v.get("txinwitness") for v in tx["vin"]):    # the wallet's P2WPKH spends
            sw.append((tx["size"], tx["weight"]))
    n = len(txs) - 1
    total_weight = sum(w for _, w in rates)

    def median(v):
        v = sorted(v)
        return 0 if not v else (v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) // 2)

    pct = [0] * 5
    if rates:
        marks = [total_weight * f for f in (0.1, 0.25, 0.5, 0.75, 0.9)]
        cum, k = 0, 0
        for rate, w in sorted(rates):
            cum += w
            while k < 5 and cum >= marks[k]:
                pct[k] = rate
                k += 1
        pct[k:] = [sorted(rates)[-1][0]] * (5 - k)
    return {
        "avgfee": sum(fees) // n if n else 0, "avgfeerate": sum(fees) * 4 // total_weight if total_weight else 0,
        "avgtxsize": sum(sizes) // n if n else 0, "blockhash": block["hash"], "feerate_percentiles": pct,
        "height": block["height"], "ins": ins, "maxfee": max(fees, default=0),
        "maxfeerate": max((r for r, _ in rates), default=0), "maxtxsize": max(sizes, default=0),
        "medianfee": median(fees), "mediantime": mediantime, "mediantxsize": median(sizes),
        "minfee": min(fees, default=0), "minfeerate": min((r for r, _ in rates), default=0),
        "mintxsize": min(sizes, default=0), "outs": outs, "subsidy": subsidy,
        "swtotal_size": sum(z for z, _ in sw), "swtotal_weight": sum(w for _, w in sw), "swtxs": len(sw),
        "time": block["time"], "total_out": total_out,
        "total_size": sum(sizes), "total_weight": total_weight, "totalfee": sum(fees), "txs": len(txs),
        "utxo_increase": outs - ins, "utxo_size_inc": utxo_inc,
        "utxo_increase_actual": utxos - ins, "utxo_size_inc_actual": utxo_inc_actual,
    }


async def test_getindexinfo_and_version():
    async with running_nodes(1, txindex=True) as (a,):
        call = a.rpc.call
        await call("generatetoaddress", 3, await call("getnewaddress"))
        assert await call("getindexinfo") == {"txindex": {"synced": True, "best_block_height": 3}}
        assert await call("getindexinfo", "txindex") == {"txindex": {"synced": True, "best_block_height": 3}}
        assert await call("getindexinfo", "coinstatsindex") == {}      # not kept: not invented
        assert await call("getindexinfo", "") == await call("getindexinfo")
        info = await call("getnetworkinfo")
        assert info["version"] == 310000 and info["subversion"].startswith("/tinynode:")
        assert "310000" in await call("help", "getnetworkinfo")


async def test_getblockstats_by_cores_formulas():
    async with running_nodes(1, txindex=True) as (a,):
        call = a.rpc.call
        addr = await call("getnewaddress")
        await call("generatetoaddress", 110, addr)
        # txs of different sizes and fee rates in one block
        for amount, rate in ((1, 1), (2.5, 3), (0.3, 7), (4, 2), (0.01, 12)):
            await call("sendtoaddress", await call("getnewaddress"), amount, "", "", False, True,
                       None, "unset", None, rate)
        [bh] = await call("generatetoaddress", 1, addr)
        block = await call("getblock", bh, 3)
        assert len(block["tx"]) == 6
        header = await call("getblockheader", bh)
        want = expected_stats(block, header["mediantime"], 50 * 100_000_000)
        got = await call("getblockstats", 111)
        assert got == want and list(got) == list(want)                # Core's key order
        assert await call("getblockstats", bh) == got
        assert got["totalfee"] > 0 and got["minfeerate"] < got["maxfeerate"]
        assert got["swtxs"] == 5             # the wallet spends its bech32 (P2WPKH) coins with witnesses
        # a block of only a coinbase, and genesis (no UTXO change counted)
        cb_only = await call("getblockstats", 50)
        assert cb_only["txs"] == 1 and cb_only["ins"] == 0 and cb_only["feerate_percentiles"] == [0] * 5
        assert cb_only["utxo_increase_actual"] == 1 and cb_only["mintxsize"] == 0
        gen = await call("getblockstats", 0)
        assert gen["utxo_increase_actual"] == 0 and gen["utxo_size_inc_actual"] == 0 and gen["outs"] == 1
        # selected stats: only those, in Core's (sorted) order
        sel = await call("getblockstats", 111, ["totalfee", "height", "feerate_percentiles"])
        assert sel == {"feerate_percentiles": want["feerate_percentiles"], "height": 111,
                       "totalfee": want["totalfee"]} and list(sel) == sorted(sel)
        # Core's errors
        assert await err(call("getblockstats", 111, ["nope"])) == (-8, "Invalid selected statistic 'nope'")
        assert await err(call("getblockstats", -1)) == (-8, "Target block height -1 is negative")
        assert await err(call("getblockstats", 112)) == (-8, "Target block height 112 after current tip 111")
        assert await err(call("getblockstats", "ff" * 32)) == (-5, "Block not found")
        assert (await err(call("getblockstats", "12")))[0] == -8


async def test_getchaintxstats_by_cores_formulas():
    async with running_nodes(1, txindex=True) as (a,):
        call = a.rpc.call
        addr = await call("getnewaddress")
        await call("generatetoaddress", 105, addr)
        await call("sendtoaddress", await call("getnewaddress"), 1)
        await call("sendtoaddress", await call("getnewaddress"), 2)
        await call("generatetoaddress", 2, addr)
        hashes = [await call("getblockhash", h) for h in range(108)]
        ntx = [(await call("getblockheader", h))["nTx"] for h in hashes]
        mtp = [(await call("getblockheader", h))["mediantime"] for h in hashes]
        tip = 107

        got = await call("getchaintxstats")
        # default window: a month of blocks (regtest's 10-minute spacing: 4320), at most height - 1
        count = min(4320, tip - 1)
        window = sum(ntx[tip - count + 1:tip + 1])
        want = {"time": (await call("getblockheader", hashes[tip]))["time"], "txcount": sum(ntx),
                "window_final_block_hash": hashes[tip], "window_final_block_height": tip,
                "window_block_count": count, "window_interval": mtp[tip] - mtp[tip - count],
                "window_tx_count": window}
        if want["window_interval"] > 0:
            want["txrate"] = window / want["window_interval"]
        assert got == want and sum(ntx) == 108 + 2

        got = await call("getchaintxstats", 10, hashes[50])
        assert got["txcount"] == 51 and got["window_tx_count"] == 10 and got["window_block_count"] == 10
        assert got["window_interval"] == mtp[50] - mtp[40]
        zero = await call("getchaintxstats", 0)
        assert zero["window_block_count"] == 0 and "window_interval" not in zero and "txrate" not in zero

        assert await err(call("getchaintxstats", 107)) == \
            (-8, "Invalid block count: should be between 0 and the block's height - 1")
        assert (await err(call("getchaintxstats", -1)))[0] == -8
        assert await err(call("getchaintxstats", None, "ff" * 32)) == (-5, "Block not found")
        await call("invalidateblock", hashes[107])
        assert await err(call("getchaintxstats", None, hashes[107])) == (-8, "Block is not in main chain")
        assert (await call("getchaintxstats"))["txcount"] == sum(ntx[:107])
