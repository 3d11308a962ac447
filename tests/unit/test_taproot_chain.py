"""Taproot in the chain (BIP341/342): blocks with P2TR outputs spent by the key path and by a
tapscript leaf, and blocks whose taproot spends are invalid, delivered to a `ChainState` and,
through the `make_node` fixture, to Core's kernel (same verdicts, same tip after each block).
Core's GetBlockScriptFlags leaves TAPROOT on for every block, so a bad Schnorr signature fails
the block (`block-script-verify-flag-failed`) and marks it invalid."""

from __future__ import annotations

from tests.framework.blockbuilder import BlockBuilder, assert_accepted, assert_rejected
from tests.framework.taproot_spends import key, keypath_sig, script_sig
from tests.unit.test_chain_scenarios import build_base, make_node  # noqa: F401 (fixture)
from tinynode.chain.index import BlockStatus
from tinynode.consensus.errors import RejectReason as R
from tinynode.params import REGTEST
from tinynode.primitives.tx import OutPoint, Tx, TxIn, TxOut
from tinynode.script.taproot import taproot_tree, tapleaf_hash

INTERNAL = key(41)
LEAF_KEY = key(42)
#: one tapscript leaf: <x-only key> OP_CHECKSIG
LEAF = b"\x20" + LEAF_KEY.xonly_public_key + b"\xac"


def _p2tr(tree=None):
    info = taproot_tree(INTERNAL.xonly_public_key, tree)
    return info, info.script_pubkey


def _base(make_node):
    b = BlockBuilder(REGTEST)
    cs = make_node(REGTEST, b)
    build_base(b, cs, 101)
    return b, cs


def _fund(b: BlockBuilder, cs, spks: list[bytes], name: str) -> list[TxOut]:
    """Block `name`: one tx paying the next saved coinbase to one output per script."""
    u = b.get_spendable_output()
    each = (u.value - 10_000) // len(spks)
    tx = b.wallet.spend_many([u], [(s, each) for s in spks], fee=u.value - each * len(spks))
    b.next_block(name, txs=[tx], fees=u.value - each * len(spks))
    assert_accepted(cs, b[name], tip=b[name])
    return [TxOut(each, s) for s in spks], tx


def _spend(funding: Tx, outs: list[TxOut], to: bytes) -> Tx:
    vin = tuple(TxIn(OutPoint(funding.txid, i), b"", 0xFFFFFFFF) for i in range(len(outs)))
    return Tx(2, vin, (TxOut(sum(o.value for o in outs) - 5_000, to),), 0)


def _with_witnesses(tx: Tx, witnesses) -> Tx:
    vin = tuple(TxIn(i.prevout, i.script_sig, i.sequence, tuple(w)) for i, w in zip(tx.vin, witnesses))
    return Tx(tx.version, vin, tx.vout, tx.locktime)


def test_key_path_and_script_path_spends_connect(make_node):
    b, cs = _base(make_node)
    _, key_spk = _p2tr()
    leaf_info, leaf_spk = _p2tr((0xC0, LEAF))
    outs, funding = _fund(b, cs, [key_spk, leaf_spk], "f")
    spend = _spend(funding, outs, b.wallet.script_pubkey)
    lh = tapleaf_hash(0xC0, LEAF)
    witnesses = [
        (keypath_sig(INTERNAL, spend, 0, outs, 0),),                       # SIGHASH_DEFAULT
        (script_sig(LEAF_KEY, spend, 1, outs, lh, 0x01), LEAF, leaf_info.control_blocks[0]),
    ]
    spend = _with_witnesses(spend, witnesses)
    blk = b.next_block("t", txs=[spend], fees=5_000)
    assert_accepted(cs, blk, tip=blk)
    assert cs.get_block(blk.hash).txs[1].wtxid == spend.wtxid


def test_bad_schnorr_signature_fails_the_block(make_node):
    b, cs = _base(make_node)
    _, key_spk = _p2tr()
    outs, funding = _fund(b, cs, [key_spk], "f")
    spend = _spend(funding, outs, b.wallet.script_pubkey)
    sig = bytearray(keypath_sig(INTERNAL, spend, 0, outs, 0))
    sig[5] ^= 1
    bad = _with_witnesses(spend, [(bytes(sig),)])
    b.next_block("bad", txs=[bad], fees=5_000)
    assert_rejected(cs, b["bad"], R.BLOCK_SCRIPT_VERIFY_FLAG_FAILED, tip=b["f"])
    assert cs.get_entry(b["bad"].hash).status & BlockStatus.FAILED


def test_script_path_with_a_wrong_control_block_fails(make_node):
    b, cs = _base(make_node)
    leaf_info, leaf_spk = _p2tr((0xC0, LEAF))
    outs, funding = _fund(b, cs, [leaf_spk], "f")
    spend = _spend(funding, outs, b.wallet.script_pubkey)
    lh = tapleaf_hash(0xC0, LEAF)
    control = bytearray(leaf_info.control_blocks[0])
    control[0] ^= 1                                       # the output key's parity, flipped
    bad = _with_witnesses(spend, [(script_sig(LEAF_KEY, spend, 0, outs, lh), LEAF, bytes(control))])
    b.next_block("bad", txs=[bad], fees=5_000)
    assert_rejected(cs, b["bad"], R.BLOCK_SCRIPT_VERIFY_FLAG_FAILED, tip=b["f"])
