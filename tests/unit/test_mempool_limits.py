"""Bounded pool size: lowest descendant-feerate packages go first and the min fee rises, then decays."""

from __future__ import annotations

from tests.unit.test_mempool import reject, setup
from tests.unit.test_mempool_helpers import NOW
from tinynode.mempool import PolicyConfig
from tinynode.mempool.policy import DEFAULT_INCREMENTAL_RELAY_FEE, FeeRate


def test_full_pool_evicts_lowest_descendant_feerate_and_raises_min_fee():
    cfg = PolicyConfig(max_size=1000)
    chain, pool, w, utxos = setup(config=cfg, n=8)
    fees = [2000, 5000, 3000, 8000]
    txs = [w.create_spend(u, fee=f) for u, f in zip(utxos, fees)]
    for tx in txs:
        pool.accept(tx, NOW)
    assert len(pool) == 4 and pool.total_size <= 1000
    assert pool.min_fee_rate(NOW) == FeeRate(0)
    # One more: 5 × ~226 bytes > 1000: the lowest rate (fee 2000) goes.
    t5 = w.create_spend(utxos[4], fee=6000)
    pool.accept(t5, NOW)
    assert txs[0].txid not in pool and len(pool) == 4
    evicted_rate = 2000 * 1000 // len(txs[0].raw)
    assert pool.min_fee_rate(NOW) == FeeRate(evicted_rate + DEFAULT_INCREMENTAL_RELAY_FEE)
    # Below the new minimum (~2,022 sat for 226 bytes): refused with Core's reason.
    low = w.create_spend(utxos[5], fee=2010)
    reject(pool, low, "mempool min fee not met")
    # Above the minimum but the lowest package in a full pool: evicted at once, "mempool full".
    t6 = w.create_spend(utxos[6], fee=2600)
    assert pool.min_fee_rate(NOW).fee(len(t6.raw)) < 2600 < 3000
    reject(pool, t6, "mempool full")
    assert pool.total_size <= 1000


def test_child_pays_for_parent_protects_the_package_from_eviction():
    cfg = PolicyConfig(max_size=1200)
    _, pool, w, utxos = setup(config=cfg, n=6)
    parent = w.create_spend(utxos[0], fee=300)
    child = w.create_spend(w.outputs_of(parent)[0], fee=20_000, n_outputs=1)
    mid = [w.create_spend(u, fee=4000 + i) for i, u in enumerate(utxos[1:5])]
    for tx in (parent, child, *mid):
        pool.accept(tx, NOW)
    # 2 + 4 txs exceed 1,200 bytes: one goes. The parent alone pays ~1.3 sat/B, but its
    # descendant score (with the child: 20,300 sat / ~420 B) keeps it; the cheapest mid goes.
    assert pool.total_size <= 1200 and len(pool) == 5
    assert parent.txid in pool and child.txid in pool
    assert mid[0].txid not in pool and all(t.txid in pool for t in mid[1:])
    assert pool.get(parent.txid).descendant_fees == 20_300


def test_rolling_min_fee_decays_after_blocks():
    cfg = PolicyConfig(max_size=700)
    chain, pool, w, utxos = setup(config=cfg, n=5)
    for u, f in zip(utxos, (2000, 3000, 4000, 5000)):
        pool.accept(w.create_spend(u, fee=f), NOW)
    assert len(pool) == 3
    bumped = pool.min_fee_rate(NOW)
    assert bumped.sat_per_kvb > 1000
    assert pool.min_fee_rate(NOW + 10 * 3600) == bumped       # no block yet: no decay
    chain.connect([e.tx for e in pool.entries()])             # the pool empties: faster decay
    assert len(pool) == 0
    later = pool.min_fee_rate(NOW + 3 * 3600)                 # small pool: half-life / 4 = 3 h
    assert later.sat_per_kvb < bumped.sat_per_kvb
    assert abs(later.sat_per_kvb - bumped.sat_per_kvb / 2) <= 2
    assert pool.min_fee_rate(NOW + 40 * 3600) == FeeRate(0)  # below incremental / 2: back to zero
