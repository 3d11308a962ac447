"""BIP9 version bits: deployment states, signalling statistics and the block version to mine.

Mirrors Bitcoin Core's versionbits.cpp (`AbstractThresholdConditionChecker::GetStateFor`,
`GetStateStatisticsFor`, `GetStateSinceHeightFor`, `VersionBitsCache::Info`, `GBTStatus`,
`ComputeBlockVersion`). Pure: block index entries are read through their `prev`, `height`,
`hash` and `header.version` / `header.time` attributes, so this layer needs nothing from
`chain/`. The only deployment a network defines today is Core regtest's "testdummy" (bit 28,
period 144, threshold 108, started from genesis, never timing out); no rule depends on it,
but Core's block templates signal it, and getdeploymentinfo / getblocktemplate show it.

`VersionBitsCache` keeps the state per (deployment, period-closing block hash); one belongs
to each validation service (no module-level state) and is used on the writer thread only.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

__all__ = [
    "ALWAYS_ACTIVE", "NEVER_ACTIVE", "NO_TIMEOUT", "VERSIONBITS_TOP_BITS", "VERSIONBITS_TOP_MASK",
    "BIP9Deployment", "BIP9Stats", "ThresholdState", "VersionBitsCache", "TESTDUMMY",
    "deployments_for",
]

#: Core `BIP9Deployment::ALWAYS_ACTIVE` / `NEVER_ACTIVE` (special start times) and `NO_TIMEOUT`.
ALWAYS_ACTIVE = -1
NEVER_ACTIVE = -2
NO_TIMEOUT = 2**63 - 1
#: Core VERSIONBITS_TOP_BITS / VERSIONBITS_TOP_MASK: what a BIP9 version looks like.
VERSIONBITS_TOP_BITS = 0x20000000
VERSIONBITS_TOP_MASK = 0xE0000000
#: blocks in Core's median time past
_MTP_SPAN = 11


class ThresholdState(str, Enum):
    """Core `ThresholdState`, by its `StateName`."""

    DEFINED = "defined"
    STARTED = "started"
    LOCKED_IN = "locked_in"
    ACTIVE = "active"
    FAILED = "failed"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class BIP9Deployment:
    """Core `Consensus::BIP9Deployment` plus its `VBDeploymentInfo` (name, gbt_optional_rule)."""

    name: str
    bit: int
    start_time: int
    timeout: int
    min_activation_height: int
    period: int
    threshold: int
    gbt_optional_rule: bool = True

    @property
    def mask(self) -> int:
        return 1 << self.bit

    def condition(self, entry: Any) -> bool:
        """Core `VersionBitsConditionChecker::Condition`: a BIP9 version with the bit set."""
        v = entry.header.version & 0xFFFFFFFF
        return (v & VERSIONBITS_TOP_MASK) == VERSIONBITS_TOP_BITS and (v & self.mask) != 0


#: Core regtest's DEPLOYMENT_TESTDUMMY (kernel/chainparams.cpp CRegTestParams).
TESTDUMMY = BIP9Deployment("testdummy", bit=28, start_time=0, timeout=NO_TIMEOUT,
                           min_activation_height=0, period=144, threshold=108)


def deployments_for(params: Any) -> tuple[BIP9Deployment, ...]:
    """The network's enabled BIP9 deployments, in Core's DeploymentPos order (Core
    `DeploymentEnabled`: start time not NEVER_ACTIVE). Core defines "testdummy" on every network
    but starts it only on regtest; tinynet defines none."""
    if getattr(params, "name", None) == "regtest":
        return (TESTDUMMY,)
    return ()


@dataclass(frozen=True, slots=True)
class BIP9Stats:
    """Core `BIP9Stats` of the period holding a block, up to and including it."""

    period: int
    threshold: int
    elapsed: int
    count: int
    possible: bool


def _ancestor(entry: Any, height: int) -> Any:
    """The ancestor of `entry` at `height` (None below genesis)."""
    if height < 0 or entry is None:
        return None
    e = entry
    while e is not None and e.height > height:
        e = e.prev
    return e


def _median_time_past(entry: Any) -> int:
    """Core `CBlockIndex::GetMedianTimePast`: the median of the last 11 block times."""
    times = []
    e = entry
    while e is not None and len(times) < _MTP_SPAN:
        times.append(e.header.time)
        e = e.prev
    times.sort()
    return times[len(times) // 2]


class VersionBitsCache:
    """Core `VersionBitsCache`: threshold states cached per deployment by the hash of the last
    block of a period (None stands for the genesis block's parent)."""

    def __init__(self) -> None:
        self._states: dict[tuple[str, bytes | None], ThresholdState] = {}

    def clear(self) -> None:
        self._states.clear()

    # --- Core AbstractThresholdConditionChecker ------------------------------------------------
    def state_for(self, prev: Any, dep: BIP9Deployment) -> ThresholdState:
        """Core `GetStateFor(pindexPrev)`: the state of the block after `prev` (None: genesis)."""
        if dep.start_time == ALWAYS_ACTIVE:
            return ThresholdState.ACTIVE
        if dep.start_time == NEVER_ACTIVE:
            return ThresholdState.FAILED
        period = dep.period
        # a block's state is that of the first block of its period: look at the period's parent
        if prev is not None:
            prev = _ancestor(prev, prev.height - ((prev.height + 1) % period))
        states = self._states
        to_compute = []
        while (dep.name, _key(prev)) not in states:
            if prev is None or _median_time_past(prev) < dep.start_time:
                # genesis is DEFINED by definition; so is all before the start time
                states[(dep.name, _key(prev))] = ThresholdState.DEFINED
                break
            to_compute.append(prev)
            prev = _ancestor(prev, prev.height - period)
        state = states[(dep.name, _key(prev))]
        while to_compute:   # bounded: one step per period walked back
            prev = to_compute.pop()
            nxt = state
            if state is ThresholdState.DEFINED:
                if _median_time_past(prev) >= dep.start_time:
                    nxt = ThresholdState.STARTED
            elif state is ThresholdState.STARTED:
                count = 0
                e = prev
                for _ in range(period):
                    if dep.condition(e):
                        count += 1
                    e = e.prev
                if count >= dep.threshold:
                    nxt = ThresholdState.LOCKED_IN
                elif _median_time_past(prev) >= dep.timeout:
                    nxt = ThresholdState.FAILED
            elif state is ThresholdState.LOCKED_IN:
                if prev.height + 1 >= dep.min_activation_height:
                    nxt = ThresholdState.ACTIVE
            states[(dep.name, _key(prev))] = state = nxt
        return state

    def statistics(self, entry: Any, dep: BIP9Deployment) -> tuple[BIP9Stats, list[bool]]:
        """Core `GetStateStatisticsFor(pindex, &signalling_blocks)`: the signalling count in
        `entry`'s period up to `entry`, and which of those blocks signalled (oldest first)."""
        in_period = 1 + entry.height % dep.period
        signalling = [False] * in_period
        count = 0
        e = entry
        for i in range(in_period - 1, -1, -1):
            if dep.condition(e):
                count += 1
                signalling[i] = True
            e = e.prev
        possible = (dep.period - dep.threshold) >= (in_period - count)
        return BIP9Stats(dep.period, dep.threshold, in_period, count, possible), signalling

    def since_height(self, prev: Any, dep: BIP9Deployment) -> int:
        """Core `GetStateSinceHeightFor(pindexPrev)`: the height of the first block in the
        state the block after `prev` is in."""
        if dep.start_time in (ALWAYS_ACTIVE, NEVER_ACTIVE):
            return 0
        initial = self.state_for(prev, dep)
        if initial is ThresholdState.DEFINED:
            return 0
        period = dep.period
        prev = _ancestor(prev, prev.height - ((prev.height + 1) % period))
        earlier = _ancestor(prev, prev.height - period)
        while earlier is not None and self.state_for(earlier, dep) is initial:
            prev = earlier
            earlier = _ancestor(prev, prev.height - period)
        return prev.height + 1

    # --- Core VersionBitsCache --------------------------------------------------------------------
    def compute_block_version(self, prev: Any, deployments: tuple[BIP9Deployment, ...]) -> int:
        """Core `ComputeBlockVersion`: the top bits, plus the bit of every deployment that is
        STARTED or LOCKED_IN for the block after `prev`."""
        version = VERSIONBITS_TOP_BITS
        for dep in deployments:
            if self.state_for(prev, dep) in (ThresholdState.STARTED, ThresholdState.LOCKED_IN):
                version |= dep.mask
        return version

    def gbt_status(self, prev: Any, deployments: tuple[BIP9Deployment, ...]
                   ) -> dict[ThresholdState, list[BIP9Deployment]]:
        """Core `GBTStatus`: the deployments signalling (STARTED), LOCKED_IN and ACTIVE for the
        block after `prev` (DEFINED and FAILED ones are not shown to miners)."""
        out: dict[ThresholdState, list[BIP9Deployment]] = {
            ThresholdState.STARTED: [], ThresholdState.LOCKED_IN: [], ThresholdState.ACTIVE: []}
        for dep in deployments:
            state = self.state_for(prev, dep)
            if state in out:
                out[state].append(dep)
        return out

    def deployment_json(self, entry: Any, dep: BIP9Deployment) -> dict:
        """Core `SoftForkDescPushBack` for a BIP9 deployment at block `entry` (with
        `VersionBitsCache::Info`): getdeploymentinfo's object."""
        current = self.state_for(entry.prev, dep)
        nxt = self.state_for(entry, dep)
        since = self.since_height(entry.prev, dep)
        bip9: dict[str, Any] = {}
        stats = signalling = None
        if current in (ThresholdState.STARTED, ThresholdState.LOCKED_IN):
            stats, signalling = self.statistics(entry, dep)
            if current is ThresholdState.LOCKED_IN:
                stats = BIP9Stats(stats.period, 0, stats.elapsed, stats.count, False)
            bip9["bit"] = dep.bit
        bip9.update({"start_time": dep.start_time, "timeout": dep.timeout,
                     "min_activation_height": dep.min_activation_height,
                     "status": current.value, "since": since, "status_next": nxt.value})
        if stats is not None and signalling is not None:
            st: dict[str, Any] = {"period": stats.period, "elapsed": stats.elapsed, "count": stats.count}
            if stats.threshold > 0 or stats.possible:
                st["threshold"] = stats.threshold
                st["possible"] = stats.possible
            bip9["statistics"] = st
            bip9["signalling"] = "".join("#" if s else "-" for s in signalling)
        out: dict[str, Any] = {"type": "bip9"}
        active_since = None
        if current is ThresholdState.ACTIVE:
            active_since = since
        elif nxt is ThresholdState.ACTIVE:
            active_since = entry.height + 1
        if active_since is not None:
            out["height"] = active_since
        out["active"] = active_since is not None and active_since <= entry.height + 1
        out["bip9"] = bip9
        return out


def _key(entry: Any) -> bytes | None:
    return None if entry is None else entry.hash
