"""ConnMan.relay_address as Core's PeerManagerImpl::RelayAddress: two destinations among the
addr-relay peers other than the originator, the same two for a given address through a 24 h
window (shifted per address), different ones as the days pass; peers that already know the
address are not sent it again. No sockets: the peers are stand-ins."""
from __future__ import annotations

from dataclasses import dataclass, field

from tinynode.net.connman import ConnMan, ROTATE_ADDR_RELAY_DEST_INTERVAL
from tinynode.params import REGTEST

DAY = ROTATE_ADDR_RELAY_DEST_INTERVAL
T0 = 1_700_000_000


@dataclass
class FakePeer:
    id: int
    addr_relay_enabled: bool = True
    addrs_to_send: list = field(default_factory=list)


def _connman(now: list[float], peers: list[FakePeer]) -> ConnMan:
    cm = ConnMan(REGTEST, clock=lambda: now[0], listen=False, dial=False)
    cm.connected_peers = lambda: list(peers)   # type: ignore[method-assign]
    return cm


def _addr(i: int) -> tuple[str, int, int, int]:
    return (f"123.45.{i // 256}.{i % 256}", 8333, 9, T0)


def test_two_destinations_never_the_originator_nor_a_peer_without_addr_relay():
    now = [float(T0)]
    peers = [FakePeer(i) for i in range(10)] + [FakePeer(10, addr_relay_enabled=False)]
    cm = _connman(now, peers)
    for i in range(50):
        chosen = cm.relay_address(originator=3, addr=_addr(i))
        assert len(chosen) == 2 and len({p.id for p in chosen}) == 2
        assert all(p.id not in (3, 10) for p in chosen)
    assert sum(len(p.addrs_to_send) for p in peers) == 100
    # with a single other addr-relay peer, only that one
    cm2 = _connman(now, [FakePeer(0), FakePeer(1)])
    assert [p.id for p in cm2.relay_address(0, _addr(1))] == [1]


def test_same_destinations_within_a_day_and_rotation_over_days():
    now = [float(T0)]
    peers = [FakePeer(i) for i in range(22)]
    cm = _connman(now, peers)
    a = _addr(7)
    seen_within_day: set[int] = set()
    for _ in range(12):                       # 12 × 2 h: at most one window boundary crossed
        seen_within_day |= {p.id for p in cm.relay_address(0, a)}
        now[0] += 2 * 3600
    assert 2 <= len(seen_within_day) <= 4
    # an address-keyed per-day choice: the same answer for the same time and address
    now[0] = float(T0 + 5 * DAY)
    first = [p.id for p in cm.relay_address(0, a)]
    assert [p.id for p in cm.relay_address(0, a)] == first
    seen_over_days: set[int] = set()
    for day in range(10):
        now[0] = float(T0 + day * DAY)
        seen_over_days |= {p.id for p in cm.relay_address(0, a)}
    assert len(seen_over_days) > 4


def test_a_peer_that_knows_the_address_is_not_queued_it():
    now = [float(T0)]
    peers = [FakePeer(1), FakePeer(2)]
    cm = _connman(now, peers)
    from collections import OrderedDict
    from tinynode.net.addrman import addr_key
    cm._addr_known[1] = OrderedDict({addr_key("123.45.0.9", 8333): True})
    cm._addr_known[2] = OrderedDict()
    chosen = cm.relay_address(0, _addr(9))
    assert sorted(p.id for p in chosen) == [1, 2]
    assert (peers[0].addrs_to_send, len(peers[1].addrs_to_send)) == ([], 1)
