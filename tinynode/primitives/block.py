"""Block headers, blocks and the merkle root.

    header = version:i32 | prev_hash[32] | merkle_root[32] | time:u32 | bits:u32 | nonce:u32
    block  = header | compact(n_tx) | Tx*

A block's txs are stored in their full serialization (BIP144 witness form where they have a
witness), so `serialize()` round-trips the bytes received; `size` is the total size.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field

from .hashes import hash_to_hex, sha256d
from .serialize import ByteReader, DecodeError, ser_compact_size
from .tx import MIN_TXIN_SIZE, Tx

__all__ = [
    "BlockHeader",
    "Block",
    "merkle_root",
    "witness_merkle_root",
    "bits_to_target",
    "target_to_bits",
    "HEADER_SIZE",
]

HEADER_SIZE = 80
_HDR = struct.Struct("<i32s32sIII")

#: The smallest serialized transaction (version, 1 input, 0 outputs, locktime): bounds tx counts.
_MIN_TX_SIZE = 4 + 1 + MIN_TXIN_SIZE + 1 + 4


_FIELDS = ("version", "prev_hash", "merkle_root", "time", "bits", "nonce")


def bits_to_target(bits: int) -> tuple[int, bool, bool]:
    """Decode compact `bits` as Core's `arith_uint256::SetCompact`.

    Returns (target, negative, overflow). A header is invalid if negative, overflow, or zero.
    """
    size = bits >> 24
    word = bits & 0x007FFFFF
    if size <= 3:
        # Core shifts the mantissa itself here, so bits dropped by the shift do not count
        # towards "negative" or "overflow" (0x01803456 is zero, not negative).
        word >>= 8 * (3 - size)
        target = word
    else:
        target = word << (8 * (size - 3))
    negative = word != 0 and (bits & 0x00800000) != 0
    overflow = word != 0 and (
        size > 34 or (word > 0xFF and size > 33) or (word > 0xFFFF and size > 32)
    )
    return target, negative, overflow


def target_to_bits(target: int) -> int:
    """Encode a target as compact bits, as Core's `arith_uint256::GetCompact`."""
    size = (target.bit_length() + 7) // 8
    if size <= 3:
        compact = target << (8 * (3 - size))
    else:
        compact = target >> (8 * (size - 3))
    if compact & 0x00800000:
        compact >>= 8
        size += 1
    return compact | (size << 24)


@dataclass(frozen=True, slots=True)
class BlockHeader:
    version: int
    prev_hash: bytes
    merkle_root: bytes
    time: int
    bits: int
    nonce: int
    hash: bytes = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "hash", sha256d(self.serialize()))

    def serialize(self) -> bytes:
        return _HDR.pack(self.version, self.prev_hash, self.merkle_root, self.time, self.bits, self.nonce)

    @classmethod
    def parse(cls, r: ByteReader) -> "BlockHeader":
        return cls(*_HDR.unpack(r.read(HEADER_SIZE)))

    @classmethod
    def from_bytes(cls, data: bytes) -> "BlockHeader":
        if len(data) != HEADER_SIZE:
            raise DecodeError(f"a header is {HEADER_SIZE} bytes, got {len(data)}")
        return cls(*_HDR.unpack(data))

    @classmethod
    def from_stored(cls, data: bytes, block_hash: bytes) -> "BlockHeader":
        """A header read back from this node's own store with its stored hash (which was this
        header's sha256d when written): parsed without hashing it again."""
        h = object.__new__(cls)
        set_ = object.__setattr__
        for name, v in zip(_FIELDS, _HDR.unpack(data)):
            set_(h, name, v)
        set_(h, "hash", block_hash)
        return h

    @property
    def hash_hex(self) -> str:
        return hash_to_hex(self.hash)

    @property
    def target(self) -> int:
        return bits_to_target(self.bits)[0]

    def check_pow(self, pow_limit: int) -> bool:
        """Core's `CheckProofOfWork`: target in range and hash (little-endian int) ≤ target."""
        target, negative, overflow = bits_to_target(self.bits)
        if negative or overflow or target == 0 or target > pow_limit:
            return False
        return int.from_bytes(self.hash, "little") <= target

    def __repr__(self) -> str:
        return f"BlockHeader({self.hash_hex}, prev={hash_to_hex(self.prev_hash)}, bits={self.bits:#x})"


def merkle_root(hashes: list[bytes]) -> tuple[bytes, bool]:
    """Core's `ComputeMerkleRoot`: (root, mutated).

    `mutated` reports CVE-2012-2459: two identical adjacent hashes at some level, which lets a
    block with duplicated tail transactions share the merkle root of the real block.
    """
    if not hashes:
        return bytes(32), False
    sha = hashlib.sha256
    level = list(hashes)
    mutated = False
    while len(level) > 1:
        left, right = level[0::2], level[1::2]
        # zip stops at the shorter list: a lone last hash is not compared with itself.
        if not mutated and any(a == b for a, b in zip(left, right)):
            mutated = True
        if len(right) < len(left):
            right.append(left[-1])
        level = [sha(sha(a + b).digest()).digest() for a, b in zip(left, right)]
    return level[0], mutated


def witness_merkle_root(txs) -> tuple[bytes, bool]:
    """Core `BlockWitnessMerkleRoot`: the merkle root of the txs' wtxids with the coinbase's
    wtxid taken as zero (BIP141; the coinbase commits to this root). (root, mutated)."""
    hashes = [bytes(32)]
    hashes.extend(t.wtxid for t in list(txs)[1:])
    return merkle_root(hashes)


@dataclass(frozen=True, slots=True)
class Block:
    header: BlockHeader
    txs: tuple[Tx, ...]
    size: int = field(init=False, compare=False, repr=False)
    # `compute_merkle_root`'s answer, kept: a received block is checked by the net layer
    # (IsBlockMutated) and again by CheckBlock on the chain writer; the txs of a frozen block
    # cannot change in between
    _merkle: tuple[bytes, bool] | None = field(init=False, compare=False, repr=False, default=None)

    def __post_init__(self) -> None:
        if not isinstance(self.txs, tuple):
            object.__setattr__(self, "txs", tuple(self.txs))
        object.__setattr__(self, "size", HEADER_SIZE + len(ser_compact_size(len(self.txs)))
                           + sum(len(t.raw) for t in self.txs))

    @property
    def hash(self) -> bytes:
        return self.header.hash

    @property
    def hash_hex(self) -> str:
        return self.header.hash_hex

    def serialize(self) -> bytes:
        return b"".join([self.header.serialize(), ser_compact_size(len(self.txs))] + [t.raw for t in self.txs])

    def compute_merkle_root(self) -> tuple[bytes, bool]:
        """Core `BlockMerkleRoot`: over txids (never wtxids); computed once per block object."""
        cached = self._merkle
        if cached is None:
            cached = merkle_root([t.txid for t in self.txs])
            object.__setattr__(self, "_merkle", cached)
        return cached

    def compute_witness_merkle_root(self) -> tuple[bytes, bool]:
        return witness_merkle_root(self.txs)

    @property
    def base_size(self) -> int:
        """Core `GetSerializeSize(TX_NO_WITNESS(block))`: the size without any witness."""
        return self.size - sum(len(t.raw) - t.base_size for t in self.txs)

    @property
    def weight(self) -> int:
        """Core `GetBlockWeight` (BIP141): base size × 3 + total size."""
        return self.base_size * 3 + self.size

    @classmethod
    def parse(cls, r: ByteReader) -> "Block":
        header = BlockHeader.parse(r)
        n = r.compact_size(r.remaining() // _MIN_TX_SIZE)
        parse_tx = Tx.parse
        return cls(header, tuple(parse_tx(r) for _ in range(n)))

    @classmethod
    def from_bytes(cls, data: bytes) -> "Block":
        r = ByteReader(data)
        block = cls.parse(r)
        r.expect_end()
        return block

    def __repr__(self) -> str:
        return f"Block({self.hash_hex}, {len(self.txs)} txs)"
