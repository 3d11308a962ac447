#!/usr/bin/env python3
"""Script verification speed: one P2PKH input (legacy sighash + interpreter + lax-DER ECDSA
check under the standard flags) per second, beside raw coincurve verification of the same
signatures over precomputed digests in the same run. Target >= 0.6x. One P2WPKH input (BIP143
sighash with the tx's PrecomputedTxData built per tx, the witness v0 program, the ECDSA check)
beside the same raw verification: target >= 0.85x. Also, without a target, a 2-of-3 P2SH
multisig input (the general interpreter path) beside its two raw verifications.

Usage: python contrib/bench/script.py [--quick]
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib

from _common import emit, paired_rates, rate

from tinynode.primitives.keys import PrivateKey
from tinynode.primitives.tx import OutPoint, Tx, TxIn, TxOut
from tinynode.script.flags import STANDARD_FLAGS
from tinynode.script.interpreter import verify_script
from tinynode.primitives.hashes import hash160
from tinynode.primitives.keys import der_decode_signature
from tinynode.script.script import get_op, multisig_script, p2pkh_script, p2sh_script
from tinynode.script.sighash import SIGHASH_ALL, PrecomputedTxData, legacy_sighash, witness_v0_sighash
from tinynode.script.sign import sign_multisig, sign_p2pkh


def _cases(n: int) -> list:
    """n distinct signed one-input, two-output P2PKH spends (distinct keys, txs, digests)."""
    cases = []
    for i in range(n):
        key = PrivateKey(hashlib.sha256(b"script bench key %d" % (i % 64)).digest())
        spk = p2pkh_script(key.public_key.hash160())
        prev = OutPoint(hashlib.sha256(b"prev %d" % i).digest(), i % 3)
        tx = Tx(1, (TxIn(prev, b"", 0xFFFFFFFE),),
                (TxOut(50_000 + i, p2pkh_script(bytes(20))), TxOut(12_345, spk)), 0)
        ss = sign_p2pkh(tx, 0, key, spk)
        tx = dataclasses.replace(tx, vin=(dataclasses.replace(tx.vin[0], script_sig=ss),))
        digest = legacy_sighash(tx, 0, spk, SIGHASH_ALL)
        der = ss[1:1 + ss[0] - 1]
        cases.append((tx, spk, ss, key.public_key.sec, der, digest))
    return cases


def bench_p2pkh(n: int, runs: int) -> None:
    from coincurve import PublicKey as CPublicKey

    cases = _cases(n)

    def ours(start: int = 0, stop: int = n):
        for tx, spk, ss, _, _, _ in cases[start:stop]:
            verify_script(ss, spk, tx, 0, STANDARD_FLAGS)

    def raw(start: int = 0, stop: int = n):
        # Reference: coincurve parses the SEC key and verifies the DER signature over the
        # already computed digest (no sighash, no script, no encoding checks).
        for _, _, _, sec, der, digest in cases[start:stop]:
            assert CPublicKey(sec).verify(der, digest, hasher=None)

    ours()  # warm up, and proves every case verifies
    ours_rate, raw_rate = paired_rates(ours, raw, n, runs)
    emit("script", "p2pkh_input_per_s", ours_rate, "inputs/s", target=">= 0.6",
         reference="coincurve PublicKey(sec).verify(DER, digest, hasher=None)",
         reference_value=raw_rate)


def bench_p2wpkh(n: int, runs: int) -> None:
    """n distinct signed one-input P2WPKH spends: `verify_script` with the amount and the tx's
    PrecomputedTxData (made inside the timed loop, once per tx, as a block connect does)."""
    from coincurve import PublicKey as CPublicKey

    cases = []
    for i in range(n):
        key = PrivateKey(hashlib.sha256(b"wpkh bench key %d" % (i % 64)).digest())
        h160 = key.public_key.hash160()
        spk = b"\x00\x14" + h160
        amount = 100_000 + i
        prev = OutPoint(hashlib.sha256(b"wpkh prev %d" % i).digest(), i % 3)
        tx = Tx(2, (TxIn(prev, b"", 0xFFFFFFFD),),
                (TxOut(50_000 + i, spk), TxOut(12_345, p2pkh_script(bytes(20)))), 0)
        spent = [TxOut(amount, spk)]
        digest = witness_v0_sighash(tx, 0, p2pkh_script(h160), amount, SIGHASH_ALL,
                                    PrecomputedTxData.for_tx(tx, spent))
        der = key.sign(digest)
        tx = dataclasses.replace(tx, vin=(dataclasses.replace(
            tx.vin[0], witness=(der + bytes((SIGHASH_ALL,)), key.public_key.sec)),))
        cases.append((tx, spk, amount, spent, key.public_key.sec, der, digest))

    def ours(start: int = 0, stop: int = n):
        for tx, spk, amount, spent, _, _, _ in cases[start:stop]:
            verify_script(b"", spk, tx, 0, STANDARD_FLAGS, amount=amount,
                          txdata=PrecomputedTxData.for_tx(tx, spent, force=False))

    def raw(start: int = 0, stop: int = n):
        for _, _, _, _, sec, der, digest in cases[start:stop]:
            assert CPublicKey(sec).verify(der, digest, hasher=None)

    ours()  # warm up, and proves every case verifies
    ours_rate, raw_rate = paired_rates(ours, raw, n, runs)
    emit("script", "p2wpkh_input_per_s", ours_rate, "inputs/s", target=">= 0.85",
         reference="coincurve PublicKey(sec).verify(DER, digest, hasher=None)",
         reference_value=raw_rate)


def bench_p2sh_multisig(n: int, runs: int) -> None:
    """A 2-of-3 P2SH multisig input signed by keys 1 and 3: inputs/s beside the two raw coincurve
    verifications of those signatures. CHECKMULTISIG also tries (and fails) key 2 for the
    second signature, as Core does, so ~0.67x is the ceiling here."""
    from coincurve import PublicKey as CPublicKey

    keys = [PrivateKey(hashlib.sha256(b"ms key %d" % i).digest()) for i in range(3)]
    redeem = multisig_script(2, [k.public_key.sec for k in keys])
    spk = p2sh_script(hash160(redeem))
    cases = []
    for i in range(n):
        prev = OutPoint(hashlib.sha256(b"ms prev %d" % i).digest(), 0)
        tx = Tx(1, (TxIn(prev, b"", 0xFFFFFFFF),), (TxOut(70_000 + i, p2pkh_script(bytes(20))),), 0)
        ss = sign_multisig(tx, 0, [keys[0], keys[2]], redeem, p2sh=True)
        tx = dataclasses.replace(tx, vin=(dataclasses.replace(tx.vin[0], script_sig=ss),))
        digest = legacy_sighash(tx, 0, redeem, SIGHASH_ALL)
        pc, sigs = 1, []
        for _ in range(2):
            _, data, pc = get_op(ss, pc)
            sigs.append(data[:-1])
        assert der_decode_signature(sigs[0])
        cases.append((tx, ss, digest, [(keys[0].public_key.sec, sigs[0]), (keys[2].public_key.sec, sigs[1])]))

    def ours():
        for tx, ss, _, _ in cases:
            verify_script(ss, spk, tx, 0, STANDARD_FLAGS)

    def raw():
        for _, _, digest, pairs in cases:
            for sec, der in pairs:
                assert CPublicKey(sec).verify(der, digest, hasher=None)

    ours()
    ours_r, raw_r = [], []
    for _ in range(runs):
        ours_r.append(rate(ours, n, 1))
        raw_r.append(rate(raw, n, 1))
    m = runs // 2
    emit("script", "p2sh_2of3_input_per_s", sorted(ours_r)[m], "inputs/s",
         reference="coincurve: the same 2 signature verifications per input",
         reference_value=sorted(raw_r)[m])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer runs (< 1 minute)")
    args = ap.parse_args()
    bench_p2pkh(n=1000 if args.quick else 4000, runs=5 if args.quick else 9)
    bench_p2wpkh(n=1000 if args.quick else 4000, runs=5 if args.quick else 9)
    bench_p2sh_multisig(n=300 if args.quick else 1000, runs=5 if args.quick else 7)


if __name__ == "__main__":
    main()
