"""Consensus and policy errors with Bitcoin Core's reject strings.

Three families, never mixed (STYLE.md §8.4):

- `ValidationError` — the data is invalid by consensus (the sender's fault). `reason` is a
  `RejectReason` (Core's `reject_reason` string); `detail` is free text for logs. A block error
  with `mutated=True` mirrors Core's `BLOCK_MUTATED`: the block's bytes do not match what its
  header commits to (bad merkle root, duplicated txs, witnesses not matching the coinbase's
  witness commitment or present without one), so the header hash must NOT be marked
  invalid — the genuine block can still arrive.
- `PolicyError` — valid but non-standard (mempool policy). `reason` is a plain Core string.
- anything else — our bug or I/O; it propagates.

Two reasons are formatted as Core formats them; `ValidationError.reject_string` gives the full
text: `bad-version(0x00000001)` (detail = the version in hex) and
`block-script-verify-flag-failed (<script error sentence>)` / `mandatory-script-verify-flag-failed (...)`
(detail = the script error name, e.g. EVAL_FALSE; Core's ScriptErrorString gives the sentence).
Tests compare `err.reason` with the enum member (`err.reason == RejectReason.HIGH_HASH`).
"""

from __future__ import annotations

from enum import Enum

from ..script.interpreter import script_error_string

__all__ = ["RejectReason", "ValidationError", "PolicyError", "state_string"]


class RejectReason(str, Enum):
    """Bitcoin Core's reject reasons (validation.cpp, tx_check.cpp, tx_verify.cpp)."""

    # --- headers (CheckBlockHeader / ContextualCheckBlockHeader / AcceptBlockHeader) ---
    HIGH_HASH = "high-hash"
    BAD_DIFFBITS = "bad-diffbits"
    TIME_TOO_OLD = "time-too-old"
    TIME_TOO_NEW = "time-too-new"
    TIME_TIMEWARP_ATTACK = "time-timewarp-attack"   # BIP94
    BAD_VERSION = "bad-version"            # formatted bad-version(0x%08x): detail is the hex
    BAD_PREVBLK = "bad-prevblk"            # parent known invalid
    PREV_BLK_NOT_FOUND = "prev-blk-not-found"
    DUPLICATE = "duplicate"                # already have it (valid)
    DUPLICATE_INVALID = "duplicate-invalid"  # already have it, known invalid
    INCONCLUSIVE = "inconclusive"
    INCONCLUSIVE_NOT_BEST_PREVBLK = "inconclusive-not-best-prevblk"   # TestBlockValidity
    BAD_GENESIS = "bad-genesis"
    CHECKPOINT_MISMATCH = "checkpoint-mismatch"

    # --- block (CheckBlock / ContextualCheckBlock) ---
    BAD_TXNMRKLROOT = "bad-txnmrklroot"
    BAD_TXNS_DUPLICATE = "bad-txns-duplicate"
    BAD_BLK_LENGTH = "bad-blk-length"
    BAD_BLK_SIGOPS = "bad-blk-sigops"
    BAD_CB_MISSING = "bad-cb-missing"
    BAD_CB_MULTIPLE = "bad-cb-multiple"
    BAD_CB_LENGTH = "bad-cb-length"
    BAD_CB_AMOUNT = "bad-cb-amount"
    BAD_CB_HEIGHT = "bad-cb-height"
    BAD_TXNS_NONFINAL = "bad-txns-nonfinal"
    BAD_BLK_WEIGHT = "bad-blk-weight"
    BAD_WITNESS_NONCE_SIZE = "bad-witness-nonce-size"      # mutated
    BAD_WITNESS_MERKLE_MATCH = "bad-witness-merkle-match"  # mutated
    UNEXPECTED_WITNESS = "unexpected-witness"              # mutated

    # --- ConnectBlock ---
    BAD_TXNS_BIP30 = "bad-txns-BIP30"
    BAD_TXNS_INPUTS_MISSINGORSPENT = "bad-txns-inputs-missingorspent"
    BAD_TXNS_PREMATURE_SPEND_OF_COINBASE = "bad-txns-premature-spend-of-coinbase"
    BAD_TXNS_IN_BELOWOUT = "bad-txns-in-belowout"
    BAD_TXNS_INPUTVALUES_OUTOFRANGE = "bad-txns-inputvalues-outofrange"
    BAD_TXNS_INPUTINTOTAL_TOOLARGE = "bad-txns-inputintotal-toolarge"
    BAD_TXNS_FEE_OUTOFRANGE = "bad-txns-fee-outofrange"
    NON_BIP68_FINAL = "non-BIP68-final"                   # mempool context
    BLOCK_SCRIPT_VERIFY_FLAG_FAILED = "block-script-verify-flag-failed"
    MANDATORY_SCRIPT_VERIFY_FLAG_FAILED = "mandatory-script-verify-flag-failed"
    NON_MANDATORY_SCRIPT_VERIFY_FLAG = "non-mandatory-script-verify-flag"

    # --- CheckTransaction ---
    BAD_TXNS_VIN_EMPTY = "bad-txns-vin-empty"
    BAD_TXNS_VOUT_EMPTY = "bad-txns-vout-empty"
    BAD_TXNS_OVERSIZE = "bad-txns-oversize"
    BAD_TXNS_VOUT_NEGATIVE = "bad-txns-vout-negative"
    BAD_TXNS_VOUT_TOOLARGE = "bad-txns-vout-toolarge"
    BAD_TXNS_TXOUTTOTAL_TOOLARGE = "bad-txns-txouttotal-toolarge"
    BAD_TXNS_INPUTS_DUPLICATE = "bad-txns-inputs-duplicate"
    BAD_TXNS_PREVOUT_NULL = "bad-txns-prevout-null"

    # --- mempool (consensus-ish reasons Core uses at AcceptToMemoryPool) ---
    COINBASE = "coinbase"
    NON_FINAL = "non-final"
    TXN_ALREADY_KNOWN = "txn-already-known"
    TXN_ALREADY_IN_MEMPOOL = "txn-already-in-mempool"
    TXN_MEMPOOL_CONFLICT = "txn-mempool-conflict"
    BAD_TXNS_SPENDS_CONFLICTING_TX = "bad-txns-spends-conflicting-tx"
    MISSING_INPUTS = "missing-inputs"
    BAD_TXNS_TOO_MANY_SIGOPS = "bad-txns-too-many-sigops"

    def __str__(self) -> str:  # so f"{reason}" gives the Core string
        return self.value


class ValidationError(Exception):
    """Consensus failure. `reason` is a `RejectReason`; `mutated` = Core's BLOCK_MUTATED."""

    def __init__(self, reason: RejectReason, detail: str = "", mutated: bool = False) -> None:
        self.reason = RejectReason(reason)
        self.detail = detail
        self.mutated = mutated
        super().__init__(self.reject_string + (f": {detail}" if detail and not self._formatted() else ""))

    def _formatted(self) -> bool:
        return self.reason in (RejectReason.BAD_VERSION, RejectReason.BLOCK_SCRIPT_VERIFY_FLAG_FAILED,
                               RejectReason.MANDATORY_SCRIPT_VERIFY_FLAG_FAILED,
                               RejectReason.NON_MANDATORY_SCRIPT_VERIFY_FLAG)

    @property
    def reject_string(self) -> str:
        """The full string Core puts in `reject_reason` (e.g. `bad-version(0x00000001)`)."""
        r = self.reason
        if r is RejectReason.BAD_VERSION:
            return f"bad-version({self.detail})" if self.detail else r.value
        if self._formatted():  # detail = the script error name; Core prints its sentence
            return f"{r.value} ({script_error_string(self.detail)})" if self.detail else r.value
        return r.value

    @property
    def state_string(self) -> str:
        """Core `ValidationState::ToString`: "reject_reason, debug message" — the text Core's
        log lines carry (`Block validation error: ...`, `AcceptBlock FAILED (...)`)."""
        r = self.reason
        if r is RejectReason.BAD_VERSION and self.detail:
            try:
                v = int(self.detail, 16)
            except ValueError:
                return self.reject_string
            return f"{self.reject_string}, rejected nVersion=0x{v:08x} block"
        if self._formatted() or not self.detail:
            return self.reject_string
        return f"{self.reject_string}, {self.detail}"

    def __repr__(self) -> str:
        return f"ValidationError({self.reason.value!r}, {self.detail!r}, mutated={self.mutated})"


class PolicyError(Exception):
    """Valid by consensus but refused by policy (non-standard, fee too low, ...)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = str(reason)
        self.detail = detail
        super().__init__(self.reason + (f": {detail}" if detail else ""))

    @property
    def state_string(self) -> str:
        """Core `ValidationState::ToString`: "reject_reason, debug message"."""
        return f"{self.reason}, {self.detail}" if self.detail else self.reason

    def __repr__(self) -> str:
        return f"PolicyError({self.reason!r}, {self.detail!r})"


def state_string(err: BaseException | None) -> str:
    """Core's `state.ToString()` for any refusal: "reason, detail" for ValidationError and
    PolicyError (and their subclasses), the exception text otherwise."""
    if err is None:
        return "Valid"
    s = getattr(err, "state_string", None)
    return s if isinstance(s, str) else str(err)
