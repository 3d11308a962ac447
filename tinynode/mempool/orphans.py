"""Orphan transactions: txs whose parents we have not seen yet (Core v31 `TxOrphanage`).

Bounded as Core v31's orphanage: a global latency score (each orphan counts 1 + inputs / 10;
at most `max_latency_score`, Core DEFAULT_MAX_ORPHANAGE_LATENCY_SCORE 3000) and a global weight
of `reserved_weight_per_peer` (Core DEFAULT_RESERVED_ORPHAN_WEIGHT_PER_PEER, 404,000 WU) times
the number of peers with orphans. Over either limit, the oldest orphans of the peer with the
highest DoS score (the larger of its share of the latency allowance and of its weight
reservation; Core `LimitOrphans`) go first. Each also expires `expiry` seconds after it arrived. Each orphan is
indexed by the outpoints it spends, so when a parent arrives the pool hands back the orphans
that spend it (`children_of`) to be retried.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import Hashable, Iterable

from ..primitives.tx import OutPoint, Tx

log = logging.getLogger(__name__)

__all__ = ["OrphanPool", "Orphan"]

#: Core `MAX_STANDARD_TX_WEIGHT / 4`: bigger orphans are never kept.
MAX_ORPHAN_TX_SIZE = 100_000


@dataclass(frozen=True, slots=True)
class Orphan:
    tx: Tx
    peer: Hashable | None
    time: float


class OrphanPool:
    """A bounded orphan pool. Not thread-safe: it lives with the mempool on the writer thread."""

    def __init__(self, max_latency_score: int = 3000, reserved_weight_per_peer: int = 404_000,
                 expiry: float = 20 * 60) -> None:
        self.max_latency_score = max_latency_score
        self.reserved_weight_per_peer = reserved_weight_per_peer
        self.expiry = expiry
        self._orphans: OrderedDict[bytes, Orphan] = OrderedDict()   # txid -> orphan, oldest first
        self._by_prevout: dict[OutPoint, set[bytes]] = {}
        self._per_peer: dict[Hashable, list[int]] = {}   # peer -> [latency score, weight]
        self._latency = 0
        self._weight = 0

    def __len__(self) -> int:
        return len(self._orphans)

    def __contains__(self, txid: bytes) -> bool:
        return txid in self._orphans

    def get(self, txid: bytes) -> Tx | None:
        o = self._orphans.get(txid)
        return o.tx if o else None

    def txids(self) -> list[bytes]:
        return list(self._orphans)

    @staticmethod
    def latency_score(tx: Tx) -> int:
        """Core `Announcement::GetLatencyScore`."""
        return 1 + len(tx.vin) // 10

    def add(self, tx: Tx, peer: Hashable | None, now: float) -> bool:
        """Keep `tx` (Core `TxOrphanage::AddTx` then `LimitOrphans`). False if it is known or
        too big, or if the limits evicted it again at once."""
        txid = tx.txid
        if txid in self._orphans or len(tx.raw) > MAX_ORPHAN_TX_SIZE:
            return False
        self.expire(now)
        self._orphans[txid] = Orphan(tx, peer, now)
        for txin in tx.vin:
            self._by_prevout.setdefault(txin.prevout, set()).add(txid)
        score, weight = self.latency_score(tx), tx.weight
        self._latency += score
        self._weight += weight
        usage = self._per_peer.setdefault(peer, [0, 0])
        usage[0] += score
        usage[1] += weight
        self._limit()
        return txid in self._orphans

    def _needs_trim(self) -> bool:
        return (self._latency > self.max_latency_score
                or self._weight > self.reserved_weight_per_peer * max(len(self._per_peer), 1))

    def _limit(self) -> None:
        """Core `LimitOrphans`: while over a global limit, evict the oldest orphan of the peer
        with the highest DoS score (ties: the later peer)."""
        while self._needs_trim():
            max_lat = self.max_latency_score / max(len(self._per_peer), 1)
            order = {p: i for i, p in enumerate(self._per_peer)}
            worst = max(self._per_peer, key=lambda p: (max(self._per_peer[p][0] / max_lat,
                                                            self._per_peer[p][1] / self.reserved_weight_per_peer),
                                                        order[p]))
            oldest = next(t for t, o in self._orphans.items() if o.peer == worst)
            log.debug("orphanage over its limits: evicting %s from peer %s", oldest[::-1].hex(), worst)
            self.remove(oldest)

    def remove(self, txid: bytes) -> Orphan | None:
        o = self._orphans.pop(txid, None)
        if o is None:
            return None
        for txin in o.tx.vin:
            s = self._by_prevout.get(txin.prevout)
            if s is not None:
                s.discard(txid)
                if not s:
                    del self._by_prevout[txin.prevout]
        score, weight = self.latency_score(o.tx), o.tx.weight
        self._latency -= score
        self._weight -= weight
        usage = self._per_peer.get(o.peer)
        if usage is not None:
            usage[0] -= score
            usage[1] -= weight
            if usage[0] <= 0:
                del self._per_peer[o.peer]
        return o

    def orphans(self) -> list[Orphan]:
        """Every orphan, oldest first (Core `GetOrphanTransactions`, for getorphantxs)."""
        return list(self._orphans.values())

    def expire(self, now: float) -> int:
        """Drop orphans older than `expiry` (Core `LimitOrphans` expiry pass)."""
        old = [txid for txid, o in self._orphans.items() if now - o.time >= self.expiry]
        for txid in old:
            self.remove(txid)
        return len(old)

    def children_of(self, parent: Tx) -> list[Orphan]:
        """Orphans spending any output of `parent`, oldest first (retry them)."""
        found: set[bytes] = set()
        txid = parent.txid
        for n in range(len(parent.vout)):
            s = self._by_prevout.get(OutPoint(txid, n))
            if s:
                found |= s
        return [self._orphans[t] for t in self._orphans if t in found]

    def remove_for_peer(self, peer: Hashable) -> int:
        """A peer went away: forget what it sent (Core `EraseForPeer`)."""
        gone = [txid for txid, o in self._orphans.items() if o.peer == peer]
        for txid in gone:
            self.remove(txid)
        if gone:
            log.debug("Erased %d orphan transaction(s) from peer=%s", len(gone), peer)
        return len(gone)

    def remove_for_block(self, txs: Iterable[Tx]) -> int:
        """Drop orphans included in or conflicting with a block (Core `EraseForBlock`)."""
        gone: set[bytes] = set()
        for tx in txs:
            if tx.txid in self._orphans:
                gone.add(tx.txid)
            for txin in tx.vin:
                gone |= self._by_prevout.get(txin.prevout, set())
        for txid in gone:
            self.remove(txid)
        if gone:   # Core EraseForBlock's line
            log.debug("Erased %d orphan transaction(s) included or conflicted by block", len(gone))
        return len(gone)

    def missing_parents(self, tx: Tx) -> list[bytes]:
        """Parent txids an orphan waits for (for getdata), in input order, deduplicated."""
        seen: dict[bytes, None] = {}
        for txin in tx.vin:
            seen.setdefault(txin.prevout.txid, None)
        return list(seen)
