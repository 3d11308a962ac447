"""Parallel input script checks: Bitcoin Core's `CCheckQueue` / `CCheckQueueControl` (checkqueue.h).

ConnectBlock gathers one check per spend input (Core `CScriptCheck`: tx, input index, the spent
coin's script and amount, the tx's precomputed BIP143 hashes; flags) after every other rule of the block has passed, and hands the list to
`ScriptCheckQueue.check`. With `threads` > 0 the checks are shared by that many worker threads
plus the calling thread (Core's master thread joins the workers in `CCheckQueueControl::Wait`);
with 0 they run inline, one after the other.

Why threads help in Python: most of a check is libsecp256k1's ECDSA verify, called through
coincurve's cffi binding, which releases the GIL for the length of every C call. While one
thread verifies a signature, another can interpret the next input's script, so with a free
core the checks of a block take about as long as their Python part alone.

Unlike C++ threads, they can also hurt: every cffi call (pubkey parse, signature parse, verify)
hands the GIL over, and when the cores are busy with other work the thread that takes it may be
descheduled while holding it. Measured on 2 busy CPUs, a block's checks then took about twice
as long with a worker as inline. So the queue measures instead of assuming (no Core
counterpart): of every PROBE_INTERVAL blocks with enough checks, the first 2 * PROBE_BLOCKS
alternate inline and with the workers, and the mode with the lower wall time per check is used
for the rest of the interval.

The outcome never depends on the threads. A check reads only immutable values (the `Tx`, the
spent coin's script bytes and amount, the frozen PrecomputedTxData, the flags): the coins view
is not touched by the workers. Indices are handed out in order, and after a failure at index i
no index above i is started; every index below i was already handed out and is finished before
`check` returns. So the error raised is
the one of the lowest failing input in block order — the one checking inline reports.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence

from ..consensus.errors import RejectReason
from ..consensus.tx_checks import check_input_script
from ..primitives.tx import Tx
from ..script.sighash import PrecomputedTxData

log = logging.getLogger(__name__)

__all__ = ["ScriptCheckQueue", "ScriptCheck", "default_script_check_threads", "MAX_SCRIPTCHECK_THREADS"]

#: Core's MAX_SCRIPTCHECK_THREADS
MAX_SCRIPTCHECK_THREADS = 15
#: fewer checks than this run inline: waking a worker costs about as much as one check
MIN_PARALLEL_CHECKS = 4
#: blocks (with at least MIN_PARALLEL_CHECKS checks) per probe cycle, and blocks per mode probed
PROBE_INTERVAL = 256
PROBE_BLOCKS = 8

#: (tx, input index, script_pubkey and value of the spent coin, the tx's PrecomputedTxData or
#: None) — Core `CScriptCheck` without the flags, which are the same for every input of a block
ScriptCheck = tuple[Tx, int, bytes, int, "PrecomputedTxData | None"]


def default_script_check_threads() -> int:
    """Core's `-par=0` default: one worker per core beyond the calling thread, at most
    MAX_SCRIPTCHECK_THREADS; 0 (inline) on a single core."""
    return max(0, min((os.cpu_count() or 1) - 1, MAX_SCRIPTCHECK_THREADS))


class ScriptCheckQueue:
    """Runs a block's script checks on `threads` worker threads plus the caller, or inline when
    the last probe found that faster (`use_workers`).

    Owned by one `ChainState` (no state is shared between chainstates); the workers start with
    the first block that has at least MIN_PARALLEL_CHECKS checks and end at `close()`. `clock`
    (wall seconds) is injectable for tests."""

    def __init__(self, threads: int, clock: Callable[[], float] = time.perf_counter) -> None:
        if threads < 0:
            raise ValueError("script check threads must be >= 0")
        self.threads = min(threads, MAX_SCRIPTCHECK_THREADS)
        self.use_workers = self.threads > 0
        self._executor: ThreadPoolExecutor | None = None
        self._clock = clock
        self._blocks = 0                          # blocks with enough checks for the workers
        self._probe = [[0.0, 0], [0.0, 0]]        # [inline, workers]: seconds, checks

    def check(self, checks: Sequence[ScriptCheck], flags: int,
              reason: RejectReason = RejectReason.BLOCK_SCRIPT_VERIFY_FLAG_FAILED) -> None:
        """Verify every check; raise the ValidationError (or any other exception) of the
        lowest-indexed failing one, exactly as running them in order would."""
        n = len(checks)
        if self.threads == 0 or n < MIN_PARALLEL_CHECKS:
            self._check_inline(checks, flags, reason)
            return
        phase = self._blocks % PROBE_INTERVAL
        self._blocks += 1
        probing = phase < 2 * PROBE_BLOCKS
        workers = phase % 2 == 1 if probing else self.use_workers
        start = self._clock()
        if workers:
            self._check_parallel(checks, flags, reason)
        else:
            self._check_inline(checks, flags, reason)
        if probing:                               # (a failing block raised: no sample)
            sample = self._probe[workers]
            sample[0] += self._clock() - start
            sample[1] += n
            if phase == 2 * PROBE_BLOCKS - 1:
                self._decide()

    def _decide(self) -> None:
        (t_inline, n_inline), (t_workers, n_workers) = self._probe
        self._probe = [[0.0, 0], [0.0, 0]]
        if n_inline and n_workers:
            use = t_workers * n_inline <= t_inline * n_workers
            if use != self.use_workers:
                log.debug("script checks %s: %.0f us/check inline, %.0f us/check with %d workers",
                          "in parallel" if use else "inline", 1e6 * t_inline / n_inline,
                          1e6 * t_workers / n_workers, self.threads)
            self.use_workers = use

    @staticmethod
    def _check_inline(checks: Sequence[ScriptCheck], flags: int, reason: RejectReason) -> None:
        for tx, i, spk, amount, txdata in checks:
            check_input_script(tx, i, spk, flags, reason, amount, txdata)

    def _check_parallel(self, checks: Sequence[ScriptCheck], flags: int, reason: RejectReason) -> None:
        n = len(checks)
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="scriptcheck")
        run = _Run(checks, flags, reason)
        futures = [self._executor.submit(run.work) for _ in range(min(self.threads, n - 1))]
        run.work()
        for f in futures:
            f.result()
        if run.error is not None:
            raise run.error

    def close(self) -> None:
        """Stop the worker threads (waits for them)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None


class _Run:
    """One block's checks, shared by the threads that work on them (Core `CCheckQueue::Loop`)."""

    __slots__ = ("checks", "flags", "reason", "next_index", "fail_index", "error", "lock")

    def __init__(self, checks: Sequence[ScriptCheck], flags: int, reason: RejectReason) -> None:
        self.checks = checks
        self.flags = flags
        self.reason = reason
        self.next_index = 0
        self.fail_index = len(checks)   # lowest failing index so far; len = none
        self.error: BaseException | None = None
        self.lock = threading.Lock()

    def work(self) -> None:
        """Take the next unchecked index until none is left below the lowest failure."""
        checks, flags, reason, lock = self.checks, self.flags, self.reason, self.lock
        while True:
            with lock:
                i = self.next_index
                if i >= self.fail_index:
                    return
                self.next_index = i + 1
            tx, j, spk, amount, txdata = checks[i]
            try:
                check_input_script(tx, j, spk, flags, reason, amount, txdata)
            except BaseException as e:  # noqa: BLE001 - re-raised by check() on the caller's thread
                with lock:
                    if i < self.fail_index:
                        self.fail_index = i
                        self.error = e
                return
