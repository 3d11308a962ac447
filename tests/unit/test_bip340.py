"""BIP340: tagged hashes, x-only keys and Schnorr signatures, against BIP340's own
test-vectors.csv (tests/data/bip340_test_vectors.csv, provenance in tests/data/README.md)."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import pytest

from tinynode.primitives.hashes import tagged_hash, tagged_hasher
from tinynode.primitives.keys import PrivateKey, is_valid_xonly, verify_schnorr

DATA = Path(__file__).resolve().parents[1] / "data"
ROWS = list(csv.DictReader((DATA / "bip340_test_vectors.csv").open()))


def test_the_vector_file_is_complete():
    assert [int(r["index"]) for r in ROWS] == list(range(19))
    assert sum(r["verification result"] == "TRUE" for r in ROWS) == 9
    assert sum(bool(r["secret key"]) for r in ROWS) == 8


@pytest.mark.parametrize("row", ROWS, ids=lambda r: f"vector{r['index']}")
def test_verification_rows(row):
    pk = bytes.fromhex(row["public key"])
    msg = bytes.fromhex(row["message"])
    sig = bytes.fromhex(row["signature"])
    assert verify_schnorr(pk, sig, msg) is (row["verification result"] == "TRUE"), row["comment"]


@pytest.mark.parametrize("row", [r for r in ROWS if r["secret key"]], ids=lambda r: f"vector{r['index']}")
def test_signing_rows_give_the_listed_signature(row):
    key = PrivateKey(bytes.fromhex(row["secret key"]))
    assert key.xonly_public_key.hex().upper() == row["public key"]
    msg = bytes.fromhex(row["message"])
    sig = key.sign_schnorr(msg, bytes.fromhex(row["aux_rand"]))
    assert sig.hex().upper() == row["signature"]
    assert verify_schnorr(key.xonly_public_key, sig, msg)
    assert not verify_schnorr(key.xonly_public_key, sig, msg + b"\x00")


def test_tagged_hash_is_bip340s_construction():
    for tag in ("BIP0340/challenge", "TapLeaf", "TapBranch", "TapTweak", "TapSighash", ""):
        t = hashlib.sha256(tag.encode()).digest()
        for msg in (b"", b"abc", bytes(range(200))):
            assert tagged_hash(tag, msg) == hashlib.sha256(t + t + msg).digest()
    h = tagged_hasher("TapLeaf")
    h.update(b"\xc0\x01\x51")
    assert h.digest() == tagged_hash("TapLeaf", b"\xc0\x01\x51")
    # the cached prefix state is never consumed by a caller
    assert tagged_hash("TapLeaf", b"") == tagged_hash("TapLeaf", b"")


def test_xonly_validity_and_bad_lengths():
    assert is_valid_xonly(bytes.fromhex(ROWS[0]["public key"]))
    assert not is_valid_xonly(bytes.fromhex(ROWS[5]["public key"]))    # not on the curve
    assert not is_valid_xonly(bytes.fromhex(ROWS[14]["public key"]))   # ≥ p
    assert not is_valid_xonly(bytes(33))
    pk = bytes.fromhex(ROWS[1]["public key"])
    sig = bytes.fromhex(ROWS[1]["signature"])
    msg = bytes.fromhex(ROWS[1]["message"])
    assert verify_schnorr(pk, sig, msg)
    assert not verify_schnorr(pk, sig[:63], msg)
    assert not verify_schnorr(pk, sig + b"\x01", msg)
    assert not verify_schnorr(pk[:31], sig, msg)
