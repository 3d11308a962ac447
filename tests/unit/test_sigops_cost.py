"""BIP141 sigop cost (Core GetTransactionSigOpCost / CountWitnessSigOps)."""

import hashlib

from tinynode.consensus.sigops import (
    MAX_BLOCK_SIGOPS_COST, count_witness_sigops, transaction_sigop_cost, witness_sigops,
)
from tinynode.primitives.coin import Coin
from tinynode.primitives.hashes import hash160
from tinynode.primitives.tx import NULL_OUTPOINT, OutPoint, Tx, TxIn, TxOut
from tinynode.script.flags import MANDATORY_FLAGS, ScriptFlags
from tinynode.script.script import core_push

KEY = b"\x02" + bytes(32)
MULTISIG_2_OF_3 = b"\x52" + (b"\x21" + KEY) * 3 + b"\x53\xae"
P2WSH = b"\x00\x20" + hashlib.sha256(MULTISIG_2_OF_3).digest()
P2WPKH = b"\x00\x14" + bytes(20)
P2PKH = b"\x76\xa9\x14" + bytes(20) + b"\x88\xac"
WITNESS_MS = (b"", b"\x30" * 71, b"\x30" * 71, MULTISIG_2_OF_3)


def _coin(spk):
    return Coin(1000, spk, 1, False)


def test_witness_sigops_per_program():
    assert witness_sigops(0, bytes(20), ()) == 1
    assert witness_sigops(0, bytes(32), WITNESS_MS) == 3          # accurate: OP_3 keys
    assert witness_sigops(0, bytes(32), ()) == 0                  # empty witness
    assert witness_sigops(1, bytes(32), (b"\xac",)) == 0          # future versions count 0
    assert MAX_BLOCK_SIGOPS_COST == 80_000


def test_count_witness_sigops_native_wrapped_and_flags():
    w = ScriptFlags.P2SH | ScriptFlags.WITNESS
    assert count_witness_sigops(b"", P2WPKH, (b"s", KEY), w) == 1
    assert count_witness_sigops(b"", P2WSH, WITNESS_MS, w) == 3
    assert count_witness_sigops(b"", P2WSH, WITNESS_MS, ScriptFlags.P2SH) == 0   # no WITNESS flag
    p2sh = b"\xa9\x14" + hash160(P2WPKH) + b"\x87"
    assert count_witness_sigops(core_push(P2WPKH), p2sh, (b"s", KEY), w) == 1
    p2sh_wsh = b"\xa9\x14" + hash160(P2WSH) + b"\x87"
    assert count_witness_sigops(core_push(P2WSH), p2sh_wsh, WITNESS_MS, w) == 3
    assert count_witness_sigops(b"\x61" + core_push(P2WSH), p2sh_wsh, WITNESS_MS, w) == 0  # not push-only
    assert count_witness_sigops(core_push(P2PKH), P2PKH, (), w) == 0


def test_transaction_sigop_cost():
    tx = Tx(2, (TxIn(OutPoint(bytes(32), 0), b"", witness=WITNESS_MS),
                TxIn(OutPoint(bytes(32), 1), b"", witness=(b"s", KEY))),
            (TxOut(1, P2PKH), TxOut(1, b"\x51\xae")))                 # 1 + 20 legacy sigops
    coins = [_coin(P2WSH), _coin(P2WPKH)]
    assert transaction_sigop_cost(tx, coins, MANDATORY_FLAGS) == 21 * 4 + 3 + 1
    assert transaction_sigop_cost(tx, coins, ScriptFlags.P2SH) == 21 * 4
    coinbase = Tx(1, (TxIn(NULL_OUTPOINT, b"\x01\x01"),), (TxOut(50, P2PKH),))
    assert transaction_sigop_cost(coinbase, [], MANDATORY_FLAGS) == 4
