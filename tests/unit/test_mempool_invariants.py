"""Pool bookkeeping under a random mix of accepts, replacements, blocks, reorgs and evictions:
after every step the ancestor/descendant totals, the spent-outpoint index and the size/fee
totals must equal values recomputed from scratch."""

from __future__ import annotations

import random

from tests.framework.miniwallet import Utxo
from tests.unit.test_mempool import setup
from tests.unit.test_mempool_helpers import NOW
from tinynode.consensus.errors import PolicyError, ValidationError
from tinynode.mempool import Mempool, PolicyConfig
from tinynode.mining.template import build_template
from tinynode.primitives.tx import OutPoint


def check_invariants(pool: Mempool) -> None:
    entries = pool._entries
    spenders = {}
    for txid, e in entries.items():
        parents = {i.prevout.txid for i in e.tx.vin if i.prevout.txid in entries}
        assert e.parents == parents
        for p in parents:
            assert txid in entries[p].children
        for c in e.children:
            assert txid in entries[c].parents
        anc = pool.ancestors(txid)
        desc = pool.descendants(txid)
        assert e.anc_count == 1 + len(anc)
        assert e.anc_size == e.size + sum(entries[a].size for a in anc)
        assert e.anc_fees == e.fee + sum(entries[a].fee for a in anc)
        assert e.anc_sigops == e.sigops + sum(entries[a].sigops for a in anc)
        assert e.desc_count == 1 + len(desc)
        assert e.desc_size == e.size + sum(entries[d].size for d in desc)
        assert e.desc_fees == e.fee + sum(entries[d].fee for d in desc)
        for i in e.tx.vin:
            assert i.prevout not in spenders, "two pool txs spend one outpoint"
            spenders[i.prevout] = txid
    assert spenders == pool._spenders
    assert pool.total_size == sum(e.size for e in entries.values())
    assert pool.total_fees == sum(e.fee for e in entries.values())


def test_random_operations_keep_the_books_straight():
    rng = random.Random(1234)
    cfg = PolicyConfig(max_size=6000, ancestor_limit=6, descendant_limit=6)
    chain, pool, w, utxos = setup(config=cfg, n=40)
    spendable: list[Utxo] = list(utxos)          # confirmed or pool outputs we may spend
    blocks = mined = 0
    for step in range(220):
        op = rng.random()
        if op < 0.70 and spendable:
            # A new spend (sometimes a chain child, sometimes a double spend = RBF attempt).
            u = rng.choice(spendable)
            fee = rng.choice((300, 1000, 3000, 10_000, 40_000))
            try:
                tx = w.create_spend(u, fee=fee, n_outputs=rng.choice((1, 2)))
            except ValueError:
                continue
            try:
                pool.accept(tx, NOW)
            except (ValidationError, PolicyError):
                pass
            else:
                spendable.extend(w.outputs_of(tx))
        elif op < 0.85:
            # Mine a block with a few pool txs (a valid template prefix), sometimes empty.
            t = build_template(chain, pool, b"\x51", NOW)
            take = rng.randint(0, len(t.block.txs) - 1)
            chain.connect(list(t.block.txs[1:1 + take]), tag=step)
            blocks += 1
            mined += 1
        elif op < 0.93 and blocks:
            depth = rng.randint(1, min(2, blocks))
            chain.reorg(depth, [[] for _ in range(rng.randint(0, depth + 1))])
            blocks = blocks - depth
        else:
            txids = pool.txids()
            if txids:
                pool.remove(rng.choice(txids))
        check_invariants(pool)
        # Outputs that no longer exist anywhere cannot be spent: drop them from our list.
        spendable = [u for u in spendable
                     if chain.get_coin(u.outpoint) is not None or u.outpoint.txid in pool]
        assert pool.total_size <= 6000
    assert len(pool) > 0 and mined > 0


def test_template_from_a_random_pool_is_topologically_ordered():
    rng = random.Random(99)
    chain, pool, w, utxos = setup(n=30)
    spendable = list(utxos)
    for _ in range(120):
        u = rng.choice(spendable)
        try:
            tx = w.create_spend(u, fee=rng.randint(200, 30_000), n_outputs=2)
            pool.accept(tx, NOW)
        except (ValidationError, PolicyError, ValueError):
            continue
        spendable.remove(u)
        spendable.extend(w.outputs_of(tx))
    check_invariants(pool)
    t = build_template(chain, pool, b"\x51", NOW)
    seen: set[bytes] = set()
    for tx in t.block.txs[1:]:
        for i in tx.vin:
            assert i.prevout.txid not in pool or i.prevout.txid in seen
        seen.add(tx.txid)
    assert t.fees == sum(pool.get(txid).fee for txid in seen)
    assert OutPoint(b"\0" * 32, 0) not in pool._spenders
