"""Proof of work: block work, retargeting (Core pow_tests vectors + tinynet variant), MTP."""

from __future__ import annotations

import dataclasses

from tinynode.consensus.pow import (
    block_work, calculate_next_work_required, median_time_past, next_work_required,
)
from tinynode.params import REGTEST, TINYNET
from tinynode.primitives.block import bits_to_target, target_to_bits

MAINNETISH = dataclasses.replace(TINYNET, retarget_window=2016, pow_target_spacing=600,
                                 pow_limit_bits=0x1D00FFFF)
#: the issue's test network: tinynet rules with a short window and regtest's pow_limit
SHORT = dataclasses.replace(TINYNET, retarget_window=10, pow_limit_bits=0x207FFFFF)


class E:
    """Entry-like stand-in: height, time, bits, prev."""

    def __init__(self, height, time, bits, prev=None):
        self.height, self.time, self.bits, self.prev = height, time, bits, prev


def chain(n, bits, spacing, start_time=1_000_000):
    e = None
    for h in range(n):
        e = E(h, start_time + h * spacing, bits, e)
    return e


def test_block_work_matches_core_getblockproof():
    assert block_work(0x1D00FFFF) == 4295032833
    assert block_work(0x207FFFFF) == 2
    assert block_work(0) == 0
    assert block_work(0x04923456) == 0  # negative


def test_core_vectors_calculate_next_work():
    # Core src/test/pow_tests.cpp
    assert calculate_next_work_required(E(32255, 1262152739, 0x1D00FFFF), 1261130161, MAINNETISH) == 0x1D00D86A
    assert calculate_next_work_required(E(2015, 1233061996, 0x1D00FFFF), 1231006505, MAINNETISH) == 0x1D00FFFF
    assert calculate_next_work_required(E(68543, 1279297671, 0x1C05A3F4), 1279008237, MAINNETISH) == 0x1C0168FD
    assert calculate_next_work_required(E(46367, 1269211443, 0x1C387F6F), 1263163443, MAINNETISH) == 0x1D00E1FD


def test_regtest_never_retargets():
    tip = chain(REGTEST.retarget_window * 2 + 5, 0x207FFFFF, 1)
    assert next_work_required(tip, REGTEST) == 0x207FFFFF


def test_no_change_inside_window():
    bits = 0x1F00FFFF
    tip = chain(5, bits, 1)  # heights 0..4 → next height 5, not a boundary
    assert next_work_required(tip, SHORT) == bits


def test_retarget_on_schedule_keeps_target():
    bits = target_to_bits(SHORT.pow_limit >> 8)
    tip = chain(10, bits, SHORT.pow_target_spacing)  # heights 0..9, next is 10
    # actual timespan = last - first of the window = 9 spacings (Core's off-by-one)
    expected_target = bits_to_target(bits)[0] * 9 * SHORT.pow_target_spacing // SHORT.pow_target_timespan
    assert next_work_required(tip, SHORT) == target_to_bits(expected_target)


def test_retarget_clamps_to_quarter_and_pow_limit():
    bits = target_to_bits(SHORT.pow_limit >> 8)
    fast = chain(10, bits, 0)  # all same time: clamp to timespan/4
    assert next_work_required(fast, SHORT) == target_to_bits(bits_to_target(bits)[0] // 4)
    slow = chain(10, 0x207FFFFF, 10_000)  # would raise target above the limit: capped
    assert next_work_required(slow, SHORT) == SHORT.pow_limit_bits
    slowish = chain(10, bits, 10_000)  # clamp ×4
    assert next_work_required(slowish, SHORT) == target_to_bits(bits_to_target(bits)[0] * 4)


def test_uses_get_ancestor_callback():
    tip = chain(20, 0x1F00FFFF, 10)
    calls = []

    def get_ancestor(e, h):
        calls.append(h)
        while e.height > h:
            e = e.prev
        return e
    next_work_required(tip, SHORT, get_ancestor)
    assert calls == [10]


def test_allow_min_difficulty():
    p = dataclasses.replace(SHORT, allow_min_difficulty=True)
    bits = 0x1F00FFFF
    tip = chain(5, bits, 10)
    assert next_work_required(tip, p, block_time=tip.time + 21) == p.pow_limit_bits
    assert next_work_required(tip, p, block_time=tip.time + 5) == bits
    # after a min-difficulty block, the period's last real bits apply again
    m = E(5, tip.time + 100, p.pow_limit_bits, tip)
    assert next_work_required(m, p, block_time=m.time + 1) == bits


def test_median_time_past():
    e = None
    times = [5, 1, 9, 3, 7, 2, 8, 6, 4, 10, 11, 0]
    for h, t in enumerate(times):
        e = E(h, t, 0, e)
    # last 11: times[1:] sorted → [0,1,2,...,11 minus 5] → median index 5
    assert median_time_past(e) == sorted(times[1:])[5]
    assert median_time_past(E(0, 42, 0)) == 42
    three = E(2, 30, 0, E(1, 10, 0, E(0, 20, 0)))
    assert median_time_past(three) == 20
