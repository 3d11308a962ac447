"""The 24-byte message envelope and the order in which a received message is checked.

    magic[4] | command[12] (ASCII, NUL-padded) | length u32 | checksum[4] = sha256d(payload)[:4]

Reading mirrors btcd's ``readMessageWithEncodingNInternal`` (wire/message.go), one check at a
time, so each failure has a kind the peer can price (misbehaviour):

1. `parse_header`: length ≤ 4,000,000 — before anything else, so an oversize claim is refused
   without reading its payload (``oversize``);
2. magic (``bad-magic``);
3. command charset: printable ASCII, then only NUL padding (``bad-command``; Core's
   ``CMessageHeader::IsMessageTypeValid``);
4. unknown command: *not* an error — `MessageHeader.known` is False; the caller reads and drops
   `length` bytes at no cost (``wtxidrelay``, ``sendaddrv2``, ``feefilter``, ``sendcmpct`` …);
5. length ≤ the message's ``MAX_PAYLOAD`` (``oversize``);
6. the caller reads the payload;
7. `decode_payload`: checksum (``bad-checksum``);
8. decode (``decode``);
9. no trailing bytes (``decode``).

Every error is a `WireError` — a `DecodeError` — carrying ``kind``. Nothing here does I/O; the
asyncio peer reads 24 bytes, calls `parse_header`, reads ``length`` bytes, calls
`decode_payload`. `FrameDecoder` does the same over a byte buffer for tests and tools.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from tinynode.primitives.hashes import sha256d
from tinynode.primitives.serialize import DecodeError

from .constants import COMMAND_SIZE, HEADER_SIZE, MAX_PROTOCOL_MESSAGE_LENGTH
from .messages import MESSAGE_TYPES, Message

__all__ = [
    "HEADER_SIZE",
    "WireError",
    "OversizeError",
    "BadMagicError",
    "BadCommandError",
    "BadChecksumError",
    "PayloadDecodeError",
    "MessageHeader",
    "checksum",
    "encode",
    "encode_raw",
    "parse_header",
    "decode_payload",
    "decode_message",
    "FrameDecoder",
]

_HEADER = struct.Struct("<4s12sI4s")


class WireError(DecodeError):
    """A received message that breaks the envelope rules; ``kind`` names which one."""

    kind: str = "decode"

    def __init__(self, message: str, command: str | None = None) -> None:
        super().__init__(message)
        self.command = command


class OversizeError(WireError):
    """Length over 4,000,000 or over the message's ``MAX_PAYLOAD``."""

    kind = "oversize"


class BadMagicError(WireError):
    """The network magic is not ours."""

    kind = "bad-magic"


class BadCommandError(WireError):
    """The command field is not printable ASCII followed only by NUL padding."""

    kind = "bad-command"


class BadChecksumError(WireError):
    """sha256d(payload)[:4] differs from the header's checksum."""

    kind = "bad-checksum"


class PayloadDecodeError(WireError):
    """The payload does not decode as its command's message, or has trailing bytes."""

    kind = "decode"


class MessageHeader(NamedTuple):
    """A checked header: unpacks as ``(command, length, checksum)``."""

    command: str
    length: int
    checksum: bytes

    @property
    def message_type(self) -> type[Message] | None:
        return MESSAGE_TYPES.get(self.command)

    @property
    def known(self) -> bool:
        """False for commands we do not implement: skip `length` bytes, no penalty."""
        return self.command in MESSAGE_TYPES


def checksum(payload: bytes) -> bytes:
    """The first 4 bytes of sha256d(payload)."""
    return sha256d(payload)[:4]


def _command_field(command: str | bytes) -> bytes:
    raw = command.encode("ascii") if isinstance(command, str) else bytes(command)
    if len(raw) > COMMAND_SIZE:
        raise ValueError(f"command longer than {COMMAND_SIZE} bytes: {raw!r}")
    return raw.ljust(COMMAND_SIZE, b"\x00")


def encode_raw(magic: bytes, command: str | bytes, payload: bytes, *,
               checksum_override: bytes | None = None, length_override: int | None = None) -> bytes:
    """Frame any payload under any command; the overrides let hostile tests lie in the header."""
    cs = checksum(payload) if checksum_override is None else checksum_override
    length = len(payload) if length_override is None else length_override
    return _HEADER.pack(magic, _command_field(command), length, cs) + payload


def encode(magic: bytes, msg: Message) -> bytes:
    """The full wire bytes of `msg` (Core's ``CNetMessage`` serialization)."""
    payload = msg.serialize()
    return _HEADER.pack(magic, _command_field(msg.COMMAND), len(payload), checksum(payload)) + payload


def _parse_command(field: bytes) -> str:
    """Core's IsMessageTypeValid: printable ASCII (0x20–0x7e) until the first NUL, then NULs only.

    An empty command (all NULs) is also refused: no implementation sends one.
    """
    end = field.find(b"\x00")
    if end < 0:
        end = COMMAND_SIZE
    name, padding = field[:end], field[end:]
    if padding.strip(b"\x00"):
        raise BadCommandError(f"command has bytes after its NUL padding: {field!r}")
    if not name:
        raise BadCommandError("empty command")
    if any(c < 0x20 or c > 0x7E for c in name):
        raise BadCommandError(f"command is not printable ASCII: {field!r}")
    return name.decode("ascii")


def parse_header(magic: bytes, data: bytes) -> MessageHeader:
    """Check a 24-byte header in btcd's order (steps 1–5 of the module docstring).

    Raises OversizeError, BadMagicError or BadCommandError. An unknown command is returned with
    ``known == False`` (its payload must still be read and dropped).
    """
    if len(data) != HEADER_SIZE:
        raise WireError(f"a message header is {HEADER_SIZE} bytes, got {len(data)}")
    got_magic, cmd_field, length, cs = _HEADER.unpack(data)
    if length > MAX_PROTOCOL_MESSAGE_LENGTH:
        raise OversizeError(f"payload length {length} over {MAX_PROTOCOL_MESSAGE_LENGTH}")
    if got_magic != magic:
        raise BadMagicError(f"magic {got_magic.hex()} is not {magic.hex()}")
    command = _parse_command(cmd_field)
    cls = MESSAGE_TYPES.get(command)
    if cls is not None and length > cls.MAX_PAYLOAD:
        raise OversizeError(f"{command} payload length {length} over {cls.MAX_PAYLOAD}", command)
    return MessageHeader(command, length, cs)


def decode_payload(command: str, payload: bytes, expected_checksum: bytes) -> Message | None:
    """Check the checksum, decode, and refuse trailing bytes (steps 7–9).

    Returns None for an unknown command (no checks: its payload is simply dropped).
    """
    cls = MESSAGE_TYPES.get(command)
    if cls is None:
        return None
    if checksum(payload) != expected_checksum:
        raise BadChecksumError(f"{command}: bad checksum", command)
    try:
        return cls.from_payload(payload)
    except WireError:
        raise
    except DecodeError as e:
        raise PayloadDecodeError(f"{command}: {e}", command) from e


def decode_message(magic: bytes, data: bytes) -> tuple[MessageHeader, Message | None, int] | None:
    """Decode the first complete message in `data`.

    Returns (header, message-or-None-for-unknown, bytes consumed), or None if `data` does not yet
    hold a whole message. Header errors are raised as soon as the 24 header bytes are there.
    """
    if len(data) < HEADER_SIZE:
        return None
    header = parse_header(magic, bytes(data[:HEADER_SIZE]))
    end = HEADER_SIZE + header.length
    if len(data) < end:
        return None
    msg = decode_payload(header.command, bytes(data[HEADER_SIZE:end]), header.checksum)
    return header, msg, end


class FrameDecoder:
    """Incremental framing over a byte stream (no I/O): `feed()` bytes, then `next()` messages.

    Per-connection state only. After a `WireError` the stream is out of step; drop it.
    """

    __slots__ = ("magic", "_buf")

    def __init__(self, magic: bytes) -> None:
        self.magic = magic
        self._buf = bytearray()

    def feed(self, data: bytes) -> None:
        self._buf += data

    def buffered(self) -> int:
        return len(self._buf)

    def next(self) -> tuple[MessageHeader, Message | None] | None:
        """The next whole message as (header, message or None if unknown), or None if incomplete."""
        got = decode_message(self.magic, self._buf)
        if got is None:
            return None
        header, msg, used = got
        del self._buf[:used]
        return header, msg
