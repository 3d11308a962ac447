"""What the interop tests with other implementations (bcoin, Bitcoin Core) share: comparing tips
and signing a spend with tinynode's own code for the other node to accept."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tests.framework.nodes import TestNode
from tests.framework.wait import wait_until
from tinynode.primitives.address import p2pkh_script
from tinynode.primitives.hashes import hash_to_hex, hex_to_hash
from tinynode.primitives.keys import PrivateKey
from tinynode.primitives.tx import OutPoint, Tx, TxIn, TxOut
from tinynode.script.sign import sign_p2pkh


#: What a failed RPC to the other node may raise: not up yet, warming up, or an error reply.
RPC_ERRORS = (OSError, ValueError, RuntimeError, asyncio.TimeoutError)


@dataclasses.dataclass
class OtherNode:
    """One process of another implementation, with its data directory (removed on stop)."""

    proc: subprocess.Popen
    datadir: Path

    STOP_GRACE = 10.0  # seconds between SIGTERM and SIGKILL

    async def rpc(self, method: str, *params: Any) -> Any:
        raise NotImplementedError

    def log_tail(self, lines: int = 40) -> str:
        raise NotImplementedError

    async def best_hash(self) -> str | None:
        try:
            return await self.rpc("getbestblockhash")
        except RPC_ERRORS:
            return None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(self.STOP_GRACE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        shutil.rmtree(self.datadir, ignore_errors=True)


def tip_hex(t: TestNode) -> str:
    return hash_to_hex(t.node.writer.snapshot.tip_hash)


async def wait_same_tip(t: TestNode, other: OtherNode, want: str, timeout: float = 30.0) -> None:
    """Both tinynode and the other node have `want` as their tip; on timeout, both tips and the
    other node's log in the message."""
    async def both() -> bool:
        return tip_hex(t) == want and await other.best_hash() == want

    try:
        await wait_until(both, timeout, interval=0.05)
    except AssertionError as e:
        name = type(other).__name__
        raise AssertionError(
            f"{e}: want {want}; tinynode height {t.node.writer.snapshot.height} tip {tip_hex(t)}; "
            f"{name} tip {await other.best_hash()}\n--- {name} log ---\n{other.log_tail()}") from None


def spend_p2pkh(key: PrivateKey, txid_hex: str, vout: int, value: int, fee: int = 10_000) -> Tx:
    """A 1-in/1-out spend of a P2PKH output of `key`, back to `key`, signed by tinynode."""
    spk = p2pkh_script(key.public_key.hash160())
    tx = Tx(1, (TxIn(OutPoint(hex_to_hash(txid_hex), vout)),), (TxOut(value - fee, spk),))
    return dataclasses.replace(tx, vin=(dataclasses.replace(
        tx.vin[0], script_sig=sign_p2pkh(tx, 0, key, spk)),))
