"""A coin: one unspent transaction output with the context consensus needs (Core's `Coin`)."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .serialize import ByteReader, DecodeError, ser_compact_size

__all__ = ["Coin"]

_HDR = struct.Struct("<qIB")


@dataclass(frozen=True, slots=True)
class Coin:
    value: int
    script_pubkey: bytes
    height: int
    is_coinbase: bool

    def serialize(self) -> bytes:
        """Compact storage form: value, height, coinbase flag, var-bytes script."""
        s = self.script_pubkey
        return _HDR.pack(self.value, self.height, int(self.is_coinbase)) + ser_compact_size(len(s)) + s

    @classmethod
    def parse(cls, r: ByteReader) -> "Coin":
        value, height, cb = _HDR.unpack(r.read(_HDR.size))
        if cb > 1:
            raise DecodeError("coinbase flag must be 0 or 1")
        return cls(value, r.var_bytes(r.remaining()), height, bool(cb))

    @classmethod
    def from_bytes(cls, data: bytes) -> "Coin":
        r = ByteReader(data)
        c = cls.parse(r)
        r.expect_end()
        return c
