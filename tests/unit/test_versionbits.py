"""BIP9 version bits (tinynode/consensus/versionbits.py) against Core's rules for regtest's
"testdummy": period 144, threshold 108, start 0, no timeout, no activation delay."""

from __future__ import annotations

import dataclasses

from tinynode.consensus.versionbits import (
    ALWAYS_ACTIVE, NEVER_ACTIVE, TESTDUMMY, ThresholdState as S, VersionBitsCache, deployments_for,
)
from tinynode.params import REGTEST, TINYNET
from tinynode.primitives.block import BlockHeader

TOP = 0x20000000
SIGNAL = TOP | (1 << 28)


class Entry:
    """The block index fields versionbits reads."""

    def __init__(self, prev: "Entry | None", version: int, time: int) -> None:
        self.prev = prev
        self.height = 0 if prev is None else prev.height + 1
        self.header = BlockHeader(version, prev.hash if prev else bytes(32), bytes(32), time, 0x207FFFFF, 0)
        self.hash = self.header.hash


def chain(versions: list[int], base: Entry | None = None) -> list[Entry]:
    """Genesis (or `base`'s descendants) with these versions, one block a minute."""
    out = []
    prev = base
    for v in versions:
        prev = Entry(prev, v, 1_600_000_000 + 60 * (0 if prev is None else prev.height + 1))
        out.append(prev)
    return out


def test_regtest_defines_testdummy_only():
    assert deployments_for(REGTEST) == (TESTDUMMY,)
    assert deployments_for(TINYNET) == ()
    assert (TESTDUMMY.bit, TESTDUMMY.period, TESTDUMMY.threshold, TESTDUMMY.start_time,
            TESTDUMMY.min_activation_height) == (28, 144, 108, 0, 0)


def test_states_through_a_signalled_activation():
    """DEFINED for the first period, STARTED from 144, LOCKED_IN after a period with 108
    signalling blocks, ACTIVE one period later; the version signals while STARTED/LOCKED_IN."""
    # genesis..143 plain; 144..287: 108 signalling then 36 plain; then plain
    blocks = chain([TOP] * 144 + [SIGNAL] * 108 + [TOP] * 36 + [TOP] * 300)
    vb = VersionBitsCache()
    assert vb.state_for(None, TESTDUMMY) is S.DEFINED
    assert vb.state_for(blocks[0], TESTDUMMY) is S.DEFINED
    assert vb.state_for(blocks[142], TESTDUMMY) is S.DEFINED       # block 143
    assert vb.state_for(blocks[143], TESTDUMMY) is S.STARTED       # block 144
    assert vb.state_for(blocks[286], TESTDUMMY) is S.STARTED       # block 287
    assert vb.state_for(blocks[287], TESTDUMMY) is S.LOCKED_IN     # block 288
    assert vb.state_for(blocks[431], TESTDUMMY) is S.ACTIVE        # block 432
    assert vb.compute_block_version(blocks[142], (TESTDUMMY,)) == TOP
    assert vb.compute_block_version(blocks[143], (TESTDUMMY,)) == SIGNAL
    assert vb.compute_block_version(blocks[300], (TESTDUMMY,)) == SIGNAL   # locked in still signals
    assert vb.compute_block_version(blocks[500], (TESTDUMMY,)) == TOP
    assert vb.since_height(blocks[200], TESTDUMMY) == 144
    assert vb.since_height(blocks[300], TESTDUMMY) == 288
    assert vb.since_height(blocks[500], TESTDUMMY) == 432
    # a fresh cache, asked out of order, agrees
    assert VersionBitsCache().state_for(blocks[500], TESTDUMMY) is S.ACTIVE


def test_107_signals_do_not_lock_in():
    blocks = chain([TOP] * 144 + [SIGNAL] * 107 + [TOP] * 37 + [TOP] * 10)
    assert VersionBitsCache().state_for(blocks[-1], TESTDUMMY) is S.STARTED


def test_statistics_and_deployment_json_as_core():
    """Core SoftForkDescPushBack: bit and statistics only while STARTED / LOCKED_IN ("possible"
    false once 108 can no longer be reached); "signalling" oldest first."""
    blocks = chain([TOP] * 144 + [SIGNAL, TOP, SIGNAL])
    vb = VersionBitsCache()
    assert vb.deployment_json(blocks[100], TESTDUMMY) == {
        "type": "bip9", "active": False,
        "bip9": {"start_time": 0, "timeout": 2**63 - 1, "min_activation_height": 0,
                 "status": "defined", "since": 0, "status_next": "defined"}}
    assert vb.deployment_json(blocks[146], TESTDUMMY) == {
        "type": "bip9", "active": False,
        "bip9": {"bit": 28, "start_time": 0, "timeout": 2**63 - 1, "min_activation_height": 0,
                 "status": "started", "since": 144, "status_next": "started",
                 "statistics": {"period": 144, "elapsed": 3, "count": 2, "threshold": 108, "possible": True},
                 "signalling": "#-#"}}
    # 37 non-signalling blocks: 108 can no longer be reached in this period
    late = chain([TOP] * 37, base=blocks[-1])
    j = vb.deployment_json(late[-1], TESTDUMMY)
    assert j["bip9"]["statistics"] == {"period": 144, "elapsed": 40, "count": 2, "threshold": 108,
                                       "possible": False}


def test_locked_in_and_active_json():
    blocks = chain([TOP] * 144 + [SIGNAL] * 144 + [TOP] * 150)
    vb = VersionBitsCache()
    j = vb.deployment_json(blocks[288], TESTDUMMY)    # first locked-in block
    assert j["bip9"]["status"] == "locked_in" and j["bip9"]["since"] == 288
    assert j["bip9"]["statistics"] == {"period": 144, "elapsed": 1, "count": 0}
    assert "height" not in j and j["active"] is False
    j = vb.deployment_json(blocks[431], TESTDUMMY)    # last locked-in block: active next
    assert j["bip9"]["status_next"] == "active" and j["height"] == 432 and j["active"] is True
    j = vb.deployment_json(blocks[437], TESTDUMMY)
    assert j["bip9"]["status"] == "active" and j["height"] == 432 and j["active"] is True
    assert "statistics" not in j["bip9"] and "bit" not in j["bip9"]


def test_only_bip9_versions_count_and_special_start_times():
    # top bits 001 required: 0x10000000 | bit 28 alone, or 0x60000000, do not signal
    blocks = chain([TOP] * 144 + [1 << 28] * 60 + [0x70000000] * 60 + [SIGNAL] * 24)
    vb = VersionBitsCache()
    assert vb.statistics(blocks[-1], TESTDUMMY)[0].count == 24
    always = dataclasses.replace(TESTDUMMY, name="always", start_time=ALWAYS_ACTIVE)
    never = dataclasses.replace(TESTDUMMY, name="never", start_time=NEVER_ACTIVE)
    assert vb.state_for(blocks[3], always) is S.ACTIVE and vb.since_height(blocks[3], always) == 0
    assert vb.state_for(blocks[3], never) is S.FAILED


def test_start_time_and_timeout():
    blocks = chain([TOP] * 600)
    start = blocks[200].header.time          # MTP of the period's last block must reach it
    timeout = blocks[350].header.time
    dep = dataclasses.replace(TESTDUMMY, name="timed", start_time=start, timeout=timeout)
    vb = VersionBitsCache()
    assert vb.state_for(blocks[286], dep) is S.DEFINED      # block 287: MTP(143) < start
    assert vb.state_for(blocks[287], dep) is S.STARTED      # block 288: MTP(287) >= start
    assert vb.state_for(blocks[430], dep) is S.STARTED      # block 431
    assert vb.state_for(blocks[431], dep) is S.FAILED       # block 432: MTP(431) >= timeout
    assert vb.since_height(blocks[580], dep) == 432
    assert vb.since_height(blocks[300], dep) == 288
