"""In-process P2P nodes for network tests (before and beside `tinynode.node.Node`).

* `fast_config(**overrides)` — a `NetConfig` with every timeout shrunk for tests.
* `RawConn` — a minimal raw wire client on a real socket: send any message or bytes, read
  replies; enough for hostile tests (Core's `P2PInterface` without the thread).
* `NetNode` / `start_nodes` — a chain (`ChainState` + `ChainWriter`, memory or SQLite store in a
  tmp dir), optional `Mempool`, `SyncManager` and `ConnMan` on 127.0.0.1:0; `connect_nodes`,
  `sync_blocks`, `sync_mempools` that fail with every node's tip in the message.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from typing import Any

from tinynode.net.peer import NetConfig
from tinynode.wire import envelope
from tinynode.wire import messages as m
from tinynode.wire.constants import HEADER_SIZE, NODE_NETWORK, PROTOCOL_VERSION

__all__ = ["fast_config", "RawConn"]


def fast_config(**overrides: Any) -> NetConfig:
    """Short timeouts so a misbehaving or silent peer is handled within a second or two."""
    base = dict(handshake_timeout=3.0, idle_timeout=10.0, message_timeout=1.5, ping_interval=1.0,
                pong_timeout=2.0, send_timeout=1.5, send_queue=500, connect_timeout=2.0,
                ban_time=60.0, dial_interval=0.3, reconnect_min=0.2, reconnect_max=1.0,
                headers_timeout=3.0, block_stall_timeout=2.0, tx_request_timeout=3.0,
                relay_tick=0.02, addr_interval=1.0)
    base.update(overrides)
    return NetConfig(**base)


class RawConn:
    """A raw peer: `send(msg)`, `send_raw(command, payload, ...)`, `send_bytes(b)`, `recv()`."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, magic: bytes) -> None:
        self.reader = reader
        self.writer = writer
        self.magic = magic
        self.received: list[Any] = []

    @classmethod
    async def connect(cls, host: str, port: int, magic: bytes, *, rcvbuf: int | None = None) -> "RawConn":
        if rcvbuf is None:
            reader, writer = await asyncio.open_connection(host, port)
        else:
            import socket
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.setblocking(False)
            await asyncio.get_running_loop().sock_connect(sock, (host, port))
            reader, writer = await asyncio.open_connection(sock=sock, limit=rcvbuf)
        return cls(reader, writer, magic)

    async def send_bytes(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def send(self, msg: Any) -> None:
        await self.send_bytes(envelope.encode(self.magic, msg))

    async def send_raw(self, command: str, payload: bytes, **kw: Any) -> None:
        await self.send_bytes(envelope.encode_raw(kw.pop("magic", self.magic), command, payload, **kw))

    async def send_version(self, *, version: int = PROTOCOL_VERSION, start_height: int = 0,
                           nonce: int | None = None, listen_port: int = 0) -> None:
        await self.send(m.Version.create(
            version=version, nonce=nonce if nonce is not None else random.getrandbits(64),
            start_height=start_height, timestamp=int(time.time()),
            addr_from=m.NetAddr.from_host("127.0.0.1", listen_port, NODE_NETWORK)))

    async def handshake(self, **kw: Any) -> m.Version:
        await self.send_version(**kw)
        ver = await self.expect("version")
        await self.expect("verack")
        await self.send(m.Verack())
        return ver

    async def recv(self, timeout: float = 5.0) -> Any:
        """The next known message (unknown commands are skipped)."""
        async with asyncio.timeout(timeout):
            while True:
                header = envelope.parse_header(self.magic, await self.reader.readexactly(HEADER_SIZE))
                payload = await self.reader.readexactly(header.length)
                msg = envelope.decode_payload(header.command, payload, header.checksum)
                if msg is not None:
                    self.received.append(msg)
                    return msg

    async def expect(self, command: str, timeout: float = 5.0) -> Any:
        """Read until a `command` message arrives (answering pings on the way)."""
        async with asyncio.timeout(timeout):
            while True:
                msg = await self.recv(timeout)
                if msg.COMMAND == command:
                    return msg
                if msg.COMMAND == "ping":
                    await self.send(m.Pong(msg.nonce))

    async def ping_roundtrip(self, timeout: float = 5.0) -> None:
        """Core's sync_with_ping: a pong for our nonce proves everything before it was processed."""
        nonce = random.getrandbits(64) or 1
        await self.send(m.Ping(nonce))
        async with asyncio.timeout(timeout):
            while True:
                msg = await self.recv(timeout)
                if msg.COMMAND == "pong" and msg.nonce == nonce:
                    return
                if msg.COMMAND == "ping":
                    await self.send(m.Pong(msg.nonce))

    async def wait_closed(self, timeout: float = 5.0) -> bool:
        """True once the node closed the connection (reads hit EOF / reset)."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    data = await self.reader.read(65536)
                    if not data:
                        return True
        except (ConnectionError, OSError):
            return True
        except TimeoutError:
            return False

    async def close(self) -> None:
        try:
            self.writer.close()
            async with asyncio.timeout(1):
                await self.writer.wait_closed()
        except (OSError, ConnectionError, TimeoutError):
            self.writer.transport.abort()


def replace_config(cfg: NetConfig, **kw: Any) -> NetConfig:
    return dataclasses.replace(cfg, **kw)
