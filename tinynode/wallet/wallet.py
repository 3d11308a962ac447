"""The wallet: coins from chain events and the mempool, balances, building and signing sends.

Runs synchronously on the chain writer's thread (like the mempool), so a send is atomic:
select coins, sign, hand to the mempool, record as pending, with no block arriving in between.
It follows the chain through `ChainState.subscribe` events and keeps, per transaction that
touches it, a state in the style of Bitcoin Core's `CWalletTx`:

    confirmed   in a block on the active chain (height, block hash)
    pending     in no block yet: its own sends (trusted), and receipts seen in the mempool
    conflicted  an input was spent by a confirmed transaction that is not this one, or it is
                the coinbase of a block that left the active chain; its outputs are gone

Coins are derived: an output paying one of our scripts, of a non-conflicted tx, not spent by a
non-conflicted tx. Balances follow Core's `GetBalance`: "trusted" = confirmed coins plus the
change of our own pending sends; "untrusted_pending" = unconfirmed receipts from others;
"immature" = coinbase outputs with fewer than COINBASE_MATURITY + 1 confirmations (Core's
`GetBlocksToMaturity`). So after `generatetoaddress 101` on regtest the balance is exactly 50.

A coin spent by our own pending tx is never chosen again; our own unconfirmed change is
(Core's `m_spend_zero_conf_change`), so several sends in a row from one coin all work.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass, replace
from typing import Callable, Iterable, Sequence

from ..chain.events import BlockConnected, BlockDisconnected, TipChanged
from ..params import ChainParams
from ..primitives.block import Block
from ..primitives.hashes import hash_to_hex
from ..primitives.tx import OutPoint, Tx, TxIn, TxOut
from ..mempool.policy import dust_threshold
from ..script.sighash import SIGHASH_ALL, PrecomputedTxData
from ..script.script import core_push
from ..script.sign import ZERO_AUX, sign_p2pk, sign_p2pkh, sign_p2tr_keypath, sign_p2wpkh
from ..storage.wallet import TxRecord, WalletStore
from .coinselect import (
    P2PKH_INPUT_SIZE, P2PKH_INPUT_SIZE_UNCOMPRESSED, P2TR_INPUT_SIZE, P2WPKH_INPUT_SIZE, TX_OVERHEAD,
    Candidate,
    InsufficientFunds, fee_for_size, select_coins,
)
from .keystore import (
    BECH32, BECH32M, DEFAULT_ADDRESS_TYPE, LEGACY, P2SH_SEGWIT, PK, KeyStore, script_shape,
)

__all__ = [
    "Wallet", "WalletTx", "WalletCoin", "Balances", "CreatedTx", "WalletError",
    "InsufficientFunds", "DEFAULT_FEE_RATE", "CONFIRMED", "PENDING", "CONFLICTED",
]

log = logging.getLogger(__name__)

CONFIRMED, PENDING, CONFLICTED = "confirmed", "pending", "conflicted"
#: Default fee rate: 2 sat/vB (as sat per 1000 bytes), on every network; no estimation to fail.
DEFAULT_FEE_RATE = 2000
#: Sequence for wallet inputs: signals replaceability (BIP125), final for locktime purposes.
WALLET_SEQUENCE = 0xFFFFFFFD


class WalletError(Exception):
    """A send the wallet cannot make; the message is a sentence for a person."""


@dataclass(frozen=True, slots=True)
class WalletTx:
    tx: Tx
    state: str
    block_hash: bytes | None
    height: int | None
    block_time: int | None
    time_received: int
    from_me: bool
    fee: int | None
    seq: int

    @property
    def txid(self) -> bytes:
        return self.tx.txid

    def to_record(self) -> TxRecord:
        return TxRecord(self.tx.txid, self.tx.raw, self.state, self.block_hash, self.height,
                        self.block_time, self.time_received, self.from_me, self.fee, self.seq)


@dataclass(frozen=True, slots=True)
class WalletCoin:
    outpoint: OutPoint
    value: int
    script_pubkey: bytes
    confirmations: int          # 0 = unconfirmed
    is_coinbase: bool
    trusted: bool               # confirmed, or change of our own pending send
    mature: bool
    address: str | None         # None for a script without one (a combo descriptor's P2PK)


@dataclass(frozen=True, slots=True)
class Balances:
    """Satoshis. Core's getbalances "mine" object: trusted, untrusted_pending, immature."""

    trusted: int
    untrusted_pending: int
    immature: int

    @property
    def total(self) -> int:
        return self.trusted + self.untrusted_pending + self.immature


@dataclass(frozen=True, slots=True)
class CreatedTx:
    tx: Tx
    fee: int
    change_index: int | None      # position of the change output, None without change
    amounts: tuple[int, ...]      # what each recipient receives (after subtract-fee)


class Wallet:
    """One wallet over one `WalletStore`. All methods run on the chain writer thread."""

    def __init__(self, params: ChainParams, store: WalletStore, *, keypool_size: int = 20,
                 now: Callable[[], float] = time.time, change_type: str | None = None,
                 address_type: str = DEFAULT_ADDRESS_TYPE):
        self.params = params
        #: Core -addresstype (`m_default_address_type`)
        self.address_type = address_type
        #: Core -changetype when given (`m_default_change_type`); None: chosen per transaction
        #: from its recipients (`transaction_change_type`)
        self.change_type_option = change_type
        #: getrawchangeaddress's default (Core: -changetype, else -addresstype)
        self.change_type = change_type or address_type
        self.store = store
        self._now = now
        self.keys = KeyStore(store, params, keypool_size, now)
        self._txs: dict[bytes, WalletTx] = {}
        self._spent_by: dict[OutPoint, set[bytes]] = {}
        self._seq = 0
        for rec in store.load_txs():
            wtx = WalletTx(Tx.from_bytes(rec.raw), rec.state, rec.block_hash, rec.height, rec.block_time,
                           rec.time_received, rec.from_me, rec.fee, rec.seq)
            self._txs[wtx.txid] = wtx
            self._seq = max(self._seq, rec.seq)
            if wtx.state != CONFLICTED:
                self._index_spends(wtx.tx)
        h = store.get_meta("tip_height")
        self.tip_height: int = int(h.decode()) if h is not None else -1
        self.tip_hash: bytes | None = store.get_meta("tip_hash")
        self._unsaved_tip = 0  # blocks the in-memory tip is ahead of the stored one

    #: Blocks that touch nothing of ours move the tip in memory only; it is written at most every
    #: this many blocks and at close (a stale tip on disk just means a short rescan at start).
    TIP_SAVE_BLOCKS = 1000

    def close(self) -> None:
        if getattr(self, "_unsaved_tip", 0) and self.tip_hash is not None:
            with self.store.batch():
                self._set_tip(self.tip_height, self.tip_hash)
        self.store.close()

    # --- bookkeeping -----------------------------------------------------------------------------
    def _index_spends(self, tx: Tx) -> None:
        if tx.is_coinbase():
            return
        for txin in tx.vin:
            self._spent_by.setdefault(txin.prevout, set()).add(tx.txid)

    def _unindex_spends(self, tx: Tx) -> None:
        if tx.is_coinbase():
            return
        for txin in tx.vin:
            s = self._spent_by.get(txin.prevout)
            if s is not None:
                s.discard(tx.txid)
                if not s:
                    del self._spent_by[txin.prevout]

    def _put(self, wtx: WalletTx) -> None:
        old = self._txs.get(wtx.txid)
        if old is not None and old.state != CONFLICTED:
            self._unindex_spends(old.tx)
        self._txs[wtx.txid] = wtx
        if wtx.state != CONFLICTED:
            self._index_spends(wtx.tx)
        self.store.put_tx(wtx.to_record())

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _set_tip(self, height: int, block_hash: bytes) -> None:
        self.tip_height, self.tip_hash = height, block_hash
        self.store.set_meta("tip_height", str(height).encode())
        self.store.set_meta("tip_hash", block_hash)
        self._unsaved_tip = 0

    def _move_tip_lazily(self, height: int, block_hash: bytes) -> None:
        """The tip moved over blocks with nothing of ours: remember it, write it now and then."""
        self.tip_height, self.tip_hash = height, block_hash
        self._unsaved_tip = getattr(self, "_unsaved_tip", 0) + 1
        if self._unsaved_tip >= self.TIP_SAVE_BLOCKS:
            with self.store.batch():
                self._set_tip(height, block_hash)

    def _block_touches_us(self, block: Block) -> bool:
        for tx in block.txs:
            if self.is_relevant(tx):
                return True
            if not tx.is_coinbase() and any(txin.prevout in self._spent_by for txin in tx.vin):
                return True
        return False

    def is_mine_output(self, outpoint: OutPoint) -> TxOut | None:
        """The output at `outpoint` if a wallet tx created it and it pays one of our scripts."""
        wtx = self._txs.get(outpoint.txid)
        if wtx is None or outpoint.n >= len(wtx.tx.vout):
            return None
        out = wtx.tx.vout[outpoint.n]
        return out if self.keys.is_mine(out.script_pubkey) else None

    def is_relevant(self, tx: Tx) -> bool:
        """Pays one of our scripts or spends one of our coins (Core `IsMine`/`IsFromMe`)."""
        if tx.txid in self._txs:
            return True
        if any(self.keys.is_mine(o.script_pubkey) for o in tx.vout):
            return True
        return not tx.is_coinbase() and any(self.is_mine_output(i.prevout) for i in tx.vin)

    def _mark_outputs_used(self, tx: Tx) -> None:
        for o in tx.vout:
            if self.keys.is_mine(o.script_pubkey):
                self.keys.mark_used(o.script_pubkey)

    def _mark_conflicted(self, txid: bytes) -> None:
        """This tx lost a double-spend (or its block left the chain): it and its descendants go."""
        stack = [txid]
        while stack:
            t = stack.pop()
            wtx = self._txs.get(t)
            if wtx is None or wtx.state == CONFLICTED:
                continue
            log.info("wallet: tx %s is conflicted", hash_to_hex(t))
            self._put(replace(wtx, state=CONFLICTED, block_hash=None, height=None, block_time=None))
            for n in range(len(wtx.tx.vout)):
                stack.extend(self._spent_by.get(OutPoint(t, n), ()))

    # --- following the chain -----------------------------------------------------------------------
    def on_chain_event(self, event) -> None:
        """`ChainState.subscribe` callback (writer thread)."""
        if isinstance(event, BlockConnected):
            self.block_connected(event.block, event.entry.height)
        elif isinstance(event, BlockDisconnected):
            self.block_disconnected(event.block, event.entry.height)
        elif isinstance(event, TipChanged):
            if event.new_tip.height != self.tip_height or event.new_tip.hash != self.tip_hash:
                self._move_tip_lazily(event.new_tip.height, event.new_tip.hash)

    def block_connected(self, block: Block, height: int) -> None:
        """Core `CWallet::blockConnected` → `SyncTransaction` for each tx."""
        bhash = block.hash
        if not self._block_touches_us(block):  # most blocks in IBD: no SQLite transaction at all
            self._move_tip_lazily(height, bhash)
            return
        with self.store.batch():
            for tx in block.txs:
                # anything of ours spending the same outpoints now loses (Core MarkConflicted)
                if not tx.is_coinbase():
                    for txin in tx.vin:
                        for other in list(self._spent_by.get(txin.prevout, ())):
                            if other != tx.txid:
                                self._mark_conflicted(other)
                if not self.is_relevant(tx):
                    continue
                old = self._txs.get(tx.txid)
                self._put(WalletTx(tx, CONFIRMED, bhash, height, block.header.time,
                                   old.time_received if old else int(self._now()),
                                   old.from_me if old else False,
                                   old.fee if old else None,
                                   old.seq if old else self._next_seq()))
                self._mark_outputs_used(tx)
            self._set_tip(height, bhash)

    def block_disconnected(self, block: Block, height: int) -> None:
        """Core `CWallet::blockDisconnected`: its txs are pending again; its coinbase is gone."""
        with self.store.batch():
            for tx in reversed(block.txs):
                wtx = self._txs.get(tx.txid)
                if wtx is None:
                    continue
                if tx.is_coinbase():
                    self._mark_conflicted(tx.txid)
                else:
                    self._put(replace(wtx, state=PENDING, block_hash=None, height=None, block_time=None))
            self._set_tip(height - 1, block.header.prev_hash)

    def sync_with_chain(self, chainstate) -> int:
        """Catch up with the active chain at start (Core `AttachChain` rescan). Writer thread.

        A new wallet starts at the current tip (its keys are new: nothing older can pay them).
        After a crash or a reorg while stopped, blocks above the fork are undone first.
        Returns the number of blocks scanned.
        """
        tip = chainstate.tip
        if self.tip_hash is None:
            with self.store.batch():
                self._set_tip(tip.height, tip.hash)
            return 0
        # walk back from our last block to the active chain
        entry = chainstate.get_entry(self.tip_hash)
        if entry is None:
            fork_height = min(self.tip_height, tip.height)
            while fork_height > 0 and chainstate.get_block_hash(fork_height) is None:
                fork_height -= 1
        else:
            e = entry
            while e is not None and chainstate.get_block_hash(e.height) != e.hash:
                e = e.prev
            fork_height = e.height if e is not None else 0
        # every confirmed tx must sit in a block of the active chain (a crash can lose the
        # chain's last blocks while the wallet remembers them)
        for wtx in self._txs.values():
            if wtx.state == CONFIRMED and wtx.height is not None and wtx.height <= fork_height:
                if chainstate.get_block_hash(wtx.height) != wtx.block_hash:
                    fork_height = wtx.height - 1
        if fork_height < self.tip_height:
            with self.store.batch():
                for wtx in list(self._txs.values()):
                    if wtx.state == CONFIRMED and wtx.height is not None and wtx.height > fork_height:
                        if wtx.tx.is_coinbase():
                            self._mark_conflicted(wtx.txid)
                        else:
                            self._put(replace(wtx, state=PENDING, block_hash=None, height=None,
                                              block_time=None))
                fh = chainstate.get_block_hash(fork_height)
                self._set_tip(fork_height, fh)
        scanned = 0
        for h in range(self.tip_height + 1, tip.height + 1):
            block = chainstate.get_block(chainstate.get_block_hash(h))
            self.block_connected(block, h)
            scanned += 1
        return scanned

    # --- the mempool -------------------------------------------------------------------------------
    def sync_mempool(self, mempool_txs: Iterable[Tx]) -> None:
        """Note unconfirmed txs that touch us; forget others' pending txs the mempool dropped."""
        seen: set[bytes] = set()
        with self.store.batch():
            for tx in mempool_txs:
                seen.add(tx.txid)
                if tx.txid in self._txs:
                    wtx = self._txs[tx.txid]
                    if wtx.state == CONFLICTED:
                        self._put(replace(wtx, state=PENDING))
                    continue
                if self.is_relevant(tx):
                    self.add_tx(tx, from_me=False)
            for wtx in list(self._txs.values()):
                if wtx.state == PENDING and not wtx.from_me and wtx.txid not in seen:
                    self._unindex_spends(wtx.tx)
                    del self._txs[wtx.txid]
                    self.store.delete_tx(wtx.txid)

    def add_tx(self, tx: Tx, *, from_me: bool, fee: int | None = None) -> WalletTx:
        """Record an unconfirmed tx (our own send after the mempool took it, or a receipt)."""
        old = self._txs.get(tx.txid)
        if old is not None and old.state == CONFIRMED:
            return old
        wtx = WalletTx(tx, PENDING, None, None, None, old.time_received if old else int(self._now()),
                       from_me or (old.from_me if old else False), fee if fee is not None else (old.fee if old else None),
                       old.seq if old else self._next_seq())
        with self.store.batch():
            # our pending spends beat older pending spends of the same coins (full RBF)
            if not tx.is_coinbase():
                for txin in tx.vin:
                    for other in list(self._spent_by.get(txin.prevout, ())):
                        if other != tx.txid and self._txs[other].state == PENDING:
                            self._mark_conflicted(other)
            self._put(wtx)
            self._mark_outputs_used(tx)
        return wtx

    def add_confirmed_tx(self, tx: Tx, block_hash: bytes, height: int, block_time: int) -> WalletTx:
        """Record a tx found by a rescan (importprivkey) as confirmed at `height`."""
        old = self._txs.get(tx.txid)
        wtx = WalletTx(tx, CONFIRMED, block_hash, height, block_time,
                       old.time_received if old else int(self._now()), old.from_me if old else False,
                       old.fee if old else None, old.seq if old else self._next_seq())
        with self.store.batch():
            self._put(wtx)
            self._mark_outputs_used(tx)
        return wtx

    def rescan(self, chainstate, start_height: int) -> int:
        """Core `CWallet::ScanForWalletTransactions` over the active chain from `start_height` up
        to the wallet's tip (after an import): every tx that pays one of our scripts or spends
        one of our coins is recorded as confirmed in its block, in chain order, so the spends of
        coins found earlier in the scan are found too. Writer thread. Returns blocks scanned."""
        scanned = 0
        top = min(self.tip_height, chainstate.tip.height)
        for h in range(max(0, start_height), top + 1):
            bhash = chainstate.get_block_hash(h)
            block = chainstate.get_block(bhash) if bhash is not None else None
            if block is None:
                continue
            scanned += 1
            if not self._block_touches_us(block):
                continue
            with self.store.batch():
                for tx in block.txs:
                    if not self.is_relevant(tx):
                        continue
                    old = self._txs.get(tx.txid)
                    if old is not None and old.state == CONFIRMED:
                        continue
                    self._put(WalletTx(tx, CONFIRMED, bhash, h, block.header.time,
                                       old.time_received if old else int(self._now()),
                                       old.from_me if old else False, old.fee if old else None,
                                       old.seq if old else self._next_seq()))
                    self._mark_outputs_used(tx)
        return scanned

    def pending_own_txs(self) -> list[Tx]:
        """Our sends not yet in a block, oldest first (to rebroadcast, Core `ResendWalletTransactions`)."""
        return [w.tx for w in sorted(self._txs.values(), key=lambda w: w.seq)
                if w.state == PENDING and w.from_me]

    def mark_conflicted(self, txid: bytes) -> None:
        with self.store.batch():
            self._mark_conflicted(txid)

    # --- queries -----------------------------------------------------------------------------------
    def confirmations(self, wtx: WalletTx) -> int:
        if wtx.state == CONFIRMED and wtx.height is not None:
            return self.tip_height - wtx.height + 1
        return 0 if wtx.state == PENDING else -1

    def get_tx(self, txid: bytes) -> WalletTx | None:
        return self._txs.get(txid)

    @property
    def tx_count(self) -> int:
        return len(self._txs)

    def transactions(self) -> list[WalletTx]:
        return sorted(self._txs.values(), key=lambda w: w.seq)

    def _trusted(self, wtx: WalletTx) -> bool:
        """Core `CachedTxIsTrusted`: confirmed, or unconfirmed and spending our own coins."""
        if wtx.state == CONFIRMED:
            return True
        if wtx.state != PENDING:
            return False
        return wtx.from_me or (not wtx.tx.is_coinbase()
                               and any(self.is_mine_output(i.prevout) for i in wtx.tx.vin))

    def coins(self, *, include_immature: bool = True, include_untrusted: bool = True) -> list[WalletCoin]:
        """Our unspent outputs (spent = spent by any non-conflicted tx we know)."""
        out = []
        maturity = self.params.coinbase_maturity
        for wtx in self._txs.values():
            if wtx.state == CONFLICTED:
                continue
            conf = self.confirmations(wtx)
            cb = wtx.tx.is_coinbase()
            mature = not cb or conf >= maturity + 1
            trusted = self._trusted(wtx)
            if not mature and not include_immature:
                continue
            if not trusted and not include_untrusted:
                continue
            for n, o in enumerate(wtx.tx.vout):
                if not self.keys.is_mine(o.script_pubkey):
                    continue
                op = OutPoint(wtx.txid, n)
                if op in self._spent_by:
                    continue
                out.append(WalletCoin(op, o.value, o.script_pubkey, conf, cb, trusted, mature,
                                      self.keys.address_or_none(o.script_pubkey)))
        return out

    def balances(self, minconf: int = 0) -> Balances:
        """Core `GetBalance`: trusted (≥ minconf, our own change counts at 0), pending, immature."""
        trusted = pending = immature = 0
        for c in self.coins():
            if not c.mature:
                immature += c.value
            elif c.trusted:
                if c.confirmations >= minconf:
                    trusted += c.value
            else:
                pending += c.value
        return Balances(trusted, pending, immature)

    def tx_amounts(self, wtx: WalletTx) -> tuple[int, int, int]:
        """(credit, debit, fee paid if from us else 0), satoshis (Core `GetCredit`/`GetDebit`)."""
        credit = sum(o.value for o in wtx.tx.vout if self.keys.is_mine(o.script_pubkey))
        debit = 0
        if not wtx.tx.is_coinbase():
            for txin in wtx.tx.vin:
                out = self.is_mine_output(txin.prevout)
                if out is not None:
                    debit += out.value
        fee = 0
        if debit > 0:
            fee = debit - sum(o.value for o in wtx.tx.vout)
            if fee < 0:  # spent coins that are not all ours: we cannot know the fee
                fee = wtx.fee or 0
        return credit, debit, fee

    # --- sending -----------------------------------------------------------------------------------
    def transaction_change_type(self, outputs: Sequence[tuple[bytes, int]],
                                change_type: str | None = None) -> str:
        """Core `CWallet::TransactionChangeType`: the change output's type for a send to `outputs`.

        An explicit type (the RPC's change_type, else -changetype) wins; a legacy wallet
        (-addresstype legacy) makes legacy change; else the change looks like a recipient: any
        P2TR recipient → bech32m, else any P2WPKH → bech32, else any P2SH → p2sh-segwit, else
        any P2PKH → legacy; else bech32m, the newest type this wallet can make (Core: "if
        has_bech32m_spkman")."""
        if change_type is not None:
            return change_type
        if self.change_type_option is not None:
            return self.change_type_option
        if self.address_type == LEGACY:
            return LEGACY
        kinds = set()
        for spk, _ in outputs:
            if len(spk) == 34 and spk[0] == 0x51 and spk[1] == 32:
                kinds.add(BECH32M)
            elif len(spk) == 22 and spk[0] == 0 and spk[1] == 20:
                kinds.add(BECH32)
            elif len(spk) == 23 and spk[:2] == b"\xa9\x14" and spk[22] == 0x87:
                kinds.add(P2SH_SEGWIT)
            elif len(spk) == 25 and spk[:3] == b"\x76\xa9\x14" and spk[23:] == b"\x88\xac":
                kinds.add(LEGACY)
        for t in (BECH32M, BECH32, P2SH_SEGWIT, LEGACY):
            if t in kinds:
                return t
        return BECH32M

    def create_transaction(self, outputs: Sequence[tuple[bytes, int]], *,
                           fee_rate: int = DEFAULT_FEE_RATE, subtract_fee_from: Sequence[int] = (),
                           from_script: bytes | None = None, min_conf: int = 0,
                           change_type: str | None = None) -> CreatedTx:
        """Build and sign a send (Core `CreateTransaction`); nothing is recorded until `add_tx`.

        `outputs` are (script_pubkey, satoshis); `fee_rate` is sat per 1000 bytes;
        `subtract_fee_from` lists output indexes that pay the fee; `from_script` spends only
        that script's coins and returns change to it; otherwise the change is of
        `transaction_change_type(outputs, change_type)`. Raises WalletError / InsufficientFunds.
        """
        if not outputs:
            raise WalletError("Transaction must have at least one recipient")
        if fee_rate < 0:
            raise WalletError("Fee rate must not be negative")
        for spk, value in outputs:
            if spk[:1] == b"\x6a":      # OP_RETURN data carrier: zero value is the norm
                if value < 0:
                    raise WalletError("Transaction amounts must not be negative")
                continue
            if value <= 0:
                raise WalletError("Transaction amounts must be positive")
            if value < dust_threshold(TxOut(value, spk)):
                raise WalletError("Transaction amount too small")
        subtract = sorted(set(subtract_fee_from))
        if any(i < 0 or i >= len(outputs) for i in subtract):
            raise WalletError("Subtract fee from an output that does not exist")
        if from_script is not None and not self.keys.is_mine(from_script):
            raise WalletError("The --from address is not in this wallet")
        candidates = []
        for c in self.coins(include_immature=False, include_untrusted=False):
            if from_script is not None and c.script_pubkey != from_script:
                continue
            if c.confirmations < min_conf:
                continue
            candidates.append(Candidate(c.outpoint, c.value, c.script_pubkey, c.confirmations,
                                        *self._input_estimate(c.script_pubkey)))
        target = sum(v for _, v in outputs)
        if target <= 0:
            raise WalletError("Transaction must pay something besides data")
        base_size = TX_OVERHEAD + sum(9 + len(spk) for spk, _ in outputs)
        change_spk = from_script  # decided below; a fresh change key only when change is made
        # the change output's shape (size, dust) before its key is taken: -changetype's script
        change_kind = self.transaction_change_type(outputs, change_type)
        if change_kind not in (LEGACY, P2SH_SEGWIT, BECH32, BECH32M):
            raise WalletError(f"Error: No {change_kind} addresses available.")
        change_shape = from_script if from_script is not None else script_shape(change_kind)
        sel = select_coins(candidates, target, fee_rate, base_size,
                           change_size=9 + len(change_shape),
                           min_change=dust_threshold(TxOut(0, change_shape)),
                           subtract_fee=bool(subtract))
        values = [v for _, v in outputs]
        if subtract:
            size_fee = fee_for_size(sel.size, fee_rate)
            share, rest = divmod(size_fee, len(subtract))
            for k, i in enumerate(subtract):
                values[i] -= share + (rest if k == 0 else 0)
                if values[i] < dust_threshold(TxOut(values[i], outputs[i][0])):
                    raise WalletError("The transaction amount is too small to pay the fee")
        vout = [TxOut(v, spk) for (spk, _), v in zip(outputs, values)]
        change_index = None
        if sel.change:
            if change_spk is None:
                change_spk = self.keys.new_change_script(change_kind)
            change_index = secrets.randbelow(len(vout) + 1)
            vout.insert(change_index, TxOut(sel.change, change_spk))
        inputs = list(sel.inputs)
        unsigned = Tx(2, tuple(TxIn(c.outpoint, b"", WALLET_SEQUENCE) for c in inputs), tuple(vout), 0)
        tx = self.sign_inputs(unsigned, [TxOut(c.value, c.script_pubkey) for c in inputs])
        fee = sel.total_in - sum(o.value for o in tx.vout)
        return CreatedTx(tx, fee, change_index, tuple(values))

    def _input_estimate(self, script_pubkey: bytes) -> tuple[int, bool]:
        """(estimated signed input vsize, spent with a witness) for one of our scripts (Core
        `CalculateMaximumSignedInputSize` with the dummy signer)."""
        t = self.keys.address_type(script_pubkey)
        if t == BECH32:
            return P2WPKH_INPUT_SIZE, True
        if t == BECH32M:
            return P2TR_INPUT_SIZE, True
        if t == P2SH_SEGWIT:
            return P2WPKH_INPUT_SIZE + 23, True     # + the 23-byte redeem script push
        key = self.keys.private_key(script_pubkey)
        return (P2PKH_INPUT_SIZE if key.compressed else P2PKH_INPUT_SIZE_UNCOMPRESSED), False

    def sign_inputs(self, tx: Tx, spent: Sequence[TxOut]) -> Tx:
        """Sign every input of `tx` (SIGHASH_ALL) spending `spent[i]`, all ours (Core
        `CWallet::SignTransaction`): P2PKH with the legacy sighash into the scriptSig, P2WPKH
        with the BIP143 sighash over the spent amount into the witness `[sig, pubkey]` with an
        empty scriptSig, P2TR by the key path (BIP86 output key: the key tweaked with no script
        tree) with a 64-byte Schnorr signature (Core's all-zero aux), SIGHASH_DEFAULT, over the BIP341 sighash, which
        commits to every spent output of the tx, ours of any type (Core `SignTransaction` fills
        `PrecomputedTransactionData` with all spent outputs). One PrecomputedTxData, made with
        all of `spent`, serves all witness inputs."""
        txdata = None
        vin = []
        for i, (txin, out) in enumerate(zip(tx.vin, spent)):
            key = self.keys.private_key(out.script_pubkey)
            if key is None:
                raise WalletError("Signing transaction failed: an input is not this wallet's")
            t = self.keys.address_type(out.script_pubkey)
            if t in (BECH32, BECH32M, P2SH_SEGWIT):
                if txdata is None:
                    txdata = PrecomputedTxData.for_tx(tx, spent)
                script_sig = b""
                if t == BECH32M:
                    witness = sign_p2tr_keypath(tx, i, key, txdata, aux=ZERO_AUX)
                else:
                    witness = sign_p2wpkh(tx, i, key, out.value, SIGHASH_ALL, txdata)
                    if t == P2SH_SEGWIT:    # BIP141 P2SH-P2WPKH: the scriptSig pushes the P2WPKH script
                        script_sig = core_push(self.keys.redeem_script(out.script_pubkey))
                vin.append(TxIn(txin.prevout, script_sig, txin.sequence, witness))
            elif t == PK:
                vin.append(TxIn(txin.prevout, sign_p2pk(tx, i, key, out.script_pubkey), txin.sequence))
            else:
                vin.append(TxIn(txin.prevout, sign_p2pkh(tx, i, key, out.script_pubkey), txin.sequence))
        return replace(tx, vin=tuple(vin))
