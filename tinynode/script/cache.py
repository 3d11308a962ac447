"""The script execution cache (Core's `g_scriptExecutionCache`, validation.cpp): which txs had
every input script verified under a given set of consensus flags, so a block that confirms a tx
the mempool already checked does not verify its scripts again (`CheckInputScripts`).

An entry is SHA256(nonce || wtxid || flags): the wtxid covers the witness, the flags the rules
it was checked under, and a per-instance random nonce keeps a peer from predicting keys. As in
Core, the mempool stores entries (with the flags of the next block) after the scripts pass, and
block connection only consults them, erasing an entry on a hit (a tx is confirmed once).

Unlike Core, tinynode does not run a second script pass with the block's flags before storing
(Core's `ConsensusScriptChecks`): the mempool's check uses the standard flags, a strict
superset of every block's consensus flags (`is_superset`), and a script flag only ever adds a
way to fail, so passing the stricter check implies passing the block's. `ScriptExecutionCache`
refuses to store when the checked flags do not contain the block's.

Bounded by entry count; the oldest entries go first. Owned by one ChainState (no shared state
between the nodes of one process); the mempool and the chain both run on the writer thread.
"""
from __future__ import annotations

import hashlib
import os

#: Core's -maxsigcachesize default is 32 MiB split between the two caches; an entry here is a
#: 32-byte key in a dict (~100 bytes with overhead): 160,000 entries is about 16 MiB.
DEFAULT_MAX_ENTRIES = 160_000


def is_superset(checked_flags: int, block_flags: int) -> bool:
    return checked_flags & block_flags == block_flags


class ScriptExecutionCache:
    """Core `CuckooCache` of script-valid (wtxid, flags) entries, as a bounded dict."""

    __slots__ = ("_nonce", "_entries", "max_entries", "hits", "misses")

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self._nonce = os.urandom(32)
        self._entries: dict[bytes, None] = {}
        self.max_entries = max_entries
        self.hits = 0
        self.misses = 0

    def key(self, wtxid: bytes, flags: int) -> bytes:
        return hashlib.sha256(self._nonce + wtxid + flags.to_bytes(4, "little")).digest()

    def add(self, wtxid: bytes, checked_flags: int, block_flags: int) -> None:
        """Remember that every input of the tx passed under `checked_flags`, for blocks
        checking it under `block_flags` (ignored unless the first contains the second)."""
        if self.max_entries <= 0 or not is_superset(checked_flags, block_flags):
            return
        entries = self._entries
        entries[self.key(wtxid, block_flags)] = None
        while len(entries) > self.max_entries:
            del entries[next(iter(entries))]

    def take(self, wtxid: bytes, flags: int) -> bool:
        """True (and the entry erased) when the tx's scripts are known valid under `flags`.
        An empty cache (a node in IBD, a block of txs never seen in the mempool) answers
        without hashing a key."""
        entries = self._entries
        if not entries:
            self.misses += 1
            return False
        k = self.key(wtxid, flags)
        if k in entries:
            del entries[k]
            self.hits += 1
            return True
        self.misses += 1
        return False

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()
