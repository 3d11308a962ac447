"""Fee estimation from what the mempool saw confirm (Core `CBlockPolicyEstimator`,
policy/fees/block_policy_estimator.cpp).

Each tx that enters the pool while it is in step with the chain (no pool parents, not part of a
package, not returned by a reorg) is counted in a feerate bucket at its entry height. When a
block confirms it, the number of blocks it waited is recorded; when it leaves the pool any other
way after waiting, it counts as a failure. Three horizons keep exponentially decaying averages of
those counts, as Core's:

    horizon  periods x scale   max target   decay per block   half-life
    short    12 x 1            12           0.962             ~18 blocks
    medium   24 x 2            48           0.9952            ~144 blocks
    long     42 x 24           1008         0.99931           ~1000 blocks

Buckets start at 100 sat/kvB and grow by 5% up to 1e7 sat/kvB, plus one for anything above.
An estimate for a target walks the buckets from the highest feerate down, grouping buckets until
each group holds enough txs, and keeps the lowest group whose share confirmed within the target
is at least the threshold; the answer is the average feerate of the bucket holding that group's
median tx. `estimate_smart_fee` takes the highest of the 60% answer at target/2, the 85% answer at
target and the 95% answer at 2*target (Core's HALF/SUCCESS/DOUBLE_SUCCESS_PCT).

Decay is applied lazily: every average of a horizon is stored divided by the horizon's running
decay factor, so a block costs O(buckets) (rolling the unconfirmed ring), not O(buckets x periods).

Persistence: `save` writes the averages to a JSON file (tinynode's fee_estimates.json; Core's
fee_estimates.dat is binary) after dropping the still-unconfirmed txs as Core's `Flush` does;
`load` ignores a file older than 60 hours (Core MAX_FILE_AGE).
"""

from __future__ import annotations

import bisect
import json
import logging
import math
import os
import time as _time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

__all__ = ["BlockPolicyEstimator", "EstimatorBucket", "EstimationResult", "HORIZONS",
           "HALF_SUCCESS_PCT", "SUCCESS_PCT", "DOUBLE_SUCCESS_PCT"]

MIN_BUCKET_FEERATE = 100.0          # sat/kvB
MAX_BUCKET_FEERATE = 1e7
FEE_SPACING = 1.05
INF_FEERATE = 1e99
HALF_SUCCESS_PCT = 0.6
SUCCESS_PCT = 0.85
DOUBLE_SUCCESS_PCT = 0.95
SUFFICIENT_FEETXS = 0.1             # txs per block a bucket group needs (medium, long)
SUFFICIENT_TXS_SHORT = 0.5          # ... on the short horizon
OLDEST_ESTIMATE_HISTORY = 6 * 1008
MAX_FILE_AGE = 60 * 3600
_FILE_VERSION = 1
_RENORMALIZE_BELOW = 1e-100

#: (name, periods, decay, scale) — Core's SHORT/MED/LONG_BLOCK_PERIODS, _DECAY and _SCALE.
HORIZONS = (("short", 12, 0.962, 1), ("medium", 24, 0.9952, 2), ("long", 42, 0.99931, 24))


def _buckets() -> list[float]:
    out = []
    b = MIN_BUCKET_FEERATE
    while b <= MAX_BUCKET_FEERATE:
        out.append(b)
        b *= FEE_SPACING
    out.append(INF_FEERATE)
    return out


@dataclass(frozen=True, slots=True)
class EstimatorBucket:
    """A range of buckets and its counts (Core `EstimatorBucket`); start -1 = none."""

    start: float = -1
    end: float = -1
    within_target: float = 0
    total_confirmed: float = 0
    in_mempool: float = 0
    left_mempool: float = 0


@dataclass(frozen=True, slots=True)
class EstimationResult:
    """Core `EstimationResult`: the passing and failing ranges, the horizon's decay and scale."""

    pass_bucket: EstimatorBucket
    fail_bucket: EstimatorBucket
    decay: float
    scale: int


class _ConfirmStats:
    """One horizon (Core `TxConfirmStats`). Averages are stored divided by `self._f`, the product
    of the decays applied so far; `_val` gives the true value."""

    def __init__(self, buckets: list[float], periods: int, decay: float, scale: int) -> None:
        self.buckets = buckets
        self.decay = decay
        self.scale = scale
        n = len(buckets)
        self._f = 1.0
        self.tx_ct = [0.0] * n                                # txCtAvg
        self.feerate_sum = [0.0] * n                          # m_feerate_avg
        self.conf = [[0.0] * n for _ in range(periods)]       # confAvg[period][bucket]
        self.fail = [[0.0] * n for _ in range(periods)]       # failAvg[period][bucket]
        self.unconf = [[0] * n for _ in range(periods * scale)]   # unconfTxs[height % max][bucket]
        self.old_unconf = [0] * n

    @property
    def max_confirms(self) -> int:
        return self.scale * len(self.conf)

    def clear_current(self, height: int) -> None:
        """Core `ClearCurrent`: txs entered max_confirms blocks ago move to old_unconf."""
        row = self.unconf[height % len(self.unconf)]
        if any(row):
            old = self.old_unconf
            for j, c in enumerate(row):
                if c:
                    old[j] += c
                    row[j] = 0

    def update_moving_averages(self) -> None:
        """Core `UpdateMovingAverages`, lazily: only the factor changes."""
        self._f *= self.decay
        if self._f < _RENORMALIZE_BELOW:
            f = self._f
            self.tx_ct = [v * f for v in self.tx_ct]
            self.feerate_sum = [v * f for v in self.feerate_sum]
            self.conf = [[v * f for v in row] for row in self.conf]
            self.fail = [[v * f for v in row] for row in self.fail]
            self._f = 1.0

    def record(self, blocks_to_confirm: int, feerate: float, bucket: int) -> None:
        """Core `Record`: a tx confirmed after `blocks_to_confirm` (1-based) blocks."""
        if blocks_to_confirm < 1:
            return
        one = 1.0 / self._f
        periods = (blocks_to_confirm + self.scale - 1) // self.scale
        for i in range(periods - 1, len(self.conf)):
            self.conf[i][bucket] += one
        self.tx_ct[bucket] += one
        self.feerate_sum[bucket] += feerate * one

    def new_tx(self, height: int, bucket: int) -> None:
        self.unconf[height % len(self.unconf)][bucket] += 1

    def remove_tx(self, entry_height: int, best_seen: int, bucket: int, in_block: bool) -> None:
        """Core `TxConfirmStats::removeTx`: forget an unconfirmed tx; one that left the pool
        unconfirmed after at least a period counts as a failure for the periods it waited."""
        blocks_ago = best_seen - entry_height if best_seen else 0
        if blocks_ago < 0:
            return
        if blocks_ago >= len(self.unconf):
            if self.old_unconf[bucket] > 0:
                self.old_unconf[bucket] -= 1
        else:
            row = self.unconf[entry_height % len(self.unconf)]
            if row[bucket] > 0:
                row[bucket] -= 1
        if not in_block and blocks_ago >= self.scale:
            one = 1.0 / self._f
            for i in range(min(blocks_ago // self.scale, len(self.fail))):
                self.fail[i][bucket] += one

    def estimate_median(self, conf_target: int, sufficient: float, success: float,
                        best_seen: int) -> tuple[float, EstimationResult]:
        """Core `EstimateMedianVal`: -1 when no bucket group meets `success`."""
        f = self._f
        buckets = self.buckets
        period = (conf_target + self.scale - 1) // self.scale
        conf_row, fail_row = self.conf[period - 1], self.fail[period - 1]
        tx_ct = self.tx_ct
        bins = len(self.unconf)
        n_conf = total = fail_num = partial = 0.0
        extra = 0
        top = len(buckets) - 1
        cur_near = best_near = cur_far = best_far = top
        found = False
        new_range = True
        passing = True
        pass_b = EstimatorBucket()
        fail_b = EstimatorBucket()
        need = sufficient / (1 - self.decay)

        def rng(lo: int, hi: int, **kw) -> EstimatorBucket:
            return EstimatorBucket(buckets[lo - 1] if lo else 0, buckets[hi], **kw)
        for bucket in range(top, -1, -1):
            if new_range:
                cur_near = bucket
                new_range = False
            cur_far = bucket
            n_conf += conf_row[bucket] * f
            partial += tx_ct[bucket] * f
            total += tx_ct[bucket] * f
            fail_num += fail_row[bucket] * f
            for confct in range(conf_target, self.max_confirms):
                extra += self.unconf[(best_seen - confct) % bins][bucket]
            extra += self.old_unconf[bucket]
            if partial < need:
                continue
            partial = 0.0
            pct = n_conf / (total + fail_num + extra)
            if pct < success:
                if passing:
                    fail_b = rng(min(cur_near, cur_far), max(cur_near, cur_far),
                                 within_target=n_conf, total_confirmed=total, in_mempool=extra,
                                 left_mempool=fail_num)
                    passing = False
                continue
            fail_b = EstimatorBucket()
            found = True
            passing = True
            pass_b = EstimatorBucket(within_target=n_conf, total_confirmed=total, in_mempool=extra,
                                     left_mempool=fail_num)
            n_conf = total = fail_num = 0.0
            extra = 0
            best_near, best_far = cur_near, cur_far
            new_range = True
        median = -1.0
        lo, hi = min(best_near, best_far), max(best_near, best_far)
        tx_sum = sum(tx_ct[j] for j in range(lo, hi + 1)) * f
        if found and tx_sum != 0:
            tx_sum /= 2
            for j in range(lo, hi + 1):
                if tx_ct[j] * f < tx_sum:
                    tx_sum -= tx_ct[j] * f
                else:
                    median = self.feerate_sum[j] / tx_ct[j]
                    break
            pass_b = rng(lo, hi, within_target=pass_b.within_target,
                         total_confirmed=pass_b.total_confirmed, in_mempool=pass_b.in_mempool,
                         left_mempool=pass_b.left_mempool)
        if passing and not new_range:
            fail_b = rng(min(cur_near, cur_far), max(cur_near, cur_far), within_target=n_conf,
                         total_confirmed=total, in_mempool=extra, left_mempool=fail_num)
        return median, EstimationResult(pass_b, fail_b, self.decay, self.scale)

    # --- persistence (true values, not the scaled ones) ---
    def to_json(self) -> dict:
        f = self._f
        return {"decay": self.decay, "scale": self.scale,
                "feerate_avg": [v * f for v in self.feerate_sum], "tx_ct_avg": [v * f for v in self.tx_ct],
                "conf_avg": [[v * f for v in row] for row in self.conf],
                "fail_avg": [[v * f for v in row] for row in self.fail]}

    def from_json(self, d: dict) -> None:
        """Core `TxConfirmStats::Read` with its sanity checks; raises ValueError."""
        n = len(self.buckets)
        if d.get("decay") != self.decay or d.get("scale") != self.scale:
            raise ValueError("horizon decay or scale differs")
        rows = (d["conf_avg"], d["fail_avg"])
        if len(d["feerate_avg"]) != n or len(d["tx_ct_avg"]) != n:
            raise ValueError("mismatch in bucket count")
        if any(len(r) != len(self.conf) or any(len(x) != n for x in r) for r in rows):
            raise ValueError("mismatch in confirms tracked")
        self._f = 1.0
        self.feerate_sum = [float(v) for v in d["feerate_avg"]]
        self.tx_ct = [float(v) for v in d["tx_ct_avg"]]
        self.conf = [[float(v) for v in r] for r in d["conf_avg"]]
        self.fail = [[float(v) for v in r] for r in d["fail_avg"]]


class BlockPolicyEstimator:
    """Core `CBlockPolicyEstimator`. Synchronous; lives with the mempool on the writer thread."""

    def __init__(self) -> None:
        self.buckets = _buckets()
        self.horizons = {name: _ConfirmStats(self.buckets, periods, decay, scale)
                         for name, periods, decay, scale in HORIZONS}
        self.best_seen_height = 0
        self.first_recorded_height = 0
        self.historical_first = 0
        self.historical_best = 0
        self._tracked: dict[bytes, tuple[int, int]] = {}    # txid -> (entry height, bucket)

    # --- the feed ---------------------------------------------------------------------------------
    def process_transaction(self, txid: bytes, fee: int, vsize: int, height: int, *,
                            valid_for_estimation: bool = True) -> bool:
        """Core `processTransaction`: start tracking a tx that entered the pool at `height` (the
        tip's height then). Ignored unless the estimator is at that height and the tx is valid
        for estimation (no pool parents, not in a package, not bypassing limits, chain current)."""
        if txid in self._tracked or height != self.best_seen_height or not valid_for_estimation:
            return False
        rate = fee * 1000 / vsize if vsize else 0.0
        rate = float(int(rate))                              # CFeeRate::GetFeePerK truncates
        bucket = bisect.bisect_left(self.buckets, rate)
        for st in self.horizons.values():
            st.new_tx(height, bucket)
        self._tracked[txid] = (height, bucket)
        return True

    def remove_tx(self, txid: bytes, in_block: bool = False) -> bool:
        """Core `removeTx`: the tx left the pool (evicted, replaced, expired, conflicted)."""
        info = self._tracked.pop(txid, None)
        if info is None:
            return False
        for st in self.horizons.values():
            st.remove_tx(info[0], self.best_seen_height, info[1], in_block)
        return True

    def process_block(self, height: int, confirmed: list[tuple[bytes, int, int]]) -> int:
        """Core `processBlock`: a block at `height` confirmed these pool txs (txid, fee, vsize).
        Returns how many were tracked. Blocks at or below the best seen height (reorgs, side
        chains) are ignored, as Core."""
        if height <= self.best_seen_height:
            return 0
        self.best_seen_height = height
        for st in self.horizons.values():
            st.clear_current(height)
            st.update_moving_averages()
        counted = 0
        for txid, fee, vsize in confirmed:
            info = self._tracked.get(txid)
            if info is None:
                continue
            self.remove_tx(txid, in_block=True)
            blocks = height - info[0]
            if blocks <= 0:
                continue
            rate = float(int(fee * 1000 / vsize)) if vsize else 0.0
            for st in self.horizons.values():
                st.record(blocks, rate, info[1])
            counted += 1
        if self.first_recorded_height == 0 and counted:
            self.first_recorded_height = height
        return counted

    # --- answers ----------------------------------------------------------------------------------
    def highest_target_tracked(self, horizon: str = "long") -> int:
        return self.horizons[horizon].max_confirms

    def block_span(self) -> int:
        if self.first_recorded_height == 0:
            return 0
        return self.best_seen_height - self.first_recorded_height

    def historical_block_span(self) -> int:
        if self.historical_first == 0:
            return 0
        if self.best_seen_height - self.historical_best > OLDEST_ESTIMATE_HISTORY \
                or self.best_seen_height < self.historical_best:   # Core's unsigned wrap
            return 0
        return self.historical_best - self.historical_first

    def max_usable_estimate(self) -> int:
        return min(self.horizons["long"].max_confirms,
                   max(self.block_span(), self.historical_block_span()) // 2)

    def estimate_raw_fee(self, conf_target: int, threshold: float,
                         horizon: str) -> tuple[int, EstimationResult | None]:
        """Core `estimateRawFee`: sat/kvB (0: none) and the buckets it came from."""
        st = self.horizons[horizon]
        sufficient = SUFFICIENT_TXS_SHORT if horizon == "short" else SUFFICIENT_FEETXS
        if conf_target <= 0 or conf_target > st.max_confirms or threshold > 1:
            return 0, None
        median, result = st.estimate_median(conf_target, sufficient, threshold, self.best_seen_height)
        return (0 if median < 0 else _llround(median)), result

    def _combined(self, target: int, success: float, check_shorter: bool) -> float:
        """Core `estimateCombinedFee`: the shortest horizon tracking `target`; optionally a
        lower answer from a shorter horizon's longest target."""
        short, med, long_ = self.horizons["short"], self.horizons["medium"], self.horizons["long"]
        best = self.best_seen_height
        estimate = -1.0
        if not 1 <= target <= long_.max_confirms:
            return estimate
        if target <= short.max_confirms:
            estimate = short.estimate_median(target, SUFFICIENT_TXS_SHORT, success, best)[0]
        elif target <= med.max_confirms:
            estimate = med.estimate_median(target, SUFFICIENT_FEETXS, success, best)[0]
        else:
            estimate = long_.estimate_median(target, SUFFICIENT_FEETXS, success, best)[0]
        if check_shorter:
            if target > med.max_confirms:
                m = med.estimate_median(med.max_confirms, SUFFICIENT_FEETXS, success, best)[0]
                if m > 0 and (estimate == -1 or m < estimate):
                    estimate = m
            if target > short.max_confirms:
                s = short.estimate_median(short.max_confirms, SUFFICIENT_TXS_SHORT, success, best)[0]
                if s > 0 and (estimate == -1 or s < estimate):
                    estimate = s
        return estimate

    def _conservative(self, double_target: int) -> float:
        """Core `estimateConservativeFee`: 95% at 2*target on the longer horizons too."""
        best = self.best_seen_height
        estimate = -1.0
        if double_target <= self.horizons["short"].max_confirms:
            estimate = self.horizons["medium"].estimate_median(
                double_target, SUFFICIENT_FEETXS, DOUBLE_SUCCESS_PCT, best)[0]
        if double_target <= self.horizons["medium"].max_confirms:
            long_est = self.horizons["long"].estimate_median(
                double_target, SUFFICIENT_FEETXS, DOUBLE_SUCCESS_PCT, best)[0]
            estimate = max(estimate, long_est)
        return estimate

    def estimate_smart_fee(self, conf_target: int, conservative: bool = False) -> tuple[int, int]:
        """Core `estimateSmartFee`: (sat/kvB or 0 when unknown, the target actually used)."""
        if conf_target <= 0 or conf_target > self.horizons["long"].max_confirms:
            return 0, conf_target
        if conf_target == 1:
            conf_target = 2
        conf_target = min(conf_target, self.max_usable_estimate())
        if conf_target <= 1:
            return 0, conf_target
        median = self._combined(conf_target // 2, HALF_SUCCESS_PCT, True)
        median = max(median, self._combined(conf_target, SUCCESS_PCT, True))
        median = max(median, self._combined(2 * conf_target, DOUBLE_SUCCESS_PCT, not conservative))
        if conservative or median == -1:
            median = max(median, self._conservative(2 * conf_target))
        if median < 0:
            return 0, conf_target
        return _llround(median), conf_target

    # --- persistence ------------------------------------------------------------------------------
    def flush_unconfirmed(self) -> int:
        """Core `FlushUnconfirmed`: stop tracking every pool tx (counted as failures if old)."""
        txids = list(self._tracked)
        for t in txids:
            self.remove_tx(t, in_block=False)
        return len(txids)

    def save(self, path: str | os.PathLike) -> None:
        """Core `Flush` (`FlushUnconfirmed` + `Write`), atomically."""
        self.flush_unconfirmed()
        if self.block_span() > self.historical_block_span() // 2:
            first, best = self.first_recorded_height, self.best_seen_height
        else:
            first, best = self.historical_first, self.historical_best
        doc = {"version": _FILE_VERSION, "best_seen_height": self.best_seen_height,
               "historical_first": first, "historical_best": best,
               "buckets": self.buckets[:-1],
               "horizons": {name: st.to_json() for name, st in self.horizons.items()}}
        path = Path(path)
        tmp = path.with_name(path.name + ".new")
        with open(tmp, "w") as f:
            json.dump(doc, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def load(self, path: str | os.PathLike, now: float | None = None) -> bool:
        """Core's constructor reading fee_estimates.dat: a file older than 60 hours, unreadable
        or inconsistent is ignored (the estimator starts empty). True when loaded."""
        path = Path(path)
        now = _time.time() if now is None else now
        try:
            age = now - path.stat().st_mtime
            if age > MAX_FILE_AGE:
                log.info("fee estimates file %s is %.0f hours old, not read", path, age / 3600)
                return False
            doc = json.loads(path.read_text())
            if doc.get("version") != _FILE_VERSION or doc.get("buckets") != self.buckets[:-1]:
                raise ValueError("different version or buckets")
            first, best = int(doc["historical_first"]), int(doc["historical_best"])
            if first > best or best > int(doc["best_seen_height"]):
                raise ValueError("corrupt historical block range")
            fresh = {name: _ConfirmStats(self.buckets, periods, decay, scale)
                     for name, periods, decay, scale in HORIZONS}
            for name, st in fresh.items():
                st.from_json(doc["horizons"][name])
        except FileNotFoundError:
            return False
        except (OSError, ValueError, KeyError, TypeError) as err:
            log.warning("fee estimates file %s not read: %s", path, err)
            return False
        self.horizons = fresh
        self.historical_first, self.historical_best = first, best
        log.info("fee estimates read from %s (blocks %d-%d)", path.name, first, best)
        return True


def _llround(x: float) -> int:
    return int(math.floor(x + 0.5))
