"""Run tinynode's fuzz targets with atheris (coverage-guided, libFuzzer underneath).

    python contrib/fuzz/run.py tx --runs 1000000          # one target, a million inputs
    python contrib/fuzz/run.py --all --runs 20000          # every target (what CI does)
    python contrib/fuzz/run.py --list

Each target runs in its own child process (libFuzzer owns the process it runs in), with
`-timeout=1` (an input taking over 1 s is a hang) and `-rss_limit_mb` (a memory blow-up), seeded
from contrib/fuzz/corpus/<target>/ when that folder exists. Exit status: 0 when every target
finished its runs with no crash, hang, leak or disagreement; 1 otherwise. A crashing input is
written as crash-<sha1> in the working directory: turn it into a regression test.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def _child(target: str, runs: int, rss_mb: int, seconds: int) -> None:
    import atheris
    sys.path.insert(0, str(ROOT))
    with atheris.instrument_imports(include=["tinynode"]):
        from contrib.fuzz.targets import TARGETS  # noqa: E402  (instrumented import)
        import tinynode  # noqa: F401
    fn = TARGETS[target]()
    argv = [sys.argv[0], f"-runs={runs}", "-timeout=1", f"-rss_limit_mb={rss_mb}",
            f"-malloc_limit_mb={rss_mb}", "-max_len=4096", "-print_final_stats=1"]
    if seconds:
        argv.append(f"-max_total_time={seconds}")
    corpus = HERE / "corpus" / target
    if corpus.is_dir():
        argv.append(str(corpus))
    atheris.Setup(argv, fn)
    atheris.Fuzz()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("targets", nargs="*", help="target names (see --list)")
    ap.add_argument("--all", action="store_true", help="run every target")
    ap.add_argument("--list", action="store_true", help="print the target names and exit")
    ap.add_argument("--runs", type=int, default=20000, help="inputs per target (default 20000)")
    ap.add_argument("--seconds", type=int, default=0, help="also stop a target after this many seconds")
    ap.add_argument("--rss-mb", type=int, default=2048, help="memory limit per target (MiB)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:     # before anything imports tinynode: it must be imported instrumented
        _child(args.child, args.runs, args.rss_mb, args.seconds)
        return 0
    from contrib.fuzz.targets import TARGETS
    if args.list:
        print("\n".join(TARGETS))
        return 0
    names = list(TARGETS) if args.all else args.targets
    unknown = [n for n in names if n not in TARGETS]
    if not names or unknown:
        ap.error(f"unknown target(s) {unknown}" if unknown else "name a target or pass --all")
    failed = []
    for name in names:
        t0 = time.monotonic()
        cmd = [sys.executable, str(Path(__file__)), "--child", name, "--runs", str(args.runs),
               "--rss-mb", str(args.rss_mb), "--seconds", str(args.seconds)]
        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        took = time.monotonic() - t0
        stats = [ln for ln in proc.stderr.splitlines() if ln.startswith(("stat::number_of_executed_units",
                                                                          "stat::peak_rss_mb"))]
        done = next((ln.split(":")[-1].strip() for ln in stats if "executed_units" in ln), "?")
        rss = next((ln.split(":")[-1].strip() for ln in stats if "peak_rss" in ln), "?")
        status = "ok" if proc.returncode == 0 else f"FAILED (exit {proc.returncode})"
        print(f"fuzz {name:12s} {done:>9s} inputs  {took:7.1f} s  peak {rss} MiB  {status}", flush=True)
        if proc.returncode != 0:
            failed.append(name)
            sys.stderr.write("\n".join(proc.stderr.splitlines()[-40:]) + "\n")
    if failed:
        print(f"fuzz: {len(failed)} target(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
