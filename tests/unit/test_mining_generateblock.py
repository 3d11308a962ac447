"""generateblock's mining half: `template_with_txs` builds a block of exactly the caller's
transactions on the tip (Core's generateblock), and `Miner.solve` grinds it in the miner's
worker pool and hands it back unsubmitted, whatever the tip does meanwhile."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from tests.framework.wait import wait_until
from tests.unit.test_mining_chain import NOW, Rig
from tests.unit.test_miner import HARD_TARGET, PAYOUT, FakeWriter, slow_grind
from tinynode.mining.miner import Miner, MiningError
from tinynode.mining.template import BLOCK_VERSION, BlockTemplate, template_with_txs
from tinynode.mining.worker import grind
from tinynode.params import REGTEST
from tinynode.primitives.block import Block, merkle_root
from tinynode.primitives.tx import OutPoint, Tx, TxIn, TxOut


def test_template_with_txs_keeps_the_callers_txs_in_order_and_leaves_their_fees_unclaimed():
    rig = Rig()
    rig.mine(101)
    w = rig.wallet
    parent = w.create_spend(rig.coin(), fee=300)
    child = w.create_spend(w.outputs_of(parent)[0], fee=700, n_outputs=1)
    payout = bytes.fromhex("51")
    # neither tx is in the mempool: generateblock takes raw transactions as they are
    t = template_with_txs(rig.cs, [parent, child], payout, NOW)
    assert [tx.txid for tx in t.block.txs[1:]] == [parent.txid, child.txid]
    assert t.height == 102 and t.prev_hash == rig.cs.tip.hash
    assert t.header.version == BLOCK_VERSION   # BIP9 testdummy is DEFINED below height 144
    assert t.fees == 0                  # Core's generateblock claims only the subsidy
    assert t.coinbase.vout[0].value == REGTEST.block_subsidy(102)
    assert t.coinbase.vout[0].script_pubkey == payout
    assert t.header.merkle_root == merkle_root([tx.txid for tx in t.block.txs])[0]
    block = t.solved(grind(t.header76, t.target, 0, 10_000))
    r = rig.cs.process_block(block)
    assert r.status == "connected", r.error
    assert rig.cs.get_tx(child.txid)[2] == 102


def test_template_with_no_txs_is_a_coinbase_only_block_on_the_tip():
    rig = Rig()
    rig.mine(3)
    t = template_with_txs(rig.cs, [], b"\x51", NOW)
    assert t.tx_count == 1 and t.fees == 0
    assert t.coinbase.vout[0].value == REGTEST.block_subsidy(4)
    assert t.header.time >= rig.cs.median_time_past(rig.cs.tip) + 1


def _template_with_a_tx(writer: FakeWriter) -> BlockTemplate:
    """The fake writer's coinbase-only template plus one (fake) transaction, merkle root redone."""
    t = writer.template(PAYOUT, 0, 0)
    extra = Tx(2, (TxIn(OutPoint(b"\x11" * 32, 0), b"", 0xFFFFFFFD),), (TxOut(1000, b"\x51"),), 0)
    txs = t.block.txs + (extra,)
    header = replace(t.header, merkle_root=merkle_root([tx.txid for tx in txs])[0])
    return replace(t, block=Block(header, txs))


async def test_solve_grinds_in_the_worker_pool_and_does_not_submit():
    writer = FakeWriter()
    miner = Miner(writer, REGTEST, workers=1, template_fn=writer.template)
    try:
        pool = miner._ensure_pool()
        jobs: list[tuple] = []
        submit = pool.submit

        def recording_submit(fn, *args):
            jobs.append((fn, *args))
            return submit(fn, *args)
        pool.submit = recording_submit
        template = _template_with_a_tx(writer)
        block = await asyncio.wait_for(miner.solve(template), 20)
    finally:
        await miner.stop()
    assert jobs and all(job[0] is grind for job in jobs)
    assert jobs[0][1:3] == (template.header76, template.target)
    assert miner.chunks_sent == len(jobs)
    assert block.header.check_pow(REGTEST.pow_limit)
    assert block.txs == template.block.txs
    assert block.header.serialize()[:76] == template.header76
    assert writer.submitted == [] and miner.blocks_found == 0


async def test_solve_keeps_its_template_when_the_tip_moves():
    writer = FakeWriter()
    miner = Miner(writer, REGTEST, workers=1, template_fn=writer.template, grind_fn=slow_grind)
    try:
        template = writer.template(PAYOUT, 0, 0)
        task = asyncio.create_task(miner.solve(template))
        await wait_until(lambda: miner.chunks_sent >= 1, timeout=20)
        writer.extend_externally()              # a new tip while the chunk is in flight
        block = await asyncio.wait_for(task, 20)
    finally:
        await miner.stop()
    assert block.header.prev_hash == template.prev_hash != writer.blocks[-1].hash
    assert miner.stale_dropped == 0 and writer.submitted == []


async def test_solve_rolls_the_extranonce_and_keeps_the_transactions():
    writer = FakeWriter(target=REGTEST.pow_limit >> 3)  # 1 in 16 hashes
    miner = Miner(writer, REGTEST, workers=1, template_fn=writer.template, nonce_space=2,
                  initial_chunk=1)
    template = _template_with_a_tx(writer)
    try:
        blocks = [await asyncio.wait_for(miner.solve(template), 20) for _ in range(3)]
    finally:
        await miner.stop()
    # the scriptSig is <height> <extranonce>: the template's nonce space (2 nonces) ran out
    assert any(b.txs[0].vin[0].script_sig != template.coinbase.vin[0].script_sig for b in blocks)
    for b in blocks:
        assert b.header.nonce < 2 and b.header.check_pow(REGTEST.pow_limit)
        assert b.txs[1:] == template.block.txs[1:]
        assert b.txs[0].vout == template.coinbase.vout
        assert b.header.merkle_root == merkle_root([tx.txid for tx in b.txs])[0]
        assert b.header.time >= template.header.time


async def test_solve_raises_when_the_miner_stops():
    writer = FakeWriter(target=HARD_TARGET)
    miner = Miner(writer, REGTEST, workers=1, template_fn=writer.template, chunk_seconds=0.05)
    task = asyncio.create_task(miner.solve(writer.template(PAYOUT, 0, 0)))
    try:
        await wait_until(lambda: miner.chunks_sent >= 1, timeout=20)
    finally:
        await miner.stop()
    with pytest.raises(MiningError):
        await asyncio.wait_for(task, 10)
