"""Package acceptance as Core's AcceptPackage: child-with-parents, CPFP by package feerate,
per-tx results, package-wide errors, all-or-nothing for the package stage."""

from __future__ import annotations

from tests.unit.test_mempool import setup
from tests.unit.test_mempool_helpers import NOW
from tinynode.consensus.errors import PolicyError
from tinynode.mempool.pool import MAX_PACKAGE_COUNT


def test_low_fee_parent_enters_with_its_child_at_the_package_feerate():
    _, pool, w, (u, *_) = setup()
    parent = w.create_spend(u, fee=0, n_outputs=1)
    child = w.create_spend(w.outputs_of(parent)[0], fee=2000, n_outputs=1)
    # alone, the parent is below the min relay fee
    try:
        pool.test_accept(parent, NOW)
        raise AssertionError("accepted")
    except PolicyError as err:
        assert err.reason == "min relay fee not met"
    res = pool.accept_package([parent, child], NOW)
    assert res.error is None
    assert parent.txid in pool and child.txid in pool
    p, c = res.results
    size = pool.get(parent.txid).size + pool.get(child.txid).size
    assert (p.kind, p.fee, c.kind, c.fee) == ("valid", 0, "valid", 2000)
    assert p.effective_feerate == c.effective_feerate == 2000 * 1000 // size
    assert p.effective_includes == c.effective_includes == (parent.wtxid, child.wtxid)
    assert [e.txid for e in res.accepted] == [parent.txid, child.txid]
    assert pool.fee_estimator._tracked == {}          # package txs are not used for estimates
    # submitted again: both already in the pool
    again = pool.accept_package([parent, child], NOW)
    assert again.error is None and [r.kind for r in again.results] == ["mempool", "mempool"]
    assert again.results[0].effective_feerate is None and again.accepted == ()


def test_parent_that_pays_for_itself_enters_alone_first():
    _, pool, w, (u, *_) = setup()
    parent = w.create_spend(u, fee=1000, n_outputs=1)
    child = w.create_spend(w.outputs_of(parent)[0], fee=1000, n_outputs=1)
    res = pool.accept_package([parent, child], NOW)
    assert res.error is None
    p, c = res.results
    assert p.effective_includes == (parent.wtxid,) and c.effective_includes == (child.wtxid,)
    assert p.effective_feerate == 1000 * 1000 // pool.get(parent.txid).size


def test_package_feerate_too_low_leaves_the_pool_unchanged():
    _, pool, w, (u, *_) = setup()
    parent = w.create_spend(u, fee=0, n_outputs=1)
    child = w.create_spend(w.outputs_of(parent)[0], fee=10, n_outputs=1)
    before = (len(pool), pool.total_size, pool.total_fees)
    res = pool.accept_package([parent, child], NOW)
    assert res.error == "transaction failed"
    p, c = res.results
    assert p.kind == "invalid" and p.error.reason == "min relay fee not met"     # its own try
    assert c.kind == "invalid" and c.error.reason == "min relay fee not met"     # the package's
    assert c.error.detail.startswith("10 < ")
    assert (len(pool), pool.total_size, pool.total_fees) == before


def test_a_non_fee_failure_ends_the_package_without_package_evaluation():
    from dataclasses import replace
    _, pool, w, (u, u2, *_) = setup()
    signed = w.create_spend(u, fee=0, n_outputs=1)
    out = signed.vout[0]
    bad_parent = replace(signed, vout=(replace(out, value=out.value - 1),))    # signature now wrong
    good = w.create_spend(u2, fee=1000, n_outputs=1)
    child = w.spend_many([w.outputs_of(bad_parent)[0], w.outputs_of(good)[0]], fee=5000)
    res = pool.accept_package([bad_parent, good, child], NOW)
    assert res.error == "transaction failed"
    assert res.results[0].kind == "invalid"
    assert res.results[0].error.reason.startswith("mempool-script-verify-flag-failed")
    assert res.results[1].kind == "valid" and good.txid in pool                  # tried alone
    assert res.results[2].kind == "invalid" and child.txid not in pool
    assert res.results[2].error.reason == "bad-txns-inputs-missingorspent"
    assert [e.txid for e in res.accepted] == [good.txid]


def test_package_shape_errors_as_core():
    _, pool, w, (u, u2, *_) = setup()
    parent = w.create_spend(u, fee=1000, n_outputs=1)
    child = w.create_spend(w.outputs_of(parent)[0], fee=1000, n_outputs=1)
    other = w.create_spend(u2, fee=1000, n_outputs=1)
    assert pool.accept_package([child, parent], NOW) == pool.accept_package([child, parent], NOW)
    assert pool.accept_package([child, parent], NOW).error == "package-not-sorted"
    assert pool.accept_package([parent, parent], NOW).error == "package-contains-duplicates"
    assert pool.accept_package([other, child], NOW).error == "package-not-child-with-parents"
    double = w.create_spend(u, fee=2000, n_outputs=1)
    assert pool.accept_package([parent, double], NOW).error == "conflict-in-package"
    assert pool.accept_package([other] * (MAX_PACKAGE_COUNT + 1), NOW).error == "package-too-many-transactions"
    assert pool.accept_package([child, parent], NOW).results == ()
    assert len(pool) == 0


def test_max_feerate_refuses_a_tx():
    _, pool, w, (u, *_) = setup()
    tx = w.create_spend(u, fee=100_000, n_outputs=1)
    res = pool.accept_package([tx], NOW, max_rate_kvb=10_000)
    assert res.error == "transaction failed"
    assert res.results[0].error.reason == "max feerate exceeded" and tx.txid not in pool
