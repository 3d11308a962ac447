"""Relay policy: what a node accepts into its mempool beyond consensus (Core `policy/policy.cpp`).

Everything here raises `PolicyError(reason)` with Core's reject strings; nothing is consensus.
Numbers are Core's defaults; sizes are BIP141 virtual sizes (vbytes):

- standard output templates: P2PKH, P2PK, bare multisig with ≤ 3 keys, P2SH, witness programs
  (P2WPKH, P2WSH, taproot, other versions; a v0 program of another length is not), and null-data
  (OP_RETURN + pushes) outputs whose scripts total ≤ 100,000 bytes (Core v30's -datacarriersize);
- a standard tx weighs ≤ 400,000, is version 1 or 2, scriptSigs push-only and ≤ 1,650 bytes;
- spending an unknown witness version is non-standard; witnesses must pass `check_witness_standard`;
- min relay and incremental relay fee 1,000 sat/kvB; dust from a 3,000 sat/kvB dust fee;
- ≤ 25 ancestors / descendants (tx included) and ≤ 101 kvB of each.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ..consensus.errors import PolicyError
from ..primitives.coin import Coin
from ..primitives.serialize import ser_compact_size
from ..primitives.tx import WITNESS_SCALE_FACTOR, Tx, TxOut
from ..script.interpreter import ScriptError, eval_script, witness_program
from ..script.script import ScriptType, classify, is_p2sh, is_push_only, multisig_info, p2sh_sigop_count

__all__ = [
    "FeeRate",
    "PolicyConfig",
    "MAX_STANDARD_TX_SIZE",
    "MIN_STANDARD_TX_SIZE",
    "MAX_STANDARD_SCRIPTSIG_SIZE",
    "MAX_OP_RETURN_RELAY",
    "MAX_P2SH_SIGOPS",
    "MAX_STANDARD_TX_SIGOPS",
    "DEFAULT_MIN_RELAY_FEE",
    "DEFAULT_INCREMENTAL_RELAY_FEE",
    "DUST_RELAY_FEE",
    "dust_threshold",
    "is_dust",
    "check_standard_tx",
    "check_inputs_standard",
    "check_witness_standard",
    "virtual_size",
    "MAX_STANDARD_TX_WEIGHT",
    "MAX_STANDARD_TX_SIGOPS_COST",
    "DEFAULT_BYTES_PER_SIGOP",
]

MAX_STANDARD_TX_WEIGHT = 400_000        # Core MAX_STANDARD_TX_WEIGHT
MAX_STANDARD_TX_SIZE = MAX_STANDARD_TX_WEIGHT // WITNESS_SCALE_FACTOR   # in vbytes
MIN_STANDARD_TX_SIZE = 65               # Core MIN_STANDARD_TX_NONWITNESS_SIZE (stripped size)
MAX_STANDARD_SCRIPTSIG_SIZE = 1650
#: Core v30 MAX_OP_RETURN_RELAY: the default -datacarriersize, bytes of all null-data scripts of a tx
MAX_OP_RETURN_RELAY = MAX_STANDARD_TX_WEIGHT // WITNESS_SCALE_FACTOR
MAX_P2SH_SIGOPS = 15
MAX_STANDARD_TX_SIGOPS_COST = 16_000    # Core MAX_STANDARD_TX_SIGOPS_COST (MAX_BLOCK_SIGOPS_COST / 5)
MAX_STANDARD_TX_SIGOPS = MAX_STANDARD_TX_SIGOPS_COST // WITNESS_SCALE_FACTOR
DEFAULT_BYTES_PER_SIGOP = 20            # Core DEFAULT_BYTES_PER_SIGOP (-bytespersigop)
MAX_STANDARD_P2WSH_STACK_ITEMS = 100
MAX_STANDARD_P2WSH_STACK_ITEM_SIZE = 80
#: Core MAX_STANDARD_TAPSCRIPT_STACK_ITEM_SIZE
MAX_STANDARD_TAPSCRIPT_STACK_ITEM_SIZE = 80
MAX_STANDARD_P2WSH_SCRIPT_SIZE = 3600
MAX_STANDARD_MULTISIG_KEYS = 3
TX_MAX_STANDARD_VERSION = 3             # Core v31: version 3 is TRUC (policy/truc_policy.h)
TRUC_VERSION = 3
TRUC_ANCESTOR_LIMIT = 2                 # itself and at most one unconfirmed parent
TRUC_DESCENDANT_LIMIT = 2               # itself and at most one unconfirmed child
TRUC_MAX_VSIZE = 10_000
TRUC_CHILD_MAX_VSIZE = 1_000
DEFAULT_MIN_RELAY_FEE = 100             # sat/kvB (Core v31 DEFAULT_MIN_RELAY_TX_FEE)
DEFAULT_INCREMENTAL_RELAY_FEE = 100     # sat/kvB (Core v31)
DUST_RELAY_FEE = 3000                   # sat/kvB
DEFAULT_ANCESTOR_LIMIT = 25
DEFAULT_ANCESTOR_SIZE_LIMIT = 101_000   # bytes
DEFAULT_DESCENDANT_LIMIT = 25
DEFAULT_DESCENDANT_SIZE_LIMIT = 101_000
DEFAULT_MAX_MEMPOOL_SIZE = 50_000_000   # bytes of serialized txs
DEFAULT_MEMPOOL_EXPIRY = 336 * 3600     # seconds (Core -mempoolexpiry, 336 h)
#: Spending a standard output costs about this many bytes (Core's GetDustThreshold, non-witness).
_SPEND_INPUT_SIZE = 32 + 4 + 1 + 107 + 4
#: ... and a witness output this many vbytes (the 107-byte signature and key are witness data)
_SPEND_WITNESS_INPUT_SIZE = 32 + 4 + 1 + 107 // WITNESS_SCALE_FACTOR + 4
#: Core's P2A witness program (`CScript::IsPayToAnchor`: OP_1 PUSH2 0x4e73)
PAY_TO_ANCHOR_PROGRAM = b"\x4e\x73"
_P2PKH_HEAD = b"\x76\xa9\x14"
_P2PKH_TAIL = b"\x88\xac"


@dataclass(frozen=True, slots=True, order=True)
class FeeRate:
    """Satoshis per 1,000 bytes (Core `CFeeRate`)."""

    sat_per_kvb: int

    def fee(self, size: int) -> int:
        """Core `CFeeRate::GetFee`: rounded up, so a positive rate never gives a zero fee."""
        if size <= 0 or self.sat_per_kvb <= 0:
            return 0
        return -((-self.sat_per_kvb * size) // 1000)

    @classmethod
    def from_fee(cls, fee: int, size: int) -> "FeeRate":
        return cls(fee * 1000 // size if size > 0 else 0)

    def __str__(self) -> str:
        return f"{self.sat_per_kvb / 1e8:.8f} BTC/kvB"


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    """Tunable relay policy (Core's -minrelaytxfee, -limitancestorcount, -maxmempool, ...)."""

    min_relay_fee: FeeRate = FeeRate(DEFAULT_MIN_RELAY_FEE)
    incremental_relay_fee: FeeRate = FeeRate(DEFAULT_INCREMENTAL_RELAY_FEE)
    dust_relay_fee: FeeRate = FeeRate(DUST_RELAY_FEE)
    ancestor_limit: int = DEFAULT_ANCESTOR_LIMIT
    ancestor_size_limit: int = DEFAULT_ANCESTOR_SIZE_LIMIT
    descendant_limit: int = DEFAULT_DESCENDANT_LIMIT
    descendant_size_limit: int = DEFAULT_DESCENDANT_SIZE_LIMIT
    max_size: int = DEFAULT_MAX_MEMPOOL_SIZE
    expiry: int = DEFAULT_MEMPOOL_EXPIRY
    full_rbf: bool = True
    max_replacements: int = 100                  # Core MAX_REPLACEMENT_CANDIDATES
    permit_bare_multisig: bool = True
    max_datacarrier_bytes: int = MAX_OP_RETURN_RELAY  # Core -datacarriersize (0: -datacarrier=0)
    max_orphans: int = 3000                      # Core DEFAULT_MAX_ORPHANAGE_LATENCY_SCORE
    orphan_weight_per_peer: int = 404_000        # Core DEFAULT_RESERVED_ORPHAN_WEIGHT_PER_PEER
    orphan_expiry: int = 20 * 60                 # Core ORPHAN_TX_EXPIRE_TIME


def _output_size(out: TxOut) -> int:
    s = out.script_pubkey
    return 8 + len(ser_compact_size(len(s))) + len(s)


def _is_unspendable(spk: bytes) -> bool:
    """Core `CScript::IsUnspendable`: starts with OP_RETURN or larger than MAX_SCRIPT_SIZE."""
    return (len(spk) > 0 and spk[0] == 0x6A) or len(spk) > 10_000


def virtual_size(weight: int, sigop_cost: int, bytes_per_sigop: int = DEFAULT_BYTES_PER_SIGOP) -> int:
    """Core `GetVirtualTransactionSize`: weight (or sigop cost × bytes per sigop when larger)
    / 4, rounded up. The mempool's size of a tx: fees, fee rates and package sizes use it."""
    w = max(weight, sigop_cost * bytes_per_sigop)
    return (w + WITNESS_SCALE_FACTOR - 1) // WITNESS_SCALE_FACTOR


def dust_threshold(out: TxOut, dust_relay_fee: FeeRate = FeeRate(DUST_RELAY_FEE)) -> int:
    """Core `GetDustThreshold`: the fee to spend the output at the dust fee rate.

    (output size + 148) × 3 sat/vB with the default for a non-witness output: 546 sat for
    P2PKH, 540 for P2SH; a witness program spends for (output size + 67) vbytes: 294 sat for
    P2WPKH, 330 for P2WSH.
    """
    spk = out.script_pubkey
    if _is_unspendable(spk):
        return 0
    spend = _SPEND_WITNESS_INPUT_SIZE if witness_program(spk) is not None else _SPEND_INPUT_SIZE
    return dust_relay_fee.fee(_output_size(out) + spend)


def is_dust(out: TxOut, dust_relay_fee: FeeRate = FeeRate(DUST_RELAY_FEE)) -> bool:
    """Core `IsDust`."""
    return out.value < dust_threshold(out, dust_relay_fee)


def _witness_type(spk: bytes) -> str | None:
    """Core `Solver` for witness programs: "v0_keyhash", "v0_scripthash", "v1_taproot",
    "anchor" (P2A, `OP_1 <0x4e73>`), "unknown" (another version), "nonstandard" (a v0 program of
    another length), or None when `spk` is no witness program."""
    prog = witness_program(spk)
    if prog is None:
        return None
    version, program = prog
    if version == 0:
        if len(program) == 20:
            return "v0_keyhash"
        if len(program) == 32:
            return "v0_scripthash"
        return "nonstandard"
    if version == 1 and len(program) == 32:
        return "v1_taproot"
    if version == 1 and program == PAY_TO_ANCHOR_PROGRAM:
        return "anchor"
    return "unknown"


def _standard_output_type(spk: bytes, config: PolicyConfig) -> ScriptType | str | None:
    """Core `IsStandard(scriptPubKey)`: the template, or None when non-standard."""
    wtype = _witness_type(spk)
    if wtype is not None:
        return None if wtype == "nonstandard" else wtype
    kind = classify(spk)
    if kind is ScriptType.NONSTANDARD:
        return None
    if kind is ScriptType.MULTISIG:
        info = multisig_info(spk)
        if info is None:
            return None
        m, keys = info
        if not 1 <= len(keys) <= MAX_STANDARD_MULTISIG_KEYS or not 1 <= m <= len(keys):
            return None
    return kind


def check_standard_tx(tx: Tx, config: PolicyConfig = PolicyConfig()) -> None:
    """Core `IsStandardTx`. Raises PolicyError. (PreChecks' `tx-size-small` is the pool's: it
    applies with -acceptnonstdtxn too.)"""
    if tx.version > TX_MAX_STANDARD_VERSION or tx.version < 1:
        raise PolicyError("version")
    weight = tx.weight
    if weight > MAX_STANDARD_TX_WEIGHT:
        raise PolicyError("tx-size", f"weight {weight} > {MAX_STANDARD_TX_WEIGHT}")
    for txin in tx.vin:
        sig = txin.script_sig
        n = len(sig)
        if n > MAX_STANDARD_SCRIPTSIG_SIZE:
            raise PolicyError("scriptsig-size")
        # Fast path: two direct pushes (the P2PKH shape) are push-only.
        a = sig[0] if n else 0
        if 0 < a < 0x4C and a + 1 < n:
            b = sig[a + 1]
            if 0 < b < 0x4C and a + b + 2 == n:
                continue
        if not is_push_only(sig):
            raise PolicyError("scriptsig-not-pushonly")
    datacarrier_left = config.max_datacarrier_bytes
    dust_fee = config.dust_relay_fee
    p2pkh_dust = dust_fee.fee(34 + _SPEND_INPUT_SIZE)
    for out in tx.vout:
        spk = out.script_pubkey
        if len(spk) == 25 and spk[:3] == _P2PKH_HEAD and spk[23:] == _P2PKH_TAIL:
            if out.value < p2pkh_dust:
                raise PolicyError("dust")
            continue
        kind = _standard_output_type(spk, config)
        if kind is None:
            raise PolicyError("scriptpubkey")
        if kind is ScriptType.NULLDATA:
            if len(spk) > datacarrier_left:
                raise PolicyError("datacarrier")
            datacarrier_left -= len(spk)
        elif kind is ScriptType.MULTISIG and not config.permit_bare_multisig:
            raise PolicyError("bare-multisig")
        elif out.value < dust_threshold(out, dust_fee):
            raise PolicyError("dust")


def check_inputs_standard(tx: Tx, coins: Sequence[Coin]) -> int:
    """Core `AreInputsStandard` (`ValidateInputsStandardness`): every spent output is standard
    and no unknown witness version, P2SH redeem scripts ≤ 15 sigops.

    Returns the P2SH sigop count (needed for the tx's sigop total).
    """
    p2sh_total = 0
    for txin, coin in zip(tx.vin, coins):
        spk = coin.script_pubkey
        if len(spk) == 25 and spk[:3] == _P2PKH_HEAD and spk[23:] == _P2PKH_TAIL:
            continue
        wtype = _witness_type(spk)
        if wtype is not None:
            if wtype == "nonstandard":
                raise PolicyError("bad-txns-nonstandard-inputs")
            if wtype == "unknown":
                raise PolicyError("bad-txns-nonstandard-inputs", "witness program is undefined")
            continue
        kind = classify(spk)
        if kind is ScriptType.NONSTANDARD or kind is ScriptType.NULLDATA:
            raise PolicyError("bad-txns-nonstandard-inputs")
        if kind is ScriptType.SCRIPTHASH:
            n = p2sh_sigop_count(txin.script_sig, spk)
            if n > MAX_P2SH_SIGOPS:
                raise PolicyError("bad-txns-nonstandard-inputs", f"p2sh redeem script has {n} sigops")
            p2sh_total += n
    return p2sh_total


def check_witness_standard(tx: Tx, coins: Sequence[Coin]) -> None:
    """Core `IsWitnessStandard` for an input with a witness: the spent script (the redeem script
    of a P2SH coin, the last push of its scriptSig) must be a witness program; a P2WSH witness
    script ≤ 3,600 bytes with ≤ 100 other items of ≤ 80 bytes each; a taproot spend (not
    P2SH-wrapped) carries no annex and, on the tapscript path, stack items of ≤ 80 bytes.
    Raises PolicyError("bad-witness-nonstandard")."""
    if tx.is_coinbase():
        return
    for txin, coin in zip(tx.vin, coins):
        stack = txin.witness
        if not stack:
            continue
        spk = coin.script_pubkey
        if witness_program(spk) == (1, PAY_TO_ANCHOR_PROGRAM):
            # Core IsWitnessStandard: a P2A spend carries no witness (third-party malleability)
            raise PolicyError("bad-witness-nonstandard")
        if is_p2sh(spk):
            evaluated: list[bytes] = []
            try:
                eval_script(evaluated, txin.script_sig, 0, None)
            except ScriptError:
                raise PolicyError("bad-witness-nonstandard") from None
            if not evaluated:
                raise PolicyError("bad-witness-nonstandard")
            spk = evaluated[-1]
        prog = witness_program(spk)
        if prog is None:
            raise PolicyError("bad-witness-nonstandard")
        version, program = prog
        if version == 0 and len(program) == 32:
            if len(stack[-1]) > MAX_STANDARD_P2WSH_SCRIPT_SIZE:
                raise PolicyError("bad-witness-nonstandard", "witness script too large")
            if len(stack) - 1 > MAX_STANDARD_P2WSH_STACK_ITEMS:
                raise PolicyError("bad-witness-nonstandard", "too many witness items")
            for item in stack[:-1]:
                if len(item) > MAX_STANDARD_P2WSH_STACK_ITEM_SIZE:
                    raise PolicyError("bad-witness-nonstandard", "witness item too large")
        if version == 1 and len(program) == 32 and not is_p2sh(coin.script_pubkey):
            # taproot: no annex (no semantics defined yet); a tapscript's stack items <= 80 bytes
            items = list(stack)
            if len(items) >= 2 and items[-1][:1] == b"\x50":
                raise PolicyError("bad-witness-nonstandard", "annex")
            if len(items) >= 2:
                control = items.pop()
                items.pop()                                   # the script
                if not control:
                    raise PolicyError("bad-witness-nonstandard", "empty control block")
                if control[0] & 0xFE == 0xC0 and any(len(i) > MAX_STANDARD_TAPSCRIPT_STACK_ITEM_SIZE
                                                      for i in items):
                    raise PolicyError("bad-witness-nonstandard", "tapscript stack item too large")
