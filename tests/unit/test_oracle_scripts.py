"""tinynode's script interpreter against Bitcoin Core's own (libbitcoinkernel `VerifyScript`).

Every legacy row of Core's script_tests.json, every input of tx_valid.json / tx_invalid.json and
a few thousand seeded mutations of them (script bytes flipped, inserted or cut; random consensus
flag sets; tx version, sequence and locktime at their signed/unsigned edges) go through both
engines with the same flags: the verdicts must be equal. The kernel takes only consensus flags
(tests/framework/oracle.py), so each case is compared on the consensus part of its flags.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from tests.framework.oracle import KERNEL_FLAGS, require_kernel, same_verdict
from tinynode.primitives.hashes import ZERO_HASH, hex_to_hash
from tinynode.primitives.serialize import DecodeError
from tinynode.primitives.tx import OutPoint, Tx, TxIn, TxOut
from tinynode.script.flags import ALL_FLAGS, ScriptFlags, parse_flags
from tinynode.script.interpreter import verify_script
from tinynode.script.script import parse_core_script

pytestmark = pytest.mark.usefixtures("kernel")

DATA = Path(__file__).resolve().parents[1] / "data"
INDEX = json.loads((DATA / "legacy_subset_index.json").read_text())
KERNEL_BITS = [f for f in ScriptFlags if f.value and f & KERNEL_FLAGS]
EDGE_U32 = [0, 1, 2, 3, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF, 0x00400000, 0x00400001,
            0x0000FFFF, 0x80400000, 499_999_999, 500_000_000]


@pytest.fixture(scope="module")
def kernel():
    require_kernel()


def _compare(script_pubkey: bytes, tx: Tx, index: int, flags: int, amount: int = 0,
             what: str = "") -> bool:
    return same_verdict(verify_script, script_pubkey, tx, index, flags, amount, what)


def _spending(script_sig: bytes, script_pubkey: bytes, *, version: int = 1, sequence: int = 0xFFFFFFFF,
              locktime: int = 0) -> Tx:
    """Core's BuildCreditingTransaction / BuildSpendingTransaction (amount 0)."""
    credit = Tx(1, (TxIn(OutPoint(ZERO_HASH, 0xFFFFFFFF), b"\x00\x00", 0xFFFFFFFF),),
                (TxOut(0, script_pubkey),), 0)
    return Tx(version, (TxIn(OutPoint(credit.txid, 0), script_sig, sequence),), (TxOut(0, b""),), locktime)


def _script_rows() -> list[tuple[int, bytes, bytes, int]]:
    rows = json.loads((DATA / "script_tests.json").read_text())
    out = []
    for n in INDEX["script_tests.json"]["legacy"]:
        sig, spk, flags = rows[n][:3]
        out.append((n, parse_core_script(sig), parse_core_script(spk), parse_flags(flags)))
    return out


SCRIPT_ROWS = _script_rows()


def _tx_rows(name: str) -> list[tuple[int, dict, str, str]]:
    rows = json.loads((DATA / name).read_text())
    segwit = set(INDEX[name]["segwit_related"])
    return [(n, {OutPoint(hex_to_hash(p[0]), p[1] & 0xFFFFFFFF): parse_core_script(p[2]) for p in row[0]},
             row[1], row[2])
            for n, row in enumerate(rows)
            if len(row) >= 3 and not isinstance(row[0], str) and n not in segwit]


def test_every_legacy_script_row_agrees_with_core():
    valid = 0
    for n, sig, spk, flags in SCRIPT_ROWS:
        tx = _spending(sig, spk)
        valid += _compare(spk, tx, 0, flags, what=f"script_tests row {n}")
        _compare(spk, tx, 0, 0, what=f"script_tests row {n}, no flags")
        _compare(spk, tx, 0, KERNEL_FLAGS, what=f"script_tests row {n}, all consensus flags")
    assert len(SCRIPT_ROWS) == 1086 and valid > 500


@pytest.mark.parametrize("name", ["tx_valid.json", "tx_invalid.json"])
def test_every_tx_vector_input_agrees_with_core(name):
    compared = 0
    for n, prevs, raw, flags_text in _tx_rows(name):
        if flags_text == "BADTX":
            continue
        try:
            tx = Tx.from_hex(raw)
        except DecodeError:
            continue
        flags = parse_flags(flags_text)
        if name == "tx_valid.json":
            flags = ALL_FLAGS & ~flags
        for i, txin in enumerate(tx.vin):
            spk = prevs.get(txin.prevout)
            if spk is None:
                continue
            for f in (flags, KERNEL_FLAGS, 0):
                _compare(spk, tx, i, f, what=f"{name} row {n} input {i}")
                compared += 1
    assert compared > {"tx_valid.json": 300, "tx_invalid.json": 200}[name]


def _mutate(rng: random.Random, script: bytes) -> bytes:
    b = bytearray(script)
    for _ in range(rng.randint(1, 3)):
        op = rng.random()
        if b and op < 0.4:
            b[rng.randrange(len(b))] = rng.randrange(256)
        elif op < 0.7:
            b.insert(rng.randint(0, len(b)), rng.choice([0x00, 0x4c, 0x51, 0x63, 0x67, 0x68, 0x69, 0x75,
                                                         0x76, 0x87, 0xa9, 0xac, 0xae, 0xb1, 0xb2,
                                                         rng.randrange(256)]))
        elif b:
            del b[rng.randrange(len(b)):rng.randrange(len(b)) + 1]
    return bytes(b)


def test_seeded_mutations_agree_with_core():
    """5,000 seeded mutants of the script rows, with random consensus flags and edge tx fields."""
    rng = random.Random(20261206)
    valid = 0
    for case in range(5000):
        n, sig, spk, _flags = rng.choice(SCRIPT_ROWS)
        if rng.random() < 0.5:
            sig = _mutate(rng, sig)
        else:
            spk = _mutate(rng, spk)
        flags = 0
        for f in KERNEL_BITS:
            if rng.random() < 0.5:
                flags |= f
        version = rng.choice(EDGE_U32)
        tx = _spending(sig, spk, version=version - (1 << 32) if version >= 1 << 31 else version,
                       sequence=rng.choice(EDGE_U32), locktime=rng.choice(EDGE_U32))
        valid += _compare(spk, tx, 0, flags, what=f"mutant {case} of row {n}")
    assert valid > 200      # the mutants are not all trivially invalid


@pytest.mark.parametrize("version", [1, 2, 0x7FFFFFFF, -0x80000000, -1])
@pytest.mark.parametrize("tx_seq,operand", [(3, 3), (2, 3), (0x00400002, 0x00400001),
                                            (0x80000003, 3), (3, 0x80000000)])
def test_csv_at_signed_unsigned_edges_agrees_with_core(version, tx_seq, operand):
    """OP_CHECKSEQUENCEVERIFY with the tx version and sequence at their sign edges (Core
    `CheckSequence` reads the version as uint32); a disabled operand (bit 31) is a NOP."""
    from tests.framework.miniwallet import push_int
    spk = push_int(operand) + b"\xb2\x75\x51"          # <n> CSV DROP 1
    tx = _spending(b"", spk, version=version, sequence=tx_seq)
    verdict = _compare(spk, tx, 0, ScriptFlags.CHECKSEQUENCEVERIFY | ScriptFlags.P2SH,
                       what=f"CSV version={version & 0xFFFFFFFF:#x}")
    if operand & 0x80000000:
        assert verdict
    elif version in (1,):
        assert not verdict
