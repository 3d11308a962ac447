#!/usr/bin/env python3
"""Relay benchmark: 20 in-process regtest nodes in a random graph of degree 3–4.

Each round a random node mines a block (timed from the moment its own tip moved) and a random
node accepts a new signed transaction; we measure how long until every node has the block as
its tip, and the transaction in its mempool. Nodes use the default `NetConfig` (the real
trickle interval), each with its own chain writer thread, all on one event loop.

Figures (DESIGN.md §8; no reference implementation, so ratio = value):
- `relay_block_p50_s`, `relay_block_p95_s` (target p95 <= 1 s on regtest);
- `relay_tx_p50_s`, `relay_tx_p95_s`.

Usage: contrib/bench/relay.py [--quick] [--nodes N] [--rounds R]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time

from _common import emit  # noqa: E402  (puts the repo root on sys.path)

from tests.framework.miniwallet import MiniWallet, Utxo  # noqa: E402
from tests.framework.netnodes import NetNode  # noqa: E402
from tinynode.net.peer import NetConfig  # noqa: E402
from tinynode.params import REGTEST  # noqa: E402
from tinynode.primitives.tx import OutPoint  # noqa: E402

BENCH = "relay"


def random_graph(n: int, rng: random.Random) -> set[tuple[int, int]]:
    """A ring plus random chords until every degree is 3 or 4."""
    edges = {(i, (i + 1) % n) for i in range(n)}
    deg = [2] * n
    for _ in range(50 * n):
        low = [i for i in range(n) if deg[i] < 3]
        if not low:
            break
        a = rng.choice(low)
        cands = [b for b in range(n) if b != a and deg[b] < 4
                 and (a, b) not in edges and (b, a) not in edges]
        if not cands:
            continue
        b = rng.choice(cands)
        edges.add((a, b))
        deg[a] += 1
        deg[b] += 1
    return edges


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    k = min(len(s) - 1, max(0, int(round(p / 100 * (len(s) - 1)))))
    return s[k]


async def wait_all(pred, timeout: float = 30.0) -> float:
    t0 = time.perf_counter()
    while True:
        if await pred():
            return time.perf_counter() - t0
        if time.perf_counter() - t0 > timeout:
            raise TimeoutError("relay did not complete")
        await asyncio.sleep(0.002)


async def run(n_nodes: int, rounds: int, seed: int) -> tuple[list[float], list[float]]:
    rng = random.Random(seed)
    cfg = NetConfig()
    nodes = [await NetNode(REGTEST, name=f"n{i}", config=cfg, mempool=True).start()
             for i in range(n_nodes)]
    wallet = MiniWallet(7)
    try:
        # Coins for the tx rounds: mined before the graph exists, synced by it.
        hashes = await nodes[0].mine(rounds, payout=wallet.script_pubkey)
        await nodes[0].mine(REGTEST.coinbase_maturity)
        coins = []
        for i, h in enumerate(hashes):
            blk = await nodes[0].writer.call(nodes[0].writer.chainstate.get_block, h)
            cb = blk.txs[0]
            coins.append(Utxo(OutPoint(cb.txid, 0), cb.vout[0].value, wallet.key, i + 1, True))
        for a, b in sorted(random_graph(n_nodes, rng)):
            await nodes[a].connect(nodes[b])
        target = nodes[0].tip
        await wait_all(lambda: _all_tip(nodes, target), timeout=120)
        block_times: list[float] = []
        tx_times: list[float] = []
        for r in range(rounds):
            miner = rng.choice(nodes)
            [h] = await miner.mine(1)
            block_times.append(await wait_all(lambda: _all_tip(nodes, h)))
            tx = wallet.create_spend(coins[r], fee=10_000)
            src = rng.choice(nodes)
            t0 = time.perf_counter()
            await src.sync.accept_tx(tx)
            await wait_all(lambda: _all_have_tx(nodes, tx.txid))
            tx_times.append(time.perf_counter() - t0)
        return block_times, tx_times
    finally:
        for nd in nodes:
            await nd.stop()


async def _all_tip(nodes, h: bytes) -> bool:
    return all(nd.tip == h for nd in nodes)


async def _all_have_tx(nodes, txid: bytes) -> bool:
    for nd in nodes:
        if not await nd.writer.call(nd.mempool.__contains__, txid):
            return False
    return True


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="20 rounds (the default is 50)")
    ap.add_argument("--nodes", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rounds = args.rounds or (20 if args.quick else 50)
    t = time.perf_counter()
    blocks, txs = asyncio.run(run(args.nodes, rounds, args.seed))
    emit(BENCH, "relay_block_p50_s", statistics.median(blocks), "s")
    emit(BENCH, "relay_block_p95_s", pct(blocks, 95), "s", target="<= 1")
    emit(BENCH, "relay_tx_p50_s", statistics.median(txs), "s")
    emit(BENCH, "relay_tx_p95_s", pct(txs, 95), "s")
    print(f"# {args.nodes} nodes, {rounds} rounds in {time.perf_counter() - t:.1f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
