"""Entry points: `tinynode` (the daemon) and `tinynode-cli` (talks to it over its RPC socket)."""

from __future__ import annotations

import argparse
import sys

from . import __version__


def daemon_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tinynode",
        description="tinynode: a pocket-sized Bitcoin node. Speaks Bitcoin's P2P protocol and "
        "byte formats, keeps the most-work valid chain in SQLite, and mines on tinynet.",
    )
    p.add_argument("--version", action="version", version=f"tinynode {__version__}")
    p.add_argument("--datadir", default="~/.tinynode", help="data directory (default ~/.tinynode)")
    p.add_argument("--network", choices=("tinynet", "regtest"), default="tinynet",
                   help="network to join (default tinynet)")
    return p


def daemon_main(argv: list[str] | None = None) -> int:
    daemon_parser().parse_args(argv)
    print("tinynode: the daemon arrives with the P2P and daemon issues", file=sys.stderr)
    return 1


def cli_main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="tinynode-cli", description="Talk to a running tinynode over its RPC socket.")
    p.add_argument("--version", action="version", version=f"tinynode-cli {__version__}")
    p.parse_args(argv)
    return 1
