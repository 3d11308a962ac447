"""Minimal JSON-RPC clients for the Unix socket: a sync one (the CLI) and an async one (tests).

The sync client uses only the standard library (`http.client` over `AF_UNIX`) so that
`tinynode-cli` starts fast; aiohttp is imported only when the async client is made.
"""

from __future__ import annotations

import http.client
import json
import socket
import time
import urllib.parse
from pathlib import Path
from typing import Any

from .protocol import RPC_IN_WARMUP, RPCError, loads

__all__ = ["RPCClient", "AsyncRPCClient", "ConnectionFailed"]


class ConnectionFailed(OSError):
    """Nothing is listening on the socket (daemon not running, or wrong path)."""


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float | None):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if self.timeout is not None:
            s.settimeout(self.timeout)
        try:
            s.connect(self._path)
        except OSError:
            s.close()
            raise
        self.sock = s


def _decode_reply(status: int, body: bytes) -> Any:
    try:
        reply = loads(body)
    except ValueError:
        raise RPCError(-1, f"server returned HTTP {status} and no JSON") from None
    return reply


def wallet_uri(wallet: str | None) -> str:
    """`/` or Core's wallet endpoint `/wallet/<url-encoded name>` (bitcoin-cli -rpcwallet)."""
    return "/" if wallet is None else "/wallet/" + urllib.parse.quote(wallet, safe="")


class RPCClient:
    """Blocking client: `RPCClient(path).call("getblockcount")`; `wallet=` sends the calls to
    `/wallet/<name>` (bitcoin-cli's -rpcwallet)."""

    def __init__(self, path: str | Path, timeout: float | None = 900.0, wallet: str | None = None):
        self.path = str(path)
        self.timeout = timeout
        self.wallet = wallet
        self._next_id = 0

    def for_wallet(self, wallet: str | None) -> "RPCClient":
        """The same daemon, calls routed to `wallet`."""
        return RPCClient(self.path, self.timeout, wallet)

    def _post(self, payload: Any) -> Any:
        conn = _UnixHTTPConnection(self.path, self.timeout)
        try:
            try:
                conn.connect()
            except (FileNotFoundError, ConnectionRefusedError) as e:
                raise ConnectionFailed(str(e)) from None
            body = json.dumps(payload).encode()
            conn.request("POST", wallet_uri(self.wallet), body=body, headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            data = resp.read()
            if resp.status == 204:
                return None
            return _decode_reply(resp.status, data)
        finally:
            conn.close()

    def call(self, method: str, *params: Any, named: dict | None = None) -> Any:
        """Call `method`; returns the result or raises RPCError with Core's code."""
        self._next_id += 1
        payload = {"jsonrpc": "1.0", "id": self._next_id, "method": method,
                   "params": named if named is not None else list(params)}
        reply = self._post(payload)
        if not isinstance(reply, dict):
            raise RPCError(-1, "server reply is not a JSON object")
        err = reply.get("error")
        if err:
            raise RPCError(int(err.get("code", -1)), str(err.get("message", "")))
        return reply.get("result")

    def batch(self, calls: list[tuple[str, list]]) -> list[Any]:
        payload = [{"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p) in enumerate(calls)]
        return self._post(payload)

    def wait_ready(self, timeout: float = 60.0) -> None:
        """bitcoin-cli -rpcwait: retry refused connections and warm-up (-28) until ready."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.call("getblockcount")
                return
            except ConnectionFailed:
                pass
            except RPCError as e:
                if e.code != RPC_IN_WARMUP:
                    return
            if time.monotonic() >= deadline:
                raise ConnectionFailed(f"no RPC answer on {self.path} after {timeout:g} s")
            time.sleep(0.1)


class AsyncRPCClient:
    """aiohttp client over the Unix socket; `async with AsyncRPCClient(path) as c: await c.call(...)`."""

    def __init__(self, path: str | Path, timeout: float = 120.0, wallet: str | None = None):
        import aiohttp

        self._aiohttp = aiohttp
        self.path = str(path)
        self.wallet = wallet
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: Any = None
        self._next_id = 0

    async def __aenter__(self) -> "AsyncRPCClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    def _get_session(self) -> Any:
        if self._session is None:
            conn = self._aiohttp.UnixConnector(path=self.path)
            self._session = self._aiohttp.ClientSession(connector=conn, timeout=self._timeout)
        return self._session

    async def post(self, payload: Any, raw: bytes | None = None) -> tuple[int, Any]:
        """POST a payload (or raw bytes); (HTTP status, decoded JSON or None)."""
        data = raw if raw is not None else json.dumps(payload).encode()
        try:
            async with self._get_session().post("http://localhost" + wallet_uri(self.wallet), data=data,
                                                headers={"Content-Type": "application/json"}) as r:
                body = await r.read()
                return r.status, (json.loads(body) if body else None)
        except (self._aiohttp.ClientConnectorError, FileNotFoundError) as e:
            raise ConnectionFailed(str(e)) from None

    async def call(self, method: str, *params: Any, named: dict | None = None) -> Any:
        self._next_id += 1
        payload = {"jsonrpc": "1.0", "id": self._next_id, "method": method,
                   "params": named if named is not None else list(params)}
        _, reply = await self.post(payload)
        err = reply.get("error") if isinstance(reply, dict) else {"code": -1, "message": "bad reply"}
        if err:
            raise RPCError(int(err.get("code", -1)), str(err.get("message", "")))
        return reply.get("result")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
