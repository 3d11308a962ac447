"""A minimal asyncio JSON-RPC-over-HTTP client for the other implementations in interop tests
(bcoin's and Bitcoin Core's RPC servers on 127.0.0.1), so a slow call never blocks the event loop
the in-process tinynode nodes run on."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any


class HTTPRPCError(RuntimeError):
    """The server answered with a JSON-RPC error object (kept as `code` and `message`)."""

    def __init__(self, method: str, error: Any):
        self.code = error.get("code") if isinstance(error, dict) else None
        self.error_message = error.get("message") if isinstance(error, dict) else str(error)
        super().__init__(f"{method}: {error}")


def _dechunk(data: bytes) -> bytes:
    out = bytearray()
    for _ in range(100_000):  # bounded
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2:]
    return bytes(out)


async def http_rpc(port: int, user: str, password: str, method: str, *params: Any,
                   timeout: float = 60.0) -> Any:
    """POST one JSON-RPC 1.0 request with basic auth to 127.0.0.1:port; return its `result`."""
    body = json.dumps({"jsonrpc": "1.0", "method": method, "params": list(params), "id": 1}).encode()
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    request = (f"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic {auth}\r\n"
               f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
               f"Connection: close\r\n\r\n").encode() + body
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
    try:
        writer.write(request)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()
    head, _, payload = raw.partition(b"\r\n\r\n")
    if b"chunked" in head.lower():
        payload = _dechunk(payload)
    if not payload:
        raise ValueError(f"{method}: empty HTTP reply: {head[:200]!r}")
    reply = json.loads(payload)
    if reply.get("error"):
        raise HTTPRPCError(method, reply["error"])
    return reply["result"]
