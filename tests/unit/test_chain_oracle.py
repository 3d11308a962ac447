"""The chain oracle (tests/framework/oracle.py `OracleChainState`) catches a planted
disagreement: with one of tinynode's consensus checks switched off or made stricter by a
monkeypatch, the block it then judges wrongly makes the wrapper fail with both verdicts, where
the unpatched node agrees with Core on the same blocks. Also the wrapper's own rules for what
the kernel cannot follow (its clock, invalidateblock, a restart)."""

from __future__ import annotations

import pytest

import tinynode.chain.chainstate as chainstate_mod
from tests.framework.blockbuilder import BlockBuilder, assert_accepted, assert_rejected
from tests.framework.oracle import OracleChainState, require_kernel, restarted
from tinynode.chain.chainstate import ChainState
from tinynode.consensus.errors import RejectReason as R
from tinynode.params import REGTEST
from tinynode.storage.memory import MemoryChainStore
from tinynode.storage.sqlite import SQLiteChainStore


@pytest.fixture
def node():
    require_kernel()
    b = BlockBuilder(REGTEST)
    cs = OracleChainState(ChainState(REGTEST, MemoryChainStore(), now=lambda: b.now))
    for i in range(1, 101):                       # c1..c100: out[0] (c1's coinbase) is mature at 101
        assert_accepted(cs, b.next_block(f"c{i}"))
        b.save_spendable_output()
    yield b, cs
    cs.close()


def _maturity(m: int):
    real = chainstate_mod.check_tx_input_coins

    def planted(tx, coins, spend_height, maturity):
        return real(tx, coins, spend_height, m)
    return planted


def test_unpatched_node_agrees_on_the_edge_cases(node):
    b, cs = node
    premature = b.coinbase_utxo("c2")              # spent at 101: depth 99
    blk = b.next_block("early", spend=premature)
    assert_rejected(cs, blk, R.BAD_TXNS_PREMATURE_SPEND_OF_COINBASE, tip=b["c100"])
    b.set_tip("c100")
    assert_accepted(cs, b.next_block("edge", spend=b.get_spendable_output()))   # depth exactly 100
    b.next_block("bad_height", height=7)
    assert_rejected(cs, b["bad_height"], R.BAD_CB_HEIGHT, tip=b["edge"])
    assert cs.calls == 103


def test_maturity_check_off_is_caught(node, monkeypatch):
    """tinynode accepts a coinbase spent at depth 99; Core says premature: the wrapper fails."""
    b, cs = node
    monkeypatch.setattr(chainstate_mod, "check_tx_input_coins", _maturity(0))
    blk = b.next_block("early", spend=b.coinbase_utxo("c2"))
    with pytest.raises(AssertionError, match=r"tinynode accepted, Core rejected"):
        cs.process_block(blk)


def test_stricter_maturity_is_caught(node, monkeypatch):
    """tinynode refuses a spend at depth exactly 100, which Core accepts: the wrapper fails."""
    b, cs = node
    monkeypatch.setattr(chainstate_mod, "check_tx_input_coins", _maturity(101))
    blk = b.next_block("edge", spend=b.get_spendable_output())
    with pytest.raises(AssertionError, match=r"tinynode rejected .*premature.*, Core accepted"):
        cs.process_block(blk)


def test_bip34_check_off_is_caught(node, monkeypatch):
    """Without `contextual_check_block` a wrong BIP34 height passes tinynode, not Core."""
    b, cs = node
    monkeypatch.setattr(chainstate_mod, "contextual_check_block", lambda *a, **k: None)
    b.next_block("bad_height", height=7)
    with pytest.raises(AssertionError, match=r"tinynode accepted, Core rejected"):
        cs.process_block(b["bad_height"])


def test_time_too_new_is_checked_against_the_nodes_clock():
    """The kernel's clock cannot be set: a time-too-new verdict of tinynode's is checked by
    Core's rule on tinynode's clock instead (a block one second inside the limit is compared)."""
    require_kernel()
    b = BlockBuilder(REGTEST)
    cs = OracleChainState(ChainState(REGTEST, MemoryChainStore(), now=lambda: b.now))
    try:
        assert_accepted(cs, b.next_block("c1"))
        assert_rejected(cs, b.next_block("too_new", time=b.future_time(1)), R.TIME_TOO_NEW, tip=b["c1"])
        b.set_tip("c1")
        assert_accepted(cs, b.next_block("edge", time=b.future_time(0)), tip=b["edge"])
        assert cs.calls == 3
    finally:
        cs.close()


def test_invalidate_suspends_until_reconsidered(node):
    b, cs = node
    assert_accepted(cs, b.next_block("a1"))
    cs.invalidate_block(b["a1"].hash)              # Core cannot follow: no comparison meanwhile
    b.set_tip("c100")
    calls = cs.calls
    assert_accepted(cs, b.next_block("f1"), tip=b["f1"])
    assert cs.calls == calls
    cs.reconsider_block(b["a1"].hash)              # a tie: tinynode stays on f1, the kernel on a1
    assert cs.tip.hash == b["f1"].hash and cs.kernel.tip_hash() == b["a1"].hash and cs.tied
    assert_accepted(cs, b.next_block("f2"), tip=b["f2"])   # more work: both on f2
    assert cs.calls == calls + 1 and not cs.tied
    b.set_tip("a1")
    assert_accepted(cs, b.next_block("a2"), tip=b["f2"])    # equal work: both stay on f2
    assert cs.kernel.tip_hash() == b["f2"].hash and cs.calls == calls + 2


def test_restart_keeps_the_kernel(tmp_path):
    require_kernel()
    b = BlockBuilder(REGTEST)
    path = tmp_path / "chain.sqlite"
    cs = OracleChainState(ChainState(REGTEST, SQLiteChainStore(path), now=lambda: b.now))
    for i in range(1, 4):
        assert_accepted(cs, b.next_block(f"c{i}"))
    cs = restarted(cs, lambda: ChainState(REGTEST, SQLiteChainStore(path), now=lambda: b.now))
    try:
        assert cs.tip.hash == b["c3"].hash
        assert_accepted(cs, b.next_block("c4"), tip=b["c4"])
        assert cs.calls == 1
    finally:
        cs.close()


def test_mutated_copy_of_a_stored_block(node):
    b, cs = node
    real = b.next_block("real")
    assert_accepted(cs, real, tip=real)
    from tinynode.primitives.block import Block
    copy = Block(real.header, real.txs + real.txs)
    assert copy.hash == real.hash
    # Core ProcessNewBlock runs CheckBlock before it looks the hash up: refused, nothing marked
    res = cs.process_block(copy)
    assert res.status == "invalid" and res.error.mutated, res
    assert cs.tip.hash == real.hash and not cs.get_entry(real.hash).failed
