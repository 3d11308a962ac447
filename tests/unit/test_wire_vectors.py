"""Wire bytes checked against independent sources.

* python-bitcoinlib 0.12 (`bitcoin.messages`, an independent Python implementation of Core's
  messages) builds the same messages; our bytes must equal its bytes, both ways. Its
  `msg_headers` is not used: it writes bare 80-byte headers without Core's trailing tx count.
* btcd wire/message_test.go `TestMessage` lists full wire lengths of messages built from known
  fields (version 125, getblocks 61, reject 79, ping 32 …); we build the same values.
* Mainnet block 413567 (tests/data, from Core's bench data) goes through the envelope whole.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from tinynode.primitives.block import Block
from tinynode.primitives.hashes import ZERO_HASH, sha256d
from tinynode.primitives.tx import Tx
from tinynode.params import REGTEST
from tinynode.wire import (
    Addr,
    BlockMsg,
    GetAddr,
    GetBlocks,
    GetData,
    GetHeaders,
    Inv,
    InvVect,
    MemPool,
    NetAddr,
    NotFound,
    Ping,
    Pong,
    Reject,
    TimedAddr,
    TxMsg,
    Verack,
    Version,
    decode_message,
    encode,
)

bmsg = pytest.importorskip("bitcoin.messages")
bnet = pytest.importorskip("bitcoin.net")
bcore = pytest.importorskip("bitcoin.core")

DATA = Path(__file__).resolve().parents[1] / "data"
MAINNET = bytes.fromhex("f9beb4d9")
H1 = sha256d(b"one")
H2 = sha256d(b"two")


def _caddr(ip: str, port: int, services: int = 1, time: int = 0):
    a = bnet.CAddress()
    a.ip, a.port, a.nServices, a.nTime = ip, port, services, time
    return a


def _cinv(t: int, h: bytes):
    i = bnet.CInv()
    i.type, i.hash = t, h
    return i


def _theirs_version():
    v = bmsg.msg_version(70015)
    v.nVersion, v.nServices, v.nTime, v.nNonce = 70015, 1, 1_700_000_000, 0x0102030405060708
    v.addrTo = _caddr("192.168.1.2", 8333, 9)
    v.addrFrom = _caddr("2001:db8::7", 18444, 1)
    v.strSubVer = b"/Satoshi:27.0.0/"
    v.nStartingHeight, v.fRelay = 840_000, True
    return v


def _ours_version():
    return Version(70015, 1, 1_700_000_000, NetAddr.from_host("192.168.1.2", 8333, 9),
                   NetAddr.from_host("2001:db8::7", 18444, 1), 0x0102030405060708,
                   "/Satoshi:27.0.0/", 840_000, True)


def _pairs():
    yield "version", _theirs_version(), _ours_version()
    yield "verack", bmsg.msg_verack(), Verack()
    yield "getaddr", bmsg.msg_getaddr(), GetAddr()
    yield "mempool", bmsg.msg_mempool(), MemPool()
    yield "ping", bmsg.msg_ping(nonce=0xFEEDFACECAFEBEEF), Ping(0xFEEDFACECAFEBEEF)
    pong = bmsg.msg_pong()
    pong.nonce = 77
    yield "pong", pong, Pong(77)

    addr = bmsg.msg_addr()
    addr.addrs = [_caddr("10.0.0.1", 8333, 1, 1_600_000_000), _caddr("::1", 18444, 0x409, 5)]
    yield "addr", addr, Addr([TimedAddr(1_600_000_000, NetAddr.from_host("10.0.0.1", 8333, 1)),
                              TimedAddr(5, NetAddr.from_host("::1", 18444, 0x409))])

    for name, ctor, ours in (("inv", bmsg.msg_inv, Inv), ("getdata", bmsg.msg_getdata, GetData),
                             ("notfound", bmsg.msg_notfound, NotFound)):
        m = ctor()
        m.inv = [_cinv(1, H1), _cinv(2, H2)]
        yield name, m, ours([InvVect(1, H1), InvVect(2, H2)])

    for name, ctor, ours in (("getheaders", bmsg.msg_getheaders, GetHeaders),
                             ("getblocks", bmsg.msg_getblocks, GetBlocks)):
        m = ctor()
        m.locator.nVersion = 70015
        m.locator.vHave = [H1, H2]
        m.hashstop = H2
        yield name, m, ours([H1, H2], H2, 70015)

    coinbase = REGTEST.genesis.txs[0]
    tx = bmsg.msg_tx()
    tx.tx = bcore.CTransaction.deserialize(coinbase.raw)
    yield "tx", tx, TxMsg(coinbase)

    block = bmsg.msg_block()
    block.block = bcore.CBlock.deserialize(REGTEST.genesis.serialize())
    yield "block", block, BlockMsg(REGTEST.genesis)

    rej = bmsg.msg_reject()
    rej.message, rej.ccode, rej.reason = b"tx", b"\x42", b"insufficient fee"
    yield "reject", rej, Reject("tx", 0x42, "insufficient fee")


PAIRS = list(_pairs())


@pytest.mark.parametrize("name,theirs,ours", PAIRS, ids=[p[0] for p in PAIRS])
def test_bytes_equal_python_bitcoinlib(name, theirs, ours):
    wire = theirs.to_bytes()
    assert wire[:4] == MAINNET
    assert encode(MAINNET, ours) == wire
    header, decoded, used = decode_message(MAINNET, wire)
    assert header.command == name and used == len(wire)
    assert decoded == ours


def test_python_bitcoinlib_reads_our_version():
    back = bmsg.MsgSerializable.from_bytes(encode(MAINNET, _ours_version()))
    assert (back.nVersion, back.nNonce, back.strSubVer, back.nStartingHeight) == (
        70015, 0x0102030405060708, b"/Satoshi:27.0.0/", 840_000)
    assert (back.addrTo.ip, back.addrTo.port, back.addrFrom.ip) == ("192.168.1.2", 8333, "2001:db8::7")


def test_btcd_message_lengths():
    """Full wire lengths from btcd wire/message_test.go TestMessage, for the same values."""
    addr = NetAddr.from_host("127.0.0.1", 8333)
    version = Version(70015, 0, 0, NetAddr.from_host("192.168.0.1", 8333), addr, 123123,
                      "/btcwire:0.5.0/", 0, True)
    block_one = Block(REGTEST.genesis.header, [Tx(1, (), ())])  # 80 + 1 + 10-byte empty tx
    cases = [
        (version, 125), (Verack(), 24), (GetAddr(), 24), (Addr(()), 25),
        (GetBlocks((), ZERO_HASH), 61), (Inv(()), 25), (GetData(()), 25), (NotFound(()), 25),
        (TxMsg(Tx(1, (), ())), 34), (Ping(123123), 32), (Pong(123123), 32),
        (GetHeaders(()), 61), (MemPool(), 24),
        (Reject("block", 0x12, "duplicate block", ZERO_HASH), 79),
        (BlockMsg(block_one), 24 + 81 + 10),
    ]
    for msg, length in cases:
        assert len(encode(MAINNET, msg)) == length, msg


def test_mainnet_block_413567_through_the_envelope():
    raw = (DATA / "block413567.raw").read_bytes()
    msg = BlockMsg.from_payload(raw)
    assert msg.block.hash_hex == "0000000000000000025aff8be8a55df8f89c77296db6198f272d6577325d4069"
    wire = encode(MAINNET, msg)
    assert wire[:24] == MAINNET + b"block" + bytes(7) + struct.pack("<I", 999_887) + sha256d(raw)[:4]
    assert wire[24:] == raw
    header, decoded, used = decode_message(MAINNET, wire)
    assert used == len(wire) and decoded == msg and len(decoded.block.txs) == 1557
