"""Verification progress: Core's `ChainstateManager::GuessVerificationProgress` (validation.cpp)
over `ChainTxData` (kernel/chainparams.h), the per-network estimate of how many transactions the
chain holds at a time and how fast it grows.

A pure function of the block's cumulative tx count (Core `CBlockIndex::m_chain_tx_count`), its
time and height, the best header's height and the node's clock, so the RPC layer and tests can
call it with any numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ChainTxData", "CHAIN_TX_DATA", "chain_tx_data_for", "guess_verification_progress"]

#: Core: a tip within two hours of the clock is "recent", and progress becomes height-based
RECENT_TIP_WINDOW = 2 * 60 * 60


@dataclass(frozen=True, slots=True)
class ChainTxData:
    """Core `ChainTxData`: `tx_count` transactions between genesis and `time`, then `tx_rate`
    transactions per second."""
    time: int
    tx_count: int
    tx_rate: float


#: Core's regtest values ("a non-zero rate to make it testable"); tinynet has no history to
#: estimate from either, so it starts from zero too, at one transaction per 10-second block.
CHAIN_TX_DATA: dict[str, ChainTxData] = {
    "regtest": ChainTxData(time=0, tx_count=0, tx_rate=0.001),
    "tinynet": ChainTxData(time=0, tx_count=0, tx_rate=0.1),
}


def chain_tx_data_for(network: str) -> ChainTxData:
    """The network's `ChainTxData`; zeros for a network without one (Core's custom signets)."""
    return CHAIN_TX_DATA.get(network, ChainTxData(0, 0, 0.0))


def guess_verification_progress(chain_tx_count: int, block_time: int, height: int,
                                best_header_height: int | None, now: int, target_spacing: int,
                                data: ChainTxData) -> float:
    """Core `GuessVerificationProgress(pindex)`: the share of all transactions up to now that
    the chain up to the block (`chain_tx_count` of them) holds, at most 1.0; 0.0 when the
    count is unknown (0). When the block's time is within two hours of `now` and the best
    header is known and not below it, the block is taken to be `best_header_height - height`
    target spacings old instead of trusting its timestamp, so a synced tip gives exactly 1.0
    and one more known header makes it less than 1."""
    if chain_tx_count == 0:
        return 0.0
    if (best_header_height is not None and abs(now - block_time) <= RECENT_TIP_WINDOW
            and best_header_height >= height):
        block_time = now - (best_header_height - height) * target_spacing
    if chain_tx_count <= data.tx_count:
        total = data.tx_count + (now - data.time) * data.tx_rate
    else:
        total = chain_tx_count + (now - block_time) * data.tx_rate
    if total == 0:          # Core's double division gives +inf here, and min() then 1.0
        return 1.0
    return min(chain_tx_count / total, 1.0)
