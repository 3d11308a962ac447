"""Base58, Base58Check addresses and WIF on Core's base58 and key_io vectors."""
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from tinynode.primitives.address import (
    AddressError, address_from_script, b58check_decode, b58check_encode, b58decode, b58encode,
    decode_address, decode_wif, encode_address, encode_wif, p2pkh_script, p2sh_script,
)
from tinynode.params import REGTEST, TINYNET

DATA = Path(__file__).resolve().parents[1] / "data"


@dataclass(frozen=True)
class Prefixes:
    """A stand-in for ChainParams carrying only the base58 prefixes."""
    pubkey_prefix: int
    script_prefix: int
    wif_prefix: int


MAIN = Prefixes(0, 5, 128)
TEST = Prefixes(111, 196, 239)      # testnet3, testnet4, signet and regtest share these
CHAINS = {"main": MAIN, "testnet": TEST, "testnet4": TEST, "signet": TEST, "regtest": TEST}


def _load(name):
    return json.loads((DATA / name).read_text())


@pytest.mark.parametrize("hex_bytes, encoded", _load("base58_encode_decode.json"))
def test_base58_vectors(hex_bytes, encoded):
    assert b58encode(bytes.fromhex(hex_bytes)) == encoded
    assert b58decode(encoded) == bytes.fromhex(hex_bytes)


def _key_io_base58_rows():
    rows = _load("key_io_valid.json")
    out = [r for r in rows if r[2]["isPrivkey"] or r[1][:4] in ("76a9", "a914")]
    # Keep only base58 addresses (bech32 scriptPubKeys start with OP_0..OP_16).
    return out


BASE58_ROWS = _key_io_base58_rows()


def test_key_io_base58_row_count_matches_index():
    index = json.loads((DATA / "legacy_subset_index.json").read_text())["key_io_valid.json"]["base58_rows"]
    rows = _load("key_io_valid.json")
    assert [rows[i] for i in index] == BASE58_ROWS
    assert len(BASE58_ROWS) == 38


@pytest.mark.parametrize("string, payload, meta", BASE58_ROWS, ids=[r[0][:12] for r in BASE58_ROWS])
def test_key_io_valid_base58(string, payload, meta):
    params = CHAINS[meta["chain"]]
    payload = bytes.fromhex(payload)
    if meta["isPrivkey"]:
        secret, compressed = decode_wif(string, params)
        assert secret == payload and compressed == meta["isCompressed"]
        assert encode_wif(secret, compressed, params) == string
        with pytest.raises(AddressError):
            decode_address(string, params)
    else:
        addr = decode_address(string, params)
        assert addr.script_pubkey == payload
        assert encode_address(addr.kind, addr.hash160, params) == string
        assert address_from_script(payload, params) == string
        with pytest.raises(AddressError):
            decode_wif(string, params)
    # Never valid on a chain with other prefixes.
    other = TEST if params is MAIN else MAIN
    with pytest.raises(AddressError):
        decode_wif(string, other) if meta["isPrivkey"] else decode_address(string, other)


@pytest.mark.parametrize("row", _load("key_io_invalid.json"))
def test_key_io_invalid_rejected_everywhere(row):
    (string,) = row
    for params in (MAIN, TEST, REGTEST, TINYNET):
        with pytest.raises(AddressError):
            decode_address(string, params)
        with pytest.raises(AddressError):
            decode_wif(string, params)


def test_scripts_and_non_address_scripts():
    h = bytes(range(20))
    assert p2pkh_script(h).hex() == "76a914" + h.hex() + "88ac"
    assert p2sh_script(h).hex() == "a914" + h.hex() + "87"
    assert address_from_script(b"\x6a", MAIN) is None
    assert address_from_script(p2pkh_script(h)[:-1], MAIN) is None


def test_tinynet_and_regtest_prefixes():
    h = bytes(20)
    for params in (REGTEST, TINYNET):
        for kind in ("p2pkh", "p2sh"):
            s = encode_address(kind, h, params)
            a = decode_address(s, params)
            assert (a.kind, a.hash160) == (kind, h)
    assert encode_address("p2pkh", h, TINYNET)[0] == "T"        # prefix 65


@pytest.mark.parametrize("bad", ["", "0OIl", "1" * 101, "\u00e9abc", "1111"])
def test_malformed_strings(bad):
    with pytest.raises(AddressError):
        b58check_decode(bad)


def test_checksum_and_length_checks():
    good = encode_address("p2pkh", bytes(20), MAIN)
    bad = good[:-1] + ("2" if good[-1] != "2" else "3")
    with pytest.raises(AddressError, match="checksum"):
        decode_address(bad, MAIN)
    with pytest.raises(AddressError, match="length"):
        decode_address(b58check_encode(b"\x00" + bytes(19)), MAIN)
    with pytest.raises(AddressError):
        decode_address(b58check_encode(b"\x01" + bytes(20)), MAIN)
    with pytest.raises(AddressError):   # compressed flag other than 0x01
        decode_wif(b58check_encode(b"\x80" + bytes(31) + b"\x01" + b"\x02"), MAIN)


h160s = st.binary(min_size=20, max_size=20)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=60))
def test_base58_round_trip(b):
    assert b58decode(b58encode(b)) == b
    assert b58check_decode(b58check_encode(b)) == b


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(["p2pkh", "p2sh"]), h160s, st.sampled_from([MAIN, TEST, TINYNET]))
def test_address_round_trip(kind, h, params):
    a = decode_address(encode_address(kind, h, params), params)
    assert (a.kind, a.hash160) == (kind, h)


@settings(max_examples=150, deadline=None)
@given(st.binary(min_size=32, max_size=32), st.booleans(), st.sampled_from([MAIN, TEST, TINYNET]))
def test_wif_round_trip(secret, compressed, params):
    assert decode_wif(encode_wif(secret, compressed, params), params) == (secret, compressed)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_random_strings_only_address_error(s):
    for fn in (decode_address, decode_wif):
        try:
            fn(s, MAIN)
        except AddressError:
            pass


def test_white_space_as_core_decode_base58():
    # Core's DecodeBase58 skips leading and trailing white space and rejects it inside.
    assert b58decode(" \t\n\v\f\r2g \r\f\v\n\t ") == b"a"
    a = encode_address("p2pkh", bytes(20), MAIN)
    assert decode_address(" " + a + "\n", MAIN).hash160 == bytes(20)
    for bad in (a[:5] + " " + a[5:], "2 g", "2\x00g"):
        with pytest.raises(AddressError):
            b58decode(bad) if len(bad) < 5 else decode_address(bad, MAIN)
