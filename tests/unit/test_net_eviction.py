"""Inbound eviction as a pure function (Core's SelectNodeToEvict, node/eviction.cpp; its unit test
is src/test/net_peer_eviction_tests.cpp)."""

from __future__ import annotations

import dataclasses
import math

import pytest

from tinynode.net.addrman import net_group
from tinynode.net.connman import EvictionCandidate, select_node_to_evict


def cands(n: int, **per_id) -> list[EvictionCandidate]:
    """`n` inbound peers, id i connected at time 1000 + i (0 oldest), no ping, no block, no tx,
    each in its own group; `per_id={i: {field: value}}` overrides, e.g. `c3={"min_ping": 0.1}`."""
    out = []
    for i in range(n):
        c = EvictionCandidate(peer_id=i, connected=1000.0 + i, min_ping=math.inf,
                              last_block_time=0.0, last_tx_time=0.0, net_group=f"g{i}")
        out.append(dataclasses.replace(c, **per_id.get(f"c{i}", {})))
    return out


def test_candidate_is_frozen():
    c = cands(1)[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.min_ping = 0.0  # type: ignore[misc]


def test_nothing_to_evict_while_every_peer_is_protected():
    # 4 ping + 4 tx + 4 block + half of the rest: twelve peers are all protected.
    assert select_node_to_evict([]) is None
    assert select_node_to_evict(cands(12)) is None
    assert select_node_to_evict(cands(13)) == 12           # the youngest


def test_lowest_ping_is_protected():
    assert select_node_to_evict(cands(13, c12={"min_ping": 0.05})) == 11
    # Only the four lowest pings count: the fifth fastest, if youngest, still goes.
    fast = {f"c{i}": {"min_ping": 0.01 * (i + 1)} for i in range(8, 13)}   # c12 slowest of 5
    assert select_node_to_evict(cands(13, **fast)) == 12


def test_recent_novel_block_is_protected():
    assert select_node_to_evict(cands(13, c12={"last_block_time": 5000.0})) == 11


def test_recent_novel_tx_is_protected():
    assert select_node_to_evict(cands(13, c12={"last_tx_time": 5000.0})) == 11


def test_most_recent_block_senders_win():
    # c0-c3 are protected by ping ties, c4-c7 by tx ties; of c8..c12 (all block senders) the four
    # most recent keep their place, so c8, whose block is the oldest, goes, not the youngest c12.
    blocks = {f"c{i}": {"last_block_time": 2000.0 + i} for i in range(8, 13)}
    blocks["c8"] = {"last_block_time": 1500.0}
    assert select_node_to_evict(cands(13, **blocks)) == 8


def test_longest_connected_half_is_protected():
    # 20 peers: 12 protected by ping/tx/block ties (the oldest), of c12..c19 half (c12-c15) by
    # age; c16..c19 remain, one per group, so the youngest goes.
    assert select_node_to_evict(cands(20)) == 19


def test_largest_network_group_loses_its_youngest():
    same = {"c17": {"net_group": "y"}, "c18": {"net_group": "y"}}
    assert select_node_to_evict(cands(20, **same)) == 18


def test_group_size_tie_goes_to_the_group_with_the_youngest_member():
    groups = {"c16": {"net_group": "x"}, "c18": {"net_group": "x"},
              "c17": {"net_group": "y"}, "c19": {"net_group": "y"}}
    assert select_node_to_evict(cands(20, **groups)) == 19


def test_net_group():
    assert net_group("1.2.3.4") == net_group("1.2.200.9") == "1.2.0.0/16"
    assert net_group("1.3.3.4") != net_group("1.2.3.4")
    # Loopback, private and IPv6 addresses: each its own group.
    assert net_group("127.0.0.1") == "127.0.0.1"
    assert net_group("127.0.0.1") != net_group("127.0.0.2")
    assert net_group("10.0.0.1") != net_group("10.0.0.2")
    assert net_group("::ffff:1.2.3.4") == "1.2.0.0/16"
    assert net_group("2001:db8::1") == "2001:db8::1"
