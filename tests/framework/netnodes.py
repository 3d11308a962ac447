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

__all__ = ["fast_config", "sync_config", "RawConn", "NetNode", "SimpleChain", "start_nodes",
           "stop_nodes", "connect_line", "connect_star", "connect_mesh", "sync_blocks",
           "sync_mempools"]


def fast_config(**overrides: Any) -> NetConfig:
    """Short timeouts so a misbehaving or silent peer is handled within a second or two."""
    base = dict(handshake_timeout=3.0, idle_timeout=10.0, message_timeout=1.5, ping_interval=1.0,
                pong_timeout=2.0, send_timeout=1.5, send_queue=500, connect_timeout=2.0,
                ban_time=60.0, dial_interval=0.3, reconnect_min=0.2, reconnect_max=1.0,
                headers_timeout=3.0, block_stall_timeout=2.0, tx_request_timeout=3.0,
                relay_tick=0.02, addr_interval=1.0)
    base.update(overrides)
    return NetConfig(**base)


class InvSink:
    """A message handler that takes `inv`s and does nothing: a bare ConnMan then fetches nothing."""

    async def on_inv(self, peer: Any, msg: m.Inv) -> None:
        pass


def bare_connman(datadir: Any = None, **overrides: Any) -> Any:
    """A ConnMan on regtest with `fast_config(**overrides)`, no chain behind it, never dialing:
    the victim (or the honest neighbour) of the hostile-peer tests."""
    from tinynode.net.connman import ConnMan
    from tinynode.params import REGTEST
    return ConnMan(REGTEST, fast_config(**overrides), handlers=[InvSink()], dial=False, datadir=datadir)


def sync_config(**overrides: Any) -> NetConfig:
    """For multi-node tests: quick dialing and trickling, but deadlines lenient enough that a
    loaded CI machine does not drop honest peers (hostile tests use `fast_config`)."""
    base = dict(handshake_timeout=10.0, idle_timeout=60.0, message_timeout=10.0, pong_timeout=15.0,
                send_timeout=10.0, headers_timeout=15.0, block_stall_timeout=5.0,
                tx_request_timeout=10.0)
    base.update(overrides)
    return fast_config(**base)


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
                           nonce: int | None = None, listen_port: int = 0,
                           user_agent: str | None = None, services: int | None = None) -> None:
        extra: dict[str, Any] = {} if user_agent is None else {"user_agent": user_agent}
        if services is not None:
            extra["services"] = services
        await self.send(m.Version.create(
            version=version, nonce=nonce if nonce is not None else random.getrandbits(64),
            start_height=start_height, timestamp=int(time.time()), **extra,
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
        except TimeoutError:  # before OSError: TimeoutError is an OSError since Python 3.10
            return False
        except (ConnectionError, OSError):
            return True

    async def close(self) -> None:
        try:
            self.writer.close()
            async with asyncio.timeout(1):
                await self.writer.wait_closed()
        except (OSError, ConnectionError, TimeoutError):
            self.writer.transport.abort()


def replace_config(cfg: NetConfig, **kw: Any) -> NetConfig:
    return dataclasses.replace(cfg, **kw)


# ---------------------------------------------------------------------------------------------
# A stand-in chainstate for network tests: header tree, most-work selection, reorg events.
# No UTXO validation (that is ChainState's job and tested there); header PoW/difficulty/time and
# block merkle/structure checks are the real consensus functions, so invalid blocks and headers
# are refused with Core's reasons exactly as the network layer expects.

from tinynode.chain.active import ActiveChain  # noqa: E402
from tinynode.chain.chainstate import BlockResult  # noqa: E402
from tinynode.chain.events import BlockConnected, BlockDisconnected, TipChanged  # noqa: E402
from tinynode.chain.index import BlockIndex, BlockIndexEntry, BlockStatus  # noqa: E402
from tinynode.consensus.block_checks import (check_block, check_block_header,  # noqa: E402
                                              contextual_check_block_header)
from tinynode.consensus.errors import RejectReason, ValidationError  # noqa: E402
from tinynode.consensus.pow import block_work, median_time_past, next_work_required  # noqa: E402


class SimpleChain:
    """The `ChainState` API subset the network layer uses, in memory."""

    def __init__(self, params: Any, now=time.time) -> None:
        self.params = params
        self._now = now
        self.index = BlockIndex()
        self.active = ActiveChain()
        self.blocks: dict[bytes, Any] = {}
        self._subs: list = []
        self._seq = 0
        g = params.genesis
        e = BlockIndexEntry(g.header, None, 0, block_work(g.header.bits),
                            BlockStatus.HEADER_VALID | BlockStatus.HAVE_DATA | BlockStatus.VALID_SCRIPTS)
        e.has_chain_data = True
        self.index.add(e)
        self.blocks[e.hash] = g
        self.active.set_tip(e)
        self._best_header = e
        self._candidates: set = set()

    # read API
    @property
    def tip(self):
        return self.active.tip

    @property
    def height(self) -> int:
        return self.active.height

    @property
    def best_header(self):
        return self._best_header

    def get_entry(self, h):
        return self.index.get(h)

    def get_block(self, h):
        return self.blocks.get(h)

    def get_block_bytes(self, h):
        b = self.blocks.get(h)
        return None if b is None else b.serialize()

    def get_block_hash(self, height):
        e = self.active[height]
        return None if e is None else e.hash

    def block_locator(self, entry=None):
        return self.active.locator(entry)

    def find_fork(self, locator):
        for h in locator:
            e = self.index.get(h)
            if e is not None and self.active.contains(e):
                return e
        return self.active.genesis

    def headers_after(self, locator, stop_hash=None, limit=2000):
        fork = self.find_fork(locator)
        out = []
        e = self.active.next(fork)
        while e is not None and len(out) < limit:
            out.append(e.header)
            if e.hash == stop_hash:
                break
            e = self.active.next(e)
        return out

    def median_time_past(self, entry=None):
        return median_time_past(entry or self.tip)

    def next_bits(self, prev, t):
        return next_work_required(prev, self.params, None, t)

    def subscribe(self, cb) -> None:
        self._subs.append(cb)

    def close(self) -> None:
        pass

    # write API
    def _accept_header(self, header):
        e = self.index.get(header.hash)
        if e is not None:
            if e.status & BlockStatus.FAILED_MASK:
                raise ValidationError(RejectReason.DUPLICATE, "known invalid")
            return e
        prev = self.index.get(header.prev_hash)
        if prev is None:
            raise ValidationError(RejectReason.PREV_BLK_NOT_FOUND, "prev block not found")
        if prev.status & BlockStatus.FAILED_MASK:
            raise ValidationError(RejectReason.BAD_PREVBLK, "prev block invalid")
        check_block_header(header, self.params)
        contextual_check_block_header(header, prev, self.params, int(self._now()))
        e = BlockIndexEntry(header, prev, prev.height + 1, prev.chainwork + block_work(header.bits))
        self.index.add(e)
        if e.chainwork > self._best_header.chainwork:
            self._best_header = e
        return e

    def process_headers(self, headers):
        return [self._accept_header(h) for h in headers]

    def process_block(self, block):
        h = block.hash
        e = self.index.get(h)
        if e is not None and e.have_data:
            return BlockResult(h, "duplicate", None, e)
        try:
            if block.header.prev_hash not in self.index:
                return BlockResult(h, "orphan")
            e = self._accept_header(block.header)
            check_block(block, self.params)
        except ValidationError as err:
            if e is not None and not err.mutated:
                e.status |= BlockStatus.FAILED
            return BlockResult(h, "invalid", err, e)
        self.blocks[h] = block
        self._seq += 1
        e.sequence_id = self._seq
        e.status |= BlockStatus.HAVE_DATA
        self._propagate(e)
        self._activate()
        return BlockResult(h, "connected" if self.active.contains(e) else "accepted", None, e)

    def _propagate(self, e) -> None:
        if not (e.prev is not None and e.prev.has_chain_data):
            return
        stack = [e]
        while stack:
            x = stack.pop()
            if x.has_chain_data or not x.have_data or x.status & BlockStatus.FAILED_MASK:
                continue
            x.has_chain_data = True
            self._candidates.add(x)
            stack.extend(self.index.children(x))

    def _activate(self) -> None:
        best = self.tip
        for e in self._candidates:
            if e.chainwork > best.chainwork and not e.status & BlockStatus.FAILED_MASK:
                best = e
        self._candidates = {c for c in self._candidates if c.chainwork >= best.chainwork}
        if best is self.tip:
            return
        old = self.tip
        fork = self.active.find_fork(best)
        disconnected = []
        e = old
        while e is not fork:
            disconnected.append(e)
            e = e.prev
        connect = []
        e = best
        while e is not fork:
            connect.append(e)
            e = e.prev
        connect.reverse()
        self.active.set_tip(best)
        events = [BlockDisconnected(self.blocks[d.hash], d) for d in disconnected]
        events += [BlockConnected(self.blocks[c.hash], c) for c in connect]
        events.append(TipChanged(old, best, len(disconnected)))
        for ev in events:
            for cb in self._subs:
                cb(ev)


# ---------------------------------------------------------------------------------------------
# In-process P2P nodes

from tinynode.chain.writer import ChainWriter  # noqa: E402
from tinynode.mining.template import build_template  # noqa: E402
from tinynode.net.connman import ConnMan  # noqa: E402
from tinynode.net.sync import SyncManager  # noqa: E402
from tinynode.primitives.block import bits_to_target  # noqa: E402
from tinynode.primitives.hashes import hash_to_hex  # noqa: E402
from tinynode.validation import ValidationService  # noqa: E402

#: OP_TRUE: anyone can spend; enough for blocks whose coinbases nobody spends.
OP_TRUE_SCRIPT = b"\x51"


def _real_chainstate(params, datadir):
    """The real ChainState on a memory or SQLite store, if H-chain's implementation is there."""
    from tinynode.chain.chainstate import ChainState
    if datadir is None:
        from tinynode.storage.memory import MemoryChainStore
        return ChainState(params, MemoryChainStore())
    from tinynode.storage.sqlite import SQLiteChainStore
    return ChainState(params, SQLiteChainStore(str(datadir / "chain.sqlite")))


def chainstate_available() -> bool:
    try:
        from tinynode.chain.chainstate import ChainState
        from tinynode.storage.memory import MemoryChainStore
        from tinynode.params import REGTEST as _R
        ChainState(_R, MemoryChainStore()).close()
        return True
    except Exception:  # NotImplementedError while the skeleton is all there is
        return False


class NetNode:
    """One P2P node: chain writer (+ optional mempool) + SyncManager + ConnMan on 127.0.0.1:0."""

    def __init__(self, params: Any, *, name: str = "node", config: NetConfig | None = None,
                 datadir: Any = None, seeds: tuple[str, ...] = (), dial: bool = False,
                 real_chain: bool | None = None, mempool: bool = False) -> None:
        self.params = params
        self.name = name
        self.config = config or sync_config()
        self.datadir = datadir
        self.seeds = seeds
        self.dial = dial
        self.real_chain = chainstate_available() if real_chain is None else real_chain
        self.want_mempool = mempool
        self.writer: ChainWriter | None = None
        self.mempool: Any = None
        self.service: ValidationService | None = None
        self.sync: SyncManager | None = None
        self.connman: ConnMan | None = None
        self._extranonce = 0

    def _make_chainstate(self):
        if self.real_chain:
            return _real_chainstate(self.params, self.datadir)
        return SimpleChain(self.params)

    async def start(self) -> "NetNode":
        self.writer = ChainWriter(self._make_chainstate)
        await self.writer.start()
        if self.want_mempool:
            from tinynode.mempool.pool import Mempool
            self.mempool = await self.writer.call(lambda: Mempool(self.params, self.writer.chainstate))
        self.service = ValidationService(self.writer, self.params, self.mempool)
        self.sync = SyncManager(self.params, self.config, self.service)
        self.connman = ConnMan(self.params, self.config, handlers=[self.sync], seeds=self.seeds,
                               dial=self.dial, start_height=lambda: self.writer.snapshot.height,
                               datadir=self.datadir)
        self.sync.attach(self.connman)
        await self.connman.start()
        await self.sync.start()
        return self

    async def stop(self) -> None:
        if self.connman is not None:
            await self.connman.stop()
        if self.sync is not None:
            await self.sync.stop()
        if self.writer is not None:
            await self.writer.stop()

    @property
    def port(self) -> int:
        return self.connman.port

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def height(self) -> int:
        return self.writer.snapshot.height

    @property
    def tip(self) -> bytes:
        return self.writer.snapshot.tip_hash

    def __repr__(self) -> str:
        snap = self.writer.snapshot if self.writer else None
        if snap is None:
            return f"<{self.name}>"
        return f"<{self.name} :{self.port} h={snap.height} {hash_to_hex(snap.tip_hash)[:12]} hdr={snap.best_header_height}>"

    async def connect(self, other: "NetNode") -> None:
        peer = await self.connman.connect("127.0.0.1", other.port)
        assert peer is not None, f"{self.name} could not connect to {other.name}"

    def _mine_one(self, payout: bytes, txs: tuple = ()) -> Any:
        cs = self.writer.chainstate
        self._extranonce += 1
        tmpl = build_template(cs, self.mempool, payout, int(time.time()), self._extranonce, self.params)
        target = bits_to_target(tmpl.header.bits)[0]
        nonce = 0
        while True:
            block = tmpl.solved(nonce)
            if int.from_bytes(block.hash, "little") <= target:
                return block
            nonce += 1

    async def mine(self, n: int = 1, payout: bytes = OP_TRUE_SCRIPT) -> list[bytes]:
        """Mine `n` blocks on our tip and submit them (announced to peers by the sync manager)."""
        hashes = []
        for _ in range(n):
            block = await self.writer.call(self._mine_one, payout)
            res = await self.writer.submit_block(block)
            assert res.ok, res
            hashes.append(block.hash)
        return hashes


async def start_nodes(n: int, params: Any, **kw: Any) -> list[NetNode]:
    nodes = []
    for i in range(n):
        nodes.append(await NetNode(params, name=f"node{i}", **kw).start())
    return nodes


async def stop_nodes(nodes: list[NetNode]) -> None:
    for node in nodes:
        await node.stop()


async def connect_line(nodes: list[NetNode]) -> None:
    for a, b in zip(nodes, nodes[1:]):
        await a.connect(b)


async def connect_star(nodes: list[NetNode]) -> None:
    """Every other node dials the first."""
    for nd in nodes[1:]:
        await nd.connect(nodes[0])


async def connect_mesh(nodes: list[NetNode]) -> None:
    """Each pair connected once (the lower index dials)."""
    for i, a in enumerate(nodes):
        for b in nodes[i + 1:]:
            await a.connect(b)


async def sync_blocks(nodes: list[NetNode], timeout: float = 15.0) -> None:
    """Wait until every node has the same tip; the failure message lists every tip."""
    from tests.framework.wait import wait_until
    await wait_until(lambda: len({nd.tip for nd in nodes}) == 1, timeout=timeout,
                     message=lambda: " ".join(repr(nd) for nd in nodes))


async def sync_mempools(nodes: list[NetNode], timeout: float = 15.0) -> None:
    from tests.framework.wait import wait_until

    async def same() -> bool:
        pools = [set(await nd.writer.call(lambda nd=nd: [e.tx.txid for e in nd.mempool.entries()]))
                 for nd in nodes]
        return all(p == pools[0] for p in pools)
    await wait_until(same, timeout=timeout, message="mempools differ")
