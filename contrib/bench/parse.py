#!/usr/bin/env python3
"""Parse + sign/verify benchmark (issue 3).

Figures (DESIGN.md §8 JSON lines):
* block413567_ms: Block.from_bytes(block413567.raw) (every txid included) + merkle root, median
  of >= 7 runs, beside python-bitcoinlib's CBlock.deserialize + GetTxid() for every tx +
  calc_merkle_root() on the same bytes in the same run. Target <= 0.25x.
* sign_per_s / verify_per_s / verify_compact_per_s: tinynode.primitives.keys beside raw
  coincurve calls on the same keys and digests. Target >= 0.9x.

Usage: python contrib/bench/parse.py [--quick]
"""
from __future__ import annotations

import argparse
import hashlib
import sys

from _common import VECTORS, emit, median_time, rate

from tinynode.primitives.block import Block
from tinynode.primitives.keys import PrivateKey, PublicKey, der_decode_signature, verify_compact


def bench_block(runs: int) -> None:
    raw = (VECTORS / "block413567.raw").read_bytes()

    def ours():
        block = Block.from_bytes(raw)
        root, mutated = block.compute_merkle_root()
        assert root == block.header.merkle_root and not mutated
        return block

    assert len(ours().txs) == 1557  # also the warm-up

    try:
        from bitcoin.core import CBlock
    except ImportError:
        print("python-bitcoinlib is not installed (pip install -e '.[bench]'): "
              "no reference for block413567_ms", file=sys.stderr)
        # No reference, so no ratio to judge: target and ok are null.
        emit("parse", "block413567_ms", median_time(ours, runs) * 1000, "ms", target=None, reference=None)
        return

    def theirs():
        block = CBlock.deserialize(raw)
        for tx in block.vtx:
            tx.GetTxid()
        assert block.calc_merkle_root() == block.hashMerkleRoot
        return block

    theirs()  # warm up
    # Interleave so both see the same machine state; median of each.
    ours_t, theirs_t = [], []
    for _ in range(runs):
        ours_t.append(median_time(ours, 1))
        theirs_t.append(median_time(theirs, 1))
    ours_t.sort()
    theirs_t.sort()
    value = ours_t[len(ours_t) // 2] * 1000
    ref = theirs_t[len(theirs_t) // 2] * 1000
    emit("parse", "block413567_ms", value, "ms", target="<= 0.25",
         reference="python-bitcoinlib CBlock.deserialize+GetTxid+calc_merkle_root", reference_value=ref)


def bench_keys(n: int, runs: int) -> None:
    from coincurve import PrivateKey as CPrivateKey
    from coincurve import PublicKey as CPublicKey

    secrets_ = [hashlib.sha256(b"bench key %d" % i).digest() for i in range(8)]
    digests = [hashlib.sha256(b"bench msg %d" % i).digest() for i in range(n)]
    ours_keys = [PrivateKey(s) for s in secrets_]
    raw_keys = [CPrivateKey(s) for s in secrets_]
    k = len(secrets_)

    def sign_ours():
        for i, d in enumerate(digests):
            ours_keys[i % k].sign(d)

    def sign_raw():
        for i, d in enumerate(digests):
            raw_keys[i % k].sign(d, hasher=None)

    # Interleave runs so both see the same machine state.
    ours_r, raw_r = [], []
    for _ in range(runs):
        ours_r.append(rate(sign_ours, n, 1))
        raw_r.append(rate(sign_raw, n, 1))
    emit("parse", "sign_per_s", sorted(ours_r)[runs // 2], "ops/s", target=">= 0.9",
         reference="coincurve PrivateKey.sign(hasher=None)", reference_value=sorted(raw_r)[runs // 2])

    sigs = [ours_keys[i % k].sign(d) for i, d in enumerate(digests)]
    pubs = [k_.public_key for k_ in ours_keys]
    secs = [p.sec for p in pubs]
    raw_pubs = [CPublicKey(s) for s in secs]
    compact = []
    for s in sigs:
        r_, s_ = der_decode_signature(s)
        compact.append(r_.to_bytes(32, "big") + s_.to_bytes(32, "big"))

    def verify_ours():
        for i, d in enumerate(digests):
            assert pubs[i % k].verify(sigs[i], d)

    def verify_raw():
        for i, d in enumerate(digests):
            assert raw_pubs[i % k].verify(sigs[i], d, hasher=None)

    def verify_compact_ours():
        for i, d in enumerate(digests):
            assert verify_compact(secs[i % k], compact[i], d)

    def verify_compact_raw():
        # Raw coincurve from SEC bytes: parse the key, verify a signature already in DER
        # (coincurve's input format, so no encoding cost is charged to the reference).
        for i, d in enumerate(digests):
            pk = CPublicKey(secs[i % k])
            assert pk.verify(sigs[i], d, hasher=None)

    ours_r, raw_r, oc_r, rc_r = [], [], [], []
    for _ in range(runs):
        ours_r.append(rate(verify_ours, n, 1))
        raw_r.append(rate(verify_raw, n, 1))
        oc_r.append(rate(verify_compact_ours, n, 1))
        rc_r.append(rate(verify_compact_raw, n, 1))
    m = runs // 2
    emit("parse", "verify_per_s", sorted(ours_r)[m], "ops/s", target=">= 0.9",
         reference="coincurve PublicKey.verify(hasher=None)", reference_value=sorted(raw_r)[m])
    emit("parse", "verify_compact_per_s", sorted(oc_r)[m], "ops/s", target=">= 0.9",
         reference="coincurve PublicKey(sec).verify(pre-encoded DER, hasher=None)", reference_value=sorted(rc_r)[m])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer runs (< 1 minute)")
    args = ap.parse_args()
    bench_block(runs=7 if args.quick else 15)
    bench_keys(n=500 if args.quick else 2000, runs=5 if args.quick else 7)


if __name__ == "__main__":
    main()
