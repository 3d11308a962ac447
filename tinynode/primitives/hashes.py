"""Bitcoin's hash functions: sha256, sha256d, ripemd160, hash160, and BIP340 tagged hashes.

Hashes are 32-byte little-endian `bytes` inside tinynode ("internal order", what sha256d
returns); `hash_to_hex` / `hex_to_hash` reverse them for display, as Core's `uint256::GetHex`.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

__all__ = ["sha256", "sha256d", "ripemd160", "hash160", "hash_to_hex", "hex_to_hash", "ZERO_HASH",
           "tagged_hash", "tagged_hasher"]

ZERO_HASH = bytes(32)

_sha256 = hashlib.sha256


def sha256(data: bytes) -> bytes:
    return _sha256(data).digest()


def sha256d(data: bytes) -> bytes:
    return _sha256(_sha256(data).digest()).digest()


@lru_cache(maxsize=32)
def _tag_state(tag: str):
    """A sha256 state that has absorbed sha256(tag) || sha256(tag) (the 64-byte prefix of every
    hash with this tag). A pure memo: the state is only ever copied, never updated."""
    t = _sha256(tag.encode()).digest()
    return _sha256(t + t)


def tagged_hasher(tag: str):
    """A fresh sha256 object primed with BIP340's prefix for `tag` (Core `TaggedHash`, a
    `HashWriter` to `.update()` and `.digest()`)."""
    return _tag_state(tag).copy()


def tagged_hash(tag: str, msg: bytes) -> bytes:
    """BIP340 `hash_tag(msg)` = sha256(sha256(tag) || sha256(tag) || msg); the tag's prefix state
    is computed once per tag."""
    h = _tag_state(tag).copy()
    h.update(msg)
    return h.digest()


def hash_to_hex(h: bytes) -> str:
    """Display form of an internal-order hash (reversed hex)."""
    return h[::-1].hex()


def hex_to_hash(s: str) -> bytes:
    """Internal-order bytes from a display hex string; ValueError unless 64 hex digits."""
    if not isinstance(s, str) or len(s) != 64:
        raise ValueError("a hash is 64 hex digits")
    return bytes.fromhex(s)[::-1]


# --- RIPEMD-160 -------------------------------------------------------------------------------
# OpenSSL 3 moved ripemd160 to its "legacy" provider, so hashlib may lack it. This small pure
# implementation (after the RIPEMD-160 paper by Dobbertin, Bosselaers and Preneel) is used only
# then, and is tested against the published test vectors either way.

_RL = (
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
    7, 4, 13, 1, 10, 6, 15, 3, 12, 0, 9, 5, 2, 14, 11, 8,
    3, 10, 14, 4, 9, 15, 8, 1, 2, 7, 0, 6, 13, 11, 5, 12,
    1, 9, 11, 10, 0, 8, 12, 4, 13, 3, 7, 15, 14, 5, 6, 2,
    4, 0, 5, 9, 7, 12, 2, 10, 14, 1, 3, 8, 11, 6, 15, 13,
)
_RR = (
    5, 14, 7, 0, 9, 2, 11, 4, 13, 6, 15, 8, 1, 10, 3, 12,
    6, 11, 3, 7, 0, 13, 5, 10, 14, 15, 8, 12, 4, 9, 1, 2,
    15, 5, 1, 3, 7, 14, 6, 9, 11, 8, 12, 2, 10, 0, 4, 13,
    8, 6, 4, 1, 3, 11, 15, 0, 5, 12, 2, 13, 9, 7, 10, 14,
    12, 15, 10, 4, 1, 5, 8, 7, 6, 2, 13, 14, 0, 3, 9, 11,
)
_SL = (
    11, 14, 15, 12, 5, 8, 7, 9, 11, 13, 14, 15, 6, 7, 9, 8,
    7, 6, 8, 13, 11, 9, 7, 15, 7, 12, 15, 9, 11, 7, 13, 12,
    11, 13, 6, 7, 14, 9, 13, 15, 14, 8, 13, 6, 5, 12, 7, 5,
    11, 12, 14, 15, 14, 15, 9, 8, 9, 14, 5, 6, 8, 6, 5, 12,
    9, 15, 5, 11, 6, 8, 13, 12, 5, 12, 13, 14, 11, 8, 5, 6,
)
_SR = (
    8, 9, 9, 11, 13, 15, 15, 5, 7, 7, 8, 11, 14, 14, 12, 6,
    9, 13, 15, 7, 12, 8, 9, 11, 7, 7, 12, 7, 6, 15, 13, 11,
    9, 7, 15, 11, 8, 6, 6, 14, 12, 13, 5, 14, 13, 13, 7, 5,
    15, 5, 8, 11, 14, 14, 6, 14, 6, 9, 12, 9, 12, 5, 15, 8,
    8, 5, 12, 9, 12, 5, 14, 6, 8, 13, 6, 5, 15, 13, 11, 11,
)
_KL = (0x00000000, 0x5A827999, 0x6ED9EBA1, 0x8F1BBCDC, 0xA953FD4E)
_KR = (0x50A28BE6, 0x5C4DD124, 0x6D703EF3, 0x7A6D76E9, 0x00000000)
_M32 = 0xFFFFFFFF


def _f(j: int, x: int, y: int, z: int) -> int:
    if j == 0:
        return x ^ y ^ z
    if j == 1:
        return (x & y) | (~x & z)
    if j == 2:
        return (x | (~y & _M32)) ^ z
    if j == 3:
        return (x & z) | (y & ~z)
    return x ^ (y | (~z & _M32))


def _rol(x: int, n: int) -> int:
    return ((x << n) | (x >> (32 - n))) & _M32


def ripemd160_pure(data: bytes) -> bytes:
    """RIPEMD-160 in pure Python (slow; a fallback only)."""
    h = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0]
    msg = data + b"\x80" + bytes((55 - len(data)) % 64) + (8 * len(data)).to_bytes(8, "little")
    for off in range(0, len(msg), 64):
        x = [int.from_bytes(msg[off + 4 * i: off + 4 * i + 4], "little") for i in range(16)]
        al, bl, cl, dl, el = h
        ar, br, cr, dr, er = h
        for j in range(80):
            r = j >> 4
            t = _rol((al + _f(r, bl, cl, dl) + x[_RL[j]] + _KL[r]) & _M32, _SL[j]) + el
            al, el, dl, cl, bl = el, dl, _rol(cl, 10), bl, t & _M32
            t = _rol((ar + _f(4 - r, br, cr, dr) + x[_RR[j]] + _KR[r]) & _M32, _SR[j]) + er
            ar, er, dr, cr, br = er, dr, _rol(cr, 10), br, t & _M32
        t = (h[1] + cl + dr) & _M32
        h[1] = (h[2] + dl + er) & _M32
        h[2] = (h[3] + el + ar) & _M32
        h[3] = (h[4] + al + br) & _M32
        h[4] = (h[0] + bl + cr) & _M32
        h[0] = t
    return b"".join(v.to_bytes(4, "little") for v in h)


def _hashlib_has_ripemd160() -> bool:
    try:
        hashlib.new("ripemd160", b"")
    except (ValueError, TypeError):
        return False
    return True


if _hashlib_has_ripemd160():
    def ripemd160(data: bytes) -> bytes:
        return hashlib.new("ripemd160", data).digest()
else:  # pragma: no cover - depends on the OpenSSL build
    ripemd160 = ripemd160_pure


def hash160(data: bytes) -> bytes:
    """ripemd160(sha256(data)): the hash inside P2PKH and P2SH."""
    return ripemd160(_sha256(data).digest())
