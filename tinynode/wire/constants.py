"""Wire-protocol constants: versions, service bits, inventory types and per-message limits.

The numbers are Bitcoin Core's (`src/protocol.h`, `src/net.h`, `src/net_processing.cpp`) as
btcd re-declares them in `wire/protocol.go`, `wire/msginv.go`, `wire/msgheaders.go`.
"""

from __future__ import annotations

from enum import IntEnum, IntFlag

from tinynode import __version__

__all__ = [
    "PROTOCOL_VERSION",
    "MIN_PEER_PROTO_VERSION",
    "WTXID_RELAY_VERSION",
    "NODE_WITNESS",
    "NODE_NETWORK_LIMITED",
    "NODE_NETWORK",
    "ServiceFlags",
    "InvType",
    "MSG_WITNESS_FLAG",
    "MAX_PROTOCOL_MESSAGE_LENGTH",
    "MAX_INV",
    "MAX_HEADERS",
    "MAX_ADDR",
    "MAX_LOCATOR",
    "MAX_USER_AGENT_LENGTH",
    "MAX_REJECT_MESSAGE_LENGTH",
    "MAX_REJECT_REASON_LENGTH",
    "USER_AGENT",
    "COMMAND_SIZE",
    "HEADER_SIZE",
]

#: The protocol version we speak (Core's 70015: BIP 130 sendheaders, BIP 133 feefilter era).
PROTOCOL_VERSION = 70015
#: BIP 339: peers of this protocol version or newer may negotiate `wtxidrelay` (Core's
#: WTXID_RELAY_VERSION); we announce it when we advertise NODE_WITNESS.
WTXID_RELAY_VERSION = 70016
#: Peers announcing an older protocol are refused (Core's MIN_PEER_PROTO_VERSION).
MIN_PEER_PROTO_VERSION = 31800


class ServiceFlags(IntFlag):
    """Service bits of a `version` message / network address (Core's ServiceFlags)."""

    NODE_NONE = 0
    NODE_NETWORK = 1 << 0
    NODE_BLOOM = 1 << 2
    NODE_WITNESS = 1 << 3
    NODE_COMPACT_FILTERS = 1 << 6
    NODE_NETWORK_LIMITED = 1 << 10


NODE_NETWORK = int(ServiceFlags.NODE_NETWORK)
NODE_WITNESS = int(ServiceFlags.NODE_WITNESS)
NODE_NETWORK_LIMITED = int(ServiceFlags.NODE_NETWORK_LIMITED)

#: Core's MSG_WITNESS_FLAG: set on inventory types that request witness serialization.
MSG_WITNESS_FLAG = 1 << 30


class InvType(IntEnum):
    """Inventory vector types (Core's GetDataMsg). Unknown values still parse as plain ints."""

    ERROR = 0
    TX = 1
    BLOCK = 2
    FILTERED_BLOCK = 3
    CMPCT_BLOCK = 4
    WTX = 5
    WITNESS_TX = TX | MSG_WITNESS_FLAG
    WITNESS_BLOCK = BLOCK | MSG_WITNESS_FLAG
    WITNESS_FILTERED_BLOCK = FILTERED_BLOCK | MSG_WITNESS_FLAG


#: Core's MAX_PROTOCOL_MESSAGE_LENGTH: no payload may claim more (checked before reading it).
MAX_PROTOCOL_MESSAGE_LENGTH = 4_000_000
#: Core's MAX_INV_SZ: entries per inv / getdata / notfound.
MAX_INV = 50_000
#: Core's MAX_HEADERS_RESULTS: headers per `headers` message.
MAX_HEADERS = 2_000
#: Core's MAX_ADDR_TO_SEND: addresses per `addr` message.
MAX_ADDR = 1_000
#: Core's MAX_LOCATOR_SZ: hashes per block locator (getheaders / getblocks).
MAX_LOCATOR = 101
#: Core's MAX_SUBVERSION_LENGTH: bytes in a version message's user agent.
MAX_USER_AGENT_LENGTH = 256
#: A reject's message field names a command (Core's CMessageHeader::COMMAND_SIZE).
MAX_REJECT_MESSAGE_LENGTH = 12
#: Core capped its own reject reasons at 111 bytes; we accept longer ones from other
#: implementations rather than punish a peer for an informational message.
MAX_REJECT_REASON_LENGTH = 1_024

#: Our BIP 14 user agent.
USER_AGENT = f"/tinynode:{'.'.join(__version__.split('.')[:2])}/"

#: Bytes of the NUL-padded command field and of the whole message header.
COMMAND_SIZE = 12
HEADER_SIZE = 24
