"""issues 19 and 20: several wallets in one node, reached as Bitcoin Core's are.

createwallet/loadwallet/unloadwallet/listwallets/listwalletdir with Core v31's results, codes
and sentences; `/wallet/<name>` routing over the Unix socket and loopback TCP; -18 for a wallet
that is not loaded, -19 when several are loaded and the request names none; load_on_startup
across a restart; a single-wallet datadir (`<net>/wallet.sqlite`) moving to `wallets/` with its
keys; the miner paying one stored address across restarts; and the CLI's `--wallet`,
`wallets`, `createwallet` and `history`.
"""
import asyncio
import base64
import json
import shutil

import pytest

from tests.framework.nodes import running_nodes, short_tmpdir, start_node
from tinynode import cli
from tinynode.params import REGTEST
from tinynode.primitives.address import decode_address
from tinynode.rpc.client import AsyncRPCClient
from tinynode.rpc.protocol import RPCError
from tinynode.storage.wallet import WalletStore
from tinynode.wallet.wallet import Wallet

pytestmark = pytest.mark.slow

MULTIPLE = ("Multiple wallets are loaded. Please select which wallet to use by requesting the RPC "
            "through the /wallet/<walletname> URI path.")


async def rpc_error(aw) -> RPCError:
    with pytest.raises(RPCError) as e:
        await aw
    return e.value


async def test_create_load_unload_and_routing_with_cores_errors():
    async with running_nodes(1) as (a,):
        wdir = a.node.network_dir / "wallets"
        assert await a.rpc.call("listwallets") == [""]
        assert (wdir / "wallet.sqlite").is_file()
        mine_addr = await a.rpc.call("getnewaddress")            # one wallet: "/" reaches it
        assert await a.rpc.call("createwallet", "alice") == {"name": "alice"}
        assert (wdir / "alice" / "wallet.sqlite").is_file()
        assert await a.rpc.call("listwallets") == ["", "alice"]

        e = await rpc_error(a.rpc.call("getbalance"))
        assert (e.code, e.message) == (-19, MULTIPLE)
        alice = AsyncRPCClient(a.node.rpc_socket, wallet="alice")
        default = AsyncRPCClient(a.node.rpc_socket, wallet="")
        nobody = AsyncRPCClient(a.node.rpc_socket, wallet="bob")
        try:
            info = await alice.call("getwalletinfo")
            assert info["walletname"] == "alice" and info["format"] == "sqlite"
            assert info["walletversion"] == 169900 and info["txcount"] == 0
            assert info["keypoolsize"] == 20 and info["private_keys_enabled"] is True
            assert info["scanning"] is False and "unlocked_until" not in info
            assert info["lastprocessedblock"]["height"] == 0 and isinstance(info["birthtime"], int)
            assert (await default.call("getwalletinfo"))["walletname"] == ""
            e = await rpc_error(nobody.call("getbalance"))
            assert (e.code, e.message) == (-18, "Requested wallet does not exist or is not loaded")

            # coins for alice from the default wallet: each wallet sees only its own
            alice_addr = await alice.call("getnewaddress")
            await default.call("generatetoaddress", 101, mine_addr)
            txid = await default.call("sendtoaddress", alice_addr, 2.5)
            await default.call("generatetoaddress", 1, mine_addr)
            assert await alice.call("getbalance") == 2.5
            assert (await alice.call("gettransaction", txid))["amount"] == 2.5
            assert (await default.call("gettransaction", txid))["amount"] == -2.5
            assert (await alice.call("getaddressinfo", alice_addr))["ismine"] is True
            assert (await default.call("getaddressinfo", alice_addr))["ismine"] is False

            # Core v31's sentences and codes
            e = await rpc_error(a.rpc.call("createwallet", "alice"))
            assert e.code == -4 and e.message == (
                f"Wallet file verification failed. Failed to create database path '{wdir / 'alice'}'. "
                f"Database already exists.")
            e = await rpc_error(a.rpc.call("loadwallet", "alice"))
            assert (e.code, e.message) == (-35, 'Wallet "alice" is already loaded.')
            e = await rpc_error(a.rpc.call("createwallet", ""))
            assert (e.code, e.message) == (-8, "Wallet name cannot be empty")
            e = await rpc_error(a.rpc.call("loadwallet", "nope"))
            assert e.code == -18 and e.message == (
                f"Wallet file verification failed. Failed to load database path '{wdir / 'nope'}'. "
                f"Path does not exist.")
            e = await rpc_error(a.rpc.call("unloadwallet"))
            assert (e.code, e.message) == (-8, "Either the RPC endpoint wallet or the wallet name "
                                               "parameter must be provided")
            e = await rpc_error(alice.call("unloadwallet", ""))
            assert (e.code, e.message) == (-8, "The RPC endpoint wallet and the wallet name parameter "
                                               "specify different wallets")

            assert await alice.call("unloadwallet") == {}
            assert await a.rpc.call("listwallets") == [""]
            e = await rpc_error(alice.call("getbalance"))
            assert e.code == -18
            assert await a.rpc.call("getbalance") > 0                 # one wallet again: "/" works
            assert await a.rpc.call("listwalletdir") == {"wallets": [{"name": "", "warnings": []},
                                                                     {"name": "alice", "warnings": []}]}
            # reloaded, it catches up and keeps its coins
            await default.call("generatetoaddress", 2, mine_addr)
            assert await a.rpc.call("loadwallet", "alice") == {"name": "alice"}
            assert await alice.call("getbalance") == 2.5
            assert (await alice.call("getwalletinfo"))["lastprocessedblock"]["height"] == 104

            # no wallet at all: Core's -18 sentence for "/"
            await a.rpc.call("unloadwallet", "alice")
            await a.rpc.call("unloadwallet", "")
            e = await rpc_error(a.rpc.call("getbalance"))
            assert e.code == -18 and e.message.startswith("No wallet is loaded. Load a wallet using loadwallet")
        finally:
            for c in (alice, default, nobody):
                await c.close()


async def test_load_on_startup_survives_a_restart_and_tcp_routes_wallet_uris():
    a = await start_node(rpc_port=0)
    try:
        await a.rpc.call("createwallet", "carol", False, False, None, False, True, True)
        await a.rpc.call("createwallet", "dave")                 # not kept for the next start
        settings = json.loads((a.node.network_dir / "settings.json").read_text())
        assert settings == {"wallet": ["carol"]}
        await a.restart()
        assert await a.rpc.call("listwallets") == ["", "carol"]
        names = [w["name"] for w in (await a.rpc.call("listwalletdir"))["wallets"]]
        assert names == ["", "carol", "dave"]

        import aiohttp
        cookie = (a.node.network_dir / ".cookie").read_text()
        auth = {"Authorization": "Basic " + base64.b64encode(cookie.encode()).decode()}

        async def call(path: str, method: str) -> dict:
            body = json.dumps({"jsonrpc": "1.0", "id": 1, "method": method, "params": []})
            async with aiohttp.ClientSession() as s:
                async with s.post(f"http://127.0.0.1:{a.node.rpc_port}{path}", data=body, headers=auth) as r:
                    return await r.json()
        assert (await call("/wallet/carol", "getwalletinfo"))["result"]["walletname"] == "carol"
        assert (await call("/wallet/", "getwalletinfo"))["result"]["walletname"] == ""
        assert (await call("/wallet/dave", "getbalance"))["error"]["code"] == -18
        assert (await call("/", "getbalance"))["error"] == {"code": -19, "message": MULTIPLE}
        await a.rpc.call("unloadwallet", "carol", False)
        assert json.loads((a.node.network_dir / "settings.json").read_text()) == {"wallet": []}
    finally:
        await a.stop()


async def test_single_wallet_datadir_moves_to_wallets_dir_with_its_keys_and_txs():
    d = short_tmpdir()
    try:
        old = d / "regtest" / "wallet.sqlite"
        w = Wallet(REGTEST, WalletStore(old), keypool_size=3)
        addr = w.keys.new_address("kept")
        wif = w.keys.export_wif(addr)
        spk = decode_address(addr, REGTEST).script_pubkey
        w.close()
        a = await start_node(datadir=d)
        try:
            assert not old.exists() and (d / "regtest" / "wallets" / "wallet.sqlite").is_file()
            assert await a.rpc.call("listwallets") == [""]
            assert await a.rpc.call("dumpprivkey", addr) == wif
            assert (await a.rpc.call("getaddressinfo", addr))["labels"] == ["kept"]
            await a.rpc.call("generatetoaddress", 101, addr)
            assert await a.rpc.call("getbalance") == 50
            assert a.node.wallet.keys.is_mine(spk)
            await a.restart()                                    # the new layout stays put
            assert await a.rpc.call("getbalance") == 50
        finally:
            await a.stop(remove=False)
    finally:
        shutil.rmtree(d, ignore_errors=True)


async def test_miner_pays_one_stored_address_across_restarts():
    a = await start_node(mine=True, mine_workers=1)
    try:
        first = a.node.payout_script
        assert first is not None and a.node.wallet.keys.is_mine(first)
        addr = a.node.wallet.keys.address_of(first)
        assert (await a.rpc.call("getaddressinfo", addr))["labels"] == ["mining"]
        await a.restart()
        assert a.node.payout_script == first
        await a.restart()
        assert a.node.payout_script == first
        mining = [r for r in await a.rpc.call("listaddresses") if r["label"] == "mining"]
        assert [r["address"] for r in mining] == [addr]
    finally:
        await a.stop()


async def run_cli(capsys, node, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = await asyncio.to_thread(cli.cli_main, ["-regtest", "--rpc-socket", str(node.node.rpc_socket), *argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


async def test_cli_wallet_verbs_history_and_rpcwallet(capsys):
    async with running_nodes(1) as (a,):
        rc, out, err = await run_cli(capsys, a, "createwallet", "savings")
        assert rc == 0, err
        assert out.splitlines()[0] == 'created wallet "savings"'
        rc, out, err = await run_cli(capsys, a, "createwallet", "locked1", "--passphrase", "pw")
        assert rc == 0, err
        assert "encrypted" in out.splitlines()[0]
        # several loaded: a wallet command without --wallet gets Core's -19
        rc, out, err = await run_cli(capsys, a, "balance")
        assert rc == 1 and "error code: -19" in err
        rc, out, err = await run_cli(capsys, a, "--wallet", "savings", "newaddress")
        assert rc == 0, err
        savings_addr = out.strip()
        rc, out, err = await run_cli(capsys, a, "-rpcwallet=", "newaddress", "mining")
        assert rc == 0, err
        mine_addr = out.strip()
        default = AsyncRPCClient(a.node.rpc_socket, wallet="")
        try:
            await default.call("generatetoaddress", 101, mine_addr)
            txid = await default.call("sendtoaddress", savings_addr, 1.25)
            await default.call("generatetoaddress", 1, mine_addr)
        finally:
            await default.close()

        rc, out, err = await run_cli(capsys, a, "--wallet", "savings", "history")
        assert rc == 0, err
        lines = out.splitlines()
        assert lines[0].split()[:4] == ["DATE", "(UTC)", "CATEGORY", "AMOUNT"]
        assert len(lines) == 2
        assert lines[1].split()[2:5] == ["receive", "+1.25", "1"] and lines[1].endswith(f"{savings_addr}  {txid}")
        rc, out, err = await run_cli(capsys, a, "--wallet", "", "history", "--count", "3")
        assert rc == 0, err
        rows = out.splitlines()[1:]
        # newest first: the coinbase of the block that mined the send (+ its fee), then the send
        assert len(rows) == 3 and rows[0].split()[2] == "immature"
        assert rows[1].split()[2:4] == ["send", "-1.25"] and rows[1].endswith(txid)
        rc, out, err = await run_cli(capsys, a, "--wallet", "", "history", "--json", "--count", "1", "--skip", "1")
        assert [r["txid"] for r in json.loads(out)] == [txid]       # listtransactions' rows

        rc, out, err = await run_cli(capsys, a, "wallets")
        assert rc == 0, err
        table = {ln.split()[0]: ln for ln in out.splitlines()[1:]}
        assert table["savings"].split()[1:4] == ["yes", "1.25", "1"]
        assert "encrypted, locked" in table["locked1"]
        assert out.splitlines()[-1].startswith("several wallets are loaded")
        await a.rpc.call("unloadwallet", "savings")
        rc, out, err = await run_cli(capsys, a, "wallets")
        assert "load with `tinynode-cli loadwallet savings`" in out

        # Core's positional form passes straight through
        rc, out, err = await run_cli(capsys, a, "createwallet", "watch", "true", "false")
        assert rc == 0, err
        assert json.loads(out) == {"name": "watch"}
        rc, out, err = await run_cli(capsys, a, "--wallet", "watch", "getnewaddress")
        assert rc == 1 and "error code: -4" in err and "This wallet has no available keys" in err
        rc, out, err = await run_cli(capsys, a, "help", "history")
        assert rc == 0 and out.startswith("history [--count N] [--skip N]")
