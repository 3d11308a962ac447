"""BIP155 network addresses: Core's `CNetAddr` (netaddress.h/.cpp) without its I/O.

An address is a BIP155 network id and that network's bytes:

=====  =======  =====  =========================================================
id     network  bytes  text form (Core `CNetAddr::ToStringAddr`)
=====  =======  =====  =========================================================
1      IPv4     4      ``1.2.3.4``
2      IPv6     16     ``2001:db8::1`` (RFC 5952)
3      TORv2    10     not supported since Core 22: read and ignored
4      TORv3    32     base32(pubkey ‖ checksum[2] ‖ version 3) + ``.onion``
5      I2P      32     base32 without padding + ``.b32.i2p``
6      CJDNS    16     the IPv6 form (all start with ``fc``)
=====  =======  =====  =========================================================

`read_v2` is Core's ``CNetAddr::UnserializeV2Stream``: an address longer than 512 bytes
(MAX_ADDRV2_SIZE) or one of networks 1, 2, 4, 5, 6 with the wrong length is an error ("Address
too long: 513 > 512", "BIP155 IPv4 address with length 5 (should be 4)") that ends the
message; an unknown network id (TORv2 included) is skipped and read as the invalid address
``::`` (Core's default `CNetAddr`), as is an IPv4 or TORv2 address embedded in IPv6, so the
addresses after it are still read. `NetAddress.v1_bytes` is the pre-BIP155 16-byte form
(Core ``SerializeV1Array``): IPv4 mapped into IPv6, TORv3 / I2P / CJDNS as zeros — they are
not ``addr``-compatible (`is_addr_v1_compatible`).

`parse_host` reads the text forms back (Core ``LookupHost`` without DNS, incl. ``SetSpecial``
for ``.onion`` and ``.b32.i2p``). A CJDNS address is text-identical to an IPv6 one, so as Core
without ``-cjdnsreachable`` (``MaybeFlipIPv6toCJDNS``) text ``fc…`` reads as IPv6.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
from dataclasses import dataclass
from enum import IntEnum

from tinynode.primitives.serialize import ByteReader, DecodeError, ser_compact_size

__all__ = [
    "BIP155Network",
    "ADDR_SIZES",
    "MAX_ADDRV2_SIZE",
    "NetAddress",
    "INVALID_ADDRESS",
    "parse_host",
    "network_name",
]

#: Core CNetAddr::MAX_ADDRV2_SIZE: the most bytes a BIP155 address may claim.
MAX_ADDRV2_SIZE = 512


class BIP155Network(IntEnum):
    """Core `CNetAddr::BIP155Network`."""

    IPV4 = 1
    IPV6 = 2
    TORV2 = 3
    TORV3 = 4
    I2P = 5
    CJDNS = 6


#: The address length of each network tinynode reads (Core ADDR_*_SIZE); TORv2 is not one.
ADDR_SIZES = {
    BIP155Network.IPV4: 4,
    BIP155Network.IPV6: 16,
    BIP155Network.TORV3: 32,
    BIP155Network.I2P: 32,
    BIP155Network.CJDNS: 16,
}

#: Core GetNetworkName: the name getnodeaddresses / getpeerinfo show for each network.
_NAMES = {
    BIP155Network.IPV4: "ipv4",
    BIP155Network.IPV6: "ipv6",
    BIP155Network.TORV3: "onion",
    BIP155Network.I2P: "i2p",
    BIP155Network.CJDNS: "cjdns",
}
_LENGTH_NAMES = {
    BIP155Network.IPV4: "IPv4",
    BIP155Network.IPV6: "IPv6",
    BIP155Network.TORV3: "TORv3",
    BIP155Network.I2P: "I2P",
    BIP155Network.CJDNS: "CJDNS",
}

_IPV4_IN_IPV6 = bytes(10) + b"\xff\xff"
_TORV2_IN_IPV6 = bytes.fromhex("fd87d87eeb43")
_INTERNAL_IN_IPV6 = bytes.fromhex("fd6b88c08724")
_TORV3_VERSION = 3
_ONION_SUFFIX = ".onion"
_I2P_SUFFIX = ".b32.i2p"


def _onion_checksum(pubkey: bytes) -> bytes:
    """Core torv3::Checksum: SHA3-256(".onion checksum" ‖ pubkey ‖ version)[:2]."""
    return hashlib.sha3_256(b".onion checksum" + pubkey + bytes((_TORV3_VERSION,))).digest()[:2]


def _b32encode(data: bytes) -> str:
    return base64.b32encode(data).decode("ascii").lower().rstrip("=")


def _b32decode(text: str) -> bytes | None:
    try:
        return base64.b32decode(text.upper() + "=" * (-len(text) % 8))
    except (ValueError, base64.binascii.Error):
        return None


@dataclass(frozen=True, slots=True)
class NetAddress:
    """Core `CNetAddr`: a BIP155 network id and its address bytes (network byte order)."""

    network: int
    addr: bytes

    def __post_init__(self) -> None:
        size = ADDR_SIZES.get(self.network)   # type: ignore[call-overload]
        if size is None or len(self.addr) != size:
            raise ValueError(f"a network {self.network} address is not {len(self.addr)} bytes")

    # ---------------------------------------------------------------- text
    @property
    def host(self) -> str:
        """Core `CNetAddr::ToStringAddr`."""
        net = self.network
        if net == BIP155Network.IPV4:
            return str(ipaddress.IPv4Address(self.addr))
        if net in (BIP155Network.IPV6, BIP155Network.CJDNS):
            return str(ipaddress.IPv6Address(self.addr))
        if net == BIP155Network.TORV3:
            return _b32encode(self.addr + _onion_checksum(self.addr) + bytes((_TORV3_VERSION,))) + _ONION_SUFFIX
        return _b32encode(self.addr) + _I2P_SUFFIX

    @property
    def network_name(self) -> str:
        """Core `GetNetworkName(GetNetwork())`: ipv4, ipv6, onion, i2p, cjdns."""
        return _NAMES[BIP155Network(self.network)]

    @property
    def is_valid(self) -> bool:
        """Core `CNetAddr::IsValid` for what tinynode reads: not the unspecified address; a
        CJDNS address starts with 0xfc."""
        if self.network == BIP155Network.CJDNS:
            return self.addr[0] == 0xFC
        return self.addr != bytes(len(self.addr)) or self.network in (
            BIP155Network.TORV3, BIP155Network.I2P)

    @property
    def is_addr_v1_compatible(self) -> bool:
        """Core `IsAddrV1Compatible`: only IPv4 and IPv6 fit an `addr` message."""
        return self.network in (BIP155Network.IPV4, BIP155Network.IPV6)

    # ---------------------------------------------------------------- bytes
    @property
    def v1_bytes(self) -> bytes:
        """Core `SerializeV1Array`: 16 bytes, IPv4 mapped, the BIP155-only networks as zeros."""
        if self.network == BIP155Network.IPV4:
            return _IPV4_IN_IPV6 + self.addr
        if self.network == BIP155Network.IPV6:
            return self.addr
        return bytes(16)

    @classmethod
    def from_v1_bytes(cls, ip: bytes) -> "NetAddress":
        """Core `SetLegacyIPv6`: an IPv4-mapped address is IPv4 (TORv2 / internal embeddings read
        as the invalid ``::`` — tinynode has neither)."""
        if len(ip) != 16:
            raise ValueError("a v1 address is 16 bytes")
        if ip.startswith(_IPV4_IN_IPV6):
            return cls(BIP155Network.IPV4, ip[12:])
        if ip.startswith(_TORV2_IN_IPV6) or ip.startswith(_INTERNAL_IN_IPV6):
            return INVALID_ADDRESS
        return cls(BIP155Network.IPV6, ip)

    def serialize_v2(self) -> bytes:
        """Core `SerializeV2Stream`: network id u8, compact-size length, the bytes."""
        return bytes((self.network,)) + ser_compact_size(len(self.addr)) + self.addr

    @classmethod
    def read_v2(cls, r: ByteReader) -> "NetAddress":
        """Core `UnserializeV2Stream` (see the module docstring); errors carry Core's text."""
        net = r.u8()
        size = r.compact_size()
        if size > MAX_ADDRV2_SIZE:
            raise DecodeError(f"Address too long: {size} > {MAX_ADDRV2_SIZE}")
        want = ADDR_SIZES.get(net)   # type: ignore[call-overload]
        if want is None:
            r.skip(size)             # a network from the future, or TORv2: ignored
            return INVALID_ADDRESS
        if size != want:
            raise DecodeError(f"BIP155 {_LENGTH_NAMES[BIP155Network(net)]} address with length "
                              f"{size} (should be {want})")
        addr = r.read(size)
        if net == BIP155Network.IPV6 and (addr.startswith(_IPV4_IN_IPV6) or addr.startswith(_TORV2_IN_IPV6)
                                          or addr.startswith(_INTERNAL_IN_IPV6)):
            return INVALID_ADDRESS   # IPv4 / TORv2 must not come embedded in IPv6
        return cls(net, addr)

    def __repr__(self) -> str:
        return f"NetAddress({self.host})"


#: Core's default-constructed `CNetAddr` (``::``): what an ignored BIP155 entry reads as.
INVALID_ADDRESS = NetAddress(BIP155Network.IPV6, bytes(16))


def parse_host(host: str) -> NetAddress:
    """Core `LookupHost(name, false)` incl. `SetSpecial`: an IPv4 / IPv6 literal (``[…]``
    allowed, IPv4-mapped IPv6 read as IPv4), a TORv3 ``….onion`` (version 3 and checksum
    checked) or an I2P ``….b32.i2p``. ValueError for anything else."""
    text = host.strip()
    lower = text.lower()
    if lower.endswith(_ONION_SUFFIX):
        raw = _b32decode(lower[: -len(_ONION_SUFFIX)])
        if raw is None or len(raw) != 35 or raw[34] != _TORV3_VERSION or raw[32:34] != _onion_checksum(raw[:32]):
            raise ValueError(f"not a TORv3 address: {host!r}")
        return NetAddress(BIP155Network.TORV3, raw[:32])
    if lower.endswith(_I2P_SUFFIX):
        body = lower[: -len(_I2P_SUFFIX)]
        raw = _b32decode(body) if len(body) == 52 else None
        if raw is None or len(raw) != 32:
            raise ValueError(f"not an I2P address: {host!r}")
        return NetAddress(BIP155Network.I2P, raw)
    try:
        ip = ipaddress.ip_address(text.strip("[]"))
    except ValueError as e:
        raise ValueError(f"not an IP address: {host!r}") from e
    if ip.version == 4:
        return NetAddress(BIP155Network.IPV4, ip.packed)
    return NetAddress.from_v1_bytes(ip.packed)


def network_name(host: str) -> str | None:
    """The network of a host string (ipv4, ipv6, onion, i2p), or None if it is not an address."""
    try:
        return parse_host(host).network_name
    except ValueError:
        return None
