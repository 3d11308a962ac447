"""issue 16: sendtoaddress's change output takes the recipient's type, as Core's
`CWallet::TransactionChangeType`: bech32m (P2TR) change for a bech32m recipient, bech32 (P2WPKH)
for a bech32 one, legacy (P2PKH) for a legacy one, and bech32m for anything else (P2WSH)."""
from __future__ import annotations

from tests.framework.nodes import running_nodes
from tinynode.params import REGTEST
from tinynode.primitives.address import address_from_script, decode_address, witness_script
from tinynode.primitives.hashes import hash160
from tinynode.primitives.keys import PrivateKey
from tinynode.primitives.tx import Tx

KEY = PrivateKey(bytes(31) + b"\x42")


async def test_change_output_script_follows_the_recipient():
    dests = {
        "bech32m": (address_from_script(witness_script(1, KEY.xonly_public_key), REGTEST), b"\x51\x20"),
        "bech32": (address_from_script(witness_script(0, hash160(KEY.public_key.sec)), REGTEST), b"\x00\x14"),
        "legacy": (address_from_script(b"\x76\xa9\x14" + hash160(KEY.public_key.sec) + b"\x88\xac", REGTEST),
                   b"\x76\xa9\x14"),
        "p2wsh": (address_from_script(witness_script(0, bytes(32)), REGTEST), b"\x51\x20"),
    }
    async with running_nodes(1) as (n,):
        c = n.rpc
        await c.call("generatetoaddress", 101, await c.call("getnewaddress"))
        for name, (addr, prefix) in dests.items():
            r = await c.call("sendtoaddress", named={"address": addr, "amount": 1, "verbose": True})
            tx = Tx.from_hex((await c.call("gettransaction", r["txid"]))["hex"])
            change = tx.vout[r["change"]["vout"]].script_pubkey
            assert change[:len(prefix)] == prefix, name
            assert decode_address(r["change"]["address"], REGTEST).script_pubkey == change
            info = await c.call("getaddressinfo", r["change"]["address"])
            assert info["ismine"] and info["ischange"], name
            want_desc = {b"\x51\x20": "tr(", b"\x00\x14": "wpkh(", b"\x76\xa9\x14": "pkh("}[prefix]
            assert info["desc"].startswith(want_desc), (name, info["desc"])
            assert (await c.call("testmempoolaccept", [tx.raw.hex()]))[0]["reject-reason"] == "txn-already-in-mempool"
