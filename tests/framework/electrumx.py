"""ElectrumX (PyPI `e-x`, the Electrum server) as a process indexing a tinynode daemon, and a
small Electrum-protocol client (JSON-RPC 2.0, one JSON object per line over TCP) to talk to it.

contrib/interop/install_electrumx.sh installs ElectrumX into its own venv; TINYNODE_ELECTRUMX
names its `electrumx_server`."""
from __future__ import annotations

import asyncio
import itertools
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tests.framework.wait import wait_until

#: Longest line ElectrumX sends that this client reads (a block's headers in one answer).
MAX_LINE = 8 * 1024 * 1024


class ElectrumError(RuntimeError):
    def __init__(self, method: str, error: Any):
        super().__init__(f"{method}: {error}")
        self.error = error


class ElectrumClient:
    """One Electrum protocol session: `call` waits for the answer (bounded), notifications are
    queued per method for `next_notification`."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self._reader, self._writer = reader, writer
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future] = {}
        self._notes: dict[str, asyncio.Queue] = {}
        self._task = asyncio.create_task(self._read_loop())

    @classmethod
    async def connect(cls, port: int, timeout: float = 10.0) -> "ElectrumClient":
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port, limit=MAX_LINE), timeout)
        return cls(reader, writer)

    async def _read_loop(self) -> None:
        try:
            while line := await self._reader.readline():
                msg = json.loads(line)
                if "id" in msg and msg["id"] in self._pending:
                    self._pending.pop(msg["id"]).set_result(msg)
                elif "method" in msg:
                    self._queue(msg["method"]).put_nowait(msg.get("params"))
        finally:
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(ConnectionError("ElectrumX closed the connection"))

    def _queue(self, method: str) -> asyncio.Queue:
        return self._notes.setdefault(method, asyncio.Queue())

    async def call(self, method: str, *params: Any, timeout: float = 30.0) -> Any:
        rid = next(self._ids)
        fut = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        self._writer.write(json.dumps({"jsonrpc": "2.0", "id": rid, "method": method,
                                       "params": list(params)}).encode() + b"\n")
        await self._writer.drain()
        msg = await asyncio.wait_for(fut, timeout)
        if msg.get("error"):
            raise ElectrumError(method, msg["error"])
        return msg["result"]

    async def next_notification(self, method: str, timeout: float = 30.0) -> Any:
        return await asyncio.wait_for(self._queue(method).get(), timeout)

    def drain_notifications(self, method: str) -> list[Any]:
        q, out = self._queue(method), []
        while not q.empty():
            out.append(q.get_nowait())
        return out

    async def close(self) -> None:
        self._writer.close()
        self._task.cancel()
        try:
            await self._task
        except (asyncio.CancelledError, ConnectionError):
            pass


class ElectrumXServer:
    """electrumx_server for Bitcoin regtest, on 127.0.0.1 only, LevelDB in `db_dir`."""

    def __init__(self, server: str, db_dir: Path, daemon_url: str, tcp_port: int, rpc_port: int):
        self.db_dir, self.tcp_port, self.rpc_port = db_dir, tcp_port, rpc_port
        db_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = db_dir / "electrumx.log"
        env = dict(os.environ, COIN="Bitcoin", NET="regtest", DB_ENGINE="leveldb",
                   DB_DIRECTORY=str(db_dir), DAEMON_URL=daemon_url,
                   SERVICES=f"tcp://127.0.0.1:{tcp_port},rpc://127.0.0.1:{rpc_port}",
                   REPORT_SERVICES="", PEER_DISCOVERY="off", PEER_ANNOUNCE="", ALLOW_ROOT="1",
                   LOG_LEVEL="info", CACHE_MB="50", BLACKLIST_URL="", DAEMON_POLL_INTERVAL_BLOCKS="200",
                   DAEMON_POLL_INTERVAL_MEMPOOL="200")
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([server], env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                     cwd=db_dir)

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    async def wait_serving(self, timeout: float = 60.0) -> ElectrumClient:
        """The first session once ElectrumX listens (it does after catching up with the daemon)."""
        async def up() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"electrumx_server exited with {self.proc.returncode}:\n"
                                     f"{self.log_tail()}")
            try:
                r, w = await asyncio.open_connection("127.0.0.1", self.tcp_port)
            except OSError:
                return False
            w.close()
            return True
        try:
            await wait_until(up, timeout, interval=0.1)
        except AssertionError as e:
            raise AssertionError(f"{e}\n--- electrumx log ---\n{self.log_tail()}") from None
        return await ElectrumClient.connect(self.tcp_port)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
        shutil.rmtree(self.db_dir, ignore_errors=True)
