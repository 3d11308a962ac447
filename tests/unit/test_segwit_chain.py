"""Segwit v0 in the chain (BIP141/143/147), in the style of Core's feature_segwit.py and
feature_block.py: named blocks with P2WPKH / P2WSH outputs and spends and the coinbase witness
commitment, every reject reason of `CheckWitnessMalleation` and the BIP141 limits, delivered to
a `ChainState` and, through the `make_node` fixture, to Core's kernel (same verdicts, same tip).
"""

from __future__ import annotations

from dataclasses import replace

from tests.framework.blockbuilder import (
    COMMITMENT_HEADER, BlockBuilder, add_witness_commitment, assert_accepted, assert_rejected,
)
from tests.framework.miniwallet import P2WPKHKey, P2WSHScript, Utxo, push_data
from tests.unit.test_chain_scenarios import build_base, make_node  # noqa: F401 (fixture)
from tinynode.chain.index import BlockStatus
from tinynode.consensus.errors import RejectReason as R
from tinynode.params import REGTEST
from tinynode.primitives.block import Block
from tinynode.primitives.tx import OutPoint, Tx

WPKH = P2WPKHKey.make(7)
WSH = P2WSHScript.checksig(8)
OP_TRUE_WSH = P2WSHScript.make(b"\x51")          # witness script OP_TRUE, witness [script]


def _fund(b: BlockBuilder, owners, value_each: int | None = None, fee: int = 1000) -> tuple[Tx, list[Utxo]]:
    """A tx spending the next saved coinbase into one output per owner."""
    u = b.get_spendable_output()
    each = value_each or (u.value - fee) // len(owners)
    tx = b.wallet.spend_many([u], [(o.script_pubkey, each) for o in owners], fee=u.value - each * len(owners))
    return tx, [Utxo(OutPoint(tx.txid, i), each, o) for i, o in enumerate(owners)]


def _base(make_node, n: int = 101):
    b = BlockBuilder(REGTEST)
    cs = make_node(REGTEST, b)
    build_base(b, cs, n)
    return b, cs


def _witness_spend_block(b: BlockBuilder, cs, name: str):
    """Fund P2WPKH + P2WSH outputs in `name`1, spend both (to P2PKH) in `name`2."""
    fund, (u1, u2) = _fund(b, [WPKH, WSH])
    b.next_block(name + "1", txs=[fund], fees=1000)
    assert_accepted(cs, b[name + "1"], tip=b[name + "1"])
    spend = b.wallet.spend_many([u1, u2], [(b.wallet.script_pubkey, u1.value + u2.value - 2000)], fee=2000)
    assert spend.has_witness() and spend.txid != spend.wtxid
    return spend


def test_witness_spends_in_a_block_with_commitment(make_node):
    b, cs = _base(make_node)
    spend = _witness_spend_block(b, cs, "w")
    blk = b.next_block("w2", txs=[spend], fees=2000)
    cb = blk.txs[0]
    assert cb.vout[-1].script_pubkey[:6] == COMMITMENT_HEADER and cb.vin[0].witness == (bytes(32),)
    assert blk.weight < 4 * blk.size                      # the witness bytes count once
    assert_accepted(cs, blk, tip=blk)
    # stored with its witnesses: the block read back is byte-identical, the spend's wtxid kept
    again = cs.get_block(blk.hash)
    assert again.serialize() == blk.serialize()
    assert again.txs[1].wtxid == spend.wtxid
    assert cs.get_coin(OutPoint(spend.txid, 0)).value == spend.vout[0].value


def test_commitment_on_a_block_without_witness_txs(make_node):
    """A commitment is allowed with no witness tx (the miner always adds one)."""
    b, cs = _base(make_node, 1)
    blk = b.next_block("e", witness_commitment=True)
    assert_accepted(cs, blk, tip=blk)


def test_wrong_amount_is_a_script_failure(make_node):
    """BIP143 signs the spent amount: a signature over another amount fails the block."""
    b, cs = _base(make_node)
    fund, (u,) = _fund(b, [WPKH])
    b.next_block("f", txs=[fund], fees=1000)
    assert_accepted(cs, b["f"])
    bad = b.wallet.spend_many([replace(u, value=u.value + 1)], [(b.wallet.script_pubkey, u.value - 1000)],
                              fee=1001)
    b.next_block("bad", txs=[bad], fees=1000)
    res = assert_rejected(cs, b["bad"], R.BLOCK_SCRIPT_VERIFY_FLAG_FAILED, tip=b["f"])
    assert res.error.detail == "EVAL_FALSE"
    assert cs.get_entry(b["bad"].hash).status & BlockStatus.FAILED


def test_unexpected_witness_is_mutated_then_the_stripped_block_is_accepted(make_node):
    """A witness in a block without commitment: `unexpected-witness`, not marked invalid; the
    same block (same hash) without the witness data is then accepted (Core BLOCK_MUTATED)."""
    b, cs = _base(make_node)
    fund, (u,) = _fund(b, [OP_TRUE_WSH])
    b.next_block("f", txs=[fund], fees=1000)
    assert_accepted(cs, b["f"])
    # a P2PKH spend carrying a junk witness: the txid (and so the header) ignores it
    spend = b.create_spend_tx(b.get_spendable_output())
    junk = replace(spend, vin=(replace(spend.vin[0], witness=(b"\x01",)),))
    assert junk.txid == spend.txid
    good = b.next_block("g", txs=[spend], fees=1000, witness_commitment=False)
    mutated = Block(good.header, (good.txs[0], junk))
    assert mutated.hash == good.hash
    assert_rejected(cs, mutated, R.UNEXPECTED_WITNESS, mutated=True, tip=b["f"])
    assert not (cs.get_entry(good.hash) and cs.get_entry(good.hash).failed)
    assert_accepted(cs, good, tip=good)


def test_bad_witness_nonce_size_and_merkle_match_are_mutated(make_node):
    b, cs = _base(make_node)
    spend = _witness_spend_block(b, cs, "w")
    good = b.next_block("w2", txs=[spend], fees=2000)
    cb = good.txs[0]
    # reserved value of 31 bytes, or two items: bad-witness-nonce-size
    for wit in ((bytes(31),), (bytes(32), b"")):
        cb2 = replace(cb, vin=(replace(cb.vin[0], witness=wit),))
        m = Block(good.header, (cb2, *good.txs[1:]))
        assert m.hash == good.hash
        assert_rejected(cs, m, R.BAD_WITNESS_NONCE_SIZE, mutated=True, tip=b["w1"])
    # no coinbase witness at all, the commitment present: also the nonce size
    cb3 = replace(cb, vin=(replace(cb.vin[0], witness=()),))
    assert_rejected(cs, Block(good.header, (cb3, *good.txs[1:])), R.BAD_WITNESS_NONCE_SIZE,
                    mutated=True, tip=b["w1"])
    # another reserved value: the commitment no longer matches
    cb4 = replace(cb, vin=(replace(cb.vin[0], witness=(b"\x01" * 32,)),))
    assert_rejected(cs, Block(good.header, (cb4, *good.txs[1:])), R.BAD_WITNESS_MERKLE_MATCH,
                    mutated=True, tip=b["w1"])
    # a malleated witness in the spend (another signature byte): merkle match again
    sp = good.txs[1]
    w0 = sp.vin[0].witness
    bad_sp = replace(sp, vin=(replace(sp.vin[0], witness=(w0[0][:-1] + b"\x02", w0[1])), *sp.vin[1:]))
    assert bad_sp.txid == sp.txid
    assert_rejected(cs, Block(good.header, (cb, bad_sp)), R.BAD_WITNESS_MERKLE_MATCH,
                    mutated=True, tip=b["w1"])
    # none of them marked the hash: the genuine block connects
    assert_accepted(cs, good, tip=good)


def test_last_commitment_output_counts(make_node):
    """Core GetWitnessCommitmentIndex: with two commitment outputs, the last one is checked."""
    b, cs = _base(make_node)
    spend = _witness_spend_block(b, cs, "w")
    blk = b.next_block("w2", txs=[spend], fees=2000)
    real = blk.txs[0].vout[-1]
    junk = replace(real, script_pubkey=COMMITMENT_HEADER + b"\x00" * 32)

    def commit_last_wrong(block: Block):
        cb = block.txs[0]
        return [replace(cb, vout=cb.vout[:-1] + (real, junk)), *block.txs[1:]]

    bad = b.update_block("w2", commit_last_wrong)
    assert_rejected(cs, bad, R.BAD_WITNESS_MERKLE_MATCH, mutated=True, tip=b["w1"])

    def commit_last_right(block: Block):
        cb = block.txs[0]
        return [replace(cb, vout=cb.vout[:-2] + (junk, real)), *block.txs[1:]]

    ok = b.update_block("w2", commit_last_right)
    assert_accepted(cs, ok, tip=ok)


def _csize(n: int) -> int:
    return 1 if n < 253 else 3 if n <= 0xFFFF else 5


def _witness_items_adding(room: int) -> tuple[bytes, ...]:
    """Items that, put before the script of a one-item witness ([script]), make it exactly
    `room` bytes longer: n items of 500 bytes (503 serialized) and one of L, the item count
    growing from 1 byte to 3."""
    for n in range(room // 503, room // 503 - 3, -1):
        rest = room - n * 503 - 2                 # the last item with its length prefix
        for last in (rest - 1, rest - 3):
            if last >= 0 and last + _csize(last) == rest:
                return tuple(b"\x00" * 500 for _ in range(n)) + (b"\x00" * last,)
    raise AssertionError(room)


def test_block_weight_limit(make_node):
    """4,000,001 weight with a valid commitment: `bad-blk-weight`, a consensus failure (the
    committed witness is the block's), while the stripped size is far below the length limit."""
    b, cs = _base(make_node)
    fund, (u,) = _fund(b, [OP_TRUE_WSH])
    b.next_block("f", txs=[fund], fees=1000)
    assert_accepted(cs, b["f"])
    spend = b.wallet.spend_many([u], [(b.wallet.script_pubkey, u.value - 1000)], fee=1000)
    blk = b.next_block("heavy", txs=[spend], fees=1000)
    base_weight = blk.weight
    room = REGTEST.max_block_weight - base_weight + 1      # witness bytes to add (one per weight)
    items = _witness_items_adding(room)

    def heavy(block: Block):
        s = block.txs[1]
        s2 = replace(s, vin=(replace(s.vin[0], witness=items + (OP_TRUE_WSH.witness_script,)),))
        return add_witness_commitment([block.txs[0], s2])

    blk = b.update_block("heavy", heavy)
    assert blk.weight == REGTEST.max_block_weight + 1, blk.weight
    assert blk.base_size * 4 < REGTEST.max_block_weight
    assert_rejected(cs, blk, R.BAD_BLK_WEIGHT, mutated=False, tip=b["f"])
    assert cs.get_entry(blk.hash).status & BlockStatus.FAILED


def _unexecuted_sigops(n_multisig: int, n_checksig: int) -> P2WSHScript:
    """Witness script OP_0 OP_IF <CHECKMULTISIG × n> <CHECKSIG × m> OP_ENDIF OP_1: nothing
    executed, every sigop counted (CHECKMULTISIG after a non-number: 20); ≤ 201 opcodes."""
    assert n_multisig + n_checksig + 2 <= 201
    return P2WSHScript.make(b"\x00\x63" + b"\xae" * n_multisig + b"\xac" * n_checksig + b"\x68\x51")


def test_sigop_cost_limit_with_witness_sigops(make_node):
    """P2WSH witness scripts count their sigops accurately (× 1) toward 80,000: exactly the
    limit is valid, one more is `bad-blk-sigops` (ConnectBlock, GetTransactionSigOpCost).

    Cost: the coinbase's P2PKH output (4) + the spend's P2PKH output (4) + 20 inputs of
    199 × 20 + one of 19 × 20 + 12 (+ 1 over the limit)."""
    b, cs = _base(make_node)
    big = _unexecuted_sigops(199, 0)
    at_limit, over = _unexecuted_sigops(19, 12), _unexecuted_sigops(19, 13)
    assert 8 + 20 * 199 * 20 + 19 * 20 + 12 == 80_000
    u = b.get_spendable_output()
    owners = [big] * 20 + [at_limit, over]
    each = (u.value - 1000) // len(owners)
    fund = b.wallet.spend_many([u], [(o.script_pubkey, each) for o in owners])
    utxos = [Utxo(OutPoint(fund.txid, i), each, o) for i, o in enumerate(owners)]
    b.next_block("f", txs=[fund], fees=1000)
    assert_accepted(cs, b["f"])
    value = 21 * each - 1000
    s_over = b.wallet.spend_many(utxos[:20] + [utxos[21]], [(b.wallet.script_pubkey, value)])
    b.next_block("over", txs=[s_over], fees=1000)
    assert_rejected(cs, b["over"], R.BAD_BLK_SIGOPS, tip=b["f"])
    b.set_tip("f")
    s_ok = b.wallet.spend_many(utxos[:21], [(b.wallet.script_pubkey, value)])
    b.next_block("ok", txs=[s_ok], fees=1000)
    assert_accepted(cs, b["ok"], tip=b["ok"])


def test_p2wpkh_spend_signed_for_another_key_fails(make_node):
    """The witness pubkey does not hash to the P2WPKH program: the implied P2PKH script fails
    at OP_EQUALVERIFY."""
    b, cs = _base(make_node)
    fund, (u,) = _fund(b, [WPKH])
    b.next_block("f", txs=[fund], fees=1000)
    assert_accepted(cs, b["f"])
    other = P2WPKHKey.make(9)
    bad = b.wallet.spend_many([replace(u, owner=other)], [(b.wallet.script_pubkey, u.value - 1000)], fee=1000)
    b.next_block("bad", txs=[bad], fees=1000)
    res = assert_rejected(cs, b["bad"], R.BLOCK_SCRIPT_VERIFY_FLAG_FAILED, tip=b["f"])
    assert res.error.detail == "EQUALVERIFY"


def test_template_commits_and_connects(make_node):
    """The block assembler's coinbase commitment (GenerateCoinbaseCommitment) is accepted by
    tinynode and Core, with a witness tx from the mempool in it."""
    from tinynode.mempool.pool import Mempool
    from tinynode.mining.template import build_template
    from tinynode.mining.worker import grind

    b, cs = _base(make_node)
    spend = _witness_spend_block(b, cs, "w")
    pool = Mempool(REGTEST, cs)
    pool.accept(spend, b.now)
    t = build_template(cs, pool, b.wallet.script_pubkey, b["w1"].header.time + 600)
    assert [tx.txid for tx in t.block.txs[1:]] == [spend.txid]
    cb = t.coinbase
    assert cb.vout[-1].script_pubkey[:6] == COMMITMENT_HEADER and cb.vin[0].witness == (bytes(32),)
    blk = t.solved(grind(t.header76, t.target, 0, 1_000_000))
    assert_accepted(cs, blk, tip=blk)
    b.add_block("mined", blk)


def test_witness_mutated_orphan_not_stored():
    """A block whose parent is unknown and whose witness does not match its commitment is
    refused at once (Core IsBlockMutated in the net layer), so the genuine block, arriving
    later, is not taken for a duplicate. (No kernel here: the oracle's orphan pool cannot
    judge a block before its parent.)"""
    from tinynode.chain.chainstate import ChainState
    from tinynode.storage.memory import MemoryChainStore

    b = BlockBuilder(REGTEST)
    cs = ChainState(REGTEST, MemoryChainStore(), now=lambda: b.now)
    try:
        p1 = b.next_block("p1")
        good = b.next_block("p2", witness_commitment=True)
        cb = good.txs[0]
        bad = Block(good.header, (replace(cb, vin=(replace(cb.vin[0], witness=(b"\x01" * 32,)),)),))
        res = cs.process_block(bad)
        assert res.error.reason == R.BAD_WITNESS_MERKLE_MATCH and res.error.mutated
        assert cs.unconnected_count == 0
        assert cs.process_block(good).status == "orphan"
        assert_accepted(cs, p1, tip=good)
    finally:
        cs.close()
