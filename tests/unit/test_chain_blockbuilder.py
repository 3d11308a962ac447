"""The named-block builder makes what it promises: BIP34 coinbases, valid PoW, right merkle
roots, increasing times, Bitcoin's retarget rule, and re-keying on update."""

from __future__ import annotations

import dataclasses

from tests.framework.blockbuilder import BlockBuilder, block_work, next_bits_for, solve
from tests.framework.miniwallet import push_int
from tinynode.params import REGTEST, TINYNET
from tinynode.primitives.tx import COIN


def test_next_block_shape():
    b = BlockBuilder(REGTEST)
    b1 = b.next_block("b1")
    assert b1.header.prev_hash == REGTEST.genesis.hash
    assert b1.header.check_pow(REGTEST.pow_limit)
    root, mutated = b1.compute_merkle_root()
    assert root == b1.header.merkle_root and not mutated
    cb = b1.txs[0]
    assert cb.is_coinbase() and cb.vin[0].script_sig.startswith(push_int(1))
    assert 2 <= len(cb.vin[0].script_sig) <= 100
    assert cb.vout[0].value == 50 * COIN
    b2 = b.next_block("b2")
    assert b2.header.time > b.median_time_past(b1)
    assert b2.txs[0].vin[0].script_sig.startswith(push_int(2))
    assert b.height_of("b2") == 2 and b.chain_to("b2") == [b1, b2]


def test_spend_and_fees_go_to_coinbase():
    b = BlockBuilder(REGTEST)
    b.next_block("b1")
    out = b.save_spendable_output()
    b3 = b.next_block("b3", spend=out)
    assert b3.txs[1].vin[0].prevout == out.outpoint
    assert b3.txs[0].vout[0].value == 50 * COIN + 1000


def test_set_tip_and_update_block_rekeys():
    b = BlockBuilder(REGTEST)
    b1 = b.next_block("b1")
    b.next_block("b2")
    b.set_tip("b1")
    b3 = b.next_block("b3")
    assert b3.header.prev_hash == b1.hash and b.height_of("b3") == 2
    old = b3.hash
    new = b.update_block("b3", lambda blk: list(blk.txs) + [blk.txs[0]], remerkle=True)
    assert new.hash != old and old not in b.by_hash and b["b3"] is new and b.tip is new


def test_invalid_pow_can_be_built():
    b = BlockBuilder(REGTEST)
    bad = b.next_block("bad", valid_pow=False)
    assert not bad.header.check_pow(REGTEST.pow_limit)
    assert solve(bad.header).check_pow(REGTEST.pow_limit)


def _variant():
    return dataclasses.replace(TINYNET, retarget_window=4, pow_limit_bits=REGTEST.pow_limit_bits,
                               genesis=REGTEST.genesis)


def test_retarget_raises_work_for_fast_blocks():
    p = _variant()
    b = BlockBuilder(p, spacing=1)
    for i in range(1, 9):
        b.next_block(f"f{i}")
    # fast blocks: at height 4 and 8 the target shrinks by the x4 clamp
    assert block_work(b["f4"].header.bits) > 3 * block_work(b["f3"].header.bits)
    assert block_work(b["f8"].header.bits) > 3 * block_work(b["f7"].header.bits)


def test_builder_retarget_agrees_with_consensus_pow():
    try:
        from tinynode.consensus.pow import next_work_required
    except ImportError:
        return

    class E:
        def __init__(self, hdr, height, prev):
            self.time, self.bits, self.height, self.prev = hdr.time, hdr.bits, height, prev

    p = _variant()
    for spacing in (1, 10, 25, 100):
        b = BlockBuilder(p, spacing=spacing)
        e = E(p.genesis.header, 0, None)
        for i in range(1, 13):
            blk = b.next_block(f"x{i}")
            assert next_work_required(e, p, block_time=blk.header.time) == blk.header.bits
            e = E(blk.header, i, e)
        assert next_bits_for(p, b.tip.header, 12, b.tip.header.time + 1,
                             lambda h: b.ancestor_header(b.tip, h)) == next_work_required(e, p)
