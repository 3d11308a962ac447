"""One connection to one peer: framing, handshake, timeouts, back-pressure, misbehaviour.

A `Peer` runs one supervising task (`run`) holding an `asyncio.TaskGroup` with four children:

* **reader** — reads one message at a time, every read inside `asyncio.timeout`: the handshake
  must finish within `handshake_timeout`; with nothing received for `idle_timeout` the peer is
  idle; once the first byte of a message arrived, the rest must follow within
  `message_timeout` (slowloris). Envelope checks run in btcd's order (`wire.envelope`): a length
  over 4,000,000 is refused before a single payload byte is read.
* **writer** — drains a bounded `asyncio.Queue` of outbound messages, awaiting `drain()` under
  `send_timeout`: a peer that stops reading is dropped, never buffered without limit (aiorpcX's
  `max_send_delay`). A full queue is treated the same way.
* **pinger** — pings every `ping_interval` s and drops the peer if the pong does not come back
  within `pong_timeout` (Core's `MaybeSendPing` / `TIMEOUT_INTERVAL`), both on the node's
  clock (`tinynode.clock`), so a mock time set with `setmocktime` drives them as in Core.
* **stopper** — waits for `disconnect()` from anyone (the connection manager, the sync manager).

The handshake is Core's: the dialer sends `version`, the listener answers with its own, both
send `verack`. A version whose nonce is one of ours is a self-connection (Core
`CheckIncomingNonce`); protocol versions below 31800 are refused. Between `version` and `verack`
both sides negotiate BIP 339 `wtxidrelay` and BIP155 `sendaddrv2` (each sent to a peer whose
common version is 70016+, and accepted only before `verack`: after it the peer is disconnected,
as Core). Other messages newer peers send around the handshake (`feefilter`, `sendcmpct`, …) are
unknown to the codec or simply not handled here: they cost nothing.

After the handshake every message goes to the first handler object that has a method
`on_<command>(peer, msg)` (Core's functional framework convention). A handler may raise
`Misbehaving(score, reason)`; other handler errors are logged and the peer stays up.

Misbehaviour adds to `banscore` (Core `Misbehaving()`, btcd `dynamicbanscore`); at
`ban_threshold` Core's `MaybeDiscourageAndDisconnect` rule applies: a peer with the `noban`
permission is only warned about, a loopback peer is disconnected but not banned (a ban would
cut off every node on 127.0.0.1), any other peer is disconnected and the connection manager
bans its address. `permissions` (`net.permissions`) are set by the connection manager from
`-whitelist` / `-whitebind` before the peer runs.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence

from tinynode.params import ChainParams
from tinynode.primitives.serialize import DecodeError
from tinynode.wire import envelope
from tinynode.wire import messages as m
from tinynode.wire.constants import (HEADER_SIZE, MIN_PEER_PROTO_VERSION, NODE_NETWORK,
                                     NODE_NETWORK_LIMITED,
                                     NODE_WITNESS, PROTOCOL_VERSION,
                                     WTXID_RELAY_VERSION)

from .permissions import NetPermissionFlags, is_loopback, permission_names

log = logging.getLogger(__name__)

__all__ = ["NetConfig", "Peer", "PeerHost", "Misbehaving", "PeerDisconnect", "format_sub_version",
           "check_ua_comments", "UA_NAME", "MAX_SUBVERSION_LENGTH", "ConnectionType"]

#: Core's UA_NAME: the client name in our BIP 14 user agent
UA_NAME = "tinynode"
#: Core MAX_SUBVERSION_LENGTH (net.h)
MAX_SUBVERSION_LENGTH = 256
#: Core SAFE_CHARS_UA_COMMENT (util/strencodings.cpp)
_SAFE_UA_COMMENT = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;-_?@")


def format_sub_version(comments: Sequence[str] = (), name: str = UA_NAME) -> str:
    """Core `FormatSubVersion`: `/name:version(comment; comment)/`, the BIP 14 user agent our
    `version` message carries and `getnetworkinfo` reports as `subversion` (one string for both)."""
    from tinynode import __version__
    extra = f"({'; '.join(comments)})" if comments else ""
    return f"/{name}:{__version__}{extra}/"


def check_ua_comments(comments: Sequence[str]) -> str:
    """Core AppInitMain's -uacomment checks: every comment only of SAFE_CHARS_UA_COMMENT, and the
    whole user agent at most MAX_SUBVERSION_LENGTH bytes. Returns the user agent; ValueError with
    Core's message otherwise."""
    for c in comments:
        if any(ch not in _SAFE_UA_COMMENT for ch in c):
            raise ValueError(f"User Agent comment ({c}) contains unsafe characters.")
    ua = format_sub_version(comments)
    if len(ua.encode()) > MAX_SUBVERSION_LENGTH:
        raise ValueError(f"Total length of network version string ({len(ua.encode())}) exceeds maximum "
                         f"length ({MAX_SUBVERSION_LENGTH}). Reduce the number or size of uacomments.")
    return ua


class ConnectionType:
    """Core's `ConnectionType` by the names `ConnectionTypeAsString` gives them (getpeerinfo's
    `connection_type`, the `addconnection` RPC):

    * ``inbound`` — the peer dialled us;
    * ``manual`` — a seed (``--peers``) or an ``addnode`` target;
    * ``outbound-full-relay`` — an address-book pick: blocks, txs and addresses;
    * ``block-relay-only`` — blocks only: ``relay`` false in our version, no tx relay, no addr
      relay at all (no getaddr, its addr messages ignored), so the link stays hidden;
    * ``addr-fetch`` — ask for addresses, disconnect after the first answer of more than one;
    * ``feeler`` — check the address is alive: disconnect once its version is processed.
    """

    INBOUND = "inbound"
    MANUAL = "manual"
    OUTBOUND_FULL_RELAY = "outbound-full-relay"
    BLOCK_RELAY = "block-relay-only"
    ADDR_FETCH = "addr-fetch"
    FEELER = "feeler"
    #: the types the `addconnection` RPC opens (Core CConnman::AddConnection)
    ADDABLE = (OUTBOUND_FULL_RELAY, BLOCK_RELAY, ADDR_FETCH, FEELER)


@dataclass(frozen=True, slots=True)
class NetConfig:
    """Every timeout and limit of the P2P layer, in seconds / counts. Tests shrink them."""

    handshake_timeout: float = 30.0      # version + verack must be done by then (btcd negotiateTimeout)
    idle_timeout: float = 20 * 60.0      # nothing received for this long (Core TIMEOUT_INTERVAL)
    message_timeout: float = 60.0        # a started message must be complete within this (slowloris)
    ping_interval: float = 120.0         # Core PING_INTERVAL 2 min
    pong_timeout: float = 20 * 60.0      # no pong within this -> disconnect (Core TIMEOUT_INTERVAL)
    send_timeout: float = 60.0           # one drain() may block this long (peer not reading)
    send_queue: int = 2_000              # outbound messages waiting for the writer
    connect_timeout: float = 10.0        # TCP connect for outbound dials
    ban_threshold: int = 100             # Core DISCOURAGEMENT_THRESHOLD
    ban_time: float = 24 * 3600.0        # Core DEFAULT_MISBEHAVING_BANTIME
    max_inbound: int = 125               # Core DEFAULT_MAX_PEER_CONNECTIONS - outbound
    max_outbound: int = 8                # Core MAX_OUTBOUND_FULL_RELAY_CONNECTIONS
    dial_interval: float = 2.0           # how often the dialer looks for work
    reconnect_min: float = 1.0           # first retry delay for a seed / addnode target
    reconnect_max: float = 60.0          # backoff cap
    # sync (net/sync.py)
    headers_timeout: float = 60.0        # getheaders -> headers stall deadline
    block_stall_timeout: float = 10.0    # getdata block -> block stall deadline (Core BLOCK_STALLING_TIMEOUT 2 s + slack)
    tx_request_timeout: float = 60.0     # getdata tx -> tx/notfound
    blocks_per_peer: int = 16            # Core MAX_BLOCKS_IN_TRANSIT_PER_PEER
    blocks_total: int = 128              # moving download window (Core BLOCK_DOWNLOAD_WINDOW is 1024)
    relay_tick: float = 0.05             # batching interval for inv trickling
    addr_interval: float = 30.0          # self-advertisement / addr relay tick
    user_agent: str = format_sub_version()   # Core strSubVersion (FormatSubVersion + -uacomment)
    # segwit (BIP144/339): advertise NODE_WITNESS, speak protocol 70016 with `wtxidrelay`,
    # fetch blocks/txs with MSG_WITNESS_* (the chain validates witness blocks: on, as Core;
    # off only for tests of a legacy-speaking node)
    advertise_witness: bool = True
    # Core -prune: a pruned node advertises NODE_NETWORK_LIMITED (BIP159) instead of NODE_NETWORK
    pruned: bool = False
    # Core -blocksonly (ignore_incoming_txs): `relay` false in every version we send, and txs
    # only from peers with the `relay` permission
    blocks_only: bool = False

    @property
    def local_services(self) -> int:
        """Our `version` services: NODE_NETWORK (NODE_NETWORK_LIMITED when pruned), plus
        NODE_WITNESS when advertised."""
        return ((NODE_NETWORK_LIMITED if self.pruned else NODE_NETWORK)
                | (NODE_WITNESS if self.advertise_witness else 0))

    @property
    def protocol_version(self) -> int:
        """70016 (BIP 339 wtxidrelay) with witness advertised, else 70015."""
        return WTXID_RELAY_VERSION if self.advertise_witness else PROTOCOL_VERSION


def _host_port(host: str, port: int) -> str:
    """Core `CService::ToStringAddrPort`: `1.2.3.4:5`, `[::1]:5`."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Misbehaving(Exception):
    """Raised by a message handler: the peer broke a rule worth `score` points."""

    def __init__(self, score: int, reason: str) -> None:
        super().__init__(f"{reason} (+{score})")
        self.score = score
        self.reason = reason


class PeerDisconnect(Exception):
    """Ends a peer's task group with a reason for the log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PeerHost(Protocol):
    """What a `Peer` needs from its owner (the connection manager)."""

    def is_local_nonce(self, nonce: int) -> bool: ...
    def forget_nonce(self, nonce: int) -> None: ...
    def new_nonce(self) -> int: ...
    def start_height(self) -> int: ...
    def local_address(self) -> tuple[str, int] | None: ...
    async def peer_ready(self, peer: "Peer") -> None: ...
    def peer_closed(self, peer: "Peer") -> None: ...
    def peer_banned(self, peer: "Peer", reason: str) -> None: ...


#: Core ALL_NET_MESSAGE_TYPES (protocol.h): getpeerinfo's bytesrecv_per_msg counts any other
#: command under "*other*".
CORE_MESSAGE_TYPES = frozenset((
    "version", "verack", "addr", "addrv2", "sendaddrv2", "inv", "getdata", "merkleblock",
    "getblocks", "getheaders", "tx", "headers", "block", "getaddr", "mempool", "ping", "pong",
    "notfound", "filterload", "filteradd", "filterclear", "sendheaders", "feefilter", "sendcmpct",
    "cmpctblock", "getblocktxn", "blocktxn", "getcfilters", "cfilter", "getcfheaders", "cfheaders",
    "getcfcheckpt", "cfcheckpt", "wtxidrelay", "sendtxrcncl"))

#: Core sends `sendaddrv2` only when the common protocol version is at least this (BIP155 is
#: version-less; no BIP155 software announces less than 70016).
ADDRV2_VERSION = 70016

# Misbehaviour prices (Core's Misbehaving() howmuch; aiorpcX error costs).
COST_BEFORE_VERSION = 10

#: the most bytes one socket read takes (Core's 64 KiB receive buffer, pchBuf)
_READ_CHUNK = 0x10000


class Peer:
    """A connected peer (Core `CNode` + the per-connection part of `PeerManagerImpl`)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                 params: ChainParams, config: NetConfig, host: PeerHost, handlers: Sequence[Any],
                 inbound: bool, peer_id: int, addr: tuple[str, int],
                 listen_addr: tuple[str, int] | None = None, relay: bool | None = None,
                 permissions: NetPermissionFlags = NetPermissionFlags.NONE,
                 clock: Callable[[], float] = time.time,
                 conn_type: str | None = None) -> None:
        self.params = params
        self.clock = clock                      # the node's clock (tinynode.clock.NodeClock)
        self.config = config
        self.host = host
        self.handlers = tuple(handlers)
        self.inbound = inbound
        self.id = peer_id
        self.addr = addr                        # (host, port) of the socket's far end
        self.listen_addr = listen_addr          # where the peer accepts connections, if known
        self.permissions = NetPermissionFlags(permissions)   # Core CNode::m_permission_flags
        # Core CNode::m_conn_type (ConnectionType's strings)
        self.conn_type = conn_type or (ConnectionType.INBOUND if inbound else ConnectionType.MANUAL)
        self._relay_ours = relay    # None: Core PushNodeVersion's !RejectIncomingTxs()
        self._reader = reader
        self._writer = writer
        self._queue: asyncio.Queue = asyncio.Queue(config.send_queue)
        self._dequeued = asyncio.Event()
        self._stop = asyncio.Event()
        self._stop_reason = ""
        self._pong = asyncio.Event()
        self.handshake_done = asyncio.Event()
        self.closed = asyncio.Event()
        # what the peer told us
        self.version = 0
        self.services = 0
        self.subver = ""
        self.start_height = -1
        self.relay = True
        self.version_received = False
        self.verack_received = False
        self.wtxidrelay_sent = False     # we sent `wtxidrelay` (BIP 339)
        self.wtxid_relay = False         # both sides sent it: tx invs and getdata use MSG_WTX
        self.wants_addrv2 = False        # the peer sent `sendaddrv2` (Core Peer::m_wants_addrv2)
        self.their_addr_from: tuple[str, int] | None = None
        self.addr_local: tuple[str, int] | None = None   # our address as the peer saw it (Core addrLocal)
        # ours
        self.local_nonce = 0
        # accounting
        self.conn_time = clock()
        self.last_send = 0.0
        self.last_recv = 0.0
        self.bytes_sent = 0
        self.bytes_recv = 0
        # Core CNode::mapSendBytesPerMsgType / mapRecvBytesPerMsgType: bytes per command,
        # each message counted with its 24-byte header
        self.bytes_sent_per_msg: dict[str, int] = {}
        self.bytes_recv_per_msg: dict[str, int] = {}
        self.ping_nonce = 0
        self.ping_queued = False
        self.ping_sent = 0.0
        self.ping_time: float | None = None
        self.min_ping: float | None = None
        self.banscore = 0
        self.disconnect_reason = ""
        # addr rate limiting (Core Peer::m_addr_token_bucket, ::m_addr_token_timestamp,
        # ::m_addr_processed, ::m_addr_rate_limited), kept by the connection manager
        self.addr_token_bucket = 1.0
        self.addr_token_timestamp = clock()
        self.addr_processed = 0
        self.addr_rate_limited = 0
        # addr relay (Core Peer::m_addr_relay_enabled, ::m_getaddr_sent, ::m_getaddr_recvd,
        # ::m_addrs_to_send, ::m_next_addr_send), kept by the connection manager
        self.addr_relay_enabled = False
        self.getaddr_sent = False
        self.getaddr_recvd = False
        self.addrs_to_send: list[tuple[str, int, int, int]] = []
        self.next_addr_send = 0.0
        self.inbound_onion = False      # accepted on an =onion bind (Core CNode::m_inbound_onion)
        # eviction (Core NodeEvictionCandidate::m_last_block_time, ::m_last_tx_time), set by the
        # sync manager when a block from this peer is new to us / a tx from it enters the mempool
        self.last_block_time = 0.0
        self.last_tx_time = 0.0
        # set by the sync manager, shown by getpeerinfo
        self.synced_headers = -1
        self.synced_blocks = -1

    # ------------------------------------------------------------------ info
    @property
    def addr_str(self) -> str:
        h, p = self.addr
        return f"[{h}]:{p}" if ":" in h else f"{h}:{p}"

    @property
    def is_connected(self) -> bool:
        return not self.closed.is_set() and not self._stop.is_set()

    def __repr__(self) -> str:
        return f"<Peer {self.id} {self.addr_str} {'in' if self.inbound else 'out'}>"

    @property
    def addr_bind(self) -> tuple[str, int] | None:
        """Core `CNode::addrBind`: our end of the socket."""
        try:
            sock = self._writer.get_extra_info("sockname")
        except Exception:  # noqa: BLE001 - a closed transport
            return None
        if not sock or len(sock) < 2:
            return None
        return (str(sock[0]), int(sock[1]))

    @property
    def network(self) -> str:
        """Core `CNode::ConnectedThroughNetwork()` by name: "onion" for a peer accepted on an
        onion bind, else the network of its address ("not_publicly_routable" for loopback and
        private ones, as Core's GetNetClass)."""
        if self.inbound_onion:
            return "onion"
        import ipaddress
        try:
            ip = ipaddress.ip_address(self.addr[0])
        except ValueError:
            return "not_publicly_routable"
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_unspecified:
            return "not_publicly_routable"
        return "ipv4" if ip.version == 4 else "ipv6"

    def info(self) -> dict:
        """The fields of Core's getpeerinfo that we can fill."""
        j: dict[str, Any] = {"id": self.id, "addr": self.addr_str}
        bind = self.addr_bind
        if bind is not None:
            j["addrbind"] = _host_port(*bind)
        if self.addr_local is not None:
            j["addrlocal"] = _host_port(*self.addr_local)
        j.update({
            "network": self.network, "inbound": self.inbound,
            "connection_type": self.conn_type,
            "addrlisten": None if self.listen_addr is None else f"{self.listen_addr[0]}:{self.listen_addr[1]}",
            "services": f"{self.services:016x}", "version": self.version, "subver": self.subver,
            "startingheight": self.start_height, "synced_headers": self.synced_headers,
            "synced_blocks": self.synced_blocks, "bytessent": self.bytes_sent,
            "bytesrecv": self.bytes_recv, "conntime": int(self.conn_time),
            "lastsend": int(self.last_send), "lastrecv": int(self.last_recv),
            "pingtime": self.ping_time, "minping": self.min_ping,
            "pingwait": (self.clock() - self.ping_sent) if self.ping_nonce else None,
            "banscore": self.banscore, "relaytxes": self.relay,
            "addr_relay_enabled": self.addr_relay_enabled, "addr_processed": self.addr_processed, "addr_rate_limited": self.addr_rate_limited,
            "permissions": permission_names(self.permissions),
            "bytessent_per_msg": {k: v for k, v in sorted(self.bytes_sent_per_msg.items()) if v > 0},
            "bytesrecv_per_msg": {k: v for k, v in sorted(self.bytes_recv_per_msg.items()) if v > 0},
        })
        return j

    @property
    def relay_ours(self) -> bool:
        """The `relay` flag of our version: whether we want txs from this peer (Core
        PushNodeVersion's `!RejectIncomingTxs()`), unless the owner fixed it."""
        return (not self.rejects_incoming_txs) if self._relay_ours is None else self._relay_ours

    @relay_ours.setter
    def relay_ours(self, value: bool) -> None:
        self._relay_ours = bool(value)

    @property
    def is_block_only(self) -> bool:
        """Core `CNode::IsBlockOnlyConn()`."""
        return self.conn_type == ConnectionType.BLOCK_RELAY

    @property
    def rejects_incoming_txs(self) -> bool:
        """Core `PeerManagerImpl::RejectIncomingTxs()`: a block-relay-only or feeler peer may
        never send us txs; in -blocksonly mode only a peer with the `relay` permission may."""
        if self.conn_type in (ConnectionType.BLOCK_RELAY, ConnectionType.FEELER):
            return True
        return self.config.blocks_only and not self.has_permission(NetPermissionFlags.RELAY)

    def has_permission(self, flag: NetPermissionFlags) -> bool:
        """Core `CNode::HasPermission()`: the peer holds all of `flag`'s bits."""
        return flag in self.permissions

    # ------------------------------------------------------------------ API for owners
    def send(self, msg: Any) -> bool:
        """Queue `msg` for the writer. A full queue means the peer does not read: drop it."""
        if not self.is_connected:
            return False
        try:
            self._queue.put_nowait(msg)
        except asyncio.QueueFull:
            self.disconnect("send queue full")
            return False
        return True

    async def send_async(self, msg: Any, max_pending: int | None = None) -> bool:
        """Queue `msg`, waiting up to `send_timeout` for room. Large answers (blocks) pass a
        small `max_pending` so a slow reader never has more than a few of them queued."""
        if not self.is_connected:
            return False
        limit = self.config.send_queue if max_pending is None else max(1, max_pending)
        try:
            async with asyncio.timeout(self.config.send_timeout):
                while self._queue.qsize() >= limit:
                    self._dequeued.clear()
                    await self._dequeued.wait()
                    if not self.is_connected:
                        return False
                await self._queue.put(msg)
        except TimeoutError:
            self.disconnect("send queue stuck (peer not reading)")
            return False
        return True

    def disconnect(self, reason: str = "disconnect requested") -> None:
        if not self._stop.is_set():
            self._stop_reason = reason
            self._stop.set()

    def misbehaving(self, score: int, reason: str) -> None:
        """Core `Misbehaving()`: add to the score; at the threshold act as Core's
        `MaybeDiscourageAndDisconnect()`: a `noban` peer is only warned about, a loopback peer
        is disconnected without a ban, any other peer is disconnected and banned."""
        if score <= 0 or not self.is_connected:
            return
        self.banscore += score
        # Core Misbehaving()'s line ("Misbehaving: peer=N: message"), with our score
        log.info("Misbehaving: peer=%d: %s (+%d -> %d, %s)", self.id, reason, score, self.banscore,
                 self.addr_str)
        if self.banscore < self.config.ban_threshold:
            return
        if self.has_permission(NetPermissionFlags.NOBAN):
            log.warning("Warning: not punishing noban peer %d! (%s: %s)", self.id, self.addr_str, reason)
            return
        if is_loopback(self.addr[0]):
            log.info("Warning: disconnecting but not discouraging local peer %d! (%s: %s)", self.id,
                     self.addr_str, reason)
            self.disconnect(f"misbehaving: {reason}")
            return
        log.info("Disconnecting and discouraging peer %d! (%s: %s)", self.id, self.addr_str, reason)
        self.host.peer_banned(self, reason)
        self.disconnect(f"banned: {reason}")

    async def wait_ready(self, timeout: float) -> bool:
        """Wait for the handshake (or the end of the connection)."""
        try:
            async with asyncio.timeout(timeout):
                done = asyncio.ensure_future(self.handshake_done.wait())
                closed = asyncio.ensure_future(self.closed.wait())
                try:
                    await asyncio.wait({done, closed}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    done.cancel()
                    closed.cancel()
        except TimeoutError:
            pass
        return self.handshake_done.is_set() and not self.closed.is_set()

    # ------------------------------------------------------------------ supervision
    async def run(self) -> None:
        """Run the connection to its end. Never raises except on cancellation."""
        reason = "closed"
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._read_loop())
                tg.create_task(self._write_loop())
                tg.create_task(self._ping_loop())
                tg.create_task(self._wait_stop())
                if not self.inbound:
                    self._send_version()
        except* PeerDisconnect as eg:
            reason = eg.exceptions[0].reason
        except* (asyncio.IncompleteReadError, ConnectionError, OSError) as eg:
            e = eg.exceptions[0]
            reason = "connection closed by peer" if isinstance(e, asyncio.IncompleteReadError) else f"socket error: {e}"
        except* Exception as eg:  # a bug in our code: log it, keep the node up
            log.error("peer %d task failed", self.id, exc_info=eg.exceptions[0])
            reason = f"internal error: {eg.exceptions[0]!r}"
        finally:
            self.disconnect_reason = reason
            self._stop.set()
            await self._close_transport()
            self.closed.set()
            if self.local_nonce:
                self.host.forget_nonce(self.local_nonce)
            log.info("peer %d (%s) disconnected: %s", self.id, self.addr_str, reason)
            try:
                self.host.peer_closed(self)
            except Exception:
                log.exception("peer_closed hook failed")

    async def _close_transport(self) -> None:
        w = self._writer
        try:
            w.close()
            async with asyncio.timeout(1.0):
                await w.wait_closed()
        except (TimeoutError, OSError, ConnectionError):
            pass
        finally:
            if not w.transport.is_closing() or w.transport.get_write_buffer_size():
                w.transport.abort()

    async def _wait_stop(self) -> None:
        await self._stop.wait()
        raise PeerDisconnect(self._stop_reason)

    # ------------------------------------------------------------------ reading
    async def _read_counted(self, n: int, first: bytes = b"") -> bytes:
        """Read `n` bytes (`first` already read), counting each chunk as it arrives (Core
        `CNode::ReceiveMsgBytes` counts nRecvBytes per socket read, so getnettotals sees half a
        message)."""
        buf = bytearray(first)
        while len(buf) < n:
            chunk = await self._reader.read(min(n - len(buf), _READ_CHUNK))
            if not chunk:
                raise asyncio.IncompleteReadError(bytes(buf), n)
            buf += chunk
            self._received(len(chunk))
        return bytes(buf)

    def _received(self, n: int) -> None:
        self.bytes_recv += n
        self.last_recv = self.clock()

    async def _read_message(self) -> Any:
        """One message off the wire, checked as Core's V1Transport: a wrong magic or a length
        over 4,000,000 ends the connection ("Header error: …", no misbehaviour); a wrong checksum
        or an invalid message type drops the message (its bytes counted under "*other*"); a
        payload that does not decode is logged as Core's ProcessMessages exception and dropped.
        Returns the message, or None when there is nothing to process."""
        cfg = self.config
        try:
            async with asyncio.timeout(cfg.idle_timeout):
                first = await self._reader.read(HEADER_SIZE)
        except TimeoutError:
            raise PeerDisconnect("idle timeout") from None
        if not first:
            raise asyncio.IncompleteReadError(b"", HEADER_SIZE)
        self._received(len(first))
        try:
            async with asyncio.timeout(cfg.message_timeout):
                header = await self._read_counted(HEADER_SIZE, first)
                try:
                    command, length, checksum = envelope.parse_header(self.params.magic, header)
                except envelope.WireError as e:
                    log.debug("%s, peer=%d", e, self.id)
                    raise PeerDisconnect(str(e)) from None
                payload = await self._read_counted(length) if length else b""
        except TimeoutError:
            raise PeerDisconnect("message timeout (slow sender)") from None
        try:
            msg = envelope.decode_payload(command, payload, checksum)
        except (envelope.BadChecksumError, envelope.BadCommandError) as e:
            log.debug("%s, peer=%d", e, self.id)
            self._count_recv("*other*", HEADER_SIZE + length)
            return None
        except (DecodeError, ValueError) as e:
            self._count_recv(command, HEADER_SIZE + length)
            log.debug("received: %s (%d bytes) peer=%d", envelope.sanitize(command), length, self.id)
            if command == "pong" and len(payload) < 8 and self.verack_received:
                self._on_pong(None)   # Core: "Short payload" cancels the ping, no misbehaviour
                return None
            cause = e.__cause__ if e.__cause__ is not None else e
            log.info("ProcessMessages(%s, %d bytes): Exception '%s' (%s) caught",
                     envelope.sanitize(command), length, cause, type(cause).__name__)
            return None
        self._count_recv(command, HEADER_SIZE + length)
        log.debug("received: %s (%d bytes) peer=%d", envelope.sanitize(command), length, self.id)   # Core ProcessMessages
        if msg is None and self.verack_received:
            log.debug('Unknown message type "%s" from peer=%d', envelope.sanitize(command), self.id)
        return msg

    async def _read_loop(self) -> None:
        try:
            async with asyncio.timeout(self.config.handshake_timeout):
                while not self.handshake_done.is_set():
                    msg = await self._read_message()
                    if msg is not None:
                        await self._process(msg)
        except TimeoutError:
            raise PeerDisconnect("handshake timeout") from None
        # Outside the handshake deadline: the owner's hooks may wait on a busy chain writer.
        await self.host.peer_ready(self)
        while True:
            msg = await self._read_message()
            if msg is not None:
                await self._process(msg)

    async def _process(self, msg: Any) -> None:
        command = msg.COMMAND
        if log.isEnabledFor(logging.DEBUG):
            log.debug("peer %d recv %s", self.id, repr(msg)[:300])
        if command == "version":
            self._on_version(msg)
            return
        if not self.version_received:
            # Core: "non-version message before version handshake"
            self.misbehaving(COST_BEFORE_VERSION, f"{command} before version")
            return
        if command == "verack":
            if not self.verack_received:
                self.verack_received = True
                await self._handshake_complete()
            return
        if command == "wtxidrelay":
            self._on_wtxidrelay()
            return
        if command == "sendaddrv2":
            self._on_sendaddrv2()
            return
        if not self.verack_received:
            return  # Core ignores everything but the feature-negotiation messages before verack
        if command == "ping":
            # Core runs SendMessages (MaybeSendAddr) between messages: an addr trickle that is
            # due goes out before this pong, so a ping round trip observes it.
            flush = getattr(self.host, "maybe_send_addr", None)
            if flush is not None:
                flush(self)
            for h in self.handlers:   # Core: the blocks this peer sent before are processed first
                settle = getattr(h, "settle_before_pong", None)
                if settle is not None:
                    await settle(self)
            self.send(m.Pong(msg.nonce))
            return
        if command == "pong":
            self._on_pong(msg)
            return
        for handler in self.handlers:
            fn = getattr(handler, "on_" + command, None)
            if fn is None:
                continue
            try:
                await fn(self, msg)
            except Misbehaving as e:
                self.misbehaving(e.score, e.reason)
            except (PeerDisconnect, asyncio.CancelledError):
                raise
            except Exception:
                log.exception("peer %d: handler for %s failed", self.id, command)
            return

    # ------------------------------------------------------------------ handshake
    def _send_version(self) -> None:
        self.local_nonce = self.host.new_nonce()
        local = self.host.local_address() or ("0.0.0.0", 0)
        try:
            addr_recv = m.NetAddr.from_host(self.addr[0], self.addr[1], 0)
            addr_from = m.NetAddr.from_host(local[0], local[1], self.config.local_services)
        except ValueError:
            addr_recv = addr_from = m.NULL_NETADDR
        self.send(m.Version.create(
            version=self.config.protocol_version, services=self.config.local_services,
            timestamp=int(self.clock()),
            addr_recv=addr_recv, addr_from=addr_from, nonce=self.local_nonce,
            user_agent=self.config.user_agent, start_height=self.host.start_height(),
            relay=self.relay_ours))

    def _on_version(self, msg: Any) -> None:
        if self.version_received:
            log.debug("redundant version message from peer=%d", self.id)   # Core: ignored
            return
        if self.host.is_local_nonce(msg.nonce):
            raise PeerDisconnect("connected to self")
        if msg.version < MIN_PEER_PROTO_VERSION:
            raise PeerDisconnect(f"obsolete protocol version {msg.version}")
        self.version_received = True
        self.version = msg.version
        self.services = msg.services
        self.subver = m.sanitize_string(msg.user_agent)   # Core cleanSubVer
        self.start_height = msg.start_height
        # Core: no tx relay with a block-relay-only or feeler peer, whatever its flag says
        self.relay = msg.relay is not False and self.conn_type not in (ConnectionType.BLOCK_RELAY,
                                                                       ConnectionType.FEELER)
        ar = msg.addr_recv
        if ar.port and ar.host not in ("0.0.0.0", "::"):   # Core SetAddrLocal(addrMe) if valid
            self.addr_local = (ar.host, ar.port)
        af = msg.addr_from
        if af.port:
            self.their_addr_from = (af.host, af.port)
            if self.inbound and self.listen_addr is None:
                # Where the peer listens: its socket address with the port it announced.
                self.listen_addr = (self.addr[0], af.port)
        if self.inbound:
            self._send_version()
        if self.config.advertise_witness and min(msg.version, self.config.protocol_version) >= WTXID_RELAY_VERSION:
            # BIP 339 / Core ProcessMessage "version": wtxidrelay goes before our verack
            self.send(m.WtxidRelay())
            self.wtxidrelay_sent = True
        if min(msg.version, self.config.protocol_version) >= ADDRV2_VERSION:
            # Core: BIP155 support is signalled to peers of 70016+ only (a courtesy to older
            # implementations that reject unknown messages)
            self.send(m.SendAddrV2())
        self.send(m.Verack())
        if self.conn_type == ConnectionType.FEELER:
            # Core ProcessMessage(VERSION): a feeler only checks that the address is alive
            log.debug("feeler connection completed, disconnecting peer=%d", self.id)
            self.disconnect("feeler connection completed")

    def _on_wtxidrelay(self) -> None:
        """Core ProcessMessage "wtxidrelay": only before verack (after it the peer is
        disconnected), only from a peer whose common version is 70016+ (else ignored); wtxid
        relay is on when we sent ours too."""
        if self.verack_received:
            raise PeerDisconnect("wtxidrelay received after verack")
        if min(self.version, self.config.protocol_version) < WTXID_RELAY_VERSION:
            log.debug("peer %d: ignoring wtxidrelay from a peer with version %d", self.id, self.version)
            return
        self.wtxid_relay = self.wtxidrelay_sent

    def _on_sendaddrv2(self) -> None:
        """Core ProcessMessage "sendaddrv2" (BIP155): before verack the peer wants `addrv2`
        from now on (its getaddr answer and relayed addresses); after verack it is disconnected."""
        if self.verack_received:
            log.debug("sendaddrv2 received after verack, disconnecting peer=%d", self.id)
            raise PeerDisconnect("sendaddrv2 received after verack")
        self.wants_addrv2 = True

    async def _handshake_complete(self) -> None:
        self.handshake_done.set()
        log.info("peer %d (%s) connected: %s, version %d, %s, height %d", self.id, self.addr_str,
                 "inbound" if self.inbound else "outbound", self.version, self.subver,
                 self.start_height)

    # ------------------------------------------------------------------ ping
    def request_ping(self) -> None:
        """Core `PeerManager::SendPings` (the `ping` RPC): ping at the next tick."""
        self.ping_queued = True

    def _ping_tick(self) -> None:
        """Core `MaybeSendPing` on the node's clock (mock time included): an outstanding ping
        older than `pong_timeout` ends the connection; with none outstanding, a ping goes out
        when one was asked for or `ping_interval` has passed since the last one (the first right
        after the handshake)."""
        now = self.clock()
        cfg = self.config
        if self.ping_nonce and now > self.ping_sent + cfg.pong_timeout:
            log.info("ping timeout: %fs, peer %d", now - self.ping_sent, self.id)
            raise PeerDisconnect("ping timeout")
        if self.ping_queued or (not self.ping_nonce and (not self.ping_sent
                                                         or now > self.ping_sent + cfg.ping_interval)):
            self.ping_queued = False
            self.ping_nonce = random.getrandbits(64) or 1
            self.ping_sent = now
            self.send(m.Ping(self.ping_nonce))

    async def _ping_loop(self) -> None:
        await self.handshake_done.wait()
        cfg = self.config
        # polled, so that a jump of the mock time takes effect within one tick (Core's
        # SendMessages runs every 100 ms); bounded by the connection's life
        tick = max(0.01, min(0.25, cfg.ping_interval / 4, cfg.pong_timeout / 4))
        while self.is_connected:
            self._ping_tick()
            self._pong.clear()
            try:
                async with asyncio.timeout(tick):
                    await self._pong.wait()
            except TimeoutError:
                pass

    def _on_pong(self, msg: Any) -> None:
        """Core ProcessMessage "pong": the matching nonce ends the ping and sets the round-trip
        time (on the node's clock); nonce 0 cancels it; another nonce is ignored; each problem
        is logged with Core's words. `msg` is None for a payload shorter than a nonce ("Short
        payload", which also cancels the ping)."""
        expected = self.ping_nonce
        nonce, problem, finished = 0, "", False
        if msg is None:
            problem, finished = "Short payload", True
        elif not expected:
            nonce, problem = msg.nonce, "Unsolicited pong without ping"
        elif msg.nonce == expected:
            nonce, finished = msg.nonce, True
            rtt = max(0.0, self.clock() - self.ping_sent)
            self.ping_time = rtt
            self.min_ping = rtt if self.min_ping is None else min(self.min_ping, rtt)
        elif msg.nonce == 0:
            problem, finished = "Nonce zero", True
        else:
            nonce, problem = msg.nonce, "Nonce mismatch"
        if problem:
            log.debug("pong peer=%d: %s, %x expected, %x received, %d bytes", self.id, problem,
                      expected, nonce, 0 if msg is None else 8)
        if finished:
            self.ping_nonce = 0
            self._pong.set()

    def _count_recv(self, command: str, n: int) -> None:
        """Core `CNode::ReceiveMsgBytes`: per command, unknown commands under "*other*"."""
        key = command if command in CORE_MESSAGE_TYPES else "*other*"
        self.bytes_recv_per_msg[key] = self.bytes_recv_per_msg.get(key, 0) + n

    # ------------------------------------------------------------------ writing
    async def _write_loop(self) -> None:
        magic = self.params.magic
        w = self._writer
        while True:
            msg = await self._queue.get()
            self._dequeued.set()
            data = envelope.encode(magic, msg)
            try:
                if w.transport.is_closing():
                    raise ConnectionResetError("transport closed")
                w.write(data)
            except (RuntimeError, ConnectionError) as e:
                # the socket closed under us (uvloop raises RuntimeError on a closed handle):
                # a normal disconnect, not a bug
                if not isinstance(e, ConnectionError) and not w.transport.is_closing():
                    raise
                log.debug("peer %d: %s not sent, the connection is closed: %s", self.id, msg.COMMAND, e)
                raise PeerDisconnect("connection closed") from None
            self.bytes_sent += len(data)
            key = msg.COMMAND
            self.bytes_sent_per_msg[key] = self.bytes_sent_per_msg.get(key, 0) + len(data)
            self.last_send = self.clock()
            if w.transport.get_write_buffer_size() > 0:
                try:
                    async with asyncio.timeout(self.config.send_timeout):
                        await w.drain()
                except TimeoutError:
                    raise PeerDisconnect("send timeout (peer not reading)") from None
