"""P2P hardening against hostile peers, on real sockets on 127.0.0.1.

* addr rate limiting (Core ProcessMessage "addr" token bucket): an inbound flood is stored only up
  to the tokens the peer has; a getaddr we send buys one full answer.
* inbound eviction (Core AttemptToEvictConnection): with the inbound slots full, a newcomer takes
  the place of the youngest unprotected peer; a peer that just gave us a block is protected.
* local peers are disconnected for misbehaviour, never banned (Core MaybeDiscourageAndDisconnect):
  however often peers from 127.0.0.1 misbehave, the IP may connect again; old ban lists with the
  `inbound:<ip>` keys of the earlier escalation load, the keys dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

import pytest

from tests.framework.blockbuilder import BlockBuilder
from tests.framework.netnodes import NetNode, RawConn, bare_connman, sync_config
from tests.framework.nodes import connect_nodes, running_nodes, sync_blocks, sync_mempools
from tests.framework.wait import wait_until
from tinynode.net.addrman import addr_key
from tinynode.net.connman import MAX_ADDR_RATE_PER_SECOND
from tinynode.params import REGTEST
from tinynode.primitives.serialize import ser_compact_size
from tinynode.primitives.tx import Tx
from tinynode.wire import messages as m
from tinynode.wire.constants import NODE_NETWORK

pytestmark = pytest.mark.slow

MAGIC = REGTEST.magic


@contextlib.asynccontextmanager
async def connman(**cfg):
    node = bare_connman(**cfg)
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
        # queued for the addr trickle (Core m_addrs_to_send) or already sent (m_addr_known)
        queued = {addr_key(h, p) for h, p, _, _ in hp.addrs_to_send} | set(node._addr_known[hp.id])
        relayed = [i for i in range(5) if addr_key(public_host(i), 8333) in queued]
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


async def closed_by_node(r: RawConn, timeout: float = 3.0) -> bool:
    """True if the node closes the connection within `timeout` s. (Not RawConn.wait_closed: it
    also answers True on a timeout, since TimeoutError is an OSError.)"""
    try:
        async with asyncio.timeout(timeout):
            while await r.reader.read(65536):
                pass
    except TimeoutError:
        return False
    except (ConnectionError, OSError):
        return True
    return True


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
        assert await closed_by_node(conns[-3])
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
        assert await closed_by_node(late)
        assert len(node.connected_peers()) == 3       # three peers: all protected, none evicted
        for r in conns + [late]:
            await r.close()


async def test_peer_whose_tx_enters_the_mempool_gets_the_tx_time():
    """Core's m_last_tx_time: set when a tx from the peer is accepted to the mempool; a raw peer
    that sends the same tx afterwards (a duplicate, not accepted) gets none."""
    async with running_nodes(2, txindex=True) as (a, b):
        await connect_nodes(a, b)
        await a.rpc.call("generatetoaddress", 101, await a.rpc.call("getnewaddress"))
        await sync_blocks([a, b])
        txid = await a.rpc.call("sendtoaddress", await b.rpc.call("getnewaddress"), 1)
        await sync_mempools([a, b])
        [from_a] = b.node.connman.connected_peers()
        assert from_a.last_tx_time > 0
        raw = await RawConn.connect("127.0.0.1", b.node.p2p_port, MAGIC)
        await raw.handshake()
        await raw.send(m.TxMsg(Tx.from_hex(await a.rpc.call("getrawtransaction", txid))))
        await raw.ping_roundtrip()
        [dup] = [p for p in b.node.connman.connected_peers() if p.addr[1] == sockport(raw)]
        assert dup.last_tx_time == 0
        await raw.close()



# ------------------------------------------------------------------ local peers: disconnected, never banned

async def misbehave_from_new_port(port: int) -> int:
    """Connect from a fresh ephemeral port and send an addr of 1,001 entries (Core's
    Misbehaving "addr message size = 1001")."""
    r = await RawConn.connect("127.0.0.1", port, MAGIC)
    src = sockport(r)
    await r.handshake()
    entry = m.TimedAddr(int(time.time()), m.NetAddr.from_host("1.2.3.4", 8333, 1))
    await r.send_raw("addr", ser_compact_size(1001) + entry.serialize() * 1001)
    assert await closed_by_node(r)
    await r.close()
    return src


async def refused(port: int) -> bool:
    """The node closes a new inbound connection at once, before any handshake."""
    r = await RawConn.connect("127.0.0.1", port, MAGIC)
    try:
        return await closed_by_node(r, 2.0)
    finally:
        await r.close()


async def test_misbehaving_loopback_peers_are_disconnected_and_may_always_reconnect(caplog):
    """Core MaybeDiscourageAndDisconnect: a local peer is disconnected, never discouraged (that
    would cut off every node on 127.0.0.1). However often peers from 127.0.0.1 misbehave, the
    IP is never refused wholesale, and the node keeps dialling and syncing from its neighbours."""
    caplog.set_level("INFO", logger="tinynode.net.peer")
    async with running_nodes(2, txindex=True) as (victim, honest):
        cm = victim.node.connman
        ports = [await misbehave_from_new_port(victim.node.p2p_port) for _ in range(5)]
        assert len(set(ports)) == 5
        assert caplog.text.count("disconnecting but not discouraging local peer") == 5
        assert await victim.rpc.call("listbanned") == []
        assert not any(cm.is_banned("127.0.0.1", p) for p in ports) and not cm.is_banned("127.0.0.1")
        assert not await refused(victim.node.p2p_port)
        r = await RawConn.connect("127.0.0.1", victim.node.p2p_port, MAGIC)
        await r.handshake()
        await r.ping_roundtrip()
        await r.close()

        await honest.rpc.call("generatetoaddress", 3, await honest.rpc.call("getnewaddress"))
        await victim.rpc.call("addnode", honest.p2p_addr, "onetry")
        await sync_blocks([victim, honest])
        assert victim.node.writer.snapshot.height == 3

        # setban still bans a loopback address when told to.
        await victim.rpc.call("setban", "127.0.0.1", "add")
        assert await refused(victim.node.p2p_port)
        await victim.rpc.call("clearbanned")
        assert not await refused(victim.node.p2p_port)


async def test_old_inbound_only_ban_keys_are_dropped_when_read(tmp_path, caplog):
    """Ban lists written by the escalation of earlier versions (`inbound:<ip>` keys) load
    without error: those keys are dropped with a log line, other bans are kept."""
    until = time.time() + 3600
    (tmp_path / "banlist.json").write_text(json.dumps({
        "inbound:127.0.0.1": [until, "inbound connections refused: 3 ports banned"],
        "11.2.3.4": [until, "manually added"]}))
    caplog.set_level("INFO", logger="tinynode.net.connman")
    cm = bare_connman(tmp_path)
    await cm.start()
    try:
        assert "dropping inbound:127.0.0.1 from the ban list" in caplog.text
        assert [b["address"] for b in cm.list_banned()] == ["11.2.3.4"]
        assert cm.is_banned("11.2.3.4") and not cm.is_banned("127.0.0.1")
        r = await RawConn.connect("127.0.0.1", cm.port, MAGIC)
        await r.handshake()
        await r.close()
    finally:
        await cm.stop()
    assert set(json.loads((tmp_path / "banlist.json").read_text())) == {"11.2.3.4"}


# ------------------------------------------------------------------ peer strings

async def test_user_agent_is_sanitized_before_it_is_shown_or_logged(caplog):
    """Core `SanitizeString` (cleanSubVer): a user agent with a newline and terminal escape
    codes cannot forge a log line or reach getpeerinfo unfiltered."""
    evil = "/evil:1.0/\n2026-12-06 INFO tinynode.chain: forged line\x1b[31m\x00(x)"
    assert m.sanitize_string(evil) == "/evil:1.0/2026-12-06 INFO tinynode.chain: forged line31m(x)"
    caplog.set_level("INFO", logger="tinynode.net.peer")
    async with connman() as node:
        r = await RawConn.connect("127.0.0.1", node.port, MAGIC)
        await r.handshake(user_agent=evil)
        await r.ping_roundtrip()
        [info] = node.peers()
        assert info["subver"] == m.sanitize_string(evil)
        await r.close()
    logged = "\n".join(rec.getMessage() for rec in caplog.records)
    assert "forged line31m(x)" in logged
    assert "\x1b" not in logged and "/\n2026" not in logged
