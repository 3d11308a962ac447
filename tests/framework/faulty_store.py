"""Storage fault injection: make the chain store fail on the Nth call of one kind.

Two levels:

* `FaultyStore(store, method, n)` wraps any `ChainStore` and raises on the `n`th call of
  `method` (e.g. the 3rd `write`, the 1st `get_undo`); the wrapped store never sees that call,
  so a memory store stays at its last applied batch, as a real store after a rollback.
* `FaultyConnection.install(sqlite_store, stage, n)` sits between a `SQLiteChainStore` and its
  sqlite3 connection and raises `sqlite3.OperationalError("disk I/O error")` on the `n`th
  statement of one stage of a store transaction (a header row, a block body, a coin, an undo
  record's position, a disconnect's tx-index delete or a pruning's undo delete, an undo read, the COMMIT itself): SQLite's own error,
  in the middle of the real transaction, which the store then rolls back.

Counting mode (`n=0`) never fails and just counts, so a test can learn how many calls of each
stage a scenario makes and then fail each one in turn.
"""

from __future__ import annotations

import errno
import sqlite3
from typing import Any

__all__ = ["FaultyStore", "FaultyConnection", "SQL_STAGES", "disk_io_error"]

#: stage name -> predicate on the SQL text (executemany calls count only with at least one row)
SQL_STAGES: dict[str, Any] = {
    "header": lambda sql: "INTO block_index" in sql,
    "body": lambda sql: "INTO block_pos" in sql,   # the block's position (its bytes: the file)
    "coins": lambda sql: "INTO coins" in sql or "DELETE FROM coins" in sql,
    "undo": lambda sql: "INTO undo_pos" in sql,
    # a disconnect keeps the block's undo record: its own write is the tx-index removal
    "disconnect": lambda sql: "DELETE FROM undo_pos" in sql or "DELETE FROM txindex WHERE" in sql,
    "undo-read": lambda sql: sql.startswith("SELECT u.file, u.pos, u.size"),
    "commit": lambda sql: sql.strip().upper() == "COMMIT",
}


def disk_io_error() -> sqlite3.OperationalError:
    return sqlite3.OperationalError("disk I/O error")


class FaultyStore:
    """Forwards to `store`; the `n`th call of `method` raises `exc` (n=0: never, only count)."""

    def __init__(self, store: Any, method: str = "write", n: int = 0,
                 exc: BaseException | None = None) -> None:
        self.inner = store
        self.method = method
        self.n = n
        self.calls = 0
        self.failed = False
        self.exc = exc if exc is not None else OSError(errno.EIO, "Input/output error")

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if name != self.method or not callable(attr):
            return attr

        def call(*args: Any, **kw: Any) -> Any:
            self.calls += 1
            if self.calls == self.n:
                self.failed = True
                raise self.exc
            return attr(*args, **kw)
        return call


class FaultyConnection:
    """Proxy of a sqlite3 connection failing the `n`th statement of `stage` (n=0: count only)."""

    def __init__(self, conn: sqlite3.Connection, stage: str, n: int = 0) -> None:
        self._conn = conn
        self._match = SQL_STAGES[stage]
        self.n = n
        self.calls = 0
        self.failed = False

    @classmethod
    def install(cls, store: Any, stage: str, n: int = 0) -> "FaultyConnection":
        proxy = cls(store._conn, stage, n)
        store._conn = proxy
        return proxy

    def _count(self, sql: str) -> None:
        if self._match(sql):
            self.calls += 1
            if self.calls == self.n:
                self.failed = True
                raise disk_io_error()

    def execute(self, sql: str, params: Any = ()) -> Any:
        self._count(sql)
        return self._conn.execute(sql, params)

    def executemany(self, sql: str, rows: Any) -> Any:
        rows = list(rows)
        if rows:
            self._count(sql)
        return self._conn.executemany(sql, rows)

    @property
    def in_transaction(self) -> bool:
        return self._conn.in_transaction

    @property
    def total_changes(self) -> int:
        return self._conn.total_changes

    def close(self) -> None:
        self._conn.close()
