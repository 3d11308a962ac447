"""Run Bitcoin Core's own functional tests, unmodified, against tinynode.

    python contrib/core-tests/run.py --core-src DIR [--jobs N] [--timeout S] [TEST ...]

DIR is a Bitcoin Core source tree (the one CI downloads inside py-bitcoinkernel's sdist:
.interop/core/py_bitcoinkernel-*/depend/bitcoin). The runner writes a `config.ini` for Core's
framework (bitcoind with the wallet; no bitcoin-cli, no bitcoin-wallet, no ZMQ, so the framework
skips what needs those exactly as it does for such a Core build) and a `bitcoind` wrapper that execs
contrib/core-tests/bitcoind.py with this Python, then runs each test's own script with
`--configfile`, a private `--tmpdir` and a distinct `--portseed`, in parallel jobs, each bounded
by a timeout. It prints one line per test (passed / failed / skipped, seconds) and the tail of
the log of each failure, and exits 1 when a test listed in EXPECTED_PASS does not pass.

TESTS is the list the project tracks (README.md in this directory has the table and the reasons);
EXPECTED_PASS are the ones that pass today: CI fails when one of them stops passing.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent

TESTS = (
    "feature_block", "p2p_invalid_block", "p2p_invalid_tx", "p2p_invalid_messages", "p2p_ping",
    "rpc_invalidateblock", "rpc_getchaintips", "p2p_sendheaders", "p2p_unrequested_blocks",
    "mining_basic", "rpc_blockchain", "feature_cltv", "feature_dersig", "feature_csv_activation",
    "feature_bip68_sequence", "p2p_addr_relay", "p2p_getaddr_caching", "rpc_rawtransaction",
    "mempool_accept", "p2p_segwit", "feature_taproot",
)
#: Tests that pass against tinynode today; a failure of one of these fails the run.
EXPECTED_PASS: tuple[str, ...] = (
    "p2p_ping", "p2p_invalid_block", "rpc_invalidateblock", "rpc_getchaintips", "feature_cltv",
    "feature_dersig", "feature_csv_activation", "p2p_getaddr_caching", "mempool_accept",
    "rpc_rawtransaction", "feature_bip68_sequence", "p2p_invalid_tx", "feature_block", "mining_basic",
    "p2p_unrequested_blocks", "feature_taproot", "p2p_invalid_messages", "p2p_addr_relay",
    "p2p_segwit", "p2p_sendheaders", "rpc_blockchain",
)

EXIT_PASSED, EXIT_SKIPPED = 0, 77

CONFIG_INI = """\
[environment]
CLIENT_NAME=Bitcoin Core
CLIENT_BUGREPORT=https://github.com/bitcoin/bitcoin/issues
SRCDIR={src}
BUILDDIR={build}
EXEEXT=
RPCAUTH={src}/share/rpcauth/rpcauth.py

[components]
ENABLE_BITCOIND=true
ENABLE_WALLET=true
"""
# ENABLE_WALLET is on for every test, as in a Core build with the wallet: a test that does not
# ask for one (skip_if_no_wallet) gets -disablewallet from the framework, which the launcher
# maps to tinynode's --no-wallet; a test that does gets a node with no wallet loaded (tinynode's
# --no-default-wallet) and makes "default_wallet" with createwallet + importdescriptors.


def find_core_src(explicit: str | None) -> Path:
    if explicit:
        return Path(explicit)
    found = sorted((REPO / ".interop" / "core").glob("py_bitcoinkernel-*/depend/bitcoin"))
    if not found:
        raise SystemExit("run.py: no Core source tree; give --core-src DIR "
                         "(contrib/interop/install_bitcoind.sh downloads one)")
    return found[-1]


def prepare(work: Path, src: Path) -> tuple[Path, Path]:
    """config.ini and the bitcoind wrapper in `work`; returns (configfile, wrapper)."""
    build = work / "build"
    (build / "bin").mkdir(parents=True, exist_ok=True)
    wrapper = build / "bin" / "bitcoind"
    wrapper.write_text(f"#!/bin/sh\nexec {sys.executable} {HERE / 'bitcoind.py'} \"$@\"\n")
    wrapper.chmod(0o755)
    config = work / "config.ini"
    config.write_text(CONFIG_INI.format(src=src, build=build))
    return config, wrapper


async def run_one(name: str, seed: int, src: Path, config: Path, wrapper: Path, work: Path,
                  timeout: float, sem: asyncio.Semaphore,
                  deadline: float = float("inf")) -> tuple[str, str, float, Path]:
    async with sem:
        log = work / f"{name}.log"
        timeout = min(timeout, deadline - time.monotonic())
        if timeout <= 0:
            log.write_text("not started: the run's --budget was used up\n")
            return name, "not run", 0.0, log
        script = src / "test" / "functional" / f"{name}.py"
        tmpdir = work / name
        env = dict(os.environ, BITCOIND=str(wrapper), PYTHONPATH=str(REPO),
                   PYTHONUNBUFFERED="1")
        start = time.monotonic()
        if not script.exists():
            log.write_text(f"{script} does not exist in this Core source tree\n")
            return name, "missing", 0.0, log
        with open(log, "wb") as out:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, str(script), f"--configfile={config}", f"--tmpdir={tmpdir}",
                f"--portseed={seed}", f"--cachedir={work / 'cache'}", "--timeout-factor=2",
                stdout=out, stderr=asyncio.subprocess.STDOUT, env=env, start_new_session=True)
            try:
                rc = await asyncio.wait_for(proc.wait(), timeout)
            except asyncio.TimeoutError:
                os.killpg(proc.pid, 9)
                await proc.wait()
                rc = None
        took = time.monotonic() - start
        status = {EXIT_PASSED: "passed", EXIT_SKIPPED: "skipped", None: "timeout"}.get(rc, "failed")
        return name, status, took, log


def why(log: Path, tail: int) -> str:
    """The exception a failed test ended with (the framework's traceback, without the stack
    frames of the framework itself), else the log's last lines."""
    lines = log.read_text(errors="replace").splitlines()
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].startswith("Traceback"):
            out = []
            for j in range(i + 1, min(len(lines), i + 300)):
                ln = lines[j]
                if "/test/functional/" in ln and "test_framework/" not in ln:
                    out += lines[j:j + 2]
                elif re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Exit)\b", ln):
                    calls = [lines[k + 1] for k in range(i, j - 1) if lines[k].startswith("  File")
                             and not re.search(r"(authproxy|coverage|util)\.py", lines[k])]
                    if calls and calls[-1] not in out:   # the framework call that raised
                        out.append("    ... " + calls[-1].strip())
                    out.append(ln[:600])
                    break
            return "\n".join(out)
    return "\n".join(lines[-tail:])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("tests", nargs="*", help=f"tests to run (default: the list of {len(TESTS)})")
    ap.add_argument("--core-src", help="Bitcoin Core source tree (default: .interop/core/...)")
    ap.add_argument("--jobs", type=int, default=2, help="tests run at once (default 2)")
    ap.add_argument("--timeout", type=float, default=600, help="seconds per test (default 600)")
    ap.add_argument("--budget", type=float, default=float("inf"),
                    help="seconds for the whole run: tests not started by then are reported "
                         "'not run' (default no limit)")
    ap.add_argument("--workdir", help="keep logs and datadirs here (default: a temp dir, "
                                      "removed when every test passed)")
    ap.add_argument("--tail", type=int, default=30, help="log lines shown per failure")
    ns = ap.parse_args(argv)

    src = find_core_src(ns.core_src)
    names = ns.tests or list(TESTS)
    work = Path(ns.workdir or tempfile.mkdtemp(prefix="tinynode-core-tests-"))
    work.mkdir(parents=True, exist_ok=True)
    config, wrapper = prepare(work, src)
    print(f"Core's functional tests against tinynode: {len(names)} tests, {ns.jobs} at a time, "
          f"source {src}, logs in {work}", flush=True)

    async def run_all() -> list[tuple[str, str, float, Path]]:
        sem = asyncio.Semaphore(max(1, ns.jobs))
        jobs = [run_one(n, base_seed + i, src, config, wrapper, work, ns.timeout, sem, deadline)
                for i, n in enumerate(names)]
        results = []
        for fut in asyncio.as_completed(jobs):
            r = await fut
            print(f"  {r[0]:28s} {r[1]:8s} {r[2]:7.1f} s", flush=True)
            results.append(r)
        return results

    start = time.monotonic()
    deadline = start + ns.budget
    # port seeds of this run (the framework spaces each seed's ports apart): the cache's too, so
    # runs side by side on one machine do not collide
    base_seed = os.getpid() % 200
    # The framework's 199-block chain cache is built once, first (as Core's test_runner does
    # with create_cache.py), by tinynode: parallel tests then only copy it.
    cache = asyncio.run(run_one("create_cache", base_seed + len(names), src, config, wrapper, work, ns.timeout,
                                asyncio.Semaphore(1)))
    print(f"  {'(chain cache)':28s} {cache[1]:8s} {cache[2]:7.1f} s", flush=True)
    if cache[1] != "passed":   # a half-built cache would be copied into every test
        print("\n".join(cache[3].read_text(errors="replace").splitlines()[-ns.tail:]))
        shutil.rmtree(work / "cache", ignore_errors=True)
    results = asyncio.run(run_all())
    bad = []
    for name, status, _took, log in sorted(results):
        if status in ("failed", "timeout", "missing"):
            print(f"\n--- {name}: {status}; {log}")
            print(why(log, ns.tail))
        if name in EXPECTED_PASS and status != "passed":
            bad.append(name)
    counts = {s: sum(1 for r in results if r[1] == s)
              for s in ("passed", "failed", "skipped", "timeout", "not run")}
    print(f"\nCore's functional tests: {counts['passed']} passed, {counts['failed']} failed, "
          f"{counts['skipped']} skipped, {counts['timeout']} timed out, {counts['not run']} not run in "
          f"{time.monotonic() - start:.0f} s")
    if bad:
        print(f"FAILED: expected to pass but did not: {', '.join(bad)}")
        return 1
    if not ns.workdir and all(r[1] in ("passed", "skipped") for r in results):
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
