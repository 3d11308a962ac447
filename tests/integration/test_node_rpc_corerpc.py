"""The RPCs Bitcoin Core's functional framework and its MiniWallet need, on in-process regtest
nodes: setmocktime (the node's clock for templates, the future-time rule, mempool, P2P pings),
scantxoutset, submitheader, getnettotals and the per-message byte counts, ping,
syncwithvalidationinterfacequeue, generatetodescriptor, getrawtransaction verbosity 2.
Values and error codes/messages are Core v31's."""

import asyncio
import time

import pytest

from tests.framework.nodes import connect_nodes, running_nodes
from tests.framework.rawpeer import RawPeer
from tests.framework.wait import wait_until
from tinynode.params import REGTEST
from tinynode.primitives.block import BlockHeader
from tinynode.primitives.hashes import hex_to_hash
from tinynode.rpc.protocol import RPCError
from tinynode.script.descriptor import add_checksum

pytestmark = pytest.mark.slow

OP_TRUE_DESC = add_checksum("raw(51)")          # MiniWallet's RAW_OP_TRUE descriptor
G = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"


async def rpc_error(coro) -> tuple[int, str]:
    with pytest.raises(RPCError) as e:
        await coro
    return e.value.code, e.value.message


def mined_header(prev_hex: str, when: int, bits: int = 0x207FFFFF) -> BlockHeader:
    """A header on `prev` with proof of work for regtest (about two tries)."""
    for nonce in range(1_000):
        h = BlockHeader(0x20000000, hex_to_hash(prev_hex), bytes(32), when, bits, nonce)
        if h.check_pow(REGTEST.pow_limit):
            return h
    raise AssertionError("no nonce found")


async def test_setmocktime_is_the_time_of_templates_blocks_and_the_future_rule():
    async with running_nodes(1) as (a,):
        c = a.rpc
        assert await rpc_error(c.call("setmocktime", -1)) == (-8, "Mocktime must be in the range [0, 9223372036], not -1.")
        t = int(time.time()) + 5000
        assert await c.call("setmocktime", t) is None
        assert a.node.clock() == t
        [h] = await c.call("generatetodescriptor", 1, OP_TRUE_DESC)
        assert (await c.call("getblockheader", h))["time"] == t
        await c.call("setmocktime", t + 100)
        gbt = await c.call("getblocktemplate", {"rules": ["segwit"]})
        assert gbt["curtime"] == t + 100
        # Core's 2-hour rule against the mocked clock: t + 7200 is fine, one second more is not
        await c.call("setmocktime", t)
        late = mined_header(h, t + 7201)
        assert await rpc_error(c.call("submitheader", late.serialize().hex())) == (-25, "time-too-new")
        ok = mined_header(h, t + 7200)
        assert await c.call("submitheader", ok.serialize().hex()) is None
        tips = {tip["hash"]: tip for tip in await c.call("getchaintips")}
        assert tips[ok.hash_hex]["status"] == "headers-only" and tips[ok.hash_hex]["height"] == 2
        # back to the system clock
        await c.call("setmocktime", 0)
        assert abs(a.node.clock() - time.time()) < 5


async def test_setmocktime_sets_mempool_entry_time():
    async with running_nodes(1) as (a,):
        c = a.rpc
        addr = await c.call("getnewaddress")
        await c.call("generatetoaddress", 101, addr)
        t = int(time.time()) - 100_000
        await c.call("setmocktime", t)
        txid = await c.call("sendtoaddress", addr, 1)
        assert (await c.call("getmempoolentry", txid))["time"] == t


async def test_submitheader_errors_are_cores():
    async with running_nodes(1) as (a,):
        c = a.rpc
        assert await rpc_error(c.call("submitheader", "00")) == (-22, "Block header decode failed")
        assert await rpc_error(c.call("submitheader", "zz" * 80)) == (-22, "Block header decode failed")
        orphan = mined_header("11" * 32, int(time.time()))
        assert await rpc_error(c.call("submitheader", orphan.serialize().hex())) == (
            -25, f"Must submit previous header ({'11' * 32}) first")
        tip = await c.call("getbestblockhash")
        bad_bits = mined_header(tip, int(time.time()), bits=0x207FFFFE)
        assert await rpc_error(c.call("submitheader", bad_bits.serialize().hex())) == (-25, "bad-diffbits")


async def test_miniwallet_flow_generatetodescriptor_then_scantxoutset():
    async with running_nodes(1) as (a,):
        c = a.rpc
        hashes = await c.call("generatetodescriptor", 101, OP_TRUE_DESC)
        assert len(hashes) == 101
        res = await c.call("scantxoutset", "start", [OP_TRUE_DESC])
        info = await c.call("gettxoutsetinfo")
        assert res["success"] is True
        assert res["height"] == 101 and res["bestblock"] == hashes[-1]
        assert res["txouts"] == info["txouts"]                  # every coin of the set was looked at
        assert len(res["unspents"]) == 101 and float(res["total_amount"]) == 101 * 50
        assert set(res) == {"success", "txouts", "height", "bestblock", "unspents", "total_amount"}
        u = res["unspents"]
        assert [list(x) for x in u][0] == ["txid", "vout", "scriptPubKey", "desc", "amount", "coinbase",
                                           "height", "blockhash", "confirmations"]
        # Core's std::map<COutPoint, Coin> order: by the txid's internal bytes
        assert [x["txid"] for x in u] == sorted((x["txid"] for x in u), key=lambda h: hex_to_hash(h))
        by_height = {x["height"]: x for x in u}
        assert sorted(by_height) == list(range(1, 102))
        first = by_height[1]
        assert first == {"txid": first["txid"], "vout": 0, "scriptPubKey": "51", "desc": OP_TRUE_DESC,
                         "amount": first["amount"], "coinbase": True, "height": 1,
                         "blockhash": hashes[0], "confirmations": 101}
        assert float(first["amount"]) == 50
        # a descriptor with keys, and the other actions
        none = await c.call("scantxoutset", "start", [{"desc": f"combo({G})"}])
        assert none["unspents"] == [] and float(none["total_amount"]) == 0
        assert await c.call("scantxoutset", "status") is None
        assert await c.call("scantxoutset", "abort") is False
        assert await rpc_error(c.call("scantxoutset", "go")) == (-8, "Invalid action 'go'")
        assert await rpc_error(c.call("scantxoutset", "start")) == (
            -1, "scanobjects argument is required for the start action")
        assert await rpc_error(c.call("scantxoutset", "start", ["raw(51)#00000000"])) == (
            -5, "Provided checksum '00000000' does not match computed checksum '8lvh9jxk'")
        assert await rpc_error(c.call("scantxoutset", "start", [{"range": 1}])) == (
            -8, "Descriptor needs to be provided in scan object")


async def test_generatetodescriptor_and_generateblock_outputs():
    async with running_nodes(1) as (a,):
        c = a.rpc
        [h] = await c.call("generatetodescriptor", 1, f"combo({G})")     # combo: its P2WPKH script
        cb = (await c.call("getblock", h, 2))["tx"][0]
        assert cb["vout"][0]["scriptPubKey"]["hex"] == "0014751e76e8199196d454941c45d1b3a323f1433bd6"
        [h] = await c.call("generatetodescriptor", 1, f"pkh({G})")
        cb = (await c.call("getblock", h, 2))["tx"][0]
        assert cb["vout"][0]["scriptPubKey"]["hex"] == "76a914751e76e8199196d454941c45d1b3a323f1433bd688ac"
        res = await c.call("generateblock", f"wpkh({G})", [])
        cb = (await c.call("getblock", res["hash"], 2))["tx"][0]
        assert cb["vout"][0]["scriptPubKey"]["hex"] == "0014751e76e8199196d454941c45d1b3a323f1433bd6"
        assert await rpc_error(c.call("generatetodescriptor", 1, "raw(51)#abc")) == (
            -5, "Expected 8 character checksum, not 3 characters")
        assert await rpc_error(c.call("generateblock", "nonsense", [])) == (
            -5, "Error: Invalid address or descriptor")


async def test_getrawtransaction_verbosity_2_has_fee_and_prevouts_for_confirmed_txs():
    async with running_nodes(1, txindex=True) as (a,):
        c = a.rpc
        addr = await c.call("getnewaddress")
        await c.call("generatetoaddress", 101, addr)
        txid = await c.call("sendtoaddress", addr, 3)
        pending = await c.call("getrawtransaction", txid, 2)
        assert "fee" not in pending and "prevout" not in pending["vin"][0]   # Core: mempool = verbosity 1
        fee_pool = (await c.call("getmempoolentry", txid))["fees"]["base"]
        [bh] = await c.call("generatetoaddress", 1, addr)
        j = await c.call("getrawtransaction", txid, 2)
        assert j["fee"] == fee_pool
        block = await c.call("getblock", bh, 3)
        in_block = next(t for t in block["tx"] if t["txid"] == txid)
        assert [v["prevout"] for v in j["vin"]] == [v["prevout"] for v in in_block["vin"]]
        p = j["vin"][0]["prevout"]
        assert list(p) == ["generated", "height", "value", "scriptPubKey"]
        assert p["generated"] is True and 1 <= p["height"] <= 101 and float(p["value"]) == 50
        assert list(j["vin"][0])[-2:] == ["prevout", "sequence"]
        assert list(j)[list(j).index("vout") + 1:list(j).index("vout") + 3] == ["fee", "hex"]
        # verbosity 1 (or true, or Core's named alias "verbose") has neither
        v1 = await c.call("getrawtransaction", named={"txid": txid, "verbose": True})
        assert "fee" not in v1 and "prevout" not in v1["vin"][0] and v1["blockhash"] == bh
        assert await c.call("getrawtransaction", txid, 0) == v1["hex"]
        # with the blockhash: in_active_chain first; the coinbase has no fee
        withbh = await c.call("getrawtransaction", txid, 2, bh)
        assert list(withbh)[0] == "in_active_chain" and withbh["in_active_chain"] is True
        assert withbh["fee"] == fee_pool
        cb = await c.call("getrawtransaction", block["tx"][0]["txid"], 2, bh)
        assert "fee" not in cb


async def test_getnettotals_and_per_message_bytes():
    async with running_nodes(2) as (a, b):
        await connect_nodes(a, b)
        [row] = await b.rpc.call("getpeerinfo")          # b dialled a
        assert sum(row["bytessent_per_msg"].values()) == row["bytessent"]
        assert sum(row["bytesrecv_per_msg"].values()) == row["bytesrecv"]
        # version: 24-byte header + payload; verack: header only
        assert row["bytessent_per_msg"]["verack"] == 24 and row["bytesrecv_per_msg"]["verack"] == 24
        assert row["bytessent_per_msg"]["version"] > 24 + 80
        assert list(row["bytessent_per_msg"]) == sorted(row["bytessent_per_msg"])
        assert row["addrbind"].startswith("127.0.0.1:")
        [arow] = await a.rpc.call("getpeerinfo")
        assert arow["addr"] == row["addrbind"]           # b's end of the socket is what a sees
        assert arow["addrbind"] == f"127.0.0.1:{a.node.p2p_port}"
        assert row["addrlocal"] == row["addrbind"]       # a's version told b how a sees b
        totals = await b.rpc.call("getnettotals")
        assert set(totals) == {"totalbytesrecv", "totalbytessent", "timemillis", "uploadtarget"}
        assert totals["totalbytessent"] >= row["bytessent"] > 0
        assert totals["totalbytesrecv"] >= row["bytesrecv"] > 0
        assert abs(totals["timemillis"] - time.time() * 1000) < 60_000
        assert totals["uploadtarget"] == {"timeframe": 86400, "target": 0, "target_reached": False,
                                          "serve_historical_blocks": True, "bytes_left_in_cycle": 0,
                                          "time_left_in_cycle": 0}
        before = totals["totalbytessent"]
        await b.rpc.call("disconnectnode", "", row["id"])
        await wait_until(lambda: row["id"] not in [p.id for p in b.node.connman.all_peers()])
        assert b.node.connman.closed_bytes_sent >= row["bytessent"]
        after = await b.rpc.call("getnettotals")          # closed connections still count
        assert after["totalbytessent"] >= before


async def test_syncwithvalidationinterfacequeue_waits_for_slow_subscribers():
    async with running_nodes(1) as (a,):
        seen: list[str] = []
        entered = asyncio.Event()
        release = asyncio.Event()

        async def slow(ev):
            if type(ev).__name__ == "BlockConnected":
                entered.set()
                await asyncio.wait_for(release.wait(), 10)
                seen.append(type(ev).__name__)

        a.node.service.subscribe_async(slow)
        [h] = await a.rpc.call("generatetodescriptor", 1, OP_TRUE_DESC)
        waiter = asyncio.ensure_future(a.rpc.call("syncwithvalidationinterfacequeue"))
        await wait_until(entered.is_set)              # the subscriber holds the event queue
        assert not waiter.done() and seen == []
        release.set()
        assert await asyncio.wait_for(waiter, 10) is None
        assert seen == ["BlockConnected"] and h
        a.node.service.unsubscribe_async(slow)


async def test_pings_follow_the_mock_clock():
    """Core p2p_ping.py's shape: with the clock frozen, pingwait stays put; moving it moves
    pingwait, and past the pong timeout the silent peer is dropped."""
    async with running_nodes(1) as (a,):
        c = a.rpc
        t = int(time.time())
        await c.call("setmocktime", t)
        async with await RawPeer.connect("127.0.0.1", a.node.p2p_port, REGTEST.magic, auto_pong=False) as r:
            theirs = await r.handshake()
            assert theirs.timestamp == t                       # the version message's time
            ping = await r.wait_for("ping")
            assert ping.nonce != 0
            [row] = await c.call("getpeerinfo")
            assert row["conntime"] == t and row["pingwait"] == 0 and row["pingtime"] is None
            await c.call("setmocktime", t + 1)
            [row] = await c.call("getpeerinfo")
            assert row["pingwait"] == 1
            # the fast test config's pong timeout is 2 s: past it, on the mocked clock
            await c.call("setmocktime", t + 10)
            assert await r.wait_closed(5)
        assert a.node.connman.all_peers() == []


async def test_ping_rpc_and_pong_round_trip_on_the_mock_clock():
    async with running_nodes(1) as (a,):
        c = a.rpc
        t = int(time.time())
        await c.call("setmocktime", t)
        async with await RawPeer.connect("127.0.0.1", a.node.p2p_port, REGTEST.magic, auto_pong=False) as r:
            await r.handshake()
            first = await r.wait_for("ping")
            await c.call("setmocktime", t + 1)
            from tinynode.wire.messages import Pong
            await r.send(Pong(first.nonce))
            await wait_until(lambda: a.node.connman.connected_peers()[0].ping_nonce == 0)
            [row] = await c.call("getpeerinfo")
            assert row["pingtime"] == 1 and row["minping"] == 1 and row["pingwait"] is None
            assert await c.call("ping") is None                # Core SendPings: one more now
            second = await r.wait_for("ping")
            assert second.nonce != first.nonce


async def test_pong_problems_are_logged_with_cores_words(caplog):
    """Core p2p_ping.py reads these lines: a short payload and nonce 0 cancel the ping, an
    unsolicited pong and a wrong nonce do not; none of them costs the peer anything."""
    import logging
    from tinynode.wire.messages import Pong
    caplog.set_level(logging.DEBUG, logger="tinynode.net.peer")
    async with running_nodes(1) as (a,):
        async with await RawPeer.connect("127.0.0.1", a.node.p2p_port, REGTEST.magic, auto_pong=False) as r:
            await r.handshake()
            first = await r.wait_for("ping")
            [peer] = a.node.connman.connected_peers()
            pid = peer.id
            assert pid == 0                                    # Core's first NodeId
            await r.send_command("pong", b"")
            await wait_until(lambda: peer.ping_nonce == 0)
            assert f"pong peer={pid}: Short payload, {first.nonce:x} expected, 0 received, 0 bytes" in caplog.text
            await r.send(Pong(5))
            await wait_until(lambda: "Unsolicited pong without ping" in caplog.text)
            assert f"pong peer={pid}: Unsolicited pong without ping, 0 expected, 5 received, 8 bytes" in caplog.text
            peer.request_ping()
            second = await r.wait_for("ping")
            await r.send(Pong(second.nonce - 1))
            await wait_until(lambda: "Nonce mismatch" in caplog.text)
            assert peer.ping_nonce == second.nonce             # a wrong nonce does not cancel
            await r.send(Pong(0))
            await wait_until(lambda: peer.ping_nonce == 0)
            assert f"pong peer={pid}: Nonce zero, {second.nonce:x} expected, 0 received, 8 bytes" in caplog.text
            assert a.node.connman.connected_peers() == [peer] and not r.is_closed()


async def test_getorphantxs_and_orphans_with_rejected_parents(caplog):
    """Core v31 getorphantxs (verbosity 0/1/2, `from` = the sending peer's id); an orphan whose
    parent was refused is not kept, with Core's log line (p2p_invalid_tx.py reads both)."""
    import logging
    from tinynode.primitives.tx import OutPoint, Tx, TxIn, TxOut
    from tinynode.wire.messages import TxMsg
    caplog.set_level(logging.DEBUG, logger="tinynode.net.sync")
    from tinynode.primitives.hashes import hash160
    op_true = b"\xa9\x14" + hash160(b"\x51") + b"\x87"      # P2SH of OP_TRUE: standard
    async with running_nodes(1) as (a,):
        c = a.rpc
        async with await RawPeer.connect("127.0.0.1", a.node.p2p_port, REGTEST.magic) as r:
            await r.handshake()
            orphan = Tx(1, (TxIn(OutPoint(b"\x07" * 32, 333)),), (TxOut(11 * 10**8, op_true),))
            await r.send(TxMsg(orphan))
            await wait_until(lambda: orphan.txid in a.node.mempool.orphans)
            assert await c.call("getorphantxs") == [orphan.txid_hex]
            [row] = await c.call("getorphantxs", 2)
            pid = a.node.connman.connected_peers()[0].id
            assert row == {"txid": orphan.txid_hex, "wtxid": orphan.wtxid_hex, "bytes": len(orphan.raw),
                           "vsize": (orphan.weight + 3) // 4, "weight": orphan.weight, "from": [pid],
                           "hex": orphan.raw.hex()}
            assert "hex" not in (await c.call("getorphantxs", 1))[0]
            with pytest.raises(RPCError) as e:
                await c.call("getorphantxs", 3)
            assert e.value.code == -8 and e.value.message == "Invalid verbosity value 3"
            # a parent refused by policy (version 0 is non-standard), then a child of it
            bad_parent = Tx(0, (TxIn(OutPoint(b"\x08" * 32, 0)),), (TxOut(10**8, op_true),))
            await r.send(TxMsg(bad_parent))
            await r.sync_with_ping()
            child = Tx(1, (TxIn(OutPoint(bad_parent.txid, 0)),), (TxOut(10**8 - 1000, op_true),))
            await r.send(TxMsg(child))
            await wait_until(lambda: f"not keeping orphan with rejected parents {child.txid_hex}" in caplog.text)
            assert child.txid not in a.node.mempool.orphans
            assert await c.call("getorphantxs") == [orphan.txid_hex]


async def test_a_tip_from_the_future_stops_the_start(tmp_path):
    """Core LoadChainstate: restarted with a clock more than 2 h behind its tip, the node
    refuses to start with Core's sentence; exactly 2 h behind is fine."""
    from tests.framework.nodes import start_node
    from tinynode.node import NodeError
    t = await start_node(tmp_path / "n")
    addr = await t.rpc.call("getnewaddress")
    await t.rpc.call("generatetoaddress", 1, addr)
    tip_time = (await t.rpc.call("getblockheader", await t.rpc.call("getbestblockhash")))["time"]
    await t.stop(remove=False)
    with pytest.raises(NodeError, match="appears to be from the future"):
        await start_node(tmp_path / "n", mocktime=tip_time - 2 * 60 * 60 - 1)
    t = await start_node(tmp_path / "n", mocktime=tip_time - 2 * 60 * 60)
    await t.stop()
