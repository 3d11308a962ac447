"""Issue 9: each method's success reply has the field names and JSON types Bitcoin Core's RPC
help documents for the same request shape (legacy, non-segwit txs: wtxid = txid, vsize = size),
and each documented error code comes back. Fields Core documents that tinynode cannot have
(descriptors `desc`, segwit-only members) are listed where they are left out."""
import pytest

from tinynode.primitives.hashes import hash_to_hex

from tests.framework.nodes import running_nodes
from tests.framework.rpcassert import rpc_code as err

pytestmark = pytest.mark.slow

NUM = (int, float)
HEX64 = "0123456789abcdef"


def shape(obj: dict, spec: dict, optional: set = frozenset(), extra: set = frozenset()) -> None:
    """obj has exactly spec's keys (+ optional ones present, + tinynode's `extra`), each of
    the documented type."""
    assert set(spec) <= set(obj), f"missing {sorted(set(spec) - set(obj))}"
    unknown = set(obj) - set(spec) - set(optional) - set(extra)
    assert not unknown, f"not in Core's help: {sorted(unknown)}"
    for k, t in spec.items():
        assert isinstance(obj[k], t) and not (t in (int, NUM) and isinstance(obj[k], bool)), (k, obj[k])


def is_hash(s) -> bool:
    return isinstance(s, str) and len(s) == 64 and all(c in HEX64 for c in s)


SCRIPT_PUBKEY = {"asm": str, "desc": str, "hex": str, "type": str}
MEMPOOL_ENTRY = {"vsize": int, "weight": int, "time": int, "height": int, "descendantcount": int,
                 "descendantsize": int, "ancestorcount": int, "ancestorsize": int, "wtxid": str,
                 "fees": dict, "depends": list, "spentby": list, "bip125-replaceable": bool,
                 "unbroadcast": bool}
HEADER = {"hash": str, "confirmations": int, "height": int, "version": int, "versionHex": str,
          "merkleroot": str, "time": int, "mediantime": int, "nonce": int, "bits": str,
          "target": str, "difficulty": NUM, "chainwork": str, "nTx": int}


async def test_replies_match_cores_documented_shapes_and_error_codes():
    async with running_nodes(1, txindex=True) as (a,):
        c = a.rpc
        addr = await c.call("getnewaddress", "lbl")
        hashes = await c.call("generatetoaddress", 101, addr)
        dest = await c.call("getnewaddress")
        txid = await c.call("sendtoaddress", dest, 3)
        wtx = await c.call("gettransaction", txid)
        fee = -wtx["fee"]

        # --- getblockheader / getchaintips / getdifficulty
        h = await c.call("getblockheader", hashes[50])
        shape(h, HEADER, optional={"previousblockhash", "nextblockhash"})
        assert h["nTx"] == 1 and h["nextblockhash"] == hashes[51] and h["confirmations"] == 51
        assert is_hash(h["chainwork"]) and h["bits"] == "207fffff" and h["versionHex"] == "20000000"
        assert await err(c.call("getblockheader", "00" * 32)) == -5
        assert await err(c.call("getblockheader", "00")) == -8              # blockhash must be of length 64
        assert await err(c.call("getblockheader", "zz" * 32)) == -8         # must be hexadecimal
        tips = await c.call("getchaintips")
        shape(tips[0], {"height": int, "hash": str, "branchlen": int, "status": str})
        assert isinstance(await c.call("getdifficulty"), float)

        # --- getblock verbosity 2 carries each non-coinbase tx's fee (Core ≥ 25, from undo data)
        mined = (await c.call("generatetoaddress", 1, addr))[0]
        b2 = await c.call("getblock", mined, 2)
        assert "fee" not in b2["tx"][0] and b2["tx"][1]["txid"] == txid and b2["tx"][1]["fee"] == fee
        assert b2["tx"][0]["vout"][0]["value"] == 50 + fee
        shape(await c.call("getblock", mined, 1), {**HEADER, "size": int, "strippedsize": int, "weight": int,
                                                    "coinbase_tx": dict, "tx": list}, optional={"previousblockhash", "nextblockhash"})
        assert await err(c.call("getblock", "11" * 32)) == -5
        assert await err(c.call("getblockhash", -1)) == -8

        # --- gettxout (desc left out: no descriptors)
        n3 = next(v["n"] for v in b2["tx"][1]["vout"] if v["value"] == 3)
        out = await c.call("gettxout", txid, n3)
        shape(out, {"bestblock": str, "confirmations": int, "value": NUM, "scriptPubKey": dict, "coinbase": bool})
        shape(out["scriptPubKey"], SCRIPT_PUBKEY, optional={"address"})
        assert out["confirmations"] == 1 and out["value"] == 3 and out["bestblock"] == mined
        assert await c.call("gettxout", txid, 9) is None
        assert await err(c.call("gettxout", "xyz", 0)) == -8

        # --- gettxoutsetinfo
        u = await c.call("gettxoutsetinfo")
        shape(u, {"height": int, "bestblock": str, "txouts": int, "bogosize": int, "hash_serialized_3": str,
                  "total_amount": NUM, "transactions": int, "disk_size": int})
        assert u["txouts"] == 103 and u["transactions"] == 102 and u["total_amount"] == 5100

        # --- getmempoolinfo / getmempoolentry / getrawmempool verbose
        t2 = await c.call("sendtoaddress", dest, 1)
        n2 = next(v["n"] for v in (await c.call("getrawtransaction", t2, True))["vout"] if v["value"] == 1)
        child = await c.call("createrawtransaction", [{"txid": t2, "vout": n2}], {dest: 0.999})
        t3 = await c.call("sendrawtransaction", (await c.call("signrawtransactionwithwallet", child))["hex"])
        mi = await c.call("getmempoolinfo")
        shape(mi, {"loaded": bool, "size": int, "bytes": int, "usage": int, "total_fee": NUM,
                   "maxmempool": int, "mempoolminfee": NUM, "minrelaytxfee": NUM,
                   "incrementalrelayfee": NUM, "unbroadcastcount": int, "fullrbf": bool,
                   "permitbaremultisig": bool, "maxdatacarriersize": int})
        assert mi["size"] == 2
        e2 = await c.call("getmempoolentry", t2)
        shape(e2, MEMPOOL_ENTRY)
        shape(e2["fees"], {"base": NUM, "modified": NUM, "ancestor": NUM, "descendant": NUM})
        # the wallet spends a bech32 (P2WPKH) coin: the entry's wtxid is the witness hash
        wtxid2 = (await c.call("getrawtransaction", t2, True))["hash"]
        assert e2["spentby"] == [t3] and e2["descendantcount"] == 2 and e2["wtxid"] == wtxid2 != t2
        e3 = (await c.call("getrawmempool", True))[t3]
        shape(e3, MEMPOOL_ENTRY)
        assert e3["depends"] == [t2] and e3["ancestorcount"] == 2
        assert e3 == await c.call("getmempoolentry", t3)
        assert await err(c.call("getmempoolentry", "11" * 32)) == -5

        # --- decoderawtransaction / decodescript
        raw = (await c.call("gettransaction", t2))["hex"]
        d = await c.call("decoderawtransaction", raw)
        shape(d, {"txid": str, "hash": str, "version": int, "size": int, "vsize": int, "weight": int,
                  "locktime": int, "vin": list, "vout": list})
        # a P2WPKH spend (bech32 default): Core adds the input's "txinwitness" [sig, pubkey]
        shape(d["vin"][0], {"txid": str, "vout": int, "scriptSig": dict, "txinwitness": list, "sequence": int})
        assert len(d["vin"][0]["txinwitness"]) == 2 and d["vin"][0]["scriptSig"]["hex"] == ""
        shape(d["vin"][0]["scriptSig"], {"asm": str, "hex": str})
        shape(d["vout"][0], {"value": NUM, "n": int, "scriptPubKey": dict})
        assert await err(c.call("decoderawtransaction", "00")) == -22
        ds = await c.call("decodescript", d["vout"][0]["scriptPubKey"]["hex"])
        shape(ds, {"asm": str, "desc": str, "type": str}, optional={"address", "p2sh", "segwit"})
        if "segwit" in ds:
            shape(ds["segwit"], {"asm": str, "hex": str, "type": str, "desc": str, "p2sh-segwit": str},
                  optional={"address"})
        assert await err(c.call("decodescript", "zz")) == -8

        # --- validateaddress / getaddressinfo (desc, timestamp, hd* left out)
        va = await c.call("validateaddress", addr)
        # addr is bech32 (P2WPKH, the default type): Core adds witness_version / witness_program
        shape(va, {"isvalid": bool, "address": str, "scriptPubKey": str, "isscript": bool, "iswitness": bool,
                   "witness_version": int, "witness_program": str})
        assert va["iswitness"] is True and va["isscript"] is False and va["witness_version"] == 0
        bad = await c.call("validateaddress", "nope")
        shape(bad, {"isvalid": bool, "error_locations": list, "error": str})
        ai = await c.call("getaddressinfo", addr)
        shape(ai, {"address": str, "scriptPubKey": str, "ismine": bool, "solvable": bool, "desc": str,
                   "iswatchonly": bool, "isscript": bool, "iswitness": bool, "witness_version": int,
                   "witness_program": str, "ischange": bool, "labels": list},
              optional={"pubkey", "iscompressed"})
        assert ai["ismine"] and ai["desc"].startswith(f"wpkh({ai['pubkey']})#")
        leg = await c.call("getaddressinfo", await c.call("getnewaddress", "", "legacy"))
        shape(leg, {"address": str, "scriptPubKey": str, "ismine": bool, "solvable": bool, "desc": str,
                    "iswatchonly": bool, "isscript": bool, "iswitness": bool, "ischange": bool, "labels": list},
              optional={"pubkey", "iscompressed"})
        assert leg["desc"].startswith(f"pkh({leg['pubkey']})#") and leg["iswitness"] is False
        assert await err(c.call("getaddressinfo", "nope")) == -5

        # --- gettransaction / listtransactions (blockindex, comment, to left out)
        wtx = await c.call("gettransaction", txid)
        shape(wtx, {"amount": NUM, "fee": NUM, "confirmations": int, "blockhash": str, "blockheight": int,
                    "blocktime": int, "trusted": bool, "txid": str, "wtxid": str, "walletconflicts": list,
                    "time": int, "timereceived": int, "bip125-replaceable": str, "details": list, "hex": str},
              extra={"status"})
        shape(wtx["details"][0], {"address": str, "category": str, "amount": NUM, "vout": int, "fee": NUM,
                                  "abandoned": bool})
        assert await err(c.call("gettransaction", "11" * 32)) == -5
        rows = await c.call("listtransactions", "*", 100)
        send = next(r for r in rows if r["txid"] == txid and r["category"] == "send")
        shape(send, {"address": str, "category": str, "amount": NUM, "vout": int, "fee": NUM, "abandoned": bool,
                     "confirmations": int, "blockhash": str, "blockheight": int, "blocktime": int,
                     "trusted": bool, "txid": str, "wtxid": str, "walletconflicts": list, "time": int,
                     "timereceived": int, "bip125-replaceable": str})
        assert await err(c.call("listtransactions", "*", -1)) == -8

        # --- dumpprivkey / importprivkey
        assert await err(c.call("dumpprivkey", "nope")) == -5
        assert await err(c.call("dumpprivkey", "mipcBbFg9gMiCh81Kj8tqqdgoZub1ZJRfn")) == -4   # not the wallet's
        assert await err(c.call("importprivkey", "notakey")) == -5

        # --- raw transactions: createrawtransaction, sign*, testmempoolaccept, sendrawtransaction
        utxo = next(u for u in await c.call("listunspent") if u["amount"] == 50)
        shape(utxo, {"txid": str, "vout": int, "address": str, "label": str, "scriptPubKey": str, "amount": NUM,
                     "confirmations": int, "spendable": bool, "solvable": bool, "desc": str, "safe": bool})
        assert utxo["desc"].startswith("wpkh(")          # a bech32 coin's spending descriptor
        ins = [{"txid": utxo["txid"], "vout": utxo["vout"]}]
        assert await err(c.call("createrawtransaction", [{"txid": utxo["txid"]}], {dest: 1})) == -8  # vout missing
        assert await err(c.call("createrawtransaction", [{"txid": utxo["txid"], "vout": -1}], {dest: 1})) == -8
        assert await err(c.call("createrawtransaction", ins, {"nope": 1})) == -5
        assert await err(c.call("createrawtransaction", ins, [{dest: 1}, {dest: 2}])) == -8          # duplicated
        assert await err(c.call("createrawtransaction", ins, {dest: "x"})) == -3                    # amount
        rawtx = await c.call("createrawtransaction", ins, {dest: 49.9999})
        assert await err(c.call("signrawtransactionwithkey", rawtx, ["notakey"])) == -5
        assert await err(c.call("signrawtransactionwithwallet", "00")) == -22
        part = await c.call("signrawtransactionwithkey", rawtx, [])
        shape(part, {"hex": str, "complete": bool, "errors": list})
        # Core's help lists each error's "witness" (hex items) beside the scriptSig
        shape(part["errors"][0], {"txid": str, "vout": int, "witness": list, "scriptSig": str, "sequence": int,
                                  "error": str})
        signed = await c.call("signrawtransactionwithwallet", rawtx)
        shape(signed, {"hex": str, "complete": bool})
        ok = (await c.call("testmempoolaccept", [signed["hex"]]))[0]
        shape(ok, {"txid": str, "wtxid": str, "allowed": bool, "vsize": int, "fees": dict})
        shape(ok["fees"], {"base": NUM, "effective-feerate": NUM, "effective-includes": list})
        assert ok["fees"]["base"] == 0.0001 and ok["fees"]["effective-includes"] == [ok["wtxid"]]
        assert ok["fees"]["effective-feerate"] == round(0.0001 * 1000 / ok["vsize"], 8)
        no = (await c.call("testmempoolaccept", [rawtx]))[0]
        shape(no, {"txid": str, "wtxid": str, "allowed": bool, "reject-reason": str, "reject-details": str})
        # the unsigned input spends a P2WPKH coin with an empty witness: Core's
        # SCRIPT_ERR_WITNESS_PROGRAM_MISMATCH (a v0 key-hash program needs exactly 2 items)
        assert no["reject-reason"] == ("mempool-script-verify-flag-failed "
                                       "(Witness program hash mismatch)")
        # Core CScriptCheck's debug string (feature_cltv/feature_dersig compare it whole)
        from tinynode.primitives.tx import Tx
        utx = Tx.from_hex(rawtx)
        prev = utx.vin[0].prevout
        assert no["reject-details"] == (f"{no['reject-reason']}, input 0 of {utx.txid_hex} (wtxid "
                                        f"{utx.wtxid_hex}), spending {hash_to_hex(prev.txid)}:{prev.n}")
        high = (await c.call("testmempoolaccept", [signed["hex"]], 0.00000001))[0]
        assert high["allowed"] is False and high["reject-reason"] == "max-fee-exceeded"
        assert await err(c.call("testmempoolaccept", [])) in (-3, -8)
        assert await err(c.call("testmempoolaccept", ["00"])) == -22
        assert await err(c.call("sendrawtransaction", "00")) == -22
        assert await err(c.call("sendrawtransaction", rawtx)) == -26                 # unsigned: script fails
        ghost = await c.call("createrawtransaction", [{"txid": "11" * 32, "vout": 0}], {dest: 1})
        assert await err(c.call("sendrawtransaction", ghost)) == -25                 # missing inputs
        mined_raw = (await c.call("getrawtransaction", txid))
        assert await err(c.call("sendrawtransaction", mined_raw)) == -27             # already in the chain
        assert await err(c.call("getrawtransaction", "11" * 32)) == -5

        # --- generateblock / getmininginfo / uptime / help
        gb = await c.call("generateblock", addr, [])
        shape(gb, {"hash": str})
        assert await err(c.call("generateblock", "nope", [])) == -5
        assert await err(c.call("generateblock", addr, ["00"])) == -22
        mi = await c.call("getmininginfo")
        shape(mi, {"blocks": int, "bits": str, "difficulty": NUM, "target": str, "networkhashps": NUM,
                   "pooledtx": int, "chain": str, "next": dict, "warnings": list,
                   "blockmintxfee": NUM},
              optional={"currentblockweight", "currentblocktx"},   # once a block was assembled
              extra={"mining", "hashespersec", "blocksfound", "workers"})
        shape(mi["next"], {"height": int, "bits": str, "difficulty": NUM, "target": str})
        assert mi["next"]["height"] == mi["blocks"] + 1 and mi["networkhashps"] > 0
        assert await c.call("getnetworkhashps") == mi["networkhashps"]
        assert await c.call("getnetworkhashps", 1, 0) == 0 and await err(c.call("getnetworkhashps", 0)) == -8
        assert isinstance(await c.call("uptime"), int)
        hl = await c.call("help", "getblockheader")
        assert hl.startswith('getblockheader "blockhash" ( verbose )') and "Examples:" in hl

        # --- network: getnetworkinfo, bans, disconnectnode, setnetworkactive, getconnectioncount
        ni = await c.call("getnetworkinfo")
        shape(ni, {"version": int, "subversion": str, "protocolversion": int, "localservices": str,
                   "localservicesnames": list, "localrelay": bool, "timeoffset": int, "networkactive": bool,
                   "connections": int, "connections_in": int, "connections_out": int, "networks": list,
                   "relayfee": NUM, "incrementalfee": NUM, "localaddresses": list, "warnings": list})
        await c.call("setban", "10.9.8.7", "add", 3600)
        ban = (await c.call("listbanned"))[0]
        shape(ban, {"address": str, "banned_until": int, "time_remaining": int},
              optional={"ban_created", "ban_duration"}, extra={"reason"})
        assert 3590 <= ban["time_remaining"] <= 3600
        assert await err(c.call("setban", "10.9.8.7", "add")) == -23
        assert await err(c.call("setban", "10.9.8.6", "remove")) == -30
        assert await err(c.call("setban", "10.9.8.6", "frob")) == -1
        await c.call("clearbanned")
        assert await c.call("listbanned") == []
        assert await err(c.call("disconnectnode", "127.0.0.1:1")) == -29
        assert await err(c.call("disconnectnode", "127.0.0.1:1", 3)) == -32602
        assert await c.call("getconnectioncount") == 0
        assert await c.call("setnetworkactive", False) is False
        assert await c.call("setnetworkactive", True) is True
        assert await err(c.call("addnode", "127.0.0.1:1", "remove")) == -24
        await c.call("addnode", "127.0.0.1:1", "add")
        assert await err(c.call("addnode", "127.0.0.1:1", "add")) == -23

        # --- invalidate / reconsider
        assert await err(c.call("invalidateblock", "11" * 32)) == -5
        assert await err(c.call("reconsiderblock", "11" * 32)) == -5


async def test_testmempoolaccept_judges_replacements_without_touching_the_pool():
    """Core's testmempoolaccept runs the full RBF rules in a dry run (mempool.test_accept)."""
    async with running_nodes(1, txindex=True) as (a,):
        c = a.rpc
        addr = await c.call("getnewaddress")
        await c.call("generatetoaddress", 101, addr)
        utxo = next(u for u in await c.call("listunspent") if u["amount"] == 50)
        ins = [{"txid": utxo["txid"], "vout": utxo["vout"]}]
        dest = await c.call("getnewaddress")

        async def signed(amount):
            raw = await c.call("createrawtransaction", ins, {dest: amount})
            return (await c.call("signrawtransactionwithwallet", raw))["hex"]

        first = await c.call("sendrawtransaction", await signed(49.999))          # fee 0.001
        better = (await c.call("testmempoolaccept", [await signed(49.99)]))[0]     # fee 0.01: a valid replacement
        assert better["allowed"] is True and better["fees"]["base"] == 0.01
        worse = (await c.call("testmempoolaccept", [await signed(49.9995)]))[0]    # fee 0.0005 < 0.001
        assert worse["allowed"] is False and worse["reject-reason"] == "insufficient fee"
        assert await c.call("getrawmempool") == [first]                            # nothing replaced
