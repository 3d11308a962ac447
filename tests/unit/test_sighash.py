"""Legacy sighash against Bitcoin Core's sighash.json (all 500 rows) and the SINGLE bug."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tinynode.primitives.tx import OutPoint, Tx, TxIn, TxOut
from tinynode.script.sighash import (
    SIGHASH_ALL, SIGHASH_ANYONECANPAY, SIGHASH_ONE, SIGHASH_SINGLE, legacy_sighash,
    serialize_script_code,
)

DATA = Path(__file__).resolve().parents[1] / "data"
ROWS = [r for r in json.loads((DATA / "sighash.json").read_text()) if len(r) == 5]


def test_row_count():
    assert len(ROWS) == 500


@pytest.mark.parametrize("row", ROWS, ids=[f"row{i}" for i in range(len(ROWS))])
def test_sighash_json(row):
    raw_tx, script_hex, input_index, hash_type, expected = row
    tx = Tx.from_hex(raw_tx)
    digest = legacy_sighash(tx, input_index, bytes.fromhex(script_hex), hash_type)
    # sighash.json prints uint256::GetHex(), the reversed digest
    assert digest[::-1].hex() == expected


def _tx(n_in: int, n_out: int) -> Tx:
    vin = tuple(TxIn(OutPoint(bytes([i + 1]) * 32, i), b"\x51", 0xFFFFFFFE) for i in range(n_in))
    vout = tuple(TxOut(1000 + i, b"\x51") for i in range(n_out))
    return Tx(1, vin, vout, 0)


def test_single_bug_returns_one():
    tx = _tx(2, 1)
    assert legacy_sighash(tx, 1, b"\xac", SIGHASH_SINGLE) == SIGHASH_ONE
    assert legacy_sighash(tx, 1, b"\xac", SIGHASH_SINGLE | SIGHASH_ANYONECANPAY) == SIGHASH_ONE
    assert legacy_sighash(tx, 0, b"\xac", SIGHASH_SINGLE) != SIGHASH_ONE
    assert SIGHASH_ONE == b"\x01" + bytes(31)


def test_input_index_out_of_range_returns_one():
    assert legacy_sighash(_tx(1, 1), 5, b"", SIGHASH_ALL) == SIGHASH_ONE


def test_codeseparator_removed_on_opcode_boundaries_only():
    # OP_CODESEPARATOR, a push of one 0xab byte, OP_CODESEPARATOR, OP_CHECKSIG
    code = bytes.fromhex("ab01abab" "ac")
    assert serialize_script_code(code) == bytes.fromhex("03" "01ab" "ac")


def test_codeseparator_with_truncated_push_matches_core_serializer():
    # OP_CODESEPARATOR then PUSHDATA1 with a length byte but no data: Core writes what its
    # iterator consumed (the opcode and length byte) and declares len - separators.
    code = bytes.fromhex("ab4c05")
    assert serialize_script_code(code) == bytes.fromhex("02" "4c05")
