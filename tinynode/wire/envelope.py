"""The 24-byte message envelope and the order in which a received message is checked.

    magic[4] | command[12] (ASCII, NUL-padded) | length u32 | checksum[4] = sha256d(payload)[:4]

Reading mirrors Bitcoin Core's ``V1Transport`` (net.cpp ``readHeader`` / ``GetReceivedMessage``),
one check at a time, each failure with Core's log text (``str(error)``) and consequence:

1. `parse_header`: magic (``bad-magic``, "Header error: Wrong MessageStart …": disconnect);
2. length ≤ 4,000,000 — before a payload byte is read (``oversize``, "Header error: Size too
   large …": disconnect). There is no per-message size limit here: as Core, the count limits of
   inv / getdata / headers / addr are the handlers' (Misbehaving "<type> message size = N");
3. the caller reads the payload;
4. `decode_payload`: checksum (``bad-checksum``, "Header error: Wrong checksum …"), then the
   command charset: printable ASCII, then only NUL padding (``bad-command``, "Header error:
   Invalid message type …"; Core's ``CMessageHeader::IsMessageTypeValid``). Both drop the
   message and keep the peer; its bytes are counted under "*other*";
5. unknown command: *not* an error — `decode_payload` returns None and the message is dropped
   at no cost (``wtxidrelay``-era extensions, ``sendcmpct`` …);
6. decode (``decode``; Core logs "ProcessMessages(…): Exception …" and keeps the peer);
7. no trailing bytes (``decode``).

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
    "sanitize",
    "message_type_name",
    "command_is_valid",
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
    """Length over 4,000,000 (Core MAX_PROTOCOL_MESSAGE_LENGTH)."""

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
    """A header whose magic and length passed: unpacks as ``(command, length, checksum)``.

    ``command`` is the command field without its NUL padding (decoded as Latin-1, so any byte
    survives); an invalid one is reported only after the payload is read (`decode_payload`).
    """

    command: str
    length: int
    checksum: bytes

    @property
    def message_type(self) -> type[Message] | None:
        return MESSAGE_TYPES.get(self.command)

    @property
    def known(self) -> bool:
        """False for commands we do not implement: read `length` bytes, drop them, no penalty."""
        return self.command in MESSAGE_TYPES

    @property
    def valid(self) -> bool:
        """Core `CMessageHeader::IsMessageTypeValid`."""
        return command_is_valid(self.command)


_SAFE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;-_/:?@()")


def sanitize(text: str) -> str:
    """Core `SanitizeString` (SAFE_CHARS_DEFAULT): what a log line shows of a peer's string."""
    return "".join(c for c in text if c in _SAFE_CHARS)


def message_type_name(command: str) -> str:
    """Core `CMessageHeader::GetMessageType`: the field up to its first NUL."""
    return command.split("\x00", 1)[0]


def command_is_valid(command: str) -> bool:
    """Core `IsMessageTypeValid`: printable ASCII (0x20–0x7e) until the first NUL, then NULs only
    (`command` has its trailing NULs stripped, so any NUL left is followed by something else).
    An empty command (all NULs) is also refused: no implementation sends one."""
    return bool(command) and all(0x20 <= ord(c) <= 0x7E for c in command)


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


def parse_header(magic: bytes, data: bytes) -> MessageHeader:
    """Check a 24-byte header as Core's ``V1Transport::readHeader``: magic, then the length
    against 4,000,000 (steps 1–2 of the module docstring). Raises BadMagicError or OversizeError
    with Core's log text; the command is checked only after the payload (`decode_payload`)."""
    if len(data) != HEADER_SIZE:
        raise WireError(f"a message header is {HEADER_SIZE} bytes, got {len(data)}")
    got_magic, cmd_field, length, cs = _HEADER.unpack(data)
    if got_magic != magic:
        raise BadMagicError(f"Header error: Wrong MessageStart {got_magic.hex()} received")
    command = cmd_field.rstrip(b"\x00").decode("latin-1")
    if length > MAX_PROTOCOL_MESSAGE_LENGTH:
        raise OversizeError(f"Header error: Size too large ({sanitize(message_type_name(command))}, "
                            f"{length} bytes)", command)
    return MessageHeader(command, length, cs)


def decode_payload(command: str, payload: bytes, expected_checksum: bytes) -> Message | None:
    """Core ``V1Transport::GetReceivedMessage`` then the message's decode (steps 4–7): the
    checksum, then the command's validity (both errors carry Core's log text), then decode and
    refuse trailing bytes. Returns None for a valid but unknown command (dropped)."""
    got = checksum(payload)
    name = sanitize(message_type_name(command))
    if got != expected_checksum:
        raise BadChecksumError(f"Header error: Wrong checksum ({name}, {len(payload)} bytes), "
                               f"expected {got.hex()} was {expected_checksum.hex()}", command)
    if not command_is_valid(command):
        raise BadCommandError(f"Header error: Invalid message type ({name}, {len(payload)} bytes)",
                              command)
    cls = MESSAGE_TYPES.get(command)
    if cls is None:
        return None
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
        """The next whole message as (header, message or None if unknown), or None if incomplete.

        A header error (magic, size) leaves the stream out of step: drop it. A message that fails
        its checksum, command or decode is consumed before the error is raised (Core drops it and
        reads on)."""
        if len(self._buf) < HEADER_SIZE:
            return None
        header = parse_header(self.magic, bytes(self._buf[:HEADER_SIZE]))
        end = HEADER_SIZE + header.length
        if len(self._buf) < end:
            return None
        payload = bytes(self._buf[HEADER_SIZE:end])
        del self._buf[:end]
        return header, decode_payload(header.command, payload, header.checksum)
