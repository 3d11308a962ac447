"""Transactions: Core's tx_valid/tx_invalid rows parse and re-serialize byte-exact; bounds."""
import dataclasses
import json
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from tinynode.primitives.hashes import sha256d
from tinynode.primitives.serialize import ByteReader, DecodeError
from tinynode.primitives.tx import (
    COIN, MAX_MONEY, NULL_OUTPOINT, SEQUENCE_FINAL, OutPoint, Tx, TxIn, TxOut,
)

DATA = Path(__file__).resolve().parents[1] / "data"
INDEX = json.loads((DATA / "legacy_subset_index.json").read_text())


def _is_witness_serialized(raw: bytes) -> bool:
    return len(raw) > 5 and raw[4] == 0 and raw[5] == 1


def _rows(name):
    rows = json.loads((DATA / name).read_text())
    return [(i, r) for i, r in enumerate(rows) if isinstance(r[0], list)]


def _legacy_indices(name):
    entry = INDEX[name]
    return set().union(*entry["by_tier"].values()) | set(entry["badtx"])


@pytest.mark.parametrize("name, expected", [("tx_valid.json", 92), ("tx_invalid.json", 78)])
def test_core_vectors_non_witness_rows_round_trip(name, expected):
    legacy = _legacy_indices(name)
    assert len(legacy) == expected
    checked = 0
    for i, row in _rows(name):
        raw = bytes.fromhex(row[1])
        if _is_witness_serialized(raw):
            assert i not in legacy
            with pytest.raises(DecodeError, match="segwit"):
                Tx.from_bytes(raw)
            continue
        tx = Tx.from_bytes(raw)
        assert tx.raw == raw and tx.serialize() == raw, i
        assert tx._serialize() == raw, i            # rebuilt from the fields, not just the cached bytes
        assert tx.txid == sha256d(raw)
        assert Tx.from_hex(row[1]) == tx
        assert len(tx.vin) == len(row[0]) or i in INDEX[name]["badtx"]
        checked += 1
    assert checked >= expected


def test_known_mainnet_txid_from_tx_valid():
    # tx_valid.json names this mainnet tx in a comment; its txid is sha256d(bytes) displayed reversed.
    target = "23b397edccd3740a74adb603c9756370fafcde9bcc4483eb271ecad09a94dd63"
    for _, row in _rows("tx_valid.json"):
        raw = bytes.fromhex(row[1])
        if not _is_witness_serialized(raw) and Tx.from_bytes(raw).txid_hex == target:
            return
    pytest.fail("mainnet tx 23b397ed… not found")


def test_prevout_hashes_are_reversed_display_hex():
    for _, row in _rows("tx_valid.json")[:20]:
        raw = bytes.fromhex(row[1])
        if _is_witness_serialized(raw):
            continue
        tx = Tx.from_bytes(raw)
        for (prev_hex, prev_n, *_), txin in zip(row[0], tx.vin):
            assert txin.prevout.txid[::-1].hex() == prev_hex
            assert txin.prevout.n == (prev_n & 0xFFFFFFFF)


def _sample_tx():
    return Tx(2, (TxIn(OutPoint(bytes(range(32)), 7), b"\x51", 0xFFFFFFFE),),
              (TxOut(5 * COIN, b"\x76\xa9\x14" + bytes(20) + b"\x88\xac"), TxOut(0, b"\x6a")), 99)


def test_construct_serialize_parse_and_replace():
    tx = _sample_tx()
    assert Tx.from_bytes(tx.raw) == tx
    assert tx.size == len(tx.raw) and tx.txid == sha256d(tx.raw)
    tx2 = dataclasses.replace(tx, locktime=100)
    assert tx2.raw[-4:] == (100).to_bytes(4, "little") and tx2.txid != tx.txid
    tx3 = Tx(1, [TxIn(NULL_OUTPOINT, b"\x01\x02")], [TxOut(1)])   # lists become tuples
    assert isinstance(tx3.vin, tuple) and tx3.is_coinbase() and not tx.is_coinbase()
    assert NULL_OUTPOINT.is_null() and SEQUENCE_FINAL == 0xFFFFFFFF and MAX_MONEY == 21_000_000 * COIN
    assert "in" in repr(tx)


def test_segwit_marker_rejected():
    # version | marker 00 | flag 01 | ...: refused with a clear DecodeError, never mis-parsed.
    tx = _sample_tx()
    raw = tx.raw[:4] + b"\x00\x01" + tx.raw[4:]
    with pytest.raises(DecodeError, match="segwit"):
        Tx.from_bytes(raw)


def test_trailing_bytes_and_truncation():
    raw = _sample_tx().raw
    with pytest.raises(DecodeError, match="trailing"):
        Tx.from_bytes(raw + b"\x00")
    for n in range(len(raw)):
        with pytest.raises(DecodeError):
            Tx.from_bytes(raw[:n])


def test_counts_bounded_by_remaining_bytes():
    # 0xfd 0xff 0xff inputs claimed, but no bytes to hold them: rejected before allocating.
    with pytest.raises(DecodeError):
        Tx.from_bytes(b"\x01\x00\x00\x00\xfd\xff\xff" + bytes(50))
    # A script length that runs past the end.
    raw = bytearray(_sample_tx().raw)
    raw[4 + 1 + 36] = 0xFC
    with pytest.raises(DecodeError):
        Tx.from_bytes(bytes(raw))
    with pytest.raises(DecodeError):
        Tx.from_hex("zz")


def test_parse_advances_reader_in_a_stream():
    a, b = _sample_tx(), dataclasses.replace(_sample_tx(), version=1)
    r = ByteReader(a.raw + b.raw)
    assert Tx.parse(r) == a and r.pos == len(a.raw)
    assert Tx.parse(r) == b
    r.expect_end()


def test_outpoint_and_io_codecs():
    op = OutPoint(bytes(range(32)), 0xFFFFFFFF)
    assert OutPoint.parse(ByteReader(op.serialize())) == op
    ti = TxIn(op, b"abc", 5)
    assert TxIn.parse(ByteReader(ti.serialize())) == ti
    to = TxOut(-1, b"xyz")
    assert TxOut.parse(ByteReader(to.serialize())) == to


hashes = st.binary(min_size=32, max_size=32)
u32 = st.integers(min_value=0, max_value=2**32 - 1)
scripts = st.binary(max_size=300)
txins = st.builds(TxIn, st.builds(OutPoint, hashes, u32), scripts, u32)
txouts = st.builds(TxOut, st.integers(min_value=-(2**63), max_value=2**63 - 1), scripts)
txs = st.builds(Tx, st.integers(min_value=-(2**31), max_value=2**31 - 1),
                st.lists(txins, min_size=1, max_size=4).map(tuple),
                st.lists(txouts, max_size=4).map(tuple), u32)


@settings(max_examples=120, deadline=None)
@given(txs)
def test_tx_round_trip(tx):
    again = Tx.from_bytes(tx.serialize())
    assert again == tx and again.txid == tx.txid and again.raw == tx.raw


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_only_decode_error(b):
    try:
        tx = Tx.from_bytes(b)
    except DecodeError:
        return
    assert tx.raw == b


@settings(max_examples=150, deadline=None)
@given(txs, st.data())
def test_mutated_tx_bytes_only_decode_error(tx, data):
    raw = bytearray(tx.raw)
    i = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
    raw[i] = data.draw(st.integers(min_value=0, max_value=255))
    cut = data.draw(st.integers(min_value=0, max_value=len(raw)))
    try:
        Tx.from_bytes(bytes(raw[:cut]))
    except DecodeError:
        pass


def test_long_scripts_and_non_canonical_lengths_inside_a_tx():
    big = bytes(300)
    tx = Tx(1, (TxIn(OutPoint(bytes(32), 0), big),), (TxOut(1, big),))
    assert Tx.from_bytes(tx.raw) == tx
    i = tx.raw.index(b"\xfd\x2c\x01")                 # input script length 300
    j = tx.raw.index(b"\xfd\x2c\x01", i + 1)          # output script length 300
    for k in (i, j):
        short = tx.raw[:k] + b"\xfd\x05\x00" + bytes(5) + tx.raw[k + 3 + 300:]
        with pytest.raises(DecodeError, match="non-canonical"):
            Tx.from_bytes(short)
    many = Tx(1, tuple(TxIn(OutPoint(bytes(32), n)) for n in range(253)), (TxOut(0),))
    assert many.raw[4:7] == b"\xfd\xfd\x00" and Tx.from_bytes(many.raw) == many
    with pytest.raises(DecodeError, match="non-canonical"):
        Tx.from_bytes(many.raw[:4] + b"\xfe\xfd\x00\x00\x00" + many.raw[7:])


def test_zero_inputs_without_segwit_flag_is_legacy():
    tx = Tx(1, (), ())                                 # version | 00 | 00 | locktime
    assert tx.raw.hex() == "01000000" "00" "00" "00000000"
    assert Tx.from_bytes(tx.raw) == tx
    with pytest.raises(DecodeError, match="segwit"):
        Tx.from_bytes(bytes.fromhex("01000000" "00" "01" "00000000"))


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([OutPoint, TxIn, TxOut]), st.binary(max_size=80))
def test_component_codecs_random_bytes_only_decode_error(cls, b):
    from tinynode.primitives.serialize import from_bytes
    try:
        value = from_bytes(cls.parse, b)
    except DecodeError:
        return
    assert value.serialize() == b


@settings(max_examples=100, deadline=None)
@given(txins, txouts)
def test_component_codecs_round_trip(txin, txout):
    from tinynode.primitives.serialize import from_bytes
    assert from_bytes(TxIn.parse, txin.serialize()) == txin
    assert from_bytes(TxOut.parse, txout.serialize()) == txout
    assert from_bytes(OutPoint.parse, txin.prevout.serialize()) == txin.prevout
