"""The JSON-RPC server: aiohttp on a Unix socket (mode 0600), Core's HTTP behaviour.

Mirrors Bitcoin Core's `HTTPReq_JSONRPC` (src/httprpc.cpp): one POST body holds one request
object or a batch array; parse errors, malformed requests and unknown methods get an error
object with Core's code, never a dropped connection or a traceback. Every call runs under a
deadline, and the body size is capped before it is read. While the node is still loading its
chain (`warmup` set), calls get -28 with the loading status, as Core's `RPC_IN_WARMUP`.

The server knows nothing about the node: it is handed an async `dispatch(method, params)`.
A request to `/wallet/<name>` (Core's wallet endpoint, URL-decoded as Core's `UrlDecode`) runs
with `REQUEST_WALLET` set to that name, one to `/` with it set to None; the wallet RPCs read it
(Core `GetWalletForJSONRPCRequest`). It is a context variable: each request is its own task, so
many nodes and requests in one process never see each other's.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import stat
import urllib.parse
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Awaitable, Callable

from aiohttp import web

from ..config import MAX_RPC_BODY
from .protocol import (
    RPC_IN_WARMUP, RPC_INVALID_REQUEST, RPC_MISC_ERROR, RPC_PARSE_ERROR, RPCError, Request,
    decode_body, dumps, failure, http_status_for, parse_request, request_id, success,
)

__all__ = ["RPCServer", "SocketInUseError", "REQUEST_WALLET", "NOT_IN_REQUEST"]

log = logging.getLogger(__name__)

Dispatch = Callable[[str, "list | dict"], Awaitable[Any]]
#: the REST interface (`rest.RESTHandler.serve`): (HTTP method, raw URI, body, warmup status)
RESTServe = Callable[[str, str, bytes, "str | None"], Awaitable[Any]]

#: What `REQUEST_WALLET` holds outside any RPC request (the node's own calls).
NOT_IN_REQUEST = object()
#: The wallet name of the request being served: a name for `/wallet/<name>`, None for `/`.
REQUEST_WALLET: ContextVar[Any] = ContextVar("tinynode_request_wallet", default=NOT_IN_REQUEST)

#: Methods that answer even while the node warms up (Core lets `stop` through as well).
WARMUP_ALLOWED = frozenset({"stop", "help", "uptime"})


def _wallet_from_path(raw_path: str) -> str | None:
    """Core `GetWalletNameFromJSONRPCRequest`: the URL-decoded rest of a `/wallet/` URI."""
    path = raw_path.split("?", 1)[0]
    if path.startswith("/wallet/"):
        return urllib.parse.unquote(path[len("/wallet/"):])
    return None


class SocketInUseError(RuntimeError):
    """Another process answers on the RPC socket path."""


def _socket_is_live(path: Path) -> bool:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(0.5)
        s.connect(str(path))
        return True
    except OSError:
        return False
    finally:
        s.close()


class RPCServer:
    """Serves `dispatch` over HTTP on the Unix socket `path`."""

    def __init__(self, path: Path, dispatch: Dispatch, *, max_body: int = MAX_RPC_BODY,
                 timeout: float = 60.0, timeout_for: Callable[[str], float | None] | None = None,
                 tcp_port: int | None = None, cookie_path: Path | None = None,
                 rest: RESTServe | None = None, explorer: RESTServe | None = None):
        self.path = Path(path)
        self._rest = rest                 # Core's -rest: /rest/ on the TCP listener, no auth
        self._explorer = explorer         # tinynode's --explorer: /explorer/ beside it, no auth
        self.tcp_port = tcp_port          # None = no TCP listener; 0 = any free port
        self.cookie_path = Path(cookie_path) if cookie_path is not None else None
        self._cookie: str | None = None
        self._tcp_runner: web.AppRunner | None = None
        self._dispatch = dispatch
        self.max_body = max_body
        self.timeout = timeout
        self._timeout_for = timeout_for
        self.warmup: str | None = None
        self._runner: web.AppRunner | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        path = self.path
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() or path.is_symlink():
            if stat.S_ISSOCK(path.lstat().st_mode) and _socket_is_live(path):
                raise SocketInUseError(
                    f"another process is serving RPC on {path}; stop it or choose --rpc-socket")
            path.unlink()
        app = web.Application(client_max_size=self.max_body)
        app.router.add_post("/", self._handle)
        app.router.add_post("/wallet/{name:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        # The socket file is 0600 from the moment it exists: on Linux bind() gives the new file
        # the mode of the socket's inode (less the umask), so set it before binding rather than
        # chmod-ing a file another local user could already have connected to.
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            os.fchmod(sock.fileno(), 0o600)
            sock.bind(str(path))
            site = web.SockSite(runner, sock)
            await site.start()
        except BaseException:
            sock.close()
            await runner.cleanup()
            raise
        if stat.S_IMODE(path.stat().st_mode) & 0o077:   # a platform whose bind ignores fchmod
            os.chmod(path, 0o600)
        self._runner = runner
        log.info("RPC listening on %s", path)
        if self.tcp_port is not None:
            try:
                await self._start_tcp()
            except BaseException:
                await self.stop()
                raise

    async def _start_tcp(self) -> None:
        """Loopback TCP with Core's cookie auth: `__cookie__:<random hex>` in `.cookie` (0600),
        new on every start, removed on stop (Core `GenerateAuthCookie`)."""
        import secrets

        cookie = f"__cookie__:{secrets.token_hex(32)}"
        if self.cookie_path is not None:
            self.cookie_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.cookie_path.with_name(self.cookie_path.name + ".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(cookie)
            os.replace(tmp, self.cookie_path)
        self._cookie = cookie
        app = web.Application(client_max_size=self.max_body, middlewares=[self._auth])
        app.router.add_post("/", self._handle)
        app.router.add_post("/wallet/{name:.*}", self._handle)
        if self._rest is not None:
            app.router.add_route("*", "/rest/{tail:.*}", self._open_handler(self._rest))
        if self._explorer is not None:
            app.router.add_route("*", "/explorer", self._open_handler(self._explorer))
            app.router.add_route("*", "/explorer/{tail:.*}", self._open_handler(self._explorer))
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", self.tcp_port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._tcp_runner = runner
        self.tcp_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        log.info("RPC listening on 127.0.0.1:%d (cookie auth, %s)%s", self.tcp_port, self.cookie_path,
                 "; REST on /rest/ (no auth)" if self._rest is not None else "")
        if self._explorer is not None:
            log.info("explorer: http://127.0.0.1:%d/explorer/", self.tcp_port)

    @web.middleware
    async def _auth(self, request: web.Request, handler: Callable) -> web.StreamResponse:
        import base64
        import hmac

        if request.path.startswith(("/rest/", "/explorer")):
            # Core checks credentials only in its JSON-RPC handler: REST is unauthenticated,
            # and without -rest a /rest/ path is a plain 404 (the explorer, read-only, likewise)
            return await handler(request)
        header = request.headers.get("Authorization", "")
        ok = False
        if header.startswith("Basic ") and self._cookie is not None:
            try:
                given = base64.b64decode(header[6:].strip(), validate=True).decode()
            except (ValueError, UnicodeDecodeError):
                given = ""
            ok = hmac.compare_digest(given.encode(), self._cookie.encode())
        if not ok:
            log.warning("RPC: refused a request with missing or wrong credentials")
            return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="jsonrpc"'})
        return await handler(request)

    async def stop(self) -> None:
        tcp, self._tcp_runner = self._tcp_runner, None
        if tcp is not None:
            await tcp.cleanup()
        if self._cookie is not None and self.cookie_path is not None:
            try:
                self.cookie_path.unlink()
            except FileNotFoundError:
                pass
            self._cookie = None
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass

    # --- HTTP --------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        token = REQUEST_WALLET.set(_wallet_from_path(request.raw_path))
        try:
            return await self._handle_body(request)
        finally:
            REQUEST_WALLET.reset(token)

    async def _handle_body(self, request: web.Request) -> web.Response:
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            err = RPCError(RPC_INVALID_REQUEST, f"Request body over {self.max_body} bytes")
            return self._reply(failure(err, None, False), 413)
        try:
            obj = decode_body(body)
        except RPCError as e:
            return self._reply(failure(e, None, False), 500)
        if isinstance(obj, dict):
            reply, status = await self._one(obj)
            if reply is None:
                return web.Response(status=204)
            return self._reply(reply, status)
        if isinstance(obj, list):
            # One deadline for the whole HTTP request (Core's -rpcservertimeout is per request):
            # a batch of slow calls cannot hold the connection for n times the timeout.
            deadline = asyncio.get_running_loop().time() + self.timeout
            replies = []
            for item in obj:
                reply, _ = await self._one(item, deadline)
                if reply is not None:
                    replies.append(reply)
            return self._reply(replies, 200)
        err = RPCError(RPC_PARSE_ERROR, "Top-level object parse error")
        return self._reply(failure(err, None, False), 500)

    def _open_handler(self, serve: RESTServe) -> Callable[[web.Request], Awaitable[web.Response]]:
        """An aiohttp handler for an unauthenticated read-only area (`rest.py`, `explorer.py`):
        it gets the raw request target as Core's prefix match sees it."""
        async def handle(request: web.Request) -> web.Response:
            try:
                body = await request.read()
            except web.HTTPRequestEntityTooLarge:
                return web.Response(status=413)
            try:
                reply = await serve(request.method, request.raw_path, body, self.warmup)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # our bug or I/O trouble: log it, answer with a sentence
                log.exception("%s failed", request.raw_path)
                return web.Response(status=500, body=f"{type(e).__name__}: {e}\r\n".encode(),
                                    headers={"Content-Type": "text/plain"})
            headers = {"Content-Type": reply.content_type} if reply.content_type else {}
            return web.Response(body=reply.body, status=reply.status, headers=headers)
        return handle

    @staticmethod
    def _reply(obj: Any, status: int) -> web.Response:
        # exactly "application/json" as Core's HTTP server sends (no charset parameter):
        # python-bitcoinrpc's AuthServiceProxy compares the header verbatim
        return web.Response(body=(dumps(obj) + "\n").encode(), status=status,
                            headers={"Content-Type": "application/json"})

    async def _one(self, obj: Any, deadline: float | None = None) -> tuple[dict | None, int]:
        """Run one request object; (reply or None for a notification, legacy HTTP status)."""
        try:
            req = parse_request(obj)
        except RPCError as e:
            v2 = isinstance(obj, dict) and obj.get("jsonrpc") == "2.0"
            return failure(e, request_id(obj), v2), (200 if v2 else http_status_for(e.code))
        try:
            result = await self._call(req, deadline)
        except RPCError as e:
            if req.is_notification:
                return None, 204
            return failure(e, req.id, req.v2), (200 if req.v2 else http_status_for(e.code))
        if req.is_notification:
            return None, 204
        return success(result, req.id, req.v2), 200

    async def _call(self, req: Request, deadline: float | None = None) -> Any:
        if self.warmup is not None and req.method not in WARMUP_ALLOWED:
            raise RPCError(RPC_IN_WARMUP, self.warmup)
        timeout = self._timeout_for(req.method) if self._timeout_for else None
        if timeout is None:
            timeout = self.timeout
        if deadline is not None:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise RPCError(RPC_MISC_ERROR, f"{req.method} not run: the batch used up its "
                                               f"{self.timeout:g} s deadline")
            timeout = min(timeout, left)
        try:
            async with asyncio.timeout(timeout):
                return await self._dispatch(req.method, req.params)
        except RPCError:
            raise
        except TimeoutError:
            raise RPCError(RPC_MISC_ERROR, f"{req.method} timed out after {timeout:g} s") from None
        except asyncio.CancelledError:
            raise
        except Exception as e:  # our bug or I/O trouble: log it, answer with a sentence
            log.exception("RPC %s failed", req.method)
            raise RPCError(RPC_MISC_ERROR, f"{type(e).__name__}: {e}") from None
