"""Block index entries keep their header as the 80 serialized bytes only (Core's CBlockIndex
keeps the fields, not a CBlockHeader): the fields read from them equal the header's, `header`
is parsed from them, and no parsed header stays on the entry."""

from __future__ import annotations

from tinynode.chain.index import BlockIndexEntry, BlockStatus
from tinynode.consensus.pow import median_time_past

from tests.unit.test_chain_unit_helpers import PARAMS, Builder

G = PARAMS.genesis


def test_entry_fields_come_from_the_header_bytes():
    blocks = Builder().chain(G, 12)
    prev = BlockIndexEntry(G.header, None, 0, 1)
    entries = [prev]
    for i, b in enumerate(blocks, 1):
        prev = BlockIndexEntry(b.header, prev, i, i + 1)
        entries.append(prev)
    for e, h in zip(entries, [G.header] + [b.header for b in blocks]):
        assert (e.time, e.bits, e.version, e.prev_hash) == (h.time, h.bits, h.version, h.prev_hash)
        assert e.header == h and e.header.hash == h.hash == e.hash
        assert e.header_bytes == h.serialize()
        assert not hasattr(e, "__dict__") and "_header" not in BlockIndexEntry.__slots__
    times = sorted(b.header.time for b in blocks[-11:])
    assert median_time_past(entries[-1]) == times[5]


def test_stored_entry_keeps_the_stored_bytes_and_hash():
    b = Builder().chain(G, 1)[0]
    raw = b.header.serialize()
    e = BlockIndexEntry.from_stored(raw, b.hash, None, 1, 2, BlockStatus.HAVE_DATA, 7)
    assert e.header_bytes is raw and e.hash == b.hash
    assert e.header == b.header and (e.time, e.bits) == (b.header.time, b.header.bits)
    # a negative version (the signed 32-bit field) reads back as the header's
    neg = bytes((0xFF, 0xFF, 0xFF, 0xFF)) + raw[4:]
    assert BlockIndexEntry.from_stored(neg, b.hash, None, 1, 2, BlockStatus.HAVE_DATA, 7).version == -1
