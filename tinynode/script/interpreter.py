"""The script interpreter: Core `EvalScript` / `VerifyScript` for `SigVersion::BASE`,
`SigVersion::WITNESS_V0` (BIP141 witness programs: P2WPKH, P2WSH, and their P2SH-wrapped forms),
`SigVersion::TAPROOT` (BIP341 key path) and `SigVersion::TAPSCRIPT` (BIP342 script path).

Every failure raises `ScriptError` whose `.code` is Core's error name as script_tests.json
spells it ("EVAL_FALSE", "SIG_DER", ...). Checks run in Core's order so the first error found
is the one Core reports.
"""

from __future__ import annotations

import hashlib

from ..primitives.hashes import hash160, ripemd160, sha256d
from ..primitives.keys import SECP256K1_ORDER, verify_compact, verify_der_hashtyped, verify_schnorr
from ..primitives.serialize import ser_compact_size
from ..primitives.tx import Tx
from .flags import ScriptFlags
from .script import (
    MAX_OPS_PER_SCRIPT, MAX_PUBKEYS_PER_MULTISIG, MAX_SCRIPT_ELEMENT_SIZE, MAX_SCRIPT_SIZE,
    MAX_STACK_SIZE, check_minimal_push, core_push, decode_num, encode_num, find_and_delete,
    get_op, is_p2sh, is_push_only,
)
from .sigcheck import (
    is_compressed_or_uncompressed_pubkey, is_defined_hashtype, is_low_der_signature,
    is_valid_signature_encoding, parse_der_lax, pubkey_size_ok, verify_lax,
)
from .sighash import (
    SIGHASH_ALL, SIGHASH_DEFAULT, PrecomputedTxData, legacy_sighash, p2pkh_sighash,
    p2wpkh_sighash_all, taproot_sighash, witness_v0_sighash,
)
from .taproot import (
    ANNEX_TAG, TAPROOT_CONTROL_BASE_SIZE, TAPROOT_CONTROL_MAX_SIZE, TAPROOT_CONTROL_NODE_SIZE,
    TAPROOT_LEAF_MASK, TAPROOT_LEAF_TAPSCRIPT, tapleaf_hash, verify_taproot_commitment,
)

__all__ = ["ScriptError", "verify_script", "eval_script", "SignatureChecker", "cast_to_bool",
           "LOCKTIME_THRESHOLD", "SIGVERSION_BASE", "SIGVERSION_WITNESS_V0", "SIGVERSION_TAPROOT",
           "SIGVERSION_TAPSCRIPT", "ScriptExecutionData", "witness_program", "is_op_success",
           "VALIDATION_WEIGHT_PER_SIGOP_PASSED", "VALIDATION_WEIGHT_OFFSET"]

#: Core's `SigVersion` values.
SIGVERSION_BASE = 0
SIGVERSION_WITNESS_V0 = 1
SIGVERSION_TAPROOT = 2      # key path spending; no script execution
SIGVERSION_TAPSCRIPT = 3    # script path spending, leaf version 0xc0

#: BIP342 validation weight: each executed signature check with a non-empty signature costs
#: 50 units of a budget of (serialized witness size + 50).
VALIDATION_WEIGHT_PER_SIGOP_PASSED = 50
VALIDATION_WEIGHT_OFFSET = 50

LOCKTIME_THRESHOLD = 500_000_000
SEQUENCE_LOCKTIME_DISABLE_FLAG = 1 << 31
SEQUENCE_LOCKTIME_TYPE_FLAG = 1 << 22
SEQUENCE_LOCKTIME_MASK = 0x0000FFFF

_P2SH = int(ScriptFlags.P2SH)
_STRICTENC = int(ScriptFlags.STRICTENC)
_DERSIG = int(ScriptFlags.DERSIG)
_LOW_S = int(ScriptFlags.LOW_S)
_NULLDUMMY = int(ScriptFlags.NULLDUMMY)
_SIGPUSHONLY = int(ScriptFlags.SIGPUSHONLY)
_MINIMALDATA = int(ScriptFlags.MINIMALDATA)
_DISCOURAGE_NOPS = int(ScriptFlags.DISCOURAGE_UPGRADABLE_NOPS)
_CLEANSTACK = int(ScriptFlags.CLEANSTACK)
_CLTV = int(ScriptFlags.CHECKLOCKTIMEVERIFY)
_CSV = int(ScriptFlags.CHECKSEQUENCEVERIFY)
_NULLFAIL = int(ScriptFlags.NULLFAIL)
_CONST_SCRIPTCODE = int(ScriptFlags.CONST_SCRIPTCODE)
_WITNESS = int(ScriptFlags.WITNESS)
_DISCOURAGE_WITNESS = int(ScriptFlags.DISCOURAGE_UPGRADABLE_WITNESS_PROGRAM)
_MINIMALIF = int(ScriptFlags.MINIMALIF)
_WITNESS_PUBKEYTYPE = int(ScriptFlags.WITNESS_PUBKEYTYPE)
_TAPROOT = int(ScriptFlags.TAPROOT)
_DISCOURAGE_TAPROOT_VERSION = int(ScriptFlags.DISCOURAGE_UPGRADABLE_TAPROOT_VERSION)
_DISCOURAGE_OP_SUCCESS = int(ScriptFlags.DISCOURAGE_OP_SUCCESS)
_DISCOURAGE_PUBKEYTYPE = int(ScriptFlags.DISCOURAGE_UPGRADABLE_PUBKEYTYPE)

_ORDER = SECP256K1_ORDER
_sha256 = hashlib.sha256
#: a fresh RIPEMD-160 context by copying an empty one (hashlib.new("ripemd160") looks the
#: algorithm up by name on every call); the template is never updated
_new_ripemd160 = hashlib.new("ripemd160").copy
_HALF_ORDER = SECP256K1_ORDER // 2

_TRUE = b"\x01"
_FALSE = b""

_DISABLED = frozenset((0x7E, 0x7F, 0x80, 0x81, 0x83, 0x84, 0x85, 0x86, 0x8D, 0x8E, 0x95, 0x96,
                       0x97, 0x98, 0x99))
_UPGRADABLE_NOPS = frozenset((0xB0, 0xB3, 0xB4, 0xB5, 0xB6, 0xB7, 0xB8, 0xB9))
#: Core `IsOpSuccess` (BIP342): 80, 98, 126-129, 131-134, 137-138, 141-142, 149-153, 187-254
_OP_SUCCESS = frozenset((80, 98, *range(126, 130), *range(131, 135), 137, 138, 141, 142,
                         *range(149, 154), *range(187, 255)))


def is_op_success(op: int) -> bool:
    """Core `IsOpSuccess`: the opcodes that make a tapscript succeed unconditionally (BIP342)."""
    return op in _OP_SUCCESS


class ScriptError(Exception):
    """A script failed; `.code` is Core's error name (script_tests.json spelling)."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail


#: Core `ScriptErrorString` (script/script_error.cpp): the sentence for each error name, which
#: Core puts in reject reasons such as `block-script-verify-flag-failed (<sentence>)`.
SCRIPT_ERROR_STRINGS = {
    "OK": "No error",
    "EVAL_FALSE": "Script evaluated without error but finished with a false/empty top stack element",
    "OP_RETURN": "OP_RETURN was encountered",
    "SCRIPT_SIZE": "Script is too big",
    "PUSH_SIZE": "Push value size limit exceeded",
    "OP_COUNT": "Operation limit exceeded",
    "STACK_SIZE": "Stack size limit exceeded",
    "SIG_COUNT": "Signature count negative or greater than pubkey count",
    "PUBKEY_COUNT": "Pubkey count negative or limit exceeded",
    "VERIFY": "Script failed an OP_VERIFY operation",
    "EQUALVERIFY": "Script failed an OP_EQUALVERIFY operation",
    "CHECKMULTISIGVERIFY": "Script failed an OP_CHECKMULTISIGVERIFY operation",
    "CHECKSIGVERIFY": "Script failed an OP_CHECKSIGVERIFY operation",
    "NUMEQUALVERIFY": "Script failed an OP_NUMEQUALVERIFY operation",
    "BAD_OPCODE": "Opcode missing or not understood",
    "DISABLED_OPCODE": "Attempted to use a disabled opcode",
    "INVALID_STACK_OPERATION": "Operation not valid with the current stack size",
    "INVALID_ALTSTACK_OPERATION": "Operation not valid with the current altstack size",
    "UNBALANCED_CONDITIONAL": "Invalid OP_IF construction",
    "NEGATIVE_LOCKTIME": "Negative locktime",
    "UNSATISFIED_LOCKTIME": "Locktime requirement not satisfied",
    "SIG_HASHTYPE": "Signature hash type missing or not understood",
    "SIG_DER": "Non-canonical DER signature",
    "MINIMALDATA": "Data push larger than necessary",
    "SIG_PUSHONLY": "Only push operators allowed in signatures",
    "SIG_HIGH_S": "Non-canonical signature: S value is unnecessarily high",
    "SIG_NULLDUMMY": "Dummy CHECKMULTISIG argument must be zero",
    "PUBKEYTYPE": "Public key is neither compressed or uncompressed",
    "CLEANSTACK": "Stack size must be exactly one after execution",
    "MINIMALIF": "OP_IF/NOTIF argument must be minimal",
    "NULLFAIL": "Signature must be zero for failed CHECK(MULTI)SIG operation",
    "DISCOURAGE_UPGRADABLE_NOPS": "NOPx reserved for soft-fork upgrades",
    "DISCOURAGE_UPGRADABLE_WITNESS_PROGRAM": "Witness version reserved for soft-fork upgrades",
    "WITNESS_PROGRAM_WRONG_LENGTH": "Witness program has incorrect length",
    "WITNESS_PROGRAM_WITNESS_EMPTY": "Witness program was passed an empty witness",
    "WITNESS_PROGRAM_MISMATCH": "Witness program hash mismatch",
    "WITNESS_MALLEATED": "Witness requires empty scriptSig",
    "WITNESS_MALLEATED_P2SH": "Witness requires only-redeemscript scriptSig",
    "WITNESS_UNEXPECTED": "Witness provided for non-witness script",
    "WITNESS_PUBKEYTYPE": "Using non-compressed keys in segwit",
    "DISCOURAGE_UPGRADABLE_TAPROOT_VERSION": "Taproot version reserved for soft-fork upgrades",
    "DISCOURAGE_OP_SUCCESS": "OP_SUCCESSx reserved for soft-fork upgrades",
    "DISCOURAGE_UPGRADABLE_PUBKEYTYPE": "Public key version reserved for soft-fork upgrades",
    "SCHNORR_SIG_SIZE": "Invalid Schnorr signature size",
    "SCHNORR_SIG_HASHTYPE": "Invalid Schnorr signature hash type",
    "SCHNORR_SIG": "Invalid Schnorr signature",
    "TAPROOT_WRONG_CONTROL_SIZE": "Invalid Taproot control block size",
    "TAPSCRIPT_VALIDATION_WEIGHT": "Too much signature validation relative to witness weight",
    "TAPSCRIPT_CHECKMULTISIG": "OP_CHECKMULTISIG(VERIFY) is not available in tapscript",
    "TAPSCRIPT_MINIMALIF": "OP_IF/NOTIF argument must be minimal in tapscript",
    "TAPSCRIPT_EMPTY_PUBKEY": "Empty public key in tapscript",
    "UNKNOWN_ERROR": "unknown error",
    "OP_CODESEPARATOR": "Using OP_CODESEPARATOR in non-witness script",
    "SIG_FINDANDDELETE": "Signature is found in scriptCode",
    "SCRIPTNUM": "Script number overflowed or is non-minimally encoded",
}


def script_error_string(code: str) -> str:
    """Core `ScriptErrorString`: the sentence for a script error name ("unknown error" if none)."""
    return SCRIPT_ERROR_STRINGS.get(code, "unknown error")


def cast_to_bool(v: bytes) -> bool:
    """Core `CastToBool`: false for any encoding of zero, including negative zero."""
    for i, b in enumerate(v):
        if b:
            return not (i == len(v) - 1 and b == 0x80)
    return False


def _num(v: bytes, minimal: bool, size: int = 4) -> int:
    try:
        return decode_num(v, minimal, size)
    except ValueError as e:
        raise ScriptError("SCRIPTNUM", str(e)) from None


class ScriptExecutionData:
    """Core `ScriptExecutionData`: what one taproot input's verification carries between
    `VerifyWitnessProgram`, `EvalScript` and the signature checks (one object per input, never
    shared). `annex` is the annex (None when absent); `tapleaf_hash` None on the key path;
    `codesep_pos` the opcode position of the last executed OP_CODESEPARATOR (0xFFFFFFFF none);
    `weight_left` the BIP342 validation weight budget left."""

    __slots__ = ("annex", "tapleaf_hash", "codesep_pos", "weight_left")

    def __init__(self, annex: bytes | None = None, tapleaf_hash: bytes | None = None,
                 weight_left: int = 0) -> None:
        self.annex = annex
        self.tapleaf_hash = tapleaf_hash
        self.codesep_pos = 0xFFFFFFFF
        self.weight_left = weight_left


class SignatureChecker:
    """Core `GenericTransactionSignatureChecker`: sighash (legacy or BIP143) + lax ECDSA check,
    and the CLTV/CSV comparisons against the spending transaction.

    `amount` is the value of the output being spent (BIP143 signs it); `txdata` the
    transaction's `PrecomputedTxData`, made on first use when not given."""

    __slots__ = ("tx", "input_index", "amount", "txdata")

    def __init__(self, tx: Tx, input_index: int, amount: int = 0,
                 txdata: PrecomputedTxData | None = None) -> None:
        self.tx = tx
        self.input_index = input_index
        self.amount = amount
        self.txdata = txdata

    def _sighash(self, script_code: bytes, hash_type: int, sigversion: int) -> bytes:
        if sigversion == SIGVERSION_WITNESS_V0:
            txdata = self.txdata
            if txdata is None:
                txdata = self.txdata = PrecomputedTxData.for_tx(self.tx)
            return witness_v0_sighash(self.tx, self.input_index, script_code, self.amount,
                                      hash_type, txdata)
        return legacy_sighash(self.tx, self.input_index, script_code, hash_type)

    def check_sig(self, sig: bytes, pubkey: bytes, script_code: bytes,
                  digests: dict[int, bytes] | None = None, sigversion: int = SIGVERSION_BASE) -> bool:
        """Core `CheckECDSASignature`: `sig` ends with its hashtype byte.

        `digests` (hashtype → sighash) may be passed by a caller that checks several
        signature/key pairs against the same scriptCode (CHECKMULTISIG)."""
        if not sig:
            return False
        hash_type = sig[-1]
        if digests is None:
            digest = self._sighash(script_code, hash_type, sigversion)
        else:
            digest = digests.get(hash_type)
            if digest is None:
                digest = digests[hash_type] = self._sighash(script_code, hash_type, sigversion)
        return verify_lax(sig[:-1], pubkey, digest)

    def check_schnorr(self, sig: bytes, pubkey: bytes, sigversion: int,
                      execdata: ScriptExecutionData) -> None:
        """Core `CheckSchnorrSignature` (`pubkey` is 32 bytes): raises SCHNORR_SIG_SIZE (not 64
        or 65 bytes), SCHNORR_SIG_HASHTYPE (65 bytes ending 0x00, an undefined hash type, or
        SIGHASH_SINGLE without its output), SCHNORR_SIG (verification fails). Without every
        spent output (`txdata.spent_outputs`) the check fails as Core's MissingDataBehavior::FAIL
        (UNKNOWN_ERROR)."""
        n = len(sig)
        if n != 64 and n != 65:
            raise ScriptError("SCHNORR_SIG_SIZE")
        hash_type = SIGHASH_DEFAULT
        if n == 65:
            hash_type = sig[64]
            if hash_type == SIGHASH_DEFAULT:
                raise ScriptError("SCHNORR_SIG_HASHTYPE")
            sig = sig[:64]
        txdata = self.txdata
        if txdata is None or not txdata.taproot_ready:
            raise ScriptError("UNKNOWN_ERROR", "a taproot signature needs every spent output")
        digest = taproot_sighash(self.tx, self.input_index, hash_type, txdata, execdata.annex,
                                 execdata.tapleaf_hash if sigversion == SIGVERSION_TAPSCRIPT else None,
                                 execdata.codesep_pos)
        if digest is None:
            raise ScriptError("SCHNORR_SIG_HASHTYPE")
        if not verify_schnorr(pubkey, sig, digest):
            raise ScriptError("SCHNORR_SIG")

    def check_locktime(self, lock_time: int) -> bool:
        """Core `CheckLockTime` (BIP65)."""
        tx = self.tx
        tx_lock = tx.locktime
        if not ((tx_lock < LOCKTIME_THRESHOLD and lock_time < LOCKTIME_THRESHOLD)
                or (tx_lock >= LOCKTIME_THRESHOLD and lock_time >= LOCKTIME_THRESHOLD)):
            return False
        if lock_time > tx_lock:
            return False
        # A final input would let the transaction bypass nLockTime entirely.
        return tx.vin[self.input_index].sequence != 0xFFFFFFFF

    def check_sequence(self, sequence: int) -> bool:
        """Core `CheckSequence` (BIP112)."""
        tx = self.tx
        tx_seq = tx.vin[self.input_index].sequence
        if tx.version & 0xFFFFFFFF < 2:
            return False
        if tx_seq & SEQUENCE_LOCKTIME_DISABLE_FLAG:
            return False
        mask = SEQUENCE_LOCKTIME_TYPE_FLAG | SEQUENCE_LOCKTIME_MASK
        tx_masked = tx_seq & mask
        masked = sequence & mask
        if not ((tx_masked < SEQUENCE_LOCKTIME_TYPE_FLAG and masked < SEQUENCE_LOCKTIME_TYPE_FLAG)
                or (tx_masked >= SEQUENCE_LOCKTIME_TYPE_FLAG and masked >= SEQUENCE_LOCKTIME_TYPE_FLAG)):
            return False
        return masked <= tx_masked


def _check_signature_encoding(sig: bytes, flags: int) -> None:
    """Core `CheckSignatureEncoding`."""
    if not sig:
        return
    if flags & (_DERSIG | _LOW_S | _STRICTENC) and not is_valid_signature_encoding(sig):
        raise ScriptError("SIG_DER")
    if flags & _LOW_S and not is_low_der_signature(sig[:-1]):
        raise ScriptError("SIG_HIGH_S")
    if flags & _STRICTENC and not is_defined_hashtype(sig):
        raise ScriptError("SIG_HASHTYPE")


def _check_pubkey_encoding(pubkey: bytes, flags: int, sigversion: int) -> None:
    """Core `CheckPubKeyEncoding`: STRICTENC key forms; in witness v0 scripts with
    WITNESS_PUBKEYTYPE only compressed keys (0x02/0x03 + 32 bytes)."""
    if flags & _STRICTENC and not is_compressed_or_uncompressed_pubkey(pubkey):
        raise ScriptError("PUBKEYTYPE")
    if (flags & _WITNESS_PUBKEYTYPE and sigversion == SIGVERSION_WITNESS_V0
            and not (len(pubkey) == 33 and (pubkey[0] == 2 or pubkey[0] == 3))):
        raise ScriptError("WITNESS_PUBKEYTYPE")


def _checksig_tapscript(sig: bytes, pubkey: bytes, execdata: ScriptExecutionData, flags: int,
                        checker: SignatureChecker | None) -> bool:
    """Core `EvalChecksigTapscript`, in its consensus-critical order: a non-empty signature
    spends validation weight first (TAPSCRIPT_VALIDATION_WEIGHT), then an empty key fails
    (TAPSCRIPT_EMPTY_PUBKEY), a 32-byte key checks the signature (a non-empty invalid one fails
    the script), any other key type succeeds unless DISCOURAGE_UPGRADABLE_PUBKEYTYPE. Returns
    whether the check succeeded (False only for an empty signature)."""
    success = bool(sig)
    if success:
        execdata.weight_left -= VALIDATION_WEIGHT_PER_SIGOP_PASSED
        if execdata.weight_left < 0:
            raise ScriptError("TAPSCRIPT_VALIDATION_WEIGHT")
    if not pubkey:
        raise ScriptError("TAPSCRIPT_EMPTY_PUBKEY")
    if len(pubkey) == 32:
        if success:
            if checker is None:
                raise ScriptError("SCHNORR_SIG", "no transaction to check against")
            checker.check_schnorr(sig, pubkey, SIGVERSION_TAPSCRIPT, execdata)
    elif flags & _DISCOURAGE_PUBKEYTYPE:
        raise ScriptError("DISCOURAGE_UPGRADABLE_PUBKEYTYPE")
    return success


def eval_script(stack: list[bytes], script: bytes, flags: int, checker: SignatureChecker | None,
                sigversion: int = SIGVERSION_BASE, execdata: ScriptExecutionData | None = None) -> None:
    """Core `EvalScript` with `SigVersion::BASE`, `WITNESS_V0` or `TAPSCRIPT`: run `script` on
    `stack` (modified in place).

    Witness v0 differs only in: no FindAndDelete of the signature and no CONST_SCRIPTCODE
    rules, MINIMALIF applies, WITNESS_PUBKEYTYPE applies, and signatures use the BIP143 sighash.
    Tapscript (BIP342; `execdata` required): no 10,000-byte script or 201-opcode limit,
    MINIMALIF is consensus (TAPSCRIPT_MINIMALIF), CHECKSIG/CHECKSIGVERIFY/CHECKSIGADD take
    x-only keys and Schnorr signatures within the validation weight budget, CHECKMULTISIG is
    gone (TAPSCRIPT_CHECKMULTISIG), OP_CODESEPARATOR records its opcode position.
    `checker` may be None only for scripts without signature or lock-time checks."""
    tapscript = sigversion == SIGVERSION_TAPSCRIPT
    if not tapscript and len(script) > MAX_SCRIPT_SIZE:
        raise ScriptError("SCRIPT_SIZE")
    if tapscript and execdata is None:
        execdata = ScriptExecutionData()
    flags = int(flags)
    minimal = bool(flags & _MINIMALDATA)
    base = sigversion == SIGVERSION_BASE
    minimal_if = sigversion == SIGVERSION_WITNESS_V0 and bool(flags & _MINIMALIF)
    opcode_pos = -1
    vexec: list[bool] = []
    n_false = 0  # how many entries of vexec are False
    altstack: list[bytes] = []
    op_count = 0
    pc = 0
    end = len(script)
    begin_code = 0
    push = stack.append
    pop = stack.pop

    while pc < end:
        fexec = n_false == 0
        op = script[pc]
        opcode_pos += 1
        if op <= 0x4E:
            r = get_op(script, pc)
            if r is None:
                raise ScriptError("BAD_OPCODE")
            _, data, pc = r
            if len(data) > MAX_SCRIPT_ELEMENT_SIZE:
                raise ScriptError("PUSH_SIZE")
            if fexec:
                if minimal and not check_minimal_push(data, op):
                    raise ScriptError("MINIMALDATA")
                push(data)
            if len(stack) + len(altstack) > MAX_STACK_SIZE:
                raise ScriptError("STACK_SIZE")
            continue
        pc += 1
        if op > 0x60 and not tapscript:
            op_count += 1
            if op_count > MAX_OPS_PER_SCRIPT:
                raise ScriptError("OP_COUNT")
        if op in _DISABLED:
            raise ScriptError("DISABLED_OPCODE")
        if op == 0xAB and base and flags & _CONST_SCRIPTCODE:
            raise ScriptError("OP_CODESEPARATOR")
        if not fexec and not 0x63 <= op <= 0x68:
            continue

        # --- push value
        if 0x51 <= op <= 0x60:
            push(bytes((op - 0x50,)))
        elif op == 0x4F:
            push(b"\x81")
        # --- control
        elif op == 0x61:
            pass
        elif op == 0x63 or op == 0x64:  # IF / NOTIF
            value = False
            if fexec:
                if not stack:  # Core reports this as a stack error (script_tests.json agrees)
                    raise ScriptError("INVALID_STACK_OPERATION")
                if minimal_if or tapscript:
                    top = stack[-1]
                    if len(top) > 1 or (len(top) == 1 and top[0] != 1):
                        raise ScriptError("TAPSCRIPT_MINIMALIF" if tapscript else "MINIMALIF")
                value = cast_to_bool(pop())
                if op == 0x64:
                    value = not value
            vexec.append(value)
            if not value:
                n_false += 1
        elif op == 0x67:  # ELSE
            if not vexec:
                raise ScriptError("UNBALANCED_CONDITIONAL")
            v = vexec[-1]
            vexec[-1] = not v
            n_false += 1 if v else -1
        elif op == 0x68:  # ENDIF
            if not vexec:
                raise ScriptError("UNBALANCED_CONDITIONAL")
            if not vexec.pop():
                n_false -= 1
        elif op == 0x69:  # VERIFY
            if not stack:
                raise ScriptError("INVALID_STACK_OPERATION")
            if not cast_to_bool(stack[-1]):
                raise ScriptError("VERIFY")
            pop()
        elif op == 0x6A:
            raise ScriptError("OP_RETURN")
        elif op == 0xB1:  # CHECKLOCKTIMEVERIFY
            if flags & _CLTV:
                if not stack:
                    raise ScriptError("INVALID_STACK_OPERATION")
                lock_time = _num(stack[-1], minimal, 5)
                if lock_time < 0:
                    raise ScriptError("NEGATIVE_LOCKTIME")
                if checker is None or not checker.check_locktime(lock_time):
                    raise ScriptError("UNSATISFIED_LOCKTIME")
            # without the flag it is NOP2, never "discouraged" (removing a flag must not
            # invalidate anything, as Core's tx_valid harness checks)
        elif op == 0xB2:  # CHECKSEQUENCEVERIFY
            if flags & _CSV:
                if not stack:
                    raise ScriptError("INVALID_STACK_OPERATION")
                sequence = _num(stack[-1], minimal, 5)
                if sequence < 0:
                    raise ScriptError("NEGATIVE_LOCKTIME")
                if not sequence & SEQUENCE_LOCKTIME_DISABLE_FLAG:
                    if checker is None or not checker.check_sequence(sequence):
                        raise ScriptError("UNSATISFIED_LOCKTIME")
            # without the flag it is a plain NOP3
        elif op in _UPGRADABLE_NOPS:
            if flags & _DISCOURAGE_NOPS:
                raise ScriptError("DISCOURAGE_UPGRADABLE_NOPS")
        # --- stack
        elif op == 0x6B:  # TOALTSTACK
            if not stack:
                raise ScriptError("INVALID_STACK_OPERATION")
            altstack.append(pop())
        elif op == 0x6C:  # FROMALTSTACK
            if not altstack:
                raise ScriptError("INVALID_ALTSTACK_OPERATION")
            push(altstack.pop())
        elif op == 0x6D:  # 2DROP
            if len(stack) < 2:
                raise ScriptError("INVALID_STACK_OPERATION")
            del stack[-2:]
        elif op == 0x6E:  # 2DUP
            if len(stack) < 2:
                raise ScriptError("INVALID_STACK_OPERATION")
            stack.extend(stack[-2:])
        elif op == 0x6F:  # 3DUP
            if len(stack) < 3:
                raise ScriptError("INVALID_STACK_OPERATION")
            stack.extend(stack[-3:])
        elif op == 0x70:  # 2OVER
            if len(stack) < 4:
                raise ScriptError("INVALID_STACK_OPERATION")
            stack.extend(stack[-4:-2])
        elif op == 0x71:  # 2ROT
            if len(stack) < 6:
                raise ScriptError("INVALID_STACK_OPERATION")
            moved = stack[-6:-4]
            del stack[-6:-4]
            stack.extend(moved)
        elif op == 0x72:  # 2SWAP
            if len(stack) < 4:
                raise ScriptError("INVALID_STACK_OPERATION")
            stack[-4:] = stack[-2:] + stack[-4:-2]
        elif op == 0x73:  # IFDUP
            if not stack:
                raise ScriptError("INVALID_STACK_OPERATION")
            if cast_to_bool(stack[-1]):
                push(stack[-1])
        elif op == 0x74:  # DEPTH
            push(encode_num(len(stack)))
        elif op == 0x75:  # DROP
            if not stack:
                raise ScriptError("INVALID_STACK_OPERATION")
            pop()
        elif op == 0x76:  # DUP
            if not stack:
                raise ScriptError("INVALID_STACK_OPERATION")
            push(stack[-1])
        elif op == 0x77:  # NIP
            if len(stack) < 2:
                raise ScriptError("INVALID_STACK_OPERATION")
            del stack[-2]
        elif op == 0x78:  # OVER
            if len(stack) < 2:
                raise ScriptError("INVALID_STACK_OPERATION")
            push(stack[-2])
        elif op == 0x79 or op == 0x7A:  # PICK / ROLL
            if len(stack) < 2:
                raise ScriptError("INVALID_STACK_OPERATION")
            n = _num(stack[-1], minimal)
            pop()
            if n < 0 or n >= len(stack):
                raise ScriptError("INVALID_STACK_OPERATION")
            v = stack[-n - 1]
            if op == 0x7A:
                del stack[-n - 1]
            push(v)
        elif op == 0x7B:  # ROT
            if len(stack) < 3:
                raise ScriptError("INVALID_STACK_OPERATION")
            stack[-3], stack[-2], stack[-1] = stack[-2], stack[-1], stack[-3]
        elif op == 0x7C:  # SWAP
            if len(stack) < 2:
                raise ScriptError("INVALID_STACK_OPERATION")
            stack[-2], stack[-1] = stack[-1], stack[-2]
        elif op == 0x7D:  # TUCK
            if len(stack) < 2:
                raise ScriptError("INVALID_STACK_OPERATION")
            stack.insert(-2, stack[-1])
        elif op == 0x82:  # SIZE
            if not stack:
                raise ScriptError("INVALID_STACK_OPERATION")
            push(encode_num(len(stack[-1])))
        # --- bitwise logic
        elif op == 0x87 or op == 0x88:  # EQUAL / EQUALVERIFY
            if len(stack) < 2:
                raise ScriptError("INVALID_STACK_OPERATION")
            equal = pop() == pop()
            if op == 0x88:
                if not equal:
                    raise ScriptError("EQUALVERIFY")
            else:
                push(_TRUE if equal else _FALSE)
        # --- numeric
        elif 0x8B <= op <= 0x92:
            if not stack:
                raise ScriptError("INVALID_STACK_OPERATION")
            a = _num(stack[-1], minimal)
            if op == 0x8B:
                a += 1
            elif op == 0x8C:
                a -= 1
            elif op == 0x8F:
                a = -a
            elif op == 0x90:
                a = abs(a)
            elif op == 0x91:
                a = int(a == 0)
            elif op == 0x92:
                a = int(a != 0)
            else:
                raise ScriptError("BAD_OPCODE")  # pragma: no cover - 2MUL/2DIV are disabled above
            stack[-1] = encode_num(a)
        elif 0x93 <= op <= 0xA4:
            if len(stack) < 2:
                raise ScriptError("INVALID_STACK_OPERATION")
            a = _num(stack[-2], minimal)
            b = _num(stack[-1], minimal)
            if op == 0x93:
                c = a + b
            elif op == 0x94:
                c = a - b
            elif op == 0x9A:
                c = int(a != 0 and b != 0)
            elif op == 0x9B:
                c = int(a != 0 or b != 0)
            elif op == 0x9C or op == 0x9D:
                c = int(a == b)
            elif op == 0x9E:
                c = int(a != b)
            elif op == 0x9F:
                c = int(a < b)
            elif op == 0xA0:
                c = int(a > b)
            elif op == 0xA1:
                c = int(a <= b)
            elif op == 0xA2:
                c = int(a >= b)
            elif op == 0xA3:
                c = min(a, b)
            else:
                c = max(a, b)
            del stack[-2:]
            if op == 0x9D:
                if not c:
                    raise ScriptError("NUMEQUALVERIFY")
            else:
                push(encode_num(c))
        elif op == 0xA5:  # WITHIN
            if len(stack) < 3:
                raise ScriptError("INVALID_STACK_OPERATION")
            x = _num(stack[-3], minimal)
            lo = _num(stack[-2], minimal)
            hi = _num(stack[-1], minimal)
            del stack[-3:]
            push(_TRUE if lo <= x < hi else _FALSE)
        # --- crypto
        elif 0xA6 <= op <= 0xAA:
            if not stack:
                raise ScriptError("INVALID_STACK_OPERATION")
            v = stack[-1]
            if op == 0xA6:
                h = ripemd160(v)
            elif op == 0xA7:
                h = hashlib.sha1(v).digest()
            elif op == 0xA8:
                h = hashlib.sha256(v).digest()
            elif op == 0xA9:
                h = hash160(v)
            else:
                h = sha256d(v)
            stack[-1] = h
        elif op == 0xAB:  # CODESEPARATOR
            begin_code = pc
            if execdata is not None:
                execdata.codesep_pos = opcode_pos
        elif tapscript and (op == 0xAC or op == 0xAD):  # CHECKSIG / CHECKSIGVERIFY (BIP342)
            if len(stack) < 2:
                raise ScriptError("INVALID_STACK_OPERATION")
            ok = _checksig_tapscript(stack[-2], stack[-1], execdata, flags, checker)
            del stack[-2:]
            if op == 0xAD:
                if not ok:
                    raise ScriptError("CHECKSIGVERIFY")
            else:
                push(_TRUE if ok else _FALSE)
        elif op == 0xBA and tapscript:  # CHECKSIGADD (BIP342): sig n pubkey -- n+success
            if len(stack) < 3:
                raise ScriptError("INVALID_STACK_OPERATION")
            n = _num(stack[-2], minimal)
            ok = _checksig_tapscript(stack[-3], stack[-1], execdata, flags, checker)
            del stack[-3:]
            push(encode_num(n + 1 if ok else n))
        elif op == 0xAC or op == 0xAD:  # CHECKSIG / CHECKSIGVERIFY
            if len(stack) < 2:
                raise ScriptError("INVALID_STACK_OPERATION")
            sig = stack[-2]
            pubkey = stack[-1]
            script_code = script[begin_code:] if begin_code else script
            if base:
                # Core `FindAndDelete(scriptCode, CScript() << vchSig)`; an empty signature is OP_0
                script_code, found = find_and_delete(script_code, core_push(sig))
                if found and flags & _CONST_SCRIPTCODE:
                    raise ScriptError("SIG_FINDANDDELETE")
            _check_signature_encoding(sig, flags)
            _check_pubkey_encoding(pubkey, flags, sigversion)
            ok = checker is not None and checker.check_sig(sig, pubkey, script_code, None, sigversion)
            if not ok and flags & _NULLFAIL and sig:
                raise ScriptError("NULLFAIL")
            del stack[-2:]
            if op == 0xAD:
                if not ok:
                    raise ScriptError("CHECKSIGVERIFY")
            else:
                push(_TRUE if ok else _FALSE)
        elif op == 0xAE or op == 0xAF:  # CHECKMULTISIG / CHECKMULTISIGVERIFY
            if tapscript:
                raise ScriptError("TAPSCRIPT_CHECKMULTISIG")
            i = 1
            if len(stack) < i:
                raise ScriptError("INVALID_STACK_OPERATION")
            n_keys = _num(stack[-i], minimal)
            if n_keys < 0 or n_keys > MAX_PUBKEYS_PER_MULTISIG:
                raise ScriptError("PUBKEY_COUNT")
            op_count += n_keys
            if op_count > MAX_OPS_PER_SCRIPT:
                raise ScriptError("OP_COUNT")
            i += 1
            ikey = i
            # ikey2: position of the last non-signature item (the top item is 1)
            ikey2 = n_keys + 2
            i += n_keys
            if len(stack) < i:
                raise ScriptError("INVALID_STACK_OPERATION")
            n_sigs = _num(stack[-i], minimal)
            if n_sigs < 0 or n_sigs > n_keys:
                raise ScriptError("SIG_COUNT")
            i += 1
            isig = i
            i += n_sigs
            if len(stack) < i:
                raise ScriptError("INVALID_STACK_OPERATION")
            script_code = script[begin_code:] if begin_code else script
            for k in range(n_sigs if base else 0):
                script_code, found = find_and_delete(script_code, core_push(stack[-isig - k]))
                if found and flags & _CONST_SCRIPTCODE:
                    raise ScriptError("SIG_FINDANDDELETE")
            success = True
            digests: dict[int, bytes] = {}
            while success and n_sigs > 0:
                sig = stack[-isig]
                pubkey = stack[-ikey]
                _check_signature_encoding(sig, flags)
                _check_pubkey_encoding(pubkey, flags, sigversion)
                if checker is not None and checker.check_sig(sig, pubkey, script_code, digests,
                                                             sigversion):
                    isig += 1
                    n_sigs -= 1
                ikey += 1
                n_keys -= 1
                # more signatures left than keys: too many have failed already
                if n_sigs > n_keys:
                    success = False
            while i > 1:
                i -= 1
                if not success and flags & _NULLFAIL and not ikey2 and stack[-1]:
                    raise ScriptError("NULLFAIL")
                if ikey2 > 0:
                    ikey2 -= 1
                pop()
            # the historical extra pop: one more item, unchecked unless NULLDUMMY
            if not stack:
                raise ScriptError("INVALID_STACK_OPERATION")
            if flags & _NULLDUMMY and stack[-1]:
                raise ScriptError("SIG_NULLDUMMY")
            pop()
            if op == 0xAF:
                if not success:
                    raise ScriptError("CHECKMULTISIGVERIFY")
            else:
                push(_TRUE if success else _FALSE)
        else:
            raise ScriptError("BAD_OPCODE")

        if len(stack) + len(altstack) > MAX_STACK_SIZE:
            raise ScriptError("STACK_SIZE")

    if vexec:
        raise ScriptError("UNBALANCED_CONDITIONAL")


def witness_program(script: bytes) -> tuple[int, bytes] | None:
    """Core `CScript::IsWitnessProgram`: (version, program) for a 4-42 byte script made of a
    version opcode (OP_0, OP_1..OP_16) and one direct push of 2-40 bytes; else None."""
    n = len(script)
    if n < 4 or n > 42:
        return None
    v = script[0]
    if v != 0 and not 0x51 <= v <= 0x60:
        return None
    if script[1] + 2 != n:
        return None
    return (v - 0x50 if v else 0), script[2:]


def verify_script(script_sig: bytes, script_pubkey: bytes, tx: Tx, input_index: int,
                  flags: int = 0, amount: int = 0, witness: tuple[bytes, ...] | None = None,
                  txdata: PrecomputedTxData | None = None) -> None:
    """Core `VerifyScript`; raises ScriptError, returns None if valid.

    `amount` is the value of the spent output (BIP143 signs it; only witness v0 signatures read
    it). `witness` is the input's witness stack, `tx.vin[input_index].witness` when None.
    `txdata` may carry the tx's precomputed BIP143 hashes shared by all its inputs. Without
    the WITNESS flag, witness programs are anyone-can-spend and witnesses are ignored, as Core.
    """
    flags = int(flags)
    if witness is None:
        witness = tx.vin[input_index].witness
    if not script_sig:  # (push-only) the P2WPKH fast path, else the interpreter
        if (len(witness) == 2 and len(script_pubkey) == 22 and script_pubkey[0] == 0
                and script_pubkey[1] == 20 and flags & _WITNESS
                and _p2wpkh_fast(script_pubkey, witness, flags, tx, input_index, amount, txdata)):
            return
    else:
        if flags & _SIGPUSHONLY and not is_push_only(script_sig):
            raise ScriptError("SIG_PUSHONLY")
        if (len(script_pubkey) == 25 and script_pubkey[0] == 0x76 and script_pubkey[1] == 0xA9
                and script_pubkey[2] == 0x14 and script_pubkey[23] == 0x88 and script_pubkey[24] == 0xAC
                and not (witness and flags & _WITNESS)
                and _p2pkh_fast(script_sig, script_pubkey, flags, tx, input_index)):
            return
    _verify_general(script_sig, script_pubkey, flags,
                    SignatureChecker(tx, input_index, amount, txdata), witness)


def _verify_general(script_sig: bytes, script_pubkey: bytes, flags: int,
                    checker: SignatureChecker, witness: tuple[bytes, ...] = ()) -> None:
    """`verify_script` without the P2PKH fast path (tests compare the two)."""
    if flags & _SIGPUSHONLY and not is_push_only(script_sig):
        raise ScriptError("SIG_PUSHONLY")
    stack: list[bytes] = []
    eval_script(stack, script_sig, flags, checker)
    copy = list(stack) if flags & _P2SH else None
    eval_script(stack, script_pubkey, flags, checker)
    if not stack or not cast_to_bool(stack[-1]):
        raise ScriptError("EVAL_FALSE")
    had_witness = False
    if flags & _WITNESS:
        prog = witness_program(script_pubkey)
        if prog is not None:
            had_witness = True
            if script_sig:
                # anything but an empty scriptSig would make the txid malleable again
                raise ScriptError("WITNESS_MALLEATED")
            _verify_witness_program(witness, prog[0], prog[1], flags, checker, False)
            del stack[1:]  # the witness program's stack is not the one CLEANSTACK looks at
    if copy is not None and is_p2sh(script_pubkey):
        if not is_push_only(script_sig):
            raise ScriptError("SIG_PUSHONLY")
        stack = copy
        redeem = stack.pop()
        eval_script(stack, redeem, flags, checker)
        if not stack or not cast_to_bool(stack[-1]):
            raise ScriptError("EVAL_FALSE")
        if flags & _WITNESS:
            prog = witness_program(redeem)
            if prog is not None:
                had_witness = True
                if script_sig != core_push(redeem):
                    # exactly one push of the redeem script, else the txid is malleable
                    raise ScriptError("WITNESS_MALLEATED_P2SH")
                _verify_witness_program(witness, prog[0], prog[1], flags, checker, True)
                del stack[1:]
    if flags & _CLEANSTACK and len(stack) != 1:
        raise ScriptError("CLEANSTACK")
    if flags & _WITNESS and not had_witness and witness:
        raise ScriptError("WITNESS_UNEXPECTED")


def _witness_size(witness: tuple[bytes, ...]) -> int:
    """Core `GetSerializeSize(witness.stack)`: compact size of the count, then each item with
    its compact size."""
    n = len(ser_compact_size(len(witness)))
    for item in witness:
        n += len(ser_compact_size(len(item))) + len(item)
    return n


def _verify_witness_program(witness: tuple[bytes, ...], version: int, program: bytes, flags: int,
                            checker: SignatureChecker, is_p2sh: bool) -> None:
    """Core `VerifyWitnessProgram`: version 0 (BIP141), version 1 with a 32-byte program and
    not P2SH-wrapped under TAPROOT (BIP341: key path with one signature, or script path with a
    script and control block; an annex, the last of ≥ 2 items starting 0x50, is removed first
    and signed), pay-to-anchor (v1 `4e73`) always valid; other versions and lengths are
    anyone-can-spend (DISCOURAGE_UPGRADABLE_WITNESS_PROGRAM makes them fail)."""
    if version == 0:
        if len(program) == 32:  # P2WSH: the last witness item is the script, sha256 = program
            if not witness:
                raise ScriptError("WITNESS_PROGRAM_WITNESS_EMPTY")
            script = witness[-1]
            if _sha256(script).digest() != program:
                raise ScriptError("WITNESS_PROGRAM_MISMATCH")
            _execute_witness_script(list(witness[:-1]), script, flags, checker)
        elif len(program) == 20:  # P2WPKH: <sig> <pubkey> against the implied P2PKH script
            if len(witness) != 2:
                raise ScriptError("WITNESS_PROGRAM_MISMATCH")
            script = b"\x76\xa9\x14" + program + b"\x88\xac"
            _execute_witness_script(list(witness), script, flags, checker)
        else:
            raise ScriptError("WITNESS_PROGRAM_WRONG_LENGTH")
        return
    if version == 1 and len(program) == 32 and not is_p2sh:
        if not flags & _TAPROOT:
            return
        if not witness:
            raise ScriptError("WITNESS_PROGRAM_WITNESS_EMPTY")
        stack = list(witness)
        annex = None
        if len(stack) >= 2 and stack[-1] and stack[-1][0] == ANNEX_TAG:
            annex = stack.pop()
        execdata = ScriptExecutionData(annex)
        if len(stack) == 1:  # key path
            checker.check_schnorr(stack[0], program, SIGVERSION_TAPROOT, execdata)
            return
        control = stack.pop()
        script = stack.pop()
        n = len(control)
        if (n < TAPROOT_CONTROL_BASE_SIZE or n > TAPROOT_CONTROL_MAX_SIZE
                or (n - TAPROOT_CONTROL_BASE_SIZE) % TAPROOT_CONTROL_NODE_SIZE):
            raise ScriptError("TAPROOT_WRONG_CONTROL_SIZE")
        leaf_version = control[0] & TAPROOT_LEAF_MASK
        execdata.tapleaf_hash = tapleaf_hash(leaf_version, script)
        if not verify_taproot_commitment(control, program, execdata.tapleaf_hash):
            raise ScriptError("WITNESS_PROGRAM_MISMATCH")
        if leaf_version == TAPROOT_LEAF_TAPSCRIPT:
            execdata.weight_left = _witness_size(witness) + VALIDATION_WEIGHT_OFFSET
            _execute_witness_script(stack, script, flags, checker, SIGVERSION_TAPSCRIPT, execdata)
            return
        if flags & _DISCOURAGE_TAPROOT_VERSION:
            raise ScriptError("DISCOURAGE_UPGRADABLE_TAPROOT_VERSION")
        return
    if version == 1 and program == b"\x4e\x73" and not is_p2sh:
        return  # pay-to-anchor (Core `IsPayToAnchor`): never discouraged
    if flags & _DISCOURAGE_WITNESS:
        raise ScriptError("DISCOURAGE_UPGRADABLE_WITNESS_PROGRAM")


def _execute_witness_script(stack: list[bytes], script: bytes, flags: int,
                            checker: SignatureChecker, sigversion: int = SIGVERSION_WITNESS_V0,
                            execdata: ScriptExecutionData | None = None) -> None:
    """Core `ExecuteWitnessScript`. Tapscript first scans the script: an undecodable push
    fails (BAD_OPCODE) unless an OP_SUCCESSx comes before it, and any OP_SUCCESSx makes the
    spend valid at once (DISCOURAGE_OP_SUCCESS: fails); then at most 1,000 initial stack items.
    Then witness items ≤ 520 bytes, run the script, and exactly one true item must remain (an
    implicit CLEANSTACK)."""
    if sigversion == SIGVERSION_TAPSCRIPT:
        pc = 0
        end = len(script)
        while pc < end:
            r = get_op(script, pc)
            if r is None:
                raise ScriptError("BAD_OPCODE")
            op, _data, pc = r
            if op in _OP_SUCCESS:
                if flags & _DISCOURAGE_OP_SUCCESS:
                    raise ScriptError("DISCOURAGE_OP_SUCCESS")
                return
        if len(stack) > MAX_STACK_SIZE:
            raise ScriptError("STACK_SIZE")
    for item in stack:
        if len(item) > MAX_SCRIPT_ELEMENT_SIZE:
            raise ScriptError("PUSH_SIZE")
    eval_script(stack, script, flags, checker, sigversion, execdata)
    if len(stack) != 1:
        raise ScriptError("CLEANSTACK")
    if not cast_to_bool(stack[-1]):
        raise ScriptError("EVAL_FALSE")


def _fast_rs(sig: bytes, pubkey: bytes, flags: int) -> tuple[int, int] | None:
    """(r, low s) of a signature the fast paths may verify directly: the encoding checks
    CHECKSIG makes under `flags` (DER/LOW_S/STRICTENC, defined hash type, key encoding), or
    None ("let the interpreter decide")."""
    if is_valid_signature_encoding(sig):
        len_r = sig[3]
        r = int.from_bytes(sig[4:4 + len_r], "big")
        s = int.from_bytes(sig[6 + len_r:-1], "big")
        if r == 0 or s == 0 or r >= _ORDER or s >= _ORDER:
            return None
    else:
        if flags & (_DERSIG | _LOW_S | _STRICTENC):
            return None
        rs = parse_der_lax(sig[:-1])
        if rs is None or rs[0] == 0 or rs[1] == 0:
            return None
        r, s = rs
    if s > _HALF_ORDER:
        if flags & _LOW_S:
            return None
        s = _ORDER - s
    if flags & _STRICTENC and not (is_defined_hashtype(sig) and is_compressed_or_uncompressed_pubkey(pubkey)):
        return None
    if not pubkey_size_ok(pubkey):
        return None
    return r, s


def _p2pkh_fast(script_sig: bytes, spk: bytes, flags: int, tx: Tx, input_index: int) -> bool:
    """The common P2PKH spend without the general interpreter.

    Applies only to `<sig> <pubkey>` with plain direct pushes (sig 9..73 bytes, pubkey 33 or 65
    bytes, both minimal by construction). Returns True when the input is valid; False means
    "not handled or invalid": the caller then runs the general interpreter, which reports the
    exact error. The checks are the ones DUP HASH160 EQUALVERIFY CHECKSIG performs, in one
    pass (the signature is parsed once).

    Under DERSIG (BIP66, every block from height 1) the signature goes to libsecp256k1's strict
    DER parser as it is (`verify_der_hashtyped`, as the P2WPKH fast path): a signature that
    parses and verifies there is BIP66 valid, and with LOW_S also low S, so the Python
    encoding check and the (r, s) round trip through ints are not needed; STRICTENC's hash type
    and key encoding rules are checked first. A signature libsecp256k1 rejects (lax DER a
    BIP66 parser still accepts, a high S under LOW_S, a wrong signature) returns False, and the
    interpreter decides."""
    n = len(script_sig)
    if n < 2:
        return False
    ls = script_sig[0]
    if not 9 <= ls <= 73 or n < ls + 2:
        return False
    lp = script_sig[ls + 1]
    if (lp != 33 and lp != 65) or n != ls + 2 + lp:
        return False
    pubkey = script_sig[ls + 2:]
    h = _new_ripemd160()
    h.update(_sha256(pubkey).digest())
    if h.digest() != spk[3:23]:
        return False
    sig = script_sig[1:ls + 1]
    if flags & _DERSIG:
        if flags & _STRICTENC:
            # Core IsDefinedHashtypeSignature, IsCompressedOrUncompressedPubKey (lp is 33 or 65)
            if not 1 <= sig[-1] & 0x7F <= 3:
                return False
            if (pubkey[0] != 4) if lp == 65 else (pubkey[0] != 2 and pubkey[0] != 3):
                return False
        if ls == 20 and sig == spk[3:23]:
            return False  # FindAndDelete would edit the scriptCode: leave it to the interpreter
        return verify_der_hashtyped(pubkey, sig, p2pkh_sighash(tx, input_index, spk, sig[-1]),
                                    flags & _LOW_S)
    rs = _fast_rs(sig, pubkey, flags)
    if rs is None:
        return False
    if ls == 20 and sig == spk[3:23]:
        return False  # FindAndDelete would edit the scriptCode: leave it to the interpreter
    digest = p2pkh_sighash(tx, input_index, spk, sig[-1])
    return verify_compact(pubkey, rs[0].to_bytes(32, "big") + rs[1].to_bytes(32, "big"), digest)


def _p2wpkh_fast(spk: bytes, witness: tuple[bytes, ...], flags: int, tx: Tx, input_index: int,
                 amount: int, txdata: PrecomputedTxData | None) -> bool:
    """The common P2WPKH spend (empty scriptSig, witness [sig, pubkey]) without the general
    interpreter: what VerifyWitnessProgram runs for a 20-byte v0 program — HASH160 of the key
    equals the program, then CHECKSIG with the BIP143 sighash of the P2PKH script code and the
    implicit clean stack. True when valid; False sends the input to the general interpreter
    for the exact verdict and error, as `_p2pkh_fast`.

    Handled here: a compressed key (02/03), or an uncompressed one (04) without
    WITNESS_PUBKEYTYPE, so the key passes STRICTENC and `CPubKey::IsValid` (hybrid keys go to
    the interpreter); a signature that libsecp256k1 parses as strict DER and that verifies,
    which makes it BIP66 valid (`verify_der_hashtyped`), with a high S failing under LOW_S and
    an undefined hash type under STRICTENC. A SIGHASH_ALL digest is built from the tx's
    precomputed BIP143 head and tail."""
    sig, pubkey = witness
    if len(pubkey) == 33:
        if pubkey[0] != 2 and pubkey[0] != 3:
            return False
    elif len(pubkey) != 65 or pubkey[0] != 4 or flags & _WITNESS_PUBKEYTYPE:
        return False
    program = spk[2:]
    h = _new_ripemd160()
    h.update(_sha256(pubkey).digest())
    if h.digest() != program or not sig:
        return False
    if sig[-1] == SIGHASH_ALL and txdata is not None and txdata.bip143_head is not None:
        # (an input index out of range slices no outpoint: no signature verifies, and the
        # interpreter then reports it)
        digest = p2wpkh_sighash_all(txdata, input_index, program, amount)
    else:
        hash_type = sig[-1]
        if flags & _STRICTENC and not 1 <= hash_type & 0x7F <= 3:  # IsDefinedHashtypeSignature
            return False
        digest = witness_v0_sighash(tx, input_index, b"\x76\xa9\x14" + program + b"\x88\xac", amount,
                                    hash_type, txdata)
    return verify_der_hashtyped(pubkey, sig, digest, flags & _LOW_S)
