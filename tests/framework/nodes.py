"""N full in-process `tinynode.node.Node`s for integration tests (Core's test_framework nodes).

Each node gets its own short datadir under /tmp (Unix socket paths are limited to ~100 bytes,
and pytest's tmp_path can be longer), a P2P listener on 127.0.0.1:0, its RPC socket, and an
async RPC client::

    async with running_nodes(2) as (a, b):
        await connect_nodes(a, b)
        addr = await b.rpc.call("getnewaddress")
        await a.rpc.call("generatetoaddress", 101, await a.rpc.call("getnewaddress"))
        await sync_blocks([a, b])

Every wait is bounded (`wait_until`); `stop()` ends only what the helper started.
"""

from __future__ import annotations

import shutil
import tempfile
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator

from tests.framework.wait import wait_until
from tinynode.config import NodeConfig
from tinynode.node import Node
from tinynode.rpc.client import AsyncRPCClient

__all__ = ["TestNode", "start_node", "running_nodes", "connect_nodes", "sync_blocks",
           "sync_mempools", "short_tmpdir", "net_config"]


def short_tmpdir(prefix: str = "tn") -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


def net_config() -> Any:
    """The P2P layer's test timeouts when the net framework provides them."""
    try:
        from tests.framework.netnodes import fast_config
    except ImportError:  # pragma: no cover
        return None
    return fast_config()


@dataclass
class TestNode:
    __test__ = False  # not a pytest class

    node: Node
    rpc: AsyncRPCClient
    datadir: Path
    owns_dir: bool = True
    extra: dict = field(default_factory=dict)

    @property
    def p2p_addr(self) -> str:
        return f"127.0.0.1:{self.node.p2p_port}"

    async def stop(self, remove: bool = True) -> None:
        await self.rpc.close()
        await self.node.stop()
        if remove and self.owns_dir:
            shutil.rmtree(self.datadir, ignore_errors=True)

    async def restart(self) -> "TestNode":
        """Stop and start again on the same datadir (same config)."""
        cfg = self.node.config
        await self.rpc.close()
        await self.node.stop()
        node = Node(cfg, net_config=self.node.net_config)
        await node.start()
        self.node = node
        self.rpc = AsyncRPCClient(node.rpc_socket)
        return self


async def start_node(datadir: Path | None = None, network: str = "regtest", **cfg: Any) -> TestNode:
    owns = datadir is None
    d = datadir if datadir is not None else short_tmpdir()
    config = NodeConfig(datadir=d, network=network, port=cfg.pop("port", 0),
                        bind=cfg.pop("bind", "127.0.0.1"), **cfg)
    node = Node(config, net_config=net_config())
    try:
        await node.start()
    except BaseException:
        if owns:
            shutil.rmtree(d, ignore_errors=True)
        raise
    return TestNode(node, AsyncRPCClient(node.rpc_socket), d, owns)


@asynccontextmanager
async def running_nodes(n: int, **cfg: Any) -> AsyncIterator[list[TestNode]]:
    nodes: list[TestNode] = []
    try:
        for _ in range(n):
            nodes.append(await start_node(**dict(cfg)))
        yield nodes
    finally:
        for t in reversed(nodes):
            await t.stop()


async def connect_nodes(a: TestNode, b: TestNode, timeout: float = 10.0) -> None:
    """b dials a; returns once both see the connection."""
    before_a = len(a.node.connman.connected_peers())
    before_b = len(b.node.connman.connected_peers())
    await b.rpc.call("addnode", a.p2p_addr, "onetry")
    await wait_until(lambda: len(a.node.connman.connected_peers()) > before_a
                     and len(b.node.connman.connected_peers()) > before_b, timeout,
                     message=f"{b.p2p_addr} -> {a.p2p_addr} did not connect")


def _linked(a: TestNode, b: TestNode) -> bool:
    """a has a connection to or from b (by b's listening address)."""
    there = ("127.0.0.1", b.node.p2p_port)
    return any(p.addr == there or p.listen_addr == there for p in a.node.connman.connected_peers())


async def disconnect_nodes(a: TestNode, b: TestNode, timeout: float = 10.0) -> None:
    """Partition a from b (Core's disconnect_nodes) with the lab deny list both ways, so neither
    dials the other again; returns once neither sees the other."""
    a.node.connman.deny(b.p2p_addr)
    b.node.connman.deny(a.p2p_addr)
    await wait_until(lambda: not _linked(a, b) and not _linked(b, a), timeout,
                     message=f"{a.p2p_addr} and {b.p2p_addr} are still connected")


async def reconnect_nodes(a: TestNode, b: TestNode, timeout: float = 10.0) -> None:
    """Heal a partition made by `disconnect_nodes`: lift the deny lists, then b dials a."""
    a.node.connman.allow(b.p2p_addr)
    b.node.connman.allow(a.p2p_addr)
    await connect_nodes(a, b, timeout)


async def sync_blocks(nodes: list[TestNode], timeout: float = 20.0) -> None:
    def same() -> bool:
        return len({t.node.writer.snapshot.tip_hash for t in nodes}) == 1

    await wait_until(same, timeout, message=lambda: "tips: " + ", ".join(
        f"{t.node.writer.snapshot.height}" for t in nodes))


async def sync_mempools(nodes: list[TestNode], timeout: float = 20.0) -> None:
    async def same() -> bool:
        pools = [set(await t.rpc.call("getrawmempool")) for t in nodes]
        return all(p == pools[0] for p in pools)

    await wait_until(same, timeout, message="mempools differ")
