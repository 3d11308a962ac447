"""Transactions in Bitcoin's legacy (pre-segwit) serialization.

    version:i32 | compact(n_in) | TxIn* | compact(n_out) | TxOut* | locktime:u32
    TxIn  = prevout(hash[32] | n:u32) | var_bytes(script_sig) | sequence:u32
    TxOut = value:i64 | var_bytes(script_pubkey)

The txid is sha256d of exactly the bytes that were parsed (no re-serialization), computed once
when the value is made, as Core's `CTransaction` constructor does.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from .hashes import ZERO_HASH, hash_to_hex, sha256d
from .serialize import ByteReader, DecodeError, ser_compact_size

__all__ = [
    "OutPoint",
    "TxIn",
    "TxOut",
    "Tx",
    "COIN",
    "MAX_MONEY",
    "SEQUENCE_FINAL",
    "NULL_OUTPOINT",
]

COIN = 100_000_000
MAX_MONEY = 21_000_000 * COIN
SEQUENCE_FINAL = 0xFFFFFFFF

#: The smallest serialized input (36-byte outpoint, empty script, sequence) and output.
MIN_TXIN_SIZE = 41
MIN_TXOUT_SIZE = 9

_I32 = struct.Struct("<i")
_U32 = struct.Struct("<I")
_Q = struct.Struct("<q")


@dataclass(frozen=True, slots=True)
class OutPoint:
    """A reference to output `n` of the transaction `txid` (internal byte order)."""

    txid: bytes
    n: int

    def serialize(self) -> bytes:
        return self.txid + _U32.pack(self.n)

    @classmethod
    def parse(cls, r: ByteReader) -> "OutPoint":
        return cls(r.read(32), r.u32())

    def is_null(self) -> bool:
        return self.n == 0xFFFFFFFF and self.txid == ZERO_HASH

    def __repr__(self) -> str:
        return f"OutPoint({hash_to_hex(self.txid)}:{self.n})"


NULL_OUTPOINT = OutPoint(ZERO_HASH, 0xFFFFFFFF)


@dataclass(frozen=True, slots=True)
class TxIn:
    prevout: OutPoint
    script_sig: bytes = b""
    sequence: int = SEQUENCE_FINAL

    def serialize(self) -> bytes:
        s = self.script_sig
        return self.prevout.serialize() + ser_compact_size(len(s)) + s + _U32.pack(self.sequence)

    @classmethod
    def parse(cls, r: ByteReader) -> "TxIn":
        prevout = OutPoint.parse(r)
        script_sig = r.var_bytes(r.remaining())
        return cls(prevout, script_sig, r.u32())


@dataclass(frozen=True, slots=True)
class TxOut:
    value: int
    script_pubkey: bytes = b""

    def serialize(self) -> bytes:
        s = self.script_pubkey
        return _Q.pack(self.value) + ser_compact_size(len(s)) + s

    @classmethod
    def parse(cls, r: ByteReader) -> "TxOut":
        value = r.i64()
        return cls(value, r.var_bytes(r.remaining()))


@dataclass(frozen=True, slots=True)
class Tx:
    """A transaction. `txid` and `raw` are derived once, at construction."""

    version: int
    vin: tuple[TxIn, ...]
    vout: tuple[TxOut, ...]
    locktime: int = 0
    raw: bytes = field(init=False, compare=False, repr=False)
    txid: bytes = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.vin, tuple):
            object.__setattr__(self, "vin", tuple(self.vin))
        if not isinstance(self.vout, tuple):
            object.__setattr__(self, "vout", tuple(self.vout))
        raw = self._serialize()
        object.__setattr__(self, "raw", raw)
        object.__setattr__(self, "txid", sha256d(raw))

    @classmethod
    def _from_parsed(cls, version: int, vin: tuple, vout: tuple, locktime: int, raw: bytes) -> "Tx":
        """Build from already-parsed parts and their exact bytes (no re-serialization)."""
        self = object.__new__(cls)
        setattr_ = object.__setattr__
        setattr_(self, "version", version)
        setattr_(self, "vin", vin)
        setattr_(self, "vout", vout)
        setattr_(self, "locktime", locktime)
        setattr_(self, "raw", raw)
        setattr_(self, "txid", sha256d(raw))
        return self

    def _serialize(self) -> bytes:
        parts = [_I32.pack(self.version), ser_compact_size(len(self.vin))]
        parts.extend(i.serialize() for i in self.vin)
        parts.append(ser_compact_size(len(self.vout)))
        parts.extend(o.serialize() for o in self.vout)
        parts.append(_U32.pack(self.locktime))
        return b"".join(parts)

    def serialize(self) -> bytes:
        return self.raw

    @property
    def size(self) -> int:
        return len(self.raw)

    @property
    def txid_hex(self) -> str:
        return hash_to_hex(self.txid)

    def is_coinbase(self) -> bool:
        return len(self.vin) == 1 and self.vin[0].prevout.is_null()

    @classmethod
    def parse(cls, r: ByteReader) -> "Tx":
        """Parse one legacy transaction; a segwit marker is a `DecodeError`."""
        data = r.data
        start = r.pos
        version = r.i32()
        n_in = r.compact_size(r.remaining() // MIN_TXIN_SIZE)
        if n_in == 0 and r.remaining() >= 1 and data[r.pos] == 0x01:
            raise DecodeError("segwit (witness-serialized) transactions are not supported")
        vin = []
        append = vin.append
        for _ in range(n_in):
            txid = r.read(32)
            n = r.u32()
            script_sig = r.var_bytes(r.remaining())
            append(TxIn(OutPoint(txid, n), script_sig, r.u32()))
        n_out = r.compact_size(r.remaining() // MIN_TXOUT_SIZE)
        vout = []
        append = vout.append
        for _ in range(n_out):
            value = r.i64()
            append(TxOut(value, r.var_bytes(r.remaining())))
        locktime = r.u32()
        return cls._from_parsed(version, tuple(vin), tuple(vout), locktime, data[start:r.pos])

    @classmethod
    def from_bytes(cls, data: bytes) -> "Tx":
        r = ByteReader(data)
        tx = cls.parse(r)
        r.expect_end()
        return tx

    @classmethod
    def from_hex(cls, s: str) -> "Tx":
        try:
            data = bytes.fromhex(s)
        except ValueError as e:
            raise DecodeError("not hex") from e
        return cls.from_bytes(data)

    def __repr__(self) -> str:
        return f"Tx({self.txid_hex}, {len(self.vin)} in, {len(self.vout)} out)"
