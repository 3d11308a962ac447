"""Core's VerifyDB (chain/verify.py, -checkblocks/-checklevel and `verifychain`) and MuHash3072
(chain/muhash.py, `gettxoutsetinfo hash_type=muhash`)."""

from __future__ import annotations

import logging

import pytest

from tinynode.chain.chainstate import ChainState
from tinynode.chain.muhash import MuHash3072
from tinynode.chain.verify import VerifyDBResult, verify_db
from tinynode.storage.base import StoreBatch, coin_key, serialize_undo
from tinynode.storage.memory import MemoryChainStore
from tinynode.primitives.coin import Coin
from tinynode.primitives.tx import OutPoint

from tests.unit.test_chain_reindex import PARAMS, scenario


def test_muhash_matches_cores_vector():
    """Core's MuHash3072 unit test (and test_framework/crypto/muhash.py)."""
    m = MuHash3072()
    m.insert(b"\x00" * 32)
    m.insert(b"\x01" + b"\x00" * 31)
    m.remove(b"\x02" + b"\x00" * 31)
    assert m.digest()[::-1].hex() == "10d312b100cbd32ada024a6646e40d3482fcff103668d2625f10002a607d5863"


def _chain():
    cs = ChainState(PARAMS, MemoryChainStore())
    best, _, txs = scenario()
    for b in best:
        cs.process_block(b)
    cs.flush()
    return cs, best, txs


def test_muhash_of_the_utxo_set_is_order_free_and_differs_from_hash_serialized_3():
    cs, best, _ = _chain()
    st = cs.utxo_stats(with_muhash=True)
    assert st.hash_serialized is None and len(st.muhash) == 32
    assert st.muhash != cs.utxo_stats().hash_serialized
    assert cs.utxo_stats(with_muhash=True).muhash == st.muhash
    empty = ChainState(PARAMS, MemoryChainStore()).utxo_stats(with_muhash=True).muhash
    assert empty == MuHash3072().digest()


@pytest.mark.parametrize("level", [0, 1, 2, 3, 4])
def test_a_sound_chain_verifies_at_every_level(level, caplog):
    cs, best, _ = _chain()
    caplog.set_level(logging.INFO)
    writes = cs.store.writes
    assert verify_db(cs, level, 0) is VerifyDBResult.SUCCESS
    assert f"Verifying last 6 blocks at level {level}" in caplog.text
    assert "Verification: No coin database inconsistencies in last 6 blocks" in caplog.text
    assert cs.tip.hash == best[-1].hash and cs.store.writes == writes   # nothing written


def test_a_coin_missing_from_the_set_is_an_inconsistency(caplog):
    cs, best, txs = _chain()
    # the output of b6's tx vanishes from the coins: disconnecting b6 finds it missing
    cs.store.write(StoreBatch(coins={coin_key(OutPoint(txs[2].txid, 0)): None}))
    cs.coins.clear()
    caplog.set_level(logging.INFO)
    assert verify_db(cs, 3, 6) is VerifyDBResult.CORRUPTED_BLOCK_DB
    assert "Verification error: coin database inconsistencies found" in caplog.text
    assert verify_db(cs, 2, 6) is VerifyDBResult.SUCCESS     # below level 3 the coins are not read


def test_undo_data_that_does_not_fit_the_block_is_irrecoverable(caplog):
    cs, best, _ = _chain()
    cs.store.write(StoreBatch(undo={best[-1].hash: serialize_undo([Coin(1, b"\x51", 1, False)] * 3)}))
    caplog.set_level(logging.INFO)
    assert verify_db(cs, 3, 1) is VerifyDBResult.CORRUPTED_BLOCK_DB
    assert "irrecoverable inconsistency in block data at 6" in caplog.text
