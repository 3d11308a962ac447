#!/usr/bin/env python3
"""Mempool speed.

- `mempool_accept_per_s`: `Mempool.accept` of signed 1-in/2-out P2PKH txs (all checks: context-
  free, standardness, coins, fees, chain limits, the script with the standard flags, pool
  bookkeeping) beside raw coincurve verification of the same signatures over precomputed
  digests in the same run (interleaved runs, medians). Target >= 0.4x.
- `template_ms`: `build_template` over a pool holding more than a block's worth of txs
  (independent spends plus parent/child chains, so package selection has work to do), in
  CPU milliseconds of this (single-threaded) process.

The chain is a tiny in-memory coins view (the pool's read API), so the figures are the pool's
own cost, not the storage's.

Usage: python contrib/bench/mempool.py [--quick]
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import time

from _common import emit

from tests.framework.miniwallet import MiniWallet, Utxo
from tinynode.mempool import Mempool, PolicyConfig
from tinynode.mining.template import build_template
from tinynode.params import REGTEST
from tinynode.primitives.coin import Coin
from tinynode.primitives.tx import COIN, OutPoint
from tinynode.script.sighash import SIGHASH_ALL, legacy_sighash

NOW = 1_800_000_000


class _Entry:
    def __init__(self, h: int) -> None:
        self.height = h
        self.hash = hashlib.sha256(b"bench entry %d" % h).digest()


class _Chain:
    """The read API the mempool and template builder use, over a dict of coins."""

    params = REGTEST

    def __init__(self, height: int = 500) -> None:
        self.coins: dict[OutPoint, Coin] = {}
        self.tip = _Entry(height)

    def get_coin(self, op: OutPoint) -> Coin | None:
        return self.coins.get(op)

    def median_time_past(self, entry=None) -> int:
        return NOW - 3600

    def get_entry(self, h):
        return self.tip

    def get_block_hash(self, height: int):
        return self.tip.hash

    def next_bits(self, prev, time) -> int:
        return REGTEST.pow_limit_bits


def _funded(chain: _Chain, wallets: list[MiniWallet], n: int, tag: bytes) -> list[Utxo]:
    out = []
    for i in range(n):
        w = wallets[i % len(wallets)]
        op = OutPoint(hashlib.sha256(tag + b"%d" % i).digest(), i % 2)
        chain.coins[op] = Coin(2 * COIN + i, w.script_pubkey, 10, False)
        out.append(Utxo(op, 2 * COIN + i, w.key, 10, False))
    return out


def bench_accept(n: int, runs: int) -> None:
    from coincurve import PublicKey as CPublicKey

    chain = _Chain()
    wallets = [MiniWallet(i) for i in range(16)]
    rounds = []
    for r in range(runs + 1):
        utxos = _funded(chain, wallets, n, b"accept %d " % r)
        txs = [wallets[i % 16].create_spend(u, fee=1000 + i % 500) for i, u in enumerate(utxos)]
        refs = []
        for tx, u in zip(txs, utxos):
            ss = tx.vin[0].script_sig
            der = ss[1:1 + ss[0] - 1]
            refs.append((u.owner.pubkey, der, legacy_sighash(tx, 0, u.script_pubkey, SIGHASH_ALL)))
        rounds.append((txs, refs))

    def accept_rate(txs) -> float:
        pool = Mempool(REGTEST, chain, clock=lambda: NOW, subscribe=False)
        accept = pool.accept
        t = time.perf_counter()
        for tx in txs:
            accept(tx, NOW)
        dt = time.perf_counter() - t
        assert len(pool) == len(txs)
        return len(txs) / dt

    def raw_rate(refs) -> float:
        t = time.perf_counter()
        for sec, der, digest in refs:
            assert CPublicKey(sec).verify(der, digest, hasher=None)
        return len(refs) / (time.perf_counter() - t)

    accept_rate(rounds[0][0])  # warm up
    ours, raw = [], []
    for txs, refs in rounds[1:]:
        raw.append(raw_rate(refs))
        ours.append(accept_rate(txs))
    emit("mempool", "mempool_accept_per_s", statistics.median(ours), "txs/s", target=">= 0.4",
         reference="coincurve PublicKey(sec).verify(DER, digest, hasher=None)",
         reference_value=statistics.median(raw))


def bench_template(n_independent: int, n_chains: int, chain_len: int, runs: int) -> None:
    chain = _Chain()
    wallets = [MiniWallet(100 + i) for i in range(16)]
    pool = Mempool(REGTEST, chain, PolicyConfig(max_size=300_000_000), clock=lambda: NOW, subscribe=False)
    utxos = _funded(chain, wallets, n_independent + n_chains, b"template ")
    for i, u in enumerate(utxos[:n_independent]):
        pool.accept(wallets[i % 16].create_spend(u, fee=1000 + (i * 7919) % 20_000), NOW)
    for i, u in enumerate(utxos[n_independent:]):
        w = wallets[i % 16]
        for tx in w.create_chain(u, chain_len, fee=500 + (i * 104_729) % 15_000):
            pool.accept(tx, NOW)
    times = []
    for _ in range(runs):
        t = time.process_time()      # CPU time: the build is single-threaded; immune to load
        tmpl = build_template(chain, pool, wallets[0].script_pubkey, NOW)
        times.append((time.process_time() - t) * 1000)
    assert tmpl.block.weight <= REGTEST.max_block_weight
    emit("mempool", "template_ms", statistics.median(times), "ms")
    print(f"# pool: {len(pool)} txs, {pool.total_size} bytes; template: {tmpl.tx_count} txs, "
          f"{tmpl.block.size} bytes, fees {tmpl.fees}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer txs and runs (< 1 minute)")
    args = ap.parse_args()
    bench_accept(n=500 if args.quick else 2000, runs=5 if args.quick else 7)
    if args.quick:
        bench_template(n_independent=4000, n_chains=200, chain_len=5, runs=3)
    else:
        bench_template(n_independent=12_000, n_chains=1000, chain_len=10, runs=5)


if __name__ == "__main__":
    main()
