"""Orphan txs: kept while parents are missing, retried when a parent arrives, bounded, expiring."""

from __future__ import annotations

from tests.framework.miniwallet import Utxo
from tests.unit.test_mempool import setup
from tests.unit.test_mempool_helpers import NOW
from tinynode.mempool import MissingInputsError, PolicyConfig
from tinynode.mempool.orphans import OrphanPool
from tinynode.primitives.tx import OutPoint


def test_child_before_parent_is_resolved_when_parent_arrives():
    _, pool, w, (u, *_) = setup()
    a, b, c = w.create_chain(u, 3)
    r = pool.process_tx(c, NOW, peer="p1")
    assert r.orphan and r.accepted == () and r.missing_parents == (b.txid,)
    assert isinstance(r.error, MissingInputsError)
    r = pool.process_tx(b, NOW, peer="p1")
    assert r.orphan and len(pool.orphans) == 2
    r = pool.process_tx(a, NOW, peer="p2")
    assert [e.txid for e in r.accepted] == [a.txid, b.txid, c.txid]
    assert len(pool.orphans) == 0 and len(pool) == 3


def test_orphan_that_turns_out_invalid_is_dropped():
    _, pool, w, (u, *_) = setup()
    a = w.create_spend(u)
    out = w.outputs_of(a)[0]
    bad = w.create_spend(Utxo(out.outpoint, out.value + 5000, w.key), fee=-4000)  # spends more than exists
    assert pool.process_tx(bad, NOW, peer=1).orphan
    r = pool.process_tx(a, NOW, peer=2)
    assert [e.txid for e in r.accepted] == [a.txid]
    assert bad.txid not in pool.orphans and bad.txid not in pool
    # reported, so the relay layer remembers it as rejected (Core ProcessOrphanTx)
    assert [(t.txid, e.reason) for t, e in r.orphans_rejected] == [(bad.txid, "bad-txns-in-belowout")]


def test_orphans_erased_for_a_block_are_logged_as_core(caplog):
    import logging
    _, pool, w, (u, *_) = setup()
    a, b = w.create_chain(u, 2)
    assert pool.process_tx(b, NOW, peer=1).orphan
    with caplog.at_level(logging.DEBUG, logger="tinynode.mempool.orphans"):
        assert pool.orphans.remove_for_block([a, b]) == 1
    assert "Erased 1 orphan transaction(s) included or conflicted by block" in caplog.text


def test_orphans_expire():
    cfg = PolicyConfig(orphan_expiry=1200)
    _, pool, w, (u, u2, *_) = setup(config=cfg)
    _, child = w.create_chain(u, 2)
    assert pool.process_tx(child, NOW, peer=1).orphan
    assert pool.orphans.expire(NOW + 1199) == 0
    assert pool.orphans.expire(NOW + 1200) == 1
    assert child.txid not in pool.orphans
    # Adding a new orphan also expires old ones.
    _, child2 = w.create_chain(u2, 2)
    pool.process_tx(child, NOW, peer=1)
    pool.process_tx(child2, NOW + 5000, peer=1)
    assert pool.orphans.txids() == [child2.txid]


def test_latency_limit_evicts_the_worst_peers_oldest_first():
    """Core v31 LimitOrphans: over the global latency score, the peer using the largest share
    of its allowance (the global score / peers with orphans) loses its oldest orphan first."""
    cfg = PolicyConfig(max_orphans=3)
    _, pool, w, utxos = setup(config=cfg, n=4)
    orphans = [w.create_chain(u, 2)[1] for u in utxos]
    for i in range(3):
        assert pool.process_tx(orphans[i], NOW + i, peer="a").orphan
    assert pool.process_tx(orphans[3], NOW + 3, peer="b").orphan
    assert pool.orphans.txids() == [orphans[1].txid, orphans[2].txid, orphans[3].txid]
    assert pool.orphans.remove_for_peer("a") == 2
    assert len(pool.orphans) == 1


def test_weight_limit_is_a_reservation_per_peer():
    """The global weight allowance is the per-peer reservation times the peers with orphans: a
    second peer's orphans make room for more, a lone peer over it loses its oldest."""
    from tinynode.mempool.orphans import OrphanPool
    from tinynode.primitives.tx import Tx, TxIn, TxOut
    txs = [Tx(1, (TxIn(OutPoint(bytes([i]) * 32, 0)),), (TxOut(1, b"\x51"),)) for i in range(1, 6)]
    w = txs[0].weight
    op = OrphanPool(max_latency_score=100, reserved_weight_per_peer=2 * w, expiry=1000)
    assert op.add(txs[0], "a", 0) and op.add(txs[1], "a", 1)
    assert op.add(txs[2], "a", 2)                       # 3 × w > 2 × w: a's oldest goes
    assert op.txids() == [txs[1].txid, txs[2].txid]
    assert op.add(txs[3], "b", 3) and op.add(txs[4], "b", 4)   # 4 × w <= 2 peers × 2 × w
    assert len(op) == 4 and {o.peer for o in op.orphans()} == {"a", "b"}


def test_more_than_100_orphans_from_one_peer():
    """Core v31 keeps more than the old 100 (its p2p_invalid_tx checks 101 tiny orphans)."""
    from tinynode.mempool.orphans import OrphanPool
    from tinynode.primitives.tx import Tx, TxIn, TxOut
    op = OrphanPool()
    for i in range(101):
        assert op.add(Tx(1, (TxIn(OutPoint(i.to_bytes(32, "little"), 333)),), (TxOut(11, b"\x51"),)), 0, 0)
    assert len(op) == 101


def test_block_removes_conflicting_orphans():
    chain, pool, w, (u, *_) = setup()
    a, b = w.create_chain(u, 2)
    pool.process_tx(b, NOW, peer=1)
    chain.connect([a])           # b's parent confirmed: b stays an orphan until retried
    assert b.txid in pool.orphans
    a2 = w.create_spend(w.outputs_of(a)[0], fee=3000)
    chain.connect([a2])          # spends what b spends: b can never be valid
    assert b.txid not in pool.orphans


def test_orphan_pool_unit_bounds():
    from tests.framework.miniwallet import MiniWallet
    from tinynode.primitives.tx import Tx, TxIn, TxOut

    w = MiniWallet(0)
    op = OrphanPool(max_latency_score=2, expiry=10)
    big = Tx(1, (TxIn(OutPoint(b"\1" * 32, 0)),), tuple(TxOut(1000, w.script_pubkey) for _ in range(3000)))
    assert not op.add(big, "p", 0)                         # larger than any standard tx
    a = Tx(1, (TxIn(OutPoint(b"\2" * 32, 0)), TxIn(OutPoint(b"\3" * 32, 1))), (TxOut(1, b"\x51"),))
    assert op.add(a, None, 0) and not op.add(a, None, 0)   # known
    assert op.missing_parents(a) == [b"\2" * 32, b"\3" * 32]
    assert op.get(a.txid) == a and a.txid in op and op.get(b"x" * 32) is None
    parent = Tx(1, (TxIn(OutPoint(b"\4" * 32, 0)),), (TxOut(1, b"\x51"),) * 2)
    assert op.children_of(parent) == []
    assert op.remove_for_block([Tx(1, (TxIn(OutPoint(b"\3" * 32, 1)),), (TxOut(1, b"\x51"),))]) == 1
    assert len(op) == 0
