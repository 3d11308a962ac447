"""Proof of work: compact bits, block work, difficulty retargeting, median time past.

Entries passed in are "entry-like": anything with `.height`, `.time`, `.bits` and `.prev` (the
parent entry or None), such as `chain.index.BlockIndexEntry`. `get_ancestor(entry, height)`
returns the ancestor of `entry` at `height` (the caller may answer from its active chain in O(1)).
"""

from __future__ import annotations

from typing import Any, Callable

from ..params import ChainParams
from ..primitives.block import bits_to_target, target_to_bits

__all__ = [
    "bits_to_target", "target_to_bits", "block_work", "next_work_required",
    "calculate_next_work_required", "median_time_past", "MEDIAN_TIME_SPAN",
]

MEDIAN_TIME_SPAN = 11


def block_work(bits: int) -> int:
    """Expected hashes to find a block at `bits`: 2**256 / (target + 1) (Core `GetBlockProof`)."""
    target, negative, overflow = bits_to_target(bits)
    if negative or overflow or target == 0:
        return 0
    return (1 << 256) // (target + 1)


def _walk_ancestor(entry: Any, height: int) -> Any:
    while entry is not None and entry.height > height:
        entry = entry.prev
    return entry


def next_work_required(prev: Any, params: ChainParams,
                       get_ancestor: Callable[[Any, int], Any] | None = None,
                       block_time: int | None = None) -> int:
    """Bits required for the block after `prev` (Core `GetNextWorkRequired`).

    Retargets when the new height is a multiple of `retarget_window`; otherwise keeps `prev`'s bits.
    With `allow_min_difficulty` (testnet rule), a block more than 2 spacings after its parent may use
    pow_limit, and otherwise inherits the last non-min-difficulty bits of the period.
    `block_time` is the new block's time (needed only for that rule).
    """
    limit_bits = params.pow_limit_bits
    if prev is None:
        return limit_bits
    if params.no_retargeting:
        return prev.bits
    get_ancestor = get_ancestor or _walk_ancestor
    window = params.retarget_window
    height = prev.height + 1
    if height % window != 0:
        if params.allow_min_difficulty:
            if block_time is not None and block_time > prev.time + 2 * params.pow_target_spacing:
                return limit_bits
            e = prev
            while e.prev is not None and e.height % window != 0 and e.bits == limit_bits:
                e = e.prev
            return e.bits
        return prev.bits
    # Go back window-1 blocks: the first block of the period (Core's off-by-one, kept for compat).
    first = get_ancestor(prev, height - window)
    assert first is not None
    return calculate_next_work_required(prev, first.time, params)


def calculate_next_work_required(prev: Any, first_time: int, params: ChainParams) -> int:
    """Core `CalculateNextWorkRequired`: scale the target by actual/target timespan, clamped ×4/÷4."""
    if params.no_retargeting:
        return prev.bits
    timespan = params.pow_target_timespan
    actual = prev.time - first_time
    if actual < timespan // 4:
        actual = timespan // 4
    if actual > timespan * 4:
        actual = timespan * 4
    limit = params.pow_limit
    target = bits_to_target(prev.bits)[0]
    target = target * actual // timespan
    if target > limit:
        target = limit
    return target_to_bits(target)


def median_time_past(entry: Any) -> int:
    """Median of the times of `entry` and its up to 10 ancestors (Core `GetMedianTimePast`)."""
    times = []
    e = entry
    for _ in range(MEDIAN_TIME_SPAN):
        if e is None:
            break
        times.append(e.time)
        e = e.prev
    times.sort()
    return times[len(times) // 2]
