"""BIP155 on real sockets (Core net_processing's SENDADDRV2 / ADDRV2 / GETADDR, rpc/net.cpp):
`sendaddrv2` goes to 70016+ peers between version and verack and is refused after verack; an
`addrv2` stores what it can (unknown networks skipped unpunished), more than 1,000 entries is
Misbehaving "addrv2 message size = N"; a getaddr is answered with addrv2 (TORv3 / I2P included)
to a peer that asked for it, with addr (IPv4 / IPv6 only) to one that did not;
addpeeraddress / getnodeaddresses know the onion and i2p networks."""
from __future__ import annotations

import time

import pytest

from tests.framework.netnodes import RawConn, bare_connman
from tests.framework.nodes import start_node
from tests.framework.wait import wait_until
from tinynode.net.permissions import NetPermissionFlags
from tinynode.params import REGTEST
from tinynode.primitives.serialize import ser_compact_size
from tinynode.wire import messages as m

MAGIC = REGTEST.magic
TORV3 = "pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd.onion"
I2P = "ukeu3k5oycgaauneqgtnvselmt4yemvoilkln7jpvamvfx7dnkdq.b32.i2p"


class _Node:
    async def __aenter__(self):
        self.cm = bare_connman()
        await self.cm.start()
        self.conns: list[RawConn] = []
        return self

    async def __aexit__(self, *exc):
        for c in self.conns:
            await c.close()
        await self.cm.stop()

    async def connect(self, version: int, sendaddrv2: bool = False) -> tuple[RawConn, list[str]]:
        """Handshake; returns the connection and the commands the node sent before its verack."""
        r = await RawConn.connect("127.0.0.1", self.cm.port, MAGIC)
        self.conns.append(r)
        await r.send_version(version=version)
        before = []
        while True:
            msg = await r.recv()
            before.append(msg.COMMAND)
            if msg.COMMAND == "verack":
                break
        if sendaddrv2:
            await r.send(m.SendAddrV2())
        await r.send(m.Verack())
        await r.ping_roundtrip()
        return r, before


async def test_sendaddrv2_is_sent_to_70016_peers_before_verack_only():
    async with _Node() as n:
        _, new = await n.connect(70016)
        _, old = await n.connect(70015)
        assert new == ["version", "wtxidrelay", "sendaddrv2", "verack"]
        assert "sendaddrv2" not in old and old[-1] == "verack"


async def test_sendaddrv2_after_verack_disconnects(caplog):
    caplog.set_level("DEBUG", logger="tinynode.net.peer")
    async with _Node() as n:
        r, _ = await n.connect(70016)
        [p] = n.cm.connected_peers()
        assert not p.wants_addrv2
        await r.send(m.SendAddrV2())
        assert await r.wait_closed(3)
        assert f"sendaddrv2 received after verack, disconnecting peer={p.id}" in caplog.text


async def test_addrv2_stores_known_networks_and_skips_unknown_ones_unpunished(caplog):
    caplog.set_level("DEBUG", logger="tinynode.net.addrman")
    async with _Node() as n:
        r, _ = await n.connect(70016, sendaddrv2=True)
        [p] = n.cm.connected_peers()
        p.permissions |= NetPermissionFlags.ADDR       # as Core's test: -whitelist=addr@127.0.0.1
        now = int(time.time()).to_bytes(4, "little").hex()
        payload = bytes.fromhex("03" + now + "01" "99" "02" "abab" "208d"          # unknown network
                                + now + "01" "01" "04" "09090909" "208d"           # 9.9.9.9:8333
                                + now + "09" "04" "20" + "79" * 32 + "208d")       # TORv3: unreachable
        await r.send_raw("addrv2", payload)
        await r.ping_roundtrip()
        assert p.banscore == 0 and p.is_connected and p.wants_addrv2 and p.addr_processed == 3
        assert [e.key for e in n.cm.addrman.entries()] == ["9.9.9.9:8333"]
        assert "Added 1 addresses" in caplog.text


async def test_addrv2_with_1001_entries_is_misbehaving(caplog):
    caplog.set_level("DEBUG")
    async with _Node() as n:
        r, _ = await n.connect(70016, sendaddrv2=True)
        entry = m.timed_addr(int(time.time()), "9.9.9.9", 8333, 1, v2=True).serialize()
        await r.send_raw("addrv2", ser_compact_size(1001) + entry * 1001)
        assert await r.wait_closed(3)
        assert "addrv2 message size = 1001" in caplog.text
        assert len(n.cm.addrman) == 0


async def test_getaddr_is_answered_in_the_format_the_peer_asked_for():
    async with _Node() as n:
        now = time.time()
        for host in ("8.8.8.8", "2001:4860::8888", TORV3, I2P):
            assert n.cm.addrman.add(host, 8333, 9, now)
        v2, _ = await n.connect(70016, sendaddrv2=True)
        v1, _ = await n.connect(70016)
        answers = {}
        for name, r in (("v2", v2), ("v1", v1)):
            await r.send(m.GetAddr())
            msg = await r.expect("addrv2" if name == "v2" else "addr", timeout=10)
            answers[name] = sorted(e.addr.host for e in msg.addrs)
        assert answers["v2"] == sorted(["8.8.8.8", "2001:4860::8888", TORV3, I2P])
        assert answers["v1"] == sorted(["8.8.8.8", "2001:4860::8888"])


async def test_addpeeraddress_and_getnodeaddresses_know_onion_and_i2p():
    t = await start_node()
    try:
        t.node.connman.dial_enabled = False
        call = t.rpc.call
        assert await call("addpeeraddress", TORV3, 8333) == {"success": True}
        assert await call("addpeeraddress", I2P.upper(), 8333, True) == {"success": True}
        assert await call("addpeeraddress", I2P, 8333) == {"success": False, "error": "failed-adding-to-new"}
        rows = await call("getnodeaddresses", 0, "onion")
        assert [(r["address"], r["port"], r["services"], r["network"]) for r in rows] == [
            (TORV3, 8333, 9, "onion")]
        assert [r["network"] for r in await call("getnodeaddresses", 0, "i2p")] == ["i2p"]
        assert await call("getnodeaddresses", 0, "ipv4") == []
        await wait_until(lambda: t.node.connman.addrman.get(I2P, 8333).tried, 1)
    finally:
        await t.stop()
