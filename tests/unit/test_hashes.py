"""Hash functions; RIPEMD-160 on the published test vectors (Dobbertin, Bosselaers, Preneel)."""
import hashlib

import pytest
from hypothesis import given, settings, strategies as st

from tinynode.primitives.hashes import (
    ZERO_HASH, hash160, hash_to_hex, hex_to_hash, ripemd160, ripemd160_pure, sha256, sha256d,
)

RIPEMD160_VECTORS = [
    (b"", "9c1185a5c5e9fc54612808977ee8f548b2258d31"),
    (b"a", "0bdc9d2d256b3ee9daae347be6f4dc835a467ffe"),
    (b"abc", "8eb208f7e05d987a9b044a8e98c6b087f15a0bfc"),
    (b"message digest", "5d0689ef49d2fae572b881b123a85ffa21595f36"),
    (b"abcdefghijklmnopqrstuvwxyz", "f71c27109c692c1b56bbdceb5b9d2865b3708dbc"),
    (b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", "12a053384a9c0c88e405a06c27dcf49ada62eb2b"),
    (b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", "b0e20b6e3116640286ed3a87a5713079b21f5189"),
    (b"1234567890" * 8, "9b752e45573d4b39f4dbd3323cab82bf63326bfb"),
]


@pytest.mark.parametrize("msg, digest", RIPEMD160_VECTORS)
def test_ripemd160_published_vectors(msg, digest):
    assert ripemd160_pure(msg).hex() == digest
    assert ripemd160(msg).hex() == digest


def test_ripemd160_million_a():
    # The last published vector; ~1 s in pure Python, so it is run once, in pure form only.
    assert ripemd160_pure(b"a" * 1_000_000).hex() == "52783243c1697bdbe16d37f97f68f08325dc1528"


@pytest.mark.parametrize("n", [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 128, 200])
def test_ripemd160_padding_boundaries_agree(n):
    msg = bytes(range(256))[:n] if n <= 256 else b"x" * n
    assert ripemd160_pure(msg) == ripemd160(msg)


def _hashlib_ripemd160_or_none(data):
    try:
        return hashlib.new("ripemd160", data).digest()
    except (ValueError, TypeError):
        return None


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=300))
def test_ripemd160_pure_matches_hashlib_when_present(b):
    ref = _hashlib_ripemd160_or_none(b)
    if ref is not None:
        assert ripemd160_pure(b) == ref
    assert ripemd160(b) == ripemd160_pure(b)


def test_sha256_sha256d_hash160():
    assert sha256(b"").hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert sha256d(b"").hex() == "5df6e0e2761359d30a8275058e299fcc0381534545f55cf43e41983f5d4c9456"
    # hash160 of the compressed public key of secret 1 (the P2PKH of 1BgGZ9tcN4rm9KBzDn7KprQz87SZ26SAMH).
    g = bytes.fromhex("0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798")
    assert hash160(g).hex() == "751e76e8199196d454941c45d1b3a323f1433bd6"


def test_hash_hex_is_reversed():
    h = bytes(range(32))
    assert hash_to_hex(h) == h[::-1].hex()
    assert hex_to_hash(hash_to_hex(h)) == h
    assert ZERO_HASH == bytes(32)
    for bad in ["00" * 31, "00" * 33, "zz" * 32, 123]:
        with pytest.raises(ValueError):
            hex_to_hash(bad)


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=32, max_size=32))
def test_hash_hex_round_trip(h):
    assert hex_to_hash(hash_to_hex(h)) == h
