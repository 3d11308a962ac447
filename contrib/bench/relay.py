#!/usr/bin/env python3
"""Relay benchmark: 20 in-process regtest nodes in a random graph of degree 3–4 on 127.0.0.1.

Setup (untimed): 20 `tests.framework.netnodes.NetNode`s (real `ChainState` on a memory store,
`Mempool`, `SyncManager`, `ConnMan` on 127.0.0.1:0, the default `NetConfig`: real inv trickle
interval and timeouts), all on one event loop, each with its own chain writer thread. Node 0
mines R coinbases to a test wallet plus 100 blocks to mature them; the nodes are then linked
into a random connected graph (a ring over a random permutation plus random chords until every
degree is 3 or 4) and wait until all share node 0's tip.

Each round:
- block: a random node mines a block (on its writer thread); the clock starts when its own tip
  has moved and stops when every node's tip is that block;
- tx: a random node accepts a new signed P2PKH spend from RPC-like input
  (`SyncManager.accept_tx`, which relays it); the clock starts before the accept and stops when
  the tx is in every node's mempool.
Arrival is watched without loading the nodes: tips through each writer's snapshot, mempools
through `Mempool.sequence` (a plain int read) with a writer-thread membership check only when
it has changed. Every wait has a deadline; every node is stopped at the end.

Figures (DESIGN.md §8; no reference implementation, so ratio = value):
- `relay_block_p50_s`, `relay_block_p95_s` (target p95 <= 1 s on regtest);
- `relay_tx_p50_s`, `relay_tx_p95_s` (no target in the issue; tx announcements are trickled
  every `NetConfig.relay_tick` per peer, so a few ticks per hop are expected).
All nodes share one Python process (one GIL), so these are upper bounds on what separate
processes would see.

Usage: contrib/bench/relay.py [--quick] [--nodes N] [--rounds R] [--seed S]
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
POLL_S = 0.002
ROUND_TIMEOUT_S = 30.0
SETUP_TIMEOUT_S = 120.0


def random_graph(n: int, rng: random.Random, lo: int = 3, hi: int = 4) -> set[tuple[int, int]]:
    """A connected random graph on n nodes with every degree in [lo, hi] (clamped to n - 1):
    a ring over a random permutation plus random chords; redrawn until the degrees fit."""
    lo, hi = min(lo, n - 1), min(hi, n - 1)
    if n < 2:
        return set()
    for _ in range(1000):
        order = list(range(n))
        rng.shuffle(order)
        edges = set()
        deg = [0] * n
        ring = [(order[i], order[(i + 1) % n]) for i in range(n)] if n > 2 else [(order[0], order[1])]
        for a, b in ring:
            edges.add((a, b))
            deg[a] += 1
            deg[b] += 1
        for _ in range(20 * n):
            low = [i for i in range(n) if deg[i] < lo]
            if not low:
                break
            a = rng.choice(low)
            cands = [b for b in range(n) if b != a and deg[b] < hi
                     and (a, b) not in edges and (b, a) not in edges]
            if not cands:
                break
            b = rng.choice(cands)
            edges.add((a, b))
            deg[a] += 1
            deg[b] += 1
        if all(lo <= d <= hi for d in deg):
            return edges
    raise RuntimeError(f"no graph of degree {lo}-{hi} on {n} nodes")


def diameter(n: int, edges: set[tuple[int, int]]) -> int:
    adj: dict[int, list[int]] = {i: [] for i in range(n)}
    for a, b in edges:
        adj[a].append(b)
        adj[b].append(a)
    worst = 0
    for s in range(n):
        dist = {s: 0}
        frontier = [s]
        while frontier:
            nxt = []
            for x in frontier:
                for y in adj[x]:
                    if y not in dist:
                        dist[y] = dist[x] + 1
                        nxt.append(y)
            frontier = nxt
        worst = max(worst, max(dist.values()))
    return worst


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p95 of 20 values is the 19th smallest)."""
    s = sorted(values)
    k = min(len(s) - 1, max(0, -(-len(s) * p // 100) - 1))
    return s[int(k)]


async def until(pred, timeout: float, what: str) -> None:
    deadline = time.perf_counter() + timeout
    while not pred():
        if time.perf_counter() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(POLL_S)


async def time_block(nodes: list[NetNode], h: bytes, t0: float) -> float:
    """Seconds from t0 until every node's tip is `h` (last arrival)."""
    pending = {i for i, nd in enumerate(nodes) if nd.tip != h}
    deadline = t0 + ROUND_TIMEOUT_S
    while pending:
        if time.perf_counter() > deadline:
            raise TimeoutError(f"block not relayed to nodes {sorted(pending)}: "
                               + " ".join(repr(nodes[i]) for i in sorted(pending)))
        await asyncio.sleep(POLL_S)
        pending = {i for i in pending if nodes[i].tip != h}
    return time.perf_counter() - t0


async def time_tx(nodes: list[NetNode], txid: bytes, t0: float, seqs: list[int]) -> float:
    """Seconds from t0 until `txid` is in every node's mempool. A node's pool is asked (on its
    writer thread) only when its `sequence` moved since the last look."""
    pending = set(range(len(nodes)))
    deadline = t0 + ROUND_TIMEOUT_S
    while True:
        for i in list(pending):
            pool = nodes[i].mempool
            seq = pool.sequence
            if seq != seqs[i]:
                seqs[i] = seq
                if await nodes[i].writer.call(pool.__contains__, txid):
                    pending.discard(i)
        if not pending:
            return time.perf_counter() - t0
        if time.perf_counter() > deadline:
            raise TimeoutError(f"tx not relayed to nodes {sorted(pending)}")
        await asyncio.sleep(POLL_S)


async def run(n_nodes: int, rounds: int, seed: int) -> tuple[list[float], list[float], int]:
    rng = random.Random(seed)
    cfg = NetConfig()
    nodes: list[NetNode] = []
    wallet = MiniWallet(7)
    try:
        for i in range(n_nodes):
            nodes.append(await NetNode(REGTEST, name=f"n{i}", config=cfg, mempool=True).start())
        # Coins for the tx rounds, mined before the graph exists and synced through it.
        hashes = await nodes[0].mine(rounds, payout=wallet.script_pubkey)
        await nodes[0].mine(REGTEST.coinbase_maturity)
        coins = []
        for i, h in enumerate(hashes):
            blk = await nodes[0].writer.call(nodes[0].writer.chainstate.get_block, h)
            cb = blk.txs[0]
            coins.append(Utxo(OutPoint(cb.txid, 0), cb.vout[0].value, wallet.key, i + 1, True))
        edges = random_graph(n_nodes, rng)
        for a, b in sorted(edges):
            await nodes[a].connect(nodes[b])
        top = nodes[0].tip
        await until(lambda: all(nd.tip == top for nd in nodes), SETUP_TIMEOUT_S,
                    "initial sync: " + " ".join(repr(nd) for nd in nodes))
        block_times: list[float] = []
        tx_times: list[float] = []
        for r in range(rounds):
            miner = rng.choice(nodes)
            [h] = await miner.mine(1)                 # returns once the miner's tip is h
            block_times.append(await time_block(nodes, h, time.perf_counter()))
            # a pool's sequence read now; the tx's arrival bumps it later (exact membership
            # is then checked on that node's writer thread)
            seqs = [nd.mempool.sequence for nd in nodes]
            tx = wallet.create_spend(coins[r], fee=10_000)
            src = rng.choice(nodes)
            t0 = time.perf_counter()
            await src.sync.accept_tx(tx)
            tx_times.append(await time_tx(nodes, tx.txid, t0, seqs))
        return block_times, tx_times, diameter(n_nodes, edges)
    finally:
        for nd in nodes:
            try:
                await nd.stop()
            except Exception as e:  # keep stopping the others
                print(f"# stopping {nd.name}: {e!r}", file=sys.stderr)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="20 rounds (the default is 50)")
    ap.add_argument("--nodes", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rounds = args.rounds or (20 if args.quick else 50)
    t = time.perf_counter()
    blocks, txs, diam = asyncio.run(run(args.nodes, rounds, args.seed))
    emit(BENCH, "relay_block_p50_s", statistics.median(blocks), "s")
    emit(BENCH, "relay_block_p95_s", pct(blocks, 95), "s", target="<= 1")
    emit(BENCH, "relay_tx_p50_s", statistics.median(txs), "s")
    emit(BENCH, "relay_tx_p95_s", pct(txs, 95), "s")
    print(f"# {args.nodes} nodes (graph diameter {diam}), {rounds} rounds in {time.perf_counter() - t:.1f}s; "
          f"block max {max(blocks):.3f}s, tx max {max(txs):.3f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
