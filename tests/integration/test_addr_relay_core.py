"""Core's addr behaviour (p2p_getaddr_caching.py, p2p_addr_relay.py) on real sockets:
addpeeraddress / getnodeaddresses, =onion binds, the getaddr answer cache per (network, local
socket), the addr trickle on the mock clock, and RelayAddress to two addr-relay peers."""
from __future__ import annotations

import time

import pytest

from tinynode.config import BindEntry
from tinynode.net.permissions import parse_whitelist
from tinynode.params import REGTEST
from tinynode.rpc.protocol import RPCError
from tinynode.wire import messages as m
from tests.framework.nodes import start_node
from tests.framework.rawpeer import RawPeer
from tests.framework.wait import wait_until

MAGIC = REGTEST.magic


async def _peer(port: int) -> RawPeer:
    r = await RawPeer.connect("127.0.0.1", port, MAGIC)
    await r.handshake()
    return r


async def test_addpeeraddress_and_getnodeaddresses_as_core():
    t = await start_node()
    try:
        t.node.connman.dial_enabled = False
        call = t.rpc.call
        assert await call("addpeeraddress", "1.2.3.4", 8333) == {"success": True}
        assert await call("addpeeraddress", "1.2.3.4", 8333) == {"success": False, "error": "failed-adding-to-new"}
        assert await call("addpeeraddress", "127.0.0.1", 8333) == {"success": False, "error": "failed-adding-to-new"}
        assert await call("addpeeraddress", "2.3.4.5", 8333, True) == {"success": True}
        assert t.node.connman.addrman.get("2.3.4.5", 8333).tried
        with pytest.raises(RPCError) as e:
            await call("addpeeraddress", "nope", 8333)
        assert (e.value.code, e.value.message) == (-30, "Invalid IP address")
        rows = sorted(await call("getnodeaddresses", 0), key=lambda r: r["address"])
        assert [(r["address"], r["port"], r["services"], r["network"]) for r in rows] == [
            ("1.2.3.4", 8333, 9, "ipv4"), ("2.3.4.5", 8333, 9, "ipv4")]
        assert abs(rows[0]["time"] - time.time()) < 60
        assert len(await call("getnodeaddresses")) == 1           # count defaults to 1
        assert await call("getnodeaddresses", 0, "ipv6") == []
        with pytest.raises(RPCError) as e:
            await call("getnodeaddresses", -1)
        assert (e.value.code, e.value.message) == (-8, "Address count out of range")
        with pytest.raises(RPCError) as e:
            await call("getnodeaddresses", 0, "foo")
        assert (e.value.code, e.value.message) == (-8, "Network not recognized: foo")
    finally:
        await t.stop()


async def _getaddr_answer(t, peers, mock) -> list[list[str]]:
    for r in peers:
        await r.send(m.GetAddr())
        await r.sync_with_ping()
    await t.rpc.call("setmocktime", mock)
    out = []
    for r in peers:
        msg = await r.wait_for("addr", timeout=10)
        out.append([a.addr.host for a in msg.addrs])
    return out


async def test_getaddr_answers_1000_from_a_cache_per_bind_that_expires():
    mock = int(time.time())
    t = await start_node(mocktime=mock, binds=(BindEntry("127.0.0.1", 0, True), BindEntry("127.0.0.1", 0, True)))
    try:
        cm = t.node.connman
        cm.dial_enabled = False          # the book's addresses are public: never dial them
        for i in range(10000):
            await t.rpc.call("addpeeraddress", f"{i >> 8}.{i % 256}.1.1", 8333)
        assert len(await t.rpc.call("getnodeaddresses", 0)) > 1000 / 0.23
        ports = [t.node.p2p_port, *cm.bind_ports]
        last = None
        for _ in range(2):
            peers = [await _peer(p) for p in ports]
            info = {p["id"]: p for p in await t.rpc.call("getpeerinfo")}
            assert [info[p.id]["network"] for p in sorted(cm.connected_peers(), key=lambda p: p.id)][-3:] == [
                "not_publicly_routable", "onion", "onion"]
            mock += 300    # the answer waits for the addr trickle (Core m_next_addr_send)
            answers = await _getaddr_answer(t, peers, mock)
            assert [len(a) for a in answers] == [1000, 1000, 1000]
            assert len({tuple(a) for a in answers}) == 3          # one cache per bind
            if last is not None:
                assert answers == last                            # the same bind, the same answer
            last = answers
            # once per connection: a repeated getaddr is ignored
            await peers[0].send(m.GetAddr())
            mock += 600
            await t.rpc.call("setmocktime", mock)
            await peers[0].expect_nothing(0.5, "addr")
            for r in peers:
                await r.close()
        mock += 3 * 24 * 3600                                     # the caches expire (21-27 h)
        await t.rpc.call("setmocktime", mock)
        peers = [await _peer(p) for p in ports]
        answers = await _getaddr_answer(t, peers, mock + 300)
        assert all(set(a) != set(b) for a, b in zip(answers, last))
        for r in peers:
            await r.close()
    finally:
        await t.stop()


def _addr_msg(mock: int, base: int, n: int, age: int = 0) -> m.Addr:
    return m.Addr(tuple(m.TimedAddr(mock - age, m.NetAddr.from_host(f"123.123.{base}.{i}", 8333 + i, 9))
                        for i in range(n)))


async def test_relay_of_small_fresh_addr_messages_to_two_addr_relay_peers():
    mock = int(time.time())
    t = await start_node(mocktime=mock, whitelist=(parse_whitelist("addr@127.0.0.1"),))
    try:
        t.node.connman.dial_enabled = False
        source = await _peer(t.node.p2p_port)
        receivers = [await _peer(t.node.p2p_port) for _ in range(5)]
        for r in receivers:                        # getaddr turns addr relay on (SetupAddressRelay)
            await r.send(m.GetAddr())
            await r.sync_with_ping()
        blackhole = await _peer(t.node.p2p_port)
        info = {p["id"]: p["addr_relay_enabled"] for p in await t.rpc.call("getpeerinfo")}
        assert list(info.values()) == [False, True, True, True, True, True, False]
        await source.send(_addr_msg(mock, 0, 10))
        await source.send(_addr_msg(mock, 1, 11))               # more than 10: not relayed
        await source.send(_addr_msg(mock, 2, 2, age=601))       # older than 10 minutes: not relayed
        await source.sync_with_ping()
        mock += 600
        await t.rpc.call("setmocktime", mock)
        got = []
        for r in receivers:
            await r.sync_with_ping()                # a due trickle goes out before the pong
            while True:
                try:
                    msg = await r.wait_for("addr", timeout=0.3)
                except TimeoutError:
                    break
                got += [a.addr.host for a in msg.addrs]
        assert sorted(got) == sorted(f"123.123.0.{i}" for i in range(10) for _ in range(2))
        # the originator is never a destination (the 20 relays above all went to receivers)
        assert t.node.connman.get_peer(min(info)).addrs_to_send == []
        [sp] = [p for p in t.node.connman.connected_peers() if p.id == min(info)]
        assert (sp.addr_processed, sp.addr_rate_limited, sp.addr_relay_enabled) == (23, 0, True)
    finally:
        await t.stop()
