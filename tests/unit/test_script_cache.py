"""The script execution cache (Core's g_scriptExecutionCache): a tx whose scripts the mempool
verified is not verified again when a block confirms it; a tx the mempool never saw is; a hit
is consumed; entries are bound to the flags and to the witness (wtxid)."""
from __future__ import annotations

from dataclasses import replace

import pytest

from tests.framework.blockbuilder import assert_accepted, assert_rejected
from tests.unit.test_chain_scenarios import make_node  # noqa: F401 (fixture)
from tests.unit.test_segwit_chain import WPKH, _base, _fund
from tinynode.consensus.block_checks import script_flags_for_height
from tinynode.consensus.errors import RejectReason as R
from tinynode.mempool.pool import Mempool
from tinynode.params import REGTEST
from tinynode.primitives.tx import Tx
from tinynode.script.cache import ScriptExecutionCache, is_superset
from tinynode.script.flags import STANDARD_FLAGS, ScriptFlags


def test_entries_are_bound_to_wtxid_and_flags_and_consumed_once():
    c = ScriptExecutionCache()
    w = bytes(range(32))
    block_flags = int(ScriptFlags.P2SH | ScriptFlags.WITNESS)
    c.add(w, STANDARD_FLAGS, block_flags)
    assert not c.take(w, block_flags | ScriptFlags.TAPROOT)   # other flags: not known valid
    assert not c.take(bytes(32), block_flags)                  # another tx
    assert c.take(w, block_flags) and not c.take(w, block_flags)   # erased on the hit
    assert (c.hits, c.misses) == (1, 3)


def test_a_check_under_weaker_flags_is_not_stored():
    c = ScriptExecutionCache()
    c.add(b"\x01" * 32, int(ScriptFlags.P2SH), int(ScriptFlags.P2SH | ScriptFlags.WITNESS))
    assert len(c) == 0


def test_bounded_oldest_first_and_keys_differ_per_instance():
    c = ScriptExecutionCache(max_entries=3)
    for i in range(5):
        c.add(bytes([i]) * 32, STANDARD_FLAGS, 1)
    assert len(c) == 3
    assert not c.take(bytes([0]) * 32, 1) and not c.take(bytes([1]) * 32, 1)
    assert c.take(bytes([4]) * 32, 1)
    assert ScriptExecutionCache().key(bytes(32), 1) != ScriptExecutionCache().key(bytes(32), 1)


@pytest.mark.parametrize("height", [0, 1, 2, 100, 10_000, 2**31 - 1])
def test_standard_flags_contain_every_blocks_consensus_flags(height):
    """What lets the mempool's standard-flags pass stand for the block's check."""
    assert is_superset(STANDARD_FLAGS, script_flags_for_height(height, REGTEST))


class _Counting:
    """Wraps the chain's check queue to record which txs' inputs it verified."""

    def __init__(self, queue):
        self.queue, self.txids = queue, []

    def check(self, checks, flags, *a, **kw):
        self.txids += [c[0].txid for c in checks]
        return self.queue.check(checks, flags, *a, **kw)

    def __getattr__(self, name):
        return getattr(self.queue, name)


def test_block_skips_scripts_the_mempool_verified(make_node):
    b, cs = _base(make_node)
    fund, (u1, u2) = _fund(b, [WPKH, WPKH])
    b.next_block("f", txs=[fund], fees=1000)
    assert_accepted(cs, b["f"], tip=b["f"])
    seen = b.wallet.spend_many([u1], [(b.wallet.script_pubkey, u1.value - 1000)], fee=1000)
    unseen = b.wallet.spend_many([u2], [(b.wallet.script_pubkey, u2.value - 1000)], fee=1000)
    pool = Mempool(REGTEST, cs)
    pool.accept(seen, b.now)
    assert len(cs.script_cache) == 1
    counting = _Counting(cs.script_check_queue)
    cs.script_check_queue = counting
    blk = b.next_block("g", txs=[seen, unseen], fees=2000)
    assert_accepted(cs, blk, tip=blk)
    assert counting.txids == [unseen.txid]          # only the tx the mempool never checked
    assert cs.script_cache.hits == 1 and len(cs.script_cache) == 0


def test_a_cached_tx_with_another_witness_is_checked_and_fails(make_node):
    """The entry is keyed by wtxid: the same tx with a broken witness (same txid) is verified
    in the block, and the block fails with Core's reason."""
    b, cs = _base(make_node)
    fund, (u,) = _fund(b, [WPKH])
    b.next_block("f", txs=[fund], fees=1000)
    assert_accepted(cs, b["f"], tip=b["f"])
    good = b.wallet.spend_many([u], [(b.wallet.script_pubkey, u.value - 1000)], fee=1000)
    Mempool(REGTEST, cs).accept(good, b.now)
    sig, pub = good.vin[0].witness
    bad_sig = sig[:-2] + bytes([sig[-2] ^ 1]) + sig[-1:]
    bad = Tx(good.version, (replace(good.vin[0], witness=(bad_sig, pub)),), good.vout, good.locktime)
    assert bad.txid == good.txid and bad.wtxid != good.wtxid
    blk = b.next_block("g", txs=[bad], fees=1000)
    assert_rejected(cs, blk, R.BLOCK_SCRIPT_VERIFY_FLAG_FAILED)
