"""Script checks in worker processes (`chain/checkqueue.py` mode "processes",
`chain/scriptworker.py`): the same verdicts and reject reasons as inline and threads, wherever
the bad inputs sit relative to the split between the calling thread and the workers; a worker
that dies or hangs costs a fallback inline, never a wrong verdict or a hang; workers end at
`close()`, and a daemon's shutdown leaves no child process.

The block-shaped checks come from `test_parallel_script_checks` (P2PKH, several inputs per tx);
a second set mixes P2WPKH, P2TR key-path and P2PKH inputs in one tx, whose PrecomputedTxData
(with every spent output: taproot signs them all) the worker rebuilds from the bytes it gets.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import signal

import pytest

from tinynode.chain import checkqueue
from tinynode.chain.chainstate import ChainState
from tinynode.chain.checkqueue import ScriptCheckQueue, script_check_workers
from tinynode.chain.scriptworker import decode_reply, encode_batch, run_batch
from tinynode.consensus.block_checks import script_flags_for_height
from tinynode.consensus.errors import RejectReason as R
from tinynode.consensus.errors import ValidationError
from tinynode.params import REGTEST
from tinynode.primitives.tx import OutPoint, Tx, TxIn, TxOut
from tinynode.script.sighash import PrecomputedTxData
from tinynode.script.sign import sign_p2tr_keypath
from tinynode.storage.memory import MemoryChainStore

from tests.framework.miniwallet import P2WPKHKey, key, sign_p2pkh_input, sign_p2wpkh_input
from tests.framework.wait import wait_until_sync
from tests.unit.test_parallel_script_checks import (  # noqa: F401  (chain: a fixture)
    CASES, N_CHECKS, _block, _case_id, _checks, _outcome, _with_bad_inputs, chain)

FLAGS = script_flags_for_height(1000, REGTEST)
SHARES = (0.1, 0.5, 0.9)        # the caller's share of a block: moves the split point


@pytest.fixture
def small_blocks(monkeypatch):
    """No probe blocks, and blocks of any size may go to the workers."""
    monkeypatch.setattr(checkqueue, "PROBE_BLOCKS", 0)
    monkeypatch.setattr(checkqueue, "MIN_PROCESS_CHECKS", checkqueue.MIN_PARALLEL_CHECKS)


def _alive(pid: int) -> bool:
    return any(c.pid == pid for c in multiprocessing.active_children())


def _process_queue(workers: int) -> ScriptCheckQueue:
    q = ScriptCheckQueue(workers, mode="processes")
    assert q.start_processes() and len(q.worker_pids()) == workers
    return q


@pytest.fixture(scope="module")
def pqueues():
    """Queues with one and with two worker processes (started once for the module)."""
    qs = {1: _process_queue(1), 2: _process_queue(2)}
    yield qs
    for q in qs.values():
        q.close()


def _in_processes(q: ScriptCheckQueue, checks, share: float):
    """The outcome with the caller checking `share` of the checks; asserts workers took part."""
    q._main_share = share
    q.last_split = None
    got = _outcome(q, checks, FLAGS)
    assert q.last_split is not None and q.last_split[1] > 0, "the workers were not used"
    return got


# ------------------------------------------------------------------------------ P2PKH blocks
@pytest.mark.parametrize("bad", CASES, ids=_case_id)
def test_processes_match_inline_and_threads(chain, bad, pqueues, small_blocks):
    b, blocks, txs = chain
    checks = _checks(_with_bad_inputs(txs, bad), b.wallet.script_pubkey)
    expected = None if not bad else (R.BLOCK_SCRIPT_VERIFY_FLAG_FAILED, bad[min(bad)])
    for mode in ("inline", "threads"):
        q = ScriptCheckQueue(2, mode=mode)
        try:
            assert _outcome(q, checks, FLAGS) == expected, mode
        finally:
            q.close()
    for workers, q in pqueues.items():
        for share in SHARES:
            assert _in_processes(q, checks, share) == expected, (workers, share)


def test_every_single_bad_position_and_every_split(chain, pqueues, small_blocks):
    """One bad input at each position × the caller's share: the first bad one is reported."""
    b, blocks, txs = chain
    for pos in range(N_CHECKS):
        for second in (None, N_CHECKS - 1):
            bad = {pos: "EVAL_FALSE"}
            if second is not None and second != pos:
                bad[second] = "SIG_DER"
            checks = _checks(_with_bad_inputs(txs, bad), b.wallet.script_pubkey)
            for share in SHARES:
                assert _in_processes(pqueues[2], checks, share) == (
                    R.BLOCK_SCRIPT_VERIFY_FLAG_FAILED, "EVAL_FALSE"), (pos, second, share)


def test_the_reason_prefix_crosses_the_process_boundary(chain, pqueues, small_blocks):
    b, blocks, txs = chain
    checks = _checks(_with_bad_inputs(txs, {6: "EQUALVERIFY"}), b.wallet.script_pubkey)
    q = pqueues[1]
    q._main_share = 0.1
    with pytest.raises(ValidationError) as e:
        q.check(checks, FLAGS, R.MANDATORY_SCRIPT_VERIFY_FLAG_FAILED)
    assert (e.value.reason, e.value.detail) == (R.MANDATORY_SCRIPT_VERIFY_FLAG_FAILED, "EQUALVERIFY")
    # and the worker's own reply names it too (position 6 of the batch sent)
    kind, pos, done, _, reason, detail = decode_reply(run_batch(
        encode_batch(checks, 0, len(checks), FLAGS, R.MANDATORY_SCRIPT_VERIFY_FLAG_FAILED.value)))
    assert (pos, done, reason, detail) == (6, 6, R.MANDATORY_SCRIPT_VERIFY_FLAG_FAILED.value, "EQUALVERIFY")


# ------------------------------------------------------------------------------ segwit + taproot
N_MIXED_TXS = 4


@pytest.fixture(scope="module")
def mixed():
    """N_MIXED_TXS txs of 3 inputs each (P2WPKH, P2TR key path, P2PKH), signed, with their
    spent outputs: (txs, spent outputs per tx)."""
    wk, tk, pk = P2WPKHKey.make(11), key(12), key(13)
    tr_spk = b"\x51\x20" + tk.privkey.taproot_tweaked(None).xonly_public_key
    out = []
    for n in range(N_MIXED_TXS):
        spent = (TxOut(50_000 + n, wk.script_pubkey), TxOut(60_000 + n, tr_spk),
                 TxOut(70_000 + n, pk.script_pubkey))
        vin = tuple(TxIn(OutPoint(bytes([n + 1, i]) * 16, i), b"", 0xFFFFFFFD) for i in range(3))
        tx = Tx(2, vin, (TxOut(170_000, pk.script_pubkey),), 0)
        txdata = PrecomputedTxData.for_tx(tx, spent)
        w0 = sign_p2wpkh_input(tx, 0, wk, spent[0].value)
        w1 = sign_p2tr_keypath(tx, 1, tk.privkey, txdata)
        ss2 = sign_p2pkh_input(tx, 2, pk)
        vin = (dataclasses.replace(vin[0], witness=w0), dataclasses.replace(vin[1], witness=w1),
               dataclasses.replace(vin[2], script_sig=ss2))
        out.append((dataclasses.replace(tx, vin=vin), spent))
    return out


def _mixed_checks(mixed, bad: dict[int, int]):
    """Checks of `mixed` as ConnectBlock makes them; `bad`: position → byte to flip in that
    input's signature (witness item 0, or inside the scriptSig's DER signature)."""
    checks = []
    pos = 0
    for tx, spent in mixed:
        vin = list(tx.vin)
        for j in range(3):
            if pos in bad:
                if vin[j].witness:
                    sig = bytearray(vin[j].witness[0])
                    sig[bad[pos]] ^= 1
                    vin[j] = dataclasses.replace(vin[j], witness=(bytes(sig),) + vin[j].witness[1:])
                else:
                    ss = bytearray(vin[j].script_sig)
                    ss[bad[pos]] ^= 1
                    vin[j] = dataclasses.replace(vin[j], script_sig=bytes(ss))
            pos += 1
        t = dataclasses.replace(tx, vin=tuple(vin))
        txdata = PrecomputedTxData.for_tx(t, spent, force=False)   # ConnectBlock's
        checks.extend((t, j, o.script_pubkey, o.value, txdata) for j, o in enumerate(spent))
    return checks


MIXED_CASES = [{}, {1: 10}, {0: 10}, {2: 10}, {4: 20, 9: 10}, {11: 10}, {7: 5, 8: 10, 10: 30}]


@pytest.mark.parametrize("bad", MIXED_CASES, ids=_case_id)
def test_segwit_and_taproot_inputs_same_verdict(mixed, bad, pqueues, small_blocks):
    checks = _mixed_checks(mixed, bad)
    inline = ScriptCheckQueue(0)
    want = _outcome(inline, checks, FLAGS)
    assert (want is None) == (not bad)
    if bad:
        assert want[0] == R.BLOCK_SCRIPT_VERIFY_FLAG_FAILED and want[1]
    for workers, q in pqueues.items():
        for share in SHARES:
            assert _in_processes(q, checks, share) == want, (workers, share)


def test_a_tx_without_spent_outputs_fails_taproot_in_the_worker_too(mixed, pqueues, small_blocks):
    """txdata without spent outputs (taproot cannot be checked: Core's MissingDataBehavior::FAIL)
    and no txdata at all cross as such: the verdict is inline's."""
    base = _mixed_checks(mixed, {})
    for make in (lambda tx: PrecomputedTxData.for_tx(tx, None, force=False), lambda tx: None):
        checks = [(tx, j, spk, amount, make(tx)) for tx, j, spk, amount, _ in base]
        want = _outcome(ScriptCheckQueue(0), checks, FLAGS)
        assert want is not None and want[0] == R.BLOCK_SCRIPT_VERIFY_FLAG_FAILED
        for share in SHARES:
            assert _in_processes(pqueues[1], checks, share) == want


# ------------------------------------------------------------------------------ failures
def test_killed_worker_falls_back_inline_and_is_replaced(chain, monkeypatch, small_blocks):
    monkeypatch.setattr(checkqueue, "MAX_RESTARTS", 10)
    b, blocks, txs = chain
    good = _checks(txs, b.wallet.script_pubkey)
    bad = _checks(_with_bad_inputs(txs, {6: "SIG_DER"}), b.wallet.script_pubkey)
    want = (R.BLOCK_SCRIPT_VERIFY_FLAG_FAILED, "SIG_DER")
    q = _process_queue(1)
    try:
        # killed between blocks: the send or the reply fails, its part is checked here
        (pid,) = q.worker_pids()
        os.kill(pid, signal.SIGKILL)
        wait_until_sync(lambda: not _alive(pid))
        q._main_share = 0.1
        assert _outcome(q, bad, FLAGS) == want
        assert q.worker_pids() in ([], [pid]) and not _alive(pid)
        assert _outcome(q, good, FLAGS) is None
        # killed while a batch is in flight
        assert q.start_processes()
        (pid2,) = q.worker_pids()
        assert pid2 != pid
        pool = q._pool
        real_send = pool.send

        def send_then_kill(w, data):
            ok = real_send(w, data)
            os.kill(w.proc.pid, signal.SIGKILL)
            return ok

        pool.send = send_then_kill
        for checks, expected in ((bad, want), (good, None)):
            q._main_share = 0.1
            assert _outcome(q, checks, FLAGS) == expected
            assert q.start_processes()
        pool.send = real_send
        # a worker that hangs (stopped) is killed after the timeout; its part is checked here
        (pid3,) = q.worker_pids()
        os.kill(pid3, signal.SIGSTOP)
        saved = checkqueue.WORKER_TIMEOUT, checkqueue.WORKER_TIMEOUT_PER_CHECK
        checkqueue.WORKER_TIMEOUT, checkqueue.WORKER_TIMEOUT_PER_CHECK = 0.3, 0.0
        try:
            assert _outcome(q, bad, FLAGS) == want
        finally:
            checkqueue.WORKER_TIMEOUT, checkqueue.WORKER_TIMEOUT_PER_CHECK = saved
        wait_until_sync(lambda: not _alive(pid3))
        # and with a fresh worker, the processes are used again
        assert q.start_processes()
        assert _in_processes(q, bad, 0.5) == want
    finally:
        q.close()


def test_processes_given_up_after_too_many_deaths(chain, monkeypatch, small_blocks):
    b, blocks, txs = chain
    good = _checks(txs, b.wallet.script_pubkey)
    monkeypatch.setattr(checkqueue, "MAX_RESTARTS", 1)
    q = _process_queue(1)
    try:
        for _ in range(2):
            assert q.start_processes()
            (pid,) = q.worker_pids()
            os.kill(pid, signal.SIGKILL)
            wait_until_sync(lambda: not _alive(pid))
            assert _outcome(q, good, FLAGS) is None
        assert q._pool.exhausted
        assert _outcome(q, good, FLAGS) is None          # now inline for good
        assert "processes" not in q._modes and q.mode_in_use == "inline"
        assert q.worker_pids() == []
    finally:
        q.close()


def test_close_ends_the_workers():
    q = _process_queue(2)
    pids = q.worker_pids()
    assert all(_alive(p) for p in pids)
    q.close()
    assert not any(_alive(p) for p in pids)
    assert q.worker_pids() == []
    q.close()                                            # twice is fine


def test_blocks_too_small_never_go_to_processes(chain, monkeypatch):
    monkeypatch.setattr(checkqueue, "PROBE_BLOCKS", 0)
    b, blocks, txs = chain
    q = ScriptCheckQueue(1, mode="processes")
    try:
        assert _outcome(q, _checks(txs, b.wallet.script_pubkey), FLAGS) is None   # 8 < 16
        assert q._pool is None and q.worker_pids() == []
    finally:
        q.close()


def test_probe_cycles_through_the_modes(monkeypatch):
    """auto probes inline, threads and processes, PROBE_BLOCKS blocks each, and keeps the
    fastest; processes that are not ready yet give no sample (that block runs inline)."""
    now = [0.0]
    cost = {"inline": 2.0, "threads": 3.0, "processes": 1.0}
    used = []
    q = ScriptCheckQueue(1, clock=lambda: now[0], mode="auto")

    def run(mode):
        def fn(checks, flags, reason):
            used.append(mode)
            now[0] += cost[mode] * len(checks)
        return fn

    ready = [False]
    monkeypatch.setattr(q, "_check_inline", run("inline"))
    monkeypatch.setattr(q, "_check_parallel", run("threads"))
    monkeypatch.setattr(q, "_check_processes", run("processes"))
    monkeypatch.setattr(q, "_processes_ready", lambda n: ready[0])
    big = [None] * checkqueue.MIN_PROCESS_CHECKS
    probe = checkqueue.PROBE_BLOCKS
    for _ in range(3 * probe):
        q.check(big, 0)
    assert used == ["inline", "threads", "inline"] * probe
    assert q.mode_in_use == "inline"                  # processes gave no sample
    ready[0] = True
    used.clear()
    for _ in range(checkqueue.PROBE_INTERVAL - 3 * probe):
        q.check(big, 0)
    assert set(used) == {"inline"}
    used.clear()
    for _ in range(3 * probe + 5):
        q.check(big, 0)
    assert used[:3 * probe] == ["inline", "threads", "processes"] * probe
    assert q.mode_in_use == "processes" and used[3 * probe:] == ["processes"] * 5


def test_modes_and_par():
    assert ScriptCheckQueue(3, mode="inline").threads == 0
    with pytest.raises(ValueError):
        ScriptCheckQueue(1, mode="fibers")
    cpus = os.cpu_count() or 1
    assert script_check_workers(1) == 0
    assert script_check_workers(3) == 2
    assert script_check_workers(0) == min(cpus - 1, checkqueue.MAX_SCRIPTCHECK_THREADS)
    assert script_check_workers(-1) == max(0, min(cpus - 2, checkqueue.MAX_SCRIPTCHECK_THREADS))
    assert script_check_workers(100) == checkqueue.MAX_SCRIPTCHECK_THREADS


# ------------------------------------------------------------------------------ through ChainState
@pytest.mark.parametrize("bad", [{}, {0: "EVAL_FALSE"}, {3: "SIG_DER", 5: "EQUALVERIFY"}],
                         ids=_case_id)
def test_chainstate_with_processes(chain, bad, small_blocks):
    b, blocks, txs = chain
    tip_name = f"p{len(blocks) - 1}"
    name = "blk-" + _case_id(bad)
    blk = b.blocks.get(name) or _block(b, name, tip_name, _with_bad_inputs(txs, bad))
    results = []
    for mode in ("inline", "processes"):
        cs = ChainState(REGTEST, MemoryChainStore(), script_check_threads=1, script_check_mode=mode)
        try:
            for p in blocks:
                assert cs.process_block(p).status == "connected"
            if mode == "processes":
                assert cs.script_check_queue.start_processes()
            r = cs.process_block(blk)
            results.append((r.status, r.reason, r.error.detail if r.error else None))
            if mode == "processes":
                assert cs.script_check_queue.last_split is not None
                pids = cs.script_check_queue.worker_pids()
        finally:
            cs.close()
    assert not any(_alive(p) for p in pids)
    expected = (("connected", None, None) if not bad
                else ("invalid", R.BLOCK_SCRIPT_VERIFY_FLAG_FAILED, bad[min(bad)]))
    assert results == [expected, expected]



# ------------------------------------------------------------------------------ the daemon
async def test_node_options_reach_the_queue_and_shutdown_leaves_no_worker_process():
    """`--par 2 --scriptcheck-mode processes`: the node's ChainState checks scripts with one
    worker process, and stopping the node ends it (no child process left behind)."""
    import shutil

    from tinynode.config import NodeConfig, from_args
    from tinynode.node import Node

    from tests.framework.nodes import net_config, short_tmpdir

    cfg = from_args(["--par", "2", "--scriptcheck-mode", "processes"], env={"HOME": "/nonexistent"})
    assert (cfg.par, cfg.scriptcheck_mode, cfg.script_check_workers) == (2, "processes", 1)
    default = from_args([], env={"HOME": "/nonexistent"})
    assert (default.par, default.scriptcheck_mode) == (0, "auto")
    d = short_tmpdir()
    try:
        config = NodeConfig(datadir=d, network="regtest", port=0, bind="127.0.0.1", wallet=False,
                            par=2, scriptcheck_mode="processes")
        node = Node(config, net_config=net_config())
        await node.start()
        try:
            queue = node.writer.chainstate.script_check_queue
            assert (queue.threads, queue.mode) == (1, "processes")
            assert await node.writer.call(queue.start_processes)
            pids = queue.worker_pids()
            assert len(pids) == 1 and _alive(pids[0])
        finally:
            await node.stop()
        assert not any(_alive(p) for p in pids)
    finally:
        shutil.rmtree(d, ignore_errors=True)
