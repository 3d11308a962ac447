"""Block data in Core's flat-file layout (`tinynode/storage/blockfiles.py`, SQLite store v5).

What is checked: the bytes of `blk*.dat` / `rev*.dat` are Core's records (magic, size, block;
magic, size, undo, sha256d(parent hash || undo)), in the order the blocks were stored; files roll
over at the maximum size with each block's undo data in the rev file of the same number; a file
renamed, damaged or truncated reads as missing (None, with the index still saying the block was
stored) and reads again when restored; bytes a crash left after the last commit are cut at the
next open and overwritten by the next write; pruning deletes a file pair only once nothing in it
is kept, and never the current file; a v4 database's block rows move into the files; a store of
one network refuses another network's magic.
"""

from __future__ import annotations

import logging
import os
import sqlite3

import pytest

from tinynode.chain.chainstate import ChainState
from tinynode.params import REGTEST
from tinynode.primitives.hashes import sha256d
from tinynode.storage.base import StoreBatch, parse_undo
from tinynode.storage.blockfiles import FASTPRUNE_BLOCKFILE_SIZE
from tinynode.storage.sqlite import SCHEMA_VERSION, SQLiteChainStore, StoreError
from tests.framework.faulty_store import FaultyConnection
from tests.framework.legacy_store import downgrade_to_v4
from tests.unit.test_chain_unit_helpers import BASE_HEIGHT, Builder, base_chain, spend
from tinynode.primitives.tx import COIN

MAGIC = REGTEST.magic


def records(path) -> list[bytes]:
    """The payloads of a flat file, read the way Core's -loadblock scans one."""
    data = path.read_bytes()
    out, i = [], 0
    while i < len(data):
        assert data[i:i + 4] == MAGIC
        n = int.from_bytes(data[i + 4:i + 8], "little")
        out.append(data[i + 8:i + 8 + n])
        i += 8 + n
        if path.name.startswith("rev"):
            i += 32
    return out


@pytest.fixture(scope="module")
def chain():
    """The base chain (100 blocks) and 5 blocks above it, the first spending a base coinbase."""
    base = base_chain()
    b = Builder(base=base)
    tx = spend(base[0].txs[0], 49 * COIN)
    top = [b.next(base[-1], (tx,), fees=COIN)]
    top += b.chain(top[-1], 4)
    return base, top


def connect(tmp_path, blocks, **kw) -> ChainState:
    cs = ChainState(REGTEST, SQLiteChainStore(tmp_path / "chain.sqlite", **kw))
    for blk in blocks:
        cs.process_block(blk)
    cs.flush()
    return cs


def test_files_hold_cores_records_in_storage_order(tmp_path, chain):
    base, top = chain
    cs = connect(tmp_path, base + tuple(top))
    assert cs.tip.hash == top[-1].hash
    d = tmp_path / "chain.sqlite.blocks"
    assert sorted(os.listdir(d)) == ["blk00000.dat", "rev00000.dat"]
    blocks = records(d / "blk00000.dat")
    assert blocks == [REGTEST.genesis.serialize()] + [b.serialize() for b in base + tuple(top)]
    # rev: one record per connected block (genesis has none), checksum over the parent's hash
    raw = (d / "rev00000.dat").read_bytes()
    undos, i = [], 0
    while i < len(raw):
        n = int.from_bytes(raw[i + 4:i + 8], "little")
        undos.append((raw[i + 8:i + 8 + n], raw[i + 8 + n:i + 40 + n]))
        i += 40 + n
    assert len(undos) == len(base) + len(top)
    spent = parse_undo(undos[BASE_HEIGHT][0])          # the block above the base spends one coin
    assert [(c.value, c.height, c.is_coinbase) for c in spent] == [(50 * COIN, 1, True)]
    assert undos[BASE_HEIGHT][1] == sha256d(base[-1].hash + undos[BASE_HEIGHT][0])
    assert bytes(cs.store.get_undo(top[0].hash)) == undos[BASE_HEIGHT][0]
    assert cs.store.magic == MAGIC and cs.store.block_bytes() == sum(
        os.path.getsize(d / f) for f in os.listdir(d))
    cs.close()


def test_files_roll_over_and_undo_goes_with_its_block(tmp_path, chain):
    base, top = chain
    cs = connect(tmp_path, base + tuple(top), max_file_size=4096)
    d = tmp_path / "chain.sqlite.blocks"
    conn = cs.store._conn
    files = {f for (f,) in conn.execute("SELECT file FROM block_pos")}
    assert len(files) >= 4 and files == set(range(len(files)))
    for name in os.listdir(d):
        assert os.path.getsize(d / name) <= 4096
    mismatched = conn.execute("SELECT COUNT(*) FROM undo_pos u JOIN block_pos b ON b.hash = u.hash "
                              "WHERE u.file != b.file").fetchone()[0]
    assert mismatched == 0
    every = [r for f in sorted(files) for r in records(d / f"blk{f:05d}.dat")]
    assert every == [REGTEST.genesis.serialize()] + [b.serialize() for b in base + tuple(top)]
    cs.close()
    again = ChainState(REGTEST, SQLiteChainStore(tmp_path / "chain.sqlite", max_file_size=4096))
    assert again.tip.hash == top[-1].hash
    assert again.get_block(top[0].hash) == top[0]
    again.close()


def test_a_renamed_or_damaged_file_reads_as_missing_until_restored(tmp_path, chain, caplog):
    base, top = chain
    cs = connect(tmp_path, base + tuple(top))
    store = cs.store
    d = tmp_path / "chain.sqlite.blocks"
    h = top[0].hash
    (d / "rev00000.dat").rename(d / "rev_wrong")
    with caplog.at_level(logging.WARNING, logger="tinynode.storage.blockfiles"):
        assert store.get_undo(h) is None
    assert "rev00000.dat is missing" in caplog.text
    (d / "rev_wrong").rename(d / "rev00000.dat")
    assert store.get_undo(h) is not None
    (d / "blk00000.dat").rename(d / "blk00000.dat.bak")
    assert store.get_block(h) is None and store.has_block(h)     # Core: BLOCK_HAVE_DATA stays
    (d / "blk00000.dat.bak").rename(d / "blk00000.dat")
    assert store.get_block(h) == top[0].serialize()
    # a flipped byte in the block's header: it no longer hashes to the index's hash
    file, pos, size = store._conn.execute("SELECT file, pos, size FROM block_pos WHERE hash=?", (h,)).fetchone()
    with open(d / "blk00000.dat", "r+b") as f:
        f.seek(pos + 70)
        byte = f.read(1)
        f.seek(pos + 70)
        f.write(bytes([byte[0] ^ 1]))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="tinynode.storage.blockfiles"):
        assert store.get_block(h) is None
    assert f"is not {top[0].hash[::-1].hex()}" in caplog.text
    # a flipped byte in the undo data: the checksum fails
    file, pos, size = store._conn.execute("SELECT file, pos, size FROM undo_pos WHERE hash=?", (h,)).fetchone()
    with open(d / "rev00000.dat", "r+b") as f:
        f.seek(pos)
        byte = f.read(1)
        f.seek(pos)
        f.write(bytes([byte[0] ^ 1]))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="tinynode.storage.blockfiles"):
        assert store.get_undo(h) is None
    assert "fails its checksum" in caplog.text
    cs.close()


def test_bytes_written_before_a_failed_commit_are_cut_and_overwritten(tmp_path, chain):
    """A commit that fails after the file write (as a kill between the two would leave it): the
    file holds bytes no position points to; the next open cuts them, the next write lands on the
    committed end."""
    base, top = chain
    cs = connect(tmp_path, base)
    d = tmp_path / "chain.sqlite.blocks"
    committed = os.path.getsize(d / "blk00000.dat")
    store = cs.store
    FaultyConnection.install(store, "commit", 1)
    with pytest.raises(sqlite3.OperationalError):
        store.write(StoreBatch(blocks={top[0].hash: top[0].serialize()}))
    assert os.path.getsize(d / "blk00000.dat") > committed
    assert store.get_block(top[0].hash) is None and not store.has_block(top[0].hash)
    cs.close()
    store = SQLiteChainStore(tmp_path / "chain.sqlite")
    assert os.path.getsize(d / "blk00000.dat") == committed
    store.write(StoreBatch(blocks={top[1].hash: top[1].serialize()}))
    assert records(d / "blk00000.dat")[-1] == top[1].serialize()
    assert store.get_block(top[1].hash) == top[1].serialize()
    store.close()


def test_a_file_no_record_points_into_is_removed_at_open(tmp_path, chain):
    base, _ = chain
    connect(tmp_path, base[:3]).close()
    d = tmp_path / "chain.sqlite.blocks"
    (d / "blk00007.dat").write_bytes(b"left by a crash before its first commit")
    (d / "xor.dat").write_bytes(bytes(8))     # not a block file: left alone
    SQLiteChainStore(tmp_path / "chain.sqlite").close()
    assert sorted(os.listdir(d)) == ["blk00000.dat", "rev00000.dat", "xor.dat"]


def test_pruning_deletes_whole_files_only_and_never_the_current_one(tmp_path, chain):
    base, top = chain
    cs = connect(tmp_path, base + tuple(top), max_file_size=4096)
    cs.configure_prune(1, 100)                  # manual pruning (Core -prune=1)
    d = tmp_path / "chain.sqlite.blocks"
    before = sorted(os.listdir(d))
    usage = cs.store.block_bytes()
    n = cs.prune_to(cs.tip.height)             # everything but the last 288 = nothing (105 < 288)
    assert n == 0 and sorted(os.listdir(d)) == before
    cs.close()
    # with the MIN_BLOCKS_TO_KEEP rule out of the way: prune records directly through the store
    store = SQLiteChainStore(tmp_path / "chain.sqlite", max_file_size=4096)
    conn = store._conn
    first_file_blocks = [bytes(h) for (h,) in conn.execute("SELECT hash FROM block_pos WHERE file=0")]
    partly = [bytes(h) for (h,) in conn.execute("SELECT hash FROM block_pos WHERE file=1")][:1]
    recs = {r.hash: r for r in store.load_index()}
    store.prune_blocks([recs[h] for h in first_file_blocks + partly])
    after = sorted(os.listdir(d))
    assert "blk00000.dat" not in after and "rev00000.dat" not in after
    assert "blk00001.dat" in after                       # one of its blocks is still kept
    assert store.block_bytes() < usage
    assert store.get_block(first_file_blocks[-1]) is None and not store.has_block(first_file_blocks[-1])
    last = max(f for (f,) in conn.execute("SELECT file FROM block_files"))
    store.prune_blocks([recs[bytes(h)] for (h,) in conn.execute("SELECT hash FROM block_pos")])
    assert sorted(os.listdir(d)) == [f"blk{last:05d}.dat", f"rev{last:05d}.dat"]
    # a block stored again after its file went goes at the end of the current file
    store.write(StoreBatch(blocks={top[0].hash: top[0].serialize()}))
    assert store.get_block(top[0].hash) == top[0].serialize()
    store.close()


def test_fastprune_files_are_64_kib(tmp_path):
    assert FASTPRUNE_BLOCKFILE_SIZE == 0x10000


def test_a_v4_database_moves_its_blocks_into_the_files(tmp_path, chain, caplog):
    base, top = chain
    cs = connect(tmp_path, base + tuple(top))
    undo = bytes(cs.store.get_undo(top[0].hash))
    cs.close()
    downgrade_to_v4(tmp_path / "chain.sqlite")
    assert not (tmp_path / "chain.sqlite.blocks").exists()
    # opened without the magic: still readable from the old tables, nothing moved yet
    store = SQLiteChainStore(tmp_path / "chain.sqlite")
    assert store.schema_version() == SCHEMA_VERSION
    assert store.get_block(top[2].hash) == top[2].serialize() and bytes(store.get_undo(top[0].hash)) == undo
    assert store.stored_block_hashes()[-1] == top[-1].hash
    store.close()
    with caplog.at_level(logging.INFO, logger="tinynode.storage.sqlite"):
        cs = ChainState(REGTEST, SQLiteChainStore(tmp_path / "chain.sqlite"))
    assert "moved 106 blocks into" in caplog.text
    conn = cs.store._conn
    assert conn.execute("SELECT name FROM sqlite_master WHERE name IN ('blocks', 'undo')").fetchall() == []
    d = tmp_path / "chain.sqlite.blocks"
    assert records(d / "blk00000.dat") == [REGTEST.genesis.serialize()] + [b.serialize() for b in base + tuple(top)]
    assert cs.tip.hash == top[-1].hash and bytes(cs.store.get_undo(top[0].hash)) == undo
    assert cs.get_block(top[2].hash) == top[2]
    cs.close()


def test_a_store_refuses_another_networks_magic(tmp_path, chain):
    base, _ = chain
    connect(tmp_path, base[:2]).close()
    with pytest.raises(StoreError, match="holds the blocks of another network"):
        SQLiteChainStore(tmp_path / "chain.sqlite", magic=b"tiny")
    store = SQLiteChainStore(tmp_path / "chain.sqlite")
    assert store.magic == MAGIC
    store.close()


def test_a_store_without_its_network_cannot_write_blocks(tmp_path, chain):
    base, _ = chain
    store = SQLiteChainStore(tmp_path / "chain.sqlite")
    with pytest.raises(StoreError, match="network is not known"):
        store.write(StoreBatch(blocks={base[0].hash: base[0].serialize()}))
    assert not store.has_block(base[0].hash)
    store.close()


def test_reindex_chainstate_starts_the_undo_files_again(tmp_path, chain):
    from tinynode.chain.reindex import prepare_reindex, run_reindex
    base, top = chain
    connect(tmp_path, base + tuple(top)).close()
    d = tmp_path / "chain.sqlite.blocks"
    rev = os.path.getsize(d / "rev00000.dat")
    store = SQLiteChainStore(tmp_path / "chain.sqlite")
    mode = prepare_reindex(store, reindex=False, reindex_chainstate=True)
    assert os.path.getsize(d / "rev00000.dat") == 0
    cs = ChainState(REGTEST, store, activate=False)
    run_reindex(cs, mode, lambda: False)
    cs.flush()
    assert cs.tip.hash == top[-1].hash
    assert os.path.getsize(d / "rev00000.dat") == rev          # the same records written again
    cs.close()


def test_a_full_reindex_reads_the_files_without_writing_the_blocks_again(tmp_path, chain):
    """Core's -reindex: blocks loaded from the files keep their positions (AcceptBlock with a
    known dbp); only the undo data is written again."""
    from tinynode.chain.reindex import prepare_reindex, run_reindex
    base, top = chain
    connect(tmp_path, base + tuple(top)).close()
    d = tmp_path / "chain.sqlite.blocks"
    blk = (d / "blk00000.dat").read_bytes()
    store = SQLiteChainStore(tmp_path / "chain.sqlite")
    mode = prepare_reindex(store, reindex=True, reindex_chainstate=False)
    cs = ChainState(REGTEST, store, activate=False)
    run_reindex(cs, mode, lambda: False)
    cs.flush()
    assert cs.tip.hash == top[-1].hash
    assert (d / "blk00000.dat").read_bytes() == blk
    assert bytes(cs.store.get_undo(top[0].hash)) and cs.get_block(top[3].hash) == top[3]
    cs.close()


def test_reindex_rebuilds_a_lost_database_from_the_block_files(tmp_path, chain, caplog):
    """Core's -reindex reads the blk files: with the database deleted (the files kept, one with
    garbage between two records), the whole chain comes back from the files alone."""
    from tinynode.chain.reindex import prepare_reindex, run_reindex
    base, top = chain
    connect(tmp_path, base + tuple(top), max_file_size=8192).close()
    d = tmp_path / "chain.sqlite.blocks"
    for name in ("chain.sqlite", "chain.sqlite-wal", "chain.sqlite-shm"):
        (tmp_path / name).unlink(missing_ok=True)
    with open(d / "blk00001.dat", "r+b") as f:   # a torn record: a magic with a size past the end
        data = f.read()
        cut = 8 + int.from_bytes(data[4:8], "little")     # after the file's first record
        f.seek(0)
        f.write(data[:cut] + b"\x00junk" + MAGIC + (10 ** 7).to_bytes(4, "little") + data[cut:])
    with caplog.at_level(logging.INFO):
        store = SQLiteChainStore(tmp_path / "chain.sqlite", max_file_size=8192, magic=MAGIC)
        assert "block files this database does not know" in caplog.text
        assert len(os.listdir(d)) > 2                 # nothing deleted by the open
        mode = prepare_reindex(store, reindex=True, reindex_chainstate=False)
    assert "Reindexing block file blk00000.dat..." in caplog.text
    cs = ChainState(REGTEST, store, activate=False)
    run_reindex(cs, mode, lambda: False)
    cs.flush()
    assert cs.tip.hash == top[-1].hash and cs.height == BASE_HEIGHT + len(top)
    assert cs.get_block(top[0].hash) == top[0] and cs.store.get_undo(top[0].hash) is not None
    cs.close()
