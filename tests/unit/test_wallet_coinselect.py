"""Coin selection: fees from size, no dust change, confirmed coins first, fewest inputs."""
import pytest

from tinynode.primitives.tx import COIN, OutPoint
from tinynode.wallet.coinselect import (
    DUST_THRESHOLD, P2PKH_INPUT_SIZE, P2PKH_OUTPUT_SIZE, TX_OVERHEAD, Candidate, InsufficientFunds,
    dust_threshold, fee_for_size, select_coins,
)

BASE = TX_OVERHEAD + P2PKH_OUTPUT_SIZE     # one recipient


def coin(i, value, conf=6):
    return Candidate(OutPoint(bytes([i]) * 32, 0), value, b"\x76" * 25, conf)


def test_fee_and_dust_rules_are_cores():
    assert fee_for_size(226, 1000) == 226 and fee_for_size(226, 2000) == 452 and fee_for_size(1, 1500) == 2
    assert dust_threshold(25) == DUST_THRESHOLD == 546


def test_single_coin_with_change_pays_exact_fee():
    sel = select_coins([coin(1, 50 * COIN)], COIN, 2000, BASE)
    size = BASE + P2PKH_INPUT_SIZE + P2PKH_OUTPUT_SIZE
    assert sel.size == size and sel.fee == 2 * size
    assert sel.change == 50 * COIN - COIN - sel.fee


def test_dust_change_goes_to_fee():
    fee_nochange = fee_for_size(BASE + P2PKH_INPUT_SIZE, 2000)
    value = COIN + fee_nochange + 300           # change would be dust
    sel = select_coins([coin(1, value)], COIN, 2000, BASE)
    assert sel.change == 0 and sel.fee == fee_nochange + 300


def test_prefers_smallest_sufficient_coin_and_confirmed_first():
    coins = [coin(1, 10 * COIN), coin(2, 2 * COIN), coin(3, 50 * COIN), coin(4, 2 * COIN, conf=0)]
    sel = select_coins(coins, COIN, 1000, BASE)
    assert [c.outpoint for c in sel.inputs] == [coins[1].outpoint]
    # only unconfirmed change can pay: used in the second pass
    sel = select_coins([coin(1, COIN // 2), coin(4, 3 * COIN, conf=0)], 2 * COIN, 1000, BASE)
    assert [c.confirmations for c in sel.inputs] == [0]


def test_accumulates_largest_first_and_drops_unneeded_inputs():
    coins = [coin(i, COIN) for i in range(1, 6)]
    sel = select_coins(coins, 3 * COIN, 1000, BASE)
    assert len(sel.inputs) == 4 and sel.total_in - 3 * COIN - sel.fee == sel.change


def test_subtract_fee_and_insufficient_funds():
    sel = select_coins([coin(1, COIN)], COIN, 1000, BASE, subtract_fee=True)
    assert sel.change == 0 and sel.fee == fee_for_size(BASE + P2PKH_INPUT_SIZE, 1000)
    with pytest.raises(InsufficientFunds):
        select_coins([coin(1, COIN)], COIN, 1000, BASE)
    with pytest.raises(InsufficientFunds):
        select_coins([], 1, 1000, BASE)


def test_p2wpkh_inputs_are_68_vbytes_plus_one_for_marker_and_flag():
    from tinynode.wallet.coinselect import P2WPKH_INPUT_SIZE, P2WPKH_OUTPUT_SIZE
    seg = Candidate(OutPoint(b"\x09" * 32, 0), 50 * COIN, b"\x00\x14" + bytes(20), 6, P2WPKH_INPUT_SIZE, True)
    sel = select_coins([seg], COIN, 1000, BASE, change_size=P2WPKH_OUTPUT_SIZE, min_change=294)
    assert P2WPKH_INPUT_SIZE == 68 and sel.size == BASE + 68 + 1 + 31 and sel.fee == sel.size
    # mixed: one legacy and one witness input
    sel = select_coins([coin(1, COIN), seg], 50 * COIN + COIN // 2, 1000, BASE, subtract_fee=True)
    assert len(sel.inputs) == 2 and sel.size == BASE + P2PKH_INPUT_SIZE + 68 + 1 + (P2PKH_OUTPUT_SIZE if sel.change else 0)
