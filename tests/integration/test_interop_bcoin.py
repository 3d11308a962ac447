"""Interop with bcoin (a Bitcoin full node in JavaScript) on regtest, over 127.0.0.1 only.

tinynode must sync from a real, independent implementation and serve one: issue 7 "Interop".
bcoin comes from `contrib/interop/install_bcoin.sh` (default folder `<repo>/.interop`, or the
folder in TINYNODE_BCOIN_DIR). When it is missing these tests are skipped with the reason, unless
TINYNODE_INTEROP=1 (CI sets it): then they fail, so a broken install cannot pass unnoticed.

Facts about bcoin 1.0.2 on regtest the tests rely on (read in its lib/net/pool.js, peer.js,
protocol/networks.js):
- same genesis and magic as Core's regtest; its own default ports (48444) and address prefixes
  (P2PKH version 0x3c), so its `generatetoaddress` needs a bcoin-format address;
- segwit is a BIP9 deployment there (bit 1, activating at height 432 when signalled), where
  Core's regtest buries it at height 0 and Core's miner always adds a witness commitment, which
  bcoin would refuse as `unexpected-witness` before its activation. The tests run bcoin with
  Core's regtest rule (`contrib/interop/core_regtest_rules.js`: the segwit deployment is active
  from genesis). bcoin refuses outbound peers without NODE_WITNESS (Peer.handleVersion), never
  syncs from one (Pool.isSyncable) and ignores its block invs (Pool.handleBlockInv); tinynode
  advertises NODE_WITNESS and asks for blocks with MSG_WITNESS_BLOCK, so both directions carry
  witness blocks;
- as a fresh node it syncs only from a "loader" peer it dialed itself (`--only host:port`), with
  `getblocks` (it has no regtest checkpoints), and follows new blocks by `inv` once synced.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.framework.httprpc import http_rpc
from tests.framework.interop import RPC_ERRORS, OtherNode, spend_p2pkh, wait_same_tip
from tests.framework.nodes import TestNode, short_tmpdir, start_node
from tests.framework.wait import wait_until
from tinynode.lab import free_port
from tinynode.primitives.keys import PrivateKey
from tinynode.primitives.tx import COIN

REPO = Path(__file__).resolve().parents[2]
BCOIN_DIR = Path(os.environ.get("TINYNODE_BCOIN_DIR") or REPO / ".interop")
BCOIN_ENTRY = BCOIN_DIR / "node_modules" / "bcoin" / "bin" / "node"
LOOPBACK_ONLY = REPO / "contrib" / "interop" / "loopback_only.js"
CORE_REGTEST_RULES = REPO / "contrib" / "interop" / "core_regtest_rules.js"
REQUIRED = os.environ.get("TINYNODE_INTEROP") == "1"
API_KEY = "tinynode-interop"
BCOIN_P2PKH_PREFIX = 0x3C  # bcoin's regtest pubkeyhash version byte (Core's is 0x6f)
SEGWIT_ACTIVE_HEIGHT = 432  # where bcoin's own BIP9 window would activate segwit (a sync point)
CHAIN_A = 2010  # > 2,000: more than one `headers` batch
CHAIN_B = 600  # > 500: more than one `getblocks` answer
WITNESS_COMMITMENT_PREFIX = "6a24aa21a9ed"  # OP_RETURN PUSH36 0xaa21a9ed (BIP141)


def _missing() -> str | None:
    if shutil.which("node") is None:
        return "node (Node.js) is not installed"
    if not BCOIN_ENTRY.is_file():
        return f"bcoin is not installed at {BCOIN_DIR} (run contrib/interop/install_bcoin.sh)"
    return None


@pytest.fixture
def bcoin_available() -> None:
    reason = _missing()
    if reason is None:
        return
    if REQUIRED:
        pytest.fail(f"TINYNODE_INTEROP=1 but {reason}", pytrace=False)
    print(f"skipping bcoin interop: {reason}; set TINYNODE_INTEROP=1 to make this a failure")
    pytest.skip(reason)


def bcoin_address(h160: bytes) -> str:
    """A P2PKH address in bcoin's regtest format (base58check, version 0x3c)."""
    import base58
    return base58.b58encode_check(bytes([BCOIN_P2PKH_PREFIX]) + h160).decode()


@dataclasses.dataclass
class Bcoin(OtherNode):
    """One bcoin process (regtest, in-memory chain, no wallet, loopback only)."""

    p2p_port: int
    http_port: int
    listen: bool

    @property
    def p2p_addr(self) -> str:
        return f"127.0.0.1:{self.p2p_port}"

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = (self.datadir / "bcoin.out").read_text(errors="replace")
        except OSError:
            return ""
        noise = ("(rpc)", "ECONNREFUSED", "loader peer", "Refilling peers", "Connecting to",
                 "Memory:")
        kept = [line for line in text.splitlines()
                if line.startswith("[") and not any(n in line for n in noise)]
        return "\n".join(kept[-lines:])

    async def rpc(self, method: str, *params: Any) -> Any:
        """bcoin's HTTP JSON-RPC (Core-compatible methods), API key as the basic-auth password."""
        return await http_rpc(self.http_port, "x", API_KEY, method, *params, timeout=30)

    async def ready(self) -> bool:
        """HTTP RPC answers and, when listening, the P2P server is up (bcoin opens it last,
        after looking up its external address, which takes seconds without internet)."""
        if self.proc.poll() is not None:
            raise AssertionError(f"bcoin exited with {self.proc.returncode}:\n{self.log_tail()}")
        if self.listen:
            try:
                text = (self.datadir / "bcoin.out").read_text(errors="replace")
            except OSError:
                return False
            if "Pool server listening" not in text:
                return False
        try:
            await self.rpc("getblockcount")
            return True
        except RPC_ERRORS:
            return False


async def start_bcoin(*, only: str | None = None, listen: bool = True) -> Bcoin:
    """Start bcoin; `only` = the one peer it dials and syncs from (its "loader")."""
    datadir = short_tmpdir("bc")
    p2p_port, http_port = free_port(), free_port()
    # bcoin needs at least one outbound slot; with nothing to dial, point it at a closed port.
    only = only or f"127.0.0.1:{free_port()}"
    # The preload stops bcoin asking a public DNS resolver for its external IP: loopback only.
    args = ["node", "-r", str(LOOPBACK_ONLY), "-r", str(CORE_REGTEST_RULES), str(BCOIN_ENTRY), "--network=regtest", f"--prefix={datadir}", "--memory=true",
            "--workers=false", "--no-wallet=true", f"--listen={'true' if listen else 'false'}",
            "--host=127.0.0.1", f"--port={p2p_port}", "--http-host=127.0.0.1",
            f"--http-port={http_port}", f"--api-key={API_KEY}", f"--only={only}",
            "--max-outbound=1", "--log-level=debug"]
    out = open(datadir / "bcoin.out", "wb")
    try:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    finally:
        out.close()
    node = Bcoin(proc, datadir, p2p_port, http_port, listen)
    try:
        await wait_until(node.ready, 30, interval=0.1,
                         message=lambda: f"bcoin did not start:\n{node.log_tail()}")
    except BaseException:
        node.stop()
        raise
    return node


async def assert_no_misbehaviour(t: TestNode, bc: Bcoin) -> None:
    """Neither side scored the other: unknown messages (bcoin's sendcmpct, feefilter) are free."""
    ours = [(p["subver"], p["banscore"]) for p in await t.rpc.call("getpeerinfo")]
    assert ours and all(agent.startswith("/bcoin:") and score == 0 for agent, score in ours), ours
    theirs = [(p["subver"], p["banscore"]) for p in await bc.rpc("getpeerinfo")]
    assert theirs and all(agent.startswith("/tinynode:") and score == 0
                          for agent, score in theirs), theirs


async def test_tinynode_syncs_from_bcoin(bcoin_available: None) -> None:
    """bcoin mines 2,010 blocks with segwit active (Core's regtest rule: every block carries a
    witness commitment and a coinbase witness, fetched with MSG_WITNESS_BLOCK); tinynode dials it and syncs headers-first (two `headers` batches: 2,000 max each) to the same
    tip; a P2PKH spend signed by tinynode's code goes
    through bcoin's mempool (relayed to tinynode) and a block bcoin mines, which tinynode
    follows."""
    key = PrivateKey(bytes(31) + b"\x07")
    h160 = key.public_key.hash160()
    bc = await start_bcoin()
    t: TestNode | None = None
    try:
        hashes = await bc.rpc("generatetoaddress", CHAIN_A, bcoin_address(h160))
        info = await bc.rpc("getblockchaininfo")
        assert info["bip9_softforks"]["segwit"]["status"] == "active"
        last = await bc.rpc("getblock", hashes[-1], True, True)
        assert any(out["scriptPubKey"]["hex"].startswith(WITNESS_COMMITMENT_PREFIX)
                   for out in last["tx"][0]["vout"])
        t = await start_node(peers=(("127.0.0.1", bc.p2p_port),))
        await wait_same_tip(t, bc, hashes[-1])
        assert t.node.writer.snapshot.height == CHAIN_A
        for height in (1, SEGWIT_ACTIVE_HEIGHT - 1, SEGWIT_ACTIVE_HEIGHT, 2000, 2001, CHAIN_A):
            assert await t.rpc.call("getblockhash", height) == hashes[height - 1]

        # Spend bcoin's first coinbase (mature) with tinynode's signer: bcoin accepts it to its
        # mempool and relays it to tinynode, then mines it; tinynode validates the block.
        first = await bc.rpc("getblock", hashes[0], True, True)
        cb = first["tx"][0]
        tx = spend_p2pkh(key, cb["txid"], 0, round(cb["vout"][0]["value"] * COIN))
        assert await bc.rpc("sendrawtransaction", tx.raw.hex()) == tx.txid_hex

        async def relayed() -> bool:
            return tx.txid_hex in await t.rpc.call("getrawmempool")

        await wait_until(relayed, 20, message="bcoin's tx never reached tinynode's mempool")
        more = await bc.rpc("generatetoaddress", 2, bcoin_address(h160))
        await wait_same_tip(t, bc, more[-1])
        block = await t.rpc.call("getblock", more[0])
        assert tx.txid_hex in block["tx"]
        assert t.node.writer.snapshot.height == CHAIN_A + 2
        assert tx.txid_hex not in await t.rpc.call("getrawmempool")
        await assert_no_misbehaviour(t, bc)
    finally:
        if t is not None:
            await t.stop()
        bc.stop()


async def test_bcoin_syncs_from_tinynode(bcoin_available: None) -> None:
    """tinynode mines 600 blocks; bcoin dials tinynode and syncs (getblocks: tinynode answers at
    most 500 hashes, then bcoin continues from the last one; getdata) validating
    every block by its own rules, segwit included (tinynode's blocks carry the witness
    commitment, as Core's), to the same tip; a wallet spend is relayed into bcoin's mempool,
    and bcoin follows the blocks tinynode mines next (announced by inv), the spend included."""
    t = await start_node()
    bc: Bcoin | None = None
    try:
        addr = await t.rpc.call("getnewaddress")
        hashes = await t.rpc.call("generatetoaddress", CHAIN_B, addr)
        bc = await start_bcoin(only=t.p2p_addr, listen=False)
        await wait_same_tip(t, bc, hashes[-1])
        assert await bc.rpc("getblockcount") == CHAIN_B
        info = await bc.rpc("getblockchaininfo")
        assert info["bip9_softforks"]["segwit"]["status"] == "active"
        for height in (1, 500, 501, CHAIN_B):
            assert await bc.rpc("getblockhash", height) == hashes[height - 1]

        txid = await t.rpc.call("sendtoaddress", await t.rpc.call("getnewaddress"), 1.5)

        async def relayed() -> bool:
            return txid in await bc.rpc("getrawmempool")

        await wait_until(relayed, 20, message="tinynode's tx never reached bcoin's mempool")
        more = await t.rpc.call("generatetoaddress", 3, addr)
        await wait_same_tip(t, bc, more[-1])
        block = await bc.rpc("getblock", more[0], True, False)
        assert txid in block["tx"]
        assert await bc.rpc("getblockcount") == CHAIN_B + 3
        await assert_no_misbehaviour(t, bc)
    finally:
        if bc is not None:
            bc.stop()
        await t.stop()


async def test_reorgs_across_implementations(bcoin_available: None) -> None:
    """Competing chains: tinynode mines 6 blocks and bcoin 3 on their own, then tinynode dials
    bcoin. bcoin starts a sync only with peers it dialed, but its chain is recent ("synced"),
    so the next block tinynode announces (inv) is fetched, found to be an orphan, its ancestors
    asked with getblocks, and bcoin reorgs onto tinynode's 7-block chain, disconnecting its 3;
    tinynode keeps its own chain (bcoin's 3 headers are a side branch). Then a second tinynode
    with its own 4 blocks dials bcoin and reorgs onto the 7-block chain, served by bcoin."""
    key = PrivateKey(bytes(31) + b"\x09")
    bc = await start_bcoin()
    t: TestNode | None = None
    t2: TestNode | None = None
    try:
        t = await start_node()
        mined = await t.rpc.call("generatetoaddress", 6, await t.rpc.call("getnewaddress"))
        own = await bc.rpc("generatetoaddress", 3, bcoin_address(key.public_key.hash160()))
        await t.rpc.call("addnode", bc.p2p_addr, "onetry")
        await wait_until(lambda: len(t.node.connman.connected_peers()) == 1, 10,
                         message="tinynode did not connect to bcoin")
        mined += await t.rpc.call("generatetoaddress", 1, await t.rpc.call("getnewaddress"))
        await wait_same_tip(t, bc, mined[-1])
        assert await bc.rpc("getblockcount") == 7
        assert await bc.rpc("getblockhash", 3) == mined[2] != own[2]
        assert t.node.writer.snapshot.height == 7
        await assert_no_misbehaviour(t, bc)

        # A second tinynode mines 4 blocks of its own, then dials bcoin: it must reorg to the
        # 7-block chain (headers and blocks from bcoin), disconnecting its 4.
        t2 = await start_node()
        lonely = await t2.rpc.call("generatetoaddress", 4, await t2.rpc.call("getnewaddress"))
        await t2.rpc.call("addnode", bc.p2p_addr, "onetry")
        await wait_same_tip(t2, bc, mined[-1])
        assert await t2.rpc.call("getblockhash", 4) == mined[3] != lonely[3]
        tips = await t2.rpc.call("getchaintips")
        assert any(tip["hash"] == lonely[-1] and tip["status"] != "active" for tip in tips)
    finally:
        for node in (t2, t):
            if node is not None:
                await node.stop()
        bc.stop()
