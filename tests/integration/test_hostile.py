"""Hostile peers against a live node that must stay up and keep serving an honest peer.

The node here is a `ConnMan` with a stub handler (the framing, handshake, timeouts, limits and
misbehaviour rules live below the sync manager); hostile block/header/locator cases against a
full sync node are in test_hostile_sync.py. Each attack checks the disconnect it deserves and
that the honest neighbour is untouched (still connected, still answering pings). The attackers
connect from 127.0.0.1, so, as in Core's MaybeDiscourageAndDisconnect, a misbehaving one is
disconnected but never banned, and can connect again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct
import time

import pytest

from tests.framework.netnodes import RawConn, bare_connman
from tests.framework.wait import wait_until
from tinynode.params import REGTEST
from tinynode.wire import messages as m

pytestmark = pytest.mark.slow

MAGIC = REGTEST.magic


@contextlib.asynccontextmanager
async def victim_and_honest(**cfg):
    node = bare_connman(**cfg)
    honest = bare_connman()
    await node.start()
    await honest.start()
    try:
        assert await honest.connect("127.0.0.1", node.port) is not None
        await wait_until(lambda: len(node.connected_peers()) == 1)
        yield node, honest
        # The honest neighbour is unaffected: same connection, fresh pongs, no score.
        hp = honest.connected_peers()
        assert len(hp) == 1 and hp[0].id == 0, hp   # Core NodeIds start at 0
        before = hp[0].ping_time
        await wait_until(lambda: hp[0].ping_time is not None and hp[0].ping_time != before
                         or hp[0].ping_nonce == 0, timeout=5)
        assert all(p.banscore == 0 for p in node.connected_peers() if p.listen_addr == ("127.0.0.1", honest.port))
        assert not node.is_banned("127.0.0.1", honest.port)
    finally:
        await honest.stop()
        await node.stop()


async def raw(node) -> RawConn:
    return await RawConn.connect("127.0.0.1", node.port, MAGIC)


async def disconnected_not_banned(node, r: RawConn, port: int) -> None:
    """A loopback misbehaver: closed, no ban of its address, and 127.0.0.1 may connect again."""
    assert await r.wait_closed(3)
    assert not node.is_banned("127.0.0.1", port) and not node.is_banned("127.0.0.1")
    assert node.list_banned() == []
    again = await raw(node)
    try:
        await again.handshake()
        await again.ping_roundtrip()
    finally:
        await again.close()


def inbound_raw_peers(node, honest):
    return [p for p in node.all_peers() if p.listen_addr != ("127.0.0.1", honest.port)]


async def test_wrong_magic_disconnects_without_a_ban_of_a_loopback_peer():
    async with victim_and_honest() as (node, honest):
        r = await raw(node)
        port = r.writer.get_extra_info("sockname")[1]
        await r.send_raw("version", b"\x00" * 100, magic=b"\xf9\xbe\xb4\xd9")  # mainnet magic
        await disconnected_not_banned(node, r, port)
        await r.close()


async def test_garbage_disconnects():
    async with victim_and_honest() as (node, honest):
        r = await raw(node)
        await r.send_bytes(os.urandom(200))
        assert await r.wait_closed(3)
        await r.close()


async def test_bad_checksum_and_bad_command_are_dropped_and_counted_as_other():
    """Core V1Transport: a wrong checksum or an invalid message type drops the message, keeps
    the peer unpunished and counts its bytes under "*other*"."""
    async with victim_and_honest() as (node, honest):
        r = await raw(node)
        await r.handshake()
        await r.send_raw("ping", struct.pack("<Q", 7), checksum_override=b"\x00\x00\x00\x00")
        await r.send_raw("p\x00ng", struct.pack("<Q", 8))
        await r.ping_roundtrip()                          # still connected, messages dropped
        [p] = inbound_raw_peers(node, honest)
        assert p.banscore == 0 and p.is_connected
        assert p.bytes_recv_per_msg["*other*"] == 2 * (24 + 8)
        await r.close()


async def test_oversize_length_refused_without_reading_payload():
    async with victim_and_honest(message_timeout=10.0) as (node, honest):
        r = await raw(node)
        await r.handshake()
        t0 = time.monotonic()
        # A header claiming 4,000,001 bytes, and no payload at all: refused on the header alone.
        await r.send_raw("block", b"", length_override=4_000_001)
        assert await r.wait_closed(3)
        assert time.monotonic() - t0 < 3  # did not wait for the 10 s message timeout
        await r.close()


async def test_huge_inv_count_is_a_decode_error():
    async with victim_and_honest() as (node, honest):
        r = await raw(node)
        await r.handshake()
        # compact size 50,001 with no entries: short payload, refused before allocating; as
        # Core's ProcessMessages exception, logged and dropped without a penalty
        await r.send_raw("inv", b"\xfe" + struct.pack("<I", 50_001))
        await r.send_raw("getdata", b"\xfe" + struct.pack("<I", 0xFFFFFFFF))
        await r.ping_roundtrip()
        [p] = inbound_raw_peers(node, honest)
        assert p.banscore == 0 and p.is_connected
        await r.close()


async def test_slowloris_dropped_by_message_timeout():
    async with victim_and_honest() as (node, honest):
        r = await raw(node)
        await r.handshake()
        frame = m.Ping(1).serialize()
        await r.send_bytes(MAGIC + b"ping\0\0")           # 10 of 32 bytes, then silence
        assert await r.wait_closed(4)
        del frame
        await r.close()


async def test_slow_handshake_dropped():
    async with victim_and_honest(handshake_timeout=1.0) as (node, honest):
        r = await raw(node)
        assert await r.wait_closed(3)                     # never sent version
        await r.close()


async def test_never_answering_ping_is_dropped():
    async with victim_and_honest(ping_interval=0.3, pong_timeout=1.0) as (node, honest):
        r = await raw(node)
        await r.handshake()
        t0 = time.monotonic()
        # Read everything but never answer: the node gives up after pong_timeout.
        while time.monotonic() - t0 < 5:
            try:
                msg = await r.recv(timeout=2)
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            assert msg.COMMAND in ("ping", "addr", "getaddr")
        assert not inbound_raw_peers(node, honest)
        await r.close()


async def test_never_reading_peer_is_dropped():
    async with victim_and_honest(send_timeout=1.0, send_queue=50) as (node, honest):
        r = await RawConn.connect("127.0.0.1", node.port, MAGIC, rcvbuf=4096)
        await r.handshake()
        [p] = inbound_raw_peers(node, honest)
        big = m.Inv(tuple(m.InvVect(1, i.to_bytes(32, "little")) for i in range(20_000)))
        # The node has a lot to say; the peer reads nothing. It must be dropped, not buffered.
        # keep offering until the bounded send queue refuses or the peer is dropped
        await wait_until(lambda: not p.send(big) or p.closed.is_set(), timeout=10, interval=0.01)
        await wait_until(lambda: p.closed.is_set(), timeout=5)
        assert "send" in p.disconnect_reason
        await r.close()


async def test_messages_before_version_cost_and_disconnect():
    async with victim_and_honest() as (node, honest):
        r = await raw(node)
        port = r.writer.get_extra_info("sockname")[1]
        for i in range(9):
            await r.send(m.Ping(i))
        await wait_until(lambda: inbound_raw_peers(node, honest) and
                         inbound_raw_peers(node, honest)[0].banscore == 90)
        await r.send(m.GetAddr())                         # the tenth: 100 points
        await disconnected_not_banned(node, r, port)
        await r.close()


async def test_duplicate_version_is_ignored_cheaply():
    async with victim_and_honest() as (node, honest):
        r = await raw(node)
        await r.handshake()
        await r.send_version()
        await r.ping_roundtrip()
        [p] = inbound_raw_peers(node, honest)
        assert p.banscore == 0 and p.is_connected      # Core: "redundant version message", ignored
        await r.close()


async def test_connection_storm_over_inbound_limit():
    async with victim_and_honest(max_inbound=6) as (node, honest):
        conns = []
        for _ in range(30):
            try:
                conns.append(await raw(node))
            except OSError:
                pass
        # Only five more inbound slots existed (the honest peer holds one); the rest were closed.
        await wait_until(lambda: node.inbound_count <= 6)
        closed = await asyncio.gather(*(c.wait_closed(0.5) for c in conns))
        assert sum(closed) >= 30 - 5
        for c in conns:
            await c.close()
        await wait_until(lambda: node.inbound_count == 1, timeout=6)
        # Slots are free again for a newcomer.
        r = await raw(node)
        await r.handshake()
        await r.close()


async def test_self_connection_refused_and_remembered():
    async with victim_and_honest() as (node, honest):
        assert await node.connect("127.0.0.1", node.port, timeout=3) is None
        await wait_until(lambda: len(node.all_peers()) == 1)
