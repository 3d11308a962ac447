"""A `bitcoind`-compatible launcher: Bitcoin Core's functional test framework starts this as
its `bitcoind`, and it runs tinynode in the same process (exec), on the same ports, data
directory, cookie and debug.log the framework expects.

It only translates Core's arguments (command line and bitcoin.conf, as Core's ArgsManager
reads them: `-name`, `-noname`, `-name=value`, `[regtest]` sections) into tinynode's. It never
answers for tinynode: an argument that changes behaviour tinynode does not have is refused with
an error on stderr and exit status 1, so a test that needs it fails visibly instead of passing
by accident. Arguments that only tune Core's own logging, threads or discovery are listed in
IGNORED with the reason.

Data directory: the framework's chain cache keeps only `<chain>/blocks`, `<chain>/chainstate`
and `<chain>/indexes` of a node (and removes the empty `<chain>/wallets`), so tinynode's files
live under `<chain>/chainstate/`, while `.cookie` and `debug.log` are where Core puts them, and
the block files (`blk*.dat`, `rev*.dat`) are in `<chain>/blocks/` as Core's (`--blocksdir`).
"""
from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from pathlib import Path

#: Core arguments with no tinynode meaning that do not change what a test observes.
IGNORED = {
    "logtimemicros": "log format", "debug": "log categories (tinynode logs at debug level)",
    "debugexclude": "log categories", "logthreadnames": "log format",
    "logsourcelocations": "log format", "loglevel": "log categories", "nologratelimit": "log format",
    "logratelimit": "log format", "shrinkdebugfile": "log file size", "server": "RPC is always on",
    "rpcservertimeout": "HTTP idle timeout", "rpcdoccheck": "Core's help text self-check",
    "rpcthreads": "RPC worker threads", "discover": "tinynode does not discover its own address",
    "dnsseed": "tinynode has no DNS seeds", "fixedseeds": "tinynode has no fixed seeds",
    "listenonion": "tinynode has no Tor support to disable", "natpmp": "tinynode does no port mapping",
    "unsafesqlitesync": "wallet database sync mode", "keypool": "wallet key pool size",
    "fallbackfee": "wallet fee fallback", "peertimeout": "tinynode's handshake and ping timeouts",
    "maxconnections": "tinynode's own peer limits are below the framework's 94",
    "par": "script-check threads (tinynode sizes its own)",
}
#: Core booleans whose tinynode value is fixed, with the value tinynode has: any other is refused.
FIXED = {"v2transport": "0", "printtoconsole": "0"}


class LaunchError(Exception):
    pass


def _split(arg: str) -> tuple[str, str]:
    """Core's InterpretOption: `-name=value`, `-name` (= "1"), `-noname` (= "0")."""
    body = arg.lstrip("-")
    name, eq, value = body.partition("=")
    if not eq:
        value = "1"
    if name.startswith("no") and name[2:] and name not in ("noconnect",):
        name, value = name[2:], ("0" if value in ("1", "") else "1")
    return name.lower(), value


def read_args(argv: list[str]) -> dict[str, list[str]]:
    """The command line, then bitcoin.conf (its top level and the chain's section)."""
    cmd: dict[str, list[str]] = {}
    for a in argv:
        if not a.startswith("-"):
            raise LaunchError(f"Error: Command line contains unexpected token '{a}'")
        name, value = _split(a)
        cmd.setdefault(name, []).append(value)
    datadir = cmd.get("datadir", [None])[-1]
    if datadir is None:
        raise LaunchError("Error: the launcher needs -datadir")
    conf_path = Path(cmd.get("conf", ["bitcoin.conf"])[-1])
    if not conf_path.is_absolute():
        conf_path = Path(datadir) / conf_path
    top: dict[str, list[str]] = {}
    sections: dict[str, dict[str, list[str]]] = {}
    if conf_path.exists():
        current = top
        for raw in conf_path.read_text().splitlines():
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            if line.startswith("[") and line.endswith("]"):
                current = sections.setdefault(line[1:-1], {})
                continue
            if "=" not in line:
                raise LaunchError(f"Error: parse error on line in {conf_path}: {raw!r}")
            name, value = _split(line)
            current.setdefault(name, []).append(value)
    chain = _chain(cmd, top)
    merged: dict[str, list[str]] = {}
    for source in (sections.get(chain, {}), top):
        for k, v in source.items():
            merged.setdefault(k, v)
    for k, v in cmd.items():   # the command line wins over bitcoin.conf (Core's precedence)
        merged[k] = v
    if "bind" in cmd and "0" not in cmd["bind"]:   # a list setting: bitcoin.conf's too
        merged["_conf_bind"] = [v for src in (sections.get(chain, {}), top) for v in src.get("bind", [])]
    merged["chain"] = [chain]
    return merged


def _chain(cmd: dict[str, list[str]], top: dict[str, list[str]]) -> str:
    for src in (cmd, top):
        if src.get("chain"):
            return src["chain"][-1]
        for name in ("regtest", "testnet", "testnet4", "signet"):
            if src.get(name, ["0"])[-1] == "1":
                return name
    return "main"


def translate(args: dict[str, list[str]]) -> list[str]:
    """tinynode's argv for Core's arguments; LaunchError for what tinynode cannot honour."""
    chain = args.pop("chain")[0]
    if chain != "regtest":
        raise LaunchError(f"Error: tinynode runs Core's tests on regtest only, not {chain}")
    for name in ("regtest", "conf"):
        args.pop(name, None)
    datadir = Path(args.pop("datadir")[-1])
    conf_binds = args.pop("_conf_bind", [])
    chain_dir = datadir / chain
    blocksdir = Path(args.pop("blocksdir")[-1]) if "blocksdir" in args else datadir
    out = ["--network", "regtest", "--datadir", str(chain_dir / "chainstate"),
           "--blocksdir", str(blocksdir),
           "--log-file", str(chain_dir / "debug.log"), "--log-level", "debug",
           "--rpc-cookie-file", str(chain_dir / ".cookie"), "--no-mine",
           "--rpc-socket", _socket_path(datadir)]
    (chain_dir / "wallets").mkdir(parents=True, exist_ok=True)   # the cache's os.rmdir expects it

    def one(name: str, default: str | None = None) -> str | None:
        v = args.pop(name, None)
        return v[-1] if v else default

    def many(name: str) -> list[str]:
        return [v for v in args.pop(name, []) if v not in ("", "0")]

    if one("printtoconsole", "0") == "0":
        out.append("--no-log-console")
    for name in ("port", "rpcport"):
        v = one(name)
        if v is not None:
            out += ["--port" if name == "port" else "--rpc-port", v]
    # Core -bind is a list setting: the command line's values and bitcoin.conf's all apply
    # (GetSettingsList merges them; only a negation drops the config file's). Each passes
    # through to tinynode's repeatable --bind, =onion tags included.
    for b in many("bind") + [v for v in conf_binds if v not in ("", "0")]:
        out += ["--bind", b]
    if one("listen", "1") == "0":
        out.append("--no-listen")
    connect = args.get("connect", [])
    peers = many("connect") + many("addnode")
    if peers:
        out += ["--peers", ",".join(peers)]
    if connect:   # Core: any -connect (=0 included) turns off automatic outbound connections
        out.append("--no-autoconnect")
    for w in many("whitelist"):
        out += ["--whitelist", w]
    for w in many("whitebind"):
        out += ["--whitebind", w]
    if one("disablewallet", "0") == "1":
        out.append("--no-wallet")
    else:   # Core makes no wallet by itself: only createwallet/loadwallet and settings.json's
        out.append("--no-default-wallet")
    if one("rest", "0") == "1":
        out.append("--rest")
    for name, flag in (("uacomment", "--uacomment"), ("testactivationheight", "--testactivationheight")):
        for v in args.pop(name, []):
            out += [flag, v]
    for name, flag in (("mocktime", "--mocktime"), ("minimumchainwork", "--minimumchainwork")):
        v = one(name)
        if v is not None:
            out += [flag, v]
    if one("acceptnonstdtxn", "0") == "1":
        out.append("--acceptnonstdtxn")
    # issue 18: index, pruning, mining and policy options
    for name in ("txindex", "txospenderindex", "fastprune", "reindex", "reindex-chainstate", "blocksonly"):
        if one(name, "0") == "1":
            out.append(f"--{name}")
    for name in ("checkblocks", "checklevel", "stopatheight", "prune", "dbcache", "blockversion", "blockmintxfee", "blockmaxweight",
                 "blockreservedweight", "minrelaytxfee", "permitbaremultisig", "persistmempool"):
        v = one(name)
        if v is not None:
            out += [f"--{name}", v]
    for v in args.pop("test", []):
        out += ["--test", v]
    for name in list(args):
        if name in IGNORED:
            args.pop(name)
        elif name in FIXED:
            v = args.pop(name)[-1]
            if v != FIXED[name]:
                raise LaunchError(f"Error: tinynode does not support -{name}={v}")
    if args:
        names = ", ".join(f"-{k}={v[-1]}" for k, v in sorted(args.items()))
        raise LaunchError(f"Error: tinynode does not support {names} (refused, not ignored)")
    return out


def _socket_path(datadir: Path) -> str:
    """tinynode's Unix RPC socket at a short path: the framework's datadirs are too deep for
    the OS limit of about 108 bytes."""
    digest = hashlib.sha256(str(datadir.resolve()).encode()).hexdigest()[:16]
    base = Path(tempfile.gettempdir()) / "tinynode-core-tests"
    base.mkdir(mode=0o700, exist_ok=True)
    return str(base / f"{digest}.sock")


def main(argv: list[str]) -> int:
    try:
        tn_argv = translate(read_args(argv))
    except LaunchError as e:
        print(e, file=sys.stderr)
        return 1
    os.execv(sys.executable, [sys.executable, "-m", "tinynode", *tn_argv])
    return 0   # not reached


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
