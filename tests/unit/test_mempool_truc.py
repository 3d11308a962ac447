"""TRUC (version 3) transactions in the pool, as Core v31's SingleTRUCChecks
(policy/truc_policy.cpp): standard since v28; only version 3 spends unconfirmed version 3 and
the reverse; one unconfirmed parent, one child; size limits; sibling eviction."""
from __future__ import annotations

import pytest

from tests.unit.test_mempool import reject, setup
from tests.unit.test_mempool_helpers import NOW
from tinynode.consensus.errors import PolicyError


def test_version_3_alone_is_standard():
    _, pool, w, (u, *_) = setup()
    tx = w.create_spend(u, version=3)
    pool.accept(tx, NOW)
    assert tx.txid in pool
    _, pool, w, (u, *_) = setup()
    reject(pool, w.create_spend(u, version=4), "version")


def test_inheritance_both_ways_with_cores_texts():
    _, pool, w, (u1, u2, *_) = setup()
    v3 = w.create_spend(u1, version=3)
    v2 = w.create_spend(u2, version=2)
    pool.accept(v3, NOW)
    pool.accept(v2, NOW)
    child = w.create_spend(w.outputs_of(v3)[0], version=2, n_outputs=1)
    err = reject(pool, child, "TRUC-violation")
    assert err.detail == (f"non-version=3 tx {child.txid_hex} (wtxid={child.wtxid_hex}) cannot spend "
                          f"from version=3 tx {v3.txid_hex} (wtxid={v3.wtxid_hex})")
    child = w.create_spend(w.outputs_of(v2)[0], version=3, n_outputs=1)
    err = reject(pool, child, "TRUC-violation")
    assert err.detail == (f"version=3 tx {child.txid_hex} (wtxid={child.wtxid_hex}) cannot spend "
                          f"from non-version=3 tx {v2.txid_hex} (wtxid={v2.wtxid_hex})")


def test_one_parent_one_child_and_sibling_eviction():
    _, pool, w, (u1, u2, u3, _) = setup()
    parent = w.create_spend(u1, version=3, n_outputs=3)
    other = w.create_spend(u2, version=3)
    pool.accept(parent, NOW)
    pool.accept(other, NOW)
    a, b, c = w.outputs_of(parent)
    # two unconfirmed parents: too many ancestors
    two = w.spend_many([c, w.outputs_of(other)[0]], version=3)
    err = reject(pool, two, "TRUC-violation")
    assert err.detail == f"tx {two.txid_hex} (wtxid={two.wtxid_hex}) would have too many ancestors"
    child = w.create_spend(a, version=3, n_outputs=1, fee=1000)
    pool.accept(child, NOW)
    grandchild = w.create_spend(w.outputs_of(child)[0], version=3, n_outputs=1)
    err = reject(pool, grandchild, "TRUC-violation")
    assert "would have too many ancestors" in err.detail
    # a second child: Core's sibling eviction under the replacement rules — too cheap, refused
    cheap = w.create_spend(b, version=3, n_outputs=1, fee=1000)
    with pytest.raises(PolicyError) as e:
        pool.accept(cheap, NOW)
    assert e.value.reason == "insufficient fee" and child.txid in pool
    # paying more than the sibling (and for its own size): the sibling goes
    rich = w.create_spend(b, version=3, n_outputs=1, fee=5000)
    pool.accept(rich, NOW)
    assert rich.txid in pool and child.txid not in pool and parent.txid in pool


def test_size_limits():
    _, pool, w, (u1, u2, *_) = setup()
    parent = w.create_spend(u1, version=3)
    pool.accept(parent, NOW)
    # a child over 1,000 vB (many outputs)
    outs = [(w.script_pubkey, 10_000)] * 40
    big_child = w.create_spend(w.outputs_of(parent)[0], outs, version=3, fee=20_000)
    assert big_child.vsize > 1000
    err = reject(pool, big_child, "TRUC-violation")
    assert err.detail == (f"version=3 child tx {big_child.txid_hex} (wtxid={big_child.wtxid_hex}) is "
                          f"too big: {big_child.vsize} > 1000 virtual bytes")
    huge = w.create_spend(u2, [(w.script_pubkey, 10_000)] * 350, version=3, fee=50_000)
    assert huge.vsize > 10_000
    err = reject(pool, huge, "TRUC-violation")
    assert err.detail.endswith(f"is too big: {huge.vsize} > 10000 virtual bytes")
