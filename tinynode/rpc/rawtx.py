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
from ..primitives.tx import OutPoint, Tx, TxOut
from ..script.descriptor import add_checksum, infer_descriptor
from ..script.script import ScriptParseError, iter_ops, multisig_info
from ..validation import TxOrigin
from .protocol import (
    RPC_DESERIALIZATION_ERROR, RPC_INTERNAL_ERROR, RPC_MISC_ERROR, RPC_INVALID_ADDRESS_OR_KEY, RPC_INVALID_PARAMETER, RPC_TYPE_ERROR,
    RPC_VERIFY_ALREADY_IN_CHAIN, RPC_VERIFY_ERROR, RPCError,
)
from .util import (
    RPCArea, _bool, _hash, _int, _jtype, _script_asm, _script_pubkey_json, _script_type, _str, amount_from_json,
    UNDO_UNREADABLE, amount_to_json, parse_fee_rate, raise_for_refusal,
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
                    "maxdatacarriersize": mp.config.max_datacarrier_bytes}
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
                "fees": {"base": amount_to_json(e.fee), "modified": amount_to_json(e.modified),
                         "ancestor": amount_to_json(e.ancestor_fees),
                         "descendant": amount_to_json(e.descendant_fees)},
                "depends": sorted(hash_to_hex(d) for d in e.depends),
                "spentby": sorted(hash_to_hex(d) for d in e.spent_by),
                "bip125-replaceable": True, "unbroadcast": False}

    async def m_testmempoolaccept(self, rawtxs, maxfeerate=0.10) -> list:
        """testmempoolaccept ["rawtx",...] ( maxfeerate )
Returns result of mempool acceptance tests indicating if raw transaction(s) would be accepted."""
        if not isinstance(rawtxs, list):     # Core's RPCHelpMan argument type check
            raise RPCError(RPC_TYPE_ERROR, f"JSON value of type {_jtype(rawtxs)} is not of expected type array")
        if not 1 <= len(rawtxs) <= 25:
            raise RPCError(RPC_INVALID_PARAMETER, "Array must contain between 1 and 25 transactions.")
        max_rate = parse_fee_rate(maxfeerate)
        txs = []
        for r in rawtxs:
            try:
                txs.append(Tx.from_hex(_str(r, "rawtx")))
            except (DecodeError, ValueError):
                raise RPCError(RPC_DESERIALIZATION_ERROR, f"TX decode failed: {r} Make sure the tx has at least one input.") from None

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
        if t == self._params.genesis.header.merkle_root:
            # Core: the genesis coinbase is not in the UTXO set or any index
            raise RPCError(RPC_INVALID_ADDRESS_OR_KEY, "The genesis block coinbase is not considered an "
                                                       "ordinary transaction and cannot be retrieved")
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
        None for a coinbase, below verbosity 2, or for a block with no undo data (never
        connected, pruned; a block disconnected by a reorg keeps its record, as Core's
        BLOCK_HAVE_UNDO). A block with undo whose record cannot be read is Core's
        getrawtransaction RPC_INTERNAL_ERROR."""
        if level < 2 or tx.is_coinbase() or block is None:
            return None
        entry = self._cs().get_entry(block_hash)
        if entry is None:
            return None
        have_undo, spent = self._block_undo(block, entry)
        if spent is None:
            if have_undo:
                raise RPCError(RPC_INTERNAL_ERROR, UNDO_UNREADABLE)
            return None
        for i, btx in enumerate(block.txs[1:]):
            if btx.txid == tx.txid:
                return spent[i]
        return None

    async def m_sendrawtransaction(self, hexstring, maxfeerate=0.10, maxburnamount=0) -> str:
        """sendrawtransaction "hexstring" ( maxfeerate maxburnamount )
Submit a raw transaction (serialized, hex-encoded) to the local node and network.
maxfeerate: coins/kvB, default 0.10, 0 = no limit; maxburnamount: coins, default 0 (an output
that is unspendable or has invalid opcodes may carry at most this much)."""
        from .mempool import _unspendable_or_invalid
        from ..mempool.policy import FeeRate
        max_burn = 0 if maxburnamount is None else amount_from_json(maxburnamount)
        try:
            tx = Tx.from_hex(_str(hexstring, "hexstring"))
        except (DecodeError, ValueError):
            raise RPCError(RPC_DESERIALIZATION_ERROR,
                           "TX decode failed. Make sure the tx has at least one input.") from None
        for out in tx.vout:
            if _unspendable_or_invalid(out.script_pubkey) and out.value > max_burn:
                raise RPCError(RPC_VERIFY_ERROR,
                               "Unspendable output exceeds maximum configured by user (maxburnamount)")
        max_rate = parse_fee_rate(0.10 if maxfeerate is None else maxfeerate)   # sat/kvB
        origin = TxOrigin.rpc()

        def known() -> bool:
            """Core BroadcastTransaction: an output of the tx in the UTXO set means it is
            confirmed (-27); already in the mempool, it is only announced again."""
            cs = self._cs()
            for n in range(len(tx.vout)):
                if cs.get_coin(OutPoint(tx.txid, n)) is not None:
                    raise RPCError(RPC_VERIFY_ALREADY_IN_CHAIN, "Transaction outputs already in utxo set")
            mp = self.node.mempool
            return mp is not None and tx.txid in mp

        if await self._w(known):
            return tx.txid_hex
        if max_rate > 0:
            # Core: a test accept first, then the base fee against maxfeerate at the tx's vsize
            (entry, err), = await self.node.service.test_txs([tx])
            if err is not None:
                raise_for_refusal(err)
            if entry is not None and entry.fee > FeeRate(max_rate).fee(tx.vsize):
                raise RPCError(RPC_VERIFY_ERROR,
                               "Fee exceeds maximum configured by user (e.g. -maxtxfee, maxfeerate)")

        def work():
            res = self._accept(tx, origin)
            w = self.node.wallet
            if w is not None and w.is_relevant(tx):
                w.add_tx(tx, from_me=False)
            return res
        res = await self._w(work)
        if res is not None:
            await self.node.service.publish(res, origin)   # relayed to peers
        return tx.txid_hex

    async def m_decoderawtransaction(self, hexstring, iswitness=None) -> dict:
        """decoderawtransaction "hexstring" ( iswitness )
Return a JSON object representing the serialized, hex-encoded transaction. iswitness: true to
decode it as a witness serialization only, false as a legacy one only; by default both are
tried, as Core's DecodeHexTx does."""
        text = _str(hexstring, "hexstring")
        w = None if iswitness is None else _strict_bool(iswitness)
        tx = decode_hex_tx(text, try_no_witness=w is not True, try_witness=w is not False)
        if tx is None:
            raise RPCError(RPC_DESERIALIZATION_ERROR, "TX decode failed")
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
        """Core's `AddOutputs` (`NormalizeOutputs` + `ParseOutputs`): {address: amount, "data":
        hex} or an array of one-key objects; a repeated key (JSON allows it) is seen as Core
        sees it."""
        from ..primitives.tx import TxOut
        from ..script.script import nulldata_script
        from .protocol import JSONPairs
        if outputs is None:
            raise RPCError(RPC_INVALID_PARAMETER, "Invalid parameter, output argument must be non-null")
        if isinstance(outputs, dict):
            items = outputs.pairs if isinstance(outputs, JSONPairs) else list(outputs.items())
        elif isinstance(outputs, list):
            items = []
            for o in outputs:
                if not isinstance(o, dict):
                    raise RPCError(RPC_INVALID_PARAMETER,
                                   "Invalid parameter, key-value pair not an object as expected")
                pairs = o.pairs if isinstance(o, JSONPairs) else list(o.items())
                if len(pairs) != 1:
                    raise RPCError(RPC_INVALID_PARAMETER,
                                   "Invalid parameter, key-value pair must contain exactly one key")
                items.extend(pairs)
        else:
            raise RPCError(RPC_TYPE_ERROR, f"JSON value of type {_jtype(outputs)} is not of expected type array")
        first: dict = {}
        for key, value in items:          # UniValue's find_value: the first pair of a key
            first.setdefault(key, value)
        out, seen, has_data = [], set(), False
        for key, _ in items:
            value = first[key]
            if key == "data":
                if has_data:
                    raise RPCError(RPC_INVALID_PARAMETER, "Invalid parameter, duplicate key: data")
                has_data = True
                text = value if isinstance(value, str) else ""   # UniValue getValStr
                try:
                    if len(text) % 2:
                        raise ValueError
                    data = bytes.fromhex(text)
                except ValueError:
                    raise RPCError(RPC_INVALID_PARAMETER, f"Data must be hexadecimal string (not '{text}')") from None
                out.append(TxOut(0, nulldata_script(data)))
                continue
            amount = amount_from_json(value)
            try:
                spk = decode_address(key, self._params).script_pubkey
            except AddressError:
                raise RPCError(RPC_INVALID_ADDRESS_OR_KEY, f"Invalid Bitcoin address: {key}") from None
            if spk in seen:
                raise RPCError(RPC_INVALID_PARAMETER, f"Invalid parameter, duplicated address: {key}")
            seen.add(spk)
            out.append(TxOut(amount, spk))
        return out

    async def m_createrawtransaction(self, inputs, outputs, locktime=0, replaceable=None, version=2) -> str:
        """createrawtransaction [{"txid":"hex","vout":n,"sequence":n},...] [{"address":amount},{"data":"hex"},...] ( locktime replaceable version )
Create a transaction spending the given inputs and creating new outputs (not signed, not stored).
replaceable (default true) sets the default sequence to 0xfffffffd; version 1 to 3 (default 2)."""
        from ..primitives.tx import OutPoint, TxIn
        # Core's RPCHelpMan type checks, in argument order
        if not isinstance(inputs, list) and inputs is not None:
            raise RPCError(RPC_TYPE_ERROR, f"JSON value of type {_jtype(inputs)} is not of expected type array")
        lt = 0 if locktime is None else _strict_int(locktime)
        rbf = None if replaceable is None else _strict_bool(replaceable)
        ver = 2 if version is None else _strict_int(version)
        # Core ConstructTransaction
        if not 0 <= lt <= 0xFFFFFFFF:
            raise RPCError(RPC_INVALID_PARAMETER, "Invalid parameter, locktime out of range")
        if not 1 <= ver <= 3:     # TX_MIN_STANDARD_VERSION ~ TX_MAX_STANDARD_VERSION
            raise RPCError(RPC_INVALID_PARAMETER, "Invalid parameter, version out of range(1~3)")
        vin = []
        for i in inputs or []:
            if not isinstance(i, dict):
                raise RPCError(RPC_TYPE_ERROR, f"JSON value of type {_jtype(i)} is not of expected type object")
            t = _hash(i.get("txid"), "txid")
            n = i.get("vout")
            if isinstance(n, bool) or not isinstance(n, (int, float)):
                raise RPCError(RPC_INVALID_PARAMETER, "Invalid parameter, missing vout key")
            n = _strict_int(n)
            if n < 0:
                raise RPCError(RPC_INVALID_PARAMETER, "Invalid parameter, vout cannot be negative")
            if rbf is None or rbf:
                seq = 0xFFFFFFFD          # MAX_BIP125_RBF_SEQUENCE
            else:
                seq = 0xFFFFFFFE if lt else 0xFFFFFFFF
            s = i.get("sequence")
            if isinstance(s, (int, float)) and not isinstance(s, bool):
                seq = _strict_int(s)
                if not 0 <= seq <= 0xFFFFFFFF:
                    raise RPCError(RPC_INVALID_PARAMETER, "Invalid parameter, sequence number is out of range")
            vin.append(TxIn(OutPoint(t, n), b"", seq))
        vout = self._parse_outputs(outputs)
        if rbf and vin and not any(txin.sequence < 0xFFFFFFFE for txin in vin):   # SignalsOptInRBF
            raise RPCError(RPC_INVALID_PARAMETER,
                           "Invalid parameter combination: Sequence number(s) contradict replaceable option")
        tx = Tx(ver, tuple(vin), tuple(vout), lt)
        return tx.raw.hex()

    def _find_coins(self, tx: Tx) -> dict:
        """Core `FindCoins`: the output each input spends, from the mempool or the UTXO set
        (absent: unknown or spent)."""
        cs, mp = self._cs(), self.node.mempool
        coins: dict = {}
        for txin in tx.vin:
            out = None
            if mp is not None:
                e = mp.get(txin.prevout.txid)
                if e is not None and txin.prevout.n < len(e.tx.vout):
                    out = e.tx.vout[txin.prevout.n]
            if out is None:
                coin = cs.get_coin(txin.prevout)
                if coin is not None:
                    out = TxOut(coin.value, coin.script_pubkey)
            if out is not None:
                coins[txin.prevout] = out
        return coins

    def _parse_prevouts(self, prevtxs: Any, coins: dict, provider) -> None:
        """Core `ParsePrevouts`: each prevtxs entry replaces the coin of its outpoint, with the
        given amount or MAX_MONEY ("not given": a witness input then fails with "Missing
        amount"); a known coin with another scriptPubKey is an error. With a key provider
        (signrawtransactionwithkey) a P2SH / P2WSH entry must bring its redeemScript or
        witnessScript, which is added to the provider with its P2WSH wrapping."""
        import hashlib
        from ..primitives.address import p2sh_script
        from ..primitives.hashes import hash160
        from ..primitives.tx import MAX_MONEY, OutPoint
        from .util import _jtype
        if prevtxs is None:
            return
        if not isinstance(prevtxs, list):
            raise RPCError(RPC_TYPE_ERROR, f"JSON value of type {_jtype(prevtxs)} is not of expected type array")

        def typed(obj: dict, name: str, want: type, jname: str, optional: bool = False) -> Any:
            v = obj.get(name)
            if v is None:
                if optional:
                    return None
                raise RPCError(RPC_TYPE_ERROR, f"Missing {name}")
            if not isinstance(v, want) or isinstance(v, bool):
                raise RPCError(RPC_TYPE_ERROR, f"JSON value of type {_jtype(v)} for field {name} "
                                               f"is not of expected type {jname}")
            return v

        def hexfield(v: str, name: str) -> bytes:
            try:
                return bytes.fromhex(v)
            except ValueError:
                raise RPCError(RPC_INVALID_PARAMETER, f"{name} must be hexadecimal string (not '{v}')") from None

        for p in prevtxs:
            if not isinstance(p, dict):
                raise RPCError(RPC_DESERIALIZATION_ERROR,
                               'expected object with {"txid\'","vout","scriptPubKey"}')
            typed(p, "txid", str, "string")
            typed(p, "vout", (int, float), "number")
            typed(p, "scriptPubKey", str, "string")
            txid = _hash(p["txid"], "txid")
            n = _int(p["vout"], "vout")
            if n < 0:
                raise RPCError(RPC_DESERIALIZATION_ERROR, "vout cannot be negative")
            outpoint = OutPoint(txid, n)
            spk = hexfield(p["scriptPubKey"], "scriptPubKey")
            old = coins.get(outpoint)
            if old is not None and old.script_pubkey != spk:
                raise RPCError(RPC_DESERIALIZATION_ERROR, "Previous output scriptPubKey mismatch:\n"
                               f"{_script_asm(old.script_pubkey)}\nvs:\n{_script_asm(spk)}")
            amount = amount_from_json(p["amount"]) if "amount" in p else MAX_MONEY
            coins[outpoint] = TxOut(amount, spk)
            is_p2sh = len(spk) == 23 and spk[:2] == b"\xa9\x14" and spk[22] == 0x87
            is_p2wsh = len(spk) == 34 and spk[:2] == b"\x00\x20"
            if provider is None or not (is_p2sh or is_p2wsh):
                continue
            rs = typed(p, "redeemScript", str, "string", optional=True)
            ws = typed(p, "witnessScript", str, "string", optional=True)
            if rs is None and ws is None:
                raise RPCError(RPC_INVALID_PARAMETER, "Missing redeemScript/witnessScript")
            script = hexfield(ws, "witnessScript") if ws is not None else hexfield(rs, "redeemScript")
            wrapped = b"\x00\x20" + hashlib.sha256(script).digest()
            provider.scripts[hash160(script)] = script
            provider.scripts[hash160(wrapped)] = wrapped
            if ws is not None and rs is not None and ws != rs:
                if hexfield(rs, "redeemScript") != wrapped:
                    raise RPCError(RPC_INVALID_PARAMETER, "redeemScript does not correspond to witnessScript")
            if is_p2sh:
                ok = spk in (p2sh_script(hash160(script)), p2sh_script(hash160(wrapped)))
            else:
                ok = spk == wrapped
            if not ok:
                raise RPCError(RPC_INVALID_PARAMETER, "redeemScript/witnessScript does not match scriptPubKey")

    def _sign_inputs(self, tx: Tx, provider, coins: dict, sighashtype: Any) -> dict:
        """Core `SignTransaction` + `SignTransactionResultToJSON` (rpc/rawtransaction_util.cpp):
        sign what the provider can (P2PKH, P2PK, P2WPKH, P2SH-P2WPKH, P2TR key path), verify
        every input, and report each failing one with its txid, vout, witness, scriptSig,
        sequence and Core's error text. "Missing amount" (a witness input whose prevtxs entry
        gave no amount) is thrown as -3 "Missing amount for CTxOut(...)", as Core does."""
        from ..primitives.tx import COIN
        from ..script.sighash import (
            SIGHASH_ALL, SIGHASH_ANYONECANPAY, SIGHASH_DEFAULT, SIGHASH_NONE, SIGHASH_SINGLE,
        )
        from ..script.sign import MISSING_AMOUNT, sign_transaction
        names = {"DEFAULT": SIGHASH_DEFAULT, "ALL": SIGHASH_ALL, "NONE": SIGHASH_NONE,
                 "SINGLE": SIGHASH_SINGLE,
                 "ALL|ANYONECANPAY": SIGHASH_ALL | SIGHASH_ANYONECANPAY,
                 "NONE|ANYONECANPAY": SIGHASH_NONE | SIGHASH_ANYONECANPAY,
                 "SINGLE|ANYONECANPAY": SIGHASH_SINGLE | SIGHASH_ANYONECANPAY}
        ht_name = "DEFAULT" if sighashtype is None else _str(sighashtype, "sighashtype")
        if ht_name not in names:
            raise RPCError(RPC_INVALID_PARAMETER, f"'{ht_name}' is not a valid sighash parameter.")
        spent = [coins.get(txin.prevout) for txin in tx.vin]
        res = sign_transaction(tx, spent, provider, names[ht_name])
        errors = []
        for i, msg in res.errors.items():
            txin = res.tx.vin[i]
            if msg == MISSING_AMOUNT:
                out = spent[i]
                raise RPCError(RPC_TYPE_ERROR, f"Missing amount for CTxOut(nValue={out.value // COIN}."
                                               f"{out.value % COIN:08d}, scriptPubKey={out.script_pubkey.hex()[:30]})")
            errors.append({"txid": hash_to_hex(txin.prevout.txid), "vout": txin.prevout.n,
                           "witness": [w.hex() for w in txin.witness],
                           "scriptSig": txin.script_sig.hex(), "sequence": txin.sequence, "error": msg})
        j: dict[str, Any] = {"hex": res.tx.raw.hex(), "complete": res.complete}
        if errors:
            j["errors"] = errors
        return j

    def _decode_for_signing(self, hexstring: Any) -> Tx:
        try:
            return Tx.from_hex(_str(hexstring, "hexstring"))
        except (DecodeError, ValueError):
            raise RPCError(RPC_DESERIALIZATION_ERROR, "TX decode failed. Make sure the tx has at least one input.") from None

    async def m_signrawtransactionwithkey(self, hexstring, privkeys, prevtxs=None, sighashtype=None) -> dict:
        """signrawtransactionwithkey "hexstring" ["privatekey",...] ( [{"txid":"hex","vout":n,"scriptPubKey":"hex","redeemScript":"hex","witnessScript":"hex","amount":amount},...] "sighashtype" )
Sign inputs for raw transaction with the given base58-encoded private keys: P2PKH, P2PK, P2WPKH,
P2SH-P2WPKH (prevtxs brings the redeemScript) and P2TR key path (with the key of the output key
itself, as Core). Witness inputs need the spent "amount" in prevtxs (or a known coin); a P2TR
input needs every spent output of the tx known. sighashtype: DEFAULT (ALL for ECDSA; 64-byte
Schnorr signatures), ALL, NONE, SINGLE, each optionally |ANYONECANPAY."""
        from ..primitives.address import decode_wif
        from ..primitives.keys import PrivateKey
        from ..script.sign import FlatSigningProvider
        tx = self._decode_for_signing(hexstring)
        if not isinstance(privkeys, list):
            raise RPCError(RPC_TYPE_ERROR, "privkeys must be an array")
        provider = FlatSigningProvider()
        for wif in privkeys:
            try:
                secret, compressed = decode_wif(_str(wif, "privkey"), self._params)
                key = PrivateKey(secret, compressed)
            except (AddressError, ValueError):
                raise RPCError(RPC_INVALID_ADDRESS_OR_KEY, "Invalid private key") from None
            provider.add_key(key)

        def work():
            coins = self._find_coins(tx)
            self._parse_prevouts(prevtxs, coins, provider)
            return self._sign_inputs(tx, provider, coins, sighashtype)
        return await self._w(work)

    async def m_signrawtransactionwithwallet(self, hexstring, prevtxs=None, sighashtype=None) -> dict:
        """signrawtransactionwithwallet "hexstring" ( [{"txid":"hex","vout":n,"scriptPubKey":"hex","amount":amount},...] "sighashtype" )
Sign inputs for raw transaction with the wallet's keys: the scripts the wallet handed out
(P2PKH, P2WPKH, P2TR by the key path with the BIP86 tweak), a bare P2PK of a legacy key, and
P2SH-P2WPKH of its keys. sighashtype as signrawtransactionwithkey."""
        from ..wallet.provider import WalletSigningProvider
        tx = self._decode_for_signing(hexstring)
        w = self._wallet()
        from .walletmgmt import ensure_unlocked
        ensure_unlocked(w)      # Core EnsureWalletIsUnlocked: -13 while an encrypted wallet is locked

        def work():
            coins = self._find_coins(tx)
            self._parse_prevouts(prevtxs, coins, None)
            return self._sign_inputs(tx, WalletSigningProvider(w.keys), coins, sighashtype)
        return await self._w(work)


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


def _has_valid_ops(script: bytes) -> bool:
    """Core `CScript::HasValidOps`: every op parses, is at most OP_NOP10, pushes ≤ 520 bytes."""
    try:
        for op, data in iter_ops(script):
            if op > _MAX_OPCODE or (data is not None and len(data) > 520):
                return False
    except ScriptParseError:
        return False
    return True


def _scripts_sane(tx: Tx) -> bool:
    """Core `CheckTxScriptsSanity` (core_io.cpp)."""
    if not tx.is_coinbase():
        for txin in tx.vin:
            if len(txin.script_sig) > 10_000 or not _has_valid_ops(txin.script_sig):
                return False
    return all(len(o.script_pubkey) <= 10_000 and _has_valid_ops(o.script_pubkey) for o in tx.vout)


def _parse_legacy_tx(data: bytes) -> Tx:
    """Core `TX_NO_WITNESS` deserialization: no BIP144 marker, so a zero input count is a tx
    without inputs and the next byte its output count."""
    from ..primitives.serialize import ByteReader
    from ..primitives.tx import TxIn
    r = ByteReader(data)
    version = r.i32()
    n_in = r.compact_size()
    if n_in > r.remaining() // 41:
        raise DecodeError(f"{n_in} inputs cannot fit")
    vin = [TxIn.parse(r) for _ in range(n_in)]
    n_out = r.compact_size()
    if n_out > r.remaining() // 9:
        raise DecodeError(f"{n_out} outputs cannot fit")
    vout = [TxOut.parse(r) for _ in range(n_out)]
    locktime = r.u32()
    r.expect_end()
    return Tx(version, tuple(vin), tuple(vout), locktime)


def decode_hex_tx(text: str, try_no_witness: bool = True, try_witness: bool = True) -> Tx | None:
    """Core `DecodeHexTx`: the extended (witness) decoding when it consumes every byte and its
    scripts are sane, else the legacy one when it does and is sane, else the extended one if it
    decoded at all, else the legacy one; None when neither decodes."""
    try:
        data = bytes.fromhex(text)
    except ValueError:
        return None
    extended = legacy = None
    if try_witness:
        try:
            extended = Tx.from_bytes(data)
        except DecodeError:
            extended = None
        if extended is not None and _scripts_sane(extended):
            return extended
    if try_no_witness:
        try:
            legacy = _parse_legacy_tx(data)
        except DecodeError:
            legacy = None
        if legacy is not None and _scripts_sane(legacy):
            return legacy
    return extended if extended is not None else legacy


def _strict_int(value: Any) -> int:
    """A JSON number that is an integer (UniValue `getInt`); -3 for another JSON type."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RPCError(RPC_TYPE_ERROR, f"JSON value of type {_jtype(value)} is not of expected type number")
    if isinstance(value, float) and not value.is_integer():
        raise RPCError(RPC_TYPE_ERROR, "JSON integer out of range")
    return int(value)


def _strict_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise RPCError(RPC_TYPE_ERROR, f"JSON value of type {_jtype(value)} is not of expected type bool")
    return value


def _verbosity(value: Any) -> int:
    """Core `ParseVerbosity(arg, 0, allow_bool=true)`: false/true are 0/1, else an integer."""
    if value is None:
        return 0
    if isinstance(value, bool):
        return int(value)
    return _int(value, "verbosity")
