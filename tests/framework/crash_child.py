"""Child process for the crash test: connect pre-built blocks into a SQLite chain store.

    python -m tests.framework.crash_child <db path> <blocks file> [network] [flush_blocks] [dbcache bytes]

The blocks file is the concatenation of serialized blocks. The child prints `READY` once the
store is open (so the parent's SIGKILL lands in block processing, not in imports), delivers
every block in file order (blocks it already has are answered as duplicates; a refused block
prints `INVALID <hash hex> <reason>`), then prints `DONE <tip hash hex> <utxo_set_hash hex>`
and exits 0. It is meant to be SIGKILLed at any point.
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    from tinynode.chain.chainstate import ChainState
    from tinynode.params import get_params
    from tinynode.primitives.block import Block
    from tinynode.primitives.serialize import ByteReader
    from tinynode.storage.sqlite import SQLiteChainStore

    db, blocks_path = argv[0], argv[1]
    params = get_params(argv[2] if len(argv) > 2 else "regtest")
    kw = {"flush_blocks": int(argv[3])} if len(argv) > 3 else {}
    if len(argv) > 4:
        kw["dbcache"] = int(argv[4])
    r = ByteReader(open(blocks_path, "rb").read())
    blocks = []
    while r.remaining():
        blocks.append(Block.parse(r))
    cs = ChainState(params, SQLiteChainStore(db), **kw)
    print("READY", cs.height, flush=True)
    for blk in blocks:
        res = cs.process_block(blk)
        if res.error is not None:          # the parent decides whether this block may be invalid
            print("INVALID", blk.hash_hex, res.error.reason.value, flush=True)
    print("DONE", cs.tip.hash_hex, cs.utxo_set_hash().hex(), flush=True)
    cs.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
