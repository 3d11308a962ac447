"""Script bytes: parsing, pushes, numbers, standard templates, sigop counting.

Parsing never crashes on malformed scripts: `get_op` mirrors Core's `GetScriptOp` (it returns
None on a truncated push), `iter_ops` raises `ScriptParseError` there.
"""

from __future__ import annotations

import re
import struct
from enum import Enum
from typing import Iterator

from .opcodes import Op

__all__ = [
    "ScriptParseError", "ScriptType",
    "MAX_SCRIPT_SIZE", "MAX_SCRIPT_ELEMENT_SIZE", "MAX_OPS_PER_SCRIPT", "MAX_STACK_SIZE",
    "MAX_PUBKEYS_PER_MULTISIG",
    "get_op", "iter_ops", "is_push_only", "is_p2sh", "push_data", "push_int", "core_push",
    "encode_num", "decode_num", "check_minimal_push",
    "p2pkh_script", "p2sh_script", "p2pk_script", "multisig_script", "nulldata_script",
    "classify", "legacy_sigop_count", "p2sh_sigop_count", "parse_core_script", "find_and_delete",
]

MAX_SCRIPT_SIZE = 10_000
MAX_SCRIPT_ELEMENT_SIZE = 520
MAX_OPS_PER_SCRIPT = 201
MAX_STACK_SIZE = 1000
MAX_PUBKEYS_PER_MULTISIG = 20

_OP_PUSHDATA1 = 0x4C
_OP_PUSHDATA2 = 0x4D
_OP_PUSHDATA4 = 0x4E
_OP_1 = 0x51
_OP_16 = 0x60


class ScriptParseError(ValueError):
    """A push runs past the end of the script."""


def get_op(script: bytes, pc: int) -> tuple[int, bytes | None, int] | None:
    """Read one instruction at `pc` (Core `GetScriptOp`).

    Returns `(opcode, push_data_or_None, next_pc)`, or None when the push is truncated or `pc`
    is at the end."""
    end = len(script)
    if pc >= end:
        return None
    op = script[pc]
    pc += 1
    if op > _OP_PUSHDATA4:
        return op, None, pc
    if op < _OP_PUSHDATA1:
        n = op
    elif op == _OP_PUSHDATA1:
        if end - pc < 1:
            return None
        n = script[pc]
        pc += 1
    elif op == _OP_PUSHDATA2:
        if end - pc < 2:
            return None
        n = script[pc] | script[pc + 1] << 8
        pc += 2
    else:
        if end - pc < 4:
            return None
        n = int.from_bytes(script[pc:pc + 4], "little")
        pc += 4
    if end - pc < n:
        return None
    return op, script[pc:pc + n], pc + n


def _failed_op_end(script: bytes, pc: int) -> int:
    """Where Core's GetScriptOp leaves the iterator after failing on a truncated push at `pc`."""
    end = len(script)
    op = script[pc]
    pc += 1
    need = {_OP_PUSHDATA1: 1, _OP_PUSHDATA2: 2, _OP_PUSHDATA4: 4}.get(op, 0)
    if end - pc >= need:
        pc += need
    return pc


def iter_ops(script: bytes) -> Iterator[tuple[int, bytes | None]]:
    """Yield `(opcode, data)` per instruction (`data` is None for non-push opcodes).

    Raises ScriptParseError at a truncated push (after yielding everything before it)."""
    pc = 0
    end = len(script)
    while pc < end:
        r = get_op(script, pc)
        if r is None:
            raise ScriptParseError(f"truncated push at offset {pc}")
        op, data, pc = r
        yield op, data


def is_push_only(script: bytes) -> bool:
    """Core `CScript::IsPushOnly`: only push opcodes up to OP_16 (OP_RESERVED counts as a push)."""
    pc = 0
    end = len(script)
    while pc < end:
        r = get_op(script, pc)
        if r is None or r[0] > _OP_16:
            return False
        pc = r[2]
    return True


def is_p2sh(script: bytes) -> bool:
    """Core `CScript::IsPayToScriptHash`: OP_HASH160 <20 bytes> OP_EQUAL exactly."""
    return len(script) == 23 and script[0] == 0xA9 and script[1] == 0x14 and script[22] == 0x87


# --- numbers -----------------------------------------------------------------------------------

def encode_num(n: int) -> bytes:
    """Core `CScriptNum::serialize`: little-endian sign-magnitude, minimal; 0 is empty."""
    if n == 0:
        return b""
    neg = n < 0
    a = -n if neg else n
    b = bytearray(a.to_bytes((a.bit_length() + 7) // 8, "little"))
    if b[-1] & 0x80:
        b.append(0x80 if neg else 0x00)
    elif neg:
        b[-1] |= 0x80
    return bytes(b)


def decode_num(v: bytes, require_minimal: bool = False, max_size: int = 4) -> int:
    """Core `CScriptNum(vch, fRequireMinimal, nMaxNumSize)`; ValueError where Core throws
    `scriptnum_error` (too long, or not minimal when required)."""
    n = len(v)
    if n > max_size:
        raise ValueError("script number overflow")
    if n == 0:
        return 0
    last = v[-1]
    if require_minimal and last & 0x7F == 0 and (n <= 1 or v[-2] & 0x80 == 0):
        raise ValueError("non-minimally encoded script number")
    x = int.from_bytes(v, "little")
    if last & 0x80:
        return -(x & ~(0x80 << (8 * (n - 1))))
    return x


def check_minimal_push(data: bytes, op: int) -> bool:
    """Core `CheckMinimalPush`: was `data` pushed with the smallest possible opcode?"""
    n = len(data)
    if n == 0:
        return op == 0
    if n == 1 and 1 <= data[0] <= 16:
        return op == _OP_1 + data[0] - 1
    if n == 1 and data[0] == 0x81:
        return op == Op.OP_1NEGATE
    if n <= 75:
        return op == n
    if n <= 255:
        return op == _OP_PUSHDATA1
    if n <= 65535:
        return op == _OP_PUSHDATA2
    return True


# --- building ----------------------------------------------------------------------------------

def core_push(data: bytes) -> bytes:
    """Core `CScript() << vch`: length-based push opcode (a 1-byte value is NOT turned into OP_N;
    empty data becomes OP_0)."""
    n = len(data)
    if n < _OP_PUSHDATA1:
        return bytes((n,)) + data
    if n <= 0xFF:
        return bytes((_OP_PUSHDATA1, n)) + data
    if n <= 0xFFFF:
        return bytes((_OP_PUSHDATA2,)) + struct.pack("<H", n) + data
    return bytes((_OP_PUSHDATA4,)) + struct.pack("<I", n) + data


def push_data(data: bytes) -> bytes:
    """The minimal push of `data` (passes MINIMALDATA): OP_0, OP_1..OP_16, OP_1NEGATE, or the
    smallest PUSHDATA form."""
    if len(data) == 1:
        if 1 <= data[0] <= 16:
            return bytes((_OP_1 + data[0] - 1,))
        if data[0] == 0x81:
            return bytes((Op.OP_1NEGATE,))
    return core_push(data)


def push_int(n: int) -> bytes:
    """Core `CScript() << n` (`push_int64`): OP_0, OP_1NEGATE, OP_1..OP_16, else a number push."""
    if n == 0:
        return b"\x00"
    if n == -1 or 1 <= n <= 16:
        return bytes((_OP_1 + n - 1,))
    return core_push(encode_num(n))


def p2pkh_script(h160: bytes) -> bytes:
    if len(h160) != 20:
        raise ValueError("hash160 is 20 bytes")
    return b"\x76\xa9\x14" + h160 + b"\x88\xac"


def p2sh_script(h160: bytes) -> bytes:
    if len(h160) != 20:
        raise ValueError("hash160 is 20 bytes")
    return b"\xa9\x14" + h160 + b"\x87"


def p2pk_script(sec: bytes) -> bytes:
    return core_push(sec) + b"\xac"


def multisig_script(m: int, pubkeys: list[bytes]) -> bytes:
    """m-of-n bare multisig: OP_m <key>... OP_n OP_CHECKMULTISIG."""
    if not 1 <= m <= len(pubkeys) <= MAX_PUBKEYS_PER_MULTISIG:
        raise ValueError("need 1 <= m <= n <= 20")
    return push_int(m) + b"".join(core_push(k) for k in pubkeys) + push_int(len(pubkeys)) + b"\xae"


def nulldata_script(data: bytes) -> bytes:
    """OP_RETURN followed by one push of `data`."""
    return b"\x6a" + (push_data(data) if data else b"")


def find_and_delete(script: bytes, pattern: bytes) -> tuple[bytes, int]:
    """Core `FindAndDelete`: remove every occurrence of `pattern` that starts on an instruction
    boundary. Returns (new_script, count)."""
    if not pattern:
        return script, 0
    if pattern not in script:
        return script, 0
    out = []
    found = 0
    pc = pc2 = 0
    end = len(script)
    plen = len(pattern)
    while True:
        out.append(script[pc2:pc])
        while end - pc >= plen and script.startswith(pattern, pc):
            pc += plen
            found += 1
        pc2 = pc
        if pc >= end:
            break
        r = get_op(script, pc)
        if r is None:
            pc = _failed_op_end(script, pc)
            break
        pc = r[2]
    if not found:
        return script, 0
    out.append(script[pc2:])
    return b"".join(out), found


# --- templates ---------------------------------------------------------------------------------

class ScriptType(str, Enum):
    PUBKEYHASH = "pubkeyhash"
    SCRIPTHASH = "scripthash"
    PUBKEY = "pubkey"
    MULTISIG = "multisig"
    NULLDATA = "nulldata"
    NONSTANDARD = "nonstandard"


def _pubkey_len_ok(data: bytes | None) -> bool:
    """Core `CPubKey::ValidSize`: the prefix byte agrees with the length (33 or 65)."""
    if not data:
        return False
    p = data[0]
    if p in (2, 3):
        return len(data) == 33
    if p in (4, 6, 7):
        return len(data) == 65
    return False


def _small_number(op: int, data: bytes | None, lo: int, hi: int) -> int | None:
    """Core `GetScriptNumber` as used by `MatchMultisig`."""
    if _OP_1 <= op <= _OP_16:
        n = op - _OP_1 + 1
    elif op <= _OP_PUSHDATA4 and data is not None:
        if not check_minimal_push(data, op):
            return None
        try:
            n = decode_num(data, True)
        except ValueError:
            return None
    else:
        return None
    return n if lo <= n <= hi else None


def _match_multisig(spk: bytes) -> tuple[int, list[bytes]] | None:
    if not spk or spk[-1] != Op.OP_CHECKMULTISIG:
        return None
    r = get_op(spk, 0)
    if r is None:
        return None
    m = _small_number(r[0], r[1], 1, MAX_PUBKEYS_PER_MULTISIG)
    if m is None:
        return None
    pc = r[2]
    keys = []
    while True:
        r = get_op(spk, pc)
        if r is None:
            return None
        op, data, pc = r
        if not _pubkey_len_ok(data):
            break
        keys.append(data)
    n = _small_number(op, data, m, MAX_PUBKEYS_PER_MULTISIG)
    if n is None or n != len(keys) or pc + 1 != len(spk):
        return None
    return m, keys


def _is_witness_program(spk: bytes) -> bool:
    return (4 <= len(spk) <= 42 and (spk[0] == 0 or _OP_1 <= spk[0] <= _OP_16)
            and spk[1] + 2 == len(spk))


def classify(spk: bytes) -> ScriptType:
    """Core `Solver` for the templates a legacy node knows (witness programs are nonstandard)."""
    n = len(spk)
    if is_p2sh(spk):
        return ScriptType.SCRIPTHASH
    if _is_witness_program(spk):
        return ScriptType.NONSTANDARD
    if n >= 1 and spk[0] == Op.OP_RETURN and is_push_only(spk[1:]):
        return ScriptType.NULLDATA
    if ((n == 35 and spk[0] == 33) or (n == 67 and spk[0] == 65)) and spk[-1] == Op.OP_CHECKSIG \
            and _pubkey_len_ok(spk[1:-1]):
        return ScriptType.PUBKEY
    if n == 25 and spk[:3] == b"\x76\xa9\x14" and spk[23:] == b"\x88\xac":
        return ScriptType.PUBKEYHASH
    if _match_multisig(spk) is not None:
        return ScriptType.MULTISIG
    return ScriptType.NONSTANDARD


def multisig_info(spk: bytes) -> tuple[int, list[bytes]] | None:
    """(m, pubkeys) of a standard multisig script, else None."""
    return _match_multisig(spk)


# --- sigops ------------------------------------------------------------------------------------

def legacy_sigop_count(script: bytes, accurate: bool = False) -> int:
    """Core `CScript::GetSigOpCount(fAccurate)`: CHECKSIG(VERIFY) = 1, CHECKMULTISIG(VERIFY) =
    20, or the preceding OP_1..OP_16 when `accurate`. Stops silently at a truncated push."""
    n = 0
    last = Op.OP_INVALIDOPCODE
    pc = 0
    end = len(script)
    while pc < end:
        r = get_op(script, pc)
        if r is None:
            break
        op, _, pc = r
        if op == 0xAC or op == 0xAD:
            n += 1
        elif op == 0xAE or op == 0xAF:
            if accurate and _OP_1 <= last <= _OP_16:
                n += last - _OP_1 + 1
            else:
                n += MAX_PUBKEYS_PER_MULTISIG
        last = op
    return n


def p2sh_sigop_count(script_sig: bytes, script_pubkey: bytes) -> int:
    """Sigops of a P2SH input's redeem script (Core `GetSigOpCount(scriptSig)` as called by
    `GetP2SHSigOpCount`); 0 when `script_pubkey` is not P2SH or the scriptSig is not push-only."""
    if not is_p2sh(script_pubkey):
        return 0
    pc = 0
    end = len(script_sig)
    last = b""
    while pc < end:
        r = get_op(script_sig, pc)
        if r is None or r[0] > _OP_16:
            return 0
        op, data, pc = r
        last = data if data is not None else b""
    return legacy_sigop_count(last, accurate=True)


# --- Core's short script notation (tests, tools) -----------------------------------------------

def _op_names() -> dict[str, int]:
    names = {}
    for op in Op:
        if (op < Op.OP_NOP and op != Op.OP_RESERVED) or op == Op.OP_INVALIDOPCODE:
            continue
        names[op.name] = int(op)
        names[op.name[3:]] = int(op)
    return names


_OP_NAMES = _op_names()
_NUM_RE = re.compile(r"-?[0-9]+")
_HEX_RE = re.compile(r"0x[0-9a-fA-F]+")


def parse_core_script(text: str) -> bytes:
    """Core `ParseScript` (the notation in script_tests.json / tx_valid.json): decimal numbers
    are pushed as numbers, `0x..` is raw bytes, `'..'` is a data push, opcode names with or
    without `OP_`. Raises ValueError on anything else."""
    out = []
    for w in text.split():
        if _NUM_RE.fullmatch(w) and w != "-":
            n = int(w)
            if not -0xFFFFFFFF <= n <= 0xFFFFFFFF:
                raise ValueError(f"number out of range: {w}")
            out.append(push_int(n))
        elif _HEX_RE.fullmatch(w):
            if len(w) % 2:
                raise ValueError(f"odd hex: {w}")
            out.append(bytes.fromhex(w[2:]))
        elif len(w) >= 2 and w[0] == "'" and w[-1] == "'":
            out.append(core_push(w[1:-1].encode()))
        elif w in _OP_NAMES:
            out.append(bytes((_OP_NAMES[w],)))
        else:
            raise ValueError(f"script parse error: {w!r}")
    return b"".join(out)
