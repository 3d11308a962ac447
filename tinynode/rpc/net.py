"""Peer-to-peer RPCs (Core's rpc/net.cpp): peers, addnode/disconnectnode, bans, network
activity, and tinynode's deny/allow list for the lab's partitions. Argument parsing and JSON over
ConnMan.
"""

from __future__ import annotations

import logging
import random
import time
from typing import Any

from .protocol import (
    RPC_CLIENT_NODE_ALREADY_ADDED, RPC_CLIENT_NODE_NOT_ADDED, RPC_CLIENT_NODE_NOT_CONNECTED,
    RPC_CLIENT_INVALID_IP_OR_SUBNET, RPC_CLIENT_P2P_DISABLED, RPC_INVALID_PARAMS, RPC_INVALID_PARAMETER,
    RPC_MISC_ERROR, RPCError,
)
from ..net.addrman import is_local_address
from ..wire.constants import NODE_NETWORK, NODE_WITNESS
from ..wire.netaddress import network_name, parse_host
from .util import RPCArea, _bool, _int, _str, amount_to_json

log = logging.getLogger(__name__)


def _network_name(host: str) -> str:
    """Core `GetNetworkName(addr.GetNetClass())`: ipv4, ipv6, onion, i2p (BIP155 networks,
    `wire.netaddress`), or not_publicly_routable."""
    if is_local_address(host):
        return "not_publicly_routable"
    return network_name(host) or "not_publicly_routable"


#: Core RPC_CLIENT_NODE_CAPACITY_REACHED (rpc/protocol.h): the connection limit of a type is reached
RPC_CLIENT_NODE_CAPACITY_REACHED = -34


#: the Bitcoin Core RPC interface version tinynode answers as (Core's CLIENT_VERSION of v31.0)
CORE_RPC_VERSION = 310000


class NetRPC(RPCArea):
    """Network methods over ConnMan."""

    async def m_getpeerinfo(self) -> list:
        """getpeerinfo
Returns data about each connected network node as a json array of objects."""
        cm = self.node.connman
        return [] if cm is None else cm.peers()

    async def m_getnettotals(self) -> dict:
        """getnettotals
Returns information about network traffic, including bytes in, bytes out, and current system
time. Every message counts with its 24-byte header, closed connections included. tinynode has
no upload target (Core -maxuploadtarget 0)."""
        cm = self.node.connman
        recv = sent = 0
        if cm is not None:
            recv, sent = cm.closed_bytes_recv, cm.closed_bytes_sent
            for p in cm.all_peers():
                recv += p.bytes_recv
                sent += p.bytes_sent
        return {"totalbytesrecv": recv, "totalbytessent": sent,
                "timemillis": int(time.time() * 1000),      # Core: SystemClock, never mocked
                "uploadtarget": {"timeframe": 86400, "target": 0, "target_reached": False,
                                 "serve_historical_blocks": True, "bytes_left_in_cycle": 0,
                                 "time_left_in_cycle": 0}}

    async def m_ping(self) -> None:
        """ping
Requests that a ping be sent to all other nodes, to measure ping time.
Results are provided in getpeerinfo, pingtime and pingwait fields are decimal seconds."""
        cm = self.node.connman
        if cm is None:
            raise RPCError(RPC_CLIENT_P2P_DISABLED, "Error: Peer-to-peer functionality missing or disabled")
        for p in cm.connected_peers():
            p.request_ping()
        return None

    async def m_getconnectioncount(self) -> int:
        """getconnectioncount
Returns the number of connections to other nodes."""
        cm = self.node.connman
        return 0 if cm is None else len(cm.connected_peers())

    async def m_addnode(self, node, command) -> None:
        """addnode "node" "command"
Attempts to add or remove a node from the addnode list, or try a connection to a node once.
command is "add", "remove" or "onetry"."""
        target, cmd = _str(node, "node"), _str(command, "command")
        if cmd not in ("add", "remove", "onetry"):
            raise RPCError(RPC_MISC_ERROR, 'addnode "node" "command"\ncommand must be one of "add", "remove", "onetry"')
        cm = self.node.connman
        if cm is None:
            raise RPCError(RPC_MISC_ERROR, "Error: Peer-to-peer functionality missing or disabled")
        added = set(cm.added_nodes())
        if cmd == "add" and target in added:
            raise RPCError(RPC_CLIENT_NODE_ALREADY_ADDED, "Error: Node already added")
        if cmd == "remove" and target not in added:
            raise RPCError(RPC_CLIENT_NODE_NOT_ADDED, "Error: Node could not be removed. It has not been added previously.")
        try:
            cm.addnode(target, cmd)
        except ValueError as e:
            raise RPCError(RPC_INVALID_PARAMETER, str(e)) from None
        return None

    async def m_addconnection(self, address, connection_type, v2transport) -> dict:
        """addconnection "address" "connection_type" v2transport
Open an outbound connection to a specified node. This RPC is for testing only.
connection_type: "outbound-full-relay", "block-relay-only", "addr-fetch" or "feeler".
v2transport must be false (tinynode speaks v1 only).
Result: {"address": str, "connection_type": str}."""
        if self._params.name != "regtest":   # Core: a std::runtime_error, RPC_MISC_ERROR
            raise RPCError(RPC_MISC_ERROR, "addconnection is for regression testing (-regtest mode) only.")
        target = _str(address, "address")
        conn_type = _str(connection_type, "connection_type").strip()
        from ..net.peer import ConnectionType
        if conn_type not in ConnectionType.ADDABLE:
            raise RPCError(RPC_INVALID_PARAMETER, self.m_addconnection.__doc__ or "addconnection")
        use_v2 = _bool(v2transport, "v2transport")
        cm = self._connman()
        if use_v2:   # tinynode never advertises NODE_P2P_V2
            raise RPCError(RPC_INVALID_PARAMETER,
                           "Error: Adding v2transport connections requires -v2transport init flag to be set.")
        try:
            ok = cm.add_connection(target, conn_type)
        except ValueError as e:
            raise RPCError(RPC_INVALID_PARAMETER, str(e)) from None
        if not ok:
            raise RPCError(RPC_CLIENT_NODE_CAPACITY_REACHED,
                           "Error: Already at capacity for specified connection type.")
        return {"address": target, "connection_type": conn_type}

    def _connman(self):
        cm = self.node.connman
        if cm is None:
            raise RPCError(RPC_CLIENT_P2P_DISABLED, "Error: Peer-to-peer functionality missing or disabled")
        return cm

    async def m_addpeeraddress(self, address, port, tried=False) -> dict:
        """addpeeraddress "address" port ( tried )
Add the address of a potential peer to an address manager table. This RPC is for testing only.
Result: {"success": bool, "error": "failed-adding-to-new" | "failed-adding-to-tried" (if any)}.
As Core's AddrMan, a loopback, private or otherwise unroutable address is not added; the
address counts as announcing itself, with services NODE_NETWORK|NODE_WITNESS and now's time.
An IPv4 / IPv6 literal, a TORv3 `….onion` or an I2P `….b32.i2p` address (Core LookupHost)."""
        cm = self.node.connman
        if cm is None:
            raise RPCError(RPC_CLIENT_P2P_DISABLED, "Error: Address manager functionality missing or disabled")
        host = _str(address, "address")
        port_n = _int(port, "port")
        if not 0 <= port_n <= 0xFFFF:
            raise RPCError(RPC_INVALID_PARAMETER, "JSON integer out of range")
        want_tried = False if tried is None else _bool(tried, "tried")
        try:
            host = parse_host(host).host
        except ValueError:
            raise RPCError(RPC_CLIENT_INVALID_IP_OR_SUBNET, "Invalid IP address") from None
        out: dict[str, Any] = {}
        success = False
        services = NODE_NETWORK | NODE_WITNESS
        if (not is_local_address(host) and cm.addrman.storable(host, port_n)
                and cm.addrman.add(host, port_n, services, int(self.node.clock()))):
            success = True
            if want_tried and not cm.addrman.good(host, port_n, services):
                success = False
                out["error"] = "failed-adding-to-tried"
        else:
            out["error"] = "failed-adding-to-new"
        out["success"] = success
        return out

    async def m_getnodeaddresses(self, count=1, network=None) -> list:
        """getnodeaddresses ( count "network" )
Return known addresses, after filtering for quality and recency: a random sample of the address
book (count 0 = all of them), optionally only those of one network (ipv4, ipv6, onion, i2p,
cjdns). Each: {time, services, address, port, network}."""
        cm = self.node.connman
        if cm is None:
            raise RPCError(RPC_CLIENT_P2P_DISABLED, "Error: Address manager functionality missing or disabled")
        n = 1 if count is None else _int(count, "count")
        if n < 0:
            raise RPCError(RPC_INVALID_PARAMETER, "Address count out of range")
        want = None
        if network is not None:
            want = _str(network, "network").lower()
            if want == "tor":
                want = "onion"
            if want not in ("ipv4", "ipv6", "onion", "i2p", "cjdns"):
                raise RPCError(RPC_INVALID_PARAMETER, f"Network not recognized: {network}")
        now = self.node.clock()
        entries = [e for e in cm.addrman.entries() if not e.is_terrible(now)]
        rows = []
        for e in entries:
            net = _network_name(e.host)
            if want is not None and net != want:
                continue
            rows.append({"time": int(e.timestamp), "services": e.services, "address": e.host,
                         "port": e.port, "network": net})
        random.shuffle(rows)
        return rows[:n] if n else rows

    async def m_disconnectnode(self, address="", nodeid=None) -> None:
        """disconnectnode ( "address" nodeid )
Immediately disconnects from the specified peer node."""
        cm = self._connman()
        if address and nodeid is not None:
            raise RPCError(RPC_INVALID_PARAMS, "Only one of address and nodeid should be provided.")
        ok = cm.disconnect(address=address or None, peer_id=_int(nodeid, "nodeid") if nodeid is not None else None)
        if not ok:
            raise RPCError(RPC_CLIENT_NODE_NOT_CONNECTED, "Node not found in connected nodes")

    async def m_getnetworkinfo(self) -> dict:
        """getnetworkinfo
Returns an object containing various state info regarding P2P networking.
"version" is the Bitcoin Core RPC version whose interface tinynode implements (310000 = Core
v31.0), so clients that check it (ElectrumX, bitcoin-cli -netinfo, btc-rpc-explorer) accept the
answers; tinynode's own name and version are in "subversion" (/tinynode:x.y.z/)."""
        cm = self.node.connman
        peers = cm.connected_peers() if cm is not None else []
        inbound = sum(1 for p in peers if p.inbound)
        netcfg = cm.config if cm is not None else None
        witness = bool(netcfg is not None and netcfg.advertise_witness)
        from ..mempool.policy import PolicyConfig
        from ..net.peer import format_sub_version
        relay = self.node.mempool.config if self.node.mempool is not None else PolicyConfig()
        services = netcfg.local_services if netcfg is not None else 1   # NETWORK_LIMITED when pruned
        return {"version": CORE_RPC_VERSION,
                "subversion": netcfg.user_agent if netcfg is not None else format_sub_version(),
                "protocolversion": 70016 if witness else 70015,
                "localservices": f"{services:016x}",
                "localservicesnames": [name for bit, name in ((1, "NETWORK"), (8, "WITNESS"),
                                                              (1024, "NETWORK_LIMITED"))
                                       if services & bit],
                # Core: !ignore_incoming_txs, false under -blocksonly
                "localrelay": not (netcfg is not None and netcfg.blocks_only), "timeoffset": 0,
                "networkactive": bool(cm.network_active) if cm is not None else False,
                "connections": len(peers), "connections_in": inbound, "connections_out": len(peers) - inbound,
                "networks": [], "relayfee": amount_to_json(relay.min_relay_fee.sat_per_kvb),
                "incrementalfee": amount_to_json(relay.incremental_relay_fee.sat_per_kvb),
                "localaddresses": ([{"address": self.node.config.bind, "port": self.node.p2p_port, "score": 1}]
                                   if cm is not None and cm.listen else []),
                "warnings": []}

    async def m_setnetworkactive(self, state) -> bool:
        """setnetworkactive state
Disable/enable all p2p network activity."""
        active = _bool(state, "state")
        self._connman().set_network_active(active)
        return active

    async def m_setban(self, subnet, command, bantime=0, absolute=False) -> None:
        """setban "subnet" "command" ( bantime absolute )
Attempts to add or remove an IP (optionally with :port for local addresses) from the banned list."""
        cm = self._connman()
        target, cmd = _str(subnet, "subnet"), _str(command, "command")
        host, port = target, None
        if target.count(":") == 1:
            host, p = target.split(":")
            port = _int(p, "port")
        if cmd == "add":
            if cm.is_banned(host, port):
                raise RPCError(RPC_CLIENT_NODE_ALREADY_ADDED, "Error: IP/Subnet already banned")
            secs = _int(bantime, "bantime")
            if _bool(absolute, "absolute") and secs:
                secs = secs - int(self.node.clock())
            cm.ban(host, port, float(secs) if secs > 0 else None)
        elif cmd == "remove":
            if not cm.unban(host, port):
                raise RPCError(RPC_CLIENT_INVALID_IP_OR_SUBNET, "Error: Unban failed. Requested address/subnet was not previously manually banned.")
        else:
            raise RPCError(RPC_MISC_ERROR, 'setban "subnet" "command"\ncommand must be "add" or "remove"')

    async def m_listbanned(self) -> list:
        """listbanned
List all manually banned IPs/Subnets."""
        now = int(self.node.clock())
        out = []
        for b in self._connman().list_banned():
            until = int(b["banned_until"])
            created = b.get("ban_created")  # null until ConnMan records when a ban was made
            created = int(created) if created is not None else None
            out.append({"address": b["address"], "ban_created": created, "banned_until": until,
                        "ban_duration": until - created if created is not None else None,
                        "time_remaining": max(0, until - now), "reason": b.get("reason")})
        return out

    async def m_clearbanned(self) -> None:
        """clearbanned
Clear all banned IPs."""
        self._connman().clear_banned()

    @staticmethod
    def _peer_address(address: Any) -> str:
        """`host:port` (or `[v6]:port`) → the canonical text ConnMan's deny-list holds."""
        from ..net.addrman import addr_key
        text = _str(address, "address").strip()
        host, sep, port = text.rpartition(":")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        try:
            p = int(port)
        except ValueError:
            p = -1
        if not sep or not host or not 0 < p < 65536:
            raise RPCError(RPC_INVALID_PARAMETER, f"Invalid address {text!r}: expected host:port")
        return addr_key(host, p)

    async def m_denypeer(self, address) -> None:
        """denypeer "host:port"
Never connect to or accept the peer listening at host:port until allowpeer (tinynode; the lab's partitions).
Current connections to that peer (by address or advertised listening address) are dropped."""
        self._connman().deny(self._peer_address(address))

    async def m_allowpeer(self, address) -> None:
        """allowpeer "host:port"
Undo denypeer for host:port (tinynode); peers added with --peers or addnode reconnect."""
        self._connman().allow(self._peer_address(address))

    async def m_listdeniedpeers(self) -> list:
        """listdeniedpeers
The host:port addresses denied with denypeer, sorted (tinynode)."""
        return self._connman().denied()
