"""Peers and the connection manager over real loopback sockets, with a stub message handler.

No chain here: each "node" is a `ConnMan` with a handler that records what it receives, so the
handshake, pings, bans, deny lists, limits and addr gossip are tested on their own.
"""

from __future__ import annotations

import contextlib

import pytest

from tests.framework.netnodes import RawConn, fast_config
from tests.framework.wait import wait_until
from tinynode.net.connman import ConnMan, parse_peer_entry
from tinynode.net.peer import Misbehaving
from tinynode.params import REGTEST
from tinynode.wire import messages as m
from tinynode.net.peer import format_sub_version
from tinynode.wire.constants import WTXID_RELAY_VERSION

pytestmark = pytest.mark.slow


class Recorder:
    """A stub sync manager: remembers messages, optionally punishes `inv`."""

    def __init__(self) -> None:
        self.got: list[tuple[int, object]] = []
        self.connected: list[int] = []
        self.disconnected: list[int] = []

    def peer_connected(self, peer) -> None:
        self.connected.append(peer.id)

    def peer_disconnected(self, peer) -> None:
        self.disconnected.append(peer.id)

    async def on_inv(self, peer, msg) -> None:
        self.got.append((peer.id, msg))
        if len(msg.items) > 1000:
            raise Misbehaving(20, "inv spam")

    async def on_headers(self, peer, msg) -> None:
        self.got.append((peer.id, msg))


@contextlib.asynccontextmanager
async def nodes(n: int, config=None, dial: bool = False):
    """`n` stub nodes; by default they only dial when told (no address-book refill)."""
    cms = []
    try:
        for _ in range(n):
            rec = Recorder()
            cm = ConnMan(REGTEST, config or fast_config(), handlers=[rec], dial=dial)
            cm.recorder = rec
            await cm.start()
            cms.append(cm)
        yield cms
    finally:
        for cm in cms:
            await cm.stop()


def test_parse_peer_entry():
    assert parse_peer_entry("node1", 18444) == ("node1", 18444)
    assert parse_peer_entry("10.0.0.2:9999", 18444) == ("10.0.0.2", 9999)
    assert parse_peer_entry("[::1]:5", 1) == ("::1", 5)
    assert parse_peer_entry("[::1]", 7) == ("::1", 7)
    with pytest.raises(ValueError):
        parse_peer_entry("host:0", 1)


async def test_handshake_ping_and_peerinfo():
    async with nodes(2) as (a, b):
        peer = await a.connect("127.0.0.1", b.port)
        assert peer is not None
        await wait_until(lambda: len(b.connected_peers()) == 1 and len(a.connected_peers()) == 1)
        await wait_until(lambda: a.connected_peers()[0].ping_time is not None)
        info = a.peers()[0]
        assert info["version"] == WTXID_RELAY_VERSION and info["subver"] == format_sub_version() == "/tinynode:0.1.0/"
        assert info["inbound"] is False and info["addr"] == f"127.0.0.1:{b.port}"
        assert info["bytessent"] > 0 and info["bytesrecv"] > 0 and info["banscore"] == 0
        binfo = b.peers()[0]
        assert binfo["inbound"] is True and binfo["addrlisten"] == f"127.0.0.1:{a.port}"
        assert a.recorder.connected == [peer.id]
        # A handler sees messages after the handshake.
        peer.send(m.Inv((m.InvVect(2, b"\x11" * 32),)))
        await wait_until(lambda: b.recorder.got)
        # Disconnect by address; the hook fires.
        assert b.disconnect(f"127.0.0.1:{a.port}")
        await wait_until(lambda: not a.connected_peers() and b.recorder.disconnected)


async def test_self_connection_is_detected():
    async with nodes(1) as (a,):
        peer = await a.connect("127.0.0.1", a.port, timeout=3)
        assert peer is None
        await wait_until(lambda: not a.all_peers())
        assert ("127.0.0.1", a.port) in a._self_addrs


async def test_seeds_reconnect_after_disconnect():
    async with nodes(1) as (b,):
        a = ConnMan(REGTEST, fast_config(), seeds=[f"127.0.0.1:{b.port}"])
        async with a:
            await wait_until(lambda: len(a.connected_peers()) == 1, timeout=5)
            a.connected_peers()[0].disconnect("test")
            await wait_until(lambda: len(a.connected_peers()) == 1 and a.connected_peers()[0].id > 0, timeout=8)


async def test_ban_deny_and_clearbanned():
    async with nodes(3) as (a, b, c):
        await a.connect("127.0.0.1", b.port)
        await a.connect("127.0.0.1", c.port)
        await wait_until(lambda: len(a.connected_peers()) == 2)
        a.ban("127.0.0.1", b.port, 60, "test")
        await wait_until(lambda: len(a.connected_peers()) == 1)
        assert a.connected_peers()[0].addr == ("127.0.0.1", c.port)   # c unaffected
        assert [x["address"] for x in a.list_banned()] == [f"127.0.0.1:{b.port}"]
        assert await a.connect("127.0.0.1", b.port, timeout=1) is None
        # b's own attempt to reach a is refused once b is known by its listening port
        p = await b.connect("127.0.0.1", a.port, timeout=2)
        await wait_until(lambda: not [q for q in a.connected_peers() if q.listen_addr == ("127.0.0.1", b.port)])
        a.clear_banned()
        assert a.list_banned() == []
        # deny: a partition
        a.deny(f"127.0.0.1:{c.port}")
        await wait_until(lambda: not a.connected_peers())
        assert await a.connect("127.0.0.1", c.port, timeout=2) is None
        a.allow(f"127.0.0.1:{c.port}")
        assert await a.connect("127.0.0.1", c.port, timeout=3) is not None
        del p


async def test_setnetworkactive():
    async with nodes(2) as (a, b):
        await a.connect("127.0.0.1", b.port)
        await wait_until(lambda: len(b.connected_peers()) == 1)
        b.set_network_active(False)
        await wait_until(lambda: not a.connected_peers() and not b.connected_peers())
        assert await a.connect("127.0.0.1", b.port, timeout=1) is None
        b.set_network_active(True)
        assert await a.connect("127.0.0.1", b.port, timeout=3) is not None


async def test_addr_gossip_four_nodes_discover_each_other():
    """Each node knows only the first one as its seed; addr gossip connects everyone."""
    cfg = fast_config(dial_interval=0.2, addr_interval=0.5)
    async with nodes(1, config=cfg, dial=True) as (seed,):
        others = [ConnMan(REGTEST, cfg, seeds=[f"127.0.0.1:{seed.port}"]) for _ in range(3)]
        try:
            for cm in others:
                await cm.start()
            everyone = [seed, *others]
            ports = {cm.port for cm in everyone}

            def neighbours(cm):
                return {p.listen_addr[1] for p in cm.connected_peers() if p.listen_addr}

            await wait_until(lambda: all(neighbours(cm) == ports - {cm.port} for cm in everyone), timeout=15,
                             message=lambda: str([sorted(neighbours(cm)) for cm in everyone]))
            assert all(len(cm.addrman) >= 2 for cm in others)
        finally:
            for cm in others:
                await cm.stop()


async def test_raw_handshake_and_unknown_messages_cost_nothing():
    async with nodes(1) as (a,):
        raw = await RawConn.connect("127.0.0.1", a.port, REGTEST.magic)
        try:
            await raw.send_version(start_height=0)
            await raw.send_raw("wtxidrelay", b"")
            await raw.send_raw("sendaddrv2", b"")
            await raw.send(m.Verack())
            await raw.send_raw("feefilter", (1000).to_bytes(8, "little"))
            await raw.send_raw("sendcmpct", b"\x00" + (1).to_bytes(8, "little"))
            ver = await raw.expect("version")
            assert ver.version == WTXID_RELAY_VERSION and ver.user_agent == format_sub_version()
            await raw.expect("verack")
            await raw.ping_roundtrip()
            await wait_until(lambda: len(a.connected_peers()) == 1)
            assert a.connected_peers()[0].banscore == 0
        finally:
            await raw.close()


async def test_obsolete_protocol_refused():
    async with nodes(1) as (a,):
        raw = await RawConn.connect("127.0.0.1", a.port, REGTEST.magic)
        try:
            await raw.send_version(version=31799)
            assert await raw.wait_closed(5)
        finally:
            await raw.close()


async def test_seed_names_resolve_to_one_target_per_address():
    async with nodes(1) as (a,):
        addrs = await a._resolve("localhost:18444")
        assert ("127.0.0.1", 18444) in addrs
        assert len(addrs) == len(set(addrs))
        assert await a._resolve("127.0.0.1") == [("127.0.0.1", REGTEST.default_port)]
        assert await a._resolve("no-such-host.invalid:1") == []


async def test_addnode_add_remove_onetry():
    async with nodes(3) as (a, b, c):
        a.dial_enabled = True
        a.addnode(f"127.0.0.1:{b.port}", "add")
        assert a.added_nodes() == [f"127.0.0.1:{b.port}"]
        await wait_until(lambda: len(a.connected_peers()) == 1, timeout=5)
        a.addnode(f"127.0.0.1:{b.port}", "remove")
        assert a.added_nodes() == []
        with pytest.raises(KeyError):
            a.addnode(f"127.0.0.1:{b.port}", "remove")
        a.addnode(f"127.0.0.1:{c.port}", "onetry")
        await wait_until(lambda: len(a.connected_peers()) == 2, timeout=5)
        assert a.added_nodes() == []                      # onetry is not remembered
        with pytest.raises(ValueError):
            a.addnode("127.0.0.1:0", "add")
