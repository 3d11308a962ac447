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

Worker processes (mode "processes", `chain/scriptworker.py`): threads share one GIL, so only
the C part of a check overlaps; a process has its own interpreter and runs the whole check.
The calling thread encodes the checks of the block's upper part as bytes (per tx its raw
bytes once; per input its position, index, spent script and amount; the flags) and sends one
batch to each ready worker, then checks the lower part itself (Core's master thread) and waits
for the replies. The split follows the measured cost per check on each side (the worker also
parses and rebuilds the PrecomputedTxData; the caller pays the encoding). Each side stops at
its first failure; the lowest failing position over all parts is then checked again on the
calling thread, which raises that check's own exception — the very one checking inline raises
— so the outcome never depends on the mode. A worker that dies, or does not answer within
WORKER_TIMEOUT (+ per check), is killed and its part is checked inline; after MAX_RESTARTS
replacements the queue stops using processes. Workers start (spawn/forkserver context, never
a fork of the node) with the first block that would use them, are used once they report ready
(blocks meanwhile run inline), and end at `close()`. Blocks with fewer than
MIN_PROCESS_CHECKS checks never go to a process: the encoding and two pipe hops cost about as
much as a few checks.

Modes (`--scriptcheck-mode`): "inline"; "threads" (probe inline vs threads, the ChainState
default); "processes" (probe inline vs processes); "auto" (probe all three, the daemon's default).
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence

from ..consensus.errors import RejectReason
from ..consensus.tx_checks import check_input_script
from ..primitives.tx import Tx
from ..script.sighash import PrecomputedTxData
from . import scriptworker

log = logging.getLogger(__name__)

__all__ = ["ScriptCheckQueue", "ScriptCheck", "default_script_check_threads", "script_check_workers",
           "MAX_SCRIPTCHECK_THREADS", "SCRIPT_CHECK_MODES"]

#: Core's MAX_SCRIPTCHECK_THREADS
MAX_SCRIPTCHECK_THREADS = 15
#: fewer checks than this run inline: waking a worker costs about as much as one check
MIN_PARALLEL_CHECKS = 4
#: fewer checks than this never go to a worker process (encoding + two pipe hops)
MIN_PROCESS_CHECKS = 16
#: blocks (with at least MIN_PARALLEL_CHECKS checks) per probe cycle, and blocks per mode probed
PROBE_INTERVAL = 256
PROBE_BLOCKS = 8
#: seconds a worker process may take to answer a batch (plus WORKER_TIMEOUT_PER_CHECK a check)
WORKER_TIMEOUT = 60.0
WORKER_TIMEOUT_PER_CHECK = 0.01
#: worker processes replaced after dying before the queue stops using processes
MAX_RESTARTS = 3

SCRIPT_CHECK_MODES = ("auto", "inline", "threads", "processes")
_CANDIDATES = {"auto": ("threads", "processes"), "inline": (), "threads": ("threads",),
               "processes": ("processes",)}

#: (tx, input index, script_pubkey and value of the spent coin, the tx's PrecomputedTxData or
#: None) — Core `CScriptCheck` without the flags, which are the same for every input of a block
ScriptCheck = tuple[Tx, int, bytes, int, "PrecomputedTxData | None"]


def default_script_check_threads() -> int:
    """Core's `-par=0` default: one worker per core beyond the calling thread, at most
    MAX_SCRIPTCHECK_THREADS; 0 (inline) on a single core."""
    return max(0, min((os.cpu_count() or 1) - 1, MAX_SCRIPTCHECK_THREADS))


def script_check_workers(par: int) -> int:
    """Core `-par` (init.cpp): 0 = one per core, < 0 = leave that many cores free, else that
    many including the calling thread; the workers are one fewer, 0..MAX_SCRIPTCHECK_THREADS
    (`-par=1`: inline)."""
    if par <= 0:
        par += os.cpu_count() or 1
    return max(0, min(par - 1, MAX_SCRIPTCHECK_THREADS))


def _default_context() -> multiprocessing.context.BaseContext:
    """forkserver where there is one, else spawn: never a fork of a process with a loop and threads."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


class ScriptCheckQueue:
    """Runs a block's script checks on `threads` workers (threads or processes, by `mode`) plus
    the caller, or inline when the last probe found that faster (`mode_in_use`).

    Owned by one `ChainState` (no state is shared between chainstates); the workers start with
    the first block that would use them and end at `close()`. `clock` (wall seconds) is
    injectable for tests, `mp_context` too (default: forkserver, else spawn)."""

    def __init__(self, threads: int, clock: Callable[[], float] = time.perf_counter,
                 mode: str = "threads", mp_context=None) -> None:
        if threads < 0:
            raise ValueError("script check threads must be >= 0")
        if mode not in SCRIPT_CHECK_MODES:
            raise ValueError(f"script check mode must be one of {', '.join(SCRIPT_CHECK_MODES)}")
        self.threads = min(threads, MAX_SCRIPTCHECK_THREADS) if mode != "inline" else 0
        self.mode = mode
        self._modes = ("inline",) + (_CANDIDATES[mode] if self.threads else ())
        self.mode_in_use = self._modes[-1]
        self._executor: ThreadPoolExecutor | None = None
        self._pool: _ProcessPool | None = None
        self._mp_context = mp_context
        self._clock = clock
        self._blocks = 0                          # blocks with enough checks for the workers
        self._probe = {m: [0.0, 0] for m in self._modes}   # mode: [seconds, checks]
        # processes: share of a block the caller checks itself; seconds per check each side
        self._main_share = 0.5
        self.last_split: tuple[int, int] | None = None   # (caller's checks, workers' checks)

    @property
    def use_workers(self) -> bool:
        return self.mode_in_use != "inline"

    def check(self, checks: Sequence[ScriptCheck], flags: int,
              reason: RejectReason = RejectReason.BLOCK_SCRIPT_VERIFY_FLAG_FAILED) -> None:
        """Verify every check; raise the ValidationError (or any other exception) of the
        lowest-indexed failing one, exactly as running them in order would."""
        n = len(checks)
        if len(self._modes) == 1 or n < MIN_PARALLEL_CHECKS:
            self._check_inline(checks, flags, reason)
            return
        modes = self._modes
        phase = self._blocks % PROBE_INTERVAL
        self._blocks += 1
        probing = phase < len(modes) * PROBE_BLOCKS
        mode = modes[phase % len(modes)] if probing else self.mode_in_use
        if mode == "processes" and not self._processes_ready(n):
            mode, probing = "inline", False       # not a sample of either mode
        start = self._clock()
        if mode == "threads":
            self._check_parallel(checks, flags, reason)
        elif mode == "processes":
            self._check_processes(checks, flags, reason)
        else:
            self._check_inline(checks, flags, reason)
        if probing:                               # (a failing block raised: no sample)
            sample = self._probe[mode]
            sample[0] += self._clock() - start
            sample[1] += n
        if phase == len(modes) * PROBE_BLOCKS - 1:
            self._decide()

    def _decide(self) -> None:
        rates = {m: t / c for m, (t, c) in self._probe.items() if c}
        self._probe = {m: [0.0, 0] for m in self._modes}
        if "inline" not in rates or len(rates) < 2:
            return
        use = min(rates, key=lambda m: (rates[m], m != "inline"))
        if use != self.mode_in_use:
            log.debug("script checks %s: %s", use if use == "inline" else f"with {self.threads} {use}",
                      ", ".join(f"{1e6 * r:.0f} us/check {m}" for m, r in rates.items()))
        self.mode_in_use = use

    def _processes_ready(self, n: int) -> bool:
        """Whether a worker process can take part of a block of `n` checks now; starts the
        workers (without waiting for them) on first use."""
        if n < MIN_PROCESS_CHECKS:
            return False
        pool = self._pool
        if pool is None:
            ctx = self._mp_context or _default_context()
            pool = self._pool = _ProcessPool(self.threads, ctx)
        if pool.exhausted:
            self._modes = tuple(m for m in self._modes if m != "processes")
            self._probe.pop("processes", None)
            if self.mode_in_use == "processes":
                self.mode_in_use = "inline"
            log.warning("script check worker processes died %d times: checking scripts without them",
                        pool.deaths)
            return False
        pool.start()
        return bool(pool.ready())

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

    def _check_processes(self, checks: Sequence[ScriptCheck], flags: int, reason: RejectReason) -> None:
        """The caller checks checks[:k], each ready worker a contiguous part of the rest."""
        pool = self._pool
        assert pool is not None
        workers = pool.ready()
        n = len(checks)
        p = len(workers)
        if not p:
            self._check_inline(checks, flags, reason)
            return
        k = min(max(1, round(n * self._main_share)), n - p)
        rest = n - k
        bounds = [k + rest * w // p for w in range(p + 1)]
        reason_value = RejectReason(reason).value
        clock = time.perf_counter
        inline_parts: list[tuple[int, int]] = []      # parts of dead workers: checked here
        sent = []
        for w, lo, hi in zip(workers, bounds, bounds[1:]):
            data = scriptworker.encode_batch(checks, lo, hi, flags, reason_value)
            if pool.send(w, data):
                sent.append((w, lo, hi, clock()))
            else:
                inline_parts.append((lo, hi))
        t_main = clock()
        main_error: BaseException | None = None
        done = 0
        for tx, i, spk, amount, txdata in checks[:k]:
            try:
                check_input_script(tx, i, spk, flags, reason, amount, txdata)
            except BaseException as e:  # noqa: BLE001 - raised below, after the replies
                main_error = e
                break
            done += 1
        t_main_end = clock()
        failures = []
        worker_cost = []
        for w, lo, hi, t_sent in sent:
            waited = not w.conn.poll(0)
            result = pool.receive(w, WORKER_TIMEOUT + WORKER_TIMEOUT_PER_CHECK * (hi - lo))
            if result is None:                        # died or hung: killed, its part inline
                inline_parts.append((lo, hi))
                continue
            kind, pos, checked, seconds, _, _ = result
            if kind != scriptworker.OK:
                failures.append(pos)
            elif checked:
                # as seen from here when the caller had to wait, else the worker's own time
                worker_cost.append(max(seconds, clock() - t_sent if waited else 0.0) / checked)
        self.last_split = (k, rest)
        if main_error is not None:
            raise main_error                          # the caller's part is the lowest
        if done and worker_cost and not inline_parts:
            a = (t_main_end - t_main) / done
            b = sum(worker_cost) / len(worker_cost)
            target = b / (b + p * a)
            self._main_share = min(0.9, max(0.1, 0.7 * self._main_share + 0.3 * target))
        lowest = min(failures, default=n)
        for lo, hi in sorted(inline_parts):
            for tx, i, spk, amount, txdata in checks[lo:min(hi, lowest)]:
                check_input_script(tx, i, spk, flags, reason, amount, txdata)
        if lowest < n:
            # the failing check again, here: raises the exception checking inline raises
            tx, i, spk, amount, txdata = checks[lowest]
            check_input_script(tx, i, spk, flags, reason, amount, txdata)
            log.error("script check worker rejected input %d of %s, which passes here; "
                      "checking the rest of the block inline", i, tx.txid_hex)
            self._check_inline(checks[lowest + 1:], flags, reason)

    def worker_pids(self) -> list[int]:
        """PIDs of the worker processes (tests, diagnostics)."""
        return self._pool.pids() if self._pool is not None else []

    def start_processes(self, timeout: float = 30.0) -> bool:
        """Start the worker processes now and wait (at most `timeout` s) until they are ready."""
        if "processes" not in self._modes:
            return False
        if self._pool is None:
            self._pool = _ProcessPool(self.threads, self._mp_context or _default_context())
        pool = self._pool
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:          # bounded: the deadline, MAX_RESTARTS
            pool.start()
            if pool.exhausted or len(pool.ready()) >= self.threads:
                break
            pool.wait_ready(min(0.1, max(0.0, deadline - time.monotonic())))
        return len(self._pool.ready()) == self.threads

    def close(self) -> None:
        """Stop the worker threads and processes (waits for them)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        if self._pool is not None:
            self._pool.close()
            self._pool = None


class _Worker:
    __slots__ = ("proc", "conn", "ready")

    def __init__(self, proc, conn) -> None:
        self.proc = proc
        self.conn = conn
        self.ready = False


class _ProcessPool:
    """`n` script check worker processes, each behind its own pipe (one batch in flight)."""

    def __init__(self, n: int, ctx) -> None:
        self.n = n
        self._ctx = ctx
        self.workers: list[_Worker] = []
        self.deaths = 0

    @property
    def exhausted(self) -> bool:
        return self.deaths > MAX_RESTARTS

    def start(self) -> None:
        """Start workers until there are `n` (they import in the background)."""
        while len(self.workers) < self.n and not self.exhausted:
            parent, child = self._ctx.Pipe(duplex=True)
            proc = self._ctx.Process(target=scriptworker.worker_main, args=(child,),
                                     name="scriptcheck-worker", daemon=True)
            try:
                proc.start()
            except BaseException:
                parent.close()
                raise
            finally:
                child.close()
            self.workers.append(_Worker(proc, parent))

    def ready(self) -> list[_Worker]:
        """Workers that said READY (polled without waiting)."""
        for w in list(self.workers):
            if not w.ready:
                try:
                    if w.conn.poll(0):
                        if w.conn.recv_bytes() != scriptworker.READY:
                            raise EOFError("unexpected first message")
                        w.ready = True
                except (EOFError, OSError):
                    self._discard(w)
        return [w for w in self.workers if w.ready]

    def wait_ready(self, timeout: float) -> None:
        pending = [w.conn for w in self.workers if not w.ready]
        if pending:
            multiprocessing.connection.wait(pending, timeout)

    def send(self, w: _Worker, data: bytes) -> bool:
        try:
            w.conn.send_bytes(data)
            return True
        except (OSError, EOFError, ValueError):
            self._discard(w)
            return False

    def receive(self, w: _Worker, timeout: float) -> scriptworker.BatchResult | None:
        """The worker's reply, or None when it died or gave none within `timeout` (it is then
        killed and dropped; `start` replaces it)."""
        try:
            if w.conn.poll(timeout):
                return scriptworker.decode_reply(w.conn.recv_bytes())
            log.warning("script check worker %s gave no answer in %.1f s: killed, its checks "
                        "run inline", w.proc.pid, timeout)
            self._discard(w)
        except (EOFError, OSError, ValueError):
            self._discard(w)
            log.warning("script check worker %s died (exit code %s): its checks run inline",
                        w.proc.pid, w.proc.exitcode)
        return None

    def _discard(self, w: _Worker) -> None:
        self.deaths += 1
        if w in self.workers:
            self.workers.remove(w)
        w.conn.close()
        if w.proc.is_alive():
            w.proc.kill()
        w.proc.join(5)

    def pids(self) -> list[int]:
        return [w.proc.pid for w in self.workers if w.proc.pid is not None]

    def close(self) -> None:
        """Close every pipe (a worker exits on EOF), then wait; kill one that does not exit."""
        workers, self.workers = self.workers, []
        for w in workers:
            w.conn.close()
        for w in workers:
            w.proc.join(5)
            if w.proc.is_alive():
                w.proc.kill()
                w.proc.join(5)


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
