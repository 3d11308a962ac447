"""A node's clock: the wall clock, or a mock time set by `setmocktime` / `--mocktime`.

Bitcoin Core's `SetMockTime` / `GetTime<>()` / `NodeClock::now()` (util/time.cpp): while a mock
time is set, every reader of the node's time sees exactly that second, frozen, until it is set
again; 0 goes back to the system clock. Core keeps the mock time in a process-wide atomic;
tinynode runs many nodes in one process, so each `Node` owns one `NodeClock` and hands it to
the parts that read the time for consensus, policy and P2P (the 2-hour future block-time rule,
block templates, mempool entry times, the `version` timestamp, ping and inactivity bookkeeping,
ban expiry, getpeerinfo's conntime/lastsend/lastrecv). Durations that only measure how long our
own work took (`time.perf_counter`, `time.monotonic`) stay on the steady clock, as Core's
`SteadyClock`.

A `NodeClock` is a callable returning seconds as a float, so it drops in wherever a
`now: Callable[[], float] = time.time` is accepted.
"""

from __future__ import annotations

import time
from typing import Callable

__all__ = ["NodeClock", "MAX_MOCKTIME"]

#: Core setmocktime's upper bound: `std::chrono::nanoseconds::max()` in whole seconds.
MAX_MOCKTIME = (2**63 - 1) // 1_000_000_000


class NodeClock:
    """Core `NodeClock` with `SetMockTime`, per node. Reads and writes are single attribute
    accesses, so the writer thread and the event loop may share one without a lock."""

    __slots__ = ("_mock", "_real")

    def __init__(self, mocktime: int = 0, real: Callable[[], float] = time.time) -> None:
        if not 0 <= mocktime <= MAX_MOCKTIME:
            raise ValueError(f"mocktime must be in the range [0, {MAX_MOCKTIME}], not {mocktime}")
        self._mock = int(mocktime)
        self._real = real

    def __call__(self) -> float:
        """Core `NodeClock::now()` in seconds: the mock time when set, else the system time."""
        mock = self._mock
        return float(mock) if mock else self._real()

    now = __call__

    def seconds(self) -> int:
        """Core `GetTime<std::chrono::seconds>()`."""
        return int(self())

    @property
    def mocktime(self) -> int:
        """The mock time in seconds, 0 when the system clock is used."""
        return self._mock

    def set_mocktime(self, t: int) -> None:
        """Core `SetMockTime(t)`: freeze this node's time at `t` seconds; 0 unfreezes it."""
        if not 0 <= t <= MAX_MOCKTIME:
            raise ValueError(f"Mocktime must be in the range [0, {MAX_MOCKTIME}], not {t}.")
        self._mock = int(t)

    def __repr__(self) -> str:
        return f"NodeClock(mocktime={self._mock})" if self._mock else "NodeClock(system)"
