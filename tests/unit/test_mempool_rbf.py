"""Full replace-by-fee: Core's replacement rules 2–6 (no signalling needed), each accepted and refused."""

from __future__ import annotations

import pytest

from tests.framework.miniwallet import MiniWallet
from tinynode.mempool.policy import DEFAULT_INCREMENTAL_RELAY_FEE, FeeRate
from tests.unit.test_mempool import reject, setup
from tests.unit.test_mempool_helpers import NOW
from tinynode.consensus.errors import PolicyError
from tinynode.mempool import PolicyConfig
from tinynode.primitives.tx import COIN


def test_replacement_with_higher_fee_evicts_conflict_and_descendants():
    _, pool, w, (u, *_) = setup()
    a = w.create_spend(u, fee=1000)
    a_child = w.create_spend(w.outputs_of(a)[0], fee=1000)
    pool.accept(a, NOW)
    pool.accept(a_child, NOW)
    size = len(a.raw)
    # Rule 3: ≥ 2000 (a + child); rule 4: + incremental relay fee for the new size.
    b = w.create_spend(u, fee=2000 + size + 10, n_outputs=2)
    entry = pool.accept(b, NOW)
    assert b.txid in pool and a.txid not in pool and a_child.txid not in pool
    assert pool.spender_of(u.outpoint) == b.txid
    assert pool.total_fees == entry.fee and len(pool) == 1


def test_rule6_feerate_must_beat_each_direct_conflict():
    _, pool, w, (u, *_) = setup()
    a = w.create_spend(u, fee=10_000, n_outputs=1)
    pool.accept(a, NOW)
    # Same fee rate with more outputs: bigger tx, more absolute fee, but not a higher rate.
    b = w.create_spend(u, fee=10_000, n_outputs=2)
    err = reject(pool, b, "insufficient fee")
    assert "feerate" in err.detail
    assert a.txid in pool


def test_rule3_absolute_fee_must_cover_replaced_txs():
    _, pool, w, (u, *_) = setup()
    a = w.create_spend(u, fee=1000, n_outputs=2)
    pool.accept(a, NOW)
    child = w.create_spend(w.outputs_of(a)[0], fee=5000)
    pool.accept(child, NOW)
    b = w.create_spend(u, fee=4000, n_outputs=1)        # higher rate than a, less than a + child
    err = reject(pool, b, "insufficient fee")
    assert "less fees than conflicting txs" in err.detail
    assert a.txid in pool and child.txid in pool


def test_rule4_extra_fee_must_pay_incremental_relay_fee():
    _, pool, w, (u, *_) = setup()
    a = w.create_spend(u, fee=1000)
    pool.accept(a, NOW)
    b = w.create_spend(u, fee=1010)                       # +10 sat < ~23 sat at 100 sat/kvB
    err = reject(pool, b, "insufficient fee")
    assert "not enough additional fees" in err.detail
    c = w.create_spend(u, fee=1000 + FeeRate(DEFAULT_INCREMENTAL_RELAY_FEE).fee(len(a.raw)) + 5)
    pool.accept(c, NOW)
    assert a.txid not in pool


def test_rule2_no_new_unconfirmed_inputs():
    _, pool, w, (u1, u2, *_) = setup()
    a = w.create_spend(u1, fee=1000)
    other = w.create_spend(u2, fee=1000)
    pool.accept(a, NOW)
    pool.accept(other, NOW)
    b = w.spend_many([u1, w.outputs_of(other)[0]], fee=50_000)
    reject(pool, b, "replacement-adds-unconfirmed")
    # Spending an unconfirmed parent that the replaced tx also spent is fine.
    parent = w.create_spend(w.outputs_of(other)[1], fee=1000)
    pool.accept(parent, NOW)
    x = w.spend_many([u1, w.outputs_of(parent)[0]], fee=1000)
    with pytest.raises(PolicyError):
        pool.accept(x, NOW)       # adds parent: unconfirmed and new
    assert a.txid in pool


def test_rule2_allows_unconfirmed_input_already_spent_by_the_replaced_tx():
    _, pool, w, (u1, u2, *_) = setup()
    p = w.create_spend(u1, fee=1000)
    pool.accept(p, NOW)
    p_out0, p_out1 = w.outputs_of(p)
    a = w.spend_many([p_out0, u2], fee=1000)
    pool.accept(a, NOW)
    b = w.spend_many([p_out0, u2, p_out1], fee=5000)      # p_out1 comes from p, which a spent too
    pool.accept(b, NOW)
    assert a.txid not in pool and b.txid in pool


def test_replacement_cannot_spend_what_it_replaces():
    _, pool, w, (u, *_) = setup()
    a = w.create_spend(u, fee=1000)
    pool.accept(a, NOW)
    b = w.spend_many([u, w.outputs_of(a)[0]], fee=100_000)
    reject(pool, b, "bad-txns-spends-conflicting-tx")


def test_rule5_at_most_100_evictions():
    cfg = PolicyConfig(descendant_limit=200, descendant_size_limit=1_000_000)
    _, pool, w, (u, u2, *_) = setup(config=cfg, value=50 * COIN)
    fan, outs = w.fan_out(u, 100, fee=20_000)
    pool.accept(fan, NOW)
    for o in outs:
        pool.accept(w.create_spend(o, n_outputs=1, fee=1000), NOW)
    assert pool.get(fan.txid).descendant_count == 101
    b = w.create_spend(u, fee=10 * COIN, n_outputs=1)
    err = reject(pool, b, "too many potential replacements")
    assert err.reason == "too many potential replacements"
    assert len(pool) == 101
    # 100 evictions are allowed.
    pool.remove(pool.get(fan.txid).spent_by[0])
    assert pool.get(fan.txid).descendant_count == 100
    pool.accept(b, NOW)
    assert len(pool) == 1


def test_without_full_rbf_conflicts_need_bip125_signal():
    cfg = PolicyConfig(full_rbf=False)
    _, pool, w, (u1, u2, *_) = setup(config=cfg)
    a = w.create_spend(u1, fee=1000)                       # sequence final: not replaceable
    pool.accept(a, NOW)
    reject(pool, w.create_spend(u1, fee=50_000), "txn-mempool-conflict")
    s = w.create_spend(u2, fee=1000, sequence=0xFFFFFFFD)  # signals (BIP125)
    pool.accept(s, NOW)
    pool.accept(w.create_spend(u2, fee=50_000), NOW)
    assert s.txid not in pool


def test_full_rbf_is_the_default():
    _, pool, w, (u, *_) = setup()
    assert pool.config.full_rbf
    a = w.create_spend(u, fee=1000)
    pool.accept(a, NOW)
    pool.accept(MiniWallet(0).create_spend(u, fee=60_000), NOW)
    assert a.txid not in pool
