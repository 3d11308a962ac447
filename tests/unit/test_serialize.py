"""ByteReader and compact sizes: bounds, canonical encodings, short reads (Core's ReadCompactSize)."""
import pytest
from hypothesis import given, settings, strategies as st

from tinynode.primitives.serialize import (
    MAX_SIZE, ByteReader, DecodeError, from_bytes, read_compact_size_at, ser_compact_size, ser_var_bytes,
)

FAST = settings(max_examples=150, deadline=None)


@pytest.mark.parametrize("n, enc", [
    (0, "00"), (1, "01"), (0xFC, "fc"),
    (0xFD, "fdfd00"), (0xFFFF, "fdffff"),
    (0x10000, "fe00000100"), (0xFFFFFFFF, "feffffffff"),
    (0x100000000, "ff0000000001000000"), (2**64 - 1, "ffffffffffffffffff"),
])
def test_compact_size_encodings(n, enc):
    assert ser_compact_size(n).hex() == enc
    assert ByteReader(bytes.fromhex(enc)).compact_size(2**64) == n


@pytest.mark.parametrize("enc", [
    "fd0000", "fdfc00",                      # fits in one byte
    "fe00000000", "feffff0000",              # fits in fd
    "ff0000000000000000", "ffffffffff00000000",  # fits in fe
])
def test_non_canonical_compact_size_rejected(enc):
    with pytest.raises(DecodeError, match=r"^non-canonical ReadCompactSize\(\)$"):
        ByteReader(bytes.fromhex(enc)).compact_size(2**64)


def test_compact_size_bounds():
    assert ByteReader(ser_compact_size(MAX_SIZE)).compact_size() == MAX_SIZE
    with pytest.raises(DecodeError, match="over the limit"):
        ByteReader(ser_compact_size(MAX_SIZE + 1)).compact_size()
    assert ByteReader(b"\x05").compact_size(5) == 5
    with pytest.raises(DecodeError):
        ByteReader(b"\x06").compact_size(5)
    with pytest.raises(DecodeError):
        ByteReader(ser_compact_size(0x10000)).compact_size(0xFFFF)


@pytest.mark.parametrize("enc", ["", "fd", "fd01", "fe010000", "ff01000000000000"])
def test_compact_size_short_read(enc):
    with pytest.raises(DecodeError, match=r"^DataStream::read\(\): end of data \("):   # Core's text
        ByteReader(bytes.fromhex(enc)).compact_size(2**64)


def test_var_bytes_max_and_short():
    assert ByteReader(b"\x03abc").var_bytes(3) == b"abc"
    with pytest.raises(DecodeError):
        ByteReader(b"\x03abc").var_bytes(2)       # over the caller's maximum: nothing read
    with pytest.raises(DecodeError):
        ByteReader(b"\x04abc").var_bytes(10)      # length beyond the data
    assert ByteReader(b"\x00").var_bytes(0) == b""


def test_fixed_width_reads_and_short_reads():
    r = ByteReader(bytes.fromhex("01" "0201" "04030201" "ffffffff" "0807060504030201" "ffffffffffffffff"))
    assert r.u8() == 1 and r.u16() == 0x0102 and r.u32() == 0x01020304
    assert r.i32() == -1 and r.u64() == 0x0102030405060708 and r.i64() == -1
    assert r.remaining() == 0
    r.expect_end()
    for method in ("u8", "u16", "u32", "i32", "u64", "i64"):
        with pytest.raises(DecodeError):
            getattr(ByteReader(b""), method)()
    with pytest.raises(DecodeError):
        ByteReader(b"abc").read(4)
    with pytest.raises(DecodeError):
        ByteReader(b"abc").read(-1)
    with pytest.raises(DecodeError):
        ByteReader(b"abc").skip(4)


def test_trailing_bytes_rejected():
    assert from_bytes(lambda r: r.var_bytes(10), b"\x01a") == b"a"
    with pytest.raises(DecodeError, match="trailing"):
        from_bytes(lambda r: r.var_bytes(10), b"\x01ab")
    r = ByteReader(b"xy")
    r.u8()
    with pytest.raises(DecodeError, match="trailing"):
        r.expect_end()


def test_reader_accepts_bytearray_and_memoryview():
    assert ByteReader(bytearray(b"\x02hi")).var_bytes(5) == b"hi"
    assert ByteReader(memoryview(b"\x02hi")).var_bytes(5) == b"hi"


@FAST
@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_compact_size_round_trip(n):
    enc = ser_compact_size(n)
    r = ByteReader(enc)
    assert r.compact_size(2**64) == n
    r.expect_end()


@FAST
@given(st.binary(max_size=600))
def test_var_bytes_round_trip(b):
    r = ByteReader(ser_var_bytes(b))
    assert r.var_bytes(len(b)) == b
    r.expect_end()


@FAST
@given(st.binary(max_size=20))
def test_random_bytes_only_decode_error(b):
    r = ByteReader(b)
    try:
        while True:
            r.compact_size(2**64)
            r.var_bytes(MAX_SIZE)
    except DecodeError:
        pass


def test_seek_bounds():
    r = ByteReader(b"abcd")
    r.seek(4)
    assert r.remaining() == 0
    r.seek(1)
    assert r.read(2) == b"bc"
    for bad in (-1, 5):
        with pytest.raises(DecodeError):
            r.seek(bad)


@FAST
@given(st.binary(max_size=12), st.integers(min_value=0, max_value=12))
def test_read_compact_size_at_agrees_with_reader(b, end):
    end = min(end, len(b))
    try:
        expected = ByteReader(b[:end]).compact_size(2**64)
    except DecodeError:
        with pytest.raises(DecodeError):
            read_compact_size_at(b, 0, end)
        return
    value, pos = read_compact_size_at(b, 0, end)
    assert value == expected and pos == len(ser_compact_size(value))
