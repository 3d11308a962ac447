"""Parallel input script checks (`chain/checkqueue.py`, Core `CCheckQueue`) give the results of
checking inline: the same verdict on valid blocks, the same reject reason and script error for
a bad signature wherever it sits, the lowest-indexed failure when several inputs fail, and no
state left behind by a failing block.

Most tests pin the queue to its workers (no probing: `workers_always`); the probe that picks
workers or inline by measured speed has its own test with a fake clock.

The block under test (on a chain of 100 + SPEND_COINS blocks, whose first coinbases are mature):

    tip -> blk:  coinbase | t0 (1 in) | t1 (3 in) | t2 (1 in) | t3 (2 in) | t4 (1 in)
                 checks in block order:  0 | 1 2 3 | 4 | 5 6 | 7
"""

from __future__ import annotations

import dataclasses
import random
import threading
import time

import pytest

from tinynode.chain import checkqueue
from tinynode.chain.chainstate import ChainState
from tinynode.chain.checkqueue import ScriptCheckQueue, default_script_check_threads
from tinynode.chain.index import BlockStatus
from tinynode.consensus.block_checks import script_flags_for_height
from tinynode.consensus.errors import RejectReason as R
from tinynode.consensus.errors import ValidationError
from tinynode.params import REGTEST
from tinynode.primitives.tx import OutPoint, Tx, TxIn
from tinynode.storage.memory import MemoryChainStore

from tests.framework.blockbuilder import BlockBuilder
from tests.framework.miniwallet import MiniWallet, key, push_data

SPEND_COINS = 8
#: inputs per spend tx of the block under test
SHAPE = (1, 3, 1, 2, 1)
N_CHECKS = sum(SHAPE)
THREADS = (0, 1, 2, 3)


# ------------------------------------------------------------------------------ bad inputs
def _bad_sig(ss: bytes) -> bytes:
    """Flip a bit inside R: a well-formed signature that does not verify → EVAL_FALSE."""
    b = bytearray(ss)
    b[10] ^= 1
    return bytes(b)


def _not_der(ss: bytes) -> bytes:
    """Break the DER sequence tag (0x30): SIG_DER under BIP66."""
    b = bytearray(ss)
    b[1] = 0x31
    return bytes(b)


def _other_key(ss: bytes) -> bytes:
    """Same signature, another key's pubkey: the hash does not match → EQUALVERIFY."""
    return ss[:1 + ss[0]] + push_data(key(7).pubkey)


def _empty(ss: bytes) -> bytes:
    """No scriptSig: OP_DUP on an empty stack → INVALID_STACK_OPERATION."""
    return b""


BAD = {"EVAL_FALSE": _bad_sig, "SIG_DER": _not_der, "EQUALVERIFY": _other_key,
       "INVALID_STACK_OPERATION": _empty}


@pytest.fixture
def workers_always(monkeypatch):
    """No probe blocks: a queue with threads always uses them."""
    monkeypatch.setattr(checkqueue, "PROBE_BLOCKS", 0)


# ------------------------------------------------------------------------------ chain fixture
@pytest.fixture(scope="module")
def chain():
    """(builder, premine blocks, the spend txs of the block under test as lists of inputs)."""
    wallet = MiniWallet(0)
    b = BlockBuilder(REGTEST, wallet=wallet, spacing=60)
    blocks = [b.next_block(f"p{i}") for i in range(REGTEST.coinbase_maturity + SPEND_COINS)]
    coins = [b.coinbase_utxo(f"p{i}") for i in range(SPEND_COINS)]
    txs = []
    for n in SHAPE:
        txs.append(wallet.spend_many([coins.pop(0) for _ in range(n)], n_outputs=2))
    return b, blocks, txs


def _with_bad_inputs(txs: list[Tx], bad: dict[int, str]) -> list[Tx]:
    """`txs` with the inputs at block-order positions `bad` (position → error code) spoiled."""
    out, pos = [], 0
    for tx in txs:
        vin = list(tx.vin)
        for j, txin in enumerate(vin):
            if pos in bad:
                vin[j] = dataclasses.replace(txin, script_sig=BAD[bad[pos]](txin.script_sig))
            pos += 1
        out.append(dataclasses.replace(tx, vin=tuple(vin)))
    return out


def _checks(txs: list[Tx], spk: bytes) -> list[tuple[Tx, int, bytes, int, None]]:
    return [(tx, j, spk, 0, None) for tx in txs for j in range(len(tx.vin))]


def _outcome(queue: ScriptCheckQueue, checks, flags):
    try:
        queue.check(checks, flags)
    except ValidationError as e:
        return e.reason, e.detail
    return None


# ------------------------------------------------------------------------------ the queue alone
CASES = [
    {},                                            # valid
    {0: "EVAL_FALSE"},                             # first input of the first tx
    {7: "EVAL_FALSE"},                             # last input of the last tx
    {2: "SIG_DER"},                                # middle input of a 3-input tx
    {6: "EQUALVERIFY"},                            # second input of a 2-input tx
    {4: "INVALID_STACK_OPERATION"},
    {1: "EQUALVERIFY", 7: "EVAL_FALSE"},           # several failures: the lowest one is reported
    {3: "SIG_DER", 5: "EQUALVERIFY", 6: "INVALID_STACK_OPERATION"},
    {pos: code for pos, code in zip(range(N_CHECKS), ["EVAL_FALSE", "SIG_DER", "EQUALVERIFY",
                                                      "INVALID_STACK_OPERATION"] * 2)},
    {7: "SIG_DER", 0: "INVALID_STACK_OPERATION"},
]


def _case_id(bad: dict[int, str]) -> str:
    return ",".join(f"{p}:{v}" for p, v in sorted(bad.items())) or "valid"


@pytest.mark.parametrize("bad", CASES, ids=_case_id)
def test_queue_matches_inline(chain, bad, workers_always):
    b, blocks, txs = chain
    checks = _checks(_with_bad_inputs(txs, bad), b.wallet.script_pubkey)
    flags = script_flags_for_height(len(blocks) + 1, REGTEST)
    expected = None if not bad else (R.BLOCK_SCRIPT_VERIFY_FLAG_FAILED, bad[min(bad)])
    for threads in THREADS:
        q = ScriptCheckQueue(threads)
        try:
            for _ in range(5):
                assert _outcome(q, checks, flags) == expected, threads
        finally:
            q.close()


def test_lowest_failing_index_wins_under_any_timing(monkeypatch, workers_always):
    """Checks that take random times (sleeping releases the GIL as libsecp256k1 does) and fail
    at random positions: the error is always the lowest failing position's."""
    def fake_check(tx, j, spk, flags, reason, amount, txdata):
        time.sleep(random.random() * 0.0005)
        if spk == b"bad":
            raise ValidationError(reason, str(j))
        if spk == b"bug":
            raise RuntimeError(str(j))

    monkeypatch.setattr(checkqueue, "check_input_script", fake_check)
    rng = random.Random(7)
    q = ScriptCheckQueue(3)
    try:
        for _ in range(150):
            n = rng.randrange(checkqueue.MIN_PARALLEL_CHECKS, 40)
            kinds = [rng.choice((b"ok",) * 8 + (b"bad", b"bug")) for _ in range(n)]
            checks = [(None, j, kinds[j], 0, None) for j in range(n)]
            first = next((j for j in range(n) if kinds[j] != b"ok"), None)
            try:
                q.check(checks, 0)
                got = None
            except (ValidationError, RuntimeError) as e:
                got = (type(e), e.detail if isinstance(e, ValidationError) else str(e))
            if first is None:
                assert got is None
            else:
                want = ValidationError if kinds[first] == b"bad" else RuntimeError
                assert got == (want, str(first))
    finally:
        q.close()


def test_workers_start_lazily_and_stop_at_close(chain, workers_always):
    b, blocks, txs = chain
    flags = script_flags_for_height(len(blocks) + 1, REGTEST)

    def workers():
        return [t for t in threading.enumerate() if t.name.startswith("scriptcheck")]

    before = len(workers())
    inline = ScriptCheckQueue(0)
    inline.check(_checks(txs, b.wallet.script_pubkey), flags)
    assert len(workers()) == before
    q = ScriptCheckQueue(2)
    q.check(_checks(txs[:1], b.wallet.script_pubkey), flags)    # too few checks: inline
    assert len(workers()) == before
    q.check(_checks(txs, b.wallet.script_pubkey), flags)
    assert before < len(workers()) <= before + 2
    q.close()
    assert len(workers()) == before


def test_probe_uses_the_faster_mode(monkeypatch):
    """Each cycle of PROBE_INTERVAL blocks starts with PROBE_BLOCKS blocks per mode, alternating;
    the mode with less wall time per check serves the rest of the cycle. Blocks too small for
    the workers run inline and do not count."""
    now = [0.0]
    cost = {"inline": 1.0, "workers": 3.0}      # seconds a block's checks take in each mode
    used = []
    q = ScriptCheckQueue(2, clock=lambda: now[0])

    def run(mode):
        def fn(checks, flags, reason):
            used.append(mode)
            now[0] += cost[mode] * len(checks)
        return fn

    monkeypatch.setattr(q, "_check_inline", run("inline"))
    monkeypatch.setattr(q, "_check_parallel", run("workers"))
    big, small = [None] * 8, [None] * (checkqueue.MIN_PARALLEL_CHECKS - 1)
    probe, interval = checkqueue.PROBE_BLOCKS, checkqueue.PROBE_INTERVAL

    for _ in range(2 * probe):
        q.check(big, 0)
        q.check(small, 0)
    assert used[0::2] == ["inline", "workers"] * probe and set(used[1::2]) == {"inline"}
    assert not q.use_workers                    # inline was faster
    used.clear()
    for _ in range(interval - 2 * probe):
        q.check(big, 0)
    assert set(used) == {"inline"}
    cost["workers"] = 0.5                       # a core came free
    used.clear()
    for _ in range(interval):
        q.check(big, 0)
    assert used[:2 * probe] == ["inline", "workers"] * probe
    assert q.use_workers and set(used[2 * probe:]) == {"workers"}


def test_default_threads_follow_cpu_count(monkeypatch):
    for cpus, want in ((None, 0), (1, 0), (2, 1), (8, 7), (64, checkqueue.MAX_SCRIPTCHECK_THREADS)):
        monkeypatch.setattr(checkqueue.os, "cpu_count", lambda c=cpus: c)
        assert default_script_check_threads() == want
    with pytest.raises(ValueError):
        ScriptCheckQueue(-1)


# ------------------------------------------------------------------------------ through ChainState
def _block(b: BlockBuilder, name: str, tip: str, txs: list[Tx]):
    b.set_tip(tip)
    fees = sum(1000 for _ in txs)
    return b.next_block(name, txs=txs, fees=fees)


@pytest.mark.parametrize("bad", CASES, ids=_case_id)
def test_chainstate_parallel_matches_inline(chain, bad, workers_always):
    b, blocks, txs = chain
    tip_name = f"p{len(blocks) - 1}"
    name = "blk-" + _case_id(bad)
    blk = b.blocks.get(name) or _block(b, name, tip_name, _with_bad_inputs(txs, bad))
    spent = [txin.prevout for tx in blk.txs[1:] for txin in tx.vin]
    created = [OutPoint(tx.txid, n) for tx in blk.txs for n in range(len(tx.vout))]
    results = []
    for threads in THREADS:
        cs = ChainState(REGTEST, MemoryChainStore(), script_check_threads=threads)
        try:
            for p in blocks:
                assert cs.process_block(p).status == "connected"
            coins_before = cs.coin_count()
            r = cs.process_block(blk)
            results.append((r.status, r.reason, r.error.detail if r.error else None))
            if bad:
                # nothing of the failing block is left: tip, spent coins, new coins, index mark
                assert cs.tip.hash == blocks[-1].hash
                assert cs.coin_count() == coins_before
                assert all(cs.get_coin(po) is not None for po in spent)
                assert all(cs.get_coin(po) is None for po in created)
                assert cs.get_entry(blk.hash).status & BlockStatus.FAILED
                # and the valid block at the same height still connects on top of the old tip
                good = b.blocks.get("blk-valid") or _block(b, "blk-valid", tip_name, txs)
                assert cs.process_block(good).status == "connected"
                assert all(cs.get_coin(po) is None for po in spent)
            else:
                assert cs.tip.hash == blk.hash
                assert all(cs.get_coin(po) is None for po in spent)
        finally:
            cs.close()
    expected = (("connected", None, None) if not bad
                else ("invalid", R.BLOCK_SCRIPT_VERIFY_FLAG_FAILED, bad[min(bad)]))
    assert results == [expected] * len(THREADS)


def test_bad_input_in_a_later_tx_than_a_non_script_failure(workers_always):
    """Script checks run after every other rule of the block, inline or not: a block with a bad
    signature in t0 and a missing input in t2 is rejected for the missing input."""
    wallet = MiniWallet(0)
    b = BlockBuilder(REGTEST, wallet=wallet, spacing=60)
    blocks = [b.next_block(f"p{i}") for i in range(REGTEST.coinbase_maturity + 3)]
    t0 = wallet.create_spend(b.coinbase_utxo("p0"))
    t0 = _with_bad_inputs([t0], {0: "EVAL_FALSE"})[0]
    t1 = wallet.create_spend(b.coinbase_utxo("p1"))
    t2 = Tx(1, (TxIn(OutPoint(b"\x42" * 32, 0), b"", 0xFFFFFFFF),), t1.vout[:1], 0)
    blk = b.next_block("bad", txs=[t0, t1, t2], fees=2000)
    for threads in THREADS:
        cs = ChainState(REGTEST, MemoryChainStore(), script_check_threads=threads)
        try:
            for p in blocks:
                cs.process_block(p)
            assert cs.process_block(blk).reason == R.BAD_TXNS_INPUTS_MISSINGORSPENT
        finally:
            cs.close()
