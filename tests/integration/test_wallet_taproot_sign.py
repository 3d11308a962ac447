"""issue 16: the sign RPCs on a P2TR key path input from the wallet, beside a P2WPKH one.

signrawtransactionwithwallet signs the bech32m coin with the BIP86-tweaked key (64 bytes for
SIGHASH_DEFAULT, 65 ending in the hash type otherwise) and the P2WPKH coin with [sig, pubkey];
each input verifies through tinynode's interpreter and Core's kernel (TINYNODE_ORACLE=1), and
testmempoolaccept takes the tx. signrawtransactionwithkey gives the same bytes when handed the
output key's secret (Core: the internal key alone does not sign, "Witness program was passed an
empty witness"); unknown prevouts and mismatching prevtxs answer with Core's texts."""
from __future__ import annotations

from decimal import Decimal

import pytest

from tests.framework.nodes import running_nodes
from tests.framework.oracle import require_kernel, same_verdict
from tests.framework.rpcassert import sats
from tinynode.params import REGTEST
from tinynode.primitives.address import address_from_script, decode_wif, encode_wif, witness_script
from tinynode.primitives.hashes import hash160
from tinynode.primitives.keys import PrivateKey
from tinynode.primitives.tx import COIN, Tx, TxOut
from tinynode.rpc.protocol import RPCError
from tinynode.script.flags import STANDARD_FLAGS
from tinynode.script.interpreter import verify_script
from tinynode.script.sighash import PrecomputedTxData

FOREIGN = address_from_script(witness_script(0, hash160(PrivateKey(bytes(31) + b"\x77").public_key.sec)),
                              REGTEST)


def check_inputs(tx: Tx, spent: list[TxOut]) -> None:
    """Every input valid for tinynode's interpreter (standard flags) and for Core's kernel."""
    txdata = PrecomputedTxData.for_tx(tx, spent)
    for i, out in enumerate(spent):
        verify_script(tx.vin[i].script_sig, out.script_pubkey, tx, i, STANDARD_FLAGS, out.value,
                      txdata=txdata)
        assert same_verdict(verify_script, out.script_pubkey, tx, i, STANDARD_FLAGS, out.value,
                            f"input {i}", [(o.script_pubkey, o.value) for o in spent]) is True


async def test_sign_rpcs_spend_a_p2tr_key_path_coin_with_a_p2wpkh_one():
    require_kernel()
    async with running_nodes(1) as (n,):
        c = n.rpc
        await c.call("generatetoaddress", 101, await c.call("getnewaddress"))
        tr = await c.call("getnewaddress", "tr", "bech32m")
        r1 = await c.call("sendtoaddress", tr, 10)
        await c.call("generatetoaddress", 1, FOREIGN)
        utxos = await c.call("listunspent")
        tr_coin = next(u for u in utxos if u["address"] == tr)
        wpkh_coin = next(u for u in utxos if u["address"].startswith("bcrt1q") and u["txid"] != r1)
        ins = [{"txid": u["txid"], "vout": u["vout"]} for u in (tr_coin, wpkh_coin)]
        total = sats(tr_coin["amount"]) + sats(wpkh_coin["amount"])
        raw = await c.call("createrawtransaction", ins, {FOREIGN: float(Decimal(total - 20_000) / COIN)})
        spent = [TxOut(sats(u["amount"]), bytes.fromhex(u["scriptPubKey"])) for u in (tr_coin, wpkh_coin)]

        # SIGHASH_DEFAULT: one 64-byte signature for the P2TR input, [sig, pubkey] for P2WPKH
        signed = await c.call("signrawtransactionwithwallet", raw)
        assert signed["complete"] is True and "errors" not in signed
        tx = Tx.from_hex(signed["hex"])
        assert [len(w) for w in tx.vin[0].witness] == [64] and tx.vin[0].script_sig == b""
        assert [len(w) for w in tx.vin[1].witness][1] == 33 and len(tx.vin[1].witness[0]) <= 71
        check_inputs(tx, spent)
        (accept,) = await c.call("testmempoolaccept", [signed["hex"]])
        assert accept["allowed"] is True and accept["vsize"] == tx.vsize

        # explicit hash types: 65 bytes ending in the type, still valid and standard
        for name, code in (("ALL", 1), ("NONE|ANYONECANPAY", 0x82)):
            s2 = await c.call("signrawtransactionwithwallet", raw, None, name)
            t2 = Tx.from_hex(s2["hex"])
            assert s2["complete"] is True and len(t2.vin[0].witness[0]) == 65
            assert t2.vin[0].witness[0][-1] == code and t2.vin[1].witness[0][-1] == code
            check_inputs(t2, spent)
            assert (await c.call("testmempoolaccept", [s2["hex"]]))[0]["allowed"] is True
        # SIGHASH_SINGLE: input 1 has no output of its own and stays unsigned
        s3 = await c.call("signrawtransactionwithwallet", raw, None, "SINGLE")
        assert s3["complete"] is False and len(Tx.from_hex(s3["hex"]).vin[0].witness[0]) == 65
        assert s3["errors"] == [{"txid": wpkh_coin["txid"], "vout": wpkh_coin["vout"], "witness": [],
                                 "scriptSig": "", "sequence": 0xFFFFFFFD,
                                 "error": "Witness program hash mismatch"}]
        with pytest.raises(RPCError) as e:
            await c.call("signrawtransactionwithwallet", raw, None, "all")
        assert (e.value.code, e.value.message) == (-8, "'all' is not a valid sighash parameter.")

        # withkey: the internal key (dumpprivkey) does not sign the P2TR output, as in Core
        internal_wif = await c.call("dumpprivkey", tr)
        wpkh_wif = await c.call("dumpprivkey", wpkh_coin["address"])
        k = await c.call("signrawtransactionwithkey", raw, [internal_wif, wpkh_wif])
        assert k["complete"] is False
        assert [(x["vout"], x["error"]) for x in k["errors"]] == [
            (tr_coin["vout"], "Witness program was passed an empty witness")]
        # ... the output key's secret does, to the very same bytes as the wallet (zero aux,
        # deterministic low-R ECDSA)
        secret, _ = decode_wif(internal_wif, REGTEST)
        tweaked = PrivateKey(secret).taproot_tweaked(None)
        assert witness_script(1, tweaked.xonly_public_key).hex() == tr_coin["scriptPubKey"]
        k2 = await c.call("signrawtransactionwithkey", raw,
                          [encode_wif(tweaked.secret, True, REGTEST), wpkh_wif])
        assert k2 == signed

        # an unknown prevout: the P2TR input cannot be signed (BIP341 commits to every spent
        # output), the P2WPKH one still is
        fake = {"txid": "ab" * 32, "vout": 7}
        raw3 = await c.call("createrawtransaction", ins + [fake], {FOREIGN: 1})
        s4 = await c.call("signrawtransactionwithwallet", raw3)
        t4 = Tx.from_hex(s4["hex"])
        assert s4["complete"] is False and t4.vin[0].witness == () and len(t4.vin[1].witness) == 2
        assert [(x["txid"], x["vout"], x["error"]) for x in s4["errors"]] == [
            (tr_coin["txid"], tr_coin["vout"], "Witness program was passed an empty witness"),
            ("ab" * 32, 7, "Input not found or already spent")]
        # ... given in prevtxs with its amount, everything signs
        other = witness_script(0, bytes(20))
        s5 = await c.call("signrawtransactionwithwallet", raw3,
                          [dict(fake, scriptPubKey=other.hex(), amount=0.5)])
        assert [x["vout"] for x in s5["errors"]] == [7]          # not ours: only that one fails
        assert len(Tx.from_hex(s5["hex"]).vin[0].witness[0]) == 64
        # a prevtxs entry contradicting a known coin
        with pytest.raises(RPCError) as e:
            await c.call("signrawtransactionwithwallet", raw,
                         [{"txid": tr_coin["txid"], "vout": tr_coin["vout"], "scriptPubKey": "51", "amount": 1}])
        assert (e.value.code, e.value.message) == (
            -22, f"Previous output scriptPubKey mismatch:\n1 {tr_coin['scriptPubKey'][4:]}\nvs:\n1")

        txid = await c.call("sendrawtransaction", signed["hex"])
        (bh,) = await c.call("generatetoaddress", 1, FOREIGN)
        assert txid in (await c.call("getblock", bh))["tx"]
