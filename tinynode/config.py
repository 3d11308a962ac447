"""Daemon configuration: `NodeConfig` from command-line arguments with environment fallbacks.

Precedence is Core's: an explicit command-line option beats the environment (`TC_PORT`,
`TC_PEERS`, `TC_MINE`, `TC_LOG_LEVEL`), which beats the network's default. Defaults differ by
network the way the teaching chains expected: tinynet listens on every interface on 9999 and
mines to the node's own wallet out of the box; regtest listens on loopback only, on 18444, and
sits at height 0 until told to mine.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping, Sequence

from . import __version__
from .net.permissions import (PermissionParseError, WhitebindEntry, WhitelistEntry,
                              parse_whitebind, parse_whitelist)
from .params import ChainParams, get_params, parse_activation_height

# --- issue 18: Core's index, pruning, mining and policy options ---
#: Core MAX_BLOCK_WEIGHT (BIP141), the consensus limit -blockmaxweight may not exceed
MAX_BLOCK_WEIGHT = 4_000_000
#: Core DEFAULT_BLOCK_RESERVED_WEIGHT and MINIMUM_BLOCK_RESERVED_WEIGHT (policy/policy.h)
DEFAULT_BLOCK_RESERVED_WEIGHT = 8000
MINIMUM_BLOCK_RESERVED_WEIGHT = 2000
#: Core DEFAULT_BLOCK_MIN_TX_FEE, sat/kvB
DEFAULT_BLOCK_MIN_TX_FEE = 1
#: Core MIN_DISK_SPACE_FOR_BLOCK_FILES / 1 MiB: the smallest automatic prune target
MIN_PRUNE_TARGET_MIB = 550
#: Core MIN_DB_CACHE (txdb.h): the smallest -dbcache, MiB
MIN_DB_CACHE_MIB = 4
#: Core BlockManager::PRUNE_TARGET_MANUAL (-prune=1)
PRUNE_TARGET_MANUAL = (1 << 64) - 1
#: Core's -test=<option> names tinynode knows
TEST_OPTIONS = ("bip94",)

__all__ = [
    "ConfigError",
    "NodeConfig",
    "MAX_SOCKET_PATH",
    "daemon_parser",
    "from_args",
    "parse_peer",
    "default_workers",
]

#: Longest Unix socket path we accept (macOS sun_path is 104 bytes with its NUL, Linux 108).
MAX_SOCKET_PATH = 103
LOG_LEVELS = ("debug", "info", "warning", "error")


class ConfigError(ValueError):
    """A setting that cannot work; the message names the option to change."""


def default_workers() -> int:
    """Half the cores (at least one), so a demo node leaves the machine usable."""
    return max(1, (os.cpu_count() or 2) // 2)


def parse_peer(text: str, default_port: int) -> tuple[str, int]:
    """`host`, `host:port`, `[v6]` or `[v6]:port` → (host, port). ConfigError otherwise."""
    s = text.strip()
    if not s:
        raise ConfigError("empty peer address")
    host, port_s = s, ""
    if s.startswith("["):
        end = s.find("]")
        if end < 0:
            raise ConfigError(f"bad peer address {text!r}: missing ']'")
        host, rest = s[1:end], s[end + 1:]
        if rest:
            if not rest.startswith(":"):
                raise ConfigError(f"bad peer address {text!r}")
            port_s = rest[1:]
    elif s.count(":") == 1:
        host, port_s = s.split(":")
    if not host:
        raise ConfigError(f"bad peer address {text!r}: no host")
    if port_s == "":
        return host, default_port
    try:
        port = int(port_s)
    except ValueError:
        raise ConfigError(f"bad peer address {text!r}: port is not a number") from None
    if not 0 < port < 65536:
        raise ConfigError(f"bad peer address {text!r}: port out of range")
    return host, port


#: Core's HTTP server takes request bodies up to serialize.h's MAX_SIZE (0x02000000 = 32 MiB,
#: httpserver.cpp evhttp_set_max_body_size): a 4 MB block as hex in submitblock fits.
MAX_RPC_BODY = 0x02000000

@dataclass(frozen=True, slots=True)
class NodeConfig:
    """Everything a `Node` needs to start. Timeouts live here so tests can shrink them."""

    datadir: Path
    network: str = "regtest"
    port: int = 0                      # 0 = any free port (tests)
    bind: str = "127.0.0.1"
    peers: tuple[tuple[str, int], ...] = ()
    listen: bool = True
    mine: bool = False
    mine_to: str | None = None
    mine_workers: int = 1
    rpc_socket: Path | None = None     # None = <datadir>/<network>/rpc.sock
    log_level: str = "info"
    log_file: Path | None = None
    rpc_port: int | None = None        # loopback TCP RPC with cookie auth; None = off, 0 = any port
    rpc_cookie_file: Path | None = None  # Core -rpccookiefile; None = <datadir>/<network>/.cookie
    wallet: bool = True                # Core -disablewallet is wallet=False
    default_wallet: bool = True        # False: no wallet "" made or loaded at start (as Core)
    autoconnect: bool = True           # Core -connect=0 is autoconnect=False: --peers and addnode only
    log_console: bool = True           # Core -printtoconsole: the log on stderr too
    rpc_timeout: float = 60.0          # per request, seconds
    rpc_max_body: int = MAX_RPC_BODY   # Core's HTTP server: MAX_SIZE (32 MiB)
    rest: bool = False                 # Core -rest: the REST interface on the TCP RPC port
    explorer: bool = False             # the explorer page on the TCP RPC port (implies rest)
    whitelist: tuple[WhitelistEntry, ...] = ()   # Core -whitelist: permissions by peer address
    whitebind: tuple[WhitebindEntry, ...] = ()   # Core -whitebind: listeners granting permissions
    binds: tuple[BindEntry, ...] = ()  # Core's other -bind listeners (=onion tagged ones included)
    mocktime: int = 0                  # Core -mocktime: start with the clock frozen here (0 = system clock)
    txospenderindex: bool = False      # Core -txospenderindex: the spender index (gettxspendingprevout)
    dbcache: int = 300                 # Core -dbcache: the coins cache's memory budget, MiB
    par: int = 0                       # Core -par: script check threads incl. the caller (0 = auto)
    scriptcheck_mode: str = "auto"     # what the script check workers are (chain/checkqueue.py)
    # Core's test-chain options
    accept_nonstd_txn: bool = False    # Core -acceptnonstdtxn (test chains only)
    minimum_chain_work: int | None = None   # Core -minimumchainwork (None = the network's)
    test_activation_heights: tuple[tuple[str, int], ...] = ()   # Core -testactivationheight
    uacomments: tuple[str, ...] = ()   # Core -uacomment: "(c1; c2)" in our user agent
    # --- Core's index, pruning, mining and policy options (issue 18) ---
    txindex: bool = False              # Core -txindex: RPC/REST may look confirmed txs up by txid
    prune: int = 0                     # Core -prune: 0 off, 1 manual (pruneblockchain), N MiB target
    fastprune: bool = False            # Core -fastprune: 64 KiB block files, prune after height 100
    blocksdir: Path | None = None      # Core -blocksdir: block files in <blocksdir>/<network>/blocks
    block_version: int | None = None   # Core -blockversion (regtest only): template nVersion
    block_min_tx_fee: int = DEFAULT_BLOCK_MIN_TX_FEE         # Core -blockmintxfee, sat/kvB
    block_max_weight: int = MAX_BLOCK_WEIGHT                 # Core -blockmaxweight
    block_reserved_weight: int = DEFAULT_BLOCK_RESERVED_WEIGHT   # Core -blockreservedweight
    min_relay_tx_fee: int | None = None   # Core -minrelaytxfee, sat/kvB; None = policy default
    permit_bare_multisig: bool = True  # Core -permitbaremultisig
    persist_mempool: bool = True       # Core -persistmempool: mempool.dat loaded at start, written at stop
    blocks_only: bool = False          # Core -blocksonly: ask peers for no txs (relay=0 in version)
    test: tuple[str, ...] = ()         # Core -test=<option>: only "bip94" (regtest)
    reindex: bool = False              # Core -reindex: rebuild index, chain state, indexes from stored blocks
    reindex_chainstate: bool = False   # Core -reindex-chainstate: rebuild chain state and indexes only
    check_blocks: int = 6              # Core -checkblocks: blocks VerifyDB checks at start (<= 0: all)
    check_level: int = 3               # Core -checklevel: how thoroughly (0-4)
    stop_at_height: int = 0            # Core -stopatheight: stop once the tip reaches it (0: never)
    extra: Mapping[str, object] = field(default_factory=dict, compare=False)

    @property
    def params(self) -> ChainParams:
        """The network's params with this config's test options applied (Core builds its
        CChainParams from -testactivationheight; -minimumchainwork and -acceptnonstdtxn
        travel with them here)."""
        params = get_params(self.network)
        if self.test_activation_heights:
            params = params.with_activation_heights(dict(self.test_activation_heights))
        changes: dict[str, object] = {}
        if self.minimum_chain_work is not None:
            changes["minimum_chain_work"] = self.minimum_chain_work
        if self.accept_nonstd_txn:
            changes["require_standard"] = False
        if "bip94" in self.test and not params.enforce_bip94:
            changes["enforce_bip94"] = True   # Core -test=bip94 (regtest only)
        return replace(params, **changes) if changes else params

    @property
    def script_check_workers(self) -> int:
        """Core's -par as a number of script check workers beside the calling thread."""
        from .chain.checkqueue import script_check_workers

        return script_check_workers(self.par)

    @property
    def dbcache_bytes(self) -> int:
        """Core's -dbcache in bytes, at least MIN_DB_CACHE (4 MiB), as Core clamps it."""
        return max(self.dbcache, MIN_DB_CACHE_MIB) << 20

    @property
    def prune_target_bytes(self) -> int:
        """Core `BlockManager::GetPruneTarget`: 0 off, PRUNE_TARGET_MANUAL for -prune=1, else
        the target in bytes."""
        if self.prune == 0:
            return 0
        return PRUNE_TARGET_MANUAL if self.prune == 1 else self.prune * 1024 * 1024

    @property
    def network_dir(self) -> Path:
        """Core's `GetDataDir()`: one directory per network under the datadir."""
        return self.datadir / self.network

    @property
    def blocks_dir(self) -> Path:
        """Core's `BlocksDir()`: the blk/rev files, `<blocksdir or datadir>/<network>/blocks`."""
        return (self.blocksdir if self.blocksdir is not None else self.datadir) / self.network / "blocks"

    @property
    def rpc_cookie_path(self) -> Path:
        return self.rpc_cookie_file if self.rpc_cookie_file is not None else self.network_dir / ".cookie"

    @property
    def rpc_socket_path(self) -> Path:
        return self.rpc_socket if self.rpc_socket is not None else self.network_dir / "rpc.sock"

    def validate(self) -> None:
        """Raise ConfigError naming the option to change."""
        get_params(self.network)
        n = len(os.fsencode(str(self.rpc_socket_path)))
        if n > MAX_SOCKET_PATH:
            raise ConfigError(
                f"RPC socket path {str(self.rpc_socket_path)!r} is {n} bytes, over the OS limit of "
                f"{MAX_SOCKET_PATH}; choose a shorter one with --rpc-socket PATH (or a shorter --datadir)")
        if not 0 <= self.port < 65536:
            raise ConfigError(f"--port {self.port} is out of range")
        if self.rpc_port is not None and not 0 <= self.rpc_port < 65536:
            raise ConfigError(f"--rpc-port {self.rpc_port} is out of range")
        if self.explorer and self.rpc_port is None:
            raise ConfigError("--explorer is served on the TCP RPC port (127.0.0.1); give "
                              "--rpc-port N as well")
        if self.rest and self.rpc_port is None:
            raise ConfigError("--rest serves on the TCP RPC port, as Bitcoin Core's REST interface "
                              "does; give --rpc-port N as well")
        if self.mine_workers < 1:
            raise ConfigError("--mine-workers must be at least 1")
        if self.log_level not in LOG_LEVELS:
            raise ConfigError(f"--log-level must be one of {', '.join(LOG_LEVELS)}")
        if self.mocktime:
            from .clock import MAX_MOCKTIME
            if not 0 <= self.mocktime <= MAX_MOCKTIME:
                raise ConfigError(f"--mocktime must be in the range [0, {MAX_MOCKTIME}], not {self.mocktime}")
        params = get_params(self.network)
        if self.accept_nonstd_txn and not params.is_test_chain:
            raise ConfigError(f"acceptnonstdtxn is not currently supported for {params.name} chain")
        if self.test_activation_heights and not params.is_test_chain:
            raise ConfigError(f"-testactivationheight is only for test chains, not {params.name}; "
                              f"drop --testactivationheight or use --network regtest")
        for name, height in self.test_activation_heights:
            try:
                parse_activation_height(f"{name}@{height}")
            except ValueError as e:
                raise ConfigError(str(e)) from None
        if self.minimum_chain_work is not None and not 0 <= self.minimum_chain_work < 2**256:
            raise ConfigError("Invalid minimum work specified, must be up to 64 hex digits")
        if self.uacomments:
            from .net.peer import check_ua_comments
            try:
                check_ua_comments(self.uacomments)
            except ValueError as e:
                raise ConfigError(str(e)) from None
        self._validate_core_options()
        if (self.whitebind or self.binds) and not self.listen:
            raise ConfigError("Cannot set -bind or -whitebind together with -listen=0; "
                              "drop --whitebind or --no-listen")


    def _validate_core_options(self) -> None:
        """Core's AppInitParameterInteraction checks for the options of issue 18, with its
        messages (init.cpp, node/blockmanager_args.cpp)."""
        if self.prune < 0:
            raise ConfigError("Prune cannot be configured with a negative value.")
        if 1 < self.prune < MIN_PRUNE_TARGET_MIB:
            raise ConfigError(f"Prune configured below the minimum of {MIN_PRUNE_TARGET_MIB} "
                              "MiB.  Please use a higher number.")
        if self.prune and self.txindex:
            raise ConfigError("Prune mode is incompatible with -txindex.")
        if self.prune and self.txospenderindex:   # Core init.cpp: the index reads spending blocks
            raise ConfigError("Prune mode is incompatible with -txospenderindex.")
        if self.prune and self.reindex_chainstate:   # Core init.cpp: pruned bodies cannot be reconnected
            raise ConfigError("Prune mode is incompatible with -reindex-chainstate. Use full -reindex instead.")
        if self.block_version is not None and self.network != "regtest":
            raise ConfigError("--blockversion is a regtest-only option (Core ignores -blockversion "
                              "on networks that do not mine blocks on demand)")
        if self.block_max_weight > MAX_BLOCK_WEIGHT:
            raise ConfigError(f"Specified -blockmaxweight ({self.block_max_weight}) exceeds "
                              f"consensus maximum block weight ({MAX_BLOCK_WEIGHT})")
        if self.block_reserved_weight > MAX_BLOCK_WEIGHT:
            raise ConfigError(f"Specified -blockreservedweight ({self.block_reserved_weight}) "
                              f"exceeds consensus maximum block weight ({MAX_BLOCK_WEIGHT})")
        if self.block_reserved_weight < MINIMUM_BLOCK_RESERVED_WEIGHT:
            raise ConfigError(f"Specified -blockreservedweight ({self.block_reserved_weight}) "
                              f"is lower than minimum safety value of ({MINIMUM_BLOCK_RESERVED_WEIGHT})")
        for t in self.test:
            if t not in TEST_OPTIONS:
                raise ConfigError(f"Unrecognised option \"{t}\" provided in -test=<option>.")
            if self.network != "regtest":
                raise ConfigError("-test=<option> can only be used with regtest")


def parse_money(text: str, option: str) -> int:
    """Core `ParseMoney` for an amount option in coins (8 decimals max) → satoshis; ConfigError
    with Core's `AmountErrMsg` otherwise."""
    from decimal import Decimal, InvalidOperation
    try:
        d = Decimal(text.strip())
    except InvalidOperation:
        d = None
    if d is None or not d.is_finite() or d < 0 or d != d.quantize(Decimal("1e-8")) or d > 21_000_000:
        raise ConfigError(f"Invalid amount for -{option}=<amount>: '{text}'")
    return int(d * 100_000_000)


@dataclass(frozen=True, slots=True)
class BindEntry:
    """One -bind listener: `host`, `port`, and whether it is tagged `=onion` (Core's
    CConnman::Options::onion_binds: peers accepted there count as coming from the onion network)."""

    host: str
    port: int
    onion: bool = False
    port_given: bool = True


def parse_bind(text: str, default_port: int, onion_port: int) -> BindEntry:
    """Core init.cpp's -bind parsing: `ADDR[:PORT]`, or `ADDR[:PORT]=onion` (an onion bind's
    port defaults to the onion service target port, the P2P port + 1)."""
    body, onion = text, False
    head, eq, tag = text.rpartition("=")
    if eq:
        if tag != "onion":
            raise ConfigError(f"Cannot resolve -bind address: '{text}'")
        body, onion = head, True
    host, port_text = body, ""
    if body.startswith("["):
        close = body.find("]")
        if close < 0:
            raise ConfigError(f"Cannot resolve -bind address: '{text}'")
        host, rest = body[1:close], body[close + 1:]
        if rest:
            if not rest.startswith(":"):
                raise ConfigError(f"Cannot resolve -bind address: '{text}'")
            port_text = rest[1:]
    elif body.count(":") == 1:
        host, _, port_text = body.partition(":")
    if not host:
        raise ConfigError(f"Cannot resolve -bind address: '{text}'")
    if port_text:
        if not port_text.isdigit() or not 0 <= int(port_text) < 65536:
            raise ConfigError(f"Cannot resolve -bind address: '{text}'")
        return BindEntry(host, int(port_text), onion)
    return BindEntry(host, onion_port if onion else default_port, onion, port_given=False)


def _int_or_none(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None


def daemon_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tinynode",
        description=(
            "tinynode: a pocket-sized Bitcoin node. It speaks Bitcoin's P2P protocol and byte "
            "formats, keeps the most-work valid chain in SQLite, keeps a wallet, and mines on "
            "tinynet. Run it with no options to join tinynet on port 9999 and mine to your own "
            "wallet; talk to it with tinynode-cli."),
        epilog=(
            "Environment: TC_PORT (--port), TC_PEERS (--peers), TC_MINE (--mine-workers; 0 turns "
            "mining off), TC_LOG_LEVEL (--log-level). Command-line options win over the "
            "environment. `tinynode lab --help` explains the lab: several local nodes in one "
            "directory, with topologies, partitions and forks to watch."),
    )
    p.add_argument("--version", action="version", version=f"tinynode {__version__}")
    p.add_argument("--datadir", default=None, metavar="DIR",
                   help="data directory; chain, wallet and RPC socket live in DIR/<network>/ "
                        "(default ~/.tinynode)")
    p.add_argument("--blocksdir", default=None, metavar="DIR",
                   help="where block data goes: blk*.dat / rev*.dat files (Core's layout) in "
                        "DIR/<network>/blocks, as Core's -blocksdir (default: the datadir)")
    p.add_argument("--network", choices=("tinynet", "regtest"), default="tinynet",
                   help="network to join: tinynet (the demo network, mines by default) or "
                        "regtest (Bitcoin Core's regtest; no mining unless asked) (default tinynet)")
    p.add_argument("--port", type=int, default=None, metavar="N",
                   help="P2P port to listen on; 0 picks any free port "
                        "(env TC_PORT; default 9999 on tinynet, 18444 on regtest)")
    p.add_argument("--bind", action="append", default=[], metavar="ADDR[:PORT][=onion]",
                   help="address to listen on (default 0.0.0.0 on tinynet, 127.0.0.1 on regtest); "
                        "repeatable: the first untagged one is the main listener (its port wins "
                        "over --port), the others listen too; =onion marks a listener whose "
                        "inbound peers count as Tor peers (Core -bind=ADDR:PORT=onion)")
    p.add_argument("--peers", default=None, metavar="HOST[:PORT],...",
                   help="comma-separated peers to connect to at start (env TC_PEERS); the port "
                        "defaults to the network's")
    p.add_argument("--listen", dest="listen", action="store_true", default=True,
                   help="accept incoming peers (default)")
    p.add_argument("--no-listen", dest="listen", action="store_false",
                   help="do not accept incoming peers; only dial out")
    p.add_argument("--mine", dest="mine", action="store_true", default=None,
                   help="mine blocks continuously (default on tinynet, off on regtest)")
    p.add_argument("--no-mine", dest="mine", action="store_false",
                   help="do not mine")
    p.add_argument("--mine-to", default=None, metavar="ADDR",
                   help="pay mined coins to ADDR instead of a fresh wallet address (implies --mine)")
    p.add_argument("--mine-workers", type=int, default=None, metavar="N",
                   help="mining processes (env TC_MINE; default half the CPU cores)")
    p.add_argument("--rpc-socket", default=None, metavar="PATH",
                   help="Unix socket for tinynode-cli (default DIR/<network>/rpc.sock; the OS "
                        f"limits it to about {MAX_SOCKET_PATH} bytes)")
    p.add_argument("--rpc-port", type=int, default=None, metavar="N",
                   help="also serve RPC on 127.0.0.1:N with Bitcoin Core's cookie auth (the cookie "
                        "is DIR/<network>/.cookie); for existing Bitcoin RPC clients (default off)")
    p.add_argument("--rpc-cookie-file", default=None, metavar="PATH",
                   help="write the --rpc-port cookie to PATH instead of DIR/<network>/.cookie "
                        "(Core's -rpccookiefile)")
    p.add_argument("--no-autoconnect", dest="autoconnect", action="store_false", default=True,
                   help="dial only --peers and addnode targets, never addresses learned from "
                        "other peers (Core's -connect=0)")
    p.add_argument("--no-wallet", dest="wallet", action="store_false", default=True,
                   help="run without a wallet: no wallet RPCs, no wallet file (Core's -disablewallet)")
    p.add_argument("--no-default-wallet", dest="default_wallet", action="store_false", default=True,
                   help="do not make or load the default wallet \"\" at start: only the wallets of "
                        "settings.json, createwallet and loadwallet (as Bitcoin Core, which makes "
                        "no wallet by itself)")
    p.add_argument("--rest", action="store_true", default=False,
                   help="serve Bitcoin Core's REST interface (/rest/chaininfo.json, /rest/block/…, "
                        "/rest/tx/…, /rest/getutxos/…, /rest/mempool/…) on the --rpc-port "
                        "listener, read-only and without auth, as Core's -rest (default off)")
    p.add_argument("--explorer", action="store_true", default=False,
                   help="serve a small block explorer at http://127.0.0.1:N/explorer/ on the "
                        "--rpc-port listener (read-only, no auth; turns on --rest) (default off)")
    p.add_argument("--whitelist", action="append", default=[], metavar="[PERMISSIONS@]IP[/MASK]",
                   help="grant peers connecting from IP (or the subnet IP/MASK) permissions, as "
                        "Bitcoin Core's -whitelist: a comma-separated list of bloomfilter, noban, "
                        "forcerelay, relay, mempool, download, addr, all, and in/out for the "
                        "connection direction (default in); without PERMISSIONS@ the peer gets "
                        "noban,relay,mempool,download. Repeatable")
    p.add_argument("--whitebind", action="append", default=[], metavar="[PERMISSIONS@]IP:PORT",
                   help="also listen on IP:PORT and grant the peers connecting there permissions "
                        "(the same names as --whitelist, inbound only). Repeatable")
    p.add_argument("--mocktime", type=int, default=0, metavar="N",
                   help="replace the actual time with N seconds since the epoch, frozen until "
                        "`setmocktime` changes it, as Bitcoin Core's -mocktime (for tests; "
                        "default 0: the system clock)")
    p.add_argument("--log-level", default=None, choices=LOG_LEVELS,
                   help="how much to log (env TC_LOG_LEVEL; default info)")
    p.add_argument("--log-file", default=None, metavar="PATH",
                   help="also append the log to PATH")
    p.add_argument("--no-log-console", dest="log_console", action="store_false", default=True,
                   help="do not write the log to stderr (with --log-file: Core's -printtoconsole=0)")
    p.add_argument("--txospenderindex", action="store_true", default=False,
                   help="maintain a transaction output spender index, used by the "
                        "gettxspendingprevout RPC for confirmed spends, as Bitcoin Core's "
                        "-txospenderindex (built from the stored blocks at start when missing; "
                        "default off)")
    p.add_argument("--acceptnonstdtxn", action="store_true", default=False,
                   help="relay and mine non-standard transactions, as Bitcoin Core's "
                        "-acceptnonstdtxn (regtest only; default off)")
    p.add_argument("--minimumchainwork", default=None, metavar="HEX",
                   help="minimum work assumed to exist on a valid chain, in hex, as Bitcoin Core's "
                        "-minimumchainwork: below it the node is in initial block download and "
                        "does not store headers or blocks of chains with less work (default 0)")
    p.add_argument("--testactivationheight", action="append", default=[], metavar="NAME@HEIGHT",
                   help="regtest only: activate the buried soft fork NAME (segwit, bip34, dersig, "
                        "cltv, csv) at HEIGHT, as Bitcoin Core's -testactivationheight. Repeatable")
    p.add_argument("--uacomment", action="append", default=[], metavar="CMT",
                   help="append CMT to the user agent, as Bitcoin Core's -uacomment. Repeatable")
    _add_core_options(p)
    return p


def parse_minimum_chain_work(text: str) -> int:
    """Core `uint256::FromUserHex` for -minimumchainwork: optional 0x, 1 to 64 hex digits."""
    digits = text[2:] if text[:2] in ("0x", "0X") else text
    if not digits or len(digits) > 64 or any(c not in "0123456789abcdefABCDEF" for c in digits):
        raise ConfigError(f"Invalid minimum work specified ({text}), must be up to 64 hex digits")
    return int(digits, 16)


def _add_core_options(p: argparse.ArgumentParser) -> None:
    """Bitcoin Core's index, pruning, mining and policy options (issue 18), under Core's names."""
    g = p.add_argument_group("index, pruning, mining and policy (Bitcoin Core's options)")
    g.add_argument("--txindex", action="store_true", default=False,
                   help="let getrawtransaction and REST /tx find confirmed transactions by txid "
                        "alone, as Core's -txindex (tinynode always keeps the index; without this "
                        "option, as Core without -txindex, a confirmed tx needs its block hash)")
    g.add_argument("--prune", type=int, default=0, metavar="N",
                   help="delete old block bodies, as Core's -prune: 0 off (default), 1 only on "
                        "`pruneblockchain HEIGHT`, N>=550 keep about N MiB of blocks; the last 288 "
                        "blocks are always kept. A pruned node advertises NODE_NETWORK_LIMITED")
    g.add_argument("--dbcache", type=int, default=300, metavar="MiB",
                   help="memory in MiB for the coins cache and the store's page cache, as "
                        "Core's -dbcache (default 300, minimum 4): coins are written to disk "
                        "when it is full, every 10 minutes and at shutdown; more means fewer "
                        "disk writes during sync")
    g.add_argument("--par", type=int, default=0, metavar="N",
                   help="script verification threads or processes, counting the one that "
                        "connects blocks, as Core's -par: 0 = one per core (default), 1 = "
                        "inline, <0 = leave that many cores free; at most 16")
    g.add_argument("--scriptcheck-mode", default="auto",
                   choices=("auto", "inline", "threads", "processes"),
                   help="what the --par workers are: threads (they share the GIL: only the "
                        "signature checks overlap), processes (whole checks on other cores; "
                        "each block's inputs are sent as bytes), inline, or auto (default: the "
                        "fastest, measured every 256 blocks)")
    g.add_argument("--blocksonly", action="store_true", default=False,
                   help="ask peers for no transactions, as Core's -blocksonly: our version says "
                        "relay=0 and only peers with the `relay` permission may send txs")
    g.add_argument("--fastprune", action="store_true", default=False,
                   help="Core's test option: block files of 64 KiB instead of 128 MiB, and "
                        "automatic pruning from height 100 instead of 1000")
    g.add_argument("--blockversion", type=int, default=None, metavar="N",
                   help="regtest only: the version of block templates (Core's -blockversion)")
    g.add_argument("--blockmintxfee", default=None, metavar="AMT",
                   help="lowest fee rate, in coins/kvB, of transactions put in block templates "
                        "(Core's -blockmintxfee; default 0.00000001)")
    g.add_argument("--blockmaxweight", type=int, default=None, metavar="N",
                   help=f"maximum BIP141 weight of a block template (default {MAX_BLOCK_WEIGHT})")
    g.add_argument("--blockreservedweight", type=int, default=None, metavar="N",
                   help="weight kept free in templates for the header and coinbase "
                        f"({MINIMUM_BLOCK_RESERVED_WEIGHT}..{MAX_BLOCK_WEIGHT}; "
                        f"default {DEFAULT_BLOCK_RESERVED_WEIGHT})")
    g.add_argument("--minrelaytxfee", default=None, metavar="AMT",
                   help="fee rate, in coins/kvB, below which transactions are not accepted or "
                        "relayed (Core's -minrelaytxfee; default 0.00000100)")
    g.add_argument("--permitbaremultisig", type=int, choices=(0, 1), default=1, metavar="0|1",
                   help="relay bare multisig outputs (Core's -permitbaremultisig; default 1)")
    g.add_argument("--persistmempool", type=int, choices=(0, 1), default=1, metavar="0|1",
                   help="load the mempool from mempool.dat at start and write it at shutdown "
                        "(Core's -persistmempool; default 1)")
    g.add_argument("--reindex", action="store_true", default=False,
                   help="wipe the block index, chain state and indexes and rebuild them from the "
                        "stored block bodies, validating every block again, as Core's -reindex")
    g.add_argument("--reindex-chainstate", action="store_true", default=False,
                   help="wipe the chain state (coins, undo data) and indexes and rebuild them by "
                        "connecting the stored blocks again; the block index is kept, as Core's "
                        "-reindex-chainstate (not with --prune)")
    g.add_argument("--checkblocks", type=int, default=6, metavar="N",
                   help="how many blocks of the tip to verify at start (Core's -checkblocks; "
                        "default 6, 0 or less = all)")
    g.add_argument("--checklevel", type=int, default=3, metavar="N",
                   help="how thorough the start-up verification is, 0-4 (Core's -checklevel: "
                        "read, CheckBlock, undo data, disconnect in memory, reconnect; default 3)")
    g.add_argument("--stopatheight", type=int, default=0, metavar="N",
                   help="stop the node once the active chain reaches height N (Core's "
                        "-stopatheight; default 0: never)")
    g.add_argument("--test", action="append", default=[], metavar="OPTION",
                   help="regtest test option as Core's -test=<option>: bip94 enforces the BIP94 "
                        "timewarp rule. Repeatable")


def _core_options(ns: argparse.Namespace) -> dict[str, object]:
    """NodeConfig fields from the options of `_add_core_options`."""
    out: dict[str, object] = {
        "txindex": ns.txindex, "prune": ns.prune, "fastprune": ns.fastprune, "dbcache": ns.dbcache,
        "par": ns.par, "scriptcheck_mode": ns.scriptcheck_mode,
        "block_version": ns.blockversion, "permit_bare_multisig": bool(ns.permitbaremultisig),
        "persist_mempool": bool(ns.persistmempool), "blocks_only": bool(ns.blocksonly),
        "test": tuple(ns.test),
        "reindex": ns.reindex, "reindex_chainstate": ns.reindex_chainstate,
        "check_blocks": ns.checkblocks, "check_level": ns.checklevel,
        "stop_at_height": ns.stopatheight,
    }
    if ns.blockmintxfee is not None:
        out["block_min_tx_fee"] = parse_money(ns.blockmintxfee, "blockmintxfee")
    if ns.minrelaytxfee is not None:
        out["min_relay_tx_fee"] = parse_money(ns.minrelaytxfee, "minrelaytxfee")
    if ns.blockmaxweight is not None:
        out["block_max_weight"] = ns.blockmaxweight
    if ns.blockreservedweight is not None:
        out["block_reserved_weight"] = ns.blockreservedweight
    return out


def from_args(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> NodeConfig:
    """Build a NodeConfig from argv and env (both default to this process's).

    argparse errors exit with status 2 as usual; settings that parse but cannot work raise
    ConfigError with a message naming the option.
    """
    env = os.environ if env is None else env
    ns = daemon_parser().parse_args(argv)
    params = get_params(ns.network)

    home = env.get("HOME") or os.path.expanduser("~")
    datadir = Path(os.path.expanduser(ns.datadir)) if ns.datadir else Path(home) / ".tinynode"

    if ns.port is not None:
        port = ns.port
    elif env.get("TC_PORT"):
        try:
            port = int(env["TC_PORT"])
        except ValueError:
            raise ConfigError(f"TC_PORT={env['TC_PORT']!r} is not a port number") from None
    else:
        port = params.default_port

    bind, binds = params.default_bind, []
    plain_seen = False
    for text in ns.bind:
        entry = parse_bind(text, port, params.default_port + 1)
        if not entry.onion and not plain_seen:
            plain_seen = True
            bind = entry.host
            if entry.port_given:
                port = entry.port
        else:
            binds.append(entry)

    peers_text = ns.peers if ns.peers is not None else env.get("TC_PEERS", "")
    peers = tuple(parse_peer(p, params.default_port) for p in peers_text.split(",") if p.strip())

    env_workers = _int_or_none(env.get("TC_MINE", "")) if env.get("TC_MINE") else None
    if env.get("TC_MINE") and env_workers is None:
        raise ConfigError(f"TC_MINE={env['TC_MINE']!r} is not a number of mining workers")

    if ns.mine is not None:
        mine = ns.mine
    elif ns.mine_to:
        mine = True
    elif env_workers is not None:
        mine = env_workers > 0
    else:
        mine = params.mine_by_default

    if ns.mine_workers is not None:
        workers = ns.mine_workers
    elif env_workers:
        workers = env_workers
    else:
        workers = default_workers()

    log_level = ns.log_level or env.get("TC_LOG_LEVEL", "info").lower()

    try:   # Core stops at the first value it cannot read and names it
        whitelist = tuple(parse_whitelist(v) for v in ns.whitelist)
        whitebind = tuple(parse_whitebind(v) for v in ns.whitebind)
    except PermissionParseError as e:
        raise ConfigError(str(e)) from None

    heights = []
    for text in ns.testactivationheight:
        try:
            heights.append(parse_activation_height(text))
        except ValueError as e:
            raise ConfigError(str(e)) from None
    heights = tuple(heights)

    cfg = NodeConfig(
        datadir=datadir,
        blocksdir=Path(os.path.expanduser(ns.blocksdir)) if ns.blocksdir else None,
        network=ns.network,
        port=port,
        bind=bind,
        peers=peers,
        listen=ns.listen,
        mine=mine,
        mine_to=ns.mine_to,
        mine_workers=workers,
        rpc_socket=Path(os.path.expanduser(ns.rpc_socket)) if ns.rpc_socket else None,
        rpc_port=ns.rpc_port,
        rpc_cookie_file=Path(os.path.expanduser(ns.rpc_cookie_file)) if ns.rpc_cookie_file else None,
        wallet=ns.wallet,
        default_wallet=ns.default_wallet,
        autoconnect=ns.autoconnect,
        log_console=ns.log_console,
        rest=ns.rest or ns.explorer,
        explorer=ns.explorer,
        log_level=log_level,
        log_file=Path(os.path.expanduser(ns.log_file)) if ns.log_file else None,
        whitelist=whitelist,
        whitebind=whitebind,
        binds=tuple(binds),
        mocktime=ns.mocktime,
        accept_nonstd_txn=ns.acceptnonstdtxn,
        txospenderindex=ns.txospenderindex,
        minimum_chain_work=(parse_minimum_chain_work(ns.minimumchainwork)
                            if ns.minimumchainwork is not None else None),
        test_activation_heights=heights,
        uacomments=tuple(ns.uacomment),
        **_core_options(ns),   # type: ignore[arg-type]
    )
    cfg.validate()
    if cfg.mine_to:
        from .primitives.address import AddressError, decode_address
        try:
            decode_address(cfg.mine_to, params)
        except AddressError as e:
            raise ConfigError(f"--mine-to {cfg.mine_to!r} is not a {params.name} address: {e}") from None
    return cfg
