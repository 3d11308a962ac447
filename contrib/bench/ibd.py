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
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, emit  # noqa: E402  (puts the repo root on sys.path)

from tinynode.lab import free_port  # noqa: E402

BENCH = "ibd"
POLL_S = 0.02


def fill_store(network_dir: Path, blocks) -> None:
    """Connect `blocks` into `<network_dir>/chain.sqlite` (untimed; scripts are not checked)."""
    from tinynode.chain.chainstate import ChainState
    from tinynode.chain.writer import ChainWriter
    from tinynode.params import REGTEST
    from tinynode.storage.sqlite import SQLiteChainStore

    network_dir.mkdir(parents=True, exist_ok=True)
    cs = ChainState(REGTEST, SQLiteChainStore(network_dir / "chain.sqlite", blocks_dir=network_dir / "blocks"), script_checks=False,
                    flush_blocks=ChainWriter.SYNC_FLUSH_BLOCKS, flush_seconds=ChainWriter.SYNC_FLUSH_SECONDS)
    try:
        for blk in blocks:
            res = cs.process_block(blk)
            assert res.error is None, res
        cs.flush()
        assert cs.height == len(blocks), (cs.height, len(blocks))
    finally:
        cs.close()


def verify_triples(blocks, n: int = 1800) -> list:
    """(pubkey bytes, DER sig, digest) of the first `n` spends of the chain (connect.py's layout)."""
    from connect import PREMINE

    from tests.framework.miniwallet import MiniWallet, legacy_sighash_local

    spk = MiniWallet(0).script_pubkey
    out = []
    for blk in blocks[PREMINE:]:
        for tx in blk.txs[1:]:
            ss = tx.vin[0].script_sig
            out.append((ss[2 + ss[0]:], ss[1:1 + ss[0]][:-1], legacy_sighash_local(tx, 0, spk, 1)))
            if len(out) >= n:
                return out
    return out


def wall_verify_rates(triples, chunks: int = 6) -> list[float]:
    """coincurve parse + verify per WALL second right now, one rate per chunk of `triples`
    (informational: shows what the machine's load leaves of a core)."""
    from coincurve import PublicKey

    size = max(1, len(triples) // chunks)
    rates = []
    for i in range(0, len(triples) - size + 1, size):
        part = triples[i:i + size]
        t = time.perf_counter()
        for pub, sig, digest in part:
            PublicKey(pub).verify(sig, digest, hasher=None)
        rates.append(len(part) / (time.perf_counter() - t))
    return rates


def _die_with_parent() -> None:
    """In the daemon child before exec (Linux): SIGTERM it if this script dies, even by SIGKILL,
    so a killed benchmark never leaves daemons behind. Best effort elsewhere."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)   # PR_SET_PDEATHSIG
    except Exception:
        pass


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) from /proc/<pid>/stat."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_run(pid: int) -> dict[int, float]:
    """Seconds on a CPU per live thread id of a process (/proc/<pid>/task/*/schedstat)."""
    out: dict[int, float] = {}
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return out
    for t in tasks:
        try:
            out[int(t.name)] = int((t / "schedstat").read_text().split()[0]) / 1e9
        except (OSError, ValueError):
            continue
    return out


def sched_totals(pid: int) -> tuple[float, float]:
    """(seconds on a CPU, seconds runnable but waiting for a CPU) summed over the process's live
    threads, from /proc/<pid>/task/*/schedstat; (nan, nan) where that is unavailable."""
    run = wait = 0.0
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return float("nan"), float("nan")
    for t in tasks:
        try:
            a, b, _ = (t / "schedstat").read_text().split()
        except (OSError, ValueError):
            continue
        run += int(a) / 1e9
        wait += int(b) / 1e9
    return run, wait


def end_child(proc: subprocess.Popen, ask_stop, grace: float) -> None:
    """Ask a child daemon to stop (`ask_stop`, its RPC stop), wait `grace` s, then SIGTERM, then
    SIGKILL: only this child's PID."""
    if proc.poll() is not None:
        return
    try:
        ask_stop()
    except Exception:
        pass
    for sig, wait in ((None, grace), (signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
        if sig is not None and proc.poll() is None:
            proc.send_signal(sig)
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


class Daemon:
    """One `python -m tinynode` child process on regtest, talked to over its RPC socket."""

    def __init__(self, name: str, datadir: Path, args: list[str], profile: Path | None = None,
                 idle_log: Path | None = None):
        from tinynode.rpc.client import RPCClient

        self.name = name
        self.datadir = datadir
        self.log = datadir / "daemon.log"
        self.sock = datadir / "regtest" / "rpc.sock"
        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        for k in ("TC_PORT", "TC_PEERS", "TC_MINE", "TC_LOG_LEVEL"):
            env.pop(k, None)
        self.stderr = open(datadir / "stderr.txt", "wb")
        daemon_args = ["--network", "regtest", "--datadir", str(datadir), "--no-mine",
                       "--log-file", str(self.log), "--log-level", "info", *args]
        if profile is None and idle_log is None:
            cmd = [sys.executable, "-m", "tinynode", *daemon_args]
        elif profile is None:
            cmd = [sys.executable, str(Path(__file__).resolve()), "--idle-child", str(idle_log), *daemon_args]
        else:
            cmd = [sys.executable, str(Path(__file__).resolve()), "--profile-child", str(profile), *daemon_args]
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.stderr, env=env,
            cwd=str(ROOT), preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
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
        end_child(self.proc, lambda: self.rpc.call("stop"), 20.0)
        self.stderr.close()


def idle_child(out: Path, argv: list[str]) -> int:
    """Run the daemon with its chain writer's waits for work recorded: each call of
    `ChainWriter._take` that lasted over 0.1 ms, as (start, seconds) on the system's monotonic
    clock, written to `out` (JSON) on exit. The bench sums those inside the timed sync: how long
    the writer sat idle with no block to connect (the download pipeline ran dry)."""
    import json

    from tinynode.chain import writer as chain_writer

    waits: list[tuple[float, float]] = []
    take = chain_writer.ChainWriter._take
    mono = time.monotonic

    def timed_take(self, timeout=None):
        t = mono()
        try:
            return take(self, timeout)
        finally:
            d = mono() - t
            if d > 1e-4:
                waits.append((t, d))

    chain_writer.ChainWriter._take = timed_take
    try:
        from tinynode.cli import daemon_main
        return daemon_main(argv)
    finally:
        out.write_text(json.dumps(waits))


def writer_idle(path: Path, start: float, end: float) -> tuple[float, int] | None:
    """(seconds, count) of the writer's recorded waits overlapping [start, end] (clipped)."""
    import json
    try:
        waits = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    total, n = 0.0, 0
    for t, d in waits:
        lo, hi = max(t, start), min(t + d, end)
        if hi > lo:
            total += hi - lo
            n += 1
    return total, n


def profile_child(out: Path, argv: list[str]) -> int:
    """Run the daemon with a cProfile per thread (main, chain writer, executors); on exit, write
    their merged stats to `out` (pstats format)."""
    import cProfile
    import pstats
    import threading

    profilers: list[tuple[str, cProfile.Profile]] = []

    def start_in_thread(frame, event, arg):      # the first profile event of each new thread
        p = cProfile.Profile()
        profilers.append((threading.current_thread().name, p))
        p.enable()

    threading.setprofile(start_in_thread)
    main_prof = cProfile.Profile()
    main_prof.enable()
    try:
        from tinynode.cli import daemon_main
        return daemon_main(argv)
    finally:
        main_prof.disable()
        threading.setprofile(None)
        stats = pstats.Stats(main_prof)
        main_prof.dump_stats(f"{out}.main")
        for i, (name, p) in enumerate(profilers):
            try:
                pstats.Stats(p).dump_stats(f"{out}.{i}-{name.replace('/', '_')}")
                stats.add(p)
            except TypeError:                     # a thread that never recorded anything
                pass
        stats.dump_stats(str(out))


def run_sync(base: Path, blocks, timeout: float, profile: Path | None = None) -> dict:
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
        idle_log = b_dir / "writer_waits.json"
        b = Daemon("B (syncing)", b_dir, ["--port", str(free_port()), "--no-listen"], profile=profile,
                   idle_log=idle_log)
        daemons.append(b)
        a.wait_ready(120.0)
        b.wait_ready(120.0)
        served = a.rpc.call("getblockcount")
        assert served == target, f"server has height {served}, expected {target}"
        assert b.rpc.call("getblockcount") == 0
        best = a.rpc.call("getbestblockhash")
        assert best == hash_to_hex(blocks[-1].hash)

        triples = verify_triples(blocks)
        wall_ref = wall_verify_rates(triples)
        c0 = cpu_seconds(b.proc.pid)
        a0 = cpu_seconds(a.proc.pid)
        s0 = sched_totals(b.proc.pid)
        th0 = thread_run(b.proc.pid)
        t0 = time.perf_counter()
        m0 = time.monotonic()
        b.rpc.call("addnode", f"127.0.0.1:{port}", "onetry")
        deadline = t0 + timeout
        height = 0
        first_block = None       # seconds until B's first block connected (handshake + headers)
        while time.perf_counter() < deadline:
            height = b.rpc.call("getblockcount")
            if height and first_block is None:
                first_block = time.perf_counter() - t0
            if height >= target:
                break
            if b.proc.poll() is not None:
                raise RuntimeError(f"B exited during the sync:\n{b.tail()}")
            time.sleep(POLL_S)
        elapsed = time.perf_counter() - t0
        m1 = time.monotonic()
        cpu = cpu_seconds(b.proc.pid) - c0
        a_cpu = cpu_seconds(a.proc.pid) - a0
        s1 = sched_totals(b.proc.pid)
        th1 = thread_run(b.proc.pid)
        # B's busiest threads during the sync: the event loop (main thread) and the rest (the
        # chain writer, its script check worker, executors), by CPU seconds
        per_thread = sorted(((th1[t] - th0.get(t, 0.0), "loop" if t == b.proc.pid else str(t))
                             for t in th1), reverse=True)
        run_delay = s1[1] - s0[1]
        wall_ref += wall_verify_rates(triples)
        if height < target:
            print(f"# sync incomplete: B at height {height} of {target} after {elapsed:.1f}s\n{b.tail()}",
                  file=sys.stderr)
        else:
            got = b.rpc.call("getbestblockhash")
            assert got == best, f"B's tip {got} differs from A's {best}"
        return {"threads": per_thread, "window": (m0 + (first_block or 0.0), m1), "idle_log": idle_log,
                "seconds": elapsed, "first_block": first_block, "cpu": cpu, "server_cpu": a_cpu, "run_delay": run_delay, "wall_ref": statistics.median(wall_ref), "height": height, "target": target}
    finally:
        for d in reversed(daemons):
            d.stop()


class CoreDaemon:
    """One `bitcoind -regtest` child for the reference sync, over its cookie-authenticated RPC."""

    def __init__(self, name: str, bitcoind: str, datadir: Path, args: list[str]):
        self.name, self.datadir = name, datadir
        self.rpc_port = free_port()
        self.stderr = open(datadir / "stderr.txt", "wb")
        self.proc = subprocess.Popen(
            [bitcoind, "-regtest", f"-datadir={datadir}", f"-rpcport={self.rpc_port}",
             "-rpcbind=127.0.0.1", "-rpcallowip=127.0.0.1", "-server", "-printtoconsole=0",
             "-checkblockindex=0", "-dnsseed=0", "-fixedseeds=0", "-discover=0", "-listenonion=0",
             "-natpmp=0", "-disablewallet", *args],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.stderr,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)

    def call(self, method: str, *params, timeout: float = 60.0):
        import base64
        import json
        import urllib.request
        cookie = (self.datadir / "regtest" / ".cookie").read_text().strip()
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.rpc_port}/", json.dumps({"id": 1, "method": method,
                                                              "params": list(params)}).encode(),
            {"Authorization": "Basic " + base64.b64encode(cookie.encode()).decode(),
             "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                reply = json.loads(r.read())
        except urllib.error.HTTPError as e:
            reply = json.loads(e.read() or b"{}")
        if reply.get("error"):
            raise RuntimeError(f"{self.name} {method}: {reply['error']}")
        return reply.get("result")

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}")
            try:
                self.call("getblockcount", timeout=5.0)
                return
            except (OSError, RuntimeError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name}: no RPC answer after {timeout:g}s")
            time.sleep(0.1)

    def stop(self) -> None:
        end_child(self.proc, lambda: self.call("stop", timeout=10.0), 30.0)
        self.stderr.close()


def run_core_sync(base: Path, blocks, bitcoind: str, timeout: float) -> dict:
    """The same sync between two bitcoinds (Core's reference, -checkblockindex=0, full script
    checks as regtest has no assumevalid): A loads the chain from a blk-format file
    (-loadblock), then B is told `addnode A onetry` and timed to A's height, as tinynode's B."""
    from tinynode.params import REGTEST
    from tinynode.primitives.hashes import hash_to_hex

    a_dir, b_dir = base / "core-a", base / "core-b"
    a_dir.mkdir()
    b_dir.mkdir()
    bootstrap = base / "bootstrap.dat"
    with open(bootstrap, "wb") as f:        # Core's -loadblock format: magic, size, block
        for blk in blocks:
            raw = blk.serialize()
            f.write(REGTEST.magic + len(raw).to_bytes(4, "little") + raw)
    target = len(blocks)
    port = free_port()
    daemons: list[CoreDaemon] = []
    try:
        a = CoreDaemon("Core A (server)", bitcoind, a_dir,
                       [f"-port={port}", "-bind=127.0.0.1", "-listen=1", "-connect=0",
                        f"-loadblock={bootstrap}"])
        daemons.append(a)
        a.wait_ready(120.0)
        deadline = time.monotonic() + timeout
        while a.call("getblockcount") < target:
            if time.monotonic() > deadline:
                raise RuntimeError("Core A did not load the chain in time")
            time.sleep(0.2)
        assert a.call("getbestblockhash") == hash_to_hex(blocks[-1].hash)
        b = CoreDaemon("Core B (syncing)", bitcoind, b_dir,
                       [f"-port={free_port()}", "-listen=0", "-connect=0"])
        daemons.append(b)
        b.wait_ready(120.0)
        t0 = time.perf_counter()
        b.call("addnode", f"127.0.0.1:{port}", "onetry")
        height = 0
        while time.perf_counter() < t0 + timeout:
            height = b.call("getblockcount")
            if height >= target:
                break
            time.sleep(POLL_S)
        elapsed = time.perf_counter() - t0
        if height >= target:
            assert b.call("getbestblockhash") == hash_to_hex(blocks[-1].hash)
        return {"seconds": elapsed, "height": height, "target": target}
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
    ap.add_argument("--core", metavar="BITCOIND", default=os.environ.get("TINYNODE_BITCOIND"),
                    help="also time the same sync between two bitcoinds and report tinynode/Core "
                         "(default: $TINYNODE_BITCOIND; none: no reference)")
    ap.add_argument("--profile", type=Path, metavar="FILE",
                    help="run B under cProfile (every thread) and write pstats to FILE (merged; "
                         "FILE.main and FILE.<n>-<thread> per thread; the whole process life, "
                         "start-up and idle waits included); prints the top functions (the figures "
                         "then include the profiler's overhead)")
    if len(sys.argv) > 2 and sys.argv[1] == "--idle-child":
        return idle_child(Path(sys.argv[2]), sys.argv[3:])
    if len(sys.argv) > 2 and sys.argv[1] == "--profile-child":
        return profile_child(Path(sys.argv[2]), sys.argv[3:])
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
        res = run_sync(base, blocks, timeout, args.profile.resolve() if args.profile else None)
        core = run_core_sync(base, blocks, args.core, timeout) if args.core else None
        # B has exited (its writer's waits are written): how long it sat idle during the sync
        idle = writer_idle(res["idle_log"], *res["window"]) if not args.profile else None
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
    if core is not None and core["height"] >= core["target"]:
        # Bitcoin Core's own IBD of the same chain, same machine, same run: tinynode's rate over it
        emit(BENCH, "ibd_inputs_per_s_vs_core", inputs / secs, "inputs/s",
             reference="bitcoind -> bitcoind, same chain and run", reference_value=inputs / core["seconds"])
        print(f"# Bitcoin Core synced the same {core['target']} blocks in {core['seconds']:.2f}s "
              f"(tinynode: {secs:.2f}s)", file=sys.stderr)
    first = res["first_block"]
    print(f"# {res['target']} blocks / {inputs} inputs synced in {secs:.2f}s wall (first block connected "
          f"after {first if first is not None else float('nan'):.2f}s: handshake + headers); cpu during the sync: "
          f"B {res['cpu']:.2f}s, A (server) {res['server_cpu']:.2f}s; B's threads waited "
          f"{res['run_delay']:.2f}s for a CPU (machine load {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} cpus); raw coincurve per wall second around the sync (median of chunks): "
          f"{res['wall_ref']:.0f}/s, over which ibd_inputs_per_s is {inputs / secs / res['wall_ref']:.2f}",
          file=sys.stderr)
    print("# B's CPU per thread during the sync (s): " + ", ".join(
        f"{name} {sec:.2f}" for sec, name in res["threads"][:4] if sec >= 0.01), file=sys.stderr)
    if idle is not None:
        w0, w1 = res["window"]
        print(f"# B's chain writer waited for work {idle[0]:.2f}s ({idle[1]} waits) of the {w1 - w0:.2f}s "
              f"between its first connected block and the end of the sync", file=sys.stderr)
    if args.profile:
        import pstats
        print(f"# profile of B (all threads) in {args.profile}; top 25 by own time:", file=sys.stderr)
        pstats.Stats(str(args.profile), stream=sys.stderr).sort_stats("tottime").print_stats(25)
    return 0


if __name__ == "__main__":
    sys.exit(main())
