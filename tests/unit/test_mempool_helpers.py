"""A small in-memory chain for mempool tests (the mempool only needs ChainState's read API and
its events), plus helpers to fund a MiniWallet. The last test checks the fake itself."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from tests.framework.miniwallet import MiniWallet, Utxo
from tinynode.chain.events import BlockConnected, BlockDisconnected, TipChanged
from tinynode.mining.template import make_coinbase
from tinynode.params import REGTEST
from tinynode.primitives.block import Block, BlockHeader, merkle_root
from tinynode.primitives.coin import Coin
from tinynode.primitives.tx import COIN, OutPoint, Tx

MTP_BASE = 1_700_000_000
NOW = MTP_BASE + 10_000_000


@dataclass(eq=False)
class FakeEntry:
    hash: bytes
    height: int
    header: BlockHeader | None = None
    undo: list = field(default_factory=list)
    prev: "FakeEntry | None" = None      # what BIP9 versionbits walks (the template's version)


from tinynode.script.cache import ScriptExecutionCache


class FakeChain:
    """Coins + a list of entries. `connect(txs)` applies a block and emits Core-ordered events."""

    def __init__(self, height: int = 200, params=REGTEST) -> None:
        self.params = params
        self.coins: dict[OutPoint, Coin] = {}
        self.chain: list[FakeEntry] = []
        for h in range(height + 1):
            prev = self.chain[-1] if self.chain else None
            header = BlockHeader(0x20000000, prev.hash if prev else bytes(32), bytes(32),
                                 MTP_BASE + h * 600, 0x207FFFFF, 0)
            self.chain.append(FakeEntry(hashlib.sha256(b"fake%d" % h).digest(), h, header, prev=prev))
        self.blocks: dict[bytes, Block] = {}
        self.subs = []
        self._funding = 0
        self.script_cache = ScriptExecutionCache()   # the mempool records its script checks here

    # --- the read API the mempool and the template use
    @property
    def tip(self) -> FakeEntry:
        return self.chain[-1]

    @property
    def height(self) -> int:
        return self.tip.height

    def median_time_past(self, entry=None) -> int:
        entry = entry or self.tip
        return MTP_BASE + entry.height * 600

    def get_block_hash(self, height: int) -> bytes | None:
        return self.chain[height].hash if 0 <= height < len(self.chain) else None

    def get_entry(self, h: bytes) -> FakeEntry | None:
        return next((e for e in self.chain if e.hash == h), None)

    def get_coin(self, outpoint: OutPoint) -> Coin | None:
        return self.coins.get(outpoint)

    def next_bits(self, prev, time) -> int:
        return self.params.pow_limit_bits

    def subscribe(self, cb) -> None:
        self.subs.append(cb)

    # --- test controls
    def fund(self, wallet: MiniWallet, value: int = 10 * COIN, n: int = 1, *, height: int = 1,
             coinbase: bool = False) -> list[Utxo]:
        """Put `n` coins paying the wallet in the UTXO set (not via a block)."""
        out = []
        for _ in range(n):
            self._funding += 1
            op = OutPoint(hashlib.sha256(b"funding%d" % self._funding).digest(), 0)
            self.coins[op] = Coin(value, wallet.script_pubkey, height, coinbase)
            u = Utxo(op, value, wallet.key, height, coinbase)
            wallet.coins.add(u)
            out.append(u)
        return out

    def _make_block(self, txs: list[Tx], tag: int) -> Block:
        height = self.tip.height + 1
        cb = make_coinbase(height, 50 * COIN, b"\x51", tag)
        all_txs = (cb, *txs)
        root, _ = merkle_root([t.txid for t in all_txs])
        return Block(BlockHeader(0x20000000, self.tip.hash, root, MTP_BASE + height * 600, 0x207FFFFF, tag), all_txs)

    def _apply(self, block: Block) -> FakeEntry:
        height = self.tip.height + 1
        undo = []
        for tx in block.txs:
            if not tx.is_coinbase():
                for txin in tx.vin:
                    coin = self.coins.pop(txin.prevout)  # KeyError = the test built a bad block
                    undo.append((txin.prevout, coin))
            for n, out in enumerate(tx.vout):
                self.coins[OutPoint(tx.txid, n)] = Coin(out.value, out.script_pubkey, height, tx.is_coinbase())
        entry = FakeEntry(block.hash, height, block.header, undo, prev=self.tip)
        self.chain.append(entry)
        self.blocks[block.hash] = block
        return entry

    def _unapply(self) -> tuple[Block, FakeEntry]:
        entry = self.chain.pop()
        block = self.blocks[entry.hash]
        for tx in block.txs:
            for n in range(len(tx.vout)):
                self.coins.pop(OutPoint(tx.txid, n), None)
        for op, coin in entry.undo:
            self.coins[op] = coin
        return block, entry

    def _emit(self, ev) -> None:
        for cb in list(self.subs):
            cb(ev)

    def connect(self, txs: list[Tx], tag: int = 0) -> Block:
        old = self.tip
        block = self._make_block(txs, tag)
        entry = self._apply(block)
        self._emit(BlockConnected(block, entry))
        self._emit(TipChanged(old, entry, 0))
        return block

    def reorg(self, depth: int, new_blocks: list[list[Tx]]) -> list[Block]:
        """Disconnect `depth` blocks, connect `new_blocks`; events after the whole step (as ChainState)."""
        old = self.tip
        gone = [self._unapply() for _ in range(depth)]
        made = []
        for i, txs in enumerate(new_blocks):
            block = self._make_block(txs, 1000 + i)
            made.append((block, self._apply(block)))
        for block, entry in gone:
            self._emit(BlockDisconnected(block, entry))
        for block, entry in made:
            self._emit(BlockConnected(block, entry))
        self._emit(TipChanged(old, self.tip, depth))
        return [b for b, _ in made]


def test_fake_chain_connect_and_reorg_restore_coins():
    chain = FakeChain(height=5)
    w = MiniWallet(1)
    (u,) = chain.fund(w, 5 * COIN)
    tx = w.create_spend(u)
    events = []
    chain.subscribe(events.append)
    chain.connect([tx])
    assert chain.get_coin(u.outpoint) is None and chain.height == 6
    chain.reorg(1, [[], []])
    assert chain.get_coin(u.outpoint) is not None and chain.height == 7
    assert [type(e).__name__ for e in events] == ["BlockConnected", "TipChanged", "BlockDisconnected",
                                                  "BlockConnected", "BlockConnected", "TipChanged"]
