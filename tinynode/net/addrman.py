"""The address book: where to find peers (a much simplified Bitcoin Core `AddrMan`).

Addresses arrive from `addr` messages, from our seeds and from peers advertising their own
listening address after the handshake. They live in two bounded tables, as in Core:

* **new** — heard about, never connected to (bounded by `max_new`; when full, the entry seen
  longest ago is evicted, Core's "terrible" addresses go first);
* **tried** — we completed a handshake with it at least once (bounded by `max_tried`; when full,
  the oldest tried entry is moved back to new, Core's `MakeTried` collision eviction).

Core hashes addresses into 1024 new / 256 tried buckets keyed by the source's network group,
which stops one peer from filling the table; tinynode keeps one flat bounded table per kind and a
per-`addr`-message cap, which is enough for a small node and its labs.

Loopback and private (RFC 1918) addresses are normally useless to gossip, but a lab on 127.0.0.1
or a docker-compose network on 172.x consists of nothing else. `allow_local` keeps and gossips
them; the connection manager turns it on when the node itself listens on such an address.

Entries are of every BIP155 network (IPv4, IPv6, TORv3 ``….onion``, I2P ``….b32.i2p``), kept as
their text form (`tinynode.wire.netaddress`). As Core, `add` (addpeeraddress) stores any network,
but `acceptable` — what gossip stores and the dialer uses — is only the *reachable* ones, Core's
``g_reachable_nets`` without a Tor / I2P proxy or ``-cjdnsreachable``: IPv4 and IPv6.

The book is persisted as a small JSON file (written atomically); it is advisory data, so a
corrupt file is logged and ignored.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import random
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterable

from tinynode.wire.netaddress import network_name

log = logging.getLogger(__name__)

__all__ = ["AddrInfo", "AddrMan", "is_local_address", "addr_key", "net_group", "REACHABLE_NETWORKS"]

#: Core's ADDRMAN_HORIZON: addresses not seen for 30 days are terrible.
HORIZON = 30 * 24 * 3600
#: Core's ADDRMAN_RETRIES / ADDRMAN_MAX_FAILURES: give up on never-successful addresses.
MAX_RETRIES = 3
MAX_FAILURES = 10
#: Core's ADDRMAN_GETADDR_MAX_PCT: answer getaddr with at most 23% of the book ...
GETADDR_MAX_PCT = 23
#: ... and never more than this (the wire limit of one addr message).
GETADDR_MAX = 1000


def addr_key(host: str, port: int) -> str:
    """Canonical `host:port` text ([v6]:port for IPv6)."""
    if ":" in host:
        return f"[{host}]:{port}"
    return f"{host}:{port}"


def _parse_ip(host: str):
    """The IP address in `host` (IPv4-mapped IPv6 unwrapped), or None if it is not one."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip


def is_local_address(host: str) -> bool:
    """True for loopback, private, link-local or unspecified addresses (Core's !IsRoutable())."""
    ip = _parse_ip(host)
    return ip is not None and (ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_unspecified)


def net_group(host: str) -> str:
    """The group inbound eviction spreads peers over (Core `NetGroupManager::GetGroup`, trimmed):
    the /16 of a routable IPv4 address; any other address (loopback, private, IPv6) is its own."""
    ip = _parse_ip(host)
    if ip is None:
        return host
    if isinstance(ip, ipaddress.IPv4Address) and not is_local_address(host):
        return str(ipaddress.ip_network(f"{ip}/16", strict=False))
    return str(ip)


#: Core's g_reachable_nets for a node without proxies: the networks we can connect to.
REACHABLE_NETWORKS = frozenset(("ipv4", "ipv6"))


def _valid_host(host: str) -> bool:
    """Core IsValid for IP addresses; a TORv3 / I2P address (`network_name`) is always valid."""
    net = network_name(host)
    if net in ("onion", "i2p"):
        return True
    ip = _parse_ip(host)
    return ip is not None and not (ip.is_unspecified or ip.is_multicast or ip.is_reserved)


@dataclass(frozen=True, slots=True)
class AddrInfo:
    """One address book entry (Core's `AddrInfo`)."""

    host: str
    port: int
    services: int = 0
    timestamp: float = 0.0       # last time a peer said it was seen (nTime)
    last_try: float = 0.0
    last_success: float = 0.0
    attempts: int = 0
    tried: bool = False

    @property
    def key(self) -> str:
        return addr_key(self.host, self.port)

    def is_terrible(self, now: float) -> bool:
        """Mirrors Core `AddrInfo::IsTerrible()`."""
        if self.last_try and self.last_try >= now - 60:
            return False  # never remove things tried in the last minute
        if self.timestamp > now + 600:
            return True  # came in a flying DeLorean
        if now - self.timestamp > HORIZON:
            return True
        if self.last_success == 0 and self.attempts >= MAX_RETRIES:
            return True
        if now - self.last_success > 7 * 24 * 3600 and self.attempts >= MAX_FAILURES:
            return True
        return False

    def chance(self, now: float) -> float:
        """Selection weight, Core's `AddrInfo::GetChance()`: recent failures make it less likely."""
        chance = 1.0
        if now - self.last_try < 600:
            chance *= 0.01
        return chance * 0.66 ** min(self.attempts, 8)


class AddrMan:
    """Bounded new/tried tables of peer addresses, optionally persisted to `path` (JSON)."""

    def __init__(self, path: Path | str | None = None, *, max_new: int = 1024 * 64, max_tried: int = 256 * 64,
                 allow_local: bool = False, now: Callable[[], float] = time.time,
                 rng: random.Random | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.max_new = max_new
        self.max_tried = max_tried
        self.allow_local = allow_local
        self._now = now
        self._rng = rng or random.Random()
        self._entries: dict[str, AddrInfo] = {}
        self._dirty = False
        if self.path is not None:
            self.load()

    # ------------------------------------------------------------------ queries
    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def get(self, host: str, port: int) -> AddrInfo | None:
        return self._entries.get(addr_key(host, port))

    def entries(self) -> list[AddrInfo]:
        return list(self._entries.values())

    @property
    def new_count(self) -> int:
        return sum(1 for e in self._entries.values() if not e.tried)

    @property
    def tried_count(self) -> int:
        return sum(1 for e in self._entries.values() if e.tried)

    def storable(self, host: str, port: int) -> bool:
        """Core `AddrMan::AddSingle`'s IsRoutable check (loopback / private allowed with
        `allow_local`), for any network."""
        if not (0 < port < 65536) or not _valid_host(host):
            return False
        return self.allow_local or not is_local_address(host)

    def acceptable(self, host: str, port: int) -> bool:
        """`storable` and of a reachable network (Core ProcessAddrs keeps only those; the
        dialer only selects those)."""
        return self.storable(host, port) and network_name(host) in REACHABLE_NETWORKS

    # ------------------------------------------------------------------ updates
    def add(self, host: str, port: int, services: int = 0, timestamp: float | None = None,
            penalty: float = 0.0) -> bool:
        """Add or refresh an address heard about (Core `AddrMan::AddSingle`). Returns True if
        new (Core logs "Added <addr> to new[bucket][position]"; tinynode has one table)."""
        if not self.storable(host, port):
            return False
        now = self._now()
        ts = now if timestamp is None else float(timestamp)
        if ts <= 100_000_000 or ts > now + 600:
            ts = now - 5 * 24 * 3600  # Core treats nonsense times as five days old
        ts = max(0.0, ts - penalty)
        key = addr_key(host, port)
        old = self._entries.get(key)
        if old is not None:
            if ts > old.timestamp or services & ~old.services:
                self._entries[key] = replace(old, timestamp=max(ts, old.timestamp),
                                             services=old.services | services)
                self._dirty = True
            return False
        self._make_room_new(now)
        self._entries[key] = AddrInfo(host, port, services, ts)
        self._dirty = True
        log.debug("Added %s to new", key)
        return True

    def add_many(self, addrs: Iterable[tuple[str, int, int, float]], penalty: float = 0.0,
                 source: str | None = None) -> int:
        """Core `AddrMan::Add`: add each, then log "Added N addresses (of M) from SOURCE: T
        tried, N new" when any was new. Returns how many were new."""
        addrs = list(addrs)
        added = sum(self.add(h, p, s, t, penalty) for h, p, s, t in addrs)
        if added:
            log.debug("Added %d addresses (of %d) from %s: %d tried, %d new", added, len(addrs),
                      source if source is not None else "local", self.tried_count, self.new_count)
        return added

    def attempt(self, host: str, port: int) -> None:
        """A connection attempt started (Core `AddrMan::Attempt`)."""
        key = addr_key(host, port)
        e = self._entries.get(key)
        if e is not None:
            self._entries[key] = replace(e, last_try=self._now(), attempts=e.attempts + 1)
            self._dirty = True

    def good(self, host: str, port: int, services: int | None = None) -> bool:
        """The handshake completed: move the entry to tried (Core `AddrMan::Good`). False if
        the address is not storable or was tried already."""
        if not self.storable(host, port):
            return False
        old = self._entries.get(addr_key(host, port))
        was_tried = old is not None and old.tried
        now = self._now()
        key = addr_key(host, port)
        e = self._entries.get(key) or AddrInfo(host, port, services or 0, now)
        if not e.tried:
            tried = [x for x in self._entries.values() if x.tried and x.key != key]
            if len(tried) >= self.max_tried:
                oldest = min(tried, key=lambda x: x.last_success)
                self._entries[oldest.key] = replace(oldest, tried=False)
        if key not in self._entries:
            self._make_room_new(now)
        self._entries[key] = replace(e, tried=True, last_success=now, last_try=now, attempts=0,
                                     timestamp=now,
                                     services=e.services if services is None else services)
        self._dirty = True
        return not was_tried

    def remove(self, host: str, port: int) -> None:
        if self._entries.pop(addr_key(host, port), None) is not None:
            self._dirty = True

    def _make_room_new(self, now: float) -> None:
        if len(self._entries) < self.max_new:
            return
        new = [e for e in self._entries.values() if not e.tried]
        if len(new) < self.max_new:
            return
        terrible = [e for e in new if e.is_terrible(now)]
        victim = terrible[0] if terrible else min(new, key=lambda e: e.timestamp)
        del self._entries[victim.key]

    # ------------------------------------------------------------------ selection
    def select(self, exclude: Callable[[str, int], bool] = lambda h, p: False) -> AddrInfo | None:
        """Pick an address to dial, weighted by `chance` (Core `AddrMan::Select`).

        Half the time from tried, half from new, as Core does without a preference."""
        now = self._now()
        candidates = [e for e in self._entries.values()
                      if network_name(e.host) in REACHABLE_NETWORKS and not exclude(e.host, e.port)]
        if not candidates:
            return None
        tried = [e for e in candidates if e.tried]
        new = [e for e in candidates if not e.tried]
        pool = tried if tried and (not new or self._rng.random() < 0.5) else new
        weights = [e.chance(now) for e in pool]
        return self._rng.choices(pool, weights=weights, k=1)[0]

    def get_addr(self, max_count: int = GETADDR_MAX, max_pct: int = GETADDR_MAX_PCT) -> list[AddrInfo]:
        """A random sample for a getaddr answer (Core `AddrMan::GetAddr`), terrible ones skipped."""
        now = self._now()
        good = [e for e in self._entries.values() if not e.is_terrible(now)]
        # Core's percentage cap (then max_count), but a small book is shared whole (a lab of a
        # few nodes).
        n = min(max_count, max(len(good) * max_pct // 100, min(len(good), 32)))
        return self._rng.sample(good, n)

    # ------------------------------------------------------------------ persistence
    def load(self) -> None:
        if self.path is None or not self.path.exists():
            return
        try:
            data = json.loads(self.path.read_text())
            entries = [AddrInfo(str(d["host"]), int(d["port"]), int(d.get("services", 0)),
                                float(d.get("timestamp", 0)), float(d.get("last_try", 0)),
                                float(d.get("last_success", 0)), int(d.get("attempts", 0)),
                                bool(d.get("tried", False))) for d in data.get("addrs", [])]
        except (OSError, ValueError, KeyError, TypeError) as e:
            log.warning("ignoring unreadable address book %s: %s", self.path, e)
            return
        for e in entries:
            if len(self._entries) >= self.max_new + self.max_tried:
                break
            if _valid_host(e.host) and 0 < e.port < 65536:
                self._entries[e.key] = e
        log.debug("loaded %d addresses from %s", len(self._entries), self.path)

    def save(self, force: bool = False) -> None:
        if self.path is None or not (self._dirty or force):
            return
        data = {"version": 1, "addrs": [
            {"host": e.host, "port": e.port, "services": e.services, "timestamp": e.timestamp,
             "last_try": e.last_try, "last_success": e.last_success, "attempts": e.attempts,
             "tried": e.tried} for e in self._entries.values()]}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, self.path)
        self._dirty = False
