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
   know make us ask again with our locator (Core's unconnecting-headers rule: ten in a row cost
   20 points). An `inv` of an unknown block from any peer starts the same exchange with it.
2. **Blocks.** Each peer's best known header defines what it can give us. Blocks along that
   chain that we lack are requested in a moving window (Core `FindNextBlocksToDownload`): at most
   `blocks_per_peer` in flight per peer and `blocks_total` in all, never further than
   `DOWNLOAD_WINDOW` ahead of our tip. A request unanswered after `block_stall_timeout` is
   taken back and given to another peer (the stalling peer is dropped after repeated stalls).
   Received blocks are handed to the chain writer strictly parent-first.
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

#: Core's BLOCK_DOWNLOAD_WINDOW: never request blocks further than this above our tip.
DOWNLOAD_WINDOW = 1024
#: Core's MAX_BLOCKS_TO_ANNOUNCE: more new blocks than this are announced by inv.
MAX_BLOCKS_TO_ANNOUNCE = 8
#: getblocks answers at most this many hashes (Core).
MAX_GETBLOCKS = 500
#: Core's MAX_UNCONNECTING_HEADERS.
MAX_UNCONNECTING_HEADERS = 10
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
#: A peer that stalls this many block requests in a row is dropped.
MAX_STALLS = 3
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
                 "blocks_in_flight", "headers_requested", "unconnecting", "stalls",
                 "tx_in_flight", "tx_to_announce", "hash_continue", "headers_synced", "avoid",
                 "sync_started", "headers_sync_timeout", "last_getheaders",
                 "inv_triggered_getheaders")

    def __init__(self, peer: Peer) -> None:
        self.peer = peer
        self.best_hash: bytes | None = None
        self.best_work = 0
        self.best_height = -1
        self.send_headers = False
        self.known = _Known(MAX_KNOWN_INV)
        self.blocks_in_flight: dict[bytes, float] = {}
        self.headers_requested: float | None = None
        self.unconnecting = 0
        self.stalls = 0
        self.tx_in_flight: dict[bytes, float] = {}
        self.tx_to_announce: list[bytes] = []
        self.hash_continue: bytes | None = None
        self.headers_synced = False      # the peer answered our getheaders with < 2,000
        self.avoid: set[bytes] = set()
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
        self._path_cache: dict = {}   # writer thread only (see _next_blocks)
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
        for h in st.blocks_in_flight:
            if self._requested.get(h) == peer.id:
                del self._requested[h]
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
            # Core's unconnecting headers: ask for the path, punish if it keeps happening.
            st.unconnecting += 1
            if st.unconnecting % MAX_UNCONNECTING_HEADERS == 0:
                peer.misbehaving(20, f"{st.unconnecting} non-connecting headers")
            # Core HandleUnconnectingHeaders: GetLocator(m_best_header)
            await self._send_getheaders(st, await self.service.call(self._best_header_locator_exact))
            return
        st.unconnecting = 0
        st.last_getheaders = None   # Core: headers that connect answer any getheaders in flight
        low = await self.service.call(self._low_work_headers, headers)
        if low is not None and len(headers) < MAX_HEADERS:
            # Core ProcessHeadersMessage / TryLowWorkHeadersSync: a short headers chain whose
            # work stays below the anti-DoS threshold is ignored (a full one is a sync in progress)
            log.debug("Ignoring low-work chain (height=%d) from peer=%d", low, peer.id)
            return
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
        await self._headers_sync_step()
        await self._direct_fetch(st, headers[-1].hash)
        await self._schedule()

    async def _direct_fetch(self, st: _PeerSync, last_hash: bytes) -> None:
        """Core `HeadersDirectFetchBlocks`: when our tip is recent and the announced chain has at
        least our tip's work, ask this peer at once for the blocks we lack between our active
        chain and its last header (at most MAX_BLOCKS_IN_TRANSIT_PER_PEER; none for a larger
        reorg), even when it is not the peer's best chain (a fork of our tip's work)."""
        snap = self.service.snapshot
        if not snap.tip_time or snap.tip_time <= self._now() - 20 * self.params.pow_target_spacing:
            return                                    # Core CanDirectFetch
        exclude = frozenset(self._requested) | frozenset(self._received) | frozenset(self._submitting)
        hashes = await self.service.call(self._direct_fetch_hashes, last_hash, exclude,
                                         self.config.blocks_per_peer, self._segwit_fetch_height(st.peer))
        free = self.config.blocks_per_peer - len(st.blocks_in_flight)
        hashes = [h for h in hashes if h not in self._requested][:max(0, free)]
        if not hashes or not st.peer.is_connected:
            return
        self._request_blocks(st, hashes)

    def _request_blocks(self, st, hashes: list[bytes]) -> None:
        """Ask `st`'s peer for `hashes` (getdata, witness blocks if it serves them), in flight."""
        now = time.monotonic()
        for h in hashes:
            st.blocks_in_flight[h] = now
            self._requested[h] = st.peer.id
        req = InvType.BLOCK | self._fetch_flag(st.peer)
        st.peer.send(m.GetData(tuple(m.InvVect(req, h) for h in hashes)))

    def _direct_fetch_hashes(self, last_hash: bytes, exclude: frozenset, limit: int,
                             below_height: float = float("inf")) -> list[bytes]:
        """Writer thread: the blocks to fetch toward `last_hash`, oldest first (see `_direct_fetch`);
        only those below `below_height` (`_segwit_fetch_height`: a peer that cannot serve
        witnesses is not asked for segwit blocks)."""
        cs = self.service.chainstate
        e = cs.get_entry(last_hash)
        if e is None or e.failed or e.chainwork < cs.tip.chainwork:
            return []
        out: list[bytes] = []
        while e is not None and cs.get_block_hash(e.height) != e.hash and len(out) <= limit:
            if not e.have_data and e.hash not in exclude and e.height < below_height:
                out.append(e.hash)
            e = e.prev
        if e is None or cs.get_block_hash(e.height) != e.hash:
            return []                                 # a large reorg: left to the scheduler
        out.reverse()
        return out

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
                del st.blocks_in_flight[iv.hash]
                if self._requested.get(iv.hash) == peer.id:
                    del self._requested[iv.hash]
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
        if await self.service.call(self._block_mutated, block):
            # Core ProcessMessage(BLOCK): a block whose parent we know is checked for mutation
            # (IsBlockMutated) before anything else; it costs the sender, is forgotten as this
            # peer's request, and never reaches validation (so its header is not indexed)
            log.debug("Received mutated block from peer=%d", peer.id)
            st.blocks_in_flight.pop(h, None)
            if self._requested.get(h) == peer.id:
                del self._requested[h]
            raise Misbehaving(100, "mutated block")
        st.known.add(h)
        requested = h in st.blocks_in_flight or h in self._requested
        if requested:
            st.stalls = 0
        st.avoid.discard(h)
        st.blocks_in_flight.pop(h, None)
        if self._requested.get(h) == peer.id:
            del self._requested[h]
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

    async def _parent_stored_pending(self, peer_id: int) -> bool:
        """A block this peer sent waits for the submitter while its parent's data is stored
        (not our tip: a fork block, or one whose parent arrived earlier): the submitter will
        hand it to the writer after asking the chain, so it is still being processed."""
        mine = [h for h, (_, pid) in self._received.items() if pid == peer_id]
        if not mine:
            return False
        state = await self.service.call(self._ready_blocks, mine)
        return any(ok for _, ok in state)

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

    async def _schedule_once(self) -> None:
        cfg = self.config
        snap = self.service.snapshot
        for st in sorted(self._live_states(), key=lambda s: len(s.blocks_in_flight)):
            if not st.peer.handshake_done.is_set() or st.best_hash is None:
                continue
            # Core FindNextBlocksToDownload: a chain with the same work as our tip is fetched
            # too; a peer whose best block is our tip has nothing for us
            if st.best_work < snap.chainwork or st.best_hash == snap.tip_hash:
                continue
            free = min(cfg.blocks_per_peer - len(st.blocks_in_flight),
                       cfg.blocks_total - len(self._requested) - len(self._received)
                       - len(self._submitting))
            if free <= 0 and not self._requested and self._received:
                free = 1   # the window is full of blocks waiting for a parent: fetch the parent
            if free <= 0:
                continue
            exclude = frozenset(self._requested) | frozenset(self._received) | frozenset(self._submitting)
            if st.avoid and any(o is not st and o.best_work > snap.chainwork
                                for o in self._live_states()):
                exclude |= st.avoid
            hashes = await self.service.call(self._next_blocks, st.best_hash, exclude, free,
                                             self._segwit_fetch_height(st.peer))
            hashes = [h for h in hashes if h not in self._requested]
            if not hashes or not st.peer.is_connected:
                continue
            self._request_blocks(st, hashes)

    def _next_blocks(self, best_hash: bytes, exclude: frozenset, count: int,
                     below_height: float = float("inf")) -> list[bytes]:
        """Writer thread: up to `count` blocks we lack on the way from our chain to `best_hash`,
        stopping at `below_height` (Core FindNextBlocks: a block with segwit active, and its
        descendants, are not fetched from a peer that cannot serve witnesses).

        The path from the fork to `best_hash` is computed once per best hash and then walked
        from a cursor that only moves past blocks we already have (IBD stays linear)."""
        cs = self.service.chainstate
        cache = self._path_cache
        if cache.get("best") != best_hash:
            best = cs.get_entry(best_hash)
            if best is None or best.failed:
                return []
            path = []
            e = best
            while e is not None and cs.get_block_hash(e.height) != e.hash:
                path.append(e)
                e = e.prev
            path.reverse()
            cache.clear()
            cache.update(best=best_hash, path=path, cursor=0)
        path, cursor = cache["path"], cache["cursor"]
        limit = cs.tip.height + DOWNLOAD_WINDOW
        while cursor < len(path) and path[cursor].have_data:
            cursor += 1
        cache["cursor"] = cursor
        out: list[bytes] = []
        for e in path[cursor:]:
            if e.height > limit or len(out) >= count or e.height >= below_height:
                break
            if e.failed:
                break
            if not e.have_data and e.hash not in exclude:
                out.append(e.hash)
        return out

    async def _maintenance_loop(self) -> None:
        """Stall deadlines (blocks, headers, txs) and download top-ups."""
        cfg = self.config
        tick = max(0.05, min(0.5, cfg.block_stall_timeout / 4))
        while True:
            try:
                async with asyncio.timeout(tick):
                    await self._kick.wait()
            except TimeoutError:
                pass
            self._kick.clear()
            await asyncio.sleep(0.01)  # a burst of kicks never starves the loop
            now = time.monotonic()
            for st in self._live_states():
                stalled = [h for h, t in st.blocks_in_flight.items() if now - t > cfg.block_stall_timeout]
                for h in stalled:
                    del st.blocks_in_flight[h]
                    if self._requested.get(h) == st.peer.id:
                        del self._requested[h]
                if stalled:
                    st.stalls += 1
                    log.info("peer %d stalled on %d block(s); re-requesting elsewhere", st.peer.id, len(stalled))
                    st.avoid.update(stalled)   # give the other peers a chance at these first
                    if st.stalls >= MAX_STALLS:
                        st.peer.disconnect("block download stalled")
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

    # ------------------------------------------------------------------ chain events
    async def _on_chain_event(self, ev: Any) -> None:
        if isinstance(ev, BlockConnected):
            self._connected_since_tip.append(ev.entry)
        elif isinstance(ev, BlockDisconnected):
            pass
        elif isinstance(ev, TipChanged):
            # Core hashRecentRejectsChainTip: a new tip may make a refused tx valid
            self._recent_rejects = _Known(MAX_RECENT_REJECTS)
            connected, self._connected_since_tip = self._connected_since_tip, []
            self._announce_blocks(connected, ev.new_tip)
            self._kick.set()
            if ev.is_reorg and self.mempool is not None:
                # Transactions of disconnected blocks went back to the pool: offer them again
                # (each peer still hears of a tx at most once).
                try:
                    for txid in await self.service.call(self._mempool_txids):
                        self.relay_txid(txid)
                except RuntimeError:
                    pass

    def _announce_blocks(self, connected: list[Any], tip: Any) -> None:
        """Core SendMessages block announcement: headers to sendheaders peers, else inv of the tip."""
        snap = self.service.snapshot
        if snap.best_header_height - snap.height > DOWNLOAD_WINDOW:
            return  # still far behind: nobody wants our stale tips
        if not connected:
            connected = [tip]
        for st in self._live_states():
            if not st.peer.handshake_done.is_set():
                continue
            new = [e for e in connected if e.hash not in st.known]
            if not new:
                continue
            if st.send_headers and len(new) <= MAX_BLOCKS_TO_ANNOUNCE:
                st.peer.send(m.Headers(tuple(e.header for e in new)))
            else:
                st.peer.send(m.Inv((m.InvVect(InvType.BLOCK, tip.hash),)))
            for e in new:
                st.known.add(e.hash)

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
