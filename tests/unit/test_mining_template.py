"""Block templates: BIP34 coinbase, fees, package (ancestor fee rate) ordering, limits."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

from tests.unit.test_mempool import setup
from tests.unit.test_mempool_helpers import MTP_BASE, NOW
from tinynode.mining.template import (
    BLOCK_VERSION, COINBASE_WEIGHT_RESERVE, build_template, coinbase_script_sig, select_package_txs,
)
from tinynode.mining.worker import grind
from tinynode.params import REGTEST
from tinynode.primitives.tx import COIN

PAYOUT = bytes.fromhex("76a914") + bytes(range(20)) + bytes.fromhex("88ac")


def test_coinbase_script_sig_starts_with_core_height_push():
    assert coinbase_script_sig(1, 0) == b"\x51\x00"            # OP_1 OP_0: 2 bytes, the minimum
    assert coinbase_script_sig(16, 0)[0] == 0x60               # OP_16
    assert coinbase_script_sig(17, 0)[:2] == b"\x01\x11"
    assert coinbase_script_sig(128, 0)[:3] == b"\x02\x80\x00"  # sign bit needs a zero byte
    assert coinbase_script_sig(1000, 5) == b"\x02\xe8\x03\x55"
    assert coinbase_script_sig(500_000, 1 << 40)[:4] == b"\x03\x20\xa1\x07"
    assert 2 <= len(coinbase_script_sig(2**31 - 1, 2**63 - 1, b"x" * 200)) <= 100


def test_template_fields_on_the_tip():
    chain, pool, w, _ = setup()
    t = build_template(chain, pool, PAYOUT, NOW)
    tip = chain.tip
    assert t.height == tip.height + 1 and t.prev_hash == tip.hash
    assert t.header.version == BLOCK_VERSION | (1 << 28) and t.header.bits == REGTEST.pow_limit_bits
    # (regtest height 201: BIP9 testdummy is STARTED, Core signals bit 28)
    assert t.header.time == NOW and t.header.nonce == 0
    assert t.tx_count == 1 and t.fees == 0
    cb = t.coinbase
    assert cb.is_coinbase() and cb.vout[0].script_pubkey == PAYOUT
    # Core's CreateNewBlock: the coinbase is timelocked to its height (locktime height - 1,
    # sequence MAX_SEQUENCE_NONFINAL), version 2
    assert (cb.version, cb.locktime, cb.vin[0].sequence) == (2, t.height - 1, 0xFFFFFFFE)
    assert cb.vout[0].value == REGTEST.block_subsidy(t.height)
    assert cb.vin[0].script_sig.startswith(b"\x02" + t.height.to_bytes(2, "little"))
    assert t.block.compute_merkle_root() == (t.header.merkle_root, False)
    assert len(t.header76) == 76
    # Time never goes below median-time-past + 1.
    early = build_template(chain, pool, PAYOUT, MTP_BASE)
    assert early.header.time == chain.median_time_past() + 1
    # Extranonce rolls give a new coinbase and merkle root.
    t2 = t.with_extranonce(7)
    assert t2.header.merkle_root != t.header.merkle_root and t2.extranonce == 7
    assert t2.coinbase.vin[0].script_sig.endswith(b"\x57")
    nonce = grind(t.header76, t.target, 0, 1000)
    solved = t.solved(nonce)
    assert solved.header.check_pow(REGTEST.pow_limit) and solved.txs == t.block.txs


def test_child_pays_for_parent_ordering_and_fees():
    chain, pool, w, (u1, u2, u3, u4) = setup()
    parent = w.create_spend(u1, fee=300)                        # ~1.3 sat/B alone
    child = w.create_spend(w.outputs_of(parent)[0], fee=30_000, n_outputs=1)
    medium = w.create_spend(u2, fee=5000)                        # ~22 sat/B
    low = w.create_spend(u3, fee=1000)
    for tx in (low, parent, medium, child):
        pool.accept(tx, NOW)
    t = build_template(chain, pool, PAYOUT, NOW)
    order = [tx.txid for tx in t.block.txs[1:]]
    # Package (parent + child) ≈ 72 sat/B beats medium; parent precedes child.
    assert order == [parent.txid, child.txid, medium.txid, low.txid]
    assert t.fees == 300 + 30_000 + 5000 + 1000
    assert t.coinbase.vout[0].value == REGTEST.block_subsidy(t.height) + t.fees


def _cand(txid: bytes, fee: int, size: int, sigops: int = 1, parents=(), children=()):
    """A candidate of `size` vbytes (no `weight`: the assembler counts size × 4)."""
    return SimpleNamespace(txid=txid, tx=txid, fee=fee, size=size, sigops=sigops,
                           parents=set(parents), children=set(children))


def test_package_selection_respects_size_and_sigop_limits():
    a = _cand(b"a", 10_000, 1000)                 # 10 sat/B
    b = _cand(b"b", 5_000, 1000)
    c = _cand(b"c", 60_000, 3000, sigops=50)      # 20 sat/B but many sigops
    d = _cand(b"d", 1_000, 500)
    cands = {x.txid: x for x in (a, b, c, d)}
    picked, weight, sigops, fees = select_package_txs(cands, 2600 * 4, 40)
    assert [p.txid for p in picked] == [b"a", b"b", b"d"]
    assert (weight, sigops, fees) == (2500 * 4, 3, 16_000)
    picked, *_ = select_package_txs(cands, 10_000 * 4, 100)
    assert [p.txid for p in picked] == [b"c", b"a", b"b", b"d"]


def test_package_scores_update_after_ancestors_are_included():
    # p (cheap) has two children: c1 pays a lot, c2 a little more than q alone.
    p = _cand(b"p", 100, 1000, children=(b"c1", b"c2"))
    c1 = _cand(b"c1", 20_000, 1000, parents=(b"p",))
    c2 = _cand(b"c2", 3_500, 1000, parents=(b"p",))
    q = _cand(b"q", 3_000, 1000)
    cands = {x.txid: x for x in (p, c1, c2, q)}
    picked, *_ = select_package_txs(cands, 10_000 * 4, 1000)
    # After p+c1, c2's package is c2 alone (3.5 sat/B) which beats q (3 sat/B).
    assert [x.txid for x in picked] == [b"p", b"c1", b"c2", b"q"]


def test_template_fills_to_the_block_size_limit():
    chain, pool, w, utxos = setup(n=1, value=50 * COIN)
    small_params = dataclasses.replace(REGTEST, max_block_weight=COINBASE_WEIGHT_RESERVE + 4 * 1000)
    fan, outs = w.fan_out(utxos[0], 20, fee=20_000)
    pool.accept(fan, NOW)
    for o in outs[:8]:
        pool.accept(w.create_spend(o, fee=2000), NOW)
    t = build_template(chain, pool, PAYOUT, NOW, params=small_params)
    assert t.block.weight < COINBASE_WEIGHT_RESERVE + 4 * 1000
    assert t.block.txs[1].txid == fan.txid
    assert 1 < t.tx_count < 10


def test_block_min_fee_rate_stops_selection_at_the_first_cheaper_package():
    """Core -blockmintxfee: packages paying at least the rate (sat/kvB) go in; selection stops at
    the first one below it (everything after pays less)."""
    exact = _cand(b"e", 5, 1000)          # exactly 5 sat/kvB
    below = _cand(b"b", 4, 1000)
    free = _cand(b"f", 0, 200)
    cands = {x.txid: x for x in (exact, below, free)}
    picked, *_ = select_package_txs(cands, 4_000_000, 80_000, min_fee_rate=5)
    assert [p.txid for p in picked] == [b"e"]
    picked, *_ = select_package_txs(cands, 4_000_000, 80_000, min_fee_rate=0)
    assert [p.txid for p in picked] == [b"e", b"b", b"f"]


def test_assembler_options_clamp_weights_and_set_the_version():
    """Core ClampOptions, and -blockversion / -blockreservedweight on the template."""
    from tinynode.mining.template import AssemblerOptions
    o = AssemblerOptions(block_max_weight=1000, block_reserved_weight=500).clamped(4_000_000)
    assert (o.block_reserved_weight, o.block_max_weight) == (2000, 2000)
    o = AssemblerOptions(block_max_weight=5_000_000, block_reserved_weight=9_000_000).clamped(4_000_000)
    assert (o.block_reserved_weight, o.block_max_weight) == (4_000_000, 4_000_000)
    chain, pool, w, (u1, *_rest) = setup()
    tx = w.create_spend(u1, fee=5000)
    pool.accept(tx, NOW)
    t = build_template(chain, pool, PAYOUT, NOW, options=AssemblerOptions(block_version=1337))
    assert t.header.version == 1337 and t.tx_count == 2
    # a reserve as large as the block leaves no room for transactions
    full = AssemblerOptions(block_max_weight=4_000_000, block_reserved_weight=4_000_000)
    assert build_template(chain, pool, PAYOUT, NOW, options=full).tx_count == 1
    # a max weight just below what the tx needs keeps it out
    tight = AssemblerOptions(block_max_weight=8000 + tx.weight, block_reserved_weight=8000)
    assert build_template(chain, pool, PAYOUT, NOW, options=tight).tx_count == 1
    roomy = AssemblerOptions(block_max_weight=8001 + tx.weight, block_reserved_weight=8000)
    assert build_template(chain, pool, PAYOUT, NOW, options=roomy).tx_count == 2


def test_blockmintxfee_zero_still_leaves_out_negative_fee_packages():
    """Core: a chunk whose feerate is below -blockmintxfee ends selection, with a rate of 0 too
    (a fee made negative by prioritisetransaction); a zero-fee one is kept at rate 0."""
    free = _cand(b"f", 0, 200)
    negative = _cand(b"n", -11, 200)
    cands = {x.txid: x for x in (free, negative)}
    picked, *_ = select_package_txs(cands, 100_000, 1000, 0)
    assert [p.txid for p in picked] == [b"f"]
    picked, *_ = select_package_txs(cands, 100_000, 1000, 1)
    assert picked == []
