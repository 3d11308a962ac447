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


@pytest.mark.parametrize("row", ROWS[::5], ids=[f"row{i}" for i in range(0, len(ROWS), 5)])
def test_p2pkh_sighash_matches_legacy(row):
    """The P2PKH shortcut (scriptCode = length byte + script) gives legacy_sighash's digest for
    every hash type and input count; the scriptCode here holds 0xab bytes inside its push."""
    from tinynode.script.sighash import p2pkh_sighash

    tx = Tx.from_hex(row[0])
    spk = b"\x76\xa9\x14" + bytes([0xAB]) * 20 + b"\x88\xac"
    for ht in (row[3], 1, 0x41, 0x81, 2, 3, 0):
        for i in range(len(tx.vin) + 1):
            assert p2pkh_sighash(tx, i, spk, ht) == legacy_sighash(tx, i, spk, ht)


@pytest.mark.parametrize("ss_len", [0, 107, 252, 253, 300, 70_000])
def test_one_input_sighash_all_against_independent_serializer(ss_len):
    """One-input SIGHASH_ALL slices tx.raw around the scriptSig: check every compact-size width
    against the framework's independent sighash."""
    from tests.framework.miniwallet import legacy_sighash_local

    spk = b"\x76\xa9\x14" + bytes(range(20)) + b"\x88\xac"
    tx = Tx(2, (TxIn(OutPoint(b"\x07" * 32, 3), b"\x01" * ss_len, 0xFFFFFFFD),),
            (TxOut(5000, spk), TxOut(7, b"\x6a")), 99)
    assert legacy_sighash(tx, 0, spk, SIGHASH_ALL) == legacy_sighash_local(tx, 0, spk, SIGHASH_ALL)
