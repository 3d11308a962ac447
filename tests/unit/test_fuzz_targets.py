"""The fuzz targets of contrib/fuzz (run coverage-guided by contrib/fuzz/run.py with atheris)
also run here, without atheris, on seeded inputs and on every earlier finding, so a finding
stays fixed and a target that stopped working is noticed."""

from __future__ import annotations

import random

import pytest

from contrib.fuzz import targets as T
from tests.framework.oracle import require_kernel

#: inputs that once broke a decoder (each fuzz finding is added here)
FINDINGS = {
    "rpc": [b"[" * 100_000, b'{"a":' * 50_000],   # RecursionError escaped the JSON parse
}


def _inputs(name: str, n: int = 400) -> list[bytes]:
    rng = random.Random(name)
    out = [b"", b"\x00", b"\xff" * 9, bytes(range(256))]
    for _ in range(n):
        out.append(rng.randbytes(rng.randrange(0, 300)))
    return out + FINDINGS.get(name, [])


@pytest.mark.parametrize("name", [n for n in T.TARGETS if n != "script_diff"])
def test_target_survives_seeded_inputs(name):
    fn = T.TARGETS[name]()
    for data in _inputs(name):
        fn(data)


def test_script_diff_agrees_and_detects_a_disagreement(monkeypatch):
    require_kernel()
    fn = T.TARGETS["script_diff"]()
    for data in _inputs("script_diff", 1000):
        fn(data)
    valid_row = bytes([0, 0, 0, 0, 0, 0, 2])        # row 0 unchanged (mode 2 appends nothing)

    def flipped(*a, **kw):
        raise T.ScriptError("EVAL_FALSE")
    fn(valid_row)
    monkeypatch.setattr(T, "verify_script", flipped)
    with pytest.raises(T.Disagreement):
        fn(valid_row)


def test_script_diff_taproot_inputs_agree_and_detect_a_disagreement(monkeypatch):
    """Inputs with bit 7 of the flags byte set are taproot spends (each of the four shapes)."""
    require_kernel()
    fn = T.TARGETS["script_diff"]()
    rng = random.Random("taproot")
    for n in range(400):
        head = bytes([rng.randrange(256), rng.randrange(256), 0x80 | rng.randrange(32),
                      rng.randrange(256), rng.randrange(256), rng.randrange(256), n % 256])
        fn(head + rng.randbytes(rng.randrange(0, 80)))
    fn(bytes([0, 0, 0x80, 0, 0, 0, 1]) + b"\xac")     # the leaf CHECKSIG with a valid signature
    from tests.framework import taproot_spends

    def always_ok(case, verifier=None):
        return "OK"
    monkeypatch.setattr(taproot_spends, "verify", always_ok)
    with pytest.raises(T.Disagreement):
        fn(bytes([0, 0, 0x80, 0, 0, 0, 2]) + b"\x01\xff")   # a key path sig with a flipped bit
