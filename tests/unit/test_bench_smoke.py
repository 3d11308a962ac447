"""Smoke runs of the network benchmarks (contrib/bench/ibd.py, relay.py) in their smallest
modes, so they keep working as the node changes. Only the output's shape is checked (DESIGN.md
§8 lines with the expected figures and positive values), never a speed: timed assertions belong
to the benchmarks themselves."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "contrib" / "bench"


def run_bench(script: str, *args: str, timeout: float = 100.0) -> dict[str, dict]:
    out = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True,
                         text=True, timeout=timeout, cwd=str(BENCH))
    assert out.returncode == 0, f"{script} exited {out.returncode}:\n{out.stderr[-4000:]}"
    lines = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    figures = {line["figure"]: line for line in lines}
    for line in lines:
        assert set(line) == {"bench", "figure", "value", "unit", "reference", "reference_value",
                             "ratio", "target", "ok"}, line
    return figures


@pytest.mark.slow
def test_ibd_smallest_mode_syncs_between_two_daemons():
    figs = run_bench("ibd.py", "--blocks", "5", "--txs", "2", "--timeout", "60")
    core = {"ibd_inputs_per_s_vs_core"} if os.environ.get("TINYNODE_BITCOIND") else set()
    assert set(figs) == {"ibd_inputs_per_s", "ibd_blocks_per_s", "ibd_inputs_per_cpu_s"} | core
    if core:   # the same chain synced between two bitcoinds in the same run
        assert figs["ibd_inputs_per_s_vs_core"]["reference_value"] > 0
    assert figs["ibd_inputs_per_s"]["reference_value"] > 0
    assert figs["ibd_blocks_per_s"]["value"] > 0
    assert figs["ibd_inputs_per_s"]["target"] == ">= 0.35"


@pytest.mark.slow
def test_relay_smallest_mode_reaches_every_node():
    figs = run_bench("relay.py", "--nodes", "5", "--rounds", "3")
    assert set(figs) == {"relay_block_p50_s", "relay_block_p95_s", "relay_tx_p50_s", "relay_tx_p95_s"}
    assert all(f["value"] > 0 for f in figs.values())
    assert figs["relay_block_p95_s"]["target"] == "<= 1"
