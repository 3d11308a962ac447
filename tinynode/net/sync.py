"""Headers-first block sync, block announcement and transaction relay (Core `PeerManagerImpl`,
btcd netsync `SyncManager`).

The pipeline, per peer:

1. **Headers.** On connect we send `sendheaders` (BIP 130). Headers sync (`getheaders` with the
   locator of our best header) starts with one peer at a time while our best header is old, and
   with every peer once it is recent (Core SendMessages `fSyncStarted` / `nSyncStarted`, see
   `_headers_sync_step`): in initial sync one peer streams the 2,000-header batches, not all of
   them. The sync peer that does not get us to a recent header within Core's headers download
   timeout is disconnected if another peer can take over; one that disconnects or runs out of
   headers while another peer claims more (version `start_height`, announcements) is replaced.
   Each full `headers` answer (2,000) is followed by another `getheaders` from its last hash
   until the peer has nothing more; headers go to the chain writer, which checks them (a
   `ValidationError` costs the peer 100 points). Headers that do not connect to anything we
   know make us ask again with our locator (Core's HandleUnconnectingHeaders: no longer punished,
   20 points). An `inv` of an unknown block from any peer starts the same exchange with it.
2. **Blocks.** Each peer's best known header defines what it can give us. Blocks along that
   chain that we lack are requested from peers that can serve blocks (NODE_NETWORK, or
   NODE_NETWORK_LIMITED near its tip) as Core's SendMessages / `FindNextBlocksToDownload` does:
   each block from one peer at a time, at most `blocks_per_peer` (16) in flight per peer, never
   further than `block_download_window` (1,024) above the last block we share with the peer;
   in initial sync only from preferred (outbound / noban) peers while they are downloading.
   Headers announced by a peer are fetched from that peer at once (`HeadersDirectFetchBlocks`).
   A peer is dropped for stalling only when the window cannot move because it holds the first
   missing block (Core's stalling timeout: 2 s, doubled per stall up to 64 s, eased back as
   blocks connect), or when a block stays in flight longer than Core's block download timeout
   (one target spacing plus half of one per other downloading peer). Received blocks are
   handed to the chain writer strictly parent-first.
3. **Announce.** When the tip moves we announce the new blocks: by `headers` (≤ 8) to peers that
   sent `sendheaders`, otherwise by `inv` of the tip — never pushing unsolicited blocks, and never
   to a peer that is known to have the block.
4. **Serve.** `getheaders` (≤ 2,000), `getblocks` (≤ 500 hashes, with Core's `hashContinue`
   trick), `getdata` (blocks from the store, txs from the mempool, `notfound` for the rest) and
   `mempool`.
5. **Transactions.** An `inv` of an unknown tx is fetched with `getdata`; an accepted tx is
   announced by `inv` to every other peer once (trickled every `relay_tick`); a tx with missing
   inputs (an orphan) makes us request its parents from the peer that sent it.
6. **Permissions** (`net.permissions`, Core's `-whitelist`): `relay` peers' tx invs are fetched
   even where we asked for no txs (`relay_ours` off, Core's blocksonly); a tx from a
   `forcerelay` peer that is already in our mempool is announced again to every other peer
   (Core force-relays it past its known filter only to peers that do not know it; tinynode
   already announces its mempool to every new peer, so it re-announces to all); only `mempool`
   peers may send BIP35 `mempool` (we offer no NODE_BLOOM): others are disconnected unless noban.

Chain and mempool are reached only through the validation service (`tinynode.validation`):
blocks and headers with `submit_block` / `submit_headers`, transactions with `submit_tx` (the
same path as RPC and wallet txs), reads with `service.call(...)` on the writer thread (SQLite
lives there). Relay follows the service's `TxAccepted` events, whatever the tx's origin.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Iterable

from tinynode.consensus.block_checks import is_block_mutated
from tinynode.consensus.errors import PolicyError, ValidationError, state_string
from tinynode.chain.events import BlockConnected, BlockDisconnected, TipChanged
from tinynode.primitives.hashes import ZERO_HASH, hash_to_hex
from tinynode.wire import messages as m
from tinynode.primitives.block import Block
from tinynode.wire.constants import (InvType, MAX_HEADERS, MAX_INV, MAX_LOCATOR, MSG_WITNESS_FLAG,
                                     NODE_NETWORK, NODE_NETWORK_LIMITED, NODE_WITNESS)

from tinynode.validation import TxAccepted, TxOrigin, TxResult

from .peer import Misbehaving, NetConfig, Peer
from .permissions import NetPermissionFlags

if TYPE_CHECKING:  # pragma: no cover
    from tinynode.validation import ValidationService
    from .connman import ConnMan

log = logging.getLogger(__name__)

__all__ = ["SyncManager"]

#: Core's BLOCK_DOWNLOAD_WINDOW (the default of NetConfig.block_download_window).
DOWNLOAD_WINDOW = 1024
#: Core BLOCK_DOWNLOAD_TIMEOUT_BASE / _PER_PEER, in target spacings.
BLOCK_DOWNLOAD_TIMEOUT_BASE = 1.0
BLOCK_DOWNLOAD_TIMEOUT_PER_PEER = 0.5
#: Core NODE_NETWORK_LIMITED_MIN_BLOCKS: a limited peer serves only its last 288 blocks.
NODE_NETWORK_LIMITED_MIN_BLOCKS = 288
#: Core CanDirectFetch: headers are fetched at once while our tip is younger than 20 spacings.
DIRECT_FETCH_TIP_SPACINGS = 20
#: Core's MAX_BLOCKS_TO_ANNOUNCE: more new blocks than this are announced by inv.
MAX_BLOCKS_TO_ANNOUNCE = 8
#: getblocks answers at most this many hashes (Core).
MAX_GETBLOCKS = 500
#: Core HEADERS_RESPONSE_TIME: at most one getheaders in flight per peer for this long (s)
HEADERS_RESPONSE_TIME = 120.0
#: Per-peer inventory known to the peer (Core keeps a 50k rolling bloom filter; a bounded
#: ordered set of 10k hashes is ~1 MB per peer).
MAX_KNOWN_INV = 10_000
#: Transactions requested from one peer at once (Core MAX_PEER_TX_REQUEST_IN_FLIGHT).
MAX_TX_IN_FLIGHT = 100
#: Recently rejected txids not fetched again (Core's m_recent_rejects, bounded).
MAX_RECENT_REJECTS = 20_000
#: Entries of the wtxid <-> txid map kept from TxAccepted events (BIP 339 lookups by wtxid).
MAX_WTXID_MAP = 50_000
#: Blocks queued for one peer's writer while serving getdata.
MAX_QUEUED_BLOCKS = 8
#: A best header younger than this (s) is "recent": headers sync starts with every peer (Core
#: SendMessages writes `24h` inline; the same age as Core's DEFAULT_MAX_TIP_AGE).
RECENT_HEADER_AGE = 24 * 3600.0
#: Core's HEADERS_DOWNLOAD_TIMEOUT_BASE (15 min) for the headers sync peer ...
HEADERS_DOWNLOAD_TIMEOUT_BASE = 15 * 60.0
#: ... plus Core's HEADERS_DOWNLOAD_TIMEOUT_PER_HEADER (1 ms) per header we expect, i.e. per
#: target spacing between our best header's time and now.
HEADERS_DOWNLOAD_TIMEOUT_PER_HEADER = 0.001
#: Core MIN_BLOCKS_TO_KEEP: an unrequested block further than this above our tip is not processed
MIN_BLOCKS_TO_KEEP = 288
#: Core STALE_RELAY_AGE_LIMIT (30 days): a valid side-chain block older than this (against our
#: best header, by time and by work) is not served (BlockRequestAllowed)
STALE_RELAY_AGE_LIMIT = 30 * 24 * 3600
#: Core GetAntiDoSWorkThreshold: headers forking up to this many blocks below our tip are welcome
ANTI_DOS_TIP_BUFFER = 144


#: Block/header failures that are not proof of a bad peer (Core's MaybePunishNodeForBlock does
#: not punish BLOCK_TIME_FUTURE, a missing parent, or a duplicate).
_NO_FAULT_REASONS = frozenset({"time-too-new", "prev-blk-not-found", "duplicate", "inconclusive"})


def _on_active(cs: Any, entry: Any) -> bool:
    """Whether `entry` is on `cs`'s active chain (Core CChain::Contains)."""
    return entry is not None and cs.get_block_hash(entry.height) == entry.hash


def _block_fault_score(err: Any) -> int:
    """Misbehaviour points for a block or header the chain refused (Core MaybePunishNodeForBlock)."""
    reason = getattr(getattr(err, "reason", None), "value", getattr(err, "reason", ""))
    return 0 if str(reason) in _NO_FAULT_REASONS else 100


class _RawBlockMsg:
    """A `block` message whose payload is the block's stored serialization (served as is)."""

    __slots__ = ("payload",)
    COMMAND = "block"

    def __init__(self, payload: bytes) -> None:
        self.payload = payload

    def serialize(self) -> bytes:
        return self.payload

    def __repr__(self) -> str:
        return f"RawBlock({len(self.payload)} bytes)"


class _Known:
    """A bounded set with insertion order (oldest forgotten first)."""

    __slots__ = ("_d", "_cap")

    def __init__(self, cap: int) -> None:
        self._d: OrderedDict[bytes, None] = OrderedDict()
        self._cap = cap

    def add(self, h: bytes) -> None:
        self._d[h] = None
        self._d.move_to_end(h)
        if len(self._d) > self._cap:
            self._d.popitem(last=False)

    def __contains__(self, h: object) -> bool:
        return h in self._d

    def discard(self, h: bytes) -> None:
        self._d.pop(h, None)

    def __len__(self) -> int:
        return len(self._d)


class _PeerSync:
    """What the sync manager knows about one peer (Core's CNodeState)."""

    __slots__ = ("peer", "best_hash", "best_work", "best_height", "send_headers", "known",
                 "blocks_in_flight", "headers_requested", "stalling_since",
                 "downloading_since", "tx_in_flight", "tx_to_announce", "hash_continue",
                 "headers_synced", "best_header_sent", "last_unknown_block",
                 "sync_started", "headers_sync_timeout", "last_getheaders",
                 "inv_triggered_getheaders")

    def __init__(self, peer: Peer) -> None:
        self.peer = peer
        self.best_hash: bytes | None = None
        self.best_work = 0
        self.best_height = -1
        self.send_headers = False
        self.known = _Known(MAX_KNOWN_INV)
        self.blocks_in_flight: dict[bytes, float] = {}   # in request order (Core vBlocksInFlight)
        self.headers_requested: float | None = None
        self.stalling_since: float | None = None   # Core m_stalling_since (monotonic)
        self.downloading_since = 0.0               # Core m_downloading_since (monotonic)
        self.tx_in_flight: dict[bytes, float] = {}
        self.tx_to_announce: list[bytes] = []
        self.hash_continue: bytes | None = None
        self.headers_synced = False      # the peer answered our getheaders with < 2,000
        self.best_header_sent: bytes | None = None   # Core pindexBestHeaderSent
        self.last_unknown_block: bytes | None = None  # Core hashLastUnknownBlock
        self.sync_started = False         # Core fSyncStarted: we run headers sync with this peer
        self.headers_sync_timeout: float | None = None   # monotonic deadline; None: never
        self.last_getheaders: float | None = None   # Core Peer::m_last_getheaders_timestamp (node clock)
        self.inv_triggered_getheaders = False   # Core Peer::m_inv_triggered_getheaders_before_sync


class SyncManager:
    """Message handlers for chain and mempool traffic; give it to `ConnMan(handlers=[...])`.

    `recent_header_age`, `headers_timeout_base` and `headers_timeout_per_header` (seconds) are
    the headers-sync rules' thresholds (module constants by default); tests shrink them."""

    def __init__(self, params: Any, config: NetConfig, service: "ValidationService",
                 *, now=time.time, recent_header_age: float = RECENT_HEADER_AGE,
                 headers_timeout_base: float = HEADERS_DOWNLOAD_TIMEOUT_BASE,
                 headers_timeout_per_header: float = HEADERS_DOWNLOAD_TIMEOUT_PER_HEADER) -> None:
        self.params = params
        self.config = config
        self.service = service
        self.connman: "ConnMan | None" = None
        self._now = now
        self.recent_header_age = recent_header_age
        self.headers_timeout_base = headers_timeout_base
        self.headers_timeout_per_header = headers_timeout_per_header
        self._best_header_time: tuple[bytes, int] | None = None   # (best header hash, its time)
        self._peers: dict[int, _PeerSync] = {}
        self._requested: dict[bytes, int] = {}            # block hash -> peer id
        self._fetch_heights: dict[bytes, int] = {}        # height of a requested block (subset of _requested)
        self._last_block_inv_triggering_headers_sync: bytes | None = None   # Core, same name
        self._received: dict[bytes, tuple[Any, int]] = {}  # blocks waiting for their parent
        self._store_now: set[bytes] = set()   # unrequested blocks to store without waiting (subset of _received)
        self._submit_lock = asyncio.Lock()
        self._schedule_lock = asyncio.Lock()
        self._want_schedule = False
        self._blocks_waiting = asyncio.Event()
        self._submitting: dict[bytes, int] = {}           # queued at the writer, in order -> peer id
        self._block_done = asyncio.Event()                 # a submitted block came back from the writer
        self._recent_ok = _Known(4096)                     # recently stored by us
        self._tg: asyncio.TaskGroup | None = None
        self._path_cache: OrderedDict = OrderedDict()   # writer thread only (see _next_blocks)
        # Core m_block_stalling_timeout: doubled when a staller is dropped, eased back per block
        self._stall_timeout = config.block_stall_timeout
        self._left_ibd = False   # Core's IsInitialBlockDownload latch
        self._tx_requested: dict[bytes, int] = {}
        self._recent_rejects = _Known(MAX_RECENT_REJECTS)
        # BIP 339: wtxid -> txid and txid -> wtxid of txs that entered our mempool (bounded,
        # oldest forgotten first); the mempool itself is keyed by txid
        self._txid_of_wtxid: OrderedDict[bytes, bytes] = OrderedDict()
        self._wtxid_of_txid: dict[bytes, bytes] = {}
        self._connected_since_tip: list[Any] = []
        self._task: asyncio.Task | None = None
        self._kick = asyncio.Event()
        self._progress_t = 0.0
        self._progress_h = 0
        self._blocks_done = 0

    @property
    def mempool(self) -> Any:
        """The service's pool (read it only inside `service.call`); None without one."""
        return getattr(self.service, "mempool", None)

    # ------------------------------------------------------------------ lifecycle
    def attach(self, connman: "ConnMan") -> None:
        self.connman = connman
        if self not in connman.handlers:
            connman.add_handler(self)

    async def start(self) -> None:
        self.service.subscribe_async(self._on_chain_event)
        if hasattr(self.service, "subscribe"):
            self.service.subscribe(self._on_tx_event)
        self._task = asyncio.create_task(self._supervise(), name="sync")

    async def stop(self) -> None:
        self.service.unsubscribe_async(self._on_chain_event)
        if hasattr(self.service, "unsubscribe"):
            self.service.unsubscribe(self._on_tx_event)
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            except Exception:   # a task that had already failed: its error was not seen yet
                log.exception("sync manager task failed")
            self._task = None
            self._tg = None

    async def _supervise(self) -> None:
        async with asyncio.TaskGroup() as tg:
            self._tg = tg
            tg.create_task(self._submitter_loop())
            tg.create_task(self._maintenance_loop())
            tg.create_task(self._relay_loop())

    # ------------------------------------------------------------------ helpers
    def _state(self, peer: Peer) -> _PeerSync:
        st = self._peers.get(peer.id)
        if st is None:
            st = self._peers[peer.id] = _PeerSync(peer)
        return st

    def _live_states(self) -> list[_PeerSync]:
        return [s for s in self._peers.values() if s.peer.is_connected]

    async def _send_getheaders(self, st: _PeerSync, locator: Iterable[bytes] | None = None,
                               hash_stop: bytes = ZERO_HASH) -> bool:
        """Core `MaybeSendGetHeaders`: a getheaders goes out only if none went to this peer in
        the last HEADERS_RESPONSE_TIME (2 min, node clock) — a headers message that connects
        (or an empty one) counts as the answer and clears the mark. Returns whether it was sent."""
        now = self._now()
        if st.last_getheaders is not None and now - st.last_getheaders <= HEADERS_RESPONSE_TIME:
            return False
        if locator is None:
            locator = await self.service.call(self._best_header_locator)
        st.last_getheaders = now
        st.headers_requested = time.monotonic()
        st.peer.send(m.GetHeaders(tuple(locator), hash_stop))
        return True

    def _best_header_locator(self) -> list[bytes]:
        """Core's locator from `best_header->pprev`: the answer is never empty when the peer is
        on our best header chain, so we always learn the peer's best block."""
        cs = self.service.chainstate
        best = cs.best_header
        return cs.block_locator(best.prev if best.prev is not None else best)

    def _best_header_locator_exact(self) -> list[bytes]:
        """Core `GetLocator(m_chainman.m_best_header)`: the locator of our best header itself,
        sent on an inv of an unknown block and on unconnecting headers."""
        cs = self.service.chainstate
        return cs.block_locator(cs.best_header)

    def _anti_dos_work_threshold(self) -> int:
        """Core `GetAntiDoSWorkThreshold`: our tip's work less 144 of its blocks' work (so
        headers forking near our tip are welcome), and never below -minimumchainwork."""
        from tinynode.consensus.pow import block_work
        tip = self.service.chainstate.tip
        near_tip = tip.chainwork - min(ANTI_DOS_TIP_BUFFER * block_work(tip.bits), tip.chainwork)
        return max(near_tip, getattr(self.params, "minimum_chain_work", 0))

    def _update_best(self, st: _PeerSync, entry: Any) -> None:
        """Core UpdateBlockAvailability: the peer's best known block moves to a block with at
        least as much work (>=: a same-work fork it announces is fetched, as Core)."""
        if entry is not None and (st.best_hash is None or entry.chainwork >= st.best_work):
            st.best_hash = entry.hash
            st.best_work = entry.chainwork
            st.best_height = entry.height
            st.peer.synced_headers = entry.height

    # ------------------------------------------------------------------ peer lifecycle
    async def peer_connected(self, peer: Peer) -> None:
        st = self._state(peer)
        if peer.version >= 70012:
            peer.send(m.SendHeaders())
        await self._headers_sync_step()
        if self.mempool is not None and peer.relay:
            # Core announces its mempool to new peers through the normal trickle; we do the same.
            txids = await self.service.call(self._mempool_txids)
            st.tx_to_announce.extend(txids)

    def peer_disconnected(self, peer: Peer) -> None:
        st = self._peers.pop(peer.id, None)
        if st is None:
            return
        for h in list(st.blocks_in_flight):
            self._remove_block_request(h, st)
        for txid in st.tx_in_flight:
            if self._tx_requested.get(txid) == peer.id:
                del self._tx_requested[txid]
        self._kick.set()
        gone = getattr(self.service, "peer_gone", None)
        if gone is not None:
            gone(peer.id)
        orphans = getattr(self.mempool, "orphans", None)
        if orphans is not None and hasattr(orphans, "remove_for_peer") and self._tg is not None:
            # Core EraseForPeer: the orphans this peer gave us go with it.
            job = self._forget_orphans(peer.id)
            try:
                self._tg.create_task(job)
            except RuntimeError:      # the task group is shutting down: nothing to forget for
                job.close()

    async def _forget_orphans(self, peer_id: int) -> None:
        try:
            await self.service.call(self.mempool.orphans.remove_for_peer, peer_id)
        except RuntimeError:   # writer stopping
            pass
        except Exception:
            log.exception("dropping orphans of peer %d failed", peer_id)

    # ------------------------------------------------------------------ headers sync peer
    def headers_sync_peers(self) -> list[int]:
        """Ids of the connected peers we run headers sync with (Core fSyncStarted)."""
        return sorted(s.peer.id for s in self._live_states() if s.sync_started)

    async def _best_header_time_now(self) -> int:
        """Our best header's timestamp (asked from the writer only when the best header moved
        and is not our tip)."""
        snap = self.service.snapshot
        best = snap.best_header_hash
        if best == snap.tip_hash and snap.tip_time:
            return snap.tip_time
        cached = self._best_header_time
        if cached is None or cached[0] != best:
            cached = self._best_header_time = (best, await self.service.call(self._header_time, best))
        return cached[1]

    def _header_time(self, h: bytes) -> int:
        entry = self.service.chainstate.get_entry(h)
        return entry.header.time if entry is not None else 0

    async def _headers_sync_step(self) -> None:
        """Mirrors Bitcoin Core SendMessages' headers-sync rules (`fSyncStarted`, `nSyncStarted`,
        `m_headers_sync_timeout`); run on connect, after headers and on every maintenance tick.

        * Start headers sync with a peer when none is running (nSyncStarted == 0) or when our
          best header is recent (younger than `recent_header_age`): in initial sync one peer
          streams the headers, near the tip every peer is asked.
        * The sync peer gets `headers_timeout_base + headers_timeout_per_header x expected
          headers` to bring us to a recent header; after that it is disconnected if it is the
          only sync peer and another peer is connected (Core; we have no NoBan peers). Once our
          best header was recent the timeout is off for good (Core's microseconds::max()).
        * Beyond Core: a sync peer whose headers ran out (it answered with fewer than 2,000)
          while another peer claims more (its version start_height, or announced headers) is
          released and the next one takes over, instead of waiting for the timeout. If nobody
          claims more, our best header is the network's: every peer is then asked once (its
          answer is a header or two), so its best block is known and blocks come from all.

        Decisions and marks are made without an await in between: concurrent callers (peer
        readers, the maintenance loop) never start two sync peers."""
        best_time = await self._best_header_time_now()
        snap = self.service.snapshot
        best_height = snap.best_header_height
        recent = best_time > self._now() - self.recent_header_age
        now = time.monotonic()
        # Core: headers sync only with a peer that CanServeBlocks (NODE_NETWORK or NODE_NETWORK_LIMITED)
        live = [s for s in self._live_states() if s.peer.handshake_done.is_set()
                and s.peer.services & (NODE_NETWORK | NODE_NETWORK_LIMITED)]
        started = [s for s in live if s.sync_started]

        def claim(s: _PeerSync) -> int:
            # A peer that ran out of headers has shown us its best; only announcements count then.
            return s.best_height if s.headers_synced else max(s.peer.start_height, s.best_height)

        for st in started:
            if st.headers_sync_timeout is None:
                continue
            if recent:
                st.headers_sync_timeout = None
            elif (now > st.headers_sync_timeout and len(started) == 1 and not st.headers_synced
                  and len(live) > 1):
                log.info("timeout downloading headers from peer %d (best header %d), disconnecting",
                         st.peer.id, best_height)
                self._stop_headers_sync(st)
                st.peer.disconnect("headers sync timed out")
                live.remove(st)
        started = [s for s in live if s.sync_started]
        idle = [s for s in live if not s.sync_started]
        caught_up = recent
        if not recent and started and all(s.headers_synced for s in started):
            if any(claim(s) > best_height for s in idle):
                for st in started:
                    log.info("peer %d has no headers after %d; continuing headers sync with another peer",
                             st.peer.id, best_height)
                    self._stop_headers_sync(st)
                started, idle = [], live
            else:
                caught_up = True
        if caught_up:
            chosen = idle
        elif not started and idle:
            chosen = [max(idle, key=lambda s: (claim(s) > best_height, not s.headers_synced,
                                               not s.peer.inbound, claim(s), -s.peer.id))]
            log.info("headers sync with peer %d (its height %d, our best header %d)",
                     chosen[0].peer.id, claim(chosen[0]), best_height)
        else:
            return
        if not chosen:
            return
        expected = max(0.0, self._now() - best_time) / self.params.pow_target_spacing
        deadline = now + self.headers_timeout_base + self.headers_timeout_per_header * expected
        for st in chosen:
            st.sync_started = True
            st.headers_sync_timeout = None if recent else deadline
            st.headers_requested = now
        locator = await self.service.call(self._best_header_locator)
        for st in chosen:
            await self._send_getheaders(st, locator)

    @staticmethod
    def _stop_headers_sync(st: _PeerSync) -> None:
        st.sync_started = False
        st.headers_sync_timeout = None

    # ------------------------------------------------------------------ headers
    async def on_sendheaders(self, peer: Peer, msg: m.SendHeaders) -> None:
        self._state(peer).send_headers = True

    async def on_headers(self, peer: Peer, msg: m.Headers) -> None:
        if len(msg.headers) > MAX_HEADERS:   # Core ProcessMessage(HEADERS): Misbehaving
            raise Misbehaving(100, f"headers message size = {len(msg.headers)}")
        st = self._state(peer)
        answered = st.headers_requested is not None
        st.headers_requested = None
        headers = list(msg.headers)
        if not headers:
            st.headers_synced = True
            st.last_getheaders = None   # Core: an empty headers answers our getheaders
            await self._headers_sync_step()
            return
        for prev, cur in zip(headers, headers[1:]):
            if cur.prev_hash != prev.hash:
                raise Misbehaving(100, "non-continuous headers sequence")
        known_parent = await self.service.call(self._entry_of, headers[0].prev_hash)
        if known_parent is None:
            # Core HandleUnconnectingHeaders: ask for the path with GetLocator(m_best_header)
            # (no punishment since Core v28), and remember the last header as the peer's
            # best once it becomes known (hashLastUnknownBlock)
            if await self._send_getheaders(st, await self.service.call(self._best_header_locator_exact)):
                log.debug("received header %s: missing prev block %s, sending getheaders (%d) to end "
                          "(peer=%d)", headers[0].hash_hex, hash_to_hex(headers[0].prev_hash),
                          self.service.snapshot.best_header_height, peer.id)
            st.last_unknown_block = headers[-1].hash
            return
        st.last_getheaders = None   # Core: headers that connect answer any getheaders in flight
        low = await self.service.call(self._low_work_headers, headers)
        if low is not None and len(headers) < MAX_HEADERS:
            # Core ProcessHeadersMessage / TryLowWorkHeadersSync: a short headers chain whose
            # work stays below the anti-DoS threshold is ignored (a full one is a sync in progress)
            log.debug("Ignoring low-work chain (height=%d) from peer=%d", low, peer.id)
            return
        # Core handles one peer's message at a time: the blocks of these headers are asked of
        # this peer (direct fetch) before another peer's announcement of them can schedule them
        async with self._schedule_lock:
            try:
                await self.service.submit_headers(headers)
            except ValidationError as e:
                score = _block_fault_score(e)
                if score:
                    if getattr(e, "reason", None) == "high-hash":   # Core CheckHeadersPoW
                        raise Misbehaving(score, "header with invalid proof of work") from None
                    raise Misbehaving(score, f"invalid header: {getattr(e, 'reason', e)}") from None
                log.debug("peer %d: headers not accepted: %s", peer.id, e)
                return
            last = await self.service.call(self._entry_of, headers[-1].hash)
            self._update_best(st, last)
            for h in headers:
                st.known.add(h.hash)
            if len(headers) == MAX_HEADERS:
                st.headers_synced = False
                await self._send_getheaders(st, [headers[-1].hash])
            elif answered:   # an announcement while no request is out says nothing about the end
                st.headers_synced = True
            await self._direct_fetch(st, headers[-1].hash)
        await self._headers_sync_step()
        await self._schedule()

    def _can_direct_fetch(self) -> bool:
        """Core `CanDirectFetch`: our tip is younger than 20 target spacings."""
        snap = self.service.snapshot
        return bool(snap.tip_time) and (
            snap.tip_time > self._now() - DIRECT_FETCH_TIP_SPACINGS * self.params.pow_target_spacing)

    async def _direct_fetch(self, st: _PeerSync, last_hash: bytes) -> None:
        """Core `HeadersDirectFetchBlocks`: when our tip is recent (CanDirectFetch) and the last
        announced header is valid with at least our tip's work, the blocks we lack between our
        active chain and it (walking back at most 17 headers, MAX_BLOCKS_IN_TRANSIT_PER_PEER + 1)
        that nobody is fetching are asked of this peer at once, oldest first, up to its 16 in
        flight — even when the peer cannot otherwise serve blocks (no NODE_NETWORK). A walk that
        does not reach our active chain is a large reorg: left to the normal download."""
        if not self._can_direct_fetch():
            return
        busy = frozenset(self._requested) | frozenset(self._received) | frozenset(self._submitting)
        found = await self.service.call(self._direct_fetch_hashes, last_hash, busy,
                                        self.config.blocks_per_peer, self._segwit_fetch_height(st.peer))
        if found is None or not st.peer.is_connected:
            return
        hashes, height = found
        if hashes is None:
            log.debug("Large reorg, won't direct fetch to %s (%d)", hash_to_hex(last_hash), height)
            return
        fetch = []
        for h in hashes:
            if len(st.blocks_in_flight) + len(fetch) >= self.config.blocks_per_peer:
                break   # Core: can't download any more from this peer
            if h in self._requested:
                continue
            fetch.append(h)
            log.debug("Requesting block %s from peer=%d", hash_to_hex(h), st.peer.id)
        if len(fetch) > 1:
            log.debug("Downloading blocks toward %s (%d) via headers direct fetch",
                      hash_to_hex(last_hash), height)
        if fetch:
            self._request_blocks(st, fetch)

    def _request_blocks(self, st, hashes: list[bytes], heights: list[int] | None = None) -> None:
        """Core `BlockRequested` + getdata: ask `st`'s peer for `hashes` (witness blocks if it
        serves them); a first block in flight starts the peer's download clock. `heights`
        (when the caller knows them) let `on_block` check the answer without the writer."""
        now = time.monotonic()
        if not st.blocks_in_flight:
            st.downloading_since = now
        for h in hashes:
            st.blocks_in_flight[h] = now
            self._requested[h] = st.peer.id
        if heights is not None:
            self._fetch_heights.update(zip(hashes, heights))
        req = InvType.BLOCK | self._fetch_flag(st.peer)
        st.peer.send(m.GetData(tuple(m.InvVect(req, h) for h in hashes)))

    def _remove_block_request(self, h: bytes, st: _PeerSync | None = None) -> None:
        """Core `RemoveBlockRequest`: `h` is no longer in flight (from `st`'s peer, or from
        whoever has it). The first block of a peer's queue coming in restarts its download
        clock; any answer ends the peer's stalling."""
        if st is None:
            st = self._peers.get(self._requested.get(h, -1))
            if st is None:
                self._requested.pop(h, None)
                self._fetch_heights.pop(h, None)
                return
        if h not in st.blocks_in_flight:
            return
        if next(iter(st.blocks_in_flight)) == h:
            st.downloading_since = max(st.downloading_since, time.monotonic())
        del st.blocks_in_flight[h]
        if self._requested.get(h) == st.peer.id:
            del self._requested[h]
            self._fetch_heights.pop(h, None)
        st.stalling_since = None

    def _direct_fetch_hashes(self, last_hash: bytes, busy: frozenset, limit: int,
                             below_height: float = float("inf")) -> tuple[list[bytes] | None, int] | None:
        """Writer thread (see `_direct_fetch`): (blocks to fetch oldest first, height of
        `last_hash`); (None, height) for a large reorg; None when nothing applies. Only blocks
        below `below_height` (`_segwit_fetch_height`: a peer that cannot serve witnesses is not
        asked for segwit blocks)."""
        cs = self.service.chainstate
        last = cs.get_entry(last_hash)
        if last is None or last.failed or last.chainwork < cs.tip.chainwork:
            return None
        out: list[bytes] = []
        e = last
        while e is not None and not _on_active(cs, e) and len(out) <= limit:
            if not e.have_data and e.hash not in busy and e.height < below_height:
                out.append(e.hash)
            e = e.prev
        if e is None or not _on_active(cs, e):
            return None, last.height
        out.reverse()
        return out, last.height

    def _entry_of(self, h: bytes) -> Any:
        return self.service.chainstate.get_entry(h)

    def _block_mutated(self, block: Any) -> bool:
        """Writer thread: Core's net-layer `IsBlockMutated` check, made only when the block's
        parent is known (the witness root is checked when segwit is active for the block)."""
        prev = self.service.chainstate.get_entry(block.header.prev_hash)
        if prev is None:
            return False
        return is_block_mutated(block, prev.height + 1 >= self.params.segwit_height)

    def _low_work_headers(self, headers: list[Any]) -> int | None:
        """Writer thread: the height the headers chain would reach if its work stays below the
        anti-DoS threshold (Core ProcessHeadersMessage's low-work check), else None."""
        from tinynode.consensus.pow import block_work
        cs = self.service.chainstate
        parent = cs.get_entry(headers[0].prev_hash)
        if parent is None or all(cs.get_entry(h.hash) is not None for h in headers):
            return None
        work = parent.chainwork + sum(block_work(h.bits) for h in headers)
        if work >= self._anti_dos_work_threshold():
            return None
        return parent.height + len(headers)

    def _block_request_allowed(self, entry: Any) -> bool:
        """Core `BlockRequestAllowed`: a block on our active chain, or a fully validated one
        (VALID_SCRIPTS) that is not older than a month against our best header, by time and by
        the work between them (GetBlockProofEquivalentTime)."""
        from tinynode.chain.index import BlockStatus
        from tinynode.consensus.pow import block_work
        cs = self.service.chainstate
        if cs.is_active(entry):
            return True
        if not entry.status & BlockStatus.VALID_SCRIPTS:
            return False
        best = cs.best_header
        if best.header.time - entry.header.time >= STALE_RELAY_AGE_LIMIT:
            return False
        diff = best.chainwork - entry.chainwork
        sign = 1 if diff >= 0 else -1
        equivalent = sign * abs(diff) * self.params.pow_target_spacing // max(1, block_work(best.bits))
        return equivalent < STALE_RELAY_AGE_LIMIT

    def _hashstop_header(self, stop: bytes) -> list[Any]:
        """Core GETHEADERS with a null locator: just `stop`'s header, if BlockRequestAllowed."""
        entry = self.service.chainstate.get_entry(stop)
        if entry is None or not self._block_request_allowed(entry):
            return []
        return [entry.header]

    def _tip_below_minimum_work(self) -> bool:
        return self.service.chainstate.tip.chainwork < getattr(self.params, "minimum_chain_work", 0)

    async def on_getheaders(self, peer: Peer, msg: m.GetHeaders) -> None:
        """Core ProcessMessage(GETHEADERS): up to 2,000 headers after the fork with `locator`;
        with a null locator only `hash_stop`'s header, and only when BlockRequestAllowed. While
        our tip has less than -minimumchainwork, an empty answer (unless the peer may download)."""
        if len(msg.locator) > MAX_LOCATOR:
            log.debug("getheaders locator size %d > %d, disconnecting peer=%d", len(msg.locator),
                      MAX_LOCATOR, peer.id)
            peer.disconnect("getheaders locator too large")
            return
        stop = None if msg.hash_stop == ZERO_HASH else msg.hash_stop
        if (not peer.has_permission(NetPermissionFlags.DOWNLOAD)
                and await self.service.call(self._tip_below_minimum_work)):
            log.debug("Ignoring getheaders from peer=%d because active chain has too little work; "
                      "sending empty response", peer.id)
            peer.send(m.Headers(()))
            return
        if not msg.locator and stop is not None:
            headers = await self.service.call(self._hashstop_header, stop)
        else:
            headers = await self.service.call(self.service.chainstate.headers_after, list(msg.locator),
                                             stop, MAX_HEADERS)
        st = self._state(peer)
        for h in headers:
            st.known.add(h.hash)
        # Core: pindexBestHeaderSent is the last header sent, or our tip for an empty answer
        st.best_header_sent = headers[-1].hash if headers else self.service.snapshot.tip_hash
        peer.send(m.Headers(tuple(headers)))

    async def on_getblocks(self, peer: Peer, msg: m.GetBlocks) -> None:
        """Core ProcessMessage(GETBLOCKS): ≤ 500 inv after the fork; remember where we stopped."""
        if len(msg.locator) > MAX_LOCATOR:
            log.debug("getblocks locator size %d > %d, disconnecting peer=%d", len(msg.locator),
                      MAX_LOCATOR, peer.id)
            peer.disconnect("getblocks locator too large")
            return
        hashes = await self.service.call(self._hashes_after, list(msg.locator), msg.hash_stop)
        st = self._state(peer)
        if len(hashes) == MAX_GETBLOCKS:
            st.hash_continue = hashes[-1]
        if hashes:
            peer.send(m.Inv(tuple(m.InvVect(InvType.BLOCK, h) for h in hashes)))

    def _hashes_after(self, locator: list[bytes], stop: bytes) -> list[bytes]:
        cs = self.service.chainstate
        fork = cs.find_fork(locator)
        out = []
        h = fork.height + 1
        while len(out) < MAX_GETBLOCKS:
            bh = cs.get_block_hash(h)
            if bh is None:
                break
            out.append(bh)
            if bh == stop:
                break
            h += 1
        return out

    # ------------------------------------------------------------------ inv / getdata
    async def on_inv(self, peer: Peer, msg: m.Inv) -> None:
        if len(msg.items) > MAX_INV:   # Core ProcessMessage(INV): Misbehaving
            raise Misbehaving(100, f"inv message size = {len(msg.items)}")
        st = self._state(peer)
        blocks = [iv.hash for iv in msg.items if iv.base_type == InvType.BLOCK]
        # Core ProcessMessage "inv": a wtxidrelay peer announces by wtxid (MSG_WTX), any other
        # by txid (MSG_TX); the other kind is ignored
        tx_type = InvType.WTX if peer.wtxid_relay else InvType.TX
        txids = [iv.hash for iv in msg.items if iv.base_type == tx_type]
        for h in blocks:
            st.known.add(h)
        if blocks:
            entries = await self.service.call(self._entries_of, blocks)
            unknown = [h for h, e in zip(blocks, entries) if e is None]
            if unknown:   # Core UpdateBlockAvailability: the latest unknown one is its best
                st.last_unknown_block = unknown[-1]
            for e in entries:
                if e is not None:
                    self._update_best(st, e)
            unrequested = [h for h in unknown if h not in self._requested]
            if unrequested:
                # Core ProcessMessage(INV): the last new block announced triggers a getheaders
                # (locator of m_best_header) — from a peer we sync headers with, or else once per
                # peer before its sync starts and never twice for the same block across peers.
                best_block = unrequested[-1]
                if st.sync_started or (not st.inv_triggered_getheaders
                                       and best_block != self._last_block_inv_triggering_headers_sync):
                    locator = await self.service.call(self._best_header_locator_exact)
                    if await self._send_getheaders(st, locator):
                        log.debug("getheaders (%d) %s to peer=%d", self.service.snapshot.best_header_height,
                                  hash_to_hex(best_block), peer.id)
                    if not st.sync_started:
                        st.inv_triggered_getheaders = True
                        self._last_block_inv_triggering_headers_sync = best_block
            elif any(e is not None for e in entries):
                # Core UpdateBlockAvailability then FindNextBlocksToDownload: a known block
                # (even one we have) may lead to missing blocks on its branch
                await self._schedule()
        if txids and self.mempool is not None:
            for t in txids:
                st.known.add(t)
            if not peer.relay_ours and not peer.has_permission(NetPermissionFlags.RELAY):
                return   # Core RejectIncomingTxs: blocksonly, unless the peer has `relay`
            fresh = [t for t in txids if t not in self._recent_rejects and t not in self._tx_requested]
            if fresh:
                have = await self.service.call(self._have_txs, fresh)
                want = [t for t, h in zip(fresh, have) if not h]
                room = MAX_TX_IN_FLIGHT - len(st.tx_in_flight)
                want = want[:max(0, room)]
                if want:
                    now = time.monotonic()
                    for t in want:
                        st.tx_in_flight[t] = now
                        self._tx_requested[t] = peer.id
                    req = InvType.WTX if peer.wtxid_relay else InvType.TX | self._fetch_flag(peer)
                    peer.send(m.GetData(tuple(m.InvVect(req, t) for t in want)))

    def _segwit_fetch_height(self, peer: Peer) -> float:
        """The lowest height we would not fetch from `peer`: Core asks a peer that cannot serve
        witnesses (no NODE_WITNESS, CanServeWitnesses) for no block where segwit is active
        (DeploymentActiveAt); no limit when we do not do segwit or the peer serves witnesses."""
        if not self.config.advertise_witness or peer.services & NODE_WITNESS:
            return float("inf")
        return self.params.segwit_height

    def _fetch_flag(self, peer: Peer) -> int:
        """Core `GetFetchFlags`: MSG_WITNESS_FLAG for a NODE_WITNESS peer (when we do segwit)."""
        if self.config.advertise_witness and peer.services & NODE_WITNESS:
            return MSG_WITNESS_FLAG
        return 0

    def _remember_wtxid(self, tx: Any) -> None:
        """Keep `tx`'s wtxid <-> txid (bounded) so MSG_WTX getdata/inv can find it by wtxid."""
        wtxid, txid = tx.wtxid, tx.txid
        self._txid_of_wtxid[wtxid] = txid
        self._txid_of_wtxid.move_to_end(wtxid)
        self._wtxid_of_txid[txid] = wtxid
        while len(self._txid_of_wtxid) > MAX_WTXID_MAP:
            old_w, old_t = self._txid_of_wtxid.popitem(last=False)
            if self._wtxid_of_txid.get(old_t) == old_w:
                del self._wtxid_of_txid[old_t]

    def _txid_for(self, h: bytes, by_wtxid: bool) -> bytes:
        """The mempool key (txid) of a hash a peer sent: a wtxid is mapped (a tx without witness
        has wtxid == txid, so an unknown one is tried as a txid)."""
        return self._txid_of_wtxid.get(h, h) if by_wtxid else h

    def _entries_of(self, hashes: list[bytes]) -> list[Any]:
        cs = self.service.chainstate
        return [cs.get_entry(h) for h in hashes]

    def _have_txs(self, txids: list[bytes]) -> list[bool]:
        mp = self.mempool
        out = []
        for t in txids:
            t2 = self._txid_of_wtxid.get(t, t)
            out.append(t in mp or t in mp.orphans or t2 in mp)
        return out

    def _mempool_txids(self) -> list[bytes]:
        return self.mempool.txids() if self.mempool is not None else []

    async def on_getdata(self, peer: Peer, msg: m.GetData) -> None:
        """Core ProcessGetData: blocks from the store, txs from the mempool, notfound otherwise;
        more than 50,000 entries is Misbehaving (Core ProcessMessage(GETDATA))."""
        if len(msg.items) > MAX_INV:
            raise Misbehaving(100, f"getdata message size = {len(msg.items)}")
        st = self._state(peer)
        notfound: list[m.InvVect] = []
        items = list(msg.items)
        for i in range(0, len(items), 16):
            chunk = items[i:i + 16]
            found = await self.service.call(self._lookup, chunk)
            for iv, obj in zip(chunk, found):
                if obj is None:
                    notfound.append(iv)
                    continue
                st.known.add(iv.hash)
                # At most a few blocks wait in a peer's queue: memory stays bounded however
                # many a slow reader asks for (the socket's own buffer holds the rest).
                if not await peer.send_async(obj, MAX_QUEUED_BLOCKS if iv.base_type == InvType.BLOCK else None):
                    return
                if iv.base_type == InvType.BLOCK and iv.hash == st.hash_continue:
                    # Core: after the last block of a getblocks batch, inv our tip so the peer
                    # asks for the next batch.
                    st.hash_continue = None
                    peer.send(m.Inv((m.InvVect(InvType.BLOCK, self.service.snapshot.tip_hash),)))
        if notfound:
            for j in range(0, len(notfound), MAX_INV):
                peer.send(m.NotFound(tuple(notfound[j:j + MAX_INV])))

    def _lookup(self, items: list[m.InvVect]) -> list[Any]:
        cs = self.service.chainstate
        get_raw = getattr(cs, "get_block_bytes", None)   # serialized block, if the chain offers it
        out: list[Any] = []
        for iv in items:
            t = iv.base_type
            witness = bool(iv.type & MSG_WITNESS_FLAG)
            if t == InvType.BLOCK:
                # Core ProcessGetBlockData: MSG_WITNESS_BLOCK gets the block as stored (with
                # witnesses), MSG_BLOCK the witness-stripped block
                raw = get_raw(iv.hash) if get_raw is not None else None
                if raw is not None:
                    raw = bytes(raw)
                    if witness:
                        out.append(_RawBlockMsg(raw))   # stored bytes as they are: no re-encode
                        continue
                    b = Block.from_bytes(raw)
                    stripped = m.strip_block_witness(b)
                    out.append(_RawBlockMsg(raw if len(stripped) == len(raw) else stripped))
                    continue
                b = cs.get_block(iv.hash)
                out.append(m.BlockMsg(b, witness=witness) if b is not None else None)
            elif t in (InvType.TX, InvType.WTX) and self.mempool is not None:
                # Core FindTxForGetData: MSG_WTX by wtxid, always with witness; MSG_TX by txid,
                # stripped unless MSG_WITNESS_TX
                txid = self._txid_for(iv.hash, t == InvType.WTX)
                tx = self.mempool.get_tx(txid)
                if tx is not None and t == InvType.WTX and tx.wtxid != iv.hash:
                    tx = None
                out.append(m.TxMsg(tx, witness=witness or t == InvType.WTX) if tx is not None else None)
            else:
                out.append(None)
        return out

    async def on_notfound(self, peer: Peer, msg: m.NotFound) -> None:
        st = self._state(peer)
        for iv in msg.items:
            if iv.base_type == InvType.BLOCK and iv.hash in st.blocks_in_flight:
                self._remove_block_request(iv.hash, st)
            elif iv.base_type in (InvType.TX, InvType.WTX) and iv.hash in st.tx_in_flight:
                del st.tx_in_flight[iv.hash]
                if self._tx_requested.get(iv.hash) == peer.id:
                    del self._tx_requested[iv.hash]
        self._kick.set()

    async def on_mempool(self, peer: Peer, msg: m.MemPool) -> None:
        """Core ProcessMessage "mempool" (BIP35): we do not offer NODE_BLOOM, so only a peer
        with the `mempool` permission may ask; any other is disconnected (a noban one ignored)."""
        if not peer.has_permission(NetPermissionFlags.MEMPOOL):
            if not peer.has_permission(NetPermissionFlags.NOBAN):
                log.debug("mempool request with bloom filters disabled, disconnect peer=%d", peer.id)
                peer.disconnect("mempool request with bloom filters disabled")
            return
        if self.mempool is None:
            return
        txids = await self.service.call(self._mempool_txids)
        st = self._state(peer)
        for j in range(0, len(txids), MAX_INV):
            chunk = txids[j:j + MAX_INV]
            for t in chunk:
                st.known.add(t)
            if peer.wtxid_relay:
                peer.send(m.Inv(tuple(m.InvVect(InvType.WTX, self._wtxid_of_txid.get(t, t))
                                      for t in chunk)))
            else:
                peer.send(m.Inv(tuple(m.InvVect(InvType.TX, t) for t in chunk)))

    async def on_reject(self, peer: Peer, msg: m.Reject) -> None:
        log.debug("peer %d rejected our %s: %s %s", peer.id, msg.message, msg.code, msg.reason)

    # ------------------------------------------------------------------ blocks
    async def on_block(self, peer: Peer, msg: m.BlockMsg) -> None:
        block = msg.block
        h = block.hash
        st = self._state(peer)
        height = self._fetch_heights.get(h)
        if height is not None:
            # a block we asked for: its header, hence its parent, is in our index, and its
            # height is known here — checked on the loop, not behind the writer's queued blocks
            mutated = is_block_mutated(block, height >= self.params.segwit_height)
        else:
            mutated = await self.service.call(self._block_mutated, block)
        if mutated:
            # Core ProcessMessage(BLOCK): a block whose parent we know is checked for mutation
            # (IsBlockMutated) before anything else; it costs the sender, is forgotten as this
            # peer's request, and never reaches validation (so its header is not indexed)
            log.debug("Received mutated block from peer=%d", peer.id)
            self._remove_block_request(h, st)
            raise Misbehaving(100, "mutated block")
        st.known.add(h)
        requested = h in st.blocks_in_flight or h in self._requested
        if h in st.blocks_in_flight:
            self._remove_block_request(h, st)
        if not requested and not await self._unrequested_block_wanted(peer, block):
            return
        if h not in self._received and h not in self._submitting and h not in self._recent_ok:
            self._received[h] = (block, peer.id)
            if not requested:
                # Core AcceptBlock stores a wanted unrequested block at once, whether or not its
                # parent's data is here (its header connects; the chain links it up later)
                self._store_now.add(h)
        # The submitter task hands blocks to the writer; this peer's reader goes on reading
        # (decoding the next block overlaps validating this one).
        self._blocks_waiting.set()

    def _blocks_pending_from(self, peer_id: int) -> bool:
        """A block this peer sent is at the writer, or waits for the submitter with its parent
        at hand (one waiting for a missing parent does not count)."""
        if any(pid == peer_id for pid in self._submitting.values()):
            return True
        tip = self.service.snapshot.tip_hash
        for h, (blk, pid) in self._received.items():
            if pid == peer_id:
                p = blk.header.prev_hash
                if h in self._store_now or p == tip or p in self._submitting or p in self._recent_ok:
                    return True
        return False

    async def settle_before_pong(self, peer: Peer, timeout: float = 60.0) -> None:
        """Core handles one peer's messages in order: a ping sent after a block is answered once
        that block was validated (the test framework's sync_with_ping relies on it). Waits,
        bounded by `timeout`, until no block from `peer` is still being processed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._blocks_pending_from(peer.id) or await self._parent_stored_pending(peer.id):
            left = deadline - loop.time()
            if left <= 0:
                return
            self._block_done.clear()
            try:
                await asyncio.wait_for(self._block_done.wait(), timeout=min(left, 0.05))
            except TimeoutError:
                pass

    async def _parent_stored_pending(self, peer_id: int) -> bool:
        """A block from this peer waits for the submitter while its parent is stored but is not
        our tip (a fork block that will trigger a reorg): asked of the writer."""
        mine = [h for h, (_, pid) in self._received.items() if pid == peer_id]
        if not mine:
            return False
        try:
            state = await self.service.call(self._ready_blocks, mine)
        except RuntimeError:   # writer stopping
            return False
        return any(ok for _, ok in state)

    async def _unrequested_block_wanted(self, peer: Peer, block: Any) -> bool:
        """Core ProcessMessage("block") + AcceptBlock with fRequested false. The header must
        connect (a block whose parent we do not know costs the sender: BLOCK_MISSING_PREV) and,
        if new, carry the anti-DoS work (`min_pow_checked`); it is then checked and kept (an
        invalid one costs the sender). The block itself is processed only if its chain has at
        least as much work as our tip (a same-work block is stored and checked but does not
        become the tip: first seen wins), is at most 288 blocks above our tip, and has at least
        -minimumchainwork; anything else is dropped without punishment."""
        try:
            verdict = await self.service.call(self._check_unrequested, block.header)
        except ValidationError as e:
            score = _block_fault_score(e)
            if score:
                raise Misbehaving(score, f"invalid header of unrequested block: {e.reason.value}") from None
            return False
        if verdict == "ok":
            return True
        if verdict == "missing-prev":
            raise Misbehaving(100, f"block {hash_to_hex(block.hash)} with unknown parent (prev-blk-not-found)")
        if verdict == "low-work-header":
            log.debug("AcceptBlockHeader: not adding new block header %s, missing anti-dos "
                      "proof-of-work validation", hash_to_hex(block.hash))
        else:
            log.debug("peer %d: not processing unrequested block %s (%s)", peer.id,
                      hash_to_hex(block.hash), verdict)
        return False

    def _check_unrequested(self, header: Any) -> str:
        """Writer thread: "ok" to process, else why not (see `_unrequested_block_wanted`)."""
        from tinynode.consensus.pow import block_work
        cs = self.service.chainstate
        entry = cs.get_entry(header.hash)
        if entry is not None and entry.failed:
            cs.process_headers([header])   # raises duplicate-invalid (Core BLOCK_CACHED_INVALID)
        if entry is not None and entry.have_data:
            return "already have"
        prev = cs.get_entry(header.prev_hash)
        if prev is None:
            return "missing-prev"
        if entry is None:
            if prev.chainwork + block_work(header.bits) < self._anti_dos_work_threshold():
                if prev.failed:   # AcceptBlockHeader checks the parent before the work
                    cs.process_headers([header])
                return "low-work-header"
            entry = cs.process_headers([header])[-1]
        tip = cs.tip
        if entry.chainwork < tip.chainwork:
            return "less work than our tip"
        if entry.height > tip.height + MIN_BLOCKS_TO_KEEP:
            return "too far ahead of our tip"
        if entry.chainwork < getattr(self.params, "minimum_chain_work", 0):
            return "below the minimum chain work"
        return "ok"

    async def _submitter_loop(self) -> None:
        while True:
            await self._blocks_waiting.wait()
            self._blocks_waiting.clear()
            try:
                await self._submit_ready()
                await self._schedule()
            except RuntimeError:   # the writer is stopping
                return
            except Exception:
                log.exception("block submitter failed; continuing")

    async def _submit_ready(self) -> None:
        """Hand received blocks to the writer parent-first, without waiting in between.

        A block is ready when its parent is our tip, was submitted successfully, or is itself
        queued at the writer (the writer runs jobs in order). Keeping the writer's queue full
        during a download lets it connect many blocks per store commit."""
        async with self._submit_lock:
            while self._received:
                tip = self.service.snapshot.tip_hash
                ready = [h for h, (blk, _) in self._received.items()
                         if (p := blk.header.prev_hash) in self._submitting or p in self._recent_ok
                         or p == tip or h in self._store_now]
                if not ready:
                    # Ask the chain: parents stored earlier, or unknown (unsolicited / orphan).
                    state = await self.service.call(self._ready_blocks, list(self._received))
                    ready = [h for h, ok in state if ok]
                    if not ready:
                        ready = [h for h, ok in state if ok is None]
                    if not ready:
                        return
                for h in ready:
                    item = self._received.pop(h, None)
                    self._store_now.discard(h)
                    if item is None:
                        continue
                    self._submitting[h] = item[1]
                    assert self._tg is not None
                    self._tg.create_task(self._submit_one(*item))

    async def _submit_one(self, block: Any, pid: int) -> None:
        h = block.hash
        try:
            ok = await self._submit_block(block, pid)
        except RuntimeError:   # writer stopping
            ok = False
        except Exception:      # a chain bug must not take the sync manager down with it
            log.exception("submitting block %s failed", hash_to_hex(h))
            ok = False
        finally:
            self._submitting.pop(h, None)
            self._block_done.set()
        if ok:
            self._recent_ok.add(h)
            # Core ProcessBlock: a block stored from whichever peer is no longer asked of another
            if h in self._requested:
                self._remove_block_request(h)
        self._blocks_waiting.set()

    def _ready_blocks(self, hashes: list[bytes]) -> list[tuple[bytes, bool | None]]:
        """(hash, True) if the parent has data, False if the parent header is known but its body
        is missing, None if the parent is unknown."""
        cs = self.service.chainstate
        out: list[tuple[bytes, bool | None]] = []
        for h in hashes:
            block = self._received[h][0] if h in self._received else None
            if block is None:
                continue
            parent = cs.get_entry(block.header.prev_hash)
            if parent is None:
                out.append((h, None))
            else:
                out.append((h, bool(parent.have_data or parent.height == 0)))
        return out

    async def _submit_block(self, block: Any, pid: int) -> bool:
        """Submit one block; True if the chain now has its data."""
        peer = self.connman.get_peer(pid) if self.connman is not None else None
        try:
            result = await self.service.submit_block(block)
        except ValidationError as e:
            if peer is not None:
                peer.misbehaving(_block_fault_score(e), f"invalid block: {getattr(e, 'reason', e)}")
            return False
        if not result.ok:
            if peer is not None:
                peer.misbehaving(_block_fault_score(result.error),
                                 f"invalid block {hash_to_hex(block.hash)[:16]}…: {result.reason}")
            return False
        if result.status == "orphan":
            if peer is not None:
                await self._send_getheaders(self._state(peer))
            return False
        if peer is not None:
            st = self._peers.get(pid)
            if st is not None and result.entry is not None:
                self._update_best(st, result.entry)
                peer.synced_blocks = max(peer.synced_blocks, result.entry.height)
            if result.status != "duplicate":  # Core ProcessBlock: m_last_block_time on a new block
                peer.last_block_time = time.time()
        self._blocks_done += 1
        self._log_progress()
        return True

    def _log_progress(self) -> None:
        snap = self.service.snapshot
        now = time.monotonic()
        behind = snap.best_header_height - snap.height
        if behind <= 0 and self._progress_t == 0.0:
            return
        if self._progress_t == 0.0:
            self._progress_t, self._progress_h = now, snap.height
            return
        if now - self._progress_t >= 5.0 or behind <= 0:
            rate = (snap.height - self._progress_h) / max(now - self._progress_t, 1e-6)
            eta = behind / rate if rate > 0 else float("inf")
            log.info("sync: height %d / best header %d (%.1f%%), %.1f blocks/s, ETA %s",
                     snap.height, snap.best_header_height,
                     100.0 * snap.height / max(1, snap.best_header_height), rate,
                     "done" if behind <= 0 else f"{eta:.0f} s")
            self._progress_t, self._progress_h = (0.0, 0) if behind <= 0 else (now, snap.height)

    # ------------------------------------------------------------------ download scheduling
    async def _schedule(self) -> None:
        """Core's FindNextBlocksToDownload for each peer with free slots.

        One caller at a time; a request made meanwhile makes the running one go round again."""
        self._want_schedule = True
        if self._schedule_lock.locked():
            return
        async with self._schedule_lock:
            while self._want_schedule:
                self._want_schedule = False
                await self._schedule_once()

    def _in_ibd(self) -> bool:
        """Core `IsInitialBlockDownload`: our tip has less than -minimumchainwork or is older
        than a day; once out, never back in (latched)."""
        if self._left_ibd:
            return False
        snap = self.service.snapshot
        if (snap.chainwork < getattr(self.params, "minimum_chain_work", 0)
                or snap.tip_time < self._now() - RECENT_HEADER_AGE):
            return True
        self._left_ibd = True
        return False

    @staticmethod
    def _can_serve_blocks(peer: Peer) -> bool:
        """Core `CanServeBlocks`: NODE_NETWORK or NODE_NETWORK_LIMITED."""
        return bool(peer.services & (NODE_NETWORK | NODE_NETWORK_LIMITED))

    @staticmethod
    def _is_limited(peer: Peer) -> bool:
        """Core `IsLimitedPeer`: NODE_NETWORK_LIMITED without NODE_NETWORK."""
        return not peer.services & NODE_NETWORK and bool(peer.services & NODE_NETWORK_LIMITED)

    def _preferred_download(self, peer: Peer) -> bool:
        """Core `fPreferredDownload`: an outbound (or noban) peer that can serve blocks."""
        return ((not peer.inbound or peer.has_permission(NetPermissionFlags.NOBAN))
                and self._can_serve_blocks(peer))

    async def _schedule_once(self) -> None:
        """Core SendMessages "getdata (blocks)" for every peer: a peer that can serve blocks
        with room in its 16 in flight is asked for the next blocks of its best chain
        (`_next_blocks`) — in initial sync only if it is preferred, or nobody preferred is
        connected or downloading, and not a limited peer. A peer that gets nothing because the
        window is held by another peer's first block (while it has nothing in flight) marks that
        peer as stalling (Core "Stall started")."""
        cfg = self.config
        snap = self.service.snapshot
        live = [s for s in self._live_states() if s.peer.handshake_done.is_set()]
        await self._process_block_availability(live)
        n_preferred = sum(1 for s in live if self._preferred_download(s.peer))
        ibd = self._in_ibd()
        for st in live:
            peer = st.peer
            if not self._can_serve_blocks(peer) or st.best_hash is None:
                continue
            from_peer = self._preferred_download(peer) or n_preferred == 0 or not self._requested
            if not ((from_peer and not self._is_limited(peer)) or not ibd):
                continue
            free = cfg.blocks_per_peer - len(st.blocks_in_flight)
            if free <= 0:
                continue
            # Core FindNextBlocksToDownload: a chain with less work than our tip (or below
            # -minimumchainwork) has nothing for us; our tip itself neither
            if (st.best_work < snap.chainwork or st.best_hash == snap.tip_hash
                    or st.best_work < getattr(self.params, "minimum_chain_work", 0)):
                continue
            done = frozenset(self._received) | frozenset(self._submitting)
            hashes, staller = await self.service.call(
                self._next_blocks, st.best_hash, dict(self._requested), done, free, peer.id,
                self._is_limited(peer), self._segwit_fetch_height(peer))
            if not peer.is_connected:
                continue
            hashes = [(h, ht) for h, ht in hashes if h not in self._requested]
            for h, ht in hashes:
                log.debug("Requesting block %s (%d) peer=%d", hash_to_hex(h), ht, peer.id)
            if hashes:
                self._request_blocks(st, [h for h, _ in hashes], [ht for _, ht in hashes])
            if not st.blocks_in_flight and staller is not None:
                stalled = self._peers.get(staller)
                if stalled is not None and stalled.stalling_since is None:
                    stalled.stalling_since = time.monotonic()
                    log.debug("Stall started peer=%d", staller)

    def _next_blocks(self, best_hash: bytes, requested: dict, done: frozenset, count: int,
                     peer_id: int, limited: bool, below_height: float = float("inf"),
                     ) -> tuple[list[tuple[bytes, int]], int | None]:
        """Writer thread: Core `FindNextBlocksToDownload` / `FindNextBlocks` for one peer whose
        best known block is `best_hash`: up to `count` (hash, height) of blocks we lack on the
        way from our chain to it, that nobody has in flight (`requested`: hash -> peer id) and
        that are not already here (`done`: received, being stored), no higher than the last
        common block + the download window. Also returns the staller: the peer holding the
        first in-flight block when nothing could be fetched only because of the window. Stops
        at `below_height` (Core FindNextBlocks: a block with segwit active, and its descendants,
        are not fetched from a peer that cannot serve witnesses).

        The path from the fork to `best_hash` is computed once per best hash (a few are kept)
        and then walked from a cursor that only moves past blocks we already have, which is
        Core's pindexLastCommonBlock (IBD stays linear)."""
        cs = self.service.chainstate
        cache = self._path_cache.get(best_hash)
        if cache is not None and cache["path"] and not _on_active(cs, cache["path"][0].prev):
            cache = None   # a reorg moved our chain off the fork point: walk again
        if cache is None:
            best = cs.get_entry(best_hash)
            if best is None or best.failed:
                return [], None
            path = []
            e = best
            while e is not None and cs.get_block_hash(e.height) != e.hash:
                path.append(e)
                e = e.prev
            path.reverse()
            cache = {"path": path, "cursor": 0}
            self._path_cache[best_hash] = cache
            while len(self._path_cache) > 8:
                self._path_cache.popitem(last=False)
        self._path_cache.move_to_end(best_hash)
        path, cursor = cache["path"], cache["cursor"]
        while cursor < len(path) and (path[cursor].have_data or _on_active(cs, path[cursor])):
            cursor += 1
        cache["cursor"] = cursor
        if cursor >= len(path):
            return [], None
        best_height = path[-1].height
        window_end = path[cursor].height - 1 + self.config.block_download_window
        out: list[tuple[bytes, int]] = []
        waiting_for: int | None = None
        for e in path[cursor:]:
            if e.height > window_end + 1 or e.height >= below_height:
                break
            if e.failed:
                return out, None             # Core: the peer's chain is invalid
            if e.have_data or e.hash in done:
                continue
            holder = requested.get(e.hash)
            if holder is not None:
                if waiting_for is None:
                    waiting_for = holder
                continue
            if e.height > window_end:
                staller = waiting_for if not out and waiting_for != peer_id else None
                return out, staller
            if limited and best_height - e.height >= NODE_NETWORK_LIMITED_MIN_BLOCKS - 2:
                continue
            out.append((e.hash, e.height))
            if len(out) >= count:
                break
        return out, None

    async def _maintenance_loop(self) -> None:
        """Stall deadlines (blocks, headers, txs) and download top-ups."""
        cfg = self.config
        tick = max(0.05, min(0.5, cfg.block_stall_timeout / 4))
        spacing = cfg.block_download_timeout or float(self.params.pow_target_spacing)
        while True:
            try:
                async with asyncio.timeout(tick):
                    await self._kick.wait()
            except TimeoutError:
                pass
            self._kick.clear()
            await asyncio.sleep(0.01)  # a burst of kicks never starves the loop
            now = time.monotonic()
            downloading = sum(1 for s in self._live_states() if s.blocks_in_flight)
            for st in self._live_states():
                if self._block_download_timed_out(st, now, spacing, downloading):
                    continue
                if (st.headers_requested is not None and now - st.headers_requested > cfg.headers_timeout
                        and self._headers_timeout_applies(st)):
                    st.peer.disconnect("headers request timed out")
                expired = [t for t, at in st.tx_in_flight.items() if now - at > cfg.tx_request_timeout]
                for t in expired:
                    del st.tx_in_flight[t]
                    if self._tx_requested.get(t) == st.peer.id:
                        del self._tx_requested[t]
            try:
                await self._headers_sync_step()
                if self._received:
                    await self._submit_ready()
                await self._schedule()
            except RuntimeError:  # writer stopping
                return
            except Exception:
                log.exception("sync maintenance failed; continuing")

    def _block_download_timed_out(self, st: _PeerSync, now: float, spacing: float,
                                  downloading: int) -> bool:
        """Core SendMessages' two block download checks; True if the peer was disconnected.

        * Stalling: the peer has held the download window's first block for longer than the
          stalling timeout (2 s); the timeout then doubles (up to 64 s) so that our own slow
          link does not cost us one peer after another.
        * Timeout: the first block in flight from the peer has waited more than one target
          spacing plus half of one per other peer we download from."""
        cfg = self.config
        if st.stalling_since is not None and now - st.stalling_since > self._stall_timeout:
            log.info("Peer is stalling block download, disconnecting peer=%d", st.peer.id)
            st.peer.disconnect("Peer is stalling block download")
            new = min(2 * self._stall_timeout, cfg.block_stall_timeout_max)
            if new != self._stall_timeout:
                self._stall_timeout = new
                log.debug("Increased stalling timeout temporarily to %d seconds", new)
            return True
        if st.blocks_in_flight:
            others = max(0, downloading - 1)
            limit = spacing * (BLOCK_DOWNLOAD_TIMEOUT_BASE + BLOCK_DOWNLOAD_TIMEOUT_PER_PEER * others)
            if now > st.downloading_since + limit:
                first = next(iter(st.blocks_in_flight))
                log.info("Timeout downloading block %s, disconnecting peer=%d", hash_to_hex(first),
                         st.peer.id)
                st.peer.disconnect("Timeout downloading block")
                return True
        return False

    def _ease_stall_timeout(self) -> None:
        """Core BlockConnected: a stalling timeout raised by dropped stallers goes back toward
        its default by 15% per connected block (whole seconds, as Core's duration_cast)."""
        default = self.config.block_stall_timeout
        if self._stall_timeout <= default:
            return
        eased = self._stall_timeout * 0.85
        if float(default).is_integer():
            eased = float(int(eased))
        self._stall_timeout = max(eased, default)
        log.debug("Decreased stalling timeout to %d seconds", self._stall_timeout)

    # ------------------------------------------------------------------ chain events
    async def _on_chain_event(self, ev: Any) -> None:
        if isinstance(ev, BlockConnected):
            self._connected_since_tip.append(ev.entry)
            self._ease_stall_timeout()
        elif isinstance(ev, BlockDisconnected):
            pass
        elif isinstance(ev, TipChanged):
            # Core hashRecentRejectsChainTip: a new tip may make a refused tx valid
            self._recent_rejects = _Known(MAX_RECENT_REJECTS)
            connected, self._connected_since_tip = self._connected_since_tip, []
            await self._announce_blocks(connected, ev.new_tip)
            self._kick.set()
            if ev.is_reorg and self.mempool is not None:
                # Transactions of disconnected blocks went back to the pool: offer them again
                # (each peer still hears of a tx at most once).
                try:
                    for txid in await self.service.call(self._mempool_txids):
                        self.relay_txid(txid)
                except RuntimeError:
                    pass

    async def _announce_blocks(self, connected: list[Any], tip: Any) -> None:
        """Core UpdatedBlockTip + SendMessages' block announcement: the new blocks (at most
        MAX_BLOCKS_TO_ANNOUNCE, newest last) go by `headers` to a sendheaders peer when they
        connect to a header the peer has (an ancestor of its best known block or of the best
        header we sent it, Core PeerHasHeader); otherwise — or for a peer without sendheaders —
        the tip goes by `inv`, unless the peer already has it."""
        snap = self.service.snapshot
        if snap.best_header_height - snap.height > DOWNLOAD_WINDOW:
            return  # still far behind: nobody wants our stale tips
        new = [e.hash for e in connected][-MAX_BLOCKS_TO_ANNOUNCE:] or [tip.hash]
        peers = [st for st in self._live_states() if st.peer.handshake_done.is_set()]
        if not peers:
            return
        await self._process_block_availability(peers)
        try:
            plans = await self.service.call(
                self._plan_announcements, new,
                [(st.send_headers, st.best_hash, st.best_header_sent) for st in peers])
        except RuntimeError:   # writer stopping
            return
        for st, (headers, inv) in zip(peers, plans):
            if not st.peer.is_connected:
                continue
            if headers:
                st.peer.send(m.Headers(tuple(headers)))
                st.best_header_sent = headers[-1].hash
            elif inv is not None:
                st.peer.send(m.Inv((m.InvVect(InvType.BLOCK, inv),)))
            for h in new:
                st.known.add(h)

    async def _process_block_availability(self, states: list[_PeerSync]) -> None:
        """Core ProcessBlockAvailability: an announced block unknown then may be known now."""
        pending = [st for st in states if st.last_unknown_block is not None]
        if not pending:
            return
        entries = await self.service.call(self._entries_of, [st.last_unknown_block for st in pending])
        for st, e in zip(pending, entries):
            if e is not None:
                self._update_best(st, e)
                st.last_unknown_block = None

    def _plan_announcements(self, new: list[bytes], peers: list[tuple]) -> list[tuple[list, bytes | None]]:
        """Writer thread: per peer (send_headers, best known, best header sent), the headers to
        announce, or else the hash to inv (None: nothing), as Core's SendMessages decides."""
        cs = self.service.chainstate
        entries = [cs.get_entry(h) for h in new]

        ancestor = getattr(cs, "get_ancestor", None) or (lambda t, height: t.get_ancestor(height))

        def peer_has(entry: Any, tips: list[Any]) -> bool:
            return any(t is not None and t.height >= entry.height
                       and ancestor(t, entry.height) is entry for t in tips)

        out: list[tuple[list, bytes | None]] = []
        for send_headers, best, sent in peers:
            tips = [cs.get_entry(h) if h is not None else None for h in (best, sent)]
            headers: list[Any] = []
            revert = not send_headers
            if not revert:
                found = False
                prev = None
                for e in entries:
                    if e is None or cs.get_block_hash(e.height) != e.hash:
                        revert = True        # we reorged away from it
                        break
                    if prev is not None and e.prev is not prev:
                        revert = True        # the blocks do not connect to each other
                        break
                    prev = e
                    if found:
                        headers.append(e.header)
                    elif peer_has(e, tips):
                        continue
                    elif e.prev is None or peer_has(e.prev, tips):
                        found = True
                        headers.append(e.header)
                    else:
                        revert = True        # nothing would connect
                        break
            if not revert:
                out.append((headers, None))
                continue
            last = entries[-1]
            out.append(([], new[-1] if last is None or not peer_has(last, tips) else None))
        return out

    # ------------------------------------------------------------------ transactions
    async def on_tx(self, peer: Peer, msg: m.TxMsg) -> None:
        if self.mempool is None:
            return
        tx = msg.tx
        txid = tx.txid
        st = self._state(peer)
        st.known.add(txid)
        for h in {txid, tx.wtxid}:     # requested by txid, or by wtxid from a wtxidrelay peer
            st.tx_in_flight.pop(h, None)
            if self._tx_requested.get(h) == peer.id:
                del self._tx_requested[h]
        if tx.wtxid != txid:
            st.known.add(tx.wtxid)
        force = (peer.has_permission(NetPermissionFlags.FORCE_RELAY)
                 and await self.service.call(self._in_mempool, txid))
        await self.accept_tx(tx, source=peer)
        if force:
            await self._force_relay(txid, peer)

    async def accept_tx(self, tx: Any, source: Peer | None = None) -> TxResult:
        """A tx from a peer (`source`) or from this node: `service.submit_tx` (Core ProcessMessage
        "tx"); the service relays what entered the pool through `TxAccepted`. For a peer's tx:
        missing parents are requested from it, a refused txid is remembered (Core
        m_recent_rejects), and a peer whose invalid txs overspent its validation budget is
        disconnected (never discouraged: Core v31 punishes no tx failure)."""
        origin = TxOrigin.peer(source.id) if source is not None else TxOrigin.rpc()
        result = await self.service.submit_tx(tx, origin)
        if source is None:
            return result
        if result.accepted:  # Core ProcessMessage "tx": m_last_tx_time on acceptance
            source.last_tx_time = time.time()
        elif result.orphan or result.missing_parents:
            rejected = [p for p in result.missing_parents if p in self._recent_rejects]
            if rejected:
                # Core: an orphan whose parent was refused is not kept (it would stay invalid)
                # and is itself remembered as refused (txid and wtxid: no witness can make it
                # valid), so it is not fetched again
                await self.service.call(self._forget_orphan, tx.txid)
                self._recent_rejects.add(tx.txid)
                self._recent_rejects.add(getattr(tx, "wtxid", tx.txid))
                log.debug("not keeping orphan with rejected parents %s (wtxid=%s)", tx.txid_hex,
                          hash_to_hex(getattr(tx, "wtxid", tx.txid)))
                return result
            await self._fetch_parents(list(result.missing_parents), source)
        elif result.error is not None:
            if isinstance(result.error, (ValidationError, PolicyError)):
                self._remember_reject(tx, result.error)
            # Core ProcessInvalidTx's MEMPOOLREJ line, state.ToString() = "reason, detail"
            log.debug("%s (wtxid=%s) from peer=%d was not accepted: %s", tx.txid_hex,
                      hash_to_hex(getattr(tx, "wtxid", tx.txid)), source.id, state_string(result.error))
        for otx, err in result.orphans_rejected:
            # Core ProcessOrphanTx → MempoolRejectedTx: an orphan refused once its parents came
            # is remembered as rejected, so its children are not kept and it is not fetched again
            self._remember_reject(otx, err)
            log.debug("   invalid orphan tx %s (wtxid=%s) from peer=%d. %s", otx.txid_hex,
                      hash_to_hex(getattr(otx, "wtxid", otx.txid)), source.id, state_string(err))
        if result.over_budget and not result.skipped:
            log.info("disconnecting peer %d (%s): its invalid transactions cost too much validation "
                     "work (last %s: %s)", source.id, source.addr_str, tx.txid_hex[:16], result.error)
            source.disconnect("invalid transactions over the validation budget")
        return result

    async def _on_tx_event(self, ev: Any) -> None:
        """Relay every tx that entered the pool (Core `TransactionAddedToMempool` → RelayTransaction),
        except back to the peer it came from."""
        if isinstance(ev, TxAccepted):
            exclude = ev.origin.peer_id
            tx = getattr(ev.entry, "tx", None)
            if tx is not None:
                self._remember_wtxid(tx)
            self.relay_txid(ev.entry.txid, exclude_id=exclude)

    async def _fetch_parents(self, parents: list[bytes], peer: Peer) -> None:
        """Core's orphan handling: request the missing parents from the peer that sent the child."""
        have = await self.service.call(self._have_txs, parents)
        want = [p for p, h in zip(parents, have) if not h and p not in self._recent_rejects]
        if want:
            st = self._state(peer)
            now = time.monotonic()
            for t in want:
                st.tx_in_flight[t] = now
                self._tx_requested[t] = peer.id
            req = InvType.TX | self._fetch_flag(peer)   # parents are known by txid only
            peer.send(m.GetData(tuple(m.InvVect(req, t) for t in want)))

    def _remember_reject(self, tx: Any, err: BaseException | None) -> None:
        """Core TxDownloadManager MempoolRejectedTx (m_lazy_recent_rejects): a refused tx is not
        fetched again by its wtxid (for a tx without witness, its txid). Its txid is not
        remembered when it has a witness — another witness may make it valid, and legacy peers
        announce it by txid — unless the failure did not depend on the witness
        (bad-txns-nonstandard-inputs, Core TX_INPUTS_NOT_STANDARD); a witness-stripped tx
        (Core TX_WITNESS_STRIPPED) is not remembered at all."""
        if getattr(err, "witness_stripped", False):
            return
        wtxid = getattr(tx, "wtxid", tx.txid)
        self._recent_rejects.add(wtxid)
        if wtxid != tx.txid and getattr(err, "reason", None) == "bad-txns-nonstandard-inputs":
            self._recent_rejects.add(tx.txid)

    def _forget_orphan(self, txid: bytes) -> None:
        if self.mempool is not None:
            self.mempool.orphans.remove(txid)

    def _headers_timeout_applies(self, st) -> bool:
        """Core SendMessages' headers-sync timeout: only while our best header is more than a
        day old (still catching up), when another peer could serve headers instead, and never
        for a noban peer; otherwise an unanswered getheaders is just waited on."""
        day_old = self.service.snapshot.best_header_time <= self._now() - 24 * 60 * 60
        others = any(o is not st for o in self._live_states())
        if not (day_old and others):
            return False
        if st.peer.has_permission(NetPermissionFlags.NOBAN):
            log.info("Timeout downloading headers from noban peer=%d, not disconnecting", st.peer.id)
            return False
        return True

    def _in_mempool(self, txid: bytes) -> bool:
        return self.mempool is not None and txid in self.mempool

    async def _force_relay(self, txid: bytes, peer: Peer) -> None:
        """Core ProcessMessage "tx" with ForceRelay: a tx from this peer that we already had is
        relayed anyway (a gateway for nodes behind it), if it is still in our mempool."""
        if not await self.service.call(self._in_mempool, txid):
            log.info("not relaying non-mempool transaction %s from forcerelay peer=%d",
                     hash_to_hex(txid), peer.id)
            return
        log.info("force relaying tx %s from peer=%d", hash_to_hex(txid), peer.id)
        self.relay_txid(txid, exclude_id=peer.id, force=True)

    def relay_txid(self, txid: bytes, exclude_id: int | None = None, force: bool = False) -> None:
        """Queue an inv of `txid` to every peer that does not know it (trickled); `force`
        (forcerelay) announces it again to peers that know it too."""
        for st in self._live_states():
            if st.peer.id == exclude_id:
                continue
            if force and st.peer.relay:
                st.known.discard(txid)
            if txid in st.known or not st.peer.relay or not st.peer.handshake_done.is_set():
                continue
            if len(st.tx_to_announce) < MAX_INV:
                st.tx_to_announce.append(txid)

    async def _relay_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.relay_tick)
            for st in self._live_states():
                if not st.tx_to_announce or not st.peer.handshake_done.is_set():
                    continue
                items = []
                for t in dict.fromkeys(st.tx_to_announce):
                    if t not in st.known:
                        st.known.add(t)
                        if st.peer.wtxid_relay:   # BIP 339: announce the wtxid as MSG_WTX
                            w = self._wtxid_of_txid.get(t, t)
                            st.known.add(w)
                            items.append(m.InvVect(InvType.WTX, w))
                        else:
                            items.append(m.InvVect(InvType.TX, t))
                st.tx_to_announce = []
                for j in range(0, len(items), MAX_INV):
                    st.peer.send(m.Inv(tuple(items[j:j + MAX_INV])))
