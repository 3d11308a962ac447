"""Core's test-chain options: -testactivationheight (per-deployment heights in ChainParams, read
by the block rules and the script flags), -minimumchainwork, -acceptnonstdtxn and -uacomment
(Core ReadRegTestArgs, chainstatemanager_args, mempool_args, AppInitMain)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.framework.blockbuilder import BlockBuilder
from tests.framework.miniwallet import MiniWallet
from tests.unit.test_mempool_helpers import NOW, FakeChain
from tinynode.chain.chainstate import ChainState
from tinynode.config import ConfigError, from_args
from tinynode.consensus.block_checks import script_flags_for_height
from tinynode.consensus.errors import PolicyError, ValidationError, state_string
from tinynode.mempool import Mempool
from tinynode.net.peer import check_ua_comments, format_sub_version
from tinynode.params import REGTEST, TINYNET, parse_activation_height
from tinynode.primitives.tx import COIN
from tinynode.script.flags import ScriptFlags as F
from tinynode.storage.memory import MemoryChainStore


def _args(tmp_path, *extra):
    return from_args(["--datadir", str(tmp_path), "--network", "regtest", *extra], env={})


# --------------------------------------------------------------------------- parsing

def test_testactivationheight_is_parsed_repeatable_and_moves_the_params(tmp_path):
    cfg = _args(tmp_path, "--testactivationheight", "cltv@111", "--testactivationheight=segwit@432")
    assert cfg.test_activation_heights == (("cltv", 111), ("segwit", 432))
    p = cfg.params
    assert (p.bip65_height, p.segwit_height) == (111, 432)
    # the others keep Core's regtest defaults
    assert (p.bip34_height, p.bip66_height, p.csv_height) == (1, 1, 1)
    assert (REGTEST.bip34_height, REGTEST.bip65_height, REGTEST.bip66_height, REGTEST.csv_height,
            REGTEST.segwit_height) == (1, 1, 1, 1, 0)
    assert p.genesis_hash == REGTEST.genesis_hash and p.name == "regtest"


@pytest.mark.parametrize("text, message", [
    ("cltv111", "Invalid format (cltv111) for -testactivationheight=name@height."),
    ("cltv@-1", "Invalid height value (cltv@-1) for -testactivationheight=name@height."),
    ("cltv@x", "Invalid height value (cltv@x) for -testactivationheight=name@height."),
    ("taproot@5", "Invalid name (taproot@5) for -testactivationheight=name@height."),
])
def test_testactivationheight_errors_use_cores_wording(tmp_path, text, message):
    with pytest.raises(ValueError) as info:
        parse_activation_height(text)
    assert str(info.value) == message
    with pytest.raises(ConfigError) as info2:
        _args(tmp_path, "--testactivationheight", text)
    assert str(info2.value) == message


def test_test_options_are_refused_on_tinynet(tmp_path):
    with pytest.raises(ConfigError) as info:
        from_args(["--datadir", str(tmp_path), "--network", "tinynet", "--acceptnonstdtxn"], env={})
    assert str(info.value) == "acceptnonstdtxn is not currently supported for tinynet chain"
    with pytest.raises(ConfigError) as info:
        from_args(["--datadir", str(tmp_path), "--network", "tinynet",
                   "--testactivationheight", "csv@5"], env={})
    assert "only for test chains" in str(info.value)
    assert TINYNET.require_standard and not TINYNET.is_test_chain


def test_acceptnonstdtxn_and_minimumchainwork_reach_the_params(tmp_path):
    cfg = _args(tmp_path, "--acceptnonstdtxn", "--minimumchainwork", "0x10")
    assert cfg.params.require_standard is False and cfg.params.minimum_chain_work == 16
    plain = _args(tmp_path)
    assert plain.params.require_standard is True and plain.params.minimum_chain_work == 0
    assert _args(tmp_path, "--minimumchainwork", "ffff").params.minimum_chain_work == 0xFFFF
    for bad in ("0xzz", "", "1" * 65):
        with pytest.raises(ConfigError) as info:
            _args(tmp_path, "--minimumchainwork", bad)
        assert str(info.value) == f"Invalid minimum work specified ({bad}), must be up to 64 hex digits"


def test_uacomment_formats_like_core_and_refuses_unsafe_characters(tmp_path):
    assert format_sub_version() == "/tinynode:0.1.0/"
    cfg = _args(tmp_path, "--uacomment", "a", "--uacomment", "b c")
    assert cfg.uacomments == ("a", "b c")
    assert format_sub_version(cfg.uacomments) == "/tinynode:0.1.0(a; b c)/"
    with pytest.raises(ConfigError) as info:
        _args(tmp_path, "--uacomment", "bad/comment")
    assert str(info.value) == "User Agent comment (bad/comment) contains unsafe characters."
    with pytest.raises(ValueError) as info2:
        check_ua_comments(["x" * 250])
    assert str(info2.value) == ("Total length of network version string (268) exceeds maximum length "
                                "(256). Reduce the number or size of uacomments.")


# --------------------------------------------------------------------------- consensus

def test_script_flags_follow_the_activation_heights():
    p = REGTEST.with_activation_heights({"cltv": 111, "dersig": 5, "csv": 7, "segwit": 9})
    before = script_flags_for_height(4, p)
    assert not before & F.CHECKLOCKTIMEVERIFY and not before & F.DERSIG
    assert not before & F.CHECKSEQUENCEVERIFY and not before & F.NULLDUMMY
    assert before & F.WITNESS and before & F.P2SH      # always on, as Core
    assert script_flags_for_height(5, p) & F.DERSIG
    assert script_flags_for_height(7, p) & F.CHECKSEQUENCEVERIFY
    assert script_flags_for_height(9, p) & F.NULLDUMMY
    assert not script_flags_for_height(110, p) & F.CHECKLOCKTIMEVERIFY
    assert script_flags_for_height(111, p) & F.CHECKLOCKTIMEVERIFY


def _chain(params, b: BlockBuilder) -> ChainState:
    return ChainState(params, MemoryChainStore(), now=lambda: b.now + 10_000, script_check_threads=0)


def test_block_version_rules_start_at_the_cltv_height():
    """feature_cltv's `-testactivationheight=cltv@111`, here cltv@3: a version-3 block is fine
    below the height and `bad-version(0x00000003)` from it on."""
    params = REGTEST.with_activation_heights({"cltv": 3})
    b = BlockBuilder(params)
    cs = _chain(params, b)
    b.next_block("b1")
    b.next_block("b2", version=3)
    for name in ("b1", "b2"):
        assert cs.process_block(b[name]).status == "connected"
    bad = b.next_block("b3", version=3)
    r = cs.process_block(bad)
    assert r.status == "invalid" and r.error.reject_string == "bad-version(0x00000003)"
    assert r.error.state_string == "bad-version(0x00000003), rejected nVersion=0x00000003 block"
    # the default params refuse the same version at height 2 already
    cs2 = _chain(REGTEST, b)
    assert cs2.process_block(b["b1"]).status == "connected"
    assert cs2.process_block(b["b2"]).reason == "bad-version"


def test_bip34_height_rule_follows_the_params():
    params = REGTEST.with_activation_heights({"bip34": 3})
    b = BlockBuilder(params)
    cs = _chain(params, b)
    b.next_block("b1", coinbase_script_sig=b"\x52\x51")   # wrong height push: fine below BIP34
    b.next_block("b2", coinbase_script_sig=b"\x51\x52")
    assert [cs.process_block(b[n]).status for n in ("b1", "b2")] == ["connected", "connected"]
    r = cs.process_block(b.next_block("b3", coinbase_script_sig=b"\x51\x53"))
    assert r.reason == "bad-cb-height"
    assert _chain(REGTEST, b).process_block(b["b1"]).reason == "bad-cb-height"


def test_witness_data_before_the_segwit_height_is_unexpected():
    params = REGTEST.with_activation_heights({"segwit": 5})
    b = BlockBuilder(params)
    cs = _chain(params, b)
    blk = b.next_block("b1")
    cb = blk.txs[0]
    witnessed = replace(cb, vin=(replace(cb.vin[0], witness=(bytes(32),)),))
    blk2 = replace(blk, txs=(witnessed,))
    r = cs.process_block(blk2)
    assert r.reason == "unexpected-witness" and r.error.mutated


# --------------------------------------------------------------------------- policy

def test_acceptnonstdtxn_skips_the_standardness_checks_only():
    chain = FakeChain(200)
    w = MiniWallet(0)
    utxos = chain.fund(w, 10 * COIN, 2)
    strict = Mempool(REGTEST, chain, clock=lambda: NOW)
    tx = w.create_spend(utxos[0], version=4)
    with pytest.raises(PolicyError) as info:
        strict.accept(tx, NOW)
    assert info.value.reason == "version"
    loose = Mempool(replace(REGTEST, require_standard=False), chain, clock=lambda: NOW)
    loose.accept(tx, NOW)
    assert tx.txid in loose
    # consensus and fee rules still apply
    bad = w.create_spend(utxos[1], fee=0)
    with pytest.raises(PolicyError) as info:
        loose.accept(bad, NOW)
    assert info.value.reason == "min relay fee not met"


def test_acceptnonstdtxn_keeps_the_tx_size_small_rule():
    """Core PreChecks refuses a stripped size under 65 bytes outside -acceptnonstdtxn's reach
    (CVE-2017-12842; Core's p2p_invalid_tx SizeTooSmall runs with -acceptnonstdtxn=1)."""
    from tinynode.script.script import nulldata_script
    from tinynode.primitives.tx import Tx, TxIn, TxOut
    chain = FakeChain(200)
    w = MiniWallet(0)
    [u] = chain.fund(w, 10 * COIN, 1)
    loose = Mempool(replace(REGTEST, require_standard=False), chain, clock=lambda: NOW)
    small = Tx(1, (TxIn(u.outpoint, b"\x51"),), (TxOut(0, nulldata_script(b"")),))
    assert small.base_size < 65
    with pytest.raises(PolicyError) as info:
        loose.accept(small, NOW)
    assert info.value.reason == "tx-size-small"


def test_state_string_is_cores_reason_comma_detail():
    assert state_string(ValidationError("bad-cb-amount", "coinbase pays too much")) == \
        "bad-cb-amount, coinbase pays too much"
    assert state_string(PolicyError("bad-txns-in-belowout", "1 < 2")) == "bad-txns-in-belowout, 1 < 2"
    assert state_string(ValidationError("high-hash")) == "high-hash"
