"""A coin: one unspent transaction output with the context consensus needs (Core's `Coin`)."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .serialize import ByteReader, DecodeError, ser_compact_size

__all__ = ["Coin", "make_coin"]

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


_SET_VALUE = Coin.__dict__["value"].__set__
_SET_SCRIPT_PUBKEY = Coin.__dict__["script_pubkey"].__set__
_SET_HEIGHT = Coin.__dict__["height"].__set__
_SET_IS_COINBASE = Coin.__dict__["is_coinbase"].__set__
_new = object.__new__


def make_coin(value: int, script_pubkey: bytes, height: int, is_coinbase: bool) -> Coin:
    """`Coin(value, script_pubkey, height, is_coinbase)` from fields the caller already has as
    the right types (a parsed output, a block height): the slots are set directly instead of
    through the frozen dataclass's `__init__` (object.__setattr__ by name, four times), as
    `Tx.parse` builds its values. ConnectBlock makes one per new output."""
    c = _new(Coin)
    _SET_VALUE(c, value)
    _SET_SCRIPT_PUBKEY(c, script_pubkey)
    _SET_HEIGHT(c, height)
    _SET_IS_COINBASE(c, is_coinbase)
    return c
