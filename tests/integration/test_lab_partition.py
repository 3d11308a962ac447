"""`tinynode lab partition` / `heal` with real daemons: per-node deny-lists through RPC.

All nodes share 127.0.0.1, so a partition is each node refusing the other side's
`127.0.0.1:port` (RPC `denypeer` / `allowpeer`), not an IP ban.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.framework.wait import wait_until_sync
from tests.integration.test_lab import assert_synced, lab  # noqa: F401  (fixture)
from tinynode.lab import Lab, lab_main

pytestmark = pytest.mark.slow


def test_sync_reports_difference_and_exit_status(lab: Lab, tmp_path: Path, capsys) -> None:
    lab.up(2)
    lab.partition([[0], [1]])
    lab.mine(0, 1)
    rc = lab_main(["--dir", str(lab.dir), "sync", "--timeout", "1"])
    out = capsys.readouterr().out
    assert rc == 1
    assert "tips differ" in out and "n0@1" in out and "n1@0" in out
    lab.heal()
    assert lab_main(["--dir", str(lab.dir), "sync", "--timeout", "30"]) == 0


def test_partition_heal_shows_reorg(lab: Lab) -> None:
    lab.up(4, topology="line")
    lab.mine(0, 2)
    assert_synced(lab)
    lab.partition([[0, 1], [2, 3]])
    a = lab.mine(0, 1)                   # side A: one block
    b = lab.mine(3, 3)                   # side B: three blocks, more work
    wait_until_sync(lambda: lab.rpc(1, "getbestblockhash") == a[-1], 20)
    wait_until_sync(lambda: lab.rpc(2, "getbestblockhash") == b[-1], 20)
    tree = lab.tree()
    assert "├──" in tree and "<- n0 n1" in tree and "<- n2 n3" in tree, tree
    assert tree.splitlines()[0].startswith("height 2 "), tree
    lab.heal()
    rows = assert_synced(lab)
    assert {r["tip"] for r in rows} == {b[-1]} and {r["height"] for r in rows} == {5}
    # n0 reorganized: its own block at height 3 is now a valid fork, off the active chain
    tips = {t["hash"]: t for t in lab.rpc(0, "getchaintips")}
    assert tips[a[-1]]["status"] == "valid-fork" and tips[a[-1]]["height"] == 3
    assert tips[b[-1]]["status"] == "active"
    assert lab.tree() == f"height 5  {b[-1][:16]}  <- n0 n1 n2 n3"
