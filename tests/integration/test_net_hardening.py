"""P2P hardening against hostile peers, on real sockets on 127.0.0.1.

* addr rate limiting (Core ProcessMessage "addr" token bucket): an inbound flood is stored only up
  to the tokens the peer has; a getaddr we send buys one full answer.
* inbound eviction (Core AttemptToEvictConnection): with the inbound slots full, a newcomer takes
  the place of the youngest unprotected peer; a peer that just gave us a block is protected.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from tests.framework.blockbuilder import BlockBuilder
from tests.framework.netnodes import NetNode, RawConn, fast_config, sync_config
from tests.framework.wait import wait_until
from tinynode.net.addrman import addr_key
from tinynode.net.connman import MAX_ADDR_RATE_PER_SECOND, ConnMan
from tinynode.params import REGTEST
from tinynode.wire import messages as m
from tinynode.wire.constants import NODE_NETWORK

pytestmark = pytest.mark.slow

MAGIC = REGTEST.magic


class Stub:
    async def on_inv(self, peer, msg) -> None:
        pass


@contextlib.asynccontextmanager
async def connman(**cfg):
    node = ConnMan(REGTEST, fast_config(**cfg), handlers=[Stub()], dial=False)
    await node.start()
    try:
        yield node
    finally:
        await node.stop()


def public_host(i: int) -> str:
    return f"11.{i >> 8 & 255}.{i & 255}.1"


def addr_msg(start: int, n: int = 1000) -> m.Addr:
    now = int(time.time())
    return m.Addr(tuple(m.TimedAddr(now, m.NetAddr.from_host(public_host(i), 8333, NODE_NETWORK))
                        for i in range(start, start + n)))


# ------------------------------------------------------------------ addr rate limiting

async def test_addr_flood_from_inbound_peer_is_rate_limited():
    async with connman() as node:
        t0 = time.monotonic()
        r = await RawConn.connect("127.0.0.1", node.port, MAGIC)
        await r.handshake()
        for k in range(5):
            await r.send(addr_msg(k * 1000))
        await r.ping_roundtrip()
        elapsed = time.monotonic() - t0
        [info] = node.peers()
        # An inbound peer was never asked (no getaddr): one starting token plus 0.1/s.
        assert 1 <= info["addr_processed"] <= 1 + int(elapsed * MAX_ADDR_RATE_PER_SECOND)
        assert info["addr_processed"] + info["addr_rate_limited"] == 5000
        assert len(node.addrman) == info["addr_processed"]
        # Dropped silently: no misbehaviour, still connected.
        [p] = node.connected_peers()
        assert p.banscore == 0 and p.is_connected
        await r.close()


async def test_rate_limited_addresses_are_not_relayed():
    async with connman() as node, connman() as honest:
        assert await honest.connect("127.0.0.1", node.port) is not None
        r = await RawConn.connect("127.0.0.1", node.port, MAGIC)
        await r.handshake()
        await wait_until(lambda: len(node.connected_peers()) == 2)
        [hp] = [p for p in node.connected_peers() if p.listen_addr == ("127.0.0.1", honest.port)]
        for i in range(5):     # five small fresh announcements: each would be relayed
            await r.send(addr_msg(i, 1))
        await r.ping_roundtrip()
        [rp] = [p for p in node.connected_peers() if p is not hp]
        assert (rp.addr_processed, rp.addr_rate_limited) == (1, 4)
        relayed = [i for i in range(5) if addr_key(public_host(i), 8333) in node._addr_known[hp.id]]
        assert relayed == [0]
        await wait_until(lambda: honest.addrman.get(public_host(0), 8333) is not None)
        assert [i for i in range(5) if node.addrman.get(public_host(i), 8333)] == [0]
        await r.close()


async def test_getaddr_answer_is_accepted_in_full_once():
    accepted: asyncio.Queue = asyncio.Queue()

    async def on_conn(reader, writer) -> None:
        await accepted.put(RawConn(reader, writer, MAGIC))

    server = await asyncio.start_server(on_conn, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with connman() as node:
            t0 = time.monotonic()
            dial = asyncio.ensure_future(node.connect("127.0.0.1", port))
            async with asyncio.timeout(5):
                r = await accepted.get()
            await r.handshake()
            assert await dial is not None
            await r.expect("getaddr")          # outbound peers are asked; that buys 1000 tokens
            await r.send(addr_msg(0))
            await r.send(addr_msg(1000))
            await r.ping_roundtrip()
            elapsed = time.monotonic() - t0
            [info] = node.peers()
            assert 1001 <= info["addr_processed"] <= 1001 + int(elapsed * MAX_ADDR_RATE_PER_SECOND)
            assert info["addr_processed"] + info["addr_rate_limited"] == 2000
            assert node.addrman.new_count == info["addr_processed"]
            await r.close()
    finally:
        server.close()
        await server.wait_closed()


# ------------------------------------------------------------------ inbound eviction

def sockport(r: RawConn) -> int:
    return r.writer.get_extra_info("sockname")[1]


async def test_full_node_evicts_youngest_unprotected_peer_not_the_block_relayer():
    # No pong from raw peers within the test (first ping unanswered): no ping protection for them.
    node = await NetNode(REGTEST, config=sync_config(max_inbound=13, ping_interval=60.0,
                                                     pong_timeout=60.0)).start()
    conns: list[RawConn] = []
    try:
        for _ in range(13):
            r = await RawConn.connect("127.0.0.1", node.port, MAGIC)
            await r.handshake()
            conns.append(r)
        await wait_until(lambda: len(node.connman.connected_peers()) == 13)
        by_port = {p.addr[1]: p for p in node.connman.connected_peers()}
        relayer = conns[-1]                        # the youngest: evicted first but for its block
        rp = by_port[sockport(relayer)]
        await relayer.send(m.BlockMsg(BlockBuilder(REGTEST).next_block("b1")))
        await wait_until(lambda: node.height == 1 and rp.last_block_time > 0)
        assert rp.synced_blocks == 1
        victim = by_port[sockport(conns[-2])]      # the youngest of the others

        newcomer = await RawConn.connect("127.0.0.1", node.port, MAGIC)
        await newcomer.handshake()
        conns.append(newcomer)
        assert await conns[-3].wait_closed(3)
        await wait_until(lambda: victim.closed.is_set())
        assert victim.disconnect_reason == "evicted for an inbound connection"
        inbound = [p for p in node.connman.connected_peers() if p.inbound]
        assert len(inbound) == 13 and rp in inbound and victim not in inbound
        assert sockport(newcomer) in {p.addr[1] for p in inbound}
    finally:
        for r in conns:
            await r.close()
        await node.stop()


async def test_newcomer_refused_when_every_inbound_peer_is_protected():
    async with connman(max_inbound=3) as node:
        conns = [await RawConn.connect("127.0.0.1", node.port, MAGIC) for _ in range(3)]
        for r in conns:
            await r.handshake()
        late = await RawConn.connect("127.0.0.1", node.port, MAGIC)
        assert await late.wait_closed(3)
        assert len(node.connected_peers()) == 3       # three peers: all protected, none evicted
        for r in conns + [late]:
            await r.close()
