"""tinynode's taproot verdicts against Bitcoin Core's own (libbitcoinkernel `VerifyScript` with
TAPROOT and every spent output): seeded random spends of every kind in
tests/framework/taproot_spends (key path with each hash type, valid and with flipped bits;
CHECKSIG/CHECKSIGADD k-of-n leaves in random trees; OP_SUCCESSx leaves; annexes; unknown leaf
versions; wrong control blocks; validation weight near and over the budget; codeseparator
positions), each judged by both engines with the same consensus flags. Also the vectors'
key path spends and test_tapscript's kinds of rule."""

from __future__ import annotations

import collections
import random

import pytest

from tests.framework.oracle import consensus_part, kernel_verify, require_kernel
from tests.framework.taproot_spends import KINDS, random_case, verify

CASES = 2400


@pytest.fixture(scope="module", autouse=True)
def kernel():
    require_kernel()


def _core(case) -> bool:
    spent = [(o.script_pubkey, o.value) for o in case.spent]
    return kernel_verify(case.tx.serialize(), case.index, case.script_pubkey,
                         case.spent[case.index].value, consensus_part(case.flags), spent)


def test_seeded_taproot_spends_agree_with_core():
    rng = random.Random(20261207)
    disagreements = []
    verdicts = collections.Counter()
    codes = collections.Counter()
    for n in range(CASES):
        case = random_case(rng, KINDS[n % len(KINDS)])
        mine = verify(case)
        core = _core(case)
        verdicts[(case.what, core)] += 1
        codes[mine] += 1
        if (mine == "OK") != core:
            disagreements.append((n, case.what, mine, core, case.tx.serialize().hex()))
    assert disagreements == [], f"{len(disagreements)} disagreements, first: {disagreements[:3]}"
    # the generator reaches both verdicts for every kind, and many distinct errors
    for kind in KINDS:
        assert verdicts[(kind, True)] > 10 and verdicts[(kind, False)] > 10, (kind, verdicts)
    for code in ("OK", "SCHNORR_SIG", "SCHNORR_SIG_HASHTYPE", "WITNESS_PROGRAM_MISMATCH",
                 "TAPROOT_WRONG_CONTROL_SIZE", "TAPSCRIPT_VALIDATION_WEIGHT", "EVAL_FALSE"):
        assert codes[code] > 0, (code, codes)


def test_bip341_keypath_vectors_agree_with_core():
    """The signed key path spends of bip341_wallet_vectors.json, as given and with a flipped bit."""
    import json
    from pathlib import Path

    from tests.framework.taproot_spends import TaprootCase, TAPROOT_CONSENSUS, with_witness
    from tinynode.primitives.tx import Tx, TxOut
    vec = json.loads((Path(__file__).resolve().parents[1] / "data" / "bip341_wallet_vectors.json")
                     .read_text())["keyPathSpending"][0]
    tx = Tx.from_hex(vec["given"]["rawUnsignedTx"])
    spent = tuple(TxOut(u["amountSats"], bytes.fromhex(u["scriptPubKey"]))
                  for u in vec["given"]["utxosSpent"])
    compared = 0
    for spend in vec["inputSpending"]:
        i = spend["given"]["txinIndex"]
        sig = bytes.fromhex(spend["expected"]["witness"][0])
        for s, ok in ((sig, True), (sig[:7] + bytes((sig[7] ^ 4,)) + sig[8:], False)):
            case = TaprootCase(with_witness(tx, i, (s,)), i, spent, int(TAPROOT_CONSENSUS))
            assert (verify(case) == "OK") is ok
            assert _core(case) is ok
            compared += 1
    assert compared == 14
