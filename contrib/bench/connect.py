#!/usr/bin/env python3
"""Block connect benchmark: signed P2PKH blocks into a fresh SQLite store, full script checks.

Builds (untimed, cached in the temp dir) a regtest chain: 100 coinbase-only blocks so the first
coinbases mature, then N blocks of >= 20 signed 1-in/2-out P2PKH spends each (the UTXO set grows
by ~20 coins a block). Then connects the whole chain into a fresh `SQLiteChainStore` with
`ChainState(script_checks=True)`, timing every `process_block`.

Figures (DESIGN.md §8 lines via `_common.emit`):
- `connect_inputs_per_s`: inputs connected per second over the spend blocks, with reference
  = raw coincurve ECDSA verifies per second in this run (pubkey parse + verify over the chain's
  own signatures; target ratio >= 0.5).
- `connect_growth`: median per-block connect time over the top 10% of spend blocks / the bottom
  10% (target <= 1.3: connect cost must not grow with height / UTXO-set size).
- `connect_inputs_per_wall_s`: the same inputs per wall-clock second (informational, no target):
  what the parallel script checks (`--script-threads`, default one worker per extra core) buy
  when a core is free; on a loaded machine it measures the load.

The ChainState is built with the chain writer's sync commit policy (`ChainWriter.SYNC_FLUSH_BLOCKS`
steps / `SYNC_FLUSH_BYTES` of block bodies / `SYNC_FLUSH_SECONDS` per store transaction), as the
node connects blocks; `--flush-blocks N` / `--flush-bytes B` change it (e.g. 1: one commit per
block). `--blocks N --stream` reads the first N blocks of a longer cached chain file if there is
one (the chain is the same), e.g. 20,000 blocks of the cached 100,000. The final `flush()` is timed and
counted in the inputs/s total; the growth medians are per-block costs (a block that happens to
carry a flush is an outlier the median ignores).

The first two figures use process CPU time (user + system of all threads, `time.process_time`)
for the connect and the reference alike, so other load on the machine does not skew them (the
script check workers' GIL hand-offs count against them).

- `connect_restart_s`: the median of `--restarts` (3) daemon restarts on the chain just
  connected (shut down cleanly): seconds from starting `python -m tinynode` until its RPC
  answers `getblockcount` with the chain's height (target <= 2 s).

Before timing, the bench's own pre-built chain is frozen out of Python's cyclic GC (`gc.freeze`:
a node holds no such chain; `--no-gc-freeze` keeps it in); stderr shows the GC's CPU time.
`--script-mode inline|threads|processes|auto` is how the script checks run (the daemon's
`--scriptcheck-mode`, chain/checkqueue.py); in "processes" the worker's CPU is not in
`connect_inputs_per_s` (compare modes by `connect_inputs_per_wall_s`).

`--dbcache MiB` is the coins cache's memory budget (the daemon's `--dbcache`, default 300): the
coins are written only when the cache goes over it, and by the final flush. stderr shows the
mean and median block time, the chainstate flushes and the peak RSS of the process (which also
holds the whole chain's `Block` objects). `--rss-trace` also shows which phase (the commit, the
store write, the coins cache's apply / flush / trim, else the rest of a block) raised that peak,
by how much and at which block.

Usage: contrib/bench/connect.py [--quick] [--blocks N] [--txs K] [--flush-blocks N]
                                [--script-threads N] [--script-mode MODE] [--dbcache MiB]
                                [--restarts N] [--stream] [--no-gc-freeze] [--no-cache]
                                [--rss-trace]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import hashlib
import os
import resource
import statistics
import sys
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import Iterator

from _common import emit  # noqa: E402  (also puts the repo root on sys.path)

from tests.framework.blockbuilder import BlockBuilder  # noqa: E402
from tests.framework.miniwallet import MiniWallet, Utxo, sign_p2pkh_input  # noqa: E402
from tinynode.chain.chainstate import ChainState  # noqa: E402
from tinynode.chain.coins import DEFAULT_DBCACHE_MIB  # noqa: E402
from tinynode.chain.writer import ChainWriter  # noqa: E402
from tinynode.params import REGTEST  # noqa: E402
from tinynode.primitives.block import Block  # noqa: E402
from tinynode.primitives.serialize import ByteReader  # noqa: E402
from tinynode.primitives.tx import OutPoint, Tx, TxIn, TxOut  # noqa: E402
from tinynode.storage.sqlite import SQLiteChainStore  # noqa: E402

BENCH = "connect"
PREMINE = 100
FEE = 1000


def iter_chain(n_blocks: int, txs_per_block: int) -> Iterator[Block]:
    """PREMINE coinbase-only blocks, then `n_blocks` blocks of `txs_per_block` signed spends,
    yielded one at a time (only the coinbases and the unspent coins are kept)."""
    wallet = MiniWallet(0)
    k = wallet.key
    b = BlockBuilder(REGTEST, wallet=wallet, spacing=60)
    coinbases: list[Tx] = []
    for i in range(PREMINE):
        blk = b.next_block(f"p{i}")
        coinbases.append(blk.txs[0])
        yield blk
    recent: deque[tuple[str, bytes]] = deque()   # the blocks the builder still holds
    pool: deque[Utxo] = deque()      # confirmed coins, oldest first
    matured = 0                      # index of the next coinbase to mature
    for i in range(n_blocks):
        height = PREMINE + i + 1
        # coinbases at height <= height - 100 are spendable in this block
        while matured < len(coinbases) and matured + 1 <= height - REGTEST.coinbase_maturity:
            cb = coinbases[matured]
            pool.append(Utxo(OutPoint(cb.txid, 0), cb.vout[0].value, k, matured + 1, True))
            matured += 1
        txs: list[Tx] = []
        new: list[Utxo] = []
        for _ in range(txs_per_block):
            u = pool.popleft() if pool else new.pop(0)   # early blocks spend in-block outputs
            avail = u.value - FEE
            half = avail // 2
            tx = Tx(1, (TxIn(u.outpoint, b"", 0xFFFFFFFF),),
                    (TxOut(half, k.script_pubkey), TxOut(avail - half, k.script_pubkey)), 0)
            tx = Tx(1, (TxIn(u.outpoint, sign_p2pkh_input(tx, 0, k), 0xFFFFFFFF),), tx.vout, 0)
            txs.append(tx)
            new.extend(Utxo(OutPoint(tx.txid, n), o.value, k, height) for n, o in enumerate(tx.vout))
        blk = b.next_block(f"s{i}", txs=txs, fees=FEE * txs_per_block)
        coinbases.append(blk.txs[0])
        recent.append((f"s{i}", blk.hash))
        if len(recent) > 20:             # the builder needs the last 11 for median time past
            old_name, old_hash = recent.popleft()
            for d, key_ in ((b.blocks, old_name), (b.by_hash, old_hash), (b.heights, old_hash),
                            (b.names, old_hash)):
                d.pop(key_, None)
        yield blk
        pool.extend(new)


def build_chain(n_blocks: int, txs_per_block: int) -> list[Block]:
    return list(iter_chain(n_blocks, txs_per_block))


def _stream_path(cache_dir: Path, n_blocks: int, txs: int) -> Path:
    return cache_dir / f"connect-chain-{n_blocks}x{txs}-v1.blocks"


def stream_chain(cache_dir: Path, n_blocks: int, txs: int) -> Path:
    """The chain as a file of (4-byte length, block) records, built once into `cache_dir`
    without holding it in memory (for the 100,000-block run: ~500 MB of blocks)."""
    path = _stream_path(cache_dir, n_blocks, txs)
    if path.exists():
        return path
    # the chain is deterministic: a longer cached chain's first blocks are this chain (read
    # with a limit), e.g. --blocks 20000 --stream from the cached 100,000-block file
    longer = sorted((p for p in cache_dir.glob(f"connect-chain-*x{txs}-v1.blocks")
                     if int(p.name.split("-")[2].split("x")[0]) > n_blocks),
                    key=lambda p: int(p.name.split("-")[2].split("x")[0]))
    if longer:
        return longer[0]
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    t = time.perf_counter()
    with open(tmp, "wb") as f:
        for i, blk in enumerate(iter_chain(n_blocks, txs)):
            raw = blk.serialize()
            f.write(len(raw).to_bytes(4, "little"))
            f.write(raw)
            if i % 10_000 == 0 and i:
                print(f"# building the chain: {i} blocks, {time.perf_counter() - t:.0f}s", file=sys.stderr)
    tmp.replace(path)
    return path


def read_stream(path: Path, limit: int | None = None) -> Iterator[Block]:
    with open(path, "rb") as f:
        n = 0
        while limit is None or n < limit:   # bounded by the file
            head = f.read(4)
            if len(head) < 4:
                return
            yield Block.from_bytes(f.read(int.from_bytes(head, "little")))
            n += 1


def _rss_mib() -> float:
    """The process's current resident set (Linux /proc), MiB; 0 where there is none."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return 0.0


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class _RssTrace:
    """`--rss-trace`: wraps the chainstate's commit, the store write and the coins cache's
    flush_changes / mark_flushed / trim / apply; every rise of the process's peak RSS is put
    down to the innermost wrapped call it happened in (else to "connect": the rest of a block),
    with the spend block being connected and the peak before and after."""

    def __init__(self, cs: ChainState) -> None:
        self.block = 0
        self.rises: list[tuple[float, str, int, float, float]] = []
        self._stack: list[str] = []
        self._last_peak = _peak_mib()
        for obj, name in ((cs, "_commit"), (cs._store, "write"), (cs.coins, "flush_changes"),
                          (cs.coins, "mark_flushed"), (cs.coins, "trim"), (cs.coins, "apply")):
            self._wrap(obj, name)

    def _note(self) -> None:
        peak = _peak_mib()
        if peak > self._last_peak:
            where = self._stack[-1] if self._stack else "connect"
            self.rises.append((peak - self._last_peak, where, self.block, self._last_peak, peak))
            self._last_peak = peak

    def _wrap(self, obj, name: str) -> None:
        """Wrap `obj.name` on the instance, or on its class where slots forbid that (this
        process has one chainstate, so the class is this instance's)."""
        fn = getattr(type(obj), name)
        tag = f"{type(obj).__name__.lstrip('_')}.{name}"

        def wrapped(this, *a, **k):
            self._note()
            self._stack.append(tag)
            try:
                return fn(this, *a, **k)
            finally:
                self._note()
                self._stack.pop()
        if hasattr(obj, "__dict__"):
            setattr(obj, name, wrapped.__get__(obj))
        else:
            setattr(type(obj), name, wrapped)

    def report(self) -> None:
        self._note()
        by: dict[str, float] = {}
        for d, where, *_ in self.rises:
            by[where] = by.get(where, 0.0) + d
        print("# rss trace, peak rises by phase (MiB): "
              + ", ".join(f"{w} {d:.1f}" for w, d in sorted(by.items(), key=lambda x: -x[1])),
              file=sys.stderr)
        for d, where, blk, a, b in sorted(self.rises, reverse=True)[:12]:
            print(f"#   +{d:.1f} MiB in {where} at block {blk}: peak {a:.0f} -> {b:.0f}", file=sys.stderr)


def _cache_path(n_blocks: int, txs: int) -> Path:
    tag = hashlib.sha256(f"v1 {n_blocks} {txs}".encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"tinynode-bench-connect-{tag}.bin"


def load_or_build(n_blocks: int, txs: int, use_cache: bool) -> list[Block]:
    path = _cache_path(n_blocks, txs)
    if use_cache and path.exists():
        data = path.read_bytes()
        r = ByteReader(data)
        out = []
        while r.remaining():
            out.append(Block.parse(r))
        if len(out) == PREMINE + n_blocks:
            return out
    blocks = build_chain(n_blocks, txs)
    if use_cache:
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(b"".join(blk.serialize() for blk in blocks))
        tmp.replace(path)
    return blocks


def raw_verify_rate(blocks: list[Block], n: int = 2000) -> float:
    """coincurve ECDSA verifies per second over real (sig, pubkey, sighash) triples of the chain."""
    from coincurve import PublicKey

    from tests.framework.miniwallet import legacy_sighash_local

    triples = []
    spk = MiniWallet(0).script_pubkey
    for blk in blocks[PREMINE:]:
        for tx in blk.txs[1:]:
            ss = tx.vin[0].script_sig
            sig = ss[1:1 + ss[0]][:-1]
            pub = ss[2 + ss[0]:]
            triples.append((PublicKey(pub), sig, legacy_sighash_local(tx, 0, spk, 1)))
            if len(triples) >= n:
                break
        if len(triples) >= n:
            break
    best = 0.0
    for _ in range(3):
        t = time.process_time()
        for pk, sig, digest in triples:
            # a fresh PublicKey parse per verify, as a node must do
            PublicKey(pk.format()).verify(sig, digest, hasher=None)
        best = max(best, len(triples) / (time.process_time() - t))
    return best


def check_scripts_are_verified(blocks: list[Block]) -> None:
    """Untimed guard: the ChainState under test must reject the first spend block with one
    signature byte flipped (otherwise the figures would not measure script checks)."""
    import dataclasses

    from tinynode.consensus.errors import RejectReason
    from tinynode.primitives.block import merkle_root
    from tinynode.storage.memory import MemoryChainStore

    from tests.framework.blockbuilder import solve

    cs = ChainState(REGTEST, MemoryChainStore(), script_checks=True)
    try:
        for blk in blocks[:PREMINE]:
            assert cs.process_block(blk).error is None
        blk = blocks[PREMINE]
        tx = blk.txs[-1]                              # no tx of the block spends its outputs
        ss = bytearray(tx.vin[0].script_sig)
        ss[10] ^= 1                                   # inside the DER signature
        bad_tx = dataclasses.replace(tx, vin=(dataclasses.replace(tx.vin[0], script_sig=bytes(ss)),))
        txs = blk.txs[:-1] + (bad_tx,)
        header = dataclasses.replace(blk.header, merkle_root=merkle_root([t.txid for t in txs])[0])
        res = cs.process_block(Block(solve(header), txs))
        assert res.error is not None and res.error.reason in (
            RejectReason.BLOCK_SCRIPT_VERIFY_FLAG_FAILED, RejectReason.MANDATORY_SCRIPT_VERIFY_FLAG_FAILED), res
    finally:
        cs.close()


def restart_seconds(datadir: Path, height: int) -> float:
    """Seconds from starting `python -m tinynode` on `datadir` (the chain connected by this run,
    shut down cleanly) until its RPC answers `getblockcount` with the chain's height (polled
    every 50 ms over the Unix socket; a first start creates the wallet, so time a later one)."""
    from ibd import Daemon

    for timed in (False, True) if not (datadir / "wallets").exists() else (True,):
        t = time.perf_counter()
        node = Daemon("restart", datadir, ["--no-listen", "--port", "0"])
        try:
            node.wait_ready(120.0)
            took = time.perf_counter() - t
            got = node.rpc.call("getblockcount")
            assert got == height, (got, height, node.tail())
        finally:
            node.stop()
    return took


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="200 spend blocks instead of 2000")
    ap.add_argument("--blocks", type=int, default=None)
    ap.add_argument("--txs", type=int, default=20)
    ap.add_argument("--flush-blocks", type=int, default=ChainWriter.SYNC_FLUSH_BLOCKS,
                    help="activation steps per store transaction (default: the writer's sync policy)")
    ap.add_argument("--script-threads", type=int, default=None,
                    help="script check worker threads (default: the ChainState's, one per extra core; 0: inline)")
    ap.add_argument("--script-mode", default="threads", choices=("auto", "inline", "threads", "processes"),
                    help="what the script check workers are (the daemon's --scriptcheck-mode; default threads)")
    ap.add_argument("--flush-bytes", type=int, default=ChainWriter.SYNC_FLUSH_BYTES,
                    help="also commit once the staged block bodies reach this many bytes "
                         "(the chain writer's sync policy; 0: no byte bound besides the chainstate's)")
    ap.add_argument("--dbcache", type=int, default=DEFAULT_DBCACHE_MIB,
                    help=f"coins cache budget in MiB (default {DEFAULT_DBCACHE_MIB})")
    ap.add_argument("--no-cache", action="store_true")
    ap.add_argument("--restarts", type=int, default=3,
                    help="timed daemon restarts on the connected chain (0: none)")
    ap.add_argument("--stream", action="store_true",
                    help="read the chain block by block from a file built once in --cache-dir "
                         "(default with --blocks >= 50000), so peak RSS is the node's")
    ap.add_argument("--cache-dir", type=Path,
                    default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "tinynode-bench")
    ap.add_argument("--no-gc-freeze", action="store_true",
                    help="leave the pre-built chain in the collected heap (a node holds no such chain)")
    ap.add_argument("--rss-trace", action="store_true",
                    help="stderr: which phase (commit, store write, coins flush/trim/apply) "
                         "raised the peak RSS, by how much, at which block")
    ap.add_argument("--keep-datadir", type=Path, default=None,
                    help="connect into this (new) datadir and keep it, e.g. to time restarts later")
    args = ap.parse_args()
    n_blocks = args.blocks or (200 if args.quick else 2000)

    stream = args.stream or n_blocks >= 50_000
    t0 = time.perf_counter()
    if stream:
        path = stream_chain(args.cache_dir, n_blocks, args.txs)
        blocks = list(read_stream(path, PREMINE + 200))     # for the guard and the reference
        chain: Iterator[Block] = read_stream(path, PREMINE + n_blocks)
        n_total = PREMINE + n_blocks
    else:
        blocks = load_or_build(n_blocks, args.txs, not args.no_cache)
        chain = iter(blocks)
        n_total = len(blocks)
    print(f"# chain: {n_total} blocks ({n_blocks} with {args.txs} spends) ready in "
          f"{time.perf_counter() - t0:.1f}s{' (streamed from ' + str(path) + ')' if stream else ''}",
          file=sys.stderr)

    check_scripts_are_verified(blocks)
    verify_rate = raw_verify_rate(blocks)
    if stream:
        del blocks
    if not args.no_gc_freeze:
        # the bench's own chain (~3.5 M objects at 20,000 blocks) is no part of a node's heap:
        # keep Python's full collections from traversing it (they cost ~0.7 s at 20,000 blocks)
        gc.collect()
        gc.freeze()
    gc_time = [0.0, 0, 0.0]   # cpu s in collections, full collections, start of the current one

    def on_gc(phase: str, info: dict) -> None:
        if phase == "start":
            gc_time[2] = time.process_time()
        else:
            gc_time[0] += time.process_time() - gc_time[2]
            gc_time[1] += info.get("generation") == 2
    gc.callbacks.append(on_gc)

    with (contextlib.nullcontext(str(args.keep_datadir)) if args.keep_datadir
          else tempfile.TemporaryDirectory(prefix="tnbench-")) as d:
        (Path(d) / "regtest").mkdir(parents=True)
        db_path = Path(d) / "regtest" / "chain.sqlite"    # where a daemon's datadir keeps it
        store = SQLiteChainStore(db_path, blocks_dir=db_path.parent / "blocks")
        flush_seconds = ChainWriter.SYNC_FLUSH_SECONDS if args.flush_blocks > 1 else 0.0
        cs = ChainState(REGTEST, store, script_checks=True, flush_blocks=args.flush_blocks,
                        flush_seconds=flush_seconds, script_check_threads=args.script_threads,
                        dbcache=args.dbcache << 20, script_check_mode=args.script_mode)
        if args.flush_bytes:
            cs.flush_bytes = min(cs.flush_bytes, args.flush_bytes)
        trace = _RssTrace(cs) if args.rss_trace else None
        try:
            for _ in range(PREMINE):
                res = cs.process_block(next(chain))
                assert res.error is None, res
            per_block: list[float] = []
            wall = 0.0
            inputs = 0
            rss_start = _rss_mib()
            rss_max = (0.0, 0, 0)   # current RSS after a block, its height, coins flushes by then
            for blk in chain:   # (streamed: each block parsed here, outside the timed span)
                if trace is not None:
                    trace.block = len(per_block) + 1
                w = time.perf_counter()
                t = time.process_time()
                res = cs.process_block(blk)
                per_block.append(time.process_time() - t)
                wall += time.perf_counter() - w
                assert res.error is None and res.status == "connected", res
                inputs += sum(len(tx.vin) for tx in blk.txs[1:])
                if len(per_block) % 50 == 0:
                    r = _rss_mib()
                    if r > rss_max[0]:
                        rss_max = (r, len(per_block), cs.coins.flushes)
            rss_before_flush = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            w = time.perf_counter()
            t = time.process_time()
            cs.flush()
            final_flush = time.process_time() - t
            wall += time.perf_counter() - w
            assert cs.height == n_total
            cache = cs.coins
            cache_note = (f"coins cache: {len(cache)} entries, ~{cache.usage() / 2**20:.0f} MiB of "
                          f"{cache.budget >> 20} MiB (dbcache {args.dbcache} MiB less the store's cache), "
                          f"{cache.flushes} chainstate flushes (last one "
                          f"{1000 * final_flush:.0f} ms cpu), {cache.evicted} evicted")
        finally:
            cs.close()
        restarts = [restart_seconds(Path(d), n_total) for _ in range(args.restarts)]

    total = sum(per_block) + final_flush
    inputs_per_s = inputs / total
    emit(BENCH, "connect_inputs_per_s", inputs_per_s, "inputs/s (cpu)", target=">= 0.5",
         reference="coincurve parse+verify/s (cpu)", reference_value=verify_rate)
    tenth = max(1, len(per_block) // 10)
    bottom = statistics.median(per_block[:tenth])
    top = statistics.median(per_block[-tenth:])
    emit(BENCH, "connect_growth", top / bottom, "ratio", target="<= 1.3",
         reference=f"median cpu s/block, top {tenth} / bottom {tenth} spend blocks")
    if stream:   # the process holds no chain: its peak RSS is the node's
        emit(BENCH, "connect_peak_rss_mib", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
             "MiB", target=f"<= {args.dbcache + 150}", reference="peak RSS of the process; target dbcache + 150")
    emit(BENCH, "connect_inputs_per_wall_s", inputs / wall, "inputs/s (wall)",
         reference="coincurve parse+verify/s (cpu)", reference_value=verify_rate)
    print(f"# script checks: {cs.script_check_queue.threads} {args.script_mode} workers, last mode "
          f"{cs.script_check_queue.mode_in_use}; flush every {args.flush_blocks} steps; "
          f"{len(per_block)} spend blocks, {inputs} inputs: cpu {total:.2f}s "
          f"({1000 * total / len(per_block):.1f} ms/block), wall {wall:.2f}s "
          f"({inputs / wall:.0f} inputs/s); bottom {1000 * bottom:.1f} ms, top {1000 * top:.1f} ms",
          file=sys.stderr)
    print(f"# block cpu ms: mean {1000 * total / len(per_block):.2f}, median "
          f"{1000 * statistics.median(per_block):.2f}, max {1000 * max(per_block):.0f}; {cache_note}; "
          f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB "
          f"({rss_before_flush:.0f} MiB before the final flush; current RSS {rss_start:.0f} MiB "
          f"before the first spend block, at most {rss_max[0]:.0f} MiB sampled every 50 blocks, "
          f"at block {rss_max[1]} after {rss_max[2]} coins flushes)", file=sys.stderr)
    if restarts:
        emit(BENCH, "connect_restart_s", statistics.median(restarts), "s", target="<= 2",
             reference=f"median of {len(restarts)}: daemon process start to RPC ready on this chain")
        print(f"# restarts (process start to RPC ready, s): "
              f"{', '.join(f'{r:.2f}' for r in restarts)}", file=sys.stderr)
    if trace is not None:
        trace.report()
    print(f"# Python GC: {gc_time[0]:.2f} s cpu ({gc_time[1]} full collections); the chain "
          f"{'was not' if args.no_gc_freeze else 'was'} frozen out of it (gc.freeze)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
