"""issue 19, the friendly CLI against a real regtest node: `send --from` prints the amount sent
(not amount + change), its insufficient-funds sentence quotes that address, `addresses` shows
immature coins, and an unknown txid's `status` exits 1."""
import asyncio
from decimal import Decimal

import pytest

from tests.framework.nodes import running_nodes
from tinynode import cli

pytestmark = pytest.mark.slow


async def run_cli(capsys, node, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = await asyncio.to_thread(cli.cli_main, ["-regtest", "--rpc-socket", str(node.node.rpc_socket), *argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


async def test_send_from_an_address_prints_amount_fee_and_change(capsys):
    async with running_nodes(1, txindex=True) as (a,):
        src = await a.rpc.call("getnewaddress", "mining")
        dest = await a.rpc.call("getnewaddress", "dest")
        await a.rpc.call("generatetoaddress", 101, src)          # 50 spendable + 100 x 50 immature at src

        rc, out, err = await run_cli(capsys, a, "addresses")
        assert rc == 0, err
        assert f"{src}  receive              50  (+5000 immature)  mining" in out.splitlines()

        rc, out, err = await run_cli(capsys, a, "send", dest, "100", "--from", src)
        assert (rc, out) == (1, "")
        assert err == (f"tinynode-cli: insufficient funds in {src}: 50 spendable, 5000 immature (mined coins "
                       f"become spendable after 101 confirmations), 0 incoming unconfirmed\n")

        rc, out, err = await run_cli(capsys, a, "send", dest, "0.5", "--from", src)
        assert rc == 0, err
        sent, txid_line, fee_line, change_line = out.splitlines()
        txid = txid_line.split()[1]
        fee = Decimal(fee_line.split()[1])
        assert sent == f"sent 0.5 to {dest}" and 0 < fee < Decimal("0.0001")
        assert change_line == f"change  {cli._coins(Decimal(50) - Decimal('0.5') - fee)} to {src}"
        raw = await a.rpc.call("getrawtransaction", txid, True)
        assert sorted((v["scriptPubKey"]["address"], Decimal(str(v["value"]))) for v in raw["vout"]) == \
            sorted([(dest, Decimal("0.5")), (src, Decimal(50) - Decimal("0.5") - fee)])

        rc, out, _ = await run_cli(capsys, a, "status", "11" * 32)
        assert (rc, out) == (1, "not found (not in the mempool or the chain)\n")
        rc, out, _ = await run_cli(capsys, a, "status", txid)
        assert (rc, out) == (0, "in mempool (0 confirmations)\n")


async def test_failed_start_logs_no_stopped_line_before_the_error(caplog):
    """issue 19: "tinynode stopped" was logged (twice) before the daemon reported why it could not
    start (busy port, locked datadir); a failed start now logs no "stopped" line, a normal stop one."""
    import logging
    import shutil
    import socket

    from tests.framework.nodes import net_config, short_tmpdir, start_node
    from tinynode.config import NodeConfig
    from tinynode.node import Node, NodeError

    d = short_tmpdir()
    try:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen()
            port = s.getsockname()[1]
            node = Node(NodeConfig(datadir=d, network="regtest", port=port, bind="127.0.0.1"),
                        net_config=net_config())
            with caplog.at_level(logging.INFO, logger="tinynode"):
                with pytest.raises(NodeError):
                    await node.run()
        assert "tinynode stopped" not in [r.getMessage() for r in caplog.records]
        t = await start_node(d)
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="tinynode"):
            second = Node(NodeConfig(datadir=d, network="regtest", port=0, bind="127.0.0.1"),
                          net_config=net_config())
            with pytest.raises(NodeError):                  # the datadir is locked by t
                await second.run()
        assert "tinynode stopped" not in [r.getMessage() for r in caplog.records]
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="tinynode"):
            await t.stop(remove=False)
        assert [r.getMessage() for r in caplog.records][-1] == "tinynode stopped"
    finally:
        shutil.rmtree(d, ignore_errors=True)


async def test_mining_off_is_logged_at_start(caplog):
    import logging
    with caplog.at_level(logging.INFO, logger="tinynode"):
        async with running_nodes(1, txindex=True):
            pass
    assert ("mining off: blocks come from peers, or on demand with `tinynode-cli mine N`; "
            "start with --mine to mine continuously") in [r.getMessage() for r in caplog.records]


async def test_backupwallet_copies_keys_and_coins_to_one_private_file(tmp_path):
    """Core's backupwallet: the copy opens as a wallet with the same keys and coins; a directory
    gets wallet.sqlite inside; the wallet's own file is refused with -4."""
    import os
    import stat

    from tinynode.params import REGTEST
    from tinynode.rpc.protocol import RPCError
    from tinynode.storage.wallet import WalletStore
    from tinynode.wallet.wallet import Wallet

    async with running_nodes(1, txindex=True) as (a,):
        addr = await a.rpc.call("getnewaddress", "mining")
        await a.rpc.call("generatetoaddress", 101, addr)
        wif = await a.rpc.call("dumpprivkey", addr)
        assert await a.rpc.call("backupwallet", str(tmp_path / "b1.sqlite")) is None
        assert await a.rpc.call("backupwallet", str(tmp_path)) is None
        with pytest.raises(RPCError) as e:
            await a.rpc.call("backupwallet", str(a.node.network_dir / "wallets" / "wallet.sqlite"))
        assert e.value.code == -4 and e.value.message.startswith("Error: Wallet backup failed!")
    for name in ("b1.sqlite", "wallet.sqlite"):
        path = tmp_path / name
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert not (tmp_path / (name + "-wal")).exists() or (tmp_path / (name + "-wal")).stat().st_size == 0
        w = Wallet(REGTEST, WalletStore(path))
        try:
            assert w.keys.export_wif(addr) == wif
            b = w.balances()
            assert (b.trusted, b.immature) == (50 * 10**8, 100 * 50 * 10**8)
        finally:
            w.close()
