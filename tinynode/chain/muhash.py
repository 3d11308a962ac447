"""Core's MuHash3072 (crypto/muhash.cpp), the UTXO-set hash of `gettxoutsetinfo hash_type=muhash`.

Each element is hashed with SHA256, the hash keys ChaCha20 (zero nonce, counter 0) whose first
384 bytes of keystream, read little-endian, are a number below 2^3072; the set's hash is the
product of its elements' numbers (over the product of removed ones) modulo the prime
2^3072 - 1103717, written as 384 little-endian bytes and hashed with SHA256. Order does not
matter, so the set can be hashed in any order.
"""

from __future__ import annotations

import hashlib

__all__ = ["MuHash3072", "MUHASH_MODULUS"]

#: Core Num3072's modulus: the largest 3072-bit safe prime of the form 2^3072 - c
MUHASH_MODULUS = 2**3072 - 1103717
_BYTE_SIZE = 384


def _keystream(key: bytes) -> bytes:
    """384 bytes of ChaCha20 keystream for `key`, nonce 0, block counter 0 (Core ChaCha20Aligned)."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
    enc = Cipher(algorithms.ChaCha20(key, bytes(16)), mode=None).encryptor()
    return enc.update(bytes(_BYTE_SIZE))


def _to_num3072(data: bytes) -> int:
    """Core `MuHash3072::ToNum3072`."""
    return int.from_bytes(_keystream(hashlib.sha256(data).digest()), "little")


class MuHash3072:
    """Core's `MuHash3072`: insert / remove elements, then `digest()` (32 bytes, internal order)."""

    __slots__ = ("_numerator", "_denominator")

    def __init__(self) -> None:
        self._numerator = 1
        self._denominator = 1

    def insert(self, data: bytes) -> None:
        self._numerator = self._numerator * _to_num3072(data) % MUHASH_MODULUS

    def remove(self, data: bytes) -> None:
        self._denominator = self._denominator * _to_num3072(data) % MUHASH_MODULUS

    def digest(self) -> bytes:
        """Core `MuHash3072::Finalize`: SHA256 of numerator / denominator as 384 LE bytes."""
        value = self._numerator * pow(self._denominator, -1, MUHASH_MODULUS) % MUHASH_MODULUS
        return hashlib.sha256(value.to_bytes(_BYTE_SIZE, "little")).digest()
