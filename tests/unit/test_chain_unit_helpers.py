"""Tiny regtest block helpers for H-chain's own unit tests (the full named-block builder is
tests/framework/blockbuilder.py). No tests in this module.

The blocks are valid on Bitcoin's regtest as it is (coinbase maturity 100 included), so the
tests deliver them to Core's kernel too (tests/framework/oracle.py): a test starts on
`base_chain()`, 100 blocks of anyone-can-spend coinbases (cheap regtest PoW), whose coinbases
are mature for every block the test builds on top (height > 100)."""

from __future__ import annotations

import dataclasses

from tinynode.consensus.block_checks import bip34_height_script
from tinynode.params import REGTEST
from tinynode.primitives.block import Block, BlockHeader, merkle_root
from tinynode.primitives.tx import COIN, NULL_OUTPOINT, OutPoint, Tx, TxIn, TxOut

OP_TRUE = b"\x51"
#: Bitcoin's regtest, unchanged (the name stays for the tests that import it)
PARAMS = REGTEST
T0 = REGTEST.genesis.header.time
#: height of the tip of `base_chain()`
BASE_HEIGHT = 100


def coinbase(height: int, value: int = 50 * COIN, spk: bytes = OP_TRUE, extra: bytes = b"") -> Tx:
    return Tx(1, (TxIn(NULL_OUTPOINT, bip34_height_script(height) + b"\x00" + extra),), (TxOut(value, spk),))


def spend(prev: Tx | OutPoint, value: int, n: int = 0, spk: bytes = OP_TRUE, script_sig: bytes = b"",
          version: int = 1, sequence: int = 0xFFFFFFFF, locktime: int = 0, outputs: int = 1) -> Tx:
    op = prev if isinstance(prev, OutPoint) else OutPoint(prev.txid, n)
    return Tx(version, (TxIn(op, script_sig, sequence),),
              tuple(TxOut(value // outputs, spk) for _ in range(outputs)), locktime)


def grind(header: BlockHeader) -> BlockHeader:
    target = header.target
    nonce = 0
    while True:
        h = dataclasses.replace(header, nonce=nonce)
        if int.from_bytes(h.hash, "little") <= target:
            return h
        nonce += 1


def make_block(prev_hash: bytes, height: int, time: int, txs: tuple = (), *, cb: Tx | None = None,
               bits: int = 0x207FFFFF, version: int = 4, cb_value: int | None = None,
               cb_extra: bytes = b"", fees: int = 0, solve: bool = True) -> Block:
    if cb is None:
        cb = coinbase(height, (50 * COIN + fees) if cb_value is None else cb_value, extra=cb_extra)
    all_txs = (cb, *txs)
    root, _ = merkle_root([t.txid for t in all_txs])
    header = BlockHeader(version, prev_hash, root, time, bits, 0)
    if solve:
        header = grind(header)
    return Block(header, all_txs)


class Builder:
    """Builds a chain on top of a ChainState-like tip: `b = Builder(); blk = b.next(prev_block)`.
    `base` (e.g. `base_chain()`) registers blocks built elsewhere on genesis, in order."""

    def __init__(self, genesis: Block = REGTEST.genesis, base: tuple[Block, ...] = ()) -> None:
        self.heights = {genesis.hash: 0}
        self.times = {genesis.hash: genesis.header.time}
        for blk in base:
            self.heights[blk.hash] = self.heights[blk.header.prev_hash] + 1
            self.times[blk.hash] = blk.header.time

    def next(self, prev: Block | bytes, txs: tuple = (), **kw) -> Block:
        ph = prev if isinstance(prev, bytes) else prev.hash
        height = self.heights[ph] + 1
        time = kw.pop("time", self.times[ph] + 1)
        blk = make_block(ph, height, time, txs, **kw)
        self.heights[blk.hash] = height
        self.times[blk.hash] = time
        return blk

    def chain(self, prev: Block | bytes, n: int, **kw) -> list[Block]:
        out = []
        for i in range(n):
            b = self.next(prev, cb_extra=kw.get("cb_extra", b"") + bytes([i & 0xFF]))
            out.append(b)
            prev = b
        return out


def base_chain(n: int = BASE_HEIGHT) -> tuple[Block, ...]:
    """Heights 1..n on regtest's genesis: coinbases of 50 BTC to OP_TRUE, one second apart.
    `base_chain()[i].txs[0]` (height i + 1) may be spent from height i + 101 on."""
    return tuple(Builder().chain(REGTEST.genesis, n, cb_extra=b"base"))
