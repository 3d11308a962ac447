"""Named-block scenarios through the single writer (`ChainWriter`), as the node runs them.

A burst of blocks submitted concurrently (so the writer batches commits) must give the same
reject reasons, tip, events and UTXO set as one-by-one `ChainState.process_block`, and what
the SQLite store holds after `stop()` is exactly that state. The one-by-one reference and the
writer's chainstate are both checked by Core's kernel (tests/framework/oracle.py): same
verdict and tip after every block.

    c1 .. c100 -> a1 -> a2 -> a3                 (a: spends out0..out2)
               \\-> d1 -> d2*                    (d2: wrong BIP34 height in its coinbase)
               \\-> e1 -> e2 -> e3 -> e4         (e: heavier, spends out0, out1 again)
"""

from __future__ import annotations

import asyncio

from tests.framework.blockbuilder import BlockBuilder
from tests.framework.miniwallet import key
from tests.framework.oracle import OracleChainState, with_oracle
from tinynode.chain.chainstate import ChainState
from tinynode.chain.events import BlockConnected, BlockDisconnected, TipChanged
from tinynode.chain.writer import ChainWriter
from tinynode.consensus.errors import RejectReason as R
from tinynode.params import REGTEST
from tinynode.storage.memory import MemoryChainStore
from tinynode.storage.sqlite import SQLiteChainStore


def _build() -> BlockBuilder:
    b = BlockBuilder(REGTEST)
    for i in range(1, 101):
        b.next_block(f"c{i}")
        b.save_spendable_output()
    out = [b.get_spendable_output() for _ in range(3)]
    for i in range(1, 4):
        b.next_block(f"a{i}", spend=out[i - 1])
    b.set_tip("c100")
    b.next_block("d1")
    b.next_block("d2", height=999)            # wrong BIP34 height: refused on arrival
    b.set_tip("c100")
    b.next_block("e1", spend=out[0])
    b.next_block("e2", spend=out[1])
    b.next_block("e3", txs=[b.wallet.create_spend(b.tx_utxos(b.spend_txs["e1"])[0], n_outputs=1,
                                                  outputs=[(key(3).script_pubkey, 10**8)])],
                 fees=b.spend_txs["e1"].vout[0].value - 10**8)
    b.next_block("e4")
    return b


async def test_burst_through_writer_matches_direct_processing(tmp_path):
    b = _build()
    order = ([b[f"c{i}"] for i in range(1, 101)] + [b["a1"], b["a2"], b["a3"], b["d1"], b["d2"]]
             + [b["e1"], b["e2"], b["e3"], b["e4"]])

    # reference: one block at a time, memory store
    ref = with_oracle(ChainState(REGTEST, MemoryChainStore(), now=lambda: b.now))
    ref_results = [ref.process_block(blk) for blk in order]
    ref_hash, ref_tip = ref.utxo_set_hash(), ref.tip.hash
    if isinstance(ref, OracleChainState):
        assert ref.calls == len(order)
    ref.close()
    assert ref_tip == b["e4"].hash
    assert [r.reason for r in ref_results if r.error] == [R.BAD_CB_HEIGHT]

    path = tmp_path / "chain.sqlite"
    checked = []

    def open_checked():
        checked.append(with_oracle(ChainState(REGTEST, SQLiteChainStore(path), now=lambda: b.now)))
        return checked[-1]
    writer = ChainWriter(open_checked)
    events = []
    writer.subscribe_async(events.append)
    async with writer:
        results = await asyncio.gather(*(writer.submit_block(blk) for blk in order))
        assert [(r.status, r.reason) for r in results] == [(r.status, r.reason) for r in ref_results]
        snap = writer.snapshot
        assert snap.tip_hash == b["e4"].hash and snap.height == 104
        assert await writer.call(lambda: writer.chainstate.utxo_set_hash()) == ref_hash
        coins_k3 = await writer.call(writer.chainstate.coins_for_script, key(3).script_pubkey)
        assert [c.value for _, c in coins_k3] == [10**8]
        assert all(cs.calls == len(order) for cs in checked if isinstance(cs, OracleChainState))
    # events, in order, on the loop: 103 connects, then the reorg a3..a1 -> e1..e4
    names = [(type(e).__name__, b.name_of(e.block.hash)) for e in events
             if isinstance(e, (BlockConnected, BlockDisconnected))]
    assert names[:100] == [("BlockConnected", f"c{i}") for i in range(1, 101)]
    assert names[100:] == ([("BlockConnected", f"a{i}") for i in (1, 2, 3)]
                           + [("BlockDisconnected", f"a{i}") for i in (3, 2, 1)]
                           + [("BlockConnected", f"e{i}") for i in (1, 2, 3, 4)])
    reorgs = [e for e in events if isinstance(e, TipChanged) and e.disconnected]
    assert len(reorgs) == 1 and reorgs[0].disconnected == 3 and reorgs[0].new_tip.hash == b["e4"].hash

    # what the writer left on disk is exactly that state
    again = ChainState(REGTEST, SQLiteChainStore(path), now=lambda: b.now)
    try:
        assert again.tip.hash == b["e4"].hash
        assert again.utxo_set_hash() == ref_hash
        assert again.get_entry(b["d2"].hash).failed
    finally:
        again.close()
