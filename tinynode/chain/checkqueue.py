"""Parallel input script checks: Bitcoin Core's `CCheckQueue` / `CCheckQueueControl` (checkqueue.h).

ConnectBlock gathers one check per spend input (Core `CScriptCheck`: tx, input index, the spent
coin's script, flags) after every other rule of the block has passed, and hands the list to
`ScriptCheckQueue.check`. With `threads` > 0 the checks are shared by that many worker threads
plus the calling thread (Core's master thread joins the workers in `CCheckQueueControl::Wait`);
with 0 they run inline, one after the other.

Why threads help in Python: most of a check is libsecp256k1's ECDSA verify, called through
coincurve's cffi binding, which releases the GIL for the length of every C call. While one
thread verifies a signature, another can interpret the next input's script, so with a free
core the checks of a block take about as long as their Python part alone.

The outcome never depends on the threads. A check reads only immutable values (the `Tx`, the
spent coin's script bytes, the flags): the coins view is not touched by the workers. Indices are
handed out in order, and after a failure at index i no index above i is started; every index
below i was already handed out and is finished before `check` returns. So the error raised is
the one of the lowest failing input in block order — the one checking inline reports.
"""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

from ..consensus.errors import RejectReason
from ..consensus.tx_checks import check_input_script
from ..primitives.tx import Tx

log = logging.getLogger(__name__)

__all__ = ["ScriptCheckQueue", "ScriptCheck", "default_script_check_threads", "MAX_SCRIPTCHECK_THREADS"]

#: Core's MAX_SCRIPTCHECK_THREADS
MAX_SCRIPTCHECK_THREADS = 15
#: fewer checks than this run inline: waking a worker costs about as much as one check
MIN_PARALLEL_CHECKS = 4

#: (tx, input index, script_pubkey of the spent coin) — Core `CScriptCheck` without the flags,
#: which are the same for every input of a block
ScriptCheck = tuple[Tx, int, bytes]


def default_script_check_threads() -> int:
    """Core's `-par=0` default: one worker per core beyond the calling thread, at most
    MAX_SCRIPTCHECK_THREADS; 0 (inline) on a single core."""
    return max(0, min((os.cpu_count() or 1) - 1, MAX_SCRIPTCHECK_THREADS))


class ScriptCheckQueue:
    """Runs a block's script checks on `threads` worker threads plus the caller.

    Owned by one `ChainState` (no state is shared between chainstates); the workers start with
    the first block that has at least MIN_PARALLEL_CHECKS checks and end at `close()`."""

    def __init__(self, threads: int) -> None:
        if threads < 0:
            raise ValueError("script check threads must be >= 0")
        self.threads = min(threads, MAX_SCRIPTCHECK_THREADS)
        self._executor: ThreadPoolExecutor | None = None

    def check(self, checks: Sequence[ScriptCheck], flags: int,
              reason: RejectReason = RejectReason.BLOCK_SCRIPT_VERIFY_FLAG_FAILED) -> None:
        """Verify every check; raise the ValidationError (or any other exception) of the
        lowest-indexed failing one, exactly as running them in order would."""
        n = len(checks)
        if self.threads == 0 or n < MIN_PARALLEL_CHECKS:
            for tx, i, spk in checks:
                check_input_script(tx, i, spk, flags, reason)
            return
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
            tx, j, spk = checks[i]
            try:
                check_input_script(tx, j, spk, flags, reason)
            except BaseException as e:  # noqa: BLE001 - re-raised by check() on the caller's thread
                with lock:
                    if i < self.fail_index:
                        self.fail_index = i
                        self.error = e
                return
