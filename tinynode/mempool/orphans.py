"""Orphan transactions: txs whose parents we have not seen yet (Core `TxOrphanage`).

Bounded three ways: at most `max_orphans` in total (the oldest goes first when full), at most
`max_per_peer` from one peer, and each expires `expiry` seconds after it arrived. Each orphan is
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

    def __init__(self, max_orphans: int = 100, max_per_peer: int = 25, expiry: float = 20 * 60) -> None:
        self.max_orphans = max_orphans
        self.max_per_peer = max_per_peer
        self.expiry = expiry
        self._orphans: OrderedDict[bytes, Orphan] = OrderedDict()   # txid -> orphan, oldest first
        self._by_prevout: dict[OutPoint, set[bytes]] = {}
        self._per_peer: dict[Hashable, int] = {}

    def __len__(self) -> int:
        return len(self._orphans)

    def __contains__(self, txid: bytes) -> bool:
        return txid in self._orphans

    def get(self, txid: bytes) -> Tx | None:
        o = self._orphans.get(txid)
        return o.tx if o else None

    def txids(self) -> list[bytes]:
        return list(self._orphans)

    def add(self, tx: Tx, peer: Hashable | None, now: float) -> bool:
        """Keep `tx` (Core `TxOrphanage::AddTx`). False if it is known, too big or over the peer limit."""
        txid = tx.txid
        if txid in self._orphans or len(tx.raw) > MAX_ORPHAN_TX_SIZE:
            return False
        self.expire(now)
        if peer is not None and self._per_peer.get(peer, 0) >= self.max_per_peer:
            return False
        while len(self._orphans) >= self.max_orphans:
            oldest = next(iter(self._orphans))
            log.debug("orphan pool full: evicting %s", oldest[::-1].hex())
            self.remove(oldest)
        self._orphans[txid] = Orphan(tx, peer, now)
        for txin in tx.vin:
            self._by_prevout.setdefault(txin.prevout, set()).add(txid)
        if peer is not None:
            self._per_peer[peer] = self._per_peer.get(peer, 0) + 1
        return True

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
        if o.peer is not None:
            n = self._per_peer.get(o.peer, 0) - 1
            if n > 0:
                self._per_peer[o.peer] = n
            else:
                self._per_peer.pop(o.peer, None)
        return o

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
        return len(gone)

    def missing_parents(self, tx: Tx) -> list[bytes]:
        """Parent txids an orphan waits for (for getdata), in input order, deduplicated."""
        seen: dict[bytes, None] = {}
        for txin in tx.vin:
            seen.setdefault(txin.prevout.txid, None)
        return list(seen)
