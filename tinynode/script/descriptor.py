"""Output descriptors for scriptPubKeys, as Bitcoin Core's RPCs print them in `desc`.

Core's `ScriptToUniv` prints `InferDescriptor(script, DUMMY_SIGNING_PROVIDER)->ToString()`:
with no keys or scripts known, a scriptPubKey becomes `pk()`, `multi()`, `rawtr()`, `addr()` or
`raw()`, followed by the BIP380 checksum (script/descriptor.cpp). Witness addresses are encoded
here (BIP173 bech32, BIP350 bech32m), since tinynode's address module knows only base58.
"""

from __future__ import annotations

from ..primitives.address import encode_address
from ..primitives.keys import is_valid_pubkey
from .script import ScriptType, classify, multisig_info

__all__ = [
    "INPUT_CHARSET", "CHECKSUM_CHARSET",
    "descriptor_checksum", "add_checksum", "infer_descriptor",
    "bech32_hrp", "encode_segwit_address",
]

# --- BIP380 checksum (Core `DescriptorChecksum`) ---------------------------------------------

#: Core's INPUT_CHARSET: hex and key-path characters first, case errors 32 apart.
INPUT_CHARSET = (
    "0123456789()[],'/*abcdefgh@:$%{}"
    "IJKLMNOPQRSTUVWXYZ&+-.;<=>?!^_|~"
    "ijklmnopqrstuvwxyzABCDEFGH`#\"\\ "
)
#: The checksum's own characters (bech32's).
CHECKSUM_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"

_DESC_GENERATOR = (0xF5DEE51989, 0xA9FDCA3312, 0x1BAB10E32D, 0x3706B1677A, 0x644D626FFD)


def _desc_polymod(c: int, val: int) -> int:
    """Core's `PolyMod` (descriptor.cpp): one step of the degree-8 BCH code over GF(32)."""
    c0 = c >> 35
    c = ((c & 0x7FFFFFFFF) << 5) ^ val
    for i, g in enumerate(_DESC_GENERATOR):
        if c0 >> i & 1:
            c ^= g
    return c


def descriptor_checksum(desc: str) -> str:
    """Core `DescriptorChecksum`: the 8-character checksum of `desc` (without any `#...`).

    Raises ValueError for a character outside INPUT_CHARSET (where Core returns "")."""
    c = 1
    cls = 0
    clscount = 0
    for ch in desc:
        pos = INPUT_CHARSET.find(ch)
        if pos < 0:
            raise ValueError(f"invalid character {ch!r} in descriptor")
        c = _desc_polymod(c, pos & 31)
        cls = cls * 3 + (pos >> 5)
        clscount += 1
        if clscount == 3:
            c = _desc_polymod(c, cls)
            cls = 0
            clscount = 0
    if clscount > 0:
        c = _desc_polymod(c, cls)
    for _ in range(8):
        c = _desc_polymod(c, 0)
    c ^= 1
    return "".join(CHECKSUM_CHARSET[(c >> (5 * (7 - j))) & 31] for j in range(8))


def add_checksum(desc: str) -> str:
    """`desc#checksum`, as Core's `Descriptor::ToString` (with `AddChecksum`) prints it."""
    return desc + "#" + descriptor_checksum(desc)


# --- bech32 / bech32m witness addresses (Core bech32.cpp, key_io.cpp) ------------------------

_BECH32_CONST = 1
_BECH32M_CONST = 0x2BC830A3
_BECH32_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)

#: Core's `bech32_hrp` per chain (`CChainParams::Bech32HRP`), keyed by tinynode `params.name`.
#: tinynet is tinynode's own network: "tn0" (its base58 addresses start with T/t, and a "0" is never
#: in base58, so Core's case-insensitive HRP-prefix test never mistakes one for bech32).
_BECH32_HRP = {
    "main": "bc", "mainnet": "bc",
    "test": "tb", "testnet": "tb", "testnet4": "tb", "signet": "tb",
    "regtest": "bcrt",
    "tinynet": "tn0",
}


def bech32_hrp(params) -> str:
    """The bech32 human-readable part of `params`' network (`params.bech32_hrp` if it has one)."""
    hrp = getattr(params, "bech32_hrp", None)
    if hrp:
        return hrp
    try:
        return _BECH32_HRP[params.name]
    except KeyError:
        raise ValueError(f"no bech32 prefix known for network {params.name!r}") from None


def _bech32_polymod(values: list[int]) -> int:
    """Core `bech32::PolyMod` (BIP173)."""
    chk = 1
    for v in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i, g in enumerate(_BECH32_GENERATOR):
            if top >> i & 1:
                chk ^= g
    return chk


def _bech32_encode(hrp: str, data: list[int], const: int) -> str:
    """Core `bech32::Encode`: hrp, "1", data and the 6-character checksum."""
    expanded = [ord(x) >> 5 for x in hrp] + [0] + [ord(x) & 31 for x in hrp]
    mod = _bech32_polymod(expanded + data + [0] * 6) ^ const
    checksum = [(mod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(CHECKSUM_CHARSET[d] for d in data + checksum)


def _to_5bit(program: bytes) -> list[int]:
    """Core `ConvertBits<8, 5, true>`: regroup bytes into 5-bit values, zero-padded."""
    out = []
    acc = 0
    bits = 0
    for b in program:
        acc = acc << 8 | b
        bits += 8
        while bits >= 5:
            bits -= 5
            out.append(acc >> bits & 31)
    if bits:
        out.append(acc << (5 - bits) & 31)
    return out


def encode_segwit_address(version: int, program: bytes, params) -> str:
    """Core's `DestinationEncoder` for witness outputs: bech32 for v0 (BIP173), bech32m for
    v1..v16 (BIP350)."""
    if not 0 <= version <= 16 or not 2 <= len(program) <= 40:
        raise ValueError("not a witness program")
    const = _BECH32_CONST if version == 0 else _BECH32M_CONST
    return _bech32_encode(bech32_hrp(params), [version] + _to_5bit(program), const)


# --- InferDescriptor ---------------------------------------------------------------------------

def _witness_program(spk: bytes) -> tuple[int, bytes] | None:
    """Core `CScript::IsWitnessProgram`: (version, program) of `OP_n <2..40 bytes>`."""
    if not 4 <= len(spk) <= 42:
        return None
    if spk[0] != 0 and not 0x51 <= spk[0] <= 0x60:
        return None
    if spk[1] + 2 != len(spk):
        return None
    return (0 if spk[0] == 0 else spk[0] - 0x50), spk[2:]


def _is_valid_non_hybrid(pubkey: bytes) -> bool:
    """Core `CPubKey::IsValidNonHybrid`: only the prefix byte is checked (02/03 compressed, 04
    uncompressed; the point itself is NOT checked). The length already agrees (Solver)."""
    return pubkey[0] in (2, 3, 4)


def _infer(spk: bytes, params) -> str:
    """Core's `InferScript` at top level with no keys known, without the checksum."""
    wp = _witness_program(spk)
    if wp is not None:
        version, program = wp
        if version == 0 and len(program) not in (20, 32):
            return f"raw({spk.hex()})"              # Solver: NONSTANDARD
        if version == 1 and len(program) == 32 and is_valid_pubkey(b"\x02" + program):
            return f"rawtr({program.hex()})"        # XOnlyPubKey::IsFullyValid
        return f"addr({encode_segwit_address(version, program, params)})"
    kind = classify(spk)
    if kind is ScriptType.PUBKEY:
        pubkey = spk[1:-1]
        if _is_valid_non_hybrid(pubkey):
            return f"pk({pubkey.hex()})"
    elif kind is ScriptType.MULTISIG:
        m, keys = multisig_info(spk)
        if all(_is_valid_non_hybrid(k) for k in keys):
            return f"multi({m}," + ",".join(k.hex() for k in keys) + ")"
    elif kind is ScriptType.PUBKEYHASH:
        return f"addr({encode_address('p2pkh', spk[3:23], params)})"
    elif kind is ScriptType.SCRIPTHASH:
        return f"addr({encode_address('p2sh', spk[2:22], params)})"
    return f"raw({spk.hex()})"


def infer_descriptor(script_pubkey: bytes, params) -> str:
    """Core `InferDescriptor(script, DUMMY_SIGNING_PROVIDER)->ToString()` with its checksum: the
    `desc` field of every `scriptPubKey` object Core's RPCs print (`ScriptToUniv`).

    - P2PK → `pk(<key>)` when the key's prefix is 02/03/04 (hybrid 06/07 → `raw`);
    - bare multisig as Core's `Solver` matches it (1 ≤ k ≤ n ≤ 20, minimal numbers) →
      `multi(k,<key>,...)` when no key is hybrid; uncompressed keys are allowed at top level;
    - P2PKH, P2SH → `addr(<base58>)`; witness v0 (20 or 32 bytes), v1..v16 (anchors too) →
      `addr(<bech32/bech32m>)`, except taproot with a valid x-only key → `rawtr(<x-only key>)`;
    - everything else (OP_RETURN, other v0 lengths, nonstandard, empty) → `raw(<hex>)`.
    """
    return add_checksum(_infer(bytes(script_pubkey), params))
