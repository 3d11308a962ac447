"""SyncManager's headers-sync peer choice (Core SendMessages fSyncStarted / nSyncStarted,
m_headers_sync_timeout) against fake peers and a fake chain writer: no sockets, no clock waits."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from types import SimpleNamespace

from tinynode.net.peer import NetConfig
from tinynode.net.sync import SyncManager
from tinynode.params import REGTEST

NOW = 2_000_000_000
OLD = NOW - 10 * 24 * 3600


@dataclass
class FakePeer:
    id: int
    start_height: int = 0
    inbound: bool = False
    version: int = 70015
    relay: bool = False
    services: int = 1 | 8       # NODE_NETWORK | NODE_WITNESS: may serve blocks (Core CanServeBlocks)
    sent: list = field(default_factory=list)
    disconnected: str = ""

    def __post_init__(self) -> None:
        self.handshake_done = asyncio.Event()
        self.handshake_done.set()
        self.synced_headers = -1

    @property
    def is_connected(self) -> bool:
        return not self.disconnected

    def send(self, msg) -> bool:
        self.sent.append(msg)
        return True

    def disconnect(self, reason: str = "") -> None:
        self.disconnected = reason or "disconnect"

    def getheaders(self) -> int:
        return sum(1 for x in self.sent if x.COMMAND == "getheaders")


class FakeWriter:
    """Snapshot + `call` over a chain whose best header is at `height` with timestamp `time`."""

    def __init__(self, height: int, header_time: int) -> None:
        self.set_best(height, header_time)

    def set_best(self, height: int, header_time: int) -> None:
        best_hash = height.to_bytes(32, "little")
        entry = SimpleNamespace(hash=best_hash, header=SimpleNamespace(time=header_time), prev=None)
        self.chainstate = SimpleNamespace(best_header=entry, get_entry=lambda h: entry,
                                          block_locator=lambda e: [e.hash])
        self.snapshot = SimpleNamespace(best_header_hash=best_hash, best_header_height=height,
                                        tip_hash=b"\x00" * 32, tip_time=0)

    async def call(self, fn, *args):
        return fn(*args)


def manager(writer: FakeWriter, **kw) -> SyncManager:
    return SyncManager(REGTEST, NetConfig(), writer, now=lambda: NOW, **kw)


async def connect(sm: SyncManager, *peers: FakePeer) -> None:
    for p in peers:
        await sm.peer_connected(p)


async def test_old_best_header_one_sync_peer_recent_all():
    w = FakeWriter(100, OLD)
    sm = manager(w)
    a, b, c = FakePeer(1, 5000), FakePeer(2, 5000), FakePeer(3, 5000)
    await connect(sm, a, b, c)
    assert [p.getheaders() for p in (a, b, c)] == [1, 0, 0]
    assert sm.headers_sync_peers() == [1]
    w.set_best(3000, NOW - 60)          # the sync peer brought us near today
    await sm._headers_sync_step()
    assert [p.getheaders() for p in (a, b, c)] == [1, 1, 1]
    d = FakePeer(4, 5000)
    await connect(sm, d)
    assert d.getheaders() == 1


async def test_outbound_peer_preferred_as_the_only_sync_peer():
    w = FakeWriter(0, OLD)
    sm = manager(w)
    inbound, outbound = FakePeer(1, 50, inbound=True), FakePeer(2, 50)
    sm._state(inbound)
    sm._state(outbound)
    await sm._headers_sync_step()
    assert sm.headers_sync_peers() == [2]


async def test_timeout_disconnects_the_sync_peer_only_when_another_can_take_over():
    w = FakeWriter(0, OLD)
    sm = manager(w, headers_timeout_base=0.0, headers_timeout_per_header=0.0)
    a = FakePeer(1, 500)
    await connect(sm, a)
    assert sm.headers_sync_peers() == [1]
    await sm._headers_sync_step()       # past the deadline, but the only peer: kept (Core)
    assert not a.disconnected
    b = FakePeer(2, 500)
    await connect(sm, b)                # now another peer can take over
    assert a.disconnected == "headers sync timed out"
    assert sm.headers_sync_peers() == [2] and b.getheaders() == 1


async def test_recent_best_header_switches_the_timeout_off():
    w = FakeWriter(0, OLD)
    sm = manager(w, headers_timeout_base=0.0, headers_timeout_per_header=0.0)
    a = FakePeer(1, 500)
    await connect(sm, a)
    w.set_best(400, NOW)
    await sm._headers_sync_step()
    w.set_best(400, OLD)                # (as if the clock moved on a day)
    await connect(sm, FakePeer(2, 500))
    assert not a.disconnected


async def test_timeout_scales_with_the_expected_headers():
    w = FakeWriter(0, NOW - 600 * 1000)           # 1,000 spacings behind
    sm = manager(w, headers_timeout_base=5.0, headers_timeout_per_header=0.01)
    a = FakePeer(1, 1000)
    before = time.monotonic()
    await connect(sm, a)
    deadline = sm._peers[1].headers_sync_timeout
    assert before + 5.0 + 10.0 <= deadline <= time.monotonic() + 5.0 + 10.0


async def test_sync_peers_that_run_out_do_not_hand_over_forever():
    """Two peers claim 5,000 by start_height but have only our 100: each is the sync peer once;
    then nobody claims more, `a` is asked once more (caught up: everyone is asked) and the node
    stops switching."""
    w = FakeWriter(100, OLD)
    sm = manager(w)
    a, b = FakePeer(1, 5000), FakePeer(2, 5000)
    await connect(sm, a, b)
    for _ in range(10):
        for p in (a, b):
            st = sm._peers[p.id]
            if st.headers_requested is not None:
                st.headers_requested = None     # it answered with nothing new
                st.last_getheaders = None       # (an empty headers answers it, Core)
                st.headers_synced = True
        await sm._headers_sync_step()
    assert (a.getheaders(), b.getheaders()) == (2, 1)
    assert sm.headers_sync_peers() == [1, 2]


async def test_pong_waits_for_a_received_fork_block_whose_parent_is_stored():
    """Core answers a ping after the blocks sent before it were processed: a block from the peer
    still waiting for the submitter counts as in progress when its parent's data is stored,
    even if that parent is not our tip (a fork block: p2p_unrequested_blocks' block_h1f); one
    whose parent is only a header (or unknown) does not."""
    writer = FakeWriter(5, NOW)
    parent = SimpleNamespace(have_data=True, height=1)
    header_only = SimpleNamespace(have_data=False, height=1)
    entries = {b"\x01" * 32: parent, b"\x02" * 32: header_only}
    writer.chainstate.get_entry = entries.get
    sm = manager(writer)
    fork = SimpleNamespace(header=SimpleNamespace(prev_hash=b"\x01" * 32))
    waiting = SimpleNamespace(header=SimpleNamespace(prev_hash=b"\x02" * 32))
    sm._received[b"\xf1" * 32] = (waiting, 1)
    assert not sm._blocks_pending_from(1) and not await sm._parent_stored_pending(1)
    sm._received[b"\xf2" * 32] = (fork, 1)
    assert not sm._blocks_pending_from(1)          # the cheap check cannot tell
    assert await sm._parent_stored_pending(1) and not await sm._parent_stored_pending(2)
    del sm._received[b"\xf2" * 32]                 # the submitter took it
    assert not await sm._parent_stored_pending(1)
