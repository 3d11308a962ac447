"""contrib/core-tests/bitcoind.py: Core's arguments (command line and bitcoin.conf) become
tinynode's, and what tinynode cannot honour is refused rather than ignored."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from tinynode.config import from_args
from tinynode.net.permissions import NetPermissionFlags

LAUNCHER = Path(__file__).resolve().parents[2] / "contrib" / "core-tests" / "bitcoind.py"


def _launcher():
    spec = importlib.util.spec_from_file_location("core_tests_bitcoind", LAUNCHER)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


FRAMEWORK_CONF = """regtest=1
[regtest]
port=13148
rpcport=18148
rpcservertimeout=99000
server=1
keypool=1
dnsseed=0
peertimeout=999999999
printtoconsole=0
connect=0
maxconnections=94
par=2
bind=127.0.0.1
"""


def _datadir(tmp_path: Path, conf: str = FRAMEWORK_CONF) -> Path:
    d = tmp_path / "node0"
    d.mkdir(parents=True)
    (d / "bitcoin.conf").write_text(conf)
    return d


def test_framework_datadir_maps_to_tinynode_layout(tmp_path):
    m = _launcher()
    d = _datadir(tmp_path)
    argv = m.translate(m.read_args([f"-datadir={d}", "-logtimemicros", "-debug", "-debugexclude=libevent",
                                    "-loglevel=trace", "-v2transport=0", "-disablewallet",
                                    "-whitelist=noban@127.0.0.1"]))
    cfg = from_args(argv, env={"HOME": str(tmp_path)})
    assert cfg.network == "regtest"
    assert cfg.port == 13148 and cfg.rpc_port == 18148 and cfg.bind == "127.0.0.1"
    assert cfg.peers == () and cfg.autoconnect is False        # connect=0
    # the framework's cache keeps only <chain>/{blocks,chainstate,indexes}: tinynode's files live there
    assert cfg.network_dir == d / "regtest" / "chainstate" / "regtest"
    assert cfg.blocks_dir == d / "regtest" / "blocks"          # Core's blocks_path: blk/rev files
    assert cfg.rpc_cookie_path == d / "regtest" / ".cookie"   # where get_auth_cookie reads it
    assert cfg.log_file == d / "regtest" / "debug.log"         # where assert_debug_log reads
    assert cfg.log_console is False                             # the framework asserts stderr is empty
    assert cfg.wallet is False and cfg.mine is False
    assert len(cfg.whitelist) == 1 and str(cfg.whitelist[0].network) == "127.0.0.1/32"
    assert cfg.whitelist[0].flags == NetPermissionFlags.NOBAN
    assert (d / "regtest" / "wallets").is_dir()                # the cache's os.rmdir expects it
    assert len(str(cfg.rpc_socket_path).encode()) < 100


def test_command_line_wins_over_conf_and_negation(tmp_path):
    m = _launcher()
    d = _datadir(tmp_path)
    argv = m.translate(m.read_args([f"-datadir={d}", "-port=20000", "-nolisten"]))
    cfg = from_args(argv, env={"HOME": str(tmp_path)})
    assert cfg.port == 20000 and cfg.listen is False


@pytest.mark.parametrize("arg, named", [
    ("-loadblock=/tmp/x", "-loadblock=/tmp/x"), ("-v2transport=1", "-v2transport=1"), ("-assumevalid=0", "-assumevalid"),
    ("-printtoconsole=1", None),
])
def test_unsupported_arguments_are_refused_not_ignored(tmp_path, arg, named):
    m = _launcher()
    d = _datadir(tmp_path)
    if named is None:   # printtoconsole=1 is honoured: the log goes to stderr too
        argv = m.translate(m.read_args([f"-datadir={d}", arg]))
        assert "--no-log-console" not in argv
        return
    with pytest.raises(m.LaunchError, match=named):
        m.translate(m.read_args([f"-datadir={d}", arg]))


def test_other_chains_are_refused(tmp_path):
    m = _launcher()
    d = _datadir(tmp_path, "testnet=1\n")
    with pytest.raises(m.LaunchError, match="regtest only"):
        m.translate(m.read_args([f"-datadir={d}"]))


def test_refusal_exits_1_with_the_reason_on_stderr(tmp_path):
    d = _datadir(tmp_path)
    r = subprocess.run([sys.executable, str(LAUNCHER), f"-datadir={d}", "-loadblock=/tmp/x"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert "tinynode does not support -loadblock=/tmp/x" in r.stderr


def test_index_prune_mining_and_policy_options_map_to_tinynode(tmp_path):
    m = _launcher()
    d = _datadir(tmp_path)
    argv = m.translate(m.read_args([f"-datadir={d}", "-fastprune", "-prune=1", "-blockversion=1337",
                                    "-blockmintxfee=0.00000005", "-blockmaxweight=3998000",
                                    "-blockreservedweight=4000", "-minrelaytxfee=0",
                                    "-permitbaremultisig=0", "-test=bip94"]))
    cfg = from_args(argv, env={"HOME": str(tmp_path)})
    assert cfg.prune == 1 and cfg.fastprune is True and cfg.txindex is False
    assert cfg.block_version == 1337 and cfg.block_min_tx_fee == 5
    assert cfg.block_max_weight == 3_998_000 and cfg.block_reserved_weight == 4000
    assert cfg.min_relay_tx_fee == 0 and cfg.permit_bare_multisig is False
    assert cfg.test == ("bip94",) and cfg.params.enforce_bip94 is True
    cfg = from_args(m.translate(m.read_args([f"-datadir={_datadir(tmp_path / 'b')}", "-txindex",
                                             "-prune=0", "-permitbaremultisig"])),
                    env={"HOME": str(tmp_path)})
    assert cfg.txindex is True and cfg.prune == 0 and cfg.permit_bare_multisig is True
    assert cfg.params.enforce_bip94 is False


def test_core_init_errors_for_the_new_options(tmp_path):
    from tinynode.config import ConfigError
    m = _launcher()
    cases = [
        (["-blockreservedweight=4000001"],
         "Error: Specified -blockreservedweight (4000001) exceeds consensus maximum block weight (4000000)"),
        (["-blockreservedweight=1999"],
         "Error: Specified -blockreservedweight (1999) is lower than minimum safety value of (2000)"),
        (["-blockmaxweight=4000001"],
         "Error: Specified -blockmaxweight (4000001) exceeds consensus maximum block weight (4000000)"),
        (["-prune=-1"], "Error: Prune cannot be configured with a negative value."),
        (["-prune=549"], "Error: Prune configured below the minimum of 550 MiB.  Please use a higher number."),
        (["-prune=1", "-txindex"], "Error: Prune mode is incompatible with -txindex."),
        (["-prune=1", "-reindex-chainstate"],
         "Error: Prune mode is incompatible with -reindex-chainstate. Use full -reindex instead."),
        (["-blockmintxfee=abc"], "Error: Invalid amount for -blockmintxfee=<amount>: 'abc'"),
        (["-test=nope"], 'Error: Unrecognised option "nope" provided in -test=<option>.'),
    ]
    for i, (extra, msg) in enumerate(cases):
        argv = m.translate(m.read_args([f"-datadir={_datadir(tmp_path / str(i))}", *extra]))
        with pytest.raises(ConfigError) as e:
            from_args(argv, env={"HOME": str(tmp_path)})
        assert "Error: " + str(e.value) == msg          # the daemon prints "Error: " + it


def test_reindex_options_map(tmp_path):
    m = _launcher()
    cfg = from_args(m.translate(m.read_args([f"-datadir={_datadir(tmp_path / 'a')}", "-reindex"])),
                    env={"HOME": str(tmp_path)})
    assert cfg.reindex is True and cfg.reindex_chainstate is False
    cfg = from_args(m.translate(m.read_args([f"-datadir={_datadir(tmp_path / 'b')}",
                                             "-reindex-chainstate", "-noreindex"])),
                    env={"HOME": str(tmp_path)})
    assert cfg.reindex is False and cfg.reindex_chainstate is True


def test_txospenderindex_maps(tmp_path):
    m = _launcher()
    argv = m.translate(m.read_args([f"-datadir={_datadir(tmp_path)}", "-txindex", "-txospenderindex"]))
    cfg = from_args(argv, env={"HOME": str(tmp_path)})
    assert cfg.txindex is True and cfg.txospenderindex is True


def test_daemon_prints_cores_init_error_alone_on_stderr(tmp_path):
    """Core's assert_start_raises_init_error compares stderr with the whole text."""
    d = _datadir(tmp_path)
    r = subprocess.run([sys.executable, str(LAUNCHER), f"-datadir={d}", "-blockreservedweight=1999"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert r.stderr.strip() == ("Error: Specified -blockreservedweight (1999) is lower than minimum "
                                "safety value of (2000)")


def test_several_binds_pass_through_with_onion_tags_and_the_conf_bind(tmp_path):
    """p2p_getaddr_caching.py: two -bind=127.0.0.1:PORT=onion on the command line, bind=127.0.0.1
    in bitcoin.conf; Core merges the list setting, so all three listen (the plain one on -port)."""
    m = _launcher()
    d = _datadir(tmp_path)
    argv = m.translate(m.read_args([f"-datadir={d}", "-bind=127.0.0.1:13150=onion",
                                    "-bind=127.0.0.1:13151=onion"]))
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "--bind"] == [
        "127.0.0.1:13150=onion", "127.0.0.1:13151=onion", "127.0.0.1"]
    cfg = from_args(argv, env={"HOME": str(tmp_path)})
    assert (cfg.bind, cfg.port) == ("127.0.0.1", 13148)
    assert [(b.host, b.port, b.onion) for b in cfg.binds] == [
        ("127.0.0.1", 13150, True), ("127.0.0.1", 13151, True)]


def test_a_plain_bind_with_a_port_wins_over_port(tmp_path):
    m = _launcher()
    d = _datadir(tmp_path, FRAMEWORK_CONF.replace("bind=127.0.0.1\n", ""))
    cfg = from_args(m.translate(m.read_args([f"-datadir={d}", "-bind=127.0.0.1:14000"])),
                    env={"HOME": str(tmp_path)})
    assert (cfg.bind, cfg.port, cfg.binds) == ("127.0.0.1", 14000, ())


def test_dbcache_maps(tmp_path):
    """Core's -dbcache (MiB) reaches NodeConfig.dbcache; Core clamps it to at least 4 MiB."""
    m = _launcher()
    d = _datadir(tmp_path)
    argv = m.translate(m.read_args([f"-datadir={d}", "-dbcache=16"]))
    cfg = from_args(argv, env={"HOME": str(tmp_path)})
    assert cfg.dbcache == 16 and cfg.dbcache_bytes == 16 << 20
    argv = m.translate(m.read_args([f"-datadir={d}", "-dbcache=1"]))
    assert from_args(argv, env={"HOME": str(tmp_path)}).dbcache_bytes == 4 << 20


def test_wallet_node_starts_with_no_wallet_loaded_as_core(tmp_path):
    """Without -disablewallet the framework's node has the wallet but no wallet loaded (Core
    makes none by itself): tinynode's --no-default-wallet; -disablewallet is --no-wallet."""
    m = _launcher()
    argv = m.translate(m.read_args([f"-datadir={_datadir(tmp_path)}"]))
    cfg = from_args(argv, env={"HOME": str(tmp_path)})
    assert cfg.wallet is True and cfg.default_wallet is False
    argv = m.translate(m.read_args([f"-datadir={_datadir(tmp_path / 'b')}", "-disablewallet"]))
    assert "--no-default-wallet" not in argv and from_args(argv, env={"HOME": str(tmp_path)}).wallet is False


def test_blocksonly_maps(tmp_path):
    """Core -blocksonly (p2p_addr_relay's blocksonly_mode_tests) becomes --blocksonly."""
    m = _launcher()
    on = from_args(m.translate(m.read_args([f"-datadir={_datadir(tmp_path / 'a')}", "-blocksonly"])),
                   env={"HOME": str(tmp_path)})
    off = from_args(m.translate(m.read_args([f"-datadir={_datadir(tmp_path / 'b')}", "-noblocksonly"])),
                    env={"HOME": str(tmp_path)})
    assert (on.blocks_only, off.blocks_only) == (True, False)
