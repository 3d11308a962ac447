"""The connection manager: listener, dialer, limits, bans, addr gossip (Core `CConnman`, btcd connmgr).

`ConnMan` owns the peer set. `start()` opens the listener (`asyncio.start_server`) and one
supervising task whose `TaskGroup` holds the dialer loop, the addr ticker and every peer's task,
so `stop()` tears everything down in order (listener → peers → supervisor) and no task outlives
it.

Outbound connections come from three places:

* **seeds** (`--peers` / `TC_PEERS`, entries `host[:port]` with the network's default port) and
  `addnode` targets are persistent: a host name resolving to several addresses yields one target
  each (docker compose `--scale`), and a lost target is redialled with exponential backoff
  (`reconnect_min` … `reconnect_max`);
* the **address book** fills the remaining slots up to `max_outbound` (Core's 8 full-relay
  outbound connections).

Inbound connections are refused while the network is inactive and from banned or denied
addresses. At `max_inbound` a newcomer takes the place of an inbound peer chosen by
`select_node_to_evict` (Core's eviction: peers with the lowest ping, that recently gave us a
novel tx or block, and the longest connected are protected; the youngest of the largest network
group goes), and is refused if all are protected. There is at most one connection per
address:port we dial.

Misbehaviour follows Core's `MaybeDiscourageAndDisconnect` (in `Peer.misbehaving`): a `noban`
peer is never punished, a loopback peer is disconnected but never banned — a lab runs many
nodes on 127.0.0.1, and a ban of the IP would cut off every honest neighbour, while a ban of
the ephemeral source port is worthless — and any other peer is banned: by address:port for a
private address, by IP otherwise (Core discourages the IP; `clearbanned` lifts all of them).
`setban` still bans whatever it is told to, loopback included. The `deny`/`allow` list is a lab
tool: it cuts a node off from chosen neighbours to build a partition and heals it again.

Permissions (Core `-whitelist` / `-whitebind`, `net.permissions`): every `whitebind` entry is one
more listener whose inbound peers get its permissions; `whitelist` ranges add theirs to inbound
peers (and to outbound ones for `out` ranges) whose address they hold. `noban` peers connect
even when banned and are never chosen for eviction; `addr` peers skip the addr rate limit.

Connection types (Core `ConnectionType`, getpeerinfo's `connection_type`): inbound; manual (seeds
and addnode targets); outbound-full-relay (address-book picks); and, opened by the test-only
`addconnection` RPC (`add_connection`), block-relay-only (no tx or addr relay), addr-fetch (closed
after an answer) and feeler (closed after the version).

Address gossip (Core `ProcessMessage` ADDR/GETADDR, `ProcessAddrs`): addr relay with a peer is
turned on lazily — when an inbound peer sends addr or getaddr, or when we send getaddr to an
outbound peer — and never with a block-relay-only one; then our listening address is announced.
Inbound peers' `getaddr` is answered once per connection from the address book, outbound ones'
never; small fresh `addr` messages are relayed to two other peers chosen per address and day,
each address at most once per peer. Every peer has an addr token bucket (Core's 0.1 address/s, at
most 1000, +1000 for the answer to our getaddr): addresses beyond it are dropped and counted in
getpeerinfo's `addr_rate_limited`. `process_addrs` takes decoded entries, so `addr` and `addrv2`
share it; `_send_addrs` is the one place outgoing address messages are built.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import logging
import math
import os
import random
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from tinynode.params import ChainParams
from tinynode.wire import messages as m
from tinynode.wire.constants import MAX_ADDR

from .addrman import AddrMan, addr_key, is_local_address, net_group
from .peer import ConnectionType, Misbehaving, NetConfig, Peer
from .permissions import (NetPermissionFlags, WhitebindEntry, WhitelistEntry, permission_names,
                          whitelist_permissions)

log = logging.getLogger(__name__)

__all__ = ["ConnMan", "EvictionCandidate", "parse_peer_entry", "select_node_to_evict"]

#: Addresses remembered per peer so gossip is not echoed back (Core's m_addr_known, bounded).
MAX_ADDR_KNOWN = 5_000
#: Core net_processing: addr token bucket refill rate and cap (a getaddr we send adds MAX_ADDR).
MAX_ADDR_RATE_PER_SECOND = 0.1
MAX_ADDR_PROCESSING_TOKEN_BUCKET = MAX_ADDR
#: Core net_processing MAX_ADDR_TO_SEND / MAX_PCT_ADDR_TO_SEND: a getaddr answer's size caps.
MAX_ADDR_TO_SEND = MAX_ADDR
MAX_PCT_ADDR_TO_SEND = 23
#: Core ROTATE_ADDR_RELAY_DEST_INTERVAL: RelayAddress picks the same peers for a day.
ROTATE_ADDR_RELAY_DEST_INTERVAL = 24 * 3600
#: Core CConnman::GetAddresses: a cached getaddr answer lives 21 h plus up to 6 h.
ADDR_CACHE_LIFETIME = 21 * 3600
ADDR_CACHE_JITTER = 6 * 3600
#: Core ProcessMessage(ADDR): only addresses this fresh, from messages this small, are relayed.
ADDR_RELAY_MAX_AGE = 600
ADDR_RELAY_MAX_COUNT = 10
#: Core MAX_BLOCK_RELAY_ONLY_CONNECTIONS and MAX_FEELER_CONNECTIONS: with the full-relay ones
#: they make Core's automatic outbound limit (semOutbound).
MAX_OUTBOUND_FULL_RELAY_CONNECTIONS = 8
MAX_BLOCK_RELAY_ONLY_CONNECTIONS = 2
MAX_FEELER_CONNECTIONS = 1
#: Core AVG_ADDRESS_BROADCAST_INTERVAL × 10: an addr-fetch connection that got no answer by
#: then is closed (SendMessages).
ADDR_FETCH_TIMEOUT = 10 * 30
#: Core service bits: an address is kept only if it may serve blocks or addresses
#: (MayHaveUsefulAddressDB: NODE_NETWORK or NODE_NETWORK_LIMITED).
_NODE_NETWORK = 1
_NODE_NETWORK_LIMITED = 1 << 10
#: Ban-list key prefix of the inbound-only IP bans earlier versions escalated local bans to;
#: such keys are dropped when a ban list is read.
OLD_INBOUND_BAN_PREFIX = "inbound:"


def parse_peer_entry(entry: str, default_port: int) -> tuple[str, int]:
    """`host`, `host:port`, `[v6]`, `[v6]:port` → (host, port)."""
    entry = entry.strip()
    if not entry:
        raise ValueError("empty peer entry")
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") else default_port
    elif entry.count(":") == 1:
        host, _, p = entry.partition(":")
        port = int(p)
    else:
        host, port = entry, default_port
    if not host or not (0 < port < 65536):
        raise ValueError(f"bad peer entry {entry!r}")
    return host, port


@dataclass(frozen=True, slots=True)
class EvictionCandidate:
    """What eviction knows of one inbound peer (Core `NodeEvictionCandidate`, trimmed)."""

    peer_id: int
    connected: float          # when the connection was made (Core m_connected)
    min_ping: float           # lowest ping round trip, math.inf before the first pong
    last_block_time: float    # last novel block from the peer, 0 if none
    last_tx_time: float       # last novel tx from the peer, 0 if none
    net_group: str            # Core nKeyedNetGroup (`addrman.net_group`)


def _erase_last_k(candidates: list[EvictionCandidate], key: Callable[[EvictionCandidate], Any],
                  k: int) -> list[EvictionCandidate]:
    """Core `EraseLastKElements`: sort by `key` and drop (protect) the last `k`."""
    ordered = sorted(candidates, key=key)
    return ordered[:len(ordered) - min(k, len(ordered))]


def select_node_to_evict(candidates: Iterable[EvictionCandidate]) -> int | None:
    """Mirrors Bitcoin Core `SelectNodeToEvict()` (node/eviction.cpp): the id of the inbound peer
    to disconnect for a newcomer, or None if every candidate is protected.

    Protected, in Core's order: the 4 with the lowest minimum ping, the 4 that most recently sent
    us a novel tx, the 4 that most recently sent us a novel block, then half of the rest by
    longest connection. Of the remaining, the network group with the most connections (ties: the
    one with the youngest member) loses its youngest peer. Ties in a rule go to the longer
    connected peer (Core leaves them to its sort), so the choice is deterministic."""
    def age(n: EvictionCandidate) -> tuple[float, int]:   # younger first, older protected
        return (-n.connected, -n.peer_id)

    c = list(candidates)
    c = _erase_last_k(c, lambda n: (-n.min_ping, *age(n)), 4)        # ReverseCompareNodeMinPingTime
    c = _erase_last_k(c, lambda n: (n.last_tx_time, *age(n)), 4)     # CompareNodeTXTime
    c = _erase_last_k(c, lambda n: (n.last_block_time, *age(n)), 4)  # CompareNodeBlockTime
    c = _erase_last_k(c, age, len(c) // 2)                           # ReverseCompareNodeTimeConnected
    if not c:
        return None
    groups: dict[str, list[EvictionCandidate]] = {}
    most: str = c[0].net_group
    most_size, most_time = 0, 0.0
    for n in c:                   # youngest first, so each group's [0] is its youngest
        group = groups.setdefault(n.net_group, [])
        group.append(n)
        if len(group) > most_size or (len(group) == most_size and group[0].connected > most_time):
            most, most_size, most_time = n.net_group, len(group), group[0].connected
    return groups[most][0].peer_id


class _Target:
    """A persistent outbound target (seed or addnode) and its reconnect backoff."""

    __slots__ = ("entry", "next_try", "delay", "onetry")

    def __init__(self, entry: str, onetry: bool = False) -> None:
        self.entry = entry
        self.next_try = 0.0
        self.delay = 0.0
        self.onetry = onetry


class ConnMan:
    """Listener + dialer + peer set of one node."""

    def __init__(self, params: ChainParams, config: NetConfig | None = None, *,
                 handlers: Sequence[Any] = (), addrman: AddrMan | None = None,
                 listen: bool = True, bind_host: str = "127.0.0.1", bind_port: int = 0,
                 seeds: Sequence[str] = (), start_height: Callable[[], int] = lambda: 0,
                 datadir: Path | str | None = None, dial: bool = True,
                 whitelist: Sequence[WhitelistEntry] = (),
                 whitebind: Sequence[WhitebindEntry] = (),
                 binds: Sequence[Any] = (),
                 clock: Callable[[], float] = time.time) -> None:
        self.params = params
        self.clock = clock   # the node's clock (tinynode.clock.NodeClock): bans, addr, peers' times
        self.config = config or NetConfig()
        self.handlers: list[Any] = list(handlers)
        self.listen = listen
        self.bind_host = bind_host
        self.bind_port = bind_port
        self.datadir = Path(datadir) if datadir is not None else None
        local = is_local_address(bind_host) or bind_host in ("", "0.0.0.0", "::")
        if addrman is None:
            path = self.datadir / "peers.json" if self.datadir is not None else None
            addrman = AddrMan(path, allow_local=local, now=clock)
        elif local:
            addrman.allow_local = True
        self.addrman = addrman
        self.dial_enabled = dial
        self.whitelist: tuple[WhitelistEntry, ...] = tuple(whitelist)
        self.whitebind: tuple[WhitebindEntry, ...] = tuple(whitebind)
        self._white_servers: list[asyncio.base_events.Server] = []
        self.whitebind_ports: list[int] = []            # the bound ports, in `whitebind` order
        # Core's other -bind listeners (objects with host, port, onion: config.BindEntry)
        self.binds: tuple[Any, ...] = tuple(binds)
        self.bind_ports: list[int] = []                 # the bound ports, in `binds` order
        self._start_height = start_height
        self._targets: dict[str, _Target] = {e: _Target(e) for e in seeds}
        self._peers: dict[int, Peer] = {}
        self._pending: set[tuple[str, int]] = set()
        self._pending_types: dict[tuple[str, int], str] = {}   # dial in progress -> its ConnectionType
        self._backoff: dict[tuple[str, int], tuple[float, float]] = {}   # addr -> (next_try, delay)
        self._nonces: set[int] = set()
        self._self_addrs: set[tuple[str, int]] = set()
        self._bans: dict[str, tuple[float, str]] = {}                    # key -> (until, reason)
        self._denied: set[str] = set()
        self._addr_known: dict[int, OrderedDict] = {}
        # Core CConnman::m_addr_response_caches: (network, local ip, local port) -> (expiry, addrs)
        self._addr_response_caches: dict[tuple[str, str, int], tuple[float, list]] = {}
        self._relay_salt = os.urandom(16)   # Core GetDeterministicRandomizer(RANDOMIZER_ID_ADDRESS_RELAY)
        self._ids = itertools.count(0)      # Core's NodeIds start at 0 (log lines say peer=0)
        # Core CConnman::nTotalBytesRecv / nTotalBytesSent: the bytes of closed connections
        # (getnettotals adds the open ones')
        self.closed_bytes_recv = 0
        self.closed_bytes_sent = 0
        self._rng = random.Random()
        self._server: asyncio.base_events.Server | None = None
        self._tg: asyncio.TaskGroup | None = None
        self._supervisor: asyncio.Task | None = None
        self._wake = asyncio.Event()
        self._ready = asyncio.Event()
        self.network_active = True
        self.port = 0
        self._load_bans()

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        if self.listen:
            self._server = await asyncio.start_server(self._on_inbound, self.bind_host, self.bind_port)
            self.port = self._server.sockets[0].getsockname()[1]
            self._self_addrs.add((self.bind_host, self.port))
            log.info("listening on %s", addr_key(self.bind_host, self.port))
        try:
            for wb in self.whitebind:
                server = await asyncio.start_server(
                    lambda r, w, flags=wb.flags: self._on_inbound(r, w, flags), wb.host, wb.port)
                self._white_servers.append(server)
                self.whitebind_ports.append(server.sockets[0].getsockname()[1])
                log.info("listening on %s with permissions %s", addr_key(wb.host, wb.port),
                         ",".join(permission_names(wb.flags)) or "none")
            for b in self.binds:
                server = await asyncio.start_server(
                    lambda r, w, onion=bool(b.onion): self._on_inbound(r, w, onion=onion), b.host, b.port)
                self._white_servers.append(server)
                self.bind_ports.append(server.sockets[0].getsockname()[1])
                log.info("Bound to %s%s", addr_key(b.host, self.bind_ports[-1]), " (onion)" if b.onion else "")
        except OSError:
            self._close_servers()
            raise
        self._supervisor = asyncio.create_task(self._supervise(), name="connman")
        await self._ready.wait()

    def _close_servers(self) -> None:
        for server in [self._server, *self._white_servers]:
            if server is not None:
                server.close()

    async def stop(self) -> None:
        self._close_servers()
        for p in list(self._peers.values()):
            p.disconnect("shutting down")
        if self._supervisor is not None:
            self._supervisor.cancel()
            try:
                await self._supervisor
            except asyncio.CancelledError:
                pass
            self._supervisor = None
        for server in [self._server, *self._white_servers]:
            if server is not None:
                try:
                    async with asyncio.timeout(2):
                        await server.wait_closed()
                except TimeoutError:
                    pass
        self._server = None
        self._white_servers = []
        self.addrman.save()
        self._save_bans()

    async def __aenter__(self) -> "ConnMan":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _supervise(self) -> None:
        async with asyncio.TaskGroup() as tg:
            self._tg = tg
            tg.create_task(self._dial_loop(), name="connman-dialer")
            tg.create_task(self._addr_loop(), name="connman-addr")
            tg.create_task(self._addr_send_loop(), name="connman-addr-send")
            self._ready.set()
        self._tg = None

    def add_handler(self, handler: Any) -> None:
        """Message handlers (objects with `on_<command>` and optional `peer_connected`/
        `peer_disconnected`); connman's own addr handling comes first."""
        self.handlers.append(handler)

    # ------------------------------------------------------------------ PeerHost
    def new_nonce(self) -> int:
        nonce = self._rng.getrandbits(64) or 1
        self._nonces.add(nonce)
        return nonce

    def is_local_nonce(self, nonce: int) -> bool:
        return nonce in self._nonces

    def forget_nonce(self, nonce: int) -> None:
        self._nonces.discard(nonce)

    def start_height(self) -> int:
        try:
            return int(self._start_height())
        except Exception:
            return 0

    def local_address(self) -> tuple[str, int] | None:
        if not self.listen or not self.port:
            return None
        return (self.bind_host, self.port)

    def _advertised_address(self, peer: Peer) -> tuple[str, int] | None:
        """Our listening address as `peer` can reach it (the socket's own IP if bound to any)."""
        if not self.listen or not self.port:
            return None
        host = self.bind_host
        if host in ("", "0.0.0.0", "::"):
            sock = peer._writer.get_extra_info("sockname")
            if not sock:
                return None
            host = sock[0]
        return (host, self.port)

    async def peer_ready(self, peer: Peer) -> None:
        if self._is_denied(peer) or (peer.listen_addr and self.is_banned(*peer.listen_addr)
                                     and not peer.has_permission(NetPermissionFlags.NOBAN)):
            peer.disconnect("denied or banned")
            return
        if not peer.inbound:
            self._backoff.pop(peer.addr, None)
            self.addrman.good(peer.addr[0], peer.addr[1], peer.services)
            for tgt in self._targets.values():
                tgt.delay = 0.0
        self._addr_known.setdefault(peer.id, OrderedDict())
        if not peer.inbound and self.setup_address_relay(peer):
            # Core ProcessMessage(VERSION) for an outbound peer that is not block-relay-only:
            # SetupAddressRelay, advertise ourselves, ask for addresses and accept a full answer
            # beyond the bucket's cap.
            peer.send(m.GetAddr())
            peer.getaddr_sent = True
            peer.addr_token_bucket += MAX_ADDR_TO_SEND
        for h in self.handlers:
            fn = getattr(h, "peer_connected", None)
            if fn is not None:
                try:
                    r = fn(peer)
                    if asyncio.iscoroutine(r):
                        await r
                except Exception:
                    log.exception("peer_connected hook failed")

    def peer_closed(self, peer: Peer) -> None:
        if self._peers.pop(peer.id, None) is not None:
            self.closed_bytes_recv += peer.bytes_recv
            self.closed_bytes_sent += peer.bytes_sent
        self._addr_known.pop(peer.id, None)
        if peer.conn_type == ConnectionType.FEELER and peer.version_received:
            # Core ProcessMessage(VERSION): Good() for every outbound peer, a feeler included
            self.addrman.good(peer.addr[0], peer.addr[1], peer.services)
        if peer.disconnect_reason == "connected to self" and not peer.inbound:
            self._self_addrs.add(peer.addr)
            self.addrman.remove(*peer.addr)
        if peer.handshake_done.is_set():
            for h in self.handlers:
                fn = getattr(h, "peer_disconnected", None)
                if fn is not None:
                    try:
                        fn(peer)
                    except Exception:
                        log.exception("peer_disconnected hook failed")
        self._wake.set()

    def peer_banned(self, peer: Peer, reason: str) -> None:
        """Ban a misbehaving peer (`Peer.misbehaving` never calls this for noban or loopback
        peers): a private address by address:port, any other by IP."""
        host, port = peer.listen_addr if peer.listen_addr else peer.addr
        local = is_local_address(host)
        self.ban(host, port if local else None, self.config.ban_time, reason)

    # ------------------------------------------------------------------ peers
    def connected_peers(self) -> list[Peer]:
        """Peers that completed the handshake."""
        return [p for p in self._peers.values() if p.handshake_done.is_set() and p.is_connected]

    def all_peers(self) -> list[Peer]:
        return list(self._peers.values())

    def get_peer(self, peer_id: int) -> Peer | None:
        return self._peers.get(peer_id)

    def peers(self) -> list[dict]:
        """getpeerinfo rows."""
        return [p.info() for p in sorted(self.connected_peers(), key=lambda p: p.id)]

    @property
    def inbound_count(self) -> int:
        return sum(1 for p in self._peers.values() if p.inbound)

    @property
    def outbound_count(self) -> int:
        return sum(1 for p in self._peers.values() if not p.inbound) + len(self._pending)

    def _connected_to(self, host: str, port: int) -> bool:
        a = (host, port)
        if a in self._pending:
            return True
        return any(p.addr == a or p.listen_addr == a for p in self._peers.values())

    def disconnect(self, address: str | None = None, peer_id: int | None = None) -> bool:
        """RPC disconnectnode: by "host:port" or by id."""
        hit = False
        for p in list(self._peers.values()):
            if (peer_id is not None and p.id == peer_id) or (
                    address is not None and address in (p.addr_str, _key(p.listen_addr))):
                p.disconnect("disconnectnode")
                hit = True
        return hit

    def set_network_active(self, active: bool) -> None:
        """RPC setnetworkactive: off disconnects everyone and stops dialing and accepting."""
        self.network_active = active
        if not active:
            for p in list(self._peers.values()):
                p.disconnect("network disabled")
        self._wake.set()

    # ------------------------------------------------------------------ addnode / seeds
    def addnode(self, entry: str, command: str = "add") -> None:
        """RPC addnode: add / remove a persistent target, or onetry a single dial."""
        parse_peer_entry(entry, self.params.default_port)  # validate
        if command == "add":
            self._targets.setdefault(entry, _Target(entry))
        elif command == "remove":
            if self._targets.pop(entry, None) is None:
                raise KeyError(entry)
        elif command == "onetry":
            self._targets.setdefault(entry, _Target(entry, onetry=True))
        else:
            raise ValueError(f"unknown addnode command {command!r}")
        self._wake.set()

    def added_nodes(self) -> list[str]:
        return [t.entry for t in self._targets.values() if not t.onetry]

    async def connect(self, host: str, port: int, timeout: float | None = None) -> Peer | None:
        """Dial once and wait for the handshake (tests, addnode onetry)."""
        if self._tg is None:
            raise RuntimeError("ConnMan not started")
        if (not self.network_active or self.is_banned(host, port)
                or addr_key(host, port) in self._denied):
            return None
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        self._spawn_dial(host, port, fut)
        peer = await fut
        if peer is None:
            return None
        ok = await peer.wait_ready(timeout or self.config.handshake_timeout)
        return peer if ok else None

    def connection_count(self, conn_type: str) -> int:
        """Connections (and dials in progress) of one `ConnectionType`."""
        return (sum(1 for p in self._peers.values() if p.conn_type == conn_type and p.is_connected)
                + sum(1 for t in self._pending_types.values() if t == conn_type))

    def add_connection(self, address: str, conn_type: str) -> bool:
        """Mirrors Core `CConnman::AddConnection()` (the `addconnection` RPC): open one outbound
        connection of `conn_type` to "host:port" unless that type is at its limit (8
        outbound-full-relay, 2 block-relay-only; addr-fetch and feeler have none) or all
        automatic outbound slots (full-relay + block-relay-only + feeler) are taken. The limits
        are Core's constants: `-connect=0` (no dialling from the address book) does not lower
        them, as in Core. The dial
        runs in the background, as Core's OpenNetworkConnection; an address we are already
        connected to is not dialled again."""
        if conn_type not in ConnectionType.ADDABLE:
            return False
        limits = {ConnectionType.OUTBOUND_FULL_RELAY: MAX_OUTBOUND_FULL_RELAY_CONNECTIONS,
                  ConnectionType.BLOCK_RELAY: MAX_BLOCK_RELAY_ONLY_CONNECTIONS}
        limit = limits.get(conn_type)
        if limit is not None and self.connection_count(conn_type) >= limit:
            return False
        automatic = sum(self.connection_count(t) for t in ConnectionType.ADDABLE)
        if automatic >= (MAX_OUTBOUND_FULL_RELAY_CONNECTIONS + MAX_BLOCK_RELAY_ONLY_CONNECTIONS
                         + MAX_FEELER_CONNECTIONS):
            return False
        if self._tg is None:
            return False
        host, port = parse_peer_entry(address, self.params.default_port)
        if self._connected_to(host, port):
            log.debug("not dialling %s: already connected", addr_key(host, port))
            return True
        self._spawn_dial(host, port, conn_type=conn_type)
        return True

    # ------------------------------------------------------------------ bans / deny
    @staticmethod
    def _ban_key(host: str, port: int | None) -> str:
        return host if port is None else addr_key(host, port)

    def ban(self, host: str, port: int | None = None, duration: float | None = None,
            reason: str = "manually added") -> None:
        until = self.clock() + (self.config.ban_time if duration is None else duration)
        key = self._ban_key(host, port)
        self._bans[key] = (until, reason)
        # the end of the ban as a full UTC date and time (Core FormatISO8601DateTime): a ban
        # usually lasts 24 h, so a bare clock time would name the wrong day
        log.warning("banned %s until %s: %s", key,
                    time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(until)), reason)
        for p in list(self._peers.values()):
            if self._peer_banned(p):
                p.disconnect(f"banned: {reason}")
        self._save_bans()

    def unban(self, host: str, port: int | None = None) -> bool:
        """setban remove: the ban of `host[:port]`."""
        ok = self._bans.pop(self._ban_key(host, port), None) is not None
        self._save_bans()
        return ok

    def clear_banned(self) -> None:
        self._bans.clear()
        self._save_bans()

    def list_banned(self) -> list[dict]:
        """listbanned rows."""
        now = self.clock()
        return [{"address": k, "banned_until": int(u), "ban_created": None, "reason": r}
                for k, (u, r) in self._bans.items() if u > now]

    def is_banned(self, host: str, port: int | None = None) -> bool:
        now = self.clock()
        keys = [host] + ([addr_key(host, port)] if port is not None else [])
        for k in keys:
            v = self._bans.get(k)
            if v is not None:
                if v[0] > now:
                    return True
                del self._bans[k]
        return False

    def _peer_banned(self, p: Peer) -> bool:
        """`setban` disconnects a matching peer even if noban (Core DisconnectNode(subnet))."""
        return self.is_banned(*p.addr) or (p.listen_addr is not None and self.is_banned(*p.listen_addr))

    def deny(self, addr_port: str) -> None:
        """Lab partitions: never talk to `host:port` (a node's listening address) until `allow`."""
        self._denied.add(addr_port)
        for p in list(self._peers.values()):
            if self._is_denied(p):
                p.disconnect("denied")

    def denied(self) -> list[str]:
        """The deny-list, sorted (RPC listdeniedpeers)."""
        return sorted(self._denied)

    def allow(self, addr_port: str) -> None:
        self._denied.discard(addr_port)
        self._wake.set()

    def _is_denied(self, p: Peer) -> bool:
        return p.addr_str in self._denied or _key(p.listen_addr) in self._denied

    def _load_bans(self) -> None:
        if self.datadir is None:
            return
        path = self.datadir / "banlist.json"
        try:
            data = json.loads(path.read_text())
            bans = {str(k): (float(v[0]), str(v[1])) for k, v in data.items()}
        except FileNotFoundError:
            return
        except (OSError, ValueError, TypeError, IndexError, AttributeError) as e:
            log.warning("ignoring unreadable ban list %s: %s", path, e)
            return
        old = sorted(k for k in bans if k.startswith(OLD_INBOUND_BAN_PREFIX))
        for k in old:
            del bans[k]
        if old:
            log.info("dropping %s from the ban list %s: local peers are disconnected for "
                     "misbehaviour, never banned wholesale", ", ".join(old), path)
        self._bans = bans

    def _save_bans(self) -> None:
        if self.datadir is None:
            return
        self.datadir.mkdir(parents=True, exist_ok=True)
        path = self.datadir / "banlist.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({k: list(v) for k, v in self._bans.items()}))
        os.replace(tmp, path)

    # ------------------------------------------------------------------ inbound
    async def _on_inbound(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                          bind_flags: NetPermissionFlags = NetPermissionFlags.NONE,
                          onion: bool = False) -> None:
        """Core `CConnman::CreateNodeFromAcceptedSocket()`: the listener's permissions plus the
        whitelist's; a noban peer is let in though banned. A peer accepted on an `=onion` bind
        is an inbound onion peer (Core `inbound_onion`): its network is "onion"."""
        peername = writer.get_extra_info("peername")
        host, port = peername[0], peername[1]
        flags = whitelist_permissions(self.whitelist, host, True, bind_flags)
        why = None
        if not self.network_active:
            why = "network inactive"
        elif self.is_banned(host, port) and NetPermissionFlags.NOBAN not in flags:
            why = "banned"
        elif addr_key(host, port) in self._denied:
            why = "denied"
        elif self._live_inbound() >= self.config.max_inbound and not self.attempt_to_evict_connection():
            why = "inbound limit reached"
        elif self._tg is None:
            why = "shutting down"
        if why == "banned":   # Core CConnman::CreateNodeFromAcceptedSocket's wording
            log.debug("connection from %s dropped (banned)", addr_key(host, port))
        elif why is not None:
            log.debug("refusing inbound %s: %s", addr_key(host, port), why)
        if why is not None:
            writer.transport.abort()
            return
        peer = self._new_peer(reader, writer, inbound=True, addr=(host, port), permissions=flags)
        peer.inbound_onion = onion
        self._tg.create_task(peer.run(), name=f"peer-{peer.id}")

    def _live_inbound(self) -> int:
        return sum(1 for p in self._peers.values() if p.inbound and p.is_connected)

    def attempt_to_evict_connection(self) -> bool:
        """Mirrors Core `CConnman::AttemptToEvictConnection()`: disconnect the inbound peer
        `select_node_to_evict` picks; False if all of them are protected. Noban peers are never
        candidates (Core skips them)."""
        victim = select_node_to_evict(
            EvictionCandidate(p.id, p.conn_time, math.inf if p.min_ping is None else p.min_ping,
                              p.last_block_time, p.last_tx_time, net_group(p.addr[0]))
            for p in self._peers.values() if p.inbound and p.is_connected
            and not p.has_permission(NetPermissionFlags.NOBAN))
        if victim is None:
            return False
        peer = self._peers[victim]
        log.info("evicting peer %d (%s) to make room for an inbound connection", peer.id, peer.addr_str)
        peer.disconnect("evicted for an inbound connection")
        return True

    def _new_peer(self, reader, writer, *, inbound: bool, addr: tuple[str, int],
                  listen_addr: tuple[str, int] | None = None,
                  permissions: NetPermissionFlags | None = None,
                  conn_type: str | None = None) -> Peer:
        if permissions is None:
            permissions = whitelist_permissions(self.whitelist, addr[0], inbound)
        peer = Peer(reader, writer, params=self.params, config=self.config, host=self,
                    handlers=[self, *self.handlers], inbound=inbound, peer_id=next(self._ids),
                    addr=addr, listen_addr=listen_addr, permissions=permissions, clock=self.clock,
                    conn_type=conn_type)
        self._peers[peer.id] = peer
        return peer

    # ------------------------------------------------------------------ outbound
    def _spawn_dial(self, host: str, port: int, fut: asyncio.Future | None = None,
                    conn_type: str = ConnectionType.MANUAL) -> None:
        assert self._tg is not None
        self._pending.add((host, port))   # before the task runs: no duplicate dials this round
        self._pending_types[(host, port)] = conn_type
        self._tg.create_task(self._dial(host, port, fut, conn_type), name=f"dial-{addr_key(host, port)}")

    async def _dial(self, host: str, port: int, fut: asyncio.Future | None = None,
                    conn_type: str = ConnectionType.MANUAL) -> None:
        key = (host, port)
        self.addrman.attempt(host, port)
        try:
            try:
                async with asyncio.timeout(self.config.connect_timeout):
                    reader, writer = await asyncio.open_connection(host, port)
            except (OSError, TimeoutError) as e:
                log.debug("dial %s failed: %s", addr_key(host, port), e)
                self._note_failure(key)
                if fut is not None and not fut.done():
                    fut.set_result(None)
                return
        finally:
            self._pending.discard(key)
            self._pending_types.pop(key, None)
        peer = self._new_peer(reader, writer, inbound=False, addr=key, listen_addr=key,
                              conn_type=conn_type)
        if fut is not None and not fut.done():
            fut.set_result(peer)
        await peer.run()
        if not peer.handshake_done.is_set():
            self._note_failure(key)

    def _note_failure(self, key: tuple[str, int]) -> None:
        _, delay = self._backoff.get(key, (0.0, 0.0))
        delay = min(self.config.reconnect_max, max(self.config.reconnect_min, delay * 2))
        self._backoff[key] = (time.monotonic() + delay, delay)

    def _due(self, key: tuple[str, int]) -> bool:
        nt, _ = self._backoff.get(key, (0.0, 0.0))
        return time.monotonic() >= nt

    def _dialable(self, host: str, port: int) -> bool:
        return not (self._connected_to(host, port) or (host, port) in self._self_addrs
                    or self.is_banned(host, port) or addr_key(host, port) in self._denied)

    async def _resolve(self, entry: str) -> list[tuple[str, int]]:
        host, port = parse_peer_entry(entry, self.params.default_port)
        try:
            async with asyncio.timeout(self.config.connect_timeout):
                infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=1)  # SOCK_STREAM
        except (OSError, TimeoutError) as e:
            log.debug("cannot resolve %s: %s", entry, e)
            return []
        out: list[tuple[str, int]] = []
        for info in infos:
            a = (info[4][0], info[4][1])
            if a not in out:
                out.append(a)
        return out

    async def _dial_loop(self) -> None:
        cfg = self.config
        while True:
            if self.network_active and self.dial_enabled and self._tg is not None:
                for tgt in list(self._targets.values()):
                    if tgt.onetry:
                        self._targets.pop(tgt.entry, None)
                    elif time.monotonic() < tgt.next_try:
                        continue
                    addrs = await self._resolve(tgt.entry)
                    if not addrs:
                        tgt.delay = min(cfg.reconnect_max, max(cfg.reconnect_min, tgt.delay * 2))
                        tgt.next_try = time.monotonic() + tgt.delay
                        continue
                    for host, port in addrs:
                        if self._dialable(host, port) and self._due((host, port)):
                            self._spawn_dial(host, port)
                # Fill the rest of the outbound slots from the address book.
                tries = 0
                while self.outbound_count < cfg.max_outbound and tries < 10:
                    tries += 1
                    info = self.addrman.select(
                        exclude=lambda h, p: not (self._dialable(h, p) and self._due((h, p))))
                    if info is None:
                        break
                    self._spawn_dial(info.host, info.port, conn_type=ConnectionType.OUTBOUND_FULL_RELAY)
            self._wake.clear()
            try:
                async with asyncio.timeout(cfg.dial_interval):
                    await self._wake.wait()
            except TimeoutError:
                pass

    # ------------------------------------------------------------------ addr gossip
    async def _addr_loop(self) -> None:
        """Periodically re-advertise ourselves and save the book (Core's 24h self-advertisement)."""
        while True:
            await asyncio.sleep(self.config.addr_interval)
            for p in self.connected_peers():
                own = self._self_announcement(p)
                if own is not None:
                    self._send_addrs(p, [own], force=True)
            self.addrman.save()

    async def _addr_send_loop(self) -> None:
        """Core SendMessages' addr part for every peer, a few times a second: an addr-fetch
        connection older than ADDR_FETCH_TIMEOUT is closed, then MaybeSendAddr."""
        while True:
            await asyncio.sleep(min(0.1, self.config.relay_tick))
            now = self.clock()
            for p in self.connected_peers():
                if p.conn_type == ConnectionType.ADDR_FETCH and now - p.conn_time > ADDR_FETCH_TIMEOUT:
                    log.debug("addrfetch connection timeout, disconnecting peer=%d", p.id)
                    p.disconnect("addrfetch connection timeout")
                    continue
                self.maybe_send_addr(p)

    def _self_announcement(self, peer: Peer) -> tuple[str, int, int, int] | None:
        """Our listening address for `peer` (Core GetLocalAddrForPeer), if worth telling: Core
        announces only routable addresses; tinynode also tells a loopback/private one to a peer
        that itself announced a listening address in its version (a lab neighbour), never to
        one that did not (a test harness or Core node, which would not use it)."""
        if not peer.addr_relay_enabled:
            return None
        own = self._advertised_address(peer)
        if own is None or not self.addrman.acceptable(*own):
            return None
        if is_local_address(own[0]) and peer.their_addr_from is None:
            return None
        return (own[0], own[1], self.config.local_services, int(self.clock()))

    def setup_address_relay(self, peer: Peer) -> bool:
        """Core `PeerManagerImpl::SetupAddressRelay`: turn addr relay on for `peer` (once) and
        say whether it is on. Never for a block-relay-only peer (False): addr traffic would
        reveal the link. The first time, our own address goes out in its own message (Core's
        initial self-announcement)."""
        if peer.is_block_only:
            return False
        if peer.addr_relay_enabled:
            return True
        peer.addr_relay_enabled = True
        self._addr_known.setdefault(peer.id, OrderedDict())
        own = self._self_announcement(peer)
        if own is not None:
            self._send_addrs(peer, [own])
        return True

    def push_address(self, peer: Peer, addr: tuple[str, int, int, int]) -> None:
        """Core `PushAddress`: queue for the next addr trickle unless the peer knows it; a full
        queue has a random entry replaced."""
        known = self._addr_known.get(peer.id)
        if known is not None and addr_key(addr[0], addr[1]) in known:
            return
        if len(peer.addrs_to_send) >= MAX_ADDR_TO_SEND:
            peer.addrs_to_send[self._rng.randrange(len(peer.addrs_to_send))] = addr
        else:
            peer.addrs_to_send.append(addr)

    def maybe_send_addr(self, peer: Peer) -> None:
        """Core `MaybeSendAddr`: at `next_addr_send` (on the node's clock, so setmocktime moves
        it) send the queued addresses the peer does not know, then wait an exponential delay
        of mean `addr_interval` (Core AVG_ADDRESS_BROADCAST_INTERVAL, 30 s)."""
        if not peer.addr_relay_enabled or not peer.is_connected:
            return
        now = self.clock()
        if now <= peer.next_addr_send:
            return
        peer.next_addr_send = now + self._rng.expovariate(1.0 / max(self.config.addr_interval, 1e-3))
        queued, peer.addrs_to_send = peer.addrs_to_send, []
        if queued:
            self._send_addrs(peer, queued)

    def _send_addrs(self, peer: Peer, addrs: list[tuple[str, int, int, int]], force: bool = False) -> None:
        known = self._addr_known.get(peer.id)
        out = []
        for host, port, services, ts in addrs:
            k = addr_key(host, port)
            if known is not None:
                if k in known and not force:
                    continue
                known[k] = True
                if len(known) > MAX_ADDR_KNOWN:
                    known.popitem(last=False)
            try:   # addrv2 to a peer that sent sendaddrv2 (BIP155), else addr
                out.append(m.timed_addr(int(ts), host, port, services, v2=peer.wants_addrv2))
            except ValueError:
                continue
        for i in range(0, len(out), MAX_ADDR):
            peer.send(m.addr_message(out[i:i + MAX_ADDR], v2=peer.wants_addrv2))

    def _relay_hash(self, *parts: Any) -> int:
        h = hashlib.blake2b(self._relay_salt, digest_size=8)
        for part in parts:
            h.update(str(part).encode() + b"\0")
        return int.from_bytes(h.digest(), "little")

    def relay_address(self, originator: int, addr: tuple[str, int, int, int]) -> list[Peer]:
        """Core `PeerManagerImpl::RelayAddress`: queue `addr` for the two addr-relay peers (not
        the originator) whose keyed hash of (address, day window) is highest, so within a day
        the same peers are chosen and their known filters stop repeats. The day window is
        shifted by the address's hash, so destinations rotate at a different time per address."""
        hash_addr = int.from_bytes(hashlib.sha256(addr_key(addr[0], addr[1]).encode()).digest()[:8], "little")
        time_addr = ((int(self.clock()) + hash_addr) % 2**64) // ROTATE_ADDR_RELAY_DEST_INTERVAL
        scored = sorted(((self._relay_hash(hash_addr, time_addr, p.id), p)
                         for p in self.connected_peers()
                         if p.addr_relay_enabled and p.id != originator),
                        key=lambda x: x[0], reverse=True)
        chosen = [p for _, p in scored[:2]]
        for p in chosen:
            self.push_address(p, addr)
        return chosen

    def get_addresses(self, peer: Peer) -> list:
        """Core `CConnman::GetAddresses(requestor, MAX_ADDR_TO_SEND, MAX_PCT_ADDR_TO_SEND)`: one
        answer per (network of the peer, our end of the socket) — inbound onion peers share one
        apart from the clearnet ones — computed from the book and kept 21-27 h, so repeated
        getaddrs cannot map the book. Banned addresses are left out (GetAddressesUnsafe)."""
        bind = peer.addr_bind or ("", 0)
        cache_id = (peer.network, bind[0], bind[1] if peer.inbound else 0)
        now = self.clock()
        cached = self._addr_response_caches.get(cache_id)
        if cached is None or cached[0] < now:
            addrs = self._addresses_unsafe()
            cached = (now + ADDR_CACHE_LIFETIME + self._rng.uniform(0, ADDR_CACHE_JITTER), addrs)
            self._addr_response_caches[cache_id] = cached
        return cached[1]

    def _addresses_unsafe(self) -> list:
        """Core `CConnman::GetAddressesUnsafe`: AddrMan::GetAddr(1000, 23%) minus banned ones."""
        return [e for e in self.addrman.get_addr(MAX_ADDR_TO_SEND, MAX_PCT_ADDR_TO_SEND)
                if not self.is_banned(e.host, e.port)]

    async def on_addr(self, peer: Peer, msg: m.Addr) -> None:
        """Core ProcessMessage(ADDR): the addresses go to `process_addrs`."""
        self.process_addrs(peer, msg.COMMAND, [(ta.time, ta.addr.host, ta.addr.port, ta.addr.services)
                                                for ta in msg.addrs])

    def process_addrs(self, peer: Peer, msg_type: str, addrs: list[tuple[int, str, int, int]]) -> None:
        """Mirrors Core `PeerManagerImpl::ProcessAddrs()` for `addr` (and `addrv2`, whose decoder
        hands its entries here as (time, host, port, services)).

        A block-relay-only peer's addresses are ignored (SetupAddressRelay fails); otherwise
        receiving addresses turns addr relay to the peer on. More than MAX_ADDR_TO_SEND is
        misbehaviour. Each address costs one token of the peer's bucket (Core
        `m_addr_token_bucket`): it starts at 1, refills at MAX_ADDR_RATE_PER_SECOND on the
        node's clock up to MAX_ADDR_PROCESSING_TOKEN_BUCKET, and gets MAX_ADDR_TO_SEND more when
        we send the peer getaddr. With the bucket empty an address is dropped unpunished and
        counted (`addr_rate_limited`) — unless the peer has the `addr` permission. Addresses of
        nodes that serve neither blocks nor addresses are skipped; banned ones only remembered
        as known; the rest count as `addr_processed`. An address dated within 10 minutes, from
        a message of at most 10, is relayed (Core RelayAddress) unless the message may be the
        answer to our getaddr (Core `m_getaddr_sent`). An addr-fetch connection is closed after
        an answer of more than one address."""
        if not self.setup_address_relay(peer):
            log.debug("ignoring %s message from %s peer=%d", msg_type, peer.conn_type, peer.id)
            return
        if len(addrs) > MAX_ADDR_TO_SEND:   # Core: Misbehaving, which disconnects
            raise Misbehaving(100, f"{msg_type} message size = {len(addrs)}")
        now = self.clock()   # Core: NodeClock, so mock time drives the bucket
        if peer.addr_token_bucket < MAX_ADDR_PROCESSING_TOKEN_BUCKET:
            refill = max(0.0, now - peer.addr_token_timestamp) * MAX_ADDR_RATE_PER_SECOND
            peer.addr_token_bucket = min(peer.addr_token_bucket + refill, float(MAX_ADDR_PROCESSING_TOKEN_BUCKET))
        peer.addr_token_timestamp = now
        count = len(addrs)
        addrs = list(addrs)
        self._rng.shuffle(addrs)    # Core: which addresses survive the limit is not the sender's choice
        known = self._addr_known.get(peer.id)
        fresh: list[tuple[str, int, int, int]] = []
        to_add: list[tuple[str, int, int, int]] = []
        processed = rate_limited = 0
        rate_limited_peer = not peer.has_permission(NetPermissionFlags.ADDR)
        for ts, host, port, services in addrs:
            if peer.addr_token_bucket < 1.0:
                if rate_limited_peer:
                    rate_limited += 1
                    continue
            else:
                peer.addr_token_bucket -= 1.0
            if not services & (_NODE_NETWORK | _NODE_NETWORK_LIMITED):
                continue   # Core: !MayHaveUsefulAddressDB && !HasAllDesirableServiceFlags
            if ts <= 100_000_000 or ts > now + 600:
                ts = int(now) - 5 * 24 * 3600     # Core: nonsense times count as five days old
            if known is not None:
                known[addr_key(host, port)] = True
            if self.is_banned(host, port):
                continue
            processed += 1
            if (host, port) in self._self_addrs or not self.addrman.acceptable(host, port):
                continue
            if ts > now - ADDR_RELAY_MAX_AGE and not peer.getaddr_sent and count <= ADDR_RELAY_MAX_COUNT:
                fresh.append((host, port, services, ts))
            to_add.append((host, port, services, ts))
        self.addrman.add_many(to_add, source=peer.addr[0])   # Core m_addrman.Add(vAddrOk, ...)
        peer.addr_processed += processed
        peer.addr_rate_limited += rate_limited
        log.debug("Received addr: %d addresses (%d processed, %d rate-limited) from peer=%d",
                  count, processed, rate_limited, peer.id)
        if count < MAX_ADDR_TO_SEND:
            peer.getaddr_sent = False
        if peer.conn_type == ConnectionType.ADDR_FETCH and count > 1:
            log.debug("addrfetch connection completed, disconnecting peer=%d", peer.id)
            peer.disconnect("addrfetch connection completed")
        if not fresh:
            return
        if (count == 1 and peer.listen_addr is not None
                and (fresh[0][0], fresh[0][1]) == peer.listen_addr and peer.their_addr_from is not None):
            # A lab node announcing itself (it just joined, or its periodic self-advertisement):
            # pass it to every addr-relay neighbour at once; the per-peer known filter stops the
            # flood after one hop per link, so a small network learns of a newcomer quickly.
            for target in self.connected_peers():
                if target.id != peer.id and target.addr_relay_enabled:
                    self._send_addrs(target, fresh)
            return
        for a in fresh:
            self.relay_address(peer.id, a)

    async def on_addrv2(self, peer: Peer, msg: m.AddrV2) -> None:
        """Core ProcessMessage(ADDRV2): the same as `addr` (BIP155); entries of networks we do
        not know arrive as ``::`` and are dropped by the address book, not punished."""
        await self.on_addr(peer, msg)

    async def on_getaddr(self, peer: Peer, msg: m.GetAddr) -> None:
        """Core ProcessMessage(GETADDR): answered only for inbound peers, once per connection,
        from the per-network-and-socket cache (the whole book sample for an `addr`-permission
        peer), through the addr trickle."""
        if not peer.inbound:
            log.debug('Ignoring "getaddr" from %s connection. peer=%d', peer.conn_type, peer.id)
            return
        self.setup_address_relay(peer)
        if peer.getaddr_recvd:
            log.debug('Ignoring repeated "getaddr". peer=%d', peer.id)
            return
        peer.getaddr_recvd = True
        peer.addrs_to_send = []
        if peer.has_permission(NetPermissionFlags.ADDR):
            entries = self._addresses_unsafe()
        else:
            entries = self.get_addresses(peer)
        for e in entries:
            self.push_address(peer, (e.host, e.port, e.services, int(e.timestamp)))


def _key(a: tuple[str, int] | None) -> str | None:
    return None if a is None else addr_key(a[0], a[1])
