"""Turn a current chain store back into what the v4 code left, to test the upgrades.

v4 kept block bodies and undo records in the tables `blocks(hash, data)` and `undo(hash, data)`
of the database; v5 keeps them in `blk*.dat`/`rev*.dat` files with their positions in the
database. `downgrade_to_v4` reads every record back out of the files into the old tables (blocks
in file order, as v4's rowid order was the order they were stored), drops the v5 tables and the
recorded magic, deletes the files and sets schema_version 4.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

__all__ = ["downgrade_to_v4"]


def downgrade_to_v4(path, blocks_dir=None) -> None:
    path = Path(path)
    blocks_dir = Path(blocks_dir) if blocks_dir is not None else Path(str(path) + ".blocks")
    conn = sqlite3.connect(path)

    def payload(kind: str, file: int, pos: int, size: int) -> bytes:
        with open(blocks_dir / f"{kind}{file:05d}.dat", "rb") as f:
            f.seek(pos)
            data = f.read(size)
        assert len(data) == size
        return data

    blocks = [(bytes(h), payload("blk", f, p, n)) for h, f, p, n in
              conn.execute("SELECT hash, file, pos, size FROM block_pos ORDER BY file, pos")]
    undo = [(bytes(h), payload("rev", f, p, n)) for h, f, p, n in
            conn.execute("SELECT hash, file, pos, size FROM undo_pos")]
    conn.executescript("""
        CREATE TABLE blocks (hash BLOB PRIMARY KEY, data BLOB NOT NULL);
        CREATE TABLE undo (hash BLOB PRIMARY KEY, data BLOB NOT NULL);
        DROP TABLE block_pos; DROP TABLE undo_pos; DROP TABLE block_files;
        DELETE FROM meta WHERE key='magic';
        UPDATE meta SET value='4' WHERE key='schema_version';
    """)
    conn.executemany("INSERT INTO blocks(hash, data) VALUES (?,?)", blocks)
    conn.executemany("INSERT INTO undo(hash, data) VALUES (?,?)", undo)
    conn.commit()
    conn.close()
    shutil.rmtree(blocks_dir)
