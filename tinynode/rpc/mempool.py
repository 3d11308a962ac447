"""Mempool RPCs of Core's rpc/mempool.cpp that work on spends and packages:
`gettxspendingprevout` and `submitpackage` (the others live in rawtx.py)."""

from __future__ import annotations

import logging
from typing import Any

from ..consensus.errors import PolicyError, ValidationError
from ..primitives.hashes import hash_to_hex
from ..primitives.serialize import DecodeError
from ..primitives.tx import OutPoint, Tx
from ..script.script import ScriptParseError, iter_ops
from ..validation import TxOrigin
from .protocol import (
    RPC_DESERIALIZATION_ERROR, RPC_INVALID_PARAMETER, RPC_MISC_ERROR, RPC_TYPE_ERROR,
    RPC_VERIFY_ERROR, RPCError,
)
from .util import RPCArea, _bool, _hash, _jtype, _str, amount_from_json, amount_to_json

log = logging.getLogger(__name__)

MAX_PACKAGE_COUNT = 25
RPC_CLIENT_MEMPOOL_DISABLED = -33            # Core's EnsureMemPool error code
DEFAULT_MAX_RAW_TX_FEE_RATE = 10_000_000     # sat/kvB: Core's 0.10 BTC/kvB
_MAX_OPCODE = 0xB9


def _state_string(err: Exception) -> str:
    """Core `ValidationState::ToString`: the reason, then ", " and the debug message if any."""
    if isinstance(err, ValidationError):
        if err.reason == "bad-txns-inputs-missingorspent":
            return err.reason                  # Core sets no debug message for missing inputs
        return err.reject_string + (f", {err.detail}" if err.detail and not err._formatted() else "")
    if isinstance(err, PolicyError):
        return err.reason + (f", {err.detail}" if err.detail else "")
    return str(err)


def _unspendable_or_invalid(script: bytes) -> bool:
    """Core `IsUnspendable() || !HasValidOps()` (submitpackage's maxburnamount check)."""
    if (script[:1] == b"\x6a") or len(script) > 10_000:
        return True
    try:
        for op, data in iter_ops(script):
            if op > _MAX_OPCODE or (data is not None and len(data) > 520):
                return True
    except ScriptParseError:
        return True
    return False


def _check_obj(o: Any, fields: dict[str, type | tuple], allow_null: bool, what: str = "object") -> None:
    """Core `RPCTypeCheckObj(strict=true)`."""
    if not isinstance(o, dict):
        raise RPCError(RPC_TYPE_ERROR, f"JSON value of type {_jtype(o)} is not of expected type object")
    names = {int: "number", bool: "bool", str: "string"}
    for name, typ in fields.items():
        v = o.get(name)
        if v is None:
            if not allow_null:
                raise RPCError(RPC_TYPE_ERROR, f"Missing {name}")
            continue
        ok = isinstance(v, typ) and not (typ is int and isinstance(v, bool))
        if typ is int and isinstance(v, float):
            ok = True
        if not ok:
            raise RPCError(RPC_TYPE_ERROR, f"JSON value of type {_jtype(v)} for field {name} is not of "
                                           f"expected type {names.get(typ, 'object')}")
    for k in o:
        if k not in fields:
            raise RPCError(RPC_TYPE_ERROR, f"Unexpected key {k}")


class MempoolRPC(RPCArea):
    """prioritisetransaction, getprioritisedtransactions, getorphantxs, gettxspendingprevout,
    submitpackage."""

    async def m_prioritisetransaction(self, txid, dummy=None, fee_delta=None) -> bool:
        """prioritisetransaction "txid" ( dummy ) fee_delta
Accepts the transaction into mined blocks at a higher (or lower) priority.
fee_delta: satoshis to add to (or, negative, subtract from) the transaction's fee as block
assembly, eviction and replacement judge it; the fee is not actually paid. Kept for a
transaction not in the mempool yet. dummy: must be 0 or null (Core's old priority argument)."""
        t = _hash(txid, "txid")
        if dummy is not None and (isinstance(dummy, bool) or not isinstance(dummy, (int, float))):
            raise RPCError(RPC_TYPE_ERROR, f"JSON value of type {_jtype(dummy)} is not of expected type number")
        if fee_delta is None:
            raise RPCError(RPC_MISC_ERROR, self._usage("prioritisetransaction"))
        if isinstance(fee_delta, bool) or not isinstance(fee_delta, (int, float)):
            raise RPCError(RPC_TYPE_ERROR, f"JSON value of type {_jtype(fee_delta)} is not of expected type number")
        if isinstance(fee_delta, float) and not fee_delta.is_integer():
            raise RPCError(RPC_TYPE_ERROR, "JSON integer out of range")
        if dummy:
            raise RPCError(RPC_INVALID_PARAMETER, "Priority is no longer supported, dummy argument to "
                                                  "prioritisetransaction must be 0.")
        delta = int(fee_delta)

        def work() -> bool:
            mp = self.node.mempool
            if mp is None:
                raise RPCError(RPC_CLIENT_MEMPOOL_DISABLED, "Mempool disabled or instance not found")
            from ..mempool.policy import is_dust
            tx = mp.get_tx(t) if t in mp else None
            require_standard = getattr(self._params, "require_standard", True)
            if require_standard and tx is not None and any(
                    is_dust(o, mp.config.dust_relay_fee) for o in tx.vout):
                raise RPCError(RPC_INVALID_PARAMETER,
                               "Priority is not supported for transactions with dust outputs.")
            mp.prioritise(t, delta)
            return True
        return await self._w(work)

    async def m_getprioritisedtransactions(self) -> dict:
        """getprioritisedtransactions
Returns a map of all user-created (see prioritisetransaction) fee deltas by txid, and whether
the tx is present in mempool: {txid: {"fee_delta", "in_mempool", "modified_fee" (in the pool
only)}}, in satoshis."""
        def work() -> dict:
            mp = self.node.mempool
            if mp is None:
                raise RPCError(RPC_CLIENT_MEMPOOL_DISABLED, "Mempool disabled or instance not found")
            out: dict[str, Any] = {}
            for txid, delta, modified in mp.prioritised():
                j: dict[str, Any] = {"fee_delta": delta, "in_mempool": modified is not None}
                if modified is not None:
                    j["modified_fee"] = modified
                out[hash_to_hex(txid)] = j
            return out
        return await self._w(work)

    async def m_getorphantxs(self, verbosity=0) -> list:
        """getorphantxs ( verbosity )
Shows transactions in the tx orphanage (Core v31). verbosity 0: txids; 1: objects with txid,
wtxid, bytes, vsize, weight and from (the peer ids that sent it); 2: also hex."""
        if isinstance(verbosity, bool):
            raise RPCError(RPC_TYPE_ERROR, "Verbosity was boolean but only integer allowed")
        if verbosity is None:
            verbosity = 0
        if not isinstance(verbosity, int):
            raise RPCError(RPC_TYPE_ERROR, f"JSON value of type {_jtype(verbosity)} is not of expected type number")
        if verbosity not in (0, 1, 2):
            raise RPCError(RPC_INVALID_PARAMETER, f"Invalid verbosity value {verbosity}")
        mp = self.node.mempool
        if mp is None:
            return []

        def read() -> list:
            out: list = []
            for o in mp.orphans.orphans():
                tx = o.tx
                if verbosity == 0:
                    out.append(tx.txid_hex)
                    continue
                row = {"txid": tx.txid_hex, "wtxid": tx.wtxid_hex, "bytes": len(tx.raw),
                       "vsize": (tx.weight + 3) // 4, "weight": tx.weight,
                       "from": [o.peer] if isinstance(o.peer, int) else []}
                if verbosity == 2:
                    row["hex"] = tx.raw.hex()
                out.append(row)
            return out
        return await self._w(read)

    async def m_gettxspendingprevout(self, outputs, options=None, mempool_only=None,
                                     return_spending_tx=None) -> list:
        """gettxspendingprevout [{"txid":"hex","vout":n},...] ( {"mempool_only":bool,"return_spending_tx":bool} )
Scans the mempool (and the txospenderindex, if available) to find transactions spending any of
the given outputs. mempool_only: default true without --txospenderindex, false with it; if false
and the mempool lacks a relevant spend, the txospenderindex answers (an error without it).
Result: [{"txid", "vout", "spendingtxid" (if spent), "spendingtx" (with return_spending_tx),
"blockhash" (the block holding the spend, if confirmed)}, ...]: the outputs spent in the mempool
(all outputs when mempool_only) first, then the others, as Core."""
        if not isinstance(outputs, list):
            raise RPCError(RPC_TYPE_ERROR, f"JSON value of type {_jtype(outputs)} is not of expected type array")
        if not outputs:
            raise RPCError(RPC_INVALID_PARAMETER, "Invalid parameter, outputs are missing")
        opts = {} if options is None else options
        _check_obj(opts, {"mempool_only": bool, "return_spending_tx": bool}, allow_null=True)
        if mempool_only is not None:
            opts = {**opts, "mempool_only": _bool(mempool_only, "mempool_only")}
        if return_spending_tx is not None:
            opts = {**opts, "return_spending_tx": _bool(return_spending_tx, "return_spending_tx")}
        with_tx = opts.get("return_spending_tx", False)
        wanted: list[tuple[OutPoint, dict]] = []
        for o in outputs:
            _check_obj(o, {"txid": str, "vout": int}, allow_null=False)
            txid = _hash(o["txid"], "txid")
            n = int(o["vout"])
            if n < 0:
                raise RPCError(RPC_INVALID_PARAMETER, "Invalid parameter, vout cannot be negative")
            wanted.append((OutPoint(txid, n), o))

        def work():
            cs = self._cs()
            has_index = cs.txospenderindex
            only_mempool = opts.get("mempool_only", not has_index)
            mp = self.node.mempool
            result, left = [], []
            for op, raw in wanted:           # Core: the mempool first
                spender = mp.spender_of(op) if mp is not None else None
                if spender is None and not only_mempool:
                    left.append((op, raw))
                    continue
                j = dict(raw)
                if spender is not None:
                    j["spendingtxid"] = hash_to_hex(spender)
                    if with_tx:
                        j["spendingtx"] = mp.get_tx(spender).raw.hex()
                result.append(j)
            if not left:
                return result
            if not has_index:
                raise RPCError(RPC_MISC_ERROR,
                               "Mempool lacks a relevant spend, and txospenderindex is unavailable.")
            for op, raw in left:             # then the index (Core TxoSpenderIndex::FindSpender)
                j = dict(raw)
                spend = cs.get_spender(op)
                if spend is not None:
                    j["spendingtxid"] = hash_to_hex(spend.txid)
                    if with_tx:
                        found = cs.get_tx(spend.txid)
                        if found is None or found[1] != spend.block_hash:
                            raise RPCError(RPC_MISC_ERROR, f"cannot read the spending transaction "
                                                           f"{hash_to_hex(spend.txid)}")
                        j["spendingtx"] = found[0].serialize().hex()
                    j["blockhash"] = hash_to_hex(spend.block_hash)
                result.append(j)
            return result
        return await self._w(work)

    async def m_submitpackage(self, package, maxfeerate=None, maxburnamount=None) -> dict:
        """submitpackage ["rawtx",...] ( maxfeerate maxburnamount )
Submit a package of raw transactions (serialized, hex-encoded) to local node: one transaction,
or a child with (some of) its unconfirmed parents, topologically sorted with the child last.
A parent below the minimum feerate is accepted when the package feerate meets it (CPFP).
maxfeerate: coins/kvB, default 0.10, 0 = no limit; maxburnamount: coins, default 0.
Result: {"package_msg": "success" or the package error, "tx-results": {wtxid: {"txid",
"vsize", "fees": {"base", "effective-feerate", "effective-includes"}} or {"txid", "error"}},
"replaced-transactions": [txid, ...]}."""
        if not isinstance(package, list):
            raise RPCError(RPC_TYPE_ERROR, f"JSON value of type {_jtype(package)} is not of expected type array")
        if not package or len(package) > MAX_PACKAGE_COUNT:
            raise RPCError(RPC_INVALID_PARAMETER,
                           f"Array must contain between 1 and {MAX_PACKAGE_COUNT} transactions.")
        max_rate = DEFAULT_MAX_RAW_TX_FEE_RATE if maxfeerate is None else amount_from_json(maxfeerate)
        if max_rate >= 100_000_000:
            raise RPCError(RPC_INVALID_PARAMETER, "Fee rates larger than or equal to 1BTC/kvB are not accepted")
        max_burn = 0 if maxburnamount is None else amount_from_json(maxburnamount)
        txs: list[Tx] = []
        for raw in package:
            raw = _str(raw, "rawtx")
            try:
                tx = Tx.from_hex(raw)
            except (DecodeError, ValueError):
                raise RPCError(RPC_DESERIALIZATION_ERROR,
                               f"TX decode failed: {raw} Make sure the tx has at least one input.") from None
            for out in tx.vout:
                if _unspendable_or_invalid(out.script_pubkey) and out.value > max_burn:
                    raise RPCError(RPC_VERIFY_ERROR,
                                   "Unspendable output exceeds maximum configured by user (maxburnamount)")
            txs.append(tx)
        from ..mempool.pool import is_child_with_parents_tree
        if len(txs) > 1 and not is_child_with_parents_tree(txs):
            raise RPCError(RPC_VERIFY_ERROR, "package topology disallowed. not child-with-parents "
                                             "or parents depend on each other.")
        origin = TxOrigin.rpc()
        res = await self.node.service.submit_package(txs, origin, max_fee_rate_kvb=max_rate)
        if res.error == "mempool unavailable":
            raise RPCError(RPC_MISC_ERROR, "mempool is not available")
        if res.accepted and self.node.wallet is not None:
            def record():
                w = self.node.wallet
                for e in res.accepted:
                    if w.is_relevant(e.tx):
                        w.add_tx(e.tx, from_me=False)
            await self._w(record)
        by_wtxid = {r.wtxid: r for r in res.results}
        tx_results: dict[str, Any] = {}
        replaced: set[bytes] = set()
        for tx in txs:
            j: dict[str, Any] = {"txid": tx.txid_hex}
            r = by_wtxid.get(tx.wtxid)
            if r is None:
                j["error"] = "package-not-validated"
            elif r.kind == "different-witness":
                j["other-wtxid"] = hash_to_hex(r.other_wtxid)
            elif r.kind == "invalid":
                j["error"] = _state_string(r.error)
            else:
                j["vsize"] = r.vsize
                fees: dict[str, Any] = {"base": amount_to_json(r.fee)}
                if r.kind == "valid":
                    fees["effective-feerate"] = amount_to_json(r.effective_feerate)
                    fees["effective-includes"] = [hash_to_hex(w) for w in r.effective_includes]
                j["fees"] = fees
                replaced.update(r.replaced)
            tx_results[tx.wtxid_hex] = j
        return {"package_msg": "success" if res.error is None else res.error,
                "tx-results": tx_results,
                "replaced-transactions": sorted(hash_to_hex(t) for t in replaced)}
