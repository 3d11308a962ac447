"""Core's GuessVerificationProgress (validation.cpp) as tinynode.chain.progress computes it."""

from tinynode.chain.progress import ChainTxData, chain_tx_data_for, guess_verification_progress

REGTEST = chain_tx_data_for("regtest")
T = 1_700_000_000


def guess(count, block_time, height=100, best=100, now=T, data=REGTEST):
    return guess_verification_progress(count, block_time, height, best, now, 600, data)


def test_regtest_tx_data_is_cores():
    assert REGTEST == ChainTxData(time=0, tx_count=0, tx_rate=0.001)
    assert chain_tx_data_for("no-such-net") == ChainTxData(0, 0, 0.0)


def test_unknown_chain_tx_count_is_zero_progress():
    assert guess(0, T) == 0.0


def test_old_block_counts_its_own_time():
    # 7201 s old: not recent, so (now - block time) * rate more txs are expected
    assert guess(200, T - 7201) == 200 / (200 + 7.201)
    # over 2 h in the future: fewer txs expected than the chain has, capped at 1
    assert guess(200, T + 7201) == 1.0


def test_recent_block_is_height_based():
    assert guess(200, T - 7200) == 1.0                       # synced: exactly 1
    assert guess(200, T - 5, best=101) == 200 / (200 + 0.6)  # one header ahead: 600 s
    assert guess(200, T - 5, best=103) == 200 / (200 + 1.8)
    # a best header below the block (Core's Assume fails): the block's own time
    assert guess(200, T - 5, best=99) == 200 / (200 + 0.005)


def test_below_the_known_tx_count_uses_the_chain_data():
    data = ChainTxData(time=T - 1000, tx_count=10_000, tx_rate=2.0)
    assert guess(5_000, T, data=data) == 5_000 / (10_000 + 2000.0)
    assert guess(20_000, T - 10, data=data) == 1.0           # recent, past the data: 1


def test_zero_rate_at_the_block_time_is_complete():
    data = ChainTxData(0, 0, 0.0)
    assert guess(7, T - 10_000, data=data) == 1.0
