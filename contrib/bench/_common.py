"""Shared helpers for the benchmarks: timing, medians and DESIGN.md §8 output lines."""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

VECTORS = ROOT / "tests" / "data"


def median_time(fn: Callable[[], object], runs: int) -> float:
    """Median wall time of `fn()` over `runs` runs, in seconds."""
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def paired_rates(ours: Callable[[int, int], object], ref: Callable[[int, int], object], n: int,
                 runs: int, chunk: int = 50) -> tuple[float, float]:
    """Operations per second of `ours` and of its reference `ref`, measured in alternation on
    the same chunks of `chunk` operations (`fn(start, stop)`), the order flipped every chunk,
    so a change in machine load during a run weighs on both alike; the median of `runs` runs
    of all `n` operations each. (Timing one whole loop, then the other, lets a load spike fall
    on one side only: on a shared 2-core machine that moved single ratios by +-20 %.)"""
    ours_r, ref_r = [], []
    for _ in range(runs):
        t_ours = t_ref = 0.0
        for k, start in enumerate(range(0, n, chunk)):
            stop = min(n, start + chunk)
            first, second = (ours, ref) if k % 2 == 0 else (ref, ours)
            t0 = time.perf_counter()
            first(start, stop)
            t1 = time.perf_counter()
            second(start, stop)
            t2 = time.perf_counter()
            if first is ours:
                t_ours += t1 - t0
                t_ref += t2 - t1
            else:
                t_ref += t1 - t0
                t_ours += t2 - t1
        ours_r.append(n / t_ours)
        ref_r.append(n / t_ref)
    return statistics.median(ours_r), statistics.median(ref_r)


def rate(fn: Callable[[], object], n: int, runs: int = 5) -> float:
    """Operations per second, where one call of `fn` performs `n` operations (median of runs)."""
    return n / median_time(fn, runs)


def emit(bench: str, figure: str, value: float, unit: str, target: str | None = None,
         reference: str | None = None, reference_value: float | None = None) -> dict:
    """Print one figure as a JSON line. `target` is like '<= 0.25' or '>= 0.9' on the ratio."""
    ratio = value / reference_value if reference_value else value
    ok = None
    if target:
        op, num = target.split()
        ok = ratio <= float(num) if op == "<=" else ratio >= float(num)
    line = {"bench": bench, "figure": figure, "value": round(value, 4), "unit": unit,
            "reference": reference, "reference_value": None if reference_value is None else round(reference_value, 4),
            "ratio": round(ratio, 4), "target": target, "ok": ok}
    print(json.dumps(line), flush=True)
    return line
