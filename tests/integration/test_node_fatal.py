"""A node whose chain store fails stops by itself (Core's AbortNode): a critical log line with
Core's wording, exit status 1 from `Node.run()` and from the `tinynode` daemon entry, and a
restart on the same datadir comes up at the last committed block."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.framework.nodes import net_config, short_tmpdir
from tests.framework.wait import wait_until
from tinynode.chain.chainstate import ChainState
from tinynode.config import NodeConfig
from tinynode.node import Node
from tinynode.params import REGTEST
from tinynode.rpc.client import AsyncRPCClient
from tinynode.storage.sqlite import SQLiteChainStore

ROOT = Path(__file__).resolve().parents[2]
FATAL = "A fatal internal error occurred, see debug.log for details"


async def test_node_stops_itself_on_a_store_failure_and_restarts_at_the_last_commit(monkeypatch, caplog):
    d = short_tmpdir()
    real_write = SQLiteChainStore.write
    broken: list[bool] = []

    def write(self, batch):
        if broken:
            raise sqlite3.OperationalError("disk I/O error")
        return real_write(self, batch)
    monkeypatch.setattr(SQLiteChainStore, "write", write)   # this test's one node only
    try:
        config = NodeConfig(datadir=d, network="regtest", port=0, bind="127.0.0.1")
        node = Node(config, net_config=net_config())
        with caplog.at_level(logging.INFO):
            running = asyncio.ensure_future(node.run())
            await wait_until(lambda: node._started and node.rpc is not None and node.rpc.warmup is None
                             or running.done(), timeout=30)
            assert not running.done()
            async with AsyncRPCClient(node.rpc_socket) as rpc:
                addr = await rpc.call("getnewaddress")
                hashes = await rpc.call("generatetoaddress", 3, addr)
                assert await rpc.call("getblockcount") == 3
                broken.append(True)
                with pytest.raises(Exception) as ei:
                    await rpc.call("generatetoaddress", 1, addr)
                assert "fatal internal error" in str(ei.value).lower(), ei.value
            # the node stops by itself, with status 1
            status = await asyncio.wait_for(running, timeout=30)
        assert status == 1 and node.exit_status == 1
        critical = [r.getMessage() for r in caplog.records if r.levelno >= logging.CRITICAL]
        assert any(m.startswith("Error: " + FATAL) and "disk I/O error" in m for m in critical), critical
        assert not node.writer.running and node.rpc is None
        monkeypatch.setattr(SQLiteChainStore, "write", real_write)
        # the store is at the last committed block, consistent, and the node starts there again
        cs = ChainState(REGTEST, SQLiteChainStore(node.network_dir / "chain.sqlite", blocks_dir=node.network_dir / "blocks"))
        try:
            assert cs.height == 3 and cs.tip.hash.hex() == bytes.fromhex(hashes[-1])[::-1].hex()
            assert cs.utxo_stats(with_hash=False).txouts == 3
        finally:
            cs.close()
        again = Node(config, net_config=net_config())
        await again.start()
        try:
            async with AsyncRPCClient(again.rpc_socket) as rpc:
                assert await rpc.call("getblockcount") == 3
                await rpc.call("generatetoaddress", 1, addr)
                assert await rpc.call("getblockcount") == 4
        finally:
            await again.stop()
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.mark.slow
def test_daemon_exits_non_zero_on_a_store_failure():
    d = short_tmpdir("tnf")
    try:
        log_path = d / "daemon.out"
        env = dict(os.environ, TC_PEERS="",
                   PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        with open(log_path, "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "tests.framework.fatal_daemon_child", "--network", "regtest",
                 "--datadir", str(d), "--port", "0", "--no-listen", "--mine", "--mine-workers", "1"],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            rc = proc.wait(timeout=90)   # the first mined block cannot be written: the daemon stops
        finally:
            if proc.poll() is None:
                proc.kill()            # this test's own child only
                proc.wait(10)
        text = log_path.read_text(errors="replace")
        assert rc == 1, text[-3000:]
        assert f"CRITICAL tinynode.node: Error: {FATAL}" in text and "disk I/O error" in text, text[-3000:]
        assert "tinynode stopped" in text
        cs = ChainState(REGTEST, SQLiteChainStore(d / "regtest" / "chain.sqlite", blocks_dir=d / "regtest" / "blocks"))
        try:
            assert cs.height == 0 and cs.tip.hash == REGTEST.genesis.hash
        finally:
            cs.close()
    finally:
        shutil.rmtree(d, ignore_errors=True)
