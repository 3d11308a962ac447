"""`net.permissions`: Core's -whitelist / -whitebind grammar, permission names and errors
(`net_permissions.cpp` TryParsePermissionFlags / NetWhitelistPermissions::TryParse /
NetWhitebindPermissions::TryParse / NetPermissions::ToStrings), and the config options."""

from __future__ import annotations

import dataclasses
import ipaddress

import pytest

from tinynode.config import ConfigError, from_args
from tinynode.net.permissions import (IMPLICIT_PERMISSIONS, NetPermissionFlags as F,
                                      PermissionParseError, WhitebindEntry, is_loopback,
                                      parse_whitebind, parse_whitelist, permission_names,
                                      whitelist_permissions)

ALL_NAMES = ["bloomfilter", "noban", "forcerelay", "relay", "mempool", "download", "addr"]


@pytest.mark.parametrize(("perms", "names"), [
    ("bloomfilter", ["bloomfilter"]),
    ("bloom", ["bloomfilter"]),
    ("noban", ["noban", "download"]),            # noban implies download
    ("forcerelay", ["forcerelay", "relay"]),     # forcerelay implies relay
    ("relay", ["relay"]),
    ("mempool", ["mempool"]),
    ("download", ["download"]),
    ("addr", ["addr"]),
    ("all", ALL_NAMES),
    ("addr,noban,,mempool,noban", ["noban", "mempool", "download", "addr"]),   # ToStrings order
    ("", []),                                    # "@1.2.3.4" grants nothing
])
def test_each_permission_name_grants_core_s_flags(perms, names):
    e = parse_whitelist(f"{perms}@1.2.3.4")
    assert permission_names(e.flags) == names
    assert (e.inbound, e.outbound) == (True, False)


def test_flag_bits_are_core_s():
    assert [int(f) for f in (F.BLOOMFILTER, F.RELAY, F.FORCE_RELAY, F.DOWNLOAD, F.NOBAN,
                             F.MEMPOOL, F.ADDR)] == [2, 8, 12, 64, 80, 32, 128]
    assert F.ALL == 2 | 12 | 8 | 80 | 32 | 64 | 128
    assert F.RELAY in F.FORCE_RELAY and F.FORCE_RELAY not in F.RELAY
    assert F.DOWNLOAD in F.NOBAN and F.NOBAN not in F.DOWNLOAD


def test_no_at_sign_grants_the_implicit_set():
    """Core's Implicit resolved with -whitelistrelay=1 (default), -whitelistforcerelay=0
    (default), plus mempool and noban."""
    e = parse_whitelist("1.2.3.4")
    assert e.flags == IMPLICIT_PERMISSIONS
    assert permission_names(e.flags) == ["noban", "relay", "mempool", "download"]
    wb = parse_whitebind("127.0.0.1:8555")
    assert permission_names(wb.flags) == ["noban", "relay", "mempool", "download"]


@pytest.mark.parametrize(("text", "network", "inbound", "outbound"), [
    ("noban@1.2.3.4", "1.2.3.4/32", True, False),
    ("noban@1.2.3.4/24", "1.2.3.0/24", True, False),                 # host bits cleared (CSubNet)
    ("noban@10.1.0.0/255.255.0.0", "10.1.0.0/16", True, False),       # dotted netmask
    ("noban@0.0.0.0/0", "0.0.0.0/0", True, False),
    ("noban@::1", "::1/128", True, False),
    ("noban@[::1]", "::1/128", True, False),
    ("noban@2001:db8::/32", "2001:db8::/32", True, False),
    ("noban@2001:db8::1/64", "2001:db8::/64", True, False),
    ("in,noban@1.2.3.4", "1.2.3.4/32", True, False),
    ("out,noban@1.2.3.4", "1.2.3.4/32", False, True),
    ("in,out,relay@1.2.3.4", "1.2.3.4/32", True, True),
])
def test_whitelist_networks_and_directions(text, network, inbound, outbound):
    e = parse_whitelist(text)
    assert e.network == ipaddress.ip_network(network)
    assert (e.inbound, e.outbound) == (inbound, outbound)


@pytest.mark.parametrize(("text", "message"), [
    ("bogus@1.2.3.4", "Invalid P2P permission: 'bogus'"),
    ("noban,Relay@1.2.3.4", "Invalid P2P permission: 'Relay'"),
    (" noban@1.2.3.4", "Invalid P2P permission: ' noban'"),
    ("in@1.2.3.4", "Only direction was set, no permissions: 'in@1.2.3.4'"),
    ("out,in@1.2.3.4", "Only direction was set, no permissions: 'out,in@1.2.3.4'"),
    ("noban@nothing", "Invalid netmask specified in -whitelist: 'nothing'"),
    ("noban@localhost", "Invalid netmask specified in -whitelist: 'localhost'"),   # no DNS
    ("1.2.3.4/33", "Invalid netmask specified in -whitelist: '1.2.3.4/33'"),
    ("noban@::1/129", "Invalid netmask specified in -whitelist: '::1/129'"),
    ("noban@1.2.3.4/", "Invalid netmask specified in -whitelist: '1.2.3.4/'"),
    ("noban@1.2.3.0/0.0.0.255", "Invalid netmask specified in -whitelist: '1.2.3.0/0.0.0.255'"),
    ("noban@127.0.0.1:230", "Invalid netmask specified in -whitelist: '127.0.0.1:230'"),
    ("", "Invalid netmask specified in -whitelist: ''"),
    ("noban@", "Invalid netmask specified in -whitelist: ''"),
])
def test_whitelist_errors_are_core_s_sentences(text, message):
    with pytest.raises(PermissionParseError) as ei:
        parse_whitelist(text)
    assert str(ei.value) == message


@pytest.mark.parametrize(("text", "host", "port", "names"), [
    ("noban@127.0.0.1:8555", "127.0.0.1", 8555, ["noban", "download"]),
    ("in,relay@1.2.3.4:5", "1.2.3.4", 5, ["relay"]),
    ("noban,,relay@[::1]:5", "::1", 5, ["noban", "relay", "download"]),
    ("@1.2.3.4:5", "1.2.3.4", 5, []),
    ("all@0.0.0.0:18444", "0.0.0.0", 18444, ALL_NAMES),
])
def test_whitebind_values(text, host, port, names):
    e = parse_whitebind(text)
    assert (e.host, e.port, permission_names(e.flags)) == (host, port, names)


@pytest.mark.parametrize(("text", "message"), [
    ("127.0.0.1", "Need to specify a port with -whitebind: '127.0.0.1'"),
    ("noban@[::1]", "Need to specify a port with -whitebind: '[::1]'"),
    ("noban@127.0.0.1:0", "Need to specify a port with -whitebind: '127.0.0.1:0'"),
    ("localhost:7", "Cannot resolve -whitebind address: 'localhost:7'"),
    ("999.1.1.1:5", "Cannot resolve -whitebind address: '999.1.1.1:5'"),
    ("noban@127.0.0.1/10", "Cannot resolve -whitebind address: '127.0.0.1/10'"),
    ("noban@127.0.0.1:70000", "Cannot resolve -whitebind address: '127.0.0.1:70000'"),
    ("out@127.0.0.1:7", 'whitebind may only be used for incoming connections ("out" was passed)'),
    ("bogus,out@127.0.0.1:7", "Invalid P2P permission: 'bogus'"),
    ("in@127.0.0.1:7", "Only direction was set, no permissions: 'in@127.0.0.1:7'"),
])
def test_whitebind_errors_are_core_s_sentences(text, message):
    with pytest.raises(PermissionParseError) as ei:
        parse_whitebind(text)
    assert str(ei.value) == message


def test_whitelist_matching_by_subnet_family_and_direction():
    entries = [parse_whitelist("noban@10.0.0.0/8"), parse_whitelist("mempool@10.1.2.3"),
               parse_whitelist("out,addr@10.0.0.0/8"), parse_whitelist("relay@::1")]
    assert permission_names(whitelist_permissions(entries, "10.1.2.3", True)) == [
        "noban", "mempool", "download"]
    assert permission_names(whitelist_permissions(entries, "10.9.9.9", True)) == ["noban", "download"]
    assert permission_names(whitelist_permissions(entries, "10.9.9.9", False)) == ["addr"]
    assert permission_names(whitelist_permissions(entries, "::ffff:10.9.9.9", True)) == [
        "noban", "download"]                                   # a dual-stack socket's IPv4 peer
    assert permission_names(whitelist_permissions(entries, "::1", True)) == ["relay"]
    assert whitelist_permissions(entries, "11.0.0.1", True) == F.NONE
    assert whitelist_permissions(entries, "not-an-ip", True) == F.NONE
    # the listener's own permissions come first and are kept (Core: whitebind, then whitelist)
    assert permission_names(whitelist_permissions(entries, "11.0.0.1", True, F.MEMPOOL)) == ["mempool"]


def test_entries_are_frozen_values():
    e = parse_whitelist("noban@1.2.3.4")
    with pytest.raises(dataclasses.FrozenInstanceError):
        e.flags = F.ALL  # type: ignore[misc]
    assert e == parse_whitelist("noban@1.2.3.4") and hash(e) == hash(parse_whitelist("noban@1.2.3.4"))
    assert str(e) == "noban,download,in@1.2.3.4/32"
    assert str(parse_whitebind("relay@[::1]:5")) == "relay@[::1]:5"
    assert parse_whitebind("relay@[::1]:5") == WhitebindEntry(F.RELAY, "::1", 5)


@pytest.mark.parametrize(("host", "local"), [
    ("127.0.0.1", True), ("127.255.0.9", True), ("0.0.0.0", True), ("0.1.2.3", True),
    ("::1", True), ("::ffff:127.0.0.1", True),
    ("10.0.0.1", False), ("192.168.1.1", False), ("11.2.3.4", False), ("::2", False),
    ("fe80::1", False), ("localhost", False),
])
def test_is_loopback_is_core_s_is_local(host, local):
    assert is_loopback(host) is local


# ------------------------------------------------------------------ config options

def test_config_whitelist_and_whitebind_are_repeatable():
    cfg = from_args(["--network", "regtest", "--whitelist", "noban@127.0.0.1",
                     "--whitelist=mempool,relay@10.0.0.0/8", "--whitebind", "forcerelay@127.0.0.1:18555",
                     "--whitebind=127.0.0.1:18556"], env={})
    assert [str(e) for e in cfg.whitelist] == ["noban,download,in@127.0.0.1/32",
                                               "relay,mempool,in@10.0.0.0/8"]
    assert [(e.port, permission_names(e.flags)) for e in cfg.whitebind] == [
        (18555, ["forcerelay", "relay"]), (18556, ["noban", "relay", "mempool", "download"])]
    assert from_args(["--network", "regtest"], env={}).whitelist == ()


@pytest.mark.parametrize(("argv", "message"), [
    (["--whitelist", "oopsie@127.0.0.1"], "Invalid P2P permission: 'oopsie'"),
    (["--whitelist", "noban@127.0.0.1", "--whitelist", "first@1.2.3.4", "--whitelist", "second@1.2.3.4"],
     "Invalid P2P permission: 'first'"),                     # the first bad value is named
    (["--whitelist", "noban@127.0.0.1:230"], "Invalid netmask specified in -whitelist: '127.0.0.1:230'"),
    (["--whitebind", "noban@127.0.0.1/10"], "Cannot resolve -whitebind address: '127.0.0.1/10'"),
    (["--whitebind", "noban@127.0.0.1:18555", "--no-listen"],
     "Cannot set -bind or -whitebind together with -listen=0"),
])
def test_config_refuses_with_core_s_message(argv, message):
    with pytest.raises(ConfigError) as ei:
        from_args(["--network", "regtest", *argv], env={})
    assert str(ei.value).startswith(message)


# ------------------------------------------------------------------ eviction skips noban peers

class _FakePeer:
    """What `ConnMan.attempt_to_evict_connection` reads of a peer."""

    def __init__(self, peer_id: int, permissions: F = F.NONE) -> None:
        self.id = peer_id
        self.inbound = True
        self.is_connected = True
        self.conn_time = 1000.0 + peer_id          # higher id: younger
        self.min_ping = 0.1
        self.last_block_time = self.last_tx_time = 0.0
        self.addr = ("11.1.0.1", 1000 + peer_id)     # one network group
        self.addr_str = f"11.1.0.1:{1000 + peer_id}"
        self.permissions = permissions
        self.reason = ""

    def has_permission(self, flag: F) -> bool:
        return flag in self.permissions

    def disconnect(self, reason: str) -> None:
        self.reason = reason
        self.is_connected = False


@pytest.mark.parametrize(("noban_ids", "victim"), [((), 30), ((30,), 29), ((29, 30), 28),
                                                    (tuple(range(1, 31)), None)])
def test_eviction_never_picks_a_noban_peer(noban_ids, victim):
    """Core AttemptToEvictConnection skips peers with NetPermissionFlags::NoBan."""
    from tinynode.net.connman import ConnMan
    from tinynode.params import REGTEST
    cm = ConnMan(REGTEST, listen=False, dial=False)
    peers = {i: _FakePeer(i, F.NOBAN if i in noban_ids else F.NONE) for i in range(1, 31)}
    cm._peers = peers
    assert cm.attempt_to_evict_connection() is (victim is not None)
    evicted = [i for i, p in peers.items() if p.reason]
    assert evicted == ([] if victim is None else [victim])
