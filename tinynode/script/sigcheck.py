"""Signature encoding rules and the lax ECDSA check consensus needs.

* `is_valid_signature_encoding`: BIP66 strict DER + hashtype byte (Core `IsValidSignatureEncoding`).
* `parse_der_lax`: Core's `ecdsa_signature_parse_der_lax`, which accepts the non-strict DER
  that pre-BIP66 transactions carry.
* `check_ecdsa`: Core `GenericTransactionSignatureChecker::CheckECDSASignature` minus the
  sighash: lax-parse, normalise high S, verify over the given digest via
  `primitives.keys.verify_compact`.
"""

from __future__ import annotations

from ..primitives.keys import SECP256K1_ORDER, verify_compact

__all__ = [
    "is_valid_signature_encoding", "is_low_der_signature", "is_defined_hashtype",
    "is_compressed_or_uncompressed_pubkey", "pubkey_size_ok", "parse_der_lax", "verify_lax",
]

_HALF_ORDER = SECP256K1_ORDER // 2


def is_valid_signature_encoding(sig: bytes) -> bool:
    """Core `IsValidSignatureEncoding` (BIP66): strict DER of (R, S) followed by one hashtype
    byte. `sig` includes the hashtype byte."""
    n = len(sig)
    if n < 9 or n > 73:
        return False
    if sig[0] != 0x30 or sig[1] != n - 3:
        return False
    len_r = sig[3]
    if 5 + len_r >= n:
        return False
    len_s = sig[5 + len_r]
    if len_r + len_s + 7 != n:
        return False
    if sig[2] != 0x02 or len_r == 0 or sig[4] & 0x80:
        return False
    if len_r > 1 and sig[4] == 0 and not sig[5] & 0x80:
        return False
    if sig[len_r + 4] != 0x02 or len_s == 0 or sig[len_r + 6] & 0x80:
        return False
    if len_s > 1 and sig[len_r + 6] == 0 and not sig[len_r + 7] & 0x80:
        return False
    return True


def is_low_der_signature(sig: bytes) -> bool:
    """Core `CPubKey::CheckLowS` on a signature without its hashtype byte: lax-parses and
    reports whether S ≤ n/2 (False also when it does not parse)."""
    rs = parse_der_lax(sig)
    if rs is None:
        return False
    return rs[1] <= _HALF_ORDER


def is_defined_hashtype(sig: bytes) -> bool:
    """Core `IsDefinedHashtypeSignature`: last byte without ANYONECANPAY is ALL, NONE or SINGLE."""
    if not sig:
        return False
    t = sig[-1] & ~0x80
    return 1 <= t <= 3


def is_compressed_or_uncompressed_pubkey(pk: bytes) -> bool:
    """Core `IsCompressedOrUncompressedPubKey` (STRICTENC): 0x04 + 64 bytes or 0x02/0x03 + 32."""
    n = len(pk)
    if n < 33:
        return False
    if pk[0] == 0x04:
        return n == 65
    if pk[0] == 0x02 or pk[0] == 0x03:
        return n == 33
    return False


def pubkey_size_ok(pk: bytes) -> bool:
    """Core `CPubKey(vch).IsValid()`: the prefix byte matches the length (02/03 → 33,
    04/06/07 → 65). The point itself is checked at verification."""
    if not pk:
        return False
    p = pk[0]
    if p == 2 or p == 3:
        return len(pk) == 33
    if p == 4 or p == 6 or p == 7:
        return len(pk) == 65
    return False


def _read_len(der: bytes, pos: int, n: int) -> tuple[int, int] | None:
    """One BER length as the lax parser reads it for an INTEGER; None = parse failure."""
    if pos == n:
        return None
    lenbyte = der[pos]
    pos += 1
    if lenbyte & 0x80:
        lenbyte -= 0x80
        if lenbyte > n - pos:
            return None
        while lenbyte > 0 and der[pos] == 0:
            pos += 1
            lenbyte -= 1
        if lenbyte >= 4:
            return None
        value = 0
        while lenbyte > 0:
            value = (value << 8) + der[pos]
            pos += 1
            lenbyte -= 1
    else:
        value = lenbyte
    if value > n - pos:
        return None
    return value, pos


def parse_der_lax(der: bytes) -> tuple[int, int] | None:
    """Core `ecdsa_signature_parse_der_lax` on a signature without its hashtype byte.

    Returns (r, s); None where Core's parser fails. A value that overflows 32 bytes or is ≥ the
    group order gives (0, 0), as Core substitutes an all-zero (never valid) signature."""
    n = len(der)
    pos = 0
    if pos == n or der[pos] != 0x30:
        return None
    pos += 1
    if pos == n:
        return None
    lenbyte = der[pos]
    pos += 1
    if lenbyte & 0x80:
        lenbyte -= 0x80
        if lenbyte > n - pos:
            return None
        pos += lenbyte
    if pos == n or der[pos] != 0x02:
        return None
    pos += 1
    rr = _read_len(der, pos, n)
    if rr is None:
        return None
    rlen, pos = rr
    rpos = pos
    pos += rlen
    if pos == n or der[pos] != 0x02:
        return None
    pos += 1
    sr = _read_len(der, pos, n)
    if sr is None:
        return None
    slen, spos = sr
    r_bytes = der[rpos:rpos + rlen].lstrip(b"\x00")
    s_bytes = der[spos:spos + slen].lstrip(b"\x00")
    if len(r_bytes) > 32 or len(s_bytes) > 32:
        return 0, 0
    r = int.from_bytes(r_bytes, "big")
    s = int.from_bytes(s_bytes, "big")
    if r >= SECP256K1_ORDER or s >= SECP256K1_ORDER:
        return 0, 0
    return r, s


def verify_lax(der: bytes, pubkey: bytes, digest: bytes) -> bool:
    """Core `CPubKey::Verify`: lax DER parse, normalise S to the low half, ECDSA-verify `digest`
    (already the message; not hashed again). `der` has no hashtype byte."""
    if not pubkey_size_ok(pubkey):
        return False
    rs = parse_der_lax(der)
    if rs is None:
        return False
    r, s = rs
    if r == 0 or s == 0:
        return False
    if s > _HALF_ORDER:
        s = SECP256K1_ORDER - s
    return verify_compact(pubkey, r.to_bytes(32, "big") + s.to_bytes(32, "big"), digest)
