"""Taproot in the mempool (Core policy/policy.cpp IsWitnessStandard): a key path spend and a
tapscript spend are accepted; an annex, or a tapscript stack item over 80 bytes, is
`bad-witness-nonstandard` (valid by consensus, refused by policy)."""

from __future__ import annotations

from tests.framework.taproot_spends import key, keypath_sig, script_sig
from tests.unit.test_mempool import reject, setup
from tests.unit.test_mempool_helpers import NOW
from tinynode.primitives.coin import Coin
from tinynode.primitives.tx import COIN, OutPoint, Tx, TxIn, TxOut
from tinynode.script.taproot import tapleaf_hash, taproot_tree

INTERNAL = key(51)
LEAF_KEY = key(52)
#: leaf A: <key> OP_CHECKSIG; leaf B: OP_DROP <key> OP_CHECKSIG (takes one extra stack item)
LEAF_A = b"\x20" + LEAF_KEY.xonly_public_key + b"\xac"
LEAF_B = b"\x75\x20" + LEAF_KEY.xonly_public_key + b"\xac"
TREE = [(0xC0, LEAF_A), (0xC0, LEAF_B)]
INFO = taproot_tree(INTERNAL.xonly_public_key, TREE)


def _funded(chain, n: int) -> tuple[Tx, list[TxOut]]:
    op = OutPoint(bytes([0x70 + n]) * 32, 0)
    chain.coins[op] = Coin(COIN, INFO.script_pubkey, 5, False)
    spent = [TxOut(COIN, INFO.script_pubkey)]
    tx = Tx(2, (TxIn(op, b"", 0xFFFFFFFD),), (TxOut(COIN - 2_000, b"\x00\x14" + bytes(20)),), 0)
    return tx, spent


def _with(tx: Tx, witness) -> Tx:
    i = tx.vin[0]
    return Tx(tx.version, (TxIn(i.prevout, b"", i.sequence, tuple(witness)),), tx.vout, tx.locktime)


def test_key_path_spend_accepted():
    chain, pool, _, _ = setup()
    tx, spent = _funded(chain, 1)
    sig = keypath_sig(INTERNAL, tx, 0, spent, 0, merkle_root=INFO.merkle_root)
    e = pool.accept(_with(tx, (sig,)), NOW)
    assert e.fee == 2_000


def test_annex_is_nonstandard():
    chain, pool, _, _ = setup()
    tx, spent = _funded(chain, 2)
    annex = b"\x50\x01"
    sig = keypath_sig(INTERNAL, tx, 0, spent, 0, merkle_root=INFO.merkle_root, annex=annex)
    reject(pool, _with(tx, (sig, annex)), "bad-witness-nonstandard")


def test_tapscript_spend_accepted_and_an_81_byte_item_refused():
    chain, pool, _, _ = setup()
    tx, spent = _funded(chain, 3)
    lh = tapleaf_hash(0xC0, LEAF_B)
    control = INFO.control_blocks[1]
    for extra, ok in ((b"\x01" * 80, True), (b"\x01" * 81, False)):
        sig = script_sig(LEAF_KEY, tx, 0, spent, lh)
        spend = _with(tx, (sig, extra, LEAF_B, control))     # stack: sig, extra (dropped)
        if ok:
            assert pool.test_accept(spend, NOW).fee == 2_000
        else:
            reject(pool, spend, "bad-witness-nonstandard")
