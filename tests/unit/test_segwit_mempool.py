"""Segwit v0 in the mempool (Core validation.cpp MemPoolAccept, policy/policy.cpp): BIP143
spends verified with the spent amounts, BIP141 weight and virtual sizes, witness dust,
IsWitnessStandard, unknown witness versions."""

from __future__ import annotations

from dataclasses import replace

from tests.framework.miniwallet import P2WPKHKey, P2WSHScript, Utxo
from tests.unit.test_mempool import reject, setup
from tests.unit.test_mempool_helpers import NOW
from tinynode.mempool.policy import dust_threshold, virtual_size
from tinynode.primitives.coin import Coin
from tinynode.primitives.tx import COIN, OutPoint, Tx, TxIn, TxOut
from tinynode.script.interpreter import script_error_string

WPKH = P2WPKHKey.make(7)


def _coin(chain, owner, n: int, value: int = COIN) -> Utxo:
    """A confirmed coin paying `owner` (height 5, not a coinbase)."""
    op = OutPoint(bytes([0x50 + n]) * 32, 0)
    chain.coins[op] = Coin(value, owner.script_pubkey, 5, False)
    return Utxo(op, value, owner, 5)


def test_p2wpkh_spend_accepted_with_vsize_fees():
    chain, pool, w, _ = setup()
    u = _coin(chain, WPKH, 1)
    tx = w.spend_many([u], [(w.script_pubkey, u.value - 1000)])
    assert tx.has_witness() and tx.vsize < tx.size
    e = pool.accept(tx, NOW)
    assert e.fee == 1000
    assert e.size == tx.vsize == virtual_size(tx.weight, e.sigops)
    assert e.sigops == 1 * 4 + 1                   # P2PKH output (legacy × 4) + the P2WPKH input


def test_p2wpkh_spend_with_a_signature_over_another_amount_rejected():
    """BIP143 signs the amount: a signature for amount + 1 fails; with the standard flags
    NULLFAIL reports it, and without them the input still fails (consensus-invalid)."""
    chain, pool, w, _ = setup()
    u = _coin(chain, WPKH, 1)
    tx = w.spend_many([replace(u, value=u.value + 1)], [(w.script_pubkey, u.value - 1000)])
    err = reject(pool, tx, f"mempool-script-verify-flag-failed ({script_error_string('NULLFAIL')})")
    assert err.consensus is True


def test_tx_size_by_weight():
    """Core MAX_STANDARD_TX_WEIGHT 400,000: the witness counts once, the rest four times. A tx
    of more than 100,000 bytes, most of them witness, is standard; 400,001+ weight is not."""
    chain, pool, w, _ = setup()
    ws = P2WSHScript.make(b"\x6d" * 50 + b"\x51", stack=(b"\x01" * 80,) * 100)   # 50 2DROPs, OP_TRUE
    coins = [_coin(chain, ws, 2 + i, COIN) for i in range(13)]
    heavy = w.spend_many(coins, [(w.script_pubkey, 13 * COIN - 100_000)])
    assert heavy.size > 100_000 and heavy.weight <= 400_000
    assert pool.accept(heavy, NOW).size == heavy.vsize
    chain2, pool2, w2, (u2, *_) = setup()
    wide = w2.spend_many([u2], [(w2.script_pubkey, u2.value - 4_000_000)]
                         + [(WPKH.script_pubkey, 1000)] * 3230)
    assert wide.weight > 400_000 and not wide.has_witness()
    err = reject(pool2, wide, "tx-size")
    assert str(wide.weight) in err.detail


def test_dust_for_witness_outputs():
    """Core GetDustThreshold: a witness program spends for (size + 67) vbytes, so at 3 sat/vB
    P2WPKH dust is below 294 sat and P2WSH below 330 (P2PKH: 546)."""
    p2wpkh = TxOut(0, WPKH.script_pubkey)
    p2wsh = TxOut(0, P2WSHScript.make(b"\x51").script_pubkey)
    assert dust_threshold(p2wpkh) == 294 and dust_threshold(p2wsh) == 330
    chain, pool, w, (u, *_) = setup()
    dusty = w.spend_many([u], [(w.script_pubkey, u.value - 10_000), (WPKH.script_pubkey, 293)])
    reject(pool, dusty, "dust")
    fine = w.spend_many([u], [(w.script_pubkey, u.value - 10_000), (WPKH.script_pubkey, 294)])
    assert pool.accept(fine, NOW).fee == 10_000 - 294


def _script_of_size(n: int) -> bytes:
    """A valid witness script of exactly `n` bytes: 75-byte pushes each dropped, a shorter
    dropped push, OP_1 (few opcodes, so OP_COUNT never trips)."""
    body = b""
    while n - 1 - len(body) >= 77 + 3:
        body += b"\x4b" + b"\x00" * 75 + b"\x75"
    rest = n - 1 - len(body) - 2
    body += bytes((rest,)) + b"\x00" * rest + b"\x75"
    script = body + b"\x51"
    assert len(script) == n
    return script


def test_witness_standardness():
    """IsWitnessStandard: P2WSH witness script ≤ 3,600 bytes, ≤ 100 items of ≤ 80 bytes
    (`bad-witness-nonstandard`); a witness on a non-witness input too. Spending an unknown
    witness version is `bad-txns-nonstandard-inputs`; a v0 program of 20 or 32 bytes only."""
    chain, pool, w, (u, *_) = setup()
    cases = [
        P2WSHScript.make(b"\x6d" * 50 + b"\x75" + b"\x51", stack=(b"\x01" * 80,) * 101),   # 101 items
        P2WSHScript.make(b"\x75\x51", stack=(b"\x01" * 81,)),                              # 81-byte item
        P2WSHScript.make(_script_of_size(3601)),
    ]
    for n, ws in enumerate(cases):
        c = _coin(chain, ws, 10 + n)
        tx = w.spend_many([c], [(w.script_pubkey, c.value - 100_000)])
        reject(pool, tx, "bad-witness-nonstandard")
    # the limits themselves are fine
    ws = P2WSHScript.make(_script_of_size(3600))
    c = _coin(chain, ws, 20)
    assert pool.accept(w.spend_many([c], [(w.script_pubkey, c.value - 100_000)]), NOW).fee == 100_000
    # a witness on a P2PKH input
    tx = w.create_spend(u, fee=1000)
    junk = replace(tx, vin=(replace(tx.vin[0], witness=(b"\x01",)),))
    reject(pool, junk, "bad-witness-nonstandard")
    # unknown witness version (v2) and a 25-byte v0 program
    for n, spk in enumerate((b"\x52\x20" + bytes(32), b"\x00\x19" + bytes(25))):
        op = OutPoint(bytes([0x70 + n]) * 32, 0)
        chain.coins[op] = Coin(COIN, spk, 5, False)
        spend = Tx(2, (TxIn(op, b""),), (TxOut(COIN - 10_000, w.script_pubkey),))
        reject(pool, spend, "bad-txns-nonstandard-inputs")
    # paying to them: v2 is a standard output (WITNESS_UNKNOWN), the 25-byte v0 program is not
    ok = w.spend_many([_coin(chain, WPKH, 30)], [(w.script_pubkey, COIN - 10_000 - 1000),
                                                  (b"\x52\x20" + bytes(32), 1000)])
    assert pool.accept(ok, NOW).fee == 10_000
    bad = w.spend_many([_coin(chain, WPKH, 31)], [(w.script_pubkey, COIN - 10_000 - 1000),
                                                   (b"\x00\x19" + bytes(25), 1000)])
    reject(pool, bad, "scriptpubkey")


def test_witness_stripped_is_core_tx_witness_stripped():
    """Core PolicyScriptChecks: a P2WSH spend sent without its witness fails ("Witness program
    was passed an empty witness") and is TX_WITNESS_STRIPPED (`witness_stripped`): the scripts
    pass without WITNESS, so only the witness is missing. The same spend with a wrong witness
    has a witness, so it is not."""
    chain, pool, w, _ = setup()
    ws = P2WSHScript.make(b"\x51")                       # OP_TRUE witness script
    c = _coin(chain, ws, 3)
    good = w.spend_many([c], [(w.script_pubkey, c.value - 1000)])
    bare = replace(good, vin=(replace(good.vin[0], witness=()),))
    err = reject(pool, bare, "mempool-script-verify-flag-failed (Witness program was passed an empty witness)")
    assert err.witness_stripped is True
    wrong = replace(good, vin=(replace(good.vin[0], witness=(b"\x52",)),))   # another script
    err = reject(pool, wrong, "mempool-script-verify-flag-failed (Witness program hash mismatch)")
    assert err.witness_stripped is False
