"""Named-block builder for chain tests (Core `feature_block.py`, btcd `fullblocktests`).

A `BlockBuilder` keeps a tree of blocks by name, starting at the network's genesis ("genesis").
Scenarios read like Core's:

    b = BlockBuilder(REGTEST)
    b.next_block("b1"); b.save_spendable_output()
    ...
    b.set_tip("b1")
    b3 = b.next_block("b3", spend=b.get_spendable_output())

Every block is built on the current tip: a BIP34 coinbase (`CScript() << height`, then an
extranonce push so the coinbase is 2..100 bytes and unique per block) paying subsidy + fees +
`additional_coinbase_value` to the builder's wallet key, the merkle root, the next bits (the
parent's on networks without retargeting, Bitcoin's retarget rule otherwise — an independent
implementation, so a disagreement with the node shows up as `bad-diffbits`), a timestamp one
`spacing` after the parent (always > median-time-past), and a nonce ground until the hash meets
the target. `update_block(name, fn)` changes a block and re-merkles, re-solves and re-keys it.

Segwit (BIP141): when a block's txs carry witness data (or `witness_commitment=True`), the
coinbase gets the witness commitment output (OP_RETURN 0xaa21a9ed || sha256d(witness merkle
root || reserved value)) and the one-item witness [reserved value] (32 zero bytes), written here
independently of tinynode's miner; `add_witness_commitment` redoes it for a changed tx list.

The builder never talks to a node: tests deliver blocks with `ChainState.process_block` and
assert on `RejectReason`s (see `assert_accepted` / `assert_rejected`).
"""

from __future__ import annotations

import time as _time
from dataclasses import replace
from typing import Callable, Iterable, Sequence

from tinynode.params import REGTEST, ChainParams
from tinynode.primitives.block import Block, BlockHeader, bits_to_target, merkle_root, target_to_bits
from tinynode.primitives.hashes import hash_to_hex, sha256d
from tinynode.primitives.tx import NULL_OUTPOINT, OutPoint, Tx, TxIn, TxOut

from .miniwallet import MiniWallet, Utxo, push_data, push_int

__all__ = ["BlockBuilder", "next_bits_for", "solve", "assert_accepted", "assert_rejected",
           "block_work", "MEDIAN_TIME_SPAN", "add_witness_commitment", "witness_root",
           "COMMITMENT_HEADER"]

MEDIAN_TIME_SPAN = 11
DEFAULT_SPEND_FEE = 1000


COMMITMENT_HEADER = bytes.fromhex("6a24aa21a9ed")


def witness_root(txs: Sequence[Tx]) -> bytes:
    """BIP141's witness merkle root: the merkle root of the wtxids, the coinbase's as zero."""
    root, _ = merkle_root([bytes(32)] + [t.wtxid for t in txs[1:]])
    return root


def add_witness_commitment(txs: Sequence[Tx], reserved: bytes = bytes(32), *,
                           replace_existing: bool = True) -> list[Tx]:
    """`txs` with a coinbase committing to their witnesses: the commitment output appended (or,
    with `replace_existing`, every earlier commitment output dropped first) and the coinbase
    witness set to [reserved]."""
    cb = txs[0]
    vout = [o for o in cb.vout if not (replace_existing and o.script_pubkey[:6] == COMMITMENT_HEADER)]
    cb = replace(cb, vin=(replace(cb.vin[0], witness=(reserved,)),) + cb.vin[1:])
    commitment = sha256d(witness_root(txs) + reserved)
    cb = replace(cb, vout=tuple(vout) + (TxOut(0, COMMITMENT_HEADER + commitment),))
    return [cb, *txs[1:]]


def block_work(bits: int) -> int:
    """Core's `GetBlockProof`: 2**256 / (target + 1) (0 for an invalid target)."""
    target, negative, overflow = bits_to_target(bits)
    if negative or overflow or target == 0:
        return 0
    return (1 << 256) // (target + 1)


def next_bits_for(params: ChainParams, parent: BlockHeader, parent_height: int, new_time: int,
                  ancestor: Callable[[int], BlockHeader]) -> int:
    """Bitcoin's `GetNextWorkRequired` / `CalculateNextWorkRequired` (with the off-by-one).

    `ancestor(h)` returns the header at height h on the parent's branch.
    """
    limit_bits = params.pow_limit_bits
    if params.no_retargeting:
        return parent.bits
    window = params.retarget_window
    height = parent_height + 1
    if height % window != 0:
        if params.allow_min_difficulty:
            if new_time > parent.time + 2 * params.pow_target_spacing:
                return limit_bits
            h, hdr = parent_height, parent
            while h > 0 and h % window != 0 and hdr.bits == limit_bits:
                h -= 1
                hdr = ancestor(h)
            return hdr.bits
        return parent.bits
    first = ancestor(parent_height - (window - 1))
    timespan = params.pow_target_timespan
    actual = parent.time - first.time
    actual = max(timespan // 4, min(actual, timespan * 4))
    new = bits_to_target(parent.bits)[0] * actual // timespan
    new = min(new, params.pow_limit)
    return target_to_bits(new)


def solve(header: BlockHeader, *, valid: bool = True, max_tries: int = 10_000_000) -> BlockHeader:
    """Grind the nonce until the hash meets (valid) or misses (not valid) the header's target."""
    target = bits_to_target(header.bits)[0]
    h = header
    for _ in range(max_tries):
        ok = int.from_bytes(h.hash, "little") <= target
        if ok == valid:
            return h
        h = replace(h, nonce=(h.nonce + 1) & 0xFFFFFFFF)
    raise RuntimeError("could not solve header (target too hard for a test?)")


class BlockBuilder:
    """Builds named blocks on a tree rooted at `params.genesis` (test helper, not thread-safe).

    `now` is the wall clock the node under test uses (seconds); it only matters for blocks built
    with `time=` relative to it (see `future_time`). `spacing` is the default seconds between a
    block and its parent (default: the network's target spacing).
    """

    def __init__(self, params: ChainParams = REGTEST, *, now: int | None = None,
                 spacing: int | None = None, wallet: MiniWallet | None = None,
                 version: int = 4) -> None:
        self.params = params
        self.now = int(_time.time()) if now is None else int(now)
        self.spacing = params.pow_target_spacing if spacing is None else spacing
        self.wallet = wallet or MiniWallet(0)
        self.version = version
        g = params.genesis
        self.blocks: dict[str, Block] = {"genesis": g}
        self.by_hash: dict[bytes, Block] = {g.hash: g}
        self.heights: dict[bytes, int] = {g.hash: 0}
        self.names: dict[bytes, str] = {g.hash: "genesis"}
        self.spend_txs: dict[str, Tx] = {}
        self.tip: Block = g
        self.tip_name = "genesis"
        self._spendable: list[Utxo] = []
        self._extranonce = 0

    # ------------------------------------------------------------------ tree navigation
    def __getitem__(self, name: str) -> Block:
        return self.blocks[name]

    def height_of(self, block_or_name: Block | str) -> int:
        b = self.blocks[block_or_name] if isinstance(block_or_name, str) else block_or_name
        return self.heights[b.hash]

    def parent_of(self, block: Block) -> Block:
        return self.by_hash[block.header.prev_hash]

    def set_tip(self, name: str) -> Block:
        """Build the next block on `name` (Core `move_tip`, btcd `setTip`)."""
        self.tip = self.blocks[name]
        self.tip_name = name
        return self.tip

    def chain_to(self, name: str) -> list[Block]:
        """Blocks from height 1 up to and including `name`, in order."""
        out = []
        b = self.blocks[name]
        while self.heights[b.hash] > 0:
            out.append(b)
            b = self.parent_of(b)
        return out[::-1]

    def ancestor_header(self, block: Block, height: int) -> BlockHeader:
        b = block
        while self.heights[b.hash] > height:
            b = self.parent_of(b)
        if self.heights[b.hash] != height:
            raise KeyError(height)
        return b.header

    def chainwork(self, name: str) -> int:
        return sum(block_work(b.header.bits) for b in [self.params.genesis] + self.chain_to(name))

    def median_time_past(self, block: Block) -> int:
        """Median of the last 11 timestamps ending at `block` (Core `GetMedianTimePast`)."""
        times = []
        b: Block | None = block
        for _ in range(MEDIAN_TIME_SPAN):
            if b is None:
                break
            times.append(b.header.time)
            b = self.by_hash.get(b.header.prev_hash) if self.heights[b.hash] > 0 else None
        times.sort()
        return times[len(times) // 2]

    def future_time(self, seconds_ahead: int = 0) -> int:
        """`now + max_future_block_time + seconds_ahead` (seconds_ahead=1 is just too new)."""
        return self.now + self.params.max_future_block_time + seconds_ahead

    def next_bits(self, parent: Block, time: int) -> int:
        ph = self.heights[parent.hash]
        return next_bits_for(self.params, parent.header, ph, time,
                             lambda h: self.ancestor_header(parent, h))

    # ------------------------------------------------------------------ spendable outputs
    def save_spendable_output(self) -> Utxo:
        """Remember the tip's coinbase output 0 (Core `save_spendable_output`)."""
        cb = self.tip.txs[0]
        u = Utxo(OutPoint(cb.txid, 0), cb.vout[0].value, self.wallet.key, self.heights[self.tip.hash], True)
        self._spendable.append(u)
        return u

    def get_spendable_output(self) -> Utxo:
        """The oldest saved coinbase output (Core `get_spendable_output`)."""
        return self._spendable.pop(0)

    def coinbase_utxo(self, name: str) -> Utxo:
        b = self.blocks[name]
        cb = b.txs[0]
        return Utxo(OutPoint(cb.txid, 0), cb.vout[0].value, self.wallet.key, self.heights[b.hash], True)

    def tx_utxos(self, tx: Tx) -> list[Utxo]:
        """The outputs of `tx` the builder's wallet can sign for."""
        return self.wallet.outputs_of(tx)

    # ------------------------------------------------------------------ building
    def create_coinbase(self, height: int, value: int, *, script_pubkey: bytes | None = None,
                        extranonce: int | None = None, script_sig: bytes | None = None) -> Tx:
        """A BIP34 coinbase: scriptSig `<height> <extranonce>`, one output of `value`."""
        if extranonce is None:
            self._extranonce += 1
            extranonce = self._extranonce
        if script_sig is None:
            script_sig = push_int(height) + push_data(extranonce.to_bytes(4, "little"))
        spk = self.wallet.script_pubkey if script_pubkey is None else script_pubkey
        return Tx(1, (TxIn(NULL_OUTPOINT, script_sig, 0xFFFFFFFF),), (TxOut(value, spk),), 0)

    def create_spend_tx(self, spend: Utxo, *, fee: int = DEFAULT_SPEND_FEE, n_outputs: int = 1) -> Tx:
        return self.wallet.create_spend(spend, fee=fee, n_outputs=n_outputs)

    def next_block(self, name: str, spend: Utxo | None = None, additional_coinbase_value: int = 0,
                   txs: Sequence[Tx] = (), *, fees: int = 0, time: int | None = None,
                   bits: int | None = None, version: int | None = None, solve_pow: bool = True,
                   valid_pow: bool = True, coinbase: Tx | None = None, spend_fee: int = DEFAULT_SPEND_FEE,
                   coinbase_script_sig: bytes | None = None, height: int | None = None,
                   witness_commitment: bool | None = None) -> Block:
        """Build block `name` on the current tip and make it the tip.

        `spend` adds a tx spending that coin (fee `spend_fee` goes to the coinbase); `txs` are
        appended after it; `fees` is what the caller's `txs` pay (added to the coinbase value).
        `height` overrides the height written in the coinbase (for bad-cb-height tests).
        `witness_commitment`: None adds the BIP141 commitment when some tx has a witness;
        True always, False never.
        """
        if name in self.blocks:
            raise KeyError(f"block {name!r} already exists")
        parent = self.tip
        h = self.heights[parent.hash] + 1
        body: list[Tx] = []
        if spend is not None:
            stx = self.create_spend_tx(spend, fee=spend_fee)
            self.spend_txs[name] = stx
            body.append(stx)
            fees += spend_fee
        body.extend(txs)
        if coinbase is None:
            value = self.params.block_subsidy(h) + fees + additional_coinbase_value
            coinbase = self.create_coinbase(h if height is None else height, value,
                                            script_sig=coinbase_script_sig)
        if time is None:
            time = max(parent.header.time + self.spacing, self.median_time_past(parent) + 1)
        if bits is None:
            bits = self.next_bits(parent, time)
        all_txs = (coinbase, *body)
        if witness_commitment or (witness_commitment is None and any(t.has_witness() for t in body)):
            all_txs = tuple(add_witness_commitment(all_txs))
        root, _ = merkle_root([t.txid for t in all_txs])
        header = BlockHeader(self.version if version is None else version, parent.hash, root, time, bits, 0)
        if solve_pow:
            header = solve(header, valid=valid_pow)
        block = Block(header, all_txs)
        self._register(name, block, h)
        return block

    def _register(self, name: str, block: Block, height: int) -> None:
        self.blocks[name] = block
        self.by_hash[block.hash] = block
        self.heights[block.hash] = height
        self.names[block.hash] = name
        self.tip = block
        self.tip_name = name

    def update_block(self, name: str, mutate: Callable[[Block], Block | Iterable[Tx]], *,
                     remerkle: bool = True, resolve: bool = True, valid_pow: bool = True) -> Block:
        """Change block `name` and re-key it (Core `update_block`).

        `mutate(block)` returns a new `Block` or a new tx list. The merkle root is recomputed
        (unless `remerkle=False`, for bad-merkle / mutated-block tests) and the nonce ground
        again (unless `resolve=False`).
        """
        old = self.blocks[name]
        out = mutate(old)
        block = out if isinstance(out, Block) else Block(old.header, tuple(out))
        header = block.header
        if remerkle:
            root, _ = block.compute_merkle_root()
            header = replace(header, merkle_root=root)
        if resolve:
            header = solve(header, valid=valid_pow)
        block = Block(header, block.txs)
        height = self.heights[old.hash]
        was_tip = self.tip.hash == old.hash
        del self.by_hash[old.hash]
        del self.names[old.hash]
        self.blocks[name] = block
        self.by_hash[block.hash] = block
        self.heights[block.hash] = height
        self.names[block.hash] = name
        if was_tip:
            self.tip = block
        return block

    def add_block(self, name: str, block: Block) -> Block:
        """Register an externally built block (its parent must be known); it becomes the tip."""
        h = self.heights[block.header.prev_hash] + 1
        self._register(name, block, h)
        return block

    def name_of(self, block_hash: bytes) -> str:
        return self.names.get(block_hash, hash_to_hex(block_hash))


# ---------------------------------------------------------------------- delivery assertions
def assert_accepted(chainstate, block: Block, *, tip: Block | None = None):
    """Deliver `block`; it must be valid (connected or stored on a side branch).

    `tip` (default: no check) is the block expected to be the active tip afterwards.
    """
    res = chainstate.process_block(block)
    assert res.error is None, f"block {hash_to_hex(block.hash)} rejected: {res.error!r}"
    if tip is not None:
        assert chainstate.tip.hash == tip.hash, (
            f"tip is {chainstate.tip.hash_hex} at {chainstate.tip.height}, expected {tip.hash_hex}")
    return res


def assert_rejected(chainstate, block: Block, reason, *, tip: Block | None = None,
                    mutated: bool | None = None):
    """Deliver `block`; it must be refused with Core's `reason` (a `RejectReason`).

    Works whether the node reports the error in the `BlockResult` or raises `ValidationError`.
    """
    from tinynode.consensus.errors import ValidationError

    try:
        res = chainstate.process_block(block)
        err = res.error
    except ValidationError as e:  # some paths may raise instead of returning
        res, err = None, e
    assert err is not None, f"block {hash_to_hex(block.hash)} was accepted, expected {reason}"
    assert err.reason == reason, f"expected {reason}, got {err!r}"
    if mutated is not None:
        assert err.mutated == mutated, f"expected mutated={mutated}, got {err!r}"
    if tip is not None:
        assert chainstate.tip.hash == tip.hash, (
            f"tip is {chainstate.tip.hash_hex} at {chainstate.tip.height}, expected {tip.hash_hex}")
    return res
