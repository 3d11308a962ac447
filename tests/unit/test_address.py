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
    """A stand-in for ChainParams carrying only the base58 prefixes and the bech32 HRP."""
    pubkey_prefix: int
    script_prefix: int
    wif_prefix: int
    bech32_hrp: str


MAIN = Prefixes(0, 5, 128, "bc")
TEST = Prefixes(111, 196, 239, "tb")      # testnet3, testnet4 and signet share these
RT = Prefixes(111, 196, 239, "bcrt")      # regtest: testnet's base58 prefixes, its own HRP
CHAINS = {"main": MAIN, "testnet": TEST, "testnet4": TEST, "signet": TEST, "regtest": RT}


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
    if not meta["isPrivkey"] and params is RT:
        other = MAIN
    with pytest.raises(AddressError):
        decode_wif(string, other) if meta["isPrivkey"] else decode_address(string, other)


@pytest.mark.parametrize("row", _load("key_io_invalid.json"))
def test_key_io_invalid_rejected_everywhere(row):
    (string,) = row
    for params in (MAIN, TEST, RT, REGTEST, TINYNET):
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


# --- bech32 / bech32m segwit addresses ----------------------------------------------------------

from tinynode.primitives.address import (  # noqa: E402
    BECH32, BECH32M, bech32_decode, bech32_encode, decode_segwit_address, encode_segwit_address,
    witness_program, witness_script,
)

SEGWIT_ROWS = [r for i, r in enumerate(_load("key_io_valid.json")) if r not in BASE58_ROWS]


def test_every_key_io_valid_row_is_base58_or_segwit():
    assert len(SEGWIT_ROWS) == 32 and len(SEGWIT_ROWS) + len(BASE58_ROWS) == 70
    assert all(r[2].get("tryCaseFlip") for r in SEGWIT_ROWS)


@pytest.mark.parametrize("string, payload, meta", SEGWIT_ROWS, ids=[r[0][:14] for r in SEGWIT_ROWS])
def test_key_io_valid_segwit(string, payload, meta):
    """Core's key_io_tests: the address decodes to the scriptPubKey, the scriptPubKey encodes
    back to the address, the case-flipped string decodes the same, and it is no WIF key."""
    params = CHAINS[meta["chain"]]
    spk = bytes.fromhex(payload)
    addr = decode_address(string, params)
    assert addr.script_pubkey == spk and addr.is_witness
    assert address_from_script(spk, params) == string
    assert encode_address(addr.kind, addr.program, params, addr.witness_version) == string
    assert decode_address(string.swapcase(), params).script_pubkey == spk
    with pytest.raises(AddressError):
        decode_wif(string, params)
    for other in {MAIN, TEST, RT} - {params}:
        with pytest.raises(AddressError):
            decode_address(string, other)


def test_segwit_kinds():
    a = decode_address("bcrt1qdavt4j2sd7dlhqsavtnfxvzppw6k7qy97tmnu9", REGTEST)
    assert (a.kind, a.witness_version, len(a.program)) == ("p2wpkh", 0, 20)
    a = decode_address("bcrt1qan8gntac7z7me2ejt4hpru42ad2f759fmy0m3ejvs98656znv7eqga4uhv", REGTEST)
    assert (a.kind, a.witness_version) == ("p2wsh", 0)
    a = decode_address("bcrt1pfwxjqvtt4tcxrtdluukfmy2dv7xd2qzdfy6kajv5nwn4yam3wxkq3553uh", REGTEST)
    assert (a.kind, a.witness_version) == ("p2tr", 1)
    a = decode_address("bcrt1sx6p8njlx7h9mc2agz4yg82dzne23050ncq72cneeecez2pst8mahn8xecsf8g6hzx94420",
                       REGTEST)
    assert (a.kind, a.witness_version) == ("witness_unknown", 16)
    # tinynet's HRP
    s = encode_address("p2wpkh", bytes(20), TINYNET)
    assert s.startswith("tn01q") and decode_address(s, TINYNET).script_pubkey == b"\x00\x14" + bytes(20)
    with pytest.raises(AddressError, match="Base58 encoding"):      # another network's HRP
        decode_address("bcrt1qdavt4j2sd7dlhqsavtnfxvzppw6k7qy97tmnu9", TINYNET)
    with pytest.raises(AddressError, match=r"\(expected bc, got bcrt\)"):   # Core's own example
        decode_address("bcrt1qdavt4j2sd7dlhqsavtnfxvzppw6k7qy97tmnu9", MAIN)


# Core's test/functional/rpc_validateaddress.py (main chain): BIP173 and BIP350 vectors with
# Core's error sentences. Checksum errors: Core names the encoding from its error locator;
# tinynode says "Invalid checksum" (no error locations), so those rows match on "checksum".
BIP_INVALID = [
    ("tc1qw508d6qejxtdg4y5r3zarvary0c5xw7kg3g4ty", "Invalid or unsupported Segwit (Bech32) or Base58 encoding."),
    ("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5", "checksum"),
    ("BC13W508D6QEJXTDG4Y5R3ZARVARY0C5XW7KN40WF2", "Version 1+ witness address must use Bech32m checksum"),
    ("bc1rw5uspcuh", "Version 1+ witness address must use Bech32m checksum"),
    ("bc10w508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7kw5rljs90",
     "Version 1+ witness address must use Bech32m checksum"),
    ("BC1QR508D6QEJXTDG4Y5R3ZARVARYV98GJ9P", "Invalid Bech32 v0 address program size (16 bytes), per BIP141"),
    ("tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sL5k7",
     "Invalid or unsupported Segwit (Bech32) or Base58 encoding."),
    ("BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3t4", "Invalid character or mixed case"),
    ("bc1zw508d6qejxtdg4y5r3zarvaryvqyzf3du", "Version 1+ witness address must use Bech32m checksum"),
    ("tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3pjxtptv",
     "Invalid or unsupported Segwit (Bech32) or Base58 encoding."),
    ("bc1gmk9yu", "Empty Bech32 data section"),
    ("tc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq5zuyut",
     "Invalid or unsupported Segwit (Bech32) or Base58 encoding."),
    ("bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqh2y7hd",
     "Version 1+ witness address must use Bech32m checksum"),
    ("BC1S0XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ54WELL",
     "Version 1+ witness address must use Bech32m checksum"),
    ("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kemeawh", "Version 0 witness address must use Bech32 checksum"),
    ("bc1p38j9r5y49hruaue7wxjce0updqjuyyx0kh56v8s25huc6995vvpql3jow4", "Invalid Base 32 character"),
    ("BC130XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ7ZWS8R", "Invalid Bech32 address witness version"),
    ("bc1pw5dgrnzv", "Invalid Bech32 address program size (1 byte)"),
    ("bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7v8n0nx0muaewav253zgeav",
     "Invalid Bech32 address program size (41 bytes)"),
    ("bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7v07qwwzcrf", "Invalid padding in Bech32 data section"),
]
BIP_VALID = [
    ("BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4", "0014751e76e8199196d454941c45d1b3a323f1433bd6"),
    ("bc1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3qccfmv3",
     "00201863143c14c5166804bd19203356da136c985678cd4d27a1b8c6329604903262"),
    ("bc1pw508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7kt5nd6y",
     "5128751e76e8199196d454941c45d1b3a323f1433bd6751e76e8199196d454941c45d1b3a323f1433bd6"),
    ("BC1SW50QGDZ25J", "6002751e"),
    ("bc1zw508d6qejxtdg4y5r3zarvaryvaxxpcs", "5210751e76e8199196d454941c45d1b3a323"),
    ("bc1qqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvses5wp4dt",
     "0020000000c4a5cad46221b2a187905e5266362b99d5e91c6ce24d165dab93e86433"),
    ("bc1pqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvses7epu4h",
     "5120000000c4a5cad46221b2a187905e5266362b99d5e91c6ce24d165dab93e86433"),
    ("bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0",
     "512079be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"),
    ("bc1pfeessrawgf", "51024e73"),     # pay-to-anchor
]


@pytest.mark.parametrize("string, reason", BIP_INVALID, ids=[r[0][:16] for r in BIP_INVALID])
def test_bip173_bip350_invalid_addresses(string, reason):
    with pytest.raises(AddressError) as e:
        decode_address(string, MAIN)
    assert reason in str(e.value)


@pytest.mark.parametrize("string, spk", BIP_VALID, ids=[r[0][:16] for r in BIP_VALID])
def test_bip173_bip350_valid_addresses(string, spk):
    a = decode_address(string, MAIN)
    assert a.script_pubkey.hex() == spk
    assert address_from_script(bytes.fromhex(spk), MAIN) == string.lower()


# Core's src/test/bech32_tests.cpp
BECH32_VALID = ["A12UEL5L", "a12uel5l",
                "an83characterlonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1tt5tgs",
                "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw",
                "11qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqc8247j",
                "split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w", "?1ezyfcl"]
BECH32M_VALID = ["A1LQFN3A", "a1lqfn3a",
                 "an83characterlonghumanreadablepartthatcontainsthetheexcludedcharactersbioandnumber11sg7hg6",
                 "abcdef1l7aum6echk45nj3s0wdvt2fg8x9yrzpqzd3ryx",
                 "11llllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllludsr8",
                 "split1checkupstagehandshakeupstreamerranterredcaperredlc445v", "?1v759aa"]
BECH32_INVALID = [
    (" 1nwldj5", "Invalid character or mixed case"), ("\x7f1axkwrx", "Invalid character or mixed case"),
    ("\x801eym55h", "Invalid character or mixed case"),
    ("an84characterslonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1569pvx",
     "Bech32 string too long"),
    ("pzry9x0s0muk", "Missing separator"), ("1pzry9x0s0muk", "Invalid separator position"),
    ("x1b4n0q5v", "Invalid Base 32 character"), ("li1dgmt3", "Invalid separator position"),
    ("de1lg7wt\xff", "Invalid character or mixed case"), ("A1G7SGD8", "Invalid checksum"),
    ("10a06t8", "Invalid separator position"), ("1qzzfhee", "Invalid separator position"),
    ("a12UEL5L", "Invalid character or mixed case"), ("A12uEL5L", "Invalid character or mixed case"),
    ("abcdef1qpzrz9x8gf2tvdw0s3jn54khce6mua7lmqqqxw", "checksum"),
    ("test1zg69w7y6hn0aqy352euf40x77qddq3dc", "checksum"),
    (" 1xj0phk", "Invalid character or mixed case"), ("\x7f1g6xzxy", "Invalid character or mixed case"),
    ("\x801vctc34", "Invalid character or mixed case"),
    ("an84characterslonghumanreadablepartthatcontainsthetheexcludedcharactersbioandnumber11d6pts4",
     "Bech32 string too long"),
    ("qyrz8wqd2c9m", "Missing separator"), ("1qyrz8wqd2c9m", "Invalid separator position"),
    ("y1b0jsk6g", "Invalid Base 32 character"), ("lt1igcx5c0", "Invalid Base 32 character"),
    ("in1muywd", "Invalid separator position"), ("mm1crxm3i", "Invalid Base 32 character"),
    ("au1s5cgom", "Invalid Base 32 character"), ("M1VUXWEZ", "Invalid checksum"),
    ("16plkw9", "Invalid separator position"), ("1p2gdwpf", "Invalid separator position"),
    ("abcdef1l7aum6echk45nj2s0wdvt2fg8x9yrzpqzd3ryx", "checksum"),
    ("test1zg69v7y60n00qy352euf40x77qcusag6", "checksum"),
]


@pytest.mark.parametrize("string", BECH32_VALID + BECH32M_VALID)
def test_bech32_and_bech32m_strings(string):
    encoding, hrp, data = bech32_decode(string)
    assert encoding == (BECH32 if string in BECH32_VALID else BECH32M)
    assert bech32_encode(hrp, data, encoding) == string.lower()


@pytest.mark.parametrize("string, reason", BECH32_INVALID)
def test_bech32_invalid_strings(string, reason):
    with pytest.raises(AddressError) as e:
        bech32_decode(string)
    assert reason in str(e.value)


def test_witness_program_detection():
    assert witness_program(witness_script(0, bytes(20))) == (0, bytes(20))
    assert witness_program(witness_script(16, bytes(40))) == (16, bytes(40))
    assert witness_program(bytes((0x00, 1, 7))) is None            # program too short
    assert witness_program(bytes((0x51, 41)) + bytes(41)) is None   # program too long
    assert witness_program(bytes((0x4f, 2, 1, 2))) is None          # OP_1NEGATE is no version
    # v0 programs other than 20/32 bytes have no address (Core: NONSTANDARD)
    assert address_from_script(witness_script(0, bytes(21)), MAIN) is None
    with pytest.raises(AddressError):
        encode_segwit_address("bc", 0, bytes(21))


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 16), st.binary(min_size=2, max_size=40), st.sampled_from([MAIN, TEST, RT, TINYNET]))
def test_segwit_round_trip(version, program, params):
    if version == 0 and len(program) not in (20, 32):
        return
    s = encode_segwit_address(params.bech32_hrp, version, program)
    assert decode_segwit_address(s, params.bech32_hrp) == (version, program)
    assert decode_address(s, params).script_pubkey == witness_script(version, program)
