"""Mempool accept/reject with Core's reasons, unconfirmed chains, blocks, reorgs, persistence."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.framework.miniwallet import MiniWallet, MultisigKey, Utxo, key, push_data
from tests.unit.test_mempool_helpers import NOW, FakeChain
from tinynode.consensus.errors import PolicyError, RejectReason, ValidationError
from tinynode.mempool.policy import DEFAULT_MIN_RELAY_FEE
from tinynode.mempool import Mempool, MissingInputsError, PolicyConfig
from tinynode.mempool.policy import FeeRate, dust_threshold
from tinynode.params import REGTEST
from tinynode.primitives.tx import COIN, OutPoint, Tx, TxIn, TxOut
from tinynode.script.script import multisig_script, nulldata_script, p2pk_script

R = RejectReason


def setup(height: int = 200, config: PolicyConfig | None = None, n: int = 4, value: int = 10 * COIN):
    chain = FakeChain(height)
    pool = Mempool(REGTEST, chain, config, clock=lambda: NOW)
    wallet = MiniWallet(0)
    utxos = chain.fund(wallet, value, n)
    return chain, pool, wallet, utxos


def reject(pool: Mempool, tx: Tx, reason: str, exc=(PolicyError, ValidationError)) -> Exception:
    with pytest.raises(exc) as info:
        pool.accept(tx, NOW)
    assert info.value.reason == reason, f"got {info.value.reason!r} ({info.value})"
    assert tx.txid not in pool
    return info.value


def spend_to(wallet: MiniWallet, u: Utxo, outputs, **kw) -> Tx:
    return wallet.create_spend(u, outputs, **kw)


# --------------------------------------------------------------------------- accept

def test_accepts_signed_p2pkh_spend_with_entry_values():
    chain, pool, w, (u, *_) = setup()
    tx = w.create_spend(u, fee=1000)
    entry = pool.accept(tx, NOW)
    assert entry.txid == tx.txid and tx.txid in pool and len(pool) == 1
    assert entry.fee == 1000 and entry.size == len(tx.raw) and entry.time == NOW
    assert entry.ancestor_count == entry.descendant_count == 1
    assert entry.ancestor_fees == entry.descendant_fees == 1000
    assert entry.height == chain.height
    assert pool.spender_of(u.outpoint) == tx.txid
    assert pool.total_size == entry.size and pool.total_fees == 1000
    info = pool.info(NOW)
    assert (info.size, info.bytes, info.total_fee) == (1, entry.size, 1000)
    assert info.min_relay_fee == FeeRate(DEFAULT_MIN_RELAY_FEE)


def test_already_in_mempool():
    _, pool, w, (u, *_) = setup()
    tx = w.create_spend(u)
    pool.accept(tx, NOW)
    with pytest.raises(PolicyError) as info:
        pool.accept(tx, NOW)
    assert info.value.reason == "txn-already-in-mempool"


def test_missing_inputs_and_already_known():
    chain, pool, w, (u, *_) = setup()
    ghost = Utxo(OutPoint(b"\x77" * 32, 0), 5 * COIN, w.key)
    err = reject(pool, w.create_spend(ghost), "bad-txns-inputs-missingorspent", MissingInputsError)
    assert err.missing_parents == [b"\x77" * 32]
    tx = w.create_spend(u)
    chain.connect([tx])                     # confirmed: its input is spent, its outputs exist
    reject(pool, tx, "txn-already-known")
    # A different spend of the same (now spent) coin: missing or spent.
    reject(pool, w.create_spend(u, fee=5000), "bad-txns-inputs-missingorspent")


def test_consensus_failures_are_validation_errors():
    chain, pool, w, (u, u2, *_) = setup()
    no_out = Tx(1, (TxIn(u.outpoint),), ())
    reject(pool, no_out, R.BAD_TXNS_VOUT_EMPTY, ValidationError)
    too_much = spend_to(w, u, [(w.script_pubkey, u.value + 1)])
    reject(pool, too_much, R.BAD_TXNS_IN_BELOWOUT, ValidationError)
    dup = Tx(1, (TxIn(u.outpoint), TxIn(u.outpoint)), (TxOut(1000, w.script_pubkey),))
    reject(pool, dup, R.BAD_TXNS_INPUTS_DUPLICATE, ValidationError)
    cb = chain.blocks[chain.connect([]).hash].txs[0]
    reject(pool, cb, "coinbase", ValidationError)
    # Coinbase maturity (regtest: 100).
    (young,) = chain.fund(w, 50 * COIN, coinbase=True, height=chain.height - 50)
    reject(pool, w.create_spend(young), R.BAD_TXNS_PREMATURE_SPEND_OF_COINBASE, ValidationError)
    (old,) = chain.fund(w, 50 * COIN, coinbase=True, height=chain.height - 99)
    pool.accept(w.create_spend(old), NOW)


# --------------------------------------------------------------------------- policy

def test_nonstandard_outputs_are_refused_with_scriptpubkey():
    _, pool, w, (u, *_) = setup()
    reject(pool, spend_to(w, u, [(b"\x51", 10_000)]), "scriptpubkey")
    four = [key(i).pubkey for i in range(4)]
    reject(pool, spend_to(w, u, [(multisig_script(1, four), 10_000)]), "scriptpubkey")
    reject(pool, spend_to(w, u, [(b"\x6a\xa9", 0)]), "scriptpubkey")   # OP_RETURN, then no push


def test_standard_templates_are_accepted():
    _, pool, w, utxos = setup(n=5)
    three = [key(i).pubkey for i in range(3)]
    ms = MultisigKey.make(2, [1, 2, 3])
    change = (w.script_pubkey, 5 * COIN)
    outputs = [
        [(p2pk_script(key(5).pubkey), 10_000), change],
        [(multisig_script(2, three), 10_000), change],
        [(ms.script_pubkey, 10_000), change],
        [(nulldata_script(bytes(80)), 0), change],          # 83 bytes: Core's limit before v30
    ]
    for u, outs in zip(utxos, outputs):
        pool.accept(spend_to(w, u, outs), NOW)
    assert len(pool) == 4


def test_null_data_outputs_share_the_datacarrier_budget():
    """Core v30: several OP_RETURN outputs are standard; their scripts total at most
    -datacarriersize bytes (default 100,000), else "datacarrier"."""
    _, pool, w, (u, u2, *_) = setup()
    outs = [(nulldata_script(b"a"), 0), (nulldata_script(bytes(500)), 0), (w.script_pubkey, 5 * COIN)]
    pool.accept(spend_to(w, u, outs), NOW)
    from dataclasses import replace
    pool.config = replace(pool.config, max_datacarrier_bytes=505)
    outs = [(nulldata_script(b"a"), 0), (nulldata_script(bytes(500)), 0), (w.script_pubkey, 5 * COIN)]
    reject(pool, spend_to(w, u2, outs), "datacarrier")


def test_dust_threshold_matches_core_formula():
    p2pkh = TxOut(0, key(1).script_pubkey)
    assert dust_threshold(p2pkh) == 546            # (34 + 148) * 3
    assert dust_threshold(TxOut(0, MultisigKey.make(1, [1]).script_pubkey)) == 540   # (32 + 148) * 3
    assert dust_threshold(TxOut(0, nulldata_script(b"x"))) == 0
    _, pool, w, (u, u2, *_) = setup()
    reject(pool, spend_to(w, u, [(key(1).script_pubkey, 545), (w.script_pubkey, 5 * COIN)]), "dust")
    pool.accept(spend_to(w, u2, [(key(1).script_pubkey, 546), (w.script_pubkey, 5 * COIN)]), NOW)


def test_tx_size_limit():
    _, pool, w, (u, *_) = setup()
    outs = [(key(1).script_pubkey, 1000)] * 2950       # ~100.3 kB
    tx = spend_to(w, u, outs)
    assert len(tx.raw) > 100_000
    reject(pool, tx, "tx-size")


def test_min_relay_fee():
    _, pool, w, (u, u2, *_) = setup()
    tx = w.create_spend(u, fee=10)                  # Core v31's minimum: 100 sat/kvB, ~19 sat here
    err = reject(pool, tx, "min relay fee not met")
    assert err.detail == f"10 < {FeeRate(DEFAULT_MIN_RELAY_FEE).fee(len(tx.raw))}"   # Core: fee < the rate's fee
    # Exactly the minimum (signature lengths vary by a byte: find a fee equal to the rate's fee).
    rate = FeeRate(DEFAULT_MIN_RELAY_FEE)
    candidates = (w.create_spend(u2, fee=f, locktime=lt) for lt in range(50) for f in range(18, 25))
    tx_ok = next(t for t in candidates if u2.value - sum(o.value for o in t.vout) == rate.fee(len(t.raw)))
    pool.accept(tx_ok, NOW)


def test_version_scriptsig_rules():
    _, pool, w, (u, u2, u3, _) = setup()
    reject(pool, w.create_spend(u, version=4), "version")          # 3 is TRUC, standard
    tx = w.create_spend(u2)
    bad_sig = b"\x61" + tx.vin[0].script_sig             # OP_NOP first: not push-only
    reject(pool, replace(tx, vin=(replace(tx.vin[0], script_sig=bad_sig),)), "scriptsig-not-pushonly")
    small = Tx(1, (TxIn(u3.outpoint, b"\x51"),), (TxOut(0, nulldata_script(b"")),))
    assert len(small.raw) < 65
    reject(pool, small, "tx-size-small")


def test_script_failures_use_mempool_script_verify_reason():
    _, pool, w, (u, u2, *_) = setup()
    tx = w.create_spend(u)
    other = MiniWallet(9).create_spend(Utxo(u.outpoint, u.value, key(9)))   # signed by the wrong key
    forged = replace(tx, vin=(replace(tx.vin[0], script_sig=other.vin[0].script_sig),))
    err = reject(pool, forged, "mempool-script-verify-flag-failed (Script failed an OP_EQUALVERIFY operation)")
    assert isinstance(err, PolicyError)
    # Valid by consensus, not by policy: an extra push leaves two items (CLEANSTACK).
    tx2 = w.create_spend(u2)
    extra = replace(tx2, vin=(replace(tx2.vin[0], script_sig=push_data(b"\x01\x02") + tx2.vin[0].script_sig),))
    reject(pool, extra, "mempool-script-verify-flag-failed (Stack size must be exactly one after execution)")


def test_non_final_and_bip68():
    chain, pool, w, (u, u2, u3, _) = setup()
    height_locked = w.create_spend(u, locktime=chain.height + 2, sequence=0)
    reject(pool, height_locked, "non-final")
    pool.accept(w.create_spend(u, locktime=chain.height, sequence=0), NOW)
    # BIP68: a version-2 input with a relative height lock of 500 blocks on a coin at height 1.
    reject(pool, w.create_spend(u2, version=2, sequence=500), "non-BIP68-final")
    pool.accept(w.create_spend(u3, version=2, sequence=chain.height - 1), NOW)


# --------------------------------------------------------------------------- chains

def test_unconfirmed_chain_with_ancestor_and_descendant_counts():
    _, pool, w, (u, *_) = setup()
    chain_txs = w.create_chain(u, 25, fee=1000)
    for tx in chain_txs:
        pool.accept(tx, NOW)
    first, last = pool.get(chain_txs[0].txid), pool.get(chain_txs[-1].txid)
    assert first.descendant_count == 25 and first.ancestor_count == 1
    assert last.ancestor_count == 25 and last.ancestor_fees == 25 * 1000
    assert last.depends == (chain_txs[-2].txid,)
    assert first.spent_by == (chain_txs[1].txid,)
    more = w.create_chain(Utxo(OutPoint(chain_txs[-1].txid, 0), chain_txs[-1].vout[0].value, w.key), 1)[0]
    err = reject(pool, more, "too-long-mempool-chain")
    assert "ancestors" in err.detail
    # RPC view is parents first.
    assert [e.txid for e in pool.entries()] == [t.txid for t in chain_txs]


def test_descendant_limit():
    _, pool, w, (u, *_) = setup()
    fan, outs = w.fan_out(u, 26, fee=5000)
    pool.accept(fan, NOW)
    for o in outs[:24]:
        pool.accept(w.create_spend(o, n_outputs=1), NOW)
    assert pool.get(fan.txid).descendant_count == 25
    err = reject(pool, w.create_spend(outs[24], n_outputs=1), "too-long-mempool-chain")
    assert "descendants" in err.detail


def test_ancestor_and_descendant_size_limits():
    cfg = PolicyConfig(ancestor_size_limit=500, descendant_size_limit=10_000)
    _, pool, w, (u, *_) = setup(config=cfg)
    a, b, c = w.create_chain(u, 3)
    pool.accept(a, NOW)
    pool.accept(b, NOW)
    err = reject(pool, c, "too-long-mempool-chain")
    assert "ancestor size" in err.detail
    cfg = PolicyConfig(descendant_size_limit=350)
    _, pool, w, (u, *_) = setup(config=cfg)
    a, b = w.create_chain(u, 2)
    pool.accept(a, NOW)
    err = reject(pool, b, "too-long-mempool-chain")
    assert "descendant size" in err.detail


def test_sigop_limit_for_standard_txs():
    _, pool, w, (u, *_) = setup(value=50 * COIN)
    ms = multisig_script(1, [key(1).pubkey])               # 20 sigops each (inaccurate count)
    outs = [(ms, 1000)] * 201
    reject(pool, spend_to(w, u, outs), "bad-txns-too-many-sigops")


# --------------------------------------------------------------------------- blocks and reorgs

def test_block_removes_confirmed_and_conflicting_txs():
    chain, pool, w, (u1, u2, u3, _) = setup()
    a = w.create_spend(u1)
    a_child = w.create_spend(w.outputs_of(a)[0])
    b = w.create_spend(u2, fee=2000)
    b_child = w.create_spend(w.outputs_of(b)[0])
    c = w.create_spend(u3)
    for tx in (a, a_child, b, b_child, c):
        pool.accept(tx, NOW)
    b_double = w.create_spend(u2, fee=50_000)           # not in the pool; the block has it
    chain.connect([a, b_double])
    assert a.txid not in pool and a_child.txid in pool
    assert pool.get(a_child.txid).ancestor_count == 1 and pool.get(a_child.txid).depends == ()
    assert b.txid not in pool and b_child.txid not in pool      # conflict and its descendant
    assert c.txid in pool
    assert pool.total_size == len(a_child.raw) + len(c.raw)


def test_reorg_returns_disconnected_txs_and_drops_new_chain_double_spends():
    chain, pool, w, (u1, u2, u3, u4) = setup()
    p = w.create_spend(u1)
    child = w.create_spend(w.outputs_of(p)[0])          # spends p: both confirmed together
    x = w.create_spend(u2)
    y = w.create_spend(u3)
    for tx in (p, child, x, y):
        pool.accept(tx, NOW)
    chain.connect([p, child, x])
    assert len(pool) == 1                                # only y left
    grandchild = w.create_spend(w.outputs_of(child)[0])  # spends a confirmed output
    pool.accept(grandchild, NOW)
    # Reorg: the block goes; the new chain confirms a double spend of x's input instead.
    x_double = w.create_spend(u2, fee=9999)
    chain.reorg(1, [[x_double], []])
    assert p.txid in pool and child.txid in pool         # resurrected, in order
    assert grandchild.txid in pool and y.txid in pool    # pool txs stay
    assert x.txid not in pool and x_double.txid not in pool
    assert pool.get(grandchild.txid).ancestor_count == 3
    assert pool.get(p.txid).descendant_count == 3


def test_reorg_does_not_return_immature_coinbase_spends():
    chain, pool, w, _ = setup(height=150)
    chain.connect([])
    (cb,) = chain.fund(w, 50 * COIN, coinbase=True, height=chain.height + 1 - 100)  # just mature
    spend = w.create_spend(cb)
    pool.accept(spend, NOW)
    chain.connect([spend])
    assert len(pool) == 0
    chain.reorg(2, [])            # the tip drops by two blocks: the coinbase is immature again
    assert spend.txid not in pool and len(pool) == 0


# --------------------------------------------------------------------------- persistence

def test_save_and_load_revalidates(tmp_path):
    chain, pool, w, (u1, u2, u3, _) = setup()
    txs = [w.create_spend(u1), w.create_spend(u2)]
    txs.append(w.create_spend(w.outputs_of(txs[0])[0]))
    for tx in txs:
        pool.accept(tx, NOW - 100)
    path = tmp_path / "mempool.dat"
    assert pool.save(path) == 3
    chain.connect([txs[1]])                # one of them is confirmed while we were down
    fresh = Mempool(REGTEST, chain, clock=lambda: NOW)
    assert fresh.load(path, NOW) == (2, 1)
    assert set(fresh.txids()) == {txs[0].txid, txs[2].txid}
    assert fresh.get(txs[0].txid).time == NOW - 100
    # Expired entries are not loaded; a damaged file loads nothing.
    assert Mempool(REGTEST, chain).load(path, NOW + 400 * 3600) == (0, 3)
    path.write_bytes(path.read_bytes()[:-5])
    assert Mempool(REGTEST, chain).load(path, NOW) == (0, 0)
    assert Mempool(REGTEST, chain).load(tmp_path / "missing.dat", NOW) == (0, 0)


def test_expiry():
    _, pool, w, (u1, u2, *_) = setup()
    old = w.create_spend(u1)
    pool.accept(old, NOW - 337 * 3600)
    new = w.create_spend(u2)
    pool.accept(new, NOW)             # accepting runs Expire
    assert old.txid not in pool and new.txid in pool


def test_nonstandard_inputs_and_p2sh_sigop_limit():
    from tests.framework.miniwallet import sign_p2sh_multisig_input
    from tinynode.primitives.coin import Coin

    chain, pool, w, (u, *_) = setup()
    # A coin locked by a non-standard script (OP_1): valid to spend by consensus, not relayed.
    odd = OutPoint(b"\x42" * 32, 0)
    chain.coins[odd] = Coin(COIN, b"\x51", 5, False)
    spend = Tx(1, (TxIn(odd, b""),), (TxOut(COIN - 10_000, w.script_pubkey),))
    reject(pool, spend, "bad-txns-nonstandard-inputs")
    # P2SH whose redeem script has 16 sigops (> 15): 1-of-16 multisig counted accurately.
    ms = MultisigKey.make(1, range(1, 17))
    op = OutPoint(b"\x43" * 32, 0)
    chain.coins[op] = Coin(COIN, ms.script_pubkey, 5, False)
    tx = Tx(1, (TxIn(op),), (TxOut(COIN - 10_000, w.script_pubkey),))
    tx = replace(tx, vin=(replace(tx.vin[0], script_sig=sign_p2sh_multisig_input(tx, 0, ms)),))
    err = reject(pool, tx, "bad-txns-nonstandard-inputs")
    assert "16 sigops" in err.detail
    # 15 keys is the most a standard P2SH multisig input may have.
    ms15 = MultisigKey.make(1, range(1, 16))
    op15 = OutPoint(b"\x44" * 32, 0)
    chain.coins[op15] = Coin(COIN, ms15.script_pubkey, 5, False)
    tx15 = Tx(1, (TxIn(op15),), (TxOut(COIN - 10_000, w.script_pubkey),))
    tx15 = replace(tx15, vin=(replace(tx15.vin[0], script_sig=sign_p2sh_multisig_input(tx15, 0, ms15)),))
    assert pool.accept(tx15, NOW).sigops == (15 + 1) * 4   # + the P2PKH output's CHECKSIG; sigop cost


def test_scriptsig_size_and_bare_multisig_switch():
    _, pool, w, (u, u2, *_) = setup()
    tx = w.create_spend(u)
    big = push_data(bytes(1000)) + push_data(bytes(700)) + tx.vin[0].script_sig
    reject(pool, replace(tx, vin=(replace(tx.vin[0], script_sig=big),)), "scriptsig-size")
    chain, pool2, w2, (v, *_) = setup(config=PolicyConfig(permit_bare_multisig=False))
    bare = multisig_script(1, [key(1).pubkey])
    reject(pool2, spend_to(w2, v, [(bare, 10_000), (w2.script_pubkey, COIN)]), "bare-multisig")


def test_views_for_rpc_and_wallet():
    chain, pool, w, (u1, u2, *_) = setup()
    a = w.create_spend(u1, fee=2000)
    b = w.create_spend(w.outputs_of(a)[0], fee=3000)
    pool.accept(a, NOW)
    pool.accept(b, NOW + 5)
    ea, eb = pool.get(a.txid), pool.get(b.txid)
    assert (ea.descendant_count, ea.descendant_size, ea.descendant_fees) == (2, ea.size + eb.size, 5000)
    assert (eb.ancestor_count, eb.ancestor_size, eb.ancestor_fees) == (2, ea.size + eb.size, 5000)
    assert eb.time == NOW + 5 and eb.fee_rate == FeeRate(3000 * 1000 // eb.size)
    assert pool.ancestors(b.txid) == {a.txid} and pool.descendants(a.txid) == {b.txid}
    assert pool.get(b"\x00" * 32) is None and pool.get_tx(a.txid) == a
    # The pool-applied coin view: a's spent input is gone, a's unspent output exists.
    assert pool.get_coin(u1.outpoint) is None
    assert pool.get_coin(OutPoint(a.txid, 1)).value == a.vout[1].value
    assert pool.get_coin(OutPoint(a.txid, 0)) is None            # spent by b
    assert pool.get_coin(u2.outpoint).value == u2.value          # untouched chain coin
    info = pool.info(NOW)
    assert (info.size, info.total_fee, info.orphans, info.full_rbf) == (2, 5000, 0, True)
    assert info.mempool_min_fee == FeeRate(DEFAULT_MIN_RELAY_FEE) and info.max_mempool == 50_000_000
    assert pool.remove(a.txid) == {a.txid, b.txid} and len(pool) == 0


def test_test_accept_checks_everything_and_changes_nothing():
    _, pool, w, (u1, u2, *_) = setup()
    a = w.create_spend(u1, fee=2000)
    pool.accept(a, NOW)
    child = w.create_spend(w.outputs_of(a)[0], fee=3000)
    before = (pool.txids(), pool.total_size, pool.sequence)
    e = pool.test_accept(child, NOW)
    assert e.txid == child.txid and e.ancestor_count == 2 and e.ancestor_fees == 5000
    replacement = w.create_spend(u1, fee=50_000)
    assert pool.test_accept(replacement, NOW).fee == 50_000        # would replace a (and nothing happens)
    with pytest.raises(PolicyError) as info:
        pool.test_accept(w.create_spend(u1, fee=2010), NOW)        # rule 4: +10 < ~19 sat incremental
    assert info.value.reason == "insufficient fee"
    with pytest.raises(PolicyError) as info:
        pool.test_accept(a, NOW)
    assert info.value.reason == "txn-already-in-mempool"
    assert (pool.txids(), pool.total_size, pool.sequence) == before
    assert child.txid not in pool and a.txid in pool


def test_pay_to_anchor_is_standard_to_create_and_to_spend_without_witness():
    """Core v28+: P2A (`OP_1 <0x4e73>`) outputs are standard; spending one with a witness is
    "bad-witness-nonstandard" (IsWitnessStandard: third-party wtxid malleability), without one
    it is accepted."""
    from tinynode.primitives.coin import Coin
    chain, pool, w, (u, *_) = setup()
    anchor = b"\x51\x02\x4e\x73"
    pool.accept(spend_to(w, u, [(anchor, 10_000), (w.script_pubkey, 5 * COIN)]), NOW)
    op = OutPoint(bytes([7]) * 32, 0)
    chain.coins[op] = Coin(10_000, anchor, 1, False)
    out = (TxOut(9_000, w.script_pubkey),)
    reject(pool, Tx(2, (TxIn(op, b"", 0xFFFFFFFD, (b"f",)),), out, 0), "bad-witness-nonstandard")
    spend = Tx(2, (TxIn(op, b"", 0xFFFFFFFD),), out, 0)
    pool.accept(spend, NOW)
    assert spend.txid in pool
