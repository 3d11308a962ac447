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


class ProcessScriptCheckQueue:
    """A block's script checks shared with `processes` worker processes (Core's check queue on
    other cores; Python threads share one GIL, processes do not). Same interface and outcome
    as `ScriptCheckQueue`.

    Batches per block: the checks are cut at tx boundaries into `processes` + 1 parts of about
    equal size; each worker gets one part as (index of its first check, the tx's bytes, the
    spent outputs' scripts and amounts) per tx — no Python objects cross the pipe — parses the
    tx, builds its PrecomputedTxData and checks its inputs in order, and answers the index of
    its first failing check or None. Meanwhile the calling thread checks the first part inline.
    The error raised is the lowest failing check's, made by running that check again on the
    calling thread (so it is exactly the inline error). A tx whose checks are not all of its
    inputs in order (never, from ConnectBlock) keeps the whole block inline.

    The workers are spawned (`multiprocessing` spawn context: no fork of a threaded process)
    with the first block that has at least `min_checks` checks and end at `close()`; a worker
    that died is replaced, and its block checked inline."""

    def __init__(self, processes: int = 1, min_checks: int = 8) -> None:
        if processes < 1:
            raise ValueError("script check processes must be >= 1")
        self.processes = min(processes, MAX_SCRIPTCHECK_THREADS)
        self.threads = 0                   # no worker threads (the bench prints this)
        self.min_checks = min_checks
        self._workers: list = []           # (Process, Connection)

    def _start(self) -> None:
        import multiprocessing
        ctx = multiprocessing.get_context("spawn")
        while len(self._workers) < self.processes:
            parent, child = ctx.Pipe()
            p = ctx.Process(target=_process_worker, args=(child,), name="scriptcheck", daemon=True)
            p.start()
            child.close()
            self._workers.append((p, parent))

    def check(self, checks: Sequence[ScriptCheck], flags: int,
              reason: RejectReason = RejectReason.BLOCK_SCRIPT_VERIFY_FLAG_FAILED) -> None:
        n = len(checks)
        parts = _split_by_tx(checks, self.processes + 1) if n >= self.min_checks else None
        if parts is None:
            ScriptCheckQueue._check_inline(checks, flags, reason)
            return
        try:
            batches = [_batch(checks, lo, hi) for lo, hi in parts[1:]]
        except ValueError:
            ScriptCheckQueue._check_inline(checks, flags, reason)
            return
        if len(self._workers) < self.processes:
            self._start()
        sent = []
        redo: list[tuple[int, int]] = []
        for (p, conn), (lo, hi), batch in zip(self._workers, parts[1:], batches):
            try:
                conn.send((flags, reason.value, batch))
                sent.append((p, conn, lo, hi))
            except (OSError, ValueError):      # a dead worker: its part inline
                redo.append((lo, hi))
        lo0, hi0 = parts[0]
        error: BaseException | None = None
        try:
            ScriptCheckQueue._check_inline(checks[lo0:hi0], flags, reason)
        except BaseException as e:  # noqa: BLE001 - raised below, after the workers answered
            error = e
        first_fail: int | None = None
        for p, conn, lo, hi in sent:
            try:
                fail = conn.recv()
            except (EOFError, OSError):
                redo.append((lo, hi))
                continue
            if fail is not None and (first_fail is None or fail < first_fail):
                first_fail = fail
        if redo:
            self._reap()
        if error is not None:
            raise error                        # the first part's: the lowest index of all
        redo.sort()
        for lo, hi in redo:                    # a dead worker's part, inline (below a failure)
            if first_fail is not None and lo > first_fail:
                break
            ScriptCheckQueue._check_inline(checks[lo:hi], flags, reason)
        if first_fail is not None:
            ScriptCheckQueue._check_inline(checks[first_fail:first_fail + 1], flags, reason)
            # the worker and this thread disagree (they never should): check its part here
            ScriptCheckQueue._check_inline(checks[first_fail:], flags, reason)

    def _reap(self) -> None:
        alive = []
        for p, conn in self._workers:
            if p.is_alive():
                alive.append((p, conn))
            else:
                conn.close()
                p.join(1.0)
        self._workers = alive

    def worker_pids(self) -> list[int]:
        return [p.pid for p, _ in self._workers if p.pid is not None]

    def close(self) -> None:
        """Stop the worker processes (each ends on the None message; killed after 5 s)."""
        workers, self._workers = self._workers, []
        for p, conn in workers:
            try:
                conn.send(None)
            except (OSError, ValueError):
                pass
        for p, conn in workers:
            p.join(5.0)
            if p.is_alive():
                p.kill()               # this queue's own child only
                p.join(5.0)
            conn.close()


def _split_by_tx(checks: Sequence[ScriptCheck], parts: int) -> list[tuple[int, int]] | None:
    """[lo, hi) ranges of about n / parts checks each, cut only where a tx's checks end; None
    when there are not enough txs for every part to get one."""
    n = len(checks)
    bounds = [0]
    want = n / parts
    prev_tx = None
    for i, c in enumerate(checks):
        tx = c[0]
        if tx is not prev_tx and i and i >= want * len(bounds) and len(bounds) < parts:
            bounds.append(i)
        prev_tx = tx
    if len(bounds) < parts:
        return None
    bounds.append(n)
    return [(bounds[k], bounds[k + 1]) for k in range(parts)]


def _batch(checks: Sequence[ScriptCheck], lo: int, hi: int) -> list:
    """A worker's part: per tx (its first check's index, tx bytes, [(script, amount), ...])."""
    out: list = []
    i = lo
    while i < hi:   # bounded: every pass consumes at least one check
        tx = checks[i][0]
        k = len(tx.vin)
        group = checks[i:i + k]
        if len(group) != k or any(c[0] is not tx or c[1] != j for j, c in enumerate(group)):
            raise ValueError("a tx's checks are not all of its inputs in order")
        out.append((i, tx.raw, [(c[2], c[3]) for c in group]))
        i += k
    return out


def _process_worker(conn) -> None:  # in the worker process
    """Check the batches `conn` brings until None (or the pipe closes); answer each with the
    index of its first failing check, or None."""
    from ..primitives.coin import Coin
    from ..consensus.tx_checks import precomputed_tx_data

    while True:   # bounded by the parent: it ends with None or by closing the pipe
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        flags, reason_value, batch = msg
        reason = RejectReason(reason_value)
        fail = None
        for first, raw, outs in batch:
            tx = Tx.from_bytes(raw)
            txdata = precomputed_tx_data(tx, [Coin(amount, spk, 0, False) for spk, amount in outs])
            for j, (spk, amount) in enumerate(outs):
                try:
                    check_input_script(tx, j, spk, flags, reason, amount, txdata)
                except Exception:  # noqa: BLE001 - the parent re-runs it for the exact error
                    fail = first + j
                    break
            if fail is not None:
                break
        conn.send(fail)
