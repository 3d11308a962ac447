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


@pytest.mark.parametrize("name, n_witness", [("tx_valid.json", 28), ("tx_invalid.json", 13)])
def test_core_vectors_rows_round_trip(name, n_witness):
    """Every row of Core's tx vectors parses (or is a BADTX row) and re-serializes byte-exact,
    legacy and BIP144 witness forms alike; txid hashes the non-witness form, wtxid all bytes."""
    checked = witness = 0
    for i, row in _rows(name):
        raw = bytes.fromhex(row[1])
        try:
            tx = Tx.from_bytes(raw)
        except DecodeError:
            assert row[2] == "BADTX", i
            continue
        assert tx.raw == raw and tx.serialize() == raw, i
        assert tx._serialize() == raw, i            # rebuilt from the fields, not just the cached bytes
        assert tx.wtxid == sha256d(raw)
        if _is_witness_serialized(raw):
            witness += 1
            assert tx.has_witness() and tx.txid != tx.wtxid
            base = tx.serialize_without_witness()
            assert tx.txid == sha256d(base) and tx.base_size == len(base) < len(raw)
            assert Tx.from_bytes(base).txid == tx.txid
        else:
            assert not tx.has_witness() and tx.txid == tx.wtxid == sha256d(raw)
            assert tx.weight == 4 * len(raw) and tx.vsize == len(raw)
        assert tx.weight == 3 * tx.base_size + tx.size
        assert Tx.from_hex(row[1]) == tx
        checked += 1
    assert witness == n_witness and checked >= 90


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


def test_marker_and_flag_without_witness_data():
    # version | marker 00 | flag 01 | body | (no witness stacks) | locktime: Core's deserializer
    # reads witness stacks there; all-empty ones are "Superfluous witness record".
    tx = _sample_tx()
    body = tx.raw[4:-4]
    empty_stacks = b"\x00" * len(tx.vin)
    with pytest.raises(DecodeError, match="Superfluous witness record"):
        Tx.from_bytes(tx.raw[:4] + b"\x00\x01" + body + empty_stacks + tx.raw[-4:])
    # flag bits other than bit 0: "Unknown transaction optional data" (with or without bit 0)
    with pytest.raises(DecodeError, match="Unknown transaction optional data"):
        Tx.from_bytes(tx.raw[:4] + b"\x00\x02" + body + tx.raw[-4:])
    with pytest.raises(DecodeError, match="Unknown transaction optional data"):
        Tx.from_bytes(tx.raw[:4] + b"\x00\x03" + body + b"\x01\x01\x07" + tx.raw[-4:])


def test_witness_construct_serialize_parse():
    tx = _sample_tx()
    wit = (b"\x30" * 71, bytes(33))
    wtx = dataclasses.replace(tx, vin=(dataclasses.replace(tx.vin[0], witness=list(wit)),))
    assert wtx.vin[0].witness == wit and wtx.has_witness() and not tx.has_witness()
    assert wtx.txid == tx.txid and wtx.wtxid != tx.wtxid and tx.wtxid == tx.txid
    assert wtx.serialize_without_witness() == tx.raw and wtx.base_size == tx.base_size == tx.size
    expected = (tx.raw[:4] + b"\x00\x01" + tx.raw[4:-4]
                + b"\x02" + b"\x47" + wit[0] + b"\x21" + wit[1] + tx.raw[-4:])
    assert wtx.raw == expected and wtx.size == len(expected)
    assert wtx.weight == 3 * len(tx.raw) + len(expected)
    assert wtx.vsize == (wtx.weight + 3) // 4
    again = Tx.from_bytes(wtx.raw)
    assert again == wtx and again.txid == wtx.txid and again.wtxid == wtx.wtxid == sha256d(expected)
    assert again.base_size == wtx.base_size
    # truncated anywhere: DecodeError only
    for n in range(len(wtx.raw)):
        with pytest.raises(DecodeError):
            Tx.from_bytes(wtx.raw[:n])
    # a witness item count the remaining bytes cannot hold
    bad = tx.raw[:4] + b"\x00\x01" + tx.raw[4:-4] + b"\xfe\xff\xff\xff\x00" + tx.raw[-4:]
    with pytest.raises(DecodeError):
        Tx.from_bytes(bad)


# BIP143's native P2WPKH example, signed (bitcoin/bips bip-0143.mediawiki, "Native P2WPKH").
BIP143_P2WPKH_SIGNED = (
    "01000000000102fff7f7881a8099afa6940d42d1e7f6362bec38171ea3edf433541db4e4ad969f00000000494830"
    "450221008b9d1dc26ba6a9cb62127b02742fa9d754cd3bebf337f7a55d114c8e5cdd30be022040529b194ba3f928"
    "1a99f2b1c0a19c0489bc22ede944ccf4ecbab4cc618ef3ed01eeffffffef51e1b804cc89d182d279655c3aa89e81"
    "5b1b309fe287d9b2b55d57b90ec68a0100000000ffffffff02202cb206000000001976a9148280b37df378db99f6"
    "6f85c95a783a76ac7a6d5988ac9093510d000000001976a9143bde42dbee7e4dbe6a21b2d50ce2f0167faa815988"
    "ac000247304402203609e17b84f6a7d30c80bfa610b5b4542f32a8a0d5447a12fb1366d7f01cc44a0220573a954c"
    "4518331561406f90300e8f3358f51928d43c212a8caed02de67eebee0121025476c2e83188368da1ff3e292e7aca"
    "fcdb3566bb0ad253f62fc70f07aeee635711000000")


def test_bip143_signed_tx_sizes_txid_and_wtxid():
    raw = bytes.fromhex(BIP143_P2WPKH_SIGNED)
    tx = Tx.from_bytes(raw)
    assert [len(i.witness) for i in tx.vin] == [0, 2]
    assert tx.vin[1].witness[1].hex() == "025476c2e83188368da1ff3e292e7acafcdb3566bb0ad253f62fc70f07aeee6357"
    assert tx.locktime == 0x11 and len(tx.vout) == 2
    # sizes counted from the BIP's field-by-field breakdown: 4 + 2 (marker, flag) + inputs
    # (1 + 41 + 73 + 41) + outputs (1 + 34 + 34) + witnesses (1 + 1 + 72 + 34) + 4 = 343;
    # without the marker, flag and witnesses: 343 - 2 - 108 = 233
    assert tx.size == 343 and tx.base_size == 233
    assert tx.weight == 3 * 233 + 343 == 1042 and tx.vsize == 261
    assert tx.txid == sha256d(tx.serialize_without_witness()) and tx.wtxid == sha256d(raw)
    # the unsigned tx in the BIP is the same tx without scriptSig/witness: same shape
    unsigned = Tx.from_hex(
        "0100000002fff7f7881a8099afa6940d42d1e7f6362bec38171ea3edf433541db4e4ad969f0000000000eeffffff"
        "ef51e1b804cc89d182d279655c3aa89e815b1b309fe287d9b2b55d57b90ec68a0100000000ffffffff02202cb2"
        "06000000001976a9148280b37df378db99f66f85c95a783a76ac7a6d5988ac9093510d000000001976a9143bde"
        "42dbee7e4dbe6a21b2d50ce2f0167faa815988ac11000000")
    assert unsigned.vout == tx.vout and [i.prevout for i in unsigned.vin] == [i.prevout for i in tx.vin]


def test_txid_agrees_with_core_kernel():
    from tests.framework.oracle import KERNEL_ERROR, pbk, require_kernel
    require_kernel()
    for hexstr in (BIP143_P2WPKH_SIGNED, _sample_tx().raw.hex()):
        tx = Tx.from_hex(hexstr)
        ktx = pbk.Transaction(tx.raw)
        assert bytes(ktx.txid) == tx.txid


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


def test_zero_inputs_is_the_witness_marker():
    tx = Tx(1, (), ())                                 # version | 00 | 00 | locktime
    assert tx.raw.hex() == "01000000" "00" "00" "00000000"
    assert Tx.from_bytes(tx.raw) == tx
    # marker + flag 1, no inputs: no witness can be non-empty
    with pytest.raises(DecodeError, match="Superfluous witness record"):
        Tx.from_bytes(bytes.fromhex("01000000" "00" "01" "00" "00" "00000000"))
    # zero inputs then outputs is read as marker + flag by Core: never a legacy tx
    with pytest.raises(DecodeError):
        Tx.from_bytes(Tx(1, (), (TxOut(1),)).raw)


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
