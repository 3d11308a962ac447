"""issue 15, the wallet part: a segwit (P2WPKH) wallet end to end on a regtest node.

Mines to a bech32 address, spends P2WPKH coins to a P2WPKH and a legacy address with P2WPKH
change (a witness tx, wtxid != txid, accepted and mined, balances exact, fee = the vsize
estimate), signs a P2WPKH input with signrawtransactionwithwallet, and spends a legacy wallet
file's P2PKH coin together with a P2WPKH coin in one transaction."""
from __future__ import annotations

import shutil
import sqlite3

import pytest

from tests.framework.nodes import running_nodes, short_tmpdir, start_node
from tests.framework.rpcassert import sats
from tinynode.params import REGTEST
from tinynode.primitives.address import decode_address, encode_address
from tinynode.primitives.hashes import hash160
from tinynode.primitives.keys import PrivateKey
from tinynode.primitives.tx import COIN, Tx
from tinynode.rpc.protocol import RPCError


async def rpc_error(coro) -> RPCError:
    with pytest.raises(RPCError) as e:
        await coro
    return e.value


async def test_segwit_wallet_mines_sends_signs_and_confirms():
    async with running_nodes(1) as (n,):
        c = n.rpc
        addr = await c.call("getnewaddress")
        assert addr.startswith("bcrt1q") and len(addr) == 44          # P2WPKH: 20-byte program
        await c.call("generatetoaddress", 101, addr)
        assert await c.call("getbalance") == 50
        # address types: Core's names and errors
        seg, leg = await c.call("getnewaddress", "pay"), await c.call("getnewaddress", "old", "legacy")
        assert seg.startswith("bcrt1q") and leg[0] in "mn"
        wrapped = await c.call("getnewaddress", "", "p2sh-segwit")     # P2SH-P2WPKH
        assert wrapped[0] == "2"
        e = await rpc_error(c.call("getnewaddress", "", "bech33"))
        assert (e.code, e.message) == (-5, "Unknown address type 'bech33'")
        change_addr = await c.call("getrawchangeaddress")
        assert change_addr.startswith("bcrt1q") and (await c.call("getrawchangeaddress", "legacy"))[0] in "mn"
        ci = await c.call("getaddressinfo", change_addr)
        assert ci["ismine"] and ci["ischange"] and ci["desc"].startswith("wpkh(")
        si, li = await c.call("getaddressinfo", seg), await c.call("getaddressinfo", leg)
        assert (si["iswitness"], si["witness_version"], si["isscript"]) == (True, 0, False)
        assert si["witness_program"] == hash160(bytes.fromhex(si["pubkey"])).hex()
        assert si["desc"].startswith(f"wpkh({si['pubkey']})#") and si["labels"] == ["pay"]
        assert li["iswitness"] is False and li["desc"].startswith(f"pkh({li['pubkey']})#")

        # 1. P2WPKH coin → P2WPKH address, P2WPKH change
        r1 = await c.call("sendtoaddress", named={"address": seg, "amount": 10, "verbose": True})
        assert r1["change"]["address"].startswith("bcrt1q")
        tx1 = Tx.from_hex((await c.call("gettransaction", r1["txid"]))["hex"])
        assert tx1.has_witness() and tx1.wtxid != tx1.txid
        assert tx1.vin[0].script_sig == b"" and len(tx1.vin[0].witness) == 2
        e1 = await c.call("getmempoolentry", r1["txid"])
        assert e1["wtxid"] == tx1.wtxid_hex
        # estimate: 10 + 2 × 31 (P2WPKH recipient and change) + 68 + 1 = 141 vB at 2 sat/vB
        assert sats(r1["fee"]) == 2 * 141 and 140 <= e1["vsize"] <= 141
        # 2. spend an unconfirmed P2WPKH output of our own send to a legacy address
        r2 = await c.call("sendtoaddress", named={"address": leg, "amount": 5, "verbose": True})
        tx2 = Tx.from_hex((await c.call("gettransaction", r2["txid"]))["hex"])
        assert tx2.vin[0].prevout.txid == tx1.txid and tx2.has_witness()
        # a legacy recipient: legacy change (Core TransactionChangeType), 34 vB
        assert r2["change"]["address"][0] in "mn"
        assert sats(r2["fee"]) == 2 * (10 + 34 + 34 + 68 + 1)
        assert sorted(await c.call("getrawmempool")) == sorted([r1["txid"], r2["txid"]])

        # 3. signrawtransactionwithwallet on a P2WPKH input (tx1's output that tx2 left unspent)
        n_free = 1 - tx2.vin[0].prevout.n
        free_value = tx1.vout[n_free].value
        dest = await c.call("getnewaddress")
        raw = await c.call("createrawtransaction", [{"txid": r1["txid"], "vout": n_free}],
                           {dest: (free_value - 10_000) / COIN})
        signed = await c.call("signrawtransactionwithwallet", raw)
        assert signed["complete"] is True
        tx3 = Tx.from_hex(signed["hex"])
        assert tx3.vin[0].script_sig == b"" and len(tx3.vin[0].witness) == 2
        # signrawtransactionwithkey needs the amount of a coin it cannot find: prevtxs' "amount"
        wif = await c.call("dumpprivkey", seg)
        spk = decode_address(seg, REGTEST).script_pubkey.hex()
        prev = [{"txid": "11" * 32, "vout": 0, "scriptPubKey": spk, "amount": 1}]
        alien = await c.call("createrawtransaction", [{"txid": "11" * 32, "vout": 0}], {dest: 0.5})
        by_key = await c.call("signrawtransactionwithkey", alien, [wif], prev)
        assert by_key["complete"] is True and Tx.from_hex(by_key["hex"]).vin[0].witness
        # without it Core (and tinynode) signs over MAX_MONEY and then refuses the whole call
        with pytest.raises(RPCError) as e:
            await c.call("signrawtransactionwithkey", alien, [wif],
                         [{k: v for k, v in prev[0].items() if k != "amount"}])
        assert (e.value.code, e.value.message) == (
            -3, f"Missing amount for CTxOut(nValue=21000000.00000000, scriptPubKey={spk[:30]})")
        t3 = await c.call("sendrawtransaction", signed["hex"])
        assert t3 == tx3.txid_hex != tx3.wtxid_hex

        # 4. mined into a block; balances exact
        pool = await c.call("getrawmempool", True)
        (bh,) = await c.call("generatetoaddress", 1, addr)
        block = await c.call("getblock", bh)
        assert {r1["txid"], r2["txid"], t3} <= set(block["tx"]), (r1["txid"], r2["txid"], t3, pool)
        assert await c.call("getrawmempool") == []
        for t in (r1["txid"], r2["txid"], t3):
            assert (await c.call("gettransaction", t))["confirmations"] == 1
        fees = sats(r1["fee"]) + sats(r2["fee"]) + 10_000
        # block 2's coinbase matured at height 102; block 102's (with the fees) is immature
        bal = await c.call("getbalances")
        assert sats(bal["mine"]["trusted"]) == 100 * COIN - fees
        assert sats(bal["mine"]["immature"]) == 100 * 50 * COIN + fees        # heights 3..102
        utxos = {u["address"]: u for u in await c.call("listunspent")}
        assert utxos[leg]["desc"].startswith("pkh(") and sats(utxos[leg]["amount"]) == 5 * COIN
        assert utxos[dest]["desc"].startswith("wpkh(") and sats(utxos[dest]["amount"]) == free_value - 10_000


_SCHEMA_1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB);
CREATE TABLE keys (id INTEGER PRIMARY KEY, secret BLOB NOT NULL, compressed INTEGER NOT NULL,
    pubkey BLOB NOT NULL, script_pubkey BLOB NOT NULL UNIQUE, chain INTEGER NOT NULL,
    issued INTEGER NOT NULL DEFAULT 0, used INTEGER NOT NULL DEFAULT 0,
    label TEXT NOT NULL DEFAULT '', created INTEGER NOT NULL);
CREATE TABLE txs (txid BLOB PRIMARY KEY, raw BLOB NOT NULL, state TEXT NOT NULL, block_hash BLOB,
    height INTEGER, block_time INTEGER, time_received INTEGER NOT NULL, from_me INTEGER NOT NULL,
    fee INTEGER, seq INTEGER NOT NULL);
"""


async def test_legacy_wallet_file_spends_p2pkh_and_p2wpkh_coins_in_one_tx():
    key = PrivateKey(bytes(31) + b"\x5c")
    pub = key.public_key.sec
    d = short_tmpdir()
    try:
        (d / "regtest").mkdir(parents=True)
        db = sqlite3.connect(str(d / "regtest" / "wallet.sqlite"))      # what the legacy wallet wrote
        db.executescript(_SCHEMA_1)
        db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (b"1",))
        db.execute("INSERT INTO keys VALUES (1, ?, 1, ?, ?, 0, 1, 0, 'old', 1700000000)",
                   (key.secret, pub, b"\x76\xa9\x14" + hash160(pub) + b"\x88\xac"))
        db.commit()
        db.close()
        n = await start_node(datadir=d)
        try:
            c = n.rpc
            old_addr = encode_address("p2pkh", hash160(pub), REGTEST)
            info = await c.call("getaddressinfo", old_addr)
            assert info["ismine"] and info["labels"] == ["old"] and info["desc"].startswith("pkh(")
            await c.call("generatetoaddress", 1, old_addr)
            seg = await c.call("getnewaddress")
            await c.call("generatetoaddress", 101, seg)
            assert await c.call("getbalance") == 100          # one P2PKH and one P2WPKH coin
            other = await c.call("getnewaddress", "", "legacy")
            r = await c.call("sendtoaddress", named={"address": other, "amount": 60, "verbose": True})
            tx = Tx.from_hex((await c.call("gettransaction", r["txid"]))["hex"])
            assert sorted(bool(i.witness) for i in tx.vin) == [False, True]
            legacy_in = next(i for i in tx.vin if not i.witness)
            assert legacy_in.script_sig.endswith(pub)
            assert r["change"]["address"][0] in "mn" and tx.wtxid != tx.txid   # change like the recipient
            entry = await c.call("getmempoolentry", r["txid"])
            # estimate: 10 + 34 (P2PKH recipient) + 148 + 68 + 1 + 34 (P2PKH change) = 295 vB, 2 sat/vB
            assert sats(r["fee"]) == 2 * 295 and 294 <= entry["vsize"] <= 295
            await c.call("generatetoaddress", 1, seg)
            assert (await c.call("gettransaction", r["txid"]))["confirmations"] == 1
            # block 3's coinbase matured with block 103: 150 coins less the fee
            assert sats(await c.call("getbalance")) == 150 * COIN - sats(r["fee"])
        finally:
            await n.stop()
        # the file moved to the multiwallet layout (wallets/wallet.sqlite, the default wallet "")
        # and reopens migrated; nothing is left at the old place
        assert not (d / "regtest" / "wallet.sqlite").exists()
        with sqlite3.connect(str(d / "regtest" / "wallets" / "wallet.sqlite")) as db:
            assert db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == b"2"
            assert db.execute("SELECT addr_type FROM keys WHERE id=1").fetchone()[0] == "legacy"
    finally:
        shutil.rmtree(d, ignore_errors=True)
