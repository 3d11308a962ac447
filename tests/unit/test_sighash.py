"""Legacy sighash against Bitcoin Core's sighash.json (all 500 rows) and the SINGLE bug; BIP143
sighash against the BIP's own examples."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tinynode.primitives.tx import OutPoint, Tx, TxIn, TxOut
from tinynode.script.sighash import (
    SIGHASH_ALL, SIGHASH_ANYONECANPAY, SIGHASH_ONE, SIGHASH_SINGLE, legacy_sighash,
    PrecomputedTxData, serialize_script_code, witness_v0_sighash,
)

DATA = Path(__file__).resolve().parents[1] / "data"
ROWS = [r for r in json.loads((DATA / "sighash.json").read_text()) if len(r) == 5]


def test_row_count():
    assert len(ROWS) == 500


@pytest.mark.parametrize("row", ROWS, ids=[f"row{i}" for i in range(len(ROWS))])
def test_sighash_json(row):
    raw_tx, script_hex, input_index, hash_type, expected = row
    tx = Tx.from_hex(raw_tx)
    digest = legacy_sighash(tx, input_index, bytes.fromhex(script_hex), hash_type)
    # sighash.json prints uint256::GetHex(), the reversed digest
    assert digest[::-1].hex() == expected


def _tx(n_in: int, n_out: int) -> Tx:
    vin = tuple(TxIn(OutPoint(bytes([i + 1]) * 32, i), b"\x51", 0xFFFFFFFE) for i in range(n_in))
    vout = tuple(TxOut(1000 + i, b"\x51") for i in range(n_out))
    return Tx(1, vin, vout, 0)


def test_single_bug_returns_one():
    tx = _tx(2, 1)
    assert legacy_sighash(tx, 1, b"\xac", SIGHASH_SINGLE) == SIGHASH_ONE
    assert legacy_sighash(tx, 1, b"\xac", SIGHASH_SINGLE | SIGHASH_ANYONECANPAY) == SIGHASH_ONE
    assert legacy_sighash(tx, 0, b"\xac", SIGHASH_SINGLE) != SIGHASH_ONE
    assert SIGHASH_ONE == b"\x01" + bytes(31)


def test_input_index_out_of_range_returns_one():
    assert legacy_sighash(_tx(1, 1), 5, b"", SIGHASH_ALL) == SIGHASH_ONE


def test_codeseparator_removed_on_opcode_boundaries_only():
    # OP_CODESEPARATOR, a push of one 0xab byte, OP_CODESEPARATOR, OP_CHECKSIG
    code = bytes.fromhex("ab01abab" "ac")
    assert serialize_script_code(code) == bytes.fromhex("03" "01ab" "ac")


def test_codeseparator_with_truncated_push_matches_core_serializer():
    # OP_CODESEPARATOR then PUSHDATA1 with a length byte but no data: Core writes what its
    # iterator consumed (the opcode and length byte) and declares len - separators.
    code = bytes.fromhex("ab4c05")
    assert serialize_script_code(code) == bytes.fromhex("02" "4c05")


@pytest.mark.parametrize("row", ROWS[::5], ids=[f"row{i}" for i in range(0, len(ROWS), 5)])
def test_p2pkh_sighash_matches_legacy(row):
    """The P2PKH shortcut (scriptCode = length byte + script) gives legacy_sighash's digest for
    every hash type and input count; the scriptCode here holds 0xab bytes inside its push."""
    from tinynode.script.sighash import p2pkh_sighash

    tx = Tx.from_hex(row[0])
    spk = b"\x76\xa9\x14" + bytes([0xAB]) * 20 + b"\x88\xac"
    for ht in (row[3], 1, 0x41, 0x81, 2, 3, 0):
        for i in range(len(tx.vin) + 1):
            assert p2pkh_sighash(tx, i, spk, ht) == legacy_sighash(tx, i, spk, ht)


@pytest.mark.parametrize("ss_len", [0, 107, 252, 253, 300, 70_000])
def test_one_input_sighash_all_against_independent_serializer(ss_len):
    """One-input SIGHASH_ALL slices tx.raw around the scriptSig: check every compact-size width
    against the framework's independent sighash."""
    from tests.framework.miniwallet import legacy_sighash_local

    spk = b"\x76\xa9\x14" + bytes(range(20)) + b"\x88\xac"
    tx = Tx(2, (TxIn(OutPoint(b"\x07" * 32, 3), b"\x01" * ss_len, 0xFFFFFFFD),),
            (TxOut(5000, spk), TxOut(7, b"\x6a")), 99)
    assert legacy_sighash(tx, 0, spk, SIGHASH_ALL) == legacy_sighash_local(tx, 0, spk, SIGHASH_ALL)


# --- BIP143 (witness v0) -------------------------------------------------------------------------
# The examples of bitcoin/bips bip-0143.mediawiki: unsigned tx, input, scriptCode (without its
# length byte), amount in satoshis, hashtype, and the sigHash the BIP prints.

_P2WPKH_TX = ("0100000002fff7f7881a8099afa6940d42d1e7f6362bec38171ea3edf433541db4e4ad969f0000000000eeffffff"
              "ef51e1b804cc89d182d279655c3aa89e815b1b309fe287d9b2b55d57b90ec68a0100000000ffffffff02202cb2"
              "06000000001976a9148280b37df378db99f66f85c95a783a76ac7a6d5988ac9093510d000000001976a9143bde"
              "42dbee7e4dbe6a21b2d50ce2f0167faa815988ac11000000")
_P2SH_P2WPKH_TX = ("0100000001db6b1b20aa0fd7b23880be2ecbd4a98130974cf4748fb66092ac4d3ceb1a54770100000000fe"
                   "ffffff02b8b4eb0b000000001976a914a457b684d7f0d539a46a45bbc043f35b59d0d96388ac0008af2f00"
                   "0000001976a914fd270b1ee6abcaea97fea7ad0402e8bd8ad6d77c88ac92040000")
_P2WSH_TX = ("0100000002fe3dc9208094f3ffd12645477b3dc56f60ec4fa8e6f5d67c565d1c6b9216b36e0000000000ffffff"
             "ff0815cf020f013ed6cf91d29f4202e8a58726b1ac6c79da47c23d1bee0a6925f80000000000ffffffff0100f2"
             "052a010000001976a914a30741f8145e5acadf23f751864167f32e0963f788ac00000000")
_P2WSH_ACP_TX = ("0100000002e9b542c5176808107ff1df906f46bb1f2583b16112b95ee5380665ba7fcfc00100000000"
                 "00ffffffff80e68831516392fcd100d186b3c2c7b95c80b53c77e77c35ba03a66b429a2a1b000000000"
                 "0ffffffff0280969800000000001976a914de4b231626ef508c9a74a8517e6783c0546d6b2888ac8096"
                 "9800000000001976a9146648a8cd4531e1ec47f35916de8e259237294d1e88ac00000000")
_P2WSH_SCRIPT = ("21026dccc749adc2a9d0d89497ac511f760f45c47dc5ed9cf352a58ac706453880aeadab210255a9626aeb"
                 "f5e29c0e6538428ba0d1dcf6ca98ffdf086aa8ced5e0d0215ea465ac")
_P2SH_P2WSH_TX = ("010000000136641869ca081e70f394c6948e8af409e18b619df2ed74aa106c1ca29787b96e0100000000ff"
                  "ffffff0200e9a435000000001976a914389ffce9cd9ae88dcc0631e88a821ffdbe9bfe2688acc0832f0500"
                  "0000001976a9147480a33f950689af511e6e84c138dbbd3c3ee41588ac00000000")
_SIX_OF_SIX = ("56210307b8ae49ac90a048e9b53357a2354b3334e9c8bee813ecb98e99a7e07e8c3ba32103b28f0c28bfab5455"
               "4ae8c658ac5c3e0ce6e79ad336331f78c428dd43eea8449b21034b8113d703413d57761b8b9781957b8c0ac1"
               "dfe69f492580ca4195f50376ba4a21033400f6afecb833092a9a21cfdf1ed1376e58c5d1f47de74683123987"
               "e967a8f42103a6d48b1131e94ba04d9737d61acdaa1322008af9602b3b14862c07a1789aac162102d8b661b0"
               "b3302ee2f162b09e07a55ad5dfbe673a9f01d9f0c19617681024306b56ae")

BIP143_CASES = [
    # native P2WPKH, second input (the scriptCode is the implied P2PKH script)
    (_P2WPKH_TX, 1, "76a9141d0f172a0ecb48aee1be1f2687d2963ae33f71a188ac", 600_000_000, 1,
     "c37af31116d1b27caf68aae9e3ac82f1477929014d5b917657d0eb49478cb670"),
    # P2SH-P2WPKH
    (_P2SH_P2WPKH_TX, 0, "76a91479091972186c449eb1ded22b78e40d009bdf008988ac", 1_000_000_000, 1,
     "64f3b0f4dd2bb3aa1ce8566d220cc74dda9df97d8490cc81d89d735c92e59fb6"),
    # native P2WSH with OP_CODESEPARATOR and SIGHASH_SINGLE out of range: whole script, then
    # the part after the executed OP_CODESEPARATOR
    (_P2WSH_TX, 1, _P2WSH_SCRIPT, 4_900_000_000, 3,
     "82dde6e4f1e94d02c2b7ad03d2115d691f48d064e9d52f58194a6637e4194391"),
    (_P2WSH_TX, 1, _P2WSH_SCRIPT[-70:], 4_900_000_000, 3,
     "fef7bd749cce710c5c052bd796df1af0d935e59cea63736268bcbe2d2134fc47"),
    # native P2WSH, SINGLE|ANYONECANPAY, unexecuted and executed OP_CODESEPARATOR
    (_P2WSH_ACP_TX, 0, "0063ab68210392972e2eb617b2388771abe27235fd5ac44af8e61693261550447a4c3e39da98ac",
     16_777_215, 0x83, "e9071e75e25b8a1e298a72f0d2e9f4f95a0f5cdf86a533cda597eb402ed13b3a"),
    (_P2WSH_ACP_TX, 1, "68210392972e2eb617b2388771abe27235fd5ac44af8e61693261550447a4c3e39da98ac",
     16_777_215, 0x83, "cd72f1f1a433ee9df816857fad88d8ebd97e09a75cd481583eb841c330275e54"),
    # P2SH-P2WSH 6-of-6: ALL and NONE
    (_P2SH_P2WSH_TX, 0, _SIX_OF_SIX, 987_654_321, 1,
     "185c0be5263dce5b4bb50a047973c1b6272bfbd0103a89444597dc40b248ee7c"),
    (_P2SH_P2WSH_TX, 0, _SIX_OF_SIX, 987_654_321, 2,
     "e9733bc60ea13c95c6527066bb975a2ff29a925e80aa14c213f686cbae5d2f36"),
]


@pytest.mark.parametrize("tx_hex,index,script_code,amount,hash_type,expected", BIP143_CASES)
def test_bip143_examples(tx_hex, index, script_code, amount, hash_type, expected):
    tx = Tx.from_hex(tx_hex)
    code = bytes.fromhex(script_code)
    assert witness_v0_sighash(tx, index, code, amount, hash_type).hex() == expected
    txdata = PrecomputedTxData.for_tx(tx)       # the shared per-tx hashes give the same digest
    assert witness_v0_sighash(tx, index, code, amount, hash_type, txdata).hex() == expected


def test_bip143_precomputed_hashes():
    tx = Tx.from_hex(_P2WPKH_TX)
    d = PrecomputedTxData.for_tx(tx)
    assert d.hash_prevouts.hex() == "96b827c8483d4e9b96712b6713a7b68d6e8003a781feba36c31143470b4efd37"
    assert d.hash_sequence.hex() == "52b0a642eea2fb7ae638c36f6252b6750293dbe574a806984b8e4d8548339a3b"
    assert d.hash_outputs.hex() == "863ef3e1a92afbfdb97f31ad0fc7683ee943e9abcf2501590ff8f6551f47e5e5"


def test_bip143_sections_are_sliced_from_the_raw_bytes_exactly():
    """PrecomputedTxData hashes prevouts, sequences and outputs sliced from the tx's raw bytes
    (witness form or not); for every tx of Core's tx_valid/tx_invalid they equal the fields
    serialized one by one."""
    import json
    import struct
    from pathlib import Path

    from tinynode.primitives.serialize import DecodeError
    from tinynode.primitives.tx import Tx
    from tinynode.script.sighash import _sections

    data = Path(__file__).resolve().parents[1] / "data"
    rows = json.loads((data / "tx_valid.json").read_text()) + json.loads((data / "tx_invalid.json").read_text())
    u32 = struct.Struct("<I").pack
    checked = 0
    for row in rows:
        if len(row) < 3 or not isinstance(row[1], str):
            continue
        try:
            tx = Tx.from_hex(row[1])
        except (DecodeError, ValueError):
            continue
        expected = (b"".join(i.prevout.txid + u32(i.prevout.n) for i in tx.vin),
                    b"".join(u32(i.sequence) for i in tx.vin),
                    b"".join(o.serialize() for o in tx.vout))
        assert _sections(tx) == expected, row
        checked += 1
    assert checked > 200


def _reference_bip143(tx: Tx, index: int, code: bytes, amount: int, hash_type: int) -> bytes:
    """BIP143's preimage written out field by field from the tx (no PrecomputedTxData)."""
    import hashlib
    import struct

    def d(b: bytes) -> bytes:
        return hashlib.sha256(hashlib.sha256(b).digest()).digest()

    u32 = struct.Struct("<I").pack
    base, anyone = hash_type & 0x1F, hash_type & 0x80
    prevouts = b"".join(i.prevout.txid + u32(i.prevout.n) for i in tx.vin)
    sequences = b"".join(u32(i.sequence) for i in tx.vin)
    hp = bytes(32) if anyone else d(prevouts)
    hs = d(sequences) if not anyone and base not in (2, 3) else bytes(32)
    if base not in (2, 3):
        ho = d(b"".join(o.serialize() for o in tx.vout))
    elif base == 3 and index < len(tx.vout):
        ho = d(tx.vout[index].serialize())
    else:
        ho = bytes(32)
    txin = tx.vin[index]
    assert len(code) < 0xFD
    return d(u32(tx.version & 0xFFFFFFFF) + hp + hs + txin.prevout.txid + u32(txin.prevout.n)
             + bytes((len(code),)) + code + struct.pack("<q", amount) + u32(txin.sequence) + ho
             + u32(tx.locktime) + u32(hash_type & 0xFFFFFFFF))


def _segwit_tx(n_in: int, n_out: int, witness: bool = True) -> Tx:
    vin = tuple(TxIn(OutPoint(bytes([i + 7]) * 32, i * 3), b"", 0xFFFFFFF0 - i,
                     (b"\x30" * 71, b"\x02" * 33) if witness else ()) for i in range(n_in))
    vout = tuple(TxOut(5000 + i, b"\x00\x14" + bytes([i % 256]) * 20) for i in range(n_out))
    return Tx(2, vin, vout, 600_000)


@pytest.mark.parametrize("n_in,n_out", [(1, 1), (1, 3), (3, 1), (3, 3), (2, 0)])
def test_witness_v0_sighash_matches_the_preimage_written_out(n_in, n_out):
    """Every hash type (defined or not: the ALL-like ones use the tx's precomputed head and
    tail), every input, with the tx's PrecomputedTxData, without one, and with one made for
    validation that holds no BIP143 parts (computed on the fly, as Core when its cache is not
    ready): the digest of the BIP143 preimage written out field by field."""
    from tinynode.script.sighash import p2wpkh_sighash_all

    tx = _segwit_tx(n_in, n_out)
    code = b"\x76\xa9\x14" + bytes(range(20)) + b"\x88\xac"
    full = PrecomputedTxData.for_tx(tx)
    bare = PrecomputedTxData.for_tx(_segwit_tx(n_in, n_out, witness=False), force=False)
    assert bare.bip143_head is None and bare.hash_prevouts is None
    for index in range(n_in):
        for hash_type in (0, 1, 2, 3, 4, 0x21, 0x41, 0x81, 0x82, 0x83, 0xFF):
            expected = _reference_bip143(tx, index, code, 70_000 + index, hash_type)
            for txdata in (full, None, bare):
                assert witness_v0_sighash(tx, index, code, 70_000 + index, hash_type, txdata) == expected
        assert p2wpkh_sighash_all(full, index, bytes(range(20)), 70_000 + index) == \
            _reference_bip143(tx, index, code, 70_000 + index, SIGHASH_ALL)
    with pytest.raises(IndexError):
        witness_v0_sighash(tx, n_in, code, 1, SIGHASH_ALL, full)


def test_precomputed_parts_are_the_fields_of_core_txs():
    """For every tx of Core's tx_valid/tx_invalid (and long scriptSigs, many outputs, witness
    or not): the outpoints, sequences, hashes, head and tail of PrecomputedTxData (its own
    one-input fast path included) equal the fields serialized one by one."""
    import hashlib
    import struct

    from tinynode.primitives.serialize import DecodeError

    def d(b: bytes) -> bytes:
        return hashlib.sha256(hashlib.sha256(b).digest()).digest()

    u32 = struct.Struct("<I").pack
    txs = [_segwit_tx(1, 1), _segwit_tx(1, 300), _segwit_tx(2, 253, witness=False),
           Tx(1, (TxIn(OutPoint(bytes(32), 1), b"\x51" * 300, 5),), (TxOut(1, b""),), 9),
           Tx(1, (TxIn(OutPoint(bytes(32), 1), b"\x51" * 252, 5, (b"\x01",)),),
              tuple(TxOut(i, b"\x51") for i in range(253)), 9)]
    for row in json.loads((DATA / "tx_valid.json").read_text()) + json.loads((DATA / "tx_invalid.json").read_text()):
        if len(row) >= 3 and isinstance(row[1], str):
            try:
                txs.append(Tx.from_hex(row[1]))
            except (DecodeError, ValueError):
                pass
    assert len(txs) > 200
    for tx in txs:
        t = PrecomputedTxData.for_tx(tx)
        prevouts = b"".join(i.prevout.txid + u32(i.prevout.n) for i in tx.vin)
        sequences = b"".join(u32(i.sequence) for i in tx.vin)
        outputs = b"".join(o.serialize() for o in tx.vout)
        assert (t.prevouts, t.sequences) == (prevouts, sequences)
        assert (t.hash_prevouts, t.hash_sequence, t.hash_outputs) == (d(prevouts), d(sequences), d(outputs))
        assert t.bip143_head == u32(tx.version & 0xFFFFFFFF) + d(prevouts) + d(sequences)
        assert t.bip143_tail == d(outputs) + u32(tx.locktime)
    # one input: the looked-up hashes of the common nSequences and hashed ones of the others
    # (BIP341's single sha256 too, with the spent output known)
    for seq in (0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD, 0xFFFFFFFC, 0, 1, 0x7FFFFFFF, 0xFEFFFFFF):
        tx = Tx(2, (TxIn(OutPoint(bytes(range(32)), 3), b"", seq, (b"\x01",)),), (TxOut(5, b"\x51"),), 0)
        for spent in (None, [TxOut(7, b"\x51\x20" + bytes(32))], [TxOut(7, b"\x00\x14" + bytes(20))]):
            for force in (True, False):
                t = PrecomputedTxData.for_tx(tx, spent, force=force)
                assert t.sequences in (None, u32(seq)) and t.hash_sequence in (None, d(u32(seq)))
                assert t.sha_sequences in (None, hashlib.sha256(u32(seq)).digest())
                assert (t.bip143_head is None) or t.bip143_head == u32(2) + d(t.prevouts) + d(u32(seq))
                if force or spent is None or spent[0].script_pubkey[0] == 0:
                    assert t.hash_sequence == d(u32(seq))
                if spent is not None and (force or spent[0].script_pubkey[0] == 0x51):
                    assert t.sha_sequences == hashlib.sha256(u32(seq)).digest()


def test_for_tx_makes_only_what_the_inputs_use():
    """Core `PrecomputedTransactionData::Init` with force = false: BIP143 parts only when some
    input with a witness does not spend a 34-byte OP_1 output, BIP341 ones only when one does
    (and the spent outputs are known); force = true (signers) makes the BIP143 parts always."""
    v0_spk, tr_spk = b"\x00\x14" + bytes(20), b"\x51\x20" + bytes(32)
    legacy = _segwit_tx(2, 1, witness=False)
    spent_v0 = [TxOut(1, v0_spk), TxOut(2, v0_spk)]
    spent_tr = [TxOut(1, tr_spk), TxOut(2, tr_spk)]
    t = PrecomputedTxData.for_tx(legacy, spent_v0, force=False)
    assert t.hash_prevouts is None and t.bip143_head is None and not t.taproot_ready
    assert t.spent_outputs == tuple(spent_v0)
    assert PrecomputedTxData.for_tx(legacy, force=False).hash_outputs is None
    assert PrecomputedTxData.for_tx(legacy).bip143_head is not None
    segwit = _segwit_tx(2, 1)
    t = PrecomputedTxData.for_tx(segwit, spent_v0, force=False)
    assert t.bip143_head is not None and not t.taproot_ready
    t = PrecomputedTxData.for_tx(segwit, spent_tr, force=False)
    assert t.bip143_head is None and t.hash_outputs is None and t.taproot_ready
    t = PrecomputedTxData.for_tx(segwit, [TxOut(1, tr_spk), TxOut(2, v0_spk)], force=False)
    assert t.bip143_head is not None and t.taproot_ready
    t = PrecomputedTxData.for_tx(segwit, force=False)  # spent outputs unknown: no taproot
    assert t.bip143_head is not None and not t.taproot_ready
    t = PrecomputedTxData.for_tx(segwit, spent_tr)
    assert t.bip143_head is not None and t.taproot_ready
    with pytest.raises(ValueError):
        PrecomputedTxData.for_tx(segwit, spent_v0[:1])
