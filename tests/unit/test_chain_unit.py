"""ChainState unit tests: extend, spend, reorgs, invalid branches, orphans, mutated blocks,
invalidate/reconsider, restart, headers-first, locators. Run against both stores.

Every test runs on Bitcoin's regtest as it is and starts on `base_chain()` (heights 1..100,
delivered by `make_cs`), so the spends use base coinbases (`C1` is height 1's) and heights are
`H0 + n`. Every node built by `make_cs` is checked by Core's kernel (tests/framework/oracle.py
`OracleChainState`): after each block, same verdict and same tip. Not checked by the kernel:
`test_retarget_more_work_fewer_blocks` (its own retargeting params; Core's regtest never
retargets) and the `script_checks=False` node of `test_bip30_and_script_failure` (the kernel
always checks scripts).

Fork diagrams use the style of Core's feature_block.py (`base` is c1..c100):

    base -> b1 -> b2 -> b3 -> b4            (active)
                   \\-> f3 -> f4 -> f5       (heavier side branch)
"""

from __future__ import annotations

import dataclasses

import pytest

from tinynode.chain.chainstate import ChainState
from tinynode.chain.events import BlockConnected, BlockDisconnected, TipChanged
from tinynode.chain.index import BlockStatus
from tinynode.consensus.errors import RejectReason as R
from tinynode.primitives.block import Block
from tinynode.primitives.coin import Coin
from tinynode.primitives.tx import COIN, OutPoint
from tinynode.storage.memory import MemoryChainStore
from tinynode.storage.sqlite import SQLiteChainStore

from tests.framework.oracle import OracleChainState, restarted, with_oracle
from tests.unit.test_chain_unit_helpers import (
    BASE_HEIGHT as H0, OP_TRUE, PARAMS, Builder, base_chain, make_block, spend,
)

G = PARAMS.genesis
BASE = base_chain()
T = BASE[-1]                 # the tip every test builds on (height H0)
C1 = BASE[0].txs[0]          # height 1's coinbase: mature from height 101


def base_builder() -> Builder:
    return Builder(base=BASE)


@pytest.fixture(params=["memory", "sqlite"])
def make_cs(request, tmp_path):
    """`make(path_name, oracle=True, base=True, **chainstate_kw)`: a ChainState on the
    parametrized store, checked by Core's kernel, with `BASE` delivered."""
    made = []

    def make(path_name="chain.sqlite", oracle=True, base=True, **kw):
        store = MemoryChainStore() if request.param == "memory" else SQLiteChainStore(tmp_path / path_name)
        cs = ChainState(PARAMS, store, **kw)
        if oracle:
            cs = with_oracle(cs)
        made.append(cs)
        for blk in BASE if base else ():
            assert cs.process_block(blk).status == "connected"
        return cs
    yield make
    for cs in made:
        if isinstance(cs, OracleChainState):
            assert cs.calls > 0, "the kernel compared nothing"
        cs.close()


def events_of(cs):
    evs = []
    cs.subscribe(evs.append)
    return evs


def test_genesis_only(make_cs):
    cs = make_cs(oracle=False, base=False)
    assert cs.height == 0 and cs.tip.hash == G.hash
    assert cs.get_block(G.hash) == G
    assert cs.coin_count() == 0
    assert cs.block_locator() == [G.hash]


def test_base_chain(make_cs):
    cs = make_cs()
    assert cs.height == H0 and cs.tip.hash == T.hash
    assert cs.coin_count() == H0


def test_extend_and_spend(make_cs):
    cs = make_cs()
    evs = events_of(cs)
    B = base_builder()
    blocks = B.chain(T, 3)
    for b in blocks:
        assert cs.process_block(b).status == "connected"
    assert cs.height == H0 + 3 and cs.tip.hash == blocks[-1].hash
    t = spend(C1, 49 * COIN, outputs=2)
    b4 = B.next(blocks[-1], (t,), fees=COIN)
    r = cs.process_block(b4)
    assert r.status == "connected", r
    assert cs.get_coin(OutPoint(C1.txid, 0)) is None
    assert cs.get_coin(OutPoint(t.txid, 1)) == Coin(49 * COIN // 2, OP_TRUE, H0 + 4, False)
    assert cs.get_tx(t.txid) == (t, b4.hash, H0 + 4)
    assert len(cs.coins_for_script(OP_TRUE)) == H0 + 4 - 1 + 2   # coinbases, one spent, two outputs
    kinds = [type(e).__name__ for e in evs]
    assert kinds == ["BlockConnected", "TipChanged"] * 4
    assert evs[-2].block == b4 and evs[-1].new_tip.hash == b4.hash and evs[-1].disconnected == 0
    assert cs.tip.status & BlockStatus.VALID_SCRIPTS
    assert cs.process_block(b4).status == "duplicate"


def test_reorg_with_spends_on_both_sides(make_cs):
    r"""
        base -> b1 -> b2 -> b3 -> b4(ta spends C1)
                         \-> f3(tb spends C1 too) -> f4 -> f5(tc spends tb)
    """
    cs = make_cs()
    B = base_builder()
    b1, b2, b3 = B.chain(T, 3)
    for b in (b1, b2, b3):
        assert cs.process_block(b).status == "connected"
    ta = spend(C1, 50 * COIN)
    b4 = B.next(b3, (ta,))
    assert cs.process_block(b4).status == "connected"
    tb = spend(C1, 50 * COIN, spk=b"\x52")
    f3 = B.next(b2, (tb,), cb_extra=b"f")
    f4 = B.next(f3, cb_extra=b"f")
    tc = spend(tb, 50 * COIN)
    f5 = B.next(f4, (tc,), cb_extra=b"f")
    evs = events_of(cs)
    assert cs.process_block(f3).status == "accepted"
    assert cs.process_block(f4).status == "accepted"   # equal work: first seen stays
    assert cs.tip.hash == b4.hash
    assert cs.process_block(f5).status == "connected"
    assert cs.tip.hash == f5.hash and cs.height == H0 + 5
    # events: b4, b3 disconnected, then f3, f4, f5 connected, one TipChanged with depth 2
    assert [(type(e).__name__, getattr(e, "block", None)) for e in evs[:5]] == [
        ("BlockDisconnected", b4), ("BlockDisconnected", b3),
        ("BlockConnected", f3), ("BlockConnected", f4), ("BlockConnected", f5)]
    assert isinstance(evs[5], TipChanged) and evs[5].disconnected == 2
    assert cs.get_coin(OutPoint(C1.txid, 0)) is None          # spent by tb now
    assert cs.get_coin(OutPoint(ta.txid, 0)) is None          # ta undone
    assert cs.get_coin(OutPoint(tb.txid, 0)) is None          # spent by tc
    assert cs.get_coin(OutPoint(b3.txs[0].txid, 0)) is None   # b3 disconnected
    assert cs.get_coin(OutPoint(tc.txid, 0)) is not None
    assert cs.get_tx(ta.txid) is None and cs.get_tx(tc.txid)[1] == f5.hash
    # equivalence: a fresh chainstate connecting only the final chain has the same UTXO set
    fresh = make_cs("fresh.sqlite")
    for b in (b1, b2, f3, f4, f5):
        assert fresh.process_block(b).status == "connected"
    assert fresh.utxo_set_hash() == cs.utxo_set_hash()
    assert fresh.coins_for_script(OP_TRUE) == cs.coins_for_script(OP_TRUE)


def test_invalid_block_inside_heavier_branch(make_cs):
    r"""
        base -> b1 -> b2 -> b3
                  \-> f2 -> f3(bad-cb-amount) -> f4 -> f5
    The node stays on b3 ... until f2's branch is valid; f3 and descendants are marked.
    """
    cs = make_cs()
    B = base_builder()
    b1, b2, b3 = B.chain(T, 3)
    for b in (b1, b2, b3):
        cs.process_block(b)
    f2 = B.next(b1, cb_extra=b"f")
    f3 = B.next(f2, cb_value=50 * COIN + 1, cb_extra=b"f")
    f4 = B.next(f3, cb_extra=b"f")
    f5 = B.next(f4, cb_extra=b"f")
    assert cs.process_block(f2).status == "accepted"
    assert cs.process_block(f3).status == "accepted"   # not yet more work than b3
    r = cs.process_block(f4)
    assert r.status == "invalid" and r.reason == R.BAD_PREVBLK
    assert cs.get_entry(f3.hash).status & BlockStatus.FAILED
    assert cs.tip.hash == b3.hash
    r = cs.process_block(f5)
    assert r.status == "invalid"
    assert cs.tip.hash == b3.hash
    assert cs.process_block(f3).reason == R.DUPLICATE_INVALID


def test_failing_block_reported_and_marked(make_cs):
    cs = make_cs()
    B = base_builder()
    b1, b2 = B.chain(T, 2)
    cs.process_block(b1)
    cs.process_block(b2)
    bad = B.next(b2, cb_value=50 * COIN + 1)
    r = cs.process_block(bad)
    assert r.status == "invalid" and r.reason == R.BAD_CB_AMOUNT and not r.error.mutated
    assert cs.get_entry(bad.hash).status & BlockStatus.FAILED
    child = B.next(bad)
    r = cs.process_block(child)
    assert r.reason == R.BAD_PREVBLK and cs.tip.hash == b2.hash
    assert cs.best_header.hash == b2.hash


@pytest.mark.parametrize("case", ["double_in_block", "double_across", "immature", "missing"])
def test_input_failures(make_cs, case):
    cs = make_cs()
    B = base_builder()
    blocks = B.chain(T, 3)
    for b in blocks:
        cs.process_block(b)
    tip = blocks[-1]
    if case == "double_in_block":
        t1 = spend(C1, 10 * COIN)
        t2 = spend(C1, 20 * COIN)
        bad, expected = B.next(tip, (t1, t2)), R.BAD_TXNS_INPUTS_MISSINGORSPENT
    elif case == "double_across":
        t1 = spend(C1, 10 * COIN)
        b4 = B.next(tip, (t1,), fees=40 * COIN)
        assert cs.process_block(b4).status == "connected"
        bad, expected = B.next(b4, (spend(C1, 20 * COIN),)), R.BAD_TXNS_INPUTS_MISSINGORSPENT
    elif case == "immature":
        cb5 = BASE[4].txs[0]     # height 5, spent at H0 + 4 = 104: depth 99 < maturity 100
        bad, expected = B.next(tip, (spend(cb5, COIN),), cb_extra=b"i"), R.BAD_TXNS_PREMATURE_SPEND_OF_COINBASE
    else:
        bad, expected = B.next(tip, (spend(OutPoint(b"\x77" * 32, 0), COIN),)), R.BAD_TXNS_INPUTS_MISSINGORSPENT
    r = cs.process_block(bad)
    assert r.reason == expected
    assert cs.tip.hash != bad.hash
    if case == "immature":       # the coinbase one block older (depth exactly 100) is mature
        ok = B.next(tip, (spend(BASE[3].txs[0], COIN),), fees=49 * COIN, cb_extra=b"m")
        assert cs.process_block(ok).status == "connected"


def test_bip30_and_script_failure(make_cs):
    cs = make_cs()
    B = base_builder()
    blocks = B.chain(T, 3)
    for b in blocks:
        cs.process_block(b)
    t = spend(C1, 10 * COIN, spk=b"\x00")   # output nobody can spend (OP_0)
    b4 = B.next(blocks[-1], (t,), fees=40 * COIN)
    assert cs.process_block(b4).status == "connected"
    # re-including a confirmed tx whose outputs are unspent overwrites them: BIP30
    assert cs.process_block(B.next(b4, (t,))).reason == R.BAD_TXNS_BIP30
    bad = B.next(b4, (spend(t, COIN),), fees=9 * COIN)
    r = cs.process_block(bad)
    assert r.reason == R.BLOCK_SCRIPT_VERIFY_FLAG_FAILED
    assert r.error.reject_string.startswith("block-script-verify-flag-failed (")
    # the same block passes with script checks off (every other rule still applies); the
    # kernel always checks scripts, so this node is not compared with it
    cs2 = make_cs("noscripts.sqlite", oracle=False, script_checks=False)
    for b in (*blocks, b4):
        cs2.process_block(b)
    assert cs2.process_block(bad).status == "connected"


def test_orphans_out_of_order(make_cs):
    cs = make_cs()
    B = base_builder()
    blocks = B.chain(T, 30)
    for b in reversed(blocks[1:]):
        assert cs.process_block(b).status == "orphan"
    assert cs.process_block(blocks[5]).status == "duplicate"
    assert cs.height == H0 and cs.unconnected_count == 29
    assert cs.process_block(blocks[0]).status == "connected"
    assert cs.height == H0 + 30 and cs.tip.hash == blocks[-1].hash and cs.unconnected_count == 0


def test_unconnected_store_is_bounded(make_cs):
    cs = make_cs(max_unconnected_blocks=5)
    B = base_builder()
    blocks = B.chain(T, 12)
    for b in blocks[1:]:
        cs.process_block(b)
    assert cs.unconnected_count == 5


def test_mutated_block_then_real_one(make_cs):
    cs = make_cs()
    B = base_builder()
    blocks = B.chain(T, 3)
    for b in blocks:
        cs.process_block(b)
    t1 = spend(C1, 10 * COIN)
    t2 = spend(t1, 9 * COIN)
    real = B.next(blocks[-1], (t1, t2), fees=COIN * 41)
    mutated = Block(real.header, real.txs + (t2,))
    assert mutated.hash == real.hash
    r = cs.process_block(mutated)
    assert r.reason == R.BAD_TXNS_DUPLICATE and r.error.mutated
    assert not (cs.get_entry(real.hash) and cs.get_entry(real.hash).failed)
    wrong_root = Block(real.header, real.txs[:2])
    assert cs.process_block(wrong_root).reason == R.BAD_TXNMRKLROOT
    assert cs.process_block(real).status == "connected"


def test_header_failures(make_cs):
    now = T.header.time + 1000
    cs = make_cs(now=lambda: now)
    B = base_builder()
    b1 = B.next(T)
    cs.process_block(b1)
    assert cs.process_block(B.next(b1, time=G.header.time)).reason == R.TIME_TOO_OLD
    assert cs.process_block(B.next(b1, time=now + 7201)).reason == R.TIME_TOO_NEW
    assert cs.process_block(B.next(b1, time=now + 7200)).status == "connected"
    assert cs.process_block(B.next(b1, bits=0x207FFFFE, cb_extra=b"x")).reason in (R.BAD_DIFFBITS, R.HIGH_HASH)
    assert cs.process_block(B.next(b1, version=3, cb_extra=b"v")).reason == R.BAD_VERSION
    with pytest.raises(Exception):
        cs.process_headers([make_block(b"\x01" * 32, 5, now).header])


def test_headers_first_then_blocks(make_cs):
    cs = make_cs()
    B = base_builder()
    blocks = B.chain(T, 15)
    entries = cs.process_headers([b.header for b in blocks])
    assert [e.height for e in entries] == list(range(H0 + 1, H0 + 16))
    assert cs.best_header.hash == blocks[-1].hash and cs.height == H0
    # blocks arrive out of order but parents' headers are known: stored, connected when complete
    for b in reversed(blocks[1:]):
        assert cs.process_block(b).status == "accepted"
    assert cs.process_block(blocks[0]).status == "connected"
    assert cs.height == H0 + 15
    loc = cs.block_locator()
    heights = [cs.get_entry(h).height for h in loc]
    assert loc[0] == blocks[-1].hash and loc[-1] == G.hash
    assert heights[:10] == list(range(H0 + 15, H0 + 5, -1))          # ten steps of one back
    assert all(a > b for a, b in zip(heights, heights[1:])) and len(loc) < 20
    assert cs.find_fork([b"\x99" * 32, blocks[4].hash]).hash == blocks[4].hash
    assert cs.find_fork([]).hash == G.hash
    hs = cs.headers_after([blocks[4].hash], None, 3)
    assert [h.hash for h in hs] == [b.hash for b in blocks[5:8]]
    hs = cs.headers_after([blocks[4].hash], blocks[6].hash)
    assert [h.hash for h in hs] == [b.hash for b in blocks[5:7]]
    assert cs.get_block_hash(H0 + 7) == blocks[6].hash


def test_invalidate_and_reconsider(make_cs):
    r"""
        base -> b1 -> b2 -> b3 -> b4     invalidate b3 → tip b2 ... f3 → tip f3
                         \-> f3
    (The kernel cannot invalidate: the oracle compares again once b3 is reconsidered.)
    """
    cs = make_cs()
    B = base_builder()
    b1, b2, b3, b4 = B.chain(T, 4)
    f3 = B.next(b2, cb_extra=b"f")
    for b in (b1, b2, b3, b4, f3):
        cs.process_block(b)
    assert cs.tip.hash == b4.hash
    before = cs.utxo_set_hash()
    cs.invalidate_block(b3.hash)
    assert cs.tip.hash == f3.hash
    assert cs.get_entry(b4.hash).status & BlockStatus.FAILED_PARENT
    cs.reconsider_block(b3.hash)
    assert cs.tip.hash == b4.hash and cs.utxo_set_hash() == before
    tips = dict((e.hash, s) for e, s in cs.chain_tips())
    assert tips[b4.hash] == "active" and tips[f3.hash] == "valid-fork"
    b5 = B.next(b4)
    assert cs.process_block(b5).status == "connected"        # compared with the kernel again


def test_restart_keeps_tip(tmp_path):
    p = tmp_path / "chain.sqlite"
    cs = with_oracle(ChainState(PARAMS, SQLiteChainStore(p)))
    B = base_builder()
    blocks = B.chain(T, 6)
    for b in (*BASE, *blocks):
        assert cs.process_block(b).error is None
    side = B.next(blocks[2], cb_extra=b"s")
    cs.process_block(side)
    h = cs.utxo_set_hash()
    cs = restarted(cs, lambda: ChainState(PARAMS, SQLiteChainStore(p)))
    assert cs.tip.hash == blocks[-1].hash and cs.height == H0 + 6
    assert cs.utxo_set_hash() == h
    assert cs.get_entry(side.hash).have_data
    b7 = B.next(blocks[-1], (spend(C1, COIN),), fees=49 * COIN)
    assert cs.process_block(b7).status == "connected"
    cs.close()


def test_retarget_more_work_fewer_blocks():
    """With retargeting, a shorter branch of harder blocks beats a longer easy one. Its own
    params (a 4-block retarget window): Core's regtest never retargets, so no kernel here."""
    from tinynode.consensus.pow import block_work
    p = dataclasses.replace(PARAMS, no_retargeting=False, allow_min_difficulty=False, retarget_window=4,
                            pow_target_spacing=600)
    cs = ChainState(p, MemoryChainStore(), now=lambda: G.header.time + 10**6)
    B = Builder()
    # heights 1..3 with fast blocks (1 s apart) → at height 4 difficulty rises ×4
    base = B.chain(G, 3)
    for b in base:
        assert cs.process_block(b).status == "connected"
    hard_bits = cs.next_bits(cs.tip)
    assert hard_bits != 0x207FFFFF
    hard = B.next(base[-1], bits=hard_bits, cb_extra=b"h")
    assert cs.process_block(hard).status == "connected"
    assert cs.tip.chainwork == cs.get_entry(base[-1].hash).chainwork + block_work(hard_bits)
    easy = B.next(base[-1], bits=0x207FFFFF, cb_extra=b"e")
    assert cs.process_block(easy).reason == R.BAD_DIFFBITS
    cs.close()


def test_bip68_relative_lock_in_connect(make_cs):
    cs = make_cs()
    B = base_builder()
    blocks = B.chain(T, 3)
    for b in blocks:
        cs.process_block(b)
    fund = spend(C1, 49 * COIN)
    bf = B.next(blocks[-1], (fund,), fees=COIN)              # the coin is at height H0 + 4
    assert cs.process_block(bf).status == "connected"
    # relative lock of 5 blocks → first valid height H0 + 4 + 5
    locked = spend(fund, 48 * COIN, version=2, sequence=5)
    r = cs.process_block(B.next(bf, (locked,), fees=COIN))
    assert r.reason == R.BAD_TXNS_NONFINAL
    more = B.chain(bf, 3)
    for b in more:
        cs.process_block(b)
    assert cs.height == H0 + 7
    r = cs.process_block(B.next(more[-1], (locked,), fees=COIN, cb_extra=b"l"))   # at H0 + 8: one early
    assert r.reason == R.BAD_TXNS_NONFINAL
    last = B.next(more[-1], cb_extra=b"n")
    assert cs.process_block(last).status == "connected"
    assert cs.process_block(B.next(last, (locked,), fees=COIN)).status == "connected"


def test_locator_heights_are_cores_locator_entries():
    """Core `LocatorEntries`: the step doubles only once the locator holds more than 10 hashes,
    so 12 consecutive heights come first; the last entry is always genesis."""
    from tinynode.chain.active import locator_heights
    assert locator_heights(0) == [0]
    assert locator_heights(1) == [1, 0]
    assert locator_heights(15) == [15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 2, 0]
    assert locator_heights(100) == [*range(100, 88, -1), 87, 83, 75, 59, 27, 0]
