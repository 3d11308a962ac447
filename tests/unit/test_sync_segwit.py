"""SyncManager's segwit tx path (BIP144 / BIP339) over a fake service and fake peers, with
`advertise_witness` on: the wtxid -> txid map from TxAccepted, getdata answered by MSG_WTX
(by wtxid, with witness), MSG_WITNESS_TX (with witness) and MSG_TX (stripped), invs of MSG_WTX
to wtxidrelay peers and MSG_TX to the others, and requests by MSG_WTX / MSG_WITNESS_TX / MSG_TX.
"""

from __future__ import annotations

from tinynode.net.peer import NetConfig
from tinynode.net.sync import SyncManager
from tinynode.params import REGTEST
from tinynode.primitives.tx import OutPoint, Tx, TxIn, TxOut
from tinynode.validation import TxAccepted, TxOrigin, TxResult
from tinynode.wire import messages as m
from tinynode.wire.constants import InvType, NODE_NETWORK, NODE_WITNESS

from tests.framework.wait import wait_until
from tests.unit.test_sync_peer_choice import NOW, FakePeer
from tests.unit.test_sync_tx_path import FakeService

WTX = Tx(2, (TxIn(OutPoint(b"\x11" * 32, 0), b"", 0xFFFFFFFF, witness=(b"\x30" * 71, b"\x02" * 33)),),
         (TxOut(1000, b"\x00\x14" + bytes(20)),), 0)


class Entry:
    def __init__(self, tx: Tx) -> None:
        self.tx = tx
        self.txid = tx.txid


class FakePool:
    def __init__(self, *txs: Tx) -> None:
        self.txs = {t.txid: t for t in txs}
        self.orphans: set = set()

    def __contains__(self, txid) -> bool:
        return txid in self.txs

    def get_tx(self, txid):
        return self.txs.get(txid)

    def txids(self):
        return list(self.txs)


async def _setup(*peer_kinds: tuple[bool, bool]):
    """A started SyncManager with WTX in its pool (accepted through a TxAccepted event) and one
    fake peer per (has NODE_WITNESS, wtxid_relay)."""
    svc = FakeService(lambda tx, o: TxResult(tx.txid, accepted=(Entry(tx),)))
    svc.mempool = FakePool(WTX)
    sm = SyncManager(REGTEST, NetConfig(advertise_witness=True), svc, now=lambda: NOW)
    await sm.start()
    peers = []
    for i, (witness, wtxid_relay) in enumerate(peer_kinds, start=1):
        p = FakePeer(i, relay=True)
        p.services = NODE_NETWORK | (NODE_WITNESS if witness else 0)
        p.wtxid_relay = wtxid_relay
        p.addr_str = f"127.0.0.1:{1000 + i}"
        p.last_tx_time = 0.0
        p.permissions = 0
        p.relay_ours = True

        async def send_async(msg, max_pending=None, p=p):
            p.sent.append(msg)
            return True
        p.send_async = send_async
        p.has_permission = lambda flag: False
        sm._state(p)
        peers.append(p)
    for cb in svc.tx_subscribers:
        await cb(TxAccepted(Entry(WTX), TxOrigin.rpc()))
    return sm, peers


def test_fixture_tx_has_a_witness():
    assert WTX.has_witness() and WTX.wtxid != WTX.txid


async def test_getdata_by_type():
    sm, (p,) = await _setup((True, True))
    try:
        assert sm._txid_of_wtxid[WTX.wtxid] == WTX.txid
        await sm.on_getdata(p, m.GetData((m.InvVect(InvType.WTX, WTX.wtxid),
                                          m.InvVect(InvType.WITNESS_TX, WTX.txid),
                                          m.InvVect(InvType.TX, WTX.txid),
                                          m.InvVect(InvType.WTX, WTX.txid))))   # a txid is no wtxid
        txs = [x for x in p.sent if x.COMMAND == "tx"]
        assert [x.serialize() for x in txs] == [WTX.raw, WTX.raw, WTX.serialize_without_witness()]
        (nf,) = [x for x in p.sent if x.COMMAND == "notfound"]
        assert nf.items == (m.InvVect(InvType.WTX, WTX.txid),)
    finally:
        await sm.stop()


async def test_relay_by_wtxid_to_wtxidrelay_peers_only():
    sm, (w, legacy) = await _setup((True, True), (False, False))
    try:
        await wait_until(lambda: any(x.COMMAND == "inv" for x in w.sent)
                         and any(x.COMMAND == "inv" for x in legacy.sent), timeout=5)
        (inv_w,) = [x for x in w.sent if x.COMMAND == "inv"]
        (inv_l,) = [x for x in legacy.sent if x.COMMAND == "inv"]
        assert inv_w.items == (m.InvVect(InvType.WTX, WTX.wtxid),)
        assert inv_l.items == (m.InvVect(InvType.TX, WTX.txid),)
    finally:
        await sm.stop()


async def test_requests_use_wtx_or_the_witness_flag():
    sm, (w, wit, legacy) = await _setup((True, True), (True, False), (False, False))
    try:
        a, b = b"\xaa" * 32, b"\xbb" * 32
        # a wtxidrelay peer's MSG_TX invs are ignored, its MSG_WTX ones requested by wtxid
        await sm.on_inv(w, m.Inv((m.InvVect(InvType.TX, a), m.InvVect(InvType.WTX, b))))
        (gd,) = [x for x in w.sent if x.COMMAND == "getdata"]
        assert gd.items == (m.InvVect(InvType.WTX, b),)
        # a NODE_WITNESS peer without wtxidrelay: MSG_WITNESS_TX; a legacy one: MSG_TX
        await sm.on_inv(wit, m.Inv((m.InvVect(InvType.TX, a),)))
        assert [x for x in wit.sent if x.COMMAND == "getdata"][0].items == (m.InvVect(InvType.WITNESS_TX, a),)
        c = b"\xcc" * 32
        await sm.on_inv(legacy, m.Inv((m.InvVect(InvType.TX, c), m.InvVect(InvType.WTX, c))))
        assert [x for x in legacy.sent if x.COMMAND == "getdata"][0].items == (m.InvVect(InvType.TX, c),)
        # a tx we hold, announced by wtxid, is not requested
        await sm.on_inv(w, m.Inv((m.InvVect(InvType.WTX, WTX.wtxid),)))
        assert len([x for x in w.sent if x.COMMAND == "getdata"]) == 1
    finally:
        await sm.stop()
