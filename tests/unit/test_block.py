"""Blocks: mainnet block 413567 end to end, merkle root (CVE-2012-2459), compact bits (SetCompact)."""
import dataclasses
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from tinynode.primitives.block import (
    HEADER_SIZE, Block, BlockHeader, bits_to_target, merkle_root, target_to_bits,
)
from tinynode.primitives.hashes import hash_to_hex, sha256d
from tinynode.primitives.serialize import ByteReader, DecodeError
from tinynode.primitives.tx import NULL_OUTPOINT, OutPoint, Tx, TxIn, TxOut

DATA = Path(__file__).resolve().parents[1] / "data"
MAINNET_POW_LIMIT = bits_to_target(0x1D00FFFF)[0]

# Computed independently with python-bitcoinlib 0.12.2 (CBlock.deserialize + GetTxid, b2lx) on
# tests/data/block413567.raw; they agree with the vectors README (hash, merkle root, counts).
BLOCK_HASH = "0000000000000000025aff8be8a55df8f89c77296db6198f272d6577325d4069"
FIRST_TXID = "5b4aaef3f4e4625d70385ddf0bd2a0b7d7141e4c2fd36d2ff2cad37fff3deb0f"
LAST_TXID = "63434bb06525615f43954598d281d03feaae70658c4187ccb3ba7fa7b093a0b8"
MERKLE_ROOT = "64a50c649fc816baaa2effda230c39cacf1504e4e616a2863685b72aaa7dce05"


@pytest.fixture(scope="module")
def raw413567() -> bytes:
    return (DATA / "block413567.raw").read_bytes()


@pytest.fixture(scope="module")
def block413567(raw413567) -> Block:
    return Block.from_bytes(raw413567)


def test_block413567_parses_and_round_trips(raw413567, block413567):
    b = block413567
    assert len(raw413567) == 999_887 and b.size == len(raw413567)
    assert b.serialize() == raw413567
    assert len(b.txs) == 1557
    assert sum(len(t.vin) for t in b.txs) == 4887 and sum(len(t.vout) for t in b.txs) == 3581
    assert b.txs[0].txid_hex == FIRST_TXID and b.txs[-1].txid_hex == LAST_TXID
    assert b.txs[0].is_coinbase() and not any(t.is_coinbase() for t in b.txs[1:])
    h = b.header
    assert (h.version, h.time, h.bits, h.nonce) == (4, 1464307123, 0x18058436, 2120202499)
    assert hash_to_hex(h.prev_hash) == "00000000000000000542b54d29b12b523ff6c6474e0e86085bd3005ec6c5ce11"
    assert b.hash_hex == BLOCK_HASH and h.hash == sha256d(raw413567[:80])
    assert hash_to_hex(h.merkle_root) == MERKLE_ROOT
    assert b.compute_merkle_root() == (h.merkle_root, False)
    assert h.check_pow(MAINNET_POW_LIMIT)
    # BIP34: the coinbase scriptSig starts with the height.
    assert b.txs[0].vin[0].script_sig[:4] == b"\x03" + (413567).to_bytes(3, "little")


def test_block413567_every_tx_raw_slices_the_block(raw413567, block413567):
    pos = 83  # 80-byte header + 3-byte compact size (0xfd, 1557)
    for tx in block413567.txs:
        assert raw413567[pos:pos + tx.size] == tx.raw
        pos += tx.size
    assert pos == len(raw413567)


def test_block413567_truncations_raise_only_decode_error(raw413567, block413567):
    """Cut the block at every 1,000th byte: each cut is a DecodeError and nothing else.

    `Block.parse` is the header, the tx count, then `Tx.parse` on each transaction in turn, so a
    cut inside transaction k fails exactly where `Tx.parse` of k, started at its own offset
    over the cut bytes, fails; that is checked for every cut (cheap). The whole
    `Block.from_bytes` is also run on the cut bytes for every cut up to 100,000 (header, count
    bound, first transactions) and every 25,000th byte after: the same verdict end to end,
    without ~1,000 near-full parses of a 1 MB block.
    """
    starts = []
    pos = 83
    for tx in block413567.txs:
        starts.append(pos)
        pos += tx.size
    k = 0
    for cut in range(0, len(raw413567), 1000):
        data = raw413567[:cut]
        if cut < 100_000 or cut % 25_000 == 0:
            with pytest.raises(DecodeError):
                Block.from_bytes(data)
        if cut < 83:
            continue
        while k + 1 < len(starts) and starts[k + 1] <= cut:
            k += 1
        r = ByteReader(data)
        r.seek(starts[k])
        with pytest.raises(DecodeError):
            Tx.parse(r)
    with pytest.raises(DecodeError):
        Block.from_bytes(raw413567[:-1])
    with pytest.raises(DecodeError, match="trailing"):
        Block.from_bytes(raw413567 + b"\x00")


def test_block_pow_fails_when_header_changes(block413567):
    h = dataclasses.replace(block413567.header, nonce=block413567.header.nonce + 1)
    assert not h.check_pow(MAINNET_POW_LIMIT)
    assert not dataclasses.replace(block413567.header, bits=0x18858436).check_pow(MAINNET_POW_LIMIT)
    # A target above the network limit is refused even if the hash meets it.
    assert not block413567.header.check_pow(bits_to_target(0x18058436)[0] - 1)


def _txs(n):
    return tuple(Tx(1, (TxIn(OutPoint(bytes([i]) * 32, i), b"\x51"),), (TxOut(i, b"\x6a"),)) for i in range(n))


def test_merkle_root_cve_2012_2459_mutation():
    a, b, c = (t.txid for t in _txs(3))
    root3, mutated3 = merkle_root([a, b, c])
    assert root3 == sha256d(sha256d(a + b) + sha256d(c + c)) and not mutated3
    root4, mutated4 = merkle_root([a, b, c, c])
    assert root4 == root3 and mutated4                      # same root, flagged as mutated
    assert merkle_root([a, a])[1] and not merkle_root([a, b])[1]
    # A duplicate that is not an aligned pair is not a mutation (Core compares pos, pos+1 for even pos).
    assert not merkle_root([a, b, b, c])[1]
    # Mutation found at a higher level: two identical subtrees.
    assert merkle_root([a, b, a, b])[1]
    assert merkle_root([a]) == (a, False)
    assert merkle_root([]) == (bytes(32), False)


def test_block_merkle_mutation_via_duplicated_tail():
    txs = _txs(3)
    blk = Block(BlockHeader(1, bytes(32), merkle_root([t.txid for t in txs])[0], 0, 0x207FFFFF, 0), txs)
    mutated = Block(blk.header, txs + txs[-1:])
    assert blk.compute_merkle_root() == (blk.header.merkle_root, False)
    assert mutated.compute_merkle_root() == (blk.header.merkle_root, True)
    assert mutated.hash == blk.hash


# Core's arith_uint256 tests (SetCompact/GetCompact): (bits, target, negative, overflow).
SET_COMPACT = [
    (0, 0, False, False),
    (0x00123456, 0, False, False),
    (0x01003456, 0, False, False),
    (0x02000056, 0, False, False),
    (0x03000000, 0, False, False),
    (0x04000000, 0, False, False),
    (0x00923456, 0, False, False),
    (0x01803456, 0, False, False),
    (0x02800056, 0, False, False),
    (0x03800000, 0, False, False),
    (0x04800000, 0, False, False),
    (0x01123456, 0x12, False, False),
    (0x01FEDCBA, 0x7E, True, False),
    (0x02123456, 0x1234, False, False),
    (0x03123456, 0x123456, False, False),
    (0x04123456, 0x12345600, False, False),
    (0x04923456, 0x12345600, True, False),
    (0x05009234, 0x92340000, False, False),
    (0x20123456, 0x123456 << (8 * 29), False, False),
    (0x1D00FFFF, 0xFFFF << 208, False, False),
]


@pytest.mark.parametrize("bits, target, negative, overflow", SET_COMPACT)
def test_bits_to_target_matches_set_compact(bits, target, negative, overflow):
    assert bits_to_target(bits) == (target, negative, overflow)


@pytest.mark.parametrize("bits", [0xFF123456, 0x23000001, 0x22000100, 0x21010000])
def test_bits_to_target_overflow(bits):
    assert bits_to_target(bits)[2] is True


def test_bits_to_target_overflow_edges():
    assert bits_to_target(0x22000001)[2] is False       # 1 << 248 * 8 ... fits in 256 bits
    assert bits_to_target(0x21000100)[2] is False
    assert bits_to_target(0x20010000)[2] is False
    assert bits_to_target(0x23000000)[2] is False        # zero mantissa never overflows


@pytest.mark.parametrize("target, bits", [
    (0, 0), (0x12, 0x01120000), (0x80, 0x02008000), (0x1234, 0x02123400),
    (0x123456, 0x03123456), (0x12345600, 0x04123456), (0x92340000, 0x05009234),
    (0x123456 << (8 * 29), 0x20123456), (0xFFFF << 208, 0x1D00FFFF),
])
def test_target_to_bits_matches_get_compact(target, bits):
    assert target_to_bits(target) == bits


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=2**256 - 1))
def test_target_to_bits_round_trip(target):
    bits = target_to_bits(target)
    back, negative, overflow = bits_to_target(bits)
    assert not negative and not overflow
    assert back <= target and target_to_bits(back) == bits
    size = bits >> 24
    if size > 3:
        assert target - back < 1 << (8 * (size - 3))     # only the low bytes were dropped
    assert bits & 0x00800000 == 0


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_bits_round_trip_when_normalised(bits):
    target, negative, overflow = bits_to_target(bits)
    if negative or overflow or target == 0:
        return
    assert bits_to_target(target_to_bits(target))[0] == target


def test_header_codec():
    h = BlockHeader(-1, bytes(range(32)), bytes(32), 2**32 - 1, 0x207FFFFF, 7)
    raw = h.serialize()
    assert len(raw) == HEADER_SIZE and BlockHeader.from_bytes(raw) == h
    assert BlockHeader.parse(ByteReader(raw)) == h and h.hash == sha256d(raw)
    for bad in (raw[:-1], raw + b"\x00"):
        with pytest.raises(DecodeError):
            BlockHeader.from_bytes(bad)
    with pytest.raises(DecodeError):
        BlockHeader.parse(ByteReader(raw[:79]))
    assert h.target == bits_to_target(0x207FFFFF)[0]


u32 = st.integers(min_value=0, max_value=2**32 - 1)
headers = st.builds(BlockHeader, st.integers(min_value=-(2**31), max_value=2**31 - 1),
                    st.binary(min_size=32, max_size=32), st.binary(min_size=32, max_size=32), u32, u32, u32)
small_txs = st.builds(
    Tx, st.integers(min_value=0, max_value=3),
    st.lists(st.builds(TxIn, st.builds(OutPoint, st.binary(min_size=32, max_size=32), u32),
                       st.binary(max_size=40), u32), min_size=1, max_size=3).map(tuple),
    st.lists(st.builds(TxOut, st.integers(min_value=0, max_value=2**62), st.binary(max_size=40)),
             max_size=3).map(tuple), u32)


@settings(max_examples=80, deadline=None)
@given(headers, st.lists(small_txs, max_size=5))
def test_block_round_trip(header, txs):
    blk = Block(header, tuple(txs))
    raw = blk.serialize()
    again = Block.from_bytes(raw)
    assert again == blk and again.size == len(raw) == blk.size
    assert BlockHeader.from_bytes(raw[:80]) == header


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=0, max_size=300))
def test_random_block_bytes_only_decode_error(b):
    try:
        Block.from_bytes(b)
    except DecodeError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=0, max_size=220))
def test_random_bytes_after_a_header_only_decode_error(tail):
    raw = BlockHeader(1, bytes(32), bytes(32), 0, 0, 0).serialize() + tail
    try:
        Block.from_bytes(raw)
    except DecodeError:
        pass


def test_block_codec_small():
    txs = (Tx(1, (TxIn(NULL_OUTPOINT, b"\x01\x01"),), (TxOut(50, b"\x51"),)),)
    blk = Block(BlockHeader(1, bytes(32), merkle_root([txs[0].txid])[0], 0, 0x207FFFFF, 0), list(txs))
    assert isinstance(blk.txs, tuple) and Block.from_bytes(blk.serialize()) == blk
    assert "1 txs" in repr(blk)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=100))
def test_random_header_bytes_only_decode_error(b):
    try:
        h = BlockHeader.from_bytes(b)
    except DecodeError:
        assert len(b) != HEADER_SIZE
        return
    assert h.serialize() == b


def test_witness_block_round_trip_sizes_and_witness_merkle_root():
    from tinynode.primitives.block import witness_merkle_root
    from tinynode.primitives.hashes import sha256d
    from tinynode.primitives.tx import NULL_OUTPOINT, OutPoint, Tx, TxIn, TxOut
    coinbase = Tx(1, (TxIn(NULL_OUTPOINT, b"\x01\x01", witness=(bytes(32),)),), (TxOut(50, b"\x51"),))
    spend = Tx(2, (TxIn(OutPoint(bytes(range(32)), 0), b"", witness=(b"\x30" * 72, b"\x02" * 33)),),
               (TxOut(49, b"\x00\x14" + bytes(20)),))
    legacy = Tx(1, (TxIn(OutPoint(bytes(32), 1), b"\x51"),), (TxOut(1, b"\x51"),))
    root, mutated = merkle_root([coinbase.txid, spend.txid, legacy.txid])
    header = BlockHeader(0x20000000, bytes(32), root, 1, 0x207FFFFF, 0)
    block = Block(header, (coinbase, spend, legacy))
    raw = block.serialize()
    again = Block.from_bytes(raw)
    assert again == block and again.serialize() == raw and again.size == len(raw) == block.size
    assert [t.wtxid for t in again.txs] == [coinbase.wtxid, spend.wtxid, legacy.wtxid]
    assert again.compute_merkle_root() == (root, False)           # txids, not wtxids
    stripped = header.serialize() + b"\x03" + b"".join(t.serialize_without_witness() for t in block.txs)
    assert block.base_size == len(stripped) < block.size
    assert block.weight == 3 * len(stripped) + len(raw)
    # BIP141: the coinbase's wtxid counts as zero
    expected = sha256d(sha256d(bytes(32) + spend.wtxid) + sha256d(legacy.wtxid + legacy.wtxid))
    assert witness_merkle_root(block.txs) == (expected, False) == block.compute_witness_merkle_root()
    assert legacy.wtxid == legacy.txid and spend.wtxid != spend.txid
