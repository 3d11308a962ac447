"""`tinynode lab` with real daemons (subprocesses on 127.0.0.1, regtest).

Each test starts its own lab in a temporary directory and always takes it down (fixture
teardown), checking by pid that no daemon outlives it. Waits are bounded (`Lab.sync`,
`wait_until_sync`), never bare sleeps.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.framework.wait import wait_until_sync
from tinynode.lab import Lab, _group_members, pid_alive

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture
def lab(tmp_path: Path):
    lab = Lab(tmp_path / "lab")
    try:
        yield lab
    finally:
        pids = lab.pids() if lab.exists() else []
        lab.down()
        for pid in pids:
            assert not pid_alive(pid), f"daemon {pid} outlived lab.down()"


def run_lab(tmp_path: Path, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
    """`python -m tinynode.lab --dir D ...` as a person would run it, this checkout's package."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TC_")}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", "tinynode.lab", "--dir", str(tmp_path / "lab"), *args],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout)


def assert_synced(lab: Lab, timeout: float = 30.0) -> list[dict]:
    ok, diff = lab.sync(timeout)
    assert ok, diff
    return lab.tips()


def test_up5_mine_sync_down_leaves_no_process(tmp_path: Path) -> None:
    lab = Lab(tmp_path / "lab")
    try:
        r = run_lab(tmp_path, "up", "5")
        assert r.returncode == 0, r.stderr
        nodes = json.loads((tmp_path / "lab" / "lab.json").read_text())["nodes"]
        pids = [n["pid"] for n in nodes]
        assert len(pids) == 5 and all(pid_alive(p) for p in pids)
        assert len({n["port"] for n in nodes}) == 5
        # each daemon leads its own process group
        assert all(os.getpgid(p) == p for p in pids)
        r = run_lab(tmp_path, "mine", "0", "5")
        assert r.returncode == 0, r.stderr
        assert "height 5" in r.stdout
        r = run_lab(tmp_path, "sync", "--timeout", "30")
        assert r.returncode == 0, r.stdout + r.stderr
        assert "5 nodes at height 5" in r.stdout
        r = run_lab(tmp_path, "tips")
        rows = [line.split() for line in r.stdout.splitlines()[1:]]
        assert [row[0] for row in rows] == ["n0", "n1", "n2", "n3", "n4"]
        assert {row[1] for row in rows} == {"5"} and len({row[2] for row in rows}) == 1
        members = [m for p in pids for m in _group_members(p)]
        r = run_lab(tmp_path, "down")
        assert r.returncode == 0, r.stderr
        for pid in set(pids) | set(members):
            assert _gone(pid), f"process {pid} is still there after `lab down`"
        assert not (tmp_path / "lab").exists()
    finally:
        lab.down()


def test_restart_keeps_the_chain(lab: Lab) -> None:
    lab.up(2)
    hashes = lab.mine(1, 5)
    assert_synced(lab)
    old_pid = lab.node(1).pid
    new = lab.restart(1)
    assert new.pid != old_pid and not pid_alive(old_pid)
    assert lab.rpc(1, "getbestblockhash") == hashes[-1]
    assert lab.rpc(1, "getblockcount") == 5
    # it rejoins the network and follows it
    more = lab.mine(0, 2)
    rows = assert_synced(lab)
    assert {r["tip"] for r in rows} == {more[-1]}


def test_four_daemons_discover_each_other_through_addr_gossip(lab: Lab) -> None:
    """Each node starts knowing only its predecessor (a line); addr gossip completes the mesh."""
    nodes = lab.up(4, topology="line")
    for n in nodes:
        peers = n.argv[n.argv.index("--peers") + 1].split(",") if "--peers" in n.argv else []
        assert len(peers) == (0 if n.index == 0 else 1)
    addresses = {n.address for n in nodes}

    def everyone_knows_everyone() -> bool:
        for n in nodes:
            seen = {p.get("addrlisten") or p.get("addr") for p in lab.rpc(n.index, "getpeerinfo")}
            if seen != addresses - {n.address}:
                return False
        return True
    wait_until_sync(everyone_knows_everyone, 45, interval=0.5, message="full mesh by addr gossip")
    blocks = lab.mine(3, 3)
    rows = assert_synced(lab)
    assert {r["tip"] for r in rows} == {blocks[-1]}
    # (two nodes dialling each other at once may briefly hold two connections)
    assert all(r["peers"] >= 3 for r in rows), rows


def test_kill9_and_restart_lose_nothing(lab: Lab) -> None:
    lab.up(3, topology="mesh")
    lab.mine(0, 101)
    assert_synced(lab)
    addr = lab.rpc(2, "getnewaddress")
    txid = lab.rpc(0, "sendtoaddress", addr, 10)
    assert_synced(lab)                                  # the tx is in every mempool
    mined = lab.mine(1, 1)
    before = assert_synced(lab)
    assert {r["mempool"] for r in before} == {0}
    balance = lab.rpc(2, "getbalance")
    assert balance == 10
    addresses = lab.rpc(2, "listaddresses")

    pid = lab.node(2).pid
    lab.kill(2)                                         # kill -9 of the whole process group
    assert not pid_alive(pid)
    more = lab.mine(0, 2)                               # the network goes on without it
    lab.restart(2)
    after = assert_synced(lab)
    assert {r["tip"] for r in after} == {more[-1]} and {r["height"] for r in after} == {104}
    assert lab.rpc(2, "getblockhash", 102) == mined[-1]
    assert lab.rpc(2, "getbalance") == balance
    assert lab.rpc(2, "listaddresses") == addresses
    st = lab.rpc(2, "gettxstatus", txid)
    assert st["status"] == "confirmed" and st["confirmations"] == 3


def test_down_keep_data_then_up_again_keeps_the_chain(lab: Lab) -> None:
    lab.up(2)
    blocks = lab.mine(0, 3)
    assert_synced(lab)
    pids = lab.pids()
    lab.down(keep_data=True)
    assert all(not pid_alive(p) for p in pids)
    assert (lab.dir / "n0" / "regtest" / "chain.sqlite").exists() and lab.exists()
    assert lab.pids() == []
    lab.up(2)                                   # same data directories, fresh ports
    rows = assert_synced(lab)
    assert {r["tip"] for r in rows} == {blocks[-1]} and {r["height"] for r in rows} == {3}


def test_miners_flag_mines_continuously_on_regtest(lab: Lab) -> None:
    nodes = lab.up(2, miners=[1])
    assert [n.miner for n in nodes] == [False, True]
    assert "--mine" in nodes[1].argv and "--no-mine" in nodes[0].argv
    wait_until_sync(lambda: lab.rpc(0, "getblockcount") >= 2, 30, interval=0.2,
                    message="blocks from the mining node reach the other")
