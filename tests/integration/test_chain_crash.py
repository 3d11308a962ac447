"""Crash safety: SIGKILL a process connecting blocks into SQLite at random moments.

The blocks (built here, written to a file) are a regtest chain with signed spends and a side
branch that overtakes it (one reorg):

    genesis -> c1 .. c110 -> c111 .. c118       (spends from c101 on; c114 -> bad*, which
                                                 claims 1 satoshi too much and is refused)
                        \\-> d1 .. d10           (d1, d3, .. spend what c111, c113, .. spend;
                                                 d9 overtakes: a reorg of 8 blocks)

A child process (`tests/framework/crash_child.py`) delivers them in that order into a
`SQLiteChainStore`. The test kills it (only the PIDs it started) at random moments, at least
20 times, with the default commit batching or a commit every 1 or 3 activation steps (more
commit points to land in). After every kill the store is reopened in this process and must be
consistent: its tip is a block we built and its UTXO set hash equals the one a memory node has
at that tip.
Restarting the child continues the work; every round ends at the same final tip and UTXO hash.
"""

from __future__ import annotations

import os
import random
import selectors
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.framework.blockbuilder import BlockBuilder
from tinynode.chain.chainstate import ChainState
from tinynode.consensus.errors import RejectReason as R
from tinynode.params import REGTEST
from tinynode.storage.memory import MemoryChainStore
from tinynode.storage.sqlite import SQLiteChainStore

ROOT = Path(__file__).resolve().parents[2]
MIN_KILLS = 20
DEADLINE_S = 50.0

pytestmark = pytest.mark.slow


def _build_blocks() -> tuple[BlockBuilder, list]:
    b = BlockBuilder(REGTEST, spacing=60)
    order = []
    for i in range(1, 111):
        order.append(b.next_block(f"c{i}", spend=b.get_spendable_output() if i > 100 else None))
        b.save_spendable_output()
    late = [b.get_spendable_output() for _ in range(8)]      # coinbases of c11..c18
    for i in range(111, 119):
        order.append(b.next_block(f"c{i}", spend=late[i - 111]))
        if i == 114:            # an invalid child of the tip: its connect fails, c114 stays tip
            order.append(b.next_block("bad", additional_coinbase_value=1))
            b.set_tip("c114")
    b.set_tip("c110")
    for i in range(1, 11):     # d1, d3, .. spend the same coins as c111, c113, .. (conflicts)
        order.append(b.next_block(f"d{i}", spend=late[i - 1] if i % 2 and i <= 8 else None))
    return b, order


def _reference(b: BlockBuilder, order: list) -> tuple[dict[bytes, bytes], bytes, bytes]:
    """tip hash -> utxo_set_hash after each delivery in a memory node; final tip and hash."""
    cs = ChainState(REGTEST, MemoryChainStore(), now=lambda: b.now)
    ref = {cs.tip.hash: cs.utxo_set_hash()}
    for blk in order:
        res = cs.process_block(blk)
        if blk.hash == b["bad"].hash:
            assert res.error is not None and res.error.reason == R.BAD_CB_AMOUNT, res
        else:
            assert res.error is None, res
        ref[cs.tip.hash] = cs.utxo_set_hash()
    final = (cs.tip.hash, cs.utxo_set_hash())
    cs.close()
    assert final[0] == b["d10"].hash
    return ref, final[0], final[1]


def _utxo_hash_at(b: BlockBuilder, tip_hash: bytes, cache: dict[bytes, bytes]) -> bytes:
    if tip_hash not in cache:
        cs = ChainState(REGTEST, MemoryChainStore(), now=lambda: b.now)
        for blk in b.chain_to(b.name_of(tip_hash)):
            assert cs.process_block(blk).error is None
        cache[tip_hash] = cs.utxo_set_hash()
        cs.close()
    return cache[tip_hash]


def _read_line(proc: subprocess.Popen, timeout: float) -> str | None:
    """One stdout line of `proc`, or None if none arrives within `timeout` (bounded wait)."""
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    try:
        if not sel.select(timeout):
            return None
        return proc.stdout.readline().decode().strip()
    finally:
        sel.close()


def _check_child_output(out: str, b: BlockBuilder) -> None:
    """Only the planted block may be refused, as bad-cb-amount (or, once its FAILED mark was
    committed before a kill, as duplicate-invalid). A kill can cut the last line short: only
    whole (newline-terminated) lines are read."""
    for line in out.split("\n")[:-1]:
        if line.startswith("INVALID"):
            _, h, reason = line.split()
            assert h == b["bad"].hash_hex and reason in (R.BAD_CB_AMOUNT.value, R.DUPLICATE_INVALID.value), line


def _check_store(db: Path, b: BlockBuilder, cache: dict[bytes, bytes]) -> int:
    """Reopen the store: the tip must be one of our blocks with exactly its UTXO set, and the
    active chain's blocks and undo data must read back from the block files."""
    cs = ChainState(REGTEST, SQLiteChainStore(db), now=lambda: b.now)
    try:
        tip = cs.tip
        assert tip.hash in b.by_hash, f"unknown tip {tip.hash_hex}"
        assert tip.height == b.heights[tip.hash]
        assert cs.get_block_hash(tip.height) == tip.hash
        assert cs.utxo_set_hash() == _utxo_hash_at(b, tip.hash, cache), f"inconsistent at height {tip.height}"
        # every stored block of the active chain reads back from the block files, byte for byte,
        # and every connected one has its undo data (a position is committed only after its bytes)
        for height in range(1, tip.height + 1):
            h = cs.get_block_hash(height)
            assert cs.store.get_block(h) == b.by_hash[h].serialize(), f"block {height} unreadable"
            assert cs.store.get_undo(h) is not None, f"undo of block {height} unreadable"
        bad = cs.get_entry(b["bad"].hash)
        assert bad is None or bad.failed or not bad.have_data, bad   # never valid, whatever was committed
        return tip.height
    finally:
        cs.close()


def test_sigkill_at_random_moments_leaves_a_consistent_store(tmp_path):
    b, order = _build_blocks()
    ref, final_tip, final_hash = _reference(b, order)
    blocks_file = tmp_path / "blocks.bin"
    blocks_file.write_bytes(b"".join(blk.serialize() for blk in order))
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    rng = random.Random(2459)
    err_log = tmp_path / "child-stderr.log"

    def child_errors() -> str:
        return err_log.read_text(errors="replace")[-2000:] if err_log.exists() else ""
    cmd = [sys.executable, "-m", "tests.framework.crash_child"]

    def start(db: Path, flush_blocks: int | None = None, dbcache: int | None = None) -> subprocess.Popen:
        extra = [] if flush_blocks is None else ["regtest", str(flush_blocks)]
        if dbcache is not None:
            extra = ["regtest", str(flush_blocks or 1), str(dbcache)]
        with open(err_log, "ab") as err_file:      # a file, so a chatty child never blocks on a pipe
            return subprocess.Popen(cmd + [str(db), str(blocks_file)] + extra, cwd=ROOT, env=env,
                                    stdout=subprocess.PIPE, stderr=err_file)

    # One uninterrupted run: how long connecting takes, and the final state.
    db = tmp_path / "full.sqlite"
    proc = start(db)
    try:
        assert _read_line(proc, 30) is not None
        t0 = time.monotonic()
        out, _ = proc.communicate(timeout=60)
        full_run = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 0, child_errors()
    _check_child_output(out.decode(), b)
    assert f"INVALID {b['bad'].hash_hex} bad-cb-amount" in out.decode()
    done = out.decode().splitlines()[-1].split()
    assert done[0] == "DONE" and bytes.fromhex(done[2]) == final_hash

    kills = rounds = 0
    heights: list[int] = []
    deadline = time.monotonic() + DEADLINE_S
    rnd_db = None
    cache = dict(ref)
    while kills < MIN_KILLS or rounds == 0:
        assert time.monotonic() < deadline, f"only {kills} kills / {rounds} rounds before the deadline"
        if rnd_db is None:
            rnd_db = tmp_path / f"round{rounds}.sqlite"
        # default batching, or commit every 1 / 3 steps; the default coins cache (coins written
        # only at the end) or one of ~10 coins (over budget: coins written after most steps)
        proc = start(rnd_db, rng.choice((None, 1, 3)), rng.choice((None, 3000)))
        try:
            line = _read_line(proc, 30)
            assert line and line.startswith("READY"), line
            delay = rng.uniform(0.0, full_run)
            try:
                proc.wait(timeout=delay)        # bounded: returns early if the child finishes
            except subprocess.TimeoutExpired:
                proc.kill()                     # SIGKILL, this Popen's own PID only
                proc.wait(10)
                kills += 1
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        rest = proc.stdout.read().decode()
        proc.stdout.close()
        _check_child_output(rest, b)
        heights.append(_check_store(rnd_db, b, cache))
        if proc.returncode == 0:
            assert f"DONE {final_tip[::-1].hex()} {final_hash.hex()}" in rest, rest
            rounds += 1
            rnd_db = None
        else:
            assert proc.returncode == -9, (proc.returncode, rest, child_errors())

    # finish the last interrupted round: continuing ends at the same final state
    if rnd_db is not None:
        proc = start(rnd_db)
        try:
            out, _ = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        assert proc.returncode == 0, child_errors()
        _check_child_output(out.decode(), b)
        assert f"DONE {final_tip[::-1].hex()} {final_hash.hex()}" in out.decode()
    assert kills >= MIN_KILLS
    assert len(set(heights)) > 3, f"kills did not land at different heights: {sorted(set(heights))}"
