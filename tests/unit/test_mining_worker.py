"""grind(): the proof-of-work inner loop (worker processes call it)."""

from __future__ import annotations

import pickle

from tinynode.mining.worker import MAX_NONCE, grind
from tinynode.params import REGTEST, TINYNET
from tinynode.primitives.block import BlockHeader
from tinynode.primitives.hashes import sha256d


def _hash_int(header76: bytes, nonce: int) -> int:
    return int.from_bytes(sha256d(header76 + nonce.to_bytes(4, "little")), "little")


def test_finds_regtest_genesis_nonce():
    g = REGTEST.genesis.header
    header76 = g.serialize()[:76]
    # Any nonce at or below the easy regtest target works; the genesis used nonce 2.
    assert grind(header76, g.target, g.nonce, 1) == g.nonce == 2
    first = grind(header76, g.target, 0, 100)
    assert first is not None and _hash_int(header76, first) <= g.target


def test_finds_tinynet_genesis_nonce_in_range():
    g = TINYNET.genesis.header
    header76 = g.serialize()[:76]
    nonce = grind(header76, g.target, g.nonce - 1500, 2000)
    assert nonce == g.nonce
    assert BlockHeader.from_bytes(header76 + nonce.to_bytes(4, "little")).check_pow(TINYNET.pow_limit)


def test_returns_first_nonce_at_or_below_target():
    header76 = bytes(range(76))
    target = REGTEST.pow_limit
    for start in (0, 17, 1000):
        nonce = grind(header76, target, start, 200)
        assert nonce is not None and start <= nonce < start + 200
        assert _hash_int(header76, nonce) <= target
        assert all(_hash_int(header76, n) > target for n in range(start, nonce))


def test_target_boundary_is_inclusive():
    header76 = bytes(76)
    exact = _hash_int(header76, 5)
    assert grind(header76, exact, 5, 1) == 5
    assert grind(header76, exact - 1, 5, 1) is None


def test_none_when_impossible():
    header76 = bytes(76)
    assert grind(header76, 1, 0, 5000) is None
    assert grind(header76, 0, 0, 10) is None
    assert grind(header76, REGTEST.pow_limit, 0, 0) is None


def test_range_is_clipped_to_32_bits():
    header76 = bytes(range(76))
    assert grind(header76, 1, MAX_NONCE - 3, 100) is None
    nonce = grind(header76, 1 << 256, MAX_NONCE, 100)
    assert nonce == MAX_NONCE
    assert grind(header76, 1 << 256, MAX_NONCE + 1, 100) is None


def test_grind_is_picklable_by_reference():
    assert pickle.loads(pickle.dumps(grind)) is grind
