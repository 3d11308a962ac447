"""Bitcoin Core's script_tests.json, tx_valid.json and tx_invalid.json: every row, legacy and
witness (BIP141/143), run as Core's script_tests / transaction_tests harness runs them.

The 5 tapscript rows use Core's placeholders, resolved as Core's harness does: `#SCRIPT# <asm>`
is the leaf script, `#CONTROLBLOCK#` the control block of a one-leaf tree (leaf version 0xc0)
whose internal key is the x-only key of Core's `key0` (secret 1), `#TAPROOTOUTPUT#` that tree's
output key. No row is skipped. Every verify_script call of this module is also asked of Core's kernel (tests/framework/oracle) with
the consensus flags including WITNESS, the spent amount and, for tx rows, every spent output.
"""

from __future__ import annotations

import json
import random
from decimal import Decimal
from pathlib import Path

import pytest

from tinynode.consensus.errors import ValidationError
from tinynode.consensus.tx_checks import check_transaction
from tinynode.primitives.hashes import ZERO_HASH, hex_to_hash
from tinynode.primitives.keys import PrivateKey
from tinynode.primitives.serialize import DecodeError
from tinynode.primitives.tx import MAX_MONEY, OutPoint, Tx, TxIn, TxOut
from tinynode.script.flags import ALL_FLAGS, ScriptFlags, format_flags, parse_flags
from tinynode.script.interpreter import ScriptError, verify_script, witness_program
from tinynode.script.script import parse_core_script
from tinynode.script.sighash import PrecomputedTxData
from tinynode.script.taproot import TAPROOT_LEAF_TAPSCRIPT, taproot_tree
from tests.framework.oracle import verify_script_checked_by_core

DATA = Path(__file__).resolve().parents[1] / "data"
TAPROOT_PLACEHOLDERS = ("#SCRIPT#", "#CONTROLBLOCK#", "#TAPROOTOUTPUT#")
#: Core script_tests.cpp `vchKey0`: the secret 1, whose x-only key is G's X
KEY0_XONLY = PrivateKey((1).to_bytes(32, "big")).xonly_public_key

#: the implemented flags a harness may add or remove
FLAG_BITS = [f for f in ScriptFlags if f.value and ALL_FLAGS & f]


@pytest.fixture(autouse=True, scope="module")
def _core_checks_every_verify():
    """Every verify_script call of this module also goes to Core's kernel (tests/framework/oracle)."""
    with verify_script_checked_by_core(globals()) as checked:
        yield checked
    if checked is not None:
        assert checked.compared_witness > 0, "no call was compared with the WITNESS flag on"
        assert checked.compared_taproot > 0, "no call was compared with the TAPROOT flag on"


def _load(name: str) -> list:
    return json.loads((DATA / name).read_text())


def _valid_combination(flags: int) -> bool:
    """Core's test harness skips these (and its VerifyScript asserts against them)."""
    if flags & ScriptFlags.CLEANSTACK and not (flags & ScriptFlags.P2SH and flags & ScriptFlags.WITNESS):
        return False
    return not (flags & ScriptFlags.WITNESS and not flags & ScriptFlags.P2SH)


def _trim(flags: int) -> int:
    """Core's TrimFlags (transaction_tests.cpp): WITNESS needs P2SH, CLEANSTACK needs WITNESS."""
    if not flags & ScriptFlags.P2SH:
        flags &= ~ScriptFlags.WITNESS
    if not flags & ScriptFlags.WITNESS:
        flags &= ~ScriptFlags.CLEANSTACK
    return flags


def _fill(flags: int) -> int:
    """Core's FillFlags: CLEANSTACK implies WITNESS, WITNESS implies P2SH."""
    if flags & ScriptFlags.CLEANSTACK:
        flags |= ScriptFlags.WITNESS
    if flags & ScriptFlags.WITNESS:
        flags |= ScriptFlags.P2SH
    return flags


def _is_v1_program(spk: bytes) -> bool:
    prog = witness_program(spk)
    return prog is not None and prog[0] == 1 and len(prog[1]) == 32


# --- script_tests.json -------------------------------------------------------------------------

SCRIPT_ROWS = _load("script_tests.json")


def _script_cases() -> tuple[list, int]:
    cases = []
    taproot = 0
    for n, row in enumerate(SCRIPT_ROWS):
        if len(row) < 4:
            continue  # a comment
        witness, amount = (), 0
        if isinstance(row[0], list):
            *wit, btc = row[0]
            rest = row[1:]
            amount = int(Decimal(str(btc)) * 100_000_000)
            witness = tuple(wit)
        else:
            rest = row
        sig, spk, flags_text, expected = rest[:4]
        texts = (sig, spk) + witness
        if any(p in t for t in texts for p in TAPROOT_PLACEHOLDERS):
            taproot += 1
            witness, spk = _resolve_taproot_placeholders(witness, spk)
        cases.append(pytest.param(n, witness, amount, sig, spk, flags_text, expected,
                                  id=f"row{n}-{expected}"))
    return cases, taproot


def _resolve_taproot_placeholders(witness: tuple[str, ...], spk: str) -> tuple[tuple[str, ...], str]:
    """Core's DoTest placeholders: `#SCRIPT# <asm>` (the leaf), `#CONTROLBLOCK#`, and
    `0x51 0x20 #TAPROOTOUTPUT#` for the one-leaf tree on key0's x-only key."""
    items: list[str] = []
    info = None
    for w in witness:
        if w.startswith("#SCRIPT#"):
            items.append(parse_core_script(w[len("#SCRIPT#"):]).hex())
        elif w == "#CONTROLBLOCK#":
            info = taproot_tree(KEY0_XONLY, (TAPROOT_LEAF_TAPSCRIPT, bytes.fromhex(items[-1])))
            items.append(info.control_blocks[0].hex())
        else:
            items.append(w)
    assert info is not None and spk == "0x51 0x20 #TAPROOTOUTPUT#"
    return tuple(items), "0x51 0x20 0x" + info.output_key.hex()


SCRIPT_CASES, SCRIPT_TAPROOT_ROWS = _script_cases()


def _crediting_and_spending(script_sig: bytes, script_pubkey: bytes, witness: tuple[bytes, ...] = (),
                            amount: int = 0) -> Tx:
    """Core's BuildCreditingTransaction / BuildSpendingTransaction."""
    credit = Tx(1, (TxIn(OutPoint(ZERO_HASH, 0xFFFFFFFF), b"\x00\x00", 0xFFFFFFFF),),
                (TxOut(amount, script_pubkey),), 0)
    return Tx(1, (TxIn(OutPoint(credit.txid, 0), script_sig, 0xFFFFFFFF, witness),),
              (TxOut(amount, b""),), 0)


def _run(script_sig: bytes, script_pubkey: bytes, tx: Tx, flags: int, amount: int = 0,
         index: int = 0) -> str:
    try:
        verify_script(script_sig, script_pubkey, tx, index, flags, amount=amount)
    except ScriptError as e:
        return e.code
    return "OK"


def test_script_tests_counts():
    rows = [r for r in SCRIPT_ROWS if len(r) >= 4]
    assert len(SCRIPT_CASES) == len(rows) == 1222
    assert sum(1 for r in rows if isinstance(r[0], list)) == 113   # rows with a witness
    assert SCRIPT_TAPROOT_ROWS == 5


@pytest.mark.parametrize("n,witness_hex,amount,sig,spk,flags_text,expected", SCRIPT_CASES)
def test_script_tests_json(n, witness_hex, amount, sig, spk, flags_text, expected):
    script_sig = parse_core_script(sig)
    script_pubkey = parse_core_script(spk)
    witness = tuple(bytes.fromhex(w) for w in witness_hex)
    flags = parse_flags(flags_text)
    tx = _crediting_and_spending(script_sig, script_pubkey, witness, amount)
    assert _run(script_sig, script_pubkey, tx, flags, amount) == expected
    # As Core's DoTest: removing flags keeps an OK row OK, adding flags keeps a failing row
    # failing (the error may change). Deterministic per row.
    rng = random.Random(n)
    for _ in range(8):
        extra = ScriptFlags.NONE
        for f in FLAG_BITS:
            if rng.random() < 0.5:
                extra |= f
        combined = (flags & ~extra) if expected == "OK" else (flags | extra)
        if not _valid_combination(combined):
            continue
        got = _run(script_sig, script_pubkey, tx, combined, amount)
        assert (got == "OK") == (expected == "OK"), (format_flags(combined), got)


# --- tx_valid.json / tx_invalid.json -------------------------------------------------------------

def check_transaction_local(tx: Tx) -> str | None:
    """The context-free rules BADTX rows break (Core CheckTransaction); the reason or None."""
    if not tx.vin:
        return "bad-txns-vin-empty"
    if not tx.vout:
        return "bad-txns-vout-empty"
    total = 0
    for o in tx.vout:
        if o.value < 0:
            return "bad-txns-vout-negative"
        if o.value > MAX_MONEY:
            return "bad-txns-vout-toolarge"
        total += o.value
        if total > MAX_MONEY:
            return "bad-txns-txouttotal-toolarge"
    if len({i.prevout for i in tx.vin}) != len(tx.vin):
        return "bad-txns-inputs-duplicate"
    if tx.is_coinbase():
        if not 2 <= len(tx.vin[0].script_sig) <= 100:
            return "bad-cb-length"
    elif any(i.prevout.is_null() for i in tx.vin):
        return "bad-txns-prevout-null"
    return None


def _prevout_map(prevouts: list) -> dict:
    """outpoint → (script_pubkey, amount); Core's harness reads an optional 4th amount field."""
    return {OutPoint(hex_to_hash(p[0]), p[1] & 0xFFFFFFFF):
            (parse_core_script(p[2]), p[3] if len(p) > 3 else 0) for p in prevouts}


def _tx_needs_taproot(prevouts: list, flags: int) -> bool:
    return bool(flags & ScriptFlags.TAPROOT) and any(
        _is_v1_program(parse_core_script(p[2])) for p in prevouts)


def _tx_cases(name: str) -> tuple[list, int]:
    rows = _load(name)
    cases = []
    taproot = 0
    for n, row in enumerate(rows):
        if len(row) < 3 or isinstance(row[0], str):
            continue
        prevouts, raw, flags = row[0], row[1], row[2]
        if flags != "BADTX":
            effective = parse_flags(flags)
            if name == "tx_valid.json":  # the flags listed are the excluded ones
                effective = ~effective & ((1 << 21) - 1)
            if _tx_needs_taproot(prevouts, effective):
                taproot += 1
        cases.append(pytest.param(n, prevouts, raw, flags, id=f"row{n}-{flags.replace(',', '+')}"))
    return cases, taproot


TX_VALID, TX_VALID_TAPROOT_ROWS = _tx_cases("tx_valid.json")
TX_INVALID, TX_INVALID_TAPROOT_ROWS = _tx_cases("tx_invalid.json")


def _verify_tx(prevs: dict, tx: Tx, flags: int) -> str:
    spent = []
    for txin in tx.vin:
        if txin.prevout not in prevs:
            return "missing-prevout"
        spk, amount = prevs[txin.prevout]
        spent.append(TxOut(amount, spk))
    txdata = PrecomputedTxData.for_tx(tx, spent)   # Core's harness shares one per tx too
    for i, (txin, out) in enumerate(zip(tx.vin, spent)):
        try:
            verify_script(txin.script_sig, out.script_pubkey, tx, i, flags, amount=out.value,
                          txdata=txdata)
        except ScriptError as e:
            return f"input{i}:{e.code}"
    return "OK"


def _exclude_individual_flags(flags: int) -> list[int]:
    """Core's ExcludeIndividualFlags: each flag set removed, trimmed, when that changes it."""
    out = []
    for f in FLAG_BITS:
        g = _trim(flags & ~f)
        if g != flags and g not in out:
            out.append(g)
    return out


def test_tx_vector_counts():
    assert len(TX_VALID) == 121 and len(TX_INVALID) == 93
    assert TX_VALID_TAPROOT_ROWS == 0 and TX_INVALID_TAPROOT_ROWS == 0


def test_no_row_is_skipped():
    """Every row runs, the 5 tapscript placeholder rows of script_tests.json included."""
    assert not [c for c in SCRIPT_CASES + TX_VALID + TX_INVALID if c.marks]
    assert SCRIPT_TAPROOT_ROWS == 5


@pytest.mark.parametrize("n,prevouts,raw,excluded_text", TX_VALID)
def test_tx_valid_json(n, prevouts, raw, excluded_text):
    tx = Tx.from_hex(raw)
    assert check_transaction_local(tx) is None
    check_transaction(tx)
    prevs = _prevout_map(prevouts)
    excluded = parse_flags(excluded_text) & ALL_FLAGS
    flags = _trim(ALL_FLAGS & ~excluded)
    assert _verify_tx(prevs, tx, flags) == "OK"
    # removing any one flag (or each in turn, cumulatively) never invalidates a valid tx
    cumulative = flags
    for f in FLAG_BITS:
        if flags & f:
            assert _verify_tx(prevs, tx, _trim(flags & ~f)) == "OK", f.name
            cumulative = _trim(cumulative & ~f)
            assert _verify_tx(prevs, tx, cumulative) == "OK", format_flags(cumulative)
    # maximality (Core): putting back any one excluded flag makes it fail
    for fewer in _exclude_individual_flags(excluded):
        assert _verify_tx(prevs, tx, _trim(ALL_FLAGS & ~fewer)) != "OK", format_flags(fewer)


@pytest.mark.parametrize("n,prevouts,raw,flags_text", TX_INVALID)
def test_tx_invalid_json(n, prevouts, raw, flags_text):
    try:
        tx = Tx.from_hex(raw)
    except DecodeError:
        assert flags_text == "BADTX"
        return
    if flags_text == "BADTX":
        reason = check_transaction_local(tx)
        assert reason is not None
        with pytest.raises(ValidationError) as e:
            check_transaction(tx)  # tinynode's consensus CheckTransaction agrees
        assert e.value.reason == reason
        return
    assert check_transaction_local(tx) is None
    check_transaction(tx)
    prevs = _prevout_map(prevouts)
    flags = parse_flags(flags_text)
    assert _verify_tx(prevs, tx, flags) != "OK"
    # adding any flag keeps it invalid; with every flag on it is invalid too
    for f in FLAG_BITS:
        assert _verify_tx(prevs, tx, _fill(flags | f)) != "OK", f.name
    assert _verify_tx(prevs, tx, ALL_FLAGS) != "OK"
    # minimality (Core): removing any one of its flags makes it valid
    for fewer in _exclude_individual_flags(flags & ALL_FLAGS):
        assert _verify_tx(prevs, tx, fewer) == "OK", format_flags(fewer)


# --- BIP143's signed examples (bitcoin/bips bip-0143.mediawiki) ------------------------------------

_BIP143_P2WSH_SIGNED = (
    "01000000000102fe3dc9208094f3ffd12645477b3dc56f60ec4fa8e6f5d67c565d1c6b9216b36e0000000048473044"
    "02200af4e47c9b9629dbecc21f73af989bdaa911f7e6f6c2e9394588a3aa68f81e9902204f3fcf6ade7e5abb1295b677"
    "4c8e0abd94ae62217367096bc02ee5e435b67da201ffffffff0815cf020f013ed6cf91d29f4202e8a58726b1ac6c79da"
    "47c23d1bee0a6925f80000000000ffffffff0100f2052a010000001976a914a30741f8145e5acadf23f751864167f32e"
    "0963f788ac000347304402200de66acf4527789bfda55fc5459e214fa6083f936b430a762c629656216805ac0220396f"
    "550692cd347171cbc1ef1f51e15282e837bb2b30860dc77c8f78bc8501e503473044022027dc95ad6b740fe5129e7e62"
    "a75dd00f291a2aeb1200b84b09d9e3789406b6c002201a9ecd315dd6a0e632ab20bbb98948bc0c6fb204f2c286963bb4"
    "8517a7058e27034721026dccc749adc2a9d0d89497ac511f760f45c47dc5ed9cf352a58ac706453880aeadab210255a9"
    "626aebf5e29c0e6538428ba0d1dcf6ca98ffdf086aa8ced5e0d0215ea465ac00000000")
_BIP143_ACP_SIGNED = (
    "01000000000102e9b542c5176808107ff1df906f46bb1f2583b16112b95ee5380665ba7fcfc0010000000000ffffffff"
    "80e68831516392fcd100d186b3c2c7b95c80b53c77e77c35ba03a66b429a2a1b0000000000ffffffff028096980000"
    "0000001976a914de4b231626ef508c9a74a8517e6783c0546d6b2888ac80969800000000001976a9146648a8cd4531e1"
    "ec47f35916de8e259237294d1e88ac02483045022100f6a10b8604e6dc910194b79ccfc93e1bc0ec7c03453caaa8987f"
    "7d6c3413566002206216229ede9b4d6ec2d325be245c5b508ff0339bf1794078e20bfe0babc7ffe683270063ab682103"
    "92972e2eb617b2388771abe27235fd5ac44af8e61693261550447a4c3e39da98ac024730440220032521802a76ad7bf7"
    "4d0e2c218b72cf0cbc867066e2e53db905ba37f130397e02207709e2188ed7f08f4c952d9d13986da504502b8c3be596"
    "17e043552f506c46ff83275163ab68210392972e2eb617b2388771abe27235fd5ac44af8e61693261550447a4c3e39da"
    "98ac00000000")

BIP143_SIGNED = [
    # (signed tx, input, spent scriptPubKey, amount): the P2PK input is a legacy input of a
    # witness-serialized tx (its sighash covers the non-witness serialization)
    ("p2pk-in-witness-tx", "tests.unit.test_tx:BIP143_P2WPKH_SIGNED", 0,
     "2103c9f4836b9a4f77fc0d81f7bcb01b7f1b35916864b9476c241ce9fc198bd25432ac", 625_000_000),
    ("p2wpkh", "tests.unit.test_tx:BIP143_P2WPKH_SIGNED", 1,
     "00141d0f172a0ecb48aee1be1f2687d2963ae33f71a1", 600_000_000),
    ("p2sh-p2wpkh", "01000000000101db6b1b20aa0fd7b23880be2ecbd4a98130974cf4748fb66092ac4d3ceb1a547701"
     "0000001716001479091972186c449eb1ded22b78e40d009bdf0089feffffff02b8b4eb0b000000001976a914a457b6"
     "84d7f0d539a46a45bbc043f35b59d0d96388ac0008af2f000000001976a914fd270b1ee6abcaea97fea7ad0402e8bd"
     "8ad6d77c88ac02473044022047ac8e878352d3ebbde1c94ce3a10d057c24175747116f8288e5d794d12d482f022021"
     "7f36a485cae903c713331d877c1f64677e3622ad4010726870540656fe9dcb012103ad1d8e89212f0b92c74d23bb71"
     "0c00662ad1470198ac48c43f7d6f93a2a2687392040000", 0,
     "a9144733f37cf4db86fbc2efed2500b4f4e49f31202387", 1_000_000_000),
    ("p2pk-2", _BIP143_P2WSH_SIGNED, 0,
     "21036d5c20fa14fb2f635474c1dc4ef5909d4568e5569b79fc94d3448486e14685f8ac", 156_250_000),
    ("p2wsh-codeseparator", _BIP143_P2WSH_SIGNED, 1,
     "00205d1b56b63d714eebe542309525f484b7e9d6f686b3781b6f61ef925d66d6f6a0", 4_900_000_000),
    ("p2wsh-acp-unexecuted-codesep", _BIP143_ACP_SIGNED, 0,
     "0020ba468eea561b26301e4cf69fa34bde4ad60c81e70f059f045ca9a79931004a4d", 16_777_215),
    ("p2wsh-acp-executed-codesep", _BIP143_ACP_SIGNED, 1,
     "0020d9bbfbe56af7c4b7f960a70d7ea107156913d9e5a26b0a71429df5e097ca6537", 16_777_215),
]


def _tx_hex(ref: str) -> str:
    if ref.startswith("tests."):
        import importlib
        module, name = ref.split(":")
        return getattr(importlib.import_module(module), name)
    return ref


@pytest.mark.parametrize("what,tx_ref,index,spk_hex,amount", BIP143_SIGNED,
                         ids=[c[0] for c in BIP143_SIGNED])
def test_bip143_signed_examples_verify(what, tx_ref, index, spk_hex, amount):
    tx = Tx.from_hex(_tx_hex(tx_ref))
    spk = bytes.fromhex(spk_hex)
    flags = ScriptFlags.P2SH | ScriptFlags.WITNESS | ScriptFlags.DERSIG | ScriptFlags.NULLDUMMY
    sig = tx.vin[index].script_sig
    assert _run(sig, spk, tx, flags, amount, index) == "OK"
    if tx.vin[index].witness:
        # the amount is signed (BIP143): any other amount is a failed signature check
        assert _run(sig, spk, tx, flags, amount + 1, index) in ("EVAL_FALSE", "CHECKSIGVERIFY")
        # without the WITNESS flag a witness program is anyone-can-spend (Core's soft fork)
        assert _run(sig, spk, tx, ScriptFlags.P2SH, 0, index) == "OK"
