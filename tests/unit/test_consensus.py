"""Consensus rules: each Core reject reason of CheckTransaction, CheckTxInputs, finality, BIP68,
CheckBlockHeader, CheckBlock, ContextualCheckBlockHeader, ContextualCheckBlock."""

from __future__ import annotations

import dataclasses

import pytest

from tinynode.consensus.block_checks import (
    bip34_height_script, check_block, check_block_header, contextual_check_block,
    contextual_check_block_header,
)
from tinynode.consensus.errors import PolicyError, RejectReason as R, ValidationError
from tinynode.consensus.tx_checks import (
    check_transaction, check_tx_inputs, format_money, is_final_tx, legacy_sigops, sequence_locks,
    sequence_locks_satisfied,
)
from tinynode.params import REGTEST
from tinynode.primitives.block import Block
from tinynode.primitives.coin import Coin
from tinynode.primitives.tx import COIN, MAX_MONEY, NULL_OUTPOINT, OutPoint, Tx, TxIn, TxOut

from tests.unit.test_chain_unit_helpers import coinbase, make_block

OP_TRUE = b"\x51"
TXID = bytes(range(32))


def tx(vin=None, vout=None, version=1, locktime=0):
    vin = vin if vin is not None else (TxIn(OutPoint(TXID, 0)),)
    vout = vout if vout is not None else (TxOut(COIN, OP_TRUE),)
    return Tx(version, tuple(vin), tuple(vout), locktime)


def reason(fn, *a, **kw):
    with pytest.raises(ValidationError) as ei:
        fn(*a, **kw)
    return ei.value.reason


# --- errors -----------------------------------------------------------------------------------

def test_error_strings():
    assert R.HIGH_HASH == "high-hash" and str(R.BAD_TXNS_BIP30) == "bad-txns-BIP30"
    e = ValidationError(R.BAD_VERSION, "0x00000002")
    assert e.reject_string == "bad-version(0x00000002)"
    e = ValidationError(R.BLOCK_SCRIPT_VERIFY_FLAG_FAILED, "EVAL_FALSE")
    assert e.reject_string == ("block-script-verify-flag-failed (Script evaluated without error but "
                               "finished with a false/empty top stack element)")  # Core's ScriptErrorString
    assert e.detail == "EVAL_FALSE"
    assert ValidationError(R.BAD_TXNMRKLROOT, mutated=True).mutated
    assert PolicyError("dust").reason == "dust"


# --- CheckTransaction ---------------------------------------------------------------------------

def test_check_transaction_ok():
    check_transaction(tx())
    check_transaction(coinbase(5))


@pytest.mark.parametrize("bad,expected", [
    (lambda: tx(vin=()), R.BAD_TXNS_VIN_EMPTY),
    (lambda: tx(vout=()), R.BAD_TXNS_VOUT_EMPTY),
    (lambda: tx(vout=(TxOut(-1, OP_TRUE),)), R.BAD_TXNS_VOUT_NEGATIVE),
    (lambda: tx(vout=(TxOut(MAX_MONEY + 1, OP_TRUE),)), R.BAD_TXNS_VOUT_TOOLARGE),
    (lambda: tx(vout=(TxOut(MAX_MONEY, OP_TRUE), TxOut(1, OP_TRUE))), R.BAD_TXNS_TXOUTTOTAL_TOOLARGE),
    (lambda: tx(vin=(TxIn(OutPoint(TXID, 0)), TxIn(OutPoint(TXID, 0)))), R.BAD_TXNS_INPUTS_DUPLICATE),
    (lambda: tx(vin=(TxIn(OutPoint(TXID, 0)), TxIn(NULL_OUTPOINT))), R.BAD_TXNS_PREVOUT_NULL),
    (lambda: tx(vin=(TxIn(NULL_OUTPOINT, b"\x01"),)), R.BAD_CB_LENGTH),
    (lambda: tx(vin=(TxIn(NULL_OUTPOINT, b"\x01" * 101),)), R.BAD_CB_LENGTH),
    (lambda: tx(vout=(TxOut(1, b"\x00" * 1_000_001),)), R.BAD_TXNS_OVERSIZE),
])
def test_check_transaction_rejects(bad, expected):
    assert reason(check_transaction, bad()) == expected


# --- CheckTxInputs ------------------------------------------------------------------------------

def test_check_tx_inputs():
    coins = {OutPoint(TXID, 0): Coin(2 * COIN, OP_TRUE, 10, False),
             OutPoint(TXID, 1): Coin(2 * COIN, OP_TRUE, 10, True)}
    t = tx(vout=(TxOut(COIN, OP_TRUE),))
    assert check_tx_inputs(t, coins.get, 11, REGTEST) == COIN
    assert reason(check_tx_inputs, tx(vout=(TxOut(3 * COIN, OP_TRUE),)), coins.get, 11, REGTEST) == R.BAD_TXNS_IN_BELOWOUT
    missing = tx(vin=(TxIn(OutPoint(TXID, 7)),))
    assert reason(check_tx_inputs, missing, coins.get, 11, REGTEST) == R.BAD_TXNS_INPUTS_MISSINGORSPENT
    cb_spend = tx(vin=(TxIn(OutPoint(TXID, 1)),))
    # maturity 100: spend height - coin height < 100 is premature
    assert reason(check_tx_inputs, cb_spend, coins.get, 109, REGTEST) == R.BAD_TXNS_PREMATURE_SPEND_OF_COINBASE
    assert check_tx_inputs(cb_spend, coins.get, 110, REGTEST) == COIN
    big = {OutPoint(TXID, 0): Coin(MAX_MONEY + 1, OP_TRUE, 1, False)}
    assert reason(check_tx_inputs, t, big.get, 5, REGTEST) == R.BAD_TXNS_INPUTVALUES_OUTOFRANGE


def test_check_tx_inputs_texts_are_cores():
    """Core CheckTxInputs' debug messages; the amounts in FormatMoney's form."""
    coins = {OutPoint(TXID, 0): Coin(2 * COIN, OP_TRUE, 10, False)}
    with pytest.raises(ValidationError) as e:
        check_tx_inputs(tx(vout=(TxOut(3 * COIN + 5000, OP_TRUE),)), coins.get, 11, REGTEST)
    assert e.value.state_string == "bad-txns-in-belowout, value in (2.00) < value out (3.00005)"
    with pytest.raises(ValidationError) as e:
        check_tx_inputs(tx(vin=(TxIn(OutPoint(TXID, 7)),)), coins.get, 11, REGTEST)
    assert e.value.state_string == "bad-txns-inputs-missingorspent, CheckTxInputs: inputs missing/spent"
    assert [format_money(v) for v in (0, 1, COIN, 123_456_789, -COIN // 2, 21_000_000 * COIN)] == [
        "0.00", "0.00000001", "1.00", "1.23456789", "-0.50", "21000000.00"]


# --- finality and BIP68 ---------------------------------------------------------------------------

def test_is_final_tx():
    assert is_final_tx(tx(), 10, 1000)
    by_height = tx(vin=(TxIn(OutPoint(TXID, 0), b"", 0),), locktime=10)
    assert not is_final_tx(by_height, 10, 0)
    assert is_final_tx(by_height, 11, 0)
    by_time = tx(vin=(TxIn(OutPoint(TXID, 0), b"", 0),), locktime=600_000_000)
    assert not is_final_tx(by_time, 10**6, 600_000_000)
    assert is_final_tx(by_time, 10**6, 600_000_001)
    final_seq = tx(vin=(TxIn(OutPoint(TXID, 0)),), locktime=10)
    assert is_final_tx(final_seq, 1, 0)


def test_sequence_locks():
    mtps = {h: 1000 + 10 * h for h in range(100)}
    v2 = lambda seq: tx(vin=(TxIn(OutPoint(TXID, 0), b"", seq),), version=2)  # noqa: E731
    lock = sequence_locks(v2(5), [20], mtps.__getitem__)
    assert lock == (24, -1)
    assert not sequence_locks_satisfied(lock, 24, 10**9)
    assert sequence_locks_satisfied(lock, 25, 10**9)
    # time-based: (1 << 22) | 2 → 2 * 512 s after MTP of block before the coin
    lock = sequence_locks(v2((1 << 22) | 2), [20], mtps.__getitem__)
    assert lock == (-1, mtps[19] + 1024 - 1)
    assert not sequence_locks_satisfied(lock, 50, mtps[19] + 1023)
    assert sequence_locks_satisfied(lock, 50, mtps[19] + 1024)
    # disabled flag and version 1 impose nothing
    assert sequence_locks(v2((1 << 31) | 5), [20], mtps.__getitem__) == (-1, -1)
    assert sequence_locks(tx(vin=(TxIn(OutPoint(TXID, 0), b"", 5),)), [20], mtps.__getitem__) == (-1, -1)


def test_legacy_sigops():
    p2pkh = b"\x76\xa9\x14" + bytes(20) + b"\x88\xac"
    assert legacy_sigops(tx(vout=(TxOut(1, p2pkh), TxOut(1, b"\xac\xac")))) == 3


# --- block checks ---------------------------------------------------------------------------------

class Prev:
    def __init__(self, height, time, bits=0x207FFFFF, prev=None):
        self.height, self.time, self.bits, self.prev = height, time, bits, prev


def prev_chain(n, t0=1_600_000_000):
    e = None
    for h in range(n):
        e = Prev(h, t0 + h * 10, prev=e)
    return e


def test_check_block_ok_and_high_hash():
    b = make_block(REGTEST.genesis.hash, 1, REGTEST.genesis.header.time + 1)
    check_block(b, REGTEST)
    bad = dataclasses.replace(b.header, bits=0x1D00FFFF)
    assert reason(check_block_header, bad, REGTEST) == R.HIGH_HASH
    # hash above target: pick a nonce whose hash fails
    h = b.header
    n = 0
    while True:
        cand = dataclasses.replace(h, nonce=n)
        if int.from_bytes(cand.hash, "little") > cand.target:
            break
        n += 1
    assert reason(check_block_header, cand, REGTEST) == R.HIGH_HASH


def test_check_block_merkle_and_mutation():
    t1 = tx()
    b = make_block(bytes(32), 1, 1, (t1,))
    wrong = Block(b.header, (b.txs[0], tx(vout=(TxOut(2, OP_TRUE),))))
    with pytest.raises(ValidationError) as ei:
        check_block(wrong, REGTEST, check_pow=False)
    assert ei.value.reason == R.BAD_TXNMRKLROOT and ei.value.mutated
    # CVE-2012-2459: [cb, t1, t2] and [cb, t1, t2, t2] share a merkle root
    t2 = tx(vout=(TxOut(3, OP_TRUE),))
    b3 = make_block(bytes(32), 1, 1, (t1, t2), solve=False)
    dup = Block(b3.header, b3.txs + (t2,))
    with pytest.raises(ValidationError) as ei:
        check_block(dup, REGTEST, check_pow=False)
    assert ei.value.reason == R.BAD_TXNS_DUPLICATE and ei.value.mutated


def _blk(txs, cb=None):
    return make_block(bytes(32), 1, 1, tuple(txs), cb=cb, solve=False)


def test_check_block_reasons():
    assert reason(check_block, _blk([], cb=tx()), REGTEST, check_pow=False) == R.BAD_CB_MISSING
    assert reason(check_block, _blk([coinbase(1, extra=b"x")]), REGTEST, check_pow=False) == R.BAD_CB_MULTIPLE
    big = tx(vout=(TxOut(1, b"\x00" * 999_950),))
    assert reason(check_block, _blk([big]), REGTEST, check_pow=False) == R.BAD_BLK_LENGTH
    sig = tx(vout=(TxOut(1, b"\xac" * 20_001),))
    assert reason(check_block, _blk([sig]), REGTEST, check_pow=False) == R.BAD_BLK_SIGOPS
    neg = tx(vout=(TxOut(-5, OP_TRUE),))
    assert reason(check_block, _blk([neg]), REGTEST, check_pow=False) == R.BAD_TXNS_VOUT_NEGATIVE
    empty = Block(_blk([]).header, ())
    assert reason(check_block, empty, REGTEST, check_pow=False, check_merkle=False) == R.BAD_BLK_LENGTH


def test_contextual_header():
    prev = prev_chain(12)
    mtp = prev.prev.prev.prev.prev.prev.time  # median of the last 11 (times increase by 10)
    ok = make_block(bytes(32), 12, mtp + 1).header
    contextual_check_block_header(ok, prev, REGTEST, now=mtp)
    assert reason(contextual_check_block_header, dataclasses.replace(ok, time=mtp), prev, REGTEST, mtp) == R.TIME_TOO_OLD
    assert reason(contextual_check_block_header, dataclasses.replace(ok, time=mtp + 7201), prev, REGTEST, mtp) == R.TIME_TOO_NEW
    contextual_check_block_header(dataclasses.replace(ok, time=mtp + 7200), prev, REGTEST, mtp)
    assert reason(contextual_check_block_header, dataclasses.replace(ok, bits=0x207FFFFE), prev, REGTEST, mtp) == R.BAD_DIFFBITS
    with pytest.raises(ValidationError) as ei:
        contextual_check_block_header(dataclasses.replace(ok, version=3), prev, REGTEST, mtp)
    assert ei.value.reason == R.BAD_VERSION and ei.value.reject_string == "bad-version(0x00000003)"


def test_bip34_height_script():
    assert bip34_height_script(1) == b"\x51"
    assert bip34_height_script(16) == b"\x60"
    assert bip34_height_script(17) == b"\x01\x11"
    assert bip34_height_script(128) == b"\x02\x80\x00"
    assert bip34_height_script(255) == b"\x02\xff\x00"
    assert bip34_height_script(256) == b"\x02\x00\x01"
    assert bip34_height_script(0) == b"\x00"


def test_contextual_block():
    prev = prev_chain(12)
    b = make_block(bytes(32), 12, 2_000_000_000, solve=False)
    contextual_check_block(b, prev, REGTEST)
    wrong_height = make_block(bytes(32), 12, 1, cb=coinbase(13), solve=False)
    assert reason(contextual_check_block, wrong_height, prev, REGTEST) == R.BAD_CB_HEIGHT
    nonfinal = tx(vin=(TxIn(OutPoint(TXID, 0), b"", 0),), locktime=12)
    assert reason(contextual_check_block, make_block(bytes(32), 12, 1, (nonfinal,), solve=False),
                  prev, REGTEST) == R.BAD_TXNS_NONFINAL
    final_next = tx(vin=(TxIn(OutPoint(TXID, 0), b"", 0),), locktime=11)
    contextual_check_block(make_block(bytes(32), 12, 1, (final_next,), solve=False), prev, REGTEST)
    # BIP113: time locks compare with the parent's MTP, not the block time
    mtp = 1_600_000_000 + 60
    by_time = tx(vin=(TxIn(OutPoint(TXID, 0), b"", 0),), locktime=mtp)
    assert reason(contextual_check_block, make_block(bytes(32), 12, 2_000_000_000, (by_time,), solve=False),
                  prev, REGTEST) == R.BAD_TXNS_NONFINAL


def test_p2sh_sigops_counts_redeem_script():
    from tinynode.consensus.tx_checks import p2sh_sigops
    from tinynode.primitives.hashes import hash160
    redeem = b"\xac\xac\xac"                       # three CHECKSIGs
    p2sh = b"\xa9\x14" + hash160(redeem) + b"\x87"
    t = tx(vin=(TxIn(OutPoint(TXID, 0), b"\x03" + redeem),))
    assert p2sh_sigops(t, [Coin(1, p2sh, 1, False)]) == 3
    assert p2sh_sigops(t, [Coin(1, OP_TRUE, 1, False)]) == 0


def test_bip94_timewarp_rule_on_the_first_block_of_a_period():
    """Core ContextualCheckBlockHeader with enforce_BIP94 (regtest -test=bip94): the first block
    of a difficulty period may be at most MAX_TIMEWARP (600 s) before its parent."""
    base = prev_chain(143)                                   # heights 0..142
    prev = Prev(143, base.time + 7200, prev=base)            # the period's last block, 2 h ahead
    bip94 = dataclasses.replace(REGTEST, enforce_bip94=True)
    now = prev.time
    at_limit = make_block(bytes(32), 144, prev.time - 600).header
    contextual_check_block_header(at_limit, prev, bip94, now)
    early = dataclasses.replace(at_limit, time=prev.time - 601)
    with pytest.raises(ValidationError) as ei:
        contextual_check_block_header(early, prev, bip94, now)
    assert ei.value.reject_string == "time-timewarp-attack"
    contextual_check_block_header(early, prev, REGTEST, now)  # not enforced without the option
    # only the first block of a period: height 145 may be earlier than its parent by more
    mid = Prev(144, prev.time, prev=prev)
    contextual_check_block_header(make_block(bytes(32), 145, prev.time - 601).header, mid, bip94, now)
