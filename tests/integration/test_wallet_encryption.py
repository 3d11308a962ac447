"""issue 20: an encrypted wallet over RPC as Bitcoin Core v31's: encryptwallet, walletpassphrase
(with its relock timer), walletlock, walletpassphrasechange, createwallet with a passphrase;
-13 for every call that signs or reveals a key while locked, -14 for a wrong passphrase, -15
in the wrong encryption state; getwalletinfo's unlocked_until."""
import sqlite3
import time

import pytest

from tests.framework.nodes import running_nodes
from tests.framework.wait import wait_until
from tinynode.params import REGTEST
from tinynode.primitives.address import decode_wif
from tinynode.rpc.client import AsyncRPCClient
from tinynode.rpc.protocol import RPCError

pytestmark = pytest.mark.slow

LOCKED = (-13, "Error: Please enter the wallet passphrase with walletpassphrase first.")
WRONG = (-14, "Error: The wallet passphrase entered was incorrect.")


async def rpc_error(aw) -> tuple[int, str]:
    with pytest.raises(RPCError) as e:
        await aw
    return e.value.code, e.value.message


async def test_encryptwallet_locks_signing_until_walletpassphrase_and_relocks():
    async with running_nodes(1) as (a,):
        c = a.rpc
        addr = await c.call("getnewaddress")
        wif = await c.call("dumpprivkey", addr)
        secret, _ = decode_wif(wif, REGTEST)
        await c.call("generatetoaddress", 101, addr)
        assert await rpc_error(c.call("walletpassphrase", "x", 10)) == (
            -15, "Error: running with an unencrypted wallet, but walletpassphrase was called.")
        assert await rpc_error(c.call("walletlock")) == (
            -15, "Error: running with an unencrypted wallet, but walletlock was called.")
        assert await rpc_error(c.call("encryptwallet", "")) == (-8, "passphrase cannot be empty")
        msg = await c.call("encryptwallet", "s3cret")
        assert msg.startswith("wallet encrypted;")
        assert await rpc_error(c.call("encryptwallet", "again")) == (
            -15, "Error: running with an encrypted wallet, but encryptwallet was called.")

        # at rest: no clear secret in the file
        path = a.node.network_dir / "wallets" / "wallet.sqlite"
        with sqlite3.connect(str(path)) as db:
            stored = [bytes(r[0]) for r in db.execute("SELECT secret FROM keys")]
        assert stored and secret not in stored and all(len(s) == 60 for s in stored)
        assert secret not in path.read_bytes()

        info = await c.call("getwalletinfo")
        assert info["unlocked_until"] == 0
        other = await c.call("getnewaddress")                     # the keypool still hands out
        assert await rpc_error(c.call("sendtoaddress", other, 1)) == LOCKED
        assert await rpc_error(c.call("dumpprivkey", addr)) == LOCKED
        raw = await c.call("createrawtransaction", [{"txid": "00" * 32, "vout": 0}], [{other: 1}])
        assert await rpc_error(c.call("signrawtransactionwithwallet", raw)) == LOCKED
        assert await rpc_error(c.call("walletpassphrase", "wrong", 10)) == WRONG
        assert await rpc_error(c.call("walletpassphrase", "s3cret", -1)) == (-8, "Timeout cannot be negative.")
        assert await c.call("getbalance") == 50                   # reading needs no passphrase

        before = int(time.time())
        assert await c.call("walletpassphrase", "s3cret", 600) is None
        until = (await c.call("getwalletinfo"))["unlocked_until"]
        assert before + 600 <= until <= int(time.time()) + 600
        assert await c.call("dumpprivkey", addr) == wif
        txid = await c.call("sendtoaddress", other, 1)
        assert (await c.call("gettransaction", txid))["amount"] == 0   # to ourselves, fee aside
        assert await c.call("walletlock") is None
        assert (await c.call("getwalletinfo"))["unlocked_until"] == 0
        assert await rpc_error(c.call("sendtoaddress", other, 1)) == LOCKED

        # passphrase change: the old one stops working, the keys stay
        assert await rpc_error(c.call("walletpassphrasechange", "nope", "new")) == WRONG
        assert await c.call("walletpassphrasechange", "s3cret", "n3w") is None
        assert await rpc_error(c.call("walletpassphrase", "s3cret", 10)) == WRONG

        # a one-second unlock relocks by itself (the timer wipes the key; no sleep here)
        await c.call("walletpassphrase", "n3w", 1)
        assert await c.call("dumpprivkey", addr) == wif

        async def relocked() -> bool:
            return (await c.call("getwalletinfo"))["unlocked_until"] == 0
        await wait_until(relocked, timeout=10)
        assert a.node.wallet.keys.crypter._master is None
        assert await rpc_error(c.call("dumpprivkey", addr)) == LOCKED

        # across a restart it comes back locked, same keys
        await a.restart()
        c = a.rpc
        assert (await c.call("getwalletinfo"))["unlocked_until"] == 0
        assert await rpc_error(c.call("dumpprivkey", addr)) == LOCKED
        await c.call("walletpassphrase", "n3w", 60)
        assert await c.call("dumpprivkey", addr) == wif


async def test_createwallet_with_passphrase_is_born_encrypted_and_watch_only_refuses_one():
    async with running_nodes(1) as (a,):
        r = await a.rpc.call("createwallet", "vault", False, False, "pw")
        assert r == {"name": "vault"}
        vault = AsyncRPCClient(a.node.rpc_socket, wallet="vault")
        try:
            info = await vault.call("getwalletinfo")
            assert info["unlocked_until"] == 0 and info["keypoolsize"] == 20
            assert info["blank"] is False and info["flags"] == []
            addr = await vault.call("getnewaddress")
            assert await rpc_error(vault.call("dumpprivkey", addr)) == LOCKED
            await vault.call("walletpassphrase", "pw", 30)
            assert (await vault.call("dumpprivkey", addr)).startswith("c")
        finally:
            await vault.close()
        # a wallet's every key was sealed from birth
        with sqlite3.connect(str(a.node.network_dir / "wallets" / "vault" / "wallet.sqlite")) as db:
            assert {len(bytes(r[0])) for r in db.execute("SELECT secret FROM keys")} == {60}

        assert await rpc_error(a.rpc.call("createwallet", "w", True, False, "pw")) == (
            -4, "Passphrase provided but private keys are disabled. A passphrase is only used to "
                "encrypt private keys, so cannot be used for wallets with private keys disabled.")
        r = await a.rpc.call("createwallet", "empty", False, False, "")
        assert r == {"name": "empty", "warnings": ["Empty string given as passphrase, wallet will not be encrypted."]}
        r = await a.rpc.call("createwallet", "watch", True)
        watch = AsyncRPCClient(a.node.rpc_socket, wallet="watch")
        try:
            info = await watch.call("getwalletinfo")
            assert info["private_keys_enabled"] is False and info["keypoolsize"] == 0
            assert info["flags"] == ["disable_private_keys"]
            assert await rpc_error(watch.call("encryptwallet", "pw")) == (
                -16, "Error: wallet does not contain private keys, nothing to encrypt.")
            assert await rpc_error(watch.call("getnewaddress")) == (-4, "Error: This wallet has no available keys")
        finally:
            await watch.close()
        assert await rpc_error(a.rpc.call("createwallet", "legacy", False, False, None, False, False)) == (
            -4, 'descriptors argument must be set to "true"; it is no longer possible to create a legacy wallet.')
