"""Miner: worker pool, generate(), stale-work handling, a responsive loop and clean shutdown.

These tests drive the Miner against a small fake chain writer (the ChainWriterLike protocol):
blocks must extend the fake tip and meet the template's target.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
from dataclasses import dataclass, replace

import pytest

from tests.framework.wait import wait_until
from tinynode.mining.miner import Miner, MiningError
from tinynode.mining.template import BLOCK_VERSION, BlockTemplate, make_coinbase
from tinynode.mining.worker import grind
from tinynode.params import REGTEST
from tinynode.primitives.block import Block, BlockHeader, merkle_root, target_to_bits

PAYOUT = bytes.fromhex("76a914") + bytes(20) + bytes.fromhex("88ac")
HARD_TARGET = 1  # never met: keeps workers grinding


def slow_grind(header76: bytes, target: int, nonce_start: int, count: int) -> int | None:
    """A grind that takes ~0.3 s per chunk, so a tip change lands while a chunk is in flight."""
    time.sleep(0.3)
    return grind(header76, target, nonce_start, count)


@dataclass(frozen=True)
class Snapshot:
    tip_hash: bytes
    height: int


class FakeWriter:
    """Holds a chain of blocks; `submit_block` accepts only blocks on the tip that meet their target."""

    def __init__(self, target: int = REGTEST.pow_limit) -> None:
        self.blocks: list[Block] = [REGTEST.genesis]
        self.targets: dict[int, int] = {}  # height -> target for templates
        self.default_target = target
        self.subscribers = []
        self.submitted: list[Block] = []
        self.refused: list[Block] = []

    @property
    def snapshot(self) -> Snapshot:
        return Snapshot(self.blocks[-1].hash, len(self.blocks) - 1)

    async def call(self, fn, *args):
        return await asyncio.to_thread(fn, *args)

    async def submit_block(self, block: Block):
        self.submitted.append(block)
        target = block.header.target
        if block.header.prev_hash != self.blocks[-1].hash or int.from_bytes(block.hash, "little") > target:
            self.refused.append(block)
            raise MiningError("not on tip")
        self.blocks.append(block)
        self._notify()

    def subscribe_async(self, callback):
        self.subscribers.append(callback)
        return lambda: self.subscribers.remove(callback)

    def _notify(self) -> None:
        for cb in list(self.subscribers):
            cb(("tip", self.blocks[-1].hash))

    def extend_externally(self) -> Block:
        """Another node's block arrives: a new tip."""
        height = len(self.blocks)
        cb = make_coinbase(height, 50 * 10**8, b"\x51", 99)
        root, _ = merkle_root([cb.txid])
        h = BlockHeader(BLOCK_VERSION, self.blocks[-1].hash, root, 1_700_000_000 + height, 0x207FFFFF, 0)
        nonce = grind(h.serialize()[:76], REGTEST.pow_limit, 0, 1000)
        block = Block(replace(h, nonce=nonce), (cb,))
        self.blocks.append(block)
        self._notify()
        return block

    def template(self, payout: bytes, now: int, extranonce: int) -> BlockTemplate:
        tip = self.blocks[-1]
        height = len(self.blocks)
        target = self.targets.get(height, self.default_target)
        cb = make_coinbase(height, 50 * 10**8, payout, extranonce)
        root, _ = merkle_root([cb.txid])
        bits = target_to_bits(target) if target > 1 else 0x03000001
        header = BlockHeader(BLOCK_VERSION, tip.hash, root, 1_700_000_000 + height, bits, 0)
        return BlockTemplate(Block(header, (cb,)), height, 0, target, 1, extranonce, payout)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as f:
            return not any(line.startswith("State:") and "Z" in line.split()[1] for line in f)
    except FileNotFoundError:
        return False


async def _assert_no_children(pids: list[int]) -> None:
    assert pids
    await wait_until(lambda: not any(_alive(p) for p in pids), timeout=10,
                     message=lambda: f"worker processes still alive: {[p for p in pids if _alive(p)]}")
    assert not [c for c in multiprocessing.active_children() if c.pid in pids]


async def test_generate_mines_regtest_blocks_and_stops_cleanly():
    writer = FakeWriter()
    miner = Miner(writer, REGTEST, workers=2, template_fn=writer.template)
    await miner.start()
    try:
        hashes = await miner.generate(5, PAYOUT)
        pids = miner.worker_pids()
    finally:
        await miner.stop()
    assert len(hashes) == 5
    assert [b.hash for b in writer.blocks[1:]] == hashes
    for height, block in enumerate(writer.blocks[1:], start=1):
        assert block.header.check_pow(REGTEST.pow_limit)
        assert block.txs[0].vout[0].script_pubkey == PAYOUT
        assert block.txs[0].vin[0].script_sig[0] == 0x50 + height  # OP_1..OP_5
    assert writer.refused == []
    assert miner.blocks_found == 5
    await _assert_no_children(pids)


async def test_generate_without_start_and_zero_blocks():
    writer = FakeWriter()
    miner = Miner(writer, REGTEST, workers=1, template_fn=writer.template)
    try:
        assert await miner.generate(0, PAYOUT) == []
        assert len(await miner.generate(2, PAYOUT)) == 2
        pids = miner.worker_pids()
    finally:
        await miner.stop()
    await _assert_no_children(pids)


async def test_extranonce_rolls_when_nonce_space_is_used_up():
    writer = FakeWriter(target=REGTEST.pow_limit >> 3)  # 1 in 16 hashes
    miner = Miner(writer, REGTEST, workers=1, template_fn=writer.template, nonce_space=2,
                  initial_chunk=1)
    try:
        await miner.generate(6, PAYOUT)
    finally:
        await miner.stop()
    # The scriptSig is <height> <extranonce>: some block needed a rolled extranonce.
    extranonces = [b.txs[0].vin[0].script_sig[1:] for b in writer.blocks[1:]]
    assert any(e != b"\x00" for e in extranonces)
    for b in writer.blocks[1:]:
        nonce = b.header.nonce
        assert nonce < 2


def _run_delay() -> float:
    """Seconds this thread has spent runnable but waiting for a CPU (Linux schedstat); 0.0
    where unavailable (then every delay is charged to us)."""
    try:
        with open("/proc/thread-self/schedstat") as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


async def test_event_loop_stays_responsive_while_workers_grind():
    """A 10 ms periodic callback is never more than 50 ms late because of the miner while a
    chunk is being ground (the first callback is skipped).

    On a loaded 2-core machine the OS alone sometimes leaves any process waiting 50+ ms for a
    core (measured without a miner). That wait is visible in the loop thread's schedstat
    run-delay, so it is subtracted: what remains is time the loop was blocked by this process
    (its own code, a synchronous wait, GIL held by our other threads). Plainly measured, 95%
    of callbacks must also be under 50 ms late."""
    writer = FakeWriter(target=HARD_TARGET)
    miner = Miner(writer, REGTEST, payout_script=PAYOUT, workers=1, template_fn=writer.template,
                  chunk_seconds=0.25)
    lateness: list[float] = []
    ours: list[float] = []
    loop = asyncio.get_running_loop()
    expected = 0.0
    last_delay = 0.0
    ticks = 0
    done = False

    def tick() -> None:
        nonlocal expected, ticks, last_delay
        now = loop.time()
        delay = _run_delay()
        ticks += 1
        if ticks > 1 and miner._inflight:
            late = now - expected
            lateness.append(late)
            ours.append(max(0.0, late - (delay - last_delay)))
        expected = now + 0.01
        last_delay = delay
        if not done:
            loop.call_later(0.01, tick)

    await miner.start()
    try:
        await wait_until(lambda: miner.hashes > 0, timeout=20)  # the worker is up and grinding
        expected = loop.time() + 0.01
        last_delay = _run_delay()
        loop.call_later(0.01, tick)
        await wait_until(lambda: len(lateness) >= 150, timeout=30)
        done = True
        assert miner.running and miner.chunks_sent >= 2
        pids = miner.worker_pids()
    finally:
        done = True
        await miner.stop()
    late_sorted = sorted(lateness)
    assert max(ours) < 0.050, f"the event loop was blocked {max(ours) * 1000:.1f} ms by this process"
    p95 = late_sorted[int(len(late_sorted) * 0.95)]
    assert p95 < 0.050, f"95th percentile lateness {p95 * 1000:.1f} ms (max {late_sorted[-1] * 1000:.1f})"
    await _assert_no_children(pids)


async def test_tip_change_drops_stale_work_and_it_is_never_submitted():
    writer = FakeWriter()
    miner = Miner(writer, REGTEST, payout_script=PAYOUT, workers=1, template_fn=writer.template,
                  grind_fn=slow_grind)
    await miner.start()
    try:
        await wait_until(lambda: miner.chunks_sent >= 1, timeout=20)
        stale_tip = writer.blocks[-1].hash
        writer.extend_externally()                     # a chunk for the stale tip is in flight
        new_tip = writer.blocks[-1].hash
        await wait_until(lambda: any(b.header.prev_hash == new_tip for b in writer.submitted), timeout=20)
        assert miner.stale_dropped >= 1
    finally:
        await miner.stop()
    assert all(b.header.prev_hash != stale_tip for b in writer.submitted)
    assert writer.refused == []


async def test_generate_preempts_continuous_mining():
    writer = FakeWriter()
    writer.targets[1] = HARD_TARGET
    miner = Miner(writer, REGTEST, payout_script=PAYOUT, workers=1, template_fn=writer.template)
    await miner.start()
    try:
        await wait_until(lambda: miner.chunks_sent >= 1, timeout=20)
        other = b"\x52"
        writer.targets[1] = REGTEST.pow_limit
        hashes = await asyncio.wait_for(miner.generate(1, other), 20)
        assert writer.blocks[1].hash == hashes[0]
        assert writer.blocks[1].txs[0].vout[0].script_pubkey == other
    finally:
        await miner.stop()
    assert not miner.running


async def test_stop_while_grinding_hard_target_leaves_no_children():
    writer = FakeWriter(target=HARD_TARGET)
    miner = Miner(writer, REGTEST, payout_script=PAYOUT, workers=2, template_fn=writer.template)
    async with miner:
        await wait_until(lambda: miner.chunks_sent >= 2, timeout=20)
        pids = miner.worker_pids()
    await _assert_no_children(pids)
    assert writer.submitted == []


def test_rejects_bad_worker_count():
    with pytest.raises(ValueError):
        Miner(FakeWriter(), REGTEST, workers=0)


async def test_a_killed_worker_is_replaced_and_mining_goes_on():
    import signal

    writer = FakeWriter(target=HARD_TARGET)
    miner = Miner(writer, REGTEST, payout_script=PAYOUT, workers=1, template_fn=writer.template,
                  chunk_seconds=0.1)
    async with miner:
        await wait_until(lambda: miner.worker_pids(), timeout=20)
        (victim,) = miner.worker_pids()
        os.kill(victim, signal.SIGKILL)              # a worker this test's miner started
        await wait_until(lambda: miner.worker_pids() and miner.worker_pids() != [victim], timeout=20)
        sent = miner.chunks_sent
        await wait_until(lambda: miner.chunks_sent > sent + 2, timeout=20)
        assert miner.running
        pids = miner.worker_pids()
    await _assert_no_children(pids + [victim])


async def test_template_is_refreshed_for_new_time_and_txs():
    writer = FakeWriter(target=HARD_TARGET)
    built: list[int] = []

    def template(payout, now, extranonce):
        built.append(extranonce)
        return writer.template(payout, now, extranonce)

    miner = Miner(writer, REGTEST, payout_script=PAYOUT, workers=1, template_fn=template,
                  template_refresh=0.2, chunk_seconds=0.05)
    async with miner:
        await wait_until(lambda: len(built) >= 3, timeout=20)
    # Each refresh rolls the extranonce, so a refreshed template never repeats old work.
    assert built[:3] == [0, 1, 2]
    assert writer.submitted == []


async def test_generate_never_submits_work_left_over_from_continuous_mining():
    writer = FakeWriter()
    miner = Miner(writer, REGTEST, payout_script=PAYOUT, workers=1, template_fn=writer.template,
                  grind_fn=slow_grind)
    await miner.start()
    try:
        await wait_until(lambda: miner.chunks_sent >= 1, timeout=20)   # a solvable chunk in flight
        other = b"\x52"
        hashes = await asyncio.wait_for(miner.generate(2, other), 30)
    finally:
        await miner.stop()
    by_hash = {b.hash: b for b in writer.blocks}
    assert all(by_hash[h].txs[0].vout[0].script_pubkey == other for h in hashes)
    assert writer.refused == []


@dataclass(frozen=True)
class SyncSnapshot:
    tip_hash: bytes
    height: int
    best_header_height: int


async def test_continuous_mining_waits_while_syncing_but_not_forever():
    best = {"h": 50}

    class SyncingWriter(FakeWriter):
        @property
        def snapshot(self):
            s = FakeWriter.snapshot.fget(self)
            return SyncSnapshot(s.tip_hash, s.height, best["h"])

    writer = SyncingWriter()
    miner = Miner(writer, REGTEST, payout_script=PAYOUT, workers=1, template_fn=writer.template,
                  sync_pause_limit=60)
    async with miner:
        await wait_until(lambda: miner._sync_wait is not None, timeout=20)   # paused
        assert miner.chunks_sent == 0 and len(writer.blocks) == 1
        best["h"] = 0                                                         # synced
        await wait_until(lambda: len(writer.blocks) > 1, timeout=20)
    # Headers far ahead but no tip progress: mining resumes after the limit.
    best["h"] = 10_000
    writer2 = SyncingWriter()
    miner = Miner(writer2, REGTEST, payout_script=PAYOUT, workers=1, template_fn=writer2.template,
                  sync_pause_limit=0.3)
    async with miner:
        await wait_until(lambda: len(writer2.blocks) > 1, timeout=20)
    # generate() is on demand and never waits for sync.
    miner = Miner(writer2, REGTEST, workers=1, template_fn=writer2.template, sync_pause_limit=60)
    try:
        assert len(await asyncio.wait_for(miner.generate(1, PAYOUT), 20)) == 1
    finally:
        await miner.stop()
    assert writer.refused == [] and writer2.refused == []


_ORPHAN_SCRIPT = r"""
import asyncio, sys
from dataclasses import dataclass
from tinynode.mining.miner import Miner
from tinynode.mining.template import BLOCK_VERSION, BlockTemplate, make_coinbase
from tinynode.params import REGTEST
from tinynode.primitives.block import Block, BlockHeader, merkle_root
from tests.framework.wait import wait_until

@dataclass(frozen=True)
class Snap:
    tip_hash: bytes
    height: int

class W:
    snapshot = Snap(REGTEST.genesis.hash, 0)
    async def call(self, fn, *a):
        return fn(*a)
    async def submit_block(self, b):
        raise AssertionError
    def subscribe_async(self, cb):
        return None

def tmpl(payout, now, extranonce):
    cb = make_coinbase(1, 50 * 10**8, payout, extranonce)
    root, _ = merkle_root([cb.txid])
    h = BlockHeader(BLOCK_VERSION, REGTEST.genesis.hash, root, now, 0x03000001, 0)
    return BlockTemplate(Block(h, (cb,)), 1, 0, 1, 1, extranonce, payout)

async def main():
    m = Miner(W(), REGTEST, payout_script=b"\x51", workers=2, template_fn=tmpl)
    await m.start()
    await wait_until(lambda: len(m.worker_pids()) >= 2 and m.chunks_sent >= 2, 60)
    print(" ".join(map(str, m.worker_pids())), flush=True)
    await asyncio.Event().wait()  # until the test kills this process

asyncio.run(main())
"""


def test_workers_exit_when_the_node_process_is_killed():
    import signal
    import subprocess
    import sys

    from tests.framework.wait import wait_until_sync

    proc = subprocess.Popen([sys.executable, "-c", _ORPHAN_SCRIPT], stdout=subprocess.PIPE,
                            cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    try:
        line = proc.stdout.readline().decode()
        pids = [int(p) for p in line.split()]
        assert len(pids) == 2 and all(_alive(p) for p in pids)
    finally:
        proc.send_signal(signal.SIGKILL)     # the "node" dies without shutting its pool down
        proc.wait(10)
    wait_until_sync(lambda: not any(_alive(p) for p in pids), timeout=15,
                    message="mining workers outlived their node")
