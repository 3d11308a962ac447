"""RPC methods: Bitcoin Core's names, argument order, field names and error codes.

Each method is `async def m_<name>(self, *params)`; `dispatch` turns named parameters into
positional ones with the method's parameter names (Core's `transformNamedArguments`), so both
`["addr", 1.5]` and `{"address": "addr", "amount": 1.5}` work. Chain, mempool and wallet state
are only touched on the chain writer thread (`writer.call`). Amounts are integer satoshis
inside and JSON numbers of coins with 8 decimals at this edge, as in Core.

Methods tinynode adds for its friendly CLI verbs are marked "(tinynode)" in `help`.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Callable

from ..consensus.errors import PolicyError, RejectReason, ValidationError
from ..primitives.address import AddressError, address_from_script, decode_address
from ..primitives.block import Block, bits_to_target
from ..primitives.hashes import hash_to_hex, hex_to_hash
from ..primitives.serialize import DecodeError
from ..primitives.tx import COIN, MAX_MONEY, Tx
from ..mempool.policy import MAX_OP_RETURN_RELAY
from ..script.descriptor import infer_descriptor
from ..script.opcodes import Op
from ..script.script import iter_ops
from ..script.sigcheck import is_valid_signature_encoding
from .protocol import (
    Amount,
    RPC_CLIENT_NODE_ALREADY_ADDED, RPC_CLIENT_NODE_NOT_ADDED, RPC_CLIENT_NODE_NOT_CONNECTED,
    RPC_CLIENT_INVALID_IP_OR_SUBNET, RPC_CLIENT_P2P_DISABLED, RPC_DESERIALIZATION_ERROR, RPC_INVALID_PARAMS,
    RPC_INVALID_ADDRESS_OR_KEY, RPC_INVALID_PARAMETER, RPC_METHOD_NOT_FOUND,
    RPC_MISC_ERROR, RPC_TYPE_ERROR, RPC_VERIFY_ALREADY_IN_CHAIN, RPC_VERIFY_ERROR,
    RPC_VERIFY_REJECTED, RPC_WALLET_ERROR, RPC_WALLET_INSUFFICIENT_FUNDS, RPCError,
)

if TYPE_CHECKING:  # pragma: no cover
    from ..node import Node

__all__ = ["RPCMethods", "amount_to_json", "amount_from_json", "LONG_METHODS"]

log = logging.getLogger(__name__)

#: Methods that may run longer than the per-request timeout (they mine).
LONG_METHODS = frozenset({"generatetoaddress", "generateblock", "generate", "mine"})


# --- argument helpers ---------------------------------------------------------------------------

def amount_to_json(sats: int) -> float:
    """Satoshis → a JSON number of coins with 8 decimals (Core's `ValueFromAmount`)."""
    return Amount(Decimal(sats) / COIN)


def amount_from_json(value: Any) -> int:
    """Core's `AmountFromValue`: a number or numeric string with at most 8 decimals."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise RPCError(RPC_TYPE_ERROR, "Amount is not a number or string")
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        raise RPCError(RPC_TYPE_ERROR, "Invalid amount") from None
    if not d.is_finite():
        raise RPCError(RPC_TYPE_ERROR, "Invalid amount")
    sats = d * COIN
    if sats != sats.to_integral_value():
        raise RPCError(RPC_TYPE_ERROR, "Invalid amount")
    sats = int(sats)
    if sats < 0 or sats > MAX_MONEY:
        raise RPCError(RPC_TYPE_ERROR, "Amount out of range")
    return sats


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise RPCError(RPC_TYPE_ERROR, f"{name} is not an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass
    raise RPCError(RPC_TYPE_ERROR, f"JSON value of type {_jtype(value)} is not of expected type number")


def _bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if isinstance(value, int):
        return bool(value)
    raise RPCError(RPC_TYPE_ERROR, f"JSON value of type {_jtype(value)} is not of expected type bool")


def _str(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise RPCError(RPC_TYPE_ERROR, f"JSON value of type {_jtype(value)} is not of expected type string")
    return value


def _jtype(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def _hash(value: Any, name: str) -> bytes:
    """Core's `ParseHashV`: -8 with Core's sentences."""
    if not isinstance(value, str):
        raise RPCError(RPC_TYPE_ERROR, f"JSON value of type {_jtype(value)} is not of expected type string")
    if len(value) != 64:
        raise RPCError(RPC_INVALID_PARAMETER, f"{name} must be of length 64 (not {len(value)}, for '{value}')")
    try:
        return hex_to_hash(value)
    except ValueError:
        raise RPCError(RPC_INVALID_PARAMETER, f"{name} must be hexadecimal string (not '{value}')") from None


def _fee_rate_kvb(sat_per_vb: Any) -> int:
    """`fee_rate` in sat/vB (Core's sendtoaddress) → sat per 1000 bytes."""
    if isinstance(sat_per_vb, bool) or not isinstance(sat_per_vb, (int, float, str)):
        raise RPCError(RPC_TYPE_ERROR, "fee_rate is not a number")
    try:
        d = Decimal(str(sat_per_vb))
    except InvalidOperation:
        raise RPCError(RPC_TYPE_ERROR, "Invalid fee_rate") from None
    if not d.is_finite() or d < 0:
        raise RPCError(RPC_INVALID_PARAMETER, "Invalid fee_rate (must be a non-negative number of sat/vB)")
    if d > 10_000:
        raise RPCError(RPC_INVALID_PARAMETER, "Fee rates larger than 10000 sat/vB are not allowed")
    return int(d * 1000)


def _target_hex(bits: int) -> str:
    """Core `GetTarget(...).GetHex()`: the target the compact `bits` stand for, 64 hex digits."""
    return f"{bits_to_target(bits)[0]:064x}"


def _coinbase_tx_json(tx: Tx) -> dict:
    """Core `coinbaseTxToJSON` (getblock's `coinbase_tx`; no `witness`: tinynode keeps no
    witness data)."""
    txin = tx.vin[0]
    return {"version": tx.version & 0xFFFFFFFF, "locktime": tx.locktime, "sequence": txin.sequence,
            "coinbase": txin.script_sig.hex()}


#: Core's mapSigHashTypes (core_io.cpp), for scriptSig asm
_SIGHASH_NAMES = {0x01: "ALL", 0x81: "ALL|ANYONECANPAY", 0x02: "NONE", 0x82: "NONE|ANYONECANPAY",
                  0x03: "SINGLE", 0x83: "SINGLE|ANYONECANPAY"}


def _script_asm(script: bytes, sighash_decode: bool = False) -> str:
    """Core's `ScriptToAsmStr`. With `sighash_decode` (scriptSigs, as TxToUniv asks), a push
    that is a strictly encoded signature shows its hash type as `[ALL]` etc. instead of its
    last byte, unless the script is unspendable (OP_RETURN)."""
    decode = sighash_decode and not (script[:1] == b"\x6a" or len(script) > 10_000)  # IsUnspendable
    parts = []
    try:
        for op, data in iter_ops(script):
            if data is not None:
                if not data:
                    parts.append("0")
                elif len(data) <= 4:
                    parts.append(str(_scriptnum(data)))
                elif decode and is_valid_signature_encoding(data) and data[-1] in _SIGHASH_NAMES:
                    parts.append(f"{data[:-1].hex()}[{_SIGHASH_NAMES[data[-1]]}]")
                else:
                    parts.append(data.hex())
            elif 0x51 <= op <= 0x60:
                parts.append(str(op - 0x50))
            elif op == 0x4F:
                parts.append("-1")
            else:
                try:
                    parts.append(Op(op).name)
                except ValueError:
                    parts.append("OP_UNKNOWN")
    except Exception:
        parts.append("[error]")
    return " ".join(parts)


def _scriptnum(data: bytes) -> int:
    v = int.from_bytes(data, "little")
    if data[-1] & 0x80:
        return -(v & ~(0x80 << (8 * (len(data) - 1))))
    return v


def _script_pubkey_json(spk: bytes, params) -> dict:
    """Core `ScriptToUniv(script, out, include_hex=true, include_address=true)`: asm, desc
    (the inferred descriptor, `script/descriptor.py`), hex, address when there is one, type."""
    j: dict[str, Any] = {"asm": _script_asm(spk), "desc": infer_descriptor(spk, params), "hex": spk.hex()}
    addr = address_from_script(spk, params)
    if addr:
        j["address"] = addr
    j["type"] = _script_type(spk)
    return j


def _script_type(spk: bytes) -> str:
    try:
        from ..script.script import classify
        return str(classify(spk).value)
    except ImportError:  # pragma: no cover
        return "nonstandard"


class RPCMethods:
    """The method table of one node."""

    def __init__(self, node: "Node"):
        self.node = node
        self._mempool_seen: tuple = ()
        self._table: dict[str, Callable[..., Any]] = {}
        for name, fn in inspect.getmembers(self, inspect.iscoroutinefunction):
            if name.startswith("m_"):
                self._table[name[2:]] = fn

    @property
    def names(self) -> list[str]:
        return sorted(self._table)

    @staticmethod
    def timeout_for(method: str) -> float | None:
        return 3600.0 if method in LONG_METHODS else None

    async def dispatch(self, method: str, params: list | dict) -> Any:
        fn = self._table.get(method)
        if fn is None:
            raise RPCError(RPC_METHOD_NOT_FOUND, "Method not found")
        sig = inspect.signature(fn)
        names = [p.name for p in sig.parameters.values()]
        if isinstance(params, dict):
            args: list[Any] = []
            unknown = set(params) - set(names)
            if unknown:
                raise RPCError(RPC_INVALID_PARAMETER, f"Unknown named parameter {sorted(unknown)[0]}")
            last = max((names.index(k) for k in params), default=-1)
            for i in range(last + 1):
                p = list(sig.parameters.values())[i]
                if names[i] in params:
                    args.append(params[names[i]])
                elif p.default is inspect.Parameter.empty:
                    raise RPCError(RPC_INVALID_PARAMETER, f"Missing required parameter {names[i]}")
                else:
                    args.append(p.default)
        else:
            args = list(params)
        required = sum(1 for p in sig.parameters.values() if p.default is inspect.Parameter.empty)
        if len(args) < required or len(args) > len(names):
            raise RPCError(RPC_MISC_ERROR, self._usage(method))
        return await fn(*args)

    def _usage(self, method: str) -> str:
        fn = self._table[method]
        doc = inspect.getdoc(fn) or ""
        return doc if doc else method

    # --- helpers -------------------------------------------------------------------------------
    @property
    def _params(self):
        return self.node.params

    async def _w(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await self.node.writer.call(fn, *args)

    def _cs(self):
        return self.node.writer.chainstate

    def _decode_address(self, address: Any) -> bytes:
        if not isinstance(address, str):
            raise RPCError(RPC_TYPE_ERROR, "address must be a string")
        try:
            return decode_address(address, self._params).script_pubkey
        except AddressError:
            raise RPCError(RPC_INVALID_ADDRESS_OR_KEY, f"Invalid address: {address}") from None

    def _wallet(self):
        if self.node.wallet is None:
            raise RPCError(RPC_METHOD_NOT_FOUND, "Method not found (wallet is disabled)")
        return self.node.wallet

    def _mempool_txs(self) -> list[Tx]:
        mp = self.node.mempool
        if mp is None:
            return []
        return [e.tx for e in mp.entries()]

    def _difficulty(self, bits: int) -> float:
        """Core `GetDifficulty` (mainnet's 0x1d00ffff = 1), as Core's JSON prints it: UniValue
        writes a double with 16 significant digits, so the value a client parses is that one."""
        shift = (bits >> 24) & 0xFF
        d = float(0x0000FFFF) / float(bits & 0x00FFFFFF)
        while shift < 29:
            d *= 256.0
            shift += 1
        while shift > 29:
            d /= 256.0
            shift -= 1
        return float(f"{d:.16g}")

    def tx_to_json(self, tx: Tx, block_hash: bytes | None = None, height: int | None = None,
                   tip_height: int | None = None, include_hex: bool = True) -> dict:
        """Core `TxToUniv` (legacy transactions: hash = txid, vsize = size, weight = 4 × size)."""
        vin = []
        for txin in tx.vin:
            if tx.is_coinbase():
                vin.append({"coinbase": txin.script_sig.hex(), "sequence": txin.sequence})
            else:
                vin.append({"txid": hash_to_hex(txin.prevout.txid), "vout": txin.prevout.n,
                            "scriptSig": {"asm": _script_asm(txin.script_sig, sighash_decode=True),
                                          "hex": txin.script_sig.hex()},
                            "sequence": txin.sequence})
        vout = []
        for n, out in enumerate(tx.vout):
            vout.append({"value": amount_to_json(out.value), "n": n,
                         "scriptPubKey": _script_pubkey_json(out.script_pubkey, self._params)})
        j: dict[str, Any] = {"txid": tx.txid_hex, "hash": tx.txid_hex, "version": tx.version & 0xFFFFFFFF,
                             "size": tx.size, "vsize": tx.size, "weight": 4 * tx.size,
                             "locktime": tx.locktime, "vin": vin, "vout": vout}
        if include_hex:
            j["hex"] = tx.raw.hex()
        if block_hash is not None:
            j["blockhash"] = hash_to_hex(block_hash)
            if height is not None and tip_height is not None:
                j["confirmations"] = tip_height - height + 1
        return j

    def _block_to_json(self, block: Block, entry, verbosity: int) -> dict:
        """Core `blockToJSON` (runs on the writer thread)."""
        cs = self._cs()
        tip = cs.tip
        active = cs.get_block_hash(entry.height) == entry.hash
        nxt = cs.get_block_hash(entry.height + 1) if active else None
        h = block.header
        if verbosity >= 2:
            txs = [self.tx_to_json(tx, include_hex=True) for tx in block.txs]
            spent = self._block_spent_coins(block, entry) if active else None
            if spent is not None:  # Core ≥ 25: "fee" for each non-coinbase tx when undo data exists
                for j, tx, coins in zip(txs[1:], block.txs[1:], spent):
                    j["fee"] = amount_to_json(sum(c.value for c in coins) - sum(o.value for o in tx.vout))
                    if verbosity >= 3:  # Core TxVerbosity::SHOW_DETAILS_AND_PREVOUT
                        for vin, c in zip(j["vin"], coins):
                            vin["prevout"] = {"generated": c.is_coinbase, "height": c.height,
                                              "value": amount_to_json(c.value),
                                              "scriptPubKey": _script_pubkey_json(c.script_pubkey, self._params)}
                            vin["sequence"] = vin.pop("sequence")  # Core's key order: prevout first
        else:
            txs = [tx.txid_hex for tx in block.txs]
        j = {
            "hash": hash_to_hex(entry.hash),
            "confirmations": tip.height - entry.height + 1 if active else -1,
            "size": block.size, "strippedsize": block.size, "weight": 4 * block.size,
            "height": entry.height, "version": h.version, "versionHex": f"{h.version & 0xffffffff:08x}",
            "merkleroot": hash_to_hex(h.merkle_root), "tx": txs, "time": h.time,
            "mediantime": cs.median_time_past(entry), "nonce": h.nonce, "bits": f"{h.bits:08x}",
            "target": _target_hex(h.bits), "difficulty": self._difficulty(h.bits),
            "chainwork": f"{entry.chainwork:064x}", "nTx": len(block.txs),
            "coinbase_tx": _coinbase_tx_json(block.txs[0]),
        }
        if entry.prev is not None:
            j["previousblockhash"] = hash_to_hex(entry.prev.hash)
        if nxt is not None:
            j["nextblockhash"] = hash_to_hex(nxt)
        return j

    def _block_spent_coins(self, block: Block, entry) -> list[list] | None:
        """The coins each non-coinbase tx of the block spent, from its undo record (in spending
        order: Core's `CBlockUndo`, as `blockToJSON` uses it); None without undo data."""
        from ..storage.base import parse_undo
        cs = self._cs()
        raw = None
        dirty = getattr(cs, "_dirty", None)  # not yet flushed to the store
        if dirty is not None:
            raw = dirty.undo.get(entry.hash)
        if raw is None:
            raw = cs.store.get_undo(entry.hash)
        if raw is None:
            return None
        try:
            spent = parse_undo(bytes(raw))
        except DecodeError:
            return None
        if len(spent) != sum(len(tx.vin) for tx in block.txs[1:]):
            return None
        out, i = [], 0
        for tx in block.txs[1:]:
            out.append(spent[i:i + len(tx.vin)])
            i += len(tx.vin)
        return out

    # === blockchain ================================================================================
    async def m_getblockchaininfo(self) -> dict:
        """getblockchaininfo
Returns an object containing various state info regarding blockchain processing."""
        def work():
            cs = self._cs()
            tip, best = cs.tip, cs.best_header
            return {
                "chain": self._params.name, "blocks": tip.height, "headers": best.height,
                "bestblockhash": hash_to_hex(tip.hash), "bits": f"{tip.header.bits:08x}",
                "target": _target_hex(tip.header.bits), "difficulty": self._difficulty(tip.header.bits),
                "time": tip.header.time, "mediantime": cs.median_time_past(tip),
                "verificationprogress": 1.0 if best.height <= tip.height else tip.height / max(1, best.height),
                "initialblockdownload": self.node.in_ibd(), "chainwork": f"{tip.chainwork:064x}",
                "size_on_disk": self.node.size_on_disk(), "pruned": False, "warnings": [],
            }
        return await self._w(work)

    async def m_getblockcount(self) -> int:
        """getblockcount
Returns the height of the most-work fully-validated chain."""
        return self.node.writer.snapshot.height

    async def m_getbestblockhash(self) -> str:
        """getbestblockhash
Returns the hash of the best (tip) block in the most-work fully-validated chain."""
        return hash_to_hex(self.node.writer.snapshot.tip_hash)

    async def m_getblockhash(self, height) -> str:
        """getblockhash height
Returns hash of block in best-block-chain at height provided."""
        h = _int(height, "height")
        bh = await self._w(lambda: self._cs().get_block_hash(h) if 0 <= h <= self._cs().height else None)
        if bh is None:
            raise RPCError(RPC_INVALID_PARAMETER, "Block height out of range")
        return hash_to_hex(bh)

    async def m_getblock(self, blockhash, verbosity=1) -> Any:
        """getblock "blockhash" ( verbosity )
If verbosity is 0, returns a string that is serialized, hex-encoded data for block 'hash'.
If verbosity is 1, returns an Object with information about block <hash>.
If verbosity is 2, returns an Object with information about block <hash> and information about each transaction.
If verbosity is 3, also the coin each input spent ("prevout")."""
        bh = _hash(blockhash, "blockhash")
        if isinstance(verbosity, bool):
            verbosity = 1 if verbosity else 0
        v = _int(verbosity, "verbosity")

        def work():
            cs = self._cs()
            entry = cs.get_entry(bh)
            if entry is None:
                raise RPCError(RPC_INVALID_ADDRESS_OR_KEY, "Block not found")
            block = cs.get_block(bh)
            if block is None:
                raise RPCError(RPC_MISC_ERROR, "Block not available (not fully downloaded)")
            if v <= 0:
                return block.serialize().hex()
            return self._block_to_json(block, entry, v)
        return await self._w(work)

    async def m_getchaintips(self) -> list:
        """getchaintips
Return information about all known tips in the block tree, including the main chain as well as orphaned branches."""
        def work():
            cs = self._cs()
            out = []
            for entry, status in cs.chain_tips():
                e = entry
                while e is not None and cs.get_block_hash(e.height) != e.hash:
                    e = e.prev
                fork_h = e.height if e is not None else 0
                out.append({"height": entry.height, "hash": hash_to_hex(entry.hash),
                            "branchlen": entry.height - fork_h, "status": status})
            return out
        return await self._w(work)

    # === mempool / transactions ====================================================================
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

    async def m_getrawtransaction(self, txid, verbose=False, blockhash=None) -> Any:
        """getrawtransaction "txid" ( verbose "blockhash" )
Return the raw transaction data, from the mempool or the transaction index."""
        t = _hash(txid, "parameter 1")
        if isinstance(verbose, int) and not isinstance(verbose, bool):
            verbose = verbose != 0
        verbose = _bool(verbose, "verbose")
        bh = _hash(blockhash, "parameter 3") if blockhash is not None else None

        def work():
            cs = self._cs()
            mp = self.node.mempool
            if bh is None and mp is not None:
                e = mp.get(t)
                if e is not None:
                    return e.tx, None, None
            if bh is not None:
                if cs.get_entry(bh) is None:
                    raise RPCError(RPC_INVALID_ADDRESS_OR_KEY, "Block hash not found")
                block = cs.get_block(bh)
                for tx in block.txs if block else ():
                    if tx.txid == t:
                        return tx, bh, cs.get_entry(bh).height
                raise RPCError(RPC_INVALID_ADDRESS_OR_KEY,
                               "No such transaction found in the provided block. Use gettransaction for wallet transactions.")
            found = cs.get_tx(t)
            if found is None:
                raise RPCError(RPC_INVALID_ADDRESS_OR_KEY,
                               "No such mempool or blockchain transaction. Use gettransaction for wallet transactions.")
            tx, block_hash, height = found
            return tx, block_hash, height
        tx, block_hash, height = await self._w(work)
        if not verbose:
            return tx.raw.hex()
        j = self.tx_to_json(tx, block_hash, height, self.node.writer.snapshot.height)
        if block_hash is not None:
            j["in_active_chain"] = True
            blk_time = await self._w(lambda: self._cs().get_entry(block_hash).header.time)
            j["time"] = j["blocktime"] = blk_time
        return j

    async def m_sendrawtransaction(self, hexstring, maxfeerate=0.10) -> str:
        """sendrawtransaction "hexstring" ( maxfeerate )
Submit a raw transaction (serialized, hex-encoded) to the local node and network."""
        try:
            tx = Tx.from_hex(_str(hexstring, "hexstring"))
        except DecodeError:
            raise RPCError(RPC_DESERIALIZATION_ERROR,
                           "TX decode failed. Make sure the tx has at least one input.") from None
        max_rate = amount_from_json(maxfeerate)  # coins per kvB

        def work():
            cs = self._cs()
            mp = self.node.mempool
            if mp is not None and tx.txid in mp:
                return True
            found = cs.get_tx(tx.txid)
            if found is not None:
                raise RPCError(RPC_VERIFY_ALREADY_IN_CHAIN, "Transaction already in block chain")
            self._accept(tx, max_rate)
            w = self.node.wallet
            if w is not None and w.is_relevant(tx):
                w.add_tx(tx, from_me=False)
            return False
        known = await self._w(work)
        if not known:
            self.node.relay_tx(tx)
        return tx.txid_hex

    def _prevout_value(self, outpoint) -> int | None:
        """Value of a chain coin or a mempool tx's output, spent or not (writer thread)."""
        coin = self._cs().get_coin(outpoint)
        if coin is not None:
            return coin.value
        mp = self.node.mempool
        e = mp.get(outpoint.txid) if mp is not None else None
        if e is not None and outpoint.n < len(e.tx.vout):
            return e.tx.vout[outpoint.n].value
        return None

    def _accept(self, tx: Tx, max_rate_kvb_sats: int = 0) -> Any:
        """Mempool accept on the writer thread, errors mapped as Core's `BroadcastTransaction`."""
        mp = self.node.mempool
        if mp is None:
            raise RPCError(RPC_MISC_ERROR, "mempool is not available")
        if max_rate_kvb_sats and not tx.is_coinbase():
            # Core checks the fee rate before anything is replaced or added
            values = [self._prevout_value(i.prevout) for i in tx.vin]
            if all(v is not None for v in values):
                fee = sum(values) - sum(o.value for o in tx.vout)
                if fee * 1000 > max_rate_kvb_sats * tx.size:
                    raise RPCError(RPC_VERIFY_REJECTED, "max-fee-exceeded")
        try:
            entry = mp.accept(tx, int(time.time()))
        except ValidationError as e:
            if e.reason in (RejectReason.BAD_TXNS_INPUTS_MISSINGORSPENT, RejectReason.MISSING_INPUTS):
                raise RPCError(RPC_VERIFY_ERROR, "bad-txns-inputs-missingorspent") from None
            if e.reason in (RejectReason.TXN_ALREADY_IN_MEMPOOL, RejectReason.TXN_ALREADY_KNOWN):
                return None
            raise RPCError(RPC_VERIFY_REJECTED, e.reject_string) from None
        except PolicyError as e:
            if e.reason in ("bad-txns-inputs-missingorspent", "missing-inputs"):
                raise RPCError(RPC_VERIFY_ERROR, "bad-txns-inputs-missingorspent") from None
            if e.reason in ("txn-already-in-mempool", "txn-already-known"):
                return None
            raise RPCError(RPC_VERIFY_REJECTED, e.reason + (f" ({e.detail})" if e.detail else "")) from None
        return entry

    # === wallet ========================================================================================
    async def m_getnewaddress(self, label="", address_type=None) -> str:
        """getnewaddress ( "label" "address_type" )
Returns a new address for receiving payments (P2PKH; address_type "legacy" only)."""
        if address_type not in (None, "legacy"):
            raise RPCError(RPC_INVALID_ADDRESS_OR_KEY, f"Unknown address type '{address_type}'")
        w = self._wallet()
        return await self._w(w.keys.new_address, _str(label, "label"))

    def _sync_mempool(self) -> None:
        """Writer thread: let the wallet see the mempool (skipped while the pool is unchanged)."""
        w, mp = self.node.wallet, self.node.mempool
        if w is None:
            return
        seq = (getattr(mp, "sequence", None), id(w), w.tx_count, len(w.keys))
        if seq[0] is not None and seq == self._mempool_seen:
            return
        w.sync_mempool(self._mempool_txs())
        self._mempool_seen = (getattr(mp, "sequence", None), id(w), w.tx_count, len(w.keys))

    async def m_getbalance(self, dummy=None, minconf=0, include_watchonly=None, avoid_reuse=None) -> float:
        """getbalance ( "*" minconf include_watchonly avoid_reuse )
Returns the total available balance: confirmed coins with at least minconf confirmations plus
the change of this wallet's own unconfirmed sends (Core's trusted balance)."""
        if dummy is not None and dummy != "*":
            raise RPCError(RPC_METHOD_NOT_FOUND, 'dummy first argument must be excluded or set to "*".')
        mc = _int(minconf, "minconf")
        w = self._wallet()

        def work():
            self._sync_mempool()
            return w.balances(mc).trusted
        return amount_to_json(await self._w(work))

    async def m_getbalances(self) -> dict:
        """getbalances
Returns an object with all balances in coins: trusted, untrusted_pending, immature."""
        w = self._wallet()

        def work():
            self._sync_mempool()
            return w.balances(), w.tip_hash, w.tip_height
        b, tip_hash, tip_height = await self._w(work)
        return {"mine": {"trusted": amount_to_json(b.trusted),
                         "untrusted_pending": amount_to_json(b.untrusted_pending),
                         "immature": amount_to_json(b.immature)},
                "lastprocessedblock": {"hash": hash_to_hex(tip_hash) if tip_hash else None,
                                       "height": tip_height}}

    async def m_listunspent(self, minconf=1, maxconf=9999999, addresses=None, include_unsafe=True,
                            query_options=None) -> list:
        """listunspent ( minconf maxconf ["address",...] include_unsafe query_options )
Returns array of unspent transaction outputs with between minconf and maxconf (inclusive) confirmations."""
        lo, hi = _int(minconf, "minconf"), _int(maxconf, "maxconf")
        want: set[bytes] | None = None
        if addresses is not None:
            if not isinstance(addresses, list):
                raise RPCError(RPC_TYPE_ERROR, "addresses must be an array")
            want = set()
            for a in addresses:
                spk = self._decode_address(a)
                if spk in want:
                    raise RPCError(RPC_INVALID_PARAMETER, f"Invalid parameter, duplicated address: {a}")
                want.add(spk)
        unsafe = _bool(include_unsafe, "include_unsafe")
        w = self._wallet()

        def work():
            self._sync_mempool()
            out = []
            for c in sorted(w.coins(), key=lambda c: (-c.confirmations, c.outpoint.txid, c.outpoint.n)):
                if not lo <= c.confirmations <= hi:
                    continue
                if want is not None and c.script_pubkey not in want:
                    continue
                if not c.trusted and not unsafe:
                    continue
                if not c.mature:
                    continue
                out.append({"txid": hash_to_hex(c.outpoint.txid), "vout": c.outpoint.n,
                            "address": c.address, "label": w.keys.label_of(c.script_pubkey),
                            "scriptPubKey": c.script_pubkey.hex(), "amount": amount_to_json(c.value),
                            "confirmations": c.confirmations, "spendable": True, "solvable": True,
                            "safe": c.trusted})
            return out
        return await self._w(work)

    async def m_sendtoaddress(self, address, amount, comment=None, comment_to=None,
                              subtractfeefromamount=False, replaceable=None, conf_target=None,
                              estimate_mode=None, avoid_reuse=None, fee_rate=None, verbose=False,
                              from_address=None, data=None) -> Any:
        """sendtoaddress "address" amount ( "comment" "comment_to" subtractfeefromamount replaceable conf_target "estimate_mode" avoid_reuse fee_rate verbose from_address )
Send an amount to a given address. fee_rate is in sat/vB (default 2). from_address (tinynode)
spends only that wallet address's coins and returns the change to it. data (tinynode) adds an
OP_RETURN output carrying those hex bytes."""
        spk = self._decode_address(address)
        sats = amount_from_json(amount)
        if sats <= 0:
            raise RPCError(RPC_TYPE_ERROR, "Invalid amount for send")
        subtract = _bool(subtractfeefromamount, "subtractfeefromamount")
        from ..wallet.wallet import DEFAULT_FEE_RATE
        rate = DEFAULT_FEE_RATE if fee_rate is None else _fee_rate_kvb(fee_rate)
        from_spk = self._decode_address(from_address) if from_address is not None else None
        outputs = [(spk, sats)]
        if data is not None:
            try:
                payload = bytes.fromhex(_str(data, "data"))
            except ValueError:
                raise RPCError(RPC_INVALID_PARAMETER, "Data must be hexadecimal string") from None
            from ..script.script import nulldata_script
            outputs.append((nulldata_script(payload), 0))
        w = self._wallet()
        created = await self._w(self._send, w, outputs, rate, [0] if subtract else [], from_spk)
        self.node.relay_tx(created.tx)
        log.info("wallet sent %s: %.8f to %s, fee %.8f", created.tx.txid_hex, amount_to_json(created.amounts[0]),
                 address, amount_to_json(created.fee))
        if _bool(verbose, "verbose"):
            return {"txid": created.tx.txid_hex, "fee_reason": "Fallback fee" if fee_rate is None else "User-specified fee rate"}
        return created.tx.txid_hex

    def _send(self, w, outputs, rate, subtract, from_spk):
        """Writer thread: build, sign, hand to the mempool, record as pending — atomically."""
        from ..wallet.coinselect import InsufficientFunds
        from ..wallet.wallet import WalletError
        self._sync_mempool()
        if from_spk is not None and not w.keys.is_mine(from_spk):
            raise RPCError(RPC_INVALID_ADDRESS_OR_KEY, "The from address is not in this wallet")
        try:
            created = w.create_transaction(outputs, fee_rate=rate, subtract_fee_from=subtract,
                                           from_script=from_spk)
        except InsufficientFunds:
            raise RPCError(RPC_WALLET_INSUFFICIENT_FUNDS, "Insufficient funds") from None
        except WalletError as e:
            raise RPCError(RPC_WALLET_ERROR, str(e)) from None
        self._accept(created.tx)
        w.add_tx(created.tx, from_me=True, fee=created.fee)
        return created

    async def m_gettransaction(self, txid, include_watchonly=None, verbose=False) -> dict:
        """gettransaction "txid" ( include_watchonly verbose )
Get detailed information about in-wallet transaction <txid>."""
        t = _hash(txid, "txid")
        w = self._wallet()
        verbose = _bool(verbose, "verbose")

        def work():
            self._sync_mempool()
            wtx = w.get_tx(t)
            if wtx is None:
                raise RPCError(RPC_INVALID_ADDRESS_OR_KEY, "Invalid or non-wallet transaction id")
            return self._wallet_tx_json(w, wtx, verbose)
        return await self._w(work)

    def _wallet_tx_json(self, w, wtx, verbose: bool = False) -> dict:
        credit, debit, fee = w.tx_amounts(wtx)
        conf = w.confirmations(wtx)
        j: dict[str, Any] = {"amount": amount_to_json(credit - debit + fee)}
        if debit > 0:
            j["fee"] = amount_to_json(-fee)
        j["confirmations"] = conf
        if wtx.tx.is_coinbase():
            j["generated"] = True
        if wtx.state == "confirmed":
            j["blockhash"] = hash_to_hex(wtx.block_hash)
            j["blockheight"] = wtx.height
            j["blocktime"] = wtx.block_time
        j["trusted"] = wtx.state == "confirmed" or (wtx.state == "pending" and wtx.from_me)
        j["txid"] = wtx.tx.txid_hex
        j["wtxid"] = wtx.tx.txid_hex
        j["walletconflicts"] = []
        j["time"] = wtx.block_time if wtx.block_time and wtx.block_time < wtx.time_received else wtx.time_received
        j["timereceived"] = wtx.time_received
        j["bip125-replaceable"] = "yes" if wtx.state == "pending" else "no"
        j["status"] = wtx.state  # (tinynode) confirmed | pending | conflicted
        details = []
        maturity = self._params.coinbase_maturity
        for n, out in enumerate(wtx.tx.vout):
            addr = address_from_script(out.script_pubkey, self._params)
            mine = w.keys.is_mine(out.script_pubkey)
            if debit > 0 and not mine:
                d = {"address": addr, "category": "send", "amount": amount_to_json(-out.value),
                     "vout": n, "fee": amount_to_json(-fee), "abandoned": False}
                details.append(d)
            elif mine:
                if debit > 0 and w.keys.is_change(out.script_pubkey):
                    continue
                if debit > 0:  # a payment to ourselves: Core lists the send and the receive
                    details.append({"address": addr, "category": "send", "amount": amount_to_json(-out.value),
                                    "vout": n, "fee": amount_to_json(-fee), "abandoned": False})
                if wtx.tx.is_coinbase():
                    if conf < 1:
                        cat = "orphan"
                    elif conf < maturity + 1:
                        cat = "immature"
                    else:
                        cat = "generate"
                else:
                    cat = "receive"
                details.append({"address": addr, "category": cat, "amount": amount_to_json(out.value),
                                "label": w.keys.label_of(out.script_pubkey), "vout": n})
        j["details"] = details
        j["hex"] = wtx.tx.raw.hex()
        if verbose:
            j["decoded"] = self.tx_to_json(wtx.tx)
        return j

    async def m_listaddresses(self) -> list:
        """listaddresses
(tinynode) The wallet's handed-out addresses with their kind, label and confirmed balance."""
        w = self._wallet()

        def work():
            self._sync_mempool()
            bal: dict[bytes, int] = {}
            for c in w.coins():
                if c.mature and c.confirmations > 0:
                    bal[c.script_pubkey] = bal.get(c.script_pubkey, 0) + c.value
            return [{"address": a.address, "kind": a.chain, "used": a.used, "label": a.label,
                     "balance": amount_to_json(bal.get(a.script_pubkey, 0))}
                    for a in w.keys.addresses()]
        return await self._w(work)

    async def m_getaddressbalance(self, address, minconf=1) -> dict:
        """getaddressbalance "address" ( minconf )
(tinynode) Any address's balance from the chain's script index. minconf 0 adds mempool
receipts and subtracts mempool spends."""
        spk = self._decode_address(address)
        mc = _int(minconf, "minconf")

        def work():
            cs = self._cs()
            tip = cs.height
            maturity = self._params.coinbase_maturity
            confirmed = immature = 0
            outpoints = set()
            for op, coin in cs.coins_for_script(spk):
                conf = tip - coin.height + 1
                outpoints.add(op)
                if coin.is_coinbase and conf < maturity + 1:
                    immature += coin.value
                elif conf >= max(mc, 1):
                    confirmed += coin.value
            pending_in = pending_out = 0
            for tx in self._mempool_txs():
                for out in tx.vout:
                    if out.script_pubkey == spk:
                        pending_in += out.value
                for txin in tx.vin:
                    if txin.prevout in outpoints:
                        c = cs.get_coin(txin.prevout)
                        if c is not None:
                            pending_out += c.value
            total = confirmed + (pending_in - pending_out if mc == 0 else 0)
            return {"address": address, "balance": amount_to_json(total),
                    "confirmed": amount_to_json(confirmed), "immature": amount_to_json(immature),
                    "pending_in": amount_to_json(pending_in), "pending_out": amount_to_json(pending_out)}
        return await self._w(work)

    async def m_gettxstatus(self, txid) -> dict:
        """gettxstatus "txid"
(tinynode) Where any transaction stands: mempool, confirmed (confirmations, block, height),
conflicted (a wallet transaction that lost a double spend), or not found."""
        t = _hash(txid, "txid")

        def work():
            cs = self._cs()
            mp = self.node.mempool
            res: dict[str, Any] = {"txid": txid}
            found = cs.get_tx(t)
            if found is not None:
                _, bh, height = found
                res.update(status="confirmed", confirmations=cs.height - height + 1,
                           blockhash=hash_to_hex(bh), height=height)
                return res
            if mp is not None and t in mp:
                res.update(status="mempool", confirmations=0)
                return res
            w = self.node.wallet
            wtx = w.get_tx(t) if w is not None else None
            if wtx is not None and wtx.state == "conflicted":
                res.update(status="conflicted", confirmations=-1)
            elif wtx is not None:
                res.update(status="pending", confirmations=0)
            else:
                res.update(status="not found")
            return res
        return await self._w(work)

    # === mining ======================================================================================
    async def m_generatetoaddress(self, nblocks, address, maxtries=1000000) -> list:
        """generatetoaddress nblocks "address" ( maxtries )
Mine blocks immediately to a specified address (before the RPC call returns)."""
        n = _int(nblocks, "nblocks")
        if not isinstance(address, str):
            raise RPCError(RPC_TYPE_ERROR, "address must be a string")
        try:
            spk = decode_address(address, self._params).script_pubkey
        except AddressError:
            raise RPCError(RPC_INVALID_ADDRESS_OR_KEY, "Error: Invalid address") from None
        if n < 0:
            raise RPCError(RPC_INVALID_PARAMETER, "nblocks must be non-negative")
        if self.node.miner is None:
            raise RPCError(RPC_MISC_ERROR, "mining is not available")
        hashes = await self.node.miner.generate(n, spk)
        return [hash_to_hex(h) for h in hashes]

    def _network_hashps(self, nblocks: int = 120, height: int = -1) -> float:
        """Core `GetNetworkHashPS`: work over the last `nblocks` blocks (-1: since the last
        retarget) divided by the time they span, at the tip or at `height` (writer thread)."""
        cs = self._cs()
        if nblocks < -1 or nblocks == 0:
            raise RPCError(RPC_INVALID_PARAMETER, "Invalid nblocks. Must be a positive number or -1.")
        if height < -1 or height > cs.height:
            raise RPCError(RPC_INVALID_PARAMETER, "Block does not exist at specified height")
        pb = cs.tip if height == -1 else cs.get_entry(cs.get_block_hash(height))
        if pb is None or pb.height == 0:
            return 0
        if nblocks == -1:
            nblocks = pb.height % self._params.retarget_window + 1
        nblocks = min(nblocks, pb.height)
        pb0 = pb
        times = [pb.header.time]
        for _ in range(nblocks):
            pb0 = pb0.prev
            times.append(pb0.header.time)
        if min(times) == max(times):
            return 0
        return float(f"{(pb.chainwork - pb0.chainwork) / (max(times) - min(times)):.16g}")

    async def m_getnetworkhashps(self, nblocks=120, height=-1) -> float:
        """getnetworkhashps ( nblocks height )
Returns the estimated network hashes per second based on the last n blocks (-1: since the last
difficulty change), at the tip or at the given height."""
        n, h = _int(nblocks, "nblocks"), _int(height, "height")
        return await self._w(lambda: self._network_hashps(n, h))

    async def m_getmininginfo(self) -> dict:
        """getmininginfo
Returns a json object containing mining-related information."""
        miner = self.node.miner
        mp = self.node.mempool

        def work():
            cs = self._cs()
            tip = cs.tip
            next_time = max(cs.median_time_past(tip) + 1, int(time.time()))
            next_bits = cs.next_bits(tip, next_time)  # Core NextEmptyBlockIndex
            return {"blocks": tip.height, "bits": f"{tip.header.bits:08x}",
                    "difficulty": self._difficulty(tip.header.bits), "target": _target_hex(tip.header.bits),
                    "networkhashps": self._network_hashps(), "pooledtx": len(mp) if mp is not None else 0,
                    "chain": self._params.name,
                    "next": {"height": tip.height + 1, "bits": f"{next_bits:08x}",
                             "difficulty": self._difficulty(next_bits), "target": _target_hex(next_bits)},
                    "warnings": [],
                    "mining": bool(miner is not None and miner.running),
                    "hashespersec": miner.hashrate if miner is not None else 0.0,
                    "blocksfound": miner.blocks_found if miner is not None else 0,
                    "workers": miner.workers if miner is not None else 0}
        return await self._w(work)

    # === network =====================================================================================
    async def m_getpeerinfo(self) -> list:
        """getpeerinfo
Returns data about each connected network node as a json array of objects."""
        cm = self.node.connman
        return [] if cm is None else cm.peers()

    async def m_getconnectioncount(self) -> int:
        """getconnectioncount
Returns the number of connections to other nodes."""
        cm = self.node.connman
        return 0 if cm is None else len(cm.connected_peers())

    async def m_addnode(self, node, command) -> None:
        """addnode "node" "command"
Attempts to add or remove a node from the addnode list, or try a connection to a node once.
command is "add", "remove" or "onetry"."""
        target, cmd = _str(node, "node"), _str(command, "command")
        if cmd not in ("add", "remove", "onetry"):
            raise RPCError(RPC_MISC_ERROR, 'addnode "node" "command"\ncommand must be one of "add", "remove", "onetry"')
        cm = self.node.connman
        if cm is None:
            raise RPCError(RPC_MISC_ERROR, "Error: Peer-to-peer functionality missing or disabled")
        added = set(cm.added_nodes())
        if cmd == "add" and target in added:
            raise RPCError(RPC_CLIENT_NODE_ALREADY_ADDED, "Error: Node already added")
        if cmd == "remove" and target not in added:
            raise RPCError(RPC_CLIENT_NODE_NOT_ADDED, "Error: Node could not be removed. It has not been added previously.")
        try:
            cm.addnode(target, cmd)
        except ValueError as e:
            raise RPCError(RPC_INVALID_PARAMETER, str(e)) from None
        return None

    # === more of Core's surface (issue 9's simple ones) ===============================================
    def _header_json(self, entry) -> dict:
        cs = self._cs()
        tip = cs.tip
        active = cs.get_block_hash(entry.height) == entry.hash
        h = entry.header
        j = {"hash": hash_to_hex(entry.hash),
             "confirmations": tip.height - entry.height + 1 if active else -1,
             "height": entry.height, "version": h.version, "versionHex": f"{h.version & 0xffffffff:08x}",
             "merkleroot": hash_to_hex(h.merkle_root), "time": h.time,
             "mediantime": cs.median_time_past(entry), "nonce": h.nonce, "bits": f"{h.bits:08x}",
             "target": _target_hex(h.bits), "difficulty": self._difficulty(h.bits),
             "chainwork": f"{entry.chainwork:064x}"}
        n_tx = getattr(entry, "n_tx", None)
        if n_tx is None:
            block = cs.get_block(entry.hash)
            n_tx = len(block.txs) if block is not None else 0
        j["nTx"] = n_tx
        if entry.prev is not None:
            j["previousblockhash"] = hash_to_hex(entry.prev.hash)
        nxt = cs.get_block_hash(entry.height + 1) if active else None
        if nxt is not None:
            j["nextblockhash"] = hash_to_hex(nxt)
        return j

    async def m_getblockheader(self, blockhash, verbose=True) -> Any:
        """getblockheader "blockhash" ( verbose )
If verbose is false, returns a string that is serialized, hex-encoded data for blockheader 'hash'.
If verbose is true, returns an Object with information about blockheader <hash>."""
        bh = _hash(blockhash, "blockhash")
        v = _bool(verbose, "verbose")

        def work():
            entry = self._cs().get_entry(bh)
            if entry is None:
                raise RPCError(RPC_INVALID_ADDRESS_OR_KEY, "Block not found")
            return self._header_json(entry) if v else entry.header.serialize().hex()
        return await self._w(work)

    async def m_getdifficulty(self) -> float:
        """getdifficulty
Returns the proof-of-work difficulty as a multiple of the minimum difficulty."""
        return self._difficulty(self.node.writer.snapshot.tip_bits)

    async def m_gettxout(self, txid, n, include_mempool=True) -> Any:
        """gettxout "txid" n ( include_mempool )
Returns details about an unspent transaction output (null if spent or unknown)."""
        t = _hash(txid, "txid")
        vout = _int(n, "n")
        incl = _bool(include_mempool, "include_mempool")

        def work():
            from ..primitives.tx import OutPoint
            cs = self._cs()
            op = OutPoint(t, vout)
            mp = self.node.mempool
            if incl and mp is not None:
                coin = mp.get_coin(op)
                if coin is None:
                    return None
                conf = 0 if t in mp else cs.height - coin.height + 1
            else:
                coin = cs.get_coin(op)
                if coin is None:
                    return None
                conf = cs.height - coin.height + 1
            return {"bestblock": hash_to_hex(cs.tip.hash), "confirmations": conf,
                    "value": amount_to_json(coin.value),
                    "scriptPubKey": _script_pubkey_json(coin.script_pubkey, self._params),
                    "coinbase": coin.is_coinbase}
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
        """Core `entryToJSON` (getmempoolentry, getrawmempool verbose, …): legacy txs, so
        wtxid = txid and vsize = size; full RBF, so every entry is replaceable."""
        return {"vsize": e.size, "weight": 4 * e.size, "time": int(e.time), "height": e.height,
                "descendantcount": e.descendant_count, "descendantsize": e.descendant_size,
                "ancestorcount": e.ancestor_count, "ancestorsize": e.ancestor_size,
                "wtxid": e.tx.txid_hex,
                "fees": {"base": amount_to_json(e.fee), "modified": amount_to_json(e.fee),
                         "ancestor": amount_to_json(e.ancestor_fees),
                         "descendant": amount_to_json(e.descendant_fees)},
                "depends": sorted(hash_to_hex(d) for d in e.depends),
                "spentby": sorted(hash_to_hex(d) for d in e.spent_by),
                "bip125-replaceable": True, "unbroadcast": False}

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
        if j["type"] not in ("scripthash", "nulldata"):
            j["p2sh"] = encode_address("p2sh", hash160(script), self._params)
        return j

    async def m_validateaddress(self, address) -> dict:
        """validateaddress "address"
Return information about the given address."""
        a = _str(address, "address")
        try:
            spk = decode_address(a, self._params).script_pubkey
        except AddressError as e:
            return {"isvalid": False, "error_locations": [], "error": str(e)}
        return {"isvalid": True, "address": a, "scriptPubKey": spk.hex(),
                "isscript": spk[0] == 0xA9, "iswitness": False}

    async def m_getaddressinfo(self, address) -> dict:
        """getaddressinfo "address"
Return information about the given address (ismine, labels, ...)."""
        spk = self._decode_address(address)
        w = self.node.wallet

        def work():
            mine = bool(w is not None and w.keys.is_mine(spk))
            j = {"address": address, "scriptPubKey": spk.hex(), "ismine": mine, "solvable": mine,
                 "iswatchonly": False, "isscript": spk[0] == 0xA9, "iswitness": False,
                 "ischange": bool(mine and w.keys.is_change(spk)),
                 "labels": [w.keys.label_of(spk)] if mine else []}
            if mine:
                key = w.keys.private_key(spk)
                j["pubkey"] = key.public_key.sec.hex()
                j["iscompressed"] = key.compressed
            return j
        return await self._w(work)

    async def m_dumpprivkey(self, address) -> str:
        """dumpprivkey "address"
Reveals the private key (WIF) corresponding to 'address'."""
        self._decode_address(address)
        w = self._wallet()
        try:
            return await self._w(w.keys.export_wif, address)
        except AddressError:
            raise RPCError(RPC_WALLET_ERROR, f"Private key for address {address} is not known") from None

    async def m_importprivkey(self, privkey, label="", rescan=True) -> None:
        """importprivkey "privkey" ( "label" rescan )
Adds a private key (WIF) to the wallet; with rescan, its unspent coins are found in the UTXO set."""
        wif = _str(privkey, "privkey")
        w = self._wallet()
        do_rescan = _bool(rescan, "rescan")

        def work():
            from ..primitives.address import AddressError as AE
            try:
                addr = w.keys.import_wif(wif, _str(label, "label"))
            except (AE, ValueError):
                raise RPCError(RPC_INVALID_ADDRESS_OR_KEY, "Invalid private key encoding") from None
            if do_rescan:
                cs = self._cs()
                spk = decode_address(addr, self._params).script_pubkey
                for op, coin in cs.coins_for_script(spk):
                    found = cs.get_tx(op.txid)
                    if found is not None:
                        tx, bh, height = found
                        w.add_confirmed_tx(tx, bh, height, cs.get_entry(bh).header.time)
            return None
        return await self._w(work)

    async def m_listtransactions(self, label=None, count=10, skip=0, include_watchonly=None) -> list:
        """listtransactions ( "label" count skip include_watchonly )
Returns up to 'count' most recent wallet transactions skipping the first 'skip'."""
        c, sk = _int(count, "count"), _int(skip, "skip")
        if c < 0:
            raise RPCError(RPC_INVALID_PARAMETER, "Negative count")
        if sk < 0:
            raise RPCError(RPC_INVALID_PARAMETER, "Negative from")
        w = self._wallet()

        def work():
            self._sync_mempool()
            rows = []
            for wtx in w.transactions():
                j = self._wallet_tx_json(w, wtx)
                for d in j["details"]:
                    if label not in (None, "*") and d.get("label", "") != label:
                        continue
                    row = dict(d)
                    for k in ("confirmations", "generated", "trusted", "blockhash", "blockheight",
                              "blocktime", "txid", "wtxid", "walletconflicts", "time", "timereceived",
                              "bip125-replaceable"):
                        if k in j:
                            row[k] = j[k]
                    rows.append(row)
            end = len(rows) - sk
            return rows[max(0, end - c):max(0, end)]
        return await self._w(work)

    async def m_invalidateblock(self, blockhash) -> None:
        """invalidateblock "blockhash"
Permanently marks a block as invalid, as if it violated a consensus rule."""
        bh = _hash(blockhash, "blockhash")

        def work():
            try:
                self._cs().invalidate_block(bh)
            except KeyError:
                raise RPCError(RPC_INVALID_ADDRESS_OR_KEY, "Block not found") from None
            except ValueError as e:
                raise RPCError(RPC_MISC_ERROR, str(e)) from None
        return await self._w(work)

    async def m_reconsiderblock(self, blockhash) -> None:
        """reconsiderblock "blockhash"
Removes invalidity status of a block, its ancestors and its descendants, reconsider them for activation."""
        bh = _hash(blockhash, "blockhash")

        def work():
            try:
                self._cs().reconsider_block(bh)
            except KeyError:
                raise RPCError(RPC_INVALID_ADDRESS_OR_KEY, "Block not found") from None
        return await self._w(work)

    def _connman(self):
        cm = self.node.connman
        if cm is None:
            raise RPCError(RPC_CLIENT_P2P_DISABLED, "Error: Peer-to-peer functionality missing or disabled")
        return cm

    async def m_disconnectnode(self, address="", nodeid=None) -> None:
        """disconnectnode ( "address" nodeid )
Immediately disconnects from the specified peer node."""
        cm = self._connman()
        if address and nodeid is not None:
            raise RPCError(RPC_INVALID_PARAMS, "Only one of address and nodeid should be provided.")
        ok = cm.disconnect(address=address or None, peer_id=_int(nodeid, "nodeid") if nodeid is not None else None)
        if not ok:
            raise RPCError(RPC_CLIENT_NODE_NOT_CONNECTED, "Node not found in connected nodes")

    async def m_getnetworkinfo(self) -> dict:
        """getnetworkinfo
Returns an object containing various state info regarding P2P networking."""
        from .. import __version__
        cm = self.node.connman
        peers = cm.connected_peers() if cm is not None else []
        inbound = sum(1 for p in peers if p.inbound)
        return {"version": 10000, "subversion": f"/tinynode:{__version__}/", "protocolversion": 70015,
                "localservices": "0000000000000001", "localservicesnames": ["NETWORK"],
                "localrelay": True, "timeoffset": 0,
                "networkactive": bool(cm.network_active) if cm is not None else False,
                "connections": len(peers), "connections_in": inbound, "connections_out": len(peers) - inbound,
                "networks": [], "relayfee": amount_to_json(1000), "incrementalfee": amount_to_json(1000),
                "localaddresses": ([{"address": self.node.config.bind, "port": self.node.p2p_port, "score": 1}]
                                   if cm is not None and cm.listen else []),
                "warnings": []}

    async def m_setnetworkactive(self, state) -> bool:
        """setnetworkactive state
Disable/enable all p2p network activity."""
        active = _bool(state, "state")
        self._connman().set_network_active(active)
        return active

    async def m_setban(self, subnet, command, bantime=0, absolute=False) -> None:
        """setban "subnet" "command" ( bantime absolute )
Attempts to add or remove an IP (optionally with :port for local addresses) from the banned list."""
        cm = self._connman()
        target, cmd = _str(subnet, "subnet"), _str(command, "command")
        host, port = target, None
        if target.count(":") == 1:
            host, p = target.split(":")
            port = _int(p, "port")
        if cmd == "add":
            if cm.is_banned(host, port):
                raise RPCError(RPC_CLIENT_NODE_ALREADY_ADDED, "Error: IP/Subnet already banned")
            secs = _int(bantime, "bantime")
            if _bool(absolute, "absolute") and secs:
                secs = secs - int(time.time())
            cm.ban(host, port, float(secs) if secs > 0 else None)
        elif cmd == "remove":
            if not cm.unban(host, port):
                raise RPCError(RPC_CLIENT_INVALID_IP_OR_SUBNET, "Error: Unban failed. Requested address/subnet was not previously manually banned.")
        else:
            raise RPCError(RPC_MISC_ERROR, 'setban "subnet" "command"\ncommand must be "add" or "remove"')

    async def m_listbanned(self) -> list:
        """listbanned
List all manually banned IPs/Subnets."""
        now = int(time.time())
        out = []
        for b in self._connman().list_banned():
            until = int(b["banned_until"])
            created = b.get("ban_created")  # null until ConnMan records when a ban was made
            created = int(created) if created is not None else None
            out.append({"address": b["address"], "ban_created": created, "banned_until": until,
                        "ban_duration": until - created if created is not None else None,
                        "time_remaining": max(0, until - now), "reason": b.get("reason")})
        return out

    async def m_clearbanned(self) -> None:
        """clearbanned
Clear all banned IPs."""
        self._connman().clear_banned()

    @staticmethod
    def _peer_address(address: Any) -> str:
        """`host:port` (or `[v6]:port`) → the canonical text ConnMan's deny-list holds."""
        from ..net.addrman import addr_key
        text = _str(address, "address").strip()
        host, sep, port = text.rpartition(":")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        try:
            p = int(port)
        except ValueError:
            p = -1
        if not sep or not host or not 0 < p < 65536:
            raise RPCError(RPC_INVALID_PARAMETER, f"Invalid address {text!r}: expected host:port")
        return addr_key(host, p)

    async def m_denypeer(self, address) -> None:
        """denypeer "host:port"
Never connect to or accept the peer listening at host:port until allowpeer (tinynode; the lab's partitions).
Current connections to that peer (by address or advertised listening address) are dropped."""
        self._connman().deny(self._peer_address(address))

    async def m_allowpeer(self, address) -> None:
        """allowpeer "host:port"
Undo denypeer for host:port (tinynode); peers added with --peers or addnode reconnect."""
        self._connman().allow(self._peer_address(address))

    async def m_listdeniedpeers(self) -> list:
        """listdeniedpeers
The host:port addresses denied with denypeer, sorted (tinynode)."""
        return self._connman().denied()

    async def m_gettxoutsetinfo(self, hash_type="hash_serialized_3") -> dict:
        """gettxoutsetinfo ( "hash_type" )
Returns statistics about the unspent transaction output set. hash_type: 'hash_serialized_3'
(Core's legacy UTXO-set hash, the same value Core computes for the same set) or 'none'."""
        if hash_type not in ("hash_serialized_3", "none"):
            raise RPCError(RPC_INVALID_PARAMETER, f"'{hash_type}' is not a valid hash_type")

        def work():
            cs = self._cs()
            st = cs.utxo_stats(with_hash=hash_type == "hash_serialized_3")
            res = {"height": cs.height, "bestblock": hash_to_hex(cs.tip.hash), "txouts": st.txouts,
                   "bogosize": st.bogosize}
            if st.hash_serialized is not None:
                res["hash_serialized_3"] = hash_to_hex(st.hash_serialized)
            res.update({"total_amount": amount_to_json(st.total_amount), "transactions": st.transactions,
                        "disk_size": self.node.size_on_disk()})
            return res
        return await self._w(work)

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

        def one(tx: Tx) -> dict:
            mp = self.node.mempool
            res: dict[str, Any] = {"txid": tx.txid_hex, "wtxid": tx.txid_hex}
            if mp is None:
                return {**res, "allowed": False, "reject-reason": "mempool unavailable"}
            if tx.txid in mp:
                return {**res, "allowed": False, "reject-reason": "txn-already-in-mempool",
                        "reject-details": "txn-already-in-mempool"}
            try:  # a dry run of every accept check, BIP125 replacement rules included
                entry = mp.test_accept(tx, int(time.time()))
            except ValidationError as e:  # Core: reject-details = ValidationState::ToString()
                if e.reason in (RejectReason.MISSING_INPUTS, RejectReason.BAD_TXNS_INPUTS_MISSINGORSPENT):
                    return {**res, "allowed": False, "reject-reason": "missing-inputs"}  # TX_MISSING_INPUTS
                details = e.reject_string + (f", {e.detail}" if e.detail and not e._formatted() else "")
                return {**res, "allowed": False, "reject-reason": e.reject_string, "reject-details": details}
            except PolicyError as e:
                return {**res, "allowed": False, "reject-reason": e.reason,
                        "reject-details": e.reason + (f", {e.detail}" if e.detail else "")}
            fee = entry.fee
            if max_rate and fee * 1000 > max_rate * tx.size:
                return {**res, "allowed": False, "reject-reason": "max-fee-exceeded"}
            return {**res, "allowed": True, "vsize": tx.size,
                    "fees": {"base": amount_to_json(fee),
                             "effective-feerate": amount_to_json(fee * 1000 // tx.size),
                             "effective-includes": [tx.txid_hex]}}
        return await self._w(lambda: [one(tx) for tx in txs])

    # === raw transactions ============================================================================
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
        """Core `SignTransaction`: sign every input we can (P2PKH, P2PK); report the others."""
        from dataclasses import replace as dc_replace
        from ..primitives.tx import OutPoint, TxIn
        from ..script.sighash import SIGHASH_ALL, SIGHASH_ANYONECANPAY, SIGHASH_NONE, SIGHASH_SINGLE
        from ..script.sign import sign_p2pk, sign_p2pkh
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
            given[OutPoint(_hash(p.get("txid"), "txid"), _int(p.get("vout"), "vout"))] = spk
        cs, mp = self._cs(), self.node.mempool
        vin = list(tx.vin)
        errors = []
        for i, txin in enumerate(tx.vin):
            spk = given.get(txin.prevout)
            if spk is None:
                coin = cs.get_coin(txin.prevout)
                if coin is None and mp is not None:
                    e = mp.get(txin.prevout.txid)
                    if e is not None and txin.prevout.n < len(e.tx.vout):
                        spk = e.tx.vout[txin.prevout.n].script_pubkey
                elif coin is not None:
                    spk = coin.script_pubkey
            if spk is None:
                errors.append({"txid": hash_to_hex(txin.prevout.txid), "vout": txin.prevout.n,
                               "scriptSig": txin.script_sig.hex(), "sequence": txin.sequence,
                               "error": "Input not found or already spent"})
                continue
            kind = classify(spk).value
            key = None
            if kind == "pubkeyhash":
                key = key_for(spk[3:23], spk)
            elif kind == "pubkey":
                pub = next(d for op, d in iter_ops(spk) if d is not None)
                from ..primitives.hashes import hash160
                key = key_for(hash160(pub), None)
            if key is None:
                errors.append({"txid": hash_to_hex(txin.prevout.txid), "vout": txin.prevout.n,
                               "scriptSig": txin.script_sig.hex(), "sequence": txin.sequence,
                               "error": "Unable to sign input, missing key or unsupported script"})
                continue
            tmp = dc_replace(tx, vin=tuple(vin))
            sig = (sign_p2pkh if kind == "pubkeyhash" else sign_p2pk)(tmp, i, key, spk, hash_type)
            vin[i] = TxIn(txin.prevout, sig, txin.sequence)
        signed = dc_replace(tx, vin=tuple(vin))
        j: dict[str, Any] = {"hex": signed.raw.hex(), "complete": not errors}
        if errors:
            j["errors"] = errors
        return j

    async def m_signrawtransactionwithkey(self, hexstring, privkeys, prevtxs=None, sighashtype="ALL") -> dict:
        """signrawtransactionwithkey "hexstring" ["privatekey",...] ( [{"txid":"hex","vout":n,"scriptPubKey":"hex"},...] "sighashtype" )
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
        """signrawtransactionwithwallet "hexstring" ( [{"txid":"hex","vout":n,"scriptPubKey":"hex"},...] "sighashtype" )
Sign inputs for raw transaction with the wallet's keys."""
        from ..primitives.address import p2pkh_script
        try:
            tx = Tx.from_hex(_str(hexstring, "hexstring"))
        except DecodeError:
            raise RPCError(RPC_DESERIALIZATION_ERROR, "TX decode failed. Make sure the tx has at least one input.") from None
        w = self._wallet()
        return await self._w(self._sign_inputs, tx,
                             lambda h160, spk: w.keys.private_key(p2pkh_script(h160)), prevtxs, sighashtype)

    async def m_submitblock(self, hexdata, dummy=None) -> str | None:
        """submitblock "hexdata" ( "dummy" )
Attempts to submit a new block to the network. Returns null when it is valid and now the tip,
otherwise a BIP22 result as Core gives it: "duplicate", "duplicate-invalid", "inconclusive"
(valid so far but not on the best chain), "prev-blk-not-found", or the reject reason."""
        try:
            block = Block.from_bytes(bytes.fromhex(_str(hexdata, "hexdata")))
        except (ValueError, DecodeError):
            raise RPCError(RPC_DESERIALIZATION_ERROR, "Block decode failed") from None
        parent = await self._w(lambda: self._cs().get_entry(block.header.prev_hash))
        if parent is None:  # Core keeps no block whose parent it lacks (AcceptBlockHeader)
            return "prev-blk-not-found"
        parent_failed = parent.failed
        res = await self.node.writer.submit_block(block)  # Core submitblock + BIP22ValidationResult
        if res.status == "connected":
            return None
        if res.status in ("duplicate", "accepted"):
            return "duplicate" if res.status == "duplicate" else "inconclusive"
        if res.error is not None and res.error.reason == RejectReason.BAD_PREVBLK and not parent_failed:
            # stored, then an ancestor failed while the chain moved onto it: Core reports on the
            # submitted block only, which was never checked on its own
            return "inconclusive"
        return res.error.reject_string if res.error is not None else "rejected"

    async def m_generateblock(self, output, transactions, submit=True) -> dict:
        """generateblock "output" ["rawtx/txid",...] ( submit )
Mine a block with exactly the given transactions (mempool txids or raw hex), in that order."""
        from ..mining.template import make_coinbase
        from ..mining.worker import grind
        from ..primitives.block import BlockHeader, bits_to_target, merkle_root
        spk = self._decode_address(output)
        if not isinstance(transactions, list):
            raise RPCError(RPC_TYPE_ERROR, "transactions must be an array")
        do_submit = _bool(submit, "submit")

        def build():
            cs, mp = self._cs(), self.node.mempool
            txs = []
            for item in transactions:
                s_item = _str(item, "transaction")
                tx = None
                if len(s_item) == 64:
                    try:
                        t = hex_to_hash(s_item)
                    except ValueError:
                        t = None
                    e = mp.get(t) if (mp is not None and t is not None) else None
                    if e is None:
                        raise RPCError(RPC_INVALID_ADDRESS_OR_KEY, f"Transaction {s_item} not in mempool.")
                    tx = e.tx
                else:
                    try:
                        tx = Tx.from_hex(s_item)
                    except DecodeError:
                        raise RPCError(RPC_DESERIALIZATION_ERROR, f"Transaction decode failed for {s_item}") from None
                txs.append(tx)
            fees = 0
            spent: dict = {}
            for tx in txs:
                total_in = 0
                for txin in tx.vin:
                    v = spent.get(txin.prevout)
                    if v is None:
                        coin = cs.get_coin(txin.prevout)
                        v = coin.value if coin is not None else 0
                    total_in += v
                for n, o in enumerate(tx.vout):
                    from ..primitives.tx import OutPoint
                    spent[OutPoint(tx.txid, n)] = o.value
                fees += max(0, total_in - sum(o.value for o in tx.vout))
            tip = cs.tip
            height = tip.height + 1
            now = max(int(time.time()), cs.median_time_past(tip) + 1)
            bits = cs.next_bits(tip, now)
            cb = make_coinbase(height, self._params.block_subsidy(height) + fees, spk)
            all_txs = (cb,) + tuple(txs)
            root, _ = merkle_root([t.txid for t in all_txs])
            return BlockHeader(4, tip.hash, root, now, bits, 0), all_txs
        header, all_txs = await self._w(build)
        target = bits_to_target(header.bits)[0]
        h76 = header.serialize()[:76]
        nonce, start = None, 0
        while nonce is None:
            if start > 0xFFFFFFFF:
                raise RPCError(RPC_MISC_ERROR, "nonce space exhausted; try again")
            nonce = await asyncio.to_thread(grind, h76, target, start, 1 << 20)
            start += 1 << 20
        from dataclasses import replace as dc_replace
        block = Block(dc_replace(header, nonce=nonce), all_txs)
        if do_submit:
            res = await self.node.writer.submit_block(block)
            if not res.ok:
                raise RPCError(RPC_VERIFY_ERROR, f"generateblock: block rejected: {res.error}")
            return {"hash": hash_to_hex(block.hash)}
        return {"hash": hash_to_hex(block.hash), "hex": block.serialize().hex()}

    # === control =====================================================================================
    async def m_stop(self) -> str:
        """stop
Request a graceful shutdown of tinynode."""
        self.node.request_stop()
        return "tinynode stopping"

    async def m_uptime(self) -> int:
        """uptime
Returns the total uptime of the server in seconds."""
        return int(time.time() - self.node.start_time)

    async def m_help(self, command=None) -> str:
        """help ( "command" )
List all commands, or get help for a specified command."""
        if command is not None:
            c = _str(command, "command")
            fn = self._table.get(c)
            if fn is None:
                return f"help: unknown command: {c}"
            doc = inspect.getdoc(fn) or c
            usage = doc.splitlines()[0]
            return (f"{doc}\n\nExamples:\n> tinynode-cli {usage}\n"
                    f"> curl --unix-socket rpc.sock --data-binary "
                    f"'{{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": \"{c}\", \"params\": []}}' http://localhost/")
        lines = []
        for name in self.names:
            doc = inspect.getdoc(self._table[name]) or name
            lines.append(doc.splitlines()[0])
        return "\n".join(lines)

