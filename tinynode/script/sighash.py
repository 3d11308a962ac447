"""Signature hashes: Core `SignatureHash` with `SigVersion::BASE` (legacy) and
`SigVersion::WITNESS_V0` (BIP143), and Core `SignatureHashSchnorr` (BIP341/342).

The legacy/BIP143 digest is sha256d of the preimage in internal order: exactly the 32 bytes
ECDSA signs (no reversal, no further hashing). The taproot digest is the tagged hash
`TapSighash` of its preimage, the 32 bytes BIP340 signs.
"""

from __future__ import annotations

import hashlib
import struct
from typing import NamedTuple

from ..primitives.hashes import sha256, sha256d, tagged_hasher
from ..primitives.serialize import read_compact_size_at, ser_compact_size
from ..primitives.tx import Tx
from .script import get_op

__all__ = [
    "p2pkh_sighash",
    "SIGHASH_ALL", "SIGHASH_NONE", "SIGHASH_SINGLE", "SIGHASH_ANYONECANPAY", "SIGHASH_ONE",
    "legacy_sighash", "serialize_script_code", "PrecomputedTxData", "witness_v0_sighash",
    "bip143_all_sighash", "p2wpkh_sighash_all",
    "SIGHASH_DEFAULT", "taproot_sighash", "taproot_sighash_preimage",
]

SIGHASH_DEFAULT = 0  # BIP341: a 64-byte signature, signs like SIGHASH_ALL
SIGHASH_ALL = 1
SIGHASH_NONE = 2
SIGHASH_SINGLE = 3
SIGHASH_ANYONECANPAY = 0x80

#: Core's `uint256::ONE` in internal order: what the SIGHASH_SINGLE bug (and an out-of-range
#: input index) "signs".
SIGHASH_ONE = b"\x01" + bytes(31)

_OP_CODESEPARATOR = 0xAB
_U32 = struct.Struct("<I")
_NULL_TXOUT = b"\xff" * 8 + b"\x00"  # CTxOut() : value -1, empty script
_Q = struct.Struct("<q")
_PACK_U32 = _U32.pack
_sha256 = hashlib.sha256
_tuple_new = tuple.__new__
_ZERO32 = bytes(32)
#: sha256 and sha256d of the sequences of a one-input tx (its one 4-byte nSequence) for the
#: values nearly every such tx carries — final, locktime-enabling (0xfffffffe), RBF-signalling
#: (0xfffffffd, what Core's wallet sets): BIP341's sha_sequences and BIP143's hashSequence,
#: looked up instead of hashed per tx. Constants (never written); any other value is hashed.
_ONE_SEQUENCE_HASHES = {
    seq: (hashlib.sha256(seq).digest(), hashlib.sha256(hashlib.sha256(seq).digest()).digest())
    for seq in (b"\xff\xff\xff\xff", b"\xfe\xff\xff\xff", b"\xfd\xff\xff\xff")
}


def serialize_script_code(script_code: bytes) -> bytes:
    """Core `CTransactionSignatureSerializer::SerializeScriptCode`: compact size + the script
    with every OP_CODESEPARATOR *instruction* removed (0xab bytes inside pushes stay)."""
    if _OP_CODESEPARATOR not in script_code:
        return ser_compact_size(len(script_code)) + script_code
    parts = []
    seps = 0
    begin = pc = 0
    end = len(script_code)
    while pc < end:
        r = get_op(script_code, pc)
        if r is None:
            # Core's serializer stops at a truncated push and writes the bytes its iterator
            # consumed so far (the opcode and any length bytes); the declared size still
            # counts the whole script.
            op = script_code[pc]
            pc += 1
            need = {0x4C: 1, 0x4D: 2, 0x4E: 4}.get(op, 0)
            if end - pc >= need:
                pc += need
            break
        op, _, nxt = r
        if op == _OP_CODESEPARATOR:
            parts.append(script_code[begin:pc])
            seps += 1
            begin = nxt
        pc = nxt
    if begin != end:
        parts.append(script_code[begin:pc])
    return ser_compact_size(end - seps) + b"".join(parts)


def legacy_sighash(tx: Tx, input_index: int, script_code: bytes, hash_type: int) -> bytes:
    """Core `SignatureHash(scriptCode, tx, nIn, nHashType, amount, SigVersion::BASE)`.

    `hash_type` is a signed 32-bit value serialized little-endian at the end of the preimage;
    its low 5 bits pick NONE (2) / SINGLE (3) / anything else = ALL, bit 0x80 is ANYONECANPAY.
    The SIGHASH_SINGLE bug (input index ≥ number of outputs) returns `SIGHASH_ONE`.
    """
    vin = tx.vin
    if input_index >= len(vin):
        return SIGHASH_ONE
    base = hash_type & 0x1F
    if base == SIGHASH_SINGLE and input_index >= len(tx.vout):
        return SIGHASH_ONE
    anyone = hash_type & SIGHASH_ANYONECANPAY
    no_seq = base == SIGHASH_NONE or base == SIGHASH_SINGLE
    code = serialize_script_code(script_code)
    pack = _U32.pack
    if not anyone and not no_seq:
        return _sighash_all(tx, input_index, code, hash_type)
    parts = [pack(tx.version & 0xFFFFFFFF)]
    if anyone:
        txin = vin[input_index]
        parts.append(b"\x01")
        parts.append(txin.prevout.txid)
        parts.append(pack(txin.prevout.n))
        parts.append(code)
        parts.append(pack(txin.sequence))
    else:
        parts.append(ser_compact_size(len(vin)))
        for i, txin in enumerate(vin):
            parts.append(txin.prevout.txid)
            parts.append(pack(txin.prevout.n))
            if i == input_index:
                parts.append(code)
                parts.append(pack(txin.sequence))
            else:
                parts.append(b"\x00")
                parts.append(b"\x00\x00\x00\x00" if no_seq else pack(txin.sequence))
    if base == SIGHASH_NONE:
        parts.append(b"\x00")
    elif base == SIGHASH_SINGLE:
        parts.append(ser_compact_size(input_index + 1))
        parts.extend([_NULL_TXOUT] * input_index)
        parts.append(tx.vout[input_index].serialize())
    else:
        parts.append(ser_compact_size(len(tx.vout)))
        parts.extend(o.serialize() for o in tx.vout)
    parts.append(pack(tx.locktime))
    parts.append(pack(hash_type & 0xFFFFFFFF))
    return sha256d(b"".join(parts))


def _sighash_all(tx: Tx, input_index: int, code: bytes, hash_type: int) -> bytes:
    """SIGHASH_ALL without ANYONECANPAY: the outputs and locktime are the tail of the
    transaction's own (non-witness) serialization, so they are sliced from it instead of
    re-serialized.
    `code` is the serialized scriptCode (`serialize_script_code`); `input_index` < len(tx.vin)."""
    pack = _U32.pack
    vin = tx.vin
    raw = tx.raw if tx.base_size == len(tx.raw) else tx.serialize_without_witness()
    if len(vin) == 1:
        # one input (input_index 0 here): version, count, outpoint, then the scriptSig replaced
        # by `code`; everything after the scriptSig (sequence, outputs, locktime) is raw's tail
        n = len(vin[0].script_sig)
        start = 42 + n if n < 0xFD else 41 + len(ser_compact_size(n)) + n
        return sha256d(raw[:41] + code + raw[start:] + pack(hash_type & 0xFFFFFFFF))
    tail = 4 + len(ser_compact_size(len(tx.vout)))
    for o in tx.vout:
        n = len(o.script_pubkey)
        tail += 8 + (1 if n < 0xFD else len(ser_compact_size(n))) + n
    parts = [raw[:4], ser_compact_size(len(vin))]
    append = parts.append
    for i, txin in enumerate(vin):
        prevout = txin.prevout
        append(prevout.txid)
        append(pack(prevout.n))
        if i == input_index:
            append(code)
        else:
            append(b"\x00")
        append(pack(txin.sequence))
    append(raw[-tail:])
    append(pack(hash_type & 0xFFFFFFFF))
    return sha256d(b"".join(parts))


def p2pkh_sighash(tx: Tx, input_index: int, script_pubkey: bytes, hash_type: int) -> bytes:
    """`legacy_sighash` for a 25-byte P2PKH scriptCode (no OP_CODESEPARATOR instruction can
    occur in it, so its serialization is its length byte and itself); same digest."""
    if hash_type & 0x9F == SIGHASH_ALL:
        vin = tx.vin
        if len(vin) == 1 and input_index == 0 and tx.base_size == len(tx.raw):
            # `_sighash_all`'s one-input case inlined (the usual spend): version, count and
            # outpoint, the scriptCode instead of the scriptSig, then the tx's own tail
            raw = tx.raw
            n = len(vin[0].script_sig)
            start = 42 + n if n < 0xFD else 41 + len(ser_compact_size(n)) + n
            return _sha256(_sha256(raw[:41] + b"\x19" + script_pubkey + raw[start:]
                                   + _PACK_U32(hash_type & 0xFFFFFFFF)).digest()).digest()
        if input_index < len(vin):
            return _sighash_all(tx, input_index, b"\x19" + script_pubkey, hash_type)
    return legacy_sighash(tx, input_index, script_pubkey, hash_type)


def _sections(tx: Tx) -> tuple[bytes, bytes, bytes]:
    """The serialized prevouts, sequences and outputs of `tx`, sliced from its raw bytes (the
    parser checked them; no re-serialization): what BIP143/BIP341 hash."""
    raw = tx.raw
    end = len(raw)
    witness = tx.base_size != end
    pos = 6 if witness else 4
    if raw[pos] == 1 and raw[pos + 37] < 0xFD:
        # one input with a scriptSig shorter than 253 bytes (the usual spend): no loop
        q = pos + 38 + raw[pos + 37]
        prevouts, sequences = raw[pos + 1:pos + 37], raw[q:q + 4]
        pos = q + 4
    else:
        n_in, pos = read_compact_size_at(raw, pos, end)
        prevs, seqs = [], []
        for _ in range(n_in):
            prevs.append(raw[pos:pos + 36])
            pos += 36
            n = raw[pos]
            if n < 0xFD:
                pos += 1 + n
            else:
                n, pos = read_compact_size_at(raw, pos, end)
                pos += n
            seqs.append(raw[pos:pos + 4])
            pos += 4
        prevouts, sequences = b"".join(prevs), b"".join(seqs)
    if raw[pos] < 0xFD:  # the output count
        pos += 1
    else:
        _n_out, pos = read_compact_size_at(raw, pos, end)
    outputs_end = tx.base_size - 4 + (2 if witness else 0)
    return prevouts, sequences, raw[pos:outputs_end]


def _uses_bip143_bip341(vin: tuple, spent: tuple) -> tuple[bool, bool]:
    """Core's `uses_bip143_segwit` and `uses_bip341_taproot` (PrecomputedTransactionData::Init):
    some input with a witness spends anything but a 34-byte OP_1 output / spends one."""
    v0 = taproot = False
    for txin, o in zip(vin, spent):
        if txin.witness:
            spk = o.script_pubkey
            if len(spk) == 34 and spk[0] == 0x51:
                taproot = True
            else:
                v0 = True
            if v0 and taproot:
                break
    return v0, taproot


class PrecomputedTxData(NamedTuple):
    """Core `PrecomputedTransactionData`: the per-transaction hashes every signature of `tx`
    shares, computed once per transaction (an immutable value: a NamedTuple, built in one
    call, as it is made once per tx in block connect and mempool accept).

    BIP143 (witness v0): `hash_prevouts`, `hash_sequence`, `hash_outputs` (sha256d), and the
    parts of a SIGHASH_ALL preimage that do not depend on the input: `bip143_head` (version,
    hashPrevouts, hashSequence), `bip143_tail` (hashOutputs, locktime), `prevouts` (the 36-byte
    outpoints) and `sequences` (the 4-byte nSequences) in input order. They are None when not
    computed (Core's `m_bip143_segwit_ready` false): `witness_v0_sighash` then computes them.
    BIP341 (taproot), only when `spent_outputs` (the TxOuts the inputs spend, in input order,
    Core's `m_spent_outputs`) are given: the single-SHA256 `sha_prevouts`, `sha_amounts`,
    `sha_scriptpubkeys`, `sha_sequences`, `sha_outputs`. Without spent outputs a taproot
    signature cannot be checked (Core `HandleMissingData`, MissingDataBehavior::FAIL)."""

    hash_prevouts: bytes | None
    hash_sequence: bytes | None
    hash_outputs: bytes | None
    spent_outputs: tuple | None = None
    sha_prevouts: bytes | None = None
    sha_amounts: bytes | None = None
    sha_scriptpubkeys: bytes | None = None
    sha_sequences: bytes | None = None
    sha_outputs: bytes | None = None
    bip143_head: bytes | None = None
    bip143_tail: bytes | None = None
    prevouts: bytes | None = None
    sequences: bytes | None = None

    @property
    def taproot_ready(self) -> bool:
        """Core `m_bip341_taproot_ready && m_spent_outputs_ready`."""
        return self.sha_prevouts is not None

    @classmethod
    def for_tx(cls, tx: Tx, spent_outputs=None, force: bool = True) -> "PrecomputedTxData":
        """Core `PrecomputedTransactionData::Init`; `spent_outputs` must have one TxOut per
        input (ValueError otherwise). With `force` False (validation) only what the inputs can
        use is made, as Core: the BIP341 hashes when some input with a witness spends a 34-byte
        OP_1 output (`uses_bip341_taproot`; needs the spent outputs), the BIP143 ones when
        some other input has a witness (`uses_bip143_segwit`). Signers keep the default,
        Core's `force = true`: the BIP143 hashes always, the BIP341 ones with spent outputs.
        (Hot in block connect: plain hashlib calls and one tuple build.)"""
        vin = tx.vin
        raw = tx.raw
        witness = tx.base_size != len(raw)
        if spent_outputs is None:
            spent = None
            v0, taproot = force or witness, False  # without spent outputs no taproot check works
        else:
            spent = spent_outputs if type(spent_outputs) is tuple else tuple(spent_outputs)
            if len(spent) != len(vin):
                raise ValueError("spent_outputs needs one output per input")
            if force:
                v0 = taproot = True
            elif not witness:
                v0 = taproot = False
            else:
                for o in spent:
                    spk = o.script_pubkey
                    if len(spk) == 34 and spk[0] == 0x51:
                        break
                else:  # no input can be a taproot spend, and some input has a witness
                    o = None
                v0, taproot = (True, False) if o is None else _uses_bip143_bip341(vin, spent)
        if not (v0 or taproot):
            return _tuple_new(cls, (None, None, None, spent, None, None, None, None, None,
                                    None, None, None, None))
        pos = 6 if witness else 4
        if raw[pos] == 1 and raw[pos + 37] < 0xFD:
            # one input with a scriptSig shorter than 253 bytes and (the count byte after its
            # sequence) fewer than 253 outputs: `_sections` without its loop
            q = pos + 38 + raw[pos + 37]
            prevouts, sequences = raw[pos + 1:pos + 37], raw[q:q + 4]
            outputs = raw[q + 5:tx.base_size - (2 if witness else 4)] if raw[q + 4] < 0xFD else None
        else:
            outputs = None
        if outputs is None:
            prevouts, sequences, outputs = _sections(tx)
        sha_prevouts = _sha256(prevouts).digest()
        seq_hashes = _ONE_SEQUENCE_HASHES.get(sequences)
        sha_sequences = _sha256(sequences).digest() if seq_hashes is None else seq_hashes[0]
        sha_outputs = _sha256(outputs).digest()
        if v0:
            hash_prevouts = _sha256(sha_prevouts).digest()
            hash_sequence = _sha256(sha_sequences).digest() if seq_hashes is None else seq_hashes[1]
            hash_outputs = _sha256(sha_outputs).digest()
            head = raw[:4] + hash_prevouts + hash_sequence
            tail = hash_outputs + raw[-4:]
            if not taproot:
                return _tuple_new(cls, (hash_prevouts, hash_sequence, hash_outputs, spent, None,
                                        None, None, None, None, head, tail, prevouts, sequences))
        else:
            hash_prevouts = hash_sequence = hash_outputs = head = tail = prevouts = sequences = None
        return _tuple_new(cls, (
            hash_prevouts, hash_sequence, hash_outputs, spent, sha_prevouts,
            _sha256(b"".join([_Q.pack(o.value) for o in spent])).digest(),
            _sha256(b"".join([ser_compact_size(len(o.script_pubkey)) + o.script_pubkey
                              for o in spent])).digest(),
            sha_sequences, sha_outputs, head, tail, prevouts, sequences))


def witness_v0_sighash(tx: Tx, input_index: int, script_code: bytes, amount: int, hash_type: int,
                       txdata: PrecomputedTxData | None = None) -> bytes:
    """Core `SignatureHash(scriptCode, tx, nIn, nHashType, amount, SigVersion::WITNESS_V0)`
    (BIP143).

    The preimage is version | hashPrevouts | hashSequence | outpoint | scriptCode (length-
    prefixed, OP_CODESEPARATORs kept) | amount | nSequence | hashOutputs | locktime | hashtype.
    ANYONECANPAY zeroes hashPrevouts; ANYONECANPAY, NONE or SINGLE zero hashSequence; NONE zeroes
    hashOutputs, SINGLE hashes only the output at `input_index` (zero when there is none: no
    SIGHASH_SINGLE bug here). `txdata` supplies the shared hashes (computed here if None or
    without them, as Core when its cache is not ready).
    """
    if not 0 <= input_index < len(tx.vin):
        raise IndexError("input index out of range")
    if txdata is None or txdata.bip143_head is None:
        txdata = PrecomputedTxData.for_tx(tx)
    base = hash_type & 0x1F
    if not hash_type & SIGHASH_ANYONECANPAY and base != SIGHASH_SINGLE and base != SIGHASH_NONE:
        # SIGHASH_ALL behaviour: the tx's shared head and tail around this input's part
        return bip143_all_sighash(txdata, input_index,
                                  ser_compact_size(len(script_code)) + script_code, amount,
                                  _PACK_U32(hash_type & 0xFFFFFFFF))
    anyone = hash_type & SIGHASH_ANYONECANPAY
    hash_prevouts = _ZERO32 if anyone else txdata.hash_prevouts
    if base != SIGHASH_SINGLE and base != SIGHASH_NONE:
        hash_outputs = txdata.hash_outputs
    elif base == SIGHASH_SINGLE and input_index < len(tx.vout):
        hash_outputs = sha256d(tx.vout[input_index].serialize())
    else:
        hash_outputs = _ZERO32
    txin = tx.vin[input_index]
    pack = _U32.pack
    return sha256d(b"".join((   # hashSequence is zero for these types
        pack(tx.version & 0xFFFFFFFF), hash_prevouts, _ZERO32,
        txin.prevout.txid, pack(txin.prevout.n),
        ser_compact_size(len(script_code)), script_code,
        _Q.pack(amount), pack(txin.sequence), hash_outputs,
        pack(tx.locktime), pack(hash_type & 0xFFFFFFFF),
    )))


def bip143_all_sighash(txdata: PrecomputedTxData, input_index: int, code: bytes, amount: int,
                       hash_type_bytes: bytes = b"\x01\x00\x00\x00") -> bytes:
    """The BIP143 digest of a hash type that signs all inputs and outputs (SIGHASH_ALL, or any
    type without ANYONECANPAY, NONE or SINGLE: `hash_type_bytes` is its 4-byte little-endian
    form): the tx's `bip143_head`, the input's outpoint, `code` (the scriptCode already
    serialized with its length), `amount`, the input's nSequence, the tx's `bip143_tail`,
    the hash type. `txdata` must carry the BIP143 parts and `input_index` be in range (the
    callers check both)."""
    o = 36 * input_index
    q = 4 * input_index
    return _sha256(_sha256(b"".join((
        txdata.bip143_head, txdata.prevouts[o:o + 36], code, _Q.pack(amount),
        txdata.sequences[q:q + 4], txdata.bip143_tail, hash_type_bytes,
    ))).digest()).digest()


def p2wpkh_sighash_all(txdata: PrecomputedTxData, input_index: int, program: bytes,
                       amount: int) -> bytes:
    """`bip143_all_sighash` with SIGHASH_ALL for a P2WPKH input: the scriptCode is the P2PKH
    script of the 20-byte `program` (BIP143), written in place; same digest."""
    o = 36 * input_index
    q = 4 * input_index
    return _sha256(_sha256(b"".join((
        txdata.bip143_head, txdata.prevouts[o:o + 36], b"\x19\x76\xa9\x14", program,
        b"\x88\xac", _Q.pack(amount), txdata.sequences[q:q + 4], txdata.bip143_tail,
        b"\x01\x00\x00\x00",
    ))).digest()).digest()


def _valid_taproot_hashtype(hash_type: int) -> bool:
    return hash_type <= 0x03 or 0x81 <= hash_type <= 0x83


def taproot_sighash_preimage(tx: Tx, input_index: int, hash_type: int, txdata: PrecomputedTxData,
                             annex: bytes | None = None, tapleaf_hash: bytes | None = None,
                             codesep_pos: int = 0xFFFFFFFF, key_version: int = 0) -> bytes | None:
    """The message BIP341 `SigMsg` (with BIP342's extension when `tapleaf_hash` is given:
    ext_flag 1, tapleaf hash, key_version, codeseparator position), preceded by the epoch byte 0.

    None where Core's `SignatureHashSchnorr` returns false: an undefined hash type (not 0x00-0x03
    or 0x81-0x83), or SIGHASH_SINGLE without an output at `input_index`. `annex` is the whole
    annex (starting 0x50), signed as sha256(compact size || annex). `txdata` must be
    `taproot_ready` (built with every spent output)."""
    if not _valid_taproot_hashtype(hash_type):
        return None
    if not txdata.taproot_ready:
        raise ValueError("taproot signature hashes need every spent output (PrecomputedTxData)")
    output_type = SIGHASH_ALL if hash_type == SIGHASH_DEFAULT else hash_type & 0x03
    anyone = hash_type & SIGHASH_ANYONECANPAY
    pack = _U32.pack
    ext_flag = 0 if tapleaf_hash is None else 1
    parts = [b"\x00", bytes((hash_type,)), pack(tx.version & 0xFFFFFFFF), pack(tx.locktime)]
    if not anyone:
        parts += [txdata.sha_prevouts, txdata.sha_amounts, txdata.sha_scriptpubkeys,
                  txdata.sha_sequences]
    if output_type == SIGHASH_ALL:
        parts.append(txdata.sha_outputs)
    parts.append(bytes(((ext_flag << 1) | (annex is not None),)))
    txin = tx.vin[input_index]
    if anyone:
        parts += [txin.prevout.txid, pack(txin.prevout.n),
                  txdata.spent_outputs[input_index].serialize(), pack(txin.sequence)]
    else:
        parts.append(pack(input_index))
    if annex is not None:
        parts.append(sha256(ser_compact_size(len(annex)) + annex))
    if output_type == SIGHASH_SINGLE:
        if input_index >= len(tx.vout):
            return None
        parts.append(sha256(tx.vout[input_index].serialize()))
    if ext_flag:
        parts += [tapleaf_hash, bytes((key_version,)), pack(codesep_pos & 0xFFFFFFFF)]
    return b"".join(parts)


def taproot_sighash(tx: Tx, input_index: int, hash_type: int, txdata: PrecomputedTxData,
                    annex: bytes | None = None, tapleaf_hash: bytes | None = None,
                    codesep_pos: int = 0xFFFFFFFF) -> bytes | None:
    """Core `SignatureHashSchnorr`: hash_TapSighash(0x00 || SigMsg(...)) for a key path spend
    (`tapleaf_hash` None, SigVersion::TAPROOT) or a tapscript signature (SigVersion::TAPSCRIPT);
    None for an undefined hash type or SIGHASH_SINGLE without a matching output (Core then
    reports SCHNORR_SIG_HASHTYPE)."""
    pre = taproot_sighash_preimage(tx, input_index, hash_type, txdata, annex, tapleaf_hash,
                                   codesep_pos)
    if pre is None:
        return None
    h = tagged_hasher("TapSighash")
    h.update(pre)
    return h.digest()
