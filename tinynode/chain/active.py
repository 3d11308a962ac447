"""The active chain as a by-height list of index entries (Core `CChain`, btcd `chainView`)."""

from __future__ import annotations

from typing import Iterable

from .index import BlockIndexEntry

__all__ = ["ActiveChain", "locator_heights"]


def locator_heights(height: int) -> list[int]:
    """Heights for a block locator from `height` (Core `LocatorEntries`): one by one while the
    locator has at most 11 entries (so 12 consecutive heights), then steps doubling, then 0."""
    out = []
    step = 1
    h = height
    while True:
        out.append(h)
        if h == 0:
            return out
        h = max(h - step, 0)
        if len(out) > 10:
            step *= 2


class ActiveChain:
    __slots__ = ("_chain",)

    def __init__(self) -> None:
        self._chain: list[BlockIndexEntry] = []

    @property
    def tip(self) -> BlockIndexEntry | None:
        return self._chain[-1] if self._chain else None

    @property
    def height(self) -> int:
        return len(self._chain) - 1

    @property
    def genesis(self) -> BlockIndexEntry | None:
        return self._chain[0] if self._chain else None

    def __getitem__(self, height: int) -> BlockIndexEntry | None:
        if 0 <= height < len(self._chain):
            return self._chain[height]
        return None

    def __len__(self) -> int:
        return len(self._chain)

    def contains(self, entry: BlockIndexEntry) -> bool:
        h = entry.height
        return 0 <= h < len(self._chain) and self._chain[h] is entry

    def next(self, entry: BlockIndexEntry) -> BlockIndexEntry | None:
        """The active-chain successor of `entry` (None at the tip or if `entry` is not active)."""
        if self.contains(entry):
            return self[entry.height + 1]
        return None

    def set_tip(self, entry: BlockIndexEntry | None) -> None:
        """Make `entry` the tip, rewriting only the part above the fork (O(reorg depth))."""
        chain = self._chain
        if entry is None:
            chain.clear()
            return
        del chain[entry.height + 1:]
        missing = []
        e: BlockIndexEntry | None = entry
        while e is not None and not self.contains(e):
            missing.append(e)
            e = e.prev
        if len(chain) < entry.height + 1:
            chain.extend([None] * (entry.height + 1 - len(chain)))  # type: ignore[list-item]
        for m in missing:
            chain[m.height] = m

    def find_fork(self, entry: BlockIndexEntry) -> BlockIndexEntry | None:
        """Last common ancestor of `entry` and the active chain (Core `CChain::FindFork`)."""
        if entry.height > self.height:
            entry = entry.get_ancestor(self.height)  # type: ignore[assignment]
        e: BlockIndexEntry | None = entry
        while e is not None and not self.contains(e):
            e = e.prev
        return e

    def locator(self, entry: BlockIndexEntry | None = None) -> list[bytes]:
        """Block locator hashes from `entry` (default tip) back to genesis (Core `GetLocator`)."""
        if entry is None:
            entry = self.tip
        if entry is None:
            return []
        out = []
        for h in locator_heights(entry.height):
            if self.contains(entry):
                out.append(self._chain[h].hash)
            else:
                anc = entry.get_ancestor(h)
                if anc is None:
                    break
                out.append(anc.hash)
                if self.contains(anc):
                    entry = anc
        return out

    def entries(self, start: int = 0) -> Iterable[BlockIndexEntry]:
        return iter(self._chain[start:])
