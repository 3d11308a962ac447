"""SyncManager's transaction path over the validation service (issue 14), with a fake service:
what it does with each kind of `TxResult` for a peer's tx, and that its caches stay bounded.

- accepted: the peer's `last_tx_time` is set; relay follows the service's TxAccepted event,
  never back to the sender;
- refused by policy or consensus: the txid goes to the recent rejects (not fetched again) and
  the peer stays; over its validation budget: disconnected (not banned: no misbehaviour score);
- a new tip forgets the recent rejects (Core hashRecentRejectsChainTip);
- the recent rejects never hold more than MAX_RECENT_REJECTS txids.
"""

from __future__ import annotations

import asyncio

from tinynode.chain.events import TipChanged
from tinynode.consensus.errors import PolicyError, RejectReason, ValidationError
from tinynode.net import sync as sync_mod
from tinynode.net.peer import NetConfig
from tinynode.net.sync import SyncManager
from tinynode.params import REGTEST
from tinynode.validation import TxAccepted, TxOrigin, TxResult

from tests.unit.test_sync_peer_choice import NOW, FakePeer, FakeWriter


class FakeTx:
    def __init__(self, n: int) -> None:
        self.txid = n.to_bytes(32, "little")
        self.txid_hex = self.txid[::-1].hex()


class FakeService(FakeWriter):
    """The service surface SyncManager uses; `verdict(tx, origin)` decides each submit_tx."""

    def __init__(self, verdict) -> None:
        super().__init__(0, NOW)
        self.snapshot.height = 0
        self.verdict = verdict
        self.mempool = None
        self.tx_subscribers: list = []
        self.gone: list[int] = []

    def subscribe_async(self, cb) -> None:
        pass

    def unsubscribe_async(self, cb) -> None:
        pass

    def subscribe(self, cb) -> None:
        self.tx_subscribers.append(cb)

    def unsubscribe(self, cb) -> None:
        self.tx_subscribers.remove(cb)

    def peer_gone(self, peer_id: int) -> None:
        self.gone.append(peer_id)

    async def submit_tx(self, tx, origin: TxOrigin) -> TxResult:
        res = self.verdict(tx, origin)
        for e in res.accepted:
            for cb in self.tx_subscribers:
                await cb(TxAccepted(e, origin))
        return res


class Entry:
    def __init__(self, txid: bytes) -> None:
        self.txid = txid


async def _manager(service) -> SyncManager:
    sm = SyncManager(REGTEST, NetConfig(), service, now=lambda: NOW)
    await sm.start()
    return sm


async def _peers(sm: SyncManager, *ids: int) -> list[FakePeer]:
    peers = [FakePeer(i, relay=True) for i in ids]
    for p in peers:
        p.addr_str = f"127.0.0.1:{1000 + p.id}"
        p.last_tx_time = 0.0
        sm._state(p)
    return peers


async def test_accepted_tx_is_relayed_to_others_but_not_back():
    svc = FakeService(lambda tx, o: TxResult(tx.txid, accepted=(Entry(tx.txid),)))
    sm = await _manager(svc)
    try:
        a, b, c = await _peers(sm, 1, 2, 3)
        tx = FakeTx(7)
        res = await sm.accept_tx(tx, source=a)
        assert res.ok and a.last_tx_time > 0
        assert tx.txid not in sm._peers[1].tx_to_announce
        assert sm._peers[2].tx_to_announce == [tx.txid] == sm._peers[3].tx_to_announce
    finally:
        await sm.stop()


async def test_refused_txs_are_remembered_and_the_peer_stays():
    errors = {1: PolicyError("min relay fee not met"), 2: ValidationError(RejectReason.BAD_TXNS_VOUT_NEGATIVE)}
    svc = FakeService(lambda tx, o: TxResult(tx.txid, error=errors[int.from_bytes(tx.txid, "little")],
                                             consensus_invalid=isinstance(errors[int.from_bytes(tx.txid, "little")],
                                                                          ValidationError)))
    sm = await _manager(svc)
    try:
        (p,) = await _peers(sm, 1)
        for n in (1, 2):
            await sm.accept_tx(FakeTx(n), source=p)
        assert FakeTx(1).txid in sm._recent_rejects and FakeTx(2).txid in sm._recent_rejects
        assert not p.disconnected and p.last_tx_time == 0.0
        # a new tip forgets them: either may be valid now
        await sm._on_chain_event(TipChanged(svc.chainstate.best_header, svc.chainstate.best_header, 0))
        assert len(sm._recent_rejects) == 0
    finally:
        await sm.stop()


async def test_peer_over_its_validation_budget_is_disconnected_not_punished():
    svc = FakeService(lambda tx, o: TxResult(tx.txid, error=ValidationError(RejectReason.BAD_TXNS_VOUT_NEGATIVE),
                                             consensus_invalid=True, seconds=0.3, over_budget=True))
    sm = await _manager(svc)
    try:
        (p,) = await _peers(sm, 1)
        p.banscore = 0
        await sm.accept_tx(FakeTx(1), source=p)
        assert p.disconnected == "invalid transactions over the validation budget"
        assert p.banscore == 0
        sm.peer_disconnected(p)
        assert svc.gone == [1]
    finally:
        await sm.stop()


async def test_recent_rejects_stay_bounded(monkeypatch):
    monkeypatch.setattr(sync_mod, "MAX_RECENT_REJECTS", 50)
    svc = FakeService(lambda tx, o: TxResult(tx.txid, error=PolicyError("dust")))
    sm = await _manager(svc)
    try:
        (p,) = await _peers(sm, 1)
        await asyncio.gather(*(sm.accept_tx(FakeTx(n), source=p) for n in range(500)))
        assert len(sm._recent_rejects) == 50
        assert FakeTx(499).txid in sm._recent_rejects and FakeTx(0).txid not in sm._recent_rejects
    finally:
        await sm.stop()


async def test_orphans_refused_after_their_parent_came_are_remembered():
    """Core ProcessOrphanTx → MempoolRejectedTx: an orphan refused once its parent arrived goes
    into the recent rejects, so a child of it is 'not keeping orphan with rejected parents'."""
    bad = FakeTx(9)
    svc = FakeService(lambda tx, o: TxResult(tx.txid,
                                             orphans_rejected=((bad, ValidationError(RejectReason.BAD_TXNS_IN_BELOWOUT)),)))
    sm = await _manager(svc)
    try:
        (p,) = await _peers(sm, 1)
        await sm.accept_tx(FakeTx(8), source=p)
        assert bad.txid in sm._recent_rejects
    finally:
        await sm.stop()


class FakeWitnessTx(FakeTx):
    def __init__(self, n: int) -> None:
        super().__init__(n)
        self.wtxid = (n + 1000).to_bytes(32, "little")


async def test_refused_witness_tx_is_remembered_by_wtxid_only():
    """Core MempoolRejectedTx: a refused tx with a witness goes to the recent rejects by wtxid
    (a legacy peer announcing its txid is still asked: another witness may make it valid),
    by txid too for bad-txns-nonstandard-inputs (the witness did not matter), not at all when
    Core's TX_WITNESS_STRIPPED (`witness_stripped`: only the witness was missing)."""
    from tinynode.mempool.pool import ScriptCheckError
    stripped = ScriptCheckError("mempool-script-verify-flag-failed (Witness program was passed an "
                                "empty witness)", "input 0", consensus=True, witness_stripped=True)
    errors = {1: PolicyError("tx-size"), 2: PolicyError("bad-txns-nonstandard-inputs", "input 0 script unknown"),
              3: stripped}
    svc = FakeService(lambda tx, o: TxResult(tx.txid, error=errors[int.from_bytes(tx.txid, "little")]))
    sm = await _manager(svc)
    try:
        (p,) = await _peers(sm, 1)
        big, nonstd = FakeWitnessTx(1), FakeWitnessTx(2)
        for tx in (big, nonstd):
            await sm.accept_tx(tx, source=p)
        assert big.wtxid in sm._recent_rejects and big.txid not in sm._recent_rejects
        assert nonstd.wtxid in sm._recent_rejects and nonstd.txid in sm._recent_rejects
        bare = FakeTx(3)                                   # no witness: stripped of it
        await sm.accept_tx(bare, source=p)
        assert bare.txid not in sm._recent_rejects
        assert len(sm._recent_rejects) == 3
    finally:
        await sm.stop()
