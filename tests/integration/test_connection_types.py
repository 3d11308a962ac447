"""Core's outbound connection types and the addr rules that depend on them, on real sockets
(127.0.0.1): the `addconnection` RPC (Core CConnman::AddConnection and its errors), getpeerinfo's
`connection_type`, outbound-full-relay (getaddr, +1000 tokens, its first answer not relayed),
block-relay-only (relay=0, no getaddr, addr ignored, never an addr relay destination), feeler
(closed once the version is processed), addr-fetch (closed after an answer of several addresses
or after 5 minutes of the mock clock), the addr token bucket on the mock clock and -blocksonly.
The node dials a listener of the test's, which then speaks as a raw peer."""
from __future__ import annotations

import asyncio
import logging
import time

import pytest

from tinynode.net.permissions import parse_whitelist
from tinynode.params import REGTEST
from tinynode.rpc.protocol import RPCError
from tinynode.wire import messages as m
from tests.framework.nodes import start_node
from tests.framework.rawpeer import RawPeer
from tests.framework.wait import wait_until

MAGIC = REGTEST.magic


class Listener:
    """A TCP listener on 127.0.0.1 whose accepted connections become RawPeers."""

    def __init__(self) -> None:
        self.accepted: asyncio.Queue = asyncio.Queue()
        self.server: asyncio.base_events.Server | None = None
        self.port = 0

    async def __aenter__(self) -> "Listener":
        async def on_conn(reader, writer):
            await self.accepted.put(RawPeer(reader, writer, MAGIC))
        self.server = await asyncio.start_server(on_conn, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc) -> None:
        assert self.server is not None
        self.server.close()

    async def accept(self, timeout: float = 5.0) -> RawPeer:
        async with asyncio.timeout(timeout):
            return await self.accepted.get()


async def _outbound(t, conn_type: str, *, handshake: bool = True) -> tuple[RawPeer, dict]:
    """Have the node open a `conn_type` connection to a fresh listener; the raw peer and the
    node's getpeerinfo row of it."""
    lst = Listener()
    await lst.__aenter__()
    try:
        assert await t.rpc.call("addconnection", f"127.0.0.1:{lst.port}", conn_type, False) == {
            "address": f"127.0.0.1:{lst.port}", "connection_type": conn_type}
        r = await lst.accept()
    finally:
        await lst.__aexit__()
    if not handshake:
        return r, {}
    await r.handshake()
    await r.sync_with_ping()
    rows = [p for p in await t.rpc.call("getpeerinfo") if p["addr"] == f"127.0.0.1:{lst.port}"]
    assert len(rows) == 1
    return r, rows[0]


async def _inbound(t) -> RawPeer:
    r = await RawPeer.connect("127.0.0.1", t.node.p2p_port, MAGIC)
    await r.handshake()
    return r


def _addrs(mock: int, base: int, n: int, services: int = 9) -> m.Addr:
    return m.Addr(tuple(m.TimedAddr(mock, m.NetAddr.from_host(f"123.{base}.{i // 250}.{i % 250 + 1}", 8333, services))
                        for i in range(n)))


async def _got_addrs(r: RawPeer, timeout: float = 0.3) -> list[str]:
    got = []
    while True:
        try:
            msg = await r.wait_for("addr", timeout=timeout)
        except TimeoutError:
            return got
        got += [a.addr.host for a in msg.addrs]


def _row(t, peer_id: int) -> dict:
    return next(p.info() for p in t.node.connman.connected_peers() if p.id == peer_id)


async def test_addconnection_errors_and_result_as_core():
    t = await start_node()
    try:
        t.node.connman.dial_enabled = False
        call = t.rpc.call
        with pytest.raises(RPCError) as e:
            await call("addconnection", "127.0.0.1:1", "manual", False)
        assert e.value.code == -8 and e.value.message.startswith("addconnection")
        with pytest.raises(RPCError) as e:
            await call("addconnection", "127.0.0.1:1", "inbound", False)
        assert e.value.code == -8
        with pytest.raises(RPCError) as e:
            await call("addconnection", "127.0.0.1:1", "feeler", True)
        assert (e.value.code, e.value.message) == (
            -8, "Error: Adding v2transport connections requires -v2transport init flag to be set.")
        # two block-relay-only connections at most (Core MAX_BLOCK_RELAY_ONLY_CONNECTIONS)
        async with Listener() as a, Listener() as b, Listener() as c:
            for lst in (a, b):
                assert (await call("addconnection", f"127.0.0.1:{lst.port}", "block-relay-only", False)
                        )["connection_type"] == "block-relay-only"
                await (await lst.accept()).handshake()
            await wait_until(lambda: t.node.connman.connection_count("block-relay-only") == 2)
            with pytest.raises(RPCError) as e:
                await call("addconnection", f"127.0.0.1:{c.port}", "block-relay-only", False)
            assert (e.value.code, e.value.message) == (-34, "Error: Already at capacity for specified connection type.")
            # an address already connected is not dialled twice (Core OpenNetworkConnection)
            assert (await call("addconnection", f"127.0.0.1:{a.port}", "feeler", False)
                    )["connection_type"] == "feeler"
            with pytest.raises(TimeoutError):
                await a.accept(timeout=0.5)
        # inbound peers say "inbound"
        r = await _inbound(t)
        types = sorted(p["connection_type"] for p in await call("getpeerinfo"))
        assert types == ["block-relay-only", "block-relay-only", "inbound"]
        await r.close()
    finally:
        await t.stop()


async def test_addconnection_is_regtest_only():
    t = await start_node(network="tinynet")
    try:
        with pytest.raises(RPCError) as e:
            await t.rpc.call("addconnection", "127.0.0.1:1", "feeler", False)
        assert (e.value.code, e.value.message) == (-1, "addconnection is for regression testing (-regtest mode) only.")
    finally:
        await t.stop()


async def test_outbound_full_relay_asks_getaddr_and_does_not_relay_the_first_answer(caplog):
    mock = int(time.time())
    t = await start_node(mocktime=mock)
    try:
        t.node.connman.dial_enabled = False
        inbound = await _inbound(t)
        await inbound.send(m.Addr(()))            # an empty addr turns addr relay on
        await inbound.sync_with_ping()
        out, row = await _outbound(t, "outbound-full-relay")
        assert out.peer_version.relay is True
        assert row["connection_type"] == "outbound-full-relay" and row["addr_relay_enabled"] is True
        await out.wait_for("getaddr")
        # its getaddr is ignored: outbound peers are never answered (fingerprinting)
        with caplog.at_level(logging.DEBUG, logger="tinynode.net.connman"):
            await out.send(m.GetAddr())
            await out.sync_with_ping()
        assert f'Ignoring "getaddr" from outbound-full-relay connection. peer={row["id"]}' in caplog.text
        # the first addr after our getaddr is not relayed (m_getaddr_sent), the next one is
        await out.send(_addrs(mock, 1, 2))
        await out.sync_with_ping()
        await out.send(_addrs(mock, 2, 2))
        await out.sync_with_ping()
        mock += 600
        await t.rpc.call("setmocktime", mock)
        await inbound.sync_with_ping()
        assert sorted(await _got_addrs(inbound)) == ["123.2.0.1", "123.2.0.2"]
        # 1 + 1000 tokens: all four processed
        assert (_row(t, row["id"])["addr_processed"], _row(t, row["id"])["addr_rate_limited"]) == (4, 0)
        await out.close()
        await inbound.close()
    finally:
        await t.stop()


async def test_block_relay_only_has_no_tx_or_addr_relay(caplog):
    mock = int(time.time())
    t = await start_node(mocktime=mock, whitelist=(parse_whitelist("addr@127.0.0.1"),))
    try:
        t.node.connman.dial_enabled = False
        source = await _inbound(t)
        await source.send(m.GetAddr())
        await source.sync_with_ping()
        full, _ = await _outbound(t, "outbound-full-relay")
        block, row = await _outbound(t, "block-relay-only")
        assert block.peer_version.relay is False          # Core RejectIncomingTxs: fRelay=0
        assert (row["connection_type"], row["relaytxes"], row["addr_relay_enabled"]) == (
            "block-relay-only", False, False)
        await block.expect_nothing(0.3, "getaddr")
        with caplog.at_level(logging.DEBUG, logger="tinynode.net.connman"):
            await block.send(_addrs(mock, 3, 5))
            await block.send(m.GetAddr())
            await block.sync_with_ping()
        assert f'ignoring addr message from block-relay-only peer={row["id"]}' in caplog.text
        assert f'Ignoring "getaddr" from block-relay-only connection. peer={row["id"]}' in caplog.text
        info = _row(t, row["id"])
        assert (info["addr_processed"], info["addr_rate_limited"], info["addr_relay_enabled"]) == (0, 0, False)
        # an address from the inbound peer goes to the full-relay peer, never the block-relay one
        await source.send(_addrs(mock, 4, 2))
        await source.sync_with_ping()
        mock += 600
        await t.rpc.call("setmocktime", mock)
        await full.sync_with_ping()
        await block.sync_with_ping()
        assert sorted(await _got_addrs(full)) == ["123.4.0.1", "123.4.0.2"]
        assert await _got_addrs(block) == []
        for r in (source, full, block):
            await r.close()
    finally:
        await t.stop()


async def test_feeler_closes_after_the_version_and_marks_the_address_good(caplog):
    t = await start_node()
    try:
        t.node.connman.dial_enabled = False
        with caplog.at_level(logging.DEBUG, logger="tinynode.net.peer"):
            r, _ = await _outbound(t, "feeler", handshake=False)
            theirs = await r.wait_for("version")
            assert theirs.relay is False                   # no txs from a feeler
            await r.send(m.Version.create(nonce=12345, start_height=0, timestamp=int(time.time()),
                                          addr_recv=m.NULL_NETADDR, services=9, relay=True,
                                          user_agent="/feeler-target/"))
            assert await r.wait_closed(5.0)
        assert "feeler connection completed, disconnecting peer=0" in caplog.text
        await wait_until(lambda: not t.node.connman.all_peers())
        port = r.writer.get_extra_info("sockname")[1]       # the address the node dialled
        entry = t.node.connman.addrman.get("127.0.0.1", port)
        assert (entry.tried, entry.services) == (True, 9)   # Core: Good() for a feeler too
    finally:
        await t.stop()


async def test_addr_fetch_closes_after_an_answer_of_several_addresses():
    mock = int(time.time())
    t = await start_node(mocktime=mock)
    try:
        t.node.connman.dial_enabled = False
        r, row = await _outbound(t, "addr-fetch")
        assert row["connection_type"] == "addr-fetch"
        await r.wait_for("getaddr")
        await r.send(_addrs(mock, 5, 1))                  # a self-announcement: stays up
        await r.sync_with_ping()
        assert t.node.connman.get_peer(row["id"]).is_connected
        await r.send(_addrs(mock, 5, 2))
        assert await r.wait_closed(5.0)
        # a silent addr-fetch peer is closed after 10 × AVG_ADDRESS_BROADCAST_INTERVAL (mock clock)
        r2, row2 = await _outbound(t, "addr-fetch")
        await t.rpc.call("setmocktime", mock + 299)
        await r2.sync_with_ping()
        assert t.node.connman.get_peer(row2["id"]).is_connected
        await t.rpc.call("setmocktime", mock + 301)
        assert await r2.wait_closed(5.0)
    finally:
        await t.stop()


async def test_addr_token_bucket_as_core_on_the_mock_clock():
    """Core ProcessAddrs: an inbound peer starts with 1 token, an outbound full-relay one with
    1 + 1000 (our getaddr); 0.1 token a second on the node's clock; beyond, addresses are counted
    as rate-limited."""
    mock = int(time.time())
    t = await start_node(mocktime=mock)
    try:
        t.node.connman.dial_enabled = False
        inbound = await _inbound(t)
        out, row = await _outbound(t, "outbound-full-relay")
        [in_id] = [p.id for p in t.node.connman.connected_peers() if p.inbound]
        for r, base, n in ((inbound, 10, 600), (out, 20, 600), (out, 30, 600)):
            await r.send(_addrs(mock, base, n))
            await r.sync_with_ping()
        info_in, info_out = _row(t, in_id), _row(t, row["id"])
        assert (info_in["addr_processed"], info_in["addr_rate_limited"]) == (1, 599)
        assert (info_out["addr_processed"], info_out["addr_rate_limited"]) == (1001, 199)
        mock += 100                                        # 10 more tokens each
        await t.rpc.call("setmocktime", mock)
        for r in (inbound, out):
            await r.send(_addrs(mock, 40 if r is inbound else 41, 200))
            await r.sync_with_ping()
        info_in, info_out = _row(t, in_id), _row(t, row["id"])
        assert (info_in["addr_processed"], info_in["addr_rate_limited"]) == (11, 789)
        assert (info_out["addr_processed"], info_out["addr_rate_limited"]) == (1011, 389)
        # an address of a node serving neither blocks nor addresses is not processed
        mock += 10
        await t.rpc.call("setmocktime", mock)
        await inbound.send(_addrs(mock, 50, 1, services=0))
        await inbound.sync_with_ping()
        assert _row(t, in_id)["addr_processed"] == 11
        for r in (inbound, out):
            await r.close()
    finally:
        await t.stop()


async def test_addr_permission_is_not_rate_limited():
    mock = int(time.time())
    t = await start_node(mocktime=mock, whitelist=(parse_whitelist("addr@127.0.0.1"),))
    try:
        t.node.connman.dial_enabled = False
        r = await _inbound(t)
        await r.send(_addrs(mock, 60, 900))
        await r.sync_with_ping()
        [p] = t.node.connman.connected_peers()
        assert (p.addr_processed, p.addr_rate_limited) == (900, 0)
        assert p.addr_token_bucket == 0.0        # the one token was spent all the same
        await r.close()
    finally:
        await t.stop()


async def test_blocksonly_asks_for_no_txs_but_relays_addresses():
    mock = int(time.time())
    t = await start_node(mocktime=mock, blocks_only=True, whitelist=(parse_whitelist("addr@127.0.0.1"),))
    try:
        t.node.connman.dial_enabled = False
        assert (await t.rpc.call("getnetworkinfo"))["localrelay"] is False
        out, row = await _outbound(t, "outbound-full-relay")
        assert out.peer_version.relay is False
        await out.wait_for("getaddr")
        source = await _inbound(t)
        assert source.peer_version.relay is False
        await source.send(_addrs(mock, 70, 2))
        await source.sync_with_ping()
        mock += 600
        await t.rpc.call("setmocktime", mock)
        await out.sync_with_ping()
        assert sorted(await _got_addrs(out)) == ["123.70.0.1", "123.70.0.2"]
        for r in (source, out):
            await r.close()
    finally:
        await t.stop()
