"""Keys: RFC 6979 + low-S signing (checked against an independent pure-Python signer), DER, SEC."""
import hashlib
import hmac

import pytest
from hypothesis import given, settings, strategies as st

from tinynode.primitives.keys import (
    SECP256K1_ORDER as N, PrivateKey, PublicKey, der_decode_signature, der_encode_signature,
    is_valid_pubkey, verify_compact,
)

# --- an independent reference: secp256k1 affine arithmetic and RFC 6979 §3.2 (test-only) ----
P = 2**256 - 2**32 - 977
G = (0x79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798,
     0x483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8)


def _add(a, b):
    if a is None:
        return b
    if b is None:
        return a
    if a[0] == b[0] and (a[1] + b[1]) % P == 0:
        return None
    if a == b:
        lam = 3 * a[0] * a[0] * pow(2 * a[1], -1, P) % P
    else:
        lam = (b[1] - a[1]) * pow(b[0] - a[0], -1, P) % P
    x = (lam * lam - a[0] - b[0]) % P
    return x, (lam * (a[0] - x) - a[1]) % P


def _mul(k, pt=G):
    out = None
    while k:
        if k & 1:
            out = _add(out, pt)
        pt = _add(pt, pt)
        k >>= 1
    return out


def _rfc6979_k(secret: int, digest: bytes) -> int:
    x = secret.to_bytes(32, "big")
    h = (int.from_bytes(digest, "big") % N).to_bytes(32, "big")
    v, k = b"\x01" * 32, b"\x00" * 32
    k = hmac.new(k, v + b"\x00" + x + h, hashlib.sha256).digest()
    v = hmac.new(k, v, hashlib.sha256).digest()
    k = hmac.new(k, v + b"\x01" + x + h, hashlib.sha256).digest()
    v = hmac.new(k, v, hashlib.sha256).digest()
    while True:
        v = hmac.new(k, v, hashlib.sha256).digest()
        cand = int.from_bytes(v, "big")
        if 0 < cand < N:
            return cand
        k = hmac.new(k, v + b"\x00", hashlib.sha256).digest()
        v = hmac.new(k, v, hashlib.sha256).digest()


def _reference_sign(secret: int, digest: bytes) -> tuple[int, int]:
    k = _rfc6979_k(secret, digest)
    r = _mul(k)[0] % N
    s = pow(k, -1, N) * (int.from_bytes(digest, "big") + r * secret) % N
    return r, min(s, N - s)


def _sec(point, compressed=True):
    x, y = point
    if compressed:
        return bytes((2 + (y & 1),)) + x.to_bytes(32, "big")
    return b"\x04" + x.to_bytes(32, "big") + y.to_bytes(32, "big")


# Published RFC 6979 secp256k1/SHA-256 vectors (bitcointalk topic 285142, reused by many
# libraries): (secret, message, k, r, low-S s). The reference above recomputes every value.
VECTORS = [
    (1, b"Satoshi Nakamoto",
     0x8F8A276C19F4149656B280621E358CCE24F5F52542772691EE69063B74F15D15,
     0x934B1EA10A4B3C1757E2B0C017D0B6143CE3C9A7E6A4A49860D7A6AB210EE3D8,
     0x2442CE9D2B916064108014783E923EC36B49743E2FFA1C4496F01A512AAFD9E5),
    (1, b"All those moments will be lost in time, like tears in rain. Time to die...",
     0x38AA22D72376B4DBC472E06C3BA403EE0A394DA63FC58D88686C611ABA98D6B3,
     0x8600DBD41E348FE5C9465AB92D23E3DB8B98B873BEECD930736488696438CB6B,
     0x547FE64427496DB33BF66019DACBF0039C04199ABB0122918601DB38A72CFC21),
    (N - 1, b"Satoshi Nakamoto",
     0x33A19B60E25FB6F4435AF53A3D42D493644827367E6453928554F43E49AA6F90,
     0xFD567D121DB66E382991534ADA77A6BD3106F0A1098C231E47993447CD6AF2D0,
     0x6B39CD0EB1BC8603E159EF5C20A5C8AD685A45B06CE9BEBED3F153D10D93BED5),
]


@pytest.mark.parametrize("secret, msg, k, r, s", VECTORS)
def test_rfc6979_vectors(secret, msg, k, r, s):
    digest = hashlib.sha256(msg).digest()
    assert _rfc6979_k(secret, digest) == k
    assert _reference_sign(secret, digest) == (r, s)
    key = PrivateKey(secret.to_bytes(32, "big"))
    sig = key.sign(digest)
    assert der_decode_signature(sig) == (r, s)
    assert sig == der_encode_signature(r, s)
    assert key.sign(digest) == sig                        # deterministic
    assert key.public_key.verify(sig, digest)
    assert key.public_key.sec == _sec(_mul(secret))


@settings(max_examples=15, deadline=None)
@given(st.integers(min_value=1, max_value=N - 1), st.binary(min_size=32, max_size=32))
def test_sign_matches_reference_and_is_low_s(secret, digest):
    key = PrivateKey(secret.to_bytes(32, "big"))
    r, s = der_decode_signature(key.sign(digest))
    assert (r, s) == _reference_sign(secret, digest)
    assert s <= N // 2
    pub = key.public_key
    assert pub.verify(key.sign(digest), digest)
    assert verify_compact(pub.sec, r.to_bytes(32, "big") + s.to_bytes(32, "big"), digest)
    assert not verify_compact(pub.sec, r.to_bytes(32, "big") + s.to_bytes(32, "big"),
                              bytes(32) if digest != bytes(32) else b"\x01" * 32)


def test_public_key_sec_forms():
    key = PrivateKey((1).to_bytes(32, "big"))
    g_c = bytes.fromhex("0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798")
    assert key.public_key.sec == g_c and key.public_key.compressed
    unc = PrivateKey((1).to_bytes(32, "big"), compressed=False).public_key
    assert unc.sec == _sec(G, compressed=False) and not unc.compressed
    assert unc.to_sec(compressed=True) == g_c and PublicKey(g_c).to_sec(False) == unc.sec
    assert key.public_key.hash160().hex() == "751e76e8199196d454941c45d1b3a323f1433bd6"
    assert unc.hash160().hex() == "91b24bf9f5288532960ac687abb035127b1d28a5"
    # Hybrid keys (0x06/0x07 + x + y) parse, as libsecp256k1's ec_pubkey_parse allows.
    hybrid = bytes((6 + (G[1] & 1),)) + unc.sec[1:]
    assert is_valid_pubkey(hybrid)


@pytest.mark.parametrize("bad", [b"", b"\x02" + bytes(32), b"\x05" + bytes(32), b"\x04" + bytes(64),
                                 bytes.fromhex("0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f817")])
def test_invalid_public_keys(bad):
    assert not is_valid_pubkey(bad)
    with pytest.raises(ValueError):
        PublicKey(bad)
    assert not verify_compact(bad, bytes(64), bytes(32))


@pytest.mark.parametrize("secret", [b"", bytes(32), N.to_bytes(32, "big"), (N + 1).to_bytes(32, "big"), bytes(31) + b"\x01" + b"\x00"])
def test_invalid_private_keys(secret):
    with pytest.raises(ValueError):
        PrivateKey(secret)


def test_generate_and_sign_bad_digest():
    key = PrivateKey.generate()
    assert 0 < int.from_bytes(key.secret, "big") < N and "secret" not in repr(key).lower().replace("<secret>", "")
    with pytest.raises(ValueError):
        key.sign(b"short")


def test_verify_rejects_high_s_and_garbage():
    key = PrivateKey((7).to_bytes(32, "big"))
    digest = hashlib.sha256(b"x").digest()
    r, s = der_decode_signature(key.sign(digest))
    high = der_encode_signature(r, N - s)
    assert not key.public_key.verify(high, digest)         # libsecp256k1 is strict: high S fails
    assert not key.public_key.verify(b"\x30\x00", digest)
    assert not key.public_key.verify(key.sign(digest), b"\x00" * 32)
    assert not verify_compact(key.public_key.sec, bytes(64), digest)
    assert not verify_compact(key.public_key.sec, b"\x01" * 10, digest)


def test_der_strictness():
    assert der_encode_signature(1, 1).hex() == "3006020101020101"
    assert der_encode_signature(0x80, 0x7F).hex() == "300702020080" "02017f"
    assert der_decode_signature(bytes.fromhex("3006020101020101")) == (1, 1)
    bad = [
        "3006020101020101" + "00",           # trailing byte
        "3106020101020101",                  # wrong tag
        "3007020101020101",                  # wrong total length
        "3006030101020101",                  # r not an integer
        "300602010102010100",                # length mismatch
        "30060201810201" "01",               # negative r
        "3007020200010201" "01",             # r padded without need
        "300602000201010201",                # zero-length r
        "30050201010201",                    # truncated
        "",
    ]
    for h in bad:
        with pytest.raises(ValueError):
            der_decode_signature(bytes.fromhex(h))


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=2**256 - 1), st.integers(min_value=0, max_value=2**256 - 1))
def test_der_round_trip(r, s):
    assert der_decode_signature(der_encode_signature(r, s)) == (r, s)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_der_random_bytes_only_value_error(b):
    try:
        r, s = der_decode_signature(b)
    except ValueError:
        return
    assert der_encode_signature(r, s) == b                  # strict: only the canonical form decodes


def test_verify_compact_edges():
    key = PrivateKey((11).to_bytes(32, "big"), compressed=False)
    digest = hashlib.sha256(b"edges").digest()
    r, s = der_decode_signature(key.sign(digest))
    sig64 = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    unc = key.public_key.sec
    assert verify_compact(unc, sig64, digest)
    assert verify_compact(bytearray(unc), bytearray(sig64), memoryview(digest))
    assert verify_compact(key.public_key.to_sec(True), sig64, digest)
    x, y = int.from_bytes(unc[1:33], "big"), int.from_bytes(unc[33:], "big")
    assert verify_compact(bytes((6 + (y & 1),)) + unc[1:], sig64, digest)        # hybrid
    assert not verify_compact(bytes((7 - (y & 1),)) + unc[1:], sig64, digest)    # wrong hybrid parity
    assert not verify_compact(unc, sig64 + b"\x00", digest)
    assert not verify_compact(unc, sig64, digest[:31])
    assert not verify_compact(unc, r.to_bytes(32, "big") + (N - s).to_bytes(32, "big"), digest)   # high S
    assert not verify_compact(unc, N.to_bytes(32, "big") + s.to_bytes(32, "big"), digest)         # r >= n
    assert not verify_compact(unc, bytes(32) + s.to_bytes(32, "big"), digest)                     # r = 0
    assert x > 0


def test_private_key_public_key_is_cached_and_bytes_like_secret():
    key = PrivateKey(bytearray(31) + b"\x05")
    assert isinstance(key.secret, bytes) and key.public_key is key.public_key
    assert key == PrivateKey(bytes(31) + b"\x05")
    with pytest.raises(ValueError):
        PrivateKey(5)  # type: ignore[arg-type]


def test_public_key_verify_inputs():
    key = PrivateKey((13).to_bytes(32, "big"))
    digest = hashlib.sha256(b"inputs").digest()
    sig = key.sign(digest)
    pub = key.public_key
    assert pub.verify(sig, digest) and pub.verify(bytearray(sig), memoryview(digest))
    assert not pub.verify(sig, digest[:31]) and not pub.verify(b"", digest)
    assert not pub.verify(sig + b"\x00", digest)                 # not strict DER
    assert not PrivateKey((14).to_bytes(32, "big")).public_key.verify(sig, digest)
