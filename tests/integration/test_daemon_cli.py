"""The real console scripts as a person runs them: `tinynode` daemons and `tinynode-cli` on
regtest in subprocesses (issue 8's end-to-end check), plus lock file, socket mode, signals."""
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from decimal import Decimal
from pathlib import Path

import pytest

from tinynode.lab import free_port
from tests.framework.wait import wait_until_sync

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent


def _script(name: str) -> list[str]:
    exe = BIN / name
    if exe.exists():
        return [str(exe)]
    fn = "daemon_main" if name == "tinynode" else "cli_main"
    return [sys.executable, "-c", f"import sys; from tinynode.cli import {fn}; sys.exit({fn}())"]


class Daemon:
    def __init__(self, *extra: str):
        self.datadir = Path(tempfile.mkdtemp(prefix="tnd", dir="/tmp"))
        self.port = free_port()
        self.log = open(self.datadir / "daemon.out", "wb")
        self.proc = subprocess.Popen(
            _script("tinynode") + ["--network", "regtest", "--datadir", str(self.datadir),
                                   "--port", str(self.port), "--mine-workers", "1", *extra],
            stdout=self.log, stderr=subprocess.STDOUT, env={**os.environ, "TC_PEERS": ""})

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        r = subprocess.run(_script("tinynode-cli") + ["--network", "regtest", "--datadir", str(self.datadir), *args],
                           capture_output=True, text=True, timeout=120)
        if check and r.returncode != 0:
            raise AssertionError(f"tinynode-cli {' '.join(args)} failed ({r.returncode}): {r.stderr}\n{self.output()}")
        return r

    def out(self, *args: str) -> str:
        return self.cli(*args).stdout.strip()

    def output(self) -> str:
        self.log.flush()
        return (self.datadir / "daemon.out").read_text(errors="replace")[-4000:]

    def wait(self, timeout: float = 30) -> int:
        return self.proc.wait(timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.log.close()
        shutil.rmtree(self.datadir, ignore_errors=True)


@pytest.fixture
def daemons():
    started: list[Daemon] = []

    def start(*extra: str) -> Daemon:
        d = Daemon(*extra)
        started.append(d)
        return d
    yield start
    for d in started:
        d.close()


def test_two_daemons_mine_send_confirm(daemons):
    n1 = daemons()
    n2 = daemons("--peers", f"127.0.0.1:{n1.port}")
    assert n1.out("-rpcwait", "getblockcount") == "0"
    assert n2.out("-rpcwait", "getblockcount") == "0"

    addr1 = n1.out("newaddress")
    assert addr1.startswith("bcrt1q")
    # issue 16: the address type verbs, through the real tinynode-cli
    tr = n1.out("newaddress", "tr", "--bech32m")
    assert tr.startswith("bcrt1p") and len(tr) == 64
    tr_info = json.loads(n1.out("getaddressinfo", tr))
    assert tr_info["desc"].startswith("tr(") and tr_info["witness_version"] == 1
    assert tr_info["labels"] == ["tr"]
    assert n1.out("newaddress", "--legacy")[0] in "mn"
    assert n1.out("newaddress", "--bech32").startswith("bcrt1q")
    assert "--bech32m" in n1.out("--help")
    hashes = json.loads(n1.out("generatetoaddress", "101", addr1))
    assert len(hashes) == 101
    assert n1.out("getbalance") == "50.00000000"
    wait_until_sync(lambda: n2.out("getblockcount") == "101", 60, message="node 2 did not sync")

    addr2 = n2.out("getnewaddress")
    txid = n1.out("sendtoaddress", addr2, "1.5")
    wait_until_sync(lambda: txid in json.loads(n2.out("getrawmempool")), 30,
                    message="the tx did not reach node 2's mempool")
    fee = -json.loads(n1.out("gettransaction", txid), parse_float=Decimal)["fee"]
    assert Decimal(0) < fee < Decimal("0.00001")

    n1.out("generatetoaddress", "1", addr1)
    wait_until_sync(lambda: n2.out("getblockcount") == "102", 30)
    assert Decimal(n2.out("getbalance")) == Decimal("1.5")
    assert Decimal(n1.out("getbalance")) == Decimal("98.5") - fee
    status = n2.out("status", txid)
    assert status.startswith("1 confirmation in block ") and "at height 102" in status
    assert json.loads(n2.out("status", txid, "--json"))["confirmations"] == 1
    assert "confirmed  1.5" in n2.out("balance")

    # bitcoin-cli style argument conversion and output
    block = json.loads(n1.out("getblock", hashes[0], "2"))
    assert block["height"] == 1 and block["tx"][0]["vout"][0]["scriptPubKey"]["address"] == addr1

    # error paths print Core's codes and exit 1
    r = n1.cli("getblock", "00" * 32, check=False)
    assert r.returncode == 1 and r.stderr.startswith("error code: -5\nerror message:\n")
    r = n1.cli("sendtoaddress", "notanaddress", "1", check=False)
    assert r.returncode == 1 and "error code: -5" in r.stderr
    r = n2.cli("sendtoaddress", addr1, "1000", check=False)
    assert r.returncode == 1 and "error code: -6" in r.stderr
    r = n1.cli("nosuchmethod", check=False)
    assert r.returncode == 1 and "error code: -32601" in r.stderr
    r = n1.cli("balanse", check=False)
    assert r.returncode == 1 and "balance" in r.stderr

    # the friendly send prints txid, fee and change
    sent = n2.out("send", addr1, "0.5")
    assert sent.startswith(f"sent 0.5 to {addr1}") and "fee" in sent and "change" in sent

    assert n1.out("stop") == "tinynode stopping"
    assert n2.out("stop") == "tinynode stopping"
    assert n1.wait() == 0 and n2.wait() == 0


def test_lock_socket_mode_and_signals(daemons, tmp_path):
    log_file = tmp_path / "node.log"
    n1 = daemons("--log-file", str(log_file))
    assert n1.out("-rpcwait", "getblockcount") == "0"
    assert "RPC listening on" in log_file.read_text()
    sock = n1.datadir / "regtest" / "rpc.sock"
    assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600
    # a second daemon on the same datadir is refused with a sentence, exit 1
    second = subprocess.run(_script("tinynode") + ["--network", "regtest", "--datadir", str(n1.datadir),
                                                   "--port", "0"], capture_output=True, text=True, timeout=60)
    assert second.returncode == 1
    assert "already running" in second.stderr
    assert n1.out("getblockcount") == "0"         # the first one is fine
    n1.proc.send_signal(signal.SIGTERM)
    assert n1.wait() == 0
    assert not sock.exists()
    assert "received SIGTERM, shutting down" in log_file.read_text()
    assert log_file.read_text().rstrip().endswith("tinynode stopped")
    # restart on the same datadir, then SIGINT
    again = subprocess.Popen(_script("tinynode") + ["--network", "regtest", "--datadir", str(n1.datadir),
                                                    "--port", "0"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        assert n1.out("-rpcwait", "getblockcount") == "0"
        again.send_signal(signal.SIGINT)
        assert again.wait(30) == 0
    finally:
        if again.poll() is None:
            again.kill()
            again.wait()


def test_cli_without_daemon_says_how_to_start_it(tmp_path):
    r = subprocess.run(_script("tinynode-cli") + ["--network", "regtest", "--datadir", str(tmp_path), "info"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and f"tinynode --network regtest --datadir {tmp_path}" in lines[0]


def test_help_works():
    for name in ("tinynode", "tinynode-cli"):
        r = subprocess.run(_script(name) + ["--help"], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and "usage" in r.stdout
    r = subprocess.run(_script("tinynode") + ["--help"], capture_output=True, text=True, timeout=60)
    for opt in ("--datadir", "--network", "--port", "--bind", "--peers", "--no-listen", "--mine",
                "--mine-to", "--mine-workers", "--rpc-socket", "--log-level", "--log-file", "TC_PEERS"):
        assert opt in r.stdout


def test_long_socket_path_fails_naming_the_option(tmp_path):
    long_dir = tmp_path / ("d" * 110)
    r = subprocess.run(_script("tinynode") + ["--network", "regtest", "--datadir", str(long_dir)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "--rpc-socket" in r.stderr
