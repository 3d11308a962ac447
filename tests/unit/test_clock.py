"""tinynode.clock.NodeClock (Core SetMockTime / NodeClock::now) and the --mocktime option."""

import pytest

from tinynode.clock import MAX_MOCKTIME, NodeClock
from tinynode.config import ConfigError, from_args


def test_system_clock_until_mocked_then_frozen_then_back():
    ticks = iter([100.5, 101.25, 250.0])
    clock = NodeClock(real=lambda: next(ticks))
    assert clock() == 100.5 and clock.mocktime == 0
    clock.set_mocktime(1_700_000_000)
    assert clock() == 1_700_000_000.0 and clock() == 1_700_000_000.0   # frozen: no real reads
    assert clock.seconds() == 1_700_000_000 and clock.mocktime == 1_700_000_000
    clock.set_mocktime(0)
    assert clock() == 101.25 and clock.seconds() == 250


def test_two_clocks_are_independent():
    a, b = NodeClock(), NodeClock(mocktime=5)
    a.set_mocktime(42)
    assert (a(), b()) == (42.0, 5.0)


def test_range_is_cores():
    assert MAX_MOCKTIME == 9223372036          # nanoseconds::max() in seconds
    clock = NodeClock()
    with pytest.raises(ValueError, match=r"Mocktime must be in the range \[0, 9223372036\], not -1\."):
        clock.set_mocktime(-1)
    with pytest.raises(ValueError):
        clock.set_mocktime(MAX_MOCKTIME + 1)
    clock.set_mocktime(MAX_MOCKTIME)
    assert clock.seconds() == MAX_MOCKTIME


def test_mocktime_option(tmp_path):
    cfg = from_args(["--datadir", str(tmp_path), "--network", "regtest", "--mocktime", "1234567890"], env={})
    assert cfg.mocktime == 1234567890
    assert from_args(["--datadir", str(tmp_path), "--network", "regtest"], env={}).mocktime == 0
    with pytest.raises(ConfigError, match="--mocktime must be in the range"):
        from_args(["--datadir", str(tmp_path), "--network", "regtest", "--mocktime", "-5"], env={})
