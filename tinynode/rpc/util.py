"""What every RPC area shares: argument parsing and the JSON builders.

Module functions parse arguments as Core's RPC helpers do (`AmountFromValue`, `ParseHashV`, the
UniValue type errors) and build the JSON of scripts (`ScriptToAsmStr`, `ScriptToUniv`).
`RPCArea` is the base of every area mixin (`blockchain`, `rawtx`, `mining`, `net`, `wallet`,
`control`): the node's owners (chain writer, mempool, wallet, miner, connman) and the JSON of
transactions, headers and blocks (`TxToUniv`, `blockheaderToJSON`, `blockToJSON`). Chain,
mempool and wallet state are only touched on the chain writer thread (`writer.call`). Amounts
are integer satoshis inside and JSON numbers of coins with 8 decimals at this edge, as in Core.
"""

from __future__ import annotations

import logging
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Callable

from ..consensus.errors import PolicyError, RejectReason, ValidationError
from ..primitives.address import AddressError, address_from_script, decode_address
from ..primitives.block import Block, bits_to_target
from ..primitives.hashes import hash_to_hex, hex_to_hash
from ..primitives.serialize import DecodeError
from ..primitives.tx import COIN, MAX_MONEY, Tx
from ..script.descriptor import infer_descriptor
from ..script.opcodes import Op
from ..script.script import iter_ops
from ..script.sigcheck import is_valid_signature_encoding
from ..validation import TxOrigin
from .protocol import (
    Amount, RPC_INTERNAL_ERROR, RPC_INVALID_ADDRESS_OR_KEY, RPC_INVALID_PARAMETER, RPC_METHOD_NOT_FOUND,
    RPC_MISC_ERROR,
    RPC_TYPE_ERROR, RPC_VERIFY_ERROR, RPC_VERIFY_REJECTED, RPCError,
)

if TYPE_CHECKING:  # pragma: no cover
    from ..node import Node

log = logging.getLogger(__name__)

#: Core's RPC_INTERNAL_ERROR text (blockToJSON, getrawtransaction) for an undo record that
#: should be there and cannot be read
UNDO_UNREADABLE = ("Undo data expected but can't be read. This could be due to disk corruption "
                   "or a conflict with a pruning event.")


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


def parse_fee_rate(value: Any) -> int:
    """Core `ParseFeeRate`: an amount of coins per kvB below 1 coin/kvB, as satoshis per kvB."""
    sats = amount_from_json(value)
    if sats >= COIN:
        raise RPCError(RPC_INVALID_PARAMETER, "Fee rates larger than or equal to 1BTC/kvB are not accepted")
    return sats


def address_prefix_hint(params) -> str:
    """What this network's addresses start with, from its base58 version bytes:
    `tinynet addresses start with T (P2SH ones with t)`."""
    from ..primitives.address import b58check_encode
    alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

    def leading(version: int) -> str:
        lo, hi = (b58check_encode(bytes((version,)) + fill * 20)[0] for fill in (b"\x00", b"\xff"))
        return " or ".join(alphabet[alphabet.index(lo):alphabet.index(hi) + 1])
    return f"{params.name} addresses start with {leading(params.pubkey_prefix)} " \
           f"(P2SH ones with {leading(params.script_prefix)})"


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
    """Core `coinbaseTxToJSON` (getblock's `coinbase_tx`): `witness` is the coinbase's witness
    reserved value (BIP141), when it has one."""
    txin = tx.vin[0]
    j = {"version": tx.version & 0xFFFFFFFF, "locktime": tx.locktime, "sequence": txin.sequence,
         "coinbase": txin.script_sig.hex()}
    if txin.witness:
        j["witness"] = txin.witness[0].hex()
    return j


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
    """Core `GetTxnOutputType(Solver(spk))`, witness programs included."""
    from ..primitives.address import witness_program
    wp = witness_program(spk) if spk[:1] != b"\xa9" else None
    if wp is not None:
        version, program = wp
        if version == 0:
            return {20: "witness_v0_keyhash", 32: "witness_v0_scripthash"}.get(len(program), "nonstandard")
        if version == 1 and len(program) == 32:
            return "witness_v1_taproot"
        if version == 1 and program == b"\x4e\x73":
            return "anchor"
        return "witness_unknown"
    try:
        from ..script.script import classify
        return str(classify(spk).value)
    except ImportError:  # pragma: no cover
        return "nonstandard"


def raise_for_refusal(e: Exception) -> None:
    """A mempool refusal as Core's `BroadcastTransaction` reports it (`HandleATMPError`):
    missing inputs RPC_VERIFY_ERROR, any other rejection RPC_VERIFY_REJECTED with the reason."""
    if isinstance(e, ValidationError):
        if e.reason in (RejectReason.BAD_TXNS_INPUTS_MISSINGORSPENT, RejectReason.MISSING_INPUTS):
            raise RPCError(RPC_VERIFY_ERROR, "bad-txns-inputs-missingorspent")
        raise RPCError(RPC_VERIFY_REJECTED, e.reject_string)
    if isinstance(e, PolicyError):
        if e.reason in ("bad-txns-inputs-missingorspent", "missing-inputs"):
            raise RPCError(RPC_VERIFY_ERROR, "bad-txns-inputs-missingorspent")
        if e.reason == "mempool unavailable":
            raise RPCError(RPC_MISC_ERROR, "mempool is not available")
        if e.reason == "max-fee-exceeded":
            raise RPCError(RPC_VERIFY_ERROR, "Fee exceeds maximum configured by user (e.g. -maxtxfee, maxfeerate)")
        raise RPCError(RPC_VERIFY_REJECTED, e.reason + (f" ({e.detail})" if e.detail else ""))
    raise RPCError(RPC_MISC_ERROR, str(e))


# --- the base of every area ----------------------------------------------------------------------

class RPCArea:
    """The node's owners as the RPC areas reach them, and the JSON shared between areas."""

    def __init__(self, node: "Node"):
        self.node = node

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
            raise RPCError(RPC_INVALID_ADDRESS_OR_KEY,
                           f"Invalid address: {address}; {address_prefix_hint(self._params)}") from None

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
        """Core `TxToUniv`: hash = wtxid, size = total size, vsize/weight per BIP141, and
        `txinwitness` (hex items) on each input that has a witness."""
        vin = []
        for txin in tx.vin:
            if tx.is_coinbase():
                j_in: dict[str, Any] = {"coinbase": txin.script_sig.hex()}
            else:
                j_in = {"txid": hash_to_hex(txin.prevout.txid), "vout": txin.prevout.n,
                        "scriptSig": {"asm": _script_asm(txin.script_sig, sighash_decode=True),
                                      "hex": txin.script_sig.hex()}}
            if txin.witness:
                j_in["txinwitness"] = [item.hex() for item in txin.witness]
            j_in["sequence"] = txin.sequence
            vin.append(j_in)
        vout = []
        for n, out in enumerate(tx.vout):
            vout.append({"value": amount_to_json(out.value), "n": n,
                         "scriptPubKey": _script_pubkey_json(out.script_pubkey, self._params)})
        j: dict[str, Any] = {"txid": tx.txid_hex, "hash": tx.wtxid_hex, "version": tx.version & 0xFFFFFFFF,
                             "size": tx.size, "vsize": tx.vsize, "weight": tx.weight,
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
            have_undo, spent = self._block_undo(block, entry)   # Core blockToJSON: have_undo
            if have_undo and spent is None:
                raise RPCError(RPC_INTERNAL_ERROR, UNDO_UNREADABLE)
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
            "size": block.size, "strippedsize": block.base_size, "weight": block.weight,
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

    def _undo_expected(self, entry) -> bool:
        """A block that must have an undo record: every block of the active chain above
        genesis that is not pruned was connected, which wrote one, and only pruning deletes
        it; such a block without a readable record is corruption, not a normal state."""
        cs = self._cs()
        return (entry.height > 0 and cs.get_block_hash(entry.height) == entry.hash
                and not cs.is_block_pruned(entry))

    def _block_undo(self, block: Block, entry) -> tuple[bool, list[list] | None]:
        """Core's `!IsBlockPruned(blockindex) && blockindex.nStatus & BLOCK_HAVE_UNDO` and the
        record: (have_undo, the coins each non-coinbase tx spent, or None when unreadable).
        A block has undo when the store holds its record (connected once, active or not: a
        disconnection keeps it, as Core keeps BLOCK_HAVE_UNDO) or when one is expected
        (`_undo_expected`); genesis never has any."""
        if entry.height == 0:
            return False, None
        raw = self._cs().get_undo(entry.hash)   # staged (not yet written), else stored
        if raw is None:
            return self._undo_expected(entry), None
        return True, self._parse_block_undo(block, raw)

    @staticmethod
    def _parse_block_undo(block: Block, raw) -> list[list] | None:
        """The undo record split per non-coinbase tx; None when it does not parse or does not
        fit the block (Core `UndoReadFromDisk` failing its checksum, or a size mismatch)."""
        from ..storage.base import parse_undo
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

    def _accept(self, tx: Tx, origin: TxOrigin, max_rate_kvb_sats: int = 0) -> Any:
        """Writer thread: the service's tx path (`submit_tx_now`), its refusal mapped as Core's
        `BroadcastTransaction` (RPC_VERIFY_ERROR for missing inputs, RPC_VERIFY_REJECTED with
        the reject reason otherwise). Returns the `TxResult`; already known is not an error.
        The caller publishes the result (`service.publish`) once off the writer thread."""
        res = self.node.service.submit_tx_now(tx, origin, max_rate_kvb_sats)
        e = res.error
        if res.accepted or e is None:
            return res
        if isinstance(e, (ValidationError, PolicyError)) and e.reason in (
                RejectReason.TXN_ALREADY_IN_MEMPOOL, RejectReason.TXN_ALREADY_KNOWN,
                "txn-already-in-mempool", "txn-already-known"):
            return res
        raise_for_refusal(e)
