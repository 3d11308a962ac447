"""Address book: bounds, new → tried, local-address policy, selection and persistence."""

from __future__ import annotations

import random

from tinynode.net.addrman import AddrMan, addr_key, is_local_address

NOW = 1_700_000_000.0


def clock():
    return NOW


def test_local_address_policy():
    assert is_local_address("127.0.0.1") and is_local_address("10.1.2.3")
    assert is_local_address("172.18.0.5") and is_local_address("192.168.1.1") and is_local_address("::1")
    assert not is_local_address("8.8.8.8")
    am = AddrMan(now=clock)
    assert not am.add("127.0.0.1", 18444)          # loopback refused by default
    assert am.add("8.8.8.8", 8333)
    assert not am.add("8.8.4.4", 0)                # bad port
    assert not am.add("0.0.0.0", 8333)             # unspecified
    assert not am.add("not-an-ip", 8333)
    lab = AddrMan(now=clock, allow_local=True)
    assert lab.add("127.0.0.1", 18444) and lab.add("172.18.0.5", 9999)
    assert addr_key("::1", 5) == "[::1]:5"


def test_add_refresh_and_bounds():
    am = AddrMan(now=clock, max_new=10, max_tried=3, rng=random.Random(1))
    for i in range(50):
        am.add(f"1.2.3.{i}", 8333, timestamp=NOW - 1000 + i)
    assert len(am) == 10 and am.new_count == 10
    # The oldest were evicted: the newest survive.
    assert am.get("1.2.3.49", 8333) is not None and am.get("1.2.3.0", 8333) is None
    assert not am.add("1.2.3.49", 8333, timestamp=NOW)   # known: refresh, not new
    assert am.get("1.2.3.49", 8333).timestamp == NOW
    for i in range(45, 50):
        am.good(f"1.2.3.{i}", 8333)
    assert am.tried_count == 3                            # tried is bounded too
    assert len(am) == 10


def test_attempts_make_entries_terrible_and_good_resets():
    am = AddrMan(now=clock)
    am.add("9.9.9.9", 8333, timestamp=NOW)
    for _ in range(3):
        am.attempt("9.9.9.9", 8333)
    e = am.get("9.9.9.9", 8333)
    assert e.attempts == 3 and not e.is_terrible(NOW)     # tried in the last minute
    assert e.is_terrible(NOW + 120)
    am.good("9.9.9.9", 8333)
    e = am.get("9.9.9.9", 8333)
    assert e.tried and e.attempts == 0 and e.last_success == NOW


def test_select_and_getaddr():
    am = AddrMan(now=clock, rng=random.Random(7))
    assert am.select() is None
    for i in range(20):
        am.add(f"5.5.5.{i}", 8333, timestamp=NOW - 10)
    picked = {am.select().key for _ in range(200)}
    assert len(picked) > 5
    only = am.select(exclude=lambda h, p: h != "5.5.5.3")
    assert only.host == "5.5.5.3"
    assert am.select(exclude=lambda h, p: True) is None
    sample = am.get_addr()
    assert 1 <= len(sample) <= 20 and len({e.key for e in sample}) == len(sample)


def test_persistence_roundtrip_and_corrupt_file(tmp_path):
    path = tmp_path / "peers.json"
    am = AddrMan(path, now=clock, allow_local=True)
    am.add("127.0.0.1", 1234, services=1, timestamp=NOW)
    am.good("10.0.0.1", 9999)
    am.save()
    again = AddrMan(path, now=clock, allow_local=True)
    assert {e.key for e in again.entries()} == {"127.0.0.1:1234", "10.0.0.1:9999"}
    assert again.get("10.0.0.1", 9999).tried
    path.write_text("{not json")
    assert len(AddrMan(path, now=clock)) == 0


TORV3 = "pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd.onion"
I2P = "ukeu3k5oycgaauneqgtnvselmt4yemvoilkln7jpvamvfx7dnkdq.b32.i2p"


def test_bip155_networks_are_stored_but_not_reachable(tmp_path):
    """Core: AddrMan::Add stores any routable network (addpeeraddress), ProcessAddrs keeps only
    reachable ones and the dialer selects only those — without a Tor / I2P proxy, IPv4 and IPv6."""
    book = AddrMan(tmp_path / "peers.json", now=lambda: 1_700_000_000.0, rng=random.Random(1))
    for host in (TORV3, I2P):
        assert book.storable(host, 8333) and not book.acceptable(host, 8333)
        assert book.add(host, 8333, 9, 1_700_000_000)
    assert book.acceptable("8.8.8.8", 8333) and book.acceptable("2001:4860::8888", 8333)
    assert not book.storable("not-an-address", 8333) and not book.storable("mfrggzak.onion", 1)
    assert book.select() is None                       # nothing reachable to dial
    assert {e.host for e in book.get_addr()} == {TORV3, I2P}   # but shared in getaddr answers
    assert book.good(TORV3, 8333) and book.get(TORV3, 8333).tried
    book.save()
    again = AddrMan(tmp_path / "peers.json")
    assert {e.host for e in again.entries()} == {TORV3, I2P}


def test_add_many_logs_core_summary(caplog):
    caplog.set_level("DEBUG", logger="tinynode.net.addrman")
    book = AddrMan(now=lambda: 1_700_000_000.0)
    assert book.add_many([("9.9.9.9", 8333, 1, 1_700_000_000), ("::", 8333, 1, 1_700_000_000)],
                         source="127.0.0.1") == 1
    assert "Added 9.9.9.9:8333 to new" in caplog.text
    assert "Added 1 addresses (of 2) from 127.0.0.1: 0 tried, 1 new" in caplog.text
    caplog.clear()
    assert book.add_many([("9.9.9.9", 8333, 1, 1_700_000_000)], source="127.0.0.1") == 0
    assert "Added" not in caplog.text                  # Core logs only when one was new
