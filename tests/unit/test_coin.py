"""Coin storage codec."""
import pytest
from hypothesis import given, settings, strategies as st

from tinynode.primitives.coin import Coin
from tinynode.primitives.serialize import ByteReader, DecodeError


def test_coin_round_trip_and_trailing():
    c = Coin(50 * 10**8, b"\x76\xa9\x14" + bytes(20) + b"\x88\xac", 123, True)
    raw = c.serialize()
    assert Coin.from_bytes(raw) == c and Coin.parse(ByteReader(raw)) == c
    with pytest.raises(DecodeError):
        Coin.from_bytes(raw + b"\x00")
    for n in range(len(raw)):
        with pytest.raises(DecodeError):
            Coin.from_bytes(raw[:n])


coins = st.builds(Coin, st.integers(min_value=0, max_value=21_000_000 * 10**8), st.binary(max_size=200),
                  st.integers(min_value=0, max_value=2**32 - 1), st.booleans())


@settings(max_examples=150, deadline=None)
@given(coins)
def test_coin_round_trip(c):
    assert Coin.from_bytes(c.serialize()) == c


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=60))
def test_random_bytes_only_decode_error(b):
    try:
        Coin.from_bytes(b)
    except DecodeError:
        pass


def test_coinbase_flag_is_canonical():
    raw = bytearray(Coin(1, b"", 0, False).serialize())
    raw[12] = 2
    with pytest.raises(DecodeError):
        Coin.from_bytes(bytes(raw))
