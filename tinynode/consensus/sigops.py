"""BIP141 signature-operation cost (Core `consensus/tx_verify.cpp` `GetTransactionSigOpCost`,
`script/interpreter.cpp` `CountWitnessSigOps`).

Cost = legacy sigops × 4 + P2SH sigops × 4 (with the P2SH flag) + witness sigops (with the
WITNESS flag), against the block limit MAX_BLOCK_SIGOPS_COST = 80,000 (ConnectBlock in
`chain/chainstate.py`, the block assembler, the mempool).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..primitives.coin import Coin
from ..primitives.tx import WITNESS_SCALE_FACTOR, Tx
from ..script.flags import ScriptFlags
from ..script.interpreter import witness_program
from ..script.script import get_op, is_p2sh, is_push_only, legacy_sigop_count
from .tx_checks import legacy_sigops, p2sh_sigops

_WITNESS = int(ScriptFlags.WITNESS)

__all__ = ["MAX_BLOCK_SIGOPS_COST", "witness_sigops", "count_witness_sigops", "transaction_sigop_cost",
           "inputs_witness_sigops"]

MAX_BLOCK_SIGOPS_COST = 80_000


def witness_sigops(version: int, program: bytes, witness: Sequence[bytes]) -> int:
    """Core `WitnessSigOps`: P2WPKH counts 1; P2WSH the accurate count of its witness script
    (the last witness item; 0 with an empty witness); other versions 0."""
    if version == 0:
        if len(program) == 20:
            return 1
        if len(program) == 32 and witness:
            return legacy_sigop_count(witness[-1], accurate=True)
    return 0


def count_witness_sigops(script_sig: bytes, script_pubkey: bytes, witness: Sequence[bytes],
                         flags: int) -> int:
    """Core `CountWitnessSigOps`: the witness sigops of one input, native or P2SH-wrapped (the
    last push of a push-only scriptSig is the redeem script); 0 without the WITNESS flag."""
    if not int(flags) & ScriptFlags.WITNESS:
        return 0
    prog = witness_program(script_pubkey)
    if prog is not None:
        return witness_sigops(prog[0], prog[1], witness)
    if is_p2sh(script_pubkey) and is_push_only(script_sig):
        last = b""
        pc = 0
        while pc < len(script_sig):
            r = get_op(script_sig, pc)
            if r is None:  # a truncated push: Core's GetOp fails and leaves no data
                last = b""
                break
            _, data, pc = r
            last = data if data is not None else b""
        prog = witness_program(last)
        if prog is not None:
            return witness_sigops(prog[0], prog[1], witness)
    return 0


def transaction_sigop_cost(tx: Tx, coins: Sequence[Coin], flags: int) -> int:
    """Core `GetTransactionSigOpCost`: `coins[i]` is the coin input i spends (ignored for a
    coinbase, whose cost is its legacy sigops × 4)."""
    cost = legacy_sigops(tx) * WITNESS_SCALE_FACTOR
    if tx.is_coinbase():
        return cost
    flags = int(flags)
    if flags & ScriptFlags.P2SH:
        cost += p2sh_sigops(tx, coins) * WITNESS_SCALE_FACTOR
    for txin, coin in zip(tx.vin, coins):
        cost += count_witness_sigops(txin.script_sig, coin.script_pubkey, txin.witness, flags)
    return cost


def inputs_witness_sigops(tx: Tx, coins: Sequence[Coin], flags: int) -> int:
    """The witness part of `transaction_sigop_cost` (Core `CountWitnessSigOps` summed over the
    inputs), skipping at once the coins that can be neither a witness program nor P2SH (a
    witness program starts OP_0 or OP_1..OP_16; P2SH is 23 bytes from OP_HASH160)."""
    if not int(flags) & _WITNESS:    # plain ints: IntFlag's `&` is a Python-level call
        return 0
    n = 0
    for txin, coin in zip(tx.vin, coins):
        spk = coin.script_pubkey
        if not spk:
            continue
        first = spk[0]
        if first == 0 or 0x51 <= first <= 0x60 or first == 0xA9:
            n += count_witness_sigops(txin.script_sig, spk, txin.witness, flags)
    return n
