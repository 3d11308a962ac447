"""prioritisetransaction (Core `CTxMemPool::PrioritiseTransaction` / `ApplyDelta`): a fee delta
changes a tx's modified fee, which mining order, package totals, eviction and replacement use;
the base fee (what the coinbase claims) does not change."""

from __future__ import annotations

from tests.unit.test_mempool import setup
from tests.unit.test_mempool_helpers import NOW
from tests.unit.test_mining_template import PAYOUT
from tinynode.mining.template import build_template


def test_delta_changes_modified_fee_and_package_totals_not_the_base_fee():
    _, pool, w, (u, *_) = setup()
    a, b = w.create_chain(u, 2, fee=2000)
    pool.accept(a, NOW)
    pool.accept(b, NOW)
    assert pool.prioritise(a.txid, 5000) == 5000
    ea, eb = pool.get(a.txid), pool.get(b.txid)
    assert (ea.fee, ea.modified) == (2000, 7000)
    assert ea.descendant_fees == 7000 + 2000 and eb.ancestor_fees == 7000 + 2000
    assert pool.info().total_fee == 4000                      # Core's total_fee: base fees
    assert pool.prioritise(a.txid, -5000) == 0                # back to zero: forgotten
    assert pool.prioritised() == [] and pool.get(b.txid).ancestor_fees == 4000


def test_delta_for_a_tx_not_yet_in_the_pool_applies_when_it_enters():
    _, pool, w, (u, *_) = setup()
    tx = w.create_spend(u, fee=0, n_outputs=1)
    pool.prioritise(tx.txid, 1000)
    assert pool.prioritised() == [(tx.txid, 1000, None)]
    pool.accept(tx, NOW)           # Core: the min relay fee judges the modified fee
    assert pool.get(tx.txid).modified == 1000 and pool.prioritised() == [(tx.txid, 1000, 1000)]


def test_mining_skips_a_tx_prioritised_to_zero_and_claims_base_fees():
    chain, pool, w, (u, u2, *_) = setup()
    low = w.create_spend(u, fee=1000, n_outputs=1)
    high = w.create_spend(u2, fee=5000, n_outputs=1)
    pool.accept(low, NOW)
    pool.accept(high, NOW)
    pool.prioritise(high.txid, -5000)          # below -blockmintxfee: not mined
    t = build_template(chain, pool, PAYOUT, NOW)
    assert [tx.txid for tx in t.block.txs[1:]] == [low.txid] and t.fees == 1000
    pool.prioritise(high.txid, 10_000)         # now first, but the coinbase claims its base fee
    t = build_template(chain, pool, PAYOUT, NOW)
    assert [tx.txid for tx in t.block.txs[1:]] == [high.txid, low.txid] and t.fees == 6000
    # a block that confirms it clears its prioritisation (Core removeForBlock)
    chain.connect([high])
    assert high.txid not in pool and pool.prioritised() == []
