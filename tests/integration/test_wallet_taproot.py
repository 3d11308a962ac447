"""issue 16, the wallet part: bech32m (P2TR key path) addresses end to end on a regtest node.

getnewaddress "" bech32m gives a bcrt1p address whose getaddressinfo shows witness version 1 and
a `tr(<x-only internal key>)` descriptor; the wallet pays itself there (sendtoaddress), sees the
coin (listunspent), spends it alone by the key path (one 64-byte Schnorr signature in the
witness) and then together with a P2WPKH coin; the mempool takes each, blocks mine them, and
balances and fees are exact."""
from __future__ import annotations

from decimal import Decimal

from tests.framework.nodes import running_nodes
from tests.framework.rpcassert import sats
from tinynode.params import REGTEST
from tinynode.primitives.address import address_from_script, witness_script
from tinynode.primitives.hashes import hash160
from tinynode.primitives.keys import PrivateKey, taproot_tweak_pubkey
from tinynode.primitives.tx import COIN, Tx
from tinynode.script.descriptor import add_checksum

#: Somebody else's P2WPKH address (not in the wallet).
FOREIGN = address_from_script(witness_script(0, hash160(PrivateKey(bytes(31) + b"\x77").public_key.sec)),
                              REGTEST)


async def test_bech32m_wallet_receives_and_spends_p2tr_by_the_key_path():
    async with running_nodes(1) as (n,):
        c = n.rpc
        addr = await c.call("getnewaddress")
        assert addr.startswith("bcrt1q")                     # the default stays bech32 (P2WPKH)
        await c.call("generatetoaddress", 101, addr)
        assert await c.call("getbalance") == 50

        tr = await c.call("getnewaddress", "tr", "bech32m")
        assert tr.startswith("bcrt1p") and len(tr) == 64
        info = await c.call("getaddressinfo", tr)
        assert (info["ismine"], info["iswitness"], info["witness_version"], info["isscript"]) == \
            (True, True, 1, True)
        assert info["labels"] == ["tr"] and "pubkey" not in info
        internal = info["desc"][3:67]
        assert info["desc"] == add_checksum(f"tr({internal})")
        assert taproot_tweak_pubkey(bytes.fromhex(internal), None)[0].hex() == info["witness_program"]
        chg = await c.call("getrawchangeaddress", "bech32m")
        assert chg.startswith("bcrt1p") and (await c.call("getaddressinfo", chg))["ischange"]

        # 1. pay ourselves 10 at the P2TR address (a P2WPKH spend), mine it
        r1 = await c.call("sendtoaddress", named={"address": tr, "amount": 10, "verbose": True})
        assert r1["change"]["address"].startswith("bcrt1p")
        await c.call("generatetoaddress", 1, FOREIGN)
        coins = [u for u in await c.call("listunspent") if u["address"] == tr]
        assert len(coins) == 1 and sats(coins[0]["amount"]) == 10 * COIN
        assert coins[0]["desc"] == info["desc"] and coins[0]["confirmations"] == 1
        assert coins[0]["scriptPubKey"] == "5120" + info["witness_program"]

        # 2. spend only the P2TR coin (from_address: change back to it) to somebody else
        r2 = await c.call("sendtoaddress", named={"address": FOREIGN, "amount": 4, "verbose": True,
                                                  "from_address": tr})
        tx2 = Tx.from_hex((await c.call("gettransaction", r2["txid"]))["hex"])
        assert len(tx2.vin) == 1 and tx2.vin[0].prevout.txid.hex() == bytes.fromhex(r1["txid"])[::-1].hex()
        assert tx2.vin[0].script_sig == b""
        assert len(tx2.vin[0].witness) == 1 and len(tx2.vin[0].witness[0]) == 64
        assert r2["change"]["address"] == tr
        entry = await c.call("getmempoolentry", r2["txid"])
        assert entry["wtxid"] == tx2.wtxid_hex
        # estimate: 10 + 31 (P2WPKH recipient) + 58 (P2TR input) + 1 + 43 (P2TR change) = 143 vB
        # at 2 sat/vB; the real tx weighs 568 WU = 142 vB
        assert sats(r2["fee"]) == 2 * 143 and entry["vsize"] == 142
        (bh,) = await c.call("generatetoaddress", 1, FOREIGN)
        assert r2["txid"] in (await c.call("getblock", bh))["tx"]
        assert await c.call("getrawmempool") == []

        # 3. all but 2 coins of the balance: needs the P2TR change (~6) and every P2WPKH coin
        before = sats(await c.call("getbalance"))
        amount = before - 2 * COIN
        r3 = await c.call("sendtoaddress", named={"address": FOREIGN, "amount": float(Decimal(amount) / COIN),
                                                  "verbose": True})
        tx3 = Tx.from_hex((await c.call("gettransaction", r3["txid"]))["hex"])
        shapes = sorted(tuple(len(w) for w in i.witness) for i in tx3.vin)
        # the P2TR coins: step 2's change at `tr` and step 1's change (a payment to a P2TR
        # address gets P2TR change, Core's TransactionChangeType)
        assert shapes.count((64,)) == 2 and len(shapes) >= 3, shapes
        assert all(len(s) == 2 and s[1] == 33 for s in shapes if s != (64,)), shapes
        assert await c.call("getrawmempool") == [r3["txid"]]
        (bh,) = await c.call("generatetoaddress", 1, FOREIGN)
        assert r3["txid"] in (await c.call("getblock", bh))["tx"]
        assert (await c.call("gettransaction", r3["txid"]))["confirmations"] == 1
        # every coinbase of blocks 1..101 was ours: what is left is that less what went out
        fees = sum(sats(r["fee"]) for r in (r1, r2, r3))
        bal = (await c.call("getbalances"))["mine"]
        assert sats(bal["trusted"]) + sats(bal["immature"]) == 101 * 50 * COIN - 4 * COIN - amount - fees
        assert sats(bal["untrusted_pending"]) == 0
        assert all(u["address"] != tr for u in await c.call("listunspent"))
