"""Bounded byte reading and Bitcoin's compact-size integers.

Everything that decodes bytes from the outside world goes through `ByteReader`: a short read
raises `DecodeError`, every count is bounded by the caller before anything is allocated, and
compact sizes must be canonical (Bitcoin Core's `ReadCompactSize` with range check,
"non-canonical ReadCompactSize()").
"""

from __future__ import annotations

import struct

__all__ = [
    "DecodeError",
    "ByteReader",
    "ser_compact_size",
    "ser_var_bytes",
    "read_compact_size_at",
    "from_bytes",
    "MAX_SIZE",
]

#: Core's MAX_SIZE: no compact size may exceed this (0x02000000).
MAX_SIZE = 0x02000000

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_I32 = struct.Struct("<i")
_U64 = struct.Struct("<Q")
_I64 = struct.Struct("<q")


class DecodeError(ValueError):
    """Bytes that do not decode: short, non-canonical, over a bound, or with trailing data."""


class ByteReader:
    """A cursor over immutable bytes that never reads past the end."""

    __slots__ = ("_data", "_pos", "_end")

    def __init__(self, data: bytes | bytearray | memoryview, pos: int = 0) -> None:
        self._data = bytes(data) if not isinstance(data, bytes) else data
        self._pos = pos
        self._end = len(self._data)

    @property
    def pos(self) -> int:
        return self._pos

    @property
    def data(self) -> bytes:
        return self._data

    def remaining(self) -> int:
        return self._end - self._pos

    def read(self, n: int) -> bytes:
        pos = self._pos
        end = pos + n
        if n < 0 or end > self._end:
            raise DecodeError(f"DataStream::read(): end of data (wanted {n} bytes at offset {pos}, {self._end - pos} left)")
        self._pos = end
        return self._data[pos:end]

    def seek(self, pos: int) -> None:
        """Move the cursor to `pos` (0 ≤ pos ≤ end): for parsers that index `data` directly."""
        if not 0 <= pos <= self._end:
            raise DecodeError(f"cannot seek to offset {pos} of {self._end}")
        self._pos = pos

    def skip(self, n: int) -> None:
        if n < 0 or self._pos + n > self._end:
            raise DecodeError(f"DataStream::read(): end of data (cannot skip {n} bytes at offset {self._pos})")
        self._pos += n

    def u8(self) -> int:
        pos = self._pos
        if pos >= self._end:
            raise DecodeError(f"DataStream::read(): end of data (wanted 1 byte at offset {pos})")
        self._pos = pos + 1
        return self._data[pos]

    def _unpack(self, st: struct.Struct) -> int:
        pos = self._pos
        end = pos + st.size
        if end > self._end:
            raise DecodeError(f"DataStream::read(): end of data (wanted {st.size} bytes at offset {pos}, {self._end - pos} left)")
        self._pos = end
        return st.unpack_from(self._data, pos)[0]

    def u16(self) -> int:
        return self._unpack(_U16)

    def u16be(self) -> int:
        return int.from_bytes(self.read(2), "big")

    def u32(self) -> int:
        return self._unpack(_U32)

    def i32(self) -> int:
        return self._unpack(_I32)

    def u64(self) -> int:
        return self._unpack(_U64)

    def i64(self) -> int:
        return self._unpack(_I64)

    def compact_size(self, max_value: int = MAX_SIZE) -> int:
        """Read a canonical compact size no larger than `max_value`."""
        first = self.u8()
        if first < 0xFD:
            value = first
        elif first == 0xFD:
            value = self._unpack(_U16)
            if value < 0xFD:
                raise DecodeError("non-canonical ReadCompactSize()")   # Core serialize.h text
        elif first == 0xFE:
            value = self._unpack(_U32)
            if value < 0x10000:
                raise DecodeError("non-canonical ReadCompactSize()")   # Core serialize.h text
        else:
            value = self._unpack(_U64)
            if value < 0x100000000:
                raise DecodeError("non-canonical ReadCompactSize()")   # Core serialize.h text
        if value > max_value:
            raise DecodeError(f"compact size {value} over the limit {max_value}")
        return value

    def var_bytes(self, max_len: int) -> bytes:
        """Read a compact-size length prefix (at most `max_len`) and that many bytes."""
        n = self.compact_size(max_len)
        return self.read(n)

    def expect_end(self) -> None:
        if self._pos != self._end:
            raise DecodeError(f"{self._end - self._pos} trailing bytes")


def read_compact_size_at(data: bytes, pos: int, end: int) -> tuple[int, int]:
    """Decode the canonical compact size at `data[pos]` → (value, position after it).

    For parsers that index `data` directly (the hot paths of `Tx.parse`); the same rules as
    `ByteReader.compact_size` (short read and non-minimal encodings are `DecodeError`), but the
    caller bounds the value itself.
    """
    if pos >= end:
        raise DecodeError(f"DataStream::read(): end of data (wanted 1 byte at offset {pos})")
    first = data[pos]
    if first < 0xFD:
        return first, pos + 1
    if first == 0xFD:
        st, floor = _U16, 0xFD
    elif first == 0xFE:
        st, floor = _U32, 0x10000
    else:
        st, floor = _U64, 0x100000000
    nxt = pos + 1 + st.size
    if nxt > end:
        raise DecodeError(f"DataStream::read(): end of data (wanted {st.size} bytes at offset {pos + 1}, {end - pos - 1} left)")
    value = st.unpack_from(data, pos + 1)[0]
    if value < floor:
        raise DecodeError("non-canonical ReadCompactSize()")   # Core serialize.h text
    return value, nxt


def ser_compact_size(n: int) -> bytes:
    if n < 0xFD:
        return bytes((n,))
    if n <= 0xFFFF:
        return b"\xfd" + _U16.pack(n)
    if n <= 0xFFFFFFFF:
        return b"\xfe" + _U32.pack(n)
    return b"\xff" + _U64.pack(n)


def ser_var_bytes(b: bytes) -> bytes:
    return ser_compact_size(len(b)) + b


def from_bytes(parse, data: bytes):
    """Parse a whole value with `parse(reader)` and reject trailing bytes."""
    r = ByteReader(data)
    value = parse(r)
    r.expect_end()
    return value
