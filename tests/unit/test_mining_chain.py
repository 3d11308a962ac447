"""Templates, mempool and miner against the real ChainState (regtest, in-memory store):
every template connects as a valid block; mined txs leave the pool; reorgs bring them back.

Every chainstate here is checked by Core's kernel (tests/framework/oracle.py): each mined or
hand-built block gets the same verdict and tip from Core (after `invalidate_block`, which the
kernel cannot follow, the reorg test's last blocks are not compared)."""

from __future__ import annotations

import multiprocessing
import time

from tests.framework.miniwallet import MiniWallet, MultisigKey
from tests.framework.oracle import OracleChainState, with_oracle
from tests.framework.wait import wait_until
from tinynode.chain.chainstate import ChainState
from tinynode.chain.writer import ChainWriter
from tinynode.mempool import Mempool
from tinynode.mining.miner import Miner
from tinynode.mining.template import BLOCK_VERSION, build_template, make_coinbase
from tinynode.mining.worker import grind
from tinynode.params import REGTEST
from tinynode.primitives.block import Block, BlockHeader, merkle_root
from tinynode.storage.memory import MemoryChainStore

NOW = int(time.time())


class Rig:
    """ChainState + Mempool + MiniWallet, mining with build_template + grind (no processes)."""

    def __init__(self) -> None:
        self.cs = with_oracle(ChainState(REGTEST, MemoryChainStore(), now=lambda: NOW + 3600))
        self.pool = Mempool(REGTEST, self.cs, clock=lambda: NOW)
        self.wallet = MiniWallet(0)
        self.now = NOW

    def mine(self, n: int = 1, pool: bool = True) -> list[Block]:
        out = []
        for _ in range(n):
            t = build_template(self.cs, self.pool if pool else None, self.wallet.script_pubkey, self.now)
            block = t.solved(grind(t.header76, t.target, 0, 10_000))
            r = self.cs.process_block(block)
            assert r.status == "connected", r.error
            self.wallet.coins.connect_block(block, t.height)
            out.append(block)
        return out

    def compared(self) -> int:
        """Blocks Core's kernel judged alike (-1 without a kernel)."""
        return self.cs.calls if isinstance(self.cs, OracleChainState) else -1

    def close(self) -> None:
        self.cs.close()

    def coin(self):
        return self.wallet.coins.pop(self.cs.height, REGTEST.coinbase_maturity)


def test_templates_connect_with_packages_multisig_and_chains():
    rig = Rig()
    rig.mine(104)
    w, pool = rig.wallet, rig.pool
    parent = w.create_spend(rig.coin(), fee=300)
    child = w.create_spend(w.outputs_of(parent)[0], fee=40_000, n_outputs=1)
    mid = w.create_spend(rig.coin(), fee=6000)
    ms = MultisigKey.make(2, [1, 2, 3])
    to_ms, ms_utxo = w.pay_to_multisig(rig.coin(), ms, fee=2000)
    from_ms = w.spend_many([ms_utxo], [(w.script_pubkey, ms_utxo.value - 3000)])
    chain5 = w.create_chain(rig.coin(), 5, fee=1500)
    for tx in (parent, mid, child, to_ms, from_ms, *chain5):
        pool.accept(tx, NOW)
    assert len(pool) == 10
    t = build_template(rig.cs, pool, w.script_pubkey, NOW)
    order = [tx.txid for tx in t.block.txs[1:]]
    assert order[:3] == [parent.txid, child.txid, mid.txid]
    assert order.index(to_ms.txid) < order.index(from_ms.txid)
    assert [order.index(tx.txid) for tx in chain5] == sorted(order.index(tx.txid) for tx in chain5)
    assert t.fees == sum(e.fee for e in pool.entries())
    block = t.solved(grind(t.header76, t.target, 0, 10_000))
    r = rig.cs.process_block(block)
    assert r.status == "connected", r.error
    assert len(pool) == 0                       # BlockConnected removed them all
    assert rig.cs.get_coin(block.txs[0].vin[0].prevout) is None
    cb = rig.cs.get_tx(block.txs[0].txid)
    assert cb is not None and cb[2] == t.height
    assert rig.compared() in (-1, 105)
    rig.close()


def test_reorg_returns_txs_and_drops_double_spends_on_the_real_chain():
    rig = Rig()
    rig.mine(101)
    w, pool, cs = rig.wallet, rig.pool, rig.cs
    c1, c2 = rig.coin(), rig.coin()
    a = w.create_spend(c1, fee=2000)
    a_child = w.create_spend(w.outputs_of(a)[0], fee=2000)
    b = w.create_spend(c2, fee=2000)
    for tx in (a, a_child, b):
        pool.accept(tx, NOW)
    (mined,) = rig.mine(1)
    assert len(pool) == 0 and len(mined.txs) == 4
    cs.invalidate_block(mined.hash)             # tip goes back: the txs return, parents first
    assert [e.txid for e in pool.entries()] in ([a.txid, b.txid, a_child.txid], [b.txid, a.txid, a_child.txid])
    # A competing block confirms a double spend of b: b leaves the pool, a and its child stay.
    b_double = w.create_spend(c2, fee=9000)
    tip = cs.tip
    height = tip.height + 1
    cb = make_coinbase(height, REGTEST.block_subsidy(height) + 9000, b"\x51", 77)
    txs = (cb, b_double)
    root, _ = merkle_root([t.txid for t in txs])
    time_ = max(NOW, cs.median_time_past(tip) + 1) + 1
    header = BlockHeader(BLOCK_VERSION, tip.hash, root, time_, cs.next_bits(tip, time_), 0)
    nonce = grind(header.serialize()[:76], header.target, 0, 10_000)
    block = Block(BlockHeader(BLOCK_VERSION, tip.hash, root, time_, header.bits, nonce), txs)
    assert cs.process_block(block).status == "connected"
    assert b.txid not in pool and a.txid in pool and a_child.txid in pool
    # The next template still connects.
    rig.wallet.coins.remove(c2.outpoint)
    rig.mine(1)
    assert len(pool) == 0
    assert rig.compared() in (-1, 102)          # up to the invalidate_block
    rig.close()


async def test_miner_generate_with_real_writer_mines_pool_txs_and_stops_cleanly():
    cs = with_oracle(ChainState(REGTEST, MemoryChainStore()))
    writer = ChainWriter(cs)
    wallet = MiniWallet(0)
    async with writer:
        pool = await writer.call(Mempool, REGTEST, cs)
        miner = Miner(writer, REGTEST, None, 2, pool)
        await miner.start()
        try:
            hashes = await miner.generate(101, wallet.script_pubkey)
            assert len(hashes) == 101 and writer.snapshot.height == 101
            assert writer.snapshot.tip_hash == hashes[-1]
            block1 = await writer.call(cs.get_block, hashes[0])
            wallet.coins.connect_block(block1, 1)
            tx = wallet.create_spend(wallet.coins.pop(101, REGTEST.coinbase_maturity), fee=5000)
            await writer.call(pool.accept, tx, int(time.time()))
            (h,) = await miner.generate(1, wallet.script_pubkey)
            block = await writer.call(cs.get_block, h)
            assert [t.txid for t in block.txs[1:]] == [tx.txid]
            assert block.txs[0].vout[0].value == REGTEST.block_subsidy(102) + 5000
            assert await writer.call(len, pool) == 0
            pids = miner.worker_pids()
        finally:
            await miner.stop()
    assert not isinstance(cs, OracleChainState) or cs.calls == 102
    await wait_until(lambda: not [c for c in multiprocessing.active_children() if c.pid in pids], timeout=10)


async def test_continuous_mining_on_the_real_chain_then_stop():
    cs = with_oracle(ChainState(REGTEST, MemoryChainStore()))
    writer = ChainWriter(cs)
    payout = MiniWallet(3).script_pubkey
    async with writer:
        pool = await writer.call(Mempool, REGTEST, cs)
        miner = Miner(writer, REGTEST, payout, 2, pool)
        await miner.start()
        try:
            await wait_until(lambda: writer.snapshot.height >= 20, timeout=30)
            assert miner.running
        finally:
            await miner.stop()
        height = writer.snapshot.height
        assert miner.blocks_found == height            # every submitted block connected
        tip_block = await writer.call(cs.get_block, writer.snapshot.tip_hash)
        assert tip_block.txs[0].vout[0].script_pubkey == payout
    assert not isinstance(cs, OracleChainState) or cs.calls >= height
