"""Addresses: Base58Check (P2PKH, P2SH), BIP173 bech32 / BIP350 bech32m segwit addresses, and WIF
private keys (the only module importing base58).

Prefixes and the bech32 human-readable part come from the caller (a `ChainParams`), never from a
global network. Decoding follows Core's `DecodeDestination` (key_io.cpp): a string starting with
the network's HRP is decoded as bech32(m) only; witness v0 must use bech32, v1+ bech32m.
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
    "witness_script",
    "bech32_encode",
    "bech32_decode",
    "encode_segwit_address",
    "decode_segwit_address",
    "address_from_script",
    "BECH32",
    "BECH32M",
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


def witness_script(version: int, program: bytes) -> bytes:
    """`OP_version <program>`: the scriptPubKey of a witness program (BIP141)."""
    return bytes((0x50 + version if version else 0, len(program))) + program


# --- bech32 / bech32m (BIP173, BIP350; Core's bech32.cpp) ------------------------------------

BECH32 = "bech32"
BECH32M = "bech32m"
_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_CHARSET_REV = {c: i for i, c in enumerate(_CHARSET)}
_BECH32M_CONST = 0x2BC830A3
_BECH32_MAX_LEN = 90                 # Core's CharLimit::BECH32
_WITNESS_PROG_MAX_LEN = 40           # Core's BECH32_WITNESS_PROG_MAX_LEN


def _polymod(values) -> int:
    gen = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
    chk = 1
    for v in values:
        top = chk >> 25
        chk = ((chk & 0x1FFFFFF) << 5) ^ v
        for i in range(5):
            if (top >> i) & 1:
                chk ^= gen[i]
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def bech32_encode(hrp: str, data: list[int] | bytes, encoding: str) -> str:
    """Core's `bech32::Encode`: `hrp` (lower case) + "1" + 5-bit `data` + 6-symbol checksum."""
    const = _BECH32M_CONST if encoding == BECH32M else 1
    values = list(data)
    mod = _polymod(_hrp_expand(hrp) + values + [0] * 6) ^ const
    checksum = [(mod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_CHARSET[v] for v in values + checksum)


def bech32_decode(s: str) -> tuple[str, str, list[int]]:
    """Core's `bech32::Decode`: (encoding, hrp, 5-bit data) or `AddressError` with the sentence of
    Core's `LocateErrors` (the error positions are not computed; a bad checksum is reported as
    "Invalid checksum")."""
    if not isinstance(s, str) or len(s) > _BECH32_MAX_LEN:
        raise AddressError("Bech32 string too long")
    if any(ord(c) < 33 or ord(c) > 126 for c in s) or (s.lower() != s and s.upper() != s):
        raise AddressError("Invalid character or mixed case")
    s = s.lower()
    pos = s.rfind("1")
    if pos < 0:
        raise AddressError("Missing separator")
    if pos == 0 or pos + 6 >= len(s):
        raise AddressError("Invalid separator position")
    try:
        values = [_CHARSET_REV[c] for c in s[pos + 1:]]
    except KeyError:
        raise AddressError("Invalid Base 32 character") from None
    hrp = s[:pos]
    const = _polymod(_hrp_expand(hrp) + values)
    if const == 1:
        encoding = BECH32
    elif const == _BECH32M_CONST:
        encoding = BECH32M
    else:
        raise AddressError("Invalid checksum")
    return encoding, hrp, values[:-6]


def _convert_bits(data, from_bits: int, to_bits: int, pad: bool) -> list[int] | None:
    """Core's `ConvertBits`; None on invalid padding (non-zero or a whole extra group)."""
    acc = bits = 0
    out = []
    maxv = (1 << to_bits) - 1
    for v in data:
        acc = (acc << from_bits) | v
        bits += from_bits
        while bits >= to_bits:
            bits -= to_bits
            out.append((acc >> bits) & maxv)
    if pad:
        if bits:
            out.append((acc << (to_bits - bits)) & maxv)
    elif bits >= from_bits or ((acc << (to_bits - bits)) & maxv):
        return None
    return out


def encode_segwit_address(hrp: str, version: int, program: bytes) -> str:
    """Core's `DestinationEncoder` for witness destinations: v0 in bech32, v1+ in bech32m."""
    if not 0 <= version <= 16 or not 2 <= len(program) <= _WITNESS_PROG_MAX_LEN:
        raise AddressError("invalid witness program")
    if version == 0 and len(program) not in (20, 32):
        raise AddressError("invalid witness v0 program size")
    return bech32_encode(hrp, [version] + _convert_bits(program, 8, 5, True),
                         BECH32 if version == 0 else BECH32M)


def decode_segwit_address(s: str, hrp: str) -> tuple[int, bytes]:
    """(witness version, program) of a segwit address for `hrp`, with Core's
    `DecodeDestination` error sentences; `AddressError` otherwise."""
    encoding, got_hrp, data = bech32_decode(s)
    if not data:
        raise AddressError("Empty Bech32 data section")
    if got_hrp != hrp:
        raise AddressError("Invalid or unsupported prefix for Segwit (Bech32) address "
                           f"(expected {hrp}, got {got_hrp}).")
    version = data[0]
    if version == 0 and encoding != BECH32:
        raise AddressError("Version 0 witness address must use Bech32 checksum")
    if version != 0 and encoding != BECH32M:
        raise AddressError("Version 1+ witness address must use Bech32m checksum")
    program = _convert_bits(data[1:], 5, 8, False)
    if program is None:
        raise AddressError("Invalid padding in Bech32 data section")
    program = bytes(program)
    size = f"{len(program)} {'byte' if len(program) == 1 else 'bytes'}"
    if version == 0:
        if len(program) not in (20, 32):
            raise AddressError(f"Invalid Bech32 v0 address program size ({size}), per BIP141")
        return 0, program
    if version > 16:
        raise AddressError("Invalid Bech32 address witness version")
    if not 2 <= len(program) <= _WITNESS_PROG_MAX_LEN:
        raise AddressError(f"Invalid Bech32 address program size ({size})")
    return version, program


# --- destinations ------------------------------------------------------------------------------

#: Address kinds and, for witness kinds, (version, program size) that select them.
WITNESS_KINDS = {(0, 20): "p2wpkh", (0, 32): "p2wsh", (1, 32): "p2tr"}


@dataclass(frozen=True, slots=True)
class Address:
    """A decoded destination: `kind` is "p2pkh" | "p2sh" (`hash160` is the 20-byte hash) or a
    witness kind "p2wpkh" | "p2wsh" | "p2tr" | "witness_unknown" (`hash160` holds the witness
    program, `witness_version` its version)."""
    kind: str
    hash160: bytes
    witness_version: int | None = None

    @property
    def program(self) -> bytes:
        return self.hash160

    @property
    def is_witness(self) -> bool:
        return self.witness_version is not None

    @property
    def script_pubkey(self) -> bytes:
        if self.witness_version is not None:
            return witness_script(self.witness_version, self.hash160)
        return p2pkh_script(self.hash160) if self.kind == "p2pkh" else p2sh_script(self.hash160)


def _witness_kind(version: int, program: bytes) -> str:
    return WITNESS_KINDS.get((version, len(program)), "witness_unknown")


def encode_address(kind: str, h160: bytes, params, witness_version: int | None = None) -> str:
    """The address string of a destination: base58 for "p2pkh"/"p2sh", bech32(m) with the
    network's `bech32_hrp` for witness kinds ("p2wpkh", "p2wsh", "p2tr", or any kind with a
    `witness_version`)."""
    if witness_version is None:
        witness_version = {"p2wpkh": 0, "p2wsh": 0, "p2tr": 1}.get(kind)
    if witness_version is not None:
        return encode_segwit_address(params.bech32_hrp, witness_version, h160)
    prefix = params.pubkey_prefix if kind == "p2pkh" else params.script_prefix
    return b58check_encode(bytes((prefix,)) + h160)


def decode_address(s: str, params) -> Address:
    """Core's `DecodeDestination` (key_io.cpp), with its error sentences: a string starting
    with the network's bech32 HRP (any case) is a segwit address or nothing; otherwise a
    Base58Check P2PKH/P2SH address with `params`' prefixes; `AddressError` otherwise."""
    if not isinstance(s, str):
        raise AddressError("Invalid or unsupported Segwit (Bech32) or Base58 encoding.")
    hrp = getattr(params, "bech32_hrp", None)
    if hrp and s[:len(hrp)].lower() == hrp:
        version, program = decode_segwit_address(s, hrp)
        return Address(_witness_kind(version, program), program, version)
    try:
        payload = b58check_decode(s) if len(s) <= 100 else None
    except AddressError:
        payload = None
    if payload is None or len(payload) > 21:
        try:
            raw = b58decode(s) if s and len(s) <= 200 else None
        except AddressError:
            raw = None
        if raw is None or len(raw) > 100:
            raise AddressError("Invalid or unsupported Segwit (Bech32) or Base58 encoding.")
        raise AddressError("Invalid checksum or length of Base58 address (P2PKH or P2SH)")
    if len(payload) == 21 and payload[0] == params.pubkey_prefix:
        return Address("p2pkh", payload[1:])
    if len(payload) == 21 and payload[0] == params.script_prefix:
        return Address("p2sh", payload[1:])
    if payload and payload[0] in (params.pubkey_prefix, params.script_prefix):
        raise AddressError("Invalid length for Base58 address (P2PKH or P2SH)")
    raise AddressError("Invalid or unsupported Base58-encoded address.")


def witness_program(script_pubkey: bytes) -> tuple[int, bytes] | None:
    """Core's `CScript::IsWitnessProgram`: (version, program) for `OP_n <2..40 bytes>`."""
    s = script_pubkey
    if not 4 <= len(s) <= 42:
        return None
    if s[0] != 0 and not 0x51 <= s[0] <= 0x60:
        return None
    if s[1] + 2 != len(s):
        return None
    return (s[0] - 0x50 if s[0] else 0), bytes(s[2:])


def address_from_script(script_pubkey: bytes, params) -> str | None:
    """Core's `ExtractDestination` + `EncodeDestination`: the address paying to a P2PKH, P2SH or
    witness-program script (v0 only with 20- or 32-byte programs), or None for other scripts."""
    s = script_pubkey
    if len(s) == 25 and s[:3] == b"\x76\xa9\x14" and s[23:] == b"\x88\xac":
        return encode_address("p2pkh", s[3:23], params)
    if len(s) == 23 and s[:2] == b"\xa9\x14" and s[22] == 0x87:
        return encode_address("p2sh", s[2:22], params)
    wp = witness_program(s)
    hrp = getattr(params, "bech32_hrp", None)
    if wp is not None and hrp:
        version, program = wp
        if version == 0 and len(program) not in (20, 32):
            return None
        return encode_segwit_address(hrp, version, program)
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
