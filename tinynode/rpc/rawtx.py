"""Mempool and raw-transaction RPCs (Core's rpc/mempool.cpp and rpc/rawtransaction.cpp):
the pool's contents, mempool acceptance (`sendrawtransaction`, `testmempoolaccept`), decoders
(`decoderawtransaction`, `decodescript`, `validateaddress`), `createrawtransaction` and the two
`signrawtransactionwith*`. Argument parsing and JSON over the mempool and the chain state.
"""

from __future__ import annotations

import logging
from typing import Any

from ..consensus.errors import PolicyError, RejectReason, ValidationError
from ..primitives.address import AddressError, address_from_script, decode_address
from ..primitives.hashes import hash_to_hex
from ..primitives.serialize import DecodeError
from ..primitives.tx import Tx
from ..mempool.policy import MAX_OP_RETURN_RELAY
from ..script.descriptor import add_checksum, infer_descriptor
from ..script.script import ScriptParseError, iter_ops, multisig_info
from ..validation import TxOrigin
from .protocol import (
    RPC_DESERIALIZATION_ERROR, RPC_MISC_ERROR, RPC_INVALID_ADDRESS_OR_KEY, RPC_INVALID_PARAMETER, RPC_TYPE_ERROR,
    RPC_VERIFY_ALREADY_IN_CHAIN, RPCError,
)
from .util import (
    RPCArea, _bool, _hash, _int, _script_asm, _script_pubkey_json, _script_type, _str, amount_from_json,
    amount_to_json,
)

log = logging.getLogger(__name__)


#: Core's getrawtransaction error without -txindex (rpc/rawtransaction.cpp)
NO_TXINDEX_MESSAGE = ("No such mempool transaction. Use -txindex or provide a block hash to enable "
                      "blockchain transaction queries. Use gettransaction for wallet transactions.")


def txindex_enabled(node: Any) -> bool:
    """Core's `g_txindex != nullptr`: tinynode always keeps its tx index, and exposes it to RPC
    and REST lookups by txid only with --txindex (a node without a config, in tests, has it)."""
    cfg = getattr(node, "config", None)
    return True if cfg is None else bool(getattr(cfg, "txindex", True))


class RawTxRPC(RPCArea):
    """Mempool and raw-transaction methods."""

    async def m_getrawmempool(self, verbose=False, mempool_sequence=False) -> Any:
        """getrawmempool ( verbose )
Returns all transaction ids in memory pool as a json array of string transaction ids."""
        verbose = _bool(verbose, "verbose")

        def work():
            mp = self.node.mempool
            if mp is None:
                return {} if verbose else []
            entries = list(mp.entries())
            if not verbose:
                return [e.tx.txid_hex for e in entries]
            return {e.tx.txid_hex: self._mempool_entry_json(e) for e in entries}
        return await self._w(work)

    async def m_getmempoolinfo(self) -> dict:
        """getmempoolinfo
Returns details on the active state of the TX memory pool."""
        def work():
            mp = self.node.mempool
            if mp is None:
                return {"loaded": False}
            i = mp.info()
            return {"loaded": True, "size": i.size, "bytes": i.bytes, "usage": i.bytes,
                    "total_fee": amount_to_json(i.total_fee), "maxmempool": i.max_mempool,
                    "mempoolminfee": amount_to_json(i.mempool_min_fee.sat_per_kvb),
                    "minrelaytxfee": amount_to_json(i.min_relay_fee.sat_per_kvb),
                    "incrementalrelayfee": amount_to_json(i.incremental_relay_fee.sat_per_kvb),
                    "unbroadcastcount": 0, "fullrbf": i.full_rbf,
                    "permitbaremultisig": mp.config.permit_bare_multisig,
                    "maxdatacarriersize": MAX_OP_RETURN_RELAY}
        return await self._w(work)

    async def m_getmempoolentry(self, txid) -> dict:
        """getmempoolentry "txid"
Returns mempool data for given transaction."""
        t = _hash(txid, "parameter 1")

        def work():
            mp = self.node.mempool
            e = mp.get(t) if mp is not None else None
            if e is None:
                raise RPCError(RPC_INVALID_ADDRESS_OR_KEY, "Transaction not in mempool")
            return self._mempool_entry_json(e)
        return await self._w(work)

    @staticmethod
    def _mempool_entry_json(e) -> dict:
        """Core `entryToJSON` (getmempoolentry, getrawmempool verbose, …): vsize and weight per
        BIP141, the wtxid; full RBF, so every entry is replaceable."""
        return {"vsize": e.size, "weight": e.tx.weight, "time": int(e.time), "height": e.height,
                "descendantcount": e.descendant_count, "descendantsize": e.descendant_size,
                "ancestorcount": e.ancestor_count, "ancestorsize": e.ancestor_size,
                "wtxid": e.tx.wtxid_hex,
                "fees": {"base": amount_to_json(e.fee), "modified": amount_to_json(e.fee),
                         "ancestor": amount_to_json(e.ancestor_fees),
                         "descendant": amount_to_json(e.descendant_fees)},
                "depends": sorted(hash_to_hex(d) for d in e.depends),
                "spentby": sorted(hash_to_hex(d) for d in e.spent_by),
                "bip125-replaceable": True, "unbroadcast": False}

    async def m_testmempoolaccept(self, rawtxs, maxfeerate=0.10) -> list:
        """testmempoolaccept ["rawtx",...] ( maxfeerate )
Returns result of mempool acceptance tests indicating if raw transaction(s) would be accepted."""
        if not isinstance(rawtxs, list) or not rawtxs:
            raise RPCError(RPC_TYPE_ERROR, "rawtxs must be a non-empty array")
        if len(rawtxs) > 25:
            raise RPCError(RPC_INVALID_PARAMETER, "Array must contain between 1 and 25 transactions.")
        txs = []
        for r in rawtxs:
            try:
                txs.append(Tx.from_hex(_str(r, "rawtx")))
            except DecodeError:
                raise RPCError(RPC_DESERIALIZATION_ERROR, f"TX decode failed: {r} Make sure the tx has at least one input.") from None
        max_rate = amount_from_json(maxfeerate)

        def one(tx: Tx, entry: Any, err: Exception | None) -> dict:
            res: dict[str, Any] = {"txid": tx.txid_hex, "wtxid": tx.wtxid_hex}
            if isinstance(err, ValidationError):  # Core: reject-details = ValidationState::ToString()
                if err.reason in (RejectReason.MISSING_INPUTS, RejectReason.BAD_TXNS_INPUTS_MISSINGORSPENT):
                    return {**res, "allowed": False, "reject-reason": "missing-inputs"}  # TX_MISSING_INPUTS
                details = err.reject_string + (f", {err.detail}" if err.detail and not err._formatted() else "")
                return {**res, "allowed": False, "reject-reason": err.reject_string, "reject-details": details}
            if isinstance(err, PolicyError):
                if err.reason == "mempool unavailable":
                    return {**res, "allowed": False, "reject-reason": err.reason}
                return {**res, "allowed": False, "reject-reason": err.reason,
                        "reject-details": err.reason + (f", {err.detail}" if err.detail else "")}
            if err is not None:
                raise err
            fee = entry.fee
            vsize = tx.vsize
            if max_rate and fee * 1000 > max_rate * vsize:
                return {**res, "allowed": False, "reject-reason": "max-fee-exceeded"}
            return {**res, "allowed": True, "vsize": vsize,
                    "fees": {"base": amount_to_json(fee),
                             "effective-feerate": amount_to_json(fee * 1000 // vsize),
                             "effective-includes": [tx.wtxid_hex]}}   # Core lists wtxids
        # a dry run of every accept check, BIP125 replacement rules included
        verdicts = await self.node.service.test_txs(txs)
        return [one(tx, entry, err) for tx, (entry, err) in zip(txs, verdicts)]

    async def m_getrawtransaction(self, txid, verbosity=0, blockhash=None) -> Any:
        """getrawtransaction "txid" ( verbosity "blockhash" )
Return the raw transaction data, from the mempool or the transaction index.
verbosity: 0 (or false) hex, 1 (or true) a JSON object, 2 also "fee" and each input's "prevout"
(generated, height, value, scriptPubKey) from the block's undo data; a mempool or coinbase
transaction shows as with verbosity 1, as Core."""
        t = _hash(txid, "parameter 1")
        level = _verbosity(verbosity)
        bh = _hash(blockhash, "parameter 3") if blockhash is not None else None

        def work():
            cs = self._cs()
            mp = self.node.mempool
            if bh is None and mp is not None:
                e = mp.get(t)
                if e is not None:
                    return e.tx, None, None, None
            if bh is not None:
                if cs.get_entry(bh) is None:
                    raise RPCError(RPC_INVALID_ADDRESS_OR_KEY, "Block hash not found")
                block = cs.get_block(bh)
                if block is None:        # Core: the block's data is pruned or not downloaded
                    raise RPCError(RPC_MISC_ERROR, "Block not available")
                for tx in block.txs:
                    if tx.txid == t:
                        height = cs.get_entry(bh).height
                        return tx, bh, height, self._prevouts(tx, block, bh, level)
                raise RPCError(RPC_INVALID_ADDRESS_OR_KEY,
                               "No such transaction found in the provided block. Use gettransaction for wallet transactions.")
            if not txindex_enabled(self.node):
                raise RPCError(RPC_INVALID_ADDRESS_OR_KEY, NO_TXINDEX_MESSAGE)
            found = cs.get_tx(t)
            if found is None:
                raise RPCError(RPC_INVALID_ADDRESS_OR_KEY,
                               "No such mempool or blockchain transaction. Use gettransaction for wallet transactions.")
            tx, block_hash, height = found
            prevouts = None
            if level >= 2 and not tx.is_coinbase():
                prevouts = self._prevouts(tx, cs.get_block(block_hash), block_hash, level)
            return tx, block_hash, height, prevouts
        tx, block_hash, height, prevouts = await self._w(work)
        if level <= 0:
            return tx.raw.hex()
        j: dict[str, Any] = {}
        if bh is not None:  # Core pushes in_active_chain first, only with a blockhash argument
            j["in_active_chain"] = await self._w(lambda: self._cs().get_block_hash(height) == bh)
        j.update(self.tx_to_json(tx, block_hash, height, self.node.writer.snapshot.height))
        if prevouts is not None:   # Core TxToUniv with undo data, TxVerbosity::SHOW_DETAILS_AND_PREVOUT
            for vin, c in zip(j["vin"], prevouts):
                seq = vin.pop("sequence")
                vin["prevout"] = {"generated": c.is_coinbase, "height": c.height,
                                  "value": amount_to_json(c.value),
                                  "scriptPubKey": _script_pubkey_json(c.script_pubkey, self._params)}
                vin["sequence"] = seq
            fee = sum(c.value for c in prevouts) - sum(o.value for o in tx.vout)
            hexstr = j.pop("hex", None)
            rest = {k: j.pop(k) for k in ("blockhash", "confirmations") if k in j}
            j["fee"] = amount_to_json(fee)
            if hexstr is not None:
                j["hex"] = hexstr
            j.update(rest)
        if block_hash is not None:
            blk_time = await self._w(lambda: self._cs().get_entry(block_hash).header.time)
            j["time"] = j["blocktime"] = blk_time
        return j

    def _prevouts(self, tx: Tx, block: Any, block_hash: bytes, level: int) -> list | None:
        """Writer thread: the coins `tx` spent, from its block's undo record (Core CTxUndo);
        None for a coinbase, below verbosity 2, or without undo data."""
        if level < 2 or tx.is_coinbase() or block is None:
            return None
        entry = self._cs().get_entry(block_hash)
        spent = self._block_spent_coins(block, entry) if entry is not None else None
        if spent is None:
            return None
        for i, btx in enumerate(block.txs[1:]):
            if btx.txid == tx.txid:
                return spent[i]
        return None

    async def m_sendrawtransaction(self, hexstring, maxfeerate=0.10) -> str:
        """sendrawtransaction "hexstring" ( maxfeerate )
Submit a raw transaction (serialized, hex-encoded) to the local node and network."""
        try:
            tx = Tx.from_hex(_str(hexstring, "hexstring"))
        except DecodeError:
            raise RPCError(RPC_DESERIALIZATION_ERROR,
                           "TX decode failed. Make sure the tx has at least one input.") from None
        max_rate = amount_from_json(maxfeerate)  # coins per kvB

        origin = TxOrigin.rpc()

        def work():
            cs = self._cs()
            mp = self.node.mempool
            if mp is not None and tx.txid in mp:
                return None
            found = cs.get_tx(tx.txid)
            if found is not None:
                raise RPCError(RPC_VERIFY_ALREADY_IN_CHAIN, "Transaction already in block chain")
            res = self._accept(tx, origin, max_rate)
            w = self.node.wallet
            if w is not None and w.is_relevant(tx):
                w.add_tx(tx, from_me=False)
            return res
        res = await self._w(work)
        if res is not None:
            await self.node.service.publish(res, origin)   # relayed to peers
        return tx.txid_hex

    async def m_decoderawtransaction(self, hexstring, iswitness=None) -> dict:
        """decoderawtransaction "hexstring"
Return a JSON object representing the serialized, hex-encoded transaction."""
        try:
            tx = Tx.from_hex(_str(hexstring, "hexstring"))
        except DecodeError:
            raise RPCError(RPC_DESERIALIZATION_ERROR, "TX decode failed") from None
        return self.tx_to_json(tx, include_hex=False)

    async def m_decodescript(self, hexstring) -> dict:
        """decodescript "hexstring"
Decode a hex-encoded script."""
        from ..primitives.address import encode_address
        from ..primitives.hashes import hash160
        try:
            script = bytes.fromhex(_str(hexstring, "hexstring"))
        except ValueError:
            raise RPCError(RPC_INVALID_PARAMETER, f"argument must be hexadecimal string (not '{hexstring}')") from None
        j: dict[str, Any] = {"asm": _script_asm(script), "desc": infer_descriptor(script, self._params),
                             "type": _script_type(script)}
        addr = address_from_script(script, self._params)
        if addr:
            j["address"] = addr
        if _can_wrap(script, j["type"]):
            j["p2sh"] = encode_address("p2sh", hash160(script), self._params)
            segwit = _segwit_wrap(script, j["type"])
            if segwit is not None:
                sj = {"asm": _script_asm(segwit), "desc": infer_descriptor(segwit, self._params)}
                if segwit[1] == 32 and j["type"] == "multisig":
                    # Core infers the P2WSH with the script known: wsh(multi(...))
                    inner = infer_descriptor(script, self._params).split("#")[0]
                    sj["desc"] = add_checksum(f"wsh({inner})")
                sj.update({"hex": segwit.hex(), "address": address_from_script(segwit, self._params),
                           "type": _script_type(segwit),
                           "p2sh-segwit": encode_address("p2sh", hash160(segwit), self._params)})
                j["segwit"] = sj
        return j

    async def m_validateaddress(self, address) -> dict:
        """validateaddress "address"
Return information about the given address."""
        a = _str(address, "address")
        try:
            dest = decode_address(a, self._params)
        except AddressError as e:
            return {"isvalid": False, "error_locations": [], "error": str(e)}
        spk = dest.script_pubkey
        # Core DescribeAddress: the address re-encoded (bech32 in lower case), then per kind
        j: dict[str, Any] = {"isvalid": True, "address": address_from_script(spk, self._params) or a,
                             "scriptPubKey": spk.hex()}
        if not dest.is_witness:
            j.update(isscript=dest.kind == "p2sh", iswitness=False)
            return j
        if dest.kind != "witness_unknown" or dest.program == b"\x4e\x73":
            j["isscript"] = dest.kind != "p2wpkh"
        j.update(iswitness=True, witness_version=dest.witness_version, witness_program=dest.program.hex())
        return j

    def _parse_outputs(self, outputs: Any) -> list:
        """Core's `AddOutputs`: {address: amount, "data": hex} or an array of one-key objects."""
        from ..primitives.tx import TxOut
        if isinstance(outputs, dict):
            items = list(outputs.items())
        elif isinstance(outputs, list):
            items = []
            for o in outputs:
                if not isinstance(o, dict) or len(o) != 1:
                    raise RPCError(RPC_INVALID_PARAMETER, "Invalid parameter, key-value pair must contain exactly one key")
                items.extend(o.items())
        else:
            raise RPCError(RPC_TYPE_ERROR, "Outputs must be an object or an array")
        out, seen, has_data = [], set(), False
        for key, value in items:
            if key == "data":
                if has_data:
                    raise RPCError(RPC_INVALID_PARAMETER, "Invalid parameter, duplicate key: data")
                has_data = True
                try:
                    data = bytes.fromhex(_str(value, "data"))
                except ValueError:
                    raise RPCError(RPC_INVALID_PARAMETER, "Data must be hexadecimal string") from None
                from ..script.script import nulldata_script
                out.append(TxOut(0, nulldata_script(data)))
                continue
            spk = self._decode_address(key)
            if key in seen:
                raise RPCError(RPC_INVALID_PARAMETER, f"Invalid parameter, duplicated address: {key}")
            seen.add(key)
            out.append(TxOut(amount_from_json(value), spk))
        return out

    async def m_createrawtransaction(self, inputs, outputs, locktime=0, replaceable=True) -> str:
        """createrawtransaction [{"txid":"hex","vout":n,"sequence":n},...] [{"address":amount},{"data":"hex"},...] ( locktime replaceable )
Create a transaction spending the given inputs and creating new outputs (not signed, not stored)."""
        from ..primitives.tx import OutPoint, TxIn
        if not isinstance(inputs, list):
            raise RPCError(RPC_TYPE_ERROR, "Expected type array for inputs")
        lt = _int(locktime, "locktime")
        if not 0 <= lt <= 0xFFFFFFFF:
            raise RPCError(RPC_INVALID_PARAMETER, "Invalid parameter, locktime out of range")
        rbf = _bool(replaceable, "replaceable")
        vin = []
        for i in inputs:
            if not isinstance(i, dict):
                raise RPCError(RPC_TYPE_ERROR, "Expected type object for an input")
            t = _hash(i.get("txid"), "txid")
            if "vout" not in i:
                raise RPCError(RPC_INVALID_PARAMETER, "Invalid parameter, missing vout key")
            n = _int(i["vout"], "vout")
            if n < 0:
                raise RPCError(RPC_INVALID_PARAMETER, "Invalid parameter, vout cannot be negative")
            default_seq = 0xFFFFFFFD if rbf else (0xFFFFFFFE if lt else 0xFFFFFFFF)
            seq = _int(i.get("sequence", default_seq), "sequence")
            if not 0 <= seq <= 0xFFFFFFFF:
                raise RPCError(RPC_INVALID_PARAMETER, "Invalid parameter, sequence number is out of range")
            vin.append(TxIn(OutPoint(t, n), b"", seq))
        tx = Tx(2, tuple(vin), tuple(self._parse_outputs(outputs)), lt)
        return tx.raw.hex()

    def _sign_inputs(self, tx: Tx, key_for, prevtxs: Any, sighashtype: Any) -> dict:
        """Core `SignTransaction`: sign every input we can (P2PKH, P2PK, P2WPKH); report the
        others. A P2WPKH input needs the spent amount (BIP143): prevtxs' "amount", else the UTXO
        set or the mempool, as Core's `FetchAndClearCoins`; the witness is [sig, pubkey] with an
        empty scriptSig, and all of the tx's witness inputs share one PrecomputedTxData."""
        from dataclasses import replace as dc_replace
        from ..primitives.hashes import hash160
        from ..primitives.tx import OutPoint, TxIn
        from ..script.sighash import (
            SIGHASH_ALL, SIGHASH_ANYONECANPAY, SIGHASH_NONE, SIGHASH_SINGLE, PrecomputedTxData,
        )
        from ..script.sign import sign_p2pk, sign_p2pkh, sign_p2wpkh
        from ..script.script import classify, iter_ops
        names = {"ALL": SIGHASH_ALL, "NONE": SIGHASH_NONE, "SINGLE": SIGHASH_SINGLE,
                 "ALL|ANYONECANPAY": SIGHASH_ALL | SIGHASH_ANYONECANPAY,
                 "NONE|ANYONECANPAY": SIGHASH_NONE | SIGHASH_ANYONECANPAY,
                 "SINGLE|ANYONECANPAY": SIGHASH_SINGLE | SIGHASH_ANYONECANPAY}
        ht_name = "ALL" if sighashtype in (None, "DEFAULT") else _str(sighashtype, "sighashtype")
        if ht_name not in names:
            raise RPCError(RPC_INVALID_PARAMETER, f"{ht_name} is not a valid sighash parameter.")
        hash_type = names[ht_name]
        given: dict = {}
        for p in prevtxs or []:
            if not isinstance(p, dict):
                raise RPCError(RPC_TYPE_ERROR, "prevtxs entries must be objects")
            try:
                spk = bytes.fromhex(_str(p.get("scriptPubKey"), "scriptPubKey"))
            except ValueError:
                raise RPCError(RPC_DESERIALIZATION_ERROR, "scriptPubKey must be hex") from None
            amount = amount_from_json(p["amount"]) if p.get("amount") is not None else None
            given[OutPoint(_hash(p.get("txid"), "txid"), _int(p.get("vout"), "vout"))] = (spk, amount)
        cs, mp = self._cs(), self.node.mempool
        spent: list = []            # (script_pubkey, amount or None) per input, None if unknown
        for txin in tx.vin:
            found = given.get(txin.prevout)
            coin = cs.get_coin(txin.prevout)
            if coin is None and mp is not None:
                e = mp.get(txin.prevout.txid)
                if e is not None and txin.prevout.n < len(e.tx.vout):
                    coin = e.tx.vout[txin.prevout.n]
            if found is None and coin is not None:
                found = (coin.script_pubkey, coin.value)
            elif found is not None and found[1] is None and coin is not None \
                    and coin.script_pubkey == found[0]:
                found = (found[0], coin.value)
            spent.append(found)

        def error(i: int, txin, msg: str) -> dict:
            return {"txid": hash_to_hex(txin.prevout.txid), "vout": txin.prevout.n,
                    "witness": [w.hex() for w in vin[i].witness],
                    "scriptSig": vin[i].script_sig.hex(), "sequence": txin.sequence, "error": msg}
        vin = list(tx.vin)
        errors = []
        txdata = None
        for i, txin in enumerate(tx.vin):
            if spent[i] is None:
                errors.append(error(i, txin, "Input not found or already spent"))
                continue
            spk, amount = spent[i]
            kind = "witness_v0_keyhash" if len(spk) == 22 and spk[:2] == b"\x00\x14" else classify(spk).value
            key = None
            if kind == "pubkeyhash":
                key = key_for(spk[3:23], spk)
            elif kind == "pubkey":
                pub = next(d for op, d in iter_ops(spk) if d is not None)
                key = key_for(hash160(pub), None)
            elif kind == "witness_v0_keyhash":
                key = key_for(spk[2:22], spk)
                if key is not None and not key.compressed:
                    key = None
                if key is not None and amount is None:
                    errors.append(error(i, txin, "Missing amount"))
                    continue
            if key is None:
                errors.append(error(i, txin, "Unable to sign input, missing key or unsupported script"))
                continue
            tmp = dc_replace(tx, vin=tuple(vin))
            if kind == "witness_v0_keyhash":
                if txdata is None:
                    txdata = PrecomputedTxData.for_tx(tx)
                witness = sign_p2wpkh(tmp, i, key, amount, hash_type, txdata)
                vin[i] = TxIn(txin.prevout, b"", txin.sequence, witness)
                continue
            sig = (sign_p2pkh if kind == "pubkeyhash" else sign_p2pk)(tmp, i, key, spk, hash_type)
            vin[i] = TxIn(txin.prevout, sig, txin.sequence, txin.witness)
        signed = dc_replace(tx, vin=tuple(vin))
        j: dict[str, Any] = {"hex": signed.raw.hex(), "complete": not errors}
        if errors:
            j["errors"] = errors
        return j

    async def m_signrawtransactionwithkey(self, hexstring, privkeys, prevtxs=None, sighashtype="ALL") -> dict:
        """signrawtransactionwithkey "hexstring" ["privatekey",...] ( [{"txid":"hex","vout":n,"scriptPubKey":"hex","amount":amount},...] "sighashtype" )
Sign inputs for raw transaction with the given base58-encoded private keys."""
        from ..primitives.address import decode_wif
        from ..primitives.hashes import hash160
        from ..primitives.keys import PrivateKey
        try:
            tx = Tx.from_hex(_str(hexstring, "hexstring"))
        except DecodeError:
            raise RPCError(RPC_DESERIALIZATION_ERROR, "TX decode failed. Make sure the tx has at least one input.") from None
        if not isinstance(privkeys, list):
            raise RPCError(RPC_TYPE_ERROR, "privkeys must be an array")
        keys = {}
        for wif in privkeys:
            try:
                secret, compressed = decode_wif(_str(wif, "privkey"), self._params)
            except AddressError:
                raise RPCError(RPC_INVALID_ADDRESS_OR_KEY, "Invalid private key") from None
            k = PrivateKey(secret, compressed)
            keys[hash160(k.public_key.sec)] = k
        return await self._w(self._sign_inputs, tx, lambda h160, spk: keys.get(h160), prevtxs, sighashtype)

    async def m_signrawtransactionwithwallet(self, hexstring, prevtxs=None, sighashtype="ALL") -> dict:
        """signrawtransactionwithwallet "hexstring" ( [{"txid":"hex","vout":n,"scriptPubKey":"hex","amount":amount},...] "sighashtype" )
Sign inputs for raw transaction with the wallet's keys."""
        from ..primitives.address import p2pkh_script
        try:
            tx = Tx.from_hex(_str(hexstring, "hexstring"))
        except DecodeError:
            raise RPCError(RPC_DESERIALIZATION_ERROR, "TX decode failed. Make sure the tx has at least one input.") from None
        w = self._wallet()
        from .walletmgmt import ensure_unlocked
        ensure_unlocked(w)      # Core EnsureWalletIsUnlocked: -13 while an encrypted wallet is locked

        def key_for(h160: bytes, spk: bytes | None):
            # the wallet signs the scripts it handed out (P2PKH or P2WPKH); a bare P2PK input is
            # signed when the key's P2PKH script is ours
            return w.keys.private_key(spk if spk is not None else p2pkh_script(h160))
        return await self._w(self._sign_inputs, tx, key_for, prevtxs, sighashtype)


#: Core `IsOpSuccess` (BIP342): 80, 98, 126-129, 131-134, 137-138, 141-142, 149-153, 187-254
_OP_SUCCESS = frozenset({80, 98, *range(126, 130), *range(131, 135), 137, 138, 141, 142,
                         *range(149, 154), *range(187, 255)})
_MAX_OPCODE = 0xB9          # Core MAX_OPCODE = OP_NOP10
_OP_CHECKSIGADD = 0xBA


def _can_wrap(script: bytes, kind: str) -> bool:
    """Core decodescript's `can_wrap`: a P2SH (and maybe segwit) wrapping is shown for scripts of
    these types whose ops are all valid (CScript::HasValidOps), that are spendable and that hold
    no OP_CHECKSIGADD or OP_SUCCESSx."""
    if kind in ("nulldata", "scripthash", "witness_unknown", "witness_v1_taproot", "anchor"):
        return False
    if script[:1] == b"\x6a" or len(script) > 10_000:          # CScript::IsUnspendable
        return False
    try:
        for op, data in iter_ops(script):
            if op > _MAX_OPCODE or (data is not None and len(data) > 520):
                return False
            if op == _OP_CHECKSIGADD or op in _OP_SUCCESS:
                return False
    except ScriptParseError:
        return False
    return True


def _segwit_wrap(script: bytes, kind: str) -> bytes | None:
    """Core decodescript's `can_wrap_P2WSH` and its segwit script: P2WPKH for a (compressed)
    pubkey or a key hash, P2WSH for multisig with compressed keys and nonstandard scripts."""
    import hashlib
    from ..primitives.hashes import hash160
    if kind == "pubkey":
        pubkey = script[1:-1]
        return None if len(pubkey) != 33 else b"\x00\x14" + hash160(pubkey)
    if kind == "pubkeyhash":
        return b"\x00\x14" + script[3:23]
    if kind == "multisig":
        info = multisig_info(script)
        if info is None or any(len(k) != 33 for k in info[1]):
            return None
    elif kind != "nonstandard":
        return None
    return b"\x00\x20" + hashlib.sha256(script).digest()


def _verbosity(value: Any) -> int:
    """Core `ParseVerbosity(arg, 0, allow_bool=true)`: false/true are 0/1, else an integer."""
    if value is None:
        return 0
    if isinstance(value, bool):
        return int(value)
    return _int(value, "verbosity")
