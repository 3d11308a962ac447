"""NodeConfig from argv and environment: per-network defaults, env fallbacks, precedence."""
from pathlib import Path

import pytest

from tinynode.config import ConfigError, NodeConfig, from_args, parse_peer


def test_tinynet_defaults_listen_everywhere_and_mine():
    cfg = from_args([], {"HOME": "/home/alice"})
    assert cfg.network == "tinynet"
    assert cfg.datadir == Path("/home/alice/.tinynode")
    assert cfg.port == 9999 and cfg.bind == "0.0.0.0"
    assert cfg.listen is True and cfg.mine is True and cfg.mine_to is None
    assert cfg.mine_workers >= 1
    assert cfg.peers == ()
    assert cfg.rpc_socket_path == Path("/home/alice/.tinynode/tinynet/rpc.sock")
    assert cfg.log_level == "info" and cfg.log_file is None


def test_regtest_defaults_loopback_and_no_mining():
    cfg = from_args(["--network", "regtest", "--datadir", "/d"], {})
    assert cfg.port == 18444 and cfg.bind == "127.0.0.1"
    assert cfg.mine is False
    assert cfg.network_dir == Path("/d/regtest")
    assert cfg.rpc_socket_path == Path("/d/regtest/rpc.sock")
    assert cfg.params.name == "regtest"


def test_env_fallbacks():
    env = {"TC_PORT": "12345", "TC_PEERS": "a.example, b:1000 ,[::1]:7", "TC_MINE": "3",
           "TC_LOG_LEVEL": "DEBUG", "HOME": "/h"}
    cfg = from_args(["--network", "regtest"], env)
    assert cfg.port == 12345
    assert cfg.peers == (("a.example", 18444), ("b", 1000), ("::1", 7))
    assert cfg.mine is True and cfg.mine_workers == 3
    assert cfg.log_level == "debug"


def test_command_line_beats_environment():
    env = {"TC_PORT": "12345", "TC_PEERS": "x:1", "TC_MINE": "3", "TC_LOG_LEVEL": "debug"}
    cfg = from_args(["--port", "0", "--peers", "y:2", "--mine-workers", "1", "--log-level",
                     "warning", "--no-mine", "--datadir", "/d"], env)
    assert cfg.port == 0 and cfg.peers == (("y", 2),)
    assert cfg.mine is False and cfg.mine_workers == 1 and cfg.log_level == "warning"


def test_tc_mine_zero_turns_mining_off_on_tinynet():
    assert from_args(["--datadir", "/d"], {"TC_MINE": "0"}).mine is False


def test_mine_to_implies_mine_and_checks_the_address():
    from tinynode.params import REGTEST
    from tinynode.primitives.address import encode_address
    addr = encode_address("p2pkh", bytes(20), REGTEST)
    cfg = from_args(["--network", "regtest", "--datadir", "/d", "--mine-to", addr], {})
    assert cfg.mine is True and cfg.mine_to == addr
    with pytest.raises(ConfigError, match="--mine-to"):
        from_args(["--network", "tinynet", "--datadir", "/d", "--mine-to", addr], {})


def test_no_listen_bind_and_log_file():
    cfg = from_args(["--no-listen", "--bind", "::", "--log-file", "/tmp/x.log", "--datadir", "/d"], {})
    assert cfg.listen is False and cfg.bind == "::" and cfg.log_file == Path("/tmp/x.log")


def test_long_socket_path_names_the_option():
    with pytest.raises(ConfigError, match="--rpc-socket"):
        from_args(["--datadir", "/" + "d" * 120], {})
    cfg = from_args(["--datadir", "/" + "d" * 120, "--rpc-socket", "/tmp/short.sock"], {})
    assert cfg.rpc_socket_path == Path("/tmp/short.sock")


def test_bad_values():
    with pytest.raises(ConfigError, match="TC_PORT"):
        from_args(["--datadir", "/d"], {"TC_PORT": "lots"})
    with pytest.raises(ConfigError):
        from_args(["--datadir", "/d", "--peers", "host:notaport"], {})
    with pytest.raises(SystemExit):
        from_args(["--network", "mainnet"], {})
    with pytest.raises(ConfigError, match="mine-workers"):
        from_args(["--datadir", "/d", "--mine-workers", "0"], {})


def test_parse_peer_forms():
    assert parse_peer("node1", 9999) == ("node1", 9999)
    assert parse_peer("node1:8333", 9999) == ("node1", 8333)
    assert parse_peer("[2001:db8::1]", 9999) == ("2001:db8::1", 9999)
    assert parse_peer("[2001:db8::1]:1", 9999) == ("2001:db8::1", 1)
    for bad in ("", ":1", "h:0", "h:70000", "[::1"):
        with pytest.raises(ConfigError):
            parse_peer(bad, 9999)


def test_nodeconfig_is_frozen_and_directly_constructible(tmp_path):
    cfg = NodeConfig(datadir=tmp_path)
    assert cfg.network == "regtest" and cfg.port == 0
    with pytest.raises(AttributeError):
        cfg.port = 1  # type: ignore[misc]
    cfg.validate()


def test_rest_and_explorer_flags():
    """Issue 20: --rest (Core's -rest) and --explorer are off by default, live on the TCP RPC
    port (so they need --rpc-port), and --explorer turns REST on (the page reads it)."""
    from tinynode.config import ConfigError, from_args
    env = {"HOME": "/tmp"}
    cfg = from_args(["--network", "regtest"], env)
    assert (cfg.rest, cfg.explorer) == (False, False)
    cfg = from_args(["--network", "regtest", "--rpc-port", "18443", "--rest"], env)
    assert (cfg.rest, cfg.explorer) == (True, False)
    cfg = from_args(["--network", "regtest", "--rpc-port", "18443", "--explorer"], env)
    assert (cfg.rest, cfg.explorer) == (True, True)
    for flag, option in (("--rest", "--rest"), ("--explorer", "--explorer")):
        try:
            from_args(["--network", "regtest", flag], env)
        except ConfigError as e:
            assert str(e).startswith(f"{option} ") and "--rpc-port N" in str(e)
        else:  # pragma: no cover
            raise AssertionError(f"{flag} without --rpc-port accepted")


def test_bind_is_repeatable_with_onion_tags():
    from tinynode.config import ConfigError, from_args, parse_bind
    import pytest as _pytest
    cfg = from_args(["--network", "regtest", "--datadir", "/tmp/x", "--port", "20000",
                     "--bind", "127.0.0.1=onion", "--bind", "127.0.0.1", "--bind", "[::1]:20002"], env={})
    assert (cfg.bind, cfg.port) == ("127.0.0.1", 20000)
    # an onion bind without a port takes the onion service target port (Core: P2P port + 1)
    assert [(b.host, b.port, b.onion) for b in cfg.binds] == [("127.0.0.1", 18445, True),
                                                              ("::1", 20002, False)]
    with _pytest.raises(ConfigError, match="Cannot resolve -bind address: '127.0.0.1=i2p'"):
        parse_bind("127.0.0.1=i2p", 1, 2)
    with _pytest.raises(ConfigError, match="Cannot resolve -bind address"):
        parse_bind("127.0.0.1:notaport", 1, 2)


def test_dbcache_default_and_option(tmp_path):
    """--dbcache MiB (Core -dbcache): default 300; below Core's minimum of 4 MiB means 4."""
    env = {"HOME": str(tmp_path)}
    assert from_args([], env=env).dbcache_bytes == 300 << 20
    assert from_args(["--dbcache", "1024"], env=env).dbcache_bytes == 1024 << 20
    assert from_args(["--dbcache", "0"], env=env).dbcache_bytes == 4 << 20
