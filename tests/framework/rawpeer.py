"""A raw wire peer for hostile and protocol tests (Core's test_framework P2PInterface, trimmed).

`RawPeer` is one asyncio TCP connection with no background task: every read happens inside a
call with a timeout, so nothing leaks into the next test. It can put any bytes on the wire
(`send_raw`), send well-formed messages (`send`), do a Core-style handshake, read messages
(`recv`, `wait_for`), and tell whether the node hung up (`wait_closed`).

    peer = await RawPeer.connect("127.0.0.1", node.p2p_port, REGTEST.magic)
    their_version = await peer.handshake(start_height=0)
    await peer.send(GetHeaders([genesis_hash]))
    headers = await peer.wait_for("headers", timeout=5)
    await peer.send_raw(b"\\x00" * 24)          # garbage
    assert await peer.wait_closed(timeout=5)
    await peer.close()

Messages with commands the codec does not know come back as `RawMessage(command, payload)`.
"""

from __future__ import annotations

import asyncio
import collections
import random
import socket
import time
from dataclasses import dataclass

from tinynode.wire import (
    HEADER_SIZE,
    MessageHeader,
    NetAddr,
    Ping,
    Pong,
    Verack,
    Version,
    decode_payload,
    encode,
    encode_raw,
    parse_header,
)
from tinynode.wire.messages import Message

__all__ = ["RawPeer", "RawMessage", "PeerClosed"]


class PeerClosed(ConnectionError):
    """The node closed (or reset) the connection."""


@dataclass(frozen=True, slots=True)
class RawMessage:
    """A message whose command the codec does not implement (sendcmpct, feefilter, …)."""

    command: str
    payload: bytes

    @property
    def COMMAND(self) -> str:  # noqa: N802 - mirrors Message.COMMAND
        return self.command


class RawPeer:
    """One raw connection to a node. Use `RawPeer.connect(...)`; `async with` closes it."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, magic: bytes,
                 *, auto_pong: bool = True) -> None:
        self.magic = magic
        self.auto_pong = auto_pong
        self.reader = reader
        self.writer = writer
        #: Every message received, oldest first (bounded).
        self.received: collections.deque = collections.deque(maxlen=10_000)
        #: Messages skipped by `wait_for` / `handshake`, handed out first by the next `recv`.
        self._backlog: collections.deque = collections.deque(maxlen=10_000)
        self._pending: MessageHeader | None = None
        self._closed = False
        self._eof = False
        self.peer_version: Version | None = None

    # -- connection ----------------------------------------------------------------------------

    @classmethod
    async def connect(cls, host: str, port: int, magic: bytes, *, timeout: float = 5.0,
                      rcvbuf: int | None = None, auto_pong: bool = True) -> "RawPeer":
        """Open a TCP connection. `rcvbuf` shrinks SO_RCVBUF (for peers that stop reading)."""
        async with asyncio.timeout(timeout):
            if rcvbuf is None:
                reader, writer = await asyncio.open_connection(host, port)
            else:
                sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
                sock.setblocking(False)
                try:
                    await asyncio.get_running_loop().sock_connect(sock, (host, port))
                except BaseException:
                    sock.close()
                    raise
                reader, writer = await asyncio.open_connection(sock=sock, limit=max(rcvbuf, 1024))
        return cls(reader, writer, magic, auto_pong=auto_pong)

    async def __aenter__(self) -> "RawPeer":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.writer.close()
        try:
            async with asyncio.timeout(2.0):
                await self.writer.wait_closed()
        except (OSError, TimeoutError):
            pass

    def is_closed(self) -> bool:
        """A snapshot: we closed, we saw EOF/reset, or the transport already got EOF/closed.

        Prefer `wait_closed(timeout)`, which reads until the node hangs up.
        """
        if self._closed or self._eof or self.writer.is_closing():
            return True
        if self.reader.exception() is not None:
            return True
        # StreamReader has no public "EOF received" flag short of reading everything buffered.
        return bool(getattr(self.reader, "_eof", False))

    async def wait_closed(self, timeout: float = 5.0) -> bool:
        """Read and drop messages until the node closes the connection; False on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            if self._closed or self._eof:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                async with asyncio.timeout(left):
                    chunk = await self.reader.read(65536)
            except TimeoutError:
                return False
            except (ConnectionError, OSError):
                self._eof = True
                return True
            if not chunk:
                self._eof = True
                return True

    # -- sending -------------------------------------------------------------------------------

    async def send_raw(self, data: bytes, timeout: float = 5.0) -> None:
        """Write bytes as they are (garbage, lying headers, partial messages)."""
        if self._closed:
            raise PeerClosed("send on a closed RawPeer")
        try:
            self.writer.write(data)
            async with asyncio.timeout(timeout):
                await self.writer.drain()
        except (ConnectionError, OSError) as e:
            self._eof = True
            raise PeerClosed(str(e)) from e

    async def send(self, msg: Message, timeout: float = 5.0) -> None:
        await self.send_raw(encode(self.magic, msg), timeout)

    async def send_command(self, command: str | bytes, payload: bytes = b"", timeout: float = 5.0,
                           **overrides) -> None:
        """Send any command with any payload (`checksum_override=`, `length_override=` to lie)."""
        await self.send_raw(encode_raw(self.magic, command, payload, **overrides), timeout)

    # -- receiving -----------------------------------------------------------------------------

    async def _read_one(self) -> Message | RawMessage:
        try:
            if self._pending is None:
                data = await self.reader.readexactly(HEADER_SIZE)
                self._pending = parse_header(self.magic, data)
            header = self._pending
            payload = await self.reader.readexactly(header.length)
        except asyncio.IncompleteReadError as e:
            self._eof = True
            raise PeerClosed("the node closed the connection") from e
        except (ConnectionError, OSError) as e:
            self._eof = True
            raise PeerClosed(str(e)) from e
        self._pending = None
        msg = decode_payload(header.command, payload, header.checksum)
        if msg is None:
            msg = RawMessage(header.command, payload)
        self.received.append(msg)
        if self.auto_pong and isinstance(msg, Ping) and not self._closed:
            await self.send(Pong(msg.nonce))
        return msg

    async def recv(self, timeout: float = 5.0) -> Message | RawMessage:
        """The next message (backlog first). Raises TimeoutError or PeerClosed.

        A wire error from the node (bad magic, checksum, …) is raised as the codec's WireError.
        """
        if self._backlog:
            return self._backlog.popleft()
        if self._eof:
            raise PeerClosed("the node closed the connection")
        async with asyncio.timeout(timeout):
            return await self._read_one()

    async def wait_for(self, command: str, timeout: float = 5.0, predicate=None) -> Message | RawMessage:
        """The first message with `command` (and `predicate(msg)` true); others go to the backlog."""
        deadline = time.monotonic() + timeout
        for i, msg in enumerate(self._backlog):
            if msg.COMMAND == command and (predicate is None or predicate(msg)):
                del self._backlog[i]
                return msg
        skipped = []
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no {command!r} within {timeout} s; got "
                                       f"{[m.COMMAND for m in skipped][-20:]}")
                if self._eof:
                    raise PeerClosed(f"closed while waiting for {command!r}")
                try:
                    async with asyncio.timeout(left):
                        msg = await self._read_one()
                except TimeoutError:
                    raise TimeoutError(f"no {command!r} within {timeout} s; got "
                                       f"{[m.COMMAND for m in skipped][-20:]}") from None
                if msg.COMMAND == command and (predicate is None or predicate(msg)):
                    return msg
                skipped.append(msg)
        finally:
            self._backlog.extend(skipped)

    async def expect_nothing(self, timeout: float = 0.5, command: str | None = None) -> None:
        """Assert no message (or none with `command`) arrives within `timeout` s."""
        try:
            msg = await self.wait_for(command, timeout) if command else await self.recv(timeout)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected {msg!r}")

    # -- protocol helpers ----------------------------------------------------------------------

    async def handshake(self, magic: bytes | None = None, *, start_height: int = 0,
                        nonce: int | None = None, version: int | None = None,
                        services: int | None = None, relay: bool = True,
                        user_agent: str = "/rawpeer:0.1/", timeout: float = 10.0) -> Version:
        """Send our version, answer theirs with verack, wait for their verack. Returns theirs."""
        if magic is not None:
            self.magic = magic
        kwargs = {}
        if version is not None:
            kwargs["version"] = version
        if services is not None:
            kwargs["services"] = services
        peername = self.writer.get_extra_info("peername") or ("127.0.0.1", 0)
        ours = Version.create(
            nonce=random.getrandbits(64) if nonce is None else nonce,
            start_height=start_height, timestamp=int(time.time()),
            addr_recv=NetAddr.from_host(peername[0], peername[1], 0),
            relay=relay, user_agent=user_agent, **kwargs)
        deadline = time.monotonic() + timeout
        await self.send(ours)
        theirs = await self.wait_for("version", timeout)
        self.peer_version = theirs
        await self.send(Verack())
        await self.wait_for("verack", max(0.0, deadline - time.monotonic()))
        return theirs

    async def sync_with_ping(self, timeout: float = 5.0) -> None:
        """Core's barrier: the node has handled everything we sent before this ping."""
        nonce = random.getrandbits(64)
        await self.send(Ping(nonce))
        await self.wait_for("pong", timeout, predicate=lambda m: m.nonce == nonce)
