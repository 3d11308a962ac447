"""Segwit on the wire (BIP144 serialization, BIP339 wtxidrelay) with `advertise_witness` on:

- two tinynode nodes exchange a block whose coinbase carries a witness (the BIP141 reserved
  value, with its commitment): the downloader asks with MSG_WITNESS_BLOCK and stores the witness;
- a legacy peer (no NODE_WITNESS) asking with MSG_BLOCK gets the witness-stripped block (Core
  ProcessGetBlockData), the same block with MSG_WITNESS_BLOCK;
- the handshake: version 70016 with NODE_WITNESS, `wtxidrelay` before `verack` to 70016 peers
  only, wtxid relay on only when both sent it, a `wtxidrelay` after `verack` disconnects;
- with the switch off (the default) nothing changes: 70015, NODE_NETWORK, no `wtxidrelay`.
"""

from __future__ import annotations

import random
import re
import time
from dataclasses import replace

import pytest

from tests.framework.netnodes import NetNode, RawConn, chainstate_available, sync_blocks, sync_config
from tests.framework.wait import wait_until
from tinynode.mining.template import build_template
from tinynode.params import REGTEST
from tinynode.primitives.block import Block, bits_to_target, merkle_root, witness_merkle_root
from tinynode.primitives.hashes import sha256d
from tinynode.primitives.tx import TxOut
from tinynode.wire import messages as m
from tinynode.wire.constants import InvType, NODE_NETWORK, NODE_WITNESS

pytestmark = pytest.mark.skipif(not chainstate_available(), reason="needs the real chainstate")

OP_TRUE = b"\x51"
RESERVED = bytes(32)


def _witness_block(node: NetNode) -> Block:
    """A block on `node`'s tip whose coinbase has the witness reserved value and the BIP141
    commitment output (valid with and without witness validation)."""
    cs = node.writer.chainstate
    tmpl = build_template(cs, None, OP_TRUE, int(time.time()), random.getrandbits(32), node.params)
    cb = tmpl.block.txs[0]
    cb = replace(cb, vin=(replace(cb.vin[0], witness=(RESERVED,)),))
    txs = (cb,) + tmpl.block.txs[1:]
    wroot, _ = witness_merkle_root(txs)
    commitment = b"\x6a\x24\xaa\x21\xa9\xed" + sha256d(wroot + RESERVED)
    cb = replace(cb, vout=tuple(o for o in cb.vout if not o.script_pubkey.startswith(b"\x6a\x24\xaa\x21\xa9\xed"))
                 + (TxOut(0, commitment),))
    txs = (cb,) + txs[1:]
    root, _ = merkle_root([t.txid for t in txs])
    header = replace(tmpl.block.header, merkle_root=root)
    target = bits_to_target(header.bits)[0]
    for nonce in range(1 << 20):
        block = Block(replace(header, nonce=nonce), txs)
        if int.from_bytes(block.hash, "little") <= target:
            return block
    raise AssertionError("no nonce found")


async def _raw_handshake(node: NetNode, *, version: int, services: int = NODE_NETWORK,
                         wtxidrelay: bool = False) -> tuple[RawConn, m.Version, list[str]]:
    """Connect a raw peer; returns it, the node's version and the commands the node sent before
    its verack."""
    raw = await RawConn.connect("127.0.0.1", node.port, node.params.magic)
    await raw.send(m.Version.create(version=version, services=services, nonce=random.getrandbits(64),
                                    start_height=0, timestamp=int(time.time()),
                                    addr_from=m.NetAddr.from_host("127.0.0.1", 0, services)))
    if wtxidrelay:
        await raw.send(m.WtxidRelay())
    before: list[str] = []
    ver = None
    while True:
        msg = await raw.recv()
        if msg.COMMAND == "verack":
            break
        if msg.COMMAND == "version":
            ver = msg
        else:
            before.append(msg.COMMAND)
    await raw.send(m.Verack())
    await raw.ping_roundtrip()
    return raw, ver, before


async def test_witness_block_between_witness_nodes_and_stripped_for_a_legacy_peer(tmp_path):
    cfg = sync_config(advertise_witness=True)
    a = await NetNode(REGTEST, name="a", config=cfg).start()
    b = await NetNode(REGTEST, name="b", config=cfg).start()
    try:
        block = await a.writer.call(_witness_block, a)
        assert block.txs[0].has_witness() and block.size > block.base_size
        res = await a.writer.submit_block(block)
        assert res.ok, res
        await b.connect(a)
        await sync_blocks([a, b])
        stored = await b.writer.call(lambda: b.writer.chainstate.get_block(block.hash))
        assert stored.txs[0].vin[0].witness == (RESERVED,)        # fetched with MSG_WITNESS_BLOCK
        assert stored.serialize() == block.serialize()
        peer_b = a.connman.connected_peers()[0]
        assert peer_b.services & NODE_WITNESS and peer_b.version == 70016 and peer_b.wtxid_relay

        # A legacy peer: MSG_BLOCK gets the stripped block, MSG_WITNESS_BLOCK the full one.
        raw, ver, before = await _raw_handshake(a, version=70015)
        try:
            assert ver.services == NODE_NETWORK | NODE_WITNESS and ver.version == 70016
            assert "wtxidrelay" not in before             # the peer is below 70016
            await raw.send(m.GetData((m.InvVect(InvType.BLOCK, block.hash),)))
            got = await raw.expect("block")
            assert got.block.hash == block.hash and not got.block.txs[0].has_witness()
            assert got.block.size == block.base_size
            await raw.send(m.GetData((m.InvVect(InvType.WITNESS_BLOCK, block.hash),)))
            got = await raw.expect("block")
            assert got.block.serialize() == block.serialize()
        finally:
            await raw.close()
    finally:
        await b.stop()
        await a.stop()


async def test_wtxidrelay_negotiation(tmp_path):
    a = await NetNode(REGTEST, name="a", config=sync_config(advertise_witness=True),
                      ).start()
    try:
        # both sides 70016 and both send wtxidrelay: wtxid relay on
        raw, ver, before = await _raw_handshake(a, version=70016, services=NODE_NETWORK | NODE_WITNESS,
                                                wtxidrelay=True)
        assert before == ["wtxidrelay", "sendaddrv2"] and ver.version == 70016
        await wait_until(lambda: len(a.connman.connected_peers()) == 1)
        (p,) = a.connman.connected_peers()
        assert p.wtxidrelay_sent and p.wtxid_relay
        # a second wtxidrelay after verack: disconnected (Core)
        await raw.send(m.WtxidRelay())
        assert await raw.wait_closed()
        await wait_until(lambda: not a.connman.connected_peers())

        # 70016 peer that does not send it: we did, but relay by txid
        raw, ver, before = await _raw_handshake(a, version=70016)
        assert before == ["wtxidrelay", "sendaddrv2"]   # Core: then BIP155
        await wait_until(lambda: len(a.connman.connected_peers()) == 1)
        assert not a.connman.connected_peers()[0].wtxid_relay
        await raw.close()
        await wait_until(lambda: not a.connman.connected_peers())

        # 70015 peer sending wtxidrelay anyway: ignored (no penalty, no wtxid relay)
        raw, ver, before = await _raw_handshake(a, version=70015, wtxidrelay=True)
        assert before == []
        await wait_until(lambda: len(a.connman.connected_peers()) == 1)
        (p,) = a.connman.connected_peers()
        assert not p.wtxid_relay and p.banscore == 0
        await raw.close()
    finally:
        await a.stop()


async def test_switch_off_keeps_the_legacy_handshake(tmp_path):
    a = await NetNode(REGTEST, name="a", config=sync_config(advertise_witness=False)).start()
    try:
        raw, ver, before = await _raw_handshake(a, version=70016, wtxidrelay=True)
        assert ver.version == 70015 and ver.services == NODE_NETWORK and before == []
        await wait_until(lambda: len(a.connman.connected_peers()) == 1)
        assert not a.connman.connected_peers()[0].wtxid_relay
        await raw.close()
    finally:
        await a.stop()


async def test_mutated_witness_block_is_refused_before_validation(tmp_path, caplog):
    """Core ProcessMessage(BLOCK) + IsBlockMutated: a block whose parent is known and whose
    witness does not match its commitment (same hash as the genuine block) is refused by the net
    layer with Core's lines, costs the sender (disconnected), and is never indexed: the best
    header stays the tip, so the next getheaders locator starts at the tip (p2p_segwit's
    test_block_relay) and the genuine block is accepted afterwards."""
    import logging
    caplog.set_level(logging.DEBUG, logger="tinynode")
    cfg = sync_config(advertise_witness=True)
    a = await NetNode(REGTEST, name="a", config=cfg).start()
    raw = None
    try:
        block = await a.writer.call(_witness_block, a)
        cb = block.txs[0]
        bad_cb = replace(cb, vin=(replace(cb.vin[0], witness=(b"\x01" * 32,)),))
        mutated = Block(block.header, (bad_cb,) + block.txs[1:])
        assert mutated.hash == block.hash and mutated.serialize() != block.serialize()
        tip = a.writer.snapshot.tip_hash

        raw, _, _ = await _raw_handshake(a, version=70016, services=NODE_NETWORK | NODE_WITNESS)
        await raw.send(m.BlockMsg(mutated))
        assert await raw.wait_closed(5)
        assert "Block mutated: bad-witness-merkle-match, CheckWitnessMalleation : witness merkle " \
               "commitment mismatch" in caplog.text
        assert re.search(r"Received mutated block from peer=\d+", caplog.text)
        assert re.search(r"Misbehaving: peer=\d+: mutated block", caplog.text)
        entry = await a.writer.call(lambda: a.writer.chainstate.get_entry(block.hash))
        assert entry is None                                   # never reached AcceptBlock
        assert a.writer.snapshot.best_header_hash == tip
        await raw.close()

        raw, _, _ = await _raw_handshake(a, version=70016, services=NODE_NETWORK | NODE_WITNESS)
        await raw.send(m.BlockMsg(block))
        await raw.ping_roundtrip()
        await wait_until(lambda: a.writer.snapshot.tip_hash == block.hash)
    finally:
        if raw is not None:
            await raw.close()
        await a.stop()


async def test_segwit_blocks_are_not_fetched_from_a_peer_without_witness(tmp_path):
    """Core FindNextBlocks / HeadersDirectFetchBlocks (CanServeWitnesses): a block where segwit
    is active is never requested from a peer without NODE_WITNESS, even when it announced the
    header; a NODE_WITNESS peer announcing the same header is asked with MSG_WITNESS_BLOCK."""
    cfg = sync_config(advertise_witness=True)
    a = await NetNode(REGTEST, name="a", config=cfg).start()
    legacy = witness = None
    try:
        first = await a.writer.call(_witness_block, a)
        assert (await a.writer.submit_block(first)).ok      # a recent tip: direct fetch applies
        block = await a.writer.call(_witness_block, a)       # height 2, not given to the node

        legacy, _, _ = await _raw_handshake(a, version=70015, services=NODE_NETWORK)
        await legacy.send(m.Headers((block.header,)))
        await legacy.ping_roundtrip()
        assert [x for x in legacy.received if x.COMMAND == "getdata"] == []
        entry = await a.writer.call(lambda: a.writer.chainstate.get_entry(block.hash))
        assert entry is not None and not entry.have_data     # the header was taken, not the block

        witness, _, _ = await _raw_handshake(a, version=70016, services=NODE_NETWORK | NODE_WITNESS)
        await witness.send(m.Headers((block.header,)))
        got = await witness.expect("getdata")
        assert [(iv.type, iv.hash) for iv in got.items] == [(InvType.WITNESS_BLOCK, block.hash)]
        await legacy.ping_roundtrip()
        assert [x for x in legacy.received if x.COMMAND == "getdata"] == []
    finally:
        for raw in (legacy, witness):
            if raw is not None:
                await raw.close()
        await a.stop()
