"""The README walkthrough runs as written, so it cannot rot.

The walkthrough is the part of README.md between `<!-- walkthrough:start -->` and
`<!-- walkthrough:end -->`. Every ```sh block in it is taken verbatim, in order, and run as one bash script
(`set -eu`, so the first failing command fails the test) in a fresh directory with a bounded
time. The assertions check what the prose promises: balances, the mempool → confirmed status,
the fork during the partition and the single chain after healing.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tinynode.lab import Lab

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
START, END = "<!-- walkthrough:start -->", "<!-- walkthrough:end -->"


def walkthrough_text() -> str:
    text = README.read_text()
    assert text.count(START) == 1 and text.count(END) == 1, "README.md must mark the walkthrough once"
    return text.split(START, 1)[1].split(END, 1)[0]


def walkthrough_commands() -> list[str]:
    """The lines of every ```sh block, in order (blank lines dropped)."""
    text = walkthrough_text()
    blocks = re.findall(r"^```sh\n(.*?)^```", text, flags=re.S | re.M)
    return [line for b in blocks for line in b.splitlines() if line.strip()]


def test_walkthrough_commands_are_the_documented_ones() -> None:
    cmds = walkthrough_commands()
    assert cmds[0] == "tinynode lab up 3"
    assert cmds[-1] == "tinynode lab down"
    assert all(c.startswith(("tinynode ", "ADDR=$(tinynode ", "TXID=$(tinynode ")) for c in cmds), cmds
    for verb in ("tips", "mine", "sync", "partition", "heal", "tree", "cli"):
        assert any(c.startswith(f"tinynode lab {verb}") for c in cmds), verb


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TC_")}
    # `tinynode` of this interpreter's environment, running this checkout's package.
    bindir = Path(sys.executable).parent
    shim = tmp_path / "bin"
    shim.mkdir()
    tn = bindir / "tinynode"
    if not tn.exists():       # no console script installed: call the module the same way
        (shim / "tinynode").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m tinynode "$@"\n')
        (shim / "tinynode").chmod(0o755)
    env["PATH"] = os.pathsep.join([str(shim), str(bindir), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


def test_python_api_snippet_runs(tmp_path: Path, monkeypatch, capsys) -> None:
    blocks = re.findall(r"^```python\n(.*?)^```", walkthrough_text(), flags=re.S | re.M)
    assert len(blocks) == 1
    monkeypatch.chdir(tmp_path)
    lab = Lab(tmp_path / "demo-lab")
    try:
        exec(compile(blocks[0], f"{README} (walkthrough)", "exec"), {"__name__": "walkthrough"})
    finally:
        lab.down()
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in out[:4]] == [[f"n{i}", "3"] for i in range(4)]
    assert out[4].startswith("height 3 ") and out[4].endswith("<- n0 n1 n2 n3")
    assert out[5] == "3"
    assert not (tmp_path / "demo-lab").exists()


def test_walkthrough_runs(tmp_path: Path) -> None:
    work = tmp_path / "w"
    work.mkdir()
    # Echo each command before it runs, so a failure shows where it happened.
    script = "set -eu\n" + "".join(f"echo '>>> {c.replace(chr(39), '')}'\n{c}\n" for c in walkthrough_commands())
    lab = Lab(work / ".tinynode-lab")
    try:
        proc = subprocess.run(["bash", "-c", script], cwd=work, env=_env(tmp_path), capture_output=True,
                              text=True, timeout=150)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"walkthrough timed out; output so far:\n{e.stdout}\n{e.stderr}")
    finally:
        lab.down()
    out = proc.stdout
    assert proc.returncode == 0, f"walkthrough failed:\n{out}\n{proc.stderr}"
    ran = re.findall(r"^>>> (.*?)\n(.*?)(?=^>>> |\Z)", out, flags=re.S | re.M)
    assert [c for c, _ in ran] == [c.replace("'", "") for c in walkthrough_commands()]

    def outputs(cmd: str) -> list[str]:
        return [o for c, o in ran if c == cmd]

    sections = {c: outputs(c)[0] for c, _ in ran}

    # 1. three nodes, all on genesis
    tips0 = sections["tinynode lab tips"]
    assert len(re.findall(r"^n\d ", tips0, flags=re.M)) == 3
    # 3. after 101 blocks exactly one coinbase (50) is spendable
    assert re.search(r"^confirmed\s+50\b", sections["tinynode lab cli 0 balance"], flags=re.M)
    # 4. the payment waits in the mempool ...
    assert "in mempool" in sections['tinynode lab cli 0 status "$TXID"']
    # 5. ... and is confirmed once n2 mines
    assert re.search(r"^1 confirmation in block [0-9a-f]{64} at height 102", sections['tinynode lab cli 1 status "$TXID"'],
                     flags=re.M)
    assert re.search(r"^confirmed\s+10\b", sections["tinynode lab cli 1 balance"], flags=re.M)
    # 6. a fork while partitioned, one chain after healing, n0's block left as a valid-fork tip
    trees = outputs("tinynode lab tree")
    assert len(trees) == 2
    forked, healed = trees
    assert "├──" in forked and "<- n0" in forked and "<- n1 n2" in forked, forked
    assert re.fullmatch(r"height 104  [0-9a-f]{16}  <- n0 n1 n2\n", healed), healed
    assert "valid-fork" in sections["tinynode lab cli 0 chain --tips"]
    # 7. nothing left
    assert not (work / ".tinynode-lab").exists()
    assert shutil.which("bash")
