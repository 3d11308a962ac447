"""Bitcoin Core's own `bitcoin-cli` (v31, built next to bitcoind by contrib/interop/
install_bitcoind.sh) against a tinynode daemon over Core's cookie-authenticated RPC (issue 20):
-netinfo and -getinfo (which check the server's version and read getnetworkinfo, getpeerinfo,
getblockchaininfo and the wallet), multiwallet routing by -rpcwallet with Core's -18/-19 errors,
-named arguments, and a mine-send-confirm round. Skipped, with the reason, without bitcoin-cli."""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.framework.nodes import start_node

pytestmark = pytest.mark.slow


def _cli_path() -> str | None:
    named = os.environ.get("TINYNODE_BITCOIND")
    if named:
        p = Path(named).with_name("bitcoin-cli")
        return str(p) if p.exists() else None
    return shutil.which("bitcoin-cli")


CLI = _cli_path()
if CLI is None:
    pytest.skip("bitcoin-cli not found next to TINYNODE_BITCOIND (contrib/interop/install_bitcoind.sh "
                "builds it)", allow_module_level=True)


async def cli(node, *args: str, wallet: str | None = None) -> subprocess.CompletedProcess:
    """bitcoin-cli in a thread: the node answers on this test's event loop."""
    argv = [CLI, "-regtest", f"-rpccookiefile={node.node.config.rpc_cookie_path}",
            f"-rpcport={node.node.rpc_port}"]
    if wallet is not None:
        argv.append(f"-rpcwallet={wallet}")
    return await asyncio.to_thread(subprocess.run, argv + list(args), capture_output=True, text=True,
                                   timeout=120)


async def ok(node, *args: str, wallet: str | None = None) -> str:
    r = await cli(node, *args, wallet=wallet)
    assert r.returncode == 0, f"bitcoin-cli {' '.join(args)}: {r.stderr}"
    return r.stdout.strip()


async def test_bitcoin_cli_against_tinynode():
    t = await start_node(rpc_port=0)
    try:
        netinfo = await ok(t, "-netinfo")
        assert "server 70016/tinynode:0.1.0/" in netinfo and "Local services: network, witness" in netinfo
        getinfo = await ok(t, "-getinfo")
        assert "Chain: regtest" in getinfo and "Version: 310000" in getinfo and 'Wallet: ""' in getinfo

        addr = await ok(t, "getnewaddress")
        assert addr.startswith("bcrt1q")
        hashes = json.loads(await ok(t, "generatetoaddress", "101", addr))
        assert len(hashes) == 101 and await ok(t, "getblockcount") == "101"
        assert json.loads(await ok(t, "getblock", hashes[-1], "1"))["height"] == 101

        # several wallets: -rpcwallet routes, Core's errors otherwise
        assert json.loads(await ok(t, "createwallet", "w2")) == {"name": "w2"}
        assert json.loads(await ok(t, "listwallets")) == ["", "w2"]
        r = await cli(t, "getbalance")
        assert r.returncode == 19 and "error code: -19" in r.stderr      # bitcoin-cli exits with |code|
        r = await cli(t, "getbalance", wallet="nope")
        assert r.returncode == 18 and "error code: -18" in r.stderr and \
            "Requested wallet does not exist or is not loaded" in r.stderr
        to = await ok(t, "getnewaddress", wallet="w2")
        txid = await ok(t, "-named", "sendtoaddress", f"address={to}", "amount=1.5", wallet="")
        assert len(txid) == 64 and txid in json.loads(await ok(t, "getrawmempool"))
        await ok(t, "generatetoaddress", "1", addr)
        assert json.loads(await ok(t, "gettransaction", txid, wallet="w2"))["confirmations"] == 1
        assert await ok(t, "getbalance", wallet="w2") == "1.50000000"
        assert json.loads(await ok(t, "getwalletinfo", wallet="w2"))["walletname"] == "w2"
    finally:
        await t.stop()
