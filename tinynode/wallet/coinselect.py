"""Coin selection: which coins pay for a send, the fee, and whether there is change.

Pure functions over candidate coins (no keys, no chain). The shape follows Bitcoin Core's
wallet (src/wallet/spend.cpp) in miniature:

- eligibility passes: confirmed coins first, then the wallet's own unconfirmed change too
  (Core's `CoinEligibilityFilter` steps);
- within a pass, the single smallest coin that covers the send with a useful change output,
  else the smallest coin that covers it with no change, else largest-first accumulation;
- change below `min_change` (the dust threshold) is never made: that excess goes to the fee
  (Core's "dust change is added to the fee");
- fee = ceil(fee rate × estimated virtual size). Sizes are Core's wallet estimates made with its
  dummy signer (`DUMMY_SIGNATURE_CREATOR`: a 72-byte signature with its hash type, the most a
  low-S DER signature takes): a P2PKH input with a compressed key is 148 bytes; a P2WPKH input is
  41 bytes plus a 108-weight-unit witness (count, signature, 33-byte key) = 272 WU = 68 vbytes;
  a P2TR key path input is 41 bytes plus a 66-WU witness (count, 64-byte Schnorr signature with
  SIGHASH_DEFAULT, Core's dummy Schnorr signature) = 230 WU = 57.5 vbytes, which Core's
  `CalculateMaximumSignedInputSize` (`GetVirtualTransactionInputSize`) rounds up to 58;
  a transaction with any witness input also carries the 2-WU marker and flag, which rounds its
  virtual size up by one (Core `CalculateMaximumSignedTxSize` rounds the weight up to vbytes).
  A real signature is 71 or 72 bytes, so the signed tx is at most 1 vbyte under the estimate
  per legacy input and under a vbyte for witness inputs.

Fee rates are integers in satoshis per 1000 virtual bytes (Core's `CFeeRate`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ..primitives.tx import OutPoint

__all__ = [
    "Candidate", "Selection", "InsufficientFunds", "select_coins", "fee_for_size",
    "P2PKH_INPUT_SIZE", "P2PKH_INPUT_SIZE_UNCOMPRESSED", "P2PKH_OUTPUT_SIZE", "TX_OVERHEAD",
    "P2WPKH_INPUT_SIZE", "P2WPKH_OUTPUT_SIZE", "P2TR_INPUT_SIZE", "P2TR_OUTPUT_SIZE", "WITNESS_OVERHEAD", "DUST_THRESHOLD", "dust_threshold",
]

P2PKH_INPUT_SIZE = 148               # 36 outpoint + 1 len + 107 scriptSig (72 sig+1, 33 key+1) + 4 seq
P2PKH_INPUT_SIZE_UNCOMPRESSED = 180
P2PKH_OUTPUT_SIZE = 34               # 8 value + 1 len + 25 script
#: 41 non-witness bytes (36 outpoint, empty scriptSig, 4 sequence) + witness (1 count + 73 sig
#: + 34 key = 108 WU) / 4 = 68 vbytes (Core's P2WPKH input estimate).
P2WPKH_INPUT_SIZE = 68
P2WPKH_OUTPUT_SIZE = 31              # 8 value + 1 len + 22 script
#: 41 non-witness bytes + witness (1 count + 1 len + 64 signature = 66 WU) / 4 = 57.5 vbytes,
#: rounded up as Core's `GetVirtualTransactionInputSize` does (P2TR key path, SIGHASH_DEFAULT).
P2TR_INPUT_SIZE = 58
P2TR_OUTPUT_SIZE = 43                # 8 value + 1 len + 34 script
#: Marker + flag: 2 WU, one vbyte once the tx's weight is rounded up.
WITNESS_OVERHEAD = 1
TX_OVERHEAD = 10                     # version 4 + locktime 4 + in/out counts (1 each up to 252)
#: Core's dust threshold for a P2PKH output at the default dust relay fee (3 sat/vB).
DUST_THRESHOLD = 546


def dust_threshold(script_len: int, dust_relay_fee_kvb: int = 3000) -> int:
    """Core's `GetDustThreshold` for a non-witness output: (output size + 148) × dust fee rate."""
    out_size = 8 + 1 + script_len
    return (out_size + 148) * dust_relay_fee_kvb // 1000


def fee_for_size(size: int, fee_rate_kvb: int) -> int:
    """Fee in satoshis for `size` bytes at `fee_rate_kvb` sat/kB, rounded up (never under-pays)."""
    return -(-size * fee_rate_kvb // 1000)


class InsufficientFunds(Exception):
    """The candidates cannot pay the amount plus the fee."""


@dataclass(frozen=True, slots=True)
class Candidate:
    outpoint: OutPoint
    value: int
    script_pubkey: bytes
    confirmations: int                 # 0 = unconfirmed (own change)
    input_size: int = P2PKH_INPUT_SIZE  # estimated signed size in vbytes
    witness: bool = False               # spent with a witness (P2WPKH, P2TR)


@dataclass(frozen=True, slots=True)
class Selection:
    inputs: tuple[Candidate, ...]
    fee: int            # what the transaction pays (includes dust change dropped into the fee)
    change: int         # 0 = no change output
    size: int           # estimated virtual size (with the change output when there is one)

    @property
    def total_in(self) -> int:
        return sum(c.value for c in self.inputs)


def _try(coins: Sequence[Candidate], target: int, fee_rate: int, base_size: int, change_size: int,
         min_change: int, subtract_fee: bool) -> Selection | None:
    """Evaluate one set of inputs; a Selection when they pay, None when they fall short."""
    total = sum(c.value for c in coins)
    in_size = sum(c.input_size for c in coins)
    if any(c.witness for c in coins):
        in_size += WITNESS_OVERHEAD
    size_nochange = base_size + in_size
    size_change = size_nochange + change_size
    fee_nochange = fee_for_size(size_nochange, fee_rate)
    fee_change = fee_for_size(size_change, fee_rate)
    if subtract_fee:
        # the recipients pay the fee: inputs only need to cover `target`
        if total < target:
            return None
        change = total - target
        if change >= min_change:
            return Selection(tuple(coins), fee_change, change, size_change)
        return Selection(tuple(coins), fee_nochange + change, 0, size_nochange)
    if total < target + fee_nochange:
        return None
    change = total - target - fee_change
    if change >= min_change:
        return Selection(tuple(coins), fee_change, change, size_change)
    return Selection(tuple(coins), total - target, 0, size_nochange)


def select_coins(candidates: Sequence[Candidate], target: int, fee_rate_kvb: int, base_size: int,
                 *, change_size: int = P2PKH_OUTPUT_SIZE, min_change: int = DUST_THRESHOLD,
                 subtract_fee: bool = False) -> Selection:
    """Pick inputs paying `target` satoshis (plus the fee unless `subtract_fee`).

    `base_size` is the size of the transaction without inputs and without change (overhead and
    the recipients' outputs). Raises InsufficientFunds.
    """
    if target <= 0:
        raise ValueError("target must be positive")
    confirmed = [c for c in candidates if c.confirmations > 0]
    passes = [confirmed, list(candidates)] if len(confirmed) < len(candidates) else [confirmed]
    for pool in passes:
        if not pool:
            continue
        # 1. one coin: the smallest that pays with useful change, else the smallest with no change
        by_value = sorted(pool, key=lambda c: (c.value, -c.confirmations))
        best_nochange: Selection | None = None
        for c in by_value:
            sel = _try([c], target, fee_rate_kvb, base_size, change_size, min_change, subtract_fee)
            if sel is None:
                continue
            if sel.change:
                # a no-change single coin that wastes little beats making change
                if best_nochange is not None:
                    return best_nochange
                return sel
            if best_nochange is None:
                best_nochange = sel
        if best_nochange is not None:
            return best_nochange
        # 2. largest first until it pays
        chosen: list[Candidate] = []
        for c in sorted(pool, key=lambda c: (-c.value, -c.confirmations)):
            chosen.append(c)
            sel = _try(chosen, target, fee_rate_kvb, base_size, change_size, min_change, subtract_fee)
            if sel is not None:
                # drop the smallest inputs that turned out not to be needed
                for extra in sorted(chosen[:-1], key=lambda x: x.value):
                    trial = [x for x in chosen if x is not extra]
                    t = _try(trial, target, fee_rate_kvb, base_size, change_size, min_change, subtract_fee)
                    if t is not None:
                        chosen, sel = trial, t
                return sel
    raise InsufficientFunds("Insufficient funds")
