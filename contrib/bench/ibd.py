#!/usr/bin/env python3
"""Initial block download benchmark: two real `tinynode` daemons on 127.0.0.1.

The chain is the one `connect.py` builds (cached in the temp dir): 100 coinbase-only blocks,
then N blocks of 20 signed 1-in/2-out P2PKH spends (N = 2,000; --quick: 200). Untimed, the
serving node's SQLite store is filled with it through `ChainState` (no script checks), then two
daemons start as separate processes (`python -m tinynode --network regtest --no-mine`):

- A, the server: listens on a free loopback port, holds the whole chain;
- B, the syncing node: starts empty, does not listen, knows no peers.

When both answer RPC, the clock starts and B is told `addnode 127.0.0.1:<A's port> onetry`
(A is its only peer); B syncs headers-first with full validation (scripts included) and its
wallet following the chain, as a user's node would. The clock stops when B's `getblockcount`
(polled every 20 ms over its Unix-socket RPC) reaches A's height; B's best block hash is then
checked against A's. Both daemons are stopped (RPC `stop`, then SIGTERM/SIGKILL for the PIDs
this script started) and the temp dirs removed, whatever happens.

Figures (DESIGN.md §8):
- `ibd_inputs_per_s`: spend inputs validated per wall-clock second of the sync; reference = raw
  coincurve pubkey parse + ECDSA verify per second (CPU time) over the chain's own signatures,
  measured in this run (target ratio >= 0.35);
- `ibd_blocks_per_s`: blocks (premine included) per wall-clock second (no reference);
- `ibd_inputs_per_cpu_s`: the same inputs over B's CPU time (user + system, all threads, from
  /proc; informational: what the wall figure would be with a core to itself, since A, B and
  the machine's other load share the cores).

Usage: contrib/bench/ibd.py [--quick] [--blocks N] [--txs K] [--timeout S] [--keep-logs]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, emit  # noqa: E402  (puts the repo root on sys.path)

BENCH = "ibd"
POLL_S = 0.02


def free_port() -> int:
    """A currently free loopback TCP port (the daemon binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fill_store(network_dir: Path, blocks) -> None:
    """Connect `blocks` into `<network_dir>/chain.sqlite` (untimed; scripts are not checked)."""
    from tinynode.chain.chainstate import ChainState
    from tinynode.chain.writer import ChainWriter
    from tinynode.params import REGTEST
    from tinynode.storage.sqlite import SQLiteChainStore

    network_dir.mkdir(parents=True, exist_ok=True)
    cs = ChainState(REGTEST, SQLiteChainStore(network_dir / "chain.sqlite"), script_checks=False,
                    flush_blocks=ChainWriter.SYNC_FLUSH_BLOCKS, flush_seconds=ChainWriter.SYNC_FLUSH_SECONDS)
    try:
        for blk in blocks:
            res = cs.process_block(blk)
            assert res.error is None, res
        cs.flush()
        assert cs.height == len(blocks), (cs.height, len(blocks))
    finally:
        cs.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) from /proc/<pid>/stat."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Daemon:
    """One `python -m tinynode` child process on regtest, talked to over its RPC socket."""

    def __init__(self, name: str, datadir: Path, args: list[str]):
        from tinynode.rpc.client import RPCClient

        self.name = name
        self.datadir = datadir
        self.log = datadir / "daemon.log"
        self.sock = datadir / "regtest" / "rpc.sock"
        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        for k in ("TC_PORT", "TC_PEERS", "TC_MINE", "TC_LOG_LEVEL"):
            env.pop(k, None)
        self.stderr = open(datadir / "stderr.txt", "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tinynode", "--network", "regtest", "--datadir", str(datadir),
             "--no-mine", "--log-file", str(self.log), "--log-level", "info", *args],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.stderr, env=env,
            cwd=str(ROOT))
        self.rpc = RPCClient(self.sock, timeout=30.0)

    def wait_ready(self, timeout: float) -> None:
        from tinynode.rpc.client import ConnectionFailed
        from tinynode.rpc.protocol import RPC_IN_WARMUP, RPCError

        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                self.rpc.call("getblockcount")
                return
            except ConnectionFailed:
                pass
            except RPCError as e:
                if e.code != RPC_IN_WARMUP:
                    raise
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name}: no RPC answer after {timeout:g}s:\n{self.tail()}")
            time.sleep(0.05)

    def tail(self, n: int = 3000) -> str:
        out = []
        for p in (self.log, self.datadir / "stderr.txt"):
            try:
                out.append(f"--- {p.name}\n" + p.read_text(errors="replace")[-n:])
            except OSError:
                pass
        return "\n".join(out)

    def stop(self) -> None:
        """RPC stop, then SIGTERM, then SIGKILL: only this child's PID."""
        if self.proc.poll() is None:
            try:
                self.rpc.call("stop")
            except Exception:
                pass
            for sig, wait in ((None, 20.0), (signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
                if sig is not None and self.proc.poll() is None:
                    self.proc.send_signal(sig)
                try:
                    self.proc.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        self.stderr.close()


def run_sync(base: Path, blocks, timeout: float) -> dict:
    """Fill A's store, start A and B, time B's sync. Returns seconds, cpu and heights."""
    from tinynode.primitives.hashes import hash_to_hex

    a_dir, b_dir = base / "a", base / "b"
    a_dir.mkdir()
    b_dir.mkdir()
    t = time.perf_counter()
    fill_store(a_dir / "regtest", blocks)
    print(f"# server store filled in {time.perf_counter() - t:.1f}s", file=sys.stderr)
    target = len(blocks)
    port = free_port()
    daemons: list[Daemon] = []
    try:
        a = Daemon("A (server)", a_dir, ["--port", str(port), "--listen"])
        daemons.append(a)
        b = Daemon("B (syncing)", b_dir, ["--port", str(free_port()), "--no-listen"])
        daemons.append(b)
        a.wait_ready(120.0)
        b.wait_ready(120.0)
        served = a.rpc.call("getblockcount")
        assert served == target, f"server has height {served}, expected {target}"
        assert b.rpc.call("getblockcount") == 0
        best = a.rpc.call("getbestblockhash")
        assert best == hash_to_hex(blocks[-1].hash)

        c0 = cpu_seconds(b.proc.pid)
        t0 = time.perf_counter()
        b.rpc.call("addnode", f"127.0.0.1:{port}", "onetry")
        deadline = t0 + timeout
        height = 0
        while time.perf_counter() < deadline:
            height = b.rpc.call("getblockcount")
            if height >= target:
                break
            if b.proc.poll() is not None:
                raise RuntimeError(f"B exited during the sync:\n{b.tail()}")
            time.sleep(POLL_S)
        elapsed = time.perf_counter() - t0
        cpu = cpu_seconds(b.proc.pid) - c0
        if height < target:
            print(f"# sync incomplete: B at height {height} of {target} after {elapsed:.1f}s\n{b.tail()}",
                  file=sys.stderr)
        else:
            got = b.rpc.call("getbestblockhash")
            assert got == best, f"B's tip {got} differs from A's {best}"
        return {"seconds": elapsed, "cpu": cpu, "height": height, "target": target}
    finally:
        for d in reversed(daemons):
            d.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="200 spend blocks instead of 2000")
    ap.add_argument("--blocks", type=int, default=None, help="spend blocks (after the 100-block premine)")
    ap.add_argument("--txs", type=int, default=20, help="signed spends per block")
    ap.add_argument("--timeout", type=float, default=None, help="sync deadline in seconds")
    ap.add_argument("--keep-logs", action="store_true", help="keep the temp dir with the daemons' logs")
    args = ap.parse_args()

    from connect import PREMINE, load_or_build, raw_verify_rate

    n_blocks = args.blocks or (200 if args.quick else 2000)
    timeout = args.timeout or (45.0 if args.quick else 900.0)
    t0 = time.perf_counter()
    blocks = load_or_build(n_blocks, args.txs, True)
    inputs = sum(len(tx.vin) for blk in blocks[PREMINE:] for tx in blk.txs[1:])
    print(f"# chain: {len(blocks)} blocks, {inputs} spend inputs, ready in {time.perf_counter() - t0:.1f}s",
          file=sys.stderr)
    verify_rate = raw_verify_rate(blocks)

    # A short base path: the RPC socket path must stay under the OS limit (~107 bytes).
    base = Path(tempfile.mkdtemp(prefix="tnb-ibd-"))
    try:
        res = run_sync(base, blocks, timeout)
    finally:
        if args.keep_logs:
            print(f"# logs kept in {base}", file=sys.stderr)
        else:
            shutil.rmtree(base, ignore_errors=True)
    if res["height"] < res["target"]:
        return 1
    secs = res["seconds"]
    emit(BENCH, "ibd_inputs_per_s", inputs / secs, "inputs/s", target=">= 0.35",
         reference="coincurve parse+verify/s (cpu)", reference_value=verify_rate)
    emit(BENCH, "ibd_blocks_per_s", res["target"] / secs, "blocks/s")
    emit(BENCH, "ibd_inputs_per_cpu_s", inputs / res["cpu"], "inputs/s (cpu)", target=">= 0.35",
         reference="coincurve parse+verify/s (cpu)", reference_value=verify_rate)
    print(f"# {res['target']} blocks / {inputs} inputs synced in {secs:.2f}s wall, "
          f"B used {res['cpu']:.2f}s cpu", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
