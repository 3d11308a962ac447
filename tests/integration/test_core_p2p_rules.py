"""Bitcoin Core v31's P2P rules that its functional tests rely on, over real sockets on
127.0.0.1: unrequested blocks (AcceptBlock's fHasMoreOrSameWork, MIN_BLOCKS_TO_KEEP, a missing
parent, -minimumchainwork), the anti-DoS header threshold, getheaders (BlockRequestAllowed, the
locator of m_best_header), our user agent (FormatSubVersion, -uacomment) and the log lines Core's
tests read with assert_debug_log (p2p_unrequested_blocks.py, p2p_invalid_block.py, ...)."""

from __future__ import annotations

import calendar
import logging
import re
import time
from dataclasses import replace

import pytest

from tests.framework.blockbuilder import BlockBuilder
from tests.framework.netnodes import RawConn, start_nodes, stop_nodes, sync_config
from tests.framework.nodes import start_node
from tests.framework.wait import wait_until
from tinynode.net.peer import format_sub_version
from tinynode.params import REGTEST
from tinynode.primitives.hashes import ZERO_HASH
from tinynode.primitives.tx import COIN
from tinynode.wire import messages as m
from tinynode.wire.constants import InvType, NODE_NETWORK, NODE_WITNESS

pytestmark = pytest.mark.slow

MAGIC = REGTEST.magic


async def _node(params=REGTEST, **kw):
    [node] = await start_nodes(1, params, **kw)
    return node


async def _raw(node) -> RawConn:
    raw = await RawConn.connect("127.0.0.1", node.port, MAGIC)
    # Core's P2PInterface: NODE_NETWORK | NODE_WITNESS (a peer without NODE_WITNESS is never
    # asked for a segwit block)
    await raw.handshake(services=NODE_NETWORK | NODE_WITNESS)
    await raw.ping_roundtrip()
    return raw


async def _entry(node, h: bytes):
    return await node.writer.call(node.writer.chainstate.get_entry, h)


async def _settle(node) -> None:
    """Core's sync_with_ping and then some: every received block went through the writer."""
    await wait_until(lambda: not node.sync._received and not node.sync._submitting)
    await node.writer.call(lambda: None)


async def _send_block(raw: RawConn, block, node) -> None:
    await raw.send(m.BlockMsg(block))
    await raw.ping_roundtrip()
    await _settle(node)


async def test_unrequested_blocks_follow_core_accept_block():
    """p2p_unrequested_blocks.py steps 1-7: a less-work block only gives its header, a same-work
    block is stored and checked but does not become the tip (first seen wins), a more-work one
    is stored, an inv of a block whose ancestor lacks data makes the node fetch that ancestor, and
    a block whose parent is unknown costs the sender the connection."""
    node = await _node()
    raw = None
    try:
        b = BlockBuilder(REGTEST, spacing=1)
        raw = await _raw(node)
        a1 = b.next_block("a1")
        a2 = b.next_block("a2")
        await _send_block(raw, a1, node)
        await _send_block(raw, a2, node)
        assert node.tip == a2.hash and node.height == 2
        b.set_tip("genesis")
        f1 = b.next_block("f1")
        f2 = b.next_block("f2")
        f3 = b.next_block("f3")
        await _send_block(raw, f1, node)            # less work than the tip: header only
        e = await _entry(node, f1.hash)
        assert e is not None and not e.have_data
        await _send_block(raw, f2, node)            # same work: stored, not the tip
        e = await _entry(node, f2.hash)
        assert e is not None and e.have_data and not e.failed
        assert node.tip == a2.hash
        await _send_block(raw, f3, node)            # more work: stored, waits for f1's data
        assert (await _entry(node, f3.hash)).have_data and node.tip == a2.hash
        # the node may have asked this peer for f1 meanwhile (Core's test reconnects here too)
        await raw.close()
        raw = await _raw(node)
        await _send_block(raw, f1, node)            # unrequested and less work: ignored
        assert not (await _entry(node, f1.hash)).have_data
        raw.received.clear()
        await raw.send(m.Inv((m.InvVect(InvType.BLOCK, f3.hash),)))
        req = await raw.expect("getdata")
        assert [iv.hash for iv in req.items] == [f1.hash]
        await _send_block(raw, f1, node)            # requested now: the node reorgs to f3
        await wait_until(lambda: node.tip == f3.hash)
        assert node.height == 3
        # a block whose parent the node never heard of: Core's BLOCK_MISSING_PREV, disconnected
        x1 = b.next_block("x1")
        x2 = b.next_block("x2")
        await raw.send(m.BlockMsg(x2))
        assert await raw.wait_closed(5)
        assert await _entry(node, x2.hash) is None and await _entry(node, x1.hash) is None
    finally:
        if raw is not None:
            await raw.close()
        await stop_nodes([node])


async def test_unrequested_block_too_far_ahead_is_not_processed():
    """p2p_unrequested_blocks.py step 4c: more than MIN_BLOCKS_TO_KEEP (288) above the tip, an
    unrequested block is not processed although its header connects."""
    node = await _node(config=sync_config(blocks_per_peer=1, blocks_total=1, block_stall_timeout=30.0))
    raw = None
    try:
        b = BlockBuilder(REGTEST, spacing=1)
        blocks = [b.next_block(f"b{i}") for i in range(1, 291)]
        raw = await _raw(node)
        await raw.send(m.Headers(tuple(x.header for x in blocks)))
        await raw.ping_roundtrip()
        assert (await _entry(node, blocks[-1].hash)) is not None
        await _send_block(raw, blocks[-1], node)    # height 290 > 0 + 288
        assert not (await _entry(node, blocks[-1].hash)).have_data
        await _send_block(raw, blocks[287], node)   # height 288: processed (stored, parent missing)
        assert (await _entry(node, blocks[287].hash)).have_data
        assert node.height == 0
    finally:
        if raw is not None:
            await raw.close()
        await stop_nodes([node])


async def test_minimum_chain_work_anti_dos_lines(caplog):
    """p2p_unrequested_blocks.py step 2 with `-minimumchainwork=0x10`: a block whose chain has
    less work is not even indexed, with Core's AcceptBlockHeader line; a short low-work headers
    chain is ignored ("Ignoring low-work chain"); getheaders gets an empty answer while our tip
    is below the minimum work."""
    caplog.set_level(logging.DEBUG, logger="tinynode")
    node = await _node(replace(REGTEST, minimum_chain_work=0x10))
    raw = None
    try:
        b = BlockBuilder(REGTEST, spacing=1)
        a1 = b.next_block("a1")
        raw = await _raw(node)
        await _send_block(raw, a1, node)
        assert await _entry(node, a1.hash) is None and node.height == 0
        assert (f"AcceptBlockHeader: not adding new block header {a1.hash_hex}, missing anti-dos "
                "proof-of-work validation") in caplog.text
        await raw.send(m.Headers((a1.header,)))
        await raw.ping_roundtrip()
        assert await _entry(node, a1.hash) is None
        assert re.search(r"Ignoring low-work chain \(height=1\) from peer=\d+", caplog.text)
        raw.received.clear()
        await raw.send(m.GetHeaders((REGTEST.genesis_hash,), ZERO_HASH))
        ans = await raw.expect("headers")
        assert ans.headers == ()
        assert "because active chain has too little work; sending empty response" in caplog.text
        # a chain with enough work (8 blocks: 2 + 8 x 2 = 18 >= 16) is taken
        more = [b.next_block(f"a{i}") for i in range(2, 9)]
        await raw.send(m.Headers(tuple(x.header for x in [a1, *more])))
        await raw.ping_roundtrip()
        assert await _entry(node, more[-1].hash) is not None
    finally:
        if raw is not None:
            await raw.close()
        await stop_nodes([node])


async def test_getheaders_hashstop_and_inv_locator():
    """Core GETHEADERS with a null locator answers only for a block on the active chain or a
    fully validated one (BlockRequestAllowed), never for a header-only block; an inv of an
    unknown block is answered with getheaders from the locator of m_best_header itself."""
    node = await _node(config=sync_config(block_stall_timeout=30.0))
    raw = None
    try:
        b = BlockBuilder(REGTEST, spacing=1)
        a1 = b.next_block("a1")
        a2 = b.next_block("a2")
        raw = await _raw(node)
        await _send_block(raw, a1, node)
        await _send_block(raw, a2, node)
        b.set_tip("genesis")
        g1 = b.next_block("g1")
        await raw.send(m.Headers((g1.header,)))       # a header-only side block
        await raw.ping_roundtrip()
        assert not (await _entry(node, g1.hash)).have_data
        raw.received.clear()
        await raw.send(m.GetHeaders((), g1.hash))
        assert (await raw.expect("headers")).headers == ()
        await raw.send(m.GetHeaders((), a1.hash))
        assert [h.hash for h in (await raw.expect("headers")).headers] == [a1.hash]
        # best header ahead of the tip: h3, h4 on a2 (the node asks us for them; we never answer)
        b.set_tip("a2")
        h3 = b.next_block("h3")
        h4 = b.next_block("h4")
        await raw.send(m.Headers((h3.header, h4.header)))
        await raw.ping_roundtrip()
        assert node.height == 2
        raw.received.clear()
        await raw.send(m.Inv((m.InvVect(InvType.BLOCK, b"\x77" * 32),)))
        gh = await raw.expect("getheaders")
        assert gh.locator[0] == h4.hash and gh.hash_stop == ZERO_HASH
    finally:
        if raw is not None:
            await raw.close()
        await stop_nodes([node])


async def test_same_work_fork_announced_by_headers_is_downloaded_and_checked(caplog):
    """Core HeadersDirectFetchBlocks / FindNextBlocksToDownload fetch a chain with the same work
    as our tip: an invalid same-work block is downloaded, checked and marked invalid (Core's log
    lines), the tip stays."""
    caplog.set_level(logging.DEBUG, logger="tinynode")
    node = await _node(config=sync_config(block_stall_timeout=30.0))
    raw = None
    try:
        b = BlockBuilder(REGTEST, spacing=1)
        a1 = b.next_block("a1")
        raw = await _raw(node)
        await _send_block(raw, a1, node)
        b.set_tip("genesis")
        bad = b.next_block("bad", coinbase_script_sig=b"\x52\x00")   # BIP34: wrong height push
        raw.received.clear()
        await raw.send(m.Headers((bad.header,)))
        req = await raw.expect("getdata")
        assert [iv.hash for iv in req.items] == [bad.hash]
        await raw.send(m.BlockMsg(bad))
        await wait_until(lambda: "ProcessNewBlock: AcceptBlock FAILED (bad-cb-height, block height "
                                 "mismatch in coinbase)" in caplog.text)
        e = await _entry(node, bad.hash)
        assert e.failed and node.tip == a1.hash
        assert "AcceptBlock: bad-cb-height, block height mismatch in coinbase" in caplog.text
    finally:
        if raw is not None:
            await raw.close()
        await stop_nodes([node])


async def test_same_work_fork_is_fetched_directly_while_the_peers_best_chain_waits():
    """Core HeadersDirectFetchBlocks (feature_block's b24..b26): the peer's best chain waits on a
    block it never sends; a same-work fork of our tip it then announces is still asked for at
    once, from the headers message, not left behind the stalled download."""
    node = await _node(config=sync_config(block_stall_timeout=30.0))
    raw = None
    try:
        b = BlockBuilder(REGTEST, spacing=1)
        t0 = int(time.time()) - 100    # a recent tip (Core CanDirectFetch)
        a1, a2 = b.next_block("a1", time=t0), b.next_block("a2", time=t0 + 1)
        raw = await _raw(node)
        await _send_block(raw, a1, node)
        await _send_block(raw, a2, node)
        f3, f4 = b.next_block("f3", time=t0 + 2), b.next_block("f4", time=t0 + 3)
        raw.received.clear()
        await raw.send(m.Headers((f3.header, f4.header)))
        req = await raw.expect("getdata")
        assert [iv.hash for iv in req.items] == [f3.hash, f4.hash]    # never answered
        b.set_tip("a1")
        g2 = b.next_block("g2", time=t0 + 2)                          # the same work as a2
        await raw.send(m.Headers((g2.header,)))
        req = await raw.expect("getdata")
        assert [iv.hash for iv in req.items] == [g2.hash]
        assert node.tip == a2.hash
    finally:
        if raw is not None:
            await raw.close()
        await stop_nodes([node])


async def test_pong_comes_after_the_blocks_sent_before_the_ping():
    """Core processes a peer's messages in order: the pong to a ping sent after blocks is sent
    once those blocks were validated, so the tip is there when the pong arrives (Core's
    send_and_ping / sync_with_ping rely on it)."""
    node = await _node()
    raw = None
    try:
        b = BlockBuilder(REGTEST, spacing=1)
        blocks = [b.next_block(f"a{i}") for i in range(1, 31)]
        raw = await _raw(node)
        for blk in blocks:
            await raw.send(m.BlockMsg(blk))
        await raw.ping_roundtrip()
        assert node.tip == blocks[-1].hash          # no waiting: the pong was the barrier
    finally:
        if raw is not None:
            await raw.close()
        await stop_nodes([node])


async def test_invalid_block_and_tx_log_lines(caplog):
    """The substrings Core's tests wait for: ConnectBlock's "Block validation error: reason,
    detail", the header's "<hash>, bad-version(0x...)", a tx's "... was not accepted: reason",
    and "Misbehaving" with the message."""
    caplog.set_level(logging.DEBUG, logger="tinynode")
    node = await _node(mempool=True)
    raw = None
    try:
        b = BlockBuilder(REGTEST, spacing=1)
        blocks = [b.next_block(f"b{i}") for i in range(1, 102)]
        raw = await _raw(node)
        for blk in blocks:
            await raw.send(m.BlockMsg(blk))
        await raw.ping_roundtrip()
        await wait_until(lambda: node.height == 101)
        # a tx paying more than it spends
        u = b.coinbase_utxo("b1")
        tx = b.wallet.create_spend(u, [(b.wallet.script_pubkey, 60 * COIN)])
        await raw.send(m.TxMsg(tx))
        await raw.ping_roundtrip()
        await wait_until(lambda: f"{tx.txid_hex} (wtxid={tx.wtxid_hex}) from peer=" in caplog.text)
        assert re.search(r"was not accepted: bad-txns-in-belowout, value in \(\d+\) < value out", caplog.text) \
            or "was not accepted: bad-txns-in-belowout" in caplog.text
        # a version-1 block: rejected at the header, Core's ContextualCheckBlockHeader line
        old = b.next_block("old", version=1)
        await raw.send(m.BlockMsg(old))
        assert await raw.wait_closed(5)     # invalid header: the (loopback) peer is disconnected
        assert f"{old.hash_hex}, bad-version(0x00000001)" in caplog.text
        assert re.search(r"Misbehaving: peer=\d+: invalid header of unrequested block: bad-version",
                         caplog.text)
        await raw.close()
        raw = await _raw(node)
        b.set_tip("b101")
        b.blocks.pop("old")
        greedy = b.next_block("greedy", additional_coinbase_value=1)
        await raw.send(m.BlockMsg(greedy))
        await wait_until(lambda: "Block validation error: bad-cb-amount, coinbase pays too much "
                                 f"(actual={50 * COIN + 1} vs limit={50 * COIN})" in caplog.text)
        assert f"ConnectTip: ConnectBlock {greedy.hash_hex} failed, bad-cb-amount" in caplog.text
        assert node.height == 101
    finally:
        if raw is not None:
            await raw.close()
        await stop_nodes([node])


async def test_ban_log_line_has_the_date_and_banned_inbound_is_dropped(caplog):
    """The ban line names a full UTC date and time (a 24 h ban ends on another day), and an
    inbound connection from a banned address is dropped with Core's wording."""
    caplog.set_level(logging.DEBUG, logger="tinynode")
    node = await _node()
    try:
        before = time.time()
        node.connman.ban("127.0.0.1", reason="test")
        mt = re.search(r"banned 127\.0\.0\.1 until (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ): test", caplog.text)
        assert mt is not None
        until = calendar.timegm(time.strptime(mt.group(1), "%Y-%m-%dT%H:%M:%SZ"))
        assert abs(until - (before + node.connman.config.ban_time)) < 5
        # a default (24 h) ban names tomorrow's date
        node.connman.ban("10.1.2.3", duration=24 * 3600.0, reason="day")
        tomorrow = time.strftime("%Y-%m-%d", time.gmtime(before + 24 * 3600))
        assert re.search(rf"banned 10\.1\.2\.3 until {tomorrow}T\d\d:\d\d:\d\dZ: day", caplog.text)
        raw = await RawConn.connect("127.0.0.1", node.port, MAGIC)
        assert await raw.wait_closed(5)
        await raw.close()
        assert re.search(r"connection from 127\.0\.0\.1:\d+ dropped \(banned\)", caplog.text)
    finally:
        await stop_nodes([node])


async def test_user_agent_equals_subversion_with_uacomments():
    """Core FormatSubVersion: the version message's user agent is getnetworkinfo's subversion,
    with -uacomment's comments in parentheses."""
    tn = await start_node(uacomments=("a", "b c"))
    raw = None
    try:
        info = await tn.rpc.call("getnetworkinfo")
        assert info["subversion"] == format_sub_version(("a", "b c")) == "/tinynode:0.1.0(a; b c)/"
        host, port = tn.p2p_addr.rsplit(":", 1)
        raw = await RawConn.connect(host, int(port), MAGIC)
        ver = await raw.handshake()
        assert ver.user_agent == info["subversion"]
    finally:
        if raw is not None:
            await raw.close()
        await tn.stop()
