"""Entry points: `tinynode` (the daemon) and `tinynode-cli` (talks to it over its RPC socket).

`tinynode` parses options (config.py), sets up logging (the only place that does), picks uvloop
when it is installed, and runs one `Node` until SIGINT/SIGTERM or `tinynode-cli stop`.

`tinynode-cli` is bitcoin-cli shaped: `tinynode-cli [options] <method> [args...]` with
arguments converted to JSON per method as bitcoin-cli's `vRPCConvertParams` does, JSON output,
and errors as `error code: N` / `error message:` with exit status 1. It also knows the friendly
verbs of the teaching chains (`balance`, `send`, `status`, `mine`, ...), which print short
lines for people (`--json` for machines). It imports only the stdlib client, so it starts fast.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Callable

from . import __version__

__all__ = ["daemon_main", "cli_main", "main"]


# =============================================================================== the daemon

def _setup_logging(level: str, log_file: Any, console: bool = True) -> None:
    import logging

    fmt = logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%Y-%m-%d %H:%M:%S")
    root = logging.getLogger()
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    for h in list(root.handlers):
        root.removeHandler(h)
    if console or log_file is None:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(fmt)
        root.addHandler(handler)
    if log_file is not None:
        os.makedirs(os.path.dirname(os.path.abspath(log_file)), exist_ok=True)
        fh = logging.FileHandler(log_file)
        fh.setFormatter(fmt)
        root.addHandler(fh)
    # third-party chatter stays quiet unless debugging
    if level != "debug":
        logging.getLogger("aiohttp").setLevel(logging.WARNING)
        logging.getLogger("asyncio").setLevel(logging.WARNING)


def _loop_factory() -> Callable[[], Any] | None:
    """uvloop when it is installed (chosen once, here)."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


#: the daemon process's cyclic-GC thresholds; CPython's default is (700, 10, 10)
DAEMON_GC_THRESHOLDS = (700, 10, 100)


def _tune_gc() -> None:
    """Full collections a tenth as often, in the daemon process only (in-process test nodes
    share their process and keep its settings). A full collection walks every tracked object,
    the block index included, and the blocks the chain writer holds until its next commit die
    old, so with CPython's default the 100,000-block connect bench ran 168 full collections,
    24.6 s of GC; with 100 here, 18 and 5.9 s (contrib/bench/README.md). Acyclic objects are
    still freed at once by reference counting; only cycles wait longer."""
    import gc
    gc.set_threshold(*DAEMON_GC_THRESHOLDS)


def daemon_main(argv: list[str] | None = None) -> int:
    import asyncio
    import logging

    from .config import ConfigError, from_args

    _tune_gc()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "lab":  # `tinynode lab ...`: local multi-node playgrounds
        from .lab import lab_main
        return lab_main(argv[1:], run_cli=cli_main)
    try:
        cfg = from_args(argv)
    except ConfigError as e:
        print(f"Error: {e}", file=sys.stderr)   # Core's InitError on stderr
        return 1
    _setup_logging(cfg.log_level, cfg.log_file, cfg.log_console)
    log = logging.getLogger("tinynode")

    from .node import Node, NodeError

    async def main() -> int:
        node = Node(cfg)
        try:
            status = await node.run()   # 1 after a fatal error (the node logged it)
        except NodeError as e:
            log.error("%s", e)
            if not cfg.log_console:   # Core's InitError reaches stderr whatever -printtoconsole says
                print(f"{e.caption}{e}", file=sys.stderr)
            return 1
        except Exception as e:  # a bug or a broken data directory: say so, with the details
            log.exception("tinynode stopped on an unexpected error: %s", e)
            return 1
        return status

    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            return runner.run(main())
    except KeyboardInterrupt:
        return 0


def main() -> int:
    return daemon_main()


# =============================================================================== the CLI

#: bitcoin-cli's `vRPCConvertParams` (Core rpc/client.cpp) for the methods tinynode serves: one
#: row per (method, argument position, argument name, format). JSON arguments are parsed as JSON
#: (an error if they do not parse); JSON_OR_STRING ones are parsed when they parse and passed as
#: strings otherwise (`getblockstats <hash>` or `getblockstats 100`); everything else is a string.
#: Positional (`convert_args`) and -named (`convert_named`) conversion both read this one table.
JSON, JSON_OR_STRING = "json", "json_or_string"
CONVERT_PARAMS: tuple[tuple[str, int, str, str], ...] = (
    ("generatetoaddress", 0, "nblocks", JSON),
    ("generatetoaddress", 2, "maxtries", JSON),
    ("generateblock", 1, "transactions", JSON),
    ("generateblock", 2, "submit", JSON),
    ("getnetworkhashps", 0, "nblocks", JSON),
    ("getnetworkhashps", 1, "height", JSON),
    ("sendtoaddress", 1, "amount", JSON),
    ("sendtoaddress", 4, "subtractfeefromamount", JSON),
    ("sendtoaddress", 5, "replaceable", JSON),
    ("sendtoaddress", 6, "conf_target", JSON),
    ("sendtoaddress", 8, "avoid_reuse", JSON),
    ("sendtoaddress", 9, "fee_rate", JSON),
    ("sendtoaddress", 10, "verbose", JSON),
    ("getbalance", 1, "minconf", JSON),
    ("getbalance", 2, "include_watchonly", JSON),
    ("getbalance", 3, "avoid_reuse", JSON),
    ("getblockhash", 0, "height", JSON),
    ("listtransactions", 1, "count", JSON),
    ("listtransactions", 2, "skip", JSON),
    ("listtransactions", 3, "include_watchonly", JSON),
    ("getblocktemplate", 0, "template_request", JSON),
    ("listunspent", 0, "minconf", JSON),
    ("listunspent", 1, "maxconf", JSON),
    ("listunspent", 2, "addresses", JSON),
    ("listunspent", 3, "include_unsafe", JSON),
    ("listunspent", 4, "query_options", JSON),
    ("getblock", 1, "verbosity", JSON),
    ("getblockheader", 1, "verbose", JSON),
    ("getchaintxstats", 0, "nblocks", JSON),
    ("gettransaction", 1, "include_watchonly", JSON),
    ("gettransaction", 2, "verbose", JSON),
    ("getrawtransaction", 1, "verbosity", JSON),
    ("createrawtransaction", 0, "inputs", JSON),
    ("createrawtransaction", 1, "outputs", JSON),
    ("createrawtransaction", 2, "locktime", JSON),
    ("createrawtransaction", 3, "replaceable", JSON),
    ("createrawtransaction", 4, "version", JSON),
    ("prioritisetransaction", 1, "dummy", JSON),
    ("prioritisetransaction", 2, "fee_delta", JSON),
    ("decoderawtransaction", 1, "iswitness", JSON),
    ("signrawtransactionwithkey", 1, "privkeys", JSON),
    ("signrawtransactionwithkey", 2, "prevtxs", JSON),
    ("signrawtransactionwithwallet", 1, "prevtxs", JSON),
    ("sendrawtransaction", 1, "maxfeerate", JSON),
    ("sendrawtransaction", 2, "maxburnamount", JSON),
    ("testmempoolaccept", 0, "rawtxs", JSON),
    ("testmempoolaccept", 1, "maxfeerate", JSON),
    ("submitpackage", 0, "package", JSON),
    ("submitpackage", 1, "maxfeerate", JSON),
    ("submitpackage", 2, "maxburnamount", JSON),
    ("gettxout", 1, "n", JSON),
    ("gettxout", 2, "include_mempool", JSON),
    ("gettxoutsetinfo", 1, "hash_or_height", JSON_OR_STRING),
    ("gettxoutsetinfo", 2, "use_index", JSON),
    ("getblockstats", 0, "hash_or_height", JSON_OR_STRING),
    ("getblockstats", 1, "stats", JSON),
    ("getrawmempool", 0, "verbose", JSON),
    ("getrawmempool", 1, "mempool_sequence", JSON),
    ("estimatesmartfee", 0, "conf_target", JSON),
    ("estimaterawfee", 0, "conf_target", JSON),
    ("estimaterawfee", 1, "threshold", JSON),
    ("setban", 2, "bantime", JSON),
    ("setban", 3, "absolute", JSON),
    ("setnetworkactive", 0, "state", JSON),
    ("gettxspendingprevout", 0, "outputs", JSON),
    ("gettxspendingprevout", 1, "options", JSON),
    ("gettxspendingprevout", 1, "mempool_only", JSON),
    ("gettxspendingprevout", 1, "return_spending_tx", JSON),
    ("disconnectnode", 1, "nodeid", JSON),
    ("stop", 0, "wait", JSON),
    ("setgenerate", 0, "generate", JSON),
    ("setgenerate", 1, "genproclimit", JSON),
    ("getorphantxs", 0, "verbosity", JSON),
    ("setmocktime", 0, "timestamp", JSON),
    ("pruneblockchain", 0, "height", JSON),
    ("scantxoutset", 1, "scanobjects", JSON),
    ("addpeeraddress", 1, "port", JSON),
    ("addpeeraddress", 2, "tried", JSON),
    ("getnodeaddresses", 0, "count", JSON),
    ("createwallet", 1, "disable_private_keys", JSON),
    ("createwallet", 2, "blank", JSON),
    ("createwallet", 4, "avoid_reuse", JSON),
    ("createwallet", 5, "descriptors", JSON),
    ("createwallet", 6, "load_on_startup", JSON),
    ("createwallet", 7, "external_signer", JSON),
    ("loadwallet", 1, "load_on_startup", JSON),
    ("unloadwallet", 1, "load_on_startup", JSON),
    ("walletpassphrase", 1, "timeout", JSON),
    # tinynode's own methods
    ("getaddressbalance", 1, "minconf", JSON),
    ("importprivkey", 2, "rescan", JSON),
)

#: method -> positions parsed as JSON (either format), derived from `CONVERT_PARAMS`.
CONVERT: dict[str, set[int]] = {}
for _m, _i, _n, _f in CONVERT_PARAMS:
    CONVERT.setdefault(_m, set()).add(_i)
del _m, _i, _n, _f


def _param_format(method: str, *, index: int | None = None, name: str | None = None) -> str | None:
    """Core `rpc_convert::FromPosition` / `FromName`: the format of a listed argument, else None."""
    for m, i, n, f in CONVERT_PARAMS:
        if m == method and (i == index if name is None else n == name):
            return f
    return None


def _parse_param(fmt: str | None, raw: str) -> Any:
    """Core `ParseParam`: JSON formats parse (JSON_OR_STRING falls back to the string)."""
    if fmt is None:
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        if fmt == JSON_OR_STRING:
            return raw
        raise CliError(f"Error parsing JSON: {raw}") from None

#: Core method names the CLI knows (for suggestions when a name is mistyped).
KNOWN_METHODS = (
    "getblockchaininfo", "getblockcount", "getbestblockhash", "getblockhash", "getblock",
    "getchaintips", "getrawmempool", "getrawtransaction", "sendrawtransaction", "getnewaddress",
    "getbalance", "getbalances", "listunspent", "sendtoaddress", "gettransaction",
    "generatetoaddress", "getmininginfo", "getnetworkhashps", "getpeerinfo", "getconnectioncount",
    "addnode", "stop", "submitblock",
    "help", "uptime", "listaddresses", "getaddressbalance", "gettxstatus", "getblockheader",
    "getdifficulty", "gettxout", "getmempoolinfo", "getmempoolentry", "decoderawtransaction",
    "validateaddress", "getaddressinfo", "dumpprivkey", "importprivkey", "listtransactions",
    "invalidateblock", "reconsiderblock", "disconnectnode", "getnetworkinfo", "setnetworkactive",
    "setban", "listbanned", "clearbanned", "createrawtransaction", "signrawtransactionwithkey",
    "signrawtransactionwithwallet", "generateblock", "gettxoutsetinfo", "testmempoolaccept",
    "decodescript", "backupwallet", "createwallet", "loadwallet", "unloadwallet", "listwallets",
    "listwalletdir", "getwalletinfo", "encryptwallet", "walletpassphrase", "walletlock",
    "walletpassphrasechange", "setgenerate", "getorphantxs", "scantxoutset", "submitheader",
    "setmocktime", "estimatesmartfee", "submitpackage", "gettxspendingprevout", "pruneblockchain",
)

VERBS = {
    "help": "help [COMMAND]            these commands, then every RPC method; or one command's help",
    "info": "info                      network, height, peers, mining and balance at a glance",
    "balance": "balance [--minconf N] [--address A]\n"
               "                          wallet balance: confirmed / pending / immature; with --address,\n"
               "                          any address's balance (--minconf 0 counts the mempool)",
    "send": "send ADDR AMOUNT [--fee-rate R] [--from A] [--subtract-fee] [--data HEX]\n"
            "                          pay AMOUNT coins to ADDR; fee rate R in sat/vB (default 2);\n"
            "                          --data attaches an OP_RETURN output with HEX",
    "status": "status TXID               where a transaction stands (mempool / confirmations / conflicted)",
    "newaddress": "newaddress [LABEL] [--bech32|--bech32m|--legacy]\n"
                  "                          a fresh receive address: bech32 (P2WPKH, the default),\n"
                  "                          bech32m (P2TR, taproot key path) or legacy (P2PKH)",
    "addresses": "addresses                 the wallet's addresses and their balances (immature, pending)",
    "mine": "mine [N]                  mine N blocks (default 1) to a fresh wallet address",
    "mining": "mining [on [N]|off]       switch continuous mining (N workers) while the node runs",
    "mempool": "mempool                   transactions waiting in the mempool",
    "peers": "peers                     connected peers",
    "connect": "connect HOST[:PORT]       try a connection to a peer",
    "block": "block HEIGHT|HASH         a block's summary",
    "tx": "tx TXID                   a transaction's summary",
    "chain": "chain [--tips]            the active chain (and every known tip)",
    "history": "history [--count N] [--skip N]\n"
               "                          the wallet's transactions, newest first (default the last 20):\n"
               "                          date, what happened, amount, confirmations, address, txid",
    "wallets": "wallets                   every wallet in DIR/NET/wallets: loaded or not, balance,\n"
               "                          transactions, encrypted/locked (pick one with --wallet NAME)",
    "createwallet": "createwallet NAME [--passphrase P] [--blank] [--disable-private-keys] [--load-on-startup]\n"
                    "                          make and load a new wallet (Core's positional arguments work too)",
}

CLI_HELP = """usage: tinynode-cli [options] <command> [args...]

Talk to a running tinynode over its RPC socket.

Options:
  --datadir DIR        data directory (default ~/.tinynode)
  --network NET        tinynet (default) or regtest; -regtest is the same as --network regtest
  --rpc-socket PATH    RPC socket (default DIR/NET/rpc.sock)
  --wallet NAME        send wallet calls to wallet NAME (the same as -rpcwallet=NAME); needed
                       when more than one wallet is loaded ("" is the default wallet)
  -rpcwait             wait for the daemon to start (and finish loading) before the call
  -rpcwaittimeout=N    give up waiting after N seconds (default 60)
  -named               pass arguments as name=value (Bitcoin Core's -named)
  -stdin               read more arguments from standard input, one per line
  -getinfo             the same as the `info` command
  --json               print JSON for the friendly commands too
  -h, --help           this help;  tinynode-cli help also lists the daemon's RPC methods
  --version            print the version

Friendly commands:
{verbs}

Any Bitcoin Core RPC name works too, with Core's argument order, e.g.
  tinynode-cli getblockchaininfo
  tinynode-cli getblock <hash> 2
  tinynode-cli sendtoaddress <address> 1.5
"""


class CliError(Exception):
    """A usage error in the CLI itself (exit 1, one line)."""


class _Opts:
    __slots__ = ("datadir", "network", "rpc_socket", "rpcwait", "rpcwait_timeout", "named", "json",
                 "stdin", "getinfo", "wallet")

    def __init__(self) -> None:
        self.datadir: str | None = None
        self.network = "tinynet"
        self.rpc_socket: str | None = None
        self.rpcwait = False
        self.rpcwait_timeout = 60.0
        self.named = False
        self.json = False
        self.stdin = False
        self.getinfo = False
        self.wallet: str | None = None

    def socket_path(self) -> str:
        if self.rpc_socket:
            return os.path.expanduser(self.rpc_socket)
        datadir = os.path.expanduser(self.datadir) if self.datadir else os.path.join(
            os.path.expanduser("~"), ".tinynode")
        return os.path.join(datadir, self.network, "rpc.sock")

    def start_hint(self) -> str:
        parts = ["tinynode"]
        if self.network != "tinynet":
            parts += ["--network", self.network]
        if self.datadir:
            parts += ["--datadir", self.datadir]
        if self.rpc_socket:
            parts += ["--rpc-socket", self.rpc_socket]
        return " ".join(parts)


def _parse_global(argv: list[str]) -> tuple[_Opts, list[str]]:
    """Options before the command, bitcoin-cli style (`-x=v`, `--x v`, `--x=v`)."""
    o = _Opts()
    i = 0
    while i < len(argv):
        a = argv[i]
        if not a.startswith("-") or a == "-" or _is_number(a):
            break
        name, eq, val = a.lstrip("-").partition("=")
        name = name.replace("_", "-").lower()

        def value() -> str:
            nonlocal i
            if eq:
                return val
            if i + 1 >= len(argv):
                raise CliError(f"option {a} needs a value")
            i += 1
            return argv[i]
        if name in ("h", "help", "?"):
            raise _Help()
        if name == "version":
            raise _Version()
        if name == "datadir":
            o.datadir = value()
        elif name in ("network", "chain"):
            o.network = value()
            if o.network not in ("tinynet", "regtest"):
                raise CliError(f"unknown network {o.network!r} (choose tinynet or regtest)")
        elif name == "regtest":
            o.network = "regtest"
        elif name == "tinynet":
            o.network = "tinynet"
        elif name in ("rpc-socket", "rpcsocket"):
            o.rpc_socket = value()
        elif name in ("wallet", "rpcwallet"):
            o.wallet = value()
        elif name == "rpcwait":
            o.rpcwait = True
        elif name in ("rpcwaittimeout", "rpcwait-timeout"):
            o.rpcwait = True
            try:
                o.rpcwait_timeout = float(value())
            except ValueError:
                raise CliError("-rpcwaittimeout needs a number of seconds") from None
        elif name == "named":
            o.named = True
        elif name == "stdin":
            o.stdin = True
        elif name == "getinfo":
            o.getinfo = True
        elif name == "json":
            o.json = True
        else:
            raise CliError(f"unknown option {a} (see tinynode-cli --help)")
        i += 1
    return o, argv[i:]


class _Help(Exception):
    pass


class _Version(Exception):
    pass


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def convert_args(method: str, args: list[str]) -> list[Any]:
    """bitcoin-cli's `RPCConvertValues`: each argument by its row in `CONVERT_PARAMS`."""
    return [_parse_param(_param_format(method, index=i), a) for i, a in enumerate(args)]


def convert_named(method: str, args: list[str]) -> dict[str, Any]:
    """bitcoin-cli's `RPCConvertNamedValues` for name=value arguments: a name listed in
    `CONVERT_PARAMS` is parsed by its format; other names keep tinynode's leniency (a value that
    parses as JSON is sent as JSON), since not every tinynode argument has a row."""
    out: dict[str, Any] = {}
    for a in args:
        name, eq, val = a.partition("=")
        if not eq:
            raise CliError(f"No '=' in named argument '{a}', this needs to be present for every argument (even if it is empty)")
        fmt = _param_format(method, name=name)
        if fmt is not None:
            out[name] = _parse_param(fmt, val)
            continue
        try:
            out[name] = json.loads(val)
        except ValueError:
            out[name] = val
    return out


def _print_result(result: Any) -> None:
    from .rpc.protocol import dumps
    if result is None:
        return
    if isinstance(result, str):
        print(result)
    else:
        print(dumps(result, indent=2))


def _suggest(word: str) -> str | None:
    import difflib
    m = difflib.get_close_matches(word, list(VERBS) + list(KNOWN_METHODS), n=1, cutoff=0.6)
    return m[0] if m else None


def cli_main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from .rpc.client import ConnectionFailed, RPCClient
    from .rpc.protocol import RPC_METHOD_NOT_FOUND, RPCError

    try:
        opts, rest = _parse_global(argv)
    except _Help:
        print(CLI_HELP.format(verbs="\n".join("  " + v for v in VERBS.values())))
        return 0
    except _Version:
        print(f"tinynode-cli {__version__}")
        return 0
    except CliError as e:
        print(f"tinynode-cli: {e}", file=sys.stderr)
        return 1
    if opts.stdin:
        rest = rest + [line.rstrip("\n") for line in sys.stdin if line.strip()]
    if opts.getinfo:
        rest = ["info"] + rest
    if not rest:
        print("tinynode-cli: no command given; try `tinynode-cli info` or `tinynode-cli --help`", file=sys.stderr)
        return 1
    command, args = rest[0], rest[1:]
    if command not in VERB_FUNCS and command not in KNOWN_METHODS and not command.startswith(("get", "list")):
        import difflib
        near = difflib.get_close_matches(command, list(VERBS), n=1, cutoff=0.6)
        if near:
            print(f"tinynode-cli: unknown command {command!r}. Did you mean `tinynode-cli {near[0]}`?",
                  file=sys.stderr)
            return 1
    path = opts.socket_path()
    # bitcoin-cli's -rpcclienttimeout is 900 s; mining on demand may take longer on tinynet
    client = RPCClient(path, wallet=opts.wallet) if command not in ("generatetoaddress", "generateblock", "mine") \
        else RPCClient(path, timeout=None, wallet=opts.wallet)
    try:
        if opts.rpcwait:
            client.wait_ready(opts.rpcwait_timeout)
        verb = VERB_FUNCS.get(command)
        if verb is not None:
            return verb(client, args, opts)
        if opts.named:
            result = client.call(command, named=convert_named(command, args))
        else:
            result = client.call(command, *convert_args(command, args))
        _print_result(result)
        return 0
    except CliError as e:
        print(f"tinynode-cli: {e}", file=sys.stderr)
        return 1
    except ConnectionFailed:
        print(f"tinynode-cli: cannot connect to tinynode at {path}: is it running? "
              f"Start it with `{opts.start_hint()}`", file=sys.stderr)
        return 1
    except RPCError as e:
        print(f"error code: {e.code}\nerror message:\n{e.message}", file=sys.stderr)
        if e.code == RPC_METHOD_NOT_FOUND and command not in VERB_FUNCS:
            s = _suggest(command)
            if s:
                print(f"Did you mean `tinynode-cli {s}`?", file=sys.stderr)
        return 1
    except (BrokenPipeError, KeyboardInterrupt):
        return 1


# --- friendly verbs -----------------------------------------------------------------------------

def _verb_opts(args: list[str], spec: dict[str, bool]) -> tuple[dict[str, Any], list[str]]:
    """Split `--name value` / `--flag` options (spec: name → takes a value) from positionals."""
    got: dict[str, Any] = {}
    pos: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        if a.startswith("--") and len(a) > 2:
            name, eq, val = a[2:].partition("=")
            if name not in spec:
                raise CliError(f"unknown option {a}")
            if spec[name]:
                if not eq:
                    if i + 1 >= len(args):
                        raise CliError(f"option {a} needs a value")
                    i += 1
                    val = args[i]
                got[name] = val
            else:
                got[name] = True
        else:
            pos.append(a)
        i += 1
    return got, pos


def _coins(x: float | int) -> str:
    s = f"{x:.8f}".rstrip("0").rstrip(".")
    return s if s not in ("", "-0") else "0"


def _int_arg(s: str, what: str) -> int:
    try:
        return int(s)
    except ValueError:
        raise CliError(f"{what} must be a whole number, not {s!r}") from None


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _when(t: int) -> str:
    """A Unix time with its UTC date beside it: `1700000000 (2023-11-14 22:13:20 UTC)`."""
    import datetime
    try:
        d = datetime.datetime.fromtimestamp(int(t), datetime.timezone.utc)
    except (OverflowError, OSError, ValueError):
        return str(t)
    return f"{t} ({d:%Y-%m-%d %H:%M:%S} UTC)"


def _check_amount(amount: str) -> None:
    """Say why an AMOUNT cannot be sent (the RPC's Core strings, `Amount out of range` and
    `Invalid amount`, do not)."""
    from decimal import Decimal, InvalidOperation
    try:
        d = Decimal(amount)
    except InvalidOperation:
        raise CliError(f"AMOUNT must be a number of coins, not {amount!r}") from None
    if not d.is_finite():
        raise CliError(f"AMOUNT must be a number of coins, not {amount!r}")
    if d < 0:
        raise CliError(f"AMOUNT {amount} is negative: a send pays a positive number of coins")
    if d == 0:
        raise CliError("AMOUNT must be more than 0 coins")
    if d != d.quantize(Decimal("0.00000001")):
        raise CliError(f"AMOUNT {amount} has more than 8 decimals: the smallest unit is "
                       f"0.00000001 coins (1 satoshi)")
    if d > 21_000_000:
        raise CliError(f"AMOUNT {amount} is more than the 21000000 coins that can ever exist")


def _emit(opts: _Opts, obj: Any, lines: list[str]) -> int:
    if opts.json:
        from .rpc.protocol import dumps
        print(dumps(obj, indent=2))
    else:
        print("\n".join(lines))
    return 0


def verb_info(c, args, opts) -> int:
    chain = c.call("getblockchaininfo")
    peers = c.call("getpeerinfo")
    mining = c.call("getmininginfo")
    try:
        bal = c.call("getbalances")["mine"]
    except Exception:
        bal = None
    obj = {"chain": chain, "peers": len(peers), "mining": mining, "balances": bal}
    lines = [
        f"network   {chain['chain']}",
        f"height    {chain['blocks']} (best header {chain['headers']})",
        f"tip       {chain['bestblockhash']}",
        f"peers     {len(peers)} ({sum(1 for p in peers if p.get('inbound'))} in, "
        f"{sum(1 for p in peers if not p.get('inbound'))} out)",
        "mining    " + (f"on, {mining.get('workers', 0)} worker(s), {mining.get('hashespersec', 0) / 1000:.1f} kH/s, "
                         f"{_plural(mining.get('blocksfound', 0), 'block')} found" if mining.get("mining") else "off"),
    ]
    if bal is not None:
        lines.append(f"balance   {_coins(bal['trusted'])} (pending {_coins(bal['untrusted_pending'])}, "
                     f"immature {_coins(bal['immature'])})")
    return _emit(opts, obj, lines)


def verb_balance(c, args, opts) -> int:
    o, pos = _verb_opts(args, {"minconf": True, "address": True, "json": False})
    if o.get("json"):
        opts.json = True
    if pos:
        raise CliError("usage: balance [--minconf N] [--address A]")
    minconf = _int_arg(o["minconf"], "--minconf") if "minconf" in o else None
    if minconf is not None and minconf < 0:
        raise CliError(f"--minconf must be 0 or more, not {minconf}: it counts confirmations")
    if "address" in o:
        mc = 1 if minconf is None else minconf
        r = c.call("getaddressbalance", o["address"], mc)
        lines = [f"{r['address']}: {_coins(r['balance'])}",
                 f"  confirmed  {_coins(r['confirmed'])}" + ("" if mc <= 1 else f" (≥ {mc} confirmations)"),
                 f"  immature   {_coins(r['immature'])}",
                 f"  mempool    +{_coins(r['pending_in'])} / -{_coins(r['pending_out'])}"
                 + ("" if mc == 0 else " (not counted; use --minconf 0)")]
        return _emit(opts, r, lines)
    mc = 1 if minconf is None else minconf
    b = c.call("getbalances")["mine"]
    trusted0, incoming = b["trusted"], b["untrusted_pending"]
    maturity = _maturity(opts)
    immature_line = f"immature   {_coins(b['immature'])}   (mined coins spendable after {maturity} confirmations)"
    if mc == 0:
        # as the per-address view: every coin with >= 0 confirmations, incoming ones included
        confirmed = round(trusted0 + incoming, 8)
        obj = {"confirmed": confirmed, "pending": 0, "immature": b["immature"], "minconf": 0,
               "trusted": trusted0, "untrusted_pending": incoming}
        lines = [f"confirmed  {_coins(confirmed)}   (with ≥ 0 confirmations: unconfirmed change and incoming included)",
                 immature_line]
        return _emit(opts, obj, lines)
    confirmed1 = c.call("getbalance", "*", 1)
    confirmed = confirmed1 if mc == 1 else c.call("getbalance", "*", mc)
    pending = round(trusted0 - confirmed1 + incoming, 8)
    obj = {"confirmed": confirmed, "pending": pending, "immature": b["immature"], "minconf": mc,
           "trusted": trusted0, "untrusted_pending": incoming}
    lines = [f"confirmed  {_coins(confirmed)}" + ("" if mc == 1 else f"   (with ≥ {mc} confirmations)")]
    if mc > 1:
        recent = round(confirmed1 - confirmed, 8)
        obj["recent"] = recent
        lines.append(f"recent     {_coins(recent)}   (confirmed but fewer than {mc} confirmations)")
    lines += [f"pending    {_coins(pending)}   (unconfirmed: change of your sends, and incoming)",
              immature_line]
    return _emit(opts, obj, lines)


def _maturity(opts: _Opts) -> int:
    return 101 if opts.network == "regtest" else 11


def verb_send(c, args, opts) -> int:
    o, pos = _verb_opts(args, {"fee-rate": True, "from": True, "subtract-fee": False, "data": True,
                               "json": False})
    if o.get("json"):
        opts.json = True
    if len(pos) != 2:
        raise CliError("usage: send ADDR AMOUNT [--fee-rate R] [--from A] [--subtract-fee] [--data HEX]")
    addr, amount = pos
    _check_amount(amount)
    named: dict[str, Any] = {"address": addr, "amount": amount, "verbose": True}
    if "fee-rate" in o:
        named["fee_rate"] = o["fee-rate"]
    if "from" in o:
        named["from_address"] = o["from"]
    if o.get("subtract-fee"):
        named["subtractfeefromamount"] = True
    if "data" in o:
        named["data"] = o["data"]
    from .rpc.protocol import RPCError
    try:
        r = c.call("sendtoaddress", named=named)
    except RPCError as e:
        if e.code != -6:
            raise
        raise CliError(_insufficient_funds(c, opts, o.get("from"))) from None
    # what the wallet built: the amount paid to ADDR, the fee, the change (and where it went);
    # with --from the change goes back to that address, so it cannot be told from the outputs
    change = r.get("change")
    obj = {"txid": r["txid"], "amount": r["amount"], "fee": r["fee"], "change": change}
    lines = [f"sent {_coins(r['amount'])} to {addr}", f"txid    {r['txid']}", f"fee     {_coins(r['fee'])}",
             f"change  {_coins(change['amount'])} to {change['address']}" if change else "change  none"]
    return _emit(opts, obj, lines)


def _insufficient_funds(c, opts, from_addr: str | None) -> str:
    """The sentence for a send the coins cannot cover: the wallet's balances, or with --from
    that address's own."""
    spend_after = f"(mined coins become spendable after {_maturity(opts)} confirmations)"
    if from_addr is not None:
        row = next((r for r in c.call("listaddresses") if r["address"] == from_addr), None)
        if row is not None:
            return (f"insufficient funds in {from_addr}: {_coins(row['spendable'])} spendable, "
                    f"{_coins(row['immature'])} immature {spend_after}, "
                    f"{_coins(row['incoming'])} incoming unconfirmed")
    b = c.call("getbalances")["mine"]
    return (f"insufficient funds: {_coins(b['trusted'])} spendable, {_coins(b['immature'])} immature "
            f"{spend_after}, {_coins(b['untrusted_pending'])} incoming unconfirmed")


def verb_status(c, args, opts) -> int:
    o, pos = _verb_opts(args, {"json": False})
    if o.get("json"):
        opts.json = True
    if len(pos) != 1:
        raise CliError("usage: status TXID")
    r = c.call("gettxstatus", pos[0])
    st = r["status"]
    if st == "confirmed":
        n = r["confirmations"]
        line = f"{_plural(n, 'confirmation')} in block {r['blockhash']} at height {r['height']}"
        if "blocktime" in r:
            line += f", mined at {_when(r['blocktime'])}"
    elif st == "mempool":
        line = "in mempool (0 confirmations)"
    elif st == "pending":
        line = "pending: sent by this wallet, not in the mempool or a block (yet)"
    elif st == "conflicted":
        line = "conflicted: a double spend of it was confirmed; it will not confirm"
    else:
        line = "not found (not in the mempool or the chain)"
    _emit(opts, r, [line])
    return 1 if st == "not found" else 0


def verb_newaddress(c, args, opts) -> int:
    """A fresh receive address: bech32 (P2WPKH), Core's default type; --bech32m for P2TR (key
    path), --legacy for P2PKH, --bech32 to ask for the default by name (getnewaddress's
    address_type)."""
    types = ("bech32", "bech32m", "legacy")
    o, pos = _verb_opts(args, {t: False for t in types})
    chosen = [t for t in types if o.get(t)]
    if len(chosen) > 1:
        raise CliError("newaddress takes one of --bech32, --bech32m, --legacy")
    if len(pos) > 1:
        raise CliError("usage: newaddress [LABEL] [--bech32|--bech32m|--legacy]")
    if chosen:
        addr = c.call("getnewaddress", pos[0] if pos else "", chosen[0])
    else:
        addr = c.call("getnewaddress", *(pos[:1]))
    print(addr)
    return 0


def verb_addresses(c, args, opts) -> int:
    o, _ = _verb_opts(args, {"json": False})
    if o.get("json"):
        opts.json = True
    rows = c.call("listaddresses")
    lines = []
    for r in rows:
        extra = "".join(f"  (+{_coins(r[k])} {k})" for k in ("immature", "pending") if r.get(k))
        lines.append(f"{r['address']}  {r['kind']:<8} {_coins(r['balance']):>14}{extra}  {r['label']}".rstrip())
    return _emit(opts, rows, lines or ["no addresses yet; make one with `tinynode-cli newaddress`"])


def verb_mine(c, args, opts) -> int:
    """Mine N blocks one at a time, with a progress line per block on stderr (a block can take
    a while on tinynet), then the summary on stdout."""
    import time as _time
    o, pos = _verb_opts(args, {"to": True, "json": False})
    if o.get("json"):
        opts.json = True
    n = _int_arg(pos[0], "N") if pos else 1
    addr = o.get("to") or c.call("getnewaddress", "mining")
    progress = not opts.json
    if progress:
        print(f"mining {n} block{'' if n == 1 else 's'} to {addr} ...", file=sys.stderr, flush=True)
    hashes: list[str] = []
    for i in range(n):
        t0 = _time.monotonic()
        got = c.call("generatetoaddress", 1, addr)
        hashes.extend(got)
        if progress and got:
            print(f"  block {i + 1}/{n}: {got[-1][:16]}... ({_time.monotonic() - t0:.1f} s)",
                  file=sys.stderr, flush=True)
    height = c.call("getblockcount")
    lines = [f"mined {len(hashes)} block{'' if len(hashes) == 1 else 's'} to {addr}; height {height}"]
    if hashes:
        lines.append(f"tip {hashes[-1]}")
    return _emit(opts, {"blocks": hashes, "address": addr, "height": height}, lines)


def verb_mining(c, args, opts) -> int:
    """`mining on [WORKERS]` / `mining off` / `mining`: switch continuous mining at run time
    (RPC setgenerate) or show whether it runs."""
    o, pos = _verb_opts(args, {"json": False})
    if o.get("json"):
        opts.json = True
    if pos:
        if pos[0] not in ("on", "off"):
            raise CliError("usage: tinynode-cli mining [on [N] | off]")
        params: list = [pos[0] == "on"]
        if len(pos) > 1:
            params.append(_int_arg(pos[1], "WORKERS"))
        c.call("setgenerate", *params)
    info = c.call("getmininginfo")
    on = bool(info.get("mining"))
    lines = [f"mining {'on' if on else 'off'}" + (f" with {info.get('workers')} worker"
                                                   f"{'' if info.get('workers') == 1 else 's'}" if on else "")]
    return _emit(opts, {"mining": on, "workers": info.get("workers")}, lines)


def verb_mempool(c, args, opts) -> int:
    o, _ = _verb_opts(args, {"json": False})
    if o.get("json"):
        opts.json = True
    pool = c.call("getrawmempool", True)
    lines = [f"{len(pool)} transaction{'' if len(pool) == 1 else 's'} in the mempool"]
    for txid, e in pool.items():
        lines.append(f"{txid}  {e['vsize']:>6} B  fee {_coins(e['fees']['base'])}")
    return _emit(opts, pool, lines)


def verb_peers(c, args, opts) -> int:
    o, _ = _verb_opts(args, {"json": False})
    if o.get("json"):
        opts.json = True
    peers = c.call("getpeerinfo")
    lines = [f"{len(peers)} peer{'' if len(peers) == 1 else 's'}"]
    for p in peers:
        ping = p.get("pingtime")
        lines.append(f"{p.get('id')}  {p.get('addr'):<22} {'in ' if p.get('inbound') else 'out'}  "
                     f"height {max(p.get('synced_blocks') or -1, p.get('startingheight') or -1)}  {p.get('subver', '')}"
                     + (f"  ping {ping * 1000:.0f} ms" if ping else ""))
    return _emit(opts, peers, lines)


def verb_connect(c, args, opts) -> int:
    if len(args) != 1:
        raise CliError("usage: connect HOST[:PORT]")
    c.call("addnode", args[0], "onetry")
    print(f"connecting to {args[0]}")
    return 0


def verb_block(c, args, opts) -> int:
    o, pos = _verb_opts(args, {"json": False})
    if o.get("json"):
        opts.json = True
    if len(pos) != 1:
        raise CliError("usage: block HEIGHT|HASH")
    ref = pos[0]
    if ref.lstrip("-").isdigit():
        height = int(ref)
        if height < 0:
            raise CliError(f"block height must be 0 or more, not {height}: heights count up from the genesis block (0)")
        tip = c.call("getblockcount")
        if height > tip:
            raise CliError(f"no block at height {height} yet: the chain's height is {tip}")
        h = c.call("getblockhash", height)
    elif len(ref) == 64 and all(ch in "0123456789abcdefABCDEF" for ch in ref):
        h = ref
    else:
        raise CliError(f"{ref!r} is neither a block height (a whole number) nor a block hash (64 hex characters)")
    b = c.call("getblock", h, 1)
    lines = [f"block {b['hash']}", f"height        {b['height']} ({b['confirmations']} confirmations)",
             f"time          {_when(b['time'])}", f"transactions  {b['nTx']}", f"size          {b['size']} bytes",
             f"bits          {b['bits']} (difficulty {b['difficulty']:.6g})",
             f"previous      {b.get('previousblockhash', '-')}"]
    if "nextblockhash" in b:
        lines.append(f"next          {b['nextblockhash']}")
    lines += [f"  {t}" for t in b["tx"][:20]]
    if len(b["tx"]) > 20:
        lines.append(f"  ... and {len(b['tx']) - 20} more")
    return _emit(opts, b, lines)


def verb_tx(c, args, opts) -> int:
    from .rpc.protocol import RPCError
    o, pos = _verb_opts(args, {"json": False})
    if o.get("json"):
        opts.json = True
    if len(pos) != 1:
        raise CliError("usage: tx TXID")
    try:
        t = c.call("getrawtransaction", pos[0], True)
    except RPCError as e:
        if e.code != -5:
            raise
        t = c.call("gettransaction", pos[0], None, True)["decoded"]
    lines = [f"tx {t['txid']}  ({t['size']} bytes, " +
             (f"{t['confirmations']} confirmations" if t.get("confirmations") else "unconfirmed") + ")"]
    if t.get("blocktime"):
        lines.append(f"  mined at {_when(t['blocktime'])}")
    for i in t["vin"]:
        lines.append(f"  in   coinbase {i['coinbase']}" if "coinbase" in i else f"  in   {i['txid']}:{i['vout']}")
    for v in t["vout"]:
        lines.append(f"  out  {_coins(v['value']):>14}  {v['scriptPubKey'].get('address', v['scriptPubKey']['type'])}")
    return _emit(opts, t, lines)


def verb_chain(c, args, opts) -> int:
    o, _ = _verb_opts(args, {"tips": False, "json": False})
    if o.get("json"):
        opts.json = True
    info = c.call("getblockchaininfo")
    lines = [f"{info['chain']}: height {info['blocks']}, best header {info['headers']}",
             f"tip        {info['bestblockhash']}", f"chainwork  {info['chainwork'].lstrip('0') or '0'}",
             f"difficulty {info['difficulty']:.6g}"]
    obj: Any = info
    if o.get("tips"):
        tips = c.call("getchaintips")
        obj = {"chain": info, "tips": tips}
        lines.append("tips:")
        for t in tips:
            lines.append(f"  {t['height']:>7}  {t['hash']}  {t['status']}  (branch {t['branchlen']})")
    return _emit(opts, obj, lines)


def verb_help(c, args, opts) -> int:
    """`help`: the friendly commands first, then the daemon's RPC methods (Core names);
    `help COMMAND`: one friendly command's usage, or one RPC method's help."""
    if args and args[0] in VERBS:
        print(VERBS[args[0]])
        return 0
    if args:
        _print_result(c.call("help", *args))
        return 0
    lines = ["Friendly commands:"] + ["  " + v for v in VERBS.values()]
    lines += ["", "RPC methods (Bitcoin Core's names and arguments; `tinynode-cli help METHOD` for one):"]
    print("\n".join(lines))
    print(c.call("help"))
    return 0


def _utc(t: int | None) -> str:
    import datetime
    if not t:
        return "-"
    try:
        return f"{datetime.datetime.fromtimestamp(int(t), datetime.timezone.utc):%Y-%m-%d %H:%M}"
    except (OverflowError, OSError, ValueError):
        return str(t)


def history_lines(rows: list[dict]) -> list[str]:
    """listtransactions rows (oldest first, as Core returns them) as a table, newest first."""
    if not rows:
        return ["no transactions yet; receive coins at `tinynode-cli newaddress`"]
    lines = [f"{'DATE (UTC)':<16}  {'CATEGORY':<9} {'AMOUNT':>17} {'FEE':>11} {'CONF':>6}  ADDRESS  TXID"]
    for r in reversed(rows):
        amount = r.get("amount", 0)
        sign = "+" if amount > 0 else ("-" if amount < 0 else " ")
        fee = f"{_coins(-r['fee'])}" if r.get("fee") else ""
        conf = r.get("confirmations", 0)
        conf_s = "conflicted" if conf < 0 else str(conf)
        lines.append(f"{_utc(r.get('blocktime') or r.get('time')):<16}  {r.get('category', ''):<9} "
                     f"{sign + _coins(abs(amount)):>17} {fee:>11} {conf_s:>6}  "
                     f"{r.get('address', '-')}  {r.get('txid', '')}")
    return lines


def verb_history(c, args, opts) -> int:
    """The wallet's transactions as a table (Core's listtransactions, newest first)."""
    o, pos = _verb_opts(args, {"count": True, "skip": True, "json": False})
    if o.get("json"):
        opts.json = True
    if pos:
        raise CliError("usage: history [--count N] [--skip N]")
    count = _int_arg(o.get("count", "20"), "--count")
    skip = _int_arg(o.get("skip", "0"), "--skip")
    if count < 0 or skip < 0:
        raise CliError("--count and --skip must be 0 or more")
    rows = c.call("listtransactions", "*", count, skip)
    return _emit(opts, rows, history_lines(rows))


def verb_wallets(c, args, opts) -> int:
    """Every wallet on disk and the loaded ones (listwalletdir + listwallets), with each loaded
    wallet's balance and state (getwalletinfo, getbalances through /wallet/<name>)."""
    o, pos = _verb_opts(args, {"json": False})
    if o.get("json"):
        opts.json = True
    if pos:
        raise CliError("usage: wallets")
    loaded = c.call("listwallets")
    on_disk = [w["name"] for w in c.call("listwalletdir")["wallets"]]
    names = on_disk + [n for n in loaded if n not in on_disk]
    rows = []
    for name in names:
        row: dict[str, Any] = {"name": name, "loaded": name in loaded}
        if name in loaded:
            wc = c.for_wallet(name)
            info = wc.call("getwalletinfo")
            bal = wc.call("getbalances")["mine"]
            row.update(balance=bal["trusted"], immature=bal["immature"], txcount=info["txcount"],
                       encrypted="unlocked_until" in info,
                       locked="unlocked_until" in info and info["unlocked_until"] == 0,
                       private_keys_enabled=info["private_keys_enabled"])
        rows.append(row)
    lines = [f"{'NAME':<16} {'LOADED':<7} {'BALANCE':>16} {'TXS':>5}  STATE"]
    for r in rows:
        label = '""  (default)' if r["name"] == "" else r["name"]
        if not r["loaded"]:
            lines.append(f"{label:<16} {'no':<7} {'-':>16} {'-':>5}  load with `tinynode-cli loadwallet {r['name']}`")
            continue
        state = []
        if r["encrypted"]:
            state.append("encrypted, " + ("locked" if r["locked"] else "unlocked"))
        if not r["private_keys_enabled"]:
            state.append("watch-only")
        if r["immature"]:
            state.append(f"+{_coins(r['immature'])} immature")
        lines.append(f"{label:<16} {'yes':<7} {_coins(r['balance']):>16} {r['txcount']:>5}  {', '.join(state)}".rstrip())
    if len(loaded) > 1:
        lines.append("several wallets are loaded: wallet commands need --wallet NAME")
    return _emit(opts, rows, lines)


def verb_createwallet(c, args, opts) -> int:
    """Make and load a wallet. Core's form (`createwallet NAME false false "pass" ...`, or with
    -named) goes straight to the RPC and prints its JSON."""
    if opts.named:
        _print_result(c.call("createwallet", named=convert_named("createwallet", args)))
        return 0
    o, pos = _verb_opts(args, {"passphrase": True, "blank": False, "disable-private-keys": False,
                               "load-on-startup": False, "json": False})
    if len(pos) > 1:
        _print_result(c.call("createwallet", *convert_args("createwallet", pos)))
        return 0
    if o.get("json"):
        opts.json = True
    if len(pos) != 1:
        raise CliError("usage: createwallet NAME [--passphrase P] [--blank] [--disable-private-keys] "
                       "[--load-on-startup]")
    name = pos[0]
    named: dict[str, Any] = {"wallet_name": name}
    if o.get("disable-private-keys"):
        named["disable_private_keys"] = True
    if o.get("blank"):
        named["blank"] = True
    if "passphrase" in o:
        named["passphrase"] = o["passphrase"]
    if o.get("load-on-startup"):
        named["load_on_startup"] = True
    r = c.call("createwallet", named=named)
    how = []
    if o.get("passphrase"):
        how.append("encrypted: unlock it with `walletpassphrase PASSPHRASE SECONDS` to send")
    if o.get("disable-private-keys"):
        how.append("watch-only")
    elif o.get("blank"):
        how.append("blank: no keys until you import one")
    lines = [f'created wallet "{r["name"]}"' + (f" ({'; '.join(how)})" if how else ""),
             f"use it with `tinynode-cli --wallet {r['name']} balance` (or newaddress, send, history)"]
    lines += [f"warning: {w}" for w in r.get("warnings", [])]
    return _emit(opts, r, lines)


VERB_FUNCS: dict[str, Callable[..., int]] = {
    "info": verb_info, "balance": verb_balance, "send": verb_send, "status": verb_status,
    "newaddress": verb_newaddress, "addresses": verb_addresses, "mine": verb_mine,
    "mining": verb_mining,
    "mempool": verb_mempool, "peers": verb_peers, "connect": verb_connect, "block": verb_block,
    "tx": verb_tx, "chain": verb_chain, "help": verb_help,
    "history": verb_history, "wallets": verb_wallets, "createwallet": verb_createwallet,
}
