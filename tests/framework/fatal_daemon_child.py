"""Child process for the fatal-storage daemon test: the real `tinynode` entry (`daemon_main`)
with a chain store whose disk fails once the chain grows past genesis.

    python -m tests.framework.fatal_daemon_child <tinynode daemon arguments...>

Every `SQLiteChainStore.write` after the genesis one that stores a block or moves the tip
raises SQLite's "disk I/O error" (as a full or failing disk would; the writer's idle commits
store blocks without the tip, which moves with the coins); the exit code is `daemon_main`'s.
"""

from __future__ import annotations

import sqlite3
import sys


def main(argv: list[str]) -> int:
    from tinynode.cli import daemon_main
    from tinynode.storage.sqlite import SQLiteChainStore

    real_write = SQLiteChainStore.write
    genesis_written: list[bool] = []

    def failing_write(self, batch):
        if genesis_written and (batch.tip is not None or batch.blocks):
            raise sqlite3.OperationalError("disk I/O error")
        if batch.tip is not None:
            genesis_written.append(True)
        return real_write(self, batch)

    SQLiteChainStore.write = failing_write  # this child process only
    return daemon_main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
