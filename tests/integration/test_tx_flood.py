"""Expensive invalid transactions (issue 14): block work goes first, and the peer pays.

Each flood tx spends 600 coins; 599 signatures are good (SIGHASH_ALL|ANYONECANPAY, so one set of
signatures serves every flood tx) and the last one is made with the wrong key, so the node
verifies 599 signatures before it finds the tx invalid by consensus (a bad signature fails with
the consensus flags alone). Such a tx costs the writer ~0.1 s in Python.

- From one peer, 30 of them: the peer is disconnected once its validation budget
  (`TxBudgetConfig`, 0.5 s by default) is spent, not banned (Core v31 never bans for a tx), its
  later txs are not validated, and a block submitted during the flood waits for at most the
  one tx being checked.
- Through the service from 30 callers at once: the block still overtakes every queued tx.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.framework.miniwallet import SIGHASH_ALL, SIGHASH_ANYONECANPAY, MiniWallet, Utxo, sign_tx
from tests.framework.netnodes import NetNode, sync_config
from tests.framework.rawpeer import RawPeer
from tests.framework.wait import wait_until
from tinynode.params import REGTEST
from tinynode.primitives.tx import OutPoint, Tx, TxIn, TxOut
from tinynode.validation import TxOrigin
from tinynode.wire import messages as m

pytestmark = pytest.mark.slow

N_GOOD = 599
N_FLOOD = 30


async def _funded_node(tmp_path) -> tuple[NetNode, MiniWallet, list[Utxo]]:
    """A regtest node whose wallet owns N_GOOD + N_FLOOD confirmed P2PKH coins."""
    node = NetNode(REGTEST, real_chain=True, mempool=True, datadir=tmp_path, config=sync_config())
    await node.start()
    wallet = MiniWallet()
    await node.mine(101, payout=wallet.script_pubkey)
    await node.writer.call(wallet.rescan, node.writer.chainstate)
    coin = await node.writer.call(wallet.get_utxo, node.writer.chainstate)
    fan, coins = wallet.fan_out(coin, N_GOOD + N_FLOOD, fee=200_000)
    res = await node.service.submit_tx(fan, TxOrigin.rpc())
    assert res.ok, res.error
    await node.mine(1)
    return node, wallet, coins


def _flood_txs(wallet: MiniWallet, coins: list[Utxo]) -> list[Tx]:
    """N_FLOOD distinct txs sharing 599 good ANYONECANPAY inputs, each with its own bad last input."""
    good, spare = coins[:N_GOOD], coins[N_GOOD:]
    value = sum(c.value for c in good) - 100_000
    out = (TxOut(value, wallet.script_pubkey),)
    hash_type = SIGHASH_ALL | SIGHASH_ANYONECANPAY
    base = Tx(1, tuple(TxIn(c.outpoint, b"", 0xFFFFFFFF) for c in good), out, 0)
    signed = sign_tx(base, good, hash_type)
    txs = []
    other = (TxOut(value - 1, wallet.script_pubkey),)
    for bad in spare:
        # the owner's key signs other outputs: a well-formed signature that does not verify
        probe = Tx(1, signed.vin + (TxIn(bad.outpoint, b"", 0xFFFFFFFF),), other, 0)
        bad_sig = sign_tx(probe, list(good) + [bad], hash_type).vin[-1]
        txs.append(Tx(1, signed.vin + (bad_sig,), out, 0))
    assert len({t.txid for t in txs}) == N_FLOOD
    return txs


def _watch_writer(node: NetNode) -> tuple[list[str], dict]:
    """Record, on the writer thread, each tx validated and where the next block job started."""
    order: list[str] = []
    marks: dict = {}
    service = node.service
    submit_tx_now = service.submit_tx_now

    def tx_job(tx, origin, rate=0):
        r = submit_tx_now(tx, origin, rate)
        if not r.skipped:
            order.append("tx")
        return r
    service.submit_tx_now = tx_job  # type: ignore[method-assign]
    submit_block = node.writer._submit_block

    def block_job(block):
        marks["block_started_after"] = len(order)
        return submit_block(block)
    node.writer._submit_block = block_job  # type: ignore[method-assign]
    return order, marks


async def test_one_peer_flooding_bad_signatures_is_disconnected_and_blocks_go_first(tmp_path):
    node, wallet, coins = await _funded_node(tmp_path)
    try:
        txs = _flood_txs(wallet, coins)
        block = await node.writer.call(node._mine_one, wallet.script_pubkey)
        order, marks = _watch_writer(node)
        peer = await RawPeer.connect("127.0.0.1", node.port, REGTEST.magic)
        await peer.handshake(start_height=node.height)
        for tx in txs:
            await peer.send(m.TxMsg(tx))
        # a block arrives while the flood is being validated
        await wait_until(lambda: len(order) >= 2, timeout=30)
        queued_at = len(order)
        res = await node.service.submit_block(block)
        assert res.status == "connected"
        assert marks["block_started_after"] - queued_at <= 1, (queued_at, marks)

        assert await peer.wait_closed(timeout=30), "the flooding peer was not disconnected"
        validated = len(order)
        assert 2 <= validated < N_FLOOD, validated
        # disconnected, not discouraged: the same address connects again and is served
        assert node.connman.list_banned() == []
        again = await RawPeer.connect("127.0.0.1", node.port, REGTEST.magic)
        await again.handshake(start_height=node.height)
        await again.sync_with_ping()
        await again.close()
        # none of the flood entered the pool, and the node's chain is untouched by it
        assert await node.writer.call(lambda: sum(t.txid in node.mempool for t in txs)) == 0
        await peer.close()
    finally:
        await node.stop()


async def test_block_overtakes_queued_transactions(tmp_path):
    node, wallet, coins = await _funded_node(tmp_path)
    try:
        txs = _flood_txs(wallet, coins)
        block = await node.writer.call(node._mine_one, wallet.script_pubkey)
        order, marks = _watch_writer(node)
        flood = [asyncio.ensure_future(node.service.submit_tx(tx, TxOrigin.rpc())) for tx in txs]
        await wait_until(lambda: len(order) >= 1, timeout=30)
        queued_at = len(order)
        res = await node.service.submit_block(block)
        assert res.status == "connected"
        assert marks["block_started_after"] - queued_at <= 1, (queued_at, marks)
        results = await asyncio.gather(*flood)
        assert all(r.consensus_invalid and not r.accepted for r in results)
        assert {r.error.reason for r in results} == {
            "mempool-script-verify-flag-failed (Signature must be zero for failed CHECK(MULTI)SIG operation)"}
        assert not any(r.over_budget for r in results), "RPC callers have no budget"
    finally:
        await node.stop()
