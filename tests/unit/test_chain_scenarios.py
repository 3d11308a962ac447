"""Fork and consensus scenarios for `ChainState`, in the style of Core's feature_block.py.

Blocks are built by name with `tests.framework.blockbuilder.BlockBuilder` and delivered with
`ChainState.process_block`. Every rejection is asserted on Core's reject reason. Each scenario
ends with the equivalence check: a fresh store that connects only the final best chain has the
same `utxo_set_hash()` as the node that went through the forks (the `make_node` fixture runs
this check at teardown for every node built with the scenario's builder).

Naming: `c1..c100` is the common base (its coinbases are the spendable outputs `out[i]`);
scenario blocks carry a letter per branch. Spent coins are drawn in order with
`b.get_spendable_output()`.
"""

from __future__ import annotations

import dataclasses

import pytest

from tests.framework.blockbuilder import BlockBuilder, assert_accepted, assert_rejected
from tests.framework.oracle import KERNEL_ERROR, OracleChainState
from tests.framework.miniwallet import Utxo, key, push_data, push_int
from tinynode.chain.chainstate import ChainState
from tinynode.chain.events import TipChanged
from tinynode.chain.index import BlockStatus
from tinynode.consensus.errors import RejectReason as R
from tinynode.params import REGTEST, TINYNET
from tinynode.primitives.block import Block
from tinynode.primitives.coin import Coin
from tinynode.primitives.tx import COIN, OutPoint, Tx, TxIn, TxOut
from tinynode.storage.memory import MemoryChainStore
from tinynode.storage.sqlite import SQLiteChainStore

MAX_SCRIPT_SIZE = 10_000


# ---------------------------------------------------------------------- fixtures and helpers
@pytest.fixture
def make_node(tmp_path):
    """Factory: `make_node(params, b, kind="memory"|"sqlite", **chainstate_kw)` → ChainState.

    Passing the scenario's `BlockBuilder` as `b` (its `now` is the node's clock) registers the
    node for the closing equivalence check: at teardown, every such node still open must have
    the UTXO-set hash of a fresh memory node that connected only its final best chain. An int
    clock instead of a builder opts out (used for the fresh nodes themselves). Nodes are closed
    at teardown.
    """
    nodes: list[ChainState] = []
    scenario: list[tuple[ChainState, BlockBuilder]] = []

    def make(params=REGTEST, now: "int | BlockBuilder | None" = None, kind: str = "memory",
             **kw) -> ChainState:
        builder = now if isinstance(now, BlockBuilder) else None
        if builder is not None:
            now = builder.now
        if kind == "sqlite":
            store = SQLiteChainStore(tmp_path / f"chain{len(nodes)}.sqlite")
        else:
            store = MemoryChainStore()
        clock = (lambda: now) if now is not None else None
        cs = ChainState(params, store, now=clock, **kw) if clock else ChainState(params, store, **kw)
        if builder is not None and params is REGTEST and KERNEL_ERROR is None:
            cs = OracleChainState(cs)   # every block also goes to Core's kernel: same verdicts, same tip
        nodes.append(cs)
        if builder is not None:
            scenario.append((cs, builder))
        return cs

    yield make
    try:
        for cs, b in scenario:
            if getattr(cs, "_closed", False):      # a test that closed its node checked it itself
                continue
            assert_equivalent(cs, b, make)
    finally:
        for n in nodes:
            n.close()


def build_base(b: BlockBuilder, cs: ChainState, n: int = 100) -> None:
    """c1..cn on genesis, each delivered and its coinbase saved as a spendable output."""
    for i in range(1, n + 1):
        blk = b.next_block(f"c{i}")
        b.save_spendable_output()
        assert_accepted(cs, blk, tip=blk)


def deliver(cs: ChainState, b: BlockBuilder, *names: str, tip: str | None = None) -> None:
    for name in names:
        assert_accepted(cs, b[name])
    if tip is not None:
        assert cs.tip.hash == b[tip].hash, f"tip {cs.tip.hash_hex} h={cs.tip.height}, expected {tip}"


def model_utxos(blocks: list[Block]) -> dict[OutPoint, Coin]:
    """The UTXO set after connecting `blocks` (heights 1..) — an independent model of Core's
    `UpdateCoins` (genesis coinbase and unspendable outputs never enter the set)."""
    utxos: dict[OutPoint, Coin] = {}
    for height, blk in enumerate(blocks, 1):
        for tx in blk.txs:
            cb = tx.is_coinbase()
            if not cb:
                for txin in tx.vin:
                    del utxos[txin.prevout]
            for n, out in enumerate(tx.vout):
                spk = out.script_pubkey
                if spk[:1] == b"\x6a" or len(spk) > MAX_SCRIPT_SIZE:
                    continue
                utxos[OutPoint(tx.txid, n)] = Coin(out.value, spk, height, cb)
    return utxos


def assert_state_exact(cs: ChainState, b: BlockBuilder, tip_name: str, scripts: list[bytes]) -> None:
    """UTXO set, tx index and script index are exactly what the active chain implies."""
    chain = b.chain_to(tip_name)
    assert cs.tip.hash == chain[-1].hash and cs.height == len(chain)
    expected = model_utxos(chain)
    for op, coin in expected.items():
        assert cs.get_coin(op) == coin, f"coin {op}"
    active_txids = set()
    for height, blk in enumerate(chain, 1):
        assert cs.get_block_hash(height) == blk.hash
        for tx in blk.txs:
            active_txids.add(tx.txid)
            got = cs.get_tx(tx.txid)
            assert got is not None, f"tx {tx.txid_hex} missing from tx index"
            assert got[0] == tx and got[1] == blk.hash and got[2] == height
    for blk in b.by_hash.values():
        for tx in blk.txs:
            for n in range(len(tx.vout)):
                op = OutPoint(tx.txid, n)
                if op not in expected:
                    assert cs.get_coin(op) is None, f"stale coin {op}"
            if tx.txid not in active_txids and blk.hash != b.params.genesis.hash:
                assert cs.get_tx(tx.txid) is None, f"tx {tx.txid_hex} of a disconnected block still indexed"
    for spk in scripts:
        want = {op: c for op, c in expected.items() if c.script_pubkey == spk}
        got = dict(cs.coins_for_script(spk))
        assert got == want, "script index differs"


def assert_equivalent(cs: ChainState, b: BlockBuilder, make_node) -> None:
    """A fresh memory store connecting only the final best chain has the same utxo_set_hash."""
    tip_name = b.name_of(cs.tip.hash)
    fresh = make_node(b.params, b.now)
    for blk in b.chain_to(tip_name):
        assert_accepted(fresh, blk, tip=blk)
    assert fresh.utxo_set_hash() == cs.utxo_set_hash()


def spend_to(b: BlockBuilder, utxo: Utxo, owner, n_outputs: int = 1, fee: int = 1000) -> Tx:
    """Spend `utxo` into `n_outputs` equal outputs paying `owner` (a MiniKey)."""
    avail = utxo.value - fee
    share = avail // n_outputs
    outs = [(owner.script_pubkey, share)] * (n_outputs - 1) + [(owner.script_pubkey, avail - share * (n_outputs - 1))]
    return b.wallet.spend_many([utxo], outs, fee=fee)


def out_of(tx: Tx, n: int, owner) -> Utxo:
    return Utxo(OutPoint(tx.txid, n), tx.vout[n].value, owner)


def status(cs: ChainState, blk: Block) -> BlockStatus:
    e = cs.get_entry(blk.hash)
    assert e is not None
    return e.status


# ---------------------------------------------------------------------- fork choice
@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_side_branch_overtakes(make_node, kind):
    """A side branch is stored, then becomes active when it has more work.

        genesis -> c1 .. c100 -> b1 (0) -> b2 (1)
                                       \\-> b3 (1) -> b4 (2)

    b3 spends out1 like b2 does (a conflict across branches); b4 makes the side branch heavier.
    """
    b = BlockBuilder(REGTEST)
    cs = make_node(REGTEST, b, kind)
    build_base(b, cs)
    out = [b.get_spendable_output() for _ in range(3)]
    b.next_block("b1", spend=out[0])
    b.next_block("b2", spend=out[1])
    deliver(cs, b, "b1", "b2", tip="b2")

    b.set_tip("b1")
    b.next_block("b3", spend=out[1])
    res = assert_accepted(cs, b["b3"], tip=b["b2"])     # same work: first seen keeps the tip
    assert res.status == "accepted"
    b.next_block("b4", spend=out[2])
    deliver(cs, b, "b4", tip="b4")
    assert_state_exact(cs, b, "b4", [b.wallet.script_pubkey])
    for name in ("b1", "b2", "b3", "b4"):      # active, stale and side blocks again: duplicates
        res = cs.process_block(b[name])
        assert res.error is None and res.status == "duplicate", (name, res)
    assert cs.tip.hash == b["b4"].hash
    assert_equivalent(cs, b, make_node)


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_deep_reorg_with_spends_on_both_sides(make_node, kind, tmp_path):
    """A five-block reorg and back, with conflicting spends and chains of spends on both sides.

        c100 -> a1 -> a2 -> a3 -> a4 ---------------> a5 -> a6     (a pays key 1)
             \\-> d1 -> d2 -> d3 -> d4 -> d5                        (d pays key 2)

    a1 and d1 spend the same coin (out0); a2 spends a1's output; a4 spends two of a's outputs;
    d3 spends d1's output. After every delivery the UTXO set, tx index and script index are exact.
    """
    b = BlockBuilder(REGTEST)
    cs = make_node(REGTEST, b, kind)
    build_base(b, cs)
    out = [b.get_spendable_output() for _ in range(5)]
    k1, k2 = key(1), key(2)
    scripts = [b.wallet.script_pubkey, k1.script_pubkey, k2.script_pubkey]

    ta1 = spend_to(b, out[0], k1, 2)
    ta2 = spend_to(b, out_of(ta1, 0, k1), k1)
    ta3 = spend_to(b, out[1], k1, 3)
    ta4 = b.wallet.spend_many([out_of(ta2, 0, k1), out_of(ta1, 1, k1)], [(k1.script_pubkey, 30 * COIN)],
                              fee=out_of(ta2, 0, k1).value + out_of(ta1, 1, k1).value - 30 * COIN)
    a_fee4 = ta2.vout[0].value + ta1.vout[1].value - 30 * COIN
    b.set_tip("c100")
    b.next_block("a1", txs=[ta1], fees=1000)
    b.next_block("a2", txs=[ta2], fees=1000)
    b.next_block("a3", txs=[ta3], fees=1000)
    b.next_block("a4", txs=[ta4], fees=a_fee4)
    for name in ("a1", "a2", "a3", "a4"):
        deliver(cs, b, name, tip=name)
        assert_state_exact(cs, b, name, scripts)

    td1 = spend_to(b, out[0], k2, 2)
    td2 = spend_to(b, out[1], k2)
    td3 = spend_to(b, out_of(td1, 1, k2), k2, 2)
    b.set_tip("c100")
    b.next_block("d1", txs=[td1], fees=1000)
    b.next_block("d2", txs=[td2], fees=1000)
    b.next_block("d3", txs=[td3], fees=1000)
    b.next_block("d4", spend=out[2])
    b.next_block("d5", spend=out[3])
    for name in ("d1", "d2", "d3", "d4"):
        deliver(cs, b, name, tip="a4")
        assert_state_exact(cs, b, "a4", scripts)
    events = []
    cs.subscribe(events.append)
    deliver(cs, b, "d5", tip="d5")
    assert_state_exact(cs, b, "d5", scripts)
    # Core's order: disconnect tip-first, connect lowest-first, then one tip change
    assert [(type(e).__name__, b.name_of(e.block.hash)) for e in events[:-1]] == (
        [("BlockDisconnected", f"a{i}") for i in (4, 3, 2, 1)]
        + [("BlockConnected", f"d{i}") for i in range(1, 6)])
    assert isinstance(events[-1], TipChanged) and events[-1].disconnected == 4
    assert events[-1].old_tip.hash == b["a4"].hash and events[-1].new_tip.hash == b["d5"].hash

    b.set_tip("a4")
    b.next_block("a5", spend=out[4])
    b.next_block("a6")
    deliver(cs, b, "a5", tip="d5")
    assert_state_exact(cs, b, "d5", scripts)
    deliver(cs, b, "a6", tip="a6")
    assert_state_exact(cs, b, "a6", scripts)
    assert_equivalent(cs, b, make_node)
    if kind == "sqlite":      # a restart loads the same tip, coins and indexes
        path = tmp_path / "chain0.sqlite"
        utxo_hash = cs.utxo_set_hash()
        cs.close()
        again = ChainState(REGTEST, SQLiteChainStore(path), now=lambda: b.now)
        try:
            assert again.utxo_set_hash() == utxo_hash
            assert_state_exact(again, b, "a6", scripts)
            assert again.process_block(b["d5"]).status == "duplicate"
        finally:
            again.close()


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_invalid_block_inside_heavier_branch_falls_back(make_node, kind):
    """A heavier branch with an invalid block in the middle: the node returns to the old chain.

        c100 -> a1 -> a2 -> a3 -> a4                       (active)
             \\-> x1 -> x2 -> x3 -> x4* -> x5 -> x6        (x4: coinbase pays 1 satoshi too much)

    x5 gives the x branch more work; connecting it fails at x4, which is marked FAILED (x5
    FAILED_PARENT). x3 has less work than a4, so the node goes back to a4, with a4's UTXO set.
    x6, a child of a failed block, is refused as `bad-prevblk`.
    """
    b = BlockBuilder(REGTEST)
    cs = make_node(REGTEST, b, kind)
    build_base(b, cs)
    out = [b.get_spendable_output() for _ in range(4)]
    for i in range(1, 5):
        b.next_block(f"a{i}", spend=out[i - 1])
        deliver(cs, b, f"a{i}", tip=f"a{i}")

    b.set_tip("c100")
    b.next_block("x1", spend=out[0])
    b.next_block("x2", spend=out[1])
    b.next_block("x3")
    b.next_block("x4", additional_coinbase_value=1)
    b.next_block("x5")
    b.next_block("x6")
    for name in ("x1", "x2", "x3", "x4"):
        deliver(cs, b, name, tip="a4")
    res = cs.process_block(b["x5"])     # reported (in the result), never raised
    assert res.error is None or res.error.reason in (R.BAD_CB_AMOUNT, R.BAD_PREVBLK)
    assert cs.tip.hash == b["a4"].hash
    assert status(cs, b["x4"]) & BlockStatus.FAILED
    assert status(cs, b["x5"]) & BlockStatus.FAILED_MASK
    assert_rejected(cs, b["x6"], R.BAD_PREVBLK, tip=b["a4"])
    assert_state_exact(cs, b, "a4", [b.wallet.script_pubkey])
    assert_equivalent(cs, b, make_node)


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_invalid_block_inside_heavier_branch_keeps_valid_prefix(make_node, kind):
    """The valid part of a heavier branch is kept when it alone has more work.

        c100 -> a1 -> a2                                   (active)
             \\-> x1 -> x2 -> x3 -> x4* -> x5             (delivered x5, x4, x3, x2, then x1)

    When x1 arrives the whole branch becomes connectable; x4 (double spend of out0, already
    spent by x1) fails, and x3 — three blocks against a2's two — becomes the tip.
    """
    b = BlockBuilder(REGTEST)
    cs = make_node(REGTEST, b, kind)
    build_base(b, cs)
    out = [b.get_spendable_output() for _ in range(3)]
    b.next_block("a1", spend=out[0])
    b.next_block("a2", spend=out[1])
    deliver(cs, b, "a1", "a2", tip="a2")

    b.set_tip("c100")
    b.next_block("x1", spend=out[0])
    b.next_block("x2", spend=out[1])
    b.next_block("x3", spend=out[2])
    b.next_block("x4", txs=[spend_to(b, out[0], key(4))], fees=1000)
    b.next_block("x5")
    for name in ("x5", "x4", "x3", "x2"):
        res = cs.process_block(b[name])
        assert res.error is None and res.status == "orphan", (name, res)
    cs.process_block(b["x1"])
    assert cs.tip.hash == b["x3"].hash
    assert status(cs, b["x4"]) & BlockStatus.FAILED
    assert status(cs, b["x5"]) & BlockStatus.FAILED_MASK
    assert_state_exact(cs, b, "x3", [b.wallet.script_pubkey, key(4).script_pubkey])
    assert_equivalent(cs, b, make_node)


def _retarget_params():
    """tinynet with a 4-block window and regtest's pow_limit: retargets mine in milliseconds."""
    return dataclasses.replace(TINYNET, retarget_window=4, pow_limit_bits=REGTEST.pow_limit_bits,
                               genesis=REGTEST.genesis)


def test_more_work_with_fewer_blocks_wins(make_node):
    """Chain selection is by work, not length.

        genesis -> s1 -> s2 -> ... -> s30     (slow: 40 s apart, difficulty stays at the limit)
                \\-> f1 -> ... -> f10          (fast: 1 s apart, target ÷4 at every retarget)

    f10 has fewer blocks but more chainwork, so it wins; s31.. would need to catch up in work.
    """
    p = _retarget_params()
    b = BlockBuilder(p, spacing=40)
    cs = make_node(p, b)
    for i in range(1, 31):
        b.next_block(f"s{i}")
    deliver(cs, b, *[f"s{i}" for i in range(1, 31)], tip="s30")
    b.set_tip("genesis")
    b.spacing = 1
    for i in range(1, 11):
        b.next_block(f"f{i}")
    assert b.chainwork("f10") > b.chainwork("s30")
    assert b.chainwork("f7") < b.chainwork("s30")
    for i in range(1, 11):
        assert_accepted(cs, b[f"f{i}"])
        expected = f"f{i}" if b.chainwork(f"f{i}") > b.chainwork("s30") else "s30"
        assert cs.tip.hash == b[expected].hash, f"after f{i}"
    assert cs.tip.chainwork == b.chainwork("f10")
    assert cs.tip.height == 10
    assert_equivalent(cs, b, make_node)


def test_wrong_retarget_bits_rejected(make_node):
    """At a retarget height the bits must be the computed ones: `bad-diffbits` otherwise."""
    p = _retarget_params()
    b = BlockBuilder(p, spacing=1)
    cs = make_node(p, b)
    for i in range(1, 4):
        b.next_block(f"f{i}")
    deliver(cs, b, "f1", "f2", "f3", tip="f3")
    bad = b.next_block("f4bad", bits=b["f3"].header.bits)    # keeps the old (easier) bits
    assert bad.header.bits != b.next_bits(b["f3"], bad.header.time)
    assert_rejected(cs, bad, R.BAD_DIFFBITS, tip=b["f3"])
    b.set_tip("f3")
    good = b.next_block("f4")
    assert_accepted(cs, good, tip=good)


# ---------------------------------------------------------------------- double spends, coinbase
def test_double_spend_inside_one_block(make_node):
    """Two txs in one block spend the same coin: `bad-txns-inputs-missingorspent`.
    One tx spending the same coin twice: `bad-txns-inputs-duplicate`.

        c100 -> b1 (tx1: out0, tx2: out0)*
             \\-> b2 (tx: out0 + out0)*
             \\-> b3 (out0)
    """
    b = BlockBuilder(REGTEST)
    cs = make_node(REGTEST, b)
    build_base(b, cs)
    out0 = b.get_spendable_output()
    tx1 = spend_to(b, out0, key(1))
    tx2 = spend_to(b, out0, key(2))
    b.next_block("b1", txs=[tx1, tx2], fees=2000)
    assert_rejected(cs, b["b1"], R.BAD_TXNS_INPUTS_MISSINGORSPENT, tip=b["c100"])

    b.set_tip("c100")
    dup = b.wallet.spend_many([out0, out0], [(key(1).script_pubkey, 10 * COIN)], fee=90 * COIN)
    b.next_block("b2", txs=[dup], fees=90 * COIN)
    assert_rejected(cs, b["b2"], R.BAD_TXNS_INPUTS_DUPLICATE, tip=b["c100"])

    b.set_tip("c100")
    b.next_block("b3", spend=out0)
    assert_accepted(cs, b["b3"], tip=b["b3"])
    assert_equivalent(cs, b, make_node)


def test_double_spend_across_blocks_even_if_longer(make_node):
    """Reject a chain with a double spend, even if it is longer (Core b5..b9 idea).

        c100 -> b1 (out0) -> b2 (out0 again)* -> b3
    """
    b = BlockBuilder(REGTEST)
    cs = make_node(REGTEST, b)
    build_base(b, cs)
    out0 = b.get_spendable_output()
    b.next_block("b1", spend=out0)
    deliver(cs, b, "b1", tip="b1")
    again = spend_to(b, out0, key(3))
    b.next_block("b2", txs=[again], fees=1000)
    assert_rejected(cs, b["b2"], R.BAD_TXNS_INPUTS_MISSINGORSPENT, tip=b["b1"])
    b.next_block("b3")
    assert_rejected(cs, b["b3"], R.BAD_PREVBLK, tip=b["b1"])
    assert_equivalent(cs, b, make_node)


def test_spend_of_immature_coinbase(make_node):
    """A coinbase is spendable only `coinbase_maturity` blocks after it was mined.

        c1 .. c99 -> b1 (spends c1's coinbase at height 100: 99 confirmations)*
                  \\-> c100 -> b2 (same spend at height 101) ok
    """
    b = BlockBuilder(REGTEST)
    cs = make_node(REGTEST, b)
    build_base(b, cs, 99)
    out0 = b.get_spendable_output()
    b.next_block("b1", spend=out0)
    assert_rejected(cs, b["b1"], R.BAD_TXNS_PREMATURE_SPEND_OF_COINBASE, tip=b["c99"])
    b.set_tip("c99")
    b.next_block("c100")
    b.next_block("b2", spend=out0)
    deliver(cs, b, "c100", "b2", tip="b2")
    assert_equivalent(cs, b, make_node)


def test_coinbase_over_subsidy_plus_fees(make_node):
    """The coinbase may claim subsidy + fees, not one satoshi more (`bad-cb-amount`).

        c100 -> b1 (claims fees exactly) -> b2 (claims fees + 1)*
    """
    b = BlockBuilder(REGTEST)
    cs = make_node(REGTEST, b)
    build_base(b, cs)
    out = [b.get_spendable_output() for _ in range(2)]
    b.next_block("b1", spend=out[0])
    assert b["b1"].txs[0].vout[0].value == REGTEST.block_subsidy(101) + 1000
    deliver(cs, b, "b1", tip="b1")
    b.next_block("b2", spend=out[1], additional_coinbase_value=1)
    assert_rejected(cs, b["b2"], R.BAD_CB_AMOUNT, tip=b["b1"])
    assert status(cs, b["b2"]) & BlockStatus.FAILED
    assert_rejected(cs, b["b2"], R.DUPLICATE_INVALID, tip=b["b1"])   # known invalid: no re-check
    b.set_tip("b1")
    b.next_block("b3", spend=out[1])
    assert_accepted(cs, b["b3"], tip=b["b3"])
    assert_equivalent(cs, b, make_node)


def test_inputs_below_outputs(make_node):
    """A tx paying out more than it spends: `bad-txns-in-belowout`."""
    b = BlockBuilder(REGTEST)
    cs = make_node(REGTEST, b)
    build_base(b, cs)
    out0 = b.get_spendable_output()
    tx = b.wallet.spend_many([out0], [(key(1).script_pubkey, out0.value + 1)], fee=0)
    b.next_block("b1", txs=[tx])
    assert_rejected(cs, b["b1"], R.BAD_TXNS_IN_BELOWOUT, tip=b["c100"])


def test_bad_signature_rejected(make_node):
    """A spend signed by the wrong key fails script verification."""
    b = BlockBuilder(REGTEST)
    cs = make_node(REGTEST, b)
    build_base(b, cs)
    out0 = b.get_spendable_output()
    wrong = Utxo(out0.outpoint, out0.value, key(9), out0.height, True)   # signs with key 9
    tx = b.wallet.create_spend(wrong, n_outputs=1)
    b.next_block("b1", txs=[tx], fees=1000)
    res = assert_rejected(cs, b["b1"], R.BLOCK_SCRIPT_VERIFY_FLAG_FAILED, tip=b["c100"])
    if res is not None:
        assert "block-script-verify-flag-failed" in res.error.reject_string


# ---------------------------------------------------------------------- block structure
def test_bad_merkle_root_then_real_block(make_node):
    """A block whose merkle root does not match its txs is `bad-txnmrklroot` and MUTATED: the
    header hash is not marked invalid, so the real block is accepted afterwards."""
    b = BlockBuilder(REGTEST)
    cs = make_node(REGTEST, b)
    build_base(b, cs)
    real = b.next_block("b1", spend=b.get_spendable_output())
    # same header, different body: the merkle root no longer commits to the txs
    bogus = Block(real.header, (real.txs[0],))
    assert bogus.hash == real.hash
    assert_rejected(cs, bogus, R.BAD_TXNMRKLROOT, tip=b["c100"], mutated=True)
    assert_accepted(cs, real, tip=real)

    wrong_root = b.next_block("b2")
    b.update_block("b2", lambda blk: Block(dataclasses.replace(blk.header, merkle_root=bytes(32)), blk.txs),
                   remerkle=False)
    assert_rejected(cs, b["b2"], R.BAD_TXNMRKLROOT, tip=real, mutated=True)
    assert wrong_root.hash != b["b2"].hash


def test_mutated_duplicate_tx_block_then_real_one(make_node):
    """CVE-2012-2459: [cb, t1, t2, t2] has the merkle root of [cb, t1, t2]. The mutated copy is
    refused as `bad-txns-duplicate` without marking the hash; the real block then connects."""
    b = BlockBuilder(REGTEST)
    cs = make_node(REGTEST, b)
    build_base(b, cs)
    o1 = b.get_spendable_output()
    t1 = spend_to(b, o1, key(1), 2)
    t2 = spend_to(b, out_of(t1, 0, key(1)), key(1))
    real = b.next_block("b1", txs=[t1, t2], fees=2000)
    mutated = Block(real.header, real.txs + (t2,))
    assert mutated.hash == real.hash and mutated.compute_merkle_root() == (real.header.merkle_root, True)
    res = assert_rejected(cs, mutated, R.BAD_TXNS_DUPLICATE, tip=b["c100"], mutated=True)
    entry = cs.get_entry(real.hash)
    assert entry is None or not entry.failed
    assert_accepted(cs, real, tip=real)
    assert res is None or res.status == "invalid"
    assert_equivalent(cs, b, make_node)


def test_timestamps_median_time_past_and_future(make_node):
    """`time-too-old` at or below median-time-past; `time-too-new` beyond now + 2 h (Core b-series
    and ContextualCheckBlockHeader); exactly now + 2 h is fine."""
    b = BlockBuilder(REGTEST)
    cs = make_node(REGTEST, b)
    for i in range(1, 12):
        b.next_block(f"c{i}")
    deliver(cs, b, *[f"c{i}" for i in range(1, 12)], tip="c11")
    mtp = b.median_time_past(b["c11"])
    assert cs.median_time_past() == mtp
    b.next_block("at_mtp", time=mtp)
    assert_rejected(cs, b["at_mtp"], R.TIME_TOO_OLD, tip=b["c11"])
    b.set_tip("c11")
    b.next_block("below_mtp", time=mtp - 1)
    assert_rejected(cs, b["below_mtp"], R.TIME_TOO_OLD, tip=b["c11"])
    b.set_tip("c11")
    b.next_block("after_mtp", time=mtp + 1)          # earlier than c11 itself but > MTP: valid
    assert b["after_mtp"].header.time < b["c11"].header.time
    assert_accepted(cs, b["after_mtp"], tip=b["after_mtp"])
    b.next_block("too_new", time=b.future_time(1))
    assert_rejected(cs, b["too_new"], R.TIME_TOO_NEW, tip=b["after_mtp"])
    b.set_tip("after_mtp")
    b.next_block("edge", time=b.future_time(0))
    assert_accepted(cs, b["edge"], tip=b["edge"])


def test_bad_bits_and_high_hash(make_node):
    """Bits other than the required ones: `bad-diffbits`; a hash above the target: `high-hash`."""
    b = BlockBuilder(REGTEST)
    cs = make_node(REGTEST, b)
    b.next_block("c1")
    deliver(cs, b, "c1", tip="c1")
    b.next_block("harder", bits=0x200FFFFF)          # valid PoW for its own (harder) target
    assert_rejected(cs, b["harder"], R.BAD_DIFFBITS, tip=b["c1"])
    b.set_tip("c1")
    b.next_block("nopow", valid_pow=False)
    assert_rejected(cs, b["nopow"], R.HIGH_HASH, tip=b["c1"])
    b.set_tip("c1")
    b.next_block("easier", bits=0x2100FFFF)          # target above pow_limit
    assert_rejected(cs, b["easier"], R.HIGH_HASH, tip=b["c1"])


def _pad_block_to(b: BlockBuilder, name: str, spend: Utxo, size: int) -> Block:
    """Block `name` spending `spend` with a padding output, exactly `size` bytes serialized."""
    pad = 1000
    for _ in range(60):     # the signature is 70 or 71 bytes, so a few tries may be needed
        tx = b.wallet.spend_many([spend], [(b.wallet.script_pubkey, spend.value - 1000),
                                           (b"\x51" * pad, 0)], fee=1000)
        trial = Block(b.tip.header, (b.create_coinbase(b.height_of(b.tip) + 1, 0, extranonce=0), tx))
        if trial.size == size:
            break
        pad += (size - trial.size) or 1
    b.next_block(name, txs=[tx], fees=1000)
    blk = b[name]
    assert blk.size == size, blk.size
    return blk


def test_oversize_block(make_node):
    """A block of exactly 1,000,000 stripped bytes is fine (× 4 = MAX_BLOCK_WEIGHT); one byte
    more is `bad-blk-length`."""
    b = BlockBuilder(REGTEST)
    cs = make_node(REGTEST, b)
    build_base(b, cs)
    o1 = b.get_spendable_output()
    big = _pad_block_to(b, "b1", o1, REGTEST.max_block_weight // 4 + 1)
    assert_rejected(cs, big, R.BAD_BLK_LENGTH, tip=b["c100"])
    b.set_tip("c100")
    ok = _pad_block_to(b, "b2", o1, REGTEST.max_block_weight // 4)
    assert_accepted(cs, ok, tip=ok)


def test_too_many_sigops(make_node):
    """20,000 legacy sigops in a block are fine; 20,001 is `bad-blk-sigops` (Core b31..b33).

    Counted: the coinbase's P2PKH output (1), the spend's P2PKH output (1), and N OP_CHECKSIGs
    in an extra output script.
    """
    b = BlockBuilder(REGTEST)
    cs = make_node(REGTEST, b)
    build_base(b, cs)
    o1 = b.get_spendable_output()
    limit = REGTEST.max_block_sigops_cost // 4   # legacy sigops count × 4 (CheckBlock)

    def sigop_tx(u: Utxo, n_checksig: int) -> Tx:
        return b.wallet.spend_many([u], [(b.wallet.script_pubkey, u.value - 1000), (b"\xac" * n_checksig, 0)],
                                   fee=1000)

    b.next_block("b1", txs=[sigop_tx(o1, limit - 2 + 1)], fees=1000)
    assert_rejected(cs, b["b1"], R.BAD_BLK_SIGOPS, tip=b["c100"])
    b.set_tip("c100")
    b.next_block("b2", txs=[sigop_tx(o1, limit - 2)], fees=1000)
    assert_accepted(cs, b["b2"], tip=b["b2"])
    assert_equivalent(cs, b, make_node)


def test_coinbase_structure(make_node):
    """`bad-cb-missing`, `bad-cb-multiple`, `bad-cb-length` (Core CheckBlock)."""
    b = BlockBuilder(REGTEST)
    cs = make_node(REGTEST, b)
    build_base(b, cs, 101)
    out0 = b.get_spendable_output()
    b.next_block("nocb", spend=out0)
    b.update_block("nocb", lambda blk: blk.txs[1:])
    assert_rejected(cs, b["nocb"], R.BAD_CB_MISSING, tip=b["c101"])
    b.set_tip("c101")
    b.next_block("twocb")
    b.update_block("twocb", lambda blk: [blk.txs[0], b.create_coinbase(102, 1)])
    assert_rejected(cs, b["twocb"], R.BAD_CB_MULTIPLE, tip=b["c101"])
    b.set_tip("c101")
    b.next_block("long", coinbase_script_sig=push_int(102) + push_data(b"\x00" * 97))   # 101 bytes
    assert len(b["long"].txs[0].vin[0].script_sig) == 101
    assert_rejected(cs, b["long"], R.BAD_CB_LENGTH, tip=b["c101"])
    # Core ProcessNewBlock: a CheckBlock failure is not indexed, so it is checked again (the same
    # reason, not duplicate-invalid) and leaves no block index entry behind
    for name, reason in (("nocb", R.BAD_CB_MISSING), ("twocb", R.BAD_CB_MULTIPLE), ("long", R.BAD_CB_LENGTH)):
        assert cs.get_entry(b[name].hash) is None
        assert_rejected(cs, b[name], reason, tip=b["c101"])
    b.set_tip("c101")
    b.next_block("max", coinbase_script_sig=push_int(102) + push_data(b"\x00" * 96))    # 100 bytes
    assert_accepted(cs, b["max"], tip=b["max"])


# ---------------------------------------------------------------------- arrival order
@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_out_of_order_50_block_branch(make_node, kind):
    """A 50-block side branch delivered backwards connects when its first block arrives.

        genesis -> c1 .. c10                        (active)
                    c5 -> o1 -> o2 -> ... -> o50    (delivered o50, o49, ..., o1)
    """
    b = BlockBuilder(REGTEST)
    cs = make_node(REGTEST, b, kind)
    build_base(b, cs, 10)
    b.set_tip("c5")
    for i in range(1, 51):
        b.next_block(f"o{i}")
    for i in range(50, 1, -1):
        res = cs.process_block(b[f"o{i}"])
        assert res.error is None and res.status == "orphan", (i, res)
        assert cs.tip.hash == b["c10"].hash
    assert_accepted(cs, b["o1"], tip=b["o50"])
    assert cs.height == 55
    assert_equivalent(cs, b, make_node)


# ---------------------------------------------------------------------- BIP30, BIP34
def test_bip30_duplicate_unspent_tx(make_node):
    """BIP30 (always enforced): a block may not contain a tx whose outputs already exist
    unspent — checked before inputs, as Core's ConnectBlock does.

        c100 -> b1 (tx) -> b2 (tx again)*
    """
    b = BlockBuilder(REGTEST)
    cs = make_node(REGTEST, b)
    build_base(b, cs)
    out0 = b.get_spendable_output()
    tx = spend_to(b, out0, key(1))
    b.next_block("b1", txs=[tx], fees=1000)
    deliver(cs, b, "b1", tip="b1")
    b.next_block("b2", txs=[tx], fees=1000)
    assert_rejected(cs, b["b2"], R.BAD_TXNS_BIP30, tip=b["b1"])


def test_bip30_duplicate_coinbase_after_bip34(make_node):
    """A coinbase below the BIP34 height may push a later height; the coinbase of that later
    block can then repeat it, and BIP30 still refuses it (Core enforces BIP30 on every chain
    without its BIP34Hash: regtest; feature_block's b61 with -testactivationheight=bip34@2).

        d1 (pushes 20) -> c2 .. c19 -> dup20 (the same coinbase)*
    """
    params = dataclasses.replace(REGTEST, bip34_height=2)
    b = BlockBuilder(params)
    cs = make_node(params, b)
    script = push_int(20)                   # 0x01 0x14: what BIP34 wants at height 20
    d1 = b.next_block("d1", coinbase_script_sig=script)
    assert_accepted(cs, d1, tip=d1)
    for i in range(2, 20):
        assert_accepted(cs, b.next_block(f"c{i}"))
    dup = b.next_block("dup20", coinbase_script_sig=script)
    assert dup.txs[0].txid == d1.txs[0].txid
    assert_rejected(cs, dup, R.BAD_TXNS_BIP30, tip=b["c19"])


def test_bip34_height_in_coinbase(make_node):
    """The coinbase scriptSig must start with `CScript() << height` (`bad-cb-height`)."""
    b = BlockBuilder(REGTEST)
    cs = make_node(REGTEST, b)
    build_base(b, cs, 20)
    b.next_block("wrong", height=22)
    assert_rejected(cs, b["wrong"], R.BAD_CB_HEIGHT, tip=b["c20"])
    b.set_tip("c20")
    # 21 as a non-minimal push (2 bytes): not what `CScript() << 21` gives
    b.next_block("nonminimal", coinbase_script_sig=b"\x02\x15\x00" + push_data(b"xx"))
    assert_rejected(cs, b["nonminimal"], R.BAD_CB_HEIGHT, tip=b["c20"])
    b.set_tip("c20")
    b.next_block("right", coinbase_script_sig=push_int(21) + push_data(b"xx"))
    assert_accepted(cs, b["right"], tip=b["right"])
    # heights 1..16 are OP_1..OP_16 (build_base used them)
    assert b["c5"].txs[0].vin[0].script_sig[0] == 0x55


# ---------------------------------------------------------------------- more block rules
def test_tx_order_inside_block(make_node):
    """A tx may spend an output created earlier in the same block, never a later one.

        c100 -> b1 [cb, t2 (spends t1), t1]*
             \\-> b2 [cb, t1, t2]
    """
    b = BlockBuilder(REGTEST)
    cs = make_node(REGTEST, b)
    build_base(b, cs)
    t1 = spend_to(b, b.get_spendable_output(), key(1))
    t2 = spend_to(b, out_of(t1, 0, key(1)), key(1))
    b.next_block("b1", txs=[t2, t1], fees=2000)
    assert_rejected(cs, b["b1"], R.BAD_TXNS_INPUTS_MISSINGORSPENT, tip=b["c100"])
    b.set_tip("c100")
    b.next_block("b2", txs=[t1, t2], fees=2000)
    assert_accepted(cs, b["b2"], tip=b["b2"])
    assert_state_exact(cs, b, "b2", [key(1).script_pubkey])


def test_nonfinal_tx_in_block(make_node):
    """A height-locked tx is final only in blocks above its locktime (`bad-txns-nonfinal`)."""
    b = BlockBuilder(REGTEST)
    cs = make_node(REGTEST, b)
    build_base(b, cs)
    out0 = b.get_spendable_output()
    locked = b.wallet.create_spend(out0, n_outputs=1, locktime=101, sequence=0)
    b.next_block("b1", txs=[locked], fees=1000)                 # height 101 = locktime: not final
    assert_rejected(cs, b["b1"], R.BAD_TXNS_NONFINAL, tip=b["c100"])
    b.set_tip("c100")
    ok = b.wallet.create_spend(out0, n_outputs=1, locktime=100, sequence=0)
    b.next_block("b2", txs=[ok], fees=1000)
    assert_accepted(cs, b["b2"], tip=b["b2"])


@pytest.mark.parametrize("version,enforced", [
    (0, False), (1, False), (2, True), (3, True), (0x7FFFFFFF, True),
    (-0x80000000, True),   # 0x80000000 on the wire
    (-1, True),            # 0xffffffff: Core reads the version unsigned, so BIP68 applies
])
def test_bip68_applies_to_unsigned_version(make_node, version, enforced):
    """BIP68: a tx with sequence 3 spending a coin mined at height h needs height >= h + 3.

        c100 -> b1 (t0) -> b2 (t1 locked)*
                        -> e2 -> e3 -> b4 (t1) ok

    It is enforced for tx.version >= 2 read as uint32 (Core `CalculateSequenceLocks` on
    `CTransaction::version`); a signed comparison would let a 0xffffffff tx skip the lock,
    a split from Core with one block. Core's kernel gets the same blocks (make_node)."""
    b = BlockBuilder(REGTEST)
    cs = make_node(REGTEST, b)
    build_base(b, cs)
    t0 = spend_to(b, b.get_spendable_output(), key(1))
    b.next_block("b1", txs=[t0], fees=1000)                     # t0 at height 101
    deliver(cs, b, "b1", tip="b1")
    t1 = b.wallet.create_spend(out_of(t0, 0, key(1)), n_outputs=1, version=version, sequence=3)
    assert t1.serialize()[:4] == (version & 0xFFFFFFFF).to_bytes(4, "little")
    b.next_block("b2", txs=[t1], fees=1000)                     # height 102 < 101 + 3
    if enforced:
        assert_rejected(cs, b["b2"], R.BAD_TXNS_NONFINAL, tip=b["b1"])
        b.set_tip("b1")
        b.next_block("e2")
        b.next_block("e3")
        b.next_block("b4", txs=[t1], fees=1000)                 # height 104 = 101 + 3
        deliver(cs, b, "e2", "e3", "b4", tip="b4")
    else:
        deliver(cs, b, "b2", tip="b2")
    if isinstance(cs, OracleChainState):
        assert cs.calls >= 102                                  # the kernel saw every block


def test_header_version_and_locktime_at_sign_edges(make_node):
    """The audit of signed/unsigned consensus integers, with Core's kernel as judge (make_node):
    the header version is Core's int32 (0x80000000 and 0xffffffff are negative, so below 4:
    bad-version); tx locktime and sequence are uint32 (a 0xffffffff locktime is a time lock far
    in the future, non-final with a non-final sequence; final with every sequence 0xffffffff;
    a height lock is final once it is below the block height, 102 here)."""
    b = BlockBuilder(REGTEST)
    cs = make_node(REGTEST, b)
    build_base(b, cs)
    for i, v in enumerate([-1, -0x80000000, 0, 1, 3]):
        b.set_tip("c100")
        assert_rejected(cs, b.next_block(f"v{i}", version=v), R.BAD_VERSION, tip=b["c100"])
    accepted = []
    for i, v in enumerate([4, 0x7FFFFFFF, 0x20000000]):
        b.set_tip("c100")
        accepted.append(b.next_block(f"w{i}", version=v))
        assert_accepted(cs, accepted[-1], tip=accepted[0])   # equal work: the first one stays
    b.set_tip("w0")
    coin = b.get_spendable_output()
    for i, (locktime, sequence, ok) in enumerate([
            (0xFFFFFFFF, 0, False), (0xFFFFFFFF, 0xFFFFFFFF, True), (0x80000000, 0xFFFFFFFE, False),
            (499_999_999, 0, False), (500_000_000, 0, True), (102, 0, False), (101, 0, True)]):
        b.set_tip("w0")
        tx = b.wallet.create_spend(coin, n_outputs=1, locktime=locktime, sequence=sequence)
        blk = b.next_block(f"l{i}", txs=[tx], fees=1000)
        if ok:
            assert_accepted(cs, blk)
        else:
            assert_rejected(cs, blk, R.BAD_TXNS_NONFINAL)
    assert cs.calls >= 100 + 8 + 7


def test_p2sh_multisig_spend_in_block(make_node):
    """MiniWallet's P2SH 2-of-3 spends connect; a spend with one signature fails its script."""
    from tests.framework.miniwallet import MultisigKey, sign_p2sh_multisig_input

    b = BlockBuilder(REGTEST)
    cs = make_node(REGTEST, b)
    build_base(b, cs)
    ms = MultisigKey.make(2, [20, 21, 22])
    fund, ms_coin = b.wallet.pay_to_multisig(b.get_spendable_output(), ms, 20 * COIN)
    b.next_block("b1", txs=[fund], fees=1000)
    deliver(cs, b, "b1", tip="b1")
    assert dict(cs.coins_for_script(ms.script_pubkey)) == {
        ms_coin.outpoint: Coin(20 * COIN, ms.script_pubkey, 101, False)}

    one_sig = b.wallet.create_spend(ms_coin, n_outputs=1)
    vin0 = dataclasses.replace(one_sig.vin[0], script_sig=sign_p2sh_multisig_input(one_sig, 0, ms, [1]))
    one_sig = dataclasses.replace(one_sig, vin=(vin0,))
    b.next_block("bad", txs=[one_sig], fees=1000)
    assert_rejected(cs, b["bad"], R.BLOCK_SCRIPT_VERIFY_FLAG_FAILED, tip=b["b1"])
    b.set_tip("b1")
    spend = b.wallet.create_spend(ms_coin, n_outputs=1)           # signers: keys 20 and 21
    b.next_block("b2", txs=[spend], fees=1000)
    assert_accepted(cs, b["b2"], tip=b["b2"])
    assert cs.coins_for_script(ms.script_pubkey) == []
    assert_equivalent(cs, b, make_node)


def test_old_block_version_rejected(make_node):
    """Version 1, 2 and 3 blocks are refused once BIP34/66/65 are active (all from height 1)."""
    b = BlockBuilder(REGTEST)
    cs = make_node(REGTEST, b)
    b.next_block("c1")
    deliver(cs, b, "c1", tip="c1")
    for v in (1, 2, 3):
        b.set_tip("c1")
        b.next_block(f"v{v}", version=v)
        res = assert_rejected(cs, b[f"v{v}"], R.BAD_VERSION, tip=b["c1"])
        if res is not None:
            assert res.error.reject_string == f"bad-version(0x{v:08x})"


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_headers_first_then_blocks_in_any_order(make_node, kind):
    """Headers arrive first (as in headers-first sync); bodies then arrive newest first.

        genesis -> c1 .. c5 (active)
                \\-> h1 .. h8 (headers known first; bodies h8, h7, .., h1)
    """
    b = BlockBuilder(REGTEST)
    cs = make_node(REGTEST, b, kind)
    build_base(b, cs, 5)
    b.set_tip("genesis")
    for i in range(1, 9):
        b.next_block(f"h{i}")
    entries = cs.process_headers([b[f"h{i}"].header for i in range(1, 9)])
    assert [e.hash for e in entries] == [b[f"h{i}"].hash for i in range(1, 9)]
    assert cs.best_header.hash == b["h8"].hash and cs.tip.hash == b["c5"].hash
    for i in range(8, 1, -1):
        res = cs.process_block(b[f"h{i}"])
        assert res.error is None, res
        assert cs.tip.hash == b["c5"].hash
    assert_accepted(cs, b["h1"], tip=b["h8"])
    assert_equivalent(cs, b, make_node)
    # a header that does not connect, and one with bad PoW, are refused with a reason
    from tinynode.consensus.errors import ValidationError

    from tests.framework.blockbuilder import solve

    orphan_hdr = solve(dataclasses.replace(b["h2"].header, prev_hash=bytes(32)))
    with pytest.raises(ValidationError) as exc:
        cs.process_headers([orphan_hdr])
    assert exc.value.reason == R.PREV_BLK_NOT_FOUND
    b.set_tip("h8")
    bad = b.next_block("h9bad", valid_pow=False)
    with pytest.raises(ValidationError) as exc:
        cs.process_headers([bad.header])
    assert exc.value.reason == R.HIGH_HASH


# ---------------------------------------------------------------------- operator actions, limits
@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_invalidate_and_reconsider(make_node, kind):
    """`invalidate_block` moves to the best chain without the block; `reconsider_block` undoes it.

        c100 -> a1 -> a2 -> a3 -> a4      (active; a2 gets invalidated)
             \\-> d1 -> d2 -> d3           (best valid chain without a2)
    """
    b = BlockBuilder(REGTEST)
    cs = make_node(REGTEST, b, kind)
    build_base(b, cs)
    out = [b.get_spendable_output() for _ in range(4)]
    for i in range(1, 5):
        b.next_block(f"a{i}", spend=out[i - 1])
    b.set_tip("c100")
    b.next_block("d1", spend=out[0])
    b.next_block("d2")
    b.next_block("d3", spend=out[2])
    deliver(cs, b, "a1", "a2", "a3", "a4", "d1", "d2", "d3", tip="a4")
    scripts = [b.wallet.script_pubkey]
    cs.invalidate_block(b["a2"].hash)
    assert_state_exact(cs, b, "d3", scripts)
    assert status(cs, b["a2"]) & BlockStatus.FAILED
    assert status(cs, b["a4"]) & BlockStatus.FAILED_MASK
    tips = {b.name_of(e.hash): st for e, st in cs.chain_tips()}
    assert tips["d3"] == "active" and tips["a4"] == "invalid"
    assert_equivalent(cs, b, make_node)
    cs.reconsider_block(b["a2"].hash)
    assert_state_exact(cs, b, "a4", scripts)
    assert not status(cs, b["a4"]) & BlockStatus.FAILED_MASK


def test_time_too_new_is_not_cached_as_invalid(make_node):
    """A block too far in the future is refused now but accepted once the clock catches up
    (Core does not mark time-too-new headers invalid)."""
    b = BlockBuilder(REGTEST)
    clock = [b.now]
    cs = ChainState(REGTEST, MemoryChainStore(), now=lambda: clock[0])
    try:
        b.next_block("c1")
        deliver(cs, b, "c1", tip="c1")
        early = b.next_block("early", time=b.future_time(60))
        assert_rejected(cs, early, R.TIME_TOO_NEW, tip=b["c1"])
        clock[0] += 120
        assert_accepted(cs, early, tip=early)
    finally:
        cs.close()


@pytest.mark.parametrize("cache", [4 * 320, 300 << 20])
def test_reorg_with_tiny_coins_cache(make_node, cache):
    """The coins cache budget does not change results: the deep reorg with a cache of about 4
    coins (over budget after every step: each step flushes the coins and evicts) and with
    the default 300 MiB."""
    b = BlockBuilder(REGTEST)
    cs = make_node(REGTEST, b, dbcache=cache)
    build_base(b, cs)
    out = [b.get_spendable_output() for _ in range(6)]
    k1 = key(1)
    for i in range(1, 5):
        b.next_block(f"a{i}", txs=[spend_to(b, out[i - 1], k1, 3)], fees=1000)
    b.set_tip("c100")
    prev = None
    for i in range(1, 6):
        txs = [spend_to(b, out[i - 1], k1, 2)] if i < 3 else [spend_to(b, prev, k1, 2)]
        b.next_block(f"d{i}", txs=txs, fees=1000)
        prev = out_of(txs[0], 0, k1)
    deliver(cs, b, "a1", "a2", "a3", "a4", "d1", "d2", "d3", "d4", tip="a4")
    deliver(cs, b, "d5", tip="d5")
    assert_state_exact(cs, b, "d5", [k1.script_pubkey, b.wallet.script_pubkey])
    assert_equivalent(cs, b, make_node)


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_long_reorg_over_several_commits(make_node, kind):
    """A 130-block side branch overtaking a 120-block branch (more than one commit's worth of
    blocks: the activation is split, and every step leaves a consistent state).

        c10 -> m1 .. m120           (active)
            \\-> s1 .. s130          (headers first, then bodies in order)
    """
    b = BlockBuilder(REGTEST)
    cs = make_node(REGTEST, b, kind)
    build_base(b, cs, 10)
    for i in range(1, 121):
        b.next_block(f"m{i}")
    deliver(cs, b, *[f"m{i}" for i in range(1, 121)], tip="m120")
    b.set_tip("c10")
    for i in range(1, 131):
        b.next_block(f"s{i}")
    cs.process_headers([b[f"s{i}"].header for i in range(1, 131)])
    events = []
    cs.subscribe(events.append)
    for i in range(130, 0, -1):            # bodies newest first: nothing connects until s1
        assert cs.process_block(b[f"s{i}"]).error is None
    assert cs.tip.hash == b["s130"].hash and cs.height == 140
    disconnected = [e for e in events if type(e).__name__ == "BlockDisconnected"]
    connected = [e for e in events if type(e).__name__ == "BlockConnected"]
    assert len(disconnected) == 120 and len(connected) == 130
    assert_state_exact(cs, b, "s130", [b.wallet.script_pubkey])
    assert_equivalent(cs, b, make_node)


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_same_txs_on_both_branches(make_node, kind):
    """The same tx — and the very same coinbase — in competing blocks: after each reorg the coin
    exists once and the tx index points at the block on the active chain.

        c100 -> a1 [cb1, T] -> a2
             \\-> d1 [cb1, T] -> d2 -> d3      (d1 has a1's coinbase and T, different header time)
    """
    b = BlockBuilder(REGTEST)
    cs = make_node(REGTEST, b, kind)
    build_base(b, cs)
    t = spend_to(b, b.get_spendable_output(), key(1), 2)
    a1 = b.next_block("a1", txs=[t], fees=1000)
    b.next_block("a2")
    deliver(cs, b, "a1", "a2", tip="a2")
    b.set_tip("c100")
    d1 = b.next_block("d1", txs=[t], coinbase=a1.txs[0], time=a1.header.time + 1)
    assert d1.hash != a1.hash and d1.txs == a1.txs
    b.next_block("d2")
    b.next_block("d3")
    scripts = [b.wallet.script_pubkey, key(1).script_pubkey]
    deliver(cs, b, "d1", "d2", tip="a2")
    deliver(cs, b, "d3", tip="d3")
    assert_state_exact(cs, b, "d3", scripts)
    assert cs.get_tx(t.txid)[1:] == (d1.hash, 101)
    b.set_tip("a2")
    b.next_block("a3")
    b.next_block("a4")
    deliver(cs, b, "a3", "a4", tip="a4")
    assert_state_exact(cs, b, "a4", scripts)
    assert cs.get_tx(t.txid)[1:] == (a1.hash, 101)
    assert_equivalent(cs, b, make_node)


def test_unconnected_blocks_are_bounded(make_node):
    """Orphan blocks are kept in a bounded store (oldest evicted); evicted ones can simply be
    delivered again, and the node still ends on the best chain.

        genesis -> c1 .. c3 (active)
                \\-> o1 .. o30  (o30 .. o2 delivered first, with room for only 8 of them)
    """
    b = BlockBuilder(REGTEST)
    cs = make_node(REGTEST, b, max_unconnected_blocks=8)
    build_base(b, cs, 3)
    b.set_tip("genesis")
    for i in range(1, 31):
        b.next_block(f"o{i}")
    for i in range(30, 1, -1):
        res = cs.process_block(b[f"o{i}"])
        assert res.error is None and res.status == "orphan"
        assert cs.unconnected_count <= 8
    assert_accepted(cs, b["o1"])
    assert cs.tip.hash == b["o9"].hash                              # o2..o9 were the last kept
    for i in range(10, 31):                                         # the evicted ones, again
        assert_accepted(cs, b[f"o{i}"])
    assert cs.tip.hash == b["o30"].hash and cs.unconnected_count == 0
    assert_equivalent(cs, b, make_node)


# ---------------------------------------------------------------------- bad txs in blocks
def _bad_tx_catalogue(b: BlockBuilder, coin: Utxo) -> list[tuple[str, Tx, R]]:
    """Core `data/invalid_txs.py` templates that are invalid in a block (CheckTransaction)."""
    from tinynode.primitives.tx import MAX_MONEY, NULL_OUTPOINT

    spk = key(1).script_pubkey
    signed = b.wallet.spend_many

    def unsigned(vin, vout) -> Tx:
        return Tx(1, tuple(vin), tuple(vout), 0)

    return [
        ("vout-empty", signed([coin], [], fee=coin.value), R.BAD_TXNS_VOUT_EMPTY),
        ("vout-negative", signed([coin], [(spk, -1)], fee=coin.value + 1), R.BAD_TXNS_VOUT_NEGATIVE),
        ("vout-toolarge", signed([coin], [(spk, MAX_MONEY + 1)], fee=0), R.BAD_TXNS_VOUT_TOOLARGE),
        ("txouttotal-toolarge", signed([coin], [(spk, MAX_MONEY), (spk, MAX_MONEY)], fee=0),
         R.BAD_TXNS_TXOUTTOTAL_TOOLARGE),
        ("prevout-null", unsigned([TxIn(coin.outpoint), TxIn(NULL_OUTPOINT)], [TxOut(1, spk)]),
         R.BAD_TXNS_PREVOUT_NULL),
        ("inputs-duplicate", unsigned([TxIn(coin.outpoint), TxIn(coin.outpoint)], [TxOut(1, spk)]),
         R.BAD_TXNS_INPUTS_DUPLICATE),
    ]


def test_bad_transactions_in_blocks(make_node):
    """Each CheckTransaction failure makes the block invalid with Core's reason; the same
    coin is then spent validly (nothing of the bad blocks stuck)."""
    b = BlockBuilder(REGTEST)
    cs = make_node(REGTEST, b)
    build_base(b, cs)
    coin = b.get_spendable_output()
    for name, tx, reason in _bad_tx_catalogue(b, coin):
        b.set_tip("c100")
        b.next_block(name, txs=[tx])
        assert_rejected(cs, b[name], reason, tip=b["c100"])
    b.set_tip("c100")
    b.next_block("vin-empty", txs=[Tx(1, (), (TxOut(1, key(1).script_pubkey),), 0)])
    assert_rejected(cs, b["vin-empty"], R.BAD_TXNS_VIN_EMPTY, tip=b["c100"])
    b.set_tip("c100")
    b.next_block("short-cb", coinbase_script_sig=push_int(101))          # 2 bytes: fine
    assert_accepted(cs, b["short-cb"], tip=b["short-cb"])
    fresh = BlockBuilder(REGTEST, now=b.now)                             # height 1: OP_1 only
    one_byte = fresh.next_block("h1", coinbase_script_sig=push_int(1))
    cs2 = make_node(REGTEST, b)
    assert_rejected(cs2, one_byte, R.BAD_CB_LENGTH)
    b.set_tip("short-cb")
    b.next_block("ok", spend=coin)
    assert_accepted(cs, b["ok"], tip=b["ok"])
    assert_equivalent(cs, b, make_node)


def test_p2sh_sigops_counted_at_connect(make_node):
    """P2SH redeem-script sigops count towards the block limit (Core ConnectBlock
    `GetTransactionSigOpCost`): 41 inputs redeeming 500-OP_CHECKSIG scripts are 20,500 sigops,
    `bad-blk-sigops`, although the legacy count of the block is tiny.

        c100 -> f1 (fund 41 P2SH outputs) -> b2 (spends them all)*
    """
    from tinynode.primitives.hashes import hash160

    b = BlockBuilder(REGTEST)
    cs = make_node(REGTEST, b)
    build_base(b, cs)
    redeem = b"\xac" * 500
    p2sh = b"\xa9\x14" + hash160(redeem) + b"\x87"
    coin = b.get_spendable_output()
    n = 41
    share = (coin.value - 1000) // n
    fund = b.wallet.spend_many([coin], [(p2sh, share)] * n, fee=coin.value - share * n)
    b.next_block("f1", txs=[fund], fees=coin.value - share * n)
    deliver(cs, b, "f1", tip="f1")
    spend = Tx(1, tuple(TxIn(OutPoint(fund.txid, i), push_data(redeem)) for i in range(n)),
               (TxOut(share * n - 1000, key(1).script_pubkey),), 0)
    b.next_block("b2", txs=[spend], fees=1000)
    assert_rejected(cs, b["b2"], R.BAD_BLK_SIGOPS, tip=b["f1"])


def test_locktime_by_time_uses_median_time_past(make_node):
    """BIP113: a time-locked tx is final only if its locktime is below the previous block's
    median-time-past (not the block's own timestamp)."""
    b = BlockBuilder(REGTEST)
    cs = make_node(REGTEST, b)
    build_base(b, cs)
    coin = b.get_spendable_output()
    mtp = b.median_time_past(b["c100"])
    assert mtp > 500_000_000
    late = b.wallet.create_spend(coin, n_outputs=1, locktime=mtp, sequence=0)
    b.next_block("b1", txs=[late], fees=1000)
    assert b["b1"].header.time > mtp                    # final by the block's own time, not by MTP
    assert_rejected(cs, b["b1"], R.BAD_TXNS_NONFINAL, tip=b["c100"])
    b.set_tip("c100")
    ok = b.wallet.create_spend(coin, n_outputs=1, locktime=mtp - 1, sequence=0)
    b.next_block("b2", txs=[ok], fees=1000)
    assert_accepted(cs, b["b2"], tip=b["b2"])


def test_bip68_time_based_relative_lock(make_node):
    """BIP68 by time: sequence = TYPE_FLAG | 3 locks a coin for 3 x 512 s of median-time-past,
    measured from the MTP of the block before the coin's block."""
    type_flag = 1 << 22
    b = BlockBuilder(REGTEST)
    cs = make_node(REGTEST, b)
    build_base(b, cs)
    t0 = spend_to(b, b.get_spendable_output(), key(1))
    b.next_block("b101", txs=[t0], fees=1000)
    deliver(cs, b, "b101", tip="b101")
    coin_time = b.median_time_past(b["c100"])
    needed = coin_time + 3 * 512
    t1 = b.wallet.create_spend(out_of(t0, 0, key(1)), n_outputs=1, version=2, sequence=type_flag | 3)
    rejected = accepted = 0
    for h in range(102, 112):
        tip = b.tip_name
        if b.median_time_past(b[tip]) >= needed:
            b.next_block(f"ok{h}", txs=[t1], fees=1000)
            assert_accepted(cs, b[f"ok{h}"], tip=b[f"ok{h}"])
            accepted += 1
            break
        b.next_block(f"locked{h}", txs=[t1], fees=1000)
        assert_rejected(cs, b[f"locked{h}"], R.BAD_TXNS_NONFINAL, tip=b[tip])
        rejected += 1
        b.set_tip(tip)
        b.next_block(f"e{h}")
        deliver(cs, b, f"e{h}", tip=f"e{h}")
    assert rejected >= 2 and accepted == 1


# ---------------------------------------------------------------------- sync helpers, chain tips
def test_locator_fork_and_chain_tips(make_node):
    """Block locator, find_fork, headers_after and chain_tips across a small tree.

        c10 -> u1                               (body only, never connected: valid-headers)
        c20 -> v1 -> v2                         (active first, then reorged away: valid-fork)
            \\-> a1 -> a2 -> a3 -> a4 -> x5*     (active to a4; x5 pays too much: invalid)
            \\-> h1 -> h2                        (headers only)
    """
    b = BlockBuilder(REGTEST)
    cs = make_node(REGTEST, b)
    build_base(b, cs, 20)
    b.set_tip("c10")
    b.next_block("u1")
    b.set_tip("c20")
    b.next_block("v1")
    b.next_block("v2")
    deliver(cs, b, "u1", "v1", "v2", tip="v2")
    b.set_tip("c20")
    for i in range(1, 5):
        b.next_block(f"a{i}")
    deliver(cs, b, "a1", "a2", "a3", "a4", tip="a4")
    b.next_block("x5", additional_coinbase_value=1)
    assert_rejected(cs, b["x5"], R.BAD_CB_AMOUNT, tip=b["a4"])
    b.set_tip("c20")
    b.next_block("h1")
    b.next_block("h2")
    cs.process_headers([b["h1"].header, b["h2"].header])

    tips = {b.name_of(e.hash): st for e, st in cs.chain_tips()}
    assert tips == {"a4": "active", "v2": "valid-fork", "u1": "valid-headers",
                    "h2": "headers-only", "x5": "invalid"}

    loc = cs.block_locator()
    assert loc[0] == b["a4"].hash and loc[-1] == REGTEST.genesis.hash
    assert all(cs.get_block_hash(cs.get_entry(h).height) == h for h in loc)
    assert len(loc) < 24                               # exponential steps, not every block

    v2_loc = cs.block_locator(cs.get_entry(b["v2"].hash))
    assert v2_loc[0] == b["v2"].hash
    assert cs.find_fork(v2_loc).hash == b["c20"].hash
    assert cs.find_fork([bytes(32), b"\x01" * 32]).hash == REGTEST.genesis.hash
    after = cs.headers_after(v2_loc)
    assert [h.hash for h in after] == [b[f"a{i}"].hash for i in range(1, 5)]
    assert [h.hash for h in cs.headers_after(v2_loc, stop_hash=b["a2"].hash)] == [b["a1"].hash, b["a2"].hash]
    assert [h.hash for h in cs.headers_after(v2_loc, limit=1)] == [b["a1"].hash]
    assert [h.hash for h in cs.headers_after([], stop_hash=b["a3"].hash)] == [b["a3"].hash]
    assert cs.headers_after([b["a4"].hash]) == []
