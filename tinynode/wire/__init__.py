"""Bitcoin's P2P wire codec: constants, message values, and the 24-byte envelope. No I/O.

`envelope` frames and checks messages in btcd's order; `messages` holds one frozen value per
command; `constants` the protocol numbers. The asyncio peer lives in `tinynode.net`.
"""

from .constants import *  # noqa: F401,F403
from .envelope import (  # noqa: F401
    BadChecksumError,
    BadCommandError,
    BadMagicError,
    FrameDecoder,
    MessageHeader,
    OversizeError,
    PayloadDecodeError,
    WireError,
    checksum,
    decode_message,
    decode_payload,
    encode,
    encode_raw,
    parse_header,
)
from .messages import *  # noqa: F401,F403
from .netaddress import (  # noqa: F401
    ADDR_SIZES,
    INVALID_ADDRESS,
    MAX_ADDRV2_SIZE,
    BIP155Network,
    NetAddress,
    network_name,
    parse_host,
)
