"""A disconnected block keeps its undo record (Core keeps the rev data and BLOCK_HAVE_UNDO of a
block a reorg disconnects); a reconnection writes the same record, pruning deletes it with the
body, and the tx index still learns which blocks went away."""

from __future__ import annotations

import pytest

from tinynode.chain.chainstate import MIN_BLOCKS_TO_KEEP, PRUNE_TARGET_MANUAL, ChainState
from tinynode.primitives.tx import COIN
from tinynode.storage.memory import MemoryChainStore
from tinynode.storage.sqlite import SQLiteChainStore

from tests.framework.oracle import with_oracle
from tests.unit.test_chain_unit_helpers import PARAMS, Builder, base_chain, spend

BASE = base_chain()


def _on_base(cs, oracle: bool = True):
    if oracle:
        cs = with_oracle(cs)
    for blk in BASE:
        assert cs.process_block(blk).status == "connected"
    cs.flush()
    return cs


def _spend_chain(n: int, B: Builder | None = None):
    """`n` blocks on BASE, each spending one mature BASE coinbase."""
    B = B or Builder(base=BASE)
    out, prev = [], BASE[-1]
    for i in range(n):
        prev = B.next(prev, (spend(BASE[i].txs[0], 49 * COIN),), fees=COIN)
        out.append(prev)
    return out


def _record(cs, block_hash: bytes) -> bytes:
    """The block's undo record, staged or stored."""
    raw = cs._dirty.undo.get(block_hash)
    raw = raw if raw is not None else cs.store.get_undo(block_hash)
    assert raw is not None
    return bytes(raw)


@pytest.mark.parametrize("store", ["memory", "sqlite"])
@pytest.mark.parametrize("flush_between", [False, True])
def test_reorg_keeps_undo_and_reconnect_rewrites_it(tmp_path, store, flush_between):
    """Blocks a heavier fork disconnects keep their records (staged or stored, flushed or not);
    switching back reconnects them with the same records; the tx index moves both ways."""
    st = MemoryChainStore() if store == "memory" else SQLiteChainStore(tmp_path / "c.sqlite")
    cs = _on_base(ChainState(PARAMS, st, flush_blocks=1000, flush_seconds=1e9))
    B = Builder(base=BASE)
    a = _spend_chain(2, B)
    for blk in a:
        assert cs.process_block(blk).status == "connected"
    if flush_between:
        cs.flush()
    records = {b.hash: _record(cs, b.hash) for b in a}
    fork = Builder(base=BASE).chain(BASE[-1], 3)
    for blk in fork:
        cs.process_block(blk)
    assert cs.tip.hash == fork[-1].hash
    cs.flush()
    for b in a:
        assert bytes(cs.store.get_undo(b.hash)) == records[b.hash]
    spend_txid = a[0].txs[1].txid
    assert cs.store.get_tx_block(spend_txid) is None          # the tx index dropped a's txs
    # a heavier a-branch: a[0], a[1] reconnect (their records written again, equal) and a[2] on top
    a2 = B.chain(a[-1], 2)
    for blk in a2:
        cs.process_block(blk)
    assert cs.tip.hash == a2[-1].hash
    cs.flush()
    for b in a:
        assert bytes(cs.store.get_undo(b.hash)) == records[b.hash]
    assert cs.store.get_tx_block(spend_txid) == a[0].hash
    for b in fork:                                             # now the fork's are kept
        assert cs.store.get_undo(b.hash) is not None
    cs.close()


def test_disconnect_and_reconnect_within_one_unflushed_window(tmp_path):
    """invalidate then reconsider without any flush between: the staged record survives the
    disconnection, the tx index ends as before, and a restart is consistent."""
    p = tmp_path / "c.sqlite"
    cs = _on_base(ChainState(PARAMS, SQLiteChainStore(p), flush_blocks=1000, flush_seconds=1e9))
    a = _spend_chain(2)
    for blk in a:
        assert cs.process_block(blk).status == "connected"
    staged = bytes(cs._dirty.undo[a[-1].hash])
    cs.invalidate_block(a[-1].hash)
    assert cs.tip.hash == a[0].hash
    assert _record(cs, a[-1].hash) == staged   # kept, not replaced by a deletion
    cs.flush()
    assert bytes(cs.store.get_undo(a[-1].hash)) == staged
    assert cs.store.get_tx_block(a[-1].txs[1].txid) is None
    cs.reconsider_block(a[-1].hash)
    assert cs.tip.hash == a[-1].hash
    cs.flush()
    assert cs.store.get_tx_block(a[-1].txs[1].txid) == a[-1].hash
    h = cs.utxo_set_hash()
    cs.close()
    again = ChainState(PARAMS, SQLiteChainStore(p))
    assert again.tip.hash == a[-1].hash and again.utxo_set_hash() == h
    again.close()


def test_kill_after_reorg_before_coins_flush_restarts_consistently(tmp_path):
    """Blocks committed (bodies, index, undo) above a store tip whose coins were not written,
    then a reorg, then kill -9: the restart disconnects the store's tip with its kept record."""
    p = tmp_path / "c.sqlite"
    cs = _on_base(ChainState(PARAMS, SQLiteChainStore(p)))
    cs.coins_flush_seconds = 1e9
    a = _spend_chain(3)
    for blk in a:
        assert cs.process_block(blk).status == "connected"
    cs.flush()
    fork = Builder(base=BASE).chain(BASE[-1], 4)
    for blk in fork:
        cs.process_block(blk)
    cs.commit()                                 # bodies and records written, coins not
    assert cs.store.get_tip() == a[-1].hash and cs.tip.hash == fork[-1].hash
    killed = ChainState(PARAMS, SQLiteChainStore(p))   # as after kill -9 now
    assert killed.tip.hash == fork[-1].hash and killed.utxo_set_hash() == cs.utxo_set_hash()
    killed.flush()
    assert all(killed.store.get_undo(b.hash) is not None for b in a)
    killed.close()
    cs.close()


def test_pruning_deletes_a_stale_blocks_undo_with_its_body():
    """Core PruneOneBlockFile: the pruned blocks' rev data goes with their bodies, stale or not."""
    cs = _on_base(ChainState(PARAMS, MemoryChainStore()), oracle=False)
    cs.configure_prune(PRUNE_TARGET_MANUAL, 0)
    a = _spend_chain(1)
    assert cs.process_block(a[0]).status == "connected"
    B = Builder(base=BASE)
    fork = B.chain(BASE[-1], 2)
    for blk in fork:
        cs.process_block(blk)
    assert cs.tip.hash == fork[-1].hash and cs.store.get_undo(a[0].hash) is not None
    prev = fork[-1]
    for i in range(MIN_BLOCKS_TO_KEEP + 1):   # past regtest's halving at 150: paid at 1 BTC
        prev = B.next(prev, cb_value=COIN, cb_extra=i.to_bytes(2, "little"))
        assert cs.process_block(prev).status == "connected"
    assert cs.prune_to(len(BASE) + 2) > 0
    assert not cs.store.has_block(a[0].hash) and cs.store.get_undo(a[0].hash) is None
    assert cs.store.get_undo(fork[0].hash) is None
    assert cs.is_block_pruned(cs.get_entry(a[0].hash))
    cs.close()
