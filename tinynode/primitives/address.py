"""Base58Check addresses (P2PKH, P2SH) and WIF private keys (the only module importing base58).

Prefixes come from the caller (a `ChainParams`), never from a global network.
"""

from __future__ import annotations

from dataclasses import dataclass

import base58

from .hashes import sha256d

__all__ = [
    "AddressError",
    "b58encode",
    "b58decode",
    "b58check_encode",
    "b58check_decode",
    "Address",
    "encode_address",
    "decode_address",
    "encode_wif",
    "decode_wif",
    "p2pkh_script",
    "p2sh_script",
]


class AddressError(ValueError):
    """A string that is not a valid address or key for this network."""


def b58encode(data: bytes) -> str:
    return base58.b58encode(data).decode("ascii")


#: What Core's `IsSpace` counts as white space (the C locale's isspace).
_SPACE = " \t\n\v\f\r"


def b58decode(s: str) -> bytes:
    """Core's `DecodeBase58`: leading and trailing white space is skipped, any other
    character outside the alphabet (inner spaces too) is an `AddressError`."""
    s = s.strip(_SPACE)
    if any(c in _SPACE for c in s):
        raise AddressError("invalid base58: inner white space")
    try:
        return base58.b58decode(s.encode("ascii"))
    except (ValueError, UnicodeEncodeError) as e:
        raise AddressError("invalid base58") from e


def b58check_encode(payload: bytes) -> str:
    return b58encode(payload + sha256d(payload)[:4])


def b58check_decode(s: str) -> bytes:
    if not isinstance(s, str) or not s or len(s) > 100:
        raise AddressError("invalid base58 string")
    raw = b58decode(s)
    if len(raw) < 4 or sha256d(raw[:-4])[:4] != raw[-4:]:
        raise AddressError("invalid base58 checksum")
    return raw[:-4]


def p2pkh_script(h160: bytes) -> bytes:
    return b"\x76\xa9\x14" + h160 + b"\x88\xac"


def p2sh_script(h160: bytes) -> bytes:
    return b"\xa9\x14" + h160 + b"\x87"


@dataclass(frozen=True, slots=True)
class Address:
    kind: str  # "p2pkh" | "p2sh"
    hash160: bytes

    @property
    def script_pubkey(self) -> bytes:
        return p2pkh_script(self.hash160) if self.kind == "p2pkh" else p2sh_script(self.hash160)


def encode_address(kind: str, h160: bytes, params) -> str:
    prefix = params.pubkey_prefix if kind == "p2pkh" else params.script_prefix
    return b58check_encode(bytes((prefix,)) + h160)


def decode_address(s: str, params) -> Address:
    """Decode a P2PKH or P2SH address of `params`' network; `AddressError` otherwise."""
    payload = b58check_decode(s)
    if len(payload) != 21:
        raise AddressError("invalid address length")
    if payload[0] == params.pubkey_prefix:
        return Address("p2pkh", payload[1:])
    if payload[0] == params.script_prefix:
        return Address("p2sh", payload[1:])
    raise AddressError("address is for another network or of an unknown type")


def address_from_script(script_pubkey: bytes, params) -> str | None:
    """The address paying to a P2PKH or P2SH script, or None for other scripts."""
    s = script_pubkey
    if len(s) == 25 and s[:3] == b"\x76\xa9\x14" and s[23:] == b"\x88\xac":
        return encode_address("p2pkh", s[3:23], params)
    if len(s) == 23 and s[:2] == b"\xa9\x14" and s[22] == 0x87:
        return encode_address("p2sh", s[2:22], params)
    return None


def encode_wif(secret: bytes, compressed: bool, params) -> str:
    return b58check_encode(bytes((params.wif_prefix,)) + secret + (b"\x01" if compressed else b""))


def decode_wif(s: str, params) -> tuple[bytes, bool]:
    """(secret, compressed) from a WIF string of `params`' network; `AddressError` otherwise."""
    payload = b58check_decode(s)
    if not payload or payload[0] != params.wif_prefix:
        raise AddressError("invalid private key encoding")
    if len(payload) == 33:
        return payload[1:], False
    if len(payload) == 34 and payload[33] == 0x01:
        return payload[1:33], True
    raise AddressError("invalid private key encoding")
