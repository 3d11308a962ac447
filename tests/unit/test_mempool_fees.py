"""The fee estimator (Core CBlockPolicyEstimator) on simulated blocks with txs at known feerates,
its persistence, and the mempool feeding it."""

from __future__ import annotations

import json
import os

from tests.framework.miniwallet import MiniWallet
from tests.unit.test_mempool import setup
from tests.unit.test_mempool_helpers import NOW
from tinynode.mempool.fees import (
    HALF_SUCCESS_PCT, SUCCESS_PCT, BlockPolicyEstimator,
)

HIGH, MID, LOW = 20_000, 5_000, 1_000          # sat/kvB
VSIZE = 200


def _fee(rate: int) -> int:
    return rate * VSIZE // 1000


def simulate(est: BlockPolicyEstimator, start: int, blocks: int) -> None:
    """Each block: 5 txs at HIGH (mined in the next block), 5 at MID (mined 3 blocks later),
    5 at LOW (never mined; evicted after 30 blocks, as an expiry would)."""
    waiting: dict[int, list[tuple[bytes, int, int]]] = {}
    evict: dict[int, list[bytes]] = {}
    est.process_block(start, [])
    for h in range(start, start + blocks):
        for i in range(5):
            for rate, delay in ((HIGH, 1), (MID, 3), (LOW, None)):
                txid = b"%d-%d-%d" % (h, rate, i)
                assert est.process_transaction(txid, _fee(rate), VSIZE, h)
                if delay is None:
                    evict.setdefault(h + 30, []).append(txid)
                else:
                    waiting.setdefault(h + delay, []).append((txid, _fee(rate), VSIZE))
        nxt = h + 1
        for txid in evict.pop(nxt, []):
            assert est.remove_tx(txid)
        assert est.process_block(nxt, waiting.pop(nxt, [])) == (0 if nxt - start < 1 else
                                                                 5 * ((nxt - start >= 1) + (nxt - start >= 3)))


def test_no_data_answers_nothing():
    est = BlockPolicyEstimator()
    assert est.estimate_smart_fee(2) == (0, 0)          # target clamped to the usable span (0)
    est.process_block(10, [])
    assert est.estimate_smart_fee(6)[0] == 0
    assert est.estimate_raw_fee(6, 0.95, "short")[0] == 0
    assert est.highest_target_tracked("long") == 1008
    assert est.highest_target_tracked("medium") == 48
    assert est.highest_target_tracked("short") == 12
    assert len(est.buckets) == 237 and est.buckets[0] == 100.0


def test_simulated_blocks_give_the_feerates_that_confirmed_in_time():
    est = BlockPolicyEstimator()
    simulate(est, 100, 80)
    # Target 2 (half 1 at 60%, 2 at 85%, 4 at 95%): only HIGH txs confirm within 1 block.
    assert est.estimate_smart_fee(1) == (HIGH, 2)
    assert est.estimate_smart_fee(2) == (HIGH, 2)
    # Target 6: MID txs always confirm within 3 <= 6/2 blocks; LOW never do.
    assert est.estimate_smart_fee(6) == (MID, 6)
    assert est.estimate_smart_fee(25) == (MID, 25)
    # Conservative adds the 95% check at 2*target on the longer horizons: still MID.
    assert est.estimate_smart_fee(6, conservative=True) == (MID, 6)
    # Targets beyond half of the blocks seen are clamped (Core MaxUsableEstimate).
    # first recorded at 101, best seen 180: (180 - 101) // 2
    assert est.max_usable_estimate() == 39
    assert est.estimate_smart_fee(1000)[1] == 39
    # Raw: 85% within 1 block on the short horizon is only HIGH; 60% within 3 includes MID.
    fee, res = est.estimate_raw_fee(1, SUCCESS_PCT, "short")
    assert fee == HIGH and res.decay == 0.962 and res.scale == 1
    assert res.pass_bucket.start < HIGH <= res.pass_bucket.end
    assert res.fail_bucket.start < MID <= res.fail_bucket.end          # MID failed at target 1
    fee, res = est.estimate_raw_fee(3, HALF_SUCCESS_PCT, "short")
    assert fee == MID and res.pass_bucket.start < MID <= res.pass_bucket.end
    assert est.estimate_raw_fee(13, 0.95, "short")[0] == 0              # beyond the horizon


def test_estimates_follow_the_market_as_old_data_decays():
    """After the pattern changes (MID stops confirming within 3 blocks), the short horizon
    forgets: target 6 moves from MID up to HIGH."""
    est = BlockPolicyEstimator()
    simulate(est, 100, 60)
    assert est.estimate_smart_fee(6)[0] == MID
    h = 161
    for n in range(120):                    # now only HIGH txs confirm; MID ones are evicted
        for i in range(5):
            est.process_transaction(b"h%d-%d" % (h, i), _fee(HIGH), VSIZE, h)
            est.process_transaction(b"m%d-%d" % (h, i), _fee(MID), VSIZE, h)
            if n >= 20:
                est.remove_tx(b"m%d-%d" % (h - 20, i))
        est.process_block(h + 1, [(b"h%d-%d" % (h, i), _fee(HIGH), VSIZE) for i in range(5)])
        h += 1
    assert est.estimate_smart_fee(6)[0] == HIGH


def test_persists_across_restart(tmp_path):
    est = BlockPolicyEstimator()
    simulate(est, 100, 80)
    before = [est.estimate_smart_fee(t) for t in (2, 6, 25)]
    path = tmp_path / "fee_estimates.json"
    est.save(path)
    doc = json.loads(path.read_text())
    assert doc["version"] == 1 and doc["best_seen_height"] == 180
    assert (doc["historical_first"], doc["historical_best"]) == (101, 180)

    again = BlockPolicyEstimator()
    assert again.load(path)
    # As Core after a restart: the saved span counts once the next block is seen.
    assert again.estimate_smart_fee(6)[0] == 0
    again.process_block(181, [])
    assert [again.estimate_smart_fee(t) for t in (2, 6, 25)] == before
    assert again.max_usable_estimate() == 39            # (180 - 101) // 2

    # A stale file (older than 60 hours) or a damaged one is not read.
    old = os.path.getmtime(path)
    assert not BlockPolicyEstimator().load(path, now=old + 61 * 3600)
    path.write_text(path.read_text()[:-10])
    assert not BlockPolicyEstimator().load(path)
    assert not BlockPolicyEstimator().load(tmp_path / "missing.json")


def test_mempool_feeds_the_estimator():
    """Accepted txs are tracked at the tip height; a block confirming them records their wait;
    a replaced tx is dropped, not recorded; a tx with a pool parent is not tracked."""
    chain, pool, w, utxos = setup(n=4)
    est = pool.fee_estimator
    chain.connect([])                                     # the estimator sees height 201
    assert est.best_seen_height == 201
    a = w.create_spend(utxos[0], fee=5000)
    b = w.create_spend(utxos[1], fee=3000)
    pool.accept(a, NOW)
    pool.accept(b, NOW)
    child = w.create_spend(w.outputs_of(a)[0], fee=4000)
    pool.accept(child, NOW)
    assert set(est._tracked) == {a.txid, b.txid}          # the child has a pool parent
    b2 = w.create_spend(utxos[1], fee=9000, n_outputs=1)  # replaces b
    pool.accept(b2, NOW)
    assert set(est._tracked) == {a.txid, b2.txid}
    chain.connect([])
    chain.connect([a, child])                             # a waited 2 blocks (entered at 201)
    assert set(est._tracked) == {b2.txid}
    short = est.horizons["short"]
    a_rate = int(5000 * 1000 / a.vsize)
    a_bucket = next(i for i, b in enumerate(est.buckets) if b >= a_rate)
    assert short.tx_ct[a_bucket] * short._f == 1.0
    assert short.conf[0][a_bucket] == 0 and short.conf[1][a_bucket] * short._f == 1.0
    assert short.feerate_sum[a_bucket] / short.tx_ct[a_bucket] == a_rate
