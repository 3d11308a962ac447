"""Transactions in Bitcoin's legacy and BIP144 witness serializations.

    legacy:  version:i32 | compact(n_in) | TxIn* | compact(n_out) | TxOut* | locktime:u32
    witness: version:i32 | 0x00 | 0x01 | compact(n_in) | TxIn* | compact(n_out) | TxOut*
             | Witness{n_in} | locktime:u32
    TxIn    = prevout(hash[32] | n:u32) | var_bytes(script_sig) | sequence:u32
    TxOut   = value:i64 | var_bytes(script_pubkey)
    Witness = compact(n_items) | var_bytes(item)*

`raw` is the full serialization (the witness form when any input has a witness, as Core's
`SerializeTransaction`); the txid is sha256d of the serialization without witness and the wtxid
sha256d of `raw`, both computed once when the value is made, from exactly the bytes that were
parsed (no re-serialization), as Core's `CTransaction` constructor does.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field

from .hashes import ZERO_HASH, hash_to_hex, sha256d
from .serialize import ByteReader, DecodeError, read_compact_size_at, ser_compact_size

__all__ = [
    "OutPoint",
    "TxIn",
    "TxOut",
    "Tx",
    "COIN",
    "MAX_MONEY",
    "SEQUENCE_FINAL",
    "NULL_OUTPOINT",
    "WITNESS_SCALE_FACTOR",
]

COIN = 100_000_000
MAX_MONEY = 21_000_000 * COIN
SEQUENCE_FINAL = 0xFFFFFFFF
#: BIP141: a byte of non-witness data weighs 4, a byte of witness data 1 (Core `consensus/consensus.h`).
WITNESS_SCALE_FACTOR = 4

#: The smallest serialized input (36-byte outpoint, empty script, sequence) and output.
MIN_TXIN_SIZE = 41
MIN_TXOUT_SIZE = 9

_I32 = struct.Struct("<i")
_U32 = struct.Struct("<I")
_Q = struct.Struct("<q")

# Offset readers for the parse hot path (bound methods of immutable Structs).
_I32_AT = _I32.unpack_from
_U32_AT = _U32.unpack_from
_OUTPOINT_LEN_AT = struct.Struct("<32sIB").unpack_from   # prevout hash, n, script length byte
_VALUE_LEN_AT = struct.Struct("<qB").unpack_from        # value, script length byte
_sha256 = hashlib.sha256
_new = object.__new__


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
    """One input. `witness` is its BIP141 witness stack (Core `CTxIn::scriptWitness`), empty
    for a legacy input; `serialize()` is the input's non-witness serialization."""

    prevout: OutPoint
    script_sig: bytes = b""
    sequence: int = SEQUENCE_FINAL
    witness: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.witness, tuple):
            object.__setattr__(self, "witness", tuple(self.witness))

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


# Slot setters used by `Tx.parse` to build frozen values without running `__init__`: the
# parser has already checked every field, and this halves the cost of a block parse.
_SET_OUTPOINT_TXID = OutPoint.__dict__["txid"].__set__
_SET_OUTPOINT_N = OutPoint.__dict__["n"].__set__
_SET_TXIN_PREVOUT = TxIn.__dict__["prevout"].__set__
_SET_TXIN_SCRIPT_SIG = TxIn.__dict__["script_sig"].__set__
_SET_TXIN_SEQUENCE = TxIn.__dict__["sequence"].__set__
_SET_TXIN_WITNESS = TxIn.__dict__["witness"].__set__
_SET_TXOUT_VALUE = TxOut.__dict__["value"].__set__
_SET_TXOUT_SCRIPT_PUBKEY = TxOut.__dict__["script_pubkey"].__set__


@dataclass(frozen=True, slots=True)
class Tx:
    """A transaction. `raw`, `txid`, `wtxid` and `base_size` are derived once, at construction.

    `raw` is the full serialization (Core `TX_WITH_WITNESS`), `base_size` the size of the
    serialization without witness (Core `TX_NO_WITNESS`, the "stripped size").
    """

    version: int
    vin: tuple[TxIn, ...]
    vout: tuple[TxOut, ...]
    locktime: int = 0
    raw: bytes = field(init=False, compare=False, repr=False)
    txid: bytes = field(init=False, compare=False, repr=False)
    wtxid: bytes = field(init=False, compare=False, repr=False)
    base_size: int = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.vin, tuple):
            object.__setattr__(self, "vin", tuple(self.vin))
        if not isinstance(self.vout, tuple):
            object.__setattr__(self, "vout", tuple(self.vout))
        base = self._serialize_base()
        txid = sha256d(base)
        if any(i.witness for i in self.vin):
            raw = self._serialize_witness(base)
            wtxid = sha256d(raw)
        else:
            raw, wtxid = base, txid
        object.__setattr__(self, "raw", raw)
        object.__setattr__(self, "txid", txid)
        object.__setattr__(self, "wtxid", wtxid)
        object.__setattr__(self, "base_size", len(base))

    @classmethod
    def _from_parsed(cls, version: int, vin: tuple, vout: tuple, locktime: int, raw: bytes) -> "Tx":
        """Build a legacy-serialized tx from already-parsed parts and their exact bytes."""
        self = _new(cls)
        _SET_TX_VERSION(self, version)
        _SET_TX_VIN(self, vin)
        _SET_TX_VOUT(self, vout)
        _SET_TX_LOCKTIME(self, locktime)
        _SET_TX_RAW(self, raw)
        txid = _sha256(_sha256(raw).digest()).digest()
        _SET_TX_TXID(self, txid)
        _SET_TX_WTXID(self, txid)
        _SET_TX_BASE_SIZE(self, len(raw))
        return self

    @classmethod
    def _from_parsed_witness(cls, version: int, vin: tuple, vout: tuple, locktime: int, raw: bytes,
                             witness_start: int) -> "Tx":
        """As `_from_parsed` for the BIP144 form; `raw[witness_start:-4]` are the witnesses."""
        self = _new(cls)
        _SET_TX_VERSION(self, version)
        _SET_TX_VIN(self, vin)
        _SET_TX_VOUT(self, vout)
        _SET_TX_LOCKTIME(self, locktime)
        _SET_TX_RAW(self, raw)
        base = raw[:4] + raw[6:witness_start] + raw[-4:]
        _SET_TX_TXID(self, _sha256(_sha256(base).digest()).digest())
        _SET_TX_WTXID(self, _sha256(_sha256(raw).digest()).digest())
        _SET_TX_BASE_SIZE(self, len(base))
        return self

    def _serialize(self) -> bytes:
        """The full serialization rebuilt from the fields (tests compare it with `raw`)."""
        base = self._serialize_base()
        return self._serialize_witness(base) if any(i.witness for i in self.vin) else base

    def _serialize_base(self) -> bytes:
        parts = [_I32.pack(self.version), ser_compact_size(len(self.vin))]
        parts.extend(i.serialize() for i in self.vin)
        parts.append(ser_compact_size(len(self.vout)))
        parts.extend(o.serialize() for o in self.vout)
        parts.append(_U32.pack(self.locktime))
        return b"".join(parts)

    def _serialize_witness(self, base: bytes) -> bytes:
        """Core `SerializeTransaction` with witness: marker 0x00, flag 0x01, the non-witness
        body, one witness stack per input, locktime."""
        parts = [base[:4], b"\x00\x01", base[4:-4]]
        for txin in self.vin:
            parts.append(ser_compact_size(len(txin.witness)))
            for item in txin.witness:
                parts.append(ser_compact_size(len(item)))
                parts.append(item)
        parts.append(base[-4:])
        return b"".join(parts)

    def serialize(self) -> bytes:
        """The full serialization (with witness when there is one), as relayed to witness peers."""
        return self.raw

    def serialize_without_witness(self) -> bytes:
        """Core `TX_NO_WITNESS(tx)`: the legacy serialization, the bytes the txid hashes."""
        raw = self.raw
        if self.base_size == len(raw):
            return raw
        return raw[:4] + raw[6:self.base_size - 2] + raw[-4:]

    def has_witness(self) -> bool:
        """Core `CTransaction::HasWitness`: some input has a non-empty witness."""
        return self.base_size != len(self.raw)

    @property
    def size(self) -> int:
        """Core `GetTotalSize`: the full serialized size, witness included."""
        return len(self.raw)

    @property
    def weight(self) -> int:
        """Core `GetTransactionWeight` (BIP141): base size × 3 + total size."""
        return self.base_size * (WITNESS_SCALE_FACTOR - 1) + len(self.raw)

    @property
    def vsize(self) -> int:
        """BIP141 virtual size: weight / 4 rounded up (Core `GetVirtualTransactionSize` without
        the sigop adjustment)."""
        return (self.weight + WITNESS_SCALE_FACTOR - 1) // WITNESS_SCALE_FACTOR

    @property
    def txid_hex(self) -> str:
        return hash_to_hex(self.txid)

    @property
    def wtxid_hex(self) -> str:
        return hash_to_hex(self.wtxid)

    def is_coinbase(self) -> bool:
        return len(self.vin) == 1 and self.vin[0].prevout.is_null()

    @classmethod
    def parse(cls, r: ByteReader) -> "Tx":
        """Parse one transaction at the reader's position and advance past it.

        Core's `UnserializeTransaction` with witness allowed: zero inputs is the BIP144 marker,
        and the next byte the flag; flag 0 means a tx with no inputs and no outputs (Core reads
        no output count then), otherwise inputs and outputs follow, then one witness stack per
        input if flag bit 0 is set ("Superfluous witness record" if they are all empty); any
        other flag bit is "Unknown transaction optional data". This is the hot path of block
        parsing, so it reads `r.data` by offset with struct instead of calling a reader method
        per field. Every read is bounds-checked before it happens: a short read, a count larger
        than the bytes left could hold, or a non-canonical compact size raises `DecodeError`
        and nothing else.
        """
        data = r.data
        start = pos = r.pos
        end = pos + r.remaining()
        if end - pos < 5:
            raise DecodeError(f"DataStream::read(): end of data (a transaction needs at least 5 bytes at offset {pos})")
        version = _I32_AT(data, pos)[0]
        n_in = data[pos + 4]
        pos += 5
        flag = 0
        if n_in == 0:
            # BIP144 marker: the next byte is the flag (Core reads it whenever vin is empty)
            if pos >= end:
                raise DecodeError(f"DataStream::read(): end of data (no witness flag at offset {pos})")
            flag = data[pos]
            pos += 1
            if flag:
                if pos >= end:
                    raise DecodeError(f"DataStream::read(): end of data (no input count at offset {pos})")
                n_in = data[pos]
                pos += 1
        if n_in >= 0xFD:
            n_in, pos = read_compact_size_at(data, pos - 1, end)
        if n_in > (end - pos) // MIN_TXIN_SIZE:
            raise DecodeError(f"{n_in} inputs cannot fit in {end - pos} bytes")

        new = _new
        vin = []
        append = vin.append
        for _ in range(n_in):
            # prevout hash[32] | n:u32 | first byte of the script length
            if pos + 37 > end:
                raise DecodeError(f"DataStream::read(): end of data (truncated input at offset {pos})")
            prev_hash, prev_n, script_len = _OUTPOINT_LEN_AT(data, pos)
            pos += 37
            if script_len >= 0xFD:
                script_len, pos = read_compact_size_at(data, pos - 1, end)
            script_end = pos + script_len
            if script_end + 4 > end:  # the script and the 4-byte sequence
                raise DecodeError(f"DataStream::read(): end of data (truncated input script at offset {pos})")
            prevout = new(OutPoint)
            _SET_OUTPOINT_TXID(prevout, prev_hash)
            _SET_OUTPOINT_N(prevout, prev_n)
            txin = new(TxIn)
            _SET_TXIN_PREVOUT(txin, prevout)
            _SET_TXIN_SCRIPT_SIG(txin, data[pos:script_end])
            _SET_TXIN_SEQUENCE(txin, _U32_AT(data, script_end)[0])
            _SET_TXIN_WITNESS(txin, ())
            append(txin)
            pos = script_end + 4

        vout = []
        if n_in or flag:  # no inputs and flag 0: Core reads no outputs either
            if pos >= end:
                raise DecodeError(f"DataStream::read(): end of data (no output count at offset {pos})")
            n_out = data[pos]
            pos += 1
            if n_out >= 0xFD:
                n_out, pos = read_compact_size_at(data, pos - 1, end)
            if n_out > (end - pos) // MIN_TXOUT_SIZE:
                raise DecodeError(f"{n_out} outputs cannot fit in {end - pos} bytes")
            append = vout.append
            for _ in range(n_out):
                # value:i64 | first byte of the script length
                if pos + 9 > end:
                    raise DecodeError(f"DataStream::read(): end of data (truncated output at offset {pos})")
                value, script_len = _VALUE_LEN_AT(data, pos)
                pos += 9
                if script_len >= 0xFD:
                    script_len, pos = read_compact_size_at(data, pos - 1, end)
                script_end = pos + script_len
                if script_end > end:
                    raise DecodeError(f"DataStream::read(): end of data (truncated output script at offset {pos})")
                txout = new(TxOut)
                _SET_TXOUT_VALUE(txout, value)
                _SET_TXOUT_SCRIPT_PUBKEY(txout, data[pos:script_end])
                append(txout)
                pos = script_end

        witness_start = 0
        if flag:
            if flag & 1:
                witness_start = pos - start
                pos = _parse_witnesses(data, pos, end, vin)
                flag ^= 1
            if flag:
                raise DecodeError("Unknown transaction optional data")

        if pos + 4 > end:
            raise DecodeError(f"DataStream::read(): end of data (no locktime at offset {pos})")
        locktime = _U32_AT(data, pos)[0]
        pos += 4
        r.seek(pos)
        if not witness_start:
            return cls._from_parsed(version, tuple(vin), tuple(vout), locktime, data[start:pos])
        return cls._from_parsed_witness(version, tuple(vin), tuple(vout), locktime, data[start:pos],
                                        witness_start)

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


def _parse_witnesses(data: bytes, pos: int, end: int, vin: list) -> int:
    """Read one witness stack per input (BIP144) into `vin`'s inputs; returns the position
    after them. All stacks empty is Core's "Superfluous witness record"."""
    any_witness = False
    for txin in vin:
        if pos >= end:
            raise DecodeError(f"DataStream::read(): end of data (no witness item count at offset {pos})")
        n_items = data[pos]
        pos += 1
        if n_items >= 0xFD:
            n_items, pos = read_compact_size_at(data, pos - 1, end)
        if n_items > end - pos:  # each item needs at least its length byte
            raise DecodeError(f"{n_items} witness items cannot fit in {end - pos} bytes")
        items = []
        for _ in range(n_items):
            if pos >= end:
                raise DecodeError(f"DataStream::read(): end of data (truncated witness item at offset {pos})")
            n = data[pos]
            pos += 1
            if n >= 0xFD:
                n, pos = read_compact_size_at(data, pos - 1, end)
            if pos + n > end:
                raise DecodeError(f"DataStream::read(): end of data (truncated witness item at offset {pos})")
            items.append(data[pos:pos + n])
            pos += n
        if items:
            any_witness = True
            _SET_TXIN_WITNESS(txin, tuple(items))
    if not any_witness:
        raise DecodeError("Superfluous witness record")
    return pos


# Slot setters for `Tx._from_parsed` (as for the input/output slots above): a descriptor call
# instead of object.__setattr__'s lookup by name, eight times per parsed transaction.
_SET_TX_VERSION = Tx.__dict__["version"].__set__
_SET_TX_VIN = Tx.__dict__["vin"].__set__
_SET_TX_VOUT = Tx.__dict__["vout"].__set__
_SET_TX_LOCKTIME = Tx.__dict__["locktime"].__set__
_SET_TX_RAW = Tx.__dict__["raw"].__set__
_SET_TX_TXID = Tx.__dict__["txid"].__set__
_SET_TX_WTXID = Tx.__dict__["wtxid"].__set__
_SET_TX_BASE_SIZE = Tx.__dict__["base_size"].__set__
