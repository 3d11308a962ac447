"""Bitcoin Core's script_tests.json, tx_valid.json and tx_invalid.json (every legacy row).

Which rows are legacy comes from tests/data/legacy_subset_index.json (see the README in
/work/shared/vectors/bitcoin-core/): segwit-related rows need witness serialization or
witness/taproot flags, which a legacy node does not have; `test_excluded_rows_are_segwit`
checks that each excluded row really is one.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from tinynode.consensus.errors import ValidationError
from tinynode.consensus.tx_checks import check_transaction
from tinynode.primitives.hashes import ZERO_HASH, hex_to_hash
from tinynode.primitives.serialize import DecodeError
from tinynode.primitives.tx import MAX_MONEY, OutPoint, Tx, TxIn, TxOut
from tinynode.script.flags import ALL_FLAGS, ScriptFlags, format_flags, parse_flags
from tinynode.script.interpreter import ScriptError, verify_script
from tinynode.script.script import parse_core_script
from tests.framework.oracle import verify_script_checked_by_core

DATA = Path(__file__).resolve().parents[1] / "data"
INDEX = json.loads((DATA / "legacy_subset_index.json").read_text())
WITNESS_FLAG_NAMES = {"WITNESS", "WITNESS_PUBKEYTYPE", "DISCOURAGE_UPGRADABLE_WITNESS_PROGRAM",
                      "TAPROOT", "DISCOURAGE_UPGRADABLE_PUBKEYTYPE", "DISCOURAGE_OP_SUCCESS",
                      "DISCOURAGE_UPGRADABLE_TAPROOT_VERSION"}


@pytest.fixture(autouse=True, scope="module")
def _core_checks_every_verify():
    """Every verify_script call of this module also goes to Core's kernel (tests/framework/oracle)."""
    with verify_script_checked_by_core(globals()) as checked:
        yield checked


def _load(name: str) -> list:
    return json.loads((DATA / name).read_text())


def _is_comment(row: list) -> bool:
    return all(isinstance(x, str) for x in row) and len(row) < 4 if isinstance(row, list) else True


# --- script_tests.json -------------------------------------------------------------------------

SCRIPT_ROWS = _load("script_tests.json")
SCRIPT_SEGWIT = set(INDEX["script_tests.json"]["segwit_related"])


def _script_cases() -> list:
    cases = []
    for n, row in enumerate(SCRIPT_ROWS):
        if len(row) < 4 or n in SCRIPT_SEGWIT:
            continue
        assert not isinstance(row[0], list), f"row {n} has a witness but is not excluded"
        sig, spk, flags, expected = row[:4]
        cases.append(pytest.param(n, sig, spk, flags, expected, id=f"row{n}-{expected}"))
    return cases


SCRIPT_CASES = _script_cases()


def _crediting_and_spending(script_sig: bytes, script_pubkey: bytes) -> Tx:
    """Core's BuildCreditingTransaction / BuildSpendingTransaction (amount 0)."""
    credit = Tx(1, (TxIn(OutPoint(ZERO_HASH, 0xFFFFFFFF), b"\x00\x00", 0xFFFFFFFF),),
                (TxOut(0, script_pubkey),), 0)
    return Tx(1, (TxIn(OutPoint(credit.txid, 0), script_sig, 0xFFFFFFFF),), (TxOut(0, b""),), 0)


def _run(script_sig: bytes, script_pubkey: bytes, tx: Tx, flags: int) -> str:
    try:
        verify_script(script_sig, script_pubkey, tx, 0, flags)
    except ScriptError as e:
        return e.code
    return "OK"


def test_script_tests_counts():
    assert [c.values[0] for c in SCRIPT_CASES] == INDEX["script_tests.json"]["legacy"]
    assert len(SCRIPT_CASES) == 1086


def test_excluded_rows_are_segwit():
    for n in sorted(SCRIPT_SEGWIT):
        row = SCRIPT_ROWS[n]
        has_witness = isinstance(row[0], list)
        rest = row[1:] if has_witness else row
        flags = set(rest[2].split(","))
        assert has_witness or flags & WITNESS_FLAG_NAMES or "#TAPROOTOUTPUT#" in rest[1], n


@pytest.mark.parametrize("n,sig,spk,flags_text,expected", SCRIPT_CASES)
def test_script_tests_json(n, sig, spk, flags_text, expected):
    script_sig = parse_core_script(sig)
    script_pubkey = parse_core_script(spk)
    flags = parse_flags(flags_text)
    tx = _crediting_and_spending(script_sig, script_pubkey)
    assert _run(script_sig, script_pubkey, tx, flags) == expected
    # As Core's DoTest: removing flags keeps an OK row OK, adding flags keeps a failing row
    # failing (the error may change). Deterministic per row.
    rng = random.Random(n)
    all_bits = [f for f in ScriptFlags if f.value]
    for _ in range(4):
        extra = ScriptFlags.NONE
        for f in all_bits:
            if rng.random() < 0.5:
                extra |= f
        combined = (flags & ~extra) if expected == "OK" else (flags | extra)
        if combined & ScriptFlags.CLEANSTACK and not combined & ScriptFlags.P2SH:
            continue
        got = _run(script_sig, script_pubkey, tx, combined)
        assert (got == "OK") == (expected == "OK"), (format_flags(combined), got)


# --- tx_valid.json / tx_invalid.json -------------------------------------------------------------

def check_transaction_local(tx: Tx) -> str | None:
    """The context-free rules BADTX rows break (Core CheckTransaction); the reason or None."""
    if not tx.vin:
        return "bad-txns-vin-empty"
    if not tx.vout:
        return "bad-txns-vout-empty"
    total = 0
    for o in tx.vout:
        if o.value < 0:
            return "bad-txns-vout-negative"
        if o.value > MAX_MONEY:
            return "bad-txns-vout-toolarge"
        total += o.value
        if total > MAX_MONEY:
            return "bad-txns-txouttotal-toolarge"
    if len({i.prevout for i in tx.vin}) != len(tx.vin):
        return "bad-txns-inputs-duplicate"
    if tx.is_coinbase():
        if not 2 <= len(tx.vin[0].script_sig) <= 100:
            return "bad-cb-length"
    elif any(i.prevout.is_null() for i in tx.vin):
        return "bad-txns-prevout-null"
    return None


def _tx_cases(name: str) -> list:
    rows = _load(name)
    segwit = set(INDEX[name]["segwit_related"])
    cases = []
    for n, row in enumerate(rows):
        if len(row) < 3 or isinstance(row[0], str) or n in segwit:
            continue
        prevouts, raw, flags = row[0], row[1], row[2]
        cases.append(pytest.param(n, prevouts, raw, flags, id=f"row{n}-{flags.replace(',', '+')}"))
    return cases


TX_VALID = _tx_cases("tx_valid.json")
TX_INVALID = _tx_cases("tx_invalid.json")


def _prevout_map(prevouts: list) -> dict:
    return {OutPoint(hex_to_hash(p[0]), p[1] & 0xFFFFFFFF): parse_core_script(p[2]) for p in prevouts}


def _verify_tx(prevs: dict, tx: Tx, flags: int) -> str:
    for i, txin in enumerate(tx.vin):
        spk = prevs.get(txin.prevout)
        if spk is None:
            return "missing-prevout"
        try:
            verify_script(txin.script_sig, spk, tx, i, flags)
        except ScriptError as e:
            return f"input{i}:{e.code}"
    return "OK"


def _trim(flags: int) -> int:
    """Core's TrimFlags for the flags tinynode has: CLEANSTACK needs P2SH."""
    if not flags & ScriptFlags.P2SH:
        flags &= ~ScriptFlags.CLEANSTACK
    return flags


def test_tx_vector_counts():
    assert len(TX_VALID) == 92
    assert len(TX_INVALID) == 78


@pytest.mark.parametrize("n,prevouts,raw,excluded_text", TX_VALID)
def test_tx_valid_json(n, prevouts, raw, excluded_text):
    tx = Tx.from_hex(raw)
    assert check_transaction_local(tx) is None
    check_transaction(tx)
    prevs = _prevout_map(prevouts)
    excluded = parse_flags(excluded_text)
    flags = _trim(ALL_FLAGS & ~excluded)
    assert _verify_tx(prevs, tx, flags) == "OK"
    # removing any one flag never invalidates a valid transaction
    for f in ScriptFlags:
        if f.value and flags & f:
            assert _verify_tx(prevs, tx, _trim(flags & ~f)) == "OK", f.name
    # maximality (Core): putting back any one excluded flag makes it fail
    for f in ScriptFlags:
        if f.value and excluded & f:
            assert _verify_tx(prevs, tx, _trim(ALL_FLAGS & ~(excluded & ~f))) != "OK", f.name


@pytest.mark.parametrize("n,prevouts,raw,flags_text", TX_INVALID)
def test_tx_invalid_json(n, prevouts, raw, flags_text):
    try:
        tx = Tx.from_hex(raw)
    except DecodeError:
        assert flags_text == "BADTX"
        return
    if flags_text == "BADTX":
        reason = check_transaction_local(tx)
        assert reason is not None
        with pytest.raises(ValidationError) as e:
            check_transaction(tx)  # tinynode's consensus CheckTransaction agrees
        assert e.value.reason == reason
        return
    assert check_transaction_local(tx) is None
    check_transaction(tx)
    prevs = _prevout_map(prevouts)
    flags = parse_flags(flags_text)
    assert _verify_tx(prevs, tx, flags) != "OK"
    # adding flags keeps it invalid; with every flag on it is invalid too
    assert _verify_tx(prevs, tx, ALL_FLAGS) != "OK"
