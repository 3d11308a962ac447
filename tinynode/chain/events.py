"""Chain events, emitted by `ChainState` after each committed change (btcd notifications.go).

Order for one activation step: `BlockDisconnected` for each block taken off the tip (tip first),
then `BlockConnected` for each block attached (lowest first), then one `TipChanged`. Events are
emitted only after the whole step checked out (no partial step is ever visible) and only after
the store commit that contains it succeeded: under the writer's sync policy a burst of steps
shares one commit, and their events wait for it; the steps of one commit end with ONE
TipChanged (from the first step's old tip to the last step's new tip, `disconnected` summed).
If that commit fails (a fatal storage error), the events are dropped with the staged steps;
subscribers never see state that is not on disk.
Subscribers of `ChainState.subscribe` run synchronously on the writer thread; asyncio code uses
`ChainWriter.subscribe_async`, which delivers the same objects on the event loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Union

from ..primitives.block import Block

if TYPE_CHECKING:
    from .index import BlockIndexEntry

__all__ = ["BlockConnected", "BlockDisconnected", "TipChanged", "ChainEvent"]


@dataclass(frozen=True, slots=True)
class BlockConnected:
    """`block` was attached to the active chain at `entry.height` (Core BlockConnected)."""

    block: Block
    entry: "BlockIndexEntry"

    @property
    def height(self) -> int:
        return self.entry.height


@dataclass(frozen=True, slots=True)
class BlockDisconnected:
    """`block` (formerly at `entry.height`) was taken off the active chain by a reorg or invalidate."""

    block: Block
    entry: "BlockIndexEntry"

    @property
    def height(self) -> int:
        return self.entry.height


@dataclass(frozen=True, slots=True)
class TipChanged:
    """The active tip moved from `old_tip` to `new_tip`; `disconnected` blocks were removed (reorg depth)."""

    old_tip: "BlockIndexEntry"
    new_tip: "BlockIndexEntry"
    disconnected: int

    @property
    def is_reorg(self) -> bool:
        return self.disconnected > 0


ChainEvent = Union[BlockConnected, BlockDisconnected, TipChanged]
