"""-whitelist / -whitebind permissions on live nodes, real sockets on 127.0.0.1 (Core's
p2p_permissions.py, p2p_mempool.py and the noban rule of MaybeDiscourageAndDisconnect).

* noban: a misbehaving whitelisted peer is neither banned nor disconnected;
* getpeerinfo `permissions`: by whitelist range and direction, by whitebind listener;
* mempool: only a peer with the permission gets an answer to BIP35 `mempool`; any other is
  disconnected, a noban one ignored;
* forcerelay: a tx the node already has, sent again by a forcerelay peer, is announced again.
"""

from __future__ import annotations

import random
import struct
import time

import pytest

from tests.framework.netnodes import RawConn
from tests.framework.nodes import running_nodes
from tests.framework.wait import wait_until
from tinynode.net.permissions import NetPermissionFlags as F, WhitebindEntry, parse_whitelist
from tinynode.params import REGTEST
from tinynode.primitives.serialize import ser_compact_size
from tinynode.primitives.tx import Tx
from tinynode.wire import messages as m
from tinynode.wire.constants import InvType, NODE_NETWORK

pytestmark = pytest.mark.slow

MAGIC = REGTEST.magic


def whitelist(*values: str) -> tuple:
    return tuple(parse_whitelist(v) for v in values)


def sockport(r: RawConn) -> int:
    return r.writer.get_extra_info("sockname")[1]


async def raw_peer(port: int, *, relay: bool = True) -> RawConn:
    """A raw inbound peer past the handshake; `relay=False` asks for no tx announcements."""
    r = await RawConn.connect("127.0.0.1", port, MAGIC)
    await r.send(m.Version.create(
        nonce=random.getrandbits(64), start_height=0, timestamp=int(time.time()), relay=relay,
        addr_from=m.NetAddr.from_host("127.0.0.1", 0, NODE_NETWORK)))
    await r.expect("version")
    await r.expect("verack")
    await r.send(m.Verack())
    await r.ping_roundtrip()
    return r


async def row_of(node, r: RawConn) -> dict:
    [row] = [p for p in await node.rpc.call("getpeerinfo") if p["addr"] == f"127.0.0.1:{sockport(r)}"]
    return row


async def funded_tx(node) -> str:
    """A wallet spend in `node`'s mempool; its txid."""
    await node.rpc.call("generatetoaddress", 101, await node.rpc.call("getnewaddress"))
    return await node.rpc.call("sendtoaddress", await node.rpc.call("getnewaddress"), 1)


async def tx_invs_until(r: RawConn, marker: bytes, timeout: float = 10.0) -> list[bytes]:
    """Every tx inv `r` receives up to and including one of `marker` (answering pings)."""
    seen: list[bytes] = []
    deadline = time.monotonic() + timeout
    while marker not in seen:
        msg = await r.recv(max(0.1, deadline - time.monotonic()))
        if msg.COMMAND == "ping":
            await r.send(m.Pong(msg.nonce))
        elif msg.COMMAND == "inv":
            seen += [iv.hash for iv in msg.items if iv.base_type == InvType.TX]
    return seen


# ------------------------------------------------------------------ noban

async def test_noban_peer_is_not_banned_or_disconnected_for_misbehaviour(caplog):
    caplog.set_level("WARNING", logger="tinynode.net.peer")
    async with running_nodes(1, txindex=True, whitelist=whitelist("noban@127.0.0.1")) as [node]:
        r = await raw_peer(node.node.p2p_port)
        entry = m.TimedAddr(int(time.time()), m.NetAddr.from_host("1.2.3.4", 8333, 1))
        for i in range(2):                              # Core Misbehaving "addr message size": 100 each
            await r.send_raw("addr", ser_compact_size(1001) + entry.serialize() * 1001)
        await r.ping_roundtrip()                        # still connected, still answered
        row = await row_of(node, r)
        assert row["banscore"] == 200 and row["permissions"] == ["noban", "download"]
        assert "not punishing noban peer" in caplog.text
        assert await node.rpc.call("listbanned") == []
        # setban still applies to it; noban lets it back in though banned (Core accepts
        # noban peers whatever the ban list says).
        await node.rpc.call("setban", "127.0.0.1", "add")
        assert await r.wait_closed(3)
        again = await raw_peer(node.node.p2p_port)
        assert (await row_of(node, again))["permissions"] == ["noban", "download"]
        await again.close()
        await r.close()


async def test_the_same_misbehaviour_disconnects_a_peer_without_noban():
    async with running_nodes(1, txindex=True, whitelist=whitelist("mempool@127.0.0.1")) as [node]:
        r = await raw_peer(node.node.p2p_port)
        entry = m.TimedAddr(int(time.time()), m.NetAddr.from_host("1.2.3.4", 8333, 1))
        await r.send_raw("addr", ser_compact_size(1001) + entry.serialize() * 1001)
        assert await r.wait_closed(3)
        assert await node.rpc.call("listbanned") == []   # loopback: disconnected, not banned
        await r.close()


# ------------------------------------------------------------------ getpeerinfo permissions

async def test_getpeerinfo_shows_whitelist_permissions_by_range_and_direction():
    async with running_nodes(2, txindex=True, whitelist=whitelist("mempool,addr@127.0.0.0/8", "relay@10.0.0.0/8",
                                                    "out,forcerelay@127.0.0.1")) as (a, b):
        r = await raw_peer(a.node.p2p_port)
        assert (await row_of(a, r))["permissions"] == ["mempool", "addr"]
        await a.rpc.call("addnode", b.p2p_addr, "onetry")
        await wait_until(lambda: any(not p.inbound for p in a.node.connman.connected_peers()),
                         10, message="a did not connect to b")
        [out] = [p for p in await a.rpc.call("getpeerinfo") if not p["inbound"]]
        assert out["permissions"] == ["forcerelay", "relay"]        # only the `out` range
        [inb] = [p for p in await b.rpc.call("getpeerinfo") if p["inbound"]]
        assert inb["permissions"] == ["mempool", "addr"]            # b's own whitelist, inbound
        await r.close()


async def test_whitebind_listener_grants_its_permissions():
    bind = (WhitebindEntry(F.NOBAN | F.MEMPOOL, "127.0.0.1", 0), WhitebindEntry(F.NONE, "127.0.0.1", 0))
    async with running_nodes(1, txindex=True, whitebind=bind) as [node]:
        cm = node.node.connman
        assert len(cm.whitebind_ports) == 2 and node.node.p2p_port not in cm.whitebind_ports
        white = await raw_peer(cm.whitebind_ports[0])
        empty = await raw_peer(cm.whitebind_ports[1])
        plain = await raw_peer(node.node.p2p_port)
        assert (await row_of(node, white))["permissions"] == ["noban", "mempool", "download"]
        assert (await row_of(node, empty))["permissions"] == []
        assert (await row_of(node, plain))["permissions"] == []
        for r in (white, empty, plain):
            await r.close()


# ------------------------------------------------------------------ BIP35 mempool

async def test_mempool_permission_controls_the_bip35_answer():
    async with running_nodes(1, txindex=True, whitelist=whitelist("mempool@127.0.0.1")) as [node]:
        txid = bytes.fromhex(await funded_tx(node))[::-1]
        # relay=False: no announcements at all, so an inv can only answer `mempool`.
        asker = await raw_peer(node.node.p2p_port, relay=False)
        await asker.send(m.MemPool())
        assert txid in await tx_invs_until(asker, txid)
        await asker.close()
    async with running_nodes(1, txindex=True, whitelist=whitelist("noban@127.0.0.2")) as [node]:
        await funded_tx(node)
        rude = await raw_peer(node.node.p2p_port, relay=False)
        await rude.send(m.MemPool())
        assert await rude.wait_closed(3)           # Core: "mempool request with bloom filters disabled"
        assert await node.rpc.call("listbanned") == []
        await rude.close()


async def test_a_noban_peer_without_mempool_permission_is_ignored_not_disconnected():
    async with running_nodes(1, txindex=True, whitelist=whitelist("noban@127.0.0.1")) as [node]:
        await funded_tx(node)
        r = await raw_peer(node.node.p2p_port, relay=False)
        await r.send(m.MemPool())
        await r.ping_roundtrip()
        assert [x for x in r.received if x.COMMAND == "inv"] == []
        assert (await row_of(node, r))["banscore"] == 0
        await r.close()


# ------------------------------------------------------------------ forcerelay

@pytest.mark.parametrize("force", [True, False], ids=["forcerelay", "relay"])
async def test_forcerelay_announces_a_tx_the_node_already_had(force):
    """Core p2p_permissions check_tx_relay: a forcerelay peer resends a tx already in the
    mempool, and the node relays it onward again; without forcerelay nothing is announced."""
    perms = "forcerelay@127.0.0.1" if force else "relay@127.0.0.1"
    async with running_nodes(1, txindex=True, whitelist=whitelist(perms)) as [node]:
        txid_hex = await funded_tx(node)
        txid = bytes.fromhex(txid_hex)[::-1]
        tx = Tx.from_hex(await node.rpc.call("getrawtransaction", txid_hex))
        listener = await raw_peer(node.node.p2p_port)
        assert txid in await tx_invs_until(listener, txid)          # the mempool, announced once
        sender = await raw_peer(node.node.p2p_port)
        await sender.send(m.TxMsg(tx))
        await sender.ping_roundtrip()                               # the resend was processed
        # A fresh tx marks the end: anything relayed for the resend is announced before it.
        marker = bytes.fromhex(await node.rpc.call(
            "sendtoaddress", await node.rpc.call("getnewaddress"), 1))[::-1]
        seen = await tx_invs_until(listener, marker)
        assert (txid in seen) is force
        for r in (listener, sender):
            await r.close()


# ------------------------------------------------------------------ addr

async def test_addr_permission_lifts_the_addr_rate_limit():
    """Core ProcessMessage "addr": `rate_limited = !HasPermission(Addr)`."""
    from tinynode.net.connman import ConnMan
    from tests.framework.netnodes import InvSink, fast_config
    node = ConnMan(REGTEST, fast_config(), handlers=[InvSink()], dial=False,
                   whitelist=whitelist("addr@127.0.0.1"))
    await node.start()
    try:
        r = await raw_peer(node.port)
        now = int(time.time())
        for k in range(2):
            await r.send(m.Addr(tuple(
                m.TimedAddr(now, m.NetAddr.from_host(f"11.{k}.{i >> 8}.{i & 255}", 8333, NODE_NETWORK))
                for i in range(1000))))
        await r.ping_roundtrip()
        [info] = node.peers()
        assert info["permissions"] == ["addr"]
        assert (info["addr_processed"], info["addr_rate_limited"]) == (2000, 0)
        await r.close()
    finally:
        await node.stop()


# ------------------------------------------------------------------ relay

@pytest.mark.parametrize("relay", [True, False], ids=["relay", "none"])
async def test_relay_permission_fetches_txs_where_the_node_asked_for_none(relay):
    """Core RejectIncomingTxs: in -blocksonly a peer needs `relay` for its txs to be taken.
    tinynode's blocksonly is per connection (`relay_ours`, our version's relay flag); it is
    switched off by hand here, as nothing in the daemon sets it yet."""
    perms = "relay@127.0.0.1" if relay else "mempool@127.0.0.1"
    async with running_nodes(1, txindex=True, whitelist=whitelist(perms)) as [node]:
        r = await raw_peer(node.node.p2p_port)
        [peer] = [p for p in node.node.connman.connected_peers() if p.addr[1] == sockport(r)]
        peer.relay_ours = False
        txid = bytes(range(32))
        await r.send(m.Inv((m.InvVect(InvType.TX, txid),)))
        await r.ping_roundtrip()
        asked = [iv.hash for x in r.received if x.COMMAND == "getdata" for iv in x.items]
        assert asked == ([txid] if relay else [])
        await r.close()
