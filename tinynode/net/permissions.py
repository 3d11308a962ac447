"""P2P permissions of `-whitelist` and `-whitebind` (Bitcoin Core `net_permissions.{h,cpp}`).

A value is `[PERMISSIONS@]ADDRESS`. `PERMISSIONS` is a comma-separated list of names:

| name | what the peer may do (Core's NET_PERMISSIONS_DOC) |
|---|---|
| `bloomfilter` (`bloom`) | BIP37 filtered blocks and txs (carried; tinynode has no BIP37) |
| `noban` | never banned or disconnected for misbehaviour, protected from eviction; implies `download` |
| `forcerelay` | a tx it sends that we already have is relayed anyway; implies `relay` |
| `relay` | its txs are accepted even where we do not ask peers for txs (blocksonly) |
| `mempool` | may ask for our mempool with BIP35 `mempool` |
| `download` | may download even past limits (carried; tinynode has no upload target) |
| `addr` | its `addr` messages are not rate limited |
| `all` | every one of them |

`in` and `out` (Core v27) say which connections a `-whitelist` range applies to (inbound only
when neither is given); `-whitebind` listens, so `out` is refused there. A value without `@`
grants the implicit set, which Core resolves at connection time from `-whitelistrelay`
(default on) and `-whitelistforcerelay` (default off) plus `mempool` and `noban`: tinynode has
neither option, so the implicit set is `noban,relay,mempool,download`. `@ADDRESS` grants nothing.

Errors are Core's sentences (`ConfigError`s at start-up): "Invalid P2P permission: 'x'",
"Only direction was set, no permissions: 'in@1.2.3.4'", "Invalid netmask specified in
-whitelist: '1.2.3.4/33'", "Cannot resolve -whitebind address: 'localhost:7'", "Need to specify
a port with -whitebind: '127.0.0.1'", "whitebind may only be used for incoming connections
("out" was passed)". Addresses are numeric, as Core reads them (no DNS look-up).
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass
from typing import Iterable

__all__ = ["NetPermissionFlags", "PermissionParseError", "WhitelistEntry", "WhitebindEntry",
           "IMPLICIT_PERMISSIONS", "permission_names", "parse_whitelist", "parse_whitebind",
           "whitelist_permissions", "is_loopback"]


class NetPermissionFlags(enum.IntFlag):
    """Core `NetPermissionFlags`, same bits. Composite flags hold what they imply:
    `FORCE_RELAY` contains `RELAY`, `NOBAN` contains `DOWNLOAD`; test with `f in flags`."""

    NONE = 0
    BLOOMFILTER = 1 << 1
    RELAY = 1 << 3
    FORCE_RELAY = (1 << 2) | RELAY
    DOWNLOAD = 1 << 6
    NOBAN = (1 << 4) | DOWNLOAD
    MEMPOOL = 1 << 5
    ADDR = 1 << 7
    ALL = BLOOMFILTER | FORCE_RELAY | RELAY | NOBAN | MEMPOOL | DOWNLOAD | ADDR


#: What a value without `@` grants (Core's Implicit with -whitelistrelay=1, -whitelistforcerelay=0).
IMPLICIT_PERMISSIONS = (NetPermissionFlags.NOBAN | NetPermissionFlags.RELAY
                        | NetPermissionFlags.MEMPOOL)

#: Names in the order of Core's `NetPermissions::ToStrings` (getpeerinfo's `permissions`).
_NAMES = (("bloomfilter", NetPermissionFlags.BLOOMFILTER), ("noban", NetPermissionFlags.NOBAN),
          ("forcerelay", NetPermissionFlags.FORCE_RELAY), ("relay", NetPermissionFlags.RELAY),
          ("mempool", NetPermissionFlags.MEMPOOL), ("download", NetPermissionFlags.DOWNLOAD),
          ("addr", NetPermissionFlags.ADDR))

_BY_NAME = {"bloomfilter": NetPermissionFlags.BLOOMFILTER, "bloom": NetPermissionFlags.BLOOMFILTER,
            "noban": NetPermissionFlags.NOBAN, "forcerelay": NetPermissionFlags.FORCE_RELAY,
            "mempool": NetPermissionFlags.MEMPOOL, "download": NetPermissionFlags.DOWNLOAD,
            "all": NetPermissionFlags.ALL, "relay": NetPermissionFlags.RELAY,
            "addr": NetPermissionFlags.ADDR}


class PermissionParseError(ValueError):
    """A -whitelist / -whitebind value Core would refuse; the message is Core's sentence."""


def permission_names(flags: int) -> list[str]:
    """Mirrors Core `NetPermissions::ToStrings()`: every permission `flags` holds in full."""
    f = NetPermissionFlags(flags)
    return [name for name, bit in _NAMES if bit in f]


def _parse_flags(text: str, *, whitebind: bool) -> tuple[NetPermissionFlags, bool, bool, str]:
    """Mirrors Core `TryParsePermissionFlags()`: (flags, inbound, outbound, rest of `text`)."""
    perms, at, rest = text.partition("@")
    if not at:
        return IMPLICIT_PERMISSIONS, True, False, text
    flags = NetPermissionFlags.NONE
    inbound = outbound = False
    for name in perms.split(","):
        if name in _BY_NAME:
            flags |= _BY_NAME[name]
        elif name == "in":
            inbound = True
        elif name == "out":
            if whitebind:
                raise PermissionParseError(
                    'whitebind may only be used for incoming connections ("out" was passed)')
            outbound = True
        elif name:                                  # Core allows empty entries
            raise PermissionParseError(f"Invalid P2P permission: '{name}'")
    if not inbound and not outbound:
        inbound = True                              # a whitelist applies to inbound by default
    elif flags == NetPermissionFlags.NONE:
        raise PermissionParseError(f"Only direction was set, no permissions: '{text}'")
    return flags, inbound, outbound, rest


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped                       # a dual-stack socket's view of an IPv4 peer
    return ip


def is_loopback(host: str) -> bool:
    """Mirrors Core `CNetAddr::IsLocal()`: 127.0.0.0/8, 0.0.0.0/8 or ::1."""
    ip = _ip(host)
    if ip is None:
        return False
    if isinstance(ip, ipaddress.IPv4Address):
        return ip.is_loopback or ip in ipaddress.IPv4Network("0.0.0.0/8")
    return ip.is_loopback


@dataclass(frozen=True, slots=True)
class WhitelistEntry:
    """One parsed `-whitelist` value (Core `NetWhitelistPermissions` + its direction)."""

    flags: NetPermissionFlags
    network: ipaddress.IPv4Network | ipaddress.IPv6Network
    inbound: bool = True
    outbound: bool = False

    def matches(self, host: str, inbound: bool) -> bool:
        """Core `CSubNet::Match()` for a connection of this direction."""
        if not (self.inbound if inbound else self.outbound):
            return False
        ip = _ip(host)
        return ip is not None and ip.version == self.network.version and ip in self.network

    def __str__(self) -> str:
        dirs = (["in"] if self.inbound else []) + (["out"] if self.outbound else [])
        return f"{','.join(permission_names(self.flags) + dirs)}@{self.network}"


@dataclass(frozen=True, slots=True)
class WhitebindEntry:
    """One parsed `-whitebind` value (Core `NetWhitebindPermissions`): a listener whose inbound
    peers get `flags`."""

    flags: NetPermissionFlags
    host: str
    port: int

    def __str__(self) -> str:
        h = f"[{self.host}]" if ":" in self.host else self.host
        return f"{','.join(permission_names(self.flags))}@{h}:{self.port}"


def parse_whitelist(text: str) -> WhitelistEntry:
    """Mirrors Core `NetWhitelistPermissions::TryParse()`: `[PERMS@]IP[/MASK]`, the mask a
    prefix length or a dotted netmask; host bits are cleared as Core's `CSubNet` does."""
    flags, inbound, outbound, net = _parse_flags(text, whitebind=False)
    addr, slash, mask = net.partition("/")
    if addr.startswith("[") and addr.endswith("]"):
        addr = addr[1:-1]                           # Core's LookupHost takes a bracketed IPv6
    try:
        if not addr or addr != addr.strip() or (slash and not mask):
            raise ValueError(net)
        if "." in mask:                             # a netmask must be leading ones (no hostmask)
            bits = int(ipaddress.IPv4Address(mask))
            if bits and (bits ^ 0xFFFFFFFF) & ((bits ^ 0xFFFFFFFF) + 1):
                raise ValueError(net)
        network = ipaddress.ip_network(f"{addr}{slash}{mask}", strict=False)
    except ValueError:
        raise PermissionParseError(f"Invalid netmask specified in -whitelist: '{net}'") from None
    return WhitelistEntry(flags, network, inbound, outbound)


def _split_host_port(text: str) -> tuple[str, int] | None:
    """Core `SplitHostPort` + a numeric `Lookup`: (ip, port) with port 0 if none, None if the
    address is not a numeric IP with a valid port."""
    host, port_s = text, ""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            return None
        host, rest = text[1:end], text[end + 1:]
        if rest:
            if not rest.startswith(":"):
                return None
            port_s = rest[1:]
    elif text.count(":") == 1:
        host, port_s = text.split(":")
    port = 0
    if port_s:
        if not port_s.isdigit() or not 0 <= int(port_s) < 65536:
            return None
        port = int(port_s)
    ip = _ip(host)
    if ip is None:
        return None
    return str(ip), port


def parse_whitebind(text: str) -> WhitebindEntry:
    """Mirrors Core `NetWhitebindPermissions::TryParse()`: `[PERMS@]IP:PORT`, no `out`."""
    flags, _, _, bind = _parse_flags(text, whitebind=True)
    hp = _split_host_port(bind)
    if hp is None:
        raise PermissionParseError(f"Cannot resolve -whitebind address: '{bind}'")
    if hp[1] == 0:
        raise PermissionParseError(f"Need to specify a port with -whitebind: '{bind}'")
    return WhitebindEntry(flags, hp[0], hp[1])


def whitelist_permissions(entries: Iterable[WhitelistEntry], host: str, inbound: bool,
                          flags: int = 0) -> NetPermissionFlags:
    """Mirrors Core `CConnman::AddWhitelistPermissionFlags()`: `flags` plus those of every
    entry matching the peer at `host` in that direction."""
    out = NetPermissionFlags(flags)
    for e in entries:
        if e.matches(host, inbound):
            out |= e.flags
    return out
