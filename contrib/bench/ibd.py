#!/usr/bin/env python3
"""Initial block download benchmark: two nodes as separate processes on loopback.

The chain is the one `connect.py` builds (cached in the temp dir): 100 coinbase-only blocks,
then N blocks of 20 signed P2PKH spends. Untimed, a serving node's SQLite store is filled with
it; then two processes start — the server (chain writer + SyncManager + ConnMan on
127.0.0.1:0) and a fresh node that connects to it and syncs headers-first with full
validation. The syncing process reports the wall time from its first connection to the tip.

Figures (DESIGN.md §8):
- `ibd_inputs_per_s`: spend inputs validated per second during the sync; reference = raw
  coincurve parse + verify per second in this run (target ratio >= 0.35);
- `ibd_blocks_per_s`: blocks per second (no reference);
- `ibd_inputs_per_cpu_s`: the same inputs over the syncing process's CPU time (informational:
  the wall figure suffers when the server and other load share a small machine).

Usage: contrib/bench/ibd.py [--quick] [--blocks N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import emit  # noqa: E402  (puts the repo root on sys.path)

BENCH = "ibd"


def _compose(datadir: Path):
    from tinynode.chain.chainstate import ChainState
    from tinynode.chain.writer import ChainWriter
    from tinynode.net.connman import ConnMan
    from tinynode.net.peer import NetConfig
    from tinynode.net.sync import SyncManager
    from tinynode.params import REGTEST
    from tinynode.storage.sqlite import SQLiteChainStore

    cfg = NetConfig()
    writer = ChainWriter(lambda: ChainState(REGTEST, SQLiteChainStore(datadir / "chain.sqlite")))
    sync = SyncManager(REGTEST, cfg, writer)
    connman = ConnMan(REGTEST, cfg, handlers=[sync], dial=False,
                      start_height=lambda: writer.snapshot.height)
    sync.attach(connman)
    return writer, sync, connman


async def serve(datadir: Path) -> None:
    writer, sync, connman = _compose(datadir)
    await writer.start()
    await connman.start()
    await sync.start()
    print(f"PORT {connman.port} HEIGHT {writer.snapshot.height}", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)   # until the parent closes our stdin
    await connman.stop()
    await sync.stop()
    await writer.stop()


async def fetch(datadir: Path, port: int, target: int, timeout: float) -> None:
    writer, sync, connman = _compose(datadir)
    await writer.start()
    await connman.start()
    await sync.start()
    t0 = time.perf_counter()
    c0 = time.process_time()
    peer = await connman.connect("127.0.0.1", port)
    assert peer is not None, "cannot connect to the serving node"
    deadline = t0 + timeout
    while writer.snapshot.height < target and time.perf_counter() < deadline:
        await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - c0
    height = writer.snapshot.height
    await connman.stop()
    await sync.stop()
    await writer.stop()
    print(json.dumps({"seconds": elapsed, "cpu": cpu, "height": height}), flush=True)


def prepare_server(datadir: Path, blocks) -> None:
    """Fill the server's store (untimed)."""
    from tinynode.chain.chainstate import ChainState
    from tinynode.params import REGTEST
    from tinynode.storage.sqlite import SQLiteChainStore

    try:
        cs = ChainState(REGTEST, SQLiteChainStore(datadir / "chain.sqlite"), script_checks=False)
    except TypeError:
        cs = ChainState(REGTEST, SQLiteChainStore(datadir / "chain.sqlite"))
    try:
        for blk in blocks:
            res = cs.process_block(blk)
            assert res.error is None, res
        if hasattr(cs, "flush"):
            cs.flush()
    finally:
        cs.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="200 spend blocks instead of 2000")
    ap.add_argument("--blocks", type=int, default=None)
    ap.add_argument("--txs", type=int, default=20)
    ap.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--fetch", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--target", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.serve:
        asyncio.run(serve(args.serve))
        return 0
    if args.fetch:
        asyncio.run(fetch(args.fetch, args.port, args.target, timeout=900))
        return 0

    from connect import PREMINE, load_or_build, raw_verify_rate

    n_blocks = args.blocks or (200 if args.quick else 2000)
    t0 = time.perf_counter()
    blocks = load_or_build(n_blocks, args.txs, True)
    inputs = sum(len(tx.vin) for blk in blocks[PREMINE:] for tx in blk.txs[1:])
    target = len(blocks)
    print(f"# chain: {target} blocks, {inputs} spend inputs, ready in {time.perf_counter() - t0:.1f}s",
          file=sys.stderr)
    verify_rate = raw_verify_rate(blocks)

    with tempfile.TemporaryDirectory(prefix="tinynode-bench-ibd-") as d:
        a_dir, b_dir = Path(d) / "a", Path(d) / "b"
        a_dir.mkdir()
        b_dir.mkdir()
        t = time.perf_counter()
        prepare_server(a_dir, blocks)
        print(f"# server store filled in {time.perf_counter() - t:.1f}s", file=sys.stderr)
        me = str(Path(__file__).resolve())
        server = subprocess.Popen([sys.executable, me, "--serve", str(a_dir)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        try:
            line = server.stdout.readline().split()
            assert line and line[0] == "PORT", f"server did not start: {line}"
            port, served = int(line[1]), int(line[3])
            assert served == target, f"server has height {served}, expected {target}"
            out = subprocess.run([sys.executable, me, "--fetch", str(b_dir), "--port", str(port),
                                  "--target", str(target)], capture_output=True, text=True, timeout=1000)
            if out.returncode != 0:
                print(out.stderr[-3000:], file=sys.stderr)
                return 1
            res = json.loads(out.stdout.strip().splitlines()[-1])
        finally:
            server.stdin.close()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
    if res["height"] < target:
        print(f"# sync incomplete: height {res['height']} of {target} after {res['seconds']:.1f}s",
              file=sys.stderr)
        return 1
    secs = res["seconds"]
    emit(BENCH, "ibd_inputs_per_s", inputs / secs, "inputs/s", target=">= 0.35",
         reference="coincurve parse+verify/s (cpu)", reference_value=verify_rate)
    emit(BENCH, "ibd_blocks_per_s", target / secs, "blocks/s")
    # The syncing process's CPU time (all threads): what the figure would be on an idle machine
    # with one core for the node (the server and other load share the machine with it).
    emit(BENCH, "ibd_inputs_per_cpu_s", inputs / res["cpu"], "inputs/s (cpu)", target=">= 0.35",
         reference="coincurve parse+verify/s (cpu)", reference_value=verify_rate)
    print(f"# {target} blocks / {inputs} inputs synced in {secs:.1f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
