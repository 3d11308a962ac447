#!/usr/bin/env python3
"""Mine tinynet's genesis block once and print the constants for tinynode/params.py.

The genesis bits are chosen so one CPU core running `tinynode.mining` finds a block in about
10 s: target = 2**256 / (10 s x the measured hash rate of one core, ~1.25 MH/s here).
Usage: python contrib/mine_genesis.py [--time T]
"""
import argparse
import hashlib
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tinynode.params import TINYNET_GENESIS_TIME, TINYNET_GENESIS_BITS, build_genesis, tinynet_genesis_script_sig  # noqa: E402
from tinynode.primitives.block import bits_to_target  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--time", type=int, default=TINYNET_GENESIS_TIME)
    args = ap.parse_args()
    block = build_genesis(tinynet_genesis_script_sig(), b"\x6a", args.time, TINYNET_GENESIS_BITS, 0)
    header76 = block.header.serialize()[:76]
    target = bits_to_target(TINYNET_GENESIS_BITS)[0]
    mid = hashlib.sha256(header76[:64])
    tail = header76[64:]
    sha = hashlib.sha256
    start = time.time()
    for nonce in range(2**32):
        c = mid.copy()
        c.update(tail + nonce.to_bytes(4, "little"))
        h = sha(c.digest()).digest()
        if int.from_bytes(h, "little") <= target:
            print(f"TINYNET_GENESIS_TIME = {args.time}")
            print(f"TINYNET_GENESIS_BITS = {TINYNET_GENESIS_BITS:#010x}")
            print(f"TINYNET_GENESIS_NONCE = {nonce}")
            print(f'TINYNET_GENESIS_HASH_HEX = "{h[::-1].hex()}"')
            print(f"# {nonce + 1} hashes in {time.time() - start:.1f} s")
            return
    raise SystemExit("nonce space exhausted: change --time")


if __name__ == "__main__":
    main()
