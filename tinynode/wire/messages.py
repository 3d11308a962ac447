"""One frozen value per P2P message, with its command, payload cap and byte layout.

Each class mirrors a Bitcoin Core message (`src/protocol.h`, `net_processing.cpp`) and btcd's
`wire/msgX.go`:

* ``COMMAND`` — the ASCII command as a `str` (e.g. ``"version"``); the envelope pads it to 12 bytes.
* ``MAX_PAYLOAD`` — the largest payload a well-formed message of this kind has (btcd's
  ``MaxPayloadLength``); as Core, the envelope enforces only 4,000,000 for every message.
* ``parse(reader)`` / ``serialize()`` — the payload only. Every count is bounded by the bytes
  left before anything is allocated (Core's MAX_SIZE vector rule); the protocol limits (1,000
  addr, 50,000 inv/getdata, 2,000 headers, 101 locator hashes) are the handlers', which punish
  as Core with "<type> message size = N". `from_payload(payload)` also rejects trailing bytes. Any problem is a
  `DecodeError` (tinynode.primitives.serialize).

`MESSAGE_TYPES` maps each command to its class (Core's test framework ``MESSAGEMAP``). Commands
outside it (``feefilter``, ``sendcmpct`` …) are simply unknown: the envelope reports them so the
peer can skip the payload at no cost. ``sendaddrv2`` / ``addrv2`` are BIP155's (`netaddress`).
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import ClassVar, Mapping

from tinynode.primitives.block import HEADER_SIZE as BLOCK_HEADER_SIZE
from tinynode.primitives.block import Block, BlockHeader
from tinynode.primitives.hashes import ZERO_HASH, hash_to_hex
from tinynode.primitives.serialize import ByteReader, DecodeError, ser_compact_size
from tinynode.primitives.tx import Tx

from .constants import (
    MAX_ADDR,
    MAX_HEADERS,
    MAX_INV,
    MAX_LOCATOR,
    MAX_PROTOCOL_MESSAGE_LENGTH,
    MAX_REJECT_MESSAGE_LENGTH,
    MAX_REJECT_REASON_LENGTH,
    MAX_USER_AGENT_LENGTH,
    MSG_WITNESS_FLAG,
    NODE_NETWORK,
    PROTOCOL_VERSION,
    USER_AGENT,
    InvType,
)
from .netaddress import NetAddress, parse_host

__all__ = [
    "Message",
    "NetAddr",
    "TimedAddr",
    "NULL_NETADDR",
    "InvVect",
    "Version",
    "Verack",
    "Ping",
    "Pong",
    "Addr",
    "NetAddrV2",
    "TimedAddrV2",
    "AddrV2",
    "SendAddrV2",
    "timed_addr",
    "addr_message",
    "GetAddr",
    "Inv",
    "GetData",
    "NotFound",
    "GetHeaders",
    "GetBlocks",
    "Headers",
    "BlockMsg",
    "TxMsg",
    "MemPool",
    "SendHeaders",
    "Reject",
    "MESSAGE_TYPES", "sanitize_string", "WtxidRelay", "strip_block_witness",
    "ip_to_bytes",
    "bytes_to_ip",
]

_U16BE = struct.Struct(">H")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_VERSION_HEAD = struct.Struct("<iQq")
_IPV4_MAPPED_PREFIX = bytes(10) + b"\xff\xff"


def _compact_len(n: int) -> int:
    return len(ser_compact_size(n))


def _ser_str(s: str) -> bytes:
    b = s.encode("utf-8", "surrogateescape")
    return ser_compact_size(len(b)) + b


def _parse_str(r: ByteReader, max_len: int) -> str:
    # surrogateescape keeps arbitrary bytes round-trippable (serialize gives the bytes back).
    return r.var_bytes(max_len).decode("utf-8", "surrogateescape")


#: Core's SAFE_CHARS_DEFAULT (util/strencodings.cpp): what a peer's user agent may show.
_SAFE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;-_/:?@()")


def sanitize_string(text: str) -> str:
    """Core `SanitizeString`: drop every character outside the safe set, so a peer's string
    (its user agent) cannot forge log lines (newlines) or send terminal escape codes."""
    return "".join(c for c in text if c in _SAFE_CHARS)


def _short_hex(h: bytes) -> str:
    return hash_to_hex(h)[:16]


# --------------------------------------------------------------------------------------------
# Network addresses


def ip_to_bytes(host: str) -> bytes:
    """The 16-byte wire form of an IPv4 or IPv6 address string (IPv4 as ``::ffff:a.b.c.d``)."""
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError as e:
        raise ValueError(f"not an IP address: {host!r}") from e
    if ip.version == 4:
        return _IPV4_MAPPED_PREFIX + ip.packed
    return ip.packed


def bytes_to_ip(ip: bytes) -> str:
    """The display form of a 16-byte wire address: dotted quad for IPv4-mapped, else IPv6."""
    if len(ip) != 16:
        raise ValueError("a wire address is 16 bytes")
    if ip.startswith(_IPV4_MAPPED_PREFIX):
        return str(ipaddress.IPv4Address(ip[12:]))
    return str(ipaddress.IPv6Address(ip))


@dataclass(frozen=True, slots=True)
class NetAddr:
    """Core's CService + services as in a `version` message: services u64, ip[16], port (big-endian)."""

    services: int
    ip: bytes
    port: int

    SIZE: ClassVar[int] = 26

    @classmethod
    def from_host(cls, host: str, port: int, services: int = NODE_NETWORK) -> "NetAddr":
        return cls(services, ip_to_bytes(host), port)

    @property
    def host(self) -> str:
        return bytes_to_ip(self.ip)

    @property
    def is_ipv4(self) -> bool:
        return self.ip.startswith(_IPV4_MAPPED_PREFIX)

    def serialize(self) -> bytes:
        return _U64.pack(self.services) + self.ip + _U16BE.pack(self.port)

    @classmethod
    def parse(cls, r: ByteReader) -> "NetAddr":
        return cls(r.u64(), r.read(16), r.u16be())

    def __repr__(self) -> str:
        host = self.host
        if not self.is_ipv4:
            host = f"[{host}]"
        return f"NetAddr({host}:{self.port}, services={self.services:#x})"


#: The unroutable address Core puts in fields it does not fill (0.0.0.0:0, no services).
NULL_NETADDR = NetAddr(0, _IPV4_MAPPED_PREFIX + bytes(4), 0)


@dataclass(frozen=True, slots=True)
class TimedAddr:
    """An `addr` entry: last-seen time u32 followed by a NetAddr (Core's CAddress, nTime)."""

    time: int
    addr: NetAddr

    SIZE: ClassVar[int] = 30

    def serialize(self) -> bytes:
        return _U32.pack(self.time) + self.addr.serialize()

    @classmethod
    def parse(cls, r: ByteReader) -> "TimedAddr":
        return cls(r.u32(), NetAddr.parse(r))

    def __repr__(self) -> str:
        return f"TimedAddr({self.time}, {self.addr!r})"


# --------------------------------------------------------------------------------------------
# Inventory


@dataclass(frozen=True, slots=True)
class InvVect:
    """Core's CInv: type u32 and a 32-byte hash in internal byte order."""

    type: int
    hash: bytes

    SIZE: ClassVar[int] = 36

    @property
    def base_type(self) -> int:
        """The type without the witness flag (a witness block request is still a block)."""
        return self.type & ~MSG_WITNESS_FLAG

    @property
    def is_tx(self) -> bool:
        return self.base_type == InvType.TX

    @property
    def is_block(self) -> bool:
        return self.base_type == InvType.BLOCK

    @property
    def hash_hex(self) -> str:
        return hash_to_hex(self.hash)

    def serialize(self) -> bytes:
        return _U32.pack(self.type) + self.hash

    @classmethod
    def parse(cls, r: ByteReader) -> "InvVect":
        return cls(r.u32(), r.read(32))

    def __repr__(self) -> str:
        try:
            name = InvType(self.type).name.lower()
        except ValueError:
            name = f"type{self.type}"
        return f"{name}:{self.hash_hex}"


# --------------------------------------------------------------------------------------------
# Messages


class Message:
    """Base of every message class (Core's ``msg_*``, btcd's ``Message`` interface)."""

    __slots__ = ()
    COMMAND: ClassVar[str]
    MAX_PAYLOAD: ClassVar[int]

    def serialize(self) -> bytes:  # pragma: no cover - every subclass overrides
        raise NotImplementedError

    @classmethod
    def parse(cls, r: ByteReader) -> "Message":  # pragma: no cover
        raise NotImplementedError

    @classmethod
    def from_payload(cls, payload: bytes) -> "Message":
        """Parse a whole payload; trailing bytes are a `DecodeError` (btcd's readMessage rule)."""
        r = ByteReader(payload)
        msg = cls.parse(r)
        r.expect_end()
        return msg

    @classmethod
    def from_bytes(cls, payload: bytes) -> "Message":
        """The same as `from_payload` (the name the primitives use)."""
        return cls.from_payload(payload)


class _Empty(Message):
    __slots__ = ()
    MAX_PAYLOAD = 0

    def serialize(self) -> bytes:
        return b""

    @classmethod
    def parse(cls, r: ByteReader) -> "_Empty":
        return cls()

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


_VERSION_MAX_PAYLOAD = (
    _VERSION_HEAD.size + 2 * NetAddr.SIZE + 8
    + _compact_len(MAX_USER_AGENT_LENGTH) + MAX_USER_AGENT_LENGTH + 4 + 1
)


@dataclass(frozen=True, slots=True, repr=False)
class Version(Message):
    """`version` in Core's full layout (PushMessage(VERSION, ...) in net_processing.cpp).

    version i32 | services u64 | timestamp i64 | addr_recv NetAddr | addr_from NetAddr |
    nonce u64 | user_agent var_str (≤ 256) | start_height i32 | relay bool (BIP 37, optional).

    `relay` is None when the peer left the byte out (pre-70001 peers); serialize() then omits it.
    Any nonzero relay byte reads as True, as Core's bool deserialization does.
    """

    version: int
    services: int
    timestamp: int
    addr_recv: NetAddr
    addr_from: NetAddr
    nonce: int
    user_agent: str
    start_height: int
    relay: bool | None = True

    COMMAND: ClassVar[str] = "version"
    MAX_PAYLOAD: ClassVar[int] = _VERSION_MAX_PAYLOAD

    @classmethod
    def create(cls, *, nonce: int, start_height: int, timestamp: int,
               addr_recv: NetAddr = NULL_NETADDR, addr_from: NetAddr = NULL_NETADDR,
               services: int = NODE_NETWORK, relay: bool | None = True,
               user_agent: str = USER_AGENT, version: int = PROTOCOL_VERSION) -> "Version":
        """Our own version message with Core's defaults (protocol 70015, NODE_NETWORK)."""
        return cls(version, services, timestamp, addr_recv, addr_from, nonce, user_agent,
                   start_height, relay)

    def serialize(self) -> bytes:
        parts = [
            _VERSION_HEAD.pack(self.version, self.services, self.timestamp),
            self.addr_recv.serialize(),
            self.addr_from.serialize(),
            _U64.pack(self.nonce),
            _ser_str(self.user_agent),
            struct.pack("<i", self.start_height),
        ]
        if self.relay is not None:
            parts.append(b"\x01" if self.relay else b"\x00")
        return b"".join(parts)

    @classmethod
    def parse(cls, r: ByteReader) -> "Version":
        version, services, timestamp = _VERSION_HEAD.unpack(r.read(_VERSION_HEAD.size))
        addr_recv = NetAddr.parse(r)
        addr_from = NetAddr.parse(r)
        nonce = r.u64()
        user_agent = _parse_str(r, MAX_USER_AGENT_LENGTH)
        start_height = r.i32()
        relay = bool(r.u8()) if r.remaining() else None
        return cls(version, services, timestamp, addr_recv, addr_from, nonce, user_agent,
                   start_height, relay)

    def __repr__(self) -> str:
        return (f"Version({self.version}, {self.user_agent!r}, services={self.services:#x}, "
                f"height={self.start_height}, nonce={self.nonce:#x}, relay={self.relay})")


@dataclass(frozen=True, slots=True, repr=False)
class Verack(_Empty):
    """`verack`: acknowledges the peer's version. Empty payload."""

    COMMAND: ClassVar[str] = "verack"


@dataclass(frozen=True, slots=True, repr=False)
class Ping(Message):
    """`ping` with a u64 nonce (BIP 31). The pre-BIP 31 empty ping is not accepted."""

    nonce: int

    COMMAND: ClassVar[str] = "ping"
    MAX_PAYLOAD: ClassVar[int] = 8

    def serialize(self) -> bytes:
        return _U64.pack(self.nonce)

    @classmethod
    def parse(cls, r: ByteReader) -> "Ping":
        return cls(r.u64())

    def __repr__(self) -> str:
        return f"Ping({self.nonce:#x})"


@dataclass(frozen=True, slots=True, repr=False)
class Pong(Message):
    """`pong` echoing a ping's nonce (BIP 31)."""

    nonce: int

    COMMAND: ClassVar[str] = "pong"
    MAX_PAYLOAD: ClassVar[int] = 8

    def serialize(self) -> bytes:
        return _U64.pack(self.nonce)

    @classmethod
    def parse(cls, r: ByteReader) -> "Pong":
        return cls(r.u64())

    def __repr__(self) -> str:
        return f"Pong({self.nonce:#x})"


@dataclass(frozen=True, slots=True, repr=False)
class Addr(Message):
    """`addr`: TimedAddr entries; a peer may send at most 1,000 (Core's MAX_ADDR_TO_SEND, checked by the handler)."""

    addrs: tuple[TimedAddr, ...]

    COMMAND: ClassVar[str] = "addr"
    MAX_PAYLOAD: ClassVar[int] = _compact_len(MAX_ADDR) + MAX_ADDR * TimedAddr.SIZE

    def __post_init__(self) -> None:
        if not isinstance(self.addrs, tuple):
            object.__setattr__(self, "addrs", tuple(self.addrs))

    def serialize(self) -> bytes:
        if len(self.addrs) > MAX_ADDR:
            raise ValueError(f"addr carries at most {MAX_ADDR} entries")
        return ser_compact_size(len(self.addrs)) + b"".join(a.serialize() for a in self.addrs)

    @classmethod
    def parse(cls, r: ByteReader) -> "Addr":
        n = r.compact_size()
        if n * TimedAddr.SIZE > r.remaining():
            raise DecodeError(f"addr claims {n} entries, payload too short")
        return cls(tuple(TimedAddr.parse(r) for _ in range(n)))

    def __repr__(self) -> str:
        head = ", ".join(repr(a.addr) for a in self.addrs[:3])
        more = f", +{len(self.addrs) - 3}" if len(self.addrs) > 3 else ""
        return f"Addr([{head}{more}])"


@dataclass(frozen=True, slots=True)
class NetAddrV2:
    """Core's CService + services in BIP155 form: a `NetAddress` of any network and a port."""

    services: int
    address: NetAddress
    port: int

    @classmethod
    def from_host(cls, host: str, port: int, services: int = NODE_NETWORK) -> "NetAddrV2":
        return cls(services, parse_host(host), port)

    @property
    def host(self) -> str:
        return self.address.host

    @property
    def network(self) -> int:
        return self.address.network

    def __repr__(self) -> str:
        host = self.host
        if ":" in host:
            host = f"[{host}]"
        return f"NetAddrV2({host}:{self.port}, services={self.services:#x})"


#: the smallest addrv2 entry: time 4, services 1, network 1, length 1 (0 bytes), port 2
_ADDRV2_MIN_ENTRY = 9


@dataclass(frozen=True, slots=True)
class TimedAddrV2:
    """An `addrv2` entry, Core's CAddress in V2_NETWORK form (BIP155): time u32 | services
    compact size (not range-checked, Core's CompactSizeFormatter<false>) | network u8 |
    address length compact size (≤ 512) | address | port u16 big-endian."""

    time: int
    addr: NetAddrV2

    def serialize(self) -> bytes:
        a = self.addr
        return (_U32.pack(self.time) + ser_compact_size(a.services) + a.address.serialize_v2()
                + _U16BE.pack(a.port))

    @classmethod
    def parse(cls, r: ByteReader) -> "TimedAddrV2":
        time = r.u32()
        services = r.compact_size(0xFFFF_FFFF_FFFF_FFFF)
        address = NetAddress.read_v2(r)
        return cls(time, NetAddrV2(services, address, r.u16be()))

    def __repr__(self) -> str:
        return f"TimedAddrV2({self.time}, {self.addr!r})"


@dataclass(frozen=True, slots=True, repr=False)
class AddrV2(Message):
    """`addrv2` (BIP155): TimedAddrV2 entries. As Core's vector read, the count is only bounded
    by the payload (each entry is at least 9 bytes); the 1,000 limit is the handler's
    (Misbehaving "addrv2 message size = N"). Entries of unknown networks read as ``::``."""

    addrs: tuple[TimedAddrV2, ...]

    COMMAND: ClassVar[str] = "addrv2"
    MAX_PAYLOAD: ClassVar[int] = MAX_PROTOCOL_MESSAGE_LENGTH

    def __post_init__(self) -> None:
        if not isinstance(self.addrs, tuple):
            object.__setattr__(self, "addrs", tuple(self.addrs))

    def serialize(self) -> bytes:
        if len(self.addrs) > MAX_ADDR:
            raise ValueError(f"addrv2 carries at most {MAX_ADDR} entries")
        return ser_compact_size(len(self.addrs)) + b"".join(a.serialize() for a in self.addrs)

    @classmethod
    def parse(cls, r: ByteReader) -> "AddrV2":
        n = r.compact_size()
        # bounded: every entry consumes at least _ADDRV2_MIN_ENTRY bytes, so a count beyond the
        # payload ends in Core's "end of data" after at most remaining / 9 entries
        return cls(tuple(TimedAddrV2.parse(r) for _ in range(n)))

    def __repr__(self) -> str:
        head = ", ".join(repr(a.addr) for a in self.addrs[:3])
        more = f", +{len(self.addrs) - 3}" if len(self.addrs) > 3 else ""
        return f"AddrV2([{head}{more}])"


@dataclass(frozen=True, slots=True, repr=False)
class SendAddrV2(_Empty):
    """`sendaddrv2` (BIP155): sent between `version` and `verack`, asks for `addrv2` instead of
    `addr`. Empty payload."""

    COMMAND: ClassVar[str] = "sendaddrv2"


def timed_addr(time: int, host: str, port: int, services: int, *, v2: bool) -> "TimedAddr | TimedAddrV2":
    """One entry for an `addr` (v2=False) or `addrv2` message; ValueError when `host` does not
    fit (a TORv3 / I2P address in `addr`: Core's IsAddrCompatible)."""
    if v2:
        return TimedAddrV2(time & 0xFFFFFFFF, NetAddrV2.from_host(host, port, services))
    return TimedAddr(time & 0xFFFFFFFF, NetAddr.from_host(host, port, services))


def addr_message(entries, *, v2: bool) -> "Addr | AddrV2":
    """Core MaybeSendAddr's choice: `addrv2` to a peer that sent `sendaddrv2`, else `addr`."""
    return AddrV2(tuple(entries)) if v2 else Addr(tuple(entries))


@dataclass(frozen=True, slots=True, repr=False)
class GetAddr(_Empty):
    """`getaddr`: asks for addresses. Empty payload."""

    COMMAND: ClassVar[str] = "getaddr"


class _InvList(Message):
    """inv / getdata / notfound: compact count (≤ 50,000) then InvVect entries."""

    __slots__ = ()
    MAX_PAYLOAD: ClassVar[int] = _compact_len(MAX_INV) + MAX_INV * InvVect.SIZE

    def _post_init(self) -> None:
        if not isinstance(self.items, tuple):
            object.__setattr__(self, "items", tuple(self.items))

    def serialize(self) -> bytes:
        items = self.items
        if len(items) > MAX_INV:
            raise ValueError(f"{self.COMMAND} carries at most {MAX_INV} entries")
        return ser_compact_size(len(items)) + b"".join(i.serialize() for i in items)

    @classmethod
    def parse(cls, r: ByteReader):
        n = r.compact_size()
        if n * InvVect.SIZE > r.remaining():
            raise DecodeError(f"{cls.COMMAND} claims {n} entries, payload too short")
        data = r.read(n * InvVect.SIZE)
        items = tuple(InvVect(t, h) for t, h in struct.iter_unpack("<I32s", data))
        return cls(items)

    def __repr__(self) -> str:
        head = ", ".join(repr(i) for i in self.items[:3])
        more = f", +{len(self.items) - 3}" if len(self.items) > 3 else ""
        return f"{type(self).__name__}([{head}{more}])"


@dataclass(frozen=True, slots=True, repr=False)
class Inv(_InvList):
    """`inv`: announces transactions / blocks."""

    items: tuple[InvVect, ...]
    COMMAND: ClassVar[str] = "inv"

    def __post_init__(self) -> None:
        self._post_init()


@dataclass(frozen=True, slots=True, repr=False)
class GetData(_InvList):
    """`getdata`: requests transactions / blocks by inventory."""

    items: tuple[InvVect, ...]
    COMMAND: ClassVar[str] = "getdata"

    def __post_init__(self) -> None:
        self._post_init()


@dataclass(frozen=True, slots=True, repr=False)
class NotFound(_InvList):
    """`notfound`: the getdata items we do not have."""

    items: tuple[InvVect, ...]
    COMMAND: ClassVar[str] = "notfound"

    def __post_init__(self) -> None:
        self._post_init()


class _LocatorMsg(Message):
    """getheaders / getblocks: version u32 | compact count (≤ 101) | hash* | hash_stop."""

    __slots__ = ()
    MAX_PAYLOAD: ClassVar[int] = 4 + _compact_len(MAX_LOCATOR) + MAX_LOCATOR * 32 + 32

    def _post_init(self) -> None:
        if not isinstance(self.locator, tuple):
            object.__setattr__(self, "locator", tuple(self.locator))

    def serialize(self) -> bytes:
        loc = self.locator
        if len(loc) > MAX_LOCATOR:
            raise ValueError(f"a block locator has at most {MAX_LOCATOR} hashes")
        return b"".join([_U32.pack(self.version), ser_compact_size(len(loc)), *loc, self.hash_stop])

    @classmethod
    def parse(cls, r: ByteReader):
        version = r.u32()
        n = r.compact_size()
        if n * 32 + 32 > r.remaining():
            raise DecodeError(f"{cls.COMMAND} claims {n} locator hashes, payload too short")
        locator = tuple(r.read(32) for _ in range(n))
        return cls(locator, r.read(32), version)

    def __repr__(self) -> str:
        first = _short_hex(self.locator[0]) if self.locator else "-"
        stop = "0" if self.hash_stop == ZERO_HASH else _short_hex(self.hash_stop)
        return f"{type(self).__name__}({len(self.locator)} hashes from {first}, stop={stop})"


@dataclass(frozen=True, slots=True, repr=False)
class GetHeaders(_LocatorMsg):
    """`getheaders`: headers after the first locator hash we know, up to hash_stop."""

    locator: tuple[bytes, ...]
    hash_stop: bytes = ZERO_HASH
    version: int = PROTOCOL_VERSION
    COMMAND: ClassVar[str] = "getheaders"

    def __post_init__(self) -> None:
        self._post_init()


@dataclass(frozen=True, slots=True, repr=False)
class GetBlocks(_LocatorMsg):
    """`getblocks`: an inv of up to 500 block hashes after the locator's fork point."""

    locator: tuple[bytes, ...]
    hash_stop: bytes = ZERO_HASH
    version: int = PROTOCOL_VERSION
    COMMAND: ClassVar[str] = "getblocks"

    def __post_init__(self) -> None:
        self._post_init()


_HEADERS_ENTRY = BLOCK_HEADER_SIZE + 1


@dataclass(frozen=True, slots=True, repr=False)
class Headers(Message):
    """`headers`: up to 2,000 block headers, each followed by a tx count that must be 0.

    Core ignores the count; btcd (and we) refuse a nonzero one.
    """

    headers: tuple[BlockHeader, ...]

    COMMAND: ClassVar[str] = "headers"
    MAX_PAYLOAD: ClassVar[int] = _compact_len(MAX_HEADERS) + MAX_HEADERS * _HEADERS_ENTRY

    def __post_init__(self) -> None:
        if not isinstance(self.headers, tuple):
            object.__setattr__(self, "headers", tuple(self.headers))

    def serialize(self) -> bytes:
        if len(self.headers) > MAX_HEADERS:
            raise ValueError(f"headers carries at most {MAX_HEADERS} headers")
        return ser_compact_size(len(self.headers)) + b"".join(h.serialize() + b"\x00" for h in self.headers)

    @classmethod
    def parse(cls, r: ByteReader) -> "Headers":
        n = r.compact_size()
        if n * _HEADERS_ENTRY > r.remaining():
            raise DecodeError(f"headers claims {n} headers, payload too short")
        out = []
        for _ in range(n):
            out.append(BlockHeader.parse(r))
            if r.compact_size() != 0:
                raise DecodeError("headers: a header's tx count must be 0")
        return cls(tuple(out))

    def __repr__(self) -> str:
        if not self.headers:
            return "Headers([])"
        return (f"Headers({len(self.headers)}: {_short_hex(self.headers[0].hash)}"
                f"..{_short_hex(self.headers[-1].hash)})")


@dataclass(frozen=True, slots=True, repr=False)
class BlockMsg(Message):
    """`block`: one block, its txs in the BIP144 witness form (Core `TX_WITH_WITNESS`, the
    answer to MSG_WITNESS_BLOCK) or, with `witness=False`, stripped of every witness (Core's
    answer to a plain MSG_BLOCK)."""

    block: Block
    witness: bool = field(default=True, compare=False)

    COMMAND: ClassVar[str] = "block"
    MAX_PAYLOAD: ClassVar[int] = MAX_PROTOCOL_MESSAGE_LENGTH

    def serialize(self) -> bytes:
        if self.witness:
            return self.block.serialize()
        return strip_block_witness(self.block)

    @classmethod
    def parse(cls, r: ByteReader) -> "BlockMsg":
        return cls(Block.parse(r))

    @classmethod
    def from_payload(cls, payload: bytes) -> "BlockMsg":
        """Core's "block" handler reads one block from the message and leaves whatever follows
        unread: bytes after the block are ignored, not an error (a tx with more witnesses than
        inputs then decodes as a different tx, and the block fails its merkle root)."""
        return cls.parse(ByteReader(payload))

    def __repr__(self) -> str:
        return f"BlockMsg({self.block.hash_hex}, {len(self.block.txs)} txs)"


def strip_block_witness(block: Block) -> bytes:
    """Core `TX_NO_WITNESS(block)`: the block with every tx in its legacy serialization."""
    return b"".join([block.header.serialize(), ser_compact_size(len(block.txs))]
                    + [t.serialize_without_witness() for t in block.txs])


@dataclass(frozen=True, slots=True, repr=False)
class TxMsg(Message):
    """`tx`: one transaction, in the BIP144 witness form when it has a witness (for peers that
    asked with MSG_WITNESS_TX or MSG_WTX) or, with `witness=False`, in the legacy form."""

    tx: Tx
    witness: bool = field(default=True, compare=False)

    COMMAND: ClassVar[str] = "tx"
    MAX_PAYLOAD: ClassVar[int] = MAX_PROTOCOL_MESSAGE_LENGTH

    def serialize(self) -> bytes:
        return self.tx.raw if self.witness else self.tx.serialize_without_witness()

    @classmethod
    def parse(cls, r: ByteReader) -> "TxMsg":
        return cls(Tx.parse(r))

    def __repr__(self) -> str:
        return f"TxMsg({self.tx.txid_hex})"


@dataclass(frozen=True, slots=True, repr=False)
class WtxidRelay(_Empty):
    """`wtxidrelay` (BIP 339): sent between `version` and `verack` by a peer of protocol 70016+
    that announces and requests txs by wtxid (MSG_WTX). Empty payload."""

    COMMAND: ClassVar[str] = "wtxidrelay"


@dataclass(frozen=True, slots=True, repr=False)
class MemPool(_Empty):
    """`mempool` (BIP 35): asks for an inv of the peer's mempool. Empty payload."""

    COMMAND: ClassVar[str] = "mempool"


@dataclass(frozen=True, slots=True, repr=False)
class SendHeaders(_Empty):
    """`sendheaders` (BIP 130): announce new blocks with `headers` instead of `inv`."""

    COMMAND: ClassVar[str] = "sendheaders"


_REJECT_MAX_PAYLOAD = (
    _compact_len(MAX_REJECT_MESSAGE_LENGTH) + MAX_REJECT_MESSAGE_LENGTH + 1
    + _compact_len(MAX_REJECT_REASON_LENGTH) + MAX_REJECT_REASON_LENGTH + 32
)


@dataclass(frozen=True, slots=True, repr=False)
class Reject(Message):
    """`reject` (BIP 61, removed from Core 0.20; bcoin still sends it). We parse, never send.

    message var_str | code u8 | reason var_str | data[32] (optional: the rejected tx/block hash).
    """

    message: str
    code: int
    reason: str
    data: bytes | None = None

    COMMAND: ClassVar[str] = "reject"
    MAX_PAYLOAD: ClassVar[int] = _REJECT_MAX_PAYLOAD

    def serialize(self) -> bytes:
        out = _ser_str(self.message) + bytes((self.code,)) + _ser_str(self.reason)
        return out + self.data if self.data is not None else out

    @classmethod
    def parse(cls, r: ByteReader) -> "Reject":
        message = _parse_str(r, MAX_REJECT_MESSAGE_LENGTH)
        code = r.u8()
        reason = _parse_str(r, MAX_REJECT_REASON_LENGTH)
        data = r.read(32) if r.remaining() else None
        return cls(message, code, reason, data)

    def __repr__(self) -> str:
        extra = f", {hash_to_hex(self.data)}" if self.data is not None else ""
        return f"Reject({self.message!r}, {self.code:#x}, {self.reason!r}{extra})"


#: Command → class. Read-only; commands not in it are "unknown" and skipped without penalty.
MESSAGE_TYPES: Mapping[str, type[Message]] = MappingProxyType({
    cls.COMMAND: cls
    for cls in (Version, Verack, Ping, Pong, Addr, GetAddr, Inv, GetData, NotFound, GetHeaders,
                GetBlocks, Headers, BlockMsg, TxMsg, MemPool, SendHeaders, Reject, WtxidRelay,
                AddrV2, SendAddrV2)
})
