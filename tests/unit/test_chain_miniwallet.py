"""MiniWallet: its local legacy sighash matches Core's sighash.json, and what it signs verifies.

Signatures are checked with python-bitcoinlib's script interpreter (an implementation nobody on
the team wrote) and, once it exists, with tinynode's own `verify_script`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.framework.miniwallet import (
    MiniWallet, MultisigKey, Utxo, key, legacy_sighash, legacy_sighash_local, push_int,
)
from tinynode.params import REGTEST
from tinynode.primitives.hashes import hex_to_hash
from tinynode.primitives.tx import COIN, OutPoint, Tx

VECTORS = Path("/work/shared/vectors/bitcoin-core")
if not (VECTORS / "sighash.json").exists():  # in-tree copy, if the data was vendored
    VECTORS = Path(__file__).resolve().parents[1] / "data" / "bitcoin-core"


def _sighash_rows():
    path = VECTORS / "sighash.json"
    if not path.exists():
        return []
    return [r for r in json.loads(path.read_text()) if len(r) == 5]


def test_local_sighash_matches_core_vectors():
    rows = _sighash_rows()
    if not rows:
        pytest.skip("sighash.json not available")
    for raw, script_hex, index, hash_type, expected in rows:
        tx = Tx.from_hex(raw)
        got = legacy_sighash_local(tx, index, bytes.fromhex(script_hex), hash_type)
        assert got == hex_to_hash(expected), (raw[:40], index, hash_type)


def test_keys_are_deterministic():
    assert key(0).pubkey == key(0).pubkey
    assert key(0).pubkey != key(1).pubkey
    assert key(7).script_pubkey == b"\x76\xa9\x14" + key(7).h160 + b"\x88\xac"
    assert key(0).address(REGTEST)[0] in "mn"


def test_push_int_matches_cscript():
    assert push_int(0) == b"\x00"
    assert push_int(1) == b"\x51"
    assert push_int(16) == b"\x60"
    assert push_int(17) == b"\x01\x11"
    assert push_int(128) == b"\x02\x80\x00"
    assert push_int(500) == b"\x02\xf4\x01"
    assert push_int(-1) == b"\x4f"


def _fake_coin(owner, value=50 * COIN, n=0) -> Utxo:
    return Utxo(OutPoint(bytes([n + 1]) * 32, n), value, owner, 1, False)


def _verify_with_bitcoinlib(tx: Tx, i: int, spk: bytes) -> None:
    from bitcoin.core import CTransaction
    from bitcoin.core.script import CScript
    from bitcoin.core.scripteval import SCRIPT_VERIFY_P2SH, VerifyScript

    ctx = CTransaction.deserialize(tx.raw)
    VerifyScript(CScript(tx.vin[i].script_sig), CScript(spk), ctx, i, flags=(SCRIPT_VERIFY_P2SH,))


def _verify_with_tinynode(tx: Tx, i: int, spk: bytes) -> None:
    try:
        from tinynode.script.flags import MANDATORY_FLAGS
        from tinynode.script.interpreter import verify_script
    except ImportError:
        return
    verify_script(tx.vin[i].script_sig, spk, tx, i, MANDATORY_FLAGS)


def test_p2pkh_spend_one_in_two_out_verifies():
    w = MiniWallet()
    coin = _fake_coin(w.key)
    tx = w.create_spend(coin, fee=1000)
    assert len(tx.vin) == 1 and len(tx.vout) == 2
    assert sum(o.value for o in tx.vout) == coin.value - 1000
    _verify_with_bitcoinlib(tx, 0, coin.script_pubkey)
    _verify_with_tinynode(tx, 0, coin.script_pubkey)
    assert w.create_spend(coin, fee=1000).raw == tx.raw  # RFC 6979: deterministic


def test_spend_many_and_chain_verify():
    w = MiniWallet(3)
    coins = [_fake_coin(w.key, COIN, n) for n in range(5)]
    tx = w.spend_many(coins, fee=5000)
    assert len(tx.vin) == 5 and tx.vout[0].value == 5 * COIN - 5000
    for i, c in enumerate(coins):
        _verify_with_bitcoinlib(tx, i, c.script_pubkey)
        _verify_with_tinynode(tx, i, c.script_pubkey)
    chain = w.create_chain(coins[0], 4, fee=100)
    assert [t.vin[0].prevout.txid for t in chain[1:]] == [t.txid for t in chain[:-1]]
    _verify_with_bitcoinlib(chain[2], 0, w.script_pubkey)


def test_p2sh_multisig_spend_verifies():
    w = MiniWallet()
    ms = MultisigKey.make(2, [10, 11, 12])
    fund, ms_coin = w.pay_to_multisig(_fake_coin(w.key), ms, 10 * COIN)
    _verify_with_bitcoinlib(fund, 0, w.script_pubkey)
    spend = w.create_spend(ms_coin, fee=1000)
    _verify_with_bitcoinlib(spend, 0, ms.script_pubkey)
    _verify_with_tinynode(spend, 0, ms.script_pubkey)


def test_project_sighash_agrees_with_local_when_present():
    w = MiniWallet()
    tx = w.create_spend(_fake_coin(w.key))
    for ht in (1, 2, 3, 0x81, 0x82, 0x83):
        assert legacy_sighash(tx, 0, w.script_pubkey, ht) == legacy_sighash_local(tx, 0, w.script_pubkey, ht)


def test_coin_tracker_maturity_and_spends():
    w = MiniWallet()
    coin = _fake_coin(w.key)
    w.coins.add(Utxo(coin.outpoint, coin.value, w.key, 5, True))
    assert w.coins.spendable(tip_height=103) == []        # block 104 - 5 = 99 < 100
    assert len(w.coins.spendable(tip_height=104)) == 1
    tx = w.create_spend(w.coins.pop(104))
    added = w.coins.add_tx(tx, 105)
    assert len(added) == 2 and w.coins.balance() == coin.value - 1000


def test_rescan_from_chainstate_and_spend():
    """A wallet picks its coins up from the node's script index and spends a mature one (the
    blocks also go to Core's kernel: same verdicts, same tip)."""
    from tests.framework.blockbuilder import BlockBuilder, assert_accepted
    from tests.framework.oracle import OracleChainState, with_oracle
    from tinynode.chain.chainstate import ChainState
    from tinynode.storage.memory import MemoryChainStore

    b = BlockBuilder(REGTEST)
    cs = with_oracle(ChainState(REGTEST, MemoryChainStore(), now=lambda: b.now))
    try:
        for i in range(101):
            assert_accepted(cs, b.next_block(f"c{i}"))
        w = MiniWallet(0)                      # the builder pays key 0
        assert w.rescan(cs) == 101
        u = w.get_utxo(cs)                     # only the height-1 coinbase is mature
        assert u.height == 1 and u.is_coinbase
        tx = w.create_spend(u)
        blk = b.next_block("spend", txs=[tx], fees=1000)
        assert_accepted(cs, blk, tip=blk)
        assert w.rescan(cs) == 102 + 1        # 102 coinbases - 1 spent + 2 outputs
        assert not isinstance(cs, OracleChainState) or cs.calls == 102
    finally:
        cs.close()
