"""issue 19: a log line when the difficulty retargets (tinynet's 60-block window; here 4 blocks)."""
import dataclasses
import logging

from tinynode.chain.chainstate import ChainState
from tinynode.storage.memory import MemoryChainStore
from tests.unit.test_chain_unit_helpers import PARAMS, Builder

G = PARAMS.genesis


def test_retarget_logs_old_and_new_difficulty_once(caplog):
    p = dataclasses.replace(PARAMS, no_retargeting=False, allow_min_difficulty=False, retarget_window=4,
                            pow_target_spacing=600)
    cs = ChainState(p, MemoryChainStore(), now=lambda: G.header.time + 10**6)
    B = Builder()
    base = B.chain(G, 3)                    # fast blocks: at height 4 the target shrinks x4
    with caplog.at_level(logging.INFO, logger="tinynode.chain.chainstate"):
        for b in base:
            assert cs.process_block(b).status == "connected"
        assert not [r for r in caplog.records if "retarget" in r.getMessage()]
        hard_bits = cs.next_bits(cs.tip)
        assert cs.process_block(B.next(base[-1], bits=hard_bits)).status == "connected"
    lines = [r.getMessage() for r in caplog.records if "retarget" in r.getMessage()]
    assert lines == [f"difficulty retarget at height 4: 4.65654e-10 -> 1.86262e-09 (x4.000), "
                     f"bits 207fffff -> {hard_bits:08x}"]
    cs.close()


def test_regtest_never_logs_a_retarget(caplog):
    cs = ChainState(PARAMS, MemoryChainStore(), now=lambda: G.header.time + 10**6)
    with caplog.at_level(logging.INFO, logger="tinynode.chain.chainstate"):
        for b in Builder().chain(G, 5):
            assert cs.process_block(b).status == "connected"
    assert not [r for r in caplog.records if "retarget" in r.getMessage()]
    cs.close()
