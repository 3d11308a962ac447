"""tinynode-cli without a daemon: option parsing, bitcoin-cli argument conversion, output and
error formats, suggestions, and the friendly verbs against a scripted client."""
import json

import pytest

from tinynode import cli
from tinynode.rpc.protocol import RPCError, dumps, loads


def test_global_options_bitcoin_cli_style():
    o, rest = cli._parse_global(["-regtest", "-datadir=/d", "-rpcwait", "getblock", "h", "2"])
    assert (o.network, o.datadir, o.rpcwait, rest) == ("regtest", "/d", True, ["getblock", "h", "2"])
    assert o.socket_path() == "/d/regtest/rpc.sock"
    o, rest = cli._parse_global(["--network", "tinynet", "--rpc-socket", "/s.sock", "--json", "info"])
    assert o.socket_path() == "/s.sock" and o.json and rest == ["info"]
    o, rest = cli._parse_global(["-rpcwaittimeout=5", "send", "addr", "-1"])
    assert o.rpcwait and o.rpcwait_timeout == 5 and rest == ["send", "addr", "-1"]
    with pytest.raises(cli.CliError):
        cli._parse_global(["--bogus", "info"])
    with pytest.raises(cli.CliError):
        cli._parse_global(["--network", "mainnet", "info"])


def test_convert_args_per_method():
    assert cli.convert_args("getblock", ["abc", "2"]) == ["abc", 2]
    assert cli.convert_args("getblockhash", ["7"]) == [7]
    assert cli.convert_args("sendtoaddress", ["addr", "1.5", "", "", "true"]) == ["addr", 1.5, "", "", True]
    assert cli.convert_args("getnewaddress", ["123"]) == ["123"]       # labels stay strings
    assert cli.convert_args("generatetoaddress", ["101", "addr"]) == [101, "addr"]
    with pytest.raises(cli.CliError, match="Error parsing JSON"):
        cli.convert_args("getblock", ["abc", "two"])
    assert cli.convert_named("getblock", ["blockhash=ab", "verbosity=2"]) == {"blockhash": "ab", "verbosity": 2}
    with pytest.raises(cli.CliError):
        cli.convert_named("getblock", ["noequals"])


def test_convert_table_getblockstats_getchaintxstats_as_bitcoin_cli():
    """Core rpc/client.cpp: getblockstats' hash_or_height is JSON_OR_STRING (a height is a
    number, a hash stays a string), its stats an array; getchaintxstats' nblocks a number and
    its blockhash a string."""
    h = "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206"
    assert cli.convert_args("getblockstats", ["100", '["height"]']) == [100, ["height"]]
    assert cli.convert_args("getblockstats", [h]) == [h]
    assert cli.convert_args("getblockstats", [f'"{h}"', '["txs","height"]']) == [h, ["txs", "height"]]
    with pytest.raises(cli.CliError, match=r"Error parsing JSON: \[height"):
        cli.convert_args("getblockstats", ["100", "[height"])
    assert cli.convert_args("getchaintxstats", ["10", h]) == [10, h]
    assert cli.convert_args("getchaintxstats", []) == []
    with pytest.raises(cli.CliError, match="Error parsing JSON: ten"):
        cli.convert_args("getchaintxstats", ["ten"])
    assert cli.convert_named("getblockstats", ["hash_or_height=" + h, 'stats=["height"]']) == \
        {"hash_or_height": h, "stats": ["height"]}
    assert cli.convert_named("getchaintxstats", ["nblocks=5", "blockhash=00ab"]) == \
        {"nblocks": 5, "blockhash": "00ab"}
    # the other new rows: fee estimation, packages, spenders
    assert cli.convert_args("estimatesmartfee", ["6", "conservative"]) == [6, "conservative"]
    assert cli.convert_args("estimaterawfee", ["6", "0.9"]) == [6, 0.9]
    assert cli.convert_args("submitpackage", ['["00","11"]', "0.1", "0"]) == [["00", "11"], 0.1, 0]
    assert cli.convert_args("gettxspendingprevout", ['[{"txid":"ab","vout":1}]', '{"mempool_only":true}']) == \
        [[{"txid": "ab", "vout": 1}], {"mempool_only": True}]
    assert cli.convert_named("gettxspendingprevout", ["mempool_only=false"]) == {"mempool_only": False}
    # the positional table is derived from the rows
    assert cli.CONVERT["getblockstats"] == {0, 1} and cli.CONVERT["getchaintxstats"] == {0}


def test_amounts_print_like_core_and_numbers_round_trip():
    from tinynode.rpc.methods import amount_from_json, amount_to_json
    assert dumps({"a": amount_to_json(5_000_000_000), "f": amount_to_json(-452)}) == '{"a":50.00000000,"f":-0.00000452}'
    assert dumps(loads('{"x": 0.00000452, "d": 4.6565423739069247e-10}'), indent=None) == \
        '{"x":0.00000452,"d":4.6565423739069247e-10}'
    assert amount_from_json("1.5") == 150_000_000 and amount_from_json(0.1) == 10_000_000
    for bad in ("1.123456789", -1, "x", True, 21_000_001):
        with pytest.raises(RPCError) as e:
            amount_from_json(bad)
        assert e.value.code == -3


class FakeClient:
    def __init__(self, answers):
        self.answers = answers
        self.calls = []

    def call(self, method, *params, named=None):
        self.calls.append((method, params, named))
        a = self.answers[method]
        if isinstance(a, Exception):
            raise a
        return a(*params, **(named or {})) if callable(a) else a

    def wait_ready(self, timeout):
        pass


def run(monkeypatch, capsys, argv, answers):
    fake = FakeClient(answers)
    monkeypatch.setattr("tinynode.rpc.client.RPCClient", lambda path, **kw: fake)
    rc = cli.cli_main(argv)
    out = capsys.readouterr()
    return rc, out.out, out.err, fake


def test_rpc_error_format_and_exit_code(monkeypatch, capsys):
    rc, out, err, _ = run(monkeypatch, capsys, ["getblock", "00"],
                          {"getblock": RPCError(-8, "blockhash must be of length 64 (not 2, for '00')")})
    assert rc == 1 and out == ""
    assert err == "error code: -8\nerror message:\nblockhash must be of length 64 (not 2, for '00')\n"
    rc, _, err, _ = run(monkeypatch, capsys, ["getblok"], {"getblok": RPCError(-32601, "Method not found")})
    assert rc == 1 and "Did you mean `tinynode-cli getblock`" in err


def test_result_printing(monkeypatch, capsys):
    rc, out, _, fake = run(monkeypatch, capsys, ["getblockcount"], {"getblockcount": 5})
    assert (rc, out) == (0, "5\n")
    rc, out, _, _ = run(monkeypatch, capsys, ["getbestblockhash"], {"getbestblockhash": "ab" * 32})
    assert out == "ab" * 32 + "\n"
    rc, out, _, _ = run(monkeypatch, capsys, ["addnode", "h", "add"], {"addnode": None})
    assert (rc, out) == (0, "")
    rc, out, _, _ = run(monkeypatch, capsys, ["getblockchaininfo"], {"getblockchaininfo": {"blocks": 1}})
    assert json.loads(out) == {"blocks": 1}


def test_unknown_verb_suggests_nearest(monkeypatch, capsys):
    rc, _, err, fake = run(monkeypatch, capsys, ["balanse"], {})
    assert rc == 1 and "balance" in err and fake.calls == []
    rc, _, err, _ = run(monkeypatch, capsys, ["sned", "a", "1"], {})
    assert rc == 1 and "`tinynode-cli send`" in err


def test_status_verb(monkeypatch, capsys):
    answers = {"gettxstatus": {"txid": "t", "status": "confirmed", "confirmations": 1,
                               "blockhash": "bb", "height": 102}}
    rc, out, _, _ = run(monkeypatch, capsys, ["status", "t"], answers)
    assert out == "1 confirmation in block bb at height 102\n"
    answers = {"gettxstatus": {"txid": "t", "status": "mempool", "confirmations": 0}}
    assert "in mempool" in run(monkeypatch, capsys, ["status", "t"], answers)[1]
    answers = {"gettxstatus": {"txid": "t", "status": "conflicted", "confirmations": -1}}
    assert "conflicted" in run(monkeypatch, capsys, ["status", "t"], answers)[1]
    answers = {"gettxstatus": {"txid": "t", "status": "not found"}}
    rc, out, _, _ = run(monkeypatch, capsys, ["--json", "status", "t"], answers)
    assert json.loads(out)["status"] == "not found"


def test_balance_verb(monkeypatch, capsys):
    answers = {"getbalances": {"mine": {"trusted": 48.5, "untrusted_pending": 1.0, "immature": 100.0}},
               "getbalance": lambda dummy, minconf: 40.0 if minconf == 1 else 48.5}
    rc, out, _, fake = run(monkeypatch, capsys, ["-regtest", "balance"], answers)
    lines = out.splitlines()
    assert lines[0].startswith("confirmed  40") and lines[1].startswith("pending    9.5")
    assert lines[2].startswith("immature   100") and "101 confirmations" in lines[2]
    rc, out, _, fake = run(monkeypatch, capsys, ["balance", "--minconf", "0", "--json"], answers)
    assert json.loads(out)["confirmed"] == 49.5 and json.loads(out)["pending"] == 0
    answers = {"getaddressbalance": {"address": "A", "balance": 2.0, "confirmed": 2.0, "immature": 0,
                                     "pending_in": 1.0, "pending_out": 0}}
    rc, out, _, fake = run(monkeypatch, capsys, ["balance", "--address", "A"], answers)
    assert out.startswith("A: 2") and fake.calls == [("getaddressbalance", ("A", 1), None)]
    rc, _, err, _ = run(monkeypatch, capsys, ["balance", "--minconf", "x"], answers)
    assert rc == 1 and "--minconf" in err


def test_send_verb_uses_named_args(monkeypatch, capsys):
    answers = {"sendtoaddress": {"txid": "tt", "fee_reason": "x", "amount": 1.5, "fee": 0.00000452,
                                 "change": {"address": "SRC", "amount": 48.49999548, "vout": 1}}}
    rc, out, _, fake = run(monkeypatch, capsys, ["send", "DEST", "1.5", "--fee-rate", "3", "--from", "SRC"], answers)
    assert rc == 0
    assert fake.calls == [("sendtoaddress", (), {"address": "DEST", "amount": "1.5", "verbose": True,
                                                 "fee_rate": "3", "from_address": "SRC"})]
    assert out.splitlines() == ["sent 1.5 to DEST", "txid    tt", "fee     0.00000452",
                                "change  48.49999548 to SRC"]
    rc, _, err, _ = run(monkeypatch, capsys, ["send", "DEST"], answers)
    assert rc == 1 and "usage: send" in err


def test_daemon_not_running_is_one_line(tmp_path, capsys):
    rc = cli.cli_main(["--datadir", str(tmp_path), "getblockcount"])
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1 and f"tinynode --datadir {tmp_path}" in err


def test_help_and_version(capsys):
    assert cli.cli_main(["--help"]) == 0
    out = capsys.readouterr().out
    for verb in cli.VERBS:
        assert verb in out
    assert cli.cli_main(["--version"]) == 0
    assert "tinynode-cli" in capsys.readouterr().out


def test_cli_imports_no_aiohttp():
    import subprocess
    import sys
    code = "import sys, tinynode.cli; tinynode.cli.cli_main(['--version']); print('aiohttp' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.stdout.strip().endswith("False")


def test_stdin_and_getinfo(monkeypatch, capsys):
    import io
    monkeypatch.setattr("sys.stdin", io.StringIO("abc\n2\n"))
    rc, out, _, fake = run(monkeypatch, capsys, ["-stdin", "getblock"], {"getblock": "raw"})
    assert rc == 0 and fake.calls == [("getblock", ("abc", 2), None)]
    answers = {"getblockchaininfo": {"chain": "regtest", "blocks": 1, "headers": 1, "bestblockhash": "h"},
               "getpeerinfo": [], "getmininginfo": {"mining": False},
               "getbalances": {"mine": {"trusted": 1.0, "untrusted_pending": 0.0, "immature": 0.0}}}
    rc, out, _, _ = run(monkeypatch, capsys, ["-getinfo"], answers)
    assert rc == 0 and "height    1" in out and "balance   1" in out


def test_mine_verb(monkeypatch, capsys):
    """One block per call, a progress line per block on stderr, the summary on stdout."""
    mined = iter([["a" * 64], ["b" * 64]])
    answers = {"getnewaddress": "ADDR", "generatetoaddress": lambda n, a: next(mined), "getblockcount": 2}
    rc, out, err, fake = run(monkeypatch, capsys, ["mine", "2"], answers)
    assert rc == 0 and out.splitlines() == ["mined 2 blocks to ADDR; height 2", "tip " + "b" * 64]
    assert fake.calls[1:3] == [("generatetoaddress", (1, "ADDR"), None)] * 2
    lines = err.splitlines()
    assert lines[0] == "mining 2 blocks to ADDR ..."
    assert lines[1].startswith("  block 1/2: aaaaaaaaaaaaaaaa... (") and lines[1].endswith(" s)")
    assert lines[2].startswith("  block 2/2: bbbbbbbbbbbbbbbb... (")


def test_mining_verb_switches_at_run_time(monkeypatch, capsys):
    state = {"mining": False, "workers": 1}

    def setgenerate(on, workers=None):
        state["mining"] = on
        if workers is not None:
            state["workers"] = workers
    answers = {"setgenerate": setgenerate, "getmininginfo": lambda: dict(state)}
    rc, out, _, fake = run(monkeypatch, capsys, ["mining", "on", "2"], answers)
    assert rc == 0 and out == "mining on with 2 workers\n" and fake.calls[0] == ("setgenerate", (True, 2), None)
    rc, out, _, _ = run(monkeypatch, capsys, ["mining", "off"], answers)
    assert out == "mining off\n"
    rc, out, _, _ = run(monkeypatch, capsys, ["mining"], answers)
    assert out == "mining off\n"
    rc, _, err, _ = run(monkeypatch, capsys, ["mining", "maybe"], answers)
    assert rc != 0 and "usage: tinynode-cli mining [on [N] | off]" in err


def test_send_verb_explains_insufficient_funds(monkeypatch, capsys):
    answers = {"sendtoaddress": RPCError(-6, "Insufficient funds"),
               "getbalances": {"mine": {"trusted": 0.5, "untrusted_pending": 0.0, "immature": 150.0}}}
    rc, _, err, _ = run(monkeypatch, capsys, ["send", "DEST", "1"], answers)
    assert rc == 1 and err.count("\n") == 1
    assert "insufficient funds: 0.5 spendable, 150 immature" in err and "11 confirmations" in err


def test_tinynode_lab_routes_to_the_lab(capsys):
    from tinynode.lab import LAB_HELP
    assert cli.daemon_main(["lab", "--help"]) == 0
    assert capsys.readouterr().out.strip() == LAB_HELP.strip()
    with pytest.raises(SystemExit) as e:
        cli.daemon_main(["--help"])
    assert e.value.code == 0
    assert "tinynode lab --help" in " ".join(capsys.readouterr().out.split())


def test_send_from_prints_the_amount_sent_not_amount_plus_change(monkeypatch, capsys):
    """issue 19: `send ADDR 0.5 --from A` printed `sent 1.4999774` (the change back to A counted
    as sent); the amount, the fee and the change each get their own line."""
    answers = {"sendtoaddress": {"txid": "t" * 64, "fee_reason": "Fallback fee", "amount": 0.5,
                                 "fee": 0.0000226, "change": {"address": "TA", "amount": 0.9999774, "vout": 0}}}
    rc, out, _, _ = run(monkeypatch, capsys, ["send", "TDEST", "0.5", "--from", "TA"], answers)
    assert rc == 0 and out == f"sent 0.5 to TDEST\ntxid    {'t' * 64}\nfee     0.0000226\nchange  0.9999774 to TA\n"
    answers["sendtoaddress"] = {"txid": "u", "fee_reason": "x", "amount": 2.0, "fee": 0.00000452, "change": None}
    rc, out, _, _ = run(monkeypatch, capsys, ["send", "TDEST", "2"], answers)
    assert out.splitlines()[0] == "sent 2 to TDEST" and out.splitlines()[-1] == "change  none"


def test_send_from_insufficient_funds_quotes_that_address(monkeypatch, capsys):
    rows = [{"address": "TA", "kind": "receive", "used": True, "label": "", "balance": 0.3, "immature": 150.0,
             "pending": 0.0, "spendable": 0.3, "incoming": 0.0},
            {"address": "TB", "kind": "receive", "used": True, "label": "", "balance": 80.0, "immature": 0.0,
             "pending": 0.0, "spendable": 80.0, "incoming": 0.0}]
    answers = {"sendtoaddress": RPCError(-6, "Insufficient funds"), "listaddresses": rows,
               "getbalances": {"mine": {"trusted": 80.3, "untrusted_pending": 0.0, "immature": 150.0}}}
    rc, out, err, _ = run(monkeypatch, capsys, ["send", "TDEST", "1", "--from", "TA"], answers)
    assert rc == 1 and out == ""
    assert err == ("tinynode-cli: insufficient funds in TA: 0.3 spendable, 150 immature (mined coins become "
                   "spendable after 11 confirmations), 0 incoming unconfirmed\n")


def test_send_amount_errors_say_why(monkeypatch, capsys):
    for amount, why in [("-1", "AMOUNT -1 is negative: a send pays a positive number of coins"),
                        ("0.123456789", "AMOUNT 0.123456789 has more than 8 decimals: the smallest unit "
                                        "is 0.00000001 coins (1 satoshi)"),
                        ("0", "AMOUNT must be more than 0 coins"),
                        ("abc", "AMOUNT must be a number of coins, not 'abc'")]:
        rc, _, err, fake = run(monkeypatch, capsys, ["send", "TDEST", amount], {})
        assert (rc, err, fake.calls) == (1, f"tinynode-cli: {why}\n", []), amount


def test_balance_minconf_semantics(monkeypatch, capsys):
    """issue 19: --minconf 0 counts incoming unconfirmed coins (as the per-address view does);
    coins with 1..N-1 confirmations are "recent", not "unconfirmed"; a negative minconf is refused."""
    b = {"trusted": 10.0, "untrusted_pending": 1.5, "immature": 150.0}
    answers = {"getbalances": {"mine": b},
               "getbalance": lambda dummy, minconf: {1: 9.0, 5: 6.0}[minconf]}
    rc, out, _, fake = run(monkeypatch, capsys, ["balance", "--minconf", "0"], answers)
    assert rc == 0 and out == ("confirmed  11.5   (with ≥ 0 confirmations: unconfirmed change and incoming included)\n"
                               "immature   150   (mined coins spendable after 11 confirmations)\n")
    rc, out, _, _ = run(monkeypatch, capsys, ["balance", "--minconf", "5"], answers)
    assert rc == 0 and out == ("confirmed  6   (with ≥ 5 confirmations)\n"
                               "recent     3   (confirmed but fewer than 5 confirmations)\n"
                               "pending    2.5   (unconfirmed: change of your sends, and incoming)\n"
                               "immature   150   (mined coins spendable after 11 confirmations)\n")
    rc, out, _, _ = run(monkeypatch, capsys, ["balance"], answers)
    assert out.splitlines()[:2] == ["confirmed  9", "pending    2.5   (unconfirmed: change of your sends, and incoming)"]
    rc, out, err, fake = run(monkeypatch, capsys, ["balance", "--minconf", "-1"], answers)
    assert (rc, out, fake.calls) == (1, "", [])
    assert err == "tinynode-cli: --minconf must be 0 or more, not -1: it counts confirmations\n"


def test_addresses_show_immature_and_pending(monkeypatch, capsys):
    rows = [{"address": "TA", "kind": "receive", "used": True, "label": "mining", "balance": 0.0,
             "immature": 150.0, "pending": 0.0, "spendable": 0.0, "incoming": 0.0},
            {"address": "TB", "kind": "change", "used": True, "label": "", "balance": 2.0,
             "immature": 0.0, "pending": 0.5, "spendable": 2.5, "incoming": 0.0}]
    rc, out, _, _ = run(monkeypatch, capsys, ["addresses"], {"listaddresses": rows})
    assert rc == 0 and out.splitlines() == ["TA  receive               0  (+150 immature)  mining",
                                            "TB  change                2  (+0.5 pending)"]


def test_status_of_an_unknown_txid_exits_nonzero(monkeypatch, capsys):
    answers = {"gettxstatus": {"txid": "t", "status": "not found"}}
    rc, out, _, _ = run(monkeypatch, capsys, ["status", "t"], answers)
    assert (rc, out) == (1, "not found (not in the mempool or the chain)\n")
    answers = {"gettxstatus": {"txid": "t", "status": "confirmed", "confirmations": 2, "blockhash": "bb",
                               "height": 7, "blocktime": 1700000000}}
    rc, out, _, _ = run(monkeypatch, capsys, ["status", "t"], answers)
    assert (rc, out) == (0, "2 confirmations in block bb at height 7, mined at 1700000000 (2023-11-14 22:13:20 UTC)\n")


def test_block_verb_heights_and_times(monkeypatch, capsys):
    blk = {"hash": "ab" * 32, "height": 3, "confirmations": 1, "time": 1700000000, "nTx": 1, "size": 200,
           "bits": "1f00ffff", "difficulty": 1.0, "previousblockhash": "cd" * 32, "tx": ["ee" * 32]}
    answers = {"getblockcount": 3, "getblockhash": "ab" * 32, "getblock": blk}
    rc, _, err, fake = run(monkeypatch, capsys, ["block", "-1"], answers)
    assert (rc, fake.calls) == (1, [])
    assert err == ("tinynode-cli: block height must be 0 or more, not -1: heights count up from the "
                   "genesis block (0)\n")
    rc, _, err, _ = run(monkeypatch, capsys, ["block", "9"], answers)
    assert (rc, err) == (1, "tinynode-cli: no block at height 9 yet: the chain's height is 3\n")
    rc, _, err, _ = run(monkeypatch, capsys, ["block", "tip"], answers)
    assert err == ("tinynode-cli: 'tip' is neither a block height (a whole number) nor a block hash "
                   "(64 hex characters)\n")
    rc, out, _, _ = run(monkeypatch, capsys, ["block", "3"], answers)
    assert rc == 0 and "time          1700000000 (2023-11-14 22:13:20 UTC)" in out.splitlines()


def test_help_lists_friendly_verbs_first_then_rpc_names(monkeypatch, capsys):
    answers = {"help": lambda *a: "getblock \"blockhash\" ( verbosity )" if a else "getblock ...\nstop"}
    rc, out, _, fake = run(monkeypatch, capsys, ["help"], answers)
    lines = out.splitlines()
    assert rc == 0 and lines[0] == "Friendly commands:" and lines[1].startswith("  help [COMMAND]")
    rpc_at = lines.index("RPC methods (Bitcoin Core's names and arguments; `tinynode-cli help METHOD` for one):")
    assert all(any(l.startswith("  " + v) for l in lines[:rpc_at]) for v in cli.VERBS)
    assert lines[rpc_at + 1:] == ["getblock ...", "stop"]
    rc, out, _, fake = run(monkeypatch, capsys, ["help", "send"], answers)
    assert out.startswith("send ADDR AMOUNT") and fake.calls == []
    rc, out, _, fake = run(monkeypatch, capsys, ["help", "getblock"], answers)
    assert out == 'getblock "blockhash" ( verbosity )\n' and fake.calls == [("help", ("getblock",), None)]


def test_info_says_1_block_found(monkeypatch, capsys):
    answers = {"getblockchaininfo": {"chain": "tinynet", "blocks": 1, "headers": 1, "bestblockhash": "h"},
               "getpeerinfo": [], "getbalances": RPCError(-18, "no wallet"),
               "getmininginfo": {"mining": True, "workers": 1, "hashespersec": 2000, "blocksfound": 1}}
    rc, out, _, _ = run(monkeypatch, capsys, ["info"], answers)
    assert "mining    on, 1 worker(s), 2.0 kH/s, 1 block found" in out.splitlines()


def test_newaddress_is_bech32_by_default_and_legacy_on_request(monkeypatch, capsys):
    """issue 15: `newaddress` asks for Core's default type (bech32); --legacy asks for P2PKH."""
    rc, out, _, fake = run(monkeypatch, capsys, ["newaddress"], {"getnewaddress": "bcrt1qxyz"})
    assert rc == 0 and out.strip() == "bcrt1qxyz" and fake.calls == [("getnewaddress", (), None)]
    rc, out, _, fake = run(monkeypatch, capsys, ["newaddress", "savings", "--legacy"], {"getnewaddress": "mABC"})
    assert rc == 0 and out.strip() == "mABC" and fake.calls == [("getnewaddress", ("savings", "legacy"), None)]


def test_newaddress_bech32m_and_bech32_verbs(monkeypatch, capsys):
    """issue 16: --bech32m asks getnewaddress for a P2TR address, --bech32 names the default;
    one type at most; the verbs are in --help."""
    rc, out, _, fake = run(monkeypatch, capsys, ["newaddress", "--bech32m"], {"getnewaddress": "bcrt1pxyz"})
    assert rc == 0 and out.strip() == "bcrt1pxyz" and fake.calls == [("getnewaddress", ("", "bech32m"), None)]
    rc, out, _, fake = run(monkeypatch, capsys, ["newaddress", "cold", "--bech32"], {"getnewaddress": "bcrt1qxyz"})
    assert rc == 0 and fake.calls == [("getnewaddress", ("cold", "bech32"), None)]
    rc, out, err, fake = run(monkeypatch, capsys, ["newaddress", "--bech32m", "--legacy"], {"getnewaddress": "x"})
    assert rc == 1 and fake.calls == [] and "one of --bech32, --bech32m, --legacy" in err
    rc, out, _, _ = run(monkeypatch, capsys, ["--help"], {})
    assert rc == 0 and "newaddress [LABEL] [--bech32|--bech32m|--legacy]" in out
    assert "bech32m (P2TR, taproot key path)" in out


def test_daemon_sets_its_gc_thresholds_before_anything_else(monkeypatch, capsys):
    """The daemon (and only the daemon's own process) runs full collections a tenth as often."""
    import gc
    seen = []
    monkeypatch.setattr(gc, "set_threshold", lambda *t: seen.append(t))
    assert cli.daemon_main(["--minimumchainwork", "zz"]) == 1      # a ConfigError: exit 1
    assert seen == [(700, 10, 100)] == [cli.DAEMON_GC_THRESHOLDS]
    assert "Invalid minimum work specified (zz)" in capsys.readouterr().err
