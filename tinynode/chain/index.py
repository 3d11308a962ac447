"""Block index: one entry per accepted header (Core `CBlockIndex`, btcd `blockNode`).

Each entry knows its parent entry, height, cumulative `chainwork` and status bits. Entries are
mutable only in `status` (and only on the chain writer thread); everything else is fixed.
`sequence_id` records arrival order of block data so that, among equal-work tips, the first seen
wins (Core `nSequenceId`).
"""

from __future__ import annotations

import struct
from enum import IntFlag
from typing import Iterator

from ..primitives.block import BlockHeader
from ..primitives.hashes import hash_to_hex

__all__ = ["BlockStatus", "BlockIndexEntry", "BlockIndex"]


class BlockStatus(IntFlag):
    """Status bits (Core `BlockStatus`, simplified)."""

    NONE = 0
    HEADER_VALID = 1      # header passed context-free + contextual header checks (BLOCK_VALID_TREE)
    HAVE_DATA = 2         # full block body stored (BLOCK_HAVE_DATA)
    VALID_SCRIPTS = 4     # connected once with every check (BLOCK_VALID_SCRIPTS)
    FAILED = 8            # this block is invalid (BLOCK_FAILED_VALID)
    FAILED_PARENT = 16    # descends from an invalid block (BLOCK_FAILED_CHILD)

    FULLY_VALID = VALID_SCRIPTS
    FAILED_MASK = FAILED | FAILED_PARENT


_int_and = int.__and__
_FAILED_MASK = int(BlockStatus.FAILED_MASK)
_HAVE_DATA = int(BlockStatus.HAVE_DATA)


_u32 = struct.Struct("<I").unpack_from
_i32 = struct.Struct("<i").unpack_from


class BlockIndexEntry:
    """One header in the block tree. `prev` is the parent entry (None for genesis).

    An entry keeps its header as the 80 serialized bytes only (Core's block index likewise
    keeps the fields, not a CBlockHeader): `time`, `bits` and `version` are read from them,
    `header` parses a new `BlockHeader` on each use. A parsed header per entry cost ~250 bytes
    more an entry (the object, its two 32-byte hashes, three ints): ~25 MB at 100,000 blocks.
    An entry loaded from the store (`from_stored`) takes the stored bytes and hash as they are."""

    __slots__ = ("hash", "_raw", "prev", "height", "chainwork", "status", "sequence_id",
                 "has_chain_data")

    def __init__(self, header: BlockHeader, prev: "BlockIndexEntry | None", height: int,
                 chainwork: int, status: BlockStatus = BlockStatus.HEADER_VALID,
                 sequence_id: int = 0) -> None:
        self._fill(header.hash, header.serialize(), prev, height, chainwork, status, sequence_id)

    @classmethod
    def from_stored(cls, raw: bytes, block_hash: bytes, prev: "BlockIndexEntry | None", height: int,
                    chainwork: int, status: BlockStatus, sequence_id: int) -> "BlockIndexEntry":
        """An entry from a stored index row: the 80-byte header kept as it is (not hashed again:
        `block_hash` is the row's key, its hash when it was written)."""
        e = cls.__new__(cls)
        e._fill(block_hash, raw, prev, height, chainwork, status, sequence_id)
        return e

    def _fill(self, block_hash: bytes, raw: bytes, prev: "BlockIndexEntry | None", height: int,
              chainwork: int, status: BlockStatus, sequence_id: int) -> None:
        self.hash = block_hash
        self._raw = raw
        self.prev = prev
        self.height = height
        self.chainwork = chainwork
        self.status = status
        self.sequence_id = sequence_id
        #: this block and all its ancestors have data (Core nChainTx != 0): it can be connected
        self.has_chain_data = False

    @property
    def header(self) -> BlockHeader:
        """The header, parsed from the kept bytes (a new object each call: callers that read
        one field use `time` / `bits` / `version` / `prev_hash`)."""
        return BlockHeader.from_stored(self._raw, self.hash)

    @property
    def header_bytes(self) -> bytes:
        """The 80-byte serialized header."""
        return self._raw

    # header fields, so pow.py can use an entry directly (read from the bytes, no parse)
    @property
    def time(self) -> int:
        return _u32(self._raw, 68)[0]

    @property
    def bits(self) -> int:
        return _u32(self._raw, 72)[0]

    @property
    def version(self) -> int:
        return _i32(self._raw, 0)[0]

    @property
    def prev_hash(self) -> bytes:
        return self._raw[4:36]

    @property
    def hash_hex(self) -> str:
        return hash_to_hex(self.hash)

    # plain int arithmetic: IntFlag.__and__ is a Python-level call, and these run per candidate
    @property
    def failed(self) -> bool:
        return _int_and(self.status, _FAILED_MASK) != 0

    @property
    def have_data(self) -> bool:
        return _int_and(self.status, _HAVE_DATA) != 0

    def get_ancestor(self, height: int) -> "BlockIndexEntry | None":
        """The ancestor at `height` by walking parents (ActiveChain answers on-chain in O(1))."""
        if height > self.height or height < 0:
            return None
        e: BlockIndexEntry | None = self
        while e is not None and e.height > height:
            e = e.prev
        return e

    def __repr__(self) -> str:
        return f"BlockIndexEntry({self.hash_hex}, height={self.height}, status={int(self.status)})"


class BlockIndex:
    """hash → entry map plus the children needed to mark descendants.

    `_children[parent hash]` is the one child entry, or a list once a block has two or more
    children (a fork): no list object for each of the (nearly all) single-child entries."""

    __slots__ = ("_entries", "_children")

    def __init__(self) -> None:
        self._entries: dict[bytes, BlockIndexEntry] = {}
        self._children: dict[bytes, BlockIndexEntry | list[BlockIndexEntry]] = {}

    def add(self, entry: BlockIndexEntry) -> None:
        self._entries[entry.hash] = entry
        prev = entry.prev
        if prev is not None:
            children = self._children
            h = prev.hash
            c = children.get(h)
            if c is None:
                children[h] = entry
            elif type(c) is list:
                c.append(entry)
            else:
                children[h] = [c, entry]

    def get(self, block_hash: bytes) -> BlockIndexEntry | None:
        return self._entries.get(block_hash)

    def __contains__(self, block_hash: bytes) -> bool:
        return block_hash in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[BlockIndexEntry]:
        return iter(self._entries.values())

    def children(self, entry: BlockIndexEntry) -> list[BlockIndexEntry]:
        """The entries whose parent is `entry` (a new list)."""
        c = self._children.get(entry.hash)
        if c is None:
            return []
        return list(c) if type(c) is list else [c]

    def descendants(self, entry: BlockIndexEntry) -> Iterator[BlockIndexEntry]:
        """All descendants of `entry` (not including it), breadth first, bounded by the index size."""
        stack = list(self.children(entry))
        while stack:
            e = stack.pop()
            yield e
            stack.extend(self.children(e))

    def tips(self) -> list[BlockIndexEntry]:
        """Entries without children (Core getchaintips)."""
        children = self._children
        return [e for e in self._entries.values() if e.hash not in children]
