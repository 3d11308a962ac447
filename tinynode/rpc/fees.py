"""Fee estimation RPCs (Core's rpc/fees.cpp): `estimatesmartfee` and `estimaterawfee` over the
mempool's `BlockPolicyEstimator` (tinynode/mempool/fees.py)."""

from __future__ import annotations

import logging
from typing import Any

from ..mempool.fees import HORIZONS
from .protocol import RPC_INVALID_PARAMETER, RPCError
from .util import RPCArea, _int, _str, _jtype, amount_to_json
from .protocol import RPC_TYPE_ERROR

log = logging.getLogger(__name__)

_FEE_MODES = ("unset", "economical", "conservative")     # Core FeeModeMap, in its order


def _conf_target(value: Any, max_target: int) -> int:
    """Core `ParseConfirmTarget`."""
    target = _int(value, "conf_target")
    if target < 1 or target > max_target:
        raise RPCError(RPC_INVALID_PARAMETER, f"Invalid conf_target, must be between 1 and {max_target}")
    return target


def _bucket_json(b) -> dict:
    return {"startrange": float(round(b.start)), "endrange": float(round(b.end)),
            "withintarget": round(b.within_target * 100.0) / 100.0,
            "totalconfirmed": round(b.total_confirmed * 100.0) / 100.0,
            "inmempool": round(b.in_mempool * 100.0) / 100.0,
            "leftmempool": round(b.left_mempool * 100.0) / 100.0}


class FeesRPC(RPCArea):
    """estimatesmartfee, estimaterawfee."""

    async def m_estimatesmartfee(self, conf_target, estimate_mode="economical") -> dict:
        """estimatesmartfee conf_target ( "estimate_mode" )
Estimates the approximate fee per kilobyte needed for a transaction to begin confirmation within
conf_target blocks if possible and return the number of blocks for which the estimate is valid.
estimate_mode: "unset", "economical" (default) or "conservative".
Result: {"feerate": coins/kvB, "blocks": n}, or {"errors": [...], "blocks": n} without data."""
        def work():
            mp = self.node.mempool
            if mp is None:
                raise RPCError(RPC_INVALID_PARAMETER, "Fee estimation disabled")
            est = mp.fee_estimator
            target = _conf_target(conf_target, est.highest_target_tracked("long"))
            mode = "economical" if estimate_mode is None else _str(estimate_mode, "estimate_mode")
            if mode.lower() not in _FEE_MODES:
                raise RPCError(RPC_INVALID_PARAMETER, "Invalid estimate_mode parameter, must be one of: \""
                               + "\", \"".join(_FEE_MODES) + "\"")
            rate, blocks = est.estimate_smart_fee(target, conservative=mode.lower() == "conservative")
            if rate == 0:
                return {"errors": ["Insufficient data or no feerate found"], "blocks": blocks}
            info = mp.info()
            rate = max(rate, info.mempool_min_fee.sat_per_kvb, info.min_relay_fee.sat_per_kvb)
            return {"feerate": amount_to_json(rate), "blocks": blocks}
        return await self._w(work)

    async def m_estimaterawfee(self, conf_target, threshold=None) -> dict:
        """estimaterawfee conf_target ( threshold )
WARNING: This interface is unstable and may disappear or change!
Estimates the approximate fee per kilobyte needed for a transaction to begin confirmation within
conf_target blocks, per time horizon (short, medium, long) that tracks that target.
threshold: the share of txs in a feerate range that must have confirmed within the target
(default 0.95)."""
        if threshold is None:
            th = 0.95
        elif isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
            raise RPCError(RPC_TYPE_ERROR, f"JSON value of type {_jtype(threshold)} is not of expected type number")
        else:
            th = float(threshold)

        def work():
            mp = self.node.mempool
            if mp is None:
                raise RPCError(RPC_INVALID_PARAMETER, "Fee estimation disabled")
            est = mp.fee_estimator
            target = _conf_target(conf_target, est.highest_target_tracked("long"))
            if th < 0 or th > 1:
                raise RPCError(RPC_INVALID_PARAMETER, "Invalid threshold")
            out: dict[str, Any] = {}
            for name, *_ in HORIZONS:
                if target > est.highest_target_tracked(name):
                    continue
                rate, res = est.estimate_raw_fee(target, th, name)
                h: dict[str, Any] = {}
                if rate:
                    h = {"feerate": amount_to_json(rate), "decay": res.decay, "scale": res.scale,
                         "pass": _bucket_json(res.pass_bucket)}
                    if res.fail_bucket.start != -1:
                        h["fail"] = _bucket_json(res.fail_bucket)
                else:
                    h = {"decay": res.decay, "scale": res.scale, "fail": _bucket_json(res.fail_bucket),
                         "errors": ["Insufficient data or no feerate found which meets threshold"]}
                out[name] = h
            return out
        return await self._w(work)
