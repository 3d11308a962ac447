"""Block and undo data in flat files, laid out as Bitcoin Core lays out its `blocks/` directory.

Core's `FlatFileSeq` / `BlockManager` (node/blockstorage.cpp): block bodies are appended to
`blkNNNNN.dat`, a block's undo data to the `revNNNNN.dat` of the same number, and a new pair of
files starts when the current block file would pass `MAX_BLOCKFILE_SIZE` (128 MiB; 64 KiB with
-fastprune, a block larger than that gets a file of its own). Each record is

    blk: network magic (4) | size (4, little-endian) | serialized block
    rev: network magic (4) | size (4, little-endian) | undo data | checksum (32)

where the checksum is sha256d(hash of the block's parent || undo data), as Core's `WriteBlockUndo`
computes it. So a `blk*.dat` file is what Core writes (without Core's XOR obfuscation, as Core
with `-blocksxor=0`) and Core imports it with `-loadblock`; the undo payload is tinynode's
(`storage.base.serialize_undo`), not Core's `CBlockUndo`.

This class only reads and writes the bytes. Where each record lives (file number and offset of
the payload, Core's `nFile`/`nDataPos`/`nUndoPos`) and how far each file is written (Core's
`CBlockFileInfo.nSize`/`nUndoSize`) are kept by the caller in its database, and records are
appended only at those recorded ends: data written after the last committed end (a crash between
the file write and the database commit) is overwritten by the next write and truncated at open,
so the files never hold a record the index does not know of at a place the index expects.

Reads open the file each time (Core `OpenBlockFile`): a file renamed, deleted or damaged
while the node runs makes the read return None (with a log line) instead of reading stale data
through an old descriptor or raising.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from ..primitives.hashes import hash_to_hex, sha256d

log = logging.getLogger(__name__)

__all__ = ["BlockFiles", "disk_usage", "MAX_BLOCKFILE_SIZE", "FASTPRUNE_BLOCKFILE_SIZE", "STORAGE_HEADER_BYTES",
           "UNDO_CHECKSUM_BYTES"]

#: Core MAX_BLOCKFILE_SIZE: a new block file starts when a block would pass this size
MAX_BLOCKFILE_SIZE = 0x8000000
#: Core's block file size with -fastprune
FASTPRUNE_BLOCKFILE_SIZE = 0x10000
#: Core STORAGE_HEADER_BYTES: network magic and record size before each record
STORAGE_HEADER_BYTES = 8
#: Core MAX_BLOCK_SERIALIZED_SIZE: no block record is larger
MAX_BLOCK_SERIALIZED_SIZE = 4_000_000
#: the sha256d checksum after each undo record
UNDO_CHECKSUM_BYTES = 32

_FILE_NAME = re.compile(r"^(blk|rev)(\d{5})\.dat$")


def disk_usage(directory: str | os.PathLike[str]) -> int:
    """Bytes of every blk/rev file in `directory` (Core `CalculateCurrentUsage` counts the
    files' sizes)."""
    total = 0
    try:
        names = os.listdir(directory)
    except OSError:
        return 0
    for name in names:
        if _FILE_NAME.match(name):
            try:
                total += os.stat(os.path.join(directory, name)).st_size
            except OSError:
                pass
    return total


class BlockFiles:
    """The `blk*.dat` / `rev*.dat` files of one blocks directory."""

    def __init__(self, directory: str | os.PathLike[str], magic: bytes | None,
                 max_file_size: int = MAX_BLOCKFILE_SIZE) -> None:
        if magic is not None and len(magic) != 4:
            raise ValueError("the network magic is 4 bytes")
        self.directory = Path(directory)
        #: the network's message start (None until the owner learns it: records are then read
        #: without checking it, and cannot be written)
        self.magic = bytes(magic) if magic is not None else None
        self.max_file_size = int(max_file_size)
        self.directory.mkdir(parents=True, exist_ok=True)

    def path(self, kind: str, file: int) -> Path:
        """`blk00042.dat` (kind "blk") or `rev00042.dat` (kind "rev")."""
        return self.directory / f"{kind}{file:05d}.dat"

    # --- records ------------------------------------------------------------------------------
    def block_record(self, block: bytes) -> bytes:
        assert self.magic is not None
        return self.magic + len(block).to_bytes(4, "little") + block

    def undo_record(self, undo: bytes, prev_hash: bytes) -> bytes:
        assert self.magic is not None
        return self.magic + len(undo).to_bytes(4, "little") + undo + sha256d(prev_hash + undo)

    def fits(self, used: int, add: int) -> bool:
        """Core `FindNextBlockPos`: a block file that already holds data takes a record only if it
        stays within the maximum size."""
        return used == 0 or used + add <= self.max_file_size

    # --- writes -------------------------------------------------------------------------------
    def write(self, kind: str, file: int, offset: int, data: bytes) -> None:
        """Write `data` at `offset` of one file (created if missing) and sync it (Core
        `FlatFileSeq::Flush` with fsync): the bytes reach the disk before the index that points
        into them is committed."""
        fd = os.open(self.path(kind, file), os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            view = memoryview(data)
            while view:   # bounded: each pwrite writes at least one byte or raises
                n = os.pwrite(fd, view, offset)
                view = view[n:]
                offset += n
            os.fdatasync(fd)
        finally:
            os.close(fd)

    def truncate(self, kind: str, file: int, size: int) -> None:
        """Cut a file back to its recorded size (a missing file stays missing)."""
        p = self.path(kind, file)
        try:
            if p.stat().st_size > size:
                os.truncate(p, size)
        except FileNotFoundError:
            pass

    def remove(self, file: int) -> None:
        """Core `UnlinkPrunedFiles`: delete one pair of files."""
        for kind in ("blk", "rev"):
            try:
                self.path(kind, file).unlink()
            except FileNotFoundError:
                pass

    def existing(self) -> set[int]:
        """The numbers of the blk/rev files on disk."""
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return set()
        return {int(m.group(2)) for name in names if (m := _FILE_NAME.match(name)) is not None}

    def scan(self, file: int) -> tuple[list[tuple[int, int, bytes]], int]:
        """Core `LoadExternalBlockFile`'s walk over one blk file: every record that starts with
        the magic and whose size is plausible (80 bytes to MAX_BLOCK_SERIALIZED_SIZE, within
        the file), as (payload offset, size, hash of its 80-byte header); bytes that are not a
        record are skipped by searching for the next magic. Returns the records and the end of
        the last one. The blocks themselves are not checked here (the reindex validates them)."""
        assert self.magic is not None
        data = self.path("blk", file).read_bytes()
        out = []
        i = end = 0
        n = len(data)
        while True:   # bounded: i strictly increases
            i = data.find(self.magic, i)
            if i < 0 or i + STORAGE_HEADER_BYTES > n:
                break
            size = int.from_bytes(data[i + 4:i + 8], "little")
            start = i + STORAGE_HEADER_BYTES
            if not 80 <= size <= MAX_BLOCK_SERIALIZED_SIZE or start + size > n:
                i += 1
                continue
            out.append((start, size, sha256d(data[start:start + 80])))
            i = end = start + size
        return out, end

    # --- reads --------------------------------------------------------------------------------
    def _read(self, kind: str, file: int, pos: int, size: int, extra: int) -> bytes | None:
        """The payload of the record whose payload starts at `pos` (with `extra` bytes after it),
        checked against the record header; None (logged) when the file or record is not there."""
        path = self.path(kind, file)
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            log.warning("%s is missing: cannot read the record at offset %d", path.name, pos)
            return None
        try:
            want = STORAGE_HEADER_BYTES + size + extra
            raw = os.pread(fd, want, pos - STORAGE_HEADER_BYTES)
        finally:
            os.close(fd)
        if (len(raw) != want or (self.magic is not None and raw[:4] != self.magic)
                or int.from_bytes(raw[4:8], "little") != size):
            log.warning("%s: no %d-byte record at offset %d (file damaged or replaced)",
                        path.name, size, pos)
            return None
        return raw[STORAGE_HEADER_BYTES:]

    def read_block(self, file: int, pos: int, size: int, block_hash: bytes) -> bytes | None:
        """Core `ReadBlock`: the block's bytes, whose header must hash to `block_hash`."""
        data = self._read("blk", file, pos, size, 0)
        if data is None:
            return None
        if sha256d(data[:80]) != block_hash:
            log.warning("blk%05d.dat: the block at offset %d is not %s", file, pos,
                        hash_to_hex(block_hash))
            return None
        return data

    def read_undo(self, file: int, pos: int, size: int, prev_hash: bytes | None) -> bytes | None:
        """Core `ReadBlockUndo`: the undo data, whose checksum must match (checked when the
        parent's hash is known)."""
        data = self._read("rev", file, pos, size, UNDO_CHECKSUM_BYTES)
        if data is None:
            return None
        undo, checksum = data[:size], data[size:]
        if prev_hash is not None and sha256d(prev_hash + undo) != checksum:
            log.warning("rev%05d.dat: the undo record at offset %d fails its checksum", file, pos)
            return None
        return undo
