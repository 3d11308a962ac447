"""tests/framework/rawpeer.py against a tiny scripted node on 127.0.0.1 (no tinynode.net)."""

from __future__ import annotations

import asyncio

import pytest

from tests.framework.rawpeer import PeerClosed, RawMessage, RawPeer
from tinynode.params import REGTEST
from tinynode.wire import (
    FrameDecoder,
    GetHeaders,
    Headers,
    Ping,
    Pong,
    SendAddrV2,
    SendHeaders,
    Verack,
    Version,
    WireError,
    WtxidRelay,
    encode,
    encode_raw,
)

MAGIC = REGTEST.magic


class ScriptedNode:
    """Answers a handshake like Core (version, wtxidrelay/sendaddrv2 before verack), then
    serves getheaders with the genesis header, pings on request, and hangs up on wire errors."""

    def __init__(self) -> None:
        self.server: asyncio.base_events.Server | None = None
        self.port = 0
        self.got: list = []
        self.errors: list[str] = []
        self.writers: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> "ScriptedNode":
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc) -> None:
        for w in self.writers:
            w.close()
        self.server.close()
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        dec = FrameDecoder(MAGIC)
        try:
            while True:
                async with asyncio.timeout(10):
                    data = await reader.read(4096)
                if not data:
                    break
                dec.feed(data)
                while (item := dec.next()) is not None:
                    header, msg = item
                    self.got.append(msg if msg is not None else header.command)
                    await self._answer(msg, writer)
        except WireError as e:
            self.errors.append(e.kind)
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _answer(self, msg, writer: asyncio.StreamWriter) -> None:
        out = []
        if isinstance(msg, Version):
            out = [encode(MAGIC, Version.create(nonce=1, start_height=7, timestamp=0)),
                   encode_raw(MAGIC, "wtxidrelay", b""), encode_raw(MAGIC, "sendaddrv2", b""),
                   encode(MAGIC, Verack())]
        elif isinstance(msg, Verack):
            out = [encode(MAGIC, SendHeaders()), encode(MAGIC, Ping(99))]
        elif isinstance(msg, Ping):
            out = [encode(MAGIC, Pong(msg.nonce))]
        elif isinstance(msg, GetHeaders):
            out = [encode(MAGIC, Headers([REGTEST.genesis.header]))]
        writer.write(b"".join(out))
        await writer.drain()


async def test_handshake_and_traffic():
    async with ScriptedNode() as node:
        async with await RawPeer.connect("127.0.0.1", node.port, MAGIC) as peer:
            theirs = await peer.handshake(start_height=3, nonce=42)
            assert theirs.start_height == 7 and peer.peer_version is theirs
            # Messages around the handshake are kept, unknown ones as RawMessage.
            assert await peer.recv(2) == WtxidRelay()     # known since BIP 339 support
            assert await peer.recv(2) == SendAddrV2()     # known since BIP155 support
            assert await peer.wait_for("sendheaders", 2) == SendHeaders()
            assert await peer.wait_for("ping", 2) == Ping(99)  # answered automatically
            await peer.sync_with_ping(2)
            await peer.send(GetHeaders([REGTEST.genesis.hash]))
            hdrs = await peer.wait_for("headers", 2)
            assert hdrs.headers[0].hash == REGTEST.genesis.hash
            await peer.expect_nothing(0.2)
            assert not peer.is_closed()
        versions = [m for m in node.got if isinstance(m, Version)]
        assert versions[0].nonce == 42 and versions[0].start_height == 3
        assert Pong(99) in node.got


async def test_recv_timeout_is_bounded():
    async with ScriptedNode() as node:
        async with await RawPeer.connect("127.0.0.1", node.port, MAGIC) as peer:
            with pytest.raises(TimeoutError):
                await peer.recv(0.1)
            with pytest.raises(TimeoutError, match="headers"):
                await peer.wait_for("headers", 0.1)


async def test_garbage_gets_us_disconnected():
    async with ScriptedNode() as node:
        async with await RawPeer.connect("127.0.0.1", node.port, MAGIC) as peer:
            await peer.send_raw(b"\xde\xad\xbe\xef" + bytes(20))
            assert await peer.wait_closed(5)
            assert peer.is_closed()
            with pytest.raises(PeerClosed):
                await peer.recv(1)
        assert node.errors == ["bad-magic"]


async def test_lying_checksum_via_send_command():
    async with ScriptedNode() as node:
        async with await RawPeer.connect("127.0.0.1", node.port, MAGIC, rcvbuf=4096) as peer:
            await peer.send_command("ping", bytes(8), checksum_override=b"\x00\x00\x00\x00")
            assert await peer.wait_closed(5)
        assert node.errors == ["bad-checksum"]


async def test_wait_closed_times_out_on_a_live_connection():
    async with ScriptedNode() as node:
        peer = await RawPeer.connect("127.0.0.1", node.port, MAGIC)
        assert not await peer.wait_closed(0.1)
        await peer.close()
        assert peer.is_closed()
        with pytest.raises(PeerClosed):
            await peer.send(Ping(1))
