"""Crash safety of the daemon's write-back coins cache: a real `kill -9` of a `tinynode` process.

The chain writer commits block bodies, index and undo at every idle moment but writes the coins
cache only when it is over `--dbcache`, periodically, or at shutdown (Core's FlushStateToDisk
modes). So after blocks are mined and the RPC has answered, the store's tip (the coins' best
block) is behind the committed blocks. After SIGKILL the restarted daemon must connect the
committed blocks above that tip again and come up at the same best block with the UTXO set that
its blocks make (checked against a memory chainstate fed the same blocks), and a clean `stop`
then writes the coins with the tip.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tinynode.chain.chainstate import ChainState
from tinynode.lab import free_port
from tinynode.params import REGTEST
from tinynode.primitives.block import Block
from tinynode.rpc.client import RPCClient
from tinynode.storage.memory import MemoryChainStore

pytestmark = pytest.mark.slow


def _cmd(fn: str) -> list[str]:
    return [sys.executable, "-c", f"import sys; from tinynode.cli import {fn}; sys.exit({fn}())"]


class _Daemon:
    def __init__(self, datadir: Path) -> None:
        self.datadir = datadir
        self.log = open(datadir / "daemon.out", "ab")
        self.proc = subprocess.Popen(
            _cmd("daemon_main") + ["--network", "regtest", "--datadir", str(datadir), "--port",
                                   str(free_port()), "--no-mine"],
            stdout=self.log, stderr=subprocess.STDOUT, env={**os.environ, "TC_PEERS": ""})

    def out(self, *args: str) -> str:
        r = subprocess.run(_cmd("cli_main") + ["--network", "regtest", "--datadir", str(self.datadir),
                                               "-rpcwait", *args],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, (args, r.stderr, (self.datadir / "daemon.out").read_text()[-3000:])
        return r.stdout.strip()

    def end(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()          # this Popen's own PID only
            self.proc.wait(30)
        self.log.close()


def _stored_tip_height(db: Path) -> int:
    """Height of the store's tip (the coins' best block), read from the file of a dead daemon."""
    conn = sqlite3.connect(db)
    try:
        (tip,) = conn.execute("SELECT value FROM meta WHERE key='tip'").fetchone()
        (height,) = conn.execute("SELECT height FROM block_index WHERE hash=?", (tip,)).fetchone()
        return int(height)
    finally:
        conn.close()


@pytest.fixture
def datadir():
    d = Path(tempfile.mkdtemp(prefix="tndcrash", dir="/tmp"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_kill_9_after_idle_commits_reconnects_blocks_above_the_coins_tip(datadir):
    node = _Daemon(datadir)
    try:
        addr = node.out("getnewaddress")
        node.out("generatetoaddress", "105", addr)
        txid = node.out("sendtoaddress", node.out("getnewaddress"), "1.5")
        hashes = json.loads(node.out("generatetoaddress", "2", addr))
        assert txid in json.loads(node.out("getblock", hashes[0], "1"))["tx"]
        best = node.out("getbestblockhash")
        assert node.out("getblockcount") == "107"
        balance = node.out("getbalance")
        node.proc.kill()                  # SIGKILL after the idle commits, no shutdown flush
        assert node.proc.wait(30) == -9
    finally:
        node.end()

    db = datadir / "regtest" / "chain.sqlite"
    # the idle commits wrote the blocks but not the coins: the store's tip is behind
    assert _stored_tip_height(db) < 107

    node = _Daemon(datadir)
    try:
        assert node.out("getbestblockhash") == best
        assert node.out("getblockcount") == "107"
        assert node.out("getbalance") == balance       # the wallet agrees with the chain
        info = json.loads(node.out("gettxoutsetinfo"))
        rpc = RPCClient(datadir / "regtest" / "rpc.sock", timeout=60.0)
        ref = ChainState(REGTEST, MemoryChainStore())
        try:
            for h in range(1, 108):
                raw = rpc.call("getblock", rpc.call("getblockhash", h), 0)
                res = ref.process_block(Block.from_bytes(bytes.fromhex(raw)))
                assert res.error is None, res
            assert ref.tip.hash_hex == best
            stats = ref.utxo_stats()
            assert info["hash_serialized_3"] == stats.hash_serialized[::-1].hex()
            assert info["txouts"] == stats.txouts
        finally:
            ref.close()
        assert node.out("stop") == "tinynode stopping"
        assert node.proc.wait(60) == 0
    finally:
        node.end()
    # a clean stop writes the coins with the tip
    assert _stored_tip_height(db) == 107
