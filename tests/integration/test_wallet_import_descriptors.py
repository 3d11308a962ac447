"""issues 16/18: the wallet as Bitcoin Core's functional test framework sets it up.

A node with no default wallet (Core makes none; tinynode's --no-default-wallet, what the
core-tests launcher passes) gets "default_wallet" from createwallet (load_on_startup), then
`importdescriptors [{"desc": "combo(<WIF>)#checksum", "timestamp": 0, "label": "coinbase"}]`
as `wallet_importprivkey` sends it: Core v31's per-request results, a rescan from genesis that
finds the coinbases already paid to the key's P2PKH, and the calls feature_taproot makes next:
getnewaddress of each type, getaddressinfo (scriptPubKey, pubkey), listunspent,
signrawtransactionwithwallet and sendrawtransaction. Errors are Core's, per request."""
from __future__ import annotations

from tests.framework.nodes import running_nodes
from tinynode.params import REGTEST
from tinynode.primitives.address import encode_wif, p2pkh_script, address_from_script
from tinynode.primitives.hashes import hash160
from tinynode.primitives.keys import PrivateKey
from tinynode.primitives.tx import COIN, OutPoint, Tx, TxIn, TxOut
from tinynode.rpc.client import AsyncRPCClient
from tinynode.script.descriptor import add_checksum

KEY = PrivateKey((0x77).to_bytes(32, "big"), True)
WIF = encode_wif(KEY.secret, True, REGTEST)
P2PKH_ADDR = address_from_script(p2pkh_script(hash160(KEY.public_key.sec)), REGTEST)


async def test_core_framework_wallet_setup_import_rescan_and_sign():
    async with running_nodes(1, default_wallet=False) as (n,):
        c = n.rpc
        assert await c.call("listwallets") == []
        # coins paid to the key before the wallet exists
        await c.call("generatetoaddress", 101, P2PKH_ADDR)
        assert await c.call("createwallet", named={"wallet_name": "default_wallet",
                                                   "load_on_startup": True}) == {"name": "default_wallet"}
        w = AsyncRPCClient(n.node.rpc_socket, wallet="default_wallet")
        try:
            res = await w.call("importdescriptors", [{"desc": add_checksum(f"combo({WIF})"),
                                                      "timestamp": 0, "label": "coinbase"}])
            assert res == [{"success": True}]
            # the rescan found the 101 coinbases; 1 is mature
            assert await c.call("getbalance") == 50
            unspent = await c.call("listunspent")
            assert len(unspent) == 1 and unspent[0]["address"] == P2PKH_ADDR
            assert unspent[0]["label"] == "coinbase" and unspent[0]["amount"] == 50
            assert unspent[0]["desc"] == add_checksum(f"pkh({KEY.public_key.sec.hex()})")
            # per-request errors, Core's codes and sentences
            res = await w.call("importdescriptors", [
                {"desc": f"combo({WIF})", "timestamp": 0},
                {"desc": add_checksum(f"pkh({KEY.public_key.sec.hex()})"), "timestamp": "now"},
                {"timestamp": 0},
                {"desc": add_checksum(f"combo({WIF})"), "timestamp": 0, "active": True},
            ])
            assert res == [
                {"success": False, "error": {"code": -5, "message": "Missing checksum"}},
                {"success": False, "error": {"code": -4, "message": "Cannot import descriptor without "
                                             "private keys to a wallet with private keys enabled"}},
                {"success": False, "error": {"code": -8, "message": "Descriptor not found."}},
                {"success": False, "error": {"code": -8, "message": "Active descriptors must be ranged"}},
            ]
            try:
                await w.call("importdescriptors", [{"desc": add_checksum(f"combo({WIF})")}])
                raise AssertionError("no error")
            except Exception as e:
                assert (e.code, e.message) == (-3, "Missing required timestamp field for key")

            # feature_taproot's host addresses: each type with its scriptPubKey and pubkey
            spks = []
            for t, prefix in (("legacy", "76a914"), ("p2sh-segwit", "a914"), ("bech32", "0014")):
                addr = await c.call("getnewaddress", named={"address_type": t})
                info = await c.call("getaddressinfo", addr)
                assert info["ismine"] and info["scriptPubKey"].startswith(prefix)
                assert len(bytes.fromhex(info["pubkey"])) == 33
                spks.append(bytes.fromhex(info["scriptPubKey"]))
            info = await c.call("getaddressinfo", addr)       # bech32: no embedded
            assert "embedded" not in info
            wrapped = await c.call("getaddressinfo", address_from_script(spks[1], REGTEST))
            assert wrapped["isscript"] and not wrapped["iswitness"]
            assert wrapped["script"] == "witness_v0_keyhash" and wrapped["embedded"]["pubkey"] == wrapped["pubkey"]

            # a raw tx spending the combo key's coin, signed by the wallet, paying the three
            u = unspent[0]
            tx = Tx(2, (TxIn(OutPoint(bytes.fromhex(u["txid"])[::-1], u["vout"]), b"", 0xFFFFFFFF),),
                    tuple(TxOut(16 * COIN + 66_000_000, spk) for spk in spks), 0)
            signed = await c.call("signrawtransactionwithwallet", tx.raw.hex())
            assert signed["complete"] is True and "errors" not in signed
            txid = await c.call("sendrawtransaction", signed["hex"])
            await c.call("generatetoaddress", 1, P2PKH_ADDR)
            # the three new coins are the wallet's, and spend again, together
            coins = [x for x in await c.call("listunspent") if x["txid"] == txid]
            assert sorted(x["vout"] for x in coins) == [0, 1, 2]
            wrapped_coin = next(x for x in coins if x["vout"] == 1)
            assert wrapped_coin["redeemScript"] == "0014" + hash160(bytes.fromhex(wrapped["pubkey"])).hex()
            tx2 = Tx(2, tuple(TxIn(OutPoint(bytes.fromhex(txid)[::-1], i), b"", 0xFFFFFFFF) for i in range(3)),
                     (TxOut(49 * COIN + 97_000_000, spks[0]),), 0)
            signed = await c.call("signrawtransactionwithwallet", tx2.raw.hex())
            assert signed["complete"] is True
            await c.call("sendrawtransaction", signed["hex"])
        finally:
            await w.close()
