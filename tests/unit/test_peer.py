"""Peer on its own: a socketpair, a stub host, a raw wire on the other end."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import socket

import pytest

from tests.framework.netnodes import RawConn, fast_config
from tests.framework.wait import wait_until
from tinynode.net.peer import Misbehaving, NetConfig, Peer
from tinynode.net.permissions import NetPermissionFlags
from tinynode.params import REGTEST
from tinynode.wire import messages as m


class Host:
    def __init__(self) -> None:
        self.nonces: set[int] = set()
        self.ready: list[Peer] = []
        self.closed: list[Peer] = []
        self.banned: list[str] = []

    def new_nonce(self) -> int:
        n = 12345 + len(self.nonces)
        self.nonces.add(n)
        return n

    def is_local_nonce(self, nonce: int) -> bool:
        return nonce in self.nonces

    def forget_nonce(self, nonce: int) -> None:
        self.nonces.discard(nonce)

    def start_height(self) -> int:
        return 7

    def local_address(self):
        return ("127.0.0.1", 18444)

    async def peer_ready(self, peer: Peer) -> None:
        self.ready.append(peer)

    def peer_closed(self, peer: Peer) -> None:
        self.closed.append(peer)

    def peer_banned(self, peer: Peer, reason: str) -> None:
        self.banned.append(reason)


class Handler:
    def __init__(self) -> None:
        self.seen: list[str] = []

    async def on_inv(self, peer, msg) -> None:
        self.seen.append("inv")
        raise Misbehaving(60, "test inv")

    async def on_getaddr(self, peer, msg) -> None:
        self.seen.append("getaddr")
        raise ValueError("a bug in a handler must not kill the peer")


async def pair(inbound: bool = True, config: NetConfig | None = None,
               addr: tuple[str, int] = ("127.0.0.1", 5555),
               permissions: NetPermissionFlags = NetPermissionFlags.NONE):
    a, b = socket.socketpair()
    r1, w1 = await asyncio.open_connection(sock=a)
    r2, w2 = await asyncio.open_connection(sock=b)
    host, handler = Host(), Handler()
    peer = Peer(r1, w1, params=REGTEST, config=config or fast_config(), host=host, handlers=[handler],
                inbound=inbound, peer_id=1, addr=addr, permissions=permissions)
    task = asyncio.create_task(peer.run())
    return peer, host, handler, RawConn(r2, w2, REGTEST.magic), task


def test_netconfig_is_frozen():
    cfg = NetConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.ping_interval = 1  # type: ignore[misc]
    assert cfg.ban_threshold == 100 and cfg.max_inbound == 125 and cfg.max_outbound == 8


async def test_outbound_sends_core_style_version():
    peer, host, handler, raw, task = await pair(inbound=False)
    try:
        ver = await raw.expect("version")
        assert ver.version == 70016 and ver.services == 9 and ver.start_height == 7   # NODE_NETWORK|NODE_WITNESS
        assert ver.relay is True and ver.user_agent.startswith("/tinynode:")
        assert ver.nonce in host.nonces
        assert ver.addr_from.port == 18444
        await raw.send_version()
        await raw.expect("verack")
        await raw.send(m.Verack())
        await wait_until(lambda: host.ready)
    finally:
        peer.disconnect("test over")
        await task
        await raw.close()
    assert host.closed == [peer] and peer.disconnect_reason == "test over"
    assert not host.nonces                                     # our nonce forgotten


async def test_self_connection_by_nonce():
    peer, host, handler, raw, task = await pair(inbound=True)
    host.nonces.add(999)
    await raw.send_version(nonce=999)
    await asyncio.wait_for(task, 3)
    assert peer.disconnect_reason == "connected to self"
    await raw.close()


async def test_handler_misbehaving_and_bugs():
    peer, host, handler, raw, task = await pair(inbound=True, addr=("11.2.3.4", 5555))
    try:
        await raw.handshake()
        await raw.send(m.GetAddr())                # handler raises a plain bug: peer survives
        await raw.ping_roundtrip()
        assert peer.is_connected and peer.banscore == 0
        await raw.send(m.Inv(()))
        await raw.ping_roundtrip()
        assert peer.banscore == 60
        await raw.send(m.Inv(()))                  # 120 >= 100: banned and dropped
        await asyncio.wait_for(task, 3)
        assert host.banned == ["test inv"] and peer.disconnect_reason == "banned: test inv"
    finally:
        await raw.close()


@pytest.mark.parametrize("host_ip", ["127.0.0.1", "127.5.6.7", "::1", "::ffff:127.0.0.1", "0.1.2.3"])
async def test_misbehaving_loopback_peer_is_disconnected_never_banned(host_ip, caplog):
    """Core MaybeDiscourageAndDisconnect: a local peer (CNetAddr::IsLocal) is disconnected but
    not discouraged, since that would cut off every peer on the same address."""
    caplog.set_level(logging.INFO, logger="tinynode.net.peer")
    peer, host, handler, raw, task = await pair(inbound=True, addr=(host_ip, 5555))
    try:
        await raw.handshake()
        await raw.send(m.Inv(()))
        await raw.send(m.Inv(()))                  # 120 >= 100
        await asyncio.wait_for(task, 3)
        assert host.banned == []
        assert peer.disconnect_reason == "misbehaving: test inv"
        assert "disconnecting but not discouraging local peer 1" in caplog.text
    finally:
        await raw.close()


@pytest.mark.parametrize("host_ip", ["127.0.0.1", "11.2.3.4"])
async def test_misbehaving_noban_peer_is_neither_banned_nor_disconnected(host_ip, caplog):
    """Core: "We never disconnect or discourage peers for bad behavior if they have
    NetPermissionFlags::NoBan permission" — the score grows, the peer stays."""
    peer, host, handler, raw, task = await pair(inbound=True, addr=(host_ip, 5555),
                                                permissions=NetPermissionFlags.NOBAN)
    try:
        await raw.handshake()
        for _ in range(3):
            await raw.send(m.Inv(()))
        await raw.ping_roundtrip()
        assert peer.banscore == 180 and peer.is_connected and host.banned == []
        assert "not punishing noban peer 1" in caplog.text
        assert peer.info()["permissions"] == ["noban", "download"]
    finally:
        peer.disconnect("test over")
        await task
        await raw.close()
    assert peer.disconnect_reason == "test over"


async def test_full_send_queue_drops_the_peer():
    peer, host, handler, raw, task = await pair(inbound=True, config=fast_config(send_queue=3))
    await raw.handshake()
    results = [peer.send(m.Ping(i)) for i in range(10)]
    assert False in results
    await asyncio.wait_for(task, 3)
    assert peer.disconnect_reason == "send queue full"
    await raw.close()
