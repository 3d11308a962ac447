"""Transaction rules (Core consensus/tx_check.cpp, consensus/tx_verify.cpp).

- `check_transaction(tx)`                     context-free (Core `CheckTransaction`)
- `check_tx_inputs(tx, get_coin, h, params)`  amounts + coinbase maturity (Core `CheckTxInputs`) → fee
- `is_final_tx(tx, height, cutoff)`           nLockTime (Core `IsFinalTx`)
- `sequence_locks` / `sequence_locks_satisfied`   BIP68 relative lock-time (Core `CalculateSequenceLocks`,
                                              `EvaluateSequenceLocks`)
- `legacy_sigops(tx)` / `p2sh_sigops(tx, coins)`  (Core `GetLegacySigOpCount`, `GetP2SHSigOpCount`)
- `check_input_script(tx, i, spk, flags, reason, amount, txdata)`  one input (Core `CScriptCheck`)
- `check_input_scripts(tx, coins, flags)`     every input's script (Core `CheckInputScripts`)
- `precomputed_tx_data(tx, coins)`            the tx's BIP143 hashes (Core `PrecomputedTransactionData`)
"""

from __future__ import annotations

from typing import Callable, Sequence

from ..params import ChainParams
from ..script.interpreter import ScriptError, verify_script
from ..primitives.coin import Coin
from ..primitives.hashes import ZERO_HASH
from ..primitives.tx import MAX_MONEY, SEQUENCE_FINAL, OutPoint, Tx, TxOut
from ..script.script import legacy_sigop_count
from ..script.sighash import PrecomputedTxData
from .errors import RejectReason, ValidationError

__all__ = [
    "check_transaction", "check_tx_inputs", "check_tx_input_coins", "format_money", "is_final_tx",
    "sequence_locks", "sequence_locks_satisfied", "legacy_sigops", "p2sh_sigops",
    "check_input_script", "check_input_scripts", "precomputed_tx_data", "LOCKTIME_THRESHOLD", "MAX_TX_SIZE",
    "SEQUENCE_LOCKTIME_DISABLE_FLAG", "SEQUENCE_LOCKTIME_TYPE_FLAG", "SEQUENCE_LOCKTIME_MASK",
]

LOCKTIME_THRESHOLD = 500_000_000          # below: a height; at or above: a unix time
MAX_TX_SIZE = 1_000_000                   # stripped size: Core MAX_BLOCK_WEIGHT / WITNESS_SCALE_FACTOR
SEQUENCE_LOCKTIME_DISABLE_FLAG = 1 << 31
SEQUENCE_LOCKTIME_TYPE_FLAG = 1 << 22
SEQUENCE_LOCKTIME_MASK = 0x0000FFFF
SEQUENCE_LOCKTIME_GRANULARITY = 9

R = RejectReason


def check_transaction(tx: Tx) -> None:
    """Context-free checks (Core `CheckTransaction`). Raises ValidationError.

    The size rule is on the stripped size (no witness) × 4 against the block weight limit."""
    vin, vout = tx.vin, tx.vout
    if not vin:
        raise ValidationError(R.BAD_TXNS_VIN_EMPTY)
    if not vout:
        raise ValidationError(R.BAD_TXNS_VOUT_EMPTY)
    if tx.base_size > MAX_TX_SIZE:
        raise ValidationError(R.BAD_TXNS_OVERSIZE)
    total = 0
    for out in vout:
        v = out.value
        if v < 0:
            raise ValidationError(R.BAD_TXNS_VOUT_NEGATIVE)
        if v > MAX_MONEY:
            raise ValidationError(R.BAD_TXNS_VOUT_TOOLARGE)
        total += v
        if total > MAX_MONEY:
            raise ValidationError(R.BAD_TXNS_TXOUTTOTAL_TOOLARGE)
    if len(vin) == 1:
        # one input: a coinbase exactly when its prevout is null (Tx.is_coinbase, inlined),
        # and then no other input can be null
        po = vin[0].prevout
        if po.n == 0xFFFFFFFF and po.txid == ZERO_HASH:
            n = len(vin[0].script_sig)
            if n < 2 or n > 100:
                raise ValidationError(R.BAD_CB_LENGTH)
        return
    # (the outpoints as (txid, n) pairs: a tuple hashes in C, a frozen dataclass in Python)
    seen = {(i.prevout.txid, i.prevout.n) for i in vin}
    if len(seen) != len(vin):
        raise ValidationError(R.BAD_TXNS_INPUTS_DUPLICATE)
    if (ZERO_HASH, 0xFFFFFFFF) in seen:
        raise ValidationError(R.BAD_TXNS_PREVOUT_NULL)


def check_tx_inputs(tx: Tx, get_coin: Callable[[OutPoint], Coin | None], spend_height: int,
                    params: ChainParams) -> int:
    """Core `CheckTxInputs`: inputs exist, coinbases mature, amounts in range. Returns the fee."""
    coins = []
    for txin in tx.vin:
        c = get_coin(txin.prevout)
        if c is None:
            raise ValidationError(R.BAD_TXNS_INPUTS_MISSINGORSPENT, "CheckTxInputs: inputs missing/spent")
        coins.append(c)
    return check_tx_input_coins(tx, coins, spend_height, params.coinbase_maturity)


def format_money(amount: int) -> str:
    """Core `FormatMoney`: satoshis as coins with 8 decimals, trailing zeros dropped down to two
    decimals ("1.00", "0.1234", "-0.50")."""
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(amount), 100_000_000)
    digits = f"{frac:08d}".rstrip("0").ljust(2, "0")
    return f"{sign}{whole}.{digits}"


def check_tx_input_coins(tx: Tx, coins: Sequence[Coin], spend_height: int, maturity: int) -> int:
    """The part of `CheckTxInputs` after the coins are found (one Coin per input). Returns the fee."""
    value_in = 0
    for c in coins:
        if c.is_coinbase and spend_height - c.height < maturity:
            raise ValidationError(R.BAD_TXNS_PREMATURE_SPEND_OF_COINBASE,
                                  f"tried to spend coinbase at depth {spend_height - c.height}")
        v = c.value
        value_in += v
        if v < 0 or v > MAX_MONEY or value_in > MAX_MONEY:
            raise ValidationError(R.BAD_TXNS_INPUTVALUES_OUTOFRANGE)
    value_out = 0
    for o in tx.vout:
        value_out += o.value
    if value_in < value_out:
        raise ValidationError(R.BAD_TXNS_IN_BELOWOUT,
                              f"value in ({format_money(value_in)}) < value out ({format_money(value_out)})")
    fee = value_in - value_out
    if fee < 0 or fee > MAX_MONEY:
        raise ValidationError(R.BAD_TXNS_FEE_OUTOFRANGE)
    return fee


def is_final_tx(tx: Tx, height: int, lock_time_cutoff: int) -> bool:
    """Core `IsFinalTx`: locktime 0, or below the height/time limit, or every input sequence final."""
    lt = tx.locktime
    if lt == 0:
        return True
    if lt < (height if lt < LOCKTIME_THRESHOLD else lock_time_cutoff):
        return True
    for txin in tx.vin:
        if txin.sequence != SEQUENCE_FINAL:
            return False
    return True


def enforces_bip68(tx: Tx) -> bool:
    """BIP68 applies to version >= 2 read as *unsigned* (Core `CalculateSequenceLocks`:
    `tx.version >= 2` on the uint32 `CTransaction::version`): 0x80000000..0xffffffff count too."""
    return tx.version & 0xFFFFFFFF >= 2


def sequence_locks(tx: Tx, prev_heights: Sequence[int],
                   mtp_at_height: Callable[[int], int]) -> tuple[int, int]:
    """BIP68 lock pair (min_height, min_time) (Core `CalculateSequenceLocks`, BIP68 enforced).

    `prev_heights[i]` is the height of the coin spent by input i; `mtp_at_height(h)` is the
    median time past of the block at height h on the chain the tx is checked against. The
    pair holds the last *invalid* height/time, -1 = none.
    """
    min_height = -1
    min_time = -1
    if not enforces_bip68(tx):
        return min_height, min_time
    for txin, coin_height in zip(tx.vin, prev_heights):
        seq = txin.sequence
        if seq & SEQUENCE_LOCKTIME_DISABLE_FLAG:
            continue
        if seq & SEQUENCE_LOCKTIME_TYPE_FLAG:
            coin_time = mtp_at_height(max(coin_height - 1, 0))
            t = coin_time + ((seq & SEQUENCE_LOCKTIME_MASK) << SEQUENCE_LOCKTIME_GRANULARITY) - 1
            if t > min_time:
                min_time = t
        else:
            h = coin_height + (seq & SEQUENCE_LOCKTIME_MASK) - 1
            if h > min_height:
                min_height = h
    return min_height, min_time


def sequence_locks_satisfied(lock: tuple[int, int], height: int, prev_mtp: int) -> bool:
    """Core `EvaluateSequenceLocks`: `height` of the block the tx goes in, `prev_mtp` = MTP of its parent."""
    return lock[0] < height and lock[1] < prev_mtp


def legacy_sigops(tx: Tx) -> int:
    """Core `GetLegacySigOpCount`: inaccurate count over scriptSigs and output scripts. The
    common scripts are counted inline: a scriptSig of two direct pushes (P2PKH's `<sig>
    <pubkey>`) has none, a P2PKH output script one; the others go to `legacy_sigop_count`."""
    n = 0
    for txin in tx.vin:
        s = txin.script_sig
        if s:
            ln = len(s)
            a = s[0]
            if 1 <= a <= 75 and a + 1 < ln:
                b = s[a + 1]
                if 1 <= b <= 75 and a + 2 + b == ln:
                    continue
            n += legacy_sigop_count(s, False)
    for out in tx.vout:
        s = out.script_pubkey
        if (len(s) == 25 and s[0] == 0x76 and s[1] == 0xA9 and s[2] == 0x14 and s[23] == 0x88
                and s[24] == 0xAC):
            n += 1
        else:
            n += legacy_sigop_count(s, False)
    return n


def p2sh_sigops(tx: Tx, coins: Sequence[Coin]) -> int:
    """Core `GetP2SHSigOpCount`: accurate sigops of each P2SH redeem script spent by `tx`."""
    if tx.is_coinbase():
        return 0
    n = 0
    p2sh_sigop_count = None
    for txin, coin in zip(tx.vin, coins):
        spk = coin.script_pubkey
        # P2SH: OP_HASH160 <20> OP_EQUAL
        if len(spk) == 23 and spk[0] == 0xA9 and spk[1] == 0x14 and spk[22] == 0x87:
            if p2sh_sigop_count is None:
                from ..script.script import p2sh_sigop_count
            n += p2sh_sigop_count(txin.script_sig, spk)
    return n


def check_input_script(tx: Tx, input_index: int, script_pubkey: bytes, flags: int,
                       reason_prefix: str | RejectReason = R.BLOCK_SCRIPT_VERIFY_FLAG_FAILED,
                       amount: int = 0, txdata: PrecomputedTxData | None = None) -> None:
    """Core `CScriptCheck::operator()`: verify one input's scriptSig (and witness) against the
    script of the coin it spends, whose value is `amount` (BIP143 signs it); `txdata` is the
    tx's `PrecomputedTxData`, shared by its inputs. Raises ValidationError(reason_prefix,
    detail=<Core script error name>).

    Reads only its arguments (immutable values), so checks may run on several threads at once
    (`chain/checkqueue.py`)."""
    try:
        verify_script(tx.vin[input_index].script_sig, script_pubkey, tx, input_index, flags,
                      amount, None, txdata)
    except ScriptError as e:
        code = getattr(e, "code", None) or str(e)
        raise ValidationError(RejectReason(reason_prefix), str(code)) from e


def precomputed_tx_data(tx: Tx, coins: Sequence[Coin]) -> PrecomputedTxData | None:
    """Core `PrecomputedTransactionData::Init`: the BIP143 hashes, computed once per tx and only
    when some input has a witness (no witness v0 signature can be checked otherwise)."""
    if not tx.has_witness():
        return None
    return PrecomputedTxData.for_tx(tx, [TxOut(c.value, c.script_pubkey) for c in coins], force=False)


def check_input_scripts(tx: Tx, coins: Sequence[Coin], flags: int,
                        reason_prefix: str | RejectReason = R.BLOCK_SCRIPT_VERIFY_FLAG_FAILED,
                        txdata: PrecomputedTxData | None = None) -> None:
    """Core `CheckInputScripts`: verify every input against the coin it spends (its script and
    amount), with one `PrecomputedTxData` for the tx (made here unless given).

    Raises ValidationError(reason_prefix, detail=<Core script error name>) on the first failure.
    """
    if txdata is None:
        txdata = precomputed_tx_data(tx, coins)
    for i, coin in enumerate(coins):
        check_input_script(tx, i, coin.script_pubkey, flags, reason_prefix, coin.value, txdata)
