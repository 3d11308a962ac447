"""secp256k1 keys, ECDSA and BIP340 Schnorr signatures (the only module that imports coincurve).

Signing is RFC 6979 deterministic with low S (libsecp256k1's default). Verification here is
strict (what libsecp256k1 accepts: strict DER, low S); the lax rules consensus needs for old
signatures (Core's `ecdsa_signature_parse_der_lax`, high S normalised) live in `script/`, which
hands this module a normalised compact signature and a 32-byte digest.

BIP340/341: x-only public keys (32 bytes, the even-Y point with that X), Schnorr verification
over a message of any length (`verify_schnorr`), signing with auxiliary randomness
(`PrivateKey.sign_schnorr`), and the taproot tweak (`taproot_tweak_pubkey`,
`check_tap_tweak`, `PrivateKey.taproot_tweaked`), all through libsecp256k1.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from coincurve import PrivateKey as _CPrivateKey
from coincurve import PublicKey as _CPublicKey

from .hashes import hash160, tagged_hash

try:  # libsecp256k1 through coincurve's cffi binding: verify a compact signature directly.
    from coincurve._libsecp256k1 import ffi as _ffi
    from coincurve._libsecp256k1 import lib as _lib
    from coincurve.context import GLOBAL_CONTEXT as _CONTEXT
except ImportError:  # pragma: no cover - a coincurve without these internals: DER fallback
    _lib = None
else:
    # verify_der's types and functions resolved once (cffi looks a type string up on every
    # `ffi.new` and a function on every `lib.` access); constants, shared read-only
    _PUBKEY_PTR = _ffi.typeof("secp256k1_pubkey *")
    _ECDSA_SIG_PTR = _ffi.typeof("secp256k1_ecdsa_signature *")
    _pubkey_parse = _lib.secp256k1_ec_pubkey_parse
    _ecdsa_parse_der = _lib.secp256k1_ecdsa_signature_parse_der
    _ecdsa_normalize = _lib.secp256k1_ecdsa_signature_normalize
    _ecdsa_verify = _lib.secp256k1_ecdsa_verify
    _ecdsa_parse_compact = _lib.secp256k1_ecdsa_signature_parse_compact
    _CTX = _CONTEXT.ctx  # libsecp256k1's context for verification (coincurve's global one)

__all__ = [
    "PrivateKey",
    "PublicKey",
    "SECP256K1_ORDER",
    "der_encode_signature",
    "der_decode_signature",
    "verify_compact",
    "verify_der",
    "verify_der_hashtyped",
    "is_valid_pubkey",
    "verify_schnorr",
    "is_valid_xonly",
    "taproot_tweak_pubkey",
    "check_tap_tweak",
    "tap_tweak_hash",
]

SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_HALF_ORDER = SECP256K1_ORDER // 2


def der_encode_signature(r: int, s: int) -> bytes:
    """Strict DER encoding of (r, s)."""

    def enc_int(v: int) -> bytes:
        b = v.to_bytes((v.bit_length() + 7) // 8 or 1, "big")
        if b[0] & 0x80:
            b = b"\x00" + b
        return b"\x02" + bytes((len(b),)) + b

    body = enc_int(r) + enc_int(s)
    return b"\x30" + bytes((len(body),)) + body


def der_decode_signature(sig: bytes) -> tuple[int, int]:
    """Decode a strict DER signature into (r, s); ValueError if it is not strict DER."""
    if len(sig) < 8 or len(sig) > 72 or sig[0] != 0x30 or sig[1] != len(sig) - 2:
        raise ValueError("not a strict DER signature")
    pos = 2
    out = []
    for _ in range(2):
        if pos + 2 > len(sig) or sig[pos] != 0x02:
            raise ValueError("not a strict DER signature")
        n = sig[pos + 1]
        body = sig[pos + 2: pos + 2 + n]
        if n == 0 or len(body) != n or body[0] & 0x80 or (n > 1 and body[0] == 0 and not body[1] & 0x80):
            raise ValueError("not a strict DER signature")
        out.append(int.from_bytes(body, "big"))
        pos += 2 + n
    if pos != len(sig):
        raise ValueError("not a strict DER signature")
    return out[0], out[1]


def verify_der(pubkey: bytes, der: bytes, digest: bytes) -> bool:
    """Verify a strict-DER signature over a 32-byte digest with libsecp256k1's own DER parser,
    a high S normalized first (consensus accepts it; callers enforce LOW_S themselves).
    False for anything that does not parse or verify. The fast script paths use it; without
    libsecp256k1's FFI it answers through `verify_compact`."""
    if _lib is None:  # pragma: no cover - fallback path
        try:
            r, s = der_decode_signature(der)
        except ValueError:
            return False
        if s > SECP256K1_ORDER // 2:
            s = SECP256K1_ORDER - s
        if not (0 < r < SECP256K1_ORDER and 0 < s < SECP256K1_ORDER):
            return False
        return verify_compact(pubkey, r.to_bytes(32, "big") + s.to_bytes(32, "big"), digest)
    ctx = _CONTEXT.ctx
    key = _ffi.new(_PUBKEY_PTR)
    if not _pubkey_parse(ctx, key, pubkey, len(pubkey)):
        return False
    sig = _ffi.new(_ECDSA_SIG_PTR)
    if not _ecdsa_parse_der(ctx, sig, der, len(der)):
        return False
    _ecdsa_normalize(ctx, sig, sig)
    return _ecdsa_verify(ctx, sig, digest, key) == 1


def verify_der_hashtyped(pubkey: bytes, sig: bytes, digest: bytes, low_s: bool) -> bool:
    """ECDSA-verify `sig`, a DER signature followed by one hash-type byte (not read: the DER is
    handed to libsecp256k1 as the first len(sig) - 1 bytes, no slice made), over a 32-byte
    digest, for the fast script paths (Core `CheckECDSASignature` after the encoding checks).

    libsecp256k1's `ecdsa_signature_parse_der` is strict DER (minimal lengths, no excess
    padding, nothing after S) but parses an R or S that is negative or longer than 32 bytes as
    0, which never verifies; so a signature that parses and verifies here also passes Core's
    `IsValidSignatureEncoding` (BIP66), and the callers need not check it first
    (tests/unit/test_interpreter.py compares the two on mutated signatures). With `low_s` a
    high S is not normalized and fails (libsecp256k1's verify rejects it), which is Core's
    LOW_S rule (`CPubKey::CheckLowS`); without it S is normalized first, as `CPubKey::Verify`.
    False for an empty signature, or anything that does not parse or verify."""
    n = len(sig) - 1
    if n < 0:
        return False
    if _lib is None:  # pragma: no cover - fallback path
        try:
            _, s = der_decode_signature(sig[:-1])
        except ValueError:
            return False
        if low_s and s > _HALF_ORDER:
            return False
        return verify_der(pubkey, sig[:-1], digest)
    key = _ffi.new(_PUBKEY_PTR)
    if not _pubkey_parse(_CTX, key, pubkey, len(pubkey)):
        return False
    esig = _ffi.new(_ECDSA_SIG_PTR)
    if not _ecdsa_parse_der(_CTX, esig, sig, n):
        return False
    if not low_s:
        _ecdsa_normalize(_CTX, esig, esig)
    return _ecdsa_verify(_CTX, esig, digest, key) == 1


def verify_compact(pubkey: bytes, sig64: bytes, digest: bytes) -> bool:
    """Verify a 64-byte (r||s, low S) signature over a precomputed 32-byte digest.

    `pubkey` is a SEC encoding (33 or 65 bytes; hybrid 0x06/0x07 accepted as libsecp256k1's
    `ec_pubkey_parse` does). No hashing happens here. r or s ≥ n, a high S, or a key that does
    not parse all give False. Uses libsecp256k1's `ecdsa_signature_parse_compact` directly when
    coincurve exposes it (no DER round trip), else DER through coincurve's public API.
    """
    if len(sig64) != 64 or len(digest) != 32:
        return False
    # (bytes() only for other buffers: the script interpreter passes bytes)
    if type(pubkey) is not bytes:
        pubkey = bytes(pubkey)
    if type(sig64) is not bytes:
        sig64 = bytes(sig64)
    if type(digest) is not bytes:
        digest = bytes(digest)
    if _lib is not None:
        # the cffi functions and pointer types resolved once at import (per call, each name
        # lookup and type-string parse cost ~1.5 µs an input)
        key = _ffi.new(_PUBKEY_PTR)
        if not _pubkey_parse(_CTX, key, pubkey, len(pubkey)):
            return False
        sig = _ffi.new(_ECDSA_SIG_PTR)
        if not _ecdsa_parse_compact(_CTX, sig, sig64):
            return False
        return _ecdsa_verify(_CTX, sig, digest, key) == 1
    try:  # pragma: no cover - fallback path
        pk = _CPublicKey(pubkey)
        der = der_encode_signature(int.from_bytes(sig64[:32], "big"), int.from_bytes(sig64[32:], "big"))
        return pk.verify(der, digest, hasher=None)
    except (ValueError, TypeError):  # pragma: no cover
        return False


def _xonly(pubkey32: bytes):
    """libsecp256k1's parsed x-only key, or None when 32 bytes are no X coordinate on the curve."""
    if len(pubkey32) != 32:
        return None
    key = _ffi.new("secp256k1_xonly_pubkey *")
    if not _lib.secp256k1_xonly_pubkey_parse(_CONTEXT.ctx, key, bytes(pubkey32)):
        return None
    return key


def is_valid_xonly(pubkey32: bytes) -> bool:
    """Core `XOnlyPubKey::IsFullyValid`: 32 bytes that are the X of a curve point."""
    return _xonly(pubkey32) is not None


def verify_schnorr(pubkey32: bytes, sig64: bytes, msg: bytes) -> bool:
    """BIP340 verification (Core `XOnlyPubKey::VerifySchnorr`): libsecp256k1's
    `schnorrsig_verify` of a 64-byte signature over `msg` (any length; taproot signs a 32-byte
    sighash) with an x-only key. A key that is not on the curve, r ≥ p or s ≥ n give False."""
    if len(sig64) != 64:
        return False
    key = _xonly(pubkey32)
    if key is None:
        return False
    msg = bytes(msg)
    return _lib.secp256k1_schnorrsig_verify(_CONTEXT.ctx, bytes(sig64), msg, len(msg), key) == 1


def tap_tweak_hash(internal32: bytes, merkle_root: bytes | None) -> bytes:
    """BIP341 `hash_TapTweak(p || merkle_root)` (Core `XOnlyPubKey::ComputeTapTweakHash`): no
    merkle root (None) for a key-path-only output, an empty script tree."""
    return tagged_hash("TapTweak", bytes(internal32) + (bytes(merkle_root) if merkle_root else b""))


def check_tap_tweak(internal32: bytes, output32: bytes, merkle_root: bytes | None, parity: int) -> bool:
    """Core `XOnlyPubKey::CheckTapTweak`: whether `output32` (with Y parity `parity`) is the
    internal key tweaked by hash_TapTweak(internal || merkle_root)
    (libsecp256k1 `xonly_pubkey_tweak_add_check`). False for an internal key not on the curve."""
    key = _xonly(internal32)
    if key is None or len(output32) != 32:
        return False
    tweak = tap_tweak_hash(internal32, merkle_root)
    return _lib.secp256k1_xonly_pubkey_tweak_add_check(
        _CONTEXT.ctx, bytes(output32), parity & 1, key, tweak) == 1


def taproot_tweak_pubkey(internal32: bytes, merkle_root: bytes | None = None) -> tuple[bytes, int]:
    """BIP341 `taproot_tweak_pubkey` (Core `XOnlyPubKey::CreateTapTweak`): the output key
    (x-only) and its Y parity for an internal key and an optional script-tree merkle root.
    ValueError when the internal key is invalid or the tweak is out of range."""
    key = _xonly(internal32)
    if key is None:
        raise ValueError("the internal key is not a valid x-only public key")
    tweak = tap_tweak_hash(internal32, merkle_root)
    ctx = _CONTEXT.ctx
    full = _ffi.new("secp256k1_pubkey *")
    if not _lib.secp256k1_xonly_pubkey_tweak_add(ctx, full, key, tweak):
        raise ValueError("taproot tweak out of range")
    out = _ffi.new("secp256k1_xonly_pubkey *")
    parity = _ffi.new("int *")
    _lib.secp256k1_xonly_pubkey_from_pubkey(ctx, out, parity, full)
    buf = _ffi.new("unsigned char[32]")
    _lib.secp256k1_xonly_pubkey_serialize(ctx, buf, out)
    return bytes(_ffi.buffer(buf, 32)), parity[0]


_EXTRAPARAMS_MAGIC = bytes((0xDA, 0x6F, 0xB3, 0x8C))


def _keypair(secret: bytes):
    kp = _ffi.new("secp256k1_keypair *")
    if not _lib.secp256k1_keypair_create(_CONTEXT.ctx, kp, secret):
        raise ValueError("invalid secret key")
    return kp


def _schnorr_sign(kp, msg: bytes, aux32: bytes | None) -> bytes:
    """libsecp256k1 `schnorrsig_sign_custom` with the BIP340 nonce function and `aux32` as its
    auxiliary randomness (None: the nonce function's "no aux" variant)."""
    if aux32 is not None and len(aux32) != 32:
        raise ValueError("aux randomness is 32 bytes")
    params = _ffi.new("secp256k1_schnorrsig_extraparams *")
    params.magic = list(_EXTRAPARAMS_MAGIC)
    params.noncefp = _ffi.NULL
    aux_buf = _ffi.new("unsigned char[32]", aux32) if aux32 is not None else None
    params.ndata = aux_buf if aux_buf is not None else _ffi.NULL
    sig = _ffi.new("unsigned char[64]")
    msg = bytes(msg)
    if not _lib.secp256k1_schnorrsig_sign_custom(_CONTEXT.ctx, sig, msg, len(msg), kp, params):
        raise ValueError("signing failed")  # pragma: no cover - only for an invalid keypair
    return bytes(_ffi.buffer(sig, 64))


def is_valid_pubkey(pubkey: bytes) -> bool:
    try:
        _CPublicKey(pubkey)
    except (ValueError, TypeError):
        return False
    return True


@dataclass(frozen=True, slots=True)
class PublicKey:
    """A point on secp256k1, remembered in the SEC form it came in."""

    sec: bytes
    _key: _CPublicKey = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        try:
            key = _CPublicKey(self.sec)
        except (ValueError, TypeError) as e:
            raise ValueError("invalid public key") from e
        object.__setattr__(self, "_key", key)

    @property
    def compressed(self) -> bool:
        return len(self.sec) == 33

    def to_sec(self, compressed: bool = True) -> bytes:
        return self._key.format(compressed=compressed)

    def hash160(self) -> bytes:
        return hash160(self.sec)

    def verify(self, der_sig: bytes, digest: bytes) -> bool:
        """Strict verify of a DER signature over a 32-byte digest (no re-hashing).

        libsecp256k1's `ecdsa_signature_parse_der` + `ecdsa_verify` on the cached key (what
        coincurve's `PublicKey.verify` does, minus its Python-level layers): a signature that
        is not strict DER, or has a high S, gives False.
        """
        if len(digest) != 32:
            return False
        if _lib is None:  # pragma: no cover - fallback path
            try:
                return self._key.verify(bytes(der_sig), bytes(digest), hasher=None)
            except (ValueError, TypeError):
                return False
        if type(der_sig) is not bytes:
            der_sig = bytes(der_sig)
        if type(digest) is not bytes:
            digest = bytes(digest)
        ctx = _CONTEXT.ctx
        sig = _ffi.new("secp256k1_ecdsa_signature *")
        if not _lib.secp256k1_ecdsa_signature_parse_der(ctx, sig, der_sig, len(der_sig)):
            return False
        return _lib.secp256k1_ecdsa_verify(ctx, sig, digest, self._key.public_key) == 1


@dataclass(frozen=True, slots=True)
class PrivateKey:
    secret: bytes
    compressed: bool = True
    _key: _CPrivateKey = field(init=False, compare=False, repr=False)
    _public: PublicKey = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.secret, (bytearray, memoryview)):
            object.__setattr__(self, "secret", bytes(self.secret))
        if not isinstance(self.secret, bytes) or len(self.secret) != 32 \
                or not 0 < int.from_bytes(self.secret, "big") < SECP256K1_ORDER:
            raise ValueError("a private key is 32 bytes in [1, n-1]")
        key = _CPrivateKey(self.secret)
        object.__setattr__(self, "_key", key)
        object.__setattr__(self, "_public", PublicKey(key.public_key.format(compressed=self.compressed)))

    @classmethod
    def generate(cls, compressed: bool = True) -> "PrivateKey":
        while True:
            secret = secrets.token_bytes(32)
            if 0 < int.from_bytes(secret, "big") < SECP256K1_ORDER:
                return cls(secret, compressed)

    @property
    def public_key(self) -> PublicKey:
        """The public key in this key's SEC form (computed once, at construction)."""
        return self._public

    def sign(self, digest: bytes, extra_entropy: bytes | None = None) -> bytes:
        """RFC 6979, low-S DER signature over a 32-byte digest (no re-hashing); `extra_entropy`
        (32 bytes) is RFC 6979's additional data (Core's low-R grinding counter)."""
        if len(digest) != 32:
            raise ValueError("sign a 32-byte digest")
        if _lib is None:  # pragma: no cover - fallback path
            return self._key.sign(bytes(digest), hasher=None)
        ndata = _ffi.new("unsigned char[32]", extra_entropy) if extra_entropy is not None else _ffi.NULL
        # libsecp256k1's ecdsa_sign with its default nonce function (RFC 6979; S is always
        # low), then serialize_der: coincurve's `PrivateKey.sign` minus its Python layers.
        ctx = _CONTEXT.ctx
        sig = _ffi.new("secp256k1_ecdsa_signature *")
        if not _lib.secp256k1_ecdsa_sign(ctx, sig, bytes(digest), self.secret, _ffi.NULL, ndata):
            raise ValueError("signing failed")  # pragma: no cover - only for an invalid key
        out = _ffi.new("unsigned char[72]")
        out_len = _ffi.new("size_t *", 72)
        _lib.secp256k1_ecdsa_signature_serialize_der(ctx, out, out_len, sig)
        return bytes(_ffi.buffer(out, out_len[0]))

    @property
    def xonly_public_key(self) -> bytes:
        """BIP340 x-only public key (the X of this key's point)."""
        return self._public.to_sec(True)[1:]

    def sign_schnorr(self, msg: bytes, aux32: bytes | None = None) -> bytes:
        """BIP340 signature (64 bytes) over `msg` with auxiliary randomness `aux32`
        (Core `CKey::SignSchnorr` without a tweak); fresh random aux when None."""
        if aux32 is None:
            aux32 = secrets.token_bytes(32)
        return _schnorr_sign(_keypair(self.secret), msg, aux32)

    def taproot_tweaked(self, merkle_root: bytes | None = None) -> "PrivateKey":
        """BIP341 `taproot_tweak_seckey`: the secret whose x-only key is the output key for
        this internal key and `merkle_root` (libsecp256k1 `keypair_xonly_tweak_add`)."""
        kp = _keypair(self.secret)
        tweak = tap_tweak_hash(self.xonly_public_key, merkle_root)
        if not _lib.secp256k1_keypair_xonly_tweak_add(_CONTEXT.ctx, kp, tweak):
            raise ValueError("taproot tweak out of range")
        out = _ffi.new("unsigned char[32]")
        _lib.secp256k1_keypair_sec(_CONTEXT.ctx, out, kp)
        return PrivateKey(bytes(_ffi.buffer(out, 32)), True)

    def __repr__(self) -> str:
        return "PrivateKey(<secret>)"

