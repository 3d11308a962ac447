"""Output descriptors to scripts, for `scantxoutset` and `generatetodescriptor`.

A subset of Bitcoin Core's descriptor language (script/descriptor.cpp `Parse`, then `Expand`)
with fixed keys only (no xpubs, no ranges, no script trees):

    raw(HEX)          the script itself
    addr(ADDRESS)     the address's output script
    pk(KEY)           P2PK                         pkh(KEY)    P2PKH
    wpkh(KEY)         P2WPKH (compressed keys)      sh(wpkh(KEY))  P2SH-P2WPKH
    combo(KEY)        P2PK and P2PKH, plus P2WPKH and P2SH-P2WPKH for a compressed key
    tr(KEY)           P2TR key path only (BIP86 tweak with no script tree)
    rawtr(KEY)        P2TR with KEY as the output key

KEY is a hex public key (33 bytes; 65 bytes uncompressed where Core allows it; 32-byte x-only
inside tr/rawtr) or a WIF private key of the network. A `#checksum` is optional and checked as
Core's `CheckChecksum`. Every error is a `DescriptorError` whose message is Core's sentence.

`expand_descriptor` returns, per script, the descriptor Core's `InferDescriptor(script,
provider)` prints for it with the keys of the parse known (`pkh(KEY)#…` for a P2PKH of a known
key, `addr(…)`/`raw(…)` where no key is involved), with its checksum.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..primitives.address import (AddressError, decode_address, decode_wif, p2pkh_script,
                                  p2sh_script, witness_script)
from ..primitives.hashes import hash160
from ..primitives.keys import PrivateKey, is_valid_pubkey, is_valid_xonly, taproot_tweak_pubkey
from .descriptor import add_checksum, descriptor_checksum, infer_descriptor

__all__ = ["DescriptorError", "ExpandedScript", "expand_descriptor", "check_checksum"]


class DescriptorError(ValueError):
    """A descriptor that does not parse; the message is Core's."""


@dataclass(frozen=True, slots=True)
class ExpandedScript:
    script_pubkey: bytes
    desc: str          # the specialized descriptor for this script, with checksum


def check_checksum(text: str, require: bool = False) -> str:
    """Core `CheckChecksum`: the descriptor without its `#checksum`, which must match."""
    desc, sep, checksum = text.partition("#")
    if "#" in checksum:
        raise DescriptorError("Multiple '#' symbols")
    if not sep:
        if require:
            raise DescriptorError("Missing checksum")
        return desc
    if len(checksum) != 8:
        raise DescriptorError(f"Expected 8 character checksum, not {len(checksum)} characters")
    try:
        computed = descriptor_checksum(desc)
    except ValueError:
        raise DescriptorError("Invalid characters in payload") from None
    if checksum != computed:
        raise DescriptorError(f"Provided checksum '{checksum}' does not match computed checksum '{computed}'")
    return desc


def _call(expr: str) -> tuple[str, str] | None:
    """`name(args)` → (name, args); None when `expr` is not one call."""
    open_at = expr.find("(")
    if open_at <= 0 or not expr.endswith(")"):
        return None
    return expr[:open_at], expr[open_at + 1:-1]


def _key(text: str, params, fname: str, *, uncompressed_ok: bool, xonly: bool = False) -> bytes:
    """Core `ParsePubkeyInner` for a constant key: hex public key or WIF; returns SEC bytes
    (or 32 x-only bytes in a taproot context). Errors name the function, as Core's
    (`wpkh(): Pubkey '…' is invalid`)."""
    try:
        return _key_inner(text, params, uncompressed_ok=uncompressed_ok, xonly=xonly)
    except DescriptorError as e:
        raise DescriptorError(f"{fname}(): {e}") from None


def _key_inner(text: str, params, *, uncompressed_ok: bool, xonly: bool) -> bytes:
    if text and all(c in "0123456789abcdefABCDEF" for c in text) and len(text) % 2 == 0:
        data = bytes.fromhex(text)
        if xonly and len(data) == 32:
            if is_valid_xonly(data):
                return data
        elif len(data) in (33, 65) and data[0] in (2, 3, 4) and is_valid_pubkey(data):
            if len(data) == 65 and not uncompressed_ok:
                raise DescriptorError("Uncompressed keys are not allowed")
            return data[1:] if xonly else data
        raise DescriptorError(f"Pubkey '{text}' is invalid")
    try:
        secret, compressed = decode_wif(text, params)
    except (AddressError, ValueError):
        raise DescriptorError(f"key '{text}' is not valid") from None
    if not compressed and not uncompressed_ok:
        raise DescriptorError("Uncompressed keys are not allowed")
    sec = PrivateKey(secret, compressed).public_key.sec
    return sec[1:] if xonly else sec


def _p2wpkh(sec: bytes) -> bytes:
    return witness_script(0, hash160(sec))


def expand_descriptor(text: str, params) -> list[ExpandedScript]:
    """The scripts one descriptor stands for (Core `Parse` + `Expand` at position 0)."""
    desc = check_checksum(text)
    call = _call(desc)
    if call is None:
        raise DescriptorError(f"'{desc}' is not a valid descriptor function")
    name, arg = call

    def inferred(spk: bytes, shown: str | None = None) -> ExpandedScript:
        return ExpandedScript(spk, add_checksum(shown) if shown else infer_descriptor(spk, params))

    if name == "raw":
        if not arg or len(arg) % 2 or any(c not in "0123456789abcdefABCDEF" for c in arg):
            raise DescriptorError("Raw script is not hex")
        return [inferred(bytes.fromhex(arg))]
    if name == "addr":
        try:
            spk = decode_address(arg, params).script_pubkey
        except (AddressError, ValueError):
            raise DescriptorError("Address is not valid") from None
        return [inferred(spk)]
    if name == "pk":
        sec = _key(arg, params, "pk", uncompressed_ok=True)
        return [inferred(bytes((len(sec),)) + sec + b"\xac", f"pk({sec.hex()})")]
    if name == "pkh":
        sec = _key(arg, params, "pkh", uncompressed_ok=True)
        return [inferred(p2pkh_script(hash160(sec)), f"pkh({sec.hex()})")]
    if name == "wpkh":
        sec = _key(arg, params, "wpkh", uncompressed_ok=False)
        return [inferred(_p2wpkh(sec), f"wpkh({sec.hex()})")]
    if name == "sh":
        inner = _call(arg)
        if inner is None or inner[0] != "wpkh":
            raise DescriptorError(f"sh({arg}) is not supported by tinynode (only sh(wpkh(KEY)))")
        sec = _key(inner[1], params, "wpkh", uncompressed_ok=False)
        return [inferred(p2sh_script(hash160(_p2wpkh(sec))), f"sh(wpkh({sec.hex()}))")]
    if name == "combo":
        sec = _key(arg, params, "combo", uncompressed_ok=True)
        out = [inferred(bytes((len(sec),)) + sec + b"\xac", f"pk({sec.hex()})"),
               inferred(p2pkh_script(hash160(sec)), f"pkh({sec.hex()})")]
        if len(sec) == 33:
            out.append(inferred(_p2wpkh(sec), f"wpkh({sec.hex()})"))
            out.append(inferred(p2sh_script(hash160(_p2wpkh(sec))), f"sh(wpkh({sec.hex()}))"))
        return out
    if name == "tr":
        if "," in arg or "{" in arg:
            raise DescriptorError("tr() with a script tree is not supported by tinynode")
        internal = _key(arg, params, "tr", uncompressed_ok=False, xonly=True)
        output, _parity = taproot_tweak_pubkey(internal)
        return [inferred(witness_script(1, output), f"tr({internal.hex()})")]
    if name == "rawtr":
        output = _key(arg, params, "rawtr", uncompressed_ok=False, xonly=True)
        return [inferred(witness_script(1, output), f"rawtr({output.hex()})")]
    if name in ("multi", "sortedmulti", "wsh", "multi_a", "sortedmulti_a"):
        raise DescriptorError(f"{name}() descriptors are not supported by tinynode")
    raise DescriptorError(f"'{name}(...)' is not a valid top-level function" if name else
                          f"'{desc}' is not a valid descriptor function")
